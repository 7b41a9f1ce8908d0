/* SPDX-License-Identifier: MIT */
/*
 * Compression methods and engines.  A method is a wire format (the packet's
 * method type field); an engine produces it.  A codec is what a channel
 * compresses with: one wire method ("zstd", ...), or "auto", which picks
 * one of several per packet.  Each sender and receiver thread owns its own
 * context, so nothing here is shared between threads.
 */
#ifndef LM_CODEC_H
#define LM_CODEC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "accel/accel.h"
#include "codec/auto.h"
#include "codec/method.h"
#include "util/page.h"

/* A sender's counters: written by its thread only, read by anyone. */
struct lm_codec_counters {
	struct lm_accel_counters acc;             /* methods made by engines (accel.h) */
	_Atomic uint64_t auto_packets[LM_AUTO_N]; /* auto: packets per choice (LM_AUTO_*) */
};

/* What a sender's context is set up with. */
struct lm_codec_cfg {
	int level;          /* auto: its zstd packets' level */
	uint32_t channel;   /* 1..channels */
	/* Methods with engines: the session's choice (NULL: the method's
	 * software engine) and where this channel counts (NULL: nowhere). */
	struct lm_accel_choice *accel;
	struct lm_codec_counters *counters;
	/* auto only (auto.h explains each). */
	uint32_t channels;                 /* the session's, 0 = 1 */
	uint64_t max_bandwidth;            /* bytes/s, 0 = unlimited */
	const uint64_t *auto_speeds;       /* x-auto-speeds: LM_AUTO_N values, NULL = measure */
	const _Atomic uint64_t *link_rate; /* the session's measured link, bytes/s (0 =
					    * not yet); NULL = never measured */
	_Atomic int64_t *probe_left;       /* the session's link probe: bytes still to
					    * send raw (see lm_auto_link), NULL = none */
};

struct lm_codec_ops {
	const char *name;   /* user-facing name: "none", "zlib", "zstd", ..., "auto" */
	uint8_t method;     /* LM_METHOD_*; LM_METHOD_AUTO for auto */
	uint32_t methods;   /* 1 << LM_METHOD_* of every wire method its packets may
			     * carry: its own, or for auto none|lz4|zstd */
	int min_level, max_level, default_level;
	bool uses_link;     /* compress reads cfg->link_rate: the source measures it */
	/* For listings, a method without engines: what produces it, and the
	 * library's version (NULL: no library).  Engine methods say NULL. */
	const char *engine;
	const char *(*version)(void);
	/* Worst-case payload size of n pages. */
	size_t (*bound)(uint32_t npages);
	/* Sender: one context per channel, kept across packets (streaming). */
	int (*send_setup)(void **ctx, const struct lm_codec_cfg *cfg);
	void (*send_cleanup)(void *ctx); /* accepts NULL */
	/*
	 * Compresses the n pages (each LM_PAGE_SIZE bytes, possibly changing
	 * while read) into out[0..cap).  Ends with a flush so the receiver can
	 * decode exactly these pages.  Always sets *method, the packet's wire
	 * method (one of methods).  Returns
	 *   > 0      payload bytes in out
	 *   0        with *method == LM_METHOD_NONE: send these pages raw (the
	 *            caller sends the pages themselves, out is untouched);
	 *            when n == 0: no payload, *method names the empty packet
	 *   -errno   -ENOSPC (cap too small), -ENOMEM, -EIO (a broken stream)
	 */
	ssize_t (*compress)(void *ctx, const uint8_t *const *pages, uint32_t n, uint8_t *out,
			    size_t cap, uint8_t *method);
	/* Receiver: one context per wire method; NULL for auto, whose
	 * packets carry the method they were made with. */
	int (*recv_setup)(void **ctx);
	void (*recv_cleanup)(void *ctx); /* accepts NULL */
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
/* The registered table, for listings ("livemig info"): every wire method's
 * codec in method order, then auto. */
const struct lm_codec_ops *const *lm_codec_table(size_t *count);

#endif
