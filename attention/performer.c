/* performer.c — FAVOR+ ("performer"), Choromanski et al. 2021, "Rethinking Attention with
 * Performers": positive orthogonal random features approximating exp(q·k/√D), made causal by
 * the chunked prefix-sum engine (kernel_attn.c); generation keeps S and z per head (O(1) in t).
 * Not exact softmax attention: the error falls as the feature count m grows (tests/test_kernel.c).
 *
 * Random features. W (m,D) is NOT a parameter and is not stored: draw number
 * n = m->step / redraw (n = 0 for ever when redraw = 0) is a pure function of
 * (m->seed, m->layer, n) through mx_rng_seed3, cached in m->cfg keyed by n. The model sets
 * m->step before forward, so a checkpoint's step reproduces its draw: eval and resume are exact,
 * and forward and backward of one step see one draw. Orthogonal blocks as in the paper: each
 * D x D Gaussian block is orthonormalised (Gram–Schmidt) and its rows rescaled to the norms of
 * independent Gaussian D-vectors (chi-distributed), so every row is marginally N(0, I_D). */
#include "attention/attn_kernels.h"
#include "attention/kernel_attn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* WHY ε = 1e-20: the denominator lives in the stabilised unit (each query's largest feature is
 * 1, keys are ≤ 1 relative to the running maximum, see kernel_attn.c) and can sit far below 1
 * when a query points away from every key seen so far; linear's 1e-6 would then pull such rows
 * towards 0. 1e-20 only matters when the sum has underflowed (it then gives 0, not 0/0), and it
 * bounds 1/(den+ε) by 1e20 so backward's dO/(den+ε) stays finite in float. */
#define PERFORMER_EPS 1e-20f
/* Keeps this mixer's random stream apart from other users of (seed, layer, n). */
#define PERFORMER_TAG 0x70657266u

struct perf_cfg {
    struct kattn_map map; /* first: the engine's struct (attn_common.h) */
    int M, D, redraw, layer;
    uint64_t seed;
    long draw;  /* the draw W holds; -1 before the first */
    float *W;   /* (M,D), rows already multiplied by D^(-1/4) */
    double *gs; /* (D,D) Gram–Schmidt workspace */
};

/* FAVOR+ features with x = q·D^(-1/4) (so x_q·x_k = q·k/√D):
 *   φ_i(x) = exp(w_i·x - |x|²/2) / √m,   E[φ(x_q)·φ(x_k)] = exp(x_q·x_k).
 * WHY the stabiliser: exp overflows float above ~88. Per row we subtract the largest w_i·x:
 * - queries: that max, the -|x|²/2 and the 1/√m are per-query constants, which cancel between
 *   numerator and denominator of o_t, so they are simply dropped (exact; backward treats the max
 *   as a constant, also exact since o_t does not depend on it);
 * - keys: a per-key constant would NOT cancel (it reweights keys), so it is handed to the engine
 *   as lscale = max_i w_i·x - |x|²/2, which re-expresses every key in the causal running-max unit
 *   (kernel_attn.c): exact, overflow-free, and blind to future keys. */
static void perf_map_forward(const void *ctx, float *phi, float *lscale, const float *x, int L, int D,
                             int key, float *tmp)
{
    (void)tmp;
    const struct perf_cfg *c = ctx;
    const int F = c->M;
    const float half_isd = 0.5f / sqrtf((float)D);
    const struct attn_kernels *ak = attn_kernels();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, F, D, 1.0f, x, D, c->W, D, 0.0f, phi, F);
    for (int i = 0; i < L; i++) {
        float *row = phi + (size_t)i * F;
        float mx = ak->max(row + 1, row[0], (size_t)F - 1);
        ak->exp_sum(row, row, mx, (size_t)F);
        if (key) {
            const float *xr = x + (size_t)i * D;
            lscale[i] = mx - ak->dot(xr, xr, (size_t)D) * half_isd;
        }
    }
}

/* du = dφ∘φ; queries: dx += du W; keys also dx -= (Σ_i du_i) x/√D (from -|x|²/2). */
static void perf_map_backward(const void *ctx, float *dx, const float *dphi, const float *phi, const float *x,
                              int L, int D, int key, float *tmp)
{
    const struct perf_cfg *c = ctx;
    const int F = c->M;
    const float isd = 1.0f / sqrtf((float)D);
    const struct attn_kernels *ak = attn_kernels();
    ak->mul(tmp, dphi, phi, (size_t)L * F);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, D, F, 1.0f, tmp, F, c->W, D, 1.0f, dx, D);
    if (!key)
        return;
    for (int i = 0; i < L; i++)
        ak->axpy(dx + (size_t)i * D, -ak->sum(tmp + (size_t)i * F, (size_t)F) * isd, x + (size_t)i * D, (size_t)D);
}

/* Draw n: blocks of D rows, Gram–Schmidt in double on a Gaussian block, then each kept row
 * scaled by the norm of a fresh Gaussian D-vector and by D^(-1/4). */
static void perf_draw(struct perf_cfg *c, long n)
{
    const int D = c->D, M = c->M;
    struct mx_rng r;
    mx_rng_seed3(&r, c->seed ^ PERFORMER_TAG, (uint64_t)c->layer, (uint64_t)n);
    const double qscale = pow((double)D, -0.25);
    double *G = c->gs;
    for (int b0 = 0; b0 < M; b0 += D) {
        for (size_t i = 0; i < (size_t)D * D; i++)
            G[i] = mx_rng_normal(&r);
        for (int i = 0; i < D; i++) {
            double *gi = G + (size_t)i * D;
            for (int j = 0; j < i; j++) {
                const double *gj = G + (size_t)j * D;
                double p = 0;
                for (int d = 0; d < D; d++)
                    p += gi[d] * gj[d];
                for (int d = 0; d < D; d++)
                    gi[d] -= p * gj[d];
            }
            double nrm = 0;
            for (int d = 0; d < D; d++)
                nrm += gi[d] * gi[d];
            nrm = sqrt(nrm);
            MX_ASSERT(nrm > 1e-9); /* a singular Gaussian block has probability 0 */
            for (int d = 0; d < D; d++)
                gi[d] /= nrm;
        }
        int rows = M - b0 < D ? M - b0 : D;
        for (int i = 0; i < rows; i++) {
            double chi = 0;
            for (int d = 0; d < D; d++) {
                double z = mx_rng_normal(&r);
                chi += z * z;
            }
            chi = sqrt(chi);
            for (int d = 0; d < D; d++)
                c->W[((size_t)b0 + i) * D + d] = (float)(G[(size_t)i * D + d] * chi * qscale);
        }
    }
    c->draw = n;
}

/* Bring the cached draw up to m->step (the map's prepare hook). Called outside parallel
 * regions. */
static struct perf_cfg *perf_sync(const struct mixer *m)
{
    struct perf_cfg *c = m->cfg;
    MX_ASSERT(m->step >= 0);
    long n = c->redraw > 0 ? m->step / c->redraw : 0;
    if (n != c->draw)
        perf_draw(c, n);
    return c;
}

static void perf_prepare(const struct mixer *m)
{
    perf_sync(m);
}

int performer_features(const struct mixer *m, float *w_out)
{
    struct perf_cfg *c = perf_sync(m);
    memcpy(w_out, c->W, (size_t)c->M * c->D * sizeof(float));
    return c->M;
}

static int perf_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    long M, redraw, chunk;
    if (mixer_kv_parse(&kv, "performer", args, err) != 0 ||
        mixer_kv_int(&kv, "performer", "m", 256, 1, 16384, &M, err) != 0 ||
        mixer_kv_int(&kv, "performer", "redraw", 1000, 0, 1000000000L, &redraw, err) != 0 ||
        mixer_kv_int(&kv, "performer", "c", 64, 1, 4096, &chunk, err) != 0)
        return -1;
    const char *rope = mixer_kv_str(&kv, "rope");
    if (mixer_kv_finish(&kv, "performer",
                        "m (random features, default 256), redraw (steps between "
                        "draws, 0 = never, default 1000), c (chunk rows, default 64), rope=map|qk "
                        "(with --pos rope)",
                        err) != 0)
        return -1;
    struct perf_cfg *c = mx_xcalloc(sizeof *c);
    c->M = (int)M;
    c->D = m->D;
    c->redraw = (int)redraw;
    c->layer = m->layer;
    c->seed = m->seed;
    c->draw = -1;
    c->W = mx_xmalloc((size_t)M * m->D * sizeof(float));
    c->gs = mx_xmalloc((size_t)m->D * m->D * sizeof(double));
    c->map.F = (int)M;
    c->map.map_flops_row = (double)M * (2.0 * m->D + 4.0); /* W x, max, subtract, exp */
    c->map.prepare = perf_prepare;
    c->map.chunk = (int)chunk;
    c->map.eps = PERFORMER_EPS;
    c->map.scaled = 1;
    c->map.ctx = c;
    c->map.forward = perf_map_forward;
    c->map.backward = perf_map_backward;
    m->cfg = c;
    int qk;
    if (kattn_rope_setup(m, &c->map, rope, "performer", &qk, err) != 0)
        return -1;
    snprintf(m->spec, sizeof m->spec, "performer:m=%ld,redraw=%ld,c=%ld,rope=%s", M, redraw, chunk,
             qk ? "qk" : "map");
    return 0;
}

static void perf_destroy(struct mixer *m)
{
    struct perf_cfg *c = m->cfg;
    if (!c)
        return;
    kattn_map_release(&c->map);
    mx_free(c->W);
    mx_free(c->gs);
    mx_free(c);
}

/* Several chunks at T=20 (c=3), and m not a multiple of D=8 (a partial orthogonal block). */
static const char *const perf_tests[] = {"performer:m=16,c=3", "performer:m=12,c=8", "performer:m=12,c=5,rope=qk",
                                         NULL};

const struct mixer_ops attn_performer_ops = {
    ATTN_OPS("performer",
             "performer[:m=256,redraw=1000,c=64,rope=map] — FAVOR+ positive orthogonal random features "
             "(Choromanski et al. 2021; paper m=256); features redrawn every `redraw` training "
             "steps (0 = never) from (seed, layer, step/redraw); c = chunk rows; with --pos rope, "
             "rope=map rotates the features in the numerator (RoFormer 3.3; m even), rope=qk rotates "
             "q and k before the map; O(T m D) time, "
             "O(1) state per token in generation",
             perf_tests, perf_parse, perf_destroy, attn_tensors, attn_init, kattn_flops,
             &kattn_core),
};
