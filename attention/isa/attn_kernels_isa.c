/* attn_kernels_isa.c — the mixers' row kernels (attention/attn_kernels.h) written once against
 * nn/simd.h and compiled once per SIMD level (CMake mixlm_isa_variants: -DMX_ISA_SUFFIX=avx2
 * etc. and that level's flags); exports the table MX_ISA_FN(attn_kernels). Serial: the callers
 * split rows or heads over threads. Not the dispatch or the references (attention/attn_kernels.c). */
#include "attention/attn_kernels.h"
#include "nn/simd.h"

#include <math.h>

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

/* MX_VEXP_U vectors per step (mx_vexp_u: interleaved exp chains), one accumulator each; the
 * tail's unused lanes are zeroed before they are added (exp(0 - shift) is not 0). Fixed order:
 * deterministic at a level. */
_Static_assert(MX_VEXP_U == 4, "exp_sum adds its MX_VEXP_U accumulators as (0 + 1) + (2 + 3)");
static float exp_sum(float *y, const float *x, float shift, size_t n)
{
    const size_t full = n / MX_VW * MX_VW, tail = n - full;
    const mx_vf vs = mx_vset1(shift);
    mx_vf s[MX_VEXP_U] = {0};
    size_t i = 0;
    for (; i + MX_VEXP_U * MX_VW <= full; i += MX_VEXP_U * MX_VW) {
        mx_vf e[MX_VEXP_U];
#pragma GCC unroll 4
        for (int j = 0; j < MX_VEXP_U; j++)
            e[j] = mx_vload(x + i + (size_t)j * MX_VW) - vs;
        mx_vexp_u(e, e, MX_VEXP_U);
#pragma GCC unroll 4
        for (int j = 0; j < MX_VEXP_U; j++) {
            mx_vstore(y + i + (size_t)j * MX_VW, e[j]);
            s[j] += e[j];
        }
    }
    for (; i < full; i += MX_VW) {
        mx_vf e = mx_vexp(mx_vload(x + i) - vs);
        mx_vstore(y + i, e);
        s[0] += e;
    }
    if (tail) {
        mx_vf e = mx_vselect(mx_vmask_first(tail), mx_vexp(mx_vload_n(x + full, tail) - vs), mx_vzero());
        mx_vstore_n(y + full, e, tail);
        s[0] += e;
    }
    return mx_vhsum((s[0] + s[1]) + (s[2] + s[3]));
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

static void scale_to(float *dst, const float *src, float s, size_t n)
{
    const mx_vf vs = mx_vset1(s);
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vstore_k(dst + i, mx_vload_k(src + i, k) * vs, k);
    }
}

static void add(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vstore_k(y + i, mx_vload_k(y + i, k) + mx_vload_k(x + i, k), k);
    }
}

static void axpy(float *y, float a, const float *x, size_t n)
{
    const mx_vf va = mx_vset1(a);
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vstore_k(y + i, mx_vfma(va, mx_vload_k(x + i, k), mx_vload_k(y + i, k)), k);
    }
}

/* Tail lanes load 0 and add nothing. */
static float sum(const float *x, size_t n)
{
    mx_vf s0 = mx_vzero(), s1 = mx_vzero();
    size_t i = 0;
    for (; i + 2 * MX_VW <= n; i += 2 * MX_VW) {
        s0 += mx_vload(x + i);
        s1 += mx_vload(x + i + MX_VW);
    }
    for (; i < n; i += MX_VW)
        s0 += mx_vload_k(x + i, mx_vblock_len(n, i));
    return mx_vhsum(s0 + s1);
}

/* Tail lanes: a = b = 0 (g = h = 0, exp 1), so they add 0. */
static float dot_exp(const float *a, const float *b, const float *g, const float *h, size_t n)
{
    mx_vf s = mx_vzero();
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vf e = mx_vexp(mx_vload_k(g + i, k) - mx_vload_k(h + i, k));
        s = mx_vfma(mx_vload_k(a + i, k) * mx_vload_k(b + i, k), e, s);
    }
    return mx_vhsum(s);
}

static void exp_axpy2(float *ya, float *yb, const float *a, const float *b, float c, const float *g,
                      const float *h, size_t n)
{
    const mx_vf vc = mx_vset1(c);
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vf e = vc * mx_vexp(mx_vload_k(g + i, k) - mx_vload_k(h + i, k));
        mx_vstore_k(ya + i, mx_vfma(e, mx_vload_k(b + i, k), mx_vload_k(ya + i, k)), k);
        mx_vstore_k(yb + i, mx_vfma(e, mx_vload_k(a + i, k), mx_vload_k(yb + i, k)), k);
    }
}

static void swish_gate(float *u, const float *a, const float *nrm, const float *w, size_t n)
{
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vf va = mx_vload_k(a + i, k), sg = 1.0f / (1.0f + mx_vexp(-va));
        mx_vstore_k(u + i, va * sg * mx_vload_k(w + i, k) * mx_vload_k(nrm + i, k), k);
    }
}

static void swish_gate_backward(float *da, float *du, float *dw, const float *a, const float *nrm,
                                const float *w, size_t n)
{
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vf va = mx_vload_k(a + i, k), sg = 1.0f / (1.0f + mx_vexp(-va)), g = mx_vload_k(du + i, k);
        mx_vf vn = mx_vload_k(nrm + i, k);
        if (dw)
            mx_vstore_k(dw + i, mx_vload_k(dw + i, k) + g * va * sg * vn, k);
        if (da) {
            mx_vf vw = mx_vload_k(w + i, k);
            mx_vstore_k(da + i, g * vw * vn * sg * (1.0f + va * (1.0f - sg)), k);
            mx_vstore_k(du + i, g * va * sg * vw, k);
        }
    }
}

/* The tail block's lanes past D are loaded as 0; the variance masks their (0 − mean) out. */
static float group_norm(float *nr, const float *o, float eps, size_t D)
{
    mx_vf s = mx_vzero(), q = mx_vzero();
    for (size_t i = 0; i < D; i += MX_VW)
        s += mx_vload_k(o + i, mx_vblock_len(D, i));
    float mean = mx_vhsum(s) / (float)D;
    const mx_vf vm = mx_vset1(mean);
    for (size_t i = 0; i < D; i += MX_VW) {
        size_t k = mx_vblock_len(D, i);
        mx_vf d = mx_vload_k(o + i, k) - vm;
        if (k < MX_VW)
            d = mx_vselect(mx_vmask_first(k), d, mx_vzero());
        q = mx_vfma(d, d, q);
    }
    float r = 1.0f / sqrtf(mx_vhsum(q) / (float)D + eps);
    const mx_vf vr = mx_vset1(r);
    for (size_t i = 0; i < D; i += MX_VW) {
        size_t k = mx_vblock_len(D, i);
        mx_vstore_k(nr + i, (mx_vload_k(o + i, k) - vm) * vr, k);
    }
    return r;
}

/* Tail lanes load dn = n = 0: they add nothing to either sum. */
static void group_norm_backward(float *dout, const float *dn, const float *n, float r, size_t D)
{
    mx_vf s1 = mx_vzero(), s2 = mx_vzero();
    for (size_t i = 0; i < D; i += MX_VW) {
        size_t k = mx_vblock_len(D, i);
        mx_vf a = mx_vload_k(dn + i, k);
        s1 += a;
        s2 = mx_vfma(a, mx_vload_k(n + i, k), s2);
    }
    const mx_vf m1 = mx_vset1(mx_vhsum(s1) / (float)D), m2 = mx_vset1(mx_vhsum(s2) / (float)D);
    const mx_vf vr = mx_vset1(r);
    for (size_t i = 0; i < D; i += MX_VW) {
        size_t k = mx_vblock_len(D, i);
        mx_vstore_k(dout + i, vr * (mx_vload_k(dn + i, k) - m1 - mx_vload_k(n + i, k) * m2), k);
    }
}

/* ---- lsh's products -----------------------------------------------------------------------
 * Every output element is the same chain: x[0]·y, then mx_vfma over d = 1.. (scores) or over
 * the rows in order (P·y, xᵀP), so the tiles and the row kernels agree bit for bit. */

static void xty_row(float *s, const float *x, const float *yt, size_t ldy, size_t n, int D)
{
    for (size_t i = 0; i < n; i += MX_VW) {
        size_t k = mx_vblock_len(n, i);
        mx_vf a = mx_vset1(x[0]) * mx_vload_k(yt + i, k);
        for (int d = 1; d < D; d++)
            a = mx_vfma(mx_vset1(x[d]), mx_vload_k(yt + (size_t)d * ldy + i, k), a);
        mx_vstore_k(s + i, a, k);
    }
}

static void py_row(float *o, const float *p, const float *y, size_t n, int D)
{
    for (size_t d = 0; d < (size_t)D; d += MX_VW) {
        size_t k = mx_vblock_len((size_t)D, d);
        mx_vf a = mx_vload_k(o + d, k);
        for (size_t i = 0; i < n; i++)
            a = mx_vfma(mx_vset1(p[i]), mx_vload_k(y + i * (size_t)D + d, k), a);
        mx_vstore_k(o + d, a, k);
    }
}

/* Register blocks of 4 rows x LV vectors: 16 columns at AVX2 and up; at SSE and scalar (16
 * registers, 4 or 1 lanes) two vectors a row, so the 8 accumulators, the 4 broadcasts and a load
 * never spill (16 / MX_VW per row spilled 4x slower at scalar). The blocks split the 16-column
 * tiles; every element keeps its chain, so the bits do not depend on the blocking. */
#define LV (MX_VW >= 8 ? 16 / MX_VW : 2)

static void lsh_scores(float *S, size_t lds, const float *const *x, const float *yt, size_t ldy, int n16, int D)
{
    for (int i0 = 0; i0 < n16; i0 += LV * MX_VW)
        for (int j0 = 0; j0 < ATTN_LSH_QB; j0 += 4) {
            const float *x0 = x[j0], *x1 = x[j0 + 1], *x2 = x[j0 + 2], *x3 = x[j0 + 3];
            mx_vf a0[LV], a1[LV], a2[LV], a3[LV];
            const float *y = yt + i0;
#pragma GCC unroll 16
            for (int l = 0; l < LV; l++) {
                mx_vf yl = mx_vload(y + l * MX_VW);
                a0[l] = mx_vset1(x0[0]) * yl;
                a1[l] = mx_vset1(x1[0]) * yl;
                a2[l] = mx_vset1(x2[0]) * yl;
                a3[l] = mx_vset1(x3[0]) * yl;
            }
            for (int d = 1; d < D; d++) {
                mx_vf b0 = mx_vset1(x0[d]), b1 = mx_vset1(x1[d]), b2 = mx_vset1(x2[d]), b3 = mx_vset1(x3[d]);
                y = yt + (size_t)d * ldy + i0;
#pragma GCC unroll 16
                for (int l = 0; l < LV; l++) {
                    mx_vf yl = mx_vload(y + l * MX_VW);
                    mx_vkeep(&yl);
                    a0[l] = mx_vfma(b0, yl, a0[l]);
                    a1[l] = mx_vfma(b1, yl, a1[l]);
                    a2[l] = mx_vfma(b2, yl, a2[l]);
                    a3[l] = mx_vfma(b3, yl, a3[l]);
                }
            }
            float *s0 = S + (size_t)j0 * lds + i0;
#pragma GCC unroll 16
            for (int l = 0; l < LV; l++) {
                mx_vstore(s0 + l * MX_VW, a0[l]);
                mx_vstore(s0 + lds + l * MX_VW, a1[l]);
                mx_vstore(s0 + 2 * lds + l * MX_VW, a2[l]);
                mx_vstore(s0 + 3 * lds + l * MX_VW, a3[l]);
            }
        }
}

static void lsh_py(float *acc, const float *P, size_t ldp, const float *y, int n, int D)
{
    for (int d0 = 0; d0 < D; d0 += LV * MX_VW)
        for (int j0 = 0; j0 < ATTN_LSH_QB; j0 += 4) {
            mx_vf a0[LV], a1[LV], a2[LV], a3[LV];
            float *c0 = acc + (size_t)j0 * D + d0;
#pragma GCC unroll 16
            for (int l = 0; l < LV; l++) {
                a0[l] = mx_vload(c0 + l * MX_VW);
                a1[l] = mx_vload(c0 + D + l * MX_VW);
                a2[l] = mx_vload(c0 + 2 * D + l * MX_VW);
                a3[l] = mx_vload(c0 + 3 * D + l * MX_VW);
            }
            const float *p0 = P + (size_t)j0 * ldp;
            for (int i = 0; i < n; i++) {
                mx_vf b0 = mx_vset1(p0[i]), b1 = mx_vset1(p0[ldp + i]), b2 = mx_vset1(p0[2 * ldp + i]);
                mx_vf b3 = mx_vset1(p0[3 * ldp + i]);
                const float *yr = y + (size_t)i * D + d0;
#pragma GCC unroll 16
                for (int l = 0; l < LV; l++) {
                    mx_vf yl = mx_vload(yr + l * MX_VW);
                    mx_vkeep(&yl);
                    a0[l] = mx_vfma(b0, yl, a0[l]);
                    a1[l] = mx_vfma(b1, yl, a1[l]);
                    a2[l] = mx_vfma(b2, yl, a2[l]);
                    a3[l] = mx_vfma(b3, yl, a3[l]);
                }
            }
#pragma GCC unroll 16
            for (int l = 0; l < LV; l++) {
                mx_vstore(c0 + l * MX_VW, a0[l]);
                mx_vstore(c0 + D + l * MX_VW, a1[l]);
                mx_vstore(c0 + 2 * D + l * MX_VW, a2[l]);
                mx_vstore(c0 + 3 * D + l * MX_VW, a3[l]);
            }
        }
}

static void lsh_xtp(float *zt, size_t ldz, const float *const *x, const float *P, size_t ldp, int n16, int D)
{
    for (int i0 = 0; i0 < n16; i0 += LV * MX_VW)
        for (int d = 0; d < D; d++) {
            mx_vf a[LV];
            float *z = zt + (size_t)d * ldz + i0;
#pragma GCC unroll 16
            for (int l = 0; l < LV; l++)
                a[l] = mx_vload(z + l * MX_VW);
            for (int j = 0; j < ATTN_LSH_QB; j++) {
                const mx_vf b = mx_vset1(x[j][d]);
                const float *pj = P + (size_t)j * ldp + i0;
#pragma GCC unroll 16
                for (int l = 0; l < LV; l++)
                    a[l] = mx_vfma(b, mx_vload(pj + l * MX_VW), a[l]);
            }
#pragma GCC unroll 16
            for (int l = 0; l < LV; l++)
                mx_vstore(z + l * MX_VW, a[l]);
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
    .scale_to = scale_to,
    .add = add,
    .axpy = axpy,
    .sum = sum,
    .dot_exp = dot_exp,
    .exp_axpy2 = exp_axpy2,
    .swish_gate = swish_gate,
    .swish_gate_backward = swish_gate_backward,
    .group_norm = group_norm,
    .group_norm_backward = group_norm_backward,
    .xty_row = xty_row,
    .py_row = py_row,
    .lsh_scores = lsh_scores,
    .lsh_py = lsh_py,
    .lsh_xtp = lsh_xtp,
};
