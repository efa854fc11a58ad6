/* commands.h - the subcommands of the `shardpipe` binary. Each lives in its
 * own cmd_*.c, parses its own options and returns the process exit code;
 * errors are printed once, here in the CLI layer, never below it. */
#ifndef SHARDPIPE_CLI_COMMANDS_H
#define SHARDPIPE_CLI_COMMANDS_H

int cmd_inspect(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_split(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_cache(int argc, char **argv);

#endif
