/* shift.c — "shift": y_t = x_{t-1} (y_0 = 0), the parameter-free causal token shift: the floor
 * any real mixer must beat, and the smallest complete mixer (README's example). Not attention. */
#include "attention/mixer.h"

#include <string.h>

static int shift_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv; /* no keys: any key is an error naming the accepted ones (none) */
    if (mixer_kv_parse(&kv, "shift", args, err) || mixer_kv_finish(&kv, "shift", "", err))
        return -1;
    snprintf(m->spec, sizeof m->spec, "shift");
    return 0;
}
static int shift_tensors(const struct mixer *m, struct mx_param *out) { (void)m, (void)out; return 0; }
static size_t shift_none(const struct mixer *m, int B, int T) { (void)m, (void)B, (void)T; return 0; }
/* y, x (B,T,C): y overwritten. */
static void shift_forward(const struct mixer *m, float *y, float *saved, const float *x,
                          const float *params, int B, int T)
{
    size_t C = (size_t)m->C, n = (size_t)(T - 1) * C;
    for (size_t b = 0; b < (size_t)B; b++) {
        memset(y + b * T * C, 0, C * sizeof(float));
        memcpy(y + b * T * C + C, x + b * T * C, n * sizeof(float));
    }
    (void)saved, (void)params;
}
/* dx (B,T,C) += (every backward accumulates); dy (B,T,C). */
static void shift_backward(const struct mixer *m, float *dx, float *dparams, const float *dy,
                           const float *saved, const float *x, const float *params, int B, int T)
{
    size_t C = (size_t)m->C, n = (size_t)(T - 1) * C;
    for (size_t b = 0; b < (size_t)B; b++)
        for (size_t i = 0; i < n; i++)
            dx[b * T * C + i] += dy[b * T * C + C + i];
    (void)dparams, (void)saved, (void)x, (void)params;
}
static size_t shift_state(const struct mixer *m) { return (size_t)m->C; } /* the last x_t */
static void shift_step(const struct mixer *m, float *y_t, float *state, const float *x_t,
                       const float *params, int t)
{
    memcpy(y_t, state, (size_t)m->C * sizeof(float)); /* the caller zeroes state before t = 0 */
    memcpy(state, x_t, (size_t)m->C * sizeof(float));
    (void)params, (void)t;
}
static void shift_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd)
{
    *fwd = 0, *bwd = (double)B * T * m->C; /* a copy forward, one add per element backward */
}
static const char *const shift_tests[] = {"shift", NULL}; /* specs the generic suite runs */

const struct mixer_ops shift_ops = {
    .name = "shift", .summary = "shift — y_t = x_{t-1}, no options; the no-attention floor",
    .causal = 1, .test_specs = shift_tests, .parse = shift_parse, .tensors = shift_tensors,
    .saved_floats = shift_none, .scratch_floats = shift_none, .forward = shift_forward,
    .backward = shift_backward, .state_floats = shift_state, .step = shift_step,
    .flops = shift_flops,
};
