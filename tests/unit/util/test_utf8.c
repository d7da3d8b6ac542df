/* utf8_check and text_position: where a file stops being text, as line:column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* after setjmp.h, stdarg.h, stddef.h and stdint.h, which it needs */
#include <cmocka.h>

#include "util/utf8.h"

#define CHECK(lit) utf8_check(lit, sizeof(lit) - 1)

static void
test_util_utf8__valid(void **state)
{
	(void)state;
	assert_int_equal(CHECK(""), 0);
	assert_int_equal(CHECK("plain ascii\n\t~"), 14);
	assert_int_equal(CHECK("caf\xc3\xa9"), 5);	/* U+00E9 */
	assert_int_equal(CHECK("\xc2\x80"), 2);		/* U+0080, smallest 2-byte */
	assert_int_equal(CHECK("\xe0\xa0\x80"), 3);	/* U+0800 */
	assert_int_equal(CHECK("\xe2\x98\x95"), 3);	/* U+2615 hot beverage */
	assert_int_equal(CHECK("\xed\x9f\xbf"), 3);	/* U+D7FF, just below surrogates */
	assert_int_equal(CHECK("\xee\x80\x80"), 3);	/* U+E000, just above */
	assert_int_equal(CHECK("\xef\xbf\xbf"), 3);	/* U+FFFF */
	assert_int_equal(CHECK("\xf0\x90\x80\x80"), 4); /* U+10000 */
	assert_int_equal(CHECK("\xf0\x9f\x98\x80"), 4); /* U+1F600 */
	assert_int_equal(CHECK("\xf4\x8f\xbf\xbf"), 4); /* U+10FFFF, the last */
}

static void
test_util_utf8__overlong(void **state)
{
	(void)state;
	assert_int_equal(CHECK("a\xc0\xaf"), 1);	 /* '/' in two bytes */
	assert_int_equal(CHECK("ab\xc1\xbf"), 2);	 /* U+007F in two bytes */
	assert_int_equal(CHECK("\xe0\x80\xaf"), 0);	 /* '/' in three */
	assert_int_equal(CHECK("\xe0\x9f\xbf"), 0);	 /* U+07FF in three */
	assert_int_equal(CHECK("x\xf0\x80\x80\xaf"), 1); /* '/' in four */
	assert_int_equal(CHECK("\xf0\x8f\xbf\xbf"), 0);	 /* U+FFFF in four */
}

static void
test_util_utf8__surrogates(void **state)
{
	(void)state;
	assert_int_equal(CHECK("ok\xed\xa0\x80"), 2);		/* U+D800 */
	assert_int_equal(CHECK("\xed\xbf\xbf"), 0);		/* U+DFFF */
	assert_int_equal(CHECK("\xed\xa0\xbd\xed\xb8\x80"), 0); /* a CESU-8 pair */
}

static void
test_util_utf8__beyond_u10ffff(void **state)
{
	(void)state;
	assert_int_equal(CHECK("\xf4\x90\x80\x80"), 0); /* U+110000 */
	assert_int_equal(CHECK("\xf5\x80\x80\x80"), 0);
	assert_int_equal(CHECK("\xf7\xbf\xbf\xbf"), 0);
	assert_int_equal(CHECK("\xf8\x88\x80\x80\x80"), 0); /* old 5-byte form */
	assert_int_equal(CHECK("\xfc\x84\x80\x80\x80\x80"), 0);
	assert_int_equal(CHECK("\xfe"), 0);
	assert_int_equal(CHECK("\xff"), 0);
}

static void
test_util_utf8__truncated_and_stray(void **state)
{
	(void)state;
	assert_int_equal(CHECK("\xc3"), 0);
	assert_int_equal(CHECK("ab\xe2\x82"), 2);
	assert_int_equal(CHECK("\xf0\x9f\x98"), 0);
	/* a character cut by len, though the bytes go on */
	assert_int_equal(utf8_check("\xc3\xa9", 1), 0);
	assert_int_equal(utf8_check("a\xf0\x9f\x98\x80", 4), 1);
	/* a continuation byte with no lead, a lead with no continuation */
	assert_int_equal(CHECK("\x80"), 0);
	assert_int_equal(CHECK("a\xbf"), 1);
	assert_int_equal(CHECK("\xe2\x28\xa1"), 0);
	assert_int_equal(CHECK("\xc3\xa9\xc3("), 2);
	/* a NUL is a valid (if unwelcome) character here; doc_precheck refuses it */
	assert_int_equal(utf8_check("a\0b", 3), 3);
}

static void
test_util_utf8__text_position(void **state)
{
	static const char text[] = "ab\ncaf\xc3\xa9 x\r\n\n\xe2\x98\x95y";
	unsigned line, col;

	(void)state;
	text_position(text, 0, &line, &col);
	assert_int_equal(line, 1);
	assert_int_equal(col, 1);
	text_position(text, 2, &line, &col); /* the first \n */
	assert_int_equal(line, 1);
	assert_int_equal(col, 3);
	text_position(text, 3, &line, &col);
	assert_int_equal(line, 2);
	assert_int_equal(col, 1);
	text_position(text, 8, &line, &col); /* ' ' after "café": é is one column */
	assert_int_equal(line, 2);
	assert_int_equal(col, 5);
	text_position(text, 9, &line, &col);
	assert_int_equal(col, 6);
	text_position(text, 12, &line, &col); /* after \r\n: a new line */
	assert_int_equal(line, 3);
	assert_int_equal(col, 1);
	text_position(text, 16, &line, &col); /* 'y' after ☕ */
	assert_int_equal(line, 4);
	assert_int_equal(col, 2);
	text_position(text, sizeof(text) - 1, &line, &col); /* the end */
	assert_int_equal(line, 4);
	assert_int_equal(col, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_utf8__valid),
		cmocka_unit_test(test_util_utf8__overlong),
		cmocka_unit_test(test_util_utf8__surrogates),
		cmocka_unit_test(test_util_utf8__beyond_u10ffff),
		cmocka_unit_test(test_util_utf8__truncated_and_stray),
		cmocka_unit_test(test_util_utf8__text_position),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
