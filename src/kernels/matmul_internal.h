/* matmul_internal.h - what matmul.c (the dot path, the choice of path, the
 * context) shares with matmul_sgemm.c (the sgemm path); not public. */
#ifndef SP_MATMUL_INTERNAL_H
#define SP_MATMUL_INTERNAL_H

#include <stdint.h>
#include <stdlib.h>

#include "shardpipe/matmul.h"
#include "shardpipe/quant.h"
#include "shardpipe/util.h"

/* Scratch buffers only grow; their old contents are not kept. */
static inline void *sp_matmul_grow(void *buf, size_t *cap, size_t need)
{
    if (need <= *cap) return buf;
    free(buf);
    *cap = need;
    return sp_alloc(need);
}

/* Row r of W in f32, whatever its layout. */
static inline void sp_matrix_dequantize_row(const sp_matrix *w, int64_t r, float *out)
{
    const void *row = (const uint8_t *)w->data + r * w->row_bytes;
    if (w->layout == SP_LAYOUT_Q4_0X16) sp_dequantize_row_q4_0x16(row, out, w->cols);
    else if (w->layout == SP_LAYOUT_K_X16)
        sp_dequantize_row_k_x16(w->type, (const uint8_t *)row - (r % SP_KX16) * w->row_bytes, (int)(r % SP_KX16),
                                out, w->cols);
    else sp_dequantize_row(w->type, row, out, w->cols);
}

/* Y = X * W^T through OpenBLAS on panels of W (matmul_sgemm.c). */
void sp_matmul_sgemm(sp_matmul_ctx *ctx, const sp_matrix *w, const float *x, int n, float *y);

#endif
