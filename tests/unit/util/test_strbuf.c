/* strbuf: a growable NUL-terminated byte buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* after setjmp.h, stdarg.h, stddef.h and stdint.h, which it needs */
#include <cmocka.h>

#include "util/strbuf.h"

static void
test_util_strbuf__empty(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	char *s;

	(void)state;
	assert_string_equal(sb_str(&sb), "");
	assert_int_equal(sb.len, 0);
	sb_reset(&sb);
	s = sb_detach(&sb);
	assert_string_equal(s, "");
	free(s);
	sb_free(&sb);
	sb_free(&sb);
}

static void
test_util_strbuf__add_puts_putc(void **state)
{
	struct strbuf sb = STRBUF_INIT;

	(void)state;
	sb_puts(&sb, "taskslaps");
	sb_putc(&sb, ' ');
	sb_add(&sb, "H3 badge", 2);
	assert_string_equal(sb_str(&sb), "taskslaps H3");
	assert_int_equal(sb.len, 12);
	/* bytes, NUL included, are kept as given */
	sb_add(&sb, "\0x", 2);
	assert_int_equal(sb.len, 14);
	assert_memory_equal(sb.buf, "taskslaps H3\0x", 15);
	sb_free(&sb);
	assert_null(sb.buf);
	assert_int_equal(sb.len, 0);
}

static void
test_util_strbuf__grows(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	char big[5000];

	(void)state;
	for (int i = 0; i < 10000; i++)
		sb_putc(&sb, (char)('a' + i % 26));
	assert_int_equal(sb.len, 10000);
	assert_true(sb.cap > sb.len);
	assert_int_equal(sb.buf[9999], 'a' + 9999 % 26);
	assert_int_equal(sb.buf[10000], '\0');
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sb_printf(&sb, "[%s|%d]", big, 42);
	assert_int_equal(sb.len, 10000 + 1 + 4999 + 4);
	assert_string_equal(sb.buf + 10000 + 1 + 4999, "|42]");
	sb_free(&sb);
}

static void
test_util_strbuf__printf(void **state)
{
	struct strbuf sb = STRBUF_INIT;

	(void)state;
	sb_printf(&sb, "%s:%u:%u: %s", "x.yaml", 3u, 7u, "error");
	sb_printf(&sb, "%s", "");
	sb_printf(&sb, " %05.1f%%", 2.25);
	assert_string_equal(sb_str(&sb), "x.yaml:3:7: error 002.2%");
	sb_free(&sb);
}

static void
test_util_strbuf__detach_and_reset(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	char *s;
	size_t cap;

	(void)state;
	sb_puts(&sb, "one");
	s = sb_detach(&sb);
	assert_string_equal(s, "one");
	assert_null(sb.buf);
	assert_int_equal(sb.len, 0);
	assert_int_equal(sb.cap, 0);
	free(s);
	sb_puts(&sb, "two");
	cap = sb.cap;
	sb_reset(&sb);
	assert_string_equal(sb_str(&sb), "");
	assert_int_equal(sb.cap, cap);
	sb_puts(&sb, "three");
	assert_string_equal(sb_str(&sb), "three");
	sb_free(&sb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_strbuf__empty),
		cmocka_unit_test(test_util_strbuf__add_puts_putc),
		cmocka_unit_test(test_util_strbuf__grows),
		cmocka_unit_test(test_util_strbuf__printf),
		cmocka_unit_test(test_util_strbuf__detach_and_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
