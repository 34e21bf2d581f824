/* lowrank_common.h — internal to attention/: the low-rank attention core that linformer.c and
 * nystrom.c share (struct lowrank_map, first in their cfg, and lowrank_core), the block engine
 * under it ("exact causal softmax inside the own block + compressed rows of every completed
 * earlier block, one normaliser"), its FLOP count and the iterative pseudo-inverse. Not a
 * mixer, and not a compression: how a completed block becomes r rows is each mixer's callback.
 * Tests may include it to test the engine and the pseudo-inverse directly. */
#ifndef MIXLM_LOWRANK_COMMON_H
#define MIXLM_LOWRANK_COMMON_H

#include "attention/attn_common.h"

/* ---- the low-rank core ----------------------------------------------------------------------
 * lowrank_core is the attn_core of every low-rank mixer: per (batch, head) slice it compresses
 * each completed block of b positions to r rows (Kc, Vc) through the mixer's callbacks, runs
 * the block engine below over them, and adds the mixer's optional per-head output term. It
 * reads (const struct lowrank_map *)m->cfg alone: the map is the FIRST member of the mixer's
 * cfg (attn_common.h), filled by its parse. The mixer's extra tensors (after the attention
 * ones) reach every callback as xp.
 *   saved: lse (B,H,T) | Kc (B,H,R,D) | Vc (B,H,R,D), R = lowrank_n_past(T, b) * r.
 *   step: per head Kc, Vc (R,D) at T_max, the own block's [Q,] K, V (b,D), scores (R + b), the
 *   add_step state; then one block_work area. A block is compressed when its last row arrives. */
struct lowrank_map {
    int b;                /* block length */
    int r;                /* compressed rows per completed block */
    float bias;           /* added to every compressed row's score (log of the keys a row stands for) */
    int compress_reads_q; /* compress reads the block's queries (the step keeps them) */
    double block_flops;   /* forward FLOPs to compress one block (both K and V), per head */
    size_t block_work;    /* scratch floats of one compress / compress_backward call */
    size_t slice_grad;    /* floats of one slice's partial gradient of xp (0: none) */
    size_t add_state;     /* per-head step state floats of add_step (0: none) */
    /* Compress one completed block: Kc, Vc (r,D) overwritten from the block's Q, K, V (b,D);
     * work (block_work) scratch. Forward and step both call it: one definition of a block. */
    void (*compress)(const struct mixer *m, float *Kc, float *Vc, float *work, const float *Q, const float *K,
                     const float *V, const float *xp);
    /* Its backward, called for blocks 0, 1, ... in order after the engine's backward: dQ, dK,
     * dV (b,D) +=; g (slice_grad) the slice's partial gradient of xp +=; dKc (r,D) the engine's
     * gradient of Kc, which the callback may use as scratch; dVc (r,D); Kc, Vc as compress made
     * them; work (block_work) scratch. */
    void (*compress_backward)(const struct mixer *m, float *dQ, float *dK, float *dV, float *g, float *work,
                              float *dKc, const float *dVc, const float *Kc, const float *Vc, const float *Q,
                              const float *K, const float *V, const float *xp);
    /* dxp += g, one slice's partial gradient, head h; called in slice order after all slices
     * ran (WHY: xp is shared by slices, a fixed order keeps the gradient bitwise
     * deterministic). Required when slice_grad > 0; not called when dxp is NULL. */
    void (*reduce)(const struct mixer *m, float *dxp, const float *g, int h);
    /* Optional (NULL: none) per-head term added to the attention output of head h:
     * add_forward: O (T,D) += f(V); add_backward: dV (T,D) +=, g +=, from dO (T,D), after the
     * blocks' backward; add_step: o (D) += row t of f, st (add_state) its state (zeroed before
     * t = 0), v (D) this row's value. */
    void (*add_forward)(const struct mixer *m, float *O, const float *V, const float *xp, int h, int T);
    void (*add_backward)(const struct mixer *m, float *dV, float *g, const float *dO, const float *V,
                         const float *xp, int h, int T);
    void (*add_step)(const struct mixer *m, float *o, float *st, const float *v, const float *xp, int h,
                     int t);
};
extern const struct attn_core lowrank_core;
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
void lowrank_attend_forward(float *O, float *lse, float *work, const float *Q, const float *K, const float *V,
                            const float *Kc, const float *Vc, float bias, int T, int D, int b, int r);
/* dQ, dK, dV (T,D) +=; dKc, dVc (n_past*r, D) +=; work (lowrank_attend_work_bwd) scratch;
 * dO (T,D); lse as produced by forward. */
void lowrank_attend_backward(float *dQ, float *dK, float *dV, float *dKc, float *dVc, float *work,
                             const float *dO, const float *lse, const float *Q, const float *K,
                             const float *V, const float *Kc, const float *Vc, float bias, int T, int D,
                             int b, int r);
/* The naive references (row by row, sums in double, no work buffer); same contracts. */
void lowrank_attend_ref_forward(float *O, float *lse, const float *Q, const float *K, const float *V,
                                const float *Kc, const float *Vc, float bias, int T, int D, int b, int r);
void lowrank_attend_ref_backward(float *dQ, float *dK, float *dV, float *dKc, float *dVc, const float *dO,
                                 const float *lse, const float *Q, const float *K, const float *V,
                                 const float *Kc, const float *Vc, float bias, int T, int D, int b, int r);
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
void lowrank_pinv_backward(float *dA, float *work, const float *dZ, const float *trace, const float *A,
                           int m);

#endif
