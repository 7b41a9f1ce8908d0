/* SPDX-License-Identifier: MIT */
/*
 * The dirty-tracker registry: one explicit const table, best first.  No
 * constructors and nothing that changes at run time, so lookups need no
 * locking.  The choice (lm_tracker_open) lives here only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dirty/tracker.h"

/* Defined in uffd_async.c, uffd_sync.c, uffd_remote.c, external.c; only this
 * file needs to name them. */
extern const struct lm_tracker_ops lm_tracker_uffd_async_ops;
extern const struct lm_tracker_ops lm_tracker_uffd_sync_ops;
extern const struct lm_tracker_ops lm_tracker_uffd_remote_ops;
extern const struct lm_tracker_ops lm_tracker_external_ops;

static const struct lm_tracker_ops *const tracker_table[] = {
	&lm_tracker_uffd_async_ops,  /* kernel >= 6.7: no fault thread, one ioctl per sync */
	&lm_tracker_uffd_sync_ops,   /* kernel >= 5.7: fault thread, anonymous/shmem only */
	&lm_tracker_uffd_remote_ops, /* another process's writes: only when a region names it */
	&lm_tracker_external_ops,    /* the embedder's dirty log: only when it gives one */
};

#define TRACKER_COUNT (sizeof(tracker_table) / sizeof(tracker_table[0]))

const struct lm_tracker_ops *const *lm_tracker_table(size_t *count)
{
	if (count)
		*count = TRACKER_COUNT;
	return tracker_table;
}

const struct lm_tracker_ops *lm_tracker_by_name(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < TRACKER_COUNT; i++)
		if (strcmp(tracker_table[i]->name, name) == 0)
			return tracker_table[i];
	return NULL;
}

static bool has_remote(const struct lm_tracker_cfg *cfg)
{
	for (unsigned i = 0; cfg->remote && i < cfg->nregions; i++)
		if (cfg->remote[i].pid)
			return true;
	return false;
}

/* Probes and starts t; the reason alone in why[0..len) on failure. */
static int try_start(const struct lm_tracker_ops *t, const struct lm_tracker_cfg *cfg,
		     void **ctx, bool *probed, char *why, size_t len)
{
	const char *w = NULL;
	bool remote = has_remote(cfg);
	int e;

	*probed = false;
	why[0] = 0;
	if (t->needs_log && !cfg->dirty_log)
		w = "needs the embedder's dirty log (livemig_set_dirty_log)";
	else if (t->needs_remote && !remote)
		w = "needs the process that writes the memory (livemig_ram_set_remote)";
	else if (!t->needs_remote && !t->needs_log && remote)
		w = "the memory is written by another process (livemig_ram_set_remote): "
		    "only uffd-remote tracks that";
	if (w) {
		snprintf(why, len, "%s", w);
		return -EINVAL;
	}
	if ((e = t->probe(&w))) {
		snprintf(why, len, "%s", w ? w : "probe failed");
		return e;
	}
	*probed = true;
	if ((e = t->start(ctx, cfg, why, len)) && !why[0])
		snprintf(why, len, "%s", strerror(-e));
	return e;
}

/* auto: the first that probes well and accepts this memory. */
static int open_auto(const struct lm_tracker_cfg *cfg, const struct lm_tracker_ops **ops,
		     void **ctx, char *why, size_t len)
{
	char w[200] = "no tracker";
	bool probed;
	int e = -EOPNOTSUPP;

	for (size_t i = 0; i < TRACKER_COUNT; i++) {
		if (tracker_table[i]->needs_log || tracker_table[i]->needs_remote)
			continue;
		if (!(e = try_start(tracker_table[i], cfg, ctx, &probed, w, sizeof(w)))) {
			*ops = tracker_table[i];
			return 0;
		}
	}
	snprintf(why, len, "no dirty tracker works here (last: %s)", w);
	return e;
}

int lm_tracker_open(const struct lm_tracker_cfg *cfg, const char *name,
		    const struct lm_tracker_ops **ops, void **ctx, char *why, size_t len)
{
	const struct lm_tracker_ops *t;
	bool automatic = !name || !strcmp(name, "auto"), probed;
	char w[200];
	int e;

	*ops = NULL;
	*ctx = NULL;
	if (cfg->dirty_log)
		t = &lm_tracker_external_ops;
	else if (automatic && has_remote(cfg))
		t = &lm_tracker_uffd_remote_ops;
	else if (automatic)
		return open_auto(cfg, ops, ctx, why, len);
	else if (!(t = lm_tracker_by_name(name))) {
		snprintf(why, len, "dirty-tracker %s: not usable here: no tracker", name);
		return -ENOENT;
	}
	if ((e = try_start(t, cfg, ctx, &probed, w, sizeof(w))) == 0)
		*ops = t;
	else if (probed)
		snprintf(why, len, "dirty-tracker %s: cannot track this memory: %s", t->name, w);
	else
		snprintf(why, len, "dirty-tracker %s: not usable here: %s", t->name, w);
	return e;
}
