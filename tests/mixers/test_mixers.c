/* test_mixers.c — the generic suite on one registered mixer per case (the case name is the
 * mixer's name; no argument runs them all): every one of its test specs through gradients,
 * causality (bit-for-bit unless the mixer documents round-off), prefix consistency,
 * step == forward, accumulation, determinism. CTest runs one entry per mixer (mixers.<name>);
 * test_mixer_registry.c keeps that list equal to the registry. */
#include "check.h"
#include "mixer_check.h"

#include <stdlib.h>
#include <string.h>

static int case_mixer(void)
{
    const struct mixer_ops *ops = mixer_find(check_case_name());
    if (!ops) {
        fprintf(stderr, "mixer %s is not registered\n", check_case_name());
        return 1;
    }
    int failed = 0, ran = 0;
    if (!ops->test_specs || !ops->test_specs[0]) {
        fprintf(stderr, "mixer %s lists no test_specs: every mixer must be tested\n", ops->name);
        return 1;
    }
    /* Attention-family mixers run every spec a second time with rotary positions (--pos rope). */
    for (int rope = 0; rope <= mixer_has_qk(ops); rope++)
    for (const char *const *s = ops->test_specs; *s; s++) {
        struct mc_mixer t;
        const int C = 16, H = 2, T = 20, B = 2;
        mc_rope = rope;
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
        fprintf(stderr, "%s %s%s\n", f ? "FAIL" : "ok  ", *s, rope ? " (rope)" : "");
        failed += f;
        ran++;
        mc_free(&t);
    }
    mc_rope = 0;
    fprintf(stderr, "%s: %d specs checked, %d failed\n", ops->name, ran, failed);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    int n = mixer_count();
    struct check_case *cases = calloc((size_t)n, sizeof *cases);
    if (!cases)
        return 1;
    for (int i = 0; i < n; i++)
        cases[i] = (struct check_case){mixer_at(i)->name, case_mixer};
    int rc = check_main(argc, argv, cases, (size_t)n, NULL);
    free(cases);
    return rc;
}
