/* SPDX-License-Identifier: MIT */
/*
 * What the userfaultfd trackers ask the kernel, and what the asynchronous ones
 * (uffd-async, uffd-remote, and liblivemig-track.so, which links this file
 * alone) do: register and protect a range, harvest it with PAGEMAP_SCAN.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dirty/uffd_compat.h"

int lm_uffd_open(bool user_mode_only)
{
	int fd = -1;
	/* Prefer a uffd that also sees kernel-mode faults (a read(2) into
	 * tracked memory); unprivileged processes only get user-mode ones. */
	if (!user_mode_only)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && (user_mode_only || errno == EPERM))
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	return fd < 0 ? -errno : fd;
}

int lm_uffd_features(bool user_mode_only, uint64_t *features, const char **why)
{
	/* A throw-away uffd: UFFDIO_API may be called once per descriptor,
	 * and it reports every feature the kernel offers. */
	struct uffdio_api api = {.api = UFFD_API};
	int fd = lm_uffd_open(user_mode_only), err = 0;

	if (fd >= 0) {
		if (ioctl(fd, UFFDIO_API, &api) < 0)
			err = -errno;
		close(fd);
	} else {
		err = fd;
	}
	*features = api.features;
	if (err == -ENOSYS)
		*why = "userfaultfd not built into this kernel";
	else if (err == -EPERM)
		*why = "userfaultfd not permitted (vm.unprivileged_userfaultfd)";
	else if (err)
		*why = "userfaultfd UFFDIO_API failed";
	return err;
}

int lm_uffd_probe(bool user_mode_only, uint64_t need, const char *missing, const char **why)
{
	uint64_t f = 0;
	const char *w = NULL;
	int err = lm_uffd_features(user_mode_only, &f, &w);
	if (!err && (f & need) != need) {
		err = -EOPNOTSUPP;
		w = missing;
	}
	if (why)
		*why = w;
	return err;
}

int lm_uffd_wp_async_open(const char **why)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	uint64_t have = 0;
	int fd, err = lm_uffd_features(true, &have, why);

	if (err)
		return err;
	if (!(have & UFFD_FEATURE_WP_ASYNC)) {
		*why = "UFFD_FEATURE_WP_ASYNC not supported (kernel < 6.7)";
		return -EOPNOTSUPP;
	}
	/* Implied by WP_ASYNC on every kernel that has it; asked for anyway so
	 * that untouched memory is protected even if that ever changes. */
	api.features |= have & UFFD_FEATURE_WP_UNPOPULATED;
	/* User-mode-only is enough: in async mode even a kernel-mode write (a
	 * read(2) into the memory) is resolved without a message. */
	fd = lm_uffd_open(true);
	if (fd < 0) {
		*why = "cannot open a userfaultfd";
		return fd;
	}
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		err = -errno;
		close(fd);
		*why = "userfaultfd UFFDIO_API failed";
		return err;
	}
	return fd;
}

int lm_uffd_wp_async_track(int uffd, uint64_t start, uint64_t len, const char **why)
{
	struct uffdio_register reg = {
		.range = { start, len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = { start, len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		*why = errno == EBUSY ? "already registered with another userfaultfd"
				      : "UFFDIO_REGISTER (write-protect) failed";
		return -errno;
	}
	if (!(reg.ioctls & ((uint64_t)1 << _UFFDIO_WRITEPROTECT))) {
		*why = "this memory cannot be write-protected";
		return -EOPNOTSUPP;
	}
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
		*why = "UFFDIO_WRITEPROTECT failed";
		return -errno;
	}
	return 0;
}

int lm_pagemap_scan_probe(const char **why)
{
	/* An empty range: 0 where the ioctl exists, -ENOTTY where not. */
	struct pm_scan_arg a = { .size = sizeof(a) };
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), err = 0;

	if (pm < 0) {
		*why = "cannot open /proc/self/pagemap";
		return -errno;
	}
	a.start = a.end = (uint64_t)(uintptr_t)&a & ~(uint64_t)(LM_UFFD_PAGE - 1);
	if (ioctl(pm, PAGEMAP_SCAN, &a) < 0) {
		err = errno == ENOTTY ? -EOPNOTSUPP : -errno;
		*why = "PAGEMAP_SCAN not supported (kernel < 6.7)";
	}
	close(pm);
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

/* The walk of lm_pagemap_harvest and lm_pagemap_wp_check: flags are the
 * PM_SCAN_* flags, with PM_SCAN_CHECK_WPASYNC always. */
static int64_t scan(int pagemap, uint64_t start, uint64_t end, struct page_region *vec,
		    unsigned vec_len, uint64_t *bitmap, uint64_t flags)
{
	struct pm_scan_arg a = {
		.size = sizeof(a),
		/* CHECK_WPASYNC: fail rather than report nothing if the range
		 * was unmapped and mapped again behind our back (or was never
		 * registered). */
		.flags = flags | PM_SCAN_CHECK_WPASYNC,
		.start = start,
		.end = end,
		.vec = (uintptr_t)vec,
		.vec_len = vec_len,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	int64_t total = 0;

	for (;;) {
		int n = ioctl(pagemap, PAGEMAP_SCAN, &a);

		/* Pages matched before an error were re-protected but not
		 * returned: the caller must treat the range as dirty. */
		if (n < 0)
			return -errno;
		for (int j = 0; j < n; j++) {
			uint64_t s = vec[j].start, e = vec[j].end;

			if (s < start || e > end || s >= e)
				return -EIO;
			if (bitmap)
				set_bits(bitmap, (s - start) / LM_UFFD_PAGE, (e - s) / LM_UFFD_PAGE);
			total += (int64_t)((e - s) / LM_UFFD_PAGE);
		}
		/* The vector filled: resume where the walk stopped. */
		if (a.walk_end >= end)
			return total;
		if (a.walk_end <= a.start && n == 0)
			return -EIO;
		a.start = a.walk_end;
	}
}

int64_t lm_pagemap_harvest(int pagemap, uint64_t start, uint64_t end, struct page_region *vec,
			   unsigned vec_len, uint64_t *bitmap)
{
	return scan(pagemap, start, end, vec, vec_len, bitmap, PM_SCAN_WP_MATCHING);
}

int lm_pagemap_wp_check(int pagemap, uint64_t start, uint64_t end)
{
	/* The same walk without WP_MATCHING: nothing is re-protected, so the
	 * next harvest still sees every write. */
	struct page_region vec[64];
	int64_t n = scan(pagemap, start, end, vec, 64, NULL, 0);

	return n < 0 ? (int)n : 0;
}
