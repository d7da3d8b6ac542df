#include "ctl/diag_json.h"

#include <stdbool.h>

cJSON *
diag_json_array(const struct diags *d, size_t from)
{
	cJSON *a = cJSON_CreateArray();

	for (size_t i = from; i < d->n; i++) {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "level",
					d->v[i].level == DIAG_ERROR	? "error"
					: d->v[i].level == DIAG_WARNING ? "warning"
									: "note");
		cJSON_AddNumberToObject(e, "line", d->v[i].line);
		cJSON_AddNumberToObject(e, "column", d->v[i].col);
		cJSON_AddStringToObject(e, "message", d->v[i].msg);
		cJSON_AddItemToArray(a, e);
	}
	return a;
}

cJSON *
diag_json_invalid(const char *file, const struct diags *d)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "file", file);
	cJSON_AddBoolToObject(o, "valid", false);
	cJSON_AddItemToObject(o, "errors", diag_json_array(d, 0));
	return o;
}
