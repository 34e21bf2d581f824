/* cuda_ctx.h — the CUDA device context (device, stream, cuBLAS handle) passed down to every
 * device function, plus checked device allocation and copies. Usable from C: no CUDA header
 * is included here, device pointers are plain pointers and handles are void *.
 * Not a tensor library and not a backend switch: deciding cpu vs cuda is the caller's job,
 * once at start-up. No globals: two contexts may coexist. Built only with MIXLM_CUDA=ON
 * (library mixlm_cuda, cuda/cuda_ctx.cu); see cuda/README.md for what exists and what not. */
#ifndef MIXLM_CUDA_CTX_H
#define MIXLM_CUDA_CTX_H

#include <stddef.h>

/* core.h has no extern "C" guard of its own: include it inside ours, so .cu files (C++) that
 * reach core through this header link against the C functions. */
#ifdef __cplusplus
extern "C" {
#endif
#include "core/core.h"

struct mx_cuda {
    int device;     /* CUDA device index (0 for now) */
    void *stream;   /* cudaStream_t: every kernel and copy of this context runs on it, in order */
    void *cublas;   /* cublasHandle_t bound to `stream` */
    char name[256]; /* e.g. "NVIDIA H100 80GB HBM3" */
    int cc_major, cc_minor;
    int sm_count;
    size_t smem_optin;   /* largest dynamic shared memory a block may opt in to (bytes) */
    size_t global_bytes; /* device memory in bytes */
    /* 1: synchronise and check after every launch (MIXLM_CUDA_SYNC=1 in the environment),
     * so an asynchronous fault is reported at the kernel that caused it. Slow; for debugging. */
    int debug_sync;
};

/* Number of usable CUDA devices, 0 when there is none or no driver (cudaGetDeviceCount
 * returns error 35 and leaves the count alone on a machine without a driver: the count is
 * initialised to 0 first). Never aborts; safe on any machine. */
int mx_cuda_available(void);

/* Open device 0: create the stream and the cuBLAS handle, read the device's properties.
 * Returns 0, or -1 with err naming what is missing (no device, no driver, cuBLAS failure)
 * and the fix (run with --device cpu). c is overwritten; free with mx_cuda_free. */
int mx_cuda_init(struct mx_cuda *c, struct mx_error *err);
/* Destroy the handle and the stream (waits for queued work). Safe on a zeroed struct. */
void mx_cuda_free(struct mx_cuda *c);

/* Device memory. All exit 1 with context on failure (mx_fatal: a resource failure, as mx_xmalloc):
 * never return NULL for bytes > 0. mx_cuda_malloc returns 256-byte aligned memory. */
void *mx_cuda_malloc(const struct mx_cuda *c, size_t bytes);
void mx_cuda_dfree(const struct mx_cuda *c, void *dev); /* NULL is a no-op */
/* Host <-> device copies on the context's stream; they return when the copy is complete
 * (the host buffer may be reused at once; pageable memory). */
void mx_cuda_upload(const struct mx_cuda *c, void *dev, const void *host, size_t bytes);
void mx_cuda_download(const struct mx_cuda *c, void *host, const void *dev, size_t bytes);
/* Asynchronous on the stream: device-to-device copy, and a byte fill (memset semantics). */
void mx_cuda_copy(const struct mx_cuda *c, void *dst, const void *src, size_t bytes);
void mx_cuda_fill_bytes(const struct mx_cuda *c, void *dev, int byte, size_t bytes);
/* Wait for all work queued on the stream; exits 1 with context (mx_fatal) if any of it failed. */
void mx_cuda_sync(const struct mx_cuda *c);
/* One line about the device for logs: "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)". */
void mx_cuda_describe(const struct mx_cuda *c, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

/* ---- for .cu files only ------------------------------------------------------------------
 * MX_CUDA_CHECK(call): a CUDA runtime call that must succeed; on failure print the call, the
 * error name and string, file and line, then exit 1 (mx_fatal: a resource failure, not a bug).
 * MX_CUDA_LAUNCHED(c): after every kernel launch; checks the launch error and, with
 * c->debug_sync, synchronises so a fault is attributed to this kernel. */
#if defined(__CUDACC__)
#include <cuda_runtime.h>

#define MX_CUDA_CHECK(call)                                                                                  \
    do {                                                                                                     \
        cudaError_t mx_cuda_rc_ = (call);                                                                    \
        if (mx_cuda_rc_ != cudaSuccess)                                                                      \
            mx_fatal("CUDA error %d (%s: %s) in %s at %s:%d", (int)mx_cuda_rc_,                              \
                     cudaGetErrorName(mx_cuda_rc_), cudaGetErrorString(mx_cuda_rc_), #call, __FILE__,        \
                     __LINE__);                                                                              \
    } while (0)

#define MX_CUDA_LAUNCHED(c)                                                                                  \
    do {                                                                                                     \
        MX_CUDA_CHECK(cudaGetLastError());                                                                   \
        if ((c)->debug_sync)                                                                                 \
            MX_CUDA_CHECK(cudaStreamSynchronize((cudaStream_t)(c)->stream));                                 \
    } while (0)

#define MX_CUDA_STREAM(c) ((cudaStream_t)(c)->stream)
#endif

#endif
