/* sd_notify: one STATUS= line (state, tip, last result) whenever it changes. */
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "daemon/daemon.h"

static const char *
str(cJSON *o, const char *key, const char *dflt)
{
	cJSON *v = cJSON_GetObjectItem(o, key);
	return cJSON_IsString(v) ? v->valuestring : dflt;
}

void
daemon_notify_status(struct daemon *d)
{
	char line[sizeof(d->notified)];
	bool changed;

	pthread_mutex_lock(&d->mu);
	snprintf(line, sizeof(line), "STATUS=%s %s: %s, tip %.12s, %s",
		 str(d->status, "state", "?"), str(d->status, "target", "?"),
		 str(d->status, "health", "?"), str(d->status, "tip", "-"),
		 str(d->status, "last_result", ""));
	changed = strcmp(line, d->notified) != 0;
	if (changed)
		memcpy(d->notified, line, sizeof(line));
	pthread_mutex_unlock(&d->mu);
	if (changed)
		(void)sd_notify(0, line);
}
