/* test_sparse.c — the sparse patterns against brute force: for each pattern, dense attention
 * with an explicit T x T mask written here, independently of the layout code, must match the
 * engine's forward and gradients; equivalences with dense (window w >= T, bigbird all global);
 * bad specs name their key; the window ring buffer does not grow with T_max; layout work grows
 * linearly; bigbird's random blocks are reproducible, distinct and in range; step == forward
 * on the vector paths. Not the generic suite (test_mixers.c runs the specs' test_specs). */
#include "check.h"
#include "mixer_check.h"

#include "attention/bsa.h"

#include <math.h>
#include <string.h>

int sparse_bigbird_random_blocks(const struct mixer *m, int h, int Q, int *out);
int sparse_strided_chunk_rows(struct mixer *m, int rows);

/* ---- the patterns, restated from their definitions ------------------------------------ */
struct pat {
    const char *spec;
    int kind; /* 0 window, 1 dilated, 2 strided, 3 fixed, 4 bigbird */
    int w, g, d[4], s, split, c, b, r;
    const struct mixer *m; /* bigbird: where the random blocks come from */
    int H;
};

static int pat_allowed(const void *ctx, int h, int i, int j)
{
    const struct pat *p = ctx;
    if (j > i)
        return 0;
    switch (p->kind) {
    case 0: return i - j <= p->w - 1 || j < p->g;
    case 1: /* taps t, t-d, ..., t-(w-1)d */
        if (j < p->g)
            return 1;
        for (int k = 0; k < p->w; k++)
            if (j == i - k * p->d[h])
                return 1;
        return 0;
    case 2: {
        int local = j > i - p->s, col = (i - j) % p->s == 0;
        if (p->split)
            return h < p->H / 2 ? local : col;
        return local || col;
    }
    case 3: {
        int own_start = i - i % p->s;
        return j >= own_start || (j % p->s) > p->s - 1 - p->c;
    }
    case 4: {
        int Q = i / p->b, K = j / p->b;
        if (K > Q - p->w || K < p->g)
            return 1;
        int rnd[64], n = sparse_bigbird_random_blocks(p->m, h, Q, rnd);
        for (int e = 0; e < n; e++)
            if (rnd[e] == K)
                return 1;
        return 0;
    }
    }
    return 0;
}

/* chunk > 0: strided (split=0) runs its class part in chunks of that many gathered rows. */
static int check_brute_chunk(struct pat *p, int H, int D, int T, int B, int chunk)
{
    struct mixer m;
    struct mixer_dims dm = {.C = H * D, .H = H, .T_max = T, .bias = 0, .layer = 3, .n_layer = 4, .seed = 99};
    struct mx_error err;
    if (mixer_create(&m, p->spec, &dm, &err) != 0) {
        fprintf(stderr, "FAIL %s: %s\n", p->spec, err.msg);
        return 1;
    }
    p->m = &m;
    p->H = H;
    const struct attn_core *core = m.ops->core;
    size_t n = (size_t)B * H * T * D, nl = (size_t)B * H * T;
    float *q = mx_xmalloc(n * 4), *k = mx_xmalloc(n * 4), *v = mx_xmalloc(n * 4), *dout = mx_xmalloc(n * 4);
    float *o1 = mx_xmalloc(n * 4), *o2 = mx_xmalloc(n * 4), *l1 = mx_xmalloc(nl * 4), *l2 = mx_xmalloc(nl * 4);
    float *g1 = mx_xcalloc(3 * n * 4), *g2 = mx_xcalloc(3 * n * 4);
    float *work = mx_xcalloc(core->work_floats(&m, B, T) * 4 + 64);
    if (chunk > 0)
        sparse_strided_chunk_rows(&m, chunk); /* after sizing: fewer rows bind less work */
    mc_fill_normal(q, n, 21 + T, 1.5f);
    mc_fill_normal(k, n, 22 + T, 1.5f);
    mc_fill_normal(v, n, 23 + T, 1.0f);
    mc_fill_normal(dout, n, 24 + T, 1.0f);
    attn_masked_ref_forward(o1, l1, q, k, v, B, H, T, D, pat_allowed, p);
    attn_masked_ref_backward(g1, g1 + n, g1 + 2 * n, dout, o1, l1, q, k, v, B, H, T, D, pat_allowed, p);
    core->forward(&m, o2, l2, work, q, k, v, NULL, B, T);
    core->backward(&m, g2, g2 + n, g2 + 2 * n, NULL, work, dout, o2, l2, q, k, v, NULL, B, T);
    double eo = mc_rel_err(o2, o1, n, 1e-6), el = mc_rel_err(l2, l1, nl, 1e-6);
    double eg = mc_rel_err(g2, g1, 3 * n, 1e-6);
    const struct bsa_layout *L = m.cfg;
    size_t full = (size_t)H * L->nb * (L->nb + 1) / 2;
    int bad = !(eo < 1e-5 && el < 1e-5 && eg < 1e-5);
    fprintf(stderr, "%s %-28s H=%d D=%2d T=%3d vs masked brute force: o %.1e lse %.1e grads %.1e  (block %d, %zu of %zu causal pairs%s)\n",
            bad ? "FAIL" : "ok  ", m.spec, H, D, T, eo, el, eg, L->bs, L->n_pairs, full, chunk > 0 ? ", chunked" : "");
    mx_free(q), mx_free(k), mx_free(v), mx_free(dout), mx_free(o1), mx_free(o2), mx_free(l1), mx_free(l2);
    mx_free(g1), mx_free(g2), mx_free(work);
    mixer_destroy(&m);
    return bad;
}

static int check_brute(struct pat *p, int H, int D, int T, int B)
{
    return check_brute_chunk(p, H, D, T, B, 0);
}

static int check_bad_spec(const char *spec, int H, int T_max, const char *needle)
{
    struct mixer m;
    struct mixer_dims d = {.C = 8 * H, .H = H, .T_max = T_max, .bias = 0, .layer = 0, .n_layer = 1, .seed = 1};
    struct mx_error err = {{0}};
    int rc = mixer_create(&m, spec, &d, &err);
    if (rc == 0) {
        fprintf(stderr, "FAIL bad spec '%s' (T_max %d, H %d) was accepted as %s\n", spec, T_max, H, m.spec);
        mixer_destroy(&m);
        return 1;
    }
    int bad = strstr(err.msg, needle) == NULL;
    fprintf(stderr, "%s bad spec %-26s -> %s\n", bad ? "FAIL" : "ok  ", spec, err.msg);
    return bad;
}

static size_t core_state(const char *spec, int T_max, size_t *pairs)
{
    struct mixer m;
    struct mixer_dims d = {.C = 128, .H = 4, .T_max = T_max, .bias = 0, .layer = 0, .n_layer = 1, .seed = 1};
    struct mx_error err;
    MX_ASSERT(mixer_create(&m, spec, &d, &err) == 0);
    size_t s = m.ops->core->state_floats(&m);
    if (pairs)
        *pairs = ((const struct bsa_layout *)m.cfg)->n_pairs;
    mixer_destroy(&m);
    return s;
}

static int check_bigbird_random(void)
{
    struct mixer a, b, c;
    struct mixer_dims d = {.C = 32, .H = 4, .T_max = 512, .bias = 0, .layer = 2, .n_layer = 4, .seed = 7};
    struct mx_error err;
    MX_ASSERT(mixer_create(&a, "bigbird:b=8,w=3,r=3,g=2", &d, &err) == 0);
    MX_ASSERT(mixer_create(&b, "bigbird:b=8,w=3,r=3,g=2", &d, &err) == 0);
    d.layer = 3;
    MX_ASSERT(mixer_create(&c, "bigbird:b=8,w=3,r=3,g=2", &d, &err) == 0);
    int bad = 0, differs = 0, headdiff = 0;
    for (int h = 0; h < 4; h++)
        for (int Q = 0; Q < 64; Q++) {
            int ra[8], rb[8], rc[8], r0[8];
            int na = sparse_bigbird_random_blocks(&a, h, Q, ra), nb = sparse_bigbird_random_blocks(&b, h, Q, rb);
            int nc = sparse_bigbird_random_blocks(&c, h, Q, rc), n0 = sparse_bigbird_random_blocks(&a, 0, Q, r0);
            int avail = Q - 3 - 2 + 1 < 0 ? 0 : Q - 3 - 2 + 1;
            bad |= na != nb || memcmp(ra, rb, sizeof(int) * (size_t)na) != 0;
            bad |= na != (avail < 3 ? avail : 3);
            for (int e = 0; e < na; e++) {
                bad |= ra[e] < 2 || ra[e] > Q - 3;
                for (int f = 0; f < e; f++)
                    bad |= ra[e] == ra[f];
            }
            differs |= nc != na || memcmp(ra, rc, sizeof(int) * (size_t)na) != 0;
            headdiff |= n0 != na || memcmp(ra, r0, sizeof(int) * (size_t)na) != 0;
        }
    bad |= !differs || !headdiff;
    fprintf(stderr, "%s bigbird random blocks: reproducible, distinct, in [g, Q-w], count min(r, available); differ by layer %d, by head %d\n",
            bad ? "FAIL" : "ok  ", differs, headdiff);
    mixer_destroy(&a), mixer_destroy(&b), mixer_destroy(&c);
    return bad;
}

/* Brute force, small and vector head sizes, T across block edges. */
static struct pat pats[] = {
    {.spec = "window:w=5", .kind = 0, .w = 5},
    {.spec = "window:w=7,g=3", .kind = 0, .w = 7, .g = 3},
    {.spec = "window:w=100,g=2", .kind = 0, .w = 100, .g = 2},
    {.spec = "window:w=64", .kind = 0, .w = 64},
    {.spec = "dilated:w=4,d=1,2,3,4", .kind = 1, .w = 4, .d = {1, 2, 3, 4}},
    {.spec = "dilated:w=5,d=3,g=2", .kind = 1, .w = 5, .g = 2, .d = {3, 3, 3, 3}},
    {.spec = "dilated:w=20,d=1,1,2,4", .kind = 1, .w = 20, .d = {1, 1, 2, 4}},
    {.spec = "strided:s=5", .kind = 2, .s = 5},
    {.spec = "strided:s=6,split=1", .kind = 2, .s = 6, .split = 1},
    {.spec = "strided:s=70", .kind = 2, .s = 70},
    {.spec = "strided:s=7", .kind = 2, .s = 7},   /* T not a multiple of s: padded classes */
    {.spec = "strided:s=1", .kind = 2, .s = 1},   /* local part = the diagonal; one class = dense */
    {.spec = "fixed:s=8,c=2", .kind = 3, .s = 8, .c = 2},
    {.spec = "fixed:s=5,c=5", .kind = 3, .s = 5, .c = 5},
    {.spec = "fixed:s=40,c=20", .kind = 3, .s = 40, .c = 20},
    {.spec = "bigbird:b=8,w=3,r=2,g=1", .kind = 4, .b = 8, .w = 3, .r = 2, .g = 1},
    {.spec = "bigbird:b=5,w=2,r=3,g=2", .kind = 4, .b = 5, .w = 2, .r = 3, .g = 2},
    {.spec = "bigbird:b=16,w=2,r=1,g=0", .kind = 4, .b = 16, .w = 2, .r = 1, .g = 0},
};

static int case_brute_force(void)
{
    int f = 0;
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
        f += check_brute(&pats[i], 4, 8, 110, 2);
        f += check_brute(&pats[i], 4, 32, 150, 1);
    }
    /* Long rows: more than 8 listed tiles per query block, so several panels per row, tiles
     * that join into segments (bs 16) and tiles that cannot (b=5). */
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++)
        if (pats[i].kind >= 2)
            f += check_brute(&pats[i], 2, 16, 700, 1);
    return f;
}

/* strided (split=0) gathers its residue classes in chunks of sequences: one sequence a chunk
 * (rows 1), and chunks that do not divide the B*H*s sequences (rows 70: 3 of n = 22 or 4 of
 * n = 16, with a remainder), padded classes (T not a multiple of s) included. */
static int case_strided_chunks(void)
{
    int f = 0;
    struct pat p5 = {.spec = "strided:s=5", .kind = 2, .s = 5}, p7 = {.spec = "strided:s=7", .kind = 2, .s = 7};
    const int rows[] = {1, 70};
    for (int i = 0; i < 2; i++) {
        f += check_brute_chunk(&p5, 4, 8, 110, 2, rows[i]);
        f += check_brute_chunk(&p7, 2, 16, 110, 3, rows[i]);
    }
    return f;
}

/* ops->flops counts the pattern's own allowed pairs (useful work), not the tiles the engine
 * computes: equal to attn_pairs_flops over a brute-force count of pat_allowed, at T = T_max and
 * at a shorter odd T, for every pattern (s below and above the tile size included). */
static int case_useful_flops(void)
{
    const int H = 4, D = 8, Tm = 150;
    for (size_t pi = 0; pi < sizeof pats / sizeof pats[0]; pi++) {
        struct pat *p = &pats[pi];
        struct mixer m;
        struct mixer_dims dm = {.C = H * D, .H = H, .T_max = Tm, .bias = 0, .layer = 3, .n_layer = 4, .seed = 99};
        struct mx_error err;
        if (mixer_create(&m, p->spec, &dm, &err) != 0) {
            CHECK(0, "%s: %s", p->spec, err.msg);
            continue;
        }
        p->m = &m;
        p->H = H;
        const int Ts[] = {Tm, 37};
        for (int k = 0; k < 2; k++) {
            int T = Ts[k];
            double pairs = 0, f, b, ef, eb;
            for (int h = 0; h < H; h++)
                for (int i = 0; i < T; i++)
                    for (int j = 0; j <= i; j++)
                        pairs += pat_allowed(p, h, i, j);
            attn_pairs_flops(2 * pairs, D, &ef, &eb);
            m.ops->flops(&m, 2, T, &f, &b);
            CHECK(f == ef && b == eb, "%s T=%d: flops %.0f/%.0f, the allowed pairs give %.0f/%.0f", p->spec, T, f,
                  b, ef, eb);
        }
        mixer_destroy(&m);
    }
    return 0;
}

static int case_dense_equivalence(void)
{
    int f = 0;
    /* Equivalence with dense through the whole mixer (outputs, dx, dparams). */
    const struct {
        const char *a;
        int C, H, T;
    } eq[] = {
        {"window:w=20", 16, 2, 20},
        {"window:w=150", 64, 2, 150},
        {"bigbird:b=4,w=1,r=0,g=5", 16, 2, 20},
        {"bigbird:b=32,w=1,r=2,g=5", 64, 2, 150},
        {"strided:s=1", 16, 2, 20},
        {"fixed:s=40,c=40", 64, 2, 150},
        {"dilated:w=75,d=1,g=75", 64, 2, 150},
    };
    for (size_t i = 0; i < sizeof eq / sizeof eq[0]; i++) {
        int e = mc_check_equivalent(eq[i].a, "dense", eq[i].C, eq[i].H, 2, eq[i].T, 31, 1e-5) != 0;
        fprintf(stderr, "%s %s == dense (C=%d H=%d T=%d)\n", e ? "FAIL" : "ok  ", eq[i].a, eq[i].C, eq[i].H, eq[i].T);
        f += e;
    }
    return f;
}

static int case_bad_specs(void)
{
    int f = 0;
    /* Bad specs: the message names the key. */
    f += check_bad_spec("window:w=0", 2, 64, "w");
    f += check_bad_spec("window:w=65", 2, 64, "w");
    f += check_bad_spec("window:x=3", 2, 64, "'x'");
    f += check_bad_spec("window:w=abc", 2, 64, "w");
    f += check_bad_spec("window:g=-1", 2, 64, "g");
    f += check_bad_spec("dilated:w=3,d=1,2,3", 2, 64, "d=1,2,3");
    f += check_bad_spec("dilated:w=3,d=0", 2, 64, "d");
    f += check_bad_spec("dilated:w=30,d=4", 2, 64, "d=4");
    f += check_bad_spec("strided:s=100", 2, 64, "s");
    f += check_bad_spec("strided:s=0", 2, 64, "s");
    f += check_bad_spec("strided:s=8,split=1", 1, 64, "split");
    f += check_bad_spec("strided:s=8,split=2", 2, 64, "split");
    f += check_bad_spec("fixed:s=4,c=5", 2, 64, "c=5");
    f += check_bad_spec("fixed:s=65", 2, 64, "s");
    f += check_bad_spec("bigbird:b=100", 2, 1000, "b=100");
    f += check_bad_spec("bigbird:b=4,g=9", 2, 20, "g=9");
    f += check_bad_spec("bigbird:b=0", 2, 64, "b");
    f += check_bad_spec("bigbird:b=8,z=1", 2, 64, "'z'");
    return f;
}

static int case_step_state_bounded(void)
{
    int f = 0;
    /* Generation state: window/dilated ring buffers are bounded by the reach, not T_max. */
    size_t w1 = core_state("window:w=256", 1024, NULL), w2 = core_state("window:w=256", 16384, NULL);
    size_t d1 = core_state("dilated:w=64,d=1,2,4,8,g=4", 1024, NULL);
    size_t d2 = core_state("dilated:w=64,d=1,2,4,8,g=4", 16384, NULL);
    size_t x1 = core_state("dense", 1024, NULL), x2 = core_state("dense", 16384, NULL);
    int e = w1 != w2 || d1 != d2 || w1 > (size_t)2 * 4 * 32 * 300 || !(x2 > 8 * x1);
    fprintf(stderr, "%s step state floats T_max 1024 -> 16384: window:w=256 %zu -> %zu, dilated %zu -> %zu (dense %zu -> %zu)\n",
            e ? "FAIL" : "ok  ", w1, w2, d1, d2, x1, x2);
    f += e;
    return f;
}

static int case_work_linear(void)
{
    int f = 0, e;
    /* Work scales with listed blocks: linear in T for a window, quadratic for dense. */
    size_t p1, p2;
    core_state("window:w=256", 4096, &p1);
    core_state("window:w=256", 16384, &p2);
    e = !(p2 >= 4 * p1 && p2 * 100 <= 4 * p1 * 105);
    fprintf(stderr, "%s window:w=256 listed block pairs T 4096 -> 16384: %zu -> %zu (linear)\n", e ? "FAIL" : "ok  ", p1, p2);
    f += e;
    return f;
}

static int case_bigbird_random(void)
{
    return check_bigbird_random();
}

static int case_step_vector_paths(void)
{
    int f = 0, e;
    /* step == forward with the vector kernels, crossing tile and ring boundaries. */
    const char *steps[] = {"window:w=40,g=3", "window:w=70", "dilated:w=10,d=1,3", "strided:s=10",
                           "fixed:s=16,c=4", "bigbird:b=8,w=2,r=2,g=1", NULL};
    for (const char *const *s = steps; *s; s++) {
        struct mc_mixer t;
        if (mc_create(&t, *s, 64, 2, 150, 1, 150, 8, 3.0f) != 0) {
            f++;
            continue;
        }
        e = mc_check_step(&t, 1e-4) != 0 || mc_check_causality(&t, 0) != 0;
        fprintf(stderr, "%s %s step == forward and causal at C=64 H=2 T=150\n", e ? "FAIL" : "ok  ", t.m.spec);
        f += e;
        mc_free(&t);
    }
    return f;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"brute_force", case_brute_force},
        {"strided_chunks", case_strided_chunks},
        {"useful_flops", case_useful_flops},
        {"dense_equivalence", case_dense_equivalence},
        {"bad_specs", case_bad_specs},
        {"step_state_bounded", case_step_state_bounded},
        {"work_linear", case_work_linear},
        {"bigbird_random", case_bigbird_random},
        {"step_vector_paths", case_step_vector_paths},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
