/* attn_common.c — the attention family's shared path: QKV projection (separate, or shared-QK
 * with keys = L2-normalised queries), head split, the core (q,k,v -> o, with the mixer's extra
 * parameters), head merge, output projection; forward, backward and single-token step. Also
 * the naive masked reference core used by tests, the core-only benchmark entry points and the
 * FLOP count of exact attention over listed pairs. Not an attention algorithm itself. */
#include "attention/attn_common.h"
#include "attention/mixer_internal.h"
#include "nn/nn.h"

#include <math.h>
#include <string.h>

static int qkv_rows(const struct mixer *m) /* rows of c_attn per channel: 3, or 2 shared-QK */
{
    return m->ops->core->shared_qk ? 2 : 3;
}

void attn_tensors_add(const struct mixer *m, struct mx_param *out, int *n, size_t *at)
{
    int C = m->C, R = qkv_rows(m);
    mx_param_add(out, n, at, "c_attn.weight", 2, R * C, C, 1, 1);
    if (m->bias)
        mx_param_add(out, n, at, "c_attn.bias", 1, R * C, 0, 0, 1);
    mx_param_add(out, n, at, "c_proj.weight", 2, C, C, 1, 1);
    if (m->bias)
        mx_param_add(out, n, at, "c_proj.bias", 1, C, 0, 0, 1);
}

int attn_tensors(const struct mixer *m, struct mx_param *out)
{
    int n = 0;
    size_t at = 0;
    attn_tensors_add(m, out, &n, &at);
    return n;
}

size_t attn_param_floats(const struct mixer *m)
{
    int n = 0;
    size_t at = 0;
    attn_tensors_add(m, NULL, &n, &at);
    return at;
}

struct attn_params {
    const float *w_attn, *b_attn, *w_proj, *b_proj;
    const float *xp; /* the core's extra parameters, after the attention tensors */
};

/* The one place that knows where the attention tensors live (forward, backward, step, init). */
static struct attn_params attn_bind(const struct mixer *m, const float *params)
{
    size_t C = (size_t)m->C, R = (size_t)qkv_rows(m);
    struct attn_params p;
    p.w_attn = params;
    params += R * C * C;
    p.b_attn = m->bias ? params : NULL;
    params += m->bias ? R * C : 0;
    p.w_proj = params;
    params += C * C;
    p.b_proj = m->bias ? params : NULL;
    params += m->bias ? C : 0;
    p.xp = params;
    return p;
}

void attn_init(const struct mixer *m, float *params, struct mx_rng *rng)
{
    size_t C = (size_t)m->C, R = (size_t)qkv_rows(m);
    struct attn_params p = attn_bind(m, params);
    mx_rng_fill_normal(rng, (float *)p.w_attn, R * C * C, 0.02f);
    if (p.b_attn)
        memset((float *)p.b_attn, 0, R * C * sizeof(float));
    mx_rng_fill_normal(rng, (float *)p.w_proj, C * C, 0.02f / sqrtf(2.0f * (float)m->n_layer));
    if (p.b_proj)
        memset((float *)p.b_proj, 0, C * sizeof(float));
}

static size_t core_saved(const struct mixer *m, int B, int T)
{
    return m->ops->core->saved_floats ? m->ops->core->saved_floats(m, B, T) : 0;
}

static size_t core_work(const struct mixer *m, int B, int T)
{
    return m->ops->core->work_floats ? m->ops->core->work_floats(m, B, T) : 0;
}

size_t attn_saved_floats(const struct mixer *m, int B, int T)
{
    /* q, k, v and o per head, then the core's own. */
    return 4 * (size_t)B * T * m->C + core_saved(m, B, T);
}

size_t attn_scratch_floats(const struct mixer *m, int B, int T)
{
    return 6 * (size_t)B * T * m->C + core_work(m, B, T);
}

void attn_forward(const struct mixer *m, float *y, float *saved, const float *x,
                  const float *params, int B, int T)
{
    MX_ASSERT(T >= 1 && T <= m->T_max);
    const struct attn_core *core = m->ops->core;
    size_t BTC = (size_t)B * T * m->C;
    int R = qkv_rows(m);
    struct attn_params p = attn_bind(m, params);
    float *q = saved, *k = q + BTC, *v = k + BTC, *o = v + BTC, *csaved = o + BTC; /* (B,H,T,D) */
    float *qkv = m->scratch;          /* (B,T,3C) or (B,T,2C) */
    float *merged = qkv + 3 * BTC;    /* (B,T,C) */
    float *work = m->scratch + 6 * BTC;
    mx_linear_forward(qkv, x, p.w_attn, p.b_attn, B * T, m->C, R * m->C);
    attn_split_heads(q, k, v, qkv, B, T, m->H, m->D, core->shared_qk);
    if (m->rope && !m->rope_in_core) { /* shared-QK: k = q/|q| rotated = (rotated q)/|q|, the same thing */
        attn_rope_apply(q, m->rope, B * m->H, T, m->D, 0, 0);
        attn_rope_apply(k, m->rope, B * m->H, T, m->D, 0, 0);
    }
    core->forward(m, o, csaved, work, q, k, v, p.xp, B, T);
    attn_merge_heads(merged, o, B, T, m->H, m->D);
    mx_linear_forward(y, merged, p.w_proj, p.b_proj, B * T, m->C, m->C);
}

void attn_backward(const struct mixer *m, float *dx, float *dparams, const float *dy,
                   const float *saved, const float *x, const float *params, int B, int T)
{
    const struct attn_core *core = m->ops->core;
    size_t C = (size_t)m->C, BTC = (size_t)B * T * C, R = (size_t)qkv_rows(m);
    struct attn_params p = attn_bind(m, params);
    float *dw_attn = dparams, *db_attn = m->bias ? dw_attn + R * C * C : NULL;
    float *dw_proj = dw_attn + R * C * C + (m->bias ? R * C : 0);
    float *db_proj = m->bias ? dw_proj + C * C : NULL;
    float *dxp = dparams + (p.xp - params);
    const float *q = saved, *k = q + BTC, *v = k + BTC, *o = v + BTC, *csaved = o + BTC;
    float *merged = m->scratch;        /* (B,T,C) */
    float *dmerged = merged + BTC;     /* (B,T,C) */
    float *dout = dmerged + BTC;       /* (B,H,T,D) */
    float *dq = dout + BTC, *dk = dq + BTC, *dv = dk + BTC; /* (B,H,T,D) */
    float *dqkv = m->scratch;          /* (B,T,3C), reuses merged..dout once they are spent */
    float *work = m->scratch + 6 * BTC;

    attn_merge_heads(merged, o, B, T, m->H, m->D);
    mx_linear_backward_set(dmerged, dw_proj, db_proj, dy, merged, p.w_proj, B * T, m->C, m->C);
    attn_split_out(dout, dmerged, B, T, m->H, m->D);
    core->backward(m, dq, dk, dv, dxp, work, dout, o, csaved, q, k, v, p.xp, B, T);
    if (m->rope && !m->rope_in_core) { /* the rotation is orthogonal: its gradient is the inverse rotation */
        attn_rope_apply(dq, m->rope, B * m->H, T, m->D, 0, 1);
        if (!core->shared_qk) /* shared-QK cores fold the key path into dq */
            attn_rope_apply(dk, m->rope, B * m->H, T, m->D, 0, 1);
    }
    attn_merge_qkv(dqkv, dq, dk, dv, B, T, m->H, m->D, core->shared_qk);
    mx_linear_backward(dx, dw_attn, db_attn, dqkv, x, p.w_attn, B * T, m->C, (int)R * m->C);
}

int mixer_core_forward(const struct mixer *m, float *saved, int B, int T)
{
    if (m->ops->forward != attn_forward || !m->ops->core)
        return -1;
    size_t BTC = (size_t)B * T * m->C;
    float *q = saved, *k = q + BTC, *v = k + BTC, *o = v + BTC;
    /* Benchmarks run without parameters: cores with extra parameters (low-rank) have none. */
    if (attn_param_floats(m) != mixer_n_params(m))
        return -1;
    m->ops->core->forward(m, o, o + BTC, m->scratch + 6 * BTC, q, k, v, NULL, B, T);
    return 0;
}

int mixer_core_backward(const struct mixer *m, const float *saved, const float *dout, int B, int T)
{
    if (m->ops->backward != attn_backward || !m->ops->core)
        return -1;
    if (attn_param_floats(m) != mixer_n_params(m))
        return -1;
    size_t BTC = (size_t)B * T * m->C;
    const float *q = saved, *k = q + BTC, *v = k + BTC, *o = v + BTC;
    float *dq = m->scratch + 3 * BTC; /* where attn_backward keeps them */
    m->ops->core->backward(m, dq, dq + BTC, dq + 2 * BTC, NULL, m->scratch + 6 * BTC, dout, o,
                           o + BTC, q, k, v, NULL, B, T);
    return 0;
}

size_t attn_state_floats(const struct mixer *m)
{
    const struct attn_core *core = m->ops->core;
    if (!core->step)
        return 0;
    return 8 * (size_t)m->C + core->state_floats(m);
}

void attn_step(const struct mixer *m, float *y_t, float *state, const float *x_t,
               const float *params, int t)
{
    const struct attn_core *core = m->ops->core;
    MX_ASSERT(core->step && t >= 0 && t < m->T_max);
    size_t C = (size_t)m->C;
    struct attn_params p = attn_bind(m, params);
    float *qkv = state, *q = qkv + 3 * C, *k = q + C, *v = k + C, *o = v + C, *merged = o + C;
    float *cstate = state + 8 * C;
    mx_linear_forward(qkv, x_t, p.w_attn, p.b_attn, 1, m->C, qkv_rows(m) * m->C);
    attn_split_heads(q, k, v, qkv, 1, 1, m->H, m->D, core->shared_qk);
    if (m->rope && !m->rope_in_core) {
        attn_rope_apply(q, m->rope, m->H, 1, m->D, t, 0);
        attn_rope_apply(k, m->rope, m->H, 1, m->D, t, 0);
    }
    core->step(m, o, cstate, q, k, v, p.xp, t);
    attn_merge_heads(merged, o, 1, 1, m->H, m->D);
    mx_linear_forward(y_t, merged, p.w_proj, p.b_proj, 1, m->C, m->C);
}

float *attn_rope_table(int T_max, int D, struct mx_error *err)
{
    MX_ASSERT(T_max >= 1 && D >= 2 && D % 2 == 0);
    size_t half = (size_t)D / 2;
    float *tab = mx_try_calloc((size_t)T_max * half * 2 * sizeof(float), "the rotary position table", err);
    if (!tab)
        return NULL;
    for (size_t i = 0; i < half; i++) {
        double theta = pow(10000.0, -2.0 * (double)i / D);
        for (size_t t = 0; t < (size_t)T_max; t++) {
            double a = (double)t * theta;
            tab[(t * half + i) * 2] = (float)cos(a);
            tab[(t * half + i) * 2 + 1] = (float)sin(a);
        }
    }
    return tab;
}

void attn_rope_apply(float *x, const float *table, int BH, int T, int D, int t0, int inverse)
{
    const size_t half = (size_t)D / 2, rows = (size_t)BH * T;
    const float sg = inverse ? -1.0f : 1.0f;
    /* Rows are independent: parallel over them when there is enough work (training), serial
     * for a step (one row per head). */
#pragma omp parallel for schedule(static) if (rows * half >= 16384)
    for (size_t rt = 0; rt < rows; rt++) {
        float *row = x + rt * D;
        const float *cs = table + (size_t)(t0 + (int)(rt % (size_t)T)) * half * 2;
        for (size_t i = 0; i < half; i++) {
            float c = cs[2 * i], s = sg * cs[2 * i + 1];
            float a = row[2 * i], b = row[2 * i + 1];
            row[2 * i] = a * c - b * s;
            row[2 * i + 1] = a * s + b * c;
        }
    }
}

void attn_pairs_flops(double n_pairs, int D, double *fwd, double *bwd)
{
    double f = n_pairs * (4.0 * D + 5.0);
    *fwd = f;
    *bwd = 2.5 * f;
}

/* ---- layout ----------------------------------------------------------------------------- */

void attn_split_heads(float *q, float *k, float *v, const float *qkv, int B, int T, int H, int D,
                      int shared_qk)
{
    size_t C = (size_t)H * D, R = shared_qk ? 2 : 3;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *row = qkv + ((size_t)b * T + t) * R * C;
            for (int h = 0; h < H; h++) {
                size_t dst = (((size_t)b * H + h) * T + t) * D;
                memcpy(q + dst, row + (size_t)h * D, D * sizeof(float));
                memcpy(v + dst, row + (R - 1) * C + (size_t)h * D, D * sizeof(float));
                if (!shared_qk) {
                    memcpy(k + dst, row + C + (size_t)h * D, D * sizeof(float));
                    continue;
                }
                float n2 = ATTN_QK_NORM_EPS;
                for (int d = 0; d < D; d++)
                    n2 += q[dst + d] * q[dst + d];
                const float inv = 1.0f / sqrtf(n2);
                for (int d = 0; d < D; d++)
                    k[dst + d] = q[dst + d] * inv;
            }
        }
}

void attn_merge_qkv(float *dqkv, const float *dq, const float *dk, const float *dv, int B, int T,
                    int H, int D, int shared_qk)
{
    size_t C = (size_t)H * D, R = shared_qk ? 2 : 3;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *row = dqkv + ((size_t)b * T + t) * R * C;
            for (int h = 0; h < H; h++) {
                size_t src = (((size_t)b * H + h) * T + t) * D;
                memcpy(row + (size_t)h * D, dq + src, D * sizeof(float));
                if (!shared_qk)
                    memcpy(row + C + (size_t)h * D, dk + src, D * sizeof(float));
                memcpy(row + (R - 1) * C + (size_t)h * D, dv + src, D * sizeof(float));
            }
        }
}

void attn_merge_heads(float *y, const float *o, int B, int T, int H, int D)
{
    size_t C = (size_t)H * D;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++)
                memcpy(y + ((size_t)b * T + t) * C + (size_t)h * D,
                       o + (((size_t)b * H + h) * T + t) * D, D * sizeof(float));
}

void attn_split_out(float *o, const float *y, int B, int T, int H, int D)
{
    size_t C = (size_t)H * D;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++)
                memcpy(o + (((size_t)b * H + h) * T + t) * D,
                       y + ((size_t)b * T + t) * C + (size_t)h * D, D * sizeof(float));
}

/* ---- the naive reference ------------------------------------------------------------------
 * Two passes per row, no T-long temporary: pass 1 finds the row max and the sum of
 * exponentials online; pass 2 accumulates softmax-weighted values. Doubles for the sums so
 * the reference is more accurate than anything it checks. */

static float dot(const float *a, const float *b, int D)
{
    float s = 0;
    for (int d = 0; d < D; d++)
        s += a[d] * b[d];
    return s;
}

void attn_masked_ref_forward(float *o, float *lse, const float *q, const float *k, const float *v,
                             int B, int H, int T, int D, attn_mask_fn allowed, const void *ctx)
{
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t base = ((size_t)b * H + h) * T;
            const float *Q = q + base * D, *K = k + base * D, *V = v + base * D;
            float *O = o + base * D;
            for (int i = 0; i < T; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= i; j++) {
                    if (allowed && !allowed(ctx, h, i, j))
                        continue;
                    double s = (double)dot(Q + (size_t)i * D, K + (size_t)j * D, D) * scale;
                    if (s > mx) {
                        sum = sum * exp(mx - s) + 1.0;
                        mx = s;
                    } else {
                        sum += exp(s - mx);
                    }
                }
                float *out = O + (size_t)i * D;
                memset(out, 0, D * sizeof(float));
                if (sum == 0) {
                    lse[base + i] = -INFINITY;
                    continue;
                }
                double l = mx + log(sum);
                lse[base + i] = (float)l;
                for (int j = 0; j <= i; j++) {
                    if (allowed && !allowed(ctx, h, i, j))
                        continue;
                    double s = (double)dot(Q + (size_t)i * D, K + (size_t)j * D, D) * scale;
                    float pr = (float)exp(s - l);
                    for (int d = 0; d < D; d++)
                        out[d] += pr * V[(size_t)j * D + d];
                }
            }
        }
}

void attn_masked_ref_backward(float *dq, float *dk, float *dv, const float *dout, const float *o,
                              const float *lse, const float *q, const float *k, const float *v,
                              int B, int H, int T, int D, attn_mask_fn allowed, const void *ctx)
{
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t base = ((size_t)b * H + h) * T;
            const float *Q = q + base * D, *K = k + base * D, *V = v + base * D;
            const float *O = o + base * D, *dO = dout + base * D;
            float *dQ = dq + base * D, *dK = dk + base * D, *dV = dv + base * D;
            for (int i = 0; i < T; i++) {
                float l = lse[base + i];
                if (isinf(l))
                    continue;
                const float *qi = Q + (size_t)i * D, *doi = dO + (size_t)i * D;
                float Di = dot(doi, O + (size_t)i * D, D); /* Σ_j p_ij (dO_i·v_j) */
                for (int j = 0; j <= i; j++) {
                    if (allowed && !allowed(ctx, h, i, j))
                        continue;
                    float s = dot(qi, K + (size_t)j * D, D) * scale;
                    float pr = expf(s - l);
                    float dp = dot(doi, V + (size_t)j * D, D);
                    float ds = pr * (dp - Di) * scale;
                    for (int d = 0; d < D; d++) {
                        dV[(size_t)j * D + d] += pr * doi[d];
                        dQ[(size_t)i * D + d] += ds * K[(size_t)j * D + d];
                        dK[(size_t)j * D + d] += ds * qi[d];
                    }
                }
            }
        }
}

size_t attn_dense_ref_saved(const struct mixer *m, int B, int T)
{
    return (size_t)B * m->H * T;
}

void attn_dense_ref_forward(const struct mixer *m, float *o, float *saved, float *work,
                            const float *q, const float *k, const float *v, const float *xp,
                            int B, int T)
{
    (void)work, (void)xp;
    attn_masked_ref_forward(o, saved, q, k, v, B, m->H, T, m->D, NULL, NULL);
}

void attn_dense_ref_backward(const struct mixer *m, float *dq, float *dk, float *dv, float *dxp,
                             float *work, const float *dout, const float *o, const float *saved,
                             const float *q, const float *k, const float *v, const float *xp,
                             int B, int T)
{
    (void)work, (void)dxp, (void)xp;
    size_t n = (size_t)B * m->H * T * m->D;
    memset(dq, 0, n * sizeof(float));
    memset(dk, 0, n * sizeof(float));
    memset(dv, 0, n * sizeof(float));
    attn_masked_ref_backward(dq, dk, dv, dout, o, saved, q, k, v, B, m->H, T, m->D, NULL, NULL);
}

const struct attn_core attn_dense_ref_core = {
    .saved_floats = attn_dense_ref_saved,
    .forward = attn_dense_ref_forward,
    .backward = attn_dense_ref_backward,
};
