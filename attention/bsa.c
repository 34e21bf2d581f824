/* bsa.c — the block-sparse attention engine's layouts and glue: which (query block, key block)
 * pairs a pattern lists, with bit masks inside partial blocks (interned once), the trimming
 * ranges of each mask, the attn_core functions and the KV-cache step. The tile kernels are in
 * attention/isa/bsa_engine_isa.c, compiled per SIMD level; bsa_engine() picks the level's.
 * Not a pattern (sparse.c builds layouts) and not an approximation: unlisted keys are exactly
 * zero-weight, listed ones exact up to float rounding. */
#include "attention/bsa.h"
#include "nn/isa.h"

#include <math.h>
#include <string.h>

#define BS BSA_MAX_BS

/* ---- the engine of the SIMD level in use ------------------------------------------------ */

#define X(e, s) extern const struct bsa_engine MX_ISA_CAT(bsa_engine, s);
MX_ISA_FOREACH(X)
#undef X

const struct bsa_engine *bsa_engine_at(enum mx_isa isa)
{
    if (!mx_isa_supported(isa))
        return NULL;
    switch (isa) {
#define X(e, s)                                                                                 \
    case e:                                                                                     \
        return &MX_ISA_CAT(bsa_engine, s);
        MX_ISA_FOREACH(X)
#undef X
    default:
        return NULL;
    }
}

const struct bsa_engine *bsa_engine(void)
{
    return bsa_engine_at(mx_isa());
}

/* ---- layouts ---------------------------------------------------------------------------- */

void bsa_tile_ranges(const uint64_t *bits, int ni, unsigned char *vlo, unsigned char *vhi,
                        unsigned char *rlo, unsigned char *rhi)
{
    enum { G = 8 };
    for (int k = 0; k < BS / G; k++) {
        rlo[k] = BS;
        rhi[k] = 0;
    }
    for (int g = 0; g < BS / G; g++)
        vlo[g] = vhi[g] = 0;
    for (int g = 0; g * G < ni; g++) {
        uint64_t any = 0;
        int r1 = ni < g * G + G ? ni : g * G + G;
        for (int r = g * G; r < r1; r++) {
            uint64_t b = bits[r];
            any |= b;
            while (b) { /* each 8-key group with a bit in this row */
                int k = __builtin_ctzll(b) / G;
                if (r < rlo[k])
                    rlo[k] = (unsigned char)r;
                rhi[k] = (unsigned char)(r + 1);
                b &= ~((uint64_t)0xFF << (G * k));
            }
        }
        vlo[g] = any ? (unsigned char)(__builtin_ctzll(any) / 16) : 0;
        vhi[g] = any ? (unsigned char)((63 - __builtin_clzll(any)) / 16 + 1) : 0;
    }
    for (int k = 0; k < BS / G; k++)
        if (!rhi[k])
            rlo[k] = 0;
}

/* L->ranges for every mask, as seen in a whole bs x bs tile. */
static void layout_ranges(struct bsa_layout *L)
{
    L->ranges = mx_xmalloc((size_t)L->n_masks * 4 * (BS / 8));
    uint64_t rows[BS];
    for (int id = 0; id < L->n_masks; id++) {
        for (int r = 0; r < L->bs; r++)
            rows[r] = L->masks[(size_t)id * L->bs + r] & bsa_lanes_below(L->bs);
        unsigned char *o = L->ranges + (size_t)id * 4 * (BS / 8);
        bsa_tile_ranges(rows, L->bs, o, o + BS / 8, o + 2 * (BS / 8), o + 3 * (BS / 8));
    }
}

static void causal_mask_rows(uint64_t *rows, int bs)
{
    for (int r = 0; r < bs; r++)
        rows[r] = bsa_lanes_below(r + 1);
}

void bsa_layout_causal(struct bsa_layout *L, int T_max, int H, int bs)
{
    MX_ASSERT(bs >= 1 && bs <= BS && T_max >= 1);
    memset(L, 0, sizeof *L);
    L->T_max = T_max;
    L->H = H;
    L->bs = bs;
    L->nb = (T_max + bs - 1) / bs;
    L->implicit_causal = 1;
    L->n_maps = 0;
    L->head_map = mx_xcalloc(sizeof(int) * (size_t)H);
    L->masks = mx_xmalloc(sizeof(uint64_t) * (size_t)bs);
    causal_mask_rows(L->masks, bs);
    L->n_masks = 1;
    layout_ranges(L);
    L->n_pairs = (size_t)H * L->nb * (L->nb + 1) / 2;
}

/* Masks interned by content (open addressing on an FNV-1a hash) so a Toeplitz pattern such as
 * a window stores a handful of masks, not one per block pair. */
struct mask_pool {
    uint64_t *data;
    int n, cap, bs;
    int *table;
    int tcap;
};

static uint64_t mask_hash(const uint64_t *rows, int bs)
{
    uint64_t h = 1469598103934665603ULL;
    for (int r = 0; r < bs; r++) {
        h ^= rows[r];
        h *= 1099511628211ULL;
    }
    return h;
}

static void pool_rehash(struct mask_pool *p, int tcap)
{
    mx_free(p->table);
    p->tcap = tcap;
    p->table = mx_xmalloc(sizeof(int) * (size_t)tcap);
    for (int i = 0; i < tcap; i++)
        p->table[i] = -1;
    for (int id = 0; id < p->n; id++) {
        size_t s = mask_hash(p->data + (size_t)id * p->bs, p->bs) & (size_t)(tcap - 1);
        while (p->table[s] >= 0)
            s = (s + 1) & (size_t)(tcap - 1);
        p->table[s] = id;
    }
}

static int pool_intern(struct mask_pool *p, const uint64_t *rows)
{
    size_t bytes = sizeof(uint64_t) * (size_t)p->bs;
    size_t s = mask_hash(rows, p->bs) & (size_t)(p->tcap - 1);
    while (p->table[s] >= 0) {
        if (memcmp(p->data + (size_t)p->table[s] * p->bs, rows, bytes) == 0)
            return p->table[s];
        s = (s + 1) & (size_t)(p->tcap - 1);
    }
    if (p->n == p->cap) {
        int cap = p->cap * 2;
        uint64_t *d = mx_xmalloc(bytes * (size_t)cap);
        memcpy(d, p->data, bytes * (size_t)p->n);
        mx_free(p->data);
        p->data = d;
        p->cap = cap;
    }
    memcpy(p->data + (size_t)p->n * p->bs, rows, bytes);
    p->table[s] = p->n;
    p->n++;
    if (2 * p->n > p->tcap)
        pool_rehash(p, 2 * p->tcap);
    return p->n - 1;
}

struct int_vec {
    int *a;
    size_t n, cap;
};

static void iv_push(struct int_vec *v, int x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 256;
        int *a = mx_xmalloc(sizeof(int) * cap);
        if (v->n)
            memcpy(a, v->a, sizeof(int) * v->n);
        mx_free(v->a);
        v->a = a;
        v->cap = cap;
    }
    v->a[v->n++] = x;
}

void bsa_layout_build(struct bsa_layout *L, int T_max, int H, int bs, int heads_differ,
                      bsa_candidates_fn candidates, bsa_allowed_fn allowed, const void *ctx)
{
    MX_ASSERT(bs >= 1 && bs <= BS && T_max >= 1 && H >= 1);
    memset(L, 0, sizeof *L);
    L->T_max = T_max;
    L->H = H;
    L->bs = bs;
    L->nb = (T_max + bs - 1) / bs;
    L->n_maps = heads_differ ? H : 1;
    L->head_map = mx_xcalloc(sizeof(int) * (size_t)H);
    for (int h = 0; h < H; h++)
        L->head_map[h] = heads_differ ? h : 0;
    L->maps = mx_xcalloc(sizeof(struct bsa_map) * (size_t)L->n_maps);

    struct mask_pool pool = {.bs = bs, .cap = 16};
    pool.data = mx_xmalloc(sizeof(uint64_t) * (size_t)bs * pool.cap);
    pool_rehash(&pool, 64);
    uint64_t rows[BS], causal[BS];
    causal_mask_rows(causal, bs);
    MX_ASSERT(pool_intern(&pool, causal) == 0);

    int nb = L->nb;
    unsigned char *flag = mx_xmalloc((size_t)nb);
    for (int mi = 0; mi < L->n_maps; mi++) {
        int h = mi; /* map mi is built from head mi (head 0 when shared) */
        struct bsa_map *M = &L->maps[mi];
        M->row_ptr = mx_xmalloc(sizeof(int) * (size_t)(nb + 1));
        struct int_vec col = {0}, msk = {0};
        for (int qb = 0; qb < nb; qb++) {
            M->row_ptr[qb] = (int)col.n;
            memset(flag, 0, (size_t)nb);
            candidates(ctx, h, qb, bs, flag);
            int i0 = qb * bs, ni = T_max - i0 < bs ? T_max - i0 : bs;
            for (int kb = 0; kb <= qb; kb++) {
                if (!flag[kb])
                    continue;
                int j0 = kb * bs, nj = T_max - j0 < bs ? T_max - j0 : bs;
                uint64_t any = 0;
                int full = 1;
                for (int r = 0; r < bs; r++) {
                    uint64_t b = 0;
                    for (int c = 0; r < ni && c < nj; c++) {
                        int i = i0 + r, j = j0 + c;
                        if (j <= i && allowed(ctx, h, i, j))
                            b |= (uint64_t)1 << c;
                    }
                    rows[r] = b;
                    any |= b;
                    if (r < ni) {
                        uint64_t want = kb < qb ? bsa_lanes_below(nj) : causal[r] & bsa_lanes_below(nj);
                        if (b != want)
                            full = 0;
                    }
                }
                if (!any)
                    continue;
                iv_push(&col, kb);
                iv_push(&msk, full ? (kb < qb ? -1 : 0) : pool_intern(&pool, rows));
            }
        }
        M->row_ptr[nb] = (int)col.n;
        M->col = col.a ? col.a : mx_xmalloc(sizeof(int));
        M->mask = msk.a ? msk.a : mx_xmalloc(sizeof(int));
    }
    mx_free(flag);
    for (int h = 0; h < H; h++)
        L->n_pairs += (size_t)L->maps[L->head_map[h]].row_ptr[nb];
    L->masks = pool.data;
    L->n_masks = pool.n;
    mx_free(pool.table);
    layout_ranges(L);
}

void bsa_layout_free(struct bsa_layout *L)
{
    for (int i = 0; i < L->n_maps; i++) {
        mx_free(L->maps[i].row_ptr);
        mx_free(L->maps[i].col);
        mx_free(L->maps[i].mask);
    }
    mx_free(L->maps);
    mx_free(L->head_map);
    mx_free(L->masks);
    mx_free(L->ranges);
    memset(L, 0, sizeof *L);
}

int bsa_row_count(const struct bsa_layout *L, int h, int qb)
{
    if (L->implicit_causal)
        return qb + 1;
    const struct bsa_map *M = &L->maps[L->head_map[h]];
    return M->row_ptr[qb + 1] - M->row_ptr[qb];
}

void bsa_row_pair(const struct bsa_layout *L, int h, int qb, int i, int *kb, int *mask_id)
{
    if (L->implicit_causal) {
        *kb = i;
        *mask_id = i == qb ? 0 : -1;
        return;
    }
    const struct bsa_map *M = &L->maps[L->head_map[h]];
    int p = M->row_ptr[qb] + i;
    *kb = M->col[p];
    *mask_id = M->mask[p];
}

/* ---- forward and backward ------------------------------------------------------------- */

size_t bsa_saved_floats(const struct mixer *m, int B, int T)
{
    return (size_t)B * m->H * T;
}

size_t bsa_work_floats(const struct mixer *m, int B, int T)
{
    return 2 * (size_t)B * m->H * m->D * bsa_padded_T(T);
}

void bsa_forward_layout(const struct bsa_layout *L, const struct mixer *m, float *o, float *lse,
                        float *work, const float *q, const float *k, const float *v, int B, int T)
{
    bsa_engine()->forward(L, m->H, m->D, o, lse, work, q, k, v, B, T);
}

void bsa_backward_layout(const struct bsa_layout *L, const struct mixer *m, float *dq, float *dk,
                         float *dv, float *work, const float *dout, const float *o,
                         const float *lse, const float *q, const float *k, const float *v, int B,
                         int T)
{
    bsa_engine()->backward(L, m->H, m->D, dq, dk, dv, 1, work, dout, o, lse, q, k, v, B, T);
}

void bsa_forward(const struct mixer *m, float *o, float *saved, float *work, const float *q,
                 const float *k, const float *v, const float *xp, int B, int T)
{
    (void)xp;
    bsa_forward_layout((const struct bsa_layout *)m->cfg, m, o, saved, work, q, k, v, B, T);
}

void bsa_backward(const struct mixer *m, float *dq, float *dk, float *dv, float *dxp, float *work,
                  const float *dout, const float *o, const float *saved, const float *q,
                  const float *k, const float *v, const float *xp, int B, int T)
{
    (void)dxp, (void)xp;
    bsa_engine()->backward((const struct bsa_layout *)m->cfg, m->H, m->D, dq, dk, dv, 0, work, dout, o,
                    saved, q, k, v, B, T);
}

/* The allowed (query, key) pairs up to T of head h's listed tiles: a full tile's rows x keys
 * below T, a masked tile's set bits below T. The pattern's own count, whatever the engine
 * computes (a listed tile runs whole, its mask applied inside), so GFLOP/s is useful work. */
static double bsa_head_pairs(const struct bsa_layout *L, int h, int T)
{
    int bs = L->bs, nbT = (int)(mx_round_up((size_t)T, (size_t)bs) / (size_t)bs);
    double pairs = 0;
    for (int qb = 0; qb < nbT; qb++) {
        int i0 = qb * bs, ni = T - i0 < bs ? T - i0 : bs;
        int n = bsa_row_count(L, h, qb);
        for (int e = 0; e < n; e++) {
            int kb, mid;
            bsa_row_pair(L, h, qb, e, &kb, &mid);
            int j0 = kb * bs, nj = T - j0 < bs ? T - j0 : bs;
            if (mid < 0) {
                pairs += (double)ni * nj;
                continue;
            }
            const uint64_t *rows = L->masks + (size_t)mid * bs;
            uint64_t below = bsa_lanes_below(nj);
            for (int r = 0; r < ni; r++)
                pairs += (double)__builtin_popcountll(rows[r] & below);
        }
    }
    return pairs;
}

void bsa_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd)
{
    const struct bsa_layout *L = (const struct bsa_layout *)m->cfg;
    double pairs = 0;
    if (L->implicit_causal) {
        pairs = (double)m->H * T * (T + 1.0) / 2.0; /* the visible pairs: masked ones are skipped */
    } else {
        for (int h = 0; h < m->H; h++)
            pairs += bsa_head_pairs(L, h, T);
    }
    attn_pairs_flops(pairs * B, m->D, fwd, bwd);
}

const struct attn_core bsa_core = {
    .saved_floats = bsa_saved_floats,
    .work_floats = bsa_work_floats,
    .forward = bsa_forward,
    .backward = bsa_backward,
    .state_floats = bsa_cache_state_floats,
    .step = bsa_cache_step,
};

/* ---- generation ------------------------------------------------------------------------ */

void bsa_row_chunk(float *acc, float *mx, float *l, float *sbuf, const float *q, const float *kt,
                   size_t ld, const float *vrows, int nj, uint64_t bits, float scale, int D)
{
    bsa_engine()->row_chunk(acc, mx, l, sbuf, q, kt, ld, vrows, nj, bits, scale, D);
}

void bsa_row_finish(float *o, const float *acc, float l, int D)
{
    bsa_engine()->row_finish(o, acc, l, D);
}

static size_t cache_ld(const struct mixer *m)
{
    return bsa_padded_T(m->T_max);
}

size_t bsa_cache_state_floats(const struct mixer *m)
{
    size_t H = (size_t)m->H, D = (size_t)m->D;
    return H * D * cache_ld(m) + H * (size_t)m->T_max * D + BS + D + 16;
}

void bsa_cache_step(const struct mixer *m, float *o_t, float *state, const float *q_t,
                    const float *k_t, const float *v_t, const float *xp, int t)
{
    (void)xp;
    const struct bsa_layout *L = (const struct bsa_layout *)m->cfg;
    const int H = m->H, D = m->D, bs = L->bs;
    MX_ASSERT(t >= 0 && t < m->T_max);
    const size_t ld = cache_ld(m);
    const float scale = 1.0f / sqrtf((float)D);
    float *kt = state, *vv = kt + (size_t)H * D * ld;
    float *sbuf = vv + (size_t)H * m->T_max * D, *acc = sbuf + BS;
    const int qb = t / bs, r = t - qb * bs;
    for (int h = 0; h < H; h++) {
        float *Kt = kt + (size_t)h * D * ld, *V = vv + (size_t)h * m->T_max * D;
        for (int d = 0; d < D; d++)
            Kt[(size_t)d * ld + t] = k_t[(size_t)h * D + d];
        memcpy(V + (size_t)t * D, v_t + (size_t)h * D, sizeof(float) * (size_t)D);
        float mx = -INFINITY, l = 0;
        memset(acc, 0, sizeof(float) * (size_t)D);
        int np = bsa_row_count(L, h, qb);
        for (int p = 0; p < np; p++) {
            int kb, mid;
            bsa_row_pair(L, h, qb, p, &kb, &mid);
            int j0 = kb * bs, nj = t + 1 - j0 < bs ? t + 1 - j0 : bs;
            uint64_t bits = mid < 0 ? ~(uint64_t)0 : L->masks[(size_t)mid * bs + r];
            bsa_row_chunk(acc, &mx, &l, sbuf, q_t + (size_t)h * D, Kt + j0, ld,
                          V + (size_t)j0 * D, nj, bits, scale, D);
        }
        bsa_row_finish(o_t + (size_t)h * D, acc, l, D);
    }
}
