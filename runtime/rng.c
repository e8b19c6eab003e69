/* runtime/rng.c -- xoshiro256** (Blackman and Vigna), seeded by splitmix64; uniform and normal draws.
 *
 * Why this generator: 256 bits of state, passes BigCrush, four 64-bit words that serialise trivially,
 * and the integer sequence depends on nothing but 64-bit unsigned arithmetic, so a seed means the same
 * data on every platform. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plastrt.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void pl_rng_seed(PlRng *r, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
	/* splitmix64 never yields four zero words in a row, but keep the invariant explicit. */
	if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
		r->s[0] = 1;
	r->has_spare = 0;
	r->spare = 0.0;
}

/* Streams: mixing the stream number through splitmix64 before combining it with the seed keeps nearby
 * (seed, stream) pairs from producing overlapping splitmix sequences. */
void pl_rng_seed2(PlRng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = stream ^ 0x5851f42d4c957f2dULL;
	uint64_t h = splitmix64(&x);
	pl_rng_seed(r, seed * 0xd1342543de82ef95ULL + h);
}

uint64_t pl_rng_u64(PlRng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Lemire-style rejection on the low end keeps the draw exactly uniform. */
uint64_t pl_rng_below(PlRng *r, uint64_t n)
{
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t v;
	do
		v = pl_rng_u64(r);
	while (v >= limit);
	return v % n;
}

double pl_rng_double(PlRng *r)
{
	return (double)(pl_rng_u64(r) >> 11) * 0x1.0p-53;
}

float pl_rng_float(PlRng *r)
{
	return (float)(pl_rng_u64(r) >> 40) * 0x1.0p-24f;
}

double pl_rng_uniform(PlRng *r, double a, double b)
{
	return a + (b - a) * pl_rng_double(r);
}

/* Box-Muller: u1 in (0, 1] so log(u1) is finite; the pair (rho cos, rho sin) gives two independent
 * normals, the second kept for the next call (and saved with the state). */
double pl_rng_normal(PlRng *r)
{
	if (r->has_spare) {
		r->has_spare = 0;
		return r->spare;
	}
	double u1 = 1.0 - pl_rng_double(r);
	double u2 = pl_rng_double(r);
	double rho = sqrt(-2.0 * log(u1));
	double th = 2.0 * M_PI * u2;
	r->spare = rho * sin(th);
	r->has_spare = 1;
	return rho * cos(th);
}

/* Text form: the four words, the spare flag and the spare's bit pattern, all hex, ':'-separated. */
void pl_rng_save(const PlRng *r, char out[PL_RNG_STRLEN])
{
	uint64_t bits;
	memcpy(&bits, &r->spare, sizeof bits);
	snprintf(out, PL_RNG_STRLEN, "%016" PRIx64 ":%016" PRIx64 ":%016" PRIx64 ":%016" PRIx64 ":%d:%016" PRIx64,
		r->s[0], r->s[1], r->s[2], r->s[3], r->has_spare ? 1 : 0, bits);
}

int pl_rng_load(PlRng *r, const char *text)
{
	uint64_t w[4], bits;
	int spare, used = 0;
	if (!text || sscanf(text, "%16" SCNx64 ":%16" SCNx64 ":%16" SCNx64 ":%16" SCNx64 ":%d:%16" SCNx64 "%n",
			&w[0], &w[1], &w[2], &w[3], &spare, &bits, &used) != 6 || text[used] != '\0'
		|| (spare != 0 && spare != 1) || !(w[0] | w[1] | w[2] | w[3]))
		return -1;
	memcpy(r->s, w, sizeof w);
	r->has_spare = spare;
	memcpy(&r->spare, &bits, sizeof bits);
	return 0;
}

uint64_t pl_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}
