/* SPDX-License-Identifier: MIT */
/* util.c: lm_parse_size, lm_parse_uint, lm_next_field, and the clocks move forward. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
		".5.5", "0x10", "1e3", "nan", "1,5G",
	};
	static const char *too_large[] = { /* well formed */
		"18446744073709551616", "16777216T", "99999999999999999999", "17179869184G",
		"99999999T",
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
	for (size_t i = 0; i < sizeof(too_large) / sizeof(too_large[0]); i++)
		CHECKF(lm_parse_size(too_large[i], &v) == -ERANGE, "\"%s\" not -ERANGE",
		       too_large[i]);
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

static void parse_uint_tests(void)
{
	uint64_t v = 7;
	CHECK(lm_parse_uint("0", 0, 10, &v) == 0 && v == 0);
	CHECK(lm_parse_uint("0010", 0, 10, &v) == 0 && v == 10);
	CHECK(lm_parse_uint("18446744073709551615", 0, UINT64_MAX, &v) == 0 && v == UINT64_MAX);
	CHECK(lm_parse_uint("65535", 0, 65535, &v) == 0 && v == 65535);
	static const char *bad[] = {
		"", " 1", "1 ", "+1", "-1", "-0", "0x1", "1x", "1.0", "1e3", "18446744073709551616",
		"99999999999999999999999", "\t1", "1\n", "65536", "١",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		CHECKF(lm_parse_uint(bad[i], 0, 65535, &v) == -EINVAL && v == 7, "\"%s\" accepted",
		       bad[i]);
	}
	CHECK(lm_parse_uint("4", 5, 9, &v) == -EINVAL && v == 7);
	CHECK(lm_parse_uint(NULL, 0, 9, &v) == -EINVAL);
}

static void next_field_tests(void)
{
	char buf[4];
	size_t pos = 0;
	const char *s = "a,,bcd,";
	CHECK(lm_next_field(s, &pos, ',', buf, sizeof(buf)) == 0 && !strcmp(buf, "a"));
	CHECK(lm_next_field(s, &pos, ',', buf, sizeof(buf)) == 0 && !strcmp(buf, ""));
	CHECK(lm_next_field(s, &pos, ',', buf, 3) == -EINVAL && pos == 3); /* "bcd" needs 4 */
	CHECK(lm_next_field(s, &pos, ',', buf, sizeof(buf)) == 0 && !strcmp(buf, "bcd") &&
	      pos == 7);
	CHECK(lm_next_field(s, &pos, ',', buf, sizeof(buf)) == 0 && !strcmp(buf, "") && pos == 8);
	CHECK(lm_next_field(s, &pos, ',', buf, sizeof(buf)) == -EINVAL); /* no field left */
	pos = 0;
	CHECK(lm_next_field("", &pos, ',', buf, sizeof(buf)) == 0 && !buf[0] && pos == 1);
}

static void file_has_word_tests(void)
{
	char path[] = "/tmp/lm-test-words-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	const char *text = "tlsx  cpu\tio\n\nmemory tls\n";
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	CHECK(lm_file_has_word(path, "tls"));
	CHECK(lm_file_has_word(path, "cpu"));
	CHECK(lm_file_has_word(path, "io"));
	CHECK(lm_file_has_word(path, "memory"));
	CHECK(!lm_file_has_word(path, "tl"));
	CHECK(!lm_file_has_word(path, "mem"));
	CHECK(!lm_file_has_word(path, "x"));
	CHECK(!lm_file_has_word(path, "cpu io"));
	CHECK(truncate(path, 0) == 0 && !lm_file_has_word(path, "tls"));
	unlink(path);
	CHECK(!lm_file_has_word(path, "tls")); /* gone */
}

int main(void)
{
	parse_size_tests();
	parse_uint_tests();
	next_field_tests();
	file_has_word_tests();
	T_DONE();
}
