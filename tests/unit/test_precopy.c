/* SPDX-License-Identifier: MIT */
/* The pre-copy decision (core/converge.h) fed synthetic rates. */
#include <string.h>

#include "core/converge.h"
#include "t.h"

#define SEC 1000000000ull

/* With no normal page sent yet a pending page costs 4096 bytes of payload,
 * 4 of index and 64/128 of a header: 4100.5 bytes.  At this rate that is
 * exactly 1 ms per pending page, so expected_ms == pending. */
#define MS_PER_PAGE_BW 4100500ull

static struct lm_converge defaults(void)
{
	return (struct lm_converge){.downtime_limit_ms = 300,
				    .auto_converge = true,
				    .threshold = 50,
				    .initial = 20,
				    .increment = 10,
				    .max = 99};
}

/* A sample after a pass that moved 1 GB in a second (bw 1e9 B/s). */
static struct lm_converge_sample sample(uint64_t pending)
{
	return (struct lm_converge_sample){.now_ns = SEC / 2, .pending = pending,
					   .pass_bytes = 1000000000, .pass_ms = 1000};
}

static void test_fits(void)
{
	struct lm_converge cv = defaults();
	struct lm_converge_sample in = sample(1000); /* 4.1 MB at 1 GB/s: 4 ms */
	struct lm_converge_plan plan;
	lm_converge_decide(&cv, &in, &plan);
	CHECK(cv.bw == 1000000000);
	CHECKF(plan.expected_ms == 4, "%llu", (unsigned long long)plan.expected_ms);
	CHECK(plan.switchover && !plan.throttle);

	cv = defaults();
	in = sample(100000); /* 410 MB: 410 ms > 300 */
	lm_converge_decide(&cv, &in, &plan);
	CHECKF(plan.expected_ms == 410, "%llu", (unsigned long long)plan.expected_ms);
	CHECK(!plan.switchover);

	/* The compression seen so far counts: 1000 bytes a page on the wire
	 * (+ 4.5) makes the same 100000 pages 100 ms. */
	cv = defaults();
	in.normal = 1000;
	in.payload = 1000000;
	lm_converge_decide(&cv, &in, &plan);
	CHECKF(plan.expected_ms == 100, "%llu", (unsigned long long)plan.expected_ms);
	CHECK(plan.switchover);
}

/* expected + expected/10 + min(5, limit/2) <= downtime-limit, at the
 * boundary; nothing pending (expected 0) always fits. */
static void test_margin(void)
{
	static const struct {
		uint64_t expected, limit;
		bool ok;
	} c[] = {
		{100, 115, true}, {100, 114, false}, {9, 14, true},  {9, 13, false},
		{0, 5, true},     {0, 4, true},      {19, 25, true}, {19, 24, false},
		{20, 27, true},   {20, 26, false},   {2, 4, true},   {3, 4, false},
		{0, 1, true},     {1, 1, true},      {2, 1, false},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct lm_converge cv = defaults();
		cv.switchover_bw = MS_PER_PAGE_BW;
		cv.downtime_limit_ms = c[i].limit;
		struct lm_converge_sample in = sample(c[i].expected);
		struct lm_converge_plan plan;
		lm_converge_decide(&cv, &in, &plan);
		CHECKF(plan.expected_ms == c[i].expected, "case %zu: %llu", i,
		       (unsigned long long)plan.expected_ms);
		CHECKF(plan.switchover == c[i].ok, "case %zu: expected %llu, limit %llu", i,
		       (unsigned long long)c[i].expected, (unsigned long long)c[i].limit);
	}
}

/* The margin alone, as the timeout's message prints it; it saturates. */
static void test_need(void)
{
	CHECK(lm_converge_need_ms(0, 300) == 5);
	CHECK(lm_converge_need_ms(100, 300) == 115);
	CHECK(lm_converge_need_ms(19, 300) == 25);
	CHECK(lm_converge_need_ms(UINT64_MAX, 300) == UINT64_MAX);
	CHECK(lm_converge_need_ms(UINT64_MAX - 3, 300) == UINT64_MAX);
	/* Under 10 ms the fixed part is half the limit: every limit can be met. */
	CHECK(lm_converge_need_ms(0, 10) == 5);
	CHECK(lm_converge_need_ms(0, 4) == 2);
	CHECK(lm_converge_need_ms(0, 1) == 0);
	CHECK(lm_converge_need_ms(1, 4) == 3);
}

/* Small limits (1-4 ms): a page or two pending fits; nothing pending always
 * does once a bandwidth is known (the final pass is then the sync alone). */
static void test_small_limits(void)
{
	for (uint64_t limit = 1; limit <= 4; limit++) {
		struct lm_converge cv = defaults();
		cv.downtime_limit_ms = limit;
		struct lm_converge_sample in = sample(1); /* 4 us at 1 GB/s */
		struct lm_converge_plan plan;
		lm_converge_decide(&cv, &in, &plan);
		CHECKF(plan.switchover && plan.need_ms <= limit, "limit %llu: need %llu",
		       (unsigned long long)limit, (unsigned long long)plan.need_ms);
		cv = defaults();
		cv.downtime_limit_ms = limit;
		in = sample(0);
		in.pass_bytes = 1000; /* a slow link: any page would be over */
		lm_converge_decide(&cv, &in, &plan);
		CHECK(plan.switchover && plan.expected_ms == 0);
		in = sample(10);
		in.pass_bytes = 1000;
		lm_converge_decide(&cv, &in, &plan);
		CHECK(!plan.switchover && plan.need_ms > limit);
	}
}

/* avail-switchover-bandwidth replaces the measured rate, both ways; the
 * measurement goes on underneath. */
static void test_switchover_bw(void)
{
	struct lm_converge cv = defaults();
	cv.switchover_bw = MS_PER_PAGE_BW;
	struct lm_converge_sample in = sample(1000); /* 4 ms measured, 1000 ms declared */
	struct lm_converge_plan plan;
	lm_converge_decide(&cv, &in, &plan);
	CHECK(plan.expected_ms == 1000 && !plan.switchover);
	CHECK(cv.bw == 1000000000);

	cv = defaults();
	cv.switchover_bw = 100ull * MS_PER_PAGE_BW;
	in = sample(10000);
	in.pass_bytes = 1000; /* a crawl measured: 1000 B/s */
	lm_converge_decide(&cv, &in, &plan);
	CHECK(plan.expected_ms == 100 && plan.switchover);
	CHECK(cv.bw == 1000);
}

/* A pass under 20 ms keeps the previous estimate, unless there is none. */
static void test_short_pass(void)
{
	struct lm_converge cv = defaults();
	cv.downtime_limit_ms = 1; /* never switch: watch bw only */
	struct lm_converge_sample in = sample(1);
	struct lm_converge_plan plan;
	lm_converge_decide(&cv, &in, &plan);
	CHECK(cv.bw == 1000000000);

	in.pass_bytes = 1000;
	in.pass_ms = 19;
	lm_converge_decide(&cv, &in, &plan);
	CHECK(cv.bw == 1000000000);
	in.pass_ms = 0;
	lm_converge_decide(&cv, &in, &plan);
	CHECK(cv.bw == 1000000000);
	in.pass_ms = 20;
	lm_converge_decide(&cv, &in, &plan);
	CHECK(cv.bw == 50000);

	/* No estimate yet: a short pass is better than nothing (0 ms counts
	 * as 1). */
	cv = defaults();
	in.pass_bytes = 5000;
	in.pass_ms = 5;
	lm_converge_decide(&cv, &in, &plan);
	CHECK(cv.bw == 1000000);
	cv = defaults();
	in.pass_ms = 0;
	lm_converge_decide(&cv, &in, &plan);
	CHECK(cv.bw == 5000000);
}

/* No bandwidth known: the expected downtime is unknown, never small. */
static void test_no_bw(void)
{
	struct lm_converge cv = defaults();
	cv.downtime_limit_ms = 2000000; /* the largest downtime-limit */
	struct lm_converge_sample in = sample(0);
	in.pass_bytes = 0;
	struct lm_converge_plan plan;
	for (int i = 0; i < 3; i++) {
		lm_converge_decide(&cv, &in, &plan);
		CHECK(cv.bw == 0);
		CHECK(plan.expected_ms == ~0ull);
		CHECK(!plan.switchover);
	}
	/* The first pass that moves bytes gives a rate. */
	in.pass_bytes = 1000;
	lm_converge_decide(&cv, &in, &plan);
	CHECK(cv.bw == 1000 && plan.expected_ms == 0 && plan.switchover);
}

/* One sync for the auto-converge tests: at time t (s), the guest dirtied
 * `dirtied` pages and the pass moved `sent` bytes; never converges. */
static bool ac_sync(struct lm_converge *cv, double t, uint64_t dirtied, uint64_t sent)
{
	struct lm_converge_sample in = {.now_ns = (uint64_t)(t * SEC),
					.reported = dirtied,
					.pending = 1000000,
					.pass_bytes = sent,
					.pass_ms = 1000};
	struct lm_converge_plan plan;
	lm_converge_decide(cv, &in, &plan);
	CHECK(!plan.switchover);
	return plan.throttle;
}

#define HIGH 1000, 4096000 /* dirtied 4096000 bytes, sent as much: 100 % > 50 % */
#define LOW 100, 4096000   /* 10 % */

static void test_auto_converge(void)
{
	struct lm_converge cv = defaults();
	cv.max = 35;
	/* Under a second: the period goes on, nothing judged. */
	CHECK(!ac_sync(&cv, 0.5, HIGH));
	CHECK(cv.high == 0 && cv.period_t0 == 0 && cv.period_dirtied == 1000 * 4096);
	/* A second: first high period. */
	CHECK(!ac_sync(&cv, 1.0, HIGH));
	CHECK(cv.high == 1 && cv.period_t0 == SEC && !cv.period_dirtied && !cv.period_sent);
	CHECK(cv.throttle_pct == 0);
	/* Second high period: initial. */
	CHECK(ac_sync(&cv, 2.0, HIGH));
	CHECK(cv.throttle_pct == 20 && cv.high == 0);
	/* Two more: + increment. */
	CHECK(!ac_sync(&cv, 3.0, HIGH));
	CHECK(ac_sync(&cv, 4.0, HIGH));
	CHECK(cv.throttle_pct == 30);
	/* Capped at max, and stays there. */
	CHECK(!ac_sync(&cv, 5.0, HIGH));
	CHECK(ac_sync(&cv, 6.0, HIGH));
	CHECK(cv.throttle_pct == 35);
	CHECK(!ac_sync(&cv, 7.0, HIGH));
	CHECK(ac_sync(&cv, 8.0, HIGH));
	CHECK(cv.throttle_pct == 35);

	/* A low period neither counts nor resets the count (as QEMU's). */
	cv = defaults();
	CHECK(!ac_sync(&cv, 1.0, HIGH));
	CHECK(!ac_sync(&cv, 2.0, LOW));
	CHECK(cv.high == 1);
	CHECK(ac_sync(&cv, 3.0, HIGH));
	CHECK(cv.throttle_pct == 20);

	/* A period is judged on the sum of its syncs: a burst of dirtying
	 * with nothing sent, then a big pass, is low as a whole... */
	cv = defaults();
	CHECK(!ac_sync(&cv, 0.4, 1000, 0));
	CHECK(!ac_sync(&cv, 1.0, 0, 10 * 4096000));
	CHECK(cv.high == 0);
	/* ...and exactly threshold % is not high. */
	CHECK(!ac_sync(&cv, 2.0, 500, 4096000));
	CHECK(cv.high == 0);
	CHECK(!ac_sync(&cv, 3.0, 501, 4096000));
	CHECK(cv.high == 1);

	/* Periods start at period_t0 (setup time), not at 0. */
	cv = defaults();
	cv.period_t0 = 5 * SEC;
	CHECK(!ac_sync(&cv, 5.9, HIGH));
	CHECK(!ac_sync(&cv, 5.95, HIGH));
	CHECK(cv.high == 0 && cv.period_dirtied == 2 * 1000 * 4096);
	CHECK(!ac_sync(&cv, 6.0, HIGH));
	CHECK(cv.high == 1);

	/* A throttle already set steps by increment from it. */
	cv = defaults();
	cv.throttle_pct = 50;
	CHECK(!ac_sync(&cv, 1.0, HIGH));
	CHECK(ac_sync(&cv, 2.0, HIGH));
	CHECK(cv.throttle_pct == 60);

	/* Off (or no throttle op, which the caller folds into the flag):
	 * never throttles. */
	cv = defaults();
	cv.auto_converge = false;
	for (int i = 1; i <= 10; i++)
		CHECK(!ac_sync(&cv, i, HIGH));
	CHECK(cv.throttle_pct == 0 && cv.high == 0);

	/* A switchover leaves the auto-converge state alone. */
	cv = defaults();
	CHECK(!ac_sync(&cv, 1.0, HIGH));
	struct lm_converge before = cv;
	struct lm_converge_sample in = {.now_ns = 2 * SEC, .reported = 1000, .pending = 0,
					.pass_bytes = 4096000, .pass_ms = 1000};
	struct lm_converge_plan plan;
	lm_converge_decide(&cv, &in, &plan);
	CHECK(plan.switchover && !plan.throttle);
	CHECK(cv.high == before.high && cv.period_t0 == before.period_t0 &&
	      cv.period_dirtied == before.period_dirtied && cv.period_sent == before.period_sent);
}

int main(void)
{
	test_fits();
	test_margin();
	test_need();
	test_small_limits();
	test_switchover_bw();
	test_short_pass();
	test_no_bw();
	test_auto_converge();
	T_DONE();
}
