/* growbuf.h - a growable byte buffer for the client's lines, events and
 * bodies (private to src/client). Out of memory aborts, as sp_alloc does. */
#ifndef SHARDPIPE_CLIENT_GROWBUF_H
#define SHARDPIPE_CLIENT_GROWBUF_H

#include <stdio.h>
#include <stdlib.h>

/* Makes *p hold at least `need` bytes (doubling, so appends are amortized
 * O(1)). */
static inline void sp_grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    char *q = realloc(*p, c);
    if (!q) {
        fprintf(stderr, "shardpipe: out of memory (%zu bytes for an HTTP answer)\n", c);
        abort();
    }
    *p = q;
    *cap = c;
}

#endif
