/* core.h — the small pieces every other folder leans on: error values, always-on asserts,
 * checked allocation, a two-pass arena, a seeded RNG, timers, a progress line, thread setup,
 * whole-file I/O with atomic writes, strict number parsing, rounding up, and the descriptor
 * of one named tensor in a parameter buffer (model and mixers share it).
 * It is not a framework: no tensor arithmetic, no autograd, no global state, no network math (nn/). */
#ifndef MIXLM_CORE_H
#define MIXLM_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- errors ----------------------------------------------------------------------------
 * Bad input is reported through a struct mx_error filled by mx_errorf, which returns -1 so
 * callers can write `return mx_errorf(err, "...")`. The message names the value, the limit
 * and the fix. Only main() prints it and exits. */
#define MX_ERR_MAX 1024
struct mx_error {
    char msg[MX_ERR_MAX];
};
int mx_errorf(struct mx_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix an existing message: "context: old message". Returns -1. */
int mx_error_wrap(struct mx_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Our own bugs: always on, prints expression, file and line, then aborts. */
#define MX_ASSERT(expr)                                                                       \
    do {                                                                                      \
        if (!(expr))                                                                          \
            mx_assert_fail(#expr, __FILE__, __LINE__);                                        \
    } while (0)
void mx_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
/* Resource failure (an FFTW plan, memory): print "mixlm: error: ..." to stderr, flush stdout and
 * exit 1 at once (_exit: no atexit handlers, safe from any thread). Not an abort: running out of
 * a resource is not a bug, and no core file or signal should follow. */
void mx_fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Out of memory: mx_fatal with what was being allocated, the size and the remedy (a smaller
 * --batch, --context or model, or more free memory). */
void mx_fatal_oom(size_t bytes, const char *what) __attribute__((noreturn));

/* ---- memory ----------------------------------------------------------------------------
 * Every allocation of the project goes through these (libraries' own buffers excepted:
 * OpenBLAS, FFTW plans, libsentencepiece; cJSON's go through mx_json_malloc, installed by main).
 * A request larger than the machine's RAM + swap fails at once, without asking the allocator:
 * with overcommit it could succeed and the first write would bring the OOM killer instead of
 * an error. */
/* Never NULL: on failure mx_fatal_oom naming the calling function. 64-byte aligned; free with
 * mx_free. */
#define mx_xmalloc(bytes) mx_xmalloc_in((bytes), __func__)
#define mx_xcalloc(bytes) mx_xcalloc_in((bytes), __func__)
void *mx_xmalloc_in(size_t bytes, const char *func);
void *mx_xcalloc_in(size_t bytes, const char *func);
/* realloc of an mx_ allocation (or NULL): never NULL, 16-byte (malloc's) alignment only. */
void *mx_xrealloc(void *p, size_t bytes, const char *what);
char *mx_xstrdup(const char *s); /* free with mx_free */
/* For cJSON_InitHooks: malloc that never returns NULL (mx_fatal_oom). Free with free(). */
void *mx_json_malloc(size_t bytes);
void mx_free(void *p);
/* Allocation that may fail gracefully (large buffers sized from user input): returns NULL
 * and fills err naming what, the size and what to reduce. */
void *mx_try_calloc(size_t bytes, const char *what, struct mx_error *err);

/* Two-pass arena: bind once with base == NULL to count (mx_arena_floats returns NULL and
 * only advances `used`), then allocate `used` floats and bind again with the real base.
 * Every request is rounded up to 16 floats (64 bytes). */
struct mx_arena {
    float *base; /* NULL while counting */
    size_t used; /* floats handed out so far */
    size_t cap;  /* floats available (0 while counting) */
};
void mx_arena_begin(struct mx_arena *a, float *base, size_t cap);
float *mx_arena_floats(struct mx_arena *a, size_t n);

/* ---- RNG --------------------------------------------------------------------------------
 * xoshiro256** seeded through splitmix64. Deterministic across platforms. The state is four
 * u64 words so it can be stored in a checkpoint. */
struct mx_rng {
    uint64_t s[4];
};
void mx_rng_seed(struct mx_rng *r, uint64_t seed);
/* Seed from several keys (seed, layer, step, ...): independent streams without shared state. */
void mx_rng_seed3(struct mx_rng *r, uint64_t a, uint64_t b, uint64_t c);
uint64_t mx_rng_u64(struct mx_rng *r);
uint32_t mx_rng_below(struct mx_rng *r, uint32_t n); /* uniform in [0, n), n > 0 */
float mx_rng_uniform(struct mx_rng *r);              /* [0, 1) */
double mx_rng_uniform_d(struct mx_rng *r);           /* [0, 1) with 53 bits */
float mx_rng_normal(struct mx_rng *r);               /* N(0, 1), Box-Muller */
void mx_rng_fill_normal(struct mx_rng *r, float *x, size_t n, float std);

/* ---- time, threads, progress ------------------------------------------------------------ */
double mx_now(void); /* monotonic seconds */
/* Set threads for both our OpenMP loops and OpenBLAS (openmp build). n <= 0: leave default. */
void mx_set_threads(int n);
int mx_get_threads(void);
/* Peak resident set size of this process in MiB (from getrusage). */
double mx_peak_rss_mb(void);
/* Current resident set size in MiB (from /proc/self/statm); 0 when unknown. */
double mx_rss_mb(void);

/* Where a training step's time goes (`mixlm train --profile`): exclusive wall time per kind of
 * work, nested marks pausing the enclosing one (core/prof.c). Off unless enabled; marks from
 * inside parallel regions or other threads are ignored. */
enum mx_prof_cat {
    MX_PROF_OTHER,  /* between marks: the rest of the step */
    MX_PROF_MATMUL, /* the model's matmuls through mx_sgemm (projections, MLP, head) */
    MX_PROF_MIXER,  /* the token mixers outside those matmuls (attention cores, head copies) */
    MX_PROF_NORM,   /* LayerNorm forward and backward */
    MX_PROF_GELU,   /* GELU forward and backward */
    MX_PROF_LOSS,   /* softmax cross-entropy forward and backward */
    MX_PROF_RESID,  /* embedding, residual adds, gradient buffers zeroed */
    MX_PROF_OPTIM,  /* gradient norm, AdamW */
    MX_PROF_DATA,   /* drawing the batch */
    MX_PROF_N
};
void mx_prof_enable(int on); /* also resets */
void mx_prof_push(enum mx_prof_cat c);
void mx_prof_pop(void);
void mx_prof_flops(double flops); /* FLOPs of the matmul being timed */
void mx_prof_read(double secs[MX_PROF_N], double *matmul_flops);
const char *mx_prof_name(enum mx_prof_cat c);

/* What the host did with the CPUs while we measured: the hypervisor's steal and other
 * processes' use, from Linux's /proc/stat (elsewhere unknown: ok 0).
 * WHY: on a shared 2-core KVM guest the same training step measured 38 and 110 ms minutes apart,
 * with 7-27% of the CPU time stolen (vmstat, 2026-12-03); a time figure read without these
 * cannot be compared with another. */
struct mx_hostcpu {
    int ok;
    double total, busy, steal; /* clock ticks of all CPUs since boot: everything, not idle/steal, steal */
    double self;               /* ticks of CPU this process and its waited-for children used */
};
/* Fill s from the "cpu " line of /proc/stat (user nice system idle iowait irq softirq steal
 * ...; fields after the fourth may be missing on old kernels). Returns 0, or -1 (s->ok 0). */
int mx_hostcpu_parse(const char *line, struct mx_hostcpu *s);
/* s = now (s->ok 0 where /proc/stat cannot be read). */
void mx_hostcpu_read(struct mx_hostcpu *s);
/* Between readings a and b, in % of all CPUs' time: steal, and the busy time of processes
 * other than this one. Both -1 when either reading failed or under 2 ticks passed. */
void mx_hostcpu_share(const struct mx_hostcpu *a, const struct mx_hostcpu *b, double *steal_pct,
                      double *other_pct);
/* "S% of the CPU time stolen by the hypervisor, O% used by other processes" into buf: the one
 * wording of every report (train, bench, generate --bench). Returns buf. */
const char *mx_hostcpu_text(char *buf, size_t n, double steal_pct, double other_pct);

/* A progress line: on a terminal it rewrites one line with \r; otherwise (a log, a pipe) it
 * prints one plain line every `every` updates. It ends with the host's steal and other load
 * since the previous plain line where they reach MX_HOST_NOTE_PCT. */
#define MX_HOST_NOTE_PCT 5.0
struct mx_progress {
    FILE *out;
    int tty;
    long total;
    double t_start;
    long every;
    int dirty;                 /* a \r line is on screen and needs a newline before other output */
    struct mx_hostcpu host;    /* at the last plain line (or the start) */
    char host_note[64];        /* "" or " | host: steal 12%, others 4%" over the last window */
};
void mx_progress_init(struct mx_progress *p, FILE *out, long total, long every);
/* step in [1, total]; tokens is the count processed since start, for tokens/s and ETA. */
void mx_progress_update(struct mx_progress *p, long step, double loss, double lr,
                        double ms_per_step, double tokens_per_s);
/* Print a full line (e.g. an eval result) without mangling the progress line. */
void mx_progress_print(struct mx_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mx_progress_end(struct mx_progress *p);

/* ---- hashing ---------------------------------------------------------------------------- */
/* FNV-1a 64 over 64-bit words (plus the tail bytes), continuing from h (start with
 * MX_HASH_BASIS) so several segments hash in sequence: the checkpoint checksum, the option and
 * parameter hashes compared across ranks. Detects truncation, bit flips and swapped tensors;
 * fast enough for hundreds of MB. Not cryptographic. */
#define MX_HASH_BASIS 0xcbf29ce484222325ull
uint64_t mx_hash64(uint64_t h, const void *p, size_t n);

/* ---- files ------------------------------------------------------------------------------ */
/* Read a whole file; *len gets its size. Errors name the path and the reason. Caller frees
 * with mx_free. A trailing NUL is appended (not counted in len). */
char *mx_read_file(const char *path, size_t *len, struct mx_error *err);
/* Write atomically: path.tmp, fsync, rename over path, fsync the directory. The writer
 * callback gets a FILE* and returns 0 or -1 (with err filled). */
int mx_write_atomic(const char *path, int (*writer)(FILE *f, void *ctx, struct mx_error *err),
                    void *ctx, struct mx_error *err);
int mx_mkdir_p(const char *path, struct mx_error *err);
/* One CSV field: quoted (with "" for ") when it holds a comma, quote or line break. */
void mx_csv_field(FILE *f, const char *s);
int mx_file_exists(const char *path);

/* ---- small parsing helpers (CLI and spec strings) ----------------------------------------
 * Strict: the whole string must be a number in range, else an error naming `what`. */
int mx_parse_int(const char *s, long lo, long hi, const char *what, long *out, struct mx_error *err);
int mx_parse_float(const char *s, double lo, double hi, const char *what, double *out, struct mx_error *err);

/* n rounded up to a multiple of k (k > 0). */
static inline size_t mx_round_up(size_t n, size_t k)
{
    return (n + k - 1) / k * k;
}

/* ---- tensor descriptors ----------------------------------------------------------------
 * One named tensor of a parameter buffer: the model's tensors (full nanoGPT names, offsets in
 * the model's buffer) and a mixer's tensors (names relative to "attn.", offsets in the mixer's
 * slice) are both listed with this struct and filled by mx_param_add. */
#define MX_PARAM_NAME_MAX 96
struct mx_param {
    char name[MX_PARAM_NAME_MAX]; /* e.g. "transformer.h.0.attn.c_attn.weight" or "c_attn.weight" */
    int ndim;
    int shape[4];
    size_t offset, numel; /* in floats, within the buffer the list describes */
    int decay;            /* 1: AdamW weight decay applies (matrices); 0: biases, gains, buffers */
    int trainable;        /* 0: a buffer (e.g. random features): no gradient, never updated */
};
/* Describe tensor number *n at offset *at in out[*n] (out NULL: count only), then advance *n
 * and *at by one tensor and its numel. s1 is ignored when ndim == 1. Returns the numel. */
size_t mx_param_add(struct mx_param *out, int *n, size_t *at, const char *name, int ndim, int s0,
                    int s1, int decay, int trainable);

#endif
