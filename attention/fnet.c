/* fnet.c — the FNet mixers: `fnet`, the original bidirectional FNet (Re of a 2-D DFT over time
 * and channels, no parameters; sees the future, for encoder benchmarks only) and `causal_fnet`,
 * its causal counterpart (the same DFT matrix with the future masked out, computed by Bluestein's
 * chirp identity as one causal convolution with a fixed chirp, zero-padded FFT). The token mixing
 * of both is parameter-free; causal_fnet's output has a learned per-channel gain from 0 (gain=0:
 * none). Not the learned long convolution (`longconv`, longconv.c) and not attention. */
#include "attention/fft_util.h"
#include "attention/mixer.h"

/* fftw3.h before cblas.h: OpenBLAS's header pulls in <complex.h>, which would turn fftwf_complex
 * into C99 _Complex float instead of float[2]. */
#include <fftw3.h>
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* The 2-D DFT of each (T,C) slab (a DFT along C for every t, then along T for every channel,
 * complex after the first, ~2x a real transform); backward is the same transform again. */
static void fnet_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd)
{
    double C = m->C;
    double f = (double)B * (T * fft_rfft_flops(C) + C * 2.0 * fft_rfft_flops((double)T));
    *fwd = f;
    *bwd = f;
}

/* ============================================================================================
 * fnet — the original bidirectional FNet mixer
 * ============================================================================================
 * y[b] = Re(DFT_T(DFT_C(x[b]))) / sqrt(T·C), parameter-free. FNet's encoder has post-LN, which
 * absorbs any scale; our decoder is pre-LN and adds y to the residual, so we use the
 * orthonormal DFT (1/sqrt(TC)) to keep |y| ~ |x|.
 * Backward: y = A x with A[(k,l),(t,c)] = cos(2π(kt/T + lc/C)) / sqrt(TC). A is symmetric
 * (swapping (k,l) with (t,c) leaves the angle unchanged), so Aᵀ = A: dx += Re(DFT2(dy))/sqrt(TC),
 * the forward applied to dy. */

struct fnet_cfg {
    struct fft_cache keys;
    fftwf_plan r2c[FFT_CACHE]; /* (T,C) real -> (T, C/2+1) complex, 2-D; NULL: empty */
};

static int fnet_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    if (mixer_kv_parse(&kv, "fnet", args, err) != 0 || mixer_kv_finish(&kv, "fnet", "", err) != 0)
        return -1;
    m->cfg = mx_xcalloc(sizeof(struct fnet_cfg));
    snprintf(m->spec, sizeof m->spec, "fnet");
    return 0;
}

static void fnet_destroy(struct mixer *m)
{
    struct fnet_cfg *cfg = m->cfg;
    if (!cfg)
        return;
    for (int i = 0; i < FFT_CACHE; i++)
        if (cfg->r2c[i])
            fftwf_destroy_plan(cfg->r2c[i]);
    mx_free(cfg);
}

static int fnet_tensors(const struct mixer *m, struct mx_param *out)
{
    (void)m;
    (void)out;
    return 0;
}

static void fnet_init(const struct mixer *m, float *params, struct mx_rng *rng)
{
    (void)m;
    (void)params;
    (void)rng;
}

static size_t fnet_saved_floats(const struct mixer *m, int B, int T)
{
    (void)m;
    (void)B;
    (void)T;
    return 0;
}

/* Per batch row: R (T,C) real copy of the input (aligned for the plan) | X (T, C/2+1) complex. */
static size_t fnet_unit(const struct mixer *m, int T)
{
    return fft_round16((size_t)T * m->C) + fft_round16(2 * (size_t)T * (m->C / 2 + 1));
}

static size_t fnet_scratch_floats(const struct mixer *m, int B, int T)
{
    return (size_t)B * fnet_unit(m, T) + 16;
}

static fftwf_plan fnet_plan(const struct mixer *m, float *R, fftwf_complex *X, int T)
{
    struct fnet_cfg *cfg = m->cfg;
    int hit, i = fft_cache_slot(&cfg->keys, T, &hit);
    if (hit)
        return cfg->r2c[i];
    if (cfg->r2c[i])
        fftwf_destroy_plan(cfg->r2c[i]);
    cfg->r2c[i] = fftwf_plan_dft_r2c_2d(T, m->C, R, X, FFTW_ESTIMATE);
    if (!cfg->r2c[i])
        mx_fatal("fnet: FFTW could not plan a %d x %d transform", T, m->C);
    return cfg->r2c[i];
}

/* out (B,T,C) overwritten (acc = 0) or accumulated (acc = 1) with Re(DFT2(in))/sqrt(TC). The
 * r2c transform keeps only bins l <= C/2; the others follow from Hermitian symmetry of a real
 * input's DFT, X[k,l] = conj(X[-k mod T, C-l]), whose real part is the same. */
static void fnet_apply(const struct mixer *m, float *out, const float *in, int B, int T, int acc)
{
    int C = m->C, Ch = C / 2 + 1;
    size_t unit = fnet_unit(m, T);
    float *base = fft_align64(m->scratch);
    fftwf_plan plan = fnet_plan(m, base, (fftwf_complex *)(base + fft_round16((size_t)T * C)), T);
    MX_ASSERT(fftwf_alignment_of(base) == 0);
    const float scale = (float)(1.0 / sqrt((double)T * (double)C));
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *R = base + (size_t)b * unit;
        fftwf_complex *X = (fftwf_complex *)(R + fft_round16((size_t)T * C));
        memcpy(R, in + (size_t)b * T * C, (size_t)T * C * sizeof(float));
        fftwf_execute_dft_r2c(plan, R, X);
        float *ob = out + (size_t)b * T * C;
        for (int k = 0; k < T; k++)
            for (int l = 0; l < C; l++) {
                float v = l < Ch ? X[(size_t)k * Ch + l][0]
                                 : X[(size_t)((T - k) % T) * Ch + (C - l)][0];
                if (acc)
                    ob[(size_t)k * C + l] += scale * v;
                else
                    ob[(size_t)k * C + l] = scale * v;
            }
    }
}

static void fnet_forward(const struct mixer *m, float *y, float *saved, const float *x,
                         const float *params, int B, int T)
{
    (void)saved;
    (void)params;
    MX_ASSERT(T >= 1 && T <= m->T_max);
    fnet_apply(m, y, x, B, T, 0);
}

static void fnet_backward(const struct mixer *m, float *dx, float *dparams, const float *dy,
                          const float *saved, const float *x, const float *params, int B, int T)
{
    (void)dparams;
    (void)saved;
    (void)x;
    (void)params;
    fnet_apply(m, dx, dy, B, T, 1);
}

static const char *const fnet_tests[] = {"fnet", NULL};

const struct mixer_ops fnet_ops = {
    .flops = fnet_flops,
    .name = "fnet",
    .summary = "fnet — original FNet (Re of a 2-D DFT over time and channels, orthonormal, no "
               "parameters); BIDIRECTIONAL: every output sees the future, so it is for encoder-style "
               "benchmarks only and LM training/eval refuse it; O(T log T)",
    .causal = 0,
    .test_specs = fnet_tests,
    .parse = fnet_parse,
    .destroy = fnet_destroy,
    .tensors = fnet_tensors,
    .init = fnet_init,
    .saved_floats = fnet_saved_floats,
    .scratch_floats = fnet_scratch_floats,
    .forward = fnet_forward,
    .backward = fnet_backward,
};

/* ============================================================================================
 * causal_fnet — FNet's DFT with the future masked out
 * ============================================================================================
 * FNet: Y[k,l] = Σ_{s<T} Σ_c cos(2π(ks/T + lc/C)) x[s,c], output row k. A causal mask keeps the
 * terms s <= k of row k, as a causal mask does to attention scores; the time frequency is fixed
 * to the context length T_max (not the call's T), so an output never depends on how long the
 * sequence is (prefix-consistent, and step-by-step generation is possible):
 *   y[t,l] = a_t Σ_{s<=t} Σ_c cos(2π(ts/T_max + lc/C)) x[s,c],   a_t = 1/sqrt((t+1)·C)
 * (a_t gives every row of the masked matrix unit norm, the causal counterpart of FNet's
 * orthonormal 1/sqrt(TC); it is fixed per position, so the map stays linear and causal).
 * With the hidden-dimension DFT  P + iQ = x·(cos - i sin)(2π lc/C)  (one GEMM against the fixed
 * (2C,C) matrix W = [cos; -sin]) and w = e^(-2πi/T_max):  y[t,l] = a_t Re Σ_{s<=t} w^(ts) (P+iQ)[s,l].
 * WHY a convolution (Bluestein's chirp identity): ts = (t² + s² - (t-s)²)/2, so with the chirp
 * c_n = e^(-πi n²/T_max), w^(ts) = c_t c_s conj(c_(t-s)) and
 *   Σ_{s<=t} w^(ts) A_s = c_t Σ_{s<=t} g_(t-s) (c_s A_s),   g_τ = conj(c_τ),
 * one causal convolution per channel with the same fixed complex filter g, computed by a
 * complex FFT (double precision) zero-padded to N >= 2T-1 (nothing wraps from the future, as
 * in longconv.c).
 * No mixing parameters: W, the chirp and g's spectrum are constants. Cost O(T·C² + C·T log T).
 *
 * The output gain (gain=1, the default): y = g ⊙ z, z the map above, g (C) learned and starting
 * at 0 (ReZero's zero-initialised residual branch, per channel as LayerScale). WHY: FNet is a
 * post-LN encoder (x <- LN(x + Re DFT(x))), so the mixing output's scale is renormalised right
 * away. Our decoder is pre-LN: z, at ~0.7 per element whatever T is, is added to a residual
 * stream that starts at the embeddings' 0.02 and swamps the current token with a fixed
 * mixture of its whole history (the current token is 1/(t+1) of z's variance). Measured
 * (byte-level enwik8, 2 layers, dim 128, context 256, 300 equal steps; bench/RESULTS.md
 * 2026-12-02 session 5): bare map 4.874 bits/byte, the same with the masked orthonormal scale
 * 1/sqrt(T_max·C) 4.874, a fixed gain 0.1 3.921, the mixer's output zeroed 3.831, the learned
 * gain from 0 3.831 (the gains stay ~0.005: the model keeps the mixing off). The gain undoes the
 * damage; it does not make the masked DFT useful. gain=0 keeps the bare map (the direct-DFT
 * tests, and the comparison). */

#define CFNET_PI 3.14159265358979323846

struct causal_fnet_entry {
    int N;          /* 0: empty; the FFT length (fast size >= 2T-1) */
    fftw_plan fwd;  /* complex N -> N, in place */
    fftw_plan inv;
    fftw_complex *chirp; /* (T) c_n */
    fftw_complex *Gf;    /* (N) DFT of g (zero beyond T) / N */
};

struct causal_fnet_cfg {
    float *W; /* (2C,C): rows l < C cos(2π lc/C), rows C+l -sin(2π lc/C) */
    int gain; /* 1: y = g ⊙ (the map), g (C) learned, starts at 0; 0: the bare map */
    struct fft_cache keys;
    struct causal_fnet_entry cache[FFT_CACHE];
};

static int causal_fnet_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    long gain;
    if (mixer_kv_parse(&kv, "causal_fnet", args, err) != 0 ||
        mixer_kv_int(&kv, "causal_fnet", "gain", 1, 0, 1, &gain, err) != 0 ||
        mixer_kv_finish(&kv, "causal_fnet", "gain (1: a learned per-channel output gain from 0; 0: none)", err) != 0)
        return -1;
    if (m->T_max < 1)
        return mx_errorf(err, "mixer causal_fnet: context length %d must be >= 1", m->T_max);
    if (m->T_max > (1 << 28))
        return mx_errorf(err, "mixer causal_fnet: context length %d exceeds the FFT limit %d; use a shorter "
                              "--context", m->T_max, 1 << 28);
    struct causal_fnet_cfg *cfg = mx_xcalloc(sizeof *cfg);
    int C = m->C;
    cfg->gain = (int)gain;
    cfg->W = mx_xmalloc(2 * (size_t)C * C * sizeof(float));
    for (int l = 0; l < C; l++)
        for (int c = 0; c < C; c++) {
            /* (l·c) mod C keeps the angle small and exact for any C. */
            double a = 2.0 * CFNET_PI * (double)(((long long)l * c) % C) / (double)C;
            cfg->W[(size_t)l * C + c] = (float)cos(a);
            cfg->W[(size_t)(C + l) * C + c] = (float)-sin(a);
        }
    m->cfg = cfg;
    snprintf(m->spec, sizeof m->spec, "causal_fnet:gain=%d", cfg->gain);
    return 0;
}

/* The output gain g (C): not weight-decayed (decay would pull it back to "no mixer"). */
static int causal_fnet_tensors(const struct mixer *m, struct mx_param *out)
{
    const struct causal_fnet_cfg *cfg = m->cfg;
    int n = 0;
    size_t at = 0;
    if (cfg->gain)
        mx_param_add(out, &n, &at, "gain", 1, m->C, 0, 0, 1);
    return n;
}

/* WHY g starts at 0 (ReZero, Bachlechner et al. 2020): see "the output gain" above. */
static void causal_fnet_init(const struct mixer *m, float *params, struct mx_rng *rng)
{
    const struct causal_fnet_cfg *cfg = m->cfg;
    (void)rng;
    if (cfg->gain)
        memset(params, 0, sizeof(float) * (size_t)m->C);
}

static void causal_fnet_entry_clear(struct causal_fnet_entry *e)
{
    if (e->N) {
        fftw_destroy_plan(e->fwd);
        fftw_destroy_plan(e->inv);
        fftw_free(e->chirp);
        fftw_free(e->Gf);
    }
    memset(e, 0, sizeof *e);
}

static void causal_fnet_destroy(struct mixer *m)
{
    struct causal_fnet_cfg *cfg = m->cfg;
    if (!cfg)
        return;
    for (int i = 0; i < FFT_CACHE; i++)
        causal_fnet_entry_clear(&cfg->cache[i]);
    mx_free(cfg->W);
    mx_free(cfg);
}

/* The chirp's angle π n²/T_max reduced exactly in integers (n² mod 2T_max), then in double. */
static double causal_fnet_chirp_angle(long long n, int T_max)
{
    unsigned long long q = (unsigned long long)n * (unsigned long long)n % (2ULL * (unsigned long long)T_max);
    return CFNET_PI * (double)q / (double)T_max;
}

/* Scratch: A (B,T,2C) — the hidden DFT [P | Q] in forward, its gradient [dP | dQ] in backward —
 * then one double complex row of N (4 floats a bin, rounded to 64 bytes) per (batch, channel)
 * unit, so units run in parallel with one writer each.
 * WHY double for the convolution: the chirp filter has |g_τ| = 1 at every lag, so a float FFT's
 * round-off (~eps·||E||·||g||) grows like eps·T against outputs of size O(1): measured 1.8e-5
 * at T = 1000 for the change of outputs at <= t when inputs after t change, growing linearly
 * towards 1e-3 at 64k, the size of a real leak. In double it stays below 1e-12. */
static size_t causal_fnet_layout(const struct mixer *m, int B, int T, int *N, size_t *row)
{
    *N = fft_fast_size(2 * T - 1);
    *row = fft_round16(4 * (size_t)*N);
    return fft_round16(2 * (size_t)B * T * m->C) + (size_t)B * m->C * *row + 16;
}

static size_t causal_fnet_scratch_floats(const struct mixer *m, int B, int T)
{
    int N;
    size_t row;
    return causal_fnet_layout(m, B, T, &N, &row);
}

/* Saved: with the gain, z (B,T,C), the map's output before the gain (dg = Σ dy ⊙ z). */
static size_t causal_fnet_saved_floats(const struct mixer *m, int B, int T)
{
    const struct causal_fnet_cfg *cfg = m->cfg;
    return cfg->gain ? (size_t)B * T * m->C : 0;
}

/* The cache entry for T: plans (made outside any parallel region on an aligned scratch row),
 * the chirp and g's spectrum. Only the first call for a T allocates. */
static struct causal_fnet_entry *causal_fnet_entry_get(const struct mixer *m, fftw_complex *buf, int T, int N)
{
    struct causal_fnet_cfg *cfg = m->cfg;
    int hit;
    struct causal_fnet_entry *e = &cfg->cache[fft_cache_slot(&cfg->keys, T, &hit)];
    if (hit)
        return e;
    causal_fnet_entry_clear(e);
    MX_ASSERT(fftw_alignment_of((double *)buf) == 0);
    e->fwd = fftw_plan_dft_1d(N, buf, buf, FFTW_FORWARD, FFTW_ESTIMATE);
    e->inv = fftw_plan_dft_1d(N, buf, buf, FFTW_BACKWARD, FFTW_ESTIMATE);
    e->chirp = fftw_malloc(sizeof(fftw_complex) * (size_t)T);
    e->Gf = fftw_malloc(sizeof(fftw_complex) * (size_t)N);
    if (!e->fwd || !e->inv || !e->chirp || !e->Gf)
        mx_fatal("causal_fnet: FFTW could not plan or allocate a length-%d transform", N);
    e->N = N;
    /* WHY the 1/N in g's spectrum: FFTW's inverse is unnormalised; folding 1/N in once saves a
     * pass over every output. */
    for (int n = 0; n < N; n++) {
        double a = n < T ? causal_fnet_chirp_angle(n, m->T_max) : 0.0;
        if (n < T) {
            e->chirp[n][0] = cos(a);
            e->chirp[n][1] = -sin(a);
        }
        buf[n][0] = n < T ? cos(a) / N : 0.0; /* g_n = conj(c_n) / N */
        buf[n][1] = n < T ? sin(a) / N : 0.0;
    }
    fftw_execute_dft(e->fwd, buf, buf); /* in place, as planned */
    memcpy(e->Gf, buf, sizeof(fftw_complex) * (size_t)N);
    return e;
}

/* E (N) in place: E <- IDFT(DFT(E) · G'), G'[k] = Gf[k] (convolution with g, rev = 0) or
 * Gf[-k mod N] (correlation with g, rev = 1: Σ_τ g_τ E[s+τ]). */
static void causal_fnet_filter(const struct causal_fnet_entry *e, fftw_complex *E, int rev)
{
    int N = e->N;
    fftw_execute_dft(e->fwd, E, E);
    for (int k = 0; k < N; k++) {
        const double *g = e->Gf[rev ? (N - k) % N : k];
        double er = E[k][0], ei = E[k][1];
        E[k][0] = er * g[0] - ei * g[1];
        E[k][1] = er * g[1] + ei * g[0];
    }
    fftw_execute_dft(e->inv, E, E);
}

static void causal_fnet_forward(const struct mixer *m, float *y, float *saved, const float *x,
                                const float *params, int B, int T)
{
    MX_ASSERT(T >= 1 && T <= m->T_max);
    const struct causal_fnet_cfg *cfg = m->cfg;
    int C = m->C, N;
    size_t row;
    causal_fnet_layout(m, B, T, &N, &row);
    float *base = fft_align64(m->scratch);
    float *A = base;                                              /* (B,T,2C) */
    float *rows = base + fft_round16(2 * (size_t)B * T * C);      /* (B*C, row) */
    const struct causal_fnet_entry *e = causal_fnet_entry_get(m, (fftw_complex *)rows, T, N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B * T, 2 * C, C, 1.0f, x, C, cfg->W, C, 0.0f, A,
                2 * C);
    const double invC = 1.0 / (double)C;
    float *z = cfg->gain ? saved : y; /* (B,T,C) the map's output, before the gain */
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int l = 0; l < C; l++) {
            fftw_complex *E = (fftw_complex *)(rows + ((size_t)b * C + l) * row);
            const float *Ab = A + (size_t)b * T * 2 * C;
            for (int n = 0; n < T; n++) { /* E_n = c_n (P + iQ)[n,l] */
                double p = Ab[(size_t)n * 2 * C + l], q = Ab[(size_t)n * 2 * C + C + l];
                double cr = e->chirp[n][0], ci = e->chirp[n][1];
                E[n][0] = cr * p - ci * q;
                E[n][1] = cr * q + ci * p;
            }
            memset(E + T, 0, (size_t)(N - T) * sizeof(fftw_complex));
            causal_fnet_filter(e, E, 0);
            float *zb = z + (size_t)b * T * C;
            for (int t = 0; t < T; t++) { /* z = a_t Re(c_t E_t) */
                double re = e->chirp[t][0] * E[t][0] - e->chirp[t][1] * E[t][1];
                zb[(size_t)t * C + l] = (float)(sqrt(invC / (t + 1)) * re);
            }
        }
    if (cfg->gain)
        for (size_t i = 0; i < (size_t)B * T; i++)
            for (int l = 0; l < C; l++)
                y[i * C + l] = params[l] * z[i * C + l];
}

/* Backward of the linear map y = a ⊙ Re(M (x Wᵀ)) (M the masked DFT along time): with
 * D = a ⊙ dy,  R[s,l] = Σ_{t>=s} w^(ts) D[t,l]  (the transpose of the masked matrix: an
 * anti-causal correlation, by the same chirp identity R_s = c_s Σ_τ g_τ (c D)_{s+τ}),
 * dP = Re R, dQ = -Im R, and dx += [dP | dQ] W. */
static void causal_fnet_backward(const struct mixer *m, float *dx, float *dparams, const float *dy,
                                 const float *saved, const float *x, const float *params, int B, int T)
{
    (void)x;
    const struct causal_fnet_cfg *cfg = m->cfg;
    int C = m->C, N;
    size_t row;
    causal_fnet_layout(m, B, T, &N, &row);
    float *base = fft_align64(m->scratch);
    float *dA = base;                                             /* (B,T,2C) */
    float *rows = base + fft_round16(2 * (size_t)B * T * C);
    const struct causal_fnet_entry *e = causal_fnet_entry_get(m, (fftw_complex *)rows, T, N);
    const double invC = 1.0 / (double)C;
    if (cfg->gain) /* dg += Σ dy ⊙ z, in a fixed order (bitwise reproducible) */
        for (size_t i = 0; i < (size_t)B * T; i++)
            for (int l = 0; l < C; l++)
                dparams[l] += dy[i * C + l] * saved[i * C + l];
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int l = 0; l < C; l++) {
            fftw_complex *E = (fftw_complex *)(rows + ((size_t)b * C + l) * row);
            const float *dyb = dy + (size_t)b * T * C;
            const double gl = cfg->gain ? params[l] : 1.0; /* dz = g ⊙ dy */
            for (int t = 0; t < T; t++) { /* E_t = c_t a_t dz[t,l] */
                double d = gl * sqrt(invC / (t + 1)) * dyb[(size_t)t * C + l];
                E[t][0] = e->chirp[t][0] * d;
                E[t][1] = e->chirp[t][1] * d;
            }
            memset(E + T, 0, (size_t)(N - T) * sizeof(fftw_complex));
            causal_fnet_filter(e, E, 1);
            float *dAb = dA + (size_t)b * T * 2 * C;
            for (int s = 0; s < T; s++) { /* R_s = c_s E_s */
                double cr = e->chirp[s][0], ci = e->chirp[s][1];
                dAb[(size_t)s * 2 * C + l] = (float)(cr * E[s][0] - ci * E[s][1]);
                dAb[(size_t)s * 2 * C + C + l] = (float)-(cr * E[s][1] + ci * E[s][0]);
            }
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B * T, C, 2 * C, 1.0f, dA, 2 * C, cfg->W, C, 1.0f,
                dx, C);
}

/* Generation state: the hidden DFT history A (T_max, 2C) and one row for this step. The step is
 * the direct form y[t,l] = a_t Σ_{s<=t} cos(θts) P[s,l] + sin(θts) Q[s,l], θ = 2π/T_max (ts
 * reduced mod T_max in integers): O(t·C) per token. It is also the naive reference the chirp
 * FFT forward is checked against (step == forward in the generic suite). */
static size_t causal_fnet_state_floats(const struct mixer *m)
{
    return ((size_t)m->T_max + 1) * 2 * m->C;
}

static void causal_fnet_step(const struct mixer *m, float *y_t, float *state, const float *x_t,
                             const float *params, int t)
{
    const struct causal_fnet_cfg *cfg = m->cfg;
    MX_ASSERT(t >= 0 && t < m->T_max);
    int C = m->C, Tm = m->T_max;
    float *A = state; /* (T_max, 2C) */
    cblas_sgemv(CblasRowMajor, CblasNoTrans, 2 * C, C, 1.0f, cfg->W, C, x_t, 1, 0.0f, A + (size_t)t * 2 * C, 1);
    float *acc = state + (size_t)Tm * 2 * C; /* (C): the sums of this step */
    memset(acc, 0, (size_t)C * sizeof(float));
    for (int s = 0; s <= t; s++) {
        double a = 2.0 * CFNET_PI * (double)(((unsigned long long)t * (unsigned long long)s) % (unsigned long long)Tm) /
                   (double)Tm;
        float cs = (float)cos(a), sn = (float)sin(a);
        const float *As = A + (size_t)s * 2 * C;
        for (int l = 0; l < C; l++)
            acc[l] += cs * As[l] + sn * As[C + l];
    }
    float at = (float)sqrt(1.0 / ((double)C * (t + 1)));
    for (int l = 0; l < C; l++)
        y_t[l] = cfg->gain ? params[l] * (at * acc[l]) : at * acc[l];
}

/* Per batch row: the hidden DFT as a GEMM (2·T·2C·C); per channel two complex FFTs of length N
 * (5 N log2 N each), the spectrum product (6 N) and the chirp products and scale (~14 T).
 * Backward: the same. g's spectrum is cached per T (not counted). */
static void causal_fnet_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd)
{
    double C = m->C, N = (double)fft_fast_size(2 * T - 1);
    double f = (double)B * (4.0 * T * C * C + C * (4.0 * fft_rfft_flops(N) + 6.0 * N + 14.0 * T));
    *fwd = f;
    *bwd = f;
}

/* WHY a tolerance, not bit-for-bit: every FFT output sums all N bins, so inputs after t may
 * change the rounding of outputs at <= t. In double, before the final rounding to float, that
 * is ~1e-12: measured 0 (bit-identical outputs) for T = 20..1000 (tests/mixers/test_fft_mixers.c);
 * the tolerance is longconv's 1e-5, far below a real leak. */
static const char *const causal_fnet_tests[] = {"causal_fnet", "causal_fnet:gain=0", NULL};

const struct mixer_ops causal_fnet_ops = {
    .flops = causal_fnet_flops,
    .name = "causal_fnet",
    .summary = "causal_fnet:gain=1 — FNet made causal: FNet's 2-D DFT (time x channels) with the future "
               "masked out (row t keeps s <= t, time frequency t/T_max), rows scaled to unit norm, no mixing "
               "parameters; gain=1: times a learned per-channel gain starting at 0 (gain=0: the bare map); "
               "computed by Bluestein's chirp identity as one fixed causal convolution per channel by "
               "zero-padded FFT; O(T·C² + C·T log T)",
    .causal = 1,
    .test_specs = causal_fnet_tests,
    .test_causal_tol = 1e-5,
    .parse = causal_fnet_parse,
    .destroy = causal_fnet_destroy,
    .tensors = causal_fnet_tensors,
    .init = causal_fnet_init,
    .saved_floats = causal_fnet_saved_floats,
    .scratch_floats = causal_fnet_scratch_floats,
    .forward = causal_fnet_forward,
    .backward = causal_fnet_backward,
    .state_floats = causal_fnet_state_floats,
    .step = causal_fnet_step,
};
