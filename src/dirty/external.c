/* SPDX-License-Identifier: MIT */
/*
 * The "external" tracker: the embedder's own dirty log (KVM_GET_DIRTY_LOG,
 * a dirty ring...), given through livemig_set_dirty_log().  Each sync calls
 * it once per region; the embedder owns the ordering argument (a write
 * racing with its harvest must show up in this call or the next).
 */
#include <errno.h>
#include <stdlib.h>

#include "dirty/tracker.h"
#include "util/page.h"
#include "util/util.h"

struct external_ctx {
	int (*log)(void *opaque, unsigned region, uint64_t *bitmap);
	void *opaque;
	unsigned nregions;
	uint64_t words[]; /* bitmap words of each region */
};

static int external_probe(const char **why)
{
	/* Nothing to ask the kernel: usable whenever the embedder gives a log. */
	if (why)
		*why = NULL;
	return 0;
}

static int external_start(void **ctx, const struct lm_tracker_cfg *cfg, char *why, size_t len)
{
	struct external_ctx *c;

	(void)why; /* the errno says it all */
	(void)len;

	if (!ctx)
		return -EINVAL;
	*ctx = NULL;
	if (!cfg || !cfg->dirty_log || (cfg->nregions && !cfg->regions))
		return -EINVAL;
	c = malloc(sizeof(*c) + cfg->nregions * sizeof(c->words[0]));
	if (!c)
		return -ENOMEM;
	c->log = cfg->dirty_log;
	c->opaque = cfg->dirty_log_opaque;
	c->nregions = cfg->nregions;
	for (unsigned i = 0; i < cfg->nregions; i++)
		c->words[i] = lm_bitmap_words(cfg->regions[i].size / LM_PAGE_SIZE);
	*ctx = c;
	return 0;
}

/* Counts only bits the log newly set: a page still pending from an earlier
 * sync is not a new write as far as the dirty rate is concerned. */
static int64_t external_sync(void *p, uint64_t *const *bitmap)
{
	struct external_ctx *c = p;
	int64_t added = 0;

	if (!c || !bitmap)
		return -EINVAL;
	for (unsigned i = 0; i < c->nregions; i++) {
		uint64_t before = lm_bitmap_count(bitmap[i], c->words[i]);
		int r = c->log(c->opaque, i, bitmap[i]);

		if (r)
			return r < 0 ? r : -EIO;
		added += (int64_t)(lm_bitmap_count(bitmap[i], c->words[i]) - before);
	}
	return added;
}

static void external_stop(void *ctx)
{
	free(ctx);
}

const struct lm_tracker_ops lm_tracker_external_ops = {
	.name = "external",
	.help = "the embedder's dirty log (livemig_set_dirty_log)",
	.needs_log = true,
	.probe = external_probe,
	.start = external_start,
	.sync = external_sync,
	.stop = external_stop,
};
