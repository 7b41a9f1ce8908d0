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

#endif
