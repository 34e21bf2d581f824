/* nn.h — the network math the model and the mixers share: the BLAS-backed linear layer and
 * the decoder's elementwise layers (embedding, LayerNorm, GELU, softmax cross-entropy), forward
 * beside backward. Vectorised helpers (exp, tanh) are in nn/fastmath.h.
 * Not a tensor library: plain float arrays with their shapes in the contracts. */
#ifndef MIXLM_NN_H
#define MIXLM_NN_H

#include <stddef.h>
#include <stdint.h>

/* ---- the linear layer (CBLAS) ------------------------------------------------------------
 * Weights are stored (out, in) row-major as in PyTorch: y = x Wᵀ + b. */
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

/* GELU, tanh approximation (GPT-2). out (n) overwritten. */
void layer_gelu_forward(float *out, const float *x, size_t n);
/* dx (n) overwritten with dout * gelu'(x) (the caller owns dx; no accumulation needed). */
void layer_gelu_backward(float *dx, const float *dout, const float *x, size_t n);

/* Row log-sum-exp of logits (N,V) into lse (N); with targets, per-row losses (N) and their
 * mean (summed serially in double) is returned; without, returns 0 and losses is unused. */
float layer_ce_forward(float *lse, float *losses, const float *logits, const int32_t *targets,
                       size_t N, int V);
/* logits (N,V) overwritten in place by d(mean loss)/d logits = (softmax - onehot) * scale. */
void layer_ce_backward(float *logits, const float *lse, const int32_t *targets, size_t N, int V,
                       float scale);

#endif
