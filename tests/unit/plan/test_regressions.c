/* Inputs that once crashed a reader (found by fuzzing); each stays a test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "plan_test.h"

/* A list used as a map key was reported but kept without text; the duplicate
 * check on the next key then compared against NULL (tests/fuzz/regressions). */
static void
test_plan_regressions__list_as_flow_map_key(void **state)
{
	(void)state;
	pt_expect_error("x.yaml", "{[a]: 1, b: 2}", 1, 2, "expected a plain key, found a list");
}

static void
test_plan_regressions__map_as_block_map_key(void **state)
{
	(void)state;
	pt_expect_error("x.yaml", "? [a]\n: 1\nb: 2\n", 1, 3, "expected a plain key, found a list");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_regressions__list_as_flow_map_key),
		cmocka_unit_test(test_plan_regressions__map_as_block_map_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
