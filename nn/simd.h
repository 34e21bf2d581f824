/* simd.h — one float vector type, mx_vf, whose width follows the translation unit's target:
 * 16 lanes (AVX-512F), 8 (AVX2 + FMA), 4 (NEON or SSE2), 1 (scalar, or MX_SIMD_SCALAR). Plain
 * operators (GCC vector extension) plus FMA, select, tail loads/stores, reductions, sqrt, exp,
 * tanh. The only ISA tests outside nn/isa.{h,c}. Needs -ffp-contract=off (GCC's ISO C default;
 * CMake sets it for clang too): FMA only via mx_vfma. Hot kernels are compiled once per level.
 * Not a general SIMD library: floats only, no gathers, one fixed shuffle (mx_transpose4x4). */
#ifndef MIXLM_SIMD_H
#define MIXLM_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(MX_SIMD_SCALAR)
#define MX_VW 1
#define MX_SIMD_NAME "scalar"
#elif defined(__AVX512F__)
#include <immintrin.h>
#define MX_VW 16
#define MX_SIMD_NAME "avx512"
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define MX_VW 8
#define MX_SIMD_NAME "avx2"
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#define MX_VW 4
#define MX_SIMD_NAME "neon"
#elif defined(__SSE2__)
#include <emmintrin.h>
#define MX_VW 4
#define MX_SIMD_NAME "sse"
#else
#define MX_VW 1
#define MX_SIMD_NAME "scalar"
#endif

/* Vector registers of the target (32 on AVX-512 and NEON, 16 on AVX2 and SSE): kernels size
 * their register blocks by it, so accumulators never spill. */
#if MX_VW == 16 || (MX_VW == 4 && defined(__ARM_NEON))
#define MX_VREGS 32
#else
#define MX_VREGS 16
#endif

/* Set by the per-ISA build (mixlm_isa_variants in CMake): a variant whose flags leaked a
 * wider (or narrower) vector than its name promises must not compile. */
#if defined(MX_ISA_EXPECT_VW) && MX_ISA_EXPECT_VW != MX_VW
#error "simd.h: this ISA variant's compile flags give a different vector width than its level"
#endif

typedef float mx_vf __attribute__((vector_size(4 * MX_VW)));
typedef int32_t mx_vi __attribute__((vector_size(4 * MX_VW))); /* lane masks: -1 true, 0 false */
typedef uint32_t mx_vu __attribute__((vector_size(4 * MX_VW))); /* float bits, wrapping arithmetic */

/* Scalar a*b+c, fused where this translation unit's target has FMA, else two roundings. WHY:
 * fmaf() in code built without FMA (the portable build) is a libm call per element: LSH's
 * tiles, written with fmaf, ran 12x slower there. For scalar loops outside the per-ISA files. */
static inline float mx_fmaf(float a, float b, float c)
{
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
    return __builtin_fmaf(a, b, c);
#else
    return a * b + c;
#endif
}

/* A broadcast. WHY not (mx_vf){0} + a: that is an add (0 + -0 is +0, so it cannot be
 * dropped) in front of every broadcast, and the broadcast then comes from a register instead
 * of straight from memory: measured 15% of the attention tile kernels on AVX2. */
static inline mx_vf mx_vset1(float a)
{
#if MX_VW == 16
    return (mx_vf)_mm512_set1_ps(a);
#elif MX_VW == 8
    return (mx_vf)_mm256_set1_ps(a);
#elif MX_VW == 4 && defined(__ARM_NEON)
    return (mx_vf)vdupq_n_f32(a);
#elif MX_VW == 4
    return (mx_vf)_mm_set1_ps(a);
#else
    return (mx_vf){a};
#endif
}

/* Keep v in a register: an empty asm the compiler must assume reads and writes it. WHY: in a
 * register-blocked kernel GCC folds each load of a shared operand into every FMA that uses it
 * (one load per FMA instead of one per block row), and the kernel becomes load-bound. */
static inline void mx_vkeep(mx_vf *v)
{
#if MX_VW == 1
    (void)v;
#elif defined(__ARM_NEON)
    __asm__("" : "+w"(*v));
#else
    __asm__("" : "+x"(*v));
#endif
}
static inline mx_vf mx_vzero(void)
{
    return (mx_vf){0};
}
/* Unaligned load/store of MX_VW floats. */
static inline mx_vf mx_vload(const float *p)
{
    mx_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void mx_vstore(float *p, mx_vf v)
{
    memcpy(p, &v, sizeof v);
}
/* Mask with the first n lanes true (0 <= n <= MX_VW). */
static inline mx_vi mx_vmask_first(size_t n)
{
    mx_vi iota;
    for (int i = 0; i < MX_VW; i++)
        iota[i] = i;
    return iota < (mx_vi){0} + (int32_t)n;
}
/* The first n lanes (0 <= n <= MX_VW) from p, the rest 0; reads only n floats. WHY the masked
 * instructions on AVX2/AVX-512: a memcpy of a variable length is a call and a store-forwarding
 * stall (~30 cycles), once per row in the softmax of a vocabulary of 65. */
static inline mx_vf mx_vload_n(const float *p, size_t n)
{
#if MX_VW == 16
    return (mx_vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
#elif MX_VW == 8
    return (mx_vf)_mm256_maskload_ps(p, (__m256i)mx_vmask_first(n));
#else
    mx_vf v = {0};
    memcpy(&v, p, n * sizeof(float));
    return v;
#endif
}
/* Writes only the first n lanes (0 <= n <= MX_VW). */
static inline void mx_vstore_n(float *p, mx_vf v, size_t n)
{
#if MX_VW == 16
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), (__m512)v);
#elif MX_VW == 8
    _mm256_maskstore_ps(p, (__m256i)mx_vmask_first(n), (__m256)v);
#else
    memcpy(p, &v, n * sizeof(float));
#endif
}
/* A store that bypasses the caches (non-temporal: no read-for-ownership of the line) where the
 * target has one, p aligned to 4 * MX_VW bytes; elsewhere an ordinary store (MX_VSTREAM 0).
 * mx_vstream_fence orders them before later stores. For the benchmark's copy rate (a copy
 * that moves exactly 2 bytes per byte copied), not for kernels whose output is read next. */
#if MX_VW >= 4 && !defined(__ARM_NEON)
#define MX_VSTREAM 1
#else
#define MX_VSTREAM 0
#endif
static inline void mx_vstream(float *p, mx_vf v)
{
#if MX_VW == 16
    _mm512_stream_ps(p, (__m512)v);
#elif MX_VW == 8
    _mm256_stream_ps(p, (__m256)v);
#elif MX_VSTREAM
    _mm_stream_ps(p, (__m128)v);
#else
    mx_vstore(p, v);
#endif
}
static inline void mx_vstream_fence(void)
{
#if MX_VSTREAM
    _mm_sfence();
#endif
}

/* dst[j * ldd + i] = src[i * lds + j] for a 4x4 block: four rows loaded, eight shuffles, four
 * columns stored (128-bit vectors on every level with MX_VW >= 4; plain loads and stores at the
 * scalar level). The one shuffle in this layer. WHY: the attention engine's transpose of each
 * head's keys and values read one float per 256-byte row (a strided gather); in 4x4 blocks it
 * reads whole rows: 0.48-0.57 ms against 0.58-0.87 for 48 heads of 256 x 64, one thread
 * (2026-12-03, AVX-512 Xeon, every level's flags), close to the rate of a plain copy there. */
static inline void mx_transpose4x4(float *dst, size_t ldd, const float *src, size_t lds)
{
#if MX_VW >= 4
    typedef float v4 __attribute__((vector_size(16)));
    v4 r0, r1, r2, r3;
    memcpy(&r0, src, sizeof r0);
    memcpy(&r1, src + lds, sizeof r1);
    memcpy(&r2, src + 2 * lds, sizeof r2);
    memcpy(&r3, src + 3 * lds, sizeof r3);
#if defined(__clang__)
#define MX_SHUF4(a, b, i, j, k, l) __builtin_shufflevector(a, b, i, j, k, l)
#else
    typedef int32_t v4i __attribute__((vector_size(16)));
#define MX_SHUF4(a, b, i, j, k, l) __builtin_shuffle(a, b, (v4i){i, j, k, l})
#endif
    v4 t0 = MX_SHUF4(r0, r1, 0, 4, 1, 5), t1 = MX_SHUF4(r0, r1, 2, 6, 3, 7);
    v4 t2 = MX_SHUF4(r2, r3, 0, 4, 1, 5), t3 = MX_SHUF4(r2, r3, 2, 6, 3, 7);
    v4 c0 = MX_SHUF4(t0, t2, 0, 1, 4, 5), c1 = MX_SHUF4(t0, t2, 2, 3, 6, 7);
    v4 c2 = MX_SHUF4(t1, t3, 0, 1, 4, 5), c3 = MX_SHUF4(t1, t3, 2, 3, 6, 7);
#undef MX_SHUF4
    memcpy(dst, &c0, sizeof c0);
    memcpy(dst + ldd, &c1, sizeof c1);
    memcpy(dst + 2 * ldd, &c2, sizeof c2);
    memcpy(dst + 3 * ldd, &c3, sizeof c3);
#else
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            dst[(size_t)j * ldd + i] = src[(size_t)i * lds + j];
#endif
}
/* Elementwise loops over n floats in blocks of MX_VW, the last one possibly partial: the length
 * of the block at i, and its load/store (whole vectors except at the tail). */
static inline size_t mx_vblock_len(size_t n, size_t i)
{
    return n - i < MX_VW ? n - i : MX_VW;
}
static inline mx_vf mx_vload_k(const float *p, size_t k)
{
    return k == MX_VW ? mx_vload(p) : mx_vload_n(p, k);
}
static inline void mx_vstore_k(float *p, mx_vf v, size_t k)
{
    if (k == MX_VW)
        mx_vstore(p, v);
    else
        mx_vstore_n(p, v, k);
}
/* Lane-wise m ? a : b (m from a comparison: every lane all ones or all zeros). */
static inline mx_vf mx_vselect(mx_vi m, mx_vf a, mx_vf b)
{
    return (mx_vf)((m & (mx_vi)a) | (~m & (mx_vi)b));
}
/* a > b ? a : b and a < b ? a : b lane-wise: b when either is NaN (as x86 maxps/minps). */
/* x86's maxps/minps have exactly these semantics (one instruction instead of compare + blend);
 * NEON's vmaxq propagates NaN instead, so other targets use the select. */
static inline mx_vf mx_vmax(mx_vf a, mx_vf b)
{
#if MX_VW == 16
    return (mx_vf)_mm512_max_ps((__m512)a, (__m512)b);
#elif MX_VW == 8
    return (mx_vf)_mm256_max_ps((__m256)a, (__m256)b);
#elif MX_VW == 4 && defined(__SSE2__) && !defined(__ARM_NEON)
    return (mx_vf)_mm_max_ps((__m128)a, (__m128)b);
#else
    return mx_vselect(a > b, a, b);
#endif
}
static inline mx_vf mx_vmin(mx_vf a, mx_vf b)
{
#if MX_VW == 16
    return (mx_vf)_mm512_min_ps((__m512)a, (__m512)b);
#elif MX_VW == 8
    return (mx_vf)_mm256_min_ps((__m256)a, (__m256)b);
#elif MX_VW == 4 && defined(__SSE2__) && !defined(__ARM_NEON)
    return (mx_vf)_mm_min_ps((__m128)a, (__m128)b);
#else
    return mx_vselect(a < b, a, b);
#endif
}

/* |a| lane-wise: the sign bit cleared (|NaN| is NaN, |-0| is +0). */
static inline mx_vf mx_vabs(mx_vf a)
{
    return (mx_vf)((mx_vu)a & 0x7fffffffu);
}

/* a * b + c with one rounding where the target has FMA (ISO C11 never contracts a*b+c on its
 * own); SSE and scalar round twice. Results therefore differ between levels in the last bit:
 * use it where speed matters more than cross-ISA bit equality (reductions), not in mx_vexp. */
static inline mx_vf mx_vfma(mx_vf a, mx_vf b, mx_vf c)
{
#if MX_VW == 16
    return (mx_vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif MX_VW == 8
    return (mx_vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#elif MX_VW == 4 && defined(__ARM_NEON)
    return (mx_vf)vfmaq_f32((float32x4_t)c, (float32x4_t)a, (float32x4_t)b);
#else
    return a * b + c;
#endif
}

/* Correctly rounded square root per lane (IEEE, the same bits as sqrtf at every level). */
static inline mx_vf mx_vsqrt(mx_vf a)
{
#if MX_VW == 16
    return (mx_vf)_mm512_sqrt_ps((__m512)a);
#elif MX_VW == 8
    return (mx_vf)_mm256_sqrt_ps((__m256)a);
#elif MX_VW == 4 && defined(__ARM_NEON)
    return (mx_vf)vsqrtq_f32((float32x4_t)a);
#elif MX_VW == 4
    return (mx_vf)_mm_sqrt_ps((__m128)a);
#else
    return (mx_vf){__builtin_sqrtf(a[0])};
#endif
}

/* Horizontal sum in a fixed pairwise order (lane i with lane i + W/2, then halves again): the
 * same value on every call, so per-row reductions are deterministic at a given level. On x86 the
 * halving is done with shuffles in that very order (the same bits as the plain loop, which
 * GCC compiles to stores and scalar reloads: ~20 cycles a row in the softmax of a small
 * vocabulary). */
static inline float mx_vhsum(mx_vf v)
{
#if MX_VW == 16
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256((__m512)v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd((__m512)v), 1)));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
#elif MX_VW == 8
    __m128 q = _mm_add_ps(_mm256_castps256_ps128((__m256)v), _mm256_extractf128_ps((__m256)v, 1));
#elif MX_VW == 4 && defined(__SSE2__) && !defined(__ARM_NEON)
    __m128 q = (__m128)v;
#endif
#if MX_VW >= 4 && !defined(__ARM_NEON)
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
    return _mm_cvtss_f32(q);
#else
    float a[MX_VW];
    memcpy(a, &v, sizeof a);
    for (int w = MX_VW / 2; w > 0; w /= 2)
        for (int i = 0; i < w; i++)
            a[i] += a[i + w];
    return a[0];
#endif
}
/* Horizontal max (a NaN lane may or may not propagate; callers check finiteness elsewhere). */
static inline float mx_vhmax(mx_vf v)
{
#if MX_VW == 16
    __m256 h = _mm256_max_ps(_mm512_castps512_ps256((__m512)v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd((__m512)v), 1)));
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
#elif MX_VW == 8
    __m128 q = _mm_max_ps(_mm256_castps256_ps128((__m256)v), _mm256_extractf128_ps((__m256)v, 1));
#elif MX_VW == 4 && defined(__SSE2__) && !defined(__ARM_NEON)
    __m128 q = (__m128)v;
#endif
#if MX_VW >= 4 && !defined(__ARM_NEON)
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_shuffle_ps(q, q, 1));
    return _mm_cvtss_f32(q);
#else
    float a[MX_VW];
    memcpy(a, &v, sizeof a);
    for (int w = MX_VW / 2; w > 0; w /= 2)
        for (int i = 0; i < w; i++)
            a[i] = a[i] > a[i + w] ? a[i] : a[i + w];
    return a[0];
#endif
}

/* exp(x) lane-wise: the algorithm of mx_expf (nn/fastmath.h), operation for operation and
 * WITHOUT fused multiply-adds, so every lane is bitwise equal to mx_expf(x) at every level
 * (for kernels that promise the same bits on AVX-512, AVX2, SSE, NEON and scalar; GELU used it
 * until session 9 and now takes mx_vexpn_u, see gelu_u in nn/isa/kernels_isa.c).
 * Cephes: n = round(x / ln2), r = x - n ln2 with ln2 split in two constants so r is exact,
 * |r| <= ln2/2, a degree-6 polynomial p = e^r in [0.70, 1.42], then 2^n. mx_expf multiplies
 * by two factors 2^h 2^(n-h); here n is added to p's exponent field. Both are exact (no
 * rounding) whenever the result is a normal float, and it is for every x that is not replaced
 * afterwards: x >= -87.33 gives r > 0, p > 1, n >= -126 (biased exponent >= 1), and
 * x <= 88.72 gives n <= 128 with r < 0, p < 1 (biased exponent <= 254). So the bits are the same.
 * Accuracy (measured, tests/test_simd.c): within 2 ulp of exp for x in [-87.33, 88.72]; below
 * -87.33 gives 0, above 88.72 +inf, NaN stays NaN.
 * mx_vexp_u: u (1..MX_VEXP_U) vectors at once, each step applied to all u before the next.
 * WHY: one exp is a chain of ~25 dependent operations; a loop of single exps fills the
 * out-of-order window with one chain and runs at its latency (GELU: ~40 cycles per vector on
 * Zen 3), while u interleaved chains overlap. The same operations per lane: the same bits. */
#define MX_VEXP_U 4
static inline __attribute__((always_inline)) void mx_vexp_u(mx_vf *y, const mx_vf *x, int u)
{
    /* always_inline: u must be a constant where it is expanded (GCC would otherwise call it).
     * Zero-initialised only to quiet GCC's maybe-uninitialized (lanes j >= u are never read). */
    mx_vf v[MX_VEXP_U] = {0}, n[MX_VEXP_U] = {0}, r[MX_VEXP_U] = {0}, p[MX_VEXP_U] = {0};
    mx_vi ni[MX_VEXP_U] = {0};
    /* Clamp first: NaN compares false and lands on -87.5, so the float-to-int below never
     * sees a NaN or an out-of-range value. */
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        v[j] = mx_vmin(mx_vmax(x[j], mx_vset1(-87.5f)), mx_vset1(88.75f));
    /* round to integer by adding and removing 1.5·2^23 (exact in the default rounding mode) */
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        n[j] = (v[j] * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        r[j] = v[j] - n[j] * 0.693359375f;
#pragma GCC unroll 4
    for (int j = 0; j < u; j++) {
        r[j] = r[j] - n[j] * -2.12194440e-4f;
        ni[j] = __builtin_convertvector(n[j], mx_vi);
        p[j] = mx_vset1(1.9875691500e-4f);
    }
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        p[j] = p[j] * r[j] + 1.3981999507e-3f;
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        p[j] = p[j] * r[j] + 8.3334519073e-3f;
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        p[j] = p[j] * r[j] + 4.1665795894e-2f;
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        p[j] = p[j] * r[j] + 1.6666665459e-1f;
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        p[j] = p[j] * r[j] + 5.0000001201e-1f;
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        p[j] = p[j] * r[j] * r[j] + r[j] + 1.0f;
#pragma GCC unroll 4
    for (int j = 0; j < u; j++) {
        mx_vf e = (mx_vf)((mx_vi)p[j] + (ni[j] << 23));
        e = mx_vselect(x[j] < -87.33f, mx_vzero(), e);
        e = mx_vselect(x[j] > 88.72f, mx_vset1(__builtin_inff()), e);
        y[j] = mx_vselect(x[j] == x[j], e, x[j]);
    }
}
static inline mx_vf mx_vexp(mx_vf x)
{
    mx_vf y;
    mx_vexp_u(&y, &x, 1);
    return y;
}

/* exp(x) lane-wise for x <= 88 (softmax: x = logit - max <= 0), in half the operations of
 * mx_vexp_u: FMA where the target has it, n taken from the bits of the rounding sum instead of
 * a conversion, no overflow handling. NOT bitwise equal across levels (SSE and scalar round
 * twice where AVX2, AVX-512 and NEON fuse): for sums and gradients compared to rounding, never
 * where mx_expf's bits are promised. Within 2 ulp of exp for x in [-87.33, 88] (measured,
 * tests/unit/test_simd.c); x < -87.33 gives 0 and NaN stays NaN; x > 88 is out of contract.
 * WHY: the softmax-CE forward ran at ~37 vector operations per 8 exps (clamps, three selects,
 * no FMA), compute-bound at 4x its memory bound on AVX2; this is ~19.
 * n = round(x log2 e) is read off t = x log2 e + 1.5·2^23, whose low mantissa bits hold
 * n + 2^22: shifted left by 23 they give n << 23 exactly (the rest falls off the word). The
 * clamp at -87.33 keeps n >= -126 with r > 0 (p > 1), so the exponent add stays normal. */
static inline __attribute__((always_inline)) void mx_vexpn_u(mx_vf *y, const mx_vf *x, int u)
{
    mx_vf v[MX_VEXP_U] = {0}, t[MX_VEXP_U] = {0}, r[MX_VEXP_U] = {0}, p[MX_VEXP_U] = {0};
    const mx_vf lo = mx_vset1(-87.33f), magic = mx_vset1(12582912.0f);
    /* mx_vmax returns its second operand when either is NaN: a NaN x runs through as NaN. */
#pragma GCC unroll 4
    for (int j = 0; j < u; j++) {
        v[j] = mx_vmax(lo, x[j]);
        t[j] = mx_vfma(v[j], mx_vset1(1.44269504088896341f), magic);
    }
#pragma GCC unroll 4
    for (int j = 0; j < u; j++) {
        mx_vf n = t[j] - magic;
        r[j] = mx_vfma(n, mx_vset1(-0.693359375f), v[j]);
        r[j] = mx_vfma(n, mx_vset1(2.12194440e-4f), r[j]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        p[j] = mx_vfma(mx_vset1(1.9875691500e-4f), r[j], mx_vset1(1.3981999507e-3f));
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        p[j] = mx_vfma(p[j], r[j], mx_vset1(8.3334519073e-3f));
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        p[j] = mx_vfma(p[j], r[j], mx_vset1(4.1665795894e-2f));
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        p[j] = mx_vfma(p[j], r[j], mx_vset1(1.6666665459e-1f));
#pragma GCC unroll 4
    for (int j = 0; j < u; j++)
        p[j] = mx_vfma(p[j], r[j], mx_vset1(5.0000001201e-1f));
#pragma GCC unroll 4
    for (int j = 0; j < u; j++) {
        p[j] = mx_vfma(p[j], r[j] * r[j], r[j]) + 1.0f;
        mx_vu e = (mx_vu)p[j] + ((mx_vu)t[j] << 23); /* unsigned: the shift wraps by definition */
        y[j] = mx_vselect(x[j] < lo, mx_vzero(), (mx_vf)e);
    }
}
static inline mx_vf mx_vexpn(mx_vf x)
{
    mx_vf y;
    mx_vexpn_u(&y, &x, 1);
    return y;
}

/* tanh(x) = 1 - 2 / (exp(2|x|) + 1) with the sign put back: mx_tanhf lane-wise, bitwise equal
 * to it. Absolute error < 2e-7 (relative accuracy is lost near 0 to cancellation; GELU's
 * 0.5 x (1 + tanh(u)) only needs the absolute error). tanh(±inf) = ±1, NaN stays NaN. */
static inline mx_vf mx_vtanh(mx_vf x)
{
    mx_vi neg = x < 0.0f;
    mx_vf ax = mx_vselect(neg, -x, x);
    mx_vf t = 1.0f - 2.0f / (mx_vexp(2.0f * ax) + 1.0f);
    return mx_vselect(neg, -t, t);
}

#endif
