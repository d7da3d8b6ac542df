/* Diagnostics as JSON, for the --json views of plan and lint. */
#ifndef TS_CTL_DIAG_JSON_H
#define TS_CTL_DIAG_JSON_H

#include <cjson/cJSON.h>

#include "util/diag.h"

/* [{"line","column","level","message"}...] for the diagnostics of file. */
cJSON *diag_json_array(const struct diags *d, size_t from);
/* {"file": file, "valid": false, "errors": [...]}. Caller owns it. */
cJSON *diag_json_invalid(const char *file, const struct diags *d);

#endif
