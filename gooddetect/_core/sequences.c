/* The sequence text loops in C: the line breaks of an input block (memchr), and, over a list of sequences (str), the
 * first one holding a letter a table refuses, and all of them through a byte table into one array of codes (no
 * joined copy). An ASCII str is read as its bytes; in any other, a code point above 127 reads as byte 0x80. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define NOT_ASCII 0x80

/* the number of `byte`s in the first `end` bytes of `data` (memchr's vector loop; no copy, no allocation) */
static PyObject *count_byte(PyObject *self, PyObject *args) {
    Py_buffer data;
    Py_ssize_t end;
    int byte;
    if (!PyArg_ParseTuple(args, "y*ni", &data, &end, &byte)) return NULL;
    if (end < 0 || end > data.len) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "end outside the data");
        return NULL;
    }
    Py_ssize_t count = 0;
    const char *at = data.buf, *stop = at + end;
    Py_BEGIN_ALLOW_THREADS
    while (at < stop && (at = memchr(at, byte, (size_t)(stop - at))) != NULL) {
        count++;
        at++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return PyLong_FromSsize_t(count);
}

/* the letters of all the sequences, if `seqs` is a list of str and `table` 256 bytes; else -1 with a
 * TypeError/ValueError */
static Py_ssize_t total_length(PyObject *seqs, Py_buffer *table) {
    if (table->len != 256) {
        PyErr_SetString(PyExc_ValueError, "table: expected 256 bytes");
        return -1;
    }
    if (!PyList_Check(seqs)) {
        PyErr_SetString(PyExc_TypeError, "seqs: expected a list of str");
        return -1;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(seqs); i++) {
        PyObject *seq = PyList_GET_ITEM(seqs, i);
        if (!PyUnicode_Check(seq)) {
            PyErr_SetString(PyExc_TypeError, "seqs: expected a list of str");
            return -1;
        }
        total += PyUnicode_GET_LENGTH(seq);
    }
    return total;
}

/* letter t of a str that is not ASCII, as the byte its table entry is read at */
static inline unsigned byte_of(int kind, const void *data, Py_ssize_t t) {
    Py_UCS4 c = PyUnicode_READ(kind, data, t);
    return c < NOT_ASCII ? c : NOT_ASCII;
}

/* table[byte] for each letter of `seq`, written from out[0] (out holds at least its length) */
static void translate(PyObject *seq, const uint8_t *table, uint8_t *out) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(seq);
    if (PyUnicode_IS_ASCII(seq)) {
        const uint8_t *text = PyUnicode_1BYTE_DATA(seq);
        for (Py_ssize_t t = 0; t < n; t++) out[t] = table[text[t]];
        return;
    }
    int kind = PyUnicode_KIND(seq);
    const void *data = PyUnicode_DATA(seq);
    for (Py_ssize_t t = 0; t < n; t++) out[t] = table[byte_of(kind, data, t)];
}

/* the index of the first sequence that is empty or holds a letter whose table byte is 0; -1 if none */
static PyObject *first_refused(PyObject *self, PyObject *args) {
    PyObject *seqs;
    Py_buffer table;
    if (!PyArg_ParseTuple(args, "Oy*", &seqs, &table)) return NULL;
    if (total_length(seqs, &table) < 0) {
        PyBuffer_Release(&table);
        return NULL;
    }
    const uint8_t *allowed = table.buf;
    Py_ssize_t found = -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(seqs) && found < 0; i++) {
        PyObject *seq = PyList_GET_ITEM(seqs, i);
        Py_ssize_t n = PyUnicode_GET_LENGTH(seq);
        if (n == 0) {
            found = i;
        } else if (PyUnicode_IS_ASCII(seq)) {
            const uint8_t *text = PyUnicode_1BYTE_DATA(seq);
            uint8_t all = 1;
            for (Py_ssize_t t = 0; t < n; t++) all &= allowed[text[t]];
            if (!all) found = i;
        } else {
            int kind = PyUnicode_KIND(seq);
            const void *data = PyUnicode_DATA(seq);
            for (Py_ssize_t t = 0; t < n && found < 0; t++)
                if (!allowed[byte_of(kind, data, t)]) found = i;
        }
    }
    PyBuffer_Release(&table);
    return PyLong_FromSsize_t(found);
}

/* out[...] = table[letter] for every letter of every sequence, end to end; returns the letters written */
static PyObject *translate_all(PyObject *self, PyObject *args) {
    PyObject *seqs;
    Py_buffer table, out;
    if (!PyArg_ParseTuple(args, "Oy*w*", &seqs, &table, &out)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t total = total_length(seqs, &table);
    if (total >= 0) {
        if (total > out.len) {
            PyErr_SetString(PyExc_ValueError, "out: shorter than the sequences");
        } else {
            uint8_t *at = out.buf;
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(seqs); i++) {
                PyObject *seq = PyList_GET_ITEM(seqs, i);
                translate(seq, table.buf, at);
                at += PyUnicode_GET_LENGTH(seq);
            }
            result = PyLong_FromSsize_t(total);
        }
    }
    PyBuffer_Release(&table);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"count_byte", count_byte, METH_VARARGS, "count_byte(data, end, byte) -> occurrences of byte in data[:end]"},
    {"first_refused", first_refused, METH_VARARGS,
     "first_refused(seqs, allowed) -> index of the first empty sequence or one with a letter whose allowed[] is 0, or -1"},
    {"translate_all", translate_all, METH_VARARGS,
     "translate_all(seqs, table, out) -> letters written: out = table[letter] of every sequence, end to end"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_sequences", "The sequence text loops.", -1, methods};

PyMODINIT_FUNC PyInit__sequences(void) { return PyModule_Create(&module); }
