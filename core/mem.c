/* mem.c — checked, aligned allocation, the two-pass arena and tensor descriptors.
 * Not a general allocator: big buffers are allocated once at start-up and reused. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>

/* WHY a bound before asking: with overcommit a request far beyond RAM + swap may be granted and
 * the process killed by the OOM killer at the first write (no message); under ASan such a request
 * is a report, not NULL. Checked only for large requests (a syscall each).
 * Test only: MIXLM_FAULT_ALLOC_MIN=BYTES makes every request of at least BYTES fail here, so a
 * test reaches each out-of-memory path deterministically (and under ASan, which ulimit -v breaks). */
static int beyond_machine(size_t bytes)
{
    const char *fault = getenv("MIXLM_FAULT_ALLOC_MIN");
    if (fault && *fault && bytes >= strtoull(fault, NULL, 10))
        return 1;
    struct sysinfo si;
    if (bytes < ((size_t)256 << 20) || sysinfo(&si) != 0)
        return 0;
    double have = ((double)si.totalram + (double)si.totalswap) * si.mem_unit;
    return (double)bytes > have;
}

static void *aligned(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0)
        bytes = 64;
    if (beyond_machine(bytes) || posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    return p;
}

/* "64.0 MiB (67108864 bytes)", "27001 bytes". */
static const char *size_text(char *b, size_t cap, size_t bytes)
{
    static const char *unit[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = -1;
    while (v >= 1024 && u < 3)
        v /= 1024, u++;
    if (u < 0)
        snprintf(b, cap, "%zu bytes", bytes);
    else
        snprintf(b, cap, "%.1f %s (%zu bytes)", v, unit[u], bytes);
    return b;
}

void mx_fatal_oom(size_t bytes, const char *what)
{
    char sz[64];
    mx_fatal("out of memory: could not allocate %s for %s; use a smaller --batch, --context or model (--dim, "
             "--layers), or free memory",
             size_text(sz, sizeof sz, bytes), what ? what : "a buffer");
}

void *mx_xmalloc_in(size_t bytes, const char *func)
{
    void *p = aligned(bytes);
    if (!p) {
        char what[128];
        snprintf(what, sizeof what, "a buffer in %s()", func ? func : "?");
        mx_fatal_oom(bytes, what);
    }
    return p;
}

void *mx_xcalloc_in(size_t bytes, const char *func)
{
    void *p = mx_xmalloc_in(bytes, func);
    memset(p, 0, bytes);
    return p;
}

void *mx_xrealloc(void *p, size_t bytes, const char *what)
{
    void *q = beyond_machine(bytes) ? NULL : realloc(p, bytes ? bytes : 1);
    if (!q)
        mx_fatal_oom(bytes, what);
    return q;
}

char *mx_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = mx_xmalloc_in(n, "mx_xstrdup");
    memcpy(d, s, n);
    return d;
}

void *mx_json_malloc(size_t bytes)
{
    void *p = beyond_machine(bytes) ? NULL : malloc(bytes ? bytes : 1);
    if (!p)
        mx_fatal_oom(bytes, "JSON (cJSON)");
    return p;
}

void mx_free(void *p)
{
    free(p);
}

void *mx_try_calloc(size_t bytes, const char *what, struct mx_error *err)
{
    void *p = aligned(bytes);
    if (!p) {
        char sz[64];
        mx_errorf(err, "out of memory allocating %s, %s; use a smaller --batch, --context or model (--dim, "
                       "--layers), or free memory",
                  what, size_text(sz, sizeof sz, bytes));
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

void mx_arena_begin(struct mx_arena *a, float *base, size_t cap)
{
    a->base = base;
    a->used = 0;
    a->cap = cap;
}

float *mx_arena_floats(struct mx_arena *a, size_t n)
{
    size_t r = (n + 15) & ~(size_t)15;
    size_t at = a->used;
    a->used += r;
    if (!a->base)
        return NULL;
    MX_ASSERT(a->used <= a->cap);
    return a->base + at;
}

size_t mx_param_add(struct mx_param *out, int *n, size_t *at, const char *name, int ndim, int s0,
                    int s1, int decay, int trainable)
{
    size_t numel = (size_t)s0 * (ndim > 1 ? (size_t)s1 : 1);
    if (out) {
        struct mx_param *t = &out[*n];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", name);
        t->ndim = ndim;
        t->shape[0] = s0;
        t->shape[1] = ndim > 1 ? s1 : 0;
        t->offset = *at;
        t->numel = numel;
        t->decay = decay;
        t->trainable = trainable;
    }
    (*n)++;
    *at += numel;
    return numel;
}
