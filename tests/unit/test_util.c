/* SPDX-License-Identifier: MIT */
/* util.c: lm_parse_size, and the clocks move forward. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "util/util.h"

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
	T_DONE();
}
