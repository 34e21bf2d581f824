/* run.h — the run directory that `mixlm train --out` fills: the names of its files, the training
 * options stored in its checkpoint, summary.json and log.jsonl. This is the one place that writes
 * and reads those two files (with cJSON), so their keys live here and nowhere else.
 * Not the training loop (train/), not the checkpoint format (model/), not tables (report/). */
#ifndef MIXLM_RUN_H
#define MIXLM_RUN_H

#include "model/model.h"

#include <stdio.h>

#define MX_RUN_CKPT "model.safetensors"
#define MX_RUN_LOG "log.jsonl"
#define MX_RUN_SUMMARY "summary.json"
#define MX_RUN_TOKENS "tokens.bin"
#define MX_RUN_PATH_MAX 600

/* The files of the run in `dir`. */
struct run_paths {
    char ckpt[MX_RUN_PATH_MAX], log[MX_RUN_PATH_MAX], summary[MX_RUN_PATH_MAX], tokens[MX_RUN_PATH_MAX];
};
/* Fill p with dir/model.safetensors, dir/log.jsonl, ... (dir as given; truncated past 511 chars). */
void run_paths_init(struct run_paths *p, const char *dir);

/* Remove the temporaries of atomic writes ("NAME.tmp.PID") in dir whose process PID no longer
 * exists (a writer killed with -9 mid-write leaves one behind forever); a live PID's file is
 * kept. Returns how many were removed (best effort: an unreadable directory removes none). */
int run_remove_stale_tmp(const char *dir);

/* ---- stored options ---------------------------------------------------------------------- */
struct mx_train_opts {
    char data[512];      /* training text */
    char out[512];       /* run directory */
    char tokenizer[512]; /* char | byte | spm:PATH | bpe:N | unigram:N */
    struct mx_config model; /* vocab_size is filled from the tokenizer */
    long steps;
    int batch, grad_accum;
    double lr, min_lr;
    long warmup;
    double beta1, beta2, eps, weight_decay, grad_clip;
    long eval_every;
    int eval_batches;
    long log_every, ckpt_every;
    double val_frac;
    int threads;
    int quiet;       /* no progress line (tests) */
    int profile;     /* (not stored) time each step by kind of work (core/prof.c), print and record it */
    long stop_after; /* > 0: save and stop after this many steps of this session, as Ctrl-C would */
    /* The schedule after an --extend-to (stored): from step index sched_from on, a half cosine
     * from sched_lr (the schedule's LR at that step) down to min_lr at `steps`. sched_from 0:
     * nanoGPT's schedule over the whole run. */
    long sched_from;
    double sched_lr;
    long extend_to; /* > 0 (resume only, not stored): move the run's end to this step */
    /* Stored (absent in older runs: 0), may be changed on resume: up to this many steps of the
     * whole run whose loss or gradients are not finite are skipped (no update); one more stops. */
    long skip_nonfinite;
    long check_sync; /* > 0 (not stored): compare the ranks' parameters every N steps (train/dist.h) */
    /* > 0 (stored; absent in older runs: 0): the data are sequences of `align` tokens, and
     * every training and validation window starts at a multiple of it (data_batch_aligned). */
    long align;
    /* MX_LOSS_RECALL (stored as "loss_on": "recall"; absent: MX_LOSS_ALL): the loss counts only
     * the answers of the associative-recall task (data_recall_mask_targets), needs align. */
    int loss_on;
    /* > 0 (not stored): end the run once this session has trained for this many seconds
     * (evaluation excluded), as if it had reached `steps`: final evaluation, checkpoint, summary. */
    double time_budget;
};
enum { MX_LOSS_ALL, MX_LOSS_RECALL };
/* nanoGPT's CPU "baby" defaults (the values `mixlm train --help` names). */
void run_opts_default(struct mx_train_opts *o);
/* The stored form (checkpoint metadata "train"."opts"): data, tokenizer and every
 * hyperparameter with the schedule (sched_from, sched_lr; absent in older runs: 0) and
 * skip_nonfinite (written when > 0; absent: 0); not the
 * model config (stored on its own), quiet, stop_after or extend_to. */
cJSON *run_opts_to_json(const struct mx_train_opts *o);
/* Inverse of run_opts_to_json; an error names the first missing key. */
int run_opts_from_json(struct mx_train_opts *o, const cJSON *j, struct mx_error *err);
/* Read the options and model config stored in dir's checkpoint into o (o->out = dir).
 * Errors: no checkpoint, unreadable checkpoint, no stored options. */
int run_load_opts(const char *dir, struct mx_train_opts *o, struct mx_error *err);

/* The training state stored beside the options (checkpoint metadata "train"): steps done,
 * the batch-sampling RNG (the data position), the training seconds so far and how many of the
 * steps done were skipped as non-finite (--skip-nonfinite). */
struct run_state {
    long step;
    uint64_t rng[4];
    double elapsed;
    long skipped;
};
/* Read and validate the state in `train` (the checkpoint's "train" object): step an integer in
 * [0, the stored opts.steps], rng four strings of 16 hex digits, not all zero, elapsed_s finite
 * and >= 0 (0 when absent), skipped_nonfinite an integer in [0, step] (0 when absent). Errors name the field, its value, the limit, and say the checkpoint
 * is damaged or edited. */
int run_state_from_json(const cJSON *train, struct run_state *s, struct mx_error *err);

/* ---- log.jsonl --------------------------------------------------------------------------- */
/* One line per logged step; val_loss NAN on steps without an evaluation. A number that is not
 * finite is written as null. skipped: NULL, or the first non-finite tensor of a step skipped by
 * --skip-nonfinite (written as "skipped_nonfinite": name). */
struct run_log_line {
    long step;
    double loss, lr, grad_norm, ms_per_step, tokens_per_s, elapsed_s, val_loss;
    const char *skipped;
};
/* Open dir's log for appending; NULL with err when it cannot be opened. */
FILE *run_log_open(const char *dir, struct mx_error *err);
/* Append one line and flush. Returns 0, or -1 with err (the step, errno's text) when the write failed. */
int run_log_append(FILE *f, const struct run_log_line *l, struct mx_error *err);
/* Drop the lines with a step beyond `step` (a resumed run logs each step once). Best effort:
 * a missing or unreadable log is left as it is; the log is replaced atomically (temp, rename). */
void run_log_trim(const char *dir, long step);

/* The log read back in step order: a step that goes backwards (a resumed run that logged past
 * its checkpoint) drops the points at or after it; a line without a finite loss (a skipped
 * step) gives no loss point. */
struct run_history {
    size_t n_log, n_val;
    double *step, *loss;         /* (n_log) */
    double *val_step, *val_loss; /* (n_val) */
};
/* Errors name the file and line: missing file, a line that is not an object with a numeric
 * "step", an empty log. On success free with run_history_free. */
int run_log_read(const char *dir, struct run_history *h, struct mx_error *err);
void run_history_free(struct run_history *h);

/* ---- summary.json ------------------------------------------------------------------------ */
/* Numbers are NAN when absent or null (written as null when not finite). */
struct run_summary {
    char attn[2048]; /* read: one spec, or "L0-1: spec | L2: spec" when layers differ */
    char tokenizer[64];
    int n_layer, n_head, n_embd, block_size, vocab_size; /* read only (written from the config) */
    double params, steps, val_loss, train_seconds, tokens_per_s, ms_per_step_median, gflop_per_step;
    double peak_rss_mb, threads;
    double skipped_nonfinite; /* steps skipped by --skip-nonfinite (NAN when absent: older runs) */
    double ranks, comm_wait_ms_per_step; /* MPI ranks (threads is per rank); time blocked in MPI */
    /* % of all CPUs' time during the last training session: stolen by the hypervisor, used by
     * other processes (mx_hostcpu_share; written null when unknown: -1 or NAN) */
    double host_steal_pct, host_other_pct;
    double bits_per_char, bits_per_byte; /* read only: recorded by some runs, else NAN */
    /* Written only (train --profile): mean ms per step by kind of work over profile_steps steps
     * (each session's first step left out), and the matmuls' rate. */
    double profile_steps, profile_ms[MX_PROF_N], profile_matmul_gflops;
};
/* Write dir/summary.json atomically: the config, attn (layer 0's spec), s->tokenizer and the
 * numbers. Returns 0, or -1 with err naming the file and errno's text. */
int run_summary_write(const char *dir, const struct mx_config *cfg, const struct run_summary *s,
                      struct mx_error *err);
/* Read dir/summary.json. Errors name the file and the key (missing file, bad JSON, a key of
 * the wrong type, no attention spec, no tokenizer). */
int run_summary_read(const char *dir, struct run_summary *s, struct mx_error *err);

#endif
