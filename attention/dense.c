/* dense.c — exact causal softmax attention ("dense"), the baseline every mixer is judged by.
 * Training path: the attention core; generation: a KV cache of all past positions.
 * Not approximate in any way; cost O(T^2) time, O(T) memory. */
#include "attention/attn_common.h"

#include <math.h>
#include <string.h>

static int dense_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    if (mixer_kv_parse(&kv, "dense", args, err) != 0 || mixer_kv_finish(&kv, "dense", "", err) != 0)
        return -1;
    snprintf(m->spec, sizeof m->spec, "dense");
    return 0;
}

/* KV cache: K (H,T_max,D) then V (H,T_max,D), then a T_max row of scores. */
static size_t dense_state_floats(const struct mixer *m)
{
    return 2 * (size_t)m->H * m->T_max * m->D + (size_t)m->T_max;
}

static void dense_step(const struct mixer *m, float *o_t, float *state, const float *q_t,
                       const float *k_t, const float *v_t, int t)
{
    int H = m->H, D = m->D, Tm = m->T_max;
    float *K = state, *V = K + (size_t)H * Tm * D, *s = V + (size_t)H * Tm * D;
    const float scale = 1.0f / sqrtf((float)D);
    for (int h = 0; h < H; h++) {
        float *Kh = K + (size_t)h * Tm * D, *Vh = V + (size_t)h * Tm * D;
        memcpy(Kh + (size_t)t * D, k_t + (size_t)h * D, D * sizeof(float));
        memcpy(Vh + (size_t)t * D, v_t + (size_t)h * D, D * sizeof(float));
        const float *q = q_t + (size_t)h * D;
        float mx = -INFINITY;
        for (int j = 0; j <= t; j++) {
            float d = 0;
            for (int c = 0; c < D; c++)
                d += q[c] * Kh[(size_t)j * D + c];
            s[j] = d * scale;
            if (s[j] > mx)
                mx = s[j];
        }
        float sum = 0;
        for (int j = 0; j <= t; j++) {
            s[j] = expf(s[j] - mx);
            sum += s[j];
        }
        float *o = o_t + (size_t)h * D;
        memset(o, 0, D * sizeof(float));
        for (int j = 0; j <= t; j++) {
            float p = s[j] / sum;
            for (int c = 0; c < D; c++)
                o[c] += p * Vh[(size_t)j * D + c];
        }
    }
}

/* Until the tiled kernel lands, the training path is the row-wise reference. */
static const struct attn_core dense_core = {
    .saved_floats = attn_dense_ref_saved,
    .forward = attn_dense_ref_forward,
    .backward = attn_dense_ref_backward,
    .state_floats = dense_state_floats,
    .step = dense_step,
};

static const char *const dense_tests[] = {"dense", NULL};

const struct mixer_ops attn_dense_ops = {
    .name = "dense",
    .summary = "dense — exact causal softmax attention (no options); O(T^2) time, O(T) memory",
    .causal = 1,
    .test_specs = dense_tests,
    .parse = dense_parse,
    .tensors = attn_tensors,
    .init = attn_init,
    .saved_floats = attn_saved_floats,
    .scratch_floats = attn_scratch_floats,
    .forward = attn_forward,
    .backward = attn_backward,
    .state_floats = attn_state_floats,
    .step = attn_step,
    .core = &dense_core,
};
