/* cmd_report.c — `mixlm compare RUN...` (a quality table across training runs: text, JSON or CSV)
 * and `mixlm report RUN... [--bench CSV] -o report.html` (one self-contained HTML page: loss
 * curves of every run, time and memory versus context from `mixlm bench --csv-out`, the tables).
 * Reads run directories (summary.json, log.jsonl) and bench CSVs; trains and measures nothing,
 * and loads no checkpoint. Charts come from cli/svg.c; the page has no scripts and no links. */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/svg.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define RUNS_MAX 256
#define BENCH_FILES_MAX ARG_LIST_MAX
#define CSV_FIELDS_MAX 64

/* ---- runs -------------------------------------------------------------------------------------- */

struct run_info {
    char dir[512];   /* as given, trailing '/' removed */
    char label[512]; /* display name: the directory's basename, or dir when basenames collide */
    char attn[2048]; /* the spec, or "L0-1: spec | L2: spec" when layers differ */
    char tokenizer[64];
    int n_layer, n_head, n_embd, block_size, vocab_size;
    /* From summary.json; NAN when absent or null. */
    double params, steps, val_loss, train_seconds, tokens_per_s, peak_rss_mb, threads;
    double bpc, bpb; /* bits per character / per byte of the validation text; NAN when undefined */
    /* From log.jsonl, in step order (see run_load_log for resumed runs). */
    size_t n_log, n_val;
    double *step, *loss;             /* (n_log) */
    double *val_step, *val_loss_log; /* (n_val) */
};

static void run_free(struct run_info *r)
{
    mx_free(r->step);
    mx_free(r->loss);
    mx_free(r->val_step);
    mx_free(r->val_loss_log);
    memset(r, 0, sizeof *r);
}

/* A number member: NAN when absent or null; an error naming file and key when of another type. */
static int json_number(const cJSON *o, const char *key, double *out, const char *path, struct mx_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NAN;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v))
        return mx_errorf(err, "%s: \"%s\" should be a number", path, key);
    *out = v->valuedouble;
    return 0;
}

static int json_int(const cJSON *o, const char *key, int *out, const char *path, struct mx_error *err)
{
    double d;
    if (json_number(o, key, &d, path, err) != 0)
        return -1;
    if (!isfinite(d) || d < 0 || d > INT_MAX || d != floor(d))
        return mx_errorf(err, "%s: \"%s\" should be a non-negative integer", path, key);
    *out = (int)d;
    return 0;
}

/* Parse a whole JSON text; on failure an error naming the file and the byte offset. */
static cJSON *parse_json(const char *text, const char *path, struct mx_error *err)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (!j)
        mx_errorf(err, "%s: not valid JSON (error near byte %ld); the file is corrupt or was cut short", path,
                  end ? (long)(end - text) : 0L);
    return j;
}

/* The attention column: one spec when every layer has it, else runs of equal layers. */
static void attn_describe(char *out, size_t n, const cJSON *arr)
{
    int L = cJSON_GetArraySize(arr);
    const char *first = cJSON_GetStringValue(cJSON_GetArrayItem(arr, 0));
    int same = 1;
    for (int l = 1; l < L; l++) {
        const char *s = cJSON_GetStringValue(cJSON_GetArrayItem(arr, l));
        same &= s && first && !strcmp(s, first);
    }
    if (same) {
        snprintf(out, n, "%s", first ? first : "?");
        return;
    }
    size_t used = 0;
    out[0] = 0;
    for (int l = 0; l < L;) {
        const char *s = cJSON_GetStringValue(cJSON_GetArrayItem(arr, l));
        int e = l;
        while (e + 1 < L) {
            const char *t = cJSON_GetStringValue(cJSON_GetArrayItem(arr, e + 1));
            if (!s || !t || strcmp(s, t))
                break;
            e++;
        }
        int w = e > l ? snprintf(out + used, n - used, "%sL%d-%d: %s", used ? " | " : "", l, e, s ? s : "?")
                      : snprintf(out + used, n - used, "%sL%d: %s", used ? " | " : "", l, s ? s : "?");
        if (w < 0 || (size_t)w >= n - used)
            break;
        used += (size_t)w;
        l = e + 1;
    }
}

static int run_load_summary(struct run_info *r, struct mx_error *err)
{
    char path[600];
    snprintf(path, sizeof path, "%s/summary.json", r->dir);
    if (!mx_file_exists(path))
        return mx_errorf(err,
                         "%s: no such file; summary.json is written when `mixlm train` finishes "
                         "(is the run still training, or was it stopped before the end?)",
                         path);
    size_t len;
    char *text = mx_read_file(path, &len, err);
    if (!text)
        return -1;
    cJSON *j = parse_json(text, path, err);
    mx_free(text);
    if (!j)
        return -1;
    int rc = -1;
    if (!cJSON_IsObject(j)) {
        mx_errorf(err, "%s: should hold a JSON object", path);
        goto out;
    }
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
    const cJSON *arr = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "attn") : NULL;
    const cJSON *a1 = cJSON_GetObjectItemCaseSensitive(j, "attn");
    if (cJSON_IsArray(arr) && cJSON_GetArraySize(arr) > 0)
        attn_describe(r->attn, sizeof r->attn, arr);
    else if (cJSON_IsString(a1))
        snprintf(r->attn, sizeof r->attn, "%s", a1->valuestring);
    else {
        mx_errorf(err, "%s: no attention spec (neither config.attn[] nor \"attn\")", path);
        goto out;
    }
    if (cJSON_IsObject(cfg) &&
        (json_int(cfg, "n_layer", &r->n_layer, path, err) || json_int(cfg, "n_head", &r->n_head, path, err) ||
         json_int(cfg, "n_embd", &r->n_embd, path, err) ||
         json_int(cfg, "block_size", &r->block_size, path, err) ||
         json_int(cfg, "vocab_size", &r->vocab_size, path, err)))
        goto out;
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "tokenizer");
    if (!cJSON_IsString(tok)) {
        mx_errorf(err, "%s: \"tokenizer\" missing or not a string", path);
        goto out;
    }
    snprintf(r->tokenizer, sizeof r->tokenizer, "%s", tok->valuestring);
    double bpc_s, bpb_s;
    if (json_number(j, "params", &r->params, path, err) || json_number(j, "steps", &r->steps, path, err) ||
        json_number(j, "val_loss", &r->val_loss, path, err) ||
        json_number(j, "train_seconds", &r->train_seconds, path, err) ||
        json_number(j, "tokens_per_s", &r->tokens_per_s, path, err) ||
        json_number(j, "peak_rss_mb", &r->peak_rss_mb, path, err) ||
        json_number(j, "threads", &r->threads, path, err) ||
        json_number(j, "bits_per_char", &bpc_s, path, err) ||
        json_number(j, "bits_per_byte", &bpb_s, path, err))
        goto out;
    /* WHY: val_loss is nats per token. Only where one token is one character (char) or one byte
     * (byte) does dividing by ln 2 give bits per character or per byte; for SentencePiece tokens
     * it would be bits per piece, so those stay n/a unless the run recorded them itself. */
    r->bpc = bpc_s, r->bpb = bpb_s;
    if (!strcmp(r->tokenizer, "char"))
        r->bpc = r->val_loss / log(2.0);
    else if (!strcmp(r->tokenizer, "byte"))
        r->bpb = r->val_loss / log(2.0);
    rc = 0;
out:
    cJSON_Delete(j);
    return rc;
}

/* log.jsonl: one object per logged step with "step" and "loss", "val_loss" on evaluation steps.
 * A resumed run logs again from its checkpoint's step: a step that goes backwards drops the
 * points at or after it, so the curve is the history the checkpoint actually has. */
static int run_load_log(struct run_info *r, struct mx_error *err)
{
    char path[600];
    snprintf(path, sizeof path, "%s/log.jsonl", r->dir);
    if (!mx_file_exists(path))
        return mx_errorf(err,
                         "%s: no such file; a run directory written by `mixlm train` holds its "
                         "training log there",
                         path);
    size_t len;
    char *text = mx_read_file(path, &len, err);
    if (!text)
        return -1;
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += text[i] == '\n';
    r->step = mx_xmalloc(cap * sizeof(double));
    r->loss = mx_xmalloc(cap * sizeof(double));
    r->val_step = mx_xmalloc(cap * sizeof(double));
    r->val_loss_log = mx_xmalloc(cap * sizeof(double));
    int rc = -1;
    long lineno = 0;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        lineno++;
        char *s = line;
        line = nl ? nl + 1 : NULL;
        size_t sl = strlen(s);
        while (sl && (s[sl - 1] == '\r' || s[sl - 1] == ' ' || s[sl - 1] == '\t'))
            s[--sl] = 0;
        if (!sl)
            continue;
        cJSON *o = cJSON_ParseWithOpts(s, NULL, 1);
        double st, lo, vl;
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            mx_errorf(err, "%s:%ld: not a JSON object (the log is corrupt or a line was cut short)", path,
                      lineno);
            goto out;
        }
        int bad = json_number(o, "step", &st, path, err) || json_number(o, "loss", &lo, path, err) ||
                  json_number(o, "val_loss", &vl, path, err);
        cJSON_Delete(o);
        if (bad || !isfinite(st)) {
            mx_errorf(err, "%s:%ld: each line needs a numeric \"step\" (and \"loss\")", path, lineno);
            goto out;
        }
        while (r->n_log && r->step[r->n_log - 1] >= st)
            r->n_log--;
        while (r->n_val && r->val_step[r->n_val - 1] >= st)
            r->n_val--;
        r->step[r->n_log] = st, r->loss[r->n_log++] = lo;
        if (isfinite(vl))
            r->val_step[r->n_val] = st, r->val_loss_log[r->n_val++] = vl;
    }
    if (r->n_log == 0) {
        mx_errorf(err, "%s: empty (no logged steps)", path);
        goto out;
    }
    rc = 0;
out:
    mx_free(text);
    return rc;
}

static int run_load(struct run_info *r, const char *dir, struct mx_error *err)
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
    if (run_load_summary(r, err) != 0 || run_load_log(r, err) != 0) {
        run_free(r);
        return -1;
    }
    return 0;
}

/* Labels: basenames, unless two runs share one (then the paths as given). */
static void run_labels(struct run_info *r, int n)
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
static void run_order(const struct run_info *r, int n, int *order)
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

static void fmt_fixed(char *b, size_t n, double v, int prec)
{
    if (isfinite(v))
        snprintf(b, n, "%.*f", prec, v);
    else
        snprintf(b, n, "n/a");
}

static void fmt_count(char *b, size_t n, double v)
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

static void fmt_duration(char *b, size_t n, double s)
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
struct table {
    int ncol, nrow;
    const char *const *head; /* (ncol) */
    const int *num;          /* (ncol) 1: right-aligned number */
    char **cell;             /* (nrow, ncol), each from strdup */
};

static void table_init(struct table *t, int ncol, int nrow, const char *const *head, const int *num)
{
    t->ncol = ncol, t->nrow = nrow, t->head = head, t->num = num;
    t->cell = mx_xcalloc((size_t)ncol * (size_t)(nrow ? nrow : 1) * sizeof(char *));
}

static void table_set(struct table *t, int row, int col, const char *s)
{
    char *d = strdup(s);
    if (!d)
        mx_fatal("out of memory copying a table cell");
    t->cell[(size_t)row * t->ncol + col] = d;
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < (size_t)t->ncol * t->nrow; i++)
        free(t->cell[i]);
    mx_free(t->cell);
}

static int utf8_width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void table_print(FILE *f, const struct table *t)
{
    int w[CSV_FIELDS_MAX];
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

static void compare_table(struct table *t, const struct run_info *runs, const int *order, int n)
{
    table_init(t, COMPARE_NCOL, n, compare_head, compare_num);
    for (int i = 0; i < n; i++) {
        const struct run_info *r = &runs[order[i]];
        char b[64];
        int c = 0;
        table_set(t, i, c++, r->label);
        table_set(t, i, c++, r->attn);
        table_set(t, i, c++, r->tokenizer);
        if (r->n_layer)
            snprintf(b, sizeof b, "L%d C%d H%d T%d", r->n_layer, r->n_embd, r->n_head, r->block_size);
        else
            snprintf(b, sizeof b, "n/a");
        table_set(t, i, c++, b);
        fmt_count(b, sizeof b, r->params);
        table_set(t, i, c++, b);
        fmt_fixed(b, sizeof b, r->steps, 0);
        table_set(t, i, c++, b);
        fmt_fixed(b, sizeof b, r->loss[r->n_log - 1], 4);
        table_set(t, i, c++, b);
        fmt_fixed(b, sizeof b, r->val_loss, 4);
        table_set(t, i, c++, b);
        fmt_fixed(b, sizeof b, r->bpc, 4);
        table_set(t, i, c++, b);
        fmt_fixed(b, sizeof b, r->bpb, 4);
        table_set(t, i, c++, b);
        fmt_fixed(b, sizeof b, r->tokens_per_s, 0);
        table_set(t, i, c++, b);
        fmt_duration(b, sizeof b, r->train_seconds);
        table_set(t, i, c++, b);
        fmt_fixed(b, sizeof b, r->peak_rss_mb, 1);
        table_set(t, i, c++, b);
        fmt_fixed(b, sizeof b, r->threads, 0);
        table_set(t, i, c++, b);
        MX_ASSERT(c == COMPARE_NCOL);
    }
}

/* Notes under a comparison: what the numbers are, and when they do not compare. */
static int compare_mixed(const struct run_info *runs, int n, const char *what)
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

static void csv_text(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\n\r")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
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
    const char *dirs[RUNS_MAX];
    struct mx_error err;
    int rc = args_parse(argc, argv, a, na, dirs, RUNS_MAX, &npos, compare_usage, &err);
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
    struct run_info *runs = mx_xcalloc((size_t)npos * sizeof *runs);
    int loaded = 0, status = 0;
    for (; loaded < npos; loaded++)
        if (run_load(&runs[loaded], dirs[loaded], &err) != 0) {
            fprintf(stderr, "mixlm compare: %s\n", err.msg);
            status = 1;
            goto out;
        }
    run_labels(runs, npos);
    int order[RUNS_MAX];
    run_order(runs, npos, order);
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < npos; i++) {
            const struct run_info *r = &runs[order[i]];
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
            const struct run_info *r = &runs[order[i]];
            csv_text(stdout, r->dir);
            fputc(',', stdout);
            csv_text(stdout, r->attn);
            fputc(',', stdout);
            csv_text(stdout, r->tokenizer);
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
        struct table t;
        compare_table(&t, runs, order, npos);
        table_print(stdout, &t);
        table_free(&t);
        if (compare_mixed(runs, npos, "tokenizer"))
            printf(
                "note: the runs use different tokenizers, so their losses (nats per token) do not compare; "
                "compare bits per byte (mixlm eval reports it for every run)\n");
        else if (compare_mixed(runs, npos, "vocab"))
            printf("note: the runs have different vocabularies; losses compare only per character or byte\n");
        if (compare_mixed(runs, npos, "threads"))
            printf("note: the runs used different thread counts, so tokens/s and training time do not "
                   "compare\n");
    }
out:
    for (int i = 0; i < loaded; i++)
        run_free(&runs[i]);
    mx_free(runs);
    return status;
}

/* ---- bench CSV ------------------------------------------------------------------------------------ */

struct bench_row {
    const char *attn, *spec, *note; /* point into the file's buffer; spec "" when absent */
    double context, forward_ms, train_ms, peak_mb, tokens_per_s, gflops;
    double core_train_ms; /* the attention core alone; NAN when absent */
    double batch, dim, heads, layers, threads, repeats;
    int file;   /* index of the CSV it came from */
    int series; /* index into bench.series */
};

struct bench_series {
    const char *attn;
    int file;
    char label[600];
    double *x, *t, *m; /* (n) context, train_ms, peak_mb, sorted by context */
    size_t n;
};

struct bench {
    int nfile;
    const char *path[BENCH_FILES_MAX];
    char *text[BENCH_FILES_MAX]; /* file buffers; the CSV fields are unescaped in place */
    struct bench_row *rows;
    size_t nrow, cap;
    struct bench_series *series;
    int nseries;
};

static void bench_free(struct bench *b)
{
    for (int i = 0; i < b->nfile; i++)
        mx_free(b->text[i]);
    for (int s = 0; s < b->nseries; s++) {
        mx_free(b->series[s].x);
        mx_free(b->series[s].t);
        mx_free(b->series[s].m);
    }
    free(b->series);
    free(b->rows);
    memset(b, 0, sizeof *b);
}

/* Split one CSV record (RFC 4180: quoted fields may hold commas, "" and newlines) in place.
 * *p moves past the record's line end; *line counts newlines. Returns the field count, 0 at the
 * end of the text, -1 with err on a malformed record. */
static int csv_record(char **p, char **field, int max, long *line, const char *path, struct mx_error *err)
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

static int bench_load(struct bench *b, const char *path, struct mx_error *err)
{
    if (b->nfile >= BENCH_FILES_MAX)
        return mx_errorf(err, "--bench: at most %d files", BENCH_FILES_MAX);
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
    int nh = csv_record(&p, head, CSV_FIELDS_MAX, &line, path, err);
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
        int nf = csv_record(&p, f, CSV_FIELDS_MAX, &line, path, err);
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
            b->rows = realloc(b->rows, b->cap * sizeof *b->rows);
            if (!b->rows)
                mx_fatal("out of memory reading %s", path);
        }
        struct bench_row *r = &b->rows[b->nrow];
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
static void bench_group(struct bench *b)
{
    b->series = calloc(b->nrow ? b->nrow : 1, sizeof *b->series);
    if (!b->series)
        mx_fatal("out of memory grouping bench rows");
    for (size_t i = 0; i < b->nrow; i++) {
        struct bench_row *r = &b->rows[i];
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
        struct bench_series *q = &b->series[s];
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
            const struct bench_row *r = &b->rows[i];
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
static int bench_row_cmp(const void *pa, const void *pb)
{
    const struct bench_row *a = *(const struct bench_row *const *)pa,
                           *b = *(const struct bench_row *const *)pb;
    if (a->series != b->series)
        return a->series < b->series ? -1 : 1;
    if (a->context != b->context)
        return a->context < b->context ? -1 : 1;
    return (a > b) - (a < b);
}

/* "dim 128" when every measured row agrees, "dim 64-128" otherwise; empty when the column is
 * absent (skipped rows are left out: their repeats are 0). */
static void bench_setting(char *out, size_t n, const struct bench *b, size_t off, const char *name)
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
    struct run_info *runs;
    int nrun;
    const int *order;
    struct bench *bench;
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

static void html_table(FILE *f, const struct table *t, const int *swatch, const char *cls)
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
        const struct run_info *r = &rp->runs[i];
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

static void html_bench_chart(FILE *f, const struct bench *b, int memory, const char *subtitle)
{
    struct svg_series *s = mx_xcalloc((size_t)(b->nseries ? b->nseries : 1) * sizeof *s);
    for (int k = 0; k < b->nseries; k++) {
        const struct bench_series *q = &b->series[k];
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

static const char html_css[] =
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
    const struct bench *b = rp->bench;
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    svg_escape(f, rp->title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n<h1>", html_css);
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
        struct table t;
        compare_table(&t, rp->runs, rp->order, rp->nrun);
        int sw[RUNS_MAX];
        for (int i = 0; i < rp->nrun; i++)
            sw[i] = rp->order[i];
        html_table(f, &t, sw, "compare");
        table_free(&t);
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
        if (compare_mixed(rp->runs, rp->nrun, "tokenizer"))
            fputs("<li><strong>The runs use different tokenizers:</strong> losses per token do not compare; "
                  "compare "
                  "bits per byte.</li>\n",
                  f);
        if (compare_mixed(rp->runs, rp->nrun, "threads"))
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
        bench_setting(part[0], sizeof part[0], b, offsetof(struct bench_row, batch), "batch");
        bench_setting(part[1], sizeof part[1], b, offsetof(struct bench_row, dim), "dim");
        bench_setting(part[2], sizeof part[2], b, offsetof(struct bench_row, heads), "heads");
        bench_setting(part[3], sizeof part[3], b, offsetof(struct bench_row, layers), "layers");
        bench_setting(part[4], sizeof part[4], b, offsetof(struct bench_row, threads), "threads");
        bench_setting(part[5], sizeof part[5], b, offsetof(struct bench_row, repeats), "repeats");
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

        struct table t;
        table_init(&t, (int)(sizeof bench_head / sizeof bench_head[0]), (int)b->nrow, bench_head, bench_num);
        int *sw = mx_xmalloc((b->nrow ? b->nrow : 1) * sizeof(int));
        const struct bench_row **sorted = mx_xmalloc((b->nrow ? b->nrow : 1) * sizeof *sorted);
        for (size_t i = 0; i < b->nrow; i++)
            sorted[i] = &b->rows[i];
        qsort(sorted, b->nrow, sizeof *sorted, bench_row_cmp);
        for (size_t i = 0; i < b->nrow; i++) {
            const struct bench_row *r = sorted[i];
            char v[64];
            int c = 0;
            sw[i] = r->series;
            table_set(&t, (int)i, c++, b->series[r->series].label);
            table_set(&t, (int)i, c++, r->spec[0] ? r->spec : r->attn);
            fmt_fixed(v, sizeof v, r->context, 0);
            table_set(&t, (int)i, c++, v);
            fmt_fixed(v, sizeof v, r->forward_ms, 1);
            table_set(&t, (int)i, c++, v);
            fmt_fixed(v, sizeof v, r->train_ms, 1);
            table_set(&t, (int)i, c++, v);
            fmt_fixed(v, sizeof v, r->core_train_ms, 1);
            table_set(&t, (int)i, c++, v);
            fmt_fixed(v, sizeof v, r->peak_mb, 1);
            table_set(&t, (int)i, c++, v);
            fmt_fixed(v, sizeof v, r->tokens_per_s, 0);
            table_set(&t, (int)i, c++, v);
            fmt_fixed(v, sizeof v, r->gflops, 2);
            table_set(&t, (int)i, c++, v);
            table_set(&t, (int)i, c++, r->note[0] ? r->note : isfinite(r->train_ms) ? "" : "not measured");
        }
        html_table(f, &t, sw, "bench");
        table_free(&t);
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

static const char *report_usage =
    "usage: mixlm report RUN_DIR... [--bench FILE.csv ...] [--title TEXT] -o report.html\n"
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
    char out[1024] = "", title[512] = "mixlm report";
    struct arg_list *benches = mx_xcalloc(sizeof *benches);
    struct arg a[] = {
        {"--out", ARG_STR, out, sizeof out, 0, 0, "the HTML file to write (also -o FILE)", 0},
        {"--bench", ARG_LIST, benches, 0, 0, 0, "CSV from `mixlm bench --csv-out` (repeatable)", 0},
        {"--title", ARG_STR, title, sizeof title, 0, 0, "page title (default \"mixlm report\")", 0},
    };
    int na = (int)(sizeof a / sizeof a[0]), npos, status = 2;
    /* args_parse knows only long flags: -o becomes --out. */
    char **av = mx_xcalloc((size_t)(argc + 1) * sizeof *av);
    for (int i = 0; i < argc; i++)
        av[i] = !strcmp(argv[i], "-o") && i > 0 ? "--out" : argv[i];
    const char *dirs[RUNS_MAX];
    struct mx_error err;
    struct run_info *runs = NULL;
    struct bench b;
    memset(&b, 0, sizeof b);
    int loaded = 0;
    int rc = args_parse(argc, av, a, na, dirs, RUNS_MAX, &npos, report_usage, &err);
    if (rc == 1) {
        status = 0;
        goto out;
    }
    if (rc != 0) {
        fprintf(stderr, "mixlm report: %s\n", err.msg);
        goto out;
    }
    if (!out[0]) {
        fprintf(stderr, "mixlm report: give the output file with -o report.html\n");
        goto out;
    }
    if (npos == 0 && benches->n == 0) {
        fprintf(stderr, "mixlm report: give at least one run directory or --bench CSV, e.g. "
                        "mixlm report runs/dense runs/window --bench bench.csv -o report.html\n");
        goto out;
    }
    status = 1;
    runs = mx_xcalloc((size_t)(npos ? npos : 1) * sizeof *runs);
    for (; loaded < npos; loaded++)
        if (run_load(&runs[loaded], dirs[loaded], &err) != 0) {
            fprintf(stderr, "mixlm report: %s\n", err.msg);
            goto out;
        }
    run_labels(runs, npos);
    for (int i = 0; i < benches->n; i++)
        if (bench_load(&b, benches->v[i], &err) != 0) {
            fprintf(stderr, "mixlm report: %s\n", err.msg);
            goto out;
        }
    bench_group(&b);
    int order[RUNS_MAX];
    run_order(runs, npos, order);
    struct report rp = {title, runs, npos, order, &b};
    if (mx_write_atomic(out, write_report, &rp, &err) != 0) {
        fprintf(stderr, "mixlm report: %s: %s\n", out, err.msg);
        goto out;
    }
    printf("wrote %s (%d run%s, %zu bench row%s)\n", out, npos, npos == 1 ? "" : "s", b.nrow,
           b.nrow == 1 ? "" : "s");
    status = 0;
out:
    for (int i = 0; i < loaded; i++)
        run_free(&runs[i]);
    mx_free(runs);
    bench_free(&b);
    mx_free(av);
    mx_free(benches);
    return status;
}
