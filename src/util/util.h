/* SPDX-License-Identifier: MIT */
#ifndef LM_UTIL_H
#define LM_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C (Castagnoli), as iSCSI: crc = lm_crc32c(crc, buf, len), start at 0. */
uint32_t lm_crc32c(uint32_t crc, const void *buf, size_t len);

/* Bitmaps of one bit per page, bit i in word i / 64 (dirty logs, the
 * destination's received pages): words for n bits, and bits set in w[0..n). */
static inline uint64_t lm_bitmap_words(uint64_t nbits)
{
	return (nbits + 63) / 64;
}
uint64_t lm_bitmap_count(const uint64_t *w, uint64_t nwords);

/* Monotonic clock in ns. */
uint64_t lm_now_ns(void);
/* CPU time in seconds of the calling thread. */
double lm_thread_cpu_seconds(void);

/* Parses "123", "4K", "1.5G" (powers of 1024 for K/M/G/T, also "KiB" etc.);
 * -EINVAL when malformed or overflowing. */
int lm_parse_size(const char *s, uint64_t *out);

#endif
