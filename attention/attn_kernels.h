/* attn_kernels.h — internal to attention/: the mixers' own hot row loops (softmax pieces, the
 * kernel mixers' feature maps, the causal key-unit factors), one table per SIMD level
 * (attention/isa/attn_kernels_isa.c compiled once per level: attn_kernels_avx2, ...), picked
 * with attn_kernels(); attn_kernels_ref holds the naive references the tests compare with.
 * Every entry works on one row or one flat array and is serial (callers parallelise over rows
 * or heads), so results are bitwise reproducible at a fixed level. Not BLAS: matrix products
 * stay sgemm calls. Tests may include it. */
#ifndef MIXLM_ATTN_KERNELS_H
#define MIXLM_ATTN_KERNELS_H

#include "nn/isa.h"

#include <stddef.h>

/* Queries per block of lsh's tiles (lsh_scores, lsh_py, lsh_xtp). */
#define ATTN_LSH_QB 16

/* Accuracy: every exp is nn/simd.h's mx_vexp, bitwise equal to nn/fastmath.h's mx_expf at every
 * level (within 2 ulp of expf). Entries marked "bitwise" give the reference's bits at every
 * level; the sums (exp_sum's result, dot) use vector accumulators whose order depends on the
 * level's width: rounding-level differences from the reference's serial sum. */
struct attn_kernels {
    const char *isa; /* MX_SIMD_NAME of the build, e.g. "avx2"; "ref" for the references */
    int vw;          /* floats per vector (the references: 1) */
    /* max(init, x[0..n)) (exact; NaN handling unspecified). */
    float (*max)(const float *x, float init, size_t n);
    /* y (n) = exp(x - shift) (bitwise; y may be x); returns Σ y. */
    float (*exp_sum)(float *y, const float *x, float shift, size_t n);
    /* x (n) *= s (bitwise). */
    void (*scale)(float *x, float s, size_t n);
    /* Σ a·b. */
    float (*dot)(const float *a, const float *b, size_t n);
    /* d (n) = p · (d − c) · s, left to right (bitwise): the softmax backward with c = Σ p·dP. */
    void (*softmax_grad)(float *d, const float *p, float c, float s, size_t n);
    /* x (n) *= exp(g − shift) (bitwise): keys brought into a common log-scale unit. */
    void (*mul_exp)(float *x, const float *g, float shift, size_t n);
    /* out (n) = a · b (bitwise; out may alias a or b). */
    void (*mul)(float *out, const float *a, const float *b, size_t n);
    /* phi (n) = elu(x) + 1 = x > 0 ? x + 1 : exp(min(x, 0)) (bitwise; NaN gives 1, as before). */
    void (*elu1_forward)(float *phi, const float *x, size_t n);
    /* dx (n) += dphi · (x > 0 ? 1 : phi) (bitwise). */
    void (*elu1_backward)(float *dx, const float *dphi, const float *phi, const float *x, size_t n);
    /* dst (n) = src · s (bitwise; dst may be src): a row brought to another unit. */
    void (*scale_to)(float *dst, const float *src, float s, size_t n);
    /* y (n) += x (bitwise). */
    void (*add)(float *y, const float *x, size_t n);
    /* y (n) += a · x (fused where the level has FMA: to rounding). */
    void (*axpy)(float *y, float a, const float *x, size_t n);
    /* Σ x. */
    float (*sum)(const float *x, size_t n);
    /* Σ a·b·exp(g − h) (gla's per-channel decayed dot products; to rounding). */
    float (*dot_exp)(const float *a, const float *b, const float *g, const float *h, size_t n);
    /* With e = c·exp(g − h): ya (n) += e·b, yb (n) += e·a (the backward of dot_exp; to rounding). */
    void (*exp_axpy2)(float *ya, float *yb, const float *a, const float *b, float c, const float *g,
                      const float *h, size_t n);
    /* retnet's output gate, σ(a) = 1 / (1 + exp(−a)) (bitwise, left to right as written):
     * u (n) = a·σ(a)·w·nrm. */
    void (*swish_gate)(float *u, const float *a, const float *nrm, const float *w, size_t n);
    /* Its backward for one row with du (n) the upstream gradient: dw (n) += du·a·σ·nrm (callers
     * keep the row order fixed), then da (n) = du·w·nrm·σ·(1 + a(1 − σ)) and du becomes
     * dnrm = du·a·σ·w (bitwise). dw NULL: skip it; da NULL: dw only. */
    void (*swish_gate_backward)(float *da, float *du, float *dw, const float *a, const float *nrm,
                                const float *w, size_t n);
    /* retnet's GroupNorm of one head's row: n (D) = (o − mean)·rstd, mean and (biased) variance
     * over the D values, rstd = 1 / sqrt(var + eps); returns rstd (the sums: to rounding). D >= 1. */
    float (*group_norm)(float *n, const float *o, float eps, size_t D);
    /* Its backward: dout (D) = r·(dn − mean(dn) − n·mean(dn·n)) (assigned; to rounding). */
    void (*group_norm_backward)(float *dout, const float *dn, const float *n, float r, size_t D);
    /* Products as chains of a·b + c, fused where the level has FMA (the references: mx_fmaf).
     * Within a level the tiles give the row kernels' bits (lsh relies on it: a query's result
     * must not depend on the block it fell in, nor differ between forward and generation).
     * s (n) = Σ_d x[d] yt[d][i] for i < n, yt (D, ldy): y[0]·x[0], then d = 1.. in order. */
    void (*xty_row)(float *s, const float *x, const float *yt, size_t ldy, size_t n, int D);
    /* o (D) += p[i]·y[i] for i = 0..n-1 in order, y (n,D) rows. */
    void (*py_row)(float *o, const float *p, const float *y, size_t n, int D);
    /* ATTN_LSH_QB rows at once, D % 16 == 0, n16 % 16 == 0: S (QB, lds) rows = xty_row of each of
     * the QB row pointers x (D) over n16 columns of yt (readable there). */
    void (*lsh_scores)(float *S, size_t lds, const float *const *x, const float *yt, size_t ldy, int n16,
                       int D);
    /* acc (QB, D) rows += py_row of each row of P (QB, ldp) over y (n, D). */
    void (*lsh_py)(float *acc, const float *P, size_t ldp, const float *y, int n, int D);
    /* zt (D, ldz) += Σ_j x_j[d] P[j][i] for i < n16, j = 0..QB-1 in order. */
    void (*lsh_xtp)(float *zt, size_t ldz, const float *const *x, const float *P, size_t ldp, int n16, int D);
};

/* The naive references (scalar loops, mx_expf, serial sums). */
extern const struct attn_kernels attn_kernels_ref;
/* The table of a level; NULL when this build lacks it or this CPU cannot run it. */
const struct attn_kernels *attn_kernels_at(enum mx_isa isa);
/* The table of mx_isa(), the level in use. */
const struct attn_kernels *attn_kernels(void);

#endif
