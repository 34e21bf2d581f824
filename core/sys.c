/* sys.c — time, threads, memory readings and the progress line.
 * The progress line rewrites itself on a terminal and prints plain lines into logs. */
#include "core/core.h"

#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

int mx_hostcpu_parse(const char *line, struct mx_hostcpu *s)
{
    memset(s, 0, sizeof *s);
    if (strncmp(line, "cpu ", 4) != 0)
        return -1;
    const char *p = line + 4;
    double f[8] = {0};
    int n = 0;
    for (; n < 8; n++) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0)
            break;
        f[n] = v;
        p = end;
    }
    if (n < 4) /* user nice system idle at least */
        return -1;
    /* user nice system idle iowait irq softirq steal (guest time is inside user already) */
    s->total = f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
    s->busy = f[0] + f[1] + f[2] + f[5] + f[6];
    s->steal = f[7];
    s->ok = 1;
    return 0;
}

void mx_hostcpu_read(struct mx_hostcpu *s)
{
    char line[512];
    FILE *f = fopen("/proc/stat", "r");
    int got = f && fgets(line, sizeof line, f) != NULL;
    if (f)
        fclose(f);
    if (!got || mx_hostcpu_parse(line, s) != 0) {
        memset(s, 0, sizeof *s);
        return;
    }
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    double secs = 0;
    const struct timeval *tv[4] = {&self.ru_utime, &self.ru_stime, &kids.ru_utime, &kids.ru_stime};
    for (int i = 0; i < 4; i++)
        secs += (double)tv[i]->tv_sec + 1e-6 * (double)tv[i]->tv_usec;
    long hz = sysconf(_SC_CLK_TCK);
    s->self = secs * (double)(hz > 0 ? hz : 100);
}

void mx_hostcpu_share(const struct mx_hostcpu *a, const struct mx_hostcpu *b, double *steal_pct,
                      double *other_pct)
{
    double dt = b->total - a->total;
    *steal_pct = *other_pct = -1;
    if (!a->ok || !b->ok || dt < 2)
        return;
    double st = 100 * (b->steal - a->steal) / dt, ot = 100 * ((b->busy - a->busy) - (b->self - a->self)) / dt;
    *steal_pct = st < 0 ? 0 : st > 100 ? 100 : st;
    *other_pct = ot < 0 ? 0 : ot > 100 ? 100 : ot;
}

const char *mx_hostcpu_text(char *buf, size_t n, double steal_pct, double other_pct)
{
    snprintf(buf, n, "%.1f%% of the CPU time stolen by the hypervisor, %.1f%% used by other processes", steal_pct,
             other_pct);
    return buf;
}

void mx_progress_init(struct mx_progress *p, FILE *out, long total, long every)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = isatty(fileno(out));
    p->total = total;
    p->every = every > 0 ? every : 1;
    p->t_start = mx_now();
    mx_hostcpu_read(&p->host);
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
    if (step % p->every == 0 || last) { /* the host's share over the window since the last one */
        struct mx_hostcpu now;
        double st, ot;
        mx_hostcpu_read(&now);
        mx_hostcpu_share(&p->host, &now, &st, &ot);
        if (st >= 0) {
            p->host_note[0] = 0;
            if (st >= MX_HOST_NOTE_PCT || ot >= MX_HOST_NOTE_PCT)
                snprintf(p->host_note, sizeof p->host_note, " | host: steal %.0f%%, others %.0f%%", st, ot);
            p->host = now;
        }
    }
    char eta[32];
    fmt_eta(eta, sizeof eta, (p->total - step) * ms_per_step / 1000.0);
    fprintf(p->out, "%sstep %ld/%ld | loss %.4f | lr %.2e | %.1f ms/step | %.0f tok/s | ETA %s%s%s",
            p->tty ? "\r\033[K" : "", step, p->total, loss, lr, ms_per_step, tokens_per_s, eta, p->host_note,
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
