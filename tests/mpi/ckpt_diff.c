/* ckpt_diff.c — a tool of the mpi tests: the largest absolute difference between the parameters
 * (and the AdamW moments) of two checkpoints of the same model, printed as
 * "params D moments D". Exit 0 when both load and match in layout, 1 otherwise.
 * Not a test by itself (test_mpi_train.sh sets the tolerance). */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct loaded {
    struct mx_model m;
    float *am, *av;
};

static int load(const char *path, struct loaded *l, struct mx_error *err)
{
    struct mx_ckpt c;
    if (ckpt_open(&c, path, err) != 0)
        return -1;
    int rc = ckpt_load_model(&c, &l->m, err);
    if (rc == 0) {
        l->am = mx_xcalloc(l->m.n_params * sizeof(float));
        l->av = mx_xcalloc(l->m.n_params * sizeof(float));
        rc = ckpt_load_moments(&c, &l->m, l->am, l->av, err);
    }
    ckpt_close(&c);
    return rc;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double x = fabs((double)a[i] - (double)b[i]);
        if (!(x <= d)) /* NaN counts as the largest */
            d = x;
    }
    return d;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ckpt_diff A.safetensors B.safetensors\n");
        return 2;
    }
    struct loaded a, b;
    struct mx_error err;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    if (load(argv[1], &a, &err) != 0 || load(argv[2], &b, &err) != 0) {
        fprintf(stderr, "ckpt_diff: %s\n", err.msg);
        return 1;
    }
    if (a.m.n_params != b.m.n_params) {
        fprintf(stderr, "ckpt_diff: %zu vs %zu parameters\n", a.m.n_params, b.m.n_params);
        return 1;
    }
    double dm = max_diff(a.am, b.am, a.m.n_params), dv = max_diff(a.av, b.av, a.m.n_params);
    printf("params %.3g moments %.3g\n", max_diff(a.m.params, b.m.params, a.m.n_params), dm > dv ? dm : dv);
    mx_free(a.am), mx_free(a.av), mx_free(b.am), mx_free(b.av);
    model_free(&a.m);
    model_free(&b.m);
    return 0;
}
