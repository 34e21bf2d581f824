/* test_tokenizer.c — the char and byte tokenizers: exact round trips on newlines, tabs, runs of
 * spaces and multi-byte UTF-8, vocabulary order, unknown-character and invalid-UTF-8 errors,
 * tok_piece, JSON round trips (and damaged JSON), the --tokenizer flag and tok_count_chars.
 * SentencePiece is tested in test_spm.c. */
#include "check.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char sample[] = "Hello,  world!\n\tTabbed\t\tline   with   runs\r\n"
                             "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x98\x80 end\n\n  ";

static void round_trip(const struct tokenizer *t, const char *s, size_t len, const char *what)
{
    struct mx_error err = {{0}};
    int32_t *ids = NULL;
    size_t n = 0;
    if (tok_encode(t, s, len, &ids, &n, &err) != 0) {
        CHECK(0, "%s: encode: %s", what, err.msg);
        return;
    }
    char *back = NULL;
    size_t bl = 0;
    CHECK(tok_decode(t, ids, n, &back, &bl, &err) == 0, "%s: decode: %s", what, err.msg);
    CHECK(back && bl == len && !memcmp(back, s, len), "%s: round trip differs", what);
    CHECK(back && back[bl] == 0, "%s: decode not NUL-terminated", what);
    mx_free(back);
    mx_free(ids);
}

static void expect_error(int rc, const struct mx_error *err, const char *needle, const char *what)
{
    CHECK(rc != 0, "%s: expected an error", what);
    if (rc != 0) {
        CHECK(strstr(err->msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err->msg, needle);
        printf("  %-24s -> %s\n", what, err->msg);
    }
}

static void test_char(void)
{
    struct mx_error err = {{0}};
    struct tokenizer *t = NULL;
    size_t len = strlen(sample);
    CHECK(tok_create_char(&t, sample, len, &err) == 0, "create: %s", err.msg);
    if (!t)
        return;
    CHECK(!strcmp(tok_kind(t), "char"), "kind %s", tok_kind(t));
    /* distinct: \t \n \r space ! , H T a b c d e h i l n o r s t u w é 日 本 語 😀 */
    CHECK(tok_vocab_size(t) == 29, "vocab %d", tok_vocab_size(t));
    round_trip(t, sample, len, "sample");
    round_trip(t, "", 0, "empty");
    round_trip(t, "\xF0\x9F\x98\x80\xF0\x9F\x98\x80\n", 9, "emoji twice");

    /* ids follow code point order: '\t' (U+0009) is 0, the emoji (largest) is last. */
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(tok_encode(t, "\t\xF0\x9F\x98\x80\n", 6, &ids, &n, &err) == 0, "encode: %s", err.msg);
    CHECK(n == 3 && ids[0] == 0 && ids[1] == 28 && ids[2] == 1, "ids %d %d %d", ids ? ids[0] : -1,
          ids ? ids[1] : -1, ids ? ids[2] : -1);
    mx_free(ids);

    char buf[8];
    CHECK(tok_piece(t, 28, buf, sizeof buf) == 4 && !memcmp(buf, "\xF0\x9F\x98\x80", 4), "piece 28");
    CHECK(tok_piece(t, 28, buf, 3) == -1, "piece into a short buffer");
    CHECK(tok_piece(t, 29, buf, sizeof buf) == -1 && tok_piece(t, -1, buf, sizeof buf) == -1, "bad piece id");

    int rc = tok_encode(t, "Hello\nxyz", 9, &ids, &n, &err);
    expect_error(rc, &err, "U+0078 'x' at byte offset 6", "unknown char");
    rc = tok_encode(t, "ab\xE2\x82\xAC", 5, &ids, &n, &err);
    expect_error(rc, &err, "U+20AC", "unknown euro sign");
    rc = tok_encode(t, "Hel\xFFlo", 6, &ids, &n, &err);
    expect_error(rc, &err, "invalid UTF-8 at byte offset 3", "bad UTF-8 in encode");
    int32_t bad[2] = {0, 29};
    char *s = NULL;
    size_t sl;
    rc = tok_decode(t, bad, 2, &s, &sl, &err);
    expect_error(rc, &err, "token id 29 at position 1", "decode bad id");

    /* JSON round trip. */
    cJSON *j = tok_to_json(t);
    const cJSON *chars = cJSON_GetObjectItemCaseSensitive(j, "chars");
    CHECK(cJSON_IsString(chars) && strlen(chars->valuestring) == 39, "chars field");
    char *js = cJSON_PrintUnformatted(j);
    cJSON *parsed = cJSON_Parse(js);
    struct tokenizer *u = NULL;
    CHECK(tok_from_json(&u, parsed, NULL, &err) == 0, "from_json: %s", err.msg);
    if (u) {
        CHECK(tok_vocab_size(u) == 29, "reloaded vocab %d", tok_vocab_size(u));
        int32_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        tok_encode(t, sample, len, &a, &na, &err);
        tok_encode(u, sample, len, &b, &nb, &err);
        CHECK(a && b && na == nb && !memcmp(a, b, na * sizeof *a), "reloaded tokenizer encodes differently");
        mx_free(a);
        mx_free(b);
        tok_free(u);
    }
    free(js);
    cJSON_Delete(parsed);
    cJSON_Delete(j);
    tok_free(t);

    /* Creation errors. */
    rc = tok_create_char(&t, "", 0, &err);
    expect_error(rc, &err, "empty", "empty text");
    rc = tok_create_char(&t, "ok\xC3\x28", 4, &err);
    expect_error(rc, &err, "--tokenizer byte", "bad UTF-8");
    rc = tok_create_char(&t, "\xE0\x80\x80", 3, &err);
    expect_error(rc, &err, "offset 0", "overlong UTF-8");
    rc = tok_create_char(&t, "\xED\xA0\x80", 3, &err);
    expect_error(rc, &err, "offset 0", "surrogate");
    rc = tok_create_char(&t, "ab\xE6\x97", 4, &err);
    expect_error(rc, &err, "offset 2", "truncated sequence");
    rc = tok_create_char(&t, "a\0b", 3, &err);
    expect_error(rc, &err, "NUL", "NUL char");
    CHECK(t == NULL, "t set on error");
}

static void test_byte(void)
{
    struct mx_error err = {{0}};
    struct tokenizer *t = NULL;
    CHECK(tok_create_byte(&t, &err) == 0, "create byte");
    CHECK(!strcmp(tok_kind(t), "byte") && tok_vocab_size(t) == 256, "byte kind/vocab");
    round_trip(t, sample, strlen(sample), "sample");
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    round_trip(t, all, 256, "all bytes");
    int32_t *ids = NULL;
    size_t n;
    tok_encode(t, "\xFF\x00", 2, &ids, &n, &err);
    CHECK(n == 2 && ids[0] == 255 && ids[1] == 0, "byte ids");
    mx_free(ids);
    cJSON *j = tok_to_json(t);
    char *js = cJSON_PrintUnformatted(j);
    CHECK(!strcmp(js, "{\"type\":\"byte\"}"), "json %s", js);
    struct tokenizer *u = NULL;
    CHECK(tok_from_json(&u, j, "/nonexistent", &err) == 0 && tok_vocab_size(u) == 256, "byte from_json");
    tok_free(u);
    free(js);
    cJSON_Delete(j);
    tok_free(t);
}

static void test_json_errors(void)
{
    struct mx_error err = {{0}};
    struct tokenizer *t = NULL;
    static const struct {
        const char *json, *needle, *what;
    } cases[] = {
        {"{}", "\"type\"", "no type"},
        {"{\"type\":7}", "\"type\"", "type not a string"},
        {"{\"type\":\"wordpiece\"}", "unknown type \"wordpiece\"", "unknown type"},
        {"{\"type\":\"char\"}", "\"chars\"", "char without chars"},
        {"{\"type\":\"char\",\"chars\":\"\"}", "\"chars\"", "char with empty chars"},
        {"{\"type\":\"char\",\"chars\":\"ba\"}", "ascending", "chars out of order"},
        {"{\"type\":\"char\",\"chars\":\"aa\"}", "ascending", "chars repeated"},
        {"{\"type\":\"spm\"}", "\"model\"", "spm without model"},
        {"{\"type\":\"spm\",\"model\":\"nope.model\"}", "nope.model", "spm model missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        CHECK(j != NULL, "parse %s", cases[i].json);
        int rc = tok_from_json(&t, j, "/tmp", &err);
        expect_error(rc, &err, cases[i].needle, cases[i].what);
        CHECK(t == NULL, "%s: t set on error", cases[i].what);
        cJSON_Delete(j);
    }
}

static void test_flag(void)
{
    struct mx_error err = {{0}};
    struct tokenizer *t = NULL;
    CHECK(tok_create_from_flag(&t, "byte", NULL, NULL, 0, NULL, &err) == 0 && !strcmp(tok_kind(t), "byte"),
          "flag byte: %s", err.msg);
    tok_free(t);
    CHECK(tok_create_from_flag(&t, "char", NULL, "abcab", 5, NULL, &err) == 0 && tok_vocab_size(t) == 3,
          "flag char: %s", err.msg);
    tok_free(t);
    t = NULL;
    int rc = tok_create_from_flag(&t, "chars", NULL, "abc", 3, NULL, &err);
    expect_error(rc, &err, "valid forms", "unknown flag");
    rc = tok_create_from_flag(&t, "", NULL, "abc", 3, NULL, &err);
    expect_error(rc, &err, "valid forms", "empty flag");
    rc = tok_create_from_flag(&t, "bpe:0", NULL, "abc", 3, "/tmp", &err);
    expect_error(rc, &err, "out of range", "bpe:0");
    rc = tok_create_from_flag(&t, "spm:", NULL, "abc", 3, NULL, &err);
    expect_error(rc, &err, "path is empty", "spm: empty");
    rc = tok_create_from_flag(&t, "spm:/nonexistent/x.model", NULL, "abc", 3, NULL, &err);
    expect_error(rc, &err, "/nonexistent/x.model", "spm: missing");
    rc = tok_create_from_flag(&t, "char", "/nonexistent/text.txt", NULL, 0, NULL, &err);
    expect_error(rc, &err, "/nonexistent/text.txt", "char: missing text");
    CHECK(t == NULL, "t set on error");
}

static void test_counts(void)
{
    CHECK(tok_count_chars(sample, strlen(sample)) == 62, "count_chars %zu", tok_count_chars(sample, strlen(sample)));
    CHECK(tok_count_chars("", 0) == 0, "count_chars empty");
    CHECK(tok_utf8_check(sample, strlen(sample)) == strlen(sample), "utf8_check valid");
    CHECK(tok_utf8_check("ab\xF4\x90\x80\x80", 6) == 2, "utf8_check > U+10FFFF");
}

static int case_char(void)
{
    test_char();
    return 0;
}

static int case_byte(void)
{
    test_byte();
    return 0;
}

static int case_json_errors(void)
{
    test_json_errors();
    return 0;
}

static int case_flag(void)
{
    test_flag();
    return 0;
}

static int case_counts(void)
{
    test_counts();
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"char", case_char},
        {"byte", case_byte},
        {"json_errors", case_json_errors},
        {"flag", case_flag},
        {"counts", case_counts},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
