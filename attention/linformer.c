/* linformer.c — "linformer": causal block Linformer. Exact causal softmax inside the own block
 * of b positions, plus every completed earlier block compressed from b to k rows by learned
 * projections E, F (k,b) shared across blocks and heads; one softmax over both parts.
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

/* ---- the core: q,k,v (B,H,T,D) -> o, with E, F from the bound context ---------------------- */

struct lin_view {
    const struct lin_cfg *cfg;
    const float *E, *F; /* (k,b) */
    float *dE, *dF;     /* (k,b), backward only */
};

/* xp: the extra slice E [F]; dxp its gradient (backward) or NULL. */
static struct lin_view lin_view(const struct mixer *m, const float *xp, float *dxp)
{
    struct lin_view v;
    v.cfg = m->cfg;
    size_t kb = (size_t)v.cfg->k * v.cfg->b;
    v.E = xp;
    v.F = xp ? xp + (v.cfg->share ? 0 : kb) : NULL;
    v.dE = dxp;
    v.dF = dxp ? dxp + (v.cfg->share ? 0 : kb) : NULL;
    return v;
}

/* Compressed rows per (b,h) slice: R = n_past * k. */
static size_t lin_R(const struct lin_cfg *cfg, int T)
{
    return (size_t)lowrank_n_past(T, cfg->b) * cfg->k;
}

/* saved: lse (B,H,T), Kc (B,H,R,D), Vc (B,H,R,D). */
static size_t lin_saved(const struct mixer *mm, int B, int T)
{
    const struct lin_cfg *cfg = ((const struct lin_cfg *)mm->cfg);
    return (size_t)B * mm->H * (T + 2 * lin_R(cfg, T) * mm->D);
}

/* Per (b,h) slice, backward: dKc, dVc (R,D), dE, dF (k,b), the engine's work. */
static size_t lin_slice_bwd(const struct lin_cfg *cfg, int T, int D)
{
    return 2 * lin_R(cfg, T) * D + 2 * (size_t)cfg->k * cfg->b +
           lowrank_attend_work_bwd(T, cfg->b, cfg->k);
}

static size_t lin_work(const struct mixer *mm, int B, int T)
{
    const struct lin_cfg *cfg = ((const struct lin_cfg *)mm->cfg);
    size_t f = lowrank_attend_work_fwd(T, cfg->b, cfg->k), g = lin_slice_bwd(cfg, T, mm->D);
    return (size_t)B * mm->H * (f > g ? f : g);
}

static void lin_core_forward(const struct mixer *mm, float *o, float *saved, float *work,
                             const float *q, const float *k, const float *v, const float *xp,
                             int B, int T)
{
    struct lin_view w = lin_view(mm, xp, NULL);
    int D = mm->D, b = w.cfg->b, r = w.cfg->k, np = lowrank_n_past(T, b), BH = B * mm->H;
    size_t R = lin_R(w.cfg, T), TD = (size_t)T * D, wf = lowrank_attend_work_fwd(T, b, r);
    float *lse = saved, *Kc = lse + (size_t)BH * T, *Vc = Kc + (size_t)BH * R * D;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T,D) */
        float *Kcs = Kc + bh * R * D, *Vcs = Vc + bh * R * D;             /* (R,D) */
        for (int c = 0; c < np; c++) {
            size_t in = (size_t)c * b * D, out = (size_t)c * r * D;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r, D, b, 1.0f, w.E, b, K + in, D,
                        0.0f, Kcs + out, D);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r, D, b, 1.0f, w.F, b, V + in, D,
                        0.0f, Vcs + out, D);
        }
        lowrank_attend_forward(o + bh * TD, lse + (size_t)bh * T, work + bh * wf, Q, K, V, Kcs, Vcs,
                               0.0f, T, D, b, r);
    }
}

/* dq, dk, dv OVERWRITTEN (the engine accumulates into them after they are zeroed here);
 * dxp +=. */
static void lin_core_backward(const struct mixer *mm, float *dq, float *dk, float *dv, float *dxp,
                              float *work, const float *dout, const float *o, const float *saved,
                              const float *q, const float *k, const float *v, const float *xp,
                              int B, int T)
{
    (void)o;
    struct lin_view w = lin_view(mm, xp, dxp);
    size_t n_all = (size_t)B * mm->H * T * mm->D;
    memset(dq, 0, n_all * sizeof(float));
    memset(dk, 0, n_all * sizeof(float));
    memset(dv, 0, n_all * sizeof(float));
    int D = mm->D, b = w.cfg->b, r = w.cfg->k, np = lowrank_n_past(T, b), BH = B * mm->H;
    size_t R = lin_R(w.cfg, T), TD = (size_t)T * D, kb = (size_t)r * b;
    size_t ws = lin_slice_bwd(w.cfg, T, D);
    const float *lse = saved, *Kc = lse + (size_t)BH * T, *Vc = Kc + (size_t)BH * R * D;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T,D) */
        float *dKc = work + bh * ws, *dVc = dKc + R * D;                  /* (R,D) */
        float *dEs = dVc + R * D, *dFs = dEs + kb;                        /* (k,b) */
        float *eng = dFs + kb;
        memset(dKc, 0, (2 * R * D + 2 * kb) * sizeof(float));
        lowrank_attend_backward(dq + bh * TD, dk + bh * TD, dv + bh * TD, dKc, dVc, eng,
                                dout + bh * TD, lse + (size_t)bh * T, Q, K, V, Kc + bh * R * D,
                                Vc + bh * R * D, 0.0f, T, D, b, r);
        for (int c = 0; c < np; c++) {
            size_t in = (size_t)c * b * D, cr = (size_t)c * r * D;
            /* Kc_c = E K_c: dK_c += Eᵀ dKc_c, dE += dKc_c K_cᵀ (and the same for F, V). */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b, D, r, 1.0f, w.E, b, dKc + cr, D,
                        1.0f, dk + bh * TD + in, D);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r, b, D, 1.0f, dKc + cr, D, K + in,
                        D, 1.0f, dEs, b);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b, D, r, 1.0f, w.F, b, dVc + cr, D,
                        1.0f, dv + bh * TD + in, D);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r, b, D, 1.0f, dVc + cr, D, V + in,
                        D, 1.0f, dFs, b);
        }
    }
    /* WHY per-slice partial sums reduced here in slice order: E, F are shared by all slices,
     * and a fixed summation order keeps the gradient bitwise deterministic. */
    for (int bh = 0; bh < BH; bh++) {
        const float *dEs = work + bh * ws + 2 * R * D, *dFs = dEs + kb;
        for (size_t e = 0; e < kb; e++) {
            w.dE[e] += dEs[e];
            w.dF[e] += dFs[e]; /* share: dF == dE, both partials land in E */
        }
    }
}

/* ---- incremental decoding -----------------------------------------------------------------
 * State per head: Kc, Vc (n_past(T_max)*k, D), the own block's K, V (b, D), scores
 * (n_past*k + b). A block's compressed rows are made when its last position arrives. */

static size_t lin_head_state(const struct mixer *mm)
{
    const struct lin_cfg *cfg = ((const struct lin_cfg *)mm->cfg);
    size_t R = lin_R(cfg, mm->T_max);
    return 2 * R * mm->D + 2 * (size_t)cfg->b * mm->D + R + cfg->b;
}

static size_t lin_state(const struct mixer *mm)
{
    return (size_t)mm->H * lin_head_state(mm);
}

static void lin_step(const struct mixer *mm, float *o_t, float *state, const float *q_t,
                     const float *k_t, const float *v_t, const float *xp, int t)
{
    struct lin_view w = lin_view(mm, xp, NULL);
    int D = mm->D, b = w.cfg->b, r = w.cfg->k, n = t / b, pos = t % b;
    int np = lowrank_n_past(mm->T_max, b);
    size_t R = lin_R(w.cfg, mm->T_max), hs = lin_head_state(mm);
    for (int h = 0; h < mm->H; h++) {
        float *Kc = state + h * hs, *Vc = Kc + R * D;                              /* (R,D) */
        float *Kb = Vc + R * D, *Vb = Kb + (size_t)b * D, *s = Vb + (size_t)b * D; /* (b,D) */
        memcpy(Kb + (size_t)pos * D, k_t + (size_t)h * D, D * sizeof(float));
        memcpy(Vb + (size_t)pos * D, v_t + (size_t)h * D, D * sizeof(float));
        lowrank_attend_row(o_t + (size_t)h * D, s, q_t + (size_t)h * D, Kc, Vc, n * r, Kb, Vb,
                           pos + 1, 0.0f, D);
        if (pos == b - 1 && n < np) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r, D, b, 1.0f, w.E, b, Kb, D,
                        0.0f, Kc + (size_t)n * r * D, D);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r, D, b, 1.0f, w.F, b, Vb, D,
                        0.0f, Vc + (size_t)n * r * D, D);
        }
    }
}

static const struct attn_core lin_core = {
    .saved_floats = lin_saved,
    .work_floats = lin_work,
    .forward = lin_core_forward,
    .backward = lin_core_backward,
    .state_floats = lin_state,
    .step = lin_step,
};

static const char *const lin_tests[] = {"linformer:k=2,b=4", "linformer:k=3,b=6,share=1",
                                        "linformer:k=1,b=7", NULL};

const struct mixer_ops attn_linformer_ops = {
    ATTN_OPS("linformer",
             "linformer:k=8,b=64,share=0 — causal block Linformer: exact attention in the own "
             "block of b, each completed block projected to k rows by learned E,F (k,b) "
             "(share=1: E=F); paper k=256 is non-causal over the whole sequence",
             lin_tests, lin_parse, lin_destroy, lin_tensors, lin_init, lowrank_flops, &lin_core),
};
