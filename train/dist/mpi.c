/* mpi.c — dist.h over MPI: one rank per process, gradients summed with non-blocking
 * all-reduces (MPI_Iallreduce, in place) started bucket by bucket while backward runs, the
 * small reductions (losses, stop requests, hashes) blocking. MPI's default error handler
 * (errors are fatal) stays: a rank that dies ends the job through the launcher.
 * Not the choice of micro-batches or of who writes files (train.c). */
#include "train/dist.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Launcher variables: mpirun/mpiexec (OpenMPI, PMI, PMIx) and Slurm's srun. */
static int launched(void)
{
    const char *s = getenv("SLURM_STEP_NUM_TASKS");
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK") ||
           (s && strtol(s, NULL, 10) > 1);
}

int dist_init(struct dist *d, struct mx_error *err)
{
    memset(d, 0, sizeof *d);
    d->size = d->local_size = 1;
    snprintf(d->library, sizeof d->library, "none (not started by mpirun/srun)");
    /* WHY only under a launcher: a singleton MPI_Init costs start-up time and can print
     * network warnings; a plain `mixlm train` must behave as in a build without MPI. */
    if (!launched())
        return 0;
    int provided = 0;
    /* FUNNELED: only the main thread calls MPI; OpenMP threads never do. */
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return mx_errorf(err, "MPI_Init_thread failed; check the MPI installation (mpirun --version)");
    d->mpi = 1;
    if (provided < MPI_THREAD_FUNNELED)
        return mx_errorf(err,
                         "the MPI library gives thread level %d, below MPI_THREAD_FUNNELED; use an MPI built "
                         "with thread support",
                         provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &d->local_size);
    MPI_Comm_free(&local);
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    v[strcspn(v, ",\n")] = 0;
    snprintf(d->library, sizeof d->library, "%.63s", v);
    d->req = mx_xcalloc(DIST_MAX_REQ * sizeof(MPI_Request));
    /* One progress line, one summary: the other ranks print errors only. */
    if (d->rank != 0 && !freopen("/dev/null", "w", stdout))
        return mx_errorf(err, "rank %d: cannot send stdout to /dev/null", d->rank);
    return 0;
}

void dist_finish(struct dist *d, int failed)
{
    if (!d->mpi)
        return;
    fflush(stdout);
    fflush(stderr);
    if (failed && d->size > 1)
        MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Finalize();
    mx_free(d->req);
    d->req = NULL;
    d->mpi = 0;
}

int dist_check_same(struct dist *d, uint64_t h, const char *what, struct mx_error *err)
{
    if (d->size < 2)
        return 0;
    uint64_t *all = mx_xmalloc((size_t)d->size * sizeof *all);
    double t0 = mx_now();
    MPI_Allgather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    d->wait_s += mx_now() - t0;
    int bad = -1;
    for (int r = 1; r < d->size && bad < 0; r++)
        if (all[r] != all[0])
            bad = r;
    int rc = 0;
    if (bad >= 0)
        rc = mx_errorf(err, "rank %d of %d has different %s than rank 0 (hash %016llx vs %016llx)", bad,
                       d->size, what, (unsigned long long)all[bad], (unsigned long long)all[0]);
    mx_free(all);
    return rc;
}

void dist_bcast(struct dist *d, void *buf, size_t bytes)
{
    if (d->size < 2)
        return;
    const size_t chunk = (size_t)1 << 30; /* MPI counts are int */
    for (size_t at = 0; at < bytes; at += chunk)
        MPI_Bcast((char *)buf + at, (int)(bytes - at < chunk ? bytes - at : chunk), MPI_BYTE, 0,
                  MPI_COMM_WORLD);
}

void dist_sum(struct dist *d, double *v, int n)
{
    if (d->size < 2)
        return;
    double t0 = mx_now();
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    d->wait_s += mx_now() - t0;
}

int dist_agree_stop(struct dist *d, int stop)
{
    if (d->size < 2)
        return stop;
    int v[2] = {stop > 0 ? stop : 0, stop < 0 ? -stop : 0};
    double t0 = mx_now();
    MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    d->wait_s += mx_now() - t0;
    return v[0] ? v[0] : -v[1];
}

void dist_grads_arm(struct dist *d, float *grads)
{
    d->grads = d->size > 1 ? grads : NULL;
    d->n_req = 0;
}

void dist_grads_ready(void *dist, size_t off, size_t n)
{
    struct dist *d = dist;
    if (!d->grads || n == 0)
        return;
    MPI_Request *req = d->req;
    double t0 = mx_now();
    const size_t chunk = (size_t)1 << 28; /* floats per request: MPI counts are int */
    for (size_t at = 0; at < n; at += chunk) {
        MX_ASSERT(d->n_req < DIST_MAX_REQ);
        MPI_Iallreduce(MPI_IN_PLACE, d->grads + off + at, (int)(n - at < chunk ? n - at : chunk), MPI_FLOAT,
                       MPI_SUM, MPI_COMM_WORLD, &req[d->n_req++]);
    }
    /* WHY test here: OpenMPI moves a non-blocking collective forward only inside MPI calls
     * (no progress thread by default); testing at every bucket lets the earlier buckets travel
     * while the next layers' backward computes. */
    int done;
    MPI_Testall(d->n_req, req, &done, MPI_STATUSES_IGNORE);
    d->wait_s += mx_now() - t0;
}

void dist_grads_wait(struct dist *d)
{
    if (!d->grads)
        return;
    double t0 = mx_now();
    MPI_Waitall(d->n_req, d->req, MPI_STATUSES_IGNORE);
    d->wait_s += mx_now() - t0;
    d->grads = NULL;
    d->n_req = 0;
}
