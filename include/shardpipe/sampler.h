/* sampler.h - turn a row of logits into the next token id.
 *
 * Order of operations (llama.cpp's default chain):
 *   1. repetition penalty on the distinct tokens among the last
 *      `repeat_last_n` accepted ones: logit > 0 ? logit / penalty
 *      : logit * penalty (applied in place to the caller's logits);
 *   2. temperature <= 0: greedy, the argmax (lowest id on ties); stop here;
 *   3. top-k: keep the k highest logits (k <= 0: off);
 *   4. top-p: on the softmax of the survivors at temperature 1, keep the
 *      smallest most-probable prefix whose probability reaches p (>= 1: off);
 *   5. min-p: keep tokens with probability >= min_p * the highest one;
 *   6. temperature: softmax(logit / temperature) over what is left, then one
 *      draw with a uniform number that depends only on the seed and the
 *      position of the token drawn (counter-based, sp_sampler_u01), so a
 *      sequence regenerated from its middle continues with the same tokens.
 * So temperature reshapes the final draw but not which tokens survive the
 * filters. The same seed and logits give the same token sequence (across
 * platforms too, as long as their expf rounds alike).
 * sp_sampler_sample does not remember the token it returns: call
 * sp_sampler_accept with it (and with the prompt tokens). */
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
/* The token for position `pos` of the sequence (its index counting the
 * prompt from 0); logits may be modified (penalty applied in place). */
int sp_sampler_sample(sp_sampler *s, float *logits, int pos);
/* The uniform number in [0, 1) the draw at `pos` uses under `seed`. */
float sp_sampler_u01(uint64_t seed, int pos);
/* argmax, lowest index on ties. */
int sp_argmax(const float *x, int n);

#endif
