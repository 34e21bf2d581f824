/* mixer_internal.h — entry points for benchmarks and tests only, not for the model: running
 * the token-mixing core of an attention-family mixer without its projections. Code that trains
 * or generates includes attention/mixer.h alone. */
#ifndef MIXLM_MIXER_INTERNAL_H
#define MIXLM_MIXER_INTERNAL_H

#include "attention/mixer.h"

/* Benchmarks: run only the token-mixing core of an attention-family mixer (q,k,v -> o and its
 * backward, on the q,k,v its last forward left in `saved`), without the QKV/output projections
 * and head copies every attention mixer shares. dout: B*T*C floats. Returns 0 after running,
 * -1 when the mixer has no attention core (Fourier, FNet) or has extra
 * parameters the core needs (low-rank). Uses m->scratch. */
int mixer_core_forward(const struct mixer *m, float *saved, int B, int T);
int mixer_core_backward(const struct mixer *m, const float *saved, const float *dout, int B, int T);

#endif
