/* SPDX-License-Identifier: MIT */
/* multifd-compression=auto: see auto.h. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include <lz4.h>

#include "codec/auto.h"
#include "codec/method.h"

const uint8_t lm_auto_method[LM_AUTO_N] = {LM_METHOD_NONE, LM_METHOD_LZ4, LM_METHOD_ZSTD,
					   LM_METHOD_ZSTD};

int lm_auto_level(int choice, int zstd_level)
{
	switch (choice) {
	case LM_AUTO_LZ4:
		return 1;
	case LM_AUTO_ZSTD:
		return zstd_level;
	case LM_AUTO_ZSTD_HI:
		return zstd_level + LM_AUTO_HI_STEP > 19 ? 19 : zstd_level + LM_AUTO_HI_STEP;
	default:
		return 0;
	}
}

/* Starting guesses, replaced by the first measurements: one core of this
 * machine on the corpus (lz4 per page; zstd-1 and zstd-3 per 512 KiB
 * packet: 426 and 247 MB/s, ratio 2.93 and 3.17), and zstd's ratio over a
 * sampled lz4 page (2.93 / 2.0). */
static const double initial_speed[LM_AUTO_N] = {0, 480e6, 400e6, 240e6};
static const double initial_gain[LM_AUTO_N] = {1.0, 1.0, 1.45, 1.57};
#define EWMA 0.25
#define LINK_WINDOW_NS 100000000ull
#define LINK_DECAY 0.99 /* per window: halves in about 7 s */
#define EXPLORE_EVERY 128
#define STALE 256

int lm_auto_init(struct lm_auto *a, const uint64_t fixed[LM_AUTO_N], unsigned channels,
		 uint64_t max_bandwidth)
{
	*a = (struct lm_auto){0};
	for (int m = 0; m < LM_AUTO_N; m++) {
		a->fixed[m] = fixed ? fixed[m] : 0;
		a->speed[m] = a->fixed[m] && m ? (double)a->fixed[m] : initial_speed[m];
		a->gain[m] = initial_gain[m];
	}
	a->channels = channels ? channels : 1;
	a->link = (double)(a->fixed[0] ? a->fixed[0] * a->channels : max_bandwidth);
	a->link_fixed = a->link > 0;
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

/* 8 / (order-0 entropy in bits per byte): what coding each byte by its
 * frequency alone would give. */
static double entropy_ratio(const uint8_t *p)
{
	uint32_t h[256] = {0};
	for (size_t i = 0; i < LM_PAGE_SIZE; i++)
		h[p[i]]++;
	double bits = 0;
	for (int i = 0; i < 256; i++)
		if (h[i]) {
			double q = (double)h[i] / LM_PAGE_SIZE;
			bits -= q * log2(q);
		}
	return bits > 0.5 ? 8.0 / bits : 16.0;
}

static double est_time(const struct lm_auto *a, int m, double ratio)
{
	double r = m == LM_AUTO_NONE ? 1.0 : ratio * a->gain[m];
	if (r < 1.0)
		r = 1.0;
	double t = a->channels / (a->link * r);
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
	double ent = entropy_ratio(sample);
	if (ent > a->sample_ratio)
		a->sample_ratio = ent;
	if (a->sample_ratio < LM_AUTO_MIN_RATIO)
		return LM_AUTO_NONE;
	/* Nothing measured yet (the first 100 ms): zstd, which is never far
	 * off.  Raw here cost a tc-shaped 1 Gbit/s link 0.3 s: the first
	 * window's raw packets went into the socket buffers at memory speed. */
	if (a->link <= 0)
		return LM_AUTO_ZSTD;
	int best = LM_AUTO_NONE;
	double best_t = est_time(a, LM_AUTO_NONE, a->sample_ratio);
	for (int m = 1; m < LM_AUTO_N; m++) {
		double t = est_time(a, m, a->sample_ratio);
		if (t < best_t) {
			best = m;
			best_t = t;
		}
	}
	/* Refresh a stale estimate now and then, unless the test fixed it:
	 * a compressor's speed and gain, or (raw) the link's throughput. */
	if (a->packets % EXPLORE_EVERY == 0) {
		for (int m = 0; m < LM_AUTO_N; m++)
			if (m != best && !(m ? a->fixed[m] : a->link_fixed) &&
			    a->packets - a->last_used[m] > STALE)
				return m;
	}
	return best;
}

static void ewma(double *x, double v)
{
	*x = *x > 0 ? *x + EWMA * (v - *x) : v;
}

bool lm_auto_link_due(const struct lm_auto *a, uint64_t now_ns)
{
	return !a->link_fixed && (!a->win_t || now_ns - a->win_t >= LINK_WINDOW_NS);
}

void lm_auto_link(struct lm_auto *a, uint64_t delivered, uint64_t now_ns)
{
	if (a->link_fixed)
		return;
	if (!a->win_t) {
		a->win_t = now_ns;
		a->win_bytes = delivered;
		return;
	}
	if (now_ns - a->win_t < LINK_WINDOW_NS)
		return;
	double thr = (double)(delivered - a->win_bytes) * 1e9 / (double)(now_ns - a->win_t);
	a->link = a->link * LINK_DECAY > thr ? a->link * LINK_DECAY : thr;
	a->win_t = now_ns;
	a->win_bytes = delivered;
}

void lm_auto_update(struct lm_auto *a, int choice, uint64_t in, uint64_t out,
		    uint64_t compress_ns)
{
	a->last_used[choice] = a->packets;
	if (choice == LM_AUTO_NONE || !in || !out)
		return;
	if (!a->fixed[choice])
		ewma(&a->speed[choice], (double)in * 1e9 / (double)(compress_ns ? compress_ns : 1));
	ewma(&a->gain[choice], (double)in / (double)out / a->sample_ratio);
}
