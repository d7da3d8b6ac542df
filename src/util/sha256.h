/* SHA-256 (FIPS 180-4), computed by OpenSSL's libcrypto. */
#ifndef TS_UTIL_SHA256_H
#define TS_UTIL_SHA256_H

#include <stddef.h>

#define SHA256_HEX_LEN 64

/*
 * Writes the lowercase hex digest of data[0..len) and a NUL into out[65].
 * Thread-safe. Returns 0. When libcrypto cannot compute a digest at all (out
 * of memory, or a configuration that offers no SHA-256) it says so on stderr
 * and aborts, like the allocation wrappers: every caller needs the digest.
 */
int sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]);

#endif
