/* tokenizer_spm.c - the SentencePiece "llama" algorithm (as llama.cpp's SPM
 * tokenizer): score-driven pair merging with byte fallback.
 *
 * Encoding one fragment of text, step by step:
 *   1. every ' ' becomes U+2581 "▁" and, when asked (the start of the text,
 *      or text right after a special token, with add_space_prefix), one "▁"
 *      is put in front (so "Hello" and " Hello" inside a sentence get the
 *      same "▁Hello" token);
 *   2. the text is split into UTF-8 characters, one symbol each;
 *   3. adjacent symbols whose concatenation is an ordinary piece merge, the
 *      highest-scoring pair first (tokenizer_merge.c);
 *   4. each final symbol is its own token if the vocabulary has it, else it
 *      is spelled with the byte tokens <0x00>..<0xFF> (or <unk>).
 * Only ordinary pieces take part in step 3: control (<s>, </s>), unknown and
 * byte tokens are never produced from text, so "<s>" typed by a user stays
 * text. */
#include <stdlib.h>
#include <string.h>

#include "shardpipe/util.h"
#include "tokenizer_impl.h"

/* Value of a byte piece "<0xXX>", or -1. */
static int parse_byte_piece(const char *s, int n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

int tok_spm_load(sp_tokenizer *t, const sp_gguf *g, sp_error *err)
{
    const sp_gguf_kv *scores;
    if (sp_gguf_get_arr(g, "tokenizer.ggml.scores", SP_GGUF_FLOAT32, &scores, err)) return -1;
    if (scores->arr_n != (uint64_t)t->n_vocab)
        return sp_errorf(err, "%s: tokenizer.ggml.scores has %llu entries, expected %d (one per entry "
                              "of tokenizer.ggml.tokens)",
                         g->path, (unsigned long long)scores->arr_n, t->n_vocab);
    t->scores = sp_alloc((size_t)t->n_vocab * sizeof *t->scores);
    memcpy(t->scores, scores->arr_data, (size_t)t->n_vocab * sizeof(float)); /* unaligned LE in the file */

    tok_map_init(&t->ordinary, t->n_vocab);
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (int i = 0; i < t->n_vocab; i++) {
        int ty = t->types[i];
        if (ty == TT_BYTE) {
            int b = parse_byte_piece(t->pieces[i], t->piece_len[i]);
            if (b >= 0 && t->byte_id[b] < 0) t->byte_id[b] = i;
        } else if (ty != TT_CONTROL && ty != TT_UNKNOWN && t->piece_len[i] > 0) {
            tok_map_insert(&t->ordinary, t, i);
        }
    }
    return 0;
}

/* Byte value of an SPM byte token, -1 for other tokens. */
int tok_spm_byte(const sp_tokenizer *t, int id)
{
    if (t->types[id] != TT_BYTE) return -1;
    return parse_byte_piece(t->pieces[id], t->piece_len[id]);
}

typedef struct spm_ctx {
    const sp_tokenizer *t;
    const char *text;
} spm_ctx;

/* A pair merges when the two symbols' bytes (adjacent in the text) spell an
 * ordinary piece; the piece's score ranks it. */
static bool spm_pair(const void *vctx, const tok_sym *l, const tok_sym *r, double *prio, int *id)
{
    const spm_ctx *c = vctx;
    *id = tok_map_find(&c->t->ordinary, c->t, c->text + l->start, l->len + r->len);
    if (*id < 0) return false;
    *prio = c->t->scores[*id];
    return true;
}

/* Length of the UTF-8 character starting with byte c; a stray byte counts
 * as a character of its own. */
static int utf8_len(uint8_t c)
{
    if (c < 0xC0) return 1;
    if (c < 0xE0) return 2;
    if (c < 0xF0) return 3;
    return 4;
}

void tok_spm_encode(const sp_tokenizer *t, const char *text, int len, bool space_prefix, tok_ids *out)
{
    /* 1. escape spaces, add the prefix space: at most 3 bytes per byte */
    char *s = sp_alloc(3 * (size_t)len + 4);
    int n = 0;
    if (space_prefix) {
        memcpy(s, "\xe2\x96\x81", 3);
        n = 3;
    }
    for (int i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(s + n, "\xe2\x96\x81", 3);
            n += 3;
        } else {
            s[n++] = text[i];
        }
    }
    if (n == 0) {
        free(s);
        return;
    }

    /* 2. one symbol per UTF-8 character */
    tok_sym *sym = sp_alloc((size_t)n * sizeof *sym);
    int n_sym = 0;
    for (int i = 0; i < n;) {
        int l = utf8_len((uint8_t)s[i]);
        if (l > n - i) l = n - i;
        sym[n_sym] = (tok_sym){i, l, n_sym - 1, n_sym + 1, -1};
        n_sym++;
        i += l;
    }
    sym[n_sym - 1].next = -1;

    /* 3. merge */
    tok_merger m = {0};
    spm_ctx c = {t, s};
    tok_merge(&m, sym, n_sym, spm_pair, &c);
    tok_merger_free(&m);

    /* 4. symbols to ids, spelling unknown ones byte by byte */
    for (int i = 0; i >= 0; i = sym[i].next) {
        int id = tok_map_find(&t->ordinary, t, s + sym[i].start, sym[i].len);
        if (id >= 0) {
            tok_ids_push(out, id);
            continue;
        }
        for (int j = 0; j < sym[i].len; j++) {
            int b = t->byte_id[(uint8_t)s[sym[i].start + j]];
            if (b >= 0 || t->unk >= 0) tok_ids_push(out, b >= 0 ? b : t->unk);
        }
    }
    free(sym);
    free(s);
}
