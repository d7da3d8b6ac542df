/* proto: the control protocol's lines, and the reader that cuts a stream into them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* after setjmp.h, stdarg.h, stddef.h and stdint.h, which it needs */
#include <cmocka.h>

#include "proto/proto.h"
#include "util/strbuf.h"
#include "util/utf8.h"

/* Decodes s (a C string) and expects failure with code and a message containing want. */
static void
expect_request_error(const char *s, size_t len, const char *code, const char *want)
{
	struct proto_request rq;
	const char *got = NULL;
	char msg[256] = "";

	if (proto_request_decode(s, len, &rq, &got, msg, sizeof(msg)) == 0)
		fail_msg("decoded, expected %s: %.80s", code, s);
	assert_non_null(got);
	if (strcmp(got, code) != 0)
		fail_msg("%.80s: code %s, expected %s (%s)", s, got, code, msg);
	if (!strstr(msg, want))
		fail_msg("%.80s: message '%s' lacks '%s'", s, msg, want);
	/* nothing to free after a failure, but freeing is harmless */
	assert_null(rq.cmd);
	assert_null(rq.args);
	proto_request_free(&rq);
}

static void
expect_request_error_str(const char *s, const char *code, const char *want)
{
	expect_request_error(s, strlen(s), code, want);
}

static void
test_proto_request__round_trip(void **state)
{
	struct proto_request rq;
	const char *code = NULL;
	char msg[128], *line;

	(void)state;
	line = proto_request_encode(7, "status", NULL);
	assert_string_equal(line, "{\"v\":1,\"id\":7,\"cmd\":\"status\"}\n");
	assert_int_equal(proto_request_decode(line, strlen(line), &rq, &code, msg, sizeof(msg)), 0);
	assert_int_equal(rq.v, TS_PROTO_VERSION);
	assert_int_equal(rq.id, 7);
	assert_string_equal(rq.cmd, "status");
	assert_null(rq.args);
	proto_request_free(&rq);
	assert_null(rq.cmd);
	proto_request_free(&rq); /* twice is fine */
	proto_request_free(NULL);
	free(line);
}

static void
test_proto_request__round_trip_args(void **state)
{
	struct proto_request rq;
	const char *code = NULL;
	cJSON *args = cJSON_CreateObject();
	char *line;

	(void)state;
	cJSON_AddStringToObject(args, "plan", "0007-coffee\ndependency \"é\"");
	cJSON_AddTrueToObject(args, "follow");
	line = proto_request_encode(PROTO_ID_MAX, "events", args);
	/* one line: the newline inside the plan id is escaped */
	assert_non_null(strchr(line, '\n'));
	assert_int_equal(strchr(line, '\n') - line, (long)strlen(line) - 1);
	assert_int_equal(proto_request_decode(line, strlen(line), &rq, &code, NULL, 0), 0);
	assert_true(rq.id == PROTO_ID_MAX);
	assert_string_equal(rq.cmd, "events");
	assert_non_null(rq.args);
	assert_string_equal(cJSON_GetObjectItem(rq.args, "plan")->valuestring,
			    "0007-coffee\ndependency \"é\"");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(rq.args, "follow")));
	proto_request_free(&rq);
	free(line);
}

static void
test_proto_request__framing_tolerated(void **state)
{
	static const char *const ok[] = {
		"{\"v\":1,\"id\":1,\"cmd\":\"status\"}",
		"{\"v\":1,\"id\":1,\"cmd\":\"status\"}\r\n",
		"  {\"v\":1,\"id\":1,\"cmd\":\"status\"}  \t",
		"{\"v\":1.0,\"id\":1e0,\"cmd\":\"status\",\"args\":null}",
		"{\"cmd\":\"status\",\"id\":1,\"v\":1,\"later\":[1,{\"x\":null}]}",
		"{\"v\":1,\"id\":0,\"cmd\":\"status\",\"args\":{}}",
	};
	struct proto_request rq;
	const char *code = NULL;
	char msg[128];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		if (proto_request_decode(ok[i], strlen(ok[i]), &rq, &code, msg, sizeof(msg)) < 0)
			fail_msg("%s: %s", ok[i], msg);
		assert_string_equal(rq.cmd, "status");
		proto_request_free(&rq);
	}
	/* empty args is an object; null args is none */
	assert_int_equal(proto_request_decode(ok[5], strlen(ok[5]), &rq, &code, msg, sizeof(msg)),
			 0);
	assert_true(cJSON_IsObject(rq.args));
	proto_request_free(&rq);
	assert_int_equal(proto_request_decode(ok[3], strlen(ok[3]), &rq, &code, msg, sizeof(msg)),
			 0);
	assert_null(rq.args);
	proto_request_free(&rq);
}

static void
test_proto_request__not_nul_terminated(void **state)
{
	/* the length is the line; what follows it in memory is not read as part of it */
	static const char buf[] = "{\"v\":1,\"id\":3,\"cmd\":\"abort\"}GARBAGE";
	struct proto_request rq;
	const char *code = NULL;

	(void)state;
	assert_int_equal(proto_request_decode(buf, strlen(buf) - 7, &rq, &code, NULL, 0), 0);
	assert_string_equal(rq.cmd, "abort");
	assert_int_equal(rq.id, 3);
	proto_request_free(&rq);
	expect_request_error_str(buf, TS_PROTO_E_BAD_REQUEST, "text after the value");
}

static void
test_proto_request__bad_json(void **state)
{
	(void)state;
	expect_request_error_str("", TS_PROTO_E_BAD_REQUEST, "empty line");
	expect_request_error_str("\n", TS_PROTO_E_BAD_REQUEST, "empty line");
	expect_request_error_str("   ", TS_PROTO_E_BAD_REQUEST, "empty line");
	expect_request_error_str("status", TS_PROTO_E_BAD_REQUEST,
				 "not JSON: syntax error at byte");
	expect_request_error_str("{\"v\":1", TS_PROTO_E_BAD_REQUEST, "not JSON");
	expect_request_error_str("{\"v\":1,}", TS_PROTO_E_BAD_REQUEST, "not JSON");
	expect_request_error_str("{} {}", TS_PROTO_E_BAD_REQUEST, "text after the value at byte 3");
	expect_request_error_str("{}\n{}", TS_PROTO_E_BAD_REQUEST, "text after the value");
	expect_request_error_str("[1,2]", TS_PROTO_E_BAD_REQUEST, "expected a JSON object");
	expect_request_error_str("\"status\"", TS_PROTO_E_BAD_REQUEST, "expected a JSON object");
	expect_request_error_str("null", TS_PROTO_E_BAD_REQUEST, "expected a JSON object");
	expect_request_error_str("42", TS_PROTO_E_BAD_REQUEST, "expected a JSON object");
}

static void
test_proto_request__bad_bytes(void **state)
{
	static const char nul[] = "{\"v\":1,\"id\":1,\"cmd\":\"st\0tus\"}";
	char *big;

	(void)state;
	expect_request_error(nul, sizeof(nul) - 1, TS_PROTO_E_BAD_REQUEST, "NUL byte at offset 23");
	expect_request_error_str("{\"v\":1,\"id\":1,\"cmd\":\"\xff\"}", TS_PROTO_E_BAD_REQUEST,
				 "invalid UTF-8 at byte 21");
	expect_request_error_str("{\"v\":1,\"id\":1,\"cmd\":\"\xc0\xaf\"}", TS_PROTO_E_BAD_REQUEST,
				 "invalid UTF-8");
	/* one byte past the limit; the limit itself is fine for the framing */
	big = malloc(TS_PROTO_MAX_LINE + 2);
	assert_non_null(big);
	memset(big, ' ', TS_PROTO_MAX_LINE + 1);
	big[0] = '{';
	big[TS_PROTO_MAX_LINE - 1] = '}';
	big[TS_PROTO_MAX_LINE + 1] = '\0';
	expect_request_error(big, TS_PROTO_MAX_LINE + 1, TS_PROTO_E_BAD_REQUEST, "line too long");
	/* exactly the limit: framing passes, the object is empty */
	expect_request_error(big, TS_PROTO_MAX_LINE, TS_PROTO_E_BAD_REQUEST, "missing \"v\"");
	/* the limit plus a newline is still the limit */
	big[TS_PROTO_MAX_LINE] = '\n';
	expect_request_error(big, TS_PROTO_MAX_LINE + 1, TS_PROTO_E_BAD_REQUEST, "missing \"v\"");
	free(big);
}

static void
test_proto_request__bad_fields(void **state)
{
	(void)state;
	expect_request_error_str("{\"id\":1,\"cmd\":\"status\"}", TS_PROTO_E_BAD_REQUEST,
				 "missing \"v\"");
	expect_request_error_str("{\"v\":\"1\",\"id\":1,\"cmd\":\"status\"}",
				 TS_PROTO_E_BAD_REQUEST, "\"v\": expected an integer");
	expect_request_error_str("{\"v\":1.5,\"id\":1,\"cmd\":\"status\"}", TS_PROTO_E_BAD_REQUEST,
				 "\"v\": expected an integer");
	expect_request_error_str("{\"v\":null,\"id\":1,\"cmd\":\"status\"}", TS_PROTO_E_BAD_REQUEST,
				 "\"v\": expected an integer");
	expect_request_error_str("{\"v\":2,\"id\":1,\"cmd\":\"status\"}", TS_PROTO_E_VERSION,
				 "protocol version 2 is not supported (this end speaks 1)");
	expect_request_error_str("{\"v\":0,\"id\":1,\"cmd\":\"status\"}", TS_PROTO_E_VERSION,
				 "version 0");
	expect_request_error_str("{\"v\":1e300,\"id\":1,\"cmd\":\"status\"}", TS_PROTO_E_VERSION,
				 "version 1e+300");
	expect_request_error_str("{\"v\":1,\"cmd\":\"status\"}", TS_PROTO_E_BAD_REQUEST,
				 "missing \"id\"");
	expect_request_error_str("{\"v\":1,\"id\":\"7\",\"cmd\":\"status\"}",
				 TS_PROTO_E_BAD_REQUEST,
				 "\"id\": expected an integer from 0 to 9007199254740991");
	expect_request_error_str("{\"v\":1,\"id\":-1,\"cmd\":\"status\"}", TS_PROTO_E_BAD_REQUEST,
				 "\"id\"");
	expect_request_error_str("{\"v\":1,\"id\":1.5,\"cmd\":\"status\"}", TS_PROTO_E_BAD_REQUEST,
				 "\"id\"");
	expect_request_error_str("{\"v\":1,\"id\":1e300,\"cmd\":\"status\"}",
				 TS_PROTO_E_BAD_REQUEST, "\"id\"");
	expect_request_error_str("{\"v\":1,\"id\":9007199254740992,\"cmd\":\"status\"}",
				 TS_PROTO_E_BAD_REQUEST, "\"id\"");
	expect_request_error_str("{\"v\":1,\"id\":true,\"cmd\":\"status\"}", TS_PROTO_E_BAD_REQUEST,
				 "\"id\"");
	expect_request_error_str("{\"v\":1,\"id\":1}", TS_PROTO_E_BAD_REQUEST, "missing \"cmd\"");
	expect_request_error_str("{\"v\":1,\"id\":1,\"cmd\":\"\"}", TS_PROTO_E_BAD_REQUEST,
				 "\"cmd\": expected a non-empty string");
	expect_request_error_str("{\"v\":1,\"id\":1,\"cmd\":5}", TS_PROTO_E_BAD_REQUEST,
				 "\"cmd\": expected a non-empty string");
	expect_request_error_str("{\"v\":1,\"id\":1,\"cmd\":[\"status\"]}", TS_PROTO_E_BAD_REQUEST,
				 "\"cmd\"");
	expect_request_error_str("{\"v\":1,\"id\":1,\"cmd\":\"x\",\"args\":[]}",
				 TS_PROTO_E_BAD_REQUEST, "\"args\": expected an object");
	expect_request_error_str("{\"v\":1,\"id\":1,\"cmd\":\"x\",\"args\":\"plan\"}",
				 TS_PROTO_E_BAD_REQUEST, "\"args\": expected an object");
	expect_request_error_str("{\"v\":1,\"id\":1,\"cmd\":\"x\",\"args\":false}",
				 TS_PROTO_E_BAD_REQUEST, "\"args\"");
}

static void
test_proto_request__duplicate_keys(void **state)
{
	struct proto_request rq;
	struct strbuf sb = STRBUF_INIT;
	const char *code = NULL;
	char msg[256];

	(void)state;
	/* first-wins would run "status" here; another reader would run "abort" */
	expect_request_error_str("{\"v\":1,\"id\":3,\"cmd\":\"status\",\"cmd\":\"abort\"}",
				 TS_PROTO_E_BAD_REQUEST, "duplicate key \"cmd\"");
	expect_request_error_str("{\"v\":1,\"id\":3,\"id\":4,\"cmd\":\"status\"}",
				 TS_PROTO_E_BAD_REQUEST, "duplicate key \"id\"");
	/* inside args, and deeper */
	expect_request_error_str("{\"v\":1,\"id\":1,\"cmd\":\"resume\",\"args\":{\"plan\":\"a\","
				 "\"plan\":\"b\"}}",
				 TS_PROTO_E_BAD_REQUEST, "duplicate key \"plan\"");
	expect_request_error_str("{\"v\":1,\"id\":1,\"cmd\":\"x\",\"args\":{\"l\":[{\"k\":1},"
				 "{\"k\":1,\"k\":2}]}}",
				 TS_PROTO_E_BAD_REQUEST, "duplicate key \"k\"");
	/* the same key in different objects is fine */
	assert_int_equal(
	    proto_request_decode("{\"v\":1,\"id\":1,\"cmd\":\"x\",\"args\":{\"id\":1,"
				 "\"l\":[{\"k\":1},{\"k\":2}]}}",
				 strlen("{\"v\":1,\"id\":1,\"cmd\":\"x\",\"args\":{\"id\":1,"
					"\"l\":[{\"k\":1},{\"k\":2}]}}"),
				 &rq, &code, msg, sizeof(msg)),
	    0);
	proto_request_free(&rq);

	/* many keys, the duplicate last: found (and fast: the keys are sorted) */
	sb_puts(&sb, "{\"v\":1,\"id\":1,\"cmd\":\"x\",\"args\":{");
	for (int i = 0; i < 50000; i++)
		sb_printf(&sb, "\"k%d\":0,", i);
	sb_puts(&sb, "\"k0\":1}}");
	expect_request_error(sb.buf, sb.len, TS_PROTO_E_BAD_REQUEST, "duplicate key \"k0\"");
	sb_free(&sb);
}

static void
test_proto_request__error_keeps_id(void **state)
{
	static const char *const lines[] = {
		"{\"v\":2,\"id\":41,\"cmd\":\"status\"}",
		"{\"v\":1,\"id\":41,\"cmd\":\"\"}",
		"{\"v\":1,\"id\":41,\"cmd\":\"x\",\"args\":1}",
	};
	struct proto_request rq;
	const char *code;

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(*lines); i++) {
		assert_int_equal(
		    proto_request_decode(lines[i], strlen(lines[i]), &rq, &code, NULL, 0), -1);
		assert_int_equal(rq.id, 41);
	}
	/* an unreadable id leaves 0 */
	assert_int_equal(proto_request_decode("{\"v\":1,\"id\":-4}", 16, &rq, &code, NULL, 0), -1);
	assert_int_equal(rq.id, 0);
	assert_int_equal(proto_request_decode("nope", 4, &rq, &code, NULL, 0), -1);
	assert_int_equal(rq.id, 0);
}

static void
test_proto_request__message_fits_small_buffer(void **state)
{
	struct proto_request rq;
	const char *code;
	char msg[8];

	(void)state;
	assert_int_equal(proto_request_decode("{\"v\":9,\"id\":1,\"cmd\":\"s\"}", 24, &rq, &code,
					      msg, sizeof(msg)),
			 -1);
	assert_string_equal(code, TS_PROTO_E_VERSION);
	assert_int_equal(strlen(msg), sizeof(msg) - 1);
}

static void
test_proto_reply__encode(void **state)
{
	cJSON *res = cJSON_CreateObject();
	char *s;

	(void)state;
	cJSON_AddStringToObject(res, "message", "reconciling now");
	s = proto_reply_result(7, res);
	assert_string_equal(s, "{\"v\":1,\"id\":7,\"result\":{\"message\":\"reconciling now\"}}\n");
	free(s);
	s = proto_reply_result(8, NULL);
	assert_string_equal(s, "{\"v\":1,\"id\":8,\"result\":{}}\n");
	free(s);
	s = proto_reply_error(3, TS_PROTO_E_FORBIDDEN, "not allowed: abort");
	assert_string_equal(s, "{\"v\":1,\"id\":3,\"error\":{\"code\":\"forbidden\",\"message\":"
			       "\"not allowed: abort\"}}\n");
	free(s);
	s = proto_reply_error(0, TS_PROTO_E_BAD_REQUEST, NULL);
	assert_string_equal(
	    s, "{\"v\":1,\"id\":0,\"error\":{\"code\":\"bad_request\",\"message\":\"\"}}\n");
	free(s);
	s = proto_reply_event(9, NULL);
	assert_string_equal(s, "{\"v\":1,\"id\":9,\"event\":{}}\n");
	free(s);
	s = proto_reply_end(9);
	assert_string_equal(s, "{\"v\":1,\"id\":9,\"end\":true}\n");
	free(s);
}

static void
test_proto_reply__round_trip(void **state)
{
	struct proto_reply r;
	cJSON *ev = cJSON_CreateObject(), *res = cJSON_CreateObject();
	char *s, msg[128];

	(void)state;
	cJSON_AddStringToObject(ev, "type", "step.progress");
	cJSON_AddItemToObject(ev, "metrics", cJSON_CreateObject());
	s = proto_reply_event(12, ev);
	assert_int_equal(proto_reply_decode(s, strlen(s), &r, msg, sizeof(msg)), 0);
	assert_int_equal(r.kind, PROTO_EVENT);
	assert_int_equal(r.id, 12);
	assert_string_equal(cJSON_GetObjectItem(r.payload, "type")->valuestring, "step.progress");
	assert_null(r.code);
	proto_reply_free(&r);
	free(s);

	cJSON_AddStringToObject(res, "health", "healthy");
	s = proto_reply_result(13, res);
	assert_int_equal(proto_reply_decode(s, strlen(s), &r, msg, sizeof(msg)), 0);
	assert_int_equal(r.kind, PROTO_RESULT);
	assert_int_equal(r.id, 13);
	assert_string_equal(cJSON_GetObjectItem(r.payload, "health")->valuestring, "healthy");
	proto_reply_free(&r);
	free(s);

	s = proto_reply_error(14, TS_PROTO_E_NOT_FOUND, "no plan 0009 at the branch tip");
	assert_int_equal(proto_reply_decode(s, strlen(s), &r, msg, sizeof(msg)), 0);
	assert_int_equal(r.kind, PROTO_ERROR);
	assert_int_equal(r.id, 14);
	assert_string_equal(r.code, "not_found");
	assert_string_equal(r.message, "no plan 0009 at the branch tip");
	assert_null(r.payload);
	proto_reply_free(&r);
	proto_reply_free(&r);
	proto_reply_free(NULL);
	free(s);

	s = proto_reply_end(15);
	assert_int_equal(proto_reply_decode(s, strlen(s), &r, msg, sizeof(msg)), 0);
	assert_int_equal(r.kind, PROTO_END);
	assert_int_equal(r.id, 15);
	assert_null(r.payload);
	proto_reply_free(&r);
	free(s);

	/* a result may be any JSON value; an error's message may be missing */
	s = "{\"v\":1,\"id\":1,\"result\":[1]}";
	assert_int_equal(proto_reply_decode(s, strlen(s), &r, NULL, 0), 0);
	assert_true(cJSON_IsArray(r.payload));
	proto_reply_free(&r);
	s = "{\"v\":1,\"id\":2,\"error\":{\"code\":\"conflict\"}}";
	assert_int_equal(proto_reply_decode(s, strlen(s), &r, NULL, 0), 0);
	assert_string_equal(r.message, "");
	proto_reply_free(&r);

	assert_string_equal(proto_reply_kind_name(PROTO_RESULT), "result");
	assert_string_equal(proto_reply_kind_name(PROTO_ERROR), "error");
	assert_string_equal(proto_reply_kind_name(PROTO_EVENT), "event");
	assert_string_equal(proto_reply_kind_name(PROTO_END), "end");
}

static void
test_proto_reply__decode_errors(void **state)
{
	static const struct {
		const char *line, *want;
	} bad[] = {
		{ "", "empty line" },
		{ "{\"v\":1,\"id\":1,\"end\":tru", "not JSON" },
		{ "[]", "expected a JSON object" },
		{ "{\"id\":1,\"end\":true}", "missing \"v\"" },
		{ "{\"v\":2,\"id\":1,\"end\":true}", "protocol version 2" },
		{ "{\"v\":1,\"end\":true}", "\"id\"" },
		{ "{\"v\":1,\"id\":-3,\"end\":true}", "\"id\"" },
		{ "{\"v\":1,\"id\":1}", "expected one of result, error, event, end" },
		{ "{\"v\":1,\"id\":1,\"result\":{},\"end\":true}", "found result and end" },
		{ "{\"v\":1,\"id\":1,\"error\":\"forbidden\"}", "\"error\": expected an object" },
		{ "{\"v\":1,\"id\":1,\"error\":{\"message\":\"x\"}}", "string \"code\"" },
		{ "{\"v\":1,\"id\":1,\"error\":{\"code\":\"\"}}", "string \"code\"" },
		{ "{\"v\":1,\"id\":1,\"error\":{\"code\":\"x\",\"message\":5}}", "error.message" },
		{ "{\"v\":1,\"id\":1,\"event\":[]}", "\"event\": expected an object" },
		{ "{\"v\":1,\"id\":1,\"end\":false}", "\"end\": expected true" },
		{ "{\"v\":1,\"id\":1,\"end\":1}", "\"end\": expected true" },
	};
	struct proto_reply r;
	char msg[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		memset(&r, 0x5a, sizeof(r));
		msg[0] = '\0';
		if (proto_reply_decode(bad[i].line, strlen(bad[i].line), &r, msg, sizeof(msg)) == 0)
			fail_msg("decoded: %s", bad[i].line);
		if (!strstr(msg, bad[i].want))
			fail_msg("%s: message '%s' lacks '%s'", bad[i].line, msg, bad[i].want);
		/* untouched on failure */
		assert_int_equal(((unsigned char *)&r)[0], 0x5a);
	}
}

static void
test_proto_reply__long_message_cut(void **state)
{
	size_t n = 10000;
	char *m = malloc(2 * n + 1), *s;
	struct proto_reply r;

	(void)state;
	assert_non_null(m);
	for (size_t i = 0; i < n; i++)
		memcpy(m + 2 * i, "\xc3\xa9", 2); /* é */
	m[2 * n] = '\0';
	s = proto_reply_error(1, TS_PROTO_E_CONFLICT, m);
	assert_int_equal(proto_reply_decode(s, strlen(s), &r, NULL, 0), 0);
	assert_true(strlen(r.message) <= 4096);
	assert_true(strlen(r.message) >= 4094);
	assert_int_equal(utf8_check(r.message, strlen(r.message)), strlen(r.message));
	proto_reply_free(&r);
	free(s);
	free(m);
}

static void
test_proto_reply__too_big_becomes_error(void **state)
{
	cJSON *res = cJSON_CreateObject();
	char *big = malloc(TS_PROTO_MAX_LINE + 1), *s;
	struct proto_reply r;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', TS_PROTO_MAX_LINE);
	big[TS_PROTO_MAX_LINE] = '\0';
	cJSON_AddStringToObject(res, "blob", big);
	free(big);
	s = proto_reply_result(5, res);
	assert_true(strlen(s) <= TS_PROTO_MAX_LINE + 1);
	assert_int_equal(proto_reply_decode(s, strlen(s), &r, NULL, 0), 0);
	assert_int_equal(r.kind, PROTO_ERROR);
	assert_int_equal(r.id, 5);
	assert_string_equal(r.code, TS_PROTO_E_UNAVAILABLE);
	assert_non_null(strstr(r.message, "does not fit"));
	proto_reply_free(&r);
	free(s);
}

/* Expects the next line of r to be want. */
static void
expect_line(struct proto_reader *r, const char *want)
{
	const char *line = NULL;
	size_t len = 0;

	assert_int_equal(proto_reader_next(r, &line, &len), PROTO_LINE);
	assert_int_equal(len, strlen(want));
	assert_string_equal(line, want);
}

static void
test_proto_reader__partial_lines(void **state)
{
	static const char stream[] = "{\"v\":1,\"id\":1,\"end\":true}\n\nsecond line\nthird";
	struct proto_reader r;
	const char *line;
	size_t len, got = 0;

	(void)state;
	/* byte by byte: a line comes out only once its newline has come */
	proto_reader_init(&r, 0);
	assert_int_equal(r.max, TS_PROTO_MAX_LINE);
	assert_int_equal(proto_reader_next(&r, &line, &len), PROTO_NEED_MORE); /* nothing yet */
	assert_int_equal(proto_reader_pending(&r), 0);
	for (size_t i = 0; i < sizeof(stream) - 1; i++) {
		proto_reader_feed(&r, stream + i, 1);
		while (proto_reader_next(&r, &line, &len) == PROTO_LINE) {
			if (got == 0)
				assert_string_equal(line, "{\"v\":1,\"id\":1,\"end\":true}");
			else if (got == 1)
				assert_int_equal(len, 0);
			else
				assert_string_equal(line, "second line");
			got++;
		}
	}
	assert_int_equal(got, 3);
	assert_int_equal(proto_reader_pending(&r), 5);
	assert_int_equal(proto_reader_next(&r, &line, &len), PROTO_NEED_MORE);
	proto_reader_feed(&r, " and more\nfour", 14);
	expect_line(&r, "third and more");
	assert_int_equal(proto_reader_next(&r, &line, &len), PROTO_NEED_MORE);
	assert_int_equal(proto_reader_pending(&r), 4);
	proto_reader_feed(&r, "\n", 1);
	expect_line(&r, "four");
	assert_int_equal(proto_reader_pending(&r), 0);
	assert_int_equal(proto_reader_next(&r, &line, &len), PROTO_NEED_MORE);
	proto_reader_feed(&r, "", 0);
	assert_int_equal(proto_reader_next(&r, &line, &len), PROTO_NEED_MORE);
	proto_reader_free(&r);
	proto_reader_free(&r);
	proto_reader_free(NULL);
}

static void
test_proto_reader__many_lines_one_feed(void **state)
{
	struct proto_reader r;
	char buf[64];

	(void)state;
	proto_reader_init(&r, 0);
	proto_reader_feed(&r, "a\nbb\r\nccc\n", 10);
	expect_line(&r, "a");
	expect_line(&r, "bb\r"); /* the reader cuts at "\n"; the decoders allow the "\r" */
	expect_line(&r, "ccc");
	/* lines that reach the buffer's growth points */
	for (int i = 0; i < 2000; i++) {
		snprintf(buf, sizeof(buf), "line %d\n", i);
		proto_reader_feed(&r, buf, strlen(buf));
	}
	for (int i = 0; i < 2000; i++) {
		snprintf(buf, sizeof(buf), "line %d", i);
		expect_line(&r, buf);
	}
	proto_reader_free(&r);
}

static void
test_proto_reader__oversized_line(void **state)
{
	struct proto_reader r;
	const char *line;
	size_t len;

	(void)state;
	proto_reader_init(&r, 8);
	/* exactly the maximum is a line */
	proto_reader_feed(&r, "12345678\n", 9);
	expect_line(&r, "12345678");
	/* one more, with its newline in the same feed: refused, the next line still read */
	proto_reader_feed(&r, "123456789\nok\n", 13);
	assert_int_equal(proto_reader_next(&r, &line, &len), PROTO_TOO_LONG);
	expect_line(&r, "ok");
	/* no newline within the maximum: refused at once, and the rest dropped as it comes */
	proto_reader_feed(&r, "0123456789", 10);
	assert_int_equal(proto_reader_next(&r, &line, &len), PROTO_TOO_LONG);
	assert_int_equal(proto_reader_pending(&r), 0);
	assert_int_equal(proto_reader_next(&r, &line, &len), PROTO_NEED_MORE);
	proto_reader_feed(&r, "still the same line", 19);
	assert_int_equal(proto_reader_pending(&r), 0);
	assert_int_equal(proto_reader_next(&r, &line, &len), PROTO_NEED_MORE);
	proto_reader_feed(&r, " end\nafter\n", 11);
	expect_line(&r, "after");
	assert_int_equal(proto_reader_next(&r, &line, &len), PROTO_NEED_MORE);
	proto_reader_free(&r);
}

static void
test_proto_reader__read_fd(void **state)
{
	struct proto_reader r;
	const char *line;
	size_t len;
	int p[2];
	char *junk;
	size_t junk_len = 300000;
	ssize_t n;
	int lines = 0, toolong = 0;

	(void)state;
	assert_int_equal(pipe(p), 0);
	proto_reader_init(&r, 1000);
	assert_int_equal(write(p[1], "{\"v\":1,", 7), 7);
	assert_int_equal(proto_reader_read(&r, p[0]), 7);
	assert_int_equal(proto_reader_next(&r, &line, &len), PROTO_NEED_MORE);
	assert_int_equal(write(p[1], "\"id\":2,\"end\":true}\nnext", 23), 23);
	assert_int_equal(proto_reader_read(&r, p[0]), 23);
	expect_line(&r, "{\"v\":1,\"id\":2,\"end\":true}");
	assert_int_equal(proto_reader_pending(&r), 4);
	assert_int_equal(write(p[1], "\n", 1), 1);
	assert_int_equal(proto_reader_read(&r, p[0]), 1);
	expect_line(&r, "next");
	close(p[1]);
	assert_int_equal(proto_reader_read(&r, p[0]), 0); /* EOF */
	close(p[0]);

	/* a peer that never sends a newline: memory stays near max + one read */
	assert_int_equal(pipe(p), 0);
	junk = malloc(junk_len);
	assert_non_null(junk);
	memset(junk, 'j', junk_len);
	if (fork() == 0) {
		ssize_t off = 0;
		close(p[0]);
		while (off < (ssize_t)junk_len) {
			ssize_t w = write(p[1], junk + off, junk_len - (size_t)off);
			if (w <= 0)
				_exit(1);
			off += w;
		}
		if (write(p[1], "\nlast\n", 6) != 6)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	while ((n = proto_reader_read(&r, p[0])) > 0) {
		int k;

		assert_true(r.cap <= 256 * 1024);
		while ((k = proto_reader_next(&r, &line, &len)) != PROTO_NEED_MORE) {
			if (k == PROTO_TOO_LONG)
				toolong++;
			else {
				assert_string_equal(line, "last");
				lines++;
			}
		}
	}
	assert_int_equal(n, 0);
	assert_int_equal(wait(NULL) > 0, 1);
	assert_int_equal(toolong, 1);
	assert_int_equal(lines, 1);
	close(p[0]);
	free(junk);
	/* a closed descriptor is an error, -EBADF */
	assert_int_equal(proto_reader_read(&r, p[0]), -EBADF);
	proto_reader_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proto_request__round_trip),
		cmocka_unit_test(test_proto_request__round_trip_args),
		cmocka_unit_test(test_proto_request__framing_tolerated),
		cmocka_unit_test(test_proto_request__not_nul_terminated),
		cmocka_unit_test(test_proto_request__bad_json),
		cmocka_unit_test(test_proto_request__bad_bytes),
		cmocka_unit_test(test_proto_request__bad_fields),
		cmocka_unit_test(test_proto_request__duplicate_keys),
		cmocka_unit_test(test_proto_request__error_keeps_id),
		cmocka_unit_test(test_proto_request__message_fits_small_buffer),
		cmocka_unit_test(test_proto_reply__encode),
		cmocka_unit_test(test_proto_reply__round_trip),
		cmocka_unit_test(test_proto_reply__decode_errors),
		cmocka_unit_test(test_proto_reply__long_message_cut),
		cmocka_unit_test(test_proto_reply__too_big_becomes_error),
		cmocka_unit_test(test_proto_reader__partial_lines),
		cmocka_unit_test(test_proto_reader__many_lines_one_feed),
		cmocka_unit_test(test_proto_reader__oversized_line),
		cmocka_unit_test(test_proto_reader__read_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
