/* mem.c — checked, aligned allocation, the two-pass arena and tensor descriptors.
 * Not a general allocator: big buffers are allocated once at start-up and reused. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

static void *aligned(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0)
        bytes = 64;
    if (posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    return p;
}

void *mx_xmalloc(size_t bytes)
{
    void *p = aligned(bytes);
    if (!p)
        mx_fatal("out of memory allocating %zu bytes (%.1f MiB)", bytes, bytes / 1048576.0);
    return p;
}

void *mx_xcalloc(size_t bytes)
{
    void *p = mx_xmalloc(bytes);
    memset(p, 0, bytes);
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
        mx_errorf(err, "out of memory allocating %s (%.1f MiB); reduce --batch, --context or the model size",
                  what, bytes / 1048576.0);
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
