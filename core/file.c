/* file.c — whole-file reads, atomic writes (temp, fsync, rename, fsync dir), mkdir -p and
 * strict number parsing. Not a path library. */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *mx_read_file(const char *path, size_t *len, struct mx_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        mx_errorf(err, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        mx_errorf(err, "'%s' is not a regular file", path);
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char what[600];
    snprintf(what, sizeof what, "the contents of '%.560s'", path);
    char *buf = mx_try_calloc(n + 1, what, err);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    if (n && fread(buf, 1, n, f) != n) {
        mx_errorf(err, "cannot read '%s': %s", path, ferror(f) ? strerror(errno) : "short read");
        fclose(f);
        mx_free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

static void write_error(struct mx_error *err, const char *tmp, const char *path, int e)
{
    mx_errorf(err, "cannot write '%s': %s; free space on that file system (or write to another directory) and "
                   "run again; '%s' was left as it was",
              tmp, e ? strerror(e) : "write error", path);
}

int mx_write_atomic(const char *path, int (*writer)(FILE *f, void *ctx, struct mx_error *err),
                    void *ctx, struct mx_error *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return mx_errorf(err, "path too long: '%s'", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return mx_errorf(err, "cannot create '%s': %s (is the directory writable?)", tmp, strerror(errno));
    /* A failed stdio write (disk full, quota, I/O error) is reported here, with the file and
     * errno's text, whatever the writer said: only this function knows the temporary's name. */
    errno = 0;
    if (writer(f, ctx, err) != 0) {
        int e = errno;
        if (ferror(f))
            write_error(err, tmp, path, e);
        goto out_fail;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        write_error(err, tmp, path, errno);
        goto out_fail;
    }
    if (fclose(f) != 0) {
        f = NULL;
        write_error(err, tmp, path, errno);
        goto out_fail;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        mx_errorf(err, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto out_fail;
    }
    /* fsync the directory so the rename itself survives a crash. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
out_fail:
    if (f)
        fclose(f);
    unlink(tmp);
    return -1;
}

int mx_mkdir_p(const char *path, struct mx_error *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return mx_errorf(err, "path too long: '%s'", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return mx_errorf(err, "cannot create directory '%s': %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return mx_errorf(err, "cannot create directory '%s': %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return mx_errorf(err, "'%s' exists and is not a directory", buf);
    return 0;
}

int mx_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int mx_parse_int(const char *s, long lo, long hi, const char *what, long *out, struct mx_error *err)
{
    if (!s || !*s)
        return mx_errorf(err, "%s: expected an integer in [%ld, %ld], got an empty value", what, lo, hi);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s)
        return mx_errorf(err, "%s: '%s' is not an integer (expected a value in [%ld, %ld])", what, s, lo, hi);
    if (errno == ERANGE || (*end == 'k' && end[1] == 0 && (v > LONG_MAX / 1024 || v < LONG_MIN / 1024)))
        return mx_errorf(err, "%s: '%s' is out of range; allowed [%ld, %ld]", what, s, lo, hi);
    if (*end == 'k' && end[1] == 0) { /* 64k; the range was checked above, so no overflow */
        v *= 1024;
        end++;
    }
    if (errno || *end)
        return mx_errorf(err, "%s: '%s' is not an integer (expected a value in [%ld, %ld])", what, s, lo, hi);
    if (v < lo || v > hi)
        return mx_errorf(err, "%s: %ld is out of range; allowed [%ld, %ld]", what, v, lo, hi);
    *out = v;
    return 0;
}

int mx_parse_float(const char *s, double lo, double hi, const char *what, double *out, struct mx_error *err)
{
    if (!s || !*s)
        return mx_errorf(err, "%s: expected a number in [%g, %g], got an empty value", what, lo, hi);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return mx_errorf(err, "%s: '%s' is not a number (expected a value in [%g, %g])", what, s, lo, hi);
    if (v < lo || v > hi)
        return mx_errorf(err, "%s: %g is out of range; allowed [%g, %g]", what, v, lo, hi);
    *out = v;
    return 0;
}

void mx_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}
