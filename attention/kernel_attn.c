/* kernel_attn.c — the chunked causal prefix-sum engine of the kernel mixers (linear, performer):
 * o_t = φq_t·S_t / (φq_t·z_t + ε) with S_t = Σ_{j≤t} φk_j v_jᵀ, z_t = Σ_{j≤t} φk_j, computed per
 * chunk of c rows with sgemm (masked intra-chunk product + the state of earlier chunks), the
 * backward by recomputing the chunk states, and the O(1)-per-token recurrent step, exported as
 * one attn_core (kattn_core). It is not a feature map (each mixer brings its own) and never
 * forms a per-token D x D state.
 *
 * Notation per (b,h): Φq, Φk (T,F) the features, V' = [V | 1] (T,D+1) so one product carries
 * the numerator (columns 0..D-1) and the denominator (column D); S (F,D+1) the running state.
 *
 * Causal log-scales (scaled maps only). Exp-type features overflow float unless stabilised. A
 * per-query constant cancels between numerator and denominator, but a per-KEY constant does
 * not (it reweights the keys), and a max over all keys would let the future leak in. So each
 * key j is held relative to g_j = max_{i≤j} lscale_i, the running max of the key log-scales
 * (an online-softmax-style running maximum): Φk_j = φk_j·exp(-g_j) ≤ 1. Query t sees every key
 * j ≤ t through the factor exp(g_j - g_t) ≤ 1, i.e. all its terms in the common unit exp(-g_t),
 * a per-query constant that cancels. The state S after a chunk is kept in the unit of its last
 * key and rescaled by exp(g_old - g_new) ≤ 1 as the running max grows. Every factor is ≤ 1:
 * nothing overflows, and g_t uses keys ≤ t only, so causality is exact bit for bit. */
#include "attention/kernel_attn.h"

#include "attention/attn_kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---- workspace ------------------------------------------------------------------------- */

struct kslot {
    float *qf, *kf, *dqf, *dkf, *ks, *tmp; /* (L,F) */
    float *qr, *kr, *krs, *dqr, *dkr;      /* (L,F), rotary features only (else empty) */
    float *A, *P, *A0;                     /* (L,L); A0 rotary only */
    float *vp, *nm, *dvp, *gs;             /* (L,D+1) */
    float *S, *dS;                         /* (F,D+1) */
    float *states;                         /* (nC,F,D+1): the state before each chunk */
    float *r, *g, *e;                      /* (L) */
};

/* The same binding code counts (base NULL) and hands out pointers. */
static size_t slot_bind(struct kslot *s, float *base, size_t cap, int L, int F, int E, int nC, int rope)
{
    struct mx_arena a;
    mx_arena_begin(&a, base, cap);
    size_t LF = (size_t)L * F, LE = (size_t)L * E, FE = (size_t)F * E, LFr = rope ? LF : 0;
    s->qf = mx_arena_floats(&a, LF);
    s->kf = mx_arena_floats(&a, LF);
    s->dqf = mx_arena_floats(&a, LF);
    s->dkf = mx_arena_floats(&a, LF);
    s->ks = mx_arena_floats(&a, LF);
    s->tmp = mx_arena_floats(&a, LF);
    s->qr = mx_arena_floats(&a, LFr);
    s->kr = mx_arena_floats(&a, LFr);
    s->krs = mx_arena_floats(&a, LFr);
    s->dqr = mx_arena_floats(&a, LFr);
    s->dkr = mx_arena_floats(&a, LFr);
    s->A = mx_arena_floats(&a, (size_t)L * L);
    s->P = mx_arena_floats(&a, (size_t)L * L);
    s->A0 = mx_arena_floats(&a, rope ? (size_t)L * L : 0);
    s->vp = mx_arena_floats(&a, LE);
    s->nm = mx_arena_floats(&a, LE);
    s->dvp = mx_arena_floats(&a, LE);
    s->gs = mx_arena_floats(&a, LE);
    s->S = mx_arena_floats(&a, FE);
    s->dS = mx_arena_floats(&a, FE);
    s->states = mx_arena_floats(&a, (size_t)nC * FE);
    s->r = mx_arena_floats(&a, (size_t)L);
    s->g = mx_arena_floats(&a, (size_t)L);
    s->e = mx_arena_floats(&a, (size_t)L);
    return a.used;
}

static int n_chunks(const struct kattn_map *map, int T)
{
    return (T + map->chunk - 1) / map->chunk;
}

static size_t slot_floats(const struct kattn_map *map, int T, int D)
{
    struct kslot s;
    return slot_bind(&s, NULL, 0, map->chunk, map->F, D + 1, n_chunks(map, T), map->frope != NULL);
}

/* The engine's struct is the first member of the mixer's cfg (attn_common.h); prepare brings
 * any per-step state of the map (performer's draw) up to date, outside parallel regions. */
static const struct kattn_map *map_of(const struct mixer *m)
{
    const struct kattn_map *map = (const struct kattn_map *)m->cfg;
    if (map->prepare)
        map->prepare(m);
    return map;
}

size_t kattn_saved_floats(const struct mixer *m, int B, int T)
{
    const struct kattn_map *map = (const struct kattn_map *)m->cfg;
    return (size_t)B * m->H * T * (map->scaled ? 2 : 1);
}

size_t kattn_work_floats(const struct mixer *m, int B, int T)
{
    return (size_t)B * m->H * slot_floats((const struct kattn_map *)m->cfg, T, m->D);
}

/* ---- per-chunk pieces ---------------------------------------------------------------------- */

/* Features of chunk rows [t0, t0+n): qf, kf (n,F), vp (n,D+1) = [v | 1], and for scaled maps
 * the causal key units g (n) with kf rescaled to them. g_in: the saved g of these rows (backward)
 * or NULL to compute the running max from g_prev (forward). */
static void chunk_features(const struct kattn_map *map, struct kslot *s, const float *Q, const float *K,
                           const float *V, const float *g_in, float g_prev, int t0, int n, int D)
{
    int F = map->F, E = D + 1;
    if (Q) /* NULL: keys and values only (the state sweep of backward) */
        map->forward(map->ctx, s->qf, NULL, Q + (size_t)t0 * D, n, D, 0, s->tmp);
    map->forward(map->ctx, s->kf, s->r, K + (size_t)t0 * D, n, D, 1, s->tmp);
    for (int i = 0; i < n; i++) {
        memcpy(s->vp + (size_t)i * E, V + ((size_t)t0 + i) * D, (size_t)D * sizeof(float));
        s->vp[(size_t)i * E + D] = 1.0f;
    }
    if (!map->scaled)
        return;
    const struct attn_kernels *ak = attn_kernels();
    float gc = g_prev;
    for (int i = 0; i < n; i++) {
        if (g_in)
            gc = g_in[i];
        else
            gc = (t0 + i == 0 || s->r[i] > gc) ? s->r[i] : gc;
        s->g[i] = gc;
        if (s->r[i] != gc)
            ak->scale(s->kf + (size_t)i * F, expf(s->r[i] - gc), (size_t)F); /* a factor <= 1 */
    }
}

/* M (n,n) in place: zero above the diagonal (causal mask) and, for scaled maps, multiply entry
 * (i,j), j <= i, by exp(g_j - g_i) <= 1 (bring key j into query i's unit). The masked entries
 * are assigned, not multiplied, so a future inf or NaN cannot reach row i. */
static void mask_scale(const struct kattn_map *map, float *M, const float *g, int n)
{
    const struct attn_kernels *ak = attn_kernels();
    for (int i = 0; i < n; i++) {
        float *row = M + (size_t)i * n;
        if (map->scaled) /* exp(0) is exactly 1: keys already in row i's unit stay as they are */
            ak->mul_exp(row, g, g[i], (size_t)i);
        for (int j = i + 1; j < n; j++)
            row[j] = 0.0f;
    }
}

/* dst (n,cols) = src with row i scaled by f[i] (the SIMD row kernel: attn_kernels.h). */
static void scale_rows(float *dst, const float *src, const float *f, int n, int cols)
{
    const struct attn_kernels *ak = attn_kernels();
    for (int i = 0; i < n; i++)
        ak->scale_to(dst + (size_t)i * cols, src + (size_t)i * cols, f[i], (size_t)cols);
}

static void scale_all(float *x, size_t n, float f)
{
    attn_kernels()->scale(x, f, n);
}

/* ---- forward ------------------------------------------------------------------------------- */

static void forward_bh(const struct kattn_map *map, struct kslot *s, float *O, float *den, float *gsave,
                       const float *Q, const float *K, const float *V, int T, int D)
{
    const int F = map->F, E = D + 1, L = map->chunk;
    memset(s->S, 0, (size_t)F * E * sizeof(float));
    float g_prev = 0.0f;
    for (int t0 = 0; t0 < T; t0 += L) {
        int n = T - t0 < L ? T - t0 : L;
        chunk_features(map, s, Q, K, V, NULL, g_prev, t0, n, D);
        /* Intra-chunk: nm = (Φq Φkᵀ ∘ causal mask) V'. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, F, 1.0f, s->qf, F, s->kf, F, 0.0f, s->A,
                    n);
        mask_scale(map, s->A, s->g, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, E, n, 1.0f, s->A, n, s->vp, E, 0.0f, s->nm,
                    E);
        /* Inter-chunk: nm += diag(exp(g_prev - g_i)) Φq S. */
        if (t0 > 0) {
            if (map->scaled) {
                for (int i = 0; i < n; i++)
                    s->e[i] = expf(g_prev - s->g[i]);
                scale_rows(s->qf, s->qf, s->e, n, F);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, E, F, 1.0f, s->qf, F, s->S, E, 1.0f,
                        s->nm, E);
        }
        for (int i = 0; i < n; i++) {
            const float *nr = s->nm + (size_t)i * E;
            attn_kernels()->scale_to(O + ((size_t)t0 + i) * D, nr, 1.0f / (nr[D] + map->eps), (size_t)D);
            den[t0 + i] = nr[D];
            if (gsave)
                gsave[t0 + i] = s->g[i];
        }
        if (t0 + n >= T)
            break;
        /* State: S = exp(g_prev - g_end) S + (diag(exp(g_j - g_end)) Φk)ᵀ V'. */
        const float *kf = s->kf;
        if (map->scaled) {
            float g_end = s->g[n - 1];
            if (t0 > 0 && g_prev != g_end)
                scale_all(s->S, (size_t)F * E, expf(g_prev - g_end));
            for (int i = 0; i < n; i++)
                s->e[i] = expf(s->g[i] - g_end);
            scale_rows(s->ks, s->kf, s->e, n, F);
            kf = s->ks;
            g_prev = g_end;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, E, n, 1.0f, kf, F, s->vp, E, 1.0f, s->S, E);
    }
}

/* ---- rotary features (RoFormer §3.3) ----------------------------------------------------------
 * With map->frope the numerator uses R_t φq_t and R_j φk_j (the features' channel pairs rotated
 * by position, attn_rope_apply on F-wide rows), the denominator φq_t and φk_j. The state keeps
 * both in one (F,D+1) block: columns 0..D-1 the rotated Σ R_jφk_j v_jᵀ, column D the plain
 * Σ φk_j. The rotation is linear, so it commutes with the per-key exp factors of scaled maps:
 * the rotated keys are the rotated g-scaled keys. Only the exact-rotation identity
 * R_tᵀR_j = R_{j-t} makes the numerator's scores relative; the engine never forms it. */

/* dst (n,F) = src rows rotated to positions t0.. (inverse: rotated back). */
static void rot_rows(float *dst, const float *src, const float *tab, int t0, int n, int F, int inverse)
{
    if (dst != src)
        memcpy(dst, src, (size_t)n * F * sizeof(float));
    attn_rope_apply(dst, tab, 1, n, F, t0, inverse);
}

/* The state after a chunk, rotary form: S = a S + [krsᵀ V | ksᵀ 1] with krs, ks the rows of kr,
 * kf scaled by exp(g_i - g_end) (scaled maps). s->vp's column D holds the ones. */
static void rope_state_update(const struct kattn_map *map, struct kslot *s, float *S, float g_prev, int first,
                              int n, int D)
{
    const int F = map->F, E = D + 1;
    const float *kf = s->kf, *kr = s->kr;
    if (map->scaled) {
        float g_end = s->g[n - 1];
        if (!first && g_prev != g_end)
            scale_all(S, (size_t)F * E, expf(g_prev - g_end));
        for (int i = 0; i < n; i++)
            s->e[i] = expf(s->g[i] - g_end);
        scale_rows(s->ks, s->kf, s->e, n, F);
        scale_rows(s->krs, s->kr, s->e, n, F);
        kf = s->ks;
        kr = s->krs;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, D, n, 1.0f, kr, F, s->vp, E, 1.0f, S, E);
    cblas_sgemv(CblasRowMajor, CblasTrans, n, F, 1.0f, kf, F, s->vp + D, E, 1.0f, S + D, E);
}

static void forward_bh_rope(const struct kattn_map *map, struct kslot *s, float *O, float *den, float *gsave,
                            const float *Q, const float *K, const float *V, int T, int D)
{
    const int F = map->F, E = D + 1, L = map->chunk;
    const struct attn_kernels *ak = attn_kernels();
    memset(s->S, 0, (size_t)F * E * sizeof(float));
    float g_prev = 0.0f;
    for (int t0 = 0; t0 < T; t0 += L) {
        int n = T - t0 < L ? T - t0 : L;
        chunk_features(map, s, Q, K, V, NULL, g_prev, t0, n, D);
        rot_rows(s->qr, s->qf, map->frope, t0, n, F, 0);
        rot_rows(s->kr, s->kf, map->frope, t0, n, F, 0);
        /* Intra-chunk numerator: nm[:, :D] = (RΦq (RΦk)ᵀ ∘ mask) V. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, F, 1.0f, s->qr, F, s->kr, F, 0.0f, s->A,
                    n);
        mask_scale(map, s->A, s->g, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, n, 1.0f, s->A, n, s->vp, E, 0.0f, s->nm,
                    E);
        /* Intra-chunk denominator: nm[:, D] = row sums of Φq Φkᵀ ∘ mask. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, F, 1.0f, s->qf, F, s->kf, F, 0.0f, s->A0,
                    n);
        mask_scale(map, s->A0, s->g, n);
        for (int i = 0; i < n; i++)
            s->nm[(size_t)i * E + D] = ak->sum(s->A0 + (size_t)i * n, (size_t)i + 1);
        /* Inter-chunk: nm += diag(exp(g_prev - g_i)) [RΦq S[:, :D] | Φq S[:, D]]. */
        if (t0 > 0) {
            if (map->scaled) {
                for (int i = 0; i < n; i++)
                    s->e[i] = expf(g_prev - s->g[i]);
                scale_rows(s->qf, s->qf, s->e, n, F);
                scale_rows(s->qr, s->qr, s->e, n, F);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, F, 1.0f, s->qr, F, s->S, E, 1.0f, s->nm,
                        E);
            cblas_sgemv(CblasRowMajor, CblasNoTrans, n, F, 1.0f, s->qf, F, s->S + D, E, 1.0f, s->nm + D, E);
        }
        for (int i = 0; i < n; i++) {
            const float *nr = s->nm + (size_t)i * E;
            ak->scale_to(O + ((size_t)t0 + i) * D, nr, 1.0f / (nr[D] + map->eps), (size_t)D);
            den[t0 + i] = nr[D];
            if (gsave)
                gsave[t0 + i] = s->g[i];
        }
        if (t0 + n >= T)
            break;
        rope_state_update(map, s, s->S, g_prev, t0 == 0, n, D);
        if (map->scaled)
            g_prev = s->g[n - 1];
    }
}

void kattn_forward(const struct mixer *m, float *o, float *saved, float *work, const float *q,
                   const float *k, const float *v, const float *xp, int B, int T)
{
    (void)xp;
    const struct kattn_map *map = map_of(m);
    const int H = m->H, D = m->D;
    MX_ASSERT(map->chunk >= 1 && map->F >= 1 && T >= 1);
    size_t per = slot_floats(map, T, D), BHT = (size_t)B * H * T;
    int nC = n_chunks(map, T);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t bh = (size_t)b * H + h, base = bh * T;
            struct kslot s;
            slot_bind(&s, work + bh * per, per, map->chunk, map->F, D + 1, nC, map->frope != NULL);
            (map->frope ? forward_bh_rope : forward_bh)(map, &s, o + base * D, saved + base,
                                                        map->scaled ? saved + BHT + base : NULL, q + base * D,
                                                        k + base * D, v + base * D, T, D);
        }
}

/* G (n,D+1) = dL/d[num | den] of chunk rows t0.. (see the backward below). */
static void chunk_grad(const struct kattn_map *map, float *G, const float *dO, const float *O, const float *den,
                       int t0, int n, int D)
{
    const struct attn_kernels *ak = attn_kernels();
    const int E = D + 1;
    for (int i = 0; i < n; i++) {
        const float *dor = dO + ((size_t)t0 + i) * D, *orow = O + ((size_t)t0 + i) * D;
        float inv = 1.0f / (den[t0 + i] + map->eps);
        ak->scale_to(G + (size_t)i * E, dor, inv, (size_t)D);
        G[(size_t)i * E + D] = -ak->dot(dor, orow, (size_t)D) * inv;
    }
}

/* The intra-chunk gradients of nm[:, :w] = (Qa Kaᵀ∘M) V'[:, :w] (w = D+1: numerator and
 * denominator in one product; w = D: the rotary numerator alone): A = Qa Kaᵀ∘M,
 * P = (G[:, :w] V'[:, :w]ᵀ)∘M, dQa = P Ka, dKa = Pᵀ Qa, dV'[:, :w] = Aᵀ G[:, :w] (all set). */
static void intra_grads(const struct kattn_map *map, struct kslot *s, const float *qa, const float *ka,
                        const float *G, int w, float *dqa, float *dka, int n, int D)
{
    const int F = map->F, E = D + 1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, F, 1.0f, qa, F, ka, F, 0.0f, s->A, n);
    mask_scale(map, s->A, s->g, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, w, 1.0f, G, E, s->vp, E, 0.0f, s->P, n);
    mask_scale(map, s->P, s->g, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, F, n, 1.0f, s->P, n, ka, F, 0.0f, dqa, F);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, F, n, 1.0f, s->P, n, qa, F, 0.0f, dka, F);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, w, n, 1.0f, s->A, n, G, E, 0.0f, s->dvp, E);
}

/* ---- backward ------------------------------------------------------------------------------
 * With G = dL/d[num | den] = [dO/(den+ε) | -(dO·o)/(den+ε)] (n,D+1), per chunk (reverse order):
 *   intra:  A = Φq Φkᵀ∘M, P = (G V'ᵀ)∘M  ->  dΦq = P Φk, dΦk = Pᵀ Φq, dV' = Aᵀ G
 *   state:  S_c = a S_p + Φksᵀ V'        ->  dΦk += V's dS_cᵀ, dV' += Φks dS_c
 *   inter:  num += Φqs S_p               ->  dΦq += Gs S_pᵀ, dS_p = a dS_c + Φqᵀ Gs
 * (M the causal mask with the exp(g_j - g_i) factors, the 's' operands row-scaled by the
 * exp factors, a = exp(g_p - g_end)). S_p for every chunk comes from a forward sweep first. */

static void backward_bh(const struct kattn_map *map, struct kslot *s, float *dQ, float *dK, float *dV,
                        const float *dO, const float *O, const float *den, const float *gsv, const float *Q,
                        const float *K, const float *V, int T, int D)
{
    const int F = map->F, E = D + 1, L = map->chunk, nC = n_chunks(map, T);
    const size_t FE = (size_t)F * E;
    const struct attn_kernels *ak = attn_kernels();
    /* Sweep 1: the state before each chunk, exactly as forward built it. */
    memset(s->states, 0, FE * sizeof(float));
    for (int c = 0; c + 1 < nC; c++) {
        int t0 = c * L, n = L; /* only full chunks precede another */
        const float *g = gsv ? gsv + t0 : NULL;
        chunk_features(map, s, NULL, K, V, g, 0.0f, t0, n, D);
        float *Sn = s->states + (size_t)(c + 1) * FE;
        memcpy(Sn, s->states + (size_t)c * FE, FE * sizeof(float));
        const float *kf = s->kf;
        if (map->scaled) {
            float g_end = s->g[n - 1];
            if (t0 > 0 && gsv[t0 - 1] != g_end)
                scale_all(Sn, FE, expf(gsv[t0 - 1] - g_end));
            for (int i = 0; i < n; i++)
                s->e[i] = expf(s->g[i] - g_end);
            scale_rows(s->ks, s->kf, s->e, n, F);
            kf = s->ks;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, E, n, 1.0f, kf, F, s->vp, E, 1.0f, Sn, E);
    }
    /* Sweep 2, reverse: dS is dL/d(state after chunk c), in that state's unit. */
    memset(s->dS, 0, FE * sizeof(float));
    for (int c = nC - 1; c >= 0; c--) {
        int t0 = c * L, n = T - t0 < L ? T - t0 : L;
        const float *g = gsv ? gsv + t0 : NULL;
        float g_prev = (gsv && t0 > 0) ? gsv[t0 - 1] : 0.0f;
        float g_end = gsv ? g[n - 1] : 0.0f;
        chunk_features(map, s, Q, K, V, g, 0.0f, t0, n, D);
        float *G = s->nm;
        chunk_grad(map, G, dO, O, den, t0, n, D);
        intra_grads(map, s, s->qf, s->kf, G, E, s->dqf, s->dkf, n, D);
        /* This chunk's keys feed the state after it (not for the last chunk). */
        if (c + 1 < nC) {
            const float *vs = s->vp, *ks = s->kf;
            if (map->scaled) {
                for (int i = 0; i < n; i++)
                    s->e[i] = expf(g[i] - g_end);
                scale_rows(s->gs, s->vp, s->e, n, E);
                scale_rows(s->ks, s->kf, s->e, n, F);
                vs = s->gs;
                ks = s->ks;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, F, E, 1.0f, vs, E, s->dS, E, 1.0f, s->dkf,
                        F);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, E, F, 1.0f, ks, F, s->dS, E, 1.0f,
                        s->dvp, E);
        }
        /* This chunk's queries read the state before it. */
        if (c > 0) {
            const float *Sp = s->states + (size_t)c * FE;
            const float *gsc = G;
            if (map->scaled) {
                for (int i = 0; i < n; i++)
                    s->e[i] = expf(g_prev - g[i]);
                scale_rows(s->gs, G, s->e, n, E);
                gsc = s->gs;
                if (g_prev != g_end)
                    scale_all(s->dS, FE, expf(g_prev - g_end));
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, F, E, 1.0f, gsc, E, Sp, E, 1.0f, s->dqf,
                        F);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, E, n, 1.0f, s->qf, F, gsc, E, 1.0f, s->dS,
                        E);
        }
        map->backward(map->ctx, dQ + (size_t)t0 * D, s->dqf, s->qf, Q + (size_t)t0 * D, n, D, 0, s->tmp);
        map->backward(map->ctx, dK + (size_t)t0 * D, s->dkf, s->kf, K + (size_t)t0 * D, n, D, 1, s->tmp);
        for (int i = 0; i < n; i++)
            ak->add(dV + ((size_t)t0 + i) * D, s->dvp + (size_t)i * E, (size_t)D);
    }
}

/* Backward of forward_bh_rope: the same two sweeps as backward_bh, the numerator (rotated
 * features, G's columns 0..D-1) and the denominator (plain features, G's column D) as two
 * paths; dΦ = dΦ_plain + Rᵀ dΦ_rotated before the map's backward. */
static void backward_bh_rope(const struct kattn_map *map, struct kslot *s, float *dQ, float *dK, float *dV,
                             const float *dO, const float *O, const float *den, const float *gsv, const float *Q,
                             const float *K, const float *V, int T, int D)
{
    const int F = map->F, E = D + 1, L = map->chunk, nC = n_chunks(map, T);
    const size_t FE = (size_t)F * E;
    const struct attn_kernels *ak = attn_kernels();
    /* Sweep 1: the state before each chunk, exactly as forward built it. */
    memset(s->states, 0, FE * sizeof(float));
    for (int c = 0; c + 1 < nC; c++) {
        int t0 = c * L, n = L;
        chunk_features(map, s, NULL, K, V, gsv ? gsv + t0 : NULL, 0.0f, t0, n, D);
        rot_rows(s->kr, s->kf, map->frope, t0, n, F, 0);
        float *Sn = s->states + (size_t)(c + 1) * FE;
        memcpy(Sn, s->states + (size_t)c * FE, FE * sizeof(float));
        rope_state_update(map, s, Sn, (gsv && t0 > 0) ? gsv[t0 - 1] : 0.0f, t0 == 0, n, D);
    }
    /* Sweep 2, reverse: dS is dL/d(state after chunk c), in that state's unit. */
    memset(s->dS, 0, FE * sizeof(float));
    for (int c = nC - 1; c >= 0; c--) {
        int t0 = c * L, n = T - t0 < L ? T - t0 : L;
        const float *g = gsv ? gsv + t0 : NULL;
        float g_prev = (gsv && t0 > 0) ? gsv[t0 - 1] : 0.0f;
        float g_end = gsv ? g[n - 1] : 0.0f;
        chunk_features(map, s, Q, K, V, g, 0.0f, t0, n, D);
        rot_rows(s->qr, s->qf, map->frope, t0, n, F, 0);
        rot_rows(s->kr, s->kf, map->frope, t0, n, F, 0);
        float *G = s->nm;
        chunk_grad(map, G, dO, O, den, t0, n, D);
        /* Intra-chunk numerator: the rotated features, G's and V's first D columns. */
        intra_grads(map, s, s->qr, s->kr, G, D, s->dqr, s->dkr, n, D);
        /* Intra-chunk denominator: P0 = (G[:, D] 1ᵀ)∘M. */
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                s->A0[(size_t)i * n + j] = G[(size_t)i * E + D];
        mask_scale(map, s->A0, s->g, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, F, n, 1.0f, s->A0, n, s->kf, F, 0.0f, s->dqf,
                    F);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, F, n, 1.0f, s->A0, n, s->qf, F, 0.0f, s->dkf,
                    F);
        /* This chunk's keys feed the state after it (not for the last chunk). */
        if (c + 1 < nC) {
            const float *vs = s->vp, *krs = s->kr;
            if (map->scaled) {
                for (int i = 0; i < n; i++)
                    s->e[i] = expf(g[i] - g_end);
                scale_rows(s->gs, s->vp, s->e, n, E); /* its column D is then e itself */
                scale_rows(s->krs, s->kr, s->e, n, F);
                vs = s->gs;
                krs = s->krs;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, F, D, 1.0f, vs, E, s->dS, E, 1.0f, s->dkr,
                        F);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, F, 1.0f, krs, F, s->dS, E, 1.0f,
                        s->dvp, E);
            cblas_sger(CblasRowMajor, n, F, 1.0f, vs + D, E, s->dS + D, E, s->dkf, F);
        }
        /* This chunk's queries read the state before it. */
        if (c > 0) {
            const float *Sp = s->states + (size_t)c * FE;
            const float *gsc = G;
            if (map->scaled) {
                for (int i = 0; i < n; i++)
                    s->e[i] = expf(g_prev - g[i]);
                scale_rows(s->gs, G, s->e, n, E);
                gsc = s->gs;
                if (g_prev != g_end)
                    scale_all(s->dS, FE, expf(g_prev - g_end));
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, F, D, 1.0f, gsc, E, Sp, E, 1.0f, s->dqr, F);
            cblas_sger(CblasRowMajor, n, F, 1.0f, gsc + D, E, Sp + D, E, s->dqf, F);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, D, n, 1.0f, s->qr, F, gsc, E, 1.0f, s->dS, E);
            cblas_sgemv(CblasRowMajor, CblasTrans, n, F, 1.0f, s->qf, F, gsc + D, E, 1.0f, s->dS + D, E);
        }
        rot_rows(s->dqr, s->dqr, map->frope, t0, n, F, 1);
        rot_rows(s->dkr, s->dkr, map->frope, t0, n, F, 1);
        ak->add(s->dqf, s->dqr, (size_t)n * F);
        ak->add(s->dkf, s->dkr, (size_t)n * F);
        map->backward(map->ctx, dQ + (size_t)t0 * D, s->dqf, s->qf, Q + (size_t)t0 * D, n, D, 0, s->tmp);
        map->backward(map->ctx, dK + (size_t)t0 * D, s->dkf, s->kf, K + (size_t)t0 * D, n, D, 1, s->tmp);
        for (int i = 0; i < n; i++)
            ak->add(dV + ((size_t)t0 + i) * D, s->dvp + (size_t)i * E, (size_t)D);
    }
}

void kattn_backward(const struct mixer *m, float *dq, float *dk, float *dv, float *dxp, float *work,
                    const float *dout, const float *o, const float *saved, const float *q, const float *k,
                    const float *v, const float *xp, int B, int T)
{
    (void)dxp, (void)xp;
    const struct kattn_map *map = map_of(m);
    const int H = m->H, D = m->D;
    size_t per = slot_floats(map, T, D), BHT = (size_t)B * H * T;
    int nC = n_chunks(map, T);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t bh = (size_t)b * H + h, base = bh * T, off = base * D;
            struct kslot s;
            slot_bind(&s, work + bh * per, per, map->chunk, map->F, D + 1, nC, map->frope != NULL);
            /* backward_bh accumulates; the core overwrites (mixer.h's contract). */
            memset(dq + off, 0, (size_t)T * D * sizeof(float));
            memset(dk + off, 0, (size_t)T * D * sizeof(float));
            memset(dv + off, 0, (size_t)T * D * sizeof(float));
            (map->frope ? backward_bh_rope : backward_bh)(map, &s, dq + off, dk + off, dv + off, dout + off,
                                                          o + off, saved + base,
                                                          map->scaled ? saved + BHT + base : NULL, q + off,
                                                          k + off, v + off, T, D);
        }
}

/* ---- recurrent step -------------------------------------------------------------------------
 * State: per head S (F,D+1) then g (1, padded to 16); then scratch qf, kf, tmp (F), r (16),
 * nm (D+1). */

static size_t head_state(const struct kattn_map *map, int D)
{
    return (size_t)map->F * (D + 1) + 16;
}

size_t kattn_state_floats(const struct mixer *m)
{
    const struct kattn_map *map = (const struct kattn_map *)m->cfg;
    return (size_t)m->H * head_state(map, m->D) + 3 * (size_t)map->F + 16 + (size_t)m->D + 1 +
           (map->frope ? 2 * (size_t)map->F : 0);
}

void kattn_step(const struct mixer *m, float *o_t, float *state, const float *q_t, const float *k_t,
                const float *v_t, const float *xp, int t)
{
    (void)xp;
    const struct kattn_map *map = map_of(m);
    const int H = m->H, D = m->D;
    const int F = map->F, E = D + 1;
    const struct attn_kernels *ak = attn_kernels();
    size_t hs = head_state(map, D);
    float *qf = state + (size_t)H * hs, *kf = qf + F, *tmp = kf + F, *r = tmp + F, *nm = r + 16;
    for (int h = 0; h < H; h++) {
        float *S = state + (size_t)h * hs, *g = S + (size_t)F * E;
        const float *v = v_t + (size_t)h * D;
        map->forward(map->ctx, qf, NULL, q_t + (size_t)h * D, 1, D, 0, tmp);
        map->forward(map->ctx, kf, r, k_t + (size_t)h * D, 1, D, 1, tmp);
        if (map->scaled) {
            float gn = (t == 0 || r[0] > *g) ? r[0] : *g;
            if (t > 0 && gn != *g)
                scale_all(S, (size_t)F * E, expf(*g - gn));
            if (r[0] != gn)
                scale_all(kf, (size_t)F, expf(r[0] - gn));
            *g = gn;
        }
        if (map->frope) { /* rotary features: the numerator rotated, the denominator plain */
            float *qr = nm + E, *kr = qr + F;
            rot_rows(qr, qf, map->frope, t, 1, F, 0);
            rot_rows(kr, kf, map->frope, t, 1, F, 0);
            for (int f = 0; f < F; f++) {
                float *Sr = S + (size_t)f * E;
                ak->axpy(Sr, kr[f], v, (size_t)D);
                Sr[D] += kf[f];
            }
            memset(nm, 0, (size_t)E * sizeof(float));
            for (int f = 0; f < F; f++) {
                ak->axpy(nm, qr[f], S + (size_t)f * E, (size_t)D);
                nm[D] += qf[f] * S[(size_t)f * E + D];
            }
        } else {
            for (int f = 0; f < F; f++) {
                float *Sr = S + (size_t)f * E;
                ak->axpy(Sr, kf[f], v, (size_t)D);
                Sr[D] += kf[f];
            }
            memset(nm, 0, (size_t)E * sizeof(float));
            for (int f = 0; f < F; f++)
                ak->axpy(nm, qf[f], S + (size_t)f * E, (size_t)E);
        }
        ak->scale_to(o_t + (size_t)h * D, nm, 1.0f / (nm[D] + map->eps), (size_t)D);
    }
}

/* Per (b,h) and token, forward: the two feature maps (map->flops_row each, F·D for the
 * projection of exp-type maps, ~F for elu), the state update φk vᵀ and the readout φq·S
 * (2·F·(D+1) each; the chunked form does the same work within a chunk as masked c×c products,
 * c·F·2 + c·(D+1)·2 per row, counted too). Backward recomputes the features and states and
 * forms every gradient: 2.5x forward. */
void kattn_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd)
{
    const struct kattn_map *map = (const struct kattn_map *)m->cfg;
    double F = map->F, D = m->D, c = map->chunk < T ? map->chunk : T;
    double row = 2.0 * map->map_flops_row + 4.0 * F * (D + 1) + 2.0 * c * F + 2.0 * c * (D + 1);
    if (map->frope) /* rotating both feature rows (3 FLOPs per element) and the plain c x c scores */
        row += 6.0 * F + 2.0 * c * F;
    double f = (double)B * m->H * T * row;
    *fwd = f;
    *bwd = 2.5 * f;
}

const struct attn_core kattn_core = {
    .saved_floats = kattn_saved_floats,
    .work_floats = kattn_work_floats,
    .forward = kattn_forward,
    .backward = kattn_backward,
    .state_floats = kattn_state_floats,
    .step = kattn_step,
};

int kattn_rope_setup(struct mixer *m, struct kattn_map *map, const char *mode, const char *mixer, int *qk_out,
                     struct mx_error *err)
{
    int qk = 0;
    if (mode && strcmp(mode, "qk") == 0)
        qk = 1;
    else if (mode && strcmp(mode, "map") != 0)
        return mx_errorf(err, "mixer %s: rope='%s' is not a placement; use rope=map (rotate the features after "
                              "the feature map, RoFormer 3.3; the default) or rope=qk (rotate q and k before "
                              "it)", mixer, mode);
    *qk_out = qk;
    if (!m->rope || qk)
        return 0;
    if (map->F % 2 != 0)
        return mx_errorf(err, "mixer %s: --pos rope with rope=map rotates pairs of features and the feature "
                              "count %d is odd; choose an even count or rope=qk", mixer, map->F);
    map->frope = attn_rope_table(m->T_max, map->F, err);
    if (!map->frope)
        return -1;
    m->rope_in_core = 1;
    return 0;
}

void kattn_map_release(struct kattn_map *map)
{
    mx_free(map->frope);
    map->frope = NULL;
}
