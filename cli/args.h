/* args.h — a small table-driven flag parser for the subcommands: --name value or
 * --name=value, typed and range-checked, unknown flags rejected with the list of valid ones,
 * --help printed from the same table. Not getopt: no short flags, no permutation magic. */
#ifndef MIXLM_ARGS_H
#define MIXLM_ARGS_H

#include "core/core.h"

enum arg_type { ARG_INT, ARG_FLOAT, ARG_STR, ARG_FLAG, ARG_LIST, ARG_INTS };

struct arg {
    const char *name; /* "--steps" */
    enum arg_type type;
    void *dst;        /* long*, double*, char[size], int*, struct arg_list* or struct arg_ints* */
    size_t size;      /* ARG_STR: buffer size */
    double lo, hi;    /* ARG_INT/ARG_FLOAT/ARG_INTS range (of each value) */
    const char *help;
    int set;          /* filled: given on the command line */
};

/* Repeatable string flag (e.g. --attn-layer 0=dense). */
#define ARG_LIST_MAX 64
struct arg_list {
    int n;
    char v[ARG_LIST_MAX][512];
};

/* Comma-separated integers, each with an optional k (x1024) or m (x1048576) suffix, e.g.
 * --context 1k,4k,16k; a repeated flag appends. At least one value per use, ARG_INTS_MAX in all. */
#define ARG_INTS_MAX 64
struct arg_ints {
    int n;
    long v[ARG_INTS_MAX];
};

/* Parse argv[1..argc) (argv[0] is the subcommand). Positionals go to pos (up to max_pos).
 * Returns 0, 1 when --help was printed, or -1 with err (unknown flag, missing or bad value). */
int args_parse(int argc, char **argv, struct arg *a, int n, const char **pos, int max_pos, int *n_pos,
               const char *usage, struct mx_error *err);
void args_help(FILE *f, const char *usage, const struct arg *a, int n);
/* Whether flag `name` was given. */
int args_given(const struct arg *a, int n, const char *name);

#endif
