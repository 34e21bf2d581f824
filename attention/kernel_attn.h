/* kernel_attn.h — internal to attention/: the chunked causal prefix-sum engine the kernel
 * mixers (`linear`, `performer`) share. It computes, per (b,h),
 *     o_t = Σ_{j≤t} (φq_t·φk_j) v_j / (Σ_{j≤t} φq_t·φk_j + ε)
 * through BLAS on chunks, with the feature map φ supplied by the mixer (struct kattn_map).
 * Not a mixer itself: no parsing, no parameters. Tests may include it. */
#ifndef MIXLM_KERNEL_ATTN_H
#define MIXLM_KERNEL_ATTN_H

#include "attention/attn_common.h"
#include "nn/fastmath.h"

/* The feature maps' exp: nn/fastmath.h's vectorisable mx_expf (tests/test_kernel.c compares
 * it with expf, its reference). */
static inline float kattn_expf(float x)
{
    return mx_expf(x);
}

/* A feature map φ: R^D -> R^F_{>=0}.
 * scaled = 0 (linear): forward returns φ(x) itself; lscale is not written.
 * scaled = 1 (exp-type maps, performer): forward returns φ(x)·exp(-lscale[r]) per row r with
 *   every value in [0, 1] (each row's largest feature is 1), and for keys writes lscale[r], the
 *   row's log-scale. For queries any per-row constant may be dropped (lscale not written): it
 *   cancels between numerator and denominator of o_t. The engine keeps keys in causal units
 *   (see kernel_attn.c). The engine treats the log-scales as constants in backward, which is
 *   exact because they cancel (up to the ε guard). */
struct kattn_map {
    int F;      /* features per row */
    int chunk;  /* rows per chunk (BLAS block); any value gives the same math */
    float eps;  /* the normaliser guard ε (see each mixer's WHY comment) */
    int scaled; /* 1: keys come with per-row log-scales (exp-type features) */
    const void *ctx;
    /* phi (L,F) overwritten; lscale (L) written for keys when scaled; x (L,D) rows of q or k;
     * key = 1 for keys; tmp (L,F) scratch. */
    void (*forward)(const void *ctx, float *phi, float *lscale, const float *x, int L, int D, int key,
                    float *tmp);
    /* dx (L,D) +=: the gradient through phi = forward(x) (with any per-row factor the engine
     * applied afterwards folded in: exp-type maps need only phi itself); dphi (L,F); tmp (L,F). */
    void (*backward)(const void *ctx, float *dx, const float *dphi, const float *phi, const float *x, int L,
                     int D, int key, float *tmp);
};

/* Floats kept forward -> backward: the denominator per (b,h,t), plus the causal key log-scale
 * per (b,h,t) when the map is scaled. */
size_t kattn_saved_floats(const struct kattn_map *map, int B, int H, int T);
/* Workspace per call: per (b,h) chunk buffers plus the recomputed chunk states for backward,
 * (T/chunk) x F x (D+1) per (b,h). */
size_t kattn_work_floats(const struct kattn_map *map, int B, int H, int T, int D);

/* o (B,H,T,D) overwritten; saved overwritten; work scratch; q, k, v (B,H,T,D). */
void kattn_forward(const struct kattn_map *map, float *o, float *saved, float *work, const float *q,
                   const float *k, const float *v, int B, int H, int T, int D);
/* dq, dk, dv (B,H,T,D) +=; dout (B,H,T,D); o and saved as forward left them. Recomputes the
 * features and the chunk states; stores no per-token D x D state. */
void kattn_backward(const struct kattn_map *map, float *dq, float *dk, float *dv, float *work,
                    const float *dout, const float *o, const float *saved, const float *q, const float *k,
                    const float *v, int B, int H, int T, int D);

/* Recurrent form for generation: per head S (F,D+1) and the key log-scale; the cost of a step
 * is O(F·D) per head whatever t is. State zeroed by the caller before t = 0. */
size_t kattn_state_floats(const struct kattn_map *map, int H, int D);
/* o_t (H,D) overwritten; q_t, k_t, v_t (H,D); t = 0, 1, 2, ... in order. */
void kattn_step(const struct kattn_map *map, float *o_t, float *state, const float *q_t, const float *k_t,
                const float *v_t, int H, int D, int t);

/* Performer internals exposed for tests: copy the random features W (M,D) that the mixer
 * uses at m->step (already multiplied by D^(-1/4)), drawing them if needed. Returns M. */
int performer_features(const struct mixer *m, float *w_out);

#endif
