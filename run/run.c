/* run.c — the run directory (see run.h): file names, stored options, log.jsonl and
 * summary.json, each written and read here with cJSON.
 * Not the loop that produces them (train/) and not the tables made from them (report/). */
#include "run/run.h"
#include "nn/isa.h"
#include "nn/nn.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

void run_paths_init(struct run_paths *p, const char *dir)
{
    snprintf(p->ckpt, sizeof p->ckpt, "%.511s/%s", dir, MX_RUN_CKPT);
    snprintf(p->log, sizeof p->log, "%.511s/%s", dir, MX_RUN_LOG);
    snprintf(p->summary, sizeof p->summary, "%.511s/%s", dir, MX_RUN_SUMMARY);
    snprintf(p->tokens, sizeof p->tokens, "%.511s/%s", dir, MX_RUN_TOKENS);
}

int run_remove_stale_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp."), *digits = t ? t + 5 : NULL;
        while (t && (t = strstr(t + 1, ".tmp.")))
            digits = t + 5; /* the last ".tmp." */
        if (!digits || !*digits || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 9)
            continue;
        long pid = atol(digits);
        if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive, or not ours to judge (EPERM: another user's live process) */
        char p[MX_RUN_PATH_MAX + 256];
        snprintf(p, sizeof p, "%.511s/%s", dir, e->d_name);
        removed += unlink(p) == 0;
    }
    closedir(d);
    return removed;
}

/* ---- stored options ---------------------------------------------------------------------- */

void run_opts_default(struct mx_train_opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->tokenizer, sizeof o->tokenizer, "char");
    snprintf(o->out, sizeof o->out, "runs/default");
    o->model.n_layer = 4;
    o->model.n_head = 4;
    o->model.n_embd = 128;
    o->model.block_size = 64;
    o->model.bias = 0;
    o->model.seed = 1337;
    for (int l = 0; l < MX_MAX_LAYERS; l++)
        snprintf(o->model.attn[l], sizeof o->model.attn[l], "dense");
    o->steps = 2000;
    o->batch = 12;
    o->grad_accum = 1;
    o->lr = 1e-3;
    o->min_lr = 1e-4;
    o->warmup = 100;
    o->beta1 = 0.9;
    o->beta2 = 0.99;
    o->eps = 1e-8;
    o->weight_decay = 0.1;
    o->grad_clip = 1.0;
    o->eval_every = 250;
    o->eval_batches = 20;
    o->log_every = 10;
    o->ckpt_every = 500;
    o->val_frac = 0.1;
    o->threads = 0;
    o->check_sync = 100;
}

cJSON *run_opts_to_json(const struct mx_train_opts *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", o->data);
    cJSON_AddStringToObject(j, "tokenizer", o->tokenizer);
    cJSON_AddNumberToObject(j, "steps", (double)o->steps);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "grad_accum", o->grad_accum);
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "min_lr", o->min_lr);
    cJSON_AddNumberToObject(j, "warmup", (double)o->warmup);
    cJSON_AddNumberToObject(j, "beta1", o->beta1);
    cJSON_AddNumberToObject(j, "beta2", o->beta2);
    cJSON_AddNumberToObject(j, "eps", o->eps);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "grad_clip", o->grad_clip);
    cJSON_AddNumberToObject(j, "eval_every", (double)o->eval_every);
    cJSON_AddNumberToObject(j, "eval_batches", o->eval_batches);
    cJSON_AddNumberToObject(j, "log_every", (double)o->log_every);
    cJSON_AddNumberToObject(j, "ckpt_every", (double)o->ckpt_every);
    cJSON_AddNumberToObject(j, "val_frac", o->val_frac);
    cJSON_AddNumberToObject(j, "threads", o->threads);
    if (o->align > 0)
        cJSON_AddNumberToObject(j, "align", (double)o->align);
    if (o->loss_on == MX_LOSS_RECALL)
        cJSON_AddStringToObject(j, "loss_on", "recall");
    if (o->sched_from > 0) {
        cJSON_AddNumberToObject(j, "sched_from", (double)o->sched_from);
        cJSON_AddNumberToObject(j, "sched_lr", o->sched_lr);
    }
    if (o->skip_nonfinite > 0)
        cJSON_AddNumberToObject(j, "skip_nonfinite", (double)o->skip_nonfinite);
    return j;
}

/* WHY ranges before the casts: a double outside a long's or an int's range makes the cast
 * undefined, and the values come from a file. The limits are the CLI's. */
static int num(const cJSON *j, const char *k, double lo, double hi, int integer, double *out, struct mx_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    if (!cJSON_IsNumber(v))
        return mx_errorf(err, "stored training option '%s' is missing", k);
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi) || (integer && d != floor(d)))
        return mx_errorf(err, "stored training option '%s' is %g; it must be %s in [%g, %g]: the checkpoint is "
                              "damaged or edited; use another checkpoint",
                         k, d, integer ? "an integer" : "a number", lo, hi);
    *out = d;
    return 0;
}

int run_opts_from_json(struct mx_train_opts *o, const cJSON *j, struct mx_error *err)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "data");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "tokenizer");
    if (!cJSON_IsString(d) || !cJSON_IsString(t))
        return mx_errorf(err, "stored training options lack 'data' or 'tokenizer'");
    snprintf(o->data, sizeof o->data, "%s", d->valuestring);
    snprintf(o->tokenizer, sizeof o->tokenizer, "%s", t->valuestring);
    double v[17];
    static const struct {
        const char *key;
        double lo, hi;
        int integer;
    } keys[17] = {
        {"steps", 1, 1099511627776.0, 1},      {"batch", 1, 1 << 20, 1},        {"grad_accum", 1, 1 << 16, 1},
        {"lr", 0, 10, 0},                      {"min_lr", 0, 10, 0},            {"warmup", 0, 1099511627776.0, 1},
        {"beta1", 0, 0.999999, 0},             {"beta2", 0, 0.999999, 0},       {"eps", 0, 1, 0},
        {"weight_decay", 0, 10, 0},            {"grad_clip", 0, 1e9, 0},        {"eval_every", 0, 1099511627776.0, 1},
        {"eval_batches", 1, 1 << 20, 1},       {"log_every", 1, 1099511627776.0, 1},
        {"ckpt_every", 0, 1099511627776.0, 1}, {"val_frac", 0.0001, 0.9, 0},    {"threads", 0, 1024, 1},
    };
    for (int i = 0; i < 17; i++)
        if (num(j, keys[i].key, keys[i].lo, keys[i].hi, keys[i].integer, &v[i], err) != 0)
            return -1;
    o->steps = (long)v[0];
    o->batch = (int)v[1];
    o->grad_accum = (int)v[2];
    o->lr = v[3];
    o->min_lr = v[4];
    o->warmup = (long)v[5];
    o->beta1 = v[6];
    o->beta2 = v[7];
    o->eps = v[8];
    o->weight_decay = v[9];
    o->grad_clip = v[10];
    o->eval_every = (long)v[11];
    o->eval_batches = (int)v[12];
    o->log_every = (long)v[13];
    o->ckpt_every = (long)v[14];
    o->val_frac = v[15];
    o->threads = (int)v[16];
    o->sched_from = 0;
    o->sched_lr = 0;
    o->align = 0;
    if (cJSON_GetObjectItemCaseSensitive(j, "align")) {
        double al;
        if (num(j, "align", 1, 1 << 23, 1, &al, err) != 0)
            return -1;
        o->align = (long)al;
    }
    o->loss_on = MX_LOSS_ALL;
    const cJSON *lo = cJSON_GetObjectItemCaseSensitive(j, "loss_on");
    if (lo) {
        if (!cJSON_IsString(lo) || (strcmp(lo->valuestring, "recall") != 0 && strcmp(lo->valuestring, "all") != 0))
            return mx_errorf(err, "stored option loss_on must be \"all\" or \"recall\"; the checkpoint metadata was "
                                  "edited or damaged");
        o->loss_on = strcmp(lo->valuestring, "recall") == 0 ? MX_LOSS_RECALL : MX_LOSS_ALL;
    }
    if (cJSON_GetObjectItemCaseSensitive(j, "sched_from")) {
        double sf, sl;
        if (num(j, "sched_from", 1, o->steps - 1, 1, &sf, err) != 0 || num(j, "sched_lr", 0, 10, 0, &sl, err) != 0)
            return -1;
        o->sched_from = (long)sf;
        o->sched_lr = sl;
    }
    o->skip_nonfinite = 0;
    if (cJSON_GetObjectItemCaseSensitive(j, "skip_nonfinite")) {
        double sn;
        if (num(j, "skip_nonfinite", 0, 1099511627776.0, 1, &sn, err) != 0)
            return -1;
        o->skip_nonfinite = (long)sn;
    }
    return 0;
}

int run_load_opts(const char *dir, struct mx_train_opts *o, struct mx_error *err)
{
    struct run_paths p;
    run_paths_init(&p, dir);
    if (!mx_file_exists(p.ckpt))
        return mx_errorf(err, "--resume %s: no checkpoint at '%s'", dir, p.ckpt);
    struct mx_ckpt c;
    if (ckpt_open(&c, p.ckpt, err) != 0)
        return -1;
    int rc = -1;
    const cJSON *oj = c.train ? cJSON_GetObjectItemCaseSensitive(c.train, "opts") : NULL;
    if (!oj) {
        mx_errorf(err, "checkpoint '%s' holds no training options; it cannot be resumed", p.ckpt);
        goto out;
    }
    if (run_opts_from_json(o, oj, err) != 0 || model_config_from_json(&o->model, c.config, err) != 0)
        goto out;
    snprintf(o->out, sizeof o->out, "%s", dir);
    rc = 0;
out:
    ckpt_close(&c);
    return rc;
}

int run_state_from_json(const cJSON *train, struct run_state *s, struct mx_error *err)
{
    const char *fix = "the checkpoint is damaged or edited; use another checkpoint";
    memset(s, 0, sizeof *s);
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(train, "opts");
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(opts, "steps");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(train, "step");
    const cJSON *rng = cJSON_GetObjectItemCaseSensitive(train, "rng");
    const cJSON *el = cJSON_GetObjectItemCaseSensitive(train, "elapsed_s");
    if (!cJSON_IsNumber(total) || !(total->valuedouble >= 1 && total->valuedouble <= 1099511627776.0))
        return mx_errorf(err, "training state: stored option 'steps' is missing or not in [1, 2^40]; %s", fix);
    if (!cJSON_IsNumber(st))
        return mx_errorf(err, "training state: field 'step' is missing or not a number; %s", fix);
    double d = st->valuedouble;
    if (!(d >= 0 && d <= total->valuedouble) || d != floor(d))
        return mx_errorf(err, "training state: field 'step' is %g; it must be an integer in [0, %.0f] (the run's "
                              "total steps): %s",
                         d, total->valuedouble, fix);
    s->step = (long)d;
    if (!cJSON_IsArray(rng) || cJSON_GetArraySize(rng) != 4)
        return mx_errorf(err, "training state: field 'rng' (the data position) must be 4 strings of 16 hex digits; %s",
                         fix);
    uint64_t any = 0;
    for (int i = 0; i < 4; i++) {
        const char *h = cJSON_GetStringValue(cJSON_GetArrayItem(rng, i));
        char *end = NULL;
        if (h && strlen(h) == 16 && strspn(h, "0123456789abcdefABCDEF") == 16)
            s->rng[i] = strtoull(h, &end, 16);
        if (!end || *end)
            return mx_errorf(err, "training state: field 'rng[%d]' (the data position) is '%s'; it must be 16 hex "
                                  "digits: %s",
                             i, h ? h : "(not a string)", fix);
        any |= s->rng[i];
    }
    if (!any) /* xoshiro's one fixed point: it would draw the same batch forever */
        return mx_errorf(err, "training state: field 'rng' (the data position) is all zero, which no run "
                              "writes: %s",
                         fix);
    if (el) {
        if (!cJSON_IsNumber(el) || !(el->valuedouble >= 0 && el->valuedouble <= 1e12))
            return mx_errorf(err, "training state: field 'elapsed_s' must be a number in [0, 1e12]: %s", fix);
        s->elapsed = el->valuedouble;
    }
    const cJSON *sk = cJSON_GetObjectItemCaseSensitive(train, "skipped_nonfinite");
    if (sk) {
        if (!cJSON_IsNumber(sk) || !(sk->valuedouble >= 0 && sk->valuedouble <= (double)s->step) ||
            sk->valuedouble != floor(sk->valuedouble))
            return mx_errorf(err, "training state: field 'skipped_nonfinite' must be an integer in [0, %ld] (the "
                                  "steps done): %s",
                             s->step, fix);
        s->skipped = (long)sk->valuedouble;
    }
    return 0;
}

/* ---- log.jsonl --------------------------------------------------------------------------- */

FILE *run_log_open(const char *dir, struct mx_error *err)
{
    struct run_paths p;
    run_paths_init(&p, dir);
    FILE *f = fopen(p.log, "a");
    if (!f)
        mx_errorf(err, "cannot open '%s' for appending: %s; training writes into its run directory: make it "
                       "writable (or copy the run to a writable place and resume it there)",
                  p.log, strerror(errno));
    return f;
}

/* WHY raw members: the numbers keep the fixed precisions the log has always had (%.6f loss,
 * %.6g lr, ...), which cJSON's own %.17g would change; cJSON still builds the object. */
static void add_raw(cJSON *o, const char *key, const char *fmt, double v)
{
    char b[64];
    snprintf(b, sizeof b, isfinite(v) ? fmt : "null", v); /* "nan" is not JSON */
    cJSON_AddRawToObject(o, key, b);
}

int run_log_append(FILE *f, const struct run_log_line *l, struct mx_error *err)
{
    cJSON *o = cJSON_CreateObject();
    char b[32];
    snprintf(b, sizeof b, "%ld", l->step);
    cJSON_AddRawToObject(o, "step", b);
    add_raw(o, "loss", "%.6f", l->loss);
    add_raw(o, "lr", "%.6g", l->lr);
    add_raw(o, "grad_norm", "%.4f", l->grad_norm);
    add_raw(o, "ms_per_step", "%.3f", l->ms_per_step);
    add_raw(o, "tokens_per_s", "%.1f", l->tokens_per_s);
    add_raw(o, "elapsed_s", "%.3f", l->elapsed_s);
    if (!isnan(l->val_loss))
        add_raw(o, "val_loss", "%.6f", l->val_loss);
    if (l->skipped)
        cJSON_AddStringToObject(o, "skipped_nonfinite", l->skipped);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    errno = 0;
    int ok = s && fprintf(f, "%s\n", s) >= 0 && fflush(f) == 0;
    int e = errno;
    cJSON_free(s);
    if (!ok)
        return mx_errorf(err, "cannot append step %ld to %s: %s; free space on that file system and continue with "
                              "--resume (the last checkpoint is intact)",
                         l->step, MX_RUN_LOG, e ? strerror(e) : "write error");
    return 0;
}

struct log_keep {
    const char *buf;
    size_t len;
    long step;
};

static int write_kept_lines(FILE *f, void *ctx, struct mx_error *err)
{
    const struct log_keep *k = ctx;
    (void)err;
    const char *line = k->buf;
    while (line < k->buf + k->len) {
        const char *nl = memchr(line, '\n', (size_t)(k->buf + k->len - line));
        size_t n = nl ? (size_t)(nl - line + 1) : (size_t)(k->buf + k->len - line);
        cJSON *j = cJSON_ParseWithLength(line, n);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "step");
        int keep = cJSON_IsNumber(s) && s->valuedouble <= (double)k->step;
        cJSON_Delete(j);
        if (keep && fwrite(line, 1, n, f) != n)
            return -1;
        line += n;
    }
    return 0;
}

/* WHY atomically (temp, rename) and not truncate-then-rewrite: a resume killed between the
 * truncation and the rewrite lost every logged step (found by tests/e2e/test_kill_resume.sh). */
void run_log_trim(const char *dir, long step)
{
    struct run_paths p;
    run_paths_init(&p, dir);
    size_t len;
    struct mx_error e;
    char *buf = mx_read_file(p.log, &len, &e);
    if (!buf)
        return;
    struct log_keep k = {.buf = buf, .len = len, .step = step};
    mx_write_atomic(p.log, write_kept_lines, &k, &e);
    mx_free(buf);
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

void run_history_free(struct run_history *h)
{
    mx_free(h->step);
    mx_free(h->loss);
    mx_free(h->val_step);
    mx_free(h->val_loss);
    memset(h, 0, sizeof *h);
}

int run_log_read(const char *dir, struct run_history *h, struct mx_error *err)
{
    struct run_paths p;
    run_paths_init(&p, dir);
    const char *path = p.log;
    memset(h, 0, sizeof *h);
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
    h->step = mx_xmalloc(cap * sizeof(double));
    h->loss = mx_xmalloc(cap * sizeof(double));
    h->val_step = mx_xmalloc(cap * sizeof(double));
    h->val_loss = mx_xmalloc(cap * sizeof(double));
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
        while (h->n_log && h->step[h->n_log - 1] >= st)
            h->n_log--;
        while (h->n_val && h->val_step[h->n_val - 1] >= st)
            h->n_val--;
        if (isfinite(lo))
            h->step[h->n_log] = st, h->loss[h->n_log++] = lo;
        if (isfinite(vl))
            h->val_step[h->n_val] = st, h->val_loss[h->n_val++] = vl;
    }
    if (h->n_log == 0) {
        mx_errorf(err, "%s: empty (no logged steps)", path);
        goto out;
    }
    rc = 0;
out:
    mx_free(text);
    if (rc != 0)
        run_history_free(h);
    return rc;
}

/* ---- summary.json ------------------------------------------------------------------------ */

static int write_text(FILE *f, void *ctx, struct mx_error *err)
{
    (void)err;
    return fprintf(f, "%s\n", (const char *)ctx) >= 0 ? 0 : -1;
}

int run_summary_write(const char *dir, const struct mx_config *cfg, const struct run_summary *s,
                      struct mx_error *err)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "config", model_config_to_json(cfg));
    cJSON_AddStringToObject(j, "attn", cfg->attn[0]);
    cJSON_AddStringToObject(j, "tokenizer", s->tokenizer);
    cJSON_AddNumberToObject(j, "params", s->params);
    cJSON_AddNumberToObject(j, "steps", s->steps);
    cJSON_AddNumberToObject(j, "val_loss", s->val_loss);
    cJSON_AddNumberToObject(j, "train_seconds", s->train_seconds);
    cJSON_AddNumberToObject(j, "tokens_per_s", s->tokens_per_s);
    cJSON_AddNumberToObject(j, "ms_per_step_median", s->ms_per_step_median);
    cJSON_AddNumberToObject(j, "gflop_per_step", s->gflop_per_step);
    cJSON_AddNumberToObject(j, "peak_rss_mb", s->peak_rss_mb);
    cJSON_AddNumberToObject(j, "threads", s->threads);
    cJSON_AddNumberToObject(j, "skipped_nonfinite", s->skipped_nonfinite);
    cJSON_AddNumberToObject(j, "ranks", s->ranks);
    cJSON_AddNumberToObject(j, "comm_wait_ms_per_step", s->comm_wait_ms_per_step);
    cJSON_AddNumberToObject(j, "host_steal_pct", s->host_steal_pct >= 0 ? s->host_steal_pct : NAN);
    cJSON_AddNumberToObject(j, "host_other_pct", s->host_other_pct >= 0 ? s->host_other_pct : NAN);
    if (s->profile_steps > 0) {
        cJSON *p = cJSON_AddObjectToObject(j, "profile");
        cJSON_AddNumberToObject(p, "steps", s->profile_steps);
        cJSON *ms = cJSON_AddObjectToObject(p, "ms_per_step");
        for (int c = 0; c < MX_PROF_N; c++)
            cJSON_AddNumberToObject(ms, mx_prof_name((enum mx_prof_cat)c), s->profile_ms[c]);
        cJSON_AddNumberToObject(p, "matmul_gflops", s->profile_matmul_gflops);
    }
    cJSON_AddStringToObject(j, "cpu", mx_cpu_name());
    cJSON_AddStringToObject(j, "isa", mx_isa_name()); /* the SIMD level the kernels ran at */
    char blas[192];
    cJSON_AddStringToObject(j, "blas", mx_blas_desc(blas, sizeof blas));
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    struct run_paths p;
    run_paths_init(&p, dir);
    int rc = mx_write_atomic(p.summary, write_text, text, err);
    cJSON_free(text);
    return rc;
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

int run_summary_read(const char *dir, struct run_summary *r, struct mx_error *err)
{
    struct run_paths p;
    run_paths_init(&p, dir);
    const char *path = p.summary;
    memset(r, 0, sizeof *r);
    if (!mx_file_exists(path))
        return mx_errorf(err,
                         "%s: no such file; summary.json is written when `mixlm train` finishes "
                         "(is the run still training, or was it stopped before the end?)",
                         path);
    size_t len;
    char *text = mx_read_file(path, &len, err);
    if (!text)
        return -1;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (!j)
        mx_errorf(err, "%s: not valid JSON (error near byte %ld); the file is corrupt or was cut short", path,
                  end ? (long)(end - text) : 0L);
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
    if (json_number(j, "params", &r->params, path, err) || json_number(j, "steps", &r->steps, path, err) ||
        json_number(j, "val_loss", &r->val_loss, path, err) ||
        json_number(j, "train_seconds", &r->train_seconds, path, err) ||
        json_number(j, "tokens_per_s", &r->tokens_per_s, path, err) ||
        json_number(j, "ms_per_step_median", &r->ms_per_step_median, path, err) ||
        json_number(j, "gflop_per_step", &r->gflop_per_step, path, err) ||
        json_number(j, "peak_rss_mb", &r->peak_rss_mb, path, err) ||
        json_number(j, "threads", &r->threads, path, err) ||
        json_number(j, "skipped_nonfinite", &r->skipped_nonfinite, path, err) ||
        json_number(j, "ranks", &r->ranks, path, err) ||
        json_number(j, "comm_wait_ms_per_step", &r->comm_wait_ms_per_step, path, err) ||
        json_number(j, "host_steal_pct", &r->host_steal_pct, path, err) ||
        json_number(j, "host_other_pct", &r->host_other_pct, path, err) ||
        json_number(j, "bits_per_char", &r->bits_per_char, path, err) ||
        json_number(j, "bits_per_byte", &r->bits_per_byte, path, err))
        goto out;
    rc = 0;
out:
    cJSON_Delete(j);
    return rc;
}
