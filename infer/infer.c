/* infer.c — loading runs, sampling (temperature, top-k, top-p, repetition penalty), text
 * generation with incremental mixer state or full recompute, and full-pass evaluation.
 * Not the CLI: nothing here prints except through the emit callback. */
#include "infer/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int infer_load_run(struct mx_run *r, const char *dir, struct mx_error *err)
{
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!mx_file_exists(dir))
        return mx_errorf(err, "run directory '%s' does not exist; train one with `mixlm train --out %s ...`", dir, dir);
    if (!mx_file_exists(path))
        return mx_errorf(err, "run directory '%s' holds no checkpoint (model.safetensors); train it first or "
                              "check the path", dir);
    struct mx_ckpt c;
    if (ckpt_open(&c, path, err) != 0)
        return -1;
    int rc = -1;
    if (ckpt_load_model(&c, &r->m, err) != 0)
        goto out;
    if (tok_from_json(&r->tok, c.tokenizer, dir, err) != 0) {
        model_free(&r->m);
        goto out;
    }
    if (tok_vocab_size(r->tok) != r->m.cfg.vocab_size) {
        mx_errorf(err, "run '%s': the %s tokenizer has %d tokens but the model's vocab_size is %d: every id the "
                       "model can produce must be one the tokenizer knows; the checkpoint or the run's tokenizer "
                       "file was changed: use the tokenizer the run was trained with",
                  dir, tok_kind(r->tok), tok_vocab_size(r->tok), r->m.cfg.vocab_size);
        tok_free(r->tok);
        model_free(&r->m);
        goto out;
    }
    /* Inference never runs backward: give the gradient buffer (as large as the model) back. */
    mx_free(r->m.grads);
    r->m.grads = NULL;
    memset(&r->m.g, 0, sizeof r->m.g);
    const cJSON *st = c.train ? cJSON_GetObjectItemCaseSensitive(c.train, "step") : NULL;
    if (st && (!cJSON_IsNumber(st) || !(st->valuedouble >= 0 && st->valuedouble <= 1099511627776.0) ||
               st->valuedouble != floor(st->valuedouble))) {
        mx_errorf(err, "checkpoint '%s': training state field 'step' is not an integer in [0, 2^40]: the checkpoint "
                       "is damaged or edited; use another checkpoint",
                  path);
        tok_free(r->tok);
        model_free(&r->m);
        goto out;
    }
    r->step = cJSON_IsNumber(st) ? (long)st->valuedouble : 0;
    /* The parameters were last updated at step index step-1 (0-based), with that step's draw
     * of any step-dependent randomness (Performer features, LSH rotations): evaluate and
     * generate with the same draw, not the next one. */
    r->mixer_step = r->step > 0 ? r->step - 1 : 0;
    for (int l = 0; l < r->m.cfg.n_layer; l++)
        if (!r->m.mix[l].ops->causal) {
            mx_errorf(err, "run '%s' layer %d uses the bidirectional mixer '%s', which sees the future: it "
                           "cannot be evaluated or sampled as a language model", dir, l, r->m.mix[l].spec);
            tok_free(r->tok);
            model_free(&r->m);
            goto out;
        }
    rc = 0;
out:
    ckpt_close(&c);
    return rc;
}

void infer_free_run(struct mx_run *r)
{
    tok_free(r->tok);
    if (r->m.params)
        model_free(&r->m);
    memset(r, 0, sizeof *r);
}

/* ---- sampling ----------------------------------------------------------------------------- */

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

int infer_sample(struct mx_sampler *s, const float *logits, int V, const int32_t *recent, int n_recent,
                 float *work)
{
    float *l = work, *sorted = work + V;
    memcpy(l, logits, (size_t)V * sizeof(float));
    if (s->repetition_penalty > 0 && s->repetition_penalty != 1.0) {
        for (int i = 0; i < n_recent; i++) {
            int id = recent[i];
            /* Applied once per distinct id. */
            int seen = 0;
            for (int k = 0; k < i; k++)
                seen |= recent[k] == id;
            if (seen)
                continue;
            l[id] = l[id] > 0 ? l[id] / (float)s->repetition_penalty : l[id] * (float)s->repetition_penalty;
        }
    }
    if (s->temperature <= 0) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (l[i] > l[best])
                best = i;
        return best;
    }
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) {
        l[i] = (float)(l[i] / s->temperature);
        if (l[i] > mx)
            mx = l[i];
    }
    /* top-k: keep logits >= the k-th largest (ties at the threshold are kept). */
    if (s->top_k > 0 && s->top_k < V) {
        memcpy(sorted, l, (size_t)V * sizeof(float));
        qsort(sorted, (size_t)V, sizeof(float), cmp_desc);
        float th = sorted[s->top_k - 1];
        for (int i = 0; i < V; i++)
            if (l[i] < th)
                l[i] = -INFINITY;
    }
    double sum = 0;
    for (int i = 0; i < V; i++)
        sum += l[i] == -INFINITY ? 0 : exp((double)(l[i] - mx));
    /* top-p: keep the smallest set of most likely tokens whose mass reaches p (the
     * probability threshold is the last one added, so ties at it are kept). */
    if (s->top_p > 0 && s->top_p < 1) {
        for (int i = 0; i < V; i++)
            sorted[i] = l[i] == -INFINITY ? 0.0f : (float)(exp((double)(l[i] - mx)) / sum);
        qsort(sorted, (size_t)V, sizeof(float), cmp_desc);
        double acc = 0;
        float th = 0;
        for (int i = 0; i < V; i++) {
            acc += sorted[i];
            th = sorted[i];
            if (acc >= s->top_p)
                break;
        }
        double kept = 0;
        for (int i = 0; i < V; i++) {
            if (l[i] == -INFINITY)
                continue;
            if ((float)(exp((double)(l[i] - mx)) / sum) < th)
                l[i] = -INFINITY;
            else
                kept += exp((double)(l[i] - mx));
        }
        sum = kept;
    }
    double u = mx_rng_uniform_d(&s->rng) * sum, acc = 0;
    int last = 0;
    for (int i = 0; i < V; i++) {
        if (l[i] == -INFINITY)
            continue;
        acc += exp((double)(l[i] - mx));
        last = i;
        if (u < acc)
            return i;
    }
    return last;
}

/* ---- generation --------------------------------------------------------------------------- */

const char *infer_mode_name(int mode)
{
    return mode == INFER_CACHE ? "cache" : mode == INFER_SLIDE ? "slide" : "recompute";
}

/* logits (V) of the next token from the full forward over seq[c0, n) (n - c0 <= block_size). */
static void forward_logits(struct mx_run *r, float *logits, const int32_t *seq, size_t c0, size_t n)
{
    int T = (int)(n - c0), V = r->m.cfg.vocab_size;
    model_forward(&r->m, seq + c0, NULL, 1, T, r->mixer_step, 0);
    memcpy(logits, r->m.a.logits + (size_t)(T - 1) * V, (size_t)V * sizeof(float));
}

/* Prefill chunk: rows batched per model_prefill call (work grows with it: 128 rows of a 384-wide
 * model take 2.2 MB). */
#define PREFILL_CHUNK 128

/* Clear the cache and feed seq[c0, n) at positions 0..n-c0-1 through model_prefill (MLPs batched,
 * mixers stepped); logits (V) of the last token. pwork: model_prefill_work_floats(PREFILL_CHUNK). */
static void prefill(struct mx_run *r, float *logits, float *state, size_t state_floats, float *pwork,
                    const int32_t *seq, size_t c0, size_t n)
{
    memset(state, 0, state_floats * sizeof(float));
    for (size_t t = c0; t < n; t += PREFILL_CHUNK) {
        int k = (int)(n - t < PREFILL_CHUNK ? n - t : PREFILL_CHUNK);
        model_prefill(&r->m, t + (size_t)k == n ? logits : NULL, state, pwork, seq + t, k, (int)(t - c0));
    }
}

long infer_generate(struct mx_run *r, const int32_t *prompt, size_t n_prompt, long n_new,
                    struct mx_sampler *s, int mode, int32_t *out_ids,
                    int (*emit)(void *ctx, int32_t id), void *ctx, struct infer_gen_stats *stats,
                    struct mx_error *err)
{
    struct mx_model *m = &r->m;
    const size_t Tm = (size_t)m->cfg.block_size, keep = (size_t)INFER_KEEP(m->cfg.block_size);
    const int V = m->cfg.vocab_size;
    struct infer_gen_stats st = {0};
    if (n_prompt < 1)
        return mx_errorf(err, "empty prompt: give at least one character with --prompt");
    /* Learned positions end at block_size: the prompt must fit (generation may then go on past
     * it, see INFER_KEEP). */
    if (n_prompt > Tm)
        return mx_errorf(err, "prompt is %zu tokens but the model's context is %zu (learned positions cannot go "
                              "further); shorten the prompt to at most %zu tokens",
                         n_prompt, Tm, Tm);
    for (size_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= V)
            return mx_errorf(err, "prompt token %d at position %zu is outside the model's vocabulary [0, %d)",
                             (int)prompt[i], i, V);
    if (mode != INFER_CACHE && mode != INFER_RECOMPUTE && mode != INFER_SLIDE)
        return mx_errorf(err, "unknown generation mode %d", mode);
    if (mode == INFER_CACHE && !model_can_step(m))
        mode = INFER_SLIDE; /* documented fallback: no incremental form in some layer */
    st.mode = mode;
    long made = -1;
    size_t state_floats = 0;
    float *work = mx_xmalloc((2 * (size_t)V + 16) * sizeof(float));
    int32_t *seq = mx_xmalloc((n_prompt + (size_t)(n_new > 0 ? n_new : 0) + 1) * sizeof(int32_t));
    float *logits = mx_xmalloc((size_t)V * sizeof(float));
    float *state = NULL, *swork = NULL, *pwork = NULL;
    memcpy(seq, prompt, n_prompt * sizeof(int32_t));
    size_t n = n_prompt, c0 = 0; /* the model sees seq[c0, n) */
    /* Mixers with step-dependent randomness (Performer's redraws) must use the draw the
     * checkpoint was saved with, as model_forward does with r->step. */
    for (int l = 0; l < m->cfg.n_layer; l++) {
        m->mix[l].step = r->mixer_step;
        m->mix[l].training = 0;
    }
    if (mode == INFER_CACHE) {
        state_floats = model_state_floats(m);
        state = mx_try_calloc(state_floats * sizeof(float) + 64, "the generation cache", err);
        if (!state)
            goto out;
        swork = mx_xmalloc(model_step_work_floats(m) * sizeof(float));
        pwork = mx_xmalloc(model_prefill_work_floats(m, PREFILL_CHUNK) * sizeof(float));
        st.state_bytes = state_floats * sizeof(float);
    } else {
        if ((!m->arena || m->T_max < (int)Tm) && model_plan(m, 1, (int)Tm, err) != 0) /* reuse a plan */
            goto out;
        st.act_bytes = m->arena_floats * sizeof(float);
    }
    double t0 = mx_now();
    if (mode == INFER_CACHE)
        prefill(r, logits, state, state_floats, pwork, seq, 0, n);
    else
        forward_logits(r, logits, seq, 0, n);
    double t1 = mx_now();
    st.prompt_tokens = (long)n_prompt;
    st.prompt_s = t1 - t0;
    for (made = 0; made < n_new;) {
        size_t nr = n < 64 ? n : 64;
        int32_t id = infer_sample(s, logits, V, seq + n - nr, (int)nr, work);
        seq[n++] = id;
        out_ids[made++] = id;
        if ((emit && emit(ctx, id)) || made == n_new)
            break;
        if (mode == INFER_SLIDE) {
            forward_logits(r, logits, seq, n > Tm ? n - Tm : 0, n);
            continue;
        }
        if (n - c0 > Tm) { /* the context is full: keep its last `keep` tokens (see infer.h) */
            c0 = n - keep;
            st.shifts++;
            st.shift_tokens += (long)keep - 1;
            if (mode == INFER_CACHE)
                prefill(r, logits, state, state_floats, pwork, seq, c0, n);
            else
                forward_logits(r, logits, seq, c0, n);
        } else if (mode == INFER_CACHE) {
            model_step(m, logits, state, swork, id, (int)(n - 1 - c0));
        } else {
            forward_logits(r, logits, seq, c0, n);
        }
    }
    st.gen_tokens = made;
    st.gen_s = mx_now() - t1;
    st.rss_mb = mx_rss_mb();
out:
    if (stats)
        *stats = st;
    mx_free(work);
    mx_free(seq);
    mx_free(logits);
    mx_free(state);
    mx_free(swork);
    mx_free(pwork);
    return made;
}

/* ---- evaluation --------------------------------------------------------------------------- */

int infer_eval(struct mx_run *r, const struct mx_tokfile *f, size_t begin, size_t end, int T,
               int stride, int B, struct mx_eval_result *res, struct mx_error *err)
{
    struct mx_model *m = &r->m;
    memset(res, 0, sizeof *res);
    if (T < 1 || T > m->cfg.block_size)
        return mx_errorf(err, "--context %d is larger than the model's context %d (learned positions); use a "
                              "value <= %d",
                         T, m->cfg.block_size, m->cfg.block_size);
    if (stride < 1 || stride > T)
        return mx_errorf(err, "--stride %d must be in [1, --context %d]; use --stride <= the context length", stride, T);
    if (f->vocab > m->cfg.vocab_size)
        return mx_errorf(err, "token file vocabulary %d exceeds the model's %d: data prepared with another tokenizer",
                         f->vocab, m->cfg.vocab_size);
    if (end - begin < (size_t)T + 1)
        return mx_errorf(err, "evaluation text has %zu tokens, fewer than --context %d + 1; use a smaller --context",
                         end - begin, T);
    if (B < 1)
        B = 1;
    if (model_plan(m, B, T, err) != 0)
        return -1;
    int32_t *x = mx_xmalloc((size_t)B * T * sizeof(int32_t)), *y = mx_xmalloc((size_t)B * T * sizeof(int32_t));
    float *losses = mx_xmalloc((size_t)B * T * sizeof(float));
    /* Window k covers inputs [s, s+T) with s = begin + k*stride; the first window scores all T
     * targets, later ones only their last `stride` (the ones not scored before). */
    size_t n_win = 1 + (end - begin - 1 - T) / (size_t)stride;
    double total = 0;
    size_t scored = 0, last_target = begin;
    double t0 = mx_now();
    for (size_t w0 = 0; w0 < n_win; w0 += (size_t)B) {
        int nb = (int)((n_win - w0) < (size_t)B ? (n_win - w0) : (size_t)B);
        for (int b = 0; b < nb; b++)
            data_window(f, begin + (w0 + b) * stride, T, x + (size_t)b * T, y + (size_t)b * T);
        model_forward(m, x, y, nb, T, r->mixer_step, 0);
        model_token_losses(m, losses);
        for (int b = 0; b < nb; b++) {
            int from = (w0 + b) == 0 ? 0 : T - stride;
            for (int t = from; t < T; t++)
                total += losses[(size_t)b * T + t];
            scored += (size_t)(T - from);
        }
        last_target = begin + (w0 + nb - 1) * stride + T; /* index of the last scored target */
    }
    res->seconds = mx_now() - t0;
    res->tokens = scored;
    res->loss = total / (double)scored;
    res->ppl = exp(res->loss);
    res->tokens_per_s = scored / res->seconds;
    /* Characters and bytes of the scored targets: ids (begin, last_target]. */
    size_t nt = last_target - begin;
    int32_t *ids = mx_xmalloc(nt * sizeof(int32_t));
    for (size_t i = 0; i < nt; i++)
        ids[i] = data_get(f, begin + 1 + i);
    char *text = NULL;
    size_t len = 0;
    int rc = tok_decode(r->tok, ids, nt, &text, &len, err);
    mx_free(ids);
    if (rc == 0) {
        res->bytes = len;
        res->chars = tok_count_chars(text, len);
        res->bits_per_char = total / M_LN2 / (double)res->chars;
        res->bits_per_byte = total / M_LN2 / (double)res->bytes;
        mx_free(text);
    }
    mx_free(x);
    mx_free(y);
    mx_free(losses);
    return rc;
}

/* ---- UTF-8 streaming --------------------------------------------------------------------------- */

static size_t put_fffd(char *out)
{
    memcpy(out, "\xEF\xBF\xBD", 3);
    return 3;
}

size_t infer_utf8_feed(struct infer_utf8 *u, const char *in, size_t n, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)in[i];
        if (u->n > 0) {
            /* The second byte's range depends on the lead (no overlongs, surrogates or > U+10FFFF). */
            unsigned char lo = 0x80, hi = 0xBF, lead = u->pend[0];
            if (u->n == 1) {
                if (lead == 0xE0)
                    lo = 0xA0;
                else if (lead == 0xED)
                    hi = 0x9F;
                else if (lead == 0xF0)
                    lo = 0x90;
                else if (lead == 0xF4)
                    hi = 0x8F;
            }
            if (b >= lo && b <= hi) {
                u->pend[u->n++] = b;
                if (u->n == u->need) {
                    memcpy(out + w, u->pend, (size_t)u->n);
                    w += (size_t)u->n;
                    u->n = 0;
                }
                continue;
            }
            w += put_fffd(out + w); /* the held start can never complete; b starts afresh */
            u->n = 0;
        }
        if (b < 0x80)
            out[w++] = (char)b;
        else if (b >= 0xC2 && b <= 0xF4) {
            u->pend[0] = b;
            u->n = 1;
            u->need = b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        } else
            w += put_fffd(out + w);
    }
    return w;
}

size_t infer_utf8_flush(struct infer_utf8 *u, char *out)
{
    if (u->n == 0)
        return 0;
    u->n = 0;
    return put_fffd(out);
}
