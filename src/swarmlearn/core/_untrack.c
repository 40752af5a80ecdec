/* Events out of the cyclic garbage collector's way (optional; see core/swarm.py).
 *
 * CPython untracks a plain tuple whose items cannot hold references (strings,
 * numbers, untracked tuples) the first time the collector looks at it, but not
 * a tuple subclass: every ActionEvent, ActionResult, Candidate (NamedTuples)
 * stays tracked for life, and a swarm keeps thousands of them alive at a time
 * (the recorder's queue, the workers' histories), so each collection walks
 * them again. untrack(obj) does for a tuple, subclass or not, what CPython
 * does for plain ones: if none of its items is tracked (after untracking its
 * tuple items the same way), it cannot be part of a reference cycle, and it
 * is untracked. Anything else is left as it is. It returns obj.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int settle(PyObject *op, int depth) {
    /* 1 if op is (now) untracked, 0 if it stays tracked */
    if (!PyObject_GC_IsTracked(op)) return 1;
    if (!PyTuple_Check(op) || depth > 8) return 0;
    const Py_ssize_t n = PyTuple_GET_SIZE(op);
    int all = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!settle(PyTuple_GET_ITEM(op, i), depth + 1)) all = 0;
    }
    if (all) PyObject_GC_UnTrack(op);
    return all;
}

static PyObject *untrack(PyObject *Py_UNUSED(module), PyObject *obj) {
    settle(obj, 0);
    Py_INCREF(obj);
    return obj;
}

static PyMethodDef functions[] = {
    {"untrack", (PyCFunction)untrack, METH_O,
     "untrack(obj) -> obj: a tuple (subclass or not) of untracked items leaves the GC."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "swarmlearn.core._untrack",
    .m_doc = "Takes events that cannot form reference cycles out of the cyclic GC.",
    .m_size = -1,
    .m_methods = functions,
};

PyMODINIT_FUNC PyInit__untrack(void) { return PyModule_Create(&module); }
