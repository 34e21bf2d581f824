/* prof.c — the training step's time by kind of work (`mixlm train --profile`): exclusive wall
 * time per category, kept by a small stack (entering the matmuls inside a mixer pauses the
 * mixer's clock), and the matmuls' FLOPs. Off by default: then each mark is one load and one
 * branch. Only the main thread outside parallel regions records (the kernels it times open their
 * own regions); a mark from inside a parallel region, or from another thread, is ignored.
 * WHY wall time per category rather than a sampling profiler: the breakdown is part of the
 * result (summary.json, bench/train_speed.sh reads it) on any machine, with no perf at hand,
 * and the categories are the model's, not the symbols'. Not a general tracing facility. */
#include "core/core.h"

#include <omp.h>
#include <string.h>

#define PROF_DEPTH 16

static struct {
    int on;
    int sp; /* stack[0] is MX_PROF_OTHER, the time between marks */
    enum mx_prof_cat stack[PROF_DEPTH];
    int lost; /* pushes beyond PROF_DEPTH (their pops must not pop the frame below) */
    double last, secs[MX_PROF_N], matmul_flops;
} g_prof;

static const char *const g_names[MX_PROF_N] = {
    [MX_PROF_OTHER] = "other",        [MX_PROF_MATMUL] = "matmul", [MX_PROF_MIXER] = "mixing",
    [MX_PROF_NORM] = "layernorm",     [MX_PROF_GELU] = "gelu",     [MX_PROF_LOSS] = "softmax_ce",
    [MX_PROF_RESID] = "embed_resid", [MX_PROF_OPTIM] = "optimizer", [MX_PROF_DATA] = "data",
};

static int recording(void)
{
    return g_prof.on && !omp_in_parallel() && omp_get_thread_num() == 0;
}

void mx_prof_enable(int on)
{
    memset(&g_prof, 0, sizeof g_prof);
    g_prof.on = on;
    g_prof.last = mx_now();
}

void mx_prof_push(enum mx_prof_cat c)
{
    if (!recording())
        return;
    if (g_prof.sp + 1 >= PROF_DEPTH) {
        g_prof.lost++;
        return;
    }
    double t = mx_now();
    g_prof.secs[g_prof.stack[g_prof.sp]] += t - g_prof.last;
    g_prof.last = t;
    g_prof.stack[++g_prof.sp] = c;
}

void mx_prof_pop(void)
{
    if (!recording())
        return;
    if (g_prof.lost) {
        g_prof.lost--;
        return;
    }
    if (g_prof.sp == 0)
        return;
    double t = mx_now();
    g_prof.secs[g_prof.stack[g_prof.sp--]] += t - g_prof.last;
    g_prof.last = t;
}

void mx_prof_flops(double flops)
{
    if (recording())
        g_prof.matmul_flops += flops;
}

void mx_prof_read(double secs[MX_PROF_N], double *matmul_flops)
{
    if (recording()) { /* bring the running frame up to now */
        double t = mx_now();
        g_prof.secs[g_prof.stack[g_prof.sp]] += t - g_prof.last;
        g_prof.last = t;
    }
    memcpy(secs, g_prof.secs, sizeof g_prof.secs);
    if (matmul_flops)
        *matmul_flops = g_prof.matmul_flops;
}

const char *mx_prof_name(enum mx_prof_cat c)
{
    return c >= 0 && c < MX_PROF_N ? g_names[c] : "?";
}
