/* nystrom.c — "nystrom": causal block Nyströmformer, the compression half of a low-rank mixer:
 * its spec and the lowrank_map callbacks that turn each completed block of b positions into m
 * landmark keys and values (segment means, Nyström factors via the iterative pseudo-inverse)
 * and back, plus the optional causal depthwise conv on V (conv.weight). The attention itself is
 * lowrank_core's (lowrank_common.c). Not the paper's non-causal form (its landmarks average
 * over the future and its pseudo-inverse mixes the whole sequence).
 *
 * Derivation of the causal variant. Nyströmformer approximates softmax(QKᵀ·s) V, s = 1/√D, by
 *     F A⁺ B V,  F = softmax(Q K̃ᵀ s), A = softmax(Q̃ K̃ᵀ s), B = softmax(Q̃ Kᵀ s)
 * with landmarks Q̃, K̃ = means of consecutive segments of Q, K, and A⁺ by an iterative
 * Moore-Penrose method. Causal block form: cut positions into blocks of b; each COMPLETED
 * block c gets its own m landmarks (means of g = b/m consecutive positions of Q_c, K_c) and
 * its own factors A_c = softmax(Q̃_c K̃_cᵀ s) (m,m), B_c = softmax(Q̃_c K_cᵀ s) (m,b), and
 *     W_c = A_c⁺ B_c V_c (m,D).
 * For query i in block n = ⌊i/b⌋ and a past block c < n the paper's formula gives the
 * normalised average ô_ic = softmax(q_i K̃_cᵀ s) W_c (a row of F A⁺ B sums to 1 when A⁺ = A⁻¹:
 * A1 = 1 ⇒ A⁻¹1 = 1, B1 = 1). One normaliser over the own block and all past blocks needs
 * each block's unnormalised MASS Z_ic ≈ Σ_{j∈c} e^{s q_i·k_j}: a landmark stands for g keys,
 *     Z_ic = g Σ_l e^{s q_i·k̃_cl}   (> 0 always; ≤ the exact mass by Jensen, = when g = 1),
 * and value sum N_ic = Z_ic ô_ic = Σ_l e^{s q_i·k̃_cl + log g} W_cl. Therefore
 *     o_i = (Σ_{j=nb..i} e^{s q_i·k_j} v_j + Σ_{c<n,l} e^{s q_i·k̃_cl + log g} W_cl)
 *         / (Σ_{j=nb..i} e^{s q_i·k_j}     + Σ_{c<n,l} e^{s q_i·k̃_cl + log g})
 * — one softmax over exact keys and landmark keys (bias log g), values V resp. W: the block
 * engine of lowrank_common.c. Causal: W_c, K̃_c use block c only, and c < n. Reductions:
 * one segment covering T (b ≥ T) has no past block, so o = exact attention; every position its
 * own landmark (m = b, g = 1) gives K̃_c = K_c, A_c = B_c, W_c = A_c⁺A_c V_c = V_c (A_c
 * invertible), bias 0: exact attention again, up to the convergence of the pseudo-inverse.
 * WHY one pseudo-inverse per block (block-diagonal over segments) and not one over all past
 * landmarks: that A changes with every query block (its rows are normalised over a growing
 * landmark set), so it would need a new (m·n)² inverse per block, O((mT/b)³) each; per-block
 * factors cost O(m³ + m·b·D) once and serve every later query, keeping O(T(b + mT/b)) time
 * and memory linear in T. m is landmarks per completed block and must divide b. Defaults m = 8,
 * b = 64: g = 8 keys per landmark, the paper's ratio (n = 512 with m = 64). Conv: the paper adds
 * a depthwise convolution of V along the sequence (kernel 33, one kernel per head, shared over
 * D); here causally, o_i += Σ_{τ<K} w_hτ v_{i−τ}. conv=0 (default) turns it off.
 * A⁺: the paper's iteration (6 steps, Z0 = Aᵀ/(‖A‖₁‖A‖∞)), differentiated through. */
#include "attention/attn_kernels.h"
#include "attention/lowrank_common.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define NYS_M_MAX 256 /* the pinv trace is 30 m² floats per block in backward */

struct nys_cfg {
    struct lowrank_map map; /* first: the engine's struct (attn_common.h) */
    int m, b, conv;
};

/* ---- one block's factors --------------------------------------------------------------------
 * Work layout (nys_block_floats): Qt, Kr, Wr (m,D) | A, Z (m,m) | Bm (m,b) | BV (m,D) |
 * pinv trace (or 4m² pinv work) | backward: dZ, dA (m,m), dBV, dQt (m,D), dBm (m,b), 4m².
 * Kr, Wr receive the recomputed landmark keys and values in backward. */

static size_t nys_block_floats(int m, int b, int D)
{
    size_t mD = (size_t)m * D, m2 = (size_t)m * m, mb = (size_t)m * b;
    return 3 * mD + 2 * m2 + mb + mD + lowrank_pinv_trace_floats(m) + 2 * m2 + 2 * mD + mb + 4 * m2;
}

/* Group means: out (m,D) = mean of g = b/m consecutive rows of in (b,D). */
static void nys_means(float *out, const float *in, int m, int g, int D)
{
    for (int l = 0; l < m; l++)
        for (int d = 0; d < D; d++) {
            float s = 0;
            for (int j = 0; j < g; j++)
                s += in[((size_t)l * g + j) * D + d];
            out[(size_t)l * D + d] = s / (float)g;
        }
}

/* Row softmax of s · X Yᵀ: P (rows, cols) overwritten; X (rows,D), Y (cols,D). */
static void nys_softmax_xy(float *P, const float *X, const float *Y, int rows, int cols, int D)
{
    const float scale = 1.0f / sqrtf((float)D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, D, scale, X, D, Y, D, 0.0f, P, cols);
    const struct attn_kernels *ak = attn_kernels();
    for (int i = 0; i < rows; i++) {
        float *p = P + (size_t)i * cols;
        float mx = ak->max(p, -INFINITY, (size_t)cols);
        ak->scale(p, 1.0f / ak->exp_sum(p, p, mx, (size_t)cols), (size_t)cols);
    }
}

/* Softmax backward in place: G (rows,cols) holds dP on entry, scale·dLogits on exit. */
static void nys_softmax_back(float *G, const float *P, int rows, int cols, int D)
{
    const float scale = 1.0f / sqrtf((float)D);
    for (int i = 0; i < rows; i++) {
        const float *p = P + (size_t)i * cols;
        float *g = G + (size_t)i * cols, dot = 0;
        for (int j = 0; j < cols; j++)
            dot += p[j] * g[j];
        for (int j = 0; j < cols; j++)
            g[j] = p[j] * (g[j] - dot) * scale;
    }
}

/* Forward of one block: Kt (m,D) landmark keys and W (m,D) overwritten; Qb, Kb, Vb (b,D).
 * trace = 1 keeps the pinv intermediates in work for nys_block_backward. */
static void nys_block_forward(float *Kt, float *W, float *work, const float *Qb, const float *Kb,
                              const float *Vb, int m, int b, int D, int trace)
{
    size_t mD = (size_t)m * D, m2 = (size_t)m * m;
    float *Qt = work, *A = Qt + 3 * mD, *Z = A + m2, *Bm = Z + m2, *BV = Bm + (size_t)m * b;
    float *pw = BV + mD;
    int g = b / m;
    nys_means(Qt, Qb, m, g, D);
    nys_means(Kt, Kb, m, g, D);
    nys_softmax_xy(A, Qt, Kt, m, m, D);
    lowrank_pinv_forward(Z, trace ? pw : NULL, pw, A, m);
    nys_softmax_xy(Bm, Qt, Kb, m, b, D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, b, 1.0f, Bm, b, Vb, D, 0.0f, BV, D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, m, 1.0f, Z, m, BV, D, 0.0f, W, D);
}

/* Backward of one block, after nys_block_forward(trace = 1) on the same work:
 * dQb, dKb, dVb (b,D) +=; Kb, Vb the block's keys and values (b,D); dKt (m,D) the engine's gradient
 * of the landmark keys (consumed: the A-path is added to it); dW (m,D). */
static void nys_block_backward(float *dQb, float *dKb, float *dVb, float *dKt, float *work, const float *dW,
                               const float *Kt, const float *Kb, const float *Vb, int m, int b, int D)
{
    size_t mD = (size_t)m * D, m2 = (size_t)m * m, mb = (size_t)m * b;
    const float *Qt = work, *A = Qt + 3 * mD, *Z = A + m2, *Bm = Z + m2, *BV = Bm + mb;
    const float *tr = BV + mD;
    float *dZ = (float *)tr + lowrank_pinv_trace_floats(m), *dA = dZ + m2, *dBV = dA + m2;
    float *dQt = dBV + mD, *dBm = dQt + mD, *pw = dBm + mb;
    int g = b / m;
    /* W = Z BV */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, D, 1.0f, dW, D, BV, D, 0.0f, dZ, m);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, D, m, 1.0f, Z, m, dW, D, 0.0f, dBV, D);
    /* BV = Bm Vb */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, b, D, 1.0f, dBV, D, Vb, D, 0.0f, dBm, b);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b, D, m, 1.0f, Bm, b, dBV, D, 1.0f, dVb, D);
    /* Bm = softmax(s Qt Kbᵀ) */
    nys_softmax_back(dBm, Bm, m, b, D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, b, 1.0f, dBm, b, Kb, D, 0.0f, dQt, D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b, D, m, 1.0f, dBm, b, Qt, D, 1.0f, dKb, D);
    /* Z = pinv(A), A = softmax(s Qt Ktᵀ) */
    memset(dA, 0, m2 * sizeof(float));
    lowrank_pinv_backward(dA, pw, dZ, tr, A, m);
    nys_softmax_back(dA, A, m, m, D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, m, 1.0f, dA, m, Kt, D, 1.0f, dQt, D);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, D, m, 1.0f, dA, m, Qt, D, 1.0f, dKt, D);
    /* Qt, Kt = group means */
    for (int l = 0; l < m; l++)
        for (int j = 0; j < g; j++)
            for (int d = 0; d < D; d++) {
                size_t row = ((size_t)l * g + j) * D + d;
                dQb[row] += dQt[(size_t)l * D + d] / (float)g;
                dKb[row] += dKt[(size_t)l * D + d] / (float)g;
            }
}

/* ---- causal depthwise conv on V: o_t += Σ_{τ<K, τ≤t} w[τ] v_{t−τ} (one slice) ------------- */

static void nys_conv_forward(float *O, const float *V, const float *w, int T, int D, int K)
{
    for (int t = 0; t < T; t++)
        for (int tau = 0; tau < K && tau <= t; tau++)
            for (int d = 0; d < D; d++)
                O[(size_t)t * D + d] += w[tau] * V[(size_t)(t - tau) * D + d];
}

/* dV (T,D) +=, dw (K) += ; dO (T,D). */
static void nys_conv_backward(float *dV, float *dw, const float *dO, const float *V, const float *w, int T,
                              int D, int K)
{
    for (int t = 0; t < T; t++)
        for (int tau = 0; tau < K && tau <= t; tau++) {
            float s = 0;
            for (int d = 0; d < D; d++) {
                dV[(size_t)(t - tau) * D + d] += w[tau] * dO[(size_t)t * D + d];
                s += dO[(size_t)t * D + d] * V[(size_t)(t - tau) * D + d];
            }
            dw[tau] += s;
        }
}

/* ---- the compression and the conv: callbacks of lowrank_core (lowrank_common.h) ----------
 * xp is conv.weight (H,K) when conv > 0, else nothing; a slice's partial gradient g is the
 * conv kernel's of its head (K). */

static void nys_compress(const struct mixer *m, float *Kc, float *Vc, float *work, const float *Q,
                         const float *K, const float *V, const float *xp)
{
    (void)xp;
    const struct nys_cfg *cfg = m->cfg;
    nys_block_forward(Kc, Vc, work, Q, K, V, cfg->m, cfg->b, m->D, 0);
}

static void nys_compress_backward(const struct mixer *m, float *dQ, float *dK, float *dV, float *g,
                                  float *work, float *dKc, const float *dVc, const float *Kc, const float *Vc,
                                  const float *Q, const float *K, const float *V, const float *xp)
{
    (void)g, (void)Vc, (void)xp;
    const struct nys_cfg *cfg = m->cfg;
    int lm = cfg->m, D = m->D;
    /* Recompute the block with its pinv trace; the recomputed Kt, W (identical to the saved
     * ones) land in the work area's Kr, Wr slots. */
    nys_block_forward(work + (size_t)lm * D, work + 2 * (size_t)lm * D, work, Q, K, V, lm, cfg->b, D, 1);
    nys_block_backward(dQ, dK, dV, dKc, work, dVc, Kc, K, V, lm, cfg->b, D);
}

static void nys_reduce(const struct mixer *m, float *dxp, const float *g, int h)
{
    int Kw = ((const struct nys_cfg *)m->cfg)->conv;
    for (int t = 0; t < Kw; t++)
        dxp[(size_t)h * Kw + t] += g[t];
}

static void nys_add_forward(const struct mixer *m, float *O, const float *V, const float *xp, int h, int T)
{
    int Kw = ((const struct nys_cfg *)m->cfg)->conv;
    nys_conv_forward(O, V, xp + (size_t)h * Kw, T, m->D, Kw);
}

static void nys_add_backward(const struct mixer *m, float *dV, float *g, const float *dO, const float *V,
                             const float *xp, int h, int T)
{
    int Kw = ((const struct nys_cfg *)m->cfg)->conv;
    nys_conv_backward(dV, g, dO, V, xp + (size_t)h * Kw, T, m->D, Kw);
}

/* st: a ring of the last K values (K,D). */
static void nys_add_step(const struct mixer *m, float *o, float *st, const float *v, const float *xp, int h,
                         int t)
{
    int Kw = ((const struct nys_cfg *)m->cfg)->conv, D = m->D;
    memcpy(st + (size_t)(t % Kw) * D, v, D * sizeof(float));
    const float *wk = xp + (size_t)h * Kw;
    for (int tau = 0; tau < Kw && tau <= t; tau++)
        for (int d = 0; d < D; d++)
            o[d] += wk[tau] * st[(size_t)((t - tau) % Kw) * D + d];
}

static int nys_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    long lm, b, conv;
    if (mixer_kv_parse(&kv, "nystrom", args, err) != 0 ||
        mixer_kv_int(&kv, "nystrom", "m", 8, 1, NYS_M_MAX, &lm, err) != 0 ||
        mixer_kv_int(&kv, "nystrom", "b", 64, 1, 65536, &b, err) != 0 ||
        mixer_kv_int(&kv, "nystrom", "conv", 0, 0, 1024, &conv, err) != 0 ||
        mixer_kv_finish(&kv, "nystrom",
                        "m (landmarks per completed block), b (block length), "
                        "conv (causal depthwise conv kernel on V, 0 = off)",
                        err) != 0)
        return -1;
    if (b % lm != 0)
        return mx_errorf(err,
                         "mixer nystrom: m=%ld does not divide b=%ld: each of the m landmarks "
                         "is the mean of b/m consecutive positions; pick m among the divisors "
                         "of b (default m=8, b=64)",
                         lm, b);
    struct nys_cfg *cfg = mx_xcalloc(sizeof *cfg);
    cfg->m = (int)lm;
    cfg->b = (int)b;
    cfg->conv = (int)conv;
    cfg->map.b = (int)b;
    cfg->map.r = (int)lm;
    /* Landmark means (2·b·D), A and B scores (2·m·(m+b)·D), the 6-step pseudo-inverse
     * (~6·3·2·m³), W = A⁺ (B V) (2·m·b·D + 2·m²·D); the conv on V is counted per block too. */
    cfg->map.block_flops = 2.0 * b * m->D + 2.0 * lm * (lm + b) * m->D + 36.0 * lm * lm * lm +
                           2.0 * lm * b * m->D + 2.0 * lm * lm * m->D + 2.0 * conv * b * m->D;
    cfg->map.bias = logf((float)(b / lm)); /* log g: each landmark stands for g keys */
    cfg->map.compress_reads_q = 1;
    cfg->map.block_work = nys_block_floats((int)lm, (int)b, m->D);
    cfg->map.compress = nys_compress;
    cfg->map.compress_backward = nys_compress_backward;
    if (conv > 0) {
        cfg->map.slice_grad = (size_t)conv;
        cfg->map.add_state = (size_t)conv * m->D;
        cfg->map.reduce = nys_reduce;
        cfg->map.add_forward = nys_add_forward;
        cfg->map.add_backward = nys_add_backward;
        cfg->map.add_step = nys_add_step;
    }
    m->cfg = cfg;
    snprintf(m->spec, sizeof m->spec, "nystrom:m=%d,b=%d,conv=%d", cfg->m, cfg->b, cfg->conv);
    return 0;
}

static void nys_destroy(struct mixer *m)
{
    mx_free(m->cfg);
}

static int nys_tensors(const struct mixer *m, struct mx_param *out)
{
    const struct nys_cfg *cfg = m->cfg;
    int n = 0;
    size_t at = 0;
    attn_tensors_add(m, out, &n, &at);
    if (cfg->conv > 0)
        mx_param_add(out, &n, &at, "conv.weight", 2, m->H, cfg->conv, 1, 1);
    return n;
}

/* conv.weight N(0, 0.02) like the projections: the conv adds to the attention output, so it
 * starts as a small perturbation rather than the paper's default Conv2d init (±1/√K). */
static void nys_init(const struct mixer *m, float *params, struct mx_rng *rng)
{
    const struct nys_cfg *cfg = m->cfg;
    attn_init(m, params, rng);
    if (cfg->conv > 0)
        mx_rng_fill_normal(rng, params + attn_param_floats(m), (size_t)m->H * cfg->conv, 0.02f);
}

static const char *const nys_tests[] = {"nystrom:m=2,b=4", "nystrom:m=2,b=6,conv=3", "nystrom:m=1,b=5", NULL};

const struct mixer_ops attn_nystrom_ops = {
    ATTN_OPS("nystrom",
             "nystrom:m=8,b=64,conv=0 — causal block Nystromformer: exact attention in the own "
             "block of b, each completed block through its m landmarks (segment means) and a "
             "6-step iterative pseudo-inverse, one normaliser; conv=K adds a causal depthwise "
             "conv on V (paper: m=64 over the whole sequence, conv 33)",
             nys_tests, nys_parse, nys_destroy, nys_tensors, nys_init, lowrank_flops, &lowrank_core),
};
