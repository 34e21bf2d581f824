/* attn_common.h — internal to attention/: the shared QKV / output projection and head split
 * of the attention family, so each family file holds only its own "core" (q,k,v -> o).
 * Not included outside attention/ (tests may include it to test cores directly). */
#ifndef MIXLM_ATTN_COMMON_H
#define MIXLM_ATTN_COMMON_H

#include "attention/mixer.h"

/* The part of an attention mixer that is its own. All per-head tensors are laid out
 * (B,H,T,D) contiguous; the softmax scale 1/sqrt(D) is the core's to apply. */
struct attn_core {
    /* Floats the core keeps from forward to backward (e.g. the row log-sum-exp), and its
     * temporary workspace per call (may be NULL = 0). */
    size_t (*saved_floats)(const struct mixer *m, int B, int T);
    size_t (*work_floats)(const struct mixer *m, int B, int T);
    /* o (B,H,T,D) overwritten; saved overwritten; q,k,v (B,H,T,D). */
    void (*forward)(const struct mixer *m, float *o, float *saved, float *work, const float *q,
                    const float *k, const float *v, int B, int T);
    /* dq, dk, dv (B,H,T,D) += (or overwritten when backward_sets); dout (B,H,T,D); o, saved
     * as produced by forward. */
    void (*backward)(const struct mixer *m, float *dq, float *dk, float *dv, float *work,
                     const float *dout, const float *o, const float *saved, const float *q,
                     const float *k, const float *v, int B, int T);
    /* 1: backward overwrites dq, dk, dv, so the caller skips zeroing them. */
    int backward_sets;
    /* Incremental decoding (optional): the state is the core's own (KV cache, ring buffer,
     * running sums); zeroed by the caller before t = 0. o_t, q_t, k_t, v_t are (H,D). */
    size_t (*state_floats)(const struct mixer *m);
    void (*step)(const struct mixer *m, float *o_t, float *state, const float *q_t,
                 const float *k_t, const float *v_t, int t);
};

/* Generic mixer_ops members for the attention family: tensors are
 *   c_attn.weight (3C,C) [c_attn.bias (3C)] c_proj.weight (C,C) [c_proj.bias (C)]
 * (nanoGPT's names and layout), q = rows 0..C-1, k = C..2C-1, v = 2C..3C-1; head h owns
 * channels h*D..h*D+D-1. Init: N(0, 0.02), c_proj N(0, 0.02/sqrt(2L)), biases 0. */
int attn_tensors(const struct mixer *m, struct mx_tensor_desc *out);
void attn_init(const struct mixer *m, float *params, struct mx_rng *rng);
size_t attn_saved_floats(const struct mixer *m, int B, int T);
size_t attn_scratch_floats(const struct mixer *m, int B, int T);
void attn_forward(const struct mixer *m, float *y, float *saved, const float *x,
                  const float *params, int B, int T);
void attn_backward(const struct mixer *m, float *dx, float *dparams, const float *dy,
                   const float *saved, const float *x, const float *params, int B, int T);
size_t attn_state_floats(const struct mixer *m);
void attn_step(const struct mixer *m, float *y_t, float *state, const float *x_t,
               const float *params, int t);

/* (B,T,3C) packed qkv -> q, k, v each (B,H,T,D). */
void attn_split_heads(float *q, float *k, float *v, const float *qkv, int B, int T, int H, int D);
/* Reverse: dq,dk,dv (B,H,T,D) -> dqkv (B,T,3C) overwritten. */
void attn_merge_qkv(float *dqkv, const float *dq, const float *dk, const float *dv, int B, int T,
                    int H, int D);
/* o (B,H,T,D) -> y (B,T,C) overwritten, and back. */
void attn_merge_heads(float *y, const float *o, int B, int T, int H, int D);
void attn_split_out(float *o, const float *y, int B, int T, int H, int D);

/* The naive dense causal softmax attention core, row by row (O(T) extra memory, saves the
 * row log-sum-exp). The reference every faster core is tested against. saved = B*H*T. */
extern const struct attn_core attn_dense_ref_core;
size_t attn_dense_ref_saved(const struct mixer *m, int B, int T);
void attn_dense_ref_forward(const struct mixer *m, float *o, float *saved, float *work,
                            const float *q, const float *k, const float *v, int B, int T);
void attn_dense_ref_backward(const struct mixer *m, float *dq, float *dk, float *dv, float *work,
                             const float *dout, const float *o, const float *saved,
                             const float *q, const float *k, const float *v, int B, int T);
/* Masked reference for sparse patterns and tests: allowed(m, ctx, h, i, j) says whether query
 * i of head h may attend key j (j <= i is the caller's duty). Rows with no allowed key give 0. */
typedef int (*attn_mask_fn)(const void *ctx, int h, int i, int j);
void attn_masked_ref_forward(float *o, float *lse, const float *q, const float *k, const float *v,
                             int B, int H, int T, int D, attn_mask_fn allowed, const void *ctx);
void attn_masked_ref_backward(float *dq, float *dk, float *dv, const float *dout, const float *o,
                              const float *lse, const float *q, const float *k, const float *v,
                              int B, int H, int T, int D, attn_mask_fn allowed, const void *ctx);

#endif
