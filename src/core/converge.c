/* SPDX-License-Identifier: MIT */
/* The switchover and auto-converge rule (see converge.h). */
#include "core/converge.h"
#include "core/wire.h"
#include "util/page.h"

uint64_t lm_converge_need_ms(uint64_t expected_ms, uint64_t limit_ms)
{
	uint64_t fixed = limit_ms / 2 < LM_CONVERGE_MARGIN_MS ? limit_ms / 2 : LM_CONVERGE_MARGIN_MS;
	uint64_t margin = expected_ms / 10 + fixed;
	return expected_ms > UINT64_MAX - margin ? UINT64_MAX : expected_ms + margin;
}

void lm_converge_decide(struct lm_converge *cv, const struct lm_converge_sample *in,
			struct lm_converge_plan *plan)
{
	*plan = (struct lm_converge_plan){0};

	/* What the last pass sustained; a pass too short to time keeps the
	 * previous estimate. */
	if (in->pass_ms >= 20 || !cv->bw)
		cv->bw = in->pass_bytes * 1000 / (in->pass_ms ? in->pass_ms : 1);
	uint64_t rate = cv->switchover_bw ? cv->switchover_bw : cv->bw;
	/* Wire bytes per page still to send: a dirtied page is rarely a zero
	 * page, so count it as a normal one at the compression seen so far,
	 * plus its index and a share of a header. */
	double per_page = (in->normal ? (double)in->payload / (double)in->normal : LM_PAGE_SIZE) +
			  4 + (double)LM_PACKET_HDR_SIZE / LM_PACKET_PAGES;
	uint64_t expected = rate ? (uint64_t)(in->pending * per_page * 1000 / (double)rate)
				 : UINT64_MAX;
	plan->expected_ms = expected;
	plan->need_ms = lm_converge_need_ms(expected, cv->downtime_limit_ms);
	/* The margin's fixed part is at most half the limit: nothing pending
	 * (expected 0) always fits once the link was measured. */
	if (plan->need_ms <= cv->downtime_limit_ms) {
		plan->switchover = true;
		return;
	}

	/* Auto-converge, as QEMU's: the guest dirtied more than
	 * throttle-trigger-threshold % of what the link moved in the same
	 * period, twice: slow it down, more each time.  Like QEMU, judged
	 * over periods of at least a second, whatever the length of the
	 * passes. */
	cv->period_dirtied += in->reported * LM_PAGE_SIZE;
	cv->period_sent += in->pass_bytes;
	if (cv->auto_converge && in->now_ns - cv->period_t0 >= 1000000000ull) {
		if (cv->period_dirtied > cv->period_sent * (uint64_t)cv->threshold / 100 &&
		    ++cv->high >= 2) {
			cv->high = 0;
			int t = cv->throttle_pct ? cv->throttle_pct + cv->increment : cv->initial;
			cv->throttle_pct = t > cv->max ? cv->max : t;
			plan->throttle = true;
		}
		cv->period_t0 = in->now_ns;
		cv->period_dirtied = cv->period_sent = 0;
	}
}
