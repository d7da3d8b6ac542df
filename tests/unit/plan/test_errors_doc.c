/*
 * Files that are not a document the planner can read: syntax errors in
 * either language, bytes that are not UTF-8 text, files too large or too
 * deep, and the YAML features a plan does not use (aliases, tags, several
 * documents). Each gives one error at the offending byte.
 */
#include "plan_test.h"

#include <unistd.h>

#include "plan/doc.h"

#define Y "x.yaml"
#define J "x.json"
#define STEPS "steps: [{op: drop_table, table: t}]\n"

/* --- YAML -------------------------------------------------------------- */

static void
test_plan_errors_doc__yaml_syntax(void **state)
{
	(void)state;
	pt_expect_error(Y, PT_HEAD "  - op: drop_table\n    table: t: u\n", 5, 13,
			"YAML syntax: mapping values are not allowed in this context");
	/* an unclosed flow map is noticed where the file ends */
	pt_expect_error(
	    Y, PT_HEAD "  - {op: drop_table, table: t\n", 5, 1,
	    "YAML syntax: did not find expected ',' or '}' while parsing a flow mapping");
	pt_expect_error(
	    Y, "title: \"abc\nreason: r\n", 3, 1,
	    "YAML syntax: found unexpected end of stream while scanning a quoted scalar");
}

static void
test_plan_errors_doc__yaml_tab_indentation(void **state)
{
	(void)state;
	pt_expect_error(Y, "title: t\n\treason: r\n", 2, 1,
			"YAML syntax: found a tab character that violates indentation");
}

static void
test_plan_errors_doc__yaml_alias(void **state)
{
	static const struct pt_err both[] = {
		{ 1, 8, "found the anchor &t: anchors are not supported" },
		{ 2, 9, "expected a value, found an alias (*t): aliases are not supported" },
	};
	static const char text[] = "title: &t Coffee\nreason: *t\n" STEPS;

	(void)state;
	pt_expect_errors_n(Y, text, strlen(text), 2, both);
}

/* An anchor nothing refers to is refused too, on a scalar, a map or a list */
static void
test_plan_errors_doc__yaml_unused_anchor(void **state)
{
	(void)state;
	pt_expect_error(Y, "title: &t Coffee\nreason: r\n" STEPS, 1, 8,
			"expected a value without an anchor, found the anchor &t: anchors are "
			"not supported");
	pt_expect_error(Y, PT_HEAD "  - &step {op: drop_table, table: t}\n", 4, 5,
			"found the anchor &step");
	pt_expect_error(Y, "title: t\nreason: r\nsteps: &all\n  - {op: drop_table, table: t}\n", 3,
			8, "found the anchor &all");
	/* on a key too */
	pt_expect_error(Y, "&k title: t\nreason: r\n" STEPS, 1, 1, "found the anchor &k");
}

static void
test_plan_errors_doc__yaml_second_document(void **state)
{
	(void)state;
	pt_expect_error(Y, "title: t\nreason: r\n" STEPS "---\ntitle: u\n", 4, 1,
			"expected one YAML document, found a second one");
	pt_expect_error(Y, "---\ntitle: t\nreason: r\n" STEPS "...\n---\n", 6, 1,
			"expected one YAML document, found a second one");
}

static void
test_plan_errors_doc__yaml_tags(void **state)
{
	struct plan *p;

	(void)state;
	pt_expect_error(Y, "title: !!binary aGk=\nreason: r\n" STEPS, 1, 8,
			"expected an untagged value, found the tag tag:yaml.org,2002:binary");
	pt_expect_error(Y, "title: t\nreason: r\nsteps: !!set [{op: drop_table, table: t}]\n", 3, 8,
			"expected an untagged value, found the tag tag:yaml.org,2002:set");
	/* every tag, !!str and the bare ! included: a string is written in quotes */
	pt_expect_error(Y, "title: !!str 2024\nreason: r\n" STEPS, 1, 8,
			"expected an untagged value, found the tag tag:yaml.org,2002:str: tags are "
			"not supported (quote a value to make it a string)");
	pt_expect_error(Y, "title: ! 2024\nreason: r\n" STEPS, 1, 8,
			"expected an untagged value, found the tag !");
	pt_expect_error(Y, "title: t\nreason: !!str r\n" STEPS, 2, 9,
			"found the tag tag:yaml.org,2002:str");
	pt_expect_error(Y, "title: t\n!!str reason: r\n" STEPS, 2, 1,
			"found the tag tag:yaml.org,2002:str");
	pt_expect_error(Y, "title: t\nreason: r\nsteps: !!seq [{op: drop_table, table: t}]\n", 3, 8,
			"found the tag tag:yaml.org,2002:seq");
	p = pt_parse_ok(Y, "title: '2024'\nreason: r\n" STEPS);
	assert_string_equal(p->title, "2024");
	plan_free(p);
}

static void
test_plan_errors_doc__yaml_too_deep(void **state)
{
	char text[512];
	size_t n;

	(void)state;
	/* the root map and 63 lists: 64 levels are read (the step is then no map) */
	n = (size_t)snprintf(text, sizeof(text), "title: t\nreason: r\nsteps: ");
	memset(text + n, '[', 63);
	memset(text + n + 63, ']', 63);
	text[n + 126] = '\0';
	pt_expect_error(Y, text, 3, 9, "step: expected a map with an 'op' field, found a list");
	/* one more is refused where it opens */
	memset(text + n, '[', 64);
	memset(text + n + 64, ']', 64);
	text[n + 128] = '\0';
	pt_expect_error(Y, text, 3, 71, "nesting deeper than 64 levels");
}

static void
test_plan_errors_doc__yaml_very_deep_does_not_crash(void **state)
{
	size_t n = 200000;
	char *text = malloc(n + 4);

	(void)state;
	memcpy(text, "x: ", 3);
	memset(text + 3, '[', n);
	text[n + 3] = '\0';
	pt_expect_error(Y, text, 1, 67, "nesting deeper than 64 levels");
	free(text);
}

/* --- JSON -------------------------------------------------------------- */

static void
test_plan_errors_doc__json_syntax(void **state)
{
	(void)state;
	pt_expect_error(J, "{\"title\": \"t\",}", 1, 15,
			"JSON syntax: expected a key in double quotes, found '}'");
	pt_expect_error(J, "{\"title\" \"t\"}", 1, 10,
			"JSON syntax: expected ':' after the key, found '\"t\"}'");
	pt_expect_error(J, "{\"a\": [1, 2}", 1, 12,
			"JSON syntax: expected ',' or ']' after an item of the list, found '}'");
	pt_expect_error(
	    J, "{\"title\": tru}", 1, 11,
	    "JSON syntax: expected a value (an object, a list, a string, a number, true, "
	    "false or null), found 'tru}'");
}

static void
test_plan_errors_doc__json_syntax_position_on_later_lines(void **state)
{
	(void)state;
	pt_expect_error(
	    J, "{\n  \"title\": \"t\",\n  \"reason\": 'r'\n}\n", 3, 13,
	    "JSON syntax: expected a value (an object, a list, a string, a number, true, "
	    "false or null), found ''r''");
	/* columns count characters */
	pt_expect_error(J, "{\"\xc3\xa9\": [1 2]}", 1, 10,
			"JSON syntax: expected ',' or ']' after an item of the list, found '2]}'");
}

static void
test_plan_errors_doc__json_unexpected_end(void **state)
{
	(void)state;
	pt_expect_error(
	    J, "{\"title\": \"t\"", 1, 14,
	    "JSON syntax: expected ',' or '}' after a member of the object, found the end "
	    "of the file");
	pt_expect_error(
	    J, "{\"title\": \"t", 1, 13,
	    "JSON syntax: expected '\"' to close the string, found the end of the file");
	pt_expect_error(
	    J, "{\"title\":\n", 2, 1,
	    "JSON syntax: expected a value (an object, a list, a string, a number, true, "
	    "false or null), found the end of the file");
}

static void
test_plan_errors_doc__json_strict_numbers(void **state)
{
	(void)state;
	pt_expect_error(J, "{\"a\": +1}", 1, 7, "JSON syntax: expected a value");
	pt_expect_error(
	    J, "{\"a\": 01}", 1, 8,
	    "JSON syntax: expected ',' or '}' after a member of the object, found '1}'");
	pt_expect_error(J, "{\"a\": 1.}", 1, 9, "JSON syntax: expected a digit, found '}'");
	pt_expect_error(J, "{\"a\": -}", 1, 8, "JSON syntax: expected a digit, found '}'");
	pt_expect_error(J, "{\"a\": 1e+}", 1, 10, "JSON syntax: expected a digit, found '}'");
}

static void
test_plan_errors_doc__json_strict_strings(void **state)
{
	(void)state;
	pt_expect_error(J, "{\"a\": \"x\ny\"}", 1, 9,
			"JSON syntax: expected '\"' to close the string (a line break or control "
			"character inside a string must be escaped)");
	pt_expect_error(
	    J, "{\"a\": \"\\q\"}", 1, 8,
	    "JSON syntax: expected an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX), "
	    "found '\\q\"}'");
	pt_expect_error(J, "{\"a\": \"\\u12\"}", 1, 8,
			"JSON syntax: expected \\u and four hex digits, found '\\u12\"}'");
	pt_expect_error(J, "{\"a\": \"\\udc00\"}", 1, 8,
			"JSON syntax: expected a character, not a lone low surrogate");
	pt_expect_error(J, "{\"a\": \"\\ud83dx\"}", 1, 8,
			"JSON syntax: expected a high surrogate followed by a low one");
}

static void
test_plan_errors_doc__json_escapes_decoded(void **state)
{
	struct plan *p = pt_parse_ok(J, "{\"title\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\/\","
					"\"reason\": \"r\",\"steps\": [{\"op\": \"drop_table\", "
					"\"table\": \"t\"}]}");

	(void)state;
	assert_string_equal(p->title, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" /");
	plan_free(p);
}

static void
test_plan_errors_doc__json_trailing_garbage(void **state)
{
	(void)state;
	pt_expect_error(J, "{\"title\": \"t\"} x", 1, 16,
			"JSON syntax: expected the end of the file, found 'x'");
	pt_expect_error(J, "{}\n{}\n", 2, 1,
			"JSON syntax: expected the end of the file, found '{}'");
	pt_expect_error(J, "{} // the plan", 1, 4,
			"JSON syntax: expected the end of the file, found '// the plan'");
}

static void
test_plan_errors_doc__json_too_deep(void **state)
{
	char text[256];
	size_t n = 200000;
	char *big = malloc(n + 1);

	(void)state;
	memset(text, '[', 64);
	memset(text + 64, ']', 64);
	text[128] = '\0';
	pt_expect_error(J, text, 1, 1,
			"plan: expected a map with title, reason and waves or steps, found a list");
	memset(text, '[', 65);
	memset(text + 65, ']', 65);
	text[130] = '\0';
	pt_expect_error(J, text, 1, 65, "nesting deeper than 64 levels");
	/* far deeper input is refused without recursing through it */
	memset(big, '[', n);
	big[n] = '\0';
	pt_expect_error(J, big, 1, 65, "nesting deeper than 64 levels");
	free(big);
}

/* --- bytes ------------------------------------------------------------- */

static void
test_plan_errors_doc__nul_byte(void **state)
{
	static const char yaml[] = "title: t\nreason: r\0\n" STEPS;
	static const char json[] = "{\"title\": \"t\0\"}";

	(void)state;
	pt_expect_error_n(Y, yaml, sizeof(yaml) - 1, 2, 10,
			  "expected text, found a NUL byte (is this a binary file?)");
	pt_expect_error_n(J, json, sizeof(json) - 1, 1, 13, "expected text, found a NUL byte");
}

static void
test_plan_errors_doc__escaped_nul(void **state)
{
	(void)state;
	pt_expect_error(Y, "title: \"a\\0b\"\nreason: r\n" STEPS, 1, 8,
			"expected text, found an escaped NUL character");
	pt_expect_error(J, "{\"title\": \"a\\u0000b\"}", 1, 11,
			"expected text, found an escaped NUL character");
	pt_expect_error(J, "{\"ti\\u0000tle\": 1}", 1, 2,
			"expected text, found an escaped NUL character");
}

static void
test_plan_errors_doc__invalid_utf8(void **state)
{
	(void)state;
	/* Latin-1 é */
	pt_expect_error(Y, "title: caf\xe9\nreason: r\n" STEPS, 1, 11,
			"expected UTF-8 text, found the byte 0xe9");
	pt_expect_error(J, "{\"title\": \"caf\xe9\"}", 1, 15,
			"expected UTF-8 text, found the byte 0xe9");
	/* overlong '/', a UTF-16 surrogate, past U+10FFFF, cut short at the end */
	pt_expect_error(Y, "title: \xc0\xaf\n", 1, 8, "expected UTF-8 text, found the byte 0xc0");
	pt_expect_error(Y, "title: \xed\xa0\x80\n", 1, 8, "found the byte 0xed");
	pt_expect_error(Y, "title: \xf4\x90\x80\x80\n", 1, 8, "found the byte 0xf4");
	pt_expect_error(Y, "title: t\nreason: \xe2\x82", 2, 9, "found the byte 0xe2");
	/* after a good multi-byte character the column counts it as one */
	pt_expect_error(Y, "title: \xc3\xa9\x80\n", 1, 9, "found the byte 0x80");
}

static char *
padded(const char *text, size_t size, char pad)
{
	char *buf = malloc(size);
	size_t n = strlen(text);

	assert_true(n < size);
	memcpy(buf, text, n);
	memset(buf + n, pad, size - n);
	return buf;
}

static void
test_plan_errors_doc__oversized_file(void **state)
{
	const char *yaml = "title: t\nreason: r\n" STEPS "#";
	const char *json =
	    "{\"title\": \"t\", \"reason\": \"r\", \"steps\": [{\"op\": \"drop_table\", "
	    "\"table\": \"t\"}]}";
	char *buf;

	(void)state;
	/* at the limit it is read (a comment or blanks pad it) */
	buf = padded(yaml, DOC_MAX_BYTES, 'x');
	{
		struct diags d = DIAGS_INIT;
		struct plan *p = NULL;
		assert_int_equal(plan_parse(&p, Y, buf, DOC_MAX_BYTES, &d), 0);
		assert_int_equal(d.n, 0);
		plan_free(p);
		diags_clear(&d);
	}
	free(buf);
	buf = padded(yaml, DOC_MAX_BYTES + 1, 'x');
	pt_expect_error_n(Y, buf, DOC_MAX_BYTES + 1, 0, 0,
			  "file is 1048577 bytes; a plan may be at most 1048576 bytes");
	free(buf);
	buf = padded(json, DOC_MAX_BYTES, ' ');
	{
		struct diags d = DIAGS_INIT;
		struct plan *p = NULL;
		assert_int_equal(plan_parse(&p, J, buf, DOC_MAX_BYTES, &d), 0);
		plan_free(p);
		diags_clear(&d);
	}
	free(buf);
	buf = padded(json, DOC_MAX_BYTES + 1, ' ');
	pt_expect_error_n(J, buf, DOC_MAX_BYTES + 1, 0, 0,
			  "file is 1048577 bytes; a plan may be at most 1048576 bytes");
	free(buf);
}

/* plan_load reads the file, and refuses what it cannot read */
static void
test_plan_errors_doc__load(void **state)
{
	char dir[] = "/tmp/ts_plan_load_XXXXXX", path[256];
	struct diags d = DIAGS_INIT;
	struct plan *p = NULL;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/0001-first.yml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("title: t\nreason: r\n" STEPS, f);
	fclose(f);
	assert_int_equal(plan_load(&p, path, &d), 0);
	assert_string_equal(p->id, "0001-first");
	assert_string_equal(p->path, path);
	plan_free(p);
	p = NULL;
	snprintf(path, sizeof(path), "%s/missing.yaml", dir);
	assert_int_equal(plan_load(&p, path, &d), -1);
	assert_null(p);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.v[0].line, 0);
	assert_non_null(strstr(d.v[0].msg, "cannot read: No such file or directory"));
	diags_clear(&d);
	snprintf(path, sizeof(path), "%s/0001-first.yml", dir);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_errors_doc__yaml_syntax),
		cmocka_unit_test(test_plan_errors_doc__yaml_tab_indentation),
		cmocka_unit_test(test_plan_errors_doc__yaml_alias),
		cmocka_unit_test(test_plan_errors_doc__yaml_unused_anchor),
		cmocka_unit_test(test_plan_errors_doc__yaml_second_document),
		cmocka_unit_test(test_plan_errors_doc__yaml_tags),
		cmocka_unit_test(test_plan_errors_doc__yaml_too_deep),
		cmocka_unit_test(test_plan_errors_doc__yaml_very_deep_does_not_crash),
		cmocka_unit_test(test_plan_errors_doc__json_syntax),
		cmocka_unit_test(test_plan_errors_doc__json_syntax_position_on_later_lines),
		cmocka_unit_test(test_plan_errors_doc__json_unexpected_end),
		cmocka_unit_test(test_plan_errors_doc__json_strict_numbers),
		cmocka_unit_test(test_plan_errors_doc__json_strict_strings),
		cmocka_unit_test(test_plan_errors_doc__json_escapes_decoded),
		cmocka_unit_test(test_plan_errors_doc__json_trailing_garbage),
		cmocka_unit_test(test_plan_errors_doc__json_too_deep),
		cmocka_unit_test(test_plan_errors_doc__nul_byte),
		cmocka_unit_test(test_plan_errors_doc__escaped_nul),
		cmocka_unit_test(test_plan_errors_doc__invalid_utf8),
		cmocka_unit_test(test_plan_errors_doc__oversized_file),
		cmocka_unit_test(test_plan_errors_doc__load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
