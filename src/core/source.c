/* SPDX-License-Identifier: MIT */
/*
 * Source side.  The control thread connects, negotiates, then runs passes:
 * it publishes a work list (global page numbers) and every sender thread
 * takes chunks of up to LM_PACKET_PAGES entries from a shared atomic cursor,
 * so no queue or wake-up sits between pages and sockets.  When the list is
 * exhausted each sender ends its pass with a SYNC packet (DESIGN.md rule 1)
 * and reports; the next pass starts only when every channel has.  The last
 * pass (after the guest stops) ends with SYNC|FINAL, then the control thread
 * sends the image digest and waits for the destination's verdict.
 *
 * Ownership: the work list belongs to the control thread and is read-only
 * while a pass runs; each sender owns its channel (socket, codec context,
 * counters) and the hash entries of the pages it sends in a pass.
 *
 * With channel-recovery a sender whose connection fails replaces it and
 * sends its share of the pass again (docs/design.md, "Channel recovery").
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "util/util.h"

static int send_hello(livemig_session *s, int fd, struct lm_tls_conn *tls, unsigned channel,
		      uint16_t flags)
{
	struct lm_hello h = {.version = LM_WIRE_VERSION,
			     .channel = (uint16_t)channel,
			     .nchannels = (uint16_t)s->p.channels,
			     .flags = flags};
	uint8_t buf[LM_HELLO_SIZE];
	memcpy(h.uuid, s->uuid, sizeof(h.uuid));
	lm_hello_encode(&h, buf);
	return lm_io_write(fd, tls, buf, sizeof(buf));
}

/*
 * A connection to the destination within net-timeout, with its liveness
 * settings and, with tls-creds, its TLS session (*tls, else NULL) -
 * the handshake within net-timeout too: its fd, or -errno and err says
 * why (-ECANCELED: *stop was raised meanwhile; NULL: never).
 */
static int open_conn(livemig_session *s, unsigned channel, const _Atomic bool *stop,
		     struct lm_tls_conn **tls, char *err, size_t errlen)
{
	*tls = NULL;
	int fd = lm_connect(&s->addr, s->p.net_timeout_s, stop, err, errlen);
	if (fd < 0)
		return fd;
	/* Whoever owns the path gets the guest's memory: the listener must be
	 * this user (or root), as the destination requires of us. */
	int e = s->addr.family == AF_UNIX ? lm_peer_allowed(fd) : 0;
	if (e) {
		close(fd);
		snprintf(err, errlen, "the socket %s is served by another user's process: refused",
			 s->addr.path);
		return -EACCES;
	}
	e = s->addr.family != AF_UNIX ? lm_sock_liveness(fd, s->p.net_timeout_s) : 0;
	if (e) /* an old kernel: the heartbeat still bounds every wait */
		lm_log(s, 1, "connection %u: cannot set TCP keepalive: %s", channel, strerror(-e));
	if (s->tls && (e = lm_tls_start(s->tls, fd, s->p.net_timeout_s, tls, err, errlen))) {
		close(fd);
		return e;
	}
	return fd;
}

/* open_conn, or the failure (a cancel or the deadline ends the wait, and
 * then their error stands). */
static int connect_one(livemig_session *s, unsigned channel, struct lm_tls_conn **tls)
{
	char err[256];
	int fd = open_conn(s, channel, &s->quit, tls, err, sizeof(err));
	if (fd >= 0)
		return fd;
	if (fd == -ECANCELED)
		return lm_err(s);
	if (!channel)
		return lm_fail(s, fd, "main channel: %s", err);
	/* Refused after the main channel's handshake (tls-authz): say that. */
	return lm_main_refused(s) ? lm_err(s) : lm_fail(s, fd, "channel %u: %s", channel, err);
}

/* A hello could not go on channel (0: main): the session's failure, or
 * first the destination's refusal of this side's TLS (or of its lack). */
static int hello_failed(livemig_session *s, unsigned channel)
{
	if (lm_main_refused(s))
		return lm_err(s);
	if (!channel)
		return lm_fail(s, -ECONNRESET, "main channel: hello failed");
	return lm_fail(s, -ECONNRESET, "channel %u: hello failed", channel);
}

static int connect_all(livemig_session *s)
{
	struct lm_tls_conn *tls;
	int fd = connect_one(s, 0, &tls);
	if (fd < 0)
		return fd;
	s->main_tls = tls; /* before the fd is published: send_now reads both */
	lm_set_fd(s, &s->main_fd, fd);
	lm_main_tls_up(s);
	s->main_rx = lm_now_ns(); /* the silence on the main channel counts from here */
	if (send_hello(s, fd, tls, 0, 0))
		return hello_failed(s, 0);
	for (unsigned i = 0; i < s->p.channels; i++) {
		struct lm_chan *c = &s->ch[i];
		fd = connect_one(s, i + 1, &tls);
		if (fd < 0)
			return fd;
		c->tls = tls;
		lm_set_fd(s, &c->fd, fd);
		if (send_hello(s, fd, tls, i + 1, 0))
			return hello_failed(s, i + 1);
	}
	return lm_quit(s) ? lm_err(s) : 0;
}

static int negotiate(livemig_session *s)
{
	struct lm_msg m = {.type = LM_MSG_PARAMS};
	struct lm_msg_params *p = &m.params;
	p->channels = (uint16_t)s->p.channels;
	p->method = s->p.method;
	p->level = (uint8_t)lm_params_level(&s->p);
	p->zero_detect = s->p.zero_detect;
	p->channel_recovery = s->p.channel_recovery;
	p->device_state = s->dev_on;
	p->nblocks = s->nblocks;
	for (unsigned i = 0; i < s->nblocks; i++) {
		memcpy(p->blocks[i].name, s->blocks[i].name, LM_NAME_MAX);
		p->blocks[i].size = s->blocks[i].size;
	}
	if (lm_send_msg(s, &m))
		return lm_main_refused(s) ? lm_err(s)
					  : lm_fail(s, -ECONNRESET, "main channel: cannot send parameters");
	lm_heartbeat_arm(s);

	int r = lm_recv_msg(s, &m);
	if (r)
		return r;
	if (m.type != LM_MSG_READY)
		return lm_fail(s, -EPROTO, "main channel: expected READY, got message %u",
			       m.type);
	return 0;
}

/* ---- sender threads ------------------------------------------------------ */

/* Copies guest page p into slot k of c's bounce buffer.  A running guest
 * may write p meanwhile: a race by design (the page is then dirty and goes
 * again), named in tests/tsan.supp - keep this function to that one copy. */
static const uint8_t *bounce_page(struct lm_chan *c, uint32_t k, const uint8_t *p)
{
	uint8_t *copy = c->bounce + (size_t)k * LM_PAGE_SIZE;
	memcpy(copy, p, LM_PAGE_SIZE);
	return copy;
}

/* A write on c's connection failed with r: LM_LOST with channel-recovery
 * (the connection is then replaced), else the session's failure. */
static int send_failed(struct lm_chan *c, int r)
{
	livemig_session *s = c->s;
	if (lm_quit(s))
		return lm_err(s);
	if (s->p.channel_recovery) {
		c->lost = r;
		return LM_LOST;
	}
	if (r == -ETIMEDOUT)
		return lm_fail_silent(s, c->id); /* TCP_USER_TIMEOUT */
	return lm_fail_io(s, r, "channel %u: send failed: %s", c->id, strerror(-r));
}

/*
 * Sends one packet of n pages of one block (n may be 0 for a SYNC): zero
 * check, compress, frame, write, each through the channel's engine or
 * codec.
 */
static int send_packet(struct lm_chan *c, uint32_t block, const uint64_t *gpn, uint32_t n,
		       uint32_t iteration, uint16_t flags)
{
	livemig_session *s = c->s;
	struct lm_block *b = &s->blocks[block];
	uint8_t head[LM_PACKET_HDR_SIZE + 4 * LM_PACKET_PAGES];
	uint8_t *idx = head + LM_PACKET_HDR_SIZE;
	const uint8_t *page[LM_PACKET_PAGES], *normal[LM_PACKET_PAGES];
	uint32_t zero_idx[LM_PACKET_PAGES];
	bool zero[LM_PACKET_PAGES];
	uint32_t nn = 0, nz = 0;
	uint32_t crc = 0; /* payload first: see the CRC rule in wire.h */
	/* The raw pages' CRC is taken in the visit below, while each page is
	 * hot, when they will likely go raw: always for none, and otherwise
	 * (auto) when the channel's last packet did. */
	bool crc_in_visit = c->raw_only || c->last_raw;

	/* Zero check: the whole packet in one call. */
	for (uint32_t i = 0; i < n; i++)
		page[i] = b->host + LM_GPN_PAGE(gpn[i]) * LM_PAGE_SIZE;
	if (n)
		c->zero_engine.ops->check(c->zero_engine.ctx, page, n, zero);

	/* Then one visit per data page while it is hot in cache: index, hash,
	 * and the CRC when raw is all the codec sends.  A running guest may
	 * write the page meanwhile (it is then dirty and goes again next
	 * pass): every later read - hash, CRC, send, compress - must see the
	 * same bytes, so the page is first copied into the channel's bounce
	 * buffer. */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t pg = (uint32_t)LM_GPN_PAGE(gpn[i]);
		const uint8_t *p = page[i];
		if (zero[i]) {
			zero_idx[nz++] = pg;
			b->hash[pg] = lm_zero_hash(gpn[i]);
			continue;
		}
		if (c->bounce)
			p = bounce_page(c, nn, p);
		lm_le32(idx + 4 * nn, pg);
		normal[nn++] = p;
		if (crc_in_visit)
			crc = lm_crc32c(crc, p, LM_PAGE_SIZE);
		b->hash[pg] = s->page_hash(p, gpn[i]);
	}
	for (uint32_t i = 0; i < nz; i++)
		lm_le32(idx + 4 * (nn + i), zero_idx[i]);

	/* Compress the data pages: a payload in c->buf, or the verdict "send
	 * them raw". */
	uint8_t method = c->empty_method;
	ssize_t len = 0;
	if (nn)
		len = c->codec->compress(c->cctx, normal, nn, c->buf, c->bufcap, &method);
	if (len < 0 || (nn && !len && method != LM_METHOD_NONE))
		return lm_fail(s, len < 0 ? (int)len : -EIO, "channel %u: %s compression failed",
			       c->id, c->codec->name);

	/* Frame: header and indices, then the pages themselves (adjacent ones
	 * in one iovec, no copy) or the payload. */
	struct iovec iov[1 + LM_PACKET_PAGES];
	int niov = 0; /* after iov[0] */
	uint32_t payload_len = method == LM_METHOD_NONE ? nn * LM_PAGE_SIZE : (uint32_t)len;
	if (nn)
		c->last_raw = method == LM_METHOD_NONE;
	if (method == LM_METHOD_NONE) {
		for (uint32_t i = 0; i < nn; i++) {
			if (!crc_in_visit)
				crc = lm_crc32c(crc, normal[i], LM_PAGE_SIZE);
			lm_iov_add_page(iov + 1, &niov, (void *)normal[i]);
		}
	} else if (payload_len) {
		crc = lm_crc32c(0, c->buf, payload_len);
		iov[1 + niov++] = (struct iovec){c->buf, payload_len};
	}
	struct lm_packet_hdr h = {.version = LM_WIRE_VERSION,
				  .method = method,
				  .flags = flags,
				  .channel = (uint16_t)c->id,
				  .block = block,
				  .seq = c->seq++,
				  .iteration = iteration,
				  .normal = nn,
				  .zero = nz,
				  .payload_len = payload_len};
	size_t head_len = LM_PACKET_HDR_SIZE + 4 * (size_t)(nn + nz);
	lm_packet_encode(&h, head);
	crc = lm_crc32c(lm_crc32c(crc, idx, head_len - LM_PACKET_HDR_SIZE), head,
			LM_PACKET_HDR_SIZE);
	lm_le32(head + 60, crc);
	iov[0] = (struct iovec){head, head_len};

	/* Write.  As QEMU: max-bandwidth paces pre-copy; the final pass runs
	 * while the guest is stopped and goes as fast as it can. */
	uint64_t wire = head_len + payload_len;
	if (!c->final_pass)
		lm_ratelimit(s, wire);
	int r = lm_io_writev(c->fd, c->tls, iov, 1 + niov);
	if (r)
		return send_failed(c, r);
	lm_chan_count(c, nn, nz, wire, payload_len);
	return 0;
}

/* Sends work entries [0, n): a run of one block per packet. */
static int send_chunk(struct lm_chan *c, const uint64_t *w, size_t n, uint32_t iteration)
{
	size_t i = 0;
	while (i < n) {
		uint64_t block = w[i] >> 40;
		size_t j = i + 1;
		while (j < n && w[j] >> 40 == block)
			j++;
		int r = send_packet(c, (uint32_t)block, w + i, (uint32_t)(j - i), iteration, 0);
		if (r)
			return r;
		i = j;
	}
	return 0;
}

/* Waits on s->cond (s->lock held) for a wake-up, at most ms. */
static void wait_ms(livemig_session *s, long ms)
{
	lm_cond_wait_until(s, lm_now_ns() + (uint64_t)ms * 1000000);
}

/* A pass as one sender sees it. */
struct share {
	const uint64_t *work; /* the control thread's list: valid until the next pass */
	size_t nwork;
	uint32_t iteration;   /* 0 before the first pass */
	bool final;
	bool synced;          /* this channel's SYNC of the pass went out */
};

/* Takes work entries from the shared cursor and sends them, then the
 * pass's SYNC.  With channel-recovery each chunk is recorded before it
 * goes, so that a replaced connection can carry it again. */
static int send_share(struct lm_chan *c, struct share *p)
{
	livemig_session *s = c->s;
	size_t k;
	int r;
	while ((k = atomic_fetch_add(&s->src.cursor, LM_PACKET_PAGES)) < p->nwork) {
		size_t n = p->nwork - k < LM_PACKET_PAGES ? p->nwork - k : LM_PACKET_PAGES;
		if (s->src.chunk_owner)
			atomic_store_explicit(&s->src.chunk_owner[k / LM_PACKET_PAGES],
					      (uint8_t)c->id, memory_order_relaxed);
		if ((r = send_chunk(c, p->work + k, n, p->iteration)))
			return r;
	}
	r = send_packet(c, 0, NULL, 0, p->iteration,
			LM_PKT_FLAG_SYNC | (p->final ? LM_PKT_FLAG_FINAL : 0));
	p->synced = !r;
	return r;
}

/* Sends again every chunk c took in pass p. */
static int resend_share(struct lm_chan *c, const struct share *p)
{
	_Atomic uint8_t *owner = c->s->src.chunk_owner;
	for (size_t k = 0; k < p->nwork; k += LM_PACKET_PAGES) {
		if (atomic_load_explicit(&owner[k / LM_PACKET_PAGES], memory_order_relaxed) != c->id)
			continue;
		size_t n = p->nwork - k < LM_PACKET_PAGES ? p->nwork - k : LM_PACKET_PAGES;
		int r = send_chunk(c, p->work + k, n, p->iteration);
		if (r)
			return r;
	}
	return 0;
}

/* Reads the receiver's answer on fd (with TLS: on tls), within
 * net-timeout; the wait ends when the session quits.  0 or -errno
 * (-ETIMEDOUT, -ECONNRESET: closed, -ECANCELED: quit). */
static int read_answer(livemig_session *s, int fd, struct lm_tls_conn *tls,
		       uint8_t buf[LM_ANSWER_SIZE])
{
	uint64_t until = lm_now_ns() + s->p.net_timeout_s * 1000000000ull;
	size_t got = 0;
	if (tls) /* a record that came in part waits no longer than a slice */
		lm_set_recv_timeout_ms(fd, 100);
	while (got < LM_ANSWER_SIZE) {
		if (lm_quit(s))
			return -ECANCELED;
		if (lm_now_ns() >= until)
			return -ETIMEDOUT;
		ssize_t n = lm_io_recv(fd, tls, buf + got, LM_ANSWER_SIZE - got, 100);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && n != -EAGAIN)
			return (int)n;
		got += n > 0 ? (size_t)n : 0;
	}
	return 0;
}

/*
 * One replacement connection for c: connect, the RECONNECT hello and the
 * receiver's answer, each within net-timeout.  0 when the new connection
 * is c's (the old one closed), with *resend set (lm_answer_check) and c's
 * seq and page counts taken from the answer: the packets the lost
 * connection did not deliver are forgotten, and counted when they go
 * again.  -ECANCELED when the session quit; -EPROTO for an answer no
 * receiver gives; else -errno.  why gets the reason.  Until it succeeds
 * c->fd stays the lost connection, for peer_gone()'s view of the peer.
 */
static int try_reconnect(struct lm_chan *c, const struct share *p, bool *resend, char *why,
			 size_t len)
{
	livemig_session *s = c->s;
	uint8_t buf[LM_ANSWER_SIZE];
	struct lm_answer a;
	struct lm_tls_conn *tls;
	const char *bad = NULL;
	int fd = open_conn(s, c->id, &s->quit, &tls, why, len);
	if (fd < 0)
		return fd;
	int r = send_hello(s, fd, tls, c->id, LM_HELLO_RECONNECT);
	if (!r)
		r = read_answer(s, fd, tls, buf);
	if (r) {
		snprintf(why, len, "no answer to its hello: %s",
			 r == -ETIMEDOUT ? "timed out" : r == -ECONNRESET ? "connection closed"
									   : strerror(-r));
	} else {
		struct lm_sent sent = {.pass = p->iteration,
				       .synced = p->synced,
				       .seq = c->seq,
				       .normal = atomic_load_explicit(&c->normal, memory_order_relaxed),
				       .zero = atomic_load_explicit(&c->zero, memory_order_relaxed)};
		if (lm_answer_decode(buf, &a, &bad) || lm_answer_check(&a, &sent, resend, &bad)) {
			snprintf(why, len, "bad answer: %s", bad);
			r = -EPROTO;
		}
	}
	if (r) {
		lm_io_close(fd, tls);
		return r;
	}
	lm_chan_replace_conn(s, c, fd, tls);
	c->seq = a.seq;
	atomic_store_explicit(&c->normal, a.normal, memory_order_relaxed);
	atomic_store_explicit(&c->zero, a.zero, memory_order_relaxed);
	/* A quit that came meanwhile shut down the old connection only. */
	return lm_quit(s) ? -ECANCELED : lm_chan_renew_codec(s, c);
}

/*
 * Replaces c's lost connection (c->lost says why) for pass p: up to
 * LM_RECOVER_ATTEMPTS tries, a growing pause between them.  0, with
 * *resend as the receiver's answer says; else the session's failure,
 * naming what was tried.  Every wait ends when the session quits.
 */
static int reconnect(struct lm_chan *c, const struct share *p, bool *resend)
{
	livemig_session *s = c->s;
	char buf[32], cause[80], why[256] = "";
	const char *phase = lm_phase(s, buf, sizeof(buf));
	lm_lost_cause(c->lost, s->p.net_timeout_s, cause, sizeof(cause));
	if (atomic_load(&c->recoveries) >= LM_RECOVER_MAX)
		return lm_fail(s, c->lost, "channel %u: connection lost (%s); channel-recovery "
			       "gives up after %d recoveries", c->id, cause, LM_RECOVER_MAX);
	for (int attempt = 1; attempt <= LM_RECOVER_ATTEMPTS; attempt++) {
		if (attempt > 1) {
			pthread_mutex_lock(&s->lock);
			if (!lm_quit(s))
				wait_ms(s, 500L * (attempt - 1));
			pthread_mutex_unlock(&s->lock);
		}
		int r = try_reconnect(c, p, resend, why, sizeof(why));
		if (r == -ECANCELED || lm_quit(s))
			return lm_err(s);
		if (r == -EPROTO)
			return lm_fail(s, r, "channel %u: connection lost (%s); its replacement "
				       "got a %s", c->id, cause, why);
		if (r)
			continue;
		atomic_store_explicit(&c->recoveries, c->recoveries + 1, memory_order_relaxed);
		lm_log(s, 1, "channel %u: connection lost in phase %s (%s); reconnected (attempt "
			     "%d), %s", c->id, phase, cause, attempt,
		       *resend ? "sending the pass's share again" : "the receiver had all of it");
		return 0;
	}
	return lm_fail(s, c->lost, "channel %u: connection lost (%s); channel-recovery failed "
		       "after %d attempts: %s", c->id, cause, LM_RECOVER_ATTEMPTS, why);
}

/* c's connection is lost (LM_LOST) in pass p: replaces it and sends again
 * what the receiver lacks, until that is through or recovery fails. */
static int recover(struct lm_chan *c, struct share *p)
{
	int r = LM_LOST;
	while (r == LM_LOST) {
		bool resend;
		if ((r = reconnect(c, p, &resend)) || !resend)
			return r;
		p->synced = false;
		r = resend_share(c, p);
		if (!r)
			r = send_share(c, p);
	}
	return r;
}

enum conn { CONN_OPEN, CONN_CLOSED, CONN_BROKEN };

/*
 * Between its sends - waiting for the next pass, or for the end of the
 * final one - whether c's connection has ended, waiting up to wait_ms:
 * CONN_CLOSED when the receiver closed it (what it does once every channel
 * has the final SYNC), CONN_BROKEN when it broke, c->lost saying why
 * (-EPROTO: bytes came, which a receiver never sends).  On the socket even
 * with TLS: a receiver sends no record either (no session tickets, no
 * close_notify), so any byte is wrong.
 */
static enum conn conn_state(struct lm_chan *c, int wait_ms)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
	uint8_t b;
	if (poll(&pfd, 1, wait_ms) <= 0)
		return CONN_OPEN;
	ssize_t n = recv(c->fd, &b, 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return CONN_OPEN;
	if (n == 0)
		return CONN_CLOSED;
	c->lost = n < 0 ? -errno : -EPROTO;
	return CONN_BROKEN;
}

/*
 * Waits for the pass after *gen and takes it into p.  With
 * channel-recovery the connection is watched meanwhile, 10 times a
 * second, and replaced when it ends: the last pass is still in doubt until
 * the destination has acknowledged it.  Its work list stays valid while
 * this runs: the control thread publishes the next pass only after that
 * acknowledgement, which a receiver missing part of the pass cannot give.
 */
static int next_pass(struct lm_chan *c, uint32_t *gen, struct share *p)
{
	livemig_session *s = c->s;
	pthread_mutex_lock(&s->lock);
	while (s->src.pass_gen == *gen && !lm_quit(s)) {
		if (!s->p.channel_recovery) {
			pthread_cond_wait(&s->cond, &s->lock);
			continue;
		}
		wait_ms(s, 100);
		pthread_mutex_unlock(&s->lock);
		enum conn st = conn_state(c, 0);
		if (st == CONN_CLOSED)
			c->lost = -ECONNRESET;
		int r = st == CONN_OPEN ? 0 : recover(c, p);
		pthread_mutex_lock(&s->lock);
		if (r) {
			pthread_mutex_unlock(&s->lock);
			return r;
		}
	}
	*gen = s->src.pass_gen;
	*p = (struct share){.work = s->src.work,
			    .nwork = s->src.nwork,
			    .iteration = s->iteration,
			    .final = s->src.pass_final};
	c->final_pass = p->final;
	pthread_mutex_unlock(&s->lock);
	return lm_quit(s) ? lm_err(s) : 0;
}

/*
 * With channel-recovery, after the final SYNC: waits until the receiver
 * closes the connection, which it does once every channel has reached the
 * final SYNC; a connection lost before is replaced, and the final pass
 * goes again if the receiver lacks it.  The source sends COMPLETE only
 * after every sender is through, so nothing of the final pass is in doubt
 * then.  Ends when the session quits (a deadline, a cancel, a failure).
 */
static int await_final(struct lm_chan *c, struct share *p)
{
	livemig_session *s = c->s;
	while (!lm_quit(s)) {
		enum conn st = conn_state(c, 100);
		if (st == CONN_CLOSED)
			return 0;
		int r = st == CONN_BROKEN ? recover(c, p) : 0;
		if (r)
			return r;
	}
	return lm_err(s);
}

static void *sender_main(void *arg)
{
	struct lm_chan *c = arg;
	livemig_session *s = c->s;
	struct share p = {.synced = true}; /* "pass 0": nothing in doubt */
	uint32_t gen = 0;

	while (!next_pass(c, &gen, &p)) {
		int r = send_share(c, &p);
		if (r == LM_LOST)
			r = recover(c, &p);
		if (r)
			break;
		pthread_mutex_lock(&s->lock);
		s->src.pass_done++;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		if (p.final) {
			if (s->p.channel_recovery)
				await_final(c, &p);
			break;
		}
	}
	c->cpu_seconds = lm_thread_cpu_seconds();
	return NULL;
}

/*
 * The link rate multifd-compression=auto needs (codec/auto.h): the bytes
 * the peer acknowledged on every channel (or, not on TCP, the bytes
 * written), sampled by one owner - the control thread, while it waits for
 * the senders - and published for every channel's codec, with the budget
 * of a link probe.  One getsockopt per channel per 100 ms window, or per
 * 2 ms tick during a probe, and none unless the codec wants the link.
 * may_probe: the senders send, or are about to send, a pass that is not
 * the final one.
 */
static void sample_link(livemig_session *s, bool may_probe)
{
	if (!s->src.measure_link || !lm_auto_link_due(&s->src.link, lm_now_ns()))
		return;
	uint64_t delivered = 0;
	/* Under the lock: with channel-recovery a sender may replace its
	 * connection meanwhile. */
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->p.channels; i++) {
		int64_t acked = s->ch[i].fd >= 0 ? lm_sock_acked(s->ch[i].fd) : -1;
		delivered += acked >= 0 ? (uint64_t)acked
					: atomic_load_explicit(&s->ch[i].wire_bytes,
							       memory_order_relaxed);
	}
	pthread_mutex_unlock(&s->lock);
	/* The time after the counters: a probe lasts milliseconds, and a wait
	 * for the lock must not read as a faster link. */
	int64_t budget = lm_auto_link(&s->src.link, delivered, lm_now_ns(), may_probe);
	atomic_store_explicit(&s->src.link_rate, (uint64_t)s->src.link.rate, memory_order_relaxed);
	if (budget >= 0)
		atomic_store_explicit(&s->src.probe_left, budget, memory_order_relaxed);
}

#define LINK_TICK_MS 50 /* half auto's window: no window runs long */
#define PROBE_TICK_MS 2 /* a probe on a fast link ends in milliseconds */

/* Waits on s->cond (s->lock held) for a wake-up - or, while the link is
 * measured, a tick - then samples the link without the lock (may_probe:
 * see sample_link). */
static void wait_sampling(livemig_session *s, bool may_probe)
{
	if (!s->src.measure_link) {
		pthread_cond_wait(&s->cond, &s->lock);
		return;
	}
	wait_ms(s, s->src.link.probing ? PROBE_TICK_MS : LINK_TICK_MS);
	pthread_mutex_unlock(&s->lock);
	sample_link(s, may_probe);
	pthread_mutex_lock(&s->lock);
}

/* Publishes a pass and waits until every channel has sent its SYNC. */
static int run_pass(livemig_session *s, uint64_t *work, size_t n, bool final)
{
	if (s->src.chunk_owner) /* the senders are between passes */
		memset((void *)s->src.chunk_owner, 0, (n + LM_PACKET_PAGES - 1) / LM_PACKET_PAGES);
	/* Before the pass is published: a probe that starts with it is there
	 * for every channel's first packet. */
	sample_link(s, !final);
	pthread_mutex_lock(&s->lock);
	free(s->src.work);
	s->src.work = work;
	s->src.nwork = n;
	atomic_store(&s->src.cursor, 0);
	s->src.pending_pages = 0; /* they are the pass's now */
	s->iteration++;
	s->src.pass_final = final;
	s->src.pass_done = 0;
	s->src.pass_gen++;
	uint32_t pass = s->iteration;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	lm_event_pass(s, pass);
	pthread_mutex_lock(&s->lock);
	while (s->src.pass_done < s->p.channels && !lm_quit(s))
		wait_sampling(s, !final);
	pthread_mutex_unlock(&s->lock);
	sample_link(s, false); /* a probe still running ends with its pass */
	if (lm_quit(s))
		return lm_err(s);
	if (final)
		return 0; /* COMPLETE ends the final pass */
	pthread_mutex_lock(&s->lock);
	s->src.iter_sent = s->iteration; /* before: its ack may come at once */
	pthread_mutex_unlock(&s->lock);
	if (lm_send_msg(s, &(struct lm_msg){.type = LM_MSG_ITER, .iteration = s->iteration}))
		return lm_fail(s, -ECONNRESET, "main channel: send failed%s", lm_main_fatal(s));
	/* Wait until the destination has written the whole pass, so that what
	 * is still queued in socket buffers drains while the guest runs. */
	pthread_mutex_lock(&s->lock);
	while (s->src.acked_iteration < s->iteration && !lm_quit(s) && !s->p.x_no_barrier)
		wait_sampling(s, false);
	pthread_mutex_unlock(&s->lock);
	return lm_quit(s) ? lm_err(s) : 0;
}

/* ---- return path: messages from the destination -------------------------- */
static void *return_path_main(void *arg)
{
	livemig_session *s = arg;
	struct lm_msg m;

	while (!lm_recv_msg(s, &m)) {
		if (m.type == LM_MSG_ITER_ACK) {
			/* Each pass is acknowledged once, in order, after its ITER. */
			pthread_mutex_lock(&s->lock);
			bool next = m.iteration == s->src.acked_iteration + 1 &&
				    m.iteration <= s->src.iter_sent;
			if (next)
				s->src.acked_iteration = m.iteration;
			pthread_cond_broadcast(&s->cond);
			pthread_mutex_unlock(&s->lock);
			if (next)
				continue;
			lm_fail(s, -EPROTO, "main channel: ITER_ACK for pass %u after pass %u",
				m.iteration, s->src.acked_iteration);
			break;
		}
		/* RESULT answers COMPLETE, once; OUTCOME answers COMMIT and is
		 * the destination's last word. */
		pthread_mutex_lock(&s->lock);
		bool result = m.type == LM_MSG_RESULT && atomic_load(&s->src.complete_sent) &&
			      !s->src.result_ready;
		bool outcome = m.type == LM_MSG_OUTCOME && atomic_load(&s->src.commit_started);
		bool loaded = m.type == LM_MSG_DEVSTATE_LOADED && atomic_load(&s->src.devstate_sent) &&
			      !s->src.devstate_loaded;
		if (loaded) {
			s->src.devstate_loaded = true;
		} else if (result) {
			s->src.result_ready = true;
			s->src.result_ok = m.result.ok;
			s->src.result_digest = m.result.digest;
			s->src.cpu_remote = (double)m.result.cpu_us / 1e6;
		} else if (outcome) {
			s->src.outcome_ready = true;
			s->src.outcome_committed = m.committed;
		}
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		if (outcome)
			break;
		if (!result && !loaded) {
			lm_fail(s, -EPROTO, "main channel: unexpected message %u", m.type);
			break;
		}
	}
	return NULL;
}

static uint64_t wire_bytes(livemig_session *s)
{
	uint64_t b = 0;
	for (unsigned i = 0; i < s->p.channels; i++)
		b += atomic_load_explicit(&s->ch[i].wire_bytes, memory_order_relaxed);
	return b;
}

/* run_pass, recording the pass for the statistics and the bandwidth
 * estimate (bytes from publishing the list to the destination's ack). */
static int timed_pass(livemig_session *s, uint64_t *work, size_t n, bool final)
{
	uint64_t t0 = lm_now_ns(), b0 = wire_bytes(s);
	int r = run_pass(s, work, n, final);
	if (r)
		return r;
	struct lm_iter_stat it = {.pages = n,
				  .bytes = wire_bytes(s) - b0,
				  .duration_ms = (lm_now_ns() - t0) / 1000000};
	return lm_iter_record(s, &it);
}

static uint64_t *all_pages(livemig_session *s, size_t *n)
{
	uint64_t *w = malloc(s->total_pages * sizeof(*w));
	if (!w)
		return NULL;
	size_t k = 0;
	for (unsigned b = 0; b < s->nblocks; b++)
		for (uint64_t p = 0; p < s->blocks[b].pages; p++)
			w[k++] = LM_GPN(b, p);
	*n = k;
	return w;
}

static int commit(livemig_session *s);

static int source_run(livemig_session *s)
{
	int r;

	uint64_t total = 0;
	for (unsigned i = 0; i < s->nblocks; i++) {
		total += s->blocks[i].pages;
		s->blocks[i].hash = calloc(s->blocks[i].pages, sizeof(struct lm_h128));
		if (!s->blocks[i].hash)
			return lm_fail(s, -ENOMEM, "out of memory for page hashes");
	}
	pthread_mutex_lock(&s->lock); /* the statistics read it */
	s->total_pages = total;
	pthread_mutex_unlock(&s->lock);
	if (s->p.channel_recovery &&
	    !(s->src.chunk_owner = calloc((total + LM_PACKET_PAGES - 1) / LM_PACKET_PAGES, 1)))
		return lm_fail(s, -ENOMEM, "out of memory for channel-recovery");
	/* Recovery resends the current pass only: the ones before must be
	 * acknowledged. */
	if (s->p.channel_recovery && s->p.x_no_barrier)
		return lm_fail(s, -EINVAL, "channel-recovery needs the pass barrier (not with "
			       "x-no-barrier)");
	if ((r = connect_all(s)) || (r = negotiate(s)))
		return r;
	s->t_setup = lm_now_ns();
	lm_set_status(s, LIVEMIG_STATUS_ACTIVE);
	if ((r = pthread_create(&s->src.rp, NULL, return_path_main, s)))
		return lm_fail(s, -r, "cannot create return-path thread");
	s->src.rp_started = true;
	if ((r = lm_start_channels(s, sender_main)))
		return r;
	s->src.measure_link = lm_codec_by_method(s->p.method)->uses_link && !s->src.start_bw &&
			      !s->p.x_auto[0]; /* the test hook fixes the link */
	/* A probe: two packets per channel, so that each one sends raw. */
	s->src.link.probe_bytes = 2ull * s->p.channels * LM_PACKET_PAGES * LM_PAGE_SIZE;

	/* A running guest: track its writes from before the first page goes. */
	if (s->src.live && (r = lm_precopy_start(s)))
		return r;
	/* Pass 1 sends every page. */
	size_t n;
	uint64_t *w = all_pages(s, &n);
	if (!w)
		return lm_fail(s, -ENOMEM, "out of memory for the page list");
	if ((r = timed_pass(s, w, n, false)))
		return r;
	/* Then what the guest dirtied, pass after pass, until the rest fits in
	 * downtime-limit. */
	if (s->src.live && (r = lm_precopy_converge(s, timed_pass)))
		return r;

	/* Switchover: the guest stops here; the final pass sends what it
	 * dirtied since the last sync (nothing for an idle guest) and
	 * SYNC|FINAL. */
	pthread_mutex_lock(&s->lock);
	s->src.t_stop = lm_now_ns();
	s->src.precopy_bytes = wire_bytes(s);
	s->src.switchover_limit_ms = s->p.downtime_limit_ms; /* changeable: as it is now */
	s->src.switchover_deadline =
		s->src.t_stop + (s->p.downtime_limit_ms + s->p.switchover_timeout_ms) * 1000000ull;
	pthread_cond_broadcast(&s->cond); /* the watchdog owns it */
	pthread_mutex_unlock(&s->lock);
	lm_set_status(s, LIVEMIG_STATUS_DEVICE);
	w = NULL;
	n = 0;
	if (s->src.live && (r = lm_precopy_stop(s, &w, &n)))
		return r;
	if ((r = timed_pass(s, w, n, true)))
		return r;
	lm_join_channels(s);
	uint64_t t_verify = lm_now_ns();
	s->src.final_pass_ms = (t_verify - s->src.t_stop) / 1000000;

	struct lm_msg m = {.type = LM_MSG_COMPLETE, .complete = {.iteration = s->iteration}};
	uint64_t unsent = lm_image_sum(s, &m.complete);
	s->digest = m.complete.digest;
	if (unsent)
		return lm_fail(s, -EIO, "%llu pages were never sent", (unsigned long long)unsent);
	atomic_store(&s->src.complete_sent, true);
	if (lm_send_msg(s, &m))
		return lm_fail(s, -ECONNRESET, "main channel: cannot send digest");

	/* RESULT, within the switchover deadline (the watchdog's). */
	pthread_mutex_lock(&s->lock);
	while (!s->src.result_ready && !lm_quit(s))
		pthread_cond_wait(&s->cond, &s->lock);
	bool ready = s->src.result_ready; /* then the return path writes it no more */
	pthread_mutex_unlock(&s->lock);
	if (!ready)
		return lm_err(s);
	s->t_end = lm_now_ns();
	s->src.verify_ms = (s->t_end - t_verify) / 1000000;
	bool same = s->src.result_digest.lo == s->digest.lo && s->src.result_digest.hi == s->digest.hi;
	s->verify = s->src.result_ok && same;
	if (!s->verify)
		return lm_fail(s, -EIO, "destination image differs from the source (digest mismatch)");
	/* The RAM is verified; the device state follows, then COMMIT. */
	if (s->dev_on) {
		if ((r = lm_devstate_send(s)))
			return r;
		s->t_end = lm_now_ns(); /* the downtime ends when the destination has it all */
	}
	return commit(s);
}

/*
 * What the destination did, asked on a new connection (a RESOLVE hello,
 * then msg: COMMIT to hand the guest over, CANCEL to take it back):
 * *committed is its answer.  0, or -errno when the destination could not
 * be reached or did not answer within net-timeout.
 */
static int resolve_once(livemig_session *s, uint16_t msg, bool *committed)
{
	char err[256];
	const char *why;
	struct lm_msg m;
	struct lm_tls_conn *tls;
	/* Not ended by quit: it may be what brought us here. */
	int fd = open_conn(s, 0, NULL, &tls, err, sizeof(err));
	if (fd < 0)
		return fd;
	int r = send_hello(s, fd, tls, 0, LM_HELLO_RESOLVE);
	if (!r)
		r = lm_write_msg_fd(fd, tls, &(struct lm_msg){.type = msg});
	if (!r)
		r = lm_read_msg_fd(fd, tls, s->p.net_timeout_s, &m, &why);
	if (!r && m.type != LM_MSG_OUTCOME)
		r = -EPROTO;
	if (!r) /* the echo: proof for the destination that we read it */
		lm_write_msg_fd(fd, tls, &m);
	lm_io_close(fd, tls);
	if (!r)
		*committed = m.committed;
	return r;
}

/*
 * COMMIT went out but its OUTCOME did not come: the destination may never
 * have read it (it waits, in doubt) or may run the guest.  Tells it again
 * on new connections, one a second for 3 x net-timeout (the destination
 * waits in doubt for as long from when it noticed).
 */
static int resolve_commit(livemig_session *s)
{
	char cause[256];
	if (lm_quit(s))
		snprintf(cause, sizeof(cause), "%s", livemig_last_error(s));
	else
		snprintf(cause, sizeof(cause), "none within net-timeout, %u s", s->p.net_timeout_s);
	lm_log(s, 1, "switchover: no answer to COMMIT (%s); telling the destination again",
	       cause);
	uint64_t until = lm_now_ns() + 3ull * s->p.net_timeout_s * 1000000000ull;
	int r = -ENOTCONN;
	if (!strcmp(s->p.x_lose_commit, "always"))
		until = 0; /* the test hook: not even once */
	while (lm_now_ns() < until) {
		uint64_t t0 = lm_now_ns();
		bool committed;
		if (!(r = resolve_once(s, LM_MSG_COMMIT, &committed))) {
			if (committed) {
				lm_log(s, 1, "switchover: the destination confirmed COMMIT");
				return 0;
			}
			/* Not an answer a destination gives to COMMIT; one
			 * that gives it runs no guest. */
			return lm_fail(s, -EIO, "the destination discarded its image");
		}
		uint64_t spent = lm_now_ns() - t0;
		if (spent < 1000000000ull) {
			struct timespec ts = {0, (long)(1000000000ull - spent)};
			nanosleep(&ts, NULL);
		}
	}
	lm_log(s, 0, "outcome unknown: COMMIT was sent, the destination did not confirm it (%s; "
		     "last try: %s); the guest stays stopped here (resume-source resumes it once "
		     "the destination says it does not run it)",
	       cause, strerror(-r));
	s->unknown = true;
	lm_fail(s, LM_OUTCOME_UNKNOWN, "switchover: COMMIT sent, the destination did not confirm "
		"it (%s)", cause);
	return LM_OUTCOME_UNKNOWN;
}

/* The test hook x-lose-commit: COMMIT counts as written and is not, as
 * when the link dies right after the write: the main channel is reset (a
 * clean close would tell the destination that no COMMIT is coming) and an
 * unconnected socket takes its place. */
static int lose_commit(livemig_session *s)
{
	lm_log(s, 1, "x-lose-commit: COMMIT not sent, the main channel reset");
	struct linger l = {.l_onoff = 1, .l_linger = 0};
	int dummy = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r = 0;
	if (dummy < 0 || setsockopt(s->main_fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) ||
	    dup2(dummy, s->main_fd) < 0)
		r = -errno;
	if (dummy >= 0)
		close(dummy);
	return r; /* the return path's next read fails: not an end of stream */
}

/*
 * The point of no return.  From here no cancel, timeout or switchover
 * deadline applies (they check commit_started under the same lock); once
 * COMMIT is written whole the guest is the destination's and is never
 * resumed here.  A COMMIT that could not be written leaves the destination
 * without it: the guest resumes here.
 */
static int commit(livemig_session *s)
{
	pthread_mutex_lock(&s->lock);
	bool go = !lm_quit(s);
	if (go)
		atomic_store(&s->src.commit_started, true);
	pthread_mutex_unlock(&s->lock);
	if (!go)
		return lm_err(s);
	atomic_store(&s->hb_stop, true); /* COMMIT is the last thing we send */
	int r = strcmp(s->p.x_lose_commit, "off") ? lose_commit(s)
				   : lm_send_msg(s, &(struct lm_msg){.type = LM_MSG_COMMIT});
	if (r)
		return lm_fail(s, r, "main channel: cannot send COMMIT: %s", strerror(-r));
	s->src.committed = true;

	/* OUTCOME, within net-timeout: the destination answers at once. */
	uint64_t until = lm_now_ns() + s->p.net_timeout_s * 1000000000ull;
	pthread_mutex_lock(&s->lock);
	while (!s->src.outcome_ready && !lm_quit(s) && lm_now_ns() < until)
		lm_cond_wait_until(s, until);
	bool ready = s->src.outcome_ready, theirs = s->src.outcome_committed;
	pthread_mutex_unlock(&s->lock);
	if (ready && theirs) {
		/* The echo: the destination's proof that we read it. */
		lm_send_msg(s, &(struct lm_msg){.type = LM_MSG_OUTCOME, .committed = true});
		shutdown(s->main_fd, SHUT_WR);
		return 0;
	}
	if (ready)
		return lm_fail(s, -EIO, "the destination discarded its image");
	/* Nothing else proves anything: a clean close or an ERROR may come
	 * from a relay between us that swallowed the destination's OUTCOME.
	 * Only the destination itself, asked again, can say. */
	return resolve_commit(s);
}

int livemig_resume_source(livemig_session *s)
{
	if (!s || s->role != LIVEMIG_SOURCE || !s->waited ||
	    atomic_load(&s->status) != LIVEMIG_STATUS_UNKNOWN)
		return -EINVAL;
	bool committed;
	int r = resolve_once(s, LM_MSG_CANCEL, &committed);
	if (r) {
		lm_log(s, 0, "resume-source refused: the destination cannot be asked (%s) and may "
			     "run the guest", strerror(-r));
		return -EHOSTUNREACH;
	}
	if (committed) {
		lm_log(s, 0, "resume-source refused: the destination runs the guest");
		lm_set_status(s, LIVEMIG_STATUS_COMPLETED);
		return -EBUSY;
	}
	if (s->src.guest_stopped) {
		s->src.guest.resume(s->src.guest_opaque);
		s->src.guest_stopped = false;
	}
	lm_set_status(s, LIVEMIG_STATUS_FAILED);
	lm_log(s, 1, "resume-source: the destination discarded its image; the guest runs here");
	return 0;
}

void *lm_source_main(void *arg)
{
	livemig_session *s = arg;
	int r = source_run(s);

	/* A failed or cancelled migration leaves the guest running here: the
	 * destination runs it only after COMMIT.  Once COMMIT went out and
	 * no answer came the guest stays stopped (two running copies are
	 * worse than a stopped one): livemig_resume_source() settles it. */
	if (r && !s->unknown && s->src.guest_stopped) {
		s->src.guest.resume(s->src.guest_opaque);
		s->src.guest_stopped = false;
		/* A destination that may have verified the image and lost
		 * the main channel (or failed on its own) waits for our word
		 * on a resolving connection: tell it. */
		pthread_mutex_lock(&s->lock); /* the return path may still run */
		bool asked = s->peer_error;
		pthread_mutex_unlock(&s->lock);
		bool committed;
		if (atomic_load(&s->src.complete_sent) && !s->src.committed &&
		    (atomic_load(&s->main_broken) || asked) &&
		    !resolve_once(s, LM_MSG_CANCEL, &committed))
			lm_log(s, 1, "switchover: the destination was told to discard its image");
	}
	if (s->src.live)
		lm_precopy_end(s);
	lm_ctl_finish(s, r);
	return NULL;
}
