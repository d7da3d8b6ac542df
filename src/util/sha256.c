#include "util/sha256.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SHA256_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

/*
 * FIPS 180-4 SHA-256, here rather than through OpenSSL: taskslapsctl lint
 * hashes a few KiB a plan, and loading and initialising libcrypto for that
 * (its configuration file, its providers, a digest fetch) cost more than a
 * millisecond at every start, and an allocated context per call. On CPUs
 * with the SHA extensions (x86-64) the blocks are compressed with them, as
 * OpenSSL does; elsewhere in portable C. Both are checked against the same
 * digests in tests/unit/util/test_sha256.c.
 */

static const uint32_t k256[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2,
};

static inline uint32_t
ror32(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static void
compress_c(uint32_t st[8], const unsigned char *p, size_t nblocks)
{
	for (; nblocks; nblocks--, p += 64) {
		uint32_t w[16], a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5],
				g = st[6], h = st[7];

		for (int i = 0; i < 16; i++)
			w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
			       (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
		for (int i = 0; i < 64; i++) {
			uint32_t s0, s1, t1, t2;

			if (i >= 16) {
				uint32_t w15 = w[(i + 1) & 15], w2 = w[(i + 14) & 15];

				s0 = ror32(w15, 7) ^ ror32(w15, 18) ^ (w15 >> 3);
				s1 = ror32(w2, 17) ^ ror32(w2, 19) ^ (w2 >> 10);
				w[i & 15] += s0 + w[(i + 9) & 15] + s1;
			}
			t1 = h + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) +
			     k256[i] + w[i & 15];
			t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
			h = g;
			g = f;
			f = e;
			e = d + t1;
			d = c;
			c = b;
			b = a;
			a = t1 + t2;
		}
		st[0] += a;
		st[1] += b;
		st[2] += c;
		st[3] += d;
		st[4] += e;
		st[5] += f;
		st[6] += g;
		st[7] += h;
	}
}

#ifdef SHA256_X86
/*
 * The SHA extensions' round and message-schedule instructions, four rounds
 * per group; the state is kept as ABEF and CDGH, the order they want.
 */
__attribute__((target("sha,sse4.1"))) static void
compress_x86(uint32_t st[8], const unsigned char *p, size_t nblocks)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
	__m128i tmp, s0, s1;

	tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[0]), 0xb1); /* CDAB */
	s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[4]), 0x1b);  /* EFGH */
	s0 = _mm_alignr_epi8(tmp, s1, 8);                                         /* ABEF */
	s1 = _mm_blend_epi16(s1, tmp, 0xf0);                                      /* CDGH */
	for (; nblocks; nblocks--, p += 64) {
		__m128i m[4], msg, abef = s0, cdgh = s1;

		for (int g = 0; g < 16; g++) {
			if (g < 4)
				m[g] = _mm_shuffle_epi8(
					_mm_loadu_si128((const __m128i *)(p + 16 * g)), bswap);
			msg = _mm_add_epi32(m[g & 3],
					    _mm_loadu_si128((const __m128i *)&k256[4 * g]));
			s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
			if (g >= 3 && g <= 14) {
				tmp = _mm_alignr_epi8(m[g & 3], m[(g - 1) & 3], 4);
				m[(g + 1) & 3] = _mm_add_epi32(m[(g + 1) & 3], tmp);
				m[(g + 1) & 3] = _mm_sha256msg2_epu32(m[(g + 1) & 3], m[g & 3]);
			}
			msg = _mm_shuffle_epi32(msg, 0x0e);
			s0 = _mm_sha256rnds2_epu32(s0, s1, msg);
			if (g >= 1 && g <= 12)
				m[(g - 1) & 3] = _mm_sha256msg1_epu32(m[(g - 1) & 3], m[g & 3]);
		}
		s0 = _mm_add_epi32(s0, abef);
		s1 = _mm_add_epi32(s1, cdgh);
	}
	tmp = _mm_shuffle_epi32(s0, 0x1b);   /* FEBA */
	s1 = _mm_shuffle_epi32(s1, 0xb1);    /* DCHG */
	s0 = _mm_blend_epi16(tmp, s1, 0xf0); /* DCBA */
	s1 = _mm_alignr_epi8(s1, tmp, 8);    /* HGFE */
	_mm_storeu_si128((__m128i *)&st[0], s0);
	_mm_storeu_si128((__m128i *)&st[4], s1);
}

static bool
cpu_has_sha(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1))
		return false;
	return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
}
#endif

/* Chosen once, like a constant: the compression function for this CPU. */
static void (*compress)(uint32_t st[8], const unsigned char *p, size_t nblocks) = compress_c;
static pthread_once_t compress_once = PTHREAD_ONCE_INIT;

static void
compress_pick(void)
{
#ifdef SHA256_X86
	if (cpu_has_sha())
		compress = compress_x86;
#endif
}

static void
digest(void (*fn)(uint32_t *, const unsigned char *, size_t), const void *data, size_t len,
       char out[SHA256_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint32_t st[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
			   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	unsigned char tail[128] = { 0 };
	size_t full = len / 64, rest = len % 64, ntail = rest < 56 ? 64 : 128;
	uint64_t bits = (uint64_t)len * 8;

	if (full)
		fn(st, data, full);
	if (rest) /* data may be NULL when len is 0 */
		memcpy(tail, (const unsigned char *)data + full * 64, rest);
	tail[rest] = 0x80;
	for (int i = 0; i < 8; i++)
		tail[ntail - 1 - i] = (unsigned char)(bits >> (8 * i));
	fn(st, tail, ntail / 64);
	for (int i = 0; i < 32; i++) {
		unsigned char byte = (unsigned char)(st[i / 4] >> (24 - 8 * (i % 4)));

		out[2 * i] = hex[byte >> 4];
		out[2 * i + 1] = hex[byte & 15];
	}
	out[64] = '\0';
}

int
sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1])
{
	pthread_once(&compress_once, compress_pick);
	digest(compress, data, len, out);
	return 0;
}

int
sha256_hex_portable(const void *data, size_t len, char out[SHA256_HEX_LEN + 1])
{
	digest(compress_c, data, len, out);
	return 0;
}
