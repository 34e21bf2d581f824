/* lowrank_common.h — internal to attention/: what the two low-rank mixers (linformer.c,
 * nystrom.c) share: the engine's struct (first in their cfg), the block attention engine
 * "exact causal softmax inside the own block + compressed rows of every completed earlier block,
 * one normaliser", its FLOP count and the iterative pseudo-inverse. Not a mixer by itself; the
 * compression (learned or Nyström) and its core are each file's. Tests may include it to test
 * the engine and the pseudo-inverse directly. */
#ifndef MIXLM_LOWRANK_COMMON_H
#define MIXLM_LOWRANK_COMMON_H

#include "attention/attn_common.h"

/* ---- the engine's struct ----------------------------------------------------------------
 * The FIRST member of a low-rank mixer's cfg (attn_common.h). Each mixer brings its own core
 * (the compression is its own) with its extra tensors after the attention ones; the core gets
 * them as xp / dxp from the shared path. */
struct lowrank_map {
    int b;               /* block length */
    int r;               /* compressed rows per completed block */
    double block_flops;  /* forward FLOPs to compress one block (both K and V), per head */
};
/* Token-mixing FLOPs at (B,T) for mixer_ops.flops: the exact part (the causal pairs inside
 * each block) and the compressed part (n*r rows for a query of block n) through
 * attn_pairs_flops, plus block_flops per completed block and head; backward 2.5x. */
void lowrank_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd);

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
