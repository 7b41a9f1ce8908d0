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

struct fault_ctx {
	const struct lm_engine_ops *sw;
	void *sw_ctx;
	struct lm_fault_opts o;
	uint64_t rng;
};

/* Parses "busy=0.5,error=0.1,corrupt=0,seed=7"; -EINVAL on anything else. */
int lm_fault_parse(const char *opt, struct lm_fault_opts *o)
{
	*o = (struct lm_fault_opts){.seed = 1};
	if (!opt || !*opt)
		return 0;
	char buf[256];
	if (strlen(opt) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, opt);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '='), *end;
		if (!eq)
			return -EINVAL;
		*eq++ = 0;
		if (!strcmp(tok, "seed")) {
			o->seed = strtoull(eq, &end, 10);
		} else {
			double v = strtod(eq, &end);
			if (v < 0 || v > 1 || end == eq)
				return -EINVAL;
			if (!strcmp(tok, "busy"))
				o->busy = v;
			else if (!strcmp(tok, "error"))
				o->error = v;
			else if (!strcmp(tok, "corrupt"))
				o->corrupt = v;
			else if (!strcmp(tok, "badlen"))
				o->badlen = v;
			else
				return -EINVAL;
		}
		if (*end)
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
