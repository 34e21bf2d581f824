/* test_fft_mixers.c — the FFT mixers against brute force: `longconv` (FFT causal convolution)
 * against a direct O(T^2) convolution in double, forward and every gradient; `fnet` against a
 * direct O(T^2 C^2) 2-D DFT; `causal_fnet` against the masked DFT written out, and its transpose;
 * finite differences, causality round-off, the plan caches, the fixed filter's formula, the old
 * name `fourier`, bad specs. The generic suite (test_mixers) covers the rest. */
#include "check.h"
#include "mixer_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

/* The documented fixed filter, written out again here so the test checks the formula too. */
static double fixed_tap(int c, int C, int T_max, int s)
{
    double tau = pow((double)T_max, C > 1 ? (double)c / (C - 1) : 0.0);
    return (1.0 - exp(-1.0 / tau)) * exp(-(double)s / tau);
}

static const float *tensor(const struct mc_mixer *t, const char *name)
{
    return t->params + mixer_tensor_offset(&t->m, name);
}

static int has_tensor(const struct mc_mixer *t, const char *name)
{
    int n = mixer_n_tensors(&t->m);
    struct mx_param d[8];
    MX_ASSERT(n <= 8);
    t->m.ops->tensors(&t->m, d);
    for (int i = 0; i < n; i++)
        if (strcmp(d[i].name, name) == 0)
            return 1;
    return 0;
}

/* y = x Wᵀ + b in double; y (N,out), x (N,in), w (out,in). */
static void lin(double *y, const double *x, const float *w, const float *b, int N, int in, int out)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < out; o++) {
            double s = b ? b[o] : 0;
            for (int i = 0; i < in; i++)
                s += x[(size_t)n * in + i] * w[(size_t)o * in + i];
            y[(size_t)n * out + o] = s;
        }
}

static double rel_err_d(const float *a, const double *b, size_t n)
{
    double md = 0, mb = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        md = d > md || isnan(d) ? d : md;
        mb = fabs(b[i]) > mb ? fabs(b[i]) : mb;
    }
    return md / mb;
}

/* The whole `longconv` mixer by brute force, in double: forward y and, for the projection loss
 * L = Σ y·r, the gradients dx and dparams (same layout as the mixer's slice). */
static void longconv_brute(const struct mc_mixer *t, const float *xf, const float *r, int T,
                          double *y, double *dx, double *dp)
{
    int B = t->B, C = t->m.C, Tm = t->m.T_max;
    size_t BTC = (size_t)B * T * C;
    int vproj = has_tensor(t, "c_v.weight"), learned = has_tensor(t, "filter");
    double *x = calloc(BTC, sizeof *x), *u = calloc(BTC, sizeof *u), *z = calloc(BTC, sizeof *z);
    double *dz = calloc(BTC, sizeof *dz), *du = calloc(BTC, sizeof *du), *h = calloc((size_t)C * T, sizeof *h);
    for (size_t i = 0; i < BTC; i++)
        x[i] = xf[i];
    for (int c = 0; c < C; c++)
        for (int s = 0; s < T; s++)
            h[(size_t)c * T + s] = learned ? tensor(t, "filter")[(size_t)c * Tm + s] : fixed_tap(c, C, Tm, s);
    const float *wv = vproj ? tensor(t, "c_v.weight") : NULL, *bv = vproj ? tensor(t, "c_v.bias") : NULL;
    const float *wp = tensor(t, "c_proj.weight"), *bp = tensor(t, "c_proj.bias");
    if (vproj)
        lin(u, x, wv, bv, B * T, C, C);
    else
        memcpy(u, x, BTC * sizeof *u);
    for (int b = 0; b < B; b++)
        for (int tt = 0; tt < T; tt++)
            for (int c = 0; c < C; c++) {
                double s = 0;
                for (int k = 0; k <= tt; k++)
                    s += h[(size_t)c * T + k] * u[((size_t)b * T + tt - k) * C + c];
                z[((size_t)b * T + tt) * C + c] = s;
            }
    lin(y, z, wp, bp, B * T, C, C);
    /* backward */
    memset(dp, 0, t->n_params * sizeof *dp);
    double *dwp = dp + mixer_tensor_offset(&t->m, "c_proj.weight"), *dbp = dp + mixer_tensor_offset(&t->m, "c_proj.bias");
    for (int n = 0; n < B * T; n++)
        for (int o = 0; o < C; o++) {
            double g = r[(size_t)n * C + o];
            dbp[o] += g;
            for (int i = 0; i < C; i++) {
                dwp[(size_t)o * C + i] += g * z[(size_t)n * C + i];
                dz[(size_t)n * C + i] += g * wp[(size_t)o * C + i];
            }
        }
    double *dh = learned ? dp + mixer_tensor_offset(&t->m, "filter") : NULL;
    for (int b = 0; b < B; b++)
        for (int tt = 0; tt < T; tt++)
            for (int c = 0; c < C; c++)
                for (int k = 0; k <= tt; k++) {
                    double g = dz[((size_t)b * T + tt) * C + c];
                    du[((size_t)b * T + tt - k) * C + c] += g * h[(size_t)c * T + k];
                    if (dh)
                        dh[(size_t)c * Tm + k] += g * u[((size_t)b * T + tt - k) * C + c];
                }
    if (vproj) {
        double *dwv = dp + mixer_tensor_offset(&t->m, "c_v.weight"), *dbv = dp + mixer_tensor_offset(&t->m, "c_v.bias");
        memset(dx, 0, BTC * sizeof *dx);
        for (int n = 0; n < B * T; n++)
            for (int o = 0; o < C; o++) {
                double g = du[(size_t)n * C + o];
                dbv[o] += g;
                for (int i = 0; i < C; i++) {
                    dwv[(size_t)o * C + i] += g * x[(size_t)n * C + i];
                    dx[(size_t)n * C + i] += g * wv[(size_t)o * C + i];
                }
            }
    } else {
        memcpy(dx, du, BTC * sizeof *dx);
    }
    free(x);
    free(u);
    free(z);
    free(dz);
    free(du);
    free(h);
}

/* FFT mixer vs brute force: forward, dx, dparams within 1e-4. T_max may exceed T. */
static void test_vs_brute(const char *spec, int C, int T_max, int B, int T)
{
    struct mc_mixer t;
    if (mc_create(&t, spec, C, 2 - (C % 2), T_max, B, T, 7 + (uint64_t)T, 1.0f) != 0) {
        check_failures++;
        return;
    }
    size_t n = (size_t)B * T * C;
    float *x = mx_xmalloc(n * sizeof(float)), *r = mx_xmalloc(n * sizeof(float)), *y = mx_xmalloc(n * sizeof(float));
    float *dx = mx_xcalloc(n * sizeof(float)), *dp = mx_xcalloc((t.n_params + 1) * sizeof(float));
    double *yr = calloc(n, sizeof(double)), *dxr = calloc(n, sizeof(double)), *dpr = calloc(t.n_params + 1, sizeof(double));
    mc_fill_normal(x, n, 11, 1.0f);
    mc_fill_normal(r, n, 12, 1.0f);
    float *saved = mc_forward(&t, y, x, T);
    t.m.ops->backward(&t.m, dx, dp, r, saved, x, t.params, B, T);
    longconv_brute(&t, x, r, T, yr, dxr, dpr);
    double ey = rel_err_d(y, yr, n), ex = rel_err_d(dx, dxr, n);
    double ep = 0;
    /* Per tensor, so a small tensor's error is not hidden behind a large one's scale. */
    int nt = mixer_n_tensors(&t.m);
    struct mx_param d[8];
    t.m.ops->tensors(&t.m, d);
    size_t off = 0;
    for (int i = 0; i < nt; i++) {
        size_t k = d[i].numel;
        double e = rel_err_d(dp + off, dpr + off, k);
        CHECK(e < 1e-4, "%s C=%d T=%d: d%s rel err %.2e vs direct conv", spec, C, T, d[i].name, e);
        ep = e > ep ? e : ep;
        off += k;
    }
    fprintf(stderr, "  %-32s C=%-2d T_max=%-3d B=%d T=%-3d vs direct: y %.1e dx %.1e dparams %.1e\n",
            t.m.spec, C, T_max, B, T, ey, ex, ep);
    CHECK(ey < 1e-4, "%s C=%d T=%d: y rel err %.2e vs direct conv", spec, C, T, ey);
    CHECK(ex < 1e-4, "%s C=%d T=%d: dx rel err %.2e vs direct conv", spec, C, T, ex);
    mx_free(saved);
    mx_free(x);
    mx_free(r);
    mx_free(y);
    mx_free(dx);
    mx_free(dp);
    free(yr);
    free(dxr);
    free(dpr);
    mc_free(&t);
}

/* fnet (causal = 0) against y[k,l] = Σ_{t,c} x[t,c] cos(2π(kt/T + lc/C)) / sqrt(TC), and
 * causal_fnet (causal = 1) against its definition written out: y[k,l] = Σ_{t<=k} Σ_c
 * cos(2π(kt/T_max + lc/C)) x[t,c] / sqrt((k+1)C) (T < T_max and odd T: the frequency is tied to
 * T_max, not to the call's length); both in double, and the backward of each against the
 * explicit transpose dx[t,c] = Σ_{k,l} A[(k,l),(t,c)] dy[k,l]. */
static void test_dft_vs_direct(const char *spec, int causal, int C, int T_max, int B, int T)
{
    struct mc_mixer t;
    if (mc_create(&t, spec, C, 1, T_max, B, T, 5, 1.0f) != 0) {
        check_failures++;
        return;
    }
    CHECK(t.n_params == 0, "%s must have no parameters (has %zu)", spec, t.n_params);
    size_t n = (size_t)B * T * C;
    float *x = mx_xmalloc(n * sizeof(float)), *dy = mx_xmalloc(n * sizeof(float)), *y = mx_xmalloc(n * sizeof(float));
    float *dx = mx_xcalloc(n * sizeof(float));
    double *yr = calloc(n, sizeof(double)), *dxr = calloc(n, sizeof(double));
    mc_fill_normal(x, n, 21, 1.0f);
    mc_fill_normal(dy, n, 22, 1.0f);
    float *saved = mc_forward(&t, y, x, T);
    t.m.ops->backward(&t.m, dx, NULL, dy, saved, x, t.params, B, T);
    double period = causal ? T_max : T;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < T; k++)
            for (int l = 0; l < C; l++)
                for (int tt = 0; tt < (causal ? k + 1 : T); tt++)
                    for (int c = 0; c < C; c++) {
                        double a = cos(2 * PI * ((double)k * tt / period + (double)l * c / C)) /
                                   sqrt((causal ? k + 1.0 : (double)T) * C);
                        yr[((size_t)b * T + k) * C + l] += a * x[((size_t)b * T + tt) * C + c];
                        dxr[((size_t)b * T + tt) * C + c] += a * dy[((size_t)b * T + k) * C + l];
                    }
    double ey = rel_err_d(y, yr, n), ex = rel_err_d(dx, dxr, n);
    fprintf(stderr, "  %s C=%d T_max=%d B=%d T=%d vs the direct DFT: y %.1e dx %.1e\n", spec, C, T_max, B, T, ey, ex);
    CHECK(ey < 1e-5 && ex < 1e-5, "%s C=%d T_max=%d T=%d vs the direct DFT: y %.2e dx %.2e", spec, C, T_max, T, ey,
          ex);
    mx_free(saved);
    mx_free(x);
    mx_free(dy);
    mx_free(y);
    mx_free(dx);
    free(yr);
    free(dxr);
    mc_free(&t);
}

/* The largest relative change of y[:, <= t0] when x[:, > t0] is perturbed, over all t0: the
 * causality round-off the ops->test_causal_tol must cover, at test and at larger sizes. */
static double causal_roundoff(const char *spec, int C, int B, int T)
{
    struct mc_mixer t;
    if (mc_create(&t, spec, C, 2, T, B, T, 3, 3.0f) != 0) {
        check_failures++;
        return INFINITY;
    }
    size_t n = (size_t)B * T * C;
    float *x = mx_xmalloc(n * sizeof(float)), *xp = mx_xmalloc(n * sizeof(float));
    float *y = mx_xmalloc(n * sizeof(float)), *yp = mx_xmalloc(n * sizeof(float));
    mc_fill_normal(x, n, 31, 1.0f);
    mx_free(mc_forward(&t, y, x, T));
    double worst = 0;
    int stride = T > 64 ? T / 16 : 1;
    for (int t0 = 0; t0 < T - 1; t0 += stride) {
        memcpy(xp, x, n * sizeof(float));
        struct mx_rng r;
        mx_rng_seed(&r, 500 + (uint64_t)t0);
        for (int b = 0; b < B; b++)
            for (size_t i = (size_t)(t0 + 1) * C; i < (size_t)T * C; i++)
                xp[(size_t)b * T * C + i] += 3.0f * mx_rng_normal(&r);
        mx_free(mc_forward(&t, yp, xp, T));
        for (int b = 0; b < B; b++) {
            double e = mc_rel_err(yp + (size_t)b * T * C, y + (size_t)b * T * C, (size_t)(t0 + 1) * C, 1e-6);
            worst = e > worst ? e : worst;
        }
    }
    mx_free(x);
    mx_free(xp);
    mx_free(y);
    mx_free(yp);
    mc_free(&t);
    return worst;
}

/* Generic checks at shapes the generic suite does not use: T=1, odd T, T < T_max, odd C. */
static void test_generic_shapes(const char *spec, int C, int T_max, int T)
{
    struct mc_mixer t;
    if (mc_create(&t, spec, C, 1, T_max, 2, T, 9, 3.0f) != 0) {
        check_failures++;
        return;
    }
    double tol = t.m.ops->test_causal_tol;
    int f = 0;
    f |= mc_check_gradients(&t, 2e-2) != 0;
    f |= mc_check_causality(&t, tol) != 0;
    f |= mc_check_prefix(&t, tol) != 0;
    f |= mc_check_step(&t, 1e-4) != 0;
    f |= mc_check_accumulate(&t, 1e-6) != 0;
    f |= mc_check_determinism(&t) != 0;
    CHECK(!f, "%s C=%d T_max=%d T=%d: generic checks failed", spec, C, T_max, T);
    mc_free(&t);
}

/* More distinct T than the plan cache holds, then the first T again: bit-identical output,
 * so eviction and re-planning are invisible. */
static void test_plan_cache(const char *spec)
{
    const int C = 8, Tm = 40, B = 1;
    struct mc_mixer t;
    if (mc_create(&t, spec, C, 2, Tm, B, Tm, 4, 1.0f) != 0) {
        check_failures++;
        return;
    }
    size_t n = (size_t)B * Tm * C;
    float *x = mx_xmalloc(n * sizeof(float)), *y0 = mx_xmalloc(n * sizeof(float)), *y1 = mx_xmalloc(n * sizeof(float));
    mc_fill_normal(x, n, 41, 1.0f);
    mx_free(mc_forward(&t, y0, x, 13));
    for (int T = 20; T <= 40; T += 2)
        mx_free(mc_forward(&t, y1, x, T));
    mx_free(mc_forward(&t, y1, x, 13));
    CHECK(memcmp(y0, y1, (size_t)13 * C * sizeof(float)) == 0, "%s: output changed after plan cache eviction", spec);
    mx_free(x);
    mx_free(y0);
    mx_free(y1);
    mc_free(&t);
}

/* filter=learned at initialisation is the fixed filter: same outputs (same projections, since
 * the filter's init draws no random numbers). */
static void test_learned_init_is_fixed(void)
{
    const int C = 8, T = 24, B = 2;
    struct mixer_dims d = {.C = C, .H = 2, .T_max = T, .bias = 1, .layer = 0, .n_layer = 2, .seed = 1};
    struct mixer a, b;
    struct mx_error err;
    MX_ASSERT(mixer_create(&a, "longconv:filter=learned", &d, &err) == 0);
    MX_ASSERT(mixer_create(&b, "longconv:filter=fixed", &d, &err) == 0);
    float *pa = mx_xcalloc(mixer_n_params(&a) * sizeof(float)), *pb = mx_xcalloc(mixer_n_params(&b) * sizeof(float));
    struct mx_rng r;
    mx_rng_seed(&r, 3);
    a.ops->init(&a, pa, &r);
    mx_rng_seed(&r, 3);
    b.ops->init(&b, pb, &r);
    CHECK(mixer_n_params(&a) == mixer_n_params(&b) + (size_t)C * T, "learned has C*T_max more params");
    size_t fo = mixer_tensor_offset(&a, "filter");
    double worst = 0;
    for (int c = 0; c < C; c++)
        for (int s = 0; s < T; s++) {
            double e = fabs(pa[fo + (size_t)c * T + s] - fixed_tap(c, C, T, s));
            worst = e > worst ? e : worst;
        }
    CHECK(worst < 1e-7, "learned filter init differs from the documented formula by %.2e", worst);
    a.scratch = mx_xcalloc(a.ops->scratch_floats(&a, B, T) * sizeof(float));
    b.scratch = mx_xcalloc(b.ops->scratch_floats(&b, B, T) * sizeof(float));
    size_t n = (size_t)B * T * C;
    float *x = mx_xmalloc(n * sizeof(float)), *ya = mx_xmalloc(n * sizeof(float)), *yb = mx_xmalloc(n * sizeof(float));
    float *sa = mx_xmalloc(a.ops->saved_floats(&a, B, T) * sizeof(float));
    float *sb = mx_xmalloc(b.ops->saved_floats(&b, B, T) * sizeof(float));
    mc_fill_normal(x, n, 51, 1.0f);
    a.ops->forward(&a, ya, sa, x, pa, B, T);
    b.ops->forward(&b, yb, sb, x, pb, B, T);
    double e = mc_rel_err(ya, yb, n, 1e-9);
    fprintf(stderr, "  learned at init vs fixed: rel err %.1e\n", e);
    CHECK(e < 1e-5, "learned filter at init vs fixed: rel err %.2e", e);
    /* The learned filter is not weight-decayed; the projections are. */
    struct mx_param td[8];
    int nt = a.ops->tensors(&a, td);
    for (int i = 0; i < nt; i++)
        CHECK(td[i].decay == (strcmp(td[i].name, "filter") != 0 && td[i].ndim == 2), "tensor %s decay %d",
              td[i].name, td[i].decay);
    mx_free(a.scratch);
    mx_free(b.scratch);
    mx_free(pa);
    mx_free(pb);
    mx_free(x);
    mx_free(ya);
    mx_free(yb);
    mx_free(sa);
    mx_free(sb);
    mixer_destroy(&a);
    mixer_destroy(&b);
}

static void expect_error(const char *spec, const char *needle)
{
    struct mixer_dims d = {.C = 8, .H = 2, .T_max = 16, .bias = 1, .layer = 0, .n_layer = 2, .seed = 1};
    struct mixer m;
    struct mx_error err = {{0}};
    int rc = mixer_create(&m, spec, &d, &err);
    if (rc == 0) {
        CHECK(0, "spec '%s' was accepted; expected an error mentioning '%s'", spec, needle);
        mixer_destroy(&m);
        return;
    }
    fprintf(stderr, "  '%s' -> %s\n", spec, err.msg);
    CHECK(strstr(err.msg, needle) != NULL, "spec '%s': error '%s' does not mention '%s'", spec, err.msg, needle);
}

/* Brute force: the default spec and each option; T powers of two and not, T = 1, T < T_max;
 * C = 8 (chunks of 8), 12 (4), 6 (2), 5 (1: every chunk alignment path). */
static int case_vs_brute(void)
{
    const char *specs[] = {"longconv", "longconv:filter=fixed", "longconv:vproj=0", "longconv:filter=fixed,vproj=0"};
    for (int i = 0; i < 4; i++) {
        test_vs_brute(specs[i], 8, 32, 2, 32);
        test_vs_brute(specs[i], 12, 40, 2, 29);
        test_vs_brute(specs[i], 6, 24, 3, 1);
    }
    test_vs_brute("longconv", 5, 50, 2, 17);
    test_vs_brute("longconv", 16, 64, 1, 48);
    test_vs_brute("longconv:filter=fixed", 16, 100, 2, 75);
    return 0;
}

static int case_fnet_dft(void)
{
    test_dft_vs_direct("fnet", 0, 6, 5, 2, 5);
    test_dft_vs_direct("fnet", 0, 8, 4, 1, 4);
    test_dft_vs_direct("fnet", 0, 5, 7, 2, 7);
    test_dft_vs_direct("fnet", 0, 4, 1, 1, 1);
    return 0;
}

static int case_causal_fnet_direct(void)
{
    test_dft_vs_direct("causal_fnet:gain=0", 1, 6, 40, 2, 40);
    test_dft_vs_direct("causal_fnet:gain=0", 1, 8, 300, 1, 257);
    test_dft_vs_direct("causal_fnet:gain=0", 1, 5, 16, 2, 7);
    test_dft_vs_direct("causal_fnet:gain=0", 1, 4, 1, 1, 1);
    return 0;
}

/* The old name: `fourier` specs build `longconv` with the same canonical options, the same
 * tensors and bit-identical outputs and gradients. */
/* mixer_flops counts longconv's two projections per token plus the FFT work ops->flops reports,
 * not the (C,T_max) filter as if it were a weight matrix applied to every token. */
static int case_longconv_flops(void)
{
    const int C = 16, Tm = 512, T = 300, B = 2;
    struct mixer_dims d = {.C = C, .H = 2, .T_max = Tm, .bias = 1, .layer = 0, .n_layer = 2, .seed = 1};
    struct mixer m;
    struct mx_error err;
    MX_ASSERT(mixer_create(&m, "longconv", &d, &err) == 0);
    double f, b, mf, mb;
    mixer_flops(&m, B, T, &f, &b);
    m.ops->flops(&m, B, T, &mf, &mb);
    double w = 2.0 * C * C, tok = (double)B * T;
    CHECK(f == 2 * w * tok + mf && b == 4 * w * tok + mb, "longconv flops %.0f/%.0f, expected %.0f/%.0f", f, b,
          2 * w * tok + mf, 4 * w * tok + mb);
    mixer_destroy(&m);
    return 0;
}

static int case_old_name(void)
{
    const char *pairs[][3] = {
        {"fourier", "longconv", "longconv:filter=learned,vproj=1"},
        {"fourier:filter=fixed", "longconv:filter=fixed", "longconv:filter=fixed,vproj=1"},
        {"fourier:filter=learned,vproj=0", "longconv:vproj=0", "longconv:filter=learned,vproj=0"},
    };
    CHECK(mixer_find("fourier") == mixer_find("longconv"), "mixer_find(\"fourier\") must give longconv");
    CHECK(mixer_alias_of("fourier") && strcmp(mixer_alias_of("fourier"), "longconv") == 0,
          "fourier must be an alias of longconv");
    CHECK(mixer_alias_of("longconv") == NULL, "longconv is not an alias");
    for (int i = 0; i < 3; i++) {
        struct mixer_dims d = {.C = 8, .H = 2, .T_max = 16, .bias = 1, .layer = 0, .n_layer = 2, .seed = 1};
        struct mixer m;
        struct mx_error err = {{0}};
        CHECK(mixer_create(&m, pairs[i][0], &d, &err) == 0, "'%s' refused: %s", pairs[i][0], err.msg);
        CHECK(strcmp(m.spec, pairs[i][2]) == 0, "'%s' gives spec '%s', expected '%s'", pairs[i][0], m.spec,
              pairs[i][2]);
        mixer_destroy(&m);
        CHECK(mc_check_equivalent(pairs[i][0], pairs[i][1], 8, 2, 2, 13, 5, 0.0) == 0, "'%s' differs from '%s'",
              pairs[i][0], pairs[i][1]);
    }
    return 0;
}

static int case_generic_shapes(void)
{
    test_generic_shapes("longconv", 8, 16, 1);
    test_generic_shapes("longconv", 6, 32, 13);
    test_generic_shapes("longconv:filter=fixed", 5, 9, 9);
    test_generic_shapes("longconv:vproj=0", 12, 27, 27);
    test_generic_shapes("causal_fnet", 8, 16, 1);
    test_generic_shapes("causal_fnet", 6, 32, 13);
    test_generic_shapes("causal_fnet", 5, 9, 9);
    /* finite-difference gradients (and the rest) at longer T, with and without the gain */
    test_generic_shapes("causal_fnet", 8, 300, 257);
    test_generic_shapes("causal_fnet:gain=0", 8, 1024, 1024);
    return 0;
}

/* causal_fnet's output gain: y (gain=1) == g ⊙ y (gain=0) on the same input, and the gain's
 * gradient is Σ_{b,t} dy ⊙ y(gain=0), written out in double. */
static int case_causal_fnet_gain(void)
{
    const int C = 6, Tm = 50, B = 2, T = 37;
    struct mc_mixer g, z;
    if (mc_create(&g, "causal_fnet", C, 1, Tm, B, T, 7, 1.0f) != 0 ||
        mc_create(&z, "causal_fnet:gain=0", C, 1, Tm, B, T, 7, 1.0f) != 0)
        return 1;
    CHECK(g.n_params == (size_t)C && z.n_params == 0, "causal_fnet: %zu gain parameters (expected %d), gain=0: %zu",
          g.n_params, C, z.n_params);
    size_t n = (size_t)B * T * C;
    float *x = mx_xmalloc(n * 4), *dy = mx_xmalloc(n * 4), *yg = mx_xmalloc(n * 4), *yz = mx_xmalloc(n * 4);
    float *dx = mx_xcalloc(n * 4), *dp = mx_xcalloc((size_t)C * 4);
    mc_fill_normal(x, n, 41, 1.0f);
    mc_fill_normal(dy, n, 42, 1.0f);
    for (int l = 0; l < C; l++)
        g.params[l] = 0.5f - 0.25f * l; /* zero and negative gains included */
    float *sg = mc_forward(&g, yg, x, T);
    mx_free(mc_forward(&z, yz, x, T));
    g.m.ops->backward(&g.m, dx, dp, dy, sg, x, g.params, B, T);
    double ey = 0, ep = 0, pmax = 1e-6;
    for (size_t i = 0; i < n; i++)
        ey = fmax(ey, fabs((double)yg[i] - (double)g.params[i % C] * yz[i]));
    for (int l = 0; l < C; l++) {
        double ref = 0;
        for (size_t i = (size_t)l; i < n; i += (size_t)C)
            ref += (double)dy[i] * yz[i];
        ep = fmax(ep, fabs(dp[l] - ref));
        pmax = fmax(pmax, fabs(ref));
    }
    CHECK(ey < 1e-6 && ep / pmax < 1e-5, "causal_fnet gain: y vs g*y(gain=0) %.2e, dg rel %.2e", ey, ep / pmax);
    mx_free(sg), mx_free(x), mx_free(dy), mx_free(yg), mx_free(yz), mx_free(dx), mx_free(dp);
    mc_free(&g);
    mc_free(&z);
    return 0;
}

static int case_plan_cache(void)
{
    test_plan_cache("longconv");
    test_plan_cache("longconv:filter=fixed");
    test_plan_cache("causal_fnet");
    return 0;
}

static int case_learned_init_is_fixed(void)
{
    test_learned_init_is_fixed();
    return 0;
}

static int case_registration(void)
{
    const struct mixer_ops *fo = mixer_find("longconv"), *fn = mixer_find("fnet");
    CHECK(fo && fo->causal == 1 && fo->step, "longconv must be registered, causal, with a step");
    CHECK(fn && fn->causal == 0 && !fn->step, "fnet must be registered with causal = 0 and no step");
    CHECK(fn && strstr(fn->summary, "future"), "fnet's summary must say that it sees the future");
    const struct mixer_ops *cf = mixer_find("causal_fnet");
    CHECK(cf && cf->causal == 1 && cf->step, "causal_fnet must be registered, causal, with a step");
    return 0;
}

/* Causality round-off vs the documented tolerance, at the suite's size and larger. */
static int case_causal_roundoff(void)
{
    const int sizes[][3] = {{16, 2, 20}, {16, 2, 64}, {32, 1, 256}, {64, 1, 1000}};
    for (int i = 0; i < 4; i++)
        for (int s = 0; s < 3; s++) {
            const char *spec = s == 2 ? "causal_fnet" : s ? "longconv:filter=fixed" : "longconv";
            double tol = mixer_find(spec[0] == 'c' ? "causal_fnet" : "longconv")->test_causal_tol;
            double e = causal_roundoff(spec, sizes[i][0], sizes[i][1], sizes[i][2]);
            fprintf(stderr, "  %-22s C=%-2d T=%-4d causality round-off %.2e (tol %.0e)\n", spec, sizes[i][0],
                    sizes[i][2], e, tol);
            CHECK(e <= tol, "%s T=%d: causality round-off %.2e above the documented %.1e", spec, sizes[i][2], e, tol);
        }
    return 0;
}

static int case_bad_specs(void)
{
    expect_error("longconv:filter=foo", "filter='foo'");
    expect_error("longconv:filter=foo", "learned");
    expect_error("longconv:decay=2", "unknown key 'decay'");
    expect_error("longconv:decay=2", "filter=learned|fixed");
    expect_error("longconv:vproj=2", "vproj");
    expect_error("fnet:filter=fixed", "unknown key 'filter'");
    expect_error("causal_fnet:filter=fixed", "unknown key 'filter'");
    expect_error("fourier:filter=foo", "filter='foo'");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"vs_brute", case_vs_brute},
        {"fnet_dft", case_fnet_dft},
        {"causal_fnet_direct", case_causal_fnet_direct},
        {"causal_fnet_gain", case_causal_fnet_gain},
        {"old_name", case_old_name},
        {"longconv_flops", case_longconv_flops},
        {"generic_shapes", case_generic_shapes},
        {"plan_cache", case_plan_cache},
        {"learned_init_is_fixed", case_learned_init_is_fixed},
        {"registration", case_registration},
        {"causal_roundoff", case_causal_roundoff},
        {"bad_specs", case_bad_specs},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
