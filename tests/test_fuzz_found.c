/* test_fuzz_found.c - regression tests for the bugs the libFuzzer targets of
 * tests/fuzz found, one Test per bug, each with the (minimized) input that
 * showed it. They run in the normal suite, with gcc, without libFuzzer. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardpipe/plan.h"
#include "shardpipe/profile.h"
#include "testutil.h"
#include "../src/server/internal.h"

/* fuzz_cluster: `shardpipe profile --links` on one rank wrote a cluster file
 * of one board with an empty `links: pairs:`, which reads back as null and
 * was refused ("links.pairs must be a list"): the file it wrote could not
 * be planned with. */
Test(fuzz_found, one_board_cluster_written_back_loads)
{
    static sp_cluster c, back;
    sp_error err = {{0}};
    char text[2048];
    snprintf(text, sizeof text, "name: solo\nboards:\n  - name: pi4-a\n    profile: %s/tests/profiles/valid-board.yaml\n",
             SP_SOURCE_DIR);
    cr_assert_eq(sp_cluster_load(sp_test_write_text("solo.yaml", text), &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.n_boards, 1);

    const char *board = sp_test_tmpfile("pi4-a.yaml");
    cr_assert_eq(sp_profile_write(&c.boards[0].profile, board, NULL, &err), 0, "%s", err.msg);
    const char *rel[1] = {"pi4-a.yaml"};
    const char *out = sp_test_tmpfile("solo-written.yaml");
    cr_assert_eq(sp_cluster_write(&c, rel, out, "one board", &err), 0, "%s", err.msg);
    cr_assert_eq(sp_cluster_load(out, &back, &err), 0, "the written file must load again: %s", err.msg);
    cr_assert_eq(back.n_boards, 1);
    cr_assert_str_eq(back.boards[0].name, "pi4-a");
    cr_assert_eq(back.boards[0].threads, c.boards[0].threads);
}

/* fuzz_profile: a profile's cpu text with U+2028 (typed as "\L" in YAML) was
 * written back raw inside double quotes, where YAML folds NEL, LS and PS as
 * line breaks: the profile read back had another cpu string. The plan
 * writer quoted its model path the same way. */
Test(fuzz_found, yaml_line_separators_written_back_escaped)
{
    static sp_profile p, back;
    sp_error err = {{0}};
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/profiles/valid-board.yaml", SP_SOURCE_DIR);
    cr_assert_eq(sp_profile_load(path, &p, &err), 0, "%s", err.msg);
    snprintf(p.cpu, sizeof p.cpu, "A\xe2\x80\xa8" "B\xc2\x85" "C\xe2\x80\xa9" "D");
    snprintf(p.origin, sizeof p.origin, "x\xe2\x80\xa8y");
    const char *out = sp_test_tmpfile("ls-board.yaml");
    cr_assert_eq(sp_profile_write(&p, out, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_profile_load(out, &back, &err), 0, "%s", err.msg);
    cr_assert_str_eq(back.cpu, p.cpu);
    cr_assert_str_eq(back.origin, p.origin);

    static sp_plan plan, again;
    const char *in = sp_test_write_text("ls-plan.yaml", "model:\n  path: \"/m\\Lx\\Ny\\Pz.gguf\"\ncontext: 8\n"
                                                     "stages:\n  - rank: 0\n    layers: [0, 4]\n");
    cr_assert_eq(sp_plan_load(in, &plan, &err), 0, "%s", err.msg);
    cr_assert_str_eq(plan.model_path, "/m\xe2\x80\xa8x\xc2\x85y\xe2\x80\xa9z.gguf");
    const char *written = sp_test_tmpfile("ls-plan-written.yaml");
    cr_assert_eq(sp_plan_write(&plan, written, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(sp_plan_load(written, &again, &err), 0, "%s", err.msg);
    cr_assert_str_eq(again.model_path, plan.model_path);
}

/* fuzz_cluster: a perf entry was read into an uninitialized stack struct,
 * so a profile without the optional prompt-tile figures (gflops32,
 * gflops128) kept stack garbage there: the cost model used it and the
 * writer printed "gflops32: 0.00", which the loader then refused. */
Test(fuzz_found, absent_tile_figures_read_as_zero)
{
    static sp_profile p;
    sp_error err = {{0}};
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/profiles/valid-board.yaml", SP_SOURCE_DIR);
    cr_assert_eq(sp_profile_load(path, &p, &err), 0, "%s", err.msg);
    cr_assert_gt(p.n_perf, 0);
    for (int i = 0; i < p.n_perf; i++)
        for (int k = 0; k < SP_MV_COUNT; k++)
            for (int j = 0; j < SP_TILE_NROWS; j++)
                cr_assert_eq(p.perf[i].mv[k].tile_gflops[j], 0.0, "perf %d matvec %d tile %d: %g", i, k, j,
                             p.perf[i].mv[k].tile_gflops[j]);
}

/* fuzz_server: a body with a bad \u escape followed by bytes that are not
 * UTF-8 was refused with jansson's "near '...'" quoting those bytes; the
 * error JSON then did not render (jansson takes only UTF-8 strings), and
 * the server passed the NULL to strlen: one request crashed `shardpipe
 * serve`. The message now escapes them. */
Test(fuzz_found, api_error_with_raw_bytes_renders)
{
    static sp_server s; /* only the fields the parser reads */
    snprintf(s.model_id, sizeof s.model_id, "tiny");
    s.context = 64;
    static const char body[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"\\u15fc\\u6\xcb\x93" "5\"}]}";
    sp_api_error e;
    memset(&e, 0, sizeof e);
    cr_assert_null(sp_api_parse(&s, body, strlen(body), true, &e));
    cr_assert_eq(e.status, 400);
    cr_assert_str_eq(e.code, "invalid_json");
    char *js = sp_api_error_json(&e);
    cr_assert_not_null(js, "the error JSON of '%s' does not render", e.message);
    cr_assert(strstr(js, "invalid escape"), "%s", js);
    free(js);
}
