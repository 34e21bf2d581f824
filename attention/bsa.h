/* bsa.h — internal to attention/: the block-sparse attention engine shared by `dense` and the
 * sparse family (window, dilated, strided, fixed, bigbird). A layout lists, per head, the
 * (query block, key block) pairs to compute plus a bit mask inside partial blocks; the engine
 * runs FlashAttention-style tiles (online softmax, saves only the row log-sum-exp, recomputes
 * P in backward) over exactly those pairs. Not a pattern: patterns live in sparse.c. */
#ifndef MIXLM_BSA_H
#define MIXLM_BSA_H

#include "attention/attn_common.h"
#include "nn/isa.h"

#define BSA_MAX_BS 64      /* largest block (tile) edge; masks are one uint64_t per row */
#define BSA_MAX_THREADS 64 /* per-thread tile buffers are sized for this many threads */

/* A pattern tells the engine which keys a query may see. allowed(ctx, h, i, j) is only asked
 * for j <= i (the engine enforces causality itself). candidates(ctx, h, qb, bs, flag) sets
 * flag[kb] = 1 for every key block kb <= qb that may hold an allowed key (a superset is fine:
 * the engine drops blocks with none and classifies the rest as full or masked). */
typedef int (*bsa_allowed_fn)(const void *ctx, int h, int i, int j);
typedef void (*bsa_candidates_fn)(const void *ctx, int h, int qb, int bs, unsigned char *flag);

struct bsa_map { /* one head's block list, CSR by query block */
    int *row_ptr;    /* (nb+1) */
    int *col;        /* (nnz) key block, ascending within a row */
    int *mask;       /* (nnz) mask id, or -1 for a full block */
};

struct bsa_layout {
    int T_max, H, bs, nb;  /* nb = ceil(T_max / bs) */
    int implicit_causal;   /* dense: every kb <= qb, full except the causal diagonal (mask 0) */
    int n_maps;            /* distinct head layouts (1 when all heads share one) */
    int *head_map;         /* (H) head -> map index */
    struct bsa_map *maps;  /* (n_maps) */
    uint64_t *masks;       /* (n_masks, bs): bit c of row r = key j0+c allowed for query i0+r */
    int n_masks;
    unsigned char *ranges; /* (n_masks, 4, 8): per mask, for a whole bs x bs tile, the 16-lane
                            * vectors [lo, hi) each 8-row group sees and the rows [lo, hi) that
                            * see each 8-key group (bsa.c's trimming; computed once) */
    size_t n_pairs;        /* listed pairs summed over heads, at T_max (FLOP counting) */
};

/* The 64-bit lane mask of keys below nj (all 64 when nj >= 64). */
static inline uint64_t bsa_lanes_below(int nj)
{
    return nj >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << nj) - 1);
}
/* Row stride of K/V transposed: T rounded up to 16, plus 16 (tile loads may read 15 columns
 * past T). */
static inline size_t bsa_padded_T(int T)
{
    return mx_round_up((size_t)T, 16) + 16;
}
/* For rows 0..ni-1 of a tile (bits[r] = allowed keys, already cut to the tile's keys): the
 * 16-lane vectors [vlo, vhi) each 8-row group sees and the rows [rlo, rhi) that see each 8-key
 * group (BSA_MAX_BS / 8 entries each); empty ranges are [0, 0). The kernels' trimming. */
void bsa_tile_ranges(const uint64_t *bits, int ni, unsigned char *vlo, unsigned char *vhi,
                     unsigned char *rlo, unsigned char *rhi);

/* The full causal layout without stored lists (dense). bs in [1, BSA_MAX_BS]. */
void bsa_layout_causal(struct bsa_layout *L, int T_max, int H, int bs);
/* Build a layout from a pattern at T_max. heads_differ = 0: head 0's layout serves all heads.
 * Identical masks are stored once. Cost: O(nb^2) candidate flags plus bs^2 allowed() calls
 * per candidate pair, once at parse time. */
void bsa_layout_build(struct bsa_layout *L, int T_max, int H, int bs, int heads_differ,
                      bsa_candidates_fn candidates, bsa_allowed_fn allowed, const void *ctx);
void bsa_layout_free(struct bsa_layout *L);
/* Pairs of head h's query block qb: count, and the i-th key block and mask id (-1 = full). */
int bsa_row_count(const struct bsa_layout *L, int h, int qb);
void bsa_row_pair(const struct bsa_layout *L, int h, int qb, int i, int *kb, int *mask_id);

/* The engine's core: a mixer using it keeps its struct bsa_layout as the FIRST member of its
 * cfg (attn_common.h) and sets ops->core = &bsa_core, or builds its own struct attn_core from
 * the functions below with its own step (sparse.c's ring buffer). saved = the row log-sum-exp
 * (B,H,T); work = K and V transposed (B,H,D,Tp). Each thread also mallocs its own panel
 * buffers (~270 KB) per call. Step: the KV cache below. */
extern const struct attn_core bsa_core;
size_t bsa_saved_floats(const struct mixer *m, int B, int T);
size_t bsa_work_floats(const struct mixer *m, int B, int T);
/* o (B,H,T,D) overwritten, saved = lse (B,H,T) overwritten; q,k,v (B,H,T,D); xp unused. */
void bsa_forward(const struct mixer *m, float *o, float *saved, float *work, const float *q,
                 const float *k, const float *v, const float *xp, int B, int T);
/* dq, dk, dv (B,H,T,D) OVERWRITTEN; dout, o (B,H,T,D); saved = lse from bsa_forward. */
void bsa_backward(const struct mixer *m, float *dq, float *dk, float *dv, float *dxp, float *work,
                  const float *dout, const float *o, const float *saved, const float *q,
                  const float *k, const float *v, const float *xp, int B, int T);
/* Token-mixing FLOPs at (B,T) (mixer_ops.flops): attn_pairs_flops over the pattern's allowed
 * causal pairs up to T (the useful work: not the whole listed tiles the engine computes). */
void bsa_flops(const struct mixer *m, int B, int T, double *fwd, double *bwd);
/* Same, with the layout passed directly (tests; mixers go through m->cfg); this backward
 * ADDS to dq, dk, dv. Only m->H, m->D are read from m. */
void bsa_forward_layout(const struct bsa_layout *L, const struct mixer *m, float *o, float *lse,
                        float *work, const float *q, const float *k, const float *v, int B, int T);
void bsa_backward_layout(const struct bsa_layout *L, const struct mixer *m, float *dq, float *dk,
                         float *dv, float *work, const float *dout, const float *o,
                         const float *lse, const float *q, const float *k, const float *v, int B,
                         int T);

/* The engine's kernels at one SIMD level (attention/isa/bsa_engine_isa.c, compiled per level).
 * forward: o (B,H,T,D), lse (B,H,T) overwritten; work = K transposed (B,H,D,bsa_padded_T(T)).
 * backward: dq, dk, dv (B,H,T,D) += when accumulate, else overwritten; work = K and V
 * transposed. row_chunk / row_finish: as bsa_row_chunk / bsa_row_finish below. */
struct bsa_engine {
    const char *isa;
    void (*forward)(const struct bsa_layout *L, int H, int D, float *o, float *lse, float *work,
                    const float *q, const float *k, const float *v, int B, int T);
    void (*backward)(const struct bsa_layout *L, int H, int D, float *dq, float *dk, float *dv,
                     int accumulate, float *work, const float *dout, const float *o,
                     const float *lse, const float *q, const float *k, const float *v, int B,
                     int T);
    void (*row_chunk)(float *acc, float *mx, float *l, float *sbuf, const float *q,
                      const float *kt, size_t ld, const float *vrows, int nj, uint64_t bits,
                      float scale, int D);
    void (*row_finish)(float *o, const float *acc, float l, int D);
};
/* The table of the level in use (nn/isa.h's mx_isa()), and of a given level (NULL when this
 * build or CPU lacks it: tests run every level the machine can). */
const struct bsa_engine *bsa_engine(void);
const struct bsa_engine *bsa_engine_at(enum mx_isa isa);

/* Generation with a full KV cache that follows the layout (dense, strided, fixed, bigbird):
 * state = K transposed (H,D,Tc), V (H,T_max,D) and a small scratch; o_t, q_t, k_t, v_t (H,D). */
size_t bsa_cache_state_floats(const struct mixer *m);
void bsa_cache_step(const struct mixer *m, float *o_t, float *state, const float *q_t,
                    const float *k_t, const float *v_t, const float *xp, int t);

/* One query row against nj <= BSA_MAX_BS keys, for steps with their own cache layout (ring
 * buffers): kt (D, ld) holds the keys as columns 0..nj-1 and must be readable up to column
 * mx_round_up(nj,16)-1; vrows (nj, D); bits says which of the nj keys count. Updates the online
 * softmax state (*mx, *l, acc (D)); sbuf holds BSA_MAX_BS floats. Finish with bsa_row_finish. */
void bsa_row_chunk(float *acc, float *mx, float *l, float *sbuf, const float *q, const float *kt,
                   size_t ld, const float *vrows, int nj, uint64_t bits, float scale, int D);
/* o (D) = acc / l (0 when no key counted). */
void bsa_row_finish(float *o, const float *acc, float l, int D);

#endif
