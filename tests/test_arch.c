/* test_arch.c - the architectures beyond Llama 2 (Llama 3.x, Qwen2, Qwen3)
 * against llama.cpp's logits in ../shared/reference, the config each file
 * gives, and the operations they add (NeoX RoPE, RoPE frequency factors,
 * per-head q/k RMSNorm) on hand-computed cases.
 *
 * Reference comparison (README of ../shared): the prompt in one batch, the
 * logit rows at `logits_positions` within max|d| <= 0.06 and rms <= 0.012 of
 * llama.cpp's (about twice llama.cpp's own spread between its settings);
 * then the reference's 32 greedy tokens fed one at a time (the decode
 * path): greedy tokens equal up to the first near-tie (our argmax is the
 * reference's token until then), and at every step the reference's token
 * within TIE of our best. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/model.h"
#include "shardpipe/rowops.h"
#include "shardpipe/sampler.h"
#include "oracle.h"
#include "testutil.h"

#define MAX_D 0.06
#define MAX_RMS 0.012
/* two logits this close may swap order between two correct implementations
 * (each may be MAX_D off) */
#define TIE (2 * MAX_D)

/* Opens a model; NULL after a loud SKIP when its tensor types are not
 * supported yet (K-quants come from the kquant branch). Any other error
 * fails. */
static sp_model *open_model(const char *file)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", file);
    const char *mp = sp_test_shared(rel);
    if (!mp) return NULL;
    sp_error err = {{0}};
    sp_model *m = sp_model_open_full(mp, &err);
    if (!m && strstr(err.msg, "type") && (strstr(err.msg, "not supported") || strstr(err.msg, "cannot multiply"))) {
        fprintf(stderr, "SKIP: %s: Q4_K/Q6_K not supported yet (K-quant kernels are another branch): %s\n", file,
                err.msg);
        cr_skip_test("%s: K-quant types not supported yet", file);
        return NULL;
    }
    cr_assert(m, "%s", err.msg);
    return m;
}

static void diff_stats(const float *a, const float *b, size_t n, double *maxd, double *rms)
{
    double ss = 0;
    *maxd = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > *maxd) *maxd = d;
        ss += d * d;
    }
    *rms = sqrt(ss / (double)n);
}

/* x[dim] -> logits of one decode row at pos. */
static void step(sp_engine *e, int token, int pos, float *x, float *logits)
{
    sp_error err = {{0}};
    int seq = 0;
    sp_batch b = {1, &seq, &pos};
    cr_assert_eq(sp_embed(e, &token, 1, x, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_forward(e, &b, x, &err), 0, "%s", err.msg);
    sp_head(e, x, 1, logits);
}

/* max_d, max_rms: the bounds at each stored position (MAX_D, MAX_RMS, or
 * tighter where the file allows, see the qwen2 tests) */
static void check_reference(const char *file, const char *name, double max_d, double max_rms)
{
    sp_model *m = open_model(file);
    if (!m) return;
    sp_test_ref r;
    if (sp_test_load_ref(name, &r)) { sp_model_close(m); return; }
    const sp_config *c = &m->cfg;
    int V = c->n_vocab, P = r.n_prompt;
    cr_assert_eq(r.n_logits, (size_t)r.n_rows * V, "%s: %zu logits, expected %d rows of %d", name, r.n_logits,
                 r.n_rows, V);
    sp_error err = {{0}};
    int ctx = P + r.n_greedy + 1;

    /* the prompt in one batch, as the reference computed it */
    sp_engine *e = sp_engine_new(m, 1, P, 1, ctx, &err);
    cr_assert(e, "%s", err.msg);
    float *x = malloc((size_t)P * c->dim * sizeof(float)), *logits = malloc((size_t)P * V * sizeof(float));
    int seq[64] = {0}, pos[64];
    cr_assert(r.n_greedy <= 64);
    for (int i = 0; i < P; i++) pos[i] = i;
    sp_batch b = {P, seq, pos};
    cr_assert_eq(sp_embed(e, r.prompt, P, x, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_forward(e, &b, x, &err), 0, "%s", err.msg);
    sp_head(e, x, P, logits);
    for (int i = 0; i < r.n_rows; i++) {
        double d, rms;
        diff_stats(logits + (size_t)r.rows[i] * V, r.logits + (size_t)i * V, (size_t)V, &d, &rms);
        fprintf(stderr, "%s position %d: max |dlogit| %.4f rms %.5f\n", name, r.rows[i], d, rms);
        cr_expect_leq(d, max_d, "%s position %d: max |dlogit| %.4f > %.3f (rms %.5f)", name, r.rows[i], d, max_d, rms);
        cr_expect_leq(rms, max_rms, "%s position %d: rms |dlogit| %.5f > %.4f", name, r.rows[i], rms, max_rms);
    }

    /* the reference's greedy tokens fed one at a time (the decode path):
     * our argmax equals each until the first step where the streams would
     * part - up to there this is our own greedy decode - and at every step,
     * that one included, the reference's token is within TIE of our best */
    float *last = malloc((size_t)V * sizeof(float));
    memcpy(last, logits + (size_t)(P - 1) * V, (size_t)V * sizeof(float));
    int agreed = -1, exact = 0;
    for (int i = 0; i < r.n_greedy; i++) {
        int t = sp_argmax(last, V);
        exact += t == r.greedy[i];
        if (t != r.greedy[i] && agreed < 0) agreed = i;
        cr_expect_leq(last[t] - last[r.greedy[i]], TIE,
                      "%s step %d: the reference's token %d is %.3f below our best %d: no near-tie", name, i,
                      r.greedy[i], last[t] - last[r.greedy[i]], t);
        if (i + 1 < r.n_greedy) step(e, r.greedy[i], P + i, x, last);
    }
    if (agreed < 0) agreed = r.n_greedy;
    fprintf(stderr, "%s: greedy equal for %d of %d tokens; fed the reference's, %d/%d argmax equal\n",
            name, agreed, r.n_greedy, exact, r.n_greedy);
    sp_engine_free(e);
    free(last); free(x); free(logits); free(r.logits);
    sp_model_close(m);
}

/* qwen2-tiny is Q8_0, which llama.cpp does not repack: its own spread on
 * this file is 0.019 / 0.0038 (flash attention off), and we measure 0.0152 /
 * 0.0035 (fox) and 0.0164 / 0.0037 (once). The random weights make the
 * attention nearly uniform, so the general bounds are too loose to see the
 * RoPE pairing: llama's adjacent pairs instead of NeoX gave 0.040 / 0.0085
 * and 0.045 / 0.0101, inside 0.06 / 0.012. So this file is held to 0.03 /
 * 0.006 (1.6x llama.cpp's own spread), which they fail; leaving the biases
 * out gave 0.21 / 0.047. */
#define Q2_MAX_D 0.03
#define Q2_MAX_RMS 0.006
Test(arch, qwen2_fox_matches_reference)
{
    check_reference("qwen2-tiny-Q8_0.gguf", "qwen2-tiny-Q8_0-fox", Q2_MAX_D, Q2_MAX_RMS);
}
Test(arch, qwen2_once_matches_reference)
{
    check_reference("qwen2-tiny-Q8_0.gguf", "qwen2-tiny-Q8_0-once", Q2_MAX_D, Q2_MAX_RMS);
}
Test(arch, llama3_fox_matches_reference)
{
    check_reference("llama3-tiny-Q4_K_M.gguf", "llama3-tiny-Q4_K_M-fox", MAX_D, MAX_RMS);
}
Test(arch, llama3_chat_matches_reference)
{
    check_reference("llama3-tiny-Q4_K_M.gguf", "llama3-tiny-Q4_K_M-chat", MAX_D, MAX_RMS);
}
Test(arch, qwen3_fox_matches_reference)
{
    check_reference("qwen3-tiny-Q4_K_M.gguf", "qwen3-tiny-Q4_K_M-fox", MAX_D, MAX_RMS);
}
Test(arch, qwen3_chat_matches_reference)
{
    check_reference("qwen3-tiny-Q4_K_M.gguf", "qwen3-tiny-Q4_K_M-chat", MAX_D, MAX_RMS);
}

/* ---- what the config reads from each file ---- */

Test(arch, qwen2_config)
{
    sp_model *m = open_model("qwen2-tiny-Q8_0.gguf");
    if (!m) return;
    const sp_config *c = &m->cfg;
    cr_expect_str_eq(c->arch, "qwen2");
    cr_expect_eq(c->rope_style, SP_ROPE_NEOX);
    cr_expect(c->has_qkv_bias && !c->has_qk_norm && c->tied_output && !c->has_rope_freqs);
    cr_expect_eq(c->head_dim, 64);
    cr_expect_eq(c->q_dim, 256);
    cr_expect_eq(c->kv_dim, 128);
    cr_expect_eq(c->rope_base, 1e6f);
    cr_expect_eq(c->norm_eps, 1e-6f);
    cr_expect(m->layers[0].bq && m->layers[0].bk && m->layers[0].bv && !m->layers[0].q_norm);
    cr_expect_eq(m->output.data, m->tok_embd.data, "tied: the head multiplies by the embedding");
    sp_model_close(m);
}

Test(arch, llama3_config)
{
    sp_model *m = open_model("llama3-tiny-Q4_K_M.gguf");
    if (!m) return;
    const sp_config *c = &m->cfg;
    cr_expect_eq(c->rope_style, SP_ROPE_NORM);
    cr_expect(!c->has_qkv_bias && !c->has_qk_norm && c->tied_output && c->has_rope_freqs);
    cr_expect_eq(c->rope_base, 500000.0f);
    cr_expect_eq(c->head_dim, 64);
    cr_expect_eq(c->kv_dim, 128);
    cr_assert(m->rope_freqs);
    cr_expect_eq(m->rope_freqs[0], 1.0f, "the highest frequencies are not scaled");
    cr_expect_eq(m->rope_freqs[31], 32.0f, "the lowest are divided by the factor 32");
    sp_model_close(m);
}

Test(arch, qwen3_config)
{
    sp_model *m = open_model("qwen3-tiny-Q4_K_M.gguf");
    if (!m) return;
    const sp_config *c = &m->cfg;
    cr_expect_eq(c->rope_style, SP_ROPE_NEOX);
    cr_expect(!c->has_qkv_bias && c->has_qk_norm && c->tied_output && !c->has_rope_freqs);
    cr_expect_eq(c->head_dim, 64);
    cr_expect(m->layers[3].q_norm && m->layers[3].k_norm);
    sp_model_close(m);
}

/* ---- the new operations on hand-computed cases ---- */

/* v = [1 2 3 4 | 5 6 7 8 9 10] (two heads of 5, rope_dim 4; the 5th value
 * of each head is not rotated), pair 0 turned by 90 degrees, pair 1 by 180:
 * adjacent pairs (v0,v1), (v2,v3): (1,2) -> (-2,1), (3,4) -> (-3,-4);
 * NeoX pairs (v0,v2), (v1,v3): (1,3) -> (-3,1), (2,4) -> (-2,-4). */
Test(arch, rope_pairs_adjacent_and_neox)
{
    const float cs[4] = {0, 1, -1, 0}; /* cos, sin of 90 and 180 degrees */
    float a[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, n[10];
    memcpy(n, a, sizeof a);
    sp_rope(a, 2, 5, 4, SP_ROPE_NORM, cs);
    sp_rope(n, 2, 5, 4, SP_ROPE_NEOX, cs);
    const float want_a[10] = {-2, 1, -3, -4, 5, -7, 6, -8, -9, 10};
    const float want_n[10] = {-3, -2, 1, -4, 5, -8, -7, 6, -9, 10};
    for (int i = 0; i < 10; i++) {
        cr_expect_eq(a[i], want_a[i], "adjacent: v[%d] = %g, want %g", i, a[i], want_a[i]);
        cr_expect_eq(n[i], want_n[i], "neox: v[%d] = %g, want %g", i, n[i], want_n[i]);
    }
}

/* theta_i = pos * base^(-2i/rope_dim) / factor_i: rope_dim 4, base 10000,
 * pos 3: theta_0 = 3, theta_1 = 3 / 100 = 0.03; factors {1, 8} divide
 * pair 1's to 0.00375 and leave pair 0's. */
Test(arch, rope_frequency_factors_divide)
{
    float cs[4], f[4];
    const float factors[2] = {1.0f, 8.0f};
    sp_rope_angles(cs, 4, 10000.0f, NULL, 3);
    sp_rope_angles(f, 4, 10000.0f, factors, 3);
    cr_expect_float_eq(cs[0], cosf(3.0f), 1e-7);
    cr_expect_float_eq(cs[1], sinf(3.0f), 1e-7);
    cr_expect_float_eq(cs[2], cosf(0.03f), 1e-7);
    cr_expect_float_eq(cs[3], sinf(0.03f), 1e-7);
    cr_expect_eq(f[0], cs[0]);
    cr_expect_eq(f[1], cs[1]);
    cr_expect_float_eq(f[2], cosf(0.00375f), 1e-7);
    cr_expect_float_eq(f[3], sinf(0.00375f), 1e-7);
    /* pos 0: no rotation whatever the factors */
    sp_rope_angles(f, 4, 10000.0f, factors, 0);
    cr_expect(f[0] == 1 && f[1] == 0 && f[2] == 1 && f[3] == 0);
}

/* Each head is normalised on its own: head 0 = [1 1 1 1] (mean square 1),
 * head 1 = [4 0 0 0] (mean square 4, scale 1/2); the whole row's mean
 * square would be 2.5. Weights [1 2 3 4] multiply every head. */
Test(arch, qk_norm_per_head)
{
    float v[8] = {1, 1, 1, 1, 4, 0, 0, 0};
    const float w[4] = {1, 2, 3, 4};
    const float eps = 1e-6f;
    sp_rmsnorm_heads(v, 2, 4, w, eps);
    float s0 = (float)(1.0 / sqrt(1.0 + eps)), s1 = (float)(1.0 / sqrt(4.0 + eps));
    const float want[8] = {1 * s0, 2 * s0, 3 * s0, 4 * s0, 4 * s1, 0, 0, 0};
    for (int i = 0; i < 8; i++) cr_expect_float_eq(v[i], want[i], 1e-6, "v[%d] = %.7f, want %.7f", i, v[i], want[i]);
    cr_expect_float_eq(v[4], 2.0f, 1e-6);
}

Test(arch, bias_adds)
{
    float v[3] = {1, 2, 3};
    const float b[3] = {0.5f, -2, 0};
    sp_add_bias(v, b, 3);
    cr_expect(v[0] == 1.5f && v[1] == 0 && v[2] == 3);
}

/* ---- against the float64 oracle (tests/oracle.c) ---- */

/* qwen2-tiny's 11-token prompt: the sgemm path (f32 activations) follows
 * the oracle to f32 rounding, the dot path (Q8_0 activations) to the
 * activation quantization; measured 1.3e-6 and 1.75e-2. The oracle takes
 * the architecture's features from the same config, so this holds the
 * engine's arithmetic (biases, NeoX pairs, GQA, tied head) to their
 * definition; that the config gives qwen2 the right features is what the
 * llama.cpp references above show. */
Test(arch, qwen2_matches_float64_oracle)
{
    sp_model *m = open_model("qwen2-tiny-Q8_0.gguf");
    if (!m) return;
    sp_test_ref r;
    if (sp_test_load_ref("qwen2-tiny-Q8_0-once", &r)) { sp_model_close(m); return; }
    double sg = sp_test_oracle_gap(m, r.prompt, r.n_prompt, SP_PATH_SGEMM), dot = sp_test_oracle_gap(m, r.prompt, r.n_prompt, SP_PATH_DOT);
    fprintf(stderr, "qwen2-tiny once vs float64 oracle: sgemm path %.2e, dot path %.2e\n", sg, dot);
    cr_expect_leq(sg, 1e-4, "sgemm path %.2e from the oracle", sg);
    cr_expect_leq(dot, 0.03, "dot path %.2e from the oracle", dot);
    free(r.logits);
    sp_model_close(m);
}

/* ---- small random models of each architecture, head size != dim / heads ---- */

enum { T_DIM = 64, T_HEADS = 4, T_KV = 2, T_HD = 32, T_FFN = 96, T_VOCAB = 40, T_LAYERS = 2, T_CTX = 64 };

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float rnd(float scale) /* uniform in [-scale, scale) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return scale * ((float)(rng_state >> 40) / (float)(1u << 24) * 2.0f - 1.0f);
}

static void add_f32(sp_gguf_writer *w, const char *name, int cols, int rows, float scale, float offset)
{
    size_t n = (size_t)cols * (rows ? rows : 1);
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = offset + rnd(scale);
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    sp_gguf_add_tensor(w, name, SP_DTYPE_F32, rows ? 2 : 1, ne, v);
    free(v);
}

/* Writes a random F32 model of `arch` (dim 64, 4 heads of 32: q_dim 128;
 * 2 KV heads; tied output) with the tensors its features need, plus
 * rope_freqs.weight when freqs (1 .. 16, the 4th = freq3); returns its path. Weights are large enough
 * (+-0.3) that attention is far from uniform, so RoPE matters. */
static const char *write_tiny(const char *arch, bool freqs, float freq3)
{
    char key[128], name[96];
    sp_gguf_writer *w = sp_gguf_writer_new();
    sp_gguf_add_str(w, "general.architecture", arch);
#define KEY(s) (snprintf(key, sizeof key, "%s.%s", arch, s), key)
    sp_gguf_add_u32(w, KEY("embedding_length"), T_DIM);
    sp_gguf_add_u32(w, KEY("block_count"), T_LAYERS);
    sp_gguf_add_u32(w, KEY("attention.head_count"), T_HEADS);
    sp_gguf_add_u32(w, KEY("attention.head_count_kv"), T_KV);
    sp_gguf_add_u32(w, KEY("attention.key_length"), T_HD);
    sp_gguf_add_u32(w, KEY("attention.value_length"), T_HD);
    sp_gguf_add_u32(w, KEY("feed_forward_length"), T_FFN);
    sp_gguf_add_u32(w, KEY("context_length"), T_CTX);
    sp_gguf_add_f32(w, KEY("rope.freq_base"), 10000.0f);
    sp_gguf_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-6f);
#undef KEY
    add_f32(w, "token_embd.weight", T_DIM, T_VOCAB, 1.0f, 0);
    add_f32(w, "output_norm.weight", T_DIM, 0, 0.2f, 1.0f);
    if (freqs) {
        float f[T_HD / 2];
        for (int i = 0; i < T_HD / 2; i++) f[i] = 1.0f + (float)i; /* 1 .. 16 */
        f[3] = freq3;
        uint64_t ne[1] = {T_HD / 2};
        sp_gguf_add_tensor(w, "rope_freqs.weight", SP_DTYPE_F32, 1, ne, f);
    }
    for (int l = 0; l < T_LAYERS; l++) {
#define T(s) (snprintf(name, sizeof name, "blk.%d.%s", l, s), name)
        add_f32(w, T("attn_norm.weight"), T_DIM, 0, 0.2f, 1.0f);
        add_f32(w, T("ffn_norm.weight"), T_DIM, 0, 0.2f, 1.0f);
        add_f32(w, T("attn_q.weight"), T_DIM, T_HEADS * T_HD, 0.3f, 0);
        add_f32(w, T("attn_k.weight"), T_DIM, T_KV * T_HD, 0.3f, 0);
        add_f32(w, T("attn_v.weight"), T_DIM, T_KV * T_HD, 0.3f, 0);
        add_f32(w, T("attn_output.weight"), T_HEADS * T_HD, T_DIM, 0.1f, 0);
        add_f32(w, T("ffn_gate.weight"), T_DIM, T_FFN, 0.2f, 0);
        add_f32(w, T("ffn_up.weight"), T_DIM, T_FFN, 0.2f, 0);
        add_f32(w, T("ffn_down.weight"), T_FFN, T_DIM, 0.1f, 0);
        if (!strcmp(arch, "qwen2")) {
            add_f32(w, T("attn_q.bias"), T_HEADS * T_HD, 0, 0.5f, 0);
            add_f32(w, T("attn_k.bias"), T_KV * T_HD, 0, 0.5f, 0);
            add_f32(w, T("attn_v.bias"), T_KV * T_HD, 0, 0.5f, 0);
        }
        if (!strcmp(arch, "qwen3")) {
            add_f32(w, T("attn_q_norm.weight"), T_HD, 0, 0.5f, 1.0f);
            add_f32(w, T("attn_k_norm.weight"), T_HD, 0, 0.5f, 1.0f);
        }
#undef T
    }
    char file[64];
    snprintf(file, sizeof file, "tiny-%s%s.gguf", arch, freqs ? "-freqs" : "");
    const char *path = sp_test_tmpfile(file);
    sp_error err = {{0}};
    cr_assert_eq(sp_gguf_write(w, path, &err), 0, "%s", err.msg);
    sp_gguf_writer_free(w);
    return path;
}

static uint64_t all_tensor_bytes(const sp_gguf *g)
{
    uint64_t total = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) total += g->tensors[i].nbytes;
    return total;
}

/* logits (n x n_vocab) of layers [first, last] run as separate shards, the
 * hidden states handed from one to the next as a pipeline does */
static float *run_split(const char *path, int cut, const int *toks, int n)
{
    sp_error err = {{0}};
    sp_model *a = sp_model_open(path, 0, cut, true, false, &err), *b = sp_model_open(path, cut + 1, T_LAYERS - 1, false, true, &err);
    cr_assert(a && b, "%s", err.msg);
    sp_engine *ea = sp_engine_new(a, 1, n, 1, n, &err), *eb = sp_engine_new(b, 1, n, 1, n, &err);
    cr_assert(ea && eb, "%s", err.msg);
    float *x = malloc((size_t)n * T_DIM * sizeof(float)), *logits = malloc((size_t)n * T_VOCAB * sizeof(float));
    int seq[64] = {0}, pos[64];
    for (int i = 0; i < n; i++) pos[i] = i;
    sp_batch bt = {n, seq, pos};
    cr_assert_eq(sp_embed(ea, toks, n, x, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_forward(ea, &bt, x, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_forward(eb, &bt, x, &err), 0, "%s", err.msg);
    sp_head(eb, x, n, logits);
    sp_engine_free(ea); sp_engine_free(eb);
    sp_model_close(a); sp_model_close(b);
    free(x);
    return logits;
}

static void check_tiny(const char *arch, bool freqs)
{
    const char *path = write_tiny(arch, freqs, 4.0f);
    sp_error err = {{0}};
    sp_model *m = sp_model_open_full(path, &err);
    cr_assert(m, "%s", err.msg);
    const sp_config *c = &m->cfg;
    cr_expect_eq(c->head_dim, T_HD, "head size from key_length, not dim / heads (%d)", T_DIM / T_HEADS);
    cr_expect_eq(c->q_dim, T_HEADS * T_HD);
    cr_expect_eq(c->kv_dim, T_KV * T_HD);
    cr_expect_eq(c->has_rope_freqs, freqs);
    cr_expect_eq(!!m->rope_freqs, freqs);
    /* memory estimates: every tensor of the file, and the KV cache at kv_dim */
    cr_expect_eq(sp_shard_weight_bytes(m->gguf, c, 0, T_LAYERS - 1, true, true), all_tensor_bytes(m->gguf));
    cr_expect_eq(sp_kv_bytes(c, T_LAYERS, 3, T_CTX), 2ull * T_LAYERS * 3 * T_CTX * (T_KV * T_HD) * 2);

    int toks[24];
    for (int i = 0; i < 24; i++) toks[i] = (i * 7 + 3) % T_VOCAB;
    double sg = sp_test_oracle_gap(m, toks, 24, SP_PATH_SGEMM), dot = sp_test_oracle_gap(m, toks, 24, SP_PATH_DOT);
    fprintf(stderr, "tiny %s%s vs float64 oracle: sgemm %.2e, dot %.2e\n", arch, freqs ? " + rope_freqs" : "", sg, dot);
    /* logits here are O(10): measured 5e-6 (qwen2), 2.1e-3 (qwen3), 3.1e-3
     * (llama + rope_freqs), the last two from values within an ulp of an
     * fp16 rounding boundary that f32 and double round apart; leaving out
     * the head norm or the frequency factors, or swapping the RoPE pairing,
     * moved them by 9-12 */
    cr_expect_leq(sg, 1e-2, "%s: sgemm path %.2e from the oracle", arch, sg);
    cr_expect_leq(dot, 1e-2, "%s: dot path %.2e from the oracle", arch, dot);

    /* a pipeline of two shards gives the bits of the whole model */
    sp_engine *e = sp_engine_new(m, 1, 24, 1, 24, &err);
    cr_assert(e, "%s", err.msg);
    float *x = malloc(24 * T_DIM * sizeof(float)), *whole = malloc(24 * T_VOCAB * sizeof(float));
    int seq[24] = {0}, pos[24];
    for (int i = 0; i < 24; i++) pos[i] = i;
    sp_batch b = {24, seq, pos};
    cr_assert_eq(sp_embed(e, toks, 24, x, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_forward(e, &b, x, &err), 0, "%s", err.msg);
    sp_head(e, x, 24, whole);
    float *split = run_split(path, 0, toks, 24);
    cr_expect_eq(memcmp(whole, split, 24 * T_VOCAB * sizeof(float)), 0, "%s: layers [0,0] + [1,1] differ from [0,1]", arch);
    free(split); free(whole); free(x);
    sp_engine_free(e);
    sp_model_close(m);
}

Test(arch, tiny_qwen2_head_dim_not_dim_over_heads) { check_tiny("qwen2", false); }
Test(arch, tiny_qwen3_head_dim_not_dim_over_heads) { check_tiny("qwen3", false); }
Test(arch, tiny_llama_rope_freqs) { check_tiny("llama", true); }

/* The error for an architecture that does not run names it, the file, and
 * exactly what runs. */
Test(arch, unsupported_arch_error)
{
    const char *names[2] = {"qwen3moe", "gemma2"};
    for (int k = 0; k < 2; k++) {
        sp_gguf_writer *w = sp_gguf_writer_new();
        sp_gguf_add_str(w, "general.architecture", names[k]);
        add_f32(w, "token_embd.weight", T_DIM, T_VOCAB, 1.0f, 0);
        const char *path = sp_test_tmpfile(names[k]);
        sp_error err = {{0}};
        cr_assert_eq(sp_gguf_write(w, path, &err), 0, "%s", err.msg);
        sp_gguf_writer_free(w);
        sp_model *m = sp_model_open_full(path, &err);
        cr_assert_null(m);
        cr_log_info("%s", err.msg);
        cr_expect(strstr(err.msg, path) && strstr(err.msg, names[k]) && strstr(err.msg, "not supported"), "%s", err.msg);
        cr_expect(strstr(err.msg, "'llama'") && strstr(err.msg, "'qwen2'") && strstr(err.msg, "'qwen3'"), "%s", err.msg);
        cr_expect(!strstr(err.msg, "'qwen3moe' ("), "qwen3moe must not be listed as running: %s", err.msg);
        if (k == 0) cr_expect(strstr(err.msg, "mixture-of-experts"), "%s", err.msg);
    }
}

Test(arch, bad_rope_freqs_refused)
{
    const char *path = write_tiny("llama", true, 0.0f);
    sp_error err = {{0}};
    sp_model *m = sp_model_open_full(path, &err);
    cr_assert_null(m, "a zero frequency factor (a division by zero) must be refused");
    cr_expect(strstr(err.msg, path) && strstr(err.msg, "rope_freqs.weight") && strstr(err.msg, "value 3"), "%s",
              err.msg);
}
