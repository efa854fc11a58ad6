/* cmd_stubs.c - subcommands that are not built yet say so and exit 2.
 * Each moves to its own cmd_*.c when it is implemented. */
#include <stdio.h>

#include "commands.h"

static int not_yet(const char *name)
{
    fprintf(stderr, "shardpipe %s: not implemented in this version\n", name);
    return 2;
}

int cmd_profile(int argc, char **argv) { (void)argc; (void)argv; return not_yet("profile"); }
int cmd_plan(int argc, char **argv) { (void)argc; (void)argv; return not_yet("plan"); }
