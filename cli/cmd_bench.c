/* cmd_bench.c — `mixlm bench`: time and memory of mixer sublayers across context lengths.
 * Each (mixer, length) runs in its own forked child, so an out-of-memory kill or an abort costs
 * one row, its peak RSS is its own, and the parent can enforce a wall-time budget by killing it.
 * It is not a model benchmark: no embedding, MLP, LayerNorm or optimizer, only the mixers
 * (each layer is fed the same unit-variance input, as a LayerNorm'd residual stream would be). */
#include "attention/mixer.h"
#include "attention/mixer_internal.h"
#include "cli/commands.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_MAX_ATTN 64
#define BENCH_MAX_CTX 64
#define BENCH_MAX_REPEATS 1000
#define BENCH_NOTE_MAX (MX_ERR_MAX + 64)

struct bench_opts {
    const char *attn[BENCH_MAX_ATTN];
    int n_attn;
    int ctx[BENCH_MAX_CTX];
    int n_ctx;
    int B, C, H, L;
    int repeats, warmup;
    int threads;        /* resolved: > 0 */
    double time_budget; /* seconds per (mixer, length) run; wall time of the child */
    double mem_budget;  /* MiB; 0 = no limit */
    int mem_budget_auto;
    uint64_t seed;
    int format;                     /* 0 text, 1 json, 2 csv */
    const char *csv_out, *json_out; /* also write the results there (any format on stdout) */
    int no_sgemm;                   /* skip the sgemm ceiling (quick tests) */
};

/* What a child sends back through its pipe (plain bytes: same binary on both ends). */
struct bench_msg {
    int ok;                      /* 1: measured; 0: the child refused (note says why) */
    int repeats;                 /* repeats actually measured (fewer than asked when the budget is tight) */
    double forward_ms, train_ms; /* medians */
    double core_forward_ms, core_train_ms; /* medians; < 0: the mixer has no separate core */
    double iter_s;               /* one warm-up forward+backward, seconds (for predicting larger T) */
    double peak_mb;              /* ru_maxrss of the child */
    char note[BENCH_NOTE_MAX];
};

/* One (mixer, length) row of the result. */
struct bench_row {
    const char *attn; /* the spec as given */
    char canon[MX_SPEC_MAX];
    int T;
    int measured;
    int repeats;
    double forward_ms, train_ms, peak_mb, est_mb, tokens_per_s, gflops; /* gflops < 0: undefined */
    double core_forward_ms, core_train_ms;                              /* < 0: no core */
    double iter_s;
    char skipped[BENCH_NOTE_MAX]; /* "" when measured */
};

static void bench_usage(FILE *f)
{
    fprintf(f,
            "usage: mixlm bench --attn SPEC [--attn SPEC ...] --context T[,T...] [options]\n"
            "\n"
            "Times the forward and forward+backward of --layers mixer sublayers for each mixer spec\n"
            "and each context length, each (mixer, length) in its own child process.\n"
            "\n"
            "options:\n"
            "  --attn SPEC          mixer spec, e.g. dense, window:w=256 (repeat the flag for several;\n"
            "                       specs contain commas, so they are never split)\n"
            "  --context LIST       context lengths, comma-separated, 'k' suffix = x1024\n"
            "                       (e.g. 1k,4k,16k); the flag may repeat\n"
            "  --batch B            batch size (default 1)\n"
            "  --dim C              channels (default 128)\n"
            "  --heads H            heads (default 4; C %% H == 0)\n"
            "  --layers L           mixer sublayers per run (default 1)\n"
            "  --repeats N          timed repeats; the median is reported (default 5)\n"
            "  --warmup N           untimed forward+backward passes first (default 1)\n"
            "  --threads N          OpenMP/OpenBLAS threads (default: OpenMP's default)\n"
            "  --time-budget S      wall seconds allowed per (mixer, length) run (default 600).\n"
            "                       A run over it is killed and noted; larger contexts of that mixer are\n"
            "                       then skipped, and so is a context whose one-pass time, extrapolated\n"
            "                       from the two previous lengths, exceeds twice the budget. When a\n"
            "                       pass is slow the child measures fewer repeats so as to fit.\n"
            "  --mem-budget MB      skip runs whose estimated memory exceeds MB MiB\n"
            "                       (default: 90%% of MemAvailable at start)\n"
            "  --seed N             seed for parameters and inputs (default 1337)\n"
            "  --json               print a JSON array, one object per (mixer, length)\n"
            "  --csv                print CSV with the same columns\n"
            "  --csv-out FILE       also write the CSV to FILE (atomically, at the end)\n"
            "  --json-out FILE      also write the JSON array to FILE (atomically, at the end)\n"
            "  --no-sgemm           skip measuring the sgemm ceiling (~0.1 s; for quick tests)\n"
            "  --list               list the registered mixers and exit\n"
            "  -h, --help           this help\n"
            "\n"
            "What is measured (per mixer and length):\n"
            "  forward_ms     median wall time of the forward of all layers\n"
            "  train_ms       median wall time of forward then backward of all layers (the backward\n"
            "                 gets a random dy; gradients accumulate into zeroed buffers, zeroed untimed)\n"
            "  core_forward_ms, core_train_ms\n"
            "                 the same for the attention core alone (q,k,v -> o and back), without\n"
            "                 the QKV/output projections and head copies all attention mixers share;\n"
            "                 timed after the full passes, on the q,k,v they saved, the backward\n"
            "                 including the zeroing of its dq,dk,dv; empty/null for mixers without\n"
            "                 a separate core (lsh, fourier, fnet)\n"
            "  tokens_per_s   B*T / train time\n"
            "  peak_mb        peak resident memory of the child process (getrusage ru_maxrss),\n"
            "                 including the binary and the OpenBLAS buffers (a few tens of MiB)\n"
            "  est_mb         the up-front estimate: 4 bytes x (2 x params + x + dy + dx + per layer\n"
            "                 (y + saved_floats) + max scratch_floats) + the parent's RSS\n"
            "  gflops         achieved GFLOP/s of forward+backward where the FLOP count is well\n"
            "                 defined (empty/null otherwise); see the FLOP model below\n"
            "  sgemm_gflops   the measured cblas_sgemm 1024^3 ceiling (median of 9) for context\n"
            "\n"
            "FLOP model (dense only; a FLOP is a multiply or an add, one FMA = 2):\n"
            "  forward   projections 2*B*T*C*4C (QKV 3C + output C) + causal attention 2*B*H*T^2*D\n"
            "            (QK^T and PV over the T^2/2 allowed pairs, 2*D each)\n"
            "  backward  2x the forward projections (dx and dW) + 2.5x the forward attention\n"
            "            (recomputed scores, dV, dP, dQ, dK: five T^2/2*D products)\n"
            "  Softmax, exp and elementwise work are not counted. Other mixers: null, since their\n"
            "  useful FLOPs depend on the method's own bookkeeping and are not comparable.\n"
            "\n"
            "Run benchmarks with OPENBLAS_CORETYPE unset (env -u OPENBLAS_CORETYPE mixlm bench ...):\n"
            "a preset value forces slower kernels; the text header shows the value in effect.\n"
            "Exit status: 0 (even when runs were skipped), 2 on bad flags or an unknown mixer.\n");
}

/* ---- argument parsing --------------------------------------------------------------------- */

static int parse_ctx_list(struct bench_opts *o, const char *s, struct mx_error *err)
{
    char buf[1024];
    if (strlen(s) >= sizeof buf)
        return mx_errorf(err, "--context '%.40s...' is too long", s);
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    int n_items = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long v;
        if (mx_parse_int(tok, 1, 1L << 24, "--context", &v, err) != 0)
            return -1;
        if (o->n_ctx >= BENCH_MAX_CTX)
            return mx_errorf(err, "--context: more than %d lengths; split the run", BENCH_MAX_CTX);
        o->ctx[o->n_ctx++] = (int)v;
        n_items++;
    }
    if (n_items == 0)
        return mx_errorf(err, "--context '%s' holds no length; write e.g. --context 1024,4096", s);
    return 0;
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

/* Returns 0 to run, 1 when the command is done (help, list), -1 on a usage error. */
static int bench_parse(struct bench_opts *o, int argc, char **argv, struct mx_error *err)
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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            bench_usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--list")) {
            for (int k = 0; k < mixer_count(); k++) {
                const struct mixer_ops *ops = mixer_at(k);
                printf("%-12s %s%s\n", ops->name, ops->causal ? "" : "[non-causal] ",
                       ops->summary ? ops->summary : "");
            }
            return 1;
        }
        if (!strcmp(a, "--json")) {
            o->format = 1;
            continue;
        }
        if (!strcmp(a, "--csv")) {
            o->format = 2;
            continue;
        }
        if (!strcmp(a, "--no-sgemm")) {
            o->no_sgemm = 1;
            continue;
        }
        /* Everything else takes a value: "--flag value" or "--flag=value". */
        const char *eq = strchr(a, '=');
        char flag[64];
        const char *val;
        if (strncmp(a, "--", 2) == 0 && eq) {
            size_t n = (size_t)(eq - a);
            if (n >= sizeof flag)
                return mx_errorf(err, "unknown option '%s' (see mixlm bench --help)", a);
            memcpy(flag, a, n);
            flag[n] = 0;
            val = eq + 1;
        } else {
            snprintf(flag, sizeof flag, "%s", a);
            if (i + 1 >= argc)
                return mx_errorf(err, "%s needs a value (see mixlm bench --help)", a);
            val = argv[++i];
        }
        long v;
        double d;
        if (!strcmp(flag, "--attn")) {
            if (o->n_attn >= BENCH_MAX_ATTN)
                return mx_errorf(err, "--attn given more than %d times", BENCH_MAX_ATTN);
            o->attn[o->n_attn++] = val;
        } else if (!strcmp(flag, "--context")) {
            if (parse_ctx_list(o, val, err) != 0)
                return -1;
        } else if (!strcmp(flag, "--batch")) {
            if (mx_parse_int(val, 1, 1 << 16, "--batch", &v, err) != 0)
                return -1;
            o->B = (int)v;
        } else if (!strcmp(flag, "--dim")) {
            if (mx_parse_int(val, 1, 1 << 16, "--dim", &v, err) != 0)
                return -1;
            o->C = (int)v;
        } else if (!strcmp(flag, "--heads")) {
            if (mx_parse_int(val, 1, 1 << 12, "--heads", &v, err) != 0)
                return -1;
            o->H = (int)v;
        } else if (!strcmp(flag, "--layers")) {
            if (mx_parse_int(val, 1, 1024, "--layers", &v, err) != 0)
                return -1;
            o->L = (int)v;
        } else if (!strcmp(flag, "--repeats")) {
            if (mx_parse_int(val, 1, BENCH_MAX_REPEATS, "--repeats", &v, err) != 0)
                return -1;
            o->repeats = (int)v;
        } else if (!strcmp(flag, "--warmup")) {
            if (mx_parse_int(val, 0, 100, "--warmup", &v, err) != 0)
                return -1;
            o->warmup = (int)v;
        } else if (!strcmp(flag, "--threads")) {
            if (mx_parse_int(val, 1, 1024, "--threads", &v, err) != 0)
                return -1;
            o->threads = (int)v;
        } else if (!strcmp(flag, "--time-budget")) {
            if (mx_parse_float(val, 0.001, 1e7, "--time-budget (seconds)", &d, err) != 0)
                return -1;
            o->time_budget = d;
        } else if (!strcmp(flag, "--mem-budget")) {
            if (mx_parse_float(val, 1, 1e9, "--mem-budget (MiB)", &d, err) != 0)
                return -1;
            o->mem_budget = d;
        } else if (!strcmp(flag, "--csv-out")) {
            o->csv_out = val;
        } else if (!strcmp(flag, "--json-out")) {
            o->json_out = val;
        } else if (!strcmp(flag, "--seed")) {
            if (mx_parse_int(val, 0, 0x7fffffffL, "--seed", &v, err) != 0)
                return -1;
            o->seed = (uint64_t)v;
        } else {
            return mx_errorf(err, "unknown option '%s' (see mixlm bench --help)", flag);
        }
    }
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
}

/* Each layer's saved block starts on a 64-byte boundary, as the arena would place it. */
static size_t round16(size_t n)
{
    return (n + 15) / 16 * 16;
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
    size_t scratch_n = 0, saved_n = 0;
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
        saved_n += round16(mx[l].ops->saved_floats(&mx[l], B, T));
    }
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
    float **sv = mx_xcalloc(sizeof *sv * (size_t)L);
    size_t off = 0;
    for (int l = 0; l < L; l++) {
        sv[l] = saved + off;
        off += round16(mx[l].ops->saved_floats(&mx[l], B, T));
    }
    for (int l = 0; l < L; l++) {
        struct mx_rng rng;
        mx_rng_seed3(&rng, o->seed, (uint64_t)l, 0);
        mx[l].ops->init(&mx[l], params + poff[l], &rng);
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

/* ---- estimates ------------------------------------------------------------------------------ */

/* Forward+backward FLOPs where well defined (see --help), else -1. */
static double train_flops(const struct mixer *m, int B, int T)
{
    if (strcmp(m->ops->name, "dense") != 0)
        return -1;
    double C = m->C, bt = (double)B * T;
    double proj = 2.0 * bt * C * 4.0 * C;
    double attn = 2.0 * B * (double)m->H * (double)T * T * m->D;
    return (proj + attn) + (2.0 * proj + 2.5 * attn);
}

/* ---- output --------------------------------------------------------------------------------- */

static void csv_field(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
}

static void csv_num(FILE *f, int have, double v, int prec)
{
    if (have)
        fprintf(f, ",%.*f", prec, v);
    else
        fputc(',', f);
}

static const char csv_header[] =
    "attn,spec,context,batch,dim,heads,layers,threads,repeats,forward_ms,train_ms,peak_mb,est_mb,"
    "tokens_per_s,gflops,sgemm_gflops,core_forward_ms,core_train_ms,skipped\n";

static void csv_row(FILE *f, const struct bench_opts *o, const struct bench_row *r, double sgemm)
{
    csv_field(f, r->attn);
    fputc(',', f);
    csv_field(f, r->canon);
    fprintf(f, ",%d,%d,%d,%d,%d,%d,%d", r->T, o->B, o->C, o->H, o->L, o->threads,
            r->measured ? r->repeats : 0);
    csv_num(f, r->measured, r->forward_ms, 3);
    csv_num(f, r->measured, r->train_ms, 3);
    csv_num(f, r->measured, r->peak_mb, 1);
    csv_num(f, 1, r->est_mb, 1);
    csv_num(f, r->measured, r->tokens_per_s, 1);
    csv_num(f, r->measured && r->gflops >= 0, r->gflops, 2);
    csv_num(f, sgemm > 0, sgemm, 1);
    csv_num(f, r->measured && r->core_train_ms >= 0, r->core_forward_ms, 3);
    csv_num(f, r->measured && r->core_train_ms >= 0, r->core_train_ms, 3);
    fputc(',', f);
    csv_field(f, r->skipped);
    fputc('\n', f);
}

static cJSON *json_num_or_null(int have, double v)
{
    return have ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static cJSON *json_row(const struct bench_opts *o, const struct bench_row *r, double sgemm)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "attn", r->attn);
    cJSON_AddStringToObject(j, "spec", r->canon);
    cJSON_AddNumberToObject(j, "context", r->T);
    cJSON_AddNumberToObject(j, "batch", o->B);
    cJSON_AddNumberToObject(j, "dim", o->C);
    cJSON_AddNumberToObject(j, "heads", o->H);
    cJSON_AddNumberToObject(j, "layers", o->L);
    cJSON_AddNumberToObject(j, "threads", o->threads);
    cJSON_AddNumberToObject(j, "repeats", r->measured ? r->repeats : 0);
    cJSON_AddItemToObject(j, "forward_ms", json_num_or_null(r->measured, r->forward_ms));
    cJSON_AddItemToObject(j, "train_ms", json_num_or_null(r->measured, r->train_ms));
    cJSON_AddItemToObject(j, "peak_mb", json_num_or_null(r->measured, r->peak_mb));
    cJSON_AddNumberToObject(j, "est_mb", r->est_mb);
    cJSON_AddItemToObject(j, "tokens_per_s", json_num_or_null(r->measured, r->tokens_per_s));
    cJSON_AddItemToObject(j, "gflops", json_num_or_null(r->measured && r->gflops >= 0, r->gflops));
    cJSON_AddItemToObject(j, "sgemm_gflops", json_num_or_null(sgemm > 0, sgemm));
    int core = r->measured && r->core_train_ms >= 0;
    cJSON_AddItemToObject(j, "core_forward_ms", json_num_or_null(core, r->core_forward_ms));
    cJSON_AddItemToObject(j, "core_train_ms", json_num_or_null(core, r->core_train_ms));
    if (r->measured)
        cJSON_AddNullToObject(j, "skipped");
    else
        cJSON_AddStringToObject(j, "skipped", r->skipped);
    return j;
}

struct bench_table {
    const struct bench_opts *o;
    const struct bench_row *rows;
    size_t n_rows;
    double sgemm;
};

static char *json_table(const struct bench_table *t)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < t->n_rows; i++)
        cJSON_AddItemToArray(arr, json_row(t->o, &t->rows[i], t->sgemm));
    char *s = cJSON_Print(arr);
    cJSON_Delete(arr);
    return s;
}

static int write_json(FILE *f, void *ctx, struct mx_error *err)
{
    char *s = json_table(ctx);
    int ok = fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    cJSON_free(s);
    return ok ? 0 : mx_errorf(err, "writing JSON failed (disk full?)");
}

static int write_csv(FILE *f, void *ctx, struct mx_error *err)
{
    const struct bench_table *t = ctx;
    fputs(csv_header, f);
    for (size_t i = 0; i < t->n_rows; i++)
        csv_row(f, t->o, &t->rows[i], t->sgemm);
    return ferror(f) ? mx_errorf(err, "writing CSV failed (disk full?)") : 0;
}

static void text_header(const struct bench_opts *o, double sgemm, const char *coretype)
{
    printf("mixlm bench: B=%d C=%d H=%d D=%d layers=%d threads=%d repeats=%d warmup=%d "
           "time-budget=%gs mem-budget=%.0fMiB%s\n",
           o->B, o->C, o->H, o->C / o->H, o->L, o->threads, o->repeats, o->warmup, o->time_budget,
           o->mem_budget, o->mem_budget_auto ? " (90% of MemAvailable)" : "");
    if (sgemm > 0)
        printf("sgemm ceiling: cblas_sgemm 1024x1024x1024 = %.1f GFLOP/s (median of 9), "
               "OPENBLAS_CORETYPE=%s\n",
               sgemm, coretype ? coretype : "(unset)");
    else
        printf("sgemm ceiling: not measured (%s), OPENBLAS_CORETYPE=%s\n",
               o->no_sgemm ? "--no-sgemm" : "the child failed", coretype ? coretype : "(unset)");
    /* The host is shared and noisy: the load at start tells a reader how far to trust it. */
    FILE *lf = fopen("/proc/loadavg", "r");
    double l1 = -1;
    if (lf) {
        if (fscanf(lf, "%lf", &l1) != 1)
            l1 = -1;
        fclose(lf);
    }
    if (l1 >= 0)
        printf("load average (1 min) at start: %.2f on %ld online CPUs\n", l1, sysconf(_SC_NPROCESSORS_ONLN));
    if (coretype)
        printf("note: OPENBLAS_CORETYPE is set; benchmark with `env -u OPENBLAS_CORETYPE` "
               "for the machine's real kernels\n");
    printf("GFLOP/s: dense only (fwd 8BTC^2 + 2BHT^2D, bwd 2x projections + 2.5x attention; "
           "see --help)\n\n");
    printf("%-24s %7s %10s %10s %10s %11s %8s %8s %8s  %s\n", "attn", "T", "fwd ms", "train ms",
           "core ms", "tok/s", "GFLOP/s", "peak MB", "est MB", "note");
}

static void text_row(const struct bench_opts *o, const struct bench_row *r)
{
    if (r->measured) {
        char gf[32] = "-", note[64] = "", core[32] = "-";
        if (r->gflops >= 0)
            snprintf(gf, sizeof gf, "%.1f", r->gflops);
        if (r->core_train_ms >= 0)
            snprintf(core, sizeof core, "%.2f", r->core_train_ms);
        if (r->repeats < o->repeats)
            snprintf(note, sizeof note, "%d of %d repeats (time budget)", r->repeats, o->repeats);
        printf("%-24s %7d %10.2f %10.2f %10s %11.0f %8s %8.1f %8.1f  %s\n", r->attn, r->T,
               r->forward_ms, r->train_ms, core, r->tokens_per_s, gf, r->peak_mb, r->est_mb, note);
    } else {
        printf("%-24s %7d %10s %10s %10s %11s %8s %8s %8.1f  %s\n", r->attn, r->T, "-", "-", "-", "-",
               "-", "-", r->est_mb, r->skipped);
    }
    fflush(stdout);
}

static void text_ratios(const struct bench_opts *o, const struct bench_row *rows)
{
    int dense = -1;
    for (int a = 0; a < o->n_attn && dense < 0; a++)
        if (!strcmp(rows[(size_t)a * o->n_ctx].canon, "dense"))
            dense = a;
    printf("\ntrain time relative to dense (train_ms / dense train_ms; < 1 is faster):\n");
    if (dense < 0) {
        printf("  (no --attn dense in this run: add it to get ratios)\n");
        return;
    }
    if (o->n_attn == 1) {
        printf("  (only dense in this run: add other --attn specs to get ratios)\n");
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            int any = 0;
            for (size_t i = 0; i < (size_t)o->n_attn * o->n_ctx; i++)
                any |= rows[i].measured && rows[i].core_train_ms >= 0 && (int)(i / o->n_ctx) != dense;
            if (!any || rows[(size_t)dense * o->n_ctx].core_train_ms < 0)
                return;
            printf("\nattention core alone (core_train_ms / dense core_train_ms; no projections):\n");
        }
        printf("%-24s", "attn");
        for (int c = 0; c < o->n_ctx; c++)
            printf(" %9d", o->ctx[c]);
        printf("\n");
        for (int a = 0; a < o->n_attn; a++) {
            if (a == dense)
                continue;
            printf("%-24s", o->attn[a]);
            for (int c = 0; c < o->n_ctx; c++) {
                const struct bench_row *r = &rows[(size_t)a * o->n_ctx + c];
                const struct bench_row *d = &rows[(size_t)dense * o->n_ctx + c];
                double x = pass ? r->core_train_ms : r->train_ms;
                double y = pass ? d->core_train_ms : d->train_ms;
                if (r->measured && d->measured && x >= 0 && y > 0)
                    printf(" %9.3f", x / y);
                else
                    printf(" %9s", "-");
            }
            printf("\n");
        }
    }
}

/* ---- the command ---------------------------------------------------------------------------- */

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

int cmd_bench(int argc, char **argv)
{
    struct bench_opts o;
    struct mx_error err;
    int pr = bench_parse(&o, argc, argv, &err);
    if (pr == 1)
        return 0;
    if (pr < 0) {
        fprintf(stderr, "mixlm bench: %s\n", err.msg);
        return 2;
    }
    mx_set_threads(o.threads);

    /* Validate every spec at every length up front (a bad spec is a usage error, exit 2) and
     * take the memory estimate from the mixer's own accounting. */
    size_t n_rows = (size_t)o.n_attn * o.n_ctx;
    struct bench_row *rows = mx_xcalloc(sizeof *rows * n_rows);
    double base_mb = mx_rss_mb();
    for (int a = 0; a < o.n_attn; a++) {
        for (int c = 0; c < o.n_ctx; c++) {
            struct bench_row *r = &rows[(size_t)a * o.n_ctx + c];
            int T = o.ctx[c];
            r->attn = o.attn[a];
            r->T = T;
            r->gflops = -1;
            double floats = 0, flops = -1;
            for (int l = 0; l < o.L; l++) {
                struct mixer m;
                struct mixer_dims d = {
                    .C = o.C, .H = o.H, .T_max = T, .bias = 0, .layer = l, .n_layer = o.L, .seed = o.seed};
                if (mixer_create(&m, o.attn[a], &d, &err) != 0) {
                    fprintf(stderr, "mixlm bench: --attn %s at --context %d: %s\n", o.attn[a], T, err.msg);
                    mx_free(rows);
                    return 2;
                }
                if (l == 0)
                    snprintf(r->canon, sizeof r->canon, "%s", m.spec);
                double BTC = (double)o.B * T * o.C;
                double saved = (double)m.ops->saved_floats(&m, o.B, T);
                double scratch = (double)m.ops->scratch_floats(&m, o.B, T);
                floats += 2.0 * (double)mixer_n_params(&m) + BTC + saved;
                if (l == 0)
                    floats += 3 * BTC + scratch;
                double f = train_flops(&m, o.B, T);
                flops = f < 0 ? -1 : (l == 0 ? f : flops + f);
                mixer_destroy(&m);
            }
            r->est_mb = floats * 4.0 / 1048576.0 + base_mb;
            r->gflops = flops; /* FLOPs for now; turned into GFLOP/s once timed */
        }
    }

    const char *coretype = getenv("OPENBLAS_CORETYPE");
    struct bench_msg msg;
    struct child_job sj = {.o = &o, .spec = NULL, .T = 0};
    double sgemm = -1;
    if (!o.no_sgemm && run_child(&sj, 60, &msg) == 0 && msg.ok)
        sgemm = msg.train_ms;

    int progress = o.format != 0 && isatty(fileno(stderr));
    if (o.format == 0)
        text_header(&o, sgemm, coretype);
    else if (o.format == 2)
        fputs(csv_header, stdout);

    for (int a = 0; a < o.n_attn; a++) {
        int over_time_at = 0; /* a smaller context of this mixer went over the time budget */
        struct bench_row *mine = &rows[(size_t)a * o.n_ctx];
        for (int c = 0; c < o.n_ctx; c++) {
            struct bench_row *r = &mine[c];
            double flops = r->gflops;
            r->gflops = -1;
            double pred = predict_iter_s(mine, c, r->T);
            if (o.mem_budget > 0 && r->est_mb > o.mem_budget) {
                snprintf(r->skipped, sizeof r->skipped, "skipped: estimated %.0f MiB > --mem-budget %.0f MiB",
                         r->est_mb, o.mem_budget);
            } else if (over_time_at > 0 && r->T >= over_time_at) {
                snprintf(r->skipped, sizeof r->skipped,
                         "skipped: context %d already exceeded the time budget", over_time_at);
            } else if (pred > 0 && pred * (1 + o.warmup) > 2 * o.time_budget) {
                snprintf(r->skipped, sizeof r->skipped,
                         "skipped: predicted %.0fs per pass x %d passes > 2 x time budget (%gs)", pred,
                         1 + o.warmup, o.time_budget);
            } else {
                if (progress)
                    fprintf(stderr, "mixlm bench: %s at T=%d ...\n", r->attn, r->T);
                struct child_job job = {.o = &o, .spec = o.attn[a], .T = r->T};
                if (run_child(&job, o.time_budget, &msg) == 0 && msg.ok) {
                    r->measured = 1;
                    r->repeats = msg.repeats;
                    r->forward_ms = msg.forward_ms;
                    r->train_ms = msg.train_ms;
                    r->core_forward_ms = msg.core_forward_ms;
                    r->core_train_ms = msg.core_train_ms;
                    r->peak_mb = msg.peak_mb;
                    r->iter_s = msg.iter_s;
                    r->tokens_per_s = (double)o.B * r->T / (r->train_ms * 1e-3);
                    if (flops > 0)
                        r->gflops = flops / (r->train_ms * 1e-3) * 1e-9;
                } else {
                    snprintf(r->skipped, sizeof r->skipped, "%s",
                             msg.note[0] ? msg.note : "failed: no result from the child");
                    if (strstr(r->skipped, "over time budget"))
                        over_time_at = r->T;
                }
            }
            if (o.format == 0)
                text_row(&o, r);
            else if (o.format == 2) {
                csv_row(stdout, &o, r, sgemm);
                fflush(stdout);
            }
        }
    }

    struct bench_table tab = {.o = &o, .rows = rows, .n_rows = n_rows, .sgemm = sgemm};
    if (o.format == 0) {
        text_ratios(&o, rows);
    } else if (o.format == 1) {
        char *s = json_table(&tab);
        puts(s);
        cJSON_free(s);
    }
    int rc = 0;
    if (o.csv_out && mx_write_atomic(o.csv_out, write_csv, &tab, &err) != 0) {
        fprintf(stderr, "mixlm bench: --csv-out: %s\n", err.msg);
        rc = 1;
    }
    if (o.json_out && mx_write_atomic(o.json_out, write_json, &tab, &err) != 0) {
        fprintf(stderr, "mixlm bench: --json-out: %s\n", err.msg);
        rc = 1;
    }
    mx_free(rows);
    return rc;
}
