/* test_gla.c — the gla mixer's engine beyond the generic suite: the chunkwise forward and
 * backward against the plain recurrence S_t = diag(a_t) S_{t-1} + k_t v_tᵀ run in double
 * (every chunk size, odd lengths, both gate kinds), central differences on the gate
 * parameters alone, decays at both extremes over 65,536 tokens, and saved memory linear in T.
 * Not a speed test. */
#include "check.h"
#include "mixer_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TAU 16.0 /* gla.c's GLA_TAU */

static double logsig(double z)
{
    return (z < 0 ? z : 0) - log1p(exp(-fabs(z)));
}

/* The whole mixer in double, token by token. y (B,T,C) overwritten; with dy, dx (B,T,C) and
 * dp (the parameter slice) overwritten with the gradients of Σ y·dy. */
struct ref_out {
    double *y, *dx, *dp;
};

static void ref_run(const struct mc_mixer *t, const float *x, const float *dy, int T, int per_key,
                    struct ref_out *r)
{
    const struct mixer *m = &t->m;
    const int B = t->B, C = m->C, H = m->H, D = m->D, G = per_key ? D : 1, GH = G * H;
    const float *P = t->params;
    size_t oWa = mixer_tensor_offset(m, "c_attn.weight"), oba = mixer_tensor_offset(m, "c_attn.bias");
    size_t oWp = mixer_tensor_offset(m, "c_proj.weight"), obp = mixer_tensor_offset(m, "c_proj.bias");
    size_t oWg = mixer_tensor_offset(m, "g_gate.weight"), obg = mixer_tensor_offset(m, "g_gate.bias");
    const double sc = 1.0 / sqrt((double)D);
    size_t np = t->n_params;
    memset(r->dp, 0, np * sizeof(double));
    double *qkv = calloc((size_t)T * 3 * C, sizeof(double)), *z = calloc((size_t)T * GH, sizeof(double));
    double *o = calloc((size_t)T * C, sizeof(double)), *dO = calloc((size_t)T * C, sizeof(double));
    double *dqkv = calloc((size_t)T * 3 * C, sizeof(double)), *dz = calloc((size_t)T * GH, sizeof(double));
    double *S = calloc(((size_t)T + 1) * D * D, sizeof(double)), *dS = calloc((size_t)D * D, sizeof(double));
    double *la = calloc((size_t)T * D, sizeof(double));
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * T * C, *dyb = dy + (size_t)b * T * C;
        for (int i = 0; i < T; i++) {
            for (int j = 0; j < 3 * C; j++) {
                double a = P[oba + j];
                for (int c = 0; c < C; c++)
                    a += (double)P[oWa + (size_t)j * C + c] * xb[(size_t)i * C + c];
                qkv[(size_t)i * 3 * C + j] = a;
            }
            for (int j = 0; j < GH; j++) {
                double a = P[obg + j];
                for (int c = 0; c < C; c++)
                    a += (double)P[oWg + (size_t)j * C + c] * xb[(size_t)i * C + c];
                z[(size_t)i * GH + j] = a;
            }
        }
        memset(dqkv, 0, (size_t)T * 3 * C * sizeof(double));
        for (int h = 0; h < H; h++) {
            for (int i = 0; i < T; i++) {
                const double *q = qkv + (size_t)i * 3 * C + h * D, *k = q + C, *v = k + C;
                double *Sp = S + (size_t)i * D * D, *Sn = Sp + (size_t)D * D;
                for (int d = 0; d < D; d++) {
                    la[(size_t)i * D + d] = logsig(z[(size_t)i * GH + h * G + (per_key ? d : 0)]) / TAU;
                    double a = exp(la[(size_t)i * D + d]);
                    for (int e = 0; e < D; e++)
                        Sn[d * D + e] = a * Sp[d * D + e] + k[d] * v[e];
                }
                for (int e = 0; e < D; e++) {
                    double a = 0;
                    for (int d = 0; d < D; d++)
                        a += q[d] * Sn[d * D + e];
                    o[(size_t)i * C + h * D + e] = sc * a;
                }
            }
        }
        for (int i = 0; i < T; i++)
            for (int j = 0; j < C; j++) {
                double a = P[obp + j];
                for (int c = 0; c < C; c++)
                    a += (double)P[oWp + (size_t)j * C + c] * o[(size_t)i * C + c];
                r->y[((size_t)b * T + i) * C + j] = a;
            }
        if (!dy)
            continue;
        /* Backward: output projection, the recurrence in reverse, the gates, the projections. */
        memset(dO, 0, (size_t)T * C * sizeof(double));
        for (int i = 0; i < T; i++)
            for (int j = 0; j < C; j++) {
                double g = dyb[(size_t)i * C + j];
                r->dp[obp + j] += g;
                for (int c = 0; c < C; c++) {
                    r->dp[oWp + (size_t)j * C + c] += g * o[(size_t)i * C + c];
                    dO[(size_t)i * C + c] += g * P[oWp + (size_t)j * C + c];
                }
            }
        memset(dz, 0, (size_t)T * GH * sizeof(double));
        for (int h = 0; h < H; h++) {
            /* recompute this head's states */
            for (int i = 0; i < T; i++) {
                const double *k = qkv + (size_t)i * 3 * C + C + h * D, *v = k + C;
                double *Sp = S + (size_t)i * D * D, *Sn = Sp + (size_t)D * D;
                for (int d = 0; d < D; d++) {
                    la[(size_t)i * D + d] = logsig(z[(size_t)i * GH + h * G + (per_key ? d : 0)]) / TAU;
                    double a = exp(la[(size_t)i * D + d]);
                    for (int e = 0; e < D; e++)
                        Sn[d * D + e] = a * Sp[d * D + e] + k[d] * v[e];
                }
            }
            memset(dS, 0, (size_t)D * D * sizeof(double));
            for (int i = T - 1; i >= 0; i--) {
                const double *q = qkv + (size_t)i * 3 * C + h * D, *k = q + C, *v = k + C;
                double *dq = dqkv + (size_t)i * 3 * C + h * D, *dk = dq + C, *dv = dk + C;
                const double *g = dO + (size_t)i * C + h * D, *Sp = S + (size_t)i * D * D,
                             *Sn = Sp + (size_t)D * D;
                for (int d = 0; d < D; d++)
                    for (int e = 0; e < D; e++) {
                        dS[d * D + e] += sc * q[d] * g[e];
                        dq[d] += sc * Sn[d * D + e] * g[e];
                    }
                for (int d = 0; d < D; d++) {
                    double da = 0, a = exp(la[(size_t)i * D + d]);
                    for (int e = 0; e < D; e++) {
                        dk[d] += dS[d * D + e] * v[e];
                        dv[e] += dS[d * D + e] * k[d];
                        da += dS[d * D + e] * Sp[d * D + e];
                        dS[d * D + e] *= a;
                    }
                    size_t zi = (size_t)i * GH + h * G + (per_key ? d : 0);
                    dz[zi] += da * a / TAU * (1.0 / (1.0 + exp(z[zi]))); /* ∂log a/∂z = σ(−z)/τ */
                }
            }
        }
        for (int i = 0; i < T; i++) {
            double *dxr = r->dx + ((size_t)b * T + i) * C;
            const float *xr = xb + (size_t)i * C;
            for (int c = 0; c < C; c++)
                dxr[c] = 0;
            for (int j = 0; j < 3 * C; j++) {
                double g = dqkv[(size_t)i * 3 * C + j];
                r->dp[oba + j] += g;
                for (int c = 0; c < C; c++) {
                    r->dp[oWa + (size_t)j * C + c] += g * xr[c];
                    dxr[c] += g * P[oWa + (size_t)j * C + c];
                }
            }
            for (int j = 0; j < GH; j++) {
                double g = dz[(size_t)i * GH + j];
                r->dp[obg + j] += g;
                for (int c = 0; c < C; c++) {
                    r->dp[oWg + (size_t)j * C + c] += g * xr[c];
                    dxr[c] += g * P[oWg + (size_t)j * C + c];
                }
            }
        }
    }
    free(qkv), free(z), free(o), free(dO), free(dqkv), free(dz), free(S), free(dS), free(la);
}

/* max |a - b| / max(max |b|, floor) with a float, b double. */
static double rel_err_d(const float *a, const double *b, size_t n, double floor)
{
    double md = 0, mb = floor;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md))
            md = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mb)
            mb = fabs(b[i]);
    }
    return md / mb;
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Gate parameters with spread: decays from ~0.7 to ~1 per step across rows and heads. */
static void spread_gates(struct mc_mixer *t, float w_std, float b_std, float b_mean, uint64_t seed)
{
    size_t oW = mixer_tensor_offset(&t->m, "g_gate.weight"), ob = mixer_tensor_offset(&t->m, "g_gate.bias");
    size_t nW = ob - oW, nb = t->n_params - ob;
    mc_fill_normal(t->params + oW, nW, seed, w_std);
    mc_fill_normal(t->params + ob, nb, seed + 1, b_std);
    for (size_t i = 0; i < nb; i++)
        t->params[ob + i] += b_mean;
}

/* Forward and backward of one spec at (B, T) against ref_run. */
static void check_against_ref(const char *spec, int per_key, int B, int T, double tol_y, double tol_g,
                              float b_mean, float b_std)
{
    const int C = 8, H = 2;
    struct mc_mixer t;
    if (mc_create(&t, spec, C, H, T, B, T, 7, 3.0f) != 0) {
        CHECK(0, "mc_create(%s) failed", spec);
        return;
    }
    spread_gates(&t, 0.5f, b_std, b_mean, 11);
    size_t n = (size_t)B * T * C;
    float *x = malloc(n * sizeof(float)), *dy = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    float *dx = calloc(n, sizeof(float)), *dp = calloc(t.n_params, sizeof(float));
    struct ref_out r = {calloc(n, sizeof(double)), calloc(n, sizeof(double)),
                        calloc(t.n_params, sizeof(double))};
    mc_fill_normal(x, n, 3, 1.0f);
    mc_fill_normal(dy, n, 5, 1.0f);
    float *saved = mc_forward(&t, y, x, T);
    t.m.ops->backward(&t.m, dx, dp, dy, saved, x, t.params, B, T);
    ref_run(&t, x, dy, T, per_key, &r);
    double ey = rel_err_d(y, r.y, n, 1e-6), ex = rel_err_d(dx, r.dx, n, 1e-6);
    double ep = rel_err_d(dp, r.dp, t.n_params, 1e-6);
    size_t og = mixer_tensor_offset(&t.m, "g_gate.weight");
    double eg = rel_err_d(dp + og, r.dp + og, t.n_params - og, 1e-6);
    CHECK(all_finite(y, n) && all_finite(dx, n) && all_finite(dp, t.n_params), "%s T=%d: non-finite", spec,
          T);
    CHECK(ey < tol_y, "%s T=%d: forward rel err %.3g > %.3g", spec, T, ey, tol_y);
    CHECK(ex < tol_g, "%s T=%d: dx rel err %.3g > %.3g", spec, T, ex, tol_g);
    CHECK(ep < tol_g, "%s T=%d: dparams rel err %.3g > %.3g", spec, T, ep, tol_g);
    CHECK(eg < tol_g, "%s T=%d: gate gradient rel err %.3g > %.3g", spec, T, eg, tol_g);
    if (getenv("GLA_TEST_VERBOSE"))
        fprintf(stderr, "%-22s T=%-6d y %.2e dx %.2e dp %.2e dgate %.2e\n", spec, T, ey, ex, ep, eg);
    free(x), free(dy), free(y), free(dx), free(dp), free(r.y), free(r.dx), free(r.dp);
    mx_free(saved);
    mc_free(&t);
}

static int case_chunkwise_equals_recurrence(void)
{
    static const int chunks[] = {1, 3, 4, 64}, lens[] = {1, 7, 33, 65, 130};
    for (int g = 0; g < 2; g++)
        for (size_t c = 0; c < CHECK_N(chunks); c++)
            for (size_t l = 0; l < CHECK_N(lens); l++) {
                char spec[64];
                snprintf(spec, sizeof spec, "gla:c=%d,gate=%s", chunks[c], g ? "key" : "head");
                check_against_ref(spec, g, 2, lens[l], 1e-4, 1e-3, 0.0f, 3.0f);
            }
    return 0;
}

static double proj_loss(struct mc_mixer *t, const float *x, const float *r, float *y)
{
    size_t n = (size_t)t->B * t->T * t->m.C;
    float *saved = mc_forward(t, y, x, t->T);
    double L = 0;
    for (size_t i = 0; i < n; i++)
        L += (double)y[i] * r[i];
    mx_free(saved);
    return L;
}

/* Every gate parameter (weights and biases) by central differences of L = Σ y·r. */
static int case_gate_gradient_fd(void)
{
    for (int g = 0; g < 2; g++) {
        const char *spec = g ? "gla:c=4,gate=key" : "gla:c=4";
        const int B = 2, T = 19, C = 8, H = 2;
        struct mc_mixer t;
        if (mc_create(&t, spec, C, H, T, B, T, 9, 3.0f) != 0)
            return 1;
        spread_gates(&t, 0.5f, 3.0f, 0.0f, 13);
        size_t n = (size_t)B * T * C;
        float *x = malloc(n * sizeof(float)), *r = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
        float *dx = calloc(n, sizeof(float)), *dp = calloc(t.n_params, sizeof(float));
        mc_fill_normal(x, n, 21, 1.0f);
        mc_fill_normal(r, n, 22, 1.0f);
        float *saved = mc_forward(&t, y, x, T);
        t.m.ops->backward(&t.m, dx, dp, r, saved, x, t.params, B, T);
        mx_free(saved);
        size_t og = mixer_tensor_offset(&t.m, "g_gate.weight");
        double worst = 0, scale = 1e-3;
        for (size_t i = og; i < t.n_params; i++)
            scale = fabs(dp[i]) > scale ? fabs(dp[i]) : scale;
        for (size_t i = og; i < t.n_params; i++) {
            const float h = 1e-2f, p0 = t.params[i];
            t.params[i] = p0 + h;
            double Lp = proj_loss(&t, x, r, y);
            t.params[i] = p0 - h;
            double Lm = proj_loss(&t, x, r, y);
            t.params[i] = p0;
            double fd = (Lp - Lm) / (2.0 * h), e = fabs(fd - dp[i]) / scale;
            worst = e > worst ? e : worst;
        }
        CHECK(worst < 1e-2, "%s: gate gradient vs central differences rel err %.3g", spec, worst);
        free(x), free(r), free(y), free(dx), free(dp);
        mc_free(&t);
    }
    return 0;
}

/* Gates near 0 (bias −20: a ≈ e^{−20/16} per step, and −200: e^{−12.5}, a chunk's decay far
 * below float's range) and near 1 (bias +20) over 65,536 tokens: forward and backward stay
 * finite, and agree with the double recurrence. */
static int case_decay_extremes(void)
{
    static const float biases[] = {-200.0f, -20.0f, 20.0f};
    for (int g = 0; g < 2; g++)
        for (size_t i = 0; i < CHECK_N(biases); i++)
            check_against_ref(g ? "gla:gate=key" : "gla", g, 1, 65536, 1e-3, 1e-3, biases[i], 0.0f);
    return 0;
}

static int case_saved_linear_in_t(void)
{
    for (int g = 0; g < 2; g++) {
        struct mc_mixer t;
        if (mc_create(&t, g ? "gla:c=4,gate=key" : "gla:c=4", 8, 2, 4096, 2, 4, 1, 1.0f) != 0)
            return 1;
        size_t s1 = t.m.ops->saved_floats(&t.m, 2, 1);
        CHECK(s1 > 0, "saved_floats(B=2, T=1) = 0");
        for (int T = 2; T <= 4096; T *= 4) {
            size_t s = t.m.ops->saved_floats(&t.m, 2, T);
            CHECK(s == s1 * (size_t)T, "saved_floats(T=%d) = %zu, not %d x %zu", T, s, T, s1);
        }
        mc_free(&t);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"chunkwise_equals_recurrence", case_chunkwise_equals_recurrence},
        {"gate_gradient_fd", case_gate_gradient_fd},
        {"decay_extremes", case_decay_extremes},
        {"saved_linear_in_t", case_saved_linear_in_t},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
