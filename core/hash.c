/* hash.c — FNV-1a 64 over words (core.h: mx_hash64). Not a cryptographic hash. */
#include "core/core.h"

#include <string.h>

uint64_t mx_hash64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
    }
    for (; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
