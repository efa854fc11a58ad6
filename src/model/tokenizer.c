/* tokenizer.c - the SentencePiece "llama" vocabulary from GGUF metadata:
 * loading, encoding (score-driven bigram merging with byte fallback, as
 * llama.cpp's SPM tokenizer does it) and streaming decoding.
 *
 * Encoding, step by step:
 *   1. every ' ' becomes U+2581 "▁" and, when add_space_prefix is set, one
 *      "▁" is put in front (so "Hello" and " Hello" inside a sentence get
 *      the same "▁Hello" token);
 *   2. the text is split into UTF-8 characters, one symbol each, kept in a
 *      doubly linked list;
 *   3. every adjacent pair whose concatenation is in the vocabulary goes
 *      into a max-heap keyed by that token's score (ties: leftmost pair);
 *      the best pair is merged, and the two pairs the merged symbol now
 *      forms with its neighbours are pushed. Heap entries whose symbols have
 *      changed since they were pushed are recognised by their length and
 *      skipped, so nothing is ever removed from the middle of the heap;
 *   4. each final symbol is its own token if the vocabulary has it, else it
 *      is spelled with the byte tokens <0x00>..<0xFF>.
 * Only ordinary pieces take part in step 3: control (<s>, </s>), unknown
 * and byte tokens are never produced from text, so "<s>" typed by a user
 * stays text. */
#include <stdlib.h>
#include <string.h>

#include "shardpipe/tokenizer.h"
#include "shardpipe/util.h"

/* token_type values as written by llama.cpp's converters. */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

struct sp_tokenizer {
    int n_vocab;
    char **pieces;     /* NUL-terminated copies, into one arena */
    int *piece_len;
    float *scores;
    int32_t *types;
    char *arena;
    /* open-addressing hash: piece -> id, for the ordinary pieces only */
    int *slots;        /* id or -1 */
    uint32_t n_slots;  /* power of two */
    int byte_id[256];  /* <0xXX> token of each byte, -1 if absent */
    int bos, eos, unk;
    bool add_bos, add_space_prefix;
};

/* ---- piece -> id hash map ---- */

/* FNV-1a: short keys, no need for anything stronger. */
static uint32_t hash_bytes(const char *s, int n)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int lookup(const sp_tokenizer *t, const char *s, int n)
{
    uint32_t mask = t->n_slots - 1;
    for (uint32_t i = hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
        int id = t->slots[i];
        if (id < 0) return -1;
        if (t->piece_len[id] == n && memcmp(t->pieces[id], s, (size_t)n) == 0) return id;
    }
}

/* A later duplicate of a piece replaces the earlier one, as in llama.cpp. */
static void insert(sp_tokenizer *t, int id)
{
    uint32_t mask = t->n_slots - 1;
    const char *s = t->pieces[id];
    int n = t->piece_len[id];
    for (uint32_t i = hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
        int old = t->slots[i];
        if (old < 0 || (t->piece_len[old] == n && memcmp(t->pieces[old], s, (size_t)n) == 0)) {
            t->slots[i] = id;
            return;
        }
    }
}

/* ---- loading ---- */

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

static int get_id_or(const sp_gguf *g, const char *key, uint32_t def, int n_vocab, int *out,
                     sp_error *err)
{
    uint32_t v;
    if (sp_gguf_get_u32_or(g, key, def, &v, err)) return -1;
    if (v >= (uint32_t)n_vocab)
        return sp_errorf(err, "%s: %s = %u is outside the vocabulary of %d tokens", g->path, key, v,
                         n_vocab);
    *out = (int)v;
    return 0;
}

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

sp_tokenizer *sp_tokenizer_load(const sp_gguf *g, sp_error *err)
{
    sp_gguf_str model;
    if (sp_gguf_get_str(g, "tokenizer.ggml.model", &model, err)) return NULL;
    if (!sp_gguf_str_eq(model, "llama")) {
        sp_errorf(err, "%s: tokenizer.ggml.model is '%.*s', but shardpipe implements only the "
                       "SentencePiece 'llama' tokenizer (Llama 1/2, TinyLlama, stories models)",
                  g->path, (int)(model.len > 40 ? 40 : model.len), model.ptr);
        return NULL;
    }
    const sp_gguf_kv *tokens, *scores, *types;
    if (sp_gguf_get_arr(g, "tokenizer.ggml.tokens", SP_GGUF_STRING, &tokens, err) ||
        sp_gguf_get_arr(g, "tokenizer.ggml.scores", SP_GGUF_FLOAT32, &scores, err) ||
        sp_gguf_get_arr(g, "tokenizer.ggml.token_type", SP_GGUF_INT32, &types, err))
        return NULL;
    uint64_t n = tokens->arr_n;
    if (n < 3 || n > (1u << 24)) {
        sp_errorf(err, "%s: tokenizer.ggml.tokens has %llu entries, expected between 3 and 16777216",
                  g->path, (unsigned long long)n);
        return NULL;
    }
    if (scores->arr_n != n || types->arr_n != n) {
        sp_errorf(err, "%s: tokenizer.ggml.scores has %llu and token_type %llu entries, expected %llu "
                       "each (one per entry of tokenizer.ggml.tokens)",
                  g->path, (unsigned long long)scores->arr_n, (unsigned long long)types->arr_n,
                  (unsigned long long)n);
        return NULL;
    }
    uint64_t arena_bytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (tokens->arr_strs[i].len > 4096) {
            sp_errorf(err, "%s: tokenizer.ggml.tokens[%llu] is %llu bytes long, expected at most 4096",
                      g->path, (unsigned long long)i, (unsigned long long)tokens->arr_strs[i].len);
            return NULL;
        }
        arena_bytes += tokens->arr_strs[i].len + 1;
    }

    sp_tokenizer *t = sp_calloc(1, sizeof *t);
    t->n_vocab = (int)n;
    t->pieces = sp_alloc(n * sizeof *t->pieces);
    t->piece_len = sp_alloc(n * sizeof *t->piece_len);
    t->scores = sp_alloc(n * sizeof *t->scores);
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
    /* array bytes in the file are little-endian and possibly unaligned */
    memcpy(t->scores, scores->arr_data, n * sizeof(float));
    memcpy(t->types, types->arr_data, n * sizeof(int32_t));

    t->n_slots = 1;
    while (t->n_slots < 2 * n) t->n_slots *= 2;
    t->slots = sp_alloc(t->n_slots * sizeof *t->slots);
    memset(t->slots, 0xff, t->n_slots * sizeof *t->slots);
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (int i = 0; i < (int)n; i++) {
        int ty = t->types[i];
        if (ty == TT_BYTE) {
            int b = parse_byte_piece(t->pieces[i], t->piece_len[i]);
            if (b >= 0 && t->byte_id[b] < 0) t->byte_id[b] = i;
        } else if (ty != TT_CONTROL && ty != TT_UNKNOWN && t->piece_len[i] > 0) {
            insert(t, i);
        }
    }

    if (get_id_or(g, "tokenizer.ggml.bos_token_id", 1, t->n_vocab, &t->bos, err) ||
        get_id_or(g, "tokenizer.ggml.eos_token_id", 2, t->n_vocab, &t->eos, err) ||
        get_id_or(g, "tokenizer.ggml.unknown_token_id", 0, t->n_vocab, &t->unk, err) ||
        get_bool_or(g, "tokenizer.ggml.add_bos_token", true, &t->add_bos, err) ||
        get_bool_or(g, "tokenizer.ggml.add_space_prefix", true, &t->add_space_prefix, err)) {
        sp_tokenizer_free(t);
        return NULL;
    }
    return t;
}

void sp_tokenizer_free(sp_tokenizer *t)
{
    if (!t) return;
    free(t->pieces);
    free(t->piece_len);
    free(t->scores);
    free(t->types);
    free(t->arena);
    free(t->slots);
    free(t);
}

int sp_tokenizer_n_vocab(const sp_tokenizer *t) { return t->n_vocab; }
int sp_tokenizer_bos(const sp_tokenizer *t) { return t->bos; }
int sp_tokenizer_eos(const sp_tokenizer *t) { return t->eos; }
bool sp_tokenizer_add_bos(const sp_tokenizer *t) { return t->add_bos; }

const char *sp_token_piece(const sp_tokenizer *t, int id)
{
    if (id < 0 || id >= t->n_vocab) return "";
    return t->pieces[id];
}

/* ---- encoding ---- */

typedef struct symbol {
    int start, len;   /* bytes of the escaped text; len 0 once merged away */
    int prev, next;   /* neighbours in the list, -1 at the ends */
} symbol;

typedef struct bigram {
    int left, right;  /* symbol indices */
    float score;
    int len;          /* bytes of the pair when pushed: detects stale entries */
} bigram;

/* Heap order: higher score first, then the leftmost pair. */
static bool bigram_before(const bigram *a, const bigram *b)
{
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

typedef struct heap {
    bigram *v;
    int n;
} heap;

static void heap_push(heap *h, bigram b)
{
    int i = h->n++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!bigram_before(&b, &h->v[parent])) break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = b;
}

static bigram heap_pop(heap *h)
{
    bigram top = h->v[0];
    bigram last = h->v[--h->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bigram_before(&h->v[c + 1], &h->v[c])) c++;
        if (!bigram_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0) h->v[i] = last;
    return top;
}

/* Push the pair (left, right) if their concatenation is a vocabulary piece. */
static void try_pair(const sp_tokenizer *t, const char *text, const symbol *sym, int left, int right,
                     heap *h)
{
    if (left < 0 || right < 0) return;
    int len = sym[left].len + sym[right].len;
    int id = lookup(t, text + sym[left].start, len); /* the two symbols are adjacent in text */
    if (id < 0) return;
    heap_push(h, (bigram){left, right, t->scores[id], len});
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

static void emit(int *out, int cap, int *n, int id)
{
    if (*n < cap) out[*n] = id;
    (*n)++;
}

int sp_tokenize(const sp_tokenizer *t, const char *text, bool add_bos, int *out, int cap)
{
    int n_out = 0;
    if (add_bos) emit(out, cap, &n_out, t->bos);
    if (!text || !*text) return n_out;

    /* 1. escape spaces, add the prefix space */
    size_t in_len = strlen(text);
    if (in_len > SP_TOKENIZE_MAX_BYTES) return -1;
    char *s = sp_alloc(3 * in_len + 4);
    int n = 0;
    if (t->add_space_prefix) {
        memcpy(s, "\xe2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < in_len; i++) {
        if (text[i] == ' ') {
            memcpy(s + n, "\xe2\x96\x81", 3);
            n += 3;
        } else {
            s[n++] = text[i];
        }
    }

    /* 2. one symbol per UTF-8 character */
    symbol *sym = sp_alloc((size_t)n * sizeof *sym);
    int n_sym = 0;
    for (int i = 0; i < n;) {
        int len = utf8_len((uint8_t)s[i]);
        if (len > n - i) len = n - i;
        sym[n_sym] = (symbol){i, len, n_sym - 1, n_sym + 1};
        n_sym++;
        i += len;
    }
    sym[n_sym - 1].next = -1;

    /* 3. merge the best pair until none is left. Each merge pushes at most
     * two pairs and there are at most n_sym - 1 merges. */
    heap h = {sp_alloc(3 * (size_t)n_sym * sizeof(bigram)), 0};
    for (int i = 1; i < n_sym; i++) try_pair(t, s, sym, i - 1, i, &h);
    while (h.n > 0) {
        bigram b = heap_pop(&h);
        symbol *l = &sym[b.left], *r = &sym[b.right];
        /* stale: one side was merged into something else since the push */
        if (l->len == 0 || r->len == 0 || l->len + r->len != b.len) continue;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        try_pair(t, s, sym, l->prev, b.left, &h);
        try_pair(t, s, sym, b.left, l->next, &h);
    }

    /* 4. symbols to ids, spelling unknown ones byte by byte */
    for (int i = 0; i >= 0; i = sym[i].next) {
        int id = lookup(t, s + sym[i].start, sym[i].len);
        if (id >= 0) {
            emit(out, cap, &n_out, id);
            continue;
        }
        for (int j = 0; j < sym[i].len; j++) {
            int b = t->byte_id[(uint8_t)s[sym[i].start + j]];
            emit(out, cap, &n_out, b >= 0 ? b : t->unk);
        }
    }
    free(h.v);
    free(sym);
    free(s);
    return n_out;
}

/* ---- decoding ---- */

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

/* Text of token id: "▁" means a space, byte tokens are their byte, control
 * tokens are silent. The leading space of the first piece after the start
 * is dropped when the encoder adds a prefix space: it is that space. A
 * leading space typed by the user survives because the encoder keeps it as
 * an extra "▁" (" Hi" -> "▁" "▁Hi"), so decode(encode(x)) == x. */
int sp_detok_push(const sp_tokenizer *t, sp_detok *d, int id, char *out, int cap)
{
    outbuf o = {out, 0, cap};
    if (cap <= 0) return 0;
    if (id < 0 || id >= t->n_vocab || t->types[id] == TT_CONTROL) {
        out[0] = '\0';
        return 0;
    }
    bool strip = d->at_start && t->add_space_prefix;
    d->at_start = false;
    if (t->types[id] == TT_BYTE) {
        int b = parse_byte_piece(t->pieces[id], t->piece_len[id]);
        if (b >= 0) {
            char c = (char)b;
            push_bytes(d, &c, 1, &o);
        }
    } else if (t->types[id] == TT_UNKNOWN) {
        push_bytes(d, "\xe2\x96\x85", 3, &o); /* U+2585, as llama.cpp prints <unk> */
    } else {
        const char *p = t->pieces[id];
        int n = t->piece_len[id];
        for (int i = 0; i < n;) {
            if (i + 3 <= n && memcmp(p + i, "\xe2\x96\x81", 3) == 0) {
                if (!(strip && i == 0)) push_bytes(d, " ", 1, &o);
                i += 3;
            } else {
                push_bytes(d, p + i, 1, &o);
                i++;
            }
        }
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
