/* test_pytorch_ref.c — the whole model against an independent reference: nanoGPT's GPT in
 * PyTorch (tests/ref/nanogpt.py check) loads mixlm's safetensors checkpoint, runs the same batch
 * in float64 and compares logits, loss and every parameter gradient with mixlm's, which this side
 * writes to a temp dir for small models with and without bias. Skips (77) when no Python
 * interpreter imports torch. Not a test of training or of any mixer but dense. */
#include "check.h"
#include "model/model.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* An interpreter that imports torch and numpy: $MIXLM_PYTHON, then Debian's /usr/bin/python3
 * (where python3-torch lives here), then python3 on PATH. */
static const char *find_python(void)
{
    const char *env = getenv("MIXLM_PYTHON");
    const char *cands[] = {env, "/usr/bin/python3", "python3"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        if (!cands[i] || !*cands[i])
            continue;
        char cmd[600];
        snprintf(cmd, sizeof cmd, "%s -c 'import torch, numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0)
            return cands[i];
    }
    return NULL;
}

/* tests/ref/nanogpt.py: from $MIXLM_SOURCE_DIR (set by CTest), else beside this file. */
static void script_path(char *out, size_t n)
{
    const char *src = getenv("MIXLM_SOURCE_DIR");
    if (src && *src) {
        snprintf(out, n, "%s/tests/ref/nanogpt.py", src);
        return;
    }
    snprintf(out, n, "%s", __FILE__);
    char *slash = strrchr(out, '/');
    if (slash)
        snprintf(slash + 1, n - (size_t)(slash + 1 - out), "nanogpt.py");
    else
        snprintf(out, n, "nanogpt.py");
}

static int write_raw(const char *dir, const char *name, const void *p, size_t bytes)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes) {
        fprintf(stderr, "cannot write %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[600];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%.255s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

/* Build, run and dump one configuration into the fresh temp dir `dir` (mkdtemp'd by the
 * caller). Returns 0, or 1 on a setup failure. */
static int write_case(const char *dir, int bias, int B, int T, uint64_t seed)
{
    struct mx_config c;
    memset(&c, 0, sizeof c);
    c.n_layer = 2;
    c.n_head = 4;
    c.n_embd = 64;
    c.block_size = 32;
    c.vocab_size = 37;
    c.bias = bias;
    c.seed = seed;
    for (int l = 0; l < c.n_layer; l++)
        snprintf(c.attn[l], sizeof c.attn[l], "dense");
    struct mx_model m;
    struct mx_error err;
    if (model_create(&m, &c, &err) != 0 || model_plan(&m, B, T, &err) != 0) {
        fprintf(stderr, "model setup: %s\n", err.msg);
        return 1;
    }
    model_init_params(&m);
    /* Widen the matrices (N(0,0.02) makes attention almost uniform) and give gains and biases
     * their own values, so every path of the reference comparison carries signal. */
    struct mx_rng r;
    mx_rng_seed(&r, seed + 1);
    for (int i = 0; i < m.n_tensors; i++) {
        const struct mx_param *t = &m.tensors[i];
        float *p = m.params + t->offset;
        for (size_t k = 0; k < t->numel; k++)
            p[k] = t->ndim >= 2 ? p[k] * 5.0f : p[k] + 0.1f * mx_rng_normal(&r);
    }
    size_t BT = (size_t)B * T, V = (size_t)c.vocab_size;
    int32_t *x = mx_xmalloc(BT * 4), *y = mx_xmalloc(BT * 4);
    for (size_t i = 0; i < BT; i++) {
        x[i] = (int32_t)mx_rng_below(&r, (uint32_t)V);
        y[i] = (int32_t)mx_rng_below(&r, (uint32_t)V);
    }
    memset(m.grads, 0, m.n_params * sizeof(float));
    float loss = model_forward(&m, x, y, B, T, 0, 1);
    float *logits = mx_xmalloc(BT * V * sizeof(float));
    memcpy(logits, m.a.logits, BT * V * sizeof(float)); /* backward overwrites them */
    model_backward(&m);

    char path[600], meta[256];
    int rc = 1;
    cJSON *tok = cJSON_Parse("{\"type\":\"byte\"}");
    struct mx_ckpt_extra extra = {.tokenizer = tok};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (ckpt_write(path, &m, &extra, &err) != 0) {
        fprintf(stderr, "ckpt_write: %s\n", err.msg);
        goto out;
    }
    /* The gradients as a checkpoint of their own: same names, shapes and layout. */
    struct mx_model *gm = mx_xmalloc(sizeof *gm);
    *gm = m;
    gm->params = m.grads;
    snprintf(path, sizeof path, "%s/grads.safetensors", dir);
    int wrc = ckpt_write(path, gm, &extra, &err);
    mx_free(gm);
    if (wrc != 0) {
        fprintf(stderr, "ckpt_write(grads): %s\n", err.msg);
        goto out;
    }
    snprintf(meta, sizeof meta, "{\"B\": %d, \"T\": %d, \"V\": %zu, \"loss\": %.9g}\n", B, T, V,
             (double)loss);
    if (write_raw(dir, "batch.json", meta, strlen(meta)) || write_raw(dir, "x.bin", x, BT * 4) ||
        write_raw(dir, "y.bin", y, BT * 4) || write_raw(dir, "logits.bin", logits, BT * V * 4))
        goto out;
    fprintf(stderr, "case bias=%d B=%d T=%d: %s\n", bias, B, T, dir);
    rc = 0;
out:
    cJSON_Delete(tok);
    mx_free(x);
    mx_free(y);
    mx_free(logits);
    model_free(&m);
    return rc;
}

/* With bias, T = block; without bias, T < block: logits, loss and every gradient. */
static int case_model_vs_pytorch(void)
{
    const char *py = find_python();
    if (!py) {
        return check_skip("no Python interpreter imports torch and numpy (tried $MIXLM_PYTHON, "
                          "/usr/bin/python3, python3)");
    }
    char script[1024];
    script_path(script, sizeof script);
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "reference script %s not found (set MIXLM_SOURCE_DIR)\n", script);
        return 1;
    }
    /* with bias, T = block; without bias, T < block. One script run for both (importing
     * torch costs seconds). */
    char dirs[2][32] = {"/tmp/mixlm_ptref_XXXXXX", "/tmp/mixlm_ptref_XXXXXX"};
    int f = 0;
    for (int i = 0; i < 2; i++)
        if (!mkdtemp(dirs[i])) {
            perror("mkdtemp");
            return 1;
        }
    f |= write_case(dirs[0], 1, 3, 32, 42) != 0;
    f |= write_case(dirs[1], 0, 2, 24, 7) != 0;
    if (!f) {
        char cmd[1600];
        snprintf(cmd, sizeof cmd, "%s '%s' check '%s' '%s'", py, script, dirs[0], dirs[1]);
        fprintf(stderr, "%s\n", cmd);
        fflush(stderr);
        int st = system(cmd);
        f = !(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    for (int i = 0; i < 2; i++)
        if (!getenv("MIXLM_KEEP_TMP"))
            remove_dir(dirs[i]);
    fprintf(stderr, "%s\n", f ? "FAIL pytorch reference" : "ok   pytorch reference");
    return f;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"model_vs_pytorch", case_model_vs_pytorch},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
