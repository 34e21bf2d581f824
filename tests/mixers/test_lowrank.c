/* test_lowrank.c — the low-rank mixers (linformer, nystrom) beyond the generic suite: the block
 * engine against its naive reference, the iterative pseudo-inverse against Gauss-Jordan (and its
 * backward against finite differences), exact reductions to dense attention (Linformer k = b with
 * E = F = I; Nyström with one segment covering T, and with every position its own landmark),
 * linear memory in T, bad specs. Gradients and causality come from test_mixers.c. */
#include "check.h"
#include "attention/lowrank_common.h"
#include "mixer_check.h"

#include <math.h>
#include <string.h>

static float *randn(size_t n, uint64_t seed, float std)
{
    float *x = mx_xmalloc((n + 1) * sizeof(float));
    mc_fill_normal(x, n, seed, std);
    return x;
}

static float *zeros(size_t n)
{
    return mx_xcalloc((n + 1) * sizeof(float));
}

static int report(const char *what, double err, double tol)
{
    int bad = !(err <= tol);
    fprintf(stderr, "%s %-58s rel err %.2e (tol %.0e)\n", bad ? "FAIL" : "ok  ", what, err, tol);
    return bad;
}

/* ---- the engine: fast (sgemm per block) vs naive reference ---------------------------------- */

static int test_engine(int T, int b, int r, int D, float bias, uint64_t seed)
{
    int np = lowrank_n_past(T, b);
    size_t TD = (size_t)T * D, RD = (size_t)np * r * D;
    float *Q = randn(TD, seed, 1.5f), *K = randn(TD, seed + 1, 1.5f), *V = randn(TD, seed + 2, 1);
    float *Kc = randn(RD, seed + 3, 1.5f), *Vc = randn(RD, seed + 4, 1),
          *dO = randn(TD, seed + 5, 1);
    float *O1 = zeros(TD), *O2 = zeros(TD), *l1 = zeros(T), *l2 = zeros(T);
    size_t wf = lowrank_attend_work_fwd(T, b, r), wb = lowrank_attend_work_bwd(T, b, r);
    float *work = zeros(wf > wb ? wf : wb);
    lowrank_attend_forward(O1, l1, work, Q, K, V, Kc, Vc, bias, T, D, b, r);
    lowrank_attend_ref_forward(O2, l2, Q, K, V, Kc, Vc, bias, T, D, b, r);
    float *g1[5], *g2[5];
    size_t gn[5] = {TD, TD, TD, RD, RD};
    for (int i = 0; i < 5; i++) {
        g1[i] = randn(gn[i], seed + 10 + i, 1); /* nonzero start: backward must accumulate */
        g2[i] = mx_xmalloc((gn[i] + 1) * sizeof(float));
        memcpy(g2[i], g1[i], gn[i] * sizeof(float));
    }
    lowrank_attend_backward(g1[0], g1[1], g1[2], g1[3], g1[4], work, dO, l2, Q, K, V, Kc, Vc, bias,
                            T, D, b, r);
    lowrank_attend_ref_backward(g2[0], g2[1], g2[2], g2[3], g2[4], dO, l2, Q, K, V, Kc, Vc, bias, T,
                                D, b, r);
    char what[96];
    snprintf(what, sizeof what, "engine vs ref T=%d b=%d r=%d D=%d bias=%.1f", T, b, r, D, bias);
    double e = fmax(mc_rel_err(O1, O2, TD, 1e-6), mc_rel_err(l1, l2, T, 1e-6));
    for (int i = 0; i < 5; i++)
        e = fmax(e, mc_rel_err(g1[i], g2[i], gn[i], 1e-6));
    int f = report(what, e, 2e-5);
    float *all[] = {Q, K, V, Kc, Vc, dO, O1, O2, l1, l2, work};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        mx_free(all[i]);
    for (int i = 0; i < 5; i++) {
        mx_free(g1[i]);
        mx_free(g2[i]);
    }
    return f;
}

/* ---- pseudo-inverse ---------------------------------------------------------------------- */

/* Direct inverse by Gauss-Jordan with partial pivoting, in double. Returns -1 if singular. */
static int gj_inverse(double *inv, const float *A, int m)
{
    double *a = mx_xmalloc(sizeof(double) * (size_t)m * 2 * m);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < 2 * m; j++)
            a[(size_t)i * 2 * m + j] = j < m ? A[(size_t)i * m + j] : (j - m == i);
    int rc = 0;
    for (int c = 0; c < m && !rc; c++) {
        int p = c;
        for (int i = c + 1; i < m; i++)
            if (fabs(a[(size_t)i * 2 * m + c]) > fabs(a[(size_t)p * 2 * m + c]))
                p = i;
        if (fabs(a[(size_t)p * 2 * m + c]) < 1e-14) {
            rc = -1;
            break;
        }
        for (int j = 0; j < 2 * m; j++) {
            double t = a[(size_t)c * 2 * m + j];
            a[(size_t)c * 2 * m + j] = a[(size_t)p * 2 * m + j];
            a[(size_t)p * 2 * m + j] = t;
        }
        double piv = a[(size_t)c * 2 * m + c];
        for (int j = 0; j < 2 * m; j++)
            a[(size_t)c * 2 * m + j] /= piv;
        for (int i = 0; i < m; i++) {
            if (i == c)
                continue;
            double f = a[(size_t)i * 2 * m + c];
            for (int j = 0; j < 2 * m; j++)
                a[(size_t)i * 2 * m + j] -= f * a[(size_t)c * 2 * m + j];
        }
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++)
            inv[(size_t)i * m + j] = a[(size_t)i * 2 * m + m + j];
    mx_free(a);
    return rc;
}

/* A well-conditioned row-stochastic matrix like the landmark kernel: softmax rows of
 * diag_gain·I + noise. */
static void make_softmax_matrix(float *A, int m, float diag_gain, uint64_t seed)
{
    mc_fill_normal(A, (size_t)m * m, seed, 0.5f);
    for (int i = 0; i < m; i++) {
        float *row = A + (size_t)i * m, mx = -INFINITY, s = 0;
        row[i] += diag_gain;
        for (int j = 0; j < m; j++)
            mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j < m; j++)
            s += (row[j] = expf(row[j] - mx));
        for (int j = 0; j < m; j++)
            row[j] /= s;
    }
}

static int test_pinv(int m, float gain, uint64_t seed)
{
    size_t m2 = (size_t)m * m;
    float *A = zeros(m2), *Z = zeros(m2), *work = zeros(4 * m2);
    double *inv = mx_xmalloc(m2 * sizeof(double));
    make_softmax_matrix(A, m, gain, seed);
    int f = 0;
    if (gj_inverse(inv, A, m) != 0) {
        fprintf(stderr, "FAIL pinv m=%d: test matrix singular\n", m);
        f = 1;
        goto out;
    }
    lowrank_pinv_forward(Z, NULL, work, A, m);
    double md = 0, mi = 0;
    for (size_t e = 0; e < m2; e++) {
        md = fmax(md, fabs(Z[e] - inv[e]));
        mi = fmax(mi, fabs(inv[e]));
    }
    char what[96];
    snprintf(what, sizeof what, "pinv (6 iters) vs Gauss-Jordan m=%d gain=%.1f", m, gain);
    f |= report(what, md / mi, 1e-4);
    /* The trace path gives the same Z bit for bit. */
    float *trace = zeros(lowrank_pinv_trace_floats(m)), *Z2 = zeros(m2);
    lowrank_pinv_forward(Z2, trace, work, A, m);
    if (memcmp(Z, Z2, m2 * sizeof(float)) != 0) {
        fprintf(stderr, "FAIL pinv m=%d: trace and no-trace paths differ\n", m);
        f = 1;
    }
    mx_free(trace);
    mx_free(Z2);
out:
    mx_free(A);
    mx_free(Z);
    mx_free(work);
    mx_free(inv);
    return f;
}

/* Backward through the iteration vs central differences of L = Σ Z ⊙ R. */
static double pinv_loss(const float *A, const float *R, int m)
{
    size_t m2 = (size_t)m * m;
    float *Z = zeros(m2), *work = zeros(4 * m2);
    lowrank_pinv_forward(Z, NULL, work, A, m);
    double L = 0;
    for (size_t e = 0; e < m2; e++)
        L += (double)Z[e] * R[e];
    mx_free(Z);
    mx_free(work);
    return L;
}

static int test_pinv_grad(int m, float gain, uint64_t seed)
{
    size_t m2 = (size_t)m * m;
    float *A = zeros(m2), *R = randn(m2, seed + 1, 1), *Z = zeros(m2), *dA = zeros(m2);
    float *trace = zeros(lowrank_pinv_trace_floats(m)), *work = zeros(4 * m2);
    make_softmax_matrix(A, m, gain, seed);
    /* WHY rescale rows: a softmax matrix has all row sums 1, a tie for ‖A‖∞'s argmax that a
     * finite difference in one entry breaks (a kink). Distinct row sums keep the test smooth;
     * in the mixer the tie is harmless (a constant row gradient vanishes through softmax). */
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++)
            A[(size_t)i * m + j] *= 1.0f + 0.05f * (float)i;
    lowrank_pinv_forward(Z, trace, work, A, m);
    lowrank_pinv_backward(dA, work, R, trace, A, m);
    double gmax = 1e-6, worst = 0;
    for (size_t e = 0; e < m2; e++)
        gmax = fmax(gmax, fabs(dA[e]));
    const float eps = 1e-3f;
    for (size_t e = 0; e < m2; e++) {
        float keep = A[e];
        A[e] = keep + eps;
        double lp = pinv_loss(A, R, m);
        A[e] = keep - eps;
        double lm = pinv_loss(A, R, m);
        A[e] = keep;
        worst = fmax(worst, fabs((lp - lm) / (2.0 * eps) - dA[e]) / gmax);
    }
    char what[96];
    snprintf(what, sizeof what, "pinv backward vs finite differences m=%d", m);
    int f = report(what, worst, 1e-2);
    mx_free(A);
    mx_free(R);
    mx_free(Z);
    mx_free(dA);
    mx_free(trace);
    mx_free(work);
    return f;
}

/* ---- reductions to dense ----------------------------------------------------------------- */

static void set_identity(struct mc_mixer *t, const char *name)
{
    size_t off = mixer_tensor_offset(&t->m, name);
    int n = mixer_n_tensors(&t->m);
    struct mx_param td[8];
    MX_ASSERT(n <= 8);
    t->m.ops->tensors(&t->m, td);
    for (int i = 0; i < n; i++)
        if (strcmp(td[i].name, name) == 0) {
            int k = td[i].shape[0], b = td[i].shape[1];
            MX_ASSERT(k == b);
            for (int r = 0; r < k; r++)
                for (int j = 0; j < b; j++)
                    t->params[off + (size_t)r * b + j] = r == j ? 1.0f : 0.0f;
        }
}

/* q = k = α x per head with α²/√D = 2: every query's own key dominates its scores, so a
 * block's landmark kernel softmax(Q K^T/√D) is well conditioned (near the identity). */
static void self_similar_qk(struct mc_mixer *t)
{
    int C = t->m.C;
    float alpha = sqrtf(2.0f * sqrtf((float)t->m.D));
    float *w = t->params + mixer_tensor_offset(&t->m, "c_attn.weight");  /* (3C,C) */
    float *bias = t->params + mixer_tensor_offset(&t->m, "c_attn.bias"); /* (3C) */
    for (int r = 0; r < 2 * C; r++) {
        for (int c = 0; c < C; c++)
            w[(size_t)r * C + c] = (r % C) == c ? alpha : 0.0f;
        bias[r] = 0;
    }
}

/* Forward and the gradients of x and of the shared attention tensors of `spec` (its extra
 * tensors set by `ident`: names to set to the identity) against dense on the same c_attn/c_proj.
 * selfsim: q = k per head (self_similar_qk). */
static int vs_dense(const char *spec, const char *const *ident, int T, double tol, int selfsim)
{
    const int C = 16, H = 2, B = 2;
    struct mc_mixer a, d;
    if (mc_create(&a, spec, C, H, T, B, T, 7, 3.0f) != 0)
        return 1;
    if (mc_create(&d, "dense", C, H, T, B, T, 7, 3.0f) != 0) {
        mc_free(&a);
        return 1;
    }
    size_t na = attn_param_floats(&a.m);
    MX_ASSERT(na == d.n_params);
    if (selfsim)
        self_similar_qk(&a);
    memcpy(d.params, a.params, na * sizeof(float));
    for (const char *const *s = ident; s && *s; s++)
        set_identity(&a, *s);
    size_t n = (size_t)B * T * C;
    float *x = randn(n, 11, 1), *r = randn(n, 12, 1), *ya = zeros(n), *yd = zeros(n);
    float *dxa = zeros(n), *dxd = zeros(n), *dpa = zeros(a.n_params), *dpd = zeros(d.n_params);
    float *sa = mc_forward(&a, ya, x, T), *sd = mc_forward(&d, yd, x, T);
    a.m.ops->backward(&a.m, dxa, dpa, r, sa, x, a.params, B, T);
    d.m.ops->backward(&d.m, dxd, dpd, r, sd, x, d.params, B, T);
    double e = fmax(mc_rel_err(ya, yd, n, 1e-6),
                    fmax(mc_rel_err(dxa, dxd, n, 1e-6), mc_rel_err(dpa, dpd, na, 1e-6)));
    char what[96];
    snprintf(what, sizeof what, "%.40s == dense (y, dx, dparams) T=%d%s", a.m.spec, T,
             selfsim ? " q=k" : "");
    int f = report(what, e, tol);
    float *all[] = {x, r, ya, yd, dxa, dxd, dpa, dpd, sa, sd};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        mx_free(all[i]);
    mc_free(&a);
    mc_free(&d);
    return f;
}

/* ---- every extra parameter (E, F, conv.weight) by central differences -----------------------
 * The generic suite samples 64 of ~1k parameters, so it rarely hits these few. */

static double proj_loss(struct mc_mixer *t, const float *x, const float *r)
{
    size_t n = (size_t)t->B * t->T * t->m.C;
    float *y = zeros(n), *sv = mc_forward(t, y, x, t->T);
    double L = 0;
    for (size_t i = 0; i < n; i++)
        L += (double)y[i] * r[i];
    mx_free(y);
    mx_free(sv);
    return L;
}

static int fd_extra(const char *spec, int T)
{
    const int C = 16, H = 2, B = 2;
    struct mc_mixer t;
    if (mc_create(&t, spec, C, H, T, B, T, 9, 3.0f) != 0)
        return 1;
    size_t n = (size_t)B * T * C, na = attn_param_floats(&t.m);
    float *x = randn(n, 41, 1), *r = randn(n, 42, 1), *y = zeros(n), *dx = zeros(n);
    float *dp = zeros(t.n_params), *sv = mc_forward(&t, y, x, T);
    t.m.ops->backward(&t.m, dx, dp, r, sv, x, t.params, B, T);
    double gmax = 1e-4, worst = 0;
    for (size_t i = na; i < t.n_params; i++)
        gmax = fmax(gmax, fabs(dp[i]));
    const float eps = 1e-2f;
    for (size_t i = na; i < t.n_params; i++) {
        float keep = t.params[i];
        t.params[i] = keep + eps;
        double lp = proj_loss(&t, x, r);
        t.params[i] = keep - eps;
        double lm = proj_loss(&t, x, r);
        t.params[i] = keep;
        worst = fmax(worst, fabs((lp - lm) / (2.0 * eps) - dp[i]) / gmax);
    }
    char what[96];
    snprintf(what, sizeof what, "%.36s: %zu extra params vs finite diff.", t.m.spec,
             t.n_params - na);
    int f = report(what, worst, 1e-2);
    float *all[] = {x, r, y, dx, dp, sv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        mx_free(all[i]);
    mc_free(&t);
    return f;
}

/* ---- memory linear in T ------------------------------------------------------------------ */

static int test_linear_memory(const char *spec)
{
    struct mixer m;
    struct mx_error err;
    struct mixer_dims dm = {.C = 128, .H = 4, .T_max = 16384, .bias = 1, .n_layer = 1, .seed = 1};
    if (mixer_create(&m, spec, &dm, &err) != 0) {
        fprintf(stderr, "FAIL %s: %s\n", spec, err.msg);
        return 1;
    }
    double f1 = (double)(m.ops->saved_floats(&m, 1, 4096) + m.ops->scratch_floats(&m, 1, 4096));
    double f4 = (double)(m.ops->saved_floats(&m, 1, 16384) + m.ops->scratch_floats(&m, 1, 16384));
    double st1 = (double)m.ops->state_floats(&m);
    mixer_destroy(&m);
    char what[96];
    snprintf(what, sizeof what, "%s memory(T=16384)/memory(T=4096) = %.2f", spec, f4 / f1);
    int f = report(what, f4 / f1 / 4.0 - 1.0, 0.1); /* 4x the length, at most 4.4x the floats */
    (void)st1;
    return f;
}

/* ---- specs ------------------------------------------------------------------------------- */

static int test_bad_spec(const char *spec, const char *must_contain)
{
    struct mixer m;
    struct mx_error err = {{0}};
    struct mixer_dims dm = {.C = 16, .H = 2, .T_max = 64, .bias = 1, .n_layer = 1, .seed = 1};
    if (mixer_create(&m, spec, &dm, &err) == 0) {
        fprintf(stderr, "FAIL spec '%s' was accepted\n", spec);
        mixer_destroy(&m);
        return 1;
    }
    int f = strstr(err.msg, must_contain) == NULL;
    fprintf(stderr, "%s bad spec %-28s -> %s\n", f ? "FAIL" : "ok  ", spec, err.msg);
    return f;
}

static int test_canonical(const char *spec, const char *want)
{
    struct mixer m;
    struct mx_error err;
    struct mixer_dims dm = {.C = 16, .H = 2, .T_max = 64, .bias = 1, .n_layer = 1, .seed = 1};
    if (mixer_create(&m, spec, &dm, &err) != 0) {
        fprintf(stderr, "FAIL %s: %s\n", spec, err.msg);
        return 1;
    }
    int f = strcmp(m.spec, want) != 0;
    fprintf(stderr, "%s spec %-20s -> %s\n", f ? "FAIL" : "ok  ", spec, m.spec);
    mixer_destroy(&m);
    return f;
}

static int case_engine(void)
{
    int f = 0;
    /* engine: T multiple of b or not, T < b, b = 1, with and without bias */
    f += test_engine(13, 4, 2, 5, 0.0f, 1);
    f += test_engine(16, 4, 3, 3, 0.7f, 2);
    f += test_engine(3, 8, 2, 4, 0.0f, 3);
    f += test_engine(20, 1, 1, 3, 0.3f, 4);
    f += test_engine(70, 16, 4, 8, 1.1f, 5);
    return f;
}

static int case_pinv(void)
{
    int f = 0;
    f += test_pinv(4, 3.0f, 21);
    f += test_pinv(8, 3.0f, 22);
    f += test_pinv(16, 4.0f, 23);
    f += test_pinv_grad(4, 2.0f, 31);
    f += test_pinv_grad(8, 1.0f, 32);
    return f;
}

static int case_vs_dense(void)
{
    int f = 0;
    /* Linformer k = b, E = F = I: dense exactly; T a multiple of b and not. */
    static const char *const ef[] = {"E", "F", NULL}, *const e_only[] = {"E", NULL};
    f += vs_dense("linformer:k=4,b=4", ef, 19, 1e-5, 0);
    f += vs_dense("linformer:k=5,b=5", ef, 20, 1e-5, 0);
    f += vs_dense("linformer:k=3,b=3,share=1", e_only, 17, 1e-5, 0);
    f += vs_dense("linformer:k=1,b=1", ef, 9, 1e-5, 0);
    /* Nyström with one segment covering T: dense exactly. */
    f += vs_dense("nystrom:m=2,b=32", NULL, 19, 1e-5, 0);
    f += vs_dense("nystrom:m=19,b=19", NULL, 19, 1e-5, 0);
    /* Every position its own landmark (m = b): dense up to the pinv's convergence, which needs
     * a well-conditioned landmark kernel (q = k per head); m = b = 1 is exact for any input. */
    f += vs_dense("nystrom:m=1,b=1", NULL, 12, 1e-5, 0);
    f += vs_dense("nystrom:m=2,b=2", NULL, 15, 1e-4, 1);
    f += vs_dense("nystrom:m=4,b=4", NULL, 18, 1e-4, 1);
    return f;
}

static int case_finite_differences(void)
{
    int f = 0;
    f += fd_extra("linformer:k=2,b=4", 18);
    f += fd_extra("linformer:k=3,b=5,share=1", 17);
    f += fd_extra("nystrom:m=2,b=4,conv=5", 18);
    return f;
}

static int case_linear_memory(void)
{
    int f = 0;
    f += test_linear_memory("linformer");
    f += test_linear_memory("nystrom");
    f += test_linear_memory("nystrom:conv=33");
    return f;
}

static int case_specs(void)
{
    int f = 0;
    f += test_canonical("linformer", "linformer:k=8,b=64,share=0");
    f += test_canonical("nystrom:b=32", "nystrom:m=8,b=32,conv=0");
    f += test_bad_spec("linformer:k=9,b=8", "use k <= b");
    f += test_bad_spec("linformer:k=0", "k");
    f += test_bad_spec("linformer:b=0", "b");
    f += test_bad_spec("linformer:share=2", "share");
    f += test_bad_spec("linformer:w=4", "unknown key 'w'");
    f += test_bad_spec("nystrom:m=3,b=64", "does not divide");
    f += test_bad_spec("nystrom:m=512,b=512", "m");
    f += test_bad_spec("nystrom:conv=-1", "conv");
    f += test_bad_spec("nystrom:k=2", "unknown key 'k'");
    return f;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"engine", case_engine},
        {"pinv", case_pinv},
        {"vs_dense", case_vs_dense},
        {"finite_differences", case_finite_differences},
        {"linear_memory", case_linear_memory},
        {"specs", case_specs},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
