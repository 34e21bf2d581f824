/* cmd_data.c — `mixlm data recall --out FILE [...]`: writes the synthetic associative-recall
 * task (data.h documents the format) for `mixlm train --tokenizer char --align T+1`, scored
 * by `mixlm eval RUN --recall`. Flags in, data/ called; not the generator itself (data/). */
#include "cli/args.h"
#include "cli/commands.h"
#include "data/data.h"

#include <string.h>

static const char *usage =
    "usage: mixlm data recall --out FILE [--T N] [--pairs K] [--queries Q] [--vocab V] [--seqs N] [--seed S]\n"
    "\n"
    "Writes the multi-query associative-recall task (MQAR, Zoology / Based) as UTF-8 text, one\n"
    "sequence per line, one character per token: K key-value pairs (distinct keys U+4E00+i, values\n"
    "U+AC00+j with i, j < V), then filler '.' holding Q queries at random even positions: a key of\n"
    "the pairs followed by its value. Each line is T characters and a newline (T + 1 tokens).\n"
    "Only the value after a query key is predictable; train and score with\n"
    "  mixlm train --data FILE --tokenizer char --context T --align T+1 ...\n"
    "  mixlm eval RUN --recall          accuracy on the answers of the validation split\n"
    "The same seed gives the same file.";

static int data_recall_cmd(int argc, char **argv)
{
    struct mx_recall_opts o;
    data_recall_default(&o);
    long T = o.T, K = o.pairs, Q = o.queries, V = o.vocab, seqs = o.seqs, seed = (long)o.seed;
    char out[1024] = "";
    struct arg a[] = {
        {"--out", ARG_STR, out, sizeof out, 0, 0, "the text file to write", 0},
        {"--T", ARG_INT, &T, 0, 4, 1 << 22, "tokens per sequence before its newline (default 256)", 0},
        {"--pairs", ARG_INT, &K, 0, 1, MX_RECALL_VOCAB_MAX, "key-value pairs per sequence (default 16)", 0},
        {"--queries", ARG_INT, &Q, 0, 1, MX_RECALL_VOCAB_MAX, "queries per sequence, <= pairs (default 16)", 0},
        {"--vocab", ARG_INT, &V, 0, 1, MX_RECALL_VOCAB_MAX, "keys and values to draw from (default 64)", 0},
        {"--seqs", ARG_INT, &seqs, 0, 1, 1L << 30, "sequences (default 2000)", 0},
        {"--seed", ARG_INT, &seed, 0, 0, (double)(1LL << 53), "seed (default 1)", 0},
    };
    int na = (int)(sizeof a / sizeof a[0]), npos;
    const char *pos[1];
    struct mx_error err;
    int rc = args_parse(argc, argv, a, na, pos, 0, &npos, usage, &err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "mixlm data recall: %s\n", err.msg);
        return 2;
    }
    if (!out[0]) {
        fprintf(stderr, "mixlm data recall: give the file to write with --out FILE\n");
        return 2;
    }
    o.T = (int)T, o.pairs = (int)K, o.queries = (int)Q, o.vocab = (int)V, o.seqs = seqs, o.seed = (uint64_t)seed;
    if (data_recall_check(&o, &err) != 0) {
        fprintf(stderr, "mixlm data recall: %s\n", err.msg);
        return 2;
    }
    if (data_recall_write(out, &o, &err) != 0) {
        fprintf(stderr, "mixlm data recall: %s\n", err.msg);
        return 1;
    }
    printf("wrote %s: %ld sequences of %d tokens + newline (%d pairs, %d queries, %d keys and values; chance %.4f)\n",
           out, o.seqs, o.T, o.pairs, o.queries, o.vocab, 1.0 / o.vocab);
    return 0;
}

int cmd_data(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "recall"))
        return data_recall_cmd(argc - 1, argv + 1);
    FILE *f = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? stdout : stderr;
    fprintf(f, "usage: mixlm data recall --out FILE [options]   the associative-recall task (mixlm data recall --help)\n");
    if (f == stdout)
        return 0;
    if (argc >= 2)
        fprintf(stderr, "mixlm data: unknown task '%s'; the one task is 'recall'\n", argv[1]);
    return 2;
}
