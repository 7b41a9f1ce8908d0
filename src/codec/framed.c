/* SPDX-License-Identifier: MIT */
/*
 * The methods whose packets are made by engines (src/accel/): lz4, qpl and
 * uadk compress each page on its own, qatzip the packet as one deflate
 * stream.  The payload (docs/wire-format.md, "Engine methods"):
 *
 *   u32 crc      CRC32C of the packet's normal pages, uncompressed, in order
 *   u16 len[n]   per-page methods only: each page's size, 4096 = sent raw
 *   data         the pages' data, in order; for qatzip one deflate stream,
 *                or, when that would not be smaller, the raw pages
 *
 * The content CRC is what catches an engine that returns wrong output and
 * says it is fine (a hardware fault, or the x-fault test engine): LZ4 and
 * raw deflate carry no checksum of their own, and the packet's CRC only
 * covers the bytes as sent.  The receiver decodes into its bounce buffer,
 * checks the CRC, and only then copies the pages into guest memory, so a
 * corrupt packet never touches the guest.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "accel/accel.h"
#include "codec/codec.h"
#include "util/le.h"
#include "util/util.h"

#define FRAMED_RAW LM_PAGE_SIZE /* a page's len when it is sent raw */

struct framed_ctx {
	uint8_t method;
	bool per_page;
	/* Sender. */
	struct lm_accel_choice own; /* when the session gave no choice */
	struct lm_accel acc;
	struct lm_accel_counters own_cnt; /* when the session counts nothing */
	bool acc_ok;
	struct lm_job jobs[LM_PACKET_PAGES];
	/* Both: compressed pages (sender), decoded pages (receiver). */
	uint8_t *stage;
	/* Receiver. */
	const struct lm_engine_ops *dec;
	void *dec_ctx;
};

static size_t framed_bound(uint32_t npages)
{
	/* Raw pages are the worst case: an engine's larger output is dropped. */
	return 4 + 2 * (size_t)npages + (size_t)npages * LM_PAGE_SIZE;
}

static void framed_cleanup(void *ctx)
{
	struct framed_ctx *c = ctx;
	if (!c)
		return;
	if (c->acc_ok)
		lm_accel_cleanup(&c->acc);
	if (c->dec_ctx)
		c->dec->cleanup(c->dec_ctx);
	free(c->stage);
	free(c);
}

static struct framed_ctx *framed_new(uint8_t method)
{
	struct framed_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->method = method;
	c->per_page = lm_method_per_page(method);
	c->stage = malloc((size_t)LM_PACKET_PAGES * LM_PAGE_SIZE);
	if (!c->stage) {
		free(c);
		return NULL;
	}
	return c;
}

static int framed_send_setup(uint8_t method, int lo, int hi, void **ctx,
			     const struct lm_codec_cfg *cfg)
{
	if (cfg->level < lo || cfg->level > hi)
		return -EINVAL;
	struct framed_ctx *c = framed_new(method);
	if (!c)
		return -ENOMEM;
	struct lm_accel_choice *ch = cfg->accel;
	if (!ch) {
		/* No session: the software engine alone. */
		char err[128];
		ch = &c->own;
		if (lm_accel_choose(ch, method, lm_engine_fallback(method)->name, NULL, err,
				    sizeof(err))) {
			framed_cleanup(c);
			return -EINVAL;
		}
	}
	uint32_t jobs = c->per_page ? LM_PACKET_PAGES : 1;
	uint32_t pages = c->per_page ? 1 : LM_PACKET_PAGES;
	int r = lm_accel_setup(&c->acc, ch, cfg->level, jobs, pages, cfg->channel,
			       cfg->counters ? &cfg->counters->acc : &c->own_cnt);
	if (r) {
		framed_cleanup(c);
		return r;
	}
	c->acc_ok = true;
	*ctx = c;
	return 0;
}

static uint32_t pages_crc(const uint8_t *const *pages, uint32_t n)
{
	uint32_t crc = 0;
	for (uint32_t i = 0; i < n; i++)
		crc = lm_crc32c(crc, pages[i], LM_PAGE_SIZE);
	return crc;
}

static ssize_t framed_compress(void *ctx, const uint8_t *const *pages, uint32_t n,
			       uint8_t *out, size_t cap, uint8_t *method)
{
	struct framed_ctx *c = ctx;
	*method = c->method;
	if (cap < framed_bound(n) || n > LM_PACKET_PAGES)
		return -ENOSPC;
	if (n == 0)
		return 0;
	lm_le32(out, pages_crc(pages, n));

	if (!c->per_page) {
		/* One job, written in place; "not smaller" means raw. */
		c->jobs[0] = (struct lm_job){.src = pages, .npages = n, .dst = out + 4,
					     .cap = n * LM_PAGE_SIZE - 1};
		int r = lm_accel_run(&c->acc, c->jobs, 1);
		if (r)
			return r;
		if (c->jobs[0].status == 0)
			return 4 + (ssize_t)c->jobs[0].len;
		for (uint32_t i = 0; i < n; i++)
			memcpy(out + 4 + (size_t)i * LM_PAGE_SIZE, pages[i], LM_PAGE_SIZE);
		return 4 + (ssize_t)n * LM_PAGE_SIZE;
	}

	for (uint32_t i = 0; i < n; i++)
		c->jobs[i] = (struct lm_job){.src = &pages[i], .npages = 1,
					     .dst = c->stage + (size_t)i * LM_PAGE_SIZE,
					     .cap = LM_PAGE_SIZE - 1};
	int r = lm_accel_run(&c->acc, c->jobs, n);
	if (r)
		return r;
	uint8_t *lens = out + 4, *p = lens + 2 * (size_t)n;
	for (uint32_t i = 0; i < n; i++) {
		const struct lm_job *j = &c->jobs[i];
		uint32_t len = j->status == 0 ? j->len : FRAMED_RAW;
		memcpy(p, j->status == 0 ? j->dst : pages[i], len);
		lm_le16(lens + 2 * i, (uint16_t)len);
		p += len;
	}
	return p - out;
}

static int framed_recv_setup(uint8_t method, void **ctx)
{
	struct framed_ctx *c = framed_new(method);
	if (!c)
		return -ENOMEM;
	struct lm_engine_cfg cfg = {.method = method, .level = 1, .max_jobs = 1};
	c->dec = lm_engine_fallback(method);
	int r = c->dec ? c->dec->setup(&c->dec_ctx, &cfg) : -EINVAL;
	if (r) {
		framed_cleanup(c);
		return r;
	}
	*ctx = c;
	return 0;
}

/* Decodes into c->stage; the caller checks the CRC and copies out. */
static int decode(struct framed_ctx *c, const uint8_t *in, size_t len, uint32_t n)
{
	if (!c->per_page) {
		if (len == (size_t)n * LM_PAGE_SIZE) {
			memcpy(c->stage, in, len);
			return 0;
		}
		if (len > (size_t)n * LM_PAGE_SIZE)
			return -EPROTO;
		return c->dec->decompress(c->dec_ctx, in, (uint32_t)len, c->stage,
					  n * LM_PAGE_SIZE);
	}
	if (len < 2 * (size_t)n)
		return -EPROTO;
	const uint8_t *lens = in, *p = in + 2 * (size_t)n, *end = in + len;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t l = lm_rd16(lens + 2 * i);
		uint8_t *dst = c->stage + (size_t)i * LM_PAGE_SIZE;
		if (l == 0 || l > FRAMED_RAW || (size_t)(end - p) < l)
			return -EPROTO;
		if (l == FRAMED_RAW)
			memcpy(dst, p, LM_PAGE_SIZE);
		else if (c->dec->decompress(c->dec_ctx, p, l, dst, LM_PAGE_SIZE))
			return -EPROTO;
		p += l;
	}
	return p == end ? 0 : -EPROTO;
}

static int framed_decompress(void *ctx, const uint8_t *in, size_t len, uint8_t *const *pages,
			     uint32_t n)
{
	struct framed_ctx *c = ctx;
	if (len < 4 || n > LM_PACKET_PAGES || decode(c, in + 4, len - 4, n))
		return -EPROTO;
	if (lm_crc32c(0, c->stage, (size_t)n * LM_PAGE_SIZE) != lm_rd32(in)) /* contiguous */
		return -EPROTO;
	for (uint32_t i = 0; i < n; i++)
		memcpy(pages[i], c->stage + (size_t)i * LM_PAGE_SIZE, LM_PAGE_SIZE);
	return 0;
}

/* One ops table per method; only the method number differs. */
#define FRAMED_METHOD(id, str, lo, hi)                                                    \
	static int id##_send_setup(void **ctx, const struct lm_codec_cfg *cfg)            \
	{                                                                                 \
		return framed_send_setup(LM_METHOD_##id, lo, hi, ctx, cfg);                     \
	}                                                                                 \
	static int id##_recv_setup(void **ctx)                                            \
	{                                                                                 \
		return framed_recv_setup(LM_METHOD_##id, ctx);                            \
	}                                                                                 \
	const struct lm_codec_ops lm_codec_##id##_ops = {                                \
		.name = str,                                                              \
		.method = LM_METHOD_##id,                                                 \
		.methods = 1u << LM_METHOD_##id,                                          \
		.min_level = lo,                                                          \
		.max_level = hi,                                                          \
		.default_level = 1,                                                       \
		.bound = framed_bound,                                                    \
		.send_setup = id##_send_setup,                                            \
		.send_cleanup = framed_cleanup,                                           \
		.compress = framed_compress,                                              \
		.recv_setup = id##_recv_setup,                                            \
		.recv_cleanup = framed_cleanup,                                           \
		.decompress = framed_decompress,                                          \
	}

FRAMED_METHOD(LZ4, "lz4", 1, 1);
FRAMED_METHOD(QPL, "qpl", 1, 1);
FRAMED_METHOD(QATZIP, "qatzip", 1, 9);
FRAMED_METHOD(UADK, "uadk", 1, 1);
