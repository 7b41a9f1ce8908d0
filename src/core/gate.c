/* SPDX-License-Identifier: MIT */
/*
 * The destination's gate: accepting and vetting connections concurrently
 * (gate.h; docs/design.md, "The gate").  Each accepted connection gets a
 * slot and a thread that runs its TLS handshake and reads its hello with
 * blocking I/O; the taker (lm_gate_take) joins the thread once the slot
 * says it is done.  A vet never closes its connection: only the thread
 * that joined it does, so a shutdown() from the gate can never hit a
 * reused fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/gate.h"
#include "core/internal.h"
#include "util/util.h"

enum vet_state { VET_FREE, VET_BUSY, VET_DONE };

/* Why the gate shut a vet's connection down. */
enum vet_cut { CUT_NONE, CUT_DEADLINE, CUT_EVICTED, CUT_END };

/* One half-open connection.  state and cut are under the session's lock;
 * the rest is the vet thread's until state is VET_DONE, then the taker's. */
struct lm_vet {
	livemig_session *s;
	pthread_t thread;
	enum vet_state state;
	enum vet_cut cut;
	int fd;
	unsigned hello_s;
	uint64_t order;       /* lm_gate.accepted when it came: the lowest waited longest */
	uint64_t accepted_ns;
	/* The result. */
	int r;                /* 0, or -errno as lm_gate_take's */
	bool eof;             /* it closed before its first byte */
	bool in_tls;          /* r came from the TLS handshake */
	struct lm_hello h;
	struct lm_tls_conn *tls;
	char why[200];
};

#define LOG_BURST 10u
/* A vet still waiting is cut to make room only after this long. */
#define EVICT_MS 100u

/* Logs msg, saying how many lines the budget left out before it. */
static void log_now(livemig_session *s, uint64_t left_out, const char *msg)
{
	if (left_out)
		lm_log(s, 1, "%s (%llu such lines before it were left out)", msg,
		       (unsigned long long)left_out);
	else
		lm_log(s, 1, "%s", msg);
}

static void vlog_limited(livemig_session *s, const char *fmt, va_list ap)
{
	struct lm_gate *g = &s->dst.gate;
	uint64_t now = lm_now_ns();
	pthread_mutex_lock(&s->lock);
	uint64_t earned = (now - g->log_ns) / 1000000000ull;
	if (earned) {
		g->log_tokens = earned >= LOG_BURST - g->log_tokens ? LOG_BURST
								    : g->log_tokens + (unsigned)earned;
		g->log_ns = now;
	}
	bool say = g->log_tokens > 0;
	uint64_t left_out = g->unlogged;
	if (say) {
		g->log_tokens--;
		g->unlogged = 0;
	} else {
		g->unlogged++;
	}
	pthread_mutex_unlock(&s->lock);
	if (!say)
		return;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_now(s, left_out, msg);
}

void lm_gate_log(livemig_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog_limited(s, fmt, ap);
	va_end(ap);
}

void lm_gate_refused(livemig_session *s, const char *fmt, ...)
{
	atomic_fetch_add(&s->dst.refused, 1);
	va_list ap;
	va_start(ap, fmt);
	vlog_limited(s, fmt, ap);
	va_end(ap);
}

/* ---- one vet ------------------------------------------------------------------------- */
static void *vet_main(void *arg)
{
	struct lm_vet *v = arg;
	livemig_session *s = v->s;
	struct lm_tls_conn *tls = NULL;
	struct lm_hello h = {0};
	char why[sizeof(v->why)] = "";
	bool eof = false, in_tls = false;
	int r = 0;

	if (s->addr.family == AF_UNIX && lm_peer_allowed(v->fd)) {
		snprintf(why, sizeof(why), "a unix-socket peer of another user");
		r = -EACCES;
	}
	/* TLS first: a peer without it is refused before anything it sent
	 * is read as ours. */
	if (!r && s->tls) {
		r = lm_tls_start(s->tls, v->fd, v->hello_s, &tls, why, sizeof(why));
		eof = r == -ECONNRESET;
		in_tls = r != 0;
	}
	uint8_t buf[LM_HELLO_SIZE];
	const char *bad;
	if (!r && (r = lm_io_read(v->fd, tls, buf, sizeof(buf), &eof)))
		snprintf(why, sizeof(why), "no complete hello (%s)",
			 r == -ETIMEDOUT ? "timed out" : "closed early");
	if (!r && (r = lm_hello_decode(buf, &h, &bad)))
		snprintf(why, sizeof(why), "%s",
			 buf[0] == 0x16 && buf[1] == 0x03 /* a TLS record */
				 ? "a TLS handshake, and tls-creds is not set here"
				 : bad);

	pthread_mutex_lock(&s->lock);
	v->r = r;
	v->eof = eof;
	v->in_tls = in_tls;
	v->h = h;
	v->tls = tls;
	memcpy(v->why, why, sizeof(why));
	v->state = VET_DONE;
	pthread_mutex_unlock(&s->lock);
	uint64_t one = 1;
	(void)!write(s->dst.gate.wake, &one, sizeof(one));
	return NULL;
}

/* Shuts v's connection down (under the lock): its vet ends at once. */
static void cut_vet(struct lm_vet *v, enum vet_cut why)
{
	v->cut = why;
	shutdown(v->fd, SHUT_RDWR);
}

/* Joins v's thread and frees its slot; the caller then owns v's fd and
 * tls and the result.  v must be VET_DONE, or cut. */
static void reap(livemig_session *s, struct lm_vet *v)
{
	pthread_join(v->thread, NULL);
	pthread_mutex_lock(&s->lock);
	v->state = VET_FREE;
	pthread_mutex_unlock(&s->lock);
}

/* ---- the gate ------------------------------------------------------------------------ */
int lm_gate_open(livemig_session *s)
{
	struct lm_gate *g = &s->dst.gate;
	int fl = fcntl(s->dst.listen_fd, F_GETFL);
	/* accept() must not block when a connection went away between
	 * poll() and it. */
	if (fl < 0 || fcntl(s->dst.listen_fd, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	g->pending = -1;
	g->vet = calloc(LM_GATE_SLOTS, sizeof(*g->vet));
	if (!g->vet)
		return -ENOMEM;
	g->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return g->wake < 0 ? -errno : 0;
}

void lm_gate_close(livemig_session *s)
{
	struct lm_gate *g = &s->dst.gate;
	if (g->vet)
		lm_gate_cut(s, "the session ended");
	free(g->vet);
	g->vet = NULL;
	if (g->wake >= 0)
		close(g->wake);
	g->wake = -1;
}

void lm_gate_wake(livemig_session *s)
{
	uint64_t one = 1;
	(void)!write(s->dst.gate.wake, &one, sizeof(one));
}

/* Whether a finished vet's connection is refused (or gone). */
static bool refused(const struct lm_vet *v)
{
	return v->r || v->cut;
}

/* The slot in state that has waited longest (the lowest order), or NULL;
 * with refusals_only, only a finished vet that refused its connection.
 * Under the session's lock. */
static struct lm_vet *oldest(struct lm_gate *g, enum vet_state state, bool refusals_only)
{
	struct lm_vet *o = NULL;
	for (unsigned i = 0; i < LM_GATE_SLOTS; i++) {
		struct lm_vet *v = &g->vet[i];
		if (v->state == state && !(state == VET_BUSY && v->cut) &&
		    !(refusals_only && !refused(v)) && (!o || v->order < o->order))
			o = v;
	}
	return o;
}

/*
 * Reaps the finished (or cut) vet v and settles it: its connection with
 * *h and *tls set when it passed, else -EAGAIN (closed before its first
 * byte: logged, not counted) or a refusal as lm_gate_take's, the
 * connection closed and why saying what it sent or did.
 */
static int settle(livemig_session *s, struct lm_vet *v, struct lm_hello *h,
		  struct lm_tls_conn **tls, char *why, size_t len)
{
	reap(s, v);
	int r = v->r;
	if (v->cut) { /* its time was up, whatever the vet made of it */
		r = -ETIMEDOUT;
		snprintf(v->why, sizeof(v->why), "%s",
			 v->cut == CUT_EVICTED ? "too many half-open connections: the one "
						 "waiting longest for its hello is closed"
			 : v->in_tls	       ? "TLS handshake timed out"
					       : "no complete hello (timed out)");
	}
	if (!r) {
		*h = v->h;
		*tls = v->tls;
		return v->fd;
	}
	lm_io_close(v->fd, v->tls);
	if (v->eof && !v->cut) {
		lm_gate_log(s, "a connection closed before its hello; ignored");
		return -EAGAIN;
	}
	snprintf(why, len, "%s", v->why);
	return r == -ETIMEDOUT || r == -EACCES ? r : -EPROTO;
}

/* A free slot for a new connection (the caller makes it busy).  When none
 * is free: the oldest finished vet that refused its connection, refused
 * now - finished refusals must not crowd out a source still in its
 * handshake - or else the vet that has waited longest, cut short and
 * refused, if it has had EVICT_MS: a source's own burst of connections,
 * whose hellos came with them, is never cut before its vets ran.  NULL
 * when no slot can be had now. */
static struct lm_vet *free_slot(livemig_session *s)
{
	struct lm_gate *g = &s->dst.gate;
	pthread_mutex_lock(&s->lock);
	struct lm_vet *v = oldest(g, VET_FREE, false);
	struct lm_vet *done = v ? NULL : oldest(g, VET_DONE, true);
	struct lm_vet *busy = v || done ? NULL : oldest(g, VET_BUSY, false);
	if (busy && lm_now_ns() - busy->accepted_ns < EVICT_MS * 1000000ull)
		busy = NULL;
	if (busy)
		cut_vet(busy, CUT_EVICTED);
	pthread_mutex_unlock(&s->lock);
	if (v || !(v = done ? done : busy))
		return v;
	struct lm_hello h;
	struct lm_tls_conn *tls;
	char why[200];
	if (settle(s, v, &h, &tls, why, sizeof(why)) != -EAGAIN) /* a refusal: closed */
		lm_gate_refused(s, "refused a connection: %s", why);
	return v;
}

/* Accepts every connection waiting on the listening socket (at most a
 * slot's worth, so that the caller gets to check its deadlines) and starts
 * a vet for each. */
static void admit(livemig_session *s, unsigned hello_s)
{
	struct lm_gate *g = &s->dst.gate;
	for (unsigned n = 0; n < LM_GATE_SLOTS; n++) {
		int fd = g->pending;
		if (fd < 0 && (fd = accept4(s->dst.listen_fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			return;
		/* With no slot to be had, it waits for the next round (and the
		 * rest in the listening socket's backlog). */
		struct lm_vet *v = free_slot(s);
		g->pending = v ? -1 : fd;
		if (!v)
			return;
		lm_sock_tune(fd, s->addr.family != AF_UNIX);
		int e = s->addr.family != AF_UNIX ? lm_sock_liveness(fd, s->p.net_timeout_s) : 0;
		if (e) /* an old kernel: the heartbeat still bounds every wait */
			lm_gate_log(s, "cannot set TCP keepalive: %s", strerror(-e));
		/* A backstop: the gate's deadline (expire) bounds the vet in all. */
		lm_set_timeout(fd, (int)hello_s);
		*v = (struct lm_vet){.s = s,
				     .state = VET_BUSY,
				     .fd = fd,
				     .hello_s = hello_s,
				     .order = g->accepted++,
				     .accepted_ns = lm_now_ns()};
		int r = pthread_create(&v->thread, NULL, vet_main, v);
		if (r) {
			v->state = VET_FREE;
			close(fd);
			lm_gate_refused(s, "refused a connection: cannot start a thread to vet it (%s)",
					strerror(r));
		}
	}
}

/* Cuts the vets whose time is up: hello_s since they were accepted. */
static void expire(livemig_session *s)
{
	struct lm_gate *g = &s->dst.gate;
	uint64_t now = lm_now_ns();
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < LM_GATE_SLOTS; i++) {
		struct lm_vet *v = &g->vet[i];
		if (v->state == VET_BUSY && !v->cut &&
		    now - v->accepted_ns > v->hello_s * 1000000000ull)
			cut_vet(v, CUT_DEADLINE);
	}
	pthread_mutex_unlock(&s->lock);
}

int lm_gate_take(livemig_session *s, int wait_ms, unsigned hello_s, struct lm_hello *h,
		 struct lm_tls_conn **tls, char *why, size_t len)
{
	struct lm_gate *g = &s->dst.gate;
	*tls = NULL;
	struct pollfd p[2] = {{.fd = s->dst.listen_fd, .events = POLLIN},
			      {.fd = g->wake, .events = POLLIN}};
	pthread_mutex_lock(&s->lock);
	bool ready = oldest(g, VET_DONE, false);
	pthread_mutex_unlock(&s->lock);
	/* With a connection waiting for room, the backlog is not polled (it
	 * is the next anyway): a vet's end or EVICT_MS makes room. */
	bool full = g->pending >= 0;
	if (full)
		p[0].fd = -1;
	int n = poll(p, 2, ready ? 0 : full && wait_ms > (int)EVICT_MS ? (int)EVICT_MS : wait_ms);
	uint64_t drained;
	if (n > 0 && (p[1].revents & POLLIN))
		(void)!read(g->wake, &drained, sizeof(drained));
	if (full || (n > 0 && p[0].revents))
		admit(s, hello_s);
	expire(s);

	pthread_mutex_lock(&s->lock);
	struct lm_vet *v = oldest(g, VET_DONE, false);
	pthread_mutex_unlock(&s->lock);
	return v ? settle(s, v, h, tls, why, len) : -EAGAIN;
}

void lm_gate_cut(livemig_session *s, const char *when)
{
	struct lm_gate *g = &s->dst.gate;
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < LM_GATE_SLOTS; i++)
		if (g->vet[i].state == VET_BUSY && !g->vet[i].cut)
			cut_vet(&g->vet[i], CUT_END);
	pthread_mutex_unlock(&s->lock);
	unsigned closed = 0;
	for (unsigned i = 0; i < LM_GATE_SLOTS; i++) {
		struct lm_vet *v = &g->vet[i];
		pthread_mutex_lock(&s->lock);
		bool used = v->state != VET_FREE;
		pthread_mutex_unlock(&s->lock);
		if (!used)
			continue;
		reap(s, v);
		lm_io_close(v->fd, v->tls);
		closed++;
	}
	if (g->pending >= 0) {
		close(g->pending);
		g->pending = -1;
		closed++;
	}
	pthread_mutex_lock(&s->lock); /* the end of a phase: what the budget left out */
	uint64_t left_out = g->unlogged;
	g->unlogged = 0;
	pthread_mutex_unlock(&s->lock);
	if (!closed && !left_out)
		return;
	atomic_fetch_add(&s->dst.refused, closed);
	char msg[300];
	if (closed)
		snprintf(msg, sizeof(msg), "%s: closed %u connection%s not taken (half open or "
			 "refused)", when, closed, closed == 1 ? "" : "s");
	else
		snprintf(msg, sizeof(msg), "%s", when);
	log_now(s, left_out, msg);
}
