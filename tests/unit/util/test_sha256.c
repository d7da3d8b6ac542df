/*
 * SHA-256 (OpenSSL's, through sha256_hex): FIPS 180-4's examples and every
 * length from 0 to 300 bytes (one, two and several blocks, each padding
 * case), and the same digests from several threads at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/sha256.h"

static void
gives(const void *data, size_t len, const char *want)
{
	char hex[SHA256_HEX_LEN + 1];

	assert_int_equal(sha256_hex(data, len, hex), 0);
	assert_string_equal(hex, want);
}

static void
test_util_sha256__fips_examples(void **state)
{
	static const char two_blocks[] = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
					 "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	char *million = malloc(1000000);

	(void)state;
	gives(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	gives("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	gives("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	gives(two_blocks, strlen(two_blocks),
	      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
	assert_non_null(million);
	memset(million, 'a', 1000000);
	gives(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(million);
}

/* The digests of pattern[0..L) for L = 0..300, concatenated in hex, hashed (Python's hashlib). */
static const char lengths_want[] =
    "d7a9b90d98debd1b5175288331c6bd26e947bf41f61bb9808d40b97606258ca9";

/* Whether the digest of the 301 digests is lengths_want (cmocka asserts on one thread only). */
static int
lengths_ok(void)
{
	unsigned char pattern[300];
	char *all = malloc(301 * SHA256_HEX_LEN + 1), hex[SHA256_HEX_LEN + 1];
	int ok = all != NULL;

	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (unsigned char)((i * 31 + 7) & 0xff);
	for (size_t len = 0; ok && len <= sizeof(pattern); len++)
		ok = sha256_hex(pattern, len, all + len * SHA256_HEX_LEN) == 0;
	ok = ok && sha256_hex(all, 301 * SHA256_HEX_LEN, hex) == 0 && !strcmp(hex, lengths_want);
	free(all);
	return ok;
}

static void
test_util_sha256__every_length_to_300(void **state)
{
	(void)state;
	assert_true(lengths_ok());
}

static void *
lengths_thread(void *arg)
{
	*(int *)arg = lengths_ok();
	return NULL;
}

/* The digest method is fetched once and shared: threads that start at once all get it. */
static void
test_util_sha256__threads(void **state)
{
	pthread_t t[4];
	int ok[4] = { 0 };

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, lengths_thread, &ok[i]), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_true(ok[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		/* first, so that the threads race for the first fetch */
		cmocka_unit_test(test_util_sha256__threads),
		cmocka_unit_test(test_util_sha256__fips_examples),
		cmocka_unit_test(test_util_sha256__every_length_to_300),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
