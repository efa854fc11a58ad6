/* testutil.h - helpers shared by the Criterion tests. */
#ifndef SP_TESTUTIL_H
#define SP_TESTUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "shardpipe/tokenizer.h"

/* Path of a file under the shared data folder (SP_SHARED env var, else the
 * configured ../shared); "models/stories260K.gguf" is the copy shipped in
 * models/, present on every clone. Otherwise
 * returns NULL - after calling cr_skip_test with a
 * message naming the missing file - when absent: use as
 *   const char *p = sp_test_shared("models/stories260K.gguf"); if (!p) return; */
const char *sp_test_shared(const char *rel);

/* A fresh temporary directory for this test process (removed at exit). */
const char *sp_test_tmpdir(void);
/* tmpdir/name into a static rotating buffer. */
const char *sp_test_tmpfile(const char *name);

/* True when a temporary of an atomic write to `path` (PATH.XXXXXX, see
 * atomicfile.h) is still in its folder. */
bool sp_test_tmp_left(const char *path);

/* Write text to tmpdir/name (replacing it); returns the path (as
 * sp_test_tmpfile). */
const char *sp_test_write_text(const char *name, const char *text);

/* Read a whole file; returns malloc'ed buffer, NUL-terminated past *len;
 * NULL if absent. */
void *sp_test_read_file(const char *path, size_t *len);

/* Integers of the JSON array at "key": [...] in a JSON text; returns the
 * count (at most cap stored), -1 when the key is absent. */
int sp_test_json_ints(const char *json, const char *key, int *out, int cap);

/* Every line of a JSONL file, parsed with jansson, as one JSON array (free
 * with json_decref); fails the test naming the file and line on bad JSON. */
json_t *sp_test_jsonl(const char *path);
/* The integers of array field key of obj as a malloc'ed array (count in *n);
 * fails the test when the field is missing or holds a non-integer. */
int *sp_test_json_int_array(const json_t *obj, const char *key, int *n);

/* The tokenizer of a shared model, read from its metadata only
 * (sp_gguf_open_meta); NULL, after a loud skip, when the file is absent. */
sp_tokenizer *sp_test_tokenizer(const char *model_rel);
/* sp_tokenize that must succeed. */
int *sp_test_tokenize(const sp_tokenizer *t, const char *text, unsigned flags, int *n);
/* A llama.cpp reference of ../shared/reference: NAME.json's prompt_tokens,
 * greedy_tokens and logits_positions (absent: every prompt position), and
 * NAME.logits.f32 (malloc'ed, one row of n_vocab per position). */
typedef struct sp_test_ref {
    int prompt[64], n_prompt;
    int greedy[128], n_greedy;
    int rows[64], n_rows;
    float *logits;
    size_t n_logits;
} sp_test_ref;

/* 0, or -1 after a loud skip when the files are missing. */
int sp_test_load_ref(const char *name, sp_test_ref *r);

#endif
