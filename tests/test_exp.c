/* test_exp.c - sp_expf / sp_exp_f32 / sp_swiglu_f32: correctly rounded
 * against libm's double exp wherever that can decide, the IEEE edge cases,
 * and the same bits at every SIMD level (the cross-architecture half of that
 * is tests/kernel_selftest.sh). */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "shardpipe/quant.h"
#include "shardpipe/util.h"

static int same_bits(float a, float b) { return !memcmp(&a, &b, sizeof a); }

/* The f32 nearest to exp(x), from libm's double exp (error below one
 * double ulp). Returns 0 when exp(x) lies so close to the midpoint between
 * two floats that a double cannot tell which side it is on. */
static int nearest_f32_exp(float x, float *out)
{
    double e = exp((double)x);
    float f = (float)e;
    if (isinf(f) || f == 0.0f || !isnormal(f)) {
        *out = f;
        return 1;
    }
    float other = e > (double)f ? nextafterf(f, INFINITY) : nextafterf(f, -INFINITY);
    double mid = 0.5 * ((double)f + (double)other);
    if (fabs(e - mid) <= 4.0 * fabs(e) * DBL_EPSILON) return 0;
    *out = f;
    return 1;
}

Test(exp, correctly_rounded_where_double_can_tell)
{
    sp_simd_force(0);
    sp_rng rng;
    sp_rng_seed(&rng, 7);
    int checked = 0, undecided = 0;
    for (int i = 0; i < 2000000; i++) {
        float x;
        if (i % 4 == 3) {
            uint32_t bits = (uint32_t)sp_rng_u64(&rng); /* any float: huge, tiny, subnormal */
            memcpy(&x, &bits, sizeof x);
            if (isnan(x)) continue;
        } else {
            x = -110.0f + 200.0f * sp_rng_f32(&rng); /* the range where e^x is finite and not 0, and past it */
        }
        float want;
        if (!nearest_f32_exp(x, &want)) {
            undecided++;
            continue;
        }
        float got = sp_expf(x);
        cr_assert(same_bits(got, want), "e^%a = %a, nearest float %a", (double)x, (double)got, (double)want);
        checked++;
    }
    cr_assert_gt(checked, 1900000);
    cr_assert_lt(undecided, 10, "%d values too close to a midpoint to decide", undecided);
}

Test(exp, edge_cases)
{
    sp_simd_force(0);
    cr_assert(same_bits(sp_expf(0.0f), 1.0f));
    cr_assert(same_bits(sp_expf(-0.0f), 1.0f));
    cr_assert(same_bits(sp_expf(1e-40f), 1.0f)); /* a subnormal input */
    cr_assert(same_bits(sp_expf(INFINITY), INFINITY));
    cr_assert(same_bits(sp_expf(-INFINITY), 0.0f));
    cr_assert(isnan(sp_expf(NAN)));
    cr_assert(isinf(sp_expf(1e30f)) && same_bits(sp_expf(-1e30f), 0.0f));
    cr_assert(same_bits(sp_expf(-103.5f), 0x1p-149f)); /* the smallest subnormal */
    cr_assert(same_bits(sp_expf(-104.0f), 0.0f));
    /* around the overflow edge (e^x passes FLT_MAX between 88.7228317 and
     * 88.7228394) and through the subnormal range: the nearest float */
    const float around[] = {88.72283f, 88.7228317f, 88.7228394f, 88.7228470f, -87.33654f, -87.3365479f,
                            -90.0f, -100.0f, -103.27893f, -103.97208f, -103.972084f};
    for (size_t i = 0; i < sizeof around / sizeof around[0]; i++) {
        float want;
        cr_assert(nearest_f32_exp(around[i], &want));
        cr_assert(same_bits(sp_expf(around[i]), want), "e^%a = %a, nearest %a", (double)around[i],
                  (double)sp_expf(around[i]), (double)want);
    }
    cr_assert(isfinite(sp_expf(88.7228317f)) && isinf(sp_expf(88.7228394f)));
}

/* Every level's rows, in place and not, have the scalar level's bits, and
 * touch nothing past n. */
Test(exp, every_level_has_the_scalar_bits)
{
    enum { N = 301 };
    static const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, 88.7228394f, 88.7228470f, -87.3365479f, -90.0f,
                                    -103.5f, -104.0f, 150.0f, -150.5f, 1e-40f, INFINITY, -INFINITY, NAN, -NAN};
    const int n_special = (int)(sizeof special / sizeof special[0]);
    static float x[N], u[N], want_e[N], want_s[N], got[N];
    sp_rng rng;
    sp_rng_seed(&rng, 11);
    for (int i = 0; i < N; i++) {
        if (i < n_special) x[i] = special[i];
        else if (i % 3) x[i] = -20.0f + 30.0f * sp_rng_f32(&rng); /* softmax and SwiGLU inputs */
        else {
            uint32_t bits = (uint32_t)sp_rng_u64(&rng);
            memcpy(&x[i], &bits, sizeof bits);
        }
        u[i] = sp_rng_normal(&rng);
    }
    sp_simd_force(0);
    sp_exp_f32(want_e, x, N);
    memcpy(want_s, x, sizeof want_s);
    sp_swiglu_f32(want_s, u, N);
    for (int i = 0; i < N; i++) {
        cr_assert(same_bits(want_e[i], sp_expf(x[i])) || (isnan(want_e[i]) && isnan(x[i])));
        if (!isnan(x[i]) && isfinite(x[i]) && fabsf(x[i]) < 80.0f) {
            float e = sp_expf(-x[i]);
            cr_assert(same_bits(want_s[i], x[i] / (1.0f + e) * u[i]), "swiglu %d", i);
        }
    }
    for (int lv = 0; lv < sp_simd_count(); lv++) {
        sp_simd_force(lv);
        for (int n = 0; n <= N; n += n < 40 ? 1 : 87) {
            memcpy(got, x, sizeof got);
            sp_exp_f32(got, got, n); /* in place, as attention calls it */
            for (int i = 0; i < N; i++) {
                const float *w = i < n ? &want_e[i] : &x[i];
                cr_assert(same_bits(got[i], *w), "%s exp, n %d, value %d (%a): %a, expected %a", sp_simd_name(), n,
                          i, (double)x[i], (double)got[i], (double)*w);
            }
            memcpy(got, x, sizeof got);
            sp_swiglu_f32(got, u, n);
            for (int i = 0; i < N; i++) {
                const float *w = i < n ? &want_s[i] : &x[i];
                cr_assert(same_bits(got[i], *w), "%s swiglu, n %d, value %d (%a): %a, expected %a", sp_simd_name(),
                          n, i, (double)x[i], (double)got[i], (double)*w);
            }
        }
    }
    sp_simd_force(sp_simd_count() - 1);
}

/* Softmax rows: the scalar level against a double-precision softmax, and
 * every level with the scalar bits at every length 1-40 and some longer,
 * with -inf scores (what a mask would give) and large spreads. */
Test(exp, softmax_every_level_has_the_scalar_bits)
{
    enum { N = 333 };
    static float x[N], want[N], got[N];
    sp_rng rng;
    sp_rng_seed(&rng, 5);
    for (int i = 0; i < N; i++) x[i] = (i % 3 ? 8.0f : 40.0f) * (sp_rng_f32(&rng) - 0.5f);
    x[7] = -INFINITY;
    x[40] = -INFINITY;
    const int lens[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 23, 31, 33, 40, 64, 100, 129, 333};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        int n = lens[k];
        sp_simd_force(0);
        memcpy(want, x, sizeof want);
        sp_softmax_f32(want, n);
        /* against softmax in double of the same f32 differences x - max
         * (the one rounding the definition has before e^x): each weight
         * within 4 f32 ulps (e^x correctly rounded, one division, one product) */
        float m = -INFINITY;
        for (int i = 0; i < n; i++) m = fmaxf(m, x[i]);
        double sum = 0.0;
        for (int i = 0; i < n; i++) sum += exp((double)(x[i] - m));
        for (int i = 0; i < n; i++) {
            double p = exp((double)(x[i] - m)) / sum;
            cr_assert(fabs(want[i] - p) <= 4.0 * FLT_EPSILON * p + 1e-45, "n %d, weight %d: %a, double %a", n, i,
                      (double)want[i], p);
        }
        for (int lv = 0; lv < sp_simd_count(); lv++) {
            sp_simd_force(lv);
            memcpy(got, x, sizeof got);
            sp_softmax_f32(got, n);
            for (int i = 0; i < N; i++) {
                const float *w = i < n ? &want[i] : &x[i];
                cr_assert(same_bits(got[i], *w), "%s softmax, n %d, value %d: %a, expected %a", sp_simd_name(), n, i,
                          (double)got[i], (double)*w);
            }
        }
    }
    sp_simd_force(sp_simd_count() - 1);
}
