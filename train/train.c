/* train.c — the training loop: batches, forward/backward with gradient accumulation, global
 * norm clipping, AdamW, nanoGPT's LR schedule, periodic evaluation on fixed validation
 * batches, log.jsonl, atomic checkpoints (periodic, final, and on SIGINT/SIGTERM) and exact
 * resume (parameters, moments, step and the data RNG are all in the checkpoint). Data-parallel
 * over ranks (train/dist.h): every rank draws every micro-batch of a step and runs its own
 * share, rank 0 alone writes the run directory.
 * Not argument parsing (cli/train.c) and not full-pass evaluation (infer/). */
#include "train/train.h"

#include "nn/isa.h"
#include "nn/nn.h"
#include "train/dist.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Kept under the train_ names for their callers (tests); the options live in run/. */
void train_opts_default(struct mx_train_opts *o)
{
    run_opts_default(o);
}

cJSON *train_opts_to_json(const struct mx_train_opts *o)
{
    return run_opts_to_json(o);
}

double train_lr_at(const struct mx_train_opts *o, long it)
{
    if (o->sched_from > 0 && it >= o->sched_from) { /* after an --extend-to: no jump at sched_from */
        if (it >= o->steps)
            return o->min_lr;
        double ratio = (double)(it - o->sched_from) / (double)(o->steps - o->sched_from);
        return o->min_lr + 0.5 * (1.0 + cos(M_PI * ratio)) * (o->sched_lr - o->min_lr);
    }
    if (it < o->warmup)
        return o->lr * (double)(it + 1) / (double)(o->warmup + 1);
    if (it >= o->steps || o->steps <= o->warmup)
        return o->min_lr;
    double ratio = (double)(it - o->warmup) / (double)(o->steps - o->warmup);
    double coeff = 0.5 * (1.0 + cos(M_PI * ratio));
    return o->min_lr + coeff * (o->lr - o->min_lr);
}

void adamw_update(const struct mx_model *m, float *adam_m, float *adam_v, double lr, double beta1,
                  double beta2, double eps, double weight_decay, float grad_scale, long t)
{
    struct nn_adamw_hp hp = {
        .lr = (float)lr,
        .beta1 = (float)beta1,
        .beta2 = (float)beta2,
        .eps = (float)eps,
        .bc1 = (float)(1.0 - pow(beta1, (double)t)),
        .bc2 = (float)(1.0 - pow(beta2, (double)t)),
        .grad_scale = grad_scale,
    };
    /* One parallel region for all tensors: a region per tensor costs a thread wake-up each
     * (tens of microseconds with passive waiting), which was most of the optimizer's time.
     * nn_adamw work-shares each tensor among the region's threads (omp for nowait). */
#pragma omp parallel firstprivate(hp)
    for (int k = 0; k < m->n_tensors; k++) {
        const struct mx_param *tp = &m->tensors[k];
        if (!tp->trainable)
            continue;
        hp.weight_decay = tp->decay ? (float)weight_decay : 0.0f;
        nn_adamw(m->params + tp->offset, adam_m + tp->offset, adam_v + tp->offset, m->grads + tp->offset,
                 tp->numel, &hp);
    }
}

/* Fixed chunking (not per thread) so the sum is the same for any thread count. */
#define GN_CHUNKS 64

double grad_norm(const struct mx_model *m)
{
    double part[GN_CHUNKS];
    size_t n = m->n_params, per = (n + GN_CHUNKS - 1) / GN_CHUNKS;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < GN_CHUNKS; c++) {
        size_t a = (size_t)c * per, b = a + per < n ? a + per : n;
        double s = 0;
        for (size_t i = a; i < b; i++)
            s += (double)m->grads[i] * m->grads[i];
        part[c] = s;
    }
    double s = 0;
    for (int c = 0; c < GN_CHUNKS; c++)
        s += part[c];
    return sqrt(s);
}

const char *train_first_nonfinite(const struct mx_model *m)
{
    for (int k = 0; k < m->n_tensors; k++) {
        const struct mx_param *t = &m->tensors[k];
        for (size_t i = 0; i < t->numel; i++)
            if (!isfinite(m->grads[t->offset + i]) || !isfinite(m->params[t->offset + i]))
                return t->name;
    }
    return NULL;
}

/* ---- the run ------------------------------------------------------------------------------ */

static volatile sig_atomic_t g_stop_signal; /* the one global: a signal handler needs it */

static void on_signal(int sig)
{
    g_stop_signal = sig;
    signal(sig, SIG_DFL); /* a second Ctrl-C kills at once */
}

struct run {
    struct mx_train_opts *o;
    struct mx_model m;
    struct tokenizer *tok;
    struct mx_tokfile data;
    size_t train_end;
    float *adam_m, *adam_v;
    int32_t *x, *y;
    uint32_t *cp_of;   /* --loss-on recall: code point of each token id (tok_code_point) */
    struct mx_rng rng; /* batch sampling: the data position */
    long step;         /* steps completed */
    double elapsed;    /* training seconds over all sessions */
    long skipped;      /* steps of the run skipped as non-finite (--skip-nonfinite) */
    const char *skip_tensor; /* the first non-finite tensor of the step just skipped */
    struct run_paths path;
    struct dist *d; /* the ranks (size 1: this process alone) */
    double *parts;  /* (max(grad_accum, eval_batches)) per-micro-batch losses, summed over ranks */
};

static cJSON *train_state_json(const struct run *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "step", (double)r->step);
    cJSON *rng = cJSON_AddArrayToObject(j, "rng");
    for (int i = 0; i < 4; i++) {
        char h[24];
        snprintf(h, sizeof h, "%016" PRIx64, r->rng.s[i]);
        cJSON_AddItemToArray(rng, cJSON_CreateString(h));
    }
    cJSON_AddNumberToObject(j, "elapsed_s", r->elapsed);
    if (r->skipped > 0)
        cJSON_AddNumberToObject(j, "skipped_nonfinite", (double)r->skipped);
    cJSON_AddStringToObject(j, "tokens", MX_RUN_TOKENS);
    cJSON_AddItemToObject(j, "opts", train_opts_to_json(r->o));
    return j;
}

static int save(struct run *r, struct mx_error *err)
{
    if (r->d->rank != 0) /* rank 0 alone writes; every rank holds the same state */
        return 0;
    cJSON *tj = tok_to_json(r->tok), *st = train_state_json(r);
    struct mx_ckpt_extra x = {.tokenizer = tj, .train = st, .adam_m = r->adam_m, .adam_v = r->adam_v};
    int rc = ckpt_write(r->path.ckpt, &r->m, &x, err);
    cJSON_Delete(tj);
    cJSON_Delete(st);
    if (rc != 0 && mx_file_exists(r->path.ckpt))
        mx_error_wrap(err, "checkpoint at step %ld not saved (the last saved one is intact; continue from it with "
                           "`mixlm train --resume %s` once the problem is fixed)",
                      r->step, r->o->out);
    else if (rc != 0)
        mx_error_wrap(err, "checkpoint at step %ld not saved (none was saved before: start the run again once the "
                           "problem is fixed)",
                      r->step);
    return rc;
}

static double evaluate(struct run *r, struct mx_error *err, int *ok)
{
    const struct mx_train_opts *o = r->o;
    struct mx_rng er;
    mx_rng_seed(&er, 0xE7A1u); /* the same validation batches at every evaluation */
    double s = 0;
    *ok = 0;
    /* Sharded: batch b on rank b mod size; every rank draws every batch (the same ones). */
    for (int b = 0; b < o->eval_batches; b++) {
        if (data_batch_aligned(&r->data, r->train_end, r->data.count, o->batch, o->model.block_size, o->align,
                               &er, r->x, r->y, err) != 0) {
            mx_error_wrap(err, "validation split");
            return 0;
        }
        if (r->cp_of)
            data_recall_mask_targets(r->cp_of, r->x, r->y, o->batch, o->model.block_size);
        /* r->step updates are done, the last at step index r->step-1: evaluate with that
         * step's draw of step-dependent randomness (Performer features), as infer does. */
        r->parts[b] = b % r->d->size != r->d->rank ? 0.0
                      : model_forward(&r->m, r->x, r->y, o->batch, o->model.block_size,
                                      r->step > 0 ? r->step - 1 : 0, 0);
    }
    dist_sum(r->d, r->parts, o->eval_batches); /* one non-zero term each: exact */
    for (int b = 0; b < o->eval_batches; b++) /* in batch order: the same sum for any rank count */
        s += r->parts[b];
    *ok = 1;
    return s / o->eval_batches;
}

/* --loss-on recall: the code point of every token, and a refusal when none is a recall key or
 * value (the loss would be empty). */
static int setup_recall_loss(struct run *r, struct mx_error *err)
{
    int n_kv;
    r->cp_of = data_recall_token_table(r->tok, r->m.cfg.vocab_size, &n_kv);
    if (n_kv == 0)
        return mx_errorf(err, "--loss-on recall: the %s tokenizer of run '%s' has no token that is a recall key or "
                              "value; train on `mixlm data recall` output with --tokenizer char",
                         tok_kind(r->tok), r->o->out);
    return 0;
}

static int setup_new(struct run *r, struct mx_error *err)
{
    struct mx_train_opts *o = r->o;
    if (mx_file_exists(r->path.ckpt))
        return mx_errorf(err, "run directory '%s' already holds a checkpoint; continue it with "
                              "`mixlm train --resume %s` or choose another --out", o->out, o->out);
    size_t len;
    char *text = mx_read_file(o->data, &len, err);
    if (!text)
        return mx_error_wrap(err, "--data");
    if (len == 0) {
        mx_free(text);
        return mx_errorf(err, "--data '%s' is empty; give a text file with some content", o->data);
    }
    int rc = tok_create_from_flag(&r->tok, o->tokenizer, o->data, text, len, o->out, err);
    mx_free(text);
    if (rc != 0)
        return -1;
    if (tok_save_files(r->tok, o->out, err) != 0)
        return -1;
    if (data_prepare_text(o->data, r->tok, r->path.tokens, err) != 0)
        return -1;
    o->model.vocab_size = tok_vocab_size(r->tok);
    if (model_create(&r->m, &o->model, err) != 0)
        return -1;
    model_init_params(&r->m);
    struct mx_rng seed;
    mx_rng_seed3(&seed, o->model.seed, 0xDA7A, 0);
    r->rng = seed;
    r->step = 0;
    remove(r->path.log);
    return 0;
}

static int setup_resume(struct run *r, struct mx_error *err)
{
    struct mx_ckpt c;
    if (ckpt_open(&c, r->path.ckpt, err) != 0)
        return -1;
    int rc = -1;
    if (ckpt_load_model(&c, &r->m, err) != 0)
        goto out;
    if (!c.train) {
        mx_errorf(err, "checkpoint '%s' holds no training state; it cannot be resumed", r->path.ckpt);
        goto out;
    }
    struct run_state rs;
    if (run_state_from_json(c.train, &rs, err) != 0) {
        mx_error_wrap(err, "checkpoint '%s'", r->path.ckpt);
        goto out;
    }
    r->step = rs.step;
    for (int i = 0; i < 4; i++)
        r->rng.s[i] = rs.rng[i];
    r->elapsed = rs.elapsed;
    r->skipped = rs.skipped;
    if (r->o->extend_to > 0) {
        struct mx_train_opts *o = r->o;
        if (o->extend_to <= o->steps) {
            mx_errorf(err, "--extend-to %ld: the run already ends at step %ld; give a larger step to train further",
                      o->extend_to, o->steps);
            goto out;
        }
        /* WHY from the LR of this step: the old schedule continues unchanged up to here, and the
         * new cosine starts at the value the old one has now, so the LR never jumps. */
        o->sched_lr = train_lr_at(o, r->step);
        o->sched_from = r->step;
        o->steps = o->extend_to;
        printf("--extend-to %ld: the learning rate decays from %.6g (step %ld) to --min-lr %.6g at step %ld\n",
               o->steps, o->sched_lr, r->step, o->min_lr, o->steps);
    }
    if (tok_from_json(&r->tok, c.tokenizer, r->o->out, err) != 0)
        goto out;
    if (tok_vocab_size(r->tok) != r->m.cfg.vocab_size) {
        mx_errorf(err, "run '%s': the %s tokenizer has %d tokens but the model's vocab_size is %d: the checkpoint or "
                       "the run's tokenizer file was changed; restore the tokenizer the run was trained with",
                  r->o->out, tok_kind(r->tok), tok_vocab_size(r->tok), r->m.cfg.vocab_size);
        goto out;
    }
    r->o->model = r->m.cfg;
    rc = 0;
out:
    if (rc == 0) {
        r->adam_m = mx_xcalloc(r->m.n_params * sizeof(float));
        r->adam_v = mx_xcalloc(r->m.n_params * sizeof(float));
        rc = ckpt_load_moments(&c, &r->m, r->adam_m, r->adam_v, err);
    }
    ckpt_close(&c);
    if (rc == 0 && r->d->rank == 0)
        run_log_trim(r->o->out, r->step);
    return rc;
}

/* ---- non-finite steps --------------------------------------------------------------------- */

/* Test only: MIXLM_FAULT_NAN_STEP=k[,k...] sets one gradient of the last trainable tensor to NaN
 * after the backward pass of each listed 1-based step, so a test drives the real detection below
 * (the norm, the tensor scan, the skip or the stop) at steps of its choosing. Unset: nothing. */
static void fault_nan_grad(struct run *r, long step)
{
    const char *s = getenv("MIXLM_FAULT_NAN_STEP");
    char *end;
    for (; s && *s; s = *end ? end + 1 : end) {
        long k = strtol(s, &end, 10);
        if (end == s)
            return;
        if (k != step)
            continue;
        for (int t = r->m.n_tensors - 1; t >= 0; t--)
            if (r->m.tensors[t].trainable) {
                r->m.grads[r->m.tensors[t].offset] = NAN;
                return;
            }
    }
}

static int params_finite(const struct mx_model *m)
{
    for (size_t i = 0; i < m->n_params; i++)
        if (!isfinite(m->params[i]))
            return 0;
    return 1;
}

/* --profile's line: the mean ms per step of each kind of work and its share, in the order of
 * mx_prof_cat, the matmuls with their rate. One line, so scripts can read it
 * (bench/train_speed.sh). */
static void print_profile(const struct run_summary *sm)
{
    if (sm->profile_steps <= 0) {
        printf("profile: no step after the first to report (run 2 or more steps)\n");
        return;
    }
    double total = 0;
    for (int c = 0; c < MX_PROF_N; c++)
        total += sm->profile_ms[c];
    printf("profile: mean of %.0f steps after the first, %.1f ms/step:", sm->profile_steps, total);
    for (int c = 1; c <= MX_PROF_N; c++) { /* "other" last */
        int k = c % MX_PROF_N;
        printf("%s %s %.1f ms %.1f%%", c > 1 ? "," : "", mx_prof_name((enum mx_prof_cat)k), sm->profile_ms[k],
               total > 0 ? 100 * sm->profile_ms[k] / total : 0.0);
        if (k == MX_PROF_MATMUL)
            printf(" (%.1f GFLOP/s)", sm->profile_matmul_gflops);
    }
    printf("\n");
}

/* After the backward pass of step index it: the gradient norm into *gn. Returns 0 when the loss
 * and the norm are finite; 1 when the step is skipped (--skip-nonfinite has room left and the
 * parameters are finite: the gradients are zeroed, r->skipped grows, a warning names the step and
 * the first non-finite tensor, r->skip_tensor); -1 with err when training must stop. */
static int check_step(struct run *r, long it, double loss, double *gn, struct mx_progress *pr,
                      struct mx_error *err)
{
    fault_nan_grad(r, it + 1);
    *gn = grad_norm(&r->m);
    if (isfinite(loss) && isfinite(*gn))
        return 0;
    const char *bad = train_first_nonfinite(&r->m);
    r->skip_tensor = bad ? bad : "none found";
    int params_ok = params_finite(&r->m);
    if (r->skipped < r->o->skip_nonfinite && params_ok) {
        r->skipped++;
        memset(r->m.grads, 0, r->m.n_params * sizeof(float));
        mx_progress_print(pr, "warning: step %ld skipped: loss %g, gradient norm %g (first non-finite tensor: %s); "
                              "%ld of --skip-nonfinite %ld used",
                          it + 1, loss, *gn, r->skip_tensor, r->skipped, r->o->skip_nonfinite);
        return 1;
    }
    char why[160] = "";
    if (!params_ok)
        snprintf(why, sizeof why, "; the parameters themselves are not finite, so no step can be skipped");
    else if (r->o->skip_nonfinite > 0)
        snprintf(why, sizeof why, "; --skip-nonfinite %ld is used up (%ld steps skipped)", r->o->skip_nonfinite,
                 r->skipped);
    return mx_errorf(err, "training diverged at step %ld: loss %g, gradient norm %g (first non-finite tensor: %s)%s; "
                          "lower --lr or --grad-clip, or allow a few bad steps with --skip-nonfinite N; the last "
                          "checkpoint is intact",
                     it + 1, loss, *gn, r->skip_tensor, why);
}

/* A new run over several ranks: rank 0 creates it (tokenizer, tokens.bin, initial parameters)
 * and hands the tokenizer and the parameters to the others, which read the run's files from
 * the same directory (a file system every rank sees). */
static int setup_new_ranks(struct run *r, struct mx_error *err)
{
    struct dist *d = r->d;
    int rc = d->rank == 0 ? setup_new(r, err) : 0;
    if (d->size < 2)
        return rc;
    char *text = NULL;
    long hdr[2] = {rc, 0}; /* rank 0's result, the tokenizer JSON's length */
    if (d->rank == 0 && rc == 0) {
        cJSON *tj = tok_to_json(r->tok);
        text = cJSON_PrintUnformatted(tj);
        cJSON_Delete(tj);
        hdr[1] = (long)strlen(text) + 1;
    }
    dist_bcast(d, hdr, sizeof hdr);
    if (hdr[0] != 0) {
        if (d->rank != 0)
            mx_errorf(err, "rank 0 could not create the run in '%s' (its message says why)", r->o->out);
        return -1;
    }
    if (d->rank != 0)
        text = mx_xmalloc((size_t)hdr[1]);
    dist_bcast(d, text, (size_t)hdr[1]);
    if (d->rank != 0) {
        cJSON *tj = cJSON_Parse(text);
        rc = tok_from_json(&r->tok, tj, r->o->out, err);
        cJSON_Delete(tj);
        if (rc == 0) {
            r->o->model.vocab_size = tok_vocab_size(r->tok);
            rc = model_create(&r->m, &r->o->model, err);
        }
        mx_rng_seed3(&r->rng, r->o->model.seed, 0xDA7A, 0);
        r->step = 0;
    }
    if (d->rank == 0)
        cJSON_free(text);
    else
        mx_free(text);
    if (rc != 0)
        return rc;
    dist_bcast(d, r->m.params, r->m.n_params * sizeof(float));
    return 0;
}

/* The options every rank must share (those stored, the model, and this session's). */
static uint64_t opts_hash(const struct mx_train_opts *o, int resume)
{
    cJSON *j = run_opts_to_json(o), *mj = model_config_to_json(&o->model);
    char *a = cJSON_PrintUnformatted(j), *b = cJSON_PrintUnformatted(mj);
    long v[4] = {resume, o->stop_after, o->extend_to, o->check_sync};
    uint64_t h = mx_hash64(MX_HASH_BASIS, a, strlen(a));
    h = mx_hash64(h, b, strlen(b));
    h = mx_hash64(h, o->out, strlen(o->out));
    h = mx_hash64(h, v, sizeof v);
    cJSON_free(a);
    cJSON_free(b);
    cJSON_Delete(j);
    cJSON_Delete(mj);
    return h;
}

/* Every rank must hold the same parameters (a drift would be silent otherwise). */
static int check_sync(struct run *r, const char *when, struct mx_error *err)
{
    if (r->d->size < 2)
        return 0;
    uint64_t h = mx_hash64(MX_HASH_BASIS, r->m.params, r->m.n_params * sizeof(float));
    if (dist_check_same(r->d, h, "parameters", err) == 0)
        return 0;
    return mx_error_wrap(err, "the ranks drifted apart %s (every rank must read the same run directory; else a "
                              "rank's memory or network is faulty; the last checkpoint in '%s' is intact: resume "
                              "from it)",
                         when, r->o->out);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int train_run(struct mx_train_opts *o, int resume, struct dist *d, struct mx_error *err)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    struct dist solo = {.size = 1, .local_size = 1, .library = "none"};
    r.d = d ? d : &solo;
    d = r.d;
    mx_set_threads(o->threads);
    if (o->threads <= 0 && d->local_size > 1 && !getenv("OMP_NUM_THREADS")) { /* share the cores */
        int t = mx_get_threads() / d->local_size;
        mx_set_threads(t < 1 ? 1 : t);
    }
    if (dist_check_same(d, opts_hash(o, resume), "options", err) != 0)
        return mx_error_wrap(err, "every rank must be started with the same command line");
    if (o->grad_accum % d->size != 0)
        return mx_errorf(err, "%d ranks cannot share the run's %d micro-batches per step (--grad-accum is per rank: "
                              "a run keeps ranks x --grad-accum); start a number of ranks that divides %d, or give "
                              "--grad-accum to set a new per-rank count",
                         d->size, o->grad_accum, o->grad_accum);
    int accum_mine = o->grad_accum / d->size; /* this rank's micro-batches: rank*accum_mine + [0, accum_mine) */
    if (mx_mkdir_p(o->out, err) != 0)
        return -1;
    run_paths_init(&r.path, o->out);
    int stale = d->rank == 0 ? run_remove_stale_tmp(o->out) : 0;
    if (stale > 0)
        printf("removed %d stale temporary file(s) left by an interrupted write in '%s'\n", stale, o->out);
    int rc = -1;
    /* Refuse a bidirectional mixer before any data is read or encoded. */
    for (int l = 0; l < o->model.n_layer; l++) {
        char name[64];
        size_t nl = strcspn(o->model.attn[l], ":");
        snprintf(name, sizeof name, "%.*s", (int)(nl < sizeof name ? nl : sizeof name - 1), o->model.attn[l]);
        const struct mixer_ops *ops = mixer_find(name);
        if (ops && !ops->causal) {
            mx_errorf(err, "layer %d: mixer '%s' sees the future (it is bidirectional), so a language model "
                           "trained with it would learn to copy the next token; use a causal mixer such as "
                           "'causal_fnet' (FNet with the future masked out) instead",
                      l, o->model.attn[l]);
            goto out;
        }
    }
    if ((resume ? setup_resume(&r, err) : setup_new_ranks(&r, err)) != 0)
        goto out;
    if (check_sync(&r, "at the start", err) != 0)
        goto out;
    if (d->size > 1) {
        r.m.grads_ready = dist_grads_ready;
        r.m.grads_ready_ctx = d;
    }
    if (data_open(&r.data, r.path.tokens, err) != 0)
        goto out;
    data_split(r.data.count, o->val_frac, &r.train_end);
    int B = o->batch, T = o->model.block_size;
    if (r.train_end < (size_t)T + 1 || r.data.count - r.train_end < (size_t)T + 1) {
        mx_errorf(err, "--data '%s' has %zu tokens: too few for --context %d (the train split has %zu and the "
                       "validation split %zu; each needs at least %d); use a smaller --context or more text",
                  o->data, r.data.count, T, r.train_end, r.data.count - r.train_end, T + 1);
        goto out;
    }
    if (model_plan(&r.m, B, T, err) != 0)
        goto out;
    if (!r.adam_m) {
        r.adam_m = mx_try_calloc(r.m.n_params * sizeof(float), "AdamW moments", err);
        r.adam_v = r.adam_m ? mx_try_calloc(r.m.n_params * sizeof(float), "AdamW moments", err) : NULL;
        if (!r.adam_v)
            goto out;
    }
    r.x = mx_xmalloc((size_t)B * T * sizeof(int32_t));
    r.y = mx_xmalloc((size_t)B * T * sizeof(int32_t));
    r.parts = mx_xcalloc((size_t)(o->grad_accum > o->eval_batches ? o->grad_accum : o->eval_batches) *
                         sizeof(double));
    if (o->loss_on == MX_LOSS_RECALL && setup_recall_loss(&r, err) != 0)
        goto out;

    FILE *log = NULL; /* rank 0 alone writes the run directory */
    if (d->rank == 0 && !(log = run_log_open(o->out, err)))
        goto out;
    char ranks[96] = "";
    if (d->size > 1)
        snprintf(ranks, sizeof ranks, "%d ranks x ", d->size);
    printf("mixlm train: %s | %d layers, %d heads, dim %d, context %d, vocab %d | %.2fM params | "
           "mixer %s%s | batch %d x %d accum | %s%d threads\n",
           o->out, r.m.cfg.n_layer, r.m.cfg.n_head, r.m.cfg.n_embd, T, r.m.cfg.vocab_size,
           r.m.n_params / 1e6, r.m.cfg.attn[0], r.m.cfg.pos == MX_POS_NONE   ? " | no position embedding (NoPE)"
           : r.m.cfg.pos == MX_POS_ROPE ? " | rotary positions (RoPE)"
                                        : "", B,
           o->grad_accum, ranks, mx_get_threads());
    if (d->size > 1)
        printf("mpi: %s | %d ranks (%d on this machine), rank r runs micro-batches r*%d .. r*%d+%d of each step\n",
               d->library, d->size, d->local_size, accum_mine, accum_mine, accum_mine - 1);
    char blas[192];
    printf("cpu: %s | kernels %s | %s\n", mx_cpu_name(), mx_isa_name(), mx_blas_desc(blas, sizeof blas));
    printf("data: %s | %zu tokens (%zu train, %zu val) | tokenizer %s%s\n", o->data, r.data.count, r.train_end,
           r.data.count - r.train_end, tok_kind(r.tok), resume ? "" : "");
    if (resume)
        printf("resuming at step %ld of %ld\n", r.step, o->steps);
    fflush(stdout);

    g_stop_signal = 0;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct mx_progress pr;
    mx_progress_init(&pr, stdout, o->steps, o->log_every);
    struct mx_hostcpu host0; /* the host's steal and other load over this session's training */
    mx_hostcpu_read(&host0);
    if (o->quiet)
        pr.tty = 0, pr.every = o->steps + 1;
    /* WHY grown on demand: sized by --steps up front, a run with a huge --steps and a
     * --time-budget asked for 2 x 8 bytes per planned step (34 GB at 2^31 steps: killed by the
     * OOM killer on first touch); grown, it holds the steps actually run. */
    long tcap = o->steps - r.step + 1 < 4096 ? o->steps - r.step + 1 : 4096;
    if (tcap < 1)
        tcap = 1;
    double *times = mx_xcalloc(sizeof(double) * (size_t)tcap);
    long ntimes = 0;
    double val_loss = NAN, last_loss = NAN;
    size_t tokens_per_step = (size_t)B * T * o->grad_accum;
    int stopped = 0;
    long start_step = r.step;
    double *waits = mx_xcalloc(sizeof(double) * (size_t)tcap); /* seconds blocked in MPI per step */
    double start_elapsed = r.elapsed;
    /* --profile: each step's time by kind (core/prof.c), summed over the session's steps after
     * its first (page faults, OpenBLAS's buffers); evaluation and checkpoints fall outside. */
    double prof_sum[MX_PROF_N] = {0}, prof_at[MX_PROF_N], prof_end[MX_PROF_N], pf_at = 0, pf_end = 0,
           prof_flops = 0;
    long prof_steps = 0;
    mx_prof_enable(o->profile);
    /* The step's loss and its gradient in one softmax pass (the logits are not read after it). */
    r.m.ce_fused = 1;
    while (r.step < o->steps) {
        double t0 = mx_now();
        if (o->profile)
            mx_prof_read(prof_at, &pf_at);
        long it = r.step; /* 0-based index of this step */
        /* Gradients are zero here: the buffer starts zeroed and adamw_update zeroes what it
         * consumed (buffers' gradients are kept zero by model_backward). */
        double loss = 0, wait0 = d->wait_s;
        int mine = d->rank * accum_mine;
        for (int a = 0; a < o->grad_accum; a++) {
            /* Every rank draws every micro-batch (the data position stays global), runs its own. */
            mx_prof_push(MX_PROF_DATA);
            int drawn = data_batch_aligned(&r.data, 0, r.train_end, B, T, o->align, &r.rng, r.x, r.y, err);
            mx_prof_pop();
            if (drawn != 0)
                goto out_log;
            r.parts[a] = 0;
            if (a < mine || a >= mine + accum_mine)
                continue;
            if (r.cp_of)
                data_recall_mask_targets(r.cp_of, r.x, r.y, B, T);
            if (a == mine + accum_mine - 1) /* the last backward sends its gradients as they finish */
                dist_grads_arm(d, r.m.grads);
            r.parts[a] = model_forward(&r.m, r.x, r.y, B, T, it, 1);
            model_backward(&r.m);
        }
        dist_grads_wait(d);                  /* grads: the sum over all micro-batches of the step */
        dist_sum(d, r.parts, o->grad_accum); /* one non-zero term each: exact */
        for (int a = 0; a < o->grad_accum; a++)
            loss += r.parts[a];
        loss /= o->grad_accum;
        mx_prof_push(MX_PROF_OPTIM);
        if (o->grad_accum > 1) {
            float s = 1.0f / o->grad_accum;
            for (size_t i = 0; i < r.m.n_params; i++)
                r.m.grads[i] *= s;
        }
        double gn;
        int skip = check_step(&r, it, loss, &gn, &pr, err); /* 1: no update at this step */
        mx_prof_pop();
        if (skip < 0)
            goto out_log;
        /* Clipping is folded into the optimizer's read of the gradient (one pass fewer). */
        float clip = o->grad_clip > 0 && gn > o->grad_clip ? (float)(o->grad_clip / (gn + 1e-6)) : 1.0f;
        double lr = train_lr_at(o, it);
        mx_prof_push(MX_PROF_OPTIM);
        if (!skip) /* bias correction counts the updates made: skipped steps made none */
            adamw_update(&r.m, r.adam_m, r.adam_v, lr, o->beta1, o->beta2, o->eps, o->weight_decay, clip,
                         it + 1 - r.skipped);
        mx_prof_pop();
        r.step++;
        if (o->profile) {
            mx_prof_read(prof_end, &pf_end);
            if (r.step - start_step > 1) {
                for (int c = 0; c < MX_PROF_N; c++)
                    prof_sum[c] += prof_end[c] - prof_at[c];
                prof_flops += pf_end - pf_at;
                prof_steps++;
            }
        }
        double dt = mx_now() - t0;
        r.elapsed += dt;
        if (ntimes == tcap) {
            tcap *= 2;
            times = mx_xrealloc(times, sizeof(double) * (size_t)tcap, "step times");
            waits = mx_xrealloc(waits, sizeof(double) * (size_t)tcap, "step waits");
        }
        times[ntimes++] = dt;
        last_loss = loss;
        /* --time-budget: this step is the last; it ends as the run's last step would (over MPI the
         * ranks agree: the budget is spent when any rank has spent it, so all stop at one step). */
        int last = r.step == o->steps;
        if (o->time_budget > 0) {
            double spent = r.elapsed - start_elapsed >= o->time_budget;
            dist_sum(d, &spent, 1);
            last = last || spent > 0;
        }
        int do_eval = (o->eval_every > 0 && r.step % o->eval_every == 0) || last;
        int do_log = skip || do_eval || r.step % o->log_every == 0 || last || r.step == 1;
        mx_progress_update(&pr, r.step, loss, lr, dt * 1000, tokens_per_step / dt);
        if (do_eval) {
            int ok;
            val_loss = evaluate(&r, err, &ok);
            if (!ok)
                goto out_log;
            mx_progress_print(&pr, "step %ld: train loss %.4f, val loss %.4f", r.step, loss, val_loss);
        }
        if (do_log) {
            struct run_log_line ll = {.step = r.step, .loss = loss, .lr = lr, .grad_norm = gn,
                                      .ms_per_step = dt * 1000, .tokens_per_s = tokens_per_step / dt,
                                      .elapsed_s = r.elapsed, .val_loss = do_eval ? val_loss : NAN,
                                      .skipped = skip ? r.skip_tensor : NULL};
            if (log && run_log_append(log, &ll, err) != 0) {
                mx_error_wrap(err, "run '%s'", o->out);
                goto out_log;
            }
        }
        if (o->stop_after > 0 && r.step - start_step >= o->stop_after && r.step < o->steps)
            g_stop_signal = -1;
        int stop = dist_agree_stop(d, g_stop_signal); /* every rank stops at the same step */
        waits[ntimes - 1] = d->wait_s - wait0;
        if (o->check_sync > 0 && r.step % o->check_sync == 0 && r.step < o->steps) {
            char when[64];
            snprintf(when, sizeof when, "after step %ld", r.step);
            if (check_sync(&r, when, err) != 0)
                goto out_log;
        }
        if ((o->ckpt_every > 0 && r.step % o->ckpt_every == 0) || stop) {
            if (save(&r, err) != 0)
                goto out_log;
        }
        if (stop) {
            if (stop > 0)
                mx_progress_print(&pr, "interrupted (signal %d): checkpoint saved at step %ld; continue with "
                                       "`mixlm train --resume %s`",
                                  stop, r.step, o->out);
            else
                mx_progress_print(&pr, "stopped after %ld steps (--stop-after): checkpoint saved at step %ld",
                                  o->stop_after, r.step);
            stopped = 1;
            break;
        }
        if (last && r.step < o->steps) {
            mx_progress_print(&pr, "--time-budget %g s spent after %ld of %ld steps", o->time_budget, r.step,
                              o->steps);
            break;
        }
    }
    mx_progress_end(&pr);
    if (!stopped) {
        if (check_sync(&r, "at the end", err) != 0 || save(&r, err) != 0)
            goto out_log;
        qsort(times, (size_t)ntimes, sizeof(double), cmp_double);
        qsort(waits, (size_t)ntimes, sizeof(double), cmp_double);
        double med = ntimes ? times[ntimes / 2] : 0;
        double tok_s = med > 0 ? tokens_per_step / med : 0;
        double gflop = model_flops_per_token(&r.m, T) * (double)tokens_per_step / 1e9;
        struct run_summary sm = {.params = (double)r.m.n_params, .steps = (double)r.step, .val_loss = val_loss,
                                 .train_seconds = r.elapsed, .tokens_per_s = tok_s, .ms_per_step_median = med * 1000,
                                 .gflop_per_step = gflop, .peak_rss_mb = mx_peak_rss_mb(), .threads = mx_get_threads(),
                                 .skipped_nonfinite = (double)r.skipped, .ranks = d->size,
                                 .comm_wait_ms_per_step = ntimes ? waits[ntimes / 2] * 1000 : 0};
        struct mx_hostcpu host1;
        mx_hostcpu_read(&host1);
        mx_hostcpu_share(&host0, &host1, &sm.host_steal_pct, &sm.host_other_pct);
        snprintf(sm.tokenizer, sizeof sm.tokenizer, "%s", tok_kind(r.tok));
        if (prof_steps > 0) {
            sm.profile_steps = (double)prof_steps;
            for (int c = 0; c < MX_PROF_N; c++)
                sm.profile_ms[c] = prof_sum[c] / (double)prof_steps * 1000;
            sm.profile_matmul_gflops = prof_sum[MX_PROF_MATMUL] > 0 ? prof_flops / prof_sum[MX_PROF_MATMUL] / 1e9 : 0;
        }
        if (d->rank == 0 && run_summary_write(o->out, &r.m.cfg, &sm, err) != 0) {
            mx_error_wrap(err, "training finished and its checkpoint is saved, but summary.json was not written "
                               "(`mixlm train --resume %s` writes it again)",
                          o->out);
            goto out_log;
        }
        if (d->size > 1)
            printf("mpi: %d ranks x %d threads | median %.1f ms/step waiting for MPI (communication not hidden "
                   "by compute, %.1f%% of the median step)\n",
                   d->size, mx_get_threads(), sm.comm_wait_ms_per_step,
                   med > 0 ? 100 * sm.comm_wait_ms_per_step / (med * 1000) : 0.0);
        printf("done: %ld steps, final train loss %.4f, val loss %.4f | median %.1f ms/step, %.0f tok/s, "
               "%.2f GFLOP/step = %.1f GFLOP/s | peak RSS %.0f MB | checkpoint %s\n",
               r.step, last_loss, val_loss, med * 1000, tok_s, gflop, med > 0 ? gflop / med : 0.0,
               mx_peak_rss_mb(), r.path.ckpt);
        char hbuf[128];
        if (sm.host_steal_pct >= 0)
            printf("host: %s%s while training (%ld CPUs online)%s\n",
                   mx_hostcpu_text(hbuf, sizeof hbuf, sm.host_steal_pct, sm.host_other_pct),
                   d->size > 1 ? " (this node's other MPI ranks among them)" : "", sysconf(_SC_NPROCESSORS_ONLN),
                   sm.host_steal_pct >= MX_HOST_NOTE_PCT || (d->size == 1 && sm.host_other_pct >= MX_HOST_NOTE_PCT)
                       ? ": step times are slower than this machine's own"
                       : "");
        if (r.skipped > 0)
            printf("%ld step(s) skipped as non-finite (--skip-nonfinite %ld)\n", r.skipped, o->skip_nonfinite);
        if (o->profile)
            print_profile(&sm);
    }
    rc = stopped ? 1 : 0;
out_log:
    if (log)
        fclose(log);
    mx_free(times);
    mx_free(waits);
out:
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    mx_free(r.x);
    mx_free(r.y);
    mx_free(r.parts);
    mx_free(r.cp_of);
    mx_free(r.adam_m);
    mx_free(r.adam_v);
    data_close(&r.data);
    tok_free(r.tok);
    if (r.m.params)
        model_free(&r.m);
    return rc;
}
