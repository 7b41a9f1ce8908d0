/* SPDX-License-Identifier: MIT */
/*
 * lm_tracker_open, the one place a tracker is chosen: a dirty log always
 * means external; auto takes the first tracker, best first, that probes
 * well and starts (never external without a log); a name takes that one or
 * says why not, in the messages the CLI shows.  And external's sync: one
 * call per region, counting only bits not already set, errors passed on.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dirty/tracker.h"
#include "t.h"

#define PAGE 4096u

/* The embedder's dirty log, scripted: each call ORs in its region's next
 * bits, or fails with ret. */
struct fake_log {
	unsigned calls[2];
	uint64_t set[2];  /* bits the next call ORs into word 0 */
	int ret;          /* returned by every call */
};

static int fake_log(void *opaque, unsigned region, uint64_t *bitmap)
{
	struct fake_log *f = opaque;

	f->calls[region]++;
	bitmap[0] |= f->set[region];
	return f->ret;
}

static void *map_anon(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

/* The first tracker auto may take whose probe succeeds here, or NULL. */
static const struct lm_tracker_ops *first_probing(void)
{
	size_t n;
	const struct lm_tracker_ops *const *t = lm_tracker_table(&n);

	for (size_t i = 0; i < n; i++) {
		const char *why;

		if (!t[i]->needs_log && !t[i]->needs_remote && t[i]->probe(&why) == 0)
			return t[i];
	}
	return NULL;
}

static void test_registry(void)
{
	size_t n;
	const struct lm_tracker_ops *const *t = lm_tracker_table(&n);

	CHECK(n == 4 && t[0] == lm_tracker_by_name("uffd-async") &&
	      t[1] == lm_tracker_by_name("uffd-sync") && t[2] == lm_tracker_by_name("uffd-remote") &&
	      t[3] == lm_tracker_by_name("external"));
	for (size_t i = 0; i < n; i++)
		CHECKF(t[i]->help && *t[i]->help && t[i]->needs_log == (i == 3) &&
			       t[i]->needs_remote == (i == 2),
		       "%s", t[i]->name);
}

static void test_auto(void *mem)
{
	struct lm_track_region r[2] = { { mem, 4 * PAGE }, { (char *)mem + 8 * PAGE, PAGE } };
	struct lm_tracker_cfg cfg = { .regions = r, .nregions = 2 };
	const struct lm_tracker_ops *want = first_probing(), *ops = (void *)1;
	void *ctx = (void *)1;
	char why[256] = "";
	int e;

	/* Best first: auto (and NULL, its synonym) take the first that
	 * probes; this memory is plain anonymous, so it starts. */
	for (int i = 0; i < 2; i++) {
		e = lm_tracker_open(&cfg, i ? NULL : "auto", &ops, &ctx, why, sizeof(why));
		if (!want) {
			CHECKF(e < 0 && !ops && !ctx &&
			       !strncmp(why, "no dirty tracker works here (last: ", 35), "%s", why);
			continue;
		}
		CHECKF(e == 0 && ops == want && ctx, "%d %s", e, why);
		if (ops)
			ops->stop(ctx);
	}

	/* Memory nobody can track: every candidate is tried, the last reason
	 * is given, and external is never the answer without a log. */
	struct lm_track_region bad = { (char *)mem + 1, PAGE };
	cfg = (struct lm_tracker_cfg){ .regions = &bad, .nregions = 1 };
	e = lm_tracker_open(&cfg, "auto", &ops, &ctx, why, sizeof(why));
	CHECKF(e < 0 && !ops && !ctx, "%d", e);
	if (want)
		CHECKF(!strcmp(why, "no dirty tracker works here (last: Invalid argument)"), "%s",
		       why);
	else
		CHECKF(!strncmp(why, "no dirty tracker works here (last: ", 35), "%s", why);
}

static void test_by_name(void *mem)
{
	struct lm_track_region r = { mem, 4 * PAGE }, bad = { (char *)mem + 1, PAGE };
	struct lm_tracker_cfg cfg = { .regions = &r, .nregions = 1 };
	const struct lm_tracker_ops *ops;
	void *ctx;
	char why[256];
	size_t n;
	const struct lm_tracker_ops *const *t = lm_tracker_table(&n);

	CHECK(lm_tracker_open(&cfg, "nope", &ops, &ctx, why, sizeof(why)) == -ENOENT && !ops &&
	      !ctx);
	CHECKF(!strcmp(why, "dirty-tracker nope: not usable here: no tracker"), "%s", why);

	CHECK(lm_tracker_open(&cfg, "external", &ops, &ctx, why, sizeof(why)) == -EINVAL &&
	      !ops && !ctx);
	CHECKF(!strcmp(why, "dirty-tracker external: not usable here: needs the embedder's "
			    "dirty log (livemig_set_dirty_log)"),
	       "%s", why);

	for (size_t i = 0; i < n; i++) {
		const char *pw = NULL;
		char want[256];
		int pe;

		if (t[i]->needs_log || t[i]->needs_remote) /* test_remote_policy */
			continue;
		pe = t[i]->probe(&pw);
		cfg.regions = &r;
		int e = lm_tracker_open(&cfg, t[i]->name, &ops, &ctx, why, sizeof(why));
		if (pe) {
			/* A tracker this kernel lacks: the probe's reason. */
			snprintf(want, sizeof(want), "dirty-tracker %s: not usable here: %s",
				 t[i]->name, pw ? pw : "probe failed");
			CHECKF(e == pe && !ops && !strcmp(why, want), "%s", why);
			continue;
		}
		CHECKF(e == 0 && ops == t[i] && ctx, "%s: %d %s", t[i]->name, e, why);
		if (ops)
			ops->stop(ctx);
		/* It probes, but refuses this memory. */
		cfg.regions = &bad;
		e = lm_tracker_open(&cfg, t[i]->name, &ops, &ctx, why, sizeof(why));
		snprintf(want, sizeof(want), "dirty-tracker %s: cannot track this memory: %s",
			 t[i]->name, strerror(EINVAL));
		CHECKF(e == -EINVAL && !ops && !ctx && !strcmp(why, want), "%s", why);
	}
}

static void test_external(void *mem)
{
	/* Region 0: 100 pages (two bitmap words); region 1: one page. */
	struct lm_track_region r[2] = { { mem, 100 * PAGE }, { (char *)mem + 128 * PAGE, PAGE } };
	struct fake_log f = { .set = { 0x0f, 0x1 } };
	struct lm_tracker_cfg cfg = { .regions = r, .nregions = 2, .dirty_log = fake_log,
				      .dirty_log_opaque = &f };
	const struct lm_tracker_ops *ops;
	void *ctx;
	char why[256];
	uint64_t b0[2] = { 0, 0 }, b1[1] = { 0 };
	uint64_t *const bm[2] = { b0, b1 };

	/* A log wins over any name, auto included. */
	const char *names[] = { "auto", "uffd-sync", "nope", "external", NULL };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		CHECKF(lm_tracker_open(&cfg, names[i], &ops, &ctx, why, sizeof(why)) == 0 &&
		       ops == lm_tracker_by_name("external") && ctx,
		       "%s: %s", names[i] ? names[i] : "NULL", why);
		if (ops)
			ops->stop(ctx);
	}
	if (lm_tracker_open(&cfg, "auto", &ops, &ctx, why, sizeof(why))) {
		CHECKF(0, "%s", why);
		return;
	}

	/* First sync: 4 + 1 new pages, one call per region. */
	CHECK(ops->sync(ctx, bm) == 5 && f.calls[0] == 1 && f.calls[1] == 1);
	CHECK(b0[0] == 0x0f && b0[1] == 0 && b1[0] == 1);
	/* Still pending, reported again: not new, so not counted. */
	CHECK(ops->sync(ctx, bm) == 0 && f.calls[0] == 2 && f.calls[1] == 2);
	/* Two of these are pending, two are new. */
	f.set[0] = 0x3c;
	f.set[1] = 0;
	CHECK(ops->sync(ctx, bm) == 2 && b0[0] == 0x3f);
	/* After the caller took the pages, the same bits count again. */
	b0[0] = b1[0] = 0;
	CHECK(ops->sync(ctx, bm) == 4);
	/* An error fails the sync; a positive return is an I/O error. */
	f.ret = -ENOSPC;
	CHECK(ops->sync(ctx, bm) == -ENOSPC);
	f.ret = 7;
	CHECK(ops->sync(ctx, bm) == -EIO);
	ops->stop(ctx);
	ops->stop(NULL);

	/* Started directly without a log: refused. */
	cfg.dirty_log = NULL;
	ctx = (void *)1;
	CHECK(lm_tracker_by_name("external")->start(&ctx, &cfg, why, sizeof(why)) == -EINVAL &&
	      !ctx);
}

int main(void)
{
	void *mem = map_anon(256 * PAGE);

	test_registry();
	test_auto(mem);
	test_by_name(mem);
	test_external(mem);
	munmap(mem, 256 * PAGE);
	T_DONE();
}
