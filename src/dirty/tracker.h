/* SPDX-License-Identifier: MIT */
/*
 * Dirty-page trackers: one ops table per kind, chosen by probing (best
 * first) or by name.  A tracker watches a set of page-aligned regions of
 * this process and reports, at each sync, every page written since the
 * previous sync (or since start).  A write racing with a sync is reported by
 * that sync or the next one -- never lost.
 *
 * Threading: start/sync/stop are called from one thread (the migration's
 * control thread).  Writers (guest threads) run concurrently throughout.
 */
#ifndef LM_TRACKER_H
#define LM_TRACKER_H

#include <stddef.h>
#include <stdint.h>

struct lm_track_region {
	void *base;    /* page aligned */
	uint64_t size; /* multiple of 4096 */
};

struct lm_tracker_ops {
	const char *name; /* "uffd-async", "uffd-sync" */
	/* 0 when this kernel and process can use it; -errno otherwise, with a
	 * short reason in why (e.g. "UFFD_FEATURE_WP_ASYNC not supported"). */
	int (*probe)(const char **why);
	/* Starts tracking: from now on every write is recorded.  On success
	 * *ctx holds the tracker's state.  -errno on failure. */
	int (*start)(void **ctx, const struct lm_track_region *r, unsigned nregions);
	/* ORs into bitmap[region] (one bit per page, bit i of word i/64) every
	 * page of that region written since the last sync, and re-arms those
	 * pages.  Returns the number of pages newly reported (>= 0) or -errno. */
	int64_t (*sync)(void *ctx, uint64_t *const *bitmap);
	/* Stops tracking and frees ctx; memory is left writable.  NULL ok. */
	void (*stop)(void *ctx);
};

/* Registered trackers, best first. */
const struct lm_tracker_ops *const *lm_tracker_table(size_t *count);
const struct lm_tracker_ops *lm_tracker_by_name(const char *name);
/* The first whose probe succeeds, or NULL (why of the last failure). */
const struct lm_tracker_ops *lm_tracker_select(const char **why);

#endif
