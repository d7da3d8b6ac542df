/*
 * taskslapsctl's control-socket client: which socket (docs/contract.md §9), one
 * connection, requests and replies, and the helpers the daemon verbs share
 * to read the documents the daemon sends.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl/client.h"
#include "util/alloc.h"
#include "util/strbuf.h"

/* Requests the daemon answers from memory get this long before it counts as unreachable. */
#define CTL_WAIT_NOTE_MS 3000

/* A target name as it may appear in a file name: no '/', no leading '.'. */
static bool
target_name_ok(const char *s)
{
	if (!s[0] || s[0] == '.' || strlen(s) > 200)
		return false;
	for (const char *p = s; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.'))
			return false;
	return true;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The only socket named *.sock in rundir. */
static int
scan_rundir(const char *rundir, char **out)
{
	DIR *dir = opendir(rundir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if (!dir) {
		fprintf(stderr,
			"taskslapsctl: no daemon to talk to: %s: %s\n"
			"  (is taskslapsd running? give --socket PATH or --target NAME, or set "
			"TASKSLAPS_SOCKET)\n",
			rundir, strerror(errno));
		return CTL_UNREACHABLE;
	}
	while ((de = readdir(dir)) != NULL) {
		size_t len = strlen(de->d_name);
		struct stat st;

		if (len <= 5 || strcmp(de->d_name + len - 5, ".sock") != 0)
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, 0) < 0 || !S_ISSOCK(st.st_mode))
			continue;
		if (n == cap)
			names = xrealloc(names, (cap = cap ? cap * 2 : 8) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(dir);
	if (n == 1) {
		*out = xasprintf("%s/%s", rundir, names[0]);
		rc = CTL_OK;
	} else if (n == 0) {
		fprintf(stderr,
			"taskslapsctl: no daemon socket in %s/\n"
			"  (is taskslapsd running? give --socket PATH or --target NAME, or set "
			"TASKSLAPS_SOCKET)\n",
			rundir);
		rc = CTL_UNREACHABLE;
	} else {
		qsort(names, n, sizeof(*names), cmp_str);
		fprintf(stderr, "taskslapsctl: several daemons in %s/:", rundir);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, "%s %s", i ? "," : "", names[i]);
		fprintf(stderr, "\n  choose one with --target NAME or --socket PATH\n");
		rc = CTL_USAGE;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int
ctl_socket_find(const struct ctl_global *g, const char *rundir, char **out)
{
	const char *env;

	if (!rundir)
		rundir = TS_PROTO_RUNDIR;
	if (g->socket && g->socket[0]) {
		*out = xstrdup(g->socket);
		return CTL_OK;
	}
	if (g->target) {
		if (!target_name_ok(g->target)) {
			fprintf(
			    stderr,
			    "taskslapsctl: --target: '%s' is not a target name (letters, digits, "
			    "'_', '-', '.')\n",
			    g->target);
			return CTL_USAGE;
		}
		*out = xasprintf("%s/%s.sock", rundir, g->target);
		return CTL_OK;
	}
	if ((env = getenv("TASKSLAPS_SOCKET")) != NULL && env[0]) {
		*out = xstrdup(env);
		return CTL_OK;
	}
	return scan_rundir(rundir, out);
}

static void
client_init(struct ctl_client *c, const char *verb)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->verb = verb;
	proto_reader_init(&c->rd, 0);
}

int
ctl_client_connect(struct ctl_client *c, const char *path, const char *verb)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	client_init(c, verb);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		err = ENAMETOOLONG;
		goto fail;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		err = errno;
		goto fail;
	}
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		err = errno;
		close(fd);
		goto fail;
	}
	c->fd = fd;
	c->path = xstrdup(path);
	return CTL_OK;
fail:
	fprintf(stderr, "taskslapsctl: cannot reach the daemon at %s: %s\n", path, strerror(err));
	if (err == EACCES)
		fprintf(stderr,
			"  (the control socket is for root and the daemon's admin group)\n");
	else if (err == ENOENT || err == ECONNREFUSED)
		fprintf(stderr, "  (is taskslapsd running? systemctl status 'taskslaps@*')\n");
	proto_reader_free(&c->rd);
	return CTL_UNREACHABLE;
}

int
ctl_client_open(struct ctl_client *c, const struct ctl_global *g, const char *verb)
{
	char *path = NULL;
	int rc = ctl_socket_find(g, NULL, &path);

	if (rc != CTL_OK) {
		client_init(c, verb);
		proto_reader_free(&c->rd);
		return rc;
	}
	rc = ctl_client_connect(c, path, verb);
	free(path);
	return rc;
}

void
ctl_client_close(struct ctl_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->path);
	c->path = NULL;
	proto_reader_free(&c->rd);
}

int
ctl_client_send(struct ctl_client *c, const char *cmd, cJSON *args, long long *id)
{
	long long rid = ++c->next_id;
	char *line = proto_request_encode(rid, cmd, args);
	size_t len = strlen(line), off = 0;
	int rc = 0;

	while (off < len) {
		/* MSG_NOSIGNAL: a daemon that went away is an error to report, not SIGPIPE */
		ssize_t n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			c->error = errno;
			break;
		}
		off += (size_t)n;
	}
	free(line);
	if (rc == 0 && id)
		*id = rid;
	return rc;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum ctl_recv
ctl_client_recv(struct ctl_client *c, struct proto_reply *rep, int timeout_ms)
{
	long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;

	for (;;) {
		const char *line;
		size_t len;
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int k = proto_reader_next(&c->rd, &line, &len), wait;
		ssize_t n;

		if (k == PROTO_LINE) {
			if (proto_reply_decode(line, len, rep, c->why, sizeof(c->why)) < 0)
				return CTL_RECV_BAD;
			return CTL_RECV_OK;
		}
		if (k == PROTO_TOO_LONG) {
			snprintf(c->why, sizeof(c->why), "a line longer than %d bytes",
				 TS_PROTO_MAX_LINE);
			return CTL_RECV_BAD;
		}
		if (c->eof || c->error)
			return CTL_RECV_GONE;
		wait = -1;
		if (deadline >= 0) {
			long long left = deadline - now_ms();
			wait = left < 0 ? 0 : left > 1000000 ? 1000000 : (int)left;
		}
		k = poll(&pfd, 1, wait);
		if (k < 0) {
			if (errno == EINTR)
				return CTL_RECV_INTR;
			c->error = errno;
			return CTL_RECV_GONE;
		}
		if (k == 0)
			return CTL_RECV_TIMEOUT;
		n = proto_reader_read(&c->rd, c->fd);
		if (n == 0)
			c->eof = true;
		else if (n == -EINTR)
			return CTL_RECV_INTR;
		else if (n < 0 && n != -EAGAIN)
			c->error = (int)-n;
	}
}

/*
 * A daemon that turns a connection away (too many clients) writes an error
 * line and closes it, often before the request is even sent, so the send
 * fails with EPIPE. The line is still there to read: whether it is, into
 * rep (caller frees).
 */
static bool
read_refusal(struct ctl_client *c, struct proto_reply *rep)
{
	int saved = c->error;

	if (saved == EPIPE || saved == ECONNRESET) {
		c->error = 0;
		if (ctl_client_recv(c, rep, 0) == CTL_RECV_OK) {
			if (rep->kind == PROTO_ERROR && rep->id == 0)
				return true;
			proto_reply_free(rep);
		}
		c->error = saved;
	}
	return false;
}

int
ctl_client_recv_error(struct ctl_client *c, enum ctl_recv what)
{
	const char *path = c->path ? c->path : "?";
	struct proto_reply rep;

	if (what == CTL_RECV_GONE && read_refusal(c, &rep)) {
		int rc = ctl_client_error_status(c, &rep);

		proto_reply_free(&rep);
		return rc;
	}
	if (what == CTL_RECV_BAD)
		fprintf(
		    stderr,
		    "taskslapsctl %s: the daemon at %s sent what is not the control protocol: %s\n",
		    c->verb, path, c->why);
	else if (what == CTL_RECV_TIMEOUT)
		fprintf(stderr, "taskslapsctl %s: the daemon at %s did not answer in time\n",
			c->verb, path);
	else if (c->error)
		fprintf(stderr, "taskslapsctl %s: the connection to the daemon at %s broke: %s\n",
			c->verb, path, strerror(c->error));
	else
		fprintf(stderr, "taskslapsctl %s: the daemon at %s closed the connection%s\n",
			c->verb, path,
			proto_reader_pending(&c->rd) ? " in the middle of a line" : "");
	return CTL_UNREACHABLE;
}

int
ctl_client_error_status(const struct ctl_client *c, const struct proto_reply *rep)
{
	const char *m = rep->message && rep->message[0] ? rep->message : rep->code;

	/* "unavailable" before any request was read: the connection was turned away */
	if (rep->id == 0 && !strcmp(rep->code, TS_PROTO_E_UNAVAILABLE)) {
		fprintf(stderr,
			"taskslapsctl %s: the daemon at %s turned the connection away: %s\n",
			c->verb, c->path ? c->path : "?", m);
		return CTL_UNREACHABLE;
	}
	fprintf(stderr, "taskslapsctl %s: %s\n", c->verb, m);
	if (!strcmp(rep->code, TS_PROTO_E_BAD_REQUEST))
		return CTL_USAGE;
	return CTL_FINDINGS;
}

int
ctl_client_call(struct ctl_client *c, const char *cmd, cJSON *args, int timeout_ms, cJSON **result)
{
	long long id, start = now_ms();
	bool noted = false;
	int rc;

	*result = NULL;
	if ((rc = ctl_client_send(c, cmd, args, &id)) < 0)
		return ctl_client_recv_error(c, CTL_RECV_GONE);
	for (;;) {
		struct proto_reply rep;
		int wait = timeout_ms;
		enum ctl_recv got;

		if (timeout_ms < 0 && !noted)
			wait = CTL_WAIT_NOTE_MS;
		else if (timeout_ms >= 0) {
			long long left = timeout_ms - (now_ms() - start);
			wait = left < 0 ? 0 : (int)left;
		}
		got = ctl_client_recv(c, &rep, wait);
		if (got == CTL_RECV_INTR)
			continue;
		if (got == CTL_RECV_TIMEOUT && timeout_ms < 0) {
			noted = true;
			if (isatty(STDERR_FILENO))
				fprintf(
				    stderr,
				    "taskslapsctl %s: waiting for the daemon (it runs this between "
				    "plans; Ctrl-C stops waiting, not the request)\n",
				    c->verb);
			continue;
		}
		if (got != CTL_RECV_OK)
			return ctl_client_recv_error(c, got);
		/* an error about a line the daemon could not read has id 0 */
		if (rep.id != id && !(rep.kind == PROTO_ERROR && rep.id == 0)) {
			proto_reply_free(&rep);
			continue;
		}
		switch (rep.kind) {
		case PROTO_RESULT:
			*result = rep.payload;
			rep.payload = NULL;
			rc = CTL_OK;
			break;
		case PROTO_ERROR: rc = ctl_client_error_status(c, &rep); break;
		case PROTO_EVENT:
		case PROTO_END:
			snprintf(c->why, sizeof(c->why), "an %s where a result was expected",
				 proto_reply_kind_name(rep.kind));
			rc = ctl_client_recv_error(c, CTL_RECV_BAD);
			break;
		}
		proto_reply_free(&rep);
		return rc;
	}
}

/* ---- reading the documents --------------------------------------------- */

const char *
ctl_json_str(const cJSON *o, const char *key)
{
	const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

double
ctl_json_num(const cJSON *o, const char *key, double dflt)
{
	const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;

	return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : dflt;
}

bool
ctl_json_true(const cJSON *o, const char *key)
{
	return o && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

int
ctl_hazard_parse(const char *s)
{
	if (s && s[0] == 'H' && s[1] >= '0' && s[1] <= '3' && !s[2])
		return s[1] - '0';
	return -1;
}

const char *
ctl_short_sha(const char *sha, char *buf, size_t n)
{
	snprintf(buf, n, "%.12s", sha && sha[0] ? sha : "-");
	return buf;
}

const char *
ctl_time(const char *iso, char *buf, size_t n)
{
	struct tm tm;
	const char *rest;

	if (!iso || !iso[0]) {
		snprintf(buf, n, "-");
		return buf;
	}
	memset(&tm, 0, sizeof(tm));
	rest = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest) {
		/* fractions of a second are not shown */
		if (*rest == '.')
			rest += 1 + strspn(rest + 1, "0123456789");
		if (!strcmp(rest, "Z")) {
			/* UTC on the wire; local time on the operator's screen, as --db shows it */
			time_t t = timegm(&tm);
			struct tm lt;

			if (t != (time_t)-1 && localtime_r(&t, &lt)) {
				strftime(buf, n, "%Y-%m-%d %H:%M:%S", &lt);
				return buf;
			}
		}
	}
	snprintf(buf, n, "%s", iso);
	if (strlen(buf) > 10 && buf[10] == 'T')
		buf[10] = ' ';
	return buf;
}

void
ctl_bar(FILE *out, const struct render *r, double done, double total, int width)
{
	int fill = 0;

	if (total > 0 && done > 0)
		fill = done >= total ? width : (int)(width * done / total);
	fputc('[', out);
	if (r->color)
		fputs("\x1b[32m", out);
	for (int i = 0; i < fill; i++)
		fputc('#', out);
	if (r->color)
		fputs("\x1b[0m\x1b[2m", out);
	for (int i = fill; i < width; i++)
		fputc(r->color ? '-' : '.', out);
	if (r->color)
		fputs("\x1b[0m", out);
	fputc(']', out);
}

/* A statement on one line: runs of white space become one space; cut past max bytes. */
void
ctl_put_oneline(FILE *o, const char *s, size_t max)
{
	struct strbuf sb = STRBUF_INIT;
	bool space = false;

	for (const char *p = s; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
			space = sb.len > 0;
			continue;
		}
		if (space)
			sb_putc(&sb, ' ');
		space = false;
		sb_putc(&sb, *p);
	}
	if (sb.len > max) {
		size_t n = max;

		while (n > 0 && ((unsigned char)sb.buf[n] & 0xC0) == 0x80)
			n--;
		fprintf(o, "%.*s...", (int)n, sb.buf);
	} else {
		fputs(sb_str(&sb), o);
	}
	sb_free(&sb);
}

/* Event types shown in red: something an operator should look at. */
static bool
event_bad(const char *type)
{
	return strstr(type, "failed") || strstr(type, "error") || strstr(type, "critical") ||
	       strstr(type, "drift") || strstr(type, "blocked") || strstr(type, "aborted");
}

void
ctl_print_event(const struct render *r, const cJSON *ev)
{
	const char *type = ctl_json_str(ev, "type"), *plan = ctl_json_str(ev, "plan_id");
	const char *wave = ctl_json_str(ev, "wave"), *step = ctl_json_str(ev, "step_sha");
	const char *message = ctl_json_str(ev, "message");
	double id = ctl_json_num(ev, "id", -1);
	char ids[24], at[40];
	bool bad;

	if (!type)
		type = "?";
	bad = r->color && event_bad(type);
	if (id >= 0)
		snprintf(ids, sizeof(ids), "%.0f", id);
	else
		snprintf(ids, sizeof(ids), "-");
	fprintf(r->out, "%6s  %s  %s%-20s%s %s%s%s%s%.16s  %s\n", ids,
		ctl_time(ctl_json_str(ev, "at"), at, sizeof(at)), bad ? "\x1b[31m" : "", type,
		bad ? "\x1b[0m" : "", plan ? plan : "-", wave ? "/" : "", wave ? wave : "",
		step ? " " : "", step ? step : "", message ? message : "");
}
