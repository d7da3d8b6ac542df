/* fphash.h's seed. */
#include "daemon/fphash.h"

#include <sys/random.h>

/* the FNV offset basis until fp_seed_init, should random bytes not be had */
uint64_t fp_seed_value = 1469598103934665603ull;

void
fp_seed_init(void)
{
	uint64_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v) && v)
		fp_seed_value = v;
}
