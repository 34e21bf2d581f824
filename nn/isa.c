/* isa.c — the one-time choice of SIMD level: cpuid (__builtin_cpu_supports) for the best level,
 * MIXLM_ISA to ask for a lower one (or the same), and the CPU's name for reports.
 * Besides nn/simd.h and nn/isa.h this is the only file that knows ISA names; it holds no
 * kernels (they are in the per-ISA files, e.g. nn/kernels_isa.c). */
#include "nn/isa.h"

#include "core/core.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const level_names[MX_ISA_COUNT] = {
    [MX_ISA_SCALAR] = "scalar", [MX_ISA_SSE] = "sse",       [MX_ISA_NEON] = "neon",
    [MX_ISA_AVX2] = "avx2",     [MX_ISA_AVX512] = "avx512",
};

const char *mx_isa_level_name(enum mx_isa isa)
{
    return (unsigned)isa < MX_ISA_COUNT ? level_names[isa] : "unknown";
}

static int built(enum mx_isa isa)
{
    switch (isa) {
#define X(e, s)                                                                                              \
    case e:                                                                                                  \
        return 1;
        MX_ISA_FOREACH(X)
#undef X
    default:
        return 0;
    }
}

/* WHY avx512 asks for F, DQ, BW and VL: the variant is compiled with all four (every
 * AVX-512 CPU since Skylake-SP has them), and the compiler may use any of them. */
int mx_cpu_has(enum mx_isa isa)
{
    switch (isa) {
    case MX_ISA_SCALAR:
        return 1;
#if defined(__x86_64__)
    case MX_ISA_SSE:
        return 1; /* SSE2 is part of x86-64 */
    case MX_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case MX_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#elif defined(__aarch64__)
    case MX_ISA_NEON:
        return 1; /* Advanced SIMD is mandatory on AArch64 */
#endif
    default:
        return 0;
    }
}

int mx_isa_supported(enum mx_isa isa)
{
    return built(isa) && mx_cpu_has(isa);
}

static enum mx_isa best_level(void)
{
#define X(e, s)                                                                                              \
    if (mx_isa_supported(e))                                                                                 \
        return e;
    MX_ISA_FOREACH(X)
#undef X
    return MX_ISA_SCALAR;
}

static void list_levels(char *buf, size_t n)
{
    buf[0] = 0;
#define X(e, s)                                                                                              \
    if (mx_isa_supported(e))                                                                                 \
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", buf[0] ? ", " : "", #s);
    MX_ISA_FOREACH(X)
#undef X
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static enum mx_isa chosen;
static int chosen_ok;
static struct mx_error chosen_err;

static void decide(void)
{
    const char *env = getenv("MIXLM_ISA");
    chosen = best_level();
    chosen_ok = 1;
    if (!env || !env[0])
        return;
    char avail[128];
    list_levels(avail, sizeof avail);
    for (int i = 0; i < MX_ISA_COUNT; i++)
        if (strcmp(env, level_names[i]) == 0) {
            if (!mx_isa_supported((enum mx_isa)i)) {
                chosen_ok = 0;
                mx_errorf(&chosen_err,
                          "MIXLM_ISA=%s: this CPU (%s) or this build cannot run that level; "
                          "available here: %s (unset MIXLM_ISA for the best, %s)",
                          env, mx_cpu_name(), avail, level_names[chosen]);
                return;
            }
            chosen = (enum mx_isa)i;
            return;
        }
    chosen_ok = 0;
    mx_errorf(&chosen_err, "MIXLM_ISA=%s is not a SIMD level; use one of: %s (or unset it)", env, avail);
}

int mx_isa_init(struct mx_error *err)
{
    pthread_once(&once, decide);
    if (!chosen_ok) {
        if (err)
            *err = chosen_err;
        return -1;
    }
    return 0;
}

enum mx_isa mx_isa(void)
{
    pthread_once(&once, decide);
    if (!chosen_ok) {
        /* Bad input found where no error can be returned: say so and stop (not abort: it
         * is the user's setting, not our bug). */
        fprintf(stderr, "mixlm: %s\n", chosen_err.msg);
        exit(2);
    }
    return chosen;
}

const char *mx_isa_name(void)
{
    return level_names[mx_isa()];
}

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static char cpu_name[160] = "unknown"; /* fits model[96] + family + model + text */

/* The value after "key<spaces>:" on a /proc/cpuinfo line, or NULL. */
static const char *cpuinfo_value(const char *line, const char *key)
{
    size_t n = strlen(key);
    if (strncmp(line, key, n) != 0 || (line[n] != ' ' && line[n] != '\t' && line[n] != ':'))
        return NULL;
    const char *c = strchr(line, ':');
    if (!c)
        return NULL;
    c++;
    while (*c == ' ' || *c == '\t')
        c++;
    return c;
}

/* x86: "model name" plus family and model (several generations share one marketing name, e.g.
 * "AMD EPYC" for Zen 3 and Zen 5 virtual machines); aarch64 kernels often give no model name,
 * only "CPU implementer"/"CPU part". Only the first processor's lines are read. */
static void read_cpu_name(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512], model[96] = "", fam[16] = "", mod[16] = "", impl[16] = "", part[16] = "";
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        const char *v;
        line[strcspn(line, "\n")] = 0;
        if (line[0] == 0 && (model[0] || part[0]))
            break; /* end of the first processor's block */
        if ((v = cpuinfo_value(line, "model name")))
            snprintf(model, sizeof model, "%s", v);
        else if ((v = cpuinfo_value(line, "cpu family")))
            snprintf(fam, sizeof fam, "%s", v);
        else if ((v = cpuinfo_value(line, "model")))
            snprintf(mod, sizeof mod, "%s", v);
        else if ((v = cpuinfo_value(line, "CPU implementer")))
            snprintf(impl, sizeof impl, "%s", v);
        else if ((v = cpuinfo_value(line, "CPU part")))
            snprintf(part, sizeof part, "%s", v);
    }
    fclose(f);
    if (model[0] && fam[0])
        snprintf(cpu_name, sizeof cpu_name, "%s (family %s model %s)", model, fam, mod);
    else if (model[0])
        snprintf(cpu_name, sizeof cpu_name, "%s", model);
    else if (part[0])
        snprintf(cpu_name, sizeof cpu_name, "implementer %s part %s", impl, part);
}

const char *mx_cpu_name(void)
{
    pthread_once(&cpu_once, read_cpu_name);
    return cpu_name;
}
