/* bsa.c — the block-sparse attention engine: exact softmax attention computed tile by tile
 * (query block x key block, at most 64 x 64) over the pairs a layout lists, FlashAttention-2
 * style: online softmax across panels of up to 8 tiles (one softmax pass within a panel),
 * saving only the row log-sum-exp, P recomputed in backward. Half-masked tiles are trimmed to
 * the 16-lane vectors and rows that can see anything (see struct panel). Dense causal
 * attention is the implicit "every block on or below the diagonal" layout.
 * Not a pattern (sparse.c builds layouts) and not an approximation: unlisted keys are exactly
 * zero-weight, listed ones exact up to float rounding. */
#include "attention/bsa.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* ---- vectors -----------------------------------------------------------------------------
 * `vf`: the target's native vector (VW floats: 16 AVX-512, 8 AVX2+FMA, 4 SSE or NEON, 1
 * scalar). The layouts' lane bits and the trimming count in 16-lane groups (NV16 native
 * vectors each), so every width walks the same ranges. */
/* WHY silence -Wpsabi: GCC warns that vectors wider than the baseline passed by value change
 * the ABI; every such function here is static (inlined), so no ABI boundary is crossed. */
#pragma GCC diagnostic ignored "-Wpsabi"
#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX2__) && defined(__FMA__)
#define VW 8
#elif defined(__ARM_NEON) || defined(__SSE2__)
#define VW 4
#else
#define VW 1
#endif
typedef float vf __attribute__((vector_size(4 * VW)));
typedef int32_t vi __attribute__((vector_size(4 * VW)));
#define NV16 (16 / VW) /* native vectors per 16 lanes */

/* WHY an explicit FMA: the build is ISO C11, where GCC does not contract a*b+c; fused
 * multiply-adds double the tile kernels' throughput and round once instead of twice. */
static inline vf vfma(vf a, vf b, vf c)
{
#if defined(__AVX512F__)
    return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif VW == 8
    return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#elif defined(__ARM_NEON)
    return (vf)vfmaq_f32((float32x4_t)c, (float32x4_t)a, (float32x4_t)b);
#else
    return a * b + c;
#endif
}

static inline vf vfld(const float *p)
{
    vf r;
    memcpy(&r, p, sizeof r);
    return r;
}

static inline void vfst(float *p, vf x)
{
    memcpy(p, &x, sizeof x);
}

static inline vf vfset1(float x)
{
    vf r;
    for (int i = 0; i < VW; i++)
        r[i] = x;
    return r;
}

#define BS BSA_MAX_BS


static inline vf vfsel(vi m, vf a, vf b) /* m ? a : b, lane-wise */
{
    return (vf)(((vi)a & m) | ((vi)b & ~m));
}

static inline vf vfmax(vf a, vf b)
{
    return vfsel(a > b, a, b);
}

static inline float vfhmax(vf x)
{
    float r = x[0];
    for (int i = 1; i < VW; i++)
        r = x[i] > r ? x[i] : r;
    return r;
}

static inline float vfhsum(vf x)
{
    float r = x[0];
    for (int i = 1; i < VW; i++)
        r += x[i];
    return r;
}

/* Lanes of x whose bit in the low VW bits of `bits` is 0 become -inf. */
static inline __attribute__((always_inline)) vf vfmask(vf x, uint64_t bits)
{
    static const int32_t lane_bit[16] = {1 << 0,  1 << 1,  1 << 2,  1 << 3, 1 << 4,  1 << 5,
                                         1 << 6,  1 << 7,  1 << 8,  1 << 9, 1 << 10, 1 << 11,
                                         1 << 12, 1 << 13, 1 << 14, 1 << 15};
    vi lb;
    memcpy(&lb, lane_bit, sizeof lb);
    vi on = (((vi){0} + (int32_t)(bits & ((1u << VW) - 1u))) & lb) != 0;
    return vfsel(on, x, vfset1(-INFINITY));
}

/* e^x for x <= 88, exactly 0 for x < -87 (masked scores are -inf), NaN stays NaN.
 * WHY this way: scalar expf per score would cost more than the matmuls. Cody-Waite range
 * reduction x = n ln2 + r (ln2 split in a part exact in float and a correction, so r carries
 * no rounding from n ln2), |r| <= ln2/2, e^r by its Taylor series to r^7 (truncation
 * < 1.3e-7 relative), 2^n built in the exponent bits. */
static inline __attribute__((always_inline)) vf vfexp(vf x)
{
    const vf lo = vfset1(-87.0f), hi = vfset1(88.0f);
    vi under = x < lo;
    x = vfsel(x > hi, hi, x);
    x = vfsel(under, lo, x);
    const vf magic = vfset1(12582912.0f); /* 1.5 * 2^23: adding it rounds to an integer */
    vf fn = (x * 1.44269504088896341f + magic) - magic;
    vf r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    vf p = vfset1(1.0f / 5040.0f);
    p = vfma(p, r, vfset1(1.0f / 720.0f));
    p = vfma(p, r, vfset1(1.0f / 120.0f));
    p = vfma(p, r, vfset1(1.0f / 24.0f));
    p = vfma(p, r, vfset1(1.0f / 6.0f));
    p = vfma(p, r, vfset1(0.5f));
    p = vfma(p, r, vfset1(1.0f));
    p = vfma(p, r, vfset1(1.0f));
    vi n = __builtin_convertvector(fn, vi);
    vf sc = (vf)((n + 127) << 23);
    vf y = p * sc;
    return (vf)((vi)y & ~under);
}

/* ---- tile kernels ------------------------------------------------------------------------
 * Register blocks of KR rows x KV native vectors (KW = KV * VW columns), sized so the
 * accumulators plus one row of loaded vectors and a broadcast fit the register file: 32
 * vector registers with AVX-512 and NEON, 16 with AVX2 and SSE. KW divides 16 or is a
 * multiple of 16, so a 16-lane group is always whole chunks.
 * WHY per width: 8 rows x 32 columns is 16 zmm accumulators on AVX-512 but 32 ymm on AVX2
 * (twice its register file): every FMA then spilled, and dense attention ran at ~5% of sgemm.
 * WHY not wider blocks on AVX-512: with 4 key vectors x 4 rows GCC folds every key load into
 * its FMA (20 loads per 16 FMAs, load-bound); 2 vectors x 8 rows keeps them in registers. */
#if VW == 16
enum { KR = 8, KV = 2 };
#elif VW == 8
enum { KR = 4, KV = 2 };
#elif VW == 4 && defined(__ARM_NEON)
enum { KR = 4, KV = 4 };
#elif VW == 4
enum { KR = 4, KV = 2 };
#else
enum { KR = 4, KV = 4 };
#endif
#define KW (KV * VW)

/* S (ni, lds) columns 0..nv*VW-1 = A (ni, D; row stride lda) · Bt (D, ld): rows of scores
 * against keys stored as columns (K or V transposed), vectorised over keys; nv <= KV. */
static inline __attribute__((always_inline)) void abt_block(float *S, size_t lds, const float *A,
                                                             size_t lda, int ni, int D,
                                                             const float *Bt, size_t ld,
                                                             const int nv)
{
    int i = 0;
    for (; i + KR <= ni; i += KR) {
        vf acc[KR][KV];
#pragma GCC unroll 8
        for (int r = 0; r < KR; r++)
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[r][v] = (vf){0};
        for (int d = 0; d < D; d++) {
            vf bv[KV];
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                bv[v] = vfld(Bt + (size_t)d * ld + VW * v);
#pragma GCC unroll 8
            for (int r = 0; r < KR; r++) {
                vf a = vfset1(A[(size_t)(i + r) * lda + d]);
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++)
                    acc[r][v] = vfma(a, bv[v], acc[r][v]);
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < KR; r++)
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                vfst(S + (size_t)(i + r) * lds + VW * v, acc[r][v]);
    }
    for (; i < ni; i++) {
        vf acc[KV];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            acc[v] = (vf){0};
        for (int d = 0; d < D; d++) {
            vf a = vfset1(A[(size_t)i * lda + d]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[v] = vfma(a, vfld(Bt + (size_t)d * ld + VW * v), acc[v]);
        }
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            vfst(S + (size_t)i * lds + VW * v, acc[v]);
    }
}

/* S (ni, lds) columns 0..nc-1 (rounded up to 16) = A · Bt: any width, in KW-column chunks
 * (a 16-column remainder when KW is wider than 16). */
static void kern_abt(float *S, size_t lds, const float *A, size_t lda, int ni, int D,
                     const float *Bt, size_t ld, int nc)
{
    nc = (nc + 15) / 16 * 16;
    int c0 = 0;
    for (; c0 + KW <= nc; c0 += KW)
        abt_block(S + c0, lds, A, lda, ni, D, Bt + c0, ld, KV);
    if (c0 < nc) /* only when KW > 16: one 16-lane group left */
        abt_block(S + c0, lds, A, lda, ni, D, Bt + c0, ld, NV16 < KV ? NV16 : KV);
}

/* out (nr, D; row stride ldo) += P (nr, nc) · X (nc, D; row stride ldx), P(r,c) =
 * P[r*pr + c*pc], columns d0..d0+nv*VW-1 only (nv <= KV). Covers P·V, Pᵀ·dO, dS·K and dSᵀ·Q
 * through the strides. */
static inline __attribute__((always_inline)) void pv_block(float *out, size_t ldo, const float *P,
                                                            size_t pr, size_t pc, int nr, int nc,
                                                            const float *X, size_t ldx, int d0,
                                                            const int nv)
{
    int r0 = 0;
    for (; r0 + KR <= nr; r0 += KR) {
        vf acc[KR][KV];
#pragma GCC unroll 8
        for (int r = 0; r < KR; r++)
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[r][v] = vfld(out + (size_t)(r0 + r) * ldo + d0 + VW * v);
        for (int c = 0; c < nc; c++) {
            vf xv[KV];
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                xv[v] = vfld(X + (size_t)c * ldx + d0 + VW * v);
#pragma GCC unroll 8
            for (int r = 0; r < KR; r++) {
                vf p = vfset1(P[(size_t)(r0 + r) * pr + (size_t)c * pc]);
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++)
                    acc[r][v] = vfma(p, xv[v], acc[r][v]);
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < KR; r++)
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                vfst(out + (size_t)(r0 + r) * ldo + d0 + VW * v, acc[r][v]);
    }
    for (; r0 < nr; r0++) {
        vf acc[KV];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            acc[v] = vfld(out + (size_t)r0 * ldo + d0 + VW * v);
        for (int c = 0; c < nc; c++) {
            vf p = vfset1(P[(size_t)r0 * pr + (size_t)c * pc]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[v] = vfma(p, vfld(X + (size_t)c * ldx + d0 + VW * v), acc[v]);
        }
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            vfst(out + (size_t)r0 * ldo + d0 + VW * v, acc[v]);
    }
}

static void kern_pv(float *out, size_t ldo, const float *P, size_t pr, size_t pc, int nr, int nc,
                    const float *X, size_t ldx, int D)
{
    if (D % 16 != 0) {
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < nc; c++) {
                float p = P[(size_t)r * pr + (size_t)c * pc];
                for (int d = 0; d < D; d++)
                    out[(size_t)r * ldo + d] += p * X[(size_t)c * ldx + d];
            }
        return;
    }
    int d0 = 0;
    for (; d0 + KW <= D; d0 += KW)
        pv_block(out, ldo, P, pr, pc, nr, nc, X, ldx, d0, KV);
    if (d0 < D) /* only when KW > 16: one 16-column group left */
        pv_block(out, ldo, P, pr, pc, nr, nc, X, ldx, d0, NV16 < KV ? NV16 : KV);
}

static inline uint64_t lanes_below(int nj)
{
    return nj >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << nj) - 1);
}

/* Forward online-softmax update of one tile. S (ni, BS): raw scores q·k, overwritten by
 * p = exp(score*scale - m_new); acc (ni, D) rescaled; mrow, lrow (ni) running max and sum.
 * mask: (ni) rows of key bits, NULL = all keys.
 * WHY the rescaling: the row max m grows as key blocks arrive; keeping acc and l relative to
 * the current m (multiplying both by e^(m_old - m_new) when it grows) keeps every exponent
 * <= 0, so nothing overflows, and the final acc / l is the exact softmax average. */
static void softmax_tile(float *S, float *acc, float *mrow, float *lrow, int ni, int nj,
                         const uint64_t *mask, float scale, int D)
{
    const int nv = (nj + 15) / 16 * NV16; /* native vectors */
    const uint64_t valid = lanes_below(nj);
    for (int i = 0; i < ni; i++) {
        float *row = S + (size_t)i * BS;
        uint64_t bits = (mask ? mask[i] : ~(uint64_t)0) & valid;
        vf mv = vfset1(-INFINITY);
        for (int v = 0; v < nv; v++) {
            vf x = vfmask(vfld(row + VW * v) * scale, bits >> (VW * v));
            vfst(row + VW * v, x);
            mv = vfmax(mv, x);
        }
        float m_old = mrow[i], mt = vfhmax(mv);
        float m_new = mt > m_old ? mt : m_old;
        if (m_new == -INFINITY) { /* nothing visible yet in this row */
            for (int v = 0; v < nv; v++)
                vfst(row + VW * v, (vf){0});
            continue;
        }
        vf sv = (vf){0}, mn = vfset1(m_new);
        for (int v = 0; v < nv; v++) {
            vf p = vfexp(vfld(row + VW * v) - mn);
            vfst(row + VW * v, p);
            sv += p;
        }
        float alpha = expf(m_old - m_new); /* 0 when m_old = -inf */
        lrow[i] = lrow[i] * alpha + vfhsum(sv);
        mrow[i] = m_new;
        if (alpha != 1.0f) {
            float *a = acc + (size_t)i * D;
            for (int d = 0; d < D; d++)
                a[d] *= alpha;
        }
    }
}

/* ---- layouts ---------------------------------------------------------------------------- */

/* For rows 0..ni-1 of a tile (bits(r) = allowed keys, already cut to the tile's nj keys): the
 * 16-lane vectors [vlo, vhi) each 8-row group sees, and the rows [rlo, rhi) that see each
 * 8-key group; empty ranges are [0, 0). The trimming of bsa.c's kernels (see struct panel). */
static void tile_ranges(const uint64_t *bits, int ni, unsigned char *vlo, unsigned char *vhi,
                        unsigned char *rlo, unsigned char *rhi)
{
    enum { G = 8 };
    for (int k = 0; k < BS / G; k++) {
        rlo[k] = BS;
        rhi[k] = 0;
    }
    for (int g = 0; g < BS / G; g++)
        vlo[g] = vhi[g] = 0;
    for (int g = 0; g * G < ni; g++) {
        uint64_t any = 0;
        int r1 = ni < g * G + G ? ni : g * G + G;
        for (int r = g * G; r < r1; r++) {
            uint64_t b = bits[r];
            any |= b;
            while (b) { /* each 8-key group with a bit in this row */
                int k = __builtin_ctzll(b) / G;
                if (r < rlo[k])
                    rlo[k] = (unsigned char)r;
                rhi[k] = (unsigned char)(r + 1);
                b &= ~((uint64_t)0xFF << (G * k));
            }
        }
        vlo[g] = any ? (unsigned char)(__builtin_ctzll(any) / 16) : 0;
        vhi[g] = any ? (unsigned char)((63 - __builtin_clzll(any)) / 16 + 1) : 0;
    }
    for (int k = 0; k < BS / G; k++)
        if (!rhi[k])
            rlo[k] = 0;
}

/* L->ranges for every mask, as seen in a whole bs x bs tile. */
static void layout_ranges(struct bsa_layout *L)
{
    L->ranges = mx_xmalloc((size_t)L->n_masks * 4 * (BS / 8));
    uint64_t rows[BS];
    for (int id = 0; id < L->n_masks; id++) {
        for (int r = 0; r < L->bs; r++)
            rows[r] = L->masks[(size_t)id * L->bs + r] & lanes_below(L->bs);
        unsigned char *o = L->ranges + (size_t)id * 4 * (BS / 8);
        tile_ranges(rows, L->bs, o, o + BS / 8, o + 2 * (BS / 8), o + 3 * (BS / 8));
    }
}

static void causal_mask_rows(uint64_t *rows, int bs)
{
    for (int r = 0; r < bs; r++)
        rows[r] = lanes_below(r + 1);
}

void bsa_layout_causal(struct bsa_layout *L, int T_max, int H, int bs)
{
    MX_ASSERT(bs >= 1 && bs <= BS && T_max >= 1);
    memset(L, 0, sizeof *L);
    L->T_max = T_max;
    L->H = H;
    L->bs = bs;
    L->nb = (T_max + bs - 1) / bs;
    L->implicit_causal = 1;
    L->n_maps = 0;
    L->head_map = mx_xcalloc(sizeof(int) * (size_t)H);
    L->masks = mx_xmalloc(sizeof(uint64_t) * (size_t)bs);
    causal_mask_rows(L->masks, bs);
    L->n_masks = 1;
    layout_ranges(L);
    L->n_pairs = (size_t)H * L->nb * (L->nb + 1) / 2;
}

/* Masks interned by content (open addressing on an FNV-1a hash) so a Toeplitz pattern such as
 * a window stores a handful of masks, not one per block pair. */
struct mask_pool {
    uint64_t *data;
    int n, cap, bs;
    int *table;
    int tcap;
};

static uint64_t mask_hash(const uint64_t *rows, int bs)
{
    uint64_t h = 1469598103934665603ULL;
    for (int r = 0; r < bs; r++) {
        h ^= rows[r];
        h *= 1099511628211ULL;
    }
    return h;
}

static void pool_rehash(struct mask_pool *p, int tcap)
{
    mx_free(p->table);
    p->tcap = tcap;
    p->table = mx_xmalloc(sizeof(int) * (size_t)tcap);
    for (int i = 0; i < tcap; i++)
        p->table[i] = -1;
    for (int id = 0; id < p->n; id++) {
        size_t s = mask_hash(p->data + (size_t)id * p->bs, p->bs) & (size_t)(tcap - 1);
        while (p->table[s] >= 0)
            s = (s + 1) & (size_t)(tcap - 1);
        p->table[s] = id;
    }
}

static int pool_intern(struct mask_pool *p, const uint64_t *rows)
{
    size_t bytes = sizeof(uint64_t) * (size_t)p->bs;
    size_t s = mask_hash(rows, p->bs) & (size_t)(p->tcap - 1);
    while (p->table[s] >= 0) {
        if (memcmp(p->data + (size_t)p->table[s] * p->bs, rows, bytes) == 0)
            return p->table[s];
        s = (s + 1) & (size_t)(p->tcap - 1);
    }
    if (p->n == p->cap) {
        int cap = p->cap * 2;
        uint64_t *d = mx_xmalloc(bytes * (size_t)cap);
        memcpy(d, p->data, bytes * (size_t)p->n);
        mx_free(p->data);
        p->data = d;
        p->cap = cap;
    }
    memcpy(p->data + (size_t)p->n * p->bs, rows, bytes);
    p->table[s] = p->n;
    p->n++;
    if (2 * p->n > p->tcap)
        pool_rehash(p, 2 * p->tcap);
    return p->n - 1;
}

struct int_vec {
    int *a;
    size_t n, cap;
};

static void iv_push(struct int_vec *v, int x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 256;
        int *a = mx_xmalloc(sizeof(int) * cap);
        if (v->n)
            memcpy(a, v->a, sizeof(int) * v->n);
        mx_free(v->a);
        v->a = a;
        v->cap = cap;
    }
    v->a[v->n++] = x;
}

void bsa_layout_build(struct bsa_layout *L, int T_max, int H, int bs, int heads_differ,
                      bsa_candidates_fn candidates, bsa_allowed_fn allowed, const void *ctx)
{
    MX_ASSERT(bs >= 1 && bs <= BS && T_max >= 1 && H >= 1);
    memset(L, 0, sizeof *L);
    L->T_max = T_max;
    L->H = H;
    L->bs = bs;
    L->nb = (T_max + bs - 1) / bs;
    L->n_maps = heads_differ ? H : 1;
    L->head_map = mx_xcalloc(sizeof(int) * (size_t)H);
    for (int h = 0; h < H; h++)
        L->head_map[h] = heads_differ ? h : 0;
    L->maps = mx_xcalloc(sizeof(struct bsa_map) * (size_t)L->n_maps);

    struct mask_pool pool = {.bs = bs, .cap = 16};
    pool.data = mx_xmalloc(sizeof(uint64_t) * (size_t)bs * pool.cap);
    pool_rehash(&pool, 64);
    uint64_t rows[BS], causal[BS];
    causal_mask_rows(causal, bs);
    MX_ASSERT(pool_intern(&pool, causal) == 0);

    int nb = L->nb;
    unsigned char *flag = mx_xmalloc((size_t)nb);
    for (int mi = 0; mi < L->n_maps; mi++) {
        int h = mi; /* map mi is built from head mi (head 0 when shared) */
        struct bsa_map *M = &L->maps[mi];
        M->row_ptr = mx_xmalloc(sizeof(int) * (size_t)(nb + 1));
        struct int_vec col = {0}, msk = {0};
        for (int qb = 0; qb < nb; qb++) {
            M->row_ptr[qb] = (int)col.n;
            memset(flag, 0, (size_t)nb);
            candidates(ctx, h, qb, bs, flag);
            int i0 = qb * bs, ni = T_max - i0 < bs ? T_max - i0 : bs;
            for (int kb = 0; kb <= qb; kb++) {
                if (!flag[kb])
                    continue;
                int j0 = kb * bs, nj = T_max - j0 < bs ? T_max - j0 : bs;
                uint64_t any = 0;
                int full = 1;
                for (int r = 0; r < bs; r++) {
                    uint64_t b = 0;
                    for (int c = 0; r < ni && c < nj; c++) {
                        int i = i0 + r, j = j0 + c;
                        if (j <= i && allowed(ctx, h, i, j))
                            b |= (uint64_t)1 << c;
                    }
                    rows[r] = b;
                    any |= b;
                    if (r < ni) {
                        uint64_t want = kb < qb ? lanes_below(nj) : causal[r] & lanes_below(nj);
                        if (b != want)
                            full = 0;
                    }
                }
                if (!any)
                    continue;
                iv_push(&col, kb);
                iv_push(&msk, full ? (kb < qb ? -1 : 0) : pool_intern(&pool, rows));
            }
        }
        M->row_ptr[nb] = (int)col.n;
        M->col = col.a ? col.a : mx_xmalloc(sizeof(int));
        M->mask = msk.a ? msk.a : mx_xmalloc(sizeof(int));
    }
    mx_free(flag);
    for (int h = 0; h < H; h++)
        L->n_pairs += (size_t)L->maps[L->head_map[h]].row_ptr[nb];
    L->masks = pool.data;
    L->n_masks = pool.n;
    mx_free(pool.table);
    layout_ranges(L);
}

void bsa_layout_free(struct bsa_layout *L)
{
    for (int i = 0; i < L->n_maps; i++) {
        mx_free(L->maps[i].row_ptr);
        mx_free(L->maps[i].col);
        mx_free(L->maps[i].mask);
    }
    mx_free(L->maps);
    mx_free(L->head_map);
    mx_free(L->masks);
    mx_free(L->ranges);
    memset(L, 0, sizeof *L);
}

int bsa_row_count(const struct bsa_layout *L, int h, int qb)
{
    if (L->implicit_causal)
        return qb + 1;
    const struct bsa_map *M = &L->maps[L->head_map[h]];
    return M->row_ptr[qb + 1] - M->row_ptr[qb];
}

void bsa_row_pair(const struct bsa_layout *L, int h, int qb, int i, int *kb, int *mask_id)
{
    if (L->implicit_causal) {
        *kb = i;
        *mask_id = i == qb ? 0 : -1;
        return;
    }
    const struct bsa_map *M = &L->maps[L->head_map[h]];
    int p = M->row_ptr[qb] + i;
    *kb = M->col[p];
    *mask_id = M->mask[p];
}

/* ---- forward and backward ------------------------------------------------------------- */

static size_t padded_T(int T)
{
    return mx_round_up((size_t)T, 16) + 16; /* tile loads may read 15 columns past T */
}

static int team_size(void)
{
    int n = omp_get_max_threads();
    return n < BSA_MAX_THREADS ? n : BSA_MAX_THREADS;
}

size_t bsa_saved_floats(const struct mixer *m, int B, int T)
{
    return (size_t)B * m->H * T;
}

size_t bsa_work_floats(const struct mixer *m, int B, int T)
{
    return 2 * (size_t)B * m->H * m->D * padded_T(T);
}

static const uint64_t *mask_rows(const struct bsa_layout *L, int mask_id)
{
    return mask_id < 0 ? NULL : L->masks + (size_t)mask_id * L->bs;
}

/* x (B,H,T,D) -> xt (B,H,D,ld), zero padded to ld columns. */
static void transpose_heads(float *xt, const float *x, int BH, int T, int D, size_t ld)
{
#pragma omp parallel for schedule(static) num_threads(team_size())
    for (int bh = 0; bh < BH; bh++) {
        const float *X = x + (size_t)bh * T * D;
        float *Xt = xt + (size_t)bh * D * ld;
        /* In strips of 64 positions so the strip being read (64 x D) stays in L1. */
        for (int t0 = 0; t0 < T; t0 += 64) {
            int t1 = T - t0 < 64 ? T : t0 + 64;
            for (int d = 0; d < D; d++) {
                float *row = Xt + (size_t)d * ld;
                for (int t = t0; t < t1; t++)
                    row[t] = X[(size_t)t * D + d];
            }
        }
        for (int d = 0; d < D; d++)
            memset(Xt + (size_t)d * ld + T, 0, (ld - (size_t)T) * sizeof(float));
    }
}

/* A panel: up to PANEL listed tiles of one query block side by side in the columns of a
 * (BS x PW) buffer, so rows of up to PANEL tiles get one softmax pass (no rescaling between
 * them: a window's whole row is one panel). Tiles whose keys continue the previous tile's form
 * a segment: contiguous columns = contiguous keys, one kernel call for all of them.
 * WHY the ranges: a window's two edge tiles are triangles, as is the causal diagonal. Row
 * group g (GR rows) computes in tile t only the 16-lane vectors [pa, pb) its rows can see
 * (widened so each segment's range is contiguous), and key group k (GR keys) of tile t
 * gathers only from the rows [rlo, rhi) that see it: a 256-key window then computes ~272 keys
 * per query instead of 320. Everything outside is exactly zero-weight, so skipping it changes
 * no result beyond float summation order. */
#define PANEL 8
/* WHY the +16: a row stride of a power of two (2 KB) maps a column walk (the key-group
 * gathers read S down its columns) onto one or two L1 sets. */
#define PW (PANEL * BS + 16)
/* The backward goes tile by tile (a panel of one): it has no softmax pass to share, and its
 * P and dS tiles then stay in L1 between being made and being used. */
#define PANEL_B 1
#define FWD_ROWS 16 /* forward rows per chunk (a multiple of GR; 8..64 measured within 3%) */
#define PWB (PANEL_B * BS + 16)
#define GR 8
#define NG (BS / GR)

struct panel {
    int n, nseg;
    size_t pw;                   /* row stride of the S/P buffers */
    int j0[PANEL], nj[PANEL], col[PANEL];
    const uint64_t *mask[PANEL]; /* rows of key bits; NULL = every key */
    int seg[PANEL + 1];          /* segment s = tiles seg[s] .. seg[s+1]-1 */
    unsigned char pa[NG][PANEL], pb[NG][PANEL];   /* group g, tile t: vectors [pa, pb) */
    unsigned char rlo[PANEL][NG], rhi[PANEL][NG]; /* tile t, key group k: rows [rlo, rhi) */
    unsigned char same[NG];      /* group g has group g-1's ranges in every tile */
};

static inline int nvec(int nj)
{
    return (nj + 15) / 16;
}

static inline uint64_t tile_bits(const struct panel *pn, int t, int r)
{
    return (pn->mask[t] ? pn->mask[t][r] : ~(uint64_t)0) & lanes_below(pn->nj[t]);
}

/* The first and last tile of segment s where row group g sees something; 0 when none. */
static int seg_span(const struct panel *pn, int g, int s, int *t0, int *t1)
{
    *t0 = *t1 = -1;
    for (int t = pn->seg[s]; t < pn->seg[s + 1]; t++)
        if (pn->pb[g][t] > pn->pa[g][t]) {
            if (*t0 < 0)
                *t0 = t;
            *t1 = t;
        }
    return *t0 >= 0;
}

static void panel_build(struct panel *pn, size_t pw, const struct bsa_layout *L, int h, int qb,
                        int p0, int p1, int T, int ni)
{
    const int bs = L->bs, ng = (ni + GR - 1) / GR;
    int next = 0, mids[PANEL];
    pn->n = p1 - p0;
    pn->nseg = 0;
    pn->pw = pw;
    for (int t = 0; t < pn->n; t++) {
        int kb;
        bsa_row_pair(L, h, qb, p0 + t, &kb, &mids[t]);
        pn->j0[t] = kb * bs;
        pn->nj[t] = T - kb * bs < bs ? T - kb * bs : bs;
        pn->mask[t] = mask_rows(L, mids[t]);
        /* Joining needs whole vectors per tile (bs % 16 == 0) so column c of a tile is lane c. */
        if (!(t > 0 && bs % 16 == 0 && pn->j0[t] == pn->j0[t - 1] + pn->nj[t - 1])) {
            pn->seg[pn->nseg++] = t;
            next = (int)mx_round_up((size_t)next, 16);
        }
        pn->col[t] = next;
        next += pn->nj[t];
        unsigned char vlo[NG], vhi[NG], lo[NG], hi[NG];
        if (pn->mask[t] == NULL) { /* every row sees every key of the tile, whatever bs */
            for (int k = 0; k < NG; k++) {
                vlo[k] = 0;
                vhi[k] = (unsigned char)nvec(pn->nj[t]);
                lo[k] = 0;
                hi[k] = k * GR < pn->nj[t] ? (unsigned char)ni : 0;
            }
        } else if (ni == bs && pn->nj[t] == bs) { /* precomputed per mask */
            const unsigned char *r = L->ranges + (size_t)mids[t] * 4 * NG;
            memcpy(vlo, r, NG);
            memcpy(vhi, r + NG, NG);
            memcpy(lo, r + 2 * NG, NG);
            memcpy(hi, r + 3 * NG, NG);
        } else { /* a tile at the end of the sequence */
            uint64_t rows[BS];
            for (int r = 0; r < ni; r++)
                rows[r] = tile_bits(pn, t, r);
            tile_ranges(rows, ni, vlo, vhi, lo, hi);
        }
        for (int g = 0; g < ng; g++) {
            pn->pa[g][t] = vlo[g];
            pn->pb[g][t] = vhi[g];
        }
        for (int k = 0; k < NG; k++) {
            pn->rlo[t][k] = lo[k];
            pn->rhi[t][k] = hi[k];
        }
    }
    pn->seg[pn->nseg] = pn->n;
    /* Widen each group's range to be contiguous within a segment: the kernels cover a
     * segment's columns [first tile's pa, last tile's pb) in one call. */
    for (int g = 0; g < ng; g++)
        for (int s = 0; s < pn->nseg; s++) {
            int t0, t1, any = seg_span(pn, g, s, &t0, &t1);
            for (int t = pn->seg[s]; t < pn->seg[s + 1]; t++) {
                if (!any || t < t0 || t > t1) {
                    pn->pa[g][t] = pn->pb[g][t] = 0;
                    continue;
                }
                if (t > t0)
                    pn->pa[g][t] = 0;
                if (t < t1)
                    pn->pb[g][t] = (unsigned char)nvec(pn->nj[t]);
            }
        }
    pn->same[0] = 0;
    for (int g = 1; g < ng; g++) {
        int same = 1;
        for (int t = 0; t < pn->n; t++)
            same &= pn->pa[g][t] == pn->pa[g - 1][t] && pn->pb[g][t] == pn->pb[g - 1][t];
        pn->same[g] = (unsigned char)same;
    }
}

/* Row group g's columns in segment s: [*c0, *c1) to compute (whole vectors), *c1k the end of
 * the real keys (<= *c1), *key the key of column *c0. Returns 0 when the group sees none. */
static int seg_cols(const struct panel *pn, int g, int s, int *c0, int *c1, int *c1k, int *key)
{
    int t0, t1;
    if (!seg_span(pn, g, s, &t0, &t1))
        return 0;
    int ts = pn->seg[s];
    *c0 = pn->col[t0] + 16 * pn->pa[g][t0];
    *c1 = pn->col[t1] + 16 * pn->pb[g][t1];
    int kend = pn->col[t1] + pn->nj[t1];
    *c1k = *c1 < kend ? *c1 : kend;
    *key = pn->j0[ts] + (*c0 - pn->col[ts]);
    return 1;
}

/* Row groups g0.. that share group g0's columns in every segment run as one kernel call
 * (a full tile is then one call, as a triangle is a few). Returns the end of the run. */
static int group_run(const struct panel *pn, int g0, int ng)
{
    int g1 = g0 + 1;
    while (g1 < ng && pn->same[g1])
        g1++;
    return g1;
}

/* Rows [r0, r1) of the block (r0 a multiple of GR); S holds row r at S + (r - r0) * pw.
 * S = A (the block's rows, row stride lda) · Bt over every group's columns. */
static void panel_abt(float *S, const struct panel *pn, const float *A, size_t lda, int r0,
                      int r1, int D, const float *Bt, size_t ld)
{
    const int ng = (r1 + GR - 1) / GR;
    for (int g = r0 / GR, g1; g < ng; g = g1) {
        g1 = group_run(pn, g, ng);
        int nr = (r1 < g1 * GR ? r1 : g1 * GR) - g * GR;
        for (int s = 0; s < pn->nseg; s++) {
            int c0, c1, c1k, key;
            if (seg_cols(pn, g, s, &c0, &c1, &c1k, &key))
                kern_abt(S + (size_t)(g * GR - r0) * pn->pw + c0, pn->pw,
                         A + (size_t)g * GR * lda, lda, nr, D, Bt + key, ld, c1 - c0);
        }
    }
}

/* Rows [r0, r1) as above: out (the block's rows, stride ldo) += S · X (keys, row stride ldx)
 * over every group's columns: P·V in the forward, dS·K in the backward. */
static void panel_pv(float *out, size_t ldo, const float *S, const struct panel *pn, int r0,
                     int r1, const float *X, size_t ldx, int D)
{
    const int ng = (r1 + GR - 1) / GR;
    for (int g = r0 / GR, g1; g < ng; g = g1) {
        g1 = group_run(pn, g, ng);
        int nr = (r1 < g1 * GR ? r1 : g1 * GR) - g * GR;
        for (int s = 0; s < pn->nseg; s++) {
            int c0, c1, c1k, key;
            if (seg_cols(pn, g, s, &c0, &c1, &c1k, &key) && c1k > c0)
                kern_pv(out + (size_t)g * GR * ldo, ldo,
                        S + (size_t)(g * GR - r0) * pn->pw + c0, pn->pw, 1, nr, c1k - c0,
                        X + (size_t)key * ldx, ldx, D);
        }
    }
}

/* out (keys, stride ldo) += Sᵀ · X (ni rows, stride ldx), key group by key group over the
 * rows that see it (consecutive key groups with the same rows in one call): dV += Pᵀ dO and
 * dK += dSᵀ Q. S must be written (value or 0) at every (row < ni, column of a tile). */
static void panel_ptx(float *out, size_t ldo, const float *S, const struct panel *pn,
                      const float *X, size_t ldx, int D)
{
    for (int t = 0; t < pn->n; t++) {
        const int nk = (pn->nj[t] + GR - 1) / GR;
        for (int k = 0, k1; k < nk; k = k1) {
            int r0 = pn->rlo[t][k], r1 = pn->rhi[t][k];
            for (k1 = k + 1; k1 < nk && pn->rlo[t][k1] == r0 && pn->rhi[t][k1] == r1; k1++)
                ;
            if (r1 <= r0)
                continue;
            int keys = (pn->nj[t] < k1 * GR ? pn->nj[t] : k1 * GR) - k * GR;
            kern_pv(out + (size_t)(pn->j0[t] + k * GR) * ldo, ldo,
                    S + (size_t)r0 * pn->pw + pn->col[t] + k * GR, 1, pn->pw, keys, r1 - r0,
                    X + (size_t)r0 * ldx, ldx, D);
        }
    }
}

/* Forward softmax over one panel, folded into the running row state (mrow, lrow, acc): S holds
 * raw scores, overwritten by p = exp(score*scale - m_new) over every group's columns.
 * WHY the rescaling: the row max m grows as panels arrive; keeping acc and l relative to the
 * current m (multiplying both by e^(m_old - m_new) when it grows) keeps every exponent <= 0,
 * so nothing overflows, and the final acc / l is the exact softmax average. */
static void panel_softmax(float *S, const struct panel *pn, int r0, int r1, float *mrow,
                          float *lrow, float *acc, int D, float scale)
{
    for (int r = r0; r < r1; r++) {
        const int g = r / GR;
        float *row = S + (size_t)(r - r0) * pn->pw;
        vf mv = vfset1(-INFINITY);
        for (int t = 0; t < pn->n; t++) {
            uint64_t bits = tile_bits(pn, t, r);
            float *c = row + pn->col[t];
            const int a = NV16 * pn->pa[g][t], b = NV16 * pn->pb[g][t];
            if (bits == ~(uint64_t)0) /* a full row: nothing to mask */
                for (int v = a; v < b; v++) {
                    vf x = vfld(c + VW * v) * scale;
                    vfst(c + VW * v, x);
                    mv = vfmax(mv, x);
                }
            else
                for (int v = a; v < b; v++) {
                    vf x = vfmask(vfld(c + VW * v) * scale, bits >> (VW * v));
                    vfst(c + VW * v, x);
                    mv = vfmax(mv, x);
                }
        }
        float m_old = mrow[r], mt = vfhmax(mv);
        float m_new = mt > m_old ? mt : m_old;
        vf sv = (vf){0}, mn = vfset1(m_new == -INFINITY ? 0.0f : m_new);
        for (int t = 0; t < pn->n; t++) {
            float *c = row + pn->col[t];
            for (int v = NV16 * pn->pa[g][t]; v < NV16 * pn->pb[g][t]; v++) {
                vf p = vfexp(vfld(c + VW * v) - mn); /* masked: exp(-inf) = 0 */
                vfst(c + VW * v, p);
                sv += p;
            }
        }
        if (m_new == -INFINITY) /* nothing visible yet in this row */
            continue;
        float ssum = vfhsum(sv);
        lrow[r] = m_old == -INFINITY ? ssum : lrow[r] * expf(m_old - m_new) + ssum;
        if (m_old != -INFINITY && m_new != m_old) {
            float alpha = expf(m_old - m_new), *a = acc + (size_t)r * D;
            for (int d = 0; d < D; d++)
                a[d] *= alpha;
        }
        mrow[r] = m_new;
    }
}

/* Backward: S raw scores -> P = exp(score*scale - lse) over every group's columns, 0 at
 * every other column of the panel's tiles (the key-group gathers read them). */
static void panel_prob(float *S, const struct panel *pn, int ni, const float *lse, float scale)
{
    for (int r = 0; r < ni; r++) {
        const int g = r / GR;
        float *row = S + (size_t)r * pn->pw;
        vf l = vfset1(lse[r]);
        for (int t = 0; t < pn->n; t++) {
            uint64_t bits = tile_bits(pn, t, r);
            float *c = row + pn->col[t];
            int a = NV16 * pn->pa[g][t], b = NV16 * pn->pb[g][t], nv = NV16 * nvec(pn->nj[t]);
            for (int v = 0; v < a; v++)
                vfst(c + VW * v, (vf){0});
            for (int v = a; v < b; v++)
                vfst(c + VW * v, vfexp(vfmask(vfld(c + VW * v) * scale, bits >> (VW * v)) - l));
            for (int v = b; v < nv; v++)
                vfst(c + VW * v, (vf){0});
        }
    }
}

/* dP (dO·v) -> dS = P ∘ (dP − Di) · scale over every group's columns, 0 elsewhere. */
static void panel_ds(float *dP, const float *P, const struct panel *pn, int ni, const float *Di,
                     float scale)
{
    for (int r = 0; r < ni; r++) {
        const int g = r / GR;
        float *row = dP + (size_t)r * pn->pw;
        const float *prow = P + (size_t)r * pn->pw;
        vf di = vfset1(Di[r]);
        for (int t = 0; t < pn->n; t++) {
            int a = NV16 * pn->pa[g][t], b = NV16 * pn->pb[g][t], nv = NV16 * nvec(pn->nj[t]);
            float *c = row + pn->col[t];
            const float *pc = prow + pn->col[t];
            for (int v = 0; v < a; v++)
                vfst(c + VW * v, (vf){0});
            for (int v = a; v < b; v++)
                vfst(c + VW * v, vfld(pc + VW * v) * (vfld(c + VW * v) - di) * scale);
            for (int v = b; v < nv; v++)
                vfst(c + VW * v, (vf){0});
        }
    }
}

/* Σ_d a[d] b[d], vectorised when D % 16 == 0 (the dense/window head dims). */
static inline float dot_rows(const float *a, const float *b, int D)
{
    if (D % 16 == 0) {
        vf s = (vf){0};
        for (int d = 0; d < D; d += VW)
            s = vfma(vfld(a + d), vfld(b + d), s);
        return vfhsum(s);
    }
    float s = 0;
    for (int d = 0; d < D; d++)
        s += a[d] * b[d];
    return s;
}

/* The engine proper. q,k,v,o,dout,dq,dk,dv (B,H,T,D); lse (B,H,T). */
static void engine_forward(const struct bsa_layout *L, int H, int D, float *o, float *lse,
                           float *work, const float *q, const float *k, const float *v, int B,
                           int T)
{
    const int bs = L->bs, BH = B * H;
    MX_ASSERT(T >= 1 && T <= L->T_max && H == L->H);
    const float scale = 1.0f / sqrtf((float)D);
    const size_t ld = padded_T(T);
    float *kt = work; /* (B,H,D,ld) */
    transpose_heads(kt, k, BH, T, D, ld);
    const int nqb = (T + bs - 1) / bs;
    const long ntask = (long)BH * nqb;
#pragma omp parallel num_threads(team_size())
    {
        float *S = mx_xmalloc(sizeof(float) * ((size_t)BS * PW + (size_t)BS * D + 2 * BS));
        float *acc = S + (size_t)BS * PW, *mrow = acc + (size_t)BS * D, *lrow = mrow + BS;
        struct panel pn;
        /* One task = one (b,h, query block): each output row has one writer. Later query
         * blocks carry more pairs under causal layouts, so hand them out first. */
#pragma omp for schedule(dynamic, 1)
        for (long task = ntask - 1; task >= 0; task--) {
            int bh = (int)(task / nqb), qb = (int)(task % nqb), h = bh % H;
            int i0 = qb * bs, ni = T - i0 < bs ? T - i0 : bs;
            size_t hb = (size_t)bh * T;
            const float *Q = q + (hb + (size_t)i0) * D, *V = v + hb * D;
            const float *Kt = kt + (size_t)bh * D * ld;
            memset(acc, 0, sizeof(float) * (size_t)ni * D);
            for (int i = 0; i < ni; i++) {
                mrow[i] = -INFINITY;
                lrow[i] = 0;
            }
            int np = bsa_row_count(L, h, qb);
            for (int p0 = 0; p0 < np; p0 += PANEL) {
                panel_build(&pn, PW, L, h, qb, p0, np - p0 < PANEL ? np : p0 + PANEL, T, ni);
                /* Row chunk by row chunk, so the chunk's scores stay in L1 from the scores
                 * kernel through the softmax to P·V. */
                for (int r0 = 0; r0 < ni; r0 += FWD_ROWS) {
                    int r1 = ni - r0 < FWD_ROWS ? ni : r0 + FWD_ROWS;
                    panel_abt(S, &pn, Q, (size_t)D, r0, r1, D, Kt, ld);
                    panel_softmax(S, &pn, r0, r1, mrow, lrow, acc, D, scale);
                    panel_pv(acc, (size_t)D, S, &pn, r0, r1, V, (size_t)D, D);
                }
            }
            for (int i = 0; i < ni; i++) {
                bsa_row_finish(o + (hb + (size_t)i0 + i) * D, acc + (size_t)i * D, lrow[i], D);
                lse[hb + i0 + i] = lrow[i] > 0 ? mrow[i] + logf(lrow[i]) : -INFINITY;
            }
        }
        mx_free(S);
    }
}

/* accumulate = 1: dq, dk, dv +=; 0: overwritten (no caller-side zeroing pass). */
static void engine_backward(const struct bsa_layout *L, int H, int D, float *dq, float *dk,
                            float *dv, int accumulate, float *work, const float *dout,
                            const float *o, const float *lse, const float *q, const float *k,
                            const float *v, int B, int T)
{
    const int bs = L->bs, BH = B * H;
    MX_ASSERT(T >= 1 && T <= L->T_max && H == L->H);
    const float scale = 1.0f / sqrtf((float)D);
    const size_t ld = padded_T(T);
    float *kt = work, *vt = work + (size_t)BH * D * ld; /* (B,H,D,ld) each */
    transpose_heads(kt, k, BH, T, D, ld);
    transpose_heads(vt, v, BH, T, D, ld);
    const int nqb = (T + bs - 1) / bs;
    /* FlashAttention-2 backward with P recomputed from the saved lse. One task per (b,h):
     * dK and dV gather from many query blocks and dQ from many key blocks, so a head is
     * walked by one thread in a fixed order — no races, bitwise reproducible. */
#pragma omp parallel num_threads(team_size())
    {
        float *P = mx_xmalloc(sizeof(float) * (2 * (size_t)BS * PWB + (size_t)BS * D + 2 * BS));
        float *dP = P + (size_t)BS * PWB, *dqacc = dP + (size_t)BS * PWB;
        float *Di = dqacc + (size_t)BS * D, *lrow = Di + BS;
        struct panel pn;
#pragma omp for schedule(dynamic, 1)
        for (int bh = 0; bh < BH; bh++) {
            int h = bh % H;
            size_t hb = (size_t)bh * T;
            const float *Kt = kt + (size_t)bh * D * ld, *Vt = vt + (size_t)bh * D * ld;
            const float *K = k + hb * D;
            float *dK = dk + hb * D, *dV = dv + hb * D;
            if (!accumulate) {
                memset(dK, 0, sizeof(float) * (size_t)T * D);
                memset(dV, 0, sizeof(float) * (size_t)T * D);
            }
            for (int qb = 0; qb < nqb; qb++) {
                int i0 = qb * bs, ni = T - i0 < bs ? T - i0 : bs;
                const float *Q = q + (hb + i0) * D, *dO = dout + (hb + i0) * D;
                const float *O = o + (hb + i0) * D;
                for (int i = 0; i < ni; i++) {
                    /* Σ_j p_ij dP_ij = dO_i · O_i */
                    Di[i] = dot_rows(dO + (size_t)i * D, O + (size_t)i * D, D);
                    float l = lse[hb + i0 + i];
                    lrow[i] = isinf(l) ? INFINITY : l; /* empty row: every p becomes 0 */
                }
                memset(dqacc, 0, sizeof(float) * (size_t)ni * D);
                int np = bsa_row_count(L, h, qb);
                for (int p0 = 0; p0 < np; p0 += PANEL_B) {
                    panel_build(&pn, PWB, L, h, qb, p0, np - p0 < PANEL_B ? np : p0 + PANEL_B,
                                T, ni);
                    panel_abt(P, &pn, Q, (size_t)D, 0, ni, D, Kt, ld);
                    panel_prob(P, &pn, ni, lrow, scale);
                    panel_abt(dP, &pn, dO, (size_t)D, 0, ni, D, Vt, ld);
                    panel_ds(dP, P, &pn, ni, Di, scale);
                    panel_ptx(dV, (size_t)D, P, &pn, dO, (size_t)D, D);       /* dV += Pᵀ dO */
                    panel_ptx(dK, (size_t)D, dP, &pn, Q, (size_t)D, D);       /* dK += dSᵀ Q */
                    panel_pv(dqacc, (size_t)D, dP, &pn, 0, ni, K, (size_t)D, D); /* dQ += dS K */
                }
                float *dQ = dq + (hb + i0) * D;
                size_t n = (size_t)ni * D, x = 0;
                if (!accumulate)
                    memcpy(dQ, dqacc, sizeof(float) * n);
                else {
                    for (; x + VW <= n; x += VW)
                        vfst(dQ + x, vfld(dQ + x) + vfld(dqacc + x));
                    for (; x < n; x++)
                        dQ[x] += dqacc[x];
                }
            }
        }
        mx_free(P);
    }
}

void bsa_forward_layout(const struct bsa_layout *L, const struct mixer *m, float *o, float *lse,
                        float *work, const float *q, const float *k, const float *v, int B, int T)
{
    engine_forward(L, m->H, m->D, o, lse, work, q, k, v, B, T);
}

void bsa_backward_layout(const struct bsa_layout *L, const struct mixer *m, float *dq, float *dk,
                         float *dv, float *work, const float *dout, const float *o,
                         const float *lse, const float *q, const float *k, const float *v, int B,
                         int T)
{
    engine_backward(L, m->H, m->D, dq, dk, dv, 1, work, dout, o, lse, q, k, v, B, T);
}

void bsa_forward(const struct mixer *m, float *o, float *saved, float *work, const float *q,
                 const float *k, const float *v, const float *xp, int B, int T)
{
    (void)xp;
    bsa_forward_layout((const struct bsa_layout *)m->cfg, m, o, saved, work, q, k, v, B, T);
}

void bsa_backward(const struct mixer *m, float *dq, float *dk, float *dv, float *dxp, float *work,
                  const float *dout, const float *o, const float *saved, const float *q,
                  const float *k, const float *v, const float *xp, int B, int T)
{
    (void)dxp, (void)xp;
    engine_backward((const struct bsa_layout *)m->cfg, m->H, m->D, dq, dk, dv, 0, work, dout, o,
                    saved, q, k, v, B, T);
}

void bsa_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd)
{
    const struct bsa_layout *L = (const struct bsa_layout *)m->cfg;
    double pairs;
    if (L->implicit_causal) {
        pairs = (double)m->H * T * (T + 1.0) / 2.0; /* the visible pairs: masked ones are skipped */
    } else {
        int nbT = (int)(mx_round_up((size_t)T, (size_t)L->bs) / (size_t)L->bs);
        size_t blocks = 0;
        for (int h = 0; h < m->H; h++)
            blocks += (size_t)L->maps[L->head_map[h]].row_ptr[nbT];
        pairs = (double)blocks * L->bs * L->bs; /* listed tiles run whole, masks applied inside */
    }
    attn_pairs_flops(pairs * B, m->D, fwd, bwd);
}

const struct attn_core bsa_core = {
    .saved_floats = bsa_saved_floats,
    .work_floats = bsa_work_floats,
    .forward = bsa_forward,
    .backward = bsa_backward,
    .state_floats = bsa_cache_state_floats,
    .step = bsa_cache_step,
};

/* ---- generation ------------------------------------------------------------------------ */

void bsa_row_chunk(float *acc, float *mx, float *l, float *sbuf, const float *q, const float *kt,
                   size_t ld, const float *vrows, int nj, uint64_t bits, float scale, int D)
{
    MX_ASSERT(nj >= 1 && nj <= BS);
    kern_abt(sbuf, BS, q, (size_t)D, 1, D, kt, ld, nj);
    softmax_tile(sbuf, acc, mx, l, 1, nj, &bits, scale, D);
    kern_pv(acc, (size_t)D, sbuf, BS, 1, 1, nj, vrows, (size_t)D, D);
}

void bsa_row_finish(float *o, const float *acc, float l, int D)
{
    if (!(l > 0)) {
        memset(o, 0, sizeof(float) * (size_t)D);
        return;
    }
    float inv = 1.0f / l;
    int d = 0;
    for (; d + VW <= D; d += VW)
        vfst(o + d, vfld(acc + d) * inv);
    for (; d < D; d++)
        o[d] = acc[d] * inv;
}

static size_t cache_ld(const struct mixer *m)
{
    return padded_T(m->T_max);
}

size_t bsa_cache_state_floats(const struct mixer *m)
{
    size_t H = (size_t)m->H, D = (size_t)m->D;
    return H * D * cache_ld(m) + H * (size_t)m->T_max * D + BS + D + 16;
}

void bsa_cache_step(const struct mixer *m, float *o_t, float *state, const float *q_t,
                    const float *k_t, const float *v_t, const float *xp, int t)
{
    (void)xp;
    const struct bsa_layout *L = (const struct bsa_layout *)m->cfg;
    const int H = m->H, D = m->D, bs = L->bs;
    MX_ASSERT(t >= 0 && t < m->T_max);
    const size_t ld = cache_ld(m);
    const float scale = 1.0f / sqrtf((float)D);
    float *kt = state, *vv = kt + (size_t)H * D * ld;
    float *sbuf = vv + (size_t)H * m->T_max * D, *acc = sbuf + BS;
    const int qb = t / bs, r = t - qb * bs;
    for (int h = 0; h < H; h++) {
        float *Kt = kt + (size_t)h * D * ld, *V = vv + (size_t)h * m->T_max * D;
        for (int d = 0; d < D; d++)
            Kt[(size_t)d * ld + t] = k_t[(size_t)h * D + d];
        memcpy(V + (size_t)t * D, v_t + (size_t)h * D, sizeof(float) * (size_t)D);
        float mx = -INFINITY, l = 0;
        memset(acc, 0, sizeof(float) * (size_t)D);
        int np = bsa_row_count(L, h, qb);
        for (int p = 0; p < np; p++) {
            int kb, mid;
            bsa_row_pair(L, h, qb, p, &kb, &mid);
            int j0 = kb * bs, nj = t + 1 - j0 < bs ? t + 1 - j0 : bs;
            uint64_t bits = mid < 0 ? ~(uint64_t)0 : L->masks[(size_t)mid * bs + r];
            bsa_row_chunk(acc, &mx, &l, sbuf, q_t + (size_t)h * D, Kt + j0, ld,
                          V + (size_t)j0 * D, nj, bits, scale, D);
        }
        bsa_row_finish(o_t + (size_t)h * D, acc, l, D);
    }
}
