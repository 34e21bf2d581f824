/* test_checkpoint.c — safetensors checkpoints: write then read back (bit-identical params and
 * AdamW moments, equal config, tokenizer and train metadata), and every way a file can be bad
 * (truncated at many cut points, flipped bytes in data and in every header byte, empty,
 * missing, a directory, random garbage, a header edited to claim another config) gives an
 * error naming the problem — never a crash (CI runs this under ASan+UBSan too).
 * Not the training loop's resume (train/ tests it) nor the PyTorch reading (test_pytorch_ref). */
#include "check.h"
#include "model/model.h"
#include "run/run.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void tiny_config(struct mx_config *c)
{
    memset(c, 0, sizeof *c);
    c->n_layer = 2;
    c->n_head = 2;
    c->n_embd = 4; /* tiny: the header scan below writes ~17k copies of the file */
    c->block_size = 4;
    c->vocab_size = 5;
    c->bias = 1;
    c->seed = 18446744073709551557ull; /* near 2^64: the seed survives as a string */
    snprintf(c->attn[0], sizeof c->attn[0], "dense");
    snprintf(c->attn[1], sizeof c->attn[1], "dense");
}

static int config_equal(const struct mx_config *a, const struct mx_config *b)
{
    if (a->n_layer != b->n_layer || a->n_head != b->n_head || a->n_embd != b->n_embd ||
        a->block_size != b->block_size || a->vocab_size != b->vocab_size || a->bias != b->bias ||
        a->seed != b->seed)
        return 0;
    for (int l = 0; l < a->n_layer; l++)
        if (strcmp(a->attn[l], b->attn[l]) != 0)
            return 0;
    return 1;
}

struct fixture {
    char dir[64];
    char path[128]; /* the good checkpoint */
    char bad[128];  /* scratch file for corrupted copies */
    struct mx_model m;
    float *adam_m, *adam_v;
    cJSON *tok, *train;
    char *bytes; /* the good file's bytes */
    size_t len, hl;
};

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

/* Try to load `path` fully (open, model, moments). Returns 0 if everything loaded. */
static int try_load(const char *path, struct mx_error *err, int *stage)
{
    struct mx_ckpt c;
    struct mx_model m;
    *stage = 0;
    if (ckpt_open(&c, path, err) != 0)
        return -1;
    *stage = 1;
    if (ckpt_load_model(&c, &m, err) != 0) {
        ckpt_close(&c);
        return -1;
    }
    *stage = 2;
    float *am = mx_xmalloc(m.n_params * 4), *av = mx_xmalloc(m.n_params * 4);
    int rc = ckpt_load_moments(&c, &m, am, av, err);
    mx_free(am);
    mx_free(av);
    model_free(&m);
    ckpt_close(&c);
    return rc;
}

/* The bytes must be refused and the message must contain every needle. */
static int expect_bad(struct fixture *fx, const void *bytes, size_t n, const char *what,
                      const char *const *needles)
{
    if (write_file(fx->bad, bytes, n) != 0) {
        fprintf(stderr, "  cannot write %s\n", fx->bad);
        return 1;
    }
    struct mx_error err = {{0}};
    int stage;
    if (try_load(fx->bad, &err, &stage) == 0) {
        fprintf(stderr, "  %s: accepted\n", what);
        return 1;
    }
    for (const char *const *nd = needles; nd && *nd; nd++)
        if (!strstr(err.msg, *nd)) {
            fprintf(stderr, "  %s: message lacks '%s': %s\n", what, *nd, err.msg);
            return 1;
        }
    fprintf(stderr, "  %-28s -> %s\n", what, err.msg);
    return 0;
}

static int setup_fixture(struct fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    /* tmpfs when there is one: the flip scan writes the file thousands of times. */
    snprintf(fx->dir, sizeof fx->dir, "%s/mixlm_ckpt_XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(fx->dir)) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(fx->path, sizeof fx->path, "%s/run.safetensors", fx->dir);
    snprintf(fx->bad, sizeof fx->bad, "%s/bad.safetensors", fx->dir);
    struct mx_config c;
    tiny_config(&c);
    struct mx_error err;
    if (model_create(&fx->m, &c, &err) != 0) {
        fprintf(stderr, "  %s\n", err.msg);
        return -1;
    }
    model_init_params(&fx->m);
    struct mx_rng r;
    mx_rng_seed(&r, 5);
    /* Values with every bit pattern that matters: random normals, plus -0, denormals, huge. */
    size_t n = fx->m.n_params;
    fx->adam_m = mx_xmalloc(n * 4);
    fx->adam_v = mx_xmalloc(n * 4);
    mx_rng_fill_normal(&r, fx->adam_m, n, 1e-3f);
    for (size_t i = 0; i < n; i++)
        fx->adam_v[i] = fx->adam_m[i] * fx->adam_m[i];
    fx->m.params[3] = -0.0f;
    fx->m.params[4] = 1e-40f;
    fx->m.params[5] = 3e38f;
    fx->tok = cJSON_Parse("{\"type\":\"byte\"}");
    fx->train =
        cJSON_Parse("{\"step\":123,\"lr\":0.0006,\"rng\":[\"1\",\"2\",\"3\",\"4\"],\"data\":\"a\\\"b\\nc\"}");
    struct mx_ckpt_extra x = {
        .tokenizer = fx->tok, .train = fx->train, .adam_m = fx->adam_m, .adam_v = fx->adam_v};
    if (ckpt_write(fx->path, &fx->m, &x, &err) != 0) {
        fprintf(stderr, "  ckpt_write: %s\n", err.msg);
        return -1;
    }
    fx->bytes = mx_read_file(fx->path, &fx->len, &err);
    if (!fx->bytes)
        return -1;
    for (int i = 0; i < 8; i++)
        fx->hl |= (size_t)(unsigned char)fx->bytes[i] << (8 * i);
    return 0;
}

static void teardown_fixture(struct fixture *fx)
{
    DIR *d = opendir(fx->dir);
    if (d) {
        struct dirent *e;
        char p[400];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%.255s", fx->dir, e->d_name);
                unlink(p);
            }
        closedir(d);
        rmdir(fx->dir);
    }
    mx_free(fx->bytes);
    mx_free(fx->adam_m);
    mx_free(fx->adam_v);
    cJSON_Delete(fx->tok);
    cJSON_Delete(fx->train);
    model_free(&fx->m);
}

static int test_roundtrip(struct fixture *fx)
{
    int f = 0;
    struct mx_error err;
    /* The format: 8-byte length, header padded to 8, data = params then m then v. */
    size_t n = fx->m.n_params;
    if (fx->hl % 8 != 0 || fx->len != 8 + fx->hl + 3 * n * 4) {
        fprintf(stderr, "  file is %zu bytes, header %zu: expected 8 + header + 3 x %zu floats\n", fx->len,
                fx->hl, n);
        f = 1;
    }
    char tmp[200];
    snprintf(tmp, sizeof tmp, "%s.tmp", fx->path);
    if (access(tmp, F_OK) == 0) {
        fprintf(stderr, "  the atomic write left %s behind\n", tmp);
        f = 1;
    }
    struct mx_ckpt c;
    if (ckpt_open(&c, fx->path, &err) != 0) {
        fprintf(stderr, "  ckpt_open: %s\n", err.msg);
        return 1;
    }
    struct mx_model m2;
    if (ckpt_load_model(&c, &m2, &err) != 0) {
        fprintf(stderr, "  ckpt_load_model: %s\n", err.msg);
        ckpt_close(&c);
        return 1;
    }
    if (!config_equal(&fx->m.cfg, &m2.cfg)) {
        fprintf(stderr, "  config differs after the round trip\n");
        f = 1;
    }
    if (m2.n_params != n || memcmp(m2.params, fx->m.params, n * 4) != 0) {
        fprintf(stderr, "  parameters differ after the round trip\n");
        f = 1;
    }
    float *am = mx_xmalloc(n * 4), *av = mx_xmalloc(n * 4);
    if (ckpt_load_moments(&c, &m2, am, av, &err) != 0) {
        fprintf(stderr, "  ckpt_load_moments: %s\n", err.msg);
        f = 1;
    } else if (memcmp(am, fx->adam_m, n * 4) || memcmp(av, fx->adam_v, n * 4)) {
        fprintf(stderr, "  moments differ after the round trip\n");
        f = 1;
    }
    if (!cJSON_Compare(c.tokenizer, fx->tok, 1) || !c.train || !cJSON_Compare(c.train, fx->train, 1)) {
        fprintf(stderr, "  tokenizer or train metadata differ after the round trip\n");
        f = 1;
    }
    mx_free(am);
    mx_free(av);
    model_free(&m2);
    ckpt_close(&c);

    /* Without moments and train state: the model loads, the moments are refused by name. */
    struct mx_ckpt_extra x = {.tokenizer = fx->tok};
    char p2[200];
    snprintf(p2, sizeof p2, "%s/plain.safetensors", fx->dir);
    if (ckpt_write(p2, &fx->m, &x, &err) != 0 || ckpt_open(&c, p2, &err) != 0) {
        fprintf(stderr, "  plain checkpoint: %s\n", err.msg);
        return 1;
    }
    if (c.train) {
        fprintf(stderr, "  plain checkpoint has train metadata\n");
        f = 1;
    }
    if (ckpt_load_model(&c, &m2, &err) != 0) {
        fprintf(stderr, "  plain checkpoint: %s\n", err.msg);
        f = 1;
    } else {
        am = mx_xmalloc(n * 4);
        av = mx_xmalloc(n * 4);
        if (ckpt_load_moments(&c, &m2, am, av, &err) == 0 || !strstr(err.msg, "optim.m.")) {
            fprintf(stderr, "  moments from a checkpoint without them: not refused clearly: %s\n", err.msg);
            f = 1;
        } else
            fprintf(stderr, "  %-28s -> %s\n", "moments absent", err.msg);
        mx_free(am);
        mx_free(av);
        if (memcmp(m2.params, fx->m.params, n * 4) != 0)
            f = 1;
        model_free(&m2);
    }
    ckpt_close(&c);
    /* Overwriting an existing checkpoint works (rename over it). */
    if (ckpt_write(p2, &fx->m, &x, &err) != 0) {
        fprintf(stderr, "  overwrite: %s\n", err.msg);
        f = 1;
    }
    /* An unwritable destination is an error, not a crash. */
    if (ckpt_write("/nonexistent-dir/x.safetensors", &fx->m, &x, &err) == 0) {
        fprintf(stderr, "  ckpt_write into a missing directory succeeded\n");
        f = 1;
    } else
        fprintf(stderr, "  %-28s -> %s\n", "write to missing dir", err.msg);
    return f;
}

static int test_truncated(struct fixture *fx)
{
    int f = 0;
    size_t data = fx->len - 8 - fx->hl;
    struct {
        size_t cut;
        const char *what;
        const char *needle;
    } cuts[] = {
        {0, "empty file", "too short"},
        {5, "cut inside the length", "too short"},
        {8, "cut after the length", "does not fit"},
        {8 + 1, "cut after 1 header byte", "does not fit"},
        {8 + fx->hl / 2, "cut inside the header", "does not fit"},
        {8 + fx->hl - 1, "cut 1 byte before data", "does not fit"},
        {8 + fx->hl, "cut before the data", "outside the file"},
        {8 + fx->hl + 3, "cut 3 bytes into data", "outside the file"},
        {8 + fx->hl + data / 3, "cut after the params", "outside the file"},
        {8 + fx->hl + data / 2, "cut inside the moments", "outside the file"},
        {fx->len - 1, "cut the last byte", "outside the file"},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        f |= expect_bad(fx, fx->bytes, cuts[i].cut, cuts[i].what,
                        (const char *const[]){cuts[i].needle, fx->bad, NULL});
    /* A byte appended: the data no longer ends where the tensors do. */
    char *longer = mx_xmalloc(fx->len + 1);
    memcpy(longer, fx->bytes, fx->len);
    longer[fx->len] = 0;
    f |= expect_bad(fx, longer, fx->len + 1, "one byte appended",
                    (const char *const[]){"tensors cover", NULL});
    mx_free(longer);
    return f;
}

static int test_flips(struct fixture *fx)
{
    int f = 0;
    char *b = mx_xmalloc(fx->len);
    /* Data: a flipped bit in a parameter, in a moment, in the last byte. */
    size_t at[] = {8 + fx->hl, 8 + fx->hl + 12345 % (fx->len - 8 - fx->hl), fx->len - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        memcpy(b, fx->bytes, fx->len);
        b[at[i]] ^= 0x10;
        char what[64];
        snprintf(what, sizeof what, "data byte %zu flipped", at[i]);
        f |= expect_bad(fx, b, fx->len, what, (const char *const[]){"checksum mismatch", NULL});
    }
    /* Every byte of the length field and of the header, one bit at a time (bit 0 everywhere,
     * bit 5 at every 4th byte).
     * The JSON is followed by space padding to a multiple of 8; a flipped padding byte
     * carries no information and is allowed to load. Everything else must be refused. */
    size_t json_end = 8 + fx->hl;
    while (json_end > 8 && fx->bytes[json_end - 1] == ' ')
        json_end--;
    int silent = 0, tried = 0;
    const unsigned char bits[2] = {0x01, 0x20};
    for (size_t pos = 0; pos < json_end; pos++)
        for (int k = 0; k < (pos % 4 ? 1 : 2); k++) { /* 0x20 at every 4th byte: time */
            memcpy(b, fx->bytes, fx->len);
            b[pos] ^= (char)bits[k];
            if (write_file(fx->bad, b, fx->len) != 0) {
                f = 1;
                break;
            }
            struct mx_error err = {{0}};
            int stage;
            tried++;
            if (try_load(fx->bad, &err, &stage) == 0) {
                if (silent++ < 12) {
                    size_t lo = pos > 24 ? pos - 24 : 0;
                    fprintf(stderr, "  header byte %zu ^0x%02x accepted: ...%.*s[%c]%.*s...\n", pos, bits[k],
                            (int)(pos - lo), fx->bytes + lo, b[pos], 24, fx->bytes + pos + 1);
                }
            } else if (!err.msg[0]) {
                fprintf(stderr, "  header byte %zu ^0x%02x refused without a message\n", pos, bits[k]);
                f = 1;
            }
        }
    fprintf(stderr, "  header flips: %d tried, %d accepted\n", tried, silent);
    if (silent)
        f = 1;
    /* Padding flips load (documented above) — and must not crash. */
    if (json_end < 8 + fx->hl) {
        memcpy(b, fx->bytes, fx->len);
        b[8 + fx->hl - 1] ^= 0x01;
        write_file(fx->bad, b, fx->len);
        struct mx_error err;
        int stage;
        try_load(fx->bad, &err, &stage);
    }
    mx_free(b);
    return f;
}

/* Replace the first occurrence of `from` in the header by `to`, which may be one byte longer
 * when the header ends in a padding space (eaten, so the header length stays). */
static int edit_header(struct fixture *fx, char *b, const char *from, const char *to)
{
    memcpy(b, fx->bytes, fx->len);
    size_t n = strlen(from), nt = strlen(to), end = 8 + fx->hl;
    MX_ASSERT(nt == n || nt == n + 1);
    if (nt > n && b[end - 1] != ' ') {
        fprintf(stderr, "  no padding byte to grow the header by one\n");
        return -1;
    }
    for (size_t i = 8; i + n <= end; i++)
        if (!memcmp(b + i, from, n)) {
            memmove(b + i + nt, b + i + n, end - (i + nt));
            memcpy(b + i, to, nt);
            return 0;
        }
    fprintf(stderr, "  '%s' not found in the header\n", from);
    return -1;
}

/* mixlm's checksum recomputed over the edited file and written over the stored one (same
 * length), as a deliberate editor would: then only the structural checks stand guard. */
static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
    return mx_hash64(h, p, n);
}

static void reseal(struct fixture *fx, char *b)
{
    cJSON *h = cJSON_ParseWithLength(b + 8, fx->hl);
    MX_ASSERT(h);
    uint64_t sum = fnv(0xcbf29ce484222325ull, (const unsigned char *)b + 8 + fx->hl, fx->len - 8 - fx->hl);
    const cJSON *e;
    cJSON_ArrayForEach(e,
                       cJSON_GetObjectItemCaseSensitive(h, "__metadata__")) if (strcmp(e->string, "checksum"))
    {
        sum = fnv(sum, (const unsigned char *)e->string, strlen(e->string) + 1);
        sum = fnv(sum, (const unsigned char *)e->valuestring, strlen(e->valuestring) + 1);
    }
    cJSON_Delete(h);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)sum);
    const char *key = "\"checksum\":\"";
    char *at = memmem(b + 8, fx->hl, key, strlen(key));
    MX_ASSERT(at);
    memcpy(at + strlen(key), hex, 16);
}

static int test_other_config(struct fixture *fx)
{
    int f = 0;
    char *b = mx_xmalloc(fx->len);
    /* The config is a JSON string inside the header JSON, hence the escaped quotes. Each edit
     * keeps the header length, recomputes nothing, and describes a model whose tensors differ
     * from the stored ones (in shape, in count, or in meaning: heads change no shape). */
    const struct {
        const char *from, *to, *what;
    } edits[] = {
        {"\\\"n_embd\\\":4", "\\\"n_embd\\\":6", "config n_embd 4 -> 6"},
        {"\\\"vocab_size\\\":5", "\\\"vocab_size\\\":6", "config vocab 5 -> 6"},
        {"\\\"block_size\\\":4", "\\\"block_size\\\":2", "config block 4 -> 2"},
        {"\\\"n_head\\\":2", "\\\"n_head\\\":4", "config heads 2 -> 4"},
        {"\\\"bias\\\":true", "\\\"bias\\\":false", "config bias true -> false"},
        {"\\\"seed\\\":\\\"1844", "\\\"seed\\\":\\\"1845", "config seed edited"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        if (edit_header(fx, b, edits[i].from, edits[i].to) != 0) {
            f = 1;
            continue;
        }
        f |= expect_bad(fx, b, fx->len, edits[i].what, (const char *const[]){"checksum mismatch", NULL});
    }
    /* Resealed with a valid checksum, the structure must still reject a config whose tensors
     * differ in shape or in count. (An edited n_head or seed changes no tensor: only the
     * checksum, checked above, can catch those.) */
    const struct {
        const char *from, *to, *what, *needle;
    } sealed[] = {
        {"\\\"n_embd\\\":4", "\\\"n_embd\\\":6", "resealed n_embd 4 -> 6", "different model config"},
        {"\\\"vocab_size\\\":5", "\\\"vocab_size\\\":6", "resealed vocab 5 -> 6", "different model config"},
        {"\\\"block_size\\\":4", "\\\"block_size\\\":2", "resealed block 4 -> 2", "different model config"},
        {"\\\"bias\\\":true", "\\\"bias\\\":false", "resealed bias -> false", "config describes"},
    };
    for (size_t i = 0; i < sizeof sealed / sizeof sealed[0]; i++) {
        if (edit_header(fx, b, sealed[i].from, sealed[i].to) != 0) {
            f = 1;
            continue;
        }
        reseal(fx, b);
        f |= expect_bad(fx, b, fx->len, sealed[i].what, (const char *const[]){sealed[i].needle, NULL});
    }
    /* The reseal itself is right: an unedited resealed copy loads. */
    memcpy(b, fx->bytes, fx->len);
    reseal(fx, b);
    struct mx_error err;
    int stage;
    if (write_file(fx->bad, b, fx->len) != 0 || try_load(fx->bad, &err, &stage) != 0) {
        fprintf(stderr, "  resealed unedited copy refused: %s\n", err.msg);
        f = 1;
    }
    mx_free(b);
    return f;
}

/* A copy of the good file whose __metadata__ value `key` is replaced by `value` (the header
 * rebuilt and padded, the checksum recomputed as mixlm computes it): what a deliberate editor
 * writes. Returns the bytes (mx_free) and their length in *n. */
static char *rewrite_meta(struct fixture *fx, const char *key, const char *value, size_t *n)
{
    cJSON *h = cJSON_ParseWithLength(fx->bytes + 8, fx->hl);
    MX_ASSERT(h);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(h, "__metadata__");
    MX_ASSERT(cJSON_ReplaceItemInObjectCaseSensitive(meta, key, cJSON_CreateString(value)));
    size_t data_len = fx->len - 8 - fx->hl;
    uint64_t sum = fnv(0xcbf29ce484222325ull, (const unsigned char *)fx->bytes + 8 + fx->hl, data_len);
    const cJSON *e;
    cJSON_ArrayForEach(e, meta) if (strcmp(e->string, "checksum"))
    {
        sum = fnv(sum, (const unsigned char *)e->string, strlen(e->string) + 1);
        sum = fnv(sum, (const unsigned char *)e->valuestring, strlen(e->valuestring) + 1);
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)sum);
    MX_ASSERT(cJSON_ReplaceItemInObjectCaseSensitive(meta, "checksum", cJSON_CreateString(hex)));
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t jl = strlen(js), hl = (jl + 7) & ~(size_t)7;
    *n = 8 + hl + data_len;
    char *b = mx_xmalloc(*n);
    for (int i = 0; i < 8; i++)
        b[i] = (char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, js, jl);
    memset(b + 8 + jl, ' ', hl - jl);
    memcpy(b + 8 + hl, fx->bytes + 8 + fx->hl, data_len);
    free(js);
    return b;
}

/* A resealed config claiming sizes its tensors do not have (a huge context with a sparse
 * mixer would take minutes to lay out) is refused from the tensors, before the model is built. */
static int test_config_sizes(struct fixture *fx)
{
    int f = 0;
    const struct {
        const char *config, *what, *needle;
    } cases[] = {
        {"{\"n_layer\":2,\"n_head\":2,\"n_embd\":4,\"block_size\":4194304,\"vocab_size\":5,\"bias\":true,"
         "\"seed\":\"18446744073709551557\",\"attn\":[\"fixed:s=4,c=1\",\"fixed:s=4,c=1\"]}",
         "huge block_size, sparse", "'block_size' is 4194304 but tensor 'transformer.wpe.weight' has 4 rows"},
        {"{\"n_layer\":2,\"n_head\":2,\"n_embd\":4,\"block_size\":4,\"vocab_size\":16000000,\"bias\":true,"
         "\"seed\":\"18446744073709551557\",\"attn\":[\"dense\",\"dense\"]}",
         "huge vocab_size", "'vocab_size' is 16000000 but tensor 'transformer.wte.weight' has 5 rows"},
        {"{\"n_layer\":2,\"n_head\":2,\"n_embd\":4096,\"block_size\":4,\"vocab_size\":5,\"bias\":true,"
         "\"seed\":\"18446744073709551557\",\"attn\":[\"dense\",\"dense\"]}",
         "huge n_embd", "'n_embd' is 4096"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        char *b = rewrite_meta(fx, "config", cases[i].config, &n);
        double t0 = mx_now();
        f |= expect_bad(fx, b, n, cases[i].what, (const char *const[]){cases[i].needle, NULL});
        double dt = mx_now() - t0;
        CHECK(dt < 1.0, "%s: refused after %.2f s (the model was built first?)", cases[i].what, dt);
        mx_free(b);
    }
    /* The rewrite itself is right: the unedited config rewritten loads. */
    cJSON *h = cJSON_ParseWithLength(fx->bytes + 8, fx->hl);
    const char *cfg = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "__metadata__"), "config"));
    size_t n;
    char *b = rewrite_meta(fx, "config", cfg, &n);
    cJSON_Delete(h);
    struct mx_error err;
    int stage;
    if (write_file(fx->bad, b, n) != 0 || try_load(fx->bad, &err, &stage) != 0) {
        fprintf(stderr, "  rewritten unedited copy refused: %s\n", err.msg);
        f = 1;
    }
    mx_free(b);
    return f;
}

/* The training state read by --resume: a step outside [0, steps] or a malformed data position
 * (the batch RNG) is refused with the field named, never cast or used. */
static int test_train_state(void)
{
    int f = 0;
    const char *good = "{\"step\":25,\"rng\":[\"00000000000000ff\",\"0123456789abcdef\",\"0000000000000000\","
                       "\"fedcba9876543210\"],\"elapsed_s\":1.5,\"opts\":{\"steps\":60}}";
    struct run_state rs;
    struct mx_error err = {{0}};
    cJSON *j = cJSON_Parse(good);
    CHECK(run_state_from_json(j, &rs, &err) == 0, "good state refused: %s", err.msg);
    CHECK(rs.step == 25 && rs.rng[0] == 0xff && rs.rng[3] == 0xfedcba9876543210ull && rs.elapsed == 1.5,
          "good state read wrong");
    cJSON_Delete(j);
    const struct {
        const char *from, *to, *needle;
    } bad[] = {
        {"\"step\":25", "\"step\":-5", "'step' is -5"},
        {"\"step\":25", "\"step\":61", "'step' is 61; it must be an integer in [0, 60]"},
        {"\"step\":25", "\"step\":1e300", "'step' is 1e+300"},
        {"\"step\":25", "\"step\":2.5", "'step' is 2.5"},
        {"\"step\":25", "\"step\":\"25\"", "'step' is missing"},
        {"\"00000000000000ff\"", "\"xyz\"", "'rng[0]' (the data position) is 'xyz'"},
        {"\"00000000000000ff\"", "\"-0000000000000ff\"", "'rng[0]'"},
        {"\"00000000000000ff\"", "7", "'rng[0]'"},
        {"\"00000000000000ff\",", "", "'rng' (the data position) must be 4"},
        {"\"elapsed_s\":1.5", "\"elapsed_s\":-1", "'elapsed_s'"},
        {"\"steps\":60", "\"steps\":-60", "'steps'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        const char *at = strstr(good, bad[i].from);
        MX_ASSERT(at);
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good), good, bad[i].to, at + strlen(bad[i].from));
        j = cJSON_Parse(text);
        MX_ASSERT(j);
        int rc = run_state_from_json(j, &rs, &err);
        CHECK(rc != 0 && strstr(err.msg, bad[i].needle), "%s: rc %d, message '%s' lacks '%s'", text, rc,
              rc ? err.msg : "", bad[i].needle);
        if (rc)
            fprintf(stderr, "  %-28.28s -> %s\n", bad[i].to, err.msg);
        cJSON_Delete(j);
    }
    /* An all-zero RNG is xoshiro's fixed point: refused too. */
    j = cJSON_Parse("{\"step\":1,\"rng\":[\"0000000000000000\",\"0000000000000000\",\"0000000000000000\","
                    "\"0000000000000000\"],\"opts\":{\"steps\":60}}");
    CHECK(run_state_from_json(j, &rs, &err) != 0 && strstr(err.msg, "all zero"), "all-zero rng accepted");
    cJSON_Delete(j);
    /* Stored options out of range are refused before any cast. */
    struct mx_train_opts o;
    run_opts_default(&o);
    cJSON *oj = run_opts_to_json(&o);
    cJSON_ReplaceItemInObjectCaseSensitive(oj, "steps", cJSON_CreateNumber(1e300));
    CHECK(run_opts_from_json(&o, oj, &err) != 0 && strstr(err.msg, "'steps' is 1e+300"), "steps 1e300: %s",
          err.msg);
    cJSON_ReplaceItemInObjectCaseSensitive(oj, "steps", cJSON_CreateNumber(100));
    cJSON_ReplaceItemInObjectCaseSensitive(oj, "batch", cJSON_CreateNumber(-3));
    CHECK(run_opts_from_json(&o, oj, &err) != 0 && strstr(err.msg, "'batch' is -3"), "batch -3: %s", err.msg);
    cJSON_Delete(oj);
    return f;
}

/* A full disk while checkpointing: the message names the file, errno's text and what to do,
 * and no temporary is left. The temporary is made a link to /dev/full (every write: ENOSPC). */
static int test_disk_full(struct fixture *fx)
{
    if (access("/dev/full", W_OK) != 0)
        return check_skip("no writable /dev/full");
    char path[200], tmp[260];
    snprintf(path, sizeof path, "%s/full.safetensors", fx->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (symlink("/dev/full", tmp) != 0)
        return check_skip("cannot make a symlink in %s", fx->dir);
    struct mx_ckpt_extra x = {
        .tokenizer = fx->tok, .train = fx->train, .adam_m = fx->adam_m, .adam_v = fx->adam_v};
    struct mx_error err = {{0}};
    int rc = ckpt_write(path, &fx->m, &x, &err);
    fprintf(stderr, "  disk full -> %s\n", err.msg);
    CHECK(rc != 0, "a write to a full disk succeeded");
    CHECK(strstr(err.msg, tmp) != NULL, "message lacks the file '%s': %s", tmp, err.msg);
    CHECK(strstr(err.msg, "No space left on device") != NULL, "message lacks strerror(ENOSPC): %s", err.msg);
    CHECK(strstr(err.msg, "free space") != NULL, "message lacks what to do: %s", err.msg);
    CHECK(access(tmp, F_OK) != 0 && !mx_file_exists(path), "a temporary or the target was left behind");
    unlink(tmp);
    return 0;
}

static int test_garbage(struct fixture *fx)
{
    int f = 0;
    struct mx_error err = {{0}};
    int stage;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/does-not-exist.safetensors", fx->dir);
    if (try_load(missing, &err, &stage) == 0 || !strstr(err.msg, "does-not-exist") ||
        !strstr(err.msg, "No such file")) {
        fprintf(stderr, "  missing file not refused clearly: %s\n", err.msg);
        f = 1;
    } else
        fprintf(stderr, "  %-28s -> %s\n", "missing file", err.msg);
    if (try_load(fx->dir, &err, &stage) == 0 || !strstr(err.msg, "not a regular file")) {
        fprintf(stderr, "  a directory not refused clearly: %s\n", err.msg);
        f = 1;
    } else
        fprintf(stderr, "  %-28s -> %s\n", "a directory", err.msg);

    struct mx_rng r;
    mx_rng_seed(&r, 9);
    size_t n = 4096;
    unsigned char *g = mx_xmalloc(n);
    for (int rep = 0; rep < 20; rep++) {
        for (size_t i = 0; i < n; i++)
            g[i] = (unsigned char)mx_rng_below(&r, 256);
        /* Half the time a plausible header length, so the JSON parser sees the garbage. */
        if (rep % 2) {
            uint64_t hl = 8 + mx_rng_below(&r, (uint32_t)(n - 16));
            for (int i = 0; i < 8; i++)
                g[i] = (unsigned char)(hl >> (8 * i));
        }
        f |= expect_bad(fx, g, n, rep % 2 ? "garbage, plausible length" : "garbage", NULL);
    }
    /* Huge header length (2^63 + small): must not overflow into a small number. */
    memset(g, 0, 16);
    g[7] = 0x80;
    g[0] = 8;
    f |= expect_bad(fx, g, n, "header length 2^63+8", (const char *const[]){"header length", NULL});
    /* Valid JSON, not mixlm's; mixlm's without tensors; a tensor of another dtype. */
    const char *hdrs[][2] = {
        {"{\"a\":1}", "no mixlm metadata"},
        {"[1,2,3]", "not valid JSON"},
        {"{\"__metadata__\":{\"format\":\"99\"}}", "format version 99"},
        {"{\"__metadata__\":{\"format\":\"1\"},\"x\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}"
         "}",
         "F32"},
        {"{\"__metadata__\":{\"format\":\"1\"},\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":["
         "\"0\",8]}}",
         ""},
        {"{\"__metadata__\":{\"format\":\"1\"},\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}"
         "}",
         "outside"},
        {"{\"__metadata__\":{\"format\":\"1\"},\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,"
         "1e30]}}",
         "outside"},
        {"{\"__metadata__\":{\"format\":\"1\"},\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,8]"
         "}}",
         "outside"},
        {"{\"__metadata__\":{\"format\":\"1\"},\"x\":5}", "F32"},
        {"{\"__metadata__\":{\"format\":\"1\",\"checksum\":\"0\"}}", ""},
    };
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        size_t jl = strlen(hdrs[i][0]);
        memset(g, 0, n);
        for (int k = 0; k < 8; k++)
            g[k] = (unsigned char)((uint64_t)jl >> (8 * k));
        memcpy(g + 8, hdrs[i][0], jl);
        f |= expect_bad(fx, g, 8 + jl + 8, hdrs[i][0], (const char *const[]){hdrs[i][1], NULL});
    }
    mx_free(g);
    return f;
}

static struct fixture the_fixture;

static int setup(void)
{
    return setup_fixture(&the_fixture);
}

static void teardown(void)
{
    teardown_fixture(&the_fixture);
}

static int case_round_trip(void)
{
    return test_roundtrip(&the_fixture);
}

static int case_truncated(void)
{
    return test_truncated(&the_fixture);
}

static int case_flipped_bytes(void)
{
    return test_flips(&the_fixture);
}

static int case_other_config(void)
{
    return test_other_config(&the_fixture);
}

static int case_config_sizes(void)
{
    return test_config_sizes(&the_fixture);
}

static int case_train_state(void)
{
    return test_train_state();
}

static int case_disk_full(void)
{
    return test_disk_full(&the_fixture);
}

static int case_garbage(void)
{
    return test_garbage(&the_fixture);
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"round_trip", case_round_trip},
        {"truncated", case_truncated},
        {"flipped_bytes", case_flipped_bytes},
        {"other_config", case_other_config},
        {"garbage", case_garbage},
        {"config_sizes", case_config_sizes},
        {"train_state", case_train_state},
        {"disk_full", case_disk_full},
    };
    static const struct check_fixture fx = {setup, teardown};
    return check_main(argc, argv, cases, CHECK_N(cases), &fx);
}
