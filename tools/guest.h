/* SPDX-License-Identifier: MIT */
/*
 * The CLI's synthetic running guest: threads that keep writing to guest
 * memory at a chosen rate, each write a checkable stamp, and that can be
 * paused (switchover) and throttled (auto-converge).
 *
 * A stamp occupies the first 32 bytes of a page:
 *   u64 magic GUEST_STAMP_MAGIC, u64 page index, u64 version (1, 2, ...),
 *   u64 a hash of the three fields before it.
 * Each write also changes 8 bytes elsewhere in the page (derived from the
 * version), so a page's whole content changes, not only its header.  The
 * version only grows, so a stale copy of a page at the destination shows
 * as a smaller version than the source's.
 */
#ifndef LM_GUEST_H
#define LM_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#define GUEST_STAMP_MAGIC 0x504d41545354534cull /* "LSTSTAMP" */

enum guest_pattern { GUEST_UNIFORM, GUEST_ZIPF };

struct guest_spec {
	uint64_t rate;      /* bytes of pages dirtied per second (pages * 4096); 0 = idle */
	unsigned threads;   /* default 1 */
	uint64_t hot;       /* bytes the writes fall in, from the start; 0 = all */
	enum guest_pattern pattern;
	uint64_t seed;
};

struct guest;

/* Starts the writer threads over mem[0..size).  NULL with err on failure. */
struct guest *guest_start(const struct guest_spec *spec, uint8_t *mem, uint64_t size, char *err,
			  size_t errlen);
/* Pauses every writer; returns once none is writing. */
void guest_pause(struct guest *g);
void guest_resume(struct guest *g);
/* Throttle: writers sleep percent % of the time (0..99). */
void guest_throttle(struct guest *g, int percent);
/* Stops and joins the writers (NULL: none); returns the number of writes
 * done. */
uint64_t guest_stop(struct guest *g);
/* Whether the guest runs (not paused).  Any thread. */
bool guest_running(struct guest *g);
/* After guest_stop: the pages whose stamp is not the last one written
 * (0 = the memory is exactly as the guest left it). */
uint64_t guest_check(const struct guest *g);
/* Stops the writers if need be and frees g (NULL: nothing). */
void guest_free(struct guest *g);

/* Checks a page's stamp: 0 no stamp (never written), >0 its version,
 * -1 a malformed stamp. */
int64_t guest_stamp_version(const uint8_t *page, uint64_t index);

#endif
