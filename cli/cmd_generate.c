/* cmd_generate.c — `mixlm generate RUN --prompt TEXT --tokens N ...`: sample text from a run,
 * streamed token by token, or with --bench time prompt processing and generation for the cached
 * and uncached paths side by side. Not the sampler, the generation loop or its timing (infer/). */
#include "cli/args.h"
#include "cli/commands.h"
#include "infer/infer.h"

#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: mixlm generate RUN_DIR [--prompt TEXT | --prompt-file FILE] [--tokens N] [--temperature X]\n"
    "                      [--top-k N] [--top-p X] [--repetition-penalty X] [--seed N] [--stop STR]\n"
    "                      [--no-cache | --slide] [--bench [--bench-modes cache,slide] [--repeats N] [--json]]\n"
    "\n"
    "Streams sampled text to stdout. By default each new token goes through every mixer's incremental\n"
    "state (KV cache, ring buffer, recurrent state). --no-cache recomputes the full forward pass for\n"
    "every token over the same context (same tokens, slower); a model with a mixer that has no\n"
    "incremental form does that automatically. Past the model's context the context is shifted: its\n"
    "last half is kept and re-processed, and generation goes on. --slide is nanoGPT's sampler instead:\n"
    "a full forward over the last context-length tokens for every token (the window slides by one).\n"
    "--bench prints no text: it times prompt processing and generation (tokens/s) and reports the\n"
    "cache and activation sizes and peak memory for each mode in --bench-modes, runs interleaved\n"
    "--repeats times (medians), and how many times faster the first mode generates (first/this).";

struct emit_ctx {
    const struct tokenizer *tok;
    const char *stop;
    char tail[512];
    size_t tail_len;
    int32_t bad_id; /* -1, or the id that had no text: generation stopped there */
    struct infer_utf8 utf8; /* a character split over pieces is printed once complete */
};

static int emit(void *vctx, int32_t id)
{
    struct emit_ctx *c = vctx;
    char buf[256];
    int n = tok_piece(c->tok, id, buf, sizeof buf);
    if (n < 0) { /* never dropped silently: the caller reports it */
        c->bad_id = id;
        return 1;
    }
    if (n > 0) {
        char text[3 * (sizeof buf + 4)];
        size_t w = infer_utf8_feed(&c->utf8, buf, (size_t)n, text);
        if (w) {
            fwrite(text, 1, w, stdout);
            fflush(stdout);
        }
    }
    if (!c->stop || !*c->stop || n <= 0)
        return 0;
    /* Keep the last bytes to spot the stop string across token boundaries (the stop string is
     * at most 255 bytes, so 511 bytes of tail always hold any match that ends in this piece). */
    for (int i = 0; i < n; i++) {
        if (c->tail_len == sizeof c->tail - 1) {
            memmove(c->tail, c->tail + 1, c->tail_len - 1);
            c->tail_len--;
        }
        c->tail[c->tail_len++] = buf[i];
    }
    c->tail[c->tail_len] = 0;
    return strstr(c->tail, c->stop) != NULL;
}

static int parse_modes(const char *s, int *modes, int max, struct mx_error *err)
{
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        int m = !strcmp(t, "cache") ? INFER_CACHE : !strcmp(t, "recompute") ? INFER_RECOMPUTE
                : !strcmp(t, "slide") ? INFER_SLIDE : -1;
        if (m < 0)
            return mx_errorf(err, "--bench-modes: unknown mode '%s'; use cache, recompute or slide, e.g. "
                                  "--bench-modes cache,slide", t);
        if (n == max)
            return mx_errorf(err, "--bench-modes: at most %d modes", max);
        modes[n++] = m;
    }
    if (n == 0)
        return mx_errorf(err, "--bench-modes: give at least one of cache, recompute, slide");
    return n;
}

int cmd_generate(int argc, char **argv)
{
    char prompt[4096] = "\n", prompt_file[512] = "", stop[256] = "", bench_modes[256] = "cache,slide";
    long tokens = 200, top_k = 0, seed = 1, threads = 0, repeats = 1;
    double temperature = 1.0, top_p = 1.0, rep = 1.0;
    int no_cache = 0, slide = 0, bench = 0, json = 0;
    struct arg a[] = {
        {"--prompt", ARG_STR, prompt, sizeof prompt, 0, 0, "text to continue (default: a newline)", 0},
        {"--prompt-file", ARG_STR, prompt_file, sizeof prompt_file, 0, 0, "read the prompt from a file", 0},
        {"--tokens", ARG_INT, &tokens, 0, 1, 1 << 24, "tokens to generate (default 200)", 0},
        {"--temperature", ARG_FLOAT, &temperature, 0, 0, 100, "0 = greedy; default 1", 0},
        {"--top-k", ARG_INT, &top_k, 0, 0, 1 << 24, "sample among the k most likely (0 = off)", 0},
        {"--top-p", ARG_FLOAT, &top_p, 0, 0.0001, 1, "nucleus sampling mass (1 = off)", 0},
        {"--repetition-penalty", ARG_FLOAT, &rep, 0, 0.01, 100, "penalise the last 64 tokens (1 = off)", 0},
        {"--seed", ARG_INT, &seed, 0, 0, (double)(1LL << 53), "sampling seed (default 1)", 0},
        {"--stop", ARG_STR, stop, sizeof stop, 0, 0, "stop after this string is generated", 0},
        {"--no-cache", ARG_FLAG, &no_cache, 0, 0, 0, "recompute the full forward for every token (same tokens)", 0},
        {"--slide", ARG_FLAG, &slide, 0, 0, 0, "nanoGPT's sampler: full forward over the last context tokens", 0},
        {"--bench", ARG_FLAG, &bench, 0, 0, 0, "time prompt processing and generation; no text", 0},
        {"--bench-modes", ARG_STR, bench_modes, sizeof bench_modes, 0, 0,
         "modes --bench compares: cache, recompute, slide (default cache,slide)", 0},
        {"--repeats", ARG_INT, &repeats, 0, 1, 1000, "--bench rounds, interleaved; medians (default 1)", 0},
        {"--json", ARG_FLAG, &json, 0, 0, 0, "--bench output as JSON", 0},
        {"--threads", ARG_INT, &threads, 0, 0, 1024, "threads (default: all cores)", 0},
    };
    int na = (int)(sizeof a / sizeof a[0]), npos;
    const char *pos[1];
    struct mx_error err;
    int rc = args_parse(argc, argv, a, na, pos, 1, &npos, usage, &err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "mixlm generate: %s\n", err.msg);
        return 2;
    }
    if (npos != 1) {
        fprintf(stderr, "mixlm generate: give one run directory, e.g. mixlm generate runs/baby --prompt \"ROMEO:\"\n");
        return 2;
    }
    if (no_cache && slide) {
        fprintf(stderr, "mixlm generate: --no-cache and --slide are two different uncached modes; give one\n");
        return 2;
    }
    if (args_given(a, na, "--prompt") && prompt_file[0]) {
        fprintf(stderr, "mixlm generate: give --prompt or --prompt-file, not both\n");
        return 2;
    }
    if (!bench && (args_given(a, na, "--bench-modes") || args_given(a, na, "--repeats") || json)) {
        fprintf(stderr, "mixlm generate: --bench-modes, --repeats and --json go with --bench\n");
        return 2;
    }
    int modes[8], nm = 0;
    if (bench && (nm = parse_modes(bench_modes, modes, 8, &err)) < 0) {
        fprintf(stderr, "mixlm generate: %s\n", err.msg);
        return 2;
    }
    mx_set_threads((int)threads);
    char *ptext = prompt;
    size_t plen = strlen(prompt);
    char *file_text = NULL;
    if (prompt_file[0]) {
        file_text = mx_read_file(prompt_file, &plen, &err);
        if (!file_text) {
            fprintf(stderr, "mixlm generate: --prompt-file: %s\n", err.msg);
            return 1;
        }
        if (plen == 0) {
            fprintf(stderr, "mixlm generate: --prompt-file '%s' is empty; put the text to continue in it\n", prompt_file);
            mx_free(file_text);
            return 1;
        }
        ptext = file_text;
    }
    if (plen == 0) {
        fprintf(stderr, "mixlm generate: --prompt is empty; give some text to continue\n");
        return 2;
    }
    struct mx_run r;
    if (infer_load_run(&r, pos[0], &err) != 0) {
        fprintf(stderr, "mixlm generate: %s\n", err.msg);
        mx_free(file_text);
        return 1;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int status = 1;
    if (tok_encode(r.tok, ptext, plen, &ids, &n, &err) != 0) {
        fprintf(stderr, "mixlm generate: prompt: %s\n", err.msg);
        goto out;
    }
    struct mx_sampler s = {.temperature = temperature, .top_k = (int)top_k, .top_p = top_p, .repetition_penalty = rep};
    mx_rng_seed(&s.rng, (uint64_t)seed);
    if (bench) {
        if (infer_bench(&r, ids, n, tokens, &s, modes, nm, (int)repeats, json, &err) != 0) {
            fprintf(stderr, "mixlm generate: %s\n", err.msg);
            goto out;
        }
        status = 0;
        goto out;
    }
    int mode = slide ? INFER_SLIDE : no_cache ? INFER_RECOMPUTE : INFER_CACHE;
    int32_t *out_ids = mx_xmalloc((size_t)tokens * sizeof(int32_t));
    struct emit_ctx ec = {.tok = r.tok, .stop = stop, .bad_id = -1};
    /* A prompt longer than the context is refused by infer_generate: do not echo it first. */
    int echoed = n <= (size_t)r.m.cfg.block_size;
    if (echoed)
        fwrite(ptext, 1, plen, stdout);
    long made = infer_generate(&r, ids, n, tokens, &s, mode, out_ids, emit, &ec, NULL, &err);
    mx_free(out_ids);
    char tail[3];
    size_t nt = infer_utf8_flush(&ec.utf8, tail); /* a character cut off at the end: U+FFFD */
    fwrite(tail, 1, nt, stdout);
    if (made < 0) {
        fflush(stdout);
        fprintf(stderr, "%smixlm generate: %s\n", echoed ? "\n" : "", err.msg);
        goto out;
    }
    printf("\n");
    if (ec.bad_id >= 0) {
        fflush(stdout);
        fprintf(stderr, "mixlm generate: the model produced token id %d, which the %s tokenizer (%d tokens) has no "
                        "text for; generation stopped there: the run's tokenizer does not match its model\n",
                ec.bad_id, tok_kind(r.tok), tok_vocab_size(r.tok));
        goto out;
    }
    status = 0;
out:
    mx_free(ids);
    mx_free(file_text);
    infer_free_run(&r);
    return status;
}
