/* test_tokenizer_cli.c — `mixlm tokenizer train|encode|decode` end to end through the binary
 * ($MIXLM_BIN, set by CTest): train -> encode -> decode gives the text back byte for byte, and
 * help, unknown flags, missing models and bad ids give the documented exit codes (0 / 2 / 1).
 * Skips (77) when the binary has not been built. */
#include "check.h"
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/mixlm_test_tokcli_XXXXXX";
static const char *bin;

/* Run `bin args` through the shell (stderr to dir/err.txt); returns the exit status. */
static int run(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s/err.txt'", bin, args, dir);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int err_contains(const char *needle)
{
    char p[600];
    snprintf(p, sizeof p, "%s/err.txt", dir);
    struct mx_error e;
    size_t n;
    char *s = mx_read_file(p, &n, &e);
    int found = s && strstr(s, needle) != NULL;
    if (!found)
        fprintf(stderr, "stderr was: %s\n", s ? s : e.msg);
    mx_free(s);
    return found;
}

/* The binary, a generated text and a trained model, shared by the cases. */
static int setup(void)
{
    bin = getenv("MIXLM_BIN");
    if (!bin || access(bin, X_OK) != 0) {
        return check_skip("MIXLM_BIN (%s) is not an executable mixlm; build the mixlm target", bin ? bin : "unset");
    }
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    /* Generated text: words, runs of spaces, tabs, CRLF, UTF-8. */
    char p[600];
    snprintf(p, sizeof p, "%s/text.txt", dir);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL, "create %s", p);
    if (!f)
        return 1;
    struct mx_rng r;
    mx_rng_seed(&r, 7);
    static const char *w[] = {"alpha", "beta", "gamma", "délta", "ε", "日本", "x", "yy", "zzz", "  ", "\t", "\r\n",
                              "\n", "the", "of", "and", "42", "(", ")"};
    for (int i = 0; i < 20000; i++)
        fprintf(f, "%s%s", w[mx_rng_below(&r, sizeof w / sizeof w[0])], mx_rng_below(&r, 3) ? " " : "");
    fclose(f);

    char a[2048];
    snprintf(a, sizeof a, "tokenizer train --data '%s/text.txt' --vocab 320 --type bpe -o '%s/t.model'", dir, dir);
    CHECK(run(a) == 0 && err_contains("trained a 320-piece bpe tokenizer"), "train");
    return check_failures ? 1 : 0;
}

/* Files stay for inspection when a check failed. */
static void teardown(void)
{
    if (check_failures) {
        fprintf(stderr, "test_tokenizer_cli: files kept in %s\n", dir);
        return;
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "note: could not remove %s\n", dir);
}

/* encode (--data and stdin) then decode gives the text back byte for byte. */
static int case_round_trip(void)
{
    char a[2048];
    snprintf(a, sizeof a, "tokenizer encode --model '%s/t.model' --data '%s/text.txt' > '%s/ids.txt'", dir, dir,
             dir);
    CHECK(run(a) == 0 && err_contains("MB/s"), "encode --data");
    snprintf(a, sizeof a, "tokenizer encode --model '%s/t.model' < '%s/text.txt' > '%s/ids2.txt'", dir, dir, dir);
    CHECK(run(a) == 0, "encode stdin");
    snprintf(a, sizeof a, "tokenizer decode --model '%s/t.model' < '%s/ids.txt' > '%s/back.txt'", dir, dir, dir);
    CHECK(run(a) == 0, "decode");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cmp -s '%s/text.txt' '%s/back.txt' && cmp -s '%s/ids.txt' '%s/ids2.txt'", dir, dir,
             dir, dir);
    CHECK(system(cmd) == 0, "decode(encode(text)) != text, or stdin and --data encodings differ");
    return 0;
}

/* help exits 0, usage errors 2, missing models and bad ids 1, each with its message. */
static int case_exit_codes(void)
{
    char a[2048], p[600];
    FILE *f;
    CHECK(run("tokenizer --help > /dev/null") == 0, "tokenizer --help");
    CHECK(run("tokenizer train --help > /dev/null") == 0, "train --help");
    CHECK(run("tokenizer encode --help > /dev/null") == 0, "encode --help");
    CHECK(run("tokenizer decode --help > /dev/null") == 0, "decode --help");
    CHECK(run("tokenizer train --bogus 1") == 2 && err_contains("unknown option '--bogus'"), "unknown flag");
    CHECK(run("tokenizer frobnicate") == 2, "unknown subcommand");
    CHECK(run("tokenizer train --data x") == 2 && err_contains("required"), "missing -o");
    CHECK(run("tokenizer train --data x -o y --vocab 0") == 2 && err_contains("--vocab"), "vocab 0");
    snprintf(a, sizeof a, "tokenizer encode --model '%s/none.model' < /dev/null", dir);
    CHECK(run(a) == 1 && err_contains("none.model"), "missing model");
    snprintf(p, sizeof p, "%s/bad_ids.txt", dir);
    f = fopen(p, "wb");
    if (f) {
        fputs("1 2 oops\n", f);
        fclose(f);
    }
    snprintf(a, sizeof a, "tokenizer decode --model '%s/t.model' < '%s'", dir, p);
    CHECK(run(a) == 1 && err_contains("'oops'"), "bad id");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"round_trip", case_round_trip},
        {"exit_codes", case_exit_codes},
    };
    static const struct check_fixture fx = {setup, teardown};
    return check_main(argc, argv, cases, CHECK_N(cases), &fx);
}
