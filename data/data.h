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

/* Sequential windows for a full pass: window k of [begin, end) starts at begin + k*T; there are
 * floor((end - begin - 1) / T) of them (0 when the range is shorter than T + 1). */
size_t data_num_windows(size_t begin, size_t end, int T);
/* x = ids[start, start+T), y = ids[start+1, start+T+1); x, y: (T) overwritten.
 * Precondition start + T + 1 <= f->count (checked: a violation is a bug and aborts). */
void data_window(const struct mx_tokfile *f, size_t start, int T, int32_t *x, int32_t *y);

#endif
