/* cmd_split.c - `shardpipe split --plan P.yaml -o DIR`: each stage's shard
 * as a GGUF file of its own plus a plan that points at them (split.c), so a
 * board stores its shard, not the whole model. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "commands.h"
#include "shardpipe/plan.h"
#include "shardpipe/util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: shardpipe split --plan P.yaml -o DIR\n"
               "  writes DIR/stage-K.gguf (stage K's layers, plus the embedding on the first and the head on the\n"
               "  last, with the model's metadata and tokenizer) and DIR/plan.yaml, whose stages run those files\n");
}

int cmd_split(int argc, char **argv)
{
    static const struct option opts[] = {
        {"plan", required_argument, 0, 'p'}, {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0},
    };
    const char *plan_path = NULL, *dir = NULL;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "p:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': plan_path = optarg; break;
        case 'o': dir = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || !plan_path || !dir) {
        if (optind < argc) fprintf(stderr, "shardpipe split: unexpected argument '%s'\n", argv[optind]);
        else fprintf(stderr, "shardpipe split: --plan and -o are required\n");
        usage(stderr);
        return 2;
    }
    sp_error err = {{0}};
    static sp_plan plan;
    if (sp_plan_load(plan_path, &plan, &err)) return sp_cli_fail("split", &err);
    for (int i = 0; i < plan.n_stages; i++)
        if (plan.stages[i].model_path[0]) {
            sp_errorf(&err, "%s: stage %d already runs its own file (%s); split the plan that runs the whole model",
                      plan_path, i, plan.stages[i].model_path);
            return sp_cli_fail("split", &err);
        }
    char ref[PATH_MAX], plan_out[PATH_MAX];
    snprintf(plan_out, sizeof plan_out, "%s/plan.yaml", dir);
    uint64_t bytes[SP_PLAN_MAX_STAGES];
    double t0 = sp_now();
    /* the folder must exist for model.path relative to it; a failure is
     * reported by sp_plan_split, which creates it too */
    (void)mkdir(dir, 0777);
    sp_cli_relative_path(plan.model_path, plan_out, ref, sizeof ref);
    if (sp_plan_split(&plan, dir, ref, bytes, &err)) return sp_cli_fail("split", &err);
    for (int i = 0; i < plan.n_stages; i++)
        printf("%s/stage-%d.gguf  layers %d-%d%s%s  %.1f MiB  (rank %d, %s)\n", dir, i, plan.stages[i].first,
               plan.stages[i].last, i == 0 ? " + embedding" : "", i == plan.n_stages - 1 ? " + head" : "",
               bytes[i] / 1048576.0, plan.stages[i].rank, plan.stages[i].host);
    printf("wrote %s in %.1f s; copy stage-K.gguf to the board of stage K, keep the folder's layout\n", plan_out,
           sp_now() - t0);
    return 0;
}
