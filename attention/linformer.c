/* linformer.c — "linformer": causal block Linformer, the compression half of a low-rank mixer:
 * its spec, its tensors E, F (k,b) and the lowrank_map callbacks that project each completed
 * block of b positions to k rows (E K_c, F V_c) and back. The attention (exact in the own
 * block, compressed rows of earlier blocks, one softmax) is lowrank_core's (lowrank_common.c).
 * Not the paper's non-causal full-sequence projection (which lets row i see keys after i).
 *
 * Derivation of the causal variant. Linformer replaces softmax(QKᵀ/√D) V (n×n scores) by
 * softmax(Q (EK)ᵀ/√D) (FV) with E, F (k,n): every projected row mixes all n positions, future
 * included, so it cannot be used in a decoder as is. Cut the positions into blocks of b; block
 * c holds K_c, V_c (b,D). The projection is applied per block, E, F (k,b), so the compressed
 * rows EK_c, FV_c depend on block c alone. Query i in block n = ⌊i/b⌋ sees
 *     exact      s_ij  = q_i·k_j/√D             j = n·b .. i
 *     compressed s̃_icr = q_i·(E K_c)_r/√D       c = 0 .. n−1 (completed blocks), r = 0 .. k−1
 *     o_i = (Σ_j e^{s_ij} v_j + Σ_cr e^{s̃_icr} (F V_c)_r) / (Σ_j e^{s_ij} + Σ_cr e^{s̃_icr})
 * one normaliser for both parts (one softmax over b_i + k·n scores). Causal: every input of row
 * i sits at a position ≤ i (block c < n ends before n·b ≤ i). Exactness check: k = b and
 * E = F = I give (EK_c) = K_c, so the compressed terms are exactly the keys j < n·b and o_i is
 * dense causal attention. A trailing partial block is never compressed (it is always someone's
 * own block), so T need not be a multiple of b.
 * Cost per query ≤ b + k·T/b scores (minimal at b = √(kT)); memory: the compressed rows
 * 2·k·D per block and one (b, kT/b + b) score tile per (batch, head) — linear in T.
 * Defaults b = 64, k = 8: the paper's k = 256 compresses a whole sequence of n = 512..4096
 * (2-16×); here each block of 64 goes to 8 rows (8×), so the past costs T/8 rows while the
 * nearest 1..64 positions stay exact, and b + kT/b stays well below T/2 (dense) from T ≈ 512.
 * Init: E = F = mean pooling (row r averages positions ⌊rb/k⌋ .. ⌊(r+1)b/k⌋−1 of the block),
 * so a compressed row starts as the mean of b/k neighbouring keys/values, a meaningful summary,
 * instead of a random mixture of the block. share=1 ties F to E (one tensor "E"). */
#include "attention/lowrank_common.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct lin_cfg {
    struct lowrank_map map; /* first: the engine's struct (attn_common.h) */
    int k, b, share;
};

/* ---- the compression: callbacks of lowrank_core (lowrank_common.h) ------------------------
 * xp is the extra slice E [F] (k,b); with share = 1 F is E. A slice's partial gradient g is
 * dE (k,b) then dF (k,b), kept apart even when shared and summed into E by lin_reduce. */

static void lin_EF(const struct mixer *m, const float *xp, const float **E, const float **F)
{
    const struct lin_cfg *cfg = m->cfg;
    *E = xp;
    *F = xp + (cfg->share ? 0 : (size_t)cfg->k * cfg->b);
}

/* Kc = E K_b, Vc = F V_b (k,D). */
static void lin_compress(const struct mixer *m, float *Kc, float *Vc, float *work, const float *Q,
                         const float *K, const float *V, const float *xp)
{
    (void)work, (void)Q;
    const struct lin_cfg *cfg = m->cfg;
    const float *E, *F;
    lin_EF(m, xp, &E, &F);
    int D = m->D, b = cfg->b, r = cfg->k;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r, D, b, 1.0f, E, b, K, D, 0.0f, Kc, D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r, D, b, 1.0f, F, b, V, D, 0.0f, Vc, D);
}

/* Kc = E K: dK += Eᵀ dKc, dE += dKc Kᵀ (and the same for F, V). */
static void lin_compress_backward(const struct mixer *m, float *dQ, float *dK, float *dV, float *g,
                                  float *work, float *dKc, const float *dVc, const float *Kc, const float *Vc,
                                  const float *Q, const float *K, const float *V, const float *xp)
{
    (void)dQ, (void)work, (void)Kc, (void)Vc, (void)Q;
    const struct lin_cfg *cfg = m->cfg;
    const float *E, *F;
    lin_EF(m, xp, &E, &F);
    int D = m->D, b = cfg->b, r = cfg->k;
    float *dE = g, *dF = g + (size_t)r * b;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b, D, r, 1.0f, E, b, dKc, D, 1.0f, dK, D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r, b, D, 1.0f, dKc, D, K, D, 1.0f, dE, b);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b, D, r, 1.0f, F, b, dVc, D, 1.0f, dV, D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r, b, D, 1.0f, dVc, D, V, D, 1.0f, dF, b);
}

static void lin_reduce(const struct mixer *m, float *dxp, const float *g, int h)
{
    (void)h;
    const struct lin_cfg *cfg = m->cfg;
    size_t kb = (size_t)cfg->k * cfg->b;
    float *dE = dxp, *dF = dxp + (cfg->share ? 0 : kb);
    for (size_t e = 0; e < kb; e++) {
        dE[e] += g[e];
        dF[e] += g[kb + e]; /* share: dF == dE, both partials land in E */
    }
}

static int lin_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    long k, b, share;
    if (mixer_kv_parse(&kv, "linformer", args, err) != 0 ||
        mixer_kv_int(&kv, "linformer", "k", 8, 1, 4096, &k, err) != 0 ||
        mixer_kv_int(&kv, "linformer", "b", 64, 1, 4096, &b, err) != 0 ||
        mixer_kv_int(&kv, "linformer", "share", 0, 0, 1, &share, err) != 0 ||
        mixer_kv_finish(&kv, "linformer",
                        "k (rows per compressed block), b (block length), "
                        "share (1: E = F)",
                        err) != 0)
        return -1;
    if (k > b)
        return mx_errorf(err,
                         "mixer linformer: k=%ld exceeds b=%ld: a block of b positions cannot be "
                         "compressed to more than b rows; use k <= b (default k=8, b=64)",
                         k, b);
    struct lin_cfg *cfg = mx_xcalloc(sizeof *cfg);
    cfg->k = (int)k;
    cfg->b = (int)b;
    cfg->map.b = (int)b;
    cfg->map.r = (int)k;
    cfg->map.block_flops = 2.0 * 2.0 * (double)k * b * m->D; /* E K_c and F V_c */
    cfg->map.bias = 0.0f;
    cfg->map.slice_grad = 2 * (size_t)k * b;
    cfg->map.compress = lin_compress;
    cfg->map.compress_backward = lin_compress_backward;
    cfg->map.reduce = lin_reduce;
    cfg->share = (int)share;
    m->cfg = cfg;
    snprintf(m->spec, sizeof m->spec, "linformer:k=%d,b=%d,share=%d", cfg->k, cfg->b, cfg->share);
    return 0;
}

static void lin_destroy(struct mixer *m)
{
    mx_free(m->cfg);
}

static int lin_tensors(const struct mixer *m, struct mx_param *out)
{
    const struct lin_cfg *cfg = m->cfg;
    int n = 0;
    size_t at = 0;
    attn_tensors_add(m, out, &n, &at);
    for (int i = 0; i < (cfg->share ? 1 : 2); i++)
        mx_param_add(out, &n, &at, i ? "F" : "E", 2, cfg->k, cfg->b, 1, 1);
    return n;
}

static void lin_init(const struct mixer *m, float *params, struct mx_rng *rng)
{
    const struct lin_cfg *cfg = m->cfg;
    int k = cfg->k, b = cfg->b;
    attn_init(m, params, rng);
    float *E = params + attn_param_floats(m);
    for (int t = 0; t < (cfg->share ? 1 : 2); t++) {
        float *P = E + (size_t)t * k * b; /* (k,b) */
        memset(P, 0, (size_t)k * b * sizeof(float));
        for (int r = 0; r < k; r++) {
            int lo = (int)((long)r * b / k), hi = (int)((long)(r + 1) * b / k);
            for (int j = lo; j < hi; j++)
                P[(size_t)r * b + j] = 1.0f / (float)(hi - lo);
        }
    }
}

static const char *const lin_tests[] = {"linformer:k=2,b=4", "linformer:k=3,b=6,share=1", "linformer:k=1,b=7",
                                        NULL};

const struct mixer_ops attn_linformer_ops = {
    ATTN_OPS("linformer",
             "linformer:k=8,b=64,share=0 — causal block Linformer: exact attention in the own "
             "block of b, each completed block projected to k rows by learned E,F (k,b) "
             "(share=1: E=F); paper k=256 is non-causal over the whole sequence",
             lin_tests, lin_parse, lin_destroy, lin_tensors, lin_init, lowrank_flops, &lowrank_core),
};
