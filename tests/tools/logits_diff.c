/* logits_diff.c - compares two logits dumps written by `shardpipe run
 * --logits-out` (records of int32 request, int32 position, n_vocab floats),
 * after sorting both by (request, position): the order in which sequences
 * come out of a pipeline may differ between plans, their values may not.
 *   sp_logits_diff A B N_VOCAB            exit 0 when bit-identical
 *   sp_logits_diff A B N_VOCAB TOLERANCE  exit 0 when max |a - b| <= TOLERANCE
 * Prints the record count, max and rms difference. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int vocab;

static int cmp(const void *a, const void *b)
{
    const int32_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

static char *load(const char *path, size_t rec, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot read %s\n", path); exit(2); }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len <= 0 || len % (long)rec) { fprintf(stderr, "%s: %ld bytes is not a whole number of records\n", path, len); exit(2); }
    char *buf = malloc((size_t)len);
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) { fprintf(stderr, "short read %s\n", path); exit(2); }
    fclose(f);
    *n = (size_t)len / rec;
    qsort(buf, *n, rec, cmp);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: sp_logits_diff A B N_VOCAB [TOLERANCE]\n"); return 2; }
    vocab = atoi(argv[3]);
    size_t rec = 8 + (size_t)vocab * 4, na, nb;
    char *a = load(argv[1], rec, &na), *b = load(argv[2], rec, &nb);
    if (na != nb) { printf("record counts differ: %zu vs %zu\n", na, nb); return 1; }
    double maxd = 0, ss = 0;
    int keys_differ = 0;
    for (size_t i = 0; i < na; i++) {
        const char *ra = a + i * rec, *rb = b + i * rec;
        if (memcmp(ra, rb, 8)) keys_differ = 1;
        const float *fa = (const float *)(ra + 8), *fb = (const float *)(rb + 8);
        for (int v = 0; v < vocab; v++) {
            double d = fabs((double)fa[v] - fb[v]);
            if (d > maxd) maxd = d;
            ss += d * d;
        }
    }
    int same = !keys_differ && memcmp(a, b, na * rec) == 0;
    printf("%zu records, %s, max |d| %.3e, rms %.3e\n", na, same ? "bit-identical" : "different", maxd,
           sqrt(ss / ((double)na * vocab)));
    if (keys_differ) { printf("(request, position) keys differ\n"); return 1; }
    if (argc > 4) return maxd <= atof(argv[4]) ? 0 : 1;
    return same ? 0 : 1;
}
