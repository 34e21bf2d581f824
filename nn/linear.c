/* linear.c — the BLAS-backed linear layer shared by the model and the attention projections,
 * and mx_sgemm, the row-major matmul they run on. Weights (out,in) row-major as PyTorch stores
 * them. Not a general matmul library: the blocking is OpenBLAS's.
 *
 * WHY mx_sgemm splits the output itself: OpenBLAS's own threading shares packed panels between
 * its threads and waits for them by sched_yield; on a 2-core host where the other core is often
 * busy, a step of the small shape spent ~5% of its time yielding (perf, 2026-12-02). Splitting C
 * into one block of rows (or columns) per OpenMP thread, each block a single-threaded sgemm
 * (OpenBLAS runs single-threaded inside a parallel region), costs one more packing of the shared
 * operand per thread and no waiting. Results are reproducible for a given thread count; like
 * OpenBLAS's own across thread counts, they may differ in the last bits between counts. */
#include "nn/nn.h"
#include "core/core.h"

#include "nn/isa.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* WHY 2^22 multiply-adds: below that a matmul takes under ~0.1 ms and a parallel region's
 * start-up is no longer small beside it; OpenBLAS's own small-size rule is of the same order. */
#define SPLIT_MIN_MACS (1.0 * (1 << 22))
/* Block edges on a multiple of 16 floats (64 bytes): no cache line written by two threads. */
#define SPLIT_ALIGN 16

/* Rows [lo, hi) of C computed by one single-threaded sgemm (split along M), or columns. */
static void gemm_part(int by_rows, int lo, int hi, int ta, int tb, int M, int N, int K,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    if (by_rows) {
        const float *Ap = ta ? A + lo : A + (size_t)lo * lda;
        cblas_sgemm(CblasRowMajor, TA, TB, hi - lo, N, K, 1.0f, Ap, lda, B, ldb, beta, C + (size_t)lo * ldc, ldc);
    } else {
        const float *Bp = tb ? B + (size_t)lo * ldb : B + lo;
        cblas_sgemm(CblasRowMajor, TA, TB, M, hi - lo, K, 1.0f, A, lda, Bp, ldb, beta, C + lo, ldc);
    }
}

void mx_sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc)
{
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    int by_rows = M >= N, len = by_rows ? M : N;
    mx_prof_push(MX_PROF_MATMUL);
    mx_prof_flops(2.0 * M * N * K);
    if (nt < 2 || (double)M * N * K < SPLIT_MIN_MACS || len < 2 * SPLIT_ALIGN) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                    1.0f, A, lda, B, ldb, beta, C, ldc);
    } else {
        int chunk = ((len + nt - 1) / nt + SPLIT_ALIGN - 1) / SPLIT_ALIGN * SPLIT_ALIGN;
#pragma omp parallel num_threads(nt)
        {
            int lo = omp_get_thread_num() * chunk, hi = lo + chunk < len ? lo + chunk : len;
            if (lo < hi)
                gemm_part(by_rows, lo, hi, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
        }
    }
    mx_prof_pop();
}

const char *mx_blas_core(void)
{
    const char *c = openblas_get_corename();
    return c ? c : "unknown";
}

const char *mx_blas_core_upgrade_for(const char *core, int cpu_avx2, int cpu_avx512)
{
    /* OpenBLAS's x86-64 cores that use neither AVX2 nor AVX-512 (its DYNAMIC_ARCH list), and
     * "generic", its plain C kernels. */
    static const char *const weak[] = {
        "prescott",  "core2",     "penryn",       "dunnington", "nehalem",    "atom",
        "barcelona", "opteron",   "opteron_sse3", "nano",       "bobcat",     "katmai",
        "coppermine", "northwood", "banias",      "athlon",     "sandybridge", "bulldozer",
        "piledriver", "steamroller", "excavator", "generic",
    };
    if (!core)
        return NULL;
    int is_weak = 0;
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++)
        if (!strcasecmp(core, weak[i]))
            is_weak = 1;
    if (!is_weak)
        return NULL;
    /* WHY SkylakeX and not Cooperlake/SapphireRapids: its sgemm kernel needs only AVX-512
     * F/DQ/BW/VL (every AVX-512 CPU, Intel or AMD), and the later cores' additions are bf16. */
    if (cpu_avx512)
        return "SkylakeX";
    if (cpu_avx2)
        return "Haswell";
    return NULL;
}

const char *mx_blas_desc(char *buf, size_t n)
{
    char ver[64] = "OpenBLAS";
    const char *cfg = openblas_get_config();
    if (cfg) { /* "OpenBLAS 0.3.21 DYNAMIC_ARCH ...": the first two words */
        const char *sp = strchr(cfg, ' ');
        size_t len = sp ? (size_t)(strcspn(sp + 1, " ") + (size_t)(sp - cfg) + 1) : strlen(cfg);
        snprintf(ver, sizeof ver, "%.*s", (int)len, cfg);
    }
    const char *forced = getenv("OPENBLAS_CORETYPE"), *detected = getenv("MIXLM_BLAS_DETECTED");
    const char *for_isa = getenv("MIXLM_BLAS_FOR_ISA");
    char why[128] = "";
    if (forced && for_isa)
        snprintf(why, sizeof why, " (set by mixlm for MIXLM_ISA=%s)", for_isa);
    else if (forced && detected)
        snprintf(why, sizeof why, " (set by mixlm: OpenBLAS detected %s on this CPU)", detected);
    else if (forced)
        snprintf(why, sizeof why, " (OPENBLAS_CORETYPE=%s set by the user)", forced);
    snprintf(buf, n, "%s, core %s%s", ver, mx_blas_core(), why);
    return buf;
}

const char *mx_blas_core_for_isa(const char *isa, int cpu_avx2, int cpu_avx512)
{
    if (!isa)
        return NULL;
    if (!strcmp(isa, "avx2") && cpu_avx512)
        return "Haswell";
    if (!strcmp(isa, "sse") && (cpu_avx2 || cpu_avx512))
        return "Nehalem";
    return NULL;
}

const char *mx_blas_detected(void)
{
    const char *fake = getenv("MIXLM_TEST_BLAS_CORE"); /* test-only: pretend OpenBLAS chose this */
    return fake && fake[0] ? fake : mx_blas_core();
}

const char *mx_blas_core_upgrade(void)
{
#if defined(__x86_64__)
    return mx_blas_core_upgrade_for(mx_blas_detected(), mx_cpu_has(MX_ISA_AVX2), mx_cpu_has(MX_ISA_AVX512));
#else
    return NULL;
#endif
}

void mx_linear_forward(float *y, const float *x, const float *w, const float *b, int N, int in, int out)
{
    mx_prof_push(MX_PROF_MATMUL); /* the bias rows belong to the matmul (it adds onto them) */
    if (b) {
#pragma omp parallel for schedule(static) if ((size_t)N * out >= (1u << 16))
        for (int n = 0; n < N; n++)
            for (int o = 0; o < out; o++)
                y[(size_t)n * out + o] = b[o];
    }
    mx_prof_pop();
    mx_sgemm(0, 1, N, out, in, x, in, w, in, b ? 1.0f : 0.0f, y, out);
}

static void linear_backward(float *dx, float beta, float *dw, float *db, const float *dy, const float *x,
                            const float *w, int N, int in, int out)
{
    if (dx)
        mx_sgemm(0, 0, N, in, out, dy, out, w, in, beta, dx, in);
    mx_sgemm(1, 0, out, in, N, dy, out, x, in, 1.0f, dw, in);
    if (db) {
        mx_prof_push(MX_PROF_MATMUL);
        /* Each output column summed over rows in row order, whatever the thread count. */
#pragma omp parallel for schedule(static) if ((size_t)N * out >= (1u << 16))
        for (int c0 = 0; c0 < out; c0 += SPLIT_ALIGN) {
            int c1 = c0 + SPLIT_ALIGN < out ? c0 + SPLIT_ALIGN : out;
            for (int n = 0; n < N; n++) {
                const float *row = dy + (size_t)n * out;
                for (int o = c0; o < c1; o++)
                    db[o] += row[o];
            }
        }
        mx_prof_pop();
    }
}

void mx_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const float *w, int N, int in, int out)
{
    linear_backward(dx, 1.0f, dw, db, dy, x, w, N, in, out);
}

void mx_linear_backward_set(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, int N, int in, int out)
{
    linear_backward(dx, 0.0f, dw, db, dy, x, w, N, in, out);
}
