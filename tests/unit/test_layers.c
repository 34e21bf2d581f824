/* test_layers.c — the decoder's elementwise layers and the linear layer against central
 * differences: LayerNorm (x, w, b), GELU, softmax cross-entropy (logits; forward also against a
 * double-precision reference), embedding (wte, wpe) and mx_linear (x, w, b). Every backward is
 * also checked to ACCUMULATE (a second call doubles the gradients).
 * Not the whole model (test_model.c) and not the mixers (mixers/test_mixers.c). */
#include "check.h"
#include "mixer_check.h"
#include "nn/nn.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* ---- the finite-difference harness --------------------------------------------------------
 * Loss L(p) is evaluated by a callback in double (the projection Σ y·r of a float forward).
 * For a sample of coordinates of p the central difference (L(p+h) - L(p-h)) / (2h) is compared
 * with the analytic gradient g. h is the step actually representable in float around p[i]
 * (WHY: p[i] ± eps rounds, and dividing by the rounded step removes that error).
 * Metric: max over samples |numeric - g| / max(max_i |g_i|, 1e-6), i.e. the error relative to
 * the tensor's largest gradient. */
typedef double (*loss_fn)(void *ctx);

static int check_grad(const char *what, float *p, const float *g, size_t n, loss_fn f, void *ctx, float eps,
                      double tol, int samples)
{
    double gmax = 1e-6, worst = 0;
    for (size_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs(g[i]));
    struct mx_rng r;
    mx_rng_seed(&r, 77 + n);
    int fails = 0, ns = (size_t)samples < n ? samples : (int)n;
    for (int s = 0; s < ns; s++) {
        /* All coordinates when few, else a random sample. */
        size_t i = (size_t)samples >= n ? (size_t)s : mx_rng_below(&r, (uint32_t)n);
        float keep = p[i];
        float up = keep + eps, dn = keep - eps;
        p[i] = up;
        double lp = f(ctx);
        p[i] = dn;
        double lm = f(ctx);
        p[i] = keep;
        double num = (lp - lm) / ((double)up - (double)dn);
        double e = fabs(num - g[i]) / gmax;
        if (e > worst)
            worst = e;
        if (e > tol && fails++ < 5)
            fprintf(stderr, "  %s[%zu]: analytic %.7g numeric %.7g (rel %.2e > %.1e)\n", what, i, g[i], num,
                    e, tol);
    }
    fprintf(stderr, "  %-16s worst rel err %.2e (tol %.0e, %d samples, max|g| %.3g)\n", what, worst, tol, ns,
            gmax);
    return fails ? 1 : 0;
}

/* A second backward into the same buffers must give twice the first (+= contract). Not
 * bit-exact: a gradient summed from several terms rounds differently when the running sum
 * starts at a instead of 0, hence the 1e-5 relative slack (an overwrite would be off by 50%). */
static int check_doubled(const char *what, const float *once, const float *twice, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fabs((double)twice[i] - 2.0 * once[i]) > 1e-5 * (fabs(once[i]) + 1e-3)) {
            fprintf(stderr, "  %s: backward does not accumulate: [%zu] once %.7g twice %.7g\n", what, i,
                    once[i], twice[i]);
            return 1;
        }
    return 0;
}

static double dot(const float *y, const float *r, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)y[i] * r[i];
    return s;
}

static float *vec(size_t n, uint64_t seed, float std)
{
    float *x = mx_xmalloc((n + 1) * sizeof(float));
    mc_fill_normal(x, n, seed, std);
    return x;
}

/* ---- LayerNorm ---------------------------------------------------------------------------- */

struct ln_ctx {
    float *x, *w, *b, *out, *mean, *rstd, *r;
    size_t N;
    int C;
};

static double ln_loss(void *p)
{
    struct ln_ctx *c = p;
    layer_norm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C);
    return dot(c->out, c->r, c->N * c->C);
}

static int test_layer_norm(int with_bias)
{
    const size_t N = 7;
    const int C = 12;
    struct ln_ctx c = {.N = N, .C = C};
    c.x = vec(N * C, 1, 1.5f);
    for (size_t i = 0; i < N * C; i++)
        c.x[i] += 0.7f; /* a non-zero mean per row */
    c.w = vec(C, 2, 0.5f);
    for (int i = 0; i < C; i++)
        c.w[i] += 1.0f;
    c.b = with_bias ? vec(C, 3, 0.3f) : NULL;
    c.r = vec(N * C, 4, 1.0f);
    c.out = vec(N * C, 5, 1.0f);
    c.mean = vec(N, 6, 1.0f);
    c.rstd = vec(N, 7, 1.0f);
    float *work = mx_xmalloc(layer_norm_work_floats(C) * sizeof(float));
    float *dx = mx_xcalloc(N * C * sizeof(float)), *dw = mx_xcalloc(C * sizeof(float));
    float *db = mx_xcalloc(C * sizeof(float));
    float *dx2 = mx_xcalloc(N * C * sizeof(float)), *dw2 = mx_xcalloc(C * sizeof(float));
    float *db2 = mx_xcalloc(C * sizeof(float));

    int f = 0;
    /* Forward against a double reference (two-pass mean/variance, eps 1e-5). */
    ln_loss(&c);
    double worst = 0;
    for (size_t i = 0; i < N; i++) {
        double m = 0, v = 0;
        for (int k = 0; k < C; k++)
            m += c.x[i * C + k];
        m /= C;
        for (int k = 0; k < C; k++)
            v += (c.x[i * C + k] - m) * (c.x[i * C + k] - m);
        v /= C;
        double rs = 1.0 / sqrt(v + 1e-5);
        for (int k = 0; k < C; k++) {
            double want = (c.x[i * C + k] - m) * rs * c.w[k] + (c.b ? c.b[k] : 0);
            worst = fmax(worst, fabs(want - c.out[i * C + k]));
        }
        worst = fmax(worst, fabs(m - c.mean[i]) + fabs(rs - c.rstd[i]) / rs);
    }
    if (worst > 1e-5) {
        fprintf(stderr, "  layer_norm forward differs from the double reference by %.2e\n", worst);
        f = 1;
    }

    layer_norm_backward(dx, dw, c.b ? db : NULL, work, c.r, c.x, c.mean, c.rstd, c.w, N, C);
    layer_norm_backward(dx2, dw2, c.b ? db2 : NULL, work, c.r, c.x, c.mean, c.rstd, c.w, N, C);
    layer_norm_backward(dx2, dw2, c.b ? db2 : NULL, work, c.r, c.x, c.mean, c.rstd, c.w, N, C);
    f |= check_grad(with_bias ? "ln dx" : "ln(nobias) dx", c.x, dx, N * C, ln_loss, &c, 1e-3f, 2e-3, 84);
    f |= check_grad(with_bias ? "ln dw" : "ln(nobias) dw", c.w, dw, C, ln_loss, &c, 1e-3f, 2e-3, 12);
    if (c.b)
        f |= check_grad("ln db", c.b, db, C, ln_loss, &c, 1e-3f, 2e-3, 12);
    f |= check_doubled("ln dx", dx, dx2, N * C);
    f |= check_doubled("ln dw", dw, dw2, C);
    if (c.b)
        f |= check_doubled("ln db", db, db2, C);
    float *ptrs[] = {c.x, c.w, c.b, c.r, c.out, c.mean, c.rstd, work, dx, dw, db, dx2, dw2, db2};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        mx_free(ptrs[i]);
    return f;
}

/* ---- GELU ---------------------------------------------------------------------------------- */

struct gelu_ctx {
    float *x, *y, *r;
    size_t n;
};

static double gelu_loss(void *p)
{
    struct gelu_ctx *c = p;
    layer_gelu_forward(c->y, c->x, c->n);
    return dot(c->y, c->r, c->n);
}

static int test_gelu(void)
{
    const size_t n = 96;
    struct gelu_ctx c = {.n = n};
    c.x = vec(n, 11, 2.5f); /* covers both tails and the bend around 0 */
    c.x[0] = 0.0f;
    c.x[1] = -6.0f;
    c.x[2] = 6.0f;
    c.y = vec(n, 12, 1.0f);
    c.r = vec(n, 13, 1.0f);
    float *dx = vec(n, 14, 1.0f); /* garbage: backward overwrites */
    int f = 0;
    gelu_loss(&c);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double v = c.x[i];
        double want = 0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
        worst = fmax(worst, fabs(want - c.y[i]));
    }
    if (worst > 2e-6) {
        fprintf(stderr, "  gelu forward differs from the double tanh formula by %.2e\n", worst);
        f = 1;
    }
    layer_gelu_backward(dx, c.r, c.x, n);
    f |= check_grad("gelu dx", c.x, dx, n, gelu_loss, &c, 1e-3f, 2e-3, (int)n);
    /* In place (dx == dout), as the model calls it. */
    float *inplace = mx_xmalloc(n * sizeof(float));
    memcpy(inplace, c.r, n * sizeof(float));
    layer_gelu_backward(inplace, inplace, c.x, n);
    if (memcmp(inplace, dx, n * sizeof(float)) != 0) {
        fprintf(stderr, "  gelu backward in place differs from out of place\n");
        f = 1;
    }
    mx_free(inplace);
    mx_free(c.x);
    mx_free(c.y);
    mx_free(c.r);
    mx_free(dx);
    return f;
}

/* ---- cross-entropy ------------------------------------------------------------------------- */

struct ce_ctx {
    float *logits, *lse, *losses;
    const int32_t *tgt;
    size_t N;
    int V;
};

/* The mean loss re-summed in double from the per-row losses (WHY: the returned float mean
 * has an ulp of ~2e-7, too coarse for differences of 2e-3). */
static double ce_loss(void *p)
{
    struct ce_ctx *c = p;
    layer_ce_forward(c->lse, c->losses, c->logits, c->tgt, c->N, c->V);
    double s = 0;
    for (size_t i = 0; i < c->N; i++)
        s += c->losses[i];
    return s / (double)c->N;
}

static int test_cross_entropy(void)
{
    const size_t N = 6;
    const int V = 9;
    int32_t tgt[6] = {0, 8, 3, 3, 5, 1};
    struct ce_ctx c = {.N = N, .V = V, .tgt = tgt};
    c.logits = vec(N * V, 21, 2.0f);
    c.lse = vec(N, 22, 1.0f);
    c.losses = vec(N, 23, 1.0f);
    int f = 0;
    float mean = layer_ce_forward(c.lse, c.losses, c.logits, tgt, N, V);
    double worst = 0, total = 0;
    for (size_t i = 0; i < N; i++) {
        double s = 0;
        for (int v = 0; v < V; v++)
            s += exp((double)c.logits[i * V + v]);
        double lse = log(s), loss = lse - c.logits[i * V + tgt[i]];
        total += loss;
        worst = fmax(worst, fabs(lse - c.lse[i]) + fabs(loss - c.losses[i]));
    }
    worst = fmax(worst, fabs(total / N - mean));
    if (worst > 1e-5) {
        fprintf(stderr, "  cross-entropy forward differs from the double reference by %.2e\n", worst);
        f = 1;
    }
    /* Large logits must not overflow (the max is subtracted first). */
    float big[4] = {1000.0f, 999.0f, -1000.0f, 998.0f}, lse1, loss1;
    int32_t t1 = 1;
    float m1 = layer_ce_forward(&lse1, &loss1, big, &t1, 1, 4);
    double want = 1000.0 + log(1.0 + exp(-1.0) + exp(-2.0)) - 999.0;
    if (!(fabs(m1 - want) < 1e-4)) {
        fprintf(stderr, "  cross-entropy of logits ~1000: %.7g, want %.7g\n", m1, want);
        f = 1;
    }
    /* Without targets: lse only, returns 0. */
    if (layer_ce_forward(c.lse, c.losses, c.logits, NULL, N, V) != 0.0f) {
        fprintf(stderr, "  cross-entropy without targets must return 0\n");
        f = 1;
    }
    ce_loss(&c);
    float *d = mx_xmalloc(N * V * sizeof(float));
    memcpy(d, c.logits, N * V * sizeof(float));
    layer_ce_backward(d, c.lse, tgt, N, V, 1.0f / (float)N);
    /* Each row of d(mean loss)/d logits sums to 0 (softmax minus one-hot). */
    for (size_t i = 0; i < N; i++) {
        double s = 0;
        for (int v = 0; v < V; v++)
            s += d[i * V + v];
        if (fabs(s) > 1e-6) {
            fprintf(stderr, "  cross-entropy gradient row %zu sums to %.2e, not 0\n", i, s);
            f = 1;
        }
    }
    f |= check_grad("ce dlogits", c.logits, d, N * V, ce_loss, &c, 1e-3f, 2e-3, (int)(N * V));
    mx_free(d);
    mx_free(c.logits);
    mx_free(c.lse);
    mx_free(c.losses);
    return f;
}

/* ---- embedding ----------------------------------------------------------------------------- */

struct emb_ctx {
    float *wte, *wpe, *out, *r;
    const int32_t *tok;
    int B, T, C;
};

static double emb_loss(void *p)
{
    struct emb_ctx *c = p;
    layer_embed_forward(c->out, c->tok, c->wte, c->wpe, c->B, c->T, c->C);
    return dot(c->out, c->r, (size_t)c->B * c->T * c->C);
}

static int test_embedding(void)
{
    const int B = 2, T = 5, C = 6, V = 7, Tmax = 8;
    /* Repeated ids (3 appears four times) test accumulation; id 6 never appears: zero grad. */
    const int32_t tok[10] = {3, 0, 3, 5, 1, 2, 3, 3, 4, 0};
    struct emb_ctx c = {.tok = tok, .B = B, .T = T, .C = C};
    c.wte = vec((size_t)V * C, 31, 1.0f);
    c.wpe = vec((size_t)Tmax * C, 32, 1.0f);
    c.out = vec((size_t)B * T * C, 33, 1.0f);
    c.r = vec((size_t)B * T * C, 34, 1.0f);
    float *dwte = mx_xcalloc((size_t)V * C * 4), *dwpe = mx_xcalloc((size_t)Tmax * C * 4);
    float *dwte2 = mx_xcalloc((size_t)V * C * 4), *dwpe2 = mx_xcalloc((size_t)Tmax * C * 4);
    int f = 0;
    emb_loss(&c);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int k = 0; k < C; k++) {
                float want = c.wte[(size_t)tok[b * T + t] * C + k] + c.wpe[(size_t)t * C + k];
                if (c.out[((size_t)b * T + t) * C + k] != want) {
                    fprintf(stderr, "  embedding forward wrong at b=%d t=%d c=%d\n", b, t, k);
                    f = 1;
                }
            }
    layer_embed_backward(dwte, dwpe, c.r, tok, B, T, C);
    layer_embed_backward(dwte2, dwpe2, c.r, tok, B, T, C);
    layer_embed_backward(dwte2, dwpe2, c.r, tok, B, T, C);
    /* All coordinates, including rows of absent ids and positions >= T (gradient 0). */
    f |= check_grad("embed dwte", c.wte, dwte, (size_t)V * C, emb_loss, &c, 1e-3f, 1e-3, V * C);
    f |= check_grad("embed dwpe", c.wpe, dwpe, (size_t)Tmax * C, emb_loss, &c, 1e-3f, 1e-3, Tmax * C);
    for (size_t i = (size_t)T * C; i < (size_t)Tmax * C; i++)
        if (dwpe[i] != 0.0f) {
            fprintf(stderr, "  embedding: wpe row beyond T got a gradient\n");
            f = 1;
            break;
        }
    f |= check_doubled("embed dwte", dwte, dwte2, (size_t)V * C);
    f |= check_doubled("embed dwpe", dwpe, dwpe2, (size_t)Tmax * C);
    float *ptrs[] = {c.wte, c.wpe, c.out, c.r, dwte, dwpe, dwte2, dwpe2};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        mx_free(ptrs[i]);
    return f;
}

/* ---- linear (nn/linear.c) ---------------------------------------------------------------- */

struct lin_ctx {
    float *x, *w, *b, *y, *r;
    int N, in, out;
};

static double lin_loss(void *p)
{
    struct lin_ctx *c = p;
    mx_linear_forward(c->y, c->x, c->w, c->b, c->N, c->in, c->out);
    return dot(c->y, c->r, (size_t)c->N * c->out);
}

static int test_linear(int with_bias)
{
    const int N = 5, in = 7, out = 6;
    struct lin_ctx c = {.N = N, .in = in, .out = out};
    c.x = vec((size_t)N * in, 41, 1.0f);
    c.w = vec((size_t)out * in, 42, 0.5f);
    c.b = with_bias ? vec(out, 43, 0.5f) : NULL;
    c.y = vec((size_t)N * out, 44, 1.0f); /* garbage: forward overwrites, also without bias */
    c.r = vec((size_t)N * out, 45, 1.0f);
    float *dx = mx_xcalloc((size_t)N * in * 4), *dw = mx_xcalloc((size_t)out * in * 4),
          *db = mx_xcalloc((size_t)out * 4);
    float *dx2 = mx_xcalloc((size_t)N * in * 4), *dw2 = mx_xcalloc((size_t)out * in * 4),
          *db2 = mx_xcalloc((size_t)out * 4);
    int f = 0;
    lin_loss(&c);
    double worst = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < out; o++) {
            double s = c.b ? c.b[o] : 0;
            for (int i = 0; i < in; i++)
                s += (double)c.x[n * in + i] * c.w[o * in + i];
            worst = fmax(worst, fabs(s - c.y[n * out + o]));
        }
    if (worst > 1e-5) {
        fprintf(stderr, "  linear forward differs from y = x W^T + b by %.2e\n", worst);
        f = 1;
    }
    mx_linear_backward(dx, dw, c.b ? db : NULL, c.r, c.x, c.w, N, in, out);
    mx_linear_backward(dx2, dw2, c.b ? db2 : NULL, c.r, c.x, c.w, N, in, out);
    mx_linear_backward(dx2, dw2, c.b ? db2 : NULL, c.r, c.x, c.w, N, in, out);
    const char *nx = with_bias ? "linear dx" : "linear(nb) dx",
               *nw = with_bias ? "linear dw" : "linear(nb) dw";
    f |= check_grad(nx, c.x, dx, (size_t)N * in, lin_loss, &c, 1e-3f, 1e-3, N * in);
    f |= check_grad(nw, c.w, dw, (size_t)out * in, lin_loss, &c, 1e-3f, 1e-3, out * in);
    if (c.b)
        f |= check_grad("linear db", c.b, db, out, lin_loss, &c, 1e-3f, 1e-3, out);
    f |= check_doubled("linear dx", dx, dx2, (size_t)N * in);
    f |= check_doubled("linear dw", dw, dw2, (size_t)out * in);
    if (c.b)
        f |= check_doubled("linear db", db, db2, out);
    /* dx NULL skips the input gradient and leaves the others unchanged. */
    float *dw3 = mx_xcalloc((size_t)out * in * 4);
    mx_linear_backward(NULL, dw3, NULL, c.r, c.x, c.w, N, in, out);
    if (memcmp(dw3, dw, (size_t)out * in * 4) != 0) {
        fprintf(stderr, "  linear backward with dx NULL gives another dw\n");
        f = 1;
    }
    float *ptrs[] = {c.x, c.w, c.b, c.y, c.r, dx, dw, db, dx2, dw2, db2, dw3};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        mx_free(ptrs[i]);
    return f;
}

static int case_layer_norm_bias(void)
{
    return test_layer_norm(1);
}

static int case_layer_norm_no_bias(void)
{
    return test_layer_norm(0);
}

static int case_gelu(void)
{
    return test_gelu();
}

static int case_cross_entropy(void)
{
    return test_cross_entropy();
}

static int case_embedding(void)
{
    return test_embedding();
}

static int case_linear_bias(void)
{
    return test_linear(1);
}

static int case_linear_no_bias(void)
{
    return test_linear(0);
}

/* mx_sgemm against a double-precision reference: both transposes of each operand, split along
 * rows (M >= N) and along columns, sizes that leave ragged blocks, beta 0 and 1, at 1 and 2
 * OpenMP threads (2: the split path, one single-threaded sgemm per block). */
static int case_sgemm_split(void)
{
    static const int shapes[][3] = {{301, 67, 215}, {67, 301, 215}, {1030, 257, 33}, {40, 2049, 70}};
    int saved = omp_get_max_threads();
    struct mx_rng rng;
    mx_rng_seed3(&rng, 11, 0, 0);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = mx_xmalloc(sizeof(float) * M * K), *B = mx_xmalloc(sizeof(float) * K * N);
        float *C = mx_xmalloc(sizeof(float) * M * N), *C0 = mx_xmalloc(sizeof(float) * M * N);
        for (int i = 0; i < M * K; i++)
            A[i] = mx_rng_uniform(&rng) - 0.5f;
        for (int i = 0; i < K * N; i++)
            B[i] = mx_rng_uniform(&rng) - 0.5f;
        for (int i = 0; i < M * N; i++)
            C0[i] = mx_rng_uniform(&rng) - 0.5f;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta = 0; beta < 2; beta++)
                    for (int nt = 1; nt <= 2; nt++) {
                        memcpy(C, C0, sizeof(float) * M * N);
                        omp_set_num_threads(nt);
                        mx_sgemm(ta, tb, M, N, K, A, ta ? M : K, B, tb ? K : N, (float)beta, C, N);
                        double worst = 0;
                        for (int i = 0; i < M; i++)
                            for (int j = 0; j < N; j++) {
                                double r = beta ? C0[i * N + j] : 0;
                                for (int k = 0; k < K; k++)
                                    r += (double)(ta ? A[k * M + i] : A[i * K + k]) *
                                         (tb ? B[j * K + k] : B[k * N + j]);
                                double e = fabs(C[i * N + j] - r);
                                worst = e > worst ? e : worst;
                            }
                        CHECK(worst < 1e-4, "%dx%dx%d ta %d tb %d beta %d threads %d: max error %g", M, N, K, ta,
                              tb, beta, nt, worst);
                    }
        mx_free(A);
        mx_free(B);
        mx_free(C);
        mx_free(C0);
    }
    omp_set_num_threads(saved);
    return 0;
}

/* The OpenBLAS core rule: a pre-AVX2 core on an AVX2 or AVX-512 CPU (OpenBLAS < 0.3.25 falling
 * back to Prescott on a CPU it does not know) is replaced; a core OpenBLAS chose at AVX2 or above,
 * or a weak core on a CPU that has nothing better, is kept. Then the process itself: on this
 * machine, main() never leaves OpenBLAS on a weak core the CPU can beat (this test is not
 * main(), so it checks the rule's answer against what the library runs now). */
static int case_blas_core_rule(void)
{
    CHECK(!strcmp(mx_blas_core_upgrade_for("Prescott", 1, 1) ?: "", "SkylakeX"), "Prescott on AVX-512");
    CHECK(!strcmp(mx_blas_core_upgrade_for("prescott", 1, 0) ?: "", "Haswell"), "prescott on AVX2");
    CHECK(!strcmp(mx_blas_core_upgrade_for("Nehalem", 1, 0) ?: "", "Haswell"), "Nehalem on AVX2");
    CHECK(!strcmp(mx_blas_core_upgrade_for("Sandybridge", 1, 1) ?: "", "SkylakeX"), "Sandybridge on AVX-512");
    CHECK(mx_blas_core_upgrade_for("Prescott", 0, 0) == NULL, "Prescott on an SSE-only CPU is right");
    CHECK(mx_blas_core_upgrade_for("Haswell", 1, 1) == NULL, "Haswell on AVX-512 is OpenBLAS's choice");
    CHECK(mx_blas_core_upgrade_for("Zen", 1, 0) == NULL, "Zen kept");
    CHECK(mx_blas_core_upgrade_for("SkylakeX", 1, 1) == NULL, "SkylakeX kept");
    CHECK(mx_blas_core_upgrade_for("Cooperlake", 1, 1) == NULL, "Cooperlake kept");
    CHECK(mx_blas_core_upgrade_for("armv8", 0, 0) == NULL, "ARM kept");
    CHECK(mx_blas_core_upgrade_for(NULL, 1, 1) == NULL, "no name");
    /* MIXLM_ISA's lower level brings OpenBLAS down with it; the CPU's own level, scalar or
     * nothing leaves OpenBLAS alone. */
    CHECK(!strcmp(mx_blas_core_for_isa("avx2", 1, 1) ?: "", "Haswell"), "avx2 on AVX-512");
    CHECK(!strcmp(mx_blas_core_for_isa("sse", 1, 1) ?: "", "Nehalem"), "sse on AVX-512");
    CHECK(!strcmp(mx_blas_core_for_isa("sse", 1, 0) ?: "", "Nehalem"), "sse on AVX2");
    CHECK(mx_blas_core_for_isa("avx2", 1, 0) == NULL, "avx2 on AVX2 is the CPU's own level");
    CHECK(mx_blas_core_for_isa("avx512", 1, 1) == NULL, "avx512 on AVX-512");
    CHECK(mx_blas_core_for_isa("sse", 0, 0) == NULL, "sse on an SSE-only CPU");
    CHECK(mx_blas_core_for_isa("scalar", 1, 1) == NULL, "scalar keeps OpenBLAS's core");
    CHECK(mx_blas_core_for_isa(NULL, 1, 1) == NULL, "no MIXLM_ISA");
    const char *core = mx_blas_core(), *up = mx_blas_core_upgrade();
    CHECK(core && core[0], "OpenBLAS names its core");
    char desc[192];
    mx_blas_desc(desc, sizeof desc);
    CHECK(strstr(desc, core) != NULL, "'%s' names the core %s", desc, core);
    printf("OpenBLAS here: %s%s%s\n", desc, up ? "; main() would force " : "", up ? up : "");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"layer_norm_bias", case_layer_norm_bias},
        {"layer_norm_no_bias", case_layer_norm_no_bias},
        {"gelu", case_gelu},
        {"cross_entropy", case_cross_entropy},
        {"embedding", case_embedding},
        {"linear_bias", case_linear_bias},
        {"linear_no_bias", case_linear_no_bias},
        {"sgemm_split", case_sgemm_split},
        {"blas_core_rule", case_blas_core_rule},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
