/* Compiled fast path of `inferops serve`: price and enrich OTLP trace export requests on the raw
 * protobuf bytes, never building protobuf objects.
 *
 * The Python path (enrich.Enricher) is the reference; this module reproduces it for the common case
 * and hands everything else back to Python:
 *   - per distinct span *shape* (non-varying wanted attributes + resource + openlit/status flags) it
 *     calls back once to build the plan (provider, model, attribution, price sets, encoded blocks);
 *   - plans marked "slow" (dated prices or discounts, spans priced in process ...) and spans with
 *     unusual values (string token counts ...) are processed per span by Python on the span's bytes;
 *   - anything malformed or unusual in the request raises ValueError (Decline for "unusual but maybe
 *     valid"): the caller then runs the Python path, which gives the exact answer (incl. 400 texts).
 * The validation is at least as strict as upb's decoder (UTF-8 of proto3 strings, wire types,
 * lengths), so a request this module accepts is one the Python path accepts too.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

static PyObject *Decline;

/* ------------------------------------------------------------------ buffers */
typedef struct { uint8_t *d; Py_ssize_t len, cap; } Buf;

static int buf_reserve(Buf *b, Py_ssize_t n) {
    if (b->len + n <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    uint8_t *d = PyMem_Realloc(b->d, cap);
    if (!d) { PyErr_NoMemory(); return -1; }
    b->d = d; b->cap = cap; return 0;
}
static inline int buf_put(Buf *b, const void *p, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->d + b->len, p, n); b->len += n; return 0;
}
static inline int varint_size(uint64_t v) { int n = 1; while (v >= 0x80) { v >>= 7; n++; } return n; }
static inline int put_varint_raw(uint8_t *o, uint64_t v) {
    int n = 0; while (v >= 0x80) { o[n++] = (uint8_t)(v | 0x80); v >>= 7; } o[n++] = (uint8_t)v; return n;
}
static inline int buf_varint(Buf *b, uint64_t v) {
    if (buf_reserve(b, 10) < 0) return -1;
    b->len += put_varint_raw(b->d + b->len, v); return 0;
}
static void buf_free(Buf *b) { PyMem_Free(b->d); b->d = NULL; b->len = b->cap = 0; }

/* Open a length-delimited field whose length is written when it is closed. */
static int buf_open(Buf *b, uint8_t tag, Py_ssize_t *mark) {
    if (buf_reserve(b, 6) < 0) return -1;
    b->d[b->len++] = tag; *mark = b->len; b->len += 5; return 0;
}
static void buf_close(Buf *b, Py_ssize_t mark) {
    Py_ssize_t L = b->len - mark - 5;
    uint8_t tmp[10]; int k = put_varint_raw(tmp, (uint64_t)L);
    memmove(b->d + mark + k, b->d + mark + 5, L);
    memcpy(b->d + mark, tmp, k);
    b->len = mark + k + L;
}

/* ------------------------------------------------------------------ reading */
#define BAD(msg) do { PyErr_SetString(PyExc_ValueError, msg); return -1; } while (0)
#define DECLINE(msg) do { PyErr_SetString(Decline, msg); return -1; } while (0)

typedef struct { const uint8_t *p, *end; } Cur;

static inline int rd_varint(Cur *c, uint64_t *out) {
    uint64_t v = 0; int shift = 0;
    while (c->p < c->end) {
        uint8_t byte = *c->p++;
        if (shift == 63 && byte > 1) BAD("varint overflow");
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) { *out = v; return 0; }
        shift += 7;
        if (shift > 63) BAD("varint too long");
    }
    BAD("truncated varint");
}
static inline int rd_tag(Cur *c, uint32_t *field, int *wt) {
    uint64_t t;
    if (rd_varint(c, &t) < 0) return -1;
    if (t > 0xffffffffu || (t >> 3) == 0) BAD("invalid field tag");
    *field = (uint32_t)(t >> 3); *wt = (int)(t & 7); return 0;
}
static inline int rd_len(Cur *c, Cur *sub) {
    uint64_t n;
    if (rd_varint(c, &n) < 0) return -1;
    if (n > (uint64_t)(c->end - c->p)) BAD("length past the end of the message");
    sub->p = c->p; sub->end = c->p + n; c->p += n; return 0;
}
static int skip_value(Cur *c, int wt) {
    uint64_t v; Cur s;
    switch (wt) {
    case 0: return rd_varint(c, &v);
    case 1: if (c->end - c->p < 8) BAD("truncated fixed64"); c->p += 8; return 0;
    case 2: return rd_len(c, &s);
    case 5: if (c->end - c->p < 4) BAD("truncated fixed32"); c->p += 4; return 0;
    case 3: case 4: DECLINE("group wire type");
    default: BAD("invalid wire type");
    }
}

static int utf8_ok(const uint8_t *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        while (i + 8 <= n) { uint64_t w; memcpy(&w, s + i, 8); if (w & 0x8080808080808080ull) break; i += 8; }
        if (i >= n) break;
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i+1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n || (s[i+1] & 0xC0) != 0x80 || (s[i+2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && s[i+1] < 0xA0) return 0;
            if (c == 0xED && s[i+1] > 0x9F) return 0;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n || (s[i+1] & 0xC0) != 0x80 || (s[i+2] & 0xC0) != 0x80 || (s[i+3] & 0xC0) != 0x80) return 0;
            if (c == 0xF0 && s[i+1] < 0x90) return 0;
            if (c == 0xF4 && s[i+1] > 0x8F) return 0;
            i += 4;
        } else return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ schema validation */
enum { K_VARINT, K_F64, K_F32, K_STR, K_BYTES, K_MSG };
enum { T_ANY, T_ARRAY, T_KVLIST, T_KV, T_EVENT, T_LINK, T_STATUS, T_SCOPE, T_RESOURCE, T_ENTITYREF, T_N };
typedef struct { uint8_t kind, sub; } FieldDef;
#define MAXF 8
static FieldDef SCHEMA[T_N][MAXF];  /* index = field number (0 unused); kind 0xff = unknown */

static void schema_init(void) {
    memset(SCHEMA, 0xff, sizeof SCHEMA);
#define F(t, n, k, s) SCHEMA[t][n].kind = k, SCHEMA[t][n].sub = s
    F(T_ANY, 1, K_STR, 0); F(T_ANY, 2, K_VARINT, 0); F(T_ANY, 3, K_VARINT, 0); F(T_ANY, 4, K_F64, 0);
    F(T_ANY, 5, K_MSG, T_ARRAY); F(T_ANY, 6, K_MSG, T_KVLIST); F(T_ANY, 7, K_BYTES, 0);
    F(T_ARRAY, 1, K_MSG, T_ANY); F(T_KVLIST, 1, K_MSG, T_KV);
    F(T_KV, 1, K_STR, 0); F(T_KV, 2, K_MSG, T_ANY);
    F(T_EVENT, 1, K_F64, 0); F(T_EVENT, 2, K_STR, 0); F(T_EVENT, 3, K_MSG, T_KV); F(T_EVENT, 4, K_VARINT, 0);
    F(T_LINK, 1, K_BYTES, 0); F(T_LINK, 2, K_BYTES, 0); F(T_LINK, 3, K_STR, 0); F(T_LINK, 4, K_MSG, T_KV);
    F(T_LINK, 5, K_VARINT, 0); F(T_LINK, 6, K_F32, 0);
    F(T_STATUS, 2, K_STR, 0); F(T_STATUS, 3, K_VARINT, 0);
    F(T_SCOPE, 1, K_STR, 0); F(T_SCOPE, 2, K_STR, 0); F(T_SCOPE, 3, K_MSG, T_KV); F(T_SCOPE, 4, K_VARINT, 0);
    F(T_RESOURCE, 1, K_MSG, T_KV); F(T_RESOURCE, 2, K_VARINT, 0); F(T_RESOURCE, 3, K_MSG, T_ENTITYREF);
    F(T_ENTITYREF, 1, K_STR, 0); F(T_ENTITYREF, 2, K_STR, 0); F(T_ENTITYREF, 3, K_STR, 0); F(T_ENTITYREF, 4, K_STR, 0);
#undef F
}

static const int WT_OF[] = {0, 1, 5, 2, 2, 2};

static int validate(Cur c, int type, int depth);

/* Validate one field's value whose tag was read; `kind` from the schema (0xff = unknown). */
static int validate_value(Cur *c, uint8_t kind, uint8_t sub, int wt, int depth) {
    if (kind == 0xff) return skip_value(c, wt);
    if (WT_OF[kind] != wt) DECLINE("unexpected wire type for a known field");
    if (kind == K_STR || kind == K_BYTES || kind == K_MSG) {
        Cur s;
        if (rd_len(c, &s) < 0) return -1;
        if (kind == K_STR && !utf8_ok(s.p, s.end - s.p)) BAD("invalid UTF-8 in a string field");
        if (kind == K_MSG) return validate(s, sub, depth + 1);
        return 0;
    }
    return skip_value(c, wt);
}

static int validate(Cur c, int type, int depth) {
    if (depth > 48) DECLINE("nesting too deep");
    while (c.p < c.end) {
        uint32_t f; int wt;
        if (rd_tag(&c, &f, &wt) < 0) return -1;
        uint8_t kind = 0xff, sub = 0;
        if (f < MAXF) { kind = SCHEMA[type][f].kind; sub = SCHEMA[type][f].sub; }
        if (validate_value(&c, kind, sub, wt, depth) < 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ key table */
/* codes of wanted span attributes */
enum {
    C_SHAPE = 1, C_IGNORE,                      /* shape; varying but not read here */
    C_IN0, C_IN1, C_OUT0, C_OUT1, C_CR0, C_CR1, C_CW0, C_CW1, C_CW2, C_RS0, C_RS1, C_RS2,
    C_COST, C_NCODES
};
#define NSLOTS (C_NCODES - C_IN0)      /* varying slots read: tokens + existing cost */

typedef struct { char *key; Py_ssize_t len; uint64_t hash; int code; } KeyEnt;

static inline uint64_t hash_bytes(const uint8_t *p, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)n;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) { uint64_t w; memcpy(&w, p + i, 8); h = (h ^ w) * 0x100000001b3ull; h ^= h >> 29; }
    for (; i < n; i++) { h = (h ^ p[i]) * 0x100000001b3ull; }
    h ^= h >> 32; h *= 0x9E3779B97F4A7C15ull; h ^= h >> 29;
    return h;
}

/* ------------------------------------------------------------------ plans */
typedef struct {
    int has_in, has_out;
    double in, out, cache_read, cw5, cw1h, reasoning, per_request;
} PriceSetC;

#define MAXTIERS 8
typedef struct Plan {
    PyObject *obj;           /* the Python plan object */
    int mode;                /* 0 skip, 1 fast, 2 slow */
    int metrics_recorded, cache_exclusive, priced;
    double discount;         /* percent; 0 = none */
    int ntiers;
    double thresholds[MAXTIERS];
    PriceSetC sets[MAXTIERS + 1];   /* [0] no long-context tier; [i+1] thresholds[i] */
    PyObject *blocks[12];    /* [status*4 + source*2 + has_total] */
    uint64_t gen; int group;
} Plan;

typedef struct { uint8_t *key; Py_ssize_t len; uint64_t hash; Plan *plan; } PlanEnt;

#define PLAN_SLOTS 16384
#define PLAN_MAX 4096

/* ------------------------------------------------------------------ per-span samples */
typedef struct {
    int32_t group; uint8_t status; uint8_t has_total;
    int64_t tok[5]; double comp[8]; double total, savings;
    uint8_t tid[16], sid[8];
} Rec;

typedef struct {
    PyObject_HEAD
    Rec *recs; Py_ssize_t n, cap;
} Samples;

/* ------------------------------------------------------------------ scanner */
typedef struct {
    PyObject_HEAD
    KeyEnt *keys; int nkeys_slots;
    PyObject *resource_cb, *plan_cb, *slow_cb;
    int reprice;
    PyObject *mr_kv, *cost_prefix, *total_prefix, *comp_prefix[8];
    PlanEnt *plans; int nplans;
    uint64_t gen;
} Scanner;

static void plan_free(Plan *p) {
    if (!p) return;
    Py_XDECREF(p->obj);
    for (int i = 0; i < 12; i++) Py_XDECREF(p->blocks[i]);
    PyMem_Free(p);
}
static void plans_clear(Scanner *s) {
    if (!s->plans) return;
    for (int i = 0; i < PLAN_SLOTS; i++) {
        if (s->plans[i].key) { PyMem_Free(s->plans[i].key); plan_free(s->plans[i].plan); }
    }
    memset(s->plans, 0, sizeof(PlanEnt) * PLAN_SLOTS);
    s->nplans = 0;
}

static int lookup_key(Scanner *s, const uint8_t *k, Py_ssize_t n) {
    uint64_t h = hash_bytes(k, n);
    int mask = s->nkeys_slots - 1;
    for (int i = (int)(h & mask);; i = (i + 1) & mask) {
        KeyEnt *e = &s->keys[i];
        if (!e->key) return 0;
        if (e->hash == h && e->len == n && memcmp(e->key, k, n) == 0) return e->code;
    }
}

static void Scanner_dealloc(Scanner *s) {
    if (s->keys) { for (int i = 0; i < s->nkeys_slots; i++) PyMem_Free(s->keys[i].key); PyMem_Free(s->keys); }
    plans_clear(s); PyMem_Free(s->plans);
    Py_XDECREF(s->resource_cb); Py_XDECREF(s->plan_cb); Py_XDECREF(s->slow_cb);
    Py_XDECREF(s->mr_kv); Py_XDECREF(s->cost_prefix); Py_XDECREF(s->total_prefix);
    for (int i = 0; i < 8; i++) Py_XDECREF(s->comp_prefix[i]);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

/* Scanner(keys: dict[bytes,int], resource_cb, plan_cb, slow_cb, reprice, metrics_recorded_kv,
 *         usage_cost_prefix, cost_total_prefix, component_prefixes: tuple[bytes x 8]) */
static int Scanner_init(Scanner *s, PyObject *args, PyObject *kw) {
    PyObject *keys, *rcb, *pcb, *scb, *mr, *cp, *tp, *comps; int reprice;
    if (!PyArg_ParseTuple(args, "O!OOOpSSSO!", &PyDict_Type, &keys, &rcb, &pcb, &scb, &reprice, &mr, &cp, &tp,
                          &PyTuple_Type, &comps)) return -1;
    if (PyTuple_GET_SIZE(comps) != 8) { PyErr_SetString(PyExc_ValueError, "8 component prefixes expected"); return -1; }
    Py_ssize_t n = PyDict_Size(keys);
    int slots = 64; while (slots < 4 * n) slots *= 2;
    s->keys = PyMem_Calloc(slots, sizeof(KeyEnt)); if (!s->keys) { PyErr_NoMemory(); return -1; }
    s->nkeys_slots = slots;
    PyObject *k, *v; Py_ssize_t pos = 0;
    while (PyDict_Next(keys, &pos, &k, &v)) {
        if (!PyBytes_Check(k)) { PyErr_SetString(PyExc_TypeError, "keys must be bytes"); return -1; }
        long code = PyLong_AsLong(v); if (code == -1 && PyErr_Occurred()) return -1;
        if (code < C_SHAPE || code >= C_NCODES) { PyErr_SetString(PyExc_ValueError, "bad key code"); return -1; }
        const uint8_t *kb = (const uint8_t *)PyBytes_AS_STRING(k); Py_ssize_t kl = PyBytes_GET_SIZE(k);
        uint64_t h = hash_bytes(kb, kl);
        int i = (int)(h & (slots - 1));
        while (s->keys[i].key) i = (i + 1) & (slots - 1);
        s->keys[i].key = PyMem_Malloc(kl + 1); if (!s->keys[i].key) { PyErr_NoMemory(); return -1; }
        memcpy(s->keys[i].key, kb, kl); s->keys[i].len = kl; s->keys[i].hash = h; s->keys[i].code = (int)code;
    }
    s->plans = PyMem_Calloc(PLAN_SLOTS, sizeof(PlanEnt)); if (!s->plans) { PyErr_NoMemory(); return -1; }
    Py_INCREF(rcb); s->resource_cb = rcb; Py_INCREF(pcb); s->plan_cb = pcb; Py_INCREF(scb); s->slow_cb = scb;
    s->reprice = reprice;
    Py_INCREF(mr); s->mr_kv = mr; Py_INCREF(cp); s->cost_prefix = cp; Py_INCREF(tp); s->total_prefix = tp;
    for (int i = 0; i < 8; i++) {
        PyObject *o = PyTuple_GET_ITEM(comps, i);
        if (!PyBytes_Check(o)) { PyErr_SetString(PyExc_TypeError, "component prefixes must be bytes"); return -1; }
        Py_INCREF(o); s->comp_prefix[i] = o;
    }
    return 0;
}

static int as_double(PyObject *o, double *out) {
    *out = PyFloat_AsDouble(o); return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* Build a C plan from the plan callback's tuple:
 * (obj, mode, metrics_recorded, cache_exclusive, priced, discount_pct, thresholds, sets, blocks) */
static Plan *plan_from(PyObject *t) {
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 9) { PyErr_SetString(PyExc_TypeError, "plan tuple of 9 expected"); return NULL; }
    Plan *p = PyMem_Calloc(1, sizeof(Plan)); if (!p) { PyErr_NoMemory(); return NULL; }
    p->obj = PyTuple_GET_ITEM(t, 0); Py_INCREF(p->obj);
    p->mode = (int)PyLong_AsLong(PyTuple_GET_ITEM(t, 1));
    p->metrics_recorded = PyObject_IsTrue(PyTuple_GET_ITEM(t, 2));
    p->cache_exclusive = PyObject_IsTrue(PyTuple_GET_ITEM(t, 3));
    p->priced = PyObject_IsTrue(PyTuple_GET_ITEM(t, 4));
    if (PyErr_Occurred()) goto fail;
    if (as_double(PyTuple_GET_ITEM(t, 5), &p->discount) < 0) goto fail;
    if (p->mode != 1) return p;
    PyObject *th = PyTuple_GET_ITEM(t, 6), *sets = PyTuple_GET_ITEM(t, 7), *blocks = PyTuple_GET_ITEM(t, 8);
    if (!PyTuple_Check(th) || !PyTuple_Check(sets) || !PyTuple_Check(blocks) || PyTuple_GET_SIZE(th) > MAXTIERS
        || (p->priced && PyTuple_GET_SIZE(sets) != PyTuple_GET_SIZE(th) + 1) || PyTuple_GET_SIZE(blocks) != 12) {
        PyErr_SetString(PyExc_TypeError, "bad plan pricing data"); goto fail;
    }
    p->ntiers = (int)PyTuple_GET_SIZE(th);
    for (int i = 0; i < p->ntiers; i++) if (as_double(PyTuple_GET_ITEM(th, i), &p->thresholds[i]) < 0) goto fail;
    for (int i = 0; p->priced && i <= p->ntiers; i++) {
        PyObject *ps = PyTuple_GET_ITEM(sets, i);
        if (!PyTuple_Check(ps) || PyTuple_GET_SIZE(ps) != 7) { PyErr_SetString(PyExc_TypeError, "price set of 7 expected"); goto fail; }
        PriceSetC *c = &p->sets[i];
        PyObject *in = PyTuple_GET_ITEM(ps, 0), *out = PyTuple_GET_ITEM(ps, 1);
        c->has_in = in != Py_None; c->has_out = out != Py_None;
        if (c->has_in && as_double(in, &c->in) < 0) goto fail;
        if (c->has_out && as_double(out, &c->out) < 0) goto fail;
        if (as_double(PyTuple_GET_ITEM(ps, 2), &c->cache_read) < 0 || as_double(PyTuple_GET_ITEM(ps, 3), &c->cw5) < 0
            || as_double(PyTuple_GET_ITEM(ps, 4), &c->cw1h) < 0 || as_double(PyTuple_GET_ITEM(ps, 5), &c->reasoning) < 0
            || as_double(PyTuple_GET_ITEM(ps, 6), &c->per_request) < 0) goto fail;
    }
    for (int i = 0; i < 12; i++) {
        PyObject *b = PyTuple_GET_ITEM(blocks, i);
        if (!PyBytes_Check(b)) { PyErr_SetString(PyExc_TypeError, "blocks must be bytes"); goto fail; }
        Py_INCREF(b); p->blocks[i] = b;
    }
    return p;
fail:
    plan_free(p); return NULL;
}

/* ------------------------------------------------------------------ one batch */
typedef struct {
    Scanner *s;
    Buf out, key, extra, span;
    Samples *samples;
    PyObject *groups, *group_counts;   /* lists */
    Py_ssize_t spans, genai, rejected;
    Py_ssize_t priced[6]; int priced_order[6]; int npriced_order;
    uint64_t res_id; PyObject *res_handle; int res_openlit;
} Batch;

typedef struct { int type; int64_t i; double d; } Val;   /* type: 0 absent, 1 int, 2 double, 3 string, 4 other */
enum { V_NONE, V_INT, V_DBL, V_STR, V_OTHER };

static void count_priced(Batch *b, int idx) {
    if (b->priced[idx]++ == 0) b->priced_order[b->npriced_order++] = idx;
}

/* Parse one attribute KeyValue (payload in c) into the span state. */
typedef struct {
    Val slot[NSLOTS];
    int usage;        /* any usage key present */
    int has_cost_kv;  /* gen_ai.usage.cost present (any value) */
} SpanState;

static int read_kv(Batch *b, Cur kv, const uint8_t *raw, const uint8_t *raw_end, SpanState *st) {
    const uint8_t *key = NULL; Py_ssize_t klen = 0;
    Cur val = {NULL, NULL}; int nval = 0;
    Cur c = kv;
    while (c.p < c.end) {
        uint32_t f; int wt;
        if (rd_tag(&c, &f, &wt) < 0) return -1;
        if (f == 1) {
            Cur s; if (wt != 2) DECLINE("unexpected wire type for a known field");
            if (rd_len(&c, &s) < 0) return -1;
            if (!utf8_ok(s.p, s.end - s.p)) BAD("invalid UTF-8 in a string field");
            key = s.p; klen = s.end - s.p;
        } else if (f == 2) {
            if (wt != 2) DECLINE("unexpected wire type for a known field");
            if (rd_len(&c, &val) < 0) return -1;
            if (validate(val, T_ANY, 1) < 0) return -1;
            nval++;
        } else if (skip_value(&c, wt) < 0) return -1;
    }
    int code = key ? lookup_key(b->s, key, klen) : (lookup_key(b->s, (const uint8_t *)"", 0));
    if (!code) return 0;
    if (nval > 1) DECLINE("attribute value given twice");
    if (code == C_SHAPE) return buf_put(&b->key, raw, raw_end - raw);
    if (code == C_IGNORE) return 0;
    if (code >= C_IN0 && code <= C_OUT1) st->usage = 1;
    if (code == C_COST) st->has_cost_kv = 1;
    /* decode the AnyValue */
    Val v = {V_NONE, 0, 0.0};
    int nfields = 0;
    c = val;
    while (c.p && c.p < c.end) {
        uint32_t f; int wt; uint64_t u = 0;
        if (rd_tag(&c, &f, &wt) < 0) return -1;
        if (f >= 1 && f <= 7) nfields++;
        if (f == 1) { Cur s; rd_len(&c, &s); v.type = V_STR; }
        else if (f == 2) { rd_varint(&c, &u); v.type = V_OTHER; }   /* bool: never a number here */
        else if (f == 3) { rd_varint(&c, &u); v.type = V_INT; v.i = (int64_t)u; }
        else if (f == 4) { memcpy(&v.d, c.p, 8); c.p += 8; v.type = V_DBL; }
        else if (f >= 5 && f <= 7) { Cur s; rd_len(&c, &s); v.type = V_OTHER; }
        else skip_value(&c, wt);
    }
    if (nfields > 1) DECLINE("attribute value with several fields");
    st->slot[code - C_IN0] = v;   /* the last occurrence wins (a dict) */
    return 0;
}

/* Token count of a value as extract._int: -1 = None; -2 = needs Python (strings, huge numbers). */
#define TOKEN_MAX 4294967296.0
static inline int64_t token_of(const Val *v) {
    switch (v->type) {
    case V_INT: if (v->i < 0) return -1; if (v->i >= (int64_t)TOKEN_MAX) return -2; return v->i;
    case V_DBL: {
        double n = v->d;
        if (n != n || n < 0 || isinf(n)) return -1;
        if (n >= TOKEN_MAX) return -2;
        return (int64_t)n;
    }
    case V_STR: return -2;
    default: return -1;
    }
}
/* extract._first over a priority list of slots; -1 None, -2 needs Python */
static inline int64_t first_of(const SpanState *st, int from, int to) {
    for (int k = from; k <= to; k++) {
        const Val *v = &st->slot[k - C_IN0];
        if (v->type == V_NONE) continue;
        int64_t n = token_of(v);
        if (n != -1) return n;
    }
    return -1;
}

static inline int put_double_kv(Buf *b, PyObject *prefix, double x) {
    if (buf_put(b, PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix)) < 0) return -1;
    return buf_put(b, &x, 8);
}

static Rec *new_rec(Batch *b) {
    Samples *sm = b->samples;
    if (sm->n == sm->cap) {
        Py_ssize_t cap = sm->cap ? sm->cap * 2 : 256;
        Rec *r = PyMem_Realloc(sm->recs, cap * sizeof(Rec));
        if (!r) { PyErr_NoMemory(); return NULL; }
        sm->recs = r; sm->cap = cap;
    }
    Rec *r = &sm->recs[sm->n++];
    memset(r, 0, sizeof *r);
    return r;
}

static int group_of(Batch *b, Plan *p) {
    if (p->gen != b->s->gen) {
        p->gen = b->s->gen;
        p->group = (int)PyList_GET_SIZE(b->groups);
        if (PyList_Append(b->groups, p->obj) < 0) return -1;
        PyObject *zero = PyLong_FromLong(0);
        if (!zero || PyList_Append(b->group_counts, zero) < 0) { Py_XDECREF(zero); return -1; }
        Py_DECREF(zero);
    }
    PyObject *old = PyList_GET_ITEM(b->group_counts, p->group);
    PyObject *nw = PyLong_FromSsize_t(PyLong_AsSsize_t(old) + 1);
    if (!nw) return -1;
    PyList_SetItem(b->group_counts, p->group, nw);
    return p->group;
}

static Plan *find_plan(Batch *b) {
    Scanner *s = b->s;
    uint64_t h = hash_bytes(b->key.d, b->key.len);
    int mask = PLAN_SLOTS - 1, i;
    for (i = (int)(h & mask); s->plans[i].key; i = (i + 1) & mask) {
        PlanEnt *e = &s->plans[i];
        if (e->hash == h && e->len == b->key.len && memcmp(e->key, b->key.d, b->key.len) == 0) return e->plan;
    }
    /* miss: build it in Python */
    Py_ssize_t hdr = 9;   /* res id (8) + flags (1) */
    const uint8_t *kd = b->key.d;
    PyObject *shape = PyBytes_FromStringAndSize((const char *)kd + hdr, b->key.len - hdr);
    if (!shape) return NULL;
    PyObject *t = PyObject_CallFunction(s->plan_cb, "OiiN", b->res_handle, (kd[8] & 1) != 0, (kd[8] & 2) != 0, shape);
    if (!t) return NULL;
    Plan *p = plan_from(t);
    Py_DECREF(t);
    if (!p) return NULL;
    if (s->nplans >= PLAN_MAX) {
        plans_clear(s);
        i = (int)(h & mask);
    }
    while (s->plans[i].key) i = (i + 1) & mask;
    PlanEnt *e = &s->plans[i];
    e->key = PyMem_Malloc(b->key.len);
    if (!e->key) { plan_free(p); PyErr_NoMemory(); return NULL; }
    memcpy(e->key, b->key.d, b->key.len); e->len = b->key.len; e->hash = h; e->plan = p;
    s->nplans++;
    return p;
}

static inline int write_span_bytes(Batch *b, const uint8_t *p, Py_ssize_t n, const uint8_t *x, Py_ssize_t xn) {
    if (buf_reserve(&b->out, n + xn + 11) < 0) return -1;
    b->out.d[b->out.len++] = 0x12;
    b->out.len += put_varint_raw(b->out.d + b->out.len, (uint64_t)(n + xn));
    memcpy(b->out.d + b->out.len, p, n); b->out.len += n;
    if (xn) { memcpy(b->out.d + b->out.len, x, xn); b->out.len += xn; }
    return 0;
}

static int slow_span(Batch *b, Plan *plan, Cur span, const uint8_t *tid, const uint8_t *sid) {
    PyObject *r = PyObject_CallFunction(b->s->slow_cb, "Oy#", plan->obj, (const char *)span.p, (Py_ssize_t)(span.end - span.p));
    if (!r) return -1;
    PyObject *bytes, *sample; int pidx;
    if (!PyArg_ParseTuple(r, "SOi", &bytes, &sample, &pidx)) { Py_DECREF(r); return -1; }
    int rc = write_span_bytes(b, (const uint8_t *)PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes), NULL, 0);
    if (rc == 0 && pidx >= 0 && pidx < 6) count_priced(b, pidx);
    if (rc == 0 && sample != Py_None) {
        /* (status_idx, buckets x5, comps x8, total|None, savings) */
        int status; PyObject *toks, *comps, *total; double savings;
        if (!PyArg_ParseTuple(sample, "iO!O!Od", &status, &PyTuple_Type, &toks, &PyTuple_Type, &comps, &total, &savings)
            || PyTuple_GET_SIZE(toks) != 5 || PyTuple_GET_SIZE(comps) != 8) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "bad sample");
            rc = -1;
        } else {
            int g = group_of(b, plan);
            Rec *rec = g < 0 ? NULL : new_rec(b);
            if (!rec) rc = -1;
            else {
                rec->group = g; rec->status = (uint8_t)status; rec->savings = savings;
                rec->has_total = total != Py_None;
                if (rec->has_total && as_double(total, &rec->total) < 0) rc = -1;
                for (int i = 0; rc == 0 && i < 5; i++) {
                    long long n = PyLong_AsLongLong(PyTuple_GET_ITEM(toks, i));
                    if (n == -1 && PyErr_Occurred()) {
                        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
                            PyErr_Clear(); PyErr_SetString(Decline, "token count out of range");
                        }
                        rc = -1;
                    } else if (n < 0 || n >= (long long)TOKEN_MAX) { PyErr_SetString(Decline, "token count out of range"); rc = -1; }
                    else rec->tok[i] = n;
                }
                for (int i = 0; rc == 0 && i < 8; i++) if (as_double(PyTuple_GET_ITEM(comps, i), &rec->comp[i]) < 0) rc = -1;
                memcpy(rec->tid, tid, 16); memcpy(rec->sid, sid, 8);
            }
        }
    }
    Py_DECREF(r);
    return rc;
}

/* Sum of the 8 components as builtins.sum() does it (the totals must be bit-identical). */
static double py_sum(const double *v, int n) {
#if PY_VERSION_HEX >= 0x030C0000
    double f = 0.0, c = 0.0;
    for (int i = 0; i < n; i++) {
        double x = v[i], t = f + x;
        if (fabs(f) >= fabs(x)) c += (f - t) + x; else c += (x - t) + f;
        f = t;
    }
    if (c && isfinite(c)) f += c;
    return f;
#else
    double f = 0.0;
    for (int i = 0; i < n; i++) f += v[i];
    return f;
#endif
}

enum { S_PRICED, S_PARTIAL, S_UNPRICED };

static int fast_span(Batch *b, Plan *plan, SpanState *st, Cur span, const uint8_t *tid, const uint8_t *sid) {
    Scanner *s = b->s;
    int64_t inp = first_of(st, C_IN0, C_IN1), out = first_of(st, C_OUT0, C_OUT1);
    int64_t cr = first_of(st, C_CR0, C_CR1), cw = first_of(st, C_CW0, C_CW2), rs = first_of(st, C_RS0, C_RS2);
    if (inp == -2 || out == -2 || cr == -2 || cw == -2 || rs == -2) return slow_span(b, plan, span, tid, sid);
    if (inp == -1 && out == -1) return write_span_bytes(b, span.p, span.end - span.p, NULL, 0);
    if (inp < 0) inp = 0;
    if (out < 0) out = 0;
    if (cr < 0) cr = 0;
    if (cw < 0) cw = 0;
    if (rs < 0) rs = 0;
    if ((cr || cw) && (plan->cache_exclusive || cr + cw > inp)) inp += cr + cw;
    /* existing gen_ai.usage.cost */
    const Val *ev = &st->slot[C_COST - C_IN0];
    int has_existing = 0; double existing = 0.0;
    if (ev->type == V_INT) { if (ev->i >= 0) { has_existing = 1; existing = (double)ev->i; } }
    else if (ev->type == V_DBL) { if (ev->d == ev->d && ev->d >= 0) { has_existing = 1; existing = ev->d; } }
    int kept = has_existing && !s->reprice;

    double comp[8] = {0}; double total = 0.0, savings = 0.0; int has_total = 0, status;
    if (plan->priced) {
        const PriceSetC *ps = &plan->sets[0];
        if (plan->ntiers && inp) {
            for (int i = plan->ntiers - 1; i >= 0; i--)
                if ((double)inp > plan->thresholds[i]) { ps = &plan->sets[i + 1]; break; }
        }
        int partial = 0;
        int64_t text_in = inp - cr - cw;
        if (text_in < 0) text_in = 0;
        double in_price = ps->has_in ? ps->in : 0.0;
        if (!ps->has_in && (text_in || cr || cw)) partial = 1;
        comp[0] = (double)text_in * in_price;
        comp[1] = (double)cr * ps->cache_read;
        comp[2] = (double)cw * ps->cw5 + 0.0 * ps->cw1h;
        savings = ps->has_in ? (double)cr * (in_price - ps->cache_read) : 0.0;
        int64_t r = rs > out ? out : rs;
        int64_t text_out = out - r;
        double out_price = ps->has_out ? ps->out : 0.0;
        if (!ps->has_out && (text_out || r)) partial = 1;
        comp[3] = (double)text_out * out_price;
        comp[4] = (double)r * ps->reasoning;
        comp[5] = 0.0; comp[6] = 0.0;
        comp[7] = ps->per_request;
        if (plan->discount != 0.0) {
            double factor = 1.0 - plan->discount / 100.0;
            for (int i = 0; i < 8; i++) comp[i] *= factor;
            savings *= factor;
        }
        total = py_sum(comp, 8); has_total = 1;
        status = partial ? S_PARTIAL : S_PRICED;
        if (!(savings > 0.0)) savings = 0.0;
    } else {
        status = S_UNPRICED;
    }
    /* token buckets (UsageRecord.token_buckets) */
    int64_t tok[5];
    int64_t rb = out ? (rs < out ? rs : out) : rs;
    tok[0] = inp - cr - cw; if (tok[0] < 0) tok[0] = 0;
    tok[1] = cr; tok[2] = cw;
    tok[3] = out - rb; if (tok[3] < 0) tok[3] = 0;
    tok[4] = rb;
    int source = 0;
    if (kept) {   /* enrich._keep_span_cost */
        double t = existing;
        if (has_total && total != 0.0) {
            double factor = t / total;
            for (int i = 0; i < 8; i++) comp[i] = comp[i] * factor;
        } else {
            int64_t tin = tok[0] + tok[1] + tok[2], tout = tok[3] + tok[4], n = tin + tout;
            for (int i = 0; i < 8; i++) comp[i] = 0.0;
            if (n) { comp[0] = t * (double)tin / (double)n; comp[3] = t * (double)tout / (double)n; }
            else comp[7] = t;
        }
        if (status == S_UNPRICED) status = S_PRICED;
        total = t; has_total = 1; savings = 0.0; source = 1;
    }
    /* the attributes to add */
    Buf *x = &b->extra; x->len = 0;
    if (has_total) {
        if (!kept && put_double_kv(x, s->cost_prefix, total) < 0) return -1;
        if (put_double_kv(x, s->total_prefix, total) < 0) return -1;
        for (int i = 0; i < 8; i++)
            if (comp[i] != 0.0 || comp[i] != comp[i]) { if (put_double_kv(x, s->comp_prefix[i], comp[i]) < 0) return -1; }
    }
    PyObject *blk = plan->blocks[status * 4 + source * 2 + has_total];
    if (buf_put(x, PyBytes_AS_STRING(blk), PyBytes_GET_SIZE(blk)) < 0) return -1;
    if (!plan->metrics_recorded && buf_put(x, PyBytes_AS_STRING(s->mr_kv), PyBytes_GET_SIZE(s->mr_kv)) < 0) return -1;
    count_priced(b, status * 2 + source);
    /* the span, without gen_ai.usage.cost when repriced */
    if (has_existing && !kept) {
        Buf *sb = &b->span; sb->len = 0;
        Cur c = span;
        while (c.p < c.end) {
            const uint8_t *f0 = c.p; uint32_t f; int wt;
            if (rd_tag(&c, &f, &wt) < 0) return -1;
            int drop = 0;
            if (f == 9 && wt == 2) {
                Cur kv; if (rd_len(&c, &kv) < 0) return -1;
                const uint8_t *key = NULL; Py_ssize_t kl = 0;
                while (kv.p < kv.end) {
                    uint32_t g; int w; if (rd_tag(&kv, &g, &w) < 0) return -1;
                    if (g == 1 && w == 2) { Cur ks; if (rd_len(&kv, &ks) < 0) return -1; key = ks.p; kl = ks.end - ks.p; }
                    else if (skip_value(&kv, w) < 0) return -1;
                }
                if (key && lookup_key(s, key, kl) == C_COST) drop = 1;
            } else if (skip_value(&c, wt) < 0) return -1;
            if (!drop && buf_put(sb, f0, c.p - f0) < 0) return -1;
        }
        if (write_span_bytes(b, sb->d, sb->len, x->d, x->len) < 0) return -1;
    } else if (write_span_bytes(b, span.p, span.end - span.p, x->d, x->len) < 0) return -1;
    if (plan->metrics_recorded) return 0;
    int g = group_of(b, plan);
    if (g < 0) return -1;
    Rec *rec = new_rec(b);
    if (!rec) return -1;
    rec->group = g; rec->status = (uint8_t)status; rec->has_total = (uint8_t)has_total;
    memcpy(rec->tok, tok, sizeof tok); memcpy(rec->comp, comp, sizeof comp);
    rec->total = total; rec->savings = savings;
    memcpy(rec->tid, tid, 16); memcpy(rec->sid, sid, 8);
    return 0;
}

static const uint8_t ZERO16[16] = {0};

static int do_span(Batch *b, Cur span, int is_openlit) {
    SpanState st; memset(&st, 0, sizeof st);
    const uint8_t *tid = NULL, *sid = NULL; Py_ssize_t tlen = 0, slen = 0;
    uint64_t code = 0;
    Buf *key = &b->key; key->len = 0;
    if (buf_reserve(key, 9) < 0) return -1;
    memcpy(key->d, &b->res_id, 8); key->len = 9;
    Cur c = span;
    while (c.p < c.end) {
        const uint8_t *f0 = c.p; uint32_t f; int wt;
        if (rd_tag(&c, &f, &wt) < 0) return -1;
        Cur s;
        switch (f) {
        case 1: case 2:
            if (wt != 2) DECLINE("unexpected wire type for a known field");
            if (rd_len(&c, &s) < 0) return -1;
            if (f == 1) { tid = s.p; tlen = s.end - s.p; } else { sid = s.p; slen = s.end - s.p; }
            break;
        case 9:
            if (wt != 2) DECLINE("unexpected wire type for a known field");
            if (rd_len(&c, &s) < 0) return -1;
            if (read_kv(b, s, f0, c.p, &st) < 0) return -1;
            break;
        case 15:
            if (wt != 2) DECLINE("unexpected wire type for a known field");
            if (rd_len(&c, &s) < 0) return -1;
            while (s.p < s.end) {
                uint32_t g; int w;
                if (rd_tag(&s, &g, &w) < 0) return -1;
                if (g == 3) { if (w != 0) DECLINE("unexpected wire type for a known field"); if (rd_varint(&s, &code) < 0) return -1; }
                else if (validate_value(&s, g < MAXF ? SCHEMA[T_STATUS][g].kind : 0xff, 0, w, 1) < 0) return -1;
            }
            break;
        case 3: case 5:
            if (validate_value(&c, K_STR, 0, wt, 0) < 0) return -1;
            break;
        case 4:
            if (validate_value(&c, K_BYTES, 0, wt, 0) < 0) return -1;
            break;
        case 6: case 10: case 12: case 14:
            if (validate_value(&c, K_VARINT, 0, wt, 0) < 0) return -1;
            break;
        case 7: case 8:
            if (validate_value(&c, K_F64, 0, wt, 0) < 0) return -1;
            break;
        case 16:
            if (validate_value(&c, K_F32, 0, wt, 0) < 0) return -1;
            break;
        case 11:
            if (validate_value(&c, K_MSG, T_EVENT, wt, 0) < 0) return -1;
            break;
        case 13:
            if (validate_value(&c, K_MSG, T_LINK, wt, 0) < 0) return -1;
            break;
        default:
            if (skip_value(&c, wt) < 0) return -1;
        }
    }
    /* server._drop_invalid_spans */
    if (tlen != 16 || slen != 8 || memcmp(tid, ZERO16, 16) == 0 || memcmp(sid, ZERO16, 8) == 0) {
        b->rejected++; return 0;
    }
    b->spans++;
    if (!st.usage) return write_span_bytes(b, span.p, span.end - span.p, NULL, 0);
    b->genai++;
    int status_error = (int32_t)(uint32_t)code == 2;
    if (buf_reserve(key, 1) < 0) return -1;
    key->d[8] = (uint8_t)((is_openlit ? 1 : 0) | (status_error ? 2 : 0));
    Plan *plan = find_plan(b);
    if (!plan) return -1;
    if (plan->mode == 0) return write_span_bytes(b, span.p, span.end - span.p, NULL, 0);
    if (plan->mode == 2) return slow_span(b, plan, span, tid, sid);
    return fast_span(b, plan, &st, span, tid, sid);
}

static int scope_is_openlit(const uint8_t *n, Py_ssize_t len) {
    static const char *w = "openlit";
    if (len < 7) return 0;
    for (int i = 0; i < 7; i++) { uint8_t ch = n[i]; if (ch >= 'A' && ch <= 'Z') ch += 32; if (ch != (uint8_t)w[i]) return 0; }
    return 1;
}

static int do_scope_spans(Batch *b, Cur ss) {
    /* pass 1: the scope (it may come after the spans on the wire) */
    Cur c = ss; int nscope = 0; const uint8_t *name = NULL; Py_ssize_t nlen = 0;
    while (c.p < c.end) {
        uint32_t f; int wt;
        if (rd_tag(&c, &f, &wt) < 0) return -1;
        if (f == 1) {
            Cur s; if (wt != 2) DECLINE("unexpected wire type for a known field");
            if (rd_len(&c, &s) < 0) return -1;
            if (++nscope > 1) DECLINE("scope given twice");
            if (validate(s, T_SCOPE, 1) < 0) return -1;
            while (s.p < s.end) {
                uint32_t g; int w; rd_tag(&s, &g, &w);
                if (g == 1 && w == 2) { Cur t; rd_len(&s, &t); name = t.p; nlen = t.end - t.p; }
                else skip_value(&s, w);
            }
        } else if (f == 2) {
            Cur s; if (wt != 2) DECLINE("unexpected wire type for a known field");
            if (rd_len(&c, &s) < 0) return -1;
        } else if (f == 3) {
            if (validate_value(&c, K_STR, 0, wt, 0) < 0) return -1;
        } else if (skip_value(&c, wt) < 0) return -1;
    }
    int is_openlit = b->res_openlit || (name && scope_is_openlit(name, nlen));
    /* pass 2: write */
    c = ss;
    while (c.p < c.end) {
        const uint8_t *f0 = c.p; uint32_t f; int wt;
        rd_tag(&c, &f, &wt);
        if (f == 2) { Cur s; rd_len(&c, &s); if (do_span(b, s, is_openlit) < 0) return -1; }
        else { skip_value(&c, wt); if (buf_put(&b->out, f0, c.p - f0) < 0) return -1; }
    }
    return 0;
}

static int do_resource_spans(Batch *b, Cur rs) {
    Cur c = rs; int nres = 0; Cur res = {NULL, NULL};
    while (c.p < c.end) {
        uint32_t f; int wt;
        if (rd_tag(&c, &f, &wt) < 0) return -1;
        if (f == 1 || f == 2) {
            Cur s; if (wt != 2) DECLINE("unexpected wire type for a known field");
            if (rd_len(&c, &s) < 0) return -1;
            if (f == 1) { if (++nres > 1) DECLINE("resource given twice"); if (validate(s, T_RESOURCE, 1) < 0) return -1; res = s; }
        } else if (f == 3) {
            if (validate_value(&c, K_STR, 0, wt, 0) < 0) return -1;
        } else if (skip_value(&c, wt) < 0) return -1;
    }
    PyObject *r = PyObject_CallFunction(b->s->resource_cb, "y#", res.p ? (const char *)res.p : "",
                                        (Py_ssize_t)(res.p ? res.end - res.p : 0));
    if (!r) return -1;
    unsigned long long rid; PyObject *handle; int openlit;
    if (!PyArg_ParseTuple(r, "KOp", &rid, &handle, &openlit)) { Py_DECREF(r); return -1; }
    Py_INCREF(handle); Py_XSETREF(b->res_handle, handle);
    Py_DECREF(r);
    b->res_id = rid; b->res_openlit = openlit;
    c = rs;
    while (c.p < c.end) {
        const uint8_t *f0 = c.p; uint32_t f; int wt;
        rd_tag(&c, &f, &wt);
        if (f == 2) {
            Cur s; rd_len(&c, &s);
            Py_ssize_t mark;
            if (buf_open(&b->out, 0x12, &mark) < 0) return -1;
            if (do_scope_spans(b, s) < 0) return -1;
            buf_close(&b->out, mark);
        } else { skip_value(&c, wt); if (buf_put(&b->out, f0, c.p - f0) < 0) return -1; }
    }
    return 0;
}

static PyTypeObject SamplesType;

/* scan(body) -> (out, spans, genai_spans, rejected, priced [(idx, n)], groups, group_counts, samples) */
static PyObject *Scanner_scan(Scanner *s, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    Batch b; memset(&b, 0, sizeof b);
    b.s = s; s->gen++;
    PyObject *result = NULL;
    b.samples = PyObject_New(Samples, &SamplesType);
    b.groups = PyList_New(0); b.group_counts = PyList_New(0);
    if (!b.samples || !b.groups || !b.group_counts) goto done;
    b.samples->recs = NULL; b.samples->n = b.samples->cap = 0;
    if (buf_reserve(&b.out, view.len + view.len / 2 + 1024) < 0) goto done;
    Cur c = {(const uint8_t *)view.buf, (const uint8_t *)view.buf + view.len};
    while (c.p < c.end) {
        const uint8_t *f0 = c.p; uint32_t f; int wt;
        if (rd_tag(&c, &f, &wt) < 0) goto done;
        if (f == 1) {
            Cur rs;
            if (wt != 2) { PyErr_SetString(Decline, "unexpected wire type for a known field"); goto done; }
            if (rd_len(&c, &rs) < 0) goto done;
            Py_ssize_t mark;
            if (buf_open(&b.out, 0x0a, &mark) < 0) goto done;
            if (do_resource_spans(&b, rs) < 0) goto done;
            buf_close(&b.out, mark);
        } else {
            if (skip_value(&c, wt) < 0) goto done;
            if (buf_put(&b.out, f0, c.p - f0) < 0) goto done;
        }
    }
    {
        PyObject *priced = PyList_New(b.npriced_order);
        if (!priced) goto done;
        for (int i = 0; i < b.npriced_order; i++) {
            int idx = b.priced_order[i];
            PyList_SET_ITEM(priced, i, Py_BuildValue("(in)", idx, b.priced[idx]));
        }
        result = Py_BuildValue("(y#nnnNOOO)", (const char *)b.out.d, b.out.len, b.spans, b.genai, b.rejected, priced,
                               b.groups, b.group_counts, (PyObject *)b.samples);
    }
done:
    PyBuffer_Release(&view);
    buf_free(&b.out); buf_free(&b.key); buf_free(&b.extra); buf_free(&b.span);
    Py_XDECREF(b.samples); Py_XDECREF(b.groups); Py_XDECREF(b.group_counts); Py_XDECREF(b.res_handle);
    return result;
}

static PyObject *Scanner_clear(Scanner *s, PyObject *unused) { plans_clear(s); Py_RETURN_NONE; }
static PyObject *Scanner_plans(Scanner *s, void *unused) { return PyLong_FromLong(s->nplans); }

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)Scanner_scan, METH_O, "Price and enrich one ExportTraceServiceRequest (protobuf bytes)."},
    {"clear", (PyCFunction)Scanner_clear, METH_NOARGS, "Forget the memoised plans."},
    {NULL}
};
static PyGetSetDef Scanner_getset[] = {{"plans", (getter)Scanner_plans, NULL, "memoised plans", NULL}, {NULL}};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "inferops.processors.serve._otlpscan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
    .tp_getset = Scanner_getset,
};

/* ------------------------------------------------------------------ aggregation (CostRecorder.record_groups) */
#define NROW 20   /* req x3 (status), unattributed, tokens x5, unpriced, cost x8, savings, error_cost */
typedef struct { int used, is_int; int64_t itot, ibest; double dtot, dbest, rank; const uint8_t *tid, *sid; } Ser;

static inline void bump(Ser *sv, Py_ssize_t *order, Py_ssize_t *norder, long idx, int is_int, int64_t iv, double dv,
                        double rank, const Rec *r) {
    Ser *x = &sv[idx];
    if (!x->used) {
        x->used = 1; x->is_int = is_int; x->itot = x->ibest = iv; x->dtot = x->dbest = dv; x->rank = rank;
        x->tid = r->tid; x->sid = r->sid; order[(*norder)++] = idx;
        return;
    }
    if (is_int) x->itot += iv; else x->dtot += dv;
    if (rank > x->rank) { x->ibest = iv; x->dbest = dv; x->rank = rank; x->tid = r->tid; x->sid = r->sid; }
}

/* aggregate(table, nseries) -> [(series, total, best, trace_id, span_id)] in first-encounter order.
 * table[group] = 20 series indices (-1 = not counted), as record_calls would key them. */
static PyObject *Samples_aggregate(Samples *sm, PyObject *args) {
    PyObject *table; Py_ssize_t nseries;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &table, &nseries)) return NULL;
    Py_ssize_t ng = PyList_GET_SIZE(table);
    long *rows = PyMem_Malloc(sizeof(long) * NROW * (ng ? ng : 1));
    Ser *sv = PyMem_Calloc(nseries ? nseries : 1, sizeof(Ser));
    Py_ssize_t *order = PyMem_Malloc(sizeof(Py_ssize_t) * (nseries ? nseries : 1)), norder = 0;
    PyObject *out = NULL;
    if (!rows || !sv || !order) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t g = 0; g < ng; g++) {
        PyObject *row = PyList_GET_ITEM(table, g);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != NROW) { PyErr_SetString(PyExc_TypeError, "rows of 20"); goto done; }
        for (int j = 0; j < NROW; j++) {
            long v = PyLong_AsLong(PyTuple_GET_ITEM(row, j));
            if (v == -1 && PyErr_Occurred()) goto done;
            if (v >= nseries) { PyErr_SetString(PyExc_ValueError, "series index out of range"); goto done; }
            rows[g * NROW + j] = v;
        }
    }
    for (Py_ssize_t i = 0; i < sm->n; i++) {
        const Rec *r = &sm->recs[i];
        if (r->group < 0 || r->group >= ng) { PyErr_SetString(PyExc_ValueError, "group out of range"); goto done; }
        const long *row = &rows[r->group * NROW];
        double expensive = (r->has_total && r->total != 0.0) ? r->total : 0.0;
        long k = row[r->status];
        if (k >= 0) bump(sv, order, &norder, k, 1, 1, 0.0, expensive, r);
        if (row[3] >= 0) bump(sv, order, &norder, row[3], 1, 1, 0.0, expensive, r);
        for (int t = 0; t < 5; t++)
            if (r->tok[t] && row[4 + t] >= 0) bump(sv, order, &norder, row[4 + t], 1, r->tok[t], 0.0, (double)r->tok[t], r);
        if (r->status == S_UNPRICED) {
            if (row[9] >= 0) bump(sv, order, &norder, row[9], 1, 1, 0.0, 0.0, r);
        } else {
            for (int c = 0; c < 8; c++) {
                double u = r->comp[c];
                if ((u != 0.0 || u != u) && row[10 + c] >= 0) bump(sv, order, &norder, row[10 + c], 0, 0, u, u, r);
            }
            if (r->savings > 0 && row[18] >= 0) bump(sv, order, &norder, row[18], 0, 0, r->savings, r->savings, r);
            if (row[19] >= 0 && r->has_total && (r->total != 0.0 || r->total != r->total))
                bump(sv, order, &norder, row[19], 0, 0, r->total, r->total, r);
        }
    }
    out = PyList_New(norder);
    if (!out) goto done;
    for (Py_ssize_t i = 0; i < norder; i++) {
        Ser *x = &sv[order[i]];
        PyObject *tid = _PyLong_FromByteArray(x->tid, 16, 0, 0), *sid = _PyLong_FromByteArray(x->sid, 8, 0, 0);
        PyObject *item = (tid && sid) ? (x->is_int ? Py_BuildValue("(nLLNN)", order[i], (long long)x->itot, (long long)x->ibest, tid, sid)
                                       : Py_BuildValue("(nddNN)", order[i], x->dtot, x->dbest, tid, sid)) : NULL;
        if (!item) { Py_XDECREF(tid); Py_XDECREF(sid); Py_CLEAR(out); goto done; }
        PyList_SET_ITEM(out, i, item);
    }
done:
    PyMem_Free(rows); PyMem_Free(sv); PyMem_Free(order);
    return out;
}

static void Samples_dealloc(Samples *sm) { PyMem_Free(sm->recs); PyObject_Free(sm); }
static PyObject *Samples_len(Samples *sm, void *unused) { return PyLong_FromSsize_t(sm->n); }
static PyMethodDef Samples_methods[] = {
    {"aggregate", (PyCFunction)Samples_aggregate, METH_VARARGS, "Sum the samples per series, in span order."},
    {NULL}
};
static PyGetSetDef Samples_getset[] = {{"count", (getter)Samples_len, NULL, "samples", NULL}, {NULL}};
static PyTypeObject SamplesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "inferops.processors.serve._otlpscan.Samples",
    .tp_basicsize = sizeof(Samples),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)Samples_dealloc,
    .tp_methods = Samples_methods,
    .tp_getset = Samples_getset,
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_otlpscan",
    "Compiled fast path of `inferops serve` (see processors/serve/fastpath.py).", -1, NULL,
};

PyMODINIT_FUNC PyInit__otlpscan(void) {
    schema_init();
    if (PyType_Ready(&ScannerType) < 0 || PyType_Ready(&SamplesType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    Decline = PyErr_NewExceptionWithDoc("inferops.processors.serve._otlpscan.Decline",
                                        "The request needs the Python path (unusual but possibly valid input).",
                                        PyExc_ValueError, NULL);
    Py_INCREF(&ScannerType);
    if (!Decline || PyModule_AddObject(m, "Decline", Decline) < 0 ||
        PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) { Py_DECREF(m); return NULL; }
    Py_INCREF(Decline);
    PyModule_AddIntConstant(m, "LITTLE_ENDIAN", PY_LITTLE_ENDIAN);
    return m;
}
