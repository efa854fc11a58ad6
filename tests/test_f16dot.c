/* test_f16dot.c - the attention kernels over the fp16 KV cache at every
 * SIMD level against the scalar references: sp_vec_dot_f16_f32 (query . K
 * row) and sp_vec_mad_f16 (y += a * V row), at lengths that exercise every
 * vector width and scalar tail; and the KV-group kernels
 * sp_attn_scores_f16 / sp_attn_values_f16 bit for bit against the loops of
 * those calls they stand for, at head sizes and position counts that take
 * every block, remainder and tail path. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "shardpipe/quant.h"
#include "shardpipe/util.h"

#define MAX_N 300

static const int lengths[] = {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 100, 128, 257};

/* Halves of integers in [-range, range] (exact in fp16) or of N(0, 1). */
static void fill_f16(sp_rng *rng, uint16_t *x, int n, int range)
{
    for (int i = 0; i < n; i++) {
        float v = range ? (float)((int)(sp_rng_u64(rng) % (2 * range + 1)) - range) : sp_rng_normal(rng);
        x[i] = sp_f32_to_fp16(v);
    }
}

static void fill_f32(sp_rng *rng, float *x, int n, int range)
{
    for (int i = 0; i < n; i++)
        x[i] = range ? (float)((int)(sp_rng_u64(rng) % (2 * range + 1)) - range) : sp_rng_normal(rng);
}

Test(f16dot, dot_every_level)
{
    static uint16_t w[MAX_N];
    static float a[MAX_N];
    sp_rng rng;
    sp_rng_seed(&rng, 21);
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        for (size_t c = 0; c < sizeof lengths / sizeof lengths[0]; c++) {
            int n = lengths[c];
            /* small integers: every partial sum is an exact integer below
             * 2^24, so any summation order gives the same f32 */
            fill_f16(&rng, w, n, 100);
            fill_f32(&rng, a, n, 100);
            double exact = 0.0;
            for (int i = 0; i < n; i++) exact += (double)sp_fp16_to_f32(w[i]) * a[i];
            float ref = sp_vec_dot_f16_f32_ref(n, w, a);
            float got = sp_vec_dot_f16_f32(n, w, a);
            cr_assert_eq((double)ref, exact, "reference, n %d: %.9g != %.9g", n, ref, exact);
            cr_assert_eq(got, ref, "%s, n %d, integers: %.9g != %.9g", sp_simd_name(), n, got, ref);

            /* random values: equal up to f32 rounding in another order */
            fill_f16(&rng, w, n, 0);
            fill_f32(&rng, a, n, 0);
            double terms = 0.0;
            exact = 0.0;
            for (int i = 0; i < n; i++) {
                double p = (double)sp_fp16_to_f32(w[i]) * a[i];
                exact += p;
                terms += fabs(p);
            }
            ref = sp_vec_dot_f16_f32_ref(n, w, a);
            got = sp_vec_dot_f16_f32(n, w, a);
            double tol = 1e-6 * n * terms + 1e-30;
            cr_assert(fabs(ref - exact) <= tol, "reference, n %d: %.9g vs %.9g", n, ref, exact);
            cr_assert(fabs(got - exact) <= tol, "%s, n %d: %.9g vs %.9g", sp_simd_name(), n, got, exact);
        }
    }
}

Test(f16dot, mad_every_level_is_bit_identical)
{
    static uint16_t x[MAX_N];
    static float y0[MAX_N + 1], want[MAX_N + 1], got[MAX_N + 1];
    sp_rng rng;
    sp_rng_seed(&rng, 22);
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        for (size_t c = 0; c < sizeof lengths / sizeof lengths[0]; c++) {
            int n = lengths[c];
            fill_f16(&rng, x, n, 0);
            fill_f32(&rng, y0, n, 0);
            float a = sp_rng_normal(&rng);
            y0[n] = 12345.0f; /* a guard past the end */

            memcpy(want, y0, sizeof want);
            for (int i = 0; i < n; i++) want[i] = fmaf(a, sp_fp16_to_f32(x[i]), y0[i]);
            memcpy(got, y0, sizeof got);
            sp_vec_mad_f16_ref(n, got, x, a);
            cr_assert(!memcmp(got, want, sizeof got), "reference, n %d differs from fmaf", n);

            memcpy(got, y0, sizeof got);
            sp_vec_mad_f16(n, got, x, a);
            for (int i = 0; i < n; i++)
                cr_assert(!memcmp(&got[i], &want[i], sizeof(float)), "%s, n %d, element %d: %.9g != %.9g",
                          sp_simd_name(), n, i, got[i], want[i]);
            cr_assert_eq(got[n], 12345.0f, "%s, n %d: wrote past the end", sp_simd_name(), n);
        }
    }
}

Test(f16dot, special_values)
{
    /* inf and NaN in the cache propagate as the reference does */
    uint16_t k[16];
    float q[16], y[16];
    for (int i = 0; i < 16; i++) {
        k[i] = sp_f32_to_fp16(1.0f);
        q[i] = 1.0f;
        y[i] = 0.0f;
    }
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        cr_assert_eq(sp_vec_dot_f16_f32(16, k, q), 16.0f, "%s", sp_simd_name());
        k[3] = 0x7c00; /* +inf */
        cr_assert(isinf(sp_vec_dot_f16_f32(16, k, q)), "%s: inf propagates", sp_simd_name());
        k[3] = 0x7e00; /* NaN */
        cr_assert(isnan(sp_vec_dot_f16_f32(16, k, q)), "%s: NaN propagates", sp_simd_name());
        sp_vec_mad_f16(16, y, k, 2.0f);
        cr_assert(isnan(y[3]) && y[2] == 2.0f, "%s: mad of a NaN element", sp_simd_name());
        k[3] = sp_f32_to_fp16(1.0f);
        for (int i = 0; i < 16; i++) y[i] = 0.0f;
    }
}

/* Head sizes: the common 64 and 128, vector multiples without a 16-step,
 * odd ones with scalar tails; position counts around the blocks of 8 (scores)
 * and 64 (values). */
static const int head_sizes[] = {64, 128, 8, 24, 48, 80, 100, 3, 1};
static const int positions[] = {1, 2, 7, 8, 9, 15, 16, 17, 37, 63, 64, 65, 130};

Test(f16dot, kv_group_kernels_equal_their_calls)
{
    enum { MAX_HD = 128, MAX_P = 130, NQ = 5, KV_HEADS = 2 };
    const int64_t stride = KV_HEADS * MAX_HD + 3; /* a cache row holds other KV heads too */
    static uint16_t kv[MAX_P * (KV_HEADS * MAX_HD + 3)];
    static float q[NQ * MAX_HD], s_want[NQ * (MAX_P + 2)], s_got[NQ * (MAX_P + 2)];
    static float y0[NQ * MAX_HD + 1], y_want[NQ * MAX_HD + 1], y_got[NQ * MAX_HD + 1];
    sp_rng rng;
    sp_rng_seed(&rng, 23);
    fill_f16(&rng, kv, (int)(sizeof kv / sizeof kv[0]), 0);
    const int64_t s_stride = MAX_P + 2;
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        for (size_t h = 0; h < sizeof head_sizes / sizeof head_sizes[0]; h++) {
            for (size_t c = 0; c < sizeof positions / sizeof positions[0]; c++) {
                int hd = head_sizes[h], n = positions[c];
                for (int nq = 1; nq <= NQ; nq += NQ - 1) {
                    const uint16_t *k = kv + hd; /* the second KV head's columns */
                    fill_f32(&rng, q, nq * hd, 0);
                    float scale = 1.0f / sqrtf((float)hd);
                    for (int i = 0; i < NQ * (MAX_P + 2); i++) s_want[i] = s_got[i] = -7.0f;
                    for (int p = 0; p < n; p++)
                        for (int g = 0; g < nq; g++)
                            s_want[g * s_stride + p] = sp_vec_dot_f16_f32(hd, k + p * stride, q + g * hd) * scale;
                    sp_attn_scores_f16(hd, n, k, stride, q, nq, scale, s_got, s_stride);
                    cr_assert(!memcmp(s_got, s_want, sizeof s_got),
                              "%s: scores, head size %d, %d positions, %d heads differ from the dot calls",
                              sp_simd_name(), hd, n, nq);

                    /* weights: the scores just computed, as the softmax leaves them (any values do) */
                    fill_f32(&rng, y0, nq * hd, 0);
                    y0[nq * hd] = 12345.0f;
                    memcpy(y_want, y0, sizeof y0);
                    memcpy(y_got, y0, sizeof y0);
                    for (int p = 0; p < n; p++)
                        for (int g = 0; g < nq; g++)
                            sp_vec_mad_f16(hd, y_want + g * hd, k + p * stride, s_want[g * s_stride + p]);
                    sp_attn_values_f16(hd, n, k, stride, s_want, nq, s_stride, y_got);
                    cr_assert(!memcmp(y_got, y_want, sizeof y_got),
                              "%s: values, head size %d, %d positions, %d heads differ from the mad calls",
                              sp_simd_name(), hd, n, nq);
                }
            }
        }
    }
}

Test(f16dot, round_f16_every_level_is_bit_identical)
{
    /* values around every case of sp_f32_to_fp16: ties between halves,
     * subnormal halves, the overflow edge 65504 / 65520, infinities, NaNs */
    enum { N = 203 };
    static const float special[] = {0.0f, -0.0f, 1.0f, 1.00048828125f /* tie, even down */, 1.00146484375f /* tie, up */,
                                    65504.0f, 65519.99f, 65520.0f, -1e9f, 6.1035156e-05f, 5.96e-08f, 2.98e-08f,
                                    2.9802322e-08f, 1e-40f, INFINITY, -INFINITY, NAN, -NAN};
    static float x[N], want[N], got[N];
    sp_rng rng;
    sp_rng_seed(&rng, 24);
    for (int i = 0; i < N; i++) {
        if (i < (int)(sizeof special / sizeof special[0]))
            x[i] = special[i];
        else {
            uint32_t bits = (uint32_t)sp_rng_u64(&rng); /* every exponent, NaN payloads included */
            memcpy(&x[i], &bits, sizeof bits);
        }
        want[i] = sp_fp16_to_f32(sp_f32_to_fp16(x[i]));
    }
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        for (int n = 0; n <= N; n += n < 20 ? 1 : 61) {
            memcpy(got, x, sizeof got);
            sp_round_f16(got, n);
            for (int i = 0; i < N; i++) {
                const float *w = i < n ? &want[i] : &x[i]; /* nothing past n is touched */
                cr_assert(!memcmp(&got[i], w, sizeof(float)), "%s, n %d, value %d (%a): %a, expected %a",
                          sp_simd_name(), n, i, (double)x[i], (double)got[i], (double)*w);
            }
        }
    }
}
