/* test_split.c - `shardpipe split`'s shard files: a pipeline of engines over
 * the shard files (each opened as its stage's layers, as a rank would) gives
 * the logits of the whole file bit for bit, for stories260K (F32, its own
 * output matrix) through a plan, and for a tied Q4_0 model; the content
 * identity of a stage is the same in the shard file and the whole file and
 * changes with a weight byte; a shard refuses layers it does not hold, and
 * a shard cannot be split again. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/model.h"
#include "shardpipe/plan.h"
#include "shardpipe/shardfile.h"
#include "shardpipe/synth.h"
#include "testutil.h"

static const int toks[] = {1, 403, 407, 261, 378, 0, 11, 300, 42};
#define NT ((int)(sizeof toks / sizeof toks[0]))

/* Logits of every position of toks through the stages' files in order:
 * stage i opens paths[i] as layers [first[i], last[i]], the first with the
 * embedding and the last with the head, as `run` binds a rank's shard. */
static float *chain_logits(int n, const char *const *paths, const int *first, const int *last)
{
    sp_error err = {{0}};
    float *x = NULL, *logits = NULL;
    for (int i = 0; i < n; i++) {
        sp_model *m = sp_model_open(paths[i], first[i], last[i], i == 0, i == n - 1, &err);
        cr_assert(m, "%s", err.msg);
        sp_engine *e = sp_engine_new(m, 2, NT, 1, 64, &err);
        cr_assert(e, "%s", err.msg);
        int dim = m->cfg.dim, seq[NT], pos[NT];
        for (int t = 0; t < NT; t++) seq[t] = 0, pos[t] = t;
        if (!x) {
            x = calloc((size_t)NT * dim, sizeof *x);
            cr_assert_eq(sp_embed(e, toks, NT, x, &err), 0, "%s", err.msg);
        }
        sp_batch b = {NT, seq, pos};
        cr_assert_eq(sp_forward(e, &b, x, &err), 0, "%s", err.msg);
        if (i == n - 1) {
            logits = calloc((size_t)NT * m->cfg.n_vocab, sizeof *logits);
            sp_head(e, x, NT, logits);
        }
        sp_engine_free(e);
        sp_model_close(m);
    }
    free(x);
    return logits;
}

static void expect_same(const float *a, const float *b, size_t n, const char *what)
{
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += memcmp(&a[i], &b[i], sizeof *a) != 0;
    cr_expect_eq(diff, 0, "%s: %zu of %zu logits differ between the shard files and the whole file", what, diff, n);
}

Test(split, plan_shards_equal_the_whole_file)
{
    const char *model = sp_test_shared("models/stories260K.gguf");
    if (!model) return;
    static sp_plan plan, back;
    sp_error err = {{0}};
    cr_assert_eq(sp_plan_load(SP_SOURCE_DIR "/partitions/stories260K-3stages.yaml", &plan, &err), 0, "%s", err.msg);
    snprintf(plan.model_path, sizeof plan.model_path, "%s", model); /* the shared copy, wherever it is */
    const char *dir = sp_test_tmpfile("split3");
    uint64_t bytes[SP_PLAN_MAX_STAGES] = {0};
    cr_assert_eq(sp_plan_split(&plan, dir, model, bytes, &err), 0, "%s", err.msg);

    char plan_path[512];
    snprintf(plan_path, sizeof plan_path, "%s/plan.yaml", dir);
    cr_assert_eq(sp_plan_load(plan_path, &back, &err), 0, "%s", err.msg);
    cr_assert_eq(back.n_stages, 3);
    const char *paths[3];
    int first[3], last[3];
    uint64_t sum = 0;
    for (int i = 0; i < 3; i++) {
        paths[i] = sp_plan_stage_model(&back, i);
        char want[64];
        snprintf(want, sizeof want, "/stage-%d.gguf", i);
        cr_expect(strstr(paths[i], want), "stage %d runs %s", i, paths[i]);
        first[i] = back.stages[i].first;
        last[i] = back.stages[i].last;
        sum += bytes[i];
    }
    /* each shard holds only its share: together about one model (each
     * repeats the metadata and tokenizer), none of them the whole */
    size_t full_len;
    void *full = sp_test_read_file(model, &full_len);
    for (int i = 0; i < 3; i++) cr_expect_lt(bytes[i], full_len * 3 / 4, "stage %d is %llu bytes", i,
                                              (unsigned long long)bytes[i]);
    cr_expect_lt(sum, full_len * 3 / 2);
    free(full);

    float *a = chain_logits(3, paths, first, last);
    const char *whole[1] = {model};
    int f0 = 0, l0 = SP_TO_LAST_LAYER;
    float *b = chain_logits(1, whole, &f0, &l0);
    expect_same(a, b, (size_t)NT * 512, "stories260K in 3 shards");
    free(a);
    free(b);

    /* the content identity is the file's whatever file holds the stage */
    sp_gguf *whole_g = sp_gguf_open(model, &err);
    cr_assert(whole_g, "%s", err.msg);
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        sp_gguf *sg = sp_gguf_open(paths[i], &err);
        cr_assert(sg, "%s", err.msg);
        ids[i] = sp_shard_content_hash(whole_g, first[i], last[i], i == 0, i == 2);
        cr_expect_eq(sp_shard_content_hash(sg, first[i], last[i], i == 0, i == 2), ids[i],
                     "stage %d: the shard file and the whole file give different identities", i);
        sp_gguf_close(sg);
    }
    cr_expect_neq(ids[0], ids[1]);
    cr_expect_neq(ids[1], ids[2]);
    sp_gguf_close(whole_g);
    /* one byte of a weight changed: another identity */
    size_t n1;
    unsigned char *b1 = sp_test_read_file(paths[1], &n1);
    cr_assert(b1);
    b1[n1 - 5] ^= 0x40;
    const char *bad = sp_test_tmpfile("bad-stage-1.gguf");
    FILE *f = fopen(bad, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(b1, 1, n1, f), n1);
    fclose(f);
    free(b1);
    sp_gguf *bg = sp_gguf_open(bad, &err);
    cr_assert(bg, "%s", err.msg);
    cr_expect_neq(sp_shard_content_hash(bg, 2, 2, false, false), ids[1], "a changed weight byte went unseen");
    sp_gguf_close(bg);

    /* a shard refuses what it does not hold, by name */
    sp_model *m = sp_model_open(paths[1], 0, 2, false, false, &err);
    cr_expect_null(m);
    cr_expect(strstr(err.msg, "is a shard of layers 2-2"), "%s", err.msg);
    m = sp_model_open(paths[2], 3, 4, true, true, &err);
    cr_expect_null(m);
    cr_expect(strstr(err.msg, "cannot run layers 3-4 with the embedding"), "%s", err.msg);
    /* and is not split again */
    sp_gguf *g = sp_gguf_open(paths[1], &err);
    cr_assert(g, "%s", err.msg);
    cr_expect_neq(sp_shard_write(g, 2, 2, false, false, sp_test_tmpfile("again.gguf"), &err), 0);
    cr_expect(strstr(err.msg, "already a shard (layers 2-2)"), "%s", err.msg);
    sp_gguf_close(g);
}

Test(split, tied_quantized_model)
{
    sp_synth_spec s;
    sp_error err = {{0}};
    cr_assert_eq(sp_synth_shape("tiny", &s, &err), 0, "%s", err.msg);
    s.n_layers = 4;
    s.ctx = 64;
    s.type = SP_DTYPE_Q4_0;
    s.embd_type = SP_DTYPE_Q8_0;
    s.tied = 1;
    s.seed = 7;
    const char *model = sp_test_tmpfile("tied.gguf");
    cr_assert_eq(sp_synth_write(&s, model, &err), 0, "%s", err.msg);
    sp_gguf *g = sp_gguf_open(model, &err);
    cr_assert(g, "%s", err.msg);
    const int first[2] = {0, 3}, last[2] = {2, 3};
    const char *paths[2] = {sp_test_tmpfile("t0.gguf"), sp_test_tmpfile("t1.gguf")};
    char p0[512], p1[512];
    snprintf(p0, sizeof p0, "%s", paths[0]);
    snprintf(p1, sizeof p1, "%s", paths[1]);
    paths[0] = p0;
    paths[1] = p1;
    for (int i = 0; i < 2; i++)
        cr_assert_eq(sp_shard_write(g, first[i], last[i], i == 0, i == 1, paths[i], &err), 0, "%s", err.msg);
    sp_gguf_close(g);

    /* the last stage holds the tied embedding as its output matrix */
    sp_gguf *g1 = sp_gguf_open(p1, &err);
    cr_assert(g1, "%s", err.msg);
    cr_expect(sp_gguf_find_tensor(g1, "token_embd.weight"), "the tied head needs token_embd");
    cr_expect_null(sp_gguf_find_tensor(g1, "blk.0.attn_q.weight"));
    sp_shard_info sh;
    cr_assert_eq(sp_shard_info_read(g1, &sh, &err), 0, "%s", err.msg);
    cr_expect(sh.is_shard && sh.first == 3 && sh.last == 3 && sh.head && !sh.embed && sh.tied_output);
    sp_gguf *gw = sp_gguf_open(model, &err);
    cr_assert(gw, "%s", err.msg);
    cr_expect_eq(sp_shard_content_hash(g1, 3, 3, false, true), sp_shard_content_hash(gw, 3, 3, false, true),
                 "the tied head's shard and the whole file give different identities");
    sp_gguf_close(gw);
    sp_gguf_close(g1);

    float *a = chain_logits(2, paths, first, last);
    const char *whole[1] = {model};
    int f0 = 0, l0 = SP_TO_LAST_LAYER;
    float *b = chain_logits(1, whole, &f0, &l0);
    expect_same(a, b, (size_t)NT * s.n_vocab, "tied Q4_0 in 2 shards");
    free(a);
    free(b);
}
