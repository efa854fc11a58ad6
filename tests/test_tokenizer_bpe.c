/* test_tokenizer_bpe.c - byte-level BPE (Llama 3 llama-bpe, Qwen qwen2)
 * against the shared references (Hugging Face and llama.cpp agree on every
 * kept line), streaming decode of split UTF-8, special tokens, the tokens
 * that end generation, NFC, merge order on a hand-made vocabulary, and
 * speed. The vocabularies come from the Q4_K_M models: only their metadata
 * is read (sp_gguf_open_meta), so this runs whatever tensors they hold. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shardpipe/gguf.h"
#include "shardpipe/tokenizer.h"
#include "testutil.h"

static void assert_ids(const sp_tokenizer *t, const char *what, const int *got, int n, const int *want,
                       int n_want)
{
    int i = 0;
    while (i < n && i < n_want && got[i] == want[i]) i++;
    if (i == n && i == n_want) return;
    cr_assert_fail("%s: %d tokens, reference %d; first difference at %d: %d '%s' vs reference %d '%s'", what,
                   n, n_want, i, i < n ? got[i] : -1, i < n ? sp_token_piece(t, got[i]) : "",
                   i < n_want ? want[i] : -1, i < n_want ? sp_token_piece(t, want[i]) : "");
}

/* Calls fn for every line of a shared reference file; returns the line
 * count, -1 (after a loud skip) when the file is absent. */
static int each_line(const sp_tokenizer *t, const char *ref_rel,
                     void (*fn)(const sp_tokenizer *t, const json_t *c, const char *where))
{
    const char *ref = sp_test_shared(ref_rel);
    if (!ref) return -1;
    json_t *all = sp_test_jsonl(ref);
    size_t i;
    json_t *c;
    json_array_foreach(all, i, c) {
        char where[160];
        snprintf(where, sizeof where, "%s:%zu", ref_rel, i + 1);
        fn(t, c, where);
    }
    int n = (int)json_array_size(all);
    json_decref(all);
    return n;
}

/* A line of tok-*.jsonl: text, tokens, add_special, parse_special. */
static void check_encode(const sp_tokenizer *t, const json_t *c, const char *where)
{
    const char *text = json_string_value(json_object_get(c, "text"));
    cr_assert_not_null(text, "%s: no text", where);
    cr_assert_eq(strlen(text), json_string_length(json_object_get(c, "text")), "%s: a NUL inside the text",
                 where);
    unsigned flags = (json_is_true(json_object_get(c, "add_special")) ? SP_TOK_ADD_SPECIAL : 0) |
                     (json_is_true(json_object_get(c, "parse_special")) ? SP_TOK_PARSE_SPECIAL : 0);
    int n_want, n;
    int *want = sp_test_json_int_array(c, "tokens", &n_want);
    int *got = sp_test_tokenize(t, text, flags, &n);
    char what[512];
    snprintf(what, sizeof what, "%s (flags %u) \"%.150s\"", where, flags, text);
    assert_ids(t, what, got, n, want, n_want);
    free(got);
    free(want);
}

/* A line of tok-*-decode.jsonl, decoded one token at a time. */
static void check_decode(const sp_tokenizer *t, const json_t *c, const char *where)
{
    const char *want = json_string_value(json_object_get(c, "text"));
    cr_assert_not_null(want, "%s: no text", where);
    int n;
    int *ids = sp_test_json_int_array(c, "tokens", &n);
    char text[8192] = "", piece[512];
    size_t len = 0;
    sp_detok d;
    sp_detok_init(&d);
    for (int k = 0; k <= n; k++) {
        int m = k < n ? sp_detok_push(t, &d, ids[k], piece, sizeof piece) : sp_detok_flush(&d, piece, sizeof piece);
        cr_assert_eq((int)strlen(piece), m);
        cr_assert_lt(len + (size_t)m, sizeof text);
        memcpy(text + len, piece, (size_t)m + 1);
        len += (size_t)m;
    }
    cr_assert_str_eq(text, want, "%s: decoded \"%s\", reference \"%s\"", where, text, want);
    free(ids);
}

/* Metadata, then every encode and decode reference line of one vocabulary. */
static void check_vocab(const char *model, const char *name, int n_vocab, int bos, int eos, bool add_bos,
                        int n_encode)
{
    sp_tokenizer *t = sp_test_tokenizer(model);
    if (!t) return;
    cr_assert_eq(sp_tokenizer_n_vocab(t), n_vocab);
    cr_assert_eq(sp_tokenizer_bos(t), bos);
    cr_assert_eq(sp_tokenizer_eos(t), eos);
    cr_assert_eq(sp_tokenizer_add_bos(t), add_bos);
    char ref[128];
    snprintf(ref, sizeof ref, "reference/tok-%s.jsonl", name);
    int n = each_line(t, ref, check_encode);
    if (n >= 0) cr_assert_geq(n, n_encode, "%s: read %d lines", ref, n);
    snprintf(ref, sizeof ref, "reference/tok-%s-decode.jsonl", name);
    n = each_line(t, ref, check_decode);
    if (n >= 0) cr_assert_geq(n, 32, "%s: read %d lines", ref, n);
    sp_tokenizer_free(t);
}

Test(bpe, llama3_matches_every_reference_line)
{
    check_vocab("models/llama3-tiny-Q4_K_M.gguf", "llama3", 128256, 128000, 128009, true, 125);
}

Test(bpe, qwen3_matches_every_reference_line)
{
    check_vocab("models/qwen3-tiny-Q4_K_M.gguf", "qwen3", 151936, 151643, 151645, false, 121);
}

/* Id of a piece, by search (tests only). */
static int id_of(const sp_tokenizer *t, const char *piece)
{
    for (int i = 0; i < sp_tokenizer_n_vocab(t); i++)
        if (!strcmp(sp_token_piece(t, i), piece)) return i;
    cr_assert_fail("no token '%s'", piece);
    return -1;
}

Test(bpe, end_of_generation_tokens)
{
    sp_tokenizer *t = sp_test_tokenizer("models/llama3-tiny-Q4_K_M.gguf");
    if (!t) return;
    cr_assert(sp_token_is_eog(t, id_of(t, "<|eot_id|>")));
    cr_assert(sp_token_is_eog(t, id_of(t, "<|end_of_text|>")));
    cr_assert(sp_token_is_eog(t, id_of(t, "<|eom_id|>")));
    cr_assert(!sp_token_is_eog(t, id_of(t, "<|begin_of_text|>")));
    cr_assert(!sp_token_is_eog(t, id_of(t, "<|start_header_id|>")));
    cr_assert(!sp_token_is_eog(t, 9906)); /* "Hello" */
    sp_tokenizer_free(t);

    t = sp_test_tokenizer("models/qwen3-tiny-Q4_K_M.gguf");
    if (!t) return;
    cr_assert(sp_token_is_eog(t, id_of(t, "<|im_end|>")));
    cr_assert(sp_token_is_eog(t, id_of(t, "<|endoftext|>")));
    cr_assert(!sp_token_is_eog(t, id_of(t, "<|im_start|>")));
    cr_assert(!sp_token_is_eog(t, id_of(t, "</think>")));
    cr_assert(!sp_token_is_eog(t, id_of(t, "</s>")), "Qwen's </s> is ordinary text (as in HF)");
    sp_tokenizer_free(t);
}

/* A character split over several byte tokens comes out whole, once. */
Test(bpe, streaming_decode_holds_partial_utf8)
{
    sp_tokenizer *t = sp_test_tokenizer("models/llama3-tiny-Q4_K_M.gguf");
    if (!t) return;
    const char *text = "\xf0\x9f\xa6\x99 \xe4\xb8\xad"; /* llama, space, a CJK character */
    int n;
    int *ids = sp_test_tokenize(t, text, 0, &n);
    char out[64], all[64] = "";
    sp_detok d;
    sp_detok_init(&d);
    int empties = 0;
    for (int i = 0; i < n; i++) {
        int m = sp_detok_push(t, &d, ids[i], out, sizeof out);
        empties += m == 0;
        /* each chunk is valid UTF-8 on its own: no lead byte without its tail */
        for (int k = 0; k < m; k++) {
            unsigned char c = (unsigned char)out[k];
            int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            cr_assert_leq(k + len, m, "token %d printed a partial character", i);
            k += len - 1;
        }
        strcat(all, out);
    }
    cr_assert_eq(sp_detok_flush(&d, out, sizeof out), 0);
    cr_assert_str_eq(all, text);
    cr_assert_gt(empties, 0, "the emoji is several byte tokens (%d ids), some print nothing", n);
    free(ids);
    sp_tokenizer_free(t);
}

/* parse_special decides CONTROL tokens; USER_DEFINED match either way. */
Test(bpe, special_tokens_only_when_asked)
{
    sp_tokenizer *t = sp_test_tokenizer("models/qwen3-tiny-Q4_K_M.gguf");
    if (!t) return;
    int im_start = id_of(t, "<|im_start|>"), think = id_of(t, "<think>");
    int n;
    int *ids = sp_test_tokenize(t, "<|im_start|>user<think>", 0, &n);
    for (int i = 0; i < n; i++) cr_assert_neq(ids[i], im_start, "user text became <|im_start|>");
    cr_assert_eq(ids[n - 1], think, "USER_DEFINED <think> is matched without parse_special");
    free(ids);
    ids = sp_test_tokenize(t, "<|im_start|>user<think>", SP_TOK_PARSE_SPECIAL, &n);
    cr_assert_eq(n, 3);
    cr_assert_eq(ids[0], im_start);
    cr_assert_eq(ids[2], think);
    free(ids);
    sp_tokenizer_free(t);
}

/* The disputed case we decide: Qwen's text goes through NFC (as Hugging Face
 * tokenizers does), so a decomposed accent tokenizes like the composed one;
 * Llama 3 has no normalizer and keeps them apart. */
Test(bpe, qwen_normalizes_to_nfc_llama3_does_not)
{
    const char *composed = "caf\xc3\xa9 na\xc3\xafve", *decomposed = "cafe\xcc\x81 nai\xcc\x88ve";
    const char *models[2] = {"models/qwen3-tiny-Q4_K_M.gguf", "models/llama3-tiny-Q4_K_M.gguf"};
    for (int m = 0; m < 2; m++) {
        sp_tokenizer *t = sp_test_tokenizer(models[m]);
        if (!t) return;
        int na, nb;
        int *a = sp_test_tokenize(t, composed, 0, &na), *b = sp_test_tokenize(t, decomposed, 0, &nb);
        bool same = na == nb && !memcmp(a, b, (size_t)na * sizeof *a);
        cr_assert_eq(same, m == 0, "%s: composed and decomposed %s", models[m], same ? "equal" : "differ");
        free(a);
        free(b);
        sp_tokenizer_free(t);
    }
}

/* Invalid UTF-8 is not lost: every byte comes back out of the decoder (as
 * U+FFFD where it is not UTF-8), and ids stay within the vocabulary. */
Test(bpe, invalid_utf8_keeps_every_byte)
{
    sp_tokenizer *t = sp_test_tokenizer("models/qwen3-tiny-Q4_K_M.gguf");
    if (!t) return;
    const char *text = "\xff \xff \xff \xff a\xc3 b\x80\x80";
    int n;
    int *ids = sp_test_tokenize(t, text, SP_TOK_ADD_SPECIAL, &n);
    cr_assert_leq(n, (int)strlen(text), "byte-level BPE gives at most one id per byte");
    char out[64], all[256] = "";
    sp_detok d;
    sp_detok_init(&d);
    for (int i = 0; i < n; i++) {
        cr_assert(ids[i] >= 0 && ids[i] < sp_tokenizer_n_vocab(t));
        sp_detok_push(t, &d, ids[i], out, sizeof out);
        strcat(all, out);
    }
    sp_detok_flush(&d, out, sizeof out);
    strcat(all, out);
    cr_assert_str_eq(all, "\xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd a\xef\xbf\xbd b\xef\xbf\xbd\xef\xbf\xbd");
    free(ids);
    sp_tokenizer_free(t);
}

/* ---- merge order on a hand-made vocabulary ---- */

/* GPT-2's printable bytes stand for themselves: a vocabulary of the 256 byte
 * characters (written as GPT-2 maps them) plus extra pieces and merges. */
static sp_tokenizer *tiny_bpe(const char *name, const char **extra, int n_extra, const char **merges,
                              int n_merges)
{
    static char chars[256][3];
    sp_gguf_str toks[300];
    int32_t types[300];
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        int k = 0;
        for (int c = 0; c < b; c++) k += !((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174));
        unsigned cp = printable ? (unsigned)b : 256u + (unsigned)k;
        int len = 0;
        if (cp < 0x80) chars[b][len++] = (char)cp;
        else {
            chars[b][len++] = (char)(0xC0 | (cp >> 6));
            chars[b][len++] = (char)(0x80 | (cp & 0x3F));
        }
        toks[n] = (sp_gguf_str){(uint64_t)len, chars[b]};
        types[n++] = 1;
    }
    for (int i = 0; i < n_extra; i++) {
        toks[n] = (sp_gguf_str){strlen(extra[i]), extra[i]};
        types[n++] = 1;
    }
    sp_gguf_str ms[16];
    for (int i = 0; i < n_merges; i++) ms[i] = (sp_gguf_str){strlen(merges[i]), merges[i]};
    sp_gguf_writer *w = sp_gguf_writer_new();
    sp_gguf_add_str(w, "tokenizer.ggml.model", "gpt2");
    sp_gguf_add_str(w, "tokenizer.ggml.pre", "qwen2");
    sp_gguf_add_str_arr(w, "tokenizer.ggml.tokens", toks, (uint64_t)n);
    sp_gguf_add_arr(w, "tokenizer.ggml.token_type", SP_GGUF_INT32, types, (uint64_t)n);
    sp_gguf_add_str_arr(w, "tokenizer.ggml.merges", ms, (uint64_t)n_merges);
    sp_error err = {{0}};
    const char *path = sp_test_tmpfile(name);
    cr_assert_eq(sp_gguf_write(w, path, &err), 0, "%s", err.msg);
    sp_gguf_writer_free(w);
    sp_gguf *g = sp_gguf_open(path, &err);
    cr_assert_not_null(g, "%s", err.msg);
    sp_tokenizer *t = sp_tokenizer_load(g, &err);
    sp_gguf_close(g);
    cr_assert_not_null(t, "%s", err.msg);
    return t;
}

Test(bpe, lower_rank_merges_first_not_leftmost)
{
    /* "abc": rule 0 is "b c", rule 1 "a b": "bc" wins although "ab" is left
     * of it, and then "a bc" has no rule -> "a" "bc" */
    const char *extra[] = {"ab", "bc", "aa"};
    const char *merges[] = {"b c", "a b", "a a"};
    sp_tokenizer *t = tiny_bpe("rank.gguf", extra, 3, merges, 3);
    int n;
    int *ids = sp_test_tokenize(t, "abc", 0, &n);
    assert_ids(t, "abc", ids, n, (int[]){'a' , 257}, 2);
    free(ids);
    /* same rule twice in a row: the leftmost pair first -> "aa" "a" */
    ids = sp_test_tokenize(t, "aaa", 0, &n);
    assert_ids(t, "aaa", ids, n, (int[]){258, 'a'}, 2);
    free(ids);
    /* a space is the character U+0120 "Ġ" (byte 0x20 is the 33rd
     * unprintable byte): " a" has no rule and stays two byte tokens */
    ids = sp_test_tokenize(t, " a", 0, &n);
    assert_ids(t, " a", ids, n, (int[]){' ', 'a'}, 2);
    cr_assert_str_eq(sp_token_piece(t, ' '), "\xc4\xa0");
    free(ids);
    sp_tokenizer_free(t);
}

Test(bpe, bad_vocabularies_are_refused_by_name)
{
    const char *merges[] = {"ab"};
    sp_gguf_writer *w = sp_gguf_writer_new();
    sp_gguf_str toks[3] = {{1, "a"}, {1, "b"}, {2, "ab"}};
    int32_t types[3] = {1, 1, 1};
    sp_gguf_add_str(w, "tokenizer.ggml.model", "gpt2");
    sp_gguf_add_str(w, "tokenizer.ggml.pre", "qwen2");
    sp_gguf_add_str_arr(w, "tokenizer.ggml.tokens", toks, 3);
    sp_gguf_add_arr(w, "tokenizer.ggml.token_type", SP_GGUF_INT32, types, 3);
    sp_gguf_add_str_arr(w, "tokenizer.ggml.merges", (sp_gguf_str[]){{2, merges[0]}}, 1);
    sp_error err = {{0}};
    const char *path = sp_test_tmpfile("nobytes.gguf");
    cr_assert_eq(sp_gguf_write(w, path, &err), 0, "%s", err.msg);
    sp_gguf_writer_free(w);
    sp_gguf *g = sp_gguf_open(path, &err);
    cr_assert_not_null(g, "%s", err.msg);
    cr_assert_null(sp_tokenizer_load(g, &err));
    cr_assert_not_null(strstr(err.msg, "nobytes.gguf"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "byte 0x00"), "%s", err.msg);
    sp_gguf_close(g);

    w = sp_gguf_writer_new();
    sp_gguf_add_str(w, "tokenizer.ggml.model", "gpt2");
    sp_gguf_add_str(w, "tokenizer.ggml.pre", "deepseek-llm");
    sp_gguf_add_str_arr(w, "tokenizer.ggml.tokens", toks, 3);
    sp_gguf_add_arr(w, "tokenizer.ggml.token_type", SP_GGUF_INT32, types, 3);
    path = sp_test_tmpfile("pre.gguf");
    cr_assert_eq(sp_gguf_write(w, path, &err), 0, "%s", err.msg);
    sp_gguf_writer_free(w);
    g = sp_gguf_open(path, &err);
    cr_assert_null(sp_tokenizer_load(g, &err));
    cr_assert_not_null(strstr(err.msg, "'deepseek-llm'"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "llama-bpe"), "%s", err.msg);
    sp_gguf_close(g);
}

/* Speed sanity: 100 KB of English prose. The figure is printed; the bound
 * is loose because the test machine is shared. */
Test(bpe, tokenizes_100kb_in_well_under_a_second)
{
    sp_tokenizer *t = sp_test_tokenizer("models/llama3-tiny-Q4_K_M.gguf");
    if (!t) return;
    static const char *para =
        "The quick brown fox jumps over the lazy dog. It wasn't the first time; they'd met before, "
        "in 1984, near the old mill at 42 Elm Street. \"Why?\" she asked, and he said: it's complicated.\n";
    size_t plen = strlen(para), total = 100 * 1000;
    char *text = malloc(total + plen + 1);
    size_t len = 0;
    while (len < total) {
        memcpy(text + len, para, plen);
        len += plen;
    }
    text[len] = '\0';
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int n;
    int *ids = sp_test_tokenize(t, text, SP_TOK_ADD_SPECIAL, &n);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
    fprintf(stderr, "bpe: %zu bytes -> %d tokens in %.1f ms (%.1f MB/s)\n", len, n, s * 1e3, len / s / 1e6);
    cr_assert_lt(s, 1.0, "%zu bytes took %.3f s", len, s);
    free(ids);
    free(text);
    sp_tokenizer_free(t);
}
