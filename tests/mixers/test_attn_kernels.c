/* test_attn_kernels.c — every entry of the mixers' kernel table (attention/attn_kernels.h) at
 * EVERY level this machine runs, called through that level's table, against its naive reference
 * (attn_kernels_ref) at odd lengths and tails, with large and masked inputs: the elementwise
 * entries bit for bit (axpy to one rounding: it fuses where the level has FMA), the sums
 * (exp_sum's result, dot, sum, dot_exp) and retnet's GroupNorm (forward, backward) to rounding; writes past n are caught;
 * two calls give the same bits. The mixers using them are the generic suite's job. */
#include "check.h"
#include "attention/attn_kernels.h"
#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const size_t lens[] = {0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 255, 1000};
#define NLENS (sizeof lens / sizeof lens[0])
#define PAD 20 /* guard floats after n */
#define GUARD 42.0f

static float *buf(struct mx_rng *r, size_t n, float std)
{
    float *p = mx_xmalloc((n + PAD) * sizeof(float));
    mx_rng_fill_normal(r, p, n + PAD, std);
    return p;
}

static float *dup(const float *p, size_t n)
{
    float *q = mx_xmalloc((n + PAD) * sizeof(float));
    memcpy(q, p, (n + PAD) * sizeof(float));
    return q;
}

static void guard(float *p, size_t n)
{
    for (size_t i = n; i < n + PAD; i++)
        p[i] = GUARD;
}

static void bitwise(const char *isa, const char *what, size_t n, const float *a, const float *b)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(a + i, b + i, sizeof(float)) != 0 && !(isnan(a[i]) && isnan(b[i]))) {
            CHECK(0, "%s %s n=%zu: [%zu] %.9g vs ref %.9g", isa, what, n, i, a[i], b[i]);
            return;
        }
    for (size_t i = n; i < n + PAD; i++)
        if (a[i] != GUARD) {
            CHECK(0, "%s %s n=%zu wrote past the end at %zu", isa, what, n, i);
            return;
        }
}

/* |a - b| <= 1e-6 Σ|terms| (float sums of n terms differ by ~n ulp at worst). */
static void close_sum(const char *isa, const char *what, size_t n, float a, float b, double mag)
{
    CHECK(fabs((double)a - b) <= 1e-6 * mag + 1e-30, "%s %s n=%zu: %.9g vs ref %.9g", isa, what, n, a, b);
}

/* |a - b| <= tol (1 + |b|) for the cnt values; a row (cnt == n, guarded) must not be written
 * past n (the sums: to rounding). */
static void close_to(const char *isa, const char *what, size_t n, const float *a, const float *b, size_t cnt,
                     double tol, int guarded)
{
    for (size_t i = 0; i < cnt; i++)
        if (!(fabs((double)a[i] - b[i]) <= tol * (1.0 + fabs((double)b[i])))) {
            CHECK(0, "%s %s n=%zu: [%zu] %.9g vs ref %.9g", isa, what, n, i, a[i], b[i]);
            return;
        }
    if (guarded)
        for (size_t i = n; i < n + PAD; i++)
            if (a[i] != GUARD) {
                CHECK(0, "%s %s n=%zu wrote past the end at %zu", isa, what, n, i);
                return;
            }
}

static void test_level(const struct attn_kernels *k, struct mx_rng *r)
{
    const struct attn_kernels *ref = &attn_kernels_ref;
    for (size_t t = 0; t < NLENS; t++) {
        size_t n = lens[t];
        float *x = buf(r, n, 4.0f), *g = buf(r, n, 3.0f), *p = buf(r, n, 1.0f);
        float *y = buf(r, n, 1.0f), *yr = buf(r, n, 1.0f), *d = buf(r, n, 1.0f);
        if (n > 2) { /* the edges of exp's range and of elu's branch */
            x[0] = 0.0f;
            x[1] = -200.0f;
            x[n - 1] = 95.0f;
        }

        float m = k->max(x, -INFINITY, n), mr = ref->max(x, -INFINITY, n);
        CHECK(m == mr, "%s max n=%zu: %g vs ref %g", k->isa, n, m, mr);
        CHECK(k->max(x, 1e9f, n) == 1e9f, "%s max n=%zu ignores init", k->isa, n);

        float shift = n ? mr : 0.0f;
        guard(y, n), guard(yr, n);
        float s = k->exp_sum(y, x, shift, n), sr = ref->exp_sum(yr, x, shift, n);
        bitwise(k->isa, "exp_sum", n, y, yr);
        close_sum(k->isa, "exp_sum (sum)", n, s, sr, sr);
        float s2 = k->exp_sum(y, x, shift, n);
        CHECK(memcmp(&s, &s2, sizeof s) == 0, "%s exp_sum n=%zu not deterministic", k->isa, n);
        memcpy(y, x, n * sizeof(float)); /* in place */
        k->exp_sum(y, y, shift, n);
        bitwise(k->isa, "exp_sum in place", n, y, yr);

        memcpy(y, g, n * sizeof(float)), memcpy(yr, g, n * sizeof(float));
        guard(y, n), guard(yr, n);
        k->scale(y, 0.37f, n), ref->scale(yr, 0.37f, n);
        bitwise(k->isa, "scale", n, y, yr);

        double mag = 0;
        for (size_t i = 0; i < n; i++)
            mag += fabs((double)p[i] * g[i]);
        close_sum(k->isa, "dot", n, k->dot(p, g, n), ref->dot(p, g, n), mag);

        memcpy(y, d, n * sizeof(float)), memcpy(yr, d, n * sizeof(float));
        guard(y, n), guard(yr, n);
        k->softmax_grad(y, p, 0.3f, 0.177f, n), ref->softmax_grad(yr, p, 0.3f, 0.177f, n);
        bitwise(k->isa, "softmax_grad", n, y, yr);

        memcpy(y, p, n * sizeof(float)), memcpy(yr, p, n * sizeof(float));
        guard(y, n), guard(yr, n);
        float gs = n ? g[n / 2] : 0.0f;
        k->mul_exp(y, g, gs, n), ref->mul_exp(yr, g, gs, n);
        bitwise(k->isa, "mul_exp", n, y, yr);
        if (n) { /* exp(0) = 1 exactly: a key already in the unit is unchanged */
            memcpy(y, p, n * sizeof(float));
            k->mul_exp(y, g, gs, n);
            CHECK(y[n / 2] == p[n / 2], "%s mul_exp n=%zu: exp(0) != 1", k->isa, n);
        }

        guard(y, n), guard(yr, n);
        k->mul(y, p, g, n), ref->mul(yr, p, g, n);
        bitwise(k->isa, "mul", n, y, yr);

        if (n > 3)
            x[2] = NAN;
        guard(y, n), guard(yr, n);
        k->elu1_forward(y, x, n), ref->elu1_forward(yr, x, n);
        bitwise(k->isa, "elu1_forward", n, y, yr);
        memcpy(d, g, n * sizeof(float)), memcpy(yr, g, n * sizeof(float));
        guard(d, n), guard(yr, n);
        k->elu1_backward(d, p, y, x, n), ref->elu1_backward(yr, p, y, x, n);
        bitwise(k->isa, "elu1_backward", n, d, yr);

        guard(y, n), guard(yr, n);
        k->scale_to(y, g, -1.7f, n), ref->scale_to(yr, g, -1.7f, n);
        bitwise(k->isa, "scale_to", n, y, yr);
        memcpy(y, g, n * sizeof(float)); /* in place */
        k->scale_to(y, y, -1.7f, n);
        bitwise(k->isa, "scale_to in place", n, y, yr);

        memcpy(y, d, n * sizeof(float)), memcpy(yr, d, n * sizeof(float));
        guard(y, n), guard(yr, n);
        k->add(y, g, n), ref->add(yr, g, n);
        bitwise(k->isa, "add", n, y, yr);

        memcpy(y, d, n * sizeof(float)), memcpy(yr, d, n * sizeof(float));
        guard(y, n), guard(yr, n);
        k->axpy(y, 0.61f, g, n), ref->axpy(yr, 0.61f, g, n);
        for (size_t i = 0; i < n; i++) /* one rounding of a·x apart at most */
            CHECK(fabsf(y[i] - yr[i]) <= 2e-7f * (fabsf(d[i]) + fabsf(0.61f * g[i])),
                  "%s axpy n=%zu [%zu]: %.9g vs ref %.9g", k->isa, n, i, y[i], yr[i]);
        for (size_t i = n; i < n + PAD; i++)
            CHECK(y[i] == GUARD, "%s axpy n=%zu wrote past the end", k->isa, n);

        mag = 0;
        for (size_t i = 0; i < n; i++)
            mag += fabs((double)g[i]);
        close_sum(k->isa, "sum", n, k->sum(g, n), ref->sum(g, n), mag);

        /* Decays g - h <= 0 as gla's: exp at most 1; both sides within exp's range. */
        float *h = buf(r, n, 1.0f);
        for (size_t i = 0; i < n; i++)
            h[i] = g[i] + fabsf(h[i]);
        mag = 0;
        for (size_t i = 0; i < n; i++)
            mag += fabs((double)p[i] * d[i]);
        float de = k->dot_exp(p, d, g, h, n), der = ref->dot_exp(p, d, g, h, n);
        close_sum(k->isa, "dot_exp", n, de, der, mag);
        float de2 = k->dot_exp(p, d, g, h, n);
        CHECK(memcmp(&de, &de2, sizeof de) == 0, "%s dot_exp n=%zu not deterministic", k->isa, n);
        /* exp_axpy2: each output within a couple of roundings of e·x (fused or not). */
        float *ya = buf(r, n, 1.0f), *yb = buf(r, n, 1.0f), *yar = dup(ya, n), *ybr = dup(yb, n);
        guard(ya, n), guard(yb, n);
        k->exp_axpy2(ya, yb, p, d, 0.7f, g, h, n), ref->exp_axpy2(yar, ybr, p, d, 0.7f, g, h, n);
        for (size_t i = 0; i < n; i++) {
            float e = 0.7f * expf(g[i] - h[i]);
            CHECK(fabsf(ya[i] - yar[i]) <= 5e-7f * (fabsf(yar[i]) + fabsf(e * d[i])) &&
                      fabsf(yb[i] - ybr[i]) <= 5e-7f * (fabsf(ybr[i]) + fabsf(e * p[i])),
                  "%s exp_axpy2 n=%zu [%zu]: %.9g %.9g vs ref %.9g %.9g", k->isa, n, i, ya[i], yb[i], yar[i],
                  ybr[i]);
        }
        for (size_t i = n; i < n + PAD; i++)
            CHECK(ya[i] == GUARD && yb[i] == GUARD, "%s exp_axpy2 n=%zu wrote past the end", k->isa, n);
        mx_free(h), mx_free(ya), mx_free(yb), mx_free(yar), mx_free(ybr);

        /* swish gate, forward and backward; a with large magnitudes (σ saturates, exp(-a) = inf). */
        float *a = buf(r, n, 6.0f), *w = buf(r, n, 1.0f);
        if (n > 2)
            a[0] = -120.0f, a[1] = 120.0f;
        guard(y, n), guard(yr, n);
        k->swish_gate(y, a, p, w, n), ref->swish_gate(yr, a, p, w, n);
        bitwise(k->isa, "swish_gate", n, y, yr);
        float *du = dup(d, n), *dur = dup(d, n), *dw = buf(r, n, 1.0f), *dwr = dup(dw, n);
        guard(du, n), guard(dur, n), guard(dw, n), guard(dwr, n), guard(y, n), guard(yr, n);
        k->swish_gate_backward(NULL, du, dw, a, p, w, n), ref->swish_gate_backward(NULL, dur, dwr, a, p, w, n);
        bitwise(k->isa, "swish_gate_backward dw", n, dw, dwr);
        bitwise(k->isa, "swish_gate_backward du untouched", n, du, dur);
        k->swish_gate_backward(y, du, NULL, a, p, w, n), ref->swish_gate_backward(yr, dur, NULL, a, p, w, n);
        bitwise(k->isa, "swish_gate_backward da", n, y, yr);
        bitwise(k->isa, "swish_gate_backward dn", n, du, dur);
        mx_free(a), mx_free(w), mx_free(du), mx_free(dur), mx_free(dw), mx_free(dwr);

        if (n) { /* retnet's GroupNorm, on a row with a large mean (the variance's cancellation) */
            float *o = buf(r, n, 2.0f);
            for (size_t i = 0; i < n; i++)
                o[i] += 30.0f;
            guard(y, n), guard(yr, n);
            float rs = k->group_norm(y, o, 1e-5f, n), rsr = ref->group_norm(yr, o, 1e-5f, n);
            close_to(k->isa, "group_norm rstd", n, &rs, &rsr, 1, 1e-4, 0);
            close_to(k->isa, "group_norm", n, y, yr, n, 1e-4, 1);
            float rs2 = k->group_norm(y, o, 1e-5f, n);
            CHECK(memcmp(&rs, &rs2, sizeof rs) == 0, "%s group_norm n=%zu not deterministic", k->isa, n);
            float *nn = dup(yr, n);
            guard(y, n), guard(yr, n);
            k->group_norm_backward(y, d, nn, rsr, n), ref->group_norm_backward(yr, d, nn, rsr, n);
            close_to(k->isa, "group_norm_backward", n, y, yr, n, 1e-4, 1);
            mx_free(o), mx_free(nn);
        }

        mx_free(x), mx_free(g), mx_free(p), mx_free(y), mx_free(yr), mx_free(d);
    }
}

/* lsh's products: the row kernels against the references (to rounding: fused or not), and the
 * QB-row tiles against the row kernels of the SAME level bit for bit (lsh's forward, step and
 * causality rely on it). */
static void test_lsh_products(const struct attn_kernels *k, struct mx_rng *r)
{
    const struct attn_kernels *ref = &attn_kernels_ref;
    const int Ds[] = {1, 7, 16, 32, 33, 48};
    const size_t ns[] = {1, 5, 16, 17, 32, 47};
    for (size_t a = 0; a < sizeof Ds / sizeof Ds[0]; a++)
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
            const int D = Ds[a];
            const size_t n = ns[b], n16 = (n + 15) & ~(size_t)15, ld = n16 + 3;
            float *yt = buf(r, (size_t)D * ld, 1.0f), *y = buf(r, n16 * D, 1.0f);
            float *x = buf(r, (size_t)ATTN_LSH_QB * D, 1.0f), *P = buf(r, (size_t)ATTN_LSH_QB * ld, 1.0f);
            float *s = buf(r, ld, 1.0f), *sr = buf(r, ld, 1.0f);
            guard(s, n), guard(sr, n);
            k->xty_row(s, x, yt, ld, n, D), ref->xty_row(sr, x, yt, ld, n, D);
            for (size_t i = 0; i < n; i++) {
                double mag = 0;
                for (int d = 0; d < D; d++)
                    mag += fabs((double)x[d] * yt[(size_t)d * ld + i]);
                close_sum(k->isa, "xty_row", n, s[i], sr[i], mag);
            }
            for (size_t i = n; i < n + PAD; i++)
                CHECK(s[i] == GUARD, "%s xty_row n=%zu wrote past the end", k->isa, n);
            float *o = buf(r, (size_t)D, 1.0f), *orr = dup(o, (size_t)D);
            k->py_row(o, P, y, n, D), ref->py_row(orr, P, y, n, D);
            for (int d = 0; d < D; d++) {
                double mag = fabs((double)orr[d]);
                for (size_t i = 0; i < n; i++)
                    mag += fabs((double)P[i] * y[i * D + d]);
                close_sum(k->isa, "py_row", n, o[d], orr[d], mag);
            }
            if (D % 16 == 0) {
                const float *xs[ATTN_LSH_QB];
                for (int j = 0; j < ATTN_LSH_QB; j++)
                    xs[j] = x + (size_t)j * D;
                float *S = buf(r, (size_t)ATTN_LSH_QB * ld, 1.0f);
                k->lsh_scores(S, ld, xs, yt, ld, (int)n16, D);
                for (int j = 0; j < ATTN_LSH_QB; j++) {
                    k->xty_row(s, xs[j], yt, ld, n16, D);
                    CHECK(memcmp(S + (size_t)j * ld, s, n16 * sizeof(float)) == 0,
                          "%s lsh_scores row %d (D %d, n16 %zu) differs from xty_row", k->isa, j, D, n16);
                }
                float *acc = buf(r, (size_t)ATTN_LSH_QB * D, 1.0f), *acc1 = dup(acc, (size_t)ATTN_LSH_QB * D);
                k->lsh_py(acc, P, ld, y, (int)n, D);
                for (int j = 0; j < ATTN_LSH_QB; j++) {
                    k->py_row(acc1 + (size_t)j * D, P + (size_t)j * ld, y, n, D);
                    CHECK(memcmp(acc + (size_t)j * D, acc1 + (size_t)j * D, (size_t)D * sizeof(float)) == 0,
                          "%s lsh_py row %d (D %d, n %zu) differs from py_row", k->isa, j, D, n);
                }
                float *zt = buf(r, (size_t)D * ld, 1.0f), *ztr = dup(zt, (size_t)D * ld);
                k->lsh_xtp(zt, ld, xs, P, ld, (int)n16, D), ref->lsh_xtp(ztr, ld, xs, P, ld, (int)n16, D);
                for (int d = 0; d < D; d++)
                    for (size_t i = 0; i < ld; i++) {
                        double mag = fabs((double)ztr[(size_t)d * ld + i]);
                        for (int j = 0; j < ATTN_LSH_QB; j++)
                            mag += fabs((double)xs[j][d] * P[(size_t)j * ld + i]);
                        if (i < n16)
                            close_sum(k->isa, "lsh_xtp", n16, zt[(size_t)d * ld + i], ztr[(size_t)d * ld + i], mag);
                        else
                            CHECK(zt[(size_t)d * ld + i] == ztr[(size_t)d * ld + i], "%s lsh_xtp wrote past n16",
                                  k->isa);
                    }
                mx_free(S), mx_free(acc), mx_free(acc1), mx_free(zt), mx_free(ztr);
            }
            mx_free(yt), mx_free(y), mx_free(x), mx_free(P), mx_free(s), mx_free(sr), mx_free(o), mx_free(orr);
        }
}

/* One case per level: the case name is the level; skipped where this machine cannot run it. */
static int case_level(void)
{
    for (int l = 0; l < MX_ISA_COUNT; l++) {
        if (strcmp(check_case_name(), mx_isa_level_name((enum mx_isa)l)) != 0)
            continue;
        const struct attn_kernels *k = attn_kernels_at((enum mx_isa)l);
        if (!k)
            return check_skip("%s: not built for, or not supported by, this machine", check_case_name());
        CHECK(strcmp(k->isa, check_case_name()) == 0, "table of %s says it is %s", check_case_name(), k->isa);
        struct mx_rng r;
        mx_rng_seed(&r, 4321);
        test_level(k, &r);
        test_lsh_products(k, &r);
        return 0;
    }
    return check_skip("%s: no such level", check_case_name());
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"avx512", case_level}, {"avx2", case_level},   {"sse", case_level},
        {"neon", case_level},   {"scalar", case_level}, /* built everywhere: never skipped */
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
