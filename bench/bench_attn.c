/* bench_attn.c — standalone timing of attention mixers (forward+backward, one layer,
 * B=1, H=4, D=32) until `mixlm bench` exists; also the dense core's GFLOP/s.
 * Not part of the CMake build or the test suite; build by hand against a build tree:
 *   B=build-sparse; gcc -O2 -march=native -fopenmp -I. bench/bench_attn.c \
 *     $B/libmixlm_attention.a $B/libmixlm_core.a -lopenblas -lfftw3f -lcjson -lm -o /tmp/bench_attn
 * Usage: bench_attn REPS T spec [spec ...]  (prints median ms per spec, interleaved runs) */
#include "attention/attn_common.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Process CPU seconds: on a shared, oversubscribed host wall time measures the neighbours;
 * CPU time measures our own work (divide by threads for an uncontended wall estimate). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct run {
    struct mixer m;
    float *params, *dparams, *saved, *x, *y, *dx, *dy;
    double *fb, *core_f, *core_b, *cpu_fb, *cpu_f, *cpu_b;
};

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s REPS T spec...\n", argv[0]);
        return 2;
    }
    int reps = atoi(argv[1]), T = atoi(argv[2]), ns = argc - 3;
    const int B = 1, H = 4, C = 128, D = C / H;
    struct run *r = calloc((size_t)ns, sizeof *r);
    for (int s = 0; s < ns; s++) {
        struct mixer_dims d = {.C = C, .H = H, .T_max = T, .bias = 1, .layer = 0, .n_layer = 1, .seed = 1};
        struct mx_error err;
        if (mixer_create(&r[s].m, argv[3 + s], &d, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        size_t np = mixer_n_params(&r[s].m), n = (size_t)B * T * C;
        r[s].params = mx_xcalloc(np * 4);
        r[s].dparams = mx_xcalloc(np * 4);
        struct mx_rng g;
        mx_rng_seed(&g, 7);
        r[s].m.ops->init(&r[s].m, r[s].params, &g);
        r[s].m.scratch = mx_xcalloc(r[s].m.ops->scratch_floats(&r[s].m, B, T) * 4 + 64);
        r[s].saved = mx_xcalloc(r[s].m.ops->saved_floats(&r[s].m, B, T) * 4 + 64);
        r[s].x = mx_xmalloc(n * 4);
        r[s].y = mx_xmalloc(n * 4);
        r[s].dx = mx_xcalloc(n * 4);
        r[s].dy = mx_xmalloc(n * 4);
        mx_rng_fill_normal(&g, r[s].x, n, 1.0f);
        mx_rng_fill_normal(&g, r[s].dy, n, 1.0f);
        r[s].fb = calloc((size_t)reps, sizeof(double));
        r[s].core_f = calloc((size_t)reps, sizeof(double));
        r[s].core_b = calloc((size_t)reps, sizeof(double));
        r[s].cpu_fb = calloc((size_t)reps, sizeof(double));
        r[s].cpu_f = calloc((size_t)reps, sizeof(double));
        r[s].cpu_b = calloc((size_t)reps, sizeof(double));
    }
    for (int it = -1; it < reps; it++) /* it = -1: warm-up (first touch of every page) */
        for (int s = 0; s < ns; s++) {
            struct run *R = &r[s];
            double c0 = cpu_now(), t0 = mx_now();
            R->m.ops->forward(&R->m, R->y, R->saved, R->x, R->params, B, T);
            R->m.ops->backward(&R->m, R->dx, R->dparams, R->dy, R->saved, R->x, R->params, B, T);
            double t1 = mx_now(), c1 = cpu_now();
            /* The core alone on the q,k,v the forward saved. */
            const struct attn_core *core = R->m.ops->core;
            size_t BTC = (size_t)B * T * C;
            float *q = R->saved, *k = q + BTC, *v = k + BTC, *o = v + BTC, *cs = o + BTC;
            float *work = R->m.scratch + 6 * BTC, *dq = R->m.scratch + 3 * BTC;
            double c2 = cpu_now(), t2 = mx_now();
            core->forward(&R->m, o, cs, work, q, k, v, B, T);
            double t3 = mx_now(), c3 = cpu_now();
            core->backward(&R->m, dq, dq + BTC, dq + 2 * BTC, work, R->dy, o, cs, q, k, v, B, T);
            double t4 = mx_now(), c4 = cpu_now();
            if (it >= 0) {
                R->fb[it] = (t1 - t0) * 1e3;
                R->core_f[it] = (t3 - t2) * 1e3;
                R->core_b[it] = (t4 - t3) * 1e3;
                R->cpu_fb[it] = (c1 - c0) * 1e3;
                R->cpu_f[it] = (c3 - c2) * 1e3;
                R->cpu_b[it] = (c4 - c3) * 1e3;
            }
        }
    double fl = 2.0 * B * H * (double)T * T * D; /* causal forward: 2 matmuls on T^2/2 pairs */
    for (int s = 0; s < ns; s++) {
        struct run *R = &r[s];
        qsort(R->fb, (size_t)reps, sizeof(double), cmp_d);
        qsort(R->core_f, (size_t)reps, sizeof(double), cmp_d);
        qsort(R->core_b, (size_t)reps, sizeof(double), cmp_d);
        qsort(R->cpu_fb, (size_t)reps, sizeof(double), cmp_d);
        qsort(R->cpu_f, (size_t)reps, sizeof(double), cmp_d);
        qsort(R->cpu_b, (size_t)reps, sizeof(double), cmp_d);
        double fb = R->fb[reps / 2], cf = R->core_f[reps / 2], cb = R->core_b[reps / 2];
        double pfb = R->cpu_fb[reps / 2], pf = R->cpu_f[reps / 2], pb = R->cpu_b[reps / 2];
        printf("T=%6d %-22s wall: fwd+bwd %9.2f ms (%.2f us/tok) core f %7.2f b %7.2f | "
               "cpu: fwd+bwd %9.2f ms (%.2f us/tok) core f %7.2f b %7.2f",
               T, R->m.spec, fb, fb * 1e3 / T, cf, cb, pfb, pfb * 1e3 / T, pf, pb);
        if (strcmp(R->m.ops->name, "dense") == 0)
            printf(" | GFLOP/s per cpu-s fwd %.0f bwd %.0f", fl / pf * 1e-6, 2.5 * fl / pb * 1e-6);
        printf("\n");
    }
    return 0;
}
