/* The selection hot path in C: the numbers of learn/_armset.py's ArmSet (one
 * decision's candidates), computed in C arrays and scored for UCB1, Greedy /
 * Beta-mean and Thompson sampling.
 *
 * This is an optional accelerator: learn/_armset.py holds the same logic in
 * plain Python (PyArmSet) and is used when this module was not built. Both
 * give the same numbers, bit for bit (compiled without floating-point
 * contraction; tests/learn/test_armset.py compares them), except Thompson's
 * draws, which come from a different (but equally exact) sampler.
 *
 * arms() computes a decision's numbers straight from the statistics' tables
 * (contexts, transitions, n-grams): a handful of dict lookups per candidate,
 * no cache between decisions, so nothing can go stale. A decision is
 * memory-bound, so each arm is hashed once for its counts and its token. (A
 * memo of static bonuses per tail, as LearnedBonus.static keeps, was tried:
 * a worker's tail moves at every action, so it almost never hit.)
 *
 * pick() is arms() and the choice (UCB1, Greedy, Thompson) in one call, in a buffer of
 * its own: what the policies call at every decision (no ArmCore object is made).
 *
 * observe() and credit() are LearnedStats.observe's and .attribute's updates
 * (learn/stats.py holds the same code in Python; both leave the same tables). The
 * entries they add leave the cyclic GC (two floats under a key of strings: no cycle).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

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
/* Arms: the numbers of one decision's candidates, computed from the          */
/* statistics' tables in one pass. Nothing is cached between decisions, so   */
/* nothing can go stale: a decision costs a few dict lookups per candidate.  */
/* ArmCore holds them for Python (arms()); pick() computes them in a buffer  */
/* of its own and returns the choice (no object made, one call a decision).  */

typedef struct {
    Py_ssize_t n;
    double *N, *A, *B, *G, *TA, *TB, *W; /* n each, in one block */
    double total;
    double scale; /* the statistics' scale when computed */
    Py_ssize_t unvisited;
    PyObject *cands; /* the candidates (list or tuple), for the learned-order tie break */
} Arms;

typedef struct {
    PyObject_HEAD
    Arms a;      /* a.cands: owned */
    double *mem; /* the block of a's arrays */
} ArmCore;

static PyObject *s_contexts, *s_transitions, *s_ngrams3, *s_ngrams4, *s_scale, *s_start, *s_at,
    *s_actions, *s_targets, *s_sequences, *s_events_seen, *s_end_episode;

static void ArmCore_dealloc(ArmCore *self) {
    PyObject_GC_UnTrack(self);
    PyMem_Free(self->mem);
    Py_CLEAR(self->a.cands);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int ArmCore_traverse(ArmCore *self, visitproc visit, void *arg) {
    Py_VISIT(self->a.cands);
    return 0;
}

static int ArmCore_clear(ArmCore *self) {
    Py_CLEAR(self->a.cands);
    return 0;
}
/* [s, f] of `key` (whose hash is `hash`) in `table` (missing: 0, 0); -1 on error */
static int counts_known(PyObject *table, PyObject *key, Py_hash_t hash, double *s, double *f) {
    PyObject *c = _PyDict_GetItem_KnownHash(table, key, hash);
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

static int counts_of(PyObject *table, PyObject *key, double *s, double *f) {
    const Py_hash_t hash = PyObject_Hash(key);
    return hash == -1 ? -1 : counts_known(table, key, hash, s, f);
}

/* LearnedBonus._signal of `key` (steals the key): its confidence and value, computed as
 * the Python computes them; -1 on error */
static int signal_of(PyObject *table, PyObject *key, double scale, double prior, double *conf,
                     double *value) {
    double s, f;
    if (key == NULL) return -1;
    int rc = counts_of(table, key, &s, &f);
    Py_DECREF(key);
    if (rc < 0) return -1;
    *conf = *value = 0.0;
    s = s / scale;
    f = f / scale;
    const double n = s + f;
    if (n <= 0.0) return 0;
    *value = (s - f) / n;
    *conf = n / (n + prior);
    return 0;
}

/* LearnedBonus.static(tail, candidate): tw·conf·value of the transition plus nw·conf·value
 * of the 4-gram (or the 3-gram when the 4-gram is unknown); -1 on error */
static int static_bonus(PyObject *const t[4], PyObject *step, PyObject *tables[3],
                        double scale, double prior, double tw, double nw, double *out) {
    /* t[0..2]: the last three steps (START-padded), t[3]: the previous step or START */
    double tc, tv, gc, gv;
    if (signal_of(tables[0], PyTuple_Pack(2, t[3], step), scale, prior, &tc, &tv) < 0) return -1;
    if (signal_of(tables[2], PyTuple_Pack(4, t[0], t[1], t[2], step), scale, prior, &gc, &gv) < 0)
        return -1;
    if (!(gc > 0.0) &&
        signal_of(tables[1], PyTuple_Pack(3, t[1], t[2], step), scale, prior, &gc, &gv) < 0)
        return -1;
    *out = tw * tc * tv + nw * gc * gv;
    return 0;
}

/* the step token of a candidate: action@context, or the action alone (new reference) */
static PyObject *step_token(PyObject *name, PyObject *context) {
    if (PyUnicode_GET_LENGTH(context) == 0) {
        Py_INCREF(name);
        return name;
    }
    PyObject *head = PyUnicode_Concat(name, s_at);
    if (head == NULL) return NULL;
    PyObject *tok = PyUnicode_Concat(head, context);
    Py_DECREF(head);
    return tok;
}

/* the (name, context) strings of candidate `cand`: Candidate(Action(name, ...), context) */
static int cand_parts(PyObject *cand, PyObject **name, PyObject **context) {
    if (!PyTuple_Check(cand) || PyTuple_GET_SIZE(cand) < 2) goto bad;
    PyObject *action = PyTuple_GET_ITEM(cand, 0);
    if (!PyTuple_Check(action) || PyTuple_GET_SIZE(action) < 1) goto bad;
    *name = PyTuple_GET_ITEM(action, 0);
    *context = PyTuple_GET_ITEM(cand, 1);
    if (!PyUnicode_Check(*name) || !PyUnicode_Check(*context)) goto bad;
    return 0;
bad:
    PyErr_SetString(PyExc_TypeError, "arms: a candidate must be Candidate(Action(name, ...), context)");
    return -1;
}

static PyObject *stats_table(PyObject *stats, PyObject *attr) {
    PyObject *t = PyObject_GetAttr(stats, attr);
    if (t != NULL && !PyDict_Check(t)) {
        Py_DECREF(t);
        PyErr_SetString(PyExc_TypeError, "statistics: a table must be a dict");
        return NULL;
    }
    return t;
}

static PyTypeObject ArmCoreType;

#define MEMO_MAX 200000

/* memo[key] if present (borrowed), else NULL without an error */
static PyObject *memo_get(PyObject *memo, PyObject *key) { return PyDict_GetItemWithError(memo, key); }

static int memo_put(PyObject *memo, PyObject *key, PyObject *value) {
    if (PyDict_GET_SIZE(memo) >= MEMO_MAX) PyDict_Clear(memo); /* a pure memo: bounded */
    return PyDict_SetItem(memo, key, value);
}

/* the token of step (name, context), memoized under the key (context, name) (new reference) */
static PyObject *token_of(PyObject *memo, PyObject *name, PyObject *context) {
    PyObject *key = PyTuple_Pack(2, context, name);
    if (key == NULL) return NULL;
    PyObject *tok = memo_get(memo, key);
    if (tok != NULL) {
        Py_INCREF(tok);
    } else if (!PyErr_Occurred() && (tok = step_token(name, context)) != NULL &&
               memo_put(memo, key, tok) < 0) {
        Py_CLEAR(tok);
    }
    Py_DECREF(key);
    return tok;
}

/* the token of arm (context, name), memoized under the arm (whose hash is known) */
static PyObject *arm_token(PyObject *memo, PyObject *arm, Py_hash_t hash, PyObject *name,
                           PyObject *context) {
    PyObject *tok = _PyDict_GetItem_KnownHash(memo, arm, hash);
    if (tok != NULL) {
        Py_INCREF(tok);
        return tok;
    }
    if (PyErr_Occurred() || (tok = step_token(name, context)) == NULL) return NULL;
    if (memo_put(memo, arm, tok) < 0) Py_CLEAR(tok);
    return tok;
}

/* the token of one recent step: a token (str) itself, or an ActionEvent (new reference) */
#define EVENT_ACTION 7
#define EVENT_CONTEXT 12
static PyObject *step_of(PyObject *memo, PyObject *item) {
    if (PyUnicode_Check(item)) {
        Py_INCREF(item);
        return item;
    }
    if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) > EVENT_CONTEXT) {
        PyObject *name = PyTuple_GET_ITEM(item, EVENT_ACTION);
        PyObject *context = PyTuple_GET_ITEM(item, EVENT_CONTEXT);
        if (PyUnicode_Check(name) && PyUnicode_Check(context)) return token_of(memo, name, context);
    }
    PyErr_SetString(PyExc_TypeError, "arms: recent steps must be step tokens or ActionEvents");
    return NULL;
}


/* the constant arguments of arms() and pick(): w, tw, nw, cw, prior, den_inv */
static int read_consts(PyObject *const *args, double c[6]) {
    for (int j = 0; j < 6; j++) {
        c[j] = PyFloat_AsDouble(args[j]);
        if (c[j] == -1.0 && PyErr_Occurred()) return -1;
    }
    return 0;
}

/* a's arrays (zeroed, a->n each) filled with the numbers of candidates a->cands (a list or
 * tuple) after the recent steps `steps`, from the statistics as they are now; -1 on error */
static int fill_arms(PyObject *stats, PyObject *memo, const double c[6], PyObject *steps,
                     Arms *a) {
    const double w = c[0], tw = c[1], nw = c[2], cw = c[3], prior = c[4], den_inv = c[5];
    const int want_static = w != 0.0 && (tw != 0.0 || nw != 0.0);
    const Py_ssize_t n = a->n;
    PyObject **items = PySequence_Fast_ITEMS(a->cands);
    PyObject *contexts = NULL, *tables[3] = {NULL, NULL, NULL}, *scale_obj = NULL;
    PyObject *t[4] = {NULL, NULL, NULL, NULL}; /* owned */
    int result = -1;

    contexts = stats_table(stats, s_contexts);
    if (contexts == NULL) goto done;
    scale_obj = PyObject_GetAttr(stats, s_scale);
    if (scale_obj == NULL) goto done;
    const double scale = PyFloat_AsDouble(scale_obj);
    if (scale == -1.0 && PyErr_Occurred()) goto done;
    if (want_static) {
        if ((tables[0] = stats_table(stats, s_transitions)) == NULL) goto done;
        if ((tables[1] = stats_table(stats, s_ngrams3)) == NULL) goto done;
        if ((tables[2] = stats_table(stats, s_ngrams4)) == NULL) goto done;
        /* the last three steps, START-padded, and the previous step */
        const Py_ssize_t m = PySequence_Size(steps);
        if (m < 0) goto done;
        for (int j = 0; j < 3; j++) {
            const Py_ssize_t at = m - 3 + j;
            if (at < 0) {
                Py_INCREF(s_start);
                t[j] = s_start;
                continue;
            }
            PyObject *item = PySequence_GetItem(steps, at);
            if (item == NULL) goto done;
            t[j] = step_of(memo, item);
            Py_DECREF(item);
            if (t[j] == NULL) goto done;
        }
        t[3] = (m > 0 && PyUnicode_GET_LENGTH(t[2]) > 0) ? t[2] : s_start;
        Py_INCREF(t[3]);
    }
    a->total = 0.0;
    a->scale = scale;
    a->unvisited = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* the arm (context, name): its counts and its step token, both looked up with one
         * hash (few objects touched: a decision is memory-bound) */
        PyObject *name, *context;
        if (cand_parts(items[i], &name, &context) < 0) goto done;
        PyObject *arm = PyTuple_Pack(2, context, name);
        if (arm == NULL) goto done;
        const Py_hash_t hash = PyObject_Hash(arm);
        double s, f;
        int rc = hash == -1 ? -1 : counts_known(contexts, arm, hash, &s, &f);
        double bonus_w = 0.0;
        if (rc == 0 && w != 0.0) {
            double st = 0.0;
            if (want_static) {
                PyObject *step = arm_token(memo, arm, hash, name, context);
                rc = step == NULL ? -1 : static_bonus(t, step, tables, scale, prior, tw, nw, &st);
                Py_XDECREF(step);
            }
            /* w·(static/Σweights + cw·(s−f)/(n + prior·scale)/Σweights), as in Python */
            bonus_w = w * (st * den_inv + cw * (s - f) / (s + f + prior * scale) * den_inv);
        }
        Py_DECREF(arm);
        if (rc < 0) goto done;
        const double nn = s + f;
        a->N[i] = nn;
        a->total += nn;
        if (nn > 0.0) {
            a->A[i] = s / nn + bonus_w;
            a->B[i] = 1.0 / sqrt(nn);
        } else {
            a->unvisited += 1;
        }
        const double ts = s / scale, tf = f / scale;
        a->G[i] = (ts + 1.0) / (ts + tf + 2.0) + bonus_w;
        a->TA[i] = ts + 1.0;
        a->TB[i] = tf + 1.0;
        a->W[i] = bonus_w;
    }
    result = 0;
done:
    Py_XDECREF(contexts);
    for (int j = 0; j < 3; j++) Py_XDECREF(tables[j]);
    for (int j = 0; j < 4; j++) Py_XDECREF(t[j]);
    Py_XDECREF(scale_obj);
    return result;
}

/* a's seven arrays over one block of 7·n doubles */
static void point_arrays(Arms *a, double *mem) {
    const Py_ssize_t n = a->n;
    a->N = mem;
    a->A = mem + n;
    a->B = mem + 2 * n;
    a->G = mem + 3 * n;
    a->TA = mem + 4 * n;
    a->TB = mem + 5 * n;
    a->W = mem + 6 * n;
}

/* arms(stats, memo, w, tw, nw, cw, prior, den_inv, cands, steps) -> ArmCore
 * (the constant arguments first, so that a functools.partial can bind them)
 * steps: the worker's recent steps, oldest first (tokens or ActionEvents; the last 3 count);
 * memo: a dict the caller owns, for candidate keys and step tokens */
static PyObject *fast_arms(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError,
                        "arms(stats, memo, w, tw, nw, cw, prior, den_inv, cands, steps)");
        return NULL;
    }
    PyObject *stats = args[0], *memo = args[1];
    if (!PyDict_Check(memo)) {
        PyErr_SetString(PyExc_TypeError, "arms: memo must be a dict");
        return NULL;
    }
    double c[6];
    if (read_consts(args + 2, c) < 0) return NULL;
    PyObject *cands = PySequence_Fast(args[8], "arms: candidates must be a sequence");
    if (cands == NULL) return NULL;
    ArmCore *self = PyObject_GC_New(ArmCore, &ArmCoreType);
    if (self == NULL) {
        Py_DECREF(cands);
        return NULL;
    }
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(cands);
    self->a.cands = cands; /* owns the reference */
    self->a.n = n;
    self->a.total = 0.0;
    self->a.scale = 1.0;
    self->a.unvisited = 0;
    self->mem = PyMem_Calloc((size_t)(n > 0 ? n : 1) * 7, sizeof(double));
    PyObject_GC_Track(self);
    if (self->mem == NULL) {
        PyErr_NoMemory();
        Py_DECREF(self);
        return NULL;
    }
    point_arrays(&self->a, self->mem);
    if (fill_arms(stats, memo, c, args[9], &self->a) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* rank.get(name of candidate j, far); -1 on error */
static int rank_of(const Arms *a, PyObject *rank, Py_ssize_t j, Py_ssize_t far, Py_ssize_t *out) {
    PyObject *name, *context;
    if (cand_parts(PySequence_Fast_ITEMS(a->cands)[j], &name, &context) < 0) return -1;
    PyObject *r = PyDict_GetItemWithError(rank, name);
    if (r == NULL) {
        if (PyErr_Occurred()) return -1;
        *out = far;
        return 0;
    }
    *out = PyLong_AsSsize_t(r);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int check_rank(PyObject *rank) {
    if (rank != Py_None && !PyDict_Check(rank)) {
        PyErr_SetString(PyExc_TypeError, "rank must be a dict (action name -> position) or None");
        return -1;
    }
    return 0;
}

/* the best of v (or v + b·k): the first index, or, when several tie and `rank` is a
 * non-empty dict, the tied one first in the learned order (then in the listed order);
 * -1 on error */
static Py_ssize_t best_of(const Arms *a, const double *v, const double *b, double k,
                          PyObject *rank) {
    const Py_ssize_t n = a->n;
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
    if (ties > 1 && rank != Py_None && PyDict_GET_SIZE(rank) > 0) {
        const Py_ssize_t far = PyDict_GET_SIZE(rank);
        Py_ssize_t best_rank = PY_SSIZE_T_MAX;
        for (Py_ssize_t i = best; i < n; i++) {
            const double x = b ? v[i] + b[i] * k : v[i];
            if (x != top) continue;
            Py_ssize_t r;
            if (rank_of(a, rank, i, far, &r) < 0) return -1;
            if (r < best_rank) {
                best_rank = r;
                best = i;
            }
        }
    }
    return best;
}

/* the unvisited arm first in the learned order, then in the listed order; -1 on error */
static Py_ssize_t first_unvisited(const Arms *a, PyObject *rank) {
    const int ranked = rank != Py_None && PyDict_GET_SIZE(rank) > 0;
    const Py_ssize_t far = ranked ? PyDict_GET_SIZE(rank) : 0;
    Py_ssize_t best = 0, best_rank = PY_SSIZE_T_MAX;
    for (Py_ssize_t i = 0; i < a->n; i++) {
        if (a->N[i] != 0.0) continue;
        if (!ranked) return i;
        Py_ssize_t r;
        if (rank_of(a, rank, i, far, &r) < 0) return -1;
        if (r < best_rank) {
            best_rank = r;
            best = i;
        }
    }
    return best;
}

/* UCB1's choice: the first unvisited arm (learned order), else the best A + B·k with
 * k = c·√(ln(max(total/scale, 1))·scale) — UCB1Policy's rule; -1 on error */
static Py_ssize_t ucb1_of(const Arms *a, double c, PyObject *rank) {
    if (a->unvisited) return first_unvisited(a, rank);
    const double scale = a->scale, ratio = a->total / scale;
    const double k = c * sqrt(log(ratio > 1.0 ? ratio : 1.0) * scale);
    return best_of(a, a->A, a->B, k, rank);
}

/* the best Beta(TA, TB) draw + W */
static Py_ssize_t thompson_of(const Arms *a, Rng *r) {
    Py_ssize_t best = 0;
    double top = -INFINITY;
    for (Py_ssize_t i = 0; i < a->n; i++) {
        const double x = beta_draw(r, a->TA[i], a->TB[i]) + a->W[i];
        if (x > top) {
            top = x;
            best = i;
        }
    }
    return best;
}

static PyObject *index_or_null(Py_ssize_t i) { return i < 0 ? NULL : PyLong_FromSsize_t(i); }

/* ucb(k, rank) -> index of the best A + B·k (every arm must have been visited) */
static PyObject *ArmCore_ucb(ArmCore *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "ucb(k, rank)");
        return NULL;
    }
    double k = PyFloat_AsDouble(args[0]);
    if ((k == -1.0 && PyErr_Occurred()) || check_rank(args[1]) < 0) return NULL;
    return index_or_null(best_of(&self->a, self->a.A, self->a.B, k, args[1]));
}

/* ucb1(c, rank) -> the UCB1 choice (see ucb1_of) */
static PyObject *ArmCore_ucb1(ArmCore *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "ucb1(c, rank)");
        return NULL;
    }
    double c = PyFloat_AsDouble(args[0]);
    if ((c == -1.0 && PyErr_Occurred()) || check_rank(args[1]) < 0) return NULL;
    return index_or_null(ucb1_of(&self->a, c, args[1]));
}

/* greedy(rank) -> index of the best G */
static PyObject *ArmCore_greedy(ArmCore *self, PyObject *rank) {
    if (check_rank(rank) < 0) return NULL;
    return index_or_null(best_of(&self->a, self->a.G, NULL, 0.0, rank));
}

/* first_unvisited(rank) -> the unvisited arm first in the learned order, then listed order */
static PyObject *ArmCore_first_unvisited(ArmCore *self, PyObject *rank) {
    if (check_rank(rank) < 0) return NULL;
    return index_or_null(first_unvisited(&self->a, rank));
}

static int check_rng(PyObject *rng) {
    if (!PyObject_TypeCheck(rng, &RngType)) {
        PyErr_SetString(PyExc_TypeError, "thompson() needs a swarmlearn.learn._fast.Rng");
        return -1;
    }
    return 0;
}

/* thompson(rng) -> index of the best Beta(TA, TB) draw + W */
static PyObject *ArmCore_thompson(ArmCore *self, PyObject *rng) {
    if (check_rng(rng) < 0) return NULL;
    return PyLong_FromSsize_t(thompson_of(&self->a, (Rng *)rng));
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

/* ucb_scores(k) -> list: A + B·k */
static PyObject *ArmCore_ucb_scores(ArmCore *self, PyObject *arg) {
    double k = PyFloat_AsDouble(arg);
    if (k == -1.0 && PyErr_Occurred()) return NULL;
    return to_list(self->a.A, self->a.B, k, self->a.n);
}

#define LIST_GETTER(NAME)                                                       \
    static PyObject *ArmCore_get_##NAME(ArmCore *self, void *Py_UNUSED(c)) {   \
        return to_list(self->a.NAME, NULL, 0.0, self->a.n);                     \
    }
LIST_GETTER(N)
LIST_GETTER(A)
LIST_GETTER(B)
LIST_GETTER(G)
LIST_GETTER(TA)
LIST_GETTER(TB)
LIST_GETTER(W)

static PyObject *ArmCore_get_total(ArmCore *self, void *Py_UNUSED(c)) {
    return PyFloat_FromDouble(self->a.total);
}
static PyObject *ArmCore_get_unvisited(ArmCore *self, void *Py_UNUSED(c)) {
    return PyLong_FromSsize_t(self->a.unvisited);
}
static PyObject *ArmCore_get_cands(ArmCore *self, void *Py_UNUSED(c)) {
    Py_INCREF(self->a.cands);
    return self->a.cands;
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
    {"cands", (getter)ArmCore_get_cands, NULL, "the candidates", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef ArmCore_methods[] = {
    {"ucb", (PyCFunction)(void (*)(void))ArmCore_ucb, METH_FASTCALL,
     "Index of the best A + B*k (ties: learned order)."},
    {"ucb1", (PyCFunction)(void (*)(void))ArmCore_ucb1, METH_FASTCALL,
     "UCB1's choice: first unvisited, else the best A + B*k."},
    {"ucb_scores", (PyCFunction)ArmCore_ucb_scores, METH_O, "A + B*k as a list."},
    {"greedy", (PyCFunction)ArmCore_greedy, METH_O, "Index of the best G (ties: learned order)."},
    {"first_unvisited", (PyCFunction)ArmCore_first_unvisited, METH_O,
     "Index of the first unvisited arm in the learned order."},
    {"thompson", (PyCFunction)ArmCore_thompson, METH_O, "Index of the best Beta draw + W."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ArmCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "swarmlearn.learn._fast.ArmCore",
    .tp_doc = "The numbers of one decision's candidates (made by arms()).",
    .tp_basicsize = sizeof(ArmCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)ArmCore_dealloc,
    .tp_traverse = (traverseproc)ArmCore_traverse,
    .tp_clear = (inquiry)ArmCore_clear,
    .tp_methods = ArmCore_methods,
    .tp_getset = ArmCore_getset,
};

/* pick(stats, memo, w, tw, nw, cw, prior, den_inv, kind, arg, cands, steps, rank) -> int
 * arms(...) and the choice in one call, without an ArmCore: kind 0 is UCB1 (arg: c),
 * 1 Greedy / the Beta mean (arg unused), 2 Thompson (arg: an Rng; rank unused). The same
 * numbers and the same choice as arms(...).ucb1(c, rank) / .greedy(rank) / .thompson(rng).
 * (the constants first, so that a functools.partial can bind them) */
#define PICK_STACK 32
static PyObject *fast_pick(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 13) {
        PyErr_SetString(PyExc_TypeError, "pick(stats, memo, w, tw, nw, cw, prior, den_inv, "
                                         "kind, arg, cands, steps, rank)");
        return NULL;
    }
    PyObject *stats = args[0], *memo = args[1], *arg = args[9], *rank = args[12];
    if (!PyDict_Check(memo)) {
        PyErr_SetString(PyExc_TypeError, "pick: memo must be a dict");
        return NULL;
    }
    double c[6];
    if (read_consts(args + 2, c) < 0) return NULL;
    const long kind = PyLong_AsLong(args[8]);
    if (kind == -1 && PyErr_Occurred()) return NULL;
    double k = 0.0;
    if (kind == 0) {
        k = PyFloat_AsDouble(arg);
        if (k == -1.0 && PyErr_Occurred()) return NULL;
    } else if (kind == 2) {
        if (check_rng(arg) < 0) return NULL;
    } else if (kind != 1) {
        PyErr_SetString(PyExc_ValueError, "pick: kind must be 0 (UCB1), 1 (Greedy) or 2 (Thompson)");
        return NULL;
    }
    if (kind != 2 && check_rank(rank) < 0) return NULL;
    PyObject *cands = PySequence_Fast(args[10], "pick: candidates must be a sequence");
    if (cands == NULL) return NULL;
    Arms a = {.n = PySequence_Fast_GET_SIZE(cands), .cands = cands};
    double stack[7 * PICK_STACK];
    double *mem = stack;
    if (a.n > PICK_STACK && (mem = PyMem_Malloc((size_t)a.n * 7 * sizeof(double))) == NULL) {
        Py_DECREF(cands);
        return PyErr_NoMemory();
    }
    memset(mem, 0, (size_t)a.n * 7 * sizeof(double));
    point_arrays(&a, mem);
    Py_ssize_t best = -1;
    if (fill_arms(stats, memo, c, args[11], &a) == 0) {
        best = kind == 0   ? ucb1_of(&a, k, rank)
               : kind == 1 ? best_of(&a, a.G, NULL, 0.0, rank)
                           : thompson_of(&a, (Rng *)arg);
    }
    if (mem != stack) PyMem_Free(mem);
    Py_DECREF(cands);
    return index_or_null(best);
}


/* stats.events_seen += *seen; *seen = 0 */
static int add_seen(PyObject *stats, long long *seen) {
    PyObject *cur = PyObject_GetAttr(stats, s_events_seen);
    if (cur == NULL) return -1;
    PyObject *inc = PyLong_FromLongLong(*seen);
    PyObject *sum = inc ? PyNumber_Add(cur, inc) : NULL;
    Py_DECREF(cur);
    Py_XDECREF(inc);
    if (sum == NULL) return -1;
    int rc = PyObject_SetAttr(stats, s_events_seen, sum);
    Py_DECREF(sum);
    if (rc == 0) *seen = 0;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The statistics' hot updates (learn/stats.py keeps the same code in Python; */
/* tests/learn/test_stats.py checks both give the same tables, bit for bit). */

/* A new table entry out of the cyclic GC's way: its count list holds two floats and its
 * key is a string or a tuple of strings, so neither can be part of a reference cycle (a
 * long run's tables hold many thousands of entries; every collection walked them all) */
static void untrack_entry(PyObject *key, PyObject *c) {
    if (PyTuple_CheckExact(key) && PyObject_GC_IsTracked(key)) {
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(key); j++)
            if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(key, j))) goto list;
        PyObject_GC_UnTrack(key);
    }
list:
    if (PyObject_GC_IsTracked(c)) PyObject_GC_UnTrack(c);
}

/* table[key][i] += w, the entry made as [0.0, 0.0] first if missing; -1 on error */
static int bump(PyObject *table, PyObject *key, int i, double w) {
    PyObject *c = PyDict_GetItemWithError(table, key);
    if (c == NULL) {
        if (PyErr_Occurred()) return -1;
        c = PyList_New(2);
        if (c == NULL) return -1;
        PyList_SET_ITEM(c, 0, PyFloat_FromDouble(0.0));
        PyList_SET_ITEM(c, 1, PyFloat_FromDouble(0.0));
        if (PyList_GET_ITEM(c, 0) == NULL || PyList_GET_ITEM(c, 1) == NULL ||
            PyDict_SetItem(table, key, c) < 0) {
            Py_DECREF(c);
            return -1;
        }
        untrack_entry(key, c);
        Py_DECREF(c); /* the table holds it */
    } else if (!PyList_Check(c) || PyList_GET_SIZE(c) != 2) {
        PyErr_SetString(PyExc_TypeError, "statistics: a count must be a [success, failure] list");
        return -1;
    }
    PyObject *old = PyList_GET_ITEM(c, i);
    double v = PyFloat_AsDouble(old);
    if (v == -1.0 && PyErr_Occurred()) return -1;
    PyObject *nv = PyFloat_FromDouble(v + w);
    if (nv == NULL) return -1;
    return PyList_SetItem(c, i, nv); /* steals nv, releases old */
}

/* one ActionEvent into the tables: LearnedStats.observe_action's bumps and sequence step */
static int observe_one(PyObject *ev, double w, PyObject *actions, PyObject *targets,
                       PyObject *contexts, PyObject *sequences, PyObject *tokens) {
    if (PyTuple_GET_SIZE(ev) <= EVENT_CONTEXT) goto bad;
    PyObject *session = PyTuple_GET_ITEM(ev, 1), *worker = PyTuple_GET_ITEM(ev, 6);
    PyObject *name = PyTuple_GET_ITEM(ev, EVENT_ACTION), *target = PyTuple_GET_ITEM(ev, 8);
    PyObject *result = PyTuple_GET_ITEM(ev, 10), *context = PyTuple_GET_ITEM(ev, EVENT_CONTEXT);
    if (!PyUnicode_Check(name) || !PyUnicode_Check(target) || !PyUnicode_Check(context) ||
        !PyTuple_Check(result) || PyTuple_GET_SIZE(result) < 1)
        goto bad;
    int ok = PyObject_IsTrue(PyTuple_GET_ITEM(result, 0));
    if (ok < 0) return -1;
    const int i = ok ? 0 : 1;
    if (bump(actions, name, i, w) < 0) return -1;
    PyObject *key;
    if (PyUnicode_GET_LENGTH(target) > 0) { /* (name, "") would only repeat the actions table */
        if ((key = PyTuple_Pack(2, name, target)) == NULL) return -1;
        int rc = bump(targets, key, i, w);
        Py_DECREF(key);
        if (rc < 0) return -1;
    }
    if ((key = PyTuple_Pack(2, context, name)) == NULL) return -1;
    int rc = bump(contexts, key, i, w);
    Py_DECREF(key);
    if (rc < 0) return -1;
    if ((key = PyTuple_Pack(2, session, worker)) == NULL) return -1;
    PyObject *seq = PyDict_GetItemWithError(sequences, key);
    if (seq == NULL) {
        if (PyErr_Occurred() || (seq = PyList_New(0)) == NULL) {
            Py_DECREF(key);
            return -1;
        }
        rc = PyDict_SetItem(sequences, key, seq);
        Py_DECREF(seq); /* the dict holds it */
        if (rc < 0) {
            Py_DECREF(key);
            return -1;
        }
    }
    Py_DECREF(key);
    if (!PyList_Check(seq)) {
        PyErr_SetString(PyExc_TypeError, "statistics: a step sequence must be a list");
        return -1;
    }
    PyObject *tok = token_of(tokens, name, context);
    if (tok == NULL) return -1;
    rc = PyList_Append(seq, tok);
    Py_DECREF(tok);
    return rc;
bad:
    PyErr_SetString(PyExc_TypeError, "observe: an ActionEvent must be an ActionEvent tuple");
    return -1;
}

/* observe(stats, tokens, batch, action_type, ended_type) -> None
 * LearnedStats.observe in one call: each ActionEvent bumps the tables, each EpisodeEnded
 * goes to stats.end_episode (Python; it moves the scale, read again after it) */
static PyObject *fast_observe(PyObject *Py_UNUSED(module), PyObject *const *args,
                              Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "observe(stats, tokens, batch, action_type, ended_type)");
        return NULL;
    }
    PyObject *stats = args[0], *tokens = args[1];
    PyObject *action_type = args[3], *ended_type = args[4];
    if (!PyDict_Check(tokens) || !PyType_Check(action_type) || !PyType_Check(ended_type)) {
        PyErr_SetString(PyExc_TypeError, "observe: tokens must be a dict, the types types");
        return NULL;
    }
    PyObject *batch = PySequence_Fast(args[2], "observe: the batch must be a sequence");
    if (batch == NULL) return NULL;
    PyObject *actions = NULL, *targets = NULL, *contexts = NULL, *sequences = NULL;
    PyObject *result = NULL;
    long long seen = 0;
    double w = 0.0;
    int have_w = 0;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(batch);
    PyObject **items = PySequence_Fast_ITEMS(batch);
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *ev = items[j];
        if (PyObject_TypeCheck(ev, (PyTypeObject *)action_type)) {
            if (actions == NULL) {
                if ((actions = stats_table(stats, s_actions)) == NULL ||
                    (targets = stats_table(stats, s_targets)) == NULL ||
                    (contexts = stats_table(stats, s_contexts)) == NULL ||
                    (sequences = stats_table(stats, s_sequences)) == NULL)
                    goto done;
            }
            if (!have_w) {
                PyObject *sc = PyObject_GetAttr(stats, s_scale);
                if (sc == NULL) goto done;
                w = PyFloat_AsDouble(sc);
                Py_DECREF(sc);
                if (w == -1.0 && PyErr_Occurred()) goto done;
                have_w = 1;
            }
            seen++;
            if (observe_one(ev, w, actions, targets, contexts, sequences, tokens) < 0) goto done;
        } else if (PyObject_TypeCheck(ev, (PyTypeObject *)ended_type)) {
            if (seen && add_seen(stats, &seen) < 0) goto done;
            PyObject *r = PyObject_CallMethodOneArg(stats, s_end_episode, ev);
            if (r == NULL) goto done;
            Py_DECREF(r);
            have_w = 0; /* the episode end moved the scale: read it (and the tables) again */
            Py_CLEAR(actions);
            Py_CLEAR(targets);
            Py_CLEAR(contexts);
            Py_CLEAR(sequences);
        }
    }
    if (seen && add_seen(stats, &seen) < 0) goto done;
    result = Py_None;
    Py_INCREF(result);
done:
    if (result == NULL && seen) { /* count what was applied before the error */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        if (add_seen(stats, &seen) < 0) PyErr_Clear();
        PyErr_Restore(type, value, tb);
    }
    Py_XDECREF(actions);
    Py_XDECREF(targets);
    Py_XDECREF(contexts);
    Py_XDECREF(sequences);
    Py_DECREF(batch);
    return result;
}

/* credit(transitions, ngrams3, ngrams4, sequences, ws, wf) -> None
 * LearnedStats.attribute's crediting: every step of every sequence adds [ws, wf] to its
 * transition, 3-gram and 4-gram (new entries are [ws, wf], in the same order as Python) */
static int credit_key(PyObject *table, PyObject *key, PyObject *ws, PyObject *wf, double s,
                      double f) {
    if (key == NULL) return -1;
    PyObject *c = PyDict_GetItemWithError(table, key);
    int rc = 0;
    if (c == NULL) {
        if (PyErr_Occurred() || (c = PyList_New(2)) == NULL) {
            rc = -1;
        } else {
            Py_INCREF(ws);
            Py_INCREF(wf);
            PyList_SET_ITEM(c, 0, ws);
            PyList_SET_ITEM(c, 1, wf);
            rc = PyDict_SetItem(table, key, c);
            if (rc == 0) untrack_entry(key, c);
            Py_DECREF(c);
        }
    } else if (!PyList_Check(c) || PyList_GET_SIZE(c) != 2) {
        PyErr_SetString(PyExc_TypeError, "statistics: a count must be a [success, failure] list");
        rc = -1;
    } else {
        for (int k = 0; k < 2 && rc == 0; k++) {
            double v = PyFloat_AsDouble(PyList_GET_ITEM(c, k));
            PyObject *nv = (v == -1.0 && PyErr_Occurred()) ? NULL
                                                            : PyFloat_FromDouble(v + (k ? f : s));
            rc = nv ? PyList_SetItem(c, k, nv) : -1;
        }
    }
    Py_DECREF(key);
    return rc;
}

static PyObject *fast_credit(PyObject *Py_UNUSED(module), PyObject *const *args,
                             Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "credit(transitions, ngrams3, ngrams4, sequences, ws, wf)");
        return NULL;
    }
    PyObject *trans = args[0], *g3 = args[1], *g4 = args[2], *ws = args[4], *wf = args[5];
    if (!PyDict_Check(trans) || !PyDict_Check(g3) || !PyDict_Check(g4) || !PyFloat_Check(ws) ||
        !PyFloat_Check(wf)) {
        PyErr_SetString(PyExc_TypeError, "credit: three dicts, sequences and two floats");
        return NULL;
    }
    const double s = PyFloat_AS_DOUBLE(ws), f = PyFloat_AS_DOUBLE(wf);
    PyObject *it = PyObject_GetIter(args[3]);
    if (it == NULL) return NULL;
    PyObject *seq;
    while ((seq = PyIter_Next(it)) != NULL) {
        PyObject *steps = PySequence_Fast(seq, "credit: a sequence of steps");
        Py_DECREF(seq);
        if (steps == NULL) goto fail;
        PyObject *p3 = s_start, *p2 = s_start, *p1 = s_start; /* borrowed */
        const Py_ssize_t m = PySequence_Fast_GET_SIZE(steps);
        PyObject **st = PySequence_Fast_ITEMS(steps);
        for (Py_ssize_t j = 0; j < m; j++) {
            PyObject *a = st[j];
            if (credit_key(trans, PyTuple_Pack(2, p1, a), ws, wf, s, f) < 0 ||
                credit_key(g3, PyTuple_Pack(3, p2, p1, a), ws, wf, s, f) < 0 ||
                credit_key(g4, PyTuple_Pack(4, p3, p2, p1, a), ws, wf, s, f) < 0) {
                Py_DECREF(steps);
                goto fail;
            }
            p3 = p2;
            p2 = p1;
            p1 = a;
        }
        Py_DECREF(steps);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
fail:
    Py_DECREF(it);
    return NULL;
}

static PyMethodDef fast_functions[] = {
    {"arms", (PyCFunction)(void (*)(void))fast_arms, METH_FASTCALL,
     "arms(stats, memo, w, tw, nw, cw, prior, den_inv, cands, steps) -> ArmCore"},
    {"pick", (PyCFunction)(void (*)(void))fast_pick, METH_FASTCALL,
     "pick(stats, memo, w, tw, nw, cw, prior, den_inv, kind, arg, cands, steps, rank) -> int"},
    {"observe", (PyCFunction)(void (*)(void))fast_observe, METH_FASTCALL,
     "observe(stats, tokens, batch, action_type, ended_type): LearnedStats.observe"},
    {"credit", (PyCFunction)(void (*)(void))fast_credit, METH_FASTCALL,
     "credit(transitions, ngrams3, ngrams4, sequences, ws, wf): attribute's crediting"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastmodule = {
    PyModuleDef_HEAD_INIT,
    .m_name = "swarmlearn.learn._fast",
    .m_doc = "C accelerator for the selection hot path (optional; see learn/_armset.py).",
    .m_size = -1,
    .m_methods = fast_functions,
};

PyMODINIT_FUNC PyInit__fast(void) {
    if (PyType_Ready(&RngType) < 0 || PyType_Ready(&ArmCoreType) < 0) return NULL;
    s_contexts = PyUnicode_InternFromString("contexts");
    s_transitions = PyUnicode_InternFromString("transitions");
    s_ngrams3 = PyUnicode_InternFromString("ngrams3");
    s_ngrams4 = PyUnicode_InternFromString("ngrams4");
    s_scale = PyUnicode_InternFromString("_scale");
    s_start = PyUnicode_InternFromString("^");
    s_at = PyUnicode_InternFromString("@");
    s_actions = PyUnicode_InternFromString("actions");
    s_targets = PyUnicode_InternFromString("targets");
    s_sequences = PyUnicode_InternFromString("_sequences");
    s_events_seen = PyUnicode_InternFromString("events_seen");
    s_end_episode = PyUnicode_InternFromString("end_episode");
    if (!s_contexts || !s_transitions || !s_ngrams3 || !s_ngrams4 || !s_scale || !s_start ||
        !s_at || !s_actions || !s_targets || !s_sequences ||
        !s_events_seen || !s_end_episode)
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
