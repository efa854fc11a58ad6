/* rowops.c - RMSNorm, RoPE and bias addition on single rows (see rowops.h).
 * These are a small share of the forward pass's time (the matrices are the
 * rest), so they are plain scalar C, the same bits on every machine. */
#include "shardpipe/rowops.h"

#include <math.h>

void sp_rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

void sp_rmsnorm_heads(float *v, int n_heads, int head_dim, const float *w, float eps)
{
    for (int h = 0; h < n_heads; h++) sp_rmsnorm(v + (size_t)h * head_dim, v + (size_t)h * head_dim, w, head_dim, eps);
}

void sp_rope_angles(float *cs, int rope_dim, float base, const float *factors, int pos)
{
    for (int i = 0; i < rope_dim / 2; i++) {
        double theta = pos * pow((double)base, -2.0 * i / rope_dim);
        if (factors) theta /= factors[i];
        cs[2 * i] = (float)cos(theta);
        cs[2 * i + 1] = (float)sin(theta);
    }
}

void sp_rope(float *v, int n_heads, int head_dim, int rope_dim, sp_rope_style style, const float *cs)
{
    int half = rope_dim / 2;
    /* distance between the two members of a pair, and from one pair to the next */
    int other = style == SP_ROPE_NEOX ? half : 1, step = style == SP_ROPE_NEOX ? 1 : 2;
    for (int i = 0; i < half; i++) {
        float c = cs[2 * i], s = cs[2 * i + 1];
        for (int h = 0; h < n_heads; h++) {
            float *p = v + (size_t)h * head_dim + (size_t)i * step;
            float a = p[0], b = p[other];
            p[0] = a * c - b * s;
            p[other] = a * s + b * c;
        }
    }
}

void sp_add_bias(float *v, const float *b, int n)
{
    for (int i = 0; i < n; i++) v[i] += b[i];
}
