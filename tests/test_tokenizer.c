/* test_tokenizer.c - SentencePiece encoding against llama.cpp's output for
 * every line of the shared reference files, decoding round trips, streaming
 * of split UTF-8 and load errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/gguf.h"
#include "shardpipe/tokenizer.h"
#include "testutil.h"

/* ---- the reference files: {"text": "...", "tokens": [..]} per line ---- */

typedef struct ref_case {
    const char *text;
    int *tokens;
    int n_tokens;
} ref_case;

/* Calls fn for every line of the reference file; returns the line count. */
static int for_each_case(const char *jsonl, void (*fn)(const sp_tokenizer *, const ref_case *, int),
                         const sp_tokenizer *t)
{
    json_t *all = sp_test_jsonl(jsonl);
    size_t i;
    json_t *line;
    json_array_foreach(all, i, line) {
        ref_case c = {json_string_value(json_object_get(line, "text")), NULL, 0};
        cr_assert_not_null(c.text, "%s:%zu: no \"text\"", jsonl, i + 1);
        c.tokens = sp_test_json_int_array(line, "tokens", &c.n_tokens);
        fn(t, &c, (int)i + 1);
        free(c.tokens);
    }
    int n = (int)json_array_size(all);
    json_decref(all);
    return n;
}

/* ---- encoding ---- */

static void check_encode(const sp_tokenizer *t, const ref_case *c, int line)
{
    int n;
    int *out = sp_test_tokenize(t, c->text, SP_TOK_ADD_SPECIAL, &n);
    cr_assert_eq(n, c->n_tokens, "line %d \"%s\": %d tokens, llama.cpp gives %d", line, c->text, n,
                 c->n_tokens);
    for (int i = 0; i < n; i++)
        cr_assert_eq(out[i], c->tokens[i], "line %d \"%s\": token %d is %d (%s), llama.cpp gives %d (%s)",
                     line, c->text, i, out[i], sp_token_piece(t, out[i]), c->tokens[i],
                     sp_token_piece(t, c->tokens[i]));
    free(out);
}

Test(tokenizer, stories260K_matches_llama_cpp)
{
    sp_tokenizer *t = sp_test_tokenizer("models/stories260K.gguf");
    if (!t) return;
    const char *ref = sp_test_shared("reference/tok-stories260K.jsonl");
    if (!ref) return;
    cr_assert_eq(sp_tokenizer_n_vocab(t), 512);
    int n = for_each_case(ref, check_encode, t);
    cr_assert_geq(n, 16, "expected the whole reference file, read %d lines", n);
    sp_tokenizer_free(t);
}

Test(tokenizer, llama_32000_matches_llama_cpp)
{
    sp_tokenizer *t = sp_test_tokenizer("models/tiny-random-q8_0.gguf");
    if (!t) return;
    const char *ref = sp_test_shared("reference/tok-llama-spm-32000.jsonl");
    if (!ref) return;
    cr_assert_eq(sp_tokenizer_n_vocab(t), 32000);
    cr_assert_eq(sp_tokenizer_bos(t), 1);
    cr_assert_eq(sp_tokenizer_eos(t), 2);
    cr_assert(sp_tokenizer_add_bos(t));
    int n = for_each_case(ref, check_encode, t);
    cr_assert_geq(n, 16, "expected the whole reference file, read %d lines", n);
    sp_tokenizer_free(t);
}

Test(tokenizer, bos_flag_and_exact_counts)
{
    sp_tokenizer *t = sp_test_tokenizer("models/tiny-random-q8_0.gguf");
    if (!t) return;
    int n;
    /* "Hello world" -> BOS ▁Hello ▁world */
    int *out = sp_test_tokenize(t, "Hello world", SP_TOK_ADD_SPECIAL, &n);
    cr_assert_eq(n, 3);
    cr_assert_eq(out[0], 1);
    cr_assert_eq(out[1], 15043);
    free(out);
    out = sp_test_tokenize(t, "Hello world", 0, &n);
    cr_assert_eq(n, 2);
    cr_assert_eq(out[0], 15043);
    free(out);
    out = sp_test_tokenize(t, "", SP_TOK_ADD_SPECIAL, &n);
    cr_assert_eq(n, 1, "empty text is BOS only");
    free(out);
    out = sp_test_tokenize(t, "", 0, &n);
    cr_assert_eq(n, 0);
    cr_assert_not_null(out, "0 ids still come as an array");
    free(out);
    sp_tokenizer_free(t);
}

/* Issue 21 item 2: eight bytes gave more ids than the callers had allotted
 * (each invalid lead byte swallows the escaped space after it, and all four
 * bytes fall back to byte tokens). The array is now sized by the tokenizer;
 * this checks the count against llama.cpp's rule (every byte of "\xff▁"
 * spelled as a byte token) and that every id is a real token. Under ASan an
 * over-read or over-write would stop the test. */
Test(tokenizer, invalid_lead_bytes_give_more_ids_than_bytes)
{
    sp_tokenizer *t = sp_test_tokenizer("models/tiny-random-q8_0.gguf");
    if (!t) return;
    const char *text = "\xff \xff \xff \xff ";
    int n;
    int *out = sp_test_tokenize(t, text, SP_TOK_ADD_SPECIAL, &n);
    cr_assert_gt(n, (int)strlen(text) + 1, "%d ids: the case that over-ran strlen + 8 needs more than %zu",
                 n, strlen(text) + 1);
    /* BOS, "▁" (prefix), then 4 x (<0xFF> <0xE2> <0x96> <0x81>) */
    cr_assert_eq(n, 2 + 4 * 4);
    for (int i = 0; i < n; i++) cr_assert(out[i] >= 0 && out[i] < sp_tokenizer_n_vocab(t));
    cr_assert_eq(out[2], 3 + 0xFF);
    cr_assert_eq(out[3], 3 + 0xE2);
    free(out);
    /* a long one: 64 KiB of it */
    size_t big = 8 * 8192;
    char *s = malloc(big + 1);
    for (size_t i = 0; i < big; i += 2) memcpy(s + i, "\xff ", 2);
    s[big] = '\0';
    out = sp_test_tokenize(t, s, 0, &n);
    cr_assert_eq(n, 1 + (int)(big / 2) * 4);
    cr_assert_eq(out[n - 1], 3 + 0x81);
    free(out);
    free(s);
    sp_tokenizer_free(t);
}

Test(tokenizer, control_tokens_in_text_are_plain_text)
{
    sp_tokenizer *t = sp_test_tokenizer("models/tiny-random-q8_0.gguf");
    if (!t) return;
    int n;
    int *out = sp_test_tokenize(t, "<s>hi</s>", 0, &n);
    cr_assert_gt(n, 2);
    for (int i = 0; i < n; i++) {
        cr_assert_neq(out[i], sp_tokenizer_bos(t), "\"<s>\" in text must not become BOS");
        cr_assert_neq(out[i], sp_tokenizer_eos(t), "\"</s>\" in text must not become EOS");
    }
    free(out);
    /* asked for, they are the control tokens; the text after one gets the
     * prefix space again (llama.cpp's rule) */
    out = sp_test_tokenize(t, "<s>hi</s>", SP_TOK_PARSE_SPECIAL, &n);
    cr_assert_eq(n, 3);
    cr_assert_eq(out[0], 1);
    cr_assert_str_eq(sp_token_piece(t, out[1]), "\xe2\x96\x81hi");
    cr_assert_eq(out[2], 2);
    free(out);
    cr_assert(sp_token_is_eog(t, 2));
    cr_assert(!sp_token_is_eog(t, 1));
    cr_assert(!sp_token_is_eog(t, 15043));
    cr_assert(!sp_token_is_eog(t, -1));
    sp_tokenizer_free(t);
}

/* ---- decoding ---- */

static void check_roundtrip(const sp_tokenizer *t, const ref_case *c, int line)
{
    char text[2048] = "";
    char piece[256];
    int len = 0;
    sp_detok d;
    sp_detok_init(&d);
    /* BOS is pushed too: control tokens must print nothing */
    for (int i = 0; i < c->n_tokens; i++) {
        int n = sp_detok_push(t, &d, c->tokens[i], piece, sizeof piece);
        cr_assert_eq((int)strlen(piece), n);
        memcpy(text + len, piece, (size_t)n + 1);
        len += n;
    }
    cr_assert_eq(sp_detok_flush(&d, piece, sizeof piece), 0, "line %d: bytes left over", line);
    cr_assert_str_eq(text, c->text, "line %d: decoded \"%s\", expected \"%s\"", line, text, c->text);
}

/* Holds for leading spaces too: " x" encodes as "▁" "▁x", and only the
 * first "▁" (the prefix space) is dropped by the decoder. */
Test(tokenizer, decode_gives_back_every_reference_text)
{
    const char *models[2] = {"models/stories260K.gguf", "models/tiny-random-q8_0.gguf"};
    const char *refs[2] = {"reference/tok-stories260K.jsonl", "reference/tok-llama-spm-32000.jsonl"};
    for (int m = 0; m < 2; m++) {
        sp_tokenizer *t = sp_test_tokenizer(models[m]);
        if (!t) return;
        const char *ref = sp_test_shared(refs[m]);
        if (!ref) return;
        for_each_case(ref, check_roundtrip, t);
        sp_tokenizer_free(t);
    }
}

Test(tokenizer, pieces_are_raw)
{
    sp_tokenizer *t = sp_test_tokenizer("models/tiny-random-q8_0.gguf");
    if (!t) return;
    cr_assert_str_eq(sp_token_piece(t, 15043), "\xe2\x96\x81Hello");
    cr_assert_str_eq(sp_token_piece(t, 13), "<0x0A>");
    cr_assert_str_eq(sp_token_piece(t, 1), "<s>");
    cr_assert_str_eq(sp_token_piece(t, 99999), "");
    sp_tokenizer_free(t);
}

Test(tokenizer, split_emoji_is_held_until_complete)
{
    sp_tokenizer *t = sp_test_tokenizer("models/tiny-random-q8_0.gguf");
    if (!t) return;
    /* U+1F680 ROCKET = F0 9F 9A 80, byte token id = 3 + byte */
    const int bytes[4] = {0xF0, 0x9F, 0x9A, 0x80};
    sp_detok d;
    sp_detok_init(&d);
    char out[64];
    cr_assert_eq(sp_detok_push(t, &d, 15043, out, sizeof out), 5); /* "Hello", prefix space dropped */
    cr_assert_str_eq(out, "Hello");
    cr_assert_eq(sp_detok_push(t, &d, 29871, out, sizeof out), 1); /* "▁" -> " " */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(sp_detok_push(t, &d, 3 + bytes[i], out, sizeof out), 0, "byte %d emitted early", i);
        cr_assert_str_eq(out, "");
    }
    cr_assert_eq(sp_detok_push(t, &d, 3 + bytes[3], out, sizeof out), 4);
    cr_assert_str_eq(out, "\xf0\x9f\x9a\x80");
    cr_assert_eq(sp_detok_flush(&d, out, sizeof out), 0);
    sp_tokenizer_free(t);
}

Test(tokenizer, invalid_utf8_becomes_replacement_char)
{
    sp_tokenizer *t = sp_test_tokenizer("models/tiny-random-q8_0.gguf");
    if (!t) return;
    sp_detok d;
    sp_detok_init(&d);
    char out[64];
    /* a lone lead byte followed by 'A' (byte token 3 + 0x41) */
    cr_assert_eq(sp_detok_push(t, &d, 3 + 0xE2, out, sizeof out), 0);
    cr_assert_eq(sp_detok_push(t, &d, 3 + 0x41, out, sizeof out), 4);
    cr_assert_str_eq(out, "\xef\xbf\xbd" "A");
    /* a stray continuation byte */
    cr_assert_eq(sp_detok_push(t, &d, 3 + 0x80, out, sizeof out), 3);
    cr_assert_str_eq(out, "\xef\xbf\xbd");
    /* an unfinished character at the end of the stream */
    cr_assert_eq(sp_detok_push(t, &d, 3 + 0xF0, out, sizeof out), 0);
    cr_assert_eq(sp_detok_push(t, &d, 3 + 0x9F, out, sizeof out), 0);
    cr_assert_eq(sp_detok_flush(&d, out, sizeof out), 3);
    cr_assert_str_eq(out, "\xef\xbf\xbd");
    cr_assert_eq(sp_detok_flush(&d, out, sizeof out), 0);
    sp_tokenizer_free(t);
}

Test(tokenizer, small_output_buffer_truncates)
{
    sp_tokenizer *t = sp_test_tokenizer("models/tiny-random-q8_0.gguf");
    if (!t) return;
    sp_detok d;
    sp_detok_init(&d);
    char out[4];
    cr_assert_eq(sp_detok_push(t, &d, 15043, out, sizeof out), 3);
    cr_assert_str_eq(out, "Hel");
    sp_tokenizer_free(t);
}

/* ---- load errors ---- */

/* A GGUF holding only a vocabulary: pieces[i] with score -i (so earlier
 * pieces win), types[i], and optional extra flags. */
typedef struct vocab_spec {
    const char *model;
    const char **pieces;
    const float *scores;  /* NULL: -i */
    const int32_t *types; /* NULL: normal, except 0 unknown, 1 and 2 control */
    int n;
    bool no_scores;
    int add_space_prefix; /* -1: key absent */
} vocab_spec;

static sp_gguf *write_vocab(const char *name, const vocab_spec *v)
{
    sp_gguf_writer *w = sp_gguf_writer_new();
    sp_gguf_add_str(w, "tokenizer.ggml.model", v->model);
    sp_gguf_str toks[64];
    float scores[64];
    int32_t types[64];
    cr_assert_leq(v->n, 64);
    for (int i = 0; i < v->n; i++) {
        toks[i] = (sp_gguf_str){strlen(v->pieces[i]), v->pieces[i]};
        scores[i] = v->scores ? v->scores[i] : -(float)i;
        types[i] = v->types ? v->types[i] : i == 0 ? 2 : i < 3 ? 3 : 1;
    }
    sp_gguf_add_str_arr(w, "tokenizer.ggml.tokens", toks, (uint64_t)v->n);
    if (!v->no_scores) sp_gguf_add_arr(w, "tokenizer.ggml.scores", SP_GGUF_FLOAT32, scores, (uint64_t)v->n);
    sp_gguf_add_arr(w, "tokenizer.ggml.token_type", SP_GGUF_INT32, types, (uint64_t)v->n);
    if (v->add_space_prefix >= 0) sp_gguf_add_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix);
    sp_error err = {{0}};
    const char *path = sp_test_tmpfile(name);
    cr_assert_eq(sp_gguf_write(w, path, &err), 0, "%s", err.msg);
    sp_gguf_writer_free(w);
    sp_gguf *g = sp_gguf_open(path, &err);
    cr_assert_not_null(g, "%s", err.msg);
    return g;
}

static const char *specials[3] = {"<unk>", "<s>", "</s>"};

static sp_tokenizer *load_vocab(const char *name, const vocab_spec *v)
{
    sp_gguf *g = write_vocab(name, v);
    sp_error err = {{0}};
    sp_tokenizer *t = sp_tokenizer_load(g, &err);
    cr_assert_not_null(t, "%s", err.msg);
    sp_gguf_close(g);
    return t;
}

static void assert_ids(const sp_tokenizer *t, const char *text, const int *want, int n_want)
{
    int n;
    int *out = sp_test_tokenize(t, text, 0, &n);
    cr_assert_eq(n, n_want, "\"%s\": %d tokens, expected %d", text, n, n_want);
    for (int i = 0; i < n; i++)
        cr_assert_eq(out[i], want[i], "\"%s\": token %d is %d (%s), expected %d (%s)", text, i, out[i],
                     sp_token_piece(t, out[i]), want[i], sp_token_piece(t, want[i]));
    free(out);
}

Test(tokenizer, equal_scores_merge_leftmost_first)
{
    /* "aaa" with only "aa" mergeable: both pairs score the same, the left
     * one wins -> "aa" "a" (rightmost-first would give "a" "aa") */
    const char *pieces[] = {"<unk>", "<s>", "</s>", "a", "aa"};
    vocab_spec v = {"llama", pieces, NULL, NULL, 5, false, 0};
    sp_tokenizer *t = load_vocab("tie.gguf", &v);
    assert_ids(t, "aaa", (int[]){4, 3}, 2);
    assert_ids(t, "aaaaa", (int[]){4, 4, 3}, 3);
    sp_tokenizer_free(t);
}

Test(tokenizer, higher_score_beats_leftmost)
{
    /* "abc": "ab" scores -4, "bc" scores -3, so "bc" merges first although
     * it is further right -> "a" "bc"; "abc" itself is not a piece */
    const char *pieces[] = {"<unk>", "<s>", "</s>", "ab", "bc", "a", "b", "c"};
    float scores[] = {0, 0, 0, -4, -3, -5, -6, -7};
    vocab_spec v = {"llama", pieces, scores, NULL, 8, false, 0};
    sp_tokenizer *t = load_vocab("score.gguf", &v);
    assert_ids(t, "abc", (int[]){5, 4}, 2);
    assert_ids(t, "abab", (int[]){3, 3}, 2);
    sp_tokenizer_free(t);
}

Test(tokenizer, space_prefix_flag_and_byte_fallback)
{
    /* byte tokens for 'x' (0x78) and the three bytes of "▁" only */
    const char *pieces[] = {"<unk>", "<s>", "</s>", "<0x78>", "<0xE2>", "<0x96>", "<0x81>",
                            "hi", "h", "i", "\xe2\x96\x81hi"};
    int32_t types[] = {2, 3, 3, 6, 6, 6, 6, 1, 1, 1, 1};
    vocab_spec v = {"llama", pieces, NULL, types, 11, false, -1};
    sp_tokenizer *t = load_vocab("prefix_default.gguf", &v);
    /* key absent: prefix space on. "▁hi" is a piece; a lone "▁" is not and
     * is spelled in bytes; 'y' has no byte token and becomes <unk> */
    assert_ids(t, "hix", (int[]){10, 3}, 2);
    assert_ids(t, "y", (int[]){4, 5, 6, 0}, 4);
    sp_detok d;
    sp_detok_init(&d);
    char out[16];
    cr_assert_eq(sp_detok_push(t, &d, 10, out, sizeof out), 2, "the prefix space is dropped");
    cr_assert_str_eq(out, "hi");
    sp_tokenizer_free(t);

    v.add_space_prefix = 0;
    t = load_vocab("prefix_off.gguf", &v);
    assert_ids(t, "hix", (int[]){7, 3}, 2);
    assert_ids(t, " hi", (int[]){10}, 1);
    /* no prefix space was added, so a leading space is the user's own */
    sp_detok_init(&d);
    cr_assert_eq(sp_detok_push(t, &d, 10, out, sizeof out), 3);
    cr_assert_str_eq(out, " hi");
    sp_tokenizer_free(t);
}

Test(tokenizer, other_model_types_are_refused_by_name)
{
    vocab_spec v = {"bert", specials, NULL, NULL, 3, false, -1};
    sp_gguf *g = write_vocab("bert.gguf", &v);
    sp_error err = {{0}};
    cr_assert_null(sp_tokenizer_load(g, &err));
    cr_assert_not_null(strstr(err.msg, "'bert'"), "error should name the model type: %s", err.msg);
    cr_assert_not_null(strstr(err.msg, "bert.gguf"), "error should name the file: %s", err.msg);
    sp_gguf_close(g);
}

Test(tokenizer, missing_scores_are_an_error)
{
    vocab_spec v = {"llama", specials, NULL, NULL, 3, true, -1};
    sp_gguf *g = write_vocab("noscores.gguf", &v);
    sp_error err = {{0}};
    cr_assert_null(sp_tokenizer_load(g, &err));
    cr_assert_not_null(strstr(err.msg, "tokenizer.ggml.scores"), "error should name the key: %s", err.msg);
    sp_gguf_close(g);
}

Test(tokenizer, tiny_vocab_uses_defaults)
{
    vocab_spec v = {"llama", specials, NULL, NULL, 3, false, -1};
    sp_gguf *g = write_vocab("tiny.gguf", &v);
    sp_error err = {{0}};
    sp_tokenizer *t = sp_tokenizer_load(g, &err);
    cr_assert_not_null(t, "%s", err.msg);
    sp_gguf_close(g);
    cr_assert_eq(sp_tokenizer_bos(t), 1);
    cr_assert_eq(sp_tokenizer_eos(t), 2);
    /* no pieces and no byte tokens: every byte falls back to <unk> (id 0) */
    int n;
    int *out = sp_test_tokenize(t, "ab", SP_TOK_ADD_SPECIAL, &n);
    cr_assert_eq(n, 6); /* BOS, "▁" (3 bytes), 'a', 'b' */
    cr_assert_eq(out[0], 1);
    for (int i = 1; i < 6; i++) cr_assert_eq(out[i], 0);
    free(out);
    /* issue 21 item 2: without "▁" every space is three ids, far more than
     * the strlen + 8 the callers used to allot */
    out = sp_test_tokenize(t, "                ", SP_TOK_ADD_SPECIAL, &n);
    cr_assert_eq(n, 1 + 3 * 17, "BOS and 3 <unk> per escaped space (16 + the prefix): %d", n);
    for (int i = 1; i < n; i++) cr_assert_eq(out[i], 0);
    free(out);
    sp_tokenizer_free(t);
}
