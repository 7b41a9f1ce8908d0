/* SPDX-License-Identifier: MIT */
/*
 * The codec registry: one explicit const table, in wire-method order, then
 * auto (which makes its packets with the others).  No constructors and
 * nothing that changes at run time, so lookups need no locking and the
 * table can be read from any thread.
 */
#include <string.h>

#include "codec/codec.h"

/* Defined in none.c, zlib.c, zstd.c, framed.c, auto.c; only this file
 * names them. */
extern const struct lm_codec_ops lm_codec_none_ops;
extern const struct lm_codec_ops lm_codec_zlib_ops;
extern const struct lm_codec_ops lm_codec_zstd_ops;
extern const struct lm_codec_ops lm_codec_LZ4_ops, lm_codec_QPL_ops, lm_codec_QATZIP_ops,
	lm_codec_UADK_ops;
extern const struct lm_codec_ops lm_codec_auto_ops;

static const struct lm_codec_ops *const codec_table[] = {
	&lm_codec_none_ops,
	&lm_codec_zlib_ops,
	&lm_codec_zstd_ops,
	&lm_codec_LZ4_ops,
	&lm_codec_QPL_ops,
	&lm_codec_QATZIP_ops,
	&lm_codec_UADK_ops,
	&lm_codec_auto_ops,
};

#define CODEC_COUNT (sizeof(codec_table) / sizeof(codec_table[0]))

const struct lm_codec_ops *lm_codec_by_name(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < CODEC_COUNT; i++)
		if (strcmp(codec_table[i]->name, name) == 0)
			return codec_table[i];
	return NULL;
}

const struct lm_codec_ops *lm_codec_by_method(uint8_t method)
{
	for (size_t i = 0; i < CODEC_COUNT; i++)
		if (codec_table[i]->method == method)
			return codec_table[i];
	return NULL;
}

const struct lm_codec_ops *const *lm_codec_table(size_t *count)
{
	if (count)
		*count = CODEC_COUNT;
	return codec_table;
}
