/* SPDX-License-Identifier: MIT */
/*
 * Pre-copy for a running guest: dirty tracking, the switchover decision and
 * auto-converge (the rule itself: converge.c).  The source's control thread
 * calls these between passes; nothing here runs concurrently with itself.
 *
 * Pass k is acknowledged by the destination before the next sync, so the
 * bandwidth measured over a pass (bytes / time from publishing its list to
 * the ack) is what the link and the receivers really sustain, and the
 * expected downtime (what is dirty now, at that rate) is what the final pass
 * will take.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/converge.h"
#include "core/internal.h"
#include "util/util.h"

/* The shortest period between two dirty syncs that go on with pre-copy. */
#define LM_PASS_MIN_MS 10

static uint64_t words(const struct lm_block *b)
{
	return lm_bitmap_words(b->pages);
}

int lm_precopy_start(livemig_session *s)
{
	struct lm_track_region r[LM_MAX_BLOCKS];
	struct lm_track_remote rem[LM_MAX_BLOCKS];
	char why[256];

	for (unsigned i = 0; i < s->nblocks; i++) {
		s->src.dirty[i] = calloc(words(&s->blocks[i]), sizeof(uint64_t));
		if (!s->src.dirty[i])
			return lm_fail(s, -ENOMEM, "out of memory for dirty bitmaps");
		r[i] = (struct lm_track_region){s->blocks[i].host, s->blocks[i].size};
		rem[i] = (struct lm_track_remote){s->blocks[i].remote_pid, s->blocks[i].remote_addr};
	}
	struct lm_tracker_cfg cfg = {r, s->nblocks, s->src.dirty_log, s->src.dirty_log_opaque, rem};
	const struct lm_tracker_ops *ops;
	int e = lm_tracker_open(&cfg, s->p.tracker, &ops, &s->src.tracker_ctx, why, sizeof(why));
	if (e)
		return lm_fail(s, e, "%s", why);
	pthread_mutex_lock(&s->lock); /* the statistics name it */
	s->src.tracker = ops;
	pthread_mutex_unlock(&s->lock);
	lm_log(s, 2, "dirty tracker: %s (%s)", s->src.tracker->name, s->src.tracker->help);
	return 0;
}

void lm_precopy_end(livemig_session *s)
{
	if (s->src.tracker && s->src.tracker_ctx)
		s->src.tracker->stop(s->src.tracker_ctx);
	s->src.tracker_ctx = NULL;
	/* A guest left running here (failure) runs at full speed again; the
	 * statistics keep the highest throttle the migration needed. */
	if (s->src.throttle_pct && s->src.guest.throttle)
		s->src.guest.throttle(s->src.guest_opaque, 0);
}

static uint64_t count_dirty(livemig_session *s)
{
	uint64_t n = 0;
	for (unsigned b = 0; b < s->nblocks; b++)
		n += lm_bitmap_count(s->src.dirty[b], words(&s->blocks[b]));
	return n;
}

/* Adds the pages written since the last sync to s->src.dirty.  Returns how many
 * the tracker reported (see its sync), or -errno. */
static int64_t dirty_sync(livemig_session *s)
{
	int64_t r = s->src.tracker->sync(s->src.tracker_ctx, s->src.dirty);
	if (r < 0)
		return lm_fail(s, (int)r, "dirty tracker %s: sync failed: %s", s->src.tracker->name,
			       strerror((int)-r));
	return r;
}

/* The pending pages as a work list (global page numbers); clears them. */
static uint64_t *take_dirty(livemig_session *s, size_t *n)
{
	uint64_t count = count_dirty(s);
	uint64_t *w = malloc((count ? count : 1) * sizeof(*w));
	if (!w)
		return NULL;
	size_t k = 0;
	for (unsigned b = 0; b < s->nblocks; b++) {
		for (uint64_t i = 0; i < words(&s->blocks[b]); i++) {
			uint64_t bits = s->src.dirty[b][i];
			s->src.dirty[b][i] = 0;
			while (bits) {
				unsigned bit = (unsigned)__builtin_ctzll(bits);
				bits &= bits - 1;
				w[k++] = LM_GPN(b, i * 64 + bit);
			}
		}
	}
	*n = k;
	return w;
}

int lm_iter_record(livemig_session *s, const struct lm_iter_stat *it)
{
	pthread_mutex_lock(&s->lock);
	if (s->src.niters == s->src.iters_cap) {
		size_t cap = s->src.iters_cap ? 2 * s->src.iters_cap : 16;
		void *p = realloc(s->src.iters, cap * sizeof(*s->src.iters));
		if (!p) {
			pthread_mutex_unlock(&s->lock);
			return lm_fail(s, -ENOMEM, "out of memory");
		}
		s->src.iters = p;
		s->src.iters_cap = cap;
	}
	s->src.iters[s->src.niters] = *it;
	s->src.iters[s->src.niters].dirty_rate = s->src.dirty_pages_rate;
	s->src.niters++;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int lm_precopy_converge(livemig_session *s,
			int (*pass)(livemig_session *s, uint64_t *work, size_t n, bool final))
{
	uint64_t last_sync = s->t_setup;
	struct lm_converge cv = {.auto_converge = s->p.auto_converge && s->src.guest.throttle,
				 .period_t0 = s->t_setup,
				 .throttle_pct = s->src.throttle_pct};

	for (;;) {
		/* Never spin: a sync comes at least LM_PASS_MIN_MS after the
		 * last one, so a guest writing a few pages gets a pass per
		 * period, not thousands a second each with a SYNC on every
		 * channel.  No deadline here: the watchdog owns it
		 * (liveness.c), in every phase, and names non-convergence
		 * from not_converged. */
		uint64_t next = last_sync + LM_PASS_MIN_MS * 1000000ull;
		pthread_mutex_lock(&s->lock);
		while (!lm_quit(s) && lm_now_ns() < next)
			lm_cond_wait_until(s, next);
		/* The changeable settings, as they are now (the control
		 * socket may have changed them during the last pass). */
		cv.downtime_limit_ms = s->p.downtime_limit_ms;
		cv.switchover_bw = s->p.switchover_bw;
		cv.threshold = s->p.throttle_threshold;
		cv.initial = s->p.throttle_initial;
		cv.increment = s->p.throttle_increment;
		cv.max = s->p.throttle_max;
		pthread_mutex_unlock(&s->lock);
		if (lm_quit(s))
			return lm_err(s);
		uint64_t now = lm_now_ns();
		int64_t reported = dirty_sync(s);
		if (reported < 0)
			return (int)reported;
		uint64_t pending = count_dirty(s);
		double period = (double)(now - last_sync) / 1e9;
		last_sync = now;

		const struct lm_iter_stat *last = &s->src.iters[s->src.niters - 1];
		struct lm_converge_sample in = {.now_ns = now,
						.reported = (uint64_t)reported,
						.pending = pending,
						.pass_bytes = last->bytes,
						.pass_ms = last->duration_ms};
		for (unsigned i = 0; i < s->p.channels; i++) {
			in.normal += s->ch[i].normal;
			in.payload += s->ch[i].payload_bytes;
		}
		struct lm_converge_plan plan;
		lm_converge_decide(&cv, &in, &plan);
		pthread_mutex_lock(&s->lock);
		s->src.dirty_pages_rate = period > 0 ? reported / period : 0;
		s->src.iters[s->src.niters - 1].dirty_rate = s->src.dirty_pages_rate; /* during that pass */
		s->src.expected_downtime_ms = plan.expected_ms;
		s->src.not_converged = !plan.switchover;
		s->src.pending_pages = pending;
		s->src.measured = true;
		pthread_mutex_unlock(&s->lock);
		if (plan.switchover)
			return 0;

		if (plan.throttle) {
			pthread_mutex_lock(&s->lock);
			s->src.throttle_pct = cv.throttle_pct;
			pthread_mutex_unlock(&s->lock);
			s->src.guest.throttle(s->src.guest_opaque, s->src.throttle_pct);
			lm_log(s, 2, "auto-converge: guest throttled to %d %%", s->src.throttle_pct);
		}
		if (s->src.niters == 3 || s->src.niters % 20 == 0)
			lm_log(s, 1,
			       "not converging yet: pass %zu, %llu dirty pages, expected downtime "
			       "%llu ms + margin %llu ms > downtime-limit %llu ms",
			       s->src.niters, (unsigned long long)pending,
			       (unsigned long long)plan.expected_ms,
			       (unsigned long long)(plan.need_ms - plan.expected_ms),
			       (unsigned long long)cv.downtime_limit_ms);

		size_t n;
		uint64_t *w = take_dirty(s, &n);
		if (!w)
			return lm_fail(s, -ENOMEM, "out of memory for the page list");
		int r = pass(s, w, n, false);
		if (r)
			return r;
	}
}

int lm_precopy_stop(livemig_session *s, uint64_t **work, size_t *n)
{
	s->src.guest.stop(s->src.guest_opaque);
	s->src.guest_stopped = true;
	int64_t r = dirty_sync(s);
	if (r < 0)
		return (int)r;
	pthread_mutex_lock(&s->lock);
	s->src.pending_pages = count_dirty(s);
	pthread_mutex_unlock(&s->lock);
	*work = take_dirty(s, n);
	if (!*work)
		return lm_fail(s, -ENOMEM, "out of memory for the page list");
	return 0;
}
