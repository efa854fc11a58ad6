/* wire.c - hidden states on the wire: f32 as is, f16 (half the bytes, ~3
 * significant digits), or Q8_0 blocks (34 bytes per 32 values, about a
 * quarter of f32) - the same block format as the weights. */
#include "wire.h"

#include <string.h>

#include "shardpipe/quant.h"

size_t sp_wire_hidden_bytes(sp_wire_type w, int n, int dim)
{
    switch (w) {
    case SP_WIRE_F16: return (size_t)n * dim * sizeof(uint16_t);
    case SP_WIRE_Q8_0: return (size_t)n * (dim / SP_QK) * sizeof(sp_block_q8_0);
    case SP_WIRE_F32:
    default: return (size_t)n * dim * sizeof(float);
    }
}

size_t sp_wire_msg_bytes(sp_wire_type w, int n, int dim, int has_hidden)
{
    return sizeof(sp_wire_header) + (size_t)n * sizeof(sp_wire_row) + (has_hidden ? sp_wire_hidden_bytes(w, n, dim) : 0);
}

void sp_wire_encode(sp_wire_type w, const float *x, int n, int dim, void *out)
{
    switch (w) {
    case SP_WIRE_F16: {
        uint16_t *h = out;
        for (size_t i = 0; i < (size_t)n * dim; i++) h[i] = sp_f32_to_fp16(x[i]);
        break;
    }
    case SP_WIRE_Q8_0:
        for (int r = 0; r < n; r++)
            sp_quantize_row_q8_0(x + (size_t)r * dim, (sp_block_q8_0 *)out + (size_t)r * (dim / SP_QK), dim);
        break;
    case SP_WIRE_F32:
    default: memcpy(out, x, (size_t)n * dim * sizeof(float)); break;
    }
}

void sp_wire_decode(sp_wire_type w, const void *in, int n, int dim, float *x)
{
    switch (w) {
    case SP_WIRE_F16: sp_dequantize_row(SP_DTYPE_F16, in, x, (int64_t)n * dim); break;
    case SP_WIRE_Q8_0: sp_dequantize_row(SP_DTYPE_Q8_0, in, x, (int64_t)n * dim); break;
    case SP_WIRE_F32:
    default: memcpy(x, in, (size_t)n * dim * sizeof(float)); break;
    }
}
