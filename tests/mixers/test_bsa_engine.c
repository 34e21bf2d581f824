/* test_bsa_engine.c — the block-sparse engine's kernels (attention/isa/bsa_engine_isa.c) at
 * every SIMD level this machine runs, on the full causal layout, against causal softmax
 * attention written out here in double precision: o, the row log-sum-exp and dq, dk, dv, at
 * head sizes and lengths that are and are not multiples of the vector width, 4 and the 64 tile.
 * Needs nothing but the engine and core (no mixer, no BLAS): .ci/arm.sh also runs it under
 * qemu-aarch64 for the NEON level. test_dense checks the same engine through the dense mixer. */
#include "check.h"
#include "attention/bsa.h"
#include "core/core.h"
#include "nn/isa.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* o = softmax(q k^T / sqrt(D), causal) v and lse per row; then dq, dk, dv for dout. (B,H,T,D). */
static void reference(double *o, double *lse, double *dq, double *dk, double *dv, const float *q, const float *k,
                      const float *v, const float *dout, int BH, int T, int D)
{
    const double scale = 1.0 / sqrt((double)D);
    double *p = malloc(sizeof(double) * (size_t)T), *dp = malloc(sizeof(double) * (size_t)T);
    memset(dq, 0, sizeof(double) * (size_t)BH * T * D);
    memset(dk, 0, sizeof(double) * (size_t)BH * T * D);
    memset(dv, 0, sizeof(double) * (size_t)BH * T * D);
    for (int h = 0; h < BH; h++) {
        size_t b0 = (size_t)h * T * D;
        for (int i = 0; i < T; i++) {
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int d = 0; d < D; d++)
                    s += (double)q[b0 + (size_t)i * D + d] * k[b0 + (size_t)j * D + d];
                p[j] = s * scale;
                mx = p[j] > mx ? p[j] : mx;
            }
            for (int j = 0; j <= i; j++)
                sum += exp(p[j] - mx);
            lse[(size_t)h * T + i] = mx + log(sum);
            for (int j = 0; j <= i; j++)
                p[j] = exp(p[j] - mx) / sum;
            double *oi = o + b0 + (size_t)i * D;
            for (int d = 0; d < D; d++) {
                oi[d] = 0;
                for (int j = 0; j <= i; j++)
                    oi[d] += p[j] * v[b0 + (size_t)j * D + d];
            }
            /* dP = dout_i . v_j; dS = P (dP - dout_i . o_i); dq_i += dS k_j s; dk_j += dS q_i s */
            const float *g = dout + b0 + (size_t)i * D;
            double go = 0;
            for (int d = 0; d < D; d++)
                go += (double)g[d] * oi[d];
            for (int j = 0; j <= i; j++) {
                dp[j] = 0;
                for (int d = 0; d < D; d++) {
                    dp[j] += (double)g[d] * v[b0 + (size_t)j * D + d];
                    dv[b0 + (size_t)j * D + d] += p[j] * g[d];
                }
                double ds = p[j] * (dp[j] - go) * scale;
                for (int d = 0; d < D; d++) {
                    dq[b0 + (size_t)i * D + d] += ds * k[b0 + (size_t)j * D + d];
                    dk[b0 + (size_t)j * D + d] += ds * q[b0 + (size_t)i * D + d];
                }
            }
        }
    }
    free(p);
    free(dp);
}

/* max |a - r| / (max |r| + fl): errors against the tensor's scale. At T 1 the exact dq and dk
 * are 0 (one key: the softmax cannot move) and the float paths leave rounding of the inputs'
 * O(1) scale: fl 1 there. */
static double rel(const float *a, const double *r, size_t n, double fl)
{
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - r[i]);
        e = d > e || isnan(d) ? d : e;
        m = fabs(r[i]) > m ? fabs(r[i]) : m;
    }
    return e / (m + fl);
}

static int check_one(const struct bsa_engine *E, int B, int H, int D, int T)
{
    size_t n = (size_t)B * H * T * D, nl = (size_t)B * H * T;
    struct mx_rng rng;
    mx_rng_seed(&rng, 1000 + (uint64_t)(T * 131 + D * 7 + H));
    float *q = malloc(4 * n), *k = malloc(4 * n), *v = malloc(4 * n), *g = malloc(4 * n);
    mx_rng_fill_normal(&rng, q, n, 1.5f);
    mx_rng_fill_normal(&rng, k, n, 1.5f);
    mx_rng_fill_normal(&rng, v, n, 1.0f);
    mx_rng_fill_normal(&rng, g, n, 1.0f);
    double *ro = malloc(8 * n), *rl = malloc(8 * nl), *rq = malloc(8 * n), *rk = malloc(8 * n), *rv = malloc(8 * n);
    reference(ro, rl, rq, rk, rv, q, k, v, g, B * H, T, D);
    float *o = malloc(4 * n), *lse = malloc(4 * nl), *dq = malloc(4 * n), *dk = malloc(4 * n), *dv = malloc(4 * n);
    float *work = calloc(2 * (size_t)B * H * D * bsa_padded_T(T) + 64, 4);
    struct bsa_layout L;
    bsa_layout_causal(&L, T, H, 64);
    E->forward(&L, H, D, o, lse, work, q, k, v, B, T);
    E->backward(&L, H, D, dq, dk, dv, 0, work, g, o, lse, q, k, v, B, T);
    double fl = T == 1 ? 1.0 : 1e-3;
    double eo = rel(o, ro, n, 1e-3), el = rel(lse, rl, nl, 1e-3), eq = rel(dq, rq, n, fl), ek = rel(dk, rk, n, fl);
    double ev = rel(dv, rv, n, 1e-3);
    int bad = !(eo < 2e-6 && el < 2e-6 && eq < 2e-5 && ek < 2e-5 && ev < 2e-5);
    fprintf(stderr, "%s %-6s B=%d H=%d D=%2d T=%3d: o %.1e lse %.1e dq %.1e dk %.1e dv %.1e\n", bad ? "FAIL" : "ok  ",
            E->isa, B, H, D, T, eo, el, eq, ek, ev);
    bsa_layout_free(&L);
    free(q), free(k), free(v), free(g), free(ro), free(rl), free(rq), free(rk), free(rv);
    free(o), free(lse), free(dq), free(dk), free(dv), free(work);
    return bad;
}

/* The case name's suffix is the level; skipped where this build or CPU lacks it. */
static int case_level(void)
{
    int l = check_case_level();
    const struct bsa_engine *E = l >= 0 ? bsa_engine_at((enum mx_isa)l) : NULL;
    if (!E)
        return check_skip("%s: not built for, or not supported by, this machine", check_case_name());
    static const int shapes[][4] = {/* B, H, D, T */
                                    {1, 1, 64, 1},  {2, 2, 32, 20}, {1, 2, 16, 64}, {1, 1, 64, 65},
                                    {1, 3, 8, 130}, {1, 2, 6, 37},  {2, 1, 10, 66}, {1, 1, 3, 200}};
    int f = 0;
    for (size_t i = 0; i < CHECK_N(shapes); i++)
        f += check_one(E, shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3]);
    return f;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"level.avx512", case_level}, {"level.avx2", case_level},   {"level.sse", case_level},
        {"level.neon", case_level},   {"level.scalar", case_level},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
