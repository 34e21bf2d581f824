/* args.c — the flag parser behind every subcommand (see args.h). */
#include "cli/args.h"

#include <limits.h>
#include <string.h>

void args_help(FILE *f, const char *usage, const struct arg *a, int n)
{
    fprintf(f, "%s\noptions:\n", usage);
    for (int i = 0; i < n; i++) {
        const char *v = a[i].type == ARG_FLAG    ? ""
                        : a[i].type == ARG_INT   ? " N"
                        : a[i].type == ARG_INTS  ? " N[,N...]"
                        : a[i].type == ARG_FLOAT ? " X"
                                                 : " S";
        char left[64];
        snprintf(left, sizeof left, "%s%s", a[i].name, v);
        fprintf(f, "  %-22s %s\n", left, a[i].help);
    }
    fprintf(f, "  %-22s %s\n", "--help", "show this help");
}

int args_given(const struct arg *a, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(a[i].name, name))
            return a[i].set;
    return 0;
}

/* One integer of a list: mx_parse_int (which takes a k suffix), or digits with an m suffix. */
static int parse_scaled(const char *tok, long lo, long hi, const char *name, long *out, struct mx_error *err)
{
    size_t n = strlen(tok);
    if (n < 2 || n > 32 || tok[n - 1] != 'm')
        return mx_parse_int(tok, lo, hi, name, out, err);
    char d[32];
    long v;
    memcpy(d, tok, n - 1);
    d[n - 1] = 0;
    if (mx_parse_int(d, 0, LONG_MAX / 1048576, name, &v, err) != 0)
        return -1;
    v *= 1048576;
    if (v < lo || v > hi)
        return mx_errorf(err, "%s: %s = %ld is out of range; allowed [%ld, %ld]", name, tok, v, lo, hi);
    *out = v;
    return 0;
}

static int set_ints(struct arg *a, const char *val, struct mx_error *err)
{
    struct arg_ints *l = a->dst;
    char buf[1024];
    if (strlen(val) >= sizeof buf)
        return mx_errorf(err, "%s '%.40s...' is too long", a->name, val);
    snprintf(buf, sizeof buf, "%s", val);
    char *save = NULL;
    int items = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), items++) {
        if (l->n >= ARG_INTS_MAX)
            return mx_errorf(err, "%s: at most %d values; split the run", a->name, ARG_INTS_MAX);
        if (parse_scaled(tok, (long)a->lo, (long)a->hi, a->name, &l->v[l->n], err) != 0)
            return -1;
        l->n++;
    }
    if (items == 0)
        return mx_errorf(err, "%s '%s' holds no value; write e.g. %s 1024,4096", a->name, val, a->name);
    return 0;
}

static int set_value(struct arg *a, const char *val, struct mx_error *err)
{
    long iv;
    double fv;
    switch (a->type) {
    case ARG_INT:
        if (mx_parse_int(val, (long)a->lo, (long)a->hi, a->name, &iv, err) != 0)
            return -1;
        *(long *)a->dst = iv;
        break;
    case ARG_FLOAT:
        if (mx_parse_float(val, a->lo, a->hi, a->name, &fv, err) != 0)
            return -1;
        *(double *)a->dst = fv;
        break;
    case ARG_STR:
        if (strlen(val) >= a->size)
            return mx_errorf(err, "%s: value too long (max %zu characters)", a->name, a->size - 1);
        snprintf((char *)a->dst, a->size, "%s", val);
        break;
    case ARG_LIST: {
        struct arg_list *l = a->dst;
        if (l->n >= ARG_LIST_MAX || strlen(val) >= sizeof l->v[0])
            return mx_errorf(err, "%s: too many values or value too long", a->name);
        snprintf(l->v[l->n++], sizeof l->v[0], "%s", val);
        break;
    }
    case ARG_INTS:
        if (set_ints(a, val, err) != 0)
            return -1;
        break;
    case ARG_FLAG:
        *(int *)a->dst = 1;
        break;
    }
    a->set = 1;
    return 0;
}

int args_parse(int argc, char **argv, struct arg *a, int n, const char **pos, int max_pos, int *n_pos,
               const char *usage, struct mx_error *err)
{
    *n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            args_help(stdout, usage, a, n);
            return 1;
        }
        if (strncmp(s, "--", 2) != 0) {
            if (*n_pos >= max_pos)
                return mx_errorf(err, "unexpected argument '%s' (see mixlm %s --help)", s, argv[0]);
            pos[(*n_pos)++] = s;
            continue;
        }
        const char *eq = strchr(s, '=');
        size_t nl = eq ? (size_t)(eq - s) : strlen(s);
        struct arg *hit = NULL;
        for (int k = 0; k < n; k++)
            if (strlen(a[k].name) == nl && !strncmp(a[k].name, s, nl))
                hit = &a[k];
        if (!hit)
            return mx_errorf(err, "unknown option '%.*s' for 'mixlm %s'; see 'mixlm %s --help' for the options",
                             (int)nl, s, argv[0], argv[0]);
        const char *val;
        if (hit->type == ARG_FLAG) {
            if (eq)
                return mx_errorf(err, "%s takes no value", hit->name);
            val = "";
        } else if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc)
                return mx_errorf(err, "%s needs a value (see mixlm %s --help)", hit->name, argv[0]);
            val = argv[++i];
        }
        if (set_value(hit, val, err) != 0)
            return -1;
    }
    return 0;
}
