/* lowrank_common.c — the low-rank attention core shared by linformer.c and nystrom.c
 * (lowrank_core: per slice, compress completed blocks through the mixer's callbacks, attend,
 * add its optional term; forward, backward, step), the block engine under it (exact attention
 * in the own block + compressed rows of completed blocks under one softmax) with its naive
 * reference and FLOP count, and the iterative Moore-Penrose pseudo-inverse with its backward.
 * Not a mixer, and no compression of its own: that is each mixer's callback. */
#include "attention/lowrank_common.h"

#include "attention/attn_kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---- FLOPs ---------------------------------------------------------------------------- */

void lowrank_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd)
{
    const struct lowrank_map *map = (const struct lowrank_map *)m->cfg;
    double pairs = 0;
    for (int t = 0; t < T; t++) /* own block up to t, then r rows per completed block */
        pairs += (double)(t % map->b + 1) + (double)(t / map->b) * map->r;
    double f, b;
    attn_pairs_flops(pairs * B * m->H, m->D, &f, &b);
    double comp = (double)B * m->H * lowrank_n_past(T, map->b) * map->block_flops;
    *fwd = f + comp;
    *bwd = b + 2.5 * comp;
}

/* ---- the low-rank core ------------------------------------------------------------------- */

static const struct lowrank_map *map_of(const struct mixer *m)
{
    return (const struct lowrank_map *)m->cfg;
}

static size_t zmax(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* Compressed rows per slice at length T. */
static size_t lowrank_R(const struct lowrank_map *map, int T)
{
    return (size_t)lowrank_n_past(T, map->b) * map->r;
}

static size_t lowrank_saved_floats(const struct mixer *m, int B, int T)
{
    return (size_t)B * m->H * (T + 2 * lowrank_R(map_of(m), T) * m->D);
}

/* Per slice: forward max(engine, block); backward dKc, dVc (R,D), g, max(engine, block). */
static size_t lowrank_slice_fwd(const struct lowrank_map *map, int T)
{
    return zmax(lowrank_attend_work_fwd(T, map->b, map->r), map->block_work);
}

static size_t lowrank_slice_bwd(const struct lowrank_map *map, int T, int D)
{
    return 2 * lowrank_R(map, T) * D + map->slice_grad +
           zmax(lowrank_attend_work_bwd(T, map->b, map->r), map->block_work);
}

static size_t lowrank_work_floats(const struct mixer *m, int B, int T)
{
    const struct lowrank_map *map = map_of(m);
    return (size_t)B * m->H * zmax(lowrank_slice_fwd(map, T), lowrank_slice_bwd(map, T, m->D));
}

static void lowrank_core_forward(const struct mixer *m, float *o, float *saved, float *work, const float *q,
                                 const float *k, const float *v, const float *xp, int B, int T)
{
    const struct lowrank_map *map = map_of(m);
    int D = m->D, b = map->b, r = map->r, np = lowrank_n_past(T, b), BH = B * m->H;
    size_t R = lowrank_R(map, T), TD = (size_t)T * D, ws = lowrank_slice_fwd(map, T);
    float *lse = saved, *Kc = lse + (size_t)BH * T, *Vc = Kc + (size_t)BH * R * D;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T,D) */
        float *Kcs = Kc + bh * R * D, *Vcs = Vc + bh * R * D;             /* (R,D) */
        float *sw = work + bh * ws;
        for (int c = 0; c < np; c++) {
            size_t in = (size_t)c * b * D, out = (size_t)c * r * D;
            map->compress(m, Kcs + out, Vcs + out, sw, Q + in, K + in, V + in, xp);
        }
        lowrank_attend_forward(o + bh * TD, lse + (size_t)bh * T, sw, Q, K, V, Kcs, Vcs, map->bias, T, D, b,
                               r);
        if (map->add_forward)
            map->add_forward(m, o + bh * TD, V, xp, bh % m->H, T);
    }
}

/* dq, dk, dv OVERWRITTEN (zeroed here, then the engine and the callbacks accumulate); dxp +=. */
static void lowrank_core_backward(const struct mixer *m, float *dq, float *dk, float *dv, float *dxp,
                                  float *work, const float *dout, const float *o, const float *saved,
                                  const float *q, const float *k, const float *v, const float *xp, int B,
                                  int T)
{
    (void)o;
    const struct lowrank_map *map = map_of(m);
    size_t n_all = (size_t)B * m->H * T * m->D;
    memset(dq, 0, n_all * sizeof(float));
    memset(dk, 0, n_all * sizeof(float));
    memset(dv, 0, n_all * sizeof(float));
    int D = m->D, b = map->b, r = map->r, np = lowrank_n_past(T, b), BH = B * m->H;
    size_t R = lowrank_R(map, T), TD = (size_t)T * D, ws = lowrank_slice_bwd(map, T, D);
    const float *lse = saved, *Kc = lse + (size_t)BH * T, *Vc = Kc + (size_t)BH * R * D;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < BH; bh++) {
        const float *Q = q + bh * TD, *K = k + bh * TD, *V = v + bh * TD; /* (T,D) */
        float *dQ = dq + bh * TD, *dK = dk + bh * TD, *dV = dv + bh * TD;
        const float *Kcs = Kc + bh * R * D, *Vcs = Vc + bh * R * D; /* (R,D) */
        float *dKc = work + bh * ws, *dVc = dKc + R * D;            /* (R,D) */
        float *g = dVc + R * D, *eng = g + map->slice_grad;
        memset(dKc, 0, (2 * R * D + map->slice_grad) * sizeof(float));
        lowrank_attend_backward(dQ, dK, dV, dKc, dVc, eng, dout + bh * TD, lse + (size_t)bh * T, Q, K, V, Kcs,
                                Vcs, map->bias, T, D, b, r);
        for (int c = 0; c < np; c++) {
            size_t in = (size_t)c * b * D, cr = (size_t)c * r * D;
            map->compress_backward(m, dQ + in, dK + in, dV + in, g, eng, dKc + cr, dVc + cr, Kcs + cr,
                                   Vcs + cr, Q + in, K + in, V + in, xp);
        }
        if (map->add_backward)
            map->add_backward(m, dV, g, dout + bh * TD, V, xp, bh % m->H, T);
    }
    if (dxp && map->slice_grad > 0)
        for (int bh = 0; bh < BH; bh++)
            map->reduce(m, dxp, work + bh * ws + 2 * R * D, bh % m->H);
}

static size_t lowrank_head_state(const struct mixer *m)
{
    const struct lowrank_map *map = map_of(m);
    size_t R = lowrank_R(map, m->T_max), bD = (size_t)map->b * m->D;
    return 2 * R * m->D + (map->compress_reads_q ? 3 : 2) * bD + R + map->b + map->add_state;
}

static size_t lowrank_state_floats(const struct mixer *m)
{
    return (size_t)m->H * lowrank_head_state(m) + map_of(m)->block_work;
}

static void lowrank_core_step(const struct mixer *m, float *o_t, float *state, const float *q_t,
                              const float *k_t, const float *v_t, const float *xp, int t)
{
    const struct lowrank_map *map = map_of(m);
    int D = m->D, b = map->b, r = map->r, n = t / b, pos = t % b;
    int np = lowrank_n_past(m->T_max, b);
    size_t R = lowrank_R(map, m->T_max), hs = lowrank_head_state(m), bD = (size_t)b * D;
    float *bwork = state + (size_t)m->H * hs;
    for (int h = 0; h < m->H; h++) {
        float *Kc = state + h * hs, *Vc = Kc + R * D; /* (R,D) */
        float *Qb = Vc + R * D, *Kb = Qb + (map->compress_reads_q ? bD : 0), *Vb = Kb + bD;
        float *s = Vb + bD, *st = s + R + b; /* (R+b), add_state */
        if (map->compress_reads_q)
            memcpy(Qb + (size_t)pos * D, q_t + (size_t)h * D, D * sizeof(float));
        memcpy(Kb + (size_t)pos * D, k_t + (size_t)h * D, D * sizeof(float));
        memcpy(Vb + (size_t)pos * D, v_t + (size_t)h * D, D * sizeof(float));
        float *o = o_t + (size_t)h * D;
        lowrank_attend_row(o, s, q_t + (size_t)h * D, Kc, Vc, n * r, Kb, Vb, pos + 1, map->bias, D);
        if (map->add_step)
            map->add_step(m, o, st, v_t + (size_t)h * D, xp, h, t);
        if (pos == b - 1 && n < np)
            map->compress(m, Kc + (size_t)n * r * D, Vc + (size_t)n * r * D, bwork, Qb, Kb, Vb, xp);
    }
}

const struct attn_core lowrank_core = {
    .saved_floats = lowrank_saved_floats,
    .work_floats = lowrank_work_floats,
    .forward = lowrank_core_forward,
    .backward = lowrank_core_backward,
    .state_floats = lowrank_state_floats,
    .step = lowrank_core_step,
};

/* ---- the block engine ---------------------------------------------------------------------
 * Per query block n (rows q0 .. q0+nq-1) one score matrix S (nq, Rn + nq), Rn = n*r:
 * columns 0..Rn-1 the compressed rows, Rn.. the own block (causal mask: column Rn+jj is
 * visible to row ii iff jj <= ii). Two sgemms build it, two more apply it. */

static int imin(int a, int b)
{
    return a < b ? a : b;
}

size_t lowrank_attend_work_fwd(int T, int b, int r)
{
    size_t bq = (size_t)imin(b, T), R = (size_t)lowrank_n_past(T, b) * r;
    return bq * (R + bq);
}

size_t lowrank_attend_work_bwd(int T, int b, int r)
{
    return 2 * lowrank_attend_work_fwd(T, b, r);
}

/* S (nq, ld) overwritten with scaled scores (+bias on the compressed columns). */
static void block_scores(float *S, const float *Qn, const float *Kc, const float *Kn, int Rn, int nq, int D,
                         float scale, float bias)
{
    int ld = Rn + nq;
    if (Rn > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, Rn, D, scale, Qn, D, Kc, D, 0.0f, S, ld);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nq, D, scale, Qn, D, Kn, D, 0.0f, S + Rn, ld);
    if (bias != 0.0f)
        for (int ii = 0; ii < nq; ii++)
            for (int l = 0; l < Rn; l++)
                S[(size_t)ii * ld + l] += bias;
}

/* Scores -> probabilities in place, masked entries exactly 0. Forward (compute_lse = 1):
 * P = exp(S − max) / sum, one exp per score, and lse = max + log(sum) is saved. Backward
 * recomputes P = exp(S − lse) from the saved lse: the same numbers up to an ulp, which the
 * gradient does not notice, and no second pass for the max. */
static void block_probs(float *S, float *lse, int compute_lse, int Rn, int nq)
{
    const struct attn_kernels *ak = attn_kernels();
    int ld = Rn + nq;
    for (int ii = 0; ii < nq; ii++) {
        float *row = S + (size_t)ii * ld;
        size_t nvis = (size_t)Rn + ii + 1;
        if (compute_lse) {
            float mx = ak->max(row, -INFINITY, nvis);
            float sum = ak->exp_sum(row, row, mx, nvis);
            lse[ii] = mx + logf(sum);
            ak->scale(row, 1.0f / sum, nvis);
        } else {
            ak->exp_sum(row, row, lse[ii], nvis);
        }
        for (size_t c = nvis; c < (size_t)ld; c++)
            row[c] = 0.0f;
    }
}

void lowrank_attend_forward(float *O, float *lse, float *work, const float *Q, const float *K, const float *V,
                            const float *Kc, const float *Vc, float bias, int T, int D, int b, int r)
{
    const float scale = 1.0f / sqrtf((float)D);
    for (int q0 = 0, n = 0; q0 < T; q0 += b, n++) {
        int nq = imin(b, T - q0), Rn = n * r, ld = Rn + nq;
        const float *Qn = Q + (size_t)q0 * D, *Kn = K + (size_t)q0 * D, *Vn = V + (size_t)q0 * D;
        float *S = work; /* (nq, ld) */
        block_scores(S, Qn, Kc, Kn, Rn, nq, D, scale, bias);
        block_probs(S, lse + q0, 1, Rn, nq);
        float *On = O + (size_t)q0 * D;
        if (Rn > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, D, Rn, 1.0f, S, ld, Vc, D, 0.0f, On,
                        D);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, D, nq, 1.0f, S + Rn, ld, Vn, D,
                    Rn > 0 ? 1.0f : 0.0f, On, D);
    }
}

void lowrank_attend_backward(float *dQ, float *dK, float *dV, float *dKc, float *dVc, float *work,
                             const float *dO, const float *lse, const float *Q, const float *K,
                             const float *V, const float *Kc, const float *Vc, float bias, int T, int D,
                             int b, int r)
{
    const float scale = 1.0f / sqrtf((float)D);
    const struct attn_kernels *ak = attn_kernels();
    size_t half = lowrank_attend_work_fwd(T, b, r);
    for (int q0 = 0, n = 0; q0 < T; q0 += b, n++) {
        int nq = imin(b, T - q0), Rn = n * r, ld = Rn + nq;
        const float *Qn = Q + (size_t)q0 * D, *Kn = K + (size_t)q0 * D, *Vn = V + (size_t)q0 * D;
        const float *dOn = dO + (size_t)q0 * D;
        float *P = work, *dS = work + half; /* (nq, ld) each */
        block_scores(P, Qn, Kc, Kn, Rn, nq, D, scale, bias);
        block_probs(P, (float *)(lse + q0), 0, Rn, nq);
        /* dP = dO [Vc; Vn]ᵀ */
        if (Rn > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, Rn, D, 1.0f, dOn, D, Vc, D, 0.0f, dS,
                        ld);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nq, D, 1.0f, dOn, D, Vn, D, 0.0f, dS + Rn,
                    ld);
        /* Softmax backward: dS = P ⊙ (dP − Σ P⊙dP) · scale. WHY Σ P⊙dP instead of dO·O: it
         * needs no saved output (the core's o may carry additions, e.g. Nyström's conv). */
        for (int ii = 0; ii < nq; ii++) {
            const float *p = P + (size_t)ii * ld;
            float *d = dS + (size_t)ii * ld;
            ak->softmax_grad(d, p, ak->dot(p, d, (size_t)ld), scale, (size_t)ld);
        }
        float *dQn = dQ + (size_t)q0 * D, *dKn = dK + (size_t)q0 * D, *dVn = dV + (size_t)q0 * D;
        if (Rn > 0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, D, Rn, 1.0f, dS, ld, Kc, D, 1.0f, dQn,
                        D);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Rn, D, nq, 1.0f, dS, ld, Qn, D, 1.0f, dKc,
                        D);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Rn, D, nq, 1.0f, P, ld, dOn, D, 1.0f, dVc,
                        D);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, D, nq, 1.0f, dS + Rn, ld, Kn, D, 1.0f, dQn,
                    D);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nq, D, nq, 1.0f, dS + Rn, ld, Qn, D, 1.0f, dKn,
                    D);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nq, D, nq, 1.0f, P + Rn, ld, dOn, D, 1.0f, dVn,
                    D);
    }
}

/* ---- naive reference ----------------------------------------------------------------------
 * Row by row: visible item c of row i is compressed row c (c < n*r) or key n*b + (c - n*r). */

static double ref_score(const float *q, const float *key, int D, double scale)
{
    double s = 0;
    for (int d = 0; d < D; d++)
        s += (double)q[d] * key[d];
    return s * scale;
}

static void ref_item(int c, int Rn, int q0, const float *K, const float *V, const float *Kc, const float *Vc,
                     int D, const float **key, const float **val)
{
    if (c < Rn) {
        *key = Kc + (size_t)c * D;
        *val = Vc + (size_t)c * D;
    } else {
        *key = K + (size_t)(q0 + c - Rn) * D;
        *val = V + (size_t)(q0 + c - Rn) * D;
    }
}

void lowrank_attend_ref_forward(float *O, float *lse, const float *Q, const float *K, const float *V,
                                const float *Kc, const float *Vc, float bias, int T, int D, int b, int r)
{
    const double scale = 1.0 / sqrt((double)D);
    for (int i = 0; i < T; i++) {
        int n = i / b, q0 = n * b, Rn = n * r, nvis = Rn + (i - q0) + 1;
        const float *q = Q + (size_t)i * D, *key, *val;
        double mx = -INFINITY, sum = 0;
        for (int c = 0; c < nvis; c++) {
            ref_item(c, Rn, q0, K, V, Kc, Vc, D, &key, &val);
            double s = ref_score(q, key, D, scale) + (c < Rn ? bias : 0.0);
            mx = s > mx ? s : mx;
        }
        for (int c = 0; c < nvis; c++) {
            ref_item(c, Rn, q0, K, V, Kc, Vc, D, &key, &val);
            sum += exp(ref_score(q, key, D, scale) + (c < Rn ? bias : 0.0) - mx);
        }
        double l = mx + log(sum);
        lse[i] = (float)l;
        for (int d = 0; d < D; d++) {
            double acc = 0;
            for (int c = 0; c < nvis; c++) {
                ref_item(c, Rn, q0, K, V, Kc, Vc, D, &key, &val);
                acc += exp(ref_score(q, key, D, scale) + (c < Rn ? bias : 0.0) - l) * val[d];
            }
            O[(size_t)i * D + d] = (float)acc;
        }
    }
}

void lowrank_attend_ref_backward(float *dQ, float *dK, float *dV, float *dKc, float *dVc, const float *dO,
                                 const float *lse, const float *Q, const float *K, const float *V,
                                 const float *Kc, const float *Vc, float bias, int T, int D, int b, int r)
{
    const double scale = 1.0 / sqrt((double)D);
    for (int i = 0; i < T; i++) {
        int n = i / b, q0 = n * b, Rn = n * r, nvis = Rn + (i - q0) + 1;
        const float *q = Q + (size_t)i * D, *g = dO + (size_t)i * D, *key, *val;
        double Di = 0;
        for (int c = 0; c < nvis; c++) {
            ref_item(c, Rn, q0, K, V, Kc, Vc, D, &key, &val);
            double p = exp(ref_score(q, key, D, scale) + (c < Rn ? bias : 0.0) - lse[i]);
            Di += p * ref_score(g, val, D, 1.0);
        }
        for (int c = 0; c < nvis; c++) {
            ref_item(c, Rn, q0, K, V, Kc, Vc, D, &key, &val);
            double p = exp(ref_score(q, key, D, scale) + (c < Rn ? bias : 0.0) - lse[i]);
            double ds = p * (ref_score(g, val, D, 1.0) - Di) * scale;
            float *dkey = c < Rn ? dKc + (size_t)c * D : dK + (size_t)(q0 + c - Rn) * D;
            float *dval = c < Rn ? dVc + (size_t)c * D : dV + (size_t)(q0 + c - Rn) * D;
            for (int d = 0; d < D; d++) {
                dQ[(size_t)i * D + d] += (float)(ds * key[d]);
                dkey[d] += (float)(ds * q[d]);
                dval[d] += (float)(p * g[d]);
            }
        }
    }
}

void lowrank_attend_row(float *o, float *s, const float *q, const float *Kc, const float *Vc, int R,
                        const float *Kcur, const float *Vcur, int ncur, float bias, int D)
{
    const float scale = 1.0f / sqrtf((float)D);
    int nvis = R + ncur;
    float mx = -INFINITY;
    for (int c = 0; c < nvis; c++) {
        const float *key = c < R ? Kc + (size_t)c * D : Kcur + (size_t)(c - R) * D;
        float d = 0;
        for (int e = 0; e < D; e++)
            d += q[e] * key[e];
        s[c] = d * scale + (c < R ? bias : 0.0f);
        mx = s[c] > mx ? s[c] : mx;
    }
    float sum = 0;
    for (int c = 0; c < nvis; c++) {
        s[c] = expf(s[c] - mx);
        sum += s[c];
    }
    memset(o, 0, (size_t)D * sizeof(float));
    for (int c = 0; c < nvis; c++) {
        const float *val = c < R ? Vc + (size_t)c * D : Vcur + (size_t)(c - R) * D;
        float p = s[c] / sum;
        for (int e = 0; e < D; e++)
            o[e] += p * val[e];
    }
}

/* ---- iterative pseudo-inverse --------------------------------------------------------------
 * trace per iteration k: Z_k, X = A Z_k, P1 = 7I − X, P2 = 15I − X P1, P3 = 13I − X P2;
 * Z_{k+1} = ¼ Z_k P3. */

size_t lowrank_pinv_trace_floats(int m)
{
    return 5 * (size_t)LOWRANK_PINV_ITERS * m * m;
}

static void mm(float *C, const float *A, const float *B, int m, int ta, int tb, float alpha, float beta)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, m, m, alpha,
                A, m, B, m, beta, C, m);
}

static void add_diag(float *X, float v, int m)
{
    for (int i = 0; i < m; i++)
        X[(size_t)i * m + i] += v;
}

/* ‖A‖₁ (max column sum of |A|) and ‖A‖∞ (max row sum), with their first argmax. */
static void pinv_norms(const float *A, int m, double *n1, int *j1, double *ninf, int *i1)
{
    *n1 = -1;
    *ninf = -1;
    for (int j = 0; j < m; j++) {
        double s = 0;
        for (int i = 0; i < m; i++)
            s += fabs((double)A[(size_t)i * m + j]);
        if (s > *n1) {
            *n1 = s;
            *j1 = j;
        }
    }
    for (int i = 0; i < m; i++) {
        double s = 0;
        for (int j = 0; j < m; j++)
            s += fabs((double)A[(size_t)i * m + j]);
        if (s > *ninf) {
            *ninf = s;
            *i1 = i;
        }
    }
}

void lowrank_pinv_forward(float *Z, float *trace, float *work, const float *A, int m)
{
    size_t mm2 = (size_t)m * m;
    double n1, ninf;
    int j1, i1;
    pinv_norms(A, m, &n1, &j1, &ninf, &i1);
    /* WHY this start: with c = 1/(‖A‖₁‖A‖∞) ≤ 1/σ_max², every eigenvalue of A Z0 = c A Aᵀ lies
     * in (0, 1], where the iteration converges (the paper's initialisation). */
    float c = (float)(1.0 / (n1 * ninf));
    float *Zk = trace ? trace : work;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++)
            Zk[(size_t)i * m + j] = c * A[(size_t)j * m + i];
    for (int k = 0; k < LOWRANK_PINV_ITERS; k++) {
        float *X, *P1, *P2, *P3, *Zn;
        if (trace) {
            X = Zk + mm2;
            P1 = X + mm2;
            P2 = P1 + mm2;
            P3 = P2 + mm2;
            Zn = k + 1 < LOWRANK_PINV_ITERS ? P3 + mm2 : Z;
        } else {
            /* work: Zk, X, P1|P3, P2, alternating Zk between slot 0 and Z. */
            X = work + mm2;
            P1 = X + mm2;
            P2 = P1 + mm2;
            P3 = P1;
            Zn = Zk == work ? Z : work;
        }
        mm(X, A, Zk, m, 0, 0, 1.0f, 0.0f);
        for (size_t e = 0; e < mm2; e++)
            P1[e] = -X[e];
        add_diag(P1, 7.0f, m);
        mm(P2, X, P1, m, 0, 0, -1.0f, 0.0f);
        add_diag(P2, 15.0f, m);
        mm(P3, X, P2, m, 0, 0, -1.0f, 0.0f);
        add_diag(P3, 13.0f, m);
        mm(Zn, Zk, P3, m, 0, 0, 0.25f, 0.0f);
        Zk = Zn;
    }
    if (Zk != Z)
        memcpy(Z, Zk, mm2 * sizeof(float));
}

void lowrank_pinv_backward(float *dA, float *work, const float *dZ, const float *trace, const float *A, int m)
{
    size_t mm2 = (size_t)m * m;
    float *dZn = work, *dZk = work + mm2, *dP = dZk + mm2, *dX = dP + mm2;
    memcpy(dZn, dZ, mm2 * sizeof(float));
    for (int k = LOWRANK_PINV_ITERS - 1; k >= 0; k--) {
        const float *Zk = trace + 5 * mm2 * k, *X = Zk + mm2, *P1 = X + mm2, *P2 = P1 + mm2, *P3 = P2 + mm2;
        mm(dZk, dZn, P3, m, 0, 1, 0.25f, 0.0f); /* Z' = ¼ Z P3 */
        mm(dP, Zk, dZn, m, 1, 0, 0.25f, 0.0f);  /* dP3 */
        mm(dX, dP, P2, m, 0, 1, -1.0f, 0.0f);   /* P3 = 13I − X P2 */
        mm(dZn, X, dP, m, 1, 0, -1.0f, 0.0f);   /* dP2 (dZn is spent) */
        mm(dX, dZn, P1, m, 0, 1, -1.0f, 1.0f);  /* P2 = 15I − X P1 */
        mm(dP, X, dZn, m, 1, 0, -1.0f, 0.0f);   /* dP1 */
        for (size_t e = 0; e < mm2; e++)        /* P1 = 7I − X */
            dX[e] -= dP[e];
        mm(dA, dX, Zk, m, 0, 1, 1.0f, 1.0f); /* X = A Z_k */
        mm(dZk, A, dX, m, 1, 0, 1.0f, 1.0f);
        float *t = dZn;
        dZn = dZk;
        dZk = t;
    }
    /* Z0 = c Aᵀ, c = 1/(‖A‖₁‖A‖∞). */
    double n1, ninf;
    int j1, i1;
    pinv_norms(A, m, &n1, &j1, &ninf, &i1);
    double c = 1.0 / (n1 * ninf), dc = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) {
            dA[(size_t)j * m + i] += (float)c * dZn[(size_t)i * m + j];
            dc += (double)dZn[(size_t)i * m + j] * A[(size_t)j * m + i];
        }
    double dn1 = -dc * c / n1, dninf = -dc * c / ninf;
    for (int i = 0; i < m; i++) {
        float a = A[(size_t)i * m + j1];
        dA[(size_t)i * m + j1] += (float)(a > 0 ? dn1 : a < 0 ? -dn1 : 0);
    }
    for (int j = 0; j < m; j++) {
        float a = A[(size_t)i1 * m + j];
        dA[(size_t)i1 * m + j] += (float)(a > 0 ? dninf : a < 0 ? -dninf : 0);
    }
}
