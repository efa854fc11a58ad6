/* test_limits.c - sizes a hostile file may claim: hyper-parameters bounded
 * by the tensor index before anything is allocated, memory estimates that
 * cannot wrap, YAML files bounded in size and nesting, one thread bound for
 * `check` and `run`. Each case once crashed, hung or lied (issue 21). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shardpipe/gguf.h"
#include "shardpipe/model.h"
#include "shardpipe/plan.h"
#include "shardpipe/profile.h"
#include "shardpipe/threads.h"
#include "shardpipe/util.h"
#include "testutil.h"

/* A llama header with the given sizes and just the tensors the header-only
 * checks look at: token_embd [dim, 1] and each layer's attn_norm. */
static void write_header(const char *path, uint32_t dim, uint32_t block_count, uint32_t layers_present,
                         uint32_t ctx)
{
    sp_gguf_writer *w = sp_gguf_writer_new();
    sp_gguf_add_str(w, "general.architecture", "llama");
    sp_gguf_add_u32(w, "llama.embedding_length", dim);
    sp_gguf_add_u32(w, "llama.block_count", block_count);
    /* heads of at most 1024 values, the largest head shardpipe takes */
    sp_gguf_add_u32(w, "llama.attention.head_count", dim > 1024 ? dim / 1024 : 1);
    sp_gguf_add_u32(w, "llama.feed_forward_length", 32);
    sp_gguf_add_u32(w, "llama.context_length", ctx);
    float *zeros = sp_calloc(dim, sizeof(float));
    sp_gguf_add_tensor(w, "token_embd.weight", SP_DTYPE_F32, 2, (uint64_t[]){dim, 1}, zeros);
    for (uint32_t l = 0; l < layers_present; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%u.attn_norm.weight", l);
        sp_gguf_add_tensor(w, name, SP_DTYPE_F32, 1, (uint64_t[]){dim}, zeros);
    }
    sp_error err = {{0}};
    cr_assert_eq(sp_gguf_write(w, path, &err), 0, "%s", err.msg);
    sp_gguf_writer_free(w);
    free(zeros);
}

/* Run a shell command; its stdout+stderr into out, the exit code back. */
static int run(const char *cmd, char *out, size_t cap)
{
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

Test(limits, block_count_is_bounded_by_the_tensor_index)
{
    const char *path = sp_test_tmpfile("5m-layers.gguf");
    write_header(path, 8, 5000000, 2, 64);
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(path, &err);
    cr_assert_not_null(g, "%s", err.msg);
    sp_config cfg;
    cr_assert_eq(sp_config_read(g, &cfg, &err), -1);
    cr_assert(strstr(err.msg, "llama.block_count is 5000000") && strstr(err.msg, "blk.4999999.attn_norm.weight"),
              "%s", err.msg);
    sp_gguf_close(g);

    /* `plan` spent 34 s on this header; now it is refused at once */
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' plan --model '%s' --cluster '%s/configs/clusters/home-lab.yaml'", SP_BINARY,
             path, SP_SOURCE_DIR);
    double t0 = sp_now();
    int rc = run(cmd, out, sizeof out);
    double took = sp_now() - t0;
    cr_expect_neq(rc, 0, "%s", out);
    cr_expect(strstr(out, "block_count is 5000000"), "%s", out);
    cr_expect(took < 5.0, "plan took %.1f s to refuse a 5 M-layer header", took);
}

Test(limits, memory_estimate_does_not_wrap)
{
    /* dim 2^20, 65536 sequences, 2^24 positions: the KV cache is 2^62
     * bytes per layer, 2^64 for four; the estimate once wrapped to "KV cache
     * 0.0 KiB ... plan OK" */
    const char *model = sp_test_tmpfile("wide.gguf");
    write_header(model, 1u << 20, 4, 4, 1u << 24);
    const char *plan = sp_test_tmpfile("wide.yaml");
    FILE *f = fopen(plan, "w");
    cr_assert_not_null(f);
    fprintf(f, "model:\n  path: %s\ncontext: 16777216\nbatching:\n  sequences: 65536\nstages:\n"
               "  - rank: 0\n    layers: [0, 3]\n",
            model);
    cr_assert_eq(fclose(f), 0);
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' check '%s'", SP_BINARY, plan);
    int rc = run(cmd, out, sizeof out);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect_null(strstr(out, "plan OK"), "%s", out);
    cr_expect(strstr(out, "overflows 64 bits") && strstr(out, "4 layers x 65536 sequences x 16777216 positions x "
                                                              "1048576 KV values"),
              "%s", out);
    /* the estimate itself saturates rather than wraps */
    sp_config c = {.kv_dim = 1 << 20};
    cr_expect_eq(sp_kv_bytes(&c, 1, 65536, 1 << 24), 1ull << 62);
    cr_expect_eq(sp_kv_bytes(&c, 4, 65536, 1 << 24), UINT64_MAX);
    cr_expect_eq(sp_kv_bytes(&c, 1, 1, 1), 4ull << 20);
}

/* A file of n nested flow maps, "{a: {a: ... 1 ...}}" (6 bytes a level). */
static void write_nested(const char *path, int n)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < n; i++) fputs("{a: ", f);
    fputc('1', f);
    for (int i = 0; i < n; i++) fputc('}', f);
    fputc('\n', f);
    cr_assert_eq(fclose(f), 0);
}

Test(limits, deep_yaml_is_refused_quickly)
{
    /* 600 KB of nested flow maps took libyaml 67 s before any check ran */
    const char *path = sp_test_tmpfile("nested.yaml");
    write_nested(path, 120000);
    static sp_plan plan;
    static sp_profile prof;
    static sp_cluster cl;
    sp_error err = {{0}};
    double t0 = sp_now();
    cr_assert_eq(sp_plan_load(path, &plan, &err), -1);
    cr_expect(strstr(err.msg, "nested.yaml:1:") && strstr(err.msg, "nest more than 32 deep"), "%s", err.msg);
    cr_assert_eq(sp_profile_load(path, &prof, &err), -1);
    cr_expect(strstr(err.msg, "nest more than 32 deep"), "%s", err.msg);
    cr_assert_eq(sp_cluster_load(path, &cl, &err), -1);
    cr_expect(strstr(err.msg, "nest more than 32 deep"), "%s", err.msg);
    double took = sp_now() - t0;
    cr_expect(took < 0.5, "three loads of a deep file took %.2f s", took);
}

Test(limits, huge_yaml_is_refused_before_parsing)
{
    /* a 141 MB plan took 2.5 GB; anything over 1 MiB is no plan */
    const char *path = sp_test_tmpfile("huge.yaml");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 60000; i++) fprintf(f, "# comment line %06d padding padding\n", i);
    cr_assert_eq(fclose(f), 0);
    static sp_plan plan;
    sp_error err = {{0}};
    cr_assert_eq(sp_plan_load(path, &plan, &err), -1);
    cr_expect(strstr(err.msg, "huge.yaml: the plan is ") && strstr(err.msg, "over the limit of 1048576 bytes"),
              "%s", err.msg);
}

Test(limits, non_regular_inputs_fail_at_once)
{
    /* a FIFO as plan, profile or cluster: the open used to block forever */
    const char *fifo = sp_test_tmpfile("fifo.yaml");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    static sp_plan plan;
    static sp_profile prof;
    static sp_cluster cl;
    sp_error err = {{0}};
    alarm(20);
    cr_assert_eq(sp_plan_load(fifo, &plan, &err), -1);
    cr_expect(strstr(err.msg, "fifo.yaml: is a FIFO (named pipe), not a regular file; give the path of the plan"),
              "%s", err.msg);
    cr_assert_eq(sp_profile_load(fifo, &prof, &err), -1);
    cr_expect(strstr(err.msg, "is a FIFO (named pipe)") && strstr(err.msg, "the board profile"), "%s", err.msg);
    cr_assert_eq(sp_cluster_load(fifo, &cl, &err), -1);
    cr_expect(strstr(err.msg, "is a FIFO (named pipe)") && strstr(err.msg, "the cluster file"), "%s", err.msg);
    cr_assert_eq(sp_plan_load("/dev/zero", &plan, &err), -1);
    cr_expect(strstr(err.msg, "/dev/zero: is a character device"), "%s", err.msg);
    alarm(0);
}

Test(limits, one_thread_bound_for_plans_clusters_and_the_engine)
{
    const char *path = sp_test_tmpfile("threads.yaml");
    static sp_plan plan;
    sp_error err = {{0}};
    for (int t = SP_MAX_THREADS; t <= SP_MAX_THREADS + 1; t++) {
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fprintf(f, "model:\n  path: m.gguf\ncontext: 64\nstages:\n  - rank: 0\n    layers: [0, 4]\n"
                   "    threads: %d\n", t);
        cr_assert_eq(fclose(f), 0);
        int rc = sp_plan_load(path, &plan, &err);
        if (t == SP_MAX_THREADS) cr_expect_eq(rc, 0, "%s", err.msg);
        else cr_expect(rc == -1 && strstr(err.msg, "threads must be between 1 and 256, got 257"), "%s", err.msg);
    }
    const char *cl_path = sp_test_tmpfile("cluster.yaml");
    FILE *f = fopen(cl_path, "w");
    cr_assert_not_null(f);
    fprintf(f, "name: c\nboards:\n  - name: a\n    profile: %s/configs/boards/rpi5-8gb.yaml\n    threads: 1000\n",
            SP_SOURCE_DIR);
    cr_assert_eq(fclose(f), 0);
    static sp_cluster cl;
    cr_assert_eq(sp_cluster_load(cl_path, &cl, &err), -1);
    cr_expect(strstr(err.msg, "1000") && strstr(err.msg, "256"), "%s", err.msg);
}
