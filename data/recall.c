/* recall.c — the multi-query associative-recall task (Zoology's MQAR) as text: generation of
 * sequences of key-value pairs followed by queries among filler, and the classification that
 * finds the scored positions again from the text alone, and the in-sequence guess (the no-recall
 * baseline) on them. The layout is documented in data.h.
 * Not the scoring (infer/ runs the model) and not a tokenizer: one code point is one token. */
#include "data/data.h"
#include "nn/nn.h"

#include <string.h>

void data_recall_default(struct mx_recall_opts *o)
{
    *o = (struct mx_recall_opts){.T = 256, .pairs = 16, .queries = 16, .vocab = 64, .seqs = 2000, .seed = 1};
}

int data_recall_check(const struct mx_recall_opts *o, struct mx_error *err)
{
    if (o->vocab < 1 || o->vocab > MX_RECALL_VOCAB_MAX)
        return mx_errorf(err, "--vocab %d is out of range [1, %d]", o->vocab, MX_RECALL_VOCAB_MAX);
    if (o->pairs < 1 || o->pairs > o->vocab)
        return mx_errorf(err, "--pairs %d must be in [1, --vocab %d] (the keys of a sequence are distinct); "
                              "lower --pairs or raise --vocab",
                         o->pairs, o->vocab);
    if (o->queries < 1 || o->queries > o->pairs)
        return mx_errorf(err, "--queries %d must be in [1, --pairs %d] (each query asks a distinct key)",
                         o->queries, o->pairs);
    if ((long)2 * o->pairs + 2L * o->queries > o->T)
        return mx_errorf(err, "--T %d is too short for %d pairs and %d queries (they take 2 x (%d + %d) = %d "
                              "tokens); raise --T or lower --pairs/--queries",
                         o->T, o->pairs, o->queries, o->pairs, o->queries, 2 * (o->pairs + o->queries));
    if (o->seqs < 1)
        return mx_errorf(err, "--seqs %ld must be >= 1", o->seqs);
    return 0;
}

/* The first n of a uniform random permutation of [0, m) into out (partial Fisher-Yates over
 * `work` (m)). */
static void draw_distinct(struct mx_rng *rng, int m, int n, int *work, int *out)
{
    for (int i = 0; i < m; i++)
        work[i] = i;
    for (int i = 0; i < n; i++) {
        int j = i + (int)mx_rng_below(rng, (uint32_t)(m - i));
        int t = work[i];
        work[i] = work[j];
        work[j] = t;
        out[i] = work[i];
    }
}

void data_recall_sequence(const struct mx_recall_opts *o, long index, uint32_t *cp)
{
    int T = o->T, K = o->pairs, Q = o->queries, V = o->vocab, slots = (T - 2 * K) / 2;
    struct mx_rng rng;
    mx_rng_seed3(&rng, o->seed, 0x4ECA11u, (uint64_t)index);
    int m = V > slots ? V : slots;
    int *work = mx_xmalloc((size_t)m * sizeof(int)), *key = mx_xmalloc((size_t)K * sizeof(int));
    int *val = mx_xmalloc((size_t)K * sizeof(int)), *ask = mx_xmalloc((size_t)Q * sizeof(int));
    int *slot = mx_xmalloc((size_t)Q * sizeof(int));
    draw_distinct(&rng, V, K, work, key);
    for (int i = 0; i < K; i++) {
        val[i] = (int)mx_rng_below(&rng, (uint32_t)V);
        cp[2 * i] = MX_RECALL_KEY0 + (uint32_t)key[i];
        cp[2 * i + 1] = MX_RECALL_VALUE0 + (uint32_t)val[i];
    }
    for (int t = 2 * K; t < T; t++)
        cp[t] = MX_RECALL_FILLER;
    cp[T] = '\n';
    draw_distinct(&rng, K, Q, work, ask);    /* which pairs are asked, in asking order */
    draw_distinct(&rng, slots, Q, work, slot); /* where: Q distinct slots, used in increasing order */
    for (int i = 1; i < Q; i++) /* insertion sort: Q is small */
        for (int j = i; j > 0 && slot[j - 1] > slot[j]; j--) {
            int t = slot[j];
            slot[j] = slot[j - 1];
            slot[j - 1] = t;
        }
    for (int q = 0; q < Q; q++) {
        int p = 2 * K + 2 * slot[q];
        cp[p] = MX_RECALL_KEY0 + (uint32_t)key[ask[q]];
        cp[p + 1] = MX_RECALL_VALUE0 + (uint32_t)val[ask[q]];
    }
    mx_free(work);
    mx_free(key);
    mx_free(val);
    mx_free(ask);
    mx_free(slot);
}

static size_t put_utf8(char *out, uint32_t c)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | c >> 6);
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | c >> 12); /* every code point here is below U+10000 */
    out[1] = (char)(0x80 | (c >> 6 & 0x3F));
    out[2] = (char)(0x80 | (c & 0x3F));
    return 3;
}

static int write_recall(FILE *f, void *ctx, struct mx_error *err)
{
    const struct mx_recall_opts *o = ctx;
    uint32_t *cp = mx_xmalloc(((size_t)o->T + 1) * sizeof(uint32_t));
    char *line = mx_xmalloc(((size_t)o->T + 1) * 3);
    int rc = 0;
    for (long s = 0; s < o->seqs && rc == 0; s++) {
        data_recall_sequence(o, s, cp);
        size_t n = 0;
        for (int t = 0; t <= o->T; t++)
            n += put_utf8(line + n, cp[t]);
        if (fwrite(line, 1, n, f) != n)
            rc = mx_errorf(err, "short write of sequence %ld (disk full?)", s);
    }
    mx_free(cp);
    mx_free(line);
    return rc;
}

int data_recall_write(const char *path, const struct mx_recall_opts *o, struct mx_error *err)
{
    if (data_recall_check(o, err) != 0)
        return -1;
    if (mx_write_atomic(path, write_recall, (void *)o, err) != 0)
        return mx_error_wrap(err, "recall task '%s'", path);
    return 0;
}

enum mx_recall_sym data_recall_classify(uint32_t cp)
{
    if (cp >= MX_RECALL_KEY0 && cp < MX_RECALL_KEY0 + MX_RECALL_VOCAB_MAX)
        return MX_RECALL_KEY;
    if (cp >= MX_RECALL_VALUE0 && cp < MX_RECALL_VALUE0 + MX_RECALL_VOCAB_MAX)
        return MX_RECALL_VALUE;
    if (cp == MX_RECALL_FILLER)
        return MX_RECALL_FILL;
    if (cp == '\n')
        return MX_RECALL_EOL;
    return MX_RECALL_OTHER;
}

int data_recall_answers(const uint32_t *cp, int n, unsigned char *is_answer)
{
    /* WHY a bitmap over the key range: "seen earlier in this sequence" is what separates a
     * query from a pair, and keys are at most MX_RECALL_VOCAB_MAX. */
    unsigned char seen[MX_RECALL_VOCAB_MAX / 8];
    memset(seen, 0, sizeof seen);
    int count = 0, prev_repeat = 0; /* prev_repeat: cp[p-1] is a key seen before p-1 */
    for (int p = 0; p < n; p++) {
        enum mx_recall_sym k = data_recall_classify(cp[p]);
        is_answer[p] = (unsigned char)(k == MX_RECALL_VALUE && prev_repeat);
        count += is_answer[p];
        prev_repeat = 0;
        if (k == MX_RECALL_KEY) {
            uint32_t i = cp[p] - MX_RECALL_KEY0;
            prev_repeat = seen[i / 8] >> (i % 8) & 1;
            seen[i / 8] |= (unsigned char)(1u << (i % 8));
        }
    }
    return count;
}

double data_recall_guess(const uint32_t *cp, int n, const unsigned char *is_answer)
{
    /* WHY counts only grow: the pairs' values are only added to, so the most frequent one and how
     * many share its count are kept up to date in O(1) per symbol. */
    int *count = mx_xcalloc(MX_RECALL_VOCAB_MAX * sizeof(int));
    unsigned char seen[MX_RECALL_VOCAB_MAX / 8];
    memset(seen, 0, sizeof seen);
    int max = 0, n_max = 0, prev_first = 0; /* prev_first: cp[p-1] is a key's first occurrence */
    double right = 0;
    for (int p = 0; p < n; p++) {
        enum mx_recall_sym k = data_recall_classify(cp[p]);
        if (k == MX_RECALL_VALUE) {
            uint32_t v = cp[p] - MX_RECALL_VALUE0;
            if (is_answer[p] && max > 0 && count[v] == max)
                right += 1.0 / n_max;
            if (prev_first && ++count[v] >= max) {
                n_max = count[v] > max ? 1 : n_max + 1;
                max = count[v];
            }
        }
        prev_first = 0;
        if (k == MX_RECALL_KEY) {
            uint32_t i = cp[p] - MX_RECALL_KEY0;
            prev_first = !(seen[i / 8] >> (i % 8) & 1);
            seen[i / 8] |= (unsigned char)(1u << (i % 8));
        }
    }
    mx_free(count);
    return right;
}

long data_recall_mask_targets(const uint32_t *cp_of, const int32_t *x, int32_t *y, int B, int T)
{
    uint32_t *cp = mx_xmalloc(((size_t)T + 1) * sizeof(uint32_t));
    unsigned char *ans = mx_xmalloc((size_t)T + 1);
    long kept = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *xr = x + (size_t)b * T;
        int32_t *yr = y + (size_t)b * T;
        cp[0] = cp_of[xr[0]];
        for (int t = 0; t < T; t++)
            cp[t + 1] = cp_of[yr[t]];
        kept += data_recall_answers(cp, T + 1, ans);
        for (int t = 0; t < T; t++)
            if (!ans[t + 1])
                yr[t] = NN_CE_IGNORE;
    }
    mx_free(cp);
    mx_free(ans);
    return kept;
}

uint32_t *data_recall_token_table(const struct tokenizer *tok, int V, int *n_kv)
{
    uint32_t *cp_of = mx_xmalloc((size_t)V * sizeof(uint32_t));
    *n_kv = 0;
    for (int32_t id = 0; id < V; id++) {
        cp_of[id] = tok_code_point(tok, id);
        enum mx_recall_sym s = data_recall_classify(cp_of[id]);
        *n_kv += s == MX_RECALL_KEY || s == MX_RECALL_VALUE;
    }
    return cp_of;
}
