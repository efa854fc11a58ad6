/* quant_iq4nl.c - IQ4_NL blocks (quant_iq4nl.h): the table, dequantization,
 * a simple quantizer, the portable dots that define the results, and the
 * choice of the SIMD level's rows kernel (dot_iq4nl_<level>.c).
 *
 * Plain C, no intrinsics, the same on every machine. */
#include "shardpipe/quant_iq4nl.h"

#include <math.h>
#include <string.h>

#include "dot_iq4nl.h"
#include "dot_lanes.h"

const int8_t sp_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

void sp_dequantize_row_iq4_nl(const sp_block_iq4_nl *x, float *y, int64_t n)
{
    for (int64_t b = 0; b < n / SP_QK; b++) {
        float d = sp_fp16_to_f32(x[b].d);
        float *yb = y + b * SP_QK;
        for (int j = 0; j < SP_QK / 2; j++) {
            yb[j] = d * (float)sp_iq4nl_values[x[b].qs[j] & 0x0f];
            yb[j + SP_QK / 2] = d * (float)sp_iq4nl_values[x[b].qs[j] >> 4];
        }
    }
}

/* The index of the table value nearest v (the lower one on a tie). */
static int nearest_index(float v)
{
    int best = 0;
    float err = fabsf(v - sp_iq4nl_values[0]);
    for (int i = 1; i < 16; i++) {
        float e = fabsf(v - sp_iq4nl_values[i]);
        if (e < err) err = e, best = i;
    }
    return best;
}

void sp_quantize_row_iq4_nl(const float *x, sp_block_iq4_nl *y, int64_t n)
{
    for (int64_t b = 0; b < n / SP_QK; b++) {
        const float *xb = x + b * SP_QK;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < SP_QK; j++)
            if (fabsf(xb[j]) > amax) amax = fabsf(xb[j]), max = xb[j];
        /* max maps to the table's -127; the others scale with it */
        float d = max / -127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = sp_f32_to_fp16(d);
        for (int j = 0; j < SP_QK / 2; j++)
            y[b].qs[j] = (uint8_t)(nearest_index(xb[j] * id) | nearest_index(xb[j + SP_QK / 2] * id) << 4);
    }
}

float sp_vec_dot_iq4_nl_q8_0_ref(int64_t n, const sp_block_iq4_nl *w, const sp_block_q8_0 *a)
{
    float sum = 0.0f;
    for (int64_t b = 0; b < n / SP_QK; b++) {
        int32_t isum = 0;
        for (int j = 0; j < SP_QK / 2; j++)
            isum += sp_iq4nl_values[w[b].qs[j] & 0x0f] * a[b].qs[j] +
                    sp_iq4nl_values[w[b].qs[j] >> 4] * a[b].qs[j + SP_QK / 2];
        sum += (float)isum * (sp_fp16_to_f32(w[b].d) * sp_fp16_to_f32(a[b].d));
    }
    return sum;
}

/* The order every level follows: IQ4_NL's table values are the quants of
 * a Q8_0 row, summed as sp_vec_dot_q8_0_q8g_scalar sums them (dot_lanes.h). */
float sp_vec_dot_iq4_nl_q8g_scalar(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a)
{
    int64_t nb = n / SP_QK;
    lane_sums ls = {{0}, {0}};
    for (int64_t b = 0; b < nb; b++) {
        int8_t q[SP_QK];
        for (int j = 0; j < SP_QK / 2; j++) {
            q[j] = sp_iq4nl_values[w[b].qs[j] & 0x0f];
            q[j + SP_QK / 2] = sp_iq4nl_values[w[b].qs[j] >> 4];
        }
        lanes_add_i8(&ls, b, nb, q, a, sp_fp16_to_f32(w[b].d));
    }
    return lanes_sum(&ls);
}

static void rows_scalar(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a, int64_t stride, int na, float *out)
{
    for (int i = 0; i < na; i++) out[i] = sp_vec_dot_iq4_nl_q8g_scalar(n, w, a + i * stride);
}

/* The rows kernel of the SIMD level in use, found by the level's name (so
 * the level table of simd.c needs no entry for it); a level without one
 * here runs the portable loop. Cached per thread by the name's address,
 * which is fixed for a level: a lookup only when sp_simd_force changes it. */
static sp_rows_iq4nl_fn rows_fn(void)
{
    static const struct {
        const char *level;
        sp_rows_iq4nl_fn fn;
    } kernels[] = {
#if defined(__x86_64__)
        {"avx2", sp_vec_dot_iq4_nl_q8g_rows_avx2},
        {"avxvnni", sp_vec_dot_iq4_nl_q8g_rows_avxvnni},
        {"avx512vnni", sp_vec_dot_iq4_nl_q8g_rows_avx512},
        {"avx512vbmi", sp_vec_dot_iq4_nl_q8g_rows_avx512vbmi},
#endif
#if defined(__aarch64__)
        {"neon", sp_vec_dot_iq4_nl_q8g_rows_neon},
        {"neon-dotprod", sp_vec_dot_iq4_nl_q8g_rows_neon_dotprod},
#endif
        {"scalar", rows_scalar},
    };
    static _Thread_local const char *cached_level;
    static _Thread_local sp_rows_iq4nl_fn cached_fn;
    const char *level = sp_simd_name();
    if (level == cached_level) return cached_fn;
    sp_rows_iq4nl_fn fn = rows_scalar;
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
        if (!strcmp(level, kernels[i].level)) fn = kernels[i].fn;
    cached_level = level, cached_fn = fn;
    return fn;
}

float sp_vec_dot_iq4_nl_q8g(int64_t n, const sp_block_iq4_nl *w, const sp_q8_group *a)
{
    float r;
    rows_fn()(n, w, a, 0, 1, &r);
    return r;
}

void sp_vec_dot_iq4_nl_q8g_tile(int64_t n, const void *w, size_t row_bytes, long nw, const sp_q8_group *a,
                                int64_t stride, int na, float *y, int64_t y_stride)
{
    const sp_rows_iq4nl_fn fn = rows_fn();
    float out[SP_DOT_ROWS];
    if (na > SP_DOT_ROWS) na = SP_DOT_ROWS;
    for (long r = 0; r < nw; r++) {
        fn(n, (const sp_block_iq4_nl *)((const char *)w + r * row_bytes), a, stride, na, out);
        for (int i = 0; i < na; i++) y[i * y_stride + r] = out[i];
    }
}
