/* dist.h — data-parallel training across processes: the one interface train.c calls, with
 * two implementations chosen by the build (MIXLM_MPI): dist/mpi.c over MPI (OpenMPI, Slurm's
 * srun) and dist/none.c, one process, where every call is a no-op or an identity. A process
 * is one rank; rank 0 alone writes the run directory (train.c decides that, not this file).
 * Not the training loop, not which micro-batch a rank runs (train.c). */
#ifndef MIXLM_TRAIN_DIST_H
#define MIXLM_TRAIN_DIST_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>

#define DIST_MAX_REQ 512 /* gradient buckets in flight at once (one per layer, a few more) */

struct dist {
    int rank, size; /* this process and the number of processes (1 when not launched by MPI) */
    int local_size; /* processes on this machine (for the default threads per rank) */
    int mpi;        /* 1 when MPI was initialised */
    /* the gradient all-reduce of one optimizer step (dist_grads_*) */
    float *grads; /* the buffer being reduced in place (NULL when not armed) */
    int n_req;
    void *req;        /* DIST_MAX_REQ MPI requests (mpi.c) */
    double wait_s;    /* seconds spent blocked in MPI (waits, tests and the small reductions) */
    char library[64]; /* "Open MPI v4.1.4" or "none": what the binary was built with */
};

/* Initialise: with MPI, MPI_Init_thread (funneled) when the process was started by a launcher
 * (mpirun/mpiexec: OMPI_COMM_WORLD_SIZE, PMI_SIZE/PMIX_RANK; srun: SLURM_STEP_NUM_TASKS), else
 * one process without touching MPI. Without MPI: one process, but an error when a launcher says
 * it started several (each would train alone and they would race on the run directory).
 * Ranks other than 0 have stdout sent to /dev/null (one progress line, not N); stderr stays. */
int dist_init(struct dist *d, struct mx_error *err);
/* End: MPI_Finalize after success; after a failure with several ranks, MPI_Abort (exit code 1):
 * the other ranks may be blocked in a collective that this rank will never join. */
void dist_finish(struct dist *d, int failed);
/* 0 when every rank passed the same h; else an error naming the first rank whose h differs
 * from rank 0's and `what` (collective: every rank returns the same). */
int dist_check_same(struct dist *d, uint64_t h, const char *what, struct mx_error *err);
/* Copy `bytes` bytes of buf from rank 0 to every rank (collective). */
void dist_bcast(struct dist *d, void *buf, size_t bytes);
/* Element-wise sum of v (n) over the ranks, in place, the result the same on every rank. */
void dist_sum(struct dist *d, double *v, int n);
/* Agree on a stop request: each rank passes its own (0 none, > 0 a signal number, < 0 a stop
 * of its own such as --stop-after); returns the largest signal any rank saw, else the smallest
 * negative value, else 0 (collective). */
int dist_agree_stop(struct dist *d, int stop);

/* The gradient all-reduce of one step, in buckets that start while backward still runs:
 * dist_grads_arm before the last backward of the step, model's grads_ready hook
 * (dist_grads_ready) for each range whose gradients are final, dist_grads_wait before the
 * optimizer reads them. After the wait grads holds the sum over the ranks (identical on every
 * rank). With one rank all three do nothing. */
void dist_grads_arm(struct dist *d, float *grads);
void dist_grads_ready(void *dist, size_t off, size_t n); /* grads[off, off+n) final on this rank */
void dist_grads_wait(struct dist *d);

#endif
