/* attn_kernels.c — picks the mixers' kernel table for a SIMD level (the tables attn_kernels_<level>
 * are in attention/isa/attn_kernels_isa.c, compiled once per level) and holds the naive
 * references, attn_kernels_ref. Not the SIMD kernels, and not the choice of level (nn/isa.c). */
#include "attention/attn_kernels.h"

#include "nn/fastmath.h"

#define X(e, s) extern const struct attn_kernels MX_ISA_CAT(attn_kernels, s);
MX_ISA_FOREACH(X)
#undef X

const struct attn_kernels *attn_kernels_at(enum mx_isa isa)
{
    if (!mx_isa_supported(isa))
        return NULL;
    switch (isa) {
#define X(e, s)                                                                                              \
    case e:                                                                                                  \
        return &MX_ISA_CAT(attn_kernels, s);
        MX_ISA_FOREACH(X)
#undef X
    default:
        return NULL;
    }
}

const struct attn_kernels *attn_kernels(void)
{
    static const struct attn_kernels *k; /* set once; every thread computes the same pointer */
    const struct attn_kernels *p = __atomic_load_n(&k, __ATOMIC_ACQUIRE);
    if (!p) {
        p = attn_kernels_at(mx_isa());
        __atomic_store_n(&k, p, __ATOMIC_RELEASE);
    }
    return p;
}

/* ---- naive references ------------------------------------------------------------------- */

static float max_ref(const float *x, float init, size_t n)
{
    float m = init;
    for (size_t i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static float exp_sum_ref(float *y, const float *x, float shift, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) {
        y[i] = mx_expf(x[i] - shift);
        s += y[i];
    }
    return s;
}

static void scale_ref(float *x, float s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
}

static float dot_ref(const float *a, const float *b, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void softmax_grad_ref(float *d, const float *p, float c, float s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = p[i] * (d[i] - c) * s;
}

static void mul_exp_ref(float *x, const float *g, float shift, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= mx_expf(g[i] - shift);
}

static void mul_ref(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] * b[i];
}

static void elu1_forward_ref(float *phi, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) /* exp of min(x, 0): never overflows (x > 0 takes x + 1) */
        phi[i] = x[i] > 0.0f ? x[i] + 1.0f : mx_expf(x[i] < 0.0f ? x[i] : 0.0f);
}

static void elu1_backward_ref(float *dx, const float *dphi, const float *phi, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) /* φ'(x) = 1 for x > 0, exp(x) = φ(x) otherwise */
        dx[i] += dphi[i] * (x[i] > 0.0f ? 1.0f : phi[i]);
}

const struct attn_kernels attn_kernels_ref = {
    .isa = "ref",
    .vw = 1,
    .max = max_ref,
    .exp_sum = exp_sum_ref,
    .scale = scale_ref,
    .dot = dot_ref,
    .softmax_grad = softmax_grad_ref,
    .mul_exp = mul_exp_ref,
    .mul = mul_ref,
    .elu1_forward = elu1_forward_ref,
    .elu1_backward = elu1_backward_ref,
};
