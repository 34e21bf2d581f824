/* cmd_report.c — `mixlm compare RUN...` (the quality table: text, JSON or CSV) and `mixlm report
 * RUN... [--bench CSV] -o report.html` (one self-contained HTML page): flags in, report/ called.
 * Not the tables, the page or the charts (report/), nor reading run directories (run/). */
#include "cli/args.h"
#include "cli/commands.h"
#include "report/report.h"

#include <string.h>

static const char *compare_usage =
    "usage: mixlm compare RUN_DIR... [--json | --csv]\n"
    "\n"
    "A quality table across training runs (directories written by `mixlm train --out`), sorted by\n"
    "validation loss, best first (runs without one last). Columns: the attention spec (every layer's\n"
    "when they differ), tokenizer, model shape (L layers, C width, H heads, T context), parameters,\n"
    "steps, the last logged training loss, validation loss (nats/token, the estimate made during\n"
    "training on its fixed validation batches; `mixlm eval` makes a full pass), bits per character\n"
    "(val loss / ln 2 for char-tokenizer runs) and per byte (likewise for byte runs; n/a for\n"
    "SentencePiece runs unless summary.json records it), tokens/s, training time, peak memory (RSS).\n"
    "Every run must hold a readable summary.json and log.jsonl; otherwise the command stops with an\n"
    "error naming the file (no partial table).\n"
    "--json prints an array of objects (unknown values are null); --csv prints CSV (unknown = empty).";

int cmd_compare(int argc, char **argv)
{
    int json = 0, csv = 0;
    struct arg a[] = {
        {"--json", ARG_FLAG, &json, 0, 0, 0, "print a JSON array, one object per run", 0},
        {"--csv", ARG_FLAG, &csv, 0, 0, 0, "print CSV, one row per run", 0},
    };
    int na = (int)(sizeof a / sizeof a[0]), npos;
    const char *dirs[REPORT_RUNS_MAX];
    struct mx_error err;
    int rc = args_parse(argc, argv, a, na, dirs, REPORT_RUNS_MAX, &npos, compare_usage, &err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "mixlm compare: %s\n", err.msg);
        return 2;
    }
    if (npos == 0) {
        fprintf(
            stderr,
            "mixlm compare: give at least one run directory, e.g. mixlm compare runs/dense runs/window\n");
        return 2;
    }
    if (json && csv) {
        fprintf(stderr, "mixlm compare: --json and --csv exclude each other; pick one\n");
        return 2;
    }
    if (report_compare(dirs, npos, json ? REPORT_JSON : csv ? REPORT_CSV : REPORT_TEXT, &err) != 0) {
        fprintf(stderr, "mixlm compare: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static const char *report_usage =
    "usage: mixlm report RUN_DIR... [--bench FILE.csv ...] [--title TEXT] -o report.html\n"
    "       mixlm report --study DIR -o DIR/report.html   the page of bench/study.sh (also writes\n"
    "                                                   DIR/README_table.md)\n"
    "\n"
    "Writes one self-contained HTML page (inline SVG charts, no scripts, nothing fetched): the\n"
    "training loss of every run against step on one chart (validation loss dashed, with markers),\n"
    "the `mixlm compare` table, and from each --bench CSV (as `mixlm bench --csv-out` writes it;\n"
    "columns found by name: attn, context, train_ms, peak_mb required; forward_ms,\n"
    "core_train_ms, tokens_per_s, gflops, skipped, batch, dim, heads, layers, threads, repeats\n"
    "used when present) the\n"
    "forward+backward time and the peak memory against context length per mixer on log-log axes,\n"
    "and the bench table. Runs need summary.json and log.jsonl; any unreadable input stops the\n"
    "command with an error naming the file. The page is written atomically.";

int cmd_report(int argc, char **argv)
{
    char out[1024] = "", title[512] = "mixlm report", study[1024] = "";
    struct arg_list *benches = mx_xcalloc(sizeof *benches);
    struct arg a[] = {
        {"--out", ARG_STR, out, sizeof out, 0, 0, "the HTML file to write (also -o FILE)", 0},
        {"--bench", ARG_LIST, benches, 0, 0, 0, "CSV from `mixlm bench --csv-out` (repeatable)", 0},
        {"--title", ARG_STR, title, sizeof title, 0, 0, "page title (default \"mixlm report\")", 0},
        {"--study", ARG_STR, study, sizeof study, 0, 0, "the output directory of bench/study.sh: its page instead", 0},
    };
    int na = (int)(sizeof a / sizeof a[0]), npos, status = 2;
    /* args_parse knows only long flags: -o becomes --out. */
    char **av = mx_xcalloc((size_t)(argc + 1) * sizeof *av);
    for (int i = 0; i < argc; i++)
        av[i] = !strcmp(argv[i], "-o") && i > 0 ? "--out" : argv[i];
    const char *dirs[REPORT_RUNS_MAX], *csv[ARG_LIST_MAX];
    struct mx_error err;
    int rc = args_parse(argc, av, a, na, dirs, REPORT_RUNS_MAX, &npos, report_usage, &err);
    size_t nrow = 0;
    if (rc == 1) {
        status = 0;
    } else if (rc != 0) {
        fprintf(stderr, "mixlm report: %s\n", err.msg);
    } else if (!out[0]) {
        fprintf(stderr, "mixlm report: give the output file with -o report.html\n");
    } else if (study[0]) {
        status = 1;
        if (npos > 0 || benches->n > 0)
            fprintf(stderr, "mixlm report: --study DIR takes no run directories or --bench files\n"), status = 2;
        else if (report_study(out, study, &err) != 0)
            fprintf(stderr, "mixlm report: %s\n", err.msg);
        else
            printf("wrote %s and %s/README_table.md\n", out, study), status = 0;
    } else if (npos == 0 && benches->n == 0) {
        fprintf(stderr, "mixlm report: give at least one run directory or --bench CSV, e.g. "
                        "mixlm report runs/dense runs/window --bench bench.csv -o report.html\n");
    } else {
        for (int i = 0; i < benches->n; i++)
            csv[i] = benches->v[i];
        status = 1;
        if (report_html(out, title, dirs, npos, csv, benches->n, &nrow, &err) != 0) {
            fprintf(stderr, "mixlm report: %s\n", err.msg);
        } else {
            printf("wrote %s (%d run%s, %zu bench row%s)\n", out, npos, npos == 1 ? "" : "s", nrow,
                   nrow == 1 ? "" : "s");
            status = 0;
        }
    }
    mx_free(av);
    mx_free(benches);
    return status;
}
