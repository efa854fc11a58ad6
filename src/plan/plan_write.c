/* plan_write.c - writing a partition plan (schema: docs/plan-format.md).
 *
 * sp_plan_write emits the schema sp_plan_load reads (plan.c), with comments,
 * through PATH.tmp and a rename, so a reader never sees a half-written plan. */
#include "shardpipe/atomicfile.h"
#include "shardpipe/plan.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* `memory` as the reader parses it back exactly: the largest binary unit in
 * which the value has at most 3 decimals, else plain bytes. */
static void format_size(uint64_t bytes, char *buf, size_t size)
{
    static const struct {
        const char *suffix;
        int shift;
    } units[] = {{"GiB", 30}, {"MiB", 20}, {"KiB", 10}};
    for (size_t i = 0; i < 3; i++) {
        uint64_t unit = 1ull << units[i].shift;
        if (bytes < unit || bytes > (UINT64_MAX / 1000) || (bytes * 1000) % unit) continue;
        uint64_t milli = bytes * 1000 / unit;
        int n = snprintf(buf, size, "%llu.%03llu", (unsigned long long)(milli / 1000),
                         (unsigned long long)(milli % 1000));
        /* trim trailing zeros and a bare point: 3.500 -> 3.5, 7.000 -> 7 */
        while (n > 0 && buf[n - 1] == '0') buf[--n] = '\0';
        if (n > 0 && buf[n - 1] == '.') buf[--n] = '\0';
        snprintf(buf + n, size - (size_t)n, "%s", units[i].suffix);
        return;
    }
    snprintf(buf, size, "%llu", (unsigned long long)bytes);
}

/* Each line of `text` as a YAML comment at the given indentation. */
static void write_comment(FILE *f, const char *indent, const char *text)
{
    while (text && *text) {
        const char *nl = strchr(text, '\n');
        int len = nl ? (int)(nl - text) : (int)strlen(text);
        fprintf(f, "%s#%s%.*s\n", indent, len ? " " : "", len, text);
        text = nl ? nl + 1 : NULL;
    }
}

/* A YAML scalar: plain when it is safe, else double-quoted with escapes. */
static void write_scalar(FILE *f, const char *s)
{
    bool plain = *s && strchr("-?:,[]{}#&*!|>'\"%@`~ ", s[0]) == NULL &&
                 strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-+~") == strlen(s) &&
                 strcmp(s, "null") && strcmp(s, "Null") && strcmp(s, "NULL");
    if (plain) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\x%02x", (unsigned char)*s);
        /* YAML folds NEL, LS and PS as line breaks even inside quotes */
        else if (!strncmp(s, "\xc2\x85", 2)) fputs("\\N", f), s += 1;
        else if (!strncmp(s, "\xe2\x80\xa8", 3)) fputs("\\L", f), s += 2;
        else if (!strncmp(s, "\xe2\x80\xa9", 3)) fputs("\\P", f), s += 2;
        else fputc(*s, f);
    }
    fputc('"', f);
}

int sp_plan_write(const sp_plan *plan, const char *path, const char *header, const char *const *stage_comments,
                  sp_error *err)
{
    sp_atomic_file out;
    if (sp_atomic_open(&out, path, "the plan", err)) return -1;
    FILE *f = out.f;

    write_comment(f, "", header);
    fputs("model:\n  path: ", f);
    write_scalar(f, plan->model_path);
    fputs("\n", f);
    if (plan->model_sha256[0]) fprintf(f, "  sha256: %s\n", plan->model_sha256);
    char line[64];
    snprintf(line, sizeof line, "context: %d", plan->context);
    fprintf(f, "%-25s # positions per sequence\nbatching:\n", line);
    snprintf(line, sizeof line, "  sequences: %d", plan->sequences);
    fprintf(f, "%-25s # sequences in flight (a KV cache slot each on every stage)\n", line);
    snprintf(line, sizeof line, "  micro_batches: %d", plan->micro_batches);
    fprintf(f, "%-25s # groups the in-flight sequences are split into\n", line);
    snprintf(line, sizeof line, "  prefill_chunk: %d", plan->prefill_chunk);
    fprintf(f, "%-25s # prompt rows of a micro-batch at most\n", line);
    if (plan->n_prefill) {
        int len = snprintf(line, sizeof line, "  prefill_chunks: {");
        fputs(line, f);
        for (int i = 0; i < plan->n_prefill; i++)
            len += fprintf(f, "%s%d: %d", i ? ", " : "", plan->prefill_from[i], plan->prefill_rows[i]);
        fprintf(f, "}%*s # from N uncached prompt tokens on: chunks of that many rows\n", len < 24 ? 24 - len : 0, "");
    }
    snprintf(line, sizeof line, "wire: %s", sp_wire_name(plan->wire));
    fprintf(f, "%-25s # hidden states between stages: f32 | f16 | q8_0\n", line);
    if (plan->predicted_tok_s > 0) {
        snprintf(line, sizeof line, "predicted_tok_s: %.2f", plan->predicted_tok_s);
        fprintf(f, "%-25s # steady decode, all sequences in flight (shardpipe run compares)\n", line);
    }
    fprintf(f, "%-25s # in pipeline order\n", "stages:");
    for (int i = 0; i < plan->n_stages; i++) {
        const sp_stage_plan *st = &plan->stages[i];
        if (stage_comments) write_comment(f, "  ", stage_comments[i]);
        fprintf(f, "  - rank: %d\n    host: ", st->rank);
        write_scalar(f, st->host);
        fputc('\n', f);
        if (st->first == st->last) fprintf(f, "    layers: %d\n", st->first);
        else fprintf(f, "    layers: [%d, %d]\n", st->first, st->last);
        if (st->threads > 0) fprintf(f, "    threads: %d\n", st->threads);
        if (st->memory_budget) {
            char size[48];
            format_size(st->memory_budget, size, sizeof size);
            fprintf(f, "    memory: %s\n", size);
        }
        if (st->predicted_ms > 0) fprintf(f, "    predicted_ms: %.3f\n", st->predicted_ms);
        if (st->model_path[0]) {
            fputs("    model: ", f);
            write_scalar(f, st->model_path);
            fputc('\n', f);
        }
    }

    return sp_atomic_commit(&out, true, err);
}
