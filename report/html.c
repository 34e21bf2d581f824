/* html.c — `mixlm report`'s page: bench CSVs (as `mixlm bench --csv-out` writes them) read by
 * column name, grouped into one series per mixer and file, then one self-contained HTML page with
 * the loss curves, cost against context length (SVG from svg.c), and the tables. Trains and
 * measures nothing, loads no checkpoint; the page has no scripts and no links. */
#include "report/internal.h"
#include "report/svg.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CSV_FIELDS_MAX 64

/* ---- bench CSV ------------------------------------------------------------------------------------ */

struct csv_row {
    const char *attn, *spec, *note; /* point into the file's buffer; spec "" when absent */
    double context, forward_ms, train_ms, peak_mb, tokens_per_s, gflops;
    double core_train_ms; /* the attention core alone; NAN when absent */
    double batch, dim, heads, layers, threads, repeats;
    int file;   /* index of the CSV it came from */
    int series; /* index into bench.series */
};

struct csv_series {
    const char *attn;
    int file;
    char label[600];
    double *x, *t, *m; /* (n) context, train_ms, peak_mb, sorted by context */
    size_t n;
};

struct csv_set {
    int nfile;
    const char *path[REPORT_BENCH_MAX];
    char *text[REPORT_BENCH_MAX]; /* file buffers; the CSV fields are unescaped in place */
    struct csv_row *rows;
    size_t nrow, cap;
    struct csv_series *series;
    int nseries;
};

static void csv_set_free(struct csv_set *b)
{
    for (int i = 0; i < b->nfile; i++)
        mx_free(b->text[i]);
    for (int s = 0; s < b->nseries; s++) {
        mx_free(b->series[s].x);
        mx_free(b->series[s].t);
        mx_free(b->series[s].m);
    }
    mx_free(b->series);
    mx_free(b->rows);
    memset(b, 0, sizeof *b);
}

/* Split one CSV record (RFC 4180: quoted fields may hold commas, "" and newlines) in place.
 * *p moves past the record's line end; *line counts newlines. Returns the field count, 0 at the
 * end of the text, -1 with err on a malformed record. */
int report_csv_record(char **p, char **field, int max, long *line, const char *path, struct mx_error *err)
{
    char *r = *p, *w = *p;
    if (!*r)
        return 0;
    int nf = 0;
    long start = *line;
    for (;;) {
        if (nf >= max)
            return mx_errorf(err, "%s:%ld: more than %d fields", path, start, max);
        field[nf++] = w;
        if (*r == '"') {
            r++;
            for (;;) {
                if (!*r)
                    return mx_errorf(err, "%s:%ld: quoted field never closed", path, start);
                if (*r == '"' && r[1] == '"') {
                    *w++ = '"', r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *line += *r == '\n';
                    *w++ = *r++;
                }
            }
            if (*r && *r != ',' && *r != '\n' && *r != '\r')
                return mx_errorf(
                    err, "%s:%ld: text after a closing quote (a quote inside a field must be doubled)", path,
                    start);
        } else {
            while (*r && *r != ',' && *r != '\n' && *r != '\r')
                *w++ = *r++;
        }
        if (*r == ',') {
            *w++ = 0; /* w <= r: the separator itself is consumed */
            r++;
            continue;
        }
        if (*r == '\r')
            r++;
        if (*r == '\n')
            r++, (*line)++;
        *w = 0;
        break;
    }
    *p = r;
    return nf;
}

static int csv_col(char **head, int nh, const char *name)
{
    for (int i = 0; i < nh; i++)
        if (!strcmp(head[i], name))
            return i;
    return -1;
}

/* A numeric field: empty -> NAN; otherwise the whole field must be a number. */
static int csv_value(char **f, int col, double *out, const char *name, const char *path, long line,
                     struct mx_error *err)
{
    *out = NAN;
    if (col < 0 || !f[col][0])
        return 0;
    char *end;
    errno = 0;
    double v = strtod(f[col], &end);
    if (end == f[col] || *end || errno == ERANGE)
        return mx_errorf(err, "%s:%ld: column '%s' holds '%s', not a number", path, line, name, f[col]);
    *out = v;
    return 0;
}

static int csv_set_load(struct csv_set *b, const char *path, struct mx_error *err)
{
    if (b->nfile >= REPORT_BENCH_MAX)
        return mx_errorf(err, "--bench: at most %d files", REPORT_BENCH_MAX);
    size_t len;
    char *text = mx_read_file(path, &len, err);
    if (!text)
        return mx_error_wrap(err, "--bench");
    if (strlen(text) != len) {
        mx_free(text);
        return mx_errorf(
            err, "--bench %s: binary data (a NUL byte); expected the CSV of `mixlm bench --csv-out`", path);
    }
    int fi = b->nfile++;
    b->text[fi] = text;
    b->path[fi] = path;
    char *p = text, *head[CSV_FIELDS_MAX], *f[CSV_FIELDS_MAX];
    long line = 1;
    int nh = report_csv_record(&p, head, CSV_FIELDS_MAX, &line, path, err);
    if (nh < 0)
        return -1;
    if (nh == 0)
        return mx_errorf(err, "%s: empty; expected the CSV of `mixlm bench --csv-out` with a header line",
                         path);
    static const char *const need[] = {"attn", "context", "train_ms", "peak_mb"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (csv_col(head, nh, need[i]) < 0)
            return mx_errorf(err,
                             "%s: no '%s' column in the header; expected the CSV of `mixlm bench --csv-out` "
                             "(columns attn,context,forward_ms,train_ms,peak_mb,...)",
                             path, need[i]);
    int c_attn = csv_col(head, nh, "attn"), c_ctx = csv_col(head, nh, "context");
    int c_fwd = csv_col(head, nh, "forward_ms"), c_train = csv_col(head, nh, "train_ms");
    int c_peak = csv_col(head, nh, "peak_mb"), c_tps = csv_col(head, nh, "tokens_per_s");
    int c_gf = csv_col(head, nh, "gflops"), c_skip = csv_col(head, nh, "skipped");
    int c_spec = csv_col(head, nh, "spec"), c_core = csv_col(head, nh, "core_train_ms");
    int c_b = csv_col(head, nh, "batch"), c_c = csv_col(head, nh, "dim"), c_h = csv_col(head, nh, "heads");
    int c_l = csv_col(head, nh, "layers"), c_t = csv_col(head, nh, "threads"),
        c_r = csv_col(head, nh, "repeats");
    for (;;) {
        long at = line;
        int nf = report_csv_record(&p, f, CSV_FIELDS_MAX, &line, path, err);
        if (nf < 0)
            return -1;
        if (nf == 0)
            break;
        if (nf == 1 && !f[0][0])
            continue; /* blank line */
        if (nf != nh)
            return mx_errorf(err, "%s:%ld: %d fields, but the header has %d", path, at, nf, nh);
        if (b->nrow == b->cap) {
            b->cap = b->cap ? 2 * b->cap : 64;
            b->rows = mx_xrealloc(b->rows, b->cap * sizeof *b->rows, "the rows of a bench CSV");
        }
        struct csv_row *r = &b->rows[b->nrow];
        memset(r, 0, sizeof *r);
        r->attn = f[c_attn];
        r->note = c_skip >= 0 ? f[c_skip] : "";
        r->spec = c_spec >= 0 ? f[c_spec] : "";
        r->file = fi;
        if (csv_value(f, c_ctx, &r->context, "context", path, at, err) ||
            csv_value(f, c_fwd, &r->forward_ms, "forward_ms", path, at, err) ||
            csv_value(f, c_train, &r->train_ms, "train_ms", path, at, err) ||
            csv_value(f, c_peak, &r->peak_mb, "peak_mb", path, at, err) ||
            csv_value(f, c_tps, &r->tokens_per_s, "tokens_per_s", path, at, err) ||
            csv_value(f, c_gf, &r->gflops, "gflops", path, at, err) ||
            csv_value(f, c_core, &r->core_train_ms, "core_train_ms", path, at, err) ||
            csv_value(f, c_b, &r->batch, "batch", path, at, err) ||
            csv_value(f, c_c, &r->dim, "dim", path, at, err) ||
            csv_value(f, c_h, &r->heads, "heads", path, at, err) ||
            csv_value(f, c_l, &r->layers, "layers", path, at, err) ||
            csv_value(f, c_t, &r->threads, "threads", path, at, err) ||
            csv_value(f, c_r, &r->repeats, "repeats", path, at, err))
            return -1;
        if (!r->attn[0])
            return mx_errorf(err, "%s:%ld: empty 'attn'", path, at);
        if (!(r->context >= 1) || r->context != floor(r->context))
            return mx_errorf(err, "%s:%ld: context '%s' should be a positive integer", path, at, f[c_ctx]);
        b->nrow++;
    }
    return 0;
}

/* Group rows into series (one per attn spec and file) in order of first appearance. */
static void csv_set_group(struct csv_set *b)
{
    b->series = mx_xcalloc((b->nrow ? b->nrow : 1) * sizeof *b->series);
    for (size_t i = 0; i < b->nrow; i++) {
        struct csv_row *r = &b->rows[i];
        int s = 0;
        while (s < b->nseries && !(b->series[s].file == r->file && !strcmp(b->series[s].attn, r->attn)))
            s++;
        if (s == b->nseries) {
            b->series[s].attn = r->attn;
            b->series[s].file = r->file;
            b->nseries++;
        }
        r->series = s;
    }
    for (int s = 0; s < b->nseries; s++) {
        struct csv_series *q = &b->series[s];
        int clash = 0;
        for (int k = 0; k < b->nseries; k++)
            clash |= k != s && !strcmp(b->series[k].attn, q->attn);
        if (clash) {
            const char *base = strrchr(b->path[q->file], '/');
            snprintf(q->label, sizeof q->label, "%s (%s)", q->attn, base ? base + 1 : b->path[q->file]);
        } else {
            snprintf(q->label, sizeof q->label, "%s", q->attn);
        }
        size_t n = 0;
        for (size_t i = 0; i < b->nrow; i++)
            n += b->rows[i].series == s;
        q->x = mx_xmalloc((n ? n : 1) * sizeof(double));
        q->t = mx_xmalloc((n ? n : 1) * sizeof(double));
        q->m = mx_xmalloc((n ? n : 1) * sizeof(double));
        for (size_t i = 0; i < b->nrow; i++) {
            const struct csv_row *r = &b->rows[i];
            if (r->series != s)
                continue;
            size_t k = q->n++; /* insertion by context: the lines run left to right */
            while (k > 0 && q->x[k - 1] > r->context) {
                q->x[k] = q->x[k - 1], q->t[k] = q->t[k - 1], q->m[k] = q->m[k - 1];
                k--;
            }
            q->x[k] = r->context, q->t[k] = r->train_ms, q->m[k] = r->peak_mb;
        }
    }
}

/* Bench table order: by series (first appearance), then context, then position in the input. */
static int csv_row_cmp(const void *pa, const void *pb)
{
    const struct csv_row *a = *(const struct csv_row *const *)pa,
                           *b = *(const struct csv_row *const *)pb;
    if (a->series != b->series)
        return a->series < b->series ? -1 : 1;
    if (a->context != b->context)
        return a->context < b->context ? -1 : 1;
    return (a > b) - (a < b);
}

/* "dim 128" when every measured row agrees, "dim 64-128" otherwise; empty when the column is
 * absent (skipped rows are left out: their repeats are 0). */
static void csv_set_setting(char *out, size_t n, const struct csv_set *b, size_t off, const char *name)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < b->nrow; i++) {
        double v = *(const double *)((const char *)&b->rows[i] + off);
        if (isfinite(v) && isfinite(b->rows[i].train_ms))
            lo = fmin(lo, v), hi = fmax(hi, v);
    }
    if (lo > hi)
        out[0] = 0;
    else if (lo == hi)
        snprintf(out, n, "%s %g", name, lo);
    else
        snprintf(out, n, "%s %g-%g", name, lo, hi);
}

/* ---- HTML --------------------------------------------------------------------------------------- */

struct report {
    const char *title;
    struct report_run *runs;
    int nrun;
    const int *order;
    struct csv_set *bench;
};

/* A spec string, escaped, with a line-break opportunity after each comma (specs have no spaces). */
static void html_spec(FILE *f, const char *s)
{
    char one[2] = {0, 0};
    for (; *s; s++) {
        one[0] = *s;
        svg_escape(f, one);
        if (*s == ',')
            fputs("<wbr>", f);
    }
}

void report_html_table(FILE *f, const struct report_table *t, const int *swatch, const char *cls)
{
    fprintf(f, "<div class=\"tablewrap\"><table class=\"%s\">\n<thead><tr>", cls);
    for (int c = 0; c < t->ncol; c++) {
        fprintf(f, "<th%s>", t->num[c] ? " class=\"num\"" : "");
        svg_escape(f, t->head[c]);
        fputs("</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    for (int r = 0; r < t->nrow; r++) {
        fputs("<tr>", f);
        for (int c = 0; c < t->ncol; c++) {
            const char *s = t->cell[(size_t)r * t->ncol + c];
            fprintf(f, "<td%s>", t->num[c] ? " class=\"num\"" : c == 1 ? " class=\"spec\"" : "");
            if (c == 0 && swatch)
                fprintf(f, "<span class=\"sw\" style=\"background:%s\"></span>", svg_color(swatch[r]));
            if (!strcmp(s, "n/a"))
                fputs("<span class=\"na\">n/a</span>", f);
            else if (c == 1)
                html_spec(f, s);
            else
                svg_escape(f, s);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table></div>\n", f);
}

static void html_loss_chart(FILE *f, const struct report *rp)
{
    int n = rp->nrun, ns = 0, any_val = 0;
    struct svg_series *s = mx_xcalloc((size_t)(2 * n + 2) * sizeof *s);
    char(*lab)[2600] = mx_xcalloc((size_t)(n ? n : 1) * sizeof *lab);
    for (int i = 0; i < n; i++) {
        const struct report_run *r = &rp->runs[i];
        snprintf(lab[i], sizeof lab[i], "%s — %s", r->label, r->attn);
        s[ns++] = (struct svg_series){lab[i], r->label, "train", r->step, r->loss, r->n_log, i, 0, 0};
        if (r->n_val) {
            s[ns++] = (struct svg_series){lab[i],
                                          r->label,
                                          "val",
                                          r->val_step,
                                          r->val_loss_log,
                                          r->n_val,
                                          i,
                                          0,
                                          SVG_DASHED | SVG_MARKERS | SVG_NO_LEGEND};
            any_val = 1;
        }
    }
    s[ns++] = (struct svg_series){"training loss (solid)", NULL, "key", NULL, NULL, 0, -1, 0, 0};
    if (any_val)
        s[ns++] = (struct svg_series){"validation loss (dashed)", NULL, "key", NULL, NULL, 0, -1, 0,
                                      SVG_DASHED | SVG_MARKERS};
    struct svg_chart c = {
        .title = "Training and validation loss",
        .subtitle = "loss in nats per token against optimizer step; markers are evaluations",
        .xlabel = "step",
        .ylabel = "loss (nats/token)",
        .xscale = SVG_LINEAR,
        .yscale = SVG_LINEAR,
        .x_zero = 1,
        .width = 960,
        .height = 420,
        .id = "loss",
    };
    svg_chart_write(f, &c, s, ns);
    mx_free(lab);
    mx_free(s);
}

static void html_bench_chart(FILE *f, const struct csv_set *b, int memory, const char *subtitle)
{
    struct svg_series *s = mx_xcalloc((size_t)(b->nseries ? b->nseries : 1) * sizeof *s);
    for (int k = 0; k < b->nseries; k++) {
        const struct csv_series *q = &b->series[k];
        s[k] = (struct svg_series){q->label,
                                   q->label,
                                   memory ? "memory" : "time",
                                   q->x,
                                   memory ? q->m : q->t,
                                   q->n,
                                   k,
                                   k,
                                   SVG_MARKERS | (k / 12 % 2 ? SVG_DASHED : 0)};
    }
    struct svg_chart c = {
        .title = memory ? "Peak memory versus context length" : "Training-step time versus context length",
        .subtitle = subtitle,
        .xlabel = "context length (tokens)",
        .ylabel = memory ? "peak memory (MiB)" : "forward + backward time (ms)",
        .x_unit = "tokens",
        .y_unit = memory ? "MiB" : "ms",
        .xscale = SVG_LOG2,
        .yscale = SVG_LOG10,
        .width = 960,
        .height = 440,
        .id = memory ? "bench-memory" : "bench-time",
    };
    svg_chart_write(f, &c, s, b->nseries);
    mx_free(s);
}

static const char *const bench_head[] = {"attn",     "spec",     "context",  "forward ms",
                                         "train ms", "core ms",  "peak MiB", "tokens/s",
                                         "GFLOP/s",  "note"};
static const int bench_num[] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 0};

const char report_html_css[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;"
    "color:#222;background:#fafafa;margin:0;padding:24px 32px 48px;line-height:1.45}\n"
    "main{max-width:1120px;margin:0 auto}\n"
    "h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 8px;padding-bottom:4px;"
    "border-bottom:1px solid #ddd}\n"
    "p.meta{color:#666;margin:0 0 16px;font-size:14px}\n"
    "figure{margin:12px 0;background:#fff;border:1px solid #e2e2e2;border-radius:6px;padding:8px}\n"
    "svg.chart{display:block;max-width:100%;height:auto}\n"
    ".tablewrap{overflow-x:auto;background:#fff;border:1px solid #e2e2e2;border-radius:6px}\n"
    "table{border-collapse:collapse;font-size:12.5px;width:100%}\n"
    "th,td{padding:5px 8px;text-align:left;white-space:nowrap;border-bottom:1px solid #eee}\n"
    "th{background:#f3f3f3;font-weight:600;white-space:normal;vertical-align:bottom}\n"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "td.spec{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;white-space:"
    "normal}\n"
    "tbody tr:hover{background:#f7f9fc}\n"
    ".sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:7px;vertical-align:0}\n"
    ".na{color:#aaa}\n"
    "ul.notes{color:#555;font-size:13px;padding-left:20px}\n"
    "code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;background:#eee;"
    "padding:1px 4px;border-radius:3px}\n"
    "footer{margin-top:40px;color:#999;font-size:12px}\n";

static int write_report(FILE *f, void *ctx, struct mx_error *err)
{
    const struct report *rp = ctx;
    const struct csv_set *b = rp->bench;
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    svg_escape(f, rp->title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n<h1>", report_html_css);
    svg_escape(f, rp->title);
    fprintf(f,
            "</h1>\n<p class=\"meta\">Generated %s by <code>mixlm report</code> from %d run%s and %d bench "
            "file%s.</p>\n",
            when, rp->nrun, rp->nrun == 1 ? "" : "s", b->nfile, b->nfile == 1 ? "" : "s");

    fputs("<h2>Quality</h2>\n", f);
    if (rp->nrun) {
        fputs("<figure>\n", f);
        html_loss_chart(f, rp);
        fputs("</figure>\n", f);
        struct report_table t;
        report_compare_table(&t, rp->runs, rp->order, rp->nrun);
        int sw[REPORT_RUNS_MAX];
        for (int i = 0; i < rp->nrun; i++)
            sw[i] = rp->order[i];
        report_html_table(f, &t, sw, "compare");
        report_table_free(&t);
        fputs("<ul class=\"notes\">\n<li>Sorted by validation loss, best first. Validation loss is the "
              "estimate "
              "made during training on fixed validation batches (nats per token); <code>mixlm eval</code> "
              "makes a "
              "full pass.</li>\n<li>Bits per character = validation loss / ln 2 for char-tokenizer runs, "
              "bits per "
              "byte likewise for byte runs; n/a where a token is neither (SentencePiece) unless the run "
              "recorded "
              "it.</li>\n<li>Model: L layers, C width, H heads, T context. Peak memory is the training "
              "process's "
              "peak resident set.</li>\n",
              f);
        if (report_compare_mixed(rp->runs, rp->nrun, "tokenizer"))
            fputs("<li><strong>The runs use different tokenizers:</strong> losses per token do not compare; "
                  "compare "
                  "bits per byte.</li>\n",
                  f);
        if (report_compare_mixed(rp->runs, rp->nrun, "threads"))
            fputs("<li><strong>The runs used different thread counts:</strong> tokens/s and training time do "
                  "not "
                  "compare.</li>\n",
                  f);
        fputs("</ul>\n", f);
    } else {
        fputs("<p>No runs given (<code>mixlm report RUN_DIR... -o report.html</code>).</p>\n", f);
    }

    fputs("<h2>Cost versus context length</h2>\n", f);
    if (b->nfile) {
        char sub[512], part[6][64];
        csv_set_setting(part[0], sizeof part[0], b, offsetof(struct csv_row, batch), "batch");
        csv_set_setting(part[1], sizeof part[1], b, offsetof(struct csv_row, dim), "dim");
        csv_set_setting(part[2], sizeof part[2], b, offsetof(struct csv_row, heads), "heads");
        csv_set_setting(part[3], sizeof part[3], b, offsetof(struct csv_row, layers), "layers");
        csv_set_setting(part[4], sizeof part[4], b, offsetof(struct csv_row, threads), "threads");
        csv_set_setting(part[5], sizeof part[5], b, offsetof(struct csv_row, repeats), "repeats");
        size_t u = 0;
        sub[0] = 0;
        for (int i = 0; i < 6; i++)
            if (part[i][0] && u < sizeof sub) {
                int w = snprintf(sub + u, sizeof sub - u, "%s%s", u ? " · " : "", part[i]);
                u += w > 0 ? (size_t)w : 0;
            }
        if (u < sizeof sub)
            snprintf(sub + u, sizeof sub - u, "%smedians; log-log axes", u ? " · " : "");
        fputs("<figure>\n", f);
        html_bench_chart(f, b, 0, sub);
        fputs("</figure>\n<figure>\n", f);
        html_bench_chart(f, b, 1, sub);
        fputs("</figure>\n", f);

        struct report_table t;
        report_table_init(&t, (int)(sizeof bench_head / sizeof bench_head[0]), (int)b->nrow, bench_head, bench_num);
        int *sw = mx_xmalloc((b->nrow ? b->nrow : 1) * sizeof(int));
        const struct csv_row **sorted = mx_xmalloc((b->nrow ? b->nrow : 1) * sizeof *sorted);
        for (size_t i = 0; i < b->nrow; i++)
            sorted[i] = &b->rows[i];
        qsort(sorted, b->nrow, sizeof *sorted, csv_row_cmp);
        for (size_t i = 0; i < b->nrow; i++) {
            const struct csv_row *r = sorted[i];
            char v[64];
            int c = 0;
            sw[i] = r->series;
            report_table_set(&t, (int)i, c++, b->series[r->series].label);
            report_table_set(&t, (int)i, c++, r->spec[0] ? r->spec : r->attn);
            report_fmt_fixed(v, sizeof v, r->context, 0);
            report_table_set(&t, (int)i, c++, v);
            report_fmt_fixed(v, sizeof v, r->forward_ms, 1);
            report_table_set(&t, (int)i, c++, v);
            report_fmt_fixed(v, sizeof v, r->train_ms, 1);
            report_table_set(&t, (int)i, c++, v);
            report_fmt_fixed(v, sizeof v, r->core_train_ms, 1);
            report_table_set(&t, (int)i, c++, v);
            report_fmt_fixed(v, sizeof v, r->peak_mb, 1);
            report_table_set(&t, (int)i, c++, v);
            report_fmt_fixed(v, sizeof v, r->tokens_per_s, 0);
            report_table_set(&t, (int)i, c++, v);
            report_fmt_fixed(v, sizeof v, r->gflops, 2);
            report_table_set(&t, (int)i, c++, v);
            report_table_set(&t, (int)i, c++, r->note[0] ? r->note : isfinite(r->train_ms) ? "" : "not measured");
        }
        report_html_table(f, &t, sw, "bench");
        report_table_free(&t);
        mx_free(sw);
        mx_free(sorted);
        fputs(
            "<ul class=\"notes\">\n<li>Time is the median wall time of the forward and backward of the mixer "
            "sublayers; memory is the peak resident set of the benchmark's child process (binary and BLAS "
            "buffers included). Skipped runs are listed in the table and not plotted.</li>\n</ul>\n",
            f);
    } else {
        fputs("<p>No bench data given. Measure with <code>mixlm bench --attn dense --attn window:w=256 "
              "--context "
              "1k,4k,16k --csv-out bench.csv</code> (or <code>bench/mixers.sh</code>) and pass "
              "<code>--bench bench.csv</code>.</p>\n",
              f);
    }
    fputs("<footer>Self-contained page: inline SVG, no scripts, no external resources.</footer>\n"
          "</main>\n</body>\n</html>\n",
          f);
    return ferror(f) ? mx_errorf(err, "writing the report failed (disk full?)") : 0;
}

int report_html(const char *out, const char *title, const char *const *dirs, int npos,
                const char *const *bench_csv, int nb, size_t *n_rows, struct mx_error *err)
{
    struct report_run *runs = mx_xcalloc((size_t)(npos ? npos : 1) * sizeof *runs);
    struct csv_set b;
    memset(&b, 0, sizeof b);
    int loaded = 0, status = -1;
    for (; loaded < npos; loaded++)
        if (report_run_load(&runs[loaded], dirs[loaded], err) != 0)
            goto out;
    report_run_labels(runs, npos);
    for (int i = 0; i < nb; i++)
        if (csv_set_load(&b, bench_csv[i], err) != 0)
            goto out;
    csv_set_group(&b);
    int order[REPORT_RUNS_MAX];
    report_run_order(runs, npos, order);
    struct report rp = {title, runs, npos, order, &b};
    if (mx_write_atomic(out, write_report, &rp, err) != 0) {
        mx_error_wrap(err, "%s", out);
        goto out;
    }
    *n_rows = b.nrow;
    status = 0;
out:
    for (int i = 0; i < loaded; i++)
        report_run_free(&runs[i]);
    mx_free(runs);
    csv_set_free(&b);
    return status;
}
