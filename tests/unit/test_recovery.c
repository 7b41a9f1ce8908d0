/* SPDX-License-Identifier: MIT */
/* Channel recovery without I/O: which
 * connections after the handshake are replacements, and what a receiver's
 * answer asks of the sender. */
#include <errno.h>
#include <string.h>

#include "core/recovery.h"
#include "t.h"

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
	causes();
	reconnect_hellos();
	answers();
	T_DONE();
}
