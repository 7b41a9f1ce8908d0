/* SPDX-License-Identifier: MIT */
/*
 * Every zero-page implementation this CPU runs against the byte loop: zero
 * page, random page, and pages with a single non-zero byte at every
 * position (and every bit at a few).  The page sits between two
 * inaccessible guard pages so a read past either end faults.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/wire.h"
#include "t.h"
#include "zeropage/zero.h"

static const char *names[] = { "avx512", "avx2", "sse2" };

static void check_impl(const char *name, lm_zero_fn fn, uint8_t *p)
{
	uint64_t x = 0x2545f4914f6cdd1dull;

	memset(p, 0, LM_PAGE_SIZE);
	CHECKF(fn(p) && lm_zero_ref(p), "%s: zero page", name);

	for (size_t i = 0; i < LM_PAGE_SIZE; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[i] = (uint8_t)x;
	}
	CHECKF(!fn(p) && !lm_zero_ref(p), "%s: random page", name);

	/* One byte, every position; the value varies so all bits appear. */
	memset(p, 0, LM_PAGE_SIZE);
	for (size_t pos = 0; pos < LM_PAGE_SIZE; pos++) {
		uint8_t v = (uint8_t)(1u << (pos % 8));

		if (pos % 61 == 0)
			v = 0xff;
		p[pos] = v;
		bool got = fn(p), want = lm_zero_ref(p);

		CHECKF(got == want && !got, "%s: byte %zu = %#x", name, pos, v);
		p[pos] = 0;
	}
	/* Every bit of the first, a middle and the last byte. */
	static const size_t spots[] = { 0, 1, 15, 16, 31, 32, 63, 64, 255, 256, 2048, 4095 };
	for (size_t s = 0; s < sizeof(spots) / sizeof(spots[0]); s++) {
		for (int b = 0; b < 8; b++) {
			p[spots[s]] = (uint8_t)(1u << b);
			CHECKF(!fn(p), "%s: byte %zu bit %d", name, spots[s], b);
			p[spots[s]] = 0;
		}
	}
	/* All zero again after the sweep. */
	CHECKF(fn(p), "%s: zero page after sweep", name);
}

int main(void)
{
	long ps = LM_PAGE_SIZE;
	uint8_t *m = mmap(NULL, 3 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	const char *sel = NULL;
	lm_zero_fn best;
	int found = 0;

	if (m == MAP_FAILED)
		return 77;
	CHECK(mprotect(m, ps, PROT_NONE) == 0);
	CHECK(mprotect(m + 2 * ps, ps, PROT_NONE) == 0);
	uint8_t *p = m + ps;

	/* The reference itself. */
	memset(p, 0, LM_PAGE_SIZE);
	CHECK(lm_zero_ref(p));
	p[LM_PAGE_SIZE - 1] = 1;
	CHECK(!lm_zero_ref(p));
	p[LM_PAGE_SIZE - 1] = 0;

	best = lm_zero_select(&sel);
	CHECK(best != NULL && sel != NULL);
	CHECK(lm_zero_select(NULL) == best);
	if (sel)
		CHECKF(lm_zero_get(sel) == best, "selected %s", sel);
	/* SSE2 is the x86-64 baseline: always there. */
	CHECK(lm_zero_get("sse2") != NULL);
	CHECK(lm_zero_get("mmx") == NULL);
	CHECK(lm_zero_get(NULL) == NULL);

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		lm_zero_fn fn = lm_zero_get(names[i]);

		if (!fn) {
			fprintf(stderr, "zero: %s not supported here, skipped\n", names[i]);
			continue;
		}
		/* The selection is the first supported one, fastest first. */
		if (found++ == 0 && sel)
			CHECKF(strcmp(sel, names[i]) == 0, "selected %s, first usable %s", sel,
			       names[i]);
		check_impl(names[i], fn, p);
	}
	munmap(m, 3 * ps);
	T_DONE();
}
