/* tokenizer_bpe.c - byte-level BPE (tokenizer.ggml.model = gpt2), as Llama 3
 * and Qwen2/2.5/3 store it: tokens, merge rules "A B" whose index is their
 * rank, and a pre-tokenizer named by tokenizer.ggml.pre.
 *
 * Encoding one fragment of text:
 *   1. Qwen (pre qwen2): the text is put in Unicode NFC (tokenizer_pretok.c);
 *   2. the pre-tokenizer's regex cuts it into pieces (words with their
 *      leading space, digit groups, punctuation runs, whitespace runs);
 *   3. each byte of a piece becomes its GPT-2 character: bytes that are
 *      printable Latin-1 (! to ~, ¡ to ¬, ® to ÿ) stand for themselves, the
 *      other 68 take the code points 256, 257, ... in byte order, so " the"
 *      is "Ġthe" in the vocabulary;
 *   4. Llama 3 (ignore_merges, as its tokenizer.json says): a piece that is a
 *      token as a whole is that token;
 *   5. otherwise the piece starts as one symbol per byte and adjacent pairs
 *      merge lowest rank first (tokenizer_merge.c) until no rule applies.
 * Every byte has a token, so there is no unknown and no fallback.
 *
 * Merge rules are kept as a hash from the pair of token ids to (rank, merged
 * id): merging never looks at strings. */
#include <stdlib.h>
#include <string.h>

#include "shardpipe/util.h"
#include "tokenizer_impl.h"

typedef struct merge_slot {
    uint64_t key;   /* left id << 32 | right id; UINT64_MAX when empty */
    int rank, id;
} merge_slot;

struct tok_bpe {
    merge_slot *merges;
    uint32_t n_slots;
    tok_map pieces;      /* every non-control piece */
    tok_pretok *pretok;
    bool nfc, ignore_merges;
    char byte_chr[256][2]; /* UTF-8 of each byte's GPT-2 character (1 or 2 bytes) */
    uint8_t byte_chr_len[256];
    int16_t byte_of[324];  /* the inverse: code point -> byte, -1 if none */
};

/* GPT-2's byte -> code point map (see step 3 above). */
static unsigned byte_cp(int b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return (unsigned)b;
    int k = 0; /* how many unprintable bytes come before b */
    for (int c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) k++;
    return 256u + (unsigned)k;
}

static uint64_t pair_key(int l, int r) { return (uint64_t)(uint32_t)l << 32 | (uint32_t)r; }

static uint32_t key_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull; /* a 64-bit finalizer mix: ids are small and dense */
    k ^= k >> 33;
    return (uint32_t)k;
}

static const merge_slot *find_merge(const tok_bpe *b, int l, int r)
{
    uint64_t k = pair_key(l, r);
    uint32_t mask = b->n_slots - 1;
    for (uint32_t i = key_hash(k) & mask;; i = (i + 1) & mask) {
        const merge_slot *s = &b->merges[i];
        if (s->key == k) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}

/* The first rule for a pair wins (a repeated rule keeps its lower rank). */
static void add_merge(tok_bpe *b, int l, int r, int rank, int id)
{
    uint64_t k = pair_key(l, r);
    uint32_t mask = b->n_slots - 1;
    for (uint32_t i = key_hash(k) & mask;; i = (i + 1) & mask) {
        merge_slot *s = &b->merges[i];
        if (s->key == k) return;
        if (s->key == UINT64_MAX) {
            *s = (merge_slot){k, rank, id};
            return;
        }
    }
}

static int load_merges(sp_tokenizer *t, tok_bpe *b, const sp_gguf *g, sp_error *err)
{
    const sp_gguf_kv *merges;
    if (sp_gguf_get_arr(g, "tokenizer.ggml.merges", SP_GGUF_STRING, &merges, err)) return -1;
    if (merges->arr_n > (1u << 24))
        return sp_errorf(err, "%s: tokenizer.ggml.merges has %llu entries, expected at most 16777216",
                         g->path, (unsigned long long)merges->arr_n);
    b->n_slots = 16;
    while (b->n_slots < 2 * merges->arr_n) b->n_slots *= 2;
    b->merges = sp_alloc(b->n_slots * sizeof *b->merges);
    memset(b->merges, 0xff, b->n_slots * sizeof *b->merges);
    char joined[8192];
    for (uint64_t i = 0; i < merges->arr_n; i++) {
        sp_gguf_str m = merges->arr_strs[i];
        const char *sp = m.len ? memchr(m.ptr, ' ', m.len) : NULL;
        if (!sp || m.len > sizeof joined)
            return sp_errorf(err, "%s: tokenizer.ggml.merges[%llu] is '%.*s', expected two pieces "
                                  "separated by one space",
                             g->path, (unsigned long long)i, (int)(m.len > 60 ? 60 : m.len), m.ptr);
        int nl = (int)(sp - m.ptr), nr = (int)m.len - nl - 1;
        int l = tok_map_find(&b->pieces, t, m.ptr, nl);
        int r = tok_map_find(&b->pieces, t, sp + 1, nr);
        memcpy(joined, m.ptr, (size_t)nl);
        memcpy(joined + nl, sp + 1, (size_t)nr);
        int id = tok_map_find(&b->pieces, t, joined, nl + nr);
        /* a rule over pieces the vocabulary lacks can never fire: skip it */
        if (l >= 0 && r >= 0 && id >= 0) add_merge(b, l, r, (int)i, id);
    }
    return 0;
}

int tok_bpe_load(sp_tokenizer *t, const sp_gguf *g, sp_error *err)
{
    sp_gguf_str pre = {0, ""};
    const sp_gguf_kv *kv = sp_gguf_find(g, "tokenizer.ggml.pre");
    if (kv && sp_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err)) return -1;
    tok_pre which;
    bool ignore_merges = false, nfc = false;
    if (sp_gguf_str_eq(pre, "llama-bpe") || sp_gguf_str_eq(pre, "llama3")) {
        which = TOK_PRE_LLAMA3;
        ignore_merges = true;
    } else if (sp_gguf_str_eq(pre, "qwen2")) {
        which = TOK_PRE_QWEN2;
        nfc = true;
    } else {
        return sp_errorf(err, "%s: tokenizer.ggml.pre is '%.*s', but shardpipe implements the byte-level "
                              "BPE pre-tokenizers 'llama-bpe' (Llama 3.x) and 'qwen2' (Qwen2/2.5/3) only",
                         g->path, (int)(pre.len > 40 ? 40 : pre.len), pre.ptr);
    }

    tok_bpe *b = sp_calloc(1, sizeof *b);
    t->bpe = b;
    b->ignore_merges = ignore_merges;
    b->nfc = nfc;
    tok_map_init(&b->pieces, t->n_vocab);
    for (int i = 0; i < t->n_vocab; i++)
        if (t->types[i] != TT_CONTROL && t->types[i] != TT_UNUSED && t->piece_len[i] > 0)
            tok_map_insert(&b->pieces, t, i);
    for (int i = 0; i < 324; i++) b->byte_of[i] = -1;
    for (int c = 0; c < 256; c++) {
        unsigned cp = byte_cp(c);
        b->byte_of[cp] = (int16_t)c;
        int n = cp < 0x80 ? 1 : 2; /* all below U+0800 */
        if (n == 1) b->byte_chr[c][0] = (char)cp;
        else {
            b->byte_chr[c][0] = (char)(0xC0 | (cp >> 6));
            b->byte_chr[c][1] = (char)(0x80 | (cp & 0x3F));
        }
        b->byte_chr_len[c] = (uint8_t)n;
        t->byte_id[c] = tok_map_find(&b->pieces, t, b->byte_chr[c], n);
        if (t->byte_id[c] < 0)
            return sp_errorf(err, "%s: tokenizer.ggml.tokens has no token for byte 0x%02X (GPT-2 character "
                                  "U+%04X), which every byte-level BPE vocabulary needs; the file is "
                                  "not a byte-level vocabulary or is damaged",
                             g->path, c, cp);
    }
    if (load_merges(t, b, g, err)) return -1;
    b->pretok = tok_pretok_new(which, g->path, err);
    return b->pretok ? 0 : -1;
}

void tok_bpe_free(tok_bpe *b)
{
    if (!b) return;
    free(b->merges);
    tok_map_free(&b->pieces);
    tok_pretok_free(b->pretok);
    free(b);
}

/* Scratch space of one encode call, grown as pieces need. */
typedef struct bpe_work {
    const sp_tokenizer *t;
    tok_ids *out;
    char *mapped;    /* the piece in GPT-2 characters */
    tok_sym *sym;
    int cap;         /* bytes of the longest piece they hold */
    tok_merger merger;
} bpe_work;

static bool bpe_pair(const void *ctx, const tok_sym *l, const tok_sym *r, double *prio, int *id)
{
    const merge_slot *s = find_merge(ctx, l->id, r->id);
    if (!s) return false;
    *prio = -(double)s->rank; /* lower rank merges first */
    *id = s->id;
    return true;
}

static void encode_piece(void *vw, const char *piece, int len)
{
    bpe_work *w = vw;
    const sp_tokenizer *t = w->t;
    const tok_bpe *b = t->bpe;
    if (len == 1) {
        tok_ids_push(w->out, t->byte_id[(uint8_t)piece[0]]);
        return;
    }
    if (len > w->cap) {
        free(w->mapped);
        free(w->sym);
        w->cap = len;
        w->mapped = sp_alloc(2 * (size_t)len);
        w->sym = sp_alloc((size_t)len * sizeof *w->sym);
    }
    int n = 0;
    for (int i = 0; i < len; i++) {
        uint8_t c = (uint8_t)piece[i];
        w->sym[i] = (tok_sym){n, b->byte_chr_len[c], i - 1, i + 1, t->byte_id[c]};
        memcpy(w->mapped + n, b->byte_chr[c], b->byte_chr_len[c]);
        n += b->byte_chr_len[c];
    }
    w->sym[len - 1].next = -1;
    if (b->ignore_merges) {
        int id = tok_map_find(&b->pieces, t, w->mapped, n);
        if (id >= 0) {
            tok_ids_push(w->out, id);
            return;
        }
    }
    tok_merge(&w->merger, w->sym, len, bpe_pair, b);
    for (int i = 0; i >= 0; i = w->sym[i].next) tok_ids_push(w->out, w->sym[i].id);
}

static bool is_ascii(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if ((uint8_t)s[i] >= 0x80) return false;
    return true;
}

void tok_bpe_encode(const sp_tokenizer *t, const char *text, int len, tok_ids *out)
{
    char *norm = NULL;
    if (t->bpe->nfc && !is_ascii(text, len)) { /* ASCII is its own NFC */
        int n;
        norm = tok_nfc(text, len, &n);
        if (norm) {
            text = norm;
            len = n;
        }
    }
    bpe_work w = {.t = t, .out = out};
    tok_pretok_split(t->bpe->pretok, text, len, encode_piece, &w);
    free(w.mapped);
    free(w.sym);
    tok_merger_free(&w.merger);
    free(norm);
}

/* Code point of the UTF-8 character at s (n bytes left) and its length in
 * *len; -1 when it is not valid. */
static int next_cp(const uint8_t *s, int n, int *len)
{
    if (s[0] < 0x80) { *len = 1; return s[0]; }
    if (s[0] >= 0xC2 && s[0] < 0xE0 && n >= 2 && (s[1] & 0xC0) == 0x80) {
        *len = 2;
        return (s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    }
    *len = 1;
    return -1;
}

int tok_bpe_unmap(const sp_tokenizer *t, const char *piece, int n, char *out)
{
    const int16_t *byte_of = t->bpe->byte_of;
    int o = 0;
    for (int i = 0; i < n;) {
        int len, cp = next_cp((const uint8_t *)piece + i, n - i, &len);
        if (cp >= 0 && cp < 324 && byte_of[cp] >= 0) {
            out[o++] = (char)byte_of[cp];
        } else { /* not a GPT-2 character: keep its bytes as they are */
            memcpy(out + o, piece + i, (size_t)len);
            o += len;
        }
        i += len;
    }
    return o;
}
