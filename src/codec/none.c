/* SPDX-License-Identifier: MIT */
/*
 * Method "none": the payload is the pages themselves.  compress() only
 * gives the verdict "send these pages raw": the sender then writes them
 * straight from guest memory (zero-copy), and the receiver reads them
 * straight into guest memory without calling decompress().  There is no
 * state, so the contexts are NULL.
 */
#include <errno.h>
#include <string.h>

#include "codec/codec.h"

static size_t none_bound(uint32_t npages)
{
	return (size_t)npages * LM_PAGE_SIZE;
}

static int none_send_setup(void **ctx, const struct lm_codec_cfg *cfg)
{
	int level = cfg->level;

	if (level != 0)
		return -EINVAL;
	*ctx = NULL;
	return 0;
}

static void none_cleanup(void *ctx)
{
	(void)ctx;
}

static ssize_t none_compress(void *ctx, const uint8_t *const *pages, uint32_t n, uint8_t *out,
			     size_t cap, uint8_t *method)
{
	(void)ctx;
	(void)pages;
	(void)n;
	(void)out;
	(void)cap;
	*method = LM_METHOD_NONE;
	return 0;
}

static int none_recv_setup(void **ctx)
{
	*ctx = NULL;
	return 0;
}

static int none_decompress(void *ctx, const uint8_t *in, size_t len, uint8_t *const *pages,
			   uint32_t n)
{
	(void)ctx;
	if (len != none_bound(n))
		return -EPROTO;
	for (uint32_t i = 0; i < n; i++)
		memcpy(pages[i], in + (size_t)i * LM_PAGE_SIZE, LM_PAGE_SIZE);
	return 0;
}

const struct lm_codec_ops lm_codec_none_ops = {
	.name = "none",
	.method = LM_METHOD_NONE,
	.methods = 1u << LM_METHOD_NONE,
	.engine = "raw pages (sent from guest memory)",
	.min_level = 0,
	.max_level = 0,
	.default_level = 0,
	.bound = none_bound,
	.send_setup = none_send_setup,
	.send_cleanup = none_cleanup,
	.compress = none_compress,
	.recv_setup = none_recv_setup,
	.recv_cleanup = none_cleanup,
	.decompress = none_decompress,
};
