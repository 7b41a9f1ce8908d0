/* SPDX-License-Identifier: MIT */
/*
 * The pre-copy decision, without the I/O around it: after each dirty sync,
 * is the expected downtime small enough to switch over, and should
 * auto-converge throttle the guest?  lm_precopy_converge (precopy.c)
 * measures, calls lm_converge_decide and acts on the plan; the unit test
 * feeds it synthetic rates.
 */
#ifndef LM_CONVERGE_H
#define LM_CONVERGE_H

#include <stdbool.h>
#include <stdint.h>

/* The rule's settings, and what it carries from one sync to the next.  The
 * caller fills the settings and period_t0 (and throttle_pct, the guest's
 * current throttle) once; after that only lm_converge_decide changes it. */
struct lm_converge {
	/* Settings. */
	uint64_t downtime_limit_ms;
	uint64_t switchover_bw;  /* bytes/s, 0 = use the measured bandwidth */
	bool auto_converge;      /* on, and the guest can be throttled */
	int threshold;           /* %: dirtied vs sent in a period that is "high" */
	int initial, increment, max; /* throttle steps, % */
	/* Carried. */
	uint64_t bw;             /* bytes/s of the last pass long enough to time, 0 = none */
	int high;                /* high periods since the last throttle step */
	uint64_t period_t0;      /* ns: start of the auto-converge period */
	uint64_t period_dirtied; /* bytes the guest dirtied in the period... */
	uint64_t period_sent;    /* ...and bytes the link moved */
	int throttle_pct;        /* the guest's throttle, 0 = none */
};

/* What one dirty sync measured. */
struct lm_converge_sample {
	uint64_t now_ns;         /* when the sync happened */
	uint64_t reported;       /* pages the sync reported written since the last one */
	uint64_t pending;        /* pages pending after it */
	uint64_t pass_bytes;     /* the last pass: wire bytes... */
	uint64_t pass_ms;        /* ...and ms from publishing its list to its ack */
	uint64_t normal;         /* every pass so far: normal (non-zero) pages sent... */
	uint64_t payload;        /* ...and their payload bytes on the wire */
};

struct lm_converge_plan {
	uint64_t expected_ms;    /* expected downtime; UINT64_MAX when no bandwidth is known */
	uint64_t need_ms;        /* lm_converge_need_ms(expected_ms, downtime-limit) */
	bool switchover;         /* need_ms <= downtime-limit */
	bool throttle;           /* set the guest's throttle to cv->throttle_pct now */
};

/* The fixed part of the margin, ms, for limits of 10 ms and more. */
#define LM_CONVERGE_MARGIN_MS 5

/* The expected downtime with the rule's margin for what the estimate
 * leaves out (the final sync, the digest exchange, a pass slower than the
 * last one): + 10 % + LM_CONVERGE_MARGIN_MS, the fixed part at most half
 * of limit_ms so that every limit (1 ms too) can be met.  Switch over when
 * it is <= downtime-limit: nothing pending always is.  Saturates:
 * UINT64_MAX (no bandwidth known) stays UINT64_MAX. */
uint64_t lm_converge_need_ms(uint64_t expected_ms, uint64_t limit_ms);

/* Decides for one sync; updates *cv.  When plan->switchover is set the
 * auto-converge state is left as it was.  Pure: no I/O, no clock. */
void lm_converge_decide(struct lm_converge *cv, const struct lm_converge_sample *in,
			struct lm_converge_plan *plan);

#endif
