/* SPDX-License-Identifier: MIT */
/*
 * Method "zlib", engine zlib.  Like QEMU's multifd-zlib: each channel keeps
 * one deflate stream (zlib wrapper) for its whole life and every packet ends
 * with Z_SYNC_FLUSH, so the receiver can decode a packet as soon as it
 * arrives while later packets still match against earlier ones.  Packets
 * must therefore be decoded in the order they were compressed, on a
 * receiver context that has seen every earlier packet of the channel.  Once
 * a call fails the stream is out of step with the peer; the context latches
 * the failure and every later call fails too.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "codec/codec.h"

/* Pages copied per deflate() call; the bounce buffer holds this many. */
#define ZLIB_BOUNCE_PAGES LM_PACKET_PAGES

/* Z_SYNC_FLUSH ends with an empty stored block whose LEN/NLEN are these. */
static const uint8_t zlib_sync_marker[4] = { 0x00, 0x00, 0xff, 0xff };

struct zlib_send {
	z_stream zs;
	bool broken;
	uint8_t *bounce; /* ZLIB_BOUNCE_PAGES pages */
};

struct zlib_recv {
	z_stream zs;
	bool broken;
};

/*
 * deflateBound() only covers Z_FINISH/Z_NO_FLUSH use.  With flushes, every
 * block is at most the size of a fixed-Huffman block (deflate picks the
 * cheapest of stored/fixed/dynamic, and stored is not always available),
 * and fixed literals cost 9 bits; zlib's own conservative bound for that
 * case (deflate.c, "fixedlen") is len + len/8 + len/256 + len/512 + 4.
 * On top: the 2-byte zlib header (first packet only), the sync flush
 * (partial byte + 3-bit header + 4 bytes), and slack.
 */
static size_t zlib_bound(uint32_t npages)
{
	size_t len = (size_t)npages * LM_PAGE_SIZE;

	return len + (len >> 3) + (len >> 8) + (len >> 9) + 64;
}

static void zlib_send_cleanup(void *ctx)
{
	struct zlib_send *c = ctx;

	if (!c)
		return;
	deflateEnd(&c->zs);
	free(c->bounce);
	free(c);
}

static int zlib_send_setup(void **ctx, const struct lm_codec_cfg *cfg)
{
	int level = cfg->level;
	struct zlib_send *c;

	if (level < 1 || level > 9)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->bounce = malloc((size_t)ZLIB_BOUNCE_PAGES * LM_PAGE_SIZE);
	if (!c->bounce) {
		free(c);
		return -ENOMEM;
	}
	if (deflateInit(&c->zs, level) != Z_OK) {
		free(c->bounce);
		free(c);
		return -ENOMEM;
	}
	*ctx = c;
	return 0;
}

/*
 * deflate() reads its input more than once (match search, then literal
 * output from the window), so a page that changes under it can produce a
 * stream that does not decode to any single snapshot of the page.  Copy
 * each batch of pages into the bounce buffer first and deflate the copy.
 */
static ssize_t zlib_compress(void *ctx, const uint8_t *const *pages, uint32_t n, uint8_t *out,
			     size_t cap, uint8_t *method)
{
	struct zlib_send *c = ctx;
	z_stream *zs = &c->zs;

	*method = LM_METHOD_ZLIB;
	if (c->broken)
		return -EIO;
	if (n == 0)
		return 0; /* the stream is untouched; the receiver expects len 0 */

	zs->next_out = out;
	zs->avail_out = cap > UINT_MAX ? UINT_MAX : (uInt)cap;
	for (uint32_t done = 0; done < n;) {
		uint32_t batch = n - done < ZLIB_BOUNCE_PAGES ? n - done : ZLIB_BOUNCE_PAGES;
		int flush = done + batch == n ? Z_SYNC_FLUSH : Z_NO_FLUSH;

		for (uint32_t i = 0; i < batch; i++)
			memcpy(c->bounce + (size_t)i * LM_PAGE_SIZE, pages[done + i], LM_PAGE_SIZE);
		zs->next_in = c->bounce;
		zs->avail_in = batch * LM_PAGE_SIZE;
		int r = deflate(zs, flush);

		/* Output space ran out: the flush (or the input) is incomplete
		 * and the stream is now out of step with the receiver. */
		if ((r != Z_OK && r != Z_BUF_ERROR) || zs->avail_in != 0 || zs->avail_out == 0) {
			c->broken = true;
			return r == Z_OK || r == Z_BUF_ERROR ? -ENOSPC : -EIO;
		}
		done += batch;
	}
	return (ssize_t)((uint8_t *)zs->next_out - out);
}

static void zlib_recv_cleanup(void *ctx)
{
	struct zlib_recv *c = ctx;

	if (!c)
		return;
	inflateEnd(&c->zs);
	free(c);
}

static int zlib_recv_setup(void **ctx)
{
	struct zlib_recv *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	if (inflateInit(&c->zs) != Z_OK) {
		free(c);
		return -ENOMEM;
	}
	*ctx = c;
	return 0;
}

/* One inflate() step: 1 progress, 0 nothing moved, -1 bad input. */
static int zlib_step(z_stream *zs)
{
	int r = inflate(zs, Z_SYNC_FLUSH);

	/* Z_BUF_ERROR: no progress possible (out of input). */
	if (r == Z_BUF_ERROR)
		return 0;
	/* Our sender never finishes the stream, so Z_STREAM_END is corrupt
	 * input too, like Z_DATA_ERROR and Z_NEED_DICT. */
	return r == Z_OK ? 1 : -1;
}

static int zlib_decompress_stream(struct zlib_recv *c, const uint8_t *in, size_t len,
				  uint8_t *const *pages, uint32_t n)
{
	z_stream *zs = &c->zs;
	uint8_t scratch[64];
	int dt = -1; /* data_type after the last inflate() that made progress */

	/* A sync-flushed packet always ends with the empty stored block. */
	if (len < sizeof(zlib_sync_marker) || len > UINT_MAX ||
	    memcmp(in + len - sizeof(zlib_sync_marker), zlib_sync_marker,
		   sizeof(zlib_sync_marker)) != 0)
		return -EPROTO;

	zs->next_in = (Bytef *)(uintptr_t)in; /* zlib does not write the input */
	zs->avail_in = (uInt)len;
	/* Straight into each page: inflate keeps its own copy of the window,
	 * so the pages need not be contiguous. */
	for (uint32_t i = 0; i < n; i++) {
		zs->next_out = pages[i];
		zs->avail_out = LM_PAGE_SIZE;
		while (zs->avail_out > 0) {
			if (zlib_step(zs) <= 0)
				return -EPROTO; /* corrupt or truncated */
			dt = zs->data_type;
		}
	}
	/*
	 * The pages are full but the input may still hold the tail of the last
	 * block and the sync flush's empty stored block.  Let inflate eat them
	 * into a scratch buffer: any byte produced means the packet held more
	 * than n pages.  inflate() needs output room to make progress, hence
	 * the scratch rather than avail_out = 0.
	 */
	do {
		zs->next_out = scratch;
		zs->avail_out = sizeof(scratch);
		int r = zlib_step(zs);

		if (r < 0 || zs->avail_out != sizeof(scratch))
			return -EPROTO;
		if (r == 0)
			break;
		dt = zs->data_type;
	} while (zs->avail_in != 0);
	if (zs->avail_in != 0)
		return -EPROTO;
	/*
	 * All input used and nothing extra produced; finally the stream must
	 * stand exactly on a block boundary (128), byte aligned (no unused
	 * bits), and not in a final block (64).  That rejects payloads cut
	 * inside the marker and junk appended after it.  Only a call that made
	 * progress reports this: inflate() entered in state TYPE switches to
	 * TYPEDO first, so a no-progress call clears the 128.
	 */
	if (dt != 128)
		return -EPROTO;
	return 0;
}

static int zlib_decompress(void *ctx, const uint8_t *in, size_t len, uint8_t *const *pages,
			   uint32_t n)
{
	struct zlib_recv *c = ctx;
	int r;

	if (c->broken)
		return -EPROTO;
	if (n == 0)
		return len == 0 ? 0 : -EPROTO;
	r = zlib_decompress_stream(c, in, len, pages, n);
	if (r)
		c->broken = true;
	/* Do not leave pointers to the caller's buffers behind. */
	c->zs.next_in = NULL;
	c->zs.next_out = NULL;
	return r;
}

const struct lm_codec_ops lm_codec_zlib_ops = {
	.name = "zlib",
	.method = LM_METHOD_ZLIB,
	.methods = 1u << LM_METHOD_ZLIB,
	.engine = "zlib",
	.version = zlibVersion,
	.min_level = 1,
	.max_level = 9,
	.default_level = 1,
	.bound = zlib_bound,
	.send_setup = zlib_send_setup,
	.send_cleanup = zlib_send_cleanup,
	.compress = zlib_compress,
	.recv_setup = zlib_recv_setup,
	.recv_cleanup = zlib_recv_cleanup,
	.decompress = zlib_decompress,
};
