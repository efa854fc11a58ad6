/* tokenizer.c - the tokenizer API over both algorithms: loading what every
 * GGUF vocabulary has (tokens, token types, BOS/EOS/EOT, flags), the tokens
 * that end generation, and sp_tokenize: BOS, special tokens matched in the
 * text, and the plain text between them handed to SentencePiece
 * (tokenizer_spm.c) or byte-level BPE (tokenizer_bpe.c).
 *
 * Special tokens are found before any pre-tokenizing, leftmost first and the
 * longest at a position (as Hugging Face tokenizers' added-token matcher
 * does): at each byte that can start a special piece, the special pieces of
 * each length present in the vocabulary, longest first, are looked up in a
 * hash map. With SP_TOK_PARSE_SPECIAL CONTROL and USER_DEFINED pieces match,
 * without it USER_DEFINED only (llama.cpp's and the references' semantics). */
#include <stdlib.h>
#include <string.h>

#include "shardpipe/util.h"
#include "tokenizer_impl.h"

/* ---- loading ---- */

#define MAX_PIECE 4096 /* bytes of the longest piece a vocabulary may have */

/* Optional boolean key; integer-typed flags are accepted too. */
static int get_bool_or(const sp_gguf *g, const char *key, bool def, bool *out, sp_error *err)
{
    const sp_gguf_kv *kv = sp_gguf_find(g, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    switch (kv->type) {
    case SP_GGUF_BOOL: *out = kv->val.b; return 0;
    case SP_GGUF_UINT8: case SP_GGUF_UINT16: case SP_GGUF_UINT32: case SP_GGUF_UINT64:
        *out = kv->val.u64 != 0;
        return 0;
    case SP_GGUF_INT8: case SP_GGUF_INT16: case SP_GGUF_INT32: case SP_GGUF_INT64:
        *out = kv->val.i64 != 0;
        return 0;
    default:
        return sp_errorf(err, "%s: metadata key %s has GGUF type %d, expected a bool", g->path, key,
                         (int)kv->type);
    }
}

/* Optional token id key: def (which may be -1, "none") when absent. */
static int get_id_or(const sp_gguf *g, const char *key, int def, int n_vocab, int *out, sp_error *err)
{
    if (!sp_gguf_find(g, key)) {
        *out = def;
        return 0;
    }
    uint32_t v;
    if (sp_gguf_get_u32(g, key, &v, err)) return -1;
    if (v >= (uint32_t)n_vocab)
        return sp_errorf(err, "%s: %s = %u is outside the vocabulary of %d tokens", g->path, key, v,
                         n_vocab);
    *out = (int)v;
    return 0;
}

static int copy_pieces(sp_tokenizer *t, const sp_gguf *g, sp_error *err)
{
    const sp_gguf_kv *tokens, *types;
    if (sp_gguf_get_arr(g, "tokenizer.ggml.tokens", SP_GGUF_STRING, &tokens, err) ||
        sp_gguf_get_arr(g, "tokenizer.ggml.token_type", SP_GGUF_INT32, &types, err))
        return -1;
    uint64_t n = tokens->arr_n;
    if (n < 3 || n > (1u << 24))
        return sp_errorf(err, "%s: tokenizer.ggml.tokens has %llu entries, expected between 3 and 16777216",
                         g->path, (unsigned long long)n);
    if (types->arr_n != n)
        return sp_errorf(err, "%s: tokenizer.ggml.token_type has %llu entries, expected %llu (one per "
                              "entry of tokenizer.ggml.tokens)",
                         g->path, (unsigned long long)types->arr_n, (unsigned long long)n);
    uint64_t arena_bytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (tokens->arr_strs[i].len > MAX_PIECE)
            return sp_errorf(err, "%s: tokenizer.ggml.tokens[%llu] is %llu bytes long, expected at most 4096",
                             g->path, (unsigned long long)i, (unsigned long long)tokens->arr_strs[i].len);
        arena_bytes += tokens->arr_strs[i].len + 1;
    }
    t->n_vocab = (int)n;
    t->pieces = sp_alloc(n * sizeof *t->pieces);
    t->piece_len = sp_alloc(n * sizeof *t->piece_len);
    t->types = sp_alloc(n * sizeof *t->types);
    t->arena = sp_alloc(arena_bytes);
    char *p = t->arena;
    for (uint64_t i = 0; i < n; i++) {
        sp_gguf_str s = tokens->arr_strs[i];
        memcpy(p, s.ptr, s.len);
        p[s.len] = '\0';
        t->pieces[i] = p;
        t->piece_len[i] = (int)s.len;
        p += s.len + 1;
    }
    memcpy(t->types, types->arr_data, n * sizeof(int32_t)); /* unaligned LE in the file */
    return 0;
}

static void index_specials(sp_tokenizer *t)
{
    tok_map_init(&t->specials, t->n_vocab);
    bool *has_len = sp_calloc(MAX_PIECE + 1, sizeof *has_len);
    int n_lens = 0;
    for (int i = 0; i < t->n_vocab; i++) {
        int len = t->piece_len[i];
        if ((t->types[i] != TT_CONTROL && t->types[i] != TT_USER) || len == 0) continue;
        tok_map_insert(&t->specials, t, i);
        t->special_first[(uint8_t)t->pieces[i][0]] = 1;
        n_lens += !has_len[len];
        has_len[len] = true;
    }
    t->special_lens = sp_alloc((size_t)(n_lens ? n_lens : 1) * sizeof *t->special_lens);
    t->n_special_lens = 0;
    for (int len = MAX_PIECE; len > 0; len--) /* longest first */
        if (has_len[len]) t->special_lens[t->n_special_lens++] = len;
    free(has_len);
}

/* Control tokens that end a turn or a text in the families we load. */
static const char *const eog_texts[] = {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>",
                                        "<|endoftext|>"};

static int mark_eog(sp_tokenizer *t, const sp_gguf *g, sp_error *err)
{
    int eot, eom;
    if (get_id_or(g, "tokenizer.ggml.eot_token_id", -1, t->n_vocab, &eot, err) ||
        get_id_or(g, "tokenizer.ggml.eom_token_id", -1, t->n_vocab, &eom, err))
        return -1;
    t->eog = sp_calloc((size_t)t->n_vocab, 1);
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (eot >= 0) t->eog[eot] = 1;
    if (eom >= 0) t->eog[eom] = 1;
    for (int i = 0; i < t->n_vocab; i++) {
        if (t->types[i] != TT_CONTROL) continue;
        for (size_t k = 0; k < sizeof eog_texts / sizeof eog_texts[0]; k++)
            if (!strcmp(t->pieces[i], eog_texts[k])) t->eog[i] = 1;
    }
    return 0;
}

sp_tokenizer *sp_tokenizer_load(const sp_gguf *g, sp_error *err)
{
    sp_gguf_str model;
    if (sp_gguf_get_str(g, "tokenizer.ggml.model", &model, err)) return NULL;
    tok_kind kind;
    if (sp_gguf_str_eq(model, "llama")) kind = TOK_SPM;
    else if (sp_gguf_str_eq(model, "gpt2")) kind = TOK_BPE;
    else {
        sp_errorf(err, "%s: tokenizer.ggml.model is '%.*s', but shardpipe implements the SentencePiece "
                       "'llama' tokenizer (Llama 1/2, TinyLlama, stories models) and the byte-level BPE "
                       "'gpt2' one (Llama 3.x, Qwen2/2.5/3) only",
                  g->path, (int)(model.len > 40 ? 40 : model.len), model.ptr);
        return NULL;
    }
    sp_tokenizer *t = sp_calloc(1, sizeof *t);
    t->kind = kind;
    bool spm = kind == TOK_SPM;
    /* SentencePiece files from llama.cpp's converters may leave these keys
     * out and mean 1, 2 and 0; a BPE vocabulary has no <unk>. */
    if (copy_pieces(t, g, err) ||
        get_id_or(g, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, t->n_vocab, &t->bos, err) ||
        get_id_or(g, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, t->n_vocab, &t->eos, err) ||
        get_id_or(g, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, t->n_vocab, &t->unk, err) ||
        get_bool_or(g, "tokenizer.ggml.add_bos_token", true, &t->add_bos, err) ||
        get_bool_or(g, "tokenizer.ggml.add_eos_token", false, &t->add_eos, err) ||
        get_bool_or(g, "tokenizer.ggml.add_space_prefix", spm, &t->add_space_prefix, err) ||
        mark_eog(t, g, err) || (spm ? tok_spm_load(t, g, err) : tok_bpe_load(t, g, err))) {
        sp_tokenizer_free(t);
        return NULL;
    }
    index_specials(t);
    return t;
}

void sp_tokenizer_free(sp_tokenizer *t)
{
    if (!t) return;
    free(t->pieces);
    free(t->piece_len);
    free(t->types);
    free(t->arena);
    free(t->eog);
    tok_map_free(&t->specials);
    free(t->special_lens);
    free(t->scores);
    tok_map_free(&t->ordinary);
    tok_bpe_free(t->bpe);
    free(t);
}

int sp_tokenizer_n_vocab(const sp_tokenizer *t) { return t->n_vocab; }
int sp_tokenizer_bos(const sp_tokenizer *t) { return t->bos; }
int sp_tokenizer_eos(const sp_tokenizer *t) { return t->eos; }
bool sp_tokenizer_add_bos(const sp_tokenizer *t) { return t->add_bos; }

bool sp_token_is_eog(const sp_tokenizer *t, int id)
{
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

const char *sp_token_piece(const sp_tokenizer *t, int id)
{
    if (id < 0 || id >= t->n_vocab) return "";
    return t->pieces[id];
}

/* ---- encoding ---- */

/* The special token whose text starts at s (n bytes left), or -1. */
static int match_special(const sp_tokenizer *t, const char *s, size_t n, bool parse_special)
{
    if (!t->special_first[(uint8_t)s[0]]) return -1;
    for (int k = 0; k < t->n_special_lens; k++) {
        int len = t->special_lens[k];
        if ((size_t)len > n) continue;
        int id = tok_map_find(&t->specials, t, s, len);
        if (id >= 0 && (parse_special || t->types[id] == TT_USER)) return id;
    }
    return -1;
}

/* Plain text between special tokens. SentencePiece puts its prefix space
 * before text that starts the input or follows a special token (llama.cpp's
 * rule), which is every such fragment; BPE has no prefix space. */
static void encode_text(const sp_tokenizer *t, const char *s, size_t n, tok_ids *out)
{
    if (n == 0) return;
    if (t->kind == TOK_SPM) tok_spm_encode(t, s, (int)n, t->add_space_prefix, out);
    else tok_bpe_encode(t, s, (int)n, out);
}

int *sp_tokenize(const sp_tokenizer *t, const char *text, unsigned flags, int *n_out, sp_error *err)
{
    *n_out = 0;
    if (!text) text = "";
    size_t len = strlen(text);
    if (len > SP_TOKENIZE_MAX_BYTES) {
        sp_errorf(err, "a text of %zu bytes is too long to tokenize (at most %u bytes)", len,
                  SP_TOKENIZE_MAX_BYTES);
        return NULL;
    }
    bool parse_special = flags & SP_TOK_PARSE_SPECIAL;
    tok_ids out = {0};
    if ((flags & SP_TOK_ADD_SPECIAL) && t->add_bos && t->bos >= 0) tok_ids_push(&out, t->bos);
    size_t start = 0; /* of the plain text not yet encoded */
    for (size_t i = 0; i < len;) {
        int id = match_special(t, text + i, len - i, parse_special);
        if (id < 0) {
            i++;
            continue;
        }
        encode_text(t, text + start, i - start, &out);
        tok_ids_push(&out, id);
        i += (size_t)t->piece_len[id];
        start = i;
    }
    encode_text(t, text + start, len - start, &out);
    if ((flags & SP_TOK_ADD_SPECIAL) && t->add_eos && t->eos >= 0) tok_ids_push(&out, t->eos);
    if (!out.v) out.v = sp_alloc(sizeof *out.v);
    *n_out = out.n;
    return out.v;
}
