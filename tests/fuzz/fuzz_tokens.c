/* fuzz_tokens.c — the token-file reader (data/data.c): the input is written to a file in a
 * private temp directory and opened with data_open (magic, version, header size, id width against
 * the vocabulary, size against the count, every id < vocab); a file that opens is read through
 * data_get and data_window, as training does. */
#include "fuzz.h"

#include "core/core.h"
#include "data/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_path[512];

static void cleanup(void)
{
    if (g_path[0]) {
        unlink(g_path);
        char dir[512];
        snprintf(dir, sizeof dir, "%s", g_path);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = 0;
            rmdir(dir);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    if (!g_path[0]) {
        const char *tmp = getenv("TMPDIR");
        char dir[400];
        snprintf(dir, sizeof dir, "%s/mixlm_fuzz_XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
            abort();
        snprintf(g_path, sizeof g_path, "%s/tokens.bin", dir);
        atexit(cleanup);
    }
    FILE *f = fopen(g_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort();
    struct mx_tokfile t;
    struct mx_error err = {{0}};
    if (data_open(&t, g_path, &err) != 0) {
        data_close(&t);
        return 0;
    }
    for (size_t i = 0; i < t.count; i++) {
        int32_t id = data_get(&t, i);
        if (id < 0 || id >= t.vocab)
            abort();
    }
    if (t.count >= 2) {
        int T = t.count - 1 < 8 ? (int)(t.count - 1) : 8;
        int32_t x[8], y[8];
        size_t nw = data_num_windows(0, t.count, T);
        for (size_t w = 0; w < nw && w < 4; w++)
            data_window(&t, w * (size_t)T, T, x, y);
    }
    data_close(&t);
    return 0;
}
