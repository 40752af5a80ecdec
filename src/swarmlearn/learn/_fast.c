/* The selection hot path in C: the numbers of learn/_armset.py's ArmSet, kept
 * in C arrays, refreshed from the statistics' update log, and scored for UCB1,
 * Greedy / Beta-mean and Thompson sampling.
 *
 * This is an optional accelerator: learn/_armset.py holds the same logic in
 * plain Python (PyArmSet) and is used when this module was not built. Both
 * give the same numbers, bit for bit (compiled without floating-point
 * contraction; tests/learn/test_armset.py compares them), except Thompson's
 * draws, which come from a different (but equally exact) sampler.
 *
 * ArmCore is a base class: the Python subclass (FastArmSet) builds the keys,
 * the index and the cached static bonus, and rebuilds on an epoch change.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Rng: xoshiro256** (Blackman & Vigna), seeded through splitmix64.          */

typedef struct {
    PyObject_HEAD
    uint64_t s[4];
    int has_spare;
    double spare;
} Rng;

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t next64(Rng *r) {
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static inline double uniform(Rng *r) { return (double)(next64(r) >> 11) * 0x1.0p-53; }

/* standard normal: Marsaglia's polar method (keeps the second value) */
static double normal(Rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u, v, q;
    do {
        u = 2.0 * uniform(r) - 1.0;
        v = 2.0 * uniform(r) - 1.0;
        q = u * u + v * v;
    } while (q >= 1.0 || q == 0.0);
    double m = sqrt(-2.0 * log(q) / q);
    r->spare = v * m;
    r->has_spare = 1;
    return u * m;
}

/* Gamma(a, 1): Marsaglia & Tsang (2000); a < 1 through Gamma(a+1)·U^(1/a) */
static double gamma_draw(Rng *r, double a) {
    if (a < 1.0) {
        double u = uniform(r);
        return gamma_draw(r, a + 1.0) * pow(u, 1.0 / a);
    }
    const double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        const double u = uniform(r);
        const double x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2) return d * v;
        if (log(u) < 0.5 * x2 + d * (1.0 - v + log(v))) return d * v;
    }
}

static inline double beta_draw(Rng *r, double a, double b) {
    const double x = gamma_draw(r, a);
    const double y = gamma_draw(r, b);
    return x / (x + y);
}

static int Rng_init(Rng *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"seed", NULL};
    unsigned long long seed = 0;
    PyObject *obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O", kwlist, &obj)) return -1;
    if (obj != NULL) {
        /* any int: its low 64 bits (negative seeds wrap) */
        seed = PyLong_AsUnsignedLongLongMask(obj);
        if (seed == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    }
    uint64_t z = (uint64_t)seed;
    for (int i = 0; i < 4; i++) { /* splitmix64 */
        z += 0x9e3779b97f4a7c15ULL;
        uint64_t x = z;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        self->s[i] = x ^ (x >> 31);
    }
    self->has_spare = 0;
    self->spare = 0.0;
    return 0;
}

static PyObject *Rng_random(Rng *self, PyObject *Py_UNUSED(ignored)) {
    return PyFloat_FromDouble(uniform(self));
}

static PyObject *Rng_beta(Rng *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "beta(a, b) takes two numbers");
        return NULL;
    }
    double a = PyFloat_AsDouble(args[0]), b = PyFloat_AsDouble(args[1]);
    if (PyErr_Occurred()) return NULL;
    if (!(a > 0.0) || !(b > 0.0)) {
        PyErr_SetString(PyExc_ValueError, "beta(a, b) needs a > 0 and b > 0");
        return NULL;
    }
    return PyFloat_FromDouble(beta_draw(self, a, b));
}

static PyMethodDef Rng_methods[] = {
    {"random", (PyCFunction)Rng_random, METH_NOARGS, "A uniform draw in [0, 1)."},
    {"beta", (PyCFunction)(void (*)(void))Rng_beta, METH_FASTCALL, "A Beta(a, b) draw."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RngType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "swarmlearn.learn._fast.Rng",
    .tp_doc = "Seeded xoshiro256** generator with Beta draws (Marsaglia-Tsang gammas).",
    .tp_basicsize = sizeof(Rng),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Rng_init,
    .tp_methods = Rng_methods,
};

/* ------------------------------------------------------------------------ */
/* ArmCore                                                                   */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    double *mem; /* one block: N A B G TA TB W S, n each */
    double *N, *A, *B, *G, *TA, *TB, *W, *S;
    double w, cw, prior, den_inv; /* learning_weight, context weight, bonus prior, 1/Σweights */
    double total;
    Py_ssize_t unvisited;
    Py_ssize_t seen;    /* position in the statistics' arm log */
    PyObject *epoch;    /* the statistics' epoch when last rebuilt */
    PyObject *index;    /* dict: arm key -> tuple of candidate indices */
} ArmCore;

static PyObject *s_epoch, *s_arm_log, *s_arm_log_base, *s_contexts, *s_scale, *s_rebuild;

static void ArmCore_dealloc(ArmCore *self) {
    PyObject_GC_UnTrack(self);
    PyMem_Free(self->mem);
    Py_CLEAR(self->epoch);
    Py_CLEAR(self->index);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int ArmCore_traverse(ArmCore *self, visitproc visit, void *arg) {
    Py_VISIT(self->epoch);
    Py_VISIT(self->index);
    return 0;
}

static int ArmCore_clear(ArmCore *self) {
    Py_CLEAR(self->epoch);
    Py_CLEAR(self->index);
    return 0;
}

/* the numbers of one arm from its (scaled) success and failure weights */
static void arm_set(ArmCore *self, Py_ssize_t i, double s, double f, double scale) {
    const double n = s + f;
    const double old = self->N[i];
    if (old == 0.0) {
        if (n > 0.0) self->unvisited -= 1;
    } else if (n == 0.0) {
        self->unvisited += 1;
    }
    self->total += n - old;
    self->N[i] = n;
    const double bonus_w =
        self->w * (self->S[i] + self->cw * (s - f) / (n + self->prior * scale) * self->den_inv);
    if (n > 0.0) {
        self->A[i] = s / n + bonus_w;
        self->B[i] = 1.0 / sqrt(n);
    } else {
        self->A[i] = self->B[i] = 0.0;
    }
    const double ts = s / scale, tf = f / scale;
    self->G[i] = (ts + 1.0) / (ts + tf + 2.0) + bonus_w;
    self->TA[i] = ts + 1.0;
    self->TB[i] = tf + 1.0;
    self->W[i] = bonus_w;
}

/* read [s, f] of `key` from the contexts table (missing: 0, 0); -1 on error */
static int counts_of(PyObject *contexts, PyObject *key, double *s, double *f) {
    PyObject *c = PyDict_GetItemWithError(contexts, key);
    if (c == NULL) {
        if (PyErr_Occurred()) return -1;
        *s = *f = 0.0;
        return 0;
    }
    if (!PyList_Check(c) || PyList_GET_SIZE(c) != 2) {
        PyErr_SetString(PyExc_TypeError, "statistics: a count must be a [success, failure] list");
        return -1;
    }
    *s = PyFloat_AsDouble(PyList_GET_ITEM(c, 0));
    *f = PyFloat_AsDouble(PyList_GET_ITEM(c, 1));
    return PyErr_Occurred() ? -1 : 0;
}

/* _reset(n, w, cw, prior, den_inv, epoch, seen, index, static): fresh arrays, every arm
 * unvisited; _load then fills them */
static PyObject *ArmCore_reset(ArmCore *self, PyObject *args) {
    Py_ssize_t n, seen;
    double w, cw, prior, den_inv;
    PyObject *epoch, *index, *stat;
    if (!PyArg_ParseTuple(args, "nddddOnO!O!", &n, &w, &cw, &prior, &den_inv, &epoch, &seen,
                          &PyDict_Type, &index, &PyList_Type, &stat))
        return NULL;
    if (n < 0 || PyList_GET_SIZE(stat) != n) {
        PyErr_SetString(PyExc_ValueError, "_reset: static must have one entry per arm");
        return NULL;
    }
    double *mem = PyMem_Calloc((size_t)(n > 0 ? n : 1) * 8, sizeof(double));
    if (mem == NULL) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) { /* S: the last n of the block */
        mem[7 * n + i] = PyFloat_AsDouble(PyList_GET_ITEM(stat, i));
    }
    if (PyErr_Occurred()) { /* nothing of self changed */
        PyMem_Free(mem);
        return NULL;
    }
    PyMem_Free(self->mem);
    self->mem = mem;
    self->n = n;
    self->N = mem;
    self->A = mem + n;
    self->B = mem + 2 * n;
    self->G = mem + 3 * n;
    self->TA = mem + 4 * n;
    self->TB = mem + 5 * n;
    self->W = mem + 6 * n;
    self->S = mem + 7 * n;
    self->w = w;
    self->cw = cw;
    self->prior = prior;
    self->den_inv = den_inv;
    self->total = 0.0;
    self->unvisited = n;
    self->seen = seen;
    Py_INCREF(epoch);
    Py_XSETREF(self->epoch, epoch);
    Py_INCREF(index);
    Py_XSETREF(self->index, index);
    Py_RETURN_NONE;
}

/* _load(stats_contexts, keys, scale): every arm's numbers from the contexts table */
static PyObject *ArmCore_load(ArmCore *self, PyObject *args) {
    PyObject *contexts, *keys;
    double scale;
    if (!PyArg_ParseTuple(args, "O!O!d", &PyDict_Type, &contexts, &PyList_Type, &keys, &scale))
        return NULL;
    if (PyList_GET_SIZE(keys) != self->n) {
        PyErr_SetString(PyExc_ValueError, "_load: one key per arm");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->n; i++) {
        double s, f;
        if (counts_of(contexts, PyList_GET_ITEM(keys, i), &s, &f) < 0) return NULL;
        arm_set(self, i, s, f, scale);
    }
    Py_RETURN_NONE;
}

static PyObject *call_rebuild(ArmCore *self, PyObject *stats) {
    PyObject *r = PyObject_CallMethodOneArg((PyObject *)self, s_rebuild, stats);
    if (r == NULL) return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

/* sync(stats): apply the arm updates logged since the last call (rebuild when needed) */
static PyObject *ArmCore_sync(ArmCore *self, PyObject *stats) {
    PyObject *epoch = PyObject_GetAttr(stats, s_epoch);
    if (epoch == NULL) return NULL;
    int same = self->epoch != NULL ? PyObject_RichCompareBool(epoch, self->epoch, Py_EQ) : 0;
    Py_DECREF(epoch);
    if (same < 0) return NULL;
    if (!same) return call_rebuild(self, stats);

    PyObject *log = PyObject_GetAttr(stats, s_arm_log);
    if (log == NULL) return NULL;
    PyObject *base_obj = PyObject_GetAttr(stats, s_arm_log_base);
    if (base_obj == NULL) {
        Py_DECREF(log);
        return NULL;
    }
    Py_ssize_t base = PyLong_AsSsize_t(base_obj);
    Py_DECREF(base_obj);
    if ((base == -1 && PyErr_Occurred()) || !PyList_Check(log)) {
        Py_DECREF(log);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "statistics: arm_log must be a list");
        return NULL;
    }
    const Py_ssize_t len = PyList_GET_SIZE(log), end = base + len;
    if (self->seen == end) {
        Py_DECREF(log);
        Py_RETURN_NONE;
    }
    if (self->seen < base || end - self->seen > self->n) {
        Py_DECREF(log);
        return call_rebuild(self, stats);
    }
    PyObject *contexts = PyObject_GetAttr(stats, s_contexts);
    PyObject *scale_obj = contexts ? PyObject_GetAttr(stats, s_scale) : NULL;
    double scale = scale_obj ? PyFloat_AsDouble(scale_obj) : 0.0;
    Py_XDECREF(scale_obj);
    if (contexts == NULL || PyErr_Occurred() || !PyDict_Check(contexts)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "statistics: contexts must be a dict");
        Py_DECREF(log);
        Py_XDECREF(contexts);
        return NULL;
    }
    for (Py_ssize_t j = self->seen - base; j < len; j++) {
        PyObject *key = PyList_GET_ITEM(log, j);
        PyObject *hit = PyDict_GetItemWithError(self->index, key);
        if (hit == NULL) {
            if (PyErr_Occurred()) goto fail;
            continue;
        }
        double s, f;
        if (counts_of(contexts, key, &s, &f) < 0) goto fail;
        const Py_ssize_t m = PyTuple_GET_SIZE(hit);
        for (Py_ssize_t t = 0; t < m; t++) {
            Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, t));
            if (i < 0 || i >= self->n) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_IndexError, "index out of range");
                goto fail;
            }
            arm_set(self, i, s, f, scale);
        }
    }
    self->seen = end;
    Py_DECREF(log);
    Py_DECREF(contexts);
    Py_RETURN_NONE;
fail:
    Py_DECREF(log);
    Py_DECREF(contexts);
    return NULL;
}

/* first index of the largest value, and how many share it */
static PyObject *argmax_ties(const double *v, const double *b, double k, Py_ssize_t n) {
    Py_ssize_t best = 0, ties = 0;
    double top = -INFINITY;
    for (Py_ssize_t i = 0; i < n; i++) {
        const double x = b ? v[i] + b[i] * k : v[i];
        if (x > top) {
            top = x;
            best = i;
            ties = 1;
        } else if (x == top) {
            ties++;
        }
    }
    return Py_BuildValue("nn", best, ties);
}

/* ucb(k) -> (index, ties): the best A + B·k (every arm must have been visited) */
static PyObject *ArmCore_ucb(ArmCore *self, PyObject *arg) {
    double k = PyFloat_AsDouble(arg);
    if (k == -1.0 && PyErr_Occurred()) return NULL;
    return argmax_ties(self->A, self->B, k, self->n);
}

static PyObject *ArmCore_greedy(ArmCore *self, PyObject *Py_UNUSED(ignored)) {
    return argmax_ties(self->G, NULL, 0.0, self->n);
}

/* thompson(rng) -> index: the best Beta(TA, TB) draw + W */
static PyObject *ArmCore_thompson(ArmCore *self, PyObject *rng) {
    if (!PyObject_TypeCheck(rng, &RngType)) {
        PyErr_SetString(PyExc_TypeError, "thompson() needs a swarmlearn.learn._fast.Rng");
        return NULL;
    }
    Rng *r = (Rng *)rng;
    Py_ssize_t best = 0;
    double top = -INFINITY;
    for (Py_ssize_t i = 0; i < self->n; i++) {
        const double x = beta_draw(r, self->TA[i], self->TB[i]) + self->W[i];
        if (x > top) {
            top = x;
            best = i;
        }
    }
    return PyLong_FromSsize_t(best);
}

/* v (or v + b·k when b is given) as a list of floats */
static PyObject *to_list(const double *v, const double *b, double k, Py_ssize_t n) {
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *x = PyFloat_FromDouble(b ? v[i] + b[i] * k : v[i]);
        if (x == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, x);
    }
    return out;
}

/* ucb_scores(k) -> list: A + B·k, for resolving ties by the learned order */
static PyObject *ArmCore_ucb_scores(ArmCore *self, PyObject *arg) {
    double k = PyFloat_AsDouble(arg);
    if (k == -1.0 && PyErr_Occurred()) return NULL;
    return to_list(self->A, self->B, k, self->n);
}

#define LIST_GETTER(NAME)                                                       \
    static PyObject *ArmCore_get_##NAME(ArmCore *self, void *Py_UNUSED(c)) {   \
        return to_list(self->NAME, NULL, 0.0, self->n);                         \
    }
LIST_GETTER(N)
LIST_GETTER(A)
LIST_GETTER(B)
LIST_GETTER(G)
LIST_GETTER(TA)
LIST_GETTER(TB)
LIST_GETTER(W)

static PyObject *ArmCore_get_total(ArmCore *self, void *Py_UNUSED(c)) {
    return PyFloat_FromDouble(self->total);
}
static PyObject *ArmCore_get_unvisited(ArmCore *self, void *Py_UNUSED(c)) {
    return PyLong_FromSsize_t(self->unvisited);
}
static PyObject *ArmCore_get_seen(ArmCore *self, void *Py_UNUSED(c)) {
    return PyLong_FromSsize_t(self->seen);
}

static PyGetSetDef ArmCore_getset[] = {
    {"N", (getter)ArmCore_get_N, NULL, "visit weights", NULL},
    {"A", (getter)ArmCore_get_A, NULL, "rate + w·bonus", NULL},
    {"B", (getter)ArmCore_get_B, NULL, "1/sqrt(N)", NULL},
    {"G", (getter)ArmCore_get_G, NULL, "Beta mean + w·bonus", NULL},
    {"TA", (getter)ArmCore_get_TA, NULL, "Beta alpha", NULL},
    {"TB", (getter)ArmCore_get_TB, NULL, "Beta beta", NULL},
    {"W", (getter)ArmCore_get_W, NULL, "w·bonus", NULL},
    {"total", (getter)ArmCore_get_total, NULL, "sum of visit weights", NULL},
    {"unvisited", (getter)ArmCore_get_unvisited, NULL, "arms never played", NULL},
    {"seen", (getter)ArmCore_get_seen, NULL, "position in the arm log", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef ArmCore_methods[] = {
    {"_reset", (PyCFunction)ArmCore_reset, METH_VARARGS, "Fresh arrays (all arms unvisited)."},
    {"_load", (PyCFunction)ArmCore_load, METH_VARARGS, "Every arm from the contexts table."},
    {"sync", (PyCFunction)ArmCore_sync, METH_O, "Apply the logged arm updates."},
    {"ucb", (PyCFunction)ArmCore_ucb, METH_O, "(index, ties) of the best A + B*k."},
    {"ucb_scores", (PyCFunction)ArmCore_ucb_scores, METH_O, "A + B*k as a list."},
    {"greedy", (PyCFunction)ArmCore_greedy, METH_NOARGS, "(index, ties) of the best G."},
    {"thompson", (PyCFunction)ArmCore_thompson, METH_O, "Index of the best Beta draw + W."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ArmCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "swarmlearn.learn._fast.ArmCore",
    .tp_doc = "C arrays and scoring for learn/_armset.py's ArmSet (subclass it).",
    .tp_basicsize = sizeof(ArmCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)ArmCore_dealloc,
    .tp_traverse = (traverseproc)ArmCore_traverse,
    .tp_clear = (inquiry)ArmCore_clear,
    .tp_methods = ArmCore_methods,
    .tp_getset = ArmCore_getset,
};

static struct PyModuleDef fastmodule = {
    PyModuleDef_HEAD_INIT,
    .m_name = "swarmlearn.learn._fast",
    .m_doc = "C accelerator for the selection hot path (optional; see learn/_armset.py).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__fast(void) {
    if (PyType_Ready(&RngType) < 0 || PyType_Ready(&ArmCoreType) < 0) return NULL;
    s_epoch = PyUnicode_InternFromString("epoch");
    s_arm_log = PyUnicode_InternFromString("arm_log");
    s_arm_log_base = PyUnicode_InternFromString("arm_log_base");
    s_contexts = PyUnicode_InternFromString("contexts");
    s_scale = PyUnicode_InternFromString("_scale");
    s_rebuild = PyUnicode_InternFromString("rebuild");
    if (!s_epoch || !s_arm_log || !s_arm_log_base || !s_contexts || !s_scale || !s_rebuild)
        return NULL;
    PyObject *m = PyModule_Create(&fastmodule);
    if (m == NULL) return NULL;
    Py_INCREF(&RngType);
    Py_INCREF(&ArmCoreType);
    if (PyModule_AddObject(m, "Rng", (PyObject *)&RngType) < 0 ||
        PyModule_AddObject(m, "ArmCore", (PyObject *)&ArmCoreType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
