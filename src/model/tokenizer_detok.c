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
 * tokens are silent, <unk> is U+2585 (as llama.cpp prints it). */
static int spm_bytes(const sp_tokenizer *t, int id, char *out)
{
    int ty = t->types[id], b = tok_spm_byte(t, id);
    if (ty == TT_CONTROL) return 0;
    if (b >= 0) {
        out[0] = (char)b;
        return 1;
    }
    if (ty == TT_UNKNOWN) {
        memcpy(out, "\xe2\x96\x85", 3);
        return 3;
    }
    const char *p = t->pieces[id];
    int n = t->piece_len[id], o = 0;
    for (int i = 0; i < n;) {
        if (i + 3 <= n && memcmp(p + i, "\xe2\x96\x81", 3) == 0) {
            out[o++] = ' ';
            i += 3;
        } else {
            out[o++] = p[i++];
        }
    }
    return o;
}

/* BPE: control tokens are their text (as the references render them),
 * unused fillers nothing, every other piece its bytes. */
static int bpe_bytes(const sp_tokenizer *t, int id, char *out)
{
    int ty = t->types[id];
    if (ty == TT_UNUSED) return 0;
    if (ty == TT_CONTROL) {
        memcpy(out, t->pieces[id], (size_t)t->piece_len[id]);
        return t->piece_len[id];
    }
    return tok_bpe_unmap(t, t->pieces[id], t->piece_len[id], out);
}

/* Every token's bytes fit: a piece is at most 4096 bytes and decoding never
 * lengthens one (<unk>'s 3 bytes excepted). */
#define TOKEN_BYTES_MAX 4096

int sp_token_bytes(const sp_tokenizer *t, int id, char *out, int cap)
{
    char buf[TOKEN_BYTES_MAX];
    if (id < 0 || id >= t->n_vocab || cap <= 0) return 0;
    int n = t->kind == TOK_SPM ? spm_bytes(t, id, buf) : bpe_bytes(t, id, buf);
    if (n > cap) n = cap;
    memcpy(out, buf, (size_t)n);
    return n;
}

/* The leading space of the first piece after the start is dropped when the
 * SentencePiece encoder adds a prefix space: it is that space. A leading
 * space typed by the user survives because the encoder keeps it as an extra
 * "▁" (" Hi" -> "▁" "▁Hi"), so decode(encode(x)) == x. Control tokens print
 * nothing and do not count as the first piece. */
int sp_detok_push(const sp_tokenizer *t, sp_detok *d, int id, char *out, int cap)
{
    outbuf o = {out, 0, cap};
    if (cap <= 0) return 0;
    char bytes[TOKEN_BYTES_MAX];
    int n = sp_token_bytes(t, id, bytes, sizeof bytes), skip = 0;
    if (t->kind == TOK_SPM && id >= 0 && id < t->n_vocab && t->types[id] != TT_CONTROL) {
        if (d->at_start && t->add_space_prefix && !memcmp(t->pieces[id], "\xe2\x96\x81", 3)) skip = 1;
        d->at_start = false;
    }
    push_bytes(d, bytes + skip, n - skip, &o);
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
