/* lowrank_common.h — internal to attention/: what the two low-rank mixers (linformer.c,
 * nystrom.c) share: the mixer_ops glue that runs the attention family's projection path with
 * extra parameters (E, F, a conv kernel) beside c_attn/c_proj, and the block attention engine
 * "exact causal softmax inside the own block + compressed rows of every completed earlier block,
 * one normaliser". Not a mixer by itself; the compression (learned or Nyström) is each file's.
 * Tests may include it to test the engine and the pseudo-inverse directly. */
#ifndef MIXLM_LOWRANK_COMMON_H
#define MIXLM_LOWRANK_COMMON_H

#include "attention/attn_common.h"

/* ---- glue -------------------------------------------------------------------------------
 * A low-rank mixer's parameter slice is the attention family's tensors (attn_tensors order)
 * followed by its own extra tensors. Its m->cfg must begin with a struct lowrank_head naming
 * its attn_core. The ops wrappers below run attn_forward/attn_backward/attn_step on a copy of
 * the mixer whose ops carry that core and whose cfg is a struct lowrank_ctx binding the extra
 * parameters for this call, so the core (which attn_common gives only q,k,v) can read them.
 * Nothing shared is mutated: the copies live on the caller's stack, so calls are reentrant.
 * The public ops->core stays NULL: the core is not usable without this binding. */
struct lowrank_head {
    const struct attn_core *core;
};
struct lowrank_ctx {
    const void *cfg; /* the mixer's own cfg (begins with struct lowrank_head) */
    const float *xp; /* its extra parameters (after the attention tensors) */
    float *dxp;      /* their gradient (+=), backward only; NULL otherwise */
};

/* Floats of the attention tensors at the front of the slice (c_attn, c_proj, biases). */
size_t lowrank_attn_floats(const struct mixer *m);
size_t lowrank_saved_floats(const struct mixer *m, int B, int T);
size_t lowrank_scratch_floats(const struct mixer *m, int B, int T);
/* Same contracts as struct mixer_ops forward/backward/state_floats/step. */
void lowrank_forward(const struct mixer *m, float *y, float *saved, const float *x,
                     const float *params, int B, int T);
void lowrank_backward(const struct mixer *m, float *dx, float *dparams, const float *dy,
                      const float *saved, const float *x, const float *params, int B, int T);
size_t lowrank_state_floats(const struct mixer *m);
void lowrank_step(const struct mixer *m, float *y_t, float *state, const float *x_t,
                  const float *params, int t);

/* ---- the block engine (one (batch, head) slice) -------------------------------------------
 * Blocks of b positions; query i in block n = i / b sees
 *   exact:      keys j in [n*b, i]                       score s * q_i·k_j
 *   compressed: rows 0 .. n*r-1 of Kc (r per completed block), score s * q_i·Kc_l + bias
 * with s = 1/sqrt(D), all through one softmax; values V resp. Vc. lse[i] = log normaliser.
 * Kc, Vc hold r rows per block for blocks 0 .. (T-1)/b - 1 (the ones any query can see). */
static inline int lowrank_n_past(int T, int b)
{
    return (T - 1) / b; /* completed blocks seen by the last query */
}
/* Work floats for one slice: forward and backward. */
size_t lowrank_attend_work_fwd(int T, int b, int r);
size_t lowrank_attend_work_bwd(int T, int b, int r);
/* O (T,D) overwritten; lse (T) overwritten; work (lowrank_attend_work_fwd) scratch.
 * Q, K, V (T,D); Kc, Vc (n_past*r, D). Uses cblas_sgemm per block. */
void lowrank_attend_forward(float *O, float *lse, float *work, const float *Q, const float *K,
                            const float *V, const float *Kc, const float *Vc, float bias, int T,
                            int D, int b, int r);
/* dQ, dK, dV (T,D) +=; dKc, dVc (n_past*r, D) +=; work (lowrank_attend_work_bwd) scratch;
 * dO (T,D); lse as produced by forward. */
void lowrank_attend_backward(float *dQ, float *dK, float *dV, float *dKc, float *dVc, float *work,
                             const float *dO, const float *lse, const float *Q, const float *K,
                             const float *V, const float *Kc, const float *Vc, float bias, int T,
                             int D, int b, int r);
/* The naive references (row by row, sums in double, no work buffer); same contracts. */
void lowrank_attend_ref_forward(float *O, float *lse, const float *Q, const float *K,
                                const float *V, const float *Kc, const float *Vc, float bias, int T,
                                int D, int b, int r);
void lowrank_attend_ref_backward(float *dQ, float *dK, float *dV, float *dKc, float *dVc,
                                 const float *dO, const float *lse, const float *Q, const float *K,
                                 const float *V, const float *Kc, const float *Vc, float bias,
                                 int T, int D, int b, int r);
/* One query row for incremental decoding: o (D) overwritten; q (D); Kc, Vc (R,D) compressed
 * rows; Kcur, Vcur (ncur,D) the own block up to and including this position; s (R + ncur)
 * scratch. */
void lowrank_attend_row(float *o, float *s, const float *q, const float *Kc, const float *Vc, int R,
                        const float *Kcur, const float *Vcur, int ncur, float bias, int D);

/* ---- Moore-Penrose pseudo-inverse by the Nyströmformer iteration ----------------------------
 * Z0 = Aᵀ / (‖A‖₁‖A‖∞), then LOWRANK_PINV_ITERS times
 *   Z ← ¼ Z (13I − AZ (15I − AZ (7I − AZ)))
 * (third order: I − AZ' = (I − AZ)³ (3I + (I − AZ)) / 4 on each eigenvalue).
 * A, Z (m,m). trace (lowrank_pinv_trace_floats(m)) keeps every intermediate for backward;
 * work (4 m*m) is used when trace is NULL. Z overwritten. */
#define LOWRANK_PINV_ITERS 6
size_t lowrank_pinv_trace_floats(int m);
void lowrank_pinv_forward(float *Z, float *trace, float *work, const float *A, int m);
/* dA (m,m) += the gradient through the iteration, init scale included (max column / row sums
 * are differentiated at their first argmax); dZ (m,m); trace from forward; work (4 m*m). */
void lowrank_pinv_backward(float *dA, float *work, const float *dZ, const float *trace,
                           const float *A, int m);

#endif
