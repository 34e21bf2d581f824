/* infer_bench.c — `mixlm generate --bench`: prompt processing and generation speed of each
 * generation mode on one run, rounds interleaved (A B A B ...) with the same seed, medians, cache
 * and activation sizes, and whether each mode gave the first mode's tokens; text or JSON on
 * stdout. Not the generation itself (infer.c) and not argument handling (cli/). */
#include "infer/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int infer_bench(struct mx_run *r, const int32_t *ids, size_t n, long tokens, const struct mx_sampler *s0,
                     const int *modes, int nm, int repeats, int json, struct mx_error *err)
{
    int status = 1;
    double *pre = mx_xcalloc((size_t)nm * repeats * sizeof(double));
    double *gen = mx_xcalloc((size_t)nm * repeats * sizeof(double));
    struct infer_gen_stats *last = mx_xcalloc((size_t)nm * sizeof *last);
    int32_t *out = mx_xmalloc((size_t)nm * tokens * sizeof(int32_t));
    long *made = mx_xcalloc((size_t)nm * sizeof(long));
    double rss_loaded = mx_rss_mb(), peak_loaded = mx_peak_rss_mb();
    struct mx_hostcpu h0, h1;
    double steal = -1, others = -1;
    mx_hostcpu_read(&h0);
    for (int k = 0; k < repeats; k++)
        for (int i = 0; i < nm; i++) {
            struct mx_sampler s = *s0;
            struct infer_gen_stats st;
            long got = infer_generate(r, ids, n, tokens, &s, modes[i], out + (size_t)i * tokens, NULL, NULL, &st, err);
            if (got < 0)
                goto out;
            made[i] = got;
            pre[(size_t)i * repeats + k] = st.prompt_tokens / st.prompt_s;
            gen[(size_t)i * repeats + k] = st.gen_tokens / st.gen_s;
            last[i] = st;
        }
    mx_hostcpu_read(&h1);
    mx_hostcpu_share(&h0, &h1, &steal, &others);
    double gmed[8], pmed[8];
    for (int i = 0; i < nm; i++) {
        pmed[i] = median(pre + (size_t)i * repeats, repeats);
        gmed[i] = median(gen + (size_t)i * repeats, repeats);
    }
    /* Agreement with the first mode: cache and recompute see the same contexts throughout;
     * slide sees the same ones until the context is full (see infer.h). */
    long agree_n[8];
    int agree[8];
    for (int i = 0; i < nm; i++) {
        long lim = made[i] < made[0] ? made[i] : made[0];
        if ((modes[i] == INFER_SLIDE) != (modes[0] == INFER_SLIDE)) {
            long same_ctx = (long)r->m.cfg.block_size - (long)n + 1;
            lim = lim < same_ctx ? lim : same_ctx;
        }
        agree_n[i] = lim;
        agree[i] = memcmp(out, out + (size_t)i * tokens, (size_t)lim * sizeof(int32_t)) == 0;
    }
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < nm; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "mode", infer_mode_name(last[i].mode));
            cJSON_AddStringToObject(o, "requested", infer_mode_name(modes[i]));
            cJSON_AddNumberToObject(o, "prompt_tokens", (double)last[i].prompt_tokens);
            cJSON_AddNumberToObject(o, "prompt_tokens_per_s", pmed[i]);
            cJSON_AddNumberToObject(o, "gen_tokens", (double)last[i].gen_tokens);
            cJSON_AddNumberToObject(o, "gen_tokens_per_s", gmed[i]);
            cJSON_AddNumberToObject(o, "ms_per_token", 1000.0 / gmed[i]);
            cJSON_AddNumberToObject(o, "shifts", (double)last[i].shifts);
            cJSON_AddNumberToObject(o, "shift_tokens", (double)last[i].shift_tokens);
            cJSON_AddNumberToObject(o, "cache_mb", last[i].state_bytes / 1048576.0);
            cJSON_AddNumberToObject(o, "activations_mb", last[i].act_bytes / 1048576.0);
            cJSON_AddNumberToObject(o, "rss_mb", last[i].rss_mb);
            cJSON_AddNumberToObject(o, "peak_rss_mb", mx_peak_rss_mb());
            cJSON_AddNumberToObject(o, "first_mode_speedup", gmed[i] > 0 ? gmed[0] / gmed[i] : 0);
            cJSON_AddBoolToObject(o, "same_tokens_as_first", agree[i]);
            cJSON_AddNumberToObject(o, "tokens_compared", (double)agree_n[i]);
            cJSON_AddNumberToObject(o, "repeats", repeats);
            cJSON_AddNumberToObject(o, "threads", mx_get_threads());
            cJSON_AddNumberToObject(o, "host_steal_pct", steal >= 0 ? steal : NAN); /* NAN: null */
            cJSON_AddNumberToObject(o, "host_other_pct", others >= 0 ? others : NAN);
            cJSON_AddItemToArray(arr, o);
        }
        char *txt = cJSON_Print(arr);
        printf("%s\n", txt);
        free(txt);
        cJSON_Delete(arr);
    } else {
        printf("model: %d layers, %d heads, dim %d, context %d, vocab %d, attn %s | prompt %zu tokens, %ld new, "
               "%d threads, %d repeats (medians) | RSS %.0f MB after load, peak %.0f MB (checkpoint read)\n",
               r->m.cfg.n_layer, r->m.cfg.n_head, r->m.cfg.n_embd, r->m.cfg.block_size, r->m.cfg.vocab_size,
               r->m.cfg.attn[0], n, tokens, mx_get_threads(), repeats, rss_loaded, peak_loaded);
        printf("%-10s %12s %12s %10s %8s %10s %9s %9s %9s %s\n", "mode", "prompt tok/s", "gen tok/s", "ms/token",
               "shifts", "cache MB", "acts MB", "RSS MB", "first/this", "same tokens");
        for (int i = 0; i < nm; i++)
            printf("%-10s %12.1f %12.1f %10.3f %8ld %10.2f %9.2f %9.0f %8.2fx %s (%ld)\n",
                   infer_mode_name(last[i].mode), pmed[i], gmed[i], 1000.0 / gmed[i], last[i].shifts,
                   last[i].state_bytes / 1048576.0, last[i].act_bytes / 1048576.0, last[i].rss_mb,
                   gmed[i] > 0 ? gmed[0] / gmed[i] : 0.0, agree[i] ? "yes" : "NO", agree_n[i]);
        char hbuf[128];
        if (steal >= 0)
            printf("host: %s\n", mx_hostcpu_text(hbuf, sizeof hbuf, steal, others));
    }
    status = 0;
out:
    mx_free(pre);
    mx_free(gen);
    mx_free(last);
    mx_free(out);
    mx_free(made);
    return status;
}

