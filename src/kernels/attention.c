/* attention.c - one KV group's attention for one query row, from the fp16
 * KV cache (sp_attn_group_f16, quant.h): the engine's attention
 * (model/forward.c) runs it per (row, KV head) pair, and `shardpipe
 * profile` times it (planner/measure.c), so the planner's attention cost is
 * this code's speed.
 *
 * The nq query heads of the group share their K and V rows, so the scores
 * and the weighted values of all of them are computed together, each cache
 * row read once (sp_attn_scores_f16 / sp_attn_values_f16); every head
 * still sums its scores, softmax and weighted values in position order, as
 * if it ran alone. Queries and softmax weights are rounded to fp16 like the
 * cache they meet. */
#include <string.h>

#include "shardpipe/quant.h"

void sp_attn_group_f16(int hd, int n, const uint16_t *k, const uint16_t *v, int64_t kv_stride, const float *q, int nq,
                       float scale, float *scratch, int64_t s_stride, float *out)
{
    float *scores = scratch;                     /* nq x s_stride */
    float *qh = scratch + (size_t)nq * s_stride; /* nq x hd: the queries rounded to fp16 */
    memcpy(qh, q, (size_t)nq * hd * sizeof(float));
    sp_round_f16(qh, (int64_t)nq * hd);
    /* scores over positions 0..n-1, then a softmax, per head */
    sp_attn_scores_f16(hd, n, k, kv_stride, qh, nq, scale, scores, s_stride);
    for (int g = 0; g < nq; g++) {
        float *sc = scores + g * s_stride;
        sp_softmax_f32(sc, n);
        sp_round_f16(sc, n); /* the weights, rounded to fp16 like the cache they weigh */
    }
    memset(out, 0, (size_t)nq * hd * sizeof(float));
    sp_attn_values_f16(hd, n, v, kv_stride, scores, nq, s_stride, out);
}
