/* SPDX-License-Identifier: MIT */
/*
 * uffd-sync: synchronous userfaultfd write-protection (Linux >= 5.7) with a
 * fault thread.
 *
 * Every page is write-protected at start.  A write to a protected page
 * blocks the writer and queues a message; the fault thread un-protects that
 * page (which wakes the writer) and then sets its bit in our own bitmap.
 * sync takes the bits (atomic exchange with 0) and re-protects exactly the
 * pages it took.
 *
 * Invariant: a page that is writable has its bit set, or its fault thread
 * is between un-protect and publish while holding fault_lock.  Hence:
 *  - fault thread: un-protect, THEN set the bit.  The other order loses
 *    writes: sync could take the bit and re-protect before the un-protect
 *    lands, leaving the page writable with a clear bit.  A stale message
 *    (a second fault on a page already handled) only adds a spurious report.
 *  - sync: take the bits, THEN re-protect what was taken.  A write between
 *    the two lands on a page this sync reports; the caller copies pages only
 *    after sync returns, so it sees that write.  A write after re-protect
 *    faults and sets the bit again for the next sync.
 *  - the writer can run as soon as its page is un-protected (woken by that
 *    ioctl, or never asleep if it re-checked the pte first), before the bit
 *    is set.  sync therefore first takes and drops fault_lock: every write
 *    that completed before sync began has its bit published by then.
 *
 * Never-populated anonymous pages have no pte to protect.  With
 * UFFD_FEATURE_WP_UNPOPULATED (Linux >= 6.4) the kernel protects them with
 * pte markers; without it start populates every region with
 * MADV_POPULATE_WRITE (Linux >= 5.14) first -- which allocates all of it --
 * and pages dropped later by MADV_DONTNEED escape tracking on such kernels.
 *
 * Memory types: the kernel accepts synchronous uffd-wp only on anonymous,
 * shmem/tmpfs and hugetlbfs vmas.  A MAP_PRIVATE mapping of a regular file
 * (ext4, xfs...) is refused: start returns -EOPNOTSUPP (uffd-async accepts
 * it).  hugetlbfs is not supported here: the fault thread un-protects 4 KiB
 * at a time, which the kernel rejects inside a huge page.
 *
 * Discards: MADV_DONTNEED on anonymous memory drops the pages together with
 * their protection and sends us nothing, so the discard is not reported and
 * later writes to those pages do not fault: tracked memory must not be
 * discarded while this tracker runs (uffd-async copes; UFFD_FEATURE_EVENT_
 * REMOVE could tell us, but a pending event makes UFFDIO_WRITEPROTECT fail
 * with EAGAIN until this thread reads it -- not handled yet).
 *
 * Kernel-mode writes (read(2) into tracked memory) fault like user writes
 * and are handled by the fault thread -- unless the process may only create
 * a user-mode-only uffd (unprivileged, vm.unprivileged_userfaultfd=0): then
 * such a write fails with EFAULT while tracking is on.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dirty/tracker.h"
#include "dirty/uffd_compat.h"
#include "util/util.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14, uapi asm-generic/mman-common.h */
#endif

#define PAGE 4096u
#define MSG_BATCH 64

struct sync_region {
	uintptr_t base;
	uint64_t size;
	uint64_t nwords;
	_Atomic uint64_t *bits; /* set by the fault thread, taken by sync */
};

struct sync_ctx {
	int uffd;
	int stop_fd; /* eventfd: written once by stop */
	bool thread_started;
	pthread_t thread;
	/* Held by the fault thread from un-protect to publish; sync takes it
	 * once as a barrier (see the top of this file). */
	pthread_mutex_t fault_lock;
	_Atomic int err; /* first error of the fault thread, 0 if none */
	unsigned nregions;
	unsigned *by_addr; /* region indices sorted by base, for the fault thread */
	struct sync_region r[];
};

static int sync_probe(const char **why)
{
	return lm_uffd_probe(false, UFFD_FEATURE_PAGEFAULT_FLAG_WP,
			     "UFFD_FEATURE_PAGEFAULT_FLAG_WP not supported (kernel < 5.7)", why);
}

static int writeprotect(int uffd, uintptr_t start, uint64_t len, uint64_t mode)
{
	struct uffdio_writeprotect wp = { .range = { start, len }, .mode = mode };

	/* EAGAIN: the mm is changing under a uffd event; try again. */
	while (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	return 0;
}

static struct sync_region *find_region(struct sync_ctx *c, uintptr_t addr)
{
	unsigned lo = 0, hi = c->nregions;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		struct sync_region *r = &c->r[c->by_addr[mid]];

		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->size)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

static void latch(struct sync_ctx *c, int err)
{
	int zero = 0;

	atomic_compare_exchange_strong(&c->err, &zero, err);
}

/* Handles one batch of messages; false when the thread must give up. */
static bool handle_faults(struct sync_ctx *c)
{
	struct uffd_msg msg[MSG_BATCH];
	ssize_t n = read(c->uffd, msg, sizeof(msg));

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? true : (latch(c, -errno), false);
	pthread_mutex_lock(&c->fault_lock);
	for (size_t i = 0; i < (size_t)n / sizeof(msg[0]); i++) {
		uintptr_t addr = (uintptr_t)msg[i].arg.pagefault.address & ~(uintptr_t)(PAGE - 1);
		struct sync_region *r;
		uint64_t pg;
		int err;

		/* Only WP faults are registered; no other event was asked for. */
		if (msg[i].event != UFFD_EVENT_PAGEFAULT ||
		    !(msg[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP))
			continue;
		r = find_region(c, addr);
		/* Un-protect first, publish second: see the top of this file. */
		err = writeprotect(c->uffd, addr, PAGE, 0);
		if (err) {
			latch(c, err);
			continue;
		}
		if (!r) {
			latch(c, -EFAULT); /* a fault outside our regions: impossible */
			continue;
		}
		pg = (addr - r->base) / PAGE;
		atomic_fetch_or(&r->bits[pg / 64], (uint64_t)1 << (pg % 64));
	}
	pthread_mutex_unlock(&c->fault_lock);
	return true;
}

static void *fault_thread(void *arg)
{
	struct sync_ctx *c = arg;
	struct pollfd pfd[2] = {
		{ .fd = c->uffd, .events = POLLIN },
		{ .fd = c->stop_fd, .events = POLLIN },
	};

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			latch(c, -errno);
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			latch(c, -EIO);
			break;
		}
		/* Giving up leaves writers blocked until stop un-protects
		 * everything; sync reports the latched error meanwhile. */
		if ((pfd[0].revents & POLLIN) && !handle_faults(c))
			break;
	}
	return NULL;
}

static void sync_stop(void *p)
{
	struct sync_ctx *c = p;

	if (!c)
		return;
	if (c->thread_started) {
		uint64_t one = 1;

		while (write(c->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
		pthread_join(c->thread, NULL);
	}
	if (c->uffd >= 0) {
		/* With the fault thread gone nobody would wake a writer blocked
		 * on a protected page: un-protect (and wake) everything, then
		 * let close unregister the ranges. */
		for (unsigned i = 0; i < c->nregions; i++)
			if (c->r[i].bits)
				writeprotect(c->uffd, c->r[i].base, c->r[i].size, 0);
		close(c->uffd);
	}
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	pthread_mutex_destroy(&c->fault_lock);
	for (unsigned i = 0; i < c->nregions; i++)
		free(c->r[i].bits);
	free(c->by_addr);
	free(c);
}

/* Page aligned, non-empty, no wrap; fills by_addr and rejects overlap. */
static int check_regions(struct sync_ctx *c)
{
	if (sysconf(_SC_PAGESIZE) != PAGE)
		return -EINVAL;
	for (unsigned i = 0; i < c->nregions; i++) {
		c->by_addr[i] = i;
		if ((c->r[i].base | c->r[i].size) % PAGE || c->r[i].size == 0 ||
		    c->r[i].base + c->r[i].size < c->r[i].base)
			return -EINVAL;
	}
	/* Insertion sort: a handful of regions, and no qsort context needed. */
	for (unsigned i = 1; i < c->nregions; i++) {
		unsigned v = c->by_addr[i], j = i;

		for (; j > 0 && c->r[c->by_addr[j - 1]].base > c->r[v].base; j--)
			c->by_addr[j] = c->by_addr[j - 1];
		c->by_addr[j] = v;
	}
	for (unsigned i = 1; i < c->nregions; i++) {
		const struct sync_region *a = &c->r[c->by_addr[i - 1]], *b = &c->r[c->by_addr[i]];

		if (a->base + a->size > b->base)
			return -EINVAL;
	}
	return 0;
}

static int sync_start(void **ctx, const struct lm_tracker_cfg *cfg, char *why, size_t len)
{
	const struct lm_track_region *reg = cfg ? cfg->regions : NULL;
	unsigned n = cfg ? cfg->nregions : 0;
	struct uffdio_api api = { .api = UFFD_API };
	uint64_t want = UFFD_FEATURE_PAGEFAULT_FLAG_WP;
	struct sync_ctx *c;
	uint64_t have = 0;
	int err;

	(void)why; /* the errno says it all */
	(void)len;
	if (!ctx || !reg || n == 0)
		return -EINVAL;
	*ctx = NULL;
	err = lm_uffd_features(false, &have, &(const char *){NULL});
	if (err)
		return err;
	if (!(have & UFFD_FEATURE_PAGEFAULT_FLAG_WP))
		return -EOPNOTSUPP;
	/* Test hook: exercise the MADV_POPULATE_WRITE path on new kernels. */
	if (getenv("LM_UFFD_SYNC_NO_UNPOPULATED"))
		have &= ~(uint64_t)UFFD_FEATURE_WP_UNPOPULATED;
	want |= have & UFFD_FEATURE_WP_UNPOPULATED;

	c = calloc(1, sizeof(*c) + n * sizeof(c->r[0]));
	if (!c)
		return -ENOMEM;
	c->uffd = c->stop_fd = -1;
	c->nregions = n;
	pthread_mutex_init(&c->fault_lock, NULL);
	c->by_addr = calloc(n, sizeof(*c->by_addr));
	if (!c->by_addr) {
		err = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < n; i++) {
		c->r[i].base = (uintptr_t)reg[i].base;
		c->r[i].size = reg[i].size;
		c->r[i].nwords = lm_bitmap_words(reg[i].size / PAGE);
	}
	err = check_regions(c);
	if (err)
		goto fail;
	for (unsigned i = 0; i < n; i++) {
		c->r[i].bits = calloc(c->r[i].nwords, sizeof(uint64_t));
		if (!c->r[i].bits) {
			err = -ENOMEM;
			goto fail;
		}
	}
	c->uffd = lm_uffd_open(false);
	if (c->uffd < 0) {
		err = c->uffd;
		goto fail;
	}
	/* On return api.features lists everything the kernel offers, not
	 * what was enabled: decide from want, never from api.features. */
	api.features = want;
	if (ioctl(c->uffd, UFFDIO_API, &api) < 0) {
		err = -errno;
		goto fail;
	}
	c->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->stop_fd < 0) {
		err = -errno;
		goto fail;
	}
	for (unsigned i = 0; i < n; i++) {
		struct uffdio_register r = {
			.range = { c->r[i].base, c->r[i].size },
			.mode = UFFDIO_REGISTER_MODE_WP,
		};

		if (ioctl(c->uffd, UFFDIO_REGISTER, &r) < 0) {
			/* Alignment was checked: EINVAL means the kernel will not
			 * write-protect this kind of vma (MAP_PRIVATE file). */
			err = errno == EINVAL ? -EOPNOTSUPP : -errno;
			goto fail;
		}
		if (!(r.ioctls & ((uint64_t)1 << _UFFDIO_WRITEPROTECT))) {
			err = -EOPNOTSUPP;
			goto fail;
		}
	}
	/* After registering, which rejects unsupported memory before we
	 * allocate all of it; before protecting, which skips empty ptes. */
	if (!(want & UFFD_FEATURE_WP_UNPOPULATED))
		for (unsigned i = 0; i < n; i++)
			if (madvise(reg[i].base, reg[i].size, MADV_POPULATE_WRITE) < 0) {
				err = errno == EINVAL ? -EOPNOTSUPP : -errno;
				goto fail;
			}
	err = lm_thread_start(&c->thread, fault_thread, c);
	if (err)
		goto fail;
	c->thread_started = true;
	pthread_setname_np(c->thread, "lm-uffd-wp");
	for (unsigned i = 0; i < n; i++) {
		err = writeprotect(c->uffd, c->r[i].base, c->r[i].size, UFFDIO_WRITEPROTECT_MODE_WP);
		if (err)
			goto fail;
	}
	*ctx = c;
	return 0;
fail:
	sync_stop(c);
	return err;
}

static int64_t sync_sync(void *p, uint64_t *const *bitmap)
{
	struct sync_ctx *c = p;
	int64_t total = 0;
	int err;

	if (!c || !bitmap)
		return -EINVAL;
	/* Barrier: faults whose writers may already have written are published. */
	pthread_mutex_lock(&c->fault_lock);
	pthread_mutex_unlock(&c->fault_lock);
	err = atomic_load(&c->err);
	if (err)
		return err;
	for (unsigned i = 0; i < c->nregions; i++) {
		struct sync_region *r = &c->r[i];
		uint64_t run = 0, len = 0; /* pending run of pages to re-protect */

		for (uint64_t w = 0; w < r->nwords; w++) {
			uint64_t bits;

			if (!atomic_load_explicit(&r->bits[w], memory_order_relaxed))
				continue;
			/* Take, then re-protect: see the top of this file. */
			bits = atomic_exchange(&r->bits[w], 0);
			bitmap[i][w] |= bits;
			total += __builtin_popcountll(bits);
			while (bits) {
				uint64_t pg = w * 64 + (uint64_t)__builtin_ctzll(bits);

				bits &= bits - 1;
				if (len && run + len == pg) {
					len++;
					continue;
				}
				if (len && (err = writeprotect(c->uffd, r->base + run * PAGE, len * PAGE,
							       UFFDIO_WRITEPROTECT_MODE_WP)))
					return err;
				run = pg;
				len = 1;
			}
		}
		if (len && (err = writeprotect(c->uffd, r->base + run * PAGE, len * PAGE,
					       UFFDIO_WRITEPROTECT_MODE_WP)))
			return err;
	}
	return total;
}

const struct lm_tracker_ops lm_tracker_uffd_sync_ops = {
	.name = "uffd-sync",
	.help = "userfaultfd write-protect with a fault thread (kernel >= 5.7)",
	.probe = sync_probe,
	.start = sync_start,
	.sync = sync_sync,
	.stop = sync_stop,
};
