/* The executor's clock: monotonic milliseconds, sleeps an abort cuts short, backoff. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "exec/exec_int.h"

int64_t
exec_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
exec_sleep(struct exec *ex, int64_t ms)
{
	int64_t end = exec_now_ms() + ms;

	db_flush(ex->db); /* the events so far are seen before the wait */
	while (!ex->abort_req) {
		int64_t left = end - exec_now_ms();
		struct timespec ts;

		if (left <= 0)
			return true;
		if (left > 50)
			left = 50;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000000L;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !ex->abort_req)
			;
	}
	return false;
}

int64_t
exec_backoff_cap_ms(int attempt)
{
	int64_t cap;

	if (attempt < 0)
		attempt = 0;
	/* 100 << 7 is past the cap already: no larger shift is needed */
	cap = 100LL << (attempt < 7 ? attempt : 7);
	return cap > 10000 ? 10000 : cap;
}

int64_t
exec_backoff_ms(int attempt)
{
	int64_t cap = exec_backoff_cap_ms(attempt);

	/* full jitter: spread retries so two runners do not retry in step */
	return cap / 2 + (int64_t)(random() % (cap / 2 + 1));
}
