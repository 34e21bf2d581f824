/* model.c — the decoder: parameter layout, init, activation planning, forward, backward and
 * single-token decoding. One function (bind_params) knows where every tensor lives and one
 * (bind_acts) where every activation lives; both run twice, counting then binding.
 * Not the checkpoint format (checkpoint.c) and not any mixer's internals. */
#include "model/model.h"

#include "nn/nn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---- parameter layout --------------------------------------------------------------------- */

struct layout {
    struct mx_model *m;
    size_t at;      /* floats so far */
    int n;          /* tensors so far */
    float *base_p;  /* NULL while counting */
    float *base_g;
};

static void add(struct layout *L, float **pv, float **gv, const char *name, int ndim, int s0,
                int s1, int decay, int trainable)
{
    if (pv)
        *pv = L->base_p ? L->base_p + L->at : NULL;
    if (gv)
        *gv = L->base_g ? L->base_g + L->at : NULL;
    mx_param_add(L->m->tensors, &L->n, &L->at, name, ndim, s0, s1, decay, trainable);
}

/* The one place that knows the order of tensors in the buffer. */
static void bind_params(struct mx_model *m, float *params, float *grads)
{
    struct layout L = {.m = m, .base_p = params, .base_g = grads};
    const struct mx_config *c = &m->cfg;
    int C = c->n_embd;
    char nm[128];
    add(&L, &m->w.wte, &m->g.wte, "transformer.wte.weight", 2, c->vocab_size, C, 1, 1);
    /* NoPE and RoPE keep the tensor (same layout and checkpoint) at 0, untrained. */
    add(&L, &m->w.wpe, &m->g.wpe, "transformer.wpe.weight", 2, c->block_size, C, 1, c->pos == MX_POS_LEARNED);
    for (int l = 0; l < c->n_layer; l++) {
        struct mx_layer_w *w = &m->w.l[l], *g = &m->g.l[l];
#define NAME(s) (snprintf(nm, sizeof nm, "transformer.h.%d.%s", l, s), nm)
        add(&L, &w->ln1_w, &g->ln1_w, NAME("ln_1.weight"), 1, C, 0, 0, 1);
        if (c->bias)
            add(&L, &w->ln1_b, &g->ln1_b, NAME("ln_1.bias"), 1, C, 0, 0, 1);
        else
            w->ln1_b = g->ln1_b = NULL;
        /* The mixer's tensors, in its own order, under "attn.". */
        const struct mixer *mx = &m->mix[l];
        int nt = mx->ops->tensors(mx, NULL);
        struct mx_param td[32];
        MX_ASSERT(nt <= 32);
        mx->ops->tensors(mx, td);
        w->mix = params ? params + L.at : NULL;
        g->mix = grads ? grads + L.at : NULL;
        for (int i = 0; i < nt; i++) {
            char full[MX_PARAM_NAME_MAX + 32];
            snprintf(full, sizeof full, "transformer.h.%d.attn.%.63s", l, td[i].name);
            add(&L, NULL, NULL, full, td[i].ndim, td[i].shape[0], td[i].shape[1], td[i].decay,
                td[i].trainable);
        }
        add(&L, &w->ln2_w, &g->ln2_w, NAME("ln_2.weight"), 1, C, 0, 0, 1);
        if (c->bias)
            add(&L, &w->ln2_b, &g->ln2_b, NAME("ln_2.bias"), 1, C, 0, 0, 1);
        else
            w->ln2_b = g->ln2_b = NULL;
        add(&L, &w->fc_w, &g->fc_w, NAME("mlp.c_fc.weight"), 2, 4 * C, C, 1, 1);
        if (c->bias)
            add(&L, &w->fc_b, &g->fc_b, NAME("mlp.c_fc.bias"), 1, 4 * C, 0, 0, 1);
        else
            w->fc_b = g->fc_b = NULL;
        add(&L, &w->pr_w, &g->pr_w, NAME("mlp.c_proj.weight"), 2, C, 4 * C, 1, 1);
        if (c->bias)
            add(&L, &w->pr_b, &g->pr_b, NAME("mlp.c_proj.bias"), 1, C, 0, 0, 1);
        else
            w->pr_b = g->pr_b = NULL;
#undef NAME
    }
    add(&L, &m->w.lnf_w, &m->g.lnf_w, "transformer.ln_f.weight", 1, C, 0, 0, 1);
    if (c->bias)
        add(&L, &m->w.lnf_b, &m->g.lnf_b, "transformer.ln_f.bias", 1, C, 0, 0, 1);
    else
        m->w.lnf_b = m->g.lnf_b = NULL;
    m->n_params = L.at;
    m->n_tensors = L.n;
}

const char *mx_pos_name(int pos)
{
    return pos == MX_POS_NONE ? "none" : pos == MX_POS_ROPE ? "rope" : "learned";
}

int mx_pos_parse(const char *s)
{
    for (int p = MX_POS_LEARNED; p <= MX_POS_ROPE; p++)
        if (s && !strcmp(s, mx_pos_name(p)))
            return p;
    return -1;
}

static int validate_config(const struct mx_config *c, struct mx_error *err)
{
    if (c->n_layer < 1 || c->n_layer > MX_MAX_LAYERS)
        return mx_errorf(err, "--layers %d out of range; allowed [1, %d]", c->n_layer, MX_MAX_LAYERS);
    if (c->n_head < 1 || c->n_embd < 1 || c->n_embd % c->n_head != 0)
        return mx_errorf(err, "--dim %d must be a positive multiple of --heads %d", c->n_embd, c->n_head);
    if (c->block_size < 1 || c->block_size > (1 << 22))
        return mx_errorf(err, "--context %d out of range; allowed [1, %d]", c->block_size, 1 << 22);
    if (c->pos < MX_POS_LEARNED || c->pos > MX_POS_ROPE)
        return mx_errorf(err, "position scheme %d unknown; use learned, none or rope", c->pos);
    if (c->vocab_size < 2)
        return mx_errorf(err, "vocabulary size %d is too small (need at least 2 symbols); is the data empty?",
                         c->vocab_size);
    return 0;
}

int model_create(struct mx_model *m, const struct mx_config *cfg, struct mx_error *err)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (validate_config(cfg, err) != 0)
        return -1;
    for (int l = 0; l < cfg->n_layer; l++) {
        struct mixer_dims d = {.C = cfg->n_embd, .H = cfg->n_head, .T_max = cfg->block_size,
                               .bias = cfg->bias, .layer = l, .n_layer = cfg->n_layer,
                               .rope = cfg->pos == MX_POS_ROPE, .seed = cfg->seed};
        if (mixer_create(&m->mix[l], cfg->attn[l], &d, err) != 0) {
            mx_error_wrap(err, "layer %d", l);
            for (int k = 0; k < l; k++)
                mixer_destroy(&m->mix[k]);
            return -1;
        }
        snprintf(m->cfg.attn[l], sizeof m->cfg.attn[l], "%s", m->mix[l].spec);
    }
    bind_params(m, NULL, NULL); /* count */
    m->tensors = mx_xcalloc(sizeof *m->tensors * (size_t)m->n_tensors);
    m->params = mx_try_calloc(m->n_params * sizeof(float), "the parameters", err);
    m->grads = m->params ? mx_try_calloc(m->n_params * sizeof(float), "the gradients", err) : NULL;
    if (!m->params || !m->grads) {
        model_free(m);
        return -1;
    }
    bind_params(m, m->params, m->grads);
    return 0;
}

void model_free(struct mx_model *m)
{
    for (int l = 0; l < m->cfg.n_layer; l++)
        if (m->mix[l].ops)
            mixer_destroy(&m->mix[l]);
    mx_free(m->tensors);
    mx_free(m->params);
    mx_free(m->grads);
    mx_free(m->arena);
    memset(m, 0, sizeof *m);
}

const struct mx_param *model_find_tensor(const struct mx_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0)
            return &m->tensors[i];
    return NULL;
}

void model_init_params(struct mx_model *m)
{
    const struct mx_config *c = &m->cfg;
    struct mx_rng r;
    mx_rng_seed(&r, c->seed);
    size_t C = (size_t)c->n_embd;
    const float std = 0.02f, std_res = 0.02f / sqrtf(2.0f * c->n_layer);
    memset(m->params, 0, m->n_params * sizeof(float));
    mx_rng_fill_normal(&r, m->w.wte, (size_t)c->vocab_size * C, std);
    mx_rng_fill_normal(&r, m->w.wpe, (size_t)c->block_size * C, std); /* drawn either way: same stream */
    if (c->pos != MX_POS_LEARNED)
        memset(m->w.wpe, 0, (size_t)c->block_size * C * sizeof(float));
    for (int l = 0; l < c->n_layer; l++) {
        struct mx_layer_w *w = &m->w.l[l];
        for (size_t i = 0; i < C; i++)
            w->ln1_w[i] = w->ln2_w[i] = 1.0f;
        /* Each mixer draws from its own stream so changing one layer's mixer does not change
         * the other layers' initial weights. */
        struct mx_rng rm;
        mx_rng_seed3(&rm, c->seed, 1000 + l, 0);
        mixer_init(&m->mix[l], w->mix, &rm);
        mx_rng_fill_normal(&r, w->fc_w, 4 * C * C, std);
        mx_rng_fill_normal(&r, w->pr_w, 4 * C * C, std_res);
    }
    for (size_t i = 0; i < C; i++)
        m->w.lnf_w[i] = 1.0f;
}

double model_flops_per_token(const struct mx_model *m, int T)
{
    double matmul = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const struct mx_param *t = &m->tensors[i];
        if (t->ndim == 2 && t->trainable && strcmp(t->name, "transformer.wpe.weight") != 0 &&
            strstr(t->name, ".attn.") == NULL)
            matmul += (double)t->numel; /* wte counts once: as the output head */
    }
    double mix = 0;
    for (int l = 0; l < m->cfg.n_layer; l++)
        mix += mixer_flops(&m->mix[l], 1, T, NULL, NULL) / T;
    return 6.0 * matmul + mix;
}

/* ---- activations -------------------------------------------------------------------------- */

static void bind_acts(struct mx_model *m, struct mx_arena *ar, int B, int T)
{
    const struct mx_config *c = &m->cfg;
    size_t BT = (size_t)B * T, C = (size_t)c->n_embd;
    struct mx_acts *a = &m->a;
    size_t scratch = 0;
    a->emb = mx_arena_floats(ar, BT * C);
    for (int l = 0; l < c->n_layer; l++) {
        struct mx_layer_acts *la = &a->l[l];
        la->ln1 = mx_arena_floats(ar, BT * C);
        la->ln1_mean = mx_arena_floats(ar, BT);
        la->ln1_rstd = mx_arena_floats(ar, BT);
        la->mix_saved = mx_arena_floats(ar, m->mix[l].ops->saved_floats(&m->mix[l], B, T));
        la->res_mid = mx_arena_floats(ar, BT * C);
        la->ln2 = mx_arena_floats(ar, BT * C);
        la->ln2_mean = mx_arena_floats(ar, BT);
        la->ln2_rstd = mx_arena_floats(ar, BT);
        la->fc = mx_arena_floats(ar, BT * 4 * C);
        la->gelu = mx_arena_floats(ar, BT * 4 * C);
        la->res = mx_arena_floats(ar, BT * C);
        size_t s = m->mix[l].ops->scratch_floats(&m->mix[l], B, T);
        if (s > scratch)
            scratch = s;
    }
    a->lnf = mx_arena_floats(ar, BT * C);
    a->lnf_mean = mx_arena_floats(ar, BT);
    a->lnf_rstd = mx_arena_floats(ar, BT);
    a->logits = mx_arena_floats(ar, BT * (size_t)c->vocab_size);
    a->lse = mx_arena_floats(ar, BT);
    a->losses = mx_arena_floats(ar, BT);
    a->d_res = mx_arena_floats(ar, BT * C);
    a->d_tmp = mx_arena_floats(ar, BT * C);
    a->d_ln = mx_arena_floats(ar, BT * C);
    a->d_fc = mx_arena_floats(ar, BT * 4 * C);
    a->mix_y = mx_arena_floats(ar, BT * C);
    a->scratch = mx_arena_floats(ar, scratch);
    a->ln_work = mx_arena_floats(ar, layer_norm_work_floats(c->n_embd));
}

size_t model_activation_floats(struct mx_model *m, int B, int T)
{
    struct mx_arena ar;
    struct mx_acts keep = m->a;
    mx_arena_begin(&ar, NULL, 0);
    bind_acts(m, &ar, B, T);
    m->a = keep;
    return ar.used;
}

int model_plan(struct mx_model *m, int B, int T, struct mx_error *err)
{
    if (T < 1 || T > m->cfg.block_size)
        return mx_errorf(err, "sequence length %d exceeds the model's context %d; use a shorter --context or prompt",
                         T, m->cfg.block_size);
    if (B < 1)
        return mx_errorf(err, "batch size %d must be at least 1", B);
    size_t n = model_activation_floats(m, B, T);
    mx_free(m->arena);
    m->arena = mx_try_calloc(n * sizeof(float), "the activations", err);
    if (!m->arena)
        return -1;
    m->arena_floats = n;
    struct mx_arena ar;
    mx_arena_begin(&ar, m->arena, n);
    bind_acts(m, &ar, B, T);
    m->B_max = B;
    m->T_max = T;
    for (int l = 0; l < m->cfg.n_layer; l++)
        m->mix[l].scratch = m->a.scratch;
    return 0;
}

/* ---- forward / backward ------------------------------------------------------------------- */

/* d(mean loss)/d logits = (p - onehot) / (counted rows): the scale, 1 / BT unless some targets
 * are ignored (negative: `train --loss-on recall`); 0 when none is counted. */
static float ce_grad_scale(const int32_t *y, size_t BT)
{
    size_t counted = 0;
    mx_prof_push(MX_PROF_LOSS);
    for (size_t i = 0; i < BT; i++)
        counted += y[i] >= 0;
    mx_prof_pop();
    return counted ? 1.0f / (float)counted : 0.0f;
}

float model_forward(struct mx_model *m, const int32_t *x, const int32_t *y, int B, int T,
                    long step, int training)
{
    const struct mx_config *c = &m->cfg;
    MX_ASSERT(B >= 1 && T >= 1 && B <= m->B_max && T <= m->T_max);
    /* Activations were bound for (B_max, T_max); smaller batches reuse the same pointers, so
     * rebind when the shape changes (cheap: no allocation). */
    if (B != m->B || T != m->T) {
        struct mx_arena ar;
        mx_arena_begin(&ar, m->arena, m->arena_floats);
        bind_acts(m, &ar, B, T);
        for (int l = 0; l < c->n_layer; l++)
            m->mix[l].scratch = m->a.scratch;
        m->B = B;
        m->T = T;
    }
    int C = c->n_embd, V = c->vocab_size;
    size_t BT = (size_t)B * T;
    struct mx_acts *a = &m->a;
    for (size_t i = 0; i < BT; i++)
        MX_ASSERT(x[i] >= 0 && x[i] < V);
    layer_embed_forward(a->emb, x, m->w.wte, m->w.wpe, B, T, C);
    const float *res = a->emb;
    for (int l = 0; l < c->n_layer; l++) {
        struct mx_layer_acts *la = &a->l[l];
        struct mx_layer_w *w = &m->w.l[l];
        struct mixer *mx = &m->mix[l];
        mx->step = step;
        mx->training = training;
        layer_norm_forward(la->ln1, la->ln1_mean, la->ln1_rstd, res, w->ln1_w, w->ln1_b, BT, C);
        mx_prof_push(MX_PROF_MIXER);
        mx->ops->forward(mx, a->mix_y, la->mix_saved, la->ln1, w->mix, B, T);
        mx_prof_pop();
        mx_prof_push(MX_PROF_RESID);
#pragma omp parallel for simd schedule(static) if (BT * C >= 65536)
        for (size_t i = 0; i < BT * C; i++)
            la->res_mid[i] = res[i] + a->mix_y[i];
        mx_prof_pop();
        layer_norm_forward(la->ln2, la->ln2_mean, la->ln2_rstd, la->res_mid, w->ln2_w, w->ln2_b, BT, C);
        mx_linear_forward(la->fc, la->ln2, w->fc_w, w->fc_b, (int)BT, C, 4 * C);
        layer_gelu_forward(la->gelu, la->fc, BT * 4 * C);
        mx_linear_forward(la->res, la->gelu, w->pr_w, w->pr_b, (int)BT, 4 * C, C);
        mx_prof_push(MX_PROF_RESID);
#pragma omp parallel for simd schedule(static) if (BT * C >= 65536)
        for (size_t i = 0; i < BT * C; i++)
            la->res[i] += la->res_mid[i];
        mx_prof_pop();
        res = la->res;
    }
    layer_norm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, res, m->w.lnf_w, m->w.lnf_b, BT, C);
    mx_linear_forward(a->logits, a->lnf, m->w.wte, NULL, (int)BT, C, V);
    m->tok = x;
    m->tgt = y;
    m->ce_grad_ready = 0;
    if (training && y && m->ce_fused) {
        m->loss = layer_ce_fused(a->logits, a->lse, a->losses, y, BT, V, ce_grad_scale(y, BT));
        m->ce_grad_ready = 1;
    } else {
        m->loss = layer_ce_forward(a->lse, a->losses, a->logits, y, BT, V);
    }
    return m->loss;
}

void model_token_losses(const struct mx_model *m, float *out)
{
    memcpy(out, m->a.losses, (size_t)m->B * m->T * sizeof(float));
}

/* grads[off, off+n) are final for this backward: keep the buffers' (e.g. fixed random
 * features) gradients zero, since they never learn, then tell the hook. */
static void grads_done(struct mx_model *m, size_t off, size_t n)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const struct mx_param *t = &m->tensors[i];
        if (!t->trainable && t->offset >= off && t->offset < off + n)
            memset(m->grads + t->offset, 0, t->numel * sizeof(float));
    }
    if (m->grads_ready)
        m->grads_ready(m->grads_ready_ctx, off, n);
}

void model_backward(struct mx_model *m)
{
    MX_ASSERT(m->tgt != NULL);
    const struct mx_config *c = &m->cfg;
    int B = m->B, T = m->T, C = c->n_embd, V = c->vocab_size;
    size_t BT = (size_t)B * T;
    struct mx_acts *a = &m->a;
    /* logits become dlogits in place (unless the forward did it: ce_fused) */
    if (!m->ce_grad_ready)
        layer_ce_backward(a->logits, a->lse, m->tgt, BT, V, ce_grad_scale(m->tgt, BT));
    m->ce_grad_ready = 0;
    mx_linear_backward_set(a->d_ln, m->g.wte, NULL, a->logits, a->lnf, m->w.wte, (int)BT, C, V);
    const float *res_last = c->n_layer ? a->l[c->n_layer - 1].res : a->emb;
    mx_prof_push(MX_PROF_RESID);
    memset(a->d_res, 0, BT * C * sizeof(float));
    mx_prof_pop();
    layer_norm_backward(a->d_res, m->g.lnf_w, m->g.lnf_b, a->ln_work, a->d_ln, res_last, a->lnf_mean,
                        a->lnf_rstd, m->w.lnf_w, BT, C);
    /* d_res holds d loss / d (output of layer l); it flows unchanged through each residual. */
    for (int l = c->n_layer - 1; l >= 0; l--) {
        struct mx_layer_acts *la = &a->l[l];
        struct mx_layer_w *w = &m->w.l[l], *g = &m->g.l[l];
        struct mixer *mx = &m->mix[l];
        const float *res_in = l ? a->l[l - 1].res : a->emb;
        /* MLP: res = res_mid + proj(gelu(fc(ln2(res_mid)))) */
        mx_linear_backward_set(a->d_fc, g->pr_w, g->pr_b, a->d_res, la->gelu, w->pr_w, (int)BT, 4 * C, C);
        layer_gelu_backward(a->d_fc, a->d_fc, la->fc, BT * 4 * C);
        mx_linear_backward_set(a->d_ln, g->fc_w, g->fc_b, a->d_fc, la->ln2, w->fc_w, (int)BT, C, 4 * C);
        layer_norm_backward(a->d_res, g->ln2_w, g->ln2_b, a->ln_work, a->d_ln, la->res_mid, la->ln2_mean,
                            la->ln2_rstd, w->ln2_w, BT, C);
        /* Mixer: res_mid = res_in + mixer(ln1(res_in)) */
        mx_prof_push(MX_PROF_RESID);
        memset(a->d_ln, 0, BT * C * sizeof(float));
        mx_prof_pop();
        mx_prof_push(MX_PROF_MIXER);
        mx->ops->backward(mx, a->d_ln, g->mix, a->d_res, la->mix_saved, la->ln1, w->mix, B, T);
        mx_prof_pop();
        layer_norm_backward(a->d_res, g->ln1_w, g->ln1_b, a->ln_work, a->d_ln, res_in, la->ln1_mean,
                            la->ln1_rstd, w->ln1_w, BT, C);
        /* Layer l's tensors lie from its ln_1 to the next layer's (or ln_f), all final now. */
        float *end = l + 1 < c->n_layer ? m->g.l[l + 1].ln1_w : m->g.lnf_w;
        grads_done(m, (size_t)(g->ln1_w - m->grads), (size_t)(end - g->ln1_w));
    }
    layer_embed_backward(m->g.wte, m->g.wpe, a->d_res, m->tok, B, T, C);
    /* wte (also the output head, written first) and wpe lie before layer 0; ln_f after the last. */
    size_t first = (size_t)(c->n_layer ? m->g.l[0].ln1_w - m->grads : m->g.lnf_w - m->grads);
    size_t lnf = (size_t)(m->g.lnf_w - m->grads);
    grads_done(m, 0, first);
    grads_done(m, lnf, m->n_params - lnf);
}

/* ---- single-token decoding ---------------------------------------------------------------- */

int model_can_step(const struct mx_model *m)
{
    for (int l = 0; l < m->cfg.n_layer; l++)
        if (!m->mix[l].ops->step)
            return 0;
    return 1;
}

size_t model_state_floats(const struct mx_model *m)
{
    size_t n = 0;
    for (int l = 0; l < m->cfg.n_layer; l++)
        n += (m->mix[l].ops->state_floats(&m->mix[l]) + 15) & ~(size_t)15;
    return n;
}

size_t model_step_work_floats(const struct mx_model *m)
{
    return 11 * (size_t)m->cfg.n_embd + 16;
}

/* One row through a linear layer: y (out) overwritten = W x + b; x (in), w (out,in), b (out) or
 * NULL. WHY sgemv rather than mx_linear_forward with N = 1: OpenBLAS 0.3.21 sends a one-row sgemm
 * of 384 -> 1536 through its packing path (~240 us measured here) while sgemv streams W once
 * (~45 us); the other shapes of a step cost about the same either way. */
static void step_linear(float *y, const float *x, const float *w, const float *b, int in, int out)
{
    if (b)
        memcpy(y, b, (size_t)out * sizeof(float));
    cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, b ? 1.0f : 0.0f, y, 1);
}

void model_step(struct mx_model *m, float *logits, float *state, float *work, int32_t token, int pos)
{
    const struct mx_config *c = &m->cfg;
    int C = c->n_embd, V = c->vocab_size;
    MX_ASSERT(model_can_step(m) && pos >= 0 && pos < c->block_size && token >= 0 && token < V);
    float *res = work, *ln = res + C, *y = ln + C, *fc = y + C, *ge = fc + 4 * C, *st = ge + 4 * C;
    for (int i = 0; i < C; i++)
        res[i] = m->w.wte[(size_t)token * C + i] + m->w.wpe[(size_t)pos * C + i];
    float *s = state;
    for (int l = 0; l < c->n_layer; l++) {
        struct mx_layer_w *w = &m->w.l[l];
        struct mixer *mx = &m->mix[l];
        mx->training = 0;
        layer_norm_forward(ln, st, st + 1, res, w->ln1_w, w->ln1_b, 1, C);
        mx->ops->step(mx, y, s, ln, w->mix, pos);
        s += (mx->ops->state_floats(mx) + 15) & ~(size_t)15;
        for (int i = 0; i < C; i++)
            res[i] += y[i];
        layer_norm_forward(ln, st, st + 1, res, w->ln2_w, w->ln2_b, 1, C);
        step_linear(fc, ln, w->fc_w, w->fc_b, C, 4 * C);
        layer_gelu_forward(ge, fc, 4 * (size_t)C);
        step_linear(y, ge, w->pr_w, w->pr_b, 4 * C, C);
        for (int i = 0; i < C; i++)
            res[i] += y[i];
    }
    if (!logits) /* prefill: only the state matters; the output head is the costliest matvec at large V */
        return;
    layer_norm_forward(ln, st, st + 1, res, m->w.lnf_w, m->w.lnf_b, 1, C);
    step_linear(logits, ln, m->w.wte, NULL, C, V);
}

size_t model_prefill_work_floats(const struct mx_model *m, int n)
{
    return (size_t)n * (11 * (size_t)m->cfg.n_embd + 2) + 16;
}

void model_prefill(struct mx_model *m, float *logits, float *state, float *work, const int32_t *tokens,
                   int n, int pos)
{
    const struct mx_config *c = &m->cfg;
    const int C = c->n_embd, V = c->vocab_size;
    MX_ASSERT(model_can_step(m) && n >= 1 && pos >= 0 && pos + n <= c->block_size);
    const size_t nC = (size_t)n * C;
    float *res = work, *ln = res + nC, *y = ln + nC, *fc = y + nC, *ge = fc + 4 * nC, *st = ge + 4 * nC;
    for (int t = 0; t < n; t++) {
        MX_ASSERT(tokens[t] >= 0 && tokens[t] < V);
        for (int i = 0; i < C; i++)
            res[(size_t)t * C + i] = m->w.wte[(size_t)tokens[t] * C + i] + m->w.wpe[(size_t)(pos + t) * C + i];
    }
    float *s = state;
    for (int l = 0; l < c->n_layer; l++) {
        struct mx_layer_w *w = &m->w.l[l];
        struct mixer *mx = &m->mix[l];
        mx->training = 0;
        layer_norm_forward(ln, st, st + n, res, w->ln1_w, w->ln1_b, (size_t)n, C);
        /* The mixer's state advances one token at a time: step is the only incremental entry. */
        for (int t = 0; t < n; t++)
            mx->ops->step(mx, y + (size_t)t * C, s, ln + (size_t)t * C, w->mix, pos + t);
        s += (mx->ops->state_floats(mx) + 15) & ~(size_t)15;
        for (size_t i = 0; i < nC; i++)
            res[i] += y[i];
        layer_norm_forward(ln, st, st + n, res, w->ln2_w, w->ln2_b, (size_t)n, C);
        mx_linear_forward(fc, ln, w->fc_w, w->fc_b, n, C, 4 * C);
        layer_gelu_forward(ge, fc, 4 * nC);
        mx_linear_forward(y, ge, w->pr_w, w->pr_b, n, 4 * C, C);
        for (size_t i = 0; i < nC; i++)
            res[i] += y[i];
    }
    if (!logits)
        return;
    const float *last = res + (size_t)(n - 1) * C;
    layer_norm_forward(ln, st, st + 1, last, m->w.lnf_w, m->w.lnf_b, 1, C);
    step_linear(logits, ln, m->w.wte, NULL, C, V);
}
