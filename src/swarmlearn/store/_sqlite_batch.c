/* One SQLite transaction per batch with the GIL released for all of it (optional;
 * see store/_sql.py).
 *
 * Python's sqlite3 releases the GIL around every sqlite3_step and takes it back
 * for the next row's bind, so an executemany of 2,048 rows hands the GIL back
 * and forth 2,048 times. When another thread runs Python code (the swarm), each
 * of those hand-backs waits for that thread to let go (up to the switch
 * interval, 5 ms): the recorder crawls until its queue is full, then the swarm
 * waits for it, and the two end up running one after the other.
 *
 * Writer(path, busy_timeout_ms) opens a connection of its own to a database file.
 * Writer.write(parts) takes a list of (sql, rows): an INSERT with n placeholders
 * and a list of n-tuples. With the GIL held it reads every value into a C array
 * (None -> NULL, int/bool -> int64, float -> double, str -> UTF-8 text, bytes ->
 * blob: what sqlite3 binds for them); then, with the GIL released once, it runs
 * BEGIN IMMEDIATE, every row of every part, and COMMIT (ROLLBACK on an error,
 * raised as _sqlite_batch.Error with SQLite's message). The text pointers stay
 * valid while the GIL is released: the strings are immutable and the rows are
 * referenced by the caller's list for the whole call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

static PyObject *BatchError;

enum { V_NULL, V_INT, V_REAL, V_TEXT, V_BLOB };

typedef struct {
    int kind;
    Py_ssize_t len;
    union {
        sqlite3_int64 i;
        double d;
        const char *p;
    } u;
} Value;

typedef struct {
    const char *sql;
    Py_ssize_t sql_len;
    Py_ssize_t rows;
    Py_ssize_t cols;
    Value *values; /* rows * cols */
} Part;

typedef struct {
    PyObject_HEAD
    sqlite3 *db;
    pid_t owner; /* a connection is never used or closed across fork() */
} Writer;

static int read_value(PyObject *obj, Value *v) {
    if (obj == Py_None) {
        v->kind = V_NULL;
    } else if (PyLong_Check(obj)) { /* bool included: True -> 1, as sqlite3 binds it */
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (overflow) {
            PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to SQLite INTEGER");
            return -1;
        }
        if (x == -1 && PyErr_Occurred()) return -1;
        v->kind = V_INT;
        v->u.i = (sqlite3_int64)x;
    } else if (PyFloat_Check(obj)) {
        v->kind = V_REAL;
        v->u.d = PyFloat_AS_DOUBLE(obj);
    } else if (PyUnicode_Check(obj)) {
        Py_ssize_t n;
        const char *p = PyUnicode_AsUTF8AndSize(obj, &n);
        if (p == NULL) return -1;
        v->kind = V_TEXT;
        v->u.p = p;
        v->len = n;
    } else if (PyBytes_Check(obj)) {
        v->kind = V_BLOB;
        v->u.p = PyBytes_AS_STRING(obj);
        v->len = PyBytes_GET_SIZE(obj);
    } else {
        PyErr_Format(PyExc_TypeError, "unsupported value of type %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    return 0;
}

static int bind_value(sqlite3_stmt *st, int i, const Value *v) {
    switch (v->kind) {
    case V_NULL: return sqlite3_bind_null(st, i);
    case V_INT: return sqlite3_bind_int64(st, i, v->u.i);
    case V_REAL: return sqlite3_bind_double(st, i, v->u.d);
    case V_TEXT: return sqlite3_bind_text64(st, i, v->u.p, (sqlite3_uint64)v->len, SQLITE_STATIC,
                                            SQLITE_UTF8);
    default: return sqlite3_bind_blob64(st, i, v->u.p, (sqlite3_uint64)v->len, SQLITE_STATIC);
    }
}

/* Runs the transaction; 0 or an SQLite error code (message copied into err). No GIL. */
static int run(sqlite3 *db, const Part *parts, Py_ssize_t nparts, char *err, size_t errlen) {
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) goto fail;
    for (Py_ssize_t k = 0; k < nparts; k++) {
        const Part *part = &parts[k];
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(db, part->sql, (int)part->sql_len, &st, NULL);
        if (rc != SQLITE_OK) goto rollback;
        const int marks = sqlite3_bind_parameter_count(st);
        if (part->rows && marks != part->cols) {
            sqlite3_finalize(st);
            snprintf(err, errlen, "the statement has %d placeholders, the rows %zd values",
                     marks, part->cols);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return SQLITE_MISUSE;
        }
        for (Py_ssize_t r = 0; r < part->rows && rc == SQLITE_OK; r++) {
            const Value *row = &part->values[r * part->cols];
            for (Py_ssize_t c = 0; c < part->cols && rc == SQLITE_OK; c++)
                rc = bind_value(st, (int)c + 1, &row[c]);
            if (rc != SQLITE_OK) break;
            rc = sqlite3_step(st);
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
            if (rc != SQLITE_OK) break;
            rc = sqlite3_reset(st);
        }
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "%s", sqlite3_errmsg(db));
            sqlite3_finalize(st);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        sqlite3_finalize(st);
    }
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK) return 0;
rollback:
    snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
fail:
    snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    return rc;
}

static int read_part(PyObject *item, Part *part, Value **next) {
    PyObject *sql, *rows;
    Py_ssize_t cols;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
        PyErr_SetString(PyExc_TypeError, "each part must be a (sql, rows) tuple");
        return -1;
    }
    sql = PyTuple_GET_ITEM(item, 0);
    rows = PyTuple_GET_ITEM(item, 1);
    if (!PyUnicode_Check(sql) || !PyTuple_Check(rows)) {
        PyErr_SetString(PyExc_TypeError, "each part must be a (str, list) tuple");
        return -1;
    }
    part->sql = PyUnicode_AsUTF8AndSize(sql, &part->sql_len);
    if (part->sql == NULL) return -1;
    part->rows = PyTuple_GET_SIZE(rows);
    part->cols = cols = part->rows ? -1 : 0;
    part->values = *next;
    for (Py_ssize_t r = 0; r < part->rows; r++) {
        PyObject *row = PyTuple_GET_ITEM(rows, r);
        if (!PyTuple_Check(row)) {
            PyErr_Format(PyExc_TypeError, "row %zd is a %.100s, not a tuple", r, Py_TYPE(row)->tp_name);
            return -1;
        }
        if (cols < 0) part->cols = cols = PyTuple_GET_SIZE(row);
        if (PyTuple_GET_SIZE(row) != cols) {
            PyErr_Format(PyExc_ValueError, "row %zd has %zd values, row 0 has %zd", r,
                         PyTuple_GET_SIZE(row), cols);
            return -1;
        }
        for (Py_ssize_t c = 0; c < cols; c++) {
            if (read_value(PyTuple_GET_ITEM(row, c), (*next)++) < 0) return -1;
        }
    }
    return 0;
}

/* (sql, tuple(rows)) pairs holding a reference to every row for the whole call, so
 * nothing a value points into can go while the GIL is released */
static PyObject *hold_parts(PyObject *parts_list, Py_ssize_t *total) {
    if (!PyList_Check(parts_list)) {
        PyErr_SetString(PyExc_TypeError, "write() takes a list of (sql, rows) tuples");
        return NULL;
    }
    const Py_ssize_t n = PyList_GET_SIZE(parts_list);
    PyObject *held = PyTuple_New(n);
    if (held == NULL) return NULL;
    *total = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *item = PyList_GET_ITEM(parts_list, k);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(item, 0)) || !PyList_Check(PyTuple_GET_ITEM(item, 1))) {
            PyErr_Format(PyExc_TypeError, "part %zd is not a (str, list) tuple", k);
            Py_DECREF(held);
            return NULL;
        }
        PyObject *rows = PyList_AsTuple(PyTuple_GET_ITEM(item, 1));
        PyObject *pair = rows ? PyTuple_Pack(2, PyTuple_GET_ITEM(item, 0), rows) : NULL;
        Py_XDECREF(rows);
        if (pair == NULL) {
            Py_DECREF(held);
            return NULL;
        }
        PyTuple_SET_ITEM(held, k, pair);
        for (Py_ssize_t r = 0; r < PyTuple_GET_SIZE(rows); r++) {
            PyObject *row = PyTuple_GET_ITEM(rows, r);
            if (PyTuple_Check(row)) *total += PyTuple_GET_SIZE(row);
        }
    }
    return held;
}

static PyObject *writer_write(Writer *self, PyObject *parts_list) {
    if (self->db == NULL) {
        PyErr_SetString(BatchError, "the writer is closed");
        return NULL;
    }
    if (self->owner != getpid()) {
        PyErr_SetString(BatchError, "the writer was opened by another process (fork)");
        return NULL;
    }
    Py_ssize_t total = 0;
    PyObject *held = hold_parts(parts_list, &total);
    if (held == NULL) return NULL;
    const Py_ssize_t nparts = PyTuple_GET_SIZE(held);
    Part *parts = PyMem_Calloc((size_t)(nparts ? nparts : 1), sizeof(Part));
    Value *values = PyMem_Calloc((size_t)(total ? total : 1), sizeof(Value));
    int rc = parts == NULL || values == NULL ? -2 : 0;
    Value *next = values;
    for (Py_ssize_t k = 0; k < nparts && rc == 0; k++)
        rc = read_part(PyTuple_GET_ITEM(held, k), &parts[k], &next);
    char err[512] = "";
    if (rc == 0) {
        Py_BEGIN_ALLOW_THREADS
        rc = run(self->db, parts, nparts, err, sizeof err);
        Py_END_ALLOW_THREADS
        if (rc != 0) PyErr_SetString(BatchError, err[0] ? err : sqlite3_errstr(rc));
    } else if (rc == -2) {
        PyErr_NoMemory();
    }
    PyMem_Free(parts);
    PyMem_Free(values);
    Py_DECREF(held);
    if (rc != 0) return NULL;
    Py_RETURN_NONE;
}

static void writer_close_db(Writer *self) {
    if (self->db != NULL && self->owner == getpid()) {
        sqlite3 *db = self->db;
        Py_BEGIN_ALLOW_THREADS
        sqlite3_close_v2(db);
        Py_END_ALLOW_THREADS
    }
    self->db = NULL;
}

static PyObject *writer_close(Writer *self, PyObject *Py_UNUSED(ignored)) {
    writer_close_db(self);
    Py_RETURN_NONE;
}

static int writer_init(Writer *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"path", "busy_timeout_ms", NULL};
    PyObject *path_obj;
    int timeout_ms = 30000;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|i", names, PyUnicode_FSConverter, &path_obj,
                                     &timeout_ms))
        return -1;
    writer_close_db(self);
    const char *path = PyBytes_AS_STRING(path_obj);
    sqlite3 *db = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(db, timeout_ms);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (rc != SQLITE_OK) {
        PyErr_SetString(BatchError, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close_v2(db);
        return -1;
    }
    self->db = db;
    self->owner = getpid();
    return 0;
}

static void writer_dealloc(Writer *self) {
    writer_close_db(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef writer_methods[] = {
    {"write", (PyCFunction)writer_write, METH_O,
     "write(parts): every (sql, rows) part in one transaction, the GIL released throughout."},
    {"close", (PyCFunction)writer_close, METH_NOARGS, "close(): close the connection."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "swarmlearn.store._sqlite_batch.Writer",
    .tp_basicsize = sizeof(Writer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Writer(path, busy_timeout_ms=30000): a connection that writes batches.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)writer_init,
    .tp_dealloc = (destructor)writer_dealloc,
    .tp_methods = writer_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "swarmlearn.store._sqlite_batch",
    .m_doc = "Writes a batch of rows to SQLite in one transaction without holding the GIL.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__sqlite_batch(void) {
    if (PyType_Ready(&WriterType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    BatchError = PyErr_NewException("swarmlearn.store._sqlite_batch.Error", NULL, NULL);
    if (BatchError == NULL || PyModule_AddObjectRef(m, "Error", BatchError) < 0 ||
        PyModule_AddObjectRef(m, "Writer", (PyObject *)&WriterType) < 0 ||
        PyModule_AddIntConstant(m, "sqlite_version_number", sqlite3_libversion_number()) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
