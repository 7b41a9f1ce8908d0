/* SPDX-License-Identifier: MIT */
/*
 * The fallback policy, the one place that decides what happens to a job
 * when an engine is missing, busy or wrong (DESIGN.md, "Compression: method
 * vs engine"):
 *
 *   setup    each hardware engine of the method is probed once; -ENODEV or
 *            a library not built skips it, and the session logs why
 *   per job  hardware -> busy: retry up to accel-retries times -> software
 *            hardware error (or, with accel-verify, output that does not
 *            decode to the input) -> software for that job, warned once
 *            output not smaller than the input -> the caller sends it raw
 *
 * Every path is counted.  Engines themselves never retry or fall back.
 */
#ifndef LM_ACCEL_H
#define LM_ACCEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "accel/engine.h"

/* Per channel; written by its thread only, read by anyone. */
struct lm_accel_counters {
	_Atomic uint64_t hw_jobs, sw_jobs, busy_retries, hw_errors, raw_pages;
};

/* The session's choice, made once by lm_accel_choose(). */
struct lm_accel_choice {
	uint8_t method;
	const struct lm_engine_ops *hw; /* NULL: software only */
	const struct lm_engine_ops *sw;
	const char *hw_options;         /* the fault engine's rates */
	unsigned retries;
	bool verify;
	char skipped[256];              /* engines passed over at probe, and why */
	_Atomic bool warned;            /* a hardware failure was logged */
	void (*warn)(void *opaque, const char *msg);
	void *warn_opaque;
};

/* 0 if e can run here; else -ENODEV (not built, no device) or another
 * -errno, with why.  why is "" when e is usable. */
int lm_engine_usable(const struct lm_engine_ops *e, char *why, size_t len);

/*
 * Picks the engines for method.  force: an engine name (the user's
 * compression-engine) or NULL for the best usable one; fault: the fault
 * engine's options (test hook) or NULL.  -ENODEV / -EINVAL with err when a
 * forced engine is unknown, not built or has no device.
 */
int lm_accel_choose(struct lm_accel_choice *ch, uint8_t method, const char *force,
		    const char *fault, char *err, size_t errlen);

/* One per thread. */
struct lm_accel {
	struct lm_accel_choice *ch;
	void *hw_ctx, *sw_ctx;
	struct lm_accel_counters *cnt;
	uint8_t *scratch;   /* accel-verify: decoded output */
	struct lm_job *tmp; /* max_jobs, for the jobs still to do */
	uint32_t *pos;      /* where each tmp job came from */
	uint32_t max_jobs, max_pages;
};

/* max_pages: the most pages one job holds. */
int lm_accel_setup(struct lm_accel *a, struct lm_accel_choice *ch, int level,
		   uint32_t max_jobs, uint32_t max_pages, uint32_t channel,
		   struct lm_accel_counters *cnt);
void lm_accel_cleanup(struct lm_accel *a);

/*
 * Runs the jobs to completion.  Afterwards each job's status is 0 (len
 * bytes of output in dst) or -ENOSPC (send its pages raw).  Returns 0, or
 * -errno if the software engine itself failed.
 */
int lm_accel_run(struct lm_accel *a, struct lm_job *jobs, uint32_t n);

/* The fault engine's options (fault.c): rates in 0..1, and a seed. */
struct lm_fault_opts {
	double busy, error, corrupt, badlen;
	uint64_t seed;
};
/* 0 or -EINVAL. */
int lm_fault_parse(const char *opt, struct lm_fault_opts *o);

#endif
