/* dense.c — exact causal softmax attention ("dense"), the baseline every mixer is judged by.
 * Training path: the block-sparse engine (bsa.c) on its implicit full causal layout, i.e.
 * FlashAttention-style 64x64 tiles with online softmax, saving only the row log-sum-exp;
 * generation: a KV cache of all past positions through the same tile kernels.
 * Not approximate in any way; cost O(T^2) time, O(T) memory. The row-wise reference it is
 * tested against is attn_dense_ref_core (attn_common.c). */
#include "attention/bsa.h"

#include <string.h>

/* WHY 64: a 64x64 score tile (16 KiB) plus a 64x32 output accumulator stay in L1 while
 * 64-key rows fill four AVX-512 registers; 32x32 tiles measured slower (more passes over
 * the online-softmax bookkeeping per multiply-add). */
#define DENSE_TILE 64

struct dense_cfg {
    struct bsa_layout lay; /* first: the engine's struct (attn_common.h) */
};

static int dense_parse(struct mixer *m, const char *args, struct mx_error *err)
{
    struct mixer_kv kv;
    if (mixer_kv_parse(&kv, "dense", args, err) != 0 || mixer_kv_finish(&kv, "dense", "", err) != 0)
        return -1;
    struct dense_cfg *cfg = mx_xcalloc(sizeof *cfg);
    bsa_layout_causal(&cfg->lay, m->T_max, m->H, DENSE_TILE);
    m->cfg = cfg;
    snprintf(m->spec, sizeof m->spec, "dense");
    return 0;
}

static void dense_destroy(struct mixer *m)
{
    struct dense_cfg *cfg = m->cfg;
    if (!cfg)
        return;
    bsa_layout_free(&cfg->lay);
    mx_free(cfg);
}

static const char *const dense_tests[] = {"dense", NULL};

const struct mixer_ops attn_dense_ops = {
    ATTN_OPS("dense", "dense — exact causal softmax attention (no options); O(T^2) time, O(T) memory",
             dense_tests, dense_parse, dense_destroy, attn_tensors, attn_init, bsa_flops, &bsa_core),
};
