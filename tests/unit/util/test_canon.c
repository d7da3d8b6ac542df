/* Canonical JSON and SHA-256: the bytes that step_sha and plan_checksum hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "util/canon.h"
#include "util/sha256.h"

static void
canon_of(const char *json, const char *want)
{
	cJSON *j = cJSON_Parse(json);
	struct strbuf sb = STRBUF_INIT;

	assert_non_null(j);
	assert_int_equal(canon_json(j, &sb), 0);
	assert_string_equal(sb_str(&sb), want);
	sb_free(&sb);
	cJSON_Delete(j);
}

static void
test_util_canon__sorts_keys_and_drops_space(void **state)
{
	(void)state;
	canon_of("{ \"b\": 1, \"a\": [ true, false, null ], \"c\": {\"z\":\"x\", \"y\": 2} }",
		 "{\"a\":[true,false,null],\"b\":1,\"c\":{\"y\":2,\"z\":\"x\"}}");
}

static void
test_util_canon__escapes_minimally(void **state)
{
	(void)state;
	canon_of("\"a\\\"b\\\\c\\n\\u0001\\u00e9/\"", "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9/\"");
}

static void
test_util_canon__refuses_fractions(void **state)
{
	cJSON *j = cJSON_Parse("[1.5]");
	struct strbuf sb = STRBUF_INIT;

	(void)state;
	assert_int_equal(canon_json(j, &sb), -1);
	sb_free(&sb);
	cJSON_Delete(j);
}

static void
test_util_canon__sha256_known_vector(void **state)
{
	char hex[65];

	(void)state;
	assert_int_equal(sha256_hex("abc", 3, hex), 0);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_canon__sorts_keys_and_drops_space),
		cmocka_unit_test(test_util_canon__escapes_minimally),
		cmocka_unit_test(test_util_canon__refuses_fractions),
		cmocka_unit_test(test_util_canon__sha256_known_vector),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
