/* SPDX-License-Identifier: MIT */
/* multifd-compression=auto: see auto.h. */
#include <errno.h>
#include <stdlib.h>

#include <lz4.h>

#include "codec/auto.h"

const uint8_t lm_auto_method[LM_AUTO_N] = {LM_METHOD_NONE, LM_METHOD_LZ4, LM_METHOD_ZSTD};

/* Starting guesses, replaced by the first measurements: one core of this
 * machine on the corpus (lz4 per page, zstd-1 per packet), and zstd's ratio
 * over a sampled lz4 page (2.93 / 2.0). */
static const double initial_speed[LM_AUTO_N] = {0, 600e6, 350e6};
static const double initial_gain[LM_AUTO_N] = {1.0, 1.0, 1.45};
#define EWMA 0.25
#define EXPLORE_EVERY 32
#define STALE 64

int lm_auto_init(struct lm_auto *a, const uint64_t fixed[3])
{
	*a = (struct lm_auto){0};
	for (int i = 0; i < 3; i++)
		a->fixed[i] = fixed ? fixed[i] : 0;
	for (int m = 0; m < LM_AUTO_N; m++) {
		a->speed[m] = initial_speed[m];
		a->gain[m] = initial_gain[m];
	}
	a->link = (double)a->fixed[0];
	if (a->fixed[1])
		a->speed[LM_AUTO_LZ4] = (double)a->fixed[1];
	if (a->fixed[2])
		a->speed[LM_AUTO_ZSTD] = (double)a->fixed[2];
	a->lz4 = malloc(sizeof(LZ4_stream_t));
	if (!a->lz4)
		return -ENOMEM;
	LZ4_initStream(a->lz4, sizeof(LZ4_stream_t));
	return 0;
}

void lm_auto_free(struct lm_auto *a)
{
	free(a->lz4);
	a->lz4 = NULL;
}

static double est_time(const struct lm_auto *a, int m, double ratio)
{
	double r = m == LM_AUTO_NONE ? 1.0 : ratio * a->gain[m];
	if (r < 1.0)
		r = 1.0;
	double t = 1.0 / (a->link * r);
	if (m != LM_AUTO_NONE)
		t += 1.0 / a->speed[m];
	return t;
}

int lm_auto_choose(struct lm_auto *a, const uint8_t *sample)
{
	a->packets++;
	LZ4_resetStream_fast(a->lz4);
	int len = LZ4_compress_fast_continue(a->lz4, (const char *)sample, (char *)a->sample_out,
					     LM_PAGE_SIZE, LM_PAGE_SIZE - 1, 1);
	a->sample_ratio = len > 0 ? (double)LM_PAGE_SIZE / len : 1.0;
	if (a->link <= 0) /* nothing measured yet: raw shows what the link gives */
		return LM_AUTO_NONE;
	if (a->sample_ratio < LM_AUTO_MIN_RATIO)
		return LM_AUTO_NONE;
	int best = LM_AUTO_NONE;
	double best_t = est_time(a, LM_AUTO_NONE, a->sample_ratio);
	for (int m = 1; m < LM_AUTO_N; m++) {
		double t = est_time(a, m, a->sample_ratio);
		if (t < best_t) {
			best = m;
			best_t = t;
		}
	}
	/* Refresh a stale estimate now and then, unless the test fixed it. */
	if (a->packets % EXPLORE_EVERY == 0) {
		for (int m = 1; m < LM_AUTO_N; m++)
			if (m != best && !a->fixed[m] && a->packets - a->last_used[m] > STALE)
				return m;
	}
	return best;
}

static void ewma(double *x, double v)
{
	*x = *x > 0 ? *x + EWMA * (v - *x) : v;
}

void lm_auto_update(struct lm_auto *a, int choice, uint64_t in, uint64_t out,
		    uint64_t compress_ns, uint64_t wire, uint64_t send_ns)
{
	a->last_used[choice] = a->packets;
	if (!a->fixed[0] && wire)
		ewma(&a->link, (double)wire * 1e9 / (double)(send_ns ? send_ns : 1));
	if (choice == LM_AUTO_NONE || !in || !out)
		return;
	if (!a->fixed[choice])
		ewma(&a->speed[choice], (double)in * 1e9 / (double)(compress_ns ? compress_ns : 1));
	ewma(&a->gain[choice], (double)in / (double)out / a->sample_ratio);
}
