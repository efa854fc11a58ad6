/* test_model.c - the forward pass against ../shared/reference (llama.cpp),
 * and the properties the pipeline relies on: layer ranges run separately
 * give bit-identical logits, and a batch of sequences gives each sequence
 * the logits it gets alone. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/model.h"
#include "shardpipe/quant.h"
#include "shardpipe/sampler.h"
#include "shardpipe/synth.h"
#include "shardpipe/tokenizer.h"
#include "oracle.h"
#include "testutil.h"

/* Runs the prompt through the whole model in one micro-batch and returns
 * logits for every position (n x n_vocab, malloc'ed). */
static float *prompt_logits(sp_engine *e, const int *toks, int n, int seq)
{
    const sp_config *c = &e->model->cfg;
    float *x = malloc((size_t)n * c->dim * sizeof(float));
    float *logits = malloc((size_t)n * c->n_vocab * sizeof(float));
    int *seqs = malloc(n * sizeof(int)), *pos = malloc(n * sizeof(int));
    for (int i = 0; i < n; i++) { seqs[i] = seq; pos[i] = i; }
    sp_batch b = {n, seqs, pos};
    sp_error err = {{0}};
    cr_assert_eq(sp_embed(e, toks, n, x, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_forward(e, &b, x, &err), 0, "%s", err.msg);
    sp_head(e, x, n, logits);
    free(x); free(seqs); free(pos);
    return logits;
}

/* Greedy decode of n_gen tokens after a prompt, one token per forward. */
static void greedy(sp_engine *e, const int *prompt, int n_prompt, int n_gen, int *out)
{
    const sp_config *c = &e->model->cfg;
    float *logits = prompt_logits(e, prompt, n_prompt, 0);
    float *last = malloc(c->n_vocab * sizeof(float));
    memcpy(last, logits + (size_t)(n_prompt - 1) * c->n_vocab, c->n_vocab * sizeof(float));
    float *x = malloc(c->dim * sizeof(float));
    sp_error err = {{0}};
    for (int i = 0; i < n_gen; i++) {
        out[i] = sp_argmax(last, c->n_vocab);
        int seq = 0, pos = n_prompt + i;
        sp_batch b = {1, &seq, &pos};
        cr_assert_eq(sp_embed(e, &out[i], 1, x, &err), 0, "%s", err.msg);
        cr_assert_eq(sp_forward(e, &b, x, &err), 0, "%s", err.msg);
        sp_head(e, x, 1, last);
    }
    free(x); free(last); free(logits);
}

static void max_rms_diff(const float *a, const float *b, size_t n, double *maxd, double *rms)
{
    *maxd = 0; double ss = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > *maxd) *maxd = d;
        ss += d * d;
    }
    *rms = sqrt(ss / n);
}

/* The reference `name` and stories260K, or NULL (the test skips, saying
 * why) when ../shared does not have them. */
static sp_model *open_stories(const char *name, sp_test_ref *r)
{
    if (sp_test_load_ref(name, r)) return NULL;
    const char *mp = sp_test_shared("models/stories260K.gguf");
    if (!mp) return NULL;
    sp_error err = {{0}};
    sp_model *m = sp_model_open_full(mp, &err);
    cr_assert(m, "%s", err.msg);
    return m;
}

/* stories260K (F32) against llama.cpp. llama.cpp keeps the KV cache in
 * fp16 and rounds q and the softmax weights to fp16 where they meet it; we
 * do the same (see forward.c), which takes position 0 from 1.3e-3 (with an
 * f32 cache) to 4e-6. Every fp16 rounding is a place where a 1e-7 difference
 * in f32 arithmetic can land on the other side of a rounding boundary and
 * change a value by one fp16 step (5e-4 relative); once that happens the
 * difference propagates to later positions. "Once upon a time" stays below
 * 1e-5 at all 5 positions; the 15-token "park" prompt differs by <= 8.3e-6
 * at positions 0-2, then 5.0e-4 at 3 and up to 5.7e-3 by 14 (rms 7.5e-4).
 *
 * Which side is off is settled by the float64 oracle below (the same
 * computation in double, with the same four fp16 rounding points): the
 * REFERENCE leaves exact arithmetic at park position 3 (5e-4) and again at
 * 12-14 (2e-3..5e-3), while it agrees with the oracle to <= 9e-6 elsewhere
 * and on "once". At position 3, V of layer 3, row 3, element 24 is
 * -0.75414643 in double and -0.754146338 here: both 68 f32 ulps on one side
 * of an fp16 rounding boundary, and llama.cpp lands on the other. We leave
 * the oracle too, at position 5 (<= 2e-3): a V value of layer 0 that is 0.7
 * ulp from a boundary and a q value 1.5 ulp from one round the other way -
 * the lottery any f32 implementation plays. So the 1e-3 bound of issue #2
 * is not reachable on this prompt by computing more exactly: the reference
 * itself is 5e-3 from the exact result. (Earlier hypotheses - ggml's RoPE
 * angle cache, double-sum f16 dots, its vectorized expf, an fp16 flash-
 * attention accumulator (9.8e-3) - were emulated and ruled out; 30 random
 * 1-ulp perturbations of our embedding rows leave the max at 5.3e-3..5.7e-3,
 * as they must if the reference's own departures dominate. On 2026-12-06 a
 * throwaway harness redid ggml's CPU arithmetic for this model bit by bit -
 * llamafile's tinyBLAS for the batch matmuls (8 or 16 f32 lanes of fma,
 * then its horizontal sum), ggml_vec_dot_f32's four accumulators and tail
 * for ffn_down's 172 columns, rms_norm's f32 squares summed in double and
 * its f32 1/sqrtf, the RoPE angle cache, ggml_v_expf / ggml_v_silu (AVX2
 * and AVX-512 variants), the softmax's 8/16-value sums, fp16 KV, q and
 * weights, a 32-cell padded cache - for AVX2 and AVX-512, with and
 * without fma contraction of the f32 tails: none reproduced the
 * reference's bits even at position 0, where no softmax is involved (at
 * most 146 of 512 logits bit-equal, max 2e-6), so the reference came from
 * a path that cannot be pinned down from here (another ISA or compiler).
 * ARM's fp16-arithmetic tinyBLAS for the attention (n >= 8 rows, so only
 * "park") was emulated too: 2.3e-2 from the reference, far worse.)
 * The sgemm path gives max 2.2e-3 (rms 4.1e-4). So: max <= max_tol at every
 * position, rms over the prompt <= 1e-3, and all 64 greedy tokens equal;
 * the oracle test below holds both us and the reference to exact arithmetic. */
static void check_stories(const char *name, double max_tol)
{
    sp_test_ref r;
    sp_model *m = open_stories(name, &r);
    if (!m) return;
    sp_error err = {{0}};

    /* the tokenizer gives the reference prompt tokens */
    sp_tokenizer *tok = sp_tokenizer_load(m->gguf, &err);
    cr_assert(tok, "%s", err.msg);
    sp_tokenizer_free(tok);

    sp_engine *e = sp_engine_new(m, 1, 64, 1, 256, &err);
    cr_assert(e, "%s", err.msg);
    int V = m->cfg.n_vocab;
    cr_assert_eq(r.n_logits, (size_t)r.n_prompt * V);
    float *logits = prompt_logits(e, r.prompt, r.n_prompt, 0);
    double maxd, rms;
    for (int p = 0; p < r.n_prompt; p++) {
        max_rms_diff(logits + (size_t)p * V, r.logits + (size_t)p * V, V, &maxd, &rms);
        cr_assert_leq(maxd, max_tol, "%s position %d: max |dlogit| %.2e > %.0e (rms %.2e)", name, p, maxd, max_tol, rms);
    }
    max_rms_diff(logits, r.logits, r.n_logits, &maxd, &rms);
    cr_assert_leq(rms, 1e-3, "%s: rms |dlogit| %.2e over the prompt > 1e-3", name, rms);
    fprintf(stderr, "%s: max |dlogit| %.3e rms %.3e over %d positions\n", name, maxd, rms, r.n_prompt);
    cr_log_info("%s: max |dlogit| %.3e rms %.3e over %d positions", name, maxd, rms, r.n_prompt);
    free(logits);
    sp_engine_free(e);

    /* greedy continuation, one token per forward, equals the reference */
    e = sp_engine_new(m, 1, 64, 1, 256, &err);
    int out[128];
    greedy(e, r.prompt, r.n_prompt, r.n_greedy, out);
    for (int i = 0; i < r.n_greedy; i++)
        cr_assert_eq(out[i], r.greedy[i], "%s: greedy token %d is %d, reference %d", name, i, out[i], r.greedy[i]);
    sp_engine_free(e);
    sp_model_close(m);
    free(r.logits);
}

Test(model, stories260K_once_matches_reference) { check_stories("s260k-once", 1e-4); }
Test(model, stories260K_park_matches_reference) { check_stories("s260k-park", 8e-3); }

/* ---- a float64 oracle for the F32 model (tests/oracle.c) ---- */

static double max_diff_d(const double *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* Per position, the largest |dlogit| of ours and of the reference from the
 * oracle. Asserted:
 *  - ours within 1e-5 of the oracle at every position before the first
 *    near-tie fp16 rounding (all of "once", "park" 0-4; measured <= 6e-6
 *    on both matmul paths): our f32 arithmetic is as exact as f32 allows
 *    and rounds at the same places;
 *  - the reference within 1e-5 of the oracle on "once" and at park 0-2
 *    (measured <= 9e-6): the oracle computes what llama.cpp computes;
 *  - the reference more than 1e-3 from the oracle somewhere on "park"
 *    (measured 5e-3 at position 14): why that prompt's bound is 8e-3, not
 *    1e-3. If this one fails, the reference files changed: tighten park. */
static void check_oracle(const char *name, int n_exact_ours, int n_exact_ref, bool ref_departs)
{
    sp_test_ref r;
    sp_model *m = open_stories(name, &r);
    if (!m) return;
    sp_error err = {{0}};
    int V = m->cfg.n_vocab;
    double *exact = sp_test_oracle_logits(m, r.prompt, r.n_prompt);
    const sp_matmul_path paths[2] = {SP_PATH_DOT, SP_PATH_SGEMM};
    double ref_max = 0;
    for (int k = 0; k < 2; k++) {
        if (paths[k] == SP_PATH_SGEMM && !sp_matmul_sgemm_row_invariant()) {
            fprintf(stderr, "SKIP %s oracle on the sgemm path: this OpenBLAS core type is not row-invariant, so "
                            "the engine never takes that path here\n", name);
            continue;
        }
        sp_engine *e = sp_engine_new(m, 1, 64, 1, 256, &err);
        cr_assert(e, "%s", err.msg);
        e->mm.force = paths[k];
        float *ours = prompt_logits(e, r.prompt, r.n_prompt, 0);
        for (int p = 0; p < r.n_prompt; p++) {
            double d_ours = max_diff_d(exact + (size_t)p * V, ours + (size_t)p * V, V);
            double d_ref = max_diff_d(exact + (size_t)p * V, r.logits + (size_t)p * V, V);
            if (k == 0) {
                fprintf(stderr, "%s position %2d: |ours - float64| %.1e  |reference - float64| %.1e\n", name, p,
                        d_ours, d_ref);
                if (d_ref > ref_max) ref_max = d_ref;
                if (p < n_exact_ref)
                    cr_assert_leq(d_ref, 1e-5, "%s position %d: reference %.2e from the float64 oracle", name, p,
                                  d_ref);
            }
            if (p < n_exact_ours)
                cr_assert_leq(d_ours, 1e-5, "%s position %d (%s path): %.2e from the float64 oracle", name, p,
                              k == 0 ? "dot" : "sgemm", d_ours);
        }
        free(ours);
        sp_engine_free(e);
    }
    if (ref_departs)
        cr_assert_gt(ref_max, 1e-3, "%s: the reference is now within %.1e of exact arithmetic", name, ref_max);
    free(exact);
    sp_model_close(m);
    free(r.logits);
}

Test(model, stories260K_once_float64_oracle) { check_oracle("s260k-once", 5, 5, false); }
Test(model, stories260K_park_float64_oracle) { check_oracle("s260k-park", 5, 3, true); }

/* tiny-random Q8_0 / Q4_0 against llama.cpp. llama.cpp multiplies quantized
 * weights by activations quantized to Q8_0 and keeps an fp16 KV cache; our
 * dot path does the same arithmetic up to f32 summation order.
 *
 * Measured (this test prints it): for Q8_0, 12 of the 13 prompt positions
 * agree to 2.4e-7; position 2 differs by 2.1e-3 (rms over all 1.2e-4),
 * because a summation-order difference of ~1e-7 moved one activation across
 * a Q8_0 rounding boundary (x / d = k + 0.5), which changes that value by
 * one quantization step (this model is that sensitive: 1e-7 relative noise
 * on matmul outputs moves its logits by up to 1.2e-2). So we require: most positions bit-close (<= 1e-5), and over
 * all positions rms <= 2e-3, max <= 2e-2 - 4x below the rms 0.0075 that
 * separates Q8_0 from F32 weights, while a wrong block layout, scale or
 * nibble order gives rms > 0.07 (measured: the Q4_0 model against the Q8_0
 * reference is rms 0.073).
 * Q4_0: we measure rms 5.9e-3 against llama.cpp at every position, not a
 * rounding-boundary effect: this model's logits move by only 1.2e-7 under
 * 1e-7 relative noise, so the reference's Q4_0 arithmetic differs from ours
 * at the 1e-5..1e-4 level or in structure. Ruled out by emulation: the x86
 * Q4_0x8 repack (exact integer sums), an activation scale of 127/amax
 * (rms 5.6e-3), f32 activations (4.6e-3), the Q8_0 file's embedding (4e-2).
 * The file is an independent Q4_0 quantization of the F32 weights, as
 * llama-quantize makes one (re-quantizing the Q8_0 file's values gives 2%
 * other nibbles), which fits but does not prove that the reference was
 * made from this very file. (It was not made from the Q8_0 file
 * requantized: our engine on those weights is rms 3.6e-2 from it, six
 * times further than on this file; checked 2026-12-06.) So the
 * bound is rms 6e-3, max 4e-2: still 12x below the Q4_0-vs-Q8_0 weight gap
 * of 0.073.
 * The sgemm path (f32 activations, no activation rounding) differs from
 * llama.cpp by the activation quantization noise itself: measured rms ~4.5e-3,
 * bound 6e-3. */
static void check_tiny(const char *model, const char *ref, sp_matmul_path path, double tol_max, double tol_rms,
                       int min_close_positions)
{
    sp_test_ref r;
    if (sp_test_load_ref(ref, &r)) return;
    char rel[128];
    snprintf(rel, sizeof rel, "models/%s", model);
    const char *mp = sp_test_shared(rel);
    if (!mp) return;
    sp_error err = {{0}};
    sp_model *m = sp_model_open_full(mp, &err);
    cr_assert(m, "%s", err.msg);
    sp_tokenizer *tok = sp_tokenizer_load(m->gguf, &err);
    cr_assert(tok, "%s", err.msg);
    int n;
    int *ids = sp_tokenize(tok, "The quick brown fox jumps over the lazy dog.", SP_TOK_ADD_SPECIAL, &n, &err);
    cr_assert(ids, "%s", err.msg);
    cr_assert_eq(n, r.n_prompt, "prompt tokens: %d, reference %d", n, r.n_prompt);
    for (int i = 0; i < n; i++) cr_assert_eq(ids[i], r.prompt[i], "prompt token %d", i);
    free(ids);
    sp_tokenizer_free(tok);

    sp_engine *e = sp_engine_new(m, 2, 64, 1, 64, &err);
    cr_assert(e, "%s", err.msg);
    e->mm.force = path;
    int V = m->cfg.n_vocab;
    float *logits = prompt_logits(e, r.prompt, r.n_prompt, 0);
    double maxd, rms;
    max_rms_diff(logits, r.logits, r.n_logits, &maxd, &rms);
    cr_log_info("%s (%s path): max |dlogit| %.3e rms %.3e", model, path == SP_PATH_DOT ? "dot" : "sgemm", maxd, rms);
    fprintf(stderr, "%s (%s path): max |dlogit| %.3e rms %.3e\n", model, path == SP_PATH_DOT ? "dot" : "sgemm", maxd, rms);
    cr_assert_leq(maxd, tol_max, "%s: max |dlogit| %.3e > %.1e", model, maxd, tol_max);
    cr_assert_leq(rms, tol_rms, "%s: rms dlogit %.3e > %.1e", model, rms, tol_rms);
    int close = 0;
    for (int p = 0; p < r.n_prompt; p++) {
        double pm, pr;
        max_rms_diff(logits + (size_t)p * V, r.logits + (size_t)p * V, V, &pm, &pr);
        if (pm <= 1e-5) close++;
    }
    cr_assert_geq(close, min_close_positions, "%s: only %d of %d positions agree to 1e-5 (expected >= %d)", model,
                  close, r.n_prompt, min_close_positions);
    /* the argmax after the prompt is the reference's first greedy token when
     * the top-2 gap exceeds our error bound */
    const float *last = r.logits + (size_t)(r.n_prompt - 1) * V;
    int ref_top = sp_argmax(last, V);
    cr_assert_eq(ref_top, r.greedy[0]);
    free(logits);
    sp_engine_free(e);
    sp_model_close(m);
    free(r.logits);
}

Test(model, tiny_q8_0_dot_path_matches_reference) { check_tiny("tiny-random-q8_0.gguf", "tiny-random-q8_0-fox", SP_PATH_DOT, 2e-2, 2e-3, 7); }
Test(model, tiny_q4_0_dot_path_matches_reference) { check_tiny("tiny-random-q4_0.gguf", "tiny-random-q4_0-fox", SP_PATH_DOT, 4e-2, 6e-3, 0); }
Test(model, tiny_q8_0_sgemm_path_near_reference) { check_tiny("tiny-random-q8_0.gguf", "tiny-random-q8_0-fox", SP_PATH_SGEMM, 4e-2, 6e-3, 0); }
Test(model, tiny_q4_0_sgemm_path_near_reference) { check_tiny("tiny-random-q4_0.gguf", "tiny-random-q4_0-fox", SP_PATH_SGEMM, 4e-2, 6e-3, 0); }

/* A model the test writes itself (no shared data needed): GQA, 4 layers. */
static const char *synth_model(sp_dtype type)
{
    static char path[3][512];
    int slot = type == SP_DTYPE_F32 ? 0 : type == SP_DTYPE_Q8_0 ? 1 : 2;
    snprintf(path[slot], sizeof path[slot], "%s", sp_test_tmpfile(slot == 0 ? "f32.gguf" : slot == 1 ? "q8.gguf" : "q4.gguf"));
    sp_synth_spec s;
    sp_error err = {{0}};
    cr_assert_eq(sp_synth_shape("tiny", &s, &err), 0);
    s.type = s.embd_type = s.output_type = type;
    s.n_layers = 5;
    s.seed = 7;
    cr_assert_eq(sp_synth_write(&s, path[slot], &err), 0, "%s", err.msg);
    return path[slot];
}

/* Runs tokens through the layer ranges [cuts[i], cuts[i+1]-1] as separate
 * shards (separate engines and KV caches), in sequence, for a prompt and
 * then some decode steps; returns all logits. */
static float *run_split(const char *path, const int *cuts, int n_cuts, const int *toks, int n_prompt, int n_dec,
                        sp_matmul_path force)
{
    sp_error err = {{0}};
    sp_model *probe = sp_model_open_full(path, &err);
    cr_assert(probe, "%s", err.msg);
    sp_config c = probe->cfg;
    sp_model_close(probe);
    sp_engine *eng[8];
    for (int s = 0; s < n_cuts - 1; s++) {
        sp_model *m = sp_model_open(path, cuts[s], cuts[s + 1] - 1, s == 0, s == n_cuts - 2, &err);
        cr_assert(m, "%s", err.msg);
        eng[s] = sp_engine_new(m, 2, 32, 1, 64, &err);
        cr_assert(eng[s], "%s", err.msg);
        eng[s]->mm.force = force;
    }
    int total = n_prompt + n_dec;
    float *logits = malloc((size_t)total * c.n_vocab * sizeof(float));
    float *x = malloc((size_t)32 * c.dim * sizeof(float));
    int seq[32] = {0}, pos[32];
    int cur[32];
    memcpy(cur, toks, n_prompt * sizeof(int));
    int p0 = 0, n = n_prompt;
    while (p0 < total) {
        for (int i = 0; i < n; i++) pos[i] = p0 + i;
        sp_batch b = {n, seq, pos};
        cr_assert_eq(sp_embed(eng[0], cur, n, x, &err), 0, "%s", err.msg);
        for (int s = 0; s < n_cuts - 1; s++) cr_assert_eq(sp_forward(eng[s], &b, x, &err), 0, "%s", err.msg);
        sp_head(eng[n_cuts - 2], x, n, logits + (size_t)p0 * c.n_vocab);
        int next = sp_argmax(logits + (size_t)(p0 + n - 1) * c.n_vocab, c.n_vocab);
        p0 += n;
        n = 1;
        cur[0] = next;
    }
    for (int s = 0; s < n_cuts - 1; s++) {
        sp_model *m = eng[s]->model;
        sp_engine_free(eng[s]);
        sp_model_close(m);
    }
    free(x);
    return logits;
}

static void check_splits(sp_dtype type, sp_matmul_path force)
{
    const char *path = synth_model(type);
    int toks[6] = {1, 300, 301, 302, 303, 304};
    int whole[] = {0, 5}, two[] = {0, 2, 5}, three[] = {0, 1, 4, 5}, ones[] = {0, 1, 2, 3, 4, 5};
    float *ref = run_split(path, whole, 2, toks, 6, 4, force);
    const int *plans[] = {two, three, ones};
    int n_plans[] = {3, 4, 6};
    size_t n = (size_t)10 * 512;
    for (int p = 0; p < 3; p++) {
        float *got = run_split(path, plans[p], n_plans[p], toks, 6, 4, force);
        cr_assert_eq(memcmp(got, ref, n * sizeof(float)), 0, "plan %d: logits are not bit-identical to one range", p);
        free(got);
    }
    free(ref);
}

Test(model, layer_ranges_bit_identical_f32) { check_splits(SP_DTYPE_F32, SP_PATH_AUTO); }
Test(model, layer_ranges_bit_identical_q8_0) { check_splits(SP_DTYPE_Q8_0, SP_PATH_AUTO); }
Test(model, layer_ranges_bit_identical_q4_0_dot) { check_splits(SP_DTYPE_Q4_0, SP_PATH_DOT); }
Test(model, layer_ranges_bit_identical_q4_0_sgemm) { check_splits(SP_DTYPE_Q4_0, SP_PATH_SGEMM); }

/* Three sequences with different prompts in one micro-batch (interleaved
 * rows) give each the logits it gets alone, for each matmul path. */
static void check_batch(sp_dtype type, sp_matmul_path force)
{
    if (force == SP_PATH_SGEMM && !sp_matmul_sgemm_row_invariant()) {
        cr_skip_test("SKIP model batch vs alone on the sgemm path: this OpenBLAS core type adds a row in an order "
                     "that depends on its place in the call, so the engine never takes that path here");
        return;
    }
    const char *path = synth_model(type);
    sp_error err = {{0}};
    sp_model *m = sp_model_open_full(path, &err);
    cr_assert(m, "%s", err.msg);
    int V = m->cfg.n_vocab, D = m->cfg.dim;
    int prompts[3][4] = {{1, 10, 20, 30}, {1, 40, 50, 60}, {1, 70, 80, 90}};
    float alone[3][4][512];
    for (int s = 0; s < 3; s++) {
        sp_engine *e = sp_engine_new(m, 1, 16, 1, 32, &err);
        e->mm.force = force;
        float *l = prompt_logits(e, prompts[s], 4, 0);
        memcpy(alone[s], l, sizeof alone[s]);
        free(l);
        sp_engine_free(e);
    }
    sp_engine *e = sp_engine_new(m, 2, 16, 3, 32, &err);
    e->mm.force = force;
    int toks[12], seq[12], pos[12];
    for (int i = 0; i < 12; i++) { /* interleave: s0p0 s1p0 s2p0 s0p1 ... */
        seq[i] = i % 3; pos[i] = i / 3; toks[i] = prompts[seq[i]][pos[i]];
    }
    float *x = malloc(12 * D * sizeof(float)), *logits = malloc(12 * V * sizeof(float));
    sp_batch b = {12, seq, pos};
    cr_assert_eq(sp_embed(e, toks, 12, x, &err), 0);
    cr_assert_eq(sp_forward(e, &b, x, &err), 0, "%s", err.msg);
    sp_head(e, x, 12, logits);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(memcmp(logits + (size_t)i * V, alone[seq[i]][pos[i]], V * sizeof(float)), 0,
                     "row %d (sequence %d position %d) differs from the sequence run alone", i, seq[i], pos[i]);
    free(x); free(logits);
    sp_engine_free(e);
    sp_model_close(m);
}

Test(model, batch_of_sequences_equals_each_alone_dot) { check_batch(SP_DTYPE_Q8_0, SP_PATH_DOT); }
Test(model, batch_of_sequences_equals_each_alone_sgemm) { check_batch(SP_DTYPE_Q4_0, SP_PATH_SGEMM); }
Test(model, batch_of_sequences_equals_each_alone_f32) { check_batch(SP_DTYPE_F32, SP_PATH_AUTO); }

Test(model, rejects_positions_with_holes_and_outside_context)
{
    const char *path = synth_model(SP_DTYPE_Q8_0);
    sp_error err = {{0}};
    sp_model *m = sp_model_open_full(path, &err);
    sp_engine *e = sp_engine_new(m, 1, 4, 2, 8, &err);
    float *x = calloc(4 * m->cfg.dim, sizeof(float));
    int seq = 0, pos = 1;
    sp_batch b = {1, &seq, &pos};
    cr_assert_eq(sp_forward(e, &b, x, &err), -1);
    cr_assert(strstr(err.msg, "hole"), "%s", err.msg);
    pos = 8;
    cr_assert_eq(sp_forward(e, &b, x, &err), -1);
    cr_assert(strstr(err.msg, "context"), "%s", err.msg);
    seq = 2; pos = 0;
    cr_assert_eq(sp_forward(e, &b, x, &err), -1);
    cr_assert(strstr(err.msg, "sequence slot"), "%s", err.msg);
    int bad = 100000;
    cr_assert_eq(sp_embed(e, &bad, 1, x, &err), -1);
    cr_assert(strstr(err.msg, "vocabulary"), "%s", err.msg);
    free(x);
    sp_engine_free(e);
    sp_model_close(m);
}

Test(model, shard_open_rejects_bad_range)
{
    const char *path = synth_model(SP_DTYPE_Q8_0);
    sp_error err = {{0}};
    cr_assert_null(sp_model_open(path, 3, 9, false, true, &err));
    cr_assert(strstr(err.msg, "outside the model's layers [0, 4]"), "%s", err.msg);
}

/* A prompt chunk long enough for the sgemm path (20 rows of sequence 0) in
 * the same micro-batch as a short chunk of sequence 1 (3 rows, dot path):
 * each gets exactly the logits it gets alone. */
Test(model, mixed_paths_in_one_batch_equal_each_alone)
{
    const char *path = synth_model(SP_DTYPE_Q4_0);
    sp_error err = {{0}};
    sp_model *m = sp_model_open_full(path, &err);
    cr_assert(m, "%s", err.msg);
    int V = m->cfg.n_vocab, D = m->cfg.dim;
    int a[20], bt[3] = {1, 77, 78};
    for (int i = 0; i < 20; i++) a[i] = i ? 100 + i : 1;
    sp_engine *e = sp_engine_new(m, 2, 32, 2, 32, &err);
    e->mm.sgemm_min_rows = 16; /* 20 rows: sgemm, 3 rows: dot */
    float *la = prompt_logits(e, a, 20, 0);
    float *lb = prompt_logits(e, bt, 3, 1);
    sp_engine_free(e);

    e = sp_engine_new(m, 2, 32, 2, 32, &err);
    e->mm.sgemm_min_rows = 16;
    int toks[23], seq[23], pos[23];
    for (int i = 0; i < 23; i++) { /* b's rows first, then a's */
        int isb = i < 3;
        seq[i] = isb ? 1 : 0; pos[i] = isb ? i : i - 3; toks[i] = isb ? bt[i] : a[i - 3];
    }
    float *x = malloc(23 * D * sizeof(float)), *logits = malloc((size_t)23 * V * sizeof(float));
    sp_batch b = {23, seq, pos};
    cr_assert_eq(sp_embed(e, toks, 23, x, &err), 0);
    cr_assert_eq(sp_forward(e, &b, x, &err), 0, "%s", err.msg);
    sp_head(e, x, 23, logits);
    for (int i = 0; i < 23; i++) {
        const float *want = seq[i] ? lb + (size_t)pos[i] * V : la + (size_t)pos[i] * V;
        cr_assert_eq(memcmp(logits + (size_t)i * V, want, V * sizeof(float)), 0,
                     "row %d (sequence %d position %d) differs from the sequence alone", i, seq[i], pos[i]);
    }
    free(x); free(logits); free(la); free(lb);
    sp_engine_free(e);
    sp_model_close(m);
}

/* sp_model_load_weights moves a shard's matrices out of the file mapping
 * (into huge pages) without changing a bit of the logits; a shard's copy
 * holds exactly its own layers (and the output matrix on the last stage);
 * SHARDPIPE_MMAP=1 leaves the weights mapped. */
static bool in_mapping(const sp_model *m, const void *p)
{
    const char *b = (const char *)m->gguf->base;
    return (const char *)p >= b && (const char *)p < b + m->gguf->size;
}

Test(model, weights_moved_to_huge_pages_give_the_same_logits)
{
    const char *path = synth_model(SP_DTYPE_Q4_0);
    sp_error err = {{0}};
    int toks[9] = {1, 40, 41, 42, 43, 44, 45, 46, 47};
    float *want = NULL, *got = NULL;
    int V = 0;
    for (int k = 0; k < 2; k++) {
        sp_model *m = sp_model_open_full(path, &err);
        cr_assert(m, "%s", err.msg);
        V = m->cfg.n_vocab;
        if (k == 1) {
            cr_assert_eq(sp_model_load_weights(m, &err), 0, "%s", err.msg);
            cr_assert(m->copy, "no copy made");
            for (int l = 0; l < m->cfg.n_layers; l++) {
                cr_assert(!in_mapping(m, m->layers[l].wq.data) && !in_mapping(m, m->layers[l].w_down.data),
                          "layer %d still reads the mapping", l);
                cr_assert(in_mapping(m, m->layers[l].attn_norm), "norms stay mapped");
            }
            cr_assert(!in_mapping(m, m->output.data), "the output matrix still reads the mapping");
            cr_assert(in_mapping(m, m->tok_embd.data), "the (untied) embedding table is read a row per token");
        }
        sp_engine *e = sp_engine_new(m, 2, 16, 1, 32, &err);
        cr_assert(e, "%s", err.msg);
        float *l = prompt_logits(e, toks, 9, 0);
        if (k == 0) want = l;
        else got = l;
        sp_engine_free(e);
        sp_model_close(m);
    }
    cr_assert_eq(memcmp(want, got, (size_t)9 * V * sizeof(float)), 0, "logits differ after moving the weights");
    free(want);
    free(got);

    /* a middle shard: its own layers' matrices only */
    sp_model *m = sp_model_open(path, 1, 2, false, false, &err);
    cr_assert(m, "%s", err.msg);
    cr_assert_eq(sp_model_load_weights(m, &err), 0, "%s", err.msg);
    /* the shard's bytes but its 2 x 2 norm vectors (which stay mapped), with
     * each of its 14 matrices padded to 64 bytes */
    uint64_t want_bytes = sp_shard_weight_bytes(m->gguf, &m->cfg, 1, 2, false, false);
    uint64_t norms = 2 * 2 * (uint64_t)m->cfg.dim * sizeof(float);
    cr_assert(m->copy_bytes + norms >= want_bytes && m->copy_bytes + norms <= want_bytes + 14 * 63,
              "copy of %zu bytes for a shard of %llu weight bytes (%llu of norms)", m->copy_bytes,
              (unsigned long long)want_bytes, (unsigned long long)norms);
    sp_model_close(m);

    setenv("SHARDPIPE_MMAP", "1", 1);
    m = sp_model_open_full(path, &err);
    cr_assert_eq(sp_model_load_weights(m, &err), 0, "%s", err.msg);
    cr_assert(!m->copy && in_mapping(m, m->layers[0].wq.data), "SHARDPIPE_MMAP=1 must leave the weights mapped");
    sp_model_close(m);
    unsetenv("SHARDPIPE_MMAP");
}
