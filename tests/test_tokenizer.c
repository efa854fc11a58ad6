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

/* ---- a small reader for the {"text": "...", "tokens": [..]} lines ---- */

static void put_utf8(char **o, unsigned cp)
{
    char *p = *o;
    if (cp < 0x80) {
        *p++ = (char)cp;
    } else if (cp < 0x800) {
        *p++ = (char)(0xC0 | (cp >> 6));
        *p++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *p++ = (char)(0xE0 | (cp >> 12));
        *p++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *p++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *p++ = (char)(0xF0 | (cp >> 18));
        *p++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *p++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *p++ = (char)(0x80 | (cp & 0x3F));
    }
    *o = p;
}

static unsigned hex4(const char *s)
{
    char buf[5] = {s[0], s[1], s[2], s[3], 0};
    return (unsigned)strtoul(buf, NULL, 16);
}

/* Unescape the JSON string starting after the opening quote at s into out
 * (NUL-terminated); returns a pointer after the closing quote. */
static const char *json_string(const char *s, char *out)
{
    char *o = out;
    while (*s && *s != '"') {
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        s++;
        switch (*s++) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case '/': *o++ = '/'; break;
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case 'u': {
            unsigned cp = hex4(s);
            s += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && s[0] == '\\' && s[1] == 'u') { /* surrogate pair */
                unsigned lo = hex4(s + 2);
                s += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            put_utf8(&o, cp);
            break;
        }
        default: cr_assert_fail("unknown JSON escape in %s", s - 2);
        }
    }
    cr_assert_eq(*s, '"', "unterminated JSON string");
    *o = '\0';
    return s + 1;
}

typedef struct ref_case {
    char text[1024];
    int tokens[256];
    int n_tokens;
} ref_case;

static void parse_line(const char *line, ref_case *c)
{
    const char *p = strstr(line, "\"text\"");
    cr_assert_not_null(p, "no \"text\" in %s", line);
    p = strchr(p + 6, '"');
    cr_assert_not_null(p);
    cr_assert_lt(strlen(p), sizeof c->text);
    p = json_string(p + 1, c->text);
    p = strstr(p, "\"tokens\"");
    cr_assert_not_null(p, "no \"tokens\" in %s", line);
    p = strchr(p, '[');
    cr_assert_not_null(p);
    p++;
    c->n_tokens = 0;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ']') break;
        char *end;
        long v = strtol(p, &end, 10);
        cr_assert_neq(end, p, "bad token list in %s", line);
        cr_assert_lt(c->n_tokens, 256);
        c->tokens[c->n_tokens++] = (int)v;
        p = end;
    }
}

/* Calls fn for every line of the reference file; returns the line count. */
static int for_each_case(const char *jsonl, void (*fn)(const sp_tokenizer *, const ref_case *, int),
                         const sp_tokenizer *t)
{
    size_t len;
    char *buf = sp_test_read_file(jsonl, &len);
    cr_assert_not_null(buf, "cannot read %s", jsonl);
    buf = realloc(buf, len + 1);
    buf[len] = '\0';
    int n = 0;
    static ref_case c;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        parse_line(line, &c);
        fn(t, &c, ++n);
    }
    free(buf);
    return n;
}

static sp_tokenizer *load(const char *model_rel)
{
    const char *path = sp_test_shared(model_rel);
    if (!path) return NULL;
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(path, &err);
    cr_assert_not_null(g, "%s", err.msg);
    sp_tokenizer *t = sp_tokenizer_load(g, &err);
    cr_assert_not_null(t, "%s", err.msg);
    sp_gguf_close(g); /* the tokenizer keeps its own copies */
    return t;
}

/* ---- encoding ---- */

static void check_encode(const sp_tokenizer *t, const ref_case *c, int line)
{
    int out[256];
    int n = sp_tokenize(t, c->text, true, out, 256);
    cr_assert_eq(n, c->n_tokens, "line %d \"%s\": %d tokens, llama.cpp gives %d", line, c->text, n,
                 c->n_tokens);
    for (int i = 0; i < n; i++)
        cr_assert_eq(out[i], c->tokens[i], "line %d \"%s\": token %d is %d (%s), llama.cpp gives %d (%s)",
                     line, c->text, i, out[i], sp_token_piece(t, out[i]), c->tokens[i],
                     sp_token_piece(t, c->tokens[i]));
}

Test(tokenizer, stories260K_matches_llama_cpp)
{
    sp_tokenizer *t = load("models/stories260K.gguf");
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
    sp_tokenizer *t = load("models/tiny-random-q8_0.gguf");
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

Test(tokenizer, count_beyond_cap_and_no_bos)
{
    sp_tokenizer *t = load("models/tiny-random-q8_0.gguf");
    if (!t) return;
    int out[2] = {-7, -7};
    /* "Hello world" -> BOS ▁Hello ▁world: 3 ids, only 2 written */
    cr_assert_eq(sp_tokenize(t, "Hello world", true, out, 2), 3);
    cr_assert_eq(out[0], 1);
    cr_assert_eq(out[1], 15043);
    cr_assert_eq(sp_tokenize(t, "Hello world", false, out, 2), 2);
    cr_assert_eq(out[0], 15043);
    cr_assert_eq(sp_tokenize(t, "", true, out, 2), 1, "empty text is BOS only");
    cr_assert_eq(sp_tokenize(t, "", false, out, 2), 0);
    sp_tokenizer_free(t);
}

Test(tokenizer, control_tokens_in_text_are_plain_text)
{
    sp_tokenizer *t = load("models/tiny-random-q8_0.gguf");
    if (!t) return;
    int out[32];
    int n = sp_tokenize(t, "<s>hi</s>", false, out, 32);
    cr_assert_gt(n, 2);
    for (int i = 0; i < n; i++) {
        cr_assert_neq(out[i], sp_tokenizer_bos(t), "\"<s>\" in text must not become BOS");
        cr_assert_neq(out[i], sp_tokenizer_eos(t), "\"</s>\" in text must not become EOS");
    }
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
        sp_tokenizer *t = load(models[m]);
        if (!t) return;
        const char *ref = sp_test_shared(refs[m]);
        if (!ref) return;
        for_each_case(ref, check_roundtrip, t);
        sp_tokenizer_free(t);
    }
}

Test(tokenizer, pieces_are_raw)
{
    sp_tokenizer *t = load("models/tiny-random-q8_0.gguf");
    if (!t) return;
    cr_assert_str_eq(sp_token_piece(t, 15043), "\xe2\x96\x81Hello");
    cr_assert_str_eq(sp_token_piece(t, 13), "<0x0A>");
    cr_assert_str_eq(sp_token_piece(t, 1), "<s>");
    cr_assert_str_eq(sp_token_piece(t, 99999), "");
    sp_tokenizer_free(t);
}

Test(tokenizer, split_emoji_is_held_until_complete)
{
    sp_tokenizer *t = load("models/tiny-random-q8_0.gguf");
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
    sp_tokenizer *t = load("models/tiny-random-q8_0.gguf");
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
    sp_tokenizer *t = load("models/tiny-random-q8_0.gguf");
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
    int out[64];
    int n = sp_tokenize(t, text, false, out, 64);
    cr_assert_eq(n, n_want, "\"%s\": %d tokens, expected %d", text, n, n_want);
    for (int i = 0; i < n; i++)
        cr_assert_eq(out[i], want[i], "\"%s\": token %d is %d (%s), expected %d (%s)", text, i, out[i],
                     sp_token_piece(t, out[i]), want[i], sp_token_piece(t, want[i]));
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
    vocab_spec v = {"gpt2", specials, NULL, NULL, 3, false, -1};
    sp_gguf *g = write_vocab("gpt2.gguf", &v);
    sp_error err = {{0}};
    cr_assert_null(sp_tokenizer_load(g, &err));
    cr_assert_not_null(strstr(err.msg, "'gpt2'"), "error should name the model type: %s", err.msg);
    cr_assert_not_null(strstr(err.msg, "gpt2.gguf"), "error should name the file: %s", err.msg);
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
    int out[8];
    cr_assert_eq(sp_tokenize(t, "ab", true, out, 8), 6); /* BOS, "▁" (3 bytes), 'a', 'b' */
    cr_assert_eq(out[0], 1);
    for (int i = 1; i < 6; i++) cr_assert_eq(out[i], 0);
    sp_tokenizer_free(t);
}
