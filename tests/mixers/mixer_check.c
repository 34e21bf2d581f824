/* mixer_check.c — the generic mixer test suite (gradients by central differences, causality,
 * prefix consistency, step == forward, accumulation, determinism, equivalence) shared by
 * mixers/test_mixers.c and the family tests. Test-only; slow on purpose (double sums). */
#include "mixer_check.h"

#include <math.h>
#include <string.h>

void mc_fill_normal(float *x, size_t n, uint64_t seed, float std)
{
    struct mx_rng r;
    mx_rng_seed(&r, seed);
    mx_rng_fill_normal(&r, x, n, std);
}

double mc_rel_err(const float *a, const float *b, size_t n, double floor)
{
    double md = 0, mb = floor;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) /* NaN-safe */
            md = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mb)
            mb = fabs(b[i]);
    }
    return md / mb;
}

int mc_rope = 0;

int mc_create(struct mc_mixer *t, const char *spec, int C, int H, int T_max, int B, int T,
              uint64_t seed, float param_scale)
{
    memset(t, 0, sizeof *t);
    struct mixer_dims d = {.C = C, .H = H, .T_max = T_max, .bias = 1, .layer = 0, .n_layer = 2,
                           .rope = mc_rope, .seed = seed};
    struct mx_error err;
    if (mixer_create(&t->m, spec, &d, &err) != 0) {
        fprintf(stderr, "mc_create(%s): %s\n", spec, err.msg);
        return -1;
    }
    t->B = B;
    t->T = T;
    t->n_params = mixer_n_params(&t->m);
    t->params = mx_xcalloc((t->n_params + 1) * sizeof(float));
    struct mx_rng r;
    mx_rng_seed(&r, seed + 17);
    mixer_init(&t->m, t->params, &r);
    /* Biases start at zero; give them values so their gradients are exercised, and widen the
     * weights so attention is not uniform. Buffers (non-trainable) are left as initialised. */
    int nt = mixer_n_tensors(&t->m);
    struct mx_param *td = mx_xcalloc(sizeof *td * (size_t)nt);
    t->m.ops->tensors(&t->m, td);
    size_t off = 0;
    for (int i = 0; i < nt; i++) {
        size_t k = td[i].numel;
        if (td[i].trainable)
            for (size_t j = 0; j < k; j++)
                t->params[off + j] = t->params[off + j] * param_scale + 0.01f * mx_rng_normal(&r);
        off += k;
    }
    mx_free(td);
    size_t sc = t->m.ops->scratch_floats(&t->m, B, T);
    t->m.scratch = mx_xcalloc((sc + 1) * sizeof(float));
    return 0;
}

void mc_free(struct mc_mixer *t)
{
    mixer_destroy(&t->m);
    mx_free(t->params);
    mx_free(t->m.scratch);
}

float *mc_forward(struct mc_mixer *t, float *y, const float *x, int T)
{
    size_t ns = t->m.ops->saved_floats(&t->m, t->B, T);
    float *saved = mx_xcalloc((ns + 1) * sizeof(float));
    t->m.ops->forward(&t->m, y, saved, x, t->params, t->B, T);
    return saved;
}

static double proj_loss(struct mc_mixer *t, const float *x, const float *r)
{
    size_t n = (size_t)t->B * t->T * t->m.C;
    float *y = mx_xmalloc(n * sizeof(float));
    float *s = mc_forward(t, y, x, t->T);
    double L = 0;
    for (size_t i = 0; i < n; i++)
        L += (double)y[i] * r[i];
    mx_free(s);
    mx_free(y);
    return L;
}

/* Analytic gradients of L = Σ y·r. */
static void analytic(struct mc_mixer *t, const float *x, const float *r, float *dx, float *dp)
{
    size_t n = (size_t)t->B * t->T * t->m.C;
    float *y = mx_xmalloc(n * sizeof(float));
    float *s = mc_forward(t, y, x, t->T);
    memset(dx, 0, n * sizeof(float));
    memset(dp, 0, t->n_params * sizeof(float));
    t->m.ops->backward(&t->m, dx, dp, r, s, x, t->params, t->B, t->T);
    mx_free(s);
    mx_free(y);
}

int mc_check_gradients(struct mc_mixer *t, double tol)
{
    size_t n = (size_t)t->B * t->T * t->m.C;
    float *x = mx_xmalloc(n * sizeof(float)), *r = mx_xmalloc(n * sizeof(float));
    float *dx = mx_xmalloc(n * sizeof(float)), *dp = mx_xmalloc((t->n_params + 1) * sizeof(float));
    mc_fill_normal(x, n, 101, 1.0f);
    mc_fill_normal(r, n, 202, 1.0f);
    analytic(t, x, r, dx, dp);
    int fails = 0;
    /* Compare on a sample of coordinates; error relative to the largest gradient seen. */
    struct mx_rng rng;
    mx_rng_seed(&rng, 303);
    const float eps = 1e-2f;
    double worst_x = 0, worst_p = 0, gmax_x = 1e-3, gmax_p = 1e-3;
    for (size_t i = 0; i < n; i++)
        gmax_x = fmax(gmax_x, fabs(dx[i]));
    for (size_t i = 0; i < t->n_params; i++)
        gmax_p = fmax(gmax_p, fabs(dp[i]));
    int nx = n < 48 ? (int)n : 48;
    for (int s = 0; s < nx; s++) {
        size_t i = mx_rng_below(&rng, (uint32_t)n);
        float keep = x[i];
        x[i] = keep + eps;
        double lp = proj_loss(t, x, r);
        x[i] = keep - eps;
        double lm = proj_loss(t, x, r);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * eps);
        double e = fabs(num - dx[i]) / gmax_x;
        if (e > worst_x)
            worst_x = e;
        if (e > tol && fails++ < 5)
            fprintf(stderr, "  %s: dx[%zu] analytic %.6g numeric %.6g (rel %.2e > %.0e)\n", t->m.spec,
                    i, dx[i], num, e, tol);
    }
    int np = t->n_params < 64 ? (int)t->n_params : 64;
    for (int s = 0; s < np; s++) {
        size_t i = mx_rng_below(&rng, (uint32_t)t->n_params);
        float keep = t->params[i];
        t->params[i] = keep + eps;
        double lp = proj_loss(t, x, r);
        t->params[i] = keep - eps;
        double lm = proj_loss(t, x, r);
        t->params[i] = keep;
        double num = (lp - lm) / (2.0 * eps);
        double e = fabs(num - dp[i]) / gmax_p;
        /* Buffers get no gradient by contract: the analytic value must be 0 there. */
        if (e > worst_p)
            worst_p = e;
        if (e > tol && fails++ < 10)
            fprintf(stderr, "  %s: dparam[%zu] analytic %.6g numeric %.6g (rel %.2e > %.0e)\n",
                    t->m.spec, i, dp[i], num, e, tol);
    }
    fprintf(stderr, "  %-28s gradients: worst rel err x %.2e params %.2e\n", t->m.spec, worst_x, worst_p);
    mx_free(x);
    mx_free(r);
    mx_free(dx);
    mx_free(dp);
    return fails ? -1 : 0;
}

int mc_check_causality(struct mc_mixer *t, double tol)
{
    size_t n = (size_t)t->B * t->T * t->m.C;
    float *x = mx_xmalloc(n * sizeof(float)), *y1 = mx_xmalloc(n * sizeof(float));
    float *y2 = mx_xmalloc(n * sizeof(float));
    mc_fill_normal(x, n, 404, 1.0f);
    mx_free(mc_forward(t, y1, x, t->T));
    int fails = 0, C = t->m.C, T = t->T;
    for (int t0 = 0; t0 < T - 1 && !fails; t0 += (T > 8 ? 3 : 1)) {
        float *xp = mx_xmalloc(n * sizeof(float));
        memcpy(xp, x, n * sizeof(float));
        struct mx_rng r;
        mx_rng_seed(&r, 505 + t0);
        for (int b = 0; b < t->B; b++)
            for (int tt = t0 + 1; tt < T; tt++)
                for (int c = 0; c < C; c++)
                    xp[((size_t)b * T + tt) * C + c] += 3.0f * mx_rng_normal(&r);
        mx_free(mc_forward(t, y2, xp, T));
        for (int b = 0; b < t->B && !fails; b++) {
            const float *a = y1 + (size_t)b * T * C, *c2 = y2 + (size_t)b * T * C;
            size_t m = (size_t)(t0 + 1) * C;
            if (tol == 0) {
                if (memcmp(a, c2, m * sizeof(float)) != 0) {
                    fprintf(stderr, "  %s: causality broken: changing x after t=%d changed y at <= t (batch %d)\n",
                            t->m.spec, t0, b);
                    fails++;
                }
            } else if (mc_rel_err(c2, a, m, 1e-6) > tol) {
                fprintf(stderr, "  %s: causality broken beyond tol %.1e after t=%d (rel %.2e)\n", t->m.spec,
                        tol, t0, mc_rel_err(c2, a, m, 1e-6));
                fails++;
            }
        }
        mx_free(xp);
    }
    mx_free(x);
    mx_free(y1);
    mx_free(y2);
    return fails ? -1 : 0;
}

int mc_check_prefix(struct mc_mixer *t, double tol)
{
    size_t n = (size_t)t->B * t->T * t->m.C;
    int C = t->m.C, T = t->T, Tp = T / 2 + 1;
    float *x = mx_xmalloc(n * sizeof(float)), *y = mx_xmalloc(n * sizeof(float));
    float *xs = mx_xmalloc(n * sizeof(float)), *ys = mx_xmalloc(n * sizeof(float));
    mc_fill_normal(x, n, 606, 1.0f);
    mx_free(mc_forward(t, y, x, T));
    for (int b = 0; b < t->B; b++)
        memcpy(xs + (size_t)b * Tp * C, x + (size_t)b * T * C, (size_t)Tp * C * sizeof(float));
    mx_free(mc_forward(t, ys, xs, Tp));
    int fails = 0;
    for (int b = 0; b < t->B; b++) {
        double e = mc_rel_err(ys + (size_t)b * Tp * C, y + (size_t)b * T * C, (size_t)Tp * C, 1e-6);
        if (e > tol) {
            fprintf(stderr, "  %s: prefix: forward on %d rows differs from the first rows of %d (rel %.2e)\n",
                    t->m.spec, Tp, T, e);
            fails++;
        }
    }
    mx_free(x);
    mx_free(y);
    mx_free(xs);
    mx_free(ys);
    return fails ? -1 : 0;
}

int mc_check_step(struct mc_mixer *t, double tol)
{
    if (!t->m.ops->step)
        return 0;
    int C = t->m.C, T = t->T;
    size_t n = (size_t)t->B * T * C;
    float *x = mx_xmalloc(n * sizeof(float)), *y = mx_xmalloc(n * sizeof(float));
    mc_fill_normal(x, n, 707, 1.0f);
    mx_free(mc_forward(t, y, x, T));
    size_t ns = t->m.ops->state_floats(&t->m);
    float *state = mx_xcalloc((ns + 1) * sizeof(float));
    float *yt = mx_xmalloc(C * sizeof(float));
    int fails = 0;
    for (int tt = 0; tt < T; tt++) {
        t->m.ops->step(&t->m, yt, state, x + (size_t)tt * C, t->params, tt);
        double e = mc_rel_err(yt, y + (size_t)tt * C, C, 1e-3);
        if (e > tol) {
            fprintf(stderr, "  %s: step at t=%d differs from forward (rel %.2e > %.0e)\n", t->m.spec, tt, e, tol);
            fails++;
            break;
        }
    }
    mx_free(state);
    mx_free(yt);
    mx_free(x);
    mx_free(y);
    return fails ? -1 : 0;
}

int mc_check_accumulate(struct mc_mixer *t, double tol)
{
    size_t n = (size_t)t->B * t->T * t->m.C;
    float *x = mx_xmalloc(n * sizeof(float)), *r = mx_xmalloc(n * sizeof(float));
    float *y = mx_xmalloc(n * sizeof(float));
    float *dx1 = mx_xcalloc(n * sizeof(float)), *dx2 = mx_xcalloc(n * sizeof(float));
    float *dp1 = mx_xcalloc((t->n_params + 1) * sizeof(float)), *dp2 = mx_xcalloc((t->n_params + 1) * sizeof(float));
    mc_fill_normal(x, n, 808, 1.0f);
    mc_fill_normal(r, n, 809, 1.0f);
    float *s = mc_forward(t, y, x, t->T);
    t->m.ops->backward(&t->m, dx1, dp1, r, s, x, t->params, t->B, t->T);
    t->m.ops->backward(&t->m, dx2, dp2, r, s, x, t->params, t->B, t->T);
    t->m.ops->backward(&t->m, dx2, dp2, r, s, x, t->params, t->B, t->T);
    for (size_t i = 0; i < n; i++)
        dx1[i] *= 2;
    for (size_t i = 0; i < t->n_params; i++)
        dp1[i] *= 2;
    double ex = mc_rel_err(dx2, dx1, n, 1e-6), ep = mc_rel_err(dp2, dp1, t->n_params, 1e-6);
    int fails = 0;
    if (ex > tol || ep > tol) {
        fprintf(stderr, "  %s: backward does not accumulate: twice != 2x (dx %.2e, dparams %.2e)\n",
                t->m.spec, ex, ep);
        fails++;
    }
    mx_free(s);
    mx_free(x);
    mx_free(r);
    mx_free(y);
    mx_free(dx1);
    mx_free(dx2);
    mx_free(dp1);
    mx_free(dp2);
    return fails ? -1 : 0;
}

int mc_check_determinism(struct mc_mixer *t)
{
    size_t n = (size_t)t->B * t->T * t->m.C;
    float *x = mx_xmalloc(n * sizeof(float)), *r = mx_xmalloc(n * sizeof(float));
    float *y1 = mx_xmalloc(n * sizeof(float)), *y2 = mx_xmalloc(n * sizeof(float));
    float *dx1 = mx_xmalloc(n * sizeof(float)), *dx2 = mx_xmalloc(n * sizeof(float));
    float *dp1 = mx_xmalloc((t->n_params + 1) * sizeof(float)), *dp2 = mx_xmalloc((t->n_params + 1) * sizeof(float));
    mc_fill_normal(x, n, 909, 1.0f);
    mc_fill_normal(r, n, 910, 1.0f);
    mx_free(mc_forward(t, y1, x, t->T));
    mx_free(mc_forward(t, y2, x, t->T));
    analytic(t, x, r, dx1, dp1);
    analytic(t, x, r, dx2, dp2);
    int fails = 0;
    if (memcmp(y1, y2, n * sizeof(float)) || memcmp(dx1, dx2, n * sizeof(float)) ||
        memcmp(dp1, dp2, t->n_params * sizeof(float))) {
        fprintf(stderr, "  %s: two identical runs differ (not bitwise deterministic)\n", t->m.spec);
        fails++;
    }
    mx_free(x);
    mx_free(r);
    mx_free(y1);
    mx_free(y2);
    mx_free(dx1);
    mx_free(dx2);
    mx_free(dp1);
    mx_free(dp2);
    return fails ? -1 : 0;
}

int mc_check_equivalent(const char *spec_a, const char *spec_b, int C, int H, int B, int T,
                        uint64_t seed, double tol)
{
    struct mc_mixer a, b;
    if (mc_create(&a, spec_a, C, H, T, B, T, seed, 3.0f) != 0)
        return -1;
    if (mc_create(&b, spec_b, C, H, T, B, T, seed, 3.0f) != 0) {
        mc_free(&a);
        return -1;
    }
    int fails = 0;
    if (a.n_params != b.n_params) {
        fprintf(stderr, "  %s vs %s: parameter counts differ (%zu vs %zu)\n", spec_a, spec_b, a.n_params, b.n_params);
        fails++;
        goto out;
    }
    memcpy(b.params, a.params, a.n_params * sizeof(float));
    size_t n = (size_t)B * T * C;
    float *x = mx_xmalloc(n * sizeof(float)), *r = mx_xmalloc(n * sizeof(float));
    float *ya = mx_xmalloc(n * sizeof(float)), *yb = mx_xmalloc(n * sizeof(float));
    float *dxa = mx_xmalloc(n * sizeof(float)), *dxb = mx_xmalloc(n * sizeof(float));
    float *dpa = mx_xmalloc((a.n_params + 1) * sizeof(float)), *dpb = mx_xmalloc((a.n_params + 1) * sizeof(float));
    mc_fill_normal(x, n, seed + 1, 1.0f);
    mc_fill_normal(r, n, seed + 2, 1.0f);
    mx_free(mc_forward(&a, ya, x, T));
    mx_free(mc_forward(&b, yb, x, T));
    analytic(&a, x, r, dxa, dpa);
    analytic(&b, x, r, dxb, dpb);
    double ey = mc_rel_err(yb, ya, n, 1e-6), ex = mc_rel_err(dxb, dxa, n, 1e-6);
    double ep = mc_rel_err(dpb, dpa, a.n_params, 1e-6);
    fprintf(stderr, "  %s vs %s (T=%d): rel err y %.2e dx %.2e dparams %.2e\n", spec_a, spec_b, T, ey, ex, ep);
    if (ey > tol || ex > tol || ep > tol)
        fails++;
    mx_free(x);
    mx_free(r);
    mx_free(ya);
    mx_free(yb);
    mx_free(dxa);
    mx_free(dxb);
    mx_free(dpa);
    mx_free(dpb);
out:
    mc_free(&a);
    mc_free(&b);
    return fails ? -1 : 0;
}
