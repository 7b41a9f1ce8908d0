/* SPDX-License-Identifier: MIT */
#ifndef LM_UTIL_H
#define LM_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

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
/* The time ms milliseconds from now on clock (CLOCK_REALTIME,
 * CLOCK_MONOTONIC): a deadline for pthread_cond_timedwait. */
struct timespec lm_deadline(clockid_t clock, long ms);
/* CPU time of the calling thread, in ns and in seconds (0 if unknown). */
uint64_t lm_thread_cpu_ns(void);
double lm_thread_cpu_seconds(void);
/* pthread_create(th, NULL, fn, arg) for a thread that takes none of the
 * process's signals (SIGINT, SIGTERM...: they are the application's): it
 * starts with every signal blocked, whatever the caller's mask (which is
 * left as it was).  0 or -errno (pthread_create's). */
int lm_thread_start(pthread_t *th, void *(*fn)(void *), void *arg);

/* Parses "123", "4K", "1.5G" (powers of 1024 for K/M/G/T, also "KiB" etc.);
 * -EINVAL when malformed, -ERANGE when well formed but over 2^64 - 1. */
int lm_parse_size(const char *s, uint64_t *out);
/* Parses a whole number in lo..hi written as decimal digits only: no sign,
 * no space, no "0x", nothing after (leading zeros are fine).  0, or -EINVAL
 * when s is NULL, malformed, or out of range (overflow included); *out is
 * only written on success. */
int lm_parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
/*
 * Splits s at sep, one field per call: copies the field that starts at
 * s[*pos] (up to sep or the end) into buf, NUL-terminated, and moves *pos
 * past it and its sep.  k separators make k + 1 fields, empty ones
 * included; after the last one *pos > strlen(s).  Start with *pos = 0.
 * 0, or -EINVAL when the field does not fit in cap bytes or no field is
 * left.
 */
int lm_next_field(const char *s, size_t *pos, char sep, char *buf, size_t cap);

/*
 * Whether the text file at path holds word as a whole word (between
 * spaces, tabs or newlines) within its first 4 KiB: "tls" in
 * /proc/sys/net/ipv4/tcp_available_ulp, "cpu" in a cgroup's
 * cgroup.controllers.  false when the file cannot be read.  Reentrant.
 */
bool lm_file_has_word(const char *path, const char *word);

#endif
