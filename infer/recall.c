/* recall.c — recall accuracy of a trained run on the associative-recall task: find the
 * sequences (lines) in a token range, run each through the model as one window and count the
 * answers (the value after a query key) whose argmax prediction is right, beside the in-sequence
 * guess's expected score on the same answers. Not the task's
 * generation or layout (data/recall.c) and not the loss-based evaluation (infer.c). */
#include "infer/infer.h"

#include <string.h>

int infer_recall(struct mx_run *r, const struct mx_tokfile *f, size_t begin, size_t end, int B,
                 struct mx_recall_result *res, struct mx_error *err)
{
    struct mx_model *m = &r->m;
    memset(res, 0, sizeof *res);
    int V = m->cfg.vocab_size;
    if (f->vocab > V)
        return mx_errorf(err, "token file vocabulary %d exceeds the model's %d: data prepared with another tokenizer",
                         f->vocab, V);
    int n_kv;
    uint32_t *cp_of = data_recall_token_table(r->tok, V, &n_kv);
    int rc = -1;
    int32_t *x = NULL;
    uint32_t *cp = NULL;
    unsigned char *ans = NULL;
    if (n_kv == 0) {
        mx_errorf(err, "run '%s' (%s tokenizer) has no token that is a recall key or value: recall accuracy needs a "
                       "run trained on `mixlm data recall` output with --tokenizer char",
                  r->dir, tok_kind(r->tok));
        goto out;
    }
    /* The sequences: [s, e) with ids[e] the newline. */
    size_t p = begin;
    if (begin > 0 && data_recall_classify(cp_of[data_get(f, begin - 1)]) != MX_RECALL_EOL) {
        /* begin falls inside a line: start after its newline */
        while (p < end && data_recall_classify(cp_of[data_get(f, p)]) != MX_RECALL_EOL)
            p++;
        p++;
    }
    size_t first = p;
    long n = -1; /* symbols per sequence */
    while (p < end && data_recall_classify(cp_of[data_get(f, p)]) != MX_RECALL_EOL)
        p++;
    if (p >= end) {
        mx_errorf(err, "run '%s': no complete recall sequence (a line ending in a newline) in the %zu tokens scored; "
                       "give more sequences",
                  r->dir, end - begin);
        goto out;
    }
    n = (long)(p - first);
    if (n < 2 || n > m->cfg.block_size) {
        mx_errorf(err, "run '%s': recall sequences of %ld tokens do not fit the model's context %d; train with "
                       "--context equal to the task's --T",
                  r->dir, n, m->cfg.block_size);
        goto out;
    }
    int T = (int)n;
    size_t n_seq = (end - first) / ((size_t)T + 1);
    if (B < 1)
        B = 1;
    if (model_plan(m, B, T, err) != 0)
        goto out;
    x = mx_xmalloc((size_t)B * T * sizeof(int32_t));
    cp = mx_xmalloc((size_t)B * T * sizeof(uint32_t));
    ans = mx_xmalloc((size_t)T);
    double t0 = mx_now(), guess = 0;
    for (size_t s0 = 0; s0 < n_seq; s0 += (size_t)B) {
        int nb = (int)(n_seq - s0 < (size_t)B ? n_seq - s0 : (size_t)B);
        for (int b = 0; b < nb; b++) {
            size_t at = first + (s0 + (size_t)b) * ((size_t)T + 1);
            for (int t = 0; t < T; t++) {
                x[(size_t)b * T + t] = data_get(f, at + (size_t)t);
                cp[(size_t)b * T + t] = cp_of[x[(size_t)b * T + t]];
            }
            if (data_recall_classify(cp_of[data_get(f, at + (size_t)T)]) != MX_RECALL_EOL) {
                mx_errorf(err, "run '%s': recall sequence %zu is not %d tokens long like the first one (no newline at "
                               "token %zu); every line of a recall file has the same length",
                          r->dir, s0 + (size_t)b, T, at + (size_t)T);
                goto out;
            }
        }
        model_forward(m, x, NULL, nb, T, r->mixer_step, 0);
        for (int b = 0; b < nb; b++) {
            data_recall_answers(cp + (size_t)b * T, T, ans);
            guess += data_recall_guess(cp + (size_t)b * T, T, ans);
            for (int t = 1; t < T; t++) {
                if (!ans[t])
                    continue;
                const float *lg = m->a.logits + ((size_t)b * T + (size_t)(t - 1)) * V;
                int best = 0;
                for (int v = 1; v < V; v++)
                    if (lg[v] > lg[best])
                        best = v;
                res->answers++;
                res->correct += best == x[(size_t)b * T + t];
            }
        }
        res->sequences += (size_t)nb;
    }
    res->seconds = mx_now() - t0;
    if (res->answers == 0) {
        mx_errorf(err, "run '%s': the %zu sequences scored hold no query (a key asked again after its pair)",
                  r->dir, res->sequences);
        goto out;
    }
    res->accuracy = (double)res->correct / (double)res->answers;
    res->guess = guess / (double)res->answers;
    rc = 0;
out:
    mx_free(cp_of);
    mx_free(x);
    mx_free(cp);
    mx_free(ans);
    return rc;
}
