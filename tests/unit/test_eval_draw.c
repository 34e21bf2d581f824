/* test_eval_draw.c — a run is evaluated and sampled with the random-feature draw its
 * parameters were last trained with. A checkpoint saved after N steps had its last update at
 * step index N-1; Performer with redraw=5 saved after 10 steps must use draw 1 (steps 5..9),
 * not draw 2. The wrong draw is no small error: a performer run with redraw=1000 evaluated at
 * step 2000 with the next draw scored 2.44 instead of 1.93. */
#include "check.h"
#include "infer/infer.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int case_performer_redraw(void)
{
    char dir[] = "/tmp/mixlm-draw.XXXXXX";
    if (!mkdtemp(dir))
        return 77;
    struct mx_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 16, .block_size = 16, .vocab_size = 11, .seed = 3};
    snprintf(cfg.attn[0], sizeof cfg.attn[0], "performer:m=16,redraw=5");
    struct mx_model m;
    struct mx_error err;
    if (model_create(&m, &cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    model_init_params(&m);
    cJSON *tok = cJSON_Parse("{\"type\":\"char\",\"chars\":\"abcdefghijk\"}");
    cJSON *train = cJSON_Parse("{\"step\":10}");
    struct mx_ckpt_extra x = {.tokenizer = tok, .train = train};
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int fails = 0;
    if (ckpt_write(path, &m, &x, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    struct mx_run r;
    if (infer_load_run(&r, dir, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (r.step != 10 || r.mixer_step != 9) {
        fprintf(stderr, "FAIL: step %ld mixer_step %ld, want 10 and 9\n", r.step, r.mixer_step);
        fails++;
    }
    /* The draw matters: steps 9 and 10 give different outputs, 5 and 9 the same. */
    int32_t ids[16];
    for (int i = 0; i < 16; i++)
        ids[i] = i % 11;
    if (model_plan(&r.m, 1, 16, &err) != 0)
        return 1;
    float a[16 * 11], b[16 * 11], c[16 * 11];
    model_forward(&r.m, ids, NULL, 1, 16, 9, 0);
    memcpy(a, r.m.a.logits, sizeof a);
    model_forward(&r.m, ids, NULL, 1, 16, 10, 0);
    memcpy(b, r.m.a.logits, sizeof b);
    model_forward(&r.m, ids, NULL, 1, 16, 5, 0);
    memcpy(c, r.m.a.logits, sizeof c);
    if (!memcmp(a, b, sizeof a) || memcmp(a, c, sizeof a)) {
        fprintf(stderr, "FAIL: draws do not follow step / redraw\n");
        fails++;
    }
    infer_free_run(&r);
    model_free(&m);
    cJSON_Delete(tok);
    cJSON_Delete(train);
    unlink(path);
    rmdir(dir);
    fprintf(stderr, "%s eval draw = last update's draw\n", fails ? "FAIL" : "ok  ");
    return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"performer_redraw", case_performer_redraw},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
