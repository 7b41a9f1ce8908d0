/* SPDX-License-Identifier: MIT */
/*
 * The engine registry: one const table, hardware engines first, so that
 * "the best engine of a method" is "the first usable one in the table".
 * An engine whose library was not found at build time still has an entry,
 * with only its name and the reason, so `livemig info` and a forced
 * compression-engine can say why it is missing.
 */
#include <string.h>

#include "accel/engine.h"
#include "config.h"
#include "codec/method.h"

extern const struct lm_engine_ops lm_engine_isal_qpl, lm_engine_isal_qatzip,
	lm_engine_isal_uadk, lm_engine_zlib_qpl, lm_engine_zlib_qatzip, lm_engine_zlib_uadk,
	lm_engine_lz4, lm_engine_fault;

#if LM_HAVE_QPL
extern const struct lm_engine_ops lm_engine_qpl;
#define QPL_ENGINE (&lm_engine_qpl)
#else
static const struct lm_engine_ops qpl_absent = {
	.name = "qpl", .method = LM_METHOD_QPL, .hardware = true,
	.absent = "libqpl not found"};
#define QPL_ENGINE (&qpl_absent)
#endif

#if LM_HAVE_QATZIP
extern const struct lm_engine_ops lm_engine_qatzip;
#define QATZIP_ENGINE (&lm_engine_qatzip)
#else
static const struct lm_engine_ops qatzip_absent = {
	.name = "qatzip", .method = LM_METHOD_QATZIP, .hardware = true,
	.absent = "libqatzip not found"};
#define QATZIP_ENGINE (&qatzip_absent)
#endif

#if LM_HAVE_UADK
extern const struct lm_engine_ops lm_engine_uadk;
#define UADK_ENGINE (&lm_engine_uadk)
#else
static const struct lm_engine_ops uadk_absent = {
	.name = "uadk", .method = LM_METHOD_UADK, .hardware = true,
	.absent = "libwd_comp (UADK) not found"};
#define UADK_ENGINE (&uadk_absent)
#endif

static const struct lm_engine_ops *const engine_table[] = {
	QPL_ENGINE,
	QATZIP_ENGINE,
	UADK_ENGINE,
	&lm_engine_isal_qpl,
	&lm_engine_isal_qatzip,
	&lm_engine_isal_uadk,
	&lm_engine_lz4,
	&lm_engine_zlib_qpl,
	&lm_engine_zlib_qatzip,
	&lm_engine_zlib_uadk,
	&lm_engine_fault,
};

#define ENGINE_COUNT (sizeof(engine_table) / sizeof(engine_table[0]))

const struct lm_engine_ops *const *lm_engine_table(size_t *count)
{
	*count = ENGINE_COUNT;
	return engine_table;
}

const struct lm_engine_ops *lm_engine_find(uint8_t method, const char *name)
{
	for (size_t i = 0; i < ENGINE_COUNT; i++) {
		const struct lm_engine_ops *e = engine_table[i];
		if ((e->method == method || e->method == LM_ENGINE_ANY_METHOD) &&
		    !strcmp(e->name, name))
			return e;
	}
	return NULL;
}

const struct lm_engine_ops *lm_engine_fallback(uint8_t method)
{
	for (size_t i = 0; i < ENGINE_COUNT; i++) {
		const struct lm_engine_ops *e = engine_table[i];
		if (e->method == method && !e->hardware && !e->absent)
			return e;
	}
	return NULL;
}
