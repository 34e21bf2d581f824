/* fuzz_spec.c — the mixer spec parser: mixer_create with a fuzzed spec string ("name" or
 * "name:k=v,...") at small dimensions, every registered mixer reachable. Input: byte 0 picks the
 * dimensions (C, H, T_max, bias); the rest is the spec (cut at the first NUL). A spec accepted
 * must round-trip: its canonical form (m.spec) builds the same mixer (same canonical form, same
 * parameter count); then the mixer runs once, so a spec the parser accepts but the engine cannot
 * serve shows up under ASan/UBSan: init, forward and backward at B = 1 and a T in [1, T_max] taken
 * from byte 0, and step over those T positions when the mixer decodes incrementally. */
#include "fuzz.h"

#include "attention/mixer.h"
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

static float *fz_alloc(size_t n)
{
    return mx_xcalloc((n + 1) * sizeof(float)); /* aligned as the model's buffers are */
}

static void run_mixer(struct mixer *m, int T)
{
    const struct mixer_ops *o = m->ops;
    int C = m->C;
    size_t np = mixer_n_params(m), nx = (size_t)T * C;
    float *params = fz_alloc(np), *dparams = fz_alloc(np), *x = fz_alloc(nx), *y = fz_alloc(nx);
    float *dy = fz_alloc(nx), *dx = fz_alloc(nx);
    float *saved = fz_alloc(o->saved_floats(m, 1, T)), *scratch = fz_alloc(o->scratch_floats(m, 1, T));
    struct mx_rng rng;
    mx_rng_seed(&rng, 42);
    mixer_init(m, params, &rng);
    for (size_t i = 0; i < nx; i++) {
        x[i] = (float)((int)mx_rng_below(&rng, 2001) - 1000) / 1000.0f;
        dy[i] = (float)((int)mx_rng_below(&rng, 2001) - 1000) / 1000.0f;
    }
    m->scratch = scratch;
    m->step = 0;
    m->training = 1;
    o->forward(m, y, saved, x, params, 1, T);
    o->backward(m, dx, dparams, dy, saved, x, params, 1, T);
    m->training = 0;
    if (o->step && o->state_floats) {
        float *state = fz_alloc(o->state_floats(m));
        for (int t = 0; t < T; t++)
            o->step(m, y + (size_t)t * C, state, x + (size_t)t * C, params, t);
        mx_free(state);
    }
    m->scratch = NULL;
    float *bufs[] = {params, dparams, x, y, dy, dx, saved, scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        mx_free(bufs[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1024)
        return 0;
    char spec[1025];
    memcpy(spec, data + 1, size - 1);
    spec[size - 1] = 0;
    static const int dims[][3] = {{16, 2, 16}, {8, 1, 8}, {24, 4, 32}, {32, 8, 24}};
    const int *dm = dims[data[0] % 4];
    struct mixer_dims d = {.C = dm[0], .H = dm[1], .T_max = dm[2], .bias = (data[0] >> 2) & 1,
                           .layer = (data[0] >> 3) & 1, .n_layer = 2, .seed = 1234};
    struct mixer m;
    struct mx_error err = {{0}};
    memset(&m, 0, sizeof m);
    if (mixer_create(&m, spec, &d, &err) != 0)
        return 0;
    size_t np = mixer_n_params(&m);
    (void)mixer_n_tensors(&m);
    (void)mixer_flops(&m, 1, d.T_max, NULL, NULL);
    struct mixer m2;
    memset(&m2, 0, sizeof m2);
    char canon[MX_SPEC_MAX];
    snprintf(canon, sizeof canon, "%s", m.spec);
    if (mixer_create(&m2, canon, &d, &err) != 0) {
        fprintf(stderr, "canonical spec '%s' (from '%s') is rejected: %s\n", canon, spec, err.msg);
        abort();
    }
    if (strcmp(m2.spec, canon) != 0 || mixer_n_params(&m2) != np) {
        fprintf(stderr, "canonical spec '%s' rebuilds as '%s'\n", canon, m2.spec);
        abort();
    }
    mixer_destroy(&m2);
    run_mixer(&m, 1 + (data[0] >> 4) % d.T_max);
    mixer_destroy(&m);
    return 0;
}
