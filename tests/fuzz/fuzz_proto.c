/*
 * libFuzzer target for the control protocol: the bytes of one input are what
 * a client could send taskslapsd. They are decoded as one request line
 * (proto_request_decode) and as one reply line (proto_reply_decode), and
 * they are fed through the line reader in pieces whose sizes the input's
 * first byte picks, each line decoded in turn.
 *
 * Properties checked (abort on violation):
 *   - a decoded request re-encodes to one line that decodes to the same
 *     id, cmd and args;
 *   - a failed request decode names a code and leaves nothing to free;
 *   - every reply the daemon could send about it (an error echoing the
 *     message, a result, an event, an end) is one line that decodes again;
 *   - the reader returns each line of the input exactly as split by "\n"
 *     (for lines within its maximum).
 *
 * Built when the project is configured with clang and -DTS_FUZZ=ON:
 *
 *   CC=clang cmake -S . -B build-fuzz -DTS_FUZZ=ON -DTS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
 *   make -C build-fuzz -j2 fuzz_proto
 *   ctest --test-dir build-fuzz -R fuzz.proto --output-on-failure      (a short smoke run)
 *
 * A longer campaign, as for fuzz_plan.c:
 *
 *   mkdir -p fuzz-corpus-proto
 *   build-fuzz/tests/fuzz/fuzz_proto fuzz-corpus-proto tests/fuzz/seeds/proto \
 *       -dict=tests/fuzz/proto.dict -max_len=4096 -timeout=10 -jobs=2 -workers=2 \
 *       -max_total_time=3600 -print_final_stats=1
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes a reply line that the encoders made: it must decode, as kind, to id. */
static void
check_reply(char *line, enum proto_reply_kind kind, long long id)
{
	struct proto_reply r;
	size_t n = strlen(line);

	if (n == 0 || line[n - 1] != '\n' || memchr(line, '\n', n - 1))
		abort(); /* not one line */
	if (n - 1 > TS_PROTO_MAX_LINE)
		abort();
	if (proto_reply_decode(line, n, &r, NULL, 0) < 0 || r.kind != kind || r.id != id)
		abort();
	proto_reply_free(&r);
	free(line);
}

static void
request(const char *buf, size_t len)
{
	struct proto_request rq, again;
	const char *code = NULL, *code2 = NULL;
	char msg[256];
	char *line;
	bool same;

	msg[0] = '\0';
	if (proto_request_decode(buf, len, &rq, &code, msg, sizeof(msg)) < 0) {
		if (!code || !msg[0] || rq.cmd || rq.args)
			abort();
		/* the daemon answers with the message; it must make a valid line */
		check_reply(proto_reply_error(rq.id, code, msg), PROTO_ERROR, rq.id);
		return;
	}
	if (rq.v != TS_PROTO_VERSION || !rq.cmd || !rq.cmd[0] || rq.id < 0 || rq.id > PROTO_ID_MAX)
		abort();
	if (rq.args && !cJSON_IsObject(rq.args))
		abort();
	line = proto_request_encode(rq.id, rq.cmd, rq.args ? cJSON_Duplicate(rq.args, 1) : NULL);
	if (proto_request_decode(line, strlen(line), &again, &code2, msg, sizeof(msg)) < 0)
		abort();
	same = again.id == rq.id && !strcmp(again.cmd, rq.cmd) && !rq.args == !again.args;
	if (same && rq.args) {
		/* printed, not cJSON_Compare, which finds duplicate keys unequal to themselves */
		char *a = cJSON_PrintUnformatted(rq.args), *b = cJSON_PrintUnformatted(again.args);

		same = a && b && !strcmp(a, b);
		cJSON_free(a);
		cJSON_free(b);
	}
	if (!same)
		abort();
	free(line);
	/* what the daemon may send back about this request */
	check_reply(proto_reply_result(rq.id, rq.args ? cJSON_Duplicate(rq.args, 1) : NULL),
		    PROTO_RESULT, rq.id);
	check_reply(proto_reply_event(rq.id, rq.args ? cJSON_Duplicate(rq.args, 1) : NULL),
		    PROTO_EVENT, rq.id);
	check_reply(proto_reply_error(rq.id, TS_PROTO_E_UNKNOWN_CMD, rq.cmd), PROTO_ERROR, rq.id);
	check_reply(proto_reply_end(rq.id), PROTO_END, rq.id);
	proto_request_free(&again);
	proto_request_free(&rq);
}

static void
reply(const char *buf, size_t len)
{
	struct proto_reply r;
	char msg[256];

	if (proto_reply_decode(buf, len, &r, msg, sizeof(msg)) < 0)
		return;
	switch (r.kind) {
	case PROTO_RESULT:
		if (!r.payload || r.code)
			abort();
		break;
	case PROTO_EVENT:
		if (!cJSON_IsObject(r.payload))
			abort();
		break;
	case PROTO_ERROR:
		if (!r.code || !r.code[0] || !r.message || r.payload)
			abort();
		break;
	case PROTO_END:
		if (r.payload || r.code)
			abort();
		break;
	}
	proto_reply_free(&r);
}

/* The input through the reader, in pieces of 1..16 bytes. */
static void
reader(const uint8_t *data, size_t size)
{
	struct proto_reader r;
	size_t piece = size ? (size_t)(data[0] % 16) + 1 : 1, off = 0, expect_off = 0;
	const char *line;
	size_t len;
	int k;

	proto_reader_init(&r, 512);
	while (off < size) {
		size_t n = size - off < piece ? size - off : piece;

		proto_reader_feed(&r, data + off, n);
		off += n;
		while ((k = proto_reader_next(&r, &line, &len)) != PROTO_NEED_MORE) {
			const uint8_t *nl = memchr(data + expect_off, '\n', size - expect_off);
			size_t want;

			/* the input's next line (the reader drops the ones past max) */
			if (k == PROTO_TOO_LONG) {
				expect_off = nl ? (size_t)(nl - data) + 1 : size;
				continue;
			}
			if (!nl)
				abort(); /* a line without its newline */
			want = (size_t)(nl - (data + expect_off));
			if (len != want || memcmp(line, data + expect_off, len) != 0 || line[len])
				abort();
			expect_off += want + 1;
			request(line, len);
		}
	}
	proto_reader_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	request((const char *)data, size);
	reply((const char *)data, size);
	reader(data, size);
	return 0;
}
