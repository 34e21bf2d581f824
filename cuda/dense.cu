/* dense.cu — exact causal softmax attention on the GPU, fp32, the project's own
 * FlashAttention-style kernels (declared in cuda/dense_cuda.h): the forward streams key
 * tiles through shared memory with an online softmax and saves the row log-sum-exp; the
 * backward recomputes the probabilities from it, dK/dV in one kernel (per key tile) and dQ in
 * another (per query tile), so nothing is T×T and no output has two writers (no atomics).
 * Not tuned and not bf16/tensor cores yet: plain FFMA from shared memory; the reference is
 * attn_masked_ref_forward/backward (attention/attn_common.c). */
#include "cuda/dense_cuda.h"

#include <cuda_runtime.h>

#include <math.h>

/* Thread layout of every kernel here: a tile of TILE rows (queries in forward and dQ, keys in
 * dK/dV), 4 consecutive threads per row; thread `sub` of a row owns the columns j = sub + 4*jj
 * of the TILE-wide score row and the head dims d = sub + 4*dd of its output row.
 * WHY interleaved (sub + 4*x) rather than blocked columns: the 4 threads of a row then read 4
 * consecutive shared-memory words (4 banks), and rows are padded to D+1 / TILE+1 floats so the
 * 8 rows a warp holds land in different banks. The 4 threads of a row sit in one warp, so the
 * row's max and sum are two xor-shuffles and a __syncwarp orders their shared-memory row. */
template <int D, int TILE> struct dense_cfg {
    static constexpr int THREADS = 4 * TILE;
    static constexpr int DS = D + 1;    /* row stride of D-wide tiles in shared memory */
    static constexpr int TS = TILE + 1; /* row stride of TILE-wide score tiles */
    static constexpr int NJ = TILE / 4; /* score columns per thread */
    static constexpr int ND = D / 4;    /* head dims per thread */
    static constexpr size_t FWD_SMEM = (3 * TILE * DS + TILE * TS) * sizeof(float);
    static constexpr size_t DKDV_SMEM = (4 * TILE * DS + 2 * TILE + 2 * TILE * TS) * sizeof(float);
    static constexpr size_t DQ_SMEM = (4 * TILE * DS + TILE * TS) * sizeof(float);
};

/* Rows t0..t0+TILE-1 of a (T,D) matrix into shared memory (stride D+1), zeros past T. */
template <int D, int TILE>
__device__ __forceinline__ void load_tile(float *dst, const float *src, int t0, int T)
{
    typedef dense_cfg<D, TILE> K;
    for (int e = threadIdx.x; e < TILE * D; e += K::THREADS) {
        int row = e / D, col = e % D, t = t0 + row;
        dst[row * K::DS + col] = t < T ? src[(size_t)t * D + col] : 0.0f;
    }
}

__device__ __forceinline__ float quad_max(float v)
{
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

__device__ __forceinline__ float quad_sum(float v)
{
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

/* grid (query tiles, B*H). */
template <int D, int TILE>
__global__ void __launch_bounds__(4 * TILE)
    dense_fwd_kernel(float *o, float *lse, const float *q, const float *k, const float *v, int T, float scale)
{
    typedef dense_cfg<D, TILE> K;
    extern __shared__ float sm[];
    float *Qs = sm, *Ks = Qs + TILE * K::DS, *Vs = Ks + TILE * K::DS, *Ps = Vs + TILE * K::DS;
    const int r = threadIdx.x >> 2, sub = threadIdx.x & 3;
    const int qt = blockIdx.x, i0 = qt * TILE, i = i0 + r;
    const size_t bh = blockIdx.y, base = bh * (size_t)T * D;
    const float *Q = q + base, *Kg = k + base, *Vg = v + base;

    load_tile<D, TILE>(Qs, Q, i0, T);
    float acc[K::ND];
#pragma unroll
    for (int dd = 0; dd < K::ND; dd++)
        acc[dd] = 0.0f;
    float mrow = -INFINITY, lrow = 0.0f;

    for (int kt = 0; kt <= qt; kt++) {
        const int j0 = kt * TILE;
        __syncthreads(); /* everyone is done with the previous K/V tile (and Q is loaded) */
        load_tile<D, TILE>(Ks, Kg, j0, T);
        load_tile<D, TILE>(Vs, Vg, j0, T);
        __syncthreads();

        float s[K::NJ];
#pragma unroll
        for (int jj = 0; jj < K::NJ; jj++)
            s[jj] = 0.0f;
        for (int d = 0; d < D; d++) {
            float qd = Qs[r * K::DS + d];
#pragma unroll
            for (int jj = 0; jj < K::NJ; jj++)
                s[jj] += qd * Ks[(sub + 4 * jj) * K::DS + d];
        }
        float tmax = -INFINITY;
#pragma unroll
        for (int jj = 0; jj < K::NJ; jj++) {
            int j = j0 + sub + 4 * jj;
            s[jj] = (j <= i && j < T) ? s[jj] * scale : -INFINITY;
            tmax = fmaxf(tmax, s[jj]);
        }
        /* Finite: key j0 <= i0 <= i is allowed for every row of this tile (j0 < T too). */
        tmax = quad_max(tmax);
        /* WHY the online-softmax rescale: the running max grows tile by tile; earlier
         * exponentials and the accumulator were taken against the old max, multiplying them
         * by exp(m_old - m_new) puts everything on the new one (exp(-inf) = 0 the first time). */
        float mnew = fmaxf(mrow, tmax), corr = expf(mrow - mnew), psum = 0.0f;
#pragma unroll
        for (int jj = 0; jj < K::NJ; jj++) {
            float p = expf(s[jj] - mnew);
            Ps[r * K::TS + sub + 4 * jj] = p;
            psum += p;
        }
        lrow = lrow * corr + quad_sum(psum);
        mrow = mnew;
#pragma unroll
        for (int dd = 0; dd < K::ND; dd++)
            acc[dd] *= corr;
        __syncwarp();
        for (int j = 0; j < TILE; j++) {
            float p = Ps[r * K::TS + j];
#pragma unroll
            for (int dd = 0; dd < K::ND; dd++)
                acc[dd] += p * Vs[j * K::DS + sub + 4 * dd];
        }
    }
    if (i < T) {
        float inv = 1.0f / lrow;
        float *O = o + base + (size_t)i * D;
#pragma unroll
        for (int dd = 0; dd < K::ND; dd++)
            O[sub + 4 * dd] = acc[dd] * inv;
        if (sub == 0)
            lse[bh * T + i] = mrow + logf(lrow);
    }
}

/* delta[row] = dO_row · O_row = Σ_j p_j (dO·v_j): one warp per row of all B*H*T rows. */
template <int D>
__global__ void dense_delta_kernel(float *delta, const float *dout, const float *o, size_t rows)
{
    size_t row = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows)
        return;
    float s = 0.0f;
    for (int d = lane; d < D; d += 32)
        s += dout[row * D + d] * o[row * D + d];
    for (int off = 16; off > 0; off >>= 1)
        s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0)
        delta[row] = s;
}

/* dK, dV for one key tile, looping over the query tiles at or below the diagonal.
 * p = exp(s*scale - lse_i), ds = p (dO_i·v_j - delta_i) scale; dV_j += Σ_i p dO_i,
 * dK_j += Σ_i ds q_i. grid (key tiles, B*H). */
template <int D, int TILE>
__global__ void __launch_bounds__(4 * TILE)
    dense_dkdv_kernel(float *dk, float *dv, const float *dout, const float *lse, const float *delta,
                      const float *q, const float *k, const float *v, int T, float scale)
{
    typedef dense_cfg<D, TILE> K;
    extern __shared__ float sm[];
    float *Ks = sm, *Vs = Ks + TILE * K::DS, *Qs = Vs + TILE * K::DS, *dOs = Qs + TILE * K::DS;
    float *Ls = dOs + TILE * K::DS, *Dl = Ls + TILE, *Ps = Dl + TILE, *dSs = Ps + TILE * K::TS;
    const int r = threadIdx.x >> 2, sub = threadIdx.x & 3;
    const int kt = blockIdx.x, j0 = kt * TILE, j = j0 + r, nt = (T + TILE - 1) / TILE;
    const size_t bh = blockIdx.y, base = bh * (size_t)T * D;
    const float *Qg = q + base, *dOg = dout + base, *L = lse + bh * T, *Dg = delta + bh * T;

    load_tile<D, TILE>(Ks, k + base, j0, T);
    load_tile<D, TILE>(Vs, v + base, j0, T);
    float gk[K::ND], gv[K::ND];
#pragma unroll
    for (int dd = 0; dd < K::ND; dd++)
        gk[dd] = gv[dd] = 0.0f;

    for (int qt = kt; qt < nt; qt++) {
        const int i0 = qt * TILE;
        __syncthreads();
        load_tile<D, TILE>(Qs, Qg, i0, T);
        load_tile<D, TILE>(dOs, dOg, i0, T);
        for (int e = threadIdx.x; e < TILE; e += K::THREADS) {
            Ls[e] = i0 + e < T ? L[i0 + e] : 0.0f;
            Dl[e] = i0 + e < T ? Dg[i0 + e] : 0.0f;
        }
        __syncthreads();

        float s[K::NJ], dp[K::NJ];
#pragma unroll
        for (int ii = 0; ii < K::NJ; ii++)
            s[ii] = dp[ii] = 0.0f;
        for (int d = 0; d < D; d++) {
            float kd = Ks[r * K::DS + d], vd = Vs[r * K::DS + d];
#pragma unroll
            for (int ii = 0; ii < K::NJ; ii++) {
                s[ii] += Qs[(sub + 4 * ii) * K::DS + d] * kd;
                dp[ii] += dOs[(sub + 4 * ii) * K::DS + d] * vd;
            }
        }
#pragma unroll
        for (int ii = 0; ii < K::NJ; ii++) {
            int il = sub + 4 * ii, ig = i0 + il;
            bool ok = ig < T && j < T && j <= ig;
            float p = ok ? expf(s[ii] * scale - Ls[il]) : 0.0f;
            Ps[r * K::TS + il] = p;
            dSs[r * K::TS + il] = p * (dp[ii] - Dl[il]) * scale;
        }
        __syncwarp();
        for (int il = 0; il < TILE; il++) {
            float p = Ps[r * K::TS + il], ds = dSs[r * K::TS + il];
#pragma unroll
            for (int dd = 0; dd < K::ND; dd++) {
                gv[dd] += p * dOs[il * K::DS + sub + 4 * dd];
                gk[dd] += ds * Qs[il * K::DS + sub + 4 * dd];
            }
        }
    }
    if (j < T) {
        float *dK = dk + base + (size_t)j * D, *dV = dv + base + (size_t)j * D;
#pragma unroll
        for (int dd = 0; dd < K::ND; dd++) {
            dK[sub + 4 * dd] += gk[dd];
            dV[sub + 4 * dd] += gv[dd];
        }
    }
}

/* dQ for one query tile, looping over the key tiles at or below the diagonal (recomputing
 * s and dO·v: the price of having one writer per dQ element). grid (query tiles, B*H). */
template <int D, int TILE>
__global__ void __launch_bounds__(4 * TILE)
    dense_dq_kernel(float *dq, const float *dout, const float *lse, const float *delta, const float *q,
                    const float *k, const float *v, int T, float scale)
{
    typedef dense_cfg<D, TILE> K;
    extern __shared__ float sm[];
    float *Qs = sm, *dOs = Qs + TILE * K::DS, *Ks = dOs + TILE * K::DS, *Vs = Ks + TILE * K::DS;
    float *dSs = Vs + TILE * K::DS;
    const int r = threadIdx.x >> 2, sub = threadIdx.x & 3;
    const int qt = blockIdx.x, i0 = qt * TILE, i = i0 + r;
    const size_t bh = blockIdx.y, base = bh * (size_t)T * D;
    const float Li = i < T ? lse[bh * T + i] : 0.0f, Di = i < T ? delta[bh * T + i] : 0.0f;

    load_tile<D, TILE>(Qs, q + base, i0, T);
    load_tile<D, TILE>(dOs, dout + base, i0, T);
    float gq[K::ND];
#pragma unroll
    for (int dd = 0; dd < K::ND; dd++)
        gq[dd] = 0.0f;

    for (int kt = 0; kt <= qt; kt++) {
        const int j0 = kt * TILE;
        __syncthreads();
        load_tile<D, TILE>(Ks, k + base, j0, T);
        load_tile<D, TILE>(Vs, v + base, j0, T);
        __syncthreads();

        float s[K::NJ], dp[K::NJ];
#pragma unroll
        for (int jj = 0; jj < K::NJ; jj++)
            s[jj] = dp[jj] = 0.0f;
        for (int d = 0; d < D; d++) {
            float qd = Qs[r * K::DS + d], od = dOs[r * K::DS + d];
#pragma unroll
            for (int jj = 0; jj < K::NJ; jj++) {
                s[jj] += qd * Ks[(sub + 4 * jj) * K::DS + d];
                dp[jj] += od * Vs[(sub + 4 * jj) * K::DS + d];
            }
        }
#pragma unroll
        for (int jj = 0; jj < K::NJ; jj++) {
            int jl = sub + 4 * jj, jg = j0 + jl;
            bool ok = i < T && jg < T && jg <= i;
            float p = ok ? expf(s[jj] * scale - Li) : 0.0f;
            dSs[r * K::TS + jl] = p * (dp[jj] - Di) * scale;
        }
        __syncwarp();
        for (int jl = 0; jl < TILE; jl++) {
            float ds = dSs[r * K::TS + jl];
#pragma unroll
            for (int dd = 0; dd < K::ND; dd++)
                gq[dd] += ds * Ks[jl * K::DS + sub + 4 * dd];
        }
    }
    if (i < T) {
        float *dQ = dq + base + (size_t)i * D;
#pragma unroll
        for (int dd = 0; dd < K::ND; dd++)
            dQ[sub + 4 * dd] += gq[dd];
    }
}

/* Kernels above 48 KiB of shared memory must opt in; check the device allows it. */
static void set_smem(const struct mx_cuda *c, const void *kernel, size_t bytes)
{
    if (bytes > c->smem_optin)
        mx_fatal("attention kernel needs %zu bytes of shared memory per block, %s allows %zu", bytes, c->name,
                 c->smem_optin);
    MX_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

static void grid_check(int B, int H, int T)
{
    MX_ASSERT(B > 0 && H > 0 && T > 0);
    MX_ASSERT((size_t)B * H <= 65535); /* gridDim.y */
}

template <int D, int TILE>
static void forward_t(const struct mx_cuda *c, float *o, float *lse, const float *q, const float *k,
                      const float *v, int B, int H, int T)
{
    typedef dense_cfg<D, TILE> K;
    grid_check(B, H, T);
    set_smem(c, (const void *)dense_fwd_kernel<D, TILE>, K::FWD_SMEM);
    dim3 grid((unsigned)((T + TILE - 1) / TILE), (unsigned)(B * H));
    dense_fwd_kernel<D, TILE>
        <<<grid, K::THREADS, K::FWD_SMEM, MX_CUDA_STREAM(c)>>>(o, lse, q, k, v, T, 1.0f / sqrtf((float)D));
    MX_CUDA_LAUNCHED(c);
}

template <int D, int TILE>
static void backward_t(const struct mx_cuda *c, float *dq, float *dk, float *dv, float *work,
                       const float *dout, const float *o, const float *lse, const float *q, const float *k,
                       const float *v, int B, int H, int T)
{
    typedef dense_cfg<D, TILE> K;
    grid_check(B, H, T);
    cudaStream_t s = MX_CUDA_STREAM(c);
    const float scale = 1.0f / sqrtf((float)D);
    size_t rows = (size_t)B * H * T;
    dense_delta_kernel<D><<<(unsigned)((rows + 7) / 8), 256, 0, s>>>(work, dout, o, rows);
    MX_CUDA_LAUNCHED(c);
    dim3 grid((unsigned)((T + TILE - 1) / TILE), (unsigned)(B * H));
    set_smem(c, (const void *)dense_dkdv_kernel<D, TILE>, K::DKDV_SMEM);
    dense_dkdv_kernel<D, TILE>
        <<<grid, K::THREADS, K::DKDV_SMEM, s>>>(dk, dv, dout, lse, work, q, k, v, T, scale);
    MX_CUDA_LAUNCHED(c);
    set_smem(c, (const void *)dense_dq_kernel<D, TILE>, K::DQ_SMEM);
    dense_dq_kernel<D, TILE><<<grid, K::THREADS, K::DQ_SMEM, s>>>(dq, dout, lse, work, q, k, v, T, scale);
    MX_CUDA_LAUNCHED(c);
}

int attn_dense_cuda_supports(int D)
{
    return D == 32 || D == 64 || D == 128;
}

size_t attn_dense_cuda_saved_floats(int B, int H, int T)
{
    return (size_t)B * H * T;
}

size_t attn_dense_cuda_work_floats(int B, int H, int T)
{
    return (size_t)B * H * T;
}

/* WHY these tiles: 64 rows keep all three D=32/64 kernels' tiles under 100 KiB of shared
 * memory; D=128 uses 32-row tiles to stay under 75 KiB (A100 allows 163 KiB, H100 227 KiB).
 * To be tuned on a GPU. */
void attn_dense_cuda_forward(const struct mx_cuda *c, float *o, float *lse, const float *q, const float *k,
                             const float *v, int B, int H, int T, int D)
{
    MX_ASSERT(attn_dense_cuda_supports(D));
    switch (D) {
    case 32:
        forward_t<32, 64>(c, o, lse, q, k, v, B, H, T);
        break;
    case 64:
        forward_t<64, 64>(c, o, lse, q, k, v, B, H, T);
        break;
    default:
        forward_t<128, 32>(c, o, lse, q, k, v, B, H, T);
        break;
    }
}

void attn_dense_cuda_backward(const struct mx_cuda *c, float *dq, float *dk, float *dv, float *work,
                              const float *dout, const float *o, const float *lse, const float *q,
                              const float *k, const float *v, int B, int H, int T, int D)
{
    MX_ASSERT(attn_dense_cuda_supports(D));
    switch (D) {
    case 32:
        backward_t<32, 64>(c, dq, dk, dv, work, dout, o, lse, q, k, v, B, H, T);
        break;
    case 64:
        backward_t<64, 64>(c, dq, dk, dv, work, dout, o, lse, q, k, v, B, H, T);
        break;
    default:
        backward_t<128, 32>(c, dq, dk, dv, work, dout, o, lse, q, k, v, B, H, T);
        break;
    }
}
