/* test_kernel.c — the kernel mixers (`linear`, `performer`) beyond the generic suite: the chunked
 * engine against the naive quadratic form of the same φ written here in double (forward and
 * gradients, large activations included), FAVOR+ error against exact softmax falling with m,
 * a 64k-token forward/backward staying finite, the random-feature draw schedule, bad specs.
 * Not a benchmark. */
#include "check.h"
#include "attention/kernel_attn.h"
#include "mixer_check.h"

#include <math.h>
#include <string.h>

static int make_rope(struct mixer *m, const char *spec, int C, int H, int T_max, int layer, int rope)
{
    struct mixer_dims d = {
        .C = C, .H = H, .T_max = T_max, .bias = 1, .layer = layer, .n_layer = 2, .rope = rope, .seed = 1234};
    struct mx_error err;
    if (mixer_create(m, spec, &d, &err) != 0) {
        fprintf(stderr, "FAIL mixer_create(%s): %s\n", spec, err.msg);
        check_failures++;
        return -1;
    }
    return 0;
}

static int make(struct mixer *m, const char *spec, int C, int H, int T_max, int layer)
{
    return make_rope(m, spec, C, H, T_max, layer, 0);
}

/* ---- the naive quadratic form, in double ----------------------------------------------------
 * kind 0: linear, φ = elu+1, ε = 1e-6. kind 1: FAVOR+, φ_i(x) = exp(w_i·x - |x|²/2)/√M with
 * x = q·D^(-1/4) (W given already scaled by D^(-1/4)); stabilised the non-causal way (one global
 * max over all keys and features, exact in a non-causal reference), ε = 1e-20 in that unit.
 * o_t = Σ_{j≤t} (φq_t·φk_j) v_j / (Σ_{j≤t} φq_t·φk_j + ε), one (b,h) at a time. */
struct naive {
    int kind, M, D;
    const float *W; /* (M,D) */
    int rope;       /* 1: RoFormer §3.3, the features of the numerator rotated by position */
};

/* The rotation written out: pair (2i, 2i+1) of a feature row at position t turned by
 * t·10000^(-2i/F), in double. */
static void naive_rotate(double *dst, const double *phi, int t, int F)
{
    for (int i = 0; i < F / 2; i++) {
        double a = t * pow(10000.0, -2.0 * i / F), c = cos(a), sn = sin(a);
        dst[2 * i] = phi[2 * i] * c - phi[2 * i + 1] * sn;
        dst[2 * i + 1] = phi[2 * i] * sn + phi[2 * i + 1] * c;
    }
}

static void naive_phi(const struct naive *nv, double *phi, const double *x, int key, double shift)
{
    int D = nv->D;
    if (nv->kind == 0) {
        for (int d = 0; d < D; d++)
            phi[d] = x[d] > 0 ? x[d] + 1 : exp(x[d]);
        return;
    }
    double sq = 0;
    for (int d = 0; d < D; d++)
        sq += x[d] * x[d];
    sq /= sqrt((double)D);
    double u[4096], mx = -INFINITY;
    for (int i = 0; i < nv->M; i++) {
        double s = 0;
        for (int d = 0; d < D; d++)
            s += nv->W[(size_t)i * D + d] * x[d];
        u[i] = s - 0.5 * sq;
        mx = u[i] > mx ? u[i] : mx;
    }
    /* queries: per-row max (cancels); keys: the global shift passed in */
    double sub = key ? shift : mx;
    for (int i = 0; i < nv->M; i++)
        phi[i] = exp(u[i] - sub) / sqrt((double)nv->M);
}

/* Global key shift for FAVOR+: max over all keys j and features i of w_i·x_j - |x_j|²/2. */
static double naive_shift(const struct naive *nv, const double *K, int T)
{
    if (nv->kind == 0)
        return 0;
    int D = nv->D;
    double mx = -INFINITY;
    for (int t = 0; t < T; t++) {
        const double *x = K + (size_t)t * D;
        double sq = 0;
        for (int d = 0; d < D; d++)
            sq += x[d] * x[d];
        sq /= sqrt((double)D);
        for (int i = 0; i < nv->M; i++) {
            double s = 0;
            for (int d = 0; d < D; d++)
                s += nv->W[(size_t)i * D + d] * x[d];
            if (s - 0.5 * sq > mx)
                mx = s - 0.5 * sq;
        }
    }
    return mx;
}

static void naive_forward(const struct naive *nv, double *O, const double *Q, const double *K,
                          const double *V, int T)
{
    int D = nv->D, F = nv->kind == 0 ? D : nv->M;
    double eps = nv->kind == 0 ? 1e-6 : 0; /* FAVOR+: the pure ratio (units differ from the engine) */
    double shift = naive_shift(nv, K, T);
    double *pq = mx_xmalloc((size_t)T * F * sizeof(double)), *pk = mx_xmalloc((size_t)T * F * sizeof(double));
    for (int t = 0; t < T; t++) {
        naive_phi(nv, pq + (size_t)t * F, Q + (size_t)t * D, 0, 0);
        naive_phi(nv, pk + (size_t)t * F, K + (size_t)t * D, 1, shift);
    }
    double *rq = mx_xmalloc((size_t)T * F * sizeof(double)), *rk = mx_xmalloc((size_t)T * F * sizeof(double));
    for (int t = 0; t < T; t++) {
        if (nv->rope) {
            naive_rotate(rq + (size_t)t * F, pq + (size_t)t * F, t, F);
            naive_rotate(rk + (size_t)t * F, pk + (size_t)t * F, t, F);
        } else {
            memcpy(rq + (size_t)t * F, pq + (size_t)t * F, (size_t)F * sizeof(double));
            memcpy(rk + (size_t)t * F, pk + (size_t)t * F, (size_t)F * sizeof(double));
        }
    }
    for (int t = 0; t < T; t++) {
        double den = 0, num[256] = {0};
        for (int j = 0; j <= t; j++) { /* explicit causal mask: j <= t */
            double a = 0, ar = 0;
            for (int f = 0; f < F; f++) {
                a += pq[(size_t)t * F + f] * pk[(size_t)j * F + f];
                ar += rq[(size_t)t * F + f] * rk[(size_t)j * F + f];
            }
            den += a;
            for (int d = 0; d < D; d++)
                num[d] += ar * V[(size_t)j * D + d];
        }
        for (int d = 0; d < D; d++)
            O[(size_t)t * D + d] = num[d] / (den + eps);
    }
    mx_free(pq);
    mx_free(pk);
    mx_free(rq);
    mx_free(rk);
}

/* L = Σ O·R in double. */
static double naive_loss(const struct naive *nv, const double *Q, const double *K, const double *V,
                         const double *R, int T, double *O)
{
    naive_forward(nv, O, Q, K, V, T);
    double L = 0;
    for (size_t i = 0; i < (size_t)T * nv->D; i++)
        L += O[i] * R[i];
    return L;
}

/* Core forward+backward of mixer `m` on one (b,h) against the naive form: forward rel error and
 * every gradient coordinate against double central differences of the naive loss. */
static void check_vs_naive_rope(const char *spec, int D, int T, float qk_scale, double tol, int rope)
{
    struct mixer m;
    if (make_rope(&m, spec, D, 1, T, 0, rope) != 0)
        return;
    /* With rope the engine rotates the features (rope=map): the shared path's q, k rotation
     * is not applied here (the core is called directly), so only rope_in_core is meaningful. */
    CHECK(m.rope_in_core == rope, "%s: rope_in_core %d with --pos rope %d", spec, m.rope_in_core, rope);
    const struct attn_core *core = m.ops->core;
    size_t n = (size_t)T * D;
    float *q = mx_xmalloc(n * 4), *k = mx_xmalloc(n * 4), *v = mx_xmalloc(n * 4), *o = mx_xmalloc(n * 4);
    float *r = mx_xmalloc(n * 4), *dq = mx_xcalloc(n * 4), *dk = mx_xcalloc(n * 4), *dv = mx_xcalloc(n * 4);
    mc_fill_normal(q, n, 11, qk_scale);
    mc_fill_normal(k, n, 12, qk_scale);
    mc_fill_normal(v, n, 13, 1.0f);
    mc_fill_normal(r, n, 14, 1.0f);
    float *saved = mx_xmalloc((core->saved_floats(&m, 1, T) + 1) * 4);
    float *work = mx_xmalloc((core->work_floats(&m, 1, T) + 1) * 4);
    core->forward(&m, o, saved, work, q, k, v, NULL, 1, T);
    core->backward(&m, dq, dk, dv, NULL, work, r, o, saved, q, k, v, NULL, 1, T);

    struct naive nv = {.kind = strncmp(spec, "linear", 6) == 0 ? 0 : 1, .D = D, .rope = rope};
    float *W = NULL;
    if (nv.kind == 1) {
        W = mx_xmalloc((size_t)16384 * D * 4);
        nv.M = performer_features(&m, W);
        nv.W = W;
    }
    double *Q = mx_xmalloc(n * 8), *K = mx_xmalloc(n * 8), *V = mx_xmalloc(n * 8);
    double *R = mx_xmalloc(n * 8), *O = mx_xmalloc(n * 8);
    for (size_t i = 0; i < n; i++)
        Q[i] = q[i], K[i] = k[i], V[i] = v[i], R[i] = r[i];
    naive_loss(&nv, Q, K, V, R, T, O);
    double emax = 0, omax = 1e-6;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        finite &= isfinite(o[i]);
        emax = fmax(emax, fabs(o[i] - O[i]));
        omax = fmax(omax, fabs(O[i]));
    }
    CHECK(finite && emax / omax < tol, "%s (qk scale %g): forward vs naive rel err %.2e > %.0e", spec,
          qk_scale, emax / omax, tol);
    /* Gradients: every coordinate of q, k, v. */
    double *X[3] = {Q, K, V};
    float *G[3] = {dq, dk, dv};
    double gerr = 0, gmax = 1e-6;
    for (int w = 0; w < 3; w++)
        for (size_t i = 0; i < n; i++) {
            double keep = X[w][i], h = 1e-5 * fmax(1.0, fabs(keep));
            X[w][i] = keep + h;
            double lp = naive_loss(&nv, Q, K, V, R, T, O);
            X[w][i] = keep - h;
            double lm = naive_loss(&nv, Q, K, V, R, T, O);
            X[w][i] = keep;
            double num = (lp - lm) / (2 * h);
            gerr = fmax(gerr, fabs(num - G[w][i]));
            gmax = fmax(gmax, fabs(num));
        }
    CHECK(gerr / gmax < tol, "%s (qk scale %g): gradients vs naive rel err %.2e > %.0e", spec, qk_scale,
          gerr / gmax, tol);
    fprintf(stderr, "  %-34s T=%d qk*%-4g%s forward %.2e gradients %.2e\n", m.spec, T, qk_scale,
            rope ? " rope" : "", emax / omax, gerr / gmax);
    mx_free(W);
    mx_free(Q), mx_free(K), mx_free(V), mx_free(R), mx_free(O);
    mx_free(q), mx_free(k), mx_free(v), mx_free(o), mx_free(r), mx_free(dq), mx_free(dk), mx_free(dv);
    mx_free(saved), mx_free(work);
    mixer_destroy(&m);
}

static void check_vs_naive(const char *spec, int D, int T, float qk_scale, double tol)
{
    check_vs_naive_rope(spec, D, T, qk_scale, tol, 0);
}

/* ---- FAVOR+ error against exact softmax falls with m ---------------------------------------- */
static void check_performer_converges(void)
{
    const int D = 16, H = 2, T = 64, B = 1, draws = 6;
    const int Ms[4] = {16, 64, 256, 1024};
    size_t n = (size_t)B * H * T * D;
    float *q = mx_xmalloc(n * 4), *k = mx_xmalloc(n * 4), *v = mx_xmalloc(n * 4);
    float *o = mx_xmalloc(n * 4), *oref = mx_xmalloc(n * 4), *lse = mx_xmalloc((size_t)B * H * T * 4);
    /* |q|,|k| ~ 2 keep the estimator in its Monte Carlo regime (error ~ 1/sqrt(m)); far larger
     * norms give heavy-tailed exp features whose error falls more slowly (FAVOR+'s known
     * variance, not a bug). To show the scores still matter, the error is also compared with
     * that of plain causal averaging (uniform attention) below. */
    mc_fill_normal(q, n, 21, 0.5f);
    mc_fill_normal(k, n, 22, 0.5f);
    mc_fill_normal(v, n, 23, 1.0f);
    attn_masked_ref_forward(oref, lse, q, k, v, B, H, T, D, NULL, NULL);
    double uni = 0, uref = 0;
    for (int bh = 0; bh < B * H; bh++)
        for (int d = 0; d < D; d++) {
            double acc = 0;
            for (int t = 0; t < T; t++) {
                size_t i = ((size_t)bh * T + t) * D + d;
                acc += v[i];
                uni += fabs(acc / (t + 1) - oref[i]);
                uref += fabs((double)oref[i]);
            }
        }
    uni /= uref;
    double err[4];
    for (int a = 0; a < 4; a++) {
        char spec[64];
        snprintf(spec, sizeof spec, "performer:m=%d,redraw=1,c=16", Ms[a]);
        struct mixer m;
        if (make(&m, spec, H * D, H, T, 0) != 0)
            return;
        const struct attn_core *core = m.ops->core;
        float *saved = mx_xmalloc((core->saved_floats(&m, B, T) + 1) * 4);
        float *work = mx_xmalloc((core->work_floats(&m, B, T) + 1) * 4);
        double sum = 0;
        for (int s = 0; s < draws; s++) {
            m.step = s; /* redraw=1: a new draw per step */
            core->forward(&m, o, saved, work, q, k, v, NULL, B, T);
            double e = 0, ref = 0;
            for (size_t i = 0; i < n; i++) {
                e += fabs((double)o[i] - oref[i]);
                ref += fabs((double)oref[i]);
            }
            sum += e / ref;
        }
        err[a] = sum / draws;
        fprintf(stderr, "  performer m=%-5d mean rel L1 error vs exact softmax over %d draws: %.4f\n", Ms[a],
                draws, err[a]);
        mx_free(saved), mx_free(work);
        mixer_destroy(&m);
    }
    for (int a = 1; a < 4; a++)
        CHECK(err[a] < err[a - 1], "performer error does not fall: m=%d %.4f, m=%d %.4f", Ms[a - 1],
              err[a - 1], Ms[a], err[a]);
    /* Monte Carlo error ~ 1/sqrt(m): 64x more features should cut it well over 3x. */
    CHECK(err[3] < err[0] / 3, "performer error m=1024 %.4f not < m=16 %.4f / 3", err[3], err[0]);
    CHECK(err[3] < 0.1, "performer m=1024 error %.4f above 0.1", err[3]);
    CHECK(err[3] < uni / 3, "performer m=1024 error %.4f not well below uniform averaging's %.4f", err[3],
          uni);
    fprintf(stderr, "  (uniform causal averaging instead of attention: error %.4f)\n", uni);
    mx_free(q), mx_free(k), mx_free(v), mx_free(o), mx_free(oref), mx_free(lse);
}

/* ---- long sequences stay finite ------------------------------------------------------------- */
static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

static void check_long(const char *spec, float param_scale, float x_std)
{
    const int C = 16, H = 2, T = 65536, B = 1;
    struct mc_mixer t;
    if (mc_create(&t, spec, C, H, T, B, T, 77, param_scale) != 0) {
        check_failures++;
        return;
    }
    size_t n = (size_t)B * T * C;
    float *x = mx_xmalloc(n * 4), *y = mx_xmalloc(n * 4), *dx = mx_xcalloc(n * 4);
    float *dp = mx_xcalloc((t.n_params + 1) * 4);
    mc_fill_normal(x, n, 31, x_std);
    double t0 = mx_now();
    float *saved = mc_forward(&t, y, x, T);
    double t1 = mx_now();
    t.m.ops->backward(&t.m, dx, dp, x, saved, x, t.params, B, T); /* dy = x: any bounded dy */
    double t2 = mx_now();
    double ymax = 0;
    for (size_t i = 0; i < n; i++)
        ymax = fmax(ymax, fabs(y[i]));
    CHECK(all_finite(y, n), "%s: T=%d forward has non-finite outputs", t.m.spec, T);
    CHECK(all_finite(dx, n) && all_finite(dp, t.n_params), "%s: T=%d backward non-finite", t.m.spec, T);
    fprintf(stderr, "  %-34s T=%d (param scale %g, x std %g): finite, max|y| %.3g, fwd %.0f ms bwd %.0f ms\n",
            t.m.spec, T, param_scale, x_std, ymax, 1e3 * (t1 - t0), 1e3 * (t2 - t1));
    mx_free(saved), mx_free(x), mx_free(y), mx_free(dx), mx_free(dp);
    mc_free(&t);
}

/* ---- step == forward on a long run crossing many chunks and many running-max updates ------- */
static void check_step_long(const char *spec, float param_scale)
{
    const int C = 16, H = 2, T = 300, B = 1;
    struct mc_mixer t;
    if (mc_create(&t, spec, C, H, T, B, T, 99, param_scale) != 0) {
        check_failures++;
        return;
    }
    size_t n = (size_t)T * C;
    float *x = mx_xmalloc(n * 4), *y = mx_xmalloc(n * 4), *yt = mx_xmalloc(C * 4);
    mc_fill_normal(x, n, 41, 1.0f);
    /* a ramp of scales so the key running max keeps moving */
    for (int i = 0; i < T; i++)
        for (int c = 0; c < C; c++)
            x[(size_t)i * C + c] *= 0.2f + 3.0f * (float)i / T;
    mx_free(mc_forward(&t, y, x, T));
    float *state = mx_xcalloc((t.m.ops->state_floats(&t.m) + 1) * 4);
    double worst = 0;
    for (int i = 0; i < T; i++) {
        t.m.ops->step(&t.m, yt, state, x + (size_t)i * C, t.params, i);
        worst = fmax(worst, mc_rel_err(yt, y + (size_t)i * C, C, 1e-3));
    }
    CHECK(worst < 1e-4, "%s: step vs forward over T=%d rel err %.2e", t.m.spec, T, worst);
    fprintf(stderr, "  %-34s step == forward over T=%d: worst rel err %.2e\n", t.m.spec, T, worst);
    mx_free(state), mx_free(x), mx_free(y), mx_free(yt);
    mc_free(&t);
}

/* ---- the draw schedule ---------------------------------------------------------------------- */
static void check_draws(void)
{
    const int C = 32, H = 2, D = 16, M = 40;
    struct mixer a, b, c;
    if (make(&a, "performer:m=40,redraw=1000", C, H, 32, 0) ||
        make(&b, "performer:m=40,redraw=1000", C, H, 32, 0) ||
        make(&c, "performer:m=40,redraw=1000", C, H, 32, 1))
        return;
    size_t nw = (size_t)M * D * 4;
    float *w0 = mx_xmalloc(nw), *w999 = mx_xmalloc(nw), *w1000 = mx_xmalloc(nw), *wb = mx_xmalloc(nw);
    float *wl = mx_xmalloc(nw);
    a.step = 0;
    CHECK(performer_features(&a, w0) == M, "performer_features returns m");
    a.step = 999;
    performer_features(&a, w999);
    a.step = 1000;
    performer_features(&a, w1000);
    b.step = 1999; /* a fresh mixer resumed mid-draw gets the same draw */
    performer_features(&b, wb);
    c.step = 1000;
    performer_features(&c, wl);
    CHECK(memcmp(w0, w999, nw) == 0, "draw changed within one redraw period (step 0 vs 999)");
    CHECK(memcmp(w0, w1000, nw) != 0, "no new draw at step 1000 with redraw=1000");
    CHECK(memcmp(w1000, wb, nw) == 0, "the draw at step 1999 differs between two mixers (resume not exact)");
    CHECK(memcmp(w1000, wl, nw) != 0, "layers 0 and 1 share a draw");
    /* Orthogonal blocks: rows of one block are orthogonal; rows have chi-like norms. */
    double worst = 0, nrm_sum = 0;
    for (int i = 0; i < M; i++) {
        double ni = 0;
        for (int d = 0; d < D; d++)
            ni += (double)w0[i * D + d] * w0[i * D + d];
        nrm_sum += sqrt(ni);
        for (int j = (i / D) * D; j < i; j++) {
            double p = 0, nj = 0;
            for (int d = 0; d < D; d++) {
                p += (double)w0[i * D + d] * w0[j * D + d];
                nj += (double)w0[j * D + d] * w0[j * D + d];
            }
            worst = fmax(worst, fabs(p) / sqrt(ni * nj));
        }
    }
    CHECK(worst < 1e-5, "rows of an orthogonal block not orthogonal (cos %.2e)", worst);
    /* E|w| = E chi_D · D^(-1/4) ≈ sqrt(D) D^(-1/4) = D^(1/4) = 2 for D = 16. */
    double mean = nrm_sum / M;
    CHECK(mean > 1.6 && mean < 2.4, "row norms mean %.3f, expected ~2 (chi_16 * 16^-1/4)", mean);
    /* redraw=0: one draw for ever. */
    struct mixer z;
    if (make(&z, "performer:m=40,redraw=0", C, H, 32, 0) == 0) {
        z.step = 0;
        performer_features(&z, w999);
        z.step = 123456789;
        performer_features(&z, wb);
        CHECK(memcmp(w999, wb, nw) == 0, "redraw=0 redrew");
        mixer_destroy(&z);
    }
    /* The forward uses the draw of m->step: same step, same output; next period, different. */
    {
        struct mc_mixer t;
        const int T = 24;
        if (mc_create(&t, "performer:m=16,redraw=10,c=8", C, H, T, 1, T, 5, 3.0f) == 0) {
            size_t n = (size_t)T * C;
            float *x = mx_xmalloc(n * 4), *y0 = mx_xmalloc(n * 4), *y9 = mx_xmalloc(n * 4),
                  *y10 = mx_xmalloc(n * 4);
            mc_fill_normal(x, n, 51, 1.0f);
            t.m.step = 0;
            mx_free(mc_forward(&t, y0, x, T));
            t.m.step = 10;
            mx_free(mc_forward(&t, y10, x, T));
            t.m.step = 9;
            mx_free(mc_forward(&t, y9, x, T));
            CHECK(memcmp(y0, y9, n * 4) == 0, "forward at steps 0 and 9 differ with redraw=10");
            CHECK(memcmp(y0, y10, n * 4) != 0, "forward at step 10 reuses the old draw");
            mx_free(x), mx_free(y0), mx_free(y9), mx_free(y10);
            mc_free(&t);
        }
    }
    fprintf(stderr,
            "  draws: fixed within a period, new after redraw, per layer, resumable; "
            "block cos max %.1e, mean row norm %.3f\n",
            worst, mean);
    mx_free(w0), mx_free(w999), mx_free(w1000), mx_free(wb), mx_free(wl);
    mixer_destroy(&a), mixer_destroy(&b), mixer_destroy(&c);
}

/* ---- bad specs -------------------------------------------------------------------------------- */
static void check_bad_specs(void)
{
    struct {
        const char *spec, *must_name;
    } bad[] = {
        {"linear:c=0", "c"},
        {"linear:c=abc", "c"},
        {"linear:c=5000", "c"},
        {"linear:m=16", "m"},
        {"performer:m=0", "m"},
        {"performer:m=-3", "m"},
        {"performer:m=99999", "m"},
        {"performer:redraw=-1", "redraw"},
        {"performer:m=16,m=32", "m"},
        {"performer:c=0", "c"},
        {"performer:features=8", "features"},
        {"performer:m=", "m"},
        {"linear:rope=after", "rope"},
        {"performer:rope=", "rope"},
    };
    struct mixer_dims d = {.C = 16, .H = 2, .T_max = 32, .bias = 1, .n_layer = 1, .seed = 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mixer m;
        struct mx_error err = {{0}};
        int rc = mixer_create(&m, bad[i].spec, &d, &err);
        CHECK(rc != 0, "spec '%s' accepted", bad[i].spec);
        if (rc == 0) {
            mixer_destroy(&m);
            continue;
        }
        char key[32];
        snprintf(key, sizeof key, "%s", bad[i].must_name);
        CHECK(strstr(err.msg, key) != NULL, "error for '%s' does not name '%s': %s", bad[i].spec, key,
              err.msg);
        fprintf(stderr, "  %-24s -> %s\n", bad[i].spec, err.msg);
    }
    /* Canonical specs write every default. */
    struct mixer m;
    if (mixer_create(&m, "performer", &d, &(struct mx_error){{0}}) == 0) {
        CHECK(strcmp(m.spec, "performer:m=256,redraw=1000,c=64,rope=map") == 0, "canonical spec %s", m.spec);
        mixer_destroy(&m);
    }
    if (mixer_create(&m, "linear", &d, &(struct mx_error){{0}}) == 0) {
        CHECK(strcmp(m.spec, "linear:c=64,rope=map") == 0, "canonical spec %s", m.spec);
        mixer_destroy(&m);
    }
    /* rope=map rotates pairs of features: an odd count is refused under --pos rope (and
     * accepted without it, or with rope=qk, which rotates q and k instead). */
    d.rope = 1;
    struct mx_error err = {{0}};
    CHECK(mixer_create(&m, "performer:m=15", &d, &err) != 0 && strstr(err.msg, "odd") && strstr(err.msg, "15"),
          "performer:m=15 under --pos rope: %s", err.msg);
    fprintf(stderr, "  %-24s -> %s\n", "performer:m=15 (rope)", err.msg);
    if (mixer_create(&m, "performer:m=15,rope=qk", &d, &err) == 0) {
        CHECK(!m.rope_in_core && m.rope, "rope=qk: the shared path rotates q and k");
        mixer_destroy(&m);
    } else
        CHECK(0, "performer:m=15,rope=qk under --pos rope: %s", err.msg);
    d.rope = 0;
    if (mixer_create(&m, "performer:m=15", &d, &err) == 0)
        mixer_destroy(&m);
    else
        CHECK(0, "performer:m=15 without rope: %s", err.msg);
}

/* ---- the vectorisable exp against its reference, expf ---------------------------------------- */
static void check_expf(void)
{
    double worst = 0;
    float at = 0;
    for (float x = -87.25f; x <= 88.7f; x += 0.001373f) {
        double e = fabs((double)kattn_expf(x) - expf(x)) / expf(x);
        if (e > worst)
            worst = e, at = x;
    }
    CHECK(worst < 4 * 1.2e-7, "kattn_expf vs expf: rel err %.2e at x=%g (> 4 ulp)", worst, at);
    CHECK(kattn_expf(0.0f) == 1.0f, "kattn_expf(0) = %.9g", kattn_expf(0.0f));
    CHECK(kattn_expf(-100.0f) == 0.0f && kattn_expf(-1e30f) == 0.0f, "kattn_expf underflow not 0");
    CHECK(isinf(kattn_expf(89.0f)) && isinf(kattn_expf(1e30f)), "kattn_expf overflow not inf");
    CHECK(isnan(kattn_expf(NAN)), "kattn_expf(NaN) not NaN");
    fprintf(stderr, "  kattn_expf vs expf on [-87.25, 88.7]: worst rel err %.2e\n", worst);
}

static int case_expf(void)
{
    check_expf();
    return 0;
}

/* The chunked engine against the naive quadratic form, over chunk sizes that divide T, do not,
 * and exceed it; performer also with activations large enough to overflow float unstabilised. */
static int case_vs_naive(void)
{
    check_vs_naive("linear:c=1", 8, 23, 1.0f, 1e-4);
    check_vs_naive("linear:c=5", 8, 23, 1.0f, 1e-4);
    check_vs_naive("linear:c=64", 8, 23, 1.0f, 1e-4);
    check_vs_naive("linear:c=4", 8, 23, 6.0f, 1e-4);
    check_vs_naive("performer:m=24,c=1", 8, 23, 1.0f, 1e-4);
    check_vs_naive("performer:m=24,c=5", 8, 23, 1.0f, 1e-4);
    check_vs_naive("performer:m=32,c=64", 8, 23, 1.0f, 1e-4);
    check_vs_naive("performer:m=20,c=4", 8, 23, 12.0f, 1e-3);
    /* Rotary features (RoFormer §3.3): the numerator rotated, the denominator plain. */
    check_vs_naive_rope("linear:c=1", 8, 23, 1.0f, 1e-4, 1);
    check_vs_naive_rope("linear:c=5", 8, 23, 1.0f, 1e-4, 1);
    check_vs_naive_rope("linear:c=64", 8, 23, 1.0f, 1e-4, 1);
    check_vs_naive_rope("performer:m=24,c=1", 8, 23, 1.0f, 1e-4, 1);
    check_vs_naive_rope("performer:m=24,c=5", 8, 23, 1.0f, 1e-4, 1);
    check_vs_naive_rope("performer:m=32,c=64", 8, 23, 1.0f, 1e-4, 1);
    check_vs_naive_rope("performer:m=20,c=4", 8, 23, 12.0f, 1e-3, 1);
    return 0;
}

static int case_performer_converges(void)
{
    check_performer_converges();
    return 0;
}

static int case_step_long(void)
{
    check_step_long("linear:c=16", 3.0f);
    check_step_long("performer:m=32,c=16", 3.0f);
    return 0;
}

static int case_draws(void)
{
    check_draws();
    return 0;
}

static int case_bad_specs(void)
{
    check_bad_specs();
    return 0;
}

/* 64k tokens with large activations (q, k components of tens): finite forward and backward. */
static int case_long(void)
{
    check_long("linear:c=64", 30.0f, 10.0f);
    check_long("performer:m=16,c=64", 30.0f, 10.0f);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"expf", case_expf},
        {"vs_naive", case_vs_naive},
        {"performer_converges", case_performer_converges},
        {"step_long", case_step_long},
        {"draws", case_draws},
        {"bad_specs", case_bad_specs},
        {"long", case_long},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
