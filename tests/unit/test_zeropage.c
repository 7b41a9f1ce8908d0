/* SPDX-License-Identifier: MIT */
/*
 * The zero-page engines behind their ops table, and the policy that opens
 * one: every engine answers like the byte-loop reference (none: nothing is
 * zero), dsa counts its pages, a missing device falls back to the CPU with
 * a reason, and a malformed dsa-path or an unknown name is an error.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "util/page.h"
#include "zeropage/zero.h"
#include "zeropage/zeropage.h"

#define PS LM_PAGE_SIZE
#define MAXP LM_PACKET_PAGES

static uint8_t *mem;
static const uint8_t *pages[MAXP];

/* About half the pages zero, the others with one byte set anywhere. */
static void fill(void)
{
	memset(mem, 0, (size_t)MAXP * PS);
	for (unsigned i = 0; i < MAXP; i++) {
		if (t_rnd() % 2)
			mem[(size_t)i * PS + t_rnd() % PS] = (uint8_t)(1 + t_rnd() % 255);
		pages[i] = mem + (size_t)i * PS;
	}
}

/* The engine's answers for n pages: as the reference, or none at all. */
static void check_answers(const struct lm_zeropage *zp, uint32_t n, bool never_zero)
{
	bool zero[MAXP];
	unsigned bad = 0;

	memset(zero, 0xa5, sizeof(zero));
	zp->ops->check(zp->ctx, pages, n, zero);
	for (uint32_t i = 0; i < n; i++)
		bad += zero[i] != (never_zero ? false : lm_zero_ref(pages[i]));
	CHECKF(bad == 0, "%s: %u wrong answers of %u", zp->ops->name, bad, n);
}

static void registry(void)
{
	size_t count = 0;
	const struct lm_zeropage_ops *const *t = lm_zeropage_table(&count);

	CHECK(count == 3);
	for (size_t i = 0; i < count; i++) {
		CHECK(t[i]->name && t[i]->open && t[i]->close && t[i]->check);
		CHECK(lm_zeropage_by_name(t[i]->name) == t[i]);
	}
	CHECK(lm_zeropage_by_name("none") && lm_zeropage_by_name("multifd") &&
	      lm_zeropage_by_name("dsa"));
	CHECK(lm_zeropage_by_name("legacy") == NULL);
	CHECK(lm_zeropage_by_name(NULL) == NULL);
}

static void engine(const char *name, const char *path, int want, const char *chosen,
		   const char *note_has)
{
	struct lm_zeropage_counters cnt = { 0 };
	struct lm_zeropage_cfg cfg = { .dsa_path = path, .counters = &cnt };
	struct lm_zeropage zp;
	char note[300];
	int r = lm_zeropage_open(&zp, name, &cfg, note, sizeof(note));

	CHECKF(r == want, "%s %s: %d, want %d (%s)", name, path ? path : "", r, want, note);
	CHECKF(strstr(note, note_has) != NULL, "%s %s: note '%s' lacks '%s'", name,
	       path ? path : "", note, note_has);
	if (r < 0) {
		CHECK(zp.ops == NULL);
		lm_zeropage_close(&zp); /* harmless */
		return;
	}
	CHECKF(zp.ops && !strcmp(zp.ops->name, chosen), "%s: opened %s, want %s", name,
	       zp.ops ? zp.ops->name : "nothing", chosen);
	for (int rep = 0; rep < 4; rep++) {
		fill();
		check_answers(&zp, rep == 3 ? 1 : MAXP, !strcmp(chosen, "none"));
	}
	check_answers(&zp, 0, false);
	if (!strcmp(chosen, "dsa"))
		CHECKF(cnt.dsa_pages + cnt.cpu_pages == 3 * MAXP + 1 && cnt.dsa_pages > 0,
		       "dsa counters: %llu + %llu", (unsigned long long)cnt.dsa_pages,
		       (unsigned long long)cnt.cpu_pages);
	else
		CHECK(cnt.dsa_pages == 0 && cnt.cpu_pages == 0);
	lm_zeropage_close(&zp);
	CHECK(zp.ops == NULL && zp.ctx == NULL);
}

int main(void)
{
	mem = aligned_alloc(PS, (size_t)MAXP * PS);
	registry();
	engine("none", NULL, 0, "none", "");
	engine("multifd", NULL, 0, "multifd", "");
	engine("dsa", "x-model", 0, "dsa", "zero-page-detection=dsa: work queue x-model");
	/* No device: the CPU, and a line for the log saying why. */
	engine("dsa", "x-model:absent", LM_ZEROPAGE_FALLBACK, "multifd",
	       "; detecting zero pages on the CPU");
	engine("dsa", "/dev/dsa/wq99.0", LM_ZEROPAGE_FALLBACK, "multifd",
	       "zero-page-detection=dsa: ");
	/* The user's mistakes. */
	engine("dsa", "x-model:bogus", -EINVAL, NULL, "dsa-path: ");
	engine("cpu", NULL, -EINVAL, NULL, "unknown engine 'cpu'");
	free(mem);
	T_DONE();
}
