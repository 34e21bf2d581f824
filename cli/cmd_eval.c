/* cmd_eval.c — `mixlm eval RUN... [--data FILE] [--context 256,1024] [--stride N] [--json]`:
 * full-pass validation loss, perplexity and bits per char/byte for each run and context, one
 * table (or JSON) so attention types compare side by side. Not the evaluation itself (infer/). */
#include "cli/args.h"
#include "cli/commands.h"
#include "infer/infer.h"
#include "run/run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *usage =
    "usage: mixlm eval RUN_DIR... [--data FILE] [--context N[,N...]] [--stride N] [--batch N] [--json]\n"
    "       mixlm eval RUN_DIR... --recall [--data FILE] [--batch N] [--json]\n"
    "\n"
    "Full pass over the run's validation split (the last 10%% of its training text) or over --data,\n"
    "in non-overlapping windows of --context tokens (default: each model's context), or windows moved\n"
    "by --stride where every scored token sees at least context - stride tokens of history.\n"
    "Reports loss (nats/token), perplexity, bits per character and bits per byte of the text scored.\n"
    "--json prints one object for one run and context, else an array of objects.\n"
    "--recall: recall accuracy on the associative-recall task (`mixlm data recall`) instead: each\n"
    "sequence (line) of the split is one window; the argmax prediction of the value after every\n"
    "query key is right or wrong; reports sequences, answers and accuracy (chance is 1/V), and beside it\n"
    "the in-sequence guess: the expected accuracy on the same answers of answering with the most\n"
    "frequent value of the sequence's pairs (a model that learned the values but not the keys).";

int cmd_eval(int argc, char **argv)
{
    char data[512] = "";
    struct arg_ints ctxs = {0};
    long stride = 0, batch = 8, threads = 0;
    int json = 0, recall = 0;
    struct arg a[] = {
        {"--data", ARG_STR, data, sizeof data, 0, 0, "evaluate on this text file instead of the run's validation split", 0},
        {"--context", ARG_INTS, &ctxs, 0, 1, 1 << 22, "comma-separated window lengths (default: model context)", 0},
        {"--stride", ARG_INT, &stride, 0, 1, 1 << 22, "window step (default = context: non-overlapping)", 0},
        {"--batch", ARG_INT, &batch, 0, 1, 4096, "windows per forward pass (default 8)", 0},
        {"--threads", ARG_INT, &threads, 0, 0, 1024, "threads (default: all cores)", 0},
        {"--json", ARG_FLAG, &json, 0, 0, 0, "machine-readable output", 0},
        {"--recall", ARG_FLAG, &recall, 0, 0, 0, "recall accuracy on the associative-recall task (see above)", 0},
    };
    int na = (int)(sizeof a / sizeof a[0]), npos;
    const char *runs[64];
    struct mx_error err;
    int rc = args_parse(argc, argv, a, na, runs, 64, &npos, usage, &err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "mixlm eval: %s\n", err.msg);
        return 2;
    }
    if (npos == 0) {
        fprintf(stderr, "mixlm eval: give at least one run directory, e.g. mixlm eval runs/baby\n");
        return 2;
    }
    if (recall && (ctxs.n || stride)) {
        fprintf(stderr, "mixlm eval: --recall scores each sequence as one window; drop --context and --stride\n");
        return 2;
    }
    int nctx = ctxs.n;
    mx_set_threads((int)threads);
    cJSON *arr = cJSON_CreateArray();
    int status = 0, rows = 0;
    int wrun = 3; /* the run column fits the longest run path */
    for (int i = 0; i < npos; i++)
        if ((int)strlen(runs[i]) > wrun)
            wrun = (int)strlen(runs[i]);
    if (!json && recall)
        printf("%-*s %-28s %7s %9s %9s %9s %9s\n", wrun, "run", "attn", "T", "seqs", "answers", "accuracy", "guess");
    else if (!json)
        printf("%-*s %-28s %7s %10s %9s %8s %8s %10s %9s\n", wrun, "run", "attn", "context", "tokens", "loss", "ppl",
               "bpc", "bits/byte", "tok/s");
    for (int i = 0; i < npos && status == 0; i++) {
        struct mx_run r;
        if (infer_load_run(&r, runs[i], &err) != 0) {
            fprintf(stderr, "mixlm eval: %s\n", err.msg);
            status = 1;
            break;
        }
        struct mx_tokfile f;
        size_t begin = 0, end = 0;
        char tokpath[1100];
        if (data[0]) {
            /* The tokens go to a private temporary under $TMPDIR, never into the run directory
             * (which may be read-only, or shared). */
            const char *tmpdir = getenv("TMPDIR");
            snprintf(tokpath, sizeof tokpath, "%s/mixlm-eval-tokens.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
            int fd = mkstemp(tokpath);
            if (fd < 0) {
                fprintf(stderr, "mixlm eval: cannot create a temporary file '%s' for the --data tokens: %s; set "
                                "TMPDIR to a writable directory\n",
                        tokpath, strerror(errno));
                infer_free_run(&r);
                status = 1;
                break;
            }
            close(fd);
            if (data_prepare_text(data, r.tok, tokpath, &err) != 0 || data_open(&f, tokpath, &err) != 0) {
                fprintf(stderr, "mixlm eval: %s\n", err.msg);
                remove(tokpath);
                infer_free_run(&r);
                status = 1;
                break;
            }
            remove(tokpath); /* mapped: the data stays readable until closed */
            end = f.count;
        } else {
            struct mx_train_opts o;
            run_opts_default(&o);
            if (run_load_opts(runs[i], &o, &err) != 0) {
                fprintf(stderr, "mixlm eval: %s\n", err.msg);
                infer_free_run(&r);
                status = 1;
                break;
            }
            struct run_paths rp;
            run_paths_init(&rp, runs[i]);
            if (data_open(&f, rp.tokens, &err) != 0) {
                fprintf(stderr, "mixlm eval: %s (give --data FILE to evaluate on a text file)\n", err.msg);
                infer_free_run(&r);
                status = 1;
                break;
            }
            data_split(f.count, o.val_frac, &begin);
            end = f.count;
        }
        int nc = recall ? 0 : nctx ? nctx : 1;
        if (recall) {
            struct mx_recall_result rr;
            if (infer_recall(&r, &f, begin, end, (int)batch, &rr, &err) != 0) {
                fprintf(stderr, "mixlm eval: %s\n", err.msg);
                status = 1;
            } else if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "run", runs[i]);
                cJSON_AddStringToObject(o, "attn", r.m.cfg.attn[0]);
                cJSON_AddNumberToObject(o, "context", r.m.cfg.block_size);
                cJSON_AddNumberToObject(o, "sequences", (double)rr.sequences);
                cJSON_AddNumberToObject(o, "answers", (double)rr.answers);
                cJSON_AddNumberToObject(o, "correct", (double)rr.correct);
                cJSON_AddNumberToObject(o, "accuracy", rr.accuracy);
                cJSON_AddNumberToObject(o, "in_sequence_guess", rr.guess);
                cJSON_AddNumberToObject(o, "step", (double)r.step);
                cJSON_AddItemToArray(arr, o);
                rows++;
            } else {
                printf("%-*s %-28s %7d %9zu %9zu %9.4f %9.4f\n", wrun, runs[i], r.m.cfg.attn[0], r.m.cfg.block_size,
                       rr.sequences, rr.answers, rr.accuracy, rr.guess);
                rows++;
            }
        }
        for (int c = 0; c < nc; c++) {
            int T = nctx ? (int)ctxs.v[c] : r.m.cfg.block_size;
            int st = stride ? (int)stride : T;
            struct mx_eval_result res;
            if (infer_eval(&r, &f, begin, end, T, st, (int)batch, &res, &err) != 0) {
                fprintf(stderr, "mixlm eval: %s: %s\n", runs[i], err.msg);
                status = 1;
                break;
            }
            rows++;
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "run", runs[i]);
                cJSON_AddStringToObject(o, "attn", r.m.cfg.attn[0]);
                cJSON_AddStringToObject(o, "tokenizer", tok_kind(r.tok));
                cJSON_AddNumberToObject(o, "context", T);
                cJSON_AddNumberToObject(o, "stride", st);
                cJSON_AddNumberToObject(o, "tokens", (double)res.tokens);
                cJSON_AddNumberToObject(o, "chars", (double)res.chars);
                cJSON_AddNumberToObject(o, "bytes", (double)res.bytes);
                cJSON_AddNumberToObject(o, "loss", res.loss);
                cJSON_AddNumberToObject(o, "ppl", res.ppl);
                cJSON_AddNumberToObject(o, "bits_per_char", res.bits_per_char);
                cJSON_AddNumberToObject(o, "bits_per_byte", res.bits_per_byte);
                cJSON_AddNumberToObject(o, "tokens_per_s", res.tokens_per_s);
                cJSON_AddNumberToObject(o, "params", (double)r.m.n_params);
                cJSON_AddNumberToObject(o, "step", (double)r.step);
                cJSON_AddItemToArray(arr, o);
            } else {
                printf("%-*s %-28s %7d %10zu %9.4f %8.3f %8.4f %10.4f %9.0f\n", wrun, runs[i], r.m.cfg.attn[0], T,
                       res.tokens, res.loss, res.ppl, res.bits_per_char, res.bits_per_byte, res.tokens_per_s);
                fflush(stdout);
            }
        }
        data_close(&f);
        infer_free_run(&r);
    }
    if (json && status == 0) {
        char *s = cJSON_Print(rows == 1 ? cJSON_GetArrayItem(arr, 0) : arr);
        printf("%s\n", s);
        free(s);
    }
    cJSON_Delete(arr);
    return status;
}
