/* test_quant.c - fp16/bf16 conversion, Q8_0/Q4_0 quantization (known bytes
 * and derived error bounds) and every SIMD vec_dot level against the scalar
 * reference. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/gguf.h"
#include "shardpipe/quant.h"
#include "shardpipe/util.h"
#include "testutil.h"

/* Value of a half computed independently of sp_fp16_to_f32, in double. */
static double half_value(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return sign ? -v : v;
}

/* ---- fp16 ---- */

Test(fp16, exhaustive_round_trip_and_values)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sp_fp16_to_f32((uint16_t)h);
        int e = (h >> 10) & 0x1f, m = h & 0x3ff;
        if (e == 31 && m != 0) {
            cr_assert(isnan(f), "half 0x%04x is a NaN", h);
            uint16_t back = sp_f32_to_fp16(f);
            cr_assert(((back >> 10) & 0x1f) == 31 && (back & 0x3ff) != 0,
                      "NaN 0x%04x must stay NaN, got 0x%04x", h, back);
            continue;
        }
        if (e == 31)
            cr_assert(isinf(f) && (signbit(f) != 0) == (h >> 15 != 0), "half 0x%04x is inf", h);
        else
            cr_assert_eq((double)f, half_value((uint16_t)h), "half 0x%04x value", h);
        cr_assert_eq(sp_f32_to_fp16(f), h, "round trip of half 0x%04x", h);
    }
}

Test(fp16, known_roundings)
{
    cr_assert_eq(sp_f32_to_fp16(1.0f), 0x3c00);
    cr_assert_eq(sp_f32_to_fp16(-2.0f), 0xc000);
    cr_assert_eq(sp_f32_to_fp16(65504.0f), 0x7bff);
    cr_assert_eq(sp_f32_to_fp16(65519.0f), 0x7bff);
    cr_assert_eq(sp_f32_to_fp16(65520.0f), 0x7c00, "the tie above the max goes to inf");
    cr_assert_eq(sp_f32_to_fp16(1e10f), 0x7c00);
    cr_assert_eq(sp_f32_to_fp16(-INFINITY), 0xfc00);
    cr_assert_eq(sp_f32_to_fp16(0x1p-24f), 0x0001, "smallest subnormal");
    cr_assert_eq(sp_f32_to_fp16(0x1p-25f), 0x0000, "half of it ties to even zero");
    cr_assert_eq(sp_f32_to_fp16(0x1.8p-25f), 0x0001);
    cr_assert_eq(sp_f32_to_fp16(0x3p-25f), 0x0002, "1.5 units ties up to 2");
    cr_assert_eq(sp_f32_to_fp16(0x5p-25f), 0x0002, "2.5 units ties down to 2");
    cr_assert_eq(sp_f32_to_fp16(0x1.ff8p-15f), 0x03ff, "largest subnormal");
    cr_assert_eq(sp_f32_to_fp16(0x1.ffcp-15f), 0x0400, "ties up into the first normal");
    cr_assert_eq(sp_f32_to_fp16(1.0f + 0x1p-11f), 0x3c00, "tie to even mantissa 0");
    cr_assert_eq(sp_f32_to_fp16(1.0f + 0x3p-11f), 0x3c02, "tie to even mantissa 2");
    cr_assert_eq(sp_f32_to_fp16(-0.0f), 0x8000);
    uint16_t nan = sp_f32_to_fp16(NAN);
    cr_assert(((nan >> 10) & 0x1f) == 31 && (nan & 0x3ff) != 0);
}

/* For f32 values spread over the whole range, the result is the nearest
 * half, ties to the even mantissa. */
Test(fp16, rounds_to_nearest_even)
{
    for (uint64_t u = 0; u < 0x7f800000u; u += 4099) {
        float f;
        uint32_t bits = (uint32_t)u;
        memcpy(&f, &bits, sizeof f);
        uint16_t h = sp_f32_to_fp16(f);
        if (f >= 65520.0f) {
            cr_assert_eq(h, 0x7c00, "%a overflows to inf", f);
            continue;
        }
        cr_assert(h < 0x7c00, "%a must give a finite half, got 0x%04x", f, h);
        double err = fabs(half_value(h) - f);
        if (h < 0x7bff) {
            double up = fabs(half_value((uint16_t)(h + 1)) - f);
            cr_assert(err < up || (err == up && (h & 1) == 0), "%a -> 0x%04x not nearest", f, h);
        }
        if (h > 0) {
            double down = fabs(half_value((uint16_t)(h - 1)) - f);
            cr_assert(err < down || (err == down && (h & 1) == 0), "%a -> 0x%04x not nearest", f,
                      h);
        }
    }
}

/* ---- bf16 ---- */

Test(bf16, round_trip_and_rounding)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sp_bf16_to_f32((uint16_t)h);
        if (isnan(f))
            cr_assert(isnan(sp_bf16_to_f32(sp_f32_to_bf16(f))));
        else
            cr_assert_eq(sp_f32_to_bf16(f), h, "round trip of bf16 0x%04x", h);
    }
    cr_assert_eq(sp_f32_to_bf16(1.0f), 0x3f80);
    cr_assert_eq(sp_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80, "tie to even");
    cr_assert_eq(sp_f32_to_bf16(1.0f + 0x3p-8f), 0x3f82, "tie to even");
    cr_assert_eq(sp_f32_to_bf16(1.0f + 0x1.8p-8f), 0x3f81, "above the tie");
    cr_assert(isnan(sp_bf16_to_f32(sp_f32_to_bf16(NAN))));
}

/* ---- Q8_0 ---- */

Test(q8_0, known_block_bytes)
{
    /* d = 127/127 = 1, id = 1: q = roundf(x), halves away from zero */
    float x[SP_QK] = {127.0f, 2.5f, -0.5f, 0.5f, -126.5f, 1.49f, -3.51f, -127.0f};
    sp_block_q8_0 b;
    sp_quantize_row_q8_0(x, &b, SP_QK);
    uint8_t bytes[sizeof b];
    memcpy(bytes, &b, sizeof b);
    const uint8_t want[10] = {0x00, 0x3c, 127, 3, (uint8_t)-1, 1, (uint8_t)-127, 1,
                              (uint8_t)-4, (uint8_t)-127};
    cr_assert_arr_eq(bytes, want, sizeof want);
    for (size_t i = sizeof want; i < sizeof b; i++) cr_assert_eq(bytes[i], 0);

    /* x = 0.25 * (j - 16): amax = 4, d = 4/127 -> fp16 0x2808 (0.031372...),
     * q = round(x * 31.75). */
    float y[SP_QK];
    for (int j = 0; j < SP_QK; j++) y[j] = 0.25f * (float)(j - 16);
    sp_quantize_row_q8_0(y, &b, SP_QK);
    cr_assert_eq(b.d, 0x2808);
    const int8_t want_qs[SP_QK] = {-127, -119, -111, -103, -95, -87, -79, -71, -64, -56, -48,
                                   -40,  -32,  -24,  -16,  -8,  0,   8,   16,  24,  32,  40,
                                   48,   56,   64,   71,   79,  87,  95,  103, 111, 119};
    cr_assert_arr_eq(b.qs, want_qs, sizeof want_qs);
}

Test(q8_0, zero_block)
{
    float x[SP_QK] = {0};
    sp_block_q8_0 b;
    memset(&b, 0x55, sizeof b);
    sp_quantize_row_q8_0(x, &b, SP_QK);
    cr_assert_eq(b.d, 0);
    for (int j = 0; j < SP_QK; j++) cr_assert_eq(b.qs[j], 0);
    float y[SP_QK];
    sp_dequantize_row_q8_0(&b, y, SP_QK);
    for (int j = 0; j < SP_QK; j++) cr_assert_eq(y[j], 0.0f);
}

/* Random rows whose blocks have very different magnitudes: 2^-4 .. 2^13
 * times N(0,1), so max|x| / 127 stays a normal half (>= 2^-14) and below
 * the fp16 maximum. */
static void random_row(sp_rng *rng, float *x, int64_t n)
{
    for (int64_t b = 0; b < n / SP_QK; b++) {
        float scale = ldexpf(1.0f, (int)(sp_rng_u64(rng) % 18) - 4);
        for (int j = 0; j < SP_QK; j++) x[b * SP_QK + j] = scale * sp_rng_normal(rng);
    }
}

/* Q8_0: with d = amax/127 the exact quotient x/d is rounded to the nearest
 * integer, so |x - d q| <= d/2. The stored scale D = fp16(d) differs from d
 * by at most 2^-11 d (d normal here), and |q| <= 127, so the dequantized
 * error is at most d/2 + 127 * 2^-11 d. A relative 1e-5 covers the f32
 * rounding of x * (1/d). */
Test(q8_0, round_trip_error_bound)
{
    enum { N = 64 * SP_QK };
    static float x[N], y[N];
    static sp_block_q8_0 q[N / SP_QK];
    sp_rng rng;
    sp_rng_seed(&rng, 42);
    for (int iter = 0; iter < 20; iter++) {
        random_row(&rng, x, N);
        sp_quantize_row_q8_0(x, q, N);
        sp_dequantize_row_q8_0(q, y, N);
        for (int b = 0; b < N / SP_QK; b++) {
            float amax = 0;
            for (int j = 0; j < SP_QK; j++) amax = fmaxf(amax, fabsf(x[b * SP_QK + j]));
            double d = amax / 127.0f;
            int saw_extreme = 0;
            for (int j = 0; j < SP_QK; j++) {
                int i = b * SP_QK + j;
                cr_assert(fabs(x[i] - d * q[b].qs[j]) <= d * (0.5 + 1e-5),
                          "block %d elem %d: x %g q %d d %g", b, j, x[i], q[b].qs[j], d);
                cr_assert(fabs(x[i] - y[i]) <= d * (0.5 + 127.0 / 2048 + 1e-5),
                          "block %d elem %d: x %g dequantized %g", b, j, x[i], y[i]);
                if (abs(q[b].qs[j]) == 127) saw_extreme = 1;
            }
            cr_assert(saw_extreme, "the largest magnitude maps to +-127");
        }
    }
}

/* ---- Q4_0 ---- */

Test(q4_0, known_block_bytes)
{
    /* x = -8..7 then 7..-8: max is -8, d = -8/-8 = 1, q = x + 8, so byte j
     * holds j in the low nibble and 15 - j in the high one. */
    float x[SP_QK];
    for (int j = 0; j < 16; j++) {
        x[j] = (float)(j - 8);
        x[j + 16] = (float)(7 - j);
    }
    sp_block_q4_0 b;
    sp_quantize_row_q4_0(x, &b, SP_QK);
    cr_assert_eq(b.d, 0x3c00);
    for (int j = 0; j < 16; j++) cr_assert_eq(b.qs[j], (uint8_t)(j | (15 - j) << 4), "byte %d", j);
    float y[SP_QK];
    sp_dequantize_row_q4_0(&b, y, SP_QK);
    for (int j = 0; j < SP_QK; j++) cr_assert_eq(y[j], x[j]);

    /* max = +4: d = -0.5, id = -2. x = 4 -> 0; -4 -> 16.5 truncated 16,
     * clamped to 15; 1 -> 6.5 -> 6; -1 -> 10; -0.25 -> 9 (half rounds up). */
    float z[SP_QK] = {4.0f, -4.0f, 1.0f, -1.0f, -0.25f, 0.25f};
    sp_quantize_row_q4_0(z, &b, SP_QK);
    cr_assert_eq(b.d, 0xb800);
    const uint8_t want[16] = {0x80, 0x8f, 0x86, 0x8a, 0x89, 0x88, 0x88, 0x88,
                              0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88};
    cr_assert_arr_eq(b.qs, want, sizeof want);
}

/* Q4_0: q - 8 is x/d rounded to nearest (ties up), so |x - d(q-8)| <= |d|/2,
 * except where x/d lies in (7.5, 8] (a value of sign opposite to max and
 * nearly its magnitude) and is clamped to 7: there the error is <= |d|.
 * fp16 rounding of d adds at most 8 * 2^-11 |d|. */
Test(q4_0, round_trip_error_bound)
{
    enum { N = 64 * SP_QK };
    static float x[N], y[N];
    static sp_block_q4_0 q[N / SP_QK];
    sp_rng rng;
    sp_rng_seed(&rng, 43);
    for (int iter = 0; iter < 20; iter++) {
        random_row(&rng, x, N);
        sp_quantize_row_q4_0(x, q, N);
        sp_dequantize_row_q4_0(q, y, N);
        for (int b = 0; b < N / SP_QK; b++) {
            float max = 0;
            for (int j = 0; j < SP_QK; j++)
                if (fabsf(x[b * SP_QK + j]) > fabsf(max)) max = x[b * SP_QK + j];
            double d = fabs(max / -8.0f);
            for (int j = 0; j < SP_QK; j++) {
                int i = b * SP_QK + j;
                int nib = j < 16 ? q[b].qs[j] & 15 : q[b].qs[j - 16] >> 4;
                double e = fabs(x[i] - sp_fp16_to_f32(q[b].d) * (nib - 8));
                double bound = (nib == 15 ? 1.0 : 0.5) * d + d * (8.0 / 2048 + 1e-5);
                cr_assert(e <= bound, "block %d elem %d: x %g nibble %d d %g", b, j, x[i], nib, d);
                if (x[i] == max) cr_assert_eq(nib, 0, "max maps to nibble 0");
                cr_assert_eq(y[i], sp_fp16_to_f32(q[b].d) * (nib - 8));
            }
        }
    }
}

/* ---- dtype dispatch ---- */

Test(dispatch, quantize_and_dequantize_every_dtype)
{
    enum { N = 4 * SP_QK };
    float x[N], y[N], direct[N];
    static uint8_t buf[N * 4], ref[N * 4];
    sp_rng rng;
    sp_rng_seed(&rng, 5);
    /* values exactly representable in f16 and bf16 (8 significant bits) */
    for (int i = 0; i < N; i++) x[i] = (float)((int)(sp_rng_u64(&rng) % 255) - 127) / 64.0f;

    const sp_dtype exact[] = {SP_DTYPE_F32, SP_DTYPE_F16, SP_DTYPE_BF16};
    for (size_t t = 0; t < 3; t++) {
        memset(y, 0, sizeof y);
        sp_quantize_row(exact[t], x, buf, N);
        sp_dequantize_row(exact[t], buf, y, N);
        cr_assert_arr_eq(y, x, sizeof x, "dtype %d must round trip exactly", exact[t]);
    }
    sp_quantize_row(SP_DTYPE_Q8_0, x, buf, N);
    sp_quantize_row_q8_0(x, (sp_block_q8_0 *)ref, N);
    cr_assert_arr_eq(buf, ref, N / SP_QK * sizeof(sp_block_q8_0));
    sp_dequantize_row(SP_DTYPE_Q8_0, buf, y, N);
    sp_dequantize_row_q8_0((sp_block_q8_0 *)ref, direct, N);
    cr_assert_arr_eq(y, direct, sizeof y);

    sp_quantize_row(SP_DTYPE_Q4_0, x, buf, N);
    sp_quantize_row_q4_0(x, (sp_block_q4_0 *)ref, N);
    cr_assert_arr_eq(buf, ref, N / SP_QK * sizeof(sp_block_q4_0));
    sp_dequantize_row(SP_DTYPE_Q4_0, buf, y, N);
    sp_dequantize_row_q4_0((sp_block_q4_0 *)ref, direct, N);
    cr_assert_arr_eq(y, direct, sizeof y);
}

/* ---- vec_dot: every SIMD level against the reference ---- */

#define MAX_BLOCKS 64
static const int block_counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 64};

enum fill { FILL_RANDOM, FILL_MAX, FILL_MIN, FILL_ALTERNATE };

static void fill_q8(sp_rng *rng, sp_block_q8_0 *x, int nb, enum fill f, int unit_scale)
{
    for (int b = 0; b < nb; b++) {
        for (int j = 0; j < SP_QK; j++) {
            int v = (int)(sp_rng_u64(rng) % 255) - 127;
            if (f == FILL_MAX) v = 127;
            if (f == FILL_MIN) v = -127;
            if (f == FILL_ALTERNATE) v = (j + b) % 2 ? 127 : -127;
            x[b].qs[j] = (int8_t)v;
        }
        float s = (0.001f + sp_rng_f32(rng)) * (sp_rng_u64(rng) & 1 ? 1.0f : -1.0f);
        x[b].d = unit_scale ? 0x3c00 : sp_f32_to_fp16(s);
    }
}

static void fill_q4(sp_rng *rng, sp_block_q4_0 *x, int nb, enum fill f, int unit_scale)
{
    for (int b = 0; b < nb; b++) {
        for (int j = 0; j < SP_QK / 2; j++) {
            uint8_t v = (uint8_t)sp_rng_u64(rng);
            if (f == FILL_MAX) v = 0xff;
            if (f == FILL_MIN) v = 0x00;
            if (f == FILL_ALTERNATE) v = (j + b) % 2 ? 0x0f : 0xf0;
            x[b].qs[j] = v;
        }
        float s = (0.001f + sp_rng_f32(rng)) * (sp_rng_u64(rng) & 1 ? 1.0f : -1.0f);
        x[b].d = unit_scale ? 0x3c00 : sp_f32_to_fp16(s);
    }
}

/* Bound on the rounding error of any summation order: sum |terms| * 1e-5
 * (the f32 rounding is ~ nb * 2^-24 relative to it). */
static double abs_terms_q8(int nb, const sp_block_q8_0 *w, const sp_block_q8_0 *a)
{
    double s = 0;
    for (int b = 0; b < nb; b++)
        s += fabs(sp_vec_dot_q8_0_q8_0_ref(SP_QK, w + b, a + b));
    return s;
}

static double abs_terms_q4(int nb, const sp_block_q4_0 *w, const sp_block_q8_0 *a)
{
    double s = 0;
    for (int b = 0; b < nb; b++)
        s += fabs(sp_vec_dot_q4_0_q8_0_ref(SP_QK, w + b, a + b));
    return s;
}

Test(vec_dot, levels_are_listed)
{
    int n = sp_simd_count();
    cr_assert(n >= 1);
    cr_assert_str_eq(sp_simd_level_name(0), "scalar");
    cr_assert_str_eq(sp_simd_name(), sp_simd_level_name(n - 1), "the fastest level is the default");
    cr_assert_null(sp_simd_level_name(n));
    cr_log_info("SIMD levels here: %d, using %s", n, sp_simd_name());
}

Test(vec_dot, q8_0_q8_0_every_level)
{
    static sp_block_q8_0 w[MAX_BLOCKS], a[MAX_BLOCKS];
    sp_rng rng;
    sp_rng_seed(&rng, 11);
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        cr_assert_str_eq(sp_simd_name(), sp_simd_level_name(lv));
        for (size_t c = 0; c < sizeof block_counts / sizeof block_counts[0]; c++) {
            int nb = block_counts[c];
            int64_t n = (int64_t)nb * SP_QK;
            for (int f = FILL_RANDOM; f <= FILL_ALTERNATE; f++) {
                for (int g = FILL_RANDOM; g <= FILL_ALTERNATE; g++) {
                    /* unit scales: every partial sum is an integer below
                     * 2^24 (or a multiple of 32 below 2^29 for the
                     * constant fills), so any order gives the same f32 */
                    fill_q8(&rng, w, nb, f, 1);
                    fill_q8(&rng, a, nb, g, 1);
                    float ref = sp_vec_dot_q8_0_q8_0_ref(n, w, a);
                    float got = sp_vec_dot_q8_0_q8_0(n, w, a);
                    cr_assert_eq(got, ref, "%s: %d blocks fills %d/%d: %.9g != %.9g",
                                 sp_simd_name(), nb, f, g, got, ref);

                    fill_q8(&rng, w, nb, f, 0);
                    fill_q8(&rng, a, nb, g, 0);
                    ref = sp_vec_dot_q8_0_q8_0_ref(n, w, a);
                    got = sp_vec_dot_q8_0_q8_0(n, w, a);
                    double tol = 1e-5 * abs_terms_q8(nb, w, a);
                    cr_assert(fabs(got - ref) <= tol, "%s: %d blocks scaled: %.9g vs %.9g",
                              sp_simd_name(), nb, got, ref);
                }
            }
        }
    }
}

Test(vec_dot, q4_0_q8_0_every_level)
{
    static sp_block_q4_0 w[MAX_BLOCKS];
    static sp_block_q8_0 a[MAX_BLOCKS];
    sp_rng rng;
    sp_rng_seed(&rng, 12);
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        for (size_t c = 0; c < sizeof block_counts / sizeof block_counts[0]; c++) {
            int nb = block_counts[c];
            int64_t n = (int64_t)nb * SP_QK;
            for (int f = FILL_RANDOM; f <= FILL_ALTERNATE; f++) {
                for (int g = FILL_RANDOM; g <= FILL_ALTERNATE; g++) {
                    fill_q4(&rng, w, nb, f, 1);
                    fill_q8(&rng, a, nb, g, 1);
                    float ref = sp_vec_dot_q4_0_q8_0_ref(n, w, a);
                    float got = sp_vec_dot_q4_0_q8_0(n, w, a);
                    cr_assert_eq(got, ref, "%s: %d blocks fills %d/%d: %.9g != %.9g",
                                 sp_simd_name(), nb, f, g, got, ref);

                    fill_q4(&rng, w, nb, f, 0);
                    fill_q8(&rng, a, nb, g, 0);
                    ref = sp_vec_dot_q4_0_q8_0_ref(n, w, a);
                    got = sp_vec_dot_q4_0_q8_0(n, w, a);
                    double tol = 1e-5 * abs_terms_q4(nb, w, a);
                    cr_assert(fabs(got - ref) <= tol, "%s: %d blocks scaled: %.9g vs %.9g",
                              sp_simd_name(), nb, got, ref);
                }
            }
        }
    }
}

/* A known value: all weights 127 (Q8_0) or nibble 15 (= +7, Q4_0) against
 * all activations -127, 64 blocks, scales 1: 64 * 32 * w * -127. */
Test(vec_dot, extreme_rows_known_value)
{
    static sp_block_q8_0 w8[MAX_BLOCKS], a[MAX_BLOCKS];
    static sp_block_q4_0 w4[MAX_BLOCKS];
    for (int b = 0; b < MAX_BLOCKS; b++) {
        w8[b].d = a[b].d = w4[b].d = 0x3c00;
        memset(w8[b].qs, 127, SP_QK);
        memset(a[b].qs, -127, SP_QK);
        memset(w4[b].qs, 0xff, SP_QK / 2);
    }
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        cr_assert_eq(sp_vec_dot_q8_0_q8_0(MAX_BLOCKS * SP_QK, w8, a), 64.0f * 32 * 127 * -127,
                     "%s", sp_simd_name());
        cr_assert_eq(sp_vec_dot_q4_0_q8_0(MAX_BLOCKS * SP_QK, w4, a), 64.0f * 32 * 7 * -127,
                     "%s", sp_simd_name());
    }
}

/* The packed activation layout the decode kernels read (sp_q8_group):
 * halves, bias lanes -8 * (the lane's quants), f32 scales, and a zero-padded
 * partial last group. */
Test(vec_dot, q8_group_pack_layout)
{
    sp_block_q8_0 a[5];
    sp_q8_group g[2];
    sp_rng rng;
    sp_rng_seed(&rng, 14);
    fill_q8(&rng, a, 5, FILL_RANDOM, 0);
    cr_assert_eq(sp_q8_group_count(5 * SP_QK), 2);
    cr_assert_eq(sp_q8_group_count(8 * SP_QK), 2);
    memset(g, 0x55, sizeof g);
    sp_q8_group_pack(a, g, 5 * SP_QK);
    for (int b = 0; b < 8; b++) {
        const sp_q8_group *gr = &g[b / 4];
        int k = b % 4;
        for (int j = 0; j < 16; j++) {
            cr_assert_eq(gr->lo[k][j], b < 5 ? a[b].qs[j] : 0, "block %d quant %d", b, j);
            cr_assert_eq(gr->hi[k][j], b < 5 ? a[b].qs[16 + j] : 0, "block %d quant %d", b, 16 + j);
        }
        for (int i = 0; i < 4; i++) {
            int32_t lane = 0; /* quants 4i..4i+3 and 16+4i..16+4i+3 */
            for (int j = 4 * i; j < 4 * i + 4 && b < 5; j++) lane += a[b].qs[j] + a[b].qs[16 + j];
            cr_assert_eq(gr->bias[4 * k + i], -8 * lane, "block %d bias lane %d", b, i);
            cr_assert_eq(gr->d[4 * k + i], b < 5 ? sp_fp16_to_f32(a[b].d) : 0.0f, "block %d d", b);
        }
    }
}

/* Rows longer than the wrappers' packing chunk (64 blocks) and a real
 * model's widths, through both the block wrappers and the packed dots; and
 * Q8_0 weights of -128 (never produced by quantization, but legal in a file),
 * which the sign tricks must still multiply exactly. */
Test(vec_dot, long_rows_and_packed_dots_every_level)
{
    enum { NB = 177 };
    static sp_block_q8_0 w8[NB], a[NB];
    static sp_block_q4_0 w4[NB];
    static sp_q8_group g[(NB + 3) / 4];
    const int counts[] = {65, 128, 131, 176, 177};
    sp_rng rng;
    sp_rng_seed(&rng, 15);
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            int nb = counts[c];
            int64_t n = (int64_t)nb * SP_QK;
            for (int unit = 1; unit >= 0; unit--) {
                fill_q8(&rng, w8, nb, FILL_RANDOM, unit);
                fill_q4(&rng, w4, nb, FILL_RANDOM, unit);
                fill_q8(&rng, a, nb, FILL_RANDOM, unit);
                if (c == 0) memset(w8[nb / 2].qs, -128, SP_QK);
                sp_q8_group_pack(a, g, n);
                double tol8 = unit ? 0 : 1e-5 * abs_terms_q8(nb, w8, a);
                double tol4 = unit ? 0 : 1e-5 * abs_terms_q4(nb, w4, a);
                float ref8 = sp_vec_dot_q8_0_q8_0_ref(n, w8, a);
                float ref4 = sp_vec_dot_q4_0_q8_0_ref(n, w4, a);
                float got[4] = {sp_vec_dot_q8_0_q8_0(n, w8, a), sp_vec_dot_q8_0_q8g(n, w8, g),
                                sp_vec_dot_q4_0_q8_0(n, w4, a), sp_vec_dot_q4_0_q8g(n, w4, g)};
                for (int i = 0; i < 4; i++) {
                    float ref = i < 2 ? ref8 : ref4;
                    cr_assert(fabs(got[i] - ref) <= (i < 2 ? tol8 : tol4),
                              "%s %s %s, %d blocks%s: %.9g vs %.9g", sp_simd_name(),
                              i < 2 ? "q8_0" : "q4_0", i % 2 ? "packed" : "blocks", nb,
                              unit ? " unit scales" : "", got[i], ref);
                }
            }
        }
    }
}

/* The tile kernels (weight rows against up to SP_DOT_ROWS activation
 * rows, the prompt path) must give every row the bits of the single-row
 * dot, whatever na is and which rows share the call: that is what keeps a
 * sequence's logits independent of the micro-batch it rides in. Lengths
 * with and without a partial last group; Q8_0 weights of -128 included.
 * The Q4_0 rows regrouped as sp_block_q4_0x16 must give those bits too,
 * single rows and tiles: rows too short for a panel, whole panels only,
 * panels with a tail of whole groups, of a partial group, and of both. */
Test(vec_dot, tile_kernels_equal_single_rows_bit_for_bit)
{
    enum { NB = 67, NA = SP_DOT_ROWS + 1, NW = 3 };
    static sp_block_q8_0 w8[NW][NB], a[NA][NB];
    static sp_block_q4_0 w4[NW][NB];
    static uint8_t x4[NW][NB * sizeof(sp_block_q4_0)];
    static sp_q8_group g[NA][(NB + 3) / 4];
    const int64_t stride = (NB + 3) / 4;
    const int counts[] = {1, 3, 4, 8, 16, 17, 20, 23, 64, 66, 67};
    sp_rng rng;
    sp_rng_seed(&rng, 16);
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            int nb = counts[c];
            int64_t n = (int64_t)nb * SP_QK;
            for (int r = 0; r < NW; r++) {
                fill_q8(&rng, w8[r], nb, FILL_RANDOM, 0);
                fill_q4(&rng, w4[r], nb, FILL_RANDOM, 0);
                sp_q4_0x16_from_q4_0(w4[r], x4[r], n);
            }
            memset(w8[1][0].qs, -128, 8);
            for (int r = 0; r < NA; r++) {
                fill_q8(&rng, a[r], nb, FILL_RANDOM, 0);
                sp_q8_group_pack(a[r], g[r], n);
            }
            /* the full matrices' row pitch (NB blocks), as a GGUF tensor's rows */
            for (int nw = 1; nw <= NW; nw++)
                for (int na = 1; na <= SP_DOT_ROWS; na++)
                    for (int first = 0; first + na <= NA; first++) {
                        float y8[SP_DOT_ROWS][NW], y4[SP_DOT_ROWS][NW], yx[SP_DOT_ROWS][NW];
                        sp_vec_dot_q8_0_q8g_tile(n, w8, sizeof w8[0], nw, g[first], stride, na, &y8[0][0], NW);
                        sp_vec_dot_q4_0_q8g_tile(n, w4, sizeof w4[0], nw, g[first], stride, na, &y4[0][0], NW);
                        sp_vec_dot_q4_0x16_q8g_tile(n, x4, sizeof x4[0], nw, g[first], stride, na, &yx[0][0], NW);
                        for (int i = 0; i < na; i++)
                            for (int r = 0; r < nw; r++) {
                                float one8 = sp_vec_dot_q8_0_q8g(n, w8[r], g[first + i]);
                                float one4 = sp_vec_dot_q4_0_q8g(n, w4[r], g[first + i]);
                                float onex = sp_vec_dot_q4_0x16_q8g(n, x4[r], g[first + i]);
                                cr_assert(memcmp(&yx[i][r], &one4, sizeof one4) == 0 &&
                                              memcmp(&onex, &one4, sizeof one4) == 0,
                                          "%s q4_0x16 %d blocks, weight row %d of %d, act row %d of %d: tile %a, "
                                          "single row %a, file layout %a",
                                          sp_simd_name(), nb, r, nw, i, na, yx[i][r], onex, one4);
                                cr_assert(memcmp(&y8[i][r], &one8, sizeof one8) == 0,
                                          "%s q8_0 %d blocks, weight row %d of %d, act row %d of %d: %.9g vs %.9g",
                                          sp_simd_name(), nb, r, nw, i, na, y8[i][r], one8);
                                cr_assert(memcmp(&y4[i][r], &one4, sizeof one4) == 0,
                                          "%s q4_0 %d blocks, weight row %d of %d, act row %d of %d: %.9g vs %.9g",
                                          sp_simd_name(), nb, r, nw, i, na, y4[i][r], one4);
                            }
                    }
        }
    }
}

/* sp_block_q4_0x16: panel p holds blocks 16p..16p+15 (scales first, then
 * the quants in block order), the blocks after the last whole panel stay
 * as they are, and the row keeps its size and its values. */
Test(q4_0x16, regrouped_bytes_and_values)
{
    enum { NB = 344 };
    static sp_block_q4_0 w[NB];
    static uint8_t x[NB * sizeof(sp_block_q4_0) + 1];
    static float want[NB * SP_QK], got[NB * SP_QK];
    const int counts[] = {1, 15, 16, 17, 20, 31, 32, 33, 176, 344};
    sp_rng rng;
    sp_rng_seed(&rng, 40);
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        int nb = counts[c], nx = nb / 16;
        int64_t n = (int64_t)nb * SP_QK;
        fill_q4(&rng, w, nb, FILL_RANDOM, 0);
        memset(x, 0xa5, sizeof x);
        sp_q4_0x16_from_q4_0(w, x, n);
        const sp_block_q4_0x16 *p = (const sp_block_q4_0x16 *)x;
        for (int b = 0; b < 16 * nx; b++) {
            cr_assert_eq(p[b / 16].d[b % 16], w[b].d, "%d blocks: scale of block %d", nb, b);
            cr_assert(memcmp(p[b / 16].qs[b % 16], w[b].qs, 16) == 0, "%d blocks: quants of block %d", nb, b);
        }
        cr_assert(memcmp(p + nx, w + 16 * nx, (size_t)(nb - 16 * nx) * sizeof w[0]) == 0,
                  "%d blocks: the last %d blocks are not in the file layout", nb, nb - 16 * nx);
        cr_assert_eq(x[nb * sizeof(sp_block_q4_0)], 0xa5, "%d blocks: wrote past the row", nb);
        sp_dequantize_row_q4_0(w, want, n);
        sp_dequantize_row_q4_0x16(x, got, n);
        cr_assert(memcmp(want, got, (size_t)n * sizeof(float)) == 0, "%d blocks: values differ", nb);
    }
}

/* Every level sums in the scalar level's order (quant.c), so its results
 * have the scalar level's bits, not just its value within rounding: that is
 * what makes an x86 board and an Arm board (tests/kernel_selftest.sh checks
 * the other side) give the same logits for the same rows. Packed Q8_0 and
 * Q4_0 dots of lengths with and without a partial last group, -128
 * weights, f32 and fp16 dots of lengths around the 8/16/32-element steps. */
Test(vec_dot, every_level_has_the_scalar_bits)
{
    enum { NB = 70, REPS = 6, NL = 17 };
    static sp_block_q8_0 w8[NB], a[NB];
    static sp_block_q4_0 w4[NB];
    static sp_q8_group g[(NB + 3) / 4];
    static float x[2100], y[2100];
    static uint16_t h[2100];
    const int counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, 66, 67, 70};
    const int lens[NL] = {1, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 64, 100, 128, 2048, 2053};
    enum { NC = sizeof counts / sizeof counts[0] };
    static float want[NC][REPS][2], wantf[NL][2];
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        sp_rng rng;
        sp_rng_seed(&rng, 31);
        for (int c = 0; c < NC; c++) {
            int64_t n = (int64_t)counts[c] * SP_QK;
            for (int r = 0; r < REPS; r++) {
                fill_q8(&rng, w8, counts[c], r == 5 ? FILL_MAX : FILL_RANDOM, 0);
                fill_q4(&rng, w4, counts[c], FILL_RANDOM, 0);
                fill_q8(&rng, a, counts[c], FILL_RANDOM, 0);
                if (r == 4) memset(w8[counts[c] / 2].qs, -128, SP_QK);
                sp_q8_group_pack(a, g, n);
                float got[2] = {sp_vec_dot_q8_0_q8g(n, w8, g), sp_vec_dot_q4_0_q8g(n, w4, g)};
                for (int t = 0; t < 2; t++) {
                    if (lv == 0) want[c][r][t] = got[t];
                    cr_assert(memcmp(&got[t], &want[c][r][t], sizeof got[t]) == 0,
                              "%s %s, %d blocks, case %d: %a, scalar level %a", sp_simd_name(), t ? "q4_0" : "q8_0",
                              counts[c], r, got[t], want[c][r][t]);
                }
            }
        }
        for (int i = 0; i < 2100; i++) {
            x[i] = sp_rng_normal(&rng);
            y[i] = sp_rng_normal(&rng);
            h[i] = sp_f32_to_fp16(sp_rng_normal(&rng));
        }
        for (int k = 0; k < NL; k++) {
            float got[2] = {sp_vec_dot_f32(lens[k], x, y), sp_vec_dot_f16_f32(lens[k], h, y)};
            for (int t = 0; t < 2; t++) {
                if (lv == 0) wantf[k][t] = got[t];
                cr_assert(memcmp(&got[t], &wantf[k][t], sizeof got[t]) == 0, "%s %s dot, n %d: %a, scalar level %a",
                          sp_simd_name(), t ? "f16" : "f32", lens[k], got[t], wantf[k][t]);
            }
        }
    }
}

/* The fused activation quantizer: every level writes the same bytes, equal
 * to quantizing with sp_quantize_row_q8_0 and packing, except that ties
 * round to even (2.5 -> 2, -3.5 -> -4; the writer's roundf gives 3, -4). */
Test(quantize, q8g_every_level_same_bytes_and_ties_to_even)
{
    enum { N = 7 * SP_QK };
    static float x[N];
    static sp_block_q8_0 blk[N / SP_QK];
    static sp_q8_group ref[2], got[2], packed[2];
    sp_rng rng;
    sp_rng_seed(&rng, 21);
    for (int i = 0; i < N; i++) x[i] = sp_rng_normal(&rng);
    for (int j = 0; j < SP_QK; j++) x[j] = 0.0f; /* block 0: amax 127 -> d 1, exact ties */
    x[0] = 127.0f, x[1] = 2.5f, x[2] = -3.5f, x[3] = 0.5f;
    for (int j = 0; j < SP_QK; j++) x[2 * SP_QK + j] = 0.0f; /* block 2: all zero */
    sp_simd_force(0);
    sp_quantize_row_q8g(x, ref, N);
    cr_assert_eq(ref[0].lo[0][1], 2, "2.5 rounds to even: %d", ref[0].lo[0][1]);
    cr_assert_eq(ref[0].lo[0][2], -4, "-3.5 rounds to even: %d", ref[0].lo[0][2]);
    cr_assert_eq(ref[0].lo[0][3], 0, "0.5 rounds to even: %d", ref[0].lo[0][3]);
    cr_assert_eq(ref[0].bias[0], -8 * (127 + 2 - 4), "block 0 bias lane 0 %d", ref[0].bias[0]);
    /* away from ties it is quantize + pack */
    x[1] = 2.6f, x[2] = -3.4f, x[3] = 0.4f;
    sp_quantize_row_q8g(x, ref, N);
    sp_quantize_row_q8_0(x, blk, N);
    sp_q8_group_pack(blk, packed, N);
    cr_assert(memcmp(ref, packed, sizeof ref) == 0, "scalar q8g differs from quantize_row_q8_0 + pack");
    x[1] = 2.5f, x[2] = -3.5f, x[3] = 0.5f;
    sp_quantize_row_q8g(x, ref, N);
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        memset(got, 0x5a, sizeof got);
        sp_quantize_row_q8g(x, got, N);
        cr_assert(memcmp(ref, got, sizeof ref) == 0, "%s: quantized groups differ from the scalar level",
                  sp_simd_name());
    }
}

Test(vec_dot, f32_every_level)
{
    static float w[2048 + 7], a[2048 + 7];
    const int lens[] = {1, 7, 8, 31, 32, 33, 100, 2048, 2055};
    sp_rng rng;
    sp_rng_seed(&rng, 13);
    for (int i = 0; i < 2055; i++) {
        w[i] = sp_rng_normal(&rng);
        a[i] = sp_rng_normal(&rng);
    }
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            int n = lens[k];
            double abs_sum = 0;
            for (int i = 0; i < n; i++) abs_sum += fabs((double)w[i] * a[i]);
            float ref = sp_vec_dot_f32_ref(n, w, a);
            float got = sp_vec_dot_f32(n, w, a);
            cr_assert(fabs(got - ref) <= 1e-5 * abs_sum, "%s n %d: %.9g vs %.9g", sp_simd_name(),
                      n, got, ref);
        }
    }
}

Test(vec_dot, f16_f32_reference)
{
    uint16_t w[64];
    float a[64], wf[64];
    for (int i = 0; i < 64; i++) {
        wf[i] = (float)(i - 32) / 8.0f;
        w[i] = sp_f32_to_fp16(wf[i]);
        a[i] = (float)(i % 5);
    }
    cr_assert_eq(sp_vec_dot_f16_f32_ref(64, w, a), sp_vec_dot_f32_ref(64, wf, a));
}

/* Quantized dot versus f32 math: the Q8_0 x Q8_0 result approximates the
 * f32 dot of the original rows (sanity of the whole pipeline). */
Test(vec_dot, approximates_f32_dot)
{
    enum { N = 2048 };
    static float w[N], a[N];
    static sp_block_q8_0 wq[N / SP_QK], aq[N / SP_QK];
    static sp_block_q4_0 w4[N / SP_QK];
    sp_rng rng;
    sp_rng_seed(&rng, 14);
    for (int i = 0; i < N; i++) {
        w[i] = sp_rng_normal(&rng);
        a[i] = sp_rng_normal(&rng) + 0.5f;
    }
    sp_quantize_row_q8_0(w, wq, N);
    sp_quantize_row_q4_0(w, w4, N);
    sp_quantize_row_q8_0(a, aq, N);
    double exact = 0, norm = 0;
    for (int i = 0; i < N; i++) {
        exact += (double)w[i] * a[i];
        norm += fabs((double)w[i] * a[i]);
    }
    cr_assert(fabs(sp_vec_dot_q8_0_q8_0(N, wq, aq) - exact) < 0.01 * norm);
    cr_assert(fabs(sp_vec_dot_q4_0_q8_0(N, w4, aq) - exact) < 0.1 * norm);
}

/* ---- shared models ---- */

static void check_model_dequantizes(const char *rel, sp_dtype want)
{
    const char *path = sp_test_shared(rel);
    if (!path) return;
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open(path, &err);
    cr_assert_not_null(g, "%s", err.msg);
    int seen = 0;
    for (uint64_t t = 0; t < g->n_tensors; t++) {
        const sp_gguf_tensor *ts = &g->tensors[t];
        if (ts->type != want) continue;
        int64_t cols = (int64_t)ts->ne[0];
        float *row = malloc((size_t)cols * sizeof(float));
        sp_dequantize_row(ts->type, ts->data, row, cols);
        double sq = 0;
        for (int64_t i = 0; i < cols; i++) {
            cr_assert(isfinite(row[i]), "%.*s element %ld", (int)ts->name.len, ts->name.ptr,
                      (long)i);
            sq += row[i] * row[i];
        }
        cr_assert(sq > 0, "first row of %.*s is all zero", (int)ts->name.len, ts->name.ptr);
        free(row);
        seen++;
    }
    cr_assert(seen > 0, "%s has no tensor of type %d", rel, want);
    sp_gguf_close(g);
}

Test(models, tiny_random_q8_0_dequantizes)
{
    check_model_dequantizes("models/tiny-random-q8_0.gguf", SP_DTYPE_Q8_0);
}

Test(models, tiny_random_q4_0_dequantizes)
{
    check_model_dequantizes("models/tiny-random-q4_0.gguf", SP_DTYPE_Q4_0);
}

/* ---- dequantization: every SIMD level is bit-identical to the portable
 * loops (d * q is a single f32 multiply; fp16 to f32 is exact) ---- */

Test(dequantize, every_level_matches_portable)
{
    enum { N = 65536 };
    static sp_block_q8_0 q8[N / SP_QK];
    static sp_block_q4_0 q4[N / SP_QK];
    static uint16_t h[N];
    static float want[N], got[N];
    sp_rng rng;
    sp_rng_seed(&rng, 21);
    fill_q8(&rng, q8, N / SP_QK, FILL_RANDOM, 0);
    fill_q4(&rng, q4, N / SP_QK, FILL_RANDOM, 0);
    for (int i = 0; i < N; i++) h[i] = (uint16_t)i; /* every half */
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        /* lengths that leave tails for 8-wide conversions */
        const int64_t lens[] = {SP_QK, 2048, N};
        for (size_t k = 0; k < 3; k++) {
            int64_t n = lens[k];
            sp_dequantize_row_q8_0(q8, want, n);
            sp_dequantize_row(SP_DTYPE_Q8_0, q8, got, n);
            cr_assert_arr_eq(got, want, (size_t)n * sizeof(float), "%s Q8_0", sp_simd_name());
            sp_dequantize_row_q4_0(q4, want, n);
            sp_dequantize_row(SP_DTYPE_Q4_0, q4, got, n);
            cr_assert_arr_eq(got, want, (size_t)n * sizeof(float), "%s Q4_0", sp_simd_name());
        }
        const int64_t hlens[] = {3, 13, N};
        for (size_t k = 0; k < 3; k++) {
            int64_t n = hlens[k];
            sp_dequantize_row(SP_DTYPE_F16, h, got, n);
            for (int64_t i = 0; i < n; i++) {
                float w = sp_fp16_to_f32(h[i]);
                if (isnan(w))
                    cr_assert(isnan(got[i]), "%s half 0x%04x", sp_simd_name(), h[i]);
                else
                    cr_assert(memcmp(&w, &got[i], sizeof w) == 0, "%s half 0x%04x: %a vs %a",
                              sp_simd_name(), h[i], got[i], w);
            }
        }
    }
}
