/* layers_cuda.h — device versions of the decoder's elementwise layers (nn/nn.h) and of
 * the optimizer's whole-buffer loops (AdamW with clipping folded in, gradient norm, train/train.h).
 * Every pointer is a DEVICE pointer; every function only queues work on c->stream (no host
 * synchronisation, no allocation: workspaces are the caller's, sized by the _work functions).
 * Contracts (shapes, overwrite vs +=) are those of the CPU functions named at each entry,
 * which are the references tests/cuda/test_cuda_layers.c compares against.
 * Not matmuls (cuBLAS, later) and not the model's forward/backward (not wired yet). */
#ifndef MIXLM_LAYERS_CUDA_H
#define MIXLM_LAYERS_CUDA_H

#include "cuda/cuda_ctx.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* layer_embed_forward: out (B,T,C) overwritten = wte[tok] + wpe[t]; tok (B,T) in [0, V). */
void layer_cuda_embed_forward(const struct mx_cuda *c, float *out, const int32_t *tok, const float *wte,
                              const float *wpe, int B, int T, int C);
/* layer_embed_backward: dwte (V,C) +=, dwpe (T,C) +=; dout (B,T,C); tok (B,T) in [0, V).
 * Deterministic without atomics: positions are sorted by token id (stable radix sort) and each
 * token's rows are summed in position order, the CPU's order. work: ..._work_bytes(c, B*T, V). */
size_t layer_cuda_embed_backward_work_bytes(const struct mx_cuda *c, int N, int V);
void layer_cuda_embed_backward(const struct mx_cuda *c, float *dwte, float *dwpe, void *work,
                               const float *dout, const int32_t *tok, int B, int T, int C, int V);

/* layer_norm_forward: out (N,C), mean (N), rstd (N) overwritten; x (N,C); w (C); b (C) or NULL. */
void layer_cuda_norm_forward(const struct mx_cuda *c, float *out, float *mean, float *rstd, const float *x,
                             const float *w, const float *b, size_t N, int C);
/* layer_norm_backward: dx (N,C) +=, dw (C) +=, db (C) += (NULL when no bias). dw/db reduce
 * over rows in a fixed order (fixed row chunks, partials summed in chunk order): bitwise
 * deterministic. work: layer_cuda_norm_work_floats(C) floats. */
size_t layer_cuda_norm_work_floats(int C);
void layer_cuda_norm_backward(const struct mx_cuda *c, float *dx, float *dw, float *db, float *work,
                              const float *dout, const float *x, const float *mean, const float *rstd,
                              const float *w, size_t N, int C);

/* layer_gelu_forward: out (n) overwritten. layer_gelu_backward: dx (n) OVERWRITTEN with
 * dout * gelu'(x) (as the CPU function). In-place (out == x, dx == dout) is allowed. */
void layer_cuda_gelu_forward(const struct mx_cuda *c, float *out, const float *x, size_t n);
void layer_cuda_gelu_backward(const struct mx_cuda *c, float *dx, const float *dout, const float *x,
                              size_t n);

/* layer_ce_forward: lse (N) overwritten; with targets (N) also losses (N) and *mean_loss
 * (one device float) = mean of losses, summed in double in row order. targets NULL: losses
 * and mean_loss unused (may be NULL). */
void layer_cuda_ce_forward(const struct mx_cuda *c, float *lse, float *losses, float *mean_loss,
                           const float *logits, const int32_t *targets, size_t N, int V);
/* layer_ce_backward: logits (N,V) overwritten in place by (softmax - onehot) * scale. */
void layer_cuda_ce_backward(const struct mx_cuda *c, float *logits, const float *lse, const int32_t *targets,
                            size_t N, int V, float scale);

/* adamw_update over one contiguous range of n floats (one tensor; the caller loops over the
 * trainable tensors with their own weight decay, as the CPU loop does): m, v, p updated in
 * place from g * grad_scale (clipping folded in, as train.c: grad_scale = clip/(norm+1e-6)
 * when the norm exceeds the clip, else 1). t is the 1-based step; bias corrections as on the CPU. */
void layer_cuda_adamw(const struct mx_cuda *c, float *p, float *m, float *v, const float *g, size_t n,
                      double lr, double beta1, double beta2, double eps, double weight_decay,
                      float grad_scale, long t);
/* grad_norm: *norm (one device double) = sqrt(Σ g²) accumulated in double, in a fixed order
 * (fixed grid, tree reductions): bitwise deterministic. work: ..._work_bytes() bytes. The
 * caller reads it back once per step (divergence check, log, clipping scale). */
size_t layer_cuda_grad_norm_work_bytes(void);
void layer_cuda_grad_norm(const struct mx_cuda *c, double *norm, void *work, const float *g, size_t n);
/* x (n) *= s (gradient accumulation's 1/grad_accum). */
void layer_cuda_scale(const struct mx_cuda *c, float *x, size_t n, float s);

#ifdef __cplusplus
}
#endif

#endif
