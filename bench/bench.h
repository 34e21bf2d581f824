/* bench.h — the mixer benchmark harness behind `mixlm bench`: time and memory of mixer
 * sublayers across context lengths, each (mixer, length) in its own forked child so an
 * out-of-memory kill or an abort costs one row and the parent can enforce a wall-time budget;
 * the sgemm ceiling; the rows as text, CSV and JSON. Not a model benchmark (no embedding, MLP,
 * LayerNorm or optimizer), not argument parsing (cli/), not generation timing (infer/). */
#ifndef MIXLM_BENCH_H
#define MIXLM_BENCH_H

#include "attention/mixer.h"

#include <stdio.h>

#define BENCH_MAX_ATTN 64
#define BENCH_MAX_CTX 64
#define BENCH_MAX_REPEATS 1000
#define BENCH_NOTE_MAX (MX_ERR_MAX + 64)

enum bench_format { BENCH_TEXT, BENCH_JSON, BENCH_CSV };

struct bench_opts {
    const char *attn[BENCH_MAX_ATTN]; /* mixer specs as given */
    int n_attn;
    int ctx[BENCH_MAX_CTX]; /* context lengths, in the order given */
    int n_ctx;
    int B, C, H, L;
    int repeats, warmup;
    int threads;        /* 0: OpenMP's default (bench_opts_finish resolves it) */
    double time_budget; /* seconds per (mixer, length) run; wall time of the child */
    double mem_budget;  /* MiB; < 0: 90% of MemAvailable (bench_opts_finish resolves it) */
    int mem_budget_auto;
    uint64_t seed;
    enum bench_format format;       /* what bench_measure prints on stdout */
    const char *csv_out, *json_out; /* for the caller: bench_write_csv / bench_write_json */
    int no_sgemm;                   /* skip the sgemm ceiling (quick tests) */
};

/* One (mixer, length) row of the result. */
struct bench_row {
    const char *attn; /* the spec as given */
    char canon[MX_SPEC_MAX];
    int T;
    int measured;
    int reference; /* the registry's first mixer (exact attention): the ratios' baseline */
    int repeats;
    double forward_ms, train_ms, peak_mb, est_mb, tokens_per_s, gflops; /* gflops < 0: undefined */
    double flops;                                                       /* mixer_flops, all layers */
    double core_forward_ms, core_train_ms;                              /* < 0: no core */
    double iter_s;
    double host_steal_pct, host_other_pct; /* over the row's child (mx_hostcpu_share); -1: unknown */
    char skipped[BENCH_NOTE_MAX]; /* "" when measured */
};

struct bench_result {
    struct bench_row *rows; /* (n_attn, n_ctx), mixer-major */
    size_t n_rows;
    double sgemm;    /* GFLOP/s of the ceiling; <= 0 when not measured */
    double fma_peak; /* GFLOP/s of the FMA loop on every thread (the arithmetic peak); <= 0: not measured */
};

/* Defaults: B 1, C 128, H 4, L 1, 5 repeats, 1 warm-up, 600 s, automatic memory budget,
 * seed 1337, text output. */
void bench_opts_default(struct bench_opts *o);
/* Check what the flags cannot (a mixer and a length given, C % H == 0) and resolve threads
 * and the automatic memory budget. Errors say which flag to add or change. */
int bench_opts_finish(struct bench_opts *o, struct mx_error *err);
/* One line per registered mixer: name, [non-causal], summary. */
void bench_list(FILE *f);

/* Build every spec at every length (a bad spec is an error naming --attn and --context) and
 * fill res->rows with the memory estimate and FLOPs (mixer_flops) of each. Free with
 * bench_result_free. */
int bench_plan(const struct bench_opts *o, struct bench_result *res, struct mx_error *err);
/* Measure the sgemm ceiling (unless no_sgemm) and every row in a child of its own, skipping
 * rows over the memory budget or predicted over the time budget; prints the rows to stdout as
 * they come in o->format (text adds a header and the ratios to the reference mixer). */
void bench_measure(const struct bench_opts *o, struct bench_result *res);
void bench_result_free(struct bench_result *res);

/* The rows as CSV / a JSON array (the columns --help lists), written atomically to path. */
int bench_write_csv(const char *path, const struct bench_opts *o, const struct bench_result *res,
                    struct mx_error *err);
int bench_write_json(const char *path, const struct bench_opts *o, const struct bench_result *res,
                     struct mx_error *err);

#endif
