/* kernels_isa.c — nn's hot kernels written once against nn/simd.h and compiled once per SIMD
 * level (CMake mixlm_isa_variants: -DMX_ISA_SUFFIX=avx2 etc. and that level's flags); exports
 * the table MX_ISA_FN(nn_kernels). OpenMP splits rows or vector blocks with a static schedule
 * exactly as the references in nn/layers.c do, so results are bitwise reproducible at a fixed
 * level and thread count. Not the dispatch (nn/kernels.c) and not the references. */
#include "nn/kernels.h"
#include "nn/nn.h"
#include "nn/simd.h"

/* Built only through mixlm_isa_variants (hence its own folder nn/isa/, outside the glob of nn/ that
 * mixlm_library compiles). */
#ifndef MX_ISA_SUFFIX
#error "kernels_isa.c is compiled once per SIMD level by mixlm_isa_variants (CMake), not directly"
#endif

#include <math.h>
#include <omp.h>
#include <string.h>

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

/* Elementwise kernels loop over blocks of MX_VW floats (mx_vblock_len: the last may be partial). */
#define NBLOCKS(n) (((n) + MX_VW - 1) / MX_VW)

/* Elementwise exp kernels take MX_VEXP_U vectors at a time (mx_vexp_u: interleaved exp
 * chains), the end of the array one vector at a time. EB: floats per such block. */
#define EB (MX_VEXP_U * MX_VW)
_Static_assert(MX_VEXP_U == 4, "ce_forward adds its MX_VEXP_U accumulators as (0 + 1) + (2 + 3)");

/* GELU forward (dout NULL: out = x·σ(2u)) or backward (out = dout·GELU'(x)) of u vectors from
 * i0, each of k floats (k < MX_VW only with u = 1: the tail), u = √(2/π)(x + 0.044715 x³).
 * σ(2u) = 1 / (1 + exp(z)) with z = -2u = x (a + b x²), taken as num / (1 + e) with
 * e = exp(-|z|) in (0, 1] and num = e where z > 0, else 1: e never overflows, and where exp(z)
 * would (x very negative, z up to +inf) σ is 0 and out is -0, as in the reference. The exp is
 * mx_vexpn_u (FMA, no clamps beyond its own). Within a few ulp of layer_gelu_forward_ref /
 * layer_gelu_backward_ref (tests/unit/test_nn_kernels.c: relative 2e-6, the backward also
 * absolute 2e-6 where g's two terms cancel), NOT bitwise equal to it nor across levels.
 * WHY not the reference's operations any more: kept bitwise equal to mx_expf (no FMA, clamps,
 * three selects, a true division per lane for the tanh form) GELU ran at 2.6-3.2x its memory
 * bound on AVX-512 machines with 60-85 GB/s (session 8 and 9, bench/RESULTS.md), compute-bound
 * at ~37 vector operations per vector; this form is ~20. Bitwise agreement across levels bought
 * nothing: the matmuls around GELU (OpenBLAS, one kernel per CPU) never agreed across levels.
 * WHY always_inline and the two loops below: as a called function (u, k and dout unknown) its
 * exp loops ran with u a run-time count and every load and store masked; inlined with
 * constants, the full blocks are plain vector code. Two loops, not one taking dout: with dout
 * a run-time value in one loop the forward measured ~10% slower (one shared OpenMP body). */
static inline __attribute__((always_inline)) void gelu_u(float *out, const float *dout, const float *x,
                                                         size_t i0, int u, size_t k)
{
    const mx_vf za = mx_vset1(-2.0f * GELU_K), zb = mx_vset1(-2.0f * GELU_K * 0.044715f);
    mx_vf v[MX_VEXP_U] = {0}, z[MX_VEXP_U] = {0}, e[MX_VEXP_U] = {0}; /* zeroed: see mx_vexp_u */
#pragma GCC unroll 4
    for (int j = 0; j < u; j++) {
        v[j] = mx_vload_k(x + i0 + (size_t)j * MX_VW, k);
        z[j] = v[j] * mx_vfma(zb, v[j] * v[j], za);
        e[j] = -mx_vabs(z[j]);
    }
    mx_vexpn_u(e, e, u);
#pragma GCC unroll 4
    for (int j = 0; j < u; j++) {
        size_t i = i0 + (size_t)j * MX_VW;
        mx_vf num = mx_vselect(z[j] > 0.0f, e[j], mx_vset1(1.0f));
        if (!dout) {
            mx_vstore_k(out + i, v[j] * num / (1.0f + e[j]), k);
            continue;
        }
        /* GELU' = σ + x σ(1-σ) (2K + 6K·0.044715 x²), with σ(1-σ) = e/(1+e)² whichever of
         * σ, 1-σ is e/(1+e): no cancellation where σ is near 1 (σ - σ² loses every bit there:
         * an error of one ulp in σ moved GELU' by x·t·2^-24, up to 1.4e-5 at x near 10). */
        mx_vf r = 1.0f / (1.0f + e[j]);
        mx_vf sg = num * r;
        mx_vf t = mx_vfma(mx_vset1(6.0f * GELU_K * 0.044715f), v[j] * v[j], mx_vset1(2.0f * GELU_K));
        mx_vf g = mx_vfma(v[j] * t, e[j] * (r * r), sg);
        mx_vstore_k(out + i, mx_vload_k(dout + i, k) * g, k);
    }
}

static void gelu_forward(float *out, const float *x, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < (n + EB - 1) / EB; b++) {
        size_t i0 = b * EB;
        if (i0 + EB <= n)
            gelu_u(out, NULL, x, i0, MX_VEXP_U, MX_VW);
        else
            for (size_t i = i0; i < n; i += MX_VW)
                gelu_u(out, NULL, x, i, 1, mx_vblock_len(n, i));
    }
}

static void gelu_backward(float *dx, const float *dout, const float *x, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < (n + EB - 1) / EB; b++) {
        size_t i0 = b * EB;
        if (i0 + EB <= n)
            gelu_u(dx, dout, x, i0, MX_VEXP_U, MX_VW);
        else
            for (size_t i = i0; i < n; i += MX_VW)
                gelu_u(dx, dout, x, i, 1, mx_vblock_len(n, i));
    }
}

/* LayerNorm rows go LN_R at a time (the last N % LN_R one by one), their loops interleaved.
 * WHY: one row is a chain (sum -> horizontal sum -> mean -> squared deviations -> horizontal
 * sum -> 1/sqrt -> normalise) of ~130 cycles of latency against ~70 operations at C = 128, and
 * the next row's independent work sat behind it in the out-of-order window; LN_R rows in one
 * loop give the core LN_R chains to overlap. Measured (bench/RESULTS.md, session 10, L2, one
 * thread): 4 rows beat 2 by ~23% forward (avx512 and avx2) and ~13% backward at avx512; 8 were
 * slower than 4 (AVX2's 16 registers spill). Each row's arithmetic is the same as alone (the
 * same accumulators, in the same order), so a row's result does not depend on its partners.
 * LN_UNROLL unrolls the loops over the LN_R rows by LN_R (the pragma needs a literal: the two
 * macro levels expand LN_R before stringifying). */
#define LN_R 4
#define LN_PRAGMA(x) _Pragma(#x)
#define LN_UNROLL_N(n) LN_PRAGMA(GCC unroll n)
#define LN_UNROLL LN_UNROLL_N(LN_R)

/* Row sums use two accumulators (two independent add chains hide the add latency) and a
 * zero-padded partial vector for the tail; the fixed order makes them deterministic. */
static inline __attribute__((always_inline)) void ln_forward_rows(float *out, float *mean, float *rstd,
                                                                  const float *x, const float *w,
                                                                  const float *b, size_t i0, int R, size_t nc,
                                                                  mx_vi tmask)
{
    const size_t full = nc / MX_VW * MX_VW, tail = nc - full;
    const float *xr[LN_R];
    mx_vf s0[LN_R], s1[LN_R], vm[LN_R], vr[LN_R];
    float m[LN_R], rs[LN_R];
LN_UNROLL
    for (int r = 0; r < R; r++)
        xr[r] = x + (i0 + (size_t)r) * nc, s0[r] = mx_vzero(), s1[r] = mx_vzero();
    size_t c = 0;
    for (; c + 2 * MX_VW <= full; c += 2 * MX_VW)
LN_UNROLL
        for (int r = 0; r < R; r++) {
            s0[r] += mx_vload(xr[r] + c);
            s1[r] += mx_vload(xr[r] + c + MX_VW);
        }
    for (; c < full; c += MX_VW)
LN_UNROLL
        for (int r = 0; r < R; r++)
            s0[r] += mx_vload(xr[r] + c);
LN_UNROLL
    for (int r = 0; r < R; r++) {
        s0[r] += mx_vload_n(xr[r] + full, tail);
        m[r] = mx_vhsum(s0[r] + s1[r]) / (float)nc;
        vm[r] = mx_vset1(m[r]), s0[r] = mx_vzero(), s1[r] = mx_vzero();
    }
    for (c = 0; c + 2 * MX_VW <= full; c += 2 * MX_VW)
LN_UNROLL
        for (int r = 0; r < R; r++) {
            mx_vf d0 = mx_vload(xr[r] + c) - vm[r], d1 = mx_vload(xr[r] + c + MX_VW) - vm[r];
            s0[r] = mx_vfma(d0, d0, s0[r]);
            s1[r] = mx_vfma(d1, d1, s1[r]);
        }
    for (; c < full; c += MX_VW)
LN_UNROLL
        for (int r = 0; r < R; r++) {
            mx_vf d = mx_vload(xr[r] + c) - vm[r];
            s0[r] = mx_vfma(d, d, s0[r]);
        }
LN_UNROLL
    for (int r = 0; r < R; r++) {
        mx_vf dt = mx_vselect(tmask, mx_vload_n(xr[r] + full, tail) - vm[r], mx_vzero());
        s0[r] = mx_vfma(dt, dt, s0[r]);
        float v = mx_vhsum(s0[r] + s1[r]) / (float)nc;
        rs[r] = 1.0f / sqrtf(v + 1e-5f);
        vr[r] = mx_vset1(rs[r]);
    }
    for (c = 0; c < nc; c += MX_VW) {
        size_t k = mx_vblock_len(nc, c);
        mx_vf ww = mx_vload_k(w + c, k), bb = b ? mx_vload_k(b + c, k) : mx_vzero();
LN_UNROLL
        for (int r = 0; r < R; r++)
            mx_vstore_k(out + (i0 + (size_t)r) * nc + c, mx_vfma((mx_vload_k(xr[r] + c, k) - vm[r]) * vr[r], ww, bb),
                        k);
    }
LN_UNROLL
    for (int r = 0; r < R; r++)
        mean[i0 + (size_t)r] = m[r], rstd[i0 + (size_t)r] = rs[r];
}

static void ln_forward(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b,
                       size_t N, int C)
{
    const size_t nc = (size_t)C;
    const mx_vi tmask = mx_vmask_first(nc % MX_VW);
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < (N + LN_R - 1) / LN_R; p++) {
        size_t i0 = p * LN_R;
        if (i0 + LN_R <= N)
            ln_forward_rows(out, mean, rstd, x, w, b, i0, LN_R, nc, tmask);
        else
            for (size_t i = i0; i < N; i++)
                ln_forward_rows(out, mean, rstd, x, w, b, i, 1, nc, tmask);
    }
}

/* Per-thread partial sums for dw/db: at most this many threads (as layer_norm_backward_ref). */
#define LN_MAX_THREADS 64

/* R rows of the backward (LN_R interleaved, as ln_forward_rows): dxhat = dout * w;
 * dx += r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)); pw += dout * xhat, pb += dout
 * row after row (the same order as one row at a time). Tail lanes load dout = 0, so they add
 * nothing to s1, s2, pw, pb. */
static inline __attribute__((always_inline)) void ln_backward_rows(float *dx, float *pw, float *pb,
                                                                   const float *dout, const float *x,
                                                                   const float *mean, const float *rstd,
                                                                   const float *w, size_t i0, int R, size_t nc)
{
    const float *xr[LN_R], *dr[LN_R];
    mx_vf vm[LN_R], vr[LN_R], s1[LN_R], s2[LN_R], m1[LN_R], m2[LN_R];
LN_UNROLL
    for (int r = 0; r < R; r++) {
        size_t i = i0 + (size_t)r;
        xr[r] = x + i * nc, dr[r] = dout + i * nc;
        vm[r] = mx_vset1(mean[i]), vr[r] = mx_vset1(rstd[i]), s1[r] = mx_vzero(), s2[r] = mx_vzero();
    }
    for (size_t c = 0; c < nc; c += MX_VW) {
        size_t k = mx_vblock_len(nc, c);
        mx_vf ww = mx_vload_k(w + c, k), aw = mx_vload_k(pw + c, k), ab = mx_vload_k(pb + c, k);
LN_UNROLL
        for (int r = 0; r < R; r++) {
            mx_vf xh = (mx_vload_k(xr[r] + c, k) - vm[r]) * vr[r], d = mx_vload_k(dr[r] + c, k);
            mx_vf dxh = d * ww;
            s1[r] += dxh;
            s2[r] = mx_vfma(dxh, xh, s2[r]);
            aw = mx_vfma(d, xh, aw);
            ab += d;
        }
        mx_vstore_k(pw + c, aw, k);
        mx_vstore_k(pb + c, ab, k);
    }
LN_UNROLL
    for (int r = 0; r < R; r++)
        m1[r] = mx_vset1(mx_vhsum(s1[r]) / (float)nc), m2[r] = mx_vset1(mx_vhsum(s2[r]) / (float)nc);
    for (size_t c = 0; c < nc; c += MX_VW) {
        size_t k = mx_vblock_len(nc, c);
        mx_vf ww = mx_vload_k(w + c, k);
LN_UNROLL
        for (int r = 0; r < R; r++) {
            float *dxi = dx + (i0 + (size_t)r) * nc;
            mx_vf xh = (mx_vload_k(xr[r] + c, k) - vm[r]) * vr[r];
            mx_vf g = mx_vload_k(dr[r] + c, k) * ww - m1[r] - xh * m2[r];
            mx_vstore_k(dxi + c, mx_vfma(vr[r], g, mx_vload_k(dxi + c, k)), k);
        }
    }
}

static void ln_backward(float *dx, float *dw, float *db, float *work, const float *dout, const float *x,
                        const float *mean, const float *rstd, const float *w, size_t N, int C)
{
    const size_t nc = (size_t)C;
    int nt = omp_get_max_threads();
    if (nt > LN_MAX_THREADS)
        nt = LN_MAX_THREADS;
    /* One buffer per thread, summed in thread order afterwards: deterministic for a fixed
     * thread count, no atomics. Static schedule gives each thread a fixed row range. */
    float *part = work;
    memset(part, 0, (size_t)nt * 2 * nc * sizeof(float));
#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num();
        float *pw = part + (size_t)tid * 2 * nc, *pb = pw + nc;
#pragma omp for schedule(static)
        for (size_t p = 0; p < (N + LN_R - 1) / LN_R; p++) {
            size_t i0 = p * LN_R;
            if (i0 + LN_R <= N)
                ln_backward_rows(dx, pw, pb, dout, x, mean, rstd, w, i0, LN_R, nc);
            else
                for (size_t i = i0; i < N; i++)
                    ln_backward_rows(dx, pw, pb, dout, x, mean, rstd, w, i, 1, nc);
        }
    }
    for (int t = 0; t < nt; t++) {
        const float *pw = part + (size_t)t * 2 * nc, *pb = pw + nc;
        for (size_t c = 0; c < nc; c += MX_VW) {
            size_t k = mx_vblock_len(nc, c);
            mx_vstore_k(dw + c, mx_vload_k(dw + c, k) + mx_vload_k(pw + c, k), k);
            if (db)
                mx_vstore_k(db + c, mx_vload_k(db + c, k) + mx_vload_k(pb + c, k), k);
        }
    }
}

/* The max of one row of nv floats (full: nv rounded down to MX_VW; tail lanes under tmask).
 * Four independent max chains; max is exact: the same result in any order. */
static inline float ce_row_max(const float *l, size_t full, size_t tail, mx_vi tmask)
{
    const mx_vf ninf = mx_vset1(-__builtin_inff());
    mx_vf mv = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
    size_t v0 = 0;
    for (; v0 + 4 * MX_VW <= full; v0 += 4 * MX_VW) {
        mv = mx_vmax(mx_vload(l + v0), mv);
        m1 = mx_vmax(mx_vload(l + v0 + MX_VW), m1);
        m2 = mx_vmax(mx_vload(l + v0 + 2 * MX_VW), m2);
        m3 = mx_vmax(mx_vload(l + v0 + 3 * MX_VW), m3);
    }
    for (; v0 < full; v0 += MX_VW)
        mv = mx_vmax(mx_vload(l + v0), mv);
    mv = mx_vmax(mx_vmax(m1, mv), mx_vmax(m3, m2));
    if (tail)
        mv = mx_vmax(mx_vselect(tmask, mx_vload_n(l + full, tail), ninf), mv);
    return mx_vhmax(mv);
}

/* Log-sum-exp per row: the max, then Σ exp(l - max) in float with CE_U vector accumulators
 * (the reference sums in double; the terms are in (0, 1] so the float sum's relative error is
 * ~V/(2 MX_VW) ulp at worst, far below what the loss needs). The exp is mx_vexpn_u (x <= 0
 * here; FMA, half mx_vexp_u's operations).
 * WHY the next row's max inside this row's exp loop: done row by row, each row's exp waited
 * for its own max pass and horizontal max (the exp loop of one row fills the out-of-order
 * window, so the next row's max could not start early): ~100 cycles of bubble per row, 40% of
 * the time at V = 128. Interleaved, the max pass also streams the next row in from memory
 * while this row's exps run. Each row's result is the same whatever the split of rows between
 * threads (a thread's last row takes its own max again, from L1). */
#define CE_U 2
/* The rows of ce_forward (fused 0: logits read only) and of ce_fused (fused 1: e = exp(l - max)
 * written over the row as it is summed, then the row scaled to (e / Σe - onehot) * scale; the
 * target's logit read first). Inlined with fused a constant: two loops without a run-time test. */
static inline __attribute__((always_inline)) float ce_rows(float *lw, const float *logits, float *lse,
                                                            float *losses, const int32_t *targets,
                                                            size_t N, int V, float scale, const int fused)
{
    const size_t nv = (size_t)V, full = nv / MX_VW * MX_VW, tail = nv - full;
    const mx_vi tmask = mx_vmask_first(tail);
    const mx_vf ninf = mx_vset1(-__builtin_inff());
#pragma omp parallel
    {
        int id = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t lo = N * (size_t)id / (size_t)nt, hi = N * (size_t)(id + 1) / (size_t)nt;
        float mx = lo < hi ? ce_row_max(logits + lo * nv, full, tail, tmask) : 0.0f;
        for (size_t i = lo; i < hi; i++) {
            const float *l = logits + i * nv, *ln = i + 1 < hi ? l + nv : l;
            float *w = fused ? lw + i * nv : NULL;
            const int32_t tg = targets ? targets[i] : NN_CE_IGNORE;
            const float lt = tg >= 0 ? l[tg] : 0.0f;
            mx_vf vmx = mx_vset1(mx), s[CE_U], mn[CE_U];
            for (int j = 0; j < CE_U; j++)
                s[j] = mx_vzero(), mn[j] = ninf;
            size_t v = 0;
            for (; v + CE_U * MX_VW <= full; v += CE_U * MX_VW) {
                mx_vf e[CE_U];
#pragma GCC unroll 4
                for (int j = 0; j < CE_U; j++) {
                    e[j] = mx_vload(l + v + (size_t)j * MX_VW) - vmx;
                    mn[j] = mx_vmax(mx_vload(ln + v + (size_t)j * MX_VW), mn[j]);
                }
                mx_vexpn_u(e, e, CE_U);
#pragma GCC unroll 4
                for (int j = 0; j < CE_U; j++) {
                    if (fused)
                        mx_vstore(w + v + (size_t)j * MX_VW, e[j]);
                    s[j] += e[j];
                }
            }
            for (; v < full; v += MX_VW) {
                mx_vf e = mx_vexpn(mx_vload(l + v) - vmx);
                mn[0] = mx_vmax(mx_vload(ln + v), mn[0]);
                if (fused)
                    mx_vstore(w + v, e);
                s[0] += e;
            }
            mx_vf s0 = s[0], m0 = mn[0];
            for (int j = 1; j < CE_U; j++)
                s0 += s[j], m0 = mx_vmax(mn[j], m0);
            if (tail) { /* WHY the test: a whole extra exp per row when V is a multiple of MX_VW */
                mx_vf e = mx_vselect(tmask, mx_vexpn(mx_vload_n(l + full, tail) - vmx), mx_vzero());
                m0 = mx_vmax(mx_vselect(tmask, mx_vload_n(ln + full, tail), ninf), m0);
                if (fused)
                    mx_vstore_k(w + full, e, tail);
                s0 += e;
            }
            float sum = mx_vhsum(s0), r = mx + logf(sum);
            lse[i] = r;
            if (targets)
                losses[i] = tg < 0 ? 0.0f : r - lt;
            mx = mx_vhmax(m0);
            if (!fused)
                continue;
            if (tg < 0) { /* ignored row: no gradient */
                memset(w, 0, nv * sizeof(float));
                continue;
            }
            const mx_vf c = mx_vset1(scale / sum);
            for (v = 0; v < nv; v += MX_VW) {
                size_t k = mx_vblock_len(nv, v);
                mx_vstore_k(w + v, mx_vload_k(w + v, k) * c, k);
            }
            w[tg] -= scale;
        }
    }
    return targets ? nn_ce_mean(losses, targets, N) : 0.0f;
}

static float ce_forward(float *lse, float *losses, const float *logits, const int32_t *targets, size_t N,
                        int V)
{
    return ce_rows(NULL, logits, lse, losses, targets, N, V, 0.0f, 0);
}

/* The forward and the backward in one softmax pass (training): ce_rows with fused 1. One exp
 * per logit instead of two (ce_forward's, then ce_backward's from the saved lse), and one pass
 * over the row fewer. lse and losses as ce_forward's; returns the mean like it. */
static float ce_fused(float *logits, float *lse, float *losses, const int32_t *targets, size_t N, int V,
                      float scale)
{
    return ce_rows(logits, logits, lse, losses, targets, N, V, scale, 1);
}

/* exp(l - lse) with mx_vexpn_u: l - lse <= 0 up to rounding. */
static void ce_backward(float *logits, const float *lse, const int32_t *targets, size_t N, int V, float scale)
{
    const size_t nv = (size_t)V;
    const mx_vf vs = mx_vset1(scale);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) {
        float *l = logits + i * nv;
        if (targets[i] < 0) { /* ignored row: no gradient */
            memset(l, 0, nv * sizeof(float));
            continue;
        }
        mx_vf r = mx_vset1(lse[i]);
        size_t v = 0;
        for (; v + EB <= nv; v += EB) {
            mx_vf e[MX_VEXP_U];
#pragma GCC unroll 4
            for (int j = 0; j < MX_VEXP_U; j++)
                e[j] = mx_vload(l + v + (size_t)j * MX_VW) - r;
            mx_vexpn_u(e, e, MX_VEXP_U);
#pragma GCC unroll 4
            for (int j = 0; j < MX_VEXP_U; j++)
                mx_vstore(l + v + (size_t)j * MX_VW, e[j] * vs);
        }
        for (; v < nv; v += MX_VW) {
            size_t k = mx_vblock_len(nv, v);
            mx_vstore_k(l + v, mx_vexpn(mx_vload_k(l + v, k) - r) * vs, k);
        }
        l[targets[i]] -= scale;
    }
}

/* The reference's operations in its order, no FMA: the same bits at every level. */
static void adamw(float *p, float *m, float *v, float *g, size_t n, const struct nn_adamw_hp *hp)
{
    const float b1 = hp->beta1, b2 = hp->beta2, c1 = 1.0f - hp->beta1, c2 = 1.0f - hp->beta2;
    const float lr = hp->lr, eps = hp->eps, wd = hp->weight_decay, bc1 = hp->bc1, bc2 = hp->bc2;
    const float gs = hp->grad_scale;
#pragma omp for schedule(static) nowait
    for (size_t b = 0; b < NBLOCKS(n); b++) {
        size_t i = b * MX_VW, k = mx_vblock_len(n, i);
        mx_vf gi = mx_vload_k(g + i, k) * gs;
        mx_vstore_k(g + i, mx_vzero(), k);
        mx_vf mm = b1 * mx_vload_k(m + i, k) + c1 * gi;
        mx_vf vv = b2 * mx_vload_k(v + i, k) + c2 * gi * gi;
        mx_vstore_k(m + i, mm, k);
        mx_vstore_k(v + i, vv, k);
        mx_vf mhat = mm / bc1, vhat = vv / bc2, pp = mx_vload_k(p + i, k);
        mx_vstore_k(p + i, pp - lr * (mhat / (mx_vsqrt(vhat) + eps) + wd * pp), k);
    }
}

static void embed_forward(float *out, const int32_t *tok, const float *wte, const float *wpe, int B, int T,
                          int C)
{
    const size_t nc = (size_t)C;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * nc;
            const float *e = wte + (size_t)tok[(size_t)b * T + t] * nc, *pp = wpe + (size_t)t * nc;
            for (size_t c = 0; c < nc; c += MX_VW) {
                size_t k = mx_vblock_len(nc, c);
                mx_vstore_k(o + c, mx_vload_k(e + c, k) + mx_vload_k(pp + c, k), k);
            }
        }
}

/* Serial over rows as the reference, so repeated ids accumulate in the same order. */
static void embed_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tok, int B, int T,
                           int C)
{
    const size_t nc = (size_t)C;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * nc;
            float *e = dwte + (size_t)tok[(size_t)b * T + t] * nc, *pp = dwpe + (size_t)t * nc;
            for (size_t c = 0; c < nc; c += MX_VW) {
                size_t k = mx_vblock_len(nc, c);
                mx_vf dv = mx_vload_k(d + c, k);
                mx_vstore_k(e + c, mx_vload_k(e + c, k) + dv, k);
                mx_vstore_k(pp + c, mx_vload_k(pp + c, k) + dv, k);
            }
        }
}

static void vexp(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vstore_k(y + i, mx_vexp(mx_vload_k(x + i, k)), k);
    }
}

static void vexpn(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vstore_k(y + i, mx_vexpn(mx_vload_k(x + i, k)), k);
    }
}

static void vtanh(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vstore_k(y + i, mx_vtanh(mx_vload_k(x + i, k)), k);
    }
}

/* MX_FMA_CHAINS independent FMA chains; the multiplier comes from memory the compiler cannot see
 * through (volatile) and the sum is returned, so no chain can be folded away. */
static float fma_peak(long iters)
{
    static volatile float seed = 0.999999f;
    mx_vf m = mx_vset1(seed), acc[MX_FMA_CHAINS];
    /* Fully unrolled so the accumulators live in registers (without it GCC kept them in memory:
     * one load and store per FMA). */
#pragma GCC unroll 16
    for (int j = 0; j < MX_FMA_CHAINS; j++)
        acc[j] = mx_vset1(seed * (float)(j + 1));
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
        for (int j = 0; j < MX_FMA_CHAINS; j++)
            acc[j] = mx_vfma(acc[j], m, m);
    }
    mx_vf s = acc[0];
#pragma GCC unroll 16
    for (int j = 1; j < MX_FMA_CHAINS; j++)
        s = s + acc[j];
    return mx_vhsum(s);
}

const struct nn_kernels MX_ISA_FN(nn_kernels) = {
    .isa = MX_SIMD_NAME,
    .vw = MX_VW,
    .gelu_forward = gelu_forward,
    .gelu_backward = gelu_backward,
    .layer_norm_forward = ln_forward,
    .layer_norm_backward = ln_backward,
    .ce_forward = ce_forward,
    .ce_backward = ce_backward,
    .ce_fused = ce_fused,
    .adamw = adamw,
    .embed_forward = embed_forward,
    .embed_backward = embed_backward,
    .vexp = vexp,
    .vexpn = vexpn,
    .vtanh = vtanh,
    .fma_peak = fma_peak,
};
