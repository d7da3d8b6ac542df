/*
 * libFuzzer target for taskslapsd's configuration reader (config_parse): the
 * input is read as /etc/taskslaps/fuzz.yaml; a configuration that parses is
 * asked the branch question and freed, and every diagnostic is formatted.
 *
 * Built with the other fuzz targets (see fuzz_plan.c for a long campaign):
 *
 *   build-fuzz/tests/fuzz/fuzz_config corpus-config tests/fuzz/seeds/config \
 *       -max_len=4096 -timeout=10 -max_total_time=3600
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemon/config.h"
#include "util/diag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diags d = DIAGS_INIT;
	struct config *c = NULL;

	if (config_parse(&c, "/etc/taskslaps/fuzz.yaml", (const char *)data, size, &d) == 0) {
		(void)config_branch_protected(c, c->branch);
		config_free(c);
	}
	for (size_t i = 0; i < d.n; i++)
		free(diag_format(&d.v[i]));
	diags_clear(&d);
	return 0;
}
