/*
 * taskslapsctl lint DIR: every plan of a migrations directory, in order, under
 * the policy of the target branch; made for a pull request's CI. Plans are
 * loaded on --jobs threads (lint_jobs.c) and checked and printed here in the
 * directory's order; a few dozen are held at a time, so memory follows the
 * largest plans, not the directory.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl/ctl.h"
#include "ctl/diag_json.h"
#include "ctl/lint_jobs.h"
#include "plan/plan_dir.h"
#include "plan/plan_lint.h"

struct lint_totals {
	size_t plans, ok, blocked, findings, invalid;
};

/* What every plan's check needs, shared across the directories linted. */
struct lint_ctx {
	const struct plan_policy *pol;
	struct plan_idset *ids;
	const struct render *r;
	cJSON *json;
	struct lint_totals t;
};

/* One loaded plan (p NULL when it did not load, with d saying why): checked and printed. */
static void
lint_one(void *arg, const char *path, struct plan *p, struct diags *d)
{
	struct lint_ctx *x = arg;
	const struct render *r = x->r;
	struct lint_totals *t = &x->t;
	const char *first = NULL, *status;
	cJSON *json = x->json, *o;

	t->plans++;
	if (p && !plan_idset_add(x->ids, p->id, path, &first)) {
		diags_add(d, DIAG_ERROR, path, p->id_line, p->id_col,
			  "duplicate plan id '%s': %s has it already", p->id, first);
	}
	if (d->nerrors) {
		status = "invalid";
		t->invalid++;
	} else {
		plan_apply_policy(p, x->pol);
		plan_lint(p, d);
		if (p->blocked) {
			status = "blocked";
			t->blocked++;
		} else if (d->nwarnings) {
			status = "findings";
			t->findings++;
		} else {
			status = "ok";
			t->ok++;
		}
	}
	if (json) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "file", path);
		if (p && !d->nerrors) {
			cJSON_AddStringToObject(o, "plan_id", p->id);
			cJSON_AddStringToObject(o, "max_hazard", plan_hazard_name(p->max_hazard));
			cJSON_AddStringToObject(o, "checksum", p->checksum);
			if (p->blocked)
				cJSON_AddStringToObject(o, "blocked_reason", p->blocked_reason);
		}
		cJSON_AddStringToObject(o, "status", status);
		cJSON_AddItemToObject(o, "diagnostics", diag_json_array(d, 0));
		cJSON_AddItemToArray(json, o);
	} else {
		if (d->nerrors)
			fprintf(r->out, "%s %s: invalid\n", "[--]", path);
		else
			fprintf(r->out, "%s %s  %s%s%s\n", render_badge(r, p->max_hazard), p->id,
				status, p->blocked ? ": " : "",
				p->blocked ? p->blocked_reason : "");
		diags_print(d, r->out);
	}
}

/* --jobs N: 1 to LINT_JOBS_MAX. Returns 0, or -1 with a message. */
static int
parse_jobs(const char *s, unsigned *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > LINT_JOBS_MAX) {
		fprintf(stderr,
			"taskslapsctl lint: --jobs: expected a number from 1 to %d, found '%s'\n",
			LINT_JOBS_MAX, s);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

int
cmd_lint(const struct ctl_global *g, int argc, char **argv)
{
	enum { OPT_JSON = 256 };
	static const struct option opts[] = { { "json", no_argument, NULL, OPT_JSON },
					      { "mode", required_argument, NULL, 'm' },
					      { "jobs", required_argument, NULL, 'j' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	enum plan_mode mode = MODE_PROTECTED;
	unsigned jobs = 0;
	int c;
	struct plan_policy pol;
	struct render r;
	struct lint_ctx x = { .pol = &pol, .r = &r };
	const struct lint_totals *t = &x.t;
	bool json = false;

	(void)g;
	while ((c = getopt_long(argc, argv, "hj:", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: json = true; break;
		case 'j':
			if (parse_jobs(optarg, &jobs) < 0)
				return CTL_USAGE;
			break;
		case 'm':
			if (ctl_parse_mode(optarg, &mode) < 0)
				return CTL_USAGE;
			break;
		case 'h': ctl_usage(stdout, ctl_verb_find("lint")); return CTL_OK;
		default: ctl_usage(stderr, ctl_verb_find("lint")); return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "taskslapsctl lint: expected a DIR\n");
		ctl_usage(stderr, ctl_verb_find("lint"));
		return CTL_USAGE;
	}
	if (!jobs)
		jobs = lint_jobs_default();
	plan_policy_default(&pol, mode);
	render_init(&r, stdout);
	x.ids = plan_idset_new();
	if (json)
		x.json = cJSON_CreateArray();
	for (int i = optind; i < argc; i++) {
		struct stat st;
		struct plan_dir pd = { 0 };
		struct diags d = DIAGS_INIT;

		if (stat(argv[i], &st) == 0 && !S_ISDIR(st.st_mode)) {
			lint_jobs_run(&argv[i], 1, 1, lint_one, &x);
			continue;
		}
		if (plan_dir_list(&pd, argv[i], &d) < 0) {
			diags_print(&d, stderr);
			diags_clear(&d);
			plan_idset_free(x.ids);
			cJSON_Delete(x.json);
			return CTL_USAGE;
		}
		lint_jobs_run(pd.paths, pd.n, jobs, lint_one, &x);
		plan_dir_free(&pd);
	}
	plan_idset_free(x.ids);
	if (json) {
		char *s = cJSON_Print(x.json);
		puts(s);
		free(s);
		cJSON_Delete(x.json);
	} else {
		fprintf(
		    r.out,
		    "\n%zu plan%s (%s mode): %zu ok, %zu blocked, %zu with findings, %zu invalid\n",
		    t->plans, t->plans == 1 ? "" : "s", mode == MODE_CHAOS ? "chaos" : "protected",
		    t->ok, t->blocked, t->findings, t->invalid);
	}
	if (t->invalid)
		return CTL_USAGE;
	return t->blocked || t->findings ? CTL_FINDINGS : CTL_OK;
}
