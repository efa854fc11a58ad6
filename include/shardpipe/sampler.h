/* sampler.h - turn a row of logits into the next token id.
 *
 * Order of operations (as llama.cpp's default chain): repetition penalty on
 * the last `repeat_last_n` tokens, then greedy if temperature <= 0, else
 * top-k, top-p (nucleus), min-p, temperature, and a draw from the seeded
 * RNG. The same seed and logits give the same token on every platform. */
#ifndef SHARDPIPE_SAMPLER_H
#define SHARDPIPE_SAMPLER_H

#include <stdint.h>

#include "shardpipe/util.h"

typedef struct sp_sampler_params {
    float temperature;   /* <= 0: greedy */
    int top_k;           /* <= 0: off */
    float top_p;         /* >= 1: off */
    float min_p;         /* <= 0: off */
    float repeat_penalty;/* 1: off */
    int repeat_last_n;
    uint64_t seed;
} sp_sampler_params;

sp_sampler_params sp_sampler_defaults(void); /* greedy, penalties off, seed 42 */

typedef struct sp_sampler {
    sp_sampler_params p;
    sp_rng rng;
    int n_vocab;
    /* recent tokens for the repetition penalty (ring) */
    int *recent;
    int n_recent;
    int recent_pos;
    /* scratch */
    float *probs;
    int *idx;
} sp_sampler;

void sp_sampler_init(sp_sampler *s, const sp_sampler_params *p, int n_vocab);
void sp_sampler_free(sp_sampler *s);
/* Remember a token (prompt or generated) for the repetition penalty. */
void sp_sampler_accept(sp_sampler *s, int token);
/* logits may be modified (penalty applied in place). */
int sp_sampler_sample(sp_sampler *s, float *logits);
/* argmax, lowest index on ties. */
int sp_argmax(const float *x, int n);

#endif
