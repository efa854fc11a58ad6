/* test_plan.c - partition plans.
 *
 * The invalid corpus (tests/plans/invalid/NAME.yaml): each file starts with
 * comment lines saying what must happen:
 *   # expect: SUBSTRING    of the error message
 *   # at: LINE:COL         the message starts with FILE:LINE:COL: (optional)
 *   # model: NAME          the error comes from sp_plan_check_model against
 *                          shared/models/NAME.gguf (the test skips without it)
 *   # world: N             the error comes from sp_plan_check_world(N)
 *                          (then sp_plan_check_sha256)
 * Every plan in partitions/ must load, fit its world and, for the shared
 * models, pass sp_plan_check_model (and sp_plan_check_sha256). Then: write -> load round trips and the
 * memory estimate against its formula. */
#include <criterion/criterion.h>
#include <math.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shardpipe/plan.h"
#include "testutil.h"

#define INVALID_DIR SP_SOURCE_DIR "/tests/plans/invalid"
#define PARTITIONS_DIR SP_SOURCE_DIR "/partitions"

typedef struct expectation {
    char expect[512];
    char model[64];
    int world;
    int line, col; /* 0 when the file gives no `# at:` */
} expectation;

static void read_expectation(const char *path, expectation *e)
{
    memset(e, 0, sizeof *e);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    char line[1024];
    while (fgets(line, sizeof line, f) && line[0] == '#') {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "# expect: ", 10)) snprintf(e->expect, sizeof e->expect, "%.500s", line + 10);
        else if (!strncmp(line, "# model: ", 9)) snprintf(e->model, sizeof e->model, "%.60s", line + 9);
        else if (!strncmp(line, "# world: ", 9)) e->world = atoi(line + 9);
        else if (!strncmp(line, "# at: ", 6)) cr_assert_eq(sscanf(line + 6, "%d:%d", &e->line, &e->col), 2, "%s", path);
    }
    fclose(f);
    cr_assert(e->expect[0], "%s has no `# expect:` line", path);
}

/* Sorted *.yaml paths of a folder; returns the count. */
static int list_yaml(const char *dir, char paths[][512], int max)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        size_t len = strlen(de->d_name);
        if (len > 5 && !strcmp(de->d_name + len - 5, ".yaml")) snprintf(paths[n++], 512, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    qsort(paths, (size_t)n, 512, (int (*)(const void *, const void *))strcmp);
    return n;
}

static void assert_message(const char *path, const expectation *e, const sp_error *err)
{
    cr_expect(strstr(err->msg, e->expect), "%s:\n  expected a message containing: %s\n  got: %s", path, e->expect,
              err->msg);
    char prefix[600];
    if (e->line) snprintf(prefix, sizeof prefix, "%s:%d:%d: ", path, e->line, e->col);
    else snprintf(prefix, sizeof prefix, "%s:", path);
    cr_expect(!strncmp(err->msg, prefix, strlen(prefix)), "%s: message must start with '%s', got: %s", path, prefix,
              err->msg);
}

static char files[128][512];
static sp_plan plan, plan2; /* big: keep them off the stack */

Test(plan, invalid_corpus_schema_errors)
{
    int n = list_yaml(INVALID_DIR, files, 128);
    cr_assert_geq(n, 25, "the invalid corpus should hold at least 25 cases, found %d", n);
    int checked = 0;
    for (int i = 0; i < n; i++) {
        expectation e;
        read_expectation(files[i], &e);
        if (e.model[0] || e.world) continue;
        sp_error err = {{0}};
        int rc = sp_plan_load(files[i], &plan, &err);
        cr_expect_eq(rc, -1, "%s: sp_plan_load accepted an invalid plan", files[i]);
        if (rc == -1) assert_message(files[i], &e, &err);
        checked++;
    }
    cr_assert_geq(checked, 25, "only %d schema cases", checked);
}

Test(plan, invalid_corpus_world_errors)
{
    int n = list_yaml(INVALID_DIR, files, 128), checked = 0;
    for (int i = 0; i < n; i++) {
        expectation e;
        read_expectation(files[i], &e);
        if (!e.world) continue;
        sp_error err = {{0}};
        cr_assert_eq(sp_plan_load(files[i], &plan, &err), 0, "%s: %s", files[i], err.msg);
        cr_expect_eq(sp_plan_check_world(&plan, e.world, &err), -1, "%s: world check passed", files[i]);
        assert_message(files[i], &e, &err);
        checked++;
    }
    cr_assert_geq(checked, 3);
}

Test(plan, invalid_corpus_model_errors)
{
    int n = list_yaml(INVALID_DIR, files, 128), checked = 0;
    for (int i = 0; i < n; i++) {
        expectation e;
        read_expectation(files[i], &e);
        if (!e.model[0] || e.world) continue;
        char rel[128];
        snprintf(rel, sizeof rel, "models/%s.gguf", e.model);
        const char *model = sp_test_shared(rel);
        if (!model) return;
        sp_error err = {{0}};
        cr_assert_eq(sp_plan_load(files[i], &plan, &err), 0, "%s: %s", files[i], err.msg);
        snprintf(plan.model_path, sizeof plan.model_path, "%s", model);
        sp_gguf *g = sp_gguf_open(model, &err);
        cr_assert_not_null(g, "%s", err.msg);
        sp_config cfg;
        cr_assert_eq(sp_config_read(g, &cfg, &err), 0, "%s", err.msg);
        /* in the order `shardpipe check` and `shardpipe run` apply them */
        int rc = sp_plan_check_model(&plan, g, &cfg, &err);
        if (!rc) rc = sp_plan_check_sha256(&plan, &err);
        cr_expect_eq(rc, -1, "%s: model check passed", files[i]);
        assert_message(files[i], &e, &err);
        sp_gguf_close(g);
        checked++;
    }
    cr_assert_geq(checked, 6);
}

/* A few messages in full, so that the wording itself is pinned down. */
Test(plan, exact_messages)
{
    sp_error err = {{0}};
    cr_assert_eq(sp_plan_load(INVALID_DIR "/unknown-key-stage.yaml", &plan, &err), -1);
    cr_expect_str_eq(err.msg, INVALID_DIR "/unknown-key-stage.yaml:7:1: unknown key 'stage' at the top level (did "
                              "you mean 'stages'?); the keys allowed here are model, context, batching, wire, predicted_tok_s, stages");
    cr_assert_eq(sp_plan_load(INVALID_DIR "/threads-zero.yaml", &plan, &err), -1);
    cr_expect_str_eq(err.msg, INVALID_DIR "/threads-zero.yaml:10:14: threads must be between 1 and 256, got 0; give "
                              "the number of cores this rank may use, e.g. 4");
    cr_assert_eq(sp_plan_load(INVALID_DIR "/duplicate-key.yaml", &plan, &err), -1);
    cr_expect(strstr(err.msg, "(first at line 6)"), "%s", err.msg);
}

static int max_rank(const sp_plan *p)
{
    int m = 0;
    for (int i = 0; i < p->n_stages; i++)
        if (p->stages[i].rank > m) m = p->stages[i].rank;
    return m;
}

Test(plan, shipped_plans_load_and_fit_their_world)
{
    int n = list_yaml(PARTITIONS_DIR, files, 128);
    cr_assert_geq(n, 10, "partitions/ should hold at least 10 plans, found %d", n);
    for (int i = 0; i < n; i++) {
        sp_error err = {{0}};
        cr_expect_eq(sp_plan_load(files[i], &plan, &err), 0, "%s", err.msg);
        int world = max_rank(&plan) + 1;
        cr_expect_eq(sp_plan_check_world(&plan, world, &err), 0, "%s", err.msg);
        cr_expect_eq(sp_plan_check_world(&plan, world + 1, &err), -1, "%s: world %d accepted", files[i], world + 1);
    }
}

Test(plan, shipped_plans_pass_their_model)
{
    int n = list_yaml(PARTITIONS_DIR, files, 128), checked = 0, sha_checked = 0, missing = 0;
    for (int i = 0; i < n; i++) {
        sp_error err = {{0}};
        cr_assert_eq(sp_plan_load(files[i], &plan, &err), 0, "%s", err.msg);
        const char *in_shared = strstr(plan.model_path, "shared/models/");
        const char *shipped = strstr(plan.model_path, "/../models/"); /* stories260K in models/ */
        if (!in_shared && !shipped) continue; /* board examples: the model is not shipped */
        char rel[128];
        snprintf(rel, sizeof rel, "models/%s",
                 in_shared ? in_shared + strlen("shared/models/") : shipped + strlen("/../models/"));
        /* stories260K ships in models/; the plans of the other shared models
         * are checked where ../shared is (each missing one says so) */
        char where[1024];
        const char *root = getenv("SP_SHARED");
        snprintf(where, sizeof where, "%s/%s", root && *root ? root : SP_SHARED_DIR, rel);
        if (strcmp(rel, "models/stories260K.gguf") && access(where, R_OK) != 0) {
            fprintf(stderr, "SKIP: %s needs %s, which is missing (../shared)\n", files[i], where);
            missing++;
            continue;
        }
        const char *model = sp_test_shared(rel);
        if (!model) return;
        sp_gguf *g = sp_gguf_open(model, &err);
        cr_assert_not_null(g, "%s", err.msg);
        sp_config cfg;
        cr_assert_eq(sp_config_read(g, &cfg, &err), 0, "%s", err.msg);
        cr_expect_eq(sp_plan_check_model(&plan, g, &cfg, &err), 0, "%s", err.msg);
        /* those that give model.sha256 name the shared file exactly */
        snprintf(plan.model_path, sizeof plan.model_path, "%s", model);
        cr_expect_eq(sp_plan_check_sha256(&plan, &err), 0, "%s", err.msg);
        sha_checked += plan.model_sha256[0] != '\0';
        sp_gguf_close(g);
        checked++;
    }
    cr_assert_geq(checked + missing, 8, "only %d plans for the shared models", checked + missing);
    cr_assert_geq(checked, 4, "only %d plans for stories260K", checked);
    cr_assert_geq(sha_checked, 1, "no shipped plan gives model.sha256");
}

Test(plan, defaults_shorthand_and_relative_model_path)
{
    sp_error err = {{0}};
    cr_assert_eq(sp_plan_load(PARTITIONS_DIR "/stories260K-4ranks-coordinator.yaml", &plan, &err), 0, "%s", err.msg);
    cr_expect_str_eq(plan.model_path, PARTITIONS_DIR "/../models/stories260K.gguf");
    cr_expect_eq(plan.n_stages, 3);
    cr_expect_eq(plan.stages[2].first, 4, "`layers: 4` is [4, 4]");
    cr_expect_eq(plan.stages[2].last, 4);
    cr_expect_eq(plan.stages[0].threads, 0, "threads defaults to 0: the rank's CPUs");
    cr_expect_eq(plan.stages[0].memory_budget, 0);
    cr_expect_eq(sp_plan_stage_of_rank(&plan, 0), -1, "rank 0 is coordinator-only");
    cr_expect_eq(sp_plan_stage_of_rank(&plan, 3), 2);
    cr_expect_eq(plan.stages[1].loc_layers.line, 19);
    cr_expect_eq(plan.stages[1].loc_layers.col, 13);

    cr_assert_eq(sp_plan_load(PARTITIONS_DIR "/stories260K-3stages.yaml", &plan, &err), 0, "%s", err.msg);
    cr_expect_eq(plan.wire, SP_WIRE_F32, "wire defaults to f32");
    cr_expect_str_eq(plan.model_sha256, "");

    cr_assert_eq(sp_plan_load(PARTITIONS_DIR "/tinyllama-1.1b-q4_0-4x-pi5.yaml", &plan, &err), 0, "%s", err.msg);
    cr_expect_eq(plan.stages[3].memory_budget, 7ull << 30);
    cr_expect_eq(plan.wire, SP_WIRE_F16);
    cr_expect_eq(plan.stages[3].threads, 4);
}

/* model.sha256: the right checksum (in either case of hex digits) passes,
 * one differing digit fails at the sha256 value's line:col, naming both. */
Test(plan, model_sha256_is_checked)
{
    const char *model = sp_test_shared("models/stories260K.gguf");
    if (!model) return;
    static const char *right = "5a9d168bd9d9e29302e0d604e9a4c97184057ad87661cd7e7cc4318fdeba6d9c";
    static const char *wrong = "5a9d168bd9d9e29302e0d604e9a4c97184057ad87661cd7e7cc4318fdeba6d9d";
    const char *yaml = sp_test_tmpfile("sha.yaml");
    const char *sums[] = {right, "5A9D168BD9D9E29302E0D604E9A4C97184057AD87661CD7E7CC4318FDEBA6D9C", wrong};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(yaml, "w");
        cr_assert_not_null(f);
        fprintf(f, "model:\n  path: %s\n  sha256: %s\ncontext: 64\nstages:\n  - rank: 0\n    host: a\n"
                   "    layers: [0, 4]\n", model, sums[i]);
        fclose(f);
        sp_error err = {{0}};
        cr_assert_eq(sp_plan_load(yaml, &plan, &err), 0, "%s", err.msg);
        cr_expect_eq(plan.loc_sha256.line, 3);
        cr_expect_eq(plan.loc_sha256.col, 11);
        if (i < 2) {
            cr_expect_eq(sp_plan_check_sha256(&plan, &err), 0, "%s", err.msg);
            continue;
        }
        cr_assert_eq(sp_plan_check_sha256(&plan, &err), -1, "a wrong sha256 passed");
        char want[1024];
        snprintf(want, sizeof want,
                 "%s:3:11: model %s has sha256 %s, but the plan expects %s; the file differs from the one the plan "
                 "was made for (re-download it, or update or remove model.sha256)",
                 yaml, model, right, wrong);
        cr_expect_str_eq(err.msg, want);
    }

    /* no sha256: nothing to check (the file is not read at all) */
    sp_error err = {{0}};
    cr_assert_eq(sp_plan_load(PARTITIONS_DIR "/stories260K-3stages.yaml", &plan, &err), 0, "%s", err.msg);
    cr_assert_str_eq(plan.model_sha256, "");
    snprintf(plan.model_path, sizeof plan.model_path, "%s", sp_test_tmpfile("absent.gguf"));
    cr_expect_eq(sp_plan_check_sha256(&plan, &err), 0, "%s", err.msg);
    /* with one, an unreadable file is an error at the sha256's place */
    snprintf(plan.model_sha256, sizeof plan.model_sha256, "%s", right);
    plan.loc_sha256 = (sp_plan_loc){3, 11};
    cr_expect_eq(sp_plan_check_sha256(&plan, &err), -1);
    cr_expect(strstr(err.msg, ":3:11: ") && strstr(err.msg, ": cannot open "), "%s", err.msg);
    cr_expect(strstr(err.msg, "absent.gguf"), "%s", err.msg);
}

Test(plan, wire_names)
{
    cr_expect_str_eq(sp_wire_name(SP_WIRE_F32), "f32");
    cr_expect_str_eq(sp_wire_name(SP_WIRE_F16), "f16");
    cr_expect_str_eq(sp_wire_name(SP_WIRE_Q8_0), "q8_0");
}

static void assert_same_plan(const sp_plan *a, const sp_plan *b)
{
    cr_expect_str_eq(a->model_path, b->model_path);
    cr_expect_str_eq(a->model_sha256, b->model_sha256);
    cr_expect_eq(a->context, b->context);
    cr_expect_eq(a->sequences, b->sequences);
    cr_expect_eq(a->micro_batches, b->micro_batches);
    cr_expect_eq(a->prefill_chunk, b->prefill_chunk);
    cr_expect_eq(a->wire, b->wire);
    cr_expect(fabs(a->predicted_tok_s - b->predicted_tok_s) <= 0.005, "predicted_tok_s %g vs %g",
              a->predicted_tok_s, b->predicted_tok_s);
    cr_assert_eq(a->n_stages, b->n_stages);
    for (int i = 0; i < a->n_stages; i++) {
        const sp_stage_plan *x = &a->stages[i], *y = &b->stages[i];
        cr_expect_eq(x->rank, y->rank, "stage %d", i);
        cr_expect_str_eq(x->host, y->host, "stage %d", i);
        cr_expect_eq(x->first, y->first, "stage %d", i);
        cr_expect_eq(x->last, y->last, "stage %d", i);
        cr_expect_eq(x->threads, y->threads, "stage %d", i);
        cr_expect_eq(x->memory_budget, y->memory_budget, "stage %d: %llu vs %llu", i,
                     (unsigned long long)x->memory_budget, (unsigned long long)y->memory_budget);
    }
}

Test(plan, write_then_load_round_trips)
{
    sp_error err = {{0}};
    cr_assert_eq(sp_plan_load(PARTITIONS_DIR "/stories260K-2stages.yaml", &plan, &err), 0, "%s", err.msg);
    /* written as given: make it absolute so it resolves the same from tmp */
    snprintf(plan.model_path, sizeof plan.model_path, "/models/my model #1.gguf");
    snprintf(plan.model_sha256, sizeof plan.model_sha256, "%064d", 7);
    plan.wire = SP_WIRE_Q8_0;
    plan.sequences = 5;
    plan.micro_batches = 3;
    plan.prefill_chunk = 17;
    plan.predicted_tok_s = 46.53;
    plan.stages[0].memory_budget = 3758096384ull; /* 3.5 GiB */
    plan.stages[1].memory_budget = 1000001;       /* no unit fits: bytes */
    plan.stages[1].first = plan.stages[1].last = 3;
    plan.stages[1].threads = 3;
    const char *comments[] = {"stage 0: embedding\nand layers 0..2", NULL};
    const char *out = sp_test_tmpfile("round.yaml");
    cr_assert_eq(sp_plan_write(&plan, out, "written by test_plan\n\nsecond paragraph", comments, &err), 0, "%s",
                 err.msg);
    size_t len;
    char *text = sp_test_read_file(out, &len);
    cr_assert_not_null(text);
    cr_expect(strstr(text, "# written by test_plan\n#\n# second paragraph\n"), "%s", text);
    cr_expect(strstr(text, "  # stage 0: embedding\n  # and layers 0..2\n  - rank: 0\n"), "%s", text);
    cr_expect(strstr(text, "memory: 3.5GiB"), "%s", text);
    cr_expect(strstr(text, "\npredicted_tok_s: 46.53 "), "%s", text);
    cr_expect(strstr(text, "layers: 3\n"), "one-layer stages use the shorthand: %s", text);
    free(text);
    cr_assert_eq(sp_plan_load(out, &plan2, &err), 0, "%s", err.msg);
    assert_same_plan(&plan, &plan2);

    /* every shipped plan survives a round trip too */
    int n = list_yaml(PARTITIONS_DIR, files, 128);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(sp_plan_load(files[i], &plan, &err), 0, "%s", err.msg);
        snprintf(plan.model_path, sizeof plan.model_path, "/abs/model.gguf");
        cr_assert_eq(sp_plan_write(&plan, out, NULL, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(sp_plan_load(out, &plan2, &err), 0, "%s: %s", files[i], err.msg);
        assert_same_plan(&plan, &plan2);
    }
}

Test(plan, write_to_missing_folder_fails_cleanly)
{
    sp_error err = {{0}};
    cr_assert_eq(sp_plan_load(PARTITIONS_DIR "/stories260K-1stage.yaml", &plan, &err), 0, "%s", err.msg);
    cr_expect_eq(sp_plan_write(&plan, "/nonexistent-dir/x.yaml", NULL, NULL, &err), -1);
    cr_expect(strstr(err.msg, "/nonexistent-dir/x.yaml.XXXXXX"), "%s", err.msg);
}

Test(plan, max_rows)
{
    memset(&plan, 0, sizeof plan);
    plan.sequences = 8, plan.micro_batches = 3, plan.prefill_chunk = 1;
    cr_expect_eq(sp_plan_max_rows(&plan), 3, "ceil(8 / 3) decode rows");
    plan.prefill_chunk = 32;
    cr_expect_eq(sp_plan_max_rows(&plan), 32, "prefill chunk dominates");
}

Test(plan, memory_estimate_and_budget)
{
    const char *model = sp_test_shared("models/stories260K.gguf");
    if (!model) return;
    sp_error err = {{0}};
    cr_assert_eq(sp_plan_load(PARTITIONS_DIR "/stories260K-2stages.yaml", &plan, &err), 0, "%s", err.msg);
    sp_gguf *g = sp_gguf_open(model, &err);
    cr_assert_not_null(g, "%s", err.msg);
    sp_config cfg;
    cr_assert_eq(sp_config_read(g, &cfg, &err), 0, "%s", err.msg);

    uint64_t weights = 0;
    int rows = sp_plan_max_rows(&plan);
    for (int i = 0; i < plan.n_stages; i++) {
        const sp_stage_plan *st = &plan.stages[i];
        sp_stage_memory m = sp_plan_stage_memory(&plan, i, g, &cfg);
        uint64_t n_layers = (uint64_t)(st->last - st->first + 1);
        /* K and V per layer, sequence slot, position and kv_dim, stored as
         * f16 or f32 (the engine's choice) */
        cr_expect_eq(m.kv_cache, sp_kv_bytes(&cfg, (int)n_layers, plan.sequences, plan.context));
        uint64_t values = 2 * n_layers * plan.sequences * plan.context * cfg.kv_dim;
        cr_expect_eq(m.kv_cache % values, 0, "%llu bytes for %llu values", (unsigned long long)m.kv_cache,
                     (unsigned long long)values);
        cr_expect(m.kv_cache / values == 2 || m.kv_cache / values == 4, "%llu bytes per value",
                  (unsigned long long)(m.kv_cache / values));
        /* in + out, double buffered, f32 rows of dim */
        cr_expect_eq(m.wire, 2 * 2 * (uint64_t)rows * cfg.dim * 4);
        cr_expect_eq(m.total, m.weights + m.kv_cache + m.scratch + m.wire);
        cr_expect_gt(m.weights, 0);
        cr_expect_gt(m.scratch, 0);
        weights += m.weights;
    }
    /* the shards together hold exactly the whole model's weights */
    cr_expect_eq(weights, sp_shard_weight_bytes(g, &cfg, 0, cfg.n_layers - 1, true, true));

    /* a budget of exactly the estimate passes, one byte less fails */
    sp_stage_memory m1 = sp_plan_stage_memory(&plan, 1, g, &cfg);
    plan.stages[1].memory_budget = m1.total;
    cr_expect_eq(sp_plan_check_model(&plan, g, &cfg, &err), 0, "%s", err.msg);
    plan.stages[1].memory_budget = m1.total - 1;
    cr_expect_eq(sp_plan_check_model(&plan, g, &cfg, &err), -1);
    cr_expect(strstr(err.msg, "stage 1 (rank 1, host pi5-b): needs"), "%s", err.msg);
    sp_gguf_close(g);
}

Test(plan, world_sizes)
{
    sp_error err = {{0}};
    memset(&plan, 0, sizeof plan);
    snprintf(plan.path, sizeof plan.path, "p.yaml");
    plan.n_stages = 3;
    for (int i = 0; i < 3; i++) plan.stages[i].rank = i;
    cr_expect_eq(sp_plan_check_world(&plan, 3, &err), 0, "%s", err.msg);
    cr_expect_eq(sp_plan_check_world(&plan, 6, &err), -1);
    cr_expect(strstr(err.msg, "run with -n 3 or add stages for ranks 3..5"), "%s", err.msg);
    for (int i = 0; i < 3; i++) plan.stages[i].rank = i + 1;
    cr_expect_eq(sp_plan_check_world(&plan, 4, &err), 0, "ranks 1..3 with a coordinator-only rank 0: %s", err.msg);
    cr_expect_eq(sp_plan_check_world(&plan, 3, &err), -1);
}
