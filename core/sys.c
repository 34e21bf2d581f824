/* sys.c — time, threads, memory readings and the progress line.
 * The progress line rewrites itself on a terminal and prints plain lines into logs. */
#include "core/core.h"

#include <omp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

double mx_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void mx_set_threads(int n)
{
    /* OpenBLAS's openmp build reads omp's thread count, so one call sets both. */
    if (n > 0)
        omp_set_num_threads(n);
}

int mx_get_threads(void)
{
    return omp_get_max_threads();
}

double mx_peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

double mx_rss_mb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    long pages = 0, rss = 0;
    int n = fscanf(f, "%ld %ld", &pages, &rss);
    fclose(f);
    if (n != 2)
        return 0;
    return rss * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

void mx_progress_init(struct mx_progress *p, FILE *out, long total, long every)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = isatty(fileno(out));
    p->total = total;
    p->every = every > 0 ? every : 1;
    p->t_start = mx_now();
}

static void fmt_eta(char *buf, size_t n, double s)
{
    if (s < 0 || s > 1e8)
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, n, "%.0fs", s);
}

void mx_progress_update(struct mx_progress *p, long step, double loss, double lr,
                        double ms_per_step, double tokens_per_s)
{
    int last = step >= p->total;
    if (!p->tty && step % p->every != 0 && !last)
        return;
    char eta[32];
    fmt_eta(eta, sizeof eta, (p->total - step) * ms_per_step / 1000.0);
    fprintf(p->out, "%sstep %ld/%ld | loss %.4f | lr %.2e | %.1f ms/step | %.0f tok/s | ETA %s%s",
            p->tty ? "\r\033[K" : "", step, p->total, loss, lr, ms_per_step, tokens_per_s, eta,
            p->tty ? "" : "\n");
    p->dirty = p->tty;
    fflush(p->out);
}

void mx_progress_print(struct mx_progress *p, const char *fmt, ...)
{
    if (p->dirty)
        fputs("\r\033[K", p->out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->out, fmt, ap);
    va_end(ap);
    fputc('\n', p->out);
    p->dirty = 0;
    fflush(p->out);
}

void mx_progress_end(struct mx_progress *p)
{
    if (p->dirty)
        fputc('\n', p->out);
    p->dirty = 0;
    fflush(p->out);
}
