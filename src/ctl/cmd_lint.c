/*
 * taskslapsctl lint DIR: every plan of a migrations directory, in order, under
 * the policy of the target branch; made for a pull request's CI. Plans are
 * read one at a time, so memory follows the largest plan, not the directory.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl/ctl.h"
#include "ctl/diag_json.h"
#include "plan/plan_dir.h"
#include "plan/plan_lint.h"

struct lint_totals {
	size_t plans, ok, blocked, findings, invalid;
};

static void
lint_one(const char *path, const struct plan_policy *pol, struct plan_idset *ids,
	 const struct render *r, cJSON *json, struct lint_totals *t)
{
	struct diags d = DIAGS_INIT;
	struct plan *p = NULL;
	const char *first = NULL, *status;
	cJSON *o;

	t->plans++;
	if (plan_load(&p, path, &d) == 0 && !plan_idset_add(ids, p->id, path, &first)) {
		diags_add(&d, DIAG_ERROR, path, p->id_line, p->id_col,
			  "duplicate plan id '%s': %s has it already", p->id, first);
	}
	if (d.nerrors) {
		status = "invalid";
		t->invalid++;
	} else {
		plan_apply_policy(p, pol);
		plan_lint(p, &d);
		if (p->blocked) {
			status = "blocked";
			t->blocked++;
		} else if (d.nwarnings) {
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
		if (p && !d.nerrors) {
			cJSON_AddStringToObject(o, "plan_id", p->id);
			cJSON_AddStringToObject(o, "max_hazard", plan_hazard_name(p->max_hazard));
			cJSON_AddStringToObject(o, "checksum", p->checksum);
			if (p->blocked)
				cJSON_AddStringToObject(o, "blocked_reason", p->blocked_reason);
		}
		cJSON_AddStringToObject(o, "status", status);
		cJSON_AddItemToObject(o, "diagnostics", diag_json_array(&d, 0));
		cJSON_AddItemToArray(json, o);
	} else {
		if (d.nerrors)
			fprintf(r->out, "%s %s: invalid\n", "[--]", path);
		else
			fprintf(r->out, "%s %s  %s%s%s\n", render_badge(r, p->max_hazard), p->id,
				status, p->blocked ? ": " : "", p->blocked ? p->blocked_reason : "");
		diags_print(&d, r->out);
	}
	plan_free(p);
	diags_clear(&d);
}

int
cmd_lint(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "mode", required_argument, NULL, 'm' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	enum plan_mode mode = MODE_PROTECTED;
	bool json = false;
	int c;
	struct plan_policy pol;
	struct render r;
	struct lint_totals t = { 0 };
	struct plan_idset *ids;
	cJSON *arr = NULL;

	(void)g;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
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
	plan_policy_default(&pol, mode);
	render_init(&r, stdout);
	ids = plan_idset_new();
	if (json)
		arr = cJSON_CreateArray();
	for (int i = optind; i < argc; i++) {
		struct stat st;
		struct plan_dir pd = { 0 };
		struct diags d = DIAGS_INIT;

		if (stat(argv[i], &st) == 0 && !S_ISDIR(st.st_mode)) {
			lint_one(argv[i], &pol, ids, &r, arr, &t);
			continue;
		}
		if (plan_dir_list(&pd, argv[i], &d) < 0) {
			diags_print(&d, stderr);
			diags_clear(&d);
			plan_idset_free(ids);
			cJSON_Delete(arr);
			return CTL_USAGE;
		}
		for (size_t k = 0; k < pd.n; k++)
			lint_one(pd.paths[k], &pol, ids, &r, arr, &t);
		plan_dir_free(&pd);
	}
	plan_idset_free(ids);
	if (json) {
		char *s = cJSON_Print(arr);
		puts(s);
		free(s);
		cJSON_Delete(arr);
	} else {
		fprintf(r.out, "\n%zu plan%s (%s mode): %zu ok, %zu blocked, %zu with findings, %zu invalid\n",
			t.plans, t.plans == 1 ? "" : "s", mode == MODE_CHAOS ? "chaos" : "protected",
			t.ok, t.blocked, t.findings, t.invalid);
	}
	if (t.invalid)
		return CTL_USAGE;
	return t.blocked || t.findings ? CTL_FINDINGS : CTL_OK;
}
