/* kernels.c — mixlm_kernel_bench: nn's SIMD kernels against the memory bandwidth. A copy rate
 * (memcpy over the OpenMP threads), then GELU, LayerNorm, softmax-CE (fwd, bwd) and AdamW at every
 * level this CPU runs and the references, on arrays larger than the last-level cache: median ms,
 * GB/s over the bytes each must move, that traffic's time at the copy rate, and the ratio.
 * Usage: mixlm_kernel_bench [MiB per array, default 32] [repeats, default 7]. Not a test. */
#include "core/core.h"
#include "nn/isa.h"
#include "nn/kernels.h"
#include "nn/nn.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The buffers every kernel uses: A, B, C, D of n floats; rows x cols views for LN and CE. */
struct bufs {
    float *a, *b, *c, *d, *w, *bias, *dw, *db, *mean, *rstd, *work;
    int32_t *tg;
    size_t n, rows;
    int cols;
    struct nn_adamw_hp hp;
};

enum { K_GELU_F, K_GELU_B, K_LN_F, K_LN_B, K_CE_F, K_CE_B, K_ADAMW, K_COUNT };
static const char *const knames[K_COUNT] = {
    "gelu fwd", "gelu bwd", "layernorm fwd", "layernorm bwd", "softmax-ce fwd", "softmax-ce bwd", "adamw"};
/* Bytes each kernel must move per float of n (reads + writes; the per-row and per-column
 * vectors are negligible). The copy rate counts a copied byte twice (read and write). */
static const double kbytes[K_COUNT] = {8, 12, 8, 16, 4, 8, 32};

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

int main(int argc, char **argv)
{
    double mib = argc > 1 ? atof(argv[1]) : 32;
    int reps = argc > 2 ? atoi(argv[2]) : 7;
    if (mib < 1 || mib > 4096 || reps < 1 || reps > 100) {
        fprintf(stderr, "usage: mixlm_kernel_bench [MiB per array 1..4096 (32)] [repeats 1..100 (7)]\n");
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

    /* Copy rate: memcpy of one array into another, each thread its own half. */
    int nt = omp_get_max_threads();
    double t[100];
    for (int k = 0; k <= reps; k++) {
        double t0 = mx_now();
#pragma omp parallel
        {
            int id = omp_get_thread_num(), cnt = omp_get_num_threads();
            size_t lo = s.n * id / cnt, hi = s.n * (id + 1) / cnt;
            memcpy(s.d + lo, s.a + lo, (hi - lo) * sizeof(float));
        }
        if (k)
            t[k - 1] = mx_now() - t0;
    }
    double copy_gbs = 2.0 * bytes / median(t, reps) / 1e9;
    printf("CPU: %s; %d threads; best level here: %s; %.0f MiB per array (n = %zu; rows %zu x %d)\n",
           mx_cpu_name(), nt, mx_isa_level_name(mx_isa()), mib, s.n, s.rows, s.cols);
    printf("copy rate (memcpy, %d threads, read+write): %.1f GB/s; medians of %d repeats after a warm-up\n\n",
           nt, copy_gbs, reps);
    printf("%-15s %-7s %9s %8s %9s %8s\n", "kernel", "level", "ms", "GB/s", "bound ms", "x bound");
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
                if (kk == K_CE_B) /* overwrites its logits */
                    memcpy(s.b, s.a, bytes);
                double t0 = mx_now();
                run(k, kk, &s);
                if (q)
                    t[q - 1] = mx_now() - t0;
            }
            double ms = median(t, reps) * 1e3;
            printf("%-15s %-7s %9.2f %8.1f %9.2f %8.2f\n", knames[kk], name, ms, kb / (ms * 1e-3) / 1e9,
                   bound_ms, ms / bound_ms);
        }
    }
    return 0;
}
