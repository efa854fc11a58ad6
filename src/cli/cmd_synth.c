/* cmd_synth.c - `shardpipe synth`: write a random-weight GGUF llama model. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "shardpipe/synth.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shardpipe synth -o OUT.gguf [--shape NAME] [--type T] [options]\n"
            "  --shape NAME        tiny | stories260K | stories15M | tinyllama-1.1b | llama2-7b (default tiny)\n"
            "  --type T            layer matrices: f32 | f16 | bf16 | q8_0 | q4_0 | iq4_nl | q2_k .. q6_k (default q8_0),\n"
            "                      or q4_k_m: Q4_K with llama.cpp's Q4_K_M mix (attn_v, ffn_down of some\n"
            "                      layers and the output in Q6_K); K types need dim, ffn multiples of 256\n"
            "  --embd-type T       token embedding type (default: q8_0, f32 for f32 models)\n"
            "  --output-type T     output matrix type (default q8_0, as llama.cpp's Q4_0 files; f32 for f32)\n"
            "  --tied              no output matrix: the head uses the embedding\n"
            "  --vocab-from GGUF   copy the tokenizer (and vocabulary size) from this model\n"
            "  --dim N --layers N --heads N --kv-heads N --ffn N --vocab N --ctx N   override the shape\n"
            "  --seed S            weights seed (default 1)\n");
}

static int parse_type(const char *s, sp_dtype *t)
{
    static const struct { const char *name; sp_dtype t; } types[] = {
        {"f32", SP_DTYPE_F32}, {"f16", SP_DTYPE_F16}, {"bf16", SP_DTYPE_BF16},
        {"q8_0", SP_DTYPE_Q8_0}, {"q4_0", SP_DTYPE_Q4_0}, {"iq4_nl", SP_DTYPE_IQ4_NL}, {"q2_k", SP_DTYPE_Q2_K}, {"q3_k", SP_DTYPE_Q3_K},
        {"q4_k", SP_DTYPE_Q4_K}, {"q5_k", SP_DTYPE_Q5_K}, {"q6_k", SP_DTYPE_Q6_K},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(s, types[i].name)) { *t = types[i].t; return 0; }
    fprintf(stderr, "shardpipe synth: unknown type '%s' (use f32, f16, bf16, q8_0, q4_0, iq4_nl, q2_k, q3_k, q4_k, q5_k or q6_k)\n", s);
    return -1;
}

int cmd_synth(int argc, char **argv)
{
    enum { O_SHAPE = 256, O_TYPE, O_EMBD, O_OUT_TYPE, O_TIED, O_VOCAB_FROM, O_DIM, O_LAYERS, O_HEADS,
           O_KV_HEADS, O_FFN, O_VOCAB, O_CTX, O_SEED };
    static const struct option opts[] = {
        {"shape", required_argument, 0, O_SHAPE}, {"type", required_argument, 0, O_TYPE},
        {"embd-type", required_argument, 0, O_EMBD}, {"output-type", required_argument, 0, O_OUT_TYPE},
        {"tied", no_argument, 0, O_TIED}, {"vocab-from", required_argument, 0, O_VOCAB_FROM},
        {"dim", required_argument, 0, O_DIM}, {"layers", required_argument, 0, O_LAYERS},
        {"heads", required_argument, 0, O_HEADS}, {"kv-heads", required_argument, 0, O_KV_HEADS},
        {"ffn", required_argument, 0, O_FFN}, {"vocab", required_argument, 0, O_VOCAB},
        {"ctx", required_argument, 0, O_CTX}, {"seed", required_argument, 0, O_SEED},
        {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    const char *out = NULL, *shape = "tiny";
    sp_synth_spec s;
    sp_error err = {{0}};
    /* first pass: the shape, so that later options override it */
    optind = 1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1)
        if (c == O_SHAPE) shape = optarg;
    opterr = 1;
    if (sp_synth_shape(shape, &s, &err)) return sp_cli_fail("synth", &err);
    int have_embd = 0, have_out = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        case O_SHAPE: break;
        case O_TYPE:
            s.k_m_mix = !strcmp(optarg, "q4_k_m");
            rc = parse_type(s.k_m_mix ? "q4_k" : optarg, &s.type);
            break;
        case O_EMBD: rc = parse_type(optarg, &s.embd_type); have_embd = 1; break;
        case O_OUT_TYPE: rc = parse_type(optarg, &s.output_type); have_out = 1; break;
        case O_TIED: s.tied = 1; break;
        case O_VOCAB_FROM: s.vocab_from = optarg; break;
        case O_DIM: rc = sp_cli_int("synth", "--dim", optarg, 32, 65536, &s.dim); break;
        case O_LAYERS: rc = sp_cli_int("synth", "--layers", optarg, 1, 1024, &s.n_layers); break;
        case O_HEADS: rc = sp_cli_int("synth", "--heads", optarg, 1, 1024, &s.n_heads); break;
        case O_KV_HEADS: rc = sp_cli_int("synth", "--kv-heads", optarg, 1, 1024, &s.n_kv_heads); break;
        case O_FFN: rc = sp_cli_int("synth", "--ffn", optarg, 32, 1 << 20, &s.ffn_dim); break;
        case O_VOCAB: rc = sp_cli_int("synth", "--vocab", optarg, 300, 1 << 20, &s.n_vocab); break;
        case O_CTX: rc = sp_cli_int("synth", "--ctx", optarg, 1, 1 << 20, &s.ctx); break;
        case O_SEED: rc = sp_cli_u64("synth", "--seed", optarg, &s.seed); break;
        default: usage(stderr); return 2;
        }
        if (rc) return 2;
    }
    if (!out) {
        fprintf(stderr, "shardpipe synth: -o OUT.gguf is required\n");
        usage(stderr);
        return 2;
    }
    if (s.type == SP_DTYPE_F32) {
        if (!have_embd) s.embd_type = SP_DTYPE_F32;
        if (!have_out) s.output_type = SP_DTYPE_F32;
    }
    if (sp_dtype_block(s.type) == 256) { /* llama.cpp's K files: embedding as the layers, Q6_K output */
        if (!have_embd) s.embd_type = s.type;
        if (!have_out) s.output_type = SP_DTYPE_Q6_K;
    }
    if (sp_synth_write(&s, out, &err)) return sp_cli_fail("synth", &err);
    fprintf(stderr, "wrote %s (%s shape, %d layers, dim %d)\n", out, s.name, s.n_layers, s.dim);
    return 0;
}
