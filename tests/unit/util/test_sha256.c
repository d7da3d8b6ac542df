/*
 * SHA-256: FIPS 180-4's examples and every length from 0 to 300 bytes (one,
 * two and several blocks, each padding case), through sha256_hex (the CPU's
 * SHA instructions where it has them) and the portable C alike.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "util/sha256.h"

typedef int hash_fn(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]);

static void
both_give(const void *data, size_t len, const char *want)
{
	char hex[SHA256_HEX_LEN + 1];

	assert_int_equal(sha256_hex(data, len, hex), 0);
	assert_string_equal(hex, want);
	assert_int_equal(sha256_hex_portable(data, len, hex), 0);
	assert_string_equal(hex, want);
}

static void
test_util_sha256__fips_examples(void **state)
{
	static const char two_blocks[] = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
					 "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	char *million = malloc(1000000);

	(void)state;
	both_give(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	both_give("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	both_give("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	both_give(two_blocks, strlen(two_blocks),
		  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
	assert_non_null(million);
	memset(million, 'a', 1000000);
	both_give(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(million);
}

/* The digests of pattern[0..L) for L = 0..300, concatenated in hex, hashed (Python's hashlib). */
static void
lengths_with(hash_fn *fn)
{
	unsigned char pattern[300];
	char *all = malloc(301 * SHA256_HEX_LEN + 1), hex[SHA256_HEX_LEN + 1];

	assert_non_null(all);
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (unsigned char)((i * 31 + 7) & 0xff);
	for (size_t len = 0; len <= sizeof(pattern); len++)
		assert_int_equal(fn(pattern, len, all + len * SHA256_HEX_LEN), 0);
	assert_int_equal(fn(all, 301 * SHA256_HEX_LEN, hex), 0);
	assert_string_equal(hex, "d7a9b90d98debd1b5175288331c6bd26e947bf41f61bb9808d40b97606258ca9");
	free(all);
}

static void
test_util_sha256__every_length_to_300(void **state)
{
	(void)state;
	lengths_with(sha256_hex);
	lengths_with(sha256_hex_portable);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_sha256__fips_examples),
		cmocka_unit_test(test_util_sha256__every_length_to_300),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
