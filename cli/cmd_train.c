/* cmd_train.c — `mixlm train`: flags -> struct mx_train_opts -> train_run. On --resume the
 * stored options are the base and only training flags may be changed; architecture flags
 * that differ from the checkpoint are refused. Not the loop itself (train/). */
#include "cli/args.h"
#include "cli/commands.h"
#include "train/dist.h"
#include "train/train.h"

#include <string.h>

static const char *usage =
    "usage: mixlm train --data FILE [options]          train a new run into --out\n"
    "       mixlm train --resume RUN_DIR               continue a run exactly where it stopped\n"
    "       mixlm train --resume RUN_DIR --extend-to N train on to step N (LR: see --extend-to)\n"
    "\n"
    "Trains a GPT decoder (nanoGPT's architecture) whose token mixer is chosen per layer.\n"
    "Example (nanoGPT's CPU 'baby' shakespeare_char config):\n"
    "  mixlm train --data input.txt --tokenizer char --layers 4 --heads 4 --dim 128 --context 64 \\\n"
    "      --batch 12 --steps 2000 --lr 1e-3 --min-lr 1e-4 --warmup 100 --beta2 0.99 \\\n"
    "      --weight-decay 0.1 --grad-clip 1 --eval-every 250 --eval-batches 20 --attn dense \\\n"
    "      --seed 1337 --threads 2 --out runs/baby\n"
    "Data-parallel over MPI (a build with MPI): mpirun -np N mixlm train ... (or srun) trains one model\n"
    "on N processes; each runs --grad-accum micro-batches of --batch per step (N x as many per step).\n"
    "Mixer specs (--attn, for all layers; --attn-layer L=SPEC overrides layer L):";

static void print_mixers(void)
{
    for (int i = 0; i < mixer_count(); i++)
        printf("  %s\n", mixer_at(i)->summary);
    printf("Outputs in --out: model.safetensors (checkpoint, written atomically), log.jsonl, summary.json,\n"
           "tokens.bin (the encoded data). Ctrl-C saves a checkpoint; --resume continues bit-exactly.\n");
}

int cmd_train(int argc, char **argv)
{
    struct mx_train_opts o;
    run_opts_default(&o);
    long layers = o.model.n_layer, heads = o.model.n_head, dim = o.model.n_embd, ctx = o.model.block_size;
    long steps = o.steps, batch = o.batch, accum = o.grad_accum, warmup = o.warmup, eval_every = o.eval_every;
    long eval_batches = o.eval_batches, log_every = o.log_every, ckpt_every = o.ckpt_every, threads = 0;
    long check_sync = o.check_sync;
    long seed = (long)o.model.seed;
    double lr = o.lr, min_lr = o.min_lr, beta1 = o.beta1, beta2 = o.beta2, wd = o.weight_decay, clip = o.grad_clip;
    double val_frac = o.val_frac;
    int bias = 0, quiet = 0, profile = 0;
    char posarg[16] = "learned";
    long stop_after = 0, extend_to = 0, skip_nonfinite = 0, align = 0;
    double time_budget = 0;
    char loss_on[16] = "all";
    char attn[MX_SPEC_MAX] = "dense", resume[512] = "";
    struct arg_list attn_layer = {0};
    struct arg a[] = {
        {"--data", ARG_STR, o.data, sizeof o.data, 0, 0, "training text file (any UTF-8 text; last 10% is validation)", 0},
        {"--out", ARG_STR, o.out, sizeof o.out, 0, 0, "run directory (default runs/default)", 0},
        {"--resume", ARG_STR, resume, sizeof resume, 0, 0, "continue the run in this directory", 0},
        {"--tokenizer", ARG_STR, o.tokenizer, sizeof o.tokenizer, 0, 0, "char | byte | spm:MODEL | bpe:N | unigram:N (default char)", 0},
        {"--layers", ARG_INT, &layers, 0, 1, MX_MAX_LAYERS, "number of blocks (default 4)", 0},
        {"--heads", ARG_INT, &heads, 0, 1, 1024, "attention heads (default 4)", 0},
        {"--dim", ARG_INT, &dim, 0, 1, 65536, "model width n_embd (default 128)", 0},
        {"--context", ARG_INT, &ctx, 0, 1, 1 << 22, "context length / block size (default 64)", 0},
        {"--attn", ARG_STR, attn, sizeof attn, 0, 0, "mixer spec for every layer (default dense)", 0},
        {"--attn-layer", ARG_LIST, &attn_layer, 0, 0, 0, "L=SPEC: mixer of layer L (repeatable)", 0},
        {"--bias", ARG_FLAG, &bias, 0, 0, 0, "biases in linear layers and LayerNorms (default off)", 0},
        {"--pos", ARG_STR, posarg, sizeof posarg, 0, 0, "learned | none | rope: GPT-2's learned absolute position embedding (default), none (NoPE: the causal mixers' order is the only position signal), or rope (rotary: q and k rotated by position, RoFormer; the kernel mixers rotate their features after the map, RoFormer 3.3; attention-family mixers only)", 0},
        {"--batch", ARG_INT, &batch, 0, 1, 1 << 20, "sequences per micro-batch (default 12)", 0},
        {"--grad-accum", ARG_INT, &accum, 0, 1, 1 << 16, "micro-batches per step and rank (default 1)", 0},
        {"--steps", ARG_INT, &steps, 0, 1, 1L << 40, "optimizer steps in total (default 2000)", 0},
        {"--lr", ARG_FLOAT, &lr, 0, 0, 10, "peak learning rate (default 1e-3)", 0},
        {"--min-lr", ARG_FLOAT, &min_lr, 0, 0, 10, "final learning rate of the cosine decay (default 1e-4)", 0},
        {"--warmup", ARG_INT, &warmup, 0, 0, 1L << 40, "linear warmup steps (default 100)", 0},
        {"--beta1", ARG_FLOAT, &beta1, 0, 0, 0.999999, "AdamW beta1 (default 0.9)", 0},
        {"--beta2", ARG_FLOAT, &beta2, 0, 0, 0.999999, "AdamW beta2 (default 0.99)", 0},
        {"--weight-decay", ARG_FLOAT, &wd, 0, 0, 10, "AdamW weight decay on matrices (default 0.1)", 0},
        {"--grad-clip", ARG_FLOAT, &clip, 0, 0, 1e9, "clip the global gradient norm (0 = off; default 1)", 0},
        {"--eval-every", ARG_INT, &eval_every, 0, 0, 1L << 40, "evaluate every N steps (0 = only at the end; default 250)", 0},
        {"--eval-batches", ARG_INT, &eval_batches, 0, 1, 1 << 20, "fixed validation batches per evaluation (default 20)", 0},
        {"--log-every", ARG_INT, &log_every, 0, 1, 1L << 40, "log.jsonl line every N steps (default 10)", 0},
        {"--ckpt-every", ARG_INT, &ckpt_every, 0, 0, 1L << 40, "checkpoint every N steps (0 = end only; default 500)", 0},
        {"--val-frac", ARG_FLOAT, &val_frac, 0, 0.0001, 0.9, "validation fraction at the end of the data (default 0.1)", 0},
        {"--seed", ARG_INT, &seed, 0, 0, (double)(1LL << 53), "seed for init, batches and mixer randomness (default 1337)", 0},
        {"--threads", ARG_INT, &threads, 0, 0, 1024, "threads for OpenMP and OpenBLAS (default: all cores, shared among the ranks on a machine)", 0},
        {"--check-sync", ARG_INT, &check_sync, 0, 0, 1L << 40, "MPI: compare the ranks' parameters every N steps (0 = start and end only; default 100)", 0},
        {"--quiet", ARG_FLAG, &quiet, 0, 0, 0, "no progress line (evaluations and the summary still print)", 0},
        {"--profile", ARG_FLAG, &profile, 0, 0, 0, "time each step by kind of work (matmuls, token mixing, layernorm, gelu, softmax-CE, embedding and residuals, optimizer, data) and print the mean per step at the end; also in summary.json", 0},
        {"--stop-after", ARG_INT, &stop_after, 0, 1, 1L << 40, "save and stop after N steps of this session (as Ctrl-C)", 0},
        {"--skip-nonfinite", ARG_INT, &skip_nonfinite, 0, 0, 1L << 40, "skip up to N steps of the run whose loss or gradients are not finite (no update; default 0: stop at the first)", 0},
        {"--align", ARG_INT, &align, 0, 0, 1 << 23, "windows start at multiples of N (data of N-token sequences, e.g. mixlm data recall: N = context + 1; default 0 = anywhere)", 0},
        {"--loss-on", ARG_STR, loss_on, sizeof loss_on, 0, 0, "all | recall: the loss of every position (default) or only the answers of `mixlm data recall` sequences (needs --align)", 0},
        {"--time-budget", ARG_FLOAT, &time_budget, 0, 0, 1e9, "end the run after this many seconds of training (evaluations excluded): final eval, checkpoint, summary (default 0 = off)", 0},
        {"--extend-to", ARG_INT, &extend_to, 0, 2, 1L << 40, "with --resume: train on to step N; the LR decays from its value now to --min-lr at N", 0},
    };
    int na = (int)(sizeof a / sizeof a[0]), npos;
    const char *pos[1];
    struct mx_error err;
    int rc = args_parse(argc, argv, a, na, pos, 0, &npos, usage, &err);
    if (rc == 1) {
        print_mixers();
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "mixlm train: %s\n", err.msg);
        return 2;
    }
    int is_resume = resume[0] != 0;
    if (is_resume) {
        /* Architecture and data are fixed by the checkpoint. */
        const char *fixed[] = {"--data", "--tokenizer", "--layers", "--heads", "--dim", "--context", "--attn",
                               "--attn-layer", "--bias", "--pos", "--seed", "--out", "--align",
                               "--loss-on"};
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
            if (args_given(a, na, fixed[i])) {
                fprintf(stderr, "mixlm train: %s cannot be changed when resuming (the checkpoint in '%s' fixes it); "
                                "drop the flag, or start a new run with --out\n", fixed[i], resume);
                return 2;
            }
        struct mx_train_opts s;
        run_opts_default(&s);
        if (run_load_opts(resume, &s, &err) != 0) {
            fprintf(stderr, "mixlm train: %s\n", err.msg);
            return 1;
        }
        /* The schedule and the data split are part of the run: a new total would recompute the
         * cosine (the LR jumps), a new --val-frac would move trained tokens into validation. */
        if (args_given(a, na, "--steps") && steps != s.steps) {
            fprintf(stderr, "mixlm train: --steps %ld differs from the run's %ld steps; the learning-rate schedule "
                            "is fixed by the run: to train further use --extend-to %ld (the LR decays smoothly "
                            "from its current value; see README), or drop --steps\n",
                    steps, s.steps, steps);
            return 2;
        }
        if (args_given(a, na, "--val-frac") && val_frac != s.val_frac) {
            fprintf(stderr, "mixlm train: --val-frac %g differs from the run's %g; changing it on resume would move "
                            "trained tokens into the validation split; drop --val-frac, or start a new run with "
                            "--out\n",
                    val_frac, s.val_frac);
            return 2;
        }
        s.extend_to = extend_to;
#define OVERRIDE(flag, field, value)                                                          \
    if (args_given(a, na, flag))                                                              \
        s.field = value;
        OVERRIDE("--batch", batch, (int)batch);
        OVERRIDE("--grad-accum", grad_accum, (int)accum);
        OVERRIDE("--lr", lr, lr);
        OVERRIDE("--min-lr", min_lr, min_lr);
        OVERRIDE("--warmup", warmup, warmup);
        OVERRIDE("--beta1", beta1, beta1);
        OVERRIDE("--beta2", beta2, beta2);
        OVERRIDE("--weight-decay", weight_decay, wd);
        OVERRIDE("--grad-clip", grad_clip, clip);
        OVERRIDE("--eval-every", eval_every, eval_every);
        OVERRIDE("--eval-batches", eval_batches, (int)eval_batches);
        OVERRIDE("--log-every", log_every, log_every);
        OVERRIDE("--ckpt-every", ckpt_every, ckpt_every);
        OVERRIDE("--threads", threads, (int)threads);
        OVERRIDE("--skip-nonfinite", skip_nonfinite, skip_nonfinite);
#undef OVERRIDE
        s.quiet = quiet;
        s.profile = profile;
        s.stop_after = stop_after;
        s.check_sync = check_sync;
        s.time_budget = time_budget;
        o = s;
    } else {
        if (args_given(a, na, "--extend-to")) {
            fprintf(stderr, "mixlm train: --extend-to moves the end of an existing run; use it with --resume "
                            "RUN_DIR (a new run takes --steps)\n");
            return 2;
        }
        if (!o.data[0]) {
            fprintf(stderr, "mixlm train: --data FILE is required (any text file). For the default corpus, the King "
                            "James Bible from Debian's bible-kjv package:\n"
                            "  sudo apt-get install bible-kjv && bible -l1000 gen1:1-rev22:21 </dev/null > kjv.txt\n"
                            "then: mixlm train --data kjv.txt\n");
            return 2;
        }
        o.model.n_layer = (int)layers;
        o.model.n_head = (int)heads;
        o.model.n_embd = (int)dim;
        o.model.block_size = (int)ctx;
        o.model.bias = bias;
        o.model.pos = mx_pos_parse(posarg);
        if (o.model.pos < 0) {
            fprintf(stderr, "mixlm train: --pos '%s' is not a position scheme; use learned (GPT-2's absolute "
                            "embedding, the default), none (NoPE) or rope (rotary, attention-family mixers)\n",
                    posarg);
            return 2;
        }
        o.model.seed = (uint64_t)seed;
        for (int l = 0; l < MX_MAX_LAYERS; l++)
            snprintf(o.model.attn[l], sizeof o.model.attn[l], "%s", attn);
        for (int i = 0; i < attn_layer.n; i++) {
            const char *v = attn_layer.v[i], *eq = strchr(v, '=');
            long l;
            char idx[16];
            if (!eq || (size_t)(eq - v) >= sizeof idx) {
                fprintf(stderr, "mixlm train: --attn-layer '%s': expected L=SPEC, e.g. --attn-layer 3=dense\n", v);
                return 2;
            }
            memcpy(idx, v, (size_t)(eq - v));
            idx[eq - v] = 0;
            if (mx_parse_int(idx, 0, layers - 1, "--attn-layer layer index", &l, &err) != 0) {
                fprintf(stderr, "mixlm train: %s\n", err.msg);
                return 2;
            }
            snprintf(o.model.attn[l], sizeof o.model.attn[l], "%s", eq + 1);
        }
        o.steps = steps;
        o.batch = (int)batch;
        o.grad_accum = (int)accum;
        o.lr = lr;
        o.min_lr = min_lr;
        o.warmup = warmup;
        o.beta1 = beta1;
        o.beta2 = beta2;
        o.weight_decay = wd;
        o.grad_clip = clip;
        o.eval_every = eval_every;
        o.eval_batches = (int)eval_batches;
        o.log_every = log_every;
        o.ckpt_every = ckpt_every;
        o.val_frac = val_frac;
        o.threads = (int)threads;
        o.skip_nonfinite = skip_nonfinite;
        o.quiet = quiet;
        o.profile = profile;
        o.stop_after = stop_after;
        o.check_sync = check_sync;
        o.time_budget = time_budget;
        o.align = align;
        if (strcmp(loss_on, "all") != 0 && strcmp(loss_on, "recall") != 0) {
            fprintf(stderr, "mixlm train: --loss-on '%s' is not known; use 'all' (every position, the default) or "
                            "'recall' (only the answers of `mixlm data recall` sequences)\n", loss_on);
            return 2;
        }
        o.loss_on = strcmp(loss_on, "recall") == 0 ? MX_LOSS_RECALL : MX_LOSS_ALL;
        if (o.loss_on == MX_LOSS_RECALL && o.align == 0) {
            fprintf(stderr, "mixlm train: --loss-on recall needs whole sequences in every window: add --align with the "
                            "task's sequence length (--context + 1 for `mixlm data recall --T CONTEXT`)\n");
            return 2;
        }
    }
    struct dist d;
    if (dist_init(&d, &err) != 0) {
        fprintf(stderr, "mixlm train: %s\n", err.msg);
        dist_finish(&d, 1);
        return 1;
    }
    /* --grad-accum is per rank; the run stores the micro-batches of a whole step. */
    if (!is_resume || args_given(a, na, "--grad-accum"))
        o.grad_accum = (int)accum * d.size;
    rc = train_run(&o, is_resume, &d, &err);
    if (rc < 0) {
        if (d.size > 1)
            fprintf(stderr, "mixlm train (rank %d of %d): %s\n", d.rank, d.size, err.msg);
        else
            fprintf(stderr, "mixlm train: %s\n", err.msg);
        dist_finish(&d, 1);
        return 1;
    }
    dist_finish(&d, 0);
    if (rc == 1) /* interrupted: 130 for a signal as shells do, 0 for --stop-after */
        return o.stop_after > 0 ? 0 : 130;
    return 0;
}
