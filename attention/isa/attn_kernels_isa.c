/* attn_kernels_isa.c — the mixers' row kernels (attention/attn_kernels.h) written once against
 * nn/simd.h and compiled once per SIMD level (CMake mixlm_isa_variants: -DMX_ISA_SUFFIX=avx2
 * etc. and that level's flags); exports the table MX_ISA_FN(attn_kernels). Serial: the callers
 * split rows or heads over threads. Not the dispatch or the references (attention/attn_kernels.c). */
#include "attention/attn_kernels.h"
#include "nn/simd.h"

/* Built only through mixlm_isa_variants (hence its own folder attention/isa/, outside the glob
 * of attention/ that mixlm_library compiles). */
#ifndef MX_ISA_SUFFIX
#error "attn_kernels_isa.c is compiled once per SIMD level by mixlm_isa_variants (CMake), not directly"
#endif


static float vmax(const float *x, float init, size_t n)
{
    const size_t full = n / MX_VW * MX_VW;
    mx_vf m = mx_vset1(init);
    for (size_t i = 0; i < full; i += MX_VW)
        m = mx_vmax(mx_vload(x + i), m);
    float r = mx_vhmax(m);
    for (size_t i = full; i < n; i++)
        r = x[i] > r ? x[i] : r;
    return r;
}

/* Two accumulators (two independent add chains); the tail's unused lanes are zeroed before
 * they are added (exp(0 - shift) is not 0). Fixed order: deterministic at a level. */
static float exp_sum(float *y, const float *x, float shift, size_t n)
{
    const size_t full = n / MX_VW * MX_VW, tail = n - full;
    const mx_vf vs = mx_vset1(shift);
    mx_vf s0 = mx_vzero(), s1 = mx_vzero();
    size_t i = 0;
    for (; i + 2 * MX_VW <= full; i += 2 * MX_VW) {
        mx_vf e0 = mx_vexp(mx_vload(x + i) - vs), e1 = mx_vexp(mx_vload(x + i + MX_VW) - vs);
        mx_vstore(y + i, e0);
        mx_vstore(y + i + MX_VW, e1);
        s0 += e0;
        s1 += e1;
    }
    for (; i < full; i += MX_VW) {
        mx_vf e = mx_vexp(mx_vload(x + i) - vs);
        mx_vstore(y + i, e);
        s0 += e;
    }
    if (tail) {
        mx_vf e = mx_vselect(mx_vmask_first(tail), mx_vexp(mx_vload_n(x + full, tail) - vs), mx_vzero());
        mx_vstore_n(y + full, e, tail);
        s0 += e;
    }
    return mx_vhsum(s0 + s1);
}

static void scale(float *x, float s, size_t n)
{
    const mx_vf vs = mx_vset1(s);
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vstore_k(x + i, mx_vload_k(x + i, k) * vs, k);
    }
}

/* Tail lanes load 0 from both operands and add nothing. */
static float dot(const float *a, const float *b, size_t n)
{
    mx_vf s0 = mx_vzero(), s1 = mx_vzero();
    size_t i = 0;
    for (; i + 2 * MX_VW <= n; i += 2 * MX_VW) {
        s0 = mx_vfma(mx_vload(a + i), mx_vload(b + i), s0);
        s1 = mx_vfma(mx_vload(a + i + MX_VW), mx_vload(b + i + MX_VW), s1);
    }
    for (; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        s0 = mx_vfma(mx_vload_k(a + i, k), mx_vload_k(b + i, k), s0);
    }
    return mx_vhsum(s0 + s1);
}

static void softmax_grad(float *d, const float *p, float c, float s, size_t n)
{
    const mx_vf vc = mx_vset1(c), vs = mx_vset1(s);
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vstore_k(d + i, mx_vload_k(p + i, k) * (mx_vload_k(d + i, k) - vc) * vs, k);
    }
}

static void mul_exp(float *x, const float *g, float shift, size_t n)
{
    const mx_vf vs = mx_vset1(shift);
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vstore_k(x + i, mx_vload_k(x + i, k) * mx_vexp(mx_vload_k(g + i, k) - vs), k);
    }
}

static void mul(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vstore_k(out + i, mx_vload_k(a + i, k) * mx_vload_k(b + i, k), k);
    }
}

static void elu1_forward(float *phi, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vf v = mx_vload_k(x + i, k);
        mx_vf e = mx_vexp(mx_vselect(v < 0.0f, v, mx_vzero()));
        mx_vstore_k(phi + i, mx_vselect(v > 0.0f, v + 1.0f, e), k);
    }
}

static void elu1_backward(float *dx, const float *dphi, const float *phi, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vf v = mx_vload_k(x + i, k);
        mx_vf g = mx_vselect(v > 0.0f, mx_vset1(1.0f), mx_vload_k(phi + i, k));
        mx_vstore_k(dx + i, mx_vload_k(dx + i, k) + mx_vload_k(dphi + i, k) * g, k);
    }
}

const struct attn_kernels MX_ISA_FN(attn_kernels) = {
    .isa = MX_SIMD_NAME,
    .vw = MX_VW,
    .max = vmax,
    .exp_sum = exp_sum,
    .scale = scale,
    .dot = dot,
    .softmax_grad = softmax_grad,
    .mul_exp = mul_exp,
    .mul = mul,
    .elu1_forward = elu1_forward,
    .elu1_backward = elu1_backward,
};
