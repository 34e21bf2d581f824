/* main.c — the mixlm binary: dispatch to subcommands. Only main() prints errors and exits.
 * Not where any subcommand's logic lives. */
#include "cli/commands.h"
#include "core/core.h"
#include "nn/isa.h"
#include "nn/nn.h"

#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: mixlm <command> [options]\n"
               "commands:\n"
               "  train      train a model (mixlm train --help)\n"
               "  generate   sample text from a trained run\n"
               "  eval       validation loss, perplexity, bits per char/byte\n"
               "  bench      time and memory of mixers across context lengths\n"
               "  compare    quality table across training runs (loss, bits/char, speed, memory)\n"
               "  report     one self-contained HTML page: loss curves, cost vs context, tables\n"
               "  tokenizer  train/inspect SentencePiece tokenizers\n"
               "  data       synthetic tasks: the associative-recall task (mixlm data recall --help)\n");
}

int main(int argc, char **argv)
{
    /* WHY: libgomp's default wait policy spins between parallel regions. On a 2-core machine
     * with any other load the spinning threads steal the cores from the working ones: a
     * baby-model step measured 38 ms passive vs 140-520 ms default and 320 ms active under
     * load. libgomp reads the variable when it loads, before main, so set it and re-exec
     * once. A user's own OMP_WAIT_POLICY is respected.
     * WHY the OpenBLAS core too: an OpenBLAS older than 0.3.25 that does not know the CPU runs
     * its SSE3 kernels (5x slower sgemm on an AVX-512 Xeon, nn/nn.h); it also decides when it
     * loads. A user's own OPENBLAS_CORETYPE is respected; MIXLM_NO_REEXEC=1 turns both off. */
    if (!getenv("MIXLM_NO_REEXEC")) {
        int again = 0;
        if (!getenv("OMP_WAIT_POLICY")) {
            setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
            again = 1;
        }
        /* MIXLM_ISA=avx2 on an AVX-512 CPU stands for an AVX2 machine: OpenBLAS at AVX2 too. */
        const char *isa = getenv("MIXLM_ISA");
#if defined(__x86_64__)
        const char *isa_core = getenv("OPENBLAS_CORETYPE")
                                   ? NULL
                                   : mx_blas_core_for_isa(isa, mx_cpu_has(MX_ISA_AVX2), mx_cpu_has(MX_ISA_AVX512));
#else
        const char *isa_core = NULL;
#endif
        const char *core = getenv("OPENBLAS_CORETYPE") ? NULL : mx_blas_core_upgrade();
        if (isa_core) {
            setenv("MIXLM_BLAS_FOR_ISA", isa, 1);
            setenv("OPENBLAS_CORETYPE", isa_core, 1);
            again = 1;
        } else if (core) {
            setenv("MIXLM_BLAS_DETECTED", mx_blas_detected(), 1); /* for the run header */
            setenv("OPENBLAS_CORETYPE", core, 1);
            again = 1;
        }
        if (again) {
            setenv("MIXLM_NO_REEXEC", "1", 1);
            execv("/proc/self/exe", argv);
            /* exec failed (no /proc): carry on with the defaults */
        }
    }
    /* cJSON's allocations: out of memory is a clear error, never a NULL cJSON passes on. */
    cJSON_Hooks hooks = {.malloc_fn = mx_json_malloc, .free_fn = free};
    cJSON_InitHooks(&hooks);
    /* The SIMD level of every kernel, decided once (MIXLM_ISA may force a lower one). */
    struct mx_error err;
    if (mx_isa_init(&err) != 0) {
        fprintf(stderr, "mixlm: %s\n", err.msg);
        return 2;
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"train", cmd_train}, {"generate", cmd_generate}, {"eval", cmd_eval},
        {"bench", cmd_bench}, {"tokenizer", cmd_tokenizer},
        {"compare", cmd_compare}, {"report", cmd_report}, {"data", cmd_data},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "mixlm: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
