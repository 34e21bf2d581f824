/* gla.c — "gla": gated linear attention with a data-dependent decay (Yang et al. 2024, GLA; the
 * scalar-decay form is Mamba-2's SSD). Per head S_t = diag(a_t) S_{t-1} + k_t v_tᵀ,
 * o_t = S_tᵀ q_t / sqrt(D), the gate a_t = sigmoid(x_t·w + b)^(1/τ), τ = 16, one scalar per head
 * (default) or one per key dimension (gate=key). Training runs chunkwise with the decay in log
 * space (forward, hand-written backward including the gates); generation is the recurrence,
 * O(1) state. Not softmax attention, no normaliser, no output gate or norm (README). */
#include "attention/attn_common.h"
#include "attention/attn_kernels.h"
#include "nn/nn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* GLA's temperature: log a_t = logsigmoid(z)/τ keeps a_t near 1 (slow forgetting) at init. */
#define GLA_TAU 16.0f

struct gla_cfg {
    int chunk;   /* rows per chunk */
    int per_key; /* 0: one gate per head (G = 1); 1: one per key dimension (G = D) */
};

static int gla_G(const struct mixer *m)
{
    return ((const struct gla_cfg *)m->cfg)->per_key ? m->D : 1;
}

static int gla_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    long c;
    if (mixer_kv_parse(&kv, "gla", args, err) != 0 ||
        mixer_kv_int(&kv, "gla", "c", 64, 1, 4096, &c, err) != 0)
        return -1;
    const char *gate = mixer_kv_str(&kv, "gate");
    if (gate && strcmp(gate, "head") != 0 && strcmp(gate, "key") != 0)
        return mx_errorf(err,
                         "gla: gate=%s is not a gate kind; use gate=head (one decay per head, "
                         "the default) or gate=key (one per key dimension)",
                         gate);
    if (mixer_kv_finish(&kv, "gla", "c (chunk rows, default 64), gate (head or key)", err) != 0)
        return -1;
    struct gla_cfg *cfg = mx_xcalloc(sizeof *cfg);
    cfg->chunk = (int)c;
    cfg->per_key = gate && strcmp(gate, "key") == 0;
    m->cfg = cfg;
    snprintf(m->spec, sizeof m->spec, "gla:c=%ld,gate=%s", c, cfg->per_key ? "key" : "head");
    return 0;
}

static void gla_destroy(struct mixer *m)
{
    mx_free(m->cfg);
}

/* ---- parameters ------------------------------------------------------------------------ */

static int gla_tensors(const struct mixer *m, struct mx_param *out)
{
    int n = 0, C = m->C, GH = gla_G(m) * m->H;
    size_t at = 0;
    mx_param_add(out, &n, &at, "c_attn.weight", 2, 3 * C, C, 1, 1);
    if (m->bias)
        mx_param_add(out, &n, &at, "c_attn.bias", 1, 3 * C, 0, 0, 1);
    mx_param_add(out, &n, &at, "c_proj.weight", 2, C, C, 1, 1);
    if (m->bias)
        mx_param_add(out, &n, &at, "c_proj.bias", 1, C, 0, 0, 1);
    mx_param_add(out, &n, &at, "g_gate.weight", 2, GH, C, 1, 1); /* row h*G + g */
    mx_param_add(out, &n, &at, "g_gate.bias", 1, GH, 0, 0, 1);
    return n;
}

struct gla_params {
    float *w_attn, *b_attn, *w_proj, *b_proj, *w_gate, *b_gate;
};

/* The one place that knows where the tensors live (init, forward, backward, step; params or
 * their gradients). */
static struct gla_params gla_bind(const struct mixer *m, const float *params)
{
    size_t C = (size_t)m->C, GH = (size_t)gla_G(m) * m->H;
    float *p = (float *)params;
    struct gla_params g;
    g.w_attn = p, p += 3 * C * C;
    g.b_attn = m->bias ? p : NULL, p += m->bias ? 3 * C : 0;
    g.w_proj = p, p += C * C;
    g.b_proj = m->bias ? p : NULL, p += m->bias ? C : 0;
    g.w_gate = p, p += GH * C;
    g.b_gate = p;
    return g;
}

/* nanoGPT's init for c_attn, c_proj; the gate weights N(0, 0.02) and bias 0, so z ≈ 0 and
 * a = sigmoid(0)^(1/16) = 0.5^(1/16) ≈ 0.958 at init: GLA's starting decay (a memory of
 * ~1/(1-a) ≈ 24 tokens), the same for every head. */
static void gla_init(const struct mixer *m, float *params, struct mx_rng *rng)
{
    size_t C = (size_t)m->C, GH = (size_t)gla_G(m) * m->H;
    struct gla_params p = gla_bind(m, params);
    mx_rng_fill_normal(rng, p.w_attn, 3 * C * C, 0.02f);
    if (p.b_attn)
        memset(p.b_attn, 0, 3 * C * sizeof(float));
    mx_rng_fill_normal(rng, p.w_proj, C * C, 0.02f / sqrtf(2.0f * (float)m->n_layer));
    if (p.b_proj)
        memset(p.b_proj, 0, C * sizeof(float));
    mx_rng_fill_normal(rng, p.w_gate, GH * C, 0.02f);
    memset(p.b_gate, 0, GH * sizeof(float));
}

/* log a = logsigmoid(z)/τ, written min(z,0) - log1p(exp(-|z|)): WHY: the textbook
 * -log(1+exp(-z)) overflows for z < -88 and log(sigmoid(z)) rounds to log(0) = -inf. */
static inline float gla_log_gate(float z)
{
    return ((z < 0.0f ? z : 0.0f) - log1pf(expf(-fabsf(z)))) / GLA_TAU;
}

/* d(log a)/dz = sigmoid(-z)/τ, in a form that never overflows. */
static inline float gla_log_gate_grad(float z)
{
    float e = expf(-fabsf(z)); /* <= 1 */
    return (z >= 0.0f ? e / (1.0f + e) : 1.0f / (1.0f + e)) / GLA_TAU;
}

/* ---- the chunkwise core ------------------------------------------------------------------
 * Per (b,h) with q, k, v (T,D), gate logits z (row stride GH), G = 1 or D. Within a chunk of
 * rows t0..t0+n-1 (local i = 0..n-1, L = n-1), lb_i = Σ_{j≤i} log a_j (per gate dim; ≤ 0,
 * non-increasing) and with S0 the state before the chunk and s = 1/sqrt(D):
 *   o_i    = s·[ (q_i ⊙ e^{lb_i})ᵀ S0 + Σ_{j≤i} (Σ_d q_id k_jd e^{lb_id - lb_jd}) v_j ]
 *   S_next = diag(e^{lb_L}) S0 + Σ_j diag(e^{lb_L - lb_j}) k_j v_jᵀ.
 * WHY only differences: the factored form (q e^{lb})(k e^{-lb})ᵀ needs e^{-lb_j}, which
 * overflows once a chunk's decay passes e^{-88} (a few rows with strong forgetting), and then
 * gives inf·0 = NaN. Every factor used here is e^{x} with x ≤ 0: at most 1, and an underflow to
 * 0 is the right answer. The state is carried between chunks, so nothing grows with T. */

struct gla_slot {
    float *lb;            /* (L,G) cumulative log decay within the chunk */
    float *nlb;           /* (L) −lb, gate=head (gla_intra): e^{lb_i − lb_j} = e^{nlb_j − nlb_i} */
    float *db;            /* (L,G) its gradient */
    float *dd;            /* (L) s·dA_ii, the intra-chunk diagonal held back (gla_backward_bh) */
    float *A, *dA;        /* (L,L) */
    float *qs, *ks, *tmp; /* (L,D) */
    float *dS;            /* (D,D) */
    float *states;        /* (nC,D,D): the state before each chunk (backward; forward uses [0]) */
};

static int gla_chunks(const struct mixer *m, int T)
{
    int c = ((const struct gla_cfg *)m->cfg)->chunk;
    return (T + c - 1) / c;
}

/* The same binding code counts (base NULL) and hands out pointers. */
static size_t gla_slot_bind(struct gla_slot *s, float *base, size_t cap, int L, int G, int D, int nC)
{
    struct mx_arena a;
    mx_arena_begin(&a, base, cap);
    s->lb = mx_arena_floats(&a, (size_t)L * G);
    s->nlb = mx_arena_floats(&a, (size_t)L);
    s->db = mx_arena_floats(&a, (size_t)L * G);
    s->dd = mx_arena_floats(&a, (size_t)L);
    s->A = mx_arena_floats(&a, (size_t)L * L);
    s->dA = mx_arena_floats(&a, (size_t)L * L);
    s->qs = mx_arena_floats(&a, (size_t)L * D);
    s->ks = mx_arena_floats(&a, (size_t)L * D);
    s->tmp = mx_arena_floats(&a, (size_t)L * D);
    s->dS = mx_arena_floats(&a, (size_t)D * D);
    s->states = mx_arena_floats(&a, (size_t)nC * D * D);
    return a.used;
}

static size_t gla_slot_floats(const struct mixer *m, int T)
{
    struct gla_slot s;
    return gla_slot_bind(&s, NULL, 0, ((const struct gla_cfg *)m->cfg)->chunk, gla_G(m), m->D,
                         gla_chunks(m, T));
}

/* lb (n,G) = running sums of log a over the chunk's rows; z rows at stride zs. */
static void gla_cum_decay(float *lb, const float *z, size_t zs, int n, int G)
{
    for (int g = 0; g < G; g++) {
        float acc = 0.0f;
        for (int i = 0; i < n; i++) {
            acc += gla_log_gate(z[(size_t)i * zs + g]);
            lb[(size_t)i * G + g] = acc;
        }
    }
}

/* A (n,n) = s·Σ_d q_id k_jd e^{lb_id - lb_jd} for j ≤ i, 0 above the diagonal (assigned, so a
 * future value never reaches row i). Scalar gate: one sgemm, then the decay per entry with the
 * SIMD row kernel mul_exp: nlb (n) = −lb, and e^{nlb_j − nlb_i} is e^{lb_i − lb_j} exactly
 * (a float difference only changes sign with its operands). */
static void gla_intra(float *A, float *nlb, const float *lb, const float *Q, const float *K, int n, int D, int G,
                      float sc)
{
    const struct attn_kernels *ak = attn_kernels();
    if (G == 1) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, D, sc, Q, D, K, D, 0.0f, A, n);
        for (int j = 0; j < n; j++)
            nlb[j] = -lb[j];
        for (int i = 0; i < n; i++) {
            float *row = A + (size_t)i * n;
            ak->mul_exp(row, nlb, nlb[i], (size_t)i + 1);
            memset(row + i + 1, 0, (size_t)(n - i - 1) * sizeof(float));
        }
        return;
    }
    for (int i = 0; i < n; i++) {
        const float *qi = Q + (size_t)i * D, *li = lb + (size_t)i * D;
        float *row = A + (size_t)i * n;
        for (int j = 0; j <= i; j++)
            row[j] = sc * ak->dot_exp(qi, K + (size_t)j * D, li, lb + (size_t)j * D, (size_t)D);
        for (int j = i + 1; j < n; j++)
            row[j] = 0.0f;
    }
}

/* dst (n,D) = src ⊙ e^{lb_i - ref} per row (G = 1: one factor per row), times f. ref = NULL:
 * e^{lb_i} (relative to the chunk start); else e^{ref_d - lb_id} (relative to the chunk end). */
static void gla_scale(float *dst, const float *src, const float *lb, const float *ref, int n, int D, int G,
                      float f)
{
    if (G == 1) { /* one factor per row: the SIMD row kernel */
        const struct attn_kernels *ak = attn_kernels();
        for (int i = 0; i < n; i++)
            ak->scale_to(dst + (size_t)i * D, src + (size_t)i * D, f * expf(ref ? ref[0] - lb[i] : lb[i]),
                         (size_t)D);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int d = 0; d < D; d++) {
            float l = lb[(size_t)i * G + d];
            float x = ref ? ref[d] - l : l;
            dst[(size_t)i * D + d] = src[(size_t)i * D + d] * f * expf(x);
        }
}

/* S (D,D): row d times e^{lb_d} (the chunk's whole decay). */
static void gla_decay_rows(float *S, const float *lbL, int D, int G)
{
    const struct attn_kernels *ak = attn_kernels();
    if (G == 1) { /* one factor for the whole state */
        ak->scale(S, expf(lbL[0]), (size_t)D * D);
        return;
    }
    for (int d = 0; d < D; d++)
        ak->scale(S + (size_t)d * D, expf(lbL[d]), (size_t)D);
}

/* S (D,D) <- diag(e^{lb_L}) S + (K ⊙ e^{lb_L - lb})ᵀ V over the chunk's n rows. */
static void gla_advance(struct gla_slot *s, float *S, const float *K, const float *V, int n, int D, int G)
{
    const float *lbL = s->lb + (size_t)(n - 1) * G;
    gla_decay_rows(S, lbL, D, G);
    gla_scale(s->ks, K, s->lb, lbL, n, D, G, 1.0f);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, D, n, 1.0f, s->ks, D, V, D, 1.0f, S, D);
}

static void gla_forward_bh(const struct mixer *m, struct gla_slot *s, float *O, const float *Q,
                           const float *K, const float *V, const float *Z, size_t zs, int T)
{
    const int D = m->D, G = gla_G(m), L = ((const struct gla_cfg *)m->cfg)->chunk;
    const float sc = 1.0f / sqrtf((float)D);
    float *S = s->states;
    memset(S, 0, (size_t)D * D * sizeof(float));
    for (int t0 = 0; t0 < T; t0 += L) {
        int n = T - t0 < L ? T - t0 : L;
        const float *q = Q + (size_t)t0 * D, *k = K + (size_t)t0 * D, *v = V + (size_t)t0 * D;
        float *o = O + (size_t)t0 * D;
        gla_cum_decay(s->lb, Z + (size_t)t0 * zs, zs, n, G);
        gla_intra(s->A, s->nlb, s->lb, q, k, n, D, G, sc);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, n, 1.0f, s->A, n, v, D, 0.0f, o, D);
        if (t0 > 0) {
            gla_scale(s->qs, q, s->lb, NULL, n, D, G, sc);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, D, 1.0f, s->qs, D, S, D, 1.0f, o, D);
        }
        if (t0 + n < T)
            gla_advance(s, S, k, v, n, D, G);
    }
}

/* Backward of one (b,h): dq, dk, dv (T,D) +=, dz rows (stride zs) overwritten.
 * With g_i = dO_i, per chunk (in reverse, dS = ∂L/∂S_next from the later chunks):
 *   dv = Aᵀ dO + (K ⊙ e^{lb_L - lb}) dS,   dA = dO Vᵀ (j ≤ i),
 *   dq_i = s Σ_j dA_ij k_j ⊙ e^{lb_i - lb_j} + s e^{lb_i} ⊙ (S0 g_i),
 *   dk_j = s Σ_i dA_ij q_i ⊙ e^{lb_i - lb_j} + e^{lb_L - lb_j} ⊙ (dS v_j),
 *   dS0  = diag(e^{lb_L}) dS + s (Q ⊙ e^{lb})ᵀ dO.
 * The gates: every term above carries e^{lb_i - lb_j} with q_i on the i side and k_j on the j
 * side, so ∂L/∂lb_i = q_i ⊙ dq_i − k_i ⊙ dk_i (+ dS ⊙ S_next summed over values at i = L,
 * where S_next holds lb_L whole), summed over d when G = 1 (GLA's identity). lb is a running
 * sum, so ∂L/∂log a_t = Σ_{i ≥ t} ∂L/∂lb_i within the chunk; then dz = that · sigmoid(-z)/τ.
 * WHY the diagonal j = i is held back from dq, dk until the gate gradient is formed: it enters
 * q_i ⊙ dq_i and k_i ⊙ dk_i as the same term s·dA_ii q_i k_i, which cancels exactly; left in,
 * it cancels only to float round-off of its own size, and with strong forgetting (every other
 * term ≲ e^{lb_i - lb_j} ≈ 0) that round-off was the whole gate gradient (3% errors at
 * a = e^{-12.5}, tests/mixers/test_gla.c). */
static void gla_backward_bh(const struct mixer *m, struct gla_slot *s, float *dQ, float *dK, float *dV,
                            float *dZ, const float *dO, const float *Q, const float *K, const float *V,
                            const float *Z, size_t zs, int T)
{
    const int D = m->D, G = gla_G(m), L = ((const struct gla_cfg *)m->cfg)->chunk;
    const int nC = gla_chunks(m, T);
    const float sc = 1.0f / sqrtf((float)D);
    const size_t DD = (size_t)D * D;
    /* The states before each chunk, recomputed (nothing D×D per token is ever kept). */
    memset(s->states, 0, DD * sizeof(float));
    for (int c = 0; c + 1 < nC; c++) {
        int t0 = c * L, n = T - t0 < L ? T - t0 : L;
        memcpy(s->states + (c + 1) * DD, s->states + c * DD, DD * sizeof(float));
        gla_cum_decay(s->lb, Z + (size_t)t0 * zs, zs, n, G);
        gla_advance(s, s->states + (c + 1) * DD, K + (size_t)t0 * D, V + (size_t)t0 * D, n, D, G);
    }
    memset(s->dS, 0, DD * sizeof(float));
    for (int c = nC - 1; c >= 0; c--) {
        int t0 = c * L, n = T - t0 < L ? T - t0 : L;
        const float *q = Q + (size_t)t0 * D, *k = K + (size_t)t0 * D, *v = V + (size_t)t0 * D;
        const float *go = dO + (size_t)t0 * D;
        float *dq = dQ + (size_t)t0 * D, *dk = dK + (size_t)t0 * D, *dv = dV + (size_t)t0 * D;
        const float *lbL = s->lb + (size_t)(n - 1) * G;
        gla_cum_decay(s->lb, Z + (size_t)t0 * zs, zs, n, G);
        gla_intra(s->A, s->nlb, s->lb, q, k, n, D, G, sc);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, n, 1.0f, s->A, n, go, D, 1.0f, dv, D);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, D, 1.0f, go, D, v, D, 0.0f, s->dA, n);
        for (int i = 0; i < n; i++)
            s->dd[i] = sc * s->dA[(size_t)i * n + i];
        const struct attn_kernels *ak = attn_kernels();
        if (G == 1) { /* dA ⊙ (s e^{lb_i - lb_j}), strictly lower (nlb from gla_intra); two sgemms */
            for (int i = 0; i < n; i++) {
                float *row = s->dA + (size_t)i * n;
                ak->mul_exp(row, s->nlb, s->nlb[i], (size_t)i);
                ak->scale(row, sc, (size_t)i);
                memset(row + i, 0, (size_t)(n - i) * sizeof(float));
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, n, 1.0f, s->dA, n, k, D, 1.0f, dq,
                        D);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, n, 1.0f, s->dA, n, q, D, 1.0f, dk, D);
        } else {
            for (int i = 0; i < n; i++) {
                const float *li = s->lb + (size_t)i * D;
                for (int j = 0; j < i; j++) /* e = sc dA_ij e^{l_i - l_j}: dq_i += e k_j, dk_j += e q_i */
                    ak->exp_axpy2(dq + (size_t)i * D, dk + (size_t)j * D, q + (size_t)i * D, k + (size_t)j * D,
                                  sc * s->dA[(size_t)i * n + j], li, s->lb + (size_t)j * D, (size_t)D);
            }
        }
        memset(s->db, 0, (size_t)n * G * sizeof(float));
        if (c + 1 < nC) { /* this chunk's keys and values feed S_next */
            const float *Sn = s->states + (c + 1) * DD;
            gla_scale(s->ks, k, s->lb, lbL, n, D, G, 1.0f);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, D, 1.0f, s->ks, D, s->dS, D, 1.0f,
                        dv, D);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, D, D, 1.0f, v, D, s->dS, D, 0.0f, s->tmp,
                        D);
            for (int j = 0; j < n; j++) {
                if (G == 1) { /* one factor per row */
                    ak->axpy(dk + (size_t)j * D, expf(lbL[0] - s->lb[j]), s->tmp + (size_t)j * D, (size_t)D);
                    continue;
                }
                for (int d = 0; d < D; d++) {
                    float x = lbL[d] - s->lb[(size_t)j * G + d];
                    dk[(size_t)j * D + d] += s->tmp[(size_t)j * D + d] * expf(x);
                }
            }
            float *dbL = s->db + (size_t)(n - 1) * G;
            for (int d = 0; d < D; d++)
                for (int e = 0; e < D; e++)
                    dbL[G == 1 ? 0 : d] += s->dS[(size_t)d * D + e] * Sn[(size_t)d * D + e];
        }
        if (c > 0) { /* this chunk's queries read S0; dS becomes ∂L/∂S0 */
            const float *S0 = s->states + c * DD;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, D, D, 1.0f, go, D, S0, D, 0.0f, s->tmp,
                        D);
            gla_scale(s->qs, s->tmp, s->lb, NULL, n, D, G, sc);
            for (size_t i = 0; i < (size_t)n * D; i++)
                dq[i] += s->qs[i];
            gla_decay_rows(s->dS, lbL, D, G);
            gla_scale(s->qs, q, s->lb, NULL, n, D, G, sc);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, D, n, 1.0f, s->qs, D, go, D, 1.0f, s->dS,
                        D);
        }
        for (int i = 0; i < n; i++)
            for (int d = 0; d < D; d++) {
                size_t at = (size_t)i * D + d;
                s->db[(size_t)i * G + (G == 1 ? 0 : d)] += q[at] * dq[at] - k[at] * dk[at];
            }
        for (int i = 0; i < n; i++)
            for (int d = 0; d < D; d++) {
                size_t at = (size_t)i * D + d;
                dq[at] += s->dd[i] * k[at];
                dk[at] += s->dd[i] * q[at];
            }
        for (int g = 0; g < G; g++) {
            float acc = 0.0f;
            for (int i = n - 1; i >= 0; i--) {
                acc += s->db[(size_t)i * G + g];
                size_t zi = ((size_t)t0 + i) * zs + g;
                dZ[zi] = acc * gla_log_gate_grad(Z[zi]);
            }
        }
    }
}

/* ---- the mixer ------------------------------------------------------------------------------
 * saved: q, k, v, o (B,H,T,D), then the gate logits z (B,T,GH): O(T·C), no T×T, no states.
 * scratch: qkv or merged/dmerged/dout/dq/dk/dv (6·BTC), dz (B,T,GH), the per-(b,h) slots. */

static size_t gla_saved_floats(const struct mixer *m, int B, int T)
{
    return 4 * (size_t)B * T * m->C + (size_t)B * T * gla_G(m) * m->H;
}

static size_t gla_scratch_floats(const struct mixer *m, int B, int T)
{
    return 6 * (size_t)B * T * m->C + (size_t)B * T * gla_G(m) * m->H +
           (size_t)B * m->H * gla_slot_floats(m, T);
}

static void gla_forward(const struct mixer *m, float *y, float *saved, const float *x, const float *params,
                        int B, int T)
{
    MX_ASSERT(T >= 1 && T <= m->T_max);
    const int H = m->H, D = m->D, GH = gla_G(m) * H, G = gla_G(m);
    size_t BTC = (size_t)B * T * m->C, per = gla_slot_floats(m, T);
    struct gla_params p = gla_bind(m, params);
    float *q = saved, *k = q + BTC, *v = k + BTC, *o = v + BTC, *z = o + BTC; /* (B,H,T,D); z (B,T,GH) */
    float *qkv = m->scratch, *merged = qkv + 3 * BTC, *work = m->scratch + 6 * BTC + (size_t)B * T * GH;
    mx_linear_forward(qkv, x, p.w_attn, p.b_attn, B * T, m->C, 3 * m->C);
    attn_split_heads(q, k, v, qkv, B, T, H, D, 0);
    mx_linear_forward(z, x, p.w_gate, p.b_gate, B * T, m->C, GH);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t bh = (size_t)b * H + h, off = bh * T * D;
            struct gla_slot s;
            gla_slot_bind(&s, work + bh * per, per, ((const struct gla_cfg *)m->cfg)->chunk, G, D,
                          gla_chunks(m, T));
            gla_forward_bh(m, &s, o + off, q + off, k + off, v + off, z + (size_t)b * T * GH + (size_t)h * G,
                           (size_t)GH, T);
        }
    attn_merge_heads(merged, o, B, T, H, D);
    mx_linear_forward(y, merged, p.w_proj, p.b_proj, B * T, m->C, m->C);
}

static void gla_backward(const struct mixer *m, float *dx, float *dparams, const float *dy,
                         const float *saved, const float *x, const float *params, int B, int T)
{
    const int H = m->H, D = m->D, GH = gla_G(m) * H, G = gla_G(m), C = m->C;
    size_t BTC = (size_t)B * T * C, per = gla_slot_floats(m, T);
    struct gla_params p = gla_bind(m, params), dp = gla_bind(m, dparams);
    const float *q = saved, *k = q + BTC, *v = k + BTC, *o = v + BTC, *z = o + BTC;
    float *merged = m->scratch, *dmerged = merged + BTC, *dout = dmerged + BTC; /* (B,T,C), (B,H,T,D) */
    float *dq = dout + BTC, *dk = dq + BTC, *dv = dk + BTC;                     /* (B,H,T,D) */
    float *dqkv = m->scratch; /* (B,T,3C), reuses merged..dout once they are spent */
    float *dz = m->scratch + 6 * BTC, *work = dz + (size_t)B * T * GH; /* dz (B,T,GH) */
    attn_merge_heads(merged, o, B, T, H, D);
    mx_linear_backward_set(dmerged, dp.w_proj, dp.b_proj, dy, merged, p.w_proj, B * T, C, C);
    attn_split_out(dout, dmerged, B, T, H, D);
    memset(dq, 0, 3 * BTC * sizeof(float));
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t bh = (size_t)b * H + h, off = bh * T * D, zo = (size_t)b * T * GH + (size_t)h * G;
            struct gla_slot s;
            gla_slot_bind(&s, work + bh * per, per, ((const struct gla_cfg *)m->cfg)->chunk, G, D,
                          gla_chunks(m, T));
            gla_backward_bh(m, &s, dq + off, dk + off, dv + off, dz + zo, dout + off, q + off, k + off,
                            v + off, z + zo, (size_t)GH, T);
        }
    attn_merge_qkv(dqkv, dq, dk, dv, B, T, H, D, 0);
    mx_linear_backward(dx, dp.w_attn, dp.b_attn, dqkv, x, p.w_attn, B * T, C, 3 * C);
    mx_linear_backward(dx, dp.w_gate, dp.b_gate, dz, x, p.w_gate, B * T, C, GH);
}

/* ---- generation: the recurrence, per head S (D,D), then qkv (3C), z (GH), o (C) ---------- */

static size_t gla_state_floats(const struct mixer *m)
{
    return (size_t)m->H * m->D * m->D + 4 * (size_t)m->C + (size_t)gla_G(m) * m->H;
}

static void gla_step(const struct mixer *m, float *y_t, float *state, const float *x_t, const float *params,
                     int t)
{
    MX_ASSERT(t >= 0 && t < m->T_max);
    const int H = m->H, D = m->D, C = m->C, G = gla_G(m);
    const float sc = 1.0f / sqrtf((float)D);
    struct gla_params p = gla_bind(m, params);
    float *qkv = state + (size_t)H * D * D, *z = qkv + 3 * C, *o = z + (size_t)G * H;
    mx_linear_forward(qkv, x_t, p.w_attn, p.b_attn, 1, C, 3 * C);
    mx_linear_forward(z, x_t, p.w_gate, p.b_gate, 1, C, G * H);
    for (int h = 0; h < H; h++) {
        float *S = state + (size_t)h * D * D;
        const float *q = qkv + (size_t)h * D, *k = q + C, *v = k + C;
        for (int d = 0; d < D; d++) {
            float a = expf(gla_log_gate(z[(size_t)h * G + (G == 1 ? 0 : d)]));
            for (int e = 0; e < D; e++)
                S[(size_t)d * D + e] = a * S[(size_t)d * D + e] + k[d] * v[e];
        }
        for (int e = 0; e < D; e++) {
            float acc = 0.0f;
            for (int d = 0; d < D; d++)
                acc += q[d] * S[(size_t)d * D + e];
            o[(size_t)h * D + e] = sc * acc;
        }
    }
    mx_linear_forward(y_t, o, p.w_proj, p.b_proj, 1, C, C);
}

/* What the chunkwise algorithm executes per (b,h) and row, chunk c (c ≤ T), G gates per row:
 * forward: the running log-decay (~4G: logsigmoid, add), the intra product QKᵀ and AV
 * (2cD each, both full c×c sgemms), the decay on the c×c block (~3c/2: sub, exp, mul; gate=key
 * does it inside the D-sum instead: c/2·5D per row, replacing QKᵀ's 2cD), the inter-chunk read
 * Q S0 and scaling (2D² + 2D), the state update (2D² + 3D + D²/c). Backward: the states again
 * (2D² + 3D), A again, dv (2cD + 2D²), dA (2cD), dq and dk (4cD; gate=key 5cD in the loop),
 * dk from dS (2D² + 3D), S0 g (2D² + 3D), dS (2D² + D²/c + 3D), the gate gradient (5D + 4G). */
static void gla_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd)
{
    const int chunk = ((const struct gla_cfg *)m->cfg)->chunk;
    const double D = m->D, G = gla_G(m), c = chunk < T ? chunk : T;
    double intra = G == 1 ? 2 * c * D + 1.5 * c : 2.5 * c * D;
    double f = 4 * G + intra + 2 * c * D + 4 * D * D + 5 * D + D * D / c;
    double dqk = G == 1 ? 4 * c * D + 1.5 * c : 5 * c * D;
    double b = (2 * D * D + 3 * D) + intra + (2 * c * D + 2 * D * D) + 2 * c * D + dqk +
               (2 * D * D + 3 * D) * 2 + (2 * D * D + D * D / c + 3 * D) + 5 * D + 4 * G;
    double rows = (double)B * m->H * T;
    *fwd = rows * f;
    *bwd = rows * b;
}

/* c=4 and c=5 cross several chunks at T=20 (and the prefix check's shorter T) with a partial
 * last chunk; both gate kinds. */
static const char *const gla_tests[] = {"gla:c=4", "gla:c=5,gate=key", NULL};

const struct mixer_ops attn_gla_ops = {
    .name = "gla",
    .summary = "gla[:c=64,gate=head] — gated linear attention (Yang et al. 2024; SSD's scalar "
               "decay): S_t = a_t S_{t-1} + k_t v_t^T, o_t = S_t^T q_t/sqrt(D), a_t = "
               "sigmoid(x w + b)^(1/16) per head, or per key dimension with gate=key; chunkwise "
               "in log space, c rows a chunk; O(T D^2 + T c D) time, O(1) state in generation",
    .causal = 1,
    .test_specs = gla_tests,
    .parse = gla_parse,
    .destroy = gla_destroy,
    .tensors = gla_tensors,
    .init = gla_init,
    .saved_floats = gla_saved_floats,
    .scratch_floats = gla_scratch_floats,
    .forward = gla_forward,
    .backward = gla_backward,
    .state_floats = gla_state_floats,
    .step = gla_step,
    .flops = gla_flops,
};
