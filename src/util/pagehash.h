/* SPDX-License-Identifier: MIT */
/*
 * 128-bit page hashes for the verification digest (docs/wire-format.md):
 * XXH3-128 of one page seeded with its global page number.  Debian's
 * libxxhash is built for baseline x86-64 (SSE2); hashing every page twice
 * per migration made it a top entry in profiles, so the same inline XXH3 is
 * compiled per instruction set and chosen at run time, like zero detection.
 * Every variant returns the same value.
 */
#ifndef LM_PAGEHASH_H
#define LM_PAGEHASH_H

#include <stdint.h>

struct lm_h128 {
	uint64_t lo, hi;
};

typedef struct lm_h128 (*lm_page_hash_fn)(const void *page, uint64_t seed);

/* The fastest variant this CPU runs; name gets "avx512", "avx2" or "sse2". */
lm_page_hash_fn lm_page_hash_select(const char **name);
/* A given variant, NULL when the CPU lacks it (for tests). */
lm_page_hash_fn lm_page_hash_get(const char *name);

/* The variants, one per compilation of pagehash_impl.c. */
struct lm_h128 lm_page_hash_sse2(const void *page, uint64_t seed);
struct lm_h128 lm_page_hash_avx2(const void *page, uint64_t seed);
struct lm_h128 lm_page_hash_avx512(const void *page, uint64_t seed);

#endif
