/* SPDX-License-Identifier: MIT */
/*
 * Zero-page detection.  Each vector implementation ORs a block of 256 bytes
 * into one register and tests it, so a page with data is usually rejected
 * after the first block while an all-zero page costs 16 cheap tests.
 * Checking after every vector would add a branch per load; checking only
 * once per page would read all 4 KiB of every data page.
 *
 * Unaligned loads are used throughout: they cost nothing on aligned data on
 * any CPU that has AVX, and they keep the functions safe for callers that
 * break the "page aligned" promise (tests, odd buffers).
 *
 * Dispatch is by __builtin_cpu_supports (libgcc also checks that the OS
 * saves the wider registers); lm_zero_select() returns a pointer and keeps
 * nothing, so there is no global state.
 */
#include <errno.h>
#include <immintrin.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "util/page.h"
#include "zeropage/zero.h"
#include "zeropage/zeropage.h"

#define LM_ZERO_BLOCK 256u

bool lm_zero_ref(const void *p)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < LM_PAGE_SIZE; i++)
		if (b[i])
			return false;
	return true;
}

static bool zero_sse2(const void *p)
{
	const __m128i *v = p;
	const __m128i z = _mm_setzero_si128();

	for (size_t i = 0; i < LM_PAGE_SIZE / 16; i += LM_ZERO_BLOCK / 16) {
		__m128i a = _mm_or_si128(_mm_loadu_si128(v + i + 0), _mm_loadu_si128(v + i + 1));
		__m128i b = _mm_or_si128(_mm_loadu_si128(v + i + 2), _mm_loadu_si128(v + i + 3));
		__m128i c = _mm_or_si128(_mm_loadu_si128(v + i + 4), _mm_loadu_si128(v + i + 5));
		__m128i d = _mm_or_si128(_mm_loadu_si128(v + i + 6), _mm_loadu_si128(v + i + 7));

		a = _mm_or_si128(a, _mm_or_si128(_mm_loadu_si128(v + i + 8),
						 _mm_loadu_si128(v + i + 9)));
		b = _mm_or_si128(b, _mm_or_si128(_mm_loadu_si128(v + i + 10),
						 _mm_loadu_si128(v + i + 11)));
		c = _mm_or_si128(c, _mm_or_si128(_mm_loadu_si128(v + i + 12),
						 _mm_loadu_si128(v + i + 13)));
		d = _mm_or_si128(d, _mm_or_si128(_mm_loadu_si128(v + i + 14),
						 _mm_loadu_si128(v + i + 15)));
		a = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d));
		/* SSE2 has no PTEST: compare with zero, all 16 lanes must match. */
		if (_mm_movemask_epi8(_mm_cmpeq_epi8(a, z)) != 0xffff)
			return false;
	}
	return true;
}

__attribute__((target("avx2"))) static bool zero_avx2(const void *p)
{
	const __m256i *v = p;

	for (size_t i = 0; i < LM_PAGE_SIZE / 32; i += LM_ZERO_BLOCK / 32) {
		__m256i a = _mm256_or_si256(_mm256_loadu_si256(v + i + 0),
					    _mm256_loadu_si256(v + i + 1));
		__m256i b = _mm256_or_si256(_mm256_loadu_si256(v + i + 2),
					    _mm256_loadu_si256(v + i + 3));
		__m256i c = _mm256_or_si256(_mm256_loadu_si256(v + i + 4),
					    _mm256_loadu_si256(v + i + 5));
		__m256i d = _mm256_or_si256(_mm256_loadu_si256(v + i + 6),
					    _mm256_loadu_si256(v + i + 7));

		a = _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d));
		if (!_mm256_testz_si256(a, a))
			return false;
	}
	return true;
}

__attribute__((target("avx512f"))) static bool zero_avx512(const void *p)
{
	const __m512i *v = p;

	for (size_t i = 0; i < LM_PAGE_SIZE / 64; i += LM_ZERO_BLOCK / 64) {
		/* Three-input OR in one instruction (0xfe = a | b | c). */
		__m512i a = _mm512_ternarylogic_epi64(_mm512_loadu_si512(v + i + 0),
						      _mm512_loadu_si512(v + i + 1),
						      _mm512_loadu_si512(v + i + 2), 0xfe);

		a = _mm512_or_si512(a, _mm512_loadu_si512(v + i + 3));
		if (_mm512_test_epi64_mask(a, a))
			return false;
	}
	return true;
}

struct zero_impl {
	const char *name;
	lm_zero_fn fn;
	bool (*usable)(void);
};

static bool has_avx512(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f");
}

static bool has_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}

static bool has_sse2(void)
{
	return true; /* baseline on x86-64 */
}

/* Fastest first. */
static const struct zero_impl zero_impls[] = {
	{ "avx512", zero_avx512, has_avx512 },
	{ "avx2", zero_avx2, has_avx2 },
	{ "sse2", zero_sse2, has_sse2 },
};

lm_zero_fn lm_zero_select(const char **name)
{
	for (size_t i = 0; i < sizeof(zero_impls) / sizeof(zero_impls[0]); i++) {
		if (zero_impls[i].usable()) {
			if (name)
				*name = zero_impls[i].name;
			return zero_impls[i].fn;
		}
	}
	/* Unreachable: SSE2 is always usable. */
	if (name)
		*name = "sse2";
	return zero_sse2;
}

lm_zero_fn lm_zero_get(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(zero_impls) / sizeof(zero_impls[0]); i++)
		if (strcmp(zero_impls[i].name, name) == 0)
			return zero_impls[i].usable() ? zero_impls[i].fn : NULL;
	return NULL;
}

/* ---- zero-page-detection=multifd: the engine (zeropage.h) ---------------- */

struct cpu_engine {
	lm_zero_fn is_zero; /* chosen once per sender */
};

static int cpu_open(void **ctx, const struct lm_zeropage_cfg *cfg, char *why, size_t len)
{
	(void)cfg;
	(void)why;
	(void)len;
	struct cpu_engine *e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->is_zero = lm_zero_select(NULL);
	*ctx = e;
	return 0;
}

static int cpu_probe(char *why, size_t len)
{
	const char *simd = NULL;
	lm_zero_select(&simd);
	snprintf(why, len, "cpu SIMD: %s", simd ? simd : "unknown");
	return 0;
}

static void cpu_close(void *ctx)
{
	free(ctx);
}

/* A data page is usually rejected after its first 256 bytes, so the
 * caller's later visit of the page finds it still in cache. */
static void cpu_check(void *ctx, const uint8_t *const *pages, uint32_t n, bool *zero)
{
	lm_zero_fn is_zero = ((struct cpu_engine *)ctx)->is_zero;
	for (uint32_t i = 0; i < n; i++)
		zero[i] = is_zero(pages[i]);
}

const struct lm_zeropage_ops lm_zeropage_multifd_ops = {
	.name = "multifd",
	.probe = cpu_probe,
	.open = cpu_open,
	.close = cpu_close,
	.check = cpu_check,
};
