/* fuzz_spec.c — the mixer spec parser: mixer_create with a fuzzed spec string ("name" or
 * "name:k=v,...") at small dimensions, every registered mixer reachable. Input: byte 0 picks the
 * dimensions (C, H, T_max, bias); the rest is the spec (cut at the first NUL). A spec accepted
 * must round-trip: its canonical form (m.spec) builds the same mixer (same canonical form, same
 * parameter count). */
#include "fuzz.h"

#include "attention/mixer.h"
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

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
    mixer_destroy(&m);
    return 0;
}
