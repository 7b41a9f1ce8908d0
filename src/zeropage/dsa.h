/* SPDX-License-Identifier: MIT */
/*
 * Zero-page detection on an Intel DSA work queue (see docs/dsa.md).
 *
 * One struct lm_dsa per sender thread; it is never shared, so nothing in it
 * is locked.  Each call submits one batch of COMPVAL (pattern 0) descriptors
 * and polls for its completion on the calling thread.  Whatever the device
 * does -- rejects the submission, fails the batch, faults on a page, stops
 * answering -- the answer is completed on the CPU and the event counted: a
 * call never returns a wrong or partial answer.
 */
#ifndef LM_DSA_H
#define LM_DSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Pages per lm_dsa_zero_check() call (one multifd packet), and page size. */
#define LM_DSA_MAX_PAGES 128u
#define LM_DSA_PAGE_SIZE 4096u

struct lm_dsa;

/*
 * Counters, written only by the owning thread.
 *   batches         BATCH descriptors the work queue accepted
 *   descriptors     COMPVAL descriptors the work queue accepted (alone or in a batch)
 *   pages_dsa       pages answered entirely by the device
 *   pages_cpu       pages answered (wholly or partly) by the CPU
 *   page_faults     descriptors that stopped at a page fault (partial completion);
 *                   the rest of the page was checked on the CPU
 *   batch_failures  submissions with a device error (error status, rejected
 *                   beyond the retry limit, timeout); page faults are not errors
 *   submit_retries  ENQCMD rejections (shared work queue full) that were retried
 *   timeouts        submissions that did not complete in time; after the first
 *                   one the engine stops using the device (see lm_dsa_zero_check)
 */
struct lm_dsa_stats {
	uint64_t batches, descriptors, pages_dsa, pages_cpu, page_faults, batch_failures,
		submit_retries;
	uint64_t timeouts;
};

/*
 * Opens an engine on a work queue.
 *   path  "/dev/dsa/wqX.Y"   a real work queue (idxd driver, type "user", enabled)
 *         "x-model[:OPTS]"   the software model of a work queue (tests); OPTS is a
 *                            comma-separated list, see src/zeropage/dsa_model.c
 * Returns 0 and *out, or
 *   -ENODEV  no such work queue, no idxd driver, no DSA, or the CPU lacks the
 *            submission instruction; why says which
 *   -EINVAL  path or model options malformed
 *   other -errno (open/mmap of the portal, e.g. -EACCES, -EBUSY for a dedicated
 *            queue another process holds), with why
 * why (may be NULL) receives a NUL-terminated message on failure.
 */
int lm_dsa_open(const char *path, struct lm_dsa **out, char *why, size_t why_len);

/*
 * For `livemig info`: 0 if path is usable (it is opened and closed again),
 * else as lm_dsa_open().  path NULL means "any work queue": why then lists
 * the queues found in sysfs ("wq0.0 dedicated enabled user, ...") and the
 * result is 0 when at least one could be used.
 */
int lm_dsa_probe(const char *path, char *why, size_t why_len);

/*
 * zero[i] = true iff the LM_DSA_PAGE_SIZE bytes at pages[i] are all zero, for
 * i < n, n <= LM_DSA_MAX_PAGES.  One BATCH descriptor of n COMPVAL
 * descriptors (a single COMPVAL when n == 1, or when the queue's
 * max_batch_size forces a split).  Pages must stay mapped and readable.
 * After a timeout the device may still write into this engine's completion
 * records, so they are never reused: every later call runs on the CPU.
 * Returns 0 (the answer is always complete), or -EINVAL for bad arguments
 * (NULL pointers, n > LM_DSA_MAX_PAGES); n == 0 is a no-op.
 */
int lm_dsa_zero_check(struct lm_dsa *d, const uint8_t *const *pages, uint32_t n, bool *zero);

void lm_dsa_stats(const struct lm_dsa *d, struct lm_dsa_stats *st);

/* Accepts NULL. */
void lm_dsa_close(struct lm_dsa *d);

#endif
