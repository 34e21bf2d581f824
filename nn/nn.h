/* nn.h — the network math the model and the mixers share: the BLAS-backed linear layer and
 * the decoder's elementwise layers (embedding, LayerNorm, GELU, softmax cross-entropy), forward
 * beside backward. The hot ones run SIMD kernels chosen at start-up for the CPU (nn/kernels.h,
 * nn/isa.h: MIXLM_ISA overrides); vector math is in nn/simd.h, scalar exp/tanh in nn/fastmath.h.
 * Not a tensor library: plain float arrays with their shapes in the contracts. */
#ifndef MIXLM_NN_H
#define MIXLM_NN_H

#include <stddef.h>
#include <stdint.h>

/* ---- the linear layer (CBLAS) ------------------------------------------------------------
 * Weights are stored (out, in) row-major as in PyTorch: y = x Wᵀ + b. */
/* Row-major C (M,N) = op(A) op(B) + beta C, op = transpose when ta/tb; lda/ldb/ldc as CBLAS.
 * Large products are split into one block of C per OpenMP thread (nn/linear.c says why);
 * inside a parallel region it runs on the calling thread. */
void mx_sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);
/* OpenBLAS's kernels for this CPU. OpenBLAS picks them from cpuid when it loads; releases
 * before 0.3.25 (Debian 12 ships 0.3.21) fall back to their SSE3 "Prescott" kernels on a CPU they
 * do not know (OpenBLAS issue #4267): on an Intel Xeon model 207 (Emerald Rapids, AVX-512)
 * cblas_sgemm 1024^3 ran at 45 GFLOP/s on 2 threads, and at 240 with OPENBLAS_CORETYPE=SkylakeX
 * (2026-12-02). main() re-executes once with the core mx_blas_core_upgrade() names. */
const char *mx_blas_core(void); /* the core in use, e.g. "SkylakeX", "Haswell", "Prescott" */
/* The OPENBLAS_CORETYPE to force, or NULL: the best core for the CPU's level when OpenBLAS
 * runs a pre-AVX2 core (SSE or AVX only) on a CPU with AVX2+FMA or AVX-512. A core OpenBLAS chose
 * at AVX2 level or above is its own choice and is kept. */
const char *mx_blas_core_upgrade(void);
/* The core OpenBLAS chose, or MIXLM_TEST_BLAS_CORE's value: a test-only hook that exercises the
 * re-execution on a CPU OpenBLAS knows (tests/e2e/test_bench.sh). */
const char *mx_blas_detected(void);
/* "OpenBLAS 0.3.21, core SkylakeX" and, when main() forced the core, "(set by mixlm: OpenBLAS
 * detected Prescott on this CPU)", "(set by mixlm for MIXLM_ISA=avx2)" or
 * "(OPENBLAS_CORETYPE=NAME set by the user)"; for run headers. */
const char *mx_blas_desc(char *buf, size_t n);
/* The rule itself, for a given core name and CPU (tested without such a CPU). */
const char *mx_blas_core_upgrade_for(const char *core, int cpu_avx2, int cpu_avx512);
/* The OPENBLAS_CORETYPE that matches a lower SIMD level forced by MIXLM_ISA, or NULL: "Haswell"
 * for avx2 on a CPU with AVX-512, "Nehalem" for sse on a CPU with AVX2 or AVX-512; nothing for
 * scalar or the CPU's own level. WHY: MIXLM_ISA=avx2 stands for an AVX2 machine; with OpenBLAS
 * still on its AVX-512 kernels, the matmuls ran at AVX-512 speed while the mixers' kernels ran
 * at AVX2, and every figure read against the sgemm ceiling mixed two machines. main()
 * re-executes once with it, as for mx_blas_core_upgrade(). */
const char *mx_blas_core_for_isa(const char *isa, int cpu_avx2, int cpu_avx512);

/* y (N,out) overwritten; x (N,in); w (out,in); b (out) or NULL. */
void mx_linear_forward(float *y, const float *x, const float *w, const float *b, int N, int in, int out);
/* dx (N,in) +=, dw (out,in) +=, db (out) += (db NULL when no bias; dx NULL to skip).
 * dy (N,out), x (N,in), w (out,in). */
void mx_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const float *w, int N, int in, int out);
/* The same with dx (N,in) OVERWRITTEN (dw, db still +=): saves zeroing a fresh buffer. */
void mx_linear_backward_set(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, int N, int in, int out);

/* out (N,C) = wte[tok] + wpe[pos]: N = B*T rows, token ids tok (B,T). */
void layer_embed_forward(float *out, const int32_t *tok, const float *wte, const float *wpe,
                         int B, int T, int C);
/* dwte (V,C) +=, dwpe (T,C) +=; dout (B,T,C). Serial over rows so repeated ids accumulate
 * deterministically. */
void layer_embed_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tok,
                          int B, int T, int C);

/* out (N,C), mean (N), rstd (N) overwritten; x (N,C); w (C); b (C) or NULL. eps 1e-5. */
void layer_norm_forward(float *out, float *mean, float *rstd, const float *x, const float *w,
                        const float *b, size_t N, int C);
/* dx (N,C) +=, dw (C) +=, db (C) += (NULL when no bias); dout, x, mean, rstd, w as forward.
 * dw/db reduce over rows in a fixed order (per-thread partials in `work`, summed in thread
 * order). work: layer_norm_work_floats(C) floats. */
size_t layer_norm_work_floats(int C);
void layer_norm_backward(float *dx, float *dw, float *db, float *work, const float *dout,
                         const float *x, const float *mean, const float *rstd, const float *w,
                         size_t N, int C);

/* GELU, tanh approximation (GPT-2): 0.5 x (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3),
 * computed as x * sigmoid(2u) = x / (1 + e^(-2u)) — the same function (1 + tanh u = 2 sigmoid(2u))
 * with one exp and one division and no sign handling: WHY, GELU was exp-bound. out (n)
 * overwritten. */
void layer_gelu_forward(float *out, const float *x, size_t n);
/* dx (n) overwritten with dout * gelu'(x) (the caller owns dx; no accumulation needed). */
void layer_gelu_backward(float *dx, const float *dout, const float *x, size_t n);

/* Row log-sum-exp of logits (N,V) into lse (N); with targets, per-row losses (N) and their
 * mean (summed serially in double) is returned; without, returns 0 and losses is unused.
 * A negative target (NN_CE_IGNORE) is an ignored row: its loss is 0 and the mean is over the
 * counted rows only (0 when none is counted); nothing ignored gives the plain mean over N. */
#define NN_CE_IGNORE (-1)
float layer_ce_forward(float *lse, float *losses, const float *logits, const int32_t *targets,
                       size_t N, int V);
/* logits (N,V) overwritten in place by d(mean loss)/d logits = (softmax - onehot) * scale;
 * an ignored row (negative target) becomes zeros. scale: 1 / the counted rows for the mean. */
void layer_ce_backward(float *logits, const float *lse, const int32_t *targets, size_t N, int V,
                       float scale);
/* layer_ce_forward then layer_ce_backward in one softmax pass (training: one exp per logit, not
 * two): lse, losses and the returned mean as layer_ce_forward's (targets required), and logits
 * overwritten by the gradient as layer_ce_backward's. Not bitwise equal to the two calls: the
 * gradient is e / Σe · scale (e = exp(l - max)) rather than exp(l - lse) · scale. */
float layer_ce_fused(float *logits, float *lse, float *losses, const int32_t *targets, size_t N, int V,
                     float scale);
/* The mean of losses (N) over the rows whose target is not negative, summed serially in
 * double (0 when none): the cross-entropy kernels' return value. */
float nn_ce_mean(const float *losses, const int32_t *targets, size_t N);

/* ---- AdamW ------------------------------------------------------------------------------
 * One step over n contiguous floats of one tensor: g (n) is read, scaled by grad_scale and
 * ZEROED (consumed: the next step accumulates into a zeroed buffer); m, v (n) moments and p (n)
 * parameters updated in place. Decoupled weight decay (Loshchilov & Hutter), as
 * torch.optim.AdamW; bc1 = 1 - beta1^t, bc2 = 1 - beta2^t. Work-shared: call it from every
 * thread of an enclosing OpenMP parallel region (an orphaned `omp for nowait` inside splits the
 * range) or from serial code. Elementwise: the same bits at every SIMD level. */
struct nn_adamw_hp {
    float lr, beta1, beta2, eps, weight_decay, bc1, bc2, grad_scale;
};
void nn_adamw(float *p, float *m, float *v, float *g, size_t n, const struct nn_adamw_hp *hp);

/* ---- naive references -----------------------------------------------------------------------
 * The plain scalar loops the SIMD kernels (nn/kernels_isa.c) replaced, same contracts; tests
 * compare every level against them. GELU, AdamW and the embedding are elementwise: the kernels
 * give the same bits; the row reductions (LayerNorm, cross-entropy) agree to rounding. */
void layer_embed_forward_ref(float *out, const int32_t *tok, const float *wte, const float *wpe,
                             int B, int T, int C);
void layer_embed_backward_ref(float *dwte, float *dwpe, const float *dout, const int32_t *tok,
                              int B, int T, int C);
void layer_norm_forward_ref(float *out, float *mean, float *rstd, const float *x, const float *w,
                            const float *b, size_t N, int C);
void layer_norm_backward_ref(float *dx, float *dw, float *db, float *work, const float *dout,
                             const float *x, const float *mean, const float *rstd, const float *w,
                             size_t N, int C);
void layer_gelu_forward_ref(float *out, const float *x, size_t n);
void layer_gelu_backward_ref(float *dx, const float *dout, const float *x, size_t n);
float layer_ce_forward_ref(float *lse, float *losses, const float *logits, const int32_t *targets,
                           size_t N, int V);
float layer_ce_fused_ref(float *logits, float *lse, float *losses, const int32_t *targets, size_t N, int V,
                         float scale);
void layer_ce_backward_ref(float *logits, const float *lse, const int32_t *targets, size_t N, int V,
                           float scale);
void nn_adamw_ref(float *p, float *m, float *v, float *g, size_t n, const struct nn_adamw_hp *hp);

#endif
