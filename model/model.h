/* model.h — the GPT decoder (nanoGPT's GPT-2: pre-LayerNorm blocks, learned positions,
 * GELU(tanh) 4x MLP, optional biases, tied embeddings) with hand-written forward/backward,
 * one buffer each for parameters and gradients, activations from one arena planned once,
 * and safetensors checkpoints. The token mixer of each layer is a struct mixer.
 * Not the optimizer or the training loop (train/), nor sampling (infer/). */
#ifndef MIXLM_MODEL_H
#define MIXLM_MODEL_H

#include "attention/mixer.h"
#include "core/core.h"

#include <cjson/cJSON.h>

#define MX_MAX_LAYERS 64
#define MX_CKPT_FORMAT 1

/* Position schemes (train --pos). Under NONE and ROPE the learned table wpe stays 0 and is not
 * trained (it is kept so every checkpoint has the same tensors). */
enum mx_pos {
    MX_POS_LEARNED = 0, /* GPT-2's learned absolute position embedding (default) */
    MX_POS_NONE = 1,    /* NoPE: the causal mixers' own order is the only position signal */
    MX_POS_ROPE = 2,    /* rotary (RoFormer): every layer's mixer rotates q and k by position */
};
/* "learned", "none", "rope"; mx_pos_parse returns -1 for anything else. */
const char *mx_pos_name(int pos);
int mx_pos_parse(const char *s);

struct mx_config {
    int n_layer, n_head, n_embd, block_size, vocab_size;
    int bias;      /* LayerNorm and linear biases (nanoGPT's shakespeare configs: 0) */
    int pos;       /* enum mx_pos, the position scheme. Checkpoints store it as "pos". */
    uint64_t seed; /* init, and per-layer randomness of mixers (LSH, BigBird, Performer) */
    char attn[MX_MAX_LAYERS][MX_SPEC_MAX]; /* each layer's mixer spec (canonical after init) */
};

/* The tensors of the parameter buffer are listed as struct mx_param (core/core.h) with
 * nanoGPT state-dict names ("transformer.h.0.attn.c_attn.weight") and offsets within
 * params/grads/moments. */

/* Views of layer l's parameters inside one buffer (params or grads). NULL where absent. */
struct mx_layer_w {
    float *ln1_w, *ln1_b; /* (C) */
    float *mix;           /* the mixer's slice */
    float *ln2_w, *ln2_b; /* (C) */
    float *fc_w, *fc_b;   /* (4C,C), (4C) */
    float *pr_w, *pr_b;   /* (C,4C), (C) */
};
struct mx_weights {
    float *wte; /* (V,C), also the output head */
    float *wpe; /* (T_max,C) */
    struct mx_layer_w l[MX_MAX_LAYERS];
    float *lnf_w, *lnf_b; /* (C) */
};

/* Activations of one forward, kept for backward; all from one arena. */
struct mx_layer_acts {
    float *ln1, *ln1_mean, *ln1_rstd; /* (B,T,C), (B,T), (B,T) */
    float *mix_saved;                  /* mixer's saved_floats(B,T) */
    float *res_mid;                    /* (B,T,C) residual after the mixer */
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fc;   /* (B,T,4C) pre-GELU */
    float *gelu; /* (B,T,4C) GELU output, the input of c_proj (kept: recomputing it cost ~2%) */
    float *res; /* (B,T,C) residual after the MLP = input of layer l+1 */
};
struct mx_acts {
    float *emb; /* (B,T,C) token + position embedding = input of layer 0 */
    struct mx_layer_acts l[MX_MAX_LAYERS];
    float *lnf, *lnf_mean, *lnf_rstd; /* (B,T,C), (B,T), (B,T) */
    float *logits;                    /* (B,T,V); overwritten by dlogits in backward */
    float *lse;                       /* (B,T) log-sum-exp of each logits row */
    float *losses;                    /* (B,T) per-position loss, nats */
    /* backward and temporary buffers */
    float *d_res, *d_tmp, *d_ln; /* (B,T,C) */
    float *d_fc;                 /* (B,T,4C) */
    float *mix_y;                /* (B,T,C) mixer output */
    float *scratch;              /* max over layers of mixer scratch_floats */
    float *ln_work;              /* layer_norm_work_floats(C) */
};

struct mx_model {
    struct mx_config cfg;
    struct mixer mix[MX_MAX_LAYERS];
    int n_tensors;
    struct mx_param *tensors;
    size_t n_params;
    float *params, *grads; /* n_params each; grads zeroed by the caller before backward */
    struct mx_weights w, g;
    /* activations planned for at most (B_max, T_max) */
    int B_max, T_max;
    float *arena;
    size_t arena_floats;
    struct mx_acts a;
    int B, T;           /* shape of the last forward */
    const int32_t *tok; /* inputs of the last forward (B,T) */
    const int32_t *tgt; /* targets of the last forward (NULL: no loss) */
    float loss;
    /* Set by the trainer (0 by default): a forward with targets and training = 1 also writes
     * d(mean loss)/d logits over m->a.logits (layer_ce_fused: one softmax pass, one exp per
     * logit) and the next model_backward starts from it. The logits are then gone after the
     * forward; leave it 0 wherever they are read. ce_grad_ready: that gradient is waiting. */
    int ce_fused, ce_grad_ready;
    /* Optional (NULL: none): model_backward calls grads_ready(grads_ready_ctx, off, n) as soon as
     * grads[off, off+n) holds its final value for this backward — layer by layer from the last,
     * then the embeddings and the final LayerNorm — so a data-parallel reduction of those
     * gradients can start while the earlier layers still compute (train/dist.h). The range is
     * not written again by this backward. */
    void (*grads_ready)(void *ctx, size_t off, size_t n);
    void *grads_ready_ctx;
};

/* Parse and validate a config (dims, every layer's mixer spec, causality); build the mixers
 * and the parameter layout; allocate params and grads (zeroed). No activations yet. */
int model_create(struct mx_model *m, const struct mx_config *cfg, struct mx_error *err);
void model_free(struct mx_model *m);
/* N(0,0.02) weights, residual projections N(0, 0.02/sqrt(2L)), LN gains 1, biases 0;
 * mixers initialise their own slices. Deterministic in cfg.seed. */
void model_init_params(struct mx_model *m);
/* Plan and allocate activations for batches up to (B, T). T <= block_size. Errors on
 * out-of-memory with the size and what to reduce. */
int model_plan(struct mx_model *m, int B, int T, struct mx_error *err);
/* Activation floats model_plan(B,T) would allocate (for reports and benchmarks). */
size_t model_activation_floats(struct mx_model *m, int B, int T);
const struct mx_param *model_find_tensor(const struct mx_model *m, const char *name);
/* Model FLOPs per training token at context T (forward + backward): 6 x (the matrix
 * parameters outside the mixers used as matmul weights, the tied output head included; wpe is
 * a lookup) plus, per layer, mixer_flops(mix, 1, T) / T: the mixer's weight matmuls and its
 * token mixing as executed (backward recomputation included), whatever the mixer. */
double model_flops_per_token(const struct mx_model *m, int T);

/* Forward: tokens x (B,T) -> logits (B,T,V) in m->a.logits. With targets y (B,T) also the
 * mean cross-entropy (nats/token), returned; returns 0 without targets. A negative target
 * (NN_CE_IGNORE) is left out of the loss and its mean (and of model_backward's gradient). Mixers get
 * m->mix[l].step = step and .training = training. Token ids must be < vocab_size
 * (MX_ASSERT: validated where data enters). */
float model_forward(struct mx_model *m, const int32_t *x, const int32_t *y, int B, int T,
                    long step, int training);
/* Backward of the last forward's mean loss: grads += d loss / d params. Requires targets. */
void model_backward(struct mx_model *m);
/* Per-position losses of the last forward into out (B,T), nats. */
void model_token_losses(const struct mx_model *m, float *out);

/* Incremental decoding: state for every layer's mixer (NULL when some mixer has no step). */
int model_can_step(const struct mx_model *m);
size_t model_state_floats(const struct mx_model *m);
/* Feed token at position pos (0-based, pos < block_size) and write logits (V); logits NULL
 * skips the output head (prompt prefill). The state must be zeroed before pos 0.
 * work: model_step_work_floats() floats. */
size_t model_step_work_floats(const struct mx_model *m);
void model_step(struct mx_model *m, float *logits, float *state, float *work, int32_t token, int pos);
/* Prefill: tokens (n) at positions pos..pos+n-1 (pos + n <= block_size) into the state, as n
 * model_step calls would (equal up to round-off), with the layer norms and MLPs of the n rows
 * batched (gemm rather than n matvecs; the mixers still step token by token). logits (V) of the
 * last token, or NULL. work: model_prefill_work_floats(n) floats. */
size_t model_prefill_work_floats(const struct mx_model *m, int n);
void model_prefill(struct mx_model *m, float *logits, float *state, float *work, const int32_t *tokens,
                   int n, int pos);

/* ---- config and checkpoints ---------------------------------------------------------- */
cJSON *model_config_to_json(const struct mx_config *cfg);
int model_config_from_json(struct mx_config *cfg, const cJSON *j, struct mx_error *err);

/* A checkpoint: safetensors (8-byte little-endian header length, JSON header, raw F32
 * tensors). __metadata__ (all strings): "format", "config" (JSON), "tokenizer" (JSON),
 * "train" (JSON: step, RNG state, data position, hyperparameters), "checksum" (FNV-1a 64 of
 * the tensor bytes, then of every other metadata key and value: see checkpoint.c).
 * Optimizer moments are stored as "optim.m.<name>"/"optim.v.<name>" when given. Written
 * atomically. */
struct mx_ckpt_extra {
    const cJSON *tokenizer; /* required */
    const cJSON *train;     /* may be NULL */
    const float *adam_m, *adam_v; /* n_params each, or NULL */
};
int ckpt_write(const char *path, const struct mx_model *m, const struct mx_ckpt_extra *x,
               struct mx_error *err);

/* Reading: ckpt_open parses and validates the whole file (header bounds, JSON, dtypes,
 * shapes, offsets, size, checksum) and returns the metadata; ckpt_load_model builds the model
 * from the stored config and copies the parameters; ckpt_load_moments copies AdamW moments. */
struct mx_ckpt {
    char path[512];
    char *buf; /* the whole file */
    size_t len;
    size_t data_off; /* start of tensor data */
    cJSON *header;
    cJSON *config, *tokenizer, *train; /* parsed metadata (train may be NULL) */
};
int ckpt_open(struct mx_ckpt *c, const char *path, struct mx_error *err);
void ckpt_close(struct mx_ckpt *c);
int ckpt_load_model(struct mx_ckpt *c, struct mx_model *m, struct mx_error *err);
int ckpt_load_moments(struct mx_ckpt *c, const struct mx_model *m, float *adam_m, float *adam_v,
                      struct mx_error *err);

#endif
