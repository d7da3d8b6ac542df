/*
 * taskslapsctl status [--json]: the daemon's status document, as a person
 * reads it or as it came. Exit 0 when the target is healthy or progressing,
 * 1 when it is degraded, failed or paused, 3 when the daemon does not answer.
 *
 * The renderer tolerates any key being absent or of another type: a newer or
 * older daemon may send a little more or less.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/client.h"
#include "line/line.h"
#include "util/strbuf.h"

/* How long status may take: the daemon answers it from memory. */
#define STATUS_TIMEOUT_MS 30000

/* SGR colours */
#define SGR_GREEN "32"
#define SGR_BLUE "34"
#define SGR_YELLOW "33"
#define SGR_RED "31"
#define SGR_BOLD "1"
#define SGR_DIM "2"

/* Writes s, in colour sgr on a terminal. */
static void
put(const struct render *r, const char *sgr, const char *s)
{
	if (r->color && sgr)
		fprintf(r->out, "\x1b[%sm%s\x1b[0m", sgr, s);
	else
		fputs(s, r->out);
}

static const char *
health_sgr(const char *h)
{
	enum line_health v;

	if (!h || line_health_parse(h, &v) < 0)
		return NULL;
	switch (v) {
	case LINE_HEALTHY: return SGR_GREEN;
	case LINE_PROGRESSING: return SGR_BLUE;
	case LINE_DEGRADED:
	case LINE_PAUSED: return SGR_YELLOW;
	case LINE_FAILED_HEALTH: break;
	}
	return SGR_RED;
}

static const char *
state_sgr(const char *s)
{
	if (!s)
		return NULL;
	if (!strcmp(s, "error"))
		return SGR_RED;
	if (!strcmp(s, "reconnecting") || !strcmp(s, "standby") || !strcmp(s, "stopping"))
		return SGR_YELLOW;
	if (!strcmp(s, "applying") || !strcmp(s, "reconciling"))
		return SGR_BLUE;
	return SGR_GREEN;
}

static const char *
governor_sgr(const char *s)
{
	if (!s)
		return NULL;
	if (!strcmp(s, "healthy"))
		return SGR_GREEN;
	if (!strcmp(s, "degraded"))
		return SGR_YELLOW;
	return SGR_RED;
}

static const char *
plan_status_sgr(const char *s)
{
	enum line_status st;

	if (!s || line_status_parse(s, &st) < 0 || st == LINE_PENDING)
		return NULL;
	/* undone by a revert plan ("reverted", "reverted to expand"): settled too */
	if (st == LINE_APPLIED || line_status_reverted(st))
		return SGR_GREEN;
	/* running, or what the plan says of the target's health (line_status_health) */
	return health_sgr(line_health_name(line_status_health(st)));
}

/* "  label           " */
static void
label(const struct render *r, const char *l)
{
	fprintf(r->out, "  %-16s", l);
}

/* A duration in seconds, short: "45s", "2m05s", "1h02m". */
static void
fmt_duration(double s, char *buf, size_t n)
{
	long long t = s < 0 ? 0 : (long long)(s + 0.5);

	if (t < 60)
		snprintf(buf, n, "%llds", t);
	else if (t < 3600)
		snprintf(buf, n, "%lldm%02llds", t / 60, t % 60);
	else
		snprintf(buf, n, "%lldh%02lldm", t / 3600, t / 60 % 60);
}

/* Seconds since an ISO 8601 UTC time, or -1. */
static double
seconds_since(const char *iso)
{
	struct tm tm;
	const char *rest;
	time_t t;

	if (!iso)
		return -1;
	memset(&tm, 0, sizeof(tm));
	if (!(rest = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm)))
		return -1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	return difftime(time(NULL), t);
}

int
ctl_status_exit(const cJSON *doc)
{
	enum line_health h;

	if (line_health_parse(ctl_json_str(doc, "health"), &h) == 0 &&
	    line_health_worse(h, LINE_PROGRESSING) == LINE_PROGRESSING)
		return CTL_OK;
	return CTL_FINDINGS;
}

static void
render_header(const struct render *r, const cJSON *doc)
{
	FILE *o = r->out;
	const char *target = ctl_json_str(doc, "target"), *state = ctl_json_str(doc, "state");
	const char *version = ctl_json_str(doc, "version"),
		   *started = ctl_json_str(doc, "started_at");
	const char *branch = ctl_json_str(doc, "branch"), *mode = ctl_json_str(doc, "mode");
	const char *sync = ctl_json_str(doc, "sync"), *health = ctl_json_str(doc, "health");
	const char *result = ctl_json_str(doc, "last_result"), *s;
	const cJSON *db = cJSON_GetObjectItemCaseSensitive(doc, "database");
	const cJSON *gov = cJSON_GetObjectItemCaseSensitive(doc, "governor");
	double pid = ctl_json_num(doc, "pid", -1);
	char buf[64];

	fputs("taskslapsd ", o);
	put(r, SGR_BOLD, target ? target : "?");
	fputs(": ", o);
	put(r, state_sgr(state), state ? state : "unknown");
	if (pid >= 0 || version || started) {
		struct strbuf sb = STRBUF_INIT;

		if (pid >= 0)
			sb_printf(&sb, "pid %.0f", pid);
		if (version)
			sb_printf(&sb, "%sversion %s", sb.len ? ", " : "", version);
		if (started)
			sb_printf(&sb, "%sup since %s", sb.len ? ", " : "",
				  ctl_time(started, buf, sizeof(buf)));
		fputs("   ", o);
		put(r, SGR_DIM, sb_str(&sb));
		sb_free(&sb);
	}
	fputc('\n', o);

	label(r, "repository");
	fprintf(o, "%s\n", (s = ctl_json_str(doc, "repository")) ? s : "-");
	label(r, "branch");
	fputs(branch ? branch : "-", o);
	/* a protected branch runs in protected mode; say the mode only when it is another */
	if (ctl_json_true(doc, "protected"))
		fprintf(o, " (protected%s%s%s)", mode && strcmp(mode, "protected") ? ", " : "",
			mode && strcmp(mode, "protected") ? mode : "",
			mode && strcmp(mode, "protected") ? " mode" : "");
	else if (cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(doc, "protected")))
		fprintf(o, " (not protected%s%s%s)", mode ? ": " : "", mode ? mode : "",
			mode ? " mode" : "");
	else if (mode)
		fprintf(o, " (%s mode)", mode);
	fputc('\n', o);
	label(r, "tip");
	fprintf(o, "%s\n", ctl_short_sha(ctl_json_str(doc, "tip"), buf, sizeof(buf)));
	label(r, "sync");
	if (sync && !strcmp(sync, "in_sync"))
		put(r, SGR_GREEN, "in sync");
	else if (sync && !strcmp(sync, "out_of_sync"))
		put(r, SGR_YELLOW, "out of sync");
	else
		fputs(sync ? sync : "unknown", o);
	fputc('\n', o);
	label(r, "health");
	put(r, health_sgr(health), health ? health : "unknown");
	fputc('\n', o);
	label(r, "last applied");
	s = ctl_json_str(doc, "last_applied_commit");
	fprintf(o, "%s\n", s ? ctl_short_sha(s, buf, sizeof(buf)) : "none");
	label(r, "last attempted");
	s = ctl_json_str(doc, "last_attempted_commit");
	fprintf(o, "%s\n", s ? ctl_short_sha(s, buf, sizeof(buf)) : "none");
	if (result && result[0]) {
		label(r, "last result");
		fprintf(o, "%s\n", result);
	}
	label(r, "database");
	if (cJSON_IsObject(db) && ctl_json_true(db, "connected")) {
		put(r, SGR_GREEN, "connected");
	} else if (cJSON_IsObject(db)) {
		put(r, SGR_RED, "not connected");
		if ((s = ctl_json_str(db, "error")) != NULL) {
			fputs(": ", o);
			ctl_put_oneline(o, s, 400); /* libpq's messages span lines */
		}
	} else {
		fputs("unknown", o);
	}
	fputc('\n', o);
	label(r, "governor");
	if (cJSON_IsObject(gov)) {
		const char *gs = ctl_json_str(gov, "state");
		double f = ctl_json_num(gov, "factor", -1);

		put(r, governor_sgr(gs), gs ? gs : "unknown");
		if (f >= 0)
			fprintf(o, " (rate factor %.2f)", f);
	} else {
		fputs("unknown", o);
	}
	fputc('\n', o);
}

static void
render_plans(const struct render *r, const cJSON *plans)
{
	FILE *o = r->out;
	const cJSON *p;

	fprintf(o, "\n");
	put(r, SGR_BOLD, "Plans");
	fprintf(o, " (%d)\n", cJSON_GetArraySize(plans));
	if (cJSON_GetArraySize(plans) == 0)
		fprintf(o, "  none at the branch tip\n");
	cJSON_ArrayForEach(p, plans)
	{
		const char *id = ctl_json_str(p, "plan_id"), *st = ctl_json_str(p, "status");
		const char *author = ctl_json_str(p, "author");
		int hz = ctl_hazard_parse(ctl_json_str(p, "max_hazard"));
		char steps[48], sha[16];

		snprintf(steps, sizeof(steps), "%.0f/%.0f", ctl_json_num(p, "steps_done", 0),
			 ctl_json_num(p, "steps_total", 0));
		fprintf(o, "  %s %-36s ", hz >= 0 ? render_badge(r, (enum plan_hazard)hz) : "[--]",
			id ? id : "?");
		if (r->color && plan_status_sgr(st))
			fprintf(o, "\x1b[%sm%-12s\x1b[0m", plan_status_sgr(st), st ? st : "?");
		else
			fprintf(o, "%-12s", st ? st : "?");
		fprintf(o, " %7s  %-12s  %s\n", steps,
			ctl_short_sha(ctl_json_str(p, "commit"), sha, sizeof(sha)),
			author ? author : "");
	}
}

static void
render_running(const struct render *r, const cJSON *run)
{
	FILE *o = r->out;
	const char *plan = ctl_json_str(run, "plan_id"), *wave = ctl_json_str(run, "wave");
	const char *step = ctl_json_str(run, "step_sha"), *op = ctl_json_str(run, "op");
	const char *stmt = ctl_json_str(run, "statement");
	double since = seconds_since(ctl_json_str(run, "since"));
	double lw = ctl_json_num(run, "lock_wait_ms", -1),
	       retries = ctl_json_num(run, "retries", 0);
	double done = ctl_json_num(run, "rows_done", -1),
	       total = ctl_json_num(run, "rows_total", -1);
	double rate = ctl_json_num(run, "rate", -1), eta = ctl_json_num(run, "eta_s", -1);
	char buf[32];

	fprintf(o, "\n");
	put(r, SGR_BOLD, "Running");
	fprintf(o, "\n  %s", plan ? plan : "?");
	if (wave && wave[0])
		fprintf(o, "  wave %s", wave);
	if (step && step[0])
		fprintf(o, "  step %.16s", step);
	if (op)
		fprintf(o, "  (%s)", op);
	if (since >= 0) {
		fmt_duration(since, buf, sizeof(buf));
		fprintf(o, "  for %s", buf);
	}
	fputc('\n', o);
	if (stmt && stmt[0]) {
		fputs("    ", o);
		ctl_put_oneline(o, stmt, 200);
		fputc('\n', o);
	}
	if (lw >= 0) {
		fprintf(o, "    lock wait %.0f ms", lw);
		if (retries > 0)
			fprintf(o, ", %.0f lock %s", retries, retries == 1 ? "retry" : "retries");
		fputc('\n', o);
	}
	if (done >= 0 || total > 0) {
		fputs("    backfill ", o);
		ctl_bar(o, r, done, total, 24);
		fprintf(o, " %.0f", done < 0 ? 0 : done);
		if (total > 0)
			fprintf(o, " of ~%.0f rows (%.0f%%)", total,
				done >= total ? 100.0 : 100.0 * (done < 0 ? 0 : done) / total);
		else
			fputs(" rows", o);
		if (rate >= 0)
			fprintf(o, "  %.0f rows/s", rate);
		if (eta >= 0) {
			fmt_duration(eta, buf, sizeof(buf));
			fprintf(o, "  ETA %s", buf);
		}
		fputc('\n', o);
	}
}

static void
render_drift(const struct render *r, const cJSON *drift)
{
	const cJSON *d;

	fprintf(r->out, "\n");
	put(r, SGR_BOLD, "Drift");
	fprintf(r->out, " (%d): applied plans whose files changed since\n",
		cJSON_GetArraySize(drift));
	cJSON_ArrayForEach(d, drift)
	{
		const char *id = cJSON_IsString(d) ? d->valuestring : ctl_json_str(d, "plan_id");

		fprintf(r->out, "  ");
		put(r, SGR_RED, id ? id : "?");
		fprintf(r->out, "   review it, then: taskslapsctl accept-drift %s\n",
			id ? id : "PLAN");
	}
}

static void
render_history(const struct render *r, const cJSON *hist)
{
	int n = cJSON_GetArraySize(hist), skip = n > 10 ? n - 10 : 0, i = 0;
	const cJSON *e;

	fprintf(r->out, "\n");
	put(r, SGR_BOLD, "Recent events");
	fputc('\n', r->out);
	cJSON_ArrayForEach(e, hist)
	{
		const char *type = ctl_json_str(e, "type"), *plan = ctl_json_str(e, "plan_id");
		const char *msg = ctl_json_str(e, "message");
		char at[40];

		if (i++ < skip)
			continue;
		fprintf(r->out, "  %s  %-20s %s  %s\n",
			ctl_time(ctl_json_str(e, "at"), at, sizeof(at)), type ? type : "?",
			plan ? plan : "-", msg ? msg : "");
	}
}

void
ctl_status_render(const struct render *r, const cJSON *doc)
{
	const cJSON *plans = cJSON_GetObjectItemCaseSensitive(doc, "plans");
	const cJSON *run = cJSON_GetObjectItemCaseSensitive(doc, "running");
	const cJSON *drift = cJSON_GetObjectItemCaseSensitive(doc, "drift");
	const cJSON *hist = cJSON_GetObjectItemCaseSensitive(doc, "history");

	render_header(r, doc);
	if (cJSON_IsArray(plans))
		render_plans(r, plans);
	if (cJSON_IsObject(run))
		render_running(r, run);
	if (cJSON_IsArray(drift) && cJSON_GetArraySize(drift) > 0)
		render_drift(r, drift);
	if (cJSON_IsArray(hist) && cJSON_GetArraySize(hist) > 0)
		render_history(r, hist);
}

void
ctl_status_plans_table(const struct render *r, const cJSON *doc)
{
	const cJSON *plans = cJSON_GetObjectItemCaseSensitive(doc, "plans"), *p;
	FILE *o = r->out;

	if (!cJSON_IsArray(plans))
		plans = NULL;
	fprintf(o, "%-36s %-12s %-4s %7s %-12s %s\n", "PLAN", "STATUS", "HAZ", "STEPS", "COMMIT",
		"AUTHOR");
	cJSON_ArrayForEach(p, plans)
	{
		const char *id = ctl_json_str(p, "plan_id"), *st = ctl_json_str(p, "status");
		const char *author = ctl_json_str(p, "author");
		int hz = ctl_hazard_parse(ctl_json_str(p, "max_hazard"));
		char steps[48], sha[16];

		snprintf(steps, sizeof(steps), "%.0f/%.0f", ctl_json_num(p, "steps_done", 0),
			 ctl_json_num(p, "steps_total", 0));
		fprintf(o, "%-36s %-12s %s %7s %-12s %s\n", id ? id : "?", st ? st : "?",
			hz >= 0 ? render_badge(r, (enum plan_hazard)hz) : "[--]", steps,
			ctl_short_sha(ctl_json_str(p, "commit"), sha, sizeof(sha)),
			author ? author : "");
	}
}

int
cmd_status(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct ctl_client c;
	struct render rd;
	cJSON *doc = NULL;
	bool json = false;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "hj", opts, NULL)) != -1) {
		switch (ch) {
		case 'j': json = true; break;
		case 'h': ctl_usage(stdout, ctl_verb_find("status")); return CTL_OK;
		default: ctl_usage(stderr, ctl_verb_find("status")); return CTL_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "taskslapsctl status: unexpected argument '%s'\n", argv[optind]);
		ctl_usage(stderr, ctl_verb_find("status"));
		return CTL_USAGE;
	}
	if ((rc = ctl_client_open(&c, g, "status")) != CTL_OK)
		return rc;
	rc = ctl_client_call(&c, "status", NULL, STATUS_TIMEOUT_MS, &doc);
	ctl_client_close(&c);
	if (rc != CTL_OK)
		return rc;
	if (!cJSON_IsObject(doc)) {
		fprintf(stderr, "taskslapsctl status: the daemon's status is not an object\n");
		cJSON_Delete(doc);
		return CTL_UNREACHABLE;
	}
	if (json) {
		char *s = cJSON_Print(doc);

		printf("%s\n", s ? s : "{}");
		cJSON_free(s);
	} else {
		render_init(&rd, stdout);
		ctl_status_render(&rd, doc);
	}
	fflush(stdout);
	rc = ctl_status_exit(doc);
	cJSON_Delete(doc);
	return rc;
}
