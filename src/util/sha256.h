/* SHA-256 through OpenSSL's EVP interface. */
#ifndef TS_UTIL_SHA256_H
#define TS_UTIL_SHA256_H

#include <stddef.h>

#define SHA256_HEX_LEN 64

/* Writes the lowercase hex digest and a NUL into out[65]. Returns 0, or -1 on a library failure. */
int sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]);

#endif
