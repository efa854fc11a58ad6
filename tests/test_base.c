/* test_base.c - RNG determinism and error formatting. */
#include <criterion/criterion.h>
#include <string.h>

#include "shardpipe/error.h"
#include "shardpipe/util.h"

Test(base, rng_is_deterministic_per_seed)
{
    sp_rng a, b, c;
    sp_rng_seed(&a, 7);
    sp_rng_seed(&b, 7);
    sp_rng_seed(&c, 8);
    int same_c = 1;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = sp_rng_u64(&a), y = sp_rng_u64(&b), z = sp_rng_u64(&c);
        cr_assert_eq(x, y);
        if (x != z) same_c = 0;
    }
    cr_assert_eq(same_c, 0, "different seeds must give different streams");
}

Test(base, rng_f32_in_unit_interval)
{
    sp_rng r;
    sp_rng_seed(&r, 1);
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        float f = sp_rng_f32(&r);
        cr_assert(f >= 0.0f && f < 1.0f);
        sum += f;
    }
    cr_assert_float_eq(sum / 100000, 0.5, 0.01);
}

Test(base, error_prefix_keeps_message)
{
    sp_error e;
    cr_assert_eq(sp_errorf(&e, "bad %s", "thing"), -1);
    sp_error_prefix(&e, "%s: ", "file.gguf");
    cr_assert_str_eq(e.msg, "file.gguf: bad thing");
}
