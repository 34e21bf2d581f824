/* check.h — the one test harness every C test uses: CHECK() records a failure and carries on,
 * check_skip() says why a test cannot run (exit 77), and check_main() runs named cases.
 * Every test executable takes case names on its command line: none runs every case, `--list`
 * prints the names, an unknown name exits 2. A case passes when it returns 0 and no CHECK
 * failed while it ran. Not an assertion library: the checks themselves stay in the tests. */
#ifndef MIXLM_TEST_CHECK_H
#define MIXLM_TEST_CHECK_H

#include <stddef.h>
#include <stdio.h>

/* Failures recorded so far in this process (CHECK, check_fail, failing cases). */
extern int check_failures;

/* On false cond: print file, line, the expression and a printf-style message; count a failure. */
#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                  \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fputc('\n', stderr);                                                                             \
            check_failures++;                                                                                \
        }                                                                                                    \
    } while (0)

#define CHECK_SKIP 77

/* Print "skip: <message>" and return CHECK_SKIP: `return check_skip("no GPU");` from a case,
 * a setup or main. */
int check_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A named case: returns 0 (its CHECKs decide), nonzero for a failure, or CHECK_SKIP. */
struct check_case {
    const char *name;
    int (*run)(void);
};

/* Optional setup and teardown around the selected cases (not run for --list or a usage
 * error). setup returns 0, CHECK_SKIP (every case skipped) or nonzero (the test fails). */
struct check_fixture {
    int (*setup)(void);
    void (*teardown)(void);
};

/* Run the cases named in argv (all when none), each reported as "ok", "FAIL" or "skip"; the
 * exit status: 0 all ran cases passed, 1 a failure, 77 every selected case skipped, 2 usage
 * error (unknown case name). fx may be NULL. */
int check_main(int argc, char **argv, const struct check_case *cases, size_t n_cases,
               const struct check_fixture *fx);

/* The name of the case running now (for cases that share one function, e.g. one per mixer). */
const char *check_case_name(void);

/* The SIMD level named by the running case's suffix after its first '.' ("core_vs_ref.avx2"):
 * its enum mx_isa (nn/isa.h) as an int, or -1 when the suffix names no level. For cases run
 * once per level; whether this build and CPU have it is the table's _at() to say. */
int check_case_level(void);

#define CHECK_N(a) (sizeof(a) / sizeof((a)[0]))

#endif
