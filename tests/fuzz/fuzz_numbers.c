/* fuzz_numbers.c — the command-line number parsers: mx_parse_int (with its k suffix),
 * mx_parse_float, and cli/args.c's args_parse over a flag table of every value type (ARG_INTS
 * reaches the k/m-suffixed list parser). Input: the first byte picks the target; the rest is the
 * text (for args_parse, NUL- or newline-separated argv words). Checks that a value accepted is in
 * range, besides what ASan/UBSan catch. */
#include "fuzz.h"

#include "cli/args.h"
#include "core/core.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX)
        return 0;
    char s[FUZZ_MAX + 1];
    memcpy(s, data + 1, size - 1);
    s[size - 1] = 0;
    struct mx_error err = {{0}};
    switch (data[0] % 4) {
    case 0: {
        static const long ranges[][2] = {{0, 100}, {1, 1L << 40}, {-1000, 1000}, {LONG_MIN, LONG_MAX}};
        const long *r = ranges[(data[0] / 4) % 4];
        long v = 0;
        if (mx_parse_int(s, r[0], r[1], "--n", &v, &err) == 0 && (v < r[0] || v > r[1]))
            abort();
        break;
    }
    case 1: {
        double v = 0;
        if (mx_parse_float(s, -1e9, 1e9, "--x", &v, &err) == 0 && !(v >= -1e9 && v <= 1e9))
            abort();
        break;
    }
    default: {
        /* argv: "cmd" then the words of s. */
        char *argv[64];
        int argc = 0;
        argv[argc++] = "fuzz";
        char *p = s, *end = s + (size - 1);
        while (p < end && argc < 63) {
            argv[argc++] = p;
            char *q = p;
            while (q < end && *q && *q != '\n')
                q++;
            *q = 0;
            p = q + 1;
        }
        argv[argc] = NULL;
        long steps = 0;
        double lr = 0;
        char name[16] = "";
        int flag = 0;
        struct arg_list list = {0};
        struct arg_ints ints = {0};
        struct arg a[] = {
            {"--steps", ARG_INT, &steps, 0, 1, 1e6, "steps", 0},
            {"--lr", ARG_FLOAT, &lr, 0, 0, 10, "learning rate", 0},
            {"--name", ARG_STR, name, sizeof name, 0, 0, "a name", 0},
            {"--flag", ARG_FLAG, &flag, 0, 0, 0, "a flag", 0},
            {"--attn-layer", ARG_LIST, &list, 0, 0, 0, "a list", 0},
            {"--context", ARG_INTS, &ints, 0, 1, 1L << 30, "contexts", 0},
        };
        const char *pos[2];
        int n_pos = 0;
        if (args_parse(argc, argv, a, (int)(sizeof a / sizeof a[0]), pos, 2, &n_pos, "usage: fuzz", &err) == 0) {
            if (steps < 0 || steps > 1000000 || lr < 0 || lr > 10 || strlen(name) >= sizeof name || n_pos > 2 ||
                list.n > ARG_LIST_MAX || ints.n > ARG_INTS_MAX)
                abort();
            for (int i = 0; i < ints.n; i++)
                if (ints.v[i] < 1 || ints.v[i] > (1L << 30))
                    abort();
        }
        break;
    }
    }
    return 0;
}
