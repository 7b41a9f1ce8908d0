/* SPDX-License-Identifier: MIT */
/* Minimal test helpers: a failed CHECK prints where and makes main exit 1.
 * Tests exit 0 pass, 1 fail, 77 skip (meson's convention). */
#ifndef LM_T_H
#define LM_T_H

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

#define T_DONE() return t_failures ? 1 : 0

#endif
