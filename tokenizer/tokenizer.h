/* tokenizer.h — text <-> token ids behind one opaque handle: `char` (the distinct Unicode code
 * points of a corpus), `byte` (256 symbols) and `spm` (SentencePiece BPE/unigram through
 * spm_shim.cc). Every kind round-trips exactly: tok_decode(tok_encode(x)) == x byte for byte.
 * It is not a data pipeline (data/ owns token files) and does no normalisation of any kind. */
#ifndef MIXLM_TOKENIZER_H
#define MIXLM_TOKENIZER_H

#include "core/core.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

struct tokenizer; /* opaque */

/* Largest vocabulary any kind accepts (ids must fit int32 and token files). */
#define MX_TOK_VOCAB_MAX 1000000
/* Smallest SentencePiece vocabulary: 256 byte-fallback pieces + <unk> + at least one more. */
#define MX_TOK_SPM_VOCAB_MIN 258

/* ---- creation ------------------------------------------------------------------------------- */

/* Vocabulary = the distinct code points of text (len bytes of UTF-8), sorted ascending; id i is
 * the i-th smallest. Errors: empty text; invalid UTF-8 (names the byte offset, suggests
 * --tokenizer byte); a NUL character (binary data, suggests --tokenizer byte). */
int tok_create_char(struct tokenizer **t, const char *text, size_t len, struct mx_error *err);
/* 256 symbols: id == byte value. Never fails (err unused, kept for symmetry). */
int tok_create_byte(struct tokenizer **t, struct mx_error *err);
/* Train a SentencePiece model of exactly `vocab` pieces (type "bpe" or "unigram") on the text
 * file and write it atomically to model_out (nothing is written on error). The trainer options
 * are documented in spm_shim.cc. Errors: missing/empty file, invalid UTF-8 or U+2581 in the
 * text (see tok_encode), unknown type, vocab above MX_TOK_VOCAB_MAX or below 257 + the number
 * of distinct characters (each gets a piece), a vocab larger than the text can fill (the
 * message gives the largest that works). */
int tok_spm_train(const char *text_path, int vocab, const char *type, const char *model_out,
                  struct mx_error *err);
/* As tok_spm_train, from text already in memory. */
int tok_spm_train_text(const char *text, size_t len, int vocab, const char *type, const char *model_out,
                       struct mx_error *err);
/* Load a SentencePiece .model file (kept in memory, so tok_save_files can copy it later).
 * Errors: missing file, not a SentencePiece model (corrupt/truncated). */
int tok_create_spm(struct tokenizer **t, const char *model_path, struct mx_error *err);
/* Parse a CLI --tokenizer value and build the tokenizer:
 *   char         vocabulary from text (needs text)
 *   byte         256 byte values
 *   spm:PATH     load a SentencePiece model
 *   bpe:N        train an N-piece BPE model on the training text, written to run_dir/tokenizer.model
 *   unigram:N    same with a unigram model
 * text/len is the training text if already read (may be NULL: then text_path is read when needed).
 * run_dir is created if missing (needed for bpe:/unigram: only). Unknown values give an error
 * listing these forms. */
int tok_create_from_flag(struct tokenizer **t, const char *flag, const char *text_path, const char *text,
                         size_t len, const char *run_dir, struct mx_error *err);
void tok_free(struct tokenizer *t); /* NULL is fine */

/* ---- queries ------------------------------------------------------------------------------- */
const char *tok_kind(const struct tokenizer *t); /* "char" | "byte" | "spm" */
int tok_vocab_size(const struct tokenizer *t);

/* ---- encode / decode ------------------------------------------------------------------------
 * tok_encode: *ids malloc'd (mx_free; non-NULL even when *n == 0), *n their count.
 *   char: a character outside the vocabulary is an error naming it (U+XXXX), its byte offset
 *     and the fix (build the vocabulary from text that contains it, or use byte/spm).
 *   char, spm: invalid UTF-8 is an error naming the byte offset (suggests --tokenizer byte).
 *   spm: U+2581 (LOWER ONE EIGHTH BLOCK) is an error naming its offset: SentencePiece uses it
 *     as its space marker and would decode it as a space, breaking the exact round trip.
 *   spm: the text is encoded in 4 KiB chunks cut after newlines (a longer line is cut before
 *     a word's leading space), in parallel (OpenMP); inputs of 4 MiB or more get a progress line
 *     on stderr. For BPE models trained here the ids equal a one-call encode (no piece holds a
 *     newline or crosses into a word's leading space); unigram may break exact score ties
 *     differently and a line of over 2 KiB without spaces is cut at a character boundary.
 *     All of these round-trip exactly.
 * tok_decode: *text malloc'd (mx_free), NUL-terminated (not counted in *len). An id outside
 *   [0, vocab) is an error naming it, its position and the vocabulary size. For char/byte the
 *   result is the concatenation of tok_piece; spm decodes through SentencePiece. */
int tok_encode(const struct tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
               struct mx_error *err);
int tok_decode(const struct tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len,
               struct mx_error *err);
/* The bytes of one token, for streaming output; writes at most cap bytes (no NUL) and returns
 * the length, or -1 for an id outside [0, vocab) or a piece longer than cap. 64 bytes always
 * suffice for char/byte; spm pieces can be longer (use 256). For spm a byte-fallback token is a
 * single raw byte, so a multi-byte character may arrive over several calls. */
int tok_piece(const struct tokenizer *t, int32_t id, char *buf, size_t cap);
/* The code point of a token whose piece is exactly one UTF-8 character (up to 3 bytes), else 0. */
uint32_t tok_code_point(const struct tokenizer *t, int32_t id);

/* ---- serialisation (checkpoint metadata) -----------------------------------------------------
 * tok_to_json: a new cJSON object (caller deletes):
 *   char -> {"type":"char","chars":"<the vocabulary as one UTF-8 string>"}
 *   byte -> {"type":"byte"}
 *   spm  -> {"type":"spm","model":"<file name relative to the run dir>"}
 * tok_from_json: the inverse; an spm model is resolved relative to run_dir. Errors name the
 *   field and what was expected (missing type, unknown type, chars not strictly ascending
 *   valid UTF-8, model file missing or corrupt).
 * tok_save_files: spm -> writes the model bytes atomically to run_dir/tokenizer.model and
 *   stores that name; char/byte -> no-op. run_dir must exist. */
cJSON *tok_to_json(const struct tokenizer *t);
int tok_from_json(struct tokenizer **t, const cJSON *j, const char *run_dir, struct mx_error *err);
int tok_save_files(struct tokenizer *t, const char *run_dir, struct mx_error *err);

/* ---- unit counts for metrics ----------------------------------------------------------------
 * Number of Unicode characters in text: bytes that do not start with 10xxxxxx (for invalid
 * UTF-8 this counts each stray lead byte as one character). Bytes are simply len. */
size_t tok_count_chars(const char *text, size_t len);

/* Validate UTF-8 strictly (no overlongs, no surrogates, <= U+10FFFF). Returns the byte offset
 * of the first invalid sequence, or len when all of it is valid. */
size_t tok_utf8_check(const char *text, size_t len);

#endif
