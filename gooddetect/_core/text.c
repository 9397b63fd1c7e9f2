/* The TSV text loops in C: printf-style fixed-point numbers (byte for byte what Python's "%.6f" % x writes),
 * integers, grouped cells and tab-joined rows, written into uint8 buffers (see gooddetect.tsv for the column API,
 * which sizes the buffers). Why compiled: Python's own formatting of a large score table dominated `score`'s time.
 * Built with -ffp-contract=off: Dekker's product below needs every rounding as written. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "buffers.h"

#define SPLIT 134217729.0 /* 2^27 + 1: Veltkamp's splitter for doubles */

/* write the decimal digits of `value` at out + at; return the position after them */
static Py_ssize_t write_digits(uint64_t value, uint8_t *out, Py_ssize_t at) {
    int n = 1;
    for (uint64_t rest = value / 10; rest; rest /= 10) n++;
    for (int i = n - 1; i >= 0; i--) {
        out[at + i] = (uint8_t)('0' + value % 10);
        value /= 10;
    }
    return at + n;
}

/* room check: `need_bytes` more bytes fit in out from `at` */
#define ROOM(need_bytes)                                                                                              \
    if (at + (need_bytes) > size) {                                                                                   \
        overflow = 1;                                                                                                 \
        break;                                                                                                        \
    }

static PyObject *finish(Buffers *b, int overflow, Py_ssize_t at) {
    if (overflow) {
        PyErr_SetString(PyExc_ValueError, "output buffer too small");
        return release(b, NULL);
    }
    return release(b, PyLong_FromSsize_t(at));
}

static PyObject *write_ints(PyObject *self, PyObject *args) {
    PyObject *o_values, *o_out, *o_ends;
    if (!PyArg_ParseTuple(args, "OOO", &o_values, &o_out, &o_ends)) return NULL;
    Buffers b = {0};
    Py_buffer *values = take(&b, o_values, "values", 'i', 8, 1, 0), *out = take(&b, o_out, "out", 'u', 1, 1, 1),
              *ends = take(&b, o_ends, "ends", 'i', 8, 1, 1);
    if (b.failed || !same_rows(&b, values, ends)) return release(&b, NULL);
    const int64_t *v = values->buf;
    uint8_t *o = out->buf;
    int64_t *e = ends->buf;
    Py_ssize_t at = 0, size = out->shape[0];
    int overflow = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < values->shape[0]; i++) {
        ROOM(20)
        if (v[i] < 0) o[at++] = '-';
        at = write_digits(v[i] < 0 ? (uint64_t)(-(v[i] + 1)) + 1 : (uint64_t)v[i], o, at); /* |v|, also of -2^63 */
        e[i] = at;
    }
    Py_END_ALLOW_THREADS
    return finish(&b, overflow, at);
}

/* a * b - p exactly, p being the rounded product (Dekker's product, no FMA needed) */
static double product_error(double a, double b, double p) {
    double c = SPLIT * a;
    double a_hi = c - (c - a), a_lo = a - a_hi;
    c = SPLIT * b;
    double b_hi = c - (c - b), b_lo = b - b_hi;
    return ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo;
}

/* printf's %.{digits}f of finite values below 2^53 / 10^digits in magnitude (NaN: `na`). The scaled value
 * a * 10^digits = p + e exactly (p its rounded double); p's fraction is exact, so comparing it, then e, with one half
 * rounds as the exact value would. */
static PyObject *write_fixed(PyObject *self, PyObject *args) {
    PyObject *o_values, *o_na, *o_out, *o_ends;
    int digits;
    if (!PyArg_ParseTuple(args, "OiOOO", &o_values, &digits, &o_na, &o_out, &o_ends)) return NULL;
    Buffers b = {0};
    Py_buffer *values = take(&b, o_values, "values", 'f', 8, 1, 0), *na = take(&b, o_na, "na", 'u', 1, 1, 0),
              *out = take(&b, o_out, "out", 'u', 1, 1, 1), *ends = take(&b, o_ends, "ends", 'i', 8, 1, 1);
    if (b.failed || !same_rows(&b, values, ends) || !need(&b, digits >= 0 && digits <= 9, "digits outside [0, 9]"))
        return release(&b, NULL);
    const double *v = values->buf;
    const uint8_t *na_text = na->buf;
    Py_ssize_t na_size = na->shape[0];
    uint8_t *o = out->buf;
    int64_t *e = ends->buf;
    double scale = 1.0;
    int64_t unit = 1;
    for (int i = 0; i < digits; i++) {
        scale *= 10.0;
        unit *= 10;
    }
    Py_ssize_t at = 0, size = out->shape[0];
    int overflow = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < values->shape[0]; i++) {
        double x = v[i];
        ROOM(19 + digits > na_size ? 19 + digits : na_size) /* '-', 16 digits at most, '.', the decimals */
        if (isnan(x)) {
            for (Py_ssize_t j = 0; j < na_size; j++) o[at + j] = na_text[j];
            at += na_size;
            e[i] = at;
            continue;
        }
        if (signbit(x)) o[at++] = '-'; /* also for a negative value that rounds to zero, as printf writes it */
        double a = fabs(x), p = a * scale;
        double err = product_error(a, scale, p), whole = floor(p), fraction = p - whole;
        int64_t r = (int64_t)whole;
        if (fraction > 0.5 || (fraction == 0.5 && (err > 0 || (err == 0 && r % 2 == 1)))) r++;
        at = write_digits((uint64_t)(r / unit), o, at);
        if (digits) {
            o[at++] = '.';
            int64_t frac = r % unit;
            for (int j = digits - 1; j >= 0; j--) {
                o[at + j] = (uint8_t)('0' + frac % 10);
                frac /= 10;
            }
            at += digits;
        }
        e[i] = at;
    }
    Py_END_ALLOW_THREADS
    return finish(&b, overflow, at);
}

/* cell g of out: cells bounds[g]..bounds[g+1]-1 of (text, ends) joined by `separator`; `na` for fewer than two */
static PyObject *write_groups(PyObject *self, PyObject *args) {
    PyObject *o_text, *o_ends, *o_bounds, *o_na, *o_out, *o_out_ends;
    int separator;
    if (!PyArg_ParseTuple(args, "OOOiOOO", &o_text, &o_ends, &o_bounds, &separator, &o_na, &o_out, &o_out_ends))
        return NULL;
    Buffers b = {0};
    Py_buffer *text = take(&b, o_text, "text", 'u', 1, 1, 0), *ends = take(&b, o_ends, "ends", 'i', 8, 1, 0),
              *bounds = take(&b, o_bounds, "bounds", 'i', 8, 1, 0), *na = take(&b, o_na, "na", 'u', 1, 1, 0),
              *out = take(&b, o_out, "out", 'u', 1, 1, 1), *out_ends = take(&b, o_out_ends, "out_ends", 'i', 8, 1, 1);
    if (b.failed || !need(&b, bounds->shape[0] >= 1 && out_ends->shape[0] == bounds->shape[0] - 1,
                          "bounds and out_ends: wrong sizes"))
        return release(&b, NULL);
    const uint8_t *t = text->buf, *na_text = na->buf;
    const int64_t *e = ends->buf, *bound = bounds->buf;
    Py_ssize_t n_cells = ends->shape[0], text_size = text->shape[0], na_size = na->shape[0];
    for (Py_ssize_t g = 0; g < bounds->shape[0]; g++)
        if (!need(&b, bound[g] >= 0 && bound[g] <= n_cells && (g == 0 || bound[g] >= bound[g - 1]), "bounds out of order"))
            return release(&b, NULL);
    for (Py_ssize_t cell = 0; cell < n_cells; cell++)
        if (!need(&b, e[cell] >= (cell ? e[cell - 1] : 0) && e[cell] <= text_size, "ends out of order"))
            return release(&b, NULL);
    uint8_t *o = out->buf;
    int64_t *oe = out_ends->buf;
    Py_ssize_t at = 0, size = out->shape[0];
    int overflow = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t g = 0; g + 1 < bounds->shape[0]; g++) {
        int64_t first = bound[g], last = bound[g + 1];
        if (last - first < 2) {
            ROOM(na_size)
            for (Py_ssize_t j = 0; j < na_size; j++) o[at + j] = na_text[j];
            at += na_size;
        } else {
            int64_t start = first ? e[first - 1] : 0;
            ROOM((e[last - 1] - start) + (last - first))
            for (int64_t cell = first; cell < last; cell++) {
                if (cell > first) o[at++] = (uint8_t)separator;
                for (int64_t j = cell ? e[cell - 1] : 0; j < e[cell]; j++) o[at++] = t[j];
            }
        }
        oe[g] = at;
    }
    Py_END_ALLOW_THREADS
    return finish(&b, overflow, at);
}

/* out: row after row, the cells text[starts[c, i]:ends[c, i]] of every column c, tab-separated, newline-ended */
static PyObject *join_rows(PyObject *self, PyObject *args) {
    PyObject *o_text, *o_starts, *o_ends, *o_out;
    if (!PyArg_ParseTuple(args, "OOOO", &o_text, &o_starts, &o_ends, &o_out)) return NULL;
    Buffers b = {0};
    Py_buffer *text = take(&b, o_text, "text", 'u', 1, 1, 0), *starts = take(&b, o_starts, "starts", 'i', 8, 2, 0),
              *ends = take(&b, o_ends, "ends", 'i', 8, 2, 0), *out = take(&b, o_out, "out", 'u', 1, 1, 1);
    if (b.failed || !need(&b, starts->shape[0] == ends->shape[0] && starts->shape[1] == ends->shape[1],
                          "starts and ends: different shapes"))
        return release(&b, NULL);
    Py_ssize_t n_columns = starts->shape[0], n_rows = starts->shape[1], text_size = text->shape[0];
    const uint8_t *t = text->buf;
    const int64_t *s = starts->buf, *e = ends->buf;
    for (Py_ssize_t k = 0; k < n_columns * n_rows; k++)
        if (!need(&b, s[k] >= 0 && s[k] <= e[k] && e[k] <= text_size, "cell bounds outside the text"))
            return release(&b, NULL);
    uint8_t *o = out->buf;
    Py_ssize_t at = 0, size = out->shape[0];
    int overflow = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_rows && !overflow; i++)
        for (Py_ssize_t c = 0; c < n_columns; c++) {
            int64_t first = s[c * n_rows + i], last = e[c * n_rows + i];
            ROOM(last - first + 1)
            memcpy(o + at, t + first, (size_t)(last - first));
            at += last - first;
            o[at++] = c + 1 < n_columns ? '\t' : '\n';
        }
    Py_END_ALLOW_THREADS
    return finish(&b, overflow, at);
}

static PyMethodDef methods[] = {
    {"write_ints", write_ints, METH_VARARGS, "write_ints(values, out, ends) -> bytes written"},
    {"write_fixed", write_fixed, METH_VARARGS, "write_fixed(values, digits, na, out, ends) -> bytes written"},
    {"write_groups", write_groups, METH_VARARGS,
     "write_groups(text, ends, bounds, separator, na, out, out_ends) -> bytes written"},
    {"join_rows", join_rows, METH_VARARGS, "join_rows(text, starts, ends, out) -> bytes written"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_text", "The TSV text loops.", -1, methods};

PyMODINIT_FUNC PyInit__text(void) { return PyModule_Create(&module); }
