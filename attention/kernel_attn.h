/* kernel_attn.h — internal to attention/: the chunked causal prefix-sum engine the kernel
 * mixers (`linear`, `performer`) share. It computes, per (b,h),
 *     o_t = Σ_{j≤t} (φq_t·φk_j) v_j / (Σ_{j≤t} φq_t·φk_j + ε)
 * through BLAS on chunks, with the feature map φ supplied by the mixer (struct kattn_map).
 * Not a mixer itself: no parsing, no parameters. Tests may include it. */
#ifndef MIXLM_KERNEL_ATTN_H
#define MIXLM_KERNEL_ATTN_H

#include "attention/attn_common.h"

/* exp for the feature maps' inner loops, written so `#pragma omp simd` loops vectorise it
 * (glibc's expf is a scalar call without -ffast-math, which we do not use; it was the largest
 * single cost of both kernel mixers). WHY it is accurate: Cephes' expf — x = n·ln2 + r with ln2
 * split in two constants so r is exact to float, |r| <= ln2/2, a degree-6 polynomial for e^r,
 * then the exponent bits set to n: within 1-2 ulp of expf (tests/test_kernel.c compares it with
 * expf, its reference). Range: x < -87.33 (below the smallest normal) gives 0, x > 88.72 gives
 * +inf, NaN stays NaN. */
static inline float kattn_expf(float x)
{
    float v = x > -87.5f ? x : -87.5f; /* NaN lands here too: no float-to-int of a NaN */
    v = v < 88.75f ? v : 88.75f;
    /* n = round(v / ln2): adding and removing 1.5·2^23 rounds to an integer in float (exact,
     * default rounding mode; unlike floorf it vectorises without -ffast-math). */
    float n = (v * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = v - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n as two factors 2^h · 2^(n-h), each a normal float for n in [-126, 128]. */
    int32_t ni = (int32_t)n, h = ni / 2;
    uint32_t b1 = (uint32_t)(h + 127) << 23, b2 = (uint32_t)(ni - h + 127) << 23;
    float s1, s2;
    __builtin_memcpy(&s1, &b1, sizeof s1);
    __builtin_memcpy(&s2, &b2, sizeof s2);
    float y = p * s1 * s2;
    y = x < -87.33f ? 0.0f : y; /* below the smallest normal float */
    y = x > 88.72f ? __builtin_inff() : y;
    return x == x ? y : x;
}

/* A feature map φ: R^D -> R^F_{>=0}.
 * scaled = 0 (linear): forward returns φ(x) itself; lscale is not written.
 * scaled = 1 (exp-type maps, performer): forward returns φ(x)·exp(-lscale[r]) per row r with
 *   every value in [0, 1] (each row's largest feature is 1), and for keys writes lscale[r], the
 *   row's log-scale. For queries any per-row constant may be dropped (lscale not written): it
 *   cancels between numerator and denominator of o_t. The engine keeps keys in causal units
 *   (see kernel_attn.c). The engine treats the log-scales as constants in backward, which is
 *   exact because they cancel (up to the ε guard). */
struct kattn_map {
    int F;      /* features per row */
    int chunk;  /* rows per chunk (BLAS block); any value gives the same math */
    float eps;  /* the normaliser guard ε (see each mixer's WHY comment) */
    int scaled; /* 1: keys come with per-row log-scales (exp-type features) */
    const void *ctx;
    /* phi (L,F) overwritten; lscale (L) written for keys when scaled; x (L,D) rows of q or k;
     * key = 1 for keys; tmp (L,F) scratch. */
    void (*forward)(const void *ctx, float *phi, float *lscale, const float *x, int L, int D, int key,
                    float *tmp);
    /* dx (L,D) +=: the gradient through phi = forward(x) (with any per-row factor the engine
     * applied afterwards folded in: exp-type maps need only phi itself); dphi (L,F); tmp (L,F). */
    void (*backward)(const void *ctx, float *dx, const float *dphi, const float *phi, const float *x, int L,
                     int D, int key, float *tmp);
};

/* Floats kept forward -> backward: the denominator per (b,h,t), plus the causal key log-scale
 * per (b,h,t) when the map is scaled. */
size_t kattn_saved_floats(const struct kattn_map *map, int B, int H, int T);
/* Workspace per call: per (b,h) chunk buffers plus the recomputed chunk states for backward,
 * (T/chunk) x F x (D+1) per (b,h). */
size_t kattn_work_floats(const struct kattn_map *map, int B, int H, int T, int D);

/* o (B,H,T,D) overwritten; saved overwritten; work scratch; q, k, v (B,H,T,D). */
void kattn_forward(const struct kattn_map *map, float *o, float *saved, float *work, const float *q,
                   const float *k, const float *v, int B, int H, int T, int D);
/* dq, dk, dv (B,H,T,D) +=; dout (B,H,T,D); o and saved as forward left them. Recomputes the
 * features and the chunk states; stores no per-token D x D state. */
void kattn_backward(const struct kattn_map *map, float *dq, float *dk, float *dv, float *work,
                    const float *dout, const float *o, const float *saved, const float *q, const float *k,
                    const float *v, int B, int H, int T, int D);

/* Recurrent form for generation: per head S (F,D+1) and the key log-scale; the cost of a step
 * is O(F·D) per head whatever t is. State zeroed by the caller before t = 0. */
size_t kattn_state_floats(const struct kattn_map *map, int H, int D);
/* o_t (H,D) overwritten; q_t, k_t, v_t (H,D); t = 0, 1, 2, ... in order. */
void kattn_step(const struct kattn_map *map, float *o_t, float *state, const float *q_t, const float *k_t,
                const float *v_t, int H, int D, int t);

/* Performer internals exposed for tests: copy the random features W (M,D) that the mixer
 * uses at m->step (already multiplied by D^(-1/4)), drawing them if needed. Returns M. */
int performer_features(const struct mixer *m, float *w_out);

#endif
