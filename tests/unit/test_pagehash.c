/* SPDX-License-Identifier: MIT */
/* Every page-hash variant equals libxxhash's XXH3-128 on the same page. */
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "core/wire.h"
#include "t.h"
#include "util/pagehash.h"

int main(void)
{
	static uint8_t page[LM_PAGE_SIZE] __attribute__((aligned(64)));
	const char *names[] = {"sse2", "avx2", "avx512"};
	const char *best;
	int tested = 0;

	CHECK(lm_page_hash_select(&best) != NULL);
	CHECK(lm_page_hash_get("sse2") != NULL);
	CHECK(lm_page_hash_get("mmx") == NULL);
	uint32_t x = 1;
	for (int round = 0; round < 64; round++) {
		for (size_t i = 0; i < sizeof(page); i++) {
			x = x * 1664525u + 1013904223u;
			page[i] = round % 4 == 0 ? 0 : (uint8_t)(x >> 24);
		}
		uint64_t seed = (uint64_t)round * 0x9e3779b97f4a7c15ull;
		XXH128_hash_t ref = XXH3_128bits_withSeed(page, sizeof(page), seed);
		for (size_t v = 0; v < 3; v++) {
			lm_page_hash_fn fn = lm_page_hash_get(names[v]);
			if (!fn)
				continue;
			struct lm_h128 h = fn(page, seed);
			CHECKF(h.lo == ref.low64 && h.hi == ref.high64, "%s round %d", names[v], round);
			tested++;
		}
		/* A different seed gives a different hash. */
		struct lm_h128 a = lm_page_hash_sse2(page, seed), b = lm_page_hash_sse2(page, seed + 1);
		CHECK(a.lo != b.lo || a.hi != b.hi);
	}
	CHECK(tested >= 64);
	printf("page hash variants agree; best here: %s\n", best);
	T_DONE();
}
