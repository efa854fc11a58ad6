/* tokenizer_detok.c - streaming decoding: each token's bytes (SentencePiece
 * "▁" and <0xXX> pieces, or BPE's GPT-2 characters) are pushed through a
 * small UTF-8 validator that lets out only complete, well-formed characters
 * and holds a partial one for the next token, so text can be printed token
 * by token without ever splitting a character. */
#include <string.h>

#include "tokenizer_impl.h"

void sp_detok_init(sp_detok *d)
{
    memset(d, 0, sizeof *d);
    d->at_start = true;
}

void sp_detok_init_continuation(sp_detok *d)
{
    sp_detok_init(d);
    d->at_start = false;
}

typedef struct outbuf {
    char *p;
    int n, cap;
} outbuf;

static void put(outbuf *o, const char *s, int n)
{
    for (int i = 0; i < n && o->n < o->cap - 1; i++) o->p[o->n++] = s[i];
}

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

/* How many bytes starting at s[0] form a valid UTF-8 character: its length
 * when complete, 0 when it is a valid prefix that needs more bytes, -1 when
 * s[0] cannot start a character here. Follows the well-formed byte table of
 * the Unicode standard (no overlongs, surrogates or values above U+10FFFF). */
static int utf8_check(const uint8_t *s, int n)
{
    uint8_t c = s[0];
    int len;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) return 1;
    if (c < 0xC2) return -1;
    if (c < 0xE0) len = 2;
    else if (c < 0xF0) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c < 0xF5) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return -1;
    for (int i = 1; i < len; i++) {
        if (i >= n) return 0;
        uint8_t lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (s[i] < lo_i || s[i] > hi_i) return -1;
    }
    return len;
}

/* Emit the complete characters of d->pending + bytes, replacing invalid
 * bytes with U+FFFD, and keep a trailing incomplete character pending. */
static void push_bytes(sp_detok *d, const char *bytes, int n, outbuf *o)
{
    for (int i = 0; i < n; i++) {
        d->pending[d->n_pending++] = bytes[i];
        while (d->n_pending > 0) {
            int r = utf8_check((const uint8_t *)d->pending, d->n_pending);
            if (r == 0) break; /* wait for the rest of the character */
            if (r < 0) {
                put(o, REPLACEMENT, 3);
                r = 1;
            } else {
                put(o, d->pending, r);
            }
            d->n_pending -= r;
            memmove(d->pending, d->pending + r, (size_t)d->n_pending);
        }
    }
}

/* SentencePiece: "▁" means a space, byte tokens are their byte, control
 * tokens are silent. The leading space of the first piece after the start
 * is dropped when the encoder adds a prefix space: it is that space. A
 * leading space typed by the user survives because the encoder keeps it as
 * an extra "▁" (" Hi" -> "▁" "▁Hi"), so decode(encode(x)) == x. */
static void push_spm(const sp_tokenizer *t, sp_detok *d, int id, outbuf *o)
{
    if (t->types[id] == TT_CONTROL) return;
    bool strip = d->at_start && t->add_space_prefix;
    d->at_start = false;
    int b = tok_spm_byte(t, id);
    if (b >= 0) {
        char c = (char)b;
        push_bytes(d, &c, 1, o);
    } else if (t->types[id] == TT_UNKNOWN) {
        push_bytes(d, "\xe2\x96\x85", 3, o); /* U+2585, as llama.cpp prints <unk> */
    } else {
        const char *p = t->pieces[id];
        int n = t->piece_len[id];
        for (int i = 0; i < n;) {
            if (i + 3 <= n && memcmp(p + i, "\xe2\x96\x81", 3) == 0) {
                if (!(strip && i == 0)) push_bytes(d, " ", 1, o);
                i += 3;
            } else {
                push_bytes(d, p + i, 1, o);
                i++;
            }
        }
    }
}

/* BPE: control tokens print their text (as the references render them),
 * unused fillers nothing, every other piece its bytes. */
static void push_bpe(const sp_tokenizer *t, sp_detok *d, int id, outbuf *o)
{
    int ty = t->types[id];
    if (ty == TT_UNUSED) return;
    if (ty == TT_CONTROL) {
        push_bytes(d, t->pieces[id], t->piece_len[id], o);
        return;
    }
    char bytes[4096]; /* a piece's bytes are never more than the piece */
    int n = tok_bpe_unmap(t, t->pieces[id], t->piece_len[id], bytes);
    push_bytes(d, bytes, n, o);
}

int sp_detok_push(const sp_tokenizer *t, sp_detok *d, int id, char *out, int cap)
{
    outbuf o = {out, 0, cap};
    if (cap <= 0) return 0;
    if (id >= 0 && id < t->n_vocab) {
        if (t->kind == TOK_SPM) push_spm(t, d, id, &o);
        else push_bpe(t, d, id, &o);
    }
    out[o.n] = '\0';
    return o.n;
}

int sp_detok_flush(sp_detok *d, char *out, int cap)
{
    outbuf o = {out, 0, cap};
    if (cap <= 0) return 0;
    /* whatever is pending is a valid but unfinished character */
    if (d->n_pending > 0) put(&o, REPLACEMENT, 3);
    d->n_pending = 0;
    out[o.n] = '\0';
    return o.n;
}
