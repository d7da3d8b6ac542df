/*
 * A fast 64-bit hash of bytes, eight at a time, for what the daemon keeps
 * in memory only: the fingerprints of notes and status items, the tables of
 * plan ids and step ids. Never written anywhere, so it may change from one
 * version to the next.
 */
#ifndef TS_DAEMON_FPHASH_H
#define TS_DAEMON_FPHASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * The seed of every fingerprint and table hash: drawn at random when the
 * daemon starts (fp_seed_init, before any thread), so that text an author
 * controls (a plan id, a failure message that a RAISE writes) cannot be
 * chosen to collide with another, which would keep a stale status item or
 * note (a match of ids is always confirmed by comparing the strings).
 */
extern uint64_t fp_seed_value;
#define FP_SEED fp_seed_value
void fp_seed_init(void);

static inline uint64_t
fp_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t k;

	h ^= (uint64_t)n * 0xff51afd7ed558ccdull;
	for (; n >= 8; n -= 8, c += 8) {
		memcpy(&k, c, 8);
		h = (h ^ k) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	if (n) {
		k = 0;
		memcpy(&k, c, n);
		h = (h ^ k) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 32);
}

/* A string (NULL hashes apart from "") into h. */
static inline uint64_t
fp_str(uint64_t h, const char *s)
{
	return s ? fp_bytes(h, s, strlen(s)) : fp_bytes(h ^ 0x5bd1e995ull, "", 0);
}

#endif
