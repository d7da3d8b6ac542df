/* taskslapsctl plan FILE...: the planner's view of each plan, offline. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/diag_json.h"
#include "plan/plan_json.h"

int
cmd_plan(const struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "mode", required_argument, NULL, 'm' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	enum plan_mode mode = MODE_PROTECTED;
	bool json = false;
	int c, rc = CTL_OK;
	struct plan_policy pol;
	struct render r;
	cJSON *all = NULL;

	(void)g;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'm':
			if (ctl_parse_mode(optarg, &mode) < 0)
				return CTL_USAGE;
			break;
		case 'h': ctl_usage(stdout, ctl_verb_find("plan")); return CTL_OK;
		default: ctl_usage(stderr, ctl_verb_find("plan")); return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "taskslapsctl plan: expected at least one FILE\n");
		ctl_usage(stderr, ctl_verb_find("plan"));
		return CTL_USAGE;
	}
	plan_policy_default(&pol, mode);
	render_init(&r, stdout);
	if (json)
		all = cJSON_CreateArray();
	for (int i = optind; i < argc; i++) {
		struct diags d = DIAGS_INIT;
		struct plan *p = NULL;

		if (plan_load(&p, argv[i], &d) < 0) {
			diags_print(&d, stderr);
			if (json)
				cJSON_AddItemToArray(all, diag_json_invalid(argv[i], &d));
			rc = CTL_USAGE;
		} else {
			plan_apply_policy(p, &pol);
			if (json) {
				cJSON_AddItemToArray(all, plan_to_json(p));
			} else {
				if (i > optind)
					fputc('\n', stdout);
				render_plan(&r, p, true);
			}
		}
		plan_free(p);
		diags_clear(&d);
	}
	if (json) {
		char *s = cJSON_Print(all);
		puts(s);
		free(s);
		cJSON_Delete(all);
	}
	return rc;
}
