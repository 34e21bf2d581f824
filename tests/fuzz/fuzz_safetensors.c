/* fuzz_safetensors.c — the checkpoint reader: the input is written to a file in a private temp
 * directory and opened with ckpt_open (header length, JSON header, dtypes, offsets, size,
 * checksum, metadata JSON), then, when it opens, ckpt_load_model (config validation, model
 * construction, tensor shapes), ckpt_load_moments and a few model_step calls. ckpt_open has no in-memory entry point:
 * it reads a path, as the CLI does.
 * The checksum (FNV-1a over tensors and metadata) stops almost every mutation at ckpt_open; in the
 * libFuzzer build (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, set by -DMIXLM_FUZZ=ON) checkpoint.c
 * reports a mismatch but goes on, so the fuzzer reaches the metadata and shape validation. */
#include "fuzz.h"

#include "core/core.h"
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A model that loads must run: a few decoding steps (every layer's mixer, the head) from the
 * stored weights, whatever values they hold. */
static void decode(struct mx_model *m)
{
    if (!model_can_step(m)) /* a mixer without incremental decoding (fnet) */
        return;
    int V = m->cfg.vocab_size, n = m->cfg.block_size < 4 ? m->cfg.block_size : 4;
    float *logits = mx_xcalloc(((size_t)V + 1) * sizeof(float));
    float *state = mx_xcalloc((model_state_floats(m) + 1) * sizeof(float));
    float *work = mx_xcalloc((model_step_work_floats(m) + 1) * sizeof(float));
    for (int t = 0; t < n; t++)
        model_step(m, logits, state, work, (int32_t)(t % V), t);
    mx_free(logits);
    mx_free(state);
    mx_free(work);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    const char *g_path = fuzz_input_file("ckpt.safetensors", data, size);
    struct mx_ckpt c;
    struct mx_error err = {{0}};
    if (ckpt_open(&c, g_path, &err) != 0) {
        if (getenv("MIXLM_FUZZ_VERBOSE"))
            fprintf(stderr, "  rejected: %s\n", err.msg);
        return 0;
    }
    struct mx_model m;
    memset(&m, 0, sizeof m);
    int rc = ckpt_load_model(&c, &m, &err);
    if (getenv("MIXLM_FUZZ_VERBOSE"))
        fprintf(stderr, "  %s%s\n", rc == 0 ? "loaded" : "rejected: ", rc == 0 ? "" : err.msg);
    if (rc == 0) {
        size_t n = m.n_params;
        float *am = calloc(n ? n : 1, sizeof *am), *av = calloc(n ? n : 1, sizeof *av);
        if (am && av)
            (void)ckpt_load_moments(&c, &m, am, av, &err);
        free(am);
        free(av);
        decode(&m);
        model_free(&m);
    }
    ckpt_close(&c);
    return 0;
}
