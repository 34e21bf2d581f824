/* kernels.c — mixlm_kernel_bench: nn's SIMD kernels against the memory bandwidth. Copy rates
 * over the OpenMP threads (non-temporal stores, ordinary stores, glibc memcpy), then GELU,
 * LayerNorm, softmax-CE (fwd, bwd, and both in one pass as training runs them) and AdamW at every level this CPU runs and the references, on
 * arrays larger than the last-level cache: median ms, GB/s over the bytes the hardware moves,
 * that traffic's time at the copy rate, the ratio; and each kernel's arithmetic alone (one
 * thread, arrays in L2, CPU time: robust to a busy host), CE at several vocabularies.
 * Usage: mixlm_kernel_bench [MiB per array, default 128] [repeats, default 7]. Not a test.
 * WHY 128 MiB: at 32 MiB (a Zen 3 L3) the non-temporal copy, which leaves its source in L3,
 * measured up to 4x the DRAM rate. */
#include "core/core.h"
#include "nn/isa.h"
#include "nn/kernels.h"
#include "nn/nn.h"
#include "nn/simd.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return t[n / 2];
}

/* The fastest of n times (call after median: t is sorted). On a shared host the median also
 * holds time slices lost to other processes (wall times then come in multiples of the
 * scheduler's tick); the best run is the closer estimate of the machine's own rate. */
static double best(const double *t)
{
    return t[0];
}

/* The buffers every kernel uses: A, B, C, D of n floats; rows x cols views for LN and CE. */
struct bufs {
    float *a, *b, *c, *d, *w, *bias, *dw, *db, *mean, *rstd, *work;
    int32_t *tg;
    size_t n, rows;
    int cols;
    struct nn_adamw_hp hp;
};

/* K_CE_T: the training path, forward and backward in one softmax pass (ce_fused) over logits it
 * overwrites with their gradient (read + write in place: 8 B per logit, no read-for-ownership). */
enum { K_GELU_F, K_GELU_B, K_LN_F, K_LN_B, K_CE_F, K_CE_B, K_CE_T, K_ADAMW, K_COUNT };
static const char *const knames[K_COUNT] = {"gelu fwd",       "gelu bwd",       "layernorm fwd",
                                            "layernorm bwd",  "softmax-ce fwd", "softmax-ce bwd",
                                            "softmax-ce train", "adamw"};
/* Bytes the hardware moves per float of n, the convention of this benchmark: every array read,
 * every array written, and for an output that is not also an input the read-for-ownership of
 * its lines that an ordinary store costs (the kernels use ordinary stores: their outputs are
 * read next, from cache when they fit). The per-row and per-column vectors are negligible. The
 * copy rate is measured the same way: a copy with non-temporal stores moves 2 bytes per byte
 * copied, and an ordinary-store copy 3 (read, read-for-ownership, write); the bound takes the
 * faster of the two (the stricter bound; when the convention holds they agree). kbytes_norfo: the same without the read-for-ownership (the convention before
 * 2026-12-02), printed as a second ratio. */
static const double kbytes[K_COUNT] = {12, 16, 12, 16, 4, 8, 8, 32};
static const double kbytes_norfo[K_COUNT] = {8, 12, 8, 16, 4, 8, 8, 32};

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* dst = src over this thread's share [lo, hi) of n floats: 0 non-temporal stores, 1 ordinary
 * vector stores, 2 memcpy. */
static void copy_part(float *dst, const float *src, size_t n, int how)
{
    int id = omp_get_thread_num(), cnt = omp_get_num_threads();
    size_t lo = n * id / cnt / 64 * 64, hi = id == cnt - 1 ? n : n * (id + 1) / cnt / 64 * 64;
    if (how == 2) {
        memcpy(dst + lo, src + lo, (hi - lo) * sizeof(float));
        return;
    }
    size_t i = lo;
    for (; i + MX_VW <= hi; i += MX_VW) {
        if (how == 0)
            mx_vstream(dst + i, mx_vload(src + i));
        else
            mx_vstore(dst + i, mx_vload(src + i));
    }
    for (; i < hi; i++)
        dst[i] = src[i];
    mx_vstream_fence();
}

static void run(const struct nn_kernels *k, int which, struct bufs *s)
{
    int C = s->cols;
    size_t N = s->rows;
    switch (which) {
    case K_GELU_F:
        k ? k->gelu_forward(s->b, s->a, s->n) : layer_gelu_forward_ref(s->b, s->a, s->n);
        break;
    case K_GELU_B:
        k ? k->gelu_backward(s->c, s->b, s->a, s->n) : layer_gelu_backward_ref(s->c, s->b, s->a, s->n);
        break;
    case K_LN_F:
        k ? k->layer_norm_forward(s->b, s->mean, s->rstd, s->a, s->w, s->bias, N, C)
          : layer_norm_forward_ref(s->b, s->mean, s->rstd, s->a, s->w, s->bias, N, C);
        break;
    case K_LN_B:
        k ? k->layer_norm_backward(s->c, s->dw, s->db, s->work, s->b, s->a, s->mean, s->rstd, s->w, N, C)
          : layer_norm_backward_ref(s->c, s->dw, s->db, s->work, s->b, s->a, s->mean, s->rstd, s->w, N, C);
        break;
    case K_CE_F:
        k ? k->ce_forward(s->mean, s->rstd, s->a, s->tg, N, C)
          : layer_ce_forward_ref(s->mean, s->rstd, s->a, s->tg, N, C);
        break;
    case K_CE_B:
        k ? k->ce_backward(s->b, s->mean, s->tg, N, C, 1e-3f)
          : layer_ce_backward_ref(s->b, s->mean, s->tg, N, C, 1e-3f);
        break;
    case K_CE_T:
        k ? k->ce_fused(s->b, s->mean, s->rstd, s->tg, N, C, 1e-3f)
          : layer_ce_fused_ref(s->b, s->mean, s->rstd, s->tg, N, C, 1e-3f);
        break;
    case K_ADAMW:
#pragma omp parallel
    {
        if (k)
            k->adamw(s->a, s->b, s->c, s->d, s->n, &s->hp);
        else
            nn_adamw_ref(s->a, s->b, s->c, s->d, s->n, &s->hp);
    } break;
    }
}

/* Kernel kk at one thread on the first IC_FLOATS floats of each array (in L2; rows of `cols`
 * floats, at least one row): CPU-time median over IC_REPS calls, ns per float. Restores the
 * arrays it overwrites from the next ones (values stay finite; only the time matters). */
#define IC_FLOATS 16384
#define IC_REPS 31
static double in_cache_ns(const struct nn_kernels *k, int kk, struct bufs *s, int cols)
{
    struct bufs c = *s;
    c.cols = cols;
    c.rows = IC_FLOATS / (size_t)cols ? IC_FLOATS / (size_t)cols : 1;
    c.n = c.rows * (size_t)cols;
    int keep = omp_get_max_threads();
    omp_set_num_threads(1);
    float *save = mx_xmalloc(c.n * sizeof(float));
    memcpy(save, c.a, c.n * sizeof(float));
    double t[IC_REPS + 1];
    run(k, K_CE_F, &c); /* an lse for CE backward */
    for (int q = 0; q <= IC_REPS; q++) {
        if (kk == K_CE_B || kk == K_CE_T)
            memcpy(c.b, c.a, c.n * sizeof(float));
        double t0 = cpu_now();
        run(k, kk, &c);
        if (q)
            t[q - 1] = cpu_now() - t0;
        if (kk == K_ADAMW)
            memcpy(c.a, save, c.n * sizeof(float));
    }
    omp_set_num_threads(keep);
    mx_free(save);
    return median(t, IC_REPS) / (double)c.n * 1e9;
}

int main(int argc, char **argv)
{
    double mib = argc > 1 ? atof(argv[1]) : 128;
    int reps = argc > 2 ? atoi(argv[2]) : 7;
    if (mib < 1 || mib > 4096 || reps < 1 || reps > 100) {
        fprintf(stderr, "usage: mixlm_kernel_bench [MiB per array 1..4096 (128)] [repeats 1..100 (7)]\n");
        return 2;
    }
    struct bufs s = {0};
    s.cols = 128; /* LayerNorm C of the baby model; also the CE vocabulary here */
    s.rows = (size_t)(mib * 1048576 / 4) / (size_t)s.cols;
    s.n = s.rows * (size_t)s.cols;
    size_t bytes = s.n * sizeof(float);
    struct mx_rng r;
    mx_rng_seed(&r, 1);
    /* Pristine inputs, copied in (untimed) before each kernel and level: the kernels write
     * into each other's inputs, and a negative "second moment" or a denormal would time the
     * CPU's slow paths instead of the kernel. */
    float **arr[] = {&s.a, &s.b, &s.c, &s.d}, *src[4];
    for (int i = 0; i < 4; i++) {
        *arr[i] = mx_xmalloc(bytes);
        src[i] = mx_xmalloc(bytes);
        mx_rng_fill_normal(&r, src[i], s.n, 1.0f);
    }
    for (size_t i = 0; i < s.n; i++)
        src[2][i] *= src[2][i]; /* a valid second moment for AdamW */
    s.w = mx_xmalloc(s.cols * sizeof(float));
    s.bias = mx_xmalloc(s.cols * sizeof(float));
    mx_rng_fill_normal(&r, s.w, s.cols, 1.0f);
    mx_rng_fill_normal(&r, s.bias, s.cols, 1.0f);
    s.dw = mx_xcalloc(s.cols * sizeof(float));
    s.db = mx_xcalloc(s.cols * sizeof(float));
    s.mean = mx_xmalloc(s.rows * sizeof(float));
    s.rstd = mx_xmalloc(s.rows * sizeof(float));
    s.work = mx_xmalloc(layer_norm_work_floats(s.cols) * sizeof(float));
    s.tg = mx_xmalloc(s.rows * sizeof(int32_t));
    for (size_t i = 0; i < s.rows; i++)
        s.tg[i] = (int32_t)mx_rng_below(&r, (uint32_t)s.cols);
    s.hp = (struct nn_adamw_hp){.lr = 1e-4f,
                                .beta1 = 0.9f,
                                .beta2 = 0.95f,
                                .eps = 1e-8f,
                                .weight_decay = 0.1f,
                                .bc1 = 0.5f,
                                .bc2 = 0.5f,
                                .grad_scale = 1.0f};

    /* Copy rates, the three kinds interleaved: each thread copies its own part. */
    int nt = omp_get_max_threads();
    double t[100], tc[3][100];
    for (int k = 0; k <= reps; k++)
        for (int how = 0; how < 3; how++) {
            double t0 = mx_now();
#pragma omp parallel
            copy_part(s.d, s.a, s.n, how);
            if (k)
                tc[how][k - 1] = mx_now() - t0;
        }
    double nt_gbs = 2.0 * bytes / median(tc[0], reps) / 1e9, plain_gbs = 3.0 * bytes / median(tc[1], reps) / 1e9;
    /* The bound's rate: the faster of the two copies in hardware bytes (the stricter bound). */
    double memcpy_gbs = 2.0 * bytes / median(tc[2], reps) / 1e9, copy_gbs = nt_gbs > plain_gbs ? nt_gbs : plain_gbs;
    double nt_best = 2.0 * bytes / best(tc[0]) / 1e9, plain_best = 3.0 * bytes / best(tc[1]) / 1e9;
    double copy_best = nt_best > plain_best ? nt_best : plain_best;
    printf("CPU: %s; %d threads; best level here: %s; %.0f MiB per array (n = %zu; rows %zu x %d)\n",
           mx_cpu_name(), nt, mx_isa_level_name(mx_isa()), mib, s.n, s.rows, s.cols);
    printf("copy rates, %d threads, in bytes the hardware moves: non-temporal stores %.1f GB/s (2 B per "
           "byte copied%s), ordinary stores %.1f GB/s (3 B: read, read-for-ownership, write), glibc memcpy "
           "%.1f GB/s (counted as 2 B)\n",
           nt, nt_gbs, MX_VSTREAM ? "" : "; this target has none: ordinary stores", plain_gbs, memcpy_gbs);
    printf("best runs: non-temporal %.1f GB/s, ordinary %.1f GB/s\n", nt_best, plain_best);
    printf("bound = hardware bytes (reads + writes + read-for-ownership of each output that is not an input) "
           "/ %.1f GB/s (the faster copy); 'x no-RFO' leaves the read-for-ownership out; medians of %d "
           "repeats after a warm-up (wall time); 'best x' = the best run over the best copy rate "
           "(%.1f GB/s)\n\n",
           copy_gbs, reps, copy_best);
    printf("%-15s %-7s %9s %8s %9s %8s %9s %7s %13s\n", "kernel", "level", "ms", "GB/s", "bound ms", "x bound",
           "x no-RFO", "best x", "ns/elt in L2");
    for (int kk = 0; kk < K_COUNT; kk++) {
        double kb = kbytes[kk] * (double)s.n, bound_ms = kb / (copy_gbs * 1e9) * 1e3;
        for (int l = MX_ISA_COUNT; l >= 0; l--) {
            const struct nn_kernels *k = NULL;
            const char *name = "ref";
            if (l < MX_ISA_COUNT) {
                k = nn_kernels_at((enum mx_isa)l);
                if (!k)
                    continue;
                name = k->isa;
            }
            /* CE backward overwrites its logits: a fresh copy before each (untimed); AdamW
             * runs again on its own output (values stay finite). */
            for (int i = 0; i < 4; i++)
                memcpy(*arr[i], src[i], bytes);
            if (kk == K_CE_B) /* its lse */
                run(k, K_CE_F, &s);
            for (int q = 0; q <= reps; q++) {
                if (kk == K_CE_B || kk == K_CE_T) /* overwrite their logits */
                    memcpy(s.b, s.a, bytes);
                double t0 = mx_now();
                run(k, kk, &s);
                if (q)
                    t[q - 1] = mx_now() - t0;
            }
            double ms = median(t, reps) * 1e3;
            double ns = in_cache_ns(k, kk, &s, s.cols), bx = best(t) / (kb / (copy_best * 1e9));
            printf("%-15s %-7s %9.2f %8.1f %9.2f %8.2f %9.2f %7.2f %13.3f\n", knames[kk], name, ms,
                   kb / (ms * 1e-3) / 1e9, bound_ms, ms / bound_ms,
                   ms / (kbytes_norfo[kk] * (double)s.n / (copy_gbs * 1e9) * 1e3), bx, ns);
        }
    }
    /* The softmax-CE's arithmetic at the vocabularies the model meets (65 characters, 256 bytes,
     * 50,257 BPE) and the 128 above. */
    const int vocab[] = {65, 128, 256, 50257};
    printf("\nsoftmax-ce alone, ns per logit in L2 (one thread, CPU time, median of %d):\n%-8s", IC_REPS,
           "V");
    for (int l = MX_ISA_COUNT; l >= 0; l--)
        if (l == MX_ISA_COUNT || nn_kernels_at((enum mx_isa)l))
        {
            const char *nm = l == MX_ISA_COUNT ? "ref" : nn_kernels_at((enum mx_isa)l)->isa;
            printf(" %7s fwd %7s bwd %6s train", nm, nm, nm);
        }
    printf("\n");
    for (size_t q = 0; q < sizeof vocab / sizeof vocab[0]; q++) {
        printf("%-8d", vocab[q]);
        for (int l = MX_ISA_COUNT; l >= 0; l--) {
            const struct nn_kernels *k = l < MX_ISA_COUNT ? nn_kernels_at((enum mx_isa)l) : NULL;
            if (l < MX_ISA_COUNT && !k)
                continue;
            for (size_t i = 0; i < s.rows; i++)
                s.tg[i] = (int32_t)(i % (size_t)vocab[q]);
            printf(" %11.3f %11.3f %12.3f", in_cache_ns(k, K_CE_F, &s, vocab[q]), in_cache_ns(k, K_CE_B, &s, vocab[q]),
                   in_cache_ns(k, K_CE_T, &s, vocab[q]));
        }
        printf("\n");
    }
    return 0;
}
