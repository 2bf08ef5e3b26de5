/*
 * inferops.instrumentation.providers._chunkscan: the instrumentation's byte scans, in C.
 *
 * 1. openai_plain / anthropic_deltas: the per-chunk test of the stream fragment fast path.
 *    Absorber: that test plus the parser's bookkeeping, called by the stream tee with no Python frame.
 * 2. top_members: the few top-level members of a request body the adapters read, without decoding
 *    the prompt (see _common.request_fields).
 * 3. sse_simple: the events of a fragment of whole simple SSE events (see _common.SSEStream.feed).
 *
 * Why: once a stream's first content was seen, nearly every network read of an
 * OpenAI or Anthropic stream carries only generated text. The parsers' absorb()
 * decides that from the raw bytes with a handful of bytes.count calls; each is
 * a separate pass and a separate Python call, about 1.5 us per OpenAI chunk, the
 * largest per-chunk cost inferops adds to a stream. Here the same counts are
 * taken in one call. The Python functions these mirror (openai._plain_chunks_py,
 * anthropic._delta_events_py) stay the reference: tests/test_chunkscan.py checks
 * both give the same answer on generated and fuzzed fragments, and the Python
 * versions are used when this optional extension was not built.
 *
 * Counting is Python's bytes.count: non-overlapping occurrences, left to right.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* Non-overlapping occurrences of needle in hay (bytes.count semantics; needle non-empty).
 * JSON is full of '"', the first byte of most needles here: for those, memmem (where the C
 * library has it) instead of a first-byte scan that would stop dozens of times per chunk;
 * for the others (newlines, "data: ...") the first-byte scan is cheaper than memmem's set-up. */
static Py_ssize_t
count(const char *hay, Py_ssize_t n, const char *needle, Py_ssize_t m)
{
    Py_ssize_t c = 0;
    const char *p = hay, *end = hay + n;
    if (m <= 0 || m > n)
        return 0;
#if defined(__GLIBC__) || defined(__APPLE__) || defined(__FreeBSD__)
    if (needle[0] == '"') {
        while (end - p >= m) {
            const char *q = memmem(p, (size_t)(end - p), needle, (size_t)m);
            if (q == NULL)
                break;
            c++;
            p = q + m;
        }
        return c;
    }
#endif
    while (end - p >= m) {
        const char *q = memchr(p, needle[0], (size_t)(end - p - m + 1));
        if (q == NULL)
            break;
        if (memcmp(q, needle, (size_t)m) == 0) {
            c++;
            p = q + m;
        } else {
            p = q + 1;
        }
    }
    return c;
}

#define LIT(s) s, (Py_ssize_t)(sizeof(s) - 1)

static int
ends_with(const char *s, Py_ssize_t n, const char *suffix, Py_ssize_t m)
{
    return n >= m && memcmp(s + n - m, suffix, (size_t)m) == 0;
}

/* openai._plain_events_py's test on raw bytes: events in a fragment of plain chat chunks, or -1. */
static Py_ssize_t
openai_plain_impl(const char *s, Py_ssize_t n, const char *tier, Py_ssize_t tier_len)
{
    if (!ends_with(s, n, LIT("\n\n")) || memchr(s, '\r', (size_t)n) != NULL)
        return -1;
    if (count(s, n, LIT("\"usage\"")) != count(s, n, LIT("\"usage\":null")))
        return -1;
    if (count(s, n, LIT("\"finish_reason\"")) != count(s, n, LIT("\"finish_reason\":null")))
        return -1;
    Py_ssize_t tiers = count(s, n, LIT("\"service_tier\""));
    if (tiers) {
        Py_ssize_t known = count(s, n, LIT("\"service_tier\":null"));
        if (tier_len)
            known += count(s, n, tier, tier_len);
        if (tiers != known)
            return -1;
    }
    if (count(s, n, LIT("\"error\"")) || ends_with(s, n, LIT("[DONE]\n\n")))
        return -1;
    return count(s, n, LIT("\n\n"));
}

/* anthropic._delta_events_py's test: events in a fragment of content-delta events and events that carry
 * nothing the parser reads (content_block_stop, message_stop, ping: anthropic._QUIET_LINES), or -1. */
static Py_ssize_t
anthropic_deltas_impl(const char *s, Py_ssize_t n, const char *line, Py_ssize_t line_len)
{
#if defined(__GLIBC__) || defined(__APPLE__) || defined(__FreeBSD__)
    /* The usual read: one or more delta events, each "event: content_block_delta\n" + delta line + payload +
     * "\n\n". For a delta line that starts with "data: " and holds no LF or CR (the parser's does), and
     * payloads with no LF, CR or "data: ", the counts below are k and k for k such events: the "\n\n" are the
     * ends (each event line's LF is followed by "d"), and no occurrence of the line can start in an event
     * line (which holds no "data: " and ends in no prefix of it) or in a payload, or reach into an end. The
     * same answer from a few scans per event instead of a count per needle with a stop at every first byte;
     * anything else (a quiet event, a CR, a second line...) is left to the counts. */
    static const char event_line[] = "event: content_block_delta\n";
    const Py_ssize_t e = (Py_ssize_t)(sizeof(event_line) - 1), h = e + line_len;
    if (line_len > 6 && n >= h + 2 && s[n - 1] == '\n' && s[n - 2] == '\n' && memcmp(line, "data: ", 6) == 0
        && memchr(line, '\n', (size_t)line_len) == NULL && memchr(line, '\r', (size_t)line_len) == NULL) {
        const char *p = s, *end = s + n;
        Py_ssize_t events = 0;
        while (end - p >= h + 2 && memcmp(p, event_line, (size_t)e) == 0 && memcmp(p + e, line, (size_t)line_len) == 0) {
            const char *body = p + h;
            const char *q = memchr(body, '\n', (size_t)(end - body));  /* the payload ends at its first LF */
            if (q == NULL || q + 1 >= end || q[1] != '\n' || memchr(body, '\r', (size_t)(q - body)) != NULL
                || memmem(body, (size_t)(q - body), "data: ", 6) != NULL)
                break;
            events++;
            p = q + 2;
        }
        /* memmem's set-up grows with the needle: the "z" of "amazon-bedrock" first, rarely the whole. */
        if (p == end && (memchr(s, 'z', (size_t)n) == NULL || memmem(s, (size_t)n, "amazon-bedrock", 14) == NULL))
            return events;
    }
#endif
    if (line_len > 0 && ends_with(s, n, LIT("\n\n")) && memchr(s, '\r', (size_t)n) == NULL) {
        Py_ssize_t events = count(s, n, LIT("\n\n"));
        Py_ssize_t known = count(s, n, line, line_len);
        if (known < events)
            known += count(s, n, LIT("data: {\"type\":\"content_block_stop\""))
                     + count(s, n, LIT("data: {\"type\":\"message_stop\""))
                     + count(s, n, LIT("data: {\"type\":\"ping\""))
                     + count(s, n, LIT("data: {\"type\": \"ping\""));
        if (known == events && count(s, n, LIT("amazon-bedrock")) == 0)
            return events;
    }
    return -1;
}

typedef Py_ssize_t (*chunk_test)(const char *s, Py_ssize_t n, const char *pattern, Py_ssize_t pattern_len);

/* The Python face of a chunk test: (data bytes, pattern bytes) -> int. */
static PyObject *
call_chunk_test(PyObject *args, const char *format, chunk_test test)
{
    Py_buffer data, pattern;
    if (!PyArg_ParseTuple(args, format, &data, &pattern))
        return NULL;
    Py_ssize_t result = test(data.buf, data.len, pattern.buf, pattern.len);
    PyBuffer_Release(&data);
    PyBuffer_Release(&pattern);
    return PyLong_FromSsize_t(result);
}

/*
 * openai_plain(data, tier_form) -> int
 *
 * The number of events in ``data`` when it is whole LF-terminated events (ends
 * with a blank line, no CR) that can only add generated text, as
 * openai._plain_chunks decides it; -1 otherwise.
 */
static PyObject *
openai_plain(PyObject *self, PyObject *args)
{
    return call_chunk_test(args, "y*y*:openai_plain", openai_plain_impl);
}

/*
 * anthropic_deltas(data, delta_line) -> int
 *
 * The number of events in ``data`` when it is whole LF-terminated events, each
 * with a ``delta_line`` (a content_block_delta event), no CR and no Bedrock
 * invocation metrics; -1 otherwise (anthropic.AnthropicSSEParser.absorb's test).
 */
static PyObject *
anthropic_deltas(PyObject *self, PyObject *args)
{
    return call_chunk_test(args, "y*y*:anthropic_deltas", anthropic_deltas_impl);
}

/*
 * Absorber(kind, pattern, pending, tally, room): a stream parser's absorb() for one quiet stretch of a stream.
 *
 * Called with each raw chunk by the tee (streams.py) while the parser is in its
 * steady state (first content seen, no partial event held): when the chunk
 * passes the kind's byte test (0: openai_plain with pattern = tier form, 1:
 * anthropic_deltas with pattern = delta line) it appends ``(chunk,)`` to
 * ``pending`` (the parser's LazyText queue; None: count only) while fewer than
 * ``room`` bytes were appended, adds the events and bytes to ``tally`` (a list
 * [events, bytes]: LazyText.take_absorbed folds it back in) and returns True; otherwise False
 * and changes nothing (the chunk then takes the parser's Python path, after
 * which the parser makes a new Absorber). No Python frame per chunk: that is
 * its point.
 */
typedef struct {
    PyObject_HEAD
    int kind;
    PyObject *pattern;
    PyObject *pending;
    PyObject *tally;
    Py_ssize_t room;
} Absorber;

static void
Absorber_dealloc(Absorber *self)
{
    Py_XDECREF(self->pattern);
    Py_XDECREF(self->pending);
    Py_XDECREF(self->tally);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Absorber_init(Absorber *self, PyObject *args, PyObject *kwds)
{
    int kind;
    PyObject *pattern, *pending, *tally;
    Py_ssize_t room;
    if (!PyArg_ParseTuple(args, "iO!OO!n:Absorber", &kind, &PyBytes_Type, &pattern, &pending, &PyList_Type, &tally,
                          &room))
        return -1;
    if ((kind != 0 && kind != 1) || (pending != Py_None && !PyList_CheckExact(pending)) ||
        PyList_GET_SIZE(tally) != 2 || !PyLong_CheckExact(PyList_GET_ITEM(tally, 0)) ||
        !PyLong_CheckExact(PyList_GET_ITEM(tally, 1))) {
        PyErr_SetString(PyExc_ValueError, "Absorber(kind 0|1, pattern bytes, pending list|None, tally [int, int], room)");
        return -1;
    }
    Py_XSETREF(self->pattern, Py_NewRef(pattern));
    Py_XSETREF(self->pending, Py_NewRef(pending));
    Py_XSETREF(self->tally, Py_NewRef(tally));
    self->kind = kind;
    self->room = room;
    return 0;
}

static int
tally_add(PyObject *tally, Py_ssize_t i, Py_ssize_t add)
{
    Py_ssize_t old = PyLong_AsSsize_t(PyList_GET_ITEM(tally, i));
    if (old == -1 && PyErr_Occurred())
        return -1;
    PyObject *v = PyLong_FromSsize_t(old + add);
    if (v == NULL)
        return -1;
    return PyList_SetItem(tally, i, v);  /* steals v */
}

static PyObject *
Absorber_call(Absorber *self, PyObject *args, PyObject *kwds)
{
    PyObject *data;
    if (kwds != NULL || PyTuple_GET_SIZE(args) != 1) {
        PyErr_SetString(PyExc_TypeError, "Absorber takes one chunk");
        return NULL;
    }
    data = PyTuple_GET_ITEM(args, 0);
    if (!PyBytes_CheckExact(data) || self->pattern == NULL)
        Py_RETURN_FALSE;
    const char *s = PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data), events;
    const char *pat = PyBytes_AS_STRING(self->pattern);
    Py_ssize_t plen = PyBytes_GET_SIZE(self->pattern);
    events = self->kind == 0 ? openai_plain_impl(s, n, pat, plen) : anthropic_deltas_impl(s, n, pat, plen);
    if (events < 0)
        Py_RETURN_FALSE;
    if (self->pending != Py_None) {
        if (n > self->room)
            Py_RETURN_FALSE;
        PyObject *item = PyTuple_Pack(1, data);
        if (item == NULL)
            return NULL;
        int rc = PyList_Append(self->pending, item);
        Py_DECREF(item);
        if (rc < 0)
            return NULL;
        self->room -= n;
    }
    if (tally_add(self->tally, 0, events) < 0 || tally_add(self->tally, 1, n) < 0)
        return NULL;
    Py_RETURN_TRUE;
}

static PyTypeObject AbsorberType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "inferops.instrumentation.providers._chunkscan.Absorber",
    .tp_basicsize = sizeof(Absorber),
    .tp_dealloc = (destructor)Absorber_dealloc,
    .tp_call = (ternaryfunc)Absorber_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A stream parser's absorb() for one quiet stretch of a stream (see the comment in _chunkscan.c).",
    .tp_init = (initproc)Absorber_init,
    .tp_new = PyType_GenericNew,
};

/* ---- request bodies: the few top-level members the adapters read, without decoding the prompt ---- */

static int
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* End of the string whose opening quote is at s[i] (index after the closing quote), or -1. */
static Py_ssize_t
skip_string(const char *s, Py_ssize_t n, Py_ssize_t i)
{
    Py_ssize_t p = i + 1;
    for (;;) {
        const char *q = memchr(s + p, '"', (size_t)(n - p));
        if (q == NULL)
            return -1;
        Py_ssize_t j = q - s, k = j;
        while (k > i + 1 && s[k - 1] == '\\')
            k--;
        if (((j - k) & 1) == 0)
            return j + 1;  /* an even run of backslashes: the quote is not escaped */
        p = j + 1;
    }
}

/* End of the JSON value starting at s[i] (not validated beyond nesting and strings), or -1. */
static Py_ssize_t
skip_value(const char *s, Py_ssize_t n, Py_ssize_t i)
{
    if (i >= n)
        return -1;
    char c = s[i];
    if (c == '"')
        return skip_string(s, n, i);
    if (c == '{' || c == '[') {
        Py_ssize_t depth = 0, p = i;
        while (p < n) {
            char d = s[p];
            if (d == '"') {
                p = skip_string(s, n, p);
                if (p < 0)
                    return -1;
                continue;
            }
            if (d == '{' || d == '[')
                depth++;
            else if (d == '}' || d == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return -1;
    }
    Py_ssize_t p = i;
    while (p < n && s[p] != ',' && s[p] != '}' && s[p] != ']' && !is_ws(s[p]))
        p++;
    return p > i ? p : -1;
}

/*
 * top_members(body, keys) -> bytes | None
 *
 * For a body that is one JSON object: the text of a JSON object holding only
 * its top-level members whose key is in ``keys`` (a tuple of at most 32 bytes
 * objects), each with its last value (as json.loads keeps it), in ``keys``
 * order; every other member's value is skipped, not decoded (b"{}" when none
 * is there). None when the body is not shaped like one JSON object, or a key
 * has an escape: the caller then decodes the whole body. Values are copied,
 * not validated (the caller decodes the result, which fails on a bad one).
 */
#define MAX_KEYS 32

static PyObject *
top_members(PyObject *self, PyObject *args)
{
    Py_buffer body;
    PyObject *keys, *out = NULL;
    Py_ssize_t v0s[MAX_KEYS], v1s[MAX_KEYS];
    if (!PyArg_ParseTuple(args, "y*O!:top_members", &body, &PyTuple_Type, &keys))
        return NULL;
    const char *s = body.buf;
    Py_ssize_t n = body.len, i = 0, nkeys = PyTuple_GET_SIZE(keys);
    if (nkeys > MAX_KEYS) {
        PyErr_SetString(PyExc_ValueError, "top_members: at most 32 keys");
        goto fail;
    }
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(keys, k))) {
            PyErr_SetString(PyExc_TypeError, "top_members: keys must be a tuple of bytes");
            goto fail;
        }
        v0s[k] = v1s[k] = -1;
    }
    while (i < n && is_ws(s[i]))
        i++;
    if (i >= n || s[i] != '{')
        goto none;
    i++;
    while (i < n && is_ws(s[i]))
        i++;
    if (i < n && s[i] == '}')
        goto end;
    for (;;) {
        if (i >= n || s[i] != '"')
            goto none;
        Py_ssize_t k0 = i + 1, k1 = skip_string(s, n, i);
        if (k1 < 0)
            goto none;
        k1--;  /* the closing quote */
        if (memchr(s + k0, '\\', (size_t)(k1 - k0)) != NULL)
            goto none;
        i = k1 + 1;
        while (i < n && is_ws(s[i]))
            i++;
        if (i >= n || s[i] != ':')
            goto none;
        i++;
        while (i < n && is_ws(s[i]))
            i++;
        Py_ssize_t v0 = i, v1 = skip_value(s, n, i);
        if (v1 < 0)
            goto none;
        for (Py_ssize_t k = 0; k < nkeys; k++) {
            PyObject *key = PyTuple_GET_ITEM(keys, k);
            if (PyBytes_GET_SIZE(key) == k1 - k0 && memcmp(PyBytes_AS_STRING(key), s + k0, (size_t)(k1 - k0)) == 0) {
                v0s[k] = v0;
                v1s[k] = v1;
                break;
            }
        }
        i = v1;
        while (i < n && is_ws(s[i]))
            i++;
        if (i < n && s[i] == ',') {
            i++;
            while (i < n && is_ws(s[i]))
                i++;
            continue;
        }
        if (i < n && s[i] == '}')
            goto end;
        goto none;
    }
end:
    i++;
    while (i < n && is_ws(s[i]))
        i++;
    if (i != n)
        goto none;
    {
        Py_ssize_t size = 2;
        for (Py_ssize_t k = 0; k < nkeys; k++)
            if (v0s[k] >= 0)
                size += PyBytes_GET_SIZE(PyTuple_GET_ITEM(keys, k)) + 4 + (v1s[k] - v0s[k]);
        out = PyBytes_FromStringAndSize(NULL, size);
        if (out == NULL)
            goto fail;
        char *w = PyBytes_AS_STRING(out);
        *w++ = '{';
        int first = 1;
        for (Py_ssize_t k = 0; k < nkeys; k++) {
            if (v0s[k] < 0)
                continue;
            PyObject *key = PyTuple_GET_ITEM(keys, k);
            if (!first)
                *w++ = ',';
            first = 0;
            *w++ = '"';
            memcpy(w, PyBytes_AS_STRING(key), (size_t)PyBytes_GET_SIZE(key));
            w += PyBytes_GET_SIZE(key);
            *w++ = '"';
            *w++ = ':';
            memcpy(w, s + v0s[k], (size_t)(v1s[k] - v0s[k]));
            w += v1s[k] - v0s[k];
        }
        *w++ = '}';
        if (_PyBytes_Resize(&out, w - PyBytes_AS_STRING(out)) < 0)
            goto fail;
    }
    PyBuffer_Release(&body);
    return out;
none:
    PyBuffer_Release(&body);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(out);
    PyBuffer_Release(&body);
    return NULL;
}

/* The first "\n\n" in [p, end), or NULL. */
static const char *
find_blank_line(const char *p, const char *end)
{
    while (end - p >= 2) {
        const char *q = memchr(p, '\n', (size_t)(end - p - 1));
        if (q == NULL)
            return NULL;
        if (q[1] == '\n')
            return q;
        p = q + 1;
    }
    return NULL;
}

/*
 * sse_simple(data) -> [(event name, data, end offset), ...] or None
 *
 * The events of a fragment made only of whole LF-terminated SSE events of the
 * two shapes _common.SSEStream._feed_lf inlines: one "data:" line, or an
 * "event:" line followed by one "data:" line. One space after each colon is
 * dropped, the name is decoded as UTF-8 with replacement, and each event comes
 * with the offset just past its blank line. None for anything else (a CR, a
 * partial or empty event, comments, id or retry lines, several data lines): the
 * Python splitter takes those. Each network read of an SSE stream is usually
 * one or a few such events; splitting them here saves ~1.3 us per event.
 */
static PyObject *
sse_simple(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const char *s = view.buf;
    Py_ssize_t n = view.len, start = 0;
    PyObject *out = NULL;
    if (n < 2 || s[n - 1] != '\n' || s[n - 2] != '\n' || memchr(s, '\r', (size_t)n) != NULL)
        goto none;
    out = PyList_New(0);
    if (out == NULL)
        goto fail;
    while (start < n) {
        const char *p = s + start;
        const char *e = find_blank_line(p, s + n);
        if (e == NULL || e == p)
            goto none;
        Py_ssize_t blen = e - p;
        const char *nl = memchr(p, '\n', (size_t)blen);
        const char *name = p, *d;
        Py_ssize_t name_len = 0, dlen;
        if (nl == NULL) {
            if (blen < 5 || memcmp(p, "data:", 5) != 0)
                goto none;
            d = p + 5;
            dlen = blen - 5;
        } else {
            Py_ssize_t l1 = nl - p, l2 = blen - l1 - 1;
            const char *q = nl + 1;
            if (l1 < 6 || memcmp(p, "event:", 6) != 0 || l2 < 5 || memcmp(q, "data:", 5) != 0
                    || memchr(q, '\n', (size_t)l2) != NULL)
                goto none;
            name = p + 6;
            name_len = l1 - 6;
            if (name_len > 0 && name[0] == ' ') {
                name++;
                name_len--;
            }
            d = q + 5;
            dlen = l2 - 5;
        }
        if (dlen > 0 && d[0] == ' ') {
            d++;
            dlen--;
        }
        start = (e - s) + 2;
        PyObject *item = Py_BuildValue("(Ny#n)", PyUnicode_DecodeUTF8(name, name_len, "replace"), d, dlen, start);
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            goto fail;
        }
        Py_DECREF(item);
    }
    PyBuffer_Release(&view);
    return out;
none:
    Py_XDECREF(out);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(out);
    PyBuffer_Release(&view);
    return NULL;
}

/* digit_run(data, n) -> True when `data` holds n or more ASCII digits in a row.
 *
 * _json.loads hands a body to orjson only when it has no run of 19 digits:
 * orjson turns an integer beyond 64 bits into a float where json.loads keeps an
 * int, and any number literal that could be one has at least 19 digits. One
 * pass, a compare per byte (~0.1 us per KiB); a false alarm (digits in a string)
 * only means json.loads decodes that body.
 */
static PyObject *
digit_run(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t want;
    if (!PyArg_ParseTuple(args, "y*n", &view, &want))
        return NULL;
    const unsigned char *s = view.buf;
    Py_ssize_t n = view.len, run = 0;
    int found = want <= 0;
    for (Py_ssize_t i = 0; i < n && !found; i++) {
        if ((unsigned char)(s[i] - '0') < 10) {
            if (++run >= want) {
                found = 1;
                break;
            }
        } else {
            run = 0;
        }
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(found);
}

/* tagged_headers(entries, prefix, name) -> whether an httpx Headers' raw list has a header whose lower-case
 * name starts with `prefix` or equals `name`; None when an entry is not a (bytes, bytes, value) triple.
 *
 * attribution.pop_inferops_headers asks this for every LLM call (X-Inferops-* and baggage are rare): a
 * compare or two per header here, where joining the names for two substring tests cost ~15k instructions.
 */
static PyObject *
tagged_headers(PyObject *self, PyObject *args)
{
    PyObject *entries;
    const char *prefix, *name;
    Py_ssize_t plen, nlen;
    if (!PyArg_ParseTuple(args, "O!y#y#", &PyList_Type, &entries, &prefix, &plen, &name, &nlen))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(entries);
    int found = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(entries, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3)
            Py_RETURN_NONE;
        PyObject *lower = PyTuple_GET_ITEM(item, 1);
        if (!PyBytes_CheckExact(lower))
            Py_RETURN_NONE;
        const char *k = PyBytes_AS_STRING(lower);
        Py_ssize_t klen = PyBytes_GET_SIZE(lower);
        if ((klen >= plen && memcmp(k, prefix, (size_t)plen) == 0)
                || (klen == nlen && memcmp(k, name, (size_t)nlen) == 0))
            found = 1;  /* keep checking the rest: a non-bytes entry anywhere means "take the long way" */
    }
    return PyBool_FromLong(found);
}

/* clean_values(d) -> True when every value of the dict d is exactly a str, bool, int or float, or a tuple of
 * exactly str: what the OpenTelemetry SDK stores unchanged as a span attribute (see spanattrs.clean, the
 * Python twin this replaces on every call: ~15k instructions for a GenAI span's ~26 values, ~1k here).
 */
static PyObject *
clean_values(PyObject *self, PyObject *d)
{
    if (!PyDict_CheckExact(d)) {
        PyErr_SetString(PyExc_TypeError, "clean_values() takes a dict");
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *v;
    while (PyDict_Next(d, &pos, &key, &v)) {
        PyTypeObject *t = Py_TYPE(v);
        if (t == &PyUnicode_Type || t == &PyBool_Type || t == &PyLong_Type || t == &PyFloat_Type)
            continue;
        if (t != &PyTuple_Type)
            Py_RETURN_FALSE;
        for (Py_ssize_t i = 0, n = PyTuple_GET_SIZE(v); i < n; i++) {
            if (Py_TYPE(PyTuple_GET_ITEM(v, i)) != &PyUnicode_Type)
                Py_RETURN_FALSE;
        }
    }
    Py_RETURN_TRUE;
}

/* set_entries(entries, items): Headers.__setitem__ on an httpx Headers' raw list, for each
 * (raw name, lower-case name, value) triple of `items` in order: the first entry whose lower-case name
 * equals the item's replaced by the item, later entries with that name removed, or the item appended.
 *
 * attribution.set_headers writes Content-Length / Accept-Encoding with it when inferops rewrote a request
 * (the OpenAI usage option): in Python the list searches cost ~25k instructions in front of the request.
 * Names are compared as bytes; an entry whose name is not bytes is compared with ==.
 */
static PyObject *
set_entries(PyObject *self, PyObject *args)
{
    PyObject *entries, *items;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &entries, &PyList_Type, &items))
        return NULL;
    for (Py_ssize_t j = 0; j < PyList_GET_SIZE(items); j++) {
        PyObject *item = PyList_GET_ITEM(items, j);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3 || !PyBytes_CheckExact(PyTuple_GET_ITEM(item, 1))) {
            PyErr_SetString(PyExc_TypeError, "set_entries() items must be (bytes, bytes, bytes) triples");
            return NULL;
        }
        PyObject *lower = PyTuple_GET_ITEM(item, 1);
        const char *l = PyBytes_AS_STRING(lower);
        Py_ssize_t llen = PyBytes_GET_SIZE(lower);
        int found = 0;
        Py_ssize_t i = 0;
        while (i < PyList_GET_SIZE(entries)) {
            PyObject *e = PyList_GET_ITEM(entries, i);
            int eq;
            PyObject *k = (PyTuple_Check(e) && PyTuple_GET_SIZE(e) >= 2) ? PyTuple_GET_ITEM(e, 1) : NULL;
            if (k != NULL && PyBytes_CheckExact(k)) {
                eq = PyBytes_GET_SIZE(k) == llen && memcmp(PyBytes_AS_STRING(k), l, (size_t)llen) == 0;
            } else if (k != NULL) {
                eq = PyObject_RichCompareBool(k, lower, Py_EQ);
                if (eq < 0)
                    return NULL;
            } else {
                eq = 0;
            }
            if (!eq) {
                i++;
            } else if (!found) {
                found = 1;
                Py_INCREF(item);
                if (PyList_SetItem(entries, i, item) < 0)  /* steals the reference */
                    return NULL;
                i++;
            } else if (PyList_SetSlice(entries, i, i + 1, NULL) < 0) {
                return NULL;
            }
        }
        if (!found && PyList_Append(entries, item) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"top_members", top_members, METH_VARARGS,
     "top_members(body, keys) -> a JSON object of only the wanted top-level members of a JSON object, or None."},
    {"openai_plain", openai_plain, METH_VARARGS,
     "openai_plain(data, tier_form) -> events in a fragment of plain chat chunks, or -1."},
    {"anthropic_deltas", anthropic_deltas, METH_VARARGS,
     "anthropic_deltas(data, delta_line) -> events in a fragment of content-delta and quiet events, or -1."},
    {"digit_run", digit_run, METH_VARARGS,
     "digit_run(data, n) -> True when data holds n or more ASCII digits in a row."},
    {"tagged_headers", tagged_headers, METH_VARARGS,
     "tagged_headers(entries, prefix, name) -> a lower-case name starting with prefix or equal to name, or None."},
    {"clean_values", clean_values, METH_O,
     "clean_values(d) -> every value of the dict is exactly str, bool, int, float or a tuple of str."},
    {"set_entries", set_entries, METH_VARARGS,
     "set_entries(entries, items) -> None: Headers.__setitem__ per (raw, lower, value) item on a raw header list."},
    {"sse_simple", sse_simple, METH_O,
     "sse_simple(data) -> [(event name, data, end offset), ...] for whole simple SSE events, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_chunkscan",
    "The instrumentation's byte scans, compiled (stream fragment test, request body members).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__chunkscan(void)
{
    if (PyType_Ready(&AbsorberType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Absorber", (PyObject *)&AbsorberType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
