/* SPDX-License-Identifier: MIT */
/*
 * The DSA zero-page engine against the software work-queue model: answers
 * always equal the byte-loop reference, whatever the model injects (page
 * faults, descriptor and batch errors, a full shared queue, a queue that
 * never completes), and the engine's counters agree with what the model
 * itself saw.  Also the model's own COMPVAL/BATCH semantics on hand-made
 * descriptors, and -ENODEV for an absent device and a real path that does
 * not exist here.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/idxd.h>

#include "t.h"
#include "zeropage/dsa.h"
#include "zeropage/dsa_model.h"
#include "zeropage/zero.h"

#define PS LM_DSA_PAGE_SIZE
#define MAXP LM_DSA_MAX_PAGES

static uint8_t *mem;			/* MAXP pages */
static const uint8_t *pages[MAXP];
/* Page i: zero, or zero with one non-zero byte at off. */
static void set_page(unsigned i, int off)
{
	memset(mem + (size_t)i * PS, 0, PS);
	if (off >= 0)
		mem[(size_t)i * PS + (unsigned)off] = (uint8_t)(1 + t_rnd() % 255);
}

/* A mix: about half zero, the others with one byte set anywhere (often at
 * the first or the last byte, the edges a chunked compare can miss). */
static void fill_mix(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		switch (t_rnd() % 6) {
		case 0:
		case 1:
		case 2:
			set_page(i, -1);
			break;
		case 3:
			set_page(i, 0);
			break;
		case 4:
			set_page(i, PS - 1);
			break;
		default:
			set_page(i, (int)(t_rnd() % PS));
		}
	}
}

static unsigned count_wrong(unsigned n, const bool *zero)
{
	unsigned bad = 0;

	for (unsigned i = 0; i < n; i++)
		if (zero[i] != lm_zero_ref(pages[i])) {
			fprintf(stderr, "  page %u: engine says %s\n", i, zero[i] ? "zero" : "data");
			bad++;
		}
	return bad;
}

/* Zero-checks the first n pages on d: the call succeeds, every answer right. */
static void check_ok(struct lm_dsa *d, unsigned n, bool *zero)
{
	CHECKF(lm_dsa_zero_check(d, pages, n, zero) == 0 && count_wrong(n, zero) == 0,
	       "%u pages: call failed or wrong answers", n);
}

static struct lm_dsa *open_ok(const char *path)
{
	char why[256];
	struct lm_dsa *d = NULL;
	int rc = lm_dsa_open(path, &d, why, sizeof(why));

	CHECKF(rc == 0 && d, "open %s: %d %s", path, rc, why);
	return rc ? NULL : d;
}

static struct lm_dsa_stats stats(const struct lm_dsa *d)
{
	struct lm_dsa_stats st;

	memset(&st, 0xa5, sizeof(st));
	lm_dsa_stats(d, &st);
	return st;
}

static struct lm_dsa_model_counters model(const struct lm_dsa *d)
{
	struct lm_dsa_model_counters c;

	memset(&c, 0xa5, sizeof(c));
	CHECK(lm_dsa_model_counters(lm_dsa_get_wq(d), &c) == 0);
	return c;
}

/* Mixed content, n = 8, with both edge bytes. */
static void test_success(void)
{
	struct lm_dsa *d = open_ok("x-model");
	bool zero[MAXP];

	if (!d)
		return;
	set_page(0, -1);
	set_page(1, PS - 1);	/* only the last byte */
	set_page(2, 0);		/* only the first byte */
	set_page(3, -1);
	set_page(4, 7);		/* inside the first 8-byte word */
	set_page(5, 2048);
	set_page(6, -1);
	set_page(7, PS - 8);
	memset(zero, 0x55, sizeof(zero));
	check_ok(d, 8, zero);
	CHECK(zero[0] && zero[3] && zero[6]);
	CHECK(!zero[1] && !zero[2] && !zero[4] && !zero[5] && !zero[7]);

	struct lm_dsa_stats st = stats(d);
	struct lm_dsa_model_counters mc = model(d);

	CHECK(st.batches == 1 && st.descriptors == 8);
	CHECK(st.pages_dsa == 8 && st.pages_cpu == 0);
	CHECK(st.page_faults == 0 && st.batch_failures == 0 && st.submit_retries == 0);
	CHECK(st.timeouts == 0);
	CHECK(mc.accepted == 1 && mc.batches == 1 && mc.descs == 8);
	CHECK(mc.invalid == 0 && mc.lost == 0 && mc.rejected == 0);
	lm_dsa_close(d);
}

/* n = 1 is a lone COMPVAL descriptor; n = 128 one full batch, many times. */
static void test_sizes(void)
{
	struct lm_dsa *d = open_ok("x-model");
	bool zero[MAXP];
	unsigned wrong = 0;

	if (!d)
		return;
	set_page(0, -1);
	CHECK(lm_dsa_zero_check(d, pages, 1, zero) == 0 && zero[0]);
	set_page(0, PS - 1);
	CHECK(lm_dsa_zero_check(d, pages, 1, zero) == 0 && !zero[0]);
	set_page(0, 0);
	CHECK(lm_dsa_zero_check(d, pages, 1, zero) == 0 && !zero[0]);

	struct lm_dsa_stats st = stats(d);
	struct lm_dsa_model_counters mc = model(d);

	CHECK(st.batches == 0 && st.descriptors == 3 && st.pages_dsa == 3 && st.pages_cpu == 0);
	CHECK(mc.accepted == 3 && mc.batches == 0 && mc.descs == 3 && mc.invalid == 0);

	for (int round = 0; round < 20; round++) {
		fill_mix(MAXP);
		CHECK(lm_dsa_zero_check(d, pages, MAXP, zero) == 0);
		wrong += count_wrong(MAXP, zero);
	}
	CHECK(wrong == 0);
	st = stats(d);
	mc = model(d);
	CHECK(st.batches == 20 && st.descriptors == 3 + 20 * MAXP);
	CHECK(st.pages_dsa == 3 + 20 * MAXP && st.pages_cpu == 0 && st.batch_failures == 0);
	CHECK(mc.batches == 20 && mc.descs == 3 + 20 * MAXP && mc.invalid == 0 && mc.lost == 0);

	/* n == 0 does nothing; bad arguments are refused before any work. */
	CHECK(lm_dsa_zero_check(d, pages, 0, zero) == 0);
	CHECK(lm_dsa_zero_check(d, pages, MAXP + 1, zero) == -EINVAL);
	CHECK(lm_dsa_zero_check(d, NULL, 4, zero) == -EINVAL);
	CHECK(lm_dsa_zero_check(d, pages, 4, NULL) == -EINVAL);
	CHECK(lm_dsa_zero_check(NULL, pages, 4, zero) == -EINVAL);
	{
		const uint8_t *holes[2] = { pages[0], NULL };

		CHECK(lm_dsa_zero_check(d, holes, 2, zero) == -EINVAL);
	}
	CHECK(stats(d).descriptors == st.descriptors);
	lm_dsa_close(d);
}

/* A queue with max_batch_size 32: 128 pages are four batches, 33 are a
 * batch and a lone descriptor. */
static void test_split(void)
{
	struct lm_dsa *d = open_ok("x-model:max-batch=32");
	bool zero[MAXP];

	if (!d)
		return;
	fill_mix(MAXP);
	check_ok(d, MAXP, zero);
	check_ok(d, 33, zero);

	struct lm_dsa_stats st = stats(d);
	struct lm_dsa_model_counters mc = model(d);

	CHECK(st.batches == 5 && st.descriptors == MAXP + 33);
	CHECK(st.pages_dsa == MAXP + 33 && st.batch_failures == 0);
	CHECK(mc.accepted == 6 && mc.batches == 5 && mc.invalid == 0);
	lm_dsa_close(d);
}

/* Batch-level and descriptor-level errors: the CPU answers, counted. */
static void test_errors(void)
{
	static const unsigned batch_errors[] = { DSA_COMP_HW_ERR1, DSA_COMP_BATCH_PAGE_FAULT,
						  DSA_COMP_DESC_CNT_ERANGE };
	char opts[64];
	bool zero[MAXP];

	for (size_t k = 0; k < sizeof(batch_errors) / sizeof(batch_errors[0]); k++) {
		snprintf(opts, sizeof(opts), "x-model:batch-error=%#x", batch_errors[k]);
		struct lm_dsa *d = open_ok(opts);

		if (!d)
			continue;
		fill_mix(MAXP);
		memset(zero, 0x55, sizeof(zero));
		CHECK(lm_dsa_zero_check(d, pages, MAXP, zero) == 0);
		CHECKF(count_wrong(MAXP, zero) == 0, "%s", opts);

		struct lm_dsa_stats st = stats(d);

		CHECKF(st.batch_failures == 1 && st.pages_cpu == MAXP && st.pages_dsa == 0, "%s", opts);
		CHECK(st.batches == 1 && st.page_faults == 0 && st.timeouts == 0);
		CHECK(model(d).descs == 0);

		/* A lone descriptor is not a batch: unaffected. */
		CHECK(lm_dsa_zero_check(d, pages, 1, zero) == 0 && count_wrong(1, zero) == 0);
		CHECK(stats(d).pages_dsa == 1 && stats(d).batch_failures == 1);
		lm_dsa_close(d);
	}

	/* Descriptors 3 and 40 fail: BATCH_FAIL, only those two on the CPU. */
	struct lm_dsa *d = open_ok("x-model:desc-error=3@0x20,desc-error=40@0x1c");

	if (!d)
		return;
	fill_mix(MAXP);
	set_page(3, -1);
	set_page(40, PS - 1);
	check_ok(d, MAXP, zero);
	CHECK(zero[3] && !zero[40]);

	struct lm_dsa_stats st = stats(d);

	CHECK(st.batch_failures == 1 && st.pages_cpu == 2 && st.pages_dsa == MAXP - 2);
	CHECK(st.page_faults == 0);
	/* Same injection on a lone descriptor (index 0 is not injected). */
	CHECK(lm_dsa_zero_check(d, pages, 1, zero) == 0 && stats(d).batch_failures == 1);
	lm_dsa_close(d);

	d = open_ok("x-model:desc-error=0@0x20");
	if (!d)
		return;
	set_page(0, PS - 1);
	CHECK(lm_dsa_zero_check(d, pages, 1, zero) == 0 && !zero[0]);
	st = stats(d);
	CHECK(st.batch_failures == 1 && st.pages_cpu == 1 && st.pages_dsa == 0);
	lm_dsa_close(d);
}

/*
 * Page faults part-way through a page.  K is where the device stops; the
 * CPU must check exactly [K, 4096): a byte at K is found only by the CPU,
 * a byte at K - 1 by the device (which then reports a mismatch, no fault).
 */
static void test_faults(void)
{
	struct lm_dsa *d = open_ok("x-model:fault=1@1000,fault=2@1000,fault=3@1000,"
				   "fault=4@2048,fault=5@0,fault=6@4095,fault=7@4095");
	bool zero[MAXP];

	if (!d)
		return;
	fill_mix(16);
	set_page(1, -1);	/* zero page, fault at 1000 */
	set_page(2, 1000);	/* the faulting byte itself */
	set_page(3, 999);	/* just before: the device sees it */
	set_page(4, PS - 1);	/* after the fault, last byte */
	set_page(5, PS - 1);	/* fault before the first byte */
	set_page(6, -1);	/* fault at the last byte, zero */
	set_page(7, PS - 1);	/* fault at the last byte, which is set */
	check_ok(d, 16, zero);
	CHECK(zero[1] && !zero[2] && !zero[3] && !zero[4] && !zero[5] && zero[6] && !zero[7]);

	struct lm_dsa_stats st = stats(d);

	/* 1, 2, 4, 5, 6, 7 fault; 3 finishes on the device with a mismatch. */
	CHECK(st.page_faults == 6 && st.pages_cpu == 6 && st.pages_dsa == 10);
	CHECK(st.batch_failures == 0 && st.batches == 1);
	lm_dsa_close(d);

	/* A lone descriptor that faults. */
	d = open_ok("x-model:fault=0@100");
	if (!d)
		return;
	set_page(0, 100);
	CHECK(lm_dsa_zero_check(d, pages, 1, zero) == 0 && !zero[0]);
	set_page(0, -1);
	CHECK(lm_dsa_zero_check(d, pages, 1, zero) == 0 && zero[0]);
	set_page(0, 99);
	CHECK(lm_dsa_zero_check(d, pages, 1, zero) == 0 && !zero[0]);
	st = stats(d);
	CHECK(st.page_faults == 2 && st.pages_cpu == 2 && st.pages_dsa == 1);
	CHECK(st.batch_failures == 0 && st.batches == 0 && st.descriptors == 3);
	lm_dsa_close(d);
}

/* A full shared queue: ENQCMD rejections are retried, then given up. */
static void test_busy(void)
{
	struct lm_dsa *d = open_ok("x-model:busy=3");
	bool zero[MAXP];

	if (!d)
		return;
	CHECK(lm_dsa_get_wq(d)->shared);
	fill_mix(MAXP);
	check_ok(d, MAXP, zero);

	struct lm_dsa_stats st = stats(d);
	struct lm_dsa_model_counters mc = model(d);

	CHECK(st.submit_retries == 3 && st.batch_failures == 0);
	CHECK(st.batches == 1 && st.pages_dsa == MAXP && st.pages_cpu == 0);
	CHECK(mc.rejected == 3 && mc.accepted == 1);
	lm_dsa_close(d);

	/* Never room: the retry limit, then the CPU, then the next call
	 * tries the device again (the queue is not broken, only busy). */
	d = open_ok("x-model:busy=100000");
	if (!d)
		return;
	fill_mix(MAXP);
	check_ok(d, MAXP, zero);
	st = stats(d);
	mc = model(d);
	CHECK(st.submit_retries > 0 && mc.rejected == st.submit_retries + 1);
	CHECK(st.batch_failures == 1 && st.batches == 0 && st.descriptors == 0);
	CHECK(st.pages_cpu == MAXP && st.pages_dsa == 0 && mc.accepted == 0);
	CHECK(lm_dsa_zero_check(d, pages, 4, zero) == 0 && count_wrong(4, zero) == 0);
	CHECK(model(d).rejected == 2 * mc.rejected && stats(d).batch_failures == 2);
	lm_dsa_close(d);
}

/* The model in its own thread: the poller really waits. */
static void test_thread(void)
{
	struct lm_dsa *d = open_ok("x-model:thread");
	bool zero[MAXP];
	unsigned wrong = 0;

	if (!d)
		return;
	for (int round = 0; round < 20; round++) {
		unsigned n = round == 0 ? 1 : (unsigned)(1 + t_rnd() % MAXP);

		fill_mix(n);
		CHECK(lm_dsa_zero_check(d, pages, n, zero) == 0);
		wrong += count_wrong(n, zero);
	}
	CHECK(wrong == 0);

	struct lm_dsa_stats st = stats(d);

	CHECK(st.pages_cpu == 0 && st.batch_failures == 0 && st.timeouts == 0);
	CHECK(st.pages_dsa == st.descriptors && model(d).descs == st.descriptors);
	lm_dsa_close(d);

	/* Thread mode with faults and a shared queue. */
	d = open_ok("x-model:thread,shared,fault=0@64,fault=9@4000");
	if (!d)
		return;
	fill_mix(MAXP);
	set_page(9, 4000);
	CHECK(lm_dsa_zero_check(d, pages, MAXP, zero) == 0);
	CHECK(count_wrong(MAXP, zero) == 0 && !zero[9]);
	CHECK(stats(d).page_faults >= 1 && stats(d).batch_failures == 0);
	lm_dsa_close(d);
}

/* A queue that never completes: timeout, CPU, and no more submissions. */
static void test_hang(void)
{
	struct lm_dsa *d = open_ok("x-model:hang,timeout-ms=20");
	bool zero[MAXP];

	if (!d)
		return;
	fill_mix(MAXP);
	check_ok(d, MAXP, zero);

	struct lm_dsa_stats st = stats(d);

	CHECK(st.timeouts == 1 && st.batch_failures == 1 && st.pages_cpu == MAXP);
	CHECK(st.batches == 1 && st.pages_dsa == 0);
	fill_mix(MAXP);
	check_ok(d, MAXP, zero);
	st = stats(d);
	CHECK(st.timeouts == 1 && st.batches == 1 && st.pages_cpu == 2 * MAXP);
	CHECK(model(d).accepted == 1);
	lm_dsa_close(d);
}

/* Opening: absent device, real paths that do not exist, bad input. */
static void test_open(void)
{
	char why[512];
	struct lm_dsa *d = (struct lm_dsa *)&why;	/* must be reset to NULL */
	int rc;

	rc = lm_dsa_open("x-model:absent", &d, why, sizeof(why));
	CHECKF(rc == -ENODEV && !d, "%d", rc);
	CHECKF(strstr(why, "absent") != NULL, "why: %s", why);
	CHECK(lm_dsa_probe("x-model:absent", why, sizeof(why)) == -ENODEV);
	CHECK(lm_dsa_probe("x-model", why, sizeof(why)) == 0);
	CHECKF(strstr(why, "usable") != NULL, "why: %s", why);

	why[0] = '\0';
	d = (struct lm_dsa *)&why;
	rc = lm_dsa_open("/dev/dsa/wq99.0", &d, why, sizeof(why));
	CHECKF(rc == -ENODEV && !d, "%d", rc);
	CHECKF(strstr(why, "wq99.0") != NULL, "why: %s", why);
	fprintf(stderr, "/dev/dsa/wq99.0: %s\n", why);
	CHECK(lm_dsa_probe("/dev/dsa/wq99.0", why, sizeof(why)) == -ENODEV);
	rc = lm_dsa_probe(NULL, why, sizeof(why));
	fprintf(stderr, "probe(any): %d %s\n", rc, why);
	CHECK(rc == 0 || (rc == -ENODEV && why[0]));

	static const char *const bad[] = { "/dev/dsa/wq1", "/dev/dsa/wq1.0x", "/tmp/wq0.0",
					   "x-models", "x-model:bogus", "x-model:fault=3",
					   "x-model:busy=-1", "x-model:batch-error=1",
					   "x-model:max-batch=0", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		rc = lm_dsa_open(bad[i], &d, why, sizeof(why));
		CHECKF(rc == -EINVAL && !d && why[0], "'%s': %d %s", bad[i], rc, why);
	}
	CHECK(lm_dsa_open(NULL, &d, why, sizeof(why)) == -EINVAL);
	CHECK(lm_dsa_open("x-model", NULL, why, sizeof(why)) == -EINVAL);
	/* why may be NULL. */
	CHECK(lm_dsa_open("x-model:absent", &d, NULL, 0) == -ENODEV);
	lm_dsa_close(NULL);
}

/* ---- The model's semantics on hand-made descriptors ---- */

struct hand {
	struct dsa_hw_desc batch __attribute__((aligned(64)));
	struct dsa_completion_record bcr __attribute__((aligned(64)));
	struct dsa_hw_desc d[4] __attribute__((aligned(64)));
	struct dsa_completion_record cr[5] __attribute__((aligned(32)));
};

static void compval(struct dsa_hw_desc *x, struct dsa_completion_record *cr, const void *src,
		    uint32_t len, uint64_t pattern)
{
	memset(x, 0, sizeof(*x));
	memset(cr, 0, sizeof(*cr));
	x->opcode = DSA_OPCODE_COMPVAL;
	x->flags = IDXD_OP_FLAG_CRAV | IDXD_OP_FLAG_RCR;
	x->src_addr = (uintptr_t)src;
	x->comp_pattern = pattern;
	x->xfer_size = len;
	x->completion_addr = (uintptr_t)cr;
}

static void test_model(void)
{
	struct lm_dsa_wq wq;
	struct hand *h;
	char why[128];
	uint8_t buf[256];

	if (posix_memalign((void **)&h, 64, sizeof(*h)) ||
	    lm_dsa_model_open("fault=1@24", &wq, why, sizeof(why))) {
		CHECK(0);
		return;
	}
	/* Pattern 0x0102..08 repeated, little-endian. */
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(1 + i % 8);
	compval(&h->d[0], &h->cr[0], buf, sizeof(buf), 0x0807060504030201ull);
	CHECK(wq.ops->submit(wq.priv, &h->d[0]) == 0);
	CHECK(h->cr[0].status == DSA_COMP_SUCCESS && h->cr[0].result == 0);

	buf[77] ^= 0x40;
	compval(&h->d[0], &h->cr[0], buf, sizeof(buf), 0x0807060504030201ull);
	CHECK(wq.ops->submit(wq.priv, &h->d[0]) == 0);
	CHECK(h->cr[0].status == DSA_COMP_SUCCESS && h->cr[0].result == 1);
	CHECKF(h->cr[0].bytes_completed == 77, "%u", h->cr[0].bytes_completed);

	/* A batch: d[0] mismatches, d[1] faults at 24 (fault=1@24), d[2] is a
	 * nested batch (BAD_OPCODE), d[3] matches a short zero buffer. */
	static const uint8_t zeros[40];

	compval(&h->d[1], &h->cr[1], buf, sizeof(buf), 0x0807060504030201ull);
	memset(&h->d[2], 0, sizeof(h->d[2]));
	memset(&h->cr[2], 0, sizeof(h->cr[2]));
	h->d[2].opcode = DSA_OPCODE_BATCH;
	h->d[2].flags = IDXD_OP_FLAG_CRAV | IDXD_OP_FLAG_RCR;
	h->d[2].completion_addr = (uintptr_t)&h->cr[2];
	compval(&h->d[3], &h->cr[3], zeros, sizeof(zeros), 0);
	memset(&h->batch, 0, sizeof(h->batch));
	memset(&h->bcr, 0, sizeof(h->bcr));
	h->batch.opcode = DSA_OPCODE_BATCH;
	h->batch.flags = IDXD_OP_FLAG_CRAV | IDXD_OP_FLAG_RCR;
	h->batch.desc_list_addr = (uintptr_t)h->d;
	h->batch.desc_count = 4;
	h->batch.completion_addr = (uintptr_t)&h->bcr;
	CHECK(wq.ops->submit(wq.priv, &h->batch) == 0);
	CHECK(h->bcr.status == DSA_COMP_BATCH_FAIL && h->bcr.bytes_completed == 4);
	CHECK(h->cr[0].status == DSA_COMP_SUCCESS && h->cr[0].result == 1);
	CHECK(h->cr[1].status == DSA_COMP_PAGE_FAULT_NOBOF && h->cr[1].bytes_completed == 24);
	CHECK(h->cr[1].fault_addr == (uintptr_t)(buf + 24));
	CHECK(h->cr[2].status == DSA_COMP_BAD_OPCODE);
	CHECK(h->cr[3].status == DSA_COMP_SUCCESS && h->cr[3].result == 0);

	/* Malformed batches: one descriptor; a misaligned list. */
	memset(&h->bcr, 0, sizeof(h->bcr));
	h->batch.desc_count = 1;
	CHECK(wq.ops->submit(wq.priv, &h->batch) == 0);
	CHECK(h->bcr.status == DSA_COMP_DESC_CNT_ERANGE);
	memset(&h->bcr, 0, sizeof(h->bcr));
	h->batch.desc_count = 2;
	h->batch.desc_list_addr = (uintptr_t)h->d + 32;
	CHECK(wq.ops->submit(wq.priv, &h->batch) == 0);
	CHECK(h->bcr.status == DSA_COMP_DESCLIST_ALIGN);

	/* A misaligned completion record is never written. */
	struct lm_dsa_model_counters c;

	compval(&h->d[0], &h->cr[0], zeros, sizeof(zeros), 0);
	memset(&h->cr[1], 0, sizeof(h->cr[1]));
	h->d[0].completion_addr = (uintptr_t)&h->cr[0] + 16;
	CHECK(wq.ops->submit(wq.priv, &h->d[0]) == 0);
	CHECK(h->cr[0].status == 0 && h->cr[1].status == 0);
	CHECK(lm_dsa_model_counters(&wq, &c) == 0 && c.lost == 1 && c.invalid == 3);
	wq.ops->close(wq.priv);
	free(h);
}

int main(void)
{
	if (posix_memalign((void **)&mem, PS, (size_t)MAXP * PS))
		return 1;
	for (unsigned i = 0; i < MAXP; i++)
		pages[i] = mem + (size_t)i * PS;

	test_model();
	test_success();
	test_sizes();
	test_split();
	test_errors();
	test_faults();
	test_busy();
	test_thread();
	test_hang();
	test_open();

	free(mem);
	T_DONE();
}
