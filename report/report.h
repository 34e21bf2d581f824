/* report.h — tables and pages made from finished runs and bench results: the `mixlm compare`
 * table (text, JSON or CSV) and the self-contained HTML report with SVG charts. Reads run
 * directories through run/ and bench CSVs as `mixlm bench --csv-out` writes them.
 * Not argument parsing (cli/), not training or measuring anything, and loads no checkpoint. */
#ifndef MIXLM_REPORT_H
#define MIXLM_REPORT_H

#include "core/core.h"

#include <stddef.h>

#define REPORT_RUNS_MAX 256 /* run directories per call */
#define REPORT_BENCH_MAX 64 /* bench CSVs per report */

enum report_format { REPORT_TEXT, REPORT_JSON, REPORT_CSV };

/* Print to stdout the quality table of the n (1..REPORT_RUNS_MAX) run directories, sorted by
 * validation loss, best first: an aligned text table with notes on what does not compare, a
 * JSON array (unknown values null) or CSV (unknown values empty). Every run must hold a
 * readable summary.json and log.jsonl; else -1 with err naming the file, and nothing printed. */
int report_compare(const char *const *dirs, int n, enum report_format fmt, struct mx_error *err);

/* Write the HTML page to `path` atomically: loss curves of the n_dirs runs (0..REPORT_RUNS_MAX),
 * the compare table, and from the n_bench (0..REPORT_BENCH_MAX) CSVs time and memory against
 * context per mixer and the bench table. *n_rows = bench rows read. Returns 0, or -1 with err
 * naming the unreadable input or the file that could not be written. */
int report_html(const char *path, const char *title, const char *const *dirs, int n_dirs,
                const char *const *bench_csv, int n_bench, size_t *n_rows, struct mx_error *err);

/* The page of `bench/study.sh`: read dir/study.csv, recall.csv, cost.csv, curves.csv (optional)
 * and machine.txt as the script writes them, and write `path` (one self-contained HTML page:
 * bits/byte against training ms per token with the Pareto front per context, validation
 * bits/byte against training time, recall accuracy against T per mixer, time and memory of
 * every spec against T, the tables and the machine) and dir/README_table.md (the tables in
 * Markdown). Both atomically. Errors name the file and the missing column or bad value. */
int report_study(const char *path, const char *dir, struct mx_error *err);
#endif
