/* test_simd.c — the SIMD layer itself: mx_vexp, mx_vexpn and mx_vtanh at EVERY level this machine runs
 * (through each level's kernel table) against double-precision exp/tanh over a sweep and the
 * extremes, bitwise against the scalar mx_expf/mx_tanhf they port, tails that must not write
 * past n; the helpers of nn/simd.h at this file's own width; and the MIXLM_ISA choice (a bad or
 * unavailable value is an error); each level's FMA-peak loop computes what it claims. Not the
 * layer kernels (test_nn_kernels.c). */
#include "check.h"
#include "core/core.h"
#include "nn/fastmath.h"
#include "nn/isa.h"
#include "nn/kernels.h"
#include "nn/simd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Distance in units in the last place between two finite floats of the same sign. */
static double ulps(float a, double ref)
{
    float r = (float)ref;
    if (a == r)
        return 0;
    int32_t ia, ir;
    memcpy(&ia, &a, 4);
    memcpy(&ir, &r, 4);
    return fabs((double)ia - (double)ir);
}

static int same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

/* fma_peak computes acc_j <- acc_j * m + m from acc_j = m (j + 1), m = 0.999999, MX_FMA_CHAINS
 * chains, and returns the sum over chains and lanes: after n rounds
 * vw * sum_j [m (j + 1) m^n + m (1 - m^n) / (1 - m)]. Rounding (one per FMA at FMA levels, two
 * elsewhere) stays far below 1e-4 relative for n = 1000; a chain dropped, a lane lost or the
 * loop folded away is off by 1/12 or more. */
static void test_fma_peak(const struct nn_kernels *k)
{
    const double m = (double)0.999999f;
    for (long n = 0; n <= 1000; n += 1000) {
        double mn = pow(m, (double)n), want = 0;
        for (int j = 0; j < MX_FMA_CHAINS; j++)
            want += (double)(float)(0.999999f * (float)(j + 1)) * mn + m * (1 - mn) / (1 - m);
        want *= k->vw;
        double got = k->fma_peak(n);
        CHECK(fabs(got - want) <= 1e-4 * want, "%s fma_peak(%ld) = %.6g, want %.6g", k->isa, n, got, want);
    }
}

static void test_level(const struct nn_kernels *k)
{
    test_fma_peak(k);
    enum { NS = 400001 };
    float *x = malloc(NS * sizeof(float)), *y = malloc(NS * sizeof(float));
    /* x in [-100, 100], plus the edges of the range and the special values. */
    const float special[] = {-100.0f, -88.0f, -87.4f, -87.33f, -87.3f,   -1.0f,    -1e-8f, -0.0f,
                             0.0f,    1e-8f,  1e-30f, 0.5f,    1.0f,     10.0f,    88.0f,  88.7f,
                             88.72f,  88.73f, 100.0f, NAN,     INFINITY, -INFINITY};
    const int nsp = (int)(sizeof special / sizeof special[0]);
    for (int i = 0; i < NS - nsp; i++)
        x[i] = -100.0f + 200.0f * (float)i / (float)(NS - nsp - 1);
    memcpy(x + NS - nsp, special, sizeof special);

    k->vexp(y, x, NS);
    double worst = 0;
    for (int i = 0; i < NS; i++) {
        float xi = x[i];
        CHECK(same_bits(y[i], mx_expf(xi)), "%s exp(%.9g) = %.9g, mx_expf gives %.9g", k->isa, xi, y[i],
              mx_expf(xi));
        if (isnan(xi))
            CHECK(isnan(y[i]), "%s exp(NaN) = %g", k->isa, y[i]);
        else if (xi < -87.33f)
            CHECK(y[i] == 0.0f, "%s exp(%.9g) = %g, want 0", k->isa, xi, y[i]);
        else if (xi > 88.72f)
            CHECK(isinf(y[i]) && y[i] > 0, "%s exp(%.9g) = %g, want +inf", k->isa, xi, y[i]);
        else {
            double u = ulps(y[i], exp((double)xi));
            worst = u > worst ? u : worst;
            CHECK(u <= 2, "%s exp(%.9g) = %.9g, exact %.9g (%g ulp > 2)", k->isa, xi, y[i], exp((double)xi),
                  u);
        }
    }
    k->vtanh(y, x, NS);
    double worst_t = 0;
    for (int i = 0; i < NS; i++) {
        float xi = x[i];
        CHECK(same_bits(y[i], mx_tanhf(xi)), "%s tanh(%.9g) = %.9g, mx_tanhf gives %.9g", k->isa, xi, y[i],
              mx_tanhf(xi));
        if (isnan(xi)) {
            CHECK(isnan(y[i]), "%s tanh(NaN) = %g", k->isa, y[i]);
            continue;
        }
        double e = fabs((double)y[i] - tanh((double)xi));
        worst_t = e > worst_t ? e : worst_t;
        CHECK(e < 2e-7, "%s tanh(%.9g) = %.9g, exact %.9g (abs err %.3g)", k->isa, xi, y[i], tanh((double)xi),
              e);
    }
    /* Tails: exactly n outputs written, the guard after them untouched. */
    const size_t ns[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 1000};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        size_t n = ns[t];
        for (size_t i = 0; i < n + 32; i++)
            y[i] = -7.0f;
        k->vexp(y, x + 1234, n);
        for (size_t i = 0; i < n; i++)
            CHECK(same_bits(y[i], mx_expf(x[1234 + i])), "%s exp tail n=%zu [%zu]", k->isa, n, i);
        for (size_t i = n; i < n + 32; i++)
            CHECK(y[i] == -7.0f, "%s exp n=%zu wrote past the end at %zu", k->isa, n, i);
    }
    /* mx_vexpn (softmax's exp, x <= 88): within 2 ulp over [-87.33, 88] (not bitwise: FMA where
     * the level has it), 0 below, NaN stays NaN; tails write exactly n. */
    for (int i = 0; i < NS - nsp; i++)
        x[i] = -100.0f + 188.0f * (float)i / (float)(NS - nsp - 1);
    memcpy(x + NS - nsp, special, sizeof special);
    k->vexpn(y, x, NS);
    double worst_n = 0;
    for (int i = 0; i < NS; i++) {
        float xi = x[i];
        if (isnan(xi))
            CHECK(isnan(y[i]), "%s expn(NaN) = %g", k->isa, y[i]);
        else if (xi < -87.33f)
            CHECK(y[i] == 0.0f, "%s expn(%.9g) = %g, want 0", k->isa, xi, y[i]);
        else if (xi <= 88.0f) {
            double u = ulps(y[i], exp((double)xi));
            worst_n = u > worst_n ? u : worst_n;
            CHECK(u <= 2, "%s expn(%.9g) = %.9g, exact %.9g (%g ulp > 2)", k->isa, xi, y[i], exp((double)xi),
                  u);
        }
    }
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        size_t n = ns[t];
        for (size_t i = 0; i < n + 32; i++)
            y[i] = -7.0f;
        k->vexpn(y, x + 1234, n);
        for (size_t i = 0; i < n; i++)
            CHECK(y[i] == 0.0f || ulps(y[i], exp((double)x[1234 + i])) <= 2, "%s expn tail n=%zu [%zu]", k->isa,
                  n, i);
        for (size_t i = n; i < n + 32; i++)
            CHECK(y[i] == -7.0f, "%s expn n=%zu wrote past the end at %zu", k->isa, n, i);
    }
    fprintf(stderr,
            "  %-7s (%2d lanes): exp worst %.0f ulp, expn worst %.0f ulp, tanh worst abs err %.2e over %d points\n",
            k->isa, k->vw, worst, worst_n, worst_t, NS);
    free(x);
    free(y);
}

/* nn/simd.h's helpers at this translation unit's own width. */
static void test_helpers(void)
{
    float a[2 * MX_VW + 1], b[2 * MX_VW + 1];
    for (int i = 0; i < 2 * MX_VW + 1; i++)
        a[i] = (float)(i + 1);
    for (int n = 0; n <= MX_VW; n++) {
        mx_vf v = mx_vload_n(a, (size_t)n);
        float s = 0;
        for (int i = 0; i < n; i++)
            s += a[i];
        CHECK(mx_vhsum(v) == s, "hsum of load_n(%d) = %g, want %g", n, mx_vhsum(v), s);
        mx_vi m = mx_vmask_first((size_t)n);
        for (int i = 0; i < MX_VW; i++)
            CHECK(m[i] == (i < n ? -1 : 0), "mask_first(%d)[%d] = %d", n, i, m[i]);
        for (int i = 0; i < 2 * MX_VW + 1; i++)
            b[i] = -1.0f;
        mx_vstore_n(b, mx_vset1(5.0f), (size_t)n);
        for (int i = 0; i < 2 * MX_VW + 1; i++)
            CHECK(b[i] == (i < n ? 5.0f : -1.0f), "store_n(%d)[%d] = %g", n, i, b[i]);
    }
    mx_vf x = mx_vload(a), y = mx_vset1((float)(MX_VW / 2) + 0.5f);
    mx_vf hi = mx_vmax(x, y), lo = mx_vmin(x, y), f = mx_vfma(x, y, mx_vset1(1.0f));
    for (int i = 0; i < MX_VW; i++) {
        CHECK(hi[i] == fmaxf(a[i], y[0]) && lo[i] == fminf(a[i], y[0]), "max/min lane %d", i);
        CHECK(f[i] == a[i] * y[0] + 1.0f, "fma lane %d", i);
    }
    CHECK(mx_vhmax(x) == (float)MX_VW, "hmax %g", mx_vhmax(x));
    /* The sum's documented order (lane i + lane i + W/2, then halves again), on values whose
     * sum rounds differently in other orders; and the max wherever the largest lane is. */
    for (int rep = 0; rep < 64; rep++) {
        float w[MX_VW], want[MX_VW];
        for (int i = 0; i < MX_VW; i++)
            w[i] = want[i] = (float)((rep * 7 + i * 13) % 17 - 8) * (i % 3 ? 1e-8f : 1.0f) + 0.1f * (float)i;
        for (int h = MX_VW / 2; h > 0; h /= 2)
            for (int i = 0; i < h; i++)
                want[i] += want[i + h];
        CHECK(mx_vhsum(mx_vload(w)) == want[0], "hsum order: %.9g, pairwise %.9g", mx_vhsum(mx_vload(w)),
              want[0]);
        w[rep % MX_VW] = 1000.0f + (float)rep;
        CHECK(mx_vhmax(mx_vload(w)) == 1000.0f + (float)rep, "hmax with the max in lane %d", rep % MX_VW);
    }
    mx_vf sq = mx_vsqrt(x);
    for (int i = 0; i < MX_VW; i++)
        CHECK(sq[i] == sqrtf(a[i]), "sqrt lane %d", i);
}

/* MIXLM_ISA in a child process (the choice is made once per process). Returns the child's
 * exit status: 0 when the level in use is `want`, 3 when mx_isa_init failed. */
static int child_with(const char *value, enum mx_isa want)
{
    pid_t pid = fork();
    if (pid == 0) {
        setenv("MIXLM_ISA", value, 1);
        struct mx_error err;
        if (mx_isa_init(&err) != 0) {
            fprintf(stderr, "  (expected) %s\n", err.msg);
            _exit(3);
        }
        _exit(mx_isa() == want ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static int case_isa_choice(void)
{
    CHECK(child_with("bogus", MX_ISA_SCALAR) == 3, "MIXLM_ISA=bogus was accepted");
    CHECK(child_with("scalar", MX_ISA_SCALAR) == 0, "MIXLM_ISA=scalar not honoured");
    for (int l = 0; l < MX_ISA_COUNT; l++) {
        int want = mx_isa_supported((enum mx_isa)l) ? 0 : 3;
        CHECK(child_with(mx_isa_level_name((enum mx_isa)l), (enum mx_isa)l) == want,
              "MIXLM_ISA=%s: wanted %s", mx_isa_level_name((enum mx_isa)l), want ? "an error" : "it in use");
    }
    unsetenv("MIXLM_ISA");
    fprintf(stderr, "CPU: %s; level in use: %s; this file's width: %s (%d lanes)\n", mx_cpu_name(),
            mx_isa_name(), MX_SIMD_NAME, MX_VW);
    return 0;
}

static int case_helpers(void)
{
    test_helpers();
    return 0;
}

/* One case per level: the case name is the level; skipped where this machine cannot run it. */
static int case_level(void)
{
    for (int l = 0; l < MX_ISA_COUNT; l++) {
        if (strcmp(check_case_name(), mx_isa_level_name((enum mx_isa)l)) != 0)
            continue;
        const struct nn_kernels *k = nn_kernels_at((enum mx_isa)l);
        if (!k)
            return check_skip("%s: not built for, or not supported by, this machine", check_case_name());
        CHECK(strcmp(k->isa, check_case_name()) == 0, "table %s built as %s", check_case_name(), k->isa);
        test_level(k);
        return 0;
    }
    return check_skip("%s: no such level", check_case_name());
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"isa_choice", case_isa_choice},
        {"helpers", case_helpers},
        {"avx512", case_level},
        {"avx2", case_level},
        {"sse", case_level},
        {"neon", case_level},
        {"scalar", case_level}, /* built everywhere: never skipped */
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
