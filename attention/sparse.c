/* sparse.c — the sparse attention patterns, all causal, all run by the block-sparse engine
 * (bsa.c): window and dilated (Longformer, with optional global tokens), strided and fixed
 * (Sparse Transformer), bigbird (window + random + global blocks). Each pattern is a rule
 * allowed(h, i, j) plus the key blocks it can touch; the engine turns those into a layout once
 * at parse time. Not a kernel: no attention arithmetic lives here except the ring-buffer
 * generation step of window/dilated, which reuses the engine's row kernels. */
#include "attention/attn_kernels.h"
#include "attention/bsa.h"

#include <cblas.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PAT_WINDOW, PAT_DILATED, PAT_STRIDED, PAT_FIXED, PAT_BIGBIRD };

/* strided, split=0: gathered rows per chunk of class sequences (at least one sequence a chunk;
 * see "strided: two dense-tiled parts" below). */
#define STRIDED_CHUNK_ROWS (1 << 14)

struct sparse_cfg {
    struct bsa_layout lay; /* first: the engine's struct (attn_common.h) */
    int kind, H, T_max;
    int w, g;    /* window/dilated: taps and global tokens; bigbird: window and global blocks */
    int *dil;    /* (H) dilation per head; 1 for window */
    int s, c;    /* strided stride; fixed block and summary length */
    int split;   /* strided: local part on heads < H/2, strided part on the others */
    int b, r;    /* bigbird block size and random blocks per query block */
    int nB;      /* bigbird blocks in T_max */
    int *rnd;    /* bigbird (H, nB, r) random key blocks per query block, -1 = none */
    int ring;    /* window/dilated generation: ring slots = the longest reach over heads */
    /* strided, split=0: the two parts the fast core runs (strided_core below); lay above
     * stays the whole pattern (FLOP count, generation, split=1). */
    struct bsa_layout local; /* (t-s, t], at T_max */
    struct bsa_layout cls;   /* strictly causal, at ceil(T_max/s): one residue class mod s */
    int two_part;
    int chunk_rows; /* strided, split=0: gathered rows per chunk (STRIDED_CHUNK_ROWS) */
};

/* ---- the patterns ----------------------------------------------------------------------- */

static int sp_allowed(const void *ctx, int h, int i, int j)
{
    const struct sparse_cfg *c = ctx;
    int dt = i - j;
    switch (c->kind) {
    case PAT_WINDOW:
    case PAT_DILATED:
        return j < c->g || (dt % c->dil[h] == 0 && dt / c->dil[h] < c->w);
    case PAT_STRIDED: {
        int local = dt < c->s, strided = dt % c->s == 0;
        if (!c->split)
            return local || strided;
        return h < c->H / 2 ? local : strided;
    }
    case PAT_FIXED:
        return j / c->s == i / c->s || j % c->s >= c->s - c->c;
    case PAT_BIGBIRD: {
        int Q = i / c->b, K = j / c->b;
        if (Q - K < c->w || K < c->g)
            return 1;
        const int *rr = c->rnd + ((size_t)h * c->nB + Q) * c->r;
        for (int k = 0; k < c->r; k++)
            if (rr[k] == K)
                return 1;
        return 0;
    }
    }
    MX_ASSERT(0);
    return 0;
}

static void flag_range(unsigned char *flag, int j_lo, int j_hi, int bs, int qb)
{
    if (j_lo < 0)
        j_lo = 0;
    if (j_hi > (qb + 1) * bs - 1)
        j_hi = (qb + 1) * bs - 1;
    for (int kb = j_lo / bs; j_lo <= j_hi && kb <= j_hi / bs; kb++)
        flag[kb] = 1;
}

/* Key blocks a query block may touch (a superset; the engine drops empty ones). */
static void sp_candidates(const void *ctx, int h, int qb, int bs, unsigned char *flag)
{
    const struct sparse_cfg *c = ctx;
    int i0 = qb * bs, i1 = i0 + bs - 1;
    switch (c->kind) {
    case PAT_WINDOW:
    case PAT_DILATED:
        flag_range(flag, i0 - (c->w - 1) * c->dil[h], i1, bs, qb);
        flag_range(flag, 0, c->g - 1, bs, qb);
        break;
    case PAT_STRIDED:
        if (!c->split || h < c->H / 2)
            flag_range(flag, i0 - c->s + 1, i1, bs, qb);
        if (!c->split || h >= c->H / 2)
            for (int kb = 0; kb <= qb; kb++) {
                /* Does [i0-j1, i1-j0] hold a multiple of s (a non-negative one)? */
                int j0 = kb * bs, j1 = j0 + bs - 1, dmin = i0 - j1 < 0 ? 0 : i0 - j1;
                if (i1 - j0 >= 0 && (i1 - j0) / c->s * c->s >= dmin)
                    flag[kb] = 1;
            }
        break;
    case PAT_FIXED:
        flag_range(flag, i0 / c->s * c->s, i1, bs, qb);
        for (int kb = 0; kb < qb; kb++) {
            int j0 = kb * bs, j1 = j0 + bs - 1;
            if (j1 - j0 + 1 >= c->s || j0 % c->s > j1 % c->s || j1 % c->s >= c->s - c->c)
                flag[kb] = 1;
        }
        break;
    case PAT_BIGBIRD:
        for (int Q = i0 / c->b; Q <= i1 / c->b && Q < c->nB; Q++) {
            flag_range(flag, (Q - c->w + 1) * c->b, (Q + 1) * c->b - 1, bs, qb);
            flag_range(flag, 0, c->g * c->b - 1, bs, qb);
            const int *rr = c->rnd + ((size_t)h * c->nB + Q) * c->r;
            for (int k = 0; k < c->r; k++)
                if (rr[k] >= 0)
                    flag_range(flag, rr[k] * c->b, (rr[k] + 1) * c->b - 1, bs, qb);
        }
        break;
    }
}

/* BigBird's random blocks: for query block Q, r distinct blocks drawn uniformly from those
 * neither in its window nor global ([g, Q-w]); fewer when fewer exist. A pure function of
 * (seed, layer, head, Q): fixed per layer, reproducible from the checkpoint's seed, and
 * independent of T_max (so a shorter context sees the same pattern). */
static void bigbird_draw(struct sparse_cfg *c, uint64_t seed, int layer)
{
    c->rnd = mx_xmalloc(sizeof(int) * ((size_t)c->H * c->nB * (c->r ? c->r : 1)));
    for (int h = 0; h < c->H; h++)
        for (int Q = 0; Q < c->nB; Q++) {
            int *rr = c->rnd + ((size_t)h * c->nB + Q) * c->r;
            int lo = c->g, hi = Q - c->w, n = hi - lo + 1, k = 0;
            struct mx_rng g;
            mx_rng_seed3(&g, seed ^ 0x6269676269726400ULL, (uint64_t)layer, ((uint64_t)h << 32) | (uint64_t)Q);
            for (; k < c->r && n > 0 && k < n; k++) {
                int x, dup;
                do {
                    x = lo + (int)mx_rng_below(&g, (uint32_t)n);
                    dup = 0;
                    for (int e = 0; e < k; e++)
                        dup |= rr[e] == x;
                } while (dup);
                rr[k] = x;
            }
            for (; k < c->r; k++)
                rr[k] = -1;
        }
}

int sparse_bigbird_random_blocks(const struct mixer *m, int h, int Q, int *out);
/* For tests: bigbird's random key blocks of head h, query block Q into out (r entries);
 * returns how many are valid. */
int sparse_bigbird_random_blocks(const struct mixer *m, int h, int Q, int *out)
{
    const struct sparse_cfg *c = m->cfg;
    MX_ASSERT(c->kind == PAT_BIGBIRD && h >= 0 && h < c->H && Q >= 0 && Q < c->nB);
    int n = 0;
    for (int k = 0; k < c->r; k++)
        if (c->rnd[((size_t)h * c->nB + Q) * c->r + k] >= 0)
            out[n++] = c->rnd[((size_t)h * c->nB + Q) * c->r + k];
    return n;
}

/* The two parts of strided (split=0), each a layout the engine runs as dense-ish tiles:
 *   local: j in (i-s, i]                      — a band, at T_max;
 *   cls:   j < i, strictly                    — within one residue class mod s, gathered:
 *          class r holds positions r, r+s, r+2s, ..., so "j = i - ks, k >= 1" is "earlier in
 *          the class". The two key sets are disjoint and cover the pattern exactly. */
static void local_candidates(const void *ctx, int h, int qb, int bs, unsigned char *flag)
{
    (void)h;
    const struct sparse_cfg *c = ctx;
    flag_range(flag, qb * bs - c->s + 1, qb * bs + bs - 1, bs, qb);
}
static int local_allowed(const void *ctx, int h, int i, int j)
{
    (void)h;
    return i - j < ((const struct sparse_cfg *)ctx)->s;
}
static void strict_candidates(const void *ctx, int h, int qb, int bs, unsigned char *flag)
{
    (void)ctx, (void)h;
    flag_range(flag, 0, qb * bs + bs - 1, bs, qb);
}
static int strict_allowed(const void *ctx, int h, int i, int j)
{
    (void)ctx, (void)h;
    return j < i;
}

/* fixed, own block: j in the block of i (the engine adds j <= i). */
static void block_candidates(const void *ctx, int h, int qb, int bs, unsigned char *flag)
{
    (void)h;
    const struct sparse_cfg *c = ctx;
    flag_range(flag, qb * bs / c->s * c->s, qb * bs + bs - 1, bs, qb);
}
static int block_allowed(const void *ctx, int h, int i, int j)
{
    (void)h;
    const struct sparse_cfg *c = ctx;
    return i / c->s == j / c->s;
}

/* ---- parsing ---------------------------------------------------------------------------- */

static int pow2_at_least(int x, int lo, int hi)
{
    int p = lo;
    while (p < x && p < hi)
        p *= 2;
    return p;
}

static struct sparse_cfg *cfg_new(const struct mixer *m, int kind)
{
    struct sparse_cfg *c = mx_xcalloc(sizeof *c);
    c->kind = kind;
    c->H = m->H;
    c->T_max = m->T_max;
    c->dil = mx_xmalloc(sizeof(int) * (size_t)m->H);
    for (int h = 0; h < m->H; h++)
        c->dil[h] = 1;
    return c;
}

static void sparse_destroy(struct mixer *m)
{
    struct sparse_cfg *c = m->cfg;
    if (!c)
        return;
    bsa_layout_free(&c->lay);
    if (c->two_part) {
        bsa_layout_free(&c->local);
        if (c->kind == PAT_STRIDED)
            bsa_layout_free(&c->cls);
    }
    mx_free(c->dil);
    mx_free(c->rnd);
    mx_free(c);
    m->cfg = NULL;
}

/* Build the layout and hand the cfg to the mixer. */
static int finish(struct mixer *m, struct sparse_cfg *c, int bs, int heads_differ)
{
    bsa_layout_build(&c->lay, m->T_max, m->H, bs, heads_differ, sp_candidates, sp_allowed, c);
    m->cfg = c;
    return 0;
}

static int fail(struct sparse_cfg *c, struct mixer *m)
{
    m->cfg = c;
    sparse_destroy(m);
    return -1;
}

/* Shared by window and dilated: w, g and the dilation list. */
static int parse_windowish(struct mixer *m, const char *name, const char *args, int dilated,
                           struct mx_error *err)
{
    struct mixer_kv kv;
    struct sparse_cfg *c = cfg_new(m, dilated ? PAT_DILATED : PAT_WINDOW);
    long w, g;
    if (mixer_kv_parse(&kv, name, args, err) != 0 ||
        mixer_kv_int(&kv, name, "w", dilated ? 128 : 256, 1, m->T_max, &w, err) != 0 ||
        mixer_kv_int(&kv, name, "g", 0, 0, m->T_max, &g, err) != 0)
        return fail(c, m);
    char dtext[160] = "1";
    if (dilated) {
        const char *ds = mixer_kv_str(&kv, "d");
        snprintf(dtext, sizeof dtext, "%s", ds ? ds : "2");
        int n = 0;
        char buf[160], *save = NULL;
        snprintf(buf, sizeof buf, "%s", dtext);
        for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            long d;
            if (n >= m->H) {
                mx_errorf(err, "mixer dilated: d=%s lists more than H=%d dilations; give one value or exactly one per head",
                          dtext, m->H);
                return fail(c, m);
            }
            if (mx_parse_int(tok, 1, m->T_max, "mixer dilated: d", &d, err) != 0)
                return fail(c, m);
            c->dil[n++] = (int)d;
        }
        if (n == 1)
            for (int h = 1; h < m->H; h++)
                c->dil[h] = c->dil[0];
        else if (n != m->H) {
            mx_errorf(err, "mixer dilated: d=%s lists %d dilations but the model has H=%d heads; give one value or exactly %d",
                      dtext, n, m->H, m->H);
            return fail(c, m);
        }
    }
    if (mixer_kv_finish(&kv, name, dilated ? "w (taps), d (dilation or per-head list), g (global tokens)"
                                           : "w (window length), g (global tokens)", err) != 0)
        return fail(c, m);
    c->w = (int)w;
    c->g = (int)g;
    int reach = 0, same = 1;
    for (int h = 0; h < m->H; h++) {
        long rh = (long)(c->w - 1) * c->dil[h] + 1;
        if (rh > m->T_max) {
            mx_errorf(err, "mixer %s: w=%d taps with d=%d reach %ld positions, more than the context T_max=%d; lower w or d",
                      name, c->w, c->dil[h], rh, m->T_max);
            return fail(c, m);
        }
        reach = (int)rh > reach ? (int)rh : reach;
        same &= c->dil[h] == c->dil[0];
    }
    c->ring = reach;
    if (dilated && !same) {
        char list[160] = "";
        for (int h = 0; h < m->H; h++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s%d", h ? "," : "", c->dil[h]);
        }
        snprintf(m->spec, sizeof m->spec, "dilated:w=%d,d=%s,g=%d", c->w, list, c->g);
    } else if (dilated) {
        snprintf(m->spec, sizeof m->spec, "dilated:w=%d,d=%d,g=%d", c->w, c->dil[0], c->g);
    } else {
        snprintf(m->spec, sizeof m->spec, "window:w=%d,g=%d", c->w, c->g);
    }
    /* WHY this block size: the tiles must span the reach (w..w*d) with little waste; 64 is
     * the engine's most efficient tile, smaller windows use the smallest power of two >= it. */
    return finish(m, c, pow2_at_least(reach, 16, 64), !same);
}

static int window_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    return parse_windowish(m, "window", args, 0, err);
}

static int dilated_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    return parse_windowish(m, "dilated", args, 1, err);
}

static int strided_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    struct sparse_cfg *c = cfg_new(m, PAT_STRIDED);
    long s, split, dflt = lround(sqrt((double)m->T_max));
    if (mixer_kv_parse(&kv, "strided", args, err) != 0 ||
        mixer_kv_int(&kv, "strided", "s", dflt < 1 ? 1 : dflt, 1, m->T_max, &s, err) != 0 ||
        mixer_kv_int(&kv, "strided", "split", 0, 0, 1, &split, err) != 0 ||
        mixer_kv_finish(&kv, "strided", "s (stride), split (0 or 1)", err) != 0)
        return fail(c, m);
    if (split && m->H < 2) {
        mx_errorf(err, "mixer strided: split=1 puts the local and strided parts on different heads and needs H >= 2 (H=%d); use split=0",
                  m->H);
        return fail(c, m);
    }
    c->s = (int)s;
    c->split = (int)split;
    snprintf(m->spec, sizeof m->spec, "strided:s=%d,split=%d", c->s, c->split);
    /* WHY 32/16: the strided columns form one diagonal line per listed block, so small
     * blocks waste less; the local part (length s) prefers larger tiles. This whole-pattern
     * layout serves generation, the FLOP count and split=1; split=0 trains on two dense-tiled
     * parts (strided_core). */
    finish(m, c, c->s >= 64 ? 32 : 16, c->split);
    if (!c->split) {
        int n = (m->T_max + c->s - 1) / c->s;
        c->two_part = 1;
        c->chunk_rows = STRIDED_CHUNK_ROWS;
        bsa_layout_build(&c->local, m->T_max, m->H, pow2_at_least(c->s, 16, 64), 0, local_candidates,
                         local_allowed, c);
        bsa_layout_build(&c->cls, n, 1, n >= 64 ? 64 : n >= 32 ? 32 : 16, 0, strict_candidates, strict_allowed, c);
    }
    return 0;
}

static int fixed_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    struct sparse_cfg *c = cfg_new(m, PAT_FIXED);
    long s, cc;
    long sd = m->T_max < 128 ? m->T_max : 128;
    if (mixer_kv_parse(&kv, "fixed", args, err) != 0 ||
        mixer_kv_int(&kv, "fixed", "s", sd, 1, m->T_max, &s, err) != 0 ||
        mixer_kv_int(&kv, "fixed", "c", s < 8 ? s : 8, 1, m->T_max, &cc, err) != 0 ||
        mixer_kv_finish(&kv, "fixed", "s (block length), c (summary positions per block)", err) != 0)
        return fail(c, m);
    if (cc > s) {
        mx_errorf(err, "mixer fixed: c=%ld summary positions cannot exceed the block length s=%ld; use c <= %ld",
                  cc, s, s);
        return fail(c, m);
    }
    c->s = (int)s;
    c->c = (int)cc;
    snprintf(m->spec, sizeof m->spec, "fixed:s=%d,c=%d", c->s, c->c);
    /* The whole-pattern layout serves generation and the FLOP count; training runs the own
     * block through the engine and the earlier blocks' summaries by GEMM (fixed_core). */
    finish(m, c, pow2_at_least(c->c, 16, 64), 0);
    c->two_part = 1;
    bsa_layout_build(&c->local, m->T_max, m->H, pow2_at_least(c->s, 16, 64), 0, block_candidates, block_allowed, c);
    memset(&c->cls, 0, sizeof c->cls);
    return 0;
}

static int bigbird_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    struct sparse_cfg *c = cfg_new(m, PAT_BIGBIRD);
    long b, w, r, g;
    if (mixer_kv_parse(&kv, "bigbird", args, err) != 0 ||
        mixer_kv_int(&kv, "bigbird", "b", m->T_max < 64 ? m->T_max : 64, 1, m->T_max, &b, err) != 0 ||
        mixer_kv_int(&kv, "bigbird", "w", 3, 1, m->T_max, &w, err) != 0 ||
        mixer_kv_int(&kv, "bigbird", "r", 3, 0, m->T_max, &r, err) != 0 ||
        mixer_kv_int(&kv, "bigbird", "g", 2, 0, m->T_max, &g, err) != 0 ||
        mixer_kv_finish(&kv, "bigbird", "b (block size), w (window blocks), r (random blocks), g (global blocks)", err) != 0)
        return fail(c, m);
    if (b > BSA_MAX_BS && b % BSA_MAX_BS != 0) {
        mx_errorf(err, "mixer bigbird: b=%ld must be <= %d or a multiple of %d (the engine's tile); e.g. b=%ld",
                  b, BSA_MAX_BS, BSA_MAX_BS, (b + BSA_MAX_BS / 2) / BSA_MAX_BS * BSA_MAX_BS);
        return fail(c, m);
    }
    long nB = (m->T_max + b - 1) / b;
    if (g > nB) {
        mx_errorf(err, "mixer bigbird: g=%ld global blocks of b=%ld exceed the %ld blocks in the context T_max=%d; use g <= %ld or a smaller b",
                  g, b, nB, m->T_max, nB);
        return fail(c, m);
    }
    c->b = (int)b;
    c->w = (int)w;
    c->r = (int)r;
    c->g = (int)g;
    c->nB = (m->T_max + c->b - 1) / c->b;
    bigbird_draw(c, m->seed, m->layer);
    snprintf(m->spec, sizeof m->spec, "bigbird:b=%d,w=%d,r=%d,g=%d", c->b, c->w, c->r, c->g);
    return finish(m, c, c->b <= BSA_MAX_BS ? c->b : BSA_MAX_BS, c->r > 0);
}

/* ---- generation: ring buffer for window and dilated ------------------------------------- *
 * State: keys as columns Kt (H, D, rld) and values V (H, ring, D) for the last `ring`
 * positions (slot t mod ring), then the g global tokens the same way, then a row scratch.
 * Bounded by the pattern's reach, whatever T_max is. */

static size_t pad16(int n)
{
    return mx_round_up((size_t)n, 16) + 16; /* row loads may read 15 columns past n */
}

static size_t ring_state_floats(const struct mixer *m)
{
    const struct sparse_cfg *c = m->cfg;
    size_t H = (size_t)m->H, D = (size_t)m->D;
    return H * D * pad16(c->ring) + H * (size_t)c->ring * D + H * D * pad16(c->g) +
           H * (size_t)c->g * D + BSA_MAX_BS + D + 16;
}

static void ring_step(const struct mixer *m, float *o_t, float *state, const float *q_t,
                      const float *k_t, const float *v_t, const float *xp, int t)
{
    (void)xp;
    const struct sparse_cfg *c = m->cfg;
    const int H = m->H, D = m->D, R = c->ring, G = c->g;
    const size_t rld = pad16(R), gld = pad16(G);
    const float scale = 1.0f / sqrtf((float)D);
    float *kt = state, *vr = kt + (size_t)H * D * rld;
    float *kg = vr + (size_t)H * R * D, *vg = kg + (size_t)H * D * gld;
    float *sbuf = vg + (size_t)H * G * D, *acc = sbuf + BSA_MAX_BS;
    for (int h = 0; h < H; h++) {
        float *Kt = kt + (size_t)h * D * rld, *V = vr + (size_t)h * R * D;
        float *Kg = kg + (size_t)h * D * gld, *Vg = vg + (size_t)h * G * D;
        const float *kh = k_t + (size_t)h * D, *vh = v_t + (size_t)h * D, *qh = q_t + (size_t)h * D;
        int slot = t % R;
        for (int d = 0; d < D; d++)
            Kt[(size_t)d * rld + slot] = kh[d];
        memcpy(V + (size_t)slot * D, vh, sizeof(float) * (size_t)D);
        if (t < G) {
            for (int d = 0; d < D; d++)
                Kg[(size_t)d * gld + t] = kh[d];
            memcpy(Vg + (size_t)t * D, vh, sizeof(float) * (size_t)D);
        }
        float mx = -INFINITY, l = 0;
        memset(acc, 0, sizeof(float) * (size_t)D);
        int ng = t + 1 < G ? t + 1 : G; /* the global tokens seen so far, all allowed */
        for (int j0 = 0; j0 < ng; j0 += BSA_MAX_BS) {
            int nj = ng - j0 < BSA_MAX_BS ? ng - j0 : BSA_MAX_BS;
            bsa_row_chunk(acc, &mx, &l, sbuf, qh, Kg + j0, gld, Vg + (size_t)j0 * D, nj,
                          ~(uint64_t)0, scale, D);
        }
        for (int s0 = 0; s0 < R; s0 += BSA_MAX_BS) {
            int nj = R - s0 < BSA_MAX_BS ? R - s0 : BSA_MAX_BS;
            uint64_t bits = 0;
            for (int e = 0; e < nj; e++) {
                int s = s0 + e, p = t - ((t - s) % R + R) % R; /* position held in slot s */
                if (p < G) /* not yet written, or a global token counted above */
                    continue;
                if (sp_allowed(c, h, t, p))
                    bits |= (uint64_t)1 << e;
            }
            if (bits)
                bsa_row_chunk(acc, &mx, &l, sbuf, qh, Kt + s0, rld, V + (size_t)s0 * D, nj, bits,
                              scale, D);
        }
        bsa_row_finish(o_t + (size_t)h * D, acc, l, D);
    }
}

/* ---- strided: two dense-tiled parts ------------------------------------------------------
 * The whole-pattern layout lists every tile that holds a piece of a stride diagonal and runs it
 * whole: ~s/bs times the useful work of the strided part (11x at T = 16k, 22x at 64k for
 * s = 128), and every lower-triangle tile when s < bs. Instead: the local band (t-s, t] through
 * the engine on q, k, v as they are; the strided keys through the engine on q, k, v gathered by
 * residue class mod s (class r = positions r, r+s, ...; (B*H*s) sequences of n = ceil(T/s),
 * strictly causal), where they are dense. The two partial softmaxes merge by their
 * log-sum-exps: o = (e^l1 o1 + e^l2 o2) / (e^l1 + e^l2), lse = log(e^l1 + e^l2).
 * WHY backward needs no merge: with the FINAL o and lse, P_ij = exp(s_ij - lse_i) and
 * dS_ij = P_ij (dout_i·v_j - dout_i·o_i) are the full pattern's, so each part's backward, run on
 * its own key set with the final o and lse, gives exactly that part's share of dq, dk, dv.
 * The first row of a class sees no strided key (l2 = -inf, the engine's o2 there is not used).
 * WHY in chunks of classes: the classes are independent sequences, so the gathered copies
 * (nine (sequences, n, D) buffers in backward) need only hold one chunk of at most chunk_rows
 * rows at a time, not all B*H*T rows: at T = 64k that is ~75 MB of scratch instead of ~300 MB,
 * and a chunk stays in the last-level cache between its gather and its engine call. */

struct strided_work {
    float *eng;                /* the engine's K/V-transposed work, the larger of the two parts */
    float *qg, *kg, *vg, *og;  /* (seq, n, D) gathered, one chunk; padding rows (r + a*s >= T) zero */
    float *lg;                 /* (seq, n) */
    float *dg, *dqg, *dkg, *dvg; /* backward: dout gathered, and the class part's gradients */
    int seq;                   /* class sequences per chunk */
};

/* The next count floats of base (NULL while sizing), 64-byte multiples apart. */
static float *strided_take(float *base, size_t *off, size_t count)
{
    float *p = base ? base + *off : NULL;
    *off += mx_round_up(count, 16);
    return p;
}

static size_t strided_work_bind(const struct mixer *m, int B, int T, float *base, struct strided_work *w)
{
    const struct sparse_cfg *c = m->cfg;
    int s = c->s, n = (T + s - 1) / s, total = B * m->H * s;
    int seq = c->chunk_rows / n;
    seq = seq < 1 ? 1 : seq > total ? total : seq;
    size_t G = (size_t)seq * n * m->D;
    size_t e1 = 2 * (size_t)B * m->H * m->D * bsa_padded_T(T), e2 = 2 * (size_t)seq * m->D * bsa_padded_T(n);
    size_t off = 0;
    w->seq = seq;
    w->eng = strided_take(base, &off, e1 > e2 ? e1 : e2);
    w->qg = strided_take(base, &off, G);
    w->kg = strided_take(base, &off, G);
    w->vg = strided_take(base, &off, G);
    w->og = strided_take(base, &off, G);
    w->lg = strided_take(base, &off, (size_t)seq * n);
    w->dg = strided_take(base, &off, G);
    w->dqg = strided_take(base, &off, G);
    w->dkg = strided_take(base, &off, G);
    w->dvg = strided_take(base, &off, G);
    return off;
}

static size_t strided_work_floats(const struct mixer *m, int B, int T)
{
    const struct sparse_cfg *c = m->cfg;
    if (!c->two_part)
        return bsa_work_floats(m, B, T);
    struct strided_work w;
    return strided_work_bind(m, B, T, NULL, &w);
}

/* Class sequences q0..q0+cnt-1 (sequence q = bh*s + r: positions r, r+s, ... of row bh):
 * dst (cnt, n, width) <- those rows of src (B*H, T, width), zero past T (dir = 0); or
 * dst (B*H, T, width) += the rows of src (cnt, n, width) (dir = 1). width = D or 1 (lse). */
static void strided_gather(float *dst, const float *src, int T, int s, int n, int width, int q0, int cnt, int dir)
{
#pragma omp parallel for collapse(2) schedule(static)
    for (int e = 0; e < cnt; e++)
        for (int a = 0; a < n; a++) {
            int bh = (q0 + e) / s, i = (q0 + e) % s + a * s;
            float *g = (dir ? (float *)src : dst) + ((size_t)e * n + a) * width;
            if (dir == 0) {
                if (i < T)
                    memcpy(g, src + ((size_t)bh * T + i) * width, sizeof(float) * (size_t)width);
                else
                    memset(g, 0, sizeof(float) * (size_t)width);
            } else if (i < T) {
                float *d = dst + ((size_t)bh * T + i) * width;
                for (int k = 0; k < width; k++)
                    d[k] += g[k];
            }
        }
}

static void strided_forward(const struct mixer *m, float *o, float *saved, float *work, const float *q,
                            const float *k, const float *v, const float *xp, int B, int T)
{
    const struct sparse_cfg *c = m->cfg;
    if (!c->two_part) {
        bsa_forward(m, o, saved, work, q, k, v, xp, B, T);
        return;
    }
    const int H = m->H, D = m->D, s = c->s, n = (T + s - 1) / s, total = B * H * s;
    struct strided_work w;
    strided_work_bind(m, B, T, work, &w);
    const struct bsa_engine *E = bsa_engine();
    E->forward(&c->local, H, D, o, saved, w.eng, q, k, v, B, T); /* o, lse <- the local part */
    if (n < 2)
        return; /* s >= T: no strided key */
    for (int q0 = 0; q0 < total; q0 += w.seq) {
        int cnt = total - q0 < w.seq ? total - q0 : w.seq;
        strided_gather(w.qg, q, T, s, n, D, q0, cnt, 0);
        strided_gather(w.kg, k, T, s, n, D, q0, cnt, 0);
        strided_gather(w.vg, v, T, s, n, D, q0, cnt, 0);
        E->forward(&c->cls, 1, D, w.og, w.lg, w.eng, w.qg, w.kg, w.vg, cnt, n);
#pragma omp parallel for schedule(static)
        for (int e = 0; e < cnt; e++) {
            int bh = (q0 + e) / s, r = (q0 + e) % s;
            for (int a = 1; a < n && r + a * s < T; a++) {
                size_t gi = (size_t)e * n + a, ti = (size_t)bh * T + r + (size_t)a * s;
                float l1 = saved[ti], l2 = w.lg[gi], mx = l1 > l2 ? l1 : l2;
                float w1 = expf(l1 - mx), w2 = expf(l2 - mx), inv = 1.0f / (w1 + w2);
                float *oi = o + ti * D;
                const float *o2 = w.og + gi * D;
                for (int d = 0; d < D; d++)
                    oi[d] = (w1 * oi[d] + w2 * o2[d]) * inv;
                saved[ti] = mx + logf(w1 + w2);
            }
        }
    }
}

static void strided_backward(const struct mixer *m, float *dq, float *dk, float *dv, float *dxp, float *work,
                             const float *dout, const float *o, const float *saved, const float *q,
                             const float *k, const float *v, const float *xp, int B, int T)
{
    const struct sparse_cfg *c = m->cfg;
    if (!c->two_part) {
        bsa_backward(m, dq, dk, dv, dxp, work, dout, o, saved, q, k, v, xp, B, T);
        return;
    }
    const int H = m->H, D = m->D, s = c->s, n = (T + s - 1) / s, total = B * H * s;
    struct strided_work w;
    strided_work_bind(m, B, T, work, &w);
    const struct bsa_engine *E = bsa_engine();
    E->backward(&c->local, H, D, dq, dk, dv, 0, w.eng, dout, o, saved, q, k, v, B, T);
    if (n < 2)
        return;
    for (int q0 = 0; q0 < total; q0 += w.seq) {
        int cnt = total - q0 < w.seq ? total - q0 : w.seq;
        strided_gather(w.qg, q, T, s, n, D, q0, cnt, 0);
        strided_gather(w.kg, k, T, s, n, D, q0, cnt, 0);
        strided_gather(w.vg, v, T, s, n, D, q0, cnt, 0);
        strided_gather(w.og, o, T, s, n, D, q0, cnt, 0);
        strided_gather(w.dg, dout, T, s, n, D, q0, cnt, 0);
        strided_gather(w.lg, saved, T, s, n, 1, q0, cnt, 0);
        E->backward(&c->cls, 1, D, w.dqg, w.dkg, w.dvg, 0, w.eng, w.dg, w.og, w.lg, w.qg, w.kg, w.vg, cnt, n);
        strided_gather(dq, w.dqg, T, s, n, D, q0, cnt, 1);
        strided_gather(dk, w.dkg, T, s, n, D, q0, cnt, 1);
        strided_gather(dv, w.dvg, T, s, n, D, q0, cnt, 1);
    }
}

int sparse_strided_chunk_rows(struct mixer *m, int rows);
/* For tests: set strided's (split=0) gathered rows per chunk (>= 1; fewer than one class
 * sequence means one sequence a chunk), so small sizes run several chunks; returns the previous
 * value. Only lower it after the work was sized: fewer rows bind less work, never more. */
int sparse_strided_chunk_rows(struct mixer *m, int rows)
{
    struct sparse_cfg *c = m->cfg;
    MX_ASSERT(c->kind == PAT_STRIDED && rows >= 1);
    int old = c->chunk_rows;
    c->chunk_rows = rows;
    return old;
}

/* split=0 trains on the two parts; split=1 (whole heads per part) and generation use the
 * whole-pattern layout (bsa.c's KV cache). */
static const struct attn_core strided_core = {
    .saved_floats = bsa_saved_floats,
    .work_floats = strided_work_floats,
    .forward = strided_forward,
    .backward = strided_backward,
    .state_floats = bsa_cache_state_floats,
    .step = bsa_cache_step,
};

/* ---- fixed: the own block by the engine, the summaries by GEMM ----------------------------
 * The whole-pattern layout cut the summary columns (c of every s) into 16-wide masked tiles.
 * Instead: the own block (j in i's block, j <= i) through the engine; the summaries of the
 * earlier blocks gathered per (batch, head) into packed Ks, Vs (nb*c, D), where query block b
 * sees exactly the first b*c rows: one dense (rows x b*c) score GEMM per query block, softmax
 * by rows (the SIMD exp of attn_kernels), one GEMM P Vs. The two partial softmaxes merge by
 * log-sum-exp as for strided; backward uses the final o and lse (same argument) and scatters
 * dKs, dVs back. */

struct fixed_work {
    float *eng;      /* the engine's work for the own-block part */
    float *per_bh;   /* (B*H) units: Ks, Vs, dKs, dVs (P, D) each | S, dP (s, P) each | O2 (s, D) |
                      * the rows' max and sum (s) each */
    size_t unit;
    int P;           /* packed summary rows: (blocks - 1) * c */
};

static size_t fixed_work_bind(const struct mixer *m, int B, int T, float *base, struct fixed_work *w)
{
    const struct sparse_cfg *c = m->cfg;
    int nbq = (T + c->s - 1) / c->s;
    size_t off = 0;
    w->P = (nbq - 1) * c->c;
    size_t P = (size_t)(w->P > 0 ? w->P : 1);
    w->unit = mx_round_up(4 * P * m->D + 2 * (size_t)c->s * P + (size_t)c->s * m->D + 2 * (size_t)c->s, 16);
    w->eng = strided_take(base, &off, bsa_work_floats(m, B, T));
    w->per_bh = strided_take(base, &off, (size_t)B * m->H * w->unit);
    return off;
}

static size_t fixed_work_floats(const struct mixer *m, int B, int T)
{
    struct fixed_work w;
    return fixed_work_bind(m, B, T, NULL, &w);
}

/* Ks, Vs (P, D) <- the summary rows (the last c of each block) of k, v (T, D), blocks 0..nbq-2. */
static void fixed_pack(float *Ks, float *Vs, const float *k, const float *v, int s, int cc, int nbq, int D)
{
    for (int b = 0; b + 1 < nbq; b++) {
        size_t src = ((size_t)b * s + s - cc) * D, dst = (size_t)b * cc * D;
        memcpy(Ks + dst, k + src, sizeof(float) * (size_t)cc * D);
        memcpy(Vs + dst, v + src, sizeof(float) * (size_t)cc * D);
    }
}

static void fixed_forward(const struct mixer *m, float *o, float *saved, float *work, const float *q,
                          const float *k, const float *v, const float *xp, int B, int T)
{
    (void)xp;
    const struct sparse_cfg *c = m->cfg;
    const int H = m->H, D = m->D, s = c->s, nbq = (T + s - 1) / s, BH = B * H;
    struct fixed_work w;
    fixed_work_bind(m, B, T, work, &w);
    bsa_engine()->forward(&c->local, H, D, o, saved, w.eng, q, k, v, B, T);
    if (nbq < 2)
        return;
    const struct attn_kernels *ak = attn_kernels();
    const float scale = 1.0f / sqrtf((float)D);
    const int P = w.P;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < BH; bh++) {
        float *Ks = w.per_bh + (size_t)bh * w.unit, *Vs = Ks + (size_t)P * D, *S = Vs + 3 * (size_t)P * D;
        float *O2 = S + 2 * (size_t)s * P; /* (s, D): P Vs of one query block, unnormalised */
        float *mx = O2 + (size_t)s * D, *l = mx + s; /* (s) each: the rows' max and exp sum */
        const size_t base = (size_t)bh * T;
        fixed_pack(Ks, Vs, k + base * D, v + base * D, s, c->c, nbq, D);
        for (int b = 1; b < nbq; b++) {
            int i0 = b * s, ni = T - i0 < s ? T - i0 : s, nk = b * c->c;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nk, D, scale, q + (base + i0) * D, D, Ks, D,
                        0.0f, S, nk);
            for (int r = 0; r < ni; r++) {
                float *Sr = S + (size_t)r * nk;
                mx[r] = ak->max(Sr, -INFINITY, (size_t)nk);
                l[r] = ak->exp_sum(Sr, Sr, mx[r], (size_t)nk);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, D, nk, 1.0f, S, nk, Vs, D, 0.0f, O2, D);
            for (int r = 0; r < ni; r++) {
                /* merge with the own-block part: weights e^(l1 - M), e^(l2 - M), l2 = max + log l */
                size_t ti = base + i0 + r;
                float l1 = saved[ti], l2 = mx[r] + logf(l[r]), M = l1 > l2 ? l1 : l2;
                float w1 = expf(l1 - M), w2 = expf(l2 - M), inv = 1.0f / (w1 + w2), a2 = w2 * inv / l[r];
                float *oi = o + ti * D;
                const float *o2 = O2 + (size_t)r * D;
                for (int d = 0; d < D; d++)
                    oi[d] = oi[d] * (w1 * inv) + a2 * o2[d];
                saved[ti] = M + logf(w1 + w2);
            }
        }
    }
}

static void fixed_backward(const struct mixer *m, float *dq, float *dk, float *dv, float *dxp, float *work,
                           const float *dout, const float *o, const float *saved, const float *q,
                           const float *k, const float *v, const float *xp, int B, int T)
{
    (void)dxp, (void)xp;
    const struct sparse_cfg *c = m->cfg;
    const int H = m->H, D = m->D, s = c->s, nbq = (T + s - 1) / s, BH = B * H;
    struct fixed_work w;
    fixed_work_bind(m, B, T, work, &w);
    bsa_engine()->backward(&c->local, H, D, dq, dk, dv, 0, w.eng, dout, o, saved, q, k, v, B, T);
    if (nbq < 2)
        return;
    const struct attn_kernels *ak = attn_kernels();
    const float scale = 1.0f / sqrtf((float)D);
    const int P = w.P;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < BH; bh++) {
        float *Ks = w.per_bh + (size_t)bh * w.unit, *Vs = Ks + (size_t)P * D;
        float *dKs = Vs + (size_t)P * D, *dVs = dKs + (size_t)P * D;
        float *S = dVs + (size_t)P * D, *dP = S + (size_t)s * P;
        const size_t base = (size_t)bh * T;
        fixed_pack(Ks, Vs, k + base * D, v + base * D, s, c->c, nbq, D);
        memset(dKs, 0, sizeof(float) * 2 * (size_t)P * D);
        for (int b = 1; b < nbq; b++) {
            int i0 = b * s, ni = T - i0 < s ? T - i0 : s, nk = b * c->c;
            const float *qb = q + (base + i0) * D, *gb = dout + (base + i0) * D, *ob = o + (base + i0) * D;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nk, D, scale, qb, D, Ks, D, 0.0f, S, nk);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nk, D, 1.0f, gb, D, Vs, D, 0.0f, dP, nk);
            for (int r = 0; r < ni; r++) { /* P = exp(S - lse); dS = P (dP - dout·o) */
                float *Sr = S + (size_t)r * nk, *dPr = dP + (size_t)r * nk;
                float delta = ak->dot(gb + (size_t)r * D, ob + (size_t)r * D, (size_t)D);
                ak->exp_sum(Sr, Sr, saved[base + i0 + r], (size_t)nk);
                ak->softmax_grad(dPr, Sr, delta, 1.0f, (size_t)nk);
            }
            /* dVs += Pᵀ dout, dq += scale dS Ks, dKs += scale dSᵀ q */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, D, ni, 1.0f, S, nk, gb, D, 1.0f, dVs, D);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, D, nk, scale, dP, nk, Ks, D, 1.0f,
                        dq + (base + i0) * D, D);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, D, ni, scale, dP, nk, qb, D, 1.0f, dKs, D);
        }
        for (int b = 0; b + 1 < nbq; b++)
            for (int e = 0; e < c->c; e++) {
                size_t src = ((size_t)b * c->c + e) * D, dst = (base + (size_t)b * s + s - c->c + e) * D;
                for (int d = 0; d < D; d++) {
                    dk[dst + d] += dKs[src + d];
                    dv[dst + d] += dVs[src + d];
                }
            }
    }
}

static const struct attn_core fixed_core = {
    .saved_floats = bsa_saved_floats,
    .work_floats = fixed_work_floats,
    .forward = fixed_forward,
    .backward = fixed_backward,
    .state_floats = bsa_cache_state_floats,
    .step = bsa_cache_step,
};

/* ---- ops ------------------------------------------------------------------------------- */

/* The engine's core with the ring-buffer step (window, dilated); the other patterns use
 * bsa_core (its full KV cache follows the layout). */
static const struct attn_core ring_core = {
    .saved_floats = bsa_saved_floats,
    .work_floats = bsa_work_floats,
    .forward = bsa_forward,
    .backward = bsa_backward,
    .state_floats = ring_state_floats,
    .step = ring_step,
};

static const char *const window_tests[] = {"window:w=5", "window:w=4,g=2", "window:w=20", NULL};
static const char *const dilated_tests[] = {"dilated:w=3,d=1,2", "dilated:w=4,d=3,g=1", NULL};
static const char *const strided_tests[] = {"strided:s=4", "strided:s=3,split=1", NULL};
static const char *const fixed_tests[] = {"fixed:s=4,c=2", "fixed:s=6,c=1", NULL};
static const char *const bigbird_tests[] = {"bigbird:b=4,w=3,r=1,g=1", "bigbird:b=3,w=2,r=2,g=1", NULL};

const struct mixer_ops attn_window_ops = {
    ATTN_OPS("window",
           "window:w=256,g=0 — Longformer sliding window: t attends t-w+1..t, plus the first g "
           "tokens (global tokens / attention sinks); Longformer grows w from 32 to 512 with depth; "
           "O(T*w) time, generation keeps a ring buffer of w (+g) keys",
             window_tests, window_parse, sparse_destroy, attn_tensors, attn_init, bsa_flops, &ring_core),
};
const struct mixer_ops attn_dilated_ops = {
    ATTN_OPS("dilated",
           "dilated:w=128,d=2,g=0 — Longformer dilated window: w taps t, t-d, ..., t-(w-1)d; d may "
           "be one value per head (d=1,1,2,4, as Longformer's upper layers); plus g global tokens; "
           "cost as a window of the reach (w-1)d+1, ring buffer of that reach",
             dilated_tests, dilated_parse, sparse_destroy, attn_tensors, attn_init, bsa_flops, &ring_core),
};
const struct mixer_ops attn_strided_ops = {
    ATTN_OPS("strided",
           "strided:s=sqrt(T_max),split=0 — Sparse Transformer strided: local (t-s, t] plus every j "
           "with (t-j) mod s = 0 (paper: s ~ sqrt(T)); split=1 puts the local part on the first "
           "half of the heads and the strided part on the rest, as the paper",
             strided_tests, strided_parse, sparse_destroy, attn_tensors, attn_init, bsa_flops, &strided_core),
};
const struct mixer_ops attn_fixed_ops = {
    ATTN_OPS("fixed",
           "fixed:s=128,c=8 — Sparse Transformer fixed: t attends its own block of s positions "
           "plus the last c positions of every earlier block (paper: s=128, c in 8..32)",
             fixed_tests, fixed_parse, sparse_destroy, attn_tensors, attn_init, bsa_flops, &fixed_core),
};
const struct mixer_ops attn_bigbird_ops = {
    ATTN_OPS("bigbird",
           "bigbird:b=64,w=3,r=3,g=2 — BigBird, causal: blocks of b tokens; a query block sees its "
           "w most recent blocks, r random earlier blocks (fixed per layer from the seed) and the "
           "first g blocks (paper: b=64, w=3, r=3, g=2)",
             bigbird_tests, bigbird_parse, sparse_destroy, attn_tensors, attn_init, bsa_flops, &bsa_core),
};
