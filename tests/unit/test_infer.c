/* test_infer.c — the inference engine: cached generation equals uncached token for token (every
 * causal mixer, through and past the context), the `window` ring buffer stays bounded, the sampler
 * (top-k 1 is argmax, temperature 0 greedy, chi-square tests on fixed logits and a tiny model, the
 * nucleus never left, seeds reproduce, repetition penalty), `eval` against a loss computed here
 * (infer_eval and `$MIXLM_BIN eval --json`). Not the CLI's errors (e2e/test_generate.sh) nor any
 * mixer's own step (mixers/test_mixers.c). */
#include "check.h"
#include "infer/infer.h"
#include "mixer_check.h"
#include "train/train.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- tiny models ------------------------------------------------------------------------------ */

static int make_model(struct mx_model *m, int n_layer, const char *const *specs, int T, int V, uint64_t seed)
{
    struct mx_config c;
    memset(&c, 0, sizeof c);
    c.n_layer = n_layer;
    c.n_head = 2;
    c.n_embd = 16;
    c.block_size = T;
    c.vocab_size = V;
    c.bias = 1;
    c.seed = seed;
    for (int l = 0; l < n_layer; l++)
        snprintf(c.attn[l], sizeof c.attn[l], "%s", specs[l]);
    struct mx_error err;
    if (model_create(m, &c, &err) != 0) {
        fprintf(stderr, "  model_create(%s...): %s\n", specs[0], err.msg);
        return -1;
    }
    model_init_params(m);
    /* Init weights N(0,0.02) give near-uniform attention and next-token distributions, where a
     * wrong cache or a wrong random-feature draw hardly moves a logit; scale the matrices (x20:
     * a wrong Performer draw then moves logits by ~1.7) so mistakes change tokens, and give gains
     * and biases their own values so every path carries signal. */
    struct mx_rng r;
    mx_rng_seed(&r, seed + 99);
    for (int i = 0; i < m->n_tensors; i++) {
        const struct mx_param *t = &m->tensors[i];
        float *p = m->params + t->offset;
        if (!t->trainable)
            continue;
        for (size_t k = 0; k < t->numel; k++)
            p[k] = t->ndim >= 2 ? p[k] * 20.0f : p[k] + 0.2f * mx_rng_normal(&r);
    }
    return 0;
}

static void as_run(struct mx_run *r, struct mx_model *m, long step)
{
    memset(r, 0, sizeof *r);
    r->m = *m; /* the run borrows the model; model_free(&r->m) releases it */
    r->step = step;
}

static void random_ids(int32_t *ids, int n, int V, uint64_t seed)
{
    struct mx_rng r;
    mx_rng_seed(&r, seed);
    for (int i = 0; i < n; i++)
        ids[i] = (int32_t)mx_rng_below(&r, (uint32_t)V);
}

static int argmax_f(const float *l, int V)
{
    int b = 0;
    for (int i = 1; i < V; i++)
        if (l[i] > l[b])
            b = i;
    return b;
}

/* ---- cached == uncached ----------------------------------------------------------------------- */

#define GEN_T 24
#define GEN_V 13
#define GEN_PROMPT 5
#define GEN_NEW 45 /* prompt + new = 50 > 2 * GEN_T: at least two context shifts */

static long gen(struct mx_run *r, int mode, double temperature, uint64_t seed, const int32_t *prompt,
                int32_t *out, struct infer_gen_stats *st)
{
    struct mx_sampler s = {.temperature = temperature, .top_k = 0, .top_p = 1, .repetition_penalty = 1};
    mx_rng_seed(&s.rng, seed);
    struct mx_error err;
    long n = infer_generate(r, prompt, GEN_PROMPT, GEN_NEW, &s, mode, out, NULL, NULL, st, &err);
    if (n < 0)
        fprintf(stderr, "  infer_generate: %s\n", err.msg);
    return n;
}

static int first_diff(const int32_t *a, const int32_t *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i] != b[i])
            return i;
    return -1;
}

/* CACHE vs RECOMPUTE over all GEN_NEW tokens (two shifts past the context), CACHE vs SLIDE
 * until the context is full; greedy and sampled. step = 2500 so that a mixer with a redraw
 * schedule (Performer, every 1000 steps) must use draw 2 in both paths. */
static void check_cache_equals_recompute(const char *label, const char *const *specs, int n_layer)
{
    int fails0 = check_failures;
    struct mx_model m;
    if (make_model(&m, n_layer, specs, GEN_T, GEN_V, 7) != 0) {
        check_failures++;
        return;
    }
    struct mx_run r;
    as_run(&r, &m, 2500);
    int can_step = model_can_step(&r.m);
    int32_t prompt[GEN_PROMPT], a[GEN_NEW], b[GEN_NEW], c[GEN_NEW];
    random_ids(prompt, GEN_PROMPT, GEN_V, 3);
    const int same_ctx = GEN_T - GEN_PROMPT + 1; /* tokens sampled before the first shift */
    for (int pass = 0; pass < 2; pass++) {
        double temp = pass ? 1.0 : 0.0;
        struct infer_gen_stats sa, sb, sc;
        long na = gen(&r, INFER_CACHE, temp, 11, prompt, a, &sa);
        long nb = gen(&r, INFER_RECOMPUTE, temp, 11, prompt, b, &sb);
        long nc = gen(&r, INFER_SLIDE, temp, 11, prompt, c, &sc);
        CHECK(na == GEN_NEW && nb == GEN_NEW && nc == GEN_NEW, "%s: produced %ld/%ld/%ld of %d tokens", label,
              na, nb, nc, GEN_NEW);
        if (na != GEN_NEW || nb != GEN_NEW || nc != GEN_NEW)
            break;
        CHECK(sa.mode == (can_step ? INFER_CACHE : INFER_SLIDE), "%s: cached run used mode %s", label,
              infer_mode_name(sa.mode));
        if (can_step) {
            int d = first_diff(a, b, GEN_NEW);
            CHECK(d < 0, "%s (%s): cached and recomputed generation differ first at new token %d (%d vs %d)", label,
                  temp > 0 ? "sampled" : "greedy", d, d >= 0 ? a[d] : 0, d >= 0 ? b[d] : 0);
            CHECK(sa.shifts == sb.shifts && sa.shifts >= 2, "%s: shifts %ld (cache) vs %ld (recompute)", label,
                  sa.shifts, sb.shifts);
            CHECK(sa.shift_tokens == sa.shifts * (INFER_KEEP(GEN_T) - 1), "%s: shift tokens %ld for %ld shifts",
                  label, sa.shift_tokens, sa.shifts);
            CHECK(sa.state_bytes > 0 && sa.act_bytes == 0, "%s: cache %zu B, activations %zu B", label,
                  sa.state_bytes, sa.act_bytes);
            d = first_diff(a, c, same_ctx);
            CHECK(d < 0, "%s (%s): cached and sliding generation differ at new token %d, inside the context",
                  label, temp > 0 ? "sampled" : "greedy", d);
        } else {
            int d = first_diff(a, c, GEN_NEW);
            CHECK(d < 0, "%s: the no-step fallback differs from INFER_SLIDE at token %d", label, d);
        }
        /* Sanity: sampled text is not one token repeated (which would hide bugs); greedy text of
         * a random model may well be. */
        int distinct = 0;
        for (int i = 0; i < GEN_NEW; i++)
            distinct += i > 0 && a[i] != a[i - 1];
        CHECK(temp == 0 || distinct >= 3, "%s: sampled generation is degenerate (%d changes in %d tokens)", label, distinct, GEN_NEW);
    }
    fprintf(stderr, "%s %-40s %s\n", check_failures > fails0 ? "FAIL" : "ok  ", label,
            can_step ? "cache == recompute (2 shifts), == slide within the context"
                     : "no step: falls back to full recompute over the window (slide)");
    model_free(&r.m);
}

/* The documented context policy, written out independently for greedy decoding: INFER_CACHE
 * and INFER_RECOMPUTE keep the last block_size/2 tokens when the context is full; INFER_SLIDE
 * always sees the last block_size. */
static void test_shift_policy(void)
{
    int fails0 = check_failures;
    const char *specs[2] = {"dense", "dense"};
    struct mx_model m;
    if (make_model(&m, 2, specs, GEN_T, GEN_V, 17) != 0) {
        check_failures++;
        return;
    }
    struct mx_run r;
    as_run(&r, &m, 0);
    struct mx_error err;
    int32_t prompt[GEN_PROMPT], got[GEN_NEW], seq[GEN_PROMPT + GEN_NEW];
    random_ids(prompt, GEN_PROMPT, GEN_V, 4);
    for (int slide = 0; slide < 2; slide++) {
        memcpy(seq, prompt, sizeof prompt);
        int n = GEN_PROMPT, c0 = 0;
        if (model_plan(&r.m, 1, GEN_T, &err) != 0) {
            fprintf(stderr, "  %s\n", err.msg);
            check_failures++;
            break;
        }
        for (int k = 0; k < GEN_NEW; k++) {
            if (slide)
                c0 = n > GEN_T ? n - GEN_T : 0;
            else if (n - c0 > GEN_T)
                c0 = n - GEN_T / 2;
            model_forward(&r.m, seq + c0, NULL, 1, n - c0, 0, 0);
            seq[n] = argmax_f(r.m.a.logits + (size_t)(n - c0 - 1) * GEN_V, GEN_V);
            n++;
        }
        long made = gen(&r, slide ? INFER_SLIDE : INFER_CACHE, 0.0, 1, prompt, got, NULL);
        int d = made == GEN_NEW ? first_diff(got, seq + GEN_PROMPT, GEN_NEW) : 0;
        CHECK(d < 0, "%s: greedy tokens differ from the documented context policy at new token %d",
              slide ? "slide" : "cache", d);
    }
    model_free(&r.m);
    /* A prompt longer than one prefill chunk (128 rows) in a 200-token context, then past it. */
    if (make_model(&m, 2, specs, 200, GEN_V, 18) != 0) {
        check_failures++;
        return;
    }
    as_run(&r, &m, 0);
    {
        int32_t lp[150], a[70], b[70];
        random_ids(lp, 150, GEN_V, 5);
        for (int mode = 0; mode < 2; mode++) {
            struct mx_sampler s = {.temperature = 1, .top_k = 0, .top_p = 1, .repetition_penalty = 1};
            mx_rng_seed(&s.rng, 12);
            long k = infer_generate(&r, lp, 150, 70, &s, mode ? INFER_CACHE : INFER_RECOMPUTE, mode ? a : b, NULL,
                                    NULL, NULL, &err);
            CHECK(k == 70, "long prompt: %ld tokens (%s)", k, k < 0 ? err.msg : "");
        }
        int d = first_diff(a, b, 70);
        CHECK(d < 0, "150-token prompt (two prefill chunks), context 200: cache and recompute differ at %d", d);
    }
    fprintf(stderr, "%s context policy past block_size (keep the last half / slide by one) as documented\n",
            check_failures > fails0 ? "FAIL" : "ok  ");
    model_free(&r.m);
}

static void test_cache_all_mixers(void)
{
    const char *mixed[MX_MAX_LAYERS];
    int n_mixed = 0;
    for (int i = 0; i < mixer_count(); i++) {
        const struct mixer_ops *ops = mixer_at(i);
        if (!ops->causal || !ops->test_specs || !ops->test_specs[0])
            continue;
        const char *specs[2] = {ops->test_specs[0], ops->test_specs[0]};
        check_cache_equals_recompute(ops->test_specs[0], specs, 2);
        if (n_mixed < MX_MAX_LAYERS)
            mixed[n_mixed++] = ops->test_specs[0];
    }
    /* One model with a different mixer in every layer: states laid out one after another. */
    check_cache_equals_recompute("(all mixers, one per layer)", mixed, n_mixed);
}

/* ---- window ring buffer ----------------------------------------------------------------------- */

static size_t mixer_state(const char *spec, int T_max)
{
    struct mixer m;
    struct mixer_dims d = {.C = 16, .H = 2, .T_max = T_max, .bias = 0, .layer = 0, .n_layer = 1, .seed = 1};
    struct mx_error err;
    if (mixer_create(&m, spec, &d, &err) != 0) {
        fprintf(stderr, "  mixer_create(%s): %s\n", spec, err.msg);
        return 0;
    }
    size_t n = m.ops->state_floats ? m.ops->state_floats(&m) : 0;
    mixer_destroy(&m);
    return n;
}

static void test_window_ring(void)
{
    if (!mixer_find("window")) {
        fprintf(stderr, "skip window ring buffer check: no 'window' mixer registered yet\n");
        return;
    }
    if (!mixer_find("window")->step) {
        fprintf(stderr, "FAIL: 'window' has no step: generation would recompute the window\n");
        check_failures++;
        return;
    }
    size_t s64 = mixer_state("window:w=8", 64), s4k = mixer_state("window:w=8", 4096),
           s64k = mixer_state("window:w=8", 65536);
    CHECK(s64 > 0 && s64 == s4k && s4k == s64k, "window:w=8 state grows with T_max: %zu, %zu, %zu floats at 64, "
          "4096, 65536", s64, s4k, s64k);
    /* and it grows with w, as a ring of the window's reach should */
    size_t w32 = mixer_state("window:w=32", 4096);
    CHECK(w32 > s4k, "window:w=32 state %zu not larger than w=8's %zu", w32, s4k);
    /* The check can fail: dense's KV cache does grow with T_max. */
    CHECK(mixer_state("dense", 4096) > mixer_state("dense", 64), "dense cache does not grow with T_max");
    fprintf(stderr, "ok   window ring buffer: %zu floats at T_max 64, 4096 and 65536 (dense: %zu -> %zu)\n", s64,
            mixer_state("dense", 64), mixer_state("dense", 4096));
}

/* ---- sampler ---------------------------------------------------------------------------------- */

static void softmax_d(double *p, const float *l, int V, double temperature)
{
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < V; i++)
        mx = fmax(mx, l[i] / temperature);
    for (int i = 0; i < V; i++)
        s += p[i] = exp(l[i] / temperature - mx);
    for (int i = 0; i < V; i++)
        p[i] /= s;
}

/* Upper tail of the chi-square distribution with k degrees of freedom, by the Wilson-Hilferty
 * cube-root normal approximation (accurate to a few percent of p at k >= 3, plenty for a
 * 1e-3 threshold). */
static double chi2_pvalue(double x, int k)
{
    double h = 2.0 / (9.0 * k), z = (cbrt(x / k) - (1 - h)) / sqrt(h);
    return 0.5 * erfc(z / sqrt(2.0));
}

/* Pearson's statistic of counts (N draws) against p over the categories with p > 0; a draw in a
 * category with p == 0 makes it infinite. */
static double chi2_stat(const long *count, const double *p, int V, long N, int *dof)
{
    double x = 0;
    *dof = -1;
    for (int i = 0; i < V; i++) {
        if (p[i] <= 0) {
            if (count[i])
                return INFINITY;
            continue;
        }
        double e = p[i] * (double)N;
        x += (count[i] - e) * (count[i] - e) / e;
        (*dof)++;
    }
    return x;
}

static double sample_pvalue(struct mx_sampler *s, const float *l, int V, const double *p, long N)
{
    long count[64] = {0};
    float work[2 * 64 + 16];
    for (long i = 0; i < N; i++)
        count[infer_sample(s, l, V, NULL, 0, work)]++;
    int dof;
    double x = chi2_stat(count, p, V, N, &dof);
    return isinf(x) ? 0 : chi2_pvalue(x, dof);
}

static void test_sampler(void)
{
    enum { V = 10 };
    const float l[V] = {1.0f, 2.5f, -0.5f, 0.3f, 1.7f, -2.0f, 0.9f, 2.0f, -1.0f, 0.0f};
    float work[2 * 64 + 16];
    double p[V];
    struct mx_rng g;
    mx_rng_seed(&g, 123);

    /* top-k = 1 and temperature 0 are argmax, for any temperature / top-p. */
    int bad_k = 0, bad_t = 0;
    for (int trial = 0; trial < 300; trial++) {
        float r[50];
        for (int i = 0; i < 50; i++)
            r[i] = 3.0f * mx_rng_normal(&g);
        struct mx_sampler s = {.temperature = 0.25 + 0.01 * trial, .top_k = 1, .top_p = trial % 2 ? 0.5 : 1.0,
                               .repetition_penalty = 1};
        mx_rng_seed(&s.rng, (uint64_t)trial);
        bad_k += infer_sample(&s, r, 50, NULL, 0, work) != argmax_f(r, 50);
        struct mx_sampler s0 = {.temperature = 0, .top_k = trial % 7, .top_p = 0.9, .repetition_penalty = 1};
        mx_rng_seed(&s0.rng, (uint64_t)trial);
        struct mx_rng before = s0.rng;
        bad_t += infer_sample(&s0, r, 50, NULL, 0, work) != argmax_f(r, 50);
        bad_t += memcmp(&before, &s0.rng, sizeof before) != 0; /* greedy draws nothing */
    }
    CHECK(bad_k == 0, "top-k=1 differs from argmax in %d of 300 trials", bad_k);
    CHECK(bad_t == 0, "temperature 0 differs from argmax (or drew from the rng) in %d of 300 trials", bad_t);

    /* Chi-square against the model distribution: temperature 1 and 0.7, top-k 4, 40000 draws. */
    const long N = 40000;
    struct mx_sampler s = {.temperature = 1, .top_k = 0, .top_p = 1, .repetition_penalty = 1};
    mx_rng_seed(&s.rng, 2024);
    softmax_d(p, l, V, 1.0);
    double pv = sample_pvalue(&s, l, V, p, N);
    CHECK(pv > 1e-3, "temperature 1: chi-square p-value %.2g against softmax(logits)", pv);
    fprintf(stderr, "ok   sampler: chi-square p = %.3f at temperature 1", pv);
    s.temperature = 0.7;
    softmax_d(p, l, V, 0.7);
    pv = sample_pvalue(&s, l, V, p, N);
    CHECK(pv > 1e-3, "temperature 0.7: chi-square p-value %.2g", pv);
    fprintf(stderr, ", %.3f at 0.7", pv);
    s.temperature = 1;
    s.top_k = 4;
    softmax_d(p, l, V, 1.0);
    {
        double keep = 0;
        for (int i = 0; i < V; i++) /* the 4 largest logits: 2.5, 2.0, 1.7, 1.0 */
            if (l[i] >= 1.0f)
                keep += p[i];
            else
                p[i] = 0;
        for (int i = 0; i < V; i++)
            p[i] /= keep;
    }
    pv = sample_pvalue(&s, l, V, p, N);
    CHECK(pv > 1e-3, "top-k 4: chi-square p-value %.2g against the renormalised top 4", pv);
    fprintf(stderr, ", %.3f with top-k 4", pv);
    /* The test has power: samples at temperature 1 are rejected against temperature 1.3. */
    s.top_k = 0;
    softmax_d(p, l, V, 1.3);
    pv = sample_pvalue(&s, l, V, p, N);
    CHECK(pv < 1e-6, "chi-square cannot tell temperature 1 from 1.3 (p = %.2g)", pv);
    fprintf(stderr, "; T=1 vs T=1.3 rejected, p = %.1e\n", pv);

    /* top-p: never outside the nucleus (the smallest most-likely set with mass >= p, ties at the
     * boundary included), and within it the renormalised distribution. */
    int outside = 0;
    for (int trial = 0; trial < 40; trial++) {
        float r[30];
        for (int i = 0; i < 30; i++)
            r[i] = 2.0f * mx_rng_normal(&g);
        double top_p = 0.2 + 0.02 * trial, temp = trial % 3 ? 1.0 : 0.8, q[30], sorted[30];
        softmax_d(q, r, 30, temp);
        memcpy(sorted, q, sizeof q);
        for (int i = 0; i < 30; i++) /* descending selection sort: 30 items */
            for (int j = i + 1; j < 30; j++)
                if (sorted[j] > sorted[i]) {
                    double t = sorted[i];
                    sorted[i] = sorted[j];
                    sorted[j] = t;
                }
        double acc = 0, th = 0;
        for (int i = 0; i < 30; i++) {
            acc += sorted[i];
            th = sorted[i];
            if (acc >= top_p)
                break;
        }
        struct mx_sampler sp = {.temperature = temp, .top_k = 0, .top_p = top_p, .repetition_penalty = 1};
        mx_rng_seed(&sp.rng, (uint64_t)trial + 1000);
        for (int k = 0; k < 500; k++) {
            int id = infer_sample(&sp, r, 30, NULL, 0, work);
            outside += q[id] < th * (1 - 1e-5);
        }
    }
    CHECK(outside == 0, "top-p sampled %d tokens outside the nucleus", outside);
    {
        struct mx_sampler sp = {.temperature = 1, .top_k = 0, .top_p = 0.75, .repetition_penalty = 1};
        mx_rng_seed(&sp.rng, 77);
        softmax_d(p, l, V, 1.0); /* sorted: 2.5, 2.0, 1.7, 1.0, ...: mass of the top 3 is ~0.70, top 4 ~0.80 */
        double keep = 0;
        for (int i = 0; i < V; i++)
            if (l[i] >= 1.0f)
                keep += p[i];
            else
                p[i] = 0;
        for (int i = 0; i < V; i++)
            p[i] /= keep;
        pv = sample_pvalue(&sp, l, V, p, N);
        CHECK(pv > 1e-3, "top-p 0.75: chi-square p-value %.2g against the renormalised nucleus", pv);
    }

    /* Seeds reproduce; another seed differs. */
    {
        int32_t a[40], b[40], c[40];
        struct mx_sampler sa = {.temperature = 1, .top_k = 0, .top_p = 1, .repetition_penalty = 1}, sb = sa, sc = sa;
        mx_rng_seed(&sa.rng, 5);
        mx_rng_seed(&sb.rng, 5);
        mx_rng_seed(&sc.rng, 6);
        for (int i = 0; i < 40; i++) {
            a[i] = infer_sample(&sa, l, V, NULL, 0, work);
            b[i] = infer_sample(&sb, l, V, NULL, 0, work);
            c[i] = infer_sample(&sc, l, V, NULL, 0, work);
        }
        CHECK(memcmp(a, b, sizeof a) == 0, "the same seed gave different samples");
        CHECK(memcmp(a, c, sizeof a) != 0, "seeds 5 and 6 gave the same 40 samples");
    }

    /* Repetition penalty (CTRL): a recent token's positive logit is divided, a negative one
     * multiplied; applied once per distinct id. */
    {
        struct mx_sampler sr = {.temperature = 0, .top_k = 0, .top_p = 1, .repetition_penalty = 2.0};
        int32_t recent[3] = {1, 1, 7}; /* 2.5 -> 1.25 and 2.0 -> 1.0: token 4 (1.7) wins */
        CHECK(infer_sample(&sr, l, V, recent, 3, work) == 4, "repetition penalty: greedy pick %d, expected 4",
              infer_sample(&sr, l, V, recent, 3, work));
        sr.temperature = 1;
        mx_rng_seed(&sr.rng, 9);
        for (int i = 0; i < V; i++)
            p[i] = l[i];
        float lp[V];
        for (int i = 0; i < V; i++)
            lp[i] = l[i];
        lp[1] = 2.5f / 2;
        lp[7] = 2.0f / 2;
        softmax_d(p, lp, V, 1.0);
        long count[64] = {0};
        for (long i = 0; i < N; i++)
            count[infer_sample(&sr, l, V, recent, 3, work)]++;
        int dof;
        double x = chi2_stat(count, p, V, N, &dof);
        pv = chi2_pvalue(x, dof);
        CHECK(pv > 1e-3, "repetition penalty: chi-square p-value %.2g against the penalised softmax", pv);
    }
}

/* A tiny model's next-token distribution: infer_generate (cached prefill of a 6-token prompt,
 * one new token) sampled 20000 times against softmax of model_forward's last logits. */
static void test_model_distribution(void)
{
    const char *specs[2] = {"dense", "dense"};
    struct mx_model m;
    if (make_model(&m, 2, specs, 16, GEN_V, 21) != 0) {
        check_failures++;
        return;
    }
    struct mx_run r;
    as_run(&r, &m, 0);
    struct mx_error err;
    int32_t prompt[6];
    random_ids(prompt, 6, GEN_V, 8);
    if (model_plan(&r.m, 1, 16, &err) != 0) {
        fprintf(stderr, "  %s\n", err.msg);
        check_failures++;
        model_free(&r.m);
        return;
    }
    model_forward(&r.m, prompt, NULL, 1, 6, 0, 0);
    double p[GEN_V];
    softmax_d(p, r.m.a.logits + 5 * GEN_V, GEN_V, 1.0);
    double pmax = 0;
    for (int i = 0; i < GEN_V; i++)
        pmax = fmax(pmax, p[i]);
    const long N = 20000;
    long count[64] = {0};
    struct mx_sampler s = {.temperature = 1, .top_k = 0, .top_p = 1, .repetition_penalty = 1};
    mx_rng_seed(&s.rng, 31337);
    for (long i = 0; i < N; i++) {
        int32_t id;
        if (infer_generate(&r, prompt, 6, 1, &s, i % 2 ? INFER_CACHE : INFER_RECOMPUTE, &id, NULL, NULL, NULL,
                           &err) != 1) {
            fprintf(stderr, "  infer_generate: %s\n", err.msg);
            check_failures++;
            break;
        }
        count[id]++;
    }
    int dof;
    double x = chi2_stat(count, p, GEN_V, N, &dof), pv = chi2_pvalue(x, dof);
    CHECK(pv > 1e-3, "tiny model: chi-square %.1f on %d dof (p = %.2g) against softmax of model_forward", x, dof,
          pv);
    CHECK(pmax < 0.9, "tiny model's next-token distribution is degenerate (max p %.3f)", pmax);
    fprintf(stderr, "ok   tiny model next-token distribution: chi-square %.1f on %d dof, p = %.3f (max p %.2f)\n", x,
            dof, pv, pmax);
    model_free(&r.m);
}

/* ---- eval ------------------------------------------------------------------------------------- */

/* Mean loss over the windows of [begin, end) computed here, one window at a time in double:
 * window k covers inputs [begin + k*stride, + T); the first scores every target, later ones their
 * last `stride`. */
static double reference_loss(struct mx_model *m, const int32_t *ids, size_t begin, size_t end, int T, int stride,
                             size_t *scored)
{
    int V = m->cfg.vocab_size;
    double total = 0;
    *scored = 0;
    for (size_t s0 = begin; s0 + (size_t)T + 1 <= end; s0 += (size_t)stride) {
        model_forward(m, ids + s0, NULL, 1, T, 0, 0);
        for (int t = s0 == begin ? 0 : T - stride; t < T; t++) {
            const float *l = m->a.logits + (size_t)t * V;
            double mx = -INFINITY, s = 0;
            for (int v = 0; v < V; v++)
                mx = fmax(mx, l[v]);
            for (int v = 0; v < V; v++)
                s += exp(l[v] - mx);
            total += mx + log(s) - l[ids[s0 + t + 1]];
            (*scored)++;
        }
    }
    return total / (double)*scored;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

static double json_num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_eval(void)
{
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/mixlm_infer_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        check_failures++;
        return;
    }
    /* A run directory built through the library: char tokenizer (with a two-byte character, so
     * bytes != chars), checkpoint with the training options, tokens.bin. */
    const char *text = "To be, or not to be, that is the question: whether 'tis nobler in the mind "
                       "to suffer the slings and arrows of outrageous fortune, or to take arms "
                       "against a sea of troubles and by opposing end them. Caf\xc3\xa9 au lait. ";
    struct mx_error err;
    struct tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t n_text = 0, n = 0;
    char buf[4096] = "";
    for (int i = 0; i < 5; i++) /* ~1100 characters */
        strcat(buf, text);
    n_text = strlen(buf);
    struct mx_model m;
    struct mx_run r = {0};
    cJSON *tj = NULL, *train = NULL;
    if (tok_create_char(&tok, buf, n_text, &err) != 0 || tok_encode(tok, buf, n_text, &ids, &n, &err) != 0) {
        fprintf(stderr, "  tokenizer: %s\n", err.msg);
        check_failures++;
        goto out;
    }
    const char *specs[2] = {"dense", "window:w=5"};
    if (make_model(&m, 2, specs, 16, tok_vocab_size(tok), 5) != 0) {
        check_failures++;
        goto out;
    }
    struct mx_train_opts o;
    train_opts_default(&o);
    tj = tok_to_json(tok);
    train = cJSON_CreateObject();
    cJSON_AddNumberToObject(train, "step", 0);
    cJSON_AddItemToObject(train, "opts", train_opts_to_json(&o));
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct mx_ckpt_extra x = {.tokenizer = tj, .train = train};
    int wrote = ckpt_write(path, &m, &x, &err) == 0;
    snprintf(path, sizeof path, "%s/tokens.bin", dir);
    wrote = wrote && data_write_tokens(path, ids, n, tok_vocab_size(tok), &err) == 0;
    if (!wrote || model_plan(&m, 1, 16, &err) != 0) {
        fprintf(stderr, "  run setup: %s\n", err.msg);
        check_failures++;
        model_free(&m);
        goto out;
    }
    size_t begin;
    data_split(n, o.val_frac, &begin);

    /* infer_eval on the loaded run, non-overlapping and strided, batched: equals the loss computed
     * here window by window. */
    if (infer_load_run(&r, dir, &err) != 0) {
        fprintf(stderr, "  infer_load_run: %s\n", err.msg);
        check_failures++;
        model_free(&m);
        goto out;
    }
    struct mx_tokfile f;
    if (data_open(&f, path, &err) != 0) {
        fprintf(stderr, "  data_open: %s\n", err.msg);
        check_failures++;
        model_free(&m);
        goto out;
    }
    const int cases[][3] = {{16, 16, 1}, {16, 16, 3}, {16, 5, 4}, {8, 3, 2}, {16, 1, 7}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int T = cases[c][0], stride = cases[c][1], B = cases[c][2];
        for (int whole = 0; whole < 2; whole++) {
            size_t b0 = whole ? 0 : begin, scored;
            double ref = reference_loss(&m, ids, b0, n, T, stride, &scored);
            struct mx_eval_result res;
            if (infer_eval(&r, &f, b0, n, T, stride, B, &res, &err) != 0) {
                fprintf(stderr, "  infer_eval T=%d stride=%d: %s\n", T, stride, err.msg);
                check_failures++;
                continue;
            }
            CHECK(fabs(res.loss - ref) <= 1e-5 * ref && res.tokens == scored,
                  "eval T=%d stride=%d B=%d over [%zu,%zu): loss %.7f on %zu tokens, expected %.7f on %zu", T, stride,
                  B, b0, n, res.loss, res.tokens, ref, scored);
            CHECK(fabs(res.ppl - exp(res.loss)) <= 1e-9 * res.ppl, "ppl %.6f != exp(loss)", res.ppl);
            /* Char tokenizer: one token per character, so bits/char = loss/ln2 exactly; bytes
             * count the two-byte character twice. */
            double bpc = res.loss / M_LN2 * (double)res.tokens / (double)res.chars;
            double bpb = res.loss / M_LN2 * (double)res.tokens / (double)res.bytes;
            CHECK(res.chars == res.tokens, "char model: %zu chars for %zu tokens", res.chars, res.tokens);
            CHECK(fabs(res.bits_per_char - bpc) <= 1e-9 * bpc && fabs(res.bits_per_char - res.loss / M_LN2) <= 1e-9 * bpc,
                  "bits/char %.9f, expected loss/ln2 = %.9f", res.bits_per_char, bpc);
            CHECK(fabs(res.bits_per_byte - bpb) <= 1e-9 * bpb, "bits/byte %.9f, expected %.9f", res.bits_per_byte,
                  bpb);
            if (whole)
                CHECK(res.bytes > res.chars, "the scored text holds two-byte characters: %zu bytes, %zu chars",
                      res.bytes, res.chars);
        }
    }
    /* Bad windows are errors, not clamps. */
    struct mx_eval_result res;
    CHECK(infer_eval(&r, &f, begin, n, 32, 32, 1, &res, &err) != 0 && strstr(err.msg, "context"),
          "--context 32 on a 16-token model was accepted");
    CHECK(infer_eval(&r, &f, begin, n, 16, 17, 1, &res, &err) != 0 && strstr(err.msg, "--stride"),
          "--stride 17 > --context 16 was accepted");
    data_close(&f);

    /* The CLI on the run's validation split: `mixlm eval DIR --json --context 16 --stride 5`. */
    const char *bin = getenv("MIXLM_BIN");
    if (!bin) {
        fprintf(stderr, "note: MIXLM_BIN not set; `mixlm eval --json` not checked\n");
    } else {
        size_t scored;
        double ref = reference_loss(&m, ids, begin, n, 16, 5, &scored);
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "'%s' eval '%s' --json --context 16 --stride 5 --batch 3 --threads 1", bin, dir);
        FILE *p = popen(cmd, "r");
        char out[8192];
        size_t len = p ? fread(out, 1, sizeof out - 1, p) : 0;
        int st = p ? pclose(p) : -1;
        out[len] = 0;
        cJSON *j = cJSON_Parse(out);
        CHECK(st == 0 && j, "`%s` exited %d with: %s", cmd, st, out);
        if (j) {
            double loss = json_num(j, "loss"), toks = json_num(j, "tokens"), bpc = json_num(j, "bits_per_char");
            CHECK(fabs(loss - ref) <= 1e-5 * ref && toks == (double)scored,
                  "mixlm eval --json: loss %.7f on %.0f tokens, expected %.7f on %zu", loss, toks, ref, scored);
            CHECK(fabs(bpc - loss / M_LN2) <= 1e-6 * bpc, "mixlm eval --json: bits_per_char %.7f, loss/ln2 %.7f",
                  bpc, loss / M_LN2);
            fprintf(stderr, "ok   eval: infer_eval and `mixlm eval --json` match the loss computed here (%.5f nats, "
                            "%zu tokens, stride 5)\n", loss, scored);
        }
        cJSON_Delete(j);
    }
    model_free(&m);
out:
    if (r.tok || r.m.params)
        infer_free_run(&r);
    tok_free(tok);
    mx_free(ids);
    cJSON_Delete(tj);
    cJSON_Delete(train);
    rm_dir(dir);
}

static int case_cache_all_mixers(void)
{
    test_cache_all_mixers();
    return 0;
}

static int case_shift_policy(void)
{
    test_shift_policy();
    return 0;
}

static int case_window_ring(void)
{
    test_window_ring();
    return 0;
}

static int case_sampler(void)
{
    test_sampler();
    return 0;
}

static int case_model_distribution(void)
{
    test_model_distribution();
    return 0;
}

static int case_eval(void)
{
    test_eval();
    return 0;
}

/* A run whose tokenizer does not cover the model's vocabulary (or has ids the model never
 * produces) is refused at load, naming both sizes: never sampled ids dropped in generation. */
static int case_vocab_mismatch(void)
{
    const int vocabs[2] = {5, 300}; /* smaller and larger than the byte tokenizer's 256 */
    for (int k = 0; k < 2; k++) {
        char dir[64] = "/tmp/mixlm_vocab_XXXXXX", path[128];
        if (!mkdtemp(dir))
            return check_skip("mkdtemp failed");
        const char *specs[1] = {"dense"};
        struct mx_model m;
        struct mx_error err = {{0}};
        if (make_model(&m, 1, specs, 8, vocabs[k], 3) != 0)
            return 1;
        cJSON *tj = cJSON_Parse("{\"type\":\"byte\"}");
        cJSON *train = cJSON_Parse("{\"step\":1}");
        struct mx_ckpt_extra x = {.tokenizer = tj, .train = train};
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        CHECK(ckpt_write(path, &m, &x, &err) == 0, "ckpt_write: %s", err.msg);
        struct mx_run r;
        int rc = infer_load_run(&r, dir, &err);
        CHECK(rc != 0, "vocab %d with a 256-token tokenizer loaded", vocabs[k]);
        if (rc == 0)
            infer_free_run(&r);
        char want[64];
        snprintf(want, sizeof want, "has 256 tokens but the model's vocab_size is %d", vocabs[k]);
        CHECK(rc == 0 || strstr(err.msg, want), "message lacks '%s': %s", want, err.msg);
        if (rc)
            fprintf(stderr, "  vocab %d -> %s\n", vocabs[k], err.msg);
        cJSON_Delete(tj);
        cJSON_Delete(train);
        model_free(&m);
        unlink(path);
        rmdir(dir);
    }
    return 0;
}

/* Streaming UTF-8 out of pieces: a character split over pieces comes out whole once its last
 * byte arrives; bytes that can never complete become U+FFFD, one per maximal subpart. */
static int case_utf8_stream(void)
{
    static const struct {
        const char *pieces[5];
        const char *want;
    } cases[] = {
        {{"a\xC3", "\xA9" "b"}, "a\xC3\xA9" "b"},                                    /* é over two pieces */
        {{"\xF0", "\x9F", "\x98", "\x80"}, "\xF0\x9F\x98\x80"},                    /* emoji, byte by byte */
        {{"\xC3", "A"}, "\xEF\xBF\xBD" "A"},                                      /* start cut off */
        {{"\xFF\x80x"}, "\xEF\xBF\xBD\xEF\xBF\xBDx"},                               /* never-valid bytes */
        {{"\xE0\x80"}, "\xEF\xBF\xBD\xEF\xBF\xBD"},                                /* overlong */
        {{"\xED\xA0\x80"}, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},                 /* surrogate */
        {{"\xE2\x82", "\xC3\xA9"}, "\xEF\xBF\xBD\xC3\xA9"},                        /* cut, then a char */
        {{"ok\xE2\x82"}, "ok\xEF\xBF\xBD"},                                      /* cut off by the end */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct infer_utf8 u = {0};
        char out[256];
        size_t w = 0;
        for (int k = 0; k < 5 && cases[i].pieces[k]; k++) {
            size_t before = w;
            w += infer_utf8_feed(&u, cases[i].pieces[k], strlen(cases[i].pieces[k]), out + w);
            /* Nothing of a started character is written before it completes. */
            for (size_t j = before; j < w; j++)
                CHECK(!((unsigned char)out[j] >= 0xC0 && j + 1 == w), "case %zu: a lead byte ended a write", i);
        }
        w += infer_utf8_flush(&u, out + w);
        CHECK(w == strlen(cases[i].want) && !memcmp(out, cases[i].want, w), "case %zu: got %zu bytes, want %zu", i, w,
              strlen(cases[i].want));
    }
    return 0;
}

int main(int argc, char **argv)
{
    /* One thread: at these sizes every OpenMP region costs more than its work (futex wake-ups
     * dominated the run time with two). */
    mx_set_threads(1);
    static const struct check_case cases[] = {
        {"cache_all_mixers", case_cache_all_mixers},
        {"shift_policy", case_shift_policy},
        {"window_ring", case_window_ring},
        {"sampler", case_sampler},
        {"model_distribution", case_model_distribution},
        {"eval", case_eval},
        {"vocab_mismatch", case_vocab_mismatch},
        {"utf8_stream", case_utf8_stream},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
