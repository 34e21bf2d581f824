/* fuzz.h — shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c) and the replay driver
 * (tests/fuzz/replay.c): each harness defines LLVMFuzzerTestOneInput; built with
 * -DMIXLM_FUZZ=ON and clang it links libFuzzer's main, otherwise replay.c's, which runs every
 * corpus file once (the CTest entries fuzz.replay_<harness>). */
#ifndef MIXLM_FUZZ_H
#define MIXLM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* For harnesses whose reader takes a path: the input written to `name` in a private temp
 * directory (made under $TMPDIR on the first call, removed at exit); returns the path. */
static inline char *fuzz_path_(void)
{
    static char path[512];
    return path;
}

static inline void fuzz_input_cleanup_(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", fuzz_path_());
    unlink(fuzz_path_());
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        rmdir(dir);
    }
}

static inline const char *fuzz_input_file(const char *name, const uint8_t *data, size_t size)
{
    char *path = fuzz_path_();
    if (!path[0]) {
        const char *tmp = getenv("TMPDIR");
        char dir[400];
        snprintf(dir, sizeof dir, "%s/mixlm_fuzz_XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
            abort();
        snprintf(path, 512, "%s/%s", dir, name);
        atexit(fuzz_input_cleanup_);
    }
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort();
    return path;
}

#endif
