/* cmd_tokenizer.c — `mixlm tokenizer train|encode|decode`: train a SentencePiece model from a
 * text file, print the ids of a text (MB/s on stderr) and turn ids back into text.
 * Only argument parsing and I/O: the work is tokenizer/'s (tok_spm_train, tok_encode, tok_decode).
 * Exit codes: 0 ok, 1 failure, 2 usage error. */
#include "cli/args.h"
#include "cli/commands.h"
#include "core/core.h"
#include "tokenizer/tokenizer.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage_main(FILE *f)
{
    fprintf(f, "usage: mixlm tokenizer <train|encode|decode> [options]\n"
               "  train   train a SentencePiece (BPE or unigram) model on a text file\n"
               "  encode  print the token ids of a text (whitespace-separated, one line)\n"
               "  decode  read whitespace-separated ids on stdin, print the text\n"
               "Run `mixlm tokenizer <subcommand> --help` for its options.\n");
}

static const char *usage_train =
    "usage: mixlm tokenizer train --data FILE -o OUT.model [--vocab N] [--type bpe|unigram]\n"
    "The model round-trips text exactly: identity normalisation, no dummy prefix, spaces kept,\n"
    "byte fallback for characters never seen in training. Use it with --tokenizer spm:OUT.model.";
static const char *usage_encode =
    "usage: mixlm tokenizer encode --model M.model [--data FILE] [--threads N]\n"
    "Prints the ids on stdout, space-separated, and the count and MB/s on stderr.";
static const char *usage_decode =
    "usage: mixlm tokenizer decode --model M.model < ids.txt\n"
    "Reads whitespace-separated ids from stdin and writes the text to stdout.";

/* Read all of stdin (mx_free); NULL + err on a read error. */
static char *read_stdin(size_t *len, struct mx_error *err)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = mx_xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            char *bigger = mx_xmalloc(2 * cap + 1);
            memcpy(bigger, buf, n);
            mx_free(buf);
            buf = bigger;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) {
            if (ferror(stdin)) {
                mx_free(buf);
                mx_errorf(err, "cannot read stdin: %s", strerror(errno));
                return NULL;
            }
            break;
        }
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

struct tok_opts {
    char data[512], out[512], model[512], type[16];
    long vocab, threads;
};

/* Parse argv[1..] (argv[0] is the subcommand) with flags first..first+n-1 of the table below
 * (encode: 0-2, decode: 0, train: 1-5), -o meaning --out. Returns 0 to run, 1 after --help, 2 on
 * a usage error (printed). */
static int parse(int argc, char **argv, int first, int n, const char *usage, struct tok_opts *o)
{
    struct arg a[] = {
        {"--model", ARG_STR, o->model, sizeof o->model, 0, 0, "a SentencePiece model (from `mixlm tokenizer train`)", 0},
        {"--data", ARG_STR, o->data, sizeof o->data, 0, 0, "UTF-8 text to train on, or to encode (encode: default stdin)", 0},
        {"--threads", ARG_INT, &o->threads, 0, 1, 4096, "threads (default: all cores)", 0},
        {"--out", ARG_STR, o->out, sizeof o->out, 0, 0, "where to write the model, atomically (also -o FILE)", 0},
        {"--vocab", ARG_INT, &o->vocab, 0, MX_TOK_SPM_VOCAB_MIN, MX_TOK_VOCAB_MAX,
         "number of pieces, >= 257 + distinct characters (default 4096)", 0},
        {"--type", ARG_STR, o->type, sizeof o->type, 0, 0, "bpe (default) or unigram", 0},
    };
    char name[64];
    snprintf(name, sizeof name, "tokenizer %s", argv[0]);
    char **av = mx_xcalloc((size_t)(argc + 1) * sizeof *av);
    av[0] = name;
    for (int i = 1; i < argc; i++)
        av[i] = !strcmp(argv[i], "-o") ? "--out" : argv[i];
    const char *pos[1];
    int npos;
    struct mx_error err;
    int rc = args_parse(argc, av, a + first, n, pos, 0, &npos, usage, &err);
    mx_free(av);
    if (rc < 0)
        fprintf(stderr, "mixlm tokenizer %s: %s\n", argv[0], err.msg);
    return rc < 0 ? 2 : rc;
}

static int cmd_train_tok(int argc, char **argv)
{
    struct tok_opts o = {.type = "bpe", .vocab = 4096};
    int rc = parse(argc, argv, 1, 5, usage_train, &o);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (!o.data[0] || !o.out[0]) {
        fprintf(stderr, "mixlm tokenizer train: --data FILE and -o OUT.model are required (see --help)\n");
        return 2;
    }
    if (strcmp(o.type, "bpe") && strcmp(o.type, "unigram")) {
        fprintf(stderr, "mixlm tokenizer train: --type '%s' is unknown; use bpe or unigram\n", o.type);
        return 2;
    }
    mx_set_threads((int)o.threads);
    struct mx_error err;
    double t0 = mx_now();
    if (tok_spm_train(o.data, (int)o.vocab, o.type, o.out, &err) != 0) {
        fprintf(stderr, "mixlm tokenizer train: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "trained a %ld-piece %s tokenizer on '%s' in %.2fs -> %s\n", o.vocab, o.type, o.data,
            mx_now() - t0, o.out);
    return 0;
}

/* Write ids space-separated with one newline at the end, through a buffer (fast for millions). */
static int print_ids(const int32_t *ids, size_t n)
{
    char buf[1 << 16];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > sizeof buf - 16) {
            if (fwrite(buf, 1, m, stdout) != m)
                return -1;
            m = 0;
        }
        m += (size_t)snprintf(buf + m, 16, i + 1 < n ? "%d " : "%d", (int)ids[i]);
    }
    buf[m++] = '\n';
    if (fwrite(buf, 1, m, stdout) != m || fflush(stdout) != 0)
        return -1;
    return 0;
}

static int cmd_encode_tok(int argc, char **argv)
{
    struct tok_opts o = {0};
    int rc = parse(argc, argv, 0, 3, usage_encode, &o);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (!o.model[0]) {
        fprintf(stderr, "mixlm tokenizer encode: --model FILE is required (see --help)\n");
        return 2;
    }
    mx_set_threads((int)o.threads);
    struct mx_error err;
    struct tokenizer *t = NULL;
    char *text = NULL;
    int32_t *ids = NULL;
    size_t len = 0, n = 0;
    rc = 1;
    if (tok_create_spm(&t, o.model, &err) != 0)
        goto out_err;
    text = o.data[0] ? mx_read_file(o.data, &len, &err) : read_stdin(&len, &err);
    if (!text)
        goto out_err;
    double t0 = mx_now();
    if (tok_encode(t, text, len, &ids, &n, &err) != 0)
        goto out_err;
    double dt = mx_now() - t0;
    if (print_ids(ids, n) != 0) {
        mx_errorf(&err, "cannot write the ids to stdout: %s", strerror(errno));
        goto out_err;
    }
    fprintf(stderr, "encoded %zu bytes into %zu tokens (%.2f bytes/token) in %.3fs: %.2f MB/s on %d threads\n",
            len, n, n ? (double)len / n : 0.0, dt, dt > 0 ? len / 1e6 / dt : 0.0, mx_get_threads());
    rc = 0;
    goto out;
out_err:
    fprintf(stderr, "mixlm tokenizer encode: %s\n", err.msg);
out:
    mx_free(ids);
    mx_free(text);
    tok_free(t);
    return rc;
}

static int cmd_decode_tok(int argc, char **argv)
{
    struct tok_opts o = {0};
    int rc = parse(argc, argv, 0, 1, usage_decode, &o);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (!o.model[0]) {
        fprintf(stderr, "mixlm tokenizer decode: --model FILE is required (see --help)\n");
        return 2;
    }
    struct mx_error err;
    struct tokenizer *t = NULL;
    char *in = NULL, *text = NULL;
    int32_t *ids = NULL;
    size_t len = 0, n = 0, tlen = 0;
    rc = 1;
    if (tok_create_spm(&t, o.model, &err) != 0)
        goto out_err;
    if (!(in = read_stdin(&len, &err)))
        goto out_err;
    ids = mx_xmalloc((len / 2 + 1) * sizeof *ids); /* each id takes >= 2 bytes with its separator */
    for (char *p = in;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || (*end && !isspace((unsigned char)*end)) || v < 0 || v >= tok_vocab_size(t)) {
            int w = 0;
            while (p[w] && !isspace((unsigned char)p[w]) && w < 32)
                w++;
            mx_errorf(&err, "input item %zu '%.*s' is not a token id in [0, %d) for this model; give "
                            "whitespace-separated ids as printed by `mixlm tokenizer encode`",
                      n + 1, w, p, tok_vocab_size(t));
            goto out_err;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    if (tok_decode(t, ids, n, &text, &tlen, &err) != 0)
        goto out_err;
    if ((tlen && fwrite(text, 1, tlen, stdout) != tlen) || fflush(stdout) != 0) {
        mx_errorf(&err, "cannot write the text to stdout: %s", strerror(errno));
        goto out_err;
    }
    rc = 0;
    goto out;
out_err:
    fprintf(stderr, "mixlm tokenizer decode: %s\n", err.msg);
out:
    mx_free(text);
    mx_free(ids);
    mx_free(in);
    tok_free(t);
    return rc;
}

int cmd_tokenizer(int argc, char **argv)
{
    if (argc < 2) {
        usage_main(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
        usage_main(stdout);
        return 0;
    }
    if (!strcmp(sub, "train"))
        return cmd_train_tok(argc - 1, argv + 1);
    if (!strcmp(sub, "encode"))
        return cmd_encode_tok(argc - 1, argv + 1);
    if (!strcmp(sub, "decode"))
        return cmd_decode_tok(argc - 1, argv + 1);
    fprintf(stderr, "mixlm tokenizer: unknown subcommand '%s'\n", sub);
    usage_main(stderr);
    return 2;
}
