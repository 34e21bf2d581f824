/* attn_kernels.c — picks the mixers' kernel table for a SIMD level (the tables attn_kernels_<level>
 * are in attention/isa/attn_kernels_isa.c, compiled once per level) and holds the naive
 * references, attn_kernels_ref. Not the SIMD kernels, and not the choice of level (nn/isa.c). */
#include "attention/attn_kernels.h"

#include "nn/fastmath.h"
#include "nn/simd.h" /* mx_fmaf */

#include <math.h>

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

static void scale_to_ref(float *dst, const float *src, float s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] * s;
}

static void add_ref(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

static void axpy_ref(float *y, float a, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static float sum_ref(const float *x, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s;
}

static float dot_exp_ref(const float *a, const float *b, const float *g, const float *h, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i] * mx_expf(g[i] - h[i]);
    return s;
}

static void exp_axpy2_ref(float *ya, float *yb, const float *a, const float *b, float c, const float *g,
                          const float *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float e = c * mx_expf(g[i] - h[i]);
        ya[i] += e * b[i];
        yb[i] += e * a[i];
    }
}

static void swish_gate_ref(float *u, const float *a, const float *nrm, const float *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        u[i] = a[i] * (1.0f / (1.0f + mx_expf(-a[i]))) * w[i] * nrm[i];
}

static void swish_gate_backward_ref(float *da, float *du, float *dw, const float *a, const float *nrm,
                                    const float *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float sg = 1.0f / (1.0f + mx_expf(-a[i])), g = du[i];
        if (dw)
            dw[i] += g * a[i] * sg * nrm[i];
        if (da) {
            da[i] = g * w[i] * nrm[i] * sg * (1.0f + a[i] * (1.0f - sg));
            du[i] = g * a[i] * sg * w[i];
        }
    }
}

static float group_norm_ref(float *n, const float *o, float eps, size_t D)
{
    float mean = 0.0f, var = 0.0f;
    for (size_t d = 0; d < D; d++)
        mean += o[d];
    mean /= (float)D;
    for (size_t d = 0; d < D; d++)
        var += (o[d] - mean) * (o[d] - mean);
    float r = 1.0f / sqrtf(var / (float)D + eps);
    for (size_t d = 0; d < D; d++)
        n[d] = (o[d] - mean) * r;
    return r;
}

static void group_norm_backward_ref(float *dout, const float *dn, const float *n, float r, size_t D)
{
    float m1 = 0.0f, m2 = 0.0f;
    for (size_t d = 0; d < D; d++) {
        m1 += dn[d];
        m2 += dn[d] * n[d];
    }
    m1 /= (float)D;
    m2 /= (float)D;
    for (size_t d = 0; d < D; d++)
        dout[d] = r * (dn[d] - m1 - n[d] * m2);
}

static void xty_row_ref(float *s, const float *x, const float *yt, size_t ldy, size_t n, int D)
{
    for (size_t i = 0; i < n; i++) {
        float a = x[0] * yt[i];
        for (int d = 1; d < D; d++)
            a = mx_fmaf(x[d], yt[(size_t)d * ldy + i], a);
        s[i] = a;
    }
}

static void py_row_ref(float *o, const float *p, const float *y, size_t n, int D)
{
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < D; d++)
            o[d] = mx_fmaf(p[i], y[i * (size_t)D + d], o[d]);
}

static void lsh_scores_ref(float *S, size_t lds, const float *const *x, const float *yt, size_t ldy, int n16,
                           int D)
{
    for (int j = 0; j < ATTN_LSH_QB; j++)
        xty_row_ref(S + (size_t)j * lds, x[j], yt, ldy, (size_t)n16, D);
}

static void lsh_py_ref(float *acc, const float *P, size_t ldp, const float *y, int n, int D)
{
    for (int j = 0; j < ATTN_LSH_QB; j++)
        py_row_ref(acc + (size_t)j * D, P + (size_t)j * ldp, y, (size_t)n, D);
}

static void lsh_xtp_ref(float *zt, size_t ldz, const float *const *x, const float *P, size_t ldp, int n16,
                        int D)
{
    for (int d = 0; d < D; d++)
        for (int i = 0; i < n16; i++) {
            float a = zt[(size_t)d * ldz + i];
            for (int j = 0; j < ATTN_LSH_QB; j++)
                a = mx_fmaf(x[j][d], P[(size_t)j * ldp + i], a);
            zt[(size_t)d * ldz + i] = a;
        }
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
    .scale_to = scale_to_ref,
    .add = add_ref,
    .axpy = axpy_ref,
    .sum = sum_ref,
    .dot_exp = dot_exp_ref,
    .exp_axpy2 = exp_axpy2_ref,
    .swish_gate = swish_gate_ref,
    .swish_gate_backward = swish_gate_backward_ref,
    .group_norm = group_norm_ref,
    .group_norm_backward = group_norm_backward_ref,
    .xty_row = xty_row_ref,
    .py_row = py_row_ref,
    .lsh_scores = lsh_scores_ref,
    .lsh_py = lsh_py_ref,
    .lsh_xtp = lsh_xtp_ref,
};
