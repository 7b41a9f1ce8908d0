/* SPDX-License-Identifier: MIT */
/*
 * Zero-page engines: how a sender finds the zero pages of a packet, one ops
 * table per engine in one const registry (zeropage.c), named as the
 * zero-page-detection values:
 *
 *   none     no page counts as zero: every page is sent
 *   multifd  the CPU, with the widest SIMD it has (zero.c)
 *   dsa      an Intel DSA work queue at dsa-path (dsa.c; "x-model[:OPTS]"
 *            is its software model, for tests)
 *
 * The policy, in one place (lm_zeropage_open): an engine that cannot open
 * for want of a device, a driver or a permission is replaced by the CPU
 * engine, and the caller gets a line for its log; a malformed setting
 * (-EINVAL) is an error.
 *
 * Each sender thread opens its own engine and is the only one to use it.
 */
#ifndef LM_ZEROPAGE_H
#define LM_ZEROPAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A sender's counters: written by its thread only, read by anyone. */
struct lm_zeropage_counters {
	_Atomic uint64_t dsa_pages; /* dsa: pages the device answered */
	_Atomic uint64_t cpu_pages; /* dsa: pages answered (wholly or partly) on the CPU */
};

struct lm_zeropage_cfg {
	const char *dsa_path;                  /* dsa: the work queue */
	struct lm_zeropage_counters *counters; /* NULL: not counted */
};

struct lm_zeropage_ops {
	const char *name; /* the zero-page-detection value */
	/* For listings (livemig info): 0 when it can run here, with a detail
	 * in why (e.g. the SIMD level), else -errno with the reason. */
	int (*probe)(char *why, size_t len);
	/* 0 and *ctx (why may then hold a line for the log, else ""), or
	 * -errno with why: -EINVAL for a malformed setting, anything else
	 * (-ENODEV, -EACCES, -EBUSY, -ENOMEM) when it cannot run here. */
	int (*open)(void **ctx, const struct lm_zeropage_cfg *cfg, char *why, size_t len);
	void (*close)(void *ctx); /* accepts NULL */
	/* zero[i] = whether the page at pages[i] (LM_PAGE_SIZE bytes, mapped
	 * and readable) is all zero, for i < n <= LM_PACKET_PAGES.  Always a
	 * complete answer: an engine that fails finishes on the CPU. */
	void (*check)(void *ctx, const uint8_t *const *pages, uint32_t n, bool *zero);
};

/* A sender's engine: what lm_zeropage_open chose. */
struct lm_zeropage {
	const struct lm_zeropage_ops *ops;
	void *ctx;
};

/* NULL if unknown. */
const struct lm_zeropage_ops *lm_zeropage_by_name(const char *name);
/* The registered table, for listings. */
const struct lm_zeropage_ops *const *lm_zeropage_table(size_t *count);

#define LM_ZEROPAGE_FALLBACK 1
/*
 * Opens the engine called name (a zero-page-detection value) for one
 * sender thread.  note (len bytes, always terminated) gets the line to log
 * once per session, or "".  Returns
 *   0                     the engine asked for is open in *zp
 *   LM_ZEROPAGE_FALLBACK  it cannot run here: the CPU engine is open
 *                         instead, and note says why
 *   -EINVAL               unknown name, or a malformed setting: note says
 *                         which (e.g. "dsa-path: ...")
 *   -ENOMEM
 */
int lm_zeropage_open(struct lm_zeropage *zp, const char *name,
		     const struct lm_zeropage_cfg *cfg, char *note, size_t len);
/* Accepts an engine that was never opened (zeroed). */
void lm_zeropage_close(struct lm_zeropage *zp);

#endif
