/* SPDX-License-Identifier: MIT */
/* Compiled once per instruction set; meson passes -mavx2 / -mavx512f and
 * LM_HASH_NAME.  XXH_INLINE_ALL keeps every copy of XXH3 private to its
 * object, so the variants cannot collide. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "util/page.h"
#include "util/pagehash.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

struct lm_h128 CAT(lm_page_hash_, LM_HASH_NAME)(const void *page, uint64_t seed)
{
	XXH128_hash_t h = XXH3_128bits_withSeed(page, LM_PAGE_SIZE, seed);
	return (struct lm_h128){h.low64, h.high64};
}
