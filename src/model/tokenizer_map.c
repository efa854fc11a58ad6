/* tokenizer_map.c - the tokenizer's piece -> id hash map (open addressing,
 * keyed by the bytes of the piece) and its growing id vector. */
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
