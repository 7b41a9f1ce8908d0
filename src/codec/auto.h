/* SPDX-License-Identifier: MIT */
/*
 * multifd-compression=auto: each packet goes raw, as lz4 or as zstd (at
 * multifd-zstd-level or two levels more), whichever this channel expects to
 * finish soonest, from what it measured:
 *
 *   time per input byte  t(m) = max(1 / speed(m), channels / (link x ratio(m)))
 *
 * (the channels compress while the link carries what they sent: the slower
 * of the two sets the pace).  speed(m): input bytes per second the channel
 * compresses with m: the speed of one core (measured in the thread's CPU
 * time) times the share of a core each channel gets, min(1, CPUs the
 * source may run on / channels).  Not wall time: a compression shorter
 * than the scheduler's slice runs unpreempted, and eight channels on one
 * CPU each read as fast as one.  link: what the link carries, in wire
 * bytes per second for the whole session: max-bandwidth when set, else the
 * highest rate at which the peer acknowledged bytes (TCP_INFO) over a
 * 100 ms window or a probe (below), decaying slowly (a link that was seen
 * to carry it can carry it again; the decay forgets a link that got
 * slower).  One owner
 * measures it for the session (the source's control thread, with
 * struct lm_auto_link) and publishes it; every channel's auto reads it
 * through lm_codec_cfg.link_rate.  Acknowledged, not written: writes
 * first fill the socket buffers, megabytes at memory speed, and a
 * tc-shaped 1 Gbit/s link then looked several times faster.  Measuring
 * only how long a channel waits to send would not do: raw packets look free whenever the link is not yet
 * full, and the channels would fill it with raw pages that zstd had made
 * three times smaller.  ratio(m): the packet's expected ratio, from one
 * sampled page - the better of its LZ4 ratio (repeats) and its order-0
 * entropy (what a Huffman stage gains on data with few repeats) - times the
 * method's measured gain over that estimate.  Raw has no compression time
 * and ratio 1.  A sample estimated under LM_AUTO_MIN_RATIO sends the packet
 * raw without trying.  Every 128th packet refreshes the estimate of a
 * compressor not used lately.  While the link takes raw bytes no slower
 * than the fastest compressor reads them, raw wins whatever the ratio:
 * then packets go raw with no sample and no refresh.
 */
#ifndef LM_AUTO_H
#define LM_AUTO_H

#include <stdbool.h>
#include <stdint.h>

#include "util/page.h"

/* The choices: raw, lz4, zstd at multifd-zstd-level, and two levels
 * higher (more ratio for CPU that would otherwise wait on the link). */
enum { LM_AUTO_NONE, LM_AUTO_LZ4, LM_AUTO_ZSTD, LM_AUTO_ZSTD_HI, LM_AUTO_N };
#define LM_AUTO_HI_STEP 2
#define LM_AUTO_MIN_RATIO 1.08

/* The model of one channel: what it measured, and how it chooses. */
struct lm_auto {
	double link;               /* session wire bytes/s the link carries, 0 = unknown */
	unsigned channels;
	double cpu_share;          /* of a core, each channel's: min(1, CPUs / channels) */
	bool link_fixed;           /* max-bandwidth or the test hook */
	double speed[LM_AUTO_N];   /* input bytes/s compressing, on one core */
	double gain[LM_AUTO_N];    /* packet ratio / sampled page ratio */
	uint64_t fixed[LM_AUTO_N]; /* test hook x-auto-speeds: link, lz4, zstd, zstd-hi */
	uint64_t packets;
	uint64_t last_used[LM_AUTO_N];
	double sample_ratio;       /* of the packet being sent */
	void *lz4;                 /* LZ4 state for the sample */
	uint8_t sample_out[LM_PAGE_SIZE];
};

/* The wire method of each choice. */
extern const uint8_t lm_auto_method[LM_AUTO_N];

/* fixed: the test hook's speeds (link, lz4, zstd, zstd-hi; 0 = measure);
 * max_bandwidth: the session's (0 = unlimited). */
int lm_auto_init(struct lm_auto *a, const uint64_t fixed[LM_AUTO_N], unsigned channels,
		 uint64_t max_bandwidth);
/* The level a choice compresses at, for a session's zstd level. */
int lm_auto_level(int choice, int zstd_level);
void lm_auto_free(struct lm_auto *a);
/* The choice (LM_AUTO_*) for a packet whose first normal page is sample. */
int lm_auto_choose(struct lm_auto *a, const uint8_t *sample);
/* After compressing it: input bytes, payload bytes, the thread's CPU ns
 * compressing. */
void lm_auto_update(struct lm_auto *a, int choice, uint64_t in, uint64_t out,
		    uint64_t compress_ns);
/* The link rate, measured for the whole session by one owner: the highest
 * delivery rate over a 100 ms window, decaying slowly (see above), and
 * probes.  A window only sees what the channels offered: while they are
 * busy compressing, a link of 10 GB/s reads as the compressed rate, and
 * the model would keep compressing for ever.  So the owner probes: the
 * channels send a budget raw - l->probe_bytes, two packets per channel,
 * at least LM_AUTO_PROBE_BYTES, so that each channel can send raw and
 * compression in flight does not dominate the measurement (the session's
 * budget, which each auto channel draws on through
 * lm_codec_cfg.probe_left).  The probe's clock starts at the last
 * measurement that saw none of its bytes acknowledged (not later than
 * LM_AUTO_PROBE_MAX_NS after it began: its first packets may still be
 * being picked), and the rate at which all channels' bytes are
 * acknowledged until the budget's worth are (or LM_AUTO_PROBE_MAX_NS has
 * passed on that clock) is what the link carries when offered more; it
 * raises the rate when it is 1.5 times what was believed.  A probe whose
 * budget is all acknowledged before its time ran out measured the owner's
 * ticks as much as the link (4 MiB take 2 ms at 2 GB/s): its rate is a
 * floor, and another probe with twice the budget starts at once, up to 16
 * times the base; the larger budget is kept for later probes, and halved
 * by each that runs out of time.  Probes run only while the senders send,
 * or are about to send, a pass that is not the final one (the guest
 * stopped).  The first starts with the first pass; the next at a window's
 * end after twice the last wait: 1, 2, 4, 8 s, then every 8 s; one that
 * its pass cut short, 1 s later.  A probe that finds nothing costs the
 * link about its budget in raw bytes instead of compressed ones. */
#define LM_AUTO_PROBE_BYTES (4ull << 20)
#define LM_AUTO_PROBE_MAX_NS 30000000ull
struct lm_auto_link {
	double rate;               /* wire bytes/s, 0 = nothing measured yet */
	uint64_t win_t, win_bytes; /* start of the current window, 0 = none yet */
	uint64_t probe_bytes;      /* the base of a probe's budget, set by the
				    * owner (at least LM_AUTO_PROBE_BYTES) */
	bool probing;              /* a probe runs (from win_t, win_bytes) */
	uint64_t probe_t;          /* when it began (ns) */
	unsigned probe_shift;      /* its budget is the base << this */
	uint64_t next_probe;       /* the next may start at (ns) */
	uint64_t probe_gap;        /* ns between the last probe and the next */
};
/* Is a measurement due (no window yet, a probe running, or a window has
 * passed)? */
bool lm_auto_link_due(const struct lm_auto_link *l, uint64_t now_ns);
/* A measurement: the session's bytes delivered so far (all channels: what
 * the peers acknowledged, or else what was written), now, and whether a
 * probe may run (the senders send, or are about to send, a pass that is
 * not the final one).  Opens the first window, or closes the current
 * window (or ends the probe) and updates l->rate; starts a probe when one
 * is due and may run.  A count lower than the window's start (a replaced
 * connection starts from 0) opens a new window; it, or may_probe false,
 * ends a probe unmeasured, and the next may start 1 s later.  Returns the
 * probe budget to publish when it changes: the probe's bytes when one
 * starts, 0 when one ends; -1 otherwise. */
int64_t lm_auto_link(struct lm_auto_link *l, uint64_t delivered, uint64_t now_ns,
		     bool may_probe);

#endif
