/* cli_util.c - see cli_util.h. */
#include "cli_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sp_cli_fail(const char *cmd, const sp_error *err)
{
    fprintf(stderr, "shardpipe %s: %s\n", cmd, err->msg[0] ? err->msg : "failed (no detail)");
    return 1;
}

int sp_cli_finish_stdout(const char *cmd, int rc)
{
    /* a failed write leaves its bytes in the buffer: the flush tries them
     * again and sets errno to the reason */
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return rc;
    int e = errno;
    fprintf(stderr, "shardpipe %s: stdout: cannot write: %s; the output is incomplete (check the free space or "
                    "the reader of the pipe)\n", cmd, e ? strerror(e) : "write error");
    return 1;
}

int sp_cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "shardpipe %s: %s expects an integer in [%ld, %ld], got '%s'\n", cmd, opt, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int sp_cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "shardpipe %s: %s expects a non-negative integer, got '%s'\n", cmd, opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

int sp_cli_float(const char *cmd, const char *opt, const char *s, float lo, float hi, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "shardpipe %s: %s expects a number in [%g, %g], got '%s'\n", cmd, opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int sp_cli_parse_ids(const char *cmd, const char *opt, const char *s, int n_vocab, int *out, int cap)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) return n;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || (*end && *end != ' ' && *end != ',' && *end != '\t' && *end != '\n') || v < 0 ||
            v >= n_vocab) {
            fprintf(stderr, "shardpipe %s: %s: '%.*s' (entry %d) is not a token id in [0, %d); give ids "
                            "separated by spaces, e.g. \"1 15043\"\n",
                    cmd, opt, (int)strcspn(p, " ,\t\n"), p, n + 1, n_vocab);
            return -1;
        }
        if (n == cap) { /* cannot happen with cap >= strlen(s) / 2 + 1 */
            fprintf(stderr, "shardpipe %s: %s: more than %d ids\n", cmd, opt, cap);
            return -1;
        }
        out[n++] = (int)v;
        p = end;
    }
}

int sp_cli_write_f32(FILE *f, const float *v, size_t n, const char *path, sp_error *err)
{
    if (fwrite(v, sizeof(float), n, f) != n) return sp_errorf(err, "cannot write %s (disk full?)", path);
    return 0;
}

static const char *const sampler_names[] = {"temp", "top-k", "top-p", "min-p", "repeat-penalty",
                                            "repeat-last-n", "seed"};

void sp_cli_sampler_options(struct option *opts, int base)
{
    for (int i = 0; i < 7; i++) {
        opts[i].name = sampler_names[i];
        opts[i].has_arg = required_argument;
        opts[i].flag = NULL;
        opts[i].val = base + i;
    }
    memset(&opts[7], 0, sizeof opts[7]);
}

int sp_cli_sampler_parse(const char *cmd, int which, const char *arg, sp_sampler_params *p)
{
    char opt[32];
    snprintf(opt, sizeof opt, "--%s", which >= 0 && which < 7 ? sampler_names[which] : "?");
    switch (which) {
    case 0: return sp_cli_float(cmd, opt, arg, 0.0f, 100.0f, &p->temperature);
    case 1: return sp_cli_int(cmd, opt, arg, 0, 1 << 24, &p->top_k);
    case 2: return sp_cli_float(cmd, opt, arg, 0.0f, 1.0f, &p->top_p);
    case 3: return sp_cli_float(cmd, opt, arg, 0.0f, 1.0f, &p->min_p);
    case 4: return sp_cli_float(cmd, opt, arg, 0.0f, 100.0f, &p->repeat_penalty);
    case 5: return sp_cli_int(cmd, opt, arg, 0, 1 << 20, &p->repeat_last_n);
    case 6: return sp_cli_u64(cmd, opt, arg, &p->seed);
    default: return -1;
    }
}
