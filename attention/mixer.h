/* mixer.h — the token-mixing sublayer interface and the registry of mixers.
 * A mixer maps normalised hidden states x (B,T,C) to y (B,T,C) and owns its parameters.
 * The model never branches on a mixer's kind: everything goes through struct mixer_ops.
 * This header is the only one other folders include from attention/. */
#ifndef MIXLM_MIXER_H
#define MIXLM_MIXER_H

#include "core/core.h"

#define MX_SPEC_MAX 256

/* The dimensions a mixer is built for. */
struct mixer_dims {
    int C;       /* channels (n_embd) */
    int H;       /* heads; C % H == 0 */
    int T_max;   /* the model's context length */
    int bias;    /* projections carry biases */
    int layer;   /* this layer's index */
    int n_layer; /* number of layers (residual projection init is scaled by 1/sqrt(2L)) */
    int rope;    /* 1: rotary position embedding (RoFormer) of q and k; attention family only */
    uint64_t seed;
};

struct mixer_ops;

struct mixer {
    const struct mixer_ops *ops;
    char spec[MX_SPEC_MAX]; /* canonical: "name:k=v,..." with every default written out */
    int C, H, D;            /* D = C / H, the head size */
    int T_max;
    int bias;
    int layer, n_layer;
    uint64_t seed;  /* randomness of a layer derives from (seed, layer, step): no RNG state */
    long step;      /* training step; set by the caller before forward (redraw schedules) */
    int training;   /* 1 inside a training step, 0 for eval and generation */
    void *cfg;      /* parsed configuration and private caches, owned by the mixer */
    float *scratch; /* scratch_floats(B,T) floats of workspace, owned by the caller */
    /* Rotary position embedding (RoFormer, Su et al. 2021) when the model asks for it
     * (mixer_dims.rope): (T_max, D/2) pairs (cos, sin) of t·θ_i, θ_i = 10000^(-2i/D); the
     * shared attention path rotates q and k by position before the core and rotates dq, dk
     * back after it. NULL otherwise. Owned by the mixer (mixer_destroy frees it). */
    float *rope;
    /* 1: the core applies the rotary positions itself (the kernel mixers rotate their features
     * after the feature map, RoFormer §3.3: attention/kernel_attn.c), so the shared path leaves
     * q and k alone; set by the mixer's parse. */
    int rope_in_core;
};

struct attn_core; /* attention family internals (attention/attn_common.h) */

struct mixer_ops {
    const char *name;    /* "dense", "window", ... */
    const char *summary; /* one help line: spec syntax, defaults and the paper's values */
    int causal;          /* 0: output at t sees inputs after t (fnet); LM training refuses it */
    /* Small specs the generic test suite runs at T <= 24 (NULL-terminated list), and the
     * tolerance of its causality and prefix checks: 0 = bit-for-bit (every exact method);
     * FFT-based mixers state their round-off here and document it. */
    const char *const *test_specs;
    double test_causal_tol;

    /* Parse "k=v,k=v" (args may be ""), validate against m's dims, set m->cfg and write the
     * canonical spec into m->spec. Errors name the key, the value, the limit. */
    int (*parse)(struct mixer *m, const char *args, struct mx_error *err);
    void (*destroy)(struct mixer *m); /* frees m->cfg; may be NULL */
    /* Fill out[] (NULL to count) and return the number of tensors. The mixer's parameters are
     * the concatenation of its tensors in this order: names relative ("c_attn.weight", the
     * model prefixes "transformer.h.<l>.attn."), offsets within the mixer's slice, every entry
     * made by mx_param_add (core/core.h). */
    int (*tensors)(const struct mixer *m, struct mx_param *out);
    /* Initialise this mixer's parameters (the whole slice); NULL when it has none. */
    void (*init)(const struct mixer *m, float *params, struct mx_rng *rng);

    size_t (*saved_floats)(const struct mixer *m, int B, int T);   /* kept forward→backward */
    size_t (*scratch_floats)(const struct mixer *m, int B, int T); /* temporary, per call */
    /* y (B,T,C) overwritten; saved (saved_floats) overwritten; x (B,T,C); params (slice).
     * Requires 1 <= T <= m->T_max. */
    void (*forward)(const struct mixer *m, float *y, float *saved, const float *x,
                    const float *params, int B, int T);
    /* THE BACKWARD CONTRACT, one rule for the whole folder: a mixer's backward (and the
     * model's) ACCUMULATES into its gradients: dx (B,T,C) +=; dparams (slice) +=; the caller
     * zeroes. The attention family's cores (q,k,v -> o, attn_common.h) are the one exception
     * and OVERWRITE their dq, dk, dv (they are the cores' own outputs, never shared), while
     * their parameter gradients accumulate like every other. dy (B,T,C); saved and x as
     * given to forward. */
    void (*backward)(const struct mixer *m, float *dx, float *dparams, const float *dy,
                     const float *saved, const float *x, const float *params, int B, int T);

    /* Incremental decoding (optional, NULL when the mixer has none). The state holds
     * everything step needs for positions 0..T_max-1 (cache, running sums, its own scratch);
     * the caller zeroes it before t = 0. y_t (C) overwritten, x_t (C). Steps come in order
     * t = 0, 1, 2, ... and must reproduce forward's row t. */
    size_t (*state_floats)(const struct mixer *m);
    void (*step)(const struct mixer *m, float *y_t, float *state, const float *x_t,
                 const float *params, int t);

    /* Required of every mixer. FLOPs of one forward (*fwd) and one backward (*bwd,
     * recomputation included) of the token mixing at (B,T), both overwritten: what runs
     * between the mixer's weight matrices (scores, softmax, feature maps, FFTs, hashing and
     * sorting, block compression), not the matmuls with its own 2-D
     * weights, which mixer_flops adds (2 per weight per token forward, 4 backward). A FLOP is
     * a multiply or an add (an FMA is 2). */
    void (*flops)(const struct mixer *m, int B, int T, double *fwd, double *bwd);

    const struct attn_core *core; /* attention family only; NULL otherwise */
};

/* ---- registry ------------------------------------------------------------------------- */
int mixer_count(void);
const struct mixer_ops *mixer_at(int i);
/* The mixer registered as name, or under the new name of a deprecated one (fourier -> longconv);
 * NULL if unknown. */
const struct mixer_ops *mixer_find(const char *name);
/* The current name of a deprecated mixer name ("fourier" -> "longconv"); NULL if name is not one. */
const char *mixer_alias_of(const char *name);

/* 1 when the mixer has queries and keys that --pos rope can rotate (the attention family). */
int mixer_has_qk(const struct mixer_ops *ops);

/* Build a mixer from a spec "name" or "name:k=v,...". Unknown names list the known ones.
 * d->rope on a mixer without queries and keys (mixer_has_qk) is an error.
 * On success the mixer must be released with mixer_destroy. */
int mixer_create(struct mixer *m, const char *spec, const struct mixer_dims *d, struct mx_error *err);
void mixer_destroy(struct mixer *m);
/* Initialise m's parameter slice from rng (nothing when ops->init is NULL). */
void mixer_init(const struct mixer *m, float *params, struct mx_rng *rng);

/* Forward and backward FLOPs of the whole sublayer at (B,T): the weight-matrix matmuls (2-D
 * trainable tensors) plus ops->flops. Returns *fwd + *bwd; fwd/bwd may be NULL. */
double mixer_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd);

/* Sizes derived from ops->tensors. */
int mixer_n_tensors(const struct mixer *m);
size_t mixer_n_params(const struct mixer *m);
/* Offset (floats) of tensor `name` in the mixer's slice; MX_ASSERTs that it exists. */
size_t mixer_tensor_offset(const struct mixer *m, const char *name);
/* Zero the gradient entries of non-trainable tensors (buffers). */
void mixer_mask_buffers(const struct mixer *m, float *dparams);

/* ---- spec parsing helpers ----------------------------------------------------------------
 * "w=256,d=1,1,2,4,g=2": a comma-separated token without '=' continues the previous value,
 * so lists need no quoting (d = "1,1,2,4"). */
#define MX_KV_MAX 16
struct mixer_kv {
    int n;
    char key[MX_KV_MAX][24];
    char val[MX_KV_MAX][160];
    int used[MX_KV_MAX];
};
int mixer_kv_parse(struct mixer_kv *kv, const char *mixer, const char *args, struct mx_error *err);
/* Look up key: absent -> *out = dflt. Present -> strict parse in [lo, hi], else an error
 * naming mixer, key, value and range. Marks the key used. */
int mixer_kv_int(struct mixer_kv *kv, const char *mixer, const char *key, long dflt, long lo,
                 long hi, long *out, struct mx_error *err);
int mixer_kv_float(struct mixer_kv *kv, const char *mixer, const char *key, double dflt,
                   double lo, double hi, double *out, struct mx_error *err);
/* String value or NULL when absent; marks the key used. */
const char *mixer_kv_str(struct mixer_kv *kv, const char *key);
/* Any key not consumed yet is an error listing the keys `mixer` accepts. */
int mixer_kv_finish(const struct mixer_kv *kv, const char *mixer, const char *accepted, struct mx_error *err);

#endif
