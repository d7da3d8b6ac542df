/* proto: who may ask for a command, and what a refusal says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* after setjmp.h, stdarg.h, stddef.h and stdint.h, which it needs */
#include <cmocka.h>

#include "proto/proto.h"

/* A table entry that says nothing about access is for admins. */
static void
test_proto_access__zero_is_admin(void **state)
{
	struct {
		const char *name;
		enum proto_access access;
	} entry = { .name = "new-command" };

	(void)state;
	assert_int_equal(entry.access, PROTO_ADMIN);
	assert_int_equal(PROTO_ADMIN, 0);
	assert_int_not_equal(PROTO_READ, 0);
}

static void
test_proto_access__names(void **state)
{
	(void)state;
	assert_string_equal(proto_access_name(PROTO_READ), "read");
	assert_string_equal(proto_access_name(PROTO_ADMIN), "admin");
	/* anything else is not read */
	assert_string_equal(proto_access_name((enum proto_access)7), "admin");
}

static void
test_proto_access__forbidden_message(void **state)
{
	char msg[256];

	(void)state;
	proto_forbidden_message(msg, sizeof(msg), "abort", "taskslaps-admin", true);
	assert_string_equal(msg,
			    "not allowed: 'abort' needs root or the admin group taskslaps-admin");
	proto_forbidden_message(msg, sizeof(msg), "resume", "ops", false);
	assert_string_equal(
	    msg, "not allowed: 'resume' needs root (the admin group ops does not exist on "
		 "this system)");
	proto_forbidden_message(msg, sizeof(msg), "reconcile", NULL, false);
	assert_string_equal(msg,
			    "not allowed: 'reconcile' needs root (no admin_group is configured)");
}

/* The command comes from the wire: a long one is cut, a small buffer is not overrun. */
static void
test_proto_access__forbidden_message_bounded(void **state)
{
	char name[200], msg[256], small[16];

	(void)state;
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	proto_forbidden_message(msg, sizeof(msg), name, NULL, false);
	assert_non_null(strstr(msg, "' needs root"));
	assert_int_equal(strspn(msg + strlen("not allowed: '"), "x"), 64);
	memset(small, '#', sizeof(small));
	proto_forbidden_message(small, 8, "abort", NULL, false);
	assert_string_equal(small, "not all");
	assert_int_equal(small[8], '#');
	proto_forbidden_message(NULL, 0, "abort", NULL, false);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proto_access__zero_is_admin),
		cmocka_unit_test(test_proto_access__names),
		cmocka_unit_test(test_proto_access__forbidden_message),
		cmocka_unit_test(test_proto_access__forbidden_message_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
