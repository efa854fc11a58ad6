/* test_base.c - RNG determinism and error formatting. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/error.h"
#include "shardpipe/escape.h"
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

/* Untrusted text quoted in a message (a YAML key, a file's first bytes, a
 * tensor name) must not reach the terminal with its control sequences. */
Test(base, error_messages_escape_control_characters)
{
    sp_error e;
    sp_errorf(&e, "unknown key '%s'", "ev\x1b[2Jil\n\x7f");
    cr_assert_str_eq(e.msg, "unknown key 'ev\\x1b[2Jil\\n\\x7f'");
    /* C1 controls (U+009B is CSI on some terminals) and bytes outside UTF-8 */
    sp_errorf(&e, "x %s y", "\xc2\x9b" "31m \xff caf\xc3\xa9");
    cr_assert_str_eq(e.msg, "x \\xc2\\x9b31m \\xff caf\xc3\xa9 y");
    /* idempotent: a prefixed message is not escaped twice */
    sp_error_prefix(&e, "%s: ", "a\tb");
    cr_assert_str_eq(e.msg, "a\\tb: x \\xc2\\x9b31m \\xff caf\xc3\xa9 y");
}

Test(base, json_strings_are_always_valid)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    /* a lone surrogate's bytes, an overlong '/', a cut sequence, a NUL, a quote */
    static const char in[] = "a\xed\xa0\x80" "b\xc0\xaf" "c\"\\\x01\x00" "d\xe2\x82";
    sp_json_put_string(f, in, sizeof in - 1);
    fclose(f);
    cr_assert_str_eq(buf, "\"a\\ufffd\\ufffd\\ufffdb\\ufffd\\ufffdc\\\"\\\\\\u0001\\u0000d\\ufffd\\ufffd\"");
    cr_assert(sp_utf8_valid("caf\xc3\xa9 \xf0\x9f\x98\x80", 10));
    cr_assert(!sp_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    free(buf);
}
