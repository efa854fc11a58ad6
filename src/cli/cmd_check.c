/* cmd_check.c - `shardpipe check PLAN.yaml [--world-size N]`: validate a
 * partition plan against its model (and an MPI world size) without loading
 * any weights, and show what each stage will hold. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "shardpipe/plan.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: shardpipe check PLAN.yaml [--world-size N]\n\n"
               "Checks a partition plan: its schema, its layer ranges, context and memory\n"
               "budgets against the model's header and, with --world-size, its ranks against\n"
               "the number of MPI ranks mpiexec will start, and the model file against the\n"
               "plan's model.sha256 when it gives one. Prints each stage's estimated\n"
               "memory, then \"plan OK\" (exit 0) or the first problem (exit 1).\n");
}

/* Bytes in a unit that keeps 3 significant digits or so. */
static const char *human(uint64_t bytes, char *buf, size_t size)
{
    if (bytes >= (1ull << 30)) snprintf(buf, size, "%.2f GiB", bytes / (double)(1ull << 30));
    else if (bytes >= (1ull << 20)) snprintf(buf, size, "%.2f MiB", bytes / (double)(1ull << 20));
    else snprintf(buf, size, "%.1f KiB", bytes / 1024.0);
    return buf;
}

static void print_stages(const sp_plan *plan, const sp_gguf *g, const sp_config *cfg)
{
    printf("%-5s %4s  %-16s %-9s %7s  %10s %10s %10s %10s  %10s\n", "stage", "rank", "host", "layers", "threads",
           "weights", "KV cache", "buffers", "total", "budget");
    for (int i = 0; i < plan->n_stages; i++) {
        const sp_stage_plan *st = &plan->stages[i];
        char layers[24], w[24], kv[24], buf[24], tot[24], bud[24];
        if (st->first == st->last) snprintf(layers, sizeof layers, "%d", st->first);
        else snprintf(layers, sizeof layers, "%d-%d", st->first, st->last);
        if (st->memory_budget) human(st->memory_budget, bud, sizeof bud);
        else snprintf(bud, sizeof bud, "-");
        char thr[16];
        if (st->threads > 0) snprintf(thr, sizeof thr, "%d", st->threads);
        else snprintf(thr, sizeof thr, "auto"); /* the rank's CPUs, known only there */
        printf("%5d %4d  %-16s %-9s %7s  ", i, st->rank, st->host, layers, thr);
        if (st->last < cfg->n_layers) {
            sp_stage_memory m = sp_plan_stage_memory(plan, i, g, cfg);
            printf("%10s %10s %10s %10s  %10s%s\n", human(m.weights, w, sizeof w), human(m.kv_cache, kv, sizeof kv),
                   human(m.scratch + m.wire, buf, sizeof buf), human(m.total, tot, sizeof tot), bud,
                   st->memory_budget && m.total > st->memory_budget ? "  OVER" : "");
        } else {
            /* layers beyond the model: check_model names the problem below */
            printf("%10s %10s %10s %10s  %10s\n", "?", "?", "?", "?", bud);
        }
    }
}

int cmd_check(int argc, char **argv)
{
    const char *path = NULL;
    int world = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--world-size") && i + 1 < argc) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || n < 1 || n > 65536) {
                fprintf(stderr, "shardpipe check: --world-size must be a number of ranks from 1 to 65536, got '%s'\n",
                        argv[i]);
                return 2;
            }
            world = (int)n;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "shardpipe check: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }

    static sp_plan plan; /* ~70 KB: keep it off the stack */
    sp_error err = {{0}};
    if (sp_plan_load(path, &plan, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    sp_gguf *g = sp_gguf_open(plan.model_path, &err);
    if (!g) {
        fprintf(stderr, "%s:%d:%d: cannot open the plan's model: %s\n", path, plan.loc_model.line,
                plan.loc_model.col, err.msg);
        return 1;
    }
    sp_config cfg;
    if (sp_config_read(g, &cfg, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        sp_gguf_close(g);
        return 1;
    }

    printf("plan %s\n", path);
    printf("model %s: %s, %d layers, dim %d, context_length %d\n", plan.model_path, cfg.arch, cfg.n_layers, cfg.dim,
           cfg.ctx_train);
    printf("context %d, %d sequence%s in %d micro-batch%s (up to %d rows), prefill chunk %d, wire %s\n",
           plan.context, plan.sequences, plan.sequences == 1 ? "" : "s", plan.micro_batches,
           plan.micro_batches == 1 ? "" : "es", sp_plan_max_rows(&plan), plan.prefill_chunk,
           sp_wire_name(plan.wire));
    if (sp_plan_stage_of_rank(&plan, 0) < 0) printf("rank 0 coordinates only (runs no layers)\n");
    print_stages(&plan, g, &cfg);

    int rc = 0;
    if (world && sp_plan_check_world(&plan, world, &err)) rc = 1;
    if (!rc && sp_plan_check_model(&plan, g, &cfg, &err)) rc = 1;
    if (!rc && sp_plan_check_sha256(&plan, &err)) rc = 1;
    sp_gguf_close(g);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("plan OK\n");
    return 0;
}
