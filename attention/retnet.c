/* retnet.c — "retnet": multi-scale retention (Sun et al. 2023). Per head a fixed decay γ_h, no
 * softmax: o_t = Σ_{s≤t} γ_h^(t−s) (q_t·k_s/√D) v_s, GroupNorm per head, swish output gate,
 * y = c_proj(swish(x W_Gᵀ) ⊙ GN(o)); trained chunkwise through BLAS (O(T·c·D + T·D²), O(T·D)
 * saved), decoded with a D x D state per head. Not xPos (positions come from the model's learned
 * embedding), not the paper's extra score normalisations (the GroupNorm cancels them). */
#include "attention/retnet.h"

#include "attention/attn_common.h"
#include "attention/attn_kernels.h"
#include "nn/nn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* WHY 1e-5 (PyTorch's GroupNorm default): a head whose D outputs are all equal (o = 0 at
 * t = 0 with γ = 0 and q ⟂ k, say) has variance 0; ε keeps its rstd finite. */
#define RETNET_GN_EPS 1e-5f

/* ---- the engine --------------------------------------------------------------------------
 * Per (b,h), chunks of n ≤ c rows starting at t0, S the state before the chunk:
 *     S = Σ_{s<t0} γ^(t0−1−s) k_s v_sᵀ                                  (D,D)
 *     O = (Qs Kᵀ ∘ Dm) V + diag(γ^(i+1)) Qs S,   Dm[i,j] = γ^(i−j) (j ≤ i), 0 (j > i)
 *     S' = γ^n S + (diag(γ^(n−1−j)) K)ᵀ V
 * with Qs = scale·Q. Every power has exponent ≤ c, taken from one table per head computed in
 * double (γ^k ∈ [0,1]: underflow to 0 for tiny γ is the right limit; nothing can overflow). */

struct rslot {
    float *qs, *qd, *dqs, *tmp; /* (c,D) */
    float *A, *P;               /* (c,c) */
    float *S, *dS;              /* (D,D) */
    float *states;              /* (nC,D,D): the state before each chunk (backward only) */
    float *pw;                  /* (c+1): γ^0..γ^c */
};

static int n_chunks(int T, int c)
{
    return (T + c - 1) / c;
}

/* The same binding code counts (base NULL) and hands out pointers. */
static size_t rslot_bind(struct rslot *s, float *base, size_t cap, int c, int D, int nC)
{
    struct mx_arena a;
    mx_arena_begin(&a, base, cap);
    size_t cD = (size_t)c * D, DD = (size_t)D * D;
    s->qs = mx_arena_floats(&a, cD);
    s->qd = mx_arena_floats(&a, cD);
    s->dqs = mx_arena_floats(&a, cD);
    s->tmp = mx_arena_floats(&a, cD);
    s->A = mx_arena_floats(&a, (size_t)c * c);
    s->P = mx_arena_floats(&a, (size_t)c * c);
    s->S = mx_arena_floats(&a, DD);
    s->dS = mx_arena_floats(&a, DD);
    s->states = mx_arena_floats(&a, (size_t)nC * DD);
    s->pw = mx_arena_floats(&a, (size_t)c + 1);
    return a.used;
}

static size_t rslot_floats(int T, int D, int c)
{
    struct rslot s;
    return rslot_bind(&s, NULL, 0, c, D, n_chunks(T, c));
}

size_t retn_work_floats(int B, int H, int T, int D, int c)
{
    return (size_t)B * H * rslot_floats(T, D, c);
}

static void powers(float *pw, double gamma, int c)
{
    for (int i = 0; i <= c; i++)
        pw[i] = (float)pow(gamma, (double)i); /* pow(0, 0) = 1: γ = 0 keeps the diagonal */
}

/* M (n,n) in place: entry (i,j) times γ^(i−j) for j ≤ i; assigned 0 above the diagonal, not
 * multiplied, so a future inf or NaN cannot reach row i (causality stays bit-exact). */
static void decay_mask(float *M, const float *pw, int n)
{
    for (int i = 0; i < n; i++) {
        float *row = M + (size_t)i * n;
        for (int j = 0; j <= i; j++)
            row[j] *= pw[i - j];
        for (int j = i + 1; j < n; j++)
            row[j] = 0.0f;
    }
}

/* dst (n,D) = src with row i times pw[off + sign·i] (sign ±1). */
static void scale_rows(float *dst, const float *src, const float *pw, int off, int sign, int n, int D)
{
    for (int i = 0; i < n; i++) {
        float f = pw[off + sign * i];
        for (int d = 0; d < D; d++)
            dst[(size_t)i * D + d] = src[(size_t)i * D + d] * f;
    }
}

static void scale_copy(float *dst, const float *src, size_t n, float f)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] * f;
}

/* S (D,D) = a·S + (diag(γ^(n−1−j)) K)ᵀ V over the n rows of one chunk: the state carried
 * past the chunk (a = γ^n decays the old state across its n positions). */
static void state_update(struct rslot *s, float *S, const float *K, const float *V, int n, int D)
{
    scale_copy(S, S, (size_t)D * D, s->pw[n]);
    scale_rows(s->tmp, K, s->pw, n - 1, -1, n, D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, D, n, 1.0f, s->tmp, D, V, D, 1.0f, S, D);
}

static void forward_bh(struct rslot *s, float *O, const float *Q, const float *K, const float *V, float scale,
                       int T, int D, int c)
{
    memset(s->S, 0, (size_t)D * D * sizeof(float));
    for (int t0 = 0; t0 < T; t0 += c) {
        int n = T - t0 < c ? T - t0 : c;
        const float *Kc = K + (size_t)t0 * D, *Vc = V + (size_t)t0 * D;
        float *Oc = O + (size_t)t0 * D;
        scale_copy(s->qs, Q + (size_t)t0 * D, (size_t)n * D, scale);
        /* Intra-chunk: O = (Qs Kᵀ ∘ Dm) V, all n x n pairs through BLAS. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, D, 1.0f, s->qs, D, Kc, D, 0.0f, s->A, n);
        decay_mask(s->A, s->pw, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, n, 1.0f, s->A, n, Vc, D, 0.0f, Oc, D);
        /* Inter-chunk: row i is i+1 positions past the state's last key, so its weight is γ^(i+1). */
        if (t0 > 0) {
            scale_rows(s->qd, s->qs, s->pw, 1, 1, n, D);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, D, 1.0f, s->qd, D, s->S, D, 1.0f, Oc,
                        D);
        }
        if (t0 + n < T)
            state_update(s, s->S, Kc, Vc, n, D);
    }
}

void retn_forward(float *o, float *work, const float *q, const float *k, const float *v, const double *gamma,
                  float scale, int B, int H, int T, int D, int c)
{
    MX_ASSERT(T >= 1 && D >= 1 && c >= 1);
    size_t per = rslot_floats(T, D, c);
    int nC = n_chunks(T, c);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t bh = (size_t)b * H + h, off = bh * T * D;
            struct rslot s;
            rslot_bind(&s, work + bh * per, per, c, D, nC);
            powers(s.pw, gamma[h], c);
            forward_bh(&s, o + off, q + off, k + off, v + off, scale, T, D, c);
        }
}

/* Backward, the transposed recurrences, chunks in reverse; dS = dL/d(state after chunk):
 *   intra:  A = Qs Kᵀ∘Dm, P = (dO Vᵀ)∘Dm  ->  dQs = P K, dK = Pᵀ Qs, dV = Aᵀ dO
 *   state:  S' = γ^n S + Kdᵀ V            ->  dK += diag(γ^(n−1−j)) V dS'ᵀ, dV += Kd dS',
 *                                             dS = γ^n dS'
 *   inter:  O += diag(γ^(i+1)) Qs S       ->  dQs += diag(γ^(i+1)) dO Sᵀ, dS += Qdᵀ dO
 * and dQ = scale·dQs. The states S before each chunk come from a forward sweep first (only
 * keys and values: D x D per chunk, scratch, never saved). */
static void backward_bh(struct rslot *s, float *dQ, float *dK, float *dV, const float *dO, const float *Q,
                        const float *K, const float *V, float scale, int T, int D, int c)
{
    const int nC = n_chunks(T, c);
    const size_t DD = (size_t)D * D;
    memset(s->states, 0, DD * sizeof(float));
    for (int ci = 0; ci + 1 < nC; ci++) { /* only full chunks precede another */
        float *Sn = s->states + (size_t)(ci + 1) * DD;
        memcpy(Sn, Sn - DD, DD * sizeof(float));
        state_update(s, Sn, K + (size_t)ci * c * D, V + (size_t)ci * c * D, c, D);
    }
    memset(s->dS, 0, DD * sizeof(float));
    for (int ci = nC - 1; ci >= 0; ci--) {
        int t0 = ci * c, n = T - t0 < c ? T - t0 : c;
        const float *Kc = K + (size_t)t0 * D, *Vc = V + (size_t)t0 * D, *dOc = dO + (size_t)t0 * D;
        float *dKc = dK + (size_t)t0 * D, *dVc = dV + (size_t)t0 * D;
        scale_copy(s->qs, Q + (size_t)t0 * D, (size_t)n * D, scale);
        /* Intra-chunk. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, D, 1.0f, s->qs, D, Kc, D, 0.0f, s->A, n);
        decay_mask(s->A, s->pw, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, D, 1.0f, dOc, D, Vc, D, 0.0f, s->P, n);
        decay_mask(s->P, s->pw, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, n, 1.0f, s->P, n, Kc, D, 0.0f, s->dqs,
                    D);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, n, 1.0f, s->P, n, s->qs, D, 0.0f, dKc, D);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, n, 1.0f, s->A, n, dOc, D, 0.0f, dVc, D);
        /* This chunk's keys and values feed the state after it (not the last chunk's). */
        if (ci + 1 < nC) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, D, D, 1.0f, Vc, D, s->dS, D, 0.0f, s->tmp,
                        D);
            for (int j = 0; j < n; j++) {
                float f = s->pw[n - 1 - j];
                for (int d = 0; d < D; d++)
                    dKc[(size_t)j * D + d] += f * s->tmp[(size_t)j * D + d];
            }
            scale_rows(s->tmp, Kc, s->pw, n - 1, -1, n, D);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, D, 1.0f, s->tmp, D, s->dS, D, 1.0f,
                        dVc, D);
            scale_copy(s->dS, s->dS, DD, s->pw[n]); /* now dL/d(state before this chunk), so far */
        }
        /* This chunk's queries read the state before it. */
        if (ci > 0) {
            const float *Sp = s->states + (size_t)ci * DD;
            scale_rows(s->tmp, dOc, s->pw, 1, 1, n, D);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, D, D, 1.0f, s->tmp, D, Sp, D, 1.0f,
                        s->dqs, D);
            scale_rows(s->qd, s->qs, s->pw, 1, 1, n, D);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, D, n, 1.0f, s->qd, D, dOc, D, 1.0f, s->dS,
                        D);
        }
        scale_copy(dQ + (size_t)t0 * D, s->dqs, (size_t)n * D, scale);
    }
}

void retn_backward(float *dq, float *dk, float *dv, float *work, const float *dout, const float *q,
                   const float *k, const float *v, const double *gamma, float scale, int B, int H, int T,
                   int D, int c)
{
    MX_ASSERT(T >= 1 && D >= 1 && c >= 1);
    size_t per = rslot_floats(T, D, c);
    int nC = n_chunks(T, c);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t bh = (size_t)b * H + h, off = bh * T * D;
            struct rslot s;
            rslot_bind(&s, work + bh * per, per, c, D, nC);
            powers(s.pw, gamma[h], c);
            /* every row of dq, dk, dv is assigned (beta 0 products) before any +=: overwrite */
            backward_bh(&s, dq + off, dk + off, dv + off, dout + off, q + off, k + off, v + off, scale, T, D,
                        c);
        }
}

/* ---- the mixer ------------------------------------------------------------------------------ */

struct retnet_cfg {
    int c;         /* chunk rows */
    double e;      /* schedule: γ_h = 1 − 2^(−e−h) */
    double gamma1; /* one γ for every head (< 0: use the schedule) */
    double *gamma; /* (H) */
};

static int retnet_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    long c;
    double e, g1;
    if (mixer_kv_parse(&kv, "retnet", args, err) != 0)
        return -1;
    if (mixer_kv_str(&kv, "e") && mixer_kv_str(&kv, "gamma"))
        return mx_errorf(err, "mixer retnet: give e (the per-head schedule) or gamma (one decay for "
                              "every head), not both");
    if (mixer_kv_int(&kv, "retnet", "c", 64, 1, 4096, &c, err) != 0 ||
        mixer_kv_float(&kv, "retnet", "e", 5.0, 0.0, 60.0, &e, err) != 0 ||
        mixer_kv_float(&kv, "retnet", "gamma", -1.0, 0.0, 0.999999999, &g1, err) != 0 ||
        mixer_kv_finish(&kv, "retnet",
                        "c (chunk rows, default 64), e (gamma_h = 1 - 2^(-e-h), default 5), gamma (one "
                        "decay for every head, in [0, 1))",
                        err) != 0)
        return -1;
    struct retnet_cfg *cfg = mx_xcalloc(sizeof *cfg);
    cfg->c = (int)c;
    cfg->e = e;
    cfg->gamma1 = g1;
    cfg->gamma = mx_xcalloc(sizeof(double) * (size_t)m->H);
    for (int h = 0; h < m->H; h++)
        cfg->gamma[h] = g1 >= 0 ? g1 : 1.0 - exp2(-e - h);
    m->cfg = cfg;
    if (g1 >= 0)
        snprintf(m->spec, sizeof m->spec, "retnet:c=%ld,gamma=%.9g", c, g1);
    else
        snprintf(m->spec, sizeof m->spec, "retnet:c=%ld,e=%g", c, e);
    return 0;
}

static void retnet_destroy(struct mixer *m)
{
    struct retnet_cfg *cfg = m->cfg;
    if (!cfg)
        return;
    mx_free(cfg->gamma);
    mx_free(cfg);
}

/* c_attn.weight (3C,C) [c_attn.bias (3C)] c_proj.weight (C,C) [c_proj.bias (C)] (nanoGPT's
 * names, q/k/v rows as in attn_common.h), then g_proj.weight (C,C) (the gate W_G, no bias as
 * in the paper) and gn.weight (C) (the GroupNorm gain, head h owns channels h*D..h*D+D-1). */
static int retnet_tensors(const struct mixer *m, struct mx_param *out)
{
    int n = 0, C = m->C;
    size_t at = 0;
    mx_param_add(out, &n, &at, "c_attn.weight", 2, 3 * C, C, 1, 1);
    if (m->bias)
        mx_param_add(out, &n, &at, "c_attn.bias", 1, 3 * C, 0, 0, 1);
    mx_param_add(out, &n, &at, "c_proj.weight", 2, C, C, 1, 1);
    if (m->bias)
        mx_param_add(out, &n, &at, "c_proj.bias", 1, C, 0, 0, 1);
    mx_param_add(out, &n, &at, "g_proj.weight", 2, C, C, 1, 1);
    mx_param_add(out, &n, &at, "gn.weight", 1, C, 0, 0, 1);
    return n;
}

struct retnet_params {
    const float *w_attn, *b_attn, *w_proj, *b_proj, *w_g, *gn_w;
};

/* The one place that knows where the tensors live (init, forward, backward, step). */
static struct retnet_params retnet_bind(const struct mixer *m, const float *p)
{
    size_t C = (size_t)m->C;
    struct retnet_params r;
    r.w_attn = p;
    p += 3 * C * C;
    r.b_attn = m->bias ? p : NULL;
    p += m->bias ? 3 * C : 0;
    r.w_proj = p;
    p += C * C;
    r.b_proj = m->bias ? p : NULL;
    p += m->bias ? C : 0;
    r.w_g = p;
    p += C * C;
    r.gn_w = p;
    return r;
}

/* c_attn and g_proj N(0, 0.02), c_proj N(0, 0.02/sqrt(2L)) (nanoGPT's), biases 0, the
 * GroupNorm gain 1 (the identity, as PyTorch's GroupNorm starts). */
static void retnet_init(const struct mixer *m, float *params, struct mx_rng *rng)
{
    size_t C = (size_t)m->C;
    struct retnet_params p = retnet_bind(m, params);
    mx_rng_fill_normal(rng, (float *)p.w_attn, 3 * C * C, 0.02f);
    if (p.b_attn)
        memset((float *)p.b_attn, 0, 3 * C * sizeof(float));
    mx_rng_fill_normal(rng, (float *)p.w_proj, C * C, 0.02f / sqrtf(2.0f * (float)m->n_layer));
    if (p.b_proj)
        memset((float *)p.b_proj, 0, C * sizeof(float));
    mx_rng_fill_normal(rng, (float *)p.w_g, C * C, 0.02f);
    for (size_t i = 0; i < C; i++)
        ((float *)p.gn_w)[i] = 1.0f;
}

static float retnet_scale(const struct mixer *m)
{
    return 1.0f / sqrtf((float)m->D); /* the paper's 1/√D on q·k (torchscale scales k) */
}

/* saved: q, k, v (B,H,T,D), the normalised retention n (B,T,C), the gate's pre-activation
 * a = x W_Gᵀ (B,T,C), the GroupNorm rstd (B,H,T): O(T·C), no T x T and no per-token state. */
static size_t retnet_saved_floats(const struct mixer *m, int B, int T)
{
    size_t BTC = (size_t)B * T * m->C;
    return 5 * BTC + (size_t)B * m->H * T;
}

static size_t retnet_scratch_floats(const struct mixer *m, int B, int T)
{
    const struct retnet_cfg *cfg = m->cfg;
    return 7 * (size_t)B * T * m->C + retn_work_floats(B, m->H, T, m->D, cfg->c);
}

/* One head's D outputs o (D) -> n (D) = (o − mean)·rstd; returns rstd (the SIMD row kernel). */
static float gn_row(float *n, const float *o, int D)
{
    return attn_kernels()->group_norm(n, o, RETNET_GN_EPS, (size_t)D);
}

/* u (C) = swish(a) ⊙ (w ⊙ n), one token (the SIMD row kernel, attention/attn_kernels.h). */
static void gate_row(float *u, const float *a, const float *n, const float *w, int C)
{
    attn_kernels()->swish_gate(u, a, n, w, (size_t)C);
}

static void retnet_forward(const struct mixer *m, float *y, float *saved, const float *x, const float *params,
                           int B, int T)
{
    MX_ASSERT(T >= 1 && T <= m->T_max);
    const struct retnet_cfg *cfg = m->cfg;
    const int C = m->C, H = m->H, D = m->D;
    size_t BTC = (size_t)B * T * C, BT = (size_t)B * T;
    struct retnet_params p = retnet_bind(m, params);
    float *q = saved, *k = q + BTC, *v = k + BTC, *nrm = v + BTC, *a = nrm + BTC, *rstd = a + BTC;
    float *qkv = m->scratch;         /* (B,T,3C) */
    float *u = m->scratch;           /* (B,T,C), once qkv is split */
    float *o = m->scratch + 3 * BTC; /* (B,H,T,D) */
    float *work = m->scratch + 7 * BTC;
    mx_linear_forward(qkv, x, p.w_attn, p.b_attn, B * T, C, 3 * C);
    attn_split_heads(q, k, v, qkv, B, T, H, D, 0);
    retn_forward(o, work, q, k, v, cfg->gamma, retnet_scale(m), B, H, T, D, cfg->c);
    mx_linear_forward(a, x, p.w_g, NULL, B * T, C, C);
#pragma omp parallel for schedule(static)
    for (size_t bt = 0; bt < BT; bt++) {
        size_t b = bt / T, t = bt % T;
        for (int h = 0; h < H; h++)
            rstd[(b * H + h) * T + t] =
                gn_row(nrm + bt * C + (size_t)h * D, o + ((b * H + h) * T + t) * D, D);
        gate_row(u + bt * C, a + bt * C, nrm + bt * C, p.gn_w, C);
    }
    mx_linear_forward(y, u, p.w_proj, p.b_proj, B * T, C, C);
}

static void retnet_backward(const struct mixer *m, float *dx, float *dparams, const float *dy,
                            const float *saved, const float *x, const float *params, int B, int T)
{
    const struct retnet_cfg *cfg = m->cfg;
    const int C = m->C, H = m->H, D = m->D;
    size_t BTC = (size_t)B * T * C, BT = (size_t)B * T;
    struct retnet_params p = retnet_bind(m, params);
    struct retnet_params dp = retnet_bind(m, dparams);
    const float *q = saved, *k = q + BTC, *v = k + BTC, *nrm = v + BTC, *a = nrm + BTC, *rstd = a + BTC;
    float *u = m->scratch, *du = u + BTC, *da = du + BTC;   /* (B,T,C) */
    float *dout = da + BTC;                                 /* (B,H,T,D) */
    float *dq = dout + BTC, *dk = dq + BTC, *dv = dk + BTC; /* (B,H,T,D) */
    float *dqkv = m->scratch;                               /* (B,T,3C), reuses u..da once they are spent */
    float *work = m->scratch + 7 * BTC;
    float *dgn_w = (float *)dp.gn_w;

#pragma omp parallel for schedule(static)
    for (size_t bt = 0; bt < BT; bt++)
        gate_row(u + bt * C, a + bt * C, nrm + bt * C, p.gn_w, C);
    mx_linear_backward_set(du, (float *)dp.w_proj, (float *)dp.b_proj, dy, u, p.w_proj, B * T, C, C);
    /* u = swish(a)·w·n: da = du·w·n·swish'(a), swish'(a) = σ(a)(1 + a(1 − σ(a)));
     * dn = du·swish(a)·w; dw = Σ_bt du·swish(a)·n (serial: a reduction over rows). */
    const struct attn_kernels *ak = attn_kernels();
    for (size_t bt = 0; bt < BT; bt++)
        ak->swish_gate_backward(NULL, du + bt * C, dgn_w, a + bt * C, nrm + bt * C, p.gn_w, (size_t)C);
#pragma omp parallel for schedule(static)
    for (size_t bt = 0; bt < BT; bt++) {
        size_t b = bt / T, t = bt % T;
        /* du becomes dn */
        ak->swish_gate_backward(da + bt * C, du + bt * C, NULL, a + bt * C, nrm + bt * C, p.gn_w, (size_t)C);
        /* GroupNorm per head: dO = rstd·(dn − mean(dn) − n·mean(dn·n)). */
        for (int h = 0; h < H; h++)
            ak->group_norm_backward(dout + ((b * H + h) * T + t) * D, du + bt * C + (size_t)h * D,
                                    nrm + bt * C + (size_t)h * D, rstd[(b * H + h) * T + t], (size_t)D);
    }
    mx_linear_backward(dx, (float *)dp.w_g, NULL, da, x, p.w_g, B * T, C, C);
    retn_backward(dq, dk, dv, work, dout, q, k, v, cfg->gamma, retnet_scale(m), B, H, T, D, cfg->c);
    attn_merge_qkv(dqkv, dq, dk, dv, B, T, H, D, 0);
    mx_linear_backward(dx, (float *)dp.w_attn, (float *)dp.b_attn, dqkv, x, p.w_attn, B * T, C, 3 * C);
}

/* ---- recurrent step: per head S (D,D), then scratch qkv (3C), o (C), a (C), u (C), n (C). */

static size_t retnet_state_floats(const struct mixer *m)
{
    return (size_t)m->H * m->D * m->D + 7 * (size_t)m->C;
}

static void retnet_step(const struct mixer *m, float *y_t, float *state, const float *x_t,
                        const float *params, int t)
{
    MX_ASSERT(t >= 0 && t < m->T_max);
    const struct retnet_cfg *cfg = m->cfg;
    const int C = m->C, H = m->H, D = m->D;
    struct retnet_params p = retnet_bind(m, params);
    float *qkv = state + (size_t)H * D * D, *o = qkv + 3 * C, *a = o + C, *u = a + C, *n = u + C;
    const float scale = retnet_scale(m);
    mx_linear_forward(qkv, x_t, p.w_attn, p.b_attn, 1, C, 3 * C);
    for (int h = 0; h < H; h++) {
        float *S = state + (size_t)h * D * D, g = (float)cfg->gamma[h];
        const float *q = qkv + (size_t)h * D, *k = q + C, *v = k + C;
        /* S_t = γ S_{t−1} + k_t v_tᵀ; o_t = scale·q_t S_t (the caller zeroed S before t = 0). */
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++)
                S[(size_t)i * D + j] = g * S[(size_t)i * D + j] + k[i] * v[j];
        float *oh = o + (size_t)h * D;
        for (int j = 0; j < D; j++)
            oh[j] = 0.0f;
        for (int i = 0; i < D; i++) {
            float qi = scale * q[i];
            for (int j = 0; j < D; j++)
                oh[j] += qi * S[(size_t)i * D + j];
        }
        gn_row(n + (size_t)h * D, oh, D);
    }
    mx_linear_forward(a, x_t, p.w_g, NULL, 1, C, C);
    gate_row(u, a, n, p.gn_w, C);
    mx_linear_forward(y_t, u, p.w_proj, p.b_proj, 1, C, C);
}

/* What the chunkwise algorithm executes per (b,h), per chunk of n rows (summed over chunks):
 * forward: Qs Kᵀ and A V (2n²D each), the decay mask (n²), the inter-chunk Qd S (2nD² + nD)
 * and the state update (2nD² + nD + D²), the q scaling (nD); then per token and channel the
 * GroupNorm (~7) and the gate (~7: sigmoid, swish, two products). Backward: the state sweep
 * again (2nD² + nD + D²), five n x n products (QKᵀ, dO Vᵀ, P K, Pᵀ Qs, Aᵀ dO: 2n²D each, two
 * masks), the state terms (4nD² + 2nD + D²), the inter terms (4nD² + 2nD), and per token and
 * channel the gate and GroupNorm gradients (~20). */
static void retnet_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd)
{
    const struct retnet_cfg *cfg = m->cfg;
    const double D = m->D, c = cfg->c;
    double f = 0, b = 0;
    for (int t0 = 0; t0 < T; t0 += cfg->c) {
        double n = T - t0 < c ? T - t0 : c;
        int first = t0 == 0, last = t0 + cfg->c >= T;
        f += 4 * n * n * D + n * n + n * D;
        b += 10 * n * n * D + 2 * n * n + 2 * n * D;
        if (!first) {
            f += 2 * n * D * D + n * D;
            b += 4 * n * D * D + 2 * n * D;
        }
        if (!last) {
            f += 2 * n * D * D + n * D + D * D;
            b += 2 * n * D * D + n * D + D * D;     /* the sweep */
            b += 4 * n * D * D + 2 * n * D + D * D; /* the state's gradients */
        }
    }
    double heads = (double)B * m->H, tok = (double)B * T * m->C;
    *fwd = heads * f + 14.0 * tok;
    *bwd = heads * b + 20.0 * tok;
}

/* c=4 and c=5 cross chunk boundaries at the suite's T = 20 with full and partial last chunks
 * (and its prefix check's shorter T); e=1 gives fast decays (γ = 0.5, 0.75) that matter at T 20. */
static const char *const retnet_tests[] = {"retnet:c=4", "retnet:c=5,e=1", "retnet:c=64,gamma=0", NULL};

const struct mixer_ops attn_retnet_ops = {
    .name = "retnet",
    .summary = "retnet[:c=64,e=5 | gamma=g] — multi-scale retention (Sun et al. 2023): decay "
               "gamma_h = 1 - 2^(-e-h) per head (or one gamma for all), GroupNorm per head, swish "
               "gate; chunks of c rows through BLAS; O(T c D + T D^2) time, O(1) state in generation",
    .causal = 1,
    .test_specs = retnet_tests,
    .parse = retnet_parse,
    .destroy = retnet_destroy,
    .tensors = retnet_tensors,
    .init = retnet_init,
    .saved_floats = retnet_saved_floats,
    .scratch_floats = retnet_scratch_floats,
    .forward = retnet_forward,
    .backward = retnet_backward,
    .state_floats = retnet_state_floats,
    .step = retnet_step,
    .flops = retnet_flops,
};
