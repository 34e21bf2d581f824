/* test_spm.c — the SentencePiece tokenizer: training (bpe and unigram) on generated text in a
 * temp dir, exact round trips (whitespace runs, tabs, CRLF, multi-byte UTF-8, characters never
 * seen in training), chunked encoding equal to a one-call encode, JSON/run-dir round trip, and
 * the error paths (bad path, corrupt model, vocab 0 / too small / too large, U+2581, bad UTF-8). */
#include "check.h"
#include "tokenizer/spm_shim.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Pseudo-words from syllables plus fixed words with tabs, runs of spaces, CRLF and multi-byte
 * UTF-8: varied enough for a 400-piece unigram model. */
static char *make_text(size_t target, uint64_t seed, int newlines, size_t *len)
{
    static const char *syl[] = {"ka", "to", "ri", "ne", "su", "mo", "la", "pe", "di", "gu", "an", "el",
                                "or", "is", "th", "ch", "qu", "ü", "é", "ñ", "日", "本", "語", "ö"};
    static const char *words[] = {"the", "and", "emoji😀", "x=42", "3.14159", "\tindent", "    code();",
                                  "(x)", "{", "}", "return", "naïve café"};
    size_t ns = sizeof syl / sizeof syl[0], nw = sizeof words / sizeof words[0];
    char *s = mx_xmalloc(target + 64);
    struct mx_rng r;
    mx_rng_seed(&r, seed);
    size_t n = 0;
    while (n < target) {
        if (mx_rng_below(&r, 4) == 0) {
            const char *w = words[mx_rng_below(&r, (uint32_t)nw)];
            memcpy(s + n, w, strlen(w));
            n += strlen(w);
        } else {
            for (uint32_t k = 1 + mx_rng_below(&r, 4); k > 0; k--) {
                const char *w = syl[mx_rng_below(&r, (uint32_t)ns)];
                memcpy(s + n, w, strlen(w));
                n += strlen(w);
            }
        }
        uint32_t sep = mx_rng_below(&r, 20);
        const char *sp = sep == 1 ? "  " : sep > 3 || !newlines ? " " : sep == 0 ? "\n" : sep == 2 ? "\r\n" : ".\n\n";
        memcpy(s + n, sp, strlen(sp));
        n += strlen(sp);
    }
    s[n] = 0;
    *len = n;
    return s;
}

static int write_file(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

static void check_round_trip(const struct tokenizer *t, const char *s, size_t len, const char *what)
{
    struct mx_error err = {{0}};
    int32_t *ids = NULL;
    size_t n = 0;
    if (tok_encode(t, s, len, &ids, &n, &err) != 0) {
        CHECK(0, "%s: encode failed: %s", what, err.msg);
        return;
    }
    for (size_t i = 0; i < n; i++)
        CHECK(ids[i] >= 0 && ids[i] < tok_vocab_size(t), "%s: id %d out of range", what, ids[i]);
    char *back = NULL;
    size_t blen = 0;
    if (tok_decode(t, ids, n, &back, &blen, &err) != 0) {
        CHECK(0, "%s: decode failed: %s", what, err.msg);
    } else {
        CHECK(blen == len && memcmp(back, s, len) == 0, "%s: round trip differs (%zu vs %zu bytes)", what, blen,
              len);
        /* Streaming pieces concatenate to the same bytes (models trained here: no dummy prefix). */
        char *cat = mx_xmalloc(n * 256 + 1);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            int k = tok_piece(t, ids[i], cat + m, 256);
            CHECK(k >= 0, "%s: tok_piece(%d) failed", what, ids[i]);
            if (k > 0)
                m += (size_t)k;
        }
        CHECK(m == len && memcmp(cat, s, len) == 0, "%s: concatenated pieces differ from the text", what);
        mx_free(cat);
    }
    mx_free(back);
    mx_free(ids);
}

static void expect_error(int rc, const struct mx_error *err, const char *needle, const char *what)
{
    CHECK(rc != 0, "%s: expected an error", what);
    if (rc != 0) {
        CHECK(strstr(err->msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err->msg, needle);
        printf("  %-26s -> %s\n", what, err->msg);
    }
}

/* The training text and the two models every case uses, made once by setup. */
static char dir[] = "/tmp/mixlm_test_spm_XXXXXX";
static char text_path[512], bpe_path[512], uni_path[512];
static char *text;
static size_t text_len;

static int setup(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(text_path, sizeof text_path, "%s/train.txt", dir);
    snprintf(bpe_path, sizeof bpe_path, "%s/bpe.model", dir);
    snprintf(uni_path, sizeof uni_path, "%s/uni.model", dir);
    size_t len;
    text = make_text(100000, 1, 1, &len);
    text_len = len;
    CHECK(write_file(text_path, text, len) == 0, "write %s", text_path);
    struct mx_error err = {{0}};

    /* ---- training and loading ---- */
    double t0 = mx_now();
    int rc = tok_spm_train(text_path, 400, "bpe", bpe_path, &err);
    CHECK(rc == 0, "bpe train: %s", err.msg);
    printf("bpe 400 on %zu bytes: %.2fs\n", len, mx_now() - t0);
    t0 = mx_now();
    rc = tok_spm_train(text_path, 400, "unigram", uni_path, &err);
    CHECK(rc == 0, "unigram train: %s", err.msg);
    printf("unigram 400 on %zu bytes: %.2fs\n", len, mx_now() - t0);
    return check_failures ? 1 : 0;
}

/* Files stay for inspection when a check failed. */
static void teardown(void)
{
    mx_free(text);
    if (!check_failures) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "note: could not remove %s\n", dir);
    }
    if (check_failures)
        fprintf(stderr, "%d failure(s); files kept in %s\n", check_failures, dir);
}

/* Both models: round trips, chunked encoding, the errors naming an offset. */
static int case_models(void)
{
    struct mx_error err = {{0}};
    const size_t len = text_len;
    int rc;
    const char *paths[2] = {bpe_path, uni_path};
    for (int k = 0; k < 2; k++) {
        struct tokenizer *t = NULL;
        rc = tok_create_spm(&t, paths[k], &err);
        CHECK(rc == 0, "load %s: %s", paths[k], err.msg);
        if (rc)
            continue;
        CHECK(!strcmp(tok_kind(t), "spm"), "kind %s", tok_kind(t));
        CHECK(tok_vocab_size(t) == 400, "vocab %d", tok_vocab_size(t));
        static const char tricky[] = "hello world\n\ttab\t\tand  two   three    spaces \r\nCRLF\n\n\n"
                                     "  leading and trailing  \n日本語 café über 😀\n"
                                     "never seen: Ωμέγα ☃ 𝄞 ñ ß \x01\x7f end";
        check_round_trip(t, tricky, strlen(tricky), "tricky");
        check_round_trip(t, "", 0, "empty");
        check_round_trip(t, " ", 1, "one space");
        check_round_trip(t, "\n", 1, "one newline");
        check_round_trip(t, "\xF0\x9F\xA6\x84\xF0\x9F\xA6\x84", 8, "unseen 4-byte chars");
        check_round_trip(t, text, len, "training text (multi-chunk)");

        /* Chunked encoding equals one call on the whole text for models trained here. */
        int32_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        char msg[256];
        CHECK(tok_encode(t, text, len, &a, &na, &err) == 0, "encode: %s", err.msg);
        CHECK(spm_shim_encode(t->spm, text, len, &b, &nb, msg, sizeof msg) == 0, "shim encode: %s", msg);
        size_t first = 0;
        while (a && b && first < na && first < nb && a[first] == b[first])
            first++;
        /* BPE: identical ids. Unigram: Viterbi sums float scores along the whole string, so exact
         * ties (" " + "    " vs "    " + " ") can break differently; same length within 0.1%. */
        if (k == 0) {
            CHECK(a && b && na == nb && first == na,
                  "%s: chunked %zu ids vs one call %zu ids, first difference at %zu", paths[k], na, nb, first);
            /* One 50 KB line: chunks are cut before a word's leading space; still the same ids. */
            size_t llen;
            char *line = make_text(50000, 2, 0, &llen);
            check_round_trip(t, line, llen, "one long line");
            int32_t *c = NULL, *d = NULL;
            size_t nc = 0, nd = 0;
            CHECK(tok_encode(t, line, llen, &c, &nc, &err) == 0, "encode line: %s", err.msg);
            CHECK(spm_shim_encode(t->spm, line, llen, &d, &nd, msg, sizeof msg) == 0, "shim: %s", msg);
            CHECK(c && d && nc == nd && !memcmp(c, d, nc * sizeof *c), "long line: chunked %zu ids vs one call %zu",
                  nc, nd);
            mx_free(c);
            spm_shim_free_bytes(d);
            mx_free(line);
        }
        else
            CHECK(a && b && (double)na <= nb * 1.001 && (double)nb <= na * 1.001,
                  "%s: chunked %zu ids vs one call %zu ids", paths[k], na, nb);
        CHECK(na < len / 2, "compression: %zu ids for %zu bytes", na, len);
        mx_free(a);
        spm_shim_free_bytes(b);

        /* Things SentencePiece cannot round-trip are errors naming the offset. */
        int32_t *ids = NULL;
        size_t n = 0;
        rc = tok_encode(t, "ab\xE2\x96\x81 c", 6, &ids, &n, &err);
        expect_error(rc, &err, "offset 2", "U+2581");
        mx_free(ids);
        rc = tok_encode(t, "abc\xC3(", 5, &ids, &n, &err);
        expect_error(rc, &err, "invalid UTF-8 at byte offset 3", "bad UTF-8");
        mx_free(ids);
        int32_t bad[2] = {5, 400};
        char *s = NULL;
        size_t sl;
        rc = tok_decode(t, bad, 2, &s, &sl, &err);
        expect_error(rc, &err, "400", "decode out of range");
        mx_free(s);
        char buf[8];
        CHECK(tok_piece(t, -1, buf, sizeof buf) == -1, "piece -1");
        CHECK(tok_piece(t, 400, buf, sizeof buf) == -1, "piece 400");
        tok_free(t);
    }
    return 0;
}

static int case_run_dir(void)
{
    struct mx_error err = {{0}};
    const size_t len = text_len;
    char p[1024];
    int rc;
    /* ---- run dir: save, JSON, reload ---- */
    {
        char run[512];
        snprintf(run, sizeof run, "%s/run", dir);
        struct tokenizer *t = NULL;
        rc = tok_create_from_flag(&t, "bpe:320", text_path, NULL, 0, run, &err);
        CHECK(rc == 0, "flag bpe:320: %s", err.msg);
        snprintf(p, sizeof p, "%s/tokenizer.model", run);
        CHECK(mx_file_exists(p), "%s missing", p);
        if (t) {
            CHECK(tok_vocab_size(t) == 320, "vocab %d", tok_vocab_size(t));
            tok_free(t);
        }
        char flag[600];
        snprintf(flag, sizeof flag, "spm:%s", uni_path);
        rc = tok_create_from_flag(&t, flag, text_path, text, len, run, &err);
        CHECK(rc == 0, "flag %s: %s", flag, err.msg);
        if (t) {
            CHECK(tok_save_files(t, run, &err) == 0, "save: %s", err.msg);
            cJSON *j = tok_to_json(t);
            char *js = cJSON_PrintUnformatted(j);
            CHECK(!strcmp(js, "{\"type\":\"spm\",\"model\":\"tokenizer.model\"}"), "json %s", js);
            struct tokenizer *u = NULL;
            rc = tok_from_json(&u, j, run, &err);
            CHECK(rc == 0, "from_json: %s", err.msg);
            if (u) {
                CHECK(tok_vocab_size(u) == 400, "reloaded vocab %d", tok_vocab_size(u));
                int32_t *a = NULL, *b = NULL;
                size_t na = 0, nb = 0;
                tok_encode(t, text, 5000, &a, &na, &err);
                tok_encode(u, text, 5000, &b, &nb, &err);
                CHECK(a && b && na == nb && !memcmp(a, b, na * sizeof *a), "reloaded encodes differently");
                mx_free(a);
                mx_free(b);
                tok_free(u);
            }
            rc = tok_from_json(&u, j, dir, &err); /* no tokenizer.model in dir */
            expect_error(rc, &err, "tokenizer.model", "from_json missing model");
            /* A model path that leaves the run directory is refused even where the file exists. */
            char evil[1200];
            snprintf(evil, sizeof evil, "{\"type\":\"spm\",\"model\":\"%s\"}", uni_path);
            cJSON *ja = cJSON_Parse(evil);
            u = NULL;
            rc = tok_from_json(&u, ja, run, &err);
            expect_error(rc, &err, "is absolute", "from_json absolute model path");
            CHECK(u == NULL, "absolute model path loaded");
            tok_free(u);
            cJSON_Delete(ja);
            char sub[600];
            snprintf(sub, sizeof sub, "%s/sub", dir);
            CHECK(mx_mkdir_p(sub, &err) == 0, "mkdir %s", sub);
            const char *climbs[] = {"{\"type\":\"spm\",\"model\":\"../run/tokenizer.model\"}",
                                    "{\"type\":\"spm\",\"model\":\"x/../../run/tokenizer.model\"}"};
            for (int k = 0; k < 2; k++) {
                cJSON *jc = cJSON_Parse(climbs[k]);
                u = NULL;
                rc = tok_from_json(&u, jc, sub, &err);
                expect_error(rc, &err, "'..' component", "from_json model path with ..");
                CHECK(u == NULL, "model path with .. loaded: %s", climbs[k]);
                tok_free(u);
                cJSON_Delete(jc);
            }
            free(js);
            cJSON_Delete(j);
            tok_free(t);
        }
    }
    return 0;
}

static int case_errors(void)
{
    struct mx_error err = {{0}};
    char p[1024];
    int rc;
    /* ---- errors ---- */
    struct tokenizer *t = NULL;
    snprintf(p, sizeof p, "%s/nope.model", dir);
    rc = tok_create_spm(&t, p, &err);
    expect_error(rc, &err, "nope.model", "missing model");
    CHECK(t == NULL, "t set on error");

    snprintf(p, sizeof p, "%s/corrupt.model", dir);
    write_file(p, "this is not a protobuf at all \x01\x02\x03\xff\xff\xff\xff", 38);
    rc = tok_create_spm(&t, p, &err);
    expect_error(rc, &err, "not a valid SentencePiece model", "corrupt model");

    {   /* truncated real model */
        size_t ml;
        char *m = mx_read_file(bpe_path, &ml, &err);
        CHECK(m != NULL, "read model: %s", err.msg);
        if (m) {
            write_file(p, m, ml / 2);
            rc = tok_create_spm(&t, p, &err);
            expect_error(rc, &err, "not a valid SentencePiece model", "truncated model");
            mx_free(m);
        }
    }
    write_file(p, "", 0);
    rc = tok_create_spm(&t, p, &err);
    expect_error(rc, &err, "empty", "empty model");

    snprintf(p, sizeof p, "%s/out.model", dir);
    rc = tok_spm_train(text_path, 0, "bpe", p, &err);
    expect_error(rc, &err, "vocabulary size 0", "vocab 0");
    rc = tok_spm_train(text_path, 270, "bpe", p, &err);
    expect_error(rc, &err, "too small", "vocab too small");
    {   /* a small text, so the trainer gives up quickly */
        size_t sl;
        char *small = make_text(3000, 3, 1, &sl);
        rc = tok_spm_train_text(small, sl, 5000, "bpe", p, &err);
        expect_error(rc, &err, "5000 is more than this text can fill", "bpe vocab too large");
        rc = tok_spm_train_text(small, sl, 5000, "unigram", p, &err);
        expect_error(rc, &err, "5000 is more than this text can fill", "unigram vocab too large");
        mx_free(small);
    }
    CHECK(!mx_file_exists(p), "a failed training left %s behind", p);
    rc = tok_spm_train(text_path, 400, "wordpiece", p, &err);
    expect_error(rc, &err, "bpe or unigram", "unknown type");
    snprintf(p, sizeof p, "%s/missing.txt", dir);
    rc = tok_spm_train(p, 400, "bpe", bpe_path, &err);
    expect_error(rc, &err, "missing.txt", "missing text");
    snprintf(p, sizeof p, "%s/empty.txt", dir);
    write_file(p, "", 0);
    rc = tok_spm_train(p, 400, "bpe", bpe_path, &err);
    expect_error(rc, &err, "empty", "empty text");
    rc = tok_spm_train_text("a\xE2\x96\x81z", 5, 400, "bpe", bpe_path, &err);
    expect_error(rc, &err, "U+2581", "train U+2581");
    rc = tok_create_from_flag(&t, "bpe:abc", text_path, NULL, 0, dir, &err);
    expect_error(rc, &err, "not an integer", "bpe:abc");
    rc = tok_create_from_flag(&t, "wordpiece:100", text_path, NULL, 0, dir, &err);
    expect_error(rc, &err, "valid forms", "unknown flag");
    CHECK(t == NULL, "t set on error");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"models", case_models},
        {"run_dir", case_run_dir},
        {"errors", case_errors},
    };
    static const struct check_fixture fx = {setup, teardown};
    return check_main(argc, argv, cases, CHECK_N(cases), &fx);
}
