/* cuda_ctx.cu — the CUDA device context: device discovery, stream and cuBLAS handle, checked
 * allocation and copies (declared in cuda/cuda_ctx.h).
 * Not kernels (they sit beside the C they mirror: cuda/layers.cu, cuda/dense.cu) and
 * not a caching allocator: buffers are allocated once at start-up, as on the CPU. */
#include "cuda/cuda_ctx.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdlib.h>
#include <string.h>

#define MX_CUBLAS_CHECK(call)                                                                                \
    do {                                                                                                     \
        cublasStatus_t mx_cublas_rc_ = (call);                                                               \
        if (mx_cublas_rc_ != CUBLAS_STATUS_SUCCESS)                                                          \
            mx_fatal("cuBLAS error %d (%s) in %s at %s:%d", (int)mx_cublas_rc_,                              \
                     cublasGetStatusString(mx_cublas_rc_), #call, __FILE__, __LINE__);                       \
    } while (0)

int mx_cuda_available(void)
{
    /* WHY the explicit 0: without a driver cudaGetDeviceCount returns cudaErrorInsufficientDriver
     * (35) and leaves the count untouched (PLATFORM.md). */
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError(); /* reset the last-error slot so later checks start clean */
        return 0;
    }
    return n > 0 ? n : 0;
}

int mx_cuda_init(struct mx_cuda *c, struct mx_error *err)
{
    memset(c, 0, sizeof *c);
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess || n <= 0) {
        (void)cudaGetLastError();
        return mx_errorf(err,
                         "no CUDA device: cudaGetDeviceCount gave %d device(s), error %d (%s); "
                         "run on a machine with an NVIDIA GPU and driver, or use --device cpu",
                         n, (int)rc, rc == cudaSuccess ? "none" : cudaGetErrorString(rc));
    }
    c->device = 0;
    rc = cudaSetDevice(c->device);
    if (rc != cudaSuccess)
        return mx_errorf(err, "cannot use CUDA device %d: error %d (%s); use --device cpu", c->device,
                         (int)rc, cudaGetErrorString(rc));

    cudaDeviceProp p;
    MX_CUDA_CHECK(cudaGetDeviceProperties(&p, c->device));
    snprintf(c->name, sizeof c->name, "%s", p.name);
    c->cc_major = p.major;
    c->cc_minor = p.minor;
    c->sm_count = p.multiProcessorCount;
    c->smem_optin = p.sharedMemPerBlockOptin;
    c->global_bytes = p.totalGlobalMem;
    if (p.major < 8)
        return mx_errorf(err,
                         "CUDA device %d (%s) has compute capability %d.%d; mixlm is built for "
                         "8.0 and 9.0 (CMAKE_CUDA_ARCHITECTURES) and needs at least 8.0; use "
                         "--device cpu",
                         c->device, p.name, p.major, p.minor);

    const char *sync = getenv("MIXLM_CUDA_SYNC");
    c->debug_sync = sync && strcmp(sync, "0") != 0 && sync[0] != '\0';

    cudaStream_t s;
    MX_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    c->stream = (void *)s;
    cublasHandle_t h;
    cublasStatus_t st = cublasCreate(&h);
    if (st != CUBLAS_STATUS_SUCCESS) {
        cudaStreamDestroy(s);
        c->stream = NULL;
        return mx_errorf(err,
                         "cuBLAS could not start on %s: status %d (%s); check that the "
                         "CUDA Toolkit's libcublas matches the driver, or use --device cpu",
                         c->name, (int)st, cublasGetStatusString(st));
    }
    MX_CUBLAS_CHECK(cublasSetStream(h, s));
    c->cublas = (void *)h;
    return 0;
}

void mx_cuda_free(struct mx_cuda *c)
{
    if (c->stream)
        MX_CUDA_CHECK(cudaStreamSynchronize(MX_CUDA_STREAM(c))); /* queued work first */
    if (c->cublas)
        MX_CUBLAS_CHECK(cublasDestroy((cublasHandle_t)c->cublas));
    if (c->stream)
        MX_CUDA_CHECK(cudaStreamDestroy(MX_CUDA_STREAM(c)));
    c->cublas = NULL;
    c->stream = NULL;
}

void *mx_cuda_malloc(const struct mx_cuda *c, size_t bytes)
{
    (void)c;
    if (bytes == 0)
        bytes = 1; /* a distinct valid pointer, as mx_xmalloc */
    void *p = NULL;
    cudaError_t rc = cudaMalloc(&p, bytes);
    if (rc != cudaSuccess)
        mx_fatal("cudaMalloc of %zu bytes (%.1f MiB) failed: %s; reduce the batch, the context "
                 "or the model",
                 bytes, (double)bytes / (1024.0 * 1024.0), cudaGetErrorString(rc));
    return p;
}

void mx_cuda_dfree(const struct mx_cuda *c, void *dev)
{
    (void)c;
    if (dev)
        MX_CUDA_CHECK(cudaFree(dev));
}

void mx_cuda_upload(const struct mx_cuda *c, void *dev, const void *host, size_t bytes)
{
    if (bytes == 0)
        return;
    MX_CUDA_CHECK(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, MX_CUDA_STREAM(c)));
    MX_CUDA_CHECK(cudaStreamSynchronize(MX_CUDA_STREAM(c)));
}

void mx_cuda_download(const struct mx_cuda *c, void *host, const void *dev, size_t bytes)
{
    if (bytes == 0)
        return;
    MX_CUDA_CHECK(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, MX_CUDA_STREAM(c)));
    MX_CUDA_CHECK(cudaStreamSynchronize(MX_CUDA_STREAM(c)));
}

void mx_cuda_copy(const struct mx_cuda *c, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0)
        return;
    MX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, MX_CUDA_STREAM(c)));
}

void mx_cuda_fill_bytes(const struct mx_cuda *c, void *dev, int byte, size_t bytes)
{
    if (bytes == 0)
        return;
    MX_CUDA_CHECK(cudaMemsetAsync(dev, byte, bytes, MX_CUDA_STREAM(c)));
}

void mx_cuda_sync(const struct mx_cuda *c)
{
    MX_CUDA_CHECK(cudaStreamSynchronize(MX_CUDA_STREAM(c)));
}

void mx_cuda_describe(const struct mx_cuda *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s (sm_%d%d, %d SMs, %.1f GiB)", c->name, c->cc_major, c->cc_minor, c->sm_count,
             (double)c->global_bytes / (1024.0 * 1024.0 * 1024.0));
}
