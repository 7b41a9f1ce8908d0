/* SPDX-License-Identifier: MIT */
/*
 * Method "zstd", engine libzstd.  Each channel keeps one zstd frame open
 * for its whole life: every packet feeds its pages with ZSTD_e_continue and
 * ends with ZSTD_e_flush, which closes the current block so the receiver
 * can decode the packet on arrival while later packets still match against
 * the window.  Packets must be decoded in order on one receiver context;
 * after a failure the context latches it and refuses further work.
 *
 * Pages may change while we read them, and that is safe here: in the
 * default (buffered) input mode ZSTD_compressStream2() memcpy()s input into
 * its own window buffer and compresses from that copy; only ZSTD_e_end may
 * compress straight from the caller's buffer, and we never end the frame.
 * So unlike zlib no bounce buffer is needed; each byte is read once.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "codec/codec.h"

/*
 * Largest window a zstd packet stream may use: level 19 needs 2^23 for an
 * unbounded stream; allow one step more for other engines.  Bounding it
 * keeps garbage input from making the receiver allocate up to 2^27.
 */
#define ZSTD_LM_WINDOW_LOG_MAX 24

/* RFC 8878: a block header is 3 bytes. */
#define ZSTD_LM_BLOCK_HEADER 3u

struct zstd_send {
	ZSTD_CCtx *cctx;
	bool broken;
};

struct zstd_recv {
	ZSTD_DCtx *dctx;
	bool broken;
};

/* Frame header (first packet, <= 18 bytes) and the flush's block headers
 * fit in the margin; compressBound already allows 3 bytes per 128 KiB. */
static size_t zstd_bound(uint32_t npages)
{
	return ZSTD_compressBound((size_t)npages * LM_PAGE_SIZE) + 64;
}

static void zstd_send_cleanup(void *ctx)
{
	struct zstd_send *c = ctx;

	if (!c)
		return;
	ZSTD_freeCCtx(c->cctx);
	free(c);
}

static int zstd_send_setup(void **ctx, int level)
{
	struct zstd_send *c;

	if (level < 1 || level > 19)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cctx = ZSTD_createCCtx();
	if (!c->cctx ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, level))) {
		zstd_send_cleanup(c);
		return -ENOMEM;
	}
	*ctx = c;
	return 0;
}

/* Pages that follow each other in memory go to zstd as one buffer. */
static uint32_t zstd_run(const uint8_t *const *pages, uint32_t i, uint32_t n)
{
	uint32_t j = i + 1;

	while (j < n && pages[j] == pages[j - 1] + LM_PAGE_SIZE)
		j++;
	return j - i;
}

static ssize_t zstd_compress(void *ctx, const uint8_t *const *pages, uint32_t n, uint8_t *out,
			     size_t cap)
{
	struct zstd_send *c = ctx;
	ZSTD_outBuffer ob = { out, cap, 0 };
	ZSTD_inBuffer ib;
	size_t r;

	if (c->broken)
		return -EIO;
	if (n == 0)
		return 0; /* the stream is untouched; the receiver expects len 0 */

	for (uint32_t i = 0; i < n;) {
		uint32_t run = zstd_run(pages, i, n);

		ib = (ZSTD_inBuffer){ pages[i], (size_t)run * LM_PAGE_SIZE, 0 };
		while (ib.pos < ib.size) {
			size_t in0 = ib.pos, out0 = ob.pos;

			r = ZSTD_compressStream2(c->cctx, &ob, &ib, ZSTD_e_continue);
			if (ZSTD_isError(r))
				goto fail;
			if (ib.pos == in0 && ob.pos == out0)
				goto nospace;
		}
		i += run;
	}
	ib = (ZSTD_inBuffer){ NULL, 0, 0 };
	do {
		size_t out0 = ob.pos;

		r = ZSTD_compressStream2(c->cctx, &ob, &ib, ZSTD_e_flush);
		if (ZSTD_isError(r))
			goto fail;
		if (r != 0 && ob.pos == out0)
			goto nospace;
	} while (r != 0);
	return (ssize_t)ob.pos;

nospace:
	/* Part of the packet is inside zstd; the receiver can never catch up. */
	c->broken = true;
	return -ENOSPC;
fail:
	c->broken = true;
	return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? -ENOMEM : -EIO;
}

static void zstd_recv_cleanup(void *ctx)
{
	struct zstd_recv *c = ctx;

	if (!c)
		return;
	ZSTD_freeDCtx(c->dctx);
	free(c);
}

static int zstd_recv_setup(void **ctx)
{
	struct zstd_recv *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->dctx = ZSTD_createDCtx();
	if (!c->dctx || ZSTD_isError(ZSTD_DCtx_setParameter(c->dctx, ZSTD_d_windowLogMax,
							     ZSTD_LM_WINDOW_LOG_MAX))) {
		zstd_recv_cleanup(c);
		return -ENOMEM;
	}
	*ctx = c;
	return 0;
}

static int zstd_decompress_stream(struct zstd_recv *c, const uint8_t *in, size_t len,
				  uint8_t *const *pages, uint32_t n)
{
	ZSTD_inBuffer ib = { in, len, 0 };
	ZSTD_outBuffer ob;
	uint8_t scratch[64];
	size_t r;

	for (uint32_t i = 0; i < n;) {
		uint32_t run = zstd_run((const uint8_t *const *)pages, i, n);

		ob = (ZSTD_outBuffer){ pages[i], (size_t)run * LM_PAGE_SIZE, 0 };
		while (ob.pos < ob.size) {
			size_t in0 = ib.pos, out0 = ob.pos;

			r = ZSTD_decompressStream(c->dctx, &ob, &ib);
			/* r == 0: a frame ended, and our sender never ends one. */
			if (ZSTD_isError(r) || r == 0)
				return -EPROTO;
			if (ib.pos == in0 && ob.pos == out0)
				return -EPROTO; /* truncated */
		}
		i += run;
	}
	/*
	 * The pages are full.  Whatever input is left must decode to nothing
	 * (zstd may still hold decoded bytes, or the input may hold more
	 * blocks): drain into a scratch buffer and insist on zero output.
	 * Call at least once even with no input left, to flush zstd's buffer.
	 */
	for (;;) {
		size_t in0 = ib.pos;

		ob = (ZSTD_outBuffer){ scratch, sizeof(scratch), 0 };
		r = ZSTD_decompressStream(c->dctx, &ob, &ib);
		if (ZSTD_isError(r) || r == 0 || ob.pos != 0)
			return -EPROTO;
		if (ib.pos == in0)
			break;
	}
	/*
	 * All input used, and the decoder must stand at a block boundary: its
	 * hint is then exactly one block header.  Anything else means the
	 * payload was cut inside a block or carries a stray partial header.
	 */
	if (ib.pos != ib.size || r != ZSTD_LM_BLOCK_HEADER)
		return -EPROTO;
	return 0;
}

static int zstd_decompress(void *ctx, const uint8_t *in, size_t len, uint8_t *const *pages,
			   uint32_t n)
{
	struct zstd_recv *c = ctx;
	int r;

	if (c->broken)
		return -EPROTO;
	if (n == 0)
		return len == 0 ? 0 : -EPROTO;
	r = zstd_decompress_stream(c, in, len, pages, n);
	if (r)
		c->broken = true;
	return r;
}

const struct lm_codec_ops lm_codec_zstd_ops = {
	.name = "zstd",
	.method = LM_METHOD_ZSTD,
	.min_level = 1,
	.max_level = 19,
	.default_level = 1,
	.bound = zstd_bound,
	.send_setup = zstd_send_setup,
	.send_cleanup = zstd_send_cleanup,
	.compress = zstd_compress,
	.recv_setup = zstd_recv_setup,
	.recv_cleanup = zstd_recv_cleanup,
	.decompress = zstd_decompress,
};
