/* The loops of the k-mer model in C: counting, scoring and the model file's table layouts (see kmer.py for the
 * Python face, tests/test_kmer.py for the brute-force references they are checked against).
 *
 * Codes are uint64 words of 2-bit bases, oldest base most significant. Per position t of a row: `fwd` holds the
 * last `width` bases up to and including t, `rev` their reverse complement (same layout), `run` the number of known
 * bases directly before t (the usable context; an unknown base, code 4, resets it).
 *
 * Arrays come in through the buffer protocol (C-contiguous numpy arrays), checked for element kind, size and
 * shape. Every loop runs without the GIL, so row blocks score on several threads. Floating-point expressions are
 * evaluated exactly as written (built with -ffp-contract=off: no fused multiply-add), so results do not depend on
 * the compiler or the processor. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buffers.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define COUNT_MASK 0xF
#define COUNT_CAP 15
#define BUCKET_SLOTS 8
#define PRODUCT_BLOCK 16
#define CLASS_AHEAD 4 /* positions whose class-table rows are prefetched ahead of the one being added up */
#define MAX_TOP_ORDER 29 /* 4^(k+1) cells of the top direct order stay within an int64 */
#define MAX_HASHED_ORDERS 32

typedef uint64_t u64;

/* x > 0 ? x : 0, without a branch where the processor has SSE2 (maxss/maxsd return exactly that, -0 and NaN
 * included): the sign of a discounted count is as good as random, and a mispredicted branch costs more than the
 * rest of the formula */
static inline float positive_part_f(float x) {
#if defined(__SSE2__)
    return _mm_cvtss_f32(_mm_max_ss(_mm_set_ss(x), _mm_setzero_ps()));
#else
    return x > 0.0f ? x : 0.0f;
#endif
}

static inline double positive_part(double x) {
#if defined(__SSE2__)
    return _mm_cvtsd_f64(_mm_max_sd(_mm_set_sd(x), _mm_setzero_pd()));
#else
    return x > 0.0 ? x : 0.0;
#endif
}

/* the set bits of a byte (no popcnt instruction in the baseline x86-64 the extension is built for) */
static inline int popcount8(int v) {
    v = v - ((v >> 1) & 0x55);
    v = (v & 0x33) + ((v >> 2) & 0x33);
    return (v + (v >> 4)) & 0x0F;
}

static inline u64 low_mask(int64_t n_bases) { return n_bases >= 32 ? ~(u64)0 : ((u64)1 << (2 * n_bases)) - 1; }

/* bucket: the top hash_bits bits, fingerprint: the low 8 bits (never 0) of a splitmix64 hash of key */
static inline void bucket_and_fingerprint(u64 key, int hash_bits, int64_t *bucket, u64 *fingerprint) {
    u64 h = key ^ (key >> 30);
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBULL;
    h ^= h >> 31;
    u64 f = h & 0xFF;
    *bucket = (int64_t)(h >> (64 - hash_bits));
    *fingerprint = f > 1 ? f : 1;
}

/* fwd, rev and the base after code x (an unknown base, 4, enters as 0 in fwd and 3 in rev; `run` says it is there) */
static inline u64 roll(u64 *fwd, u64 *rev, uint8_t x, int64_t width) {
    u64 base = x & 3;
    *fwd = ((*fwd << 2) | base) & low_mask(width);
    *rev = (*rev >> 2) | ((3 - base) << (2 * (width - 1)));
    return base;
}

/* A hashed order k's key in the rolled words (see split_word): the middle's mask, where the first base sits in fwd
 * and where the middle's reverse complement sits in rev */
typedef struct {
    int64_t order;
    u64 middle_mask;
    int first_shift, rc_shift;
} OrderShape;

static OrderShape order_shape(int64_t k, int64_t width) {
    return (OrderShape){k, low_mask(k - 1), (int)(2 * k), (int)(2 * (width - k))};
}

/* For the (k+1)-mer a·m·x ending at a position (k: the shape's order): the filing key m*, m or, with `canonical`, the
 * smaller of m and its reverse complement (read from rev: rc(a·m·x) = x'·rc(m)·a'); flipped, palindromic and a. */
static inline u64 split_word(const OrderShape *shape, u64 fwd, u64 rev, int canonical, int *flipped, int *palindromic,
                             u64 *first) {
    u64 middle = (fwd >> 2) & shape->middle_mask;
    *first = (fwd >> shape->first_shift) & 3;
    if (!canonical) {
        *flipped = *palindromic = 0;
        return middle;
    }
    u64 rc_middle = (rev >> shape->rc_shift) & shape->middle_mask;
    *flipped = rc_middle < middle;
    *palindromic = rc_middle == middle;
    return rc_middle < middle ? rc_middle : middle;
}

/* the 4-bit (first, last) code of a slot: the word's, or its reverse complement's if flipped */
static inline u64 pair_bits(u64 first, u64 last, int flipped) {
    return flipped ? ((3 - last) << 2) | (3 - first) : (first << 2) | last;
}

/* Add `count` (1-15) occurrences of the entry `key` (fingerprint << 8 | pair << 4) to its bucket: to its slot
 * (saturating at 15), to a new slot, or, in a full bucket, in place of the entry of the lowest key when its own key is
 * higher (else dropped). So a bucket keeps, of all the entries that ever reach it, those of the highest keys, each
 * counted since it first came: the same whatever order the entries come in, which lets counts made in parts be merged
 * exactly (merge_buckets adds a slot of one table to the other this way). */
static inline void add_entry(uint16_t *slots, int64_t key, int64_t count) {
    int lowest = 0;
    for (int j = 0; j < BUCKET_SLOTS; j++) {
        int64_t slot = slots[j];
        if (slot == 0) {
            slots[j] = (uint16_t)(key | count);
            return;
        }
        if ((slot & 0xFFF0) == key) {
            int64_t sum = (slot & COUNT_MASK) + count;
            slots[j] = (uint16_t)(key | (sum < COUNT_CAP ? sum : COUNT_CAP));
            return;
        }
        if (slot < (int64_t)slots[lowest]) lowest = j;
    }
    if (key > ((int64_t)slots[lowest] & 0xFFF0)) slots[lowest] = (uint16_t)(key | count);
}

/* count one occurrence of the entry (fingerprint, pair) */
static inline void insert_entry(uint16_t *slots, u64 fingerprint, u64 pair) {
    add_entry(slots, (int64_t)(fingerprint << 8) | (int64_t)(pair << 4), 1);
}

/* 1 if the words rolled over `width` bases hold the top direct order's words (top + 1 bases), else a ValueError
 * and 0 */
static int top_order_fits(Buffers *b, int64_t top, int64_t width) {
    return need(b, top >= 0 && top <= MAX_TOP_ORDER && top + 1 <= width && width <= 32,
                "direct orders: top order outside the rolled width");
}

/* 1 if every direct order k <= top of a table of `rows` rows fits (rows offsets[k] .. offsets[k] + 4^(k+1) - 1) and
 * the top order fits the rolled width, else a ValueError and 0 */
static int direct_orders_fit(Buffers *b, Py_buffer *offsets, int64_t top, Py_ssize_t rows, int64_t width) {
    if (!top_order_fits(b, top, width) || !need(b, offsets->shape[0] > top, "direct orders: fewer offsets than orders"))
        return 0;
    const int64_t *off = offsets->buf;
    for (int64_t k = 0; k <= top; k++)
        if (!need(b, off[k] >= 0 && off[k] + ((int64_t)4 << (2 * k)) <= rows, "direct orders: past the end of the table"))
            return 0;
    return 1;
}

static int hash_bits_of(Py_ssize_t n_buckets) {
    int bits = 0;
    while (((Py_ssize_t)1 << bits) < n_buckets) bits++;
    return bits;
}

/* 1 if the hashed orders fit the words rolled over `width` bases (1 <= k < width) and their tables' buckets are a
 * power of two (a bucket index is the hash's top bits), setting *hash_bits; else a ValueError and 0 */
static int hashed_orders_fit(Buffers *b, Py_buffer *orders, Py_ssize_t n_buckets, int64_t width, int *hash_bits) {
    const int64_t *ord = orders->buf;
    if (!need(b, orders->shape[0] <= MAX_HASHED_ORDERS, "hashed orders: too many")) return 0;
    for (Py_ssize_t j = 0; j < orders->shape[0]; j++)
        if (!need(b, ord[j] >= 1 && ord[j] + 1 <= width && width <= 32, "hashed orders: outside the rolled width"))
            return 0;
    *hash_bits = orders->shape[0] ? hash_bits_of(n_buckets) : 0;
    return need(b, !orders->shape[0] || (n_buckets >= 256 && ((Py_ssize_t)1 << *hash_bits) == n_buckets),
                "hashed tables: the buckets are not a power of two of at least 2^8");
}

/* The tables' layout, as counting and scoring read it: each direct order's row offset and word mask up to the top
 * order, the hashed orders' shapes, and the hash's size */
typedef struct {
    const int64_t *offsets;
    int64_t top, width;
    int canonical, hash_bits;
    u64 word_masks[MAX_TOP_ORDER + 1]; /* low_mask(k + 1) */
    OrderShape shapes[MAX_HASHED_ORDERS];
} Layout;

static void layout_init(Layout *l, const int64_t *offsets, int64_t top, const int64_t *orders, Py_ssize_t n_orders,
                        int canonical, int64_t width, int hash_bits) {
    l->offsets = offsets;
    l->top = top;
    l->width = width;
    l->canonical = canonical;
    l->hash_bits = hash_bits;
    for (int64_t k = 0; k <= top; k++) l->word_masks[k] = low_mask(k + 1);
    for (Py_ssize_t j = 0; j < n_orders; j++) l->shapes[j] = order_shape(orders[j], width);
}

/* -- counting ----------------------------------------------------------------------------------------------------- */

static PyObject *count_rows(PyObject *self, PyObject *args) {
    PyObject *o_codes, *o_lengths, *o_skip, *o_top_counts, *o_tables, *o_orders;
    long long top, width;
    int canonical;
    if (!PyArg_ParseTuple(args, "OOOLOOOpL", &o_codes, &o_lengths, &o_skip, &top, &o_top_counts, &o_tables,
                          &o_orders, &canonical, &width))
        return NULL;
    Buffers b = {0};
    Py_buffer *codes = take(&b, o_codes, "codes", 'u', 1, 2, 0), *lengths = take(&b, o_lengths, "lengths", 'i', 8, 1, 0),
              *skip = take(&b, o_skip, "skip", 'i', 8, 1, 0), *counts = take(&b, o_top_counts, "top_counts", 'u', 8, 1, 1),
              *tables = take(&b, o_tables, "tables", 'u', 2, 3, 1), *orders = take(&b, o_orders, "orders", 'i', 8, 1, 0);
    int hash_bits = 0;
    if (b.failed || !same_rows(&b, codes, lengths) || !same_rows(&b, codes, skip) ||
        !top_order_fits(&b, top, width) ||
        !need(&b, counts->shape[0] == ((Py_ssize_t)1 << (2 * (top + 1))), "top_counts: wrong size") ||
        !need(&b, tables->shape[0] == orders->shape[0] && tables->shape[2] == BUCKET_SLOTS, "tables: wrong shape") ||
        !hashed_orders_fit(&b, orders, tables->shape[1], width, &hash_bits) ||
        !lengths_fit(&b, lengths, codes->shape[1]))
        return release(&b, NULL);
    const uint8_t *c = codes->buf;
    const int64_t *len = lengths->buf, *sk = skip->buf, *ord = orders->buf;
    u64 *top_counts = counts->buf;
    uint16_t *tab = tables->buf;
    Py_ssize_t rows = codes->shape[0], row_length = codes->shape[1], n_orders = orders->shape[0];
    Py_ssize_t n_buckets = tables->shape[1];
    Layout l;
    layout_init(&l, NULL, top, ord, n_orders, canonical, width, hash_bits);
    long long positions = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < rows; i++) {
        u64 fwd = 0, rev = 0;
        int64_t run = 0;
        const uint8_t *row = c + i * row_length;
        for (int64_t t = 0; t < len[i]; t++) {
            uint8_t x = row[t];
            u64 base = roll(&fwd, &rev, x, width);
            if (x >= 4) {
                run = 0;
                continue;
            }
            if (t >= sk[i]) {
                positions++;
                if (run >= top) top_counts[fwd & l.word_masks[top]]++;
                for (Py_ssize_t j = 0; j < n_orders; j++) {
                    if (run < l.shapes[j].order) break;
                    int flipped, palindromic;
                    u64 first, fingerprint;
                    int64_t bucket;
                    u64 key = split_word(&l.shapes[j], fwd, rev, canonical, &flipped, &palindromic, &first);
                    bucket_and_fingerprint(key, hash_bits, &bucket, &fingerprint);
                    uint16_t *slots = tab + (j * n_buckets + bucket) * BUCKET_SLOTS;
                    insert_entry(slots, fingerprint, pair_bits(first, base, flipped));
                    if (palindromic) /* m equal to its reverse complement: file the reverse-strand word too */
                        insert_entry(slots, fingerprint, pair_bits(first, base, 1));
                }
            }
            run++;
        }
    }
    Py_END_ALLOW_THREADS
    return release(&b, PyLong_FromLongLong(positions));
}

static PyObject *insert(PyObject *self, PyObject *args) {
    PyObject *o_table;
    long long bucket;
    unsigned long long fingerprint, pair;
    if (!PyArg_ParseTuple(args, "OLKK", &o_table, &bucket, &fingerprint, &pair)) return NULL;
    Buffers b = {0};
    Py_buffer *table = take(&b, o_table, "table", 'u', 2, 2, 1);
    if (b.failed || !need(&b, table->shape[1] == BUCKET_SLOTS && bucket >= 0 && bucket < table->shape[0],
                          "table: wrong shape or bucket"))
        return release(&b, NULL);
    insert_entry((uint16_t *)table->buf + bucket * BUCKET_SLOTS, fingerprint, pair);
    Py_INCREF(Py_None);
    return release(&b, Py_None);
}

/* Add the hashed table `other` into `table` (both counted with insert_entry): per bucket, the entries of the highest
 * keys of both, the counts of an entry in both added (saturating): what counting both inputs into one table gives. */
static PyObject *merge_buckets(PyObject *self, PyObject *args) {
    PyObject *o_table, *o_other;
    if (!PyArg_ParseTuple(args, "OO", &o_table, &o_other)) return NULL;
    Buffers b = {0};
    Py_buffer *table = take(&b, o_table, "table", 'u', 2, 2, 1), *other = take(&b, o_other, "other", 'u', 2, 2, 0);
    if (b.failed || !need(&b, table->shape[0] == other->shape[0] && table->shape[1] == BUCKET_SLOTS &&
                                  other->shape[1] == BUCKET_SLOTS, "tables of different shapes"))
        return release(&b, NULL);
    uint16_t *mine = table->buf;
    const uint16_t *theirs_all = other->buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t bucket = 0; bucket < table->shape[0]; bucket++) {
        uint16_t *slots = mine + bucket * BUCKET_SLOTS;
        for (int k = 0; k < BUCKET_SLOTS; k++) {
            int64_t theirs = theirs_all[bucket * BUCKET_SLOTS + k];
            if (theirs != 0) add_entry(slots, theirs & 0xFFF0, theirs & COUNT_MASK);
        }
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    return release(&b, Py_None);
}

/* out[t] = tables[t] with half the buckets: bucket b takes the entries of buckets 2b and 2b+1, the most frequent
 * first (earlier entries first among equals) while they fit. */
static PyObject *halve(PyObject *self, PyObject *args) {
    PyObject *o_tables, *o_out;
    if (!PyArg_ParseTuple(args, "OO", &o_tables, &o_out)) return NULL;
    Buffers b = {0};
    Py_buffer *tables = take(&b, o_tables, "tables", 'u', 2, 3, 0), *out = take(&b, o_out, "out", 'u', 2, 3, 1);
    if (b.failed || !need(&b, tables->shape[0] == out->shape[0] && tables->shape[1] == 2 * out->shape[1] &&
                                  tables->shape[2] == BUCKET_SLOTS && out->shape[2] == BUCKET_SLOTS, "out: wrong shape"))
        return release(&b, NULL);
    const uint16_t *in = tables->buf;
    uint16_t *o = out->buf;
    Py_ssize_t n_tables = out->shape[0], n_buckets = out->shape[1];
    Py_BEGIN_ALLOW_THREADS
    uint16_t merged[2 * BUCKET_SLOTS];
    for (Py_ssize_t t = 0; t < n_tables; t++) {
        for (Py_ssize_t bucket = 0; bucket < n_buckets; bucket++) {
            int n = 0;
            for (Py_ssize_t source = 2 * bucket; source <= 2 * bucket + 1; source++)
                for (int j = 0; j < BUCKET_SLOTS; j++) {
                    uint16_t slot = in[(t * 2 * n_buckets + source) * BUCKET_SLOTS + j];
                    if (slot != 0) merged[n++] = slot;
                }
            for (int j = 0; j < (n < BUCKET_SLOTS ? n : BUCKET_SLOTS); j++) {
                int best = j;
                for (int m = j + 1; m < n; m++)
                    if ((merged[m] & COUNT_MASK) > (merged[best] & COUNT_MASK)) best = m;
                uint16_t chosen = merged[best];
                for (int m = best; m > j; m--) merged[m] = merged[m - 1];
                merged[j] = chosen;
                o[(t * n_buckets + bucket) * BUCKET_SLOTS + j] = chosen;
            }
        }
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    return release(&b, Py_None);
}

/* -- scoring ------------------------------------------------------------------------------------------------------ */

/* A row read base by base: the rolling words and the known bases before the next one */
typedef struct {
    u64 fwd, rev;
    int64_t run;
} Rolling;

/* A position's probe of one hashed order: its bucket (-1: the context is too short or the base unknown), and what
 * bucket_counts compares a slot with. A slot filed forward holds the context's first base in bits 6-7 (and the
 * word's last in 4-5); filed as its reverse complement, 3 - first in bits 4-5: a slot is the context's when its bits
 * under `mask` equal `context`, and the word's when its bits above the count equal `target`. */
typedef struct {
    int64_t bucket;
    uint16_t mask, context, target;
} Probe;

/* Roll code x into `r` and return its table addresses: the direct table's row, and per hashed order j < n_orders a
 * probe (probes[j * stride]); `run` before x is the usable context. */
static inline __attribute__((always_inline)) int64_t position_addresses(uint8_t x, Rolling *r,
                                                                        const Layout *restrict l, Py_ssize_t n_orders,
                                                                        Probe *restrict probes, Py_ssize_t stride) {
    u64 base = roll(&r->fwd, &r->rev, x, l->width);
    int64_t run = r->run, k = run < l->top ? run : l->top;
    int64_t direct = l->offsets[k] + (int64_t)(r->fwd & l->word_masks[k]);
    for (Py_ssize_t j = 0; j < n_orders; j++) {
        Probe *q = probes + j * stride;
        const OrderShape *shape = &l->shapes[j];
        q->bucket = -1;
        if (x >= 4 || run < shape->order) continue;
        int flipped, palindromic;
        u64 first, fingerprint;
        u64 key = split_word(shape, r->fwd, r->rev, l->canonical, &flipped, &palindromic, &first);
        bucket_and_fingerprint(key, l->hash_bits, &q->bucket, &fingerprint);
        u64 top = fingerprint << 8, pair = pair_bits(first, base, flipped) << 4;
        q->mask = (uint16_t)((flipped ? 0x0030 : 0x00C0) | 0xFF00); /* the pair's bits of the context's first base */
        q->context = (uint16_t)((pair & q->mask) | top);
        q->target = (uint16_t)(pair | top);
    }
    r->run = x < 4 ? run + 1 : 0;
    return direct;
}

/* (n_k(c, x), n_k(c), u_k(c)) from a bucket's 8 slots for a probe: the counts of the word and of its context, and
 * the context's slots. The 8 slots are compared at once (SSE2), or one after the other. */
static inline void bucket_counts(const uint16_t *slots, const Probe *q, int *n_x, int *n_context, int *seen) {
#if defined(__SSE2__)
    __m128i bucket = _mm_loadu_si128((const __m128i *)slots), zero = _mm_setzero_si128();
    __m128i counts = _mm_and_si128(bucket, _mm_set1_epi16(COUNT_MASK));
    __m128i mine = _mm_cmpeq_epi16(_mm_and_si128(bucket, _mm_set1_epi16((short)q->mask)),
                                   _mm_set1_epi16((short)q->context));
    __m128i hit = _mm_cmpeq_epi16(_mm_and_si128(bucket, _mm_set1_epi16((short)0xFFF0)),
                                  _mm_set1_epi16((short)q->target));
    __m128i context_sums = _mm_sad_epu8(_mm_and_si128(counts, mine), zero); /* counts < 16: their low bytes */
    __m128i hit_sums = _mm_sad_epu8(_mm_and_si128(counts, hit), zero);
    *n_context = _mm_cvtsi128_si32(context_sums) + _mm_extract_epi16(context_sums, 4);
    *n_x = _mm_cvtsi128_si32(hit_sums) + _mm_extract_epi16(hit_sums, 4);
    *seen = popcount8(_mm_movemask_epi8(_mm_packs_epi16(mine, zero)));
#else
    int contexts = 0, hits = 0, seen_slots = 0;
    for (int j = 0; j < BUCKET_SLOTS; j++) {
        int slot = slots[j];
        if ((slot & q->mask) == q->context) {
            contexts += slot & COUNT_MASK;
            seen_slots++;
        }
        if ((slot & 0xFFF0) == q->target) hits += slot & COUNT_MASK;
    }
    *n_context = contexts;
    *n_x = hits;
    *seen = seen_slots;
#endif
}

/* A row's table addresses: per position, its direct-table row and per hashed order its probe */
typedef struct {
    int64_t *direct;
    Probe *probes; /* [n_orders][length] */
} RowAddresses;

/* Scoring as loglik_rows describes it, for n_orders hashed orders: the loop of loglik_rows, inlined once per count of
 * hashed orders it is called with (a constant 0 or 1, the usual models', lets the compiler unroll the orders). */
static inline __attribute__((always_inline)) void score_rows(
    const uint8_t *c, const int64_t *len, const int64_t *sk, int64_t first, int64_t last, Py_ssize_t length,
    const float *p, const uint16_t *slots, Py_ssize_t n_buckets, const Layout *restrict l, Py_ssize_t n_orders,
    double discount, double concentration, int64_t bin_size, Py_ssize_t bins, double *out_sums, int64_t *out_scored,
    RowAddresses *rows) {
    for (int64_t i = first - 1; i < last; i++) { /* from first - 1: the first row's addresses */
        const RowAddresses *here = &rows[(i - first) & 1];
        RowAddresses *ahead = &rows[1 - ((i - first) & 1)];
        const uint8_t *row = c + (i >= first ? i : first) * length, *next = c + (i + 1) * length;
        int64_t n = i >= first ? len[i] : 0, n_ahead = i + 1 < last ? len[i + 1] : 0;
        int64_t skip = i >= first ? sk[i] : 0, from = skip > 1 ? skip : 1;
        Rolling rolling = {0, 0, 0};
        double total = 0.0, product = 1.0;
        int64_t scored_here = 0, in_bin = 0, bin_index = 0, bin_end = skip + bin_size;
        int64_t span = n > n_ahead ? n : n_ahead;
        for (int64_t t = 0; t < span; t++) {
            if (t < n_ahead) {
                int64_t direct = position_addresses(next[t], &rolling, l, n_orders, ahead->probes + t, length);
                ahead->direct[t] = direct;
                __builtin_prefetch(p + direct, 0, 3);
                for (Py_ssize_t j = 0; j < n_orders; j++) {
                    int64_t bucket = ahead->probes[j * length + t].bucket;
                    if (bucket >= 0) __builtin_prefetch(slots + (j * n_buckets + bucket) * BUCKET_SLOTS, 0, 3);
                }
            }
            if (t >= n || t < from || row[t] >= 4) continue; /* the first base has no context and is not scored */
            if (t >= bin_end) { /* close the bin (bins without a scored position keep 0) */
                out_sums[i * bins + bin_index] = total + log(product);
                out_scored[i * bins + bin_index] = in_bin;
                total = 0.0;
                product = 1.0;
                in_bin = 0;
                bin_index = (t - skip) / bin_size;
                bin_end = skip + (bin_index + 1) * bin_size;
            }
            double prob = p[here->direct[t]];
            int alive = 1; /* an unseen context ends the chain (a longer one containing it is unseen too) */
            for (Py_ssize_t j = 0; j < n_orders; j++) {
                const Probe *q = here->probes + j * length + t;
                if (q->bucket < 0) break;
                int n_x, n_context, seen;
                bucket_counts(slots + (j * n_buckets + q->bucket) * BUCKET_SLOTS, q, &n_x, &n_context, &seen);
                alive = alive && n_context > 0;
                double mixed = (positive_part((double)n_x - discount) + (concentration + discount * (double)seen) * prob) /
                               ((double)n_context + concentration);
                prob = alive ? mixed : prob;
            }
            product *= prob;
            scored_here++;
            in_bin++;
            if (scored_here % PRODUCT_BLOCK == 0 || product < 1e-200) {
                total += log(product);
                product = 1.0;
            }
        }
        if (in_bin) {
            out_sums[i * bins + bin_index] = total + log(product);
            out_scored[i * bins + bin_index] = in_bin;
        }
    }
}

/* sums[i, b], scored[i, b] = sum of ln p(x_t | context), number of scored positions, over the positions t of row i
 * (rows first..last-1) in bin b = (t - skip[i]) // bin_size; positions before skip[i] are context only.
 *
 * Table reads miss the caches, so a row's reads are prefetched while the row before it is scored: one loop walks
 * both, working out the next row's addresses (and prefetching their lines) a position at a time beside the current
 * row's arithmetic. Address buffers alternate between the row and the next. The probabilities are multiplied in
 * blocks and a block's log taken once. */
static PyObject *loglik_rows(PyObject *self, PyObject *args) {
    PyObject *o_codes, *o_lengths, *o_probs, *o_offsets, *o_tables, *o_orders, *o_skip, *o_sums, *o_scored;
    long long first, last, top, width, bin_size;
    int canonical;
    double discount, concentration;
    if (!PyArg_ParseTuple(args, "OOLLOOLOOpLddOLOO", &o_codes, &o_lengths, &first, &last, &o_probs, &o_offsets, &top,
                          &o_tables, &o_orders, &canonical, &width, &discount, &concentration, &o_skip, &bin_size,
                          &o_sums, &o_scored))
        return NULL;
    Buffers b = {0};
    Py_buffer *codes = take(&b, o_codes, "codes", 'u', 1, 2, 0), *lengths = take(&b, o_lengths, "lengths", 'i', 8, 1, 0),
              *probs = take(&b, o_probs, "probs", 'f', 4, 1, 0), *offsets = take(&b, o_offsets, "offsets", 'i', 8, 1, 0),
              *tables = take(&b, o_tables, "tables", 'u', 2, 3, 0), *orders = take(&b, o_orders, "orders", 'i', 8, 1, 0),
              *skip = take(&b, o_skip, "skip", 'i', 8, 1, 0), *sums = take(&b, o_sums, "sums", 'f', 8, 2, 1),
              *scored = take(&b, o_scored, "scored", 'i', 8, 2, 1);
    if (b.failed || !same_rows(&b, codes, lengths) || !same_rows(&b, codes, skip) || !same_rows(&b, codes, sums) ||
        !same_rows(&b, codes, scored) || !need(&b, sums->shape[1] == scored->shape[1] && sums->shape[1] > 0 && bin_size > 0,
                                               "sums and scored: need the same bins") ||
        !need(&b, tables->shape[0] == orders->shape[0] && tables->shape[2] == BUCKET_SLOTS, "tables: wrong shape") ||
        !need(&b, first >= 0 && last <= codes->shape[0], "rows out of range") ||
        !direct_orders_fit(&b, offsets, top, probs->shape[0], width) || !lengths_fit(&b, lengths, codes->shape[1]))
        return release(&b, NULL);
    Py_ssize_t length = codes->shape[1], n_orders = orders->shape[0], n_buckets = tables->shape[1];
    Py_ssize_t bins = sums->shape[1];
    int hash_bits = 0;
    if (!hashed_orders_fit(&b, orders, n_buckets, width, &hash_bits) ||
        !need(&b, bins * bin_size >= length, "sums: fewer bins than the rows span"))
        return release(&b, NULL);
    for (Py_ssize_t i = 0; i < codes->shape[0]; i++)
        if (!need(&b, ((int64_t *)skip->buf)[i] >= 0, "skip: negative")) return release(&b, NULL);
    const uint8_t *c = codes->buf;
    const int64_t *len = lengths->buf, *sk = skip->buf;
    const float *p = probs->buf;
    const uint16_t *slots = tables->buf;
    double *out_sums = sums->buf;
    int64_t *out_scored = scored->buf;
    Py_ssize_t per_row = length > 0 ? length : 1;
    Layout l;
    layout_init(&l, offsets->buf, top, orders->buf, n_orders, canonical, width, hash_bits);
    char *scratch = malloc(2 * (size_t)per_row * (sizeof(int64_t) + (size_t)n_orders * sizeof(Probe)));
    if (!scratch) {
        PyErr_NoMemory();
        return release(&b, NULL);
    }
    RowAddresses rows[2];
    for (int h = 0; h < 2; h++) {
        rows[h].direct = (int64_t *)scratch + h * per_row;
        rows[h].probes = (Probe *)((int64_t *)scratch + 2 * per_row) + h * per_row * n_orders;
    }
    Py_BEGIN_ALLOW_THREADS
    if (n_orders == 0)
        score_rows(c, len, sk, first, last, length, p, slots, n_buckets, &l, 0, discount, concentration, bin_size, bins,
                   out_sums, out_scored, rows);
    else if (n_orders == 1)
        score_rows(c, len, sk, first, last, length, p, slots, n_buckets, &l, 1, discount, concentration, bin_size, bins,
                   out_sums, out_scored, rows);
    else
        score_rows(c, len, sk, first, last, length, p, slots, n_buckets, &l, n_orders, discount, concentration,
                   bin_size, bins, out_sums, out_scored, rows);
    Py_END_ALLOW_THREADS
    free(scratch);
    Py_INCREF(Py_None);
    return release(&b, Py_None);
}

/* out[i, c] = sum of ln p_c(x_t | context) over the positions of rows first..last-1 that loglik_rows scores (their
 * table rows from row_addresses, no hashed orders), for every class c at once: logp[offsets[k] + word of k+1 bases,
 * c] holds class c's ln p_k, the classes side by side, so a position reads one row of the table for all of them. A
 * row's table rows are listed first, then added up in order while those CLASS_AHEAD positions on are prefetched. */
static PyObject *class_loglik_rows(PyObject *self, PyObject *args) {
    PyObject *o_codes, *o_lengths, *o_logp, *o_offsets, *o_out;
    long long first, last, top, width;
    if (!PyArg_ParseTuple(args, "OOLLOOLLO", &o_codes, &o_lengths, &first, &last, &o_logp, &o_offsets, &top, &width,
                          &o_out))
        return NULL;
    Buffers b = {0};
    Py_buffer *codes = take(&b, o_codes, "codes", 'u', 1, 2, 0), *lengths = take(&b, o_lengths, "lengths", 'i', 8, 1, 0),
              *logp = take(&b, o_logp, "logp", 'f', 4, 2, 0), *offsets = take(&b, o_offsets, "offsets", 'i', 8, 1, 0),
              *out = take(&b, o_out, "out", 'f', 8, 2, 1);
    if (b.failed || !same_rows(&b, codes, lengths) || !same_rows(&b, codes, out) ||
        !need(&b, out->shape[1] == logp->shape[1], "out: wrong shape") ||
        !direct_orders_fit(&b, offsets, top, logp->shape[0], width) ||
        !need(&b, first >= 0 && last <= codes->shape[0], "rows out of range") ||
        !lengths_fit(&b, lengths, codes->shape[1]))
        return release(&b, NULL);
    Py_ssize_t length = codes->shape[1], n_classes = logp->shape[1], per_row = length > 0 ? length : 1;
    const uint8_t *c = codes->buf;
    const int64_t *len = lengths->buf;
    const float *table = logp->buf;
    double *o = out->buf;
    int64_t *table_rows = malloc(per_row * sizeof(int64_t));
    if (!table_rows) {
        PyErr_NoMemory();
        return release(&b, NULL);
    }
    Layout l;
    layout_init(&l, offsets->buf, top, NULL, 0, 1, width, 0);
    Py_BEGIN_ALLOW_THREADS
    for (int64_t i = first; i < last; i++) {
        const uint8_t *row = c + i * length;
        Rolling r = {0, 0, 0};
        int64_t n = 0;
        for (int64_t t = 0; t < len[i]; t++) {
            int64_t direct = position_addresses(row[t], &r, &l, 0, NULL, 0);
            if (row[t] < 4 && t >= 1) table_rows[n++] = direct;
        }
        double *total = o + i * n_classes;
        for (Py_ssize_t k = 0; k < n_classes; k++) total[k] = 0.0;
        for (int64_t j = 0; j < n; j++) {
            if (j + CLASS_AHEAD < n) {
                const float *ahead = table + table_rows[j + CLASS_AHEAD] * n_classes;
                for (Py_ssize_t line = 0; line < n_classes; line += 16) __builtin_prefetch(ahead + line, 0, 3);
            }
            const float *row = table + table_rows[j] * n_classes;
            for (Py_ssize_t k = 0; k < n_classes; k++) total[k] += row[k];
        }
    }
    Py_END_ALLOW_THREADS
    free(table_rows);
    Py_INCREF(Py_None);
    return release(&b, Py_None);
}

/* -- table layouts ------------------------------------------------------------------------------------------------ */

/* rows first..last-1 of out[r, c] = M[r, rc[c]] (uint32), M [N, N] the symmetric matrix whose upper triangle (row
 * by row, diagonal included) is `upper` (uint8, uint16 or uint32): written in order, read from row min(r, rc[c]) of
 * the triangle */
#define UNPACK(TYPE)                                                                                               \
    for (int64_t r = first; r < last; r++)                                                                         \
        for (Py_ssize_t col = 0; col < size; col++) {                                                              \
            int64_t low = r < perm[col] ? r : perm[col], high = r < perm[col] ? perm[col] : r;                    \
            o[r * size + col] = ((const TYPE *)upper->buf)[low * size - (low * (low - 1)) / 2 - low + high];     \
        }

static PyObject *unpack_symmetric(PyObject *self, PyObject *args) {
    PyObject *o_upper, *o_rc, *o_out;
    long long first, last;
    if (!PyArg_ParseTuple(args, "OOOLL", &o_upper, &o_rc, &o_out, &first, &last)) return NULL;
    Buffers b = {0};
    Py_buffer *upper = take(&b, o_upper, "upper", 'u', 0, 1, 0), *rc = take(&b, o_rc, "rc", 'i', 8, 1, 0),
              *out = take(&b, o_out, "out", 'u', 4, 2, 1);
    if (b.failed) return release(&b, NULL);
    Py_ssize_t size = out->shape[0];
    if (!need(&b, (upper->itemsize == 1 || upper->itemsize == 2 || upper->itemsize == 4) && out->shape[1] == size &&
                      rc->shape[0] == size && upper->shape[0] == size * (size + 1) / 2 && first >= 0 && last <= size,
              "upper, rc or out: wrong shape"))
        return release(&b, NULL);
    const int64_t *perm = rc->buf;
    for (Py_ssize_t col = 0; col < size; col++)
        if (!need(&b, perm[col] >= 0 && perm[col] < size, "rc: not a permutation of the rows")) return release(&b, NULL);
    uint32_t *o = out->buf;
    Py_BEGIN_ALLOW_THREADS
    if (upper->itemsize == 1) {
        UNPACK(uint8_t)
    } else if (upper->itemsize == 2) {
        UNPACK(uint16_t)
    } else {
        UNPACK(uint32_t)
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    return release(&b, Py_None);
}

/* out[c, x] = p_k(x | c) of every order-k context c from its counts [4^k, 4] (uint32 or uint64) and p_{k-1} `lower`
 * [4^(k-1), 4] (row c uses lower row c without its oldest base: c modulo the power of four `lower` has rows), in
 * float32 */
#define INTERPOLATE(TYPE)                                                                                          \
    for (Py_ssize_t row = 0; row < rows; row++) {                                                                  \
        const TYPE *n = (const TYPE *)counts->buf + row * 4;                                                       \
        const float *below = l + (row & below_mask) * 4;                                                          \
        float *o = out_p + row * 4;                                                                                \
        float n_context = (float)n[0] + (float)n[1] + (float)n[2] + (float)n[3];                                   \
        if (n_context == 0) {                                                                                      \
            for (int x = 0; x < 4; x++) o[x] = below[x];                                                           \
            continue;                                                                                              \
        }                                                                                                          \
        float weight = alpha + d * (float)((n[0] > 0) + (n[1] > 0) + (n[2] > 0) + (n[3] > 0));                     \
        float total = n_context + alpha;                                                                           \
        for (int x = 0; x < 4; x++) {                                                                              \
            o[x] = (positive_part_f((float)n[x] - d) + weight * below[x]) / total;                                 \
        }                                                                                                          \
    }

static PyObject *interpolate(PyObject *self, PyObject *args) {
    PyObject *o_counts, *o_lower, *o_out;
    double discount, concentration;
    if (!PyArg_ParseTuple(args, "OOddO", &o_counts, &o_lower, &discount, &concentration, &o_out)) return NULL;
    Buffers b = {0};
    Py_buffer *counts = take(&b, o_counts, "counts", 'u', 0, 2, 0), *lower = take(&b, o_lower, "lower", 'f', 4, 2, 0),
              *out = take(&b, o_out, "out", 'f', 4, 2, 1);
    if (b.failed) return release(&b, NULL);
    Py_ssize_t rows = counts->shape[0], lower_rows = lower->shape[0];
    if (!need(&b, (counts->itemsize == 4 || counts->itemsize == 8) && counts->shape[1] == 4 && lower->shape[1] == 4 &&
                      out->shape[0] == rows && out->shape[1] == 4 && lower_rows > 0 &&
                      (lower_rows & (lower_rows - 1)) == 0 && (rows == 0 || rows % lower_rows == 0),
              "counts, lower or out: wrong shape"))
        return release(&b, NULL);
    float d = (float)discount, alpha = (float)concentration;
    Py_ssize_t below_mask = lower_rows - 1;
    const float *l = lower->buf;
    float *out_p = out->buf;
    Py_BEGIN_ALLOW_THREADS
    if (counts->itemsize == 4) {
        INTERPOLATE(uint32_t)
    } else {
        INTERPOLATE(uint64_t)
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    return release(&b, Py_None);
}

/* table[b, :fill[b]] = the next fill[b] of `slots`, bucket after bucket */
static PyObject *unpack_buckets(PyObject *self, PyObject *args) {
    PyObject *o_fill, *o_slots, *o_table;
    if (!PyArg_ParseTuple(args, "OOO", &o_fill, &o_slots, &o_table)) return NULL;
    Buffers b = {0};
    Py_buffer *fill = take(&b, o_fill, "fill", 'u', 1, 1, 0), *slots = take(&b, o_slots, "slots", 'u', 2, 1, 0),
              *table = take(&b, o_table, "table", 'u', 2, 2, 1);
    if (b.failed || !need(&b, table->shape[0] == fill->shape[0] && table->shape[1] == BUCKET_SLOTS, "table: wrong shape"))
        return release(&b, NULL);
    const uint8_t *f = fill->buf;
    Py_ssize_t total = 0;
    for (Py_ssize_t bucket = 0; bucket < fill->shape[0]; bucket++) {
        if (!need(&b, f[bucket] <= BUCKET_SLOTS, "fill: more slots than a bucket holds")) return release(&b, NULL);
        total += f[bucket];
    }
    if (!need(&b, total == slots->shape[0], "fill and slots do not match")) return release(&b, NULL);
    const uint16_t *s = slots->buf;
    uint16_t *t = table->buf;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t position = 0;
    for (Py_ssize_t bucket = 0; bucket < fill->shape[0]; bucket++)
        for (int j = 0; j < f[bucket]; j++) t[bucket * BUCKET_SLOTS + j] = s[position++];
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    return release(&b, Py_None);
}

/* table[r, first_column + g] = group[g, r] for rows first..last-1: a group of classes' values written into their
 * columns of the class table a row at a time */
static PyObject *into_columns(PyObject *self, PyObject *args) {
    PyObject *o_group, *o_table;
    long long first_column, first, last;
    if (!PyArg_ParseTuple(args, "OOLLL", &o_group, &o_table, &first_column, &first, &last)) return NULL;
    Buffers b = {0};
    Py_buffer *group = take(&b, o_group, "group", 'f', 4, 2, 0), *table = take(&b, o_table, "table", 'f', 4, 2, 1);
    if (b.failed || !need(&b, group->shape[1] == table->shape[0] && first_column >= 0 &&
                                  first_column + group->shape[0] <= table->shape[1] && first >= 0 &&
                                  last <= table->shape[0], "group or table: wrong shape"))
        return release(&b, NULL);
    const float *g = group->buf;
    float *t = table->buf;
    Py_ssize_t groups = group->shape[0], rows = group->shape[1], columns = table->shape[1];
    Py_BEGIN_ALLOW_THREADS
    for (int64_t r = first; r < last; r++)
        for (Py_ssize_t k = 0; k < groups; k++) t[r * columns + first_column + k] = g[k * rows + r];
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    return release(&b, Py_None);
}

static PyMethodDef methods[] = {
    {"count_rows", count_rows, METH_VARARGS,
     "count_rows(codes, lengths, skip, top, top_counts, tables, orders, canonical, width) -> positions counted"},
    {"insert", insert, METH_VARARGS, "insert(table, bucket, fingerprint, pair): count one entry in its bucket"},
    {"merge_buckets", merge_buckets, METH_VARARGS, "merge_buckets(table, other): add hashed table other into table"},
    {"halve", halve, METH_VARARGS, "halve(tables, out): out holds tables with half the buckets"},
    {"loglik_rows", loglik_rows, METH_VARARGS,
     "loglik_rows(codes, lengths, first, last, probs, offsets, top, tables, orders, canonical, width, discount, "
     "concentration, skip, bin_size, sums, scored)"},
    {"class_loglik_rows", class_loglik_rows, METH_VARARGS,
     "class_loglik_rows(codes, lengths, first, last, logp, offsets, top, width, out)"},
    {"unpack_symmetric", unpack_symmetric, METH_VARARGS, "unpack_symmetric(upper, rc, out, first, last)"},
    {"interpolate", interpolate, METH_VARARGS, "interpolate(counts, lower, discount, concentration, out)"},
    {"unpack_buckets", unpack_buckets, METH_VARARGS, "unpack_buckets(fill, slots, table)"},
    {"into_columns", into_columns, METH_VARARGS, "into_columns(group, table, first_column, first, last)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kmer", "The k-mer model's compiled loops.", -1, methods};

PyMODINIT_FUNC PyInit__kmer(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && (PyModule_AddIntConstant(m, "COUNT_CAP", COUNT_CAP) < 0 ||
              PyModule_AddIntConstant(m, "BUCKET_SLOTS", BUCKET_SLOTS) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
