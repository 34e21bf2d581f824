/* train.c — the training loop: batches, forward/backward with gradient accumulation, global
 * norm clipping, AdamW, nanoGPT's LR schedule, periodic evaluation on fixed validation
 * batches, log.jsonl, atomic checkpoints (periodic, final, and on SIGINT/SIGTERM) and exact
 * resume (parameters, moments, step and the data RNG are all in the checkpoint).
 * Not argument parsing (cli/train.c) and not full-pass evaluation (infer/). */
#include "train/train.h"

#include "nn/isa.h"
#include "nn/nn.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

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
    struct run_paths path;
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
    cJSON_AddStringToObject(j, "tokens", MX_RUN_TOKENS);
    cJSON_AddItemToObject(j, "opts", train_opts_to_json(r->o));
    return j;
}

static int save(struct run *r, struct mx_error *err)
{
    cJSON *tj = tok_to_json(r->tok), *st = train_state_json(r);
    struct mx_ckpt_extra x = {.tokenizer = tj, .train = st, .adam_m = r->adam_m, .adam_v = r->adam_v};
    int rc = ckpt_write(r->path.ckpt, &r->m, &x, err);
    cJSON_Delete(tj);
    cJSON_Delete(st);
    if (rc != 0)
        mx_error_wrap(err, "checkpoint at step %ld not saved (the last saved one is intact; continue from it with "
                           "`mixlm train --resume %s` once the problem is fixed)",
                      r->step, r->o->out);
    return rc;
}

static double evaluate(struct run *r, struct mx_error *err, int *ok)
{
    const struct mx_train_opts *o = r->o;
    struct mx_rng er;
    mx_rng_seed(&er, 0xE7A1u); /* the same validation batches at every evaluation */
    double s = 0;
    *ok = 0;
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
        s += model_forward(&r->m, r->x, r->y, o->batch, o->model.block_size, r->step > 0 ? r->step - 1 : 0, 0);
    }
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
    if (rc == 0)
        run_log_trim(r->o->out, r->step);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int train_run(struct mx_train_opts *o, int resume, struct mx_error *err)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    mx_set_threads(o->threads);
    if (mx_mkdir_p(o->out, err) != 0)
        return -1;
    run_paths_init(&r.path, o->out);
    int stale = run_remove_stale_tmp(o->out);
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
                           "'fourier' instead",
                      l, o->model.attn[l]);
            goto out;
        }
    }
    if ((resume ? setup_resume(&r, err) : setup_new(&r, err)) != 0)
        goto out;
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
    if (o->loss_on == MX_LOSS_RECALL && setup_recall_loss(&r, err) != 0)
        goto out;

    FILE *log = run_log_open(o->out, err);
    if (!log)
        goto out;
    printf("mixlm train: %s | %d layers, %d heads, dim %d, context %d, vocab %d | %.2fM params | "
           "mixer %s | batch %d x %d accum | %d threads\n",
           o->out, r.m.cfg.n_layer, r.m.cfg.n_head, r.m.cfg.n_embd, T, r.m.cfg.vocab_size,
           r.m.n_params / 1e6, r.m.cfg.attn[0], B, o->grad_accum, mx_get_threads());
    printf("cpu: %s | kernels %s\n", mx_cpu_name(), mx_isa_name());
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
    if (o->quiet)
        pr.tty = 0, pr.every = o->steps + 1;
    double *times = mx_xcalloc(sizeof(double) * (size_t)(o->steps + 1));
    long ntimes = 0;
    double val_loss = NAN, last_loss = NAN;
    size_t tokens_per_step = (size_t)B * T * o->grad_accum;
    int stopped = 0;
    long start_step = r.step;
    double start_elapsed = r.elapsed;
    while (r.step < o->steps) {
        double t0 = mx_now();
        long it = r.step; /* 0-based index of this step */
        /* Gradients are zero here: the buffer starts zeroed and adamw_update zeroes what it
         * consumed (buffers' gradients are kept zero by model_backward). */
        double loss = 0;
        for (int a = 0; a < o->grad_accum; a++) {
            if (data_batch_aligned(&r.data, 0, r.train_end, B, T, o->align, &r.rng, r.x, r.y, err) != 0)
                goto out_log;
            if (r.cp_of)
                data_recall_mask_targets(r.cp_of, r.x, r.y, B, T);
            loss += model_forward(&r.m, r.x, r.y, B, T, it, 1);
            model_backward(&r.m);
        }
        loss /= o->grad_accum;
        if (o->grad_accum > 1) {
            float s = 1.0f / o->grad_accum;
            for (size_t i = 0; i < r.m.n_params; i++)
                r.m.grads[i] *= s;
        }
        double gn = grad_norm(&r.m);
        const char *bad = !isfinite(loss) || !isfinite(gn) ? train_first_nonfinite(&r.m) : NULL;
        if (!isfinite(loss) || !isfinite(gn)) {
            mx_errorf(err, "training diverged at step %ld: loss %g, gradient norm %g (first non-finite tensor: %s); "
                           "lower --lr or --grad-clip; the last checkpoint is intact",
                      it + 1, loss, gn, bad ? bad : "none found");
            goto out_log;
        }
        /* Clipping is folded into the optimizer's read of the gradient (one pass fewer). */
        float clip = o->grad_clip > 0 && gn > o->grad_clip ? (float)(o->grad_clip / (gn + 1e-6)) : 1.0f;
        double lr = train_lr_at(o, it);
        adamw_update(&r.m, r.adam_m, r.adam_v, lr, o->beta1, o->beta2, o->eps, o->weight_decay, clip, it + 1);
        r.step++;
        double dt = mx_now() - t0;
        r.elapsed += dt;
        times[ntimes++] = dt;
        last_loss = loss;
        /* --time-budget: this step is the last; it ends as the run's last step would. */
        int last = r.step == o->steps || (o->time_budget > 0 && r.elapsed - start_elapsed >= o->time_budget);
        int do_eval = (o->eval_every > 0 && r.step % o->eval_every == 0) || last;
        int do_log = do_eval || r.step % o->log_every == 0 || last || r.step == 1;
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
                                      .elapsed_s = r.elapsed, .val_loss = do_eval ? val_loss : NAN};
            run_log_append(log, &ll);
        }
        if (o->stop_after > 0 && r.step - start_step >= o->stop_after && r.step < o->steps)
            g_stop_signal = -1;
        if ((o->ckpt_every > 0 && r.step % o->ckpt_every == 0) || g_stop_signal) {
            if (save(&r, err) != 0)
                goto out_log;
        }
        if (g_stop_signal) {
            if (g_stop_signal > 0)
                mx_progress_print(&pr, "interrupted (signal %d): checkpoint saved at step %ld; continue with "
                                       "`mixlm train --resume %s`",
                                  (int)g_stop_signal, r.step, o->out);
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
        if (save(&r, err) != 0)
            goto out_log;
        qsort(times, (size_t)ntimes, sizeof(double), cmp_double);
        double med = ntimes ? times[ntimes / 2] : 0;
        double tok_s = med > 0 ? tokens_per_step / med : 0;
        double gflop = model_flops_per_token(&r.m, T) * (double)tokens_per_step / 1e9;
        struct run_summary sm = {.params = (double)r.m.n_params, .steps = (double)r.step, .val_loss = val_loss,
                                 .train_seconds = r.elapsed, .tokens_per_s = tok_s, .ms_per_step_median = med * 1000,
                                 .gflop_per_step = gflop, .peak_rss_mb = mx_peak_rss_mb(), .threads = mx_get_threads()};
        snprintf(sm.tokenizer, sizeof sm.tokenizer, "%s", tok_kind(r.tok));
        run_summary_write(o->out, &r.m.cfg, &sm);
        printf("done: %ld steps, final train loss %.4f, val loss %.4f | median %.1f ms/step, %.0f tok/s, "
               "%.2f GFLOP/step = %.1f GFLOP/s | peak RSS %.0f MB | checkpoint %s\n",
               r.step, last_loss, val_loss, med * 1000, tok_s, gflop, med > 0 ? gflop / med : 0.0,
               mx_peak_rss_mb(), r.path.ckpt);
    }
    rc = stopped ? 1 : 0;
out_log:
    fclose(log);
    mx_free(times);
out:
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    mx_free(r.x);
    mx_free(r.y);
    mx_free(r.cp_of);
    mx_free(r.adam_m);
    mx_free(r.adam_v);
    data_close(&r.data);
    tok_free(r.tok);
    if (r.m.params)
        model_free(&r.m);
    return rc;
}
