/* layers.c — embedding, LayerNorm, GELU, softmax cross-entropy and AdamW: the public entry
 * points (which run the SIMD kernels of the level in use, nn/isa/kernels_isa.c) and the naive
 * references (_ref) the kernels are tested against. OpenMP over rows; every reduction has a
 * fixed order so results are bitwise reproducible for a given thread count.
 * Not matmuls (nn/linear.c) and not the mixers (attention/). */
#include "nn/nn.h"

#include "core/core.h"
#include "nn/fastmath.h"
#include "nn/kernels.h"

#include <math.h>
#include <omp.h>
#include <string.h>

void layer_embed_forward_ref(float *out, const int32_t *tok, const float *wte, const float *wpe,
                         int B, int T, int C)
{
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *e = wte + (size_t)tok[(size_t)b * T + t] * C, *p = wpe + (size_t)t * C;
            for (int c = 0; c < C; c++)
                o[c] = e[c] + p[c];
        }
}

void layer_embed_backward_ref(float *dwte, float *dwpe, const float *dout, const int32_t *tok,
                          int B, int T, int C)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            float *e = dwte + (size_t)tok[(size_t)b * T + t] * C, *p = dwpe + (size_t)t * C;
            for (int c = 0; c < C; c++) {
                e[c] += d[c];
                p[c] += d[c];
            }
        }
}

void layer_norm_forward_ref(float *out, float *mean, float *rstd, const float *x, const float *w,
                        const float *b, size_t N, int C)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) {
        const float *xi = x + i * C;
        float m = 0;
        for (int c = 0; c < C; c++)
            m += xi[c];
        m /= C;
        float v = 0;
        for (int c = 0; c < C; c++) {
            float d = xi[c] - m;
            v += d * d;
        }
        v /= C;
        float r = 1.0f / sqrtf(v + 1e-5f);
        float *o = out + i * C;
        for (int c = 0; c < C; c++)
            o[c] = (xi[c] - m) * r * w[c] + (b ? b[c] : 0.0f);
        mean[i] = m;
        rstd[i] = r;
    }
}

/* Per-thread partial sums for dw/db: at most this many threads take part. */
#define LN_MAX_THREADS 64

size_t layer_norm_work_floats(int C)
{
    return (size_t)LN_MAX_THREADS * 2 * C;
}

void layer_norm_backward_ref(float *dx, float *dw, float *db, float *work, const float *dout,
                         const float *x, const float *mean, const float *rstd, const float *w,
                         size_t N, int C)
{
    int nt = omp_get_max_threads();
    if (nt > LN_MAX_THREADS)
        nt = LN_MAX_THREADS;
    /* One buffer per thread, summed in thread order afterwards: deterministic for a fixed
     * thread count, no atomics. Static schedule gives each thread a fixed row range. */
    float *part = work;
    memset(part, 0, (size_t)nt * 2 * C * sizeof(float));
#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num();
        float *pw = part + (size_t)tid * 2 * C, *pb = pw + C;
#pragma omp for schedule(static)
        for (size_t i = 0; i < N; i++) {
            const float *xi = x + i * C, *di = dout + i * C;
            float m = mean[i], r = rstd[i];
            /* dxhat = dout * w; dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
            float s1 = 0, s2 = 0;
            for (int c = 0; c < C; c++) {
                float xh = (xi[c] - m) * r;
                float dxh = di[c] * w[c];
                s1 += dxh;
                s2 += dxh * xh;
                pw[c] += di[c] * xh;
                pb[c] += di[c];
            }
            s1 /= C;
            s2 /= C;
            float *dxi = dx + i * C;
            for (int c = 0; c < C; c++) {
                float xh = (xi[c] - m) * r;
                dxi[c] += r * (di[c] * w[c] - s1 - xh * s2);
            }
        }
    }
    for (int t = 0; t < nt; t++) {
        const float *pw = part + (size_t)t * 2 * C, *pb = pw + C;
        for (int c = 0; c < C; c++) {
            dw[c] += pw[c];
            if (db)
                db[c] += pb[c];
        }
    }
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

void layer_gelu_forward_ref(float *out, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float u = GELU_K * (v + 0.044715f * v * v * v);
        out[i] = v / (1.0f + mx_expf(-2.0f * u));
    }
}

void layer_gelu_backward_ref(float *dx, const float *dout, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float u = GELU_K * (v + 0.044715f * v * v * v);
        float sg = 1.0f / (1.0f + mx_expf(-2.0f * u));
        float g = sg + 2.0f * v * sg * (1.0f - sg) * GELU_K * (1.0f + 3.0f * 0.044715f * v * v);
        dx[i] = dout[i] * g;
    }
}

float layer_ce_forward_ref(float *lse, float *losses, const float *logits, const int32_t *targets,
                       size_t N, int V)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) {
        const float *l = logits + i * V;
        float mx = l[0];
        for (int v = 1; v < V; v++)
            mx = l[v] > mx ? l[v] : mx;
        double s = 0;
        for (int v = 0; v < V; v++)
            s += exp((double)(l[v] - mx));
        float r = mx + (float)log(s);
        lse[i] = r;
        if (targets)
            losses[i] = targets[i] < 0 ? 0.0f : r - l[targets[i]];
    }
    return targets ? nn_ce_mean(losses, targets, N) : 0.0f;
}

float nn_ce_mean(const float *losses, const int32_t *targets, size_t N)
{
    /* Serial sum in double: the same value whatever the thread count. Ignored rows hold 0,
     * so the sum is the plain one; only the divisor changes (N when nothing is ignored: the
     * same bits as before ignored targets existed). */
    double total = 0;
    size_t counted = 0;
    for (size_t i = 0; i < N; i++) {
        total += losses[i];
        counted += targets[i] >= 0;
    }
    return counted ? (float)(total / (double)counted) : 0.0f;
}

void layer_ce_backward_ref(float *logits, const float *lse, const int32_t *targets, size_t N, int V,
                       float scale)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) {
        float *l = logits + i * V;
        float r = lse[i];
        if (targets[i] < 0) { /* ignored row: no gradient */
            memset(l, 0, (size_t)V * sizeof(float));
            continue;
        }
        for (int v = 0; v < V; v++)
            l[v] = expf(l[v] - r) * scale;
        l[targets[i]] -= scale;
    }
}

float layer_ce_fused_ref(float *logits, float *lse, float *losses, const int32_t *targets, size_t N, int V,
                         float scale)
{
    float mean = layer_ce_forward_ref(lse, losses, logits, targets, N, V);
    layer_ce_backward_ref(logits, lse, targets, N, V, scale);
    return mean;
}

void nn_adamw_ref(float *p, float *m, float *v, float *g, size_t n, const struct nn_adamw_hp *hp)
{
    const float b1 = hp->beta1, b2 = hp->beta2, flr = hp->lr, feps = hp->eps, wd = hp->weight_decay;
    const float bc1 = hp->bc1, bc2 = hp->bc2, grad_scale = hp->grad_scale;
#pragma omp for schedule(static) nowait
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale;
        g[i] = 0.0f;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float mhat = m[i] / bc1, vhat = v[i] / bc2;
        p[i] -= flr * (mhat / (sqrtf(vhat) + feps) + wd * p[i]);
    }
}

/* ---- the entry points: the kernel table of the level in use ------------------------------ */

void layer_embed_forward(float *out, const int32_t *tok, const float *wte, const float *wpe,
                         int B, int T, int C)
{
    mx_prof_push(MX_PROF_RESID);
    nn_kernels()->embed_forward(out, tok, wte, wpe, B, T, C);
    mx_prof_pop();
}

void layer_embed_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tok,
                          int B, int T, int C)
{
    mx_prof_push(MX_PROF_RESID);
    nn_kernels()->embed_backward(dwte, dwpe, dout, tok, B, T, C);
    mx_prof_pop();
}

void layer_norm_forward(float *out, float *mean, float *rstd, const float *x, const float *w,
                        const float *b, size_t N, int C)
{
    mx_prof_push(MX_PROF_NORM);
    nn_kernels()->layer_norm_forward(out, mean, rstd, x, w, b, N, C);
    mx_prof_pop();
}

void layer_norm_backward(float *dx, float *dw, float *db, float *work, const float *dout,
                         const float *x, const float *mean, const float *rstd, const float *w,
                         size_t N, int C)
{
    mx_prof_push(MX_PROF_NORM);
    nn_kernels()->layer_norm_backward(dx, dw, db, work, dout, x, mean, rstd, w, N, C);
    mx_prof_pop();
}

void layer_gelu_forward(float *out, const float *x, size_t n)
{
    mx_prof_push(MX_PROF_GELU);
    nn_kernels()->gelu_forward(out, x, n);
    mx_prof_pop();
}

void layer_gelu_backward(float *dx, const float *dout, const float *x, size_t n)
{
    mx_prof_push(MX_PROF_GELU);
    nn_kernels()->gelu_backward(dx, dout, x, n);
    mx_prof_pop();
}

float layer_ce_forward(float *lse, float *losses, const float *logits, const int32_t *targets,
                       size_t N, int V)
{
    mx_prof_push(MX_PROF_LOSS);
    float loss = nn_kernels()->ce_forward(lse, losses, logits, targets, N, V);
    mx_prof_pop();
    return loss;
}

void layer_ce_backward(float *logits, const float *lse, const int32_t *targets, size_t N, int V,
                       float scale)
{
    mx_prof_push(MX_PROF_LOSS);
    nn_kernels()->ce_backward(logits, lse, targets, N, V, scale);
    mx_prof_pop();
}

float layer_ce_fused(float *logits, float *lse, float *losses, const int32_t *targets, size_t N, int V,
                     float scale)
{
    mx_prof_push(MX_PROF_LOSS);
    float loss = nn_kernels()->ce_fused(logits, lse, losses, targets, N, V, scale);
    mx_prof_pop();
    return loss;
}

void nn_adamw(float *p, float *m, float *v, float *g, size_t n, const struct nn_adamw_hp *hp)
{
    nn_kernels()->adamw(p, m, v, g, n, hp);
}
