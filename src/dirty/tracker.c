/* SPDX-License-Identifier: MIT */
/*
 * The dirty-tracker registry: one explicit const table, best first.  No
 * constructors and nothing that changes at run time, so lookups need no
 * locking.  Fallback policy lives here only: select takes the first tracker
 * whose probe succeeds.
 */
#include <stddef.h>
#include <string.h>

#include "dirty/tracker.h"

/* Defined in uffd_async.c, uffd_sync.c; only this file needs to name them. */
extern const struct lm_tracker_ops lm_tracker_uffd_async_ops;
extern const struct lm_tracker_ops lm_tracker_uffd_sync_ops;

static const struct lm_tracker_ops *const tracker_table[] = {
	&lm_tracker_uffd_async_ops, /* kernel >= 6.7: no fault thread, one ioctl per sync */
	&lm_tracker_uffd_sync_ops,  /* kernel >= 5.7: fault thread, anonymous/shmem only */
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

const struct lm_tracker_ops *lm_tracker_select(const char **why)
{
	const char *reason = "no dirty tracker registered";

	for (size_t i = 0; i < TRACKER_COUNT; i++) {
		const char *w = NULL;

		if (tracker_table[i]->probe(&w) == 0)
			return tracker_table[i];
		reason = w ? w : "probe failed";
	}
	if (why)
		*why = reason;
	return NULL;
}
