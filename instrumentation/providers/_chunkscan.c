/*
 * inferops.instrumentation.providers._chunkscan: the per-chunk test of the stream fragment fast path, in C.
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
    Py_buffer data, tier;
    Py_ssize_t result = -1;
    if (!PyArg_ParseTuple(args, "y*y*:openai_plain", &data, &tier))
        return NULL;
    const char *s = data.buf;
    Py_ssize_t n = data.len;
    if (!ends_with(s, n, LIT("\n\n")) || memchr(s, '\r', (size_t)n) != NULL)
        goto done;
    if (count(s, n, LIT("\"usage\"")) != count(s, n, LIT("\"usage\":null")))
        goto done;
    if (count(s, n, LIT("\"finish_reason\"")) != count(s, n, LIT("\"finish_reason\":null")))
        goto done;
    Py_ssize_t tiers = count(s, n, LIT("\"service_tier\""));
    if (tiers) {
        Py_ssize_t known = count(s, n, LIT("\"service_tier\":null"));
        if (tier.len)
            known += count(s, n, tier.buf, tier.len);
        if (tiers != known)
            goto done;
    }
    if (count(s, n, LIT("\"error\"")) || ends_with(s, n, LIT("[DONE]\n\n")))
        goto done;
    result = count(s, n, LIT("\n\n"));
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&tier);
    return PyLong_FromSsize_t(result);
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
    Py_buffer data, line;
    Py_ssize_t result = -1;
    if (!PyArg_ParseTuple(args, "y*y*:anthropic_deltas", &data, &line))
        return NULL;
    const char *s = data.buf;
    Py_ssize_t n = data.len;
    if (line.len > 0 && ends_with(s, n, LIT("\n\n")) && memchr(s, '\r', (size_t)n) == NULL) {
        Py_ssize_t events = count(s, n, LIT("\n\n"));
        if (count(s, n, line.buf, line.len) == events && count(s, n, LIT("amazon-bedrock")) == 0)
            result = events;
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&line);
    return PyLong_FromSsize_t(result);
}

static PyMethodDef methods[] = {
    {"openai_plain", openai_plain, METH_VARARGS,
     "openai_plain(data, tier_form) -> events in a fragment of plain chat chunks, or -1."},
    {"anthropic_deltas", anthropic_deltas, METH_VARARGS,
     "anthropic_deltas(data, delta_line) -> events in a fragment of content-delta events, or -1."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_chunkscan",
    "The stream fragment fast path's byte test, compiled (see openai._plain_chunks, anthropic absorb).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__chunkscan(void)
{
    return PyModule_Create(&module);
}
