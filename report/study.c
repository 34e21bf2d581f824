/* study.c — the page and the README table of `bench/study.sh` (`mixlm report --study DIR`): its
 * CSVs read by column name, then charts (bits/byte against training ms per token with the Pareto
 * front, validation bits/byte against training time, recall accuracy against T, time and memory
 * against T) and tables, and the same tables as Markdown. Measures nothing; the rows are the
 * script's, one spec string per row for quality and cost alike. */
#include "report/internal.h"
#include "report/svg.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STUDY_FIELDS 32
#define STUDY_SERIES 128

/* A CSV held as strings: cell(r, name) finds the column by its header name. */
struct sheet {
    const char *path;
    char *text;
    char *head[STUDY_FIELDS];
    int nh;
    char **cell; /* (nrow, nh) */
    int nrow;
};

static int sheet_load(struct sheet *s, const char *path, int optional, struct mx_error *err)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    if (optional && !mx_file_exists(path))
        return 0;
    size_t len;
    s->text = mx_read_file(path, &len, err);
    if (!s->text)
        return mx_error_wrap(err, "study");
    char *p = s->text, *f[STUDY_FIELDS];
    long line = 1;
    s->nh = report_csv_record(&p, s->head, STUDY_FIELDS, &line, path, err);
    if (s->nh <= 0)
        return s->nh < 0 ? -1 : mx_errorf(err, "%s: empty; run bench/study.sh to write it", path);
    int cap = 0;
    for (;;) {
        long at = line;
        int nf = report_csv_record(&p, f, STUDY_FIELDS, &line, path, err);
        if (nf < 0)
            return -1;
        if (nf == 0)
            break;
        if (nf == 1 && !f[0][0])
            continue;
        if (nf != s->nh)
            return mx_errorf(err, "%s:%ld: %d fields, but the header has %d", path, at, nf, s->nh);
        if (s->nrow == cap) {
            cap = cap ? 2 * cap : 64;
            s->cell = realloc(s->cell, (size_t)cap * s->nh * sizeof *s->cell);
            if (!s->cell)
                mx_fatal("out of memory reading %s", path);
        }
        memcpy(s->cell + (size_t)s->nrow * s->nh, f, (size_t)s->nh * sizeof *f);
        s->nrow++;
    }
    return 0;
}

static void sheet_free(struct sheet *s)
{
    mx_free(s->text);
    free(s->cell);
    memset(s, 0, sizeof *s);
}

static int sheet_col(const struct sheet *s, const char *name, struct mx_error *err)
{
    for (int i = 0; i < s->nh; i++)
        if (!strcmp(s->head[i], name))
            return i;
    return mx_errorf(err, "%s: no '%s' column; re-run bench/study.sh", s->path, name);
}

/* A column older outputs may lack: its index, or -1. */
static int sheet_col_opt(const struct sheet *s, const char *name)
{
    for (int i = 0; i < s->nh; i++)
        if (!strcmp(s->head[i], name))
            return i;
    return -1;
}

static const char *cell(const struct sheet *s, int r, int c)
{
    return c < 0 ? "" : s->cell[(size_t)r * s->nh + c];
}

static double num(const struct sheet *s, int r, int c)
{
    const char *v = cell(s, r, c);
    char *end;
    double d = strtod(v, &end);
    return *v && !*end ? d : NAN;
}

/* The mixer of a spec: its name before ':' (the series key across contexts). */
static void mixer_of(char *out, size_t n, const char *spec)
{
    size_t k = strcspn(spec, ":");
    snprintf(out, n, "%.*s", (int)(k < n ? k : n - 1), spec);
}

/* Palette index of a mixer: its first place in the order the rows name mixers. */
struct palette {
    char name[STUDY_SERIES][64];
    int n;
};
static int color_of(struct palette *p, const char *spec)
{
    char m[64];
    mixer_of(m, sizeof m, spec);
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->name[i], m))
            return i;
    if (p->n == STUDY_SERIES)
        return -1;
    snprintf(p->name[p->n], sizeof p->name[0], "%s", m);
    return p->n++;
}

struct study {
    const char *dir;
    struct sheet lm, rc, cost, curves;
    char *machine; /* machine.txt, or NULL */
    struct palette pal;
    /* columns */
    int lm_spec, lm_ctx, lm_bpb, lm_mspt, lm_peak, lm_steps, lm_tokens, lm_eq, lm_eqtok, lm_cost, lm_secs;
    int rc_spec, rc_T, rc_acc, rc_steps, rc_guess; /* rc_guess -1: recall.csv before the guess */
    int c_spec, c_T, c_ms, c_peak, c_note;
    int cv_spec, cv_ctx, cv_el, cv_bpb;
};

/* Distinct values of an integer column, ascending (at most 64). */
static int distinct_ints(const struct sheet *s, int c, long *out)
{
    int n = 0;
    for (int r = 0; r < s->nrow; r++) {
        long v = (long)num(s, r, c);
        int seen = 0;
        for (int i = 0; i < n; i++)
            seen |= out[i] == v;
        if (!seen && n < 64)
            out[n++] = v;
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
            long t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

/* fwd+bwd ms of spec at T from cost.csv; NAN when not measured. */
static double cost_at(const struct study *st, const char *spec, long T, int peak)
{
    for (int r = 0; r < st->cost.nrow; r++)
        if (!strcmp(cell(&st->cost, r, st->c_spec), spec) && (long)num(&st->cost, r, st->c_T) == T)
            return num(&st->cost, r, peak ? st->c_peak : st->c_ms);
    return NAN;
}

/* The accuracy of spec at T; NAN without a row, -1 for a row the study did not train (gated). */
static double recall_at(const struct study *st, const char *spec, long T)
{
    for (int r = 0; r < st->rc.nrow; r++)
        if (!strcmp(cell(&st->rc, r, st->rc_spec), spec) && (long)num(&st->rc, r, st->rc_T) == T) {
            double a = num(&st->rc, r, st->rc_acc);
            return isfinite(a) ? a : -1;
        }
    return NAN;
}

/* ---- charts ----------------------------------------------------------------------------------- */

static void chart_pareto(FILE *f, struct study *st, long T)
{
    struct svg_series s[STUDY_SERIES + 1];
    double xs[STUDY_SERIES], ys[STUDY_SERIES], fx[STUDY_SERIES], fy[STUDY_SERIES];
    int n = 0;
    for (int r = 0; r < st->lm.nrow && n < STUDY_SERIES; r++) {
        if ((long)num(&st->lm, r, st->lm_ctx) != T)
            continue;
        xs[n] = num(&st->lm, r, st->lm_mspt);
        ys[n] = num(&st->lm, r, st->lm_bpb);
        const char *spec = cell(&st->lm, r, st->lm_spec);
        s[n] = (struct svg_series){.label = spec, .key = spec, .kind = "point", .x = &xs[n], .y = &ys[n], .n = 1,
                                   .color = color_of(&st->pal, spec), .marker = n, .flags = SVG_MARKERS | SVG_NO_LINE};
        n++;
    }
    /* The Pareto front: points no other point beats in both time and bits/byte, by time. */
    int nf = 0;
    for (int i = 0; i < n; i++) {
        int dominated = 0;
        for (int j = 0; j < n; j++)
            dominated |= j != i && xs[j] <= xs[i] && ys[j] <= ys[i] && (xs[j] < xs[i] || ys[j] < ys[i]);
        if (!dominated && isfinite(xs[i]) && isfinite(ys[i]))
            fx[nf] = xs[i], fy[nf] = ys[i], nf++;
    }
    for (int i = 1; i < nf; i++)
        for (int j = i; j > 0 && fx[j - 1] > fx[j]; j--) {
            double t = fx[j];
            fx[j] = fx[j - 1], fx[j - 1] = t;
            t = fy[j];
            fy[j] = fy[j - 1], fy[j - 1] = t;
        }
    s[n] = (struct svg_series){.label = "Pareto front", .kind = "front", .x = fx, .y = fy, .n = (size_t)nf,
                               .color = -1, .flags = SVG_DASHED};
    char title[96];
    snprintf(title, sizeof title, "Bits per byte against training cost, context %ld", T);
    struct svg_chart c = {.title = title, .subtitle = "each spec trained for the same wall-clock budget; lower left is better",
                          .xlabel = "training ms per token (median step / tokens per step)", .ylabel = "bits per byte",
                          .x_unit = "ms/token", .xscale = SVG_LOG10, .yscale = SVG_LINEAR, .width = 900, .height = 460};
    fputs("<figure>", f);
    svg_chart_write(f, &c, s, n + 1);
    fputs("</figure>\n", f);
}

/* One series per run of consecutive rows with the same spec (rows with c_filter == filter only,
 * when c_filter >= 0): x from column cx, y from cy, into buf (2 x the rows). Returns the count. */
static int spec_series(struct study *st, const struct sheet *sh, int c_spec, int c_filter, long filter, int cx,
                       int cy, double *buf, const char *kind, struct svg_series *s)
{
    int n = 0;
    size_t used = 0;
    for (int r = 0; r < sh->nrow && n < STUDY_SERIES;) {
        const char *spec = cell(sh, r, c_spec);
        if (c_filter >= 0 && (long)num(sh, r, c_filter) != filter) {
            r++;
            continue;
        }
        double *x = buf + used, *y = buf + sh->nrow + used;
        size_t k = 0;
        for (; r < sh->nrow && !strcmp(cell(sh, r, c_spec), spec) &&
               (c_filter < 0 || (long)num(sh, r, c_filter) == filter);
             r++, k++)
            x[k] = num(sh, r, cx), y[k] = num(sh, r, cy);
        used += k;
        s[n] = (struct svg_series){.label = spec, .key = spec, .kind = kind, .x = x, .y = y, .n = k,
                                   .color = color_of(&st->pal, spec), .marker = n, .flags = SVG_MARKERS};
        n++;
    }
    return n;
}

static void chart_curves(FILE *f, struct study *st, long T)
{
    if (!st->curves.text)
        return;
    struct svg_series s[STUDY_SERIES];
    double *buf = mx_xmalloc(2 * (size_t)st->curves.nrow * sizeof(double) + 1);
    int n = spec_series(st, &st->curves, st->cv_spec, st->cv_ctx, T, st->cv_el, st->cv_bpb, buf, "val", s);
    char title[96];
    snprintf(title, sizeof title, "Validation bits per byte against training time, context %ld", T);
    struct svg_chart c = {.title = title, .subtitle = "the fixed validation batches of `mixlm train`, at every evaluation",
                          .xlabel = "training seconds", .ylabel = "bits per byte", .x_unit = "s",
                          .xscale = SVG_LINEAR, .yscale = SVG_LINEAR, .x_zero = 1, .width = 900, .height = 460};
    fputs("<figure>", f);
    svg_chart_write(f, &c, s, n);
    fputs("</figure>\n", f);
    mx_free(buf);
}

static void chart_recall(FILE *f, struct study *st)
{
    struct svg_series s[STUDY_SERIES];
    char names[STUDY_SERIES][64];
    double x[STUDY_SERIES][16], y[STUDY_SERIES][16];
    int n = 0;
    for (int r = 0; r < st->rc.nrow; r++) {
        char m[64];
        mixer_of(m, sizeof m, cell(&st->rc, r, st->rc_spec));
        int i = 0;
        while (i < n && strcmp(names[i], m))
            i++;
        if (i == n) {
            if (n == STUDY_SERIES)
                continue;
            snprintf(names[n], sizeof names[n], "%s", m);
            s[n] = (struct svg_series){.label = names[n], .key = names[n], .kind = "recall", .x = x[n], .y = y[n],
                                       .color = color_of(&st->pal, m), .marker = n, .flags = SVG_MARKERS};
            n++;
        }
        if (s[i].n < 16 && isfinite(num(&st->rc, r, st->rc_acc))) { /* no point where not trained */
            x[i][s[i].n] = num(&st->rc, r, st->rc_T);
            y[i][s[i].n] = num(&st->rc, r, st->rc_acc);
            s[i].n++;
        }
    }
    struct svg_chart c = {.title = "Associative recall accuracy against sequence length",
                          .subtitle = "each mixer with its spec sized for T (recall.csv); chance is 1/vocab; the in-sequence "
                                      "guess (answering with the sequence's most frequent value) is in the table",
                          .xlabel = "T (tokens)", .ylabel = "accuracy on the answers", .xscale = SVG_LOG2,
                          .yscale = SVG_LINEAR, .y_zero = 1, .width = 900, .height = 460};
    fputs("<figure>", f);
    svg_chart_write(f, &c, s, n);
    fputs("</figure>\n", f);
}

static void chart_cost(FILE *f, struct study *st, int memory)
{
    struct svg_series s[STUDY_SERIES];
    double *buf = mx_xmalloc(2 * (size_t)st->cost.nrow * sizeof(double) + 1);
    int n = spec_series(st, &st->cost, st->c_spec, -1, 0, st->c_T, memory ? st->c_peak : st->c_ms, buf,
                        memory ? "memory" : "time", s);
    struct svg_chart c = {
        .title = memory ? "Peak memory against context length" : "Forward + backward time against context length",
        .subtitle = "one mixer sublayer (`mixlm bench`), the specs of the quality tables; missing points: skipped",
        .xlabel = "context length T", .ylabel = memory ? "peak MB" : "fwd+bwd ms", .y_unit = memory ? "MB" : "ms",
        .xscale = SVG_LOG2, .yscale = SVG_LOG10, .width = 900, .height = 520};
    fputs("<figure>", f);
    svg_chart_write(f, &c, s, n);
    fputs("</figure>\n", f);
    mx_free(buf);
}

/* ---- tables (HTML and Markdown from one report_table) ------------------------------------------ */

static void fmt(char *b, size_t n, double v, int prec)
{
    report_fmt_fixed(b, n, v, prec);
}

/* The quality rows of context T with their cost and recall at T, and at 16k and 64k. */
static void lm_table(struct report_table *t, struct study *st, long T, int *swatch)
{
    static const char *const head[] = {"spec", "context", "bits/byte", "bits/byte at equal tokens", "train ms/token",
                                       "steps", "peak MB", "fwd+bwd ms at T", "at 16k", "at 64k", "recall at T"};
    static const int isnum[] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    int rows[STUDY_SERIES], n = 0;
    for (int r = 0; r < st->lm.nrow && n < STUDY_SERIES; r++)
        if ((long)num(&st->lm, r, st->lm_ctx) == T)
            rows[n++] = r;
    for (int i = 1; i < n; i++) /* best bits/byte first */
        for (int j = i; j > 0 && num(&st->lm, rows[j - 1], st->lm_bpb) > num(&st->lm, rows[j], st->lm_bpb); j--) {
            int k = rows[j];
            rows[j] = rows[j - 1], rows[j - 1] = k;
        }
    report_table_init(t, 11, n, head, isnum);
    for (int i = 0; i < n; i++) {
        int r = rows[i];
        const char *spec = cell(&st->lm, r, st->lm_spec);
        char b[64];
        report_table_set(t, i, 0, spec);
        snprintf(b, sizeof b, "%ld", T);
        report_table_set(t, i, 1, b);
        fmt(b, sizeof b, num(&st->lm, r, st->lm_bpb), 3), report_table_set(t, i, 2, b);
        fmt(b, sizeof b, num(&st->lm, r, st->lm_eq), 3), report_table_set(t, i, 3, b);
        fmt(b, sizeof b, num(&st->lm, r, st->lm_mspt), 4), report_table_set(t, i, 4, b);
        report_table_set(t, i, 5, cell(&st->lm, r, st->lm_steps));
        fmt(b, sizeof b, num(&st->lm, r, st->lm_peak), 0), report_table_set(t, i, 6, b);
        fmt(b, sizeof b, cost_at(st, spec, T, 0), 1), report_table_set(t, i, 7, b);
        fmt(b, sizeof b, cost_at(st, spec, 16384, 0), 1), report_table_set(t, i, 8, b);
        fmt(b, sizeof b, cost_at(st, spec, 65536, 0), 1), report_table_set(t, i, 9, b);
        double ra = recall_at(st, spec, T);
        fmt(b, sizeof b, ra, 3), report_table_set(t, i, 10, ra < 0 ? "not trained" : b);
        if (swatch)
            swatch[i] = color_of(&st->pal, spec);
    }
}

static void recall_table(struct report_table *t, struct study *st, int *swatch)
{
    static const char *const head[] = {"spec", "T", "accuracy", "in-sequence guess", "steps", "fwd+bwd ms at T",
                                       "peak MB at T"};
    static const int isnum[] = {0, 1, 1, 1, 1, 1, 1};
    report_table_init(t, 7, st->rc.nrow, head, isnum);
    for (int r = 0; r < st->rc.nrow; r++) {
        const char *spec = cell(&st->rc, r, st->rc_spec);
        long T = (long)num(&st->rc, r, st->rc_T);
        char b[64];
        report_table_set(t, r, 0, spec);
        report_table_set(t, r, 1, cell(&st->rc, r, st->rc_T));
        /* A mixer at the guess at a shorter T is not trained here (study.sh's RECALL_GATE). */
        int trained = isfinite(num(&st->rc, r, st->rc_acc));
        fmt(b, sizeof b, num(&st->rc, r, st->rc_acc), 3), report_table_set(t, r, 2, trained ? b : "not trained");
        if (st->rc_guess >= 0)
            fmt(b, sizeof b, num(&st->rc, r, st->rc_guess), 3), report_table_set(t, r, 3, b);
        else
            report_table_set(t, r, 3, "not recorded");
        report_table_set(t, r, 4, trained ? cell(&st->rc, r, st->rc_steps) : "0");
        fmt(b, sizeof b, cost_at(st, spec, T, 0), 1), report_table_set(t, r, 5, b);
        fmt(b, sizeof b, cost_at(st, spec, T, 1), 0), report_table_set(t, r, 6, b);
        if (swatch)
            swatch[r] = color_of(&st->pal, spec);
    }
}

static void md_table(FILE *f, const struct report_table *t)
{
    fputs("|", f);
    for (int c = 0; c < t->ncol; c++)
        fprintf(f, " %s |", t->head[c]);
    fputs("\n|", f);
    for (int c = 0; c < t->ncol; c++)
        fputs(t->num[c] ? "---:|" : "---|", f);
    fputs("\n", f);
    for (int r = 0; r < t->nrow; r++) {
        fputs("|", f);
        for (int c = 0; c < t->ncol; c++) {
            const char *s = t->cell[(size_t)r * t->ncol + c];
            if (c == 0)
                fprintf(f, " `%s` |", s);
            else
                fprintf(f, " %s |", s);
        }
        fputs("\n", f);
    }
}

/* machine.txt's line "key: value" -> value in v (512 bytes), or "unknown". */
static const char *machine_field(const struct study *st, const char *key, char *v)
{
    snprintf(v, 512, "unknown");
    if (!st->machine)
        return v;
    size_t k = strlen(key);
    for (const char *p = st->machine; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, key, k) && p[k] == ':') {
            const char *s = p + k + 1;
            while (*s == ' ')
                s++;
            size_t n = strcspn(s, "\n");
            snprintf(v, 512, "%.*s", (int)(n < 512 ? n : 511), s);
        }
    return v;
}

static int write_md(FILE *f, void *ctx, struct mx_error *err)
{
    struct study *st = ctx;
    (void)err;
    char v[5][512];
    fprintf(f, "Machine: %s, kernels %s, %s threads; `%s` (%s).\n\n", machine_field(st, "cpu", v[0]),
            machine_field(st, "isa", v[1]), machine_field(st, "threads", v[2]), machine_field(st, "command", v[3]),
            machine_field(st, "date", v[4]));
    long ctx_v[64];
    int nc = distinct_ints(&st->lm, st->lm_ctx, ctx_v);
    for (int i = 0; i < nc; i++) {
        struct report_table t;
        lm_table(&t, st, ctx_v[i], NULL);
        fprintf(f, "**Byte-level LM, context %ld** (equal wall-clock budget; bits/byte: `mixlm eval` full pass of "
                   "the validation split; fwd+bwd: one sublayer, `mixlm bench`, the same spec):\n\n", ctx_v[i]);
        md_table(f, &t);
        fputs("\n", f);
        report_table_free(&t);
    }
    struct report_table t;
    recall_table(&t, st, NULL);
    fputs("**Associative recall** (accuracy on the answers, `mixlm eval --recall`; chance is 1/vocab, the "
          "in-sequence guess is what answering with the sequence's most frequent value scores; \"not trained\": "
          "the mixer was not above the guess by more than the study's gate at a shorter T):\n\n", f);
    md_table(f, &t);
    report_table_free(&t);
    return 0;
}

static int write_page(FILE *f, void *ctx, struct mx_error *err)
{
    struct study *st = ctx;
    (void)err;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>mixlm study</title>\n",
          f);
    fprintf(f, "<style>\n%s</style>\n</head>\n<body>\n<main>\n<h1>mixlm study</h1>\n<p class=\"meta\">", report_html_css);
    char v[512];
    svg_escape(f, machine_field(st, "cpu", v));
    fputs(" · kernels ", f);
    svg_escape(f, machine_field(st, "isa", v));
    fputs(" · ", f);
    svg_escape(f, machine_field(st, "threads", v));
    fputs(" threads · <code>", f);
    svg_escape(f, machine_field(st, "command", v));
    fputs("</code> · ", f);
    svg_escape(f, machine_field(st, "date", v));
    fputs("</p>\n", f);
    long ctx_v[64];
    int nc = distinct_ints(&st->lm, st->lm_ctx, ctx_v);
    fputs("<h2>1. Language modelling at long context</h2>\n", f);
    for (int i = 0; i < nc; i++) {
        chart_pareto(f, st, ctx_v[i]);
        chart_curves(f, st, ctx_v[i]);
        struct report_table t;
        int sw[STUDY_SERIES];
        lm_table(&t, st, ctx_v[i], sw);
        report_html_table(f, &t, sw, "study");
        report_table_free(&t);
    }
    fputs("<h2>2. Associative recall</h2>\n", f);
    chart_recall(f, st);
    {
        struct report_table t;
        int *sw = mx_xmalloc(((size_t)st->rc.nrow + 1) * sizeof(int));
        recall_table(&t, st, sw);
        report_html_table(f, &t, sw, "recall");
        report_table_free(&t);
        mx_free(sw);
    }
    fputs("<h2>3. Cost against context length</h2>\n", f);
    chart_cost(f, st, 0);
    chart_cost(f, st, 1);
    fputs("<h2>Machine and settings</h2>\n<pre>", f);
    svg_escape(f, st->machine ? st->machine : "machine.txt missing");
    fputs("</pre>\n<footer>written by <code>mixlm report --study</code> from study.csv, recall.csv, cost.csv and "
          "curves.csv</footer>\n</main>\n</body>\n</html>\n",
          f);
    return 0;
}

int report_study(const char *path, const char *dir, struct mx_error *err)
{
    struct study st;
    memset(&st, 0, sizeof st);
    st.dir = dir;
    char p[4][1100], mpath[1100], md[1100];
    static const char *const names[4] = {"study.csv", "recall.csv", "cost.csv", "curves.csv"};
    for (int i = 0; i < 4; i++)
        snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
    snprintf(mpath, sizeof mpath, "%s/machine.txt", dir);
    snprintf(md, sizeof md, "%s/README_table.md", dir);
    int rc = -1;
    if (sheet_load(&st.lm, p[0], 0, err) || sheet_load(&st.rc, p[1], 0, err) || sheet_load(&st.cost, p[2], 0, err) ||
        sheet_load(&st.curves, p[3], 1, err))
        goto out;
    if ((st.lm_spec = sheet_col(&st.lm, "spec", err)) < 0 || (st.lm_ctx = sheet_col(&st.lm, "context", err)) < 0 ||
        (st.lm_bpb = sheet_col(&st.lm, "bits_per_byte", err)) < 0 ||
        (st.lm_mspt = sheet_col(&st.lm, "train_ms_per_token", err)) < 0 ||
        (st.lm_peak = sheet_col(&st.lm, "peak_mb", err)) < 0 || (st.lm_steps = sheet_col(&st.lm, "steps", err)) < 0 ||
        (st.lm_eq = sheet_col(&st.lm, "bpb_equal_tokens", err)) < 0 ||
        (st.rc_spec = sheet_col(&st.rc, "spec", err)) < 0 || (st.rc_T = sheet_col(&st.rc, "T", err)) < 0 ||
        (st.rc_acc = sheet_col(&st.rc, "accuracy", err)) < 0 || (st.rc_steps = sheet_col(&st.rc, "steps", err)) < 0 ||
        (st.rc_guess = sheet_col_opt(&st.rc, "in_seq_guess")) < -1 ||
        (st.c_spec = sheet_col(&st.cost, "spec", err)) < 0 || (st.c_T = sheet_col(&st.cost, "T", err)) < 0 ||
        (st.c_ms = sheet_col(&st.cost, "fwd_bwd_ms", err)) < 0 || (st.c_peak = sheet_col(&st.cost, "peak_mb", err)) < 0)
        goto out;
    if (st.curves.text &&
        ((st.cv_spec = sheet_col(&st.curves, "spec", err)) < 0 || (st.cv_ctx = sheet_col(&st.curves, "context", err)) < 0 ||
         (st.cv_el = sheet_col(&st.curves, "elapsed_s", err)) < 0 || (st.cv_bpb = sheet_col(&st.curves, "val_bpb", err)) < 0))
        goto out;
    if (mx_file_exists(mpath)) {
        size_t len;
        st.machine = mx_read_file(mpath, &len, err);
        if (!st.machine)
            goto out;
    }
    for (int r = 0; r < st.lm.nrow; r++) /* colours follow the order of the quality rows */
        color_of(&st.pal, cell(&st.lm, r, st.lm_spec));
    if (mx_write_atomic(path, write_page, &st, err) != 0 || mx_write_atomic(md, write_md, &st, err) != 0)
        goto out;
    rc = 0;
out:
    sheet_free(&st.lm);
    sheet_free(&st.rc);
    sheet_free(&st.cost);
    sheet_free(&st.curves);
    mx_free(st.machine);
    return rc;
}
