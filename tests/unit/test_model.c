/* test_model.c — the whole decoder at tiny sizes: model_backward against central differences
 * of model_forward's loss on samples of EVERY tensor (with and without bias, T = block and
 * T < block), model_step == model_forward row by row, bit-for-bit causality of the whole
 * model, determinism, shorter batches after a larger plan, per-layer mixer configs, and
 * model_create's error messages. Not the layers alone (test_layers.c) nor checkpoints. */
#include "check.h"
#include "mixer_check.h"
#include "model/model.h"
#include "nn/nn.h"

#include <math.h>
#include <string.h>

static void base_config(struct mx_config *c, int bias)
{
    memset(c, 0, sizeof *c);
    c->n_layer = 2;
    c->n_head = 2;
    c->n_embd = 16;
    c->block_size = 8;
    c->vocab_size = 11;
    c->bias = bias;
    c->seed = 1234;
    for (int l = 0; l < c->n_layer; l++)
        snprintf(c->attn[l], sizeof c->attn[l], "dense");
}

static int make_model(struct mx_model *m, const struct mx_config *c, int B, int T)
{
    struct mx_error err;
    if (model_create(m, c, &err) != 0 || model_plan(m, B, T, &err) != 0) {
        fprintf(stderr, "  model setup failed: %s\n", err.msg);
        return -1;
    }
    model_init_params(m);
    return 0;
}

/* Init values make attention nearly uniform (weights N(0,0.02)) and leave biases at zero,
 * which hides bugs; widen the matrices and give every gain and bias its own value so every
 * path carries signal. */
static void perturb_params(struct mx_model *m, uint64_t seed)
{
    struct mx_rng r;
    mx_rng_seed(&r, seed);
    for (int i = 0; i < m->n_tensors; i++) {
        const struct mx_param *t = &m->tensors[i];
        float *p = m->params + t->offset;
        if (!t->trainable)
            continue;
        for (size_t k = 0; k < t->numel; k++)
            p[k] = t->ndim >= 2 ? p[k] * 12.0f : p[k] + 0.2f * mx_rng_normal(&r);
    }
}

static void make_batch(int32_t *x, int32_t *y, int n, int V, uint64_t seed)
{
    struct mx_rng r;
    mx_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        x[i] = (int32_t)mx_rng_below(&r, (uint32_t)V);
        y[i] = (int32_t)mx_rng_below(&r, (uint32_t)V);
    }
}

/* Mean cross-entropy recomputed in double from the float logits (WHY: the float loss has an
 * ulp of ~2.4e-7 at ln(11); a central difference over 2e-3 would carry ~1e-4 of noise). */
static double loss_double(struct mx_model *m, const int32_t *x, const int32_t *y, int B, int T)
{
    model_forward(m, x, y, B, T, 0, 1);
    int V = m->cfg.vocab_size;
    double total = 0;
    for (size_t i = 0; i < (size_t)B * T; i++) {
        const float *l = m->a.logits + i * V;
        double mx = l[0], s = 0;
        for (int v = 1; v < V; v++)
            mx = fmax(mx, l[v]);
        for (int v = 0; v < V; v++)
            s += exp(l[v] - mx);
        total += mx + log(s) - l[y[i]];
    }
    return total / ((double)B * T);
}

/* Gradient check of every tensor: up to `per` random coordinates plus the coordinate with the
 * largest analytic gradient. Metric per tensor: max |numeric - analytic| / max |analytic|
 * over the whole tensor.
 * Tolerance 1e-2: the forward runs in fp32 through ~2L+2 LayerNorms, softmaxes and GEMMs;
 * the loss (double-summed) carries relative round-off ~1e-7·few, i.e. ~1e-6 absolute, which
 * over a step of 2e-3 is ~5e-4 absolute in the numeric derivative against gradients of
 * order 1e-2..1; truncation error (eps^2 f''') is ~1e-6. Observed worst ~1e-3; a wrong term
 * (missing residual path, transposed weight, wrong scale) gives errors of order 1. */
static int grad_check(struct mx_model *m, const int32_t *x, const int32_t *y, int B, int T, const char *label)
{
    memset(m->grads, 0, m->n_params * sizeof(float));
    model_forward(m, x, y, B, T, 0, 1);
    model_backward(m);
    float *g = mx_xmalloc(m->n_params * sizeof(float));
    memcpy(g, m->grads, m->n_params * sizeof(float));
    const float eps = 1e-3f;
    const double tol = 1e-2;
    const int per = 6;
    int fails = 0;
    double worst_all = 0;
    struct mx_rng r;
    mx_rng_seed(&r, 99);
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const struct mx_param *t = &m->tensors[ti];
        float *p = m->params + t->offset, *gt = g + t->offset;
        double gmax = 0;
        size_t imax = 0;
        for (size_t k = 0; k < t->numel; k++)
            if (fabs(gt[k]) > gmax) {
                gmax = fabs(gt[k]);
                imax = k;
            }
        if (!t->trainable) {
            if (gmax != 0) {
                fprintf(stderr, "  %s: buffer %s has a non-zero gradient\n", label, t->name);
                fails++;
            }
            continue;
        }
        if (gmax == 0) {
            fprintf(stderr, "  %s: tensor %s has an all-zero gradient\n", label, t->name);
            fails++;
            continue;
        }
        double worst = 0;
        for (int s = 0; s <= per; s++) {
            size_t k = s == per ? imax : mx_rng_below(&r, (uint32_t)t->numel);
            float keep = p[k], up = keep + eps, dn = keep - eps;
            p[k] = up;
            double lp = loss_double(m, x, y, B, T);
            p[k] = dn;
            double lm = loss_double(m, x, y, B, T);
            p[k] = keep;
            double num = (lp - lm) / ((double)up - (double)dn);
            double e = fabs(num - gt[k]) / gmax;
            worst = fmax(worst, e);
            if (e > tol && fails++ < 10)
                fprintf(stderr, "  %s: %s[%zu] analytic %.6g numeric %.6g (rel %.2e > %.0e)\n", label,
                        t->name, k, gt[k], num, e, tol);
        }
        worst_all = fmax(worst_all, worst);
    }
    fprintf(stderr, "  %-26s %d tensors, worst rel err %.2e (tol %.0e)\n", label, m->n_tensors, worst_all,
            tol);
    mx_free(g);
    return fails ? 1 : 0;
}

static int test_gradients(int bias, int T)
{
    struct mx_config c;
    base_config(&c, bias);
    struct mx_model m;
    const int B = 2;
    if (make_model(&m, &c, B, c.block_size) != 0)
        return 1;
    perturb_params(&m, 5 + bias);
    int32_t x[16], y[16];
    make_batch(x, y, B * T, c.vocab_size, 7 + T);
    char label[64];
    snprintf(label, sizeof label, "grad bias=%d T=%d", bias, T);
    int f = grad_check(&m, x, y, B, T, label);
    /* Rows of wpe at positions >= T get exactly zero gradient. */
    const struct mx_param *wpe = model_find_tensor(&m, "transformer.wpe.weight");
    for (size_t k = (size_t)T * c.n_embd; k < wpe->numel; k++)
        if (m.grads[wpe->offset + k] != 0.0f) {
            fprintf(stderr, "  wpe row %zu >= T=%d has a gradient\n", k / c.n_embd, T);
            f = 1;
            break;
        }
    /* The returned float loss equals the double recomputation. */
    double ld = loss_double(&m, x, y, B, T);
    float lf = model_forward(&m, x, y, B, T, 0, 1);
    if (fabs(ld - lf) > 1e-5 * fabs(ld)) {
        fprintf(stderr, "  model_forward loss %.8g differs from the recomputed %.8g\n", lf, ld);
        f = 1;
    }
    model_free(&m);
    return f;
}

/* The tensors carry nanoGPT's names and shapes, in one contiguous layout. */
static int test_layout(void)
{
    struct mx_config c;
    base_config(&c, 1);
    struct mx_model m;
    struct mx_error err;
    if (model_create(&m, &c, &err) != 0) {
        fprintf(stderr, "  %s\n", err.msg);
        return 1;
    }
    int f = 0;
    const struct {
        const char *name;
        int d0, d1;
    } want[] = {
        {"transformer.wte.weight", 11, 16},
        {"transformer.wpe.weight", 8, 16},
        {"transformer.h.0.ln_1.weight", 16, 0},
        {"transformer.h.0.ln_1.bias", 16, 0},
        {"transformer.h.0.attn.c_attn.weight", 48, 16},
        {"transformer.h.0.attn.c_attn.bias", 48, 0},
        {"transformer.h.1.attn.c_proj.weight", 16, 16},
        {"transformer.h.1.attn.c_proj.bias", 16, 0},
        {"transformer.h.1.ln_2.weight", 16, 0},
        {"transformer.h.1.mlp.c_fc.weight", 64, 16},
        {"transformer.h.1.mlp.c_fc.bias", 64, 0},
        {"transformer.h.1.mlp.c_proj.weight", 16, 64},
        {"transformer.h.1.mlp.c_proj.bias", 16, 0},
        {"transformer.ln_f.weight", 16, 0},
        {"transformer.ln_f.bias", 16, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct mx_param *t = model_find_tensor(&m, want[i].name);
        if (!t || t->shape[0] != want[i].d0 || (want[i].d1 && t->shape[1] != want[i].d1)) {
            fprintf(stderr, "  layout: tensor %s missing or misshapen\n", want[i].name);
            f = 1;
        }
    }
    size_t at = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        if (m.tensors[i].offset != at) {
            fprintf(stderr, "  layout: %s at %zu, expected %zu (gap or overlap)\n", m.tensors[i].name,
                    m.tensors[i].offset, at);
            f = 1;
        }
        at += m.tensors[i].numel;
    }
    if (at != m.n_params) {
        fprintf(stderr, "  layout: tensors cover %zu of %zu params\n", at, m.n_params);
        f = 1;
    }
    /* 12 per layer with bias (ln1 w/b, attn 4, ln2 w/b, fc w/b, proj w/b) + wte, wpe, lnf w/b. */
    if (m.n_tensors != 2 + 12 * c.n_layer + 2) {
        fprintf(stderr, "  layout: %d tensors\n", m.n_tensors);
        f = 1;
    }
    model_free(&m);
    /* Without bias: no bias tensors. */
    base_config(&c, 0);
    if (model_create(&m, &c, &err) != 0)
        return 1;
    for (int i = 0; i < m.n_tensors; i++)
        if (strstr(m.tensors[i].name, "bias")) {
            fprintf(stderr, "  layout without bias has %s\n", m.tensors[i].name);
            f = 1;
        }
    model_free(&m);
    return f;
}

/* model_step from pos 0 reproduces each row of model_forward's logits. */
static int test_step(int bias)
{
    struct mx_config c;
    base_config(&c, bias);
    struct mx_model m;
    const int B = 2, T = c.block_size, V = c.vocab_size;
    if (make_model(&m, &c, B, T) != 0)
        return 1;
    perturb_params(&m, 11);
    int32_t x[16], y[16];
    make_batch(x, y, B * T, V, 13);
    model_forward(&m, x, NULL, B, T, 0, 0);
    if (!model_can_step(&m)) {
        fprintf(stderr, "  dense model cannot step\n");
        model_free(&m);
        return 1;
    }
    size_t ns = model_state_floats(&m);
    float *state = mx_xmalloc(ns * sizeof(float));
    float *work = mx_xmalloc(model_step_work_floats(&m) * sizeof(float));
    float *lg = mx_xmalloc((size_t)V * sizeof(float));
    double worst = 0;
    for (int b = 0; b < B; b++) {
        memset(state, 0, ns * sizeof(float));
        for (int t = 0; t < T; t++) {
            model_step(&m, lg, state, work, x[b * T + t], t);
            worst = fmax(worst, mc_rel_err(lg, m.a.logits + ((size_t)b * T + t) * V, V, 1e-3));
        }
    }
    fprintf(stderr, "  step bias=%d: worst rel err vs forward %.2e\n", bias, worst);
    mx_free(state);
    mx_free(work);
    mx_free(lg);
    model_free(&m);
    return worst > 1e-5 ? 1 : 0;
}

/* Changing tokens after t leaves logits at <= t bit-for-bit unchanged. */
static int test_causality(void)
{
    struct mx_config c;
    base_config(&c, 1);
    struct mx_model m;
    const int B = 2, T = c.block_size, V = c.vocab_size;
    if (make_model(&m, &c, B, T) != 0)
        return 1;
    perturb_params(&m, 17);
    int32_t x[16], y[16], x2[16];
    make_batch(x, y, B * T, V, 19);
    size_t n = (size_t)B * T * V;
    float *ref = mx_xmalloc(n * sizeof(float));
    model_forward(&m, x, y, B, T, 0, 0);
    memcpy(ref, m.a.logits, n * sizeof(float));
    int f = 0;
    for (int t0 = 0; t0 < T - 1; t0++) {
        memcpy(x2, x, sizeof x);
        for (int b = 0; b < B; b++)
            for (int t = t0 + 1; t < T; t++)
                x2[b * T + t] = (x[b * T + t] + 1 + t) % V;
        model_forward(&m, x2, y, B, T, 0, 0);
        for (int b = 0; b < B; b++) {
            size_t off = (size_t)b * T * V, len = (size_t)(t0 + 1) * V;
            if (memcmp(ref + off, m.a.logits + off, len * sizeof(float)) != 0) {
                fprintf(stderr, "  causality: changing tokens after t=%d changed logits at <= t (b=%d)\n", t0,
                        b);
                f = 1;
            }
            /* ...and the change is visible afterwards (the test can fail). */
            if (memcmp(ref + off + len, m.a.logits + off + len, (size_t)(T - t0 - 1) * V * sizeof(float)) ==
                0) {
                fprintf(stderr, "  causality: changing tokens after t=%d changed nothing after t\n", t0);
                f = 1;
            }
        }
    }
    mx_free(ref);
    model_free(&m);
    return f;
}

/* Two forward+backward passes: bit-identical loss, logits and gradients. Also: a smaller
 * batch after a larger plan equals the matching rows of the larger one. */
static int test_determinism(void)
{
    struct mx_config c;
    base_config(&c, 1);
    struct mx_model m;
    const int B = 2, T = c.block_size, V = c.vocab_size;
    if (make_model(&m, &c, B, T) != 0)
        return 1;
    perturb_params(&m, 23);
    int32_t x[16], y[16];
    make_batch(x, y, B * T, V, 29);
    size_t nl = (size_t)B * T * V;
    float *lg1 = mx_xmalloc(nl * 4), *g1 = mx_xmalloc(m.n_params * 4);
    int f = 0;
    float l1 = 0, l2 = 0;
    for (int rep = 0; rep < 2; rep++) {
        memset(m.grads, 0, m.n_params * 4);
        float l = model_forward(&m, x, y, B, T, 0, 1);
        if (rep == 0) {
            l1 = l;
            memcpy(lg1, m.a.logits, nl * 4);
        } else {
            l2 = l;
            f |= memcmp(lg1, m.a.logits, nl * 4) != 0;
        }
        model_backward(&m);
        if (rep == 0)
            memcpy(g1, m.grads, m.n_params * 4);
        else
            f |= memcmp(g1, m.grads, m.n_params * 4) != 0;
    }
    f |= memcmp(&l1, &l2, sizeof l1) != 0;
    if (f)
        fprintf(stderr, "  determinism: two identical steps differ\n");
    /* Backward accumulates: a second backward of the same forward doubles the gradients. */
    model_forward(&m, x, y, B, T, 0, 1);
    memset(m.grads, 0, m.n_params * 4);
    model_backward(&m);
    model_forward(&m, x, y, B, T, 0, 1);
    model_backward(&m);
    /* Not bit-exact (a sum of many terms rounds differently from a non-zero start): error
     * relative to the largest gradient; an overwrite would be off by 50%. */
    double worst = 0, gmax = 0;
    for (size_t i = 0; i < m.n_params; i++)
        gmax = fmax(gmax, fabs(g1[i]));
    for (size_t i = 0; i < m.n_params; i++)
        worst = fmax(worst, fabs(m.grads[i] - 2.0 * g1[i]) / gmax);
    if (worst > 1e-5) {
        fprintf(stderr, "  model_backward does not accumulate (worst rel %.2e)\n", worst);
        f = 1;
    }
    /* Smaller (B, T) after the (2, 8) plan: batch row 1's first 5 positions alone. */
    model_forward(&m, x, y, B, T, 0, 0);
    memcpy(lg1, m.a.logits, nl * 4);
    int Ts = 5;
    int32_t xs[5], ys[5];
    memcpy(xs, x + T, sizeof xs);
    memcpy(ys, y + T, sizeof ys);
    float ls = model_forward(&m, xs, ys, 1, Ts, 0, 1);
    double e = mc_rel_err(m.a.logits, lg1 + (size_t)T * V, (size_t)Ts * V, 1e-3);
    if (e > 1e-5 || !isfinite(ls)) {
        fprintf(stderr, "  forward (1,%d) after a (2,%d) plan differs from the full rows: rel %.2e\n", Ts, T,
                e);
        f = 1;
    }
    /* And its backward runs and gives finite gradients (rebinding keeps mixers' scratch valid). */
    memset(m.grads, 0, m.n_params * 4);
    model_backward(&m);
    for (size_t i = 0; i < m.n_params; i++)
        if (!isfinite(m.grads[i])) {
            fprintf(stderr, "  backward after a smaller forward gives non-finite gradients\n");
            f = 1;
            break;
        }
    mx_free(lg1);
    mx_free(g1);
    model_free(&m);
    return f;
}

/* Per-layer mixer specs: dense in both layers spelled two ways; then every other registered
 * causal mixer (its first test spec) in layer 1 beside dense in layer 0 runs forward and
 * backward with finite results. */
static int test_mixed(void)
{
    struct mx_config c;
    base_config(&c, 1);
    snprintf(c.attn[0], sizeof c.attn[0], "dense");
    snprintf(c.attn[1], sizeof c.attn[1], "dense:");
    struct mx_model m;
    const int B = 2, T = c.block_size;
    if (make_model(&m, &c, B, T) != 0)
        return 1;
    int f = 0;
    if (strcmp(m.cfg.attn[1], "dense") != 0) {
        fprintf(stderr, "  spec 'dense:' is not canonicalised to 'dense' (got '%s')\n", m.cfg.attn[1]);
        f = 1;
    }
    int32_t x[16], y[16];
    make_batch(x, y, B * T, c.vocab_size, 31);
    perturb_params(&m, 37);
    f |= grad_check(&m, x, y, B, T, "grad dense+dense:");
    model_free(&m);
    for (int i = 0; i < mixer_count(); i++) {
        const struct mixer_ops *ops = mixer_at(i);
        if (!ops->causal || !ops->test_specs || !ops->test_specs[0] || !strcmp(ops->name, "dense"))
            continue;
        base_config(&c, 1);
        snprintf(c.attn[1], sizeof c.attn[1], "%s", ops->test_specs[0]);
        if (make_model(&m, &c, B, T) != 0) {
            f = 1;
            continue;
        }
        float l = model_forward(&m, x, y, B, T, 0, 1);
        model_backward(&m);
        int bad = !isfinite(l);
        for (size_t k = 0; k < m.n_params; k++)
            bad |= !isfinite(m.grads[k]);
        fprintf(stderr, "  %s dense + %s: loss %.4f\n", bad ? "FAIL" : "ok", c.attn[1], l);
        f |= bad;
        model_free(&m);
    }
    return f;
}

static int expect_error(const struct mx_config *c, const char *const *needles, const char *what)
{
    struct mx_model m;
    struct mx_error err = {{0}};
    if (model_create(&m, c, &err) == 0) {
        fprintf(stderr, "  model_create accepted %s\n", what);
        model_free(&m);
        return 1;
    }
    for (const char *const *n = needles; *n; n++)
        if (!strstr(err.msg, *n)) {
            fprintf(stderr, "  model_create(%s): message lacks '%s': %s\n", what, *n, err.msg);
            return 1;
        }
    fprintf(stderr, "  %-22s -> %s\n", what, err.msg);
    return 0;
}

static int test_errors(void)
{
    struct mx_config c;
    int f = 0;
    base_config(&c, 1);
    snprintf(c.attn[1], sizeof c.attn[1], "nosuchmixer:w=3");
    f |= expect_error(&c, (const char *const[]){"nosuchmixer", "layer 1", "dense", NULL}, "unknown mixer");
    base_config(&c, 1);
    snprintf(c.attn[0], sizeof c.attn[0], "dense:w=3");
    f |= expect_error(&c, (const char *const[]){"w", NULL}, "dense with a key");
    base_config(&c, 1);
    c.n_embd = 10;
    c.n_head = 3;
    f |= expect_error(&c, (const char *const[]){"10", "3", NULL}, "dim 10, heads 3");
    base_config(&c, 1);
    c.n_layer = 0;
    f |= expect_error(&c, (const char *const[]){"layers 0", NULL}, "layers 0");
    base_config(&c, 1);
    c.n_layer = MX_MAX_LAYERS + 1;
    f |= expect_error(&c, (const char *const[]){"65", "64", NULL}, "layers 65");
    base_config(&c, 1);
    c.vocab_size = 1;
    f |= expect_error(&c, (const char *const[]){"1", "vocab", NULL}, "vocab 1");
    base_config(&c, 1);
    c.block_size = 0;
    f |= expect_error(&c, (const char *const[]){"context 0", NULL}, "block 0");
    base_config(&c, 1);
    c.attn[0][0] = 0;
    f |= expect_error(&c, (const char *const[]){"empty", NULL}, "empty spec");
    /* model_plan: T beyond the context, B < 1. */
    struct mx_model m;
    struct mx_error err = {{0}};
    base_config(&c, 1);
    if (model_create(&m, &c, &err) != 0)
        return 1;
    if (model_plan(&m, 2, 9, &err) == 0 || !strstr(err.msg, "9") || !strstr(err.msg, "8")) {
        fprintf(stderr, "  model_plan(T=9 > 8) not refused clearly: %s\n", err.msg);
        f = 1;
    } else
        fprintf(stderr, "  %-22s -> %s\n", "plan T 9 > block 8", err.msg);
    if (model_plan(&m, 0, 4, &err) == 0 || !strstr(err.msg, "0")) {
        fprintf(stderr, "  model_plan(B=0) not refused clearly: %s\n", err.msg);
        f = 1;
    }
    model_free(&m);
    return f;
}

static int case_layout(void)
{
    return test_layout();
}

static int case_gradients_bias(void)
{
    return test_gradients(1, 8);
}

static int case_gradients_no_bias(void)
{
    return test_gradients(0, 8);
}

static int case_gradients_short_T(void)
{
    return test_gradients(1, 5);
}

static int case_step_bias(void)
{
    return test_step(1);
}

static int case_step_no_bias(void)
{
    return test_step(0);
}

/* The trainer's fused loss (m.ce_fused: loss and d loss/d logits in the forward's one softmax
 * pass) against the forward-then-backward path: the same loss bits (the same max and sum), the
 * same gradients up to rounding (the fused one is e/sum·scale, the other exp(l - lse)·scale),
 * with some targets ignored too; eval (training 0) keeps its logits. */
static int test_ce_fused_model(void)
{
    struct mx_config c;
    base_config(&c, 1);
    struct mx_model m;
    const int B = 2, T = c.block_size, V = c.vocab_size;
    if (make_model(&m, &c, B, T) != 0)
        return 1;
    perturb_params(&m, 31);
    int32_t x[16], y[16];
    make_batch(x, y, B * T, V, 37);
    float *g0 = mx_xmalloc(m.n_params * 4);
    size_t nl = (size_t)B * T * V;
    float *lg = mx_xmalloc(nl * 4);
    int f = 0;
    for (int ign = 0; ign < 2; ign++) {
        if (ign)
            y[3] = y[9] = y[15] = NN_CE_IGNORE;
        float l[2];
        double worst = 0, gmax = 0;
        for (int fused = 0; fused < 2; fused++) {
            m.ce_fused = fused;
            memset(m.grads, 0, m.n_params * 4);
            l[fused] = model_forward(&m, x, y, B, T, 0, 1);
            model_backward(&m);
            if (!fused) {
                memcpy(g0, m.grads, m.n_params * 4);
                continue;
            }
            for (size_t i = 0; i < m.n_params; i++) {
                gmax = fmax(gmax, fabs(g0[i]));
                worst = fmax(worst, fabs((double)m.grads[i] - g0[i]));
            }
        }
        if (memcmp(&l[0], &l[1], sizeof l[0]) != 0 || !(worst <= 1e-5 * gmax) || gmax == 0) {
            fprintf(stderr, "  ce_fused (ignored targets: %d): loss %.9g vs %.9g, gradients differ by %.3g of %.3g\n",
                    ign, l[1], l[0], worst, gmax);
            f = 1;
        }
    }
    /* Eval (training 0) leaves the logits, even with ce_fused set. */
    m.ce_fused = 0;
    model_forward(&m, x, y, B, T, 0, 0);
    memcpy(lg, m.a.logits, nl * 4);
    m.ce_fused = 1;
    model_forward(&m, x, y, B, T, 0, 0);
    if (memcmp(lg, m.a.logits, nl * 4) != 0) {
        fprintf(stderr, "  ce_fused: an eval forward overwrote the logits\n");
        f = 1;
    }
    mx_free(g0);
    mx_free(lg);
    model_free(&m);
    return f;
}

static int case_ce_fused(void)
{
    return test_ce_fused_model();
}

static int case_causality(void)
{
    return test_causality();
}

static int case_determinism(void)
{
    return test_determinism();
}

static int case_per_layer_mixers(void)
{
    return test_mixed();
}

static int case_errors(void)
{
    return test_errors();
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"layout", case_layout},
        {"gradients_bias", case_gradients_bias},
        {"gradients_no_bias", case_gradients_no_bias},
        {"gradients_short_T", case_gradients_short_T},
        {"step_bias", case_step_bias},
        {"step_no_bias", case_step_no_bias},
        {"causality", case_causality},
        {"determinism", case_determinism},
        {"per_layer_mixers", case_per_layer_mixers},
        {"errors", case_errors},
        {"ce_fused", case_ce_fused},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
