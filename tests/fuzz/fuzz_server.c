/* fuzz_server.c - libFuzzer target: the request validation of `shardpipe
 * serve`, sp_api_parse (src/server/api.c), on an HTTP body, called
 * directly on a server struct that holds only what the parser reads (no
 * socket, no cluster: the parser runs before a job reaches the
 * coordinator). Byte 0 of the input picks the endpoint (bit 0:
 * /v1/chat/completions, else /v1/completions) and the vocabulary (bit 1:
 * Llama 3's byte-level BPE when the shared model is there); the rest is
 * the body. Checked, beyond ASan/UBSan: a job accepted has 1 <= prompt
 * ids, all in the vocabulary, 1 <= max_new and prompt + max_new within the
 * context, sampling parameters in OpenAI's ranges; a body refused has a
 * 4xx status, a code and a message, and its error JSON renders. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/server/internal.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fz_vocab();
    fz_vocab_bpe();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    bool chat = data[0] & 1;
    const sp_tokenizer *tok = (data[0] & 2) && fz_vocab_bpe() ? fz_vocab_bpe() : fz_vocab();
    static sp_server s; /* zero but for the fields below: has_chat false, the plain transcript */
    s.tok = tok;
    s.context = 64;
    s.n_slots = 2;
    s.n_stages = 1;
    snprintf(s.model_id, sizeof s.model_id, "tiny");
    int n_vocab = sp_tokenizer_n_vocab(tok);

    sp_api_error e;
    memset(&e, 0, sizeof e);
    sp_job *j = sp_api_parse(&s, (const char *)data + 1, size - 1, chat, &e);
    if (!j) {
        if (e.status < 400 || e.status > 499 || !e.code || !e.message[0])
            fz_fail("a refused body gave status %d, code %s, message '%s'", e.status, e.code ? e.code : "(none)",
                    e.message);
        char *js = sp_api_error_json(&e);
        if (!js) fz_fail("the error JSON does not render: status %d, code %s, param '%s', message '%s'", e.status, e.code, e.param, e.message);
        free(js);
        return 0;
    }
    if (j->n_prompt < 1 || !j->prompt) fz_fail("a job accepted with %d prompt ids", j->n_prompt);
    for (int i = 0; i < j->n_prompt; i++)
        if (j->prompt[i] < 0 || j->prompt[i] >= n_vocab) fz_fail("prompt id %d is %d", i, j->prompt[i]);
    if (j->max_new < 1 || j->n_prompt + j->max_new > s.context)
        fz_fail("a job of %d prompt ids and max_new %d in a context of %d", j->n_prompt, j->max_new, s.context);
    const sp_sampler_params *p = &j->sampling;
    if (!(p->temperature >= 0 && p->temperature <= 2) || !(p->top_p >= 0 && p->top_p <= 1) ||
        !(p->min_p >= 0 && p->min_p <= 1) || p->top_k < 0)
        fz_fail("sampling out of range: temperature %g top_p %g min_p %g top_k %d", p->temperature, p->top_p,
                p->min_p, p->top_k);
    if (j->n_stops < 0 || j->n_stops > SP_MAX_STOPS) fz_fail("%d stops", j->n_stops);
    for (int i = 0; i < j->n_stops; i++)
        if (!j->stops[i]) fz_fail("stop %d is NULL", i);
    sp_job_release(j);
    return 0;
}
