/* isa.h — the SIMD level hot kernels run at, chosen once per process: the best the CPU has
 * (cpuid), or MIXLM_ISA=avx512|avx2|sse|scalar (x86-64), neon|scalar (aarch64). Per-level source
 * files (CMake: mixlm_isa_variants) name their symbols with MX_ISA_FN and export one table of
 * function pointers; a library picks the table of mx_isa() (nn/kernels.c shows how).
 * Not a kernel library itself. */
#ifndef MIXLM_ISA_H
#define MIXLM_ISA_H

struct mx_error;

/* Ordered from least to most capable within an architecture. */
enum mx_isa { MX_ISA_SCALAR, MX_ISA_SSE, MX_ISA_NEON, MX_ISA_AVX2, MX_ISA_AVX512, MX_ISA_COUNT };

/* The levels built on this architecture, best first: X(ENUM, suffix). Must match the list in
 * CMake's mixlm_isa_variants (CMakeLists.txt). */
#if defined(__x86_64__)
#define MX_ISA_FOREACH(X)                                                                                    \
    X(MX_ISA_AVX512, avx512) X(MX_ISA_AVX2, avx2) X(MX_ISA_SSE, sse) X(MX_ISA_SCALAR, scalar)
#elif defined(__aarch64__)
#define MX_ISA_FOREACH(X) X(MX_ISA_NEON, neon) X(MX_ISA_SCALAR, scalar)
#else
#define MX_ISA_FOREACH(X) X(MX_ISA_SCALAR, scalar)
#endif

/* In a per-ISA source: MX_ISA_FN(nn_kernels) is nn_kernels_avx2 in the avx2 build.
 * MX_ISA_SUFFIX is defined by mixlm_isa_variants. */
#define MX_ISA_CAT2(a, b) a##_##b
#define MX_ISA_CAT(a, b) MX_ISA_CAT2(a, b)
#define MX_ISA_FN(name) MX_ISA_CAT(name, MX_ISA_SUFFIX)

/* A library's dispatch file declares its per-level tables and picks one like this:
 *   #define X(e, s) extern const struct nn_kernels MX_ISA_CAT(nn_kernels, s);
 *   MX_ISA_FOREACH(X)
 *   #undef X
 *   ... switch (isa) { #define X(e, s) case e: return &MX_ISA_CAT(nn_kernels, s); ... }
 * (nn/kernels.c is the example.) */

/* The level in use (decided on the first call, thread-safe). */
enum mx_isa mx_isa(void);
/* Decide now; returns 0, or -1 with err naming MIXLM_ISA's value and the levels available.
 * Idempotent. A level the CPU lacks or an unknown name is an ERROR, not a silent fall-back (a
 * measurement labelled "avx512" must not have run AVX2 code). main() should call this before
 * any kernel runs; a program that does not gets the message and exit status 2 from mx_isa(). */
int mx_isa_init(struct mx_error *err);
/* Whether this CPU can run a level AND this build has it. */
int mx_isa_supported(enum mx_isa isa);
/* Whether this CPU can run a level, whatever this build holds (for choosing other libraries'
 * kernels, e.g. OpenBLAS's core: nn/linear.c). */
int mx_cpu_has(enum mx_isa isa);
const char *mx_isa_level_name(enum mx_isa isa); /* "avx512", "avx2", "sse", "neon", "scalar" */
const char *mx_isa_name(void);                  /* the level in use */
/* The CPU's model name (/proc/cpuinfo "model name" or the cpuid brand string), or "unknown". */
const char *mx_cpu_name(void);

#endif
