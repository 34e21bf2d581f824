/* internal.h — what harness.c and output.c share inside bench/: the output of one row at a
 * time as the parent measures. Only bench/ includes it; other folders include bench/bench.h. */
#ifndef MIXLM_BENCH_INTERNAL_H
#define MIXLM_BENCH_INTERNAL_H

#include "attention/mixer.h"
#include "bench/bench.h"

#include <cjson/cJSON.h>

/* The CSV header line. */
void bench_csv_head(FILE *f);
/* One CSV record of r; sgemm <= 0 leaves that column empty. */
void bench_csv_row(FILE *f, const struct bench_opts *o, const struct bench_row *r, double sgemm);
/* The whole result as a JSON array text; free with cJSON_free. */
char *bench_json_table(const struct bench_opts *o, const struct bench_result *res);
/* Text format, on stdout: the header (settings, sgemm ceiling, load), one row, the ratios. */
void bench_text_header(const struct bench_opts *o, double sgemm, double fma_peak, const char *coretype);
void bench_text_row(const struct bench_opts *o, const struct bench_row *r);
void bench_text_ratios(const struct bench_opts *o, const struct bench_row *rows);

#endif
