/* linear_attn.c — causal linear attention ("linear"), Katharopoulos et al. 2020, "Transformers
 * are RNNs": φ(x) = elu(x) + 1 on queries and keys, o_t = φ(q_t)ᵀS_t / (φ(q_t)ᵀz_t + ε) through
 * the chunked prefix-sum engine (kernel_attn.c); generation keeps S and z per head (O(1) in t).
 * Not softmax attention and not an approximation of it: a different attention. O(T·D²) time. */
#include "attention/kernel_attn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* WHY ε = 1e-6 (the paper's value): φ > 0, so the denominator is positive in exact arithmetic,
 * but elu(x)+1 = exp(x) underflows to 0 for x below about -104, and a row whose every φ(q)·φ(k)
 * underflows would give 0/0. With the guard such a row gives 0; for ordinary activations the
 * denominator is O(t) and ε changes nothing visible. */
#define LINEAR_EPS 1e-6f

struct linear_cfg {
    struct kattn_map map;
};

static void linear_map_forward(const void *ctx, float *phi, float *lscale, const float *x, int L, int D,
                               int key, float *tmp)
{
    (void)ctx, (void)lscale, (void)key, (void)tmp;
    size_t n = (size_t)L * D;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float e = kattn_expf(x[i] < 0.0f ? x[i] : 0.0f);
        phi[i] = x[i] > 0.0f ? x[i] + 1.0f : e;
    }
}

static void linear_map_backward(const void *ctx, float *dx, const float *dphi, const float *phi,
                                const float *x, int L, int D, int key, float *tmp)
{
    (void)ctx, (void)key, (void)tmp;
    size_t n = (size_t)L * D;
#pragma omp simd
    for (size_t i = 0; i < n; i++) /* φ'(x) = 1 for x > 0, exp(x) = φ(x) otherwise */
        dx[i] += dphi[i] * (x[i] > 0.0f ? 1.0f : phi[i]);
}

static int linear_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    long c;
    if (mixer_kv_parse(&kv, "linear", args, err) != 0 ||
        mixer_kv_int(&kv, "linear", "c", 64, 1, 4096, &c, err) != 0 ||
        mixer_kv_finish(&kv, "linear", "c (chunk rows, default 64)", err) != 0)
        return -1;
    struct linear_cfg *cfg = mx_xcalloc(sizeof *cfg);
    cfg->map.F = m->D;
    cfg->map.chunk = (int)c;
    cfg->map.eps = LINEAR_EPS;
    cfg->map.scaled = 0;
    cfg->map.ctx = cfg;
    cfg->map.forward = linear_map_forward;
    cfg->map.backward = linear_map_backward;
    m->cfg = cfg;
    snprintf(m->spec, sizeof m->spec, "linear:c=%ld", c);
    return 0;
}

static void linear_destroy(struct mixer *m)
{
    mx_free(m->cfg);
}

static const struct kattn_map *lmap(const struct mixer *m)
{
    return &((const struct linear_cfg *)m->cfg)->map;
}

static size_t linear_saved(const struct mixer *m, int B, int T)
{
    return kattn_saved_floats(lmap(m), B, m->H, T);
}

static size_t linear_work(const struct mixer *m, int B, int T)
{
    return kattn_work_floats(lmap(m), B, m->H, T, m->D);
}

static void linear_core_forward(const struct mixer *m, float *o, float *saved, float *work, const float *q,
                                const float *k, const float *v, int B, int T)
{
    kattn_forward(lmap(m), o, saved, work, q, k, v, B, m->H, T, m->D);
}

static void linear_core_backward(const struct mixer *m, float *dq, float *dk, float *dv, float *work,
                                 const float *dout, const float *o, const float *saved, const float *q,
                                 const float *k, const float *v, int B, int T)
{
    kattn_backward(lmap(m), dq, dk, dv, work, dout, o, saved, q, k, v, B, m->H, T, m->D);
}

static size_t linear_state(const struct mixer *m)
{
    return kattn_state_floats(lmap(m), m->H, m->D);
}

static void linear_core_step(const struct mixer *m, float *o_t, float *state, const float *q_t,
                             const float *k_t, const float *v_t, int t)
{
    kattn_step(lmap(m), o_t, state, q_t, k_t, v_t, m->H, m->D, t);
}

static const struct attn_core linear_core = {
    .saved_floats = linear_saved,
    .work_floats = linear_work,
    .forward = linear_core_forward,
    .backward = linear_core_backward,
    .state_floats = linear_state,
    .step = linear_core_step,
};

/* c=3 crosses several chunks at T=20 with a partial last chunk (and the prefix check's 11). */
static const char *const linear_tests[] = {"linear", "linear:c=3", NULL};

const struct mixer_ops attn_linear_ops = {
    .name = "linear",
    .summary =
        "linear[:c=64] — causal linear attention, phi = elu+1 (Katharopoulos et al. 2020); "
        "c = chunk rows for the BLAS blocks (same math for any c, round-off aside); O(T D^2) time, O(1) "
        "state per token in generation",
    .causal = 1,
    .test_specs = linear_tests,
    .parse = linear_parse,
    .destroy = linear_destroy,
    .tensors = attn_tensors,
    .init = attn_init,
    .saved_floats = attn_saved_floats,
    .scratch_floats = attn_scratch_floats,
    .forward = attn_forward,
    .backward = attn_backward,
    .state_floats = attn_state_floats,
    .step = attn_step,
    .core = &linear_core,
};
