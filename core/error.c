/* error.c — error values, always-on asserts (abort: a bug) and fatal resource failures (exit 1).
 * Not a logging framework: messages are built here and printed only by main(). */
#include "core/core.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int mx_errorf(struct mx_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int mx_error_wrap(struct mx_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char old[MX_ERR_MAX];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n + 2 < sizeof err->msg) {
        size_t room = sizeof err->msg - (size_t)n;
        strncpy(err->msg + n, ": ", room);
        strncpy(err->msg + n + 2, old, room - 2);
        err->msg[sizeof err->msg - 1] = 0;
    }
    return -1;
}

void mx_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "mixlm: internal error: assertion `%s` failed at %s:%d (a bug; please report it)\n",
            expr, file, line);
    abort();
}

void mx_fatal(const char *fmt, ...)
{
    fflush(stdout);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mixlm: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    _exit(1);
}
