/* SPDX-License-Identifier: MIT */
/*
 * The software engines: ISA-L igzip and zlib for the deflate methods (qpl,
 * qatzip, uadk) and liblz4 for lz4.  They are what every method falls back
 * to, so they must work on any machine, and they are the reference the
 * hardware engines' output is decoded with.
 *
 * One implementation per library serves every deflate method; the method
 * only decides the wrapper (raw deflate, or zlib's header and Adler-32) and
 * whether a job is a page or a packet of pages.  A packet's pages are not
 * contiguous, so both libraries are fed page by page from one stream.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/igzip_lib.h>
#include <lz4.h>
#include <zlib.h>

#include "accel/engine.h"
#include "codec/method.h"
#include "util/page.h"

static bool method_zlib_wrapped(uint8_t method)
{
	return method == LM_METHOD_UADK;
}

/* ---- ISA-L igzip --------------------------------------------------------- */

struct isal_ctx {
	struct isal_zstream zs;
	struct inflate_state inf;
	uint8_t *level_buf;
	uint32_t level_buf_size;
	int level; /* igzip's 0..3 */
	bool zlib;
};

/* The methods' levels 1..9 onto igzip's 1..3.  igzip's level 0 is not
 * used: per page on the corpus it is 7x faster than zlib-1 but its ratio is
 * 19 % lower (1.95 against 2.41); level 1 is 3x faster at 0.5 % lower. */
static int isal_level(int level)
{
	return level <= 1 ? 1 : level <= 5 ? 2 : 3;
}

/* igzip's token buffer: the large one for a packet; for a page the small
 * one, which less memory to set up makes faster (per page, one thread, the
 * corpus: 239-250 against 208-245 MB/s, same ratio). */
static uint32_t isal_level_buf_size(int level, bool page)
{
	switch (level) {
	case 1:
		return page ? ISAL_DEF_LVL1_SMALL : ISAL_DEF_LVL1_LARGE;
	case 2:
		return page ? ISAL_DEF_LVL2_SMALL : ISAL_DEF_LVL2_LARGE;
	default:
		return page ? ISAL_DEF_LVL3_SMALL : ISAL_DEF_LVL3_LARGE;
	}
}

static void isal_cleanup(void *ctx)
{
	struct isal_ctx *c = ctx;
	if (!c)
		return;
	free(c->level_buf);
	free(c);
}

static int isal_setup(void **ctx, const struct lm_engine_cfg *cfg)
{
	struct isal_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->level = isal_level(cfg->level);
	c->level_buf_size = isal_level_buf_size(c->level, false);
	c->level_buf = malloc(c->level_buf_size);
	c->zlib = method_zlib_wrapped(cfg->method);
	if (!c->level_buf) {
		isal_cleanup(c);
		return -ENOMEM;
	}
	*ctx = c;
	return 0;
}

static void isal_job(struct isal_ctx *c, struct lm_job *j)
{
	struct isal_zstream *zs = &c->zs;

	isal_deflate_init(zs);
	zs->level = (uint32_t)c->level;
	zs->level_buf = c->level_buf;
	zs->level_buf_size = isal_level_buf_size(c->level, j->npages == 1);
	zs->gzip_flag = c->zlib ? IGZIP_ZLIB : IGZIP_DEFLATE;
	zs->flush = NO_FLUSH;
	zs->next_out = j->dst;
	zs->avail_out = j->cap;
	for (uint32_t i = 0; i < j->npages; i++) {
		zs->next_in = (uint8_t *)j->src[i];
		zs->avail_in = LM_PAGE_SIZE;
		zs->end_of_stream = i + 1 == j->npages;
		if (isal_deflate(zs) != COMP_OK) {
			j->status = -EIO;
			return;
		}
		if (zs->avail_in) { /* output full before the input ran out */
			j->status = -ENOSPC;
			return;
		}
	}
	if (zs->internal_state.state != ZSTATE_END) {
		j->status = -ENOSPC;
		return;
	}
	j->len = zs->total_out;
	j->status = 0;
}

LM_ENGINE_RUN_EACH(isal_run, struct isal_ctx, isal_job)

static int isal_decompress(void *ctx, const uint8_t *in, uint32_t len, uint8_t *out,
			   uint32_t out_len)
{
	struct isal_ctx *c = ctx;
	struct inflate_state *st = &c->inf;

	isal_inflate_init(st);
	st->crc_flag = c->zlib ? ISAL_ZLIB : ISAL_DEFLATE;
	st->next_in = (uint8_t *)in;
	st->avail_in = len;
	st->next_out = out;
	st->avail_out = out_len;
	int r = isal_inflate(st);
	/* igzip reads ahead into its bit buffer: input left over after the
	 * stream is avail_in plus the whole bytes still buffered. */
	if (r != ISAL_DECOMP_OK || st->block_state != ISAL_BLOCK_FINISH || st->avail_out ||
	    st->avail_in || st->read_in_length >= 8)
		return -EPROTO;
	return 0;
}

/* ---- zlib ------------------------------------------------------------------ */

struct zlib_ctx {
	z_stream d, i;
	bool d_ok, i_ok;
};

static void zlib_cleanup(void *ctx)
{
	struct zlib_ctx *c = ctx;
	if (!c)
		return;
	if (c->d_ok)
		deflateEnd(&c->d);
	if (c->i_ok)
		inflateEnd(&c->i);
	free(c);
}

static int zlib_setup(void **ctx, const struct lm_engine_cfg *cfg)
{
	struct zlib_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/* Negative window bits: raw deflate; positive: the zlib wrapper. */
	int wbits = method_zlib_wrapped(cfg->method) ? 15 : -15;
	int level = cfg->level < 1 ? 1 : cfg->level > 9 ? 9 : cfg->level;
	c->d_ok = deflateInit2(&c->d, level, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) == Z_OK;
	c->i_ok = inflateInit2(&c->i, wbits) == Z_OK;
	if (!c->d_ok || !c->i_ok) {
		zlib_cleanup(c);
		return -ENOMEM;
	}
	*ctx = c;
	return 0;
}

static void zlib_job(struct zlib_ctx *c, struct lm_job *j)
{
	z_stream *z = &c->d;

	deflateReset(z);
	z->next_out = j->dst;
	z->avail_out = j->cap;
	int r = Z_OK;
	for (uint32_t i = 0; i < j->npages && r == Z_OK; i++) {
		z->next_in = (Bytef *)j->src[i];
		z->avail_in = LM_PAGE_SIZE;
		r = deflate(z, i + 1 == j->npages ? Z_FINISH : Z_NO_FLUSH);
		if (r == Z_OK && i + 1 < j->npages && z->avail_in)
			r = Z_BUF_ERROR; /* output full */
	}
	if (r == Z_STREAM_END) {
		j->len = (uint32_t)z->total_out;
		j->status = 0;
	} else {
		/* Z_OK or Z_BUF_ERROR after Z_FINISH: out of room. */
		j->status = r == Z_OK || r == Z_BUF_ERROR ? -ENOSPC : -EIO;
	}
}

LM_ENGINE_RUN_EACH(zlib_run, struct zlib_ctx, zlib_job)

static int zlib_decompress(void *ctx, const uint8_t *in, uint32_t len, uint8_t *out,
			   uint32_t out_len)
{
	struct zlib_ctx *c = ctx;
	z_stream *z = &c->i;

	inflateReset(z);
	z->next_in = (Bytef *)in;
	z->avail_in = len;
	z->next_out = out;
	z->avail_out = out_len;
	if (inflate(z, Z_FINISH) != Z_STREAM_END || z->avail_out || z->avail_in)
		return -EPROTO;
	return 0;
}

/* ---- lz4 --------------------------------------------------------------------
 * One block per page.  An LZ4 block has no checksum and a corrupt one can
 * decode to the right length; the methods' content CRC catches that. */

struct lz4_ctx {
	int accel;
	LZ4_stream_t st; /* reused: no allocation per page */
};

static int lz4_setup(void **ctx, const struct lm_engine_cfg *cfg)
{
	struct lz4_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->accel = cfg->level < 1 ? 1 : cfg->level;
	LZ4_initStream(&c->st, sizeof(c->st));
	*ctx = c;
	return 0;
}

static void lz4_cleanup(void *ctx)
{
	free(ctx);
}

static void lz4_run(void *ctx, struct lm_job *jobs, uint32_t n)
{
	struct lz4_ctx *c = ctx;
	for (uint32_t i = 0; i < n; i++) {
		struct lm_job *j = &jobs[i];
		if (j->npages != 1) {
			j->status = -EINVAL;
			continue;
		}
		/* A fast reset, not a 16 KiB clear per page: no history. */
		LZ4_resetStream_fast(&c->st);
		int r = LZ4_compress_fast_continue(&c->st, (const char *)j->src[0],
						   (char *)j->dst, LM_PAGE_SIZE, (int)j->cap,
						   c->accel);
		j->status = r > 0 ? 0 : -ENOSPC;
		j->len = r > 0 ? (uint32_t)r : 0;
	}
}

static int lz4_decompress(void *ctx, const uint8_t *in, uint32_t len, uint8_t *out,
			  uint32_t out_len)
{
	(void)ctx;
	int r = LZ4_decompress_safe((const char *)in, (char *)out, (int)len, (int)out_len);
	return r == (int)out_len ? 0 : -EPROTO;
}

/* ---- the ops, one per method served ----------------------------------------- */

#define ISAL_ENGINE(m)                                                                    \
	{                                                                                 \
		.name = "isal", .method = (m), .setup = isal_setup, .cleanup = isal_cleanup, \
		.run = isal_run, .decompress = isal_decompress,                           \
	}
#define ZLIB_ENGINE(m)                                                                    \
	{                                                                                 \
		.name = "zlib", .method = (m), .setup = zlib_setup, .cleanup = zlib_cleanup, \
		.run = zlib_run, .decompress = zlib_decompress,                           \
	}

const struct lm_engine_ops lm_engine_isal_qpl = ISAL_ENGINE(LM_METHOD_QPL);
const struct lm_engine_ops lm_engine_isal_qatzip = ISAL_ENGINE(LM_METHOD_QATZIP);
const struct lm_engine_ops lm_engine_isal_uadk = ISAL_ENGINE(LM_METHOD_UADK);
const struct lm_engine_ops lm_engine_zlib_qpl = ZLIB_ENGINE(LM_METHOD_QPL);
const struct lm_engine_ops lm_engine_zlib_qatzip = ZLIB_ENGINE(LM_METHOD_QATZIP);
const struct lm_engine_ops lm_engine_zlib_uadk = ZLIB_ENGINE(LM_METHOD_UADK);
const struct lm_engine_ops lm_engine_lz4 = {
	.name = "lz4",
	.method = LM_METHOD_LZ4,
	.setup = lz4_setup,
	.cleanup = lz4_cleanup,
	.run = lz4_run,
	.decompress = lz4_decompress,
};
