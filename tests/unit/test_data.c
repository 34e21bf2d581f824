/* test_data.c — token files (16- and 32-bit round trips; truncated, corrupt, missing, empty and
 * out-of-vocabulary files rejected without a crash), text preparation, the train/val split,
 * random batches (shifted by one, inside their range, deterministic per seed, every start
 * reachable) and sequential windows. */
#include "check.h"
#include "data/data.h"
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[] = "/tmp/mixlm_test_data_XXXXXX";

static void path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static int write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    fclose(f);
    return w == n ? 0 : -1;
}

static void expect_error(int rc, const struct mx_error *err, const char *needle, const char *what)
{
    CHECK(rc != 0, "%s: expected an error", what);
    if (rc != 0) {
        CHECK(strstr(err->msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err->msg, needle);
        printf("  %-22s -> %s\n", what, err->msg);
    }
}

static void round_trip(int vocab, int expect_width, size_t n, uint64_t seed)
{
    struct mx_error err = {{0}};
    char p[600];
    path_in(p, sizeof p, "rt.bin");
    int32_t *ids = mx_xmalloc((n ? n : 1) * sizeof *ids);
    struct mx_rng r;
    mx_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)mx_rng_below(&r, (uint32_t)vocab);
    if (n)
        ids[n - 1] = vocab - 1; /* the largest id survives its width */
    CHECK(data_write_tokens(p, ids, n, vocab, &err) == 0, "write vocab %d: %s", vocab, err.msg);
    struct mx_tokfile f;
    int rc = data_open(&f, p, &err);
    CHECK(rc == 0, "open vocab %d: %s", vocab, err.msg);
    if (rc == 0) {
        CHECK(f.count == n && f.vocab == vocab && f.id_bytes == expect_width, "header: n %zu vocab %d width %d",
              f.count, f.vocab, f.id_bytes);
        CHECK(f.map_len == MX_TOKFILE_HEADER + n * (size_t)expect_width, "file size %zu", f.map_len);
        size_t bad = n;
        for (size_t i = 0; i < n && bad == n; i++)
            if (data_get(&f, i) != ids[i])
                bad = i;
        CHECK(bad == n, "vocab %d: id %zu differs (%d vs %d)", vocab, bad, bad < n ? data_get(&f, bad) : 0,
              bad < n ? ids[bad] : 0);
    }
    data_close(&f);
    data_close(&f); /* twice is safe */
    mx_free(ids);
}

/* Write a valid 16-bit file of n ids (id i = i % vocab), return its bytes (mx_free). */
static unsigned char *valid_bytes(size_t n, int vocab, size_t *len)
{
    struct mx_error err;
    char p[600];
    path_in(p, sizeof p, "valid.bin");
    int32_t *ids = mx_xmalloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)(i % (size_t)vocab);
    CHECK(data_write_tokens(p, ids, n, vocab, &err) == 0, "write: %s", err.msg);
    mx_free(ids);
    char *b = mx_read_file(p, len, &err);
    CHECK(b != NULL, "read back: %s", err.msg);
    return (unsigned char *)b;
}

static void open_bad(const void *bytes, size_t n, const char *needle, const char *what)
{
    struct mx_error err = {{0}};
    char p[600];
    path_in(p, sizeof p, "bad.bin");
    CHECK(write_file(p, bytes, n) == 0, "write %s", p);
    struct mx_tokfile f;
    int rc = data_open(&f, p, &err);
    expect_error(rc, &err, needle, what);
    CHECK(f.map == NULL && f.count == 0, "%s: file left open", what);
    data_close(&f);
}

static void test_files(void)
{
    round_trip(1000, 2, 10000, 1);
    round_trip(65536, 2, 5000, 2);
    round_trip(65537, 4, 5000, 3);
    round_trip(100000, 4, 20000, 4);
    round_trip(256, 2, 0, 5); /* empty token list is a valid file */

    size_t len;
    unsigned char *b = valid_bytes(100, 300, &len);
    CHECK(len == 32 + 200, "valid size %zu", len);
    unsigned char *c = mx_xmalloc(len + 8);

    struct mx_error err = {{0}};
    char p[600];
    struct mx_tokfile f;
    path_in(p, sizeof p, "missing.bin");
    expect_error(data_open(&f, p, &err), &err, "missing.bin", "missing file");
    open_bad("", 0, "shorter than its 32-byte header", "empty file");
    open_bad(b, 20, "shorter than its 32-byte header", "half a header");
    open_bad(b, len - 1, "promises 100 ids", "truncated ids");
    open_bad(b, 32, "promises 100 ids", "header only");
    memcpy(c, b, len);
    memset(c + len, 0, 8);
    open_bad(c, len + 8, "promises 100 ids", "trailing bytes");
    memcpy(c, b, len);
    c[0] = 'X';
    open_bad(c, len, "not a mixlm token file", "wrong magic");
    memcpy(c, b, len);
    c[8] = 9;
    open_bad(c, len, "version 9", "wrong version");
    memcpy(c, b, len);
    c[20] = 3;
    open_bad(c, len, "invalid header", "id width 3");
    memcpy(c, b, len);
    c[16] = c[17] = c[18] = 0;
    c[19] = 0;
    open_bad(c, len, "invalid header", "vocab 0");
    memcpy(c, b, len);
    memset(c + 24, 0xFF, 8);
    open_bad(c, len, "promises", "count overflows");
    memcpy(c, b, len);
    c[32 + 2 * 57] = 0x2C; /* id 57 := 300 (0x012C), vocab is 300 */
    c[32 + 2 * 57 + 1] = 0x01;
    open_bad(c, len, "id 300 at position 57", "id >= vocab");
    const char *text = "just some text, not tokens at all...";
    open_bad(text, strlen(text), "not a mixlm token file", "a text file");
    mx_free(c);
    mx_free(b);

    int32_t bad_ids[3] = {1, 2, 300};
    path_in(p, sizeof p, "w.bin");
    expect_error(data_write_tokens(p, bad_ids, 3, 300, &err), &err, "id 300 at position 2", "write id >= vocab");
    expect_error(data_write_tokens(p, bad_ids, 3, 0, &err), &err, "vocabulary size 0", "write vocab 0");
    CHECK(!mx_file_exists(p), "failed write left %s", p);
}

static void test_prepare(void)
{
    struct mx_error err = {{0}};
    char txt[600], out[600];
    path_in(txt, sizeof txt, "in.txt");
    path_in(out, sizeof out, "in.bin");
    const char *s = "hello\n\tworld  \xC3\xA9\n";
    write_file(txt, s, strlen(s));
    struct tokenizer *t;
    tok_create_byte(&t, &err);
    CHECK(data_prepare_text(txt, t, out, &err) == 0, "prepare: %s", err.msg);
    struct mx_tokfile f;
    CHECK(data_open(&f, out, &err) == 0, "open prepared: %s", err.msg);
    CHECK(f.count == strlen(s) && f.vocab == 256, "prepared count %zu vocab %d", f.count, f.vocab);
    for (size_t i = 0; i < f.count; i++)
        CHECK(data_get(&f, i) == (unsigned char)s[i], "prepared id %zu", i);
    data_close(&f);

    path_in(txt, sizeof txt, "none.txt");
    expect_error(data_prepare_text(txt, t, out, &err), &err, "none.txt", "prepare missing");
    path_in(txt, sizeof txt, "empty.txt");
    write_file(txt, "", 0);
    expect_error(data_prepare_text(txt, t, out, &err), &err, "is empty", "prepare empty");
    tok_free(t);

    struct tokenizer *c;
    CHECK(tok_create_char(&c, "helo", 4, &err) == 0, "char: %s", err.msg);
    path_in(txt, sizeof txt, "in.txt");
    expect_error(data_prepare_text(txt, c, out, &err), &err, "U+000A", "prepare unknown char");
    tok_free(c);
}

static void test_split(void)
{
    size_t e;
    data_split(1000, 0.1, &e);
    CHECK(e == 900, "split 1000 -> %zu", e);
    data_split(7, 0.1, &e);
    CHECK(e == 6, "split 7 -> %zu", e);
    data_split(0, 0.1, &e);
    CHECK(e == 0, "split 0 -> %zu", e);
    data_split(1000, 0.0, &e);
    CHECK(e == 1000, "split no val -> %zu", e);
    data_split(123456789, 0.25, &e);
    CHECK(e == 92592591, "split big -> %zu", e);
}

static void test_batches(void)
{
    struct mx_error err = {{0}};
    char p[600];
    path_in(p, sizeof p, "seq.bin");
    /* ids[i] = i, so a window's contents reveal where it started. */
    const size_t n = 60000;
    int32_t *ids = mx_xmalloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)i;
    CHECK(data_write_tokens(p, ids, n, 65536, &err) == 0, "write: %s", err.msg);
    mx_free(ids);
    struct mx_tokfile f;
    if (data_open(&f, p, &err) != 0) {
        CHECK(0, "open: %s", err.msg);
        return;
    }
    enum { B = 8, T = 16 };
    int32_t x[B * T], y[B * T], x2[B * T], y2[B * T];
    size_t train_end;
    data_split(n, 0.1, &train_end);
    struct mx_rng r1, r2;
    mx_rng_seed(&r1, 42);
    mx_rng_seed(&r2, 42);
    for (int it = 0; it < 200; it++) {
        size_t begin = it % 2 ? train_end : 0, end = it % 2 ? n : train_end;
        CHECK(data_batch(&f, begin, end, B, T, &r1, x, y, &err) == 0, "batch: %s", err.msg);
        CHECK(data_batch(&f, begin, end, B, T, &r2, x2, y2, &err) == 0, "batch: %s", err.msg);
        CHECK(!memcmp(x, x2, sizeof x) && !memcmp(y, y2, sizeof y), "same seed, different batch at %d", it);
        for (int b = 0; b < B; b++) {
            const int32_t *xr = x + b * T, *yr = y + b * T;
            CHECK((size_t)xr[0] >= begin && (size_t)xr[0] + T + 1 <= end, "window start %d outside [%zu, %zu)",
                  xr[0], begin, end);
            for (int t = 0; t < T; t++) {
                CHECK(xr[t] == xr[0] + t, "x not contiguous");
                CHECK(yr[t] == xr[t] + 1, "y is not x shifted by one");
            }
        }
    }
    struct mx_rng r3;
    mx_rng_seed(&r3, 43);
    data_batch(&f, 0, train_end, B, T, &r3, x2, y2, &err);
    mx_rng_seed(&r1, 42);
    data_batch(&f, 0, train_end, B, T, &r1, x, y, &err);
    CHECK(memcmp(x, x2, sizeof x) != 0, "different seeds gave the same batch");

    /* A small range: every start in [begin, end-T-1] is reachable, nothing beyond. */
    int hit[4] = {0};
    for (int it = 0; it < 100; it++) {
        CHECK(data_batch(&f, 100, 100 + T + 4, B, T, &r1, x, y, &err) == 0, "small range: %s", err.msg);
        for (int b = 0; b < B; b++) {
            int s = x[b * T] - 100;
            CHECK(s >= 0 && s < 4, "start offset %d outside [0, 4)", s);
            if (s >= 0 && s < 4)
                hit[s]++;
        }
    }
    CHECK(hit[0] && hit[1] && hit[2] && hit[3], "starts not all reached: %d %d %d %d", hit[0], hit[1], hit[2],
          hit[3]);
    CHECK(data_batch(&f, 500, 500 + T + 1, B, T, &r1, x, y, &err) == 0 && x[0] == 500 && y[T - 1] == 500 + T,
          "exact-length range");

    expect_error(data_batch(&f, 10, 10 + T, B, T, &r1, x, y, &err), &err, "16-token range is too short",
                 "range too short");
    expect_error(data_batch(&f, 0, n + 1, B, T, &r1, x, y, &err), &err, "outside", "range past the end");
    expect_error(data_batch(&f, 0, n, 0, T, &r1, x, y, &err), &err, ">= 1", "B = 0");

    /* Sequential windows. */
    CHECK(data_num_windows(0, 33, 16) == 2, "windows 33/16");
    CHECK(data_num_windows(0, 32, 16) == 1, "windows 32/16");
    CHECK(data_num_windows(5, 21, 16) == 0, "windows 16 tokens");
    CHECK(data_num_windows(10, 5, 16) == 0, "windows empty range");
    size_t nw = data_num_windows(train_end, n, T);
    int32_t wx[T], wy[T];
    for (size_t k = 0; k < nw; k++) {
        size_t s = train_end + k * T;
        data_window(&f, s, T, wx, wy);
        CHECK(wx[0] == (int32_t)s && wx[T - 1] == (int32_t)(s + T - 1) && wy[T - 1] == (int32_t)(s + T),
              "window %zu", k);
    }
    CHECK(train_end + nw * T + 1 <= n, "last window past the end");
    data_close(&f);
}

static int setup(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    return 0;
}

/* Files stay for inspection when a check failed. */
static void teardown(void)
{
    if (check_failures) {
        fprintf(stderr, "test_data: files kept in %s\n", dir);
        return;
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "note: could not remove %s\n", dir);
}

/* Hostile numbers: a 'k' suffix whose product overflows a long (2^54+1 k wraps to 1024) and
 * out-of-range values are refused before any multiply; a config integer far outside int's
 * range is refused before any cast. */
static int case_parse_numbers(void)
{
    struct mx_error err = {{0}};
    long v = -1;
    CHECK(mx_parse_int("64k", 1, 1 << 22, "--context", &v, &err) == 0 && v == 65536, "64k: %ld %s", v, err.msg);
    const char *bad[] = {"18014398509481985k", "9223372036854775807k", "-9223372036854775807k",
                         "99999999999999999999", "k", "", "12x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = -1;
        int rc = mx_parse_int(bad[i], 1, 1 << 22, "--context", &v, &err);
        CHECK(rc != 0, "'%s' accepted as %ld", bad[i], v);
        CHECK(rc == 0 || strstr(err.msg, "--context"), "'%s': message lacks the flag: %s", bad[i], err.msg);
        if (rc)
            fprintf(stderr, "  %-24s -> %s\n", bad[i], err.msg);
    }
    const char *cfgs[] = {"1e300", "4294967298", "-4294967298", "2.5", "1e999"};
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        char js[400];
        snprintf(js, sizeof js,
                 "{\"n_layer\":%s,\"n_head\":1,\"n_embd\":4,\"block_size\":4,\"vocab_size\":5,\"bias\":false,"
                 "\"seed\":\"1\",\"attn\":[\"dense\"]}",
                 cfgs[i]);
        cJSON *j = cJSON_Parse(js);
        struct mx_config c;
        int rc = j ? model_config_from_json(&c, j, &err) : -1;
        CHECK(rc != 0 && (!j || strstr(err.msg, "'n_layer'")), "n_layer %s accepted or unnamed: %s", cfgs[i],
              err.msg);
        cJSON_Delete(j);
    }
    return 0;
}

static int case_files(void)
{
    test_files();
    return 0;
}

static int case_prepare(void)
{
    test_prepare();
    return 0;
}

static int case_split(void)
{
    test_split();
    return 0;
}

static int case_batches(void)
{
    test_batches();
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"files", case_files},
        {"parse_numbers", case_parse_numbers},
        {"prepare", case_prepare},
        {"split", case_split},
        {"batches", case_batches},
    };
    static const struct check_fixture fx = {setup, teardown};
    return check_main(argc, argv, cases, CHECK_N(cases), &fx);
}
