/* cmd_cache.c - `shardpipe cache list|clear`: the shards this board keeps
 * from rank 0 (shardcache.h), their size and bound, and removing them. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_util.h"
#include "commands.h"
#include "shardpipe/gguf.h"
#include "shardpipe/shardcache.h"
#include "shardpipe/shardfile.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: shardpipe cache list  [--shard-cache DIR]   the shards this board keeps, their size and bound\n"
               "       shardpipe cache clear [--shard-cache DIR]   remove them (the next run sends them again)\n"
               "  DIR defaults to $XDG_CACHE_HOME/shardpipe/shards, else ~/.cache/shardpipe/shards, as for run/serve;\n"
               "  the bound is SHARDPIPE_SHARD_CACHE_MAX (default 16G), and the disk keeps 1 GiB free\n");
}

static void when(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M", &tm);
}

/* "layers 2-5 + head of NAME", read from the entry's shard keys */
static void describe(const char *path, char *buf, size_t cap)
{
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(path, &err);
    sp_shard_info info;
    if (!g || sp_shard_info_read(g, &info, &err) || !info.is_shard) {
        snprintf(buf, cap, "not a shard file: %.400s", g ? (err.msg[0] ? err.msg : "no shard keys") : err.msg);
        sp_gguf_close(g);
        return;
    }
    const sp_gguf_kv *src = sp_gguf_find(g, SP_SHARD_KEY_SOURCE);
    snprintf(buf, cap, "layers %d-%d%s%s of %.*s", info.first, info.last, info.embed ? " + embedding" : "",
             info.head ? " + head" : "", src && src->type == SP_GGUF_STRING ? (int)src->val.str.len : 1,
             src && src->type == SP_GGUF_STRING ? src->val.str.ptr : "?");
    sp_gguf_close(g);
}

static int list(const char *dir)
{
    sp_error err = {{0}};
    uint64_t max;
    if (sp_shard_cache_max(&max, &err)) return sp_cli_fail("cache", &err);
    sp_shard_cache_item *items;
    int n;
    if (sp_shard_cache_list(dir, &items, &n, &err)) return sp_cli_fail("cache", &err);
    printf("shard cache %s (bound %.1f GiB, SHARDPIPE_SHARD_CACHE_MAX; the disk keeps 1 GiB free)\n", dir,
           max / 1073741824.0);
    uint64_t total = 0;
    int shards = 0;
    for (int i = 0; i < n; i++) {
        char path[2048], what[512], used[32], got[32];
        snprintf(path, sizeof path, "%s/%s", dir, items[i].name);
        when(items[i].used, used, sizeof used);
        when(items[i].written, got, sizeof got);
        total += items[i].bytes;
        if (items[i].temporary) {
            printf("%s  %9.1f MiB  a transfer in progress or cut off (clear removes it unless in progress)\n",
                   items[i].name, items[i].bytes / 1048576.0);
            continue;
        }
        shards++;
        describe(path, what, sizeof what);
        printf("%s  %9.1f MiB  %s  received %s, used %s\n", items[i].name, items[i].bytes / 1048576.0, what, got,
               used);
    }
    printf("%d shard%s, %.1f MiB\n", shards, shards == 1 ? "" : "s", total / 1048576.0);
    free(items);
    return 0;
}

int cmd_cache(int argc, char **argv)
{
    static const struct option opts[] = {
        {"shard-cache", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *dir_opt = NULL;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir_opt = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    const char *action = optind < argc ? argv[optind] : NULL;
    if (!action || optind + 1 < argc || (strcmp(action, "list") && strcmp(action, "clear"))) {
        if (action) fprintf(stderr, "shardpipe cache: unknown action '%s' (list or clear)\n", action);
        else fprintf(stderr, "shardpipe cache: list or clear?\n");
        usage(stderr);
        return 2;
    }
    sp_error err = {{0}};
    char dir[1024];
    if (sp_shard_cache_dir(dir_opt, false, dir, sizeof dir, &err)) return sp_cli_fail("cache", &err);
    if (!strcmp(action, "list")) return list(dir);
    int removed;
    uint64_t freed;
    if (sp_shard_cache_clear(dir, &removed, &freed, &err)) return sp_cli_fail("cache", &err);
    printf("removed %d file%s, %.1f MiB, from %s\n", removed, removed == 1 ? "" : "s", freed / 1048576.0, dir);
    return 0;
}
