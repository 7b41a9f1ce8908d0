/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

uint64_t lm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t lm_thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double lm_thread_cpu_seconds(void)
{
	return (double)lm_thread_cpu_ns() / 1e9;
}

int lm_thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits it */
	int e = pthread_create(th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -e;
}

/*
 * Grammar: digits [ "." digits ] [ unit ], unit one of (case-insensitive)
 * B, K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB, TiB; every multiplier is a
 * power of 1024.  No sign, no whitespace, no exponent.  Parsed by hand
 * rather than with strtod so that huge integers stay exact and overflow is
 * detected precisely.
 */
int lm_parse_size(const char *s, uint64_t *out)
{
	uint64_t ip = 0, frac_num = 0, frac_den = 1;
	unsigned shift = 0;
	const char *p = s;
	bool digits = false;

	if (!s || !out)
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');

		if (ip > (UINT64_MAX - d) / 10)
			return -ERANGE;
		ip = ip * 10 + d;
		digits = true;
		p++;
	}
	if (*p == '.') {
		p++;
		bool fdigits = false;

		while (*p >= '0' && *p <= '9') {
			/* Beyond 18 fractional digits nothing changes the result. */
			if (frac_den < 1000000000000000000ull) {
				frac_num = frac_num * 10 + (uint64_t)(*p - '0');
				frac_den *= 10;
			}
			fdigits = true;
			p++;
		}
		if (!fdigits)
			return -EINVAL;
		digits = true;
	}
	if (!digits)
		return -EINVAL;

	switch (*p) {
	case '\0':
		break;
	case 'b': case 'B': shift = 0; p++; break;
	case 'k': case 'K': shift = 10; p++; break;
	case 'm': case 'M': shift = 20; p++; break;
	case 'g': case 'G': shift = 30; p++; break;
	case 't': case 'T': shift = 40; p++; break;
	default:
		return -EINVAL;
	}
	if (shift && *p) {
		if (*p == 'i' || *p == 'I')
			p++;
		if (*p == 'b' || *p == 'B')
			p++;
		else
			return -EINVAL; /* "Ki" alone */
	}
	if (*p)
		return -EINVAL;

	if (shift == 0 && frac_num != 0)
		return -EINVAL; /* fractional bytes */
	if (ip > (UINT64_MAX >> shift))
		return -ERANGE;
	uint64_t v = ip << shift;
	/* frac_num / frac_den * 2^shift, rounded down; frac_num < frac_den <= 1e18
	 * and 2^shift <= 2^40, so do it in 128 bits. */
	unsigned __int128 f = ((unsigned __int128)frac_num << shift) / frac_den;

	if (v > UINT64_MAX - (uint64_t)f)
		return -ERANGE;
	*out = v + (uint64_t)f;
	return 0;
}

int lm_parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

int lm_next_field(const char *s, size_t *pos, char sep, char *buf, size_t cap)
{
	if (*pos > strlen(s))
		return -EINVAL;
	const char *start = s + *pos, *end = strchr(start, sep);
	size_t n = end ? (size_t)(end - start) : strlen(start);
	if (n >= cap)
		return -EINVAL;
	memcpy(buf, start, n);
	buf[n] = 0;
	*pos += n + 1;
	return 0;
}

uint64_t lm_bitmap_count(const uint64_t *w, uint64_t nwords)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < nwords; i++)
		n += (uint64_t)__builtin_popcountll(w[i]);
	return n;
}

bool lm_file_has_word(const char *path, const char *word)
{
	char buf[4096];
	size_t n = 0, len = strlen(word);
	FILE *f = fopen(path, "re");
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = 0;
	for (const char *w = buf + strspn(buf, " \t\n"); *w; w += strspn(w, " \t\n")) {
		size_t k = strcspn(w, " \t\n");
		if (k == len && !memcmp(w, word, len))
			return true;
		w += k;
	}
	return false;
}

struct timespec lm_deadline(clockid_t clock, long ms)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}
