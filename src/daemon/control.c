/*
 * The control socket: versioned JSON lines (include/taskslaps/proto.h) on a
 * UNIX socket of mode 0660. Status is served from memory, so it answers
 * while PostgreSQL is down. Every command is in the table `commands` with
 * who may ask for it: PROTO_READ (anyone who can open the socket) only when
 * its entry says so, otherwise root, the daemon's own user and the
 * configured admin group, checked with SO_PEERCRED. Nothing here blocks on
 * the database: requests that need it are queued for the worker, which
 * posts the reply back. All of it runs on the main thread.
 */
#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/fphash.h"
#include "daemon/worker_int.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strbuf.h"

/* A client that sends more than this without a newline is cut off. */
#define CLIENT_MAX_INPUT (64 * 1024)
/*
 * A client that does not read what it asked for, or the events it follows,
 * is disconnected when this much waits for it (one reply, however long, is
 * always queued), rather than let the daemon's memory grow with every
 * request it sends.
 */
#define CLIENT_MAX_OUTPUT (256 * 1024)
/* File descriptors kept for the rest of the daemon (libpq, libgit2's packs, inotify...). */
#define CONTROL_FD_RESERVE 64
/* Out of descriptors: accept again after this long, or when a client leaves. */
#define ACCEPT_RETRY_USEC (250 * 1000ULL)
/* At most one log line this often for refused or slow clients. */
#define RATELOG_USEC (10 * 1000000ULL)

struct client {
	struct client *next;
	struct daemon *d;
	int fd;
	unsigned serial;
	sd_event_source *src;
	struct strbuf in, out;
	size_t out_off;
	struct ucred cred;
	bool follow; /* subscribed to events */
	long long follow_id;
	char *follow_plan;
	bool closing; /* close once the output is written */
	bool dead;    /* disconnected: freed as soon as the caller is done with it */
};

static void client_free(struct client *c);
static int on_client(sd_event_source *s, int fd, uint32_t revents, void *arg);

static void
client_update_events(struct client *c)
{
	uint32_t ev = EPOLLIN;

	if (c->out.len > c->out_off)
		ev |= EPOLLOUT;
	(void)sd_event_source_set_io_events(c->src, ev);
}

/*
 * Whether a line about a kind of trouble may be logged now; otherwise it is
 * counted. When it may, more gets " (and N more since the last line)" for
 * the lines left out, or "".
 */
static bool
ratelog_ok(struct daemon *d, struct ratelog *rl, char *more, size_t morelen)
{
	uint64_t now = 0;

	(void)sd_event_now(d->loop, CLOCK_MONOTONIC, &now);
	if (now < rl->next_usec) {
		rl->suppressed++;
		return false;
	}
	rl->next_usec = now + RATELOG_USEC;
	if (rl->suppressed)
		snprintf(more, morelen, " (and %u more since the last line)", rl->suppressed);
	else
		more[0] = '\0';
	rl->suppressed = 0;
	return true;
}

/*
 * Disconnects c now: nothing more is read from it or written to it, its
 * descriptor is closed, and the struct is freed by whoever holds it
 * (on_client, control_flush) when it is done with it.
 */
static void
client_kill(struct client *c)
{
	bool big;

	if (c->dead)
		return;
	c->dead = true;
	c->follow = false;
	c->src = sd_event_source_disable_unref(c->src);
	close(c->fd);
	c->fd = -1;
	big = c->out.cap > CLIENT_MAX_OUTPUT / 2;
	sb_free(&c->in);
	sb_free(&c->out);
	c->out_off = 0;
	/*
	 * What a client left unread goes back to the system, not only to the
	 * heap: a burst of such clients should not leave the daemon's RSS up
	 */
	if (big)
		(void)malloc_trim(0);
}

static void
client_send(struct client *c, const char *line)
{
	size_t pending = c->out.len - c->out_off;
	char more[64];

	if (c->dead)
		return;
	if (pending > 0 && pending + strlen(line) > CLIENT_MAX_OUTPUT) {
		if (ratelog_ok(c->d, &c->d->slow_log, more, sizeof(more)))
			log_warnx("[%s] control client pid %d uid %d does not read its replies or "
				  "events (%zu bytes waiting): disconnected%s",
				  c->d->cfg->target, (int)c->cred.pid, (int)c->cred.uid, pending,
				  more);
		client_kill(c);
		return;
	}
	sb_puts(&c->out, line);
	client_update_events(c);
}

static void
client_send_owned(struct client *c, char *line)
{
	client_send(c, line);
	free(line);
}

/* root, the daemon's own user, or a member of admin_group. */
static bool
allowed(struct client *c)
{
	struct daemon *d = c->d;
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	gid_t groups[256];
	int n = 256;

	if (c->cred.uid == 0 || c->cred.uid == d->self_uid)
		return true;
	if (!d->have_admin_gid)
		return false;
	if (c->cred.gid == d->admin_gid)
		return true;
	if (getpwuid_r(c->cred.uid, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
		return false;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == d->admin_gid)
			return true;
	return false;
}

static const char *
arg_str(const struct proto_request *rq, const char *key)
{
	cJSON *v = rq->args ? cJSON_GetObjectItem(rq->args, key) : NULL;
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *
message(const char *text)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "message", text);
	return o;
}

static void
queue_job(struct client *c, const struct proto_request *rq, const char *plan)
{
	struct daemon *d = c->d;
	struct job *j = xcalloc(1, sizeof(*j)), **tail;

	j->cmd = xstrdup(rq->cmd);
	j->plan_id = xstrdup(plan);
	j->client_serial = c->serial;
	j->req_id = rq->id;
	pthread_mutex_lock(&d->mu);
	for (tail = &d->jobs; *tail; tail = &(*tail)->next)
		;
	*tail = j;
	atomic_store(&d->wake, true); /* a resumed plan should run now */
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->mu);
}

static void
send_history(struct client *c, long long id, const char *plan)
{
	struct daemon *d = c->d;
	cJSON *h;

	pthread_mutex_lock(&d->mu);
	h = cJSON_Duplicate(d->history, 1);
	pthread_mutex_unlock(&d->mu);
	for (cJSON *e = h ? h->child : NULL; e; e = e->next) {
		cJSON *pid = cJSON_GetObjectItem(e, "plan_id");
		if (plan && !(cJSON_IsString(pid) && !strcmp(pid->valuestring, plan)))
			continue;
		client_send_owned(c, proto_reply_event(id, cJSON_Duplicate(e, 1)));
	}
	cJSON_Delete(h);
}

/*
 * The status document's "plans" by plan id: each id's items in document
 * order (an invalid file may share a plan's id), in an open-addressing table
 * of chains. Made again only when d->plans_gen has moved since; the items
 * are the document's (under mu).
 */
struct plans_index {
	unsigned long gen;
	size_t cap;    /* a power of two, over twice the number of ids */
	size_t *slots; /* index in ents of an id's first item, or NONE */
	struct pidx_ent {
		const char *id;
		const cJSON *item;
		size_t next; /* the next item of the same id, or NONE */
	} * ents;
	size_t n;
};

#define PIDX_NONE ((size_t)-1)

static size_t
pidx_hash(const char *s)
{
	return (size_t)fp_str(FP_SEED, s);
}

static void
plans_index_free(struct plans_index *x)
{
	if (!x)
		return;
	free(x->slots);
	free(x->ents);
	free(x);
}

/* The index of plans (an array of the status document), made anew. */
static struct plans_index *
plans_index_new(const cJSON *plans, unsigned long gen)
{
	struct plans_index *x = xcalloc(1, sizeof(*x));
	size_t cnt = (size_t)cJSON_GetArraySize(plans), *last;
	const cJSON *one;

	x->gen = gen;
	x->cap = 16;
	while (x->cap < 2 * cnt)
		x->cap *= 2;
	x->slots = xmalloc(x->cap * sizeof(*x->slots));
	memset(x->slots, 0xff, x->cap * sizeof(*x->slots));
	x->ents = xcalloc(cnt ? cnt : 1, sizeof(*x->ents));
	last = xcalloc(cnt ? cnt : 1, sizeof(*last));
	cJSON_ArrayForEach(one, plans)
	{
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(one, "plan_id"));
		size_t h, k;

		if (!id || x->n == cnt)
			continue;
		k = x->n++;
		x->ents[k] = (struct pidx_ent){ id, one, PIDX_NONE };
		for (h = pidx_hash(id) & (x->cap - 1); x->slots[h] != PIDX_NONE;
		     h = (h + 1) & (x->cap - 1))
			if (!strcmp(x->ents[x->slots[h]].id, id))
				break;
		if (x->slots[h] == PIDX_NONE) {
			x->slots[h] = k;
		} else {
			/* last[first] is the id's last item so far */
			x->ents[last[x->slots[h]]].next = k;
		}
		last[x->slots[h]] = k;
	}
	free(last);
	return x;
}

/* The first item of id in the index, or NONE. */
static size_t
plans_index_find(const struct plans_index *x, const char *id)
{
	for (size_t h = pidx_hash(id) & (x->cap - 1); x->slots[h] != PIDX_NONE;
	     h = (h + 1) & (x->cap - 1))
		if (!strcmp(x->ents[x->slots[h]].id, id))
			return x->slots[h];
	return PIDX_NONE;
}

static void
cmd_status(struct client *c, const struct proto_request *rq)
{
	struct daemon *d = c->d;
	const char *plan = arg_str(rq, "plan");
	cJSON *s, *it, *plans;

	pthread_mutex_lock(&d->mu);
	if (!plan) {
		s = cJSON_Duplicate(d->status, 1);
	} else {
		/* args.plan: "plans" holds that plan alone (or nothing): no copy of every plan */
		s = cJSON_CreateObject();
		cJSON_ArrayForEach(it, d->status)
		{
			if (strcmp(it->string, "plans") != 0) {
				cJSON_AddItemToObject(s, it->string, cJSON_Duplicate(it, 1));
				continue;
			}
			plans = cJSON_AddArrayToObject(s, "plans");
			if (!d->plans_idx || d->plans_idx->gen != d->plans_gen) {
				plans_index_free(d->plans_idx);
				d->plans_idx = plans_index_new(it, d->plans_gen);
			}
			/* every item: an invalid file may share a plan's id */
			for (size_t k = plans_index_find(d->plans_idx, plan); k != PIDX_NONE;
			     k = d->plans_idx->ents[k].next)
				cJSON_AddItemToArray(
				    plans, cJSON_Duplicate(d->plans_idx->ents[k].item, 1));
		}
	}
	cJSON_AddItemToObject(s, "history", cJSON_Duplicate(d->history, 1));
	pthread_mutex_unlock(&d->mu);
	client_send_owned(c, proto_reply_result(rq->id, s));
}

static void
cmd_events(struct client *c, const struct proto_request *rq)
{
	cJSON *f = rq->args ? cJSON_GetObjectItem(rq->args, "follow") : NULL;
	const char *plan = arg_str(rq, "plan");

	send_history(c, rq->id, plan);
	if (cJSON_IsTrue(f)) {
		c->follow = true;
		c->follow_id = rq->id;
		free(c->follow_plan);
		c->follow_plan = plan ? xstrdup(plan) : NULL;
	} else {
		client_send_owned(c, proto_reply_end(rq->id));
	}
}

static void cmd_commands(struct client *c, const struct proto_request *rq);

static void
cmd_reconcile(struct client *c, const struct proto_request *rq)
{
	struct daemon *d = c->d;

	daemon_request_retry(d);
	client_send_owned(c, proto_reply_result(rq->id, message("reconciling now")));
}

static void
cmd_abort(struct client *c, const struct proto_request *rq)
{
	struct daemon *d = c->d;
	cJSON *state;
	bool running;

	pthread_mutex_lock(&d->mu);
	/* a plan in progress, even between steps (the governor may be pausing it) */
	state = cJSON_GetObjectItem(d->status, "state");
	running = d->ex && (cJSON_IsObject(cJSON_GetObjectItem(d->status, "running")) ||
			    (cJSON_IsString(state) && !strcmp(state->valuestring, "applying")));
	if (running)
		exec_abort(d->ex);
	pthread_mutex_unlock(&d->mu);
	log_info("[%s] abort requested by uid %d", d->cfg->target, (int)c->cred.uid);
	client_send_owned(c, proto_reply_result(rq->id, message(running ? "abort requested: the "
									  "running statement is "
									  "cancelled, the plan is "
									  "marked aborted"
									: "nothing is running")));
}

/* resume and accept-drift: the worker does them, with the database. */
static void
cmd_plan_job(struct client *c, const struct proto_request *rq)
{
	const char *plan = arg_str(rq, "plan");

	if (!plan || !*plan)
		client_send_owned(c, proto_reply_error(rq->id, TS_PROTO_E_BAD_REQUEST,
						       "args.plan: expected a plan id"));
	else
		queue_job(c, rq, plan);
}

/*
 * Every command of the socket, and who may ask for it. A name not here is
 * an unknown command. .access left out is PROTO_ADMIN: opening a command to
 * every local user takes an explicit PROTO_READ, which is for what only
 * reads and shows nothing secret (status redacts the repository URL, and
 * the database error has no password in it).
 */
static const struct command {
	const char *name;
	void (*run)(struct client *c, const struct proto_request *rq);
	enum proto_access access;
} commands[] = {
	{ .name = "status", .run = cmd_status, .access = PROTO_READ },
	{ .name = "events", .run = cmd_events, .access = PROTO_READ },
	{ .name = "commands", .run = cmd_commands, .access = PROTO_READ },
	{ .name = "reconcile", .run = cmd_reconcile },
	{ .name = "abort", .run = cmd_abort },
	{ .name = "resume", .run = cmd_plan_job },
	{ .name = "accept-drift", .run = cmd_plan_job },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The table, for tests and tools: {"commands":[{"name":..,"access":"read"|"admin"}, ...]}. */
static void
cmd_commands(struct client *c, const struct proto_request *rq)
{
	cJSON *res = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(res, "commands");

	for (size_t i = 0; i < NCOMMANDS; i++) {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "name", commands[i].name);
		cJSON_AddStringToObject(e, "access", proto_access_name(commands[i].access));
		cJSON_AddItemToArray(list, e);
	}
	client_send_owned(c, proto_reply_result(rq->id, res));
}

static const struct command *
command_find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void
handle(struct client *c, const char *line, size_t len)
{
	struct daemon *d = c->d;
	struct proto_request rq = { 0 };
	const struct command *cmd;
	const char *code = NULL;
	char msg[256];

	if (proto_request_decode(line, len, &rq, &code, msg, sizeof(msg)) < 0) {
		/* the decoder keeps the id when it could read one, so the reply can echo it */
		client_send_owned(c, proto_reply_error(rq.id, code, msg));
		return;
	}
	cmd = command_find(rq.cmd);
	if (!cmd) {
		struct strbuf sb = { 0 };

		for (size_t i = 0; i < NCOMMANDS; i++)
			sb_printf(&sb, "%s%s", i ? ", " : "", commands[i].name);
		snprintf(msg, sizeof(msg), "unknown command '%.64s' (expected %s)", rq.cmd,
			 sb_str(&sb));
		sb_free(&sb);
		client_send_owned(c, proto_reply_error(rq.id, TS_PROTO_E_UNKNOWN_CMD, msg));
	} else if (cmd->access != PROTO_READ && !allowed(c)) {
		/* the group allowed() checks: the one of the start, whatever a reload says */
		proto_forbidden_message(msg, sizeof(msg), cmd->name, d->admin_group,
					d->have_admin_gid);
		log_warnx("[%s] refused '%s' from uid %d pid %d", d->cfg->target, cmd->name,
			  (int)c->cred.uid, (int)c->cred.pid);
		client_send_owned(c, proto_reply_error(rq.id, TS_PROTO_E_FORBIDDEN, msg));
	} else {
		cmd->run(c, &rq);
	}
	proto_request_free(&rq);
}

static int
on_client(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	struct client *c = arg;
	char buf[8192];
	ssize_t n;

	(void)s;
	if (c->dead)
		return 0;
	if (revents & EPOLLOUT) {
		n = write(fd, c->out.buf + c->out_off, c->out.len - c->out_off);
		if (n < 0 && errno != EAGAIN) {
			client_free(c);
			return 0;
		}
		if (n > 0)
			c->out_off += (size_t)n;
		if (c->out_off == c->out.len) {
			sb_reset(&c->out);
			c->out_off = 0;
			if (c->closing) {
				client_free(c);
				return 0;
			}
		}
		client_update_events(c);
	}
	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			client_free(c);
			return 0;
		}
		/* a client being closed (its line was too long) gets no more answers */
		if (n > 0 && !c->closing)
			sb_add(&c->in, buf, (size_t)n);
		for (;;) {
			char *nl = c->in.buf ? memchr(c->in.buf, '\n', c->in.len) : NULL;
			size_t len;

			if (!nl)
				break;
			len = (size_t)(nl - c->in.buf);
			handle(c, c->in.buf, len);
			if (c->dead) {
				/* disconnected for not reading: its other requests go unanswered */
				client_free(c);
				return 0;
			}
			memmove(c->in.buf, nl + 1, c->in.len - len - 1);
			c->in.len -= len + 1;
			c->in.buf[c->in.len] = '\0';
		}
		if (c->in.len > CLIENT_MAX_INPUT) {
			client_send_owned(c, proto_reply_error(0, TS_PROTO_E_BAD_REQUEST,
							       "request line too long"));
			c->closing = true;
			sb_reset(&c->in);
		}
	}
	if (c->dead)
		client_free(c);
	return 0;
}

static int
on_accept_retry(sd_event_source *s, uint64_t usec, void *arg)
{
	struct daemon *d = arg;

	(void)s;
	(void)usec;
	(void)sd_event_source_set_enabled(d->listen_src, SD_EVENT_ON);
	return 0;
}

/*
 * accept(2) found no descriptor to give. The connection stays in the
 * backlog and the socket stays readable: left on, the loop would spin on
 * it. So stop listening until a client leaves or a short while has passed.
 */
static void
accept_pause(struct daemon *d, int err)
{
	uint64_t now = 0;
	char more[64];

	(void)sd_event_source_set_enabled(d->listen_src, SD_EVENT_OFF);
	(void)sd_event_now(d->loop, CLOCK_MONOTONIC, &now);
	if (d->accept_timer) {
		(void)sd_event_source_set_time(d->accept_timer, now + ACCEPT_RETRY_USEC);
		(void)sd_event_source_set_enabled(d->accept_timer, SD_EVENT_ONESHOT);
	} else if (sd_event_add_time(d->loop, &d->accept_timer, CLOCK_MONOTONIC,
				     now + ACCEPT_RETRY_USEC, 0, on_accept_retry, d) < 0) {
		/* without the timer, only a leaving client turns listening back on */
		d->accept_timer = NULL;
	}
	if (ratelog_ok(d, &d->nofd_log, more, sizeof(more)))
		log_warnx("[%s] control socket: cannot accept a connection: %s (%u clients "
			  "connected); not accepting for a moment%s",
			  d->cfg->target, strerror(err), d->nclients, more);
}

/*
 * How many clients may be connected at once: control_max_clients, and no
 * more than the descriptors left when CONTROL_FD_RESERVE are kept for the
 * rest of the daemon (read each time: the limit may be lowered while
 * running, with prlimit).
 */
static unsigned
max_clients(const struct daemon *d)
{
	struct rlimit rl;
	unsigned max = (unsigned)d->cfg->control_max_clients;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		rlim_t room = rl.rlim_cur > 2 * CONTROL_FD_RESERVE
				  ? rl.rlim_cur - CONTROL_FD_RESERVE
				  : rl.rlim_cur / 2;
		if (room < max)
			max = room ? (unsigned)room : 1;
	}
	return max;
}

/* One line telling a client over the limit why, then the connection is closed. */
static void
refuse(struct daemon *d, int cfd, unsigned max)
{
	char msg[192], more[64], *line;

	snprintf(msg, sizeof(msg),
		 "too many control connections (%u, the most served at once): try again later",
		 max);
	line = proto_reply_error(0, TS_PROTO_E_UNAVAILABLE, msg);
	/* a new socket's buffer is empty: a short line goes in whole or not at all */
	if (write(cfd, line, strlen(line)) < 0) {
		/* the client is gone already: nothing to tell */
	}
	free(line);
	close(cfd);
	if (ratelog_ok(d, &d->refused_log, more, sizeof(more)))
		log_warnx("[%s] control socket: refused a connection: %u clients connected, the "
			  "most served at once (control_max_clients)%s",
			  d->cfg->target, max, more);
}

static int
on_accept(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	struct daemon *d = arg;
	struct client *c;
	socklen_t len = sizeof(struct ucred);
	unsigned max;
	int cfd;

	(void)s;
	(void)revents;
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			accept_pause(d, errno);
		return 0;
	}
	if (d->nclients >= (max = max_clients(d))) {
		refuse(d, cfd, max);
		return 0;
	}
	c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->fd = cfd;
	c->serial = ++d->next_serial;
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
		/* without credentials nobody may change anything */
		c->cred.uid = (uid_t)-1;
		c->cred.gid = (gid_t)-1;
	}
	if (sd_event_add_io(d->loop, &c->src, cfd, EPOLLIN, on_client, c) < 0) {
		close(cfd);
		free(c);
		return 0;
	}
	c->next = d->clients;
	d->clients = c;
	d->nclients++;
	return 0;
}

/* Whether something accepts connections at sa (a full backlog counts as in use). */
static bool
socket_in_use(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	bool used;

	if (fd < 0)
		return false;
	used = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN;
	close(fd);
	return used;
}

int
control_listen(struct daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = d->cfg->control_socket;
	mode_t old;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_warnx("[%s] control_socket path too long: %s", d->cfg->target, path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	d->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->listen_fd < 0) {
		log_warn("socket");
		return -1;
	}
	/*
	 * A stale socket from a crash: connecting to it fails, so it can go. One
	 * a live daemon listens on stays: taking it over would leave that daemon
	 * unreachable, and its socket would go when this one exits.
	 */
	if (socket_in_use(&sa)) {
		log_warnx("[%s] another process listens on the control socket %s (is taskslapsd "
			  "already running for this target?)",
			  d->cfg->target, path);
		close(d->listen_fd);
		d->listen_fd = -1; /* not ours: control_close must not remove it */
		return -1;
	}
	(void)unlink(path);
	old = umask(0117); /* 0660 */
	if (bind(d->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		umask(old);
		log_warn("[%s] cannot bind the control socket %s", d->cfg->target, path);
		close(d->listen_fd);
		d->listen_fd = -1;
		return -1;
	}
	umask(old);
	if (d->have_admin_gid && chown(path, (uid_t)-1, d->admin_gid) < 0)
		log_warn("[%s] chown %s to the admin group", d->cfg->target, path);
	if (listen(d->listen_fd, 16) < 0 ||
	    sd_event_add_io(d->loop, &d->listen_src, d->listen_fd, EPOLLIN, on_accept, d) < 0) {
		log_warn("[%s] listen on %s", d->cfg->target, path);
		return -1;
	}
	return 0;
}

static void
client_free(struct client *c)
{
	struct daemon *d = c->d;

	for (struct client **p = &d->clients; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	client_kill(c);
	free(c->follow_plan);
	free(c);
	d->nclients--;
	/* a descriptor is free again: if accepting was paused for want of one, go on */
	if (d->listen_src)
		(void)sd_event_source_set_enabled(d->listen_src, SD_EVENT_ON);
}

void
control_close(struct daemon *d)
{
	while (d->clients)
		client_free(d->clients);
	d->listen_src = sd_event_source_disable_unref(d->listen_src);
	d->accept_timer = sd_event_source_disable_unref(d->accept_timer);
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		(void)unlink(d->cfg->control_socket);
	}
	pthread_mutex_lock(&d->mu);
	plans_index_free(d->plans_idx);
	d->plans_idx = NULL;
	pthread_mutex_unlock(&d->mu);
}

void
control_flush(struct daemon *d)
{
	struct outq *q;

	pthread_mutex_lock(&d->mu);
	q = d->outq;
	d->outq = NULL;
	d->outq_tail = &d->outq;
	pthread_mutex_unlock(&d->mu);
	while (q) {
		struct outq *next = q->next;

		if (q->line && q->client_serial) {
			for (struct client *c = d->clients; c; c = c->next)
				if (c->serial == q->client_serial)
					client_send(c, q->line);
		} else if (q->line) {
			for (struct client *c = d->clients; c; c = c->next) {
				if (!c->follow ||
				    (c->follow_plan &&
				     (!q->plan_id || strcmp(c->follow_plan, q->plan_id))))
					continue;
				client_send_owned(
				    c, proto_reply_event(c->follow_id, cJSON_Parse(q->line)));
			}
		}
		free(q->line);
		free(q->plan_id);
		free(q);
		q = next;
	}
	/* the clients this delivery found not reading */
	for (struct client **p = &d->clients; *p;) {
		struct client *c = *p;

		if (c->dead)
			client_free(c); /* unlinks c: *p is the next one now */
		else
			p = &c->next;
	}
}
