/* synth.h - write a GGUF Llama model with seeded random weights at a given
 * shape and quant type: for tests and for benchmarks at real sizes without
 * downloading anything. Weights are N(0, 1) * 0.02 (norms 1.0), as the shared
 * tiny-random models; the same seed gives the same file. The vocabulary is
 * copied from another GGUF (tokenizer.* keys) or, without one, is a
 * byte-level SentencePiece vocabulary padded to the requested size. */
#ifndef SHARDPIPE_SYNTH_H
#define SHARDPIPE_SYNTH_H

#include <stdint.h>

#include "shardpipe/error.h"
#include "shardpipe/gguf.h"

typedef struct sp_synth_spec {
    char name[64];
    int dim, n_layers, n_heads, n_kv_heads, ffn_dim, n_vocab, ctx;
    float rope_base, norm_eps;
    sp_dtype type;          /* layer matrices */
    sp_dtype embd_type;     /* token embedding */
    sp_dtype output_type;   /* output matrix (llama.cpp keeps Q8_0 in Q4_0 files) */
    int tied;               /* no output.weight: the head uses the embedding */
    int k_m_mix;            /* llama.cpp's _M mix: attn_v and ffn_down of its "more bits"
                               layers (first and last eighth, every third between) in Q6_K */
    uint64_t seed;
    const char *vocab_from; /* GGUF to copy tokenizer.* from, or NULL */
} sp_synth_spec;

/* Fill spec with a named shape: "stories260K", "stories15M", "tinyllama-1.1b",
 * "llama2-7b", "tiny" (for tests). Returns -1 for an unknown name. */
int sp_synth_shape(const char *name, sp_synth_spec *spec, sp_error *err);

int sp_synth_write(const sp_synth_spec *spec, const char *path, sp_error *err);

#endif
