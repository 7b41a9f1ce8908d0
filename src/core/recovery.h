/* SPDX-License-Identifier: MIT */
/*
 * Channel recovery (capability channel-recovery), the parts without I/O:
 * what a sender took of a pass, whether a connection after the handshake
 * is a replacement, and what a receiver's answer asks the sender to do.
 * The threads that use them are the senders (source.c), the receivers and
 * the acceptor (dest.c); docs/design.md, "Channel recovery", tells the
 * whole exchange.  tests/unit/test_recovery.c feeds them by hand.
 */
#ifndef LM_RECOVERY_H
#define LM_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/wire.h"

/* Connections a sender tries for one it lost, each within net-timeout;
 * and how often one channel may be replaced in one migration, so that a
 * link that breaks again and again still ends the migration. */
#define LM_RECOVER_ATTEMPTS 3
#define LM_RECOVER_MAX 8

/*
 * The ranges [start, end) of a pass's work list that one sender took from
 * the shared cursor, in the order taken; a range that starts where the
 * last one ends extends it.  Owned by the sender thread.  The room is
 * fixed when it is made, for every chunk of the largest work list, so
 * recording never allocates.
 */
/*
 * A connection after the handshake, by its (decoded) hello: 0 when it is a
 * RECONNECT of this session - its uuid and channel count - for one of its
 * multifd channels; else -EPROTO and *why says what it is, for the log.
 */
int lm_reconnect_check(const struct lm_hello *h, const uint8_t uuid[16], unsigned nchannels,
		       const char **why);

/* Why a connection was lost (lost: -errno; -ETIMEDOUT: silent for
 * net_timeout_s; -EPROTO: bytes where none may come), for a message: buf. */
const char *lm_lost_cause(int lost, unsigned net_timeout_s, char *buf, size_t len);

/* What a sender has sent on its channel, over the connections it lost. */
struct lm_sent {
	uint32_t pass;   /* its current pass (0 before the first) */
	bool synced;     /* it has sent that pass's SYNC (true for pass 0) */
	uint64_t seq;    /* the seq its next packet would carry */
	uint64_t normal, zero; /* pages in the packets it wrote */
};
/*
 * The receiver's answer a against what the sender sent.  0 and *resend:
 * false when the receiver has the pass's SYNC (nothing goes again), true
 * when it has not (every page the sender took in the pass goes again, then
 * SYNC).  -EPROTO and *why for an answer no receiver can give: another
 * pass, a SYNC never sent, more packets or pages than were sent, or the
 * SYNC without every packet before it.
 */
int lm_answer_check(const struct lm_answer *a, const struct lm_sent *sent, bool *resend,
		    const char **why);

#endif
