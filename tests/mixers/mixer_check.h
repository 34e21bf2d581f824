/* mixer_check.h — the generic test suite every registered mixer runs (test_mixers.c)
 * and the small numeric helpers mixer-specific tests share. Each check returns 0 on pass and
 * prints what failed (value, tolerance, position) otherwise. Test-only code. */
#ifndef MIXLM_MIXER_CHECK_H
#define MIXLM_MIXER_CHECK_H

#include "attention/mixer.h"

/* A mixer built for tests: params initialised from seed (then scaled by `param_scale` so
 * softmax scores are not all near zero), scratch allocated for (B, T). */
struct mc_mixer {
    struct mixer m;
    float *params;
    size_t n_params;
    int B, T;
};
/* mc_create builds with mixer_dims.rope = mc_rope (0 unless a test sets it). */
extern int mc_rope;
int mc_create(struct mc_mixer *t, const char *spec, int C, int H, int T_max, int B, int T,
              uint64_t seed, float param_scale);
void mc_free(struct mc_mixer *t);
/* Forward on x (B,T,C) into y (B,T,C); saved allocated internally and returned (mx_free). */
float *mc_forward(struct mc_mixer *t, float *y, const float *x, int T);

void mc_fill_normal(float *x, size_t n, uint64_t seed, float std);
/* max |a-b| / max(max|b|, floor) */
double mc_rel_err(const float *a, const float *b, size_t n, double floor);

/* The generic checks (T <= t->T):
 * gradients: central differences in x and in every trainable parameter (sampled), of the
 *   projection loss L = Σ y·r with fixed random r; relative tolerance `tol`.
 * causality: perturbing x at positions > t0 leaves y[:, :t0+1] bit-for-bit unchanged
 *   (tol_bits = 0) or within `tol` (FFT mixers document their round-off).
 * prefix: forward on the first T' rows equals the first T' rows of the full forward.
 * step: step() from t = 0 reproduces the forward rows (skipped when ops->step is NULL).
 * accumulate: running backward twice gives exactly twice the gradients.
 * determinism: two forwards and backwards give bit-identical outputs and gradients. */
int mc_check_gradients(struct mc_mixer *t, double tol);
int mc_check_causality(struct mc_mixer *t, double tol);
int mc_check_prefix(struct mc_mixer *t, double tol);
int mc_check_step(struct mc_mixer *t, double tol);
int mc_check_accumulate(struct mc_mixer *t, double tol);
int mc_check_determinism(struct mc_mixer *t);

/* Run a mixer against another on the same parameters (e.g. window w>=T vs dense): forward and
 * all gradients (x and params) within tol. Both must have the same tensor layout. */
int mc_check_equivalent(const char *spec_a, const char *spec_b, int C, int H, int B, int T,
                        uint64_t seed, double tol);

#endif
