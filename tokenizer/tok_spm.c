/* tok_spm.c — the `spm` tokenizer kind: training and loading SentencePiece models, chunked
 * parallel encoding with a progress line, decoding, and copying the model into a run dir.
 * Not the C++ (spm_shim.cc owns every call into libsentencepiece and its trainer options). */
#include "tokenizer/spm_shim.h"
#include "tokenizer/tok_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Encoding chunk: SentencePiece's BPE encoder slows down as its input grows (measured on
 * tinyshakespeare, bytes per chunk -> relative speed: 1-4 KiB 1.0, 16 KiB 0.8, 64 KiB 0.6,
 * 256 KiB 0.45), so the text goes in 4 KiB chunks; they are also the unit of parallel work. */
#define SPM_CHUNK 4096
/* Chunks per parallel round (one progress update per round, every 4 MiB). */
#define SPM_ROUND 1024
/* Inputs at least this large get a progress line. */
#define SPM_PROGRESS_MIN (4u << 20)

void tok_spm_release(struct tokenizer *t)
{
    if (t->spm)
        spm_shim_free(t->spm);
    t->spm = NULL;
    mx_free(t->model_bytes);
    t->model_bytes = NULL;
}

int tok_spm_check_text(const char *text, size_t len, const char *what, struct mx_error *err)
{
    size_t bad = tok_utf8_check(text, len);
    if (bad < len)
        return mx_errorf(err,
                         "%s: invalid UTF-8 at byte offset %zu (byte 0x%02X); SentencePiece would turn it into "
                         "U+FFFD and lose the original bytes; fix the encoding or use --tokenizer byte",
                         what, bad, (unsigned char)text[bad]);
    const char *p = memmem(text, len, "\xE2\x96\x81", 3);
    if (p)
        return mx_errorf(err,
                         "%s: U+2581 '\xE2\x96\x81' at byte offset %zu is SentencePiece's space marker and "
                         "would decode as a space; replace it (e.g. sed 's/\xE2\x96\x81/_/g') or use "
                         "--tokenizer char or byte",
                         what, (size_t)(p - text));
    return 0;
}

/* Distinct code points of valid UTF-8 text (for the smallest usable vocabulary). */
static int count_distinct_chars(const char *text, size_t len)
{
    size_t words = (0x110000 + 63) / 64;
    uint64_t *seen = mx_xcalloc(words * sizeof *seen);
    int n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = tok_utf8_next((const unsigned char *)text, len, i, &cp);
        MX_ASSERT(k > 0); /* checked by tok_spm_check_text */
        if (cp != '\n' && !(seen[cp >> 6] & (1ull << (cp & 63)))) {
            seen[cp >> 6] |= 1ull << (cp & 63);
            n++;
        }
        i += (size_t)k;
    }
    mx_free(seen);
    return n;
}

struct bytes_ctx {
    const char *p;
    size_t n;
};

static int write_bytes(FILE *f, void *ctx, struct mx_error *err)
{
    const struct bytes_ctx *b = ctx;
    if (b->n && fwrite(b->p, 1, b->n, f) != b->n)
        return mx_errorf(err, "short write of %zu bytes: %s", b->n, strerror(errno));
    return 0;
}

int tok_spm_train_text(const char *text, size_t len, int vocab, const char *type, const char *model_out,
                       struct mx_error *err)
{
    if (!type || (strcmp(type, "bpe") && strcmp(type, "unigram")))
        return mx_errorf(err, "tokenizer type '%s' is unknown; use bpe or unigram", type ? type : "(null)");
    if (vocab < MX_TOK_SPM_VOCAB_MIN || vocab > MX_TOK_VOCAB_MAX)
        return mx_errorf(err,
                         "SentencePiece vocabulary size %d is out of range [%d, %d]: byte fallback alone takes "
                         "256 pieces + <unk>; use e.g. --vocab 4096",
                         vocab, MX_TOK_SPM_VOCAB_MIN, MX_TOK_VOCAB_MAX);
    if (len == 0)
        return mx_errorf(err, "cannot train a tokenizer on empty text; give a non-empty training file");
    if (tok_spm_check_text(text, len, "training text", err) != 0)
        return -1;
    int chars = count_distinct_chars(text, len);
    if (vocab < MX_TOK_SPM_VOCAB_MIN - 1 + chars)
        return mx_errorf(err,
                         "SentencePiece vocabulary size %d is too small for this text: 256 byte pieces + <unk> + "
                         "%d distinct characters need at least %d; raise the vocabulary size",
                         vocab, chars, MX_TOK_SPM_VOCAB_MIN - 1 + chars);
    char *model = NULL;
    size_t model_len = 0;
    char msg[MX_ERR_MAX - 256];
    if (spm_shim_train(text, len, vocab, type, mx_get_threads(), &model, &model_len, msg, sizeof msg) != 0) {
        /* The trainer says "Vocabulary size too high (V). Please set it to a value <= M." */
        const char *le = strstr(msg, "value <= ");
        if (le)
            return mx_errorf(err,
                             "SentencePiece vocabulary size %d is more than this text can fill: a %s model of it "
                             "has at most %d pieces; use a vocabulary size <= %d or more text",
                             vocab, type, atoi(le + 9), atoi(le + 9));
        return mx_errorf(err, "training a %s tokenizer with %d pieces failed: %s", type, vocab, msg);
    }
    struct bytes_ctx b = {model, model_len};
    int rc = mx_write_atomic(model_out, write_bytes, &b, err);
    spm_shim_free_bytes(model);
    return rc;
}

int tok_spm_train(const char *text_path, int vocab, const char *type, const char *model_out,
                  struct mx_error *err)
{
    size_t len;
    char *text = mx_read_file(text_path, &len, err);
    if (!text)
        return -1;
    int rc = 0;
    if (len == 0)
        rc = mx_errorf(err, "training text '%s' is empty; give a non-empty text file", text_path);
    else if (tok_spm_train_text(text, len, vocab, type, model_out, err) != 0)
        rc = mx_error_wrap(err, "'%s'", text_path);
    mx_free(text);
    return rc;
}

int tok_create_spm(struct tokenizer **t, const char *model_path, struct mx_error *err)
{
    *t = NULL;
    size_t len;
    char *bytes = mx_read_file(model_path, &len, err);
    if (!bytes)
        return mx_error_wrap(err, "SentencePiece model");
    if (len == 0) {
        mx_free(bytes);
        return mx_errorf(err, "SentencePiece model '%s' is empty; train one with `mixlm tokenizer train`",
                         model_path);
    }
    struct spm_shim *s;
    char msg[MX_ERR_MAX - 256];
    if (spm_shim_load(&s, bytes, len, msg, sizeof msg) != 0) {
        mx_free(bytes);
        return mx_errorf(err,
                         "'%s' is not a valid SentencePiece model: it does not load (corrupt, truncated or another "
                         "kind of file); check the path or train one with `mixlm tokenizer train` [%s]",
                         model_path, msg);
    }
    int vocab = spm_shim_vocab_size(s);
    if (vocab > MX_TOK_VOCAB_MAX) {
        spm_shim_free(s);
        mx_free(bytes);
        return mx_errorf(err, "SentencePiece model '%s' has %d pieces; at most %d are supported", model_path,
                         vocab, MX_TOK_VOCAB_MAX);
    }
    struct tokenizer *k = mx_xcalloc(sizeof *k);
    k->type = TOK_SPM;
    k->vocab = vocab;
    k->spm = s;
    k->model_bytes = bytes;
    k->model_len = len;
    const char *base = strrchr(model_path, '/');
    snprintf(k->model_name, sizeof k->model_name, "%s", base ? base + 1 : model_path);
    *t = k;
    return 0;
}

int tok_save_files(struct tokenizer *t, const char *run_dir, struct mx_error *err)
{
    if (t->type != TOK_SPM)
        return 0;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/tokenizer.model", run_dir) >= (int)sizeof path)
        return mx_errorf(err, "run directory path too long: '%s'", run_dir);
    struct bytes_ctx b = {t->model_bytes, t->model_len};
    if (mx_write_atomic(path, write_bytes, &b, err) != 0)
        return -1;
    snprintf(t->model_name, sizeof t->model_name, "tokenizer.model");
    return 0;
}

/* End of the chunk starting at `pos`: just after the last '\n' in the second half of the window;
 * else (a line over SPM_CHUNK/2 bytes) just before the last space that follows a non-space:
 * models trained here have no piece that crosses that point (split_by_whitespace), so BPE ids
 * are unchanged; else a UTF-8 character boundary. */
static size_t chunk_end(const char *text, size_t len, size_t pos)
{
    if (len - pos <= SPM_CHUNK)
        return len;
    size_t end = pos + SPM_CHUNK, lo = pos + SPM_CHUNK / 2;
    for (size_t i = end; i > lo; i--)
        if (text[i - 1] == '\n')
            return i;
    for (size_t i = end; i > lo; i--)
        if (text[i] == ' ' && text[i - 1] != ' ')
            return i;
    while (end > lo && ((unsigned char)text[end] & 0xC0) == 0x80)
        end--;
    return end;
}

static void progress_line(struct mx_progress *p, size_t done, size_t total, double t0, int *last_decile)
{
    double dt = mx_now() - t0, mb = done / 1e6, rate = dt > 0 ? mb / dt : 0;
    double eta = rate > 0 ? (total - done) / 1e6 / rate : 0;
    int decile = (int)(10.0 * done / total);
    if (p->tty) {
        fprintf(p->out, "\r\033[Kencoding %.1f/%.1f MB | %.2f MB/s | ETA %.0fs", mb, total / 1e6, rate, eta);
        fflush(p->out);
        p->dirty = 1;
    } else if (decile > *last_decile && done < total) {
        mx_progress_print(p, "encoding %.1f/%.1f MB | %.2f MB/s | ETA %.0fs", mb, total / 1e6, rate, eta);
    }
    *last_decile = decile;
}

int tok_spm_encode(const struct tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
                   struct mx_error *err)
{
    if (tok_spm_check_text(text, len, "text to encode", err) != 0)
        return -1;
    size_t max_chunks = len / (SPM_CHUNK / 2) + 2;
    size_t *starts = mx_xmalloc(max_chunks * sizeof *starts);
    size_t nc = 0;
    for (size_t pos = 0; pos < len; pos = chunk_end(text, len, pos))
        starts[nc++] = pos;
    starts[nc] = len;
    int32_t **parts = mx_xcalloc((nc ? nc : 1) * sizeof *parts);
    size_t *counts = mx_xcalloc((nc ? nc : 1) * sizeof *counts);
    int show = len >= SPM_PROGRESS_MIN;
    struct mx_progress prog;
    if (show)
        mx_progress_init(&prog, stderr, (long)len, 1);
    double t0 = mx_now();
    int last_decile = 0;
    long failed = -1;
    char msg[MX_ERR_MAX - 256] = "";
    for (size_t r0 = 0; r0 < nc && failed < 0; r0 += SPM_ROUND) {
        size_t r1 = r0 + SPM_ROUND < nc ? r0 + SPM_ROUND : nc;
#pragma omp parallel for schedule(dynamic, 1)
        for (size_t c = r0; c < r1; c++) {
            char m[MX_ERR_MAX - 256];
            if (spm_shim_encode(t->spm, text + starts[c], starts[c + 1] - starts[c], &parts[c], &counts[c], m,
                                sizeof m) != 0) {
#pragma omp critical(tok_spm_encode_err)
                if (failed < 0 || (long)c < failed) {
                    failed = (long)c;
                    snprintf(msg, sizeof msg, "%s", m);
                }
            }
        }
        if (show)
            progress_line(&prog, starts[r1], len, t0, &last_decile);
    }
    int rc = 0;
    if (failed >= 0) {
        rc = mx_errorf(err, "SentencePiece failed to encode bytes [%zu, %zu): %s", starts[failed],
                       starts[failed + 1], msg);
    } else {
        size_t total = 0;
        for (size_t c = 0; c < nc; c++)
            total += counts[c];
        int32_t *out = mx_xmalloc((total ? total : 1) * sizeof *out);
        size_t m = 0;
        for (size_t c = 0; c < nc; c++) {
            memcpy(out + m, parts[c], counts[c] * sizeof *out);
            m += counts[c];
        }
        *ids = out;
        *n = total;
    }
    if (show) {
        double dt = mx_now() - t0;
        mx_progress_print(&prog, "encoded %.1f MB into %zu tokens in %.1fs (%.2f MB/s)", len / 1e6, *n, dt,
                          dt > 0 ? len / 1e6 / dt : 0);
        mx_progress_end(&prog);
    }
    for (size_t c = 0; c < nc; c++)
        if (parts[c])
            spm_shim_free_bytes(parts[c]);
    mx_free(parts);
    mx_free(counts);
    mx_free(starts);
    return rc;
}

int tok_spm_decode(const struct tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len,
                   struct mx_error *err)
{
    char *s;
    size_t m;
    char msg[MX_ERR_MAX - 256];
    if (spm_shim_decode(t->spm, ids, n, &s, &m, msg, sizeof msg) != 0)
        return mx_errorf(err, "SentencePiece failed to decode %zu ids: %s", n, msg);
    char *out = mx_xmalloc(m + 1);
    memcpy(out, s, m);
    out[m] = 0;
    spm_shim_free_bytes(s);
    *text = out;
    *len = m;
    return 0;
}

int tok_spm_piece(const struct tokenizer *t, int32_t id, char *buf, size_t cap)
{
    return spm_shim_piece_bytes(t->spm, id, buf, cap);
}
