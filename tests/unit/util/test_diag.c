/* Diagnostics: collected in order, counted by level, printed as GCC does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* after setjmp.h, stdarg.h, stddef.h and stdint.h, which it needs */
#include <cmocka.h>

#include "util/diag.h"

static void
format_is(const struct diag *dg, const char *want)
{
	char *s = diag_format(dg);

	assert_string_equal(s, want);
	free(s);
}

static void
test_util_diag__format(void **state)
{
	struct diags d = DIAGS_INIT;

	(void)state;
	diags_add(&d, DIAG_ERROR, "migrations/0007.yaml", 3, 7, "op: unknown op '%s'", "x");
	diags_add(&d, DIAG_WARNING, "migrations/0007.yaml", 12, 5, "sql: no lock_class_max");
	diags_add(&d, DIAG_ERROR, "big.yaml", 0, 0, "file is %d bytes", 2000000);
	diags_add(&d, DIAG_ERROR, NULL, 4, 2, "no file");
	diags_add(&d, DIAG_WARNING, NULL, 0, 0, "nothing to point at");
	format_is(&d.v[0], "migrations/0007.yaml:3:7: error: op: unknown op 'x'");
	format_is(&d.v[1], "migrations/0007.yaml:12:5: warning: sql: no lock_class_max");
	format_is(&d.v[2], "big.yaml: error: file is 2000000 bytes");
	format_is(&d.v[3], "4:2: error: no file");
	format_is(&d.v[4], "warning: nothing to point at");
	assert_int_equal(d.n, 5);
	assert_int_equal(d.nerrors, 3);
	assert_int_equal(d.nwarnings, 2);
	diags_clear(&d);
	assert_int_equal(d.n, 0);
	assert_int_equal(d.nerrors, 0);
	assert_int_equal(d.nwarnings, 0);
	assert_null(d.v);
	diags_clear(&d);
}

static void
test_util_diag__owns_its_strings(void **state)
{
	struct diags d = DIAGS_INIT;
	char file[] = "a.yaml", arg[] = "value";

	(void)state;
	diags_add(&d, DIAG_ERROR, file, 1, 1, "found '%s'", arg);
	file[0] = 'b';
	arg[0] = 'V';
	format_is(&d.v[0], "a.yaml:1:1: error: found 'value'");
	diags_clear(&d);
}

static void
test_util_diag__many_and_long(void **state)
{
	struct diags d = DIAGS_INIT;
	char *long_msg = malloc(5001);

	(void)state;
	memset(long_msg, 'm', 5000);
	long_msg[5000] = '\0';
	for (unsigned i = 1; i <= 100; i++)
		diags_add(&d, i % 2 ? DIAG_ERROR : DIAG_WARNING, "x.json", i, i + 1, "n%u", i);
	diags_add(&d, DIAG_ERROR, "x.json", 1, 1, "%s", long_msg);
	assert_int_equal(d.n, 101);
	assert_int_equal(d.nerrors, 51);
	assert_int_equal(d.nwarnings, 50);
	format_is(&d.v[41], "x.json:42:43: warning: n42");
	assert_int_equal(strlen(d.v[100].msg), 5000);
	free(long_msg);
	diags_clear(&d);
}

static void
test_util_diag__print(void **state)
{
	struct diags d = DIAGS_INIT;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	(void)state;
	assert_non_null(f);
	diags_add(&d, DIAG_ERROR, "x.yaml", 4, 9, "one");
	diags_add(&d, DIAG_WARNING, "x.yaml", 5, 5, "two");
	diags_print(&d, f);
	fclose(f);
	assert_string_equal(out, "x.yaml:4:9: error: one\nx.yaml:5:5: warning: two\n");
	free(out);
	diags_clear(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_diag__format),
		cmocka_unit_test(test_util_diag__owns_its_strings),
		cmocka_unit_test(test_util_diag__many_and_long),
		cmocka_unit_test(test_util_diag__print),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
