/* SPDX-License-Identifier: MIT */
#ifndef LM_ZERO_H
#define LM_ZERO_H

#include <stdbool.h>
#include <stddef.h>

/* True when the LM_PAGE_SIZE bytes at p are all zero.  p is page aligned. */
typedef bool (*lm_zero_fn)(const void *p);

/*
 * Picks the fastest implementation this CPU runs (AVX-512, AVX2, SSE2).
 * The caller keeps the pointer (per thread); there is no global state.
 * name, if not NULL, receives "avx512", "avx2" or "sse2".
 */
lm_zero_fn lm_zero_select(const char **name);

/* Each implementation, for tests and benchmarks.  NULL if the CPU lacks it. */
lm_zero_fn lm_zero_get(const char *name);

/* Plain reference: byte loop. */
bool lm_zero_ref(const void *p);

#endif
