/* SPDX-License-Identifier: MIT */
/*
 * Compression engines.  A method (src/codec/) is a wire format; an engine
 * produces it.  Engines of one method are interchangeable: any engine's
 * output decodes with any other engine of the same method.
 *
 * An engine only compresses (and, optionally, decompresses) jobs.  It never
 * retries, never falls back, never counts: that policy lives in one place,
 * src/accel/accel.c.  A hardware engine reports what happened to each job
 * and returns; the policy decides what to do next.
 *
 * Jobs are a page each for per-page methods (qpl, uadk, lz4) and a packet
 * each for per-packet methods (qatzip).  Formats, level by level:
 *   qpl     raw deflate (RFC 1951), no header, no trailer
 *   uadk    zlib (RFC 1950): 2-byte header, deflate, Adler-32
 *   qatzip  raw deflate of the packet's pages concatenated
 *   lz4     one LZ4 block (LZ4_compress_default format)
 */
#ifndef LM_ENGINE_H
#define LM_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/method.h"
#include "util/page.h"

struct lm_job {
	const uint8_t *const *src; /* npages pages of LM_PAGE_SIZE bytes */
	uint32_t npages;
	uint8_t *dst;              /* output buffer */
	uint32_t cap;              /* its size */
	/* Set by the engine: */
	uint32_t len;              /* bytes written to dst when status == 0 */
	/*
	 * 0        done, dst[0..len) holds the compressed data
	 * -ENOSPC  the output does not fit in cap (the policy sends raw)
	 * -EBUSY   the device is busy: nothing done, the job may be retried
	 * other    the device failed this job (the policy uses software)
	 */
	int status;
};

/* What a session asks of an engine when it sets one up. */
struct lm_engine_cfg {
	uint8_t method;       /* LM_METHOD_* the engine must produce */
	int level;            /* the method's level (1 = fastest) */
	uint32_t max_jobs;    /* most jobs one run() call passes */
	uint32_t channel;     /* the thread's channel, 1..n (seeds, log lines) */
	const char *options;  /* engine-specific (the fault engine's rates), or NULL */
};

struct lm_engine_ops {
	const char *name;     /* "qpl", "isal", "zlib", "lz4", ...: unique per method */
	uint8_t method;       /* LM_METHOD_* it produces; LM_ENGINE_ANY_METHOD: any */
	bool hardware;
	/* Compiled out: why (e.g. "libqpl not found"); then every hook is NULL. */
	const char *absent;
	/*
	 * Is a device there?  0 = usable, -ENODEV = no device (why says what
	 * was looked for), another -errno = present but unusable.  NULL for an
	 * engine that is always usable (software).  Called once per session,
	 * before any setup, and by `livemig info`.
	 */
	int (*probe)(char *why, size_t why_len);
	/* One context per sender or receiver thread; never shared. */
	int (*setup)(void **ctx, const struct lm_engine_cfg *cfg);
	void (*cleanup)(void *ctx);
	/*
	 * Runs n jobs (n <= cfg->max_jobs) and sets each one's status and len.
	 * A batching engine submits them all, then waits for all of them.
	 * Returns only when no job is still in flight.
	 */
	void (*run)(void *ctx, struct lm_job *jobs, uint32_t n);
	/*
	 * Decodes in[0..len) into exactly out_len bytes at out.  -EPROTO if the
	 * input is corrupt or decodes to any other length.  May be NULL for an
	 * engine that cannot decompress (the method's software decoder is used).
	 */
	int (*decompress)(void *ctx, const uint8_t *in, uint32_t len, uint8_t *out,
			  uint32_t out_len);
};

/* run() for an engine that does one job at a time: job_fn(ctx, job). */
#define LM_ENGINE_RUN_EACH(name, ctx_type, job_fn)                                 \
	static void name(void *ctx, struct lm_job *jobs, uint32_t n)               \
	{                                                                          \
		for (uint32_t i = 0; i < n; i++)                                   \
			job_fn((ctx_type *)ctx, &jobs[i]);                         \
	}

#define LM_ENGINE_ANY_METHOD 0xff

/* Jobs of a page each (qpl, uadk, lz4), or of a whole packet (qatzip)? */
static inline bool lm_method_per_page(uint8_t method)
{
	return method != LM_METHOD_QATZIP;
} /* the test-only fault engine wraps any */

/* Every engine this build knows of, compiled or not, in preference order
 * (hardware first, then software, the test-only engine last). */
const struct lm_engine_ops *const *lm_engine_table(size_t *count);
/* The engine of that name serving that method, or NULL. */
const struct lm_engine_ops *lm_engine_find(uint8_t method, const char *name);
/* The method's first software engine: what the policy falls back to and
 * what receivers decode with.  NULL for a method with no engines. */
const struct lm_engine_ops *lm_engine_fallback(uint8_t method);

#endif
