/* spm_shim.h — a small C API over Debian's libsentencepiece (C++), private to tokenizer/.
 * C++ exceptions and util::Status errors are caught inside the shim and come back as -1 plus
 * a message in `msg` (always NUL-terminated, truncated to `cap`); nothing C++ leaks into C.
 * It is not the tokenizer interface (tokenizer.h is): no UTF-8 checks, no files written here.
 * The trainer options (and why each is set) are documented in spm_shim.cc. */
#ifndef MIXLM_SPM_SHIM_H
#define MIXLM_SPM_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct spm_shim; /* one loaded SentencePieceProcessor */

/* Train on `text` (len bytes; lines split at '\n', over-long lines cut at spaces) with
 * model_type "bpe" or "unigram" and exactly `vocab` pieces. On success *model (malloc'd, free
 * with spm_shim_free_bytes) holds the serialised ModelProto, *model_len its size. */
int spm_shim_train(const char *text, size_t len, int vocab, const char *type, int threads,
                   char **model, size_t *model_len, char *msg, size_t cap);
/* Load from a serialised ModelProto (the bytes of a .model file). */
int spm_shim_load(struct spm_shim **s, const char *model, size_t model_len, char *msg, size_t cap);
void spm_shim_free(struct spm_shim *s);
void spm_shim_free_bytes(void *p);

int spm_shim_vocab_size(const struct spm_shim *s);
/* Encode len bytes; *ids malloc'd (spm_shim_free_bytes), *n their count. Thread-safe on one
 * loaded model (SentencePieceProcessor::Encode is const). */
int spm_shim_encode(const struct spm_shim *s, const char *text, size_t len, int32_t **ids, size_t *n,
                    char *msg, size_t cap);
/* Decode n ids (each in [0, vocab), caller-checked); *text malloc'd and NUL-terminated. */
int spm_shim_decode(const struct spm_shim *s, const int32_t *ids, size_t n, char **text, size_t *len,
                    char *msg, size_t cap);
/* The bytes this id contributes to decoded text, ignoring context: a byte piece <0xAB> is that
 * byte, a control piece is empty, an ordinary piece has U+2581 replaced by a space, the unknown
 * piece decodes as SentencePiece does (" \u2047 "). Returns length (<= cap) or -1 if it does
 * not fit or id is out of range. */
int spm_shim_piece_bytes(const struct spm_shim *s, int id, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
