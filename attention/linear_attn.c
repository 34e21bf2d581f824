/* linear_attn.c — causal linear attention ("linear"), Katharopoulos et al. 2020, "Transformers
 * are RNNs": φ(x) = elu(x) + 1 on queries and keys, o_t = φ(q_t)ᵀS_t / (φ(q_t)ᵀz_t + ε) through
 * the chunked prefix-sum engine (kernel_attn.c); generation keeps S and z per head (O(1) in t).
 * Not softmax attention and not an approximation of it: a different attention. O(T·D²) time. */
#include "attention/attn_kernels.h"
#include "attention/kernel_attn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* WHY ε = 1e-6 (the paper's value): φ > 0, so the denominator is positive in exact arithmetic,
 * but elu(x)+1 = exp(x) underflows to 0 for x below about -104, and a row whose every φ(q)·φ(k)
 * underflows would give 0/0. With the guard such a row gives 0; for ordinary activations the
 * denominator is O(t) and ε changes nothing visible. */
#define LINEAR_EPS 1e-6f

struct linear_cfg {
    struct kattn_map map; /* first: the engine's struct (attn_common.h) */
};

static void linear_map_forward(const void *ctx, float *phi, float *lscale, const float *x, int L, int D,
                               int key, float *tmp)
{
    (void)ctx, (void)lscale, (void)key, (void)tmp;
    attn_kernels()->elu1_forward(phi, x, (size_t)L * D);
}

static void linear_map_backward(const void *ctx, float *dx, const float *dphi, const float *phi,
                                const float *x, int L, int D, int key, float *tmp)
{
    (void)ctx, (void)key, (void)tmp;
    attn_kernels()->elu1_backward(dx, dphi, phi, x, (size_t)L * D); /* φ' = 1 (x > 0) or φ */
}

static int linear_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    long c;
    if (mixer_kv_parse(&kv, "linear", args, err) != 0 ||
        mixer_kv_int(&kv, "linear", "c", 64, 1, 4096, &c, err) != 0)
        return -1;
    const char *rope = mixer_kv_str(&kv, "rope");
    if (mixer_kv_finish(&kv, "linear", "c (chunk rows, default 64), rope=map|qk (with --pos rope)", err) != 0)
        return -1;
    struct linear_cfg *cfg = mx_xcalloc(sizeof *cfg);
    cfg->map.F = m->D;
    cfg->map.map_flops_row = 3.0 * m->D; /* compare, exp, add per feature */
    cfg->map.chunk = (int)c;
    cfg->map.eps = LINEAR_EPS;
    cfg->map.scaled = 0;
    cfg->map.ctx = cfg;
    cfg->map.forward = linear_map_forward;
    cfg->map.backward = linear_map_backward;
    m->cfg = cfg;
    int qk;
    if (kattn_rope_setup(m, &cfg->map, rope, "linear", &qk, err) != 0)
        return -1;
    snprintf(m->spec, sizeof m->spec, "linear:c=%ld,rope=%s", c, qk ? "qk" : "map");
    return 0;
}

static void linear_destroy(struct mixer *m)
{
    struct linear_cfg *cfg = m->cfg;
    if (cfg)
        kattn_map_release(&cfg->map);
    mx_free(cfg);
}

/* c=3 crosses several chunks at T=20 with a partial last chunk (and the prefix check's 11). */
static const char *const linear_tests[] = {"linear", "linear:c=3", "linear:c=3,rope=qk", NULL};

const struct mixer_ops attn_linear_ops = {
    ATTN_OPS("linear",
             "linear[:c=64,rope=map] — causal linear attention, phi = elu+1 (Katharopoulos et al. "
             "2020); c = chunk rows for the BLAS blocks (same math for any c, round-off aside); with "
             "--pos rope, rope=map rotates the features after phi in the numerator (RoFormer 3.3), "
             "rope=qk rotates q and k before phi; O(T D^2) time, O(1) state per token in generation",
             linear_tests, linear_parse, linear_destroy, attn_tensors, attn_init, kattn_flops,
             &kattn_core),
};
