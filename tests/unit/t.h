/* SPDX-License-Identifier: MIT */
/* Minimal test helpers: a failed CHECK prints where and makes main exit 1.
 * Tests exit 0 pass, 1 fail, 77 skip (meson's convention). */
#ifndef LM_T_H
#define LM_T_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int t_failures;

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			t_failures++;                                                      \
		}                                                                          \
	} while (0)

#define CHECKF(cond, ...)                                                                  \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                      \
			fputc('\n', stderr);                                               \
			t_failures++;                                                      \
		}                                                                          \
	} while (0)

/* xorshift64: repeatable test data. */
static uint64_t t_rng = 0x2545f4914f6cdd1dull;

static inline uint64_t t_rnd(void)
{
	t_rng ^= t_rng << 13;
	t_rng ^= t_rng >> 7;
	t_rng ^= t_rng << 17;
	return t_rng;
}

#define T_DONE() return t_failures ? 1 : 0

#endif
