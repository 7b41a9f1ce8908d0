/* SPDX-License-Identifier: MIT */
/*
 * lm_digest_regions: the result matches the documented construction
 * (XXH3-128 per 64 MiB chunk, then XXH3-128 over the little-endian records
 * (u32 region, u64 chunk, u64 lo, u64 hi)), does not depend on the thread
 * count, and changes with any byte.  Also util.c's lm_parse_size, which has
 * no test file of its own.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/wire.h"
#include "t.h"
#include "util/util.h"

#define CHUNK ((uint64_t)64 << 20)

static struct lm_digest reference(const struct lm_region *r, unsigned nr)
{
	size_t cap = 16, n = 0;
	uint8_t *recs = malloc(cap * 28);

	for (unsigned i = 0; i < nr; i++) {
		for (uint64_t off = 0, c = 0; off < r[i].size; off += CHUNK, c++) {
			uint64_t len = r[i].size - off < CHUNK ? r[i].size - off : CHUNK;
			XXH128_hash_t h = XXH3_128bits((const uint8_t *)r[i].base + off, len);

			if (n == cap)
				recs = realloc(recs, (cap *= 2) * 28);
			lm_le32(recs + n * 28, i);
			lm_le64(recs + n * 28 + 4, c);
			lm_le64(recs + n * 28 + 12, h.low64);
			lm_le64(recs + n * 28 + 20, h.high64);
			n++;
		}
	}
	XXH128_hash_t h = XXH3_128bits(recs, n * 28);

	free(recs);
	return (struct lm_digest){ h.low64, h.high64 };
}

static bool eq(struct lm_digest a, struct lm_digest b)
{
	return a.lo == b.lo && a.hi == b.hi;
}

static struct lm_digest dig(const struct lm_region *r, unsigned nr, unsigned threads)
{
	struct lm_digest d = { 0, 0 };

	CHECK(lm_digest_regions(r, nr, threads, &d) == 0);
	return d;
}

static void digest_tests(void)
{
	/* Sizes around the chunk: 2 chunks + a bit, tiny, empty, exactly one
	 * chunk, one byte short of two. */
	const uint64_t sizes[] = { 2 * CHUNK + 12345, 100, 0, CHUNK, 2 * CHUNK - 1 };
	enum { NR = sizeof(sizes) / sizeof(sizes[0]) };
	struct lm_region r[NR];
	uint8_t *mem[NR];
	uint64_t x = 0x853c49e6748fea9bull;

	for (unsigned i = 0; i < NR; i++) {
		mem[i] = malloc(sizes[i] ? sizes[i] : 1);
		if (!mem[i]) {
			fprintf(stderr, "digest: out of memory, skipped\n");
			exit(77);
		}
		for (uint64_t j = 0; j + 8 <= sizes[i]; j += 8) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			memcpy(mem[i] + j, &x, 8);
		}
		for (uint64_t j = sizes[i] & ~7ull; j < sizes[i]; j++)
			mem[i][j] = (uint8_t)j;
		r[i] = (struct lm_region){ mem[i], sizes[i] };
	}

	struct lm_digest want = reference(r, NR);
	const unsigned threads[] = { 0, 1, 2, 3, 4, 16, 1000 };

	for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++)
		CHECKF(eq(dig(r, NR, threads[t]), want), "nthreads %u", threads[t]);

	/* One byte anywhere changes it: start, chunk boundary, last byte of a
	 * short last chunk, the tiny region, the last region's last byte. */
	struct {
		unsigned reg;
		uint64_t off;
	} spots[] = { { 0, 0 }, { 0, CHUNK }, { 0, 2 * CHUNK + 12344 }, { 1, 99 },
		      { 3, CHUNK - 1 }, { 4, 2 * CHUNK - 2 } };
	for (size_t s = 0; s < sizeof(spots) / sizeof(spots[0]); s++) {
		uint8_t *b = mem[spots[s].reg] + spots[s].off;

		*b ^= 0x10;
		struct lm_digest d1 = dig(r, NR, 1), d4 = dig(r, NR, 4);

		CHECKF(!eq(d1, want), "byte %u:%llu", spots[s].reg,
		       (unsigned long long)spots[s].off);
		CHECK(eq(d1, d4));
		CHECK(eq(d1, reference(r, NR)));
		*b ^= 0x10;
	}
	CHECK(eq(dig(r, NR, 2), want));

	/* Region order and boundaries are part of the digest. */
	struct lm_region sw[NR];

	memcpy(sw, r, sizeof(sw));
	sw[0] = r[4];
	sw[4] = r[0];
	CHECK(!eq(dig(sw, NR, 3), want));
	CHECK(eq(dig(sw, NR, 3), reference(sw, NR)));
	struct lm_region split[2] = { { mem[0], CHUNK }, { mem[0] + CHUNK, CHUNK + 12345 } };
	CHECK(!eq(dig(split, 2, 2), dig(r, 1, 2)));

	/* Degenerate inputs. */
	CHECK(eq(dig(r, 0, 4), reference(r, 0)));
	CHECK(eq(dig(&r[2], 1, 4), reference(&r[2], 1)));
	/* An empty region has no chunks, hence no records. */
	CHECK(eq(dig(&r[2], 1, 1), dig(r, 0, 1)));
	CHECK(eq(dig(&r[1], 1, 8), reference(&r[1], 1)));
	CHECK(lm_digest_regions(r, NR, 1, NULL) == -EINVAL);

	for (unsigned i = 0; i < NR; i++)
		free(mem[i]);
}

static void parse_size_tests(void)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 },
		{ "123", 123 },
		{ "4K", 4096 },
		{ "4k", 4096 },
		{ "4KiB", 4096 },
		{ "4kb", 4096 },
		{ "100M", 100ull << 20 },
		{ "2MiB", 2ull << 20 },
		{ "1.5G", 3ull << 29 },
		{ "1.5g", 3ull << 29 },
		{ "0.5K", 512 },
		{ "2T", 2ull << 40 },
		{ "16384B", 16384 },
		{ "1.0", 1 },
		{ "18446744073709551615", UINT64_MAX },
		{ "16777215T", 16777215ull << 40 },
		{ "15.999999T", 17592184944904ull },
	};
	static const char *bad[] = {
		"", "-1", "+1", " 1", "1 ", "K", "1X", "1KK", "1Ki", "1KiBx", "1.5", ".", "1.",
		".5.5", "0x10", "1e3", "18446744073709551616", "16777216T", "99999999999999999999",
		"17179869184G", "nan", "1,5G",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 0xdead;
		int r = lm_parse_size(good[i].s, &v);

		CHECKF(r == 0 && v == good[i].v, "\"%s\": %d, %llu", good[i].s, r,
		       (unsigned long long)v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECKF(lm_parse_size(bad[i], &v) == -EINVAL, "\"%s\" accepted", bad[i]);
	CHECK(lm_parse_size(NULL, &v) == -EINVAL);

	/* The clocks move forward. */
	uint64_t t0 = lm_now_ns();
	double c0 = lm_thread_cpu_seconds();
	volatile uint64_t spin = 0;

	for (int i = 0; i < 5000000; i++)
		spin += (uint64_t)i;
	CHECK(lm_now_ns() > t0);
	CHECK(lm_thread_cpu_seconds() > c0);
}

int main(void)
{
	parse_size_tests();
	digest_tests();
	T_DONE();
}
