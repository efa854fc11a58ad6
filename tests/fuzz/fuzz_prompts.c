/* fuzz_prompts.c - libFuzzer target: a JSONL prompts file (`shardpipe run
 * --prompts`) from the input through sp_sched_init, which reads each line's
 * "prompt" string and tokenizes it with the fixed vocabulary of
 * fuzz_util.c. Every id of every prompt is read back (ASan sees an id
 * past the buffer the reader sized) and must be in the vocabulary; a
 * refused file must come with an error naming it. The reader is
 * src/cluster/sched.c with src/cluster/prompts.c (jansson), compiled in on
 * their own (they need no MPI). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../../src/cluster/sched.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fz_vocab();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sp_tokenizer *tok = fz_vocab();
    int n_vocab = sp_tokenizer_n_vocab(tok);
    const char *path = fz_write("prompts.jsonl", data, size);
    sp_sched s;
    sp_sampler_params sampling = sp_sampler_defaults();
    sp_error err = {{0}};
    /* a context above any encoding of max_len bytes, but small: each slot
     * allocates one of its size */
    int rc = sp_sched_init(&s, tok, NULL, path, 4, 1 << 14, 2, 1, 4, 8, 1, false, &sampling, &err);
    if (rc && strstr(err.msg, path) != err.msg) fz_fail("the error does not name the file: %s", err.msg);
    for (int r = 0; r < s.n_reqs; r++) {
        const sp_request *q = &s.reqs[r];
        if (!q->prompt_text) fz_fail("request %d has no text", r);
        for (int i = 0; i < q->n_prompt; i++)
            if (q->prompt[i] < 0 || q->prompt[i] >= n_vocab) fz_fail("request %d id %d is %d", r, i, q->prompt[i]);
    }
    if (rc == 0 && s.n_reqs < 1) fz_fail("a prompts file accepted with no prompt");
    sp_sched_free(&s);
    return 0;
}
