/* SPDX-License-Identifier: MIT */
/* The fallback policy: see accel.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel/accel.h"
#include "util/page.h"

static void skip_note(struct lm_accel_choice *ch, const char *name, const char *why)
{
	size_t used = strlen(ch->skipped);
	snprintf(ch->skipped + used, sizeof(ch->skipped) - used, "%s%s: %s",
		 used ? "; " : "", name, why);
}

int lm_engine_usable(const struct lm_engine_ops *e, char *why, size_t len)
{
	why[0] = 0;
	if (e->absent) {
		snprintf(why, len, "not built: %s", e->absent);
		return -ENODEV;
	}
	if (!e->probe)
		return 0;
	int r = e->probe(why, len);
	if (r && !why[0])
		snprintf(why, len, "probe failed: %s", strerror(-r));
	return r;
}

int lm_accel_choose(struct lm_accel_choice *ch, uint8_t method, const char *force,
		    const char *fault, char *err, size_t errlen)
{
	char why[160];
	size_t n;
	const struct lm_engine_ops *const *t = lm_engine_table(&n);

	ch->method = method;
	ch->hw = NULL;
	ch->sw = lm_engine_fallback(method);
	ch->hw_options = NULL;
	ch->skipped[0] = 0;
	atomic_store(&ch->warned, false);
	if (!ch->sw) {
		snprintf(err, errlen, "method %u has no compression engines", method);
		return -EINVAL;
	}
	if (fault) {
		ch->hw = lm_engine_find(LM_ENGINE_ANY_METHOD, "x-fault");
		ch->hw_options = fault;
		return 0;
	}
	if (force) {
		const struct lm_engine_ops *e = lm_engine_find(method, force);
		if (!e || e->method == LM_ENGINE_ANY_METHOD) {
			snprintf(err, errlen, "compression-engine: no engine '%s' for this method",
				 force);
			return -EINVAL;
		}
		int r = lm_engine_usable(e, why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "compression-engine=%s: %s", force, why);
			return r;
		}
		if (e->hardware)
			ch->hw = e;
		else
			ch->sw = e;
		return 0;
	}
	for (size_t i = 0; i < n && !ch->hw; i++) {
		if (t[i]->method != method || !t[i]->hardware)
			continue;
		if (lm_engine_usable(t[i], why, sizeof(why)) == 0)
			ch->hw = t[i];
		else
			skip_note(ch, t[i]->name, why);
	}
	return 0;
}

void lm_accel_cleanup(struct lm_accel *a)
{
	if (a->hw_ctx)
		a->ch->hw->cleanup(a->hw_ctx);
	if (a->sw_ctx)
		a->ch->sw->cleanup(a->sw_ctx);
	free(a->scratch);
	free(a->tmp);
	free(a->pos);
	memset(a, 0, sizeof(*a));
}

int lm_accel_setup(struct lm_accel *a, struct lm_accel_choice *ch, int level,
		   uint32_t max_jobs, uint32_t max_pages, uint32_t channel,
		   struct lm_accel_counters *cnt)
{
	struct lm_engine_cfg cfg = {.method = ch->method,
				    .level = level,
				    .max_jobs = max_jobs,
				    .channel = channel};
	memset(a, 0, sizeof(*a));
	a->ch = ch;
	a->cnt = cnt;
	a->max_jobs = max_jobs;
	a->max_pages = max_pages;
	a->tmp = calloc(max_jobs, sizeof(*a->tmp));
	a->pos = calloc(max_jobs, sizeof(*a->pos));
	if (ch->verify && ch->hw)
		a->scratch = malloc((size_t)max_pages * LM_PAGE_SIZE);
	int r = -ENOMEM;
	if (!a->tmp || !a->pos || (ch->verify && ch->hw && !a->scratch))
		goto fail;
	if ((r = ch->sw->setup(&a->sw_ctx, &cfg)))
		goto fail;
	if (ch->hw) {
		cfg.options = ch->hw_options;
		if ((r = ch->hw->setup(&a->hw_ctx, &cfg)))
			goto fail;
	}
	return 0;
fail:
	lm_accel_cleanup(a);
	return r;
}

static void warn_once(struct lm_accel *a, const char *what, int status)
{
	if (atomic_exchange(&a->ch->warned, true) || !a->ch->warn)
		return;
	char msg[256];
	snprintf(msg, sizeof(msg),
		 "compression engine %s: %s (%s); such jobs go to %s, counted in hw-errors",
		 a->ch->hw->name, what, strerror(-status), a->ch->sw->name);
	a->ch->warn(a->ch->warn_opaque, msg);
}

/* Does the job's output decode, in software, to exactly its input? */
static bool verified(struct lm_accel *a, const struct lm_job *j)
{
	uint32_t out_len = j->npages * LM_PAGE_SIZE;
	if (a->ch->sw->decompress(a->sw_ctx, j->dst, j->len, a->scratch, out_len))
		return false;
	for (uint32_t i = 0; i < j->npages; i++)
		if (memcmp(a->scratch + (size_t)i * LM_PAGE_SIZE, j->src[i], LM_PAGE_SIZE))
			return false;
	return true;
}

/* Moves the jobs still to do (status -EBUSY) into a->tmp; returns how many. */
static uint32_t gather(struct lm_accel *a, const struct lm_job *jobs, uint32_t n)
{
	uint32_t m = 0;
	for (uint32_t i = 0; i < n; i++)
		if (jobs[i].status == -EBUSY) {
			a->tmp[m] = jobs[i];
			a->pos[m++] = i;
		}
	return m;
}

static void count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* One hardware attempt on the jobs left.  Leaves -EBUSY on the ones to
 * try again (or give to software) and returns how many those are. */
static uint32_t hw_attempt(struct lm_accel *a, struct lm_job *jobs, uint32_t n)
{
	uint32_t m = gather(a, jobs, n), busy = 0;
	a->ch->hw->run(a->hw_ctx, a->tmp, m);
	for (uint32_t k = 0; k < m; k++) {
		struct lm_job *t = &a->tmp[k], *j = &jobs[a->pos[k]];
		if (t->status == -EBUSY) {
			busy++;
			continue;
		}
		/* An output length the job could not have is a device bug: never
		 * let it run past the buffer. */
		if (t->status == 0 && (t->len == 0 || t->len > t->cap))
			t->status = -EOVERFLOW;
		if (t->status == 0 && a->scratch && !verified(a, t))
			t->status = -EILSEQ;
		if (t->status == 0 || t->status == -ENOSPC) {
			count(&a->cnt->hw_jobs, 1);
		} else {
			count(&a->cnt->hw_errors, 1);
			warn_once(a, t->status == -EILSEQ ? "output failed verification"
							  : "job failed",
				  t->status);
			t->status = -EAGAIN; /* software's, below */
		}
		j->status = t->status;
		j->len = t->len;
	}
	return busy;
}

int lm_accel_run(struct lm_accel *a, struct lm_job *jobs, uint32_t n)
{
	if (n > a->max_jobs)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++)
		jobs[i].status = -EBUSY; /* "not done yet" */
	if (a->ch->hw) {
		for (unsigned attempt = 0;; attempt++) {
			uint32_t busy = hw_attempt(a, jobs, n);
			if (!busy || attempt == a->ch->retries)
				break;
			count(&a->cnt->busy_retries, busy);
		}
		for (uint32_t i = 0; i < n; i++)
			if (jobs[i].status == -EAGAIN)
				jobs[i].status = -EBUSY;
	}
	/* Whatever is left - no device, still busy, failed - in software. */
	uint32_t m = gather(a, jobs, n);
	if (m) {
		a->ch->sw->run(a->sw_ctx, a->tmp, m);
		count(&a->cnt->sw_jobs, m);
		for (uint32_t k = 0; k < m; k++) {
			if (a->tmp[k].status && a->tmp[k].status != -ENOSPC)
				return a->tmp[k].status;
			jobs[a->pos[k]].status = a->tmp[k].status;
			jobs[a->pos[k]].len = a->tmp[k].len;
		}
	}
	for (uint32_t i = 0; i < n; i++)
		if (jobs[i].status == -ENOSPC)
			count(&a->cnt->raw_pages, jobs[i].npages);
	return 0;
}
