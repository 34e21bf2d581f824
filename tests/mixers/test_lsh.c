/* test_lsh.c — the `lsh` mixer (Reformer attention, causal variant) beyond the generic suite:
 * one bucket with a chunk covering T equals dense shared-QK attention (forward and gradients,
 * against the masked reference); the optimised kernel equals the naive reference with hashing;
 * finite-difference gradients with the hash frozen; the generic checks on hashing specs;
 * backward uses forward's buckets; rotation determinism and redraws; bad specs; LSH statistics.
 * Not a benchmark. */
#include "check.h"
#include "attention/attn_common.h"
#include "nn/nn.h"
#include "mixer_check.h"

#include <math.h>
#include <string.h>

/* Test-only entry points of attention/lsh.c (it has no header on purpose). */
size_t attn_lsh_rotation_floats(const struct mixer *m);
void attn_lsh_rotations(const struct mixer *m, float *R);
void attn_lsh_hash(int32_t *bucket, const float *x, const float *R, int n, int D, int nb);
void attn_lsh_ref_core(const struct mixer *m, float *o, const float *q, const float *k, const float *v,
                       const float *R, int B, int T);
void attn_lsh_freeze_hash(struct mixer *m, int B);

/* ---- the reference pipeline: c_attn (2C,C) -> q, k = q/|q|, v -> core -> c_proj ---------- */

struct ref_bufs {
    float *qv, *q, *k, *v, *o, *lse, *merged; /* (B,T,2C) (B,H,T,D)x4 (B,H,T) (B,T,C) */
};

static void ref_alloc(struct ref_bufs *r, int B, int T, int C, int H)
{
    size_t BTC = (size_t)B * T * C;
    r->qv = mx_xcalloc(2 * BTC * sizeof(float));
    r->q = mx_xcalloc(BTC * sizeof(float));
    r->k = mx_xcalloc(BTC * sizeof(float));
    r->v = mx_xcalloc(BTC * sizeof(float));
    r->o = mx_xcalloc(BTC * sizeof(float));
    r->lse = mx_xcalloc((size_t)B * H * T * sizeof(float));
    r->merged = mx_xcalloc(BTC * sizeof(float));
}

static void ref_free(struct ref_bufs *r)
{
    mx_free(r->qv);
    mx_free(r->q);
    mx_free(r->k);
    mx_free(r->v);
    mx_free(r->o);
    mx_free(r->lse);
    mx_free(r->merged);
}

/* Parameter views, same layout as lsh.c with bias on (mc_create sets bias = 1). */
static void ref_params(const struct mixer *m, const float *p, const float **wa, const float **ba,
                       const float **wp, const float **bp)
{
    size_t C = (size_t)m->C;
    *wa = p;
    *ba = p + 2 * C * C;
    *wp = *ba + 2 * C;
    *bp = *wp + C * C;
}

/* q, k, v (B,H,T,D) from x (B,T,C). */
static void ref_qkv(const struct mixer *m, struct ref_bufs *r, const float *x, const float *params, int B,
                    int T)
{
    const float *wa, *ba, *wp, *bp;
    ref_params(m, params, &wa, &ba, &wp, &bp);
    int C = m->C, H = m->H, D = m->D;
    mx_linear_forward(r->qv, x, wa, ba, B * T, C, 2 * C);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                const float *row = r->qv + ((size_t)b * T + t) * 2 * C;
                size_t dst = (((size_t)b * H + h) * T + t) * D;
                double n2 = 0;
                for (int d = 0; d < D; d++) {
                    r->q[dst + d] = row[h * D + d];
                    r->v[dst + d] = row[C + h * D + d];
                    n2 += (double)r->q[dst + d] * r->q[dst + d];
                }
                for (int d = 0; d < D; d++)
                    r->k[dst + d] = (float)(r->q[dst + d] / sqrt(n2 + 1e-12));
            }
}

/* y (B,T,C) from o (B,H,T,D). */
static void ref_out(const struct mixer *m, struct ref_bufs *r, float *y, const float *params, int B, int T)
{
    const float *wa, *ba, *wp, *bp;
    ref_params(m, params, &wa, &ba, &wp, &bp);
    attn_merge_heads(r->merged, r->o, B, T, m->H, m->D);
    mx_linear_forward(y, r->merged, wp, bp, B * T, m->C, m->C);
}

/* One bucket, chunk >= T: query i sees every j < i; row 0 sees only itself (the self rule). */
static int shared_qk_mask(const void *ctx, int h, int i, int j)
{
    (void)ctx;
    (void)h;
    return j < i || i == 0;
}

/* Full reference forward and backward of dense shared-QK attention with the self rule:
 * y (B,T,C); dx (B,T,C), dp (params) overwritten, for L = sum y*g. */
static void ref_dense_shared_qk(const struct mixer *m, float *y, float *dx, float *dp, const float *x,
                                const float *g, const float *params, int B, int T)
{
    int C = m->C, H = m->H, D = m->D;
    size_t BTC = (size_t)B * T * C, Cs = (size_t)C;
    struct ref_bufs r;
    ref_alloc(&r, B, T, C, H);
    ref_qkv(m, &r, x, params, B, T);
    attn_masked_ref_forward(r.o, r.lse, r.q, r.k, r.v, B, H, T, D, shared_qk_mask, NULL);
    ref_out(m, &r, y, params, B, T);

    const float *wa, *ba, *wp, *bp;
    ref_params(m, params, &wa, &ba, &wp, &bp);
    float *dwa = dp, *dba = dp + 2 * Cs * Cs, *dwp = dba + 2 * Cs, *dbp = dwp + Cs * Cs;
    memset(dp, 0, (3 * Cs * Cs + 3 * Cs) * sizeof(float));
    memset(dx, 0, BTC * sizeof(float));
    float *dmerged = mx_xcalloc(BTC * sizeof(float)), *dout = mx_xcalloc(BTC * sizeof(float));
    float *dq = mx_xcalloc(BTC * sizeof(float)), *dk = mx_xcalloc(BTC * sizeof(float));
    float *dv = mx_xcalloc(BTC * sizeof(float)), *dqv = mx_xcalloc(2 * BTC * sizeof(float));
    mx_linear_backward(dmerged, dwp, dbp, g, r.merged, wp, B * T, C, C);
    attn_split_out(dout, dmerged, B, T, H, D);
    attn_masked_ref_backward(dq, dk, dv, dout, r.o, r.lse, r.q, r.k, r.v, B, H, T, D, shared_qk_mask, NULL);
    for (size_t i = 0; i < BTC / D; i++) { /* through k = q / |q| */
        const float *q = r.q + i * D, *k = r.k + i * D, *dki = dk + i * D;
        double n2 = 1e-12, kd = 0;
        for (int d = 0; d < D; d++) {
            n2 += (double)q[d] * q[d];
            kd += (double)k[d] * dki[d];
        }
        for (int d = 0; d < D; d++)
            dq[i * D + d] += (float)((dki[d] - k[d] * kd) / sqrt(n2));
    }
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                size_t src = (((size_t)b * H + h) * T + t) * D;
                float *row = dqv + ((size_t)b * T + t) * 2 * C;
                memcpy(row + h * D, dq + src, D * sizeof(float));
                memcpy(row + C + h * D, dv + src, D * sizeof(float));
            }
    mx_linear_backward(dx, dwa, dba, dqv, x, wa, B * T, C, 2 * C);
    mx_free(dmerged);
    mx_free(dout);
    mx_free(dq);
    mx_free(dk);
    mx_free(dv);
    mx_free(dqv);
    ref_free(&r);
}

/* Forward and gradients of the mixer for L = sum y*g. */
static void mixer_grads(struct mc_mixer *t, float *y, float *dx, float *dp, const float *x, const float *g)
{
    size_t n = (size_t)t->B * t->T * t->m.C;
    float *saved = mc_forward(t, y, x, t->T);
    memset(dx, 0, n * sizeof(float));
    memset(dp, 0, t->n_params * sizeof(float));
    t->m.ops->backward(&t->m, dx, dp, g, saved, x, t->params, t->B, t->T);
    mx_free(saved);
}

static void test_dense_equivalence(const char *spec, int C, int H, int B, int T)
{
    struct mc_mixer t;
    if (mc_create(&t, spec, C, H, T, B, T, 7, 3.0f) != 0) {
        CHECK(0, "create %s", spec);
        return;
    }
    size_t n = (size_t)B * T * C;
    float *x = mx_xmalloc(n * sizeof(float)), *g = mx_xmalloc(n * sizeof(float));
    float *y = mx_xmalloc(n * sizeof(float)), *yr = mx_xmalloc(n * sizeof(float));
    float *dx = mx_xmalloc(n * sizeof(float)), *dxr = mx_xmalloc(n * sizeof(float));
    float *dp = mx_xmalloc(t.n_params * sizeof(float)), *dpr = mx_xmalloc(t.n_params * sizeof(float));
    mc_fill_normal(x, n, 11, 1.0f);
    mc_fill_normal(g, n, 12, 1.0f);
    mixer_grads(&t, y, dx, dp, x, g);
    ref_dense_shared_qk(&t.m, yr, dxr, dpr, x, g, t.params, B, T);
    double ey = mc_rel_err(y, yr, n, 1e-6), ex = mc_rel_err(dx, dxr, n, 1e-6);
    double ep = mc_rel_err(dp, dpr, t.n_params, 1e-6);
    fprintf(stderr, "  %-22s == dense shared-QK (T=%d): rel err y %.2e dx %.2e dparams %.2e\n", spec, T, ey,
            ex, ep);
    CHECK(ey < 1e-4 && ex < 1e-4 && ep < 1e-4, "%s differs from dense shared-QK attention", spec);
    mx_free(x);
    mx_free(g);
    mx_free(y);
    mx_free(yr);
    mx_free(dx);
    mx_free(dxr);
    mx_free(dp);
    mx_free(dpr);
    mc_free(&t);
}

/* The optimised mixer against the naive reference core (same projection, same rotations). */
static void test_against_ref(const char *spec, int C, int H, int B, int T, int training, long step)
{
    struct mc_mixer t;
    if (mc_create(&t, spec, C, H, T, B, T, 9, 3.0f) != 0) {
        CHECK(0, "create %s", spec);
        return;
    }
    t.m.training = training;
    t.m.step = step;
    size_t n = (size_t)B * T * C;
    float *x = mx_xmalloc(n * sizeof(float)), *y = mx_xmalloc(n * sizeof(float));
    float *yr = mx_xmalloc(n * sizeof(float));
    float *R = mx_xcalloc((attn_lsh_rotation_floats(&t.m) + 1) * sizeof(float));
    mc_fill_normal(x, n, 13, 1.0f);
    mx_free(mc_forward(&t, y, x, T));
    struct ref_bufs r;
    ref_alloc(&r, B, T, C, H);
    ref_qkv(&t.m, &r, x, t.params, B, T);
    attn_lsh_rotations(&t.m, R);
    attn_lsh_ref_core(&t.m, r.o, r.q, r.k, r.v, R, B, T);
    ref_out(&t.m, &r, yr, t.params, B, T);
    double e = mc_rel_err(y, yr, n, 1e-6);
    fprintf(stderr, "  %-22s == naive reference (T=%d, %s): rel err %.2e\n", spec, T,
            training ? "training draw" : "eval draw", e);
    CHECK(e < 1e-4, "%s differs from the naive reference (rel %.2e)", spec, e);
    ref_free(&r);
    mx_free(R);
    mx_free(x);
    mx_free(y);
    mx_free(yr);
    mc_free(&t);
}

/* The generic suite on hashing specs, with finite differences taken with the hash frozen (a
 * perturbation of 1e-2 in a shared weight moves many queries across a hash boundary). */
static void test_generic_hashing(const char *spec, int C, int H, int B, int T)
{
    struct mc_mixer t;
    if (mc_create(&t, spec, C, H, T, B, T, 42, 3.0f) != 0) {
        CHECK(0, "create %s", spec);
        return;
    }
    CHECK(mc_check_causality(&t, 0) == 0, "%s causality", spec);
    CHECK(mc_check_prefix(&t, 1e-5) == 0, "%s prefix", spec);
    CHECK(mc_check_step(&t, 1e-4) == 0, "%s step == forward", spec);
    CHECK(mc_check_accumulate(&t, 1e-6) == 0, "%s accumulate", spec);
    CHECK(mc_check_determinism(&t) == 0, "%s determinism", spec);
    t.m.training = 1; /* causality must hold for a training draw too */
    t.m.step = 12345;
    CHECK(mc_check_causality(&t, 0) == 0, "%s causality (training draw)", spec);
    t.m.training = 0;
    attn_lsh_freeze_hash(&t.m, B);
    CHECK(mc_check_gradients(&t, 2e-2) == 0, "%s gradients with the hash frozen", spec);
    attn_lsh_freeze_hash(&t.m, 0);
    mc_free(&t);
}

/* Backward must use forward's buckets: changing the draw between forward and backward (a new
 * step) must not change the gradients. */
static void test_backward_uses_saved_buckets(void)
{
    const char *spec = "lsh:h=2,nb=4,c=3";
    int C = 16, H = 2, B = 2, T = 24;
    struct mc_mixer t;
    if (mc_create(&t, spec, C, H, T, B, T, 5, 3.0f) != 0) {
        CHECK(0, "create");
        return;
    }
    size_t n = (size_t)B * T * C;
    float *x = mx_xmalloc(n * sizeof(float)), *g = mx_xmalloc(n * sizeof(float));
    float *y = mx_xmalloc(n * sizeof(float));
    float *dx1 = mx_xcalloc(n * sizeof(float)), *dx2 = mx_xcalloc(n * sizeof(float));
    float *dp1 = mx_xcalloc(t.n_params * sizeof(float)), *dp2 = mx_xcalloc(t.n_params * sizeof(float));
    mc_fill_normal(x, n, 21, 1.0f);
    mc_fill_normal(g, n, 22, 1.0f);
    t.m.training = 1;
    t.m.step = 3;
    float *saved = mc_forward(&t, y, x, T);
    t.m.ops->backward(&t.m, dx1, dp1, g, saved, x, t.params, B, T);
    t.m.step = 4;
    t.m.ops->backward(&t.m, dx2, dp2, g, saved, x, t.params, B, T);
    CHECK(memcmp(dx1, dx2, n * sizeof(float)) == 0 && memcmp(dp1, dp2, t.n_params * sizeof(float)) == 0,
          "backward re-hashed instead of using the saved sort");
    mx_free(saved);
    mx_free(x);
    mx_free(g);
    mx_free(y);
    mx_free(dx1);
    mx_free(dx2);
    mx_free(dp1);
    mx_free(dp2);
    mc_free(&t);
}

/* Rotations: same seed and step -> same draw and same output; another training step or seed
 * -> another draw; eval ignores the step. */
static void test_rotations(void)
{
    const char *spec = "lsh:h=2,nb=8,c=4";
    int C = 16, H = 2, B = 1, T = 24;
    struct mc_mixer a, b, c;
    if (mc_create(&a, spec, C, H, T, B, T, 77, 3.0f) || mc_create(&b, spec, C, H, T, B, T, 77, 3.0f) ||
        mc_create(&c, spec, C, H, T, B, T, 78, 3.0f)) {
        CHECK(0, "create");
        return;
    }
    memcpy(c.params, a.params, a.n_params * sizeof(float));
    size_t nr = attn_lsh_rotation_floats(&a.m), n = (size_t)B * T * C;
    CHECK(nr == (size_t)2 * H * (C / H) * 4, "rotation count %zu", nr);
    float *Ra = mx_xmalloc(nr * sizeof(float)), *Rb = mx_xmalloc(nr * sizeof(float));
    float *ya = mx_xmalloc(n * sizeof(float)), *yb = mx_xmalloc(n * sizeof(float));
    float *x = mx_xmalloc(n * sizeof(float));
    mc_fill_normal(x, n, 31, 1.0f);

    attn_lsh_rotations(&a.m, Ra);
    attn_lsh_rotations(&b.m, Rb);
    CHECK(memcmp(Ra, Rb, nr * sizeof(float)) == 0, "same seed, eval: rotations differ");
    mx_free(mc_forward(&a, ya, x, T));
    mx_free(mc_forward(&b, yb, x, T));
    CHECK(memcmp(ya, yb, n * sizeof(float)) == 0, "same seed, eval: outputs differ");
    b.m.step = 999; /* eval ignores the step: the fixed draw */
    attn_lsh_rotations(&b.m, Rb);
    CHECK(memcmp(Ra, Rb, nr * sizeof(float)) == 0, "eval draw depends on the step");
    attn_lsh_rotations(&c.m, Rb);
    CHECK(memcmp(Ra, Rb, nr * sizeof(float)) != 0, "another seed gives the same rotations");

    a.m.training = b.m.training = 1;
    a.m.step = b.m.step = 10;
    attn_lsh_rotations(&a.m, Ra);
    attn_lsh_rotations(&b.m, Rb);
    CHECK(memcmp(Ra, Rb, nr * sizeof(float)) == 0, "same training step: rotations differ");
    mx_free(mc_forward(&a, ya, x, T));
    mx_free(mc_forward(&b, yb, x, T));
    CHECK(memcmp(ya, yb, n * sizeof(float)) == 0, "same training step: outputs differ");
    b.m.step = 11;
    attn_lsh_rotations(&b.m, Rb);
    CHECK(memcmp(Ra, Rb, nr * sizeof(float)) != 0, "training steps 10 and 11 drew the same rotations");
    mx_free(mc_forward(&b, yb, x, T));
    CHECK(memcmp(ya, yb, n * sizeof(float)) != 0, "training steps 10 and 11 gave the same output");
    b.m.training = 0;
    attn_lsh_rotations(&b.m, Rb);
    CHECK(memcmp(Ra, Rb, nr * sizeof(float)) != 0, "eval draw equals the training draw of step 10");
    mx_free(Ra);
    mx_free(Rb);
    mx_free(ya);
    mx_free(yb);
    mx_free(x);
    mc_free(&a);
    mc_free(&b);
    mc_free(&c);
}

static void expect_spec_error(const char *spec, const char *needle)
{
    struct mixer m;
    struct mixer_dims d = {.C = 16, .H = 2, .T_max = 32, .bias = 1, .layer = 0, .n_layer = 1, .seed = 1};
    struct mx_error err = {{0}};
    int rc = mixer_create(&m, spec, &d, &err);
    CHECK(rc != 0, "spec '%s' accepted", spec);
    if (rc == 0) {
        mixer_destroy(&m);
        return;
    }
    CHECK(strstr(err.msg, needle) != NULL, "spec '%s': message '%s' lacks '%s'", spec, err.msg, needle);
    fprintf(stderr, "  %-26s -> %s\n", spec, err.msg);
}

static void test_specs(void)
{
    struct mixer m;
    struct mixer_dims d = {.C = 16, .H = 2, .T_max = 32, .bias = 1, .layer = 0, .n_layer = 1, .seed = 1};
    struct mx_error err;
    CHECK(mixer_create(&m, "lsh", &d, &err) == 0, "default spec: %s", err.msg);
    CHECK(strcmp(m.spec, "lsh:h=4,nb=64,c=64") == 0, "canonical spec '%s'", m.spec);
    mixer_destroy(&m);
    CHECK(mixer_create(&m, "lsh:nb=1,c=2,h=3", &d, &err) == 0, "nb=1: %s", err.msg);
    CHECK(strcmp(m.spec, "lsh:h=3,nb=1,c=2") == 0, "canonical spec '%s'", m.spec);
    mixer_destroy(&m);
    expect_spec_error("lsh:nb=3", "nb=3");
    expect_spec_error("lsh:nb=0", "nb");
    expect_spec_error("lsh:h=0", "h");
    expect_spec_error("lsh:c=0", "c");
    expect_spec_error("lsh:h=x", "h");
    expect_spec_error("lsh:buckets=8", "buckets");
}

/* Angular LSH: pairs with cosine 0.9 share a bucket far more often than random pairs. */
static void test_lsh_statistics(void)
{
    const int D = 32, nb = 16, pairs = 4000;
    struct mx_rng r;
    mx_rng_seed(&r, 2024);
    float *R = mx_xmalloc((size_t)D * (nb / 2) * sizeof(float));
    float x[32], y[32], z[32];
    int same_close = 0, same_rand = 0;
    for (int i = 0; i < pairs; i++) {
        mx_rng_fill_normal(&r, R, (size_t)D * (nb / 2), 1.0f); /* a fresh draw per pair */
        double nx = 0, xz = 0, nz = 0;
        mx_rng_fill_normal(&r, x, D, 1.0f);
        mx_rng_fill_normal(&r, z, D, 1.0f);
        for (int d = 0; d < D; d++)
            nx += (double)x[d] * x[d];
        for (int d = 0; d < D; d++) {
            x[d] = (float)(x[d] / sqrt(nx));
            xz += (double)x[d] * z[d];
        }
        for (int d = 0; d < D; d++) { /* z orthogonal to x, unit */
            z[d] -= (float)xz * x[d];
            nz += (double)z[d] * z[d];
        }
        for (int d = 0; d < D; d++)
            y[d] = 0.9f * x[d] + (float)(sqrt(1 - 0.81) * z[d] / sqrt(nz));
        int32_t bx, by, bz;
        attn_lsh_hash(&bx, x, R, 1, D, nb);
        attn_lsh_hash(&by, y, R, 1, D, nb);
        mx_rng_fill_normal(&r, z, D, 1.0f); /* an independent random vector */
        attn_lsh_hash(&bz, z, R, 1, D, nb);
        CHECK(bx >= 0 && bx < nb && by >= 0 && by < nb && bz >= 0 && bz < nb, "bucket out of range");
        same_close += bx == by;
        same_rand += bx == bz;
    }
    double pc = (double)same_close / pairs, pr = (double)same_rand / pairs;
    fprintf(stderr, "  LSH nb=%d D=%d: P(same | cos 0.9) = %.3f, P(same | random) = %.3f (1/nb = %.3f)\n", nb,
            D, pc, pr, 1.0 / nb);
    CHECK(pc > 0.4 && pc > 4 * pr, "similar vectors do not collide clearly more often (%.3f vs %.3f)", pc,
          pr);
    CHECK(pr < 2.0 / nb, "random pairs collide too often (%.3f)", pr);
    mx_free(R);
}

static int case_specs(void)
{
    test_specs();
    return 0;
}

static int case_statistics(void)
{
    test_lsh_statistics();
    return 0;
}

/* D % 16 == 0 takes the blocked tiles: each check runs there too. */
static int case_dense_equivalence(void)
{
    test_dense_equivalence("lsh:h=1,nb=1,c=32", 16, 2, 2, 24);
    test_dense_equivalence("lsh:h=3,nb=1,c=24", 16, 4, 1, 24);
    test_dense_equivalence("lsh:h=2,nb=1,c=64", 32, 2, 1, 40);
    return 0;
}

static int case_against_ref(void)
{
    test_against_ref("lsh:h=3,nb=8,c=5", 16, 2, 2, 48, 0, 0);
    test_against_ref("lsh:h=2,nb=4,c=2", 24, 3, 1, 40, 1, 17);
    test_against_ref("lsh:h=1,nb=2,c=64", 16, 2, 1, 40, 0, 0);
    test_against_ref("lsh:h=2,nb=4,c=7", 64, 2, 2, 53, 0, 0);
    test_against_ref("lsh:h=3,nb=2,c=20", 32, 1, 1, 70, 1, 5);
    return 0;
}

static int case_generic_hashing(void)
{
    test_generic_hashing("lsh:h=2,nb=4,c=4", 16, 2, 2, 20);
    test_generic_hashing("lsh:h=3,nb=8,c=3", 16, 2, 1, 40);
    test_generic_hashing("lsh:h=2,nb=4,c=5", 32, 2, 1, 37);
    test_generic_hashing("lsh:h=1,nb=1,c=6", 32, 2, 2, 24);
    test_generic_hashing("lsh:h=2,nb=2,c=64", 16, 2, 1, 20); /* c > T_max: the ring is cut to T_max */
    return 0;
}

static int case_backward_uses_saved_buckets(void)
{
    test_backward_uses_saved_buckets();
    return 0;
}

static int case_rotations(void)
{
    test_rotations();
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"specs", case_specs},
        {"statistics", case_statistics},
        {"dense_equivalence", case_dense_equivalence},
        {"against_ref", case_against_ref},
        {"generic_hashing", case_generic_hashing},
        {"backward_uses_saved_buckets", case_backward_uses_saved_buckets},
        {"rotations", case_rotations},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
