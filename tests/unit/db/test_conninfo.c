/* db: connection strings — libpq's check, and its messages scrubbed of the password. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* after setjmp.h, stdarg.h, stddef.h and stdint.h, which it needs */
#include <cmocka.h>

#include "db/db.h"

/* db_conninfo_check refuses conninfo; its message contains want and none of the secrets. */
static void
expect_refused(const char *conninfo, const char *want, const char *const *secrets)
{
	char msg[512] = "";

	if (db_conninfo_check(conninfo, msg, sizeof(msg)) == 0)
		fail_msg("accepted: %s", conninfo);
	if (!strstr(msg, want))
		fail_msg("%s: message '%s' lacks '%s'", conninfo, msg, want);
	for (size_t i = 0; secrets[i]; i++)
		if (strstr(msg, secrets[i]))
			fail_msg("%s: message '%s' shows the secret '%s'", conninfo, msg,
				 secrets[i]);
}

static void
test_db_conninfo__bad_uri_host_hides_the_password(void **state)
{
	static const char *const secrets[] = { "S3cretUriPw", NULL };

	(void)state;
	/* libpq quotes the whole URI here */
	expect_refused("postgresql://postgres:S3cretUriPw@[::1:55600/bench",
		       "\"postgresql://postgres:********@[::1:55600/bench\"", secrets);
}

static void
test_db_conninfo__bad_percent_escape_hides_the_password(void **state)
{
	static const char *const s1[] = { "S3cret", "zzPw", NULL };
	static const char *const s2[] = { "ab%zz", NULL };

	(void)state;
	/* libpq quotes the token it could not decode: the password itself */
	expect_refused("postgresql://postgres:S3cret%zzPw@localhost:55600/bench",
		       "invalid percent-encoded token", s1);
	expect_refused("postgresql://u@h/db?password=ab%zz", "invalid percent-encoded token", s2);
}

static void
test_db_conninfo__good_strings_pass(void **state)
{
	char msg[64] = "untouched";

	(void)state;
	assert_int_equal(
	    db_conninfo_check("host=/run/postgresql dbname=x password='a b'", msg, sizeof(msg)), 0);
	assert_int_equal(db_conninfo_check("postgresql://u:p%41ss@[::1]:5432/db", msg, sizeof(msg)),
			 0);
	assert_int_equal(db_conninfo_check("service=prod", NULL, 0), 0);
	assert_string_equal(msg, "untouched");
}

static void
test_db_conninfo__keyword_errors_name_the_problem(void **state)
{
	static const char *const secrets[] = { "hunter2", NULL };

	(void)state;
	expect_refused("host=x password=hunter2 nosuchkey=1", "invalid connection option", secrets);
	expect_refused("host=x password='hunter2", "unterminated quoted string", secrets);
}

static void
test_db_conninfo__scrub_raw_and_decoded(void **state)
{
	char msg[256];

	(void)state;
	/* percent-encoded in the URI, decoded in what libpq uses: both go */
	snprintf(msg, sizeof(msg), "a: \"p%%41ss\" b: \"pAss\" c: ok");
	db_conninfo_scrub("postgresql://u:p%41ss@h/db", msg, sizeof(msg));
	assert_string_equal(msg, "a: \"********\" b: \"********\" c: ok");

	/* keyword form, quoted with an escape: as written (quotes and all) and as meant */
	snprintf(msg, sizeof(msg), "x 'it\\'s' y it's z");
	db_conninfo_scrub("host=h password='it\\'s'", msg, sizeof(msg));
	assert_string_equal(msg, "x ******** y ******** z");

	/* sslpassword is a secret too; other values stay */
	snprintf(msg, sizeof(msg), "key pass k3y on host db1");
	db_conninfo_scrub("host=db1 sslpassword=k3y", msg, sizeof(msg));
	assert_string_equal(msg, "key pass ******** on host db1");

	/* nothing secret: nothing changes */
	snprintf(msg, sizeof(msg), "connection to server on socket \"/tmp/.s.PGSQL.1\" failed");
	db_conninfo_scrub("host=/tmp port=1", msg, sizeof(msg));
	assert_string_equal(msg, "connection to server on socket \"/tmp/.s.PGSQL.1\" failed");
}

static void
test_db_conninfo__connect_error_is_scrubbed(void **state)
{
	struct db *db = NULL;
	struct db_error err;

	(void)state;
	/* refused before any connection is tried: the message is libpq's, scrubbed */
	assert_int_equal(
	    db_connect(&db, "postgresql://postgres:S3cretUriPw@[::1:55600/bench", "test", &err),
	    -1);
	assert_null(db);
	assert_non_null(strstr(err.message, "cannot connect to the database: "));
	assert_non_null(strstr(err.message, "postgres:********@"));
	assert_null(strstr(err.message, "S3cretUriPw"));
}

static void
test_db_conninfo__redact(void **state)
{
	char *r;

	(void)state;
	r = db_conninfo_redact("host=h password=secret dbname=d");
	assert_null(strstr(r, "secret"));
	assert_non_null(strstr(r, "password=********"));
	free(r);
	r = db_conninfo_redact("postgresql://u:S3cret@[::1");
	assert_string_equal(r, "(unparsable connection string)");
	free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_db_conninfo__bad_uri_host_hides_the_password),
		cmocka_unit_test(test_db_conninfo__bad_percent_escape_hides_the_password),
		cmocka_unit_test(test_db_conninfo__good_strings_pass),
		cmocka_unit_test(test_db_conninfo__keyword_errors_name_the_problem),
		cmocka_unit_test(test_db_conninfo__scrub_raw_and_decoded),
		cmocka_unit_test(test_db_conninfo__connect_error_is_scrubbed),
		cmocka_unit_test(test_db_conninfo__redact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
