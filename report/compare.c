/* compare.c — `mixlm compare`'s table across training runs (text, JSON or CSV) and the pieces
 * the HTML report shares with it: a run's numbers read back through run/, labels, the order by
 * validation loss, number formatting and a plain-text table. Argument handling is cli/'s; the
 * files of a run are read by run/ only. */
#include "report/internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void report_run_free(struct report_run *r)
{
    mx_free(r->step);
    mx_free(r->loss);
    mx_free(r->val_step);
    mx_free(r->val_loss_log);
    memset(r, 0, sizeof *r);
}

int report_run_load(struct report_run *r, const char *dir, struct mx_error *err)
{
    memset(r, 0, sizeof *r);
    if (strlen(dir) >= sizeof r->dir)
        return mx_errorf(err, "%s: run directory path too long (max %zu characters)", dir, sizeof r->dir - 1);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    for (size_t l = strlen(r->dir); l > 1 && r->dir[l - 1] == '/'; l--)
        r->dir[l - 1] = 0;
    struct stat sb;
    if (stat(r->dir, &sb) != 0)
        return mx_errorf(err, "%s: no such run directory (%s)", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return mx_errorf(err, "%s: not a directory; give the run directory that `mixlm train --out` wrote",
                         dir);
    struct run_summary *s = mx_xcalloc(sizeof *s);
    struct run_history h;
    int rc = run_summary_read(r->dir, s, err) == 0 && run_log_read(r->dir, &h, err) == 0 ? 0 : -1;
    if (rc == 0) {
        snprintf(r->attn, sizeof r->attn, "%s", s->attn);
        snprintf(r->tokenizer, sizeof r->tokenizer, "%s", s->tokenizer);
        r->n_layer = s->n_layer, r->n_head = s->n_head, r->n_embd = s->n_embd;
        r->block_size = s->block_size, r->vocab_size = s->vocab_size;
        r->params = s->params, r->steps = s->steps, r->val_loss = s->val_loss;
        r->train_seconds = s->train_seconds, r->tokens_per_s = s->tokens_per_s;
        r->peak_rss_mb = s->peak_rss_mb, r->threads = s->threads;
        /* WHY: val_loss is nats per token. Only where one token is one character (char) or one
         * byte (byte) does dividing by ln 2 give bits per character or per byte; for SentencePiece
         * tokens it would be bits per piece, so those stay n/a unless the run recorded them. */
        r->bpc = s->bits_per_char, r->bpb = s->bits_per_byte;
        if (!strcmp(r->tokenizer, "char"))
            r->bpc = r->val_loss / log(2.0);
        else if (!strcmp(r->tokenizer, "byte"))
            r->bpb = r->val_loss / log(2.0);
        r->n_log = h.n_log, r->step = h.step, r->loss = h.loss;
        r->n_val = h.n_val, r->val_step = h.val_step, r->val_loss_log = h.val_loss;
    }
    mx_free(s);
    return rc;
}

/* Labels: basenames, unless two runs share one (then the paths as given). */
void report_run_labels(struct report_run *r, int n)
{
    for (int i = 0; i < n; i++) {
        const char *b = strrchr(r[i].dir, '/');
        b = b && b[1] ? b + 1 : r[i].dir;
        if (!strcmp(b, ".") || !strcmp(b, ".."))
            b = r[i].dir;
        snprintf(r[i].label, sizeof r[i].label, "%s", b);
    }
    int clash = 0;
    for (int i = 0; i < n; i++)
        for (int k = i + 1; k < n; k++)
            clash |= !strcmp(r[i].label, r[k].label) && strcmp(r[i].dir, r[k].dir);
    if (clash)
        for (int i = 0; i < n; i++)
            snprintf(r[i].label, sizeof r[i].label, "%s", r[i].dir);
}

/* order[] = run indices by validation loss ascending, unknown last, ties in the given order. */
void report_run_order(const struct report_run *r, int n, int *order)
{
    for (int i = 0; i < n; i++) {
        int k = i;
        double v = isfinite(r[i].val_loss) ? r[i].val_loss : INFINITY;
        while (k > 0) {
            double u = isfinite(r[order[k - 1]].val_loss) ? r[order[k - 1]].val_loss : INFINITY;
            if (u <= v)
                break;
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
}

/* ---- formatting ---------------------------------------------------------------------------------- */

void report_fmt_fixed(char *b, size_t n, double v, int prec)
{
    if (isfinite(v))
        snprintf(b, n, "%.*f", prec, v);
    else
        snprintf(b, n, "n/a");
}

void report_fmt_count(char *b, size_t n, double v)
{
    if (!isfinite(v))
        snprintf(b, n, "n/a");
    else if (v >= 1e9)
        snprintf(b, n, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(b, n, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(b, n, "%.1fK", v / 1e3);
    else
        snprintf(b, n, "%.0f", v);
}

void report_fmt_duration(char *b, size_t n, double s)
{
    if (!isfinite(s))
        snprintf(b, n, "n/a");
    else if (s < 10)
        snprintf(b, n, "%.2fs", s);
    else if (s < 100)
        snprintf(b, n, "%.1fs", s);
    else if (s < 3600)
        snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

/* A table of formatted cells shared by the terminal and the HTML output. */

void report_table_init(struct report_table *t, int ncol, int nrow, const char *const *head, const int *num)
{
    t->ncol = ncol, t->nrow = nrow, t->head = head, t->num = num;
    t->cell = mx_xcalloc((size_t)ncol * (size_t)(nrow ? nrow : 1) * sizeof(char *));
}

void report_table_set(struct report_table *t, int row, int col, const char *s)
{
    t->cell[(size_t)row * t->ncol + col] = mx_xstrdup(s);
}

void report_table_free(struct report_table *t)
{
    for (size_t i = 0; i < (size_t)t->ncol * t->nrow; i++)
        mx_free(t->cell[i]);
    mx_free(t->cell);
}

static int utf8_width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

void report_table_print(FILE *f, const struct report_table *t)
{
    int w[64]; /* columns: at most 64 */
    for (int c = 0; c < t->ncol; c++) {
        w[c] = utf8_width(t->head[c]);
        for (int r = 0; r < t->nrow; r++) {
            int x = utf8_width(t->cell[(size_t)r * t->ncol + c]);
            w[c] = x > w[c] ? x : w[c];
        }
    }
    for (int r = -1; r < t->nrow; r++) {
        for (int c = 0; c < t->ncol; c++) {
            const char *s = r < 0 ? t->head[c] : t->cell[(size_t)r * t->ncol + c];
            int pad = w[c] - utf8_width(s);
            if (t->num[c])
                fprintf(f, "%s%*s%s", c ? "  " : "", pad, "", s);
            else if (c + 1 < t->ncol)
                fprintf(f, "%s%s%*s", c ? "  " : "", s, pad, "");
            else
                fprintf(f, "%s%s", c ? "  " : "", s);
        }
        fputc('\n', f);
    }
}

static const char *const compare_head[] = {"run",      "attn",       "tokenizer", "model",     "params",
                                           "steps",    "train loss", "val loss",  "bits/char", "bits/byte",
                                           "tokens/s", "train time", "peak MiB",  "threads"};
static const int compare_num[] = {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
#define COMPARE_NCOL ((int)(sizeof compare_head / sizeof compare_head[0]))

void report_compare_table(struct report_table *t, const struct report_run *runs, const int *order, int n)
{
    report_table_init(t, COMPARE_NCOL, n, compare_head, compare_num);
    for (int i = 0; i < n; i++) {
        const struct report_run *r = &runs[order[i]];
        char b[64];
        int c = 0;
        report_table_set(t, i, c++, r->label);
        report_table_set(t, i, c++, r->attn);
        report_table_set(t, i, c++, r->tokenizer);
        if (r->n_layer)
            snprintf(b, sizeof b, "L%d C%d H%d T%d", r->n_layer, r->n_embd, r->n_head, r->block_size);
        else
            snprintf(b, sizeof b, "n/a");
        report_table_set(t, i, c++, b);
        report_fmt_count(b, sizeof b, r->params);
        report_table_set(t, i, c++, b);
        report_fmt_fixed(b, sizeof b, r->steps, 0);
        report_table_set(t, i, c++, b);
        report_fmt_fixed(b, sizeof b, r->loss[r->n_log - 1], 4);
        report_table_set(t, i, c++, b);
        report_fmt_fixed(b, sizeof b, r->val_loss, 4);
        report_table_set(t, i, c++, b);
        report_fmt_fixed(b, sizeof b, r->bpc, 4);
        report_table_set(t, i, c++, b);
        report_fmt_fixed(b, sizeof b, r->bpb, 4);
        report_table_set(t, i, c++, b);
        report_fmt_fixed(b, sizeof b, r->tokens_per_s, 0);
        report_table_set(t, i, c++, b);
        report_fmt_duration(b, sizeof b, r->train_seconds);
        report_table_set(t, i, c++, b);
        report_fmt_fixed(b, sizeof b, r->peak_rss_mb, 1);
        report_table_set(t, i, c++, b);
        report_fmt_fixed(b, sizeof b, r->threads, 0);
        report_table_set(t, i, c++, b);
        MX_ASSERT(c == COMPARE_NCOL);
    }
}

/* Notes under a comparison: what the numbers are, and when they do not compare. */
int report_compare_mixed(const struct report_run *runs, int n, const char *what)
{
    for (int i = 1; i < n; i++) {
        int differ = !strcmp(what, "tokenizer") ? strcmp(runs[i].tokenizer, runs[0].tokenizer) != 0
                     : !strcmp(what, "threads")
                         ? !(runs[i].threads == runs[0].threads ||
                             (!isfinite(runs[i].threads) && !isfinite(runs[0].threads)))
                         : runs[i].vocab_size != runs[0].vocab_size;
        if (differ)
            return 1;
    }
    return 0;
}

static void csv_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, ",%.10g", v);
    else
        fputc(',', f);
}

static void json_add_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

int report_compare(const char *const *dirs, int npos, enum report_format fmt, struct mx_error *err)
{
    struct report_run *runs = mx_xcalloc((size_t)npos * sizeof *runs);
    int loaded = 0, status = 0;
    int json = fmt == REPORT_JSON, csv = fmt == REPORT_CSV;
    for (; loaded < npos; loaded++)
        if (report_run_load(&runs[loaded], dirs[loaded], err) != 0) {
            status = -1;
            goto out;
        }
    report_run_labels(runs, npos);
    int order[REPORT_RUNS_MAX];
    report_run_order(runs, npos, order);
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < npos; i++) {
            const struct report_run *r = &runs[order[i]];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "run", r->dir);
            cJSON_AddStringToObject(o, "label", r->label);
            cJSON_AddStringToObject(o, "attn", r->attn);
            cJSON_AddStringToObject(o, "tokenizer", r->tokenizer);
            cJSON_AddNumberToObject(o, "n_layer", r->n_layer);
            cJSON_AddNumberToObject(o, "n_embd", r->n_embd);
            cJSON_AddNumberToObject(o, "n_head", r->n_head);
            cJSON_AddNumberToObject(o, "block_size", r->block_size);
            cJSON_AddNumberToObject(o, "vocab_size", r->vocab_size);
            json_add_num(o, "params", r->params);
            json_add_num(o, "steps", r->steps);
            json_add_num(o, "train_loss", r->loss[r->n_log - 1]);
            json_add_num(o, "val_loss", r->val_loss);
            json_add_num(o, "bits_per_char", r->bpc);
            json_add_num(o, "bits_per_byte", r->bpb);
            json_add_num(o, "tokens_per_s", r->tokens_per_s);
            json_add_num(o, "train_seconds", r->train_seconds);
            json_add_num(o, "peak_rss_mb", r->peak_rss_mb);
            json_add_num(o, "threads", r->threads);
            cJSON_AddItemToArray(arr, o);
        }
        char *s = cJSON_Print(arr);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(arr);
    } else if (csv) {
        printf(
            "run,attn,tokenizer,n_layer,n_embd,n_head,block_size,vocab_size,params,steps,train_loss,val_loss,"
            "bits_per_char,bits_per_byte,tokens_per_s,train_seconds,peak_rss_mb,threads\n");
        for (int i = 0; i < npos; i++) {
            const struct report_run *r = &runs[order[i]];
            mx_csv_field(stdout, r->dir);
            fputc(',', stdout);
            mx_csv_field(stdout, r->attn);
            fputc(',', stdout);
            mx_csv_field(stdout, r->tokenizer);
            printf(",%d,%d,%d,%d,%d", r->n_layer, r->n_embd, r->n_head, r->block_size, r->vocab_size);
            csv_number(stdout, r->params);
            csv_number(stdout, r->steps);
            csv_number(stdout, r->loss[r->n_log - 1]);
            csv_number(stdout, r->val_loss);
            csv_number(stdout, r->bpc);
            csv_number(stdout, r->bpb);
            csv_number(stdout, r->tokens_per_s);
            csv_number(stdout, r->train_seconds);
            csv_number(stdout, r->peak_rss_mb);
            csv_number(stdout, r->threads);
            fputc('\n', stdout);
        }
    } else {
        struct report_table t;
        report_compare_table(&t, runs, order, npos);
        report_table_print(stdout, &t);
        report_table_free(&t);
        if (report_compare_mixed(runs, npos, "tokenizer"))
            printf(
                "note: the runs use different tokenizers, so their losses (nats per token) do not compare; "
                "compare bits per byte (mixlm eval reports it for every run)\n");
        else if (report_compare_mixed(runs, npos, "vocab"))
            printf("note: the runs have different vocabularies; losses compare only per character or byte\n");
        if (report_compare_mixed(runs, npos, "threads"))
            printf("note: the runs used different thread counts, so tokens/s and training time do not "
                   "compare\n");
    }
out:
    for (int i = 0; i < loaded; i++)
        report_run_free(&runs[i]);
    mx_free(runs);
    return status;
}
