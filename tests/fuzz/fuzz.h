/* SPDX-License-Identifier: MIT */
/*
 * Fuzz targets: each tests/fuzz/fuzz_*.c defines LLVMFuzzerTestOneInput()
 * over pure parsers or decoders, the code that reads what a peer or a user
 * wrote.  `make fuzz` builds them with clang's libFuzzer and runs them;
 * every ordinary build links each with replay.c instead, which runs its
 * corpus (tests/fuzz/corpus/<target>/) once, as a test of suite 'fuzz'.
 * docs/security.md, "Fuzzing", says what each target checks.
 *
 * The libraries the decoders call (zlib, zstd, lz4, ISA-L) are not built
 * with the sanitizers, so AddressSanitizer does not see their writes:
 * output buffers therefore carry guard bytes that are checked after each
 * call (fuzz_guarded_*).
 */
#ifndef LM_FUZZ_H
#define LM_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What must hold.  A failure aborts: libFuzzer saves the input as a crash,
 * the replay test fails. */
#define FUZZ_ASSERT(cond)                                                                  \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: fuzz assertion failed: %s\n", __FILE__,     \
				__LINE__, #cond);                                          \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* Out of memory in a harness is not a finding. */
static inline void *fuzz_alloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort();
	return p;
}

/* A copy of in[0..n) in a block of exactly n bytes, so that AddressSanitizer
 * catches a read past the end (libFuzzer's own buffer is exact too, the
 * replay's is not). */
static inline uint8_t *fuzz_dup(const uint8_t *in, size_t n)
{
	uint8_t *p = fuzz_alloc(n);
	if (n)
		memcpy(p, in, n);
	return p;
}

/* The input, read front to back; past its end every read gives zeros. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)fuzz_u8(in) << (8 * i);
	return v;
}

/* Up to n bytes (fewer at the end of the input); *got says how many. */
static inline const uint8_t *fuzz_take(struct fuzz_in *in, size_t n, size_t *got)
{
	const uint8_t *p = in->p;
	*got = n < in->n ? n : in->n;
	in->p += *got;
	in->n -= *got;
	return p;
}

/* A buffer of n bytes between two guards of FUZZ_GUARD bytes, filled with
 * fill; fuzz_guarded_free() checks that nothing wrote on the guards. */
#define FUZZ_GUARD 64u
#define FUZZ_GUARD_BYTE 0xfd

static inline uint8_t *fuzz_guarded(size_t n, uint8_t fill)
{
	uint8_t *b = fuzz_alloc(n + 2 * FUZZ_GUARD);
	memset(b, FUZZ_GUARD_BYTE, FUZZ_GUARD);
	memset(b + FUZZ_GUARD, fill, n);
	memset(b + FUZZ_GUARD + n, FUZZ_GUARD_BYTE, FUZZ_GUARD);
	return b + FUZZ_GUARD;
}

static inline void fuzz_guarded_free(uint8_t *p, size_t n)
{
	if (!p)
		return;
	for (size_t i = 0; i < FUZZ_GUARD; i++) {
		FUZZ_ASSERT(p[-(ptrdiff_t)FUZZ_GUARD + (ptrdiff_t)i] == FUZZ_GUARD_BYTE);
		FUZZ_ASSERT(p[n + i] == FUZZ_GUARD_BYTE);
	}
	free(p - FUZZ_GUARD);
}

#endif
