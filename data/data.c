/* data.c — token files (write atomically, mmap and validate), text preparation, the train/val
 * split, random batches and sequential windows. The layout is documented in data.h.
 * Not a tokenizer and not a loader thread: a batch is B small copies out of the page cache. */
#include "data/data.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static int id_width(int vocab)
{
    return vocab <= 65536 ? 2 : 4;
}

/* ---- writing --------------------------------------------------------------------------------- */

struct write_ctx {
    const int32_t *ids;
    size_t n;
    int vocab;
};

static int write_tokens(FILE *f, void *ctx, struct mx_error *err)
{
    const struct write_ctx *c = ctx;
    int w = id_width(c->vocab);
    unsigned char hdr[MX_TOKFILE_HEADER] = {0};
    memcpy(hdr, MX_TOKFILE_MAGIC, 8);
    put_u32(hdr + 8, MX_TOKFILE_VERSION);
    put_u32(hdr + 12, MX_TOKFILE_HEADER);
    put_u32(hdr + 16, (uint32_t)c->vocab);
    put_u32(hdr + 20, (uint32_t)w);
    put_u64(hdr + 24, (uint64_t)c->n);
    if (fwrite(hdr, 1, sizeof hdr, f) != sizeof hdr)
        return mx_errorf(err, "short write of the token file header (disk full?)");
    enum { CHUNK = 1 << 14 };
    unsigned char buf[CHUNK * 4];
    for (size_t i0 = 0; i0 < c->n; i0 += CHUNK) {
        size_t i1 = i0 + CHUNK < c->n ? i0 + CHUNK : c->n;
        unsigned char *p = buf;
        for (size_t i = i0; i < i1; i++) {
            uint32_t v = (uint32_t)c->ids[i];
            for (int b = 0; b < w; b++)
                *p++ = (unsigned char)(v >> (8 * b));
        }
        size_t bytes = (size_t)(p - buf);
        if (fwrite(buf, 1, bytes, f) != bytes)
            return mx_errorf(err, "short write of %zu token bytes (disk full?)", bytes);
    }
    return 0;
}

int data_write_tokens(const char *path, const int32_t *ids, size_t n, int vocab, struct mx_error *err)
{
    if (vocab < 1 || vocab > MX_TOK_VOCAB_MAX)
        return mx_errorf(err, "token file '%s': vocabulary size %d is out of range [1, %d]", path, vocab,
                         MX_TOK_VOCAB_MAX);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return mx_errorf(err, "token file '%s': id %d at position %zu is outside the vocabulary [0, %d)",
                             path, (int)ids[i], i, vocab);
    struct write_ctx c = {ids, n, vocab};
    return mx_write_atomic(path, write_tokens, &c, err);
}

/* ---- reading --------------------------------------------------------------------------------- */

#define DATA_FIX "re-create it from the text (it is truncated, damaged or not a mixlm token file)"

void data_close(struct mx_tokfile *f)
{
    if (f->map)
        munmap((void *)f->map, f->map_len);
    memset(f, 0, sizeof *f);
}

int32_t data_get(const struct mx_tokfile *f, size_t i)
{
    MX_ASSERT(i < f->count);
    const unsigned char *p = f->ids + i * (size_t)f->id_bytes;
    if (f->id_bytes == 2)
        return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8);
    return (int32_t)get_u32(p);
}

/* First position holding an id >= vocab, or count when all are in range. The common case (all
 * fine) is one parallel max over the file; the position is searched only on failure. */
static size_t find_bad_id(const struct mx_tokfile *f)
{
    uint32_t mx = 0;
    long long n = (long long)f->count;
    if (f->id_bytes == 2) {
        const unsigned char *p = f->ids;
#pragma omp parallel for reduction(max : mx) schedule(static)
        for (long long i = 0; i < n; i++) {
            uint32_t v = (uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8;
            mx = v > mx ? v : mx;
        }
    } else {
        const unsigned char *p = f->ids;
#pragma omp parallel for reduction(max : mx) schedule(static)
        for (long long i = 0; i < n; i++) {
            uint32_t v = get_u32(p + 4 * i);
            mx = v > mx ? v : mx;
        }
    }
    if (f->count == 0 || mx < (uint32_t)f->vocab)
        return f->count;
    for (size_t i = 0; i < f->count; i++)
        if ((uint32_t)data_get(f, i) >= (uint32_t)f->vocab)
            return i;
    return f->count;
}

int data_open(struct mx_tokfile *f, const char *path, struct mx_error *err)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return mx_errorf(err, "cannot open token file '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mx_errorf(err, "token file '%s' is not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < MX_TOKFILE_HEADER) {
        close(fd);
        return mx_errorf(err, "token file '%s' is %zu bytes, shorter than its %d-byte header; " DATA_FIX, path,
                         size, MX_TOKFILE_HEADER);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return mx_errorf(err, "cannot map token file '%s' (%zu bytes): %s", path, size, strerror(errno));
    f->map = map;
    f->map_len = size;
    const unsigned char *h = f->map;
    if (memcmp(h, MX_TOKFILE_MAGIC, 8) != 0) {
        mx_errorf(err, "'%s' is not a mixlm token file (its first 8 bytes are not \"%s\"); " DATA_FIX, path,
                  MX_TOKFILE_MAGIC);
        goto out_close;
    }
    uint32_t version = get_u32(h + 8), hsize = get_u32(h + 12), vocab = get_u32(h + 16), w = get_u32(h + 20);
    uint64_t count = get_u64(h + 24);
    if (version != MX_TOKFILE_VERSION) {
        mx_errorf(err, "token file '%s' has format version %u; this build reads version %d; re-create it from "
                       "the text with this build",
                  path, version, MX_TOKFILE_VERSION);
        goto out_close;
    }
    if (hsize != MX_TOKFILE_HEADER || vocab < 1 || vocab > MX_TOK_VOCAB_MAX || (w != 2 && w != 4) ||
        (w == 2 && vocab > 65536)) {
        mx_errorf(err, "token file '%s' has an invalid header (header size %u, vocabulary %u, id width %u; "
                       "expected %d, [1, %d], 2 or 4 bytes); " DATA_FIX,
                  path, hsize, vocab, w, MX_TOKFILE_HEADER, MX_TOK_VOCAB_MAX);
        goto out_close;
    }
    if (count > (SIZE_MAX - MX_TOKFILE_HEADER) / w || size != MX_TOKFILE_HEADER + (size_t)count * w) {
        mx_errorf(err, "token file '%s' is %zu bytes but its header promises %llu ids of %u bytes (%.0f bytes "
                       "in all); " DATA_FIX,
                  path, size, (unsigned long long)count, w, MX_TOKFILE_HEADER + (double)count * w);
        goto out_close;
    }
    f->ids = f->map + MX_TOKFILE_HEADER;
    f->count = (size_t)count;
    f->vocab = (int)vocab;
    f->id_bytes = (int)w;
    size_t bad = find_bad_id(f);
    if (bad < f->count) {
        mx_errorf(err, "token file '%s': id %u at position %zu is outside its vocabulary [0, %u); " DATA_FIX, path,
                  (unsigned)data_get(f, bad), bad, vocab);
        goto out_close;
    }
    return 0;
out_close:
    data_close(f);
    return -1;
}

/* ---- preparation ----------------------------------------------------------------------------- */

int data_prepare_text(const char *text_path, const struct tokenizer *tok, const char *out_tokfile,
                      struct mx_error *err)
{
    size_t len;
    char *text = mx_read_file(text_path, &len, err);
    if (!text)
        return mx_error_wrap(err, "training text");
    int rc = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    if (len == 0) {
        rc = mx_errorf(err, "training text '%s' is empty; give a text file with some content", text_path);
        goto out;
    }
    if (tok_encode(tok, text, len, &ids, &n, err) != 0) {
        rc = mx_error_wrap(err, "encoding '%s' with the %s tokenizer", text_path, tok_kind(tok));
        goto out;
    }
    rc = data_write_tokens(out_tokfile, ids, n, tok_vocab_size(tok), err);
out:
    mx_free(ids);
    mx_free(text);
    return rc;
}

/* ---- split, batches, windows ----------------------------------------------------------------- */

void data_split(size_t count, double val_frac, size_t *train_end)
{
    MX_ASSERT(val_frac >= 0.0 && val_frac < 1.0);
    size_t e = (size_t)((double)count * (1.0 - val_frac));
    *train_end = e > count ? count : e;
}

/* Uniform in [0, n), n > 0, for ranges beyond 32 bits too (rejection sampling: no modulo bias). */
static uint64_t rng_below64(struct mx_rng *rng, uint64_t n)
{
    if (n <= UINT32_MAX)
        return mx_rng_below(rng, (uint32_t)n);
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do
        v = mx_rng_u64(rng);
    while (v >= limit);
    return v % n;
}

static void copy_window(const struct mx_tokfile *f, size_t start, int T, int32_t *x, int32_t *y)
{
    const unsigned char *p = f->ids + start * (size_t)f->id_bytes;
    if (f->id_bytes == 2) {
        int32_t prev = (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8);
        for (int t = 0; t < T; t++) {
            const unsigned char *q = p + 2 * (size_t)(t + 1);
            int32_t next = (int32_t)((uint32_t)q[0] | (uint32_t)q[1] << 8);
            x[t] = prev;
            y[t] = next;
            prev = next;
        }
    } else {
        for (int t = 0; t < T; t++) {
            x[t] = (int32_t)get_u32(p + 4 * (size_t)t);
            y[t] = (int32_t)get_u32(p + 4 * (size_t)(t + 1));
        }
    }
}

int data_batch(const struct mx_tokfile *f, size_t begin, size_t end, int B, int T, struct mx_rng *rng,
               int32_t *x, int32_t *y, struct mx_error *err)
{
    if (B < 1 || T < 1)
        return mx_errorf(err, "batch size %d and context %d must both be >= 1", B, T);
    if (begin > end || end > f->count)
        return mx_errorf(err, "token range [%zu, %zu) is outside the token file's %zu tokens", begin, end, f->count);
    if (end - begin < (size_t)T + 1)
        return mx_errorf(err,
                         "a %zu-token range is too short for context %d (a window needs %d tokens: %d inputs + "
                         "1 target); use a smaller --context or more data",
                         end - begin, T, T + 1, T);
    uint64_t starts = (uint64_t)(end - begin - (size_t)T); /* start in [begin, end - T - 1] */
    for (int b = 0; b < B; b++) {
        size_t s = begin + (size_t)rng_below64(rng, starts);
        copy_window(f, s, T, x + (size_t)b * T, y + (size_t)b * T);
    }
    return 0;
}

int data_batch_aligned(const struct mx_tokfile *f, size_t begin, size_t end, int B, int T, long align,
                       struct mx_rng *rng, int32_t *x, int32_t *y, struct mx_error *err)
{
    if (align <= 1)
        return data_batch(f, begin, end, B, T, rng, x, y, err);
    if (B < 1 || T < 1)
        return mx_errorf(err, "batch size %d and context %d must both be >= 1", B, T);
    if (begin > end || end > f->count)
        return mx_errorf(err, "token range [%zu, %zu) is outside the token file's %zu tokens", begin, end, f->count);
    size_t a = (size_t)align, first = (begin + a - 1) / a; /* index of the first start >= begin */
    size_t last = end >= (size_t)T + 1 ? (end - (size_t)T - 1) / a : 0; /* of the last that fits */
    if (end < (size_t)T + 1 || last < first)
        return mx_errorf(err,
                         "the token range [%zu, %zu) holds no window of %d + 1 tokens starting at a multiple of "
                         "--align %ld; use more data or a larger split, or a --context below --align",
                         begin, end, T, align);
    uint64_t n = (uint64_t)(last - first + 1);
    for (int b = 0; b < B; b++) {
        size_t s = (first + (size_t)rng_below64(rng, n)) * a;
        copy_window(f, s, T, x + (size_t)b * T, y + (size_t)b * T);
    }
    return 0;
}

size_t data_num_windows(size_t begin, size_t end, int T)
{
    MX_ASSERT(T >= 1);
    if (end <= begin || end - begin < (size_t)T + 1)
        return 0;
    return (end - begin - 1) / (size_t)T;
}

void data_window(const struct mx_tokfile *f, size_t start, int T, int32_t *x, int32_t *y)
{
    MX_ASSERT(T >= 1 && start <= f->count && f->count - start >= (size_t)T + 1);
    copy_window(f, start, T, x, y);
}
