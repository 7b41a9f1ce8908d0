/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "util/pagehash.h"

static const struct {
	const char *name;
	const char *feature; /* for __builtin_cpu_supports */
	lm_page_hash_fn fn;
} variants[] = {
	/* Best first. */
	{"avx512", "avx512f", lm_page_hash_avx512},
	{"avx2", "avx2", lm_page_hash_avx2},
	{"sse2", "sse2", lm_page_hash_sse2},
};

static int supported(const char *feature)
{
	__builtin_cpu_init();
	if (!strcmp(feature, "avx512f"))
		return __builtin_cpu_supports("avx512f");
	if (!strcmp(feature, "avx2"))
		return __builtin_cpu_supports("avx2");
	return __builtin_cpu_supports("sse2");
}

lm_page_hash_fn lm_page_hash_get(const char *name)
{
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
		if (!strcmp(variants[i].name, name))
			return supported(variants[i].feature) ? variants[i].fn : NULL;
	return NULL;
}

lm_page_hash_fn lm_page_hash_select(const char **name)
{
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		if (supported(variants[i].feature)) {
			if (name)
				*name = variants[i].name;
			return variants[i].fn;
		}
	}
	return lm_page_hash_sse2; /* x86-64 always has SSE2 */
}
