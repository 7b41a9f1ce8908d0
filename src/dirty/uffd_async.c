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
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dirty/tracker.h"
#include "dirty/uffd_compat.h"

#define PAGE 4096u
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

	if (!err) {
		/* An empty range: 0 where the ioctl exists, -ENOTTY where not. */
		struct pm_scan_arg a = { .size = sizeof(a) };
		int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

		if (pm < 0) {
			err = -errno;
			w = "cannot open /proc/self/pagemap";
		} else {
			a.start = a.end = (uint64_t)(uintptr_t)&a & ~(uint64_t)(PAGE - 1);
			if (ioctl(pm, PAGEMAP_SCAN, &a) < 0) {
				err = errno == ENOTTY ? -EOPNOTSUPP : -errno;
				w = "PAGEMAP_SCAN not supported (kernel < 6.7)";
			}
			close(pm);
		}
	}
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

static int async_start(void **ctx, const struct lm_tracker_cfg *cfg)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	struct async_ctx *c;
	uint64_t have = 0;
	int err;

	if (!ctx || !cfg)
		return -EINVAL;
	*ctx = NULL;
	const struct lm_track_region *r = cfg->regions;
	unsigned n = cfg->nregions;
	err = check_regions(r, n);
	if (err)
		return err;
	err = lm_uffd_features(true, &have, &(const char *){NULL});
	if (err)
		return err;
	if (!(have & UFFD_FEATURE_WP_ASYNC))
		return -EOPNOTSUPP;
	/* Implied by WP_ASYNC on every kernel that has it; asked for anyway so
	 * that untouched memory is protected even if that ever changes. */
	api.features |= have & UFFD_FEATURE_WP_UNPOPULATED;

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
	/* User-mode-only is enough: in async mode even a kernel-mode write (a
	 * read(2) into guest memory) is resolved without a message. */
	c->uffd = lm_uffd_open(true);
	if (c->uffd < 0) {
		err = c->uffd;
		goto fail;
	}
	if (ioctl(c->uffd, UFFDIO_API, &api) < 0) {
		err = -errno;
		goto fail;
	}
	c->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (c->pagemap < 0) {
		err = -errno;
		goto fail;
	}
	for (unsigned i = 0; i < n; i++) {
		struct uffdio_register reg = {
			.range = { (uintptr_t)r[i].base, r[i].size },
			.mode = UFFDIO_REGISTER_MODE_WP,
		};

		if (ioctl(c->uffd, UFFDIO_REGISTER, &reg) < 0) {
			err = -errno; /* EBUSY: already registered by another uffd */
			goto fail;
		}
		if (!(reg.ioctls & ((uint64_t)1 << _UFFDIO_WRITEPROTECT))) {
			err = -EOPNOTSUPP;
			goto fail;
		}
	}
	/* Tracking begins region by region as each is protected; all of it
	 * before start returns. */
	for (unsigned i = 0; i < n; i++) {
		struct uffdio_writeprotect wp = {
			.range = { (uintptr_t)r[i].base, r[i].size },
			.mode = UFFDIO_WRITEPROTECT_MODE_WP,
		};

		if (ioctl(c->uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
			err = -errno;
			goto fail;
		}
	}
	*ctx = c;
	return 0;
fail:
	async_stop(c);
	return err;
}

/* Sets bits [first, first + count) of bm. */
static void set_bits(uint64_t *bm, uint64_t first, uint64_t count)
{
	while (count) {
		uint64_t w = first / 64, b = first % 64;
		uint64_t k = 64 - b < count ? 64 - b : count;

		bm[w] |= (k == 64 ? ~(uint64_t)0 : (((uint64_t)1 << k) - 1)) << b;
		first += k;
		count -= k;
	}
}

static int64_t async_sync(void *p, uint64_t *const *bitmap)
{
	struct async_ctx *c = p;
	int64_t total = 0;

	if (!c || !bitmap)
		return -EINVAL;
	for (unsigned i = 0; i < c->nregions; i++) {
		uint64_t base = (uintptr_t)c->r[i].base, end = base + c->r[i].size;
		struct pm_scan_arg a = {
			.size = sizeof(a),
			/* CHECK_WPASYNC: fail rather than report nothing if the
			 * region was unmapped and mapped again behind our back. */
			.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			.start = base,
			.end = end,
			.vec = (uintptr_t)c->vec,
			.vec_len = VEC_LEN,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};

		for (;;) {
			int n = ioctl(c->pagemap, PAGEMAP_SCAN, &a);

			/* Pages matched before an error were re-protected but not
			 * returned: the caller must treat the region as dirty. */
			if (n < 0)
				return -errno;
			for (int j = 0; j < n; j++) {
				uint64_t s = c->vec[j].start, e = c->vec[j].end;

				if (s < base || e > end || s >= e)
					return -EIO;
				set_bits(bitmap[i], (s - base) / PAGE, (e - s) / PAGE);
				total += (int64_t)((e - s) / PAGE);
			}
			/* The vector filled: resume where the walk stopped. */
			if (a.walk_end >= end)
				break;
			if (a.walk_end <= a.start && n == 0)
				return -EIO;
			a.start = a.walk_end;
		}
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
