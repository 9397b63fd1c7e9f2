/* The support table's loops: the canonical k-mer minimizers of sequences of base codes (0-3 A C G T, anything else
 * unknown), and a Bloom filter of their hashes. A minimizer is the smallest hash among w consecutive k-mers, so any
 * k + w - 1 known bases hold at least one: a read of that length always gets a lookup. */

#include "buffers.h"
#include <stdint.h>

#define MAX_K 31
#define MAX_W 64

/* a 64-bit finaliser (murmur3's fmix64): neighbouring k-mers get unrelated hashes, so minimizers are spread evenly */
static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* the order of k-mers within a window: one multiply spreads a k-mer's bits well enough to pick minimizers at
 * their expected density, 2 / (w + 1) */
static inline uint64_t order(uint64_t x) {
    x *= 0x9e3779b97f4a7c15ULL;
    return x ^ (x >> 29);
}

typedef struct {
    int k, w;
    uint64_t mask, forward, reverse;
    int run;                      /* known bases in a row, up to the current one */
    uint64_t ring[MAX_W];         /* hashes of the last w k-mers */
    int slot;                     /* the ring slot of the next k-mer */
    int best;                     /* the slot of the smallest hash in the window, -1: to find again */
} Walker;

static void start(Walker *s, int k, int w) {
    s->k = k;
    s->w = w;
    s->mask = (1ULL << (2 * k)) - 1;
    s->forward = s->reverse = 0;
    s->run = s->slot = 0;
    s->best = -1;
}

/* feed base `code`; 1 and the minimizer's hash in *out when a new minimizer is due: the first full window's, then
 * each time the smallest hash moves to another k-mer. The smallest hash is kept as the window slides and looked for
 * again only when it leaves the window (ties: the earliest). */
static inline int step(Walker *s, uint8_t code, uint64_t *out) {
    if (code > 3) {
        s->run = 0;
        s->best = -1;
        return 0;
    }
    uint64_t forward = ((s->forward << 2) | code) & s->mask;
    uint64_t reverse = (s->reverse >> 2) | ((uint64_t)(3 - code) << (2 * (s->k - 1)));
    s->forward = forward;
    s->reverse = reverse;
    int run = ++s->run;
    if (run < s->k) return 0;
    uint64_t hash = order(forward < reverse ? forward : reverse);
    int now = s->slot, best = s->best, w = s->w, moved = 1;
    s->ring[now] = hash;
    s->slot = now + 1 == w ? 0 : now + 1;
    if (best == now || best < 0) {  /* the smallest left the window (its slot is this one's): find it again */
        int valid = run - s->k + 1 < w ? run - s->k + 1 : w, j = now;
        uint64_t smallest = hash;
        best = now;
        for (int t = 1; t < valid; t++) {
            j = j == 0 ? w - 1 : j - 1;
            uint64_t h = s->ring[j];
            best = h <= smallest ? j : best;
            smallest = h <= smallest ? h : smallest;
        }
    } else if (hash < s->ring[best]) {
        best = now;
    } else {
        moved = 0;
    }
    s->best = best;
    if (run < s->k + w - 1 || (!moved && run > s->k + w - 1)) return 0;
    *out = s->ring[best];
    return 1;
}

/* The Bloom filter is blocked: a key sets or tests `n_hashes` bits of one 512-bit block (one cache line). Minimizer
 * hashes are the smallest of their windows, so their own bits are skewed: the block comes from a rehash of the key,
 * the bits within from a rehash of that, 9 bits each. */
#define BLOCK_WORDS 8
#define PENDING 64  /* keys whose blocks are fetched while the walk goes on, then tested together */

static inline uint64_t *block_of(uint64_t *filter, Py_ssize_t blocks, uint64_t hash) {
    return filter + (Py_ssize_t)((hash >> 32) * (uint64_t)blocks >> 32) * BLOCK_WORDS;
}

static inline uint64_t second(uint64_t hash) { return mix(hash ^ 0x9e3779b97f4a7c15ULL); }

static int settings_fit(int k, int w, int hashes) {
    if (k < 1 || k > MAX_K || w < 1 || w > MAX_W || hashes < 1 || hashes > 7) {
        PyErr_SetString(PyExc_ValueError, "support settings outside 1 <= k <= 31, 1 <= w <= 64, 1 <= hashes <= 7");
        return 0;
    }
    return 1;
}

/* minimizers(codes, k, w, out) -> n: the hashes of the minimizers of one sequence, in order, into out[:n] */
static PyObject *minimizers(PyObject *self, PyObject *args) {
    PyObject *codes_obj, *out_obj;
    int k, w;
    if (!PyArg_ParseTuple(args, "OiiO", &codes_obj, &k, &w, &out_obj) || !settings_fit(k, w, 1)) return NULL;
    Buffers b = {0};
    Py_buffer *codes = take(&b, codes_obj, "codes", 'u', 1, 1, 0);
    Py_buffer *out = take(&b, out_obj, "out", 'u', 8, 1, 1);
    if (b.failed || !need(&b, out->shape[0] >= codes->shape[0], "out: shorter than the sequence"))
        return release(&b, NULL);
    const uint8_t *c = codes->buf;
    uint64_t *o = out->buf;
    Py_ssize_t n = 0;
    Py_BEGIN_ALLOW_THREADS
    Walker s;
    start(&s, k, w);
    for (Py_ssize_t i = 0; i < codes->shape[0]; i++)
        if (step(&s, c[i], &o[n])) n++;
    Py_END_ALLOW_THREADS
    return release(&b, PyLong_FromSsize_t(n));
}

/* how many of the n keys (rehashed by `second`) the filter holds */
static inline long long held(const uint64_t *filter, Py_ssize_t blocks, const uint64_t *spread, int n, int n_hashes) {
    long long found = 0;
    for (int i = 0; i < n; i++) {
        const uint64_t *block = block_of((uint64_t *)filter, blocks, spread[i]);
        uint64_t within = mix(spread[i]), all = 1;
        for (int j = 0; j < n_hashes; j++, within >>= 9) all &= block[(within >> 6) & 7] >> (within & 63);
        found += (long long)all;
    }
    return found;
}

static int filter_fits(Buffers *b, Py_buffer *bits) {
    return need(b, bits->shape[0] >= BLOCK_WORDS && bits->shape[0] % BLOCK_WORDS == 0,
                "bits: not a whole number of 512-bit blocks");
}

/* insert(hashes, bits, n_hashes): set each hash's bits in the Bloom filter `bits` */
static PyObject *insert(PyObject *self, PyObject *args) {
    PyObject *hashes_obj, *bits_obj;
    int n_hashes;
    if (!PyArg_ParseTuple(args, "OOi", &hashes_obj, &bits_obj, &n_hashes) || !settings_fit(1, 1, n_hashes))
        return NULL;
    Buffers b = {0};
    Py_buffer *hashes = take(&b, hashes_obj, "hashes", 'u', 8, 1, 0);
    Py_buffer *bits = take(&b, bits_obj, "bits", 'u', 8, 1, 1);
    if (b.failed || !filter_fits(&b, bits)) return release(&b, NULL);
    const uint64_t *h = hashes->buf;
    uint64_t *filter = bits->buf;
    Py_ssize_t blocks = bits->shape[0] / BLOCK_WORDS;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < hashes->shape[0]; i++) {
        uint64_t spread = second(h[i]), *block = block_of(filter, blocks, spread), within = mix(spread);
        for (int j = 0; j < n_hashes; j++, within >>= 9) block[(within >> 6) & 7] |= 1ULL << (within & 63);
    }
    Py_END_ALLOW_THREADS
    return release(&b, Py_NewRef(Py_None));
}

/* query(codes, lengths, bits, k, w, n_hashes, hits, lookups): per row of the padded codes, how many of its
 * minimizers the filter holds and how many it has */
static PyObject *query(PyObject *self, PyObject *args) {
    PyObject *codes_obj, *lengths_obj, *bits_obj, *hits_obj, *lookups_obj;
    int k, w, n_hashes;
    if (!PyArg_ParseTuple(args, "OOOiiiOO", &codes_obj, &lengths_obj, &bits_obj, &k, &w, &n_hashes, &hits_obj,
                          &lookups_obj) || !settings_fit(k, w, n_hashes))
        return NULL;
    Buffers b = {0};
    Py_buffer *codes = take(&b, codes_obj, "codes", 'u', 1, 2, 0);
    Py_buffer *lengths = take(&b, lengths_obj, "lengths", 'i', 8, 1, 0);
    Py_buffer *bits = take(&b, bits_obj, "bits", 'u', 8, 1, 0);
    Py_buffer *hits = take(&b, hits_obj, "hits", 'i', 8, 1, 1);
    Py_buffer *lookups = take(&b, lookups_obj, "lookups", 'i', 8, 1, 1);
    if (b.failed || !same_rows(&b, codes, lengths) || !same_rows(&b, codes, hits) || !same_rows(&b, codes, lookups) ||
        !lengths_fit(&b, lengths, codes->shape[1]) || !filter_fits(&b, bits))
        return release(&b, NULL);
    uint64_t *filter = bits->buf;
    Py_ssize_t blocks = bits->shape[0] / BLOCK_WORDS, width = codes->shape[1];
    const long long *len = lengths->buf;
    long long *found = hits->buf, *looked = lookups->buf;
    Py_BEGIN_ALLOW_THREADS
    uint64_t pending[PENDING];
    for (Py_ssize_t r = 0; r < codes->shape[0]; r++) {
        const uint8_t *c = (const uint8_t *)codes->buf + r * width;
        Walker s;
        start(&s, k, w);
        long long f = 0, l = 0;
        int n = 0;
        uint64_t hash;
        for (Py_ssize_t i = 0; i < len[r]; i++) {
            if (!step(&s, c[i], &hash)) continue;
            pending[n] = second(hash);
            __builtin_prefetch(block_of(filter, blocks, pending[n]));
            if (++n == PENDING) {
                f += held(filter, blocks, pending, n, n_hashes);
                l += n;
                n = 0;
            }
        }
        found[r] = f + held(filter, blocks, pending, n, n_hashes);
        looked[r] = l + n;
    }
    Py_END_ALLOW_THREADS
    return release(&b, Py_NewRef(Py_None));
}

static PyMethodDef methods[] = {
    {"minimizers", minimizers, METH_VARARGS, "minimizers(codes, k, w, out) -> n: minimizer hashes into out[:n]"},
    {"insert", insert, METH_VARARGS, "insert(hashes, bits, n_hashes): add the hashes to the Bloom filter"},
    {"query", query, METH_VARARGS,
     "query(codes, lengths, bits, k, w, n_hashes, hits, lookups): minimizers found and looked up per row"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_support", "The support table's loops.", -1, methods};

PyMODINIT_FUNC PyInit__support(void) { return PyModule_Create(&module); }
