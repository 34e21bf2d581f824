/* retnet.h — internal to attention/: the chunkwise retention engine of the `retnet` mixer
 * (Sun et al. 2023), per (b,h) o_t = Σ_{s≤t} γ_h^(t−s) (scale·q_t·k_s) v_s, exported for tests.
 * Not the mixer: no projections, no GroupNorm, no gate, no parameters. Tests may include it. */
#ifndef MIXLM_RETNET_H
#define MIXLM_RETNET_H

#include <stddef.h>

/* Floats of workspace retn_forward/retn_backward need at (B,H,T,D) with chunks of c rows:
 * per (b,h) the chunk buffers plus the state before every chunk (ceil(T/c) x D x D). */
size_t retn_work_floats(int B, int H, int T, int D, int c);

/* o (B,H,T,D) overwritten; work (retn_work_floats) scratch; q, k, v (B,H,T,D); gamma (H) the
 * per-head decay in [0, 1); scale multiplies every q·k; c >= 1 rows per chunk (any c gives
 * the same math, round-off aside). */
void retn_forward(float *o, float *work, const float *q, const float *k, const float *v, const double *gamma,
                  float scale, int B, int H, int T, int D, int c);

/* dq, dk, dv (B,H,T,D) OVERWRITTEN (an engine's own outputs, like the attention cores);
 * work scratch; dout (B,H,T,D); the rest as given to retn_forward. Recomputes the chunk
 * states; nothing is saved between forward and backward. */
void retn_backward(float *dq, float *dk, float *dv, float *work, const float *dout, const float *q,
                   const float *k, const float *v, const double *gamma, float scale, int B, int H, int T,
                   int D, int c);

#endif
