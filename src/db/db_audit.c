/*
 * db_audit.h: each distinct text once per process, as "<how><text>\0" in
 * $TS_SQL_AUDIT_DIR/<pid>.sql (appended, so a process's threads share it).
 * Built only with -DTS_SQL_AUDIT=ON.
 */
#include "db/db_audit.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"

static pthread_mutex_t audit_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *seen; /* open addressing; 0 is empty */
static size_t nseen, capseen;

static uint64_t
text_hash(char how, const char *s)
{
	uint64_t h = 1469598103934665603ull ^ (unsigned char)how;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h ? h : 1;
}

/* Adds h; false when it was there already. */
static bool
seen_add(uint64_t h)
{
	size_t i;

	if ((nseen + 1) * 2 > capseen) {
		uint64_t *old = seen;
		size_t oldcap = capseen;

		capseen = capseen ? capseen * 2 : 256;
		seen = xcalloc(capseen, sizeof(*seen));
		nseen = 0;
		for (size_t j = 0; j < oldcap; j++)
			if (old[j])
				(void)seen_add(old[j]);
		free(old);
	}
	for (i = h & (capseen - 1); seen[i]; i = (i + 1) & (capseen - 1))
		if (seen[i] == h)
			return false;
	seen[i] = h;
	nseen++;
	return true;
}

void
db_audit(char how, const char *sql)
{
	const char *dir = getenv("TS_SQL_AUDIT_DIR");
	char path[4096];
	int fd;

	if (!dir || !*dir || !sql)
		return;
	pthread_mutex_lock(&audit_mu);
	if (seen_add(text_hash(how, sql))) {
		snprintf(path, sizeof(path), "%s/%ld.sql", dir, (long)getpid());
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0) {
			size_t len = strlen(sql) + 1;
			char *rec = xmalloc(len + 1);

			rec[0] = how;
			memcpy(rec + 1, sql, len);
			/* one write per record: O_APPEND keeps records whole */
			if (write(fd, rec, len + 1) < 0)
				perror("taskslaps: the SQL audit");
			free(rec);
			close(fd);
		}
	}
	pthread_mutex_unlock(&audit_mu);
}
