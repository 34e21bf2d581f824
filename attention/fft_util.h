/* fft_util.h — small helpers the FFT mixers share (longconv.c, fnet.c): FFT sizes, 64-byte
 * alignment for FFTW's new-array execute functions, the plan-cache size and the FLOP count of
 * one real transform. Internal to attention/; not the FFTW planning itself (each mixer owns its
 * plans and caches). */
#ifndef MIXLM_ATTENTION_FFT_UTIL_H
#define MIXLM_ATTENTION_FFT_UTIL_H

#include "core/core.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Distinct sequence lengths whose FFTW plans (and fixed-filter spectra) a mixer keeps at once.
 * Training uses one T; evaluation and tests a few more. A ninth T evicts the least recently
 * used entry, so only that call pays planning (and its allocations) again. */
#define FFT_CACHE 8

/* Which sequence lengths a mixer's FFT cache holds (slot i holds T[i]; 0 = empty) and when each
 * was last used: the least recently used slot is the one a new T replaces. The entries
 * themselves (plans, spectra) live in the mixer's own array, index for index. */
struct fft_cache {
    int T[FFT_CACHE];
    unsigned long used[FFT_CACHE];
    unsigned long tick;
};

/* The slot for T, marked as used now. *hit = 1 when T was cached (the entry is ready);
 * otherwise 0 and the slot (empty, or the least recently used one, whose entry the caller
 * must release first) is now keyed to T for the caller to fill. */
static inline int fft_cache_slot(struct fft_cache *c, int T, int *hit)
{
    int victim = 0;
    c->tick++;
    for (int i = 0; i < FFT_CACHE; i++) {
        if (c->T[i] == T) {
            c->used[i] = c->tick;
            *hit = 1;
            return i;
        }
        if (c->used[i] < c->used[victim])
            victim = i;
    }
    c->T[victim] = T;
    c->used[victim] = c->tick;
    *hit = 0;
    return victim;
}

/* Smallest n >= m of the form 2^a 3^b 5^c: FFTW is fastest on such sizes, and the nearest one
 * above 2T-1 wastes far less than the next power of two (e.g. T=20 -> 40, not 64). */
static inline int fft_fast_size(int m)
{
    for (int n = m > 1 ? m : 1;; n++) {
        int r = n;
        while (r % 2 == 0)
            r /= 2;
        while (r % 3 == 0)
            r /= 3;
        while (r % 5 == 0)
            r /= 5;
        if (r == 1)
            return n;
    }
}

/* Round a float count up to 16 floats (64 bytes): every FFT buffer then has the alignment the
 * plans were made for, which FFTW's new-array execute functions require. */
static inline size_t fft_round16(size_t n)
{
    return mx_round_up(n, 16);
}

static inline float *fft_align64(float *p)
{
    return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

/* FLOPs of one real FFT of length N: the usual 2.5 N log2 N (a complex one: 5 N log2 N). */
static inline double fft_rfft_flops(double N)
{
    return 2.5 * N * log2(N);
}

#endif
