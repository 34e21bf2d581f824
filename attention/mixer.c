/* mixer.c — the registry (name -> ops), mixer construction and spec key=value parsing.
 * Adding a mixer: one .c file and one line in MIXLM_MIXERS below. Nothing here knows a mixer. */
#include "attention/mixer.h"
#include "attention/attn_common.h"

#include <stdlib.h>
#include <string.h>

/* The registry: one line per mixer, in the order `mixlm bench --list` prints them. */
#define MIXLM_MIXERS(X)                                                                       \
    X(attn_dense_ops)                                                                         \
    X(attn_window_ops)                                                                        \
    X(attn_dilated_ops)                                                                       \
    X(attn_strided_ops)                                                                       \
    X(attn_fixed_ops)                                                                         \
    X(attn_bigbird_ops)                                                                       \
    X(attn_linformer_ops)                                                                     \
    X(attn_nystrom_ops)                                                                       \
    X(attn_linear_ops)                                                                        \
    X(attn_performer_ops)                                                                     \
    X(attn_gla_ops)                                                                           \
    X(attn_retnet_ops)                                                                        \
    X(attn_lsh_ops)                                                                           \
    X(longconv_ops)                                                                           \
    X(causal_fnet_ops)                                                                        \
    X(fnet_ops)                                                                               \
    X(shift_ops)

#define MIXLM_DECLARE(ops) extern const struct mixer_ops ops;
MIXLM_MIXERS(MIXLM_DECLARE)
#undef MIXLM_DECLARE

static const struct mixer_ops *const registry[] = {
#define MIXLM_ENTRY(ops) &ops,
    MIXLM_MIXERS(MIXLM_ENTRY)
#undef MIXLM_ENTRY
};

int mixer_count(void)
{
    return (int)(sizeof registry / sizeof registry[0]);
}

const struct mixer_ops *mixer_at(int i)
{
    MX_ASSERT(i >= 0 && i < mixer_count());
    return registry[i];
}

/* Old names still accepted, so checkpoints and command lines written with them load and run
 * unchanged; the canonical spec a mixer writes (and so every new checkpoint) uses the new name. */
static const struct {
    const char *old, *now;
} aliases[] = {
    {"fourier", "longconv"}, /* it was always a learned long convolution, not FNet's fixed DFT */
};

const char *mixer_alias_of(const char *name)
{
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(aliases[i].old, name) == 0)
            return aliases[i].now;
    return NULL;
}

const struct mixer_ops *mixer_find(const char *name)
{
    const char *now = mixer_alias_of(name);
    if (now)
        name = now;
    for (int i = 0; i < mixer_count(); i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

/* The registered names, comma-separated; qk_only: only the mixers with queries and keys. */
static void known_names(char *buf, size_t n, int qk_only)
{
    buf[0] = 0;
    for (int i = 0; i < mixer_count(); i++) {
        if (qk_only && !mixer_has_qk(registry[i]))
            continue;
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", l ? ", " : "", registry[i]->name);
    }
}

int mixer_create(struct mixer *m, const char *spec, const struct mixer_dims *d, struct mx_error *err)
{
    memset(m, 0, sizeof *m);
    if (!spec || !*spec)
        return mx_errorf(err, "empty mixer spec; use e.g. --attn dense");
    char name[64];
    const char *colon = strchr(spec, ':');
    size_t nl = colon ? (size_t)(colon - spec) : strlen(spec);
    if (nl == 0 || nl >= sizeof name)
        return mx_errorf(err, "bad mixer spec '%s': expected name or name:key=value,...", spec);
    memcpy(name, spec, nl);
    name[nl] = 0;
    const struct mixer_ops *ops = mixer_find(name);
    if (!ops) {
        char known[512];
        known_names(known, sizeof known, 0);
        return mx_errorf(err, "unknown mixer '%s' in spec '%s'; known mixers: %s (see mixlm train --help)",
                         name, spec, known);
    }
    if (d->C <= 0 || d->H <= 0 || d->C % d->H != 0)
        return mx_errorf(err, "--dim %d must be a positive multiple of --heads %d", d->C, d->H);
    m->ops = ops;
    m->C = d->C;
    m->H = d->H;
    m->D = d->C / d->H;
    m->T_max = d->T_max;
    m->bias = d->bias;
    m->layer = d->layer;
    m->n_layer = d->n_layer;
    m->seed = d->seed;
    m->training = 0;
    if (d->rope) {
        if (!mixer_has_qk(ops)) {
            char qk[512];
            known_names(qk, sizeof qk, 1);
            return mx_errorf(err, "--pos rope rotates queries and keys, and mixer '%s' has none; use --pos "
                                  "learned or none with it, or an attention-family mixer (%s)",
                             ops->name, qk);
        }
        if (m->D % 2 != 0)
            return mx_errorf(err, "--pos rope rotates pairs of channels and the head size %d (--dim / --heads) "
                                  "is odd; choose --dim and --heads with an even quotient",
                             m->D);
        m->rope = attn_rope_table(m->T_max, m->D, err);
        if (!m->rope)
            return -1;
    }
    if (ops->parse(m, colon ? colon + 1 : "", err) != 0) {
        mixer_destroy(m);
        return -1;
    }
    if (!m->spec[0])
        snprintf(m->spec, sizeof m->spec, "%s", ops->name);
    return 0;
}

void mixer_init(const struct mixer *m, float *params, struct mx_rng *rng)
{
    if (m->ops->init)
        m->ops->init(m, params, rng);
}

void mixer_destroy(struct mixer *m)
{
    if (m->ops && m->ops->destroy)
        m->ops->destroy(m);
    m->cfg = NULL;
    mx_free(m->rope);
    m->rope = NULL;
}

int mixer_has_qk(const struct mixer_ops *ops)
{
    return ops->core != NULL;
}

int mixer_n_tensors(const struct mixer *m)
{
    return m->ops->tensors(m, NULL);
}

static struct mx_param *tensor_list(const struct mixer *m, int *n)
{
    *n = m->ops->tensors(m, NULL);
    struct mx_param *t = mx_xcalloc(sizeof *t * (size_t)(*n > 0 ? *n : 1));
    m->ops->tensors(m, t);
    return t;
}

size_t mixer_n_params(const struct mixer *m)
{
    int n;
    struct mx_param *t = tensor_list(m, &n);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += t[i].numel;
    mx_free(t);
    return total;
}

double mixer_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd)
{
    int n;
    struct mx_param *t = tensor_list(m, &n);
    double weights = 0;
    for (int i = 0; i < n; i++)
        /* The weight matrices, applied to every token (2 FLOPs per entry forward, 4 backward).
         * A 2-D tensor without weight decay is not one (longconv's (C,T_max) filter: its FFT
         * convolution is in ops->flops); counting it per token overstated longconv's GFLOP/s
         * about a hundredfold. */
        if (t[i].ndim == 2 && t[i].trainable && t[i].decay)
            weights += (double)t[i].numel;
    mx_free(t);
    double tokens = (double)B * T, f = 2.0 * weights * tokens, b = 4.0 * weights * tokens;
    double mf = 0, mb = 0;
    MX_ASSERT(m->ops->flops);
    m->ops->flops(m, B, T, &mf, &mb);
    f += mf;
    b += mb;
    if (m->rope && !m->rope_in_core) { /* rotating q and k (forward), dq and dk (backward): 3 FLOPs per element */
        f += 6.0 * tokens * m->C;
        b += 6.0 * tokens * m->C;
    }
    if (fwd)
        *fwd = f;
    if (bwd)
        *bwd = b;
    return f + b;
}

size_t mixer_tensor_offset(const struct mixer *m, const char *name)
{
    int n;
    struct mx_param *t = tensor_list(m, &n);
    for (int i = 0; i < n; i++) {
        if (strcmp(t[i].name, name) == 0) {
            size_t off = t[i].offset;
            mx_free(t);
            return off;
        }
    }
    mx_free(t);
    mx_fatal("mixer %s has no tensor '%s'", m->spec, name);
}

void mixer_mask_buffers(const struct mixer *m, float *dparams)
{
    int n;
    struct mx_param *t = tensor_list(m, &n);
    for (int i = 0; i < n; i++)
        if (!t[i].trainable)
            memset(dparams + t[i].offset, 0, t[i].numel * sizeof(float));
    mx_free(t);
}

/* ---- key=value ------------------------------------------------------------------------ */

int mixer_kv_parse(struct mixer_kv *kv, const char *mixer, const char *args, struct mx_error *err)
{
    memset(kv, 0, sizeof *kv);
    const char *p = args ? args : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (len == 0)
            return mx_errorf(err, "mixer %s: empty item in '%s' (write key=value,key=value)", mixer, args);
        if (eq) {
            size_t kl = (size_t)(eq - p), vl = len - kl - 1;
            if (kv->n >= MX_KV_MAX)
                return mx_errorf(err, "mixer %s: too many keys in '%s'", mixer, args);
            if (kl == 0 || kl >= sizeof kv->key[0] || vl >= sizeof kv->val[0])
                return mx_errorf(err, "mixer %s: bad item '%.*s' in '%s'", mixer, (int)len, p, args);
            for (int i = 0; i < kv->n; i++)
                if (strlen(kv->key[i]) == kl && memcmp(kv->key[i], p, kl) == 0)
                    return mx_errorf(err, "mixer %s: key '%.*s' given twice in '%s'", mixer, (int)kl, p, args);
            memcpy(kv->key[kv->n], p, kl);
            memcpy(kv->val[kv->n], eq + 1, vl);
            kv->n++;
        } else {
            /* A list continues the previous value: d=1,1,2,4. */
            if (kv->n == 0)
                return mx_errorf(err, "mixer %s: '%.*s' has no key (write key=value) in '%s'", mixer,
                                 (int)len, p, args);
            char *v = kv->val[kv->n - 1];
            size_t have = strlen(v);
            if (have + 1 + len >= sizeof kv->val[0])
                return mx_errorf(err, "mixer %s: value list too long in '%s'", mixer, args);
            v[have] = ',';
            memcpy(v + have + 1, p, len);
            v[have + 1 + len] = 0;
        }
        p += len;
        if (*p == ',')
            p++;
        if (end && !*p)
            return mx_errorf(err, "mixer %s: trailing comma in '%s'", mixer, args);
    }
    return 0;
}

static int kv_index(struct mixer_kv *kv, const char *key)
{
    for (int i = 0; i < kv->n; i++)
        if (strcmp(kv->key[i], key) == 0) {
            kv->used[i] = 1;
            return i;
        }
    return -1;
}

int mixer_kv_int(struct mixer_kv *kv, const char *mixer, const char *key, long dflt, long lo,
                 long hi, long *out, struct mx_error *err)
{
    int i = kv_index(kv, key);
    if (i < 0) {
        *out = dflt;
        return 0;
    }
    char what[96];
    snprintf(what, sizeof what, "mixer %s: %s", mixer, key);
    return mx_parse_int(kv->val[i], lo, hi, what, out, err);
}

int mixer_kv_float(struct mixer_kv *kv, const char *mixer, const char *key, double dflt,
                   double lo, double hi, double *out, struct mx_error *err)
{
    int i = kv_index(kv, key);
    if (i < 0) {
        *out = dflt;
        return 0;
    }
    char what[96];
    snprintf(what, sizeof what, "mixer %s: %s", mixer, key);
    return mx_parse_float(kv->val[i], lo, hi, what, out, err);
}

const char *mixer_kv_str(struct mixer_kv *kv, const char *key)
{
    int i = kv_index(kv, key);
    return i < 0 ? NULL : kv->val[i];
}

int mixer_kv_finish(const struct mixer_kv *kv, const char *mixer, const char *accepted, struct mx_error *err)
{
    for (int i = 0; i < kv->n; i++)
        if (!kv->used[i])
            return mx_errorf(err, "mixer %s: unknown key '%s'; accepted keys: %s", mixer, kv->key[i],
                             accepted && *accepted ? accepted : "(none)");
    return 0;
}
