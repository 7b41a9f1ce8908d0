/* SPDX-License-Identifier: MIT */
/* Channel recovery without I/O; see recovery.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/recovery.h"

int lm_reconnect_check(const struct lm_hello *h, const uint8_t uuid[16], unsigned nchannels,
		       const char **why)
{
	if (h->flags & LM_HELLO_RESOLVE)
		*why = "a RESOLVE hello while the passes run";
	else if (!(h->flags & LM_HELLO_RECONNECT))
		*why = "a new connection without RECONNECT after the handshake";
	else if (memcmp(h->uuid, uuid, 16))
		*why = "a RECONNECT of another migration (session id differs)";
	else if (h->nchannels != nchannels)
		*why = "a RECONNECT with another channel count";
	else
		return 0; /* lm_hello_decode: RECONNECT names a channel in 1..nchannels */
	return -EPROTO;
}

const char *lm_lost_cause(int lost, unsigned net_timeout_s, char *buf, size_t len)
{
	if (lost == -ETIMEDOUT)
		snprintf(buf, len, "peer silent for %u s", net_timeout_s);
	else if (lost == -EPROTO)
		snprintf(buf, len, "bytes where none may come");
	else
		snprintf(buf, len, "%s", strerror(-lost));
	return buf;
}

int lm_answer_check(const struct lm_answer *a, const struct lm_sent *sent, bool *resend,
		    const char **why)
{
	if (a->seq > sent->seq || a->normal > sent->normal || a->zero > sent->zero) {
		*why = "the receiver counts more packets or pages than were sent";
		return -EPROTO;
	}
	if (a->iteration == sent->pass + 1 && sent->synced) {
		/* SYNC was the last packet sent, so the receiver read them all. */
		if (a->seq != sent->seq || a->normal != sent->normal || a->zero != sent->zero) {
			*why = "the receiver has the SYNC but not every packet before it";
			return -EPROTO;
		}
		*resend = false;
		return 0;
	}
	if (a->iteration == sent->pass) {
		*resend = true;
		return 0;
	}
	*why = a->iteration == sent->pass + 1 ? "the receiver has a SYNC that was never sent"
					       : "the receiver is in another pass";
	return -EPROTO;
}
