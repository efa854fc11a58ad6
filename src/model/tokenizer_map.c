/* tokenizer_map.c - the tokenizer's small shared helpers: the piece -> id
 * hash map (open addressing, keyed by the bytes of the piece), the growing
 * id vector, and the UTF-8 well-formedness check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/util.h"
#include "tokenizer_impl.h"

/* FNV-1a: short keys, no need for anything stronger. */
uint32_t tok_hash(const char *s, int n)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

void tok_map_init(tok_map *m, int n_entries)
{
    m->n_slots = 16;
    while (m->n_slots < 2u * (uint32_t)n_entries) m->n_slots *= 2;
    m->slots = sp_alloc(m->n_slots * sizeof *m->slots);
    memset(m->slots, 0xff, m->n_slots * sizeof *m->slots);
}

void tok_map_free(tok_map *m)
{
    free(m->slots);
    m->slots = NULL;
}

void tok_map_insert(tok_map *m, const sp_tokenizer *t, int id)
{
    uint32_t mask = m->n_slots - 1;
    const char *s = t->pieces[id];
    int n = t->piece_len[id];
    for (uint32_t i = tok_hash(s, n) & mask;; i = (i + 1) & mask) {
        int old = m->slots[i];
        if (old < 0 || (t->piece_len[old] == n && memcmp(t->pieces[old], s, (size_t)n) == 0)) {
            m->slots[i] = id;
            return;
        }
    }
}

int tok_map_find(const tok_map *m, const sp_tokenizer *t, const char *s, int n)
{
    uint32_t mask = m->n_slots - 1;
    for (uint32_t i = tok_hash(s, n) & mask;; i = (i + 1) & mask) {
        int id = m->slots[i];
        if (id < 0) return -1;
        if (t->piece_len[id] == n && memcmp(t->pieces[id], s, (size_t)n) == 0) return id;
    }
}

void tok_ids_push(tok_ids *o, int id)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        int *v = realloc(o->v, (size_t)o->cap * sizeof *o->v);
        if (!v) { /* as sp_alloc: out of memory is not an input error */
            fprintf(stderr, "shardpipe: out of memory (%d token ids)\n", o->cap);
            abort();
        }
        o->v = v;
    }
    o->v[o->n++] = id;
}

/* How many bytes starting at s[0] form a valid UTF-8 character: its length
 * when complete, 0 when it is a valid prefix that needs more bytes, -1 when
 * s[0] cannot start a character here. Follows the well-formed byte table of
 * the Unicode standard (no overlongs, surrogates or values above U+10FFFF). */
int tok_utf8_check(const uint8_t *s, int n)
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
