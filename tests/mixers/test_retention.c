/* test_retention.c — the `retnet` mixer beyond the generic suite: the chunkwise retention
 * engine (retnet.h) forward and backward against the naive recurrence written here in double
 * (retention_ref, itself checked by central differences) for chunk sizes 1, 3, 4, 64 and odd
 * lengths; decay extremes (γ = 0, near 0, near 1, 1 in float) over 65,536 tokens staying finite;
 * saved memory linear in T; step == forward over many chunks; bad specs. Not a benchmark. */
#include "check.h"
#include "attention/retnet.h"
#include "mixer_check.h"

#include <math.h>
#include <string.h>

/* ---- the naive reference, in double, one (b,h) ------------------------------------------------
 * o_t = Σ_{s≤t} γ^(t−s) scale (q_t·k_s) v_s, and by hand its gradients for upstream dO:
 *   dq_t = scale Σ_{s≤t} γ^(t−s) (dO_t·v_s) k_s
 *   dk_s = scale Σ_{t≥s} γ^(t−s) (dO_t·v_s) q_t
 *   dv_s =       Σ_{t≥s} γ^(t−s) scale (q_t·k_s) dO_t
 * O(T²·D): the transcript of the formula, no chunks, no state. */
static double dotd(const double *a, const double *b, int D)
{
    double s = 0;
    for (int d = 0; d < D; d++)
        s += a[d] * b[d];
    return s;
}

static void retention_ref(double *O, double *dQ, double *dK, double *dV, const double *dO, const double *Q,
                          const double *K, const double *V, double g, double scale, int T, int D)
{
    size_t n = (size_t)T * D;
    memset(O, 0, n * sizeof(double));
    if (dQ) {
        memset(dQ, 0, n * sizeof(double));
        memset(dK, 0, n * sizeof(double));
        memset(dV, 0, n * sizeof(double));
    }
    for (int t = 0; t < T; t++)
        for (int s = 0; s <= t; s++) {
            double w = pow(g, (double)(t - s)) * scale;
            const double *q = Q + (size_t)t * D, *k = K + (size_t)s * D, *v = V + (size_t)s * D;
            double a = w * dotd(q, k, D);
            for (int d = 0; d < D; d++)
                O[(size_t)t * D + d] += a * v[d];
            if (!dQ)
                continue;
            const double *go = dO + (size_t)t * D;
            double p = w * dotd(go, v, D);
            for (int d = 0; d < D; d++) {
                dQ[(size_t)t * D + d] += p * k[d];
                dK[(size_t)s * D + d] += p * q[d];
                dV[(size_t)s * D + d] += a * go[d];
            }
        }
}

static void to_double(double *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i];
}

/* max |a − b| / max(max |b|, 1e-6), float against double. */
static double rel_err(const float *a, const double *b, size_t n)
{
    double e = 0, mb = 1e-6;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs(a[i] - b[i]));
        mb = fmax(mb, fabs(b[i]));
    }
    return e / mb;
}

/* The reference's own gradients against central differences of L = Σ O·dO (T = 7, D = 3). */
static int case_reference_gradients(void)
{
    const int T = 7, D = 3;
    const double g = 0.7, scale = 0.6;
    size_t n = (size_t)T * D;
    double Q[21], K[21], V[21], dO[21], O[21], dQ[21], dK[21], dV[21], O2[21];
    float tmp[21];
    mc_fill_normal(tmp, n, 1, 1.0f), to_double(Q, tmp, n);
    mc_fill_normal(tmp, n, 2, 1.0f), to_double(K, tmp, n);
    mc_fill_normal(tmp, n, 3, 1.0f), to_double(V, tmp, n);
    mc_fill_normal(tmp, n, 4, 1.0f), to_double(dO, tmp, n);
    retention_ref(O, dQ, dK, dV, dO, Q, K, V, g, scale, T, D);
    double *X[3] = {Q, K, V}, *G[3] = {dQ, dK, dV};
    for (int w = 0; w < 3; w++)
        for (size_t i = 0; i < n; i++) {
            const double h = 1e-5, x0 = X[w][i];
            double Lp = 0, Lm = 0;
            X[w][i] = x0 + h;
            retention_ref(O2, NULL, NULL, NULL, NULL, Q, K, V, g, scale, T, D);
            for (size_t j = 0; j < n; j++)
                Lp += O2[j] * dO[j];
            X[w][i] = x0 - h;
            retention_ref(O2, NULL, NULL, NULL, NULL, Q, K, V, g, scale, T, D);
            for (size_t j = 0; j < n; j++)
                Lm += O2[j] * dO[j];
            X[w][i] = x0;
            double fd = (Lp - Lm) / (2 * h);
            CHECK(fabs(fd - G[w][i]) <= 1e-6 * fmax(1.0, fabs(fd)), "ref grad %d[%zu]: analytic %g fd %g", w,
                  i, G[w][i], fd);
        }
    return 0;
}

/* The engine (B = 2, H = 2 with two decays) against the reference, forward and backward. */
static void check_engine(int T, int c, const double gamma[2])
{
    const int B = 2, H = 2, D = 8;
    const float scale = 1.0f / sqrtf((float)D);
    size_t n = (size_t)B * H * T * D, per = (size_t)T * D;
    float *q = mx_xmalloc(n * 4), *k = mx_xmalloc(n * 4), *v = mx_xmalloc(n * 4), *dout = mx_xmalloc(n * 4);
    float *o = mx_xmalloc(n * 4), *dq = mx_xmalloc(n * 4), *dk = mx_xmalloc(n * 4), *dv = mx_xmalloc(n * 4);
    float *work = mx_xmalloc((retn_work_floats(B, H, T, D, c) + 1) * 4);
    mc_fill_normal(q, n, 101 + (uint64_t)T, 1.0f);
    mc_fill_normal(k, n, 202 + (uint64_t)T, 1.0f);
    mc_fill_normal(v, n, 303 + (uint64_t)T, 1.0f);
    mc_fill_normal(dout, n, 404 + (uint64_t)T, 1.0f);
    /* NaN poison: the engine must write every output (overwrite contract). */
    for (size_t i = 0; i < n; i++)
        o[i] = dq[i] = dk[i] = dv[i] = NAN;
    retn_forward(o, work, q, k, v, gamma, scale, B, H, T, D, c);
    retn_backward(dq, dk, dv, work, dout, q, k, v, gamma, scale, B, H, T, D, c);
    double *Q = mx_xmalloc(per * 8), *K = mx_xmalloc(per * 8), *V = mx_xmalloc(per * 8),
           *dO = mx_xmalloc(per * 8);
    double *O = mx_xmalloc(per * 8), *dQ = mx_xmalloc(per * 8), *dK = mx_xmalloc(per * 8),
           *dV = mx_xmalloc(per * 8);
    double worst[4] = {0};
    for (int bh = 0; bh < B * H; bh++) {
        size_t off = (size_t)bh * per;
        to_double(Q, q + off, per), to_double(K, k + off, per), to_double(V, v + off, per);
        to_double(dO, dout + off, per);
        retention_ref(O, dQ, dK, dV, dO, Q, K, V, gamma[bh % H], scale, T, D);
        worst[0] = fmax(worst[0], rel_err(o + off, O, per));
        worst[1] = fmax(worst[1], rel_err(dq + off, dQ, per));
        worst[2] = fmax(worst[2], rel_err(dk + off, dK, per));
        worst[3] = fmax(worst[3], rel_err(dv + off, dV, per));
    }
    const char *what[4] = {"o", "dq", "dk", "dv"};
    for (int i = 0; i < 4; i++)
        CHECK(worst[i] < 2e-5, "T=%d c=%d gamma=%g,%g: %s rel err %.3g (NaN: a row left unwritten)", T, c,
              gamma[0], gamma[1], what[i], worst[i]);
    mx_free(q), mx_free(k), mx_free(v), mx_free(dout), mx_free(o), mx_free(dq), mx_free(dk), mx_free(dv);
    mx_free(work), mx_free(Q), mx_free(K), mx_free(V), mx_free(dO), mx_free(O), mx_free(dQ), mx_free(dK);
    mx_free(dV);
}

static int case_engine_vs_reference(void)
{
    static const int Ts[] = {1, 7, 33, 65, 130}, cs[] = {1, 3, 4, 64};
    static const double gammas[][2] = {{1.0 - 1.0 / 32, 1.0 - 1.0 / 64}, {0.5, 0.9}, {0.0, 0.999}};
    for (size_t g = 0; g < CHECK_N(gammas); g++)
        for (size_t i = 0; i < CHECK_N(Ts); i++)
            for (size_t j = 0; j < CHECK_N(cs); j++)
                check_engine(Ts[i], cs[j], gammas[g]);
    return 0;
}

/* ---- decay extremes over 64k tokens: the whole mixer, forward and backward finite ---------- */
static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

static void check_long(const char *spec)
{
    const int C = 8, H = 2, T = 65536, B = 1;
    struct mc_mixer t;
    if (mc_create(&t, spec, C, H, T, B, T, 77, 1.0f) != 0) {
        check_failures++;
        return;
    }
    size_t n = (size_t)B * T * C;
    float *x = mx_xmalloc(n * 4), *y = mx_xmalloc(n * 4), *dx = mx_xcalloc(n * 4);
    float *dp = mx_xcalloc((t.n_params + 1) * 4);
    mc_fill_normal(x, n, 31, 1.0f);
    float *saved = mc_forward(&t, y, x, T);
    t.m.ops->backward(&t.m, dx, dp, x, saved, x, t.params, B, T); /* dy = x: any bounded dy */
    double ymax = 0;
    for (size_t i = 0; i < n; i++)
        ymax = fmax(ymax, fabs(y[i]));
    CHECK(all_finite(y, n), "%s: T=%d forward has non-finite outputs", t.m.spec, T);
    CHECK(all_finite(dx, n) && all_finite(dp, t.n_params), "%s: T=%d backward non-finite", t.m.spec, T);
    CHECK(ymax > 0, "%s: T=%d output is all zero", t.m.spec, T);
    fprintf(stderr, "  %-32s T=%d: finite, max|y| %.3g\n", t.m.spec, T, ymax);
    mx_free(saved), mx_free(x), mx_free(y), mx_free(dx), mx_free(dp);
    mc_free(&t);
}

static int case_decay_extremes_64k(void)
{
    check_long("retnet:gamma=0");          /* o_t = (q_t·k_t) v_t only */
    check_long("retnet:gamma=0.000001");   /* every power past the first underflows */
    check_long("retnet:gamma=0.99999");    /* a 100k-token memory: the state only grows */
    check_long("retnet:e=30");             /* γ rounds to 1 in float: a plain prefix sum */
    check_long("retnet:c=1,gamma=0.9999"); /* one row per chunk: 64k state updates */
    return 0;
}

/* ---- memory: saved_floats exactly linear in T (no T x T, no per-token D x D); the scratch
 * affine in T (chunk buffers + one D x D state per chunk) ---------------------------------- */
static int case_memory_linear(void)
{
    struct mc_mixer t;
    if (mc_create(&t, "retnet", 16, 2, 1 << 17, 1, 4, 5, 1.0f) != 0)
        return 1;
    const struct mixer_ops *ops = t.m.ops;
    for (int T = 64; T <= (1 << 16); T *= 2) {
        size_t s1 = ops->saved_floats(&t.m, 2, T), s2 = ops->saved_floats(&t.m, 2, 2 * T);
        CHECK(s2 == 2 * s1, "saved(T=%d) = %zu, saved(2T) = %zu: not linear", T, s1, s2);
        CHECK(s1 <= 6 * (size_t)2 * T * 16, "saved(T=%d) = %zu floats > 6·B·T·C", T, s1);
        size_t w1 = ops->scratch_floats(&t.m, 2, T), w2 = ops->scratch_floats(&t.m, 2, 2 * T);
        size_t w4 = ops->scratch_floats(&t.m, 2, 4 * T);
        CHECK(w4 - w2 == 2 * (w2 - w1), "scratch at T=%d,2T,4T = %zu,%zu,%zu: not affine in T", T, w1, w2,
              w4);
    }
    mc_free(&t);
    return 0;
}

/* ---- step == forward over many chunks (the suite's T = 20 crosses only a few) -------------- */
static int case_step_long(void)
{
    static const char *const specs[] = {"retnet:c=7,e=1", "retnet:c=64"};
    for (size_t i = 0; i < CHECK_N(specs); i++) {
        struct mc_mixer t;
        if (mc_create(&t, specs[i], 16, 2, 150, 1, 150, 99, 1.0f) != 0)
            return 1;
        CHECK(mc_check_step(&t, 1e-4) == 0, "%s: step != forward at T=150", specs[i]);
        mc_free(&t);
    }
    return 0;
}

static int case_bad_specs(void)
{
    static const char *const bad[] = {"retnet:c=0", "retnet:gamma=1", "retnet:gamma=-0.5",
                                      "retnet:e=5,gamma=0.5", "retnet:z=1"};
    struct mixer_dims d = {.C = 16, .H = 2, .T_max = 32, .bias = 1, .layer = 0, .n_layer = 1, .seed = 1};
    for (size_t i = 0; i < CHECK_N(bad); i++) {
        struct mixer m;
        struct mx_error err;
        int rc = mixer_create(&m, bad[i], &d, &err);
        CHECK(rc != 0, "spec '%s' accepted", bad[i]);
        if (rc == 0)
            mixer_destroy(&m);
    }
    struct mixer m;
    struct mx_error err;
    CHECK(mixer_create(&m, "retnet", &d, &err) == 0, "default spec: %s", err.msg);
    CHECK(strcmp(m.spec, "retnet:c=64,e=5") == 0, "canonical spec '%s'", m.spec);
    mixer_destroy(&m);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"reference_gradients", case_reference_gradients},
        {"engine_vs_reference", case_engine_vs_reference},
        {"decay_extremes_64k", case_decay_extremes_64k},
        {"memory_linear", case_memory_linear},
        {"step_long", case_step_long},
        {"bad_specs", case_bad_specs},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
