/* SPDX-License-Identifier: MIT */
#ifndef LM_UTIL_H
#define LM_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C (Castagnoli), as iSCSI: crc = lm_crc32c(crc, buf, len), start at 0. */
uint32_t lm_crc32c(uint32_t crc, const void *buf, size_t len);

/* 128-bit digest of a set of memory regions, computed in parallel over
 * fixed 64 MiB chunks with nthreads threads; the result does not depend on
 * nthreads.  Returns 0 or -errno (thread creation). */
struct lm_region {
	const void *base;
	uint64_t size;
};
struct lm_digest {
	uint64_t lo, hi;
};
int lm_digest_regions(const struct lm_region *r, unsigned nregions, unsigned nthreads,
		      struct lm_digest *out);

/* Monotonic clock in ns. */
uint64_t lm_now_ns(void);
/* CPU time in seconds of the calling thread. */
double lm_thread_cpu_seconds(void);

/* Parses "123", "4K", "1.5G" (powers of 1024 for K/M/G/T, also "KiB" etc.);
 * -EINVAL when malformed or overflowing. */
int lm_parse_size(const char *s, uint64_t *out);

#endif
