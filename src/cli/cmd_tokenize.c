/* cmd_tokenize.c - `shardpipe tokenize`: the token ids of a text under a
 * model's tokenizer, like llama.cpp's llama-tokenize. Only the model's
 * metadata is read, so it works for any GGUF with a supported vocabulary,
 * whatever its tensor types. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "cli_util.h"
#include "shardpipe/gguf.h"
#include "shardpipe/tokenizer.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shardpipe tokenize -m MODEL.gguf [--no-bos] [--special] [-v] TEXT\n"
            "  -m, --model PATH   GGUF model whose tokenizer to use\n"
            "      --no-bos       do not add BOS (added when the model's add_bos_token says so)\n"
            "      --special      match control-token texts such as <|eot_id|> in TEXT\n"
            "                     (user-defined ones such as <think> always match)\n"
            "  -v, --verbose      one line per token: id -> 'text' (bytes that are not whole\n"
            "                     UTF-8 characters, and control bytes, as \\xNN)\n"
            "Prints the ids on one line, separated by spaces.\n");
}

/* Length of the well-formed UTF-8 character at s (n bytes), 0 if none. */
static int utf8_char(const unsigned char *s, int n)
{
    int len = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : s[0] >= 0xE0 && s[0] < 0xF0 ? 3
            : s[0] >= 0xF0 && s[0] < 0xF5 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    for (int i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

/* A token's bytes, printable: control characters, quotes' escape and
 * broken UTF-8 as \xNN (so the terminal shows exactly what the token is). */
static void print_bytes(const char *b, int n)
{
    for (int i = 0; i < n;) {
        const unsigned char *s = (const unsigned char *)b + i;
        int len = utf8_char(s, n - i);
        if (len == 1 && s[0] >= 0x20 && s[0] != 0x7F && s[0] != '\\') putchar(s[0]);
        else if (len > 1) fwrite(s, 1, (size_t)len, stdout);
        else if (s[0] == '\n') fputs("\\n", stdout);
        else if (s[0] == '\\') fputs("\\\\", stdout);
        else printf("\\x%02X", s[0]);
        i += len > 0 ? len : 1;
    }
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model_path = NULL;
    int no_bos = 0, special = 0, verbose = 0;
    enum { O_NO_BOS = 256, O_SPECIAL };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"no-bos", no_argument, 0, O_NO_BOS},
        {"special", no_argument, 0, O_SPECIAL}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case O_NO_BOS: no_bos = 1; break;
        case O_SPECIAL: special = 1; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model_path || optind != argc - 1) {
        fprintf(stderr, "shardpipe tokenize: -m MODEL and exactly one TEXT are required (quote the text)\n");
        usage(stderr);
        return 2;
    }
    sp_error err = {{0}};
    sp_gguf *g = sp_gguf_open_meta(model_path, &err);
    if (!g) return sp_cli_fail("tokenize", &err);
    sp_tokenizer *t = sp_tokenizer_load(g, &err);
    sp_gguf_close(g);
    if (!t) return sp_cli_fail("tokenize", &err);
    int n;
    unsigned flags = (no_bos ? 0 : SP_TOK_ADD_SPECIAL) | (special ? SP_TOK_PARSE_SPECIAL : 0);
    int *ids = sp_tokenize(t, argv[optind], flags, &n, &err);
    if (!ids) {
        sp_tokenizer_free(t);
        return sp_cli_fail("tokenize", &err);
    }
    for (int i = 0; i < n; i++) {
        if (verbose) {
            char b[4096];
            printf("%6d -> '", ids[i]);
            print_bytes(b, sp_token_bytes(t, ids[i], b, sizeof b));
            puts("'");
        } else {
            printf(i ? " %d" : "%d", ids[i]);
        }
    }
    if (!verbose) putchar('\n');
    free(ids);
    sp_tokenizer_free(t);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "shardpipe tokenize: cannot write the output (standard output)\n");
        return 1;
    }
    return 0;
}
