/* test_nn_kernels.c — every SIMD kernel of nn (nn/kernels.h) at EVERY level this machine runs,
 * called through that level's table, against its naive reference (_ref in nn/layers.c), at odd
 * lengths and tails: GELU forward/backward, AdamW and the embedding (forward, backward) bit for bit
 * (elementwise, no FMA), LayerNorm forward/backward and softmax cross-entropy forward/backward to rounding;
 * plus bitwise determinism (two runs, same level and threads). Gradients against finite
 * differences are test_layers.c's job, except for cross-entropy with ignored targets (negative:
 * `train --loss-on recall`), checked here at each level against central differences and against
 * the same call with nothing ignored. */
#include "check.h"
#include "core/core.h"
#include "nn/isa.h"
#include "nn/kernels.h"
#include "nn/nn.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* |a - b| <= atol + rtol |b| everywhere (both NaN counts as equal); rtol = atol = 0: bitwise. */
static void cmp(const char *isa, const char *what, size_t n1, size_t n2, const float *a, const float *b,
                size_t n, double atol, double rtol)
{
    double worst = 0;
    size_t bad = 0, at = 0;
    for (size_t i = 0; i < n; i++) {
        int ok;
        if (atol == 0 && rtol == 0)
            ok = memcmp(a + i, b + i, sizeof(float)) == 0 || (isnan(a[i]) && isnan(b[i]));
        else {
            double e = fabs((double)a[i] - b[i]);
            ok = e <= atol + rtol * fabs(b[i]) || (isnan(a[i]) && isnan(b[i]));
            if (e > worst)
                worst = e;
        }
        if (!ok && bad++ == 0)
            at = i;
    }
    if (bad) {
        check_failures++;
        fprintf(stderr,
                "FAIL %-7s %-18s (%zu, %zu): %zu of %zu differ, first [%zu] %.9g vs ref %.9g "
                "(worst abs %.3g, atol %.1g rtol %.1g)\n",
                isa, what, n1, n2, bad, n, at, a[at], b[at], worst, atol, rtol);
    }
}

static float *randn(struct mx_rng *r, size_t n, float std)
{
    float *p = mx_xmalloc((n ? n : 1) * sizeof(float));
    mx_rng_fill_normal(r, p, n, std);
    return p;
}

static float *dup(const float *p, size_t n)
{
    float *q = mx_xmalloc((n ? n : 1) * sizeof(float));
    memcpy(q, p, n * sizeof(float));
    return q;
}

static const size_t lens[] = {1, 2, 3, 7, 8, 15, 16, 17, 33, 64, 100, 128, 1000, 4099};
#define NLENS (sizeof lens / sizeof lens[0])

static void test_gelu(const struct nn_kernels *k, struct mx_rng *r)
{
    for (size_t t = 0; t < NLENS; t++) {
        size_t n = lens[t];
        float *x = randn(r, n + 16, 3.0f), *dout = randn(r, n, 1.0f);
        /* edges: 0, where exp(-2u) underflows or overflows (|x| ~ 10), x^3 overflowing (1e30),
         * NaN; each placed where the length has room for it */
        const float edge[] = {0.0f, -12.0f, 12.0f, -9.6f, -1e30f, 1e30f, NAN, -0.75f};
        for (size_t e = 0; e < sizeof edge / sizeof edge[0] && e < n; e++)
            x[(e * 7) % n] = edge[e];
        float *y = mx_xmalloc((n + 16) * sizeof(float)), *yr = mx_xmalloc(n * sizeof(float));
        for (size_t i = 0; i < n + 16; i++)
            y[i] = 42.0f;
        k->gelu_forward(y, x, n);
        layer_gelu_forward_ref(yr, x, n);
        /* Not bitwise (see gelu_u in nn/isa/kernels_isa.c): rtol 2e-6 (~17 ulp). A rounding of
         * z = -2u is multiplied by |z| in exp(z), so for x < -3 (z > 10, |out| < 2e-4 |x|) the
         * relative error grows with |z| while the absolute one stays below 1e-11. */
        cmp(k->isa, "gelu_forward", n, 0, y, yr, n, 1e-11, 2e-6);
        for (size_t i = n; i < n + 16; i++)
            CHECK(y[i] == 42.0f, "%s gelu_forward n=%zu wrote past the end at %zu", k->isa, n, i);
        k->gelu_backward(y, dout, x, n);
        layer_gelu_backward_ref(yr, dout, x, n);
        /* atol 2e-6: GELU' = σ + xσ(1-σ)(...) crosses 0 near x = -0.75, where its two terms
         * (~0.3 each) cancel and a rounding of either stays as an absolute error. */
        cmp(k->isa, "gelu_backward", n, 0, y, yr, n, 2e-6, 2e-6);
        mx_free(x);
        mx_free(dout);
        mx_free(y);
        mx_free(yr);
    }
}

static void test_layer_norm(const struct nn_kernels *k, struct mx_rng *r)
{
    const size_t rows[] = {1, 3, 37};
    float *work = mx_xmalloc(layer_norm_work_floats(4099) * sizeof(float));
    for (size_t t = 0; t < NLENS; t++)
        for (size_t q = 0; q < 3; q++) {
            size_t N = rows[q], C = lens[t], n = N * C;
            int with_b = (t + q) % 2 == 0;
            float *x = randn(r, n, 2.0f), *w = randn(r, C, 1.0f), *b = randn(r, C, 1.0f);
            for (size_t i = 0; i < n; i++)
                x[i] += 0.5f; /* a non-zero mean */
            float *y = randn(r, n, 1.0f), *yr = dup(y, n);
            float *mean = mx_xmalloc(N * sizeof(float)), *rstd = mx_xmalloc(N * sizeof(float));
            float *meanr = mx_xmalloc(N * sizeof(float)), *rstdr = mx_xmalloc(N * sizeof(float));
            k->layer_norm_forward(y, mean, rstd, x, w, with_b ? b : NULL, N, (int)C);
            layer_norm_forward_ref(yr, meanr, rstdr, x, w, with_b ? b : NULL, N, (int)C);
            cmp(k->isa, "ln_forward out", N, C, y, yr, n, 2e-5, 2e-5);
            cmp(k->isa, "ln_forward mean", N, C, mean, meanr, N, 1e-6, 1e-5);
            cmp(k->isa, "ln_forward rstd", N, C, rstd, rstdr, N, 1e-6, 1e-4);
            /* Backward accumulates: start dx, dw, db from the same non-zero values. */
            float *dout = randn(r, n, 1.0f), *dx = randn(r, n, 1.0f), *dxr = dup(dx, n);
            float *dw = randn(r, C, 1.0f), *dwr = dup(dw, C), *db = randn(r, C, 1.0f), *dbr = dup(db, C);
            k->layer_norm_backward(dx, dw, with_b ? db : NULL, work, dout, x, meanr, rstdr, w, N, (int)C);
            layer_norm_backward_ref(dxr, dwr, with_b ? dbr : NULL, work, dout, x, meanr, rstdr, w, N, (int)C);
            cmp(k->isa, "ln_backward dx", N, C, dx, dxr, n, 1e-4, 1e-4);
            cmp(k->isa, "ln_backward dw", N, C, dw, dwr, C, 1e-4, 1e-4);
            cmp(k->isa, "ln_backward db", N, C, db, dbr, C, 1e-5, 1e-5);
            /* Determinism: the same call again gives the same bits. */
            float *y2 = dup(y, n);
            k->layer_norm_forward(y2, mean, rstd, x, w, with_b ? b : NULL, N, (int)C);
            cmp(k->isa, "ln_forward rerun", N, C, y2, y, n, 0, 0);
            memcpy(dxr, dx, n * sizeof(float));
            memcpy(dwr, dw, C * sizeof(float));
            k->layer_norm_backward(dx, dw, NULL, work, dout, x, meanr, rstdr, w, N, (int)C);
            k->layer_norm_backward(dxr, dwr, NULL, work, dout, x, meanr, rstdr, w, N, (int)C);
            cmp(k->isa, "ln_backward rerun", N, C, dx, dxr, n, 0, 0);
            cmp(k->isa, "ln_backward rerun", N, C, dw, dwr, C, 0, 0);
            float *all[] = {x, w, b, y, yr, mean, rstd, meanr, rstdr, dout, dx, dxr, dw, dwr, db, dbr, y2};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                mx_free(all[i]);
        }
    mx_free(work);
}

static void test_ce(const struct nn_kernels *k, struct mx_rng *r)
{
    const size_t rows[] = {1, 5, 37};
    for (size_t t = 0; t < NLENS; t++)
        for (size_t q = 0; q < 3; q++) {
            size_t N = rows[q], V = lens[t], n = N * V;
            float *l = randn(r, n, 4.0f);
            int32_t *tg = mx_xmalloc(N * sizeof(int32_t));
            for (size_t i = 0; i < N; i++)
                tg[i] = (int32_t)mx_rng_below(r, (uint32_t)V);
            if (V > 3)
                l[V - 1] = 30.0f; /* a dominant logit in the tail */
            float *lse = mx_xmalloc(N * sizeof(float)), *lser = mx_xmalloc(N * sizeof(float));
            float *loss = mx_xmalloc(N * sizeof(float)), *lossr = mx_xmalloc(N * sizeof(float));
            float mean = k->ce_forward(lse, loss, l, tg, N, (int)V);
            float meanr = layer_ce_forward_ref(lser, lossr, l, tg, N, (int)V);
            cmp(k->isa, "ce_forward lse", N, V, lse, lser, N, 2e-6, 2e-6);
            cmp(k->isa, "ce_forward losses", N, V, loss, lossr, N, 4e-6, 2e-6);
            cmp(k->isa, "ce_forward mean", N, V, &mean, &meanr, 1, 4e-6, 2e-6);
            float *g = dup(l, n), *gr = dup(l, n);
            float scale = 1.0f / (float)N;
            k->ce_backward(g, lser, tg, N, (int)V, scale);
            layer_ce_backward_ref(gr, lser, tg, N, (int)V, scale);
            cmp(k->isa, "ce_backward", N, V, g, gr, n, 1e-7, 4e-7);
            float *all[] = {l, lse, lser, loss, lossr, g, gr};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                mx_free(all[i]);
            mx_free(tg);
        }
}

/* The fused forward+backward (training) against the reference pair (layer_ce_forward_ref then
 * layer_ce_backward_ref): lse, losses and mean as ce_forward's tolerances, the gradient within
 * 4e-6 relative (the reference rounds lse to float before its exp: ~|lse| ulp) and 1e-7 absolute
 * as ce_backward's (at the target p·scale - scale cancels to a few ulp of scale), ignored rows
 * zero with loss 0, and the same bits on a second call. */
static void test_ce_fused(const struct nn_kernels *k, struct mx_rng *r)
{
    const size_t rows[] = {1, 5, 37};
    for (size_t t = 0; t < NLENS; t++)
        for (size_t q = 0; q < 3; q++) {
            size_t N = rows[q], V = lens[t], n = N * V, counted = 0;
            float *l = randn(r, n, 4.0f);
            int32_t *tg = mx_xmalloc(N * sizeof(int32_t));
            for (size_t i = 0; i < N; i++) {
                tg[i] = i % 4 == 3 ? NN_CE_IGNORE : (int32_t)mx_rng_below(r, (uint32_t)V);
                counted += tg[i] >= 0;
            }
            if (V > 3)
                l[V - 1] = 30.0f; /* a dominant logit in the tail */
            float scale = counted ? 1.0f / (float)counted : 0.0f;
            float *lse = mx_xmalloc(N * sizeof(float)), *lser = mx_xmalloc(N * sizeof(float));
            float *loss = mx_xmalloc(N * sizeof(float)), *lossr = mx_xmalloc(N * sizeof(float));
            float *g = dup(l, n), *gr = dup(l, n), *g2 = dup(l, n);
            float mean = k->ce_fused(g, lse, loss, tg, N, (int)V, scale);
            float meanr = layer_ce_fused_ref(gr, lser, lossr, tg, N, (int)V, scale);
            cmp(k->isa, "ce_fused lse", N, V, lse, lser, N, 2e-6, 2e-6);
            cmp(k->isa, "ce_fused losses", N, V, loss, lossr, N, 4e-6, 2e-6);
            cmp(k->isa, "ce_fused mean", N, V, &mean, &meanr, 1, 4e-6, 2e-6);
            cmp(k->isa, "ce_fused gradient", N, V, g, gr, n, 1e-7, 4e-6);
            float mean2 = k->ce_fused(g2, lse, loss, tg, N, (int)V, scale);
            cmp(k->isa, "ce_fused rerun", N, V, g2, g, n, 0, 0);
            cmp(k->isa, "ce_fused rerun mean", N, V, &mean2, &mean, 1, 0, 0);
            float *all[] = {l, lse, lser, loss, lossr, g, gr, g2};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                mx_free(all[i]);
            mx_free(tg);
        }
}

/* Ignored targets (negative) at this level: the rows that are counted give exactly the bits of
 * a call where nothing is ignored, ignored rows a loss of 0 and a zero gradient, the mean is
 * over the counted rows, the gradient matches central differences of that mean, and with none
 * counted the mean is 0. */
struct ce_fd {
    const struct nn_kernels *k;
    float *l, *lse, *loss;
    const int32_t *tg;
    size_t N, V;
};

static double ce_fd_mean(const struct ce_fd *c)
{
    c->k->ce_forward(c->lse, c->loss, c->l, c->tg, c->N, (int)c->V);
    double s = 0;
    size_t n = 0;
    for (size_t i = 0; i < c->N; i++)
        if (c->tg[i] >= 0)
            s += c->loss[i], n++;
    return s / (double)n;
}

static void test_ce_ignore(const struct nn_kernels *k, struct mx_rng *r)
{
    const size_t N = 23, lv[] = {3, 9, 17, 40};
    for (size_t q = 0; q < sizeof lv / sizeof lv[0]; q++) {
        size_t V = lv[q], n = N * V, counted = 0;
        float *l = randn(r, n, 2.0f);
        int32_t *all = mx_xmalloc(N * sizeof(int32_t)), *tg = mx_xmalloc(N * sizeof(int32_t));
        for (size_t i = 0; i < N; i++) {
            all[i] = (int32_t)mx_rng_below(r, (uint32_t)V);
            tg[i] = i % 3 == 1 || i == N - 1 ? NN_CE_IGNORE : all[i];
            counted += tg[i] >= 0;
        }
        float *lse = mx_xmalloc(N * sizeof(float)), *lsea = mx_xmalloc(N * sizeof(float));
        float *loss = mx_xmalloc(N * sizeof(float)), *lossa = mx_xmalloc(N * sizeof(float));
        float mean = k->ce_forward(lse, loss, l, tg, N, (int)V);
        k->ce_forward(lsea, lossa, l, all, N, (int)V);
        cmp(k->isa, "ce ignore: lse", N, V, lse, lsea, N, 0, 0);
        double want = 0;
        for (size_t i = 0; i < N; i++) {
            float expect = tg[i] < 0 ? 0.0f : lossa[i];
            cmp(k->isa, "ce ignore: row loss (counted: unmasked bits; ignored: 0)", N, V, &loss[i], &expect, 1, 0, 0);
            want += tg[i] < 0 ? 0.0 : (double)lossa[i];
        }
        float wantf = (float)(want / (double)counted);
        cmp(k->isa, "ce ignore: mean over the counted rows", N, V, &mean, &wantf, 1, 0, 0);
        float *lser = mx_xmalloc(N * sizeof(float)), *lossr = mx_xmalloc(N * sizeof(float));
        float meanr = layer_ce_forward_ref(lser, lossr, l, tg, N, (int)V);
        cmp(k->isa, "ce ignore: losses vs reference", N, V, loss, lossr, N, 4e-6, 2e-6);
        cmp(k->isa, "ce ignore: mean vs reference", N, V, &mean, &meanr, 1, 4e-6, 2e-6);
        float *gr = dup(l, n);
        layer_ce_backward_ref(gr, lser, tg, N, (int)V, 1.0f / (float)counted);
        float scale = 1.0f / (float)counted;
        float *g = dup(l, n), *ga = dup(l, n);
        k->ce_backward(g, lse, tg, N, (int)V, scale);
        k->ce_backward(ga, lsea, all, N, (int)V, scale);
        for (size_t i = 0; i < N; i++) {
            if (tg[i] < 0)
                memset(ga + i * V, 0, V * sizeof(float)); /* ignored: zero gradient */
        }
        cmp(k->isa, "ce ignore: backward (counted rows: unmasked bits; ignored rows: 0)", N, V, g, ga, n, 0, 0);
        cmp(k->isa, "ce ignore: backward vs reference", N, V, g, gr, n, 1e-7, 4e-7);
        /* Central differences of the mean over the counted rows, in double. */
        struct ce_fd c = {.k = k, .l = dup(l, n), .lse = lse, .loss = loss, .tg = tg, .N = N, .V = V};
        const float h = 1e-2f;
        double worst = 0;
        for (size_t j = 0; j < n; j++) {
            float keep = c.l[j];
            c.l[j] = keep + h;
            double up = ce_fd_mean(&c);
            c.l[j] = keep - h;
            double dn = ce_fd_mean(&c);
            c.l[j] = keep;
            double fd = (up - dn) / (2.0 * (double)h), err = fabs(fd - g[j]);
            worst = err > worst ? err : worst;
        }
        if (worst > 2e-4) {
            fprintf(stderr, "  %s: ce with ignored targets, V=%zu: gradient differs from central differences by %.2e\n",
                    k->isa, V, worst);
            check_failures++;
        }
        /* Nothing counted: mean 0, all-zero gradient. */
        for (size_t i = 0; i < N; i++)
            tg[i] = NN_CE_IGNORE;
        float none = k->ce_forward(lse, loss, l, tg, N, (int)V), zero = 0.0f;
        cmp(k->isa, "ce ignore: mean with nothing counted", N, V, &none, &zero, 1, 0, 0);
        float *g0 = dup(l, n), *z = mx_xcalloc(n * sizeof(float));
        k->ce_backward(g0, lse, tg, N, (int)V, 1.0f);
        cmp(k->isa, "ce ignore: backward with nothing counted", N, V, g0, z, n, 0, 0);
        float *fr[] = {l, lse, lsea, loss, lossa, lser, lossr, gr, g, ga, c.l, g0, z};
        for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++)
            mx_free(fr[i]);
        mx_free(all);
        mx_free(tg);
    }
}

/* AdamW inside a parallel region, as adamw_update calls it. */
static void test_adamw(const struct nn_kernels *k, struct mx_rng *r)
{
    for (size_t t = 0; t < NLENS; t++) {
        size_t n = lens[t];
        float *p = randn(r, n, 1.0f), *m = randn(r, n, 0.1f), *v = randn(r, n, 0.1f), *g = randn(r, n, 1.0f);
        for (size_t i = 0; i < n; i++)
            v[i] = v[i] * v[i];
        float *pr = dup(p, n), *mr = dup(m, n), *vr = dup(v, n), *gr = dup(g, n);
        struct nn_adamw_hp hp = {.lr = 3e-3f,
                                 .beta1 = 0.9f,
                                 .beta2 = 0.95f,
                                 .eps = 1e-8f,
                                 .weight_decay = 0.1f,
                                 .bc1 = 0.19f,
                                 .bc2 = 0.0975f,
                                 .grad_scale = 0.7f};
#pragma omp parallel
        k->adamw(p, m, v, g, n, &hp);
#pragma omp parallel
        nn_adamw_ref(pr, mr, vr, gr, n, &hp);
        cmp(k->isa, "adamw p", n, 0, p, pr, n, 0, 0);
        cmp(k->isa, "adamw m", n, 0, m, mr, n, 0, 0);
        cmp(k->isa, "adamw v", n, 0, v, vr, n, 0, 0);
        cmp(k->isa, "adamw g (zeroed)", n, 0, g, gr, n, 0, 0);
        /* Serial call (outside a parallel region) too. */
        k->adamw(p, m, v, g, n, &hp);
        nn_adamw_ref(pr, mr, vr, gr, n, &hp);
        cmp(k->isa, "adamw serial p", n, 0, p, pr, n, 0, 0);
        float *all[] = {p, m, v, g, pr, mr, vr, gr};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            mx_free(all[i]);
    }
}

static void test_embed(const struct nn_kernels *k, struct mx_rng *r)
{
    const int B = 3, T = 5, V = 11;
    for (size_t t = 0; t < NLENS; t++) {
        int C = (int)lens[t];
        size_t n = (size_t)B * T * C;
        float *wte = randn(r, (size_t)V * C, 1.0f), *wpe = randn(r, (size_t)T * C, 1.0f);
        int32_t tok[3 * 5];
        for (int i = 0; i < B * T; i++)
            tok[i] = (int32_t)mx_rng_below(r, V);
        float *y = mx_xmalloc(n * sizeof(float)), *yr = mx_xmalloc(n * sizeof(float));
        k->embed_forward(y, tok, wte, wpe, B, T, C);
        layer_embed_forward_ref(yr, tok, wte, wpe, B, T, C);
        cmp(k->isa, "embed_forward", (size_t)C, 0, y, yr, n, 0, 0);
        /* Backward accumulates into non-zero gradients; ids repeat (V = 11 < B*T = 15). */
        float *dwte = randn(r, (size_t)V * C, 1.0f), *dwpe = randn(r, (size_t)T * C, 1.0f);
        float *dwter = dup(dwte, (size_t)V * C), *dwper = dup(dwpe, (size_t)T * C);
        k->embed_backward(dwte, dwpe, y, tok, B, T, C);
        layer_embed_backward_ref(dwter, dwper, y, tok, B, T, C);
        cmp(k->isa, "embed_backward wte", (size_t)C, 0, dwte, dwter, (size_t)V * C, 0, 0);
        cmp(k->isa, "embed_backward wpe", (size_t)C, 0, dwpe, dwper, (size_t)T * C, 0, 0);
        mx_free(dwte);
        mx_free(dwpe);
        mx_free(dwter);
        mx_free(dwper);
        mx_free(wte);
        mx_free(wpe);
        mx_free(y);
        mx_free(yr);
    }
}

/* One case per level: the case name is the level; skipped where this machine cannot run it. */
static int case_level(void)
{
    omp_set_num_threads(2);
    for (int l = 0; l < MX_ISA_COUNT; l++) {
        if (strcmp(check_case_name(), mx_isa_level_name((enum mx_isa)l)) != 0)
            continue;
        const struct nn_kernels *k = nn_kernels_at((enum mx_isa)l);
        if (!k)
            return check_skip("%s: not built for, or not supported by, this machine", check_case_name());
        struct mx_rng r;
        mx_rng_seed(&r, 1234);
        test_gelu(k, &r);
        test_layer_norm(k, &r);
        test_ce(k, &r);
        test_ce_ignore(k, &r);
        test_ce_fused(k, &r);
        test_adamw(k, &r);
        test_embed(k, &r);
        return 0;
    }
    return check_skip("%s: no such level", check_case_name());
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"avx512", case_level},
        {"avx2", case_level},
        {"sse", case_level},
        {"neon", case_level},
        {"scalar", case_level}, /* built everywhere: never skipped */
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
