/* rowops.h - the per-row operations of the forward pass that are not matrix
 * products: RMSNorm (of a whole row, or of each head), RoPE in its two pair
 * layouts with optional per-pair frequency factors, and bias addition.
 * Public so the tests can check each against hand-computed values. */
#ifndef SHARDPIPE_ROWOPS_H
#define SHARDPIPE_ROWOPS_H

#include "shardpipe/model.h"

/* out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]; the mean is summed in
 * double (as llama.cpp does); out may be x. */
void sp_rmsnorm(float *out, const float *x, const float *w, int n, float eps);

/* RMSNorm of each of n_heads heads of v (head_dim values each) in place,
 * every head with the same weight w[head_dim] (Qwen3's q/k norm). */
void sp_rmsnorm_heads(float *v, int n_heads, int head_dim, const float *w, float eps);

/* cs[2i], cs[2i+1] = cos, sin of pair i's angle at pos, for i < rope_dim/2:
 *   theta_i = pos * base^(-2i/rope_dim) / factor[i]
 * factor = rope_freqs.weight (Llama 3.1+), or NULL for 1. The angles depend
 * only on the position, so they are computed once per row for all layers. */
void sp_rope_angles(float *cs, int rope_dim, float base, const float *factors, int pos);

/* Rotates the first rope_dim values of each of n_heads heads of v by the
 * angles cs: pair i is (v[2i], v[2i+1]) for SP_ROPE_NORM and
 * (v[i], v[i + rope_dim/2]) for SP_ROPE_NEOX; (a, b) -> (a cos - b sin,
 * a sin + b cos). */
void sp_rope(float *v, int n_heads, int head_dim, int rope_dim, sp_rope_style style, const float *cs);

/* v[i] += b[i] */
void sp_add_bias(float *v, const float *b, int n);

#endif
