/* output.c — the benchmark's rows as an aligned text table (with a header naming the machine's
 * state and the ratios to the reference mixer), CSV and a JSON array; CSV and JSON also as files
 * written atomically. Not measuring anything (harness.c). */
#include "bench/internal.h"
#include "nn/kernels.h"
#include "nn/isa.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void csv_num(FILE *f, int have, double v, int prec)
{
    if (have)
        fprintf(f, ",%.*f", prec, v);
    else
        fputc(',', f);
}

static const char csv_header[] =
    "attn,spec,context,batch,dim,heads,layers,threads,repeats,forward_ms,train_ms,peak_mb,est_mb,"
    "tokens_per_s,gflops,sgemm_gflops,core_forward_ms,core_train_ms,skipped,cpu,isa,host_steal_pct,"
    "host_other_pct\n";

void bench_csv_head(FILE *f)
{
    fputs(csv_header, f);
}

void bench_csv_row(FILE *f, const struct bench_opts *o, const struct bench_row *r, double sgemm)
{
    mx_csv_field(f, r->attn);
    fputc(',', f);
    mx_csv_field(f, r->canon);
    fprintf(f, ",%d,%d,%d,%d,%d,%d,%d", r->T, o->B, o->C, o->H, o->L, o->threads,
            r->measured ? r->repeats : 0);
    csv_num(f, r->measured, r->forward_ms, 3);
    csv_num(f, r->measured, r->train_ms, 3);
    csv_num(f, r->measured, r->peak_mb, 1);
    csv_num(f, 1, r->est_mb, 1);
    csv_num(f, r->measured, r->tokens_per_s, 1);
    csv_num(f, r->measured && r->gflops >= 0, r->gflops, 2);
    csv_num(f, sgemm > 0, sgemm, 1);
    csv_num(f, r->measured && r->core_train_ms >= 0, r->core_forward_ms, 3);
    csv_num(f, r->measured && r->core_train_ms >= 0, r->core_train_ms, 3);
    fputc(',', f);
    mx_csv_field(f, r->skipped);
    fputc(',', f);
    mx_csv_field(f, mx_cpu_name());
    fputc(',', f);
    mx_csv_field(f, mx_isa_name());
    csv_num(f, r->measured && r->host_steal_pct >= 0, r->host_steal_pct, 1);
    csv_num(f, r->measured && r->host_other_pct >= 0, r->host_other_pct, 1);
    fputc('\n', f);
}

static cJSON *json_num_or_null(int have, double v)
{
    return have ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static cJSON *json_row(const struct bench_opts *o, const struct bench_row *r, double sgemm)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "attn", r->attn);
    cJSON_AddStringToObject(j, "spec", r->canon);
    cJSON_AddNumberToObject(j, "context", r->T);
    cJSON_AddNumberToObject(j, "batch", o->B);
    cJSON_AddNumberToObject(j, "dim", o->C);
    cJSON_AddNumberToObject(j, "heads", o->H);
    cJSON_AddNumberToObject(j, "layers", o->L);
    cJSON_AddNumberToObject(j, "threads", o->threads);
    cJSON_AddNumberToObject(j, "repeats", r->measured ? r->repeats : 0);
    cJSON_AddItemToObject(j, "forward_ms", json_num_or_null(r->measured, r->forward_ms));
    cJSON_AddItemToObject(j, "train_ms", json_num_or_null(r->measured, r->train_ms));
    cJSON_AddItemToObject(j, "peak_mb", json_num_or_null(r->measured, r->peak_mb));
    cJSON_AddNumberToObject(j, "est_mb", r->est_mb);
    cJSON_AddItemToObject(j, "tokens_per_s", json_num_or_null(r->measured, r->tokens_per_s));
    cJSON_AddItemToObject(j, "gflops", json_num_or_null(r->measured && r->gflops >= 0, r->gflops));
    cJSON_AddItemToObject(j, "sgemm_gflops", json_num_or_null(sgemm > 0, sgemm));
    int core = r->measured && r->core_train_ms >= 0;
    cJSON_AddItemToObject(j, "core_forward_ms", json_num_or_null(core, r->core_forward_ms));
    cJSON_AddItemToObject(j, "core_train_ms", json_num_or_null(core, r->core_train_ms));
    if (r->measured)
        cJSON_AddNullToObject(j, "skipped");
    else
        cJSON_AddStringToObject(j, "skipped", r->skipped);
    cJSON_AddStringToObject(j, "cpu", mx_cpu_name());
    cJSON_AddStringToObject(j, "isa", mx_isa_name());
    char blas[192];
    cJSON_AddStringToObject(j, "blas", mx_blas_desc(blas, sizeof blas));
    cJSON_AddItemToObject(j, "host_steal_pct", json_num_or_null(r->measured && r->host_steal_pct >= 0, r->host_steal_pct));
    cJSON_AddItemToObject(j, "host_other_pct", json_num_or_null(r->measured && r->host_other_pct >= 0, r->host_other_pct));
    return j;
}

struct bench_table {
    const struct bench_opts *o;
    const struct bench_result *res;
};

char *bench_json_table(const struct bench_opts *o, const struct bench_result *res)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < res->n_rows; i++)
        cJSON_AddItemToArray(arr, json_row(o, &res->rows[i], res->sgemm));
    char *s = cJSON_Print(arr);
    cJSON_Delete(arr);
    return s;
}

static int write_json(FILE *f, void *ctx, struct mx_error *err)
{
    const struct bench_table *t = ctx;
    char *s = bench_json_table(t->o, t->res);
    int ok = fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    cJSON_free(s);
    return ok ? 0 : mx_errorf(err, "writing JSON failed (disk full?)");
}

static int write_csv(FILE *f, void *ctx, struct mx_error *err)
{
    const struct bench_table *t = ctx;
    fputs(csv_header, f);
    for (size_t i = 0; i < t->res->n_rows; i++)
        bench_csv_row(f, t->o, &t->res->rows[i], t->res->sgemm);
    return ferror(f) ? mx_errorf(err, "writing CSV failed (disk full?)") : 0;
}

void bench_text_header(const struct bench_opts *o, double sgemm, double fma_peak, const char *coretype)
{
    printf("mixlm bench: B=%d C=%d H=%d D=%d layers=%d threads=%d repeats=%d warmup=%d "
           "time-budget=%gs mem-budget=%.0fMiB%s\n",
           o->B, o->C, o->H, o->C / o->H, o->L, o->threads, o->repeats, o->warmup, o->time_budget,
           o->mem_budget, o->mem_budget_auto ? " (90% of MemAvailable)" : "");
    char blas[192];
    mx_blas_desc(blas, sizeof blas);
    if (sgemm > 0)
        printf("sgemm ceiling: cblas_sgemm 1024x1024x1024 = %.1f GFLOP/s (median of 9), %s\n", sgemm, blas);
    else
        printf("sgemm ceiling: not measured (%s), %s\n", o->no_sgemm ? "--no-sgemm" : "the child failed", blas);
    if (fma_peak > 0)
        printf("arithmetic peak: FMA loop (%s, %d chains, %d threads) = %.1f GFLOP/s; sgemm at %.0f%% of it\n",
               mx_isa_name(), MX_FMA_CHAINS, o->threads, fma_peak, 100.0 * sgemm / fma_peak);
    /* The host is shared and noisy: the load at start tells a reader how far to trust it. */
    FILE *lf = fopen("/proc/loadavg", "r");
    double l1 = -1;
    if (lf) {
        if (fscanf(lf, "%lf", &l1) != 1)
            l1 = -1;
        fclose(lf);
    }
    printf("cpu: %s | kernels %s (MIXLM_ISA forces a lower level)\n", mx_cpu_name(), mx_isa_name());
    if (l1 >= 0)
        printf("load average (1 min) at start: %.2f on %ld online CPUs\n", l1, sysconf(_SC_NPROCESSORS_ONLN));
    if (coretype && !getenv("MIXLM_BLAS_DETECTED") && !getenv("MIXLM_BLAS_FOR_ISA"))
        printf("note: OPENBLAS_CORETYPE is set; benchmark with `env -u OPENBLAS_CORETYPE` "
               "for the machine's real kernels\n");
    printf("GFLOP/s: every mixer, from its own FLOP count (weight matmuls + the mixing it reports; "
           "see --help)\n\n");
    printf("%-24s %7s %10s %10s %10s %11s %8s %8s %8s  %s\n", "attn", "T", "fwd ms", "train ms",
           "core ms", "tok/s", "GFLOP/s", "peak MB", "est MB", "note");
}

void bench_text_row(const struct bench_opts *o, const struct bench_row *r)
{
    if (r->measured) {
        char gf[32] = "-", note[64] = "", core[32] = "-";
        if (r->gflops >= 0)
            snprintf(gf, sizeof gf, "%.1f", r->gflops);
        if (r->core_train_ms >= 0)
            snprintf(core, sizeof core, "%.2f", r->core_train_ms);
        if (r->repeats < o->repeats)
            snprintf(note, sizeof note, "%d of %d repeats (time budget)", r->repeats, o->repeats);
        /* A row measured while the host took its CPUs says so: its times are not this machine's. */
        if (r->host_steal_pct >= MX_HOST_NOTE_PCT || r->host_other_pct >= MX_HOST_NOTE_PCT) {
            size_t len = strlen(note);
            snprintf(note + len, sizeof note - len, "%shost: steal %.0f%%, others %.0f%%", len ? "; " : "",
                     r->host_steal_pct, r->host_other_pct);
        }
        printf("%-24s %7d %10.2f %10.2f %10s %11.0f %8s %8.1f %8.1f  %s\n", r->attn, r->T,
               r->forward_ms, r->train_ms, core, r->tokens_per_s, gf, r->peak_mb, r->est_mb, note);
    } else {
        printf("%-24s %7d %10s %10s %10s %11s %8s %8s %8.1f  %s\n", r->attn, r->T, "-", "-", "-", "-",
               "-", "-", r->est_mb, r->skipped);
    }
    fflush(stdout);
}

void bench_text_ratios(const struct bench_opts *o, const struct bench_row *rows)
{
    /* The baseline is the registry's first mixer, exact attention, asked of the registry
     * rather than named here. */
    const char *ref = mixer_at(0)->name;
    int ref_at = -1;
    for (int a = 0; a < o->n_attn && ref_at < 0; a++)
        if (rows[(size_t)a * o->n_ctx].reference)
            ref_at = a;
    printf("\ntrain time relative to %s (train_ms / %s train_ms; < 1 is faster):\n", ref, ref);
    if (ref_at < 0) {
        printf("  (no --attn %s in this run: add it to get ratios)\n", ref);
        return;
    }
    if (o->n_attn == 1) {
        printf("  (only %s in this run: add other --attn specs to get ratios)\n", ref);
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            int any = 0;
            for (size_t i = 0; i < (size_t)o->n_attn * o->n_ctx; i++)
                any |= rows[i].measured && rows[i].core_train_ms >= 0 && (int)(i / o->n_ctx) != ref_at;
            if (!any || rows[(size_t)ref_at * o->n_ctx].core_train_ms < 0)
                return;
            printf("\nattention core alone (core_train_ms / %s core_train_ms; no projections):\n", ref);
        }
        printf("%-24s", "attn");
        for (int c = 0; c < o->n_ctx; c++)
            printf(" %9d", o->ctx[c]);
        printf("\n");
        for (int a = 0; a < o->n_attn; a++) {
            if (a == ref_at)
                continue;
            printf("%-24s", o->attn[a]);
            for (int c = 0; c < o->n_ctx; c++) {
                const struct bench_row *r = &rows[(size_t)a * o->n_ctx + c];
                const struct bench_row *d = &rows[(size_t)ref_at * o->n_ctx + c];
                double x = pass ? r->core_train_ms : r->train_ms;
                double y = pass ? d->core_train_ms : d->train_ms;
                if (r->measured && d->measured && x >= 0 && y > 0)
                    printf(" %9.3f", x / y);
                else
                    printf(" %9s", "-");
            }
            printf("\n");
        }
    }
}

int bench_write_csv(const char *path, const struct bench_opts *o, const struct bench_result *res,
                    struct mx_error *err)
{
    struct bench_table t = {.o = o, .res = res};
    return mx_write_atomic(path, write_csv, &t, err);
}

int bench_write_json(const char *path, const struct bench_opts *o, const struct bench_result *res,
                     struct mx_error *err)
{
    struct bench_table t = {.o = o, .res = res};
    return mx_write_atomic(path, write_json, &t, err);
}
