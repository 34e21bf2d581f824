/* tok_internal.h — the tokenizer struct and the spm entry points, shared by tokenizer.c (char,
 * byte, dispatch, JSON, the --tokenizer flag) and tok_spm.c (SentencePiece). Private to
 * tokenizer/: other folders include only tokenizer.h. */
#ifndef MIXLM_TOK_INTERNAL_H
#define MIXLM_TOK_INTERNAL_H

#include "tokenizer/tokenizer.h"

enum tok_type {
    TOK_CHAR,
    TOK_BYTE,
    TOK_SPM,
};

/* Code points below this are looked up in a direct table; the rest by binary search. */
#define TOK_CHAR_DIRECT 0x800

struct tokenizer {
    enum tok_type type;
    int vocab;
    /* char: cps (vocab) sorted ascending; direct[cp] = id or -1 for cp < TOK_CHAR_DIRECT */
    uint32_t *cps;
    int32_t *direct;
    /* spm: the loaded processor, the model file's bytes, its name relative to a run dir */
    struct spm_shim *spm;
    char *model_bytes;
    size_t model_len;
    char model_name[256];
};

/* Decode one UTF-8 sequence at s[i] (strict); returns its length 1..4, 0 when invalid. */
int tok_utf8_next(const unsigned char *s, size_t len, size_t i, uint32_t *cp);
/* Encode cp as UTF-8 into out (>= 4 bytes); returns the length. */
int tok_utf8_put(uint32_t cp, char *out);

int tok_spm_encode(const struct tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
                   struct mx_error *err);
int tok_spm_decode(const struct tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len,
                   struct mx_error *err);
int tok_spm_piece(const struct tokenizer *t, int32_t id, char *buf, size_t cap);
void tok_spm_release(struct tokenizer *t);
/* Reject what SentencePiece cannot round-trip: invalid UTF-8 and U+2581. `what` names the text
 * in the message ("the text", a path). */
int tok_spm_check_text(const char *text, size_t len, const char *what, struct mx_error *err);

#endif
