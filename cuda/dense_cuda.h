/* dense_cuda.h — the project's own FlashAttention-style causal attention core on the GPU
 * (cuda/dense.cu), fp32: forward saves the row log-sum-exp, backward recomputes the
 * scores tile by tile, so memory is O(T). Layout (B,H,T,D) contiguous as struct attn_core.
 * Reference: attn_masked_ref_forward/backward (attention/attn_common.h) with no mask, which
 * tests/cuda/test_cuda_dense.c compares against. Every pointer is a DEVICE pointer; functions only
 * queue work on c->stream. Not yet a mixer_ops path (the model is not wired to the device). */
#ifndef MIXLM_DENSE_CUDA_H
#define MIXLM_DENSE_CUDA_H

#include "cuda/cuda_ctx.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when head size D has a kernel (32, 64, 128), else 0: callers check once at set-up and
 * report a bad config as an error naming D; the kernels assert it. */
int attn_dense_cuda_supports(int D);

/* Floats of the saved row log-sum-exp: B*H*T (same layout and meaning as the CPU core's
 * `saved`: lse[b,h,i] = log Σ_{j<=i} exp(q_i·k_j / sqrt(D))). */
size_t attn_dense_cuda_saved_floats(int B, int H, int T);
/* Floats of backward's workspace: B*H*T (the row dot products dO_i·O_i). */
size_t attn_dense_cuda_work_floats(int B, int H, int T);

/* o (B,H,T,D) overwritten, lse (B,H,T) overwritten; q, k, v (B,H,T,D). Causal. */
void attn_dense_cuda_forward(const struct mx_cuda *c, float *o, float *lse, const float *q, const float *k,
                             const float *v, int B, int H, int T, int D);
/* dq, dk, dv (B,H,T,D) += ; dout (B,H,T,D); o, lse as produced by forward; q, k, v (B,H,T,D);
 * work: attn_dense_cuda_work_floats floats. Deterministic: no atomics (dK/dV and dQ are
 * computed by two kernels, each output element has one writer). */
void attn_dense_cuda_backward(const struct mx_cuda *c, float *dq, float *dk, float *dv, float *work,
                              const float *dout, const float *o, const float *lse, const float *q,
                              const float *k, const float *v, int B, int H, int T, int D);

#ifdef __cplusplus
}
#endif

#endif
