/*
 * libFuzzer target for the plan reader: the bytes of one input are read as a
 * YAML plan ("fuzz.yaml") and as a JSON plan ("fuzz.json"). A plan that
 * parses is planned for both modes, turned into its JSON model and linted;
 * every diagnostic is formatted; everything is freed (AddressSanitizer's leak
 * check runs at the end of each input).
 *
 * Built when the project is configured with clang and -DTS_FUZZ=ON:
 *
 *   CC=clang cmake -S . -B build-fuzz -DTS_FUZZ=ON -DTS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
 *   make -C build-fuzz -j2 fuzz_plan
 *   ctest --test-dir build-fuzz -L fuzz --output-on-failure      (a 20 s smoke run)
 *
 * A long campaign: keep a corpus of your own (the first directory is where
 * libFuzzer writes the inputs it finds; the others are read-only seeds), one
 * job per core, a dictionary of the DSL's words, and no time limit but yours:
 *
 *   mkdir -p fuzz-corpus
 *   build-fuzz/tests/fuzz/fuzz_plan fuzz-corpus examples/plans examples/plans-broken \
 *       tests/fuzz/regressions/plan \
 *       -dict=tests/fuzz/plan.dict -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
 *       -jobs=2 -workers=2 -max_total_time=3600 -print_final_stats=1
 *
 * A crash leaves crash-<sha1> (or leak-, timeout-, oom-) in the current
 * directory; replay it with `build-fuzz/tests/fuzz/fuzz_plan crash-<sha1>`, and
 * shrink it with `-minimize_crash=1 -runs=10000 crash-<sha1>`. Every input that
 * once crashed goes into tests/fuzz/regressions/plan/ (a seed of every run)
 * and into a unit test. Between campaigns, shrink the corpus with
 * `-merge=1 fuzz-corpus.min fuzz-corpus`.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "plan/plan.h"
#include "plan/plan_json.h"
#include "plan/plan_lint.h"
#include "util/diag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Formats every diagnostic, as taskslapsctl prints them. */
static void
format_all(const struct diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(diag_format(&d->v[i]));
}

static void
one(const char *name, const uint8_t *data, size_t size)
{
	static const enum plan_mode modes[] = { MODE_PROTECTED, MODE_CHAOS };
	struct diags d = DIAGS_INIT;
	struct plan *p = NULL;

	/* data is not NUL-terminated: plan_parse must stay within size */
	if (plan_parse(&p, name, (const char *)data, size, &d) == 0) {
		if (d.nerrors)
			abort(); /* a plan came back although errors were reported */
		for (size_t m = 0; m < sizeof(modes) / sizeof(*modes); m++) {
			struct plan_policy pol;
			cJSON *j;
			char *s;

			plan_policy_default(&pol, modes[m]);
			plan_apply_policy(p, &pol);
			j = plan_to_json(p);
			s = cJSON_PrintUnformatted(j);
			if (!s)
				abort();
			free(s);
			cJSON_Delete(j);
		}
		(void)plan_lint(p, &d);
	} else if (p || d.nerrors == 0) {
		abort(); /* a failed parse must say why, and return no plan */
	}
	format_all(&d);
	plan_free(p);
	diags_clear(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one("fuzz.yaml", data, size);
	one("fuzz.json", data, size);
	return 0;
}
