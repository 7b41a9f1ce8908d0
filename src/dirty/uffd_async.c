/* SPDX-License-Identifier: MIT */
/*
 * uffd-async: asynchronous userfaultfd write-protection (Linux >= 6.7).
 *
 * Every page of every region is write-protected at start.  A write to a
 * protected page is resolved by the kernel inside the faulting thread: it
 * drops the protection and the write proceeds -- no message, no fault
 * thread.  sync is one PAGEMAP_SCAN per region (more if the output vector
 * fills): it returns the pages whose protection is gone (PAGE_IS_WRITTEN)
 * and re-protects exactly those, atomically per page table under the page
 * table lock, so a write is either seen by this scan or faults afterwards
 * and is seen by the next one.
 *
 * Memory types: with WP_ASYNC the kernel accepts any vma (anonymous, shmem,
 * MAP_PRIVATE of a regular file, hugetlbfs).  Never-populated pages are
 * protected by pte markers (WP_ASYNC implies WP_UNPOPULATED), so a first
 * write to untouched anonymous memory is reported like any other.  A write
 * to one 4 KiB page of a protected THP splits the PMD and only that page is
 * reported; a hugetlbfs page is reported whole.
 *
 * Discards: MADV_DONTNEED on anonymous memory drops the protection with the
 * page; the empty pte then counts as written, so the discard is reported and
 * the page re-protected.  On a MAP_PRIVATE file mapping the kernel keeps the
 * protection (a pte marker) instead, so discarding a copied page -- which
 * reverts it to the file's content -- is NOT reported; later writes are.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirty/tracker.h"
#include "dirty/uffd_compat.h"

#define PAGE LM_UFFD_PAGE
/* Output ranges per PAGEMAP_SCAN call; 96 KiB.  Written pages coalesce into
 * ranges, so one call usually covers a whole region. */
#define VEC_LEN 4096u

struct async_ctx {
	int uffd;
	int pagemap;
	unsigned nregions;
	struct page_region *vec;
	struct lm_track_region r[];
};

static int async_probe(const char **why)
{
	const char *w = NULL;
	int err = lm_uffd_probe(true, UFFD_FEATURE_WP_ASYNC,
				"UFFD_FEATURE_WP_ASYNC not supported (kernel < 6.7)", &w);

	if (!err)
		err = lm_pagemap_scan_probe(&w);
	if (why)
		*why = w;
	return err;
}

static int cmp_region(const void *a, const void *b)
{
	const struct lm_track_region *x = a, *y = b;

	return (uintptr_t)x->base < (uintptr_t)y->base ? -1 : (uintptr_t)x->base > (uintptr_t)y->base;
}

/* Page aligned, non-empty, no wrap, no overlap. */
static int check_regions(const struct lm_track_region *r, unsigned n)
{
	struct lm_track_region *s;
	int err = 0;

	if (!r || n == 0 || sysconf(_SC_PAGESIZE) != PAGE)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (((uintptr_t)r[i].base | r[i].size) % PAGE || r[i].size == 0 ||
		    (uintptr_t)r[i].base + r[i].size < (uintptr_t)r[i].base)
			return -EINVAL;
	s = malloc(n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	memcpy(s, r, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_region);
	for (unsigned i = 1; i < n; i++)
		if ((uintptr_t)s[i - 1].base + s[i - 1].size > (uintptr_t)s[i].base)
			err = -EINVAL;
	free(s);
	return err;
}

static void async_stop(void *p)
{
	struct async_ctx *c = p;

	if (!c)
		return;
	/* Closing the uffd unregisters every range, and unregistering clears the
	 * write-protect bits and markers: the memory is plain writable memory
	 * again, with nothing to wake (async mode never blocks a writer). */
	if (c->uffd >= 0)
		close(c->uffd);
	if (c->pagemap >= 0)
		close(c->pagemap);
	free(c->vec);
	free(c);
}

static int async_start(void **ctx, const struct lm_tracker_cfg *cfg, char *why, size_t len)
{
	struct async_ctx *c;
	const char *w = NULL;
	int err;

	if (!ctx || !cfg)
		return -EINVAL;
	*ctx = NULL;
	const struct lm_track_region *r = cfg->regions;
	unsigned n = cfg->nregions;
	err = check_regions(r, n);
	if (err)
		return err;

	c = calloc(1, sizeof(*c) + n * sizeof(c->r[0]));
	if (!c)
		return -ENOMEM;
	c->uffd = c->pagemap = -1;
	c->nregions = n;
	memcpy(c->r, r, n * sizeof(c->r[0]));
	c->vec = malloc(VEC_LEN * sizeof(*c->vec));
	if (!c->vec) {
		err = -ENOMEM;
		goto fail;
	}
	c->uffd = lm_uffd_wp_async_open(&w);
	if (c->uffd < 0) {
		err = c->uffd;
		goto fail;
	}
	c->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (c->pagemap < 0) {
		err = -errno;
		goto fail;
	}
	/* Tracking begins region by region as each is protected; all of it
	 * before start returns. */
	for (unsigned i = 0; i < n; i++)
		if ((err = lm_uffd_wp_async_track(c->uffd, (uintptr_t)r[i].base, r[i].size, &w)))
			goto fail; /* EBUSY: already registered by another uffd */
	*ctx = c;
	return 0;
fail:
	if (w)
		snprintf(why, len, "%s", w);
	async_stop(c);
	return err;
}

static int64_t async_sync(void *p, uint64_t *const *bitmap)
{
	struct async_ctx *c = p;
	int64_t total = 0;

	if (!c || !bitmap)
		return -EINVAL;
	for (unsigned i = 0; i < c->nregions; i++) {
		uint64_t base = (uintptr_t)c->r[i].base;
		int64_t n = lm_pagemap_harvest(c->pagemap, base, base + c->r[i].size, c->vec, VEC_LEN,
					       bitmap[i]);

		if (n < 0)
			return n;
		total += n;
	}
	return total;
}

const struct lm_tracker_ops lm_tracker_uffd_async_ops = {
	.name = "uffd-async",
	.help = "userfaultfd write-protect, asynchronous: no fault thread (kernel >= 6.7)",
	.probe = async_probe,
	.start = async_start,
	.sync = async_sync,
	.stop = async_stop,
};
