/* cmd_run.c - `shardpipe run`: parse options, hand over to the cluster. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "shardpipe/cluster.h"
#include "shardpipe/threads.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mpiexec -n N shardpipe run --plan PLAN.yaml (--prompt TEXT | --prompts FILE.jsonl) [-n TOKENS] [options]\n"
            "  --plan PATH         partition plan (docs/plan-format.md)\n"
            "  --prompt TEXT       one prompt; the text streams to stdout\n"
            "  --prompts FILE      JSONL, one {\"prompt\": \"...\"} per line; results as JSONL in input order\n"
            "                      (or {\"prompt_tokens\": [ids]}: used as given, no BOS added, and the model's\n"
            "                      tokenizer is then optional)\n"
            "  -o, --output FILE   where the JSONL results go (default stdout)\n"
            "  -n, --tokens N      new tokens per sequence (default 64)\n"
            "  --model PATH        use this model file instead of the plan's; per board with an MPMD launch\n"
            "                      (mpiexec -n 1 shardpipe run ... : -n 1 shardpipe run ... --model PATH)\n"
            "  --shard-cache DIR   where a board keeps the shards rank 0 sends it when it has neither the\n"
            "                      model nor its stage's file (default $XDG_CACHE_HOME/shardpipe/shards or\n"
            "                      ~/.cache/shardpipe/shards; `shardpipe cache` lists and clears it)\n"
            "  --sequences N       sequences in flight (overrides the plan's batching.sequences)\n"
            "  --micro-batches N   micro-batch groups (overrides batching.micro_batches)\n"
            "  --threads N         kernel threads on every rank (default: the plan's, else the rank's CPUs)\n"
            "  --ignore-eos        keep generating past end-of-generation tokens (EOS, EOT)\n"
            "  --trace FILE        write a Chrome trace (open in ui.perfetto.dev)\n"
            "  --tokens-out FILE   token ids per sequence, one line each\n"
            "  --summary-json FILE the run summary as JSON\n"
            "  --logits-out FILE   (tests) last stage writes the logits of every sampled row\n"
            "  --timeout S         a rank silent this long ends the job (default 120)\n"
            "  -q, --quiet         no streaming, no progress, no summary\n"
            SP_SAMPLER_USAGE);
}

int cmd_run(int argc, char **argv)
{
    sp_run_options o;
    memset(&o, 0, sizeof o);
    o.n_tokens = 64;
    o.timeout_s = 120;
    o.sampling = sp_sampler_defaults();
    enum { O_PLAN = 256, O_PROMPT, O_PROMPTS, O_MODEL, O_SEQ, O_MB, O_IGNORE_EOS, O_TRACE, O_TOKENS_OUT,
           O_SUMMARY, O_LOGITS, O_TIMEOUT, O_THREADS, O_SHARD_CACHE, O_SAMPLER_BASE };
    struct option opts[32] = {
        {"plan", required_argument, 0, O_PLAN},       {"prompt", required_argument, 0, O_PROMPT},
        {"prompts", required_argument, 0, O_PROMPTS}, {"output", required_argument, 0, 'o'},
        {"tokens", required_argument, 0, 'n'},        {"model", required_argument, 0, O_MODEL},
        {"sequences", required_argument, 0, O_SEQ},   {"micro-batches", required_argument, 0, O_MB},
        {"ignore-eos", no_argument, 0, O_IGNORE_EOS}, {"trace", required_argument, 0, O_TRACE},
        {"tokens-out", required_argument, 0, O_TOKENS_OUT}, {"summary-json", required_argument, 0, O_SUMMARY},
        {"logits-out", required_argument, 0, O_LOGITS}, {"timeout", required_argument, 0, O_TIMEOUT},
        {"quiet", no_argument, 0, 'q'},               {"help", no_argument, 0, 'h'},
        {"threads", required_argument, 0, O_THREADS}, {"shard-cache", required_argument, 0, O_SHARD_CACHE},
    };
    sp_cli_sampler_options(opts + 18, O_SAMPLER_BASE);
    optind = 1;
    int c, rc = 0;
    while ((c = getopt_long(argc, argv, "o:n:qh", opts, NULL)) != -1) {
        switch (c) {
        case O_PLAN: o.plan_path = optarg; break;
        case O_PROMPT: o.prompt = optarg; break;
        case O_PROMPTS: o.prompts_file = optarg; break;
        case 'o': o.output_path = optarg; break;
        case 'n': rc = sp_cli_int("run", "-n", optarg, 1, 1 << 20, &o.n_tokens); break;
        case O_MODEL: o.model_path = optarg; break;
        case O_SEQ: rc = sp_cli_int("run", "--sequences", optarg, 1, 4096, &o.sequences); break;
        case O_MB: rc = sp_cli_int("run", "--micro-batches", optarg, 1, 4096, &o.micro_batches); break;
        case O_THREADS: rc = sp_cli_int("run", "--threads", optarg, 1, SP_MAX_THREADS, &o.threads); break;
        case O_IGNORE_EOS: o.ignore_eos = true; break;
        case O_TRACE: o.trace_path = optarg; break;
        case O_SHARD_CACHE: o.shard_cache = optarg; break;
        case O_TOKENS_OUT: o.tokens_out = optarg; break;
        case O_SUMMARY: o.summary_json = optarg; break;
        case O_LOGITS: o.logits_out = optarg; break;
        case O_TIMEOUT: {
            float t;
            rc = sp_cli_float("run", "--timeout", optarg, 1.0f, 1e6f, &t);
            o.timeout_s = t;
            break;
        }
        case 'q': o.quiet = true; break;
        case 'h': usage(stdout); return 0;
        default:
            if (c >= O_SAMPLER_BASE) { rc = sp_cli_sampler_parse("run", c - O_SAMPLER_BASE, optarg, &o.sampling); break; }
            usage(stderr);
            return 2;
        }
        if (rc) return 2;
    }
    if (!o.plan_path || (!o.prompt == !o.prompts_file)) {
        fprintf(stderr, "shardpipe run: --plan and exactly one of --prompt / --prompts are required\n");
        usage(stderr);
        return 2;
    }
    return sp_cluster_run(&argc, &argv, &o);
}
