/* bsa_engine_isa.c — the block-sparse attention engine's kernels, compiled once per SIMD level
 * (mixlm_isa_variants; bsa.c picks the level's table): exact softmax attention tile by tile
 * (query block x key block, at most 64 x 64) over the pairs a layout lists, FlashAttention-2
 * style: online softmax across panels of up to 8 tiles (one softmax pass within a panel),
 * saving only the row log-sum-exp, P recomputed in backward; half-masked tiles trimmed to the
 * 16-lane groups and rows that can see anything (struct panel). Not the layouts (bsa.c). */
#include "attention/bsa.h"
#include "nn/isa.h"
#include "nn/simd.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#ifndef MX_ISA_SUFFIX
#error "bsa_engine_isa.c is compiled once per ISA level by mixlm_isa_variants (CMakeLists.txt)"
#endif

/* WHY silence -Wpsabi: GCC warns that vectors wider than the baseline passed by value change
 * the ABI; every such function here is static (inlined), so no ABI boundary is crossed. */
#pragma GCC diagnostic ignored "-Wpsabi"

/* ---- vectors -----------------------------------------------------------------------------
 * mx_vf (nn/simd.h): MX_VW floats, the width this file is compiled for. The layouts' lane bits
 * and the trimming count in 16-lane groups of NV16 native vectors, so every width walks the same
 * ranges. */
#define VW MX_VW
#define NV16 (16 / VW) /* native vectors per 16 lanes */
#define BS BSA_MAX_BS

/* Lanes of x whose bit in the low VW bits of `bits` is 0 become -inf. */
static inline __attribute__((always_inline)) mx_vf vmask(mx_vf x, uint64_t bits)
{
    static const int32_t lane_bit[16] = {1 << 0,  1 << 1,  1 << 2,  1 << 3, 1 << 4,  1 << 5,
                                         1 << 6,  1 << 7,  1 << 8,  1 << 9, 1 << 10, 1 << 11,
                                         1 << 12, 1 << 13, 1 << 14, 1 << 15};
    mx_vi lb;
    memcpy(&lb, lane_bit, sizeof lb);
    mx_vi on = (((mx_vi){0} + (int32_t)(bits & ((1u << VW) - 1u))) & lb) != 0;
    return mx_vselect(on, x, mx_vset1(-INFINITY));
}

/* c[v] = exp(c[v] - m) for v in [a, b), their sum added to sv in v order; returns sv.
 * WHY MX_VEXP_U vectors at a time: GCC called mx_vexp out of line once per vector (1% of a
 * small-shape training step at avx2, perf), and one exp chain per call runs at its latency;
 * mx_vexp_u interleaves MX_VEXP_U chains. The same operations per lane and the same order of
 * the sum: the same bits as one mx_vexp per vector. */
static inline __attribute__((always_inline)) mx_vf exp_run(float *c, int a, int b, mx_vf mn, mx_vf sv)
{
    int v = a;
    for (; v + MX_VEXP_U <= b; v += MX_VEXP_U) {
        mx_vf p[MX_VEXP_U];
#pragma GCC unroll 4
        for (int j = 0; j < MX_VEXP_U; j++)
            p[j] = mx_vload(c + VW * (v + j)) - mn;
        mx_vexp_u(p, p, MX_VEXP_U);
#pragma GCC unroll 4
        for (int j = 0; j < MX_VEXP_U; j++) {
            mx_vstore(c + VW * (v + j), p[j]);
            sv += p[j];
        }
    }
    for (; v < b; v++) {
        mx_vf p = mx_vload(c + VW * v) - mn;
        mx_vexp_u(&p, &p, 1);
        mx_vstore(c + VW * v, p);
        sv += p;
    }
    return sv;
}

/* ---- tile kernels ------------------------------------------------------------------------
 * Register blocks of KR rows x KV native vectors (KW = KV * VW columns), sized so the
 * accumulators plus one row of loaded vectors and a broadcast fit the register file: 32
 * vector registers with AVX-512 and NEON, 16 with AVX2 and SSE. KW divides 16 or is a
 * multiple of 16, so a 16-lane group is always whole chunks.
 * WHY per width: 8 rows x 32 columns is 16 zmm accumulators on AVX-512 but 32 ymm on AVX2
 * (twice its register file): every FMA then spilled, and dense attention ran at ~5% of sgemm.
 * WHY not wider blocks on AVX-512: with 4 key vectors x 4 rows GCC folds every key load into
 * its FMA (20 loads per 16 FMAs, load-bound); 2 vectors x 8 rows keeps them in registers.
 * WHY 6 rows on AVX2: 4 rows gave 8 accumulators, just the FMA latency x 2 ports with no
 * slack; 6 rows use 15 of the 16 registers (12 + 2 key vectors + 1 broadcast) and measured the
 * dense core ~8% faster at T = 256 (bench/RESULTS.md, session 11). Blocks of 4, 2 and 1 rows
 * take what KR leaves, so a 16-row group is not 6 + ten single rows. */
#if VW == 16 /* 32 registers: 8 x 2 = 16 accumulators */
#define KR 8
#define KV 2
#elif VW == 8 /* 16 registers: 6 x 2 = 12 accumulators, 2 key vectors, 1 broadcast */
#define KR 6
#define KV 2
#elif VW == 4 && MX_VREGS == 32 /* NEON: 4 x 4 = 16 accumulators, 16 columns */
#define KR 4
#define KV 4
#elif VW == 4 /* SSE: 4 x 2 = 8 accumulators */
#define KR 4
#define KV 2
#else /* scalar */
#define KR 4
#define KV 4
#endif
#define KW (KV * VW)

/* Rows i..i+R-1 of S (lds) columns 0..nv*VW-1 = A (row stride lda) · Bt (D, ld): scores
 * against keys stored as columns (K or V transposed), vectorised over keys; nv <= KV. R is a
 * constant where this is inlined: R x nv accumulators. */
static inline __attribute__((always_inline)) void abt_rows(float *S, size_t lds, const float *A,
                                                            size_t lda, int i, int D, const float *Bt,
                                                            size_t ld, const int nv, const int R)
{
    mx_vf acc[KR][KV];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            acc[r][v] = mx_vzero();
    for (int d = 0; d < D; d++) {
        mx_vf bv[KV];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            bv[v] = mx_vload(Bt + (size_t)d * ld + VW * v);
            mx_vkeep(&bv[v]); /* one load per block, not one per row */
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            mx_vf a = mx_vset1(A[(size_t)(i + r) * lda + d]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[r][v] = mx_vfma(a, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            mx_vstore(S + (size_t)(i + r) * lds + VW * v, acc[r][v]);
}

/* S (ni, lds) columns 0..nv*VW-1 = A (ni, D) · Bt: KR rows at a time, the rest in blocks of 4,
 * 2 and 1 (each row's sum is the same chain of FMAs in d order whatever its block). */
static inline __attribute__((always_inline)) void abt_block(float *S, size_t lds, const float *A,
                                                             size_t lda, int ni, int D,
                                                             const float *Bt, size_t ld,
                                                             const int nv)
{
    int i = 0;
    for (; i + KR <= ni; i += KR)
        abt_rows(S, lds, A, lda, i, D, Bt, ld, nv, KR);
#if KR > 4
    for (; i + 4 <= ni; i += 4)
        abt_rows(S, lds, A, lda, i, D, Bt, ld, nv, 4);
#endif
#if KR > 2
    for (; i + 2 <= ni; i += 2)
        abt_rows(S, lds, A, lda, i, D, Bt, ld, nv, 2);
#endif
    for (; i < ni; i++)
        abt_rows(S, lds, A, lda, i, D, Bt, ld, nv, 1);
}

/* S (ni, lds) columns 0..nc-1 (rounded up to 16) = A · Bt: any width, in KW-column chunks
 * (a 16-column remainder when KW is wider than 16). */
static void kern_abt(float *S, size_t lds, const float *A, size_t lda, int ni, int D,
                     const float *Bt, size_t ld, int nc)
{
    nc = (int)mx_round_up((size_t)nc, 16);
    int c0 = 0;
    for (; c0 + KW <= nc; c0 += KW)
        abt_block(S + c0, lds, A, lda, ni, D, Bt + c0, ld, KV);
    if (c0 < nc) /* only when KW > 16: one 16-lane group left */
        abt_block(S + c0, lds, A, lda, ni, D, Bt + c0, ld, NV16 < KV ? NV16 : KV);
}

/* Rows r0..r0+R-1 of out (row stride ldo) += P (nr, nc) · X (nc, D; row stride ldx),
 * P(r,c) = P[r*pr + c*pc], columns d0..d0+nv*VW-1 only (nv <= KV); R constant where inlined. */
static inline __attribute__((always_inline)) void pv_rows(float *out, size_t ldo, const float *P,
                                                           size_t pr, size_t pc, int r0, int nc,
                                                           const float *X, size_t ldx, int d0,
                                                           const int nv, const int R)
{
    mx_vf acc[KR][KV];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            acc[r][v] = mx_vload(out + (size_t)(r0 + r) * ldo + d0 + VW * v);
    for (int c = 0; c < nc; c++) {
        mx_vf xv[KV];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            xv[v] = mx_vload(X + (size_t)c * ldx + d0 + VW * v);
            mx_vkeep(&xv[v]);
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            mx_vf p = mx_vset1(P[(size_t)(r0 + r) * pr + (size_t)c * pc]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[r][v] = mx_vfma(p, xv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            mx_vstore(out + (size_t)(r0 + r) * ldo + d0 + VW * v, acc[r][v]);
}

/* out (nr, D; row stride ldo) += P (nr, nc) · X, columns d0..d0+nv*VW-1: KR rows at a time,
 * the rest in blocks of 4, 2 and 1. Covers P·V, Pᵀ·dO, dS·K and dSᵀ·Q through the strides. */
static inline __attribute__((always_inline)) void pv_block(float *out, size_t ldo, const float *P,
                                                            size_t pr, size_t pc, int nr, int nc,
                                                            const float *X, size_t ldx, int d0,
                                                            const int nv)
{
    int r0 = 0;
    for (; r0 + KR <= nr; r0 += KR)
        pv_rows(out, ldo, P, pr, pc, r0, nc, X, ldx, d0, nv, KR);
#if KR > 4
    for (; r0 + 4 <= nr; r0 += 4)
        pv_rows(out, ldo, P, pr, pc, r0, nc, X, ldx, d0, nv, 4);
#endif
#if KR > 2
    for (; r0 + 2 <= nr; r0 += 2)
        pv_rows(out, ldo, P, pr, pc, r0, nc, X, ldx, d0, nv, 2);
#endif
    for (; r0 < nr; r0++)
        pv_rows(out, ldo, P, pr, pc, r0, nc, X, ldx, d0, nv, 1);
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

/* Forward online-softmax update of one tile. S (ni, BS): raw scores q·k, overwritten by
 * p = exp(score*scale - m_new); acc (ni, D) rescaled; mrow, lrow (ni) running max and sum.
 * mask: (ni) rows of key bits, NULL = all keys.
 * WHY the rescaling: the row max m grows as key blocks arrive; keeping acc and l relative to
 * the current m (multiplying both by e^(m_old - m_new) when it grows) keeps every exponent
 * <= 0, so nothing overflows, and the final acc / l is the exact softmax average. */
static void softmax_tile(float *S, float *acc, float *mrow, float *lrow, int ni, int nj,
                         const uint64_t *mask, float scale, int D)
{
    const int nv = (int)mx_round_up((size_t)nj, 16) / 16 * NV16; /* native vectors */
    const uint64_t valid = bsa_lanes_below(nj);
    for (int i = 0; i < ni; i++) {
        float *row = S + (size_t)i * BS;
        uint64_t bits = (mask ? mask[i] : ~(uint64_t)0) & valid;
        mx_vf mv = mx_vset1(-INFINITY);
        for (int v = 0; v < nv; v++) {
            mx_vf x = vmask(mx_vload(row + VW * v) * scale, bits >> (VW * v));
            mx_vstore(row + VW * v, x);
            mv = mx_vmax(mv, x);
        }
        float m_old = mrow[i], mt = mx_vhmax(mv);
        float m_new = mt > m_old ? mt : m_old;
        if (m_new == -INFINITY) { /* nothing visible yet in this row */
            for (int v = 0; v < nv; v++)
                mx_vstore(row + VW * v, mx_vzero());
            continue;
        }
        mx_vf sv = exp_run(row, 0, nv, mx_vset1(m_new), mx_vzero());
        float alpha = expf(m_old - m_new); /* 0 when m_old = -inf */
        lrow[i] = lrow[i] * alpha + mx_vhsum(sv);
        mrow[i] = m_new;
        if (alpha != 1.0f) {
            float *a = acc + (size_t)i * D;
            for (int d = 0; d < D; d++)
                a[d] *= alpha;
        }
    }
}

/* ---- forward and backward ------------------------------------------------------------- */

static int team_size(void)
{
    int n = omp_get_max_threads();
    return n < BSA_MAX_THREADS ? n : BSA_MAX_THREADS;
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
        /* 4 x 4 blocks (mx_transpose4x4), in strips of 64 positions so the strip being read
         * (64 x D) stays in L1; the edges of T and D not a multiple of 4 one float at a time. */
        const int T4 = T / 4 * 4, D4 = D / 4 * 4;
        for (int t0 = 0; t0 < T4; t0 += 64) {
            int t1 = T4 - t0 < 64 ? T4 : t0 + 64;
            for (int d = 0; d < D4; d += 4)
                for (int t = t0; t < t1; t += 4)
                    mx_transpose4x4(Xt + (size_t)d * ld + t, ld, X + (size_t)t * D + d, (size_t)D);
        }
        for (int d = D4; d < D; d++)
            for (int t = 0; t < T4; t++)
                Xt[(size_t)d * ld + t] = X[(size_t)t * D + d];
        for (int t = T4; t < T; t++)
            for (int d = 0; d < D; d++)
                Xt[(size_t)d * ld + t] = X[(size_t)t * D + d];
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
    return (pn->mask[t] ? pn->mask[t][r] : ~(uint64_t)0) & bsa_lanes_below(pn->nj[t]);
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
            bsa_tile_ranges(rows, ni, vlo, vhi, lo, hi);
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
        mx_vf mv = mx_vset1(-INFINITY);
        for (int t = 0; t < pn->n; t++) {
            uint64_t bits = tile_bits(pn, t, r);
            float *c = row + pn->col[t];
            const int a = NV16 * pn->pa[g][t], b = NV16 * pn->pb[g][t];
            if (bits == ~(uint64_t)0) /* a full row: nothing to mask */
                for (int v = a; v < b; v++) {
                    mx_vf x = mx_vload(c + VW * v) * scale;
                    mx_vstore(c + VW * v, x);
                    mv = mx_vmax(mv, x);
                }
            else
                for (int v = a; v < b; v++) {
                    mx_vf x = vmask(mx_vload(c + VW * v) * scale, bits >> (VW * v));
                    mx_vstore(c + VW * v, x);
                    mv = mx_vmax(mv, x);
                }
        }
        float m_old = mrow[r], mt = mx_vhmax(mv);
        float m_new = mt > m_old ? mt : m_old;
        mx_vf sv = mx_vzero(), mn = mx_vset1(m_new == -INFINITY ? 0.0f : m_new);
        for (int t = 0; t < pn->n; t++) {
            /* masked lanes: exp(-inf) = 0 */
            sv = exp_run(row + pn->col[t], NV16 * pn->pa[g][t], NV16 * pn->pb[g][t], mn, sv);
        }
        if (m_new == -INFINITY) /* nothing visible yet in this row */
            continue;
        float ssum = mx_vhsum(sv);
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
        mx_vf l = mx_vset1(lse[r]);
        for (int t = 0; t < pn->n; t++) {
            uint64_t bits = tile_bits(pn, t, r);
            float *c = row + pn->col[t];
            int a = NV16 * pn->pa[g][t], b = NV16 * pn->pb[g][t], nv = NV16 * nvec(pn->nj[t]);
            for (int v = 0; v < a; v++)
                mx_vstore(c + VW * v, mx_vzero());
            int v = a;
            for (; v + MX_VEXP_U <= b; v += MX_VEXP_U) { /* as exp_run: MX_VEXP_U chains at a time */
                mx_vf p[MX_VEXP_U];
#pragma GCC unroll 4
                for (int j = 0; j < MX_VEXP_U; j++)
                    p[j] = vmask(mx_vload(c + VW * (v + j)) * scale, bits >> (VW * (v + j))) - l;
                mx_vexp_u(p, p, MX_VEXP_U);
#pragma GCC unroll 4
                for (int j = 0; j < MX_VEXP_U; j++)
                    mx_vstore(c + VW * (v + j), p[j]);
            }
            for (; v < b; v++) {
                mx_vf p = vmask(mx_vload(c + VW * v) * scale, bits >> (VW * v)) - l;
                mx_vexp_u(&p, &p, 1);
                mx_vstore(c + VW * v, p);
            }
            for (v = b; v < nv; v++)
                mx_vstore(c + VW * v, mx_vzero());
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
        mx_vf di = mx_vset1(Di[r]);
        for (int t = 0; t < pn->n; t++) {
            int a = NV16 * pn->pa[g][t], b = NV16 * pn->pb[g][t], nv = NV16 * nvec(pn->nj[t]);
            float *c = row + pn->col[t];
            const float *pc = prow + pn->col[t];
            for (int v = 0; v < a; v++)
                mx_vstore(c + VW * v, mx_vzero());
            for (int v = a; v < b; v++)
                mx_vstore(c + VW * v, mx_vload(pc + VW * v) * (mx_vload(c + VW * v) - di) * scale);
            for (int v = b; v < nv; v++)
                mx_vstore(c + VW * v, mx_vzero());
        }
    }
}

/* Σ_d a[d] b[d], vectorised when D % 16 == 0 (the dense/window head dims). */
static inline float dot_rows(const float *a, const float *b, int D)
{
    if (D % 16 == 0) {
        mx_vf s = mx_vzero();
        for (int d = 0; d < D; d += VW)
            s = mx_vfma(mx_vload(a + d), mx_vload(b + d), s);
        return mx_vhsum(s);
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
    const size_t ld = bsa_padded_T(T);
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
    const size_t ld = bsa_padded_T(T);
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
                        mx_vstore(dQ + x, mx_vload(dQ + x) + mx_vload(dqacc + x));
                    for (; x < n; x++)
                        dQ[x] += dqacc[x];
                }
            }
        }
        mx_free(P);
    }
}

/* ---- generation ------------------------------------------------------------------------ */

static void row_chunk(float *acc, float *mx, float *l, float *sbuf, const float *q, const float *kt,
                   size_t ld, const float *vrows, int nj, uint64_t bits, float scale, int D)
{
    MX_ASSERT(nj >= 1 && nj <= BS);
    kern_abt(sbuf, BS, q, (size_t)D, 1, D, kt, ld, nj);
    softmax_tile(sbuf, acc, mx, l, 1, nj, &bits, scale, D);
    kern_pv(acc, (size_t)D, sbuf, BS, 1, 1, nj, vrows, (size_t)D, D);
}

static void row_finish(float *o, const float *acc, float l, int D)
{
    if (!(l > 0)) {
        memset(o, 0, sizeof(float) * (size_t)D);
        return;
    }
    float inv = 1.0f / l;
    int d = 0;
    for (; d + VW <= D; d += VW)
        mx_vstore(o + d, mx_vload(acc + d) * inv);
    for (; d < D; d++)
        o[d] = acc[d] * inv;
}


const struct bsa_engine MX_ISA_FN(bsa_engine) = {
    .isa = MX_SIMD_NAME,
    .forward = engine_forward,
    .backward = engine_backward,
    .row_chunk = row_chunk,
    .row_finish = row_finish,
};
