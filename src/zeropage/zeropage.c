/* SPDX-License-Identifier: MIT */
/* The zero-page engine registry and the policy that picks one: see
 * zeropage.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "zeropage/zeropage.h"

/* Defined in zero.c and dsa.c; only this file names them. */
extern const struct lm_zeropage_ops lm_zeropage_multifd_ops;
extern const struct lm_zeropage_ops lm_zeropage_dsa_ops;

/* zero-page-detection=none: nothing is zero, so nothing is read. */
static int none_open(void **ctx, const struct lm_zeropage_cfg *cfg, char *why, size_t len)
{
	(void)cfg;
	(void)why;
	(void)len;
	*ctx = NULL;
	return 0;
}

static int none_probe(char *why, size_t len)
{
	snprintf(why, len, "no detection: every page is sent with its content");
	return 0;
}

static void none_close(void *ctx)
{
	(void)ctx;
}

static void none_check(void *ctx, const uint8_t *const *pages, uint32_t n, bool *zero)
{
	(void)ctx;
	(void)pages;
	memset(zero, 0, n * sizeof(*zero));
}

static const struct lm_zeropage_ops none_ops = {
	.name = "none",
	.probe = none_probe,
	.open = none_open,
	.close = none_close,
	.check = none_check,
};

static const struct lm_zeropage_ops *const zeropage_table[] = {
	&none_ops,
	&lm_zeropage_multifd_ops,
	&lm_zeropage_dsa_ops,
};

#define ZEROPAGE_COUNT (sizeof(zeropage_table) / sizeof(zeropage_table[0]))

const struct lm_zeropage_ops *lm_zeropage_by_name(const char *name)
{
	for (size_t i = 0; name && i < ZEROPAGE_COUNT; i++)
		if (!strcmp(zeropage_table[i]->name, name))
			return zeropage_table[i];
	return NULL;
}

const struct lm_zeropage_ops *const *lm_zeropage_table(size_t *count)
{
	if (count)
		*count = ZEROPAGE_COUNT;
	return zeropage_table;
}

int lm_zeropage_open(struct lm_zeropage *zp, const char *name,
		     const struct lm_zeropage_cfg *cfg, char *note, size_t len)
{
	char why[200] = "";
	*zp = (struct lm_zeropage){lm_zeropage_by_name(name), NULL};
	note[0] = 0;
	if (!zp->ops) {
		snprintf(note, len, "zero-page-detection: unknown engine '%s'", name ? name : "");
		return -EINVAL;
	}
	int r = zp->ops->open(&zp->ctx, cfg, why, sizeof(why));
	if (!r) {
		if (why[0])
			snprintf(note, len, "zero-page-detection=%s: %s", name, why);
		return 0;
	}
	/* The user's mistake is an error; the machine's (no device, no
	 * driver, no permission) is not: the CPU finds zero pages too. */
	if (r == -EINVAL || zp->ops == &lm_zeropage_multifd_ops) {
		snprintf(note, len, "%s", why[0] ? why : strerror(-r));
		zp->ops = NULL;
		return r;
	}
	snprintf(note, len, "zero-page-detection=%s: %s; detecting zero pages on the CPU", name,
		 why);
	zp->ops = &lm_zeropage_multifd_ops;
	r = zp->ops->open(&zp->ctx, cfg, why, sizeof(why));
	if (r) {
		snprintf(note, len, "zero-page-detection=multifd: %s", why[0] ? why : strerror(-r));
		zp->ops = NULL;
		return r;
	}
	return LM_ZEROPAGE_FALLBACK;
}

void lm_zeropage_close(struct lm_zeropage *zp)
{
	if (zp->ops)
		zp->ops->close(zp->ctx);
	*zp = (struct lm_zeropage){NULL, NULL};
}
