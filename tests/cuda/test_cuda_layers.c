/* test_cuda_layers.c — CPU-GPU parity of cuda/layers.cu against the C references
 * (nn/layers.c, train/train.c): embedding, LayerNorm, GELU, cross-entropy forward and
 * backward, AdamW (with the folded-in clipping scale), gradient norm, on random inputs, plus
 * accumulate (+=) and run-to-run bitwise determinism. Label `cuda`; exits 77 where no CUDA device is found.
 * Tolerances (max |gpu - cpu| / max |cpu| per tensor) are stated at each check. Not a speed test. */
#include "check.h"
#include "cuda/cuda_ctx.h"
#include "nn/nn.h"
#include "cuda/layers_cuda.h"
#include "train/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill(struct mx_rng *r, float *x, size_t n, float std)
{
    mx_rng_fill_normal(r, x, n, std);
}

static float *dev_from(const struct mx_cuda *c, const void *host, size_t bytes)
{
    void *d = mx_cuda_malloc(c, bytes);
    mx_cuda_upload(c, d, host, bytes);
    return d;
}

/* An output the GPU must overwrite: every byte 0xff (a NaN pattern), so a skipped element shows. */
static float *dev_poisoned(const struct mx_cuda *c, size_t n)
{
    float *d = mx_cuda_malloc(c, n * sizeof(float));
    mx_cuda_fill_bytes(c, d, 0xff, n * sizeof(float));
    return d;
}

static float *host_of(const struct mx_cuda *c, const float *dev, size_t n)
{
    float *h = mx_xmalloc(n * sizeof(float) + 1);
    mx_cuda_download(c, h, dev, n * sizeof(float));
    return h;
}

/* max |a-b| / max|ref| <= tol (tol 0: bit-for-bit); NaN never passes. */
static void check(const char *what, const float *gpu, const float *ref, size_t n, double tol)
{
    double err = 0, mx = 0;
    size_t at = 0;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(gpu[i]) && isfinite(ref[i]))
            nan = 1;
        double e = fabs((double)gpu[i] - (double)ref[i]);
        if (e > err || (e != e)) {
            err = e;
            at = i;
        }
        mx = fmax(mx, fabs((double)ref[i]));
    }
    double rel = mx > 0 ? err / mx : err;
    int ok = !nan && (tol == 0 ? err == 0 : rel <= tol);
    printf("%-34s n=%-7zu rel %.3g (tol %.0e)%s\n", what, n, rel, tol, ok ? "" : "  FAIL");
    if (!ok) {
        printf("    worst at %zu: gpu %.9g cpu %.9g%s\n", at, gpu[at], ref[at], nan ? " (non-finite)" : "");
        check_failures++;
    }
}

static void check_same(const char *what, const float *a, const float *b, size_t n)
{
    int ok = memcmp(a, b, n * sizeof(float)) == 0;
    printf("%-34s bitwise %s\n", what, ok ? "equal" : "DIFFERENT  FAIL");
    check_failures += !ok;
}

static void test_embed(const struct mx_cuda *c, struct mx_rng *r, int B, int T, int C, int V)
{
    size_t N = (size_t)B * T;
    int32_t *tok = mx_xmalloc(N * sizeof(int32_t));
    for (size_t i = 0; i < N; i++)
        tok[i] = (int32_t)mx_rng_below(r, (uint32_t)V); /* small V: many repeated ids */
    float *wte = mx_xmalloc((size_t)V * C * sizeof(float)), *wpe = mx_xmalloc((size_t)T * C * sizeof(float));
    float *out = mx_xmalloc(N * C * sizeof(float)), *dout = mx_xmalloc(N * C * sizeof(float));
    float *dwte = mx_xmalloc((size_t)V * C * sizeof(float)),
          *dwpe = mx_xmalloc((size_t)T * C * sizeof(float));
    fill(r, wte, (size_t)V * C, 1);
    fill(r, wpe, (size_t)T * C, 1);
    fill(r, dout, N * C, 1);
    fill(r, dwte, (size_t)V * C, 1); /* nonzero: backward must ADD */
    fill(r, dwpe, (size_t)T * C, 1);

    int32_t *d_tok = (int32_t *)dev_from(c, tok, N * sizeof(int32_t));
    float *d_wte = dev_from(c, wte, (size_t)V * C * sizeof(float));
    float *d_wpe = dev_from(c, wpe, (size_t)T * C * sizeof(float));
    float *d_out = dev_poisoned(c, N * C);
    float *d_dout = dev_from(c, dout, N * C * sizeof(float));
    float *d_dwte = dev_from(c, dwte, (size_t)V * C * sizeof(float));
    float *d_dwpe = dev_from(c, dwpe, (size_t)T * C * sizeof(float));
    void *d_work = mx_cuda_malloc(c, layer_cuda_embed_backward_work_bytes(c, (int)N, V));

    char name[96];
    layer_embed_forward(out, tok, wte, wpe, B, T, C);
    layer_cuda_embed_forward(c, d_out, d_tok, d_wte, d_wpe, B, T, C);
    float *g = host_of(c, d_out, N * C);
    snprintf(name, sizeof name, "embed fwd C=%d V=%d", C, V);
    check(name, g, out, N * C, 0); /* one add per element: bit-for-bit */
    mx_free(g);

    layer_embed_backward(dwte, dwpe, dout, tok, B, T, C);
    layer_cuda_embed_backward(c, d_dwte, d_dwpe, d_work, d_dout, d_tok, B, T, C, V);
    g = host_of(c, d_dwte, (size_t)V * C);
    snprintf(name, sizeof name, "embed bwd dwte C=%d V=%d", C, V);
    check(name, g, dwte, (size_t)V * C, 0); /* same adds in the same (position) order */
    mx_free(g);
    g = host_of(c, d_dwpe, (size_t)T * C);
    snprintf(name, sizeof name, "embed bwd dwpe C=%d", C);
    check(name, g, dwpe, (size_t)T * C, 0);
    mx_free(g);

    mx_cuda_dfree(c, d_tok);
    mx_cuda_dfree(c, d_wte);
    mx_cuda_dfree(c, d_wpe);
    mx_cuda_dfree(c, d_out);
    mx_cuda_dfree(c, d_dout);
    mx_cuda_dfree(c, d_dwte);
    mx_cuda_dfree(c, d_dwpe);
    mx_cuda_dfree(c, d_work);
    mx_free(tok);
    mx_free(wte);
    mx_free(wpe);
    mx_free(out);
    mx_free(dout);
    mx_free(dwte);
    mx_free(dwpe);
}

static void test_layernorm(const struct mx_cuda *c, struct mx_rng *r, size_t N, int C, int bias)
{
    size_t n = N * C;
    float *x = mx_xmalloc(n * 4), *w = mx_xmalloc((size_t)C * 4), *b = mx_xmalloc((size_t)C * 4);
    float *out = mx_xmalloc(n * 4), *mean = mx_xmalloc(N * 4), *rstd = mx_xmalloc(N * 4);
    float *dout = mx_xmalloc(n * 4), *dx = mx_xmalloc(n * 4), *dw = mx_xmalloc((size_t)C * 4),
          *db = mx_xmalloc((size_t)C * 4);
    fill(r, x, n, 2);
    for (size_t i = 0; i < N; i++) /* rows with an offset: the two-pass variance matters */
        for (int k = 0; k < C; k++)
            x[i * C + k] += (float)(i % 5);
    fill(r, w, (size_t)C, 1);
    fill(r, b, (size_t)C, 1);
    fill(r, dout, n, 1);
    fill(r, dx, n, 1);
    fill(r, dw, (size_t)C, 1);
    fill(r, db, (size_t)C, 1);

    float *d_x = dev_from(c, x, n * 4), *d_w = dev_from(c, w, (size_t)C * 4);
    float *d_b = bias ? dev_from(c, b, (size_t)C * 4) : NULL;
    float *d_out = dev_poisoned(c, n), *d_mean = dev_poisoned(c, N), *d_rstd = dev_poisoned(c, N);
    float *d_dout = dev_from(c, dout, n * 4), *d_dx = dev_from(c, dx, n * 4);
    float *d_dw = dev_from(c, dw, (size_t)C * 4), *d_db = dev_from(c, db, (size_t)C * 4);
    float *d_work = mx_cuda_malloc(c, layer_cuda_norm_work_floats(C) * 4);
    float *work = mx_xmalloc(layer_norm_work_floats(C) * 4);

    char name[96];
    layer_norm_forward(out, mean, rstd, x, w, bias ? b : NULL, N, C);
    layer_cuda_norm_forward(c, d_out, d_mean, d_rstd, d_x, d_w, d_b, N, C);
    float *g = host_of(c, d_out, n);
    snprintf(name, sizeof name, "layernorm fwd C=%d bias=%d", C, bias);
    check(name, g, out, n, 1e-5);
    mx_free(g);
    g = host_of(c, d_mean, N);
    check("layernorm fwd mean", g, mean, N, 1e-5);
    mx_free(g);
    g = host_of(c, d_rstd, N);
    check("layernorm fwd rstd", g, rstd, N, 1e-5);
    mx_free(g);

    /* Backward from the CPU's mean/rstd on both sides, so only backward is compared. */
    mx_cuda_upload(c, d_mean, mean, N * 4);
    mx_cuda_upload(c, d_rstd, rstd, N * 4);
    layer_norm_backward(dx, dw, bias ? db : NULL, work, dout, x, mean, rstd, w, N, C);
    layer_cuda_norm_backward(c, d_dx, d_dw, bias ? d_db : NULL, d_work, d_dout, d_x, d_mean, d_rstd, d_w, N,
                             C);
    g = host_of(c, d_dx, n);
    snprintf(name, sizeof name, "layernorm bwd dx C=%d", C);
    check(name, g, dx, n, 1e-5);
    mx_free(g);
    float *g_dw = host_of(c, d_dw, (size_t)C), *g_db = host_of(c, d_db, (size_t)C);
    check("layernorm bwd dw (reduction)", g_dw, dw, (size_t)C, 1e-4);
    check("layernorm bwd db (reduction)", g_db, db, (size_t)C, 1e-4);
    /* Determinism: again from the same starting values gives the same bits. */
    mx_cuda_upload(c, d_dw, g_dw, (size_t)C * 4);
    mx_cuda_upload(c, d_db, g_db, (size_t)C * 4);
    layer_cuda_norm_backward(c, d_dx, d_dw, bias ? d_db : NULL, d_work, d_dout, d_x, d_mean, d_rstd, d_w, N,
                             C);
    float *g2 = host_of(c, d_dw, (size_t)C);
    mx_cuda_upload(c, d_dw, g_dw, (size_t)C * 4);
    layer_cuda_norm_backward(c, d_dx, d_dw, bias ? d_db : NULL, d_work, d_dout, d_x, d_mean, d_rstd, d_w, N,
                             C);
    float *g3 = host_of(c, d_dw, (size_t)C);
    check_same("layernorm bwd dw run-to-run", g2, g3, (size_t)C);
    mx_free(g_dw);
    mx_free(g_db);
    mx_free(g2);
    mx_free(g3);

    mx_cuda_dfree(c, d_x);
    mx_cuda_dfree(c, d_w);
    mx_cuda_dfree(c, d_b);
    mx_cuda_dfree(c, d_out);
    mx_cuda_dfree(c, d_mean);
    mx_cuda_dfree(c, d_rstd);
    mx_cuda_dfree(c, d_dout);
    mx_cuda_dfree(c, d_dx);
    mx_cuda_dfree(c, d_dw);
    mx_cuda_dfree(c, d_db);
    mx_cuda_dfree(c, d_work);
    mx_free(x);
    mx_free(w);
    mx_free(b);
    mx_free(out);
    mx_free(mean);
    mx_free(rstd);
    mx_free(dout);
    mx_free(dx);
    mx_free(dw);
    mx_free(db);
    mx_free(work);
}

static void test_gelu(const struct mx_cuda *c, struct mx_rng *r, size_t n)
{
    float *x = mx_xmalloc(n * 4), *out = mx_xmalloc(n * 4), *dout = mx_xmalloc(n * 4),
          *dx = mx_xmalloc(n * 4);
    fill(r, x, n, 2.5f);
    x[0] = 0;
    if (n > 3) {
        x[1] = 12;
        x[2] = -12;
    }
    fill(r, dout, n, 1);
    float *d_x = dev_from(c, x, n * 4), *d_dout = dev_from(c, dout, n * 4);
    float *d_out = dev_poisoned(c, n), *d_dx = dev_poisoned(c, n);
    layer_gelu_forward(out, x, n);
    layer_cuda_gelu_forward(c, d_out, d_x, n);
    float *g = host_of(c, d_out, n);
    check("gelu fwd", g, out, n, 1e-5);
    mx_free(g);
    layer_gelu_backward(dx, dout, x, n);
    layer_cuda_gelu_backward(c, d_dx, d_dout, d_x, n); /* overwrites */
    g = host_of(c, d_dx, n);
    check("gelu bwd (overwrites dx)", g, dx, n, 1e-5);
    mx_free(g);
    mx_cuda_dfree(c, d_x);
    mx_cuda_dfree(c, d_dout);
    mx_cuda_dfree(c, d_out);
    mx_cuda_dfree(c, d_dx);
    mx_free(x);
    mx_free(out);
    mx_free(dout);
    mx_free(dx);
}

static void test_ce(const struct mx_cuda *c, struct mx_rng *r, size_t N, int V)
{
    size_t n = N * (size_t)V;
    float *logits = mx_xmalloc(n * 4), *lse = mx_xmalloc(N * 4), *losses = mx_xmalloc(N * 4);
    int32_t *tgt = mx_xmalloc(N * sizeof(int32_t));
    fill(r, logits, n, 3);
    logits[0] = 40; /* one dominant logit: the max subtraction matters */
    for (size_t i = 0; i < N; i++)
        tgt[i] = (int32_t)mx_rng_below(r, (uint32_t)V);
    float *d_logits = dev_from(c, logits, n * 4);
    int32_t *d_tgt = (int32_t *)dev_from(c, tgt, N * sizeof(int32_t));
    float *d_lse = dev_poisoned(c, N), *d_losses = dev_poisoned(c, N), *d_mean = dev_poisoned(c, 1);

    char name[96];
    float mean = layer_ce_forward(lse, losses, logits, tgt, N, V);
    layer_cuda_ce_forward(c, d_lse, d_losses, d_mean, d_logits, d_tgt, N, V);
    float *g = host_of(c, d_lse, N);
    snprintf(name, sizeof name, "cross-entropy fwd lse V=%d", V);
    check(name, g, lse, N, 1e-5);
    mx_free(g);
    g = host_of(c, d_losses, N);
    check("cross-entropy fwd losses", g, losses, N, 1e-5);
    mx_free(g);
    g = host_of(c, d_mean, 1);
    check("cross-entropy fwd mean loss", g, &mean, 1, 1e-5);
    mx_free(g);

    /* No targets: lse only. */
    mx_cuda_fill_bytes(c, d_lse, 0xff, N * 4);
    layer_cuda_ce_forward(c, d_lse, NULL, NULL, d_logits, NULL, N, V);
    g = host_of(c, d_lse, N);
    check("cross-entropy fwd lse, no targets", g, lse, N, 1e-5);
    mx_free(g);

    float scale = 1.0f / (float)N;
    layer_ce_backward(logits, lse, tgt, N, V, scale);
    mx_cuda_upload(c, d_lse, lse, N * 4); /* the CPU's lse: compare backward alone */
    layer_cuda_ce_backward(c, d_logits, d_lse, d_tgt, N, V, scale);
    g = host_of(c, d_logits, n);
    snprintf(name, sizeof name, "cross-entropy bwd V=%d", V);
    check(name, g, logits, n, 1e-5);
    mx_free(g);
    mx_cuda_dfree(c, d_logits);
    mx_cuda_dfree(c, d_tgt);
    mx_cuda_dfree(c, d_lse);
    mx_cuda_dfree(c, d_losses);
    mx_cuda_dfree(c, d_mean);
    mx_free(logits);
    mx_free(lse);
    mx_free(losses);
    mx_free(tgt);
}

/* AdamW and the gradient norm against train.c on a hand-built parameter layout: a decayed
 * tensor, an undecayed one and a buffer (not trainable, must stay untouched). */
static void test_optim(const struct mx_cuda *c, struct mx_rng *r)
{
    struct mx_param tens[3] = {
        {.name = "w", .ndim = 1, .offset = 0, .numel = 70001, .decay = 1, .trainable = 1},
        {.name = "b", .ndim = 1, .offset = 70016, .numel = 333, .decay = 0, .trainable = 1},
        {.name = "buf", .ndim = 1, .offset = 70352, .numel = 64, .decay = 0, .trainable = 0},
    };
    size_t n = 70416;
    struct mx_model *m = mx_xcalloc(sizeof *m);
    m->n_tensors = 3;
    m->tensors = tens;
    m->n_params = n;
    m->params = mx_xmalloc(n * 4);
    m->grads = mx_xmalloc(n * 4);
    float *am = mx_xmalloc(n * 4), *av = mx_xmalloc(n * 4), *p0 = mx_xmalloc(n * 4);
    fill(r, m->params, n, 1);
    fill(r, m->grads, n, 0.3f);
    fill(r, am, n, 0.1f);
    for (size_t i = 0; i < n; i++) {
        float e = mx_rng_normal(r) * 0.05f;
        av[i] = e * e; /* second moments are non-negative */
    }
    memcpy(p0, m->params, n * 4);

    float *d_p = dev_from(c, m->params, n * 4), *d_g = dev_from(c, m->grads, n * 4);
    float *d_m = dev_from(c, am, n * 4), *d_v = dev_from(c, av, n * 4);

    /* Gradient norm (double, fixed order): double round-off only. */
    double *d_norm = mx_cuda_malloc(c, sizeof(double));
    void *d_work = mx_cuda_malloc(c, layer_cuda_grad_norm_work_bytes());
    double gn = grad_norm(m), ggn = 0, ggn2 = 0;
    layer_cuda_grad_norm(c, d_norm, d_work, d_g, n);
    mx_cuda_download(c, &ggn, d_norm, sizeof ggn);
    layer_cuda_grad_norm(c, d_norm, d_work, d_g, n);
    mx_cuda_download(c, &ggn2, d_norm, sizeof ggn2);
    int ok = fabs(ggn - gn) <= 1e-12 * gn && ggn == ggn2;
    printf("%-34s gpu %.15g cpu %.15g (tol 1e-12, run-to-run equal)%s\n", "grad norm", ggn, gn,
           ok ? "" : "  FAIL");
    check_failures += !ok;

    float *gref = mx_xmalloc(n * 4);
    layer_cuda_scale(c, d_g, n, 0.25f);
    for (size_t i = 0; i < n; i++)
        gref[i] = m->grads[i] * 0.25f;
    float *g = host_of(c, d_g, n);
    check("scale", g, gref, n, 0);
    mx_free(g);
    mx_cuda_upload(c, d_g, m->grads, n * 4);

    /* AdamW step t = 7, lr 0.1 so that the update is large against p's rounding, with the
     * clipping scale train.c folds in (norm above the clip: scale clip/(norm + 1e-6)). */
    double lr = 0.1, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1, clip = 0.5 * gn;
    float gs = (float)(clip / (gn + 1e-6));
    long t = 7;
    adamw_update(m, am, av, lr, b1, b2, eps, wd, gs, t);
    for (int k = 0; k < m->n_tensors; k++) {
        const struct mx_param *tp = &m->tensors[k];
        if (!tp->trainable)
            continue;
        layer_cuda_adamw(c, d_p + tp->offset, d_m + tp->offset, d_v + tp->offset, d_g + tp->offset, tp->numel,
                         lr, b1, b2, eps, tp->decay ? wd : 0.0, gs, t);
    }
    float *gp = host_of(c, d_p, n), *gm = host_of(c, d_m, n), *gv = host_of(c, d_v, n);
    check("adamw m", gm, am, n, 1e-5);
    check("adamw v", gv, av, n, 1e-5);
    for (size_t i = 0; i < n; i++) { /* compare the update, not p, so the test sees its error */
        gp[i] -= p0[i];
        gref[i] = m->params[i] - p0[i];
    }
    check("adamw delta p", gp, gref, n, 1e-5);
    check("adamw buffer untouched", gp + tens[2].offset, gref + tens[2].offset, tens[2].numel, 0);
    mx_free(gp);
    mx_free(gm);
    mx_free(gv);

    mx_cuda_dfree(c, d_p);
    mx_cuda_dfree(c, d_g);
    mx_cuda_dfree(c, d_m);
    mx_cuda_dfree(c, d_v);
    mx_cuda_dfree(c, d_norm);
    mx_cuda_dfree(c, d_work);
    mx_free(m->params);
    mx_free(m->grads);
    mx_free(m);
    mx_free(am);
    mx_free(av);
    mx_free(p0);
    mx_free(gref);
}

/* One context and one random stream for every case, seeded once: the full run draws the same
 * inputs in the same order whatever the cases. */
static struct mx_cuda ctx;
static struct mx_rng rng;

static int setup(void)
{
    if (mx_cuda_available() == 0)
        return check_skip("no CUDA device: skipping the CUDA layer parity tests");
    struct mx_error err;
    if (mx_cuda_init(&ctx, &err) != 0)
        return check_skip("no usable CUDA device: %s", err.msg);
    char desc[400];
    mx_cuda_describe(&ctx, desc, sizeof desc);
    printf("device: %s\n", desc);
    mx_rng_seed(&rng, 11);
    return 0;
}

static void teardown(void)
{
    mx_cuda_free(&ctx);
}

static int case_embed(void)
{
    test_embed(&ctx, &rng, 3, 17, 80, 11);
    test_embed(&ctx, &rng, 2, 64, 768, 300);
    return 0;
}

static int case_layernorm(void)
{
    test_layernorm(&ctx, &rng, 51, 80, 1);
    test_layernorm(&ctx, &rng, 300, 768, 0);
    return 0;
}

static int case_gelu(void)
{
    test_gelu(&ctx, &rng, 100003);
    return 0;
}

static int case_cross_entropy(void)
{
    test_ce(&ctx, &rng, 7, 67);
    test_ce(&ctx, &rng, 33, 5000);
    return 0;
}

static int case_adamw(void)
{
    test_optim(&ctx, &rng);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"embed", case_embed},
        {"layernorm", case_layernorm},
        {"gelu", case_gelu},
        {"cross_entropy", case_cross_entropy},
        {"adamw", case_adamw},
    };
    static const struct check_fixture fx = {setup, teardown};
    return check_main(argc, argv, cases, CHECK_N(cases), &fx);
}
