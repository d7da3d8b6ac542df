/* SHA-256 (FIPS 180-4), with the CPU's SHA instructions where it has them. */
#ifndef TS_UTIL_SHA256_H
#define TS_UTIL_SHA256_H

#include <stddef.h>

#define SHA256_HEX_LEN 64

/* Writes the lowercase hex digest and a NUL into out[65]. Returns 0 (it cannot fail). */
int sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]);
/* The same in portable C only, whatever the CPU: for tests of the other path. */
int sha256_hex_portable(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]);

#endif
