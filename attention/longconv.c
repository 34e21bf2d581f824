/* longconv.c — `longconv`, a learned per-channel causal long convolution along time (value
 * projection, C filters of T_max taps, output projection), computed by zero-padded FFT through
 * FFTW: the long-convolution family (Hyena's implicit long filters, S4/S4D read as a convolution
 * kernel), with the filter stored explicitly. Not FNet (that mixes with a fixed DFT and no
 * parameters: `fnet` and `causal_fnet` in fnet.c) and not attention. The old name `fourier` is
 * an accepted alias (attention/mixer.c), so old checkpoints and command lines still run. */
#include "attention/fft_util.h"
#include "attention/mixer.h"
#include "nn/nn.h"

#include <fftw3.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ============================================================================================
 * longconv — causal long convolution by FFT
 * ============================================================================================
 * y = c_proj( h *_causal (c_v x) ):  u = x W_vᵀ + b_v  (the value projection, vproj=1),
 * z[b,t,c] = Σ_{s<=t} h[c,s] u[b,t-s,c],  y = z W_projᵀ + b_proj.
 * The value projection is on by default: with it the model chooses which mixtures of channels
 * get which filter (essential when the filter is fixed, where channel c's timescale is set by
 * its index); vproj=0 drops it (C² fewer parameters, one GEMM less) for ablations. */

struct longconv_entry {
    int N;           /* 0: empty; the FFT length (fast size >= 2T-1) */
    fftwf_plan r2c;  /* one real signal of length N -> N/2+1 complex bins */
    fftwf_plan c2r;  /* the inverse */
    fftwf_complex *Hf_fixed; /* filter=fixed: spectrum of the fixed taps / N, as Hf in the layout */
};

struct longconv_cfg {
    int learned; /* filter=learned (parameters) or fixed (generated, stored nowhere) */
    int vproj;   /* value projection c_v before the convolution */
    int cc;      /* channels per FFT batch (a chunk); divides C */
    struct fft_cache keys;
    struct longconv_entry cache[FFT_CACHE];
};

/* The fixed filter, and the learned filter's initial value: multi-scale causal exponential
 * moving averages. Channel c has timescale tau_c = T_max^(c/(C-1)) (geometric from 1 token to
 * the whole context), r_c = exp(-1/tau_c), h[c,s] = (1-r_c) r_c^s. Each row sums to ~1, so a
 * constant input passes with gain 1 at every scale (no blow-up of the residual for long
 * timescales); short timescales act almost as the identity, long ones as running means.
 * Evaluated in double with exp() per tap, so forward, step and init agree to the last bit. */
static float longconv_fixed_tap(int c, int C, int T_max, int s)
{
    double frac = C > 1 ? (double)c / (double)(C - 1) : 0.0;
    double tau = pow((double)T_max, frac);
    double r = exp(-1.0 / tau);
    return (float)((1.0 - r) * exp(-(double)s / tau));
}

static int longconv_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    long vproj;
    if (mixer_kv_parse(&kv, "longconv", args, err) != 0)
        return -1;
    const char *filter = mixer_kv_str(&kv, "filter");
    int learned = 1;
    if (filter) {
        if (strcmp(filter, "learned") == 0)
            learned = 1;
        else if (strcmp(filter, "fixed") == 0)
            learned = 0;
        else
            return mx_errorf(err, "mixer longconv: filter='%s' is not a filter kind; use filter=learned "
                                  "(per-channel taps as parameters, the default) or filter=fixed "
                                  "(parameter-free multi-scale exponential decays)", filter);
    }
    if (mixer_kv_int(&kv, "longconv", "vproj", 1, 0, 1, &vproj, err) != 0)
        return -1;
    if (mixer_kv_finish(&kv, "longconv", "filter=learned|fixed, vproj=0|1", err) != 0)
        return -1;
    if (m->T_max < 1)
        return mx_errorf(err, "mixer longconv: context length %d must be >= 1", m->T_max);
    if (m->T_max > (1 << 28))
        return mx_errorf(err, "mixer longconv: context length %d exceeds the FFT limit %d; use a shorter "
                              "--context", m->T_max, 1 << 28);
    struct longconv_cfg *cfg = mx_xcalloc(sizeof *cfg);
    cfg->learned = learned;
    cfg->vproj = (int)vproj;
    /* Chunks of up to 16 channels: the transposes in and out then move whole 64-byte rows of
     * the (T,C) layout, and C/cc chunks give the threads work even at batch 1. */
    cfg->cc = 1;
    for (int cc = 16; cc > 1; cc /= 2)
        if (m->C % cc == 0) {
            cfg->cc = cc;
            break;
        }
    m->cfg = cfg;
    snprintf(m->spec, sizeof m->spec, "longconv:filter=%s,vproj=%d", learned ? "learned" : "fixed",
             (int)vproj);
    return 0;
}

static void longconv_entry_clear(struct longconv_entry *e)
{
    if (e->N) {
        fftwf_destroy_plan(e->r2c);
        fftwf_destroy_plan(e->c2r);
        if (e->Hf_fixed)
            fftwf_free(e->Hf_fixed);
    }
    memset(e, 0, sizeof *e);
}

static void longconv_destroy(struct mixer *m)
{
    struct longconv_cfg *cfg = m->cfg;
    if (!cfg)
        return;
    for (int i = 0; i < FFT_CACHE; i++)
        longconv_entry_clear(&cfg->cache[i]);
    mx_free(cfg);
}

static int longconv_tensors(const struct mixer *m, struct mx_param *out)
{
    const struct longconv_cfg *cfg = m->cfg;
    int n = 0, C = m->C;
    size_t at = 0;
    if (cfg->vproj) {
        mx_param_add(out, &n, &at, "c_v.weight", 2, C, C, 1, 1);
        if (m->bias)
            mx_param_add(out, &n, &at, "c_v.bias", 1, C, 0, 0, 1);
    }
    /* The filter is not weight-decayed: decay would pull every timescale towards "no memory". */
    if (cfg->learned)
        mx_param_add(out, &n, &at, "filter", 2, C, m->T_max, 0, 1);
    mx_param_add(out, &n, &at, "c_proj.weight", 2, C, C, 1, 1);
    if (m->bias)
        mx_param_add(out, &n, &at, "c_proj.bias", 1, C, 0, 0, 1);
    return n;
}

struct longconv_params {
    const float *w_v, *b_v; /* (C,C), (C) or NULL */
    const float *h;         /* (C,T_max) or NULL (fixed) */
    const float *w_proj, *b_proj;
};

/* The one place that knows the slice layout; forward, backward, step and init use it. */
static struct longconv_params longconv_bind(const struct mixer *m, const float *params)
{
    const struct longconv_cfg *cfg = m->cfg;
    size_t C = (size_t)m->C;
    struct longconv_params p = {0};
    if (cfg->vproj) {
        p.w_v = params;
        params += C * C;
        if (m->bias) {
            p.b_v = params;
            params += C;
        }
    }
    if (cfg->learned) {
        p.h = params;
        params += C * (size_t)m->T_max;
    }
    p.w_proj = params;
    params += C * C;
    p.b_proj = m->bias ? params : NULL;
    return p;
}

static void longconv_init(const struct mixer *m, float *params, struct mx_rng *rng)
{
    size_t C = (size_t)m->C;
    struct longconv_params p = longconv_bind(m, params);
    if (p.w_v) {
        mx_rng_fill_normal(rng, (float *)p.w_v, C * C, 0.02f);
        if (p.b_v)
            memset((float *)p.b_v, 0, C * sizeof(float));
    }
    if (p.h)
        for (int c = 0; c < m->C; c++)
            for (int s = 0; s < m->T_max; s++)
                ((float *)p.h)[(size_t)c * m->T_max + s] = longconv_fixed_tap(c, m->C, m->T_max, s);
    mx_rng_fill_normal(rng, (float *)p.w_proj, C * C, 0.02f / sqrtf(2.0f * (float)m->n_layer));
    if (p.b_proj)
        memset((float *)p.b_proj, 0, C * sizeof(float));
}

/* Saved for backward: z (B,T,C) for c_proj's weight gradient, and u (B,T,C) for the filter's
 * gradient when there is a value projection (without one, u is x itself). */
static size_t longconv_saved_floats(const struct mixer *m, int B, int T)
{
    const struct longconv_cfg *cfg = m->cfg;
    return (cfg->vproj ? 2 : 1) * (size_t)B * T * m->C;
}

/* Scratch layout, computed by the same code for sizing (base == NULL) and binding. Each
 * (batch, chunk of cc channels) unit owns its FFT buffers, so units run in parallel with one
 * writer each:  R (cc, NR) real rows | X1 (KR) complex | X2 (cc, KR) complex (backward only),
 * then the filter spectrum Hf (C, KR) complex and, for backward, dz and du (B,T,C).
 * WHY one contiguous row per channel (a transpose on the way in and out) rather than FFTs
 * strided across the (T,C) layout: FFTW ran 2-9x slower on interleaved signals (measured at
 * N = 2^11..2^17), and one channel at a time keeps an FFT's working set (R row + X1) in L2. */
struct longconv_layout {
    int N, K, cc, nch; /* K = N/2+1 complex bins */
    size_t NR, KR;     /* row strides: NR floats >= N, KR complex >= K (64-byte multiples) */
    size_t unit;       /* floats per unit */
    float *units;      /* (B*nch) units, unit (b,j) at units + (b*nch+j)*unit */
    fftwf_complex *Hf; /* (C, KR) */
    float *dz, *du;    /* (B,T,C) each */
};

static size_t longconv_layout(const struct mixer *m, int B, int T, float *base, struct longconv_layout *L)
{
    const struct longconv_cfg *cfg = m->cfg;
    size_t BTC = (size_t)B * T * m->C;
    /* WHY N >= 2T-1: the FFT computes a circular convolution, index arithmetic mod N. With the
     * signal and the taps zero beyond T, output t < T sums u[(t-s) mod N] h[s] for s < T; a
     * negative t-s wraps to N+t-s >= N-T+1 >= T, which is padding (zero) exactly when
     * N >= 2T-1. A shorter N would wrap the END of the sequence into the start: the future
     * leaking into the past. The same bound keeps the backward correlations free of wrap. */
    L->N = fft_fast_size(2 * T - 1);
    L->K = L->N / 2 + 1;
    L->cc = cfg->cc;
    L->nch = m->C / cfg->cc;
    L->NR = fft_round16((size_t)L->N);
    L->KR = fft_round16(2 * (size_t)L->K) / 2;
    L->unit = (size_t)L->cc * L->NR + 2 * L->KR + (size_t)L->cc * 2 * L->KR;
    size_t off = 0;
    float *p = base ? fft_align64(base) : NULL;
    L->units = p ? p + off : NULL;
    off += (size_t)B * L->nch * L->unit;
    L->Hf = p ? (fftwf_complex *)(p + off) : NULL;
    off += (size_t)m->C * 2 * L->KR;
    L->dz = p ? p + off : NULL;
    off += fft_round16(BTC);
    L->du = p ? p + off : NULL;
    off += cfg->vproj ? fft_round16(BTC) : 0;
    return off + 16; /* + 16 floats of slack for the 64-byte alignment of base */
}

static size_t longconv_scratch_floats(const struct mixer *m, int B, int T)
{
    struct longconv_layout L;
    return longconv_layout(m, B, T, NULL, &L);
}

static float *unit_R(const struct longconv_layout *L, int b, int j) /* (cc, NR) */
{
    return L->units + ((size_t)b * L->nch + j) * L->unit;
}
static fftwf_complex *unit_X1(const struct longconv_layout *L, int b, int j) /* (KR) */
{
    return (fftwf_complex *)(unit_R(L, b, j) + (size_t)L->cc * L->NR);
}
static fftwf_complex *unit_X2(const struct longconv_layout *L, int b, int j) /* (cc, KR) */
{
    return unit_X1(L, b, j) + L->KR;
}

/* R (cc, NR) <- the transpose of src[0:T, c0:c0+cc] of a (T,C) block, each row zero from T
 * to N (the causal padding). In blocks of 16 time steps: the 16 source rows stay in L1 while
 * each channel's 16 values are written contiguously (a plain loop was 14% of a training step). */
static void longconv_pad_in(float *R, size_t NR, const float *src, int T, int C, int c0, int cc, int N)
{
    for (int t0 = 0; t0 < T; t0 += 16) {
        int t1 = t0 + 16 < T ? t0 + 16 : T;
        for (int i = 0; i < cc; i++) {
            float *Ri = R + (size_t)i * NR;
            const float *col = src + c0 + i;
            for (int t = t0; t < t1; t++)
                Ri[t] = col[(size_t)t * C];
        }
    }
    for (int i = 0; i < cc; i++)
        memset(R + (size_t)i * NR + T, 0, (size_t)(N - T) * sizeof(float));
}

/* dst[0:T, c0:c0+cc] of a (T,C) block = (acc ? += : =) the transpose of R (cc, NR)[:, 0:T],
 * blocked like longconv_pad_in. */
static void longconv_pad_out(float *dst, int C, int c0, const float *R, size_t NR, int T, int cc, int acc)
{
    for (int t0 = 0; t0 < T; t0 += 16) {
        int t1 = t0 + 16 < T ? t0 + 16 : T;
        for (int i = 0; i < cc; i++) {
            const float *Ri = R + (size_t)i * NR;
            float *col = dst + c0 + i;
            if (acc)
                for (int t = t0; t < t1; t++)
                    col[(size_t)t * C] += Ri[t];
            else
                for (int t = t0; t < t1; t++)
                    col[(size_t)t * C] = Ri[t];
        }
    }
}

/* The cache entry for T: plans made here, on this call's (aligned) scratch buffers, outside any
 * parallel region (FFTW's planner is not thread-safe; its execute functions are, and every
 * buffer they get is 64-byte aligned like the ones planned on). Only the first call for a T
 * allocates (FFTW's plans; the fixed filter's spectrum). */
static struct longconv_entry *longconv_entry_get(const struct mixer *m, const struct longconv_layout *L, int T)
{
    struct longconv_cfg *cfg = m->cfg;
    int hit;
    struct longconv_entry *e = &cfg->cache[fft_cache_slot(&cfg->keys, T, &hit)];
    if (hit)
        return e;
    longconv_entry_clear(e);
    int N = L->N;
    float *R = unit_R(L, 0, 0);
    fftwf_complex *X = unit_X1(L, 0, 0);
    MX_ASSERT(fftwf_alignment_of(R) == 0 && fftwf_alignment_of((float *)X) == 0);
    e->r2c = fftwf_plan_dft_r2c_1d(N, R, X, FFTW_ESTIMATE);
    e->c2r = fftwf_plan_dft_c2r_1d(N, X, R, FFTW_ESTIMATE);
    if (!e->r2c || !e->c2r)
        mx_fatal("longconv: FFTW could not plan a length-%d transform", N);
    e->N = N;
    if (!cfg->learned) {
        size_t bytes = sizeof(fftwf_complex) * L->KR * (size_t)m->C;
        e->Hf_fixed = fftwf_malloc(bytes);
        if (!e->Hf_fixed)
            mx_fatal("longconv: out of memory for the fixed filter spectrum (%zu bytes)", bytes);
        MX_ASSERT(fftwf_alignment_of((float *)e->Hf_fixed) == 0);
        for (int c = 0; c < m->C; c++) {
            for (int t = 0; t < T; t++)
                R[t] = longconv_fixed_tap(c, m->C, m->T_max, t) / (float)N;
            memset(R + T, 0, (size_t)(N - T) * sizeof(float));
            fftwf_execute_dft_r2c(e->r2c, R, e->Hf_fixed + (size_t)c * L->KR);
        }
    }
    return e;
}

/* Hf (C, KR) <- FFT of the taps h[:, 0:T] / N (learned), or the cached fixed spectrum.
 * WHY the 1/N in the taps: FFTW's inverse is unnormalised (c2r(r2c(v)) = N v); folding 1/N into
 * the filter's spectrum once saves a pass over every output, in forward and in backward. */
static const fftwf_complex *longconv_filter_spectrum(const struct mixer *m, const struct longconv_layout *L,
                                                    const struct longconv_entry *e, const float *h, int T)
{
    if (!h)
        return e->Hf_fixed;
    int N = L->N;
    const float inv_n = 1.0f / (float)N;
#pragma omp parallel for schedule(static)
    for (int j = 0; j < L->nch; j++) {
        float *R = unit_R(L, 0, j); /* its first row as a temporary */
        for (int i = 0; i < L->cc; i++) {
            int c = j * L->cc + i;
            const float *hc = h + (size_t)c * m->T_max;
            for (int t = 0; t < T; t++)
                R[t] = hc[t] * inv_n;
            memset(R + T, 0, (size_t)(N - T) * sizeof(float));
            fftwf_execute_dft_r2c(e->r2c, R, L->Hf + (size_t)c * L->KR);
        }
    }
    return L->Hf;
}

/* z (B,T,C) overwritten = causal conv of u (B,T,C) with the filter spectrum Hf (already /N). */
static void longconv_conv_fft(const struct mixer *m, const struct longconv_layout *L,
                             const struct longconv_entry *e, const fftwf_complex *Hf, float *z,
                             const float *u, int B, int T)
{
    int C = m->C, cc = L->cc, nch = L->nch, N = L->N, K = L->K;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int j = 0; j < nch; j++) {
            float *R = unit_R(L, b, j);
            fftwf_complex *X = unit_X1(L, b, j);
            longconv_pad_in(R, L->NR, u + (size_t)b * T * C, T, C, j * cc, cc, N);
            for (int i = 0; i < cc; i++) {
                const fftwf_complex *H = Hf + (size_t)(j * cc + i) * L->KR;
                float *Ri = R + (size_t)i * L->NR;
                fftwf_execute_dft_r2c(e->r2c, Ri, X);
                for (int k = 0; k < K; k++) {
                    float xr = X[k][0], xi = X[k][1], hr = H[k][0], hi = H[k][1];
                    X[k][0] = xr * hr - xi * hi;
                    X[k][1] = xr * hi + xi * hr;
                }
                fftwf_execute_dft_c2r(e->c2r, X, Ri);
            }
            longconv_pad_out(z + (size_t)b * T * C, C, j * cc, R, L->NR, T, cc, 0);
        }
}

static void longconv_forward(const struct mixer *m, float *y, float *saved, const float *x,
                            const float *params, int B, int T)
{
    MX_ASSERT(T >= 1 && T <= m->T_max);
    const struct longconv_cfg *cfg = m->cfg;
    size_t BTC = (size_t)B * T * m->C;
    struct longconv_params p = longconv_bind(m, params);
    struct longconv_layout L;
    longconv_layout(m, B, T, m->scratch, &L);
    float *z = saved;                                   /* (B,T,C) */
    float *u = cfg->vproj ? saved + BTC : (float *)x;   /* (B,T,C) */
    if (cfg->vproj)
        mx_linear_forward(u, x, p.w_v, p.b_v, B * T, m->C, m->C);
    const struct longconv_entry *e = longconv_entry_get(m, &L, T);
    const fftwf_complex *Hf = longconv_filter_spectrum(m, &L, e, p.h, T);
    longconv_conv_fft(m, &L, e, Hf, z, u, B, T);
    mx_linear_forward(y, z, p.w_proj, p.b_proj, B * T, m->C, m->C);
}

/* Backward of z = h * u (causal conv along t, per channel):
 *   du[t] = Σ_{s>=0} h[s] dz[t+s]   — correlation with the filter (the conv's transpose is the
 *            conv with the time-flipped filter, anti-causal), by FFT as IDFT(conj(H)·DZ);
 *   dh[s] = Σ_b Σ_{t>=s} dz[t] u[t-s] — correlation of dz with u, IDFT(conj(U)·DZ).
 * WHY conj: for real a, b, IDFT(conj(A)·B)[s] = Σ_t a[t] b[(t+s) mod N] (correlation), and with
 * N >= 2T-1 and zeros beyond T the index t+s <= 2T-2 never wraps. The batch sum of dh is taken
 * in the frequency domain (linear), per channel in fixed b order: deterministic. */
static void longconv_backward(const struct mixer *m, float *dx, float *dparams, const float *dy,
                             const float *saved, const float *x, const float *params, int B, int T)
{
    const struct longconv_cfg *cfg = m->cfg;
    int C = m->C;
    size_t BTC = (size_t)B * T * C;
    struct longconv_params p = longconv_bind(m, params);
    struct longconv_params dp = longconv_bind(m, dparams);
    struct longconv_layout L;
    longconv_layout(m, B, T, m->scratch, &L);
    const float *z = saved;                          /* (B,T,C) */
    const float *u = cfg->vproj ? saved + BTC : x;   /* (B,T,C) */
    float *dz = L.dz;                                /* (B,T,C) */
    float *du = cfg->vproj ? L.du : dx;              /* (B,T,C): overwritten / accumulated */

    memset(dz, 0, BTC * sizeof(float));
    mx_linear_backward(dz, (float *)dp.w_proj, (float *)dp.b_proj, dy, z, p.w_proj, B * T, C, C);

    const struct longconv_entry *e = longconv_entry_get(m, &L, T);
    const fftwf_complex *Hf = longconv_filter_spectrum(m, &L, e, p.h, T);
    int cc = L.cc, nch = L.nch, N = L.N, K = L.K, learned = cfg->learned, acc = !cfg->vproj;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int j = 0; j < nch; j++) {
            float *R = unit_R(&L, b, j);
            fftwf_complex *X1 = unit_X1(&L, b, j), *X2 = unit_X2(&L, b, j);
            if (learned) { /* X2 rows <- U, the spectra of this chunk's u */
                longconv_pad_in(R, L.NR, u + (size_t)b * T * C, T, C, j * cc, cc, N);
                for (int i = 0; i < cc; i++)
                    fftwf_execute_dft_r2c(e->r2c, R + (size_t)i * L.NR, X2 + (size_t)i * L.KR);
            }
            longconv_pad_in(R, L.NR, dz + (size_t)b * T * C, T, C, j * cc, cc, N);
            for (int i = 0; i < cc; i++) {
                const fftwf_complex *H = Hf + (size_t)(j * cc + i) * L.KR;
                fftwf_complex *Ui = X2 + (size_t)i * L.KR;
                float *Ri = R + (size_t)i * L.NR;
                fftwf_execute_dft_r2c(e->r2c, Ri, X1); /* X1 <- DZ */
                if (learned)
                    for (int k = 0; k < K; k++) { /* Ui <- conj(U)·DZ */
                        float ur = Ui[k][0], ui = Ui[k][1], gr = X1[k][0], gi = X1[k][1];
                        Ui[k][0] = ur * gr + ui * gi;
                        Ui[k][1] = ur * gi - ui * gr;
                    }
                for (int k = 0; k < K; k++) { /* X1 <- conj(H)·DZ */
                    float gr = X1[k][0], gi = X1[k][1], hr = H[k][0], hi = H[k][1];
                    X1[k][0] = hr * gr + hi * gi;
                    X1[k][1] = hr * gi - hi * gr;
                }
                fftwf_execute_dft_c2r(e->c2r, X1, Ri);
            }
            longconv_pad_out(du + (size_t)b * T * C, C, j * cc, R, L.NR, T, cc, acc);
        }
    if (learned) {
        float *dh = (float *)dp.h; /* (C,T_max); taps >= T get no gradient from this call */
        const float inv_n = 1.0f / (float)N;
#pragma omp parallel for schedule(static)
        for (int j = 0; j < nch; j++)
            for (int i = 0; i < cc; i++) {
                fftwf_complex *S = unit_X2(&L, 0, j) + (size_t)i * L.KR;
                for (int b = 1; b < B; b++) {
                    const fftwf_complex *Xb = unit_X2(&L, b, j) + (size_t)i * L.KR;
                    for (int k = 0; k < K; k++) {
                        S[k][0] += Xb[k][0];
                        S[k][1] += Xb[k][1];
                    }
                }
                float *R = unit_R(&L, 0, j); /* its first row as a temporary */
                fftwf_execute_dft_c2r(e->c2r, S, R);
                float *row = dh + (size_t)(j * cc + i) * m->T_max;
                for (int s = 0; s < T; s++)
                    row[s] += R[s] * inv_n;
            }
    }
    if (cfg->vproj)
        mx_linear_backward(dx, (float *)dp.w_v, (float *)dp.b_v, du, x, p.w_v, B * T, C, C);
}

/* Generation state: the (value-projected) input history U (T_max,C); for filter=fixed the taps
 * (C,T_max), generated at t = 0; then u_t and z_t (C each). The step is the exact direct form
 * z_t[c] = Σ_{s<=t} h[c,s] U[t-s,c]: O(t·C) per token (O(T²·C) for a whole generation; the FFT
 * only pays off over a whole sequence), followed by c_proj. It is also the naive reference the
 * FFT forward is checked against (step == forward in the generic suite). */
static size_t longconv_state_floats(const struct mixer *m)
{
    const struct longconv_cfg *cfg = m->cfg;
    size_t TC = (size_t)m->T_max * m->C;
    return TC + (cfg->learned ? 0 : TC) + 2 * (size_t)m->C;
}

static void longconv_step(const struct mixer *m, float *y_t, float *state, const float *x_t,
                         const float *params, int t)
{
    const struct longconv_cfg *cfg = m->cfg;
    MX_ASSERT(t >= 0 && t < m->T_max);
    int C = m->C, Tm = m->T_max;
    size_t TC = (size_t)Tm * C;
    struct longconv_params p = longconv_bind(m, params);
    float *U = state;                                   /* (T_max,C) */
    float *taps = cfg->learned ? NULL : state + TC;     /* (C,T_max) */
    float *ut = state + TC + (cfg->learned ? 0 : TC);   /* (C) */
    float *zt = ut + C;                                 /* (C) */
    if (taps && t == 0)
        for (int c = 0; c < C; c++)
            for (int s = 0; s < Tm; s++)
                taps[(size_t)c * Tm + s] = longconv_fixed_tap(c, C, Tm, s);
    const float *h = taps ? taps : p.h;
    if (cfg->vproj)
        mx_linear_forward(ut, x_t, p.w_v, p.b_v, 1, C, C);
    else
        memcpy(ut, x_t, (size_t)C * sizeof(float));
    memcpy(U + (size_t)t * C, ut, (size_t)C * sizeof(float));
    for (int c = 0; c < C; c++) {
        const float *hc = h + (size_t)c * Tm;
        float acc = 0;
        for (int s = 0; s <= t; s++)
            acc += hc[s] * U[(size_t)(t - s) * C + c];
        zt[c] = acc;
    }
    mx_linear_forward(y_t, zt, p.w_proj, p.b_proj, 1, C, C);
}

/* WHY a tolerance, not bit-for-bit: every output of an FFT convolution is a sum over all N
 * frequency bins, each of which mixes all positions, so changing inputs after t changes the
 * rounding (not the value) of outputs at <= t, in the last bits. Measured (tests/mixers/test_longconv.c,
 * inputs after t perturbed by 3σ, max over t of max|Δy[<=t]| / max|y[<=t]|): 4e-7..9e-7 for
 * T = 20..1000, C = 16..64, both filters — float epsilon times a small factor, not growing with
 * T. 1e-5 leaves a 10x margin; a real leak is far above it (an FFT of 2T-3 instead of 2T-1, which
 * wraps the last input onto the first output, measured 2e-3..9e-2 and fails the suite). */
static const char *const longconv_tests[] = {"longconv", "longconv:filter=fixed",
                                             "longconv:filter=learned,vproj=0",
                                             "longconv:filter=fixed,vproj=0", NULL};

/* Per batch row and channel: the input's rFFT and the product's inverse (length N, the
 * zero-padded 2T-1 rounded to a fast size), the complex product (6 per bin); once per call and
 * channel the filter's rFFT. Backward: the same transforms for dx and (learned) dfilter: 2x. */
static void longconv_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd)
{
    double N = (double)fft_fast_size(2 * T - 1), C = m->C;
    double per = 2.0 * fft_rfft_flops(N) + 6.0 * (N / 2 + 1);
    double f = (double)B * C * per + C * fft_rfft_flops(N);
    *fwd = f;
    *bwd = 2.0 * f;
}

const struct mixer_ops longconv_ops = {
    .flops = longconv_flops,
    .name = "longconv",
    .summary = "longconv:filter=learned|fixed,vproj=1|0 — learned long convolution (Hyena/S4-style "
               "long filters, stored explicitly): value projection, per-channel causal convolution by "
               "zero-padded FFT (filter learned (C,T_max) taps, default, or fixed multi-scale exponential "
               "moving averages), output projection; old name 'fourier' still accepted; O(T log T)",
    .causal = 1,
    .test_specs = longconv_tests,
    .test_causal_tol = 1e-5,
    .parse = longconv_parse,
    .destroy = longconv_destroy,
    .tensors = longconv_tensors,
    .init = longconv_init,
    .saved_floats = longconv_saved_floats,
    .scratch_floats = longconv_scratch_floats,
    .forward = longconv_forward,
    .backward = longconv_backward,
    .state_floats = longconv_state_floats,
    .step = longconv_step,
};

