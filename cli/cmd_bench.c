/* cmd_bench.c — `mixlm bench`: flags -> struct bench_opts -> the harness in bench/ (plan,
 * measure, write the files). Not the harness, the children or the output formats (bench/). */
#include "bench/bench.h"
#include "cli/args.h"
#include "cli/commands.h"

static const char *usage =
    "usage: mixlm bench --attn SPEC [--attn SPEC ...] --context T[,T...] [options]\n"
    "\n"
    "Times the forward and forward+backward of --layers mixer sublayers for each mixer spec\n"
    "and each context length, each (mixer, length) in its own child process. --attn specs\n"
    "contain commas, so they are never split: repeat the flag for several. --context takes\n"
    "comma-separated lengths with a 'k' (x1024) or 'm' suffix (e.g. 1k,4k,16k) and may repeat.\n"
    "A run over --time-budget is killed and noted; larger contexts of that mixer are then\n"
    "skipped, and so is a context whose one-pass time, extrapolated from the two previous\n"
    "lengths, exceeds twice the budget. When a pass is slow the child measures fewer repeats so\n"
    "as to fit.\n"
    "\n"
    "What is measured (per mixer and length):\n"
    "  forward_ms     median wall time of the forward of all layers\n"
    "  train_ms       median wall time of forward then backward of all layers (the backward\n"
    "                 gets a random dy; gradients accumulate into zeroed buffers, zeroed untimed)\n"
    "  core_forward_ms, core_train_ms\n"
    "                 the same for the attention core alone (q,k,v -> o and back), without\n"
    "                 the QKV/output projections and head copies all attention mixers share;\n"
    "                 timed after the full passes, on the q,k,v they saved, the backward\n"
    "                 including the zeroing of its dq,dk,dv; empty/null for mixers without\n"
    "                 a separate core (lsh, longconv, fnet,\n"
    "                 causal_fnet)\n"
    "  tokens_per_s   B*T / train time\n"
    "  peak_mb        peak resident memory of the child process (getrusage ru_maxrss),\n"
    "                 including the binary and the OpenBLAS buffers (a few tens of MiB)\n"
    "  est_mb         the up-front estimate: 4 bytes x (2 x params + x + dy + dx + per layer\n"
    "                 (y + saved_floats) + max scratch_floats) + the parent's RSS\n"
    "  gflops         achieved GFLOP/s of forward+backward by the FLOP model below\n"
    "  sgemm_gflops   the measured cblas_sgemm 1024^3 ceiling (median of 9) for context\n"
    "\n"
    "FLOP model (every mixer; a FLOP is a multiply or an add, one FMA = 2), asked of the mixer:\n"
    "  forward   2 x each weight-matrix entry per token (the projections) + the FLOPs the mixer\n"
    "            reports for its token mixing (scores, prefix sums, FFTs, ...): its own useful\n"
    "            work, e.g. a sparse pattern's allowed pairs, not the tiles an engine computes\n"
    "  backward  4 x each weight-matrix entry per token (dx and dW) + the mixing's backward as\n"
    "            the mixer reports it, recomputation included\n"
    "  Softmax, exp and elementwise work are not counted. A mixer that reports no mixing FLOPs\n"
    "  counts its projections only, so its GFLOP/s is a lower bound.\n"
    "\n"
    "Run benchmarks with OPENBLAS_CORETYPE unset (env -u OPENBLAS_CORETYPE mixlm bench ...):\n"
    "a preset value forces slower kernels; the text header shows the value in effect.\n"
    "Exit status: 0 (even when runs were skipped), 2 on bad flags or an unknown mixer.";

int cmd_bench(int argc, char **argv)
{
    struct bench_opts o;
    bench_opts_default(&o);
    long B = o.B, C = o.C, H = o.H, L = o.L, repeats = o.repeats, warmup = o.warmup, threads = 0;
    long seed = (long)o.seed;
    double time_budget = o.time_budget, mem_budget = o.mem_budget;
    int json = 0, csv = 0, list = 0;
    char csv_out[1024] = "", json_out[1024] = "";
    struct arg_list *attn = mx_xcalloc(sizeof *attn);
    struct arg_ints ctx = {0};
    struct arg a[] = {
        {"--attn", ARG_LIST, attn, 0, 0, 0, "mixer spec, e.g. dense, window:w=256 (repeatable)", 0},
        {"--context", ARG_INTS, &ctx, 0, 1, 1 << 24, "context lengths, e.g. 1k,4k,16k (repeatable)", 0},
        {"--batch", ARG_INT, &B, 0, 1, 1 << 16, "batch size (default 1)", 0},
        {"--dim", ARG_INT, &C, 0, 1, 1 << 16, "channels (default 128)", 0},
        {"--heads", ARG_INT, &H, 0, 1, 1 << 12, "heads (default 4; C % H == 0)", 0},
        {"--layers", ARG_INT, &L, 0, 1, 1024, "mixer sublayers per run (default 1)", 0},
        {"--repeats", ARG_INT, &repeats, 0, 1, BENCH_MAX_REPEATS, "timed repeats; the median is reported (default 5)", 0},
        {"--warmup", ARG_INT, &warmup, 0, 0, 100, "untimed forward+backward passes first (default 1)", 0},
        {"--threads", ARG_INT, &threads, 0, 1, 1024, "OpenMP/OpenBLAS threads (default: OpenMP's default)", 0},
        {"--time-budget", ARG_FLOAT, &time_budget, 0, 0.001, 1e7, "wall seconds per (mixer, length) run (default 600)", 0},
        {"--mem-budget", ARG_FLOAT, &mem_budget, 0, 1, 1e9, "skip runs estimated over MB MiB (default: 90% of MemAvailable)", 0},
        {"--seed", ARG_INT, &seed, 0, 0, 0x7fffffffL, "seed for parameters and inputs (default 1337)", 0},
        {"--json", ARG_FLAG, &json, 0, 0, 0, "print a JSON array, one object per (mixer, length)", 0},
        {"--csv", ARG_FLAG, &csv, 0, 0, 0, "print CSV with the same columns", 0},
        {"--csv-out", ARG_STR, csv_out, sizeof csv_out, 0, 0, "also write the CSV to FILE (atomically, at the end)", 0},
        {"--json-out", ARG_STR, json_out, sizeof json_out, 0, 0, "also write the JSON array to FILE (atomically)", 0},
        {"--no-sgemm", ARG_FLAG, &o.no_sgemm, 0, 0, 0, "skip measuring the sgemm ceiling (~0.1 s; quick tests)", 0},
        {"--list", ARG_FLAG, &list, 0, 0, 0, "list the registered mixers and exit", 0},
    };
    int na = (int)(sizeof a / sizeof a[0]), npos, status = 2;
    const char *pos[1];
    struct mx_error err;
    struct bench_result res = {0};
    int rc = args_parse(argc, argv, a, na, pos, 0, &npos, usage, &err);
    if (rc == 1 || (rc == 0 && list)) {
        if (rc == 0)
            bench_list(stdout);
        status = 0;
        goto out;
    }
    for (int i = 0; i < attn->n; i++)
        o.attn[o.n_attn++] = attn->v[i];
    for (int i = 0; i < ctx.n; i++)
        o.ctx[o.n_ctx++] = (int)ctx.v[i];
    o.B = (int)B, o.C = (int)C, o.H = (int)H, o.L = (int)L;
    o.repeats = (int)repeats, o.warmup = (int)warmup, o.threads = (int)threads, o.seed = (uint64_t)seed;
    o.time_budget = time_budget, o.mem_budget = mem_budget;
    o.format = csv ? BENCH_CSV : json ? BENCH_JSON : BENCH_TEXT;
    o.csv_out = csv_out[0] ? csv_out : NULL;
    o.json_out = json_out[0] ? json_out : NULL;
    if (rc != 0 || bench_opts_finish(&o, &err) != 0 || bench_plan(&o, &res, &err) != 0) {
        fprintf(stderr, "mixlm bench: %s\n", err.msg);
        goto out;
    }
    bench_measure(&o, &res);
    status = 0;
    if (o.csv_out && bench_write_csv(o.csv_out, &o, &res, &err) != 0) {
        fprintf(stderr, "mixlm bench: --csv-out: %s\n", err.msg);
        status = 1;
    }
    if (o.json_out && bench_write_json(o.json_out, &o, &res, &err) != 0) {
        fprintf(stderr, "mixlm bench: --json-out: %s\n", err.msg);
        status = 1;
    }
out:
    bench_result_free(&res);
    mx_free(attn);
    return status;
}
