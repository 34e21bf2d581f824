/* data.h — token files (a 32-byte header + little-endian ids, memory-mapped read-only), text ->
 * token file preparation, the train/val split and batch sampling (nanoGPT's random windows) plus
 * sequential windows for full-pass evaluation. Not a tokenizer (tokenizer/) and no shuffling
 * epochs, document boundaries or prefetch threads: batches are cheap copies out of the map.
 *
 * Token file layout (all little-endian):
 *   0  char[8] magic "MIXLMTOK"
 *   8  u32 version (1)
 *  12  u32 header size in bytes (32)
 *  16  u32 vocab size (ids are in [0, vocab))
 *  20  u32 id width in bytes: 2 when vocab <= 65536, else 4
 *  24  u64 count of ids
 *  32  ids (count * width bytes; the file is exactly that long)
 */
#ifndef MIXLM_DATA_H
#define MIXLM_DATA_H

#include "core/core.h"
#include "tokenizer/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

#define MX_TOKFILE_MAGIC "MIXLMTOK"
#define MX_TOKFILE_VERSION 1
#define MX_TOKFILE_HEADER 32

/* An open token file. Fields are read-only for callers. */
struct mx_tokfile {
    const unsigned char *map; /* the whole file, mmap'd read-only (NULL when closed) */
    size_t map_len;
    const unsigned char *ids; /* map + header */
    size_t count;             /* number of ids */
    int vocab;                /* every id is in [0, vocab) (checked at open) */
    int id_bytes;             /* 2 or 4 */
};

/* Write n ids (each in [0, vocab), 1 <= vocab <= MX_TOK_VOCAB_MAX) atomically to path, 16-bit when
 * vocab <= 65536. Errors: an id out of range (names it and its position), I/O. */
int data_write_tokens(const char *path, const int32_t *ids, size_t n, int vocab, struct mx_error *err);

/* Map path read-only and validate it: magic, version, header size, id width matching vocab, file
 * size == header + count * width, and every id < vocab (one pass at open, so data_get never sees
 * a bad id). Errors name the file, what is wrong and the fix (re-run data preparation). On error
 * f is left closed (data_close is still safe). */
int data_open(struct mx_tokfile *f, const char *path, struct mx_error *err);
void data_close(struct mx_tokfile *f); /* safe on a closed or zeroed struct */
/* Id at position i < f->count (checked: out of range is a bug and aborts). */
int32_t data_get(const struct mx_tokfile *f, size_t i);

/* Read the text file, encode it with tok (progress line for large inputs), write the token file.
 * Errors: missing or empty text file, encoding errors (wrapped with the path), I/O.
 * (data_open the result for its count.) */
int data_prepare_text(const char *text_path, const struct tokenizer *tok, const char *out_tokfile,
                      struct mx_error *err);

/* Train/val split as nanoGPT: train = [0, train_end), val = [train_end, count), with
 * train_end = floor(count * (1 - val_frac)). Precondition 0 <= val_frac < 1 (validated by the
 * caller's flag parsing). */
void data_split(size_t count, double val_frac, size_t *train_end);

/* B random windows from [begin, end): each start uniform in [begin, end - T - 1], so x and the
 * targets y (x shifted by one) stay inside the range. x, y: (B,T) overwritten. Deterministic for
 * a given rng state; advances rng by B draws. Errors: a range shorter than T + 1 tokens (names
 * both counts, suggests a smaller --context or more data); begin/end outside the file. */
int data_batch(const struct mx_tokfile *f, size_t begin, size_t end, int B, int T, struct mx_rng *rng,
               int32_t *x, int32_t *y, struct mx_error *err);

/* As data_batch, but every window starts at a multiple of `align` (the data are sequences of
 * align tokens; with T = align - 1 each window is one whole sequence): starts uniform over the
 * multiples s with begin <= s and s + T + 1 <= end. align <= 1: data_batch. Errors: as
 * data_batch, and no such start in the range (names align, T and the range). */
int data_batch_aligned(const struct mx_tokfile *f, size_t begin, size_t end, int B, int T, long align,
                       struct mx_rng *rng, int32_t *x, int32_t *y, struct mx_error *err);

/* Sequential windows for a full pass: window k of [begin, end) starts at begin + k*T; there are
 * floor((end - begin - 1) / T) of them (0 when the range is shorter than T + 1). */
size_t data_num_windows(size_t begin, size_t end, int T);
/* x = ids[start, start+T), y = ids[start+1, start+T+1); x, y: (T) overwritten.
 * Precondition start + T + 1 <= f->count (checked: a violation is a bug and aborts). */
void data_window(const struct mx_tokfile *f, size_t start, int T, int32_t *x, int32_t *y);

/* ---- the associative-recall task (data/recall.c) ---------------------------------------------
 * Multi-query associative recall (MQAR, Zoology: Arora et al. 2023; Based) as text, one
 * sequence per line, one Unicode code point per token (train it with --tokenizer char):
 *   positions 0 .. 2K-1      K pairs "k v": K distinct keys, each followed by its value
 *   positions 2K .. T-1      filler '.' with Q queries "k v" at random even offsets from 2K:
 *                            Q distinct keys of the K pairs (random order), each followed by
 *                            the value it had in its pair
 *   position T               '\n'
 * so a line is T + 1 tokens: train with --context T --align T+1 and every training window is
 * one whole sequence. Key i is U+4E00 + i, value j is U+AC00 + j (i, j < V; values drawn with
 * replacement). Only the value after a query key can be predicted from the context: that is
 * what recall accuracy scores (infer_recall). */
#define MX_RECALL_KEY0 0x4E00u   /* key i: U+4E00 + i (CJK ideographs) */
#define MX_RECALL_VALUE0 0xAC00u /* value j: U+AC00 + j (Hangul syllables) */
#define MX_RECALL_FILLER '.'
#define MX_RECALL_VOCAB_MAX 8192

struct mx_recall_opts {
    int T;        /* tokens per sequence before its newline */
    int pairs;    /* K, 1 <= K <= V */
    int queries;  /* Q, 1 <= Q <= K and 2K + 2Q <= T */
    int vocab;    /* V keys and V values, <= MX_RECALL_VOCAB_MAX */
    long seqs;    /* sequences (lines) */
    uint64_t seed;
};
/* T 256, 16 pairs, 16 queries, V 64, 2000 sequences, seed 1. */
void data_recall_default(struct mx_recall_opts *o);
/* Check the sizes; errors name the flag, its value, the limit and a fix. */
int data_recall_check(const struct mx_recall_opts *o, struct mx_error *err);
/* Sequence number `index` (deterministic in seed and index alone) as code points into cp
 * (T + 1 of them, the last '\n'). */
void data_recall_sequence(const struct mx_recall_opts *o, long index, uint32_t *cp);
/* Write o->seqs sequences as UTF-8 text to path, atomically. */
int data_recall_write(const char *path, const struct mx_recall_opts *o, struct mx_error *err);

/* What a token is in the recall task, from its code point. */
enum mx_recall_sym { MX_RECALL_OTHER, MX_RECALL_KEY, MX_RECALL_VALUE, MX_RECALL_FILL, MX_RECALL_EOL };
enum mx_recall_sym data_recall_classify(uint32_t cp);
/* Mark the scored positions of one sequence of n symbols (no newline): is_answer[p] = 1 when
 * sym[p] is a value and sym[p-1] a key seen at an earlier position of the sequence (a query),
 * else 0. Returns the count of answers. */
int data_recall_answers(const uint32_t *cp, int n, unsigned char *is_answer);
/* The in-sequence guess, the baseline above chance that needs no recall: a predictor that knows
 * the values of the sequence's pairs (the value after each key's first occurrence) before an
 * answer, but not which key holds which, answers with the most frequent of them (ties split
 * evenly: its expected score). Returns its expected number of right answers among the answers
 * of is_answer (data_recall_answers) in the n symbols cp. With values drawn from V and K pairs it
 * averages E[largest count of one value] / K, ~1/K for V >> K. */
double data_recall_guess(const uint32_t *cp, int n, const unsigned char *is_answer);
/* The code point of each of the V token ids of tok (tok_code_point; 0 for a multi-character
 * token), freed with mx_free; *n_kv = how many are recall keys or values (0: not a recall run). */
uint32_t *data_recall_token_table(const struct tokenizer *tok, int V, int *n_kv);
/* The answer-only loss (`train --loss-on recall`): windows x, y (B,T) of recall sequences
 * (each x row starts at a sequence; y is x shifted by one token), cp_of (V) the code point of
 * each token id (tok_code_point). Every target of y that is not an answer of data_recall_answers
 * over the row's T + 1 symbols (x[0], y[0..T-1]) becomes NN_CE_IGNORE (-1). Returns the
 * targets kept. */
long data_recall_mask_targets(const uint32_t *cp_of, const int32_t *x, int32_t *y, int B, int T);

#endif
