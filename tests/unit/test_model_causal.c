/* test_model_causal.c — the whole decoder, built with each registered causal mixer in every
 * layer (one case per mixer), does not leak the future: changing the tokens after t leaves the
 * logits at <= t unchanged (bit for bit; to the mixer's stated FFT round-off for `longconv` and
 * `causal_fnet`). The mixer-level suite proves the same per mixer; this proves nothing around the mixers (embeddings,
 * norms, residuals, batching, the output head) reintroduces a leak. */
#include "check.h"
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One case per causal mixer (the case name), the same model around it. */
static int case_mixer(void)
{
    const struct mixer_ops *ops = mixer_find(check_case_name());
    {
        struct mx_config cfg = {.n_layer = 2, .n_head = 2, .n_embd = 16, .block_size = 24, .vocab_size = 13,
                                .bias = 1, .seed = 5};
        for (int l = 0; l < cfg.n_layer; l++)
            snprintf(cfg.attn[l], sizeof cfg.attn[l], "%s", ops->test_specs[0]);
        struct mx_model m;
        struct mx_error err;
        if (model_create(&m, &cfg, &err) != 0) {
            fprintf(stderr, "FAIL %s: %s\n", ops->name, err.msg);
            return 1;
        }
        model_init_params(&m);
        /* Larger weights than init so attention is far from uniform. */
        struct mx_rng r;
        mx_rng_seed(&r, 9);
        for (size_t k = 0; k < m.n_params; k++)
            m.params[k] += 0.05f * mx_rng_normal(&r);
        const int B = 2, T = cfg.block_size, V = cfg.vocab_size;
        if (model_plan(&m, B, T, &err) != 0) {
            fprintf(stderr, "FAIL %s: %s\n", ops->name, err.msg);
            return 1;
        }
        int32_t x[2 * 24], x2[2 * 24];
        for (int k = 0; k < B * T; k++)
            x[k] = (int32_t)mx_rng_below(&r, (uint32_t)V);
        size_t n = (size_t)B * T * V;
        float *ref = mx_xmalloc(n * sizeof(float));
        model_forward(&m, x, NULL, B, T, 0, 0);
        memcpy(ref, m.a.logits, n * sizeof(float));
        double worst = 0;
        for (int t = 0; t < T - 1; t++) {
            memcpy(x2, x, sizeof x);
            for (int b = 0; b < B; b++)
                for (int j = t + 1; j < T; j++)
                    x2[b * T + j] = (x[b * T + j] + 1 + (int32_t)mx_rng_below(&r, (uint32_t)V - 1)) % V;
            model_forward(&m, x2, NULL, B, T, 0, 0);
            for (int b = 0; b < B; b++)
                for (int s = 0; s <= t; s++)
                    for (int v = 0; v < V; v++) {
                        size_t o = ((size_t)b * T + s) * V + v;
                        double d = fabs((double)m.a.logits[o] - ref[o]);
                        if (d > worst)
                            worst = d;
                    }
        }
        /* Logits are O(1): an absolute bound is the mixer's relative round-off bound. */
        int bad = ops->test_causal_tol == 0 ? worst != 0 : worst > 10 * ops->test_causal_tol;
        fprintf(stderr, "%s %-10s max logit change at <= t: %.3g\n", bad ? "FAIL" : "ok  ", ops->name, worst);
        mx_free(ref);
        model_free(&m);
        return bad;
    }
}

int main(int argc, char **argv)
{
    struct check_case *cases = calloc((size_t)mixer_count(), sizeof *cases);
    if (!cases)
        return 1;
    size_t n = 0;
    for (int i = 0; i < mixer_count(); i++)
        if (mixer_at(i)->causal)
            cases[n++] = (struct check_case){mixer_at(i)->name, case_mixer};
    int rc = check_main(argc, argv, cases, n, NULL);
    free(cases);
    return rc;
}
