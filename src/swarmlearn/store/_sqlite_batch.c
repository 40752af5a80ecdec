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
 * Writer.write(parts) takes a list of (sql, rows) or (sql, rows, spec): the start
 * of an INSERT ("INSERT INTO t (a, b) VALUES", the writer adds the placeholders:
 * 64 rows a statement) and a list of n-tuples, or of tuples (events) the n values
 * are picked from by spec, one (i, j, conv) per column: row[i], or row[i][j] if
 * j >= 0, and if conv is not None, "" for an empty value or else conv(value) (a
 * str: the JSON of a field), so no row tuple is ever made for an event. With the
 * GIL held it reads every value into a C array
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
#include <dlfcn.h>
#include <unistd.h>

static PyObject *BatchError;
static PyObject *EmptyText; /* "" */

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

/* Prepared multi-row INSERTs, kept for the connection's life: an INSERT of ROWS rows
 * runs the statement machinery once for all of them, not once a row. */
#define ROWS 64
#define CACHED 32

typedef struct {
    char *prefix; /* "INSERT INTO t (cols) VALUES " */
    Py_ssize_t cols;
    int rows;
    sqlite3_stmt *st;
} Cached;

typedef struct {
    PyObject_HEAD
    sqlite3 *db;
    pid_t owner; /* a connection is never used or closed across fork() */
    Cached cache[CACHED];
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


static void forget_all(Cached *cache) {
    for (int i = 0; i < CACHED; i++) {
        sqlite3_finalize(cache[i].st);
        free(cache[i].prefix);
        cache[i] = (Cached){0};
    }
}

/* The statement inserting `rows` rows of part; NULL on an error (rc set). No GIL. */
static sqlite3_stmt *statement(sqlite3 *db, Cached *cache, const Part *part, int rows, int *rc) {
    int slot = -1;
    for (int i = 0; i < CACHED; i++) {
        if (cache[i].st == NULL) {
            if (slot < 0) slot = i;
            continue;
        }
        if (cache[i].rows == rows && cache[i].cols == part->cols &&
            strlen(cache[i].prefix) == (size_t)part->sql_len &&
            memcmp(cache[i].prefix, part->sql, (size_t)part->sql_len) == 0)
            return cache[i].st;
    }
    if (slot < 0) { /* full: start over (a store writes to a handful of tables) */
        forget_all(cache);
        slot = 0;
    }
    const size_t group = 2 * (size_t)part->cols + 2; /* "(?,?)," */
    const size_t len = (size_t)part->sql_len + group * (size_t)rows + 1;
    char *sql = malloc(len), *prefix = malloc((size_t)part->sql_len + 1);
    if (sql == NULL || prefix == NULL) {
        free(sql);
        free(prefix);
        *rc = SQLITE_NOMEM;
        return NULL;
    }
    memcpy(prefix, part->sql, (size_t)part->sql_len);
    prefix[part->sql_len] = '\0';
    char *w = sql + part->sql_len;
    memcpy(sql, part->sql, (size_t)part->sql_len);
    for (int r = 0; r < rows; r++) {
        *w++ = r ? ',' : ' ';
        *w++ = '(';
        for (Py_ssize_t c = 0; c < part->cols; c++) {
            if (c) *w++ = ',';
            *w++ = '?';
        }
        *w++ = ')';
    }
    *w = '\0';
    sqlite3_stmt *st = NULL;
    *rc = sqlite3_prepare_v3(db, sql, (int)(w - sql), SQLITE_PREPARE_PERSISTENT, &st, NULL);
    free(sql);
    if (*rc != SQLITE_OK) {
        free(prefix);
        return NULL;
    }
    cache[slot] = (Cached){prefix, part->cols, rows, st};
    return st;
}

/* Inserts part's rows, ROWS at a time, then the rest in halves; 0 or an SQLite code. */
static int insert(sqlite3 *db, Cached *cache, const Part *part) {
    Py_ssize_t done = 0;
    int rc = SQLITE_OK;
    const int marks = sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, -1); /* 999 before 3.32 */
    const int fit = part->cols ? (int)(marks / part->cols) : 1;
    const int most = fit < ROWS ? (fit > 0 ? fit : 1) : ROWS;
    while (done < part->rows && rc == SQLITE_OK) {
        int rows = most;
        while (rows > part->rows - done) rows /= 2;
        sqlite3_stmt *st = statement(db, cache, part, rows, &rc);
        if (st == NULL) break;
        const Value *v = &part->values[done * part->cols];
        const int n = rows * (int)part->cols;
        for (int i = 0; i < n && rc == SQLITE_OK; i++) rc = bind_value(st, i + 1, &v[i]);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st); /* no pointer into Python objects outlives the call */
        done += rows;
    }
    return rc;
}

/* Runs the transaction; 0 or an SQLite error code (message copied into err). No GIL. */
static int run(sqlite3 *db, Cached *cache, const Part *parts, Py_ssize_t nparts, char *err,
               size_t errlen) {
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) goto fail;
    for (Py_ssize_t k = 0; k < nparts && rc == SQLITE_OK; k++)
        if (parts[k].rows) rc = insert(db, cache, &parts[k]);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK) return 0;
fail:
    snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

typedef struct {
    Py_ssize_t i, j; /* the value is row[i], or row[i][j] when j >= 0 */
    PyObject *conv;  /* if not None: "" for an empty value, else conv(value) (a str) */
} Column;

static int read_spec(PyObject *spec, Column *cols, Py_ssize_t n) {
    for (Py_ssize_t c = 0; c < n; c++) {
        PyObject *col = PyTuple_GET_ITEM(spec, c);
        if (!PyTuple_Check(col) || PyTuple_GET_SIZE(col) != 3) {
            PyErr_Format(PyExc_TypeError, "column %zd of the spec is not an (i, j, conv) tuple", c);
            return -1;
        }
        cols[c].i = PyLong_AsSsize_t(PyTuple_GET_ITEM(col, 0));
        cols[c].j = PyLong_AsSsize_t(PyTuple_GET_ITEM(col, 1));
        if (PyErr_Occurred()) return -1;
        cols[c].conv = PyTuple_GET_ITEM(col, 2);
        if (cols[c].conv == Py_None) cols[c].conv = NULL;
    }
    return 0;
}

/* row[i] or row[i][j]; a borrowed reference, or a new one kept alive in keep */
static PyObject *pick(PyObject *row, const Column *col, PyObject *keep, Py_ssize_t r) {
    PyObject *obj = NULL;
    if (col->i < PyTuple_GET_SIZE(row)) obj = PyTuple_GET_ITEM(row, col->i);
    if (obj != NULL && col->j >= 0)
        obj = PyTuple_Check(obj) && col->j < PyTuple_GET_SIZE(obj) ? PyTuple_GET_ITEM(obj, col->j)
                                                                    : NULL;
    if (obj == NULL) {
        PyErr_Format(PyExc_ValueError, "row %zd has no value [%zd][%zd]", r, col->i, col->j);
        return NULL;
    }
    if (col->conv == NULL) return obj;
    const int truth = PyObject_IsTrue(obj);
    if (truth < 0) return NULL;
    if (!truth) return EmptyText;
    PyObject *text = PyObject_CallOneArg(col->conv, obj);
    if (text == NULL) return NULL;
    const int rc = PyList_Append(keep, text);
    Py_DECREF(text);
    return rc < 0 ? NULL : text;
}

static int read_part(PyObject *item, Part *part, Value **next, PyObject *keep) {
    /* item: (sql, rows, spec) as hold_parts made it */
    PyObject *rows = PyTuple_GET_ITEM(item, 1), *spec = PyTuple_GET_ITEM(item, 2);
    Py_ssize_t cols;
    Column *columns = NULL;
    part->sql = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(item, 0), &part->sql_len);
    if (part->sql == NULL) return -1;
    part->rows = PyTuple_GET_SIZE(rows);
    part->values = *next;
    if (spec != Py_None) {
        part->cols = cols = PyTuple_GET_SIZE(spec);
        columns = PyMem_Calloc((size_t)(cols ? cols : 1), sizeof(Column));
        if (columns == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (read_spec(spec, columns, cols) < 0) goto fail;
    } else {
        part->cols = cols = part->rows ? -1 : 0;
    }
    for (Py_ssize_t r = 0; r < part->rows; r++) {
        PyObject *row = PyTuple_GET_ITEM(rows, r);
        if (!PyTuple_Check(row)) {
            PyErr_Format(PyExc_TypeError, "row %zd is a %.100s, not a tuple", r, Py_TYPE(row)->tp_name);
            goto fail;
        }
        if (columns != NULL) {
            for (Py_ssize_t c = 0; c < cols; c++) {
                PyObject *obj = pick(row, &columns[c], keep, r);
                if (obj == NULL || read_value(obj, (*next)++) < 0) goto fail;
            }
            continue;
        }
        if (cols < 0) part->cols = cols = PyTuple_GET_SIZE(row);
        if (PyTuple_GET_SIZE(row) != cols) {
            PyErr_Format(PyExc_ValueError, "row %zd has %zd values, row 0 has %zd", r,
                         PyTuple_GET_SIZE(row), cols);
            goto fail;
        }
        for (Py_ssize_t c = 0; c < cols; c++) {
            if (read_value(PyTuple_GET_ITEM(row, c), (*next)++) < 0) goto fail;
        }
    }
    PyMem_Free(columns);
    return 0;
fail:
    PyMem_Free(columns);
    return -1;
}

/* (sql, tuple(rows), spec or None) triples holding a reference to every row for the
 * whole call, so nothing a value points into can go while the GIL is released */
static PyObject *hold_parts(PyObject *parts_list, Py_ssize_t *total) {
    if (!PyList_Check(parts_list)) {
        PyErr_SetString(PyExc_TypeError, "write() takes a list of (sql, rows[, spec]) tuples");
        return NULL;
    }
    const Py_ssize_t n = PyList_GET_SIZE(parts_list);
    PyObject *held = PyTuple_New(n);
    if (held == NULL) return NULL;
    *total = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *item = PyList_GET_ITEM(parts_list, k);
        const Py_ssize_t size = PyTuple_Check(item) ? PyTuple_GET_SIZE(item) : 0;
        PyObject *spec = size == 3 ? PyTuple_GET_ITEM(item, 2) : Py_None;
        if ((size != 2 && size != 3) || !PyUnicode_Check(PyTuple_GET_ITEM(item, 0)) ||
            !PyList_Check(PyTuple_GET_ITEM(item, 1)) || (spec != Py_None && !PyTuple_Check(spec))) {
            PyErr_Format(PyExc_TypeError, "part %zd is not a (str, list[, tuple]) tuple", k);
            Py_DECREF(held);
            return NULL;
        }
        PyObject *rows = PyList_AsTuple(PyTuple_GET_ITEM(item, 1));
        PyObject *triple = rows ? PyTuple_Pack(3, PyTuple_GET_ITEM(item, 0), rows, spec) : NULL;
        Py_XDECREF(rows);
        if (triple == NULL) {
            Py_DECREF(held);
            return NULL;
        }
        PyTuple_SET_ITEM(held, k, triple);
        if (spec != Py_None) {
            *total += PyTuple_GET_SIZE(rows) * PyTuple_GET_SIZE(spec);
            continue;
        }
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
    PyObject *keep = PyList_New(0); /* texts made by a column's conv, alive for the call */
    if (keep == NULL) rc = -1;
    for (Py_ssize_t k = 0; k < nparts && rc == 0; k++)
        rc = read_part(PyTuple_GET_ITEM(held, k), &parts[k], &next, keep);
    char err[512] = "";
    if (rc == 0) {
        Py_BEGIN_ALLOW_THREADS
        rc = run(self->db, self->cache, parts, nparts, err, sizeof err);
        Py_END_ALLOW_THREADS
        if (rc != 0) PyErr_SetString(BatchError, err[0] ? err : sqlite3_errstr(rc));
    } else if (rc == -2) {
        PyErr_NoMemory();
    }
    PyMem_Free(parts);
    PyMem_Free(values);
    Py_XDECREF(keep);
    Py_DECREF(held);
    if (rc != 0) return NULL;
    Py_RETURN_NONE;
}

static void writer_close_db(Writer *self) {
    if (self->db != NULL && self->owner == getpid()) {
        sqlite3 *db = self->db;
        Cached *cache = self->cache;
        Py_BEGIN_ALLOW_THREADS
        forget_all(cache);
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

/* Whether the sqlite3 module at path (_sqlite3's file) runs the same SQLite library
 * as this writer. Two copies of SQLite in one process (a Python whose _sqlite3 has
 * SQLite built in) each keep their own table of POSIX locks, and a close in one
 * drops the locks of the other: the store would then not use this writer. */
static PyObject *same_library(PyObject *Py_UNUSED(module), PyObject *path_obj) {
    PyObject *bytes;
    if (!PyUnicode_FSConverter(path_obj, &bytes)) return NULL;
    void *handle = dlopen(PyBytes_AS_STRING(bytes), RTLD_NOW | RTLD_NOLOAD);
    Py_DECREF(bytes);
    if (handle == NULL) Py_RETURN_FALSE;
    void *theirs = dlsym(handle, "sqlite3_libversion_number");
    dlclose(handle);
    return PyBool_FromLong(theirs != NULL && theirs == (void *)&sqlite3_libversion_number);
}

static PyMethodDef functions[] = {
    {"same_library", (PyCFunction)same_library, METH_O,
     "same_library(path) -> bool: whether the module at path uses this SQLite library."},
    {NULL, NULL, 0, NULL},
};

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
    .m_methods = functions,
};

PyMODINIT_FUNC PyInit__sqlite_batch(void) {
    if (PyType_Ready(&WriterType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    BatchError = PyErr_NewException("swarmlearn.store._sqlite_batch.Error", NULL, NULL);
    EmptyText = PyUnicode_FromString("");
    if (BatchError == NULL || EmptyText == NULL || PyModule_AddObjectRef(m, "Error", BatchError) < 0 ||
        PyModule_AddObjectRef(m, "Writer", (PyObject *)&WriterType) < 0 ||
        PyModule_AddIntConstant(m, "sqlite_version_number", sqlite3_libversion_number()) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
