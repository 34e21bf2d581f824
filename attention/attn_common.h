/* attn_common.h — internal to attention/: the attention family's one glue (struct attn_core,
 * the ATTN_OPS initialiser, the cfg convention), its shared path (QKV projection, separate or
 * shared-QK, head split and merge, output projection, step) and the naive reference cores.
 * Each family file holds its core, or its engine's callbacks, and nothing of this path.
 * Not an attention algorithm; not included outside attention/ (tests may, to test cores). */
#ifndef MIXLM_ATTN_COMMON_H
#define MIXLM_ATTN_COMMON_H

#include "attention/mixer.h"

/* ---- the attention family's glue ---------------------------------------------------------
 * An attention-family mixer is the shared projection path below plus a CORE (q,k,v -> o).
 * One convention for every member:
 *   - ops->core names the core; ops is written with ATTN_OPS (below), nothing else;
 *   - m->cfg points to the mixer's struct, whose FIRST member is its engine's struct:
 *       struct bsa_layout  (bsa.h: dense and the sparse patterns),
 *       struct kattn_map   (kernel_attn.h: linear, performer),
 *       struct lowrank_map (lowrank_common.h: linformer, nystrom),
 *     so an engine's core reads (const struct <engine> *)m->cfg and nothing else of the mixer;
 *     a mixer whose core is its own and no engine's (lsh) keeps its own struct;
 *   - the mixer's parameter slice is the attention tensors (attn_tensors_add) followed by its
 *     extra tensors; the core receives that extra slice as xp (and its gradient as dxp).
 * All per-head tensors are laid out (B,H,T,D) contiguous; the softmax scale 1/sqrt(D) is the
 * core's to apply. A new attention mixer: one .c file with its cfg, its core (or an engine's),
 * one `const struct mixer_ops x_ops = { ATTN_OPS(...) };` and one registry line (mixer.c). */
struct attn_core {
    /* 1: shared query-key projection (Reformer): c_attn is (2C,C) = [q; v] and the keys are
     * the L2-normalised queries, k = q / sqrt(|q|^2 + ATTN_QK_NORM_EPS); backward folds the
     * key path into dq itself (dk is the core's scratch) and the shared path ignores dk. */
    int shared_qk;
    /* Floats the core keeps from forward to backward (e.g. the row log-sum-exp), and its
     * temporary workspace per call (may be NULL = 0). */
    size_t (*saved_floats)(const struct mixer *m, int B, int T);
    size_t (*work_floats)(const struct mixer *m, int B, int T);
    /* o (B,H,T,D) overwritten; saved overwritten; work scratch; q,k,v (B,H,T,D); xp the
     * mixer's extra parameters (NULL when it has none). */
    void (*forward)(const struct mixer *m, float *o, float *saved, float *work, const float *q,
                    const float *k, const float *v, const float *xp, int B, int T);
    /* dq, dk, dv (B,H,T,D) OVERWRITTEN (the backward contract, mixer.h); dxp (the extra
     * parameters' gradient) +=, NULL when there are none; work scratch; dout (B,H,T,D); o,
     * saved as produced by forward; q, k, v, xp as given to it. */
    void (*backward)(const struct mixer *m, float *dq, float *dk, float *dv, float *dxp,
                     float *work, const float *dout, const float *o, const float *saved,
                     const float *q, const float *k, const float *v, const float *xp, int B,
                     int T);
    /* Incremental decoding (optional): the state is the core's own (KV cache, ring buffer,
     * running sums); zeroed by the caller before t = 0. o_t, q_t, k_t, v_t are (H,D). */
    size_t (*state_floats)(const struct mixer *m);
    void (*step)(const struct mixer *m, float *o_t, float *state, const float *q_t,
                 const float *k_t, const float *v_t, const float *xp, int t);
};

#define ATTN_QK_NORM_EPS 1e-12f /* WHY inside the norm: q = 0 must give k = 0, not NaN */

/* The ops slots every attention-family mixer shares, as designated initialisers:
 *   const struct mixer_ops attn_x_ops = {ATTN_OPS("x", summary, tests, x_parse, x_destroy,
 *                                                 tensors, init, x_flops, &x_core)};
 * tensors/init: attn_tensors/attn_init, or the mixer's own (which call attn_tensors_add /
 * attn_init first and add their extra tensors after). */
#define ATTN_OPS(nm, sum, tests, parse_fn, destroy_fn, tensors_fn, init_fn, flops_fn, core_ptr) \
    .name = (nm), .summary = (sum), .causal = 1, .test_specs = (tests), .parse = (parse_fn),      \
    .destroy = (destroy_fn), .tensors = (tensors_fn), .init = (init_fn),                          \
    .saved_floats = attn_saved_floats, .scratch_floats = attn_scratch_floats,                      \
    .forward = attn_forward, .backward = attn_backward, .state_floats = attn_state_floats,         \
    .step = attn_step, .flops = (flops_fn), .core = (core_ptr)

/* Generic mixer_ops members for the attention family: tensors are
 *   c_attn.weight (3C,C) [c_attn.bias (3C)] c_proj.weight (C,C) [c_proj.bias (C)]
 * (nanoGPT's names and layout), q = rows 0..C-1, k = C..2C-1, v = 2C..3C-1; head h owns
 * channels h*D..h*D+D-1. With core->shared_qk c_attn is (2C,C) [(2C)]: q rows 0..C-1, v
 * C..2C-1. Init: N(0, 0.02), c_proj N(0, 0.02/sqrt(2L)), biases 0. */
int attn_tensors(const struct mixer *m, struct mx_param *out);
/* The same tensors appended to out at (*n, *at), for mixers with extra tensors. */
void attn_tensors_add(const struct mixer *m, struct mx_param *out, int *n, size_t *at);
/* Floats of the attention tensors at the front of the slice (where xp begins). */
size_t attn_param_floats(const struct mixer *m);
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

/* FLOPs of exact softmax attention over n_pairs (query, key) pairs in total (all heads and
 * batch rows): QKᵀ and PV are 2·D each per pair, the softmax ~5 per pair (scale, max,
 * subtract, exp, sum); backward recomputes P and forms dV, dP, dQ, dK: 2.5x forward. */
void attn_pairs_flops(double n_pairs, int D, double *fwd, double *bwd);

/* Rotary position embedding (RoFormer): the table of mixer.rope, (T_max, D/2) pairs (cos, sin)
 * of t·θ_i with θ_i = 10000^(-2i/D), computed in double; NULL with err set when out of memory.
 * attn_rope_apply rotates each (B,H,T,D) row t of x in place, channel pairs (2i, 2i+1), by
 * +t·θ_i (inverse 0) or by -t·θ_i (inverse 1: the transpose, which carries dq, dk back), rows
 * at positions t0..t0+T-1. */
float *attn_rope_table(int T_max, int D, struct mx_error *err);
void attn_rope_apply(float *x, const float *table, int BH, int T, int D, int t0, int inverse);

/* (B,T,3C) packed qkv -> q, k, v each (B,H,T,D). shared_qk: qkv is (B,T,2C) = [q | v] and
 * k = q / sqrt(|q|^2 + ATTN_QK_NORM_EPS) per head row. */
void attn_split_heads(float *q, float *k, float *v, const float *qkv, int B, int T, int H, int D,
                      int shared_qk);
/* Reverse: dq,dk,dv (B,H,T,D) -> dqkv (B,T,3C) overwritten; shared_qk: (B,T,2C) = [dq | dv]
 * (dk unread: the core folded it into dq). */
void attn_merge_qkv(float *dqkv, const float *dq, const float *dk, const float *dv, int B, int T,
                    int H, int D, int shared_qk);
/* o (B,H,T,D) -> y (B,T,C) overwritten, and back. */
void attn_merge_heads(float *y, const float *o, int B, int T, int H, int D);
void attn_split_out(float *o, const float *y, int B, int T, int H, int D);

/* The naive dense causal softmax attention core, row by row (O(T) extra memory, saves the
 * row log-sum-exp). The reference every faster core is tested against. saved = B*H*T.
 * Same contracts as struct attn_core (backward overwrites dq, dk, dv). */
extern const struct attn_core attn_dense_ref_core;
size_t attn_dense_ref_saved(const struct mixer *m, int B, int T);
void attn_dense_ref_forward(const struct mixer *m, float *o, float *saved, float *work,
                            const float *q, const float *k, const float *v, const float *xp,
                            int B, int T);
void attn_dense_ref_backward(const struct mixer *m, float *dq, float *dk, float *dv, float *dxp,
                             float *work, const float *dout, const float *o, const float *saved,
                             const float *q, const float *k, const float *v, const float *xp,
                             int B, int T);
/* Masked reference for sparse patterns and tests: allowed(m, ctx, h, i, j) says whether query
 * i of head h may attend key j (j <= i is the caller's duty). Rows with no allowed key give 0.
 * The backward ADDS to dq, dk, dv (it is a building block, not a core). */
typedef int (*attn_mask_fn)(const void *ctx, int h, int i, int j);
void attn_masked_ref_forward(float *o, float *lse, const float *q, const float *k, const float *v,
                             int B, int H, int T, int D, attn_mask_fn allowed, const void *ctx);
void attn_masked_ref_backward(float *dq, float *dk, float *dv, const float *dout, const float *o,
                              const float *lse, const float *q, const float *k, const float *v,
                              int B, int H, int T, int D, attn_mask_fn allowed, const void *ctx);

#endif
