/* SPDX-License-Identifier: MIT */
/*
 * Destination side.  The control thread takes the main channel and the
 * multifd channels in any order (each identified by its hello) as the gate
 * (gate.c) accepts and vets them, concurrently; then it allocates
 * RAM from the source's announcement, starts one receiver per channel and
 * then serves the main channel.  Receivers validate every packet before
 * using it and write pages straight into guest memory; at each SYNC they
 * wait for one another (DESIGN.md rule 1), so a page of pass k+1 can never
 * be overtaken by its stale copy of pass k on a slower channel.  On
 * COMPLETE the control thread waits for every receiver's FINAL sync, sums
 * the per-page hashes and answers OK or FAIL.
 *
 * With channel-recovery an acceptor thread takes replacement connections
 * (RECONNECT hellos) and hands each to its channel's receiver, which
 * answers where it stands and reads on (docs/design.md, "Channel
 * recovery").
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "util/util.h"

#define ACCEPT_REST_SECONDS 30 /* after the first connection */
#define HELLO_SECONDS 10

/* ---- handshake ------------------------------------------------------------ */
static bool explicitly(const livemig_session *s, enum lm_param_id id)
{
	return s->p.set_mask & (1ull << id);
}

/* A connection of accept_all's that is not the source's: closed, counted
 * and logged; the destination waits on for the source. */
static void refuse(livemig_session *s, int fd, struct lm_tls_conn *tls, const char *why)
{
	lm_io_close(fd, tls);
	lm_gate_refused(s, "refused a connection: %s (still waiting for the source)", why);
}

/*
 * Why the connection with hello h cannot be the next of this migration
 * (NULL: it can): first is whether none has been taken yet.  why holds
 * the text when it needs one.
 */
static const char *misfit(livemig_session *s, const struct lm_hello *h, bool first, char *why,
			  size_t len)
{
	if (h->flags) {
		snprintf(why, len, "a %s hello before the migration began",
			 h->flags & LM_HELLO_RESOLVE ? "resolving" : "reconnecting");
		return why;
	}
	if (!first && (memcmp(s->uuid, h->uuid, sizeof(s->uuid)) || h->nchannels != s->p.channels))
		return "it belongs to another migration (session id or channel count differs)";
	if ((h->channel ? s->ch[h->channel - 1].fd : s->main_fd) >= 0) {
		snprintf(why, len, "duplicate channel id %u", h->channel);
		return why;
	}
	return NULL;
}

/*
 * Takes the source's connections: the main channel and every multifd
 * channel, in any order, as the gate vets them (each one concurrently,
 * within HELLO_SECONDS).  A connection that cannot be one of them (a bad
 * TLS handshake or hello, another session's, a duplicate) is refused and
 * the wait goes on; after the first good one the rest must come within
 * ACCEPT_REST_SECONDS, and with timeout all of them within that.
 */
/* Whether the main channel has something to read now (the source's
 * ERROR, or PARAMS), without waiting. */
static bool main_readable(livemig_session *s)
{
	struct pollfd p = {.fd = s->main_fd, .events = POLLIN};
	return (s->main_tls && lm_tls_pending(s->main_tls)) || poll(&p, 1, 0) > 0;
}

static int take_all(livemig_session *s)
{
	unsigned have = 0, want = 0; /* connections incl. main */
	unsigned wanted = 0;         /* channels the user set, if any */
	uint64_t deadline = 0;       /* for the rest, from the first one */
	uint64_t give_up = s->p.timeout_s ? lm_now_ns() + s->p.timeout_s * 1000000000ull : 0;
	bool first = true;

	while (!want || have < want) {
		struct lm_hello h;
		struct lm_tls_conn *tls;
		char buf[256];
		int fd = lm_gate_take(s, 100, HELLO_SECONDS, &h, &tls, buf, sizeof(buf));
		uint64_t now = lm_now_ns();
		if (fd >= 0 && (lm_quit(s) || (deadline && now > deadline) ||
				(give_up && now > give_up)))
			lm_io_close(fd, tls);
		if (lm_quit(s))
			return lm_err(s);
		if (deadline && now > deadline)
			return lm_fail(s, -ETIMEDOUT,
				       "only %u of %u connections arrived within %d s", have, want,
				       ACCEPT_REST_SECONDS);
		if (give_up && now > give_up)
			return lm_fail(s, -ETIMEDOUT, "timeout: the source did not connect within "
				       "%llu s (%llu connections refused)",
				       (unsigned long long)s->p.timeout_s,
				       (unsigned long long)atomic_load(&s->dst.refused));
		/* The source's own failure while it connects (a channel it
		 * cannot open, a refused handshake) comes as ERROR on the main
		 * channel: report it now, not ACCEPT_REST_SECONDS later as
		 * missing channels.  PARAMS, which the source sends once every
		 * connection is up, may come before the last one is taken
		 * here: kept for dest_run. */
		if (s->main_fd >= 0 && !s->dst.have_early && main_readable(s)) {
			s->main_rx = lm_now_ns(); /* the deadlines above bound this wait */
			int e = lm_recv_msg_wait(s, &s->dst.early, 0);
			if (e < 0) {
				if (fd >= 0)
					lm_io_close(fd, tls);
				return e;
			}
			s->dst.have_early = e == 0;
		}
		if (fd == -EAGAIN)
			continue;
		const char *why = fd < 0 ? buf : misfit(s, &h, first, buf, sizeof(buf));
		if (why) {
			refuse(s, fd, tls, why);
			continue;
		}
		if (first) {
			if (explicitly(s, LM_P_CHANNELS))
				wanted = s->p.channels;
			first = false;
			memcpy(s->uuid, h.uuid, sizeof(s->uuid));
			pthread_mutex_lock(&s->lock); /* the statistics read it */
			s->p.channels = h.nchannels;
			pthread_mutex_unlock(&s->lock);
			want = h.nchannels + 1u;
			deadline = lm_now_ns() + ACCEPT_REST_SECONDS * 1000000000ull;
			s->t_start = lm_now_ns();
		}
		/* The TLS session first: whoever sees the fd published may use it. */
		if (h.channel) {
			s->ch[h.channel - 1].tls = tls;
			lm_set_fd(s, &s->ch[h.channel - 1].fd, fd);
		} else {
			s->main_tls = tls;
			lm_set_fd(s, &s->main_fd, fd);
		}
		have++;
	}
	/* From here a silent peer is a slow peer, not an attack on the
	 * handshake: no time-outs per read.  The main channel's heartbeat
	 * and TCP keepalive bound the silence (liveness.c). */
	lm_set_timeout(s->main_fd, 0);
	for (unsigned i = 0; i < s->p.channels; i++)
		lm_set_timeout(s->ch[i].fd, 0);
	lm_main_tls_up(s);
	s->main_rx = lm_now_ns();
	/* Checked once every connection is in, so the main channel can carry
	 * the reason back to the source. */
	if (wanted && wanted != s->p.channels)
		return lm_fail(s, -EINVAL, "source uses %u channels, destination was set to %u",
			       s->p.channels, wanted);
	return 0;
}

/* take_all, then the connections still half open are strangers: closed. */
static int accept_all(livemig_session *s)
{
	int r = take_all(s);
	lm_gate_cut(s, r ? "the wait for the source ended" : "the source's connections are in");
	return r;
}

/* Faults in [p, p + size): preallocation. */
static void populate(void *p, uint64_t size)
{
	if (madvise(p, size, MADV_POPULATE_WRITE)) {
		/* Kernels before 5.14: touch every page. */
		for (uint64_t off = 0; off < size; off += LM_PAGE_SIZE)
			((volatile uint8_t *)p)[off] = 0;
	}
}

uint64_t lm_ram_limit(const livemig_session *s)
{
	return s->p.max_ram ? s->p.max_ram
			    : (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
}

void *lm_map_ram(uint64_t size, bool prealloc)
{
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	/* As QEMU does for anonymous guest RAM: fewer faults when the pages
	 * arrive.  Untouched memory is still never faulted in. */
	madvise(m, size, MADV_HUGEPAGE);
	if (prealloc)
		populate(m, size);
	return m;
}

static int alloc_block(livemig_session *s, struct lm_block *b)
{
	if (!b->host) {
		void *m = lm_map_ram(b->size, s->dst.prealloc);
		if (!m)
			return lm_fail(s, -ENOMEM, "cannot allocate RAM block '%s' (%llu bytes)",
				       b->name, (unsigned long long)b->size);
		pthread_mutex_lock(&s->lock); /* livemig_ram_get() reads host */
		b->host = m;
		b->owned = true;
		pthread_mutex_unlock(&s->lock);
	} else if (s->dst.prealloc && !b->owned) { /* the embedder's memory */
		populate(b->host, b->size);
	}
	b->pages = b->size / LM_PAGE_SIZE;
	b->hash = calloc(b->pages, sizeof(*b->hash));
	b->received = calloc(lm_bitmap_words(b->pages), sizeof(uint64_t));
	if (!b->hash || !b->received)
		return lm_fail(s, -ENOMEM, "out of memory for block '%s' metadata", b->name);
	/* Memory the embedder registered may hold anything: every zero page
	 * must then be written. */
	if (!b->owned)
		memset((void *)b->received, 0xff, lm_bitmap_words(b->pages) * sizeof(uint64_t));
	return 0;
}

/* The block the embedder registered under name, or NULL. */
static struct lm_block *registered(livemig_session *s, const char *name)
{
	for (unsigned j = 0; j < s->nblocks; j++)
		if (!strcmp(s->blocks[j].name, name))
			return &s->blocks[j];
	return NULL;
}

/* PARAMS (already decoded, see lm_msg_decode) against what only this
 * session knows: the hellos, the codec table, the registered blocks. */
static int check_params(livemig_session *s, const struct lm_msg_params *p)
{
	const struct lm_codec_ops *codec = lm_codec_by_method(p->method);

	if (p->channels != s->p.channels)
		return lm_fail(s, -EPROTO, "PARAMS channel count differs from the hellos'");
	if (!codec || p->level > (codec->max_level > 0 ? codec->max_level : 0) ||
	    (codec->max_level > 0 && p->level < codec->min_level))
		return lm_fail(s, -EPROTO, "PARAMS: unknown method %u or level %u", p->method,
			       p->level);
	if (p->device_state && !s->dev_on)
		return lm_fail(s, -EINVAL, "the source sends device state and this destination has "
			       "nothing to load it into (livemig_set_device_state)");
	if (!p->device_state && s->dev_on)
		return lm_fail(s, -EINVAL, "this destination expects device state and the source "
			       "sends none (livemig_set_device_state on both sides)");
	/* Only as much RAM as agreed to: nothing is allocated on the source's
	 * word before this. */
	uint64_t total = 0, limit = lm_ram_limit(s);
	for (uint32_t i = 0; i < p->nblocks; i++)
		total += p->blocks[i].size; /* each < 2^44: no overflow in 64 blocks */
	if (total > limit)
		return lm_fail(s, -E2BIG, "PARAMS: the source announces %llu bytes of RAM, more than "
			       "%s %llu bytes", (unsigned long long)total,
			       s->p.max_ram ? "max-ram" : "this machine's memory,",
			       (unsigned long long)limit);
	/* A block the embedder registered must come, with the same size. */
	for (unsigned j = 0; j < s->nblocks; j++) {
		const struct lm_block *reg = &s->blocks[j];
		const struct lm_msg_block *b = NULL;
		for (uint32_t i = 0; i < p->nblocks && !b; i++)
			if (!strcmp(p->blocks[i].name, reg->name))
				b = &p->blocks[i];
		if (!b)
			return lm_fail(s, -EINVAL,
				       "registered block '%s' is not sent by the source", reg->name);
		if (b->size != reg->size)
			return lm_fail(s, -EINVAL,
				       "block '%s': source has %llu bytes, destination "
				       "registered %llu", reg->name, (unsigned long long)b->size,
				       (unsigned long long)reg->size);
	}
	return 0;
}

/* What the source announced, as parameters: the ones the destination set
 * must match it (lm_params_match_source), the others follow it. */
static int adopt_params(livemig_session *s, const struct lm_msg_params *p)
{
	struct lm_params src;
	char why[256];
	lm_params_default(&src);
	src.channels = p->channels;
	src.method = p->method;
	src.zero_detect = p->zero_detect;
	src.channel_recovery = p->channel_recovery;
	lm_method_set_level(&src, p->method, p->level);
	pthread_mutex_lock(&s->lock); /* the statistics read s->p */
	int r = lm_params_match_source(&s->p, &src, why, sizeof(why));
	pthread_mutex_unlock(&s->lock);
	return r ? lm_fail(s, -EINVAL, "%s", why) : 0;
}

/* Checks PARAMS, then adopts its parameters and allocates its blocks
 * (registered ones keep the embedder's memory). */
static int take_params(livemig_session *s, const struct lm_msg_params *p)
{
	int r;
	if ((r = check_params(s, p)) || (r = adopt_params(s, p)))
		return r;

	struct lm_block blocks[LM_MAX_BLOCKS];
	uint64_t total = 0;
	memset(blocks, 0, sizeof(blocks));
	for (uint32_t i = 0; i < p->nblocks; i++) {
		const struct lm_block *reg = registered(s, p->blocks[i].name);
		strcpy(blocks[i].name, p->blocks[i].name);
		blocks[i].size = p->blocks[i].size;
		blocks[i].host = reg ? reg->host : NULL;
		blocks[i].owned = reg && reg->owned; /* mapped at start (prealloc) */
		total += blocks[i].size / LM_PAGE_SIZE;
	}
	/* livemig_ram_get() and the statistics read these from any thread. */
	pthread_mutex_lock(&s->lock);
	memcpy(s->blocks, blocks, sizeof(blocks));
	s->nblocks = p->nblocks;
	s->total_pages = total;
	pthread_mutex_unlock(&s->lock);
	for (uint32_t i = 0; i < p->nblocks; i++)
		if ((r = alloc_block(s, &s->blocks[i])))
			return r;
	return 0;
}

/* ---- receivers -------------------------------------------------------------- */

/* c's replacement connection, if the acceptor handed one over (s->lock
 * held), now c's to take, with its TLS session (*tls); else -1. */
static int pop_new_fd(struct lm_chan *c, struct lm_tls_conn **tls)
{
	int fd = c->new_fd;
	*tls = c->new_tls;
	c->new_fd = -1;
	c->new_tls = NULL;
	return fd;
}

/* Tells the sender on fd (tls) where c's receiver stands: in pass
 * `iteration` (the first whose SYNC it has not read), with c->seq packets
 * read whole. */
static int answer(struct lm_chan *c, int fd, struct lm_tls_conn *tls, uint32_t iteration)
{
	uint8_t buf[LM_ANSWER_SIZE];
	struct lm_answer a = {.iteration = iteration,
			      .seq = c->seq,
			      .normal = atomic_load_explicit(&c->normal, memory_order_relaxed),
			      .zero = atomic_load_explicit(&c->zero, memory_order_relaxed)};
	lm_answer_encode(&a, buf);
	return lm_io_write(fd, tls, buf, sizeof(buf));
}

/* Answers the sender on fd for c's receiver, which has ended (c->ended
 * seen under s->lock: it writes nothing more), and closes fd. */
static void answer_ended(struct lm_chan *c, int fd, struct lm_tls_conn *tls)
{
	answer(c, fd, tls, c->end_pass);
	lm_io_close(fd, tls);
}

/*
 * c's receiver takes the replacement fd: it becomes c's connection (the
 * old one is closed), the decoders start afresh - as the sender's encoder
 * does - and the answer tells the sender what of the pass to send again.
 * 0; -errno when the answer could not go (the new connection is broken
 * too, and the next read finds it); or the session's failure (latched).
 */
static int take_over(struct lm_chan *c, int fd, struct lm_tls_conn *tls, uint32_t iteration)
{
	livemig_session *s = c->s;
	char phase[32];
	lm_chan_replace_conn(s, c, fd, tls);
	int r = lm_chan_renew_codec(s, c);
	if (!r)
		r = answer(c, fd, tls, iteration);
	if (r)
		return r;
	atomic_store_explicit(&c->recoveries, c->recoveries + 1, memory_order_relaxed);
	lm_log(s, 1, "channel %u: replacement connection taken in phase %s, after %llu packets, "
		     "in pass %u", c->id, lm_phase(s, phase, sizeof(phase)),
	       (unsigned long long)c->seq, iteration);
	return 0;
}

/*
 * c's connection was lost (c->lost, in c->lost_what) in pass `iteration`,
 * with channel-recovery on: waits up to net-timeout for the replacement
 * the acceptor hands over and takes it.  The packet the lost connection
 * cut short is dropped (the caller rewinds c->seq): its pages come again
 * with the rest of the sender's share of the pass.  0 when reading goes on;
 * else the session's failure.  Ends when the session quits.
 */
static int await_replacement(struct lm_chan *c, uint32_t iteration)
{
	livemig_session *s = c->s;
	char buf[32], cause[80];
	const char *phase = lm_phase(s, buf, sizeof(buf));
	lm_lost_cause(c->lost, s->p.net_timeout_s, cause, sizeof(cause));
	lm_log(s, 1, "channel %u: connection lost %s in phase %s (%s); waiting up to %u s for its "
		     "replacement", c->id, c->lost_what, phase, cause, s->p.net_timeout_s);
	for (;;) {
		uint64_t until = lm_now_ns() + s->p.net_timeout_s * 1000000000ull;
		struct lm_tls_conn *tls;
		pthread_mutex_lock(&s->lock);
		while (c->new_fd < 0 && !lm_quit(s) && lm_now_ns() < until)
			lm_cond_wait_until(s, until);
		int fd = pop_new_fd(c, &tls);
		pthread_mutex_unlock(&s->lock);
		if (lm_quit(s)) {
			lm_io_close(fd, tls);
			return lm_err(s);
		}
		if (fd < 0)
			return lm_fail(s, c->lost, "channel %u: connection lost %s (%s); no "
				       "replacement within %u s (channel-recovery)", c->id,
				       c->lost_what, cause, s->p.net_timeout_s);
		if (!take_over(c, fd, tls, iteration))
			return 0;
	}
}

/* Every receiver waits here at the end of a pass until all have arrived. */
static int barrier(livemig_session *s, struct lm_chan *c, uint32_t iteration, bool final)
{
	if (s->p.x_no_barrier && !final)
		return 0; /* test hook: let passes overtake each other */
	pthread_mutex_lock(&s->lock);
	if (s->dst.bar_arrived == 0) {
		s->dst.bar_iter = iteration;
		s->dst.bar_final = final;
	} else if (s->dst.bar_iter != iteration || s->dst.bar_final != final) {
		pthread_mutex_unlock(&s->lock);
		return lm_fail(s, -EPROTO, "channel %u: SYNC for pass %u%s while others are at %u%s",
			       c->id, iteration, final ? " (final)" : "", s->dst.bar_iter,
			       s->dst.bar_final ? " (final)" : "");
	}
	if (++s->dst.bar_arrived == s->p.channels) {
		s->dst.bar_arrived = 0;
		s->dst.bar_gen++;
		s->dst.synced_iteration = iteration;
		s->dst.final_synced = final;
		pthread_cond_broadcast(&s->cond);
	} else {
		uint32_t g = s->dst.bar_gen;
		while (g == s->dst.bar_gen && !lm_quit(s)) {
			struct lm_tls_conn *tls;
			int fd = pop_new_fd(c, &tls); /* only ever with channel-recovery */
			if (fd < 0) {
				pthread_cond_wait(&s->cond, &s->lock);
				continue;
			}
			/* Replaced while it waits here with all of its pass: the
			 * answer says so, and nothing goes again.  A broken answer
			 * shows at the next read. */
			pthread_mutex_unlock(&s->lock);
			take_over(c, fd, tls, iteration + 1);
			pthread_mutex_lock(&s->lock);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return lm_quit(s) ? lm_err(s) : 0;
}

/* A read on c's connection failed with r, what says where: LM_LOST with
 * channel-recovery (the connection is then replaced), else the session's
 * failure. */
static int recv_fail(struct lm_chan *c, int r, const char *what)
{
	livemig_session *s = c->s;
	if (lm_quit(s))
		return lm_err(s);
	if (s->p.channel_recovery) {
		c->lost = r;
		c->lost_what = what;
		return LM_LOST;
	}
	if (r == -ETIMEDOUT)
		return lm_fail_silent(s, c->id); /* TCP keepalive */
	if (r == -ECONNRESET)
		return lm_fail_io(s, -ECONNRESET, "channel %u: connection closed %s", c->id, what);
	return lm_fail(s, r, "channel %u: %s: %s", c->id, what, strerror(-r));
}

/* Finishes a packet's CRC: the payload's running CRC, then the indices,
 * then the header (head holds both; its CRC field already zeroed). */
static uint32_t packet_crc(uint32_t payload_crc, const uint8_t *head, size_t head_len)
{
	uint32_t crc = lm_crc32c(payload_crc, head + LM_PACKET_HDR_SIZE,
				 head_len - LM_PACKET_HDR_SIZE);
	return lm_crc32c(crc, head, LM_PACKET_HDR_SIZE);
}

/* Page pg of b has (or may have) content now. */
static inline void mark_received(struct lm_block *b, uint32_t pg)
{
	atomic_fetch_or_explicit(&b->received[pg / 64], 1ull << (pg % 64), memory_order_relaxed);
}

static int recv_packet(struct lm_chan *c, uint32_t *iteration, bool *done)
{
	livemig_session *s = c->s;
	uint8_t head[LM_PACKET_HDR_SIZE + 4 * LM_PACKET_PAGES];
	uint32_t idx[LM_PACKET_PAGES];
	uint8_t *pages[LM_PACKET_PAGES];
	struct lm_packet_hdr h;
	const char *why;
	bool eof;
	int r;

	if (c->id == s->p.x_delay_channel) {
		struct timespec ts = {s->p.x_delay_ms / 1000, (long)(s->p.x_delay_ms % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
	r = lm_io_read(c->fd, c->tls, head, LM_PACKET_HDR_SIZE, &eof);
	if (r)
		return recv_fail(c, r, eof ? "before the final SYNC" : "inside a packet header");
	uint64_t block_pages[LM_MAX_BLOCKS];
	for (unsigned i = 0; i < s->nblocks; i++)
		block_pages[i] = s->blocks[i].pages;
	struct lm_packet_limits lim = {.methods = s->methods,
				       .channel = (uint16_t)c->id,
				       .next_seq = c->seq,
				       .nblocks = s->nblocks,
				       .block_pages = block_pages,
				       .max_payload = c->bufcap};
	if (lm_packet_decode(head, &h, &why) || lm_packet_check(&h, &lim, &why))
		return lm_fail(s, -EPROTO, "channel %u: packet %llu: %s", c->id,
			       (unsigned long long)c->seq, why);
	if (h.iteration != *iteration)
		return lm_fail(s, -EPROTO, "channel %u: packet of pass %u during pass %u", c->id,
			       h.iteration, *iteration);
	c->seq++;
	memset(head + 60, 0, 4);
	uint32_t n = h.normal + h.zero;
	size_t head_len = LM_PACKET_HDR_SIZE + 4 * (size_t)n;
	if (n && (r = lm_io_read(c->fd, c->tls, head + LM_PACKET_HDR_SIZE, 4 * (size_t)n, NULL)))
		return recv_fail(c, r, "inside a packet's page list");
	if (h.flags & LM_PKT_FLAG_SYNC) {
		if (packet_crc(0, head, head_len) != h.crc)
			return lm_fail(s, -EPROTO, "channel %u: SYNC packet checksum mismatch", c->id);
		bool final = h.flags & LM_PKT_FLAG_FINAL;
		atomic_store_explicit(&c->wire_bytes, c->wire_bytes + head_len,
				      memory_order_relaxed);
		r = barrier(s, c, h.iteration, final);
		(*iteration)++;
		*done = final;
		return r;
	}

	struct lm_block *b = &s->blocks[h.block];
	for (uint32_t i = 0; i < n; i++)
		idx[i] = lm_rd32(head + LM_PACKET_HDR_SIZE + 4 * i);
	if (lm_packet_check_indices(idx, n, b->pages, &why))
		return lm_fail(s, -EPROTO, "channel %u: %s", c->id, why);
	for (uint32_t i = 0; i < h.normal; i++)
		pages[i] = b->host + (uint64_t)idx[i] * LM_PAGE_SIZE;

	if (h.normal && h.method == LM_METHOD_NONE) {
		/* Straight into guest memory.  The checksum is verified after;
		 * a mismatch fails the whole migration, so the image that holds
		 * the bad bytes is never reported good.  The pages count as
		 * written from here: a packet that a lost connection cuts short
		 * (channel-recovery) leaves some half written, and a zero page
		 * sent again for one of them must clear it. */
		struct iovec iov[LM_PACKET_PAGES];
		int niov = 0;
		for (uint32_t i = 0; i < h.normal; i++) {
			mark_received(b, idx[i]);
			lm_iov_add_page(iov, &niov, pages[i]);
		}
		if ((r = lm_io_readv(c->fd, c->tls, iov, niov)))
			return recv_fail(c, r, "inside a packet's pages");
		/* CRC and hash page by page, while each is in cache. */
		uint32_t crc = 0;
		for (uint32_t i = 0; i < h.normal; i++) {
			crc = lm_crc32c(crc, pages[i], LM_PAGE_SIZE);
			b->hash[idx[i]] = s->page_hash(pages[i], LM_GPN(h.block, idx[i]));
		}
		if (packet_crc(crc, head, head_len) != h.crc)
			return lm_fail(s, -EPROTO, "channel %u: packet %llu checksum mismatch",
				       c->id, (unsigned long long)h.seq);
	} else if (h.normal) {
		if ((r = lm_io_read(c->fd, c->tls, c->buf, h.payload_len, NULL)))
			return recv_fail(c, r, "inside a packet's payload");
		if (packet_crc(lm_crc32c(0, c->buf, h.payload_len), head, head_len) != h.crc)
			return lm_fail(s, -EPROTO, "channel %u: packet %llu checksum mismatch",
				       c->id, (unsigned long long)h.seq);
		const struct lm_codec_ops *codec = lm_codec_by_method(h.method);
		r = codec->decompress(c->dctx[h.method], c->buf, h.payload_len, pages, h.normal);
		if (r)
			return lm_fail(s, -EPROTO, "channel %u: packet %llu: %s data is corrupt",
				       c->id, (unsigned long long)h.seq, codec->name);
		for (uint32_t i = 0; i < h.normal; i++) {
			mark_received(b, idx[i]);
			b->hash[idx[i]] = s->page_hash(pages[i], LM_GPN(h.block, idx[i]));
		}
	} else if (packet_crc(0, head, head_len) != h.crc) {
		return lm_fail(s, -EPROTO, "channel %u: packet %llu checksum mismatch", c->id,
			       (unsigned long long)h.seq);
	}

	for (uint32_t i = h.normal; i < n; i++) {
		/* Memory that never received this page is still zero: leave it
		 * untouched so it is never faulted in (DESIGN.md rule 4). */
		uint64_t bit = atomic_load_explicit(&b->received[idx[i] / 64],
						    memory_order_relaxed) &
			       (1ull << (idx[i] % 64));
		if (bit)
			memset(b->host + (uint64_t)idx[i] * LM_PAGE_SIZE, 0, LM_PAGE_SIZE);
		b->hash[idx[i]] = lm_zero_hash(LM_GPN(h.block, idx[i]));
	}
	lm_chan_count(c, h.normal, h.zero, head_len + h.payload_len, h.payload_len);
	return 0;
}

static void *receiver_main(void *arg)
{
	struct lm_chan *c = arg;
	livemig_session *s = c->s;
	uint32_t iteration = 1;
	bool done = false;
	int r = 0;

	while (!done && !r) {
		uint64_t seq = c->seq;
		r = recv_packet(c, &iteration, &done);
		if (r == LM_LOST) {
			c->seq = seq; /* the packet cut short comes again */
			r = await_replacement(c, iteration);
		}
	}
	/* With channel-recovery the sender waits for this: every channel
	 * has the final SYNC, its share is through. */
	if (done && s->p.channel_recovery)
		shutdown(c->fd, SHUT_WR);
	struct lm_tls_conn *late_tls;
	pthread_mutex_lock(&s->lock);
	c->ended = true;
	c->end_pass = iteration;
	int late = pop_new_fd(c, &late_tls);
	pthread_mutex_unlock(&s->lock);
	if (late >= 0) /* a replacement that came as it ended */
		answer_ended(c, late, late_tls);
	c->cpu_seconds = lm_thread_cpu_seconds();
	return NULL;
}

/* ---- the acceptor (channel-recovery) ------------------------------------------ */

/* A replacement connection for c: to its receiver, whose old connection
 * is shut down so that a read blocked on a silent one returns; or, when
 * the receiver has ended, answered here. */
static void hand_over(livemig_session *s, struct lm_chan *c, int fd, struct lm_tls_conn *tls)
{
	lm_set_timeout(fd, 0); /* as every channel's after the handshake */
	pthread_mutex_lock(&s->lock);
	bool ended = c->ended;
	if (!ended) {
		if (c->new_fd >= 0) /* one never taken: the newest is the sender's */
			lm_io_close(c->new_fd, c->new_tls);
		c->new_fd = fd;
		c->new_tls = tls;
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
	if (ended)
		answer_ended(c, fd, tls);
}

/*
 * From READY until the receivers are joined: accepts connections on the
 * listening socket.  A RECONNECT of this session goes to its channel's
 * receiver; anything else is closed and logged, and the migration goes on.
 */
static void *acceptor_main(void *arg)
{
	livemig_session *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->lock);
		bool stop = s->dst.acc_stop;
		pthread_mutex_unlock(&s->lock);
		if (stop || lm_quit(s))
			break;
		/* lm_acceptor_stop wakes the gate; a failure shuts the
		 * listening socket down, which wakes it too. */
		struct lm_hello h;
		struct lm_tls_conn *tls;
		char buf[256];
		const char *why = buf;
		int fd = lm_gate_take(s, 1000, HELLO_SECONDS, &h, &tls, buf, sizeof(buf));
		if (fd == -EAGAIN)
			continue;
		if (fd >= 0 && lm_reconnect_check(&h, s->uuid, s->p.channels, &why)) {
			lm_io_close(fd, tls);
			fd = -EPROTO;
		}
		if (fd < 0) {
			lm_gate_refused(s, "a connection during the migration: %s; closed", why);
			continue;
		}
		hand_over(s, &s->ch[h.channel - 1], fd, tls);
	}
	lm_gate_cut(s, "channel-recovery's acceptor stopped");
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->p.channels; i++) {
		struct lm_tls_conn *tls;
		int fd = pop_new_fd(&s->ch[i], &tls);
		lm_io_close(fd, tls);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int acceptor_start(livemig_session *s)
{
	int r = pthread_create(&s->dst.acc, NULL, acceptor_main, s);
	if (r)
		return lm_fail(s, -r, "cannot create the acceptor thread");
	s->dst.acc_started = true;
	return 0;
}

void lm_acceptor_stop(livemig_session *s)
{
	if (!s->dst.acc_started)
		return;
	pthread_mutex_lock(&s->lock);
	s->dst.acc_stop = true;
	pthread_mutex_unlock(&s->lock);
	/* The acceptor waits in lm_gate_take at most a second anyway; on its
	 * way out it cuts every vet still running short. */
	lm_gate_wake(s);
	pthread_join(s->dst.acc, NULL);
	pthread_mutex_lock(&s->lock); /* the gate serves resolve_wait next */
	s->dst.acc_stop = false;
	pthread_mutex_unlock(&s->lock);
	s->dst.acc_started = false;
}

/*
 * Waits until every receiver has passed SYNC k.  The source sends nothing
 * more until we acknowledge but HEARTBEATs (lm_recv_msg_wait consumes
 * them, and fails on silence), so any other message meanwhile is ERROR or
 * CANCEL (lm_recv_msg_wait turns those into the failure) or a protocol
 * error.
 */
static int wait_pass(livemig_session *s, uint32_t k)
{
	for (;;) {
		pthread_mutex_lock(&s->lock);
		bool done = s->dst.synced_iteration >= k;
		pthread_mutex_unlock(&s->lock);
		if (lm_quit(s))
			return lm_err(s);
		if (done)
			return 0;
		struct lm_msg m;
		int r = lm_recv_msg_wait(s, &m, 20);
		if (r < 0)
			return r;
		if (r == 0)
			return lm_fail(s, -EPROTO, "main channel: message %u before pass %u ended",
				       m.type, k);
	}
}

static int send_result(livemig_session *s, bool ok)
{
	double cpu = lm_thread_cpu_seconds();
	for (unsigned i = 0; i < s->p.channels; i++)
		cpu += s->ch[i].cpu_seconds;
	struct lm_msg m = {.type = LM_MSG_RESULT,
			   .result = {.ok = ok, .cpu_us = (uint64_t)(cpu * 1e6),
				      .digest = s->digest}};
	return lm_send_msg(s, &m);
}

/* The test hook x-stall-switchover: holds RESULT back for ms (while the
 * watchdog's heartbeats go on), or until the session fails. */
static void stall(livemig_session *s, uint64_t ms)
{
	for (uint64_t end = lm_now_ns() + ms * 1000000; lm_now_ns() < end && !lm_quit(s);) {
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
}

/* Whether the source echoed our OUTCOME on fd within timeout_s: the one
 * proof that it read it (a close may come from a relay, or from a source
 * that gave up waiting). */
static bool echoed(int fd, struct lm_tls_conn *tls, unsigned timeout_s)
{
	struct lm_msg m;
	const char *why;
	return !lm_read_msg_fd(fd, tls, timeout_s, &m, &why) && m.type == LM_MSG_OUTCOME;
}

/* The destination's word on the guest once RESULT OK is out. */
enum decision { UNDECIDED, COMMITTED, DISCARDED };

/*
 * Answers the source's resolving connections (a RESOLVE hello of this
 * session, then COMMIT or CANCEL) for 3 x net-timeout from now, with our
 * decision: 1 committed, 0 discarded; an undecided destination (in doubt)
 * adopts the first request.  Ends early once a source echoes the answer
 * (it read it).  Returns 0 (the guest is ours),
 * failed (the latched error: the image is discarded) or
 * LM_OUTCOME_UNKNOWN (still undecided at the end).
 */
static int resolve_wait(livemig_session *s, enum decision d, int failed)
{
	unsigned wait_s = 3 * s->p.net_timeout_s;
	uint64_t until = lm_now_ns() + wait_s * 1000000000ull;
	if (d == UNDECIDED)
		lm_log(s, 1, "switchover: in doubt: the image is verified, but the source's decision "
			     "did not come (%s); waiting up to %u s for it",
		       livemig_last_error(s), wait_s);
	while (lm_now_ns() < until) {
		struct lm_hello h;
		struct lm_msg m;
		struct lm_tls_conn *tls;
		char buf[256];
		const char *why = buf;
		/* A resolving source sends its hello at once: a connection
		 * that does not is closed soon (the gate vets each one apart:
		 * it holds nobody up meanwhile). */
		int fd = lm_gate_take(s, 100, 2, &h, &tls, buf, sizeof(buf));
		if (fd == -EAGAIN)
			continue;
		if (fd >= 0 && (!(h.flags & LM_HELLO_RESOLVE) || memcmp(h.uuid, s->uuid, 16))) {
			lm_io_close(fd, tls);
			fd = -EPROTO;
			why = "not a resolving connection of this migration";
		}
		if (fd >= 0 && lm_read_msg_fd(fd, tls, s->p.net_timeout_s, &m, &why) == 0 &&
		    (m.type == LM_MSG_COMMIT || m.type == LM_MSG_CANCEL)) {
			if (d == UNDECIDED)
				d = m.type == LM_MSG_COMMIT ? COMMITTED : DISCARDED;
			if (d == COMMITTED)
				lm_devstate_start(s);
			bool heard = !lm_write_msg_fd(fd, tls, &(struct lm_msg){.type = LM_MSG_OUTCOME,
									  .committed = d == COMMITTED}) &&
				     echoed(fd, tls, s->p.net_timeout_s);
			lm_io_close(fd, tls);
			lm_log(s, 1, "switchover: the source asked (%s); answered that the image is %s%s",
			       m.type == LM_MSG_COMMIT ? "COMMIT" : "CANCEL",
			       d == COMMITTED ? "taken over" : "discarded",
			       heard ? "" : " (unconfirmed: still listening)");
			if (heard)
				break;
			continue;
		}
		if (fd >= 0) {
			lm_io_close(fd, tls);
			why = "no COMMIT or CANCEL";
		}
		lm_gate_refused(s, "switchover: a connection while waiting for the source: %s; ignored",
				why);
	}
	lm_gate_cut(s, "switchover: the wait for the source's decision ended");
	if (d == COMMITTED)
		return 0;
	if (d == DISCARDED)
		return failed ? failed : lm_fail(s, -ECANCELED, "the source took the guest back");
	lm_log(s, 0, "outcome unknown: the source's decision never came; the image is verified and "
		     "must not run unless the source is known to have stopped for good");
	s->unknown = true;
	return LM_OUTCOME_UNKNOWN;
}

/*
 * RESULT OK is out: the guest is ours only after the source's COMMIT
 * (docs/design.md, "Switchover").  The source's ERROR or CANCEL mean it
 * kept the guest and knows we discard.  Anything else that ends the main
 * channel - a clean close, a reset, silence, our own failure or cancel -
 * may have swallowed a COMMIT (or, through a relay, be no proof of
 * anything): we answer resolving connections, discarded when we ended it
 * ourselves or saw it close, in doubt otherwise.
 */
static int await_commit(livemig_session *s)
{
	pthread_mutex_lock(&s->lock); /* from now a failure keeps the listener */
	s->dst.keep_listening = true;
	pthread_mutex_unlock(&s->lock);
	struct lm_msg m;
	/* The source commits only after our DEVSTATE_LOADED: while that has
	 * not gone out whole no COMMIT can come, so a failure discards
	 * without a doubt to resolve. */
	int r = s->dev_on ? lm_devstate_receive(s) : 0;
	if (r)
		return r;
	r = lm_recv_msg(s, &m);
	if (!r && m.type != LM_MSG_COMMIT)
		r = lm_fail(s, -EPROTO, "main channel: message %u instead of COMMIT", m.type);
	if (!r) {
		lm_devstate_start(s); /* the guest is ours: run it, then say so */
		atomic_store(&s->hb_stop, true); /* OUTCOME is our last word */
		if (!lm_send_msg(s, &(struct lm_msg){.type = LM_MSG_OUTCOME, .committed = true}) &&
		    echoed(s->main_fd, s->main_tls, s->p.net_timeout_s))
			return 0;
		lm_log(s, 1, "switchover: the source did not confirm our OUTCOME");
		return resolve_wait(s, COMMITTED, 0);
	}
	pthread_mutex_lock(&s->lock);
	bool told = s->peer_error;
	pthread_mutex_unlock(&s->lock);
	if (told)
		return r;
	bool broken = atomic_load(&s->main_broken) && !atomic_load(&s->main_eof);
	return resolve_wait(s, broken ? UNDECIDED : DISCARDED, r);
}

static int dest_run(livemig_session *s)
{
	struct lm_msg m;
	int r;

	if ((r = accept_all(s)))
		return r;
	if (s->dst.have_early)
		m = s->dst.early;
	else if ((r = lm_recv_msg(s, &m)))
		return r;
	if (m.type != LM_MSG_PARAMS)
		return lm_fail(s, -EPROTO, "main channel: expected PARAMS, got message %u", m.type);
	lm_heartbeat_arm(s); /* also while RAM is allocated and prefaulted */
	if ((r = take_params(s, &m.params)) || (r = lm_start_channels(s, receiver_main)))
		return r;
	if (s->p.channel_recovery && (r = acceptor_start(s)))
		return r;
	if (lm_send_msg(s, &(struct lm_msg){.type = LM_MSG_READY}))
		return lm_fail(s, -ECONNRESET, "main channel: cannot send READY");
	s->t_setup = lm_now_ns();
	lm_set_status(s, LIVEMIG_STATUS_ACTIVE);
	lm_event_pass(s, 1); /* passes begun, as dirty-sync-count counts them */

	for (;;) {
		if ((r = lm_recv_msg(s, &m)))
			return r;
		if (m.type == LM_MSG_COMPLETE)
			break;
		if (m.type != LM_MSG_ITER)
			return lm_fail(s, -EPROTO, "main channel: unexpected message %u", m.type);
		/* Acknowledge the pass once every receiver has written all of
		 * it: the source stops the guest only after that, so data
		 * still in flight never counts as downtime. */
		uint32_t k = m.iteration;
		if (k != s->iteration + 1)
			return lm_fail(s, -EPROTO, "main channel: ITER for pass %u after pass %u", k,
				       s->iteration);
		if (!s->p.x_no_barrier && (r = wait_pass(s, k)))
			return r;
		pthread_mutex_lock(&s->lock);
		s->iteration = k;
		bool after_final = s->dst.final_synced; /* receivers write it */
		pthread_mutex_unlock(&s->lock);
		if (after_final)
			return lm_fail(s, -EPROTO, "main channel: ITER after the final pass");
		if (lm_send_msg(s, &(struct lm_msg){.type = LM_MSG_ITER_ACK, .iteration = k}))
			return lm_fail(s, -ECONNRESET, "main channel: cannot acknowledge pass %u", k);
		lm_event_pass(s, k + 1);
	}
	lm_set_status(s, LIVEMIG_STATUS_DEVICE);
	const struct lm_msg_complete *src = &m.complete;

	/* Every receiver ends at its FINAL sync (or at the first error). */
	lm_join_channels(s);
	if (lm_quit(s))
		return lm_err(s);
	if (!s->dst.final_synced || s->dst.synced_iteration != src->iteration)
		return lm_fail(s, -EPROTO, "source completed pass %u, channels ended at pass %u",
			       src->iteration, s->dst.synced_iteration);
	struct lm_msg_complete mine;
	uint64_t missing = lm_image_sum(s, &mine);
	s->digest = mine.digest;
	bool ok = !missing && s->digest.lo == src->digest.lo && s->digest.hi == src->digest.hi &&
		  mine.normal == src->normal && mine.zero == src->zero;
	s->verify = ok;
	s->t_end = lm_now_ns();
	stall(s, s->p.x_stall_switchover_ms);
	r = send_result(s, ok);
	if (missing)
		return lm_fail(s, -EIO, "%llu pages never arrived", (unsigned long long)missing);
	if (!ok)
		return lm_fail(s, -EIO,
			       "image differs from the source's (digest or page counts mismatch)");
	if (r) { /* no whole RESULT OK: the source never commits; its reason? */
		lm_recv_msg_wait(s, &m, 500);
		return lm_quit(s) ? lm_err(s)
				  : lm_fail(s, -ECONNRESET, "main channel: cannot send RESULT");
	}
	return await_commit(s);
}

void *lm_dest_main(void *arg)
{
	livemig_session *s = arg;
	int r = lm_gate_open(s);
	if (r)
		r = lm_fail(s, r, "cannot set up accepting connections: %s", strerror(-r));
	lm_ctl_finish(s, r ? r : dest_run(s));
	lm_gate_close(s); /* after the acceptor: lm_ctl_finish stops it */
	return NULL;
}
