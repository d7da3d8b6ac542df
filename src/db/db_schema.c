#include "db/db_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
db_schema_version(void)
{
	int v = 0;

	for (const struct db_sql_file *f = db_sql_files; f->name; f++) {
		long n = strtol(f->name, NULL, 10); /* "003_roles.sql" -> 3 */
		if (n > v)
			v = (int)n;
	}
	return v;
}

int
db_schema_install(struct db *db, struct db_error *err)
{
	struct db_error ignore;

	if (db_cmd(db, err, "BEGIN") < 0)
		return -1;
	for (const struct db_sql_file *f = db_sql_files; f->name; f++) {
		if (db_script(db, err, f->text) < 0) {
			char msg[sizeof(err->message) + 64];
			snprintf(msg, sizeof(msg), "installing sql/%s: %s", f->name, err->message);
			snprintf(err->message, sizeof(err->message), "%.1000s", msg);
			(void)db_cmd(db, &ignore, "ROLLBACK");
			return -1;
		}
	}
	return db_cmd(db, err, "COMMIT");
}
