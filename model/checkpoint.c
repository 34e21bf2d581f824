/* checkpoint.c — model config <-> JSON, and safetensors checkpoints: parameters under their
 * nanoGPT names, AdamW moments under "optim.m./optim.v.", metadata (format, config,
 * tokenizer, training state, checksum) as JSON strings. Written atomically; every read is
 * validated (bounds, dtype, shape, size, checksum) before a byte is used.
 * Not the training state itself (train/ decides what goes in "train"). */
#include "model/model.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- config ------------------------------------------------------------------------------- */

cJSON *model_config_to_json(const struct mx_config *c)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(j, "n_head", c->n_head);
    cJSON_AddNumberToObject(j, "n_embd", c->n_embd);
    cJSON_AddNumberToObject(j, "block_size", c->block_size);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    cJSON_AddBoolToObject(j, "bias", c->bias);
    cJSON_AddStringToObject(j, "pos", mx_pos_name(c->pos));
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, c->seed);
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON *attn = cJSON_AddArrayToObject(j, "attn");
    for (int l = 0; l < c->n_layer; l++)
        cJSON_AddItemToArray(attn, cJSON_CreateString(c->attn[l]));
    return j;
}

static int get_int(const cJSON *j, const char *key, int lo, int hi, int *out, struct mx_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    /* WHY the range before any cast: converting a double outside int's range is undefined. */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) || v->valuedouble != floor(v->valuedouble))
        return mx_errorf(err, "config field '%s' is missing or not an integer in [%d, %d]", key, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

int model_config_from_json(struct mx_config *c, const cJSON *j, struct mx_error *err)
{
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(j))
        return mx_errorf(err, "config is not a JSON object");
    if (get_int(j, "n_layer", 1, MX_MAX_LAYERS, &c->n_layer, err) || get_int(j, "n_head", 1, 4096, &c->n_head, err) ||
        get_int(j, "n_embd", 1, 1 << 16, &c->n_embd, err) ||
        get_int(j, "block_size", 1, 1 << 22, &c->block_size, err) ||
        get_int(j, "vocab_size", 2, 1 << 24, &c->vocab_size, err))
        return -1;
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(j, "bias");
    if (!cJSON_IsBool(bias))
        return mx_errorf(err, "config field 'bias' is missing or not a boolean");
    c->bias = cJSON_IsTrue(bias);
    /* "pos" came with NoPE (session 7); a checkpoint without it has learned positions. */
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(j, "pos");
    c->pos = !pos ? MX_POS_LEARNED : cJSON_IsString(pos) ? mx_pos_parse(pos->valuestring) : -1;
    if (c->pos < 0)
        return mx_errorf(err, "config field 'pos' must be \"learned\", \"none\" or \"rope\"");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(j, "seed");
    if (!cJSON_IsString(seed))
        return mx_errorf(err, "config field 'seed' is missing");
    c->seed = strtoull(seed->valuestring, NULL, 10);
    const cJSON *attn = cJSON_GetObjectItemCaseSensitive(j, "attn");
    if (!cJSON_IsArray(attn) || cJSON_GetArraySize(attn) != c->n_layer)
        return mx_errorf(err, "config field 'attn' must list one mixer spec per layer (%d)", c->n_layer);
    for (int l = 0; l < c->n_layer; l++) {
        const cJSON *s = cJSON_GetArrayItem(attn, l);
        if (!cJSON_IsString(s) || strlen(s->valuestring) >= MX_SPEC_MAX)
            return mx_errorf(err, "config field 'attn[%d]' is not a mixer spec", l);
        /* WHY: causal_fnet's and shift's canonical specs had no options until their output
         * gains (default on) came; a checkpoint that stored the bare name holds the bare map,
         * which is gain=0. */
        const char *spec = strcmp(s->valuestring, "causal_fnet") == 0 ? "causal_fnet:gain=0"
                           : strcmp(s->valuestring, "shift") == 0     ? "shift:gain=0"
                                                                      : s->valuestring;
        /* WHY: until the kernel mixers gained rope=map (RoFormer §3.3: the features rotated
         * after the map), --pos rope rotated their q and k before it; a checkpoint from then
         * names no placement and holds a model trained that way, which is rope=qk. */
        int kernel = strncmp(spec, "linear", 6) == 0 && (spec[6] == 0 || spec[6] == ':');
        kernel |= strncmp(spec, "performer", 9) == 0 && (spec[9] == 0 || spec[9] == ':');
        snprintf(c->attn[l], sizeof c->attn[l], "%s", spec);
        if (kernel && c->pos == MX_POS_ROPE && !strstr(spec, "rope=")) {
            size_t n = strlen(c->attn[l]);
            if (n + 9 > sizeof c->attn[l])
                return mx_errorf(err, "config field 'attn[%d]' is too long a mixer spec", l);
            memcpy(c->attn[l] + n, strchr(spec, ':') ? ",rope=qk" : ":rope=qk", 9);
        }
    }
    return 0;
}

/* ---- safetensors ---------------------------------------------------------------------------- */

/* The checksum is mx_hash64 (core.h), segment by segment (each segment's tail bytes are its own). */

struct ck_write {
    const struct mx_model *m;
    const struct mx_ckpt_extra *x;
    char *header;
    size_t header_len; /* padded to 8 */
};

static void add_tensor_entry(cJSON *h, const char *name, const struct mx_param *t, size_t *at)
{
    cJSON *e = cJSON_AddObjectToObject(h, name);
    cJSON_AddStringToObject(e, "dtype", "F32");
    cJSON *shape = cJSON_AddArrayToObject(e, "shape");
    for (int d = 0; d < t->ndim; d++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(t->shape[d]));
    cJSON *off = cJSON_AddArrayToObject(e, "data_offsets");
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)*at));
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(*at + t->numel * 4)));
    *at += t->numel * 4;
}

static int ck_writer(FILE *f, void *ctx, struct mx_error *err)
{
    struct ck_write *w = ctx;
    uint64_t hl = w->header_len;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(hl >> (8 * i));
    if (fwrite(le, 1, 8, f) != 8 || fwrite(w->header, 1, w->header_len, f) != w->header_len)
        return mx_errorf(err, "checkpoint write failed: %s", strerror(errno));
    const float *bufs[3] = {w->m->params, w->x->adam_m, w->x->adam_v};
    for (int b = 0; b < 3; b++) {
        if (!bufs[b])
            continue;
        for (int i = 0; i < w->m->n_tensors; i++) {
            const struct mx_param *t = &w->m->tensors[i];
            if (fwrite(bufs[b] + t->offset, 4, t->numel, f) != t->numel)
                return mx_errorf(err, "checkpoint write failed: %s", strerror(errno));
        }
    }
    return 0;
}

/* The checksum covers the tensor data, then every __metadata__ entry but "checksum" in file
 * order, as two segments each: the key and the value, both with their NUL. WHY the metadata
 * too: the shape check cannot see an edited n_head, bias flag or seed, nor a corrupted
 * training state, and those load silently into a different model or run. */
static int meta_checksum(uint64_t *h, const cJSON *meta)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, meta)
    {
        if (!strcmp(e->string, "checksum"))
            continue;
        if (!cJSON_IsString(e))
            return -1;
        *h = mx_hash64(*h, (const unsigned char *)e->string, strlen(e->string) + 1);
        *h = mx_hash64(*h, (const unsigned char *)e->valuestring, strlen(e->valuestring) + 1);
    }
    return 0;
}

static uint64_t data_checksum(const struct mx_model *m, const struct mx_ckpt_extra *x)
{
    /* Same bytes in the same order as ck_writer writes them. Little-endian hosts only
     * (MX_ASSERTed at write): safetensors is little-endian. */
    uint64_t h = 0xcbf29ce484222325ull;
    const float *bufs[3] = {m->params, x->adam_m, x->adam_v};
    size_t total = 0;
    for (int b = 0; b < 3; b++)
        if (bufs[b])
            total += m->n_params;
    unsigned char *tmp = mx_xmalloc(total * 4 + 1);
    size_t at = 0;
    for (int b = 0; b < 3; b++) {
        if (!bufs[b])
            continue;
        for (int i = 0; i < m->n_tensors; i++) {
            const struct mx_param *t = &m->tensors[i];
            memcpy(tmp + at, bufs[b] + t->offset, t->numel * 4);
            at += t->numel * 4;
        }
    }
    h = mx_hash64(MX_HASH_BASIS, tmp, at);
    mx_free(tmp);
    return h;
}

int ckpt_write(const char *path, const struct mx_model *m, const struct mx_ckpt_extra *x,
               struct mx_error *err)
{
    const uint16_t one = 1;
    MX_ASSERT(*(const unsigned char *)&one == 1);
    MX_ASSERT(x && x->tokenizer);
    cJSON *h = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
    char num[32];
    snprintf(num, sizeof num, "%d", MX_CKPT_FORMAT);
    cJSON_AddStringToObject(meta, "format", num);
    cJSON_AddStringToObject(meta, "producer", "mixlm");
    cJSON *cj = model_config_to_json(&m->cfg);
    char *cs = cJSON_PrintUnformatted(cj);
    cJSON_AddStringToObject(meta, "config", cs);
    free(cs);
    cJSON_Delete(cj);
    char *ts = cJSON_PrintUnformatted(x->tokenizer);
    cJSON_AddStringToObject(meta, "tokenizer", ts);
    free(ts);
    if (x->train) {
        char *tr = cJSON_PrintUnformatted(x->train);
        cJSON_AddStringToObject(meta, "train", tr);
        free(tr);
    }
    uint64_t sum = data_checksum(m, x);
    int meta_ok = meta_checksum(&sum, meta); /* every value was added as a string above */
    MX_ASSERT(meta_ok == 0);
    snprintf(num, sizeof num, "%016" PRIx64, sum);
    cJSON_AddStringToObject(meta, "checksum", num);
    size_t at = 0;
    const char *prefix[3] = {"", "optim.m.", "optim.v."};
    const float *bufs[3] = {m->params, x->adam_m, x->adam_v};
    for (int b = 0; b < 3; b++) {
        if (!bufs[b])
            continue;
        for (int i = 0; i < m->n_tensors; i++) {
            char name[128];
            snprintf(name, sizeof name, "%s%s", prefix[b], m->tensors[i].name);
            add_tensor_entry(h, name, &m->tensors[i], &at);
        }
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t jl = strlen(js), padded = (jl + 7) & ~(size_t)7;
    struct ck_write w = {.m = m, .x = x, .header_len = padded};
    w.header = mx_xmalloc(padded + 1);
    memcpy(w.header, js, jl);
    memset(w.header + jl, ' ', padded - jl); /* safetensors allows trailing spaces */
    free(js);
    int rc = mx_write_atomic(path, ck_writer, &w, err);
    mx_free(w.header);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------------ */

void ckpt_close(struct mx_ckpt *c)
{
    mx_free(c->buf);
    cJSON_Delete(c->header);
    cJSON_Delete(c->config);
    cJSON_Delete(c->tokenizer);
    cJSON_Delete(c->train);
    memset(c, 0, sizeof *c);
}

static cJSON *meta_json(const cJSON *meta, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(meta, key);
    return cJSON_IsString(s) ? cJSON_Parse(s->valuestring) : NULL;
}

/* The libFuzzer build only (-DMIXLM_FUZZ=ON, tests/fuzz/): a fuzzer cannot forge the checksum,
 * so there a mismatch is ignored, to reach the validation behind it. Never set otherwise. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define MX_FUZZ_IGNORE_CHECKSUM 1
#else
#define MX_FUZZ_IGNORE_CHECKSUM 0
#endif

int ckpt_open(struct mx_ckpt *c, const char *path, struct mx_error *err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    c->buf = mx_read_file(path, &c->len, err);
    if (!c->buf)
        return mx_error_wrap(err, "cannot load checkpoint");
    const char *fix = "the file is corrupt or truncated; use another checkpoint (or retrain)";
    if (c->len < 8) {
        mx_errorf(err, "checkpoint '%s' is %zu bytes, too short for a safetensors file: %s", path, c->len, fix);
        goto fail;
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++)
        hl |= (uint64_t)(unsigned char)c->buf[i] << (8 * i);
    if (hl == 0 || hl > c->len - 8 || hl > (100u << 20)) {
        mx_errorf(err, "checkpoint '%s': header length %" PRIu64 " does not fit the file size %zu: %s", path,
                  hl, c->len, fix);
        goto fail;
    }
    c->data_off = 8 + (size_t)hl;
    c->header = cJSON_ParseWithLength(c->buf + 8, (size_t)hl);
    if (!cJSON_IsObject(c->header)) {
        mx_errorf(err, "checkpoint '%s': header is not valid JSON: %s", path, fix);
        goto fail;
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(c->header, "__metadata__");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(meta, "format");
    if (!cJSON_IsObject(meta) || !cJSON_IsString(fmt)) {
        mx_errorf(err, "checkpoint '%s' has no mixlm metadata (was it written by mixlm?)", path);
        goto fail;
    }
    if (atoi(fmt->valuestring) != MX_CKPT_FORMAT) {
        mx_errorf(err, "checkpoint '%s' has format version %s; this mixlm reads version %d", path,
                  fmt->valuestring, MX_CKPT_FORMAT);
        goto fail;
    }
    /* Every tensor entry: F32, offsets inside the data region; the last offset ends the file. */
    size_t data_len = c->len - c->data_off, end_max = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, c->header)
    {
        if (!strcmp(e->string, "__metadata__"))
            continue;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dt) || strcmp(dt->valuestring, "F32") || !cJSON_IsArray(off) ||
            cJSON_GetArraySize(off) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(off, 0)) ||
            !cJSON_IsNumber(cJSON_GetArrayItem(off, 1))) {
            mx_errorf(err, "checkpoint '%s': tensor '%s' is not an F32 tensor with data_offsets: %s", path,
                      e->string, fix);
            goto fail;
        }
        double b = cJSON_GetArrayItem(off, 0)->valuedouble, en = cJSON_GetArrayItem(off, 1)->valuedouble;
        if (b < 0 || en < b || en > (double)data_len) {
            mx_errorf(err, "checkpoint '%s': tensor '%s' lies outside the file (%.0f..%.0f of %zu data bytes): %s",
                      path, e->string, b, en, data_len, fix);
            goto fail;
        }
        if ((size_t)en > end_max)
            end_max = (size_t)en;
    }
    if (end_max != data_len) {
        mx_errorf(err, "checkpoint '%s': %zu data bytes but tensors cover %zu: %s", path, data_len, end_max, fix);
        goto fail;
    }
    const cJSON *ck = cJSON_GetObjectItemCaseSensitive(meta, "checksum");
    char want[32];
    uint64_t sum = mx_hash64(MX_HASH_BASIS, (const unsigned char *)c->buf + c->data_off, data_len);
    if (meta_checksum(&sum, meta) != 0) {
        mx_errorf(err, "checkpoint '%s': a __metadata__ value is not a string: %s", path, fix);
        goto fail;
    }
    snprintf(want, sizeof want, "%016" PRIx64, sum);
    if ((!cJSON_IsString(ck) || strcmp(ck->valuestring, want) != 0) && !MX_FUZZ_IGNORE_CHECKSUM) {
        mx_errorf(err, "checkpoint '%s': checksum mismatch over tensor data and metadata (stored %s, computed %s): %s", path,
                  cJSON_IsString(ck) ? ck->valuestring : "none", want, fix);
        goto fail;
    }
    c->config = meta_json(meta, "config");
    c->tokenizer = meta_json(meta, "tokenizer");
    c->train = meta_json(meta, "train");
    if (!c->config || !c->tokenizer) {
        mx_errorf(err, "checkpoint '%s': metadata 'config' or 'tokenizer' is missing or not JSON: %s", path, fix);
        goto fail;
    }
    return 0;
fail:
    ckpt_close(c);
    return -1;
}

/* Copy tensor `name` (expected shape of t) into dst; error naming both shapes on mismatch. */
static int copy_tensor(struct mx_ckpt *c, const char *name, const struct mx_param *t, float *dst,
                       struct mx_error *err)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(c->header, name);
    if (!e)
        return mx_errorf(err, "checkpoint '%s' lacks tensor '%s' (written by another version or config?)",
                         c->path, name);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    int ok = cJSON_IsArray(shape) && cJSON_GetArraySize(shape) == t->ndim;
    for (int d = 0; ok && d < t->ndim; d++)
        ok = cJSON_GetArrayItem(shape, d)->valuedouble == t->shape[d];
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    size_t b = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, en = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    if (!ok || en - b != t->numel * 4)
        return mx_errorf(err, "checkpoint '%s': tensor '%s' has another shape than this config expects "
                              "(%d-d, %zu floats): the checkpoint belongs to a different model config",
                         c->path, name, t->ndim, t->numel);
    memcpy(dst, c->buf + c->data_off + b, t->numel * 4);
    return 0;
}

/* The rows of 2-d tensor `name` (its stored shape [rows, cols], consistent with its
 * data_offsets), or -1 with err filled. */
static long tensor_rows(const struct mx_ckpt *c, const char *name, int cols, struct mx_error *err)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(c->header, name);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!e || !cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != 2 || !cJSON_IsArray(off)) {
        mx_errorf(err, "checkpoint '%s' lacks the 2-d tensor '%s' (written by another version or config?)", c->path,
                  name);
        return -1;
    }
    double r = cJSON_GetArrayItem(shape, 0)->valuedouble, k = cJSON_GetArrayItem(shape, 1)->valuedouble;
    double bytes = cJSON_GetArrayItem(off, 1)->valuedouble - cJSON_GetArrayItem(off, 0)->valuedouble;
    if (!(r >= 1 && r <= (double)(1 << 24)) || r != floor(r) || !(k >= 1 && k <= (double)(1 << 24)) ||
        k != floor(k) || r * k * 4 != bytes) {
        mx_errorf(err, "checkpoint '%s': tensor '%s' has shape [%.0f, %.0f] but %.0f bytes (float32 needs "
                       "rows*cols*4, each dimension in [1, %d]): the file is damaged; use another checkpoint",
                  c->path, name, r, k, bytes, 1 << 24);
        return -1;
    }
    if (k != (double)cols) {
        mx_errorf(err, "checkpoint '%s': config field 'n_embd' is %d but tensor '%s' has %.0f columns: the "
                       "checkpoint belongs to a different model config; use another checkpoint",
                  c->path, cols, name, k);
        return -1;
    }
    return (long)r;
}

/* WHY before model_create: building the mixers' layouts costs time and memory in the config's
 * sizes (a sparse layout is O(blocks^2) in block_size), so an edited config claiming a huge
 * context must be refused from the tensors actually stored, not after the build. */
static int check_config_sizes(const struct mx_ckpt *c, const struct mx_config *cfg, struct mx_error *err)
{
    long wte = tensor_rows(c, "transformer.wte.weight", cfg->n_embd, err);
    if (wte < 0)
        return -1;
    if (wte != cfg->vocab_size)
        return mx_errorf(err, "checkpoint '%s': config field 'vocab_size' is %d but tensor 'transformer.wte.weight' "
                              "has %ld rows: the checkpoint belongs to a different model config; use another checkpoint",
                         c->path, cfg->vocab_size, wte);
    long wpe = tensor_rows(c, "transformer.wpe.weight", cfg->n_embd, err);
    if (wpe < 0)
        return -1;
    if (wpe != cfg->block_size)
        return mx_errorf(err, "checkpoint '%s': config field 'block_size' is %d but tensor 'transformer.wpe.weight' "
                              "has %ld rows: the checkpoint belongs to a different model config; use another checkpoint",
                         c->path, cfg->block_size, wpe);
    /* Every layer holds at least its MLP (8*C*C floats): a lower bound on the parameter bytes. */
    double C = cfg->n_embd;
    double need = 4.0 * (C * cfg->vocab_size + C * cfg->block_size + 8.0 * C * C * cfg->n_layer);
    if (need > (double)(c->len - c->data_off))
        return mx_errorf(err, "checkpoint '%s': config field 'n_layer' (%d) with n_embd %d needs at least %.0f bytes "
                              "of parameters but the file holds %zu: the checkpoint belongs to a different model "
                              "config; use another checkpoint",
                         c->path, cfg->n_layer, cfg->n_embd, need, c->len - c->data_off);
    return 0;
}

int ckpt_load_model(struct mx_ckpt *c, struct mx_model *m, struct mx_error *err)
{
    struct mx_config cfg;
    if (model_config_from_json(&cfg, c->config, err) != 0)
        return mx_error_wrap(err, "checkpoint '%s'", c->path);
    if (check_config_sizes(c, &cfg, err) != 0)
        return -1;
    if (model_create(m, &cfg, err) != 0)
        return mx_error_wrap(err, "checkpoint '%s'", c->path);
    for (int i = 0; i < m->n_tensors; i++)
        if (copy_tensor(c, m->tensors[i].name, &m->tensors[i], m->params + m->tensors[i].offset, err) != 0) {
            model_free(m);
            return -1;
        }
    /* Every parameter tensor of the file must have been used: extra ones (e.g. biases of a
     * file whose config says bias=false) mean the file and its config disagree. */
    int stored = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, c->header)
        stored += strcmp(e->string, "__metadata__") != 0 && strncmp(e->string, "optim.", 6) != 0;
    if (stored != m->n_tensors) {
        mx_errorf(err, "checkpoint '%s' holds %d parameter tensors but its config describes %d: the file "
                       "and its config disagree; use another checkpoint",
                  c->path, stored, m->n_tensors);
        model_free(m);
        return -1;
    }
    return 0;
}

int ckpt_load_moments(struct mx_ckpt *c, const struct mx_model *m, float *adam_m, float *adam_v,
                      struct mx_error *err)
{
    char name[128];
    for (int i = 0; i < m->n_tensors; i++) {
        snprintf(name, sizeof name, "optim.m.%s", m->tensors[i].name);
        if (copy_tensor(c, name, &m->tensors[i], adam_m + m->tensors[i].offset, err) != 0)
            return -1;
        snprintf(name, sizeof name, "optim.v.%s", m->tensors[i].name);
        if (copy_tensor(c, name, &m->tensors[i], adam_v + m->tensors[i].offset, err) != 0)
            return -1;
    }
    return 0;
}
