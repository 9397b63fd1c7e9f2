/* Arrays into the C loops through the buffer protocol: each taken C-contiguous and checked for element kind, size
 * and dimensions, held in a Buffers set and released together. After the first failure `take` takes nothing more
 * (callers test `failed` before using any view). */

#ifndef GOODDETECT_BUFFERS_H
#define GOODDETECT_BUFFERS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define MAX_BUFFERS 12

typedef struct {
    Py_buffer views[MAX_BUFFERS];
    int held;
    int failed;
} Buffers;

static Py_buffer no_view;

/* the element kind of a struct-module format: 'u' unsigned integer, 'i' signed integer, 'f' floating point */
static inline char format_kind(const char *format) {
    if (!format) return 'u'; /* unsigned bytes */
    while (*format && strchr("@=<>!|", *format)) format++;
    if (!format[0] || format[1]) return '?';
    if (strchr("BHILQN", *format)) return 'u';
    if (strchr("bhilqn", *format)) return 'i';
    if (strchr("efd", *format)) return 'f';
    return '?';
}

/* `obj` as a C-contiguous buffer of `ndim` dimensions of elements of `kind` and `itemsize` bytes (0: any), writable
 * if asked; a TypeError naming `name` if it is not */
static inline Py_buffer *take(Buffers *b, PyObject *obj, const char *name, char kind, Py_ssize_t itemsize, int ndim,
                       int writable) {
    if (b->failed) return &no_view;
    Py_buffer *view = &b->views[b->held];
    if (b->held == MAX_BUFFERS ||
        PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0) {
        b->failed = 1;
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "too many arrays");
        return &no_view;
    }
    b->held++;
    if (format_kind(view->format) != kind || (itemsize && view->itemsize != itemsize) || view->ndim != ndim) {
        PyErr_Format(PyExc_TypeError, "%s: expected a %d-dimensional array of %s of %zd bytes (0: any), got format %s "
                     "with %d dimensions", name, ndim,
                     kind == 'f' ? "floats" : kind == 'i' ? "signed integers" : "unsigned integers", itemsize,
                     view->format ? view->format : "B", view->ndim);
        b->failed = 1;
        return &no_view;
    }
    return view;
}

/* 1 if `condition`, else a ValueError with `message` and 0 */
static inline int need(Buffers *b, int condition, const char *message) {
    if (!condition) {
        PyErr_SetString(PyExc_ValueError, message);
        b->failed = 1;
    }
    return condition;
}

static inline int same_rows(Buffers *b, Py_buffer *x, Py_buffer *y) {
    return need(b, x->shape[0] == y->shape[0], "arrays with different numbers of rows");
}

/* every length in [0, width]: rows never read past their end */
static inline int lengths_fit(Buffers *b, Py_buffer *lengths, Py_ssize_t width) {
    const long long *len = lengths->buf;
    for (Py_ssize_t i = 0; i < lengths->shape[0]; i++)
        if (len[i] < 0 || len[i] > width) return need(b, 0, "a row length outside [0, row width]");
    return 1;
}

/* release every buffer taken; return `result` */
static inline PyObject *release(Buffers *b, PyObject *result) {
    for (int i = 0; i < b->held; i++) PyBuffer_Release(&b->views[i]);
    b->held = 0;
    return result;
}

#endif
