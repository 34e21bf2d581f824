/* linear.c — the BLAS-backed linear layer shared by the model and the attention projections.
 * Weights (out,in) row-major as PyTorch stores them. Not a general matmul wrapper. */
#include "nn/nn.h"
#include "core/core.h"

#include <cblas.h>

void mx_linear_forward(float *y, const float *x, const float *w, const float *b, int N, int in, int out)
{
    if (b) {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < out; o++)
                y[(size_t)n * out + o] = b[o];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, x, in, w, in,
                b ? 1.0f : 0.0f, y, out);
}

static void linear_backward(float *dx, float beta, float *dw, float *db, const float *dy, const float *x,
                            const float *w, int N, int in, int out)
{
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, dy, out, w, in,
                    beta, dx, in);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, 1.0f, dy, out, x, in, 1.0f,
                dw, in);
    if (db) {
        for (int n = 0; n < N; n++) {
            const float *row = dy + (size_t)n * out;
            for (int o = 0; o < out; o++)
                db[o] += row[o];
        }
    }
}

void mx_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const float *w, int N, int in, int out)
{
    linear_backward(dx, 1.0f, dw, db, dy, x, w, N, in, out);
}

void mx_linear_backward_set(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, int N, int in, int out)
{
    linear_backward(dx, 0.0f, dw, db, dy, x, w, N, in, out);
}
