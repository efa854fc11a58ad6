/* main.c - entry point of the `shardpipe` binary: picks the subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"inspect", cmd_inspect, "show a GGUF model's architecture, hyper-parameters and bytes per layer"},
    {"generate", cmd_generate, "generate text with the whole model in this process"},
    {"synth", cmd_synth, "write a GGUF Llama model with seeded random weights"},
    {"run", cmd_run, "run a partition plan as a pipeline over MPI ranks (under mpiexec)"},
    {"serve", cmd_serve, "serve a plan as an OpenAI-compatible HTTP API (under mpiexec)"},
    {"profile", cmd_profile, "measure this board (or, with --links, the network) into YAML"},
    {"plan", cmd_plan, "compute a partition plan from board profiles and a model"},
    {"split", cmd_split, "write each stage of a plan as a GGUF shard file of its own, and a plan that runs them"},
    {"cache", cmd_cache, "list or clear the shards this board keeps from rank 0 (run/serve --shard-cache)"},
    {"check", cmd_check, "validate a partition plan against its model (and an MPI world size)"},
    {"tokenize", cmd_tokenize, "print the token ids of a text under a model's tokenizer"},
    {"template", cmd_template, "show a model's chat template family and what a conversation renders to"},
    {"chat", cmd_chat, "chat in the terminal with a `shardpipe serve` (or, with -m, a model on this machine)"},
    {"bench", cmd_bench, "bench engine: engine speed vs this board's memory bandwidth and sgemm (specs: benchmarks/run)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: shardpipe COMMAND [options]   (shardpipe COMMAND --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return sp_cli_finish_stdout(commands[i].name, commands[i].fn(argc - 1, argv + 1));
    fprintf(stderr, "shardpipe: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
