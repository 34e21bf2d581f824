/* check.c — the case runner behind check.h: selects cases by name from the command line,
 * runs them in table order, prints one line per case and a summary, returns the exit status.
 * Not a fork-per-case runner: a crash ends the whole executable (CTest reports it). */
#include "check.h"
#include "nn/isa.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int check_failures;
static const char *current_case = "";

int check_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("skip: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    return CHECK_SKIP;
}

const char *check_case_name(void)
{
    return current_case;
}

int check_case_level(void)
{
    const char *dot = current_case ? strchr(current_case, '.') : NULL;
    for (int l = 0; dot && l < MX_ISA_COUNT; l++)
        if (strcmp(dot + 1, mx_isa_level_name((enum mx_isa)l)) == 0)
            return l;
    return -1;
}

static long find_case(const struct check_case *cases, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cases[i].name, name) == 0)
            return (long)i;
    return -1;
}

int check_main(int argc, char **argv, const struct check_case *cases, size_t n_cases,
               const struct check_fixture *fx)
{
    const char *prog = argc > 0 ? argv[0] : "test";
    const char *slash = strrchr(prog, '/');
    prog = slash ? slash + 1 : prog;
    unsigned char *selected = calloc(n_cases + 1, 1);
    if (!selected) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return 1;
    }
    int any = 0;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--list") == 0) {
            for (size_t i = 0; i < n_cases; i++)
                printf("%s\n", cases[i].name);
            free(selected);
            return 0;
        }
        long i = find_case(cases, n_cases, argv[a]);
        if (i < 0) {
            fprintf(stderr, "%s: unknown case '%s' (run with --list for the %zu case names)\n", prog, argv[a],
                    n_cases);
            free(selected);
            return 2;
        }
        selected[i] = 1;
        any = 1;
    }
    if (!any)
        memset(selected, 1, n_cases);

    if (fx && fx->setup) {
        int rc = fx->setup();
        if (rc != 0) {
            free(selected);
            if (rc == CHECK_SKIP)
                return CHECK_SKIP;
            fprintf(stderr, "FAIL %s: setup\n", prog);
            return 1;
        }
    }
    int ran = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < n_cases; i++) {
        if (!selected[i])
            continue;
        current_case = cases[i].name;
        int before = check_failures;
        int rc = cases[i].run();
        current_case = "";
        if (rc == CHECK_SKIP && check_failures == before) {
            fprintf(stderr, "skip %s\n", cases[i].name);
            skipped++;
            continue;
        }
        int bad = rc != 0 || check_failures != before;
        if (bad && check_failures == before)
            check_failures++;
        fprintf(stderr, "%s %s\n", bad ? "FAIL" : "ok  ", cases[i].name);
        failed += bad;
        ran++;
    }
    if (fx && fx->teardown)
        fx->teardown();
    free(selected);
    fprintf(stderr, "%s: %d case(s) passed, %d failed, %d skipped\n", prog, ran - failed, failed, skipped);
    if (failed)
        return 1;
    return ran == 0 && skipped > 0 ? CHECK_SKIP : 0;
}
