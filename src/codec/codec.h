/* SPDX-License-Identifier: MIT */
/*
 * Compression methods and engines.  A method is a wire format (the packet's
 * method type field); an engine produces it.  Each sender and receiver thread
 * owns its own context, so nothing here is shared between threads.
 */
#ifndef LM_CODEC_H
#define LM_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/method.h"
#include "util/page.h"

struct lm_accel_choice;
struct lm_accel_counters;

/* What a sender's context is set up with. */
struct lm_codec_cfg {
	int level;
	uint32_t channel;
	/* Methods with engines: the session's choice (NULL: the method's
	 * software engine) and where this channel counts its jobs (NULL: not
	 * counted). */
	struct lm_accel_choice *accel;
	struct lm_accel_counters *counters;
};

struct lm_codec_ops {
	const char *name;   /* user-facing name: "none", "zlib", "zstd", ... */
	uint8_t method;     /* LM_METHOD_* on the wire */
	int min_level, max_level, default_level;
	/* Worst-case compressed size of n pages. */
	size_t (*bound)(uint32_t npages);
	/* Sender: one context per channel, kept across packets (streaming). */
	int (*send_setup)(void **ctx, const struct lm_codec_cfg *cfg);
	void (*send_cleanup)(void *ctx);
	/*
	 * Compresses the n pages (each LM_PAGE_SIZE bytes, possibly changing
	 * while read) into out[0..cap).  Ends with a flush so the receiver can
	 * decode exactly these pages.  Returns bytes written or -errno.
	 */
	ssize_t (*compress)(void *ctx, const uint8_t *const *pages, uint32_t n,
			    uint8_t *out, size_t cap);
	/* Receiver: one context per channel. */
	int (*recv_setup)(void **ctx);
	void (*recv_cleanup)(void *ctx);
	/*
	 * Decodes in[0..len) into exactly n pages.  -EPROTO if the input is
	 * corrupt, does not yield exactly n pages, or leaves input unused.
	 */
	int (*decompress)(void *ctx, const uint8_t *in, size_t len, uint8_t *const *pages,
			  uint32_t n);
};

/* NULL if unknown. */
const struct lm_codec_ops *lm_codec_by_name(const char *name);
const struct lm_codec_ops *lm_codec_by_method(uint8_t method);
/* The registered table, for listings ("livemig info"). */
const struct lm_codec_ops *const *lm_codec_table(size_t *count);

#endif
