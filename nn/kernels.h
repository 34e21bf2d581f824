/* kernels.h — the table of nn's hot kernels, one table per SIMD level (nn/kernels_isa.c is
 * compiled once per level: nn_kernels_avx512, nn_kernels_avx2, nn_kernels_sse, nn_kernels_neon,
 * nn_kernels_scalar). The public functions in nn/nn.h call the table of the level in use;
 * tests and benchmarks call a level's table directly. Contracts are those of the nn.h function
 * of the same name. Not for code outside nn/, tests and bench/. */
#ifndef MIXLM_NN_KERNELS_H
#define MIXLM_NN_KERNELS_H

#include "nn/isa.h"
#include "nn/nn.h"

struct nn_kernels {
    const char *isa; /* MX_SIMD_NAME of the build, e.g. "avx2" */
    int vw;          /* floats per vector */
    void (*gelu_forward)(float *out, const float *x, size_t n);
    void (*gelu_backward)(float *dx, const float *dout, const float *x, size_t n);
    void (*layer_norm_forward)(float *out, float *mean, float *rstd, const float *x, const float *w,
                               const float *b, size_t N, int C);
    void (*layer_norm_backward)(float *dx, float *dw, float *db, float *work, const float *dout,
                                const float *x, const float *mean, const float *rstd, const float *w,
                                size_t N, int C);
    float (*ce_forward)(float *lse, float *losses, const float *logits, const int32_t *targets, size_t N,
                        int V);
    void (*ce_backward)(float *logits, const float *lse, const int32_t *targets, size_t N, int V,
                        float scale);
    float (*ce_fused)(float *logits, float *lse, float *losses, const int32_t *targets, size_t N, int V,
                      float scale);
    void (*adamw)(float *p, float *m, float *v, float *g, size_t n, const struct nn_adamw_hp *hp);
    void (*embed_forward)(float *out, const int32_t *tok, const float *wte, const float *wpe, int B, int T,
                          int C);
    void (*embed_backward)(float *dwte, float *dwpe, const float *dout, const int32_t *tok, int B, int T,
                           int C);
    /* y (n) = mx_vexp(x), mx_vexpn(x), mx_vtanh(x): the vector math itself, for tests and
     * benchmarks. */
    void (*vexp)(float *y, const float *x, size_t n);
    void (*vexpn)(float *y, const float *x, size_t n);
    void (*vtanh)(float *y, const float *x, size_t n);
    /* The calling thread's fp32 FMA rate: `iters` rounds of MX_FMA_CHAINS independent vector
     * FMAs (2 * MX_FMA_CHAINS * vw FLOPs a round); returns a sum so nothing is optimised away.
     * The ceiling every GFLOP/s figure is read against (mixlm bench prints it). */
    float (*fma_peak)(long iters);
};
/* Independent accumulators of fma_peak: enough to hide FMA latency x pipes (Zen 3/4/5: 4 x 2,
 * Intel from Skylake: 4 x 2, Apple M: 4 x 4) with at most 16 vector registers in use. */
#define MX_FMA_CHAINS 12

/* The table of a level; NULL when this build lacks it or this CPU cannot run it. */
const struct nn_kernels *nn_kernels_at(enum mx_isa isa);
/* The table of mx_isa(), the level in use. */
const struct nn_kernels *nn_kernels(void);

#endif
