/* SPDX-License-Identifier: MIT */
/*
 * "x-fault": a test-only engine that behaves like bad hardware.  It wraps
 * the method's software engine and, per job, returns busy, fails, or
 * returns corrupt output, at rates given in its options:
 *
 *   busy=P,error=P,corrupt=P,badlen=P,seed=N     (P in 0..1, each optional)
 *
 * badlen: claims success with an output length larger than the buffer.
 *
 * It is reachable only through the x-fault-engine test parameter and exists
 * to prove the fallback policy end to end (tests/unit/test_accel.c and the
 * migration tests).  Draws are from a per-context xorshift seeded from
 * seed and the channel, so a run is repeatable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel/accel.h"
#include "util/util.h"

struct fault_ctx {
	const struct lm_engine_ops *sw;
	void *sw_ctx;
	struct lm_fault_opts o;
	uint64_t rng;
};

/* A rate: decimal digits with at most one '.', in 0..1 ("0.25", "1", ".5");
 * no sign, space, exponent, "nan" or "inf". */
static int parse_rate(const char *s, double *out)
{
	char *end;
	if (strspn(s, "0123456789.") != strlen(s))
		return -EINVAL;
	double v = strtod(s, &end);
	if (end == s || *end || !(v >= 0 && v <= 1))
		return -EINVAL;
	*out = v;
	return 0;
}

/* Parses "busy=0.5,error=0.1,corrupt=0,seed=7" (a name given twice: the
 * last wins); -EINVAL on anything else, an empty field included. */
int lm_fault_parse(const char *opt, struct lm_fault_opts *o)
{
	*o = (struct lm_fault_opts){.seed = 1};
	if (!opt || !*opt)
		return 0;
	size_t pos = 0, len = strlen(opt);
	while (pos <= len) {
		char tok[64], *eq;
		if (lm_next_field(opt, &pos, ',', tok, sizeof(tok)) || !(eq = strchr(tok, '=')))
			return -EINVAL;
		*eq++ = 0;
		if (!strcmp(tok, "seed")) {
			if (lm_parse_uint(eq, 0, UINT64_MAX, &o->seed))
				return -EINVAL;
			continue;
		}
		double *rate = !strcmp(tok, "busy")      ? &o->busy
			       : !strcmp(tok, "error")   ? &o->error
			       : !strcmp(tok, "corrupt") ? &o->corrupt
			       : !strcmp(tok, "badlen")  ? &o->badlen
						       : NULL;
		if (!rate || parse_rate(eq, rate))
			return -EINVAL;
	}
	return 0;
}

static double draw(struct fault_ctx *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return (double)(c->rng >> 11) / (double)(1ull << 53);
}

static void fault_cleanup(void *ctx)
{
	struct fault_ctx *c = ctx;
	if (!c)
		return;
	if (c->sw_ctx)
		c->sw->cleanup(c->sw_ctx);
	free(c);
}

static int fault_setup(void **ctx, const struct lm_engine_cfg *cfg)
{
	struct fault_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->sw = lm_engine_fallback(cfg->method);
	if (!c->sw || lm_fault_parse(cfg->options, &c->o)) {
		free(c);
		return -EINVAL;
	}
	/* A distinct, never-zero stream per channel. */
	c->rng = (c->o.seed * 0x9e3779b97f4a7c15ull) ^
		 ((cfg->channel + 1ull) * 0xbf58476d1ce4e5b9ull);
	if (!c->rng)
		c->rng = 1;
	int r = c->sw->setup(&c->sw_ctx, cfg);
	if (r) {
		free(c);
		return r;
	}
	*ctx = c;
	return 0;
}

static void fault_run(void *ctx, struct lm_job *jobs, uint32_t n)
{
	struct fault_ctx *c = ctx;
	for (uint32_t i = 0; i < n; i++) {
		struct lm_job *j = &jobs[i];
		double d = draw(c);
		if (d < c->o.busy) {
			j->status = -EBUSY;
			continue;
		}
		if (d < c->o.busy + c->o.error) {
			j->status = -EIO;
			continue;
		}
		c->sw->run(c->sw_ctx, j, 1);
		if (j->status == 0 && j->len && draw(c) < c->o.corrupt)
			j->dst[j->len / 2] ^= 0x5a; /* wrong, and says it is fine */
		else if (j->status == 0 && draw(c) < c->o.badlen)
			j->len = j->cap + 1; /* a length no buffer holds */
	}
}

static int fault_decompress(void *ctx, const uint8_t *in, uint32_t len, uint8_t *out,
			    uint32_t out_len)
{
	struct fault_ctx *c = ctx;
	return c->sw->decompress(c->sw_ctx, in, len, out, out_len);
}

const struct lm_engine_ops lm_engine_fault = {
	.name = "x-fault",
	.method = LM_ENGINE_ANY_METHOD,
	.hardware = true, /* the policy treats it exactly as a device */
	.setup = fault_setup,
	.cleanup = fault_cleanup,
	.run = fault_run,
	.decompress = fault_decompress,
};
