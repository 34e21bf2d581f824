/* train.h — AdamW, the learning-rate schedule, gradient clipping and the training loop with
 * evaluation, logging, atomic checkpoints, SIGINT/SIGTERM handling and exact resume.
 * Not argument parsing (cli/) and not sampling or full-pass evaluation (infer/). */
#ifndef MIXLM_TRAIN_H
#define MIXLM_TRAIN_H

#include "data/data.h"
#include "model/model.h"
#include "run/run.h"
#include "tokenizer/tokenizer.h"

/* struct mx_train_opts (the options a run stores) is run/'s; these keep the train_ names
 * for their callers and do what run_opts_default and run_opts_to_json do. */
void train_opts_default(struct mx_train_opts *o);
cJSON *train_opts_to_json(const struct mx_train_opts *o);

/* nanoGPT's schedule: linear warmup lr*(it+1)/(warmup+1) for it < warmup, then cosine from lr
 * to min_lr reaching min_lr at `steps`; it is 0-based. After an --extend-to (o->sched_from > 0),
 * from it = sched_from on: cosine from sched_lr to min_lr reaching min_lr at `steps`. */
double train_lr_at(const struct mx_train_opts *o, long it);

/* AdamW over the whole buffer (one parallel loop): g = grad * grad_scale (the clipping factor),
 * p -= lr*(mhat/(sqrt(vhat)+eps) + wd*p) with weight decay only where `decay` says (per
 * tensor); buffers are skipped. t is the 1-based step for bias correction. The gradients it
 * consumes are set to zero (one pass instead of a separate memset before the next step). */
void adamw_update(const struct mx_model *m, float *adam_m, float *adam_v, double lr, double beta1,
                  double beta2, double eps, double weight_decay, float grad_scale, long t);
/* Global L2 norm of the gradients (double accumulation in 64 fixed chunks summed in order:
 * the same value for any thread count). */
double grad_norm(const struct mx_model *m);
/* First tensor whose gradient or value is not finite, or NULL. */
const char *train_first_nonfinite(const struct mx_model *m);

/* A step whose loss or gradient norm is not finite stops training with the step and the first
 * non-finite tensor, unless o->skip_nonfinite allows it: then up to that many steps of the run
 * (counted across resumes, in the checkpoint) are skipped: their batch is consumed, nothing is
 * updated (AdamW's bias correction counts only the updates made), and a warning goes to stdout and
 * log.jsonl ("skipped_nonfinite": tensor); summary.json has the count. Test only:
 * MIXLM_FAULT_NAN_STEP=k[,k...] makes a gradient NaN at those 1-based steps.
 * Train from scratch (resume = 0) or continue the run in o->out (resume = 1; o holds the
 * stored options (run_load_opts) with the caller's overrides applied; o->extend_to > 0 moves
 * the run's end there, refused unless past the stored end, and stores the new schedule). Prints progress
 * to stdout, writes out/model.safetensors, out/log.jsonl, out/summary.json. Returns 0, or -1
 * with err filled; on SIGINT/SIGTERM saves a checkpoint and returns 1. */
struct dist;
/* ... over the ranks in d (train/dist.h; NULL: this process alone): o->grad_accum is then the
 * run's micro-batches per step over all ranks, a multiple of d->size; rank 0 alone writes.
 * Parameters are compared across ranks at the start, every o->check_sync steps and at the end. */
int train_run(struct mx_train_opts *o, int resume, struct dist *d, struct mx_error *err);

#endif
