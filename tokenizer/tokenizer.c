/* tokenizer.c — the tokenizer handle: the `char` and `byte` kinds, dispatch to SentencePiece
 * (tok_spm.c), JSON for checkpoint metadata, the --tokenizer flag and UTF-8 helpers.
 * Not SentencePiece itself (tok_spm.c, spm_shim.cc) and not token files (data/). */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ----------------------------------------------------------------------------------- */

int tok_utf8_next(const unsigned char *s, size_t len, size_t i, uint32_t *cp)
{
    unsigned c = s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int n;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len - i < (size_t)n)
        return 0;
    for (int k = 1; k < n; k++) {
        unsigned b = s[i + k];
        if ((b & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (b & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0; /* overlong, out of range, surrogate */
    *cp = v;
    return n;
}

int tok_utf8_put(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t tok_utf8_check(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) { /* ASCII fast path */
            i++;
            continue;
        }
        uint32_t cp;
        int k = tok_utf8_next(s, len, i, &cp);
        if (!k)
            return i;
        i += (size_t)k;
    }
    return len;
}

size_t tok_count_chars(const char *text, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)text[i] & 0xC0) != 0x80;
    return n;
}

/* "U+00E9 'é'" (the glyph only when printable), for error messages. */
static void describe_cp(uint32_t cp, char *buf, size_t cap)
{
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
        snprintf(buf, cap, "U+%04X", (unsigned)cp);
        return;
    }
    char g[5];
    int k = tok_utf8_put(cp, g);
    g[k] = 0;
    snprintf(buf, cap, "U+%04X '%s'", (unsigned)cp, g);
}

/* ---- char ------------------------------------------------------------------------------------ */

static struct tokenizer *tok_new(enum tok_type type, int vocab)
{
    struct tokenizer *t = mx_xcalloc(sizeof *t);
    t->type = type;
    t->vocab = vocab;
    return t;
}

/* Build a char tokenizer from a sorted, distinct code point list (takes ownership). */
static struct tokenizer *tok_char_from_cps(uint32_t *cps, int n)
{
    struct tokenizer *t = tok_new(TOK_CHAR, n);
    t->cps = cps;
    t->direct = mx_xmalloc(TOK_CHAR_DIRECT * sizeof *t->direct);
    for (int i = 0; i < TOK_CHAR_DIRECT; i++)
        t->direct[i] = -1;
    for (int i = 0; i < n && cps[i] < TOK_CHAR_DIRECT; i++)
        t->direct[cps[i]] = i;
    return t;
}

static int char_id(const struct tokenizer *t, uint32_t cp)
{
    if (cp < TOK_CHAR_DIRECT)
        return t->direct[cp];
    int lo = 0, hi = t->vocab - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (t->cps[mid] == cp)
            return mid;
        if (t->cps[mid] < cp)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

int tok_create_char(struct tokenizer **t, const char *text, size_t len, struct mx_error *err)
{
    *t = NULL;
    if (len == 0)
        return mx_errorf(err, "cannot build a char tokenizer from empty text; give a non-empty training file");
    /* One bit per code point (136 KiB) marks what occurs; sorted order then comes for free. */
    size_t words = (0x110000 + 63) / 64;
    uint64_t *seen = mx_xcalloc(words * sizeof *seen);
    const unsigned char *s = (const unsigned char *)text;
    int rc = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = tok_utf8_next(s, len, i, &cp);
        if (!k) {
            rc = mx_errorf(err,
                           "invalid UTF-8 at byte offset %zu (byte 0x%02X): the char tokenizer needs UTF-8 "
                           "text; use --tokenizer byte for arbitrary bytes",
                           i, s[i]);
            goto out;
        }
        if (cp == 0) {
            rc = mx_errorf(err,
                           "NUL character at byte offset %zu: this looks like binary data, not text; use "
                           "--tokenizer byte for arbitrary bytes",
                           i);
            goto out;
        }
        seen[cp >> 6] |= 1ull << (cp & 63);
        i += (size_t)k;
    }
    int n = 0;
    for (size_t w = 0; w < words; w++)
        n += __builtin_popcountll(seen[w]);
    uint32_t *cps = mx_xmalloc((size_t)n * sizeof *cps);
    int j = 0;
    for (size_t w = 0; w < words; w++)
        for (uint64_t m = seen[w]; m; m &= m - 1)
            cps[j++] = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(m));
    *t = tok_char_from_cps(cps, n);
out:
    mx_free(seen);
    return rc;
}

static int char_encode(const struct tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
                       struct mx_error *err)
{
    int32_t *out = mx_xmalloc((len ? len : 1) * sizeof *out);
    const unsigned char *s = (const unsigned char *)text;
    size_t m = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = tok_utf8_next(s, len, i, &cp);
        if (!k) {
            mx_free(out);
            return mx_errorf(err,
                             "invalid UTF-8 at byte offset %zu (byte 0x%02X): the char tokenizer needs UTF-8 "
                             "text; use --tokenizer byte for arbitrary bytes",
                             i, s[i]);
        }
        int id = char_id(t, cp);
        if (id < 0) {
            char d[32];
            describe_cp(cp, d, sizeof d);
            mx_free(out);
            return mx_errorf(err,
                             "character %s at byte offset %zu is not in the char tokenizer's vocabulary "
                             "(%d characters, built from the training text); build the vocabulary from text "
                             "that contains it, or use --tokenizer byte or bpe:N",
                             d, i, t->vocab);
        }
        out[m++] = id;
        i += (size_t)k;
    }
    *ids = out;
    *n = m;
    return 0;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

int tok_create_byte(struct tokenizer **t, struct mx_error *err)
{
    (void)err;
    *t = tok_new(TOK_BYTE, 256);
    return 0;
}

void tok_free(struct tokenizer *t)
{
    if (!t)
        return;
    mx_free(t->cps);
    mx_free(t->direct);
    tok_spm_release(t);
    mx_free(t);
}

const char *tok_kind(const struct tokenizer *t)
{
    switch (t->type) {
    case TOK_CHAR:
        return "char";
    case TOK_BYTE:
        return "byte";
    case TOK_SPM:
        return "spm";
    }
    return "?";
}

int tok_vocab_size(const struct tokenizer *t)
{
    return t->vocab;
}

int tok_encode(const struct tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
               struct mx_error *err)
{
    *ids = NULL;
    *n = 0;
    switch (t->type) {
    case TOK_CHAR:
        return char_encode(t, text, len, ids, n, err);
    case TOK_BYTE: {
        int32_t *out = mx_xmalloc((len ? len : 1) * sizeof *out);
        for (size_t i = 0; i < len; i++)
            out[i] = (unsigned char)text[i];
        *ids = out;
        *n = len;
        return 0;
    }
    case TOK_SPM:
        return tok_spm_encode(t, text, len, ids, n, err);
    }
    return mx_errorf(err, "internal: unknown tokenizer type %d", (int)t->type);
}

int tok_piece(const struct tokenizer *t, int32_t id, char *buf, size_t cap)
{
    if (id < 0 || id >= t->vocab)
        return -1;
    switch (t->type) {
    case TOK_CHAR: {
        char tmp[4];
        int k = tok_utf8_put(t->cps[id], tmp);
        if ((size_t)k > cap)
            return -1;
        memcpy(buf, tmp, (size_t)k);
        return k;
    }
    case TOK_BYTE:
        if (cap < 1)
            return -1;
        buf[0] = (char)id;
        return 1;
    case TOK_SPM:
        return tok_spm_piece(t, id, buf, cap);
    }
    return -1;
}

int tok_decode(const struct tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len,
               struct mx_error *err)
{
    *text = NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->vocab)
            return mx_errorf(err, "token id %d at position %zu is outside the %s tokenizer's vocabulary [0, %d); "
                                  "was it produced with a different tokenizer?",
                             (int)ids[i], i, tok_kind(t), t->vocab);
    if (t->type == TOK_SPM)
        return tok_spm_decode(t, ids, n, text, len, err);
    size_t per = t->type == TOK_CHAR ? 4 : 1;
    char *out = mx_xmalloc(n * per + 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += (size_t)tok_piece(t, ids[i], out + m, 4);
    out[m] = 0;
    *text = out;
    *len = m;
    return 0;
}

/* ---- JSON ------------------------------------------------------------------------------------ */

cJSON *tok_to_json(const struct tokenizer *t)
{
    cJSON *j = cJSON_CreateObject();
    MX_ASSERT(j);
    cJSON_AddStringToObject(j, "type", tok_kind(t));
    if (t->type == TOK_CHAR) {
        char *s = mx_xmalloc((size_t)t->vocab * 4 + 1);
        size_t m = 0;
        for (int i = 0; i < t->vocab; i++)
            m += (size_t)tok_utf8_put(t->cps[i], s + m);
        s[m] = 0;
        cJSON_AddStringToObject(j, "chars", s);
        mx_free(s);
    } else if (t->type == TOK_SPM) {
        cJSON_AddStringToObject(j, "model", t->model_name);
    }
    return j;
}

static int char_from_json(struct tokenizer **t, const cJSON *j, struct mx_error *err)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "chars");
    if (!cJSON_IsString(c) || !c->valuestring || !*c->valuestring)
        return mx_errorf(err, "tokenizer metadata: type \"char\" needs a non-empty string field \"chars\" "
                              "(the vocabulary); the checkpoint is damaged or from another program");
    const unsigned char *s = (const unsigned char *)c->valuestring;
    size_t len = strlen(c->valuestring);
    uint32_t *cps = mx_xmalloc(len * sizeof *cps);
    int n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = tok_utf8_next(s, len, i, &cp);
        if (!k || (n > 0 && cp <= cps[n - 1]) || n >= MX_TOK_VOCAB_MAX) {
            mx_free(cps);
            return mx_errorf(err, "tokenizer metadata: \"chars\" must be valid UTF-8 in strictly ascending "
                                  "code point order; byte offset %zu breaks it (damaged checkpoint?)",
                             i);
        }
        cps[n++] = cp;
        i += (size_t)k;
    }
    *t = tok_char_from_cps(cps, n);
    return 0;
}

int tok_from_json(struct tokenizer **t, const cJSON *j, const char *run_dir, struct mx_error *err)
{
    *t = NULL;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(type) || !type->valuestring)
        return mx_errorf(err, "tokenizer metadata: missing string field \"type\" (expected \"char\", \"byte\" "
                              "or \"spm\"); the checkpoint is damaged or from another program");
    const char *ty = type->valuestring;
    if (!strcmp(ty, "char"))
        return char_from_json(t, j, err);
    if (!strcmp(ty, "byte"))
        return tok_create_byte(t, err);
    if (!strcmp(ty, "spm")) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
        if (!cJSON_IsString(m) || !m->valuestring || !*m->valuestring)
            return mx_errorf(err, "tokenizer metadata: type \"spm\" needs a string field \"model\" (the model "
                                  "file name inside the run directory)");
        char path[4096];
        const char *name = m->valuestring;
        /* The model is read only from inside the run directory (training copies it there as
         * tokenizer.model): a checkpoint must not make mixlm open an arbitrary file. */
        if (name[0] == '/')
            return mx_errorf(err, "tokenizer metadata: SentencePiece model path '%s' is absolute; only a file "
                                  "inside the run directory is read (training stores 'tokenizer.model'); the "
                                  "checkpoint is damaged or edited: use another checkpoint",
                             name);
        for (const char *p = name; *p;) {
            size_t n = strcspn(p, "/");
            if (n == 2 && p[0] == '.' && p[1] == '.')
                return mx_errorf(err, "tokenizer metadata: SentencePiece model path '%s' has a '..' component; "
                                      "only a file inside the run directory is read (training stores "
                                      "'tokenizer.model'); the checkpoint is damaged or edited: use another "
                                      "checkpoint",
                                 name);
            p += n + (p[n] == '/');
        }
        if (!run_dir || !*run_dir)
            return mx_errorf(err, "tokenizer metadata: SentencePiece model '%s' needs the run directory it lives "
                                  "in (internal: no run directory given)",
                             name);
        int w = snprintf(path, sizeof path, "%s/%s", run_dir, name);
        if (w < 0 || (size_t)w >= sizeof path)
            return mx_errorf(err, "tokenizer model path too long: '%s/%s'", run_dir, name);
        if (tok_create_spm(t, path, err) != 0)
            return mx_error_wrap(err, "tokenizer of run '%s'", run_dir ? run_dir : ".");
        snprintf((*t)->model_name, sizeof (*t)->model_name, "%s", name);
        return 0;
    }
    return mx_errorf(err, "tokenizer metadata: unknown type \"%s\" (expected \"char\", \"byte\" or \"spm\"); "
                          "the checkpoint comes from a newer or different program",
                     ty);
}

/* ---- the --tokenizer flag -------------------------------------------------------------------- */

#define TOK_FLAG_FORMS                                                                              \
    "valid forms: char | byte | spm:PATH (load a SentencePiece model) | bpe:N | unigram:N (train an " \
    "N-piece model on the training text, e.g. bpe:4096)"

int tok_create_from_flag(struct tokenizer **t, const char *flag, const char *text_path, const char *text,
                         size_t len, const char *run_dir, struct mx_error *err)
{
    *t = NULL;
    if (!flag || !*flag)
        return mx_errorf(err, "--tokenizer: empty value; " TOK_FLAG_FORMS);
    if (!strcmp(flag, "byte"))
        return tok_create_byte(t, err);
    char *owned = NULL;
    int rc;
    if (!strcmp(flag, "char")) {
        if (!text) {
            if (!text_path)
                return mx_errorf(err, "--tokenizer char needs the training text to build its vocabulary");
            if (!(owned = mx_read_file(text_path, &len, err)))
                return -1;
            text = owned;
        }
        rc = tok_create_char(t, text, len, err);
        if (rc && text_path)
            mx_error_wrap(err, "--tokenizer char on '%s'", text_path);
        mx_free(owned);
        return rc;
    }
    if (!strncmp(flag, "spm:", 4)) {
        if (!flag[4])
            return mx_errorf(err, "--tokenizer spm:PATH: the path is empty; " TOK_FLAG_FORMS);
        return tok_create_spm(t, flag + 4, err);
    }
    const char *type = NULL;
    if (!strncmp(flag, "bpe:", 4))
        type = "bpe";
    else if (!strncmp(flag, "unigram:", 8))
        type = "unigram";
    if (!type)
        return mx_errorf(err, "--tokenizer: unknown value '%s'; " TOK_FLAG_FORMS, flag);
    long vocab;
    const char *num = flag + strlen(type) + 1;
    if (mx_parse_int(num, MX_TOK_SPM_VOCAB_MIN, MX_TOK_VOCAB_MAX, "--tokenizer vocabulary size", &vocab, err) != 0)
        return -1;
    if (!run_dir || !*run_dir)
        return mx_errorf(err, "--tokenizer %s needs a run directory to write the trained model into", flag);
    if (mx_mkdir_p(run_dir, err) != 0)
        return -1;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/tokenizer.model", run_dir) >= (int)sizeof path)
        return mx_errorf(err, "run directory path too long: '%s'", run_dir);
    if (text) {
        rc = tok_spm_train_text(text, len, (int)vocab, type, path, err);
    } else {
        if (!text_path)
            return mx_errorf(err, "--tokenizer %s needs the training text", flag);
        rc = tok_spm_train(text_path, (int)vocab, type, path, err);
    }
    if (rc)
        return rc;
    if (tok_create_spm(t, path, err) != 0)
        return -1;
    snprintf((*t)->model_name, sizeof (*t)->model_name, "tokenizer.model");
    return 0;
}

/* The code point of a token that is exactly one UTF-8 character, else 0. */
uint32_t tok_code_point(const struct tokenizer *tok, int32_t id)
{
    char b[64];
    int n = tok_piece(tok, id, b, sizeof b);
    const unsigned char *u = (const unsigned char *)b;
    if (n == 1 && u[0] < 0x80)
        return u[0];
    if (n == 2 && (u[0] & 0xE0) == 0xC0 && (u[1] & 0xC0) == 0x80)
        return (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F);
    if (n == 3 && (u[0] & 0xF0) == 0xE0 && (u[1] & 0xC0) == 0x80 && (u[2] & 0xC0) == 0x80)
        return (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 | (u[2] & 0x3F);
    return 0;
}
