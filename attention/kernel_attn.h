/* kernel_attn.h — internal to attention/: the chunked causal prefix-sum engine the kernel
 * mixers (`linear`, `performer`) share. It computes, per (b,h),
 *     o_t = Σ_{j≤t} (φq_t·φk_j) v_j / (Σ_{j≤t} φq_t·φk_j + ε)
 * through BLAS on chunks, with the feature map φ supplied by the mixer (struct kattn_map, the
 * first member of its cfg), exported as one attn_core. Not a mixer itself: no parsing, no
 * parameters. Tests may include it. */
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
    double map_flops_row; /* FLOPs of forward on one row (kattn_flops) */
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
    /* Optional (NULL: none): bring the map up to date for m->step (performer's redraw);
     * called by the core before forward, backward and step, outside parallel regions. */
    void (*prepare)(const struct mixer *m);
    /* Rotary positions after the map (RoFormer §3.3), set by kattn_rope_setup: (T_max, F/2)
     * pairs (cos, sin) of t·10000^(-2i/F), owned by the map (kattn_map_release frees it); NULL
     * when the model has no rope or the spec asks for rope=qk. With it the engine computes
     *     o_t = Σ_{j≤t} (R_t φq_t·R_j φk_j) v_j / (Σ_{j≤t} φq_t·φk_j + ε),
     * the numerator's scores depending on positions only through t - j, the denominator left
     * unrotated (it stays positive, as the paper notes). */
    float *frope;
};

/* The kernel mixers' `rope` key: NULL or "map" (the default: rotate the features after the
 * map, as above) or "qk" (rotate q and k before the map in the shared attention path: a
 * position signal without the relative form; what mixlm did before, and what checkpoints
 * from then hold, model/checkpoint.c). Without --pos rope the key changes nothing. Sets
 * m->rope_in_core and map->frope when the model has rope and the mode is map (F must be even).
 * *qk_out: 1 for qk. Errors name the mixer and the value. */
int kattn_rope_setup(struct mixer *m, struct kattn_map *map, const char *mode, const char *mixer, int *qk_out,
                     struct mx_error *err);
void kattn_map_release(struct kattn_map *map);

/* The engine's core. A mixer using it keeps its struct kattn_map as the FIRST member of its
 * cfg (attn_common.h) and sets ops->core = &kattn_core. Contracts are struct attn_core's:
 * saved = the denominator per (b,h,t), plus the causal key log-scale per (b,h,t) when the map
 * is scaled; work = per (b,h) chunk buffers plus the recomputed chunk states for backward,
 * (T/chunk) x F x (D+1) per (b,h); backward OVERWRITES dq, dk, dv, recomputing the features
 * and the chunk states (no per-token D x D state). Step: the recurrent form, per head S
 * (F,D+1) and the key log-scale, O(F·D) per head whatever t is. xp is unused. */
extern const struct attn_core kattn_core;
size_t kattn_saved_floats(const struct mixer *m, int B, int T);
size_t kattn_work_floats(const struct mixer *m, int B, int T);
void kattn_forward(const struct mixer *m, float *o, float *saved, float *work, const float *q,
                   const float *k, const float *v, const float *xp, int B, int T);
void kattn_backward(const struct mixer *m, float *dq, float *dk, float *dv, float *dxp, float *work,
                    const float *dout, const float *o, const float *saved, const float *q, const float *k,
                    const float *v, const float *xp, int B, int T);
size_t kattn_state_floats(const struct mixer *m);
void kattn_step(const struct mixer *m, float *o_t, float *state, const float *q_t, const float *k_t,
                const float *v_t, const float *xp, int t);
/* Token-mixing FLOPs at (B,T) for mixer_ops.flops (see kernel_attn.c). */
void kattn_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd);

/* Performer internals exposed for tests: copy the random features W (M,D) that the mixer
 * uses at m->step (already multiplied by D^(-1/4)), drawing them if needed. Returns M. */
int performer_features(const struct mixer *m, float *w_out);

#endif
