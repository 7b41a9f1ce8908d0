/* SPDX-License-Identifier: MIT */
/*
 * Dirty-page trackers: one ops table per kind, chosen by one policy
 * (lm_tracker_open).  A tracker watches a set of page-aligned regions of
 * this process and reports, at each sync, every page written since the
 * previous sync (or since start).  A write racing with a sync is reported by
 * that sync or the next one -- never lost.
 *
 * uffd-remote is the exception: it watches another process (say QEMU) that
 * maps the same memory shared and writes it there; see lm_track_remote.
 *
 * Threading: start/sync/stop are called from one thread (the migration's
 * control thread).  Writers (guest threads) run concurrently throughout.
 */
#ifndef LM_TRACKER_H
#define LM_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lm_track_region {
	void *base;    /* page aligned */
	uint64_t size; /* multiple of 4096 */
};

/* A process that also maps a region's memory shared (the same file or
 * memfd, at the same offsets) at address addr, and writes it there. */
struct lm_track_remote {
	pid_t pid; /* 0: none, this process writes the region */
	uint64_t addr;
};

/* What start is given.  Copied by start where it needs it later. */
struct lm_tracker_cfg {
	const struct lm_track_region *regions;
	unsigned nregions;
	/* The embedder's dirty log (livemig_set_dirty_log), or NULL: the
	 * "external" tracker calls it once per region at each sync, with that
	 * region's bitmap; it returns 0 or -errno. */
	int (*dirty_log)(void *opaque, unsigned region, uint64_t *bitmap);
	void *dirty_log_opaque;
	/* NULL, or one per region (livemig_ram_set_remote): a region with a
	 * pid is tracked by uffd-remote only, which tracks that process's
	 * writes, not this one's. */
	const struct lm_track_remote *remote;
};

struct lm_tracker_ops {
	const char *name; /* "uffd-async", "uffd-remote", "uffd-sync", "external" */
	const char *help; /* one line for `livemig info` */
	/* Tracks through cfg->dirty_log: chosen exactly when one is given,
	 * never by "auto" without one. */
	bool needs_log;
	/* Tracks the writes of the process in each region's pid: chosen (by
	 * auto) exactly when a region has one; the others refuse such regions. */
	bool needs_remote;
	/* 0 when this kernel and process can use it; -errno otherwise, with a
	 * short reason in why (e.g. "UFFD_FEATURE_WP_ASYNC not supported"). */
	int (*probe)(const char **why);
	/* Starts tracking: from now on every write is recorded.  On success
	 * *ctx holds the tracker's state; on failure *ctx is NULL and, when it
	 * has more to say than strerror, a reason in why[0..len).  -EINVAL
	 * bad regions (or no dirty log for external), other -errno. */
	int (*start)(void **ctx, const struct lm_tracker_cfg *cfg, char *why, size_t len);
	/* ORs into bitmap[region] (one bit per page, bit i of word i/64) every
	 * page of that region written since the last sync, and re-arms those
	 * pages.  Returns the number of pages reported (>= 0) or -errno.  The
	 * uffd trackers count every page they report; external counts only
	 * bits that were not already set. */
	int64_t (*sync)(void *ctx, uint64_t *const *bitmap);
	/* Stops tracking and frees ctx; memory is left writable.  NULL ok. */
	void (*stop)(void *ctx);
};

/* Registered trackers, best first (auto's order); uffd-remote, external last. */
const struct lm_tracker_ops *const *lm_tracker_table(size_t *count);
/* NULL if unknown. */
const struct lm_tracker_ops *lm_tracker_by_name(const char *name);

/*
 * The policy, and the only place trackers are chosen:
 *   cfg->dirty_log set  -> external (whatever name says: the embedder
 *                          tracks its own guest);
 *   a region with a pid -> uffd-remote for "auto"/NULL or its own name (any
 *                          other name is "not usable here", as is
 *                          uffd-remote without one);
 *   name "auto" or NULL -> the first, best first, that probes well and
 *                          accepts this memory (uffd-sync cannot track a
 *                          private mapping of an ext4 file, say); never one
 *                          that needs a dirty log or a remote process;
 *   another name        -> that one, or an error.
 * On success *ops and *ctx hold the started tracker (stop it with
 * (*ops)->stop(*ctx)); on failure both are NULL.  Returns 0 or -errno with
 * the reason in why[0..len):
 *   "dirty-tracker NAME: not usable here: WHY" (unknown name: -ENOENT),
 *   "dirty-tracker NAME: cannot track this memory: WHY",
 *   "no dirty tracker works here (last: WHY)".
 */
int lm_tracker_open(const struct lm_tracker_cfg *cfg, const char *name,
		    const struct lm_tracker_ops **ops, void **ctx, char *why, size_t len);

/*
 * Whether uffd-remote could track process pid's writes to [start, end)
 * (page aligned): the whole range has the async write-protect registration
 * (liblivemig-track.so's), checked through /proc/PID/pagemap without
 * protecting or reporting anything.  0; or -errno with the sentence that
 * uffd-remote's start would give in why[0..len): -EPERM no registration,
 * -ENOTTY no PAGEMAP_SCAN (Linux < 6.7), open's or the walk's -errno.
 */
int lm_uffd_remote_check(pid_t pid, uint64_t start, uint64_t end, char *why, size_t len);

#endif
