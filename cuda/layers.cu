/* layers.cu — CUDA kernels for the elementwise layers of nn/layers.c (embedding, LayerNorm,
 * GELU, softmax cross-entropy) and the optimizer loops of train/train.c (AdamW with clipping
 * folded in, gradient norm), fp32, declared in cuda/layers_cuda.h. The C functions are the references.
 * Every reduction has a fixed order (no floating-point atomics), so results are bitwise
 * reproducible run to run on one GPU; they are NOT bitwise equal to the CPU (tree sums, CUDA's
 * expf/tanhf, fused multiply-adds): tests/cuda/test_cuda_layers.c states the tolerances.
 * Not matmuls and not tuned: straightforward kernels to be measured and improved on a GPU. */
#include "cuda/layers_cuda.h"

#include <cub/device/device_radix_sort.cuh>
#include <cuda_runtime.h>

#include <math.h>

#define ELT_THREADS 256
#define ROW_THREADS 256 /* block size of the one-block-per-row kernels (cross-entropy) */
#define WARP 32
/* LayerNorm dw/db: rows are cut into this many fixed chunks; a partial per chunk, summed in
 * chunk order. Fixed count => the work size depends on C only and the order on N only. */
#define LN_CHUNKS 128
#define LN_COL_THREADS 128
/* Gradient norm: a fixed grid, one double partial per block, then one block sums them. */
#define NORM_BLOCKS 512
#define NORM_THREADS 256

static unsigned elt_grid(const struct mx_cuda *c, size_t n, int threads)
{
    size_t want = (n + (size_t)threads - 1) / (size_t)threads;
    size_t cap = (size_t)(c->sm_count > 0 ? c->sm_count : 1) * 32;
    if (want > cap)
        want = cap; /* grid-stride loops cover the rest */
    return (unsigned)(want > 0 ? want : 1);
}

/* Butterfly sum over a warp: every lane gets the total, the order is fixed. */
__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = WARP / 2; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Tree reduction over a power-of-two block in shared memory: fixed order, result in sh[0]
 * for every thread after return. */
template <typename F, typename Op> __device__ __forceinline__ F block_reduce(F *sh, F v, Op op)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            sh[threadIdx.x] = op(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    F r = sh[0];
    __syncthreads(); /* sh may be reused by the caller right away */
    return r;
}

struct op_add_f {
    __device__ float operator()(float a, float b) const
    {
        return a + b;
    }
};
struct op_add_d {
    __device__ double operator()(double a, double b) const
    {
        return a + b;
    }
};
struct op_max_f {
    __device__ float operator()(float a, float b) const
    {
        return a > b ? a : b;
    }
};

/* ---- embedding -------------------------------------------------------------------------- */

__global__ void embed_forward_kernel(float *out, const int32_t *tok, const float *wte, const float *wpe,
                                     int T, int C, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t row = i / (size_t)C;
        int col = (int)(i - row * (size_t)C), t = (int)(row % (size_t)T);
        out[i] = wte[(size_t)tok[row] * C + col] + wpe[(size_t)t * C + col];
    }
}

void layer_cuda_embed_forward(const struct mx_cuda *c, float *out, const int32_t *tok, const float *wte,
                              const float *wpe, int B, int T, int C)
{
    size_t n = (size_t)B * T * C;
    if (n == 0)
        return;
    embed_forward_kernel<<<elt_grid(c, n, ELT_THREADS), ELT_THREADS, 0, MX_CUDA_STREAM(c)>>>(out, tok, wte,
                                                                                             wpe, T, C, n);
    MX_CUDA_LAUNCHED(c);
}

/* dwpe[t, c] += Σ_b dout[b, t, c], b ascending: the CPU's order, one writer per element. */
__global__ void embed_dwpe_kernel(float *dwpe, const float *dout, int B, int T, int C)
{
    size_t n = (size_t)T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float acc = dwpe[i];
        for (int b = 0; b < B; b++)
            acc += dout[(size_t)b * n + i];
        dwpe[i] = acc;
    }
}

__global__ void iota_kernel(int32_t *x, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        x[i] = i;
}

/* One block column per sorted position; only the first position of each token's run works:
 * it adds that token's rows in position order (stable sort) to dwte, one writer per row.
 * WHY: repeated token ids make dwte a scatter-add; sorting instead of atomics keeps the sum
 * order fixed (and equal to the CPU's), so training is reproducible. */
__global__ void embed_dwte_kernel(float *dwte, const float *dout, const uint32_t *key, const int32_t *pos,
                                  int N, int C)
{
    int i = blockIdx.x;
    if (i > 0 && key[i] == key[i - 1])
        return;
    uint32_t id = key[i];
    for (int col = blockIdx.y * blockDim.x + threadIdx.x; col < C; col += gridDim.y * blockDim.x) {
        float acc = dwte[(size_t)id * C + col];
        for (int j = i; j < N && key[j] == id; j++)
            acc += dout[(size_t)pos[j] * C + col];
        dwte[(size_t)id * C + col] = acc;
    }
}

static int key_bits(int V)
{
    int bits = 1;
    while (bits < 32 && ((uint64_t)1 << bits) < (uint64_t)V)
        bits++;
    return bits;
}

static size_t align256(size_t b)
{
    return (b + 255) & ~(size_t)255;
}

static size_t embed_sort_temp_bytes(int N, int V)
{
    size_t temp = 0;
    MX_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(NULL, temp, (const uint32_t *)NULL, (uint32_t *)NULL,
                                                  (const int32_t *)NULL, (int32_t *)NULL, N, 0, key_bits(V)));
    return temp;
}

size_t layer_cuda_embed_backward_work_bytes(const struct mx_cuda *c, int N, int V)
{
    (void)c;
    /* positions in, sorted keys, sorted positions, then cub's own temporary storage */
    return 3 * align256((size_t)N * sizeof(int32_t)) + align256(embed_sort_temp_bytes(N, V));
}

void layer_cuda_embed_backward(const struct mx_cuda *c, float *dwte, float *dwpe, void *work,
                               const float *dout, const int32_t *tok, int B, int T, int C, int V)
{
    int N = B * T;
    if (N == 0 || C == 0)
        return;
    cudaStream_t s = MX_CUDA_STREAM(c);
    size_t tc = (size_t)T * C;
    embed_dwpe_kernel<<<elt_grid(c, tc, ELT_THREADS), ELT_THREADS, 0, s>>>(dwpe, dout, B, T, C);
    MX_CUDA_LAUNCHED(c);

    char *w = (char *)work;
    size_t nb = align256((size_t)N * sizeof(int32_t));
    int32_t *pos_in = (int32_t *)w, *pos_out = (int32_t *)(w + 2 * nb);
    uint32_t *key_out = (uint32_t *)(w + nb);
    void *temp = w + 3 * nb;
    size_t temp_bytes = embed_sort_temp_bytes(N, V);
    iota_kernel<<<elt_grid(c, (size_t)N, ELT_THREADS), ELT_THREADS, 0, s>>>(pos_in, N);
    MX_CUDA_LAUNCHED(c);
    /* Token ids are >= 0, so their bits sort as unsigned; only the low key_bits(V) bits vary. */
    MX_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, (const uint32_t *)tok, key_out, pos_in,
                                                  pos_out, N, 0, key_bits(V), s));
    int cols = (C + ELT_THREADS - 1) / ELT_THREADS;
    embed_dwte_kernel<<<dim3((unsigned)N, (unsigned)cols), ELT_THREADS, 0, s>>>(dwte, dout, key_out, pos_out,
                                                                                N, C);
    MX_CUDA_LAUNCHED(c);
}

/* ---- LayerNorm: one warp per row --------------------------------------------------------- */

#define LN_ROWS_PER_BLOCK 8

__global__ void ln_forward_kernel(float *out, float *mean, float *rstd, const float *x, const float *w,
                                  const float *b, size_t N, int C)
{
    size_t row = (size_t)blockIdx.x * LN_ROWS_PER_BLOCK + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    if (row >= N)
        return;
    const float *xi = x + row * C;
    float s = 0;
    for (int col = lane; col < C; col += WARP)
        s += xi[col];
    float m = warp_sum(s) / C;
    /* Two passes (mean, then squared deviations) as the CPU: no E[x²]-E[x]² cancellation. */
    float v = 0;
    for (int col = lane; col < C; col += WARP) {
        float d = xi[col] - m;
        v += d * d;
    }
    v = warp_sum(v) / C;
    float r = 1.0f / sqrtf(v + 1e-5f);
    float *o = out + row * C;
    for (int col = lane; col < C; col += WARP)
        o[col] = (xi[col] - m) * r * w[col] + (b ? b[col] : 0.0f);
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

void layer_cuda_norm_forward(const struct mx_cuda *c, float *out, float *mean, float *rstd, const float *x,
                             const float *w, const float *b, size_t N, int C)
{
    if (N == 0)
        return;
    unsigned grid = (unsigned)((N + LN_ROWS_PER_BLOCK - 1) / LN_ROWS_PER_BLOCK);
    ln_forward_kernel<<<grid, LN_ROWS_PER_BLOCK * WARP, 0, MX_CUDA_STREAM(c)>>>(out, mean, rstd, x, w, b, N,
                                                                                C);
    MX_CUDA_LAUNCHED(c);
}

size_t layer_cuda_norm_work_floats(int C)
{
    return (size_t)LN_CHUNKS * 2 * C;
}

/* dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * w; += into dx. */
__global__ void ln_backward_dx_kernel(float *dx, const float *dout, const float *x, const float *mean,
                                      const float *rstd, const float *w, size_t N, int C)
{
    size_t row = (size_t)blockIdx.x * LN_ROWS_PER_BLOCK + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    if (row >= N)
        return;
    const float *xi = x + row * C, *di = dout + row * C;
    float m = mean[row], r = rstd[row];
    float s1 = 0, s2 = 0;
    for (int col = lane; col < C; col += WARP) {
        float xh = (xi[col] - m) * r, dxh = di[col] * w[col];
        s1 += dxh;
        s2 += dxh * xh;
    }
    s1 = warp_sum(s1) / C;
    s2 = warp_sum(s2) / C;
    float *dxi = dx + row * C;
    for (int col = lane; col < C; col += WARP) {
        float xh = (xi[col] - m) * r;
        dxi[col] += r * (di[col] * w[col] - s1 - xh * s2);
    }
}

/* part[k] = Σ over chunk k's rows of (dout * xhat, dout), one thread per column (coalesced). */
__global__ void ln_backward_part_kernel(float *part, const float *dout, const float *x, const float *mean,
                                        const float *rstd, size_t N, int C)
{
    int col = blockIdx.x * blockDim.x + threadIdx.x, k = blockIdx.y;
    if (col >= C)
        return;
    size_t per = (N + LN_CHUNKS - 1) / LN_CHUNKS;
    size_t r0 = (size_t)k * per, r1 = r0 + per < N ? r0 + per : N;
    float pw = 0, pb = 0;
    for (size_t i = r0; i < r1; i++) {
        float d = dout[i * C + col];
        pw += d * ((x[i * C + col] - mean[i]) * rstd[i]);
        pb += d;
    }
    part[(size_t)k * 2 * C + col] = pw;
    part[(size_t)k * 2 * C + C + col] = pb;
}

__global__ void ln_backward_sum_kernel(float *dw, float *db, const float *part, int C)
{
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= C)
        return;
    float sw = 0, sb = 0;
    for (int k = 0; k < LN_CHUNKS; k++) {
        sw += part[(size_t)k * 2 * C + col];
        sb += part[(size_t)k * 2 * C + C + col];
    }
    dw[col] += sw;
    if (db)
        db[col] += sb;
}

void layer_cuda_norm_backward(const struct mx_cuda *c, float *dx, float *dw, float *db, float *work,
                              const float *dout, const float *x, const float *mean, const float *rstd,
                              const float *w, size_t N, int C)
{
    if (N == 0)
        return;
    cudaStream_t s = MX_CUDA_STREAM(c);
    unsigned grid = (unsigned)((N + LN_ROWS_PER_BLOCK - 1) / LN_ROWS_PER_BLOCK);
    ln_backward_dx_kernel<<<grid, LN_ROWS_PER_BLOCK * WARP, 0, s>>>(dx, dout, x, mean, rstd, w, N, C);
    MX_CUDA_LAUNCHED(c);
    unsigned cols = (unsigned)((C + LN_COL_THREADS - 1) / LN_COL_THREADS);
    ln_backward_part_kernel<<<dim3(cols, LN_CHUNKS), LN_COL_THREADS, 0, s>>>(work, dout, x, mean, rstd, N, C);
    MX_CUDA_LAUNCHED(c);
    ln_backward_sum_kernel<<<cols, LN_COL_THREADS, 0, s>>>(dw, db, work, C);
    MX_CUDA_LAUNCHED(c);
}

/* ---- GELU (tanh approximation, GPT-2) ---------------------------------------------------- */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

__global__ void gelu_forward_kernel(float *out, const float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanhf(GELU_K * (v + 0.044715f * v * v * v)));
    }
}

void layer_cuda_gelu_forward(const struct mx_cuda *c, float *out, const float *x, size_t n)
{
    if (n == 0)
        return;
    gelu_forward_kernel<<<elt_grid(c, n, ELT_THREADS), ELT_THREADS, 0, MX_CUDA_STREAM(c)>>>(out, x, n);
    MX_CUDA_LAUNCHED(c);
}

__global__ void gelu_backward_kernel(float *dx, const float *dout, const float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        float u = GELU_K * (v + 0.044715f * v * v * v);
        float th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * v * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * v * v);
        dx[i] = dout[i] * g;
    }
}

void layer_cuda_gelu_backward(const struct mx_cuda *c, float *dx, const float *dout, const float *x, size_t n)
{
    if (n == 0)
        return;
    gelu_backward_kernel<<<elt_grid(c, n, ELT_THREADS), ELT_THREADS, 0, MX_CUDA_STREAM(c)>>>(dx, dout, x, n);
    MX_CUDA_LAUNCHED(c);
}

/* ---- softmax cross-entropy: one block per row --------------------------------------------- */

__global__ void ce_forward_kernel(float *lse, float *losses, const float *logits, const int32_t *targets,
                                  int V)
{
    __shared__ double shd[ROW_THREADS];
    __shared__ float shf[ROW_THREADS];
    size_t row = blockIdx.x;
    const float *l = logits + row * V;
    float mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x)
        mx = l[v] > mx ? l[v] : mx;
    mx = block_reduce(shf, mx, op_max_f());
    /* WHY subtract the max: exp of raw logits overflows; each thread sums its ~V/256 terms
     * in float (all in (0, 1]), the block adds the partials in double (the CPU sums in double). */
    float s = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x)
        s += expf(l[v] - mx);
    double tot = block_reduce(shd, (double)s, op_add_d());
    if (threadIdx.x == 0) {
        float r = mx + (float)log(tot);
        lse[row] = r;
        if (targets)
            losses[row] = r - l[targets[row]];
    }
}

/* Mean of the N losses in double: per-thread strided sums, then a tree; fixed order. */
__global__ void ce_mean_kernel(float *mean_loss, const float *losses, size_t N)
{
    __shared__ double sh[ROW_THREADS];
    double s = 0;
    for (size_t i = threadIdx.x; i < N; i += blockDim.x)
        s += losses[i];
    s = block_reduce(sh, s, op_add_d());
    if (threadIdx.x == 0)
        *mean_loss = (float)(s / (double)N);
}

void layer_cuda_ce_forward(const struct mx_cuda *c, float *lse, float *losses, float *mean_loss,
                           const float *logits, const int32_t *targets, size_t N, int V)
{
    if (N == 0)
        return;
    MX_ASSERT(N <= 0x7fffffffu);
    cudaStream_t s = MX_CUDA_STREAM(c);
    ce_forward_kernel<<<(unsigned)N, ROW_THREADS, 0, s>>>(lse, losses, logits, targets, V);
    MX_CUDA_LAUNCHED(c);
    if (targets) {
        ce_mean_kernel<<<1, ROW_THREADS, 0, s>>>(mean_loss, losses, N);
        MX_CUDA_LAUNCHED(c);
    }
}

__global__ void ce_backward_kernel(float *logits, const float *lse, const int32_t *targets, int V,
                                   float scale)
{
    size_t row = blockIdx.x;
    float *l = logits + row * V;
    float r = lse[row];
    int tgt = targets[row];
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float g = expf(l[v] - r) * scale;
        l[v] = v == tgt ? g - scale : g; /* one writer per element: the onehot in the same thread */
    }
}

void layer_cuda_ce_backward(const struct mx_cuda *c, float *logits, const float *lse, const int32_t *targets,
                            size_t N, int V, float scale)
{
    if (N == 0)
        return;
    MX_ASSERT(N <= 0x7fffffffu);
    ce_backward_kernel<<<(unsigned)N, ROW_THREADS, 0, MX_CUDA_STREAM(c)>>>(logits, lse, targets, V, scale);
    MX_CUDA_LAUNCHED(c);
}

/* ---- AdamW, gradient norm, scale --------------------------------------------------------- */

__global__ void adamw_kernel(float *p, float *m, float *v, const float *g, size_t n, float lr, float b1,
                             float b2, float eps, float wd, float gs, float bc1, float bc2)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float gi = g[i] * gs;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        /* Decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW and the CPU. */
        p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
    }
}

void layer_cuda_adamw(const struct mx_cuda *c, float *p, float *m, float *v, const float *g, size_t n,
                      double lr, double beta1, double beta2, double eps, double weight_decay,
                      float grad_scale, long t)
{
    if (n == 0)
        return;
    /* Bias corrections in double on the host, then float: exactly the CPU's values. */
    float bc1 = (float)(1.0 - pow(beta1, (double)t)), bc2 = (float)(1.0 - pow(beta2, (double)t));
    adamw_kernel<<<elt_grid(c, n, ELT_THREADS), ELT_THREADS, 0, MX_CUDA_STREAM(c)>>>(
        p, m, v, g, n, (float)lr, (float)beta1, (float)beta2, (float)eps, (float)weight_decay, grad_scale,
        bc1, bc2);
    MX_CUDA_LAUNCHED(c);
}

size_t layer_cuda_grad_norm_work_bytes(void)
{
    return NORM_BLOCKS * sizeof(double);
}

__global__ void sumsq_part_kernel(double *part, const float *g, size_t n)
{
    __shared__ double sh[NORM_THREADS];
    double s = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        s += (double)g[i] * g[i];
    s = block_reduce(sh, s, op_add_d());
    if (threadIdx.x == 0)
        part[blockIdx.x] = s;
}

__global__ void sumsq_final_kernel(double *norm, const double *part)
{
    __shared__ double sh[NORM_BLOCKS];
    double s = block_reduce(sh, part[threadIdx.x], op_add_d());
    if (threadIdx.x == 0)
        *norm = sqrt(s);
}

void layer_cuda_grad_norm(const struct mx_cuda *c, double *norm, void *work, const float *g, size_t n)
{
    cudaStream_t s = MX_CUDA_STREAM(c);
    /* Always NORM_BLOCKS blocks (some may see no element): the partition, hence the sum
     * order, depends on n only, never on the device. */
    sumsq_part_kernel<<<NORM_BLOCKS, NORM_THREADS, 0, s>>>((double *)work, g, n);
    MX_CUDA_LAUNCHED(c);
    sumsq_final_kernel<<<1, NORM_BLOCKS, 0, s>>>(norm, (const double *)work);
    MX_CUDA_LAUNCHED(c);
}

__global__ void scale_kernel(float *x, size_t n, float s)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] *= s;
}

void layer_cuda_scale(const struct mx_cuda *c, float *x, size_t n, float s)
{
    if (n == 0)
        return;
    scale_kernel<<<elt_grid(c, n, ELT_THREADS), ELT_THREADS, 0, MX_CUDA_STREAM(c)>>>(x, n, s);
    MX_CUDA_LAUNCHED(c);
}
