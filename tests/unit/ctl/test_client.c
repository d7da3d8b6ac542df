/*
 * ctl: taskslapsctl's daemon verbs against a fake daemon: a thread that
 * listens on a UNIX socket in a temporary directory, records the request
 * line and answers with canned lines.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* after setjmp.h, stdarg.h, stddef.h and stdint.h, which it needs */
#include <cmocka.h>

#include "ctl/client.h"

/* ---- what main.c provides to the verbs ------------------------------------ */

const struct ctl_verb *
ctl_verb_find(const char *name)
{
	static struct ctl_verb v;

	v.name = name;
	v.usage = "ARGS";
	v.summary = "a verb under test";
	return &v;
}

void
ctl_usage(FILE *out, const struct ctl_verb *v)
{
	fprintf(out, "usage: taskslapsctl %s %s\n", v->name, v->usage);
}

int
ctl_parse_mode(const char *s, enum plan_mode *out)
{
	(void)s;
	*out = MODE_PROTECTED;
	return 0;
}

/* ---- a fake daemon -------------------------------------------------------- */

struct fake {
	char dir[64];
	char path[128];
	int lfd;
	const char *replies; /* sent after the first request line */
	size_t chunk;	     /* write them this many bytes at a time (0: at once) */
	bool hold;	     /* after replying, keep the connection until the client closes */
	char request[4096];  /* the first request line, "\n" included */
	pthread_t th;
};

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	size_t got = 0, len, off = 0;
	int fd = accept(f->lfd, NULL, NULL);
	char c;

	if (fd < 0)
		return NULL;
	while (got < sizeof(f->request) - 1 && read(fd, &c, 1) == 1) {
		f->request[got++] = c;
		if (c == '\n')
			break;
	}
	f->request[got] = '\0';
	len = strlen(f->replies);
	while (off < len) {
		size_t n = f->chunk && f->chunk < len - off ? f->chunk : len - off;
		ssize_t w = write(fd, f->replies + off, n);

		if (w <= 0)
			break;
		off += (size_t)w;
		if (f->chunk)
			usleep(200);
	}
	if (f->hold)
		while (read(fd, &c, 1) > 0)
			;
	close(fd);
	return NULL;
}

static void
fake_start(struct fake *f, const char *replies, size_t chunk)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/ts-ctl-test.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/prod.sock", f->dir);
	f->replies = replies;
	f->chunk = chunk;
	assert_true(strlen(f->path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void
fake_stop(struct fake *f)
{
	/* a client that never connected: wake the accept */
	shutdown(f->lfd, SHUT_RDWR);
	pthread_join(f->th, NULL);
	close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
}

/*
 * ---- capturing stdout and stderr -------------------------------------------
 * A sanitizer report raised while output is captured goes to the capture:
 * run with ASAN_OPTIONS=log_path=/tmp/asan UBSAN_OPTIONS=log_path=/tmp/asan
 * to see it.
 */

struct capture {
	int fd, saved;
	FILE *tmp;
};

static void
capture_begin(struct capture *c, int fd)
{
	fflush(stdout);
	fflush(stderr);
	c->fd = fd;
	c->tmp = tmpfile();
	assert_non_null(c->tmp);
	c->saved = dup(fd);
	assert_int_equal(dup2(fileno(c->tmp), fd), fd);
}

/* What was written; caller frees. */
static char *
capture_end(struct capture *c)
{
	long n;
	char *s;

	fflush(stdout);
	fflush(stderr);
	dup2(c->saved, c->fd);
	close(c->saved);
	n = ftell(c->tmp);
	assert_true(n >= 0);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	rewind(c->tmp);
	assert_int_equal(fread(s, 1, (size_t)n, c->tmp), (size_t)n);
	fclose(c->tmp);
	return s;
}

/* Runs a verb against the fake (argv: the verb and its arguments, NULL-terminated). */
static int
run_verb(struct fake *f, int (*verb)(const struct ctl_global *, int, char **), char **argv,
	 char **out, char **err)
{
	struct ctl_global g = { 0 };
	struct capture co, ce;
	int argc = 0, rc;

	while (argv[argc])
		argc++;
	g.socket = f ? f->path : "/nonexistent/taskslaps-test.sock";
	capture_begin(&co, STDOUT_FILENO);
	capture_begin(&ce, STDERR_FILENO);
	optind = 0;
	rc = verb(&g, argc, argv);
	*err = capture_end(&ce);
	*out = capture_end(&co);
	return rc;
}

#define STATUS_DOC(health)                                                                         \
	"{\"target\":\"prod\",\"state\":\"applying\",\"pid\":123,\"version\":\"0.1.0\","           \
	"\"started_at\":\"2024-05-01T10:00:00Z\",\"repository\":\"/srv/git/migrations.git\","      \
	"\"branch\":\"main\",\"protected\":true,\"mode\":\"protected\","                           \
	"\"tip\":\"0123456789abcdef0123456789abcdef01234567\",\"sync\":\"out_of_sync\","           \
	"\"health\":\"" health "\",\"last_applied_commit\":\"aaaaaaaaaaaaaaaa\","                  \
	"\"last_attempted_commit\":null,\"last_result\":\"applied 0001-x\","                       \
	"\"database\":{\"connected\":false,\"error\":\"connection refused\"},"                     \
	"\"governor\":{\"state\":\"degraded\",\"factor\":0.5},"                                    \
	"\"running\":{\"plan_id\":\"0002-y\",\"wave\":\"backfill\",\"step_sha\":"                  \
	"\"abcdef0123456789abcdef\",\"op\":\"backfill_sql\",\"statement\":"                        \
	"\"UPDATE users\\n   SET x = y\",\"since\":\"2024-05-01T10:01:00Z\",\"lock_wait_ms\":120," \
	"\"rows_done\":1000,"                                                                      \
	"\"rows_total\":20000,\"rate\":4990.0,\"eta_s\":3.2},"                                     \
	"\"plans\":[{\"plan_id\":\"0001-x\",\"status\":\"applied\",\"max_hazard\":\"H2\","         \
	"\"steps_done\":2,\"steps_total\":2,\"commit\":\"bbbbbbbbbbbbbbbb\",\"author\":\"a@b\"},"  \
	"{\"plan_id\":\"0002-y\",\"status\":\"running\",\"max_hazard\":\"H1\",\"steps_done\":1,"   \
	"\"steps_total\":3}],\"drift\":[\"0003-z\"],"                                              \
	"\"history\":[{\"at\":\"2024-05-01T10:00:05Z\",\"type\":\"plan.ok\","                      \
	"\"plan_id\":\"0001-x\",\"message\":\"applied 2/2\"}]}"

#define REPLY(body) "{\"v\":1,\"id\":1,\"result\":" body "}\n"

/* ---- tests ------------------------------------------------------------------ */

static void
test_ctl_client__status_request_and_view(void **state)
{
	struct fake f;
	char *argv[] = { "status", NULL }, *out, *err;

	(void)state;
	fake_start(&f, REPLY(STATUS_DOC("healthy")), 0);
	assert_int_equal(run_verb(&f, cmd_status, argv, &out, &err), CTL_OK);
	fake_stop(&f);
	assert_string_equal(f.request, "{\"v\":1,\"id\":1,\"cmd\":\"status\"}\n");
	assert_string_equal(err, "");
	assert_non_null(strstr(out, "taskslapsd prod: applying"));
	assert_non_null(strstr(out, "main (protected)"));
	assert_non_null(strstr(out, "tip             0123456789ab\n"));
	assert_non_null(strstr(out, "sync            out of sync\n"));
	assert_non_null(strstr(out, "health          healthy\n"));
	assert_non_null(strstr(out, "last applied    aaaaaaaaaaaa\n"));
	assert_non_null(strstr(out, "last attempted  none\n"));
	assert_non_null(strstr(out, "not connected: connection refused"));
	assert_non_null(strstr(out, "degraded (rate factor 0.50)"));
	assert_non_null(strstr(out, "[H2] 0001-x"));
	assert_non_null(strstr(out, "[H1] 0002-y"));
	assert_non_null(strstr(out, "1/3"));
	assert_non_null(strstr(out, "UPDATE users SET x = y\n"));
	assert_non_null(strstr(out, "lock wait 120 ms"));
	assert_non_null(strstr(out, "1000 of ~20000 rows (5%)  4990 rows/s  ETA 3s"));
	assert_non_null(strstr(out, "accept-drift 0003-z"));
	assert_non_null(strstr(out, "plan.ok"));
	free(out);
	free(err);
}

static void
test_ctl_client__status_exit_codes(void **state)
{
	static const struct {
		const char *reply;
		int rc;
	} cases[] = {
		{ REPLY(STATUS_DOC("healthy")), CTL_OK },
		{ REPLY(STATUS_DOC("progressing")), CTL_OK },
		{ REPLY(STATUS_DOC("degraded")), CTL_FINDINGS },
		{ REPLY(STATUS_DOC("failed")), CTL_FINDINGS },
		{ REPLY(STATUS_DOC("paused")), CTL_FINDINGS },
		{ REPLY("{\"target\":\"prod\"}"), CTL_FINDINGS }, /* no health: not ok */
	};
	char *argv[] = { "status", NULL }, *argv_json[] = { "status", "--json", NULL };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct fake f;
		char *out, *err;

		fake_start(&f, cases[i].reply, 0);
		assert_int_equal(run_verb(&f, cmd_status, argv, &out, &err), cases[i].rc);
		fake_stop(&f);
		free(out);
		free(err);
		/* --json: the document as it came, the same exit status */
		fake_start(&f, cases[i].reply, 0);
		assert_int_equal(run_verb(&f, cmd_status, argv_json, &out, &err), cases[i].rc);
		fake_stop(&f);
		assert_non_null(strstr(out, "\"target\":\t\"prod\""));
		free(out);
		free(err);
	}
}

static void
test_ctl_client__reply_in_pieces(void **state)
{
	struct fake f;
	char *argv[] = { "status", NULL }, *out, *err;

	(void)state;
	/* a reply that arrives a few bytes at a time, after an event for another id */
	fake_start(&f,
		   "{\"v\":1,\"id\":99,\"event\":{\"type\":\"x\"}}\n" REPLY(STATUS_DOC("degraded")),
		   7);
	assert_int_equal(run_verb(&f, cmd_status, argv, &out, &err), CTL_FINDINGS);
	fake_stop(&f);
	assert_non_null(strstr(out, "health          degraded"));
	free(out);
	free(err);
}

static void
test_ctl_client__error_replies(void **state)
{
	static const struct {
		int (*verb)(const struct ctl_global *, int, char **);
		const char *args[3];
		const char *reply, *request, *err;
		int rc;
	} cases[] = {
		{ cmd_resume,
		  { "resume", "0007-x", NULL },
		  "{\"v\":1,\"id\":1,\"error\":{\"code\":\"forbidden\",\"message\":\"not allowed: "
		  "'resume' changes the target\"}}\n",
		  "{\"v\":1,\"id\":1,\"cmd\":\"resume\",\"args\":{\"plan\":\"0007-x\"}}\n",
		  "taskslapsctl resume: not allowed: 'resume' changes the target\n",
		  CTL_FINDINGS },
		{ cmd_accept_drift,
		  { "accept-drift", "0009-nope", NULL },
		  "{\"v\":1,\"id\":1,\"error\":{\"code\":\"not_found\",\"message\":\"no plan "
		  "0009-nope at the branch tip\"}}\n",
		  "{\"v\":1,\"id\":1,\"cmd\":\"accept-drift\",\"args\":{\"plan\":\"0009-nope\"}}\n",
		  "taskslapsctl accept-drift: no plan 0009-nope at the branch tip\n",
		  CTL_FINDINGS },
		{ cmd_abort,
		  { "abort", NULL },
		  "{\"v\":1,\"id\":1,\"error\":{\"code\":\"forbidden\",\"message\":\"not "
		  "allowed\"}}\n",
		  "{\"v\":1,\"id\":1,\"cmd\":\"abort\"}\n",
		  "taskslapsctl abort: not allowed\n",
		  CTL_FINDINGS },
		/* an error about a line the daemon could not read has id 0 */
		{ cmd_reconcile,
		  { "reconcile", NULL },
		  "{\"v\":1,\"id\":0,\"error\":{\"code\":\"bad_request\",\"message\":\"missing "
		  "\\\"cmd\\\"\"}}\n",
		  "{\"v\":1,\"id\":1,\"cmd\":\"reconcile\"}\n",
		  "taskslapsctl reconcile: missing \"cmd\"\n",
		  CTL_USAGE },
		{ cmd_resume,
		  { "resume", "0007-x", NULL },
		  "{\"v\":1,\"id\":1,\"error\":{\"code\":\"unavailable\",\"message\":\"the "
		  "database "
		  "is unavailable; try again\"}}\n",
		  "{\"v\":1,\"id\":1,\"cmd\":\"resume\",\"args\":{\"plan\":\"0007-x\"}}\n",
		  "taskslapsctl resume: the database is unavailable; try again\n",
		  CTL_FINDINGS },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct fake f;
		char *argv[3] = { (char *)cases[i].args[0], (char *)cases[i].args[1],
				  (char *)cases[i].args[2] };
		char *out, *err;

		fake_start(&f, cases[i].reply, 0);
		assert_int_equal(run_verb(&f, cases[i].verb, argv, &out, &err), cases[i].rc);
		fake_stop(&f);
		assert_string_equal(f.request, cases[i].request);
		assert_string_equal(err, cases[i].err);
		assert_string_equal(out, "");
		free(out);
		free(err);
	}
}

static void
test_ctl_client__result_message(void **state)
{
	struct fake f;
	char *argv[] = { "reconcile", NULL }, *argv2[] = { "resume", "0002-y", NULL }, *out, *err;

	(void)state;
	fake_start(&f, REPLY("{\"message\":\"reconciling now\"}"), 0);
	assert_int_equal(run_verb(&f, cmd_reconcile, argv, &out, &err), CTL_OK);
	fake_stop(&f);
	assert_string_equal(out, "reconciling now\n");
	free(out);
	free(err);
	fake_start(&f, REPLY("{\"message\":\"plan 0002-y resumed: it runs on this pass\"}"), 0);
	assert_int_equal(run_verb(&f, cmd_resume, argv2, &out, &err), CTL_OK);
	fake_stop(&f);
	assert_string_equal(out, "plan 0002-y resumed: it runs on this pass\n");
	free(out);
	free(err);
}

#define EVENT(id, type, rest)                                                                      \
	"{\"v\":1,\"id\":" id ",\"event\":{\"id\":7,\"at\":\"2024-05-01T10:00:05.123Z\","          \
	"\"type\":\"" type "\",\"plan_id\":\"0002-y\"" rest "}}\n"

static void
test_ctl_client__events_stream(void **state)
{
	struct fake f;
	char *argv[] = { "events", "--plan", "0002-y", NULL }, *out, *err, *a, *b, *c;

	(void)state;
	fake_start(&f,
		   EVENT("1", "plan.start", ",\"message\":\"first\"")
		       EVENT("2", "other.stream", ",\"message\":\"not ours\"")
			   EVENT("1", "step.progress",
				 ",\"wave\":\"backfill\",\"step_sha\":\"abcdef0123456789abcdef\","
				 "\"message\":\"second\",\"metrics\":{\"rows_done\":10}")
			       EVENT("1", "step.error",
				     ",\"message\":\"third\"") "{\"v\":1,\"id\":1,\"end\":true}"
							       "\n" EVENT("1", "plan.ok",
									  ",\"message\":\"after "
									  "the end\""),
		   5);
	f.hold = true;
	assert_int_equal(run_verb(&f, cmd_events, argv, &out, &err), CTL_OK);
	fake_stop(&f);
	assert_string_equal(
	    f.request, "{\"v\":1,\"id\":1,\"cmd\":\"events\",\"args\":{\"plan\":\"0002-y\"}}\n");
	assert_string_equal(err, "");
	a = strstr(out, "plan.start");
	b = strstr(out, "0002-y/backfill abcdef0123456789  second\n");
	c = strstr(out, "third");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_true(a < b && b < c);
	assert_null(strstr(out, "not ours"));
	assert_null(strstr(out, "after the end"));
	assert_non_null(strstr(out, "     7  "));
	free(out);
	free(err);
}

static void
test_ctl_client__events_daemon_goes_away(void **state)
{
	struct fake f;
	char *argv[] = { "events", "--follow", NULL }, *out, *err;

	(void)state;
	fake_start(&f, EVENT("1", "plan.start", ",\"message\":\"first\"") "{\"v\":1,\"id\":1,\"ev",
		   0);
	assert_int_equal(run_verb(&f, cmd_events, argv, &out, &err), CTL_UNREACHABLE);
	fake_stop(&f);
	assert_string_equal(f.request,
			    "{\"v\":1,\"id\":1,\"cmd\":\"events\",\"args\":{\"follow\":true}}\n");
	assert_non_null(strstr(out, "first"));
	assert_non_null(strstr(err, "closed the connection in the middle of a line"));
	free(out);
	free(err);
}

static void
test_ctl_client__not_the_protocol(void **state)
{
	static const char *const garbage[] = {
		"HTTP/1.1 400 Bad Request\r\n\r\n",
		"{\"v\":2,\"id\":1,\"result\":{}}\n",
		"{\"v\":1,\"id\":1,\"end\":true}\n",
	};
	char *argv[] = { "status", NULL };

	(void)state;
	for (size_t i = 0; i < sizeof(garbage) / sizeof(*garbage); i++) {
		struct fake f;
		char *out, *err;

		fake_start(&f, garbage[i], 0);
		assert_int_equal(run_verb(&f, cmd_status, argv, &out, &err), CTL_UNREACHABLE);
		fake_stop(&f);
		assert_non_null(strstr(err, "not the control protocol"));
		free(out);
		free(err);
	}
}

static void
test_ctl_client__unreachable(void **state)
{
	char *argv[] = { "status", NULL }, *argv2[] = { "events", NULL }, *out, *err;

	(void)state;
	assert_int_equal(run_verb(NULL, cmd_status, argv, &out, &err), CTL_UNREACHABLE);
	assert_string_equal(out, "");
	assert_non_null(strstr(err,
			       "taskslapsctl: cannot reach the daemon at "
			       "/nonexistent/taskslaps-test.sock: No such file or directory\n"));
	free(out);
	free(err);
	assert_int_equal(run_verb(NULL, cmd_events, argv2, &out, &err), CTL_UNREACHABLE);
	free(out);
	free(err);
}

static void
test_ctl_client__call_timeout(void **state)
{
	struct fake f;
	struct ctl_client c;
	cJSON *res = NULL;
	struct capture ce;
	char *err;

	(void)state;
	fake_start(&f, "", 0);
	f.hold = true;
	assert_int_equal(ctl_client_connect(&c, f.path, "status"), CTL_OK);
	capture_begin(&ce, STDERR_FILENO);
	assert_int_equal(ctl_client_call(&c, "status", NULL, 100, &res), CTL_UNREACHABLE);
	err = capture_end(&ce);
	assert_null(res);
	assert_non_null(strstr(err, "did not answer in time"));
	ctl_client_close(&c);
	ctl_client_close(&c);
	fake_stop(&f);
	free(err);
}

static void
test_ctl_client__usage_errors(void **state)
{
	char *drift[] = { "accept-drift", "0003-z", "migrations/", NULL };
	char *limit[] = { "events", "--limit", "5", NULL };
	char *extra[] = { "status", "now", NULL };
	char *unknown[] = { "watch", "--bogus", NULL };
	char *resume[] = { "resume", NULL };
	char *help[] = { "reconcile", "--help", NULL };
	char *out, *err;

	(void)state;
	/* none of these needs a daemon */
	assert_int_equal(run_verb(NULL, cmd_accept_drift, drift, &out, &err), CTL_USAGE);
	assert_non_null(strstr(err, "FILE|DIR goes with --db"));
	free(out);
	free(err);
	assert_int_equal(run_verb(NULL, cmd_events, limit, &out, &err), CTL_USAGE);
	assert_non_null(strstr(err, "--limit goes with --db"));
	free(out);
	free(err);
	assert_int_equal(run_verb(NULL, cmd_status, extra, &out, &err), CTL_USAGE);
	free(out);
	free(err);
	assert_int_equal(run_verb(NULL, cmd_watch, unknown, &out, &err), CTL_USAGE);
	free(out);
	free(err);
	assert_int_equal(run_verb(NULL, cmd_resume, resume, &out, &err), CTL_USAGE);
	free(out);
	free(err);
	assert_int_equal(run_verb(NULL, cmd_reconcile, help, &out, &err), CTL_OK);
	assert_non_null(strstr(out, "usage: taskslapsctl reconcile"));
	free(out);
	free(err);
}

static void
test_ctl_client__history_from_status(void **state)
{
	struct fake f;
	char *argv[] = { "history", NULL }, *out, *err;

	(void)state;
	fake_start(&f, REPLY(STATUS_DOC("failed")), 0);
	assert_int_equal(run_verb(&f, cmd_history, argv, &out, &err), CTL_OK);
	fake_stop(&f);
	assert_string_equal(f.request, "{\"v\":1,\"id\":1,\"cmd\":\"status\"}\n");
	assert_non_null(strstr(out, "PLAN"));
	assert_non_null(strstr(out, "0001-x"));
	assert_non_null(strstr(out, "[H2]"));
	assert_non_null(strstr(out, "bbbbbbbbbbbb a@b"));
	assert_non_null(strstr(out, "0002-y"));
	free(out);
	free(err);
}

/* A temporary run directory with the given entries (".sock" ones as sockets). */
static void
make_rundir(char *dir, size_t n, const char *const *socks, const char *const *files)
{
	snprintf(dir, n, "/tmp/ts-ctl-run.XXXXXX");
	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; socks && socks[i]; i++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, socks[i]);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(fd);
	}
	for (size_t i = 0; files && files[i]; i++) {
		char path[256];
		FILE *fp;

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		assert_non_null(fp = fopen(path, "w"));
		fclose(fp);
	}
}

static void
remove_rundir(const char *dir, const char *const *names)
{
	for (size_t i = 0; names && names[i]; i++) {
		char path[256];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void
test_ctl_client__socket_discovery(void **state)
{
	static const char *const one[] = { "prod.sock", NULL };
	static const char *const two[] = { "staging.sock", "prod.sock", NULL };
	static const char *const decoys[] = { "notes.sock", "README", NULL };
	struct ctl_global g = { 0 };
	struct capture ce;
	char dir[64], *path = NULL, *err;

	(void)state;
	unsetenv("TASKSLAPS_SOCKET");
	make_rundir(dir, sizeof(dir), one, decoys);

	/* --socket first, then --target, then $TASKSLAPS_SOCKET, then the only socket */
	g.socket = "/x/given.sock";
	g.target = "prod";
	setenv("TASKSLAPS_SOCKET", "/x/env.sock", 1);
	assert_int_equal(ctl_socket_find(&g, dir, &path), CTL_OK);
	assert_string_equal(path, "/x/given.sock");
	free(path);
	g.socket = NULL;
	assert_int_equal(ctl_socket_find(&g, dir, &path), CTL_OK);
	assert_string_equal(path + strlen(dir), "/prod.sock");
	free(path);
	g.target = NULL;
	assert_int_equal(ctl_socket_find(&g, dir, &path), CTL_OK);
	assert_string_equal(path, "/x/env.sock");
	free(path);
	setenv("TASKSLAPS_SOCKET", "", 1); /* empty is unset */
	assert_int_equal(ctl_socket_find(&g, dir, &path), CTL_OK);
	assert_string_equal(path + strlen(dir), "/prod.sock"); /* notes.sock is a plain file */
	free(path);
	unsetenv("TASKSLAPS_SOCKET");
	remove_rundir(dir, one);
	remove_rundir(dir, decoys);

	/* a target name is a file name, not a path */
	g.target = "../etc/passwd";
	capture_begin(&ce, STDERR_FILENO);
	assert_int_equal(ctl_socket_find(&g, dir, &path), CTL_USAGE);
	err = capture_end(&ce);
	assert_non_null(strstr(err, "--target: '../etc/passwd' is not a target name"));
	free(err);
	g.target = NULL;

	/* several: a usage error listing them, sorted */
	make_rundir(dir, sizeof(dir), two, NULL);
	capture_begin(&ce, STDERR_FILENO);
	assert_int_equal(ctl_socket_find(&g, dir, &path), CTL_USAGE);
	err = capture_end(&ce);
	assert_non_null(strstr(err, "several daemons in "));
	assert_non_null(strstr(err, ": prod.sock, staging.sock\n"));
	assert_non_null(strstr(err, "--target NAME"));
	free(err);
	remove_rundir(dir, two);

	/* none: unreachable */
	make_rundir(dir, sizeof(dir), NULL, decoys);
	capture_begin(&ce, STDERR_FILENO);
	assert_int_equal(ctl_socket_find(&g, dir, &path), CTL_UNREACHABLE);
	err = capture_end(&ce);
	assert_non_null(strstr(err, "no daemon socket in "));
	free(err);
	remove_rundir(dir, decoys);

	/* no run directory at all: unreachable */
	capture_begin(&ce, STDERR_FILENO);
	assert_int_equal(ctl_socket_find(&g, dir, &path), CTL_UNREACHABLE);
	err = capture_end(&ce);
	assert_non_null(strstr(err, "No such file or directory"));
	free(err);
}

static void
test_ctl_client__render_tolerates(void **state)
{
	static const char *const docs[] = {
		"{}",
		"{\"plans\":{},\"running\":[],\"drift\":\"x\",\"history\":5,\"governor\":1,"
		"\"database\":\"up\",\"health\":7,\"pid\":\"x\"}",
		"{\"plans\":[{},{\"max_hazard\":\"H9\",\"steps_done\":\"2\"}],\"running\":{},"
		"\"drift\":[{},{\"plan_id\":\"d\"}],\"history\":[{},1],\"protected\":false,"
		"\"mode\":\"chaos\"}",
	};
	struct render r = { .color = false };
	char *text = NULL;
	size_t len = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(*docs); i++) {
		cJSON *doc = cJSON_Parse(docs[i]);

		assert_non_null(doc);
		r.out = open_memstream(&text, &len);
		assert_non_null(r.out);
		ctl_status_render(&r, doc);
		ctl_status_plans_table(&r, doc);
		fclose(r.out);
		assert_non_null(strstr(text, "taskslapsd ?: unknown"));
		if (i == 2)
			assert_non_null(strstr(text, "(not protected: chaos mode)"));
		assert_int_equal(ctl_status_exit(doc), CTL_FINDINGS);
		free(text);
		text = NULL;
		cJSON_Delete(doc);
	}
}

static void
test_ctl_client__print_event(void **state)
{
	struct render r = { .color = false };
	cJSON *ev = cJSON_Parse("{\"id\":42,\"at\":\"2024-05-01T10:00:05Z\",\"type\":\"step.ok\","
				"\"plan_id\":\"0001-x\",\"wave\":\"expand\",\"step_sha\":"
				"\"0123456789abcdef0123\",\"message\":\"added column\"}");
	cJSON *bare = cJSON_Parse("{}");
	char *text = NULL;
	size_t len = 0;

	(void)state;
	r.out = open_memstream(&text, &len);
	ctl_print_event(&r, ev);
	ctl_print_event(&r, bare);
	fclose(r.out);
	assert_non_null(strstr(text, "    42  "));
	assert_non_null(
	    strstr(text, "step.ok              0001-x/expand 0123456789abcdef  added column\n"));
	assert_non_null(strstr(text, "     -  -  ?                    -  \n"));
	free(text);
	cJSON_Delete(ev);
	cJSON_Delete(bare);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ctl_client__status_request_and_view),
		cmocka_unit_test(test_ctl_client__status_exit_codes),
		cmocka_unit_test(test_ctl_client__reply_in_pieces),
		cmocka_unit_test(test_ctl_client__error_replies),
		cmocka_unit_test(test_ctl_client__result_message),
		cmocka_unit_test(test_ctl_client__events_stream),
		cmocka_unit_test(test_ctl_client__events_daemon_goes_away),
		cmocka_unit_test(test_ctl_client__not_the_protocol),
		cmocka_unit_test(test_ctl_client__unreachable),
		cmocka_unit_test(test_ctl_client__call_timeout),
		cmocka_unit_test(test_ctl_client__usage_errors),
		cmocka_unit_test(test_ctl_client__history_from_status),
		cmocka_unit_test(test_ctl_client__socket_discovery),
		cmocka_unit_test(test_ctl_client__render_tolerates),
		cmocka_unit_test(test_ctl_client__print_event),
	};

	/* the daemon's times are UTC; the views show local time: make that UTC here */
	setenv("TZ", "UTC", 1);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
