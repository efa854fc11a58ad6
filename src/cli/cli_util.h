/* cli_util.h - option parsing and error printing shared by the subcommands.
 * The CLI is the one place that prints errors: "shardpipe CMD: message". */
#ifndef SHARDPIPE_CLI_UTIL_H
#define SHARDPIPE_CLI_UTIL_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "shardpipe/error.h"
#include "shardpipe/sampler.h"

/* Prints "shardpipe CMD: err->msg" to stderr; returns exit code 1. */
int sp_cli_fail(const char *cmd, const sp_error *err);

/* Flush stdout and report a write error there (a full disk, /dev/full, a
 * closed pipe) once: "shardpipe CMD: stdout: cannot write: REASON". Returns
 * 1 then, else rc. Every command's exit goes through it (main.c). */
int sp_cli_finish_stdout(const char *cmd, int rc);

/* Parse an integer in [lo, hi]; prints a message naming the option on error. */
int sp_cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out);
int sp_cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
int sp_cli_float(const char *cmd, const char *opt, const char *s, float lo, float hi, float *out);

/* Token ids separated by spaces or commas ("1 15043 3186"), each in
 * [0, n_vocab), into out (cap entries). Returns the count, or -1 after
 * printing a message naming the option and the bad id. */
int sp_cli_parse_ids(const char *cmd, const char *opt, const char *s, int n_vocab, int *out, int cap);
/* fwrite n floats; -1 with err naming path on a short write. */
int sp_cli_write_f32(FILE *f, const float *v, size_t n, const char *path, sp_error *err);

/* Sampling options shared by generate and run: --temp --top-k --top-p
 * --min-p --repeat-penalty --repeat-last-n --seed. Fills 7 option entries
 * (plus a terminating zero entry) with vals base..base+6. */
#define SP_SAMPLER_USAGE                                                                  \
    "      --temp T           temperature (default 0 = greedy)\n"                         \
    "      --top-k K          keep the K most likely tokens (default 40 when sampling)\n" \
    "      --top-p P          nucleus: keep the smallest set with probability >= P (0.95)\n" \
    "      --min-p P          drop tokens below P x the top probability (0.05)\n"        \
    "      --repeat-penalty R penalise the last --repeat-last-n tokens (default 1 = off)\n" \
    "      --repeat-last-n N  window of the repetition penalty (default 64)\n"           \
    "      --seed S           RNG seed (default 42): same seed, same text\n"
void sp_cli_sampler_options(struct option *opts, int base);
int sp_cli_sampler_parse(const char *cmd, int which, const char *arg, sp_sampler_params *p);

#endif
