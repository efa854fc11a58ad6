/* sha256.h - SHA-256 (FIPS 180-4), to tell whether a model file is the one a
 * plan was made for. Streaming: init, update any number of times with pieces
 * of any size, final; or hash a whole file with sp_sha256_file. */
#ifndef SHARDPIPE_SHA256_H
#define SHARDPIPE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "shardpipe/error.h"

typedef struct sp_sha256 {
    uint32_t h[8];      /* the hash value H0..H7 */
    uint64_t length;    /* message bytes hashed so far */
    uint8_t block[64];  /* the message block being filled */
    size_t fill;        /* bytes in block */
} sp_sha256;

void sp_sha256_init(sp_sha256 *s);
void sp_sha256_update(sp_sha256 *s, const void *data, size_t n);
/* Pads the message, writes the 32-byte digest; s must be re-initialised to
 * be used again. */
void sp_sha256_final(sp_sha256 *s, uint8_t digest[32]);

/* 64 lowercase hex digits and a NUL, as `sha256sum` prints them. */
void sp_sha256_hex(const uint8_t digest[32], char hex[65]);

/* Hashes the file at path (read in 1 MiB pieces, never held whole) into hex.
 * Returns 0, or -1 with err naming the file and the failure. */
int sp_sha256_file(const char *path, char hex[65], sp_error *err);

#endif
