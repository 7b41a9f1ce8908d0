/* SPDX-License-Identifier: MIT */
/*
 * Device state (livemig_set_device_state): after the destination verified
 * the RAM (RESULT OK) and before COMMIT, the source streams its embedder's
 * device state on the main channel (DEVSTATE chunks, DEVSTATE_END), the
 * destination feeds it to its embedder and answers DEVSTATE_LOADED - or
 * fails, which the source learns as its ERROR.  The switchover deadline
 * (the source's watchdog) bounds all of it: the RAM is already verified,
 * so a failure here still resumes the guest at the source.
 */
#include <errno.h>
#include <string.h>

#include "core/internal.h"
#include "util/util.h"

static void record(livemig_session *s, uint64_t bytes, uint64_t t0)
{
	pthread_mutex_lock(&s->lock); /* the statistics read them */
	s->dev_bytes = bytes;
	s->dev_ms = (lm_now_ns() - t0) / 1000000;
	pthread_mutex_unlock(&s->lock);
}

int lm_devstate_send(livemig_session *s)
{
	uint8_t buf[LM_DEVSTATE_CHUNK];
	uint64_t t0 = lm_now_ns(), total = 0;
	for (;;) {
		if (lm_quit(s)) /* a cancel, the deadline, the destination's ERROR */
			return lm_err(s);
		ssize_t n = s->dev.save(s->dev_opaque, buf, sizeof(buf));
		if (n == -EAGAIN)
			continue;
		if (n < 0)
			return lm_fail(s, (int)n, "device state: the embedder could not save it: %s",
				       strerror((int)-n));
		if (n == 0)
			break;
		if ((size_t)n > sizeof(buf))
			return lm_fail(s, -EINVAL, "device state: save returned more than asked");
		total += (uint64_t)n;
		if (total > LM_DEVSTATE_MAX)
			return lm_fail(s, -EFBIG, "device state: more than %llu bytes",
				       (unsigned long long)LM_DEVSTATE_MAX);
		struct lm_msg m = {.type = LM_MSG_DEVSTATE,
				   .devstate = {.data = buf, .len = (uint32_t)n}};
		if (lm_send_msg(s, &m))
			return lm_fail_io(s, -ECONNRESET, "main channel: cannot send device state");
	}
	if (!total)
		return lm_fail(s, -ENODATA, "device state: the embedder saved nothing");
	atomic_store(&s->src.devstate_sent, true);
	if (lm_send_msg(s, &(struct lm_msg){.type = LM_MSG_DEVSTATE_END, .devstate_bytes = total}))
		return lm_fail_io(s, -ECONNRESET, "main channel: cannot send device state");

	/* DEVSTATE_LOADED (the return path), within the switchover deadline. */
	pthread_mutex_lock(&s->lock);
	while (!s->src.devstate_loaded && !lm_quit(s))
		pthread_cond_wait(&s->cond, &s->lock);
	bool loaded = s->src.devstate_loaded;
	pthread_mutex_unlock(&s->lock);
	if (!loaded)
		return lm_err(s);
	record(s, total, t0);
	return 0;
}

int lm_devstate_receive(livemig_session *s)
{
	uint64_t t0 = 0, total = 0;
	for (;;) {
		struct lm_msg m;
		int r = lm_recv_msg(s, &m);
		if (r)
			return r;
		if (!t0)
			t0 = lm_now_ns();
		if (m.type == LM_MSG_DEVSTATE) {
			total += m.devstate.len;
			if (total > LM_DEVSTATE_MAX)
				return lm_fail(s, -EFBIG, "device state: more than %llu bytes",
					       (unsigned long long)LM_DEVSTATE_MAX);
			if ((r = s->dev.load(s->dev_opaque, m.devstate.data, m.devstate.len)))
				return lm_fail(s, r < 0 ? r : -EIO,
					       "device state: the embedder could not load it: %s",
					       strerror(r < 0 ? -r : EIO));
			continue;
		}
		if (m.type != LM_MSG_DEVSTATE_END)
			return lm_fail(s, -EPROTO, "main channel: message %u instead of device state",
				       m.type);
		if (m.devstate_bytes != total)
			return lm_fail(s, -EPROTO, "device state: %llu bytes came, the source says "
				       "%llu", (unsigned long long)total,
				       (unsigned long long)m.devstate_bytes);
		if ((r = s->dev.load_end(s->dev_opaque)))
			return lm_fail(s, r < 0 ? r : -EIO, "device state: the embedder did not load "
				       "it: %s", strerror(r < 0 ? -r : EIO));
		record(s, total, t0);
		if (lm_send_msg(s, &(struct lm_msg){.type = LM_MSG_DEVSTATE_LOADED,
						    .devstate_bytes = total}))
			return lm_fail_io(s, -ECONNRESET, "main channel: cannot confirm device state");
		lm_log(s, 2, "device state: %llu bytes loaded", (unsigned long long)total);
		return 0;
	}
}

void lm_devstate_start(livemig_session *s)
{
	if (!s->dev_on || s->dst.started_guest)
		return;
	s->dst.started_guest = true;
	s->dev.start(s->dev_opaque);
}
