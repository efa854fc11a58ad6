/* wire.c - hidden states on the wire: f32 as is, f16 (half the bytes, ~3
 * significant digits), or Q8_0 blocks (34 bytes per 32 values, about a
 * quarter of f32) - the same block formats as the weights, so encoding and
 * decoding are the kernels' own row conversions (rows of dim values are
 * contiguous and dim is a multiple of 32 for q8_0, so n rows are one row of
 * n x dim values). */
#include "wire.h"

#include "shardpipe/quant.h"

static sp_dtype wire_dtype(sp_wire_type w)
{
    switch (w) {
    case SP_WIRE_F16: return SP_DTYPE_F16;
    case SP_WIRE_Q8_0: return SP_DTYPE_Q8_0;
    case SP_WIRE_F32:
    default: return SP_DTYPE_F32;
    }
}

size_t sp_wire_hidden_bytes(sp_wire_type w, int n, int dim)
{
    return (size_t)sp_dtype_row_bytes(wire_dtype(w), (uint64_t)n * (uint64_t)dim);
}

size_t sp_wire_msg_bytes(sp_wire_type w, int n, int dim, int has_hidden)
{
    return sizeof(sp_wire_header) + (size_t)n * sizeof(sp_wire_row) + (has_hidden ? sp_wire_hidden_bytes(w, n, dim) : 0);
}

void sp_wire_encode(sp_wire_type w, const float *x, int n, int dim, void *out)
{
    sp_quantize_row(wire_dtype(w), x, out, (int64_t)n * dim);
}

void sp_wire_decode(sp_wire_type w, const void *in, int n, int dim, float *x)
{
    sp_dequantize_row(wire_dtype(w), in, x, (int64_t)n * dim);
}
