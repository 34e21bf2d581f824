/* test_cuda_dense.c — CPU-GPU parity of the FlashAttention-style causal kernels
 * (cuda/dense.cu) against the row-wise reference attn_masked_ref_forward/backward with no
 * mask: head sizes 32/64/128, T below, at and across tile edges, scores of two magnitudes.
 * Also: every output written (poisoned first), backward accumulates, run-to-run bitwise
 * determinism. Label `cuda`; exits 77 where no CUDA device is found. Not a speed test. */
#include "check.h"
#include "attention/attn_common.h"
#include "cuda/dense_cuda.h"
#include "cuda/cuda_ctx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* fp32 kernels against a reference that accumulates the softmax in double: max-norm relative
 * error 1e-4 for outputs and gradients (reductions over up to T keys and D dims). */
#define TOL 1e-4

static float *dev_from(const struct mx_cuda *c, const float *host, size_t n)
{
    float *d = mx_cuda_malloc(c, n * sizeof(float));
    mx_cuda_upload(c, d, host, n * sizeof(float));
    return d;
}

static float *host_of(const struct mx_cuda *c, const float *dev, size_t n)
{
    float *h = mx_xmalloc(n * sizeof(float) + 1);
    mx_cuda_download(c, h, dev, n * sizeof(float));
    return h;
}

static void check(const char *what, const float *gpu, const float *ref, size_t n, double tol)
{
    double err = 0, mx = 0;
    size_t at = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(gpu[i]))
            bad = 1;
        double e = fabs((double)gpu[i] - (double)ref[i]);
        if (e > err) {
            err = e;
            at = i;
        }
        mx = fmax(mx, fabs((double)ref[i]));
    }
    double rel = mx > 0 ? err / mx : err;
    int ok = !bad && rel <= tol;
    printf("  %-12s rel %.3g%s\n", what, rel, ok ? "" : "  FAIL");
    if (!ok) {
        printf("    worst at %zu: gpu %.9g cpu %.9g%s\n", at, gpu[at], ref[at],
               bad ? " (non-finite output)" : "");
        check_failures++;
    }
}

static void run_case(const struct mx_cuda *c, int B, int H, int T, int D, float std, uint64_t seed)
{
    size_t n = (size_t)B * H * T * D, nr = (size_t)B * H * T;
    printf("dense B=%d H=%d T=%d D=%d std=%g\n", B, H, T, D, std);
    struct mx_rng r;
    mx_rng_seed(&r, seed);
    float *q = mx_xmalloc(n * 4), *k = mx_xmalloc(n * 4), *v = mx_xmalloc(n * 4), *dout = mx_xmalloc(n * 4);
    float *o = mx_xmalloc(n * 4), *lse = mx_xmalloc(nr * 4);
    float *dq = mx_xcalloc(n * 4), *dk = mx_xcalloc(n * 4), *dv = mx_xcalloc(n * 4);
    mx_rng_fill_normal(&r, q, n, std);
    mx_rng_fill_normal(&r, k, n, std);
    mx_rng_fill_normal(&r, v, n, 1);
    mx_rng_fill_normal(&r, dout, n, 1);

    float *d_q = dev_from(c, q, n), *d_k = dev_from(c, k, n), *d_v = dev_from(c, v, n);
    float *d_dout = dev_from(c, dout, n);
    float *d_o = mx_cuda_malloc(c, n * 4),
          *d_lse = mx_cuda_malloc(c, attn_dense_cuda_saved_floats(B, H, T) * 4);
    float *d_dq = mx_cuda_malloc(c, n * 4), *d_dk = mx_cuda_malloc(c, n * 4),
          *d_dv = mx_cuda_malloc(c, n * 4);
    float *d_work = mx_cuda_malloc(c, attn_dense_cuda_work_floats(B, H, T) * 4);
    mx_cuda_fill_bytes(c, d_o, 0xff, n * 4); /* NaN: an unwritten element fails the check */
    mx_cuda_fill_bytes(c, d_lse, 0xff, nr * 4);
    mx_cuda_fill_bytes(c, d_dq, 0, n * 4);
    mx_cuda_fill_bytes(c, d_dk, 0, n * 4);
    mx_cuda_fill_bytes(c, d_dv, 0, n * 4);

    attn_masked_ref_forward(o, lse, q, k, v, B, H, T, D, NULL, NULL);
    attn_dense_cuda_forward(c, d_o, d_lse, d_q, d_k, d_v, B, H, T, D);
    float *g_o = host_of(c, d_o, n), *g_lse = host_of(c, d_lse, nr);
    check("o", g_o, o, n, TOL);
    check("lse", g_lse, lse, nr, TOL);

    /* Backward from the CPU's o and lse, so backward's error is its own. */
    mx_cuda_upload(c, d_o, o, n * 4);
    mx_cuda_upload(c, d_lse, lse, nr * 4);
    attn_masked_ref_backward(dq, dk, dv, dout, o, lse, q, k, v, B, H, T, D, NULL, NULL);
    attn_dense_cuda_backward(c, d_dq, d_dk, d_dv, d_work, d_dout, d_o, d_lse, d_q, d_k, d_v, B, H, T, D);
    float *g_dq = host_of(c, d_dq, n), *g_dk = host_of(c, d_dk, n), *g_dv = host_of(c, d_dv, n);
    check("dq", g_dq, dq, n, TOL);
    check("dk", g_dk, dk, n, TOL);
    check("dv", g_dv, dv, n, TOL);

    /* Accumulate + determinism: a second backward adds the same bits again, so every
     * gradient is exactly twice the first (x + x is exact in floating point). */
    attn_dense_cuda_backward(c, d_dq, d_dk, d_dv, d_work, d_dout, d_o, d_lse, d_q, d_k, d_v, B, H, T, D);
    float *g2[3] = {host_of(c, d_dq, n), host_of(c, d_dk, n), host_of(c, d_dv, n)};
    const float *g1[3] = {g_dq, g_dk, g_dv};
    int same = 1;
    for (int t = 0; t < 3; t++)
        for (size_t i = 0; i < n; i++)
            same &= g2[t][i] == 2.0f * g1[t][i];
    printf("  %-12s %s\n", "2x backward", same ? "exactly 2x (accumulates, deterministic)" : "NOT 2x  FAIL");
    check_failures += !same;
    /* Forward determinism. */
    float *d_o2 = mx_cuda_malloc(c, n * 4);
    attn_dense_cuda_forward(c, d_o2, d_lse, d_q, d_k, d_v, B, H, T, D);
    attn_dense_cuda_forward(c, d_o, d_lse, d_q, d_k, d_v, B, H, T, D);
    float *h1 = host_of(c, d_o, n), *h2 = host_of(c, d_o2, n);
    int fsame = memcmp(h1, h2, n * 4) == 0 && memcmp(h1, g_o, n * 4) == 0;
    printf("  %-12s %s\n", "forward", fsame ? "bitwise equal run to run" : "DIFFERS run to run  FAIL");
    check_failures += !fsame;

    for (int t = 0; t < 3; t++)
        mx_free(g2[t]);
    mx_free(h1);
    mx_free(h2);
    mx_free(g_o);
    mx_free(g_lse);
    mx_free(g_dq);
    mx_free(g_dk);
    mx_free(g_dv);
    mx_cuda_dfree(c, d_o2);
    mx_cuda_dfree(c, d_q);
    mx_cuda_dfree(c, d_k);
    mx_cuda_dfree(c, d_v);
    mx_cuda_dfree(c, d_dout);
    mx_cuda_dfree(c, d_o);
    mx_cuda_dfree(c, d_lse);
    mx_cuda_dfree(c, d_dq);
    mx_cuda_dfree(c, d_dk);
    mx_cuda_dfree(c, d_dv);
    mx_cuda_dfree(c, d_work);
    mx_free(q);
    mx_free(k);
    mx_free(v);
    mx_free(dout);
    mx_free(o);
    mx_free(lse);
    mx_free(dq);
    mx_free(dk);
    mx_free(dv);
}

static struct mx_cuda ctx;

static int setup(void)
{
    if (mx_cuda_available() == 0)
        return check_skip("no CUDA device: skipping the CUDA attention parity tests");
    struct mx_error err;
    if (mx_cuda_init(&ctx, &err) != 0)
        return check_skip("no usable CUDA device: %s", err.msg);
    char desc[400];
    mx_cuda_describe(&ctx, desc, sizeof desc);
    printf("device: %s\n", desc);
    return 0;
}

static void teardown(void)
{
    mx_cuda_free(&ctx);
}

static int case_head_sizes(void)
{
    int ok_d = attn_dense_cuda_supports(32) && attn_dense_cuda_supports(64) &&
               attn_dense_cuda_supports(128) && !attn_dense_cuda_supports(48) &&
               !attn_dense_cuda_supports(256);
    printf("supported head sizes 32/64/128 only: %s\n", ok_d ? "yes" : "NO  FAIL");
    check_failures += !ok_d;
    return 0;
}

/* T: one row; below a tile; exactly one and two 64-row tiles; ragged across tiles. */
static int case_tiles(void)
{
    static const int Ts[] = {1, 37, 64, 128, 150};
    static const int Ds[] = {32, 64, 128};
    uint64_t seed = 1;
    for (int di = 0; di < 3; di++)
        for (int ti = 0; ti < 5; ti++)
            run_case(&ctx, 2, 3, Ts[ti], Ds[di], 1.0f, seed++);
    return 0;
}

/* Peaked softmax (scores of std ~9 after scaling): the online rescaling is exercised. */
static int case_peaked_softmax(void)
{
    run_case(&ctx, 1, 2, 200, 64, 3.0f, 16);
    run_case(&ctx, 1, 2, 97, 128, 3.0f, 17);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"head_sizes", case_head_sizes},
        {"tiles", case_tiles},
        {"peaked_softmax", case_peaked_softmax},
    };
    static const struct check_fixture fx = {setup, teardown};
    return check_main(argc, argv, cases, CHECK_N(cases), &fx);
}
