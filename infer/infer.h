/* infer.h — using a trained run: loading it, sampling tokens, generating text (with each
 * mixer's incremental state where it has one, else recomputing over the window), and
 * full-pass evaluation (loss, perplexity, bits per character / byte).
 * Not training (train/) and not argument parsing (cli/). */
#ifndef MIXLM_INFER_H
#define MIXLM_INFER_H

#include "data/data.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

/* A loaded run: model (parameters from the checkpoint), tokenizer, and the step it was saved
 * at (mixers with step-dependent randomness use it in eval). */
struct mx_run {
    char dir[512];
    struct mx_model m;
    struct tokenizer *tok;
    long step;
};
/* Errors: missing directory or checkpoint (names the path and how to create one), corrupt
 * checkpoint, bidirectional mixer (cannot be used as a language model). */
int infer_load_run(struct mx_run *r, const char *dir, struct mx_error *err);
void infer_free_run(struct mx_run *r);

struct mx_sampler {
    double temperature; /* 0: greedy (argmax) */
    int top_k;          /* 0: off */
    double top_p;       /* 1: off */
    double repetition_penalty; /* 1: off (CTRL-style: divide positive logits, multiply negative) */
    struct mx_rng rng;
};
/* Sample an id from logits (V) under the sampler's rules. work: 2*V floats. `recent` (n_recent
 * ids) gets the repetition penalty. Deterministic for a given rng state. */
int infer_sample(struct mx_sampler *s, const float *logits, int V, const int32_t *recent, int n_recent,
                 float *work);

/* Generate up to n_new tokens after the prompt ids (n_prompt >= 1). Each new token is passed
 * to emit (may be NULL) as it is produced; stops early when emit returns non-zero. use_cache:
 * 1 = incremental decoding through the mixers' step (when every layer has one), 0 = recompute
 * the full forward over the last block_size tokens for every token. out_ids gets the new ids
 * (n_new capacity); returns the count produced, or -1 with err (prompt longer than the
 * context with a learned-position model, out of memory). */
long infer_generate(struct mx_run *r, const int32_t *prompt, size_t n_prompt, long n_new,
                    struct mx_sampler *s, int use_cache, int32_t *out_ids,
                    int (*emit)(void *ctx, int32_t id), void *ctx, struct mx_error *err);

/* Full pass over ids [begin, end) of a token file in windows of T (stride = T: non-overlapping;
 * stride < T: every window scores only its last `stride` targets, which then all see at least
 * T - stride tokens of context). */
struct mx_eval_result {
    double loss;        /* mean nats per token */
    double ppl;         /* exp(loss) */
    size_t tokens;      /* targets scored */
    size_t chars, bytes; /* characters and bytes of the text those targets decode to */
    double bits_per_char, bits_per_byte;
    double tokens_per_s;
    double seconds;
};
int infer_eval(struct mx_run *r, const struct mx_tokfile *f, size_t begin, size_t end, int T,
               int stride, int B, struct mx_eval_result *res, struct mx_error *err);

#endif
