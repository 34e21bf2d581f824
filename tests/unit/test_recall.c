/* test_recall.c — the associative-recall task (data/recall.c) read back from its file: every line
 * is T code points and a newline, K pairs with distinct keys, then filler with Q queries at even
 * offsets whose values equal their pairs' values; the answer positions found from the text
 * alone are exactly the queries' values; the in-sequence guess baseline; the same seed gives the same bytes, another seed other
 * bytes; bad sizes are refused; aligned batches start at multiples of the sequence length. */
#include "check.h"
#include "data/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[] = "/tmp/mixlm_test_recall_XXXXXX";

static int setup(void)
{
    return mkdtemp(dir) ? 0 : 1;
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* Decode UTF-8 (valid, at most 3 bytes a character) into code points; returns the count. */
static size_t decode(const char *s, size_t len, uint32_t *cp)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80)
            cp[n++] = c, i += 1;
        else if ((c & 0xE0) == 0xC0)
            cp[n++] = (uint32_t)(c & 0x1F) << 6 | (s[i + 1] & 0x3F), i += 2;
        else
            cp[n++] = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F), i += 3;
    }
    return n;
}

static char *write_and_read(const struct mx_recall_opts *o, const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct mx_error err;
    CHECK(data_recall_write(path, o, &err) == 0, "write %s: %s", name, err.msg);
    char *text = mx_read_file(path, len, &err);
    CHECK(text != NULL, "read %s: %s", name, err.msg);
    return text;
}

static int case_format(void)
{
    struct mx_recall_opts o;
    data_recall_default(&o);
    o.T = 41, o.pairs = 5, o.queries = 4, o.vocab = 12, o.seqs = 200, o.seed = 3;
    size_t len;
    char *text = write_and_read(&o, "a.txt", &len);
    if (!text)
        return 1;
    uint32_t *cp = mx_xmalloc((len + 1) * sizeof(uint32_t));
    size_t n = decode(text, len, cp);
    CHECK(n == (size_t)o.seqs * (o.T + 1), "%zu code points, expected %ld lines of %d + 1", n, o.seqs, o.T);
    unsigned char ans[64];
    long bad = 0, answers = 0;
    for (long s = 0; s < o.seqs && (size_t)(s + 1) * (o.T + 1) <= n; s++) {
        const uint32_t *q = cp + (size_t)s * (o.T + 1);
        bad += q[o.T] != '\n';
        int val_of[MX_RECALL_VOCAB_MAX];
        for (int k = 0; k < o.vocab; k++)
            val_of[k] = -1;
        for (int i = 0; i < o.pairs; i++) { /* the pairs: key, value; keys distinct */
            uint32_t k = q[2 * i] - MX_RECALL_KEY0, v = q[2 * i + 1] - MX_RECALL_VALUE0;
            bad += k >= (uint32_t)o.vocab || v >= (uint32_t)o.vocab;
            if (k < (uint32_t)o.vocab) {
                bad += val_of[k] != -1; /* a repeated key */
                val_of[k] = (int)v;
            }
        }
        int queries = 0, asked[MX_RECALL_VOCAB_MAX] = {0};
        for (int t = 2 * o.pairs; t < o.T; t++) {
            if (q[t] == MX_RECALL_FILLER)
                continue;
            /* a query: at an even offset from 2K, a key of the pairs, then its value */
            bad += (t - 2 * o.pairs) % 2 != 0 || t + 1 >= o.T;
            uint32_t k = q[t] - MX_RECALL_KEY0;
            if (k >= (uint32_t)o.vocab || val_of[k] < 0 || q[t + 1] != MX_RECALL_VALUE0 + (uint32_t)val_of[k]) {
                bad++;
                continue;
            }
            bad += asked[k]++;
            queries++;
            t++;
        }
        bad += queries != o.queries;
        answers += data_recall_answers(q, o.T, ans);
        for (int t = 0; t < o.T; t++) /* the answers are exactly the values after query keys */
            bad += ans[t] != (t >= 2 * o.pairs + 1 && data_recall_classify(q[t]) == MX_RECALL_VALUE);
    }
    CHECK(bad == 0, "%ld violations of the format", bad);
    CHECK(answers == o.seqs * o.queries, "%ld answers found, expected %ld", answers, o.seqs * o.queries);
    /* every key and value index appears somewhere: the draws cover the vocabulary */
    int seen_key[12] = {0}, seen_val[12] = {0};
    for (size_t i = 0; i < n; i++) {
        if (data_recall_classify(cp[i]) == MX_RECALL_KEY)
            seen_key[cp[i] - MX_RECALL_KEY0] = 1;
        if (data_recall_classify(cp[i]) == MX_RECALL_VALUE)
            seen_val[cp[i] - MX_RECALL_VALUE0] = 1;
    }
    int covered = 0;
    for (int i = 0; i < 12; i++)
        covered += seen_key[i] + seen_val[i];
    CHECK(covered == 24, "only %d of 12 keys and 12 values appear in 200 sequences", covered);
    mx_free(cp);
    mx_free(text);
    return 0;
}

static int case_determinism(void)
{
    struct mx_recall_opts o;
    data_recall_default(&o);
    o.T = 64, o.seqs = 50, o.pairs = 8, o.queries = 8;
    size_t la, lb, lc;
    char *a = write_and_read(&o, "d1.txt", &la), *b = write_and_read(&o, "d2.txt", &lb);
    o.seed = 2;
    char *c = write_and_read(&o, "d3.txt", &lc);
    CHECK(a && b && la == lb && !memcmp(a, b, la), "the same seed gave different files");
    CHECK(a && c && !(la == lc && !memcmp(a, c, la)), "seeds 1 and 2 gave the same file");
    /* sequence i depends on (seed, i) alone: a longer file starts with the shorter one */
    o.seed = 1, o.seqs = 80;
    size_t ld;
    char *d = write_and_read(&o, "d4.txt", &ld);
    CHECK(a && d && ld > la && !memcmp(a, d, la), "50 sequences are not the prefix of 80");
    mx_free(a), mx_free(b), mx_free(c), mx_free(d);
    return 0;
}

static int case_bad_sizes(void)
{
    struct mx_recall_opts o;
    struct mx_error err;
    data_recall_default(&o);
    o.pairs = 65; /* more pairs than keys */
    CHECK(data_recall_check(&o, &err) != 0 && strstr(err.msg, "--pairs"), "pairs > vocab accepted");
    data_recall_default(&o);
    o.queries = 17;
    CHECK(data_recall_check(&o, &err) != 0 && strstr(err.msg, "--queries"), "queries > pairs accepted");
    data_recall_default(&o);
    o.T = 63; /* 2 x (16 + 16) = 64 */
    CHECK(data_recall_check(&o, &err) != 0 && strstr(err.msg, "--T 63"), "T too short accepted");
    o.T = 64;
    CHECK(data_recall_check(&o, &err) == 0, "T = 2(K+Q) refused: %s", err.msg);
    return 0;
}

static int case_aligned_batches(void)
{
    enum { A = 7, N = 7 * 40 + 3 };
    int32_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = i; /* the id is the position: x[0] is the window's start */
    char path[256];
    snprintf(path, sizeof path, "%s/aligned.bin", dir);
    struct mx_error err;
    struct mx_tokfile f;
    CHECK(data_write_tokens(path, ids, N, N, &err) == 0 && data_open(&f, path, &err) == 0, "%s", err.msg);
    struct mx_rng rng;
    mx_rng_seed(&rng, 5);
    int32_t x[16 * 6], y[16 * 6];
    int seen[N] = {0};
    for (int rep = 0; rep < 50; rep++) {
        /* begin 10 is inside sequence 1, so the first start is 14; with end 100 the last window
         * [91, 98) still fits (T + 1 = 7 tokens) */
        CHECK(data_batch_aligned(&f, 10, 100, 16, 6, A, &rng, x, y, &err) == 0, "%s", err.msg);
        for (int b = 0; b < 16; b++) {
            int s0 = x[b * 6];
            CHECK(s0 % A == 0 && s0 >= 14 && s0 <= 91, "window start %d is not a multiple of %d in [14, 91]", s0, A);
            for (int t = 0; t < 6; t++)
                CHECK(x[b * 6 + t] == s0 + t && y[b * 6 + t] == s0 + t + 1, "window %d is not contiguous", b);
            seen[s0] = 1;
        }
    }
    int reached = 0;
    for (int s0 = 14; s0 <= 91; s0 += A)
        reached += seen[s0];
    CHECK(reached == 12, "%d of the 12 aligned starts were drawn in 800 windows", reached);
    CHECK(data_batch_aligned(&f, 15, 27, 1, 6, A, &rng, x, y, &err) != 0 && strstr(err.msg, "--align"),
          "a range without an aligned window accepted");
    CHECK(data_batch_aligned(&f, 0, N, 4, 6, 0, &rng, x, y, &err) == 0, "align 0 (anywhere) refused: %s", err.msg);
    data_close(&f);
    return 0;
}

/* The answer-only loss: data_recall_mask_targets keeps exactly the targets that are query
 * values (position t + 1 of the sequence, after a key asked again), unchanged, and ignores the rest. */
static int case_mask_targets(void)
{
    struct mx_recall_opts o;
    data_recall_default(&o);
    o.T = 40, o.pairs = 4, o.queries = 3, o.vocab = 8;
    enum { B = 3, T = 40, V = 8 };
    /* token ids: 0 filler, 1 newline, 2.. keys, 2+V.. values */
    uint32_t cp_of[2 + 2 * V];
    cp_of[0] = MX_RECALL_FILLER, cp_of[1] = '\n';
    for (int i = 0; i < V; i++)
        cp_of[2 + i] = MX_RECALL_KEY0 + (uint32_t)i, cp_of[2 + V + i] = MX_RECALL_VALUE0 + (uint32_t)i;
    int32_t x[B * T], y[B * T], y0[B * T];
    uint32_t seq[T + 1];
    for (int b = 0; b < B; b++) {
        data_recall_sequence(&o, b, seq);
        for (int t = 0; t <= T; t++) {
            uint32_t c = seq[t];
            int32_t id = c == MX_RECALL_FILLER ? 0 : c == '\n' ? 1 : c >= MX_RECALL_VALUE0 ? (int32_t)(2 + V + c - MX_RECALL_VALUE0) : (int32_t)(2 + c - MX_RECALL_KEY0);
            if (t < T)
                x[b * T + t] = id;
            if (t > 0)
                y[b * T + t - 1] = y0[b * T + t - 1] = id;
        }
    }
    long kept = data_recall_mask_targets(cp_of, x, y, B, T);
    CHECK(kept == B * o.queries, "%ld targets kept, expected %d (the answers)", kept, B * o.queries);
    long bad = 0, n = 0;
    for (int b = 0; b < B; b++) {
        int seen[V] = {0};
        for (int t = 0; t < T; t++) {
            int32_t cur = x[b * T + t];
            int query = cur >= 2 && cur < 2 + V && seen[cur - 2];
            if (cur >= 2 && cur < 2 + V)
                seen[cur - 2] = 1;
            int32_t want = query ? y0[b * T + t] : -1;
            bad += y[b * T + t] != want;
            n += y[b * T + t] >= 0;
        }
    }
    CHECK(bad == 0 && n == kept, "%ld targets masked wrongly (%ld kept)", bad, n);
    return 0;
}

/* The in-sequence guess (data_recall_guess): by hand on sequences with a clear favourite, a tie
 * and a query before its pair's value is counted; and on generated sequences with Q = K, where
 * every pair is asked once, it is exactly the largest count of one value among the K pairs. */
static int case_guess(void)
{
    enum { N = 12 };
    uint32_t k0 = MX_RECALL_KEY0, v0 = MX_RECALL_VALUE0, f = MX_RECALL_FILLER;
    unsigned char ans[64];
    /* pairs a:1 b:1 c:2 d:3, queries c then a: the favourite is 1 (twice), so 0 + 1 */
    uint32_t s1[N] = {k0, v0 + 1, k0 + 1, v0 + 1, k0 + 2, v0 + 2, k0 + 3, v0 + 3, k0 + 2, v0 + 2, k0, v0 + 1};
    CHECK(data_recall_answers(s1, N, ans) == 2, "two answers expected");
    double g = data_recall_guess(s1, N, ans);
    CHECK(g == 1.0, "favourite: %g right, expected 1", g);
    /* pairs a:1 b:2 (a tie), filler, queries b and a: each half right */
    uint32_t s2[N] = {k0, v0 + 1, k0 + 1, v0 + 2, f, f, k0 + 1, v0 + 2, f, f, k0, v0 + 1};
    data_recall_answers(s2, N, ans);
    g = data_recall_guess(s2, N, ans);
    CHECK(g == 1.0, "tie: %g right, expected 0.5 + 0.5", g);
    /* a query's value is not a pair value: pairs a:1 b:2 c:2, queries a, a again, then b.
     * The favourite stays 2: 0 + 0 + 1 (the repeated a counts as an answer, never as a pair) */
    uint32_t s3[N] = {k0, v0 + 1, k0 + 1, v0 + 2, k0 + 2, v0 + 2, k0, v0 + 1, k0, v0 + 1, k0 + 1, v0 + 2};
    CHECK(data_recall_answers(s3, N, ans) == 3, "three answers expected");
    g = data_recall_guess(s3, N, ans);
    CHECK(g == 1.0, "query values: %g right, expected 1", g);
    /* nothing before the pairs: an answer with no pair value yet scores 0 */
    uint32_t s4[4] = {k0, v0 + 1, k0, v0 + 1};
    data_recall_answers(s4, 4, ans);
    CHECK(data_recall_guess(s4, 4, ans) == 1.0, "one pair, one query: the guess is right");
    struct mx_recall_opts o;
    data_recall_default(&o);
    o.T = 40, o.pairs = 6, o.queries = 6, o.vocab = 6;
    uint32_t seq[41];
    long bad = 0;
    for (long i = 0; i < 300; i++) {
        data_recall_sequence(&o, i, seq);
        int count[6] = {0}, max = 0;
        for (int p = 0; p < o.pairs; p++) {
            int c = ++count[seq[2 * p + 1] - v0];
            max = c > max ? c : max;
        }
        data_recall_answers(seq, o.T, ans);
        bad += fabs(data_recall_guess(seq, o.T, ans) - max) > 1e-9;
    }
    CHECK(bad == 0, "%ld of 300 sequences: the guess is not the largest count of a value", bad);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"format", case_format},
        {"determinism", case_determinism},
        {"bad_sizes", case_bad_sizes},
        {"aligned_batches", case_aligned_batches},
        {"mask_targets", case_mask_targets},
        {"guess", case_guess},
    };
    static const struct check_fixture fx = {setup, teardown};
    return check_main(argc, argv, cases, CHECK_N(cases), &fx);
}
