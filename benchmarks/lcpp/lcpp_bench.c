/* lcpp_bench.c - times llama.cpp's libllama on a GGUF file, for
 * benchmarks/vs_llamacpp.sh: the same measurements as `shardpipe bench
 * engine` (a prompt micro-batch from an empty cache with logits for its last
 * row only, then single tokens decoded greedily after a 128-token prompt),
 * so the two programs can be compared on one file in one run. Only the
 * public llama.h API is used; the script downloads the prebuilt libraries
 * and headers (npm package @node-llama-cpp/linux-x64 and node-llama-cpp)
 * and builds this file against them. Nothing of llama.cpp is in the project.
 *
 *   lcpp_bench -m MODEL --lib-dir DIR [-t THREADS] [--prompt 128,512]
 *              [--gen 64] [--reps 1] [--poll P] [--greedy-ids 1,2,3 --greedy-n 8
 *              [--logits-out F]]
 *   lcpp_bench -m MODEL --lib-dir DIR --batched 4,8 [-t 2] [--prompt 128] [--gen 32] [--reps 1]
 *
 * --batched NPL times what llama.cpp's llama-batched-bench times, for each
 * NPL: the prompts of NPL sequences (each --prompt tokens, its own seeded
 * ids) in one llama_batch from an empty cache, logits for each sequence's
 * last token, then --gen steps of one batch holding one token of every
 * sequence (each sequence's greedy next token); prompt tok/s = NPL x prompt
 * / seconds, decode tok/s = NPL x gen / seconds.
 *
 * --poll P attaches a thread pool of our own whose idle threads spin at
 * polling level P (0 = sleep at once; llama.cpp's own pool, used without
 * --poll, spins at level 50): on a host whose cores are oversubscribed a
 * spinning thread can hold the core its partner needs.
 *
 * Prints one JSON object on stdout; llama.cpp's log goes to stderr only with
 * LCPP_BENCH_VERBOSE set. Exit status non-zero with a message on failure. */
#define _POSIX_C_SOURCE 200809L
#include "ggml-backend.h"
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LIST 16

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void quiet_log(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR || getenv("LCPP_BENCH_VERBOSE"))
        fputs(text, stderr);
}

static void die(const char *what)
{
    fprintf(stderr, "lcpp_bench: %s\n", what);
    exit(1);
}

/* "128,512" -> {128, 512}; returns the count, 0 on a bad list. */
static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 1 << 20)
            return 0;
        out[n++] = (int)v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return 0;
    }
    return *s ? 0 : n;
}

/* The same xorshift stream for every run: prompt ids depend on the seed only. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void batch_fill(struct llama_batch *b, const llama_token *ids, int n, int pos0, int logits_last)
{
    b->n_tokens = n;
    for (int i = 0; i < n; i++) {
        b->token[i] = ids[i];
        b->pos[i] = pos0 + i;
        b->n_seq_id[i] = 1;
        b->seq_id[i][0] = 0;
        b->logits[i] = (int8_t)(logits_last ? i == n - 1 : 0);
    }
}

static llama_token argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* Which libggml-cpu-<variant>.so ggml chose, from this process's mappings. */
static void cpu_variant(char *out, size_t cap)
{
    char line[1024];
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, "libggml-cpu-");
        if (p) {
            p[strcspn(p, "\n")] = 0;
            snprintf(out, cap, "%s", p);
            break;
        }
    }
    fclose(f);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    double tmp[64];
    memcpy(tmp, v, (size_t)n * sizeof *v);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
    return n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
}

static void print_runs(const char *key, const double *v, int n, double med)
{
    printf("\"%s\": [", key);
    for (int i = 0; i < n; i++)
        printf("%s%.3f", i ? ", " : "", v[i]);
    printf("], \"%s_median\": %.3f", key, med);
}

/* CPU seconds of the whole process (every thread), and those the last
 * run_prompt took: a shared host's load leaves them out, where it stretches
 * the wall time. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static double last_prompt_cpu;

/* Runs ids[0..n) from an empty cache; returns seconds, the greedy next token in *next. */
static double run_prompt(struct llama_context *ctx, struct llama_batch *b, const llama_token *ids, int n,
                         int n_vocab, llama_token *next)
{
    llama_memory_clear(llama_get_memory(ctx), true);
    batch_fill(b, ids, n, 0, 1);
    double t0 = now_s(), c0 = cpu_s();
    if (llama_decode(ctx, *b) != 0)
        die("llama_decode failed on the prompt batch");
    double t = now_s() - t0;
    last_prompt_cpu = cpu_s() - c0;
    *next = argmax(llama_get_logits_ith(ctx, n - 1), n_vocab);
    return t;
}

/* Decodes gen tokens one at a time from position pos0, greedily; returns seconds. */
static double run_decode(struct llama_context *ctx, struct llama_batch *b, llama_token tok, int pos0, int gen,
                         int n_vocab, llama_token *out)
{
    double t0 = now_s();
    for (int i = 0; i < gen; i++) {
        if (out)
            out[i] = tok;
        batch_fill(b, &tok, 1, pos0 + i, 1);
        if (llama_decode(ctx, *b) != 0)
            die("llama_decode failed on a single token");
        tok = argmax(llama_get_logits_ith(ctx, 0), n_vocab);
    }
    return now_s() - t0;
}

/* --batched: npl sequences of `prompt` tokens each, then `gen` steps of npl
 * tokens; returns the prompt and decode tok/s of one run in pp, tg. */
static void run_batched(struct llama_context *ctx, struct llama_batch *b, int npl, int prompt, int gen, int n_vocab,
                        uint64_t seed, double *pp, double *tg)
{
    llama_memory_clear(llama_get_memory(ctx), true);
    uint64_t s = 0x9E3779B97F4A7C15ull ^ seed;
    b->n_tokens = 0;
    for (int q = 0; q < npl; q++)
        for (int i = 0; i < prompt; i++) {
            int k = b->n_tokens++;
            b->token[k] = (llama_token)(rng_next(&s) % (uint64_t)n_vocab);
            b->pos[k] = i;
            b->n_seq_id[k] = 1;
            b->seq_id[k][0] = q;
            b->logits[k] = (int8_t)(i == prompt - 1);
        }
    double t0 = now_s();
    if (llama_decode(ctx, *b) != 0)
        die("llama_decode failed on the batched prompts");
    *pp = (double)npl * prompt / (now_s() - t0);
    llama_token next[256];
    for (int q = 0; q < npl; q++)
        next[q] = argmax(llama_get_logits_ith(ctx, q * prompt + prompt - 1), n_vocab);
    t0 = now_s();
    for (int g = 0; g < gen; g++) {
        b->n_tokens = npl;
        for (int q = 0; q < npl; q++) {
            b->token[q] = next[q];
            b->pos[q] = prompt + g;
            b->n_seq_id[q] = 1;
            b->seq_id[q][0] = q;
            b->logits[q] = 1;
        }
        if (llama_decode(ctx, *b) != 0)
            die("llama_decode failed on a batched decode step");
        for (int q = 0; q < npl; q++)
            next[q] = argmax(llama_get_logits_ith(ctx, q), n_vocab);
    }
    *tg = (double)npl * gen / (now_s() - t0);
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *lib_dir = NULL, *greedy_arg = NULL, *logits_out = NULL;
    int threads = 1, gen = 64, reps = 1, greedy_n = 8, seed = 42, poll = -1;
    int prompts[MAX_LIST] = {128, 512}, n_prompts = 2;
    int npls[MAX_LIST], n_npl = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            die("every option takes a value; see the comment at the top of benchmarks/lcpp/lcpp_bench.c");
        if (!strcmp(a, "-m"))
            model_path = v;
        else if (!strcmp(a, "--lib-dir"))
            lib_dir = v;
        else if (!strcmp(a, "-t"))
            threads = atoi(v);
        else if (!strcmp(a, "--prompt"))
            n_prompts = parse_list(v, prompts, MAX_LIST);
        else if (!strcmp(a, "--gen"))
            gen = atoi(v);
        else if (!strcmp(a, "--reps"))
            reps = atoi(v);
        else if (!strcmp(a, "--poll"))
            poll = atoi(v);
        else if (!strcmp(a, "--seed"))
            seed = atoi(v);
        else if (!strcmp(a, "--greedy-ids"))
            greedy_arg = v;
        else if (!strcmp(a, "--logits-out"))
            logits_out = v;
        else if (!strcmp(a, "--batched"))
            n_npl = parse_list(v, npls, MAX_LIST);
        else if (!strcmp(a, "--greedy-n"))
            greedy_n = atoi(v);
        else {
            fprintf(stderr, "lcpp_bench: unknown option '%s'\n", a);
            return 1;
        }
        i++;
    }
    if (!model_path || !lib_dir)
        die("usage: lcpp_bench -m MODEL --lib-dir DIR [-t N] [--prompt 128,512] [--gen 64] [--reps 1] "
            "[--greedy-ids 1,2,3 [--greedy-n 8]]");
    if (threads < 1 || gen < 1 || reps < 1 || reps > 64 || n_prompts < 1 || greedy_n < 1 || greedy_n > 256)
        die("bad -t, --gen, --reps (1-64), --prompt or --greedy-n value");

    for (int i = 0; i < n_npl; i++)
        if (npls[i] < 1 || npls[i] > 256)
            die("--batched: give 1 to 256 sequences per entry, e.g. --batched 4,8");
    llama_log_set(quiet_log, NULL);
    ggml_log_set(quiet_log, NULL);
    /* The package builds ggml with its CPU backends as loadable variants
     * (libggml-cpu-<arch>.so); this picks the best one for this CPU. */
    ggml_backend_load_all_from_path(lib_dir);
    llama_backend_init();

    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (!model) {
        fprintf(stderr, "lcpp_bench: llama.cpp could not load %s (rerun with LCPP_BENCH_VERBOSE=1)\n", model_path);
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);

    int max_prompt = 128;
    for (int i = 0; i < n_prompts; i++)
        if (prompts[i] > max_prompt)
            max_prompt = prompts[i];
    int max_npl = 1;
    for (int i = 0; i < n_npl; i++)
        if (npls[i] > max_npl)
            max_npl = npls[i];
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(max_prompt + gen + 256 + 64);
    cp.n_batch = cp.n_ubatch = (uint32_t)max_prompt;
    if (n_npl) { /* as llama-batched-bench: a slot per sequence, the default micro-batch */
        cp.n_ctx = (uint32_t)(max_npl * (prompts[0] + gen + 16));
        cp.n_batch = (uint32_t)(max_npl * prompts[0]);
        cp.n_ubatch = llama_context_default_params().n_ubatch;
        if (cp.n_ubatch > cp.n_batch)
            cp.n_ubatch = cp.n_batch;
        cp.n_seq_max = (uint32_t)max_npl;
    }
    cp.n_threads = cp.n_threads_batch = threads;
    cp.no_perf = true;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx)
        die("llama_init_from_model failed (rerun with LCPP_BENCH_VERBOSE=1)");
    if (poll >= 0) {
        /* ggml_threadpool_new lives in the CPU backend library, loaded at run time. */
        ggml_backend_reg_t cpu = ggml_backend_reg_by_name("CPU");
        struct ggml_threadpool *(*tp_new)(struct ggml_threadpool_params *) =
            cpu ? (struct ggml_threadpool *(*)(struct ggml_threadpool_params *))ggml_backend_reg_get_proc_address(
                      cpu, "ggml_threadpool_new")
                : NULL;
        if (!tp_new)
            die("--poll: the CPU backend does not export ggml_threadpool_new");
        struct ggml_threadpool_params tpp = ggml_threadpool_params_default(threads);
        tpp.poll = (uint32_t)poll;
        struct ggml_threadpool *tp = tp_new(&tpp);
        if (!tp)
            die("--poll: ggml_threadpool_new failed");
        llama_attach_threadpool(ctx, tp, tp); /* kept until exit */
    }
    int batch_cap = max_prompt > 256 ? max_prompt : 256;
    if (n_npl && max_npl * prompts[0] > batch_cap)
        batch_cap = max_npl * prompts[0];
    struct llama_batch batch = llama_batch_init(batch_cap, 0, 1);

    llama_token *ids = malloc(sizeof *ids * (size_t)max_prompt);
    if (!ids)
        die("out of memory");
    uint64_t s = 0x9E3779B97F4A7C15ull ^ (uint64_t)seed;
    for (int i = 0; i < max_prompt; i++)
        ids[i] = (llama_token)(rng_next(&s) % (uint64_t)n_vocab);

    printf("{\"program\": \"lcpp_bench\", \"model\": \"%s\", \"threads\": %d, \"n_vocab\": %d, "
           "\"flash_attn_type\": \"%s\", \"poll\": %d, \"system_info\": \"",
           model_path, threads, n_vocab, llama_flash_attn_type_name(cp.flash_attn_type), poll);
    for (const char *p = llama_print_system_info(); *p; p++)
        if (*p != '"' && *p != '\\' && *p != '\n')
            putchar(*p);
    printf("\", \"devices\": [");
    for (size_t i = 0; i < ggml_backend_dev_count(); i++)
        printf("%s\"%s\"", i ? ", " : "", ggml_backend_dev_description(ggml_backend_dev_get(i)));
    char variant[256];
    cpu_variant(variant, sizeof variant);
    printf("], \"cpu_backend\": \"%s\",\n", variant);

    if (n_npl) { /* the batched mode alone */
        printf("\"n_ubatch\": %u, \"kv_unified\": %s, \"batched\": [", cp.n_ubatch, cp.kv_unified ? "true" : "false");
        double pp[64], tg[64];
        for (int i = 0; i < n_npl; i++) {
            /* untimed warm-up: pages the weights in, sizes the graphs */
            run_batched(ctx, &batch, npls[i], prompts[0] < 16 ? prompts[0] : 16, 2, n_vocab, (uint64_t)seed, &pp[0],
                        &tg[0]);
            for (int r = 0; r < reps; r++)
                run_batched(ctx, &batch, npls[i], prompts[0], gen, n_vocab, (uint64_t)seed + (uint64_t)r, &pp[r], &tg[r]);
            printf("%s\n {\"sequences\": %d, \"prompt_tokens\": %d, \"gen_tokens\": %d, ", i ? "," : "", npls[i],
                   prompts[0], gen);
            print_runs("prompt_tok_s", pp, reps, median(pp, reps));
            printf(", ");
            print_runs("decode_tok_s", tg, reps, median(tg, reps));
            printf("}");
        }
        printf("\n]}\n");
        goto done;
    }

    /* One untimed warm-up of each shape: pages the weights in, sizes the graphs. */
    llama_token next;
    run_prompt(ctx, &batch, ids, 128 < max_prompt ? 128 : max_prompt, n_vocab, &next);
    run_decode(ctx, &batch, next, 128, gen < 8 ? gen : 8, n_vocab, NULL);

    double runs[64], per_cpu[64];
    printf("\"prompt\": [");
    for (int p = 0; p < n_prompts; p++) {
        for (int r = 0; r < reps; r++) {
            runs[r] = prompts[p] / run_prompt(ctx, &batch, ids, prompts[p], n_vocab, &next);
            per_cpu[r] = last_prompt_cpu > 0.0 ? prompts[p] / last_prompt_cpu : 0.0;
        }
        printf("%s{\"tokens\": %d, ", p ? ", " : "", prompts[p]);
        print_runs("tok_s", runs, reps, median(runs, reps));
        printf(", ");
        print_runs("tok_per_cpu_s", per_cpu, reps, median(per_cpu, reps));
        printf("}");
    }
    printf("],\n");

    /* Decode as shardpipe's bench engine does: after a 128-token prompt. */
    int pre = 128 < max_prompt ? 128 : max_prompt;
    for (int r = 0; r < reps; r++) {
        run_prompt(ctx, &batch, ids, pre, n_vocab, &next);
        runs[r] = gen / run_decode(ctx, &batch, next, pre, gen, n_vocab, NULL);
    }
    printf("\"decode\": {\"tokens\": %d, \"start_pos\": %d, ", gen, pre);
    print_runs("tok_s", runs, reps, median(runs, reps));
    printf("}");

    if (greedy_arg) {
        int gids[256], ng = parse_list(greedy_arg, gids, 256);
        if (ng < 1)
            die("--greedy-ids: expected a comma-separated list of at most 256 token ids");
        llama_token tok[256], out[256];
        for (int i = 0; i < ng; i++) {
            if (gids[i] >= n_vocab)
                die("--greedy-ids: a token id is not below the vocabulary size");
            tok[i] = gids[i];
        }
        run_prompt(ctx, &batch, tok, ng, n_vocab, &next);
        if (logits_out) { /* float32 logits of the last prompt row, as shardpipe generate --logits-out */
            FILE *f = fopen(logits_out, "wb");
            if (!f || fwrite(llama_get_logits_ith(ctx, ng - 1), sizeof(float), (size_t)n_vocab, f) != (size_t)n_vocab ||
                fclose(f) != 0)
                die("--logits-out: cannot write the file");
        }
        run_decode(ctx, &batch, next, ng, greedy_n, n_vocab, out);
        printf(",\n\"greedy\": {\"prompt_ids\": [");
        for (int i = 0; i < ng; i++)
            printf("%s%d", i ? ", " : "", tok[i]);
        printf("], \"tokens\": [");
        for (int i = 0; i < greedy_n; i++)
            printf("%s%d", i ? ", " : "", out[i]);
        printf("]}");
    }
    printf("\n}\n");

done:
    free(ids);
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
