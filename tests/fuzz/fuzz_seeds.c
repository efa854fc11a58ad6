/* fuzz_seeds.c - writes the GGUF seeds of the gguf target into a folder:
 * tiny complete models (a few KB to ~30 KB, so the fuzzer stays fast) that
 * reach config, model open, tokenizer and inspect, and one file with a
 * value of every metadata type and a tensor of every dtype.
 *   fuzz_seeds DIR [VOCAB.gguf]   (VOCAB: copy its tokenizer, e.g. stories260K) */
#include <stdio.h>
#include <string.h>

#include "shardpipe/gguf.h"
#include "shardpipe/synth.h"

static int model(const char *dir, const char *name, int dim, int layers, int heads, int kv, int ffn, int vocab,
                 sp_dtype type, int tied, const char *vocab_from)
{
    sp_synth_spec s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "%s", name);
    s.dim = dim, s.n_layers = layers, s.n_heads = heads, s.n_kv_heads = kv, s.ffn_dim = ffn, s.n_vocab = vocab;
    s.ctx = 64, s.rope_base = 10000.0f, s.norm_eps = 1e-5f;
    s.type = s.embd_type = s.output_type = type;
    s.tied = tied, s.seed = 7, s.vocab_from = vocab_from;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    sp_error err = {{0}};
    if (sp_synth_write(&s, path, &err)) {
        fprintf(stderr, "fuzz_seeds: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static int every_type(const char *dir)
{
    sp_gguf_writer *w = sp_gguf_writer_new();
    uint8_t u8s[3] = {1, 2, 3};
    int64_t i64s[2] = {-1, 1ll << 40};
    double f64s[2] = {0.5, -1e300};
    sp_gguf_str strs[3] = {{1, "a"}, {0, ""}, {4, "\xe2\x96\x81x"}};
    sp_gguf_add_u32(w, "general.alignment", 64);
    sp_gguf_add_str(w, "general.architecture", "llama");
    sp_gguf_add_i32(w, "llama.block_count", 1);
    sp_gguf_add_f32(w, "llama.rope.freq_base", 10000.0f);
    sp_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", true);
    sp_gguf_add_arr(w, "a.u8", SP_GGUF_UINT8, u8s, 3);
    sp_gguf_add_arr(w, "a.i64", SP_GGUF_INT64, i64s, 2);
    sp_gguf_add_arr(w, "a.f64", SP_GGUF_FLOAT64, f64s, 2);
    sp_gguf_add_str_arr(w, "a.str", strs, 3);
    static uint8_t zeros[64 * 4];
    const sp_dtype types[] = {SP_DTYPE_F32, SP_DTYPE_F16, SP_DTYPE_BF16, SP_DTYPE_Q8_0, SP_DTYPE_Q4_0};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "t.%s", sp_dtype_name(types[i]));
        uint64_t ne[2] = {32, 2};
        sp_gguf_add_tensor(w, name, types[i], 2, ne, zeros);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/every-type.gguf", dir);
    sp_error err = {{0}};
    int rc = sp_gguf_write(w, path, &err);
    sp_gguf_writer_free(w);
    if (rc) fprintf(stderr, "fuzz_seeds: %s\n", err.msg);
    return rc != 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR [VOCAB.gguf]\n");
        return 2;
    }
    const char *dir = argv[1], *vocab = argc > 2 ? argv[2] : NULL;
    int bad = every_type(dir);
    bad += model(dir, "bytes-f32", 8, 2, 2, 1, 16, 300, SP_DTYPE_F32, 0, NULL);
    bad += model(dir, "bytes-q4_0-tied", 32, 1, 2, 2, 32, 270, SP_DTYPE_Q4_0, 1, NULL);
    if (vocab) bad += model(dir, "vocab-q8_0-tied", 32, 1, 2, 1, 32, 0, SP_DTYPE_Q8_0, 1, vocab);
    return bad ? 1 : 0;
}
