/* cmd_plan.c - `shardpipe plan`: board profiles + cluster links + a model
 * file -> the best partition plan for an objective, written with comments
 * that explain it; --explain prints the table behind it. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "shardpipe/planner.h"
#include "shardpipe/util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shardpipe plan --model M.gguf --cluster C.yaml [-o partitions/NAME.yaml] [options]\n"
            "  --model PATH          the GGUF model (its tensor index: bytes per layer and type)\n"
            "  --cluster PATH        boards, their profiles and links (docs/profile-format.md)\n"
            "  --objective O         throughput (default): most tokens/s for all sequences together;\n"
            "                        latency: fastest token for each sequence\n"
            "  --context N           positions per sequence (default: the model's, at most 2048)\n"
            "  --sequences K         sequences in flight (default 1)\n"
            "  --wire W              hidden states between boards: f32 | f16 | q8_0 (default f16)\n"
            "  --prefill-chunk N     prompt rows per micro-batch, fixed (default: chosen per prompt length\n"
            "                        from the stage times, written as prefill_chunks)\n"
            "  --prompt-tokens N     the prompt length --explain and the comments quote (default 512)\n"
            "  -o, --output PATH     write the plan there (else only print it)\n"
            "  --explain             print the table behind the plan and the simple splits it beats\n");
}

static void print_explain(const sp_problem *p, const sp_solution *s, const sp_cluster *cl, int K)
{
    printf("\nboard        host         thr  RAM GB usable GB  ms/layer  head ms  (decode micro-batch of %d row%s)\n",
           s->rows, s->rows > 1 ? "s" : "");
    const sp_cost_case *c = sp_problem_case(p, s->rows);
    for (int b = 0; b < cl->n_boards; b++) {
        const sp_board *bd = &cl->boards[b];
        double sum = 0;
        for (int l = 0; l < p->n_layers; l++) sum += c->layer_s[b * p->n_layers + l];
        printf("%-12.12s %-12.12s %3d  %6.2f %9.2f  %8.3f %8.3f\n", bd->name, bd->host, bd->threads,
               bd->profile.ram_total / 1e9, bd->memory / 1e9, sum / p->n_layers * 1e3, c->head_s[b] * 1e3);
    }
    printf("\nstage board        layers       compute ms   hop ms   memory GB / usable\n");
    for (int i = 0; i < s->n_stages; i++) {
        char layers[32];
        snprintf(layers, sizeof layers, "%d-%d", s->first[i], s->last[i]);
        bool neck = s->stage_s[i] >= s->bottleneck;
        printf("%5d %-12.12s %-12s %10.2f %8.2f   %7.3f / %.3f%s\n", i, cl->boards[s->board[i]].name, layers,
               s->stage_s[i] * 1e3, s->hop_s[i] * 1e3, s->mem[i] / 1e9, cl->boards[s->board[i]].memory / 1e9,
               neck ? "  <- bottleneck" : "");
    }
    printf("\nperiod of a group %.2f ms = max(round trip %.2f ms, %d group%s x bottleneck %.2f ms)\n", s->round_s * 1e3,
           s->latency * 1e3, s->micro_batches, s->micro_batches > 1 ? "s" : "", s->bottleneck * 1e3);
    if (cl->handoff > 0 && s->n_stages > 1)
        printf("(each hop includes the cluster's hand-over time, %.2f ms)\n", cl->handoff * 1e3);
    printf("predicted decode: %.2f tok/s for %d sequence%s, %.2f tok/s per sequence\n", s->tok_s, K,
           K > 1 ? "s" : "", s->tok_s / K);
    for (int m = 0; m < 2; m++) {
        sp_solution base;
        int rc = sp_planner_baseline(p, s->objective, m == 1, &base);
        const char *what = m ? "layers in proportion to memory" : "layers split evenly";
        if (rc) printf("all boards in cluster order, %s: does not fit in memory\n", what);
        else
            printf("all boards in cluster order, %s: %.2f tok/s with %d group%s (this plan is %.2fx)\n", what,
                   base.tok_s, base.micro_batches, base.micro_batches > 1 ? "s" : "", s->tok_s / base.tok_s);
    }
}

/* The hydra host file beside the plan and the exact command that runs it;
 * says how to name the boards when the cluster file gives no host. */
static int write_hosts(const sp_plan *plan, const sp_cluster *cl, const char *out, const char *cluster_path,
                       sp_error *err)
{
    char hosts[PATH_MAX];
    sp_planner_hosts_path(out, hosts, sizeof hosts);
    if (sp_planner_write_hosts(plan, hosts, err)) return -1;
    printf("wrote %s (hydra host file: one line per rank, in the plan's order)\n", hosts);
    int n_ranks = 0;
    for (int i = 0; i < plan->n_stages; i++)
        if (plan->stages[i].rank + 1 > n_ranks) n_ranks = plan->stages[i].rank + 1;
    printf("run it with:\n  mpiexec -f %s -n %d shardpipe run --plan %s --prompt \"Hello\" -n 128\n", hosts,
           n_ranks, out);
    char unnamed[512] = "";
    size_t len = 0;
    for (int i = 0; i < plan->n_stages; i++)
        for (int b = 0; b < cl->n_boards; b++)
            if (!cl->boards[b].host_given && !strcmp(cl->boards[b].host, plan->stages[i].host) &&
                len + 70 < sizeof unnamed)
                len += (size_t)snprintf(unnamed + len, sizeof unnamed - len, "%s%s", len ? ", " : "",
                                        cl->boards[b].name);
    if (len)
        printf("note: %s gives no `host:` for %s, so the host file uses the board name%s; if that is not the "
               "name ssh reaches the board by, add `host: NAME` (or its address) under the board in %s "
               "(docs/profile-format.md) and plan again\n",
               cluster_path, unnamed, strchr(unnamed, ',') ? "s" : "", cluster_path);
    return 0;
}

static int parse_objective(const char *s, sp_objective *o)
{
    if (!strcmp(s, "throughput")) *o = SP_OBJ_THROUGHPUT;
    else if (!strcmp(s, "latency")) *o = SP_OBJ_LATENCY;
    else {
        fprintf(stderr, "shardpipe plan: --objective must be throughput or latency, got '%s'\n", s);
        return -1;
    }
    return 0;
}

static int parse_wire(const char *s, sp_wire_type *w)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, sp_wire_name((sp_wire_type)i))) {
            *w = (sp_wire_type)i;
            return 0;
        }
    fprintf(stderr, "shardpipe plan: --wire must be f32, f16 or q8_0, got '%s'\n", s);
    return -1;
}

int cmd_plan(int argc, char **argv)
{
    enum { O_MODEL = 256, O_CLUSTER, O_OBJ, O_CTX, O_SEQ, O_WIRE, O_CHUNK, O_EXPLAIN, O_PROMPT };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},   {"cluster", required_argument, 0, O_CLUSTER},
        {"objective", required_argument, 0, O_OBJ}, {"context", required_argument, 0, O_CTX},
        {"sequences", required_argument, 0, O_SEQ}, {"wire", required_argument, 0, O_WIRE},
        {"prefill-chunk", required_argument, 0, O_CHUNK}, {"explain", no_argument, 0, O_EXPLAIN},
        {"prompt-tokens", required_argument, 0, O_PROMPT},
        {"output", required_argument, 0, 'o'},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = NULL, *cluster_path = NULL, *out = NULL;
    sp_objective obj = SP_OBJ_THROUGHPUT;
    sp_cost_options o = {.context = 0, .sequences = 1, .prefill_chunk = 0, .wire = SP_WIRE_F16};
    bool explain = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_CLUSTER: cluster_path = optarg; break;
        case O_OBJ: if (parse_objective(optarg, &obj)) return 2; break;
        case O_CTX: if (sp_cli_int("plan", "--context", optarg, 1, 1 << 24, &o.context)) return 2; break;
        case O_SEQ: if (sp_cli_int("plan", "--sequences", optarg, 1, 65536, &o.sequences)) return 2; break;
        case O_WIRE: if (parse_wire(optarg, &o.wire)) return 2; break;
        case O_CHUNK: if (sp_cli_int("plan", "--prefill-chunk", optarg, 1, 65536, &o.prefill_chunk)) return 2; break;
        case O_EXPLAIN: explain = true; break;
        case O_PROMPT: if (sp_cli_int("plan", "--prompt-tokens", optarg, 1, 1 << 24, &o.prompt_tokens)) return 2; break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || !model || !cluster_path) {
        if (optind < argc) fprintf(stderr, "shardpipe plan: unexpected argument '%s'\n", argv[optind]);
        else fprintf(stderr, "shardpipe plan: --model and --cluster are required\n");
        usage(stderr);
        return 2;
    }

    sp_error err = {{0}};
    static sp_cluster cl;
    if (sp_cluster_load(cluster_path, &cl, &err)) return sp_cli_fail("plan", &err);
    sp_gguf *g = sp_gguf_open(model, &err);
    if (!g) return sp_cli_fail("plan", &err);
    sp_config cfg;
    int rc = 1;
    sp_problem p = {0};
    if (sp_config_read(g, &cfg, &err)) goto fail;
    if (!o.context) o.context = cfg.ctx_train < 2048 ? cfg.ctx_train : 2048;
    if (o.context > cfg.ctx_train) {
        sp_errorf(&err, "--context %d is more than %s's context_length %d; use at most %d", o.context, model,
                  cfg.ctx_train, cfg.ctx_train);
        goto fail;
    }
    if (o.prompt_tokens > o.context) o.prompt_tokens = o.context;
    /* chosen chunks: the search sizes each stage's buffers for the largest */
    bool choose_chunk = o.prefill_chunk == 0;
    if (choose_chunk) o.prefill_chunk = o.prefill_cap = o.context < SP_PREFILL_CAP ? o.context : SP_PREFILL_CAP;
    else o.prefill_cap = o.prefill_chunk;
    if (sp_cost_build(&p, &cl, g, &cfg, &o, &err)) goto fail;

    sp_solution s;
    double t0 = sp_now();
    if (sp_search(&p, obj, &s, &err)) {
        sp_error_prefix(&err, "%s on %s (context %d, %d sequence%s): ", model, cluster_path, o.context, o.sequences,
                        o.sequences > 1 ? "s" : "");
        goto fail;
    }
    double search_s = sp_now() - t0;

    static sp_plan plan;
    char model_rel[PATH_MAX];
    sp_cli_relative_path(model, out ? out : "./plan.yaml", model_rel, sizeof model_rel);
    sp_planner_to_plan(&s, &cl, &o, model_rel, &plan);
    sp_prefill pf;
    sp_prefill_choose(&s, &cl, g, &cfg, &o, &pf);
    if (choose_chunk) sp_planner_prefill_to_plan(&pf, &plan);
    const char *base = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
    char *header = sp_planner_header(&s, &cl, &cfg, base, &o);
    header = sp_planner_prefill_note(header, &pf, &plan, choose_chunk);
    char *comments[SP_PLANNER_MAX_BOARDS];
    for (int i = 0; i < s.n_stages; i++) comments[i] = sp_planner_stage_comment(&s, i, &cl, &plan, g, &cfg);

    printf("%s\n", header);
    for (int i = 0; i < s.n_stages; i++) printf("%s\n", comments[i]);
    fprintf(stderr, "searched %d boards x %d layers (%s) in %.1f ms\n", cl.n_boards, cfg.n_layers,
            obj == SP_OBJ_THROUGHPUT ? "throughput" : "latency", search_s * 1e3);
    if (explain) {
        print_explain(&p, &s, &cl, o.sequences);
        char *why = sp_prefill_explain(&pf, o.sequences, s.micro_batches);
        printf("\n%s\n", why);
        if (!choose_chunk) printf("(--prefill-chunk %d fixes the chunk: the plan does not use the choice above)\n",
                                  plan.prefill_chunk);
        free(why);
    }

    rc = 0;
    if (out) {
        if (sp_plan_write(&plan, out, header, (const char *const *)comments, &err)) rc = 1;
        /* what was written must pass the validator that `run` applies */
        static sp_plan back;
        if (!rc && (sp_plan_load(out, &back, &err) || sp_plan_check_model(&back, g, &cfg, &err))) {
            sp_error_prefix(&err, "the written plan does not validate (a bug, please report it): ");
            rc = 1;
        }
        if (!rc) printf("wrote %s\n", out);
        if (!rc && write_hosts(&plan, &cl, out, cluster_path, &err)) rc = 1;
    }
    free(header);
    for (int i = 0; i < s.n_stages; i++) free(comments[i]);
    if (rc) goto fail;
    sp_problem_free(&p);
    sp_gguf_close(g);
    return 0;
fail:
    sp_problem_free(&p);
    sp_gguf_close(g);
    return sp_cli_fail("plan", &err);
}
