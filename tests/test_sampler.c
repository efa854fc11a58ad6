/* test_sampler.c - greedy ties, the filters at their greedy limits, the
 * empirical distribution of draws, temperature, repetition penalty and
 * seed determinism. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "shardpipe/sampler.h"
#include "shardpipe/util.h"

#define NV 32000

/* Near-flat logits like a random-weight model's, with no exact ties. */
static void random_logits(float *x, int n, uint64_t seed)
{
    sp_rng r;
    sp_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) x[i] = 0.5f * sp_rng_normal(&r);
}

static sp_sampler_params params(float temp, int k, float p, float min_p)
{
    sp_sampler_params sp = sp_sampler_defaults();
    sp.temperature = temp;
    sp.top_k = k;
    sp.top_p = p;
    sp.min_p = min_p;
    return sp;
}

/* Draws n tokens from fresh copies of logits. */
static void draw(const sp_sampler_params *p, const float *logits, int nv, int *out, int n)
{
    static float buf[NV];
    sp_sampler s;
    sp_sampler_init(&s, p, nv);
    for (int i = 0; i < n; i++) {
        memcpy(buf, logits, (size_t)nv * sizeof(float));
        out[i] = sp_sampler_sample(&s, buf, i);
    }
    sp_sampler_free(&s);
}

Test(sampler, argmax_takes_lowest_index_on_ties)
{
    float x[6] = {0.5f, 2.0f, -1.0f, 2.0f, 2.0f, 1.0f};
    cr_assert_eq(sp_argmax(x, 6), 1);
    float y[3] = {-3.0f, -3.0f, -3.0f};
    cr_assert_eq(sp_argmax(y, 3), 0);
}

Test(sampler, greedy_by_default_with_ties)
{
    sp_sampler_params p = sp_sampler_defaults();
    cr_assert_leq(p.temperature, 0.0f, "defaults are greedy");
    cr_assert_eq(p.seed, 42);
    float x[5] = {1.0f, 3.0f, 3.0f, 0.0f, 3.0f};
    int tok;
    draw(&p, x, 5, &tok, 1);
    cr_assert_eq(tok, 1);
}

/* Each filter at its strictest setting leaves only the argmax. */
static void check_equals_greedy(sp_sampler_params p, const char *what)
{
    static float x[NV];
    for (uint64_t seed = 1; seed <= 20; seed++) {
        random_logits(x, NV, seed);
        int want = sp_argmax(x, NV);
        int got[5];
        p.seed = seed;
        draw(&p, x, NV, got, 5);
        for (int i = 0; i < 5; i++) cr_assert_eq(got[i], want, "%s: draw %d gave %d, argmax %d", what, i, got[i], want);
    }
}

Test(sampler, top_k_1_equals_greedy) { check_equals_greedy(params(1.0f, 1, 1.0f, 0.0f), "top-k 1"); }
Test(sampler, tiny_top_p_equals_greedy) { check_equals_greedy(params(1.0f, 0, 1e-6f, 0.0f), "top-p 1e-6"); }
Test(sampler, tiny_top_p_after_top_k_equals_greedy)
{
    check_equals_greedy(params(1.5f, 40, 1e-6f, 0.0f), "top-k 40 + top-p 1e-6");
}
Test(sampler, min_p_1_equals_greedy) { check_equals_greedy(params(1.0f, 0, 1.0f, 1.0f), "min-p 1"); }

Test(sampler, top_k_tie_keeps_lowest_index)
{
    float x[6] = {0.0f, 5.0f, 1.0f, 5.0f, 5.0f, 2.0f};
    int tok[50];
    sp_sampler_params p = params(1.0f, 1, 1.0f, 0.0f);
    draw(&p, x, 6, tok, 50);
    for (int i = 0; i < 50; i++) cr_assert_eq(tok[i], 1);
}

/* Pearson chi-square of counts against the expected probabilities; with 3
 * degrees of freedom P(chi2 > 16.27) = 0.001. */
static double chi_square(const int *count, const double *prob, int k, int n)
{
    double chi = 0;
    for (int i = 0; i < k; i++) {
        double e = prob[i] * n;
        chi += (count[i] - e) * (count[i] - e) / e;
    }
    return chi;
}

static void softmax(const float *x, int n, float temp, double *p)
{
    double z = 0;
    for (int i = 0; i < n; i++) z += p[i] = exp((double)x[i] / temp);
    for (int i = 0; i < n; i++) p[i] /= z;
}

Test(sampler, draws_follow_the_softmax)
{
    float x[4] = {1.0f, 2.0f, 0.5f, -0.5f};
    double prob[4];
    softmax(x, 4, 1.0f, prob);
    enum { N = 20000 };
    static int tok[N];
    sp_sampler_params p = params(1.0f, 0, 1.0f, 0.0f);
    p.seed = 1234;
    draw(&p, x, 4, tok, N);
    int count[4] = {0};
    for (int i = 0; i < N; i++) {
        cr_assert(tok[i] >= 0 && tok[i] < 4);
        count[tok[i]]++;
    }
    double chi = chi_square(count, prob, 4, N);
    cr_assert_lt(chi, 16.27, "chi-square %.2f: counts %d %d %d %d vs p %.3f %.3f %.3f %.3f", chi, count[0],
                 count[1], count[2], count[3], prob[0], prob[1], prob[2], prob[3]);

    /* a sampler that ignored the weights (uniform) would fail the same bound */
    double uniform[4] = {0.25, 0.25, 0.25, 0.25};
    cr_assert_gt(chi_square(count, uniform, 4, N), 16.27);
}

Test(sampler, temperature_and_top_k_shape_the_distribution)
{
    /* temperature 0.5 doubles the logits: the draw follows softmax(x / 0.5) */
    float x[4] = {1.0f, 2.0f, 0.5f, -0.5f};
    double prob[4];
    softmax(x, 4, 0.5f, prob);
    enum { N = 20000 };
    static int tok[N];
    sp_sampler_params p = params(0.5f, 0, 1.0f, 0.0f);
    draw(&p, x, 4, tok, N);
    int count[4] = {0};
    for (int i = 0; i < N; i++) count[tok[i]]++;
    cr_assert_lt(chi_square(count, prob, 4, N), 16.27);

    /* top-k 2 keeps tokens 1 and 0 only, renormalised */
    p = params(1.0f, 2, 1.0f, 0.0f);
    draw(&p, x, 4, tok, N);
    memset(count, 0, sizeof count);
    for (int i = 0; i < N; i++) count[tok[i]]++;
    cr_assert_eq(count[2] + count[3], 0);
    double p1 = 1.0 / (1.0 + exp(-1.0)); /* e^2 / (e^2 + e^1) */
    cr_assert_float_eq((double)count[1] / N, p1, 0.02, "token 1 share %.3f, expected %.3f", (double)count[1] / N, p1);
}

Test(sampler, temperature_sharpens)
{
    float x[4] = {1.0f, 2.0f, 0.5f, -0.5f};
    enum { N = 5000 };
    static int tok[N];
    int hot = 0, cold = 0;
    sp_sampler_params p = params(2.0f, 0, 1.0f, 0.0f);
    draw(&p, x, 4, tok, N);
    for (int i = 0; i < N; i++) hot += tok[i] == 1;
    p.temperature = 0.25f;
    draw(&p, x, 4, tok, N);
    for (int i = 0; i < N; i++) cold += tok[i] == 1;
    /* expected shares of the argmax: 0.39 at T=2, 0.98 at T=0.25 */
    cr_assert_gt(cold, hot + N / 4, "argmax share %d at T=0.25 vs %d at T=2", cold, hot);
    cr_assert_gt(cold, N * 95 / 100);
}

Test(sampler, top_p_keeps_the_nucleus)
{
    /* probabilities ~ 0.64, 0.24, 0.09, 0.03: p = 0.8 keeps tokens 0 and 1 */
    float x[4] = {3.0f, 2.0f, 1.0f, 0.0f};
    enum { N = 4000 };
    static int tok[N];
    sp_sampler_params p = params(1.0f, 0, 0.8f, 0.0f);
    draw(&p, x, 4, tok, N);
    int seen[4] = {0};
    for (int i = 0; i < N; i++) seen[tok[i]]++;
    cr_assert(seen[0] > 0 && seen[1] > 0, "both nucleus tokens should be drawn");
    cr_assert_eq(seen[2] + seen[3], 0, "tokens outside the nucleus were drawn");
}

Test(sampler, top_p_on_a_full_vocab_only_draws_from_the_nucleus)
{
    static float x[NV];
    random_logits(x, NV, 99);
    x[17] = 12.0f; /* two strong tokens and a long flat tail */
    x[400] = 11.0f;
    double z = 0;
    for (int i = 0; i < NV; i++) z += exp(x[i]);
    /* p = 0.5 is reached by token 17 alone (e^12 / z ~ 0.63) */
    cr_assert_gt(exp(12.0) / z, 0.5);
    int tok[200];
    sp_sampler_params p = params(1.0f, 0, 0.5f, 0.0f);
    draw(&p, x, NV, tok, 200);
    for (int i = 0; i < 200; i++) cr_assert_eq(tok[i], 17);
    /* p = 0.7 needs token 400 too, and nothing else */
    cr_assert_lt(exp(12.0) / z, 0.7);
    cr_assert_gt((exp(12.0) + exp(11.0)) / z, 0.7);
    p = params(1.0f, 0, 0.7f, 0.0f);
    draw(&p, x, NV, tok, 200);
    int n400 = 0;
    for (int i = 0; i < 200; i++) {
        cr_assert(tok[i] == 17 || tok[i] == 400, "draw %d is %d", i, tok[i]);
        n400 += tok[i] == 400;
    }
    cr_assert_gt(n400, 0);
}

Test(sampler, repetition_penalty_lowers_repeated_tokens)
{
    float x[4] = {2.0f, -1.0f, 1.9f, 0.5f};
    sp_sampler_params p = sp_sampler_defaults();
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 3;
    sp_sampler s;
    sp_sampler_init(&s, &p, 4);
    sp_sampler_accept(&s, 0);
    sp_sampler_accept(&s, 0); /* counted once */
    sp_sampler_accept(&s, 1);
    float y[4];
    memcpy(y, x, sizeof y);
    cr_assert_eq(sp_sampler_sample(&s, y, 0), 2, "penalised token 0 should lose to token 2");
    cr_assert_float_eq(y[0], 1.0f, 1e-6, "positive logit divided once: %f", y[0]);
    cr_assert_float_eq(y[1], -2.0f, 1e-6, "negative logit multiplied: %f", y[1]);
    cr_assert_float_eq(y[2], 1.9f, 1e-6);
    cr_assert_float_eq(y[3], 0.5f, 1e-6);

    /* three more tokens push 0 and 1 out of the window of 3 */
    sp_sampler_accept(&s, 3);
    sp_sampler_accept(&s, 3);
    sp_sampler_accept(&s, 3);
    memcpy(y, x, sizeof y);
    cr_assert_eq(sp_sampler_sample(&s, y, 0), 0);
    cr_assert_float_eq(y[3], 0.25f, 1e-6);
    cr_assert_float_eq(y[0], 2.0f, 1e-6);
    sp_sampler_free(&s);
}

Test(sampler, same_seed_same_stream_other_seed_other_stream)
{
    static float x[NV];
    random_logits(x, NV, 5);
    enum { N = 64 };
    int a[N], b[N], c[N];
    sp_sampler_params p = params(1.0f, 40, 0.95f, 0.05f);
    p.seed = 7;
    draw(&p, x, NV, a, N);
    draw(&p, x, NV, b, N);
    p.seed = 8;
    draw(&p, x, NV, c, N);
    int differ = 0, distinct = 0;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(a[i], b[i], "draw %d: %d vs %d with the same seed", i, a[i], b[i]);
        differ += a[i] != c[i];
        distinct += a[i] != a[0];
    }
    cr_assert_gt(distinct, 0, "a near-flat distribution should not give one token only");
    cr_assert_gt(differ, N / 2, "seeds 7 and 8 agree on %d of %d draws", N - differ, N);
}

/* A stand-in model: near-flat logits that depend on the whole history, so
 * one different draw changes everything after it. */
static void history_logits(const int *seq, int n, float *x, int nv)
{
    uint64_t h = 0x12345;
    for (int i = 0; i < n; i++) h = h * 1000003u + (uint64_t)seq[i];
    random_logits(x, nv, h);
}

/* Generates from seq[0..n_prompt) until `total` tokens, as a server
 * resuming a request does: a fresh sampler that accepts every token it is
 * given as prompt (the original prompt plus what was produced). */
static void continue_from(const sp_sampler_params *p, int *seq, int n_given, int total, int nv)
{
    static float x[NV];
    sp_sampler s;
    sp_sampler_init(&s, p, nv);
    for (int i = 0; i < n_given; i++) sp_sampler_accept(&s, seq[i]);
    for (int pos = n_given; pos < total; pos++) {
        history_logits(seq, pos, x, nv);
        seq[pos] = sp_sampler_sample(&s, x, pos);
        sp_sampler_accept(&s, seq[pos]);
    }
    sp_sampler_free(&s);
}

static void check_restarts(sp_sampler_params p)
{
    enum { NP = 5, TOTAL = 48, V = 4096 };
    int whole[TOTAL] = {1, 17, 300, 42, 7}, again[TOTAL];
    continue_from(&p, whole, NP, TOTAL, V);
    int distinct = 0;
    for (int i = NP; i < TOTAL; i++) distinct += whole[i] != whole[NP];
    cr_assert_gt(distinct, 0, "a near-flat distribution should not give one token only");
    for (int cut = NP; cut < TOTAL; cut += 7) {
        memcpy(again, whole, sizeof again);
        for (int i = cut; i < TOTAL; i++) again[i] = -1;
        continue_from(&p, again, cut, TOTAL, V);
        for (int i = cut; i < TOTAL; i++)
            cr_assert_eq(again[i], whole[i], "restarted after %d tokens: position %d drew %d, uninterrupted %d",
                         cut, i, again[i], whole[i]);
    }
}

Test(sampler, restart_from_the_middle_draws_the_same_tokens)
{
    check_restarts(params(1.0f, 40, 0.95f, 0.05f));
    check_restarts(params(0.7f, 0, 1.0f, 0.0f));
}

Test(sampler, restart_keeps_the_repetition_penalty)
{
    sp_sampler_params p = params(1.2f, 0, 0.9f, 0.0f);
    p.repeat_penalty = 1.3f;
    p.repeat_last_n = 16;
    check_restarts(p);
}

/* The draw is keyed by (seed, position) only: nearby seeds and positions
 * give unrelated numbers that fill [0, 1) evenly. */
Test(sampler, counter_draws_are_uniform_and_unrelated)
{
    enum { N = 1 << 16, BINS = 16 };
    int bins[BINS] = {0};
    int same = 0;
    for (int i = 0; i < N; i++) {
        float u = sp_sampler_u01((uint64_t)(i >> 8), i & 255);
        cr_assert(u >= 0.0f && u < 1.0f);
        bins[(int)(u * BINS)]++;
        same += fabsf(u - sp_sampler_u01((uint64_t)(i >> 8) + 1, i & 255)) < 1.0f / 4096;
    }
    for (int b = 0; b < BINS; b++)
        cr_assert(bins[b] > N / BINS * 9 / 10 && bins[b] < N / BINS * 11 / 10, "bin %d holds %d of %d", b, bins[b], N);
    cr_assert_lt(same, 64, "seeds s and s+1 agree to 1/4096 on %d of %d positions", same, N);
    cr_assert_eq(sp_sampler_u01(7, 3), sp_sampler_u01(7, 3));
}
