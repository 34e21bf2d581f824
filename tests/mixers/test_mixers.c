/* test_mixers.c — every registered mixer, every one of its test specs, through the generic
 * suite: gradients, causality (bit-for-bit unless the mixer documents round-off), prefix
 * consistency, step == forward, accumulation, determinism. Adding a mixer adds its checks. */
#include "mixer_check.h"

#include <string.h>

int main(void)
{
    int failed = 0, ran = 0;
    for (int i = 0; i < mixer_count(); i++) {
        const struct mixer_ops *ops = mixer_at(i);
        if (!ops->test_specs || !ops->test_specs[0]) {
            fprintf(stderr, "mixer %s lists no test_specs: every mixer must be tested\n", ops->name);
            failed++;
            continue;
        }
        for (const char *const *s = ops->test_specs; *s; s++) {
            struct mc_mixer t;
            const int C = 16, H = 2, T = 20, B = 2;
            if (mc_create(&t, *s, C, H, T, B, T, 42, 3.0f) != 0) {
                failed++;
                continue;
            }
            int f = 0;
            f |= mc_check_gradients(&t, 2e-2) != 0;
            if (ops->causal) {
                double ct = ops->test_causal_tol;
                f |= mc_check_causality(&t, ct) != 0;
                f |= mc_check_prefix(&t, ct > 1e-5 ? ct : 1e-5) != 0;
                f |= mc_check_step(&t, 1e-4) != 0;
            }
            f |= mc_check_accumulate(&t, 1e-6) != 0;
            f |= mc_check_determinism(&t) != 0;
            fprintf(stderr, "%s %s\n", f ? "FAIL" : "ok  ", *s);
            failed += f;
            ran++;
            mc_free(&t);
        }
    }
    fprintf(stderr, "%d mixer specs checked, %d failed\n", ran, failed);
    return failed ? 1 : 0;
}
