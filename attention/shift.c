/* shift.c — "shift": y_t = g ⊙ x_{t-1} (y_0 = 0), the causal token shift: the floor any real
 * mixer must beat, and the smallest complete mixer (README's example). Not attention.
 *
 * WHY the gain (gain=1, the default): g (C) is learned and starts at 0 (ReZero), as
 * causal_fnet's. The decoder is pre-LN: the mixer sees LN(x), entries of size ~1, and its
 * output is added to a residual stream that starts at 0.02 — a bare shift (gain=0) adds the
 * previous token's normalised embedding at full scale to every position, a branch the model
 * cannot turn down. Every other mixer ends in a learned projection (initialised small) and can.
 * Measured (bench/RESULTS.md, 2026-12-02 session 5, enwik8, ctx 256, 300 equal steps): the bare
 * shift 4.553 bits/byte, with a fixed gain 0.1 3.891, dense 3.712 — the bare shift was a floor
 * lowered by its scale, not by what it mixes. gain=0 keeps the bare map (checkpoints that stored
 * the plain name "shift" hold it: model/checkpoint.c reads them as shift:gain=0). */
#include "attention/mixer.h"

#include <string.h>

struct shift_cfg {
    int gain; /* 1: y = g ⊙ x_{t-1}, g (C) learned from 0; 0: y = x_{t-1} */
};

static int shift_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    long gain;
    if (mixer_kv_parse(&kv, "shift", args, err) != 0 || mixer_kv_int(&kv, "shift", "gain", 1, 0, 1, &gain, err) != 0 ||
        mixer_kv_finish(&kv, "shift", "gain (1: a learned per-channel output gain from 0; 0: none)", err) != 0)
        return -1;
    struct shift_cfg *cfg = mx_xcalloc(sizeof *cfg);
    cfg->gain = (int)gain;
    m->cfg = cfg;
    snprintf(m->spec, sizeof m->spec, "shift:gain=%d", cfg->gain);
    return 0;
}

static void shift_destroy(struct mixer *m)
{
    mx_free(m->cfg);
    m->cfg = NULL;
}

/* The gain g (C): not weight-decayed (decay would pull it back to "no mixer"). */
static int shift_tensors(const struct mixer *m, struct mx_param *out)
{
    const struct shift_cfg *cfg = m->cfg;
    int n = 0;
    size_t at = 0;
    if (cfg->gain)
        mx_param_add(out, &n, &at, "gain", 1, m->C, 0, 0, 1);
    return n;
}

static void shift_init(const struct mixer *m, float *params, struct mx_rng *rng)
{
    const struct shift_cfg *cfg = m->cfg;
    (void)rng;
    if (cfg->gain)
        memset(params, 0, sizeof(float) * (size_t)m->C);
}

static size_t shift_none(const struct mixer *m, int B, int T) { (void)m, (void)B, (void)T; return 0; }

/* y, x (B,T,C): y overwritten. */
static void shift_forward(const struct mixer *m, float *y, float *saved, const float *x,
                          const float *params, int B, int T)
{
    const struct shift_cfg *cfg = m->cfg;
    size_t C = (size_t)m->C, n = (size_t)(T - 1) * C;
    for (size_t b = 0; b < (size_t)B; b++) {
        float *yb = y + b * T * C;
        const float *xb = x + b * T * C;
        memset(yb, 0, C * sizeof(float));
        if (!cfg->gain) {
            memcpy(yb + C, xb, n * sizeof(float));
            continue;
        }
        for (size_t t = 0; t + 1 < (size_t)T; t++)
            for (size_t l = 0; l < C; l++)
                yb[(t + 1) * C + l] = params[l] * xb[t * C + l];
    }
    (void)saved;
}

/* dx (B,T,C) += (every backward accumulates); dparams (C) += Σ dy_t ⊙ x_{t-1}; dy (B,T,C). */
static void shift_backward(const struct mixer *m, float *dx, float *dparams, const float *dy,
                           const float *saved, const float *x, const float *params, int B, int T)
{
    const struct shift_cfg *cfg = m->cfg;
    size_t C = (size_t)m->C, n = (size_t)(T - 1) * C;
    for (size_t b = 0; b < (size_t)B; b++) {
        float *dxb = dx + b * T * C;
        const float *dyb = dy + b * T * C + C, *xb = x + b * T * C;
        if (!cfg->gain) {
            for (size_t i = 0; i < n; i++)
                dxb[i] += dyb[i];
            continue;
        }
        for (size_t t = 0; t + 1 < (size_t)T; t++) /* in a fixed order: bitwise reproducible */
            for (size_t l = 0; l < C; l++) {
                size_t i = t * C + l;
                dxb[i] += params[l] * dyb[i];
                dparams[l] += dyb[i] * xb[i];
            }
    }
    (void)saved;
}

static size_t shift_state(const struct mixer *m) { return (size_t)m->C; } /* the last x_t */
static void shift_step(const struct mixer *m, float *y_t, float *state, const float *x_t,
                       const float *params, int t)
{
    const struct shift_cfg *cfg = m->cfg;
    size_t C = (size_t)m->C;
    for (size_t l = 0; l < C; l++) /* the caller zeroes state before t = 0 */
        y_t[l] = cfg->gain ? params[l] * state[l] : state[l];
    memcpy(state, x_t, C * sizeof(float));
    (void)t;
}

static void shift_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd)
{
    const struct shift_cfg *cfg = m->cfg;
    double e = (double)B * T * m->C;
    /* bare: a copy forward, one add per element backward; with the gain one multiply forward,
     * two multiply-adds backward (dx and dg) */
    *fwd = cfg->gain ? e : 0, *bwd = cfg->gain ? 4 * e : e;
}

static const char *const shift_tests[] = {"shift", "shift:gain=0", NULL}; /* specs the generic suite runs */

const struct mixer_ops shift_ops = {
    .name = "shift",
    .summary = "shift:gain=1 — y_t = g ⊙ x_{t-1}, g a learned per-channel gain starting at 0 (gain=0: the bare "
               "copy y_t = x_{t-1}); the no-attention floor",
    .causal = 1, .test_specs = shift_tests, .parse = shift_parse, .destroy = shift_destroy,
    .tensors = shift_tensors, .init = shift_init, .saved_floats = shift_none, .scratch_floats = shift_none,
    .forward = shift_forward, .backward = shift_backward, .state_floats = shift_state, .step = shift_step,
    .flops = shift_flops,
};
