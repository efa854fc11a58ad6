/* dtype.c - the table of tensor element types as ggml numbers them: name,
 * elements per block and bytes per block (facts of the GGUF format), and
 * which of them shardpipe computes with. Knowing every type's size lets the
 * reader map any GGUF file and `inspect` describe it; the model loader then
 * refuses, by name and tensor, what the kernels cannot multiply. */
#include <stdio.h>

#include "shardpipe/gguf.h"

typedef struct dtype_info {
    const char *name;   /* NULL: a number ggml never used or has retired */
    uint32_t block;     /* elements per block */
    uint32_t bytes;     /* bytes per block */
    bool supported;
} dtype_info;

/* Retired numbers (4, 5: Q4_2/Q4_3; 31-33, 36-38: the in-memory repacked
 * Q4_0/IQ4_NL layouts) never appear in a valid file and stay unknown. */
static const dtype_info table[] = {
    [0] = {"F32", 1, 4, true},        [1] = {"F16", 1, 2, true},
    [2] = {"Q4_0", 32, 18, true},     [3] = {"Q4_1", 32, 20, false},
    [6] = {"Q5_0", 32, 22, false},    [7] = {"Q5_1", 32, 24, false},
    [8] = {"Q8_0", 32, 34, true},     [9] = {"Q8_1", 32, 36, false},
    [10] = {"Q2_K", 256, 84, true},   [11] = {"Q3_K", 256, 110, true},
    [12] = {"Q4_K", 256, 144, true},  [13] = {"Q5_K", 256, 176, true},
    [14] = {"Q6_K", 256, 210, true},  [15] = {"Q8_K", 256, 292, false},
    [16] = {"IQ2_XXS", 256, 66, false}, [17] = {"IQ2_XS", 256, 74, false},
    [18] = {"IQ3_XXS", 256, 98, false}, [19] = {"IQ1_S", 256, 50, false},
    [20] = {"IQ4_NL", 32, 18, true},   [21] = {"IQ3_S", 256, 110, false},
    [22] = {"IQ2_S", 256, 82, false},   [23] = {"IQ4_XS", 256, 136, false},
    [24] = {"I8", 1, 1, false},       [25] = {"I16", 1, 2, false},
    [26] = {"I32", 1, 4, false},      [27] = {"I64", 1, 8, false},
    [28] = {"F64", 1, 8, false},      [29] = {"IQ1_M", 256, 56, false},
    [30] = {"BF16", 1, 2, true},
    [34] = {"TQ1_0", 256, 54, false}, [35] = {"TQ2_0", 256, 66, false},
    [39] = {"MXFP4", 32, 17, false},
};
#define N_TABLE (sizeof table / sizeof table[0])

static const dtype_info *info(uint32_t t)
{
    return t < N_TABLE && table[t].name ? &table[t] : NULL;
}

bool sp_dtype_known(uint32_t t)
{
    return info(t) != NULL;
}

bool sp_dtype_supported(uint32_t t)
{
    return info(t) && info(t)->supported;
}

uint32_t sp_dtype_block(sp_dtype t)
{
    return info(t) ? info(t)->block : 1;
}

uint64_t sp_dtype_row_bytes(sp_dtype t, uint64_t n)
{
    const dtype_info *d = info(t);
    return d ? n / d->block * d->bytes : 0;
}

const char *sp_dtype_name(sp_dtype t)
{
    if (info(t)) return info(t)->name;
    static _Thread_local char buf[24];
    snprintf(buf, sizeof buf, "type %u", (unsigned)t);
    return buf;
}

const char *sp_dtype_supported_list(void)
{
    return "F32, F16, BF16, Q8_0, Q4_0, IQ4_NL, Q6_K, Q5_K, Q4_K, Q3_K and Q2_K";
}
