/* SPDX-License-Identifier: MIT */
/* multifd-compression=auto: see auto.h.  The model first, then the codec
 * that runs it (lm_codec_auto_ops). */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <lz4.h>

#include "codec/auto.h"
#include "codec/codec.h"
#include "util/util.h"

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
#define PROBE_GAP_FIRST_NS 1000000000ull
#define PROBE_GAP_MAX_NS 8000000000ull
#define PROBE_SHIFT_MAX 4 /* 16 times the base: 64 MiB take 7 ms at 10 GB/s */
#define PROBE_GAIN 1.5
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
	cpu_set_t cpus;
	long n = sched_getaffinity(0, sizeof(cpus), &cpus) ? sysconf(_SC_NPROCESSORS_ONLN)
							   : CPU_COUNT(&cpus);
	a->cpu_share = n >= (long)a->channels || n < 1 ? 1.0 : (double)n / a->channels;
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

/* The channel's time per input byte with m: its compression and its share
 * of the link work at the same time, so the slower of the two. */
static double est_time(const struct lm_auto *a, int m, double ratio)
{
	double r = m == LM_AUTO_NONE ? 1.0 : ratio * a->gain[m];
	if (r < 1.0)
		r = 1.0;
	double link = a->channels / (a->link * r), cpu = 0;
	if (m != LM_AUTO_NONE) /* the test hook's speeds are per channel already */
		cpu = 1.0 / (a->speed[m] * (a->fixed[m] ? 1.0 : a->cpu_share));
	return cpu > link ? cpu : link;
}

/* Raw is at least as fast as any compressor whatever the packet's ratio:
 * the link takes a raw byte no slower than the fastest compressor reads
 * one (t(m) >= its compression time). */
static bool raw_dominates(const struct lm_auto *a)
{
	if (a->link <= 0)
		return false;
	double raw = est_time(a, LM_AUTO_NONE, 1.0);
	for (int m = 1; m < LM_AUTO_N; m++)
		if (est_time(a, m, HUGE_VAL) < raw)
			return false;
	return true;
}

int lm_auto_choose(struct lm_auto *a, const uint8_t *sample)
{
	a->packets++;
	/* Then neither the sample (about 12 us a packet, 6 % of a raw
	 * packet's CPU on loopback) nor a refresh of a compressor's speed
	 * (a compressed packet every 128) can change a choice. */
	if (raw_dominates(a))
		return LM_AUTO_NONE;
	LZ4_resetStream_fast(a->lz4);
	int len = LZ4_compress_fast_continue(a->lz4, (const char *)sample, (char *)a->sample_out,
					     LM_PAGE_SIZE, LM_PAGE_SIZE - 1, 1);
	a->sample_ratio = len > 0 ? (double)LM_PAGE_SIZE / len : 1.0;
	double ent = entropy_ratio(sample);
	if (ent > a->sample_ratio)
		a->sample_ratio = ent;
	if (a->sample_ratio < LM_AUTO_MIN_RATIO)
		return LM_AUTO_NONE;
	/* Nothing measured yet (until the first probe ends): zstd, which is
	 * never far off.  Raw for the first 100 ms cost a tc-shaped 1 Gbit/s
	 * link 0.3 s: those raw packets went into the socket buffers at
	 * memory speed. */
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
	/* Refresh a compressor's stale speed and gain now and then, unless
	 * the test fixed it.  (The link's is the probes' job.) */
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

bool lm_auto_link_due(const struct lm_auto_link *l, uint64_t now_ns)
{
	return !l->win_t || l->probing || now_ns - l->win_t >= LINK_WINDOW_NS;
}

static uint64_t probe_budget(const struct lm_auto_link *l)
{
	uint64_t b = l->probe_bytes > LM_AUTO_PROBE_BYTES ? l->probe_bytes : LM_AUTO_PROBE_BYTES;
	return b << l->probe_shift;
}

static void open_window(struct lm_auto_link *l, uint64_t delivered, uint64_t now_ns)
{
	l->win_t = now_ns;
	l->win_bytes = delivered;
}

/* After a measured probe: the next may start after twice the last wait. */
static void next_probe(struct lm_auto_link *l, uint64_t now_ns)
{
	l->probe_gap = l->probe_gap ? 2 * l->probe_gap : PROBE_GAP_FIRST_NS;
	if (l->probe_gap > PROBE_GAP_MAX_NS)
		l->probe_gap = PROBE_GAP_MAX_NS;
	l->next_probe = now_ns + l->probe_gap;
}

/* Starts a probe at now_ns: the budget to publish. */
static int64_t start_probe(struct lm_auto_link *l, uint64_t now_ns)
{
	l->probing = true;
	l->probe_t = now_ns;
	return (int64_t)probe_budget(l);
}

int64_t lm_auto_link(struct lm_auto_link *l, uint64_t delivered, uint64_t now_ns,
		     bool may_probe)
{
	/* Fewer than before: a replaced connection (channel-recovery) counts
	 * from 0 again.  This window and a probe are lost, as a probe whose
	 * pass ended (a small pass: the next waits PROBE_GAP_FIRST_NS, not
	 * every pass starting with one); the next window starts here. */
	if (!l->win_t || delivered < l->win_bytes || (l->probing && !may_probe)) {
		int64_t publish = l->probing ? 0 : -1;
		if (l->probing)
			l->next_probe = now_ns + PROBE_GAP_FIRST_NS;
		l->probing = false;
		open_window(l, delivered, now_ns);
		if (may_probe && now_ns >= l->next_probe)
			publish = start_probe(l, now_ns);
		return publish;
	}
	uint64_t got = delivered - l->win_bytes, ns = now_ns - l->win_t;
	if (l->probing) {
		/* Nothing acknowledged yet: the clock starts later - at the
		 * last measurement that saw nothing - but not later than
		 * LM_AUTO_PROBE_MAX_NS after the probe began. */
		if (!got && now_ns - l->probe_t < LM_AUTO_PROBE_MAX_NS) {
			l->win_t = now_ns;
			return -1;
		}
		if (got < probe_budget(l) && ns < LM_AUTO_PROBE_MAX_NS)
			return -1;
		double thr = (double)got * 1e9 / (double)(ns ? ns : 1);
		/* Only a clearly faster link: a shaper's burst (tc tbf lets its
		 * bucket through at once) makes a probe read a fraction high. */
		if (thr > PROBE_GAIN * l->rate)
			l->rate = thr;
		open_window(l, delivered, now_ns); /* the probe's bytes are counted */
		if (got >= probe_budget(l)) {
			/* All of it before its time ran out: the link was idle
			 * by the tick that saw it (a late tick: 4 MiB take 2 ms
			 * at 2 GB/s), so thr is a floor.  The next probe, twice
			 * as large, at once. */
			if (l->probe_shift < PROBE_SHIFT_MAX) {
				l->probe_shift++;
				return start_probe(l, now_ns);
			}
		} else if (l->probe_shift) {
			l->probe_shift--; /* out of time: the link is slower now */
		}
		l->probing = false;
		next_probe(l, now_ns);
		return 0;
	}
	if (ns < LINK_WINDOW_NS)
		return -1;
	double thr = (double)got * 1e9 / (double)ns;
	l->rate = l->rate * LINK_DECAY > thr ? l->rate * LINK_DECAY : thr;
	open_window(l, delivered, now_ns);
	if (!may_probe || now_ns < l->next_probe)
		return -1;
	return start_probe(l, now_ns);
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

/* ---- the codec ------------------------------------------------------------ */

/* A sender's auto: its model, and a context per choice made through the
 * registry (the raw choice needs none). */
struct auto_ctx {
	struct lm_auto model;
	const struct lm_codec_ops *codec[LM_AUTO_N];
	void *ctx[LM_AUTO_N];
	const _Atomic uint64_t *link_rate; /* the session's, or NULL */
	_Atomic int64_t *probe_left;       /* the session's, or NULL */
	struct lm_codec_counters *cnt;
	struct lm_codec_counters own_cnt;  /* when the session counts nothing */
};

static size_t auto_bound(uint32_t npages)
{
	size_t b = 0;
	for (int m = 1; m < LM_AUTO_N; m++) {
		size_t mb = lm_codec_by_method(lm_auto_method[m])->bound(npages);
		b = mb > b ? mb : b;
	}
	return b;
}

static void auto_cleanup(void *ctx)
{
	struct auto_ctx *a = ctx;
	if (!a)
		return;
	for (int m = 1; m < LM_AUTO_N; m++)
		if (a->codec[m])
			a->codec[m]->send_cleanup(a->ctx[m]);
	lm_auto_free(&a->model);
	free(a);
}

static int auto_send_setup(void **ctx, const struct lm_codec_cfg *cfg)
{
	struct auto_ctx *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	int r = lm_auto_init(&a->model, cfg->auto_speeds, cfg->channels, cfg->max_bandwidth);
	/* Each choice at its own level (a bad one fails zstd's setup); the
	 * session's engine choice is for its method, so lz4 runs its own. */
	struct lm_codec_cfg sub = *cfg;
	sub.accel = NULL;
	for (int m = 1; m < LM_AUTO_N && !r; m++) {
		a->codec[m] = lm_codec_by_method(lm_auto_method[m]);
		sub.level = lm_auto_level(m, cfg->level);
		r = a->codec[m]->send_setup(&a->ctx[m], &sub);
		if (r)
			a->codec[m] = NULL;
	}
	if (r) {
		auto_cleanup(a);
		return r;
	}
	a->link_rate = cfg->link_rate;
	a->probe_left = cfg->probe_left;
	a->cnt = cfg->counters ? cfg->counters : &a->own_cnt;
	*ctx = a;
	return 0;
}

static ssize_t auto_compress(void *ctx, const uint8_t *const *pages, uint32_t n, uint8_t *out,
			     size_t cap, uint8_t *method)
{
	struct auto_ctx *a = ctx;
	*method = LM_METHOD_NONE;
	if (n == 0)
		return 0;
	if (!a->model.link_fixed && a->link_rate)
		a->model.link = (double)atomic_load_explicit(a->link_rate, memory_order_relaxed);
	uint64_t in = (uint64_t)n * LM_PAGE_SIZE, out_len = in, ns = 0;
	/* A link probe running: raw, drawn from its budget. */
	int choice = a->probe_left && atomic_load_explicit(a->probe_left, memory_order_relaxed) > 0 &&
				     atomic_fetch_sub_explicit(a->probe_left, (int64_t)in,
							       memory_order_relaxed) > 0
			     ? LM_AUTO_NONE
			     : lm_auto_choose(&a->model, pages[0]);
	ssize_t len = 0;
	if (choice != LM_AUTO_NONE) {
		uint64_t t0 = lm_thread_cpu_ns();
		len = a->codec[choice]->compress(a->ctx[choice], pages, n, out, cap, method);
		if (len <= 0)
			return len < 0 ? len : -EIO;
		ns = lm_thread_cpu_ns() - t0;
		out_len = (uint64_t)len;
	}
	lm_auto_update(&a->model, choice, in, out_len, ns);
	_Atomic uint64_t *count = &a->cnt->auto_packets[choice];
	atomic_store_explicit(count, *count + 1, memory_order_relaxed);
	return len;
}

const struct lm_codec_ops lm_codec_auto_ops = {
	.name = "auto",
	.method = LM_METHOD_AUTO,
	.methods = 1u << LM_METHOD_NONE | 1u << LM_METHOD_LZ4 | 1u << LM_METHOD_ZSTD,
	.uses_link = true,
	.engine = "raw, lz4 or zstd per packet, chosen from measured speeds",
	.min_level = 1, /* zstd's: the level of its zstd packets */
	.max_level = 19,
	.default_level = 1,
	.bound = auto_bound,
	.send_setup = auto_send_setup,
	.send_cleanup = auto_cleanup,
	.compress = auto_compress,
};
