/* none.c — dist.h for a build without MPI: one process, every collective an identity. Its one
 * real job is to refuse a launch by mpirun/srun of several copies of a binary that cannot talk
 * to each other. Not an MPI emulation. */
#include "train/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first launcher variable saying this process is one of several, or NULL. */
static const char *launched_many(long *n)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS",
                                 "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && (*n = strtol(v, NULL, 10)) > 1)
            return vars[i];
    }
    return NULL;
}

int dist_init(struct dist *d, struct mx_error *err)
{
    memset(d, 0, sizeof *d);
    d->size = d->local_size = 1;
    snprintf(d->library, sizeof d->library, "none");
    long n = 0;
    const char *var = launched_many(&n);
    if (var)
        return mx_errorf(err,
                         "started as one of %ld processes (%s=%ld) but this mixlm was built without MPI, so "
                         "each would train alone and overwrite the same run directory; rebuild with MPI "
                         "(apt-get install libopenmpi-dev openmpi-bin, then cmake -DMIXLM_MPI=ON) or start "
                         "one process",
                         n, var, n);
    return 0;
}

void dist_finish(struct dist *d, int failed)
{
    (void)d;
    (void)failed;
}

int dist_check_same(struct dist *d, uint64_t h, const char *what, struct mx_error *err)
{
    (void)d, (void)h, (void)what, (void)err;
    return 0;
}

void dist_bcast(struct dist *d, void *buf, size_t bytes)
{
    (void)d, (void)buf, (void)bytes;
}

void dist_sum(struct dist *d, double *v, int n)
{
    (void)d, (void)v, (void)n;
}

int dist_agree_stop(struct dist *d, int stop)
{
    (void)d;
    return stop;
}

void dist_grads_arm(struct dist *d, float *grads)
{
    (void)d, (void)grads;
}

void dist_grads_ready(void *dist, size_t off, size_t n)
{
    (void)dist, (void)off, (void)n;
}

void dist_grads_wait(struct dist *d)
{
    (void)d;
}
