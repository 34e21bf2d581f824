/* internal.h — what compare.c and html.c share inside report/: a run's numbers as the tables
 * show them, and a plain table of strings. Only report/ includes it; other folders include
 * report/report.h. */
#ifndef MIXLM_REPORT_INTERNAL_H
#define MIXLM_REPORT_INTERNAL_H

#include "report/report.h"
#include "run/run.h"

#include <cjson/cJSON.h>
#include <stdio.h>

struct report_run {
    char dir[512];   /* as given, trailing '/' removed */
    char label[512]; /* display name: the directory's basename, or dir when basenames collide */
    char attn[2048]; /* the spec, or "L0-1: spec | L2: spec" when layers differ */
    char tokenizer[64];
    int n_layer, n_head, n_embd, block_size, vocab_size;
    /* From summary.json; NAN when absent or null. */
    double params, steps, val_loss, train_seconds, tokens_per_s, peak_rss_mb, threads;
    double bpc, bpb; /* bits per character / per byte of the validation text; NAN when undefined */
    /* From log.jsonl, in step order (see run_log_read for resumed runs). */
    size_t n_log, n_val;
    double *step, *loss;             /* (n_log) */
    double *val_step, *val_loss_log; /* (n_val) */
};
/* Read dir's summary.json and log.jsonl (errors name the file); free with report_run_free. */
int report_run_load(struct report_run *r, const char *dir, struct mx_error *err);
void report_run_free(struct report_run *r);
/* Labels: basenames, unless two runs share one (then the paths as given). */
void report_run_labels(struct report_run *r, int n);
/* order[] = run indices by validation loss ascending, unknown last, ties in the given order. */
void report_run_order(const struct report_run *r, int n, int *order);

/* Numbers for tables: "n/a" when not finite. */
void report_fmt_fixed(char *b, size_t n, double v, int prec);
void report_fmt_count(char *b, size_t n, double v);
void report_fmt_duration(char *b, size_t n, double s);

/* A table of strings: ncol columns, nrow rows, head[] titles, num[] 1 = right-aligned. */
struct report_table {
    int ncol, nrow;
    const char *const *head; /* (ncol) */
    const int *num;          /* (ncol) 1: right-aligned number */
    char **cell;             /* (nrow, ncol), each from mx_xstrdup */
};

void report_table_init(struct report_table *t, int ncol, int nrow, const char *const *head, const int *num);
void report_table_set(struct report_table *t, int row, int col, const char *s);
void report_table_free(struct report_table *t);
/* Aligned plain text, column widths from the widest cell (UTF-8 aware). */
void report_table_print(FILE *f, const struct report_table *t);

/* The compare table of the n runs in `order`. */
void report_compare_table(struct report_table *t, const struct report_run *runs, const int *order, int n);
/* Whether the runs differ in "tokenizer", "vocab" or "threads". */
int report_compare_mixed(const struct report_run *runs, int n, const char *what);

/* Split one CSV record (RFC 4180: quoted fields may hold commas, "" and newlines) in place.
 * *p moves past the record's line end; *line counts newlines. Returns the field count (at most
 * max), 0 at the end of the text, -1 with err (naming path and line) on a malformed record. */
int report_csv_record(char **p, char **field, int max, long *line, const char *path, struct mx_error *err);
/* The page's style sheet and one table as HTML (swatch: palette index per row, or NULL; column 1
 * is set as a spec, with break points after commas). */
extern const char report_html_css[];
void report_html_table(FILE *f, const struct report_table *t, const int *swatch, const char *cls);

/* The study's page and README table (study.c); see report_study in report.h. */
#endif
