/* test_hostcpu.c — the host's CPU accounting that every time figure is printed beside
 * (core/sys.c): parsing /proc/stat's "cpu " line, the steal and other-process shares between
 * two readings, and live readings that move with this process's own work. */
#include "check.h"
#include "core/core.h"

#include <math.h>
#include <string.h>

static int near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

static int case_parse(void)
{
    struct mx_hostcpu s;
    /* user nice system idle iowait irq softirq steal guest guest_nice */
    CHECK(mx_hostcpu_parse("cpu  100 5 20 800 10 3 2 60 7 0\n", &s) == 0 && s.ok, "a full line");
    CHECK(near(s.total, 1000) && near(s.busy, 130) && near(s.steal, 60), "total %g busy %g steal %g", s.total,
          s.busy, s.steal);
    /* A kernel before steal accounting: four fields, steal 0. */
    CHECK(mx_hostcpu_parse("cpu 1 2 3 4", &s) == 0 && near(s.total, 10) && near(s.busy, 6) && near(s.steal, 0),
          "four fields: total %g busy %g steal %g", s.total, s.busy, s.steal);
    const char *bad[] = {"cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "intr 1 2 3 4", "", "cpu -1 2 3 4 5", "cpu x y z w"};
    for (size_t i = 0; i < CHECK_N(bad); i++) {
        CHECK(mx_hostcpu_parse(bad[i], &s) == -1 && !s.ok, "'%s' accepted", bad[i]);
    }
    return 0;
}

static int case_share(void)
{
    struct mx_hostcpu a = {.ok = 1, .total = 1000, .busy = 300, .steal = 10, .self = 100};
    struct mx_hostcpu b = {.ok = 1, .total = 1200, .busy = 440, .steal = 50, .self = 200};
    double st, ot;
    /* 200 ticks: 40 stolen (20%); 140 busy of which 100 ours, 40 others' (20%). */
    mx_hostcpu_share(&a, &b, &st, &ot);
    CHECK(near(st, 20) && near(ot, 20), "steal %g others %g", st, ot);
    /* Our own time counted more finely than the ticks: never below 0. */
    b.self = 400;
    mx_hostcpu_share(&a, &b, &st, &ot);
    CHECK(near(ot, 0), "others %g", ot);
    /* Under 2 ticks, or a failed reading: unknown. */
    b.total = 1001;
    mx_hostcpu_share(&a, &b, &st, &ot);
    CHECK(st == -1 && ot == -1, "1 tick: steal %g others %g", st, ot);
    b.total = 1200, b.ok = 0;
    mx_hostcpu_share(&a, &b, &st, &ot);
    CHECK(st == -1 && ot == -1, "failed reading: steal %g others %g", st, ot);
    return 0;
}

static int case_live(void)
{
    struct mx_hostcpu a, b;
    mx_hostcpu_read(&a);
    if (!a.ok)
        return check_skip("no /proc/stat here");
    /* Work for ~0.3 s of CPU: the machine's busy ticks and our own move together. */
    double t0 = mx_now(), x = 0;
    while (mx_now() - t0 < 0.3)
        for (int i = 0; i < 100000; i++)
            x += sqrt((double)i + x * 1e-12);
    mx_hostcpu_read(&b);
    CHECK(x > 0, "work");
    CHECK(b.total > a.total && b.busy > a.busy && b.self > a.self, "total %g->%g busy %g->%g self %g->%g",
          a.total, b.total, a.busy, b.busy, a.self, b.self);
    double st, ot;
    mx_hostcpu_share(&a, &b, &st, &ot);
    CHECK(st >= 0 && st <= 100 && ot >= 0 && ot <= 100, "steal %g others %g", st, ot);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct check_case cases[] = {
        {"parse", case_parse},
        {"share", case_share},
        {"live", case_live},
    };
    return check_main(argc, argv, cases, CHECK_N(cases), NULL);
}
