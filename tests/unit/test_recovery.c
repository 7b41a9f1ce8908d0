/* SPDX-License-Identifier: MIT */
/* Channel recovery without I/O: the ranges a sender took, which
 * connections after the handshake are replacements, and what a receiver's
 * answer asks of the sender. */
#include <errno.h>
#include <string.h>

#include "core/recovery.h"
#include "t.h"

static void ranges(void)
{
	struct lm_ranges t;
	CHECK(lm_ranges_init(&t, 10 * LM_PACKET_PAGES + 1) == 0 && t.cap == 11);
	/* Chunks taken back to back make one range; a gap starts another. */
	CHECK(lm_ranges_add(&t, 0, 128) == 0 && lm_ranges_add(&t, 128, 128) == 0);
	CHECK(t.n == 1 && t.r[0].start == 0 && t.r[0].end == 256);
	CHECK(lm_ranges_add(&t, 768, 128) == 0 && lm_ranges_add(&t, 1280, 1) == 0);
	CHECK(t.n == 3 && t.r[1].start == 768 && t.r[1].end == 896 && t.r[2].end == 1281);
	CHECK(lm_ranges_entries(&t) == 256 + 128 + 1);
	lm_ranges_clear(&t);
	CHECK(t.n == 0 && lm_ranges_entries(&t) == 0);

	/* The worst case - every other chunk of the largest list, none
	 * adjacent - fits in the room made at the start. */
	for (size_t k = 0; k < 11; k++)
		CHECKF(lm_ranges_add(&t, 2 * k * LM_PACKET_PAGES, LM_PACKET_PAGES) == 0, "%zu", k);
	CHECK(t.n == 11 && lm_ranges_add(&t, 100000, 1) == -ENOSPC);
	CHECK(lm_ranges_add(&t, 21 * LM_PACKET_PAGES, 5) == 0); /* adjacent: still fits */
	CHECK(t.n == 11 && lm_ranges_entries(&t) == 11 * LM_PACKET_PAGES + 5);
	lm_ranges_free(&t);
	lm_ranges_free(&t); /* twice is fine */
	CHECK(lm_ranges_init(&t, 0) == 0 && t.cap == 1);
	lm_ranges_free(&t);
}

static void reconnect_hellos(void)
{
	uint8_t uuid[16], other[16];
	memset(uuid, 0x5a, sizeof(uuid));
	memset(other, 0x5b, sizeof(other));
	struct lm_hello h = {.version = LM_WIRE_VERSION, .channel = 2, .nchannels = 4,
			     .flags = LM_HELLO_RECONNECT};
	const char *why = NULL;
	memcpy(h.uuid, uuid, 16);
	CHECK(lm_reconnect_check(&h, uuid, 4, &why) == 0);

	struct lm_hello v = h;
	v.flags = 0; /* a stranger, or a second source of the same session */
	CHECK(lm_reconnect_check(&v, uuid, 4, &why) == -EPROTO && strstr(why, "without RECONNECT"));
	v = h;
	v.flags = LM_HELLO_RESOLVE;
	v.channel = 0;
	CHECK(lm_reconnect_check(&v, uuid, 4, &why) == -EPROTO && strstr(why, "RESOLVE"));
	v = h;
	memcpy(v.uuid, other, 16);
	CHECK(lm_reconnect_check(&v, uuid, 4, &why) == -EPROTO && strstr(why, "session id"));
	v = h;
	v.nchannels = 3;
	CHECK(lm_reconnect_check(&v, uuid, 4, &why) == -EPROTO && strstr(why, "channel count"));

	/* What lm_hello_decode lets through is all the check has to take:
	 * RECONNECT on the main channel never gets here. */
	uint8_t buf[LM_HELLO_SIZE];
	v = h;
	v.channel = 0;
	lm_hello_encode(&v, buf);
	CHECK(lm_hello_decode(buf, &v, &why) == -EPROTO);
}

static void answers(void)
{
	const char *why = NULL;
	bool resend = false;
	/* In pass 3, three packets of 10 pages each written, no SYNC yet. */
	struct lm_sent sent = {.pass = 3, .synced = false, .seq = 40, .normal = 300, .zero = 20};

	/* The receiver is still in pass 3 - with every packet, or fewer -
	 * so the pass goes again. */
	struct lm_answer a = {.iteration = 3, .seq = 40, .normal = 300, .zero = 20};
	CHECK(lm_answer_check(&a, &sent, &resend, &why) == 0 && resend);
	a = (struct lm_answer){.iteration = 3, .seq = 37, .normal = 270, .zero = 20};
	resend = false;
	CHECK(lm_answer_check(&a, &sent, &resend, &why) == 0 && resend);
	/* ...but never with more than was sent. */
	a.seq = 41;
	CHECK(lm_answer_check(&a, &sent, &resend, &why) == -EPROTO && strstr(why, "more"));
	a = (struct lm_answer){.iteration = 3, .seq = 40, .normal = 301, .zero = 0};
	CHECK(lm_answer_check(&a, &sent, &resend, &why) == -EPROTO && strstr(why, "more"));
	/* Past a SYNC that was never sent; another pass. */
	a = (struct lm_answer){.iteration = 4, .seq = 40, .normal = 300, .zero = 20};
	CHECK(lm_answer_check(&a, &sent, &resend, &why) == -EPROTO && strstr(why, "never sent"));
	a.iteration = 2;
	CHECK(lm_answer_check(&a, &sent, &resend, &why) == -EPROTO && strstr(why, "another pass"));

	/* SYNC sent (seq 40 was the SYNC): the receiver has it, or not. */
	sent.synced = true;
	sent.seq = 41;
	a = (struct lm_answer){.iteration = 4, .seq = 41, .normal = 300, .zero = 20};
	resend = true;
	CHECK(lm_answer_check(&a, &sent, &resend, &why) == 0 && !resend);
	a.iteration = 3;
	CHECK(lm_answer_check(&a, &sent, &resend, &why) == 0 && resend);
	a = (struct lm_answer){.iteration = 4, .seq = 40, .normal = 300, .zero = 20};
	CHECK(lm_answer_check(&a, &sent, &resend, &why) == -EPROTO && strstr(why, "not every"));

	/* Before the first pass nothing can go again. */
	sent = (struct lm_sent){.pass = 0, .synced = true};
	a = (struct lm_answer){.iteration = 1};
	CHECK(lm_answer_check(&a, &sent, &resend, &why) == 0 && !resend);
	sent.synced = false; /* cannot be, but must not ask for pass 0 again */
	CHECK(lm_answer_check(&a, &sent, &resend, &why) == -EPROTO);
}

static void causes(void)
{
	char buf[64];
	CHECK(!strcmp(lm_lost_cause(-ETIMEDOUT, 7, buf, sizeof(buf)), "peer silent for 7 s"));
	CHECK(!strcmp(lm_lost_cause(-ECONNRESET, 7, buf, sizeof(buf)), strerror(ECONNRESET)));
	CHECK(!strcmp(lm_lost_cause(-EPROTO, 7, buf, sizeof(buf)), "bytes where none may come"));
}

int main(void)
{
	ranges();
	causes();
	reconnect_hellos();
	answers();
	T_DONE();
}
