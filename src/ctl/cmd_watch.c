/*
 * taskslapsctl watch: a live view of the daemon. One connection carries the
 * event stream (events, follow) and a status request every second; the
 * screen is redrawn from the last status, patched by the progress events
 * that come between two of them.
 *
 * On a colour terminal the view is redrawn in place; with NO_COLOR or when
 * the output is not a terminal, the events are printed as plain lines
 * instead. Exit 0 on Ctrl-C, 3 when the daemon goes away.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ctl/client.h"

#define WATCH_STATUS_EVERY_MS 1000
#define WATCH_REDRAW_MIN_MS 100
#define WATCH_TAIL 100

static volatile sig_atomic_t watch_stop, watch_resized;

static void
on_stop(int sig)
{
	(void)sig;
	watch_stop = 1;
}

static void
on_winch(int sig)
{
	(void)sig;
	watch_resized = 1;
}

struct watch {
	struct ctl_client c;
	bool live;		 /* redraw in place */
	cJSON *status;		 /* the last status document */
	cJSON *tail[WATCH_TAIL]; /* the last events, oldest first (progress events not kept) */
	size_t ntail;
	long long events_id, status_id;
	bool status_pending;
	long long status_sent_ms, drawn_ms;
	time_t status_at; /* when the last status came */
	bool dirty;
};

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
term_size(int *rows, int *cols)
{
	struct winsize ws;

	*rows = 24;
	*cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

static void
tail_add(struct watch *w, const cJSON *ev)
{
	if (w->ntail == WATCH_TAIL) {
		cJSON_Delete(w->tail[0]);
		memmove(w->tail, w->tail + 1, (WATCH_TAIL - 1) * sizeof(*w->tail));
		w->ntail--;
	}
	w->tail[w->ntail++] = cJSON_Duplicate(ev, 1);
}

/* A progress event between two status replies moves the running step's numbers on. */
static void
patch_running(struct watch *w, const cJSON *ev)
{
	static const char *const keys[] = { "rows_done", "rows_total", "rate", "eta_s" };
	cJSON *run = w->status ? cJSON_GetObjectItemCaseSensitive(w->status, "running") : NULL;
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(ev, "metrics");
	const char *rp = ctl_json_str(run, "plan_id"), *ep = ctl_json_str(ev, "plan_id");

	if (!cJSON_IsObject(run) || !cJSON_IsObject(m) || !rp || !ep || strcmp(rp, ep) != 0)
		return;
	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, keys[i]);

		if (!cJSON_IsNumber(v))
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(run, keys[i]);
		cJSON_AddNumberToObject(run, keys[i], v->valuedouble);
	}
}

/*
 * Writes one line of text to stdout, cut to cols visible characters (escape
 * sequences take no room; a UTF-8 character takes one), then clears the rest
 * of the terminal line.
 */
static void
emit_line(const char *s, size_t n, int cols)
{
	int width = 0;
	size_t i = 0;

	while (i < n) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == 0x1b && i + 1 < n && s[i + 1] == '[') {
			size_t j = i + 2;

			while (j < n &&
			       !((unsigned char)s[j] >= 0x40 && (unsigned char)s[j] <= 0x7e))
				j++;
			fwrite(s + i, 1, j < n ? j - i + 1 : n - i, stdout);
			i = j + 1;
			continue;
		}
		if ((ch & 0xC0) != 0x80 && ++width > cols)
			break;
		fputc(ch, stdout);
		i++;
	}
	fputs("\x1b[0m\x1b[K\n", stdout);
}

static const char *
sync_text(const char *sync)
{
	if (sync && !strcmp(sync, "in_sync"))
		return "in sync";
	if (sync && !strcmp(sync, "out_of_sync"))
		return "\x1b[33mout of sync\x1b[0m";
	return "sync unknown";
}

static void
compose_header(const struct watch *w, const struct render *r)
{
	FILE *o = r->out;
	const cJSON *doc = w->status, *gov = cJSON_GetObjectItemCaseSensitive(doc, "governor");
	const cJSON *db = cJSON_GetObjectItemCaseSensitive(doc, "database");
	const char *target = ctl_json_str(doc, "target"), *state = ctl_json_str(doc, "state");
	const char *health = ctl_json_str(doc, "health"), *sync = ctl_json_str(doc, "sync");
	const char *branch = ctl_json_str(doc, "branch");
	char sha[16], clock[16];
	struct tm tm;

	localtime_r(&w->status_at, &tm);
	strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	fprintf(o,
		"\x1b[1mtaskslapsd %s\x1b[0m: %s   health %s%s\x1b[0m   %s   \x1b[2m%s  Ctrl-C "
		"quits\x1b[0m\n",
		target ? target : "?", state ? state : "?",
		ctl_status_exit(doc) == CTL_OK ? "\x1b[32m" : "\x1b[33m", health ? health : "?",
		sync_text(sync), clock);
	fprintf(o, "  branch %s%s  tip %s  governor %s", branch ? branch : "?",
		ctl_json_true(doc, "protected") ? " (protected)" : "",
		ctl_short_sha(ctl_json_str(doc, "tip"), sha, sizeof(sha)),
		ctl_json_str(gov, "state") ? ctl_json_str(gov, "state") : "?");
	if (ctl_json_num(gov, "factor", -1) >= 0)
		fprintf(o, " x%.2f", ctl_json_num(gov, "factor", 1));
	if (cJSON_IsObject(db) && !ctl_json_true(db, "connected")) {
		fputs("  \x1b[31mdatabase down\x1b[0m: ", o);
		ctl_put_oneline(o, ctl_json_str(db, "error") ? ctl_json_str(db, "error") : "?",
				400);
	}
	fputc('\n', o);
}

static void
compose_plans(const struct watch *w, const struct render *r)
{
	const cJSON *plans = cJSON_GetObjectItemCaseSensitive(w->status, "plans"), *p;
	FILE *o = r->out;

	if (!cJSON_IsArray(plans))
		return;
	fputc('\n', o);
	if (cJSON_GetArraySize(plans) == 0)
		fputs("  no plans at the branch tip\n", o);
	cJSON_ArrayForEach(p, plans)
	{
		const char *id = ctl_json_str(p, "plan_id"), *st = ctl_json_str(p, "status");
		int hz = ctl_hazard_parse(ctl_json_str(p, "max_hazard"));
		double done = ctl_json_num(p, "steps_done", 0),
		       total = ctl_json_num(p, "steps_total", 0);

		fprintf(o, "  %s %-32s %-12s ",
			hz >= 0 ? render_badge(r, (enum plan_hazard)hz) : "[--]", id ? id : "?",
			st ? st : "?");
		ctl_bar(o, r, done, total, 20);
		fprintf(o, " %.0f/%.0f\n", done, total);
	}
}

static void
compose_running(const struct watch *w, const struct render *r)
{
	const cJSON *run = cJSON_GetObjectItemCaseSensitive(w->status, "running");
	const char *wave = ctl_json_str(run, "wave"), *stmt = ctl_json_str(run, "statement");
	const char *op = ctl_json_str(run, "op"), *step = ctl_json_str(run, "step_sha");
	double done = ctl_json_num(run, "rows_done", -1),
	       total = ctl_json_num(run, "rows_total", -1);
	double rate = ctl_json_num(run, "rate", -1), eta = ctl_json_num(run, "eta_s", -1);
	double lw = ctl_json_num(run, "lock_wait_ms", -1);
	FILE *o = r->out;
	int cur = -1;

	if (!cJSON_IsObject(run))
		return;
	for (int i = 0; i < WAVE__COUNT && wave; i++)
		if (!strcmp(wave, plan_wave_name((enum plan_wave)i)))
			cur = i;
	fprintf(o, "\n\x1b[1mrunning %s\x1b[0m  step %.16s%s%s%s\n",
		ctl_json_str(run, "plan_id") ? ctl_json_str(run, "plan_id") : "?",
		step ? step : "-", op ? " (" : "", op ? op : "", op ? ")" : "");
	/* the waves so far, and how far into this one the backfill is */
	fputs("  waves    ", o);
	ctl_bar(o, r,
		cur < 0 ? 0
			: cur + (done >= 0 && total > 0 ? (done > total ? 1 : done / total) : 0),
		WAVE__COUNT, 20);
	for (int i = 0; i < WAVE__COUNT; i++) {
		const char *name = plan_wave_name((enum plan_wave)i);

		fputs(i ? " > " : " ", o);
		if (i == cur)
			fprintf(o, "\x1b[1;34m%s\x1b[0m", name);
		else if (i < cur)
			fprintf(o, "\x1b[2m%s\x1b[0m", name);
		else
			fputs(name, o);
	}
	if (cur < 0 && wave)
		fprintf(o, "  (%s)", wave);
	fputc('\n', o);
	if (stmt && stmt[0]) {
		fputs("  sql      ", o);
		ctl_put_oneline(o, stmt, 1000);
		fputc('\n', o);
	}
	if (lw > 0)
		fprintf(o, "  lock     waited %.0f ms\n", lw);
	if (done >= 0 || total > 0) {
		char eta_s[32] = "";

		if (eta >= 0)
			snprintf(eta_s, sizeof(eta_s), "  ETA %.0fs", eta);
		fputs("  backfill ", o);
		ctl_bar(o, r, done, total, 20);
		fprintf(o, " %.0f/%.0f rows  %.0f rows/s%s\n", done < 0 ? 0 : done,
			total < 0 ? 0 : total, rate < 0 ? 0 : rate, eta_s);
	}
}

static void
draw(struct watch *w)
{
	struct render r = { .color = true };
	char *text = NULL;
	size_t len = 0;
	int rows, cols, used = 0, room;
	const cJSON *drift = cJSON_GetObjectItemCaseSensitive(w->status, "drift"), *d;

	term_size(&rows, &cols);
	if (!(r.out = open_memstream(&text, &len)))
		return;
	if (w->status) {
		compose_header(w, &r);
		compose_plans(w, &r);
		compose_running(w, &r);
		if (cJSON_IsArray(drift) && cJSON_GetArraySize(drift) > 0) {
			fputs("\n\x1b[31mdrift\x1b[0m   ", r.out);
			cJSON_ArrayForEach(d, drift)
			    fprintf(r.out, " %s", cJSON_IsString(d) ? d->valuestring : "?");
			fputc('\n', r.out);
		}
	} else {
		fprintf(r.out, "taskslapsd at %s: waiting for its status...\n", w->c.path);
	}
	fflush(r.out);
	for (size_t i = 0; i < len; i++)
		used += text[i] == '\n';
	/* the event tail gets the rows that are left */
	room = rows - used - 3;
	if (room > 0 && w->ntail > 0) {
		size_t from = w->ntail > (size_t)room ? w->ntail - (size_t)room : 0;

		fputs("\n\x1b[1mevents\x1b[0m\n", r.out);
		for (size_t i = from; i < w->ntail; i++)
			ctl_print_event(&r, w->tail[i]);
	}
	fclose(r.out);
	fputs("\x1b[H", stdout);
	used = 0;
	for (char *p = text, *nl; p < text + len && used < rows - 1; p = nl + 1, used++) {
		nl = memchr(p, '\n', (size_t)(text + len - p));
		if (!nl)
			nl = text + len;
		emit_line(p, (size_t)(nl - p), cols);
	}
	fputs("\x1b[J", stdout);
	fflush(stdout);
	free(text);
	w->drawn_ms = mono_ms();
	w->dirty = false;
}

/* Handles one reply; CTL_OK to go on, else the exit status. */
static int
handle(struct watch *w, struct proto_reply *rep)
{
	if (rep->kind == PROTO_ERROR) {
		/* the stream or the status was refused: nothing to watch */
		return ctl_client_error_status(&w->c, rep);
	}
	if (rep->id == w->events_id && rep->kind == PROTO_EVENT) {
		const char *type = ctl_json_str(rep->payload, "type");

		if (!w->live) {
			struct render r;

			render_init(&r, stdout);
			r.color = false;
			ctl_print_event(&r, rep->payload);
			fflush(stdout);
			return CTL_OK;
		}
		if (type && !strcmp(type, "step.progress"))
			patch_running(w, rep->payload);
		else
			tail_add(w, rep->payload);
		w->dirty = true;
	} else if (rep->id == w->events_id && rep->kind == PROTO_END) {
		fprintf(stderr, "taskslapsctl watch: the daemon at %s ended the event stream\n",
			w->c.path);
		return CTL_UNREACHABLE;
	} else if (rep->id == w->status_id && rep->kind == PROTO_RESULT) {
		if (cJSON_IsObject(rep->payload)) {
			cJSON_Delete(w->status);
			w->status = rep->payload;
			rep->payload = NULL;
			w->status_at = time(NULL);
			w->dirty = true;
		}
		w->status_pending = false;
	}
	return CTL_OK;
}

static int
watch_loop(struct watch *w)
{
	cJSON *args = cJSON_CreateObject();

	cJSON_AddTrueToObject(args, "follow");
	if (ctl_client_send(&w->c, "events", args, &w->events_id) < 0)
		return ctl_client_recv_error(&w->c, CTL_RECV_GONE);
	while (!watch_stop) {
		struct proto_reply rep;
		enum ctl_recv got;
		long long now = mono_ms();
		int wait = 1000, rc;

		if (w->live && !w->status_pending &&
		    now - w->status_sent_ms >= WATCH_STATUS_EVERY_MS) {
			if (ctl_client_send(&w->c, "status", NULL, &w->status_id) < 0)
				return ctl_client_recv_error(&w->c, CTL_RECV_GONE);
			w->status_pending = true;
			w->status_sent_ms = now;
		}
		if (w->live && (w->dirty || watch_resized)) {
			if (now - w->drawn_ms >= WATCH_REDRAW_MIN_MS || watch_resized) {
				watch_resized = 0;
				draw(w);
			} else {
				wait = WATCH_REDRAW_MIN_MS;
			}
		}
		if (w->live && !w->status_pending) {
			long long due = w->status_sent_ms + WATCH_STATUS_EVERY_MS - now;
			if (due < wait)
				wait = due < 0 ? 0 : (int)due;
		}
		got = ctl_client_recv(&w->c, &rep, wait);
		if (got == CTL_RECV_INTR || got == CTL_RECV_TIMEOUT)
			continue;
		if (got != CTL_RECV_OK)
			return ctl_client_recv_error(&w->c, got);
		rc = handle(w, &rep);
		proto_reply_free(&rep);
		if (rc != CTL_OK)
			return rc;
	}
	return CTL_OK;
}

int
cmd_watch(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct watch w;
	struct render probe;
	struct sigaction sa;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (ch == 'h') {
			ctl_usage(stdout, ctl_verb_find("watch"));
			return CTL_OK;
		}
		ctl_usage(stderr, ctl_verb_find("watch"));
		return CTL_USAGE;
	}
	if (optind != argc) {
		fprintf(stderr, "taskslapsctl watch: unexpected argument '%s'\n", argv[optind]);
		ctl_usage(stderr, ctl_verb_find("watch"));
		return CTL_USAGE;
	}
	memset(&w, 0, sizeof(w));
	if ((rc = ctl_client_open(&w.c, g, "watch")) != CTL_OK)
		return rc;
	/* a colour terminal gets the live view; NO_COLOR or a pipe, plain event lines */
	render_init(&probe, stdout);
	w.live = probe.color;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	watch_stop = 0;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (w.live) {
		sa.sa_handler = on_winch;
		sigaction(SIGWINCH, &sa, NULL);
		fputs("\x1b[?25l\x1b[2J", stdout); /* hide the cursor, clear */
		draw(&w);
	} else {
		fprintf(stderr, "taskslapsctl watch: events of the daemon at %s (Ctrl-C stops)\n",
			w.c.path);
	}
	rc = watch_loop(&w);
	if (w.live) {
		fputs("\x1b[?25h", stdout); /* the cursor back */
		fflush(stdout);
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGWINCH, SIG_DFL);
	for (size_t i = 0; i < w.ntail; i++)
		cJSON_Delete(w.tail[i]);
	cJSON_Delete(w.status);
	ctl_client_close(&w.c);
	return rc;
}
