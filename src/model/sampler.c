/* sampler.c - next-token choice from logits: repetition penalty, greedy,
 * top-k, top-p, min-p, temperature and a seeded draw (order and formulas in
 * include/shardpipe/sampler.h).
 *
 * The candidate set is a list of token ids in s->idx. Everything that needs
 * an order - top-k selection and the descending sort for top-p - uses one
 * binary heap keyed on (logit, then lower id first), so ties are broken the
 * same way everywhere and results never depend on a library sort. With
 * top-k set only k ids are ever sorted; with only top-p set, ids that cannot
 * be inside the nucleus are dropped before sorting (see top_p).
 *
 * The one uniform number a draw needs is a pure function of the seed and
 * the position of the token being drawn (sp_sampler_u01), not the next number of
 * a stream: a sequence restarted from its middle - a server resuming a
 * request on a new pipeline after a board died, prefilling the prompt plus
 * the tokens already produced - draws exactly what it would have drawn. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/sampler.h"

#include "shardpipe/quant.h" /* sp_exp_f32: the same bits on every board */

sp_sampler_params sp_sampler_defaults(void)
{
    /* temperature 0 means greedy; the other values are llama.cpp's defaults
     * and take effect once a temperature is set. */
    return (sp_sampler_params){
        .temperature = 0.0f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .seed = 42,
    };
}

void sp_sampler_init(sp_sampler *s, const sp_sampler_params *p, int n_vocab)
{
    memset(s, 0, sizeof *s);
    s->p = *p;
    if (s->p.repeat_last_n < 0) s->p.repeat_last_n = 0;
    s->n_vocab = n_vocab;
    if (s->p.repeat_last_n > 0) s->recent = sp_alloc((size_t)s->p.repeat_last_n * sizeof(int));
    s->probs = sp_alloc((size_t)n_vocab * sizeof(float));
    s->idx = sp_alloc((size_t)n_vocab * sizeof(int));
}

void sp_sampler_free(sp_sampler *s)
{
    free(s->recent);
    free(s->probs);
    free(s->idx);
    memset(s, 0, sizeof *s);
}

void sp_sampler_accept(sp_sampler *s, int token)
{
    int cap = s->p.repeat_last_n;
    if (cap <= 0) return;
    s->recent[s->recent_pos] = token;
    s->recent_pos = (s->recent_pos + 1) % cap;
    if (s->n_recent < cap) s->n_recent++;
}

int sp_argmax(const float *x, int n)
{
    if (n <= 0) return -1;
    int best = 0;
    float best_x = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] > best_x) {
            best = i;
            best_x = x[i];
        }
    }
    return best;
}

/* Each distinct recent token once: s->idx serves as a "seen" mark per id
 * (it is rebuilt from scratch before candidates are listed). */
static void apply_penalty(sp_sampler *s, float *logits)
{
    float pen = s->p.repeat_penalty;
    if (pen == 1.0f || !(pen > 0.0f)) return;
    int *seen = s->idx;
    for (int i = 0; i < s->n_recent; i++) {
        int t = s->recent[i];
        if (t >= 0 && t < s->n_vocab) seen[t] = 0;
    }
    for (int i = 0; i < s->n_recent; i++) {
        int t = s->recent[i];
        if (t < 0 || t >= s->n_vocab || seen[t]) continue;
        seen[t] = 1;
        logits[t] = logits[t] > 0.0f ? logits[t] / pen : logits[t] * pen;
    }
}

/* ---- ordering: a heap whose root is the worst id ---- */

static int better(const float *l, int a, int b)
{
    if (l[a] != l[b]) return l[a] > l[b];
    return a < b;
}

static void sift_down(const float *l, int *h, int n, int i)
{
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && better(l, h[c], h[c + 1])) c++; /* the worse child */
        if (!better(l, h[i], h[c])) return;
        int tmp = h[i];
        h[i] = h[c];
        h[c] = tmp;
        i = c;
    }
}

static void heapify(const float *l, int *h, int n)
{
    for (int i = n / 2 - 1; i >= 0; i--) sift_down(l, h, n, i);
}

/* Heap sort; the worst goes to the end, so the result is best first. */
static void sort_desc(const float *l, int *h, int n)
{
    heapify(l, h, n);
    for (int end = n - 1; end > 0; end--) {
        int tmp = h[0];
        h[0] = h[end];
        h[end] = tmp;
        sift_down(l, h, end, 0);
    }
}

/* The k best ids of all n, best first, into idx[0..k): O(n log k). */
static void top_k(const float *l, int n, int k, int *idx)
{
    for (int i = 0; i < k; i++) idx[i] = i;
    heapify(l, idx, k);
    for (int i = k; i < n; i++) {
        if (better(l, i, idx[0])) {
            idx[0] = i;
            sift_down(l, idx, k, 0);
        }
    }
    sort_desc(l, idx, k);
}

/* e[j] = e^(l[idx[j]] - lmax) for j < m, all at once (sp_exp_f32: the
 * bits of sp_expf, several values per instruction; with top-k off, m is the
 * whole vocabulary). */
static void exps(const float *l, const int *idx, int m, float lmax, float *e)
{
    for (int j = 0; j < m; j++) e[j] = l[idx[j]] - lmax;
    sp_exp_f32(e, e, m);
}

/* Nucleus over idx[0..m) (sorted best first if `sorted`), with p_i =
 * exp(l_i - lmax) / z and e[j] = exp(l[idx[j]] - lmax) on entry; on return
 * e[j] is that of the new idx[j] for j below the count returned.
 *
 * When unsorted, first drop every id with p_i < (1 - p) / (m - 1): at most
 * m - 1 ids are dropped, together they weigh less than 1 - p, so what is
 * kept weighs more than p and - being the most probable ids - contains the
 * whole nucleus. On near-flat 32000-token rows this leaves a few thousand
 * ids to sort instead of all of them. */
static int top_p(const float *l, int *idx, int m, bool sorted, float p, float lmax, float z, float *e)
{
    if (!sorted) {
        float cut = (1.0f - p) / (float)(m - 1);
        if (cut > 1.0f / (float)m) cut = 1.0f / (float)m; /* the argmax (p >= 1/m) always stays */
        int kept = 0;
        for (int j = 0; j < m; j++)
            if (e[j] / z >= cut) idx[kept++] = idx[j];
        m = kept;
        sort_desc(l, idx, m);
        exps(l, idx, m, lmax, e); /* in the new order */
    }
    float cum = 0.0f;
    for (int j = 0; j < m; j++) {
        cum += e[j] / z;
        if (cum >= p) return j + 1;
    }
    return m;
}

/* splitmix64's finaliser: a bijection of 64-bit words whose every output
 * bit depends on every input bit (Stafford's "Mix13" constants). */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Counter-based: the uniform in [0, 1) for the token at position `pos` of
 * a sequence seeded `seed`. The position is spread by the golden-ratio
 * increment and mixed before it meets the seed, so nearby seeds and nearby
 * positions give unrelated numbers; 24 bits, as sp_rng_f32. */
float sp_sampler_u01(uint64_t seed, int pos)
{
    uint64_t x = mix64(seed ^ mix64((uint64_t)(uint32_t)pos * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull));
    return (float)(x >> 40) / 16777216.0f;
}

int sp_sampler_sample(sp_sampler *s, float *logits, int pos)
{
    const sp_sampler_params *p = &s->p;
    int n = s->n_vocab;
    apply_penalty(s, logits);
    if (p->temperature <= 0.0f) return sp_argmax(logits, n);

    int *idx = s->idx;
    int m = n;
    bool sorted = false;
    if (p->top_k > 0 && p->top_k < n) {
        m = p->top_k;
        top_k(logits, n, m, idx);
        sorted = true;
    } else {
        for (int i = 0; i < n; i++) idx[i] = i;
    }

    /* softmax at temperature 1 over the candidates, for top-p and min-p */
    float lmax = logits[idx[0]];
    for (int j = 1; j < m; j++)
        if (logits[idx[j]] > lmax) lmax = logits[idx[j]];
    float *e = s->probs; /* scratch: e^(l - lmax) of the candidates, then the weights */
    bool have_e = false;  /* e[j] is e^(l[idx[j]] - lmax) for the current idx */
    if (p->top_p < 1.0f && m > 1) {
        exps(logits, idx, m, lmax, e);
        have_e = true;
        float z = 0.0f;
        for (int j = 0; j < m; j++) z += e[j];
        m = top_p(logits, idx, m, sorted, p->top_p, lmax, z, e); /* leaves e matching idx[0..m) */
    }
    /* min-p compares with the most probable token, so no normalisation:
     * p_i / p_max = exp(l_i - lmax). The argmax always passes. */
    if (p->min_p > 0.0f) {
        float ratio = p->min_p < 1.0f ? p->min_p : 1.0f;
        if (!have_e) exps(logits, idx, m, lmax, e);
        int kept = 0;
        for (int j = 0; j < m; j++)
            if (e[j] >= ratio) idx[kept++] = idx[j];
        m = kept;
    }

    /* temperature, then one draw from the unnormalised weights */
    float *w = e;
    float total = 0.0f;
    for (int j = 0; j < m; j++) w[j] = (logits[idx[j]] - lmax) / p->temperature;
    sp_exp_f32(w, w, m);
    for (int j = 0; j < m; j++) total += w[j];
    float r = sp_sampler_u01(p->seed, pos) * total;
    float cum = 0.0f;
    for (int j = 0; j < m; j++) {
        cum += w[j];
        if (r < cum) return idx[j];
    }
    return idx[m - 1]; /* rounding left r at the very top */
}
