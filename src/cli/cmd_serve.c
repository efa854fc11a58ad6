/* cmd_serve.c - `shardpipe serve`: parse options, hand over to the cluster. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "shardpipe/cluster.h"
#include "shardpipe/supervisor.h"
#include "shardpipe/threads.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mpiexec -n N shardpipe serve --plan PLAN.yaml [--port 8080] [--host 127.0.0.1] [options]\n"
            "  An OpenAI-compatible API on rank 0: POST /v1/chat/completions, POST /v1/completions,\n"
            "  GET /v1/models, GET /health, GET /metrics. Stop with Ctrl-C (or SIGTERM).\n"
            "  --plan PATH         partition plan (docs/plan-format.md); batching.sequences = slots\n"
            "  --port N            TCP port (default 8080; 0 picks a free one and prints it)\n"
            "  --host ADDR         address to listen on (default 127.0.0.1: this machine only;\n"
            "                      0.0.0.0 or :: for the network - then set an API key)\n"
            "  --api-key KEY       require 'Authorization: Bearer KEY' (default: $SHARDPIPE_API_KEY)\n"
            "  --grace S           on Ctrl-C/SIGTERM, answers in flight get S seconds (default 30)\n"
            "  --queue N           requests that may wait for a slot; more get 429 (default 64)\n"
            "  --client-timeout S  drop a client silent for S seconds mid-request (default 30)\n"
            "  --max-body BYTES    larger request bodies get 413 (default 4194304)\n"
            "  --model PATH        use this model file instead of the plan's\n"
            "  --sequences N       sequence slots (overrides batching.sequences)\n"
            "  --micro-batches N   micro-batch groups (overrides batching.micro_batches)\n"
            "  --threads N         kernel threads on every rank (default: the plan's, else the rank's CPUs)\n"
            "  --timeout S         a rank silent this long with work in flight ends the job (default 120)\n"
            "  --shard-cache DIR   where a board keeps the shards rank 0 sends it (default\n"
            "                      $XDG_CACHE_HOME/shardpipe/shards or ~/.cache/shardpipe/shards)\n"
            "  --no-prompt-cache   feed every prompt whole (the cache reuses a slot's KV for a shared prefix)\n"
            "  --chat-template NAME  chat requests through this template family instead of the file's\n"
            "                      (llama3, llama3.0, qwen3, qwen2.5, chatml, llama2, mistral, phi3, gemma)\n"
            "\n"
            "usage: shardpipe serve --cluster C.yaml --model M.gguf [options]   (no mpiexec: supervised)\n"
            "       shardpipe serve --supervise --plan PLAN.yaml [options]\n"
            "  A supervisor outside MPI owns the HTTP side and launches the pipeline with mpiexec; when a\n"
            "  board dies, hangs or loses its link it plans again on the boards that are up (--cluster),\n"
            "  relaunches and resumes every open request with the same tokens. Under mpiexec, serve is\n"
            "  not fault-tolerant: a failed rank ends the job.\n"
            "  --cluster PATH      boards to plan on (docs/profile-format.md); needs --model\n"
            "  --supervise         supervise a fixed --plan (relaunched as it is after a failure)\n"
            "  --context N         positions per sequence when planning (default: the model's, at most 2048)\n"
            "  --mpiexec CMD       the launcher command (default mpiexec; e.g. 'mpiexec -launcher-exec X')\n"
            "  --probe CMD         sh command that exits 0 when board {board} on host {host} is up\n"
            "                      (default: mpiexec -hosts {host} -n 1 true)\n"
            "  --fail-timeout S    no token for S s with requests in flight is a failure (default 10);\n"
            "                      so is MPI not started (rank 0 not connected) within 2x S\n"
            "  --load-timeout S    launch to loaded longer than S s is a failure (default 300)\n"
            "  --work-dir DIR      plans, host files and the control socket (default: a new /tmp folder)\n"
            "  --wire W            hidden states between boards: f32 (default: a resumed answer keeps its\n"
            "                      tokens on any new plan) | f16 | q8_0 (they round where the plan cuts)\n");
}

/* `serve --cluster` / `--supervise`: no MPI in this process. */
static int supervised(const sp_serve_options *o, sp_supervisor_options *so)
{
    if (so->cluster_path && !o->model_path) {
        fprintf(stderr, "shardpipe serve: --cluster needs --model M.gguf (the model to plan for)\n");
        return 2;
    }
    if (!so->cluster_path && !o->plan_path) {
        fprintf(stderr, "shardpipe serve: --supervise needs --plan PLAN.yaml (or give --cluster)\n");
        return 2;
    }
    so->plan_path = o->plan_path;
    so->model_path = o->model_path;
    so->grace_s = o->grace_s;
    so->sequences = o->sequences;
    so->micro_batches = o->micro_batches;
    so->threads = o->threads;
    so->chat_template = o->chat_template;
    so->no_prompt_cache = o->no_prompt_cache;
    so->http = (sp_server_options){o->host, o->port, o->api_key, NULL, o->queue, o->client_timeout_s, o->max_body};
    char tmp[] = "/tmp/shardpipe-serve-XXXXXX";
    if (!so->work_dir) {
        if (!mkdtemp(tmp)) {
            perror("shardpipe serve: cannot make a work folder under /tmp");
            return 1;
        }
        so->work_dir = tmp;
    }
    return sp_supervisor_run(so);
}

int cmd_serve(int argc, char **argv)
{
    sp_serve_options o;
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.port = 8080;
    o.grace_s = 30;
    o.queue = 64;
    o.client_timeout_s = 30;
    o.max_body = 4u << 20;
    o.timeout_s = 120;
    o.api_key = getenv("SHARDPIPE_API_KEY");
    sp_supervisor_options so;
    memset(&so, 0, sizeof so);
    so.fail_timeout_s = 10;
    so.load_timeout_s = 300;
    bool supervise = false;
    enum { O_PLAN = 256, O_PORT, O_HOST, O_KEY, O_GRACE, O_QUEUE, O_CTIMEOUT, O_BODY, O_MODEL, O_SEQ, O_MB, O_TIMEOUT, O_NOCACHE, O_TEMPLATE, O_THREADS,
           O_CLUSTER, O_SUPERVISE, O_CONTEXT, O_MPIEXEC, O_PROBE, O_FAILT, O_LOADT, O_WORKDIR, O_WORKER, O_WIRE, O_SHARD_CACHE };
    struct option opts[] = {
        {"plan", required_argument, 0, O_PLAN},      {"port", required_argument, 0, O_PORT},
        {"host", required_argument, 0, O_HOST},      {"api-key", required_argument, 0, O_KEY},
        {"grace", required_argument, 0, O_GRACE},    {"queue", required_argument, 0, O_QUEUE},
        {"client-timeout", required_argument, 0, O_CTIMEOUT}, {"max-body", required_argument, 0, O_BODY},
        {"model", required_argument, 0, O_MODEL},    {"sequences", required_argument, 0, O_SEQ},
        {"micro-batches", required_argument, 0, O_MB}, {"timeout", required_argument, 0, O_TIMEOUT},
        {"no-prompt-cache", no_argument, 0, O_NOCACHE}, {"chat-template", required_argument, 0, O_TEMPLATE},
        {"threads", required_argument, 0, O_THREADS}, {"help", no_argument, 0, 'h'},
        {"shard-cache", required_argument, 0, O_SHARD_CACHE},
        {"cluster", required_argument, 0, O_CLUSTER}, {"supervise", no_argument, 0, O_SUPERVISE},
        {"context", required_argument, 0, O_CONTEXT}, {"mpiexec", required_argument, 0, O_MPIEXEC},
        {"probe", required_argument, 0, O_PROBE},     {"fail-timeout", required_argument, 0, O_FAILT},
        {"load-timeout", required_argument, 0, O_LOADT}, {"work-dir", required_argument, 0, O_WORKDIR},
        {"worker", required_argument, 0, O_WORKER},   {"wire", required_argument, 0, O_WIRE},
        {0, 0, 0, 0},
    };
    optind = 1;
    int c, rc = 0, v;
    float t;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_PLAN: o.plan_path = optarg; break;
        case O_PORT: rc = sp_cli_int("serve", "--port", optarg, 0, 65535, &o.port); break;
        case O_HOST: o.host = optarg; break;
        case O_KEY: o.api_key = optarg; break;
        case O_GRACE: rc = sp_cli_float("serve", "--grace", optarg, 0.0f, 86400.0f, &t); o.grace_s = t; break;
        case O_QUEUE: rc = sp_cli_int("serve", "--queue", optarg, 0, 1 << 16, &o.queue); break;
        case O_CTIMEOUT:
            rc = sp_cli_int("serve", "--client-timeout", optarg, 1, 86400, &v);
            o.client_timeout_s = (unsigned)v;
            break;
        case O_BODY:
            rc = sp_cli_int("serve", "--max-body", optarg, 1024, 1 << 30, &v);
            o.max_body = (size_t)v;
            break;
        case O_MODEL: o.model_path = optarg; break;
        case O_SEQ: rc = sp_cli_int("serve", "--sequences", optarg, 1, 4096, &o.sequences); break;
        case O_MB: rc = sp_cli_int("serve", "--micro-batches", optarg, 1, 4096, &o.micro_batches); break;
        case O_THREADS: rc = sp_cli_int("serve", "--threads", optarg, 1, SP_MAX_THREADS, &o.threads); break;
        case O_TIMEOUT: rc = sp_cli_float("serve", "--timeout", optarg, 1.0f, 1e6f, &t); o.timeout_s = t; break;
        case O_NOCACHE: o.no_prompt_cache = true; break;
        case O_TEMPLATE: o.chat_template = optarg; break;
        case O_SHARD_CACHE: o.shard_cache = optarg; break;
        case O_CLUSTER: so.cluster_path = optarg; break;
        case O_SUPERVISE: supervise = true; break;
        case O_CONTEXT: rc = sp_cli_int("serve", "--context", optarg, 1, 1 << 24, &so.context); break;
        case O_MPIEXEC: so.mpiexec = optarg; break;
        case O_PROBE: so.probe = optarg; break;
        case O_FAILT: rc = sp_cli_float("serve", "--fail-timeout", optarg, 0.5f, 1e5f, &t); so.fail_timeout_s = t; break;
        case O_LOADT: rc = sp_cli_float("serve", "--load-timeout", optarg, 1.0f, 1e6f, &t); so.load_timeout_s = t; break;
        case O_WORKDIR: so.work_dir = optarg; break;
        case O_WORKER: o.worker = optarg; break;
        case O_WIRE:
            so.wire = optarg;
            if (strcmp(optarg, "f32") && strcmp(optarg, "f16") && strcmp(optarg, "q8_0")) {
                fprintf(stderr, "shardpipe serve: --wire must be f32, f16 or q8_0, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (rc) return 2;
    }
    if (o.api_key && !*o.api_key) o.api_key = NULL;
    if (so.cluster_path || supervise) return supervised(&o, &so);
    if (!o.plan_path) {
        fprintf(stderr, "shardpipe serve: --plan is required\n");
        usage(stderr);
        return 2;
    }
    if (o.api_key && !*o.api_key) o.api_key = NULL;
    return sp_cluster_serve(&argc, &argv, &o);
}
