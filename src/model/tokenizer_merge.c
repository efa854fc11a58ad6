/* tokenizer_merge.c - best-pair-first merging, the core of both SentencePiece
 * (pairs ranked by the merged piece's score) and BPE (pairs ranked by their
 * merge rule's index).
 *
 * Every adjacent pair the caller accepts goes into a max-heap keyed by its
 * priority (ties: the leftmost pair, as llama.cpp breaks them); the best is
 * merged, and the two pairs the merged symbol now forms with its neighbours
 * are pushed. A heap entry whose symbols changed since it was pushed is
 * recognised by their byte lengths (a symbol only grows, and only by
 * absorbing its right neighbour, so unchanged lengths mean unchanged
 * symbols) and skipped: nothing is ever removed from the middle of the heap.
 * Each merge pushes at most two pairs, so the heap never holds more than
 * 3 * n_sym entries. */
#include <stdlib.h>

#include "shardpipe/util.h"
#include "tokenizer_impl.h"

struct tok_pair {
    double prio;
    int left, right;  /* symbol indices */
    int len;          /* bytes of the pair when pushed */
    int id;           /* the token the pair becomes */
};

static bool pair_before(const struct tok_pair *a, const struct tok_pair *b)
{
    if (a->prio != b->prio) return a->prio > b->prio;
    return a->left < b->left;
}

static void heap_push(tok_merger *h, struct tok_pair p)
{
    int i = h->n++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!pair_before(&p, &h->heap[parent])) break;
        h->heap[i] = h->heap[parent];
        i = parent;
    }
    h->heap[i] = p;
}

static struct tok_pair heap_pop(tok_merger *h)
{
    struct tok_pair top = h->heap[0], last = h->heap[--h->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && pair_before(&h->heap[c + 1], &h->heap[c])) c++;
        if (!pair_before(&h->heap[c], &last)) break;
        h->heap[i] = h->heap[c];
        i = c;
    }
    if (h->n > 0) h->heap[i] = last;
    return top;
}

static void try_pair(tok_merger *h, const tok_sym *sym, int left, int right, tok_pair_fn fn,
                     const void *ctx)
{
    if (left < 0 || right < 0) return;
    struct tok_pair p = {0, left, right, sym[left].len + sym[right].len, -1};
    if (fn(ctx, &sym[left], &sym[right], &p.prio, &p.id)) heap_push(h, p);
}

void tok_merge(tok_merger *h, tok_sym *sym, int n_sym, tok_pair_fn fn, const void *ctx)
{
    if (n_sym < 2) return;
    if (h->cap < 3 * n_sym) {
        free(h->heap);
        h->cap = 3 * n_sym;
        h->heap = sp_alloc((size_t)h->cap * sizeof *h->heap);
    }
    h->n = 0;
    for (int i = 1; i < n_sym; i++) try_pair(h, sym, i - 1, i, fn, ctx);
    while (h->n > 0) {
        struct tok_pair p = heap_pop(h);
        tok_sym *l = &sym[p.left], *r = &sym[p.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != p.len) continue; /* stale */
        l->len += r->len;
        l->id = p.id;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = p.left;
        try_pair(h, sym, l->prev, p.left, fn, ctx);
        try_pair(h, sym, p.left, l->next, fn, ctx);
    }
}

void tok_merger_free(tok_merger *h)
{
    free(h->heap);
    h->heap = NULL;
    h->n = h->cap = 0;
}
