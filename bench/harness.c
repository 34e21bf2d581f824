/* harness.c — the benchmark's parent and children (see bench.h): the plan (every spec built at
 * every length, memory estimates and FLOPs from the mixer's own accounting), fork/pipe children
 * with a wall-time limit, the sgemm ceiling, and the skip rules. Each layer is fed the same
 * unit-variance input, as a LayerNorm'd residual stream would be. Not the output formats
 * (output.c). */
#include "bench/internal.h"

#include "attention/mixer_internal.h"
#include "nn/kernels.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* What a child sends back through its pipe (plain bytes: same binary on both ends). */
/* What a child sends back through its pipe (plain bytes: same binary on both ends). */
struct bench_msg {
    int ok;                      /* 1: measured; 0: the child refused (note says why) */
    int repeats;                 /* repeats actually measured (fewer than asked when the budget is tight) */
    double forward_ms, train_ms; /* medians */
    double core_forward_ms, core_train_ms; /* medians; < 0: the mixer has no separate core */
    double iter_s;               /* one warm-up forward+backward, seconds (for predicting larger T) */
    double peak_mb;              /* ru_maxrss of the child */
    double fma_gflops;           /* the sgemm child: every thread's FMA rate together */
    char note[BENCH_NOTE_MAX];
};


void bench_opts_default(struct bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->B = 1;
    o->C = 128;
    o->H = 4;
    o->L = 1;
    o->repeats = 5;
    o->warmup = 1;
    o->time_budget = 600;
    o->seed = 1337;
    o->mem_budget = -1;
}

static double mem_available_mb(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    double mb = 0;
    while (fgets(line, sizeof line, f)) {
        long kb;
        if (sscanf(line, "MemAvailable: %ld kB", &kb) == 1) {
            mb = kb / 1024.0;
            break;
        }
    }
    fclose(f);
    return mb;
}


int bench_opts_finish(struct bench_opts *o, struct mx_error *err)
{
    if (o->n_attn == 0)
        return mx_errorf(err, "no mixer given; add --attn SPEC, e.g. --attn dense (mixlm bench --list)");
    if (o->n_ctx == 0)
        return mx_errorf(err, "no context length given; add e.g. --context 1024,4096");
    if (o->C % o->H != 0)
        return mx_errorf(err, "--dim %d must be a multiple of --heads %d", o->C, o->H);
    if (o->threads <= 0)
        o->threads = mx_get_threads();
    if (o->mem_budget < 0) {
        o->mem_budget = 0.9 * mem_available_mb();
        o->mem_budget_auto = 1;
    }
    return 0;
}

void bench_list(FILE *f)
{
    for (int k = 0; k < mixer_count(); k++) {
        const struct mixer_ops *ops = mixer_at(k);
        fprintf(f, "%-12s %s%s\n", ops->name, ops->causal ? "" : "[non-causal] ", ops->summary ? ops->summary : "");
    }
}

/* ---- children ------------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void child_send(int fd, const struct bench_msg *msg)
{
    const char *p = (const char *)msg;
    size_t left = sizeof *msg;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
}

/* The arithmetic peak: every thread runs the level's FMA loop (nn_kernels()->fma_peak) at once,
 * 2e6 rounds (~0.05-0.3 s); median of 5 after a warm-up. What sgemm and the model's GFLOP/s are
 * a fraction of: a figure near it cannot be raised by better code on this machine. */
static double fma_peak_gflops(int threads)
{
    const struct nn_kernels *k = nn_kernels();
    const long iters = 2000000;
    double t[5];
    volatile float sink = 0;
    for (int r = -1; r < 5; r++) {
        double t0 = mx_now();
        float acc = 0;
#pragma omp parallel num_threads(threads) reduction(+ : acc)
        acc += k->fma_peak(iters);
        sink += acc;
        if (r >= 0)
            t[r] = mx_now() - t0;
    }
    (void)sink;
    return 2.0 * MX_FMA_CHAINS * k->vw * (double)iters * threads / median(t, 5) * 1e-9;
}

/* The sgemm ceiling: C (n,n) = A (n,n) B (n,n), median GFLOP/s of 9 after 3 warm-ups. */
static void child_sgemm(const struct bench_opts *o, struct bench_msg *msg)
{
    const int n = 1024;
    size_t nn = (size_t)n * n;
    float *a = mx_xmalloc(nn * sizeof(float)), *b = mx_xmalloc(nn * sizeof(float));
    float *c = mx_xcalloc(nn * sizeof(float));
    struct mx_rng rng;
    mx_rng_seed(&rng, o->seed);
    mx_rng_fill_normal(&rng, a, nn, 1.0f);
    mx_rng_fill_normal(&rng, b, nn, 1.0f);
    double t[9];
    for (int r = -3; r < 9; r++) {
        double t0 = mx_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        if (r >= 0)
            t[r] = mx_now() - t0;
    }
    double s = median(t, 9);
    msg->ok = 1;
    msg->iter_s = s;
    msg->train_ms = 2.0 * n * n * (double)n / s * 1e-9; /* GFLOP/s */
    msg->fma_gflops = fma_peak_gflops(o->threads);
}

/* Allocate a zeroed, touched buffer or fill msg->note and return NULL. */
static float *child_alloc(size_t floats, const char *what, struct bench_msg *msg)
{
    struct mx_error err;
    float *p = mx_try_calloc((floats ? floats : 1) * sizeof(float), what, &err);
    if (!p)
        snprintf(msg->note, sizeof msg->note, "skipped: %s", err.msg);
    return p;
}

/* One (mixer, length) measurement. Runs in the child; never returns memory (the process ends). */
static void child_mixer(const struct bench_opts *o, const char *spec, int T, struct bench_msg *msg)
{
    double t_start = mx_now();
    int B = o->B, L = o->L;
    size_t BTC = (size_t)B * T * o->C;
    struct mixer *mx = mx_xcalloc(sizeof *mx * (size_t)L);
    size_t *poff = mx_xcalloc(sizeof *poff * (size_t)(L + 1));
    size_t scratch_n = 0;
    for (int l = 0; l < L; l++) {
        struct mixer_dims d = {
            .C = o->C, .H = o->H, .T_max = T, .bias = 0, .layer = l, .n_layer = L, .seed = o->seed};
        struct mx_error err;
        if (mixer_create(&mx[l], spec, &d, &err) != 0) {
            snprintf(msg->note, sizeof msg->note, "skipped: %s", err.msg);
            return;
        }
        poff[l + 1] = poff[l] + mixer_n_params(&mx[l]);
        size_t s = mx[l].ops->scratch_floats(&mx[l], B, T);
        scratch_n = s > scratch_n ? s : scratch_n;
    }
    /* The saved blocks are laid out by the core arena, as the model's activations are: one pass
     * counting, one binding. */
    struct mx_arena ar;
    float **sv = mx_xcalloc(sizeof *sv * (size_t)L);
    mx_arena_begin(&ar, NULL, 0);
    for (int l = 0; l < L; l++)
        mx_arena_floats(&ar, mx[l].ops->saved_floats(&mx[l], B, T));
    size_t saved_n = ar.used;
    size_t P = poff[L];
    float *params = child_alloc(P, "parameters", msg);
    float *dparams = params ? child_alloc(P, "parameter gradients", msg) : NULL;
    float *x = dparams ? child_alloc(BTC, "input x", msg) : NULL;
    float *dy = x ? child_alloc(BTC, "output gradient dy", msg) : NULL;
    float *dx = dy ? child_alloc(BTC, "input gradient dx", msg) : NULL;
    float *y = dx ? child_alloc(BTC * (size_t)L, "outputs y", msg) : NULL;
    float *saved = y ? child_alloc(saved_n, "saved activations", msg) : NULL;
    float *scratch = saved ? child_alloc(scratch_n, "scratch", msg) : NULL;
    if (!scratch)
        return;
    mx_arena_begin(&ar, saved, saved_n);
    for (int l = 0; l < L; l++)
        sv[l] = mx_arena_floats(&ar, mx[l].ops->saved_floats(&mx[l], B, T));
    for (int l = 0; l < L; l++) {
        struct mx_rng rng;
        mx_rng_seed3(&rng, o->seed, (uint64_t)l, 0);
        mixer_init(&mx[l], params + poff[l], &rng);
        mx[l].scratch = scratch;
        mx[l].training = 1;
        mx[l].step = 0;
    }
    struct mx_rng rng;
    mx_rng_seed3(&rng, o->seed, 1000003, 1);
    mx_rng_fill_normal(&rng, x, BTC, 1.0f);
    mx_rng_fill_normal(&rng, dy, BTC, 1.0f);

    double fwd[BENCH_MAX_REPEATS] = {0}, trn[BENCH_MAX_REPEATS] = {0};
    int want = o->repeats, done = 0;
    for (int it = 0; it < o->warmup + want; it++) {
        int timed = it >= o->warmup;
        memset(dparams, 0, P * sizeof(float));
        memset(dx, 0, BTC * sizeof(float));
        double t0 = mx_now();
        for (int l = 0; l < L; l++)
            mx[l].ops->forward(&mx[l], y + (size_t)l * BTC, sv[l], x, params + poff[l], B, T);
        double t1 = mx_now();
        for (int l = L - 1; l >= 0; l--)
            mx[l].ops->backward(&mx[l], dx, dparams + poff[l], dy, sv[l], x, params + poff[l], B, T);
        double t2 = mx_now();
        if (timed) {
            fwd[done] = t1 - t0;
            trn[done] = t2 - t0;
            done++;
        }
        /* After the last warm-up pass (the first pass when there is none: it pays the thread
         * pool start and first touches), shrink the repeats so the whole run fits the budget,
         * keeping a 10% margin for start-up and teardown; at least one repeat is always timed. */
        int last_warm = o->warmup > 0 ? o->warmup - 1 : 0;
        if (it == last_warm) {
            msg->iter_s = t2 - t0;
            double left = 0.9 * o->time_budget - (mx_now() - t_start);
            /* A mixer with a separate core has it timed too, as many times (costs < a pass). */
            double per = (t2 - t0) * (mx[0].ops->core ? 2 : 1);
            int fit = (int)(left / per) + (o->warmup == 0 ? 1 : 0);
            if (fit < want)
                want = fit < 1 ? 1 : fit;
        }
    }
    msg->ok = 1;
    msg->repeats = done;
    msg->forward_ms = 1e3 * median(fwd, done);
    msg->train_ms = 1e3 * median(trn, done);
    /* The core alone, as many repeats, on what the last full pass saved. */
    msg->core_forward_ms = msg->core_train_ms = -1;
    if (mixer_core_forward(&mx[0], sv[0], B, T) == 0) {
        for (int it = 0; it < done; it++) {
            double t0 = mx_now();
            for (int l = 0; l < L; l++)
                mixer_core_forward(&mx[l], sv[l], B, T);
            double t1 = mx_now();
            for (int l = L - 1; l >= 0; l--)
                mixer_core_backward(&mx[l], sv[l], dy, B, T);
            double t2 = mx_now();
            fwd[it] = t1 - t0;
            trn[it] = t2 - t0;
        }
        msg->core_forward_ms = 1e3 * median(fwd, done);
        msg->core_train_ms = 1e3 * median(trn, done);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    msg->peak_mb = ru.ru_maxrss / 1024.0;
}

struct child_job {
    const struct bench_opts *o;
    const char *spec; /* NULL: the sgemm ceiling */
    int T;
};

/* Fork, run the job in the child with a wall-time limit, collect its message. Returns 0 when a
 * message came back; otherwise fills msg->note (killed, crashed, over time) and returns -1. */
static int run_child(const struct child_job *job, double budget_s, struct bench_msg *msg)
{
    memset(msg, 0, sizeof *msg);
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(msg->note, sizeof msg->note, "skipped: pipe failed: %s", strerror(errno));
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        snprintf(msg->note, sizeof msg->note, "skipped: fork failed: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        struct bench_msg m;
        memset(&m, 0, sizeof m);
        mx_set_threads(job->o->threads);
        if (job->spec)
            child_mixer(job->o, job->spec, job->T, &m);
        else
            child_sgemm(job->o, &m);
        child_send(fds[1], &m);
        close(fds[1]);
        _exit(0); /* no atexit handlers, no second flush of the parent's stdio buffers */
    }
    close(fds[1]);
    double t0 = mx_now();
    size_t got = 0;
    int timed_out = 0;
    while (got < sizeof *msg) {
        double left = budget_s - (mx_now() - t0);
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int ms = left > 1e6 ? 1000000000 : (int)ceil(left * 1000);
        int pr = poll(&pfd, 1, ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            continue; /* the loop head sees the budget spent */
        ssize_t r = read(fds[0], (char *)msg + got, sizeof *msg - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* the child ended without a full message */
        got += (size_t)r;
    }
    close(fds[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got == sizeof *msg)
        return 0;
    memset(msg, 0, sizeof *msg);
    if (timed_out)
        snprintf(msg->note, sizeof msg->note, "skipped: over time budget (%gs)", budget_s);
    else if (WIFSIGNALED(status))
        snprintf(msg->note, sizeof msg->note, "failed: child killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)),
                 WTERMSIG(status) == SIGKILL ? " - out of memory? lower --mem-budget" : "");
    else
        snprintf(msg->note, sizeof msg->note, "failed: child exited with status %d",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return -1;
}

/* ---- the run ------------------------------------------------------------------------------- */

/* Predict one forward+backward pass at T from the two previous measured lengths of the same
 * mixer: t ~ T^e with e from their ratio, clamped to [1, 3] (noise at small T can make the
 * apparent exponent anything). Returns -1 when there is too little to go on. */
static double predict_iter_s(const struct bench_row *prev, int n_prev, int T)
{
    const struct bench_row *a = NULL, *b = NULL;
    for (int i = n_prev - 1; i >= 0; i--) {
        if (!prev[i].measured || prev[i].T >= T)
            continue;
        if (!b)
            b = &prev[i];
        else if (prev[i].T < b->T) {
            a = &prev[i];
            break;
        }
    }
    if (!a || !b || a->iter_s <= 0 || b->iter_s <= 0)
        return -1;
    double e = log(b->iter_s / a->iter_s) / log((double)b->T / a->T);
    e = e < 1 ? 1 : e > 3 ? 3 : e;
    return b->iter_s * pow((double)T / b->T, e);
}

int bench_plan(const struct bench_opts *o, struct bench_result *res, struct mx_error *err)
{
    /* Validate every spec at every length up front and take the memory estimate from the
     * mixer's own accounting. */
    size_t n_rows = (size_t)o->n_attn * o->n_ctx;
    struct bench_row *rows = mx_xcalloc(sizeof *rows * n_rows);
    double base_mb = mx_rss_mb();
    for (int a = 0; a < o->n_attn; a++) {
        for (int c = 0; c < o->n_ctx; c++) {
            struct bench_row *r = &rows[(size_t)a * o->n_ctx + c];
            int T = o->ctx[c];
            r->attn = o->attn[a];
            r->T = T;
            r->gflops = -1;
            double floats = 0;
            for (int l = 0; l < o->L; l++) {
                struct mixer m;
                struct mixer_dims d = {
                    .C = o->C, .H = o->H, .T_max = T, .bias = 0, .layer = l, .n_layer = o->L, .seed = o->seed};
                if (mixer_create(&m, o->attn[a], &d, err) != 0) {
                    /* A spec sized for long contexts (window:w=512) is not valid at a short one:
                     * that row is skipped with the reason; a spec valid at no length is an error. */
                    snprintf(r->skipped, sizeof r->skipped, "skipped: not valid at this context: %s", err->msg);
                    snprintf(r->canon, sizeof r->canon, "%s", o->attn[a]);
                    break;
                }
                if (l == 0) {
                    snprintf(r->canon, sizeof r->canon, "%s", m.spec);
                    r->reference = m.ops == mixer_at(0);
                }
                double BTC = (double)o->B * T * o->C;
                double saved = (double)m.ops->saved_floats(&m, o->B, T);
                double scratch = (double)m.ops->scratch_floats(&m, o->B, T);
                floats += 2.0 * (double)mixer_n_params(&m) + BTC + saved;
                if (l == 0)
                    floats += 3 * BTC + scratch;
                r->flops += mixer_flops(&m, o->B, T, NULL, NULL);
                mixer_destroy(&m);
            }
            r->est_mb = floats * 4.0 / 1048576.0 + base_mb;
        }
        int valid = 0;
        for (int c = 0; c < o->n_ctx; c++)
            valid += !rows[(size_t)a * o->n_ctx + c].skipped[0];
        if (!valid) { /* err still holds the last context's reason */
            mx_error_wrap(err, "--attn %s at --context %d", o->attn[a], o->ctx[o->n_ctx - 1]);
            mx_free(rows);
            return -1;
        }
    }
    res->rows = rows;
    res->n_rows = n_rows;
    res->sgemm = -1;
    res->fma_peak = -1;
    return 0;
}

void bench_result_free(struct bench_result *res)
{
    mx_free(res->rows);
    memset(res, 0, sizeof *res);
}

void bench_measure(const struct bench_opts *o, struct bench_result *res)
{
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    struct bench_msg msg;
    struct child_job sj = {.o = o, .spec = NULL, .T = 0};
    struct mx_hostcpu start, end;
    mx_hostcpu_read(&start);
    mx_set_threads(o->threads);
    if (!o->no_sgemm && run_child(&sj, 60, &msg) == 0 && msg.ok) {
        res->sgemm = msg.train_ms;
        res->fma_peak = msg.fma_gflops;
    }
    double sgemm = res->sgemm;

    int progress = o->format != BENCH_TEXT && isatty(fileno(stderr));
    if (o->format == BENCH_TEXT)
        bench_text_header(o, sgemm, res->fma_peak, coretype);
    else if (o->format == BENCH_CSV)
        bench_csv_head(stdout);

    for (int a = 0; a < o->n_attn; a++) {
        int over_time_at = 0; /* a smaller context of this mixer went over the time budget */
        struct bench_row *mine = &res->rows[(size_t)a * o->n_ctx];
        for (int c = 0; c < o->n_ctx; c++) {
            struct bench_row *r = &mine[c];
            double pred = predict_iter_s(mine, c, r->T);
            if (r->skipped[0]) {
                /* not valid at this context (bench_plan says why) */
            } else if (o->mem_budget > 0 && r->est_mb > o->mem_budget) {
                snprintf(r->skipped, sizeof r->skipped, "skipped: estimated %.0f MiB > --mem-budget %.0f MiB",
                         r->est_mb, o->mem_budget);
            } else if (over_time_at > 0 && r->T >= over_time_at) {
                snprintf(r->skipped, sizeof r->skipped,
                         "skipped: context %d already exceeded the time budget", over_time_at);
            } else if (pred > 0 && pred * (1 + o->warmup) > 2 * o->time_budget) {
                snprintf(r->skipped, sizeof r->skipped,
                         "skipped: predicted %.0fs per pass x %d passes > 2 x time budget (%gs)", pred,
                         1 + o->warmup, o->time_budget);
            } else {
                if (progress)
                    fprintf(stderr, "mixlm bench: %s at T=%d ...\n", r->attn, r->T);
                struct child_job job = {.o = o, .spec = o->attn[a], .T = r->T};
                struct mx_hostcpu h0, h1;
                mx_hostcpu_read(&h0);
                int got = run_child(&job, o->time_budget, &msg) == 0 && msg.ok;
                mx_hostcpu_read(&h1);
                mx_hostcpu_share(&h0, &h1, &r->host_steal_pct, &r->host_other_pct);
                if (got) {
                    r->measured = 1;
                    r->repeats = msg.repeats;
                    r->forward_ms = msg.forward_ms;
                    r->train_ms = msg.train_ms;
                    r->core_forward_ms = msg.core_forward_ms;
                    r->core_train_ms = msg.core_train_ms;
                    r->peak_mb = msg.peak_mb;
                    r->iter_s = msg.iter_s;
                    r->tokens_per_s = (double)o->B * r->T / (r->train_ms * 1e-3);
                    if (r->flops > 0)
                        r->gflops = r->flops / (r->train_ms * 1e-3) * 1e-9;
                } else {
                    snprintf(r->skipped, sizeof r->skipped, "%s",
                             msg.note[0] ? msg.note : "failed: no result from the child");
                    if (strstr(r->skipped, "over time budget"))
                        over_time_at = r->T;
                }
            }
            if (o->format == BENCH_TEXT)
                bench_text_row(o, r);
            else if (o->format == BENCH_CSV) {
                bench_csv_row(stdout, o, r, sgemm);
                fflush(stdout);
            }
        }
    }
    if (o->format == BENCH_TEXT) {
        bench_text_ratios(o, res->rows);
        double st, ot;
        char hbuf[128];
        mx_hostcpu_read(&end);
        mx_hostcpu_share(&start, &end, &st, &ot);
        if (st >= 0) /* the whole run, sgemm ceiling included (each row's own: CSV/JSON, notes) */
            printf("\nhost during the bench: %s\n", mx_hostcpu_text(hbuf, sizeof hbuf, st, ot));
    } else if (o->format == BENCH_JSON) {
        char *s = bench_json_table(o, res);
        puts(s);
        cJSON_free(s);
    }
}
