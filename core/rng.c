/* rng.c — xoshiro256** with splitmix64 seeding; Box-Muller normals.
 * Deterministic and platform independent; not cryptographic. */
#include "core/core.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void mx_rng_seed(struct mx_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

void mx_rng_seed3(struct mx_rng *r, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t x = a;
    uint64_t h = splitmix64(&x) ^ (b * 0xD1B54A32D192ED03ull);
    x = h;
    h = splitmix64(&x) ^ (c * 0x8CB92BA72F3D8DD7ull);
    mx_rng_seed(r, h);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t mx_rng_u64(struct mx_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint32_t mx_rng_below(struct mx_rng *r, uint32_t n)
{
    MX_ASSERT(n > 0);
    /* Lemire's multiply-shift with rejection: unbiased. */
    uint64_t m = (uint64_t)(uint32_t)(mx_rng_u64(r) >> 32) * n;
    uint32_t l = (uint32_t)m;
    if (l < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (l < t) {
            m = (uint64_t)(uint32_t)(mx_rng_u64(r) >> 32) * n;
            l = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float mx_rng_uniform(struct mx_rng *r)
{
    return (float)(mx_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

double mx_rng_uniform_d(struct mx_rng *r)
{
    return (double)(mx_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

float mx_rng_normal(struct mx_rng *r)
{
    double u1 = mx_rng_uniform_d(r), u2 = mx_rng_uniform_d(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

void mx_rng_fill_normal(struct mx_rng *r, float *x, size_t n, float std)
{
    for (size_t i = 0; i < n; i++)
        x[i] = std * mx_rng_normal(r);
}
