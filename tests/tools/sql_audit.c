/*
 * ts-sql-audit DIR: reads back, with PostgreSQL's parser (libpg_query, as
 * src/sql does), every SQL text the program sent while the integration tests
 * ran (a build with -DTS_SQL_AUDIT=ON writes them: src/db/db_audit.h). A
 * text sent as one statement ('E', extended protocol) must be exactly one
 * statement; a script ('S', simple query) must parse. Each refused text is
 * printed with PostgreSQL's message; the exit status is 1 when there is
 * one. A file's last record cut short (its process killed while writing)
 * is said and skipped. With TS_SQL_AUDIT_REQUIRE=1 in the environment, no
 * text at all is a failure too (the audit is not built in, or nothing
 * talked to a database).
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql.h"

struct counts {
	size_t texts, refused;
};

static void
check_text(const char *file, char how, const char *text, struct counts *c)
{
	struct sql_tree t;
	struct sql_msg m = { { 0 }, 0 };
	bool ok = sql_parse(&t, text, &m) == 0;

	if (ok && how == 'E' && !sql_tree_one(&t, text, &m))
		ok = false;
	sql_tree_free(&t);
	c->texts++;
	if (ok)
		return;
	c->refused++;
	fprintf(stderr, "%s: not read by PostgreSQL's parser (%s, at byte %zu): %.300s\n", file,
		m.text, m.off, text);
}

static int
check_file(const char *dir, const char *name, struct counts *c)
{
	char path[4096];
	FILE *f;
	char *buf = NULL;
	size_t len = 0, cap = 0, got;
	char chunk[65536];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "rb"))) {
		perror(path);
		return -1;
	}
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + got + 1 > cap) {
			cap = (len + got + 1) * 2;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		memcpy(buf + len, chunk, got);
		len += got;
	}
	fclose(f);
	for (size_t at = 0; at < len;) {
		const char *rec = buf + at;
		size_t n = strnlen(rec, len - at);

		if (at + n == len && n > 0) {
			/* the last record of a process killed while writing it (torture) */
			printf("%s: its last record is cut at byte %zu (the process was killed): "
			       "not read\n",
			       path, len);
			break;
		}
		if (n < 1 || (rec[0] != 'E' && rec[0] != 'S')) {
			fprintf(stderr, "%s: a record at byte %zu is cut or unknown\n", path, at);
			free(buf);
			return -1;
		}
		check_text(path, rec[0], rec + 1, c);
		at += n + 1;
	}
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *req = getenv("TS_SQL_AUDIT_REQUIRE");
	struct counts c = { 0, 0 };
	size_t files = 0;
	struct dirent *e;
	DIR *d;
	int bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: ts-sql-audit DIR\n");
		return 2;
	}
	if (!(d = opendir(argv[1]))) {
		perror(argv[1]);
		return 1;
	}
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);

		if (n < 5 || strcmp(e->d_name + n - 4, ".sql") != 0)
			continue;
		files++;
		if (check_file(argv[1], e->d_name, &c) < 0)
			bad = 1;
	}
	closedir(d);
	printf("ts-sql-audit: %zu texts (distinct per process) from %zu processes read by "
	       "PostgreSQL's parser; %zu refused\n",
	       c.texts, files, c.refused);
	if (c.refused)
		bad = 1;
	if (!c.texts && req && !strcmp(req, "1")) {
		fprintf(stderr,
			"ts-sql-audit: no SQL was recorded in %s: is the build made with "
			"-DTS_SQL_AUDIT=ON, and did a test talk to a database?\n",
			argv[1]);
		bad = 1;
	}
	return bad;
}
