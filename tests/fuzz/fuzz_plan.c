/* fuzz_plan.c - libFuzzer target: a partition plan (YAML) from the input,
 * through sp_plan_load and every validation step that needs no MPI: the
 * world sizes 1..stages+1, the model's header (stories260K, or the
 * synthetic model of fuzz_util.c), each stage's memory estimate. A plan the
 * loader accepts must be written back by sp_plan_write and load again to
 * the same plan (what `shardpipe plan -o` relies on). The file's model path
 * is never opened: sp_plan_check_sha256 (which reads it) is left out. */
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "shardpipe/plan.h"

static sp_gguf *model;
static sp_config cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    sp_error err = {{0}};
    if (!(model = sp_gguf_open(fz_model_path(), &err)) || sp_config_read(model, &cfg, &err))
        fz_fail("cannot open the model of the plan checks: %s", err.msg);
    return 0;
}

static void same_plan(const sp_plan *a, const sp_plan *b)
{
    if (strcmp(a->model_path, b->model_path) || strcmp(a->model_sha256, b->model_sha256) || a->context != b->context ||
        a->sequences != b->sequences || a->micro_batches != b->micro_batches || a->prefill_chunk != b->prefill_chunk ||
        a->wire != b->wire || a->n_stages != b->n_stages)
        fz_fail("the plan written back reads differently (model '%s' / '%s', context %d / %d, stages %d / %d)",
                a->model_path, b->model_path, a->context, b->context, a->n_stages, b->n_stages);
    for (int i = 0; i < a->n_stages; i++) {
        const sp_stage_plan *x = &a->stages[i], *y = &b->stages[i];
        if (x->rank != y->rank || strcmp(x->host, y->host) || x->first != y->first || x->last != y->last ||
            x->threads != y->threads || x->memory_budget != y->memory_budget)
            fz_fail("stage %d written back reads differently (rank %d / %d, host '%s' / '%s', layers %d-%d / %d-%d, "
                    "memory %llu / %llu)", i, x->rank, y->rank, x->host, y->host, x->first, x->last, y->first,
                    y->last, (unsigned long long)x->memory_budget, (unsigned long long)y->memory_budget);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write("plan.yaml", data, size);
    static sp_plan plan, again; /* 70 KB each: not on the stack */
    sp_error err = {{0}};
    if (sp_plan_load(path, &plan, &err)) {
        if (strncmp(err.msg, path, strlen(path)) != 0) fz_fail("the error does not name the plan: %s", err.msg);
        return 0;
    }
    if (plan.n_stages < 1 || plan.n_stages > SP_PLAN_MAX_STAGES) fz_fail("plan loaded with %d stages", plan.n_stages);
    for (int w = 1; w <= plan.n_stages + 1; w++) {
        err.msg[0] = '\0';
        if (sp_plan_check_world(&plan, w, &err) && !err.msg[0]) fz_fail("check_world(%d) failed without a message", w);
    }
    err.msg[0] = '\0';
    if (sp_plan_check_model(&plan, model, &cfg, &err) && !err.msg[0]) fz_fail("check_model failed without a message");
    for (int s = 0; s < plan.n_stages; s++) {
        /* as `shardpipe check` does: a stage past the model's last layer
         * has no estimate (check_model names it); its layers are not walked */
        if (plan.stages[s].last < cfg.n_layers) (void)sp_plan_stage_memory(&plan, s, model, &cfg);
        if (sp_plan_stage_of_rank(&plan, plan.stages[s].rank) < 0) fz_fail("stage %d's rank is not found", s);
    }
    if (sp_plan_max_rows(&plan) < 1) fz_fail("a plan with %d rows per micro-batch", sp_plan_max_rows(&plan));

    char out[600];
    snprintf(out, sizeof out, "%s/written.yaml", fz_dir());
    const char *comments[SP_PLAN_MAX_STAGES] = {"a comment\nover two lines"};
    if (sp_plan_write(&plan, out, "header", comments, &err)) fz_fail("sp_plan_write: %s", err.msg);
    if (sp_plan_load(out, &again, &err)) fz_fail("the plan written back does not load: %s", err.msg);
    same_plan(&plan, &again);
    return 0;
}
