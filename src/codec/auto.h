/* SPDX-License-Identifier: MIT */
/*
 * multifd-compression=auto: each packet goes raw, as lz4 or as zstd,
 * whichever this channel expects to finish soonest, from what it measured:
 *
 *   time per input byte  t(m) = 1 / speed(m)  +  1 / (link x ratio(m))
 *
 * speed(m): input bytes per second the channel compresses with m (wall
 * time, so CPU contention counts); link: wire bytes per second the channel
 * gets when it sends (time in the rate limiter and in writev); ratio(m):
 * the packet's expected ratio, from one sampled page compressed with LZ4
 * (cheap: 1 page in up to 128) times the method's measured gain over that
 * sample.  Raw has no compression time and ratio 1.  A fast link makes raw
 * win, a slow link with compressible data zstd, and in between the channel
 * mixes them so that neither the link nor the CPU waits.  A sample that does
 * not shrink by LM_AUTO_MIN_RATIO sends the packet raw without trying.
 * Every 32nd packet refreshes the estimate of a method not used lately.
 */
#ifndef LM_AUTO_H
#define LM_AUTO_H

#include <stdint.h>

#include "core/wire.h"

enum { LM_AUTO_NONE, LM_AUTO_LZ4, LM_AUTO_ZSTD, LM_AUTO_N };
#define LM_AUTO_MIN_RATIO 1.08

struct lm_auto {
	double link;               /* wire bytes/s while sending, 0 = unknown */
	double speed[LM_AUTO_N];   /* input bytes/s compressing */
	double gain[LM_AUTO_N];    /* packet ratio / sampled page ratio */
	uint64_t fixed[3];         /* test hook x-auto-speeds: link, lz4, zstd */
	uint64_t packets;
	uint64_t last_used[LM_AUTO_N];
	double sample_ratio;       /* of the packet being sent */
	void *lz4;                 /* LZ4 state for the sample */
	uint8_t sample_out[LM_PAGE_SIZE];
};

/* The wire method of each choice. */
extern const uint8_t lm_auto_method[LM_AUTO_N];

int lm_auto_init(struct lm_auto *a, const uint64_t fixed[3]);
void lm_auto_free(struct lm_auto *a);
/* The choice (LM_AUTO_*) for a packet whose first normal page is sample. */
int lm_auto_choose(struct lm_auto *a, const uint8_t *sample);
/* After sending it: input bytes, payload bytes, ns compressing, wire bytes
 * and ns sending (rate limiter + write). */
void lm_auto_update(struct lm_auto *a, int choice, uint64_t in, uint64_t out,
		    uint64_t compress_ns, uint64_t wire, uint64_t send_ns);

#endif
