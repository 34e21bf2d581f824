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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    const char *g_path = fuzz_input_file("tokens.bin", data, size);
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
