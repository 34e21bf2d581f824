/* infer.h — using a trained run: loading it, sampling tokens, generating text (with each
 * mixer's incremental state where it has one, else recomputing over the window), and
 * full-pass evaluation (loss, perplexity, bits per character / byte).
 * Not training (train/) and not argument parsing (cli/). */
#ifndef MIXLM_INFER_H
#define MIXLM_INFER_H

#include "data/data.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

/* A loaded run: model (parameters from the checkpoint; no gradient buffer: inference only),
 * tokenizer, and the step it was saved at (mixers with step-dependent randomness use it). */
struct mx_run {
    char dir[512];
    struct mx_model m;
    struct tokenizer *tok;
    long step;       /* training steps completed when the checkpoint was saved */
    long mixer_step; /* the step index mixers' randomness is drawn for: that of the last update */
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
/* Sample an id from logits (V) under the sampler's rules, in this order: repetition penalty on
 * the distinct ids of `recent` (n_recent ids; may be NULL with 0), temperature (0: argmax, and
 * the rng is not drawn), top-k (ties at the k-th value kept), top-p on what top-k left (the
 * smallest most-likely set whose mass reaches p, ties at the boundary kept), then one uniform
 * draw from the renormalised rest. work: 2*V + 16 floats. Deterministic for a given rng state. */
int infer_sample(struct mx_sampler *s, const float *logits, int V, const int32_t *recent, int n_recent,
                 float *work);

/* ---- generation ------------------------------------------------------------------------------
 * Three ways to produce the logits of the next token:
 *
 *   INFER_CACHE     incremental decoding: each new token goes through model_step, i.e. every
 *                   layer's mixer `step` with its own state (dense/sparse: a KV cache, `window`
 *                   and `dilated`: a ring buffer of the window's reach, kernel mixers: an O(1)
 *                   recurrent state, the others: whatever their step keeps). Cost per token is
 *                   one token through the network. Needs a `step` in every layer; when a layer
 *                   has none (a mixer with no exact incremental form) it falls back to
 *                   INFER_SLIDE, which is always correct, just slower.
 *   INFER_RECOMPUTE the full forward over exactly the context the cache would hold, every token.
 *                   The cache's reference: same tokens as INFER_CACHE for the same seed (up to
 *                   round-off between step and forward, which only matters at exact ties).
 *   INFER_SLIDE     nanoGPT's sampler: the full forward over the last block_size tokens, every
 *                   token. The window slides by one, so every token past the context still sees
 *                   block_size tokens of history.
 *
 * Past the context (learned positions end at block_size): once the context holds block_size
 * tokens, INFER_CACHE and INFER_RECOMPUTE shift it: they keep the last INFER_KEEP(block_size) =
 * block_size/2 tokens, re-process them from position 0 (the cache is cleared and refilled with
 * model_step) and continue. Each shift costs block_size/2 steps and buys block_size/2 new tokens,
 * so cached generation stays ~2 steps per token at worst; right after a shift a token sees only
 * block_size/2 tokens of history (INFER_SLIDE always sees block_size). Up to block_size tokens in
 * all (prompt + generated), the three modes see the same context and give the same tokens. */
enum infer_mode { INFER_RECOMPUTE = 0, INFER_CACHE = 1, INFER_SLIDE = 2 };
#define INFER_KEEP(block_size) ((block_size) / 2 > 0 ? (block_size) / 2 : 1)

/* What one generation did and cost (filled when a stats pointer is given). */
struct infer_gen_stats {
    int mode;              /* the mode actually used (INFER_CACHE may fall back to INFER_SLIDE) */
    long prompt_tokens;    /* tokens processed before the first new token could be sampled */
    double prompt_s;       /* seconds for them (prefill steps, or the first forward) */
    long gen_tokens;       /* tokens produced */
    double gen_s;          /* seconds from the first logits to the end (sampling included) */
    long shifts;           /* context shifts past block_size (INFER_CACHE / INFER_RECOMPUTE) */
    long shift_tokens;     /* tokens re-processed by those shifts */
    size_t state_bytes;    /* the generation cache (INFER_CACHE), 0 otherwise */
    size_t act_bytes;      /* activations of the full forward (RECOMPUTE / SLIDE), 0 otherwise */
    double rss_mb;         /* resident memory of the process at the end, buffers still held */
};

/* Generate up to n_new tokens after the prompt ids (n_prompt >= 1, each id < vocab) in the given
 * mode (see above). Each new token is passed to emit (may be NULL) as it is produced; stops early
 * when emit returns non-zero (that token is counted). out_ids (n_new capacity) gets the new ids;
 * stats (may be NULL) gets timings and sizes. Sampling state lives in s (its rng advances).
 * Returns the count produced, or -1 with err: empty prompt, a prompt longer than the model's
 * context (learned positions: names both lengths), out of memory for the cache. */
long infer_generate(struct mx_run *r, const int32_t *prompt, size_t n_prompt, long n_new,
                    struct mx_sampler *s, int mode, int32_t *out_ids,
                    int (*emit)(void *ctx, int32_t id), void *ctx, struct infer_gen_stats *stats,
                    struct mx_error *err);
const char *infer_mode_name(int mode); /* "cache", "recompute", "slide" */

/* Streaming text out of token pieces: a UTF-8 character may be split over several pieces (byte
 * tokens, SentencePiece byte fallback). infer_utf8_feed passes complete characters through,
 * holds back the start of a character until its last byte arrives, and writes U+FFFD (EF BF BD)
 * for each byte sequence that can never complete (a stray continuation byte, a byte never valid
 * in UTF-8, a start cut off by a byte that does not continue it; overlongs and surrogates are
 * refused at their first impossible byte, as WHATWG/Unicode's "maximal subpart"). out needs
 * 3 * (n + 4) bytes; returns the bytes written. infer_utf8_flush ends the stream: a held-back
 * incomplete character becomes one U+FFFD (out: 3 bytes). Zero-initialise the struct. */
struct infer_utf8 {
    unsigned char pend[4];
    int n, need; /* bytes held, bytes the held character needs */
};
size_t infer_utf8_feed(struct infer_utf8 *u, const char *in, size_t n, char *out);
size_t infer_utf8_flush(struct infer_utf8 *u, char *out);

/* Time generation of `tokens` new tokens after the prompt ids (n) in each of the nm (1..8) modes,
 * `repeats` interleaved rounds, every run from a copy of s0; print to stdout a table (or with
 * json an array): prompt and generation tokens/s (medians), ms/token, shifts, cache and
 * activation MB, RSS, speed relative to the first mode and whether the tokens agree with it
 * over the contexts both modes share. Returns 0, or -1 with err from infer_generate. */
int infer_bench(struct mx_run *r, const int32_t *ids, size_t n, long tokens, const struct mx_sampler *s0,
                const int *modes, int nm, int repeats, int json, struct mx_error *err);

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

/* Recall accuracy on the associative-recall task (data.h: `mixlm data recall`): the sequences
 * (lines) in ids [begin, end) of a token file whose tokens are one code point each (--tokenizer
 * char); a range that starts inside a line skips to the next one, an unfinished last line is
 * dropped. Each sequence of n symbols goes through the model as one window of n tokens (n <=
 * the model's context), B sequences per forward; at every answer (data_recall_answers: the value
 * after a query key) the prediction is the argmax over the whole vocabulary at the position
 * before it. Errors: a tokenizer whose tokens are not single code points, no key/value symbols
 * in the vocabulary, sequences of different lengths, a sequence longer than the context, no
 * complete sequence in the range. Beside the accuracy: the in-sequence guess (data.h) on the same
 * answers, the baseline above chance that needs no recall. */
struct mx_recall_result {
    size_t sequences, answers, correct;
    double accuracy; /* correct / answers */
    double guess;    /* the in-sequence guess's expected accuracy on the same answers (data_recall_guess) */
    double seconds;
};
int infer_recall(struct mx_run *r, const struct mx_tokfile *f, size_t begin, size_t end, int B,
                 struct mx_recall_result *res, struct mx_error *err);

#endif
