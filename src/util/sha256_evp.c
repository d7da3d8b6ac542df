/*
 * SHA-256 over OpenSSL's EVP interface. OpenSSL 3 looks an algorithm up in
 * its provider store whenever EVP_sha256() is used to start a digest; a
 * directory of plans needs tens of thousands of digests, so the method is
 * fetched once per process (pthread_once) and shared: a fetched EVP_MD is
 * immutable and may be used by several threads at the same time.
 */
#include "util/sha256.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void
sha256_fatal(void)
{
	unsigned long e = ERR_get_error();
	char msg[256] = "no error queued";

	if (e)
		ERR_error_string_n(e, msg, sizeof(msg));
	fprintf(stderr, "taskslaps: libcrypto cannot compute SHA-256 (%s)\n", msg);
	abort();
}

int
sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	static const unsigned char empty = 0;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	pthread_once(&sha256_once, sha256_fetch);
	/* EVP_Digest wants a valid pointer even for no bytes */
	if (EVP_Digest(data ? data : &empty, len, md, &mdlen, sha256_md ? sha256_md : EVP_sha256(),
		       NULL) != 1 ||
	    mdlen != 32)
		sha256_fatal();
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[SHA256_HEX_LEN] = '\0';
	return 0;
}
