/* SPDX-License-Identifier: MIT */
/*
 * userfaultfd / PAGEMAP_SCAN definitions that Debian 12's linux-libc-dev
 * (6.1 headers) lacks.  Values are the kernel's UAPI (include/uapi/linux/
 * userfaultfd.h and fs.h of Linux >= 6.7); each is defined only when the
 * system header does not already provide it, so newer headers win.  Whether
 * the running kernel supports a feature is decided at run time (UFFDIO_API's
 * returned feature mask, -ENOTTY from PAGEMAP_SCAN), never from these.
 */
#ifndef LM_UFFD_COMPAT_H
#define LM_UFFD_COMPAT_H

#include <linux/fs.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

/* Linux 5.11 */
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

/* Linux 6.4: uffd-wp also protects never-populated ptes (pte markers). */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif

/* Linux 6.7: a write to a protected page is resolved by the kernel itself
 * (protection dropped, no message); implies WP_UNPOPULATED. */
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

/* Linux 6.7: PAGEMAP_SCAN on /proc/PID/pagemap. */
#ifndef PAGEMAP_SCAN
struct page_region {
	__u64 start;      /* first byte */
	__u64 end;        /* exclusive */
	__u64 categories; /* PAGE_IS_* (only those in return_mask) */
};

struct pm_scan_arg {
	__u64 size;     /* sizeof(struct pm_scan_arg) */
	__u64 flags;    /* PM_SCAN_* */
	__u64 start;    /* page aligned */
	__u64 end;
	__u64 walk_end; /* out: where the walk stopped; == end when complete */
	__u64 vec;      /* struct page_region[vec_len] */
	__u64 vec_len;
	__u64 max_pages; /* 0 = unlimited */
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

#ifndef PAGE_IS_WPALLOWED
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#endif

#ifndef PM_SCAN_WP_MATCHING
#define PM_SCAN_WP_MATCHING (1 << 0)   /* write-protect the pages matched */
#define PM_SCAN_CHECK_WPASYNC (1 << 1) /* fail if a vma is not async uffd-wp */
#endif

/* uffd_common.c */
#include <stdbool.h>
#include <stdint.h>
/* A userfaultfd (O_CLOEXEC | O_NONBLOCK), or -errno. */
int lm_uffd_open(bool user_mode_only);
/* The features this kernel offers; on failure -errno and a reason in why. */
int lm_uffd_features(bool user_mode_only, uint64_t *features, const char **why);
/* 0 when userfaultfd offers every feature in need; else -errno and why
 * (missing when a feature lacks). */
int lm_uffd_probe(bool user_mode_only, uint64_t need, const char *missing, const char **why);

#define LM_UFFD_PAGE 4096u
/* A userfaultfd (user-mode-only) whose API asked for UFFD_FEATURE_WP_ASYNC and
 * WP_UNPOPULATED: a write to a range it protects is resolved by the kernel in
 * the writing thread (protection dropped, no message, never blocks).  Returns
 * the fd (the caller closes it; closing unregisters everything) or -errno with
 * a reason in why: -EOPNOTSUPP kernel < 6.7, -EPERM not permitted, ... */
int lm_uffd_wp_async_open(const char **why);
/* Registers [start, start + len) of this process (page aligned, mapped) on an
 * lm_uffd_wp_async_open() fd and write-protects all of it: every write from
 * its return on is recorded for PAGEMAP_SCAN.  0, or -errno with why: -EBUSY
 * another userfaultfd has the range, -EINVAL bad or unmapped range,
 * -EOPNOTSUPP memory that cannot be write-protected. */
int lm_uffd_wp_async_track(int uffd, uint64_t start, uint64_t len, const char **why);
/* 0 when this kernel has PAGEMAP_SCAN; else -errno and why. */
int lm_pagemap_scan_probe(const char **why);
/* One harvest of [start, end) (page aligned) through pagemap, an open
 * /proc/PID/pagemap of the process that registered the range: every page
 * written since it was last protected is reported and protected again,
 * atomically per page table, so a racing write is seen now or next time.
 * Sets bit (page address - start) / 4096 of bitmap for each (bitmap NULL:
 * only re-protect); vec is scratch space of vec_len entries.  Returns the
 * number of pages reported or -errno: -EPERM some of the range has no async
 * write-protect registration, -EIO the kernel's answer made no sense.  After
 * an error, treat the whole range as written. */
int64_t lm_pagemap_harvest(int pagemap, uint64_t start, uint64_t end, struct page_region *vec,
			   unsigned vec_len, uint64_t *bitmap);
/* Whether all of [start, end) (page aligned) of the process whose pagemap
 * is open has the async write-protect registration that harvests need
 * (liblivemig-track.so's), without protecting or reporting anything.  0
 * yes; -EPERM not all of it; -ENOTTY no PAGEMAP_SCAN (kernel < 6.7);
 * another -errno the walk failed. */
int lm_pagemap_wp_check(int pagemap, uint64_t start, uint64_t end);

#endif
