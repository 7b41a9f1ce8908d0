/* SPDX-License-Identifier: MIT */
/* Public API: session life cycle, parameters, errors, control messages. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/internal.h"
#include "util/util.h"

#define MAIN_SLICE_MS 100 /* read_main's waits: a cancel ends them this soon */

livemig_session *livemig_session_new(enum livemig_role role)
{
	if (role != LIVEMIG_SOURCE && role != LIVEMIG_DEST)
		return NULL;
	livemig_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->role = role;
	lm_params_default(&s->p);
	s->dst.listen_fd = -1;
	s->dst.gate.wake = -1;
	s->dst.gate.pending = -1;
	s->main_fd = -1;
	s->verify = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->main_tx, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	return s;
}

void livemig_set_log(livemig_session *s, livemig_log_fn fn, void *opaque)
{
	s->log = fn;
	s->log_opaque = opaque;
}

void lm_log(livemig_session *s, int level, const char *fmt, ...)
{
	if (!s->log)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->log(s->log_opaque, level, msg);
}

static int choose_engines(livemig_session *s, char *err, size_t errlen);
static int load_tls(livemig_session *s, char *err, size_t errlen);

static void set_err(livemig_session *s, int code, const char *msg)
{
	s->err_code = code;
	snprintf(s->err, sizeof(s->err), "%s", msg);
}

/* After start, err and err_code belong to the migration's error latch:
 * a misused API call then only returns -EBUSY. */
static bool started(livemig_session *s)
{
	return atomic_load(&s->status) != LIVEMIG_STATUS_NONE;
}

/* Destination: the RAM registered is checked against lm_ram_limit before
 * it listens (the source's PARAMS must announce at least as much, and
 * would be refused); with prealloc the blocks registered without memory
 * are mapped and faulted in, as QEMU's -mem-prealloc at start, so that it
 * is not part of the migration's time.  (A retried start finds them
 * mapped.) */
static int map_registered(livemig_session *s, char *err, size_t len)
{
	uint64_t total = 0, limit = lm_ram_limit(s);
	for (unsigned i = 0; i < s->nblocks; i++)
		total += s->blocks[i].size;
	if (total > limit) {
		snprintf(err, len, "the RAM registered (%llu bytes) is more than %s (%llu bytes)",
			 (unsigned long long)total,
			 s->p.max_ram ? "max-ram" : "this machine's memory",
			 (unsigned long long)limit);
		return -E2BIG;
	}
	for (unsigned i = 0; s->dst.prealloc && i < s->nblocks; i++) {
		struct lm_block *b = &s->blocks[i];
		if (b->host)
			continue;
		if (!(b->host = lm_map_ram(b->size, true))) {
			snprintf(err, len, "cannot allocate RAM block of %llu bytes",
				 (unsigned long long)b->size);
			return -ENOMEM;
		}
		b->owned = true;
	}
	return 0;
}

int livemig_set_parameter(livemig_session *s, const char *name, const char *value)
{
	char err[256];
	if (started(s)) /* the latch keeps the migration's error, not this one's */
		return lm_set_parameter_running(s, name, value, false, err, sizeof(err));
	int r = lm_params_set(&s->p, s->role, name, value, err, sizeof(err));
	if (r)
		set_err(s, r, err);
	return r;
}

int lm_set_parameter_running(livemig_session *s, const char *name, const char *value,
			     bool check_only, char *err, size_t errlen)
{
	if (!started(s)) {
		snprintf(err, errlen, "no migration has started yet");
		return -EAGAIN;
	}
	pthread_mutex_lock(&s->lock);
	struct lm_params scratch = s->p;
	int r = lm_params_set_running(check_only ? &scratch : &s->p, s->role, name, value, err,
				      errlen);
	if (!r && !check_only && s->role == LIVEMIG_SOURCE &&
	    atomic_load(&s->src.max_bw) != s->p.max_bandwidth) {
		/* The senders book from now at the new rate (lm_ratelimit):
		 * neither slots booked at the old one nor idle time carry over.
		 * The generation last: a sender that read the old one books
		 * again, whatever it read of the other two meanwhile. */
		atomic_store(&s->src.max_bw, s->p.max_bandwidth);
		atomic_store(&s->src.rl_next, lm_now_ns());
		atomic_fetch_add(&s->src.rl_gen, 1);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

int livemig_get_parameter(livemig_session *s, const char *name, char *buf, size_t len)
{
	if (!s || !name || (!buf && len))
		return -EINVAL;
	char one[1];
	pthread_mutex_lock(&s->lock);
	int r = lm_params_get(&s->p, name, buf ? buf : one, buf ? len : sizeof(one));
	pthread_mutex_unlock(&s->lock);
	return r;
}

int livemig_set_event_cb(livemig_session *s, livemig_event_fn fn, void *opaque)
{
	/* Clearing needs only that no library thread runs (the caller's
	 * own calls, livemig_resume_source, are its business). */
	if (started(s) && (fn || (s->ctl_started && !s->waited)))
		return -EBUSY;
	s->event = fn;
	s->event_opaque = opaque;
	return 0;
}

void lm_set_status(livemig_session *s, enum livemig_status st)
{
	if (atomic_exchange(&s->status, (int)st) != (int)st && s->event)
		s->event(s->event_opaque,
			 &(struct livemig_event){.type = LIVEMIG_EVENT_STATUS, .status = st});
}

void lm_event_pass(livemig_session *s, uint32_t pass)
{
	if (s->event)
		s->event(s->event_opaque,
			 &(struct livemig_event){.type = LIVEMIG_EVENT_PASS,
						 .status = (enum livemig_status)atomic_load(&s->status),
						 .pass = pass});
}

int livemig_set_capability(livemig_session *s, const char *name, bool on)
{
	char err[256];
	if (started(s)) {
		return -EBUSY;
	}
	int r = lm_params_cap(&s->p, s->role, name, on, err, sizeof(err));
	if (r)
		set_err(s, r, err);
	return r;
}

int livemig_set_guest(livemig_session *s, const struct livemig_guest_ops *ops, void *opaque)
{
	if (started(s))
		return -EBUSY;
	if (s->role != LIVEMIG_SOURCE || !ops || !ops->stop || !ops->resume) {
		set_err(s, -EINVAL, "guest ops: a source needs stop and resume");
		return -EINVAL;
	}
	s->src.guest = *ops;
	s->src.guest_opaque = opaque;
	s->src.live = true;
	return 0;
}

int livemig_set_device_state(livemig_session *s, const struct livemig_device_ops *ops,
			     void *opaque)
{
	if (started(s))
		return -EBUSY;
	bool src = s->role == LIVEMIG_SOURCE;
	if (!ops || (src && !ops->save) || (!src && (!ops->load || !ops->load_end || !ops->start))) {
		set_err(s, -EINVAL, "device state: a source needs save, a destination load, "
			"load_end and start");
		return -EINVAL;
	}
	s->dev = *ops;
	s->dev_opaque = opaque;
	s->dev_on = true;
	return 0;
}

int livemig_set_dirty_log(livemig_session *s, livemig_dirty_log_fn fn, void *opaque)
{
	if (started(s))
		return -EBUSY;
	if (s->role != LIVEMIG_SOURCE || !fn) {
		set_err(s, -EINVAL, "dirty log: a source needs a function");
		return -EINVAL;
	}
	s->src.dirty_log = fn;
	s->src.dirty_log_opaque = opaque;
	return 0;
}

int livemig_set_prealloc(livemig_session *s, bool on)
{
	if (started(s))
		return -EBUSY;
	s->dst.prealloc = on;
	return 0;
}

int livemig_ram_register(livemig_session *s, const char *name, void *host, uint64_t size)
{
	if (started(s))
		return -EBUSY;
	if (!name || !*name || strlen(name) >= LM_NAME_MAX || !size || size % LM_PAGE_SIZE ||
	    (s->role == LIVEMIG_SOURCE && !host) || ((uintptr_t)host % LM_PAGE_SIZE) ||
	    size / LM_PAGE_SIZE > UINT32_MAX) {
		set_err(s, -EINVAL, "RAM block: bad name, address or size (page multiples, < 16 TiB)");
		return -EINVAL;
	}
	for (unsigned i = 0; i < s->nblocks; i++) {
		if (!strcmp(s->blocks[i].name, name)) {
			set_err(s, -EEXIST, "RAM block name already registered");
			return -EEXIST;
		}
	}
	if (s->nblocks == LM_MAX_BLOCKS) {
		set_err(s, -E2BIG, "too many RAM blocks");
		return -E2BIG;
	}
	struct lm_block *b = &s->blocks[s->nblocks++];
	memset(b, 0, sizeof(*b));
	strcpy(b->name, name);
	b->host = host;
	b->size = size;
	b->pages = size / LM_PAGE_SIZE;
	return 0;
}

int livemig_ram_set_remote(livemig_session *s, const char *name, pid_t pid, uint64_t remote_addr)
{
	struct lm_block *b = NULL;
	const char *why = NULL;

	if (started(s))
		return -EBUSY;
	for (unsigned i = 0; name && i < s->nblocks; i++)
		if (!strcmp(s->blocks[i].name, name))
			b = &s->blocks[i];
	if (s->role != LIVEMIG_SOURCE)
		why = "remote RAM: a source's block only";
	else if (!b)
		why = "remote RAM: no RAM block of that name";
	else if (pid <= 0 || remote_addr % LM_PAGE_SIZE || remote_addr + b->size < remote_addr)
		why = "remote RAM: bad pid, or address not page aligned";
	if (why) {
		int e = s->role == LIVEMIG_SOURCE && !b ? -ENOENT : -EINVAL;
		set_err(s, e, why);
		return e;
	}
	b->remote_pid = pid;
	b->remote_addr = remote_addr;
	return 0;
}

int livemig_start(livemig_session *s, const char *uri)
{
	char err[256];
	int r;

	if (started(s)) {
		return -EBUSY;
	}
	r = lm_uri_parse(uri, &s->addr, err, sizeof(err));
	if (r) {
		set_err(s, r, err);
		return r;
	}
	if (s->role == LIVEMIG_SOURCE && !s->nblocks) {
		set_err(s, -EINVAL, "no RAM block registered");
		return -EINVAL;
	}
	if (s->role == LIVEMIG_SOURCE && (r = choose_engines(s, err, sizeof(err)))) {
		set_err(s, r, err);
		return r;
	}
	/* A TLS setting without credentials would be silently ignored. */
	uint64_t set = s->p.set_mask;
	const char *orphan = set & 1ull << LM_P_TLS_PSK_IDENTITY ? "tls-psk-identity"
			     : set & 1ull << LM_P_TLS_HOSTNAME   ? "tls-hostname"
			     : set & 1ull << LM_P_TLS_AUTHZ      ? "tls-authz" : NULL;
	if (!s->p.tls_creds[0] && orphan) {
		snprintf(err, sizeof(err), "%s needs tls-creds", orphan);
		set_err(s, -EINVAL, err);
		return -EINVAL;
	}
	if (s->p.tls_creds[0] && (r = load_tls(s, err, sizeof(err)))) {
		set_err(s, r, err);
		return r;
	}
	s->page_hash = lm_page_hash_select(NULL);
	/* The destination learns the channel count from the hellos: room for
	 * the most there can be. */
	s->nch = s->role == LIVEMIG_SOURCE ? s->p.channels : LM_MAX_CHANNELS;
	free(s->ch); /* a retried start after a failed listen */
	s->ch = calloc(s->nch, sizeof(*s->ch));
	if (!s->ch) {
		set_err(s, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < s->nch; i++) {
		s->ch[i].s = s;
		s->ch[i].id = i + 1;
		s->ch[i].fd = -1;
		s->ch[i].new_fd = -1;
	}
	s->t_start = lm_now_ns();
	if (s->role == LIVEMIG_DEST) {
		r = map_registered(s, err, sizeof(err));
		if (!r)
			r = lm_listen(&s->addr, err, sizeof(err));
		if (r < 0) {
			set_err(s, r, err);
			return r;
		}
		s->dst.listen_fd = r;
	} else {
		/* Session id: every connection of this migration carries it. */
		int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || read(fd, s->uuid, sizeof(s->uuid)) != (ssize_t)sizeof(s->uuid)) {
			uint64_t t = lm_now_ns() ^ (uint64_t)getpid() << 32;
			memcpy(s->uuid, &t, sizeof(t));
		}
		if (fd >= 0)
			close(fd);
	}
	/* Errors of earlier calls (a rejected parameter) are history now; the
	 * latch records the migration's first failure. */
	s->err_code = 0;
	s->err[0] = 0;
	atomic_store(&s->src.max_bw, s->p.max_bandwidth);
	s->src.start_bw = s->p.max_bandwidth;
	lm_set_status(s, LIVEMIG_STATUS_SETUP);
	r = -lm_watchdog_start(s);
	if (!r)
		r = pthread_create(&s->ctl, NULL,
				   s->role == LIVEMIG_SOURCE ? lm_source_main : lm_dest_main, s);
	if (r) {
		lm_watchdog_stop(s);
		set_err(s, -r, "cannot create the control thread");
		lm_set_status(s, LIVEMIG_STATUS_FAILED);
		return -r;
	}
	s->ctl_started = true;
	return 0;
}

bool lm_quit(livemig_session *s)
{
	return atomic_load_explicit(&s->quit, memory_order_relaxed);
}

void lm_cond_wait_until(livemig_session *s, uint64_t until_ns)
{
	/* lm_now_ns and s->cond both run on CLOCK_MONOTONIC. */
	struct timespec ts = {.tv_sec = (time_t)(until_ns / 1000000000ull),
			      .tv_nsec = (long)(until_ns % 1000000000ull)};
	pthread_cond_timedwait(&s->cond, &s->lock, &ts);
}

int livemig_listen_uri(livemig_session *s, char *buf, size_t len)
{
	if (!s || s->role != LIVEMIG_DEST || s->dst.listen_fd < 0)
		return -EINVAL;
	return lm_sock_uri(s->dst.listen_fd, buf, len);
}

int lm_err(livemig_session *s)
{
	pthread_mutex_lock(&s->lock);
	int code = s->err_code;
	pthread_mutex_unlock(&s->lock);
	return code ? code : -ECANCELED;
}

void lm_set_fd(livemig_session *s, int *slot, int fd)
{
	pthread_mutex_lock(&s->lock);
	*slot = fd;
	pthread_mutex_unlock(&s->lock);
}

/* Any thread (a failing one, or livemig_cancel's caller): the fds are read
 * under the lock because the control thread may be connecting meanwhile. */
static void shutdown_all(livemig_session *s)
{
	pthread_mutex_lock(&s->lock);
	/* The main channel only stops sending (FIN after our ERROR, if any):
	 * its readers poll the quit flag, and what the peer still says must
	 * not be lost to a reset. */
	if (s->main_fd >= 0)
		shutdown(s->main_fd, SHUT_WR);
	if (s->dst.listen_fd >= 0 && !s->dst.keep_listening)
		shutdown(s->dst.listen_fd, SHUT_RDWR);
	for (unsigned i = 0; i < s->nch; i++)
		if (s->ch[i].fd >= 0)
			shutdown(s->ch[i].fd, SHUT_RDWR);
	pthread_mutex_unlock(&s->lock);
}

/* Best effort, for a failing or cancelling thread: sends m on the main
 * channel now or never, without waiting for another writer or for room in
 * the socket. */
static void send_now(livemig_session *s, const struct lm_msg *m)
{
	uint8_t buf[LM_MSG_HDR_SIZE + LM_MSG_BODY_MAX];
	int n = lm_msg_encode(m, buf, sizeof(buf));
	pthread_mutex_lock(&s->lock);
	int fd = s->main_fd;
	pthread_mutex_unlock(&s->lock);
	if (n > 0 && fd >= 0 && !pthread_mutex_trylock(&s->main_tx)) {
		lm_io_write_now(fd, s->main_tls, buf, (size_t)n);
		pthread_mutex_unlock(&s->main_tx);
	}
}

/* before_commit: not once the source has begun to commit (checked under
 * the lock that source.c sets commit_started under); returns 0 then. */
static int latch(livemig_session *s, int code, const char *msg, bool peer, bool before_commit)
{
	bool first;
	pthread_mutex_lock(&s->lock);
	if (before_commit && atomic_load(&s->src.commit_started)) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	first = !s->err_code;
	if (first) {
		set_err(s, code, msg);
		s->peer_error = peer;
	}
	atomic_store(&s->quit, true);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (first && !peer && code != -ECANCELED && !atomic_load(&s->src.commit_started)) {
		/* Tell the peer why before the sockets go down - not once the
		 * source committed: the outcome is the destination's then. */
		struct lm_msg m = {.type = LM_MSG_ERROR, .error.code = code};
		snprintf(m.error.text, sizeof(m.error.text), "%s", msg);
		send_now(s, &m);
	}
	shutdown_all(s);
	return code;
}

/* A failure of this side: its message, then where it happened - the
 * side and the phase ("(on the source, in phase pass 3)"); the connection
 * is the message's own first words. */
static int vfail(livemig_session *s, int code, bool before_commit, const char *fmt, va_list ap)
{
	char msg[LM_ERROR_TEXT_MAX + 1], phase[32];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n >= 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, " (on the %s, in phase %s)",
			 s->role == LIVEMIG_SOURCE ? "source" : "destination",
			 lm_phase(s, phase, sizeof(phase)));
	return latch(s, code, msg, false, before_commit);
}

int lm_fail(livemig_session *s, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(s, code, false, fmt, ap);
	va_end(ap);
	return r;
}

int lm_fail_before_commit(livemig_session *s, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(s, code, true, fmt, ap);
	va_end(ap);
	return r;
}

/*
 * Whether the peer has closed every connection of the session (each has
 * seen its FIN or reset): it exited or was killed, and the one connection a
 * thread happened to notice first is not the cause.
 */
static bool peer_gone(livemig_session *s)
{
	struct pollfd p[1 + LM_MAX_CHANNELS];
	nfds_t n = 0;
	pthread_mutex_lock(&s->lock); /* the fds are published under it */
	if (s->channels_joined) { /* the channels ended on purpose */
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	if (s->main_fd >= 0)
		p[n++] = (struct pollfd){.fd = s->main_fd, .events = POLLRDHUP};
	for (unsigned i = 0; s->ch && i < s->nch; i++)
		if (s->ch[i].fd >= 0)
			p[n++] = (struct pollfd){.fd = s->ch[i].fd, .events = POLLRDHUP};
	pthread_mutex_unlock(&s->lock);
	if (n < 2 || poll(p, n, 0) < 0)
		return false;
	for (nfds_t i = 0; i < n; i++)
		if (!(p[i].revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return false;
	return true;
}

int lm_fail_io(livemig_session *s, int code, const char *fmt, ...)
{
	struct timespec ts = lm_deadline(CLOCK_MONOTONIC, 500);
	pthread_mutex_lock(&s->lock);
	while (!s->err_code && !pthread_cond_timedwait(&s->cond, &s->lock, &ts))
		;
	bool latched = s->err_code != 0;
	pthread_mutex_unlock(&s->lock);
	/* No reason came: one cause for every thread that sees a connection
	 * end, when they all ended. */
	if (!latched && (code == -ECONNRESET || code == -EPIPE) && peer_gone(s))
		return lm_fail(s, code, "connection closed on every channel: the %s exited or was "
			       "killed", s->role == LIVEMIG_SOURCE ? "destination" : "source");
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(s, code, false, fmt, ap);
	va_end(ap);
	return r;
}

int lm_fail_peer(livemig_session *s, int code, const char *msg)
{
	char m[sizeof("destination reported: ") + LM_ERROR_TEXT_MAX]; /* s->err may cut it */
	snprintf(m, sizeof(m), "%s reported: %s",
		 s->role == LIVEMIG_SOURCE ? "destination" : "source", msg);
	return latch(s, code, m, true, false);
}

void livemig_cancel(livemig_session *s)
{
	/* Once the source has begun to commit the destination may run the
	 * guest: cancelling now could leave it running on both sides. */
	if (!s || !started(s))
		return;
	pthread_mutex_lock(&s->lock);
	bool no = lm_quit(s) || atomic_load(&s->src.commit_started);
	if (!no)
		atomic_store(&s->quit, true); /* the control thread sees it before COMPLETE */
	pthread_mutex_unlock(&s->lock);
	if (no)
		return;
	/* The peer says "migration cancelled", not that we vanished. */
	send_now(s, &(struct lm_msg){.type = LM_MSG_CANCEL});
	lm_fail(s, -ECANCELED, "migration cancelled");
}

int lm_write_msg_fd(int fd, struct lm_tls_conn *tls, const struct lm_msg *m)
{
	uint8_t buf[LM_MSG_HDR_SIZE + LM_MSG_BODY_MAX];
	int n = lm_msg_encode(m, buf, sizeof(buf));
	return n < 0 ? n : lm_io_write(fd, tls, buf, (size_t)n);
}

int lm_send_msg(livemig_session *s, const struct lm_msg *m)
{
	pthread_mutex_lock(&s->main_tx);
	int r = lm_write_msg_fd(s->main_fd, s->main_tls, m);
	pthread_mutex_unlock(&s->main_tx);
	if (r)
		atomic_store(&s->main_broken, true);
	return r;
}

int lm_read_msg_fd(int fd, struct lm_tls_conn *tls, unsigned timeout_s, struct lm_msg *m,
		   const char **why)
{
	uint8_t hdr[LM_MSG_HDR_SIZE], payload[LM_MSG_MAX_PAYLOAD];
	struct lm_msg_hdr h;
	int r;
	*why = "malformed message";
	lm_set_timeout(fd, (int)timeout_s);
	if ((r = lm_io_read(fd, tls, hdr, sizeof(hdr), NULL)))
		return r;
	if (lm_msg_hdr_decode(hdr, &h, why))
		return -EPROTO;
	if ((r = lm_io_read(fd, tls, payload, h.len, NULL)))
		return r;
	if (lm_msg_check_crc(hdr, payload, h.len)) {
		*why = "message checksum mismatch";
		return -EPROTO;
	}
	return lm_msg_decode(h.type, payload, h.len, m, why);
}

void lm_main_tls_up(livemig_session *s)
{
	if (!s->main_tls)
		return;
	/* read_main's slices: a record that came in part waits no longer. */
	lm_set_recv_timeout_ms(s->main_fd, MAIN_SLICE_MS);
	struct lm_tls_info info;
	lm_tls_get_info(s->main_tls, &info);
	pthread_mutex_lock(&s->lock); /* the statistics read it */
	s->tls_info = info;
	pthread_mutex_unlock(&s->lock);
}

/*
 * Reads len bytes of the main channel.  Polls in 100 ms slices so a cancel or
 * a failure elsewhere always ends the wait, even when the peer has stalled
 * mid-message (the main channel is never shut down for reading, see
 * shutdown_all()).  -ETIMEDOUT when nothing at all has come for
 * net-timeout (the peer sends a HEARTBEAT at least every quarter of it);
 * -EAGAIN when until_ns (0 = none) passes before the first byte.  With TLS
 * the same, record by record (lm_io_recv).
 */
static int read_main(livemig_session *s, void *buf, size_t len, bool *eof, uint64_t until_ns)
{
	const uint64_t silent_ns = s->p.net_timeout_s * 1000000000ull;
	size_t got = 0;
	*eof = false;
	while (got < len) {
		if (lm_quit(s))
			return -ECANCELED;
		int ms = MAIN_SLICE_MS;
		if (until_ns && !got) {
			uint64_t now = lm_now_ns();
			ms = now >= until_ns ? 0 : (int)((until_ns - now) / 1000000) + 1;
			ms = ms < MAIN_SLICE_MS ? ms : MAIN_SLICE_MS;
		}
		ssize_t n = lm_io_recv(s->main_fd, s->main_tls, (uint8_t *)buf + got, len - got, ms);
		if (n == -EAGAIN) {
			/* Checked only when nothing is waiting: after this
			 * process was stopped itself, what the peer sent
			 * meanwhile counts first. */
			uint64_t now = lm_now_ns();
			if (now - s->main_rx >= silent_ns)
				return -ETIMEDOUT;
			if (until_ns && !got && now >= until_ns)
				return -EAGAIN;
			continue;
		}
		if (n == 0) {
			*eof = !got;
			atomic_store(&s->main_eof, true);
			return -ECONNRESET;
		}
		if (n < 0)
			return (int)n;
		got += (size_t)n;
		s->main_rx = lm_now_ns();
	}
	return 0;
}

/*
 * Whether the main channel failed (with r, after the bytes first) because
 * the peer refused this side's TLS credentials - its alert, read as a
 * record - or its lack of TLS - an alert, read as bytes: the peer speaks
 * TLS and this side does not.  Then why says so.
 */
static bool tls_refused(livemig_session *s, int r, const uint8_t first[2], char *why,
			size_t len)
{
	const char *peer = s->role == LIVEMIG_SOURCE ? "destination" : "source";
	if (s->main_tls && r == -EACCES)
		snprintf(why, len, "TLS: the %s refused our credentials (alert: %s)", peer,
			 lm_tls_alert(s->main_tls));
	else if (!s->main_tls && first[0] == 0x15 && first[1] == 0x03) /* a TLS alert record */
		snprintf(why, len, "the %s uses TLS and this side does not (it answered with a "
			 "TLS alert): set tls-creds on both sides or on neither", peer);
	else
		return false;
	return true;
}

int lm_main_refused(livemig_session *s)
{
	uint8_t first[2] = {0};
	char why[160];
	int r;
	if (s->main_tls) { /* a record: waits for one read_main slice at most */
		uint8_t b[LM_MSG_HDR_SIZE];
		r = (int)lm_tls_recv(s->main_tls, b, sizeof(b));
	} else {
		r = recv(s->main_fd, first, sizeof(first), MSG_PEEK | MSG_DONTWAIT) < 0 ? -errno : 0;
	}
	return tls_refused(s, r, first, why, sizeof(why)) ? lm_fail(s, -EACCES, "main channel: %s",
								      why)
							   : 0;
}

/* One control message, HEARTBEAT included: lm_recv_msg_wait's 0 and
 * errors; 1 when until_ns passed before it began. */
static int recv_one(livemig_session *s, struct lm_msg *m, uint64_t until_ns)
{
	uint8_t hdr[LM_MSG_HDR_SIZE] = {0}, *payload = s->main_rx_payload;
	struct lm_msg_hdr h;
	const char *why;
	bool eof;
	int r = read_main(s, hdr, sizeof(hdr), &eof, until_ns);
	if (r == -EAGAIN)
		return 1;
	if (r && r != -ECANCELED && !atomic_load(&s->main_eof))
		atomic_store(&s->main_broken, true);
	if (r == -ETIMEDOUT)
		return lm_fail_silent(s, 0);
	char tls[160];
	if (r && !lm_quit(s) && tls_refused(s, r, hdr, tls, sizeof(tls)))
		return lm_fail(s, -EACCES, "main channel: %s", tls);
	if (r)
		return lm_quit(s) ? lm_err(s)
				  : lm_fail_io(s, r, "main channel: %s%s",
					       atomic_load(&s->main_eof) ? "connection closed by peer"
									 : strerror(-r),
					       lm_main_fatal(s));
	if (lm_msg_hdr_decode(hdr, &h, &why))
		return lm_fail(s, -EPROTO, "main channel: %s", why);
	r = read_main(s, payload, h.len, &eof, 0);
	if (r == -ETIMEDOUT)
		return lm_fail_silent(s, 0);
	if (r)
		return lm_quit(s) ? lm_err(s) : lm_fail(s, r, "main channel: truncated message");
	if (lm_msg_check_crc(hdr, payload, h.len))
		return lm_fail(s, -EPROTO, "main channel: message checksum mismatch");
	if (lm_msg_decode(h.type, payload, h.len, m, &why))
		return lm_fail(s, -EPROTO, "main channel: %s", why);
	if (m->type == LM_MSG_ERROR)
		return lm_fail_peer(s, m->error.code, m->error.text);
	if (m->type == LM_MSG_CANCEL)
		return lm_fail_peer(s, -ECANCELED, "migration cancelled");
	return 0;
}

int lm_recv_msg_wait(livemig_session *s, struct lm_msg *m, int wait_ms)
{
	uint64_t until = wait_ms < 0 ? 0 : lm_now_ns() + (uint64_t)wait_ms * 1000000 + 1;
	int r;
	while (!(r = recv_one(s, m, until)) && m->type == LM_MSG_HEARTBEAT)
		;
	return r;
}

int lm_recv_msg(livemig_session *s, struct lm_msg *m)
{
	return lm_recv_msg_wait(s, m, -1);
}

void lm_ratelimit(livemig_session *s, uint64_t bytes)
{
	for (;;) {
		/* Acquire: a generation seen new comes with its rate and clock. */
		uint32_t gen = atomic_load_explicit(&s->src.rl_gen, memory_order_acquire);
		uint64_t rate = atomic_load_explicit(&s->src.max_bw, memory_order_relaxed);
		if (!rate)
			return;
		/* A shared virtual clock: each packet books the next slot of
		 * bytes/rate ns.  Idle time is forgiven only up to 10 ms, so the
		 * rate stays smooth instead of bursting after a pause. */
		uint64_t cost = bytes * 1000000000ull / rate;
		uint64_t now = lm_now_ns(), slot, next;
		uint64_t cur = atomic_load(&s->src.rl_next);
		do {
			slot = cur + 10000000ull < now ? now - 10000000ull : cur;
			next = slot + cost;
		} while (!atomic_compare_exchange_weak(&s->src.rl_next, &cur, next));
		/* Sleep in slices of at most 50 ms so that cancel is never kept
		 * waiting behind a slow rate, nor a new max-bandwidth behind a
		 * slot booked at the old rate or on the old clock (even when the
		 * rate went back to this one since: the generation changed). */
		bool renewed = false;
		while (slot > now && !lm_quit(s) &&
		       !(renewed = atomic_load_explicit(&s->src.rl_gen,
							memory_order_relaxed) != gen)) {
			uint64_t d = slot - now < 50000000ull ? slot - now : 50000000ull;
			struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)d};
			nanosleep(&ts, NULL);
			now = lm_now_ns();
		}
		if (!renewed)
			return;
	}
}

struct lm_h128 lm_zero_hash(uint64_t gpn)
{
	/* Cheap and distinct from any content hash in practice. */
	XXH128_hash_t h = XXH3_128bits_withSeed(&gpn, sizeof(gpn), 0x7a65726f70616765ull);
	return (struct lm_h128){h.low64, h.high64};
}

uint64_t lm_image_sum(livemig_session *s, struct lm_msg_complete *sum)
{
	struct lm_h128 d = {0, 0};
	uint64_t missing = 0;
	for (unsigned b = 0; b < s->nblocks; b++) {
		const struct lm_h128 *h = s->blocks[b].hash;
		for (uint64_t i = 0; i < s->blocks[b].pages; i++) {
			uint64_t lo = d.lo + h[i].lo;
			d.hi += h[i].hi + (lo < d.lo);
			d.lo = lo;
			missing += !(h[i].lo | h[i].hi);
		}
	}
	sum->digest = d;
	sum->normal = sum->zero = 0;
	for (unsigned i = 0; i < s->p.channels; i++) {
		sum->normal += atomic_load_explicit(&s->ch[i].normal, memory_order_relaxed);
		sum->zero += atomic_load_explicit(&s->ch[i].zero, memory_order_relaxed);
	}
	return missing;
}

static void accel_warn(void *opaque, const char *msg)
{
	lm_log(opaque, 1, "%s", msg);
}

/* Source: picks the compression engines once for the session, before it
 * connects, so that a forced engine that cannot run is a plain error. */
static int choose_engines(livemig_session *s, char *err, size_t errlen)
{
	uint8_t m = s->p.method;
	struct lm_accel_choice *ch = &s->src.accel;

	ch->retries = s->p.accel_retries;
	ch->verify = s->p.accel_verify;
	ch->warn = accel_warn;
	ch->warn_opaque = s;
	if (!lm_engine_fallback(m)) {
		/* none, zlib, zstd, auto: one engine each, the method's own. */
		if (s->p.engine[0] && strcmp(s->p.engine, lm_method_name(m))) {
			snprintf(err, errlen, "compression-engine=%s: method %s has only its "
				 "own engine", s->p.engine, lm_method_name(m));
			return -EINVAL;
		}
		return 0;
	}
	int r = lm_accel_choose(ch, m, s->p.engine[0] ? s->p.engine : NULL,
				s->p.x_fault[0] ? s->p.x_fault : NULL, err, errlen);
	if (r)
		return r;
	if (ch->skipped[0])
		lm_log(s, 2, "%s: engines skipped: %s", lm_method_name(m), ch->skipped);
	lm_log(s, 2, "%s: compressing with %s%s%s", lm_method_name(m),
	       ch->hw ? ch->hw->name : ch->sw->name, ch->hw ? ", falling back to " : "",
	       ch->hw ? ch->sw->name : "");
	return 0;
}

/*
 * The session's TLS credentials (tls-creds), loaded once by livemig_start:
 * every connection's handshake uses them.  A source checks the
 * destination's certificate against tls-hostname, else the URI's host.
 * 0, or -ENOKEY (-ENOMEM) with err saying why.
 */
static int load_tls(livemig_session *s, char *err, size_t errlen)
{
	bool server = s->role == LIVEMIG_DEST;
	const char *host = s->p.tls_hostname[0] ? s->p.tls_hostname : s->addr.host;
	if (!server && !strncmp(s->p.tls_creds, "x509:", 5) && !*host) {
		snprintf(err, errlen, "tls-creds=%.100s: the URI names no host to check the "
			 "destination's certificate against: set tls-hostname", s->p.tls_creds);
		return -ENOKEY;
	}
	struct lm_tls_config cfg = {.creds = s->p.tls_creds,
				    .server = server,
				    .psk_identity = s->p.tls_psk_identity,
				    .hostname = server ? NULL : host,
				    .authz = s->p.tls_authz[0] ? s->p.tls_authz : NULL};
	lm_tls_close(s->tls); /* a retried start */
	s->tls = NULL;
	int r = lm_tls_open(&cfg, &s->tls, err, errlen);
	return r == -ENOMEM || !r ? r : -ENOKEY;
}

/* What sender c's codec context is set up with. */
static struct lm_codec_cfg codec_cfg(livemig_session *s, struct lm_chan *c)
{
	return (struct lm_codec_cfg){.level = lm_params_level(&s->p),
				     .channel = c->id,
				     .accel = s->src.accel.sw ? &s->src.accel : NULL,
				     .counters = &c->codec_cnt,
				     .channels = s->p.channels,
				     .max_bandwidth = s->src.start_bw,
				     .auto_speeds = s->p.x_auto,
				     .link_rate = &s->src.link_rate,
				     .probe_left = &s->src.probe_left};
}

/* A sender: the session's codec, its payload buffer, the bounce buffer of
 * a live guest, and the zero-page engine the policy picks. */
static int sender_setup(livemig_session *s, struct lm_chan *c, const struct lm_codec_ops *codec)
{
	struct lm_codec_cfg cfg = codec_cfg(s, c);
	int r = codec->send_setup(&c->cctx, &cfg);
	if (r)
		return lm_fail(s, r, "%s: cannot set up compression", codec->name);
	c->codec = codec;
	/* A codec that only sends raw pages never writes a payload. */
	c->raw_only = codec->methods == 1u << LM_METHOD_NONE;
	c->empty_method = (uint8_t)__builtin_ctz(codec->methods);
	c->bufcap = c->raw_only ? 0 : codec->bound(LM_PACKET_PAGES);
	if (c->bufcap && !(c->buf = malloc(c->bufcap)))
		return lm_fail(s, -ENOMEM, "out of memory");
	if (s->src.live && !(c->bounce = malloc((size_t)LM_PACKET_PAGES * LM_PAGE_SIZE)))
		return lm_fail(s, -ENOMEM, "out of memory");

	struct lm_zeropage_cfg zcfg = {.dsa_path = s->p.dsa_path, .counters = &c->zero_cnt};
	char note[400];
	r = lm_zeropage_open(&c->zero_engine,
			     s->p.zero_detect ? s->p.zero_engine : "none", &zcfg,
			     note, sizeof(note));
	if (r < 0)
		return lm_fail(s, r, "%s", note);
	if (c->id == 1) { /* once per session */
		pthread_mutex_lock(&s->lock); /* the statistics show which ran */
		snprintf(s->zero_ran, sizeof(s->zero_ran), "%s", c->zero_engine.ops->name);
		pthread_mutex_unlock(&s->lock);
		if (note[0])
			lm_log(s, r == LM_ZEROPAGE_FALLBACK ? 1 : 2, "%s", note);
	}
	return 0;
}

/* A receiver: a decoder per wire method the session's packets may carry,
 * and one buffer for the largest payload.  Raw pages go straight into
 * guest memory: method none needs neither. */
static int receiver_setup(livemig_session *s, struct lm_chan *c)
{
	for (uint8_t m = 0; m < LM_METHOD_MAX; m++) {
		if (m == LM_METHOD_NONE || !(s->methods & (1u << m)))
			continue;
		const struct lm_codec_ops *codec = lm_codec_by_method(m);
		int r = codec->recv_setup(&c->dctx[m]);
		if (r)
			return lm_fail(s, r, "%s: cannot set up decompression", codec->name);
		if (codec->bound(LM_PACKET_PAGES) > c->bufcap)
			c->bufcap = codec->bound(LM_PACKET_PAGES);
	}
	if (c->bufcap && !(c->buf = malloc(c->bufcap)))
		return lm_fail(s, -ENOMEM, "out of memory");
	return 0;
}

int lm_start_channels(livemig_session *s, void *(*thread_main)(void *))
{
	bool source = s->role == LIVEMIG_SOURCE;
	const struct lm_codec_ops *codec = lm_codec_by_method(s->p.method);
	s->methods = codec->methods;
	for (unsigned i = 0; i < s->p.channels; i++) {
		struct lm_chan *c = &s->ch[i];
		int r = source ? sender_setup(s, c, codec) : receiver_setup(s, c);
		if (r)
			return r;
		r = pthread_create(&c->thread, NULL, thread_main, c);
		if (r)
			return lm_fail(s, -r, "cannot create a channel thread");
		c->started = true;
	}
	return 0;
}

void lm_join_channels(livemig_session *s)
{
	for (unsigned i = 0; i < s->p.channels; i++) {
		if (s->ch[i].started) {
			pthread_join(s->ch[i].thread, NULL);
			s->ch[i].started = false;
		}
	}
	if (s->role == LIVEMIG_DEST)
		lm_acceptor_stop(s);
	pthread_mutex_lock(&s->lock);
	s->channels_joined = true;
	pthread_mutex_unlock(&s->lock);
}

void lm_chan_replace_conn(livemig_session *s, struct lm_chan *c, int fd,
			  struct lm_tls_conn *tls)
{
	pthread_mutex_lock(&s->lock);
	int old = c->fd;
	struct lm_tls_conn *old_tls = c->tls;
	c->fd = fd;
	c->tls = tls;
	pthread_mutex_unlock(&s->lock);
	lm_io_close(old, old_tls);
}

int lm_chan_renew_codec(livemig_session *s, struct lm_chan *c)
{
	if (s->role == LIVEMIG_SOURCE) {
		struct lm_codec_cfg cfg = codec_cfg(s, c);
		c->codec->send_cleanup(c->cctx);
		c->cctx = NULL;
		int r = c->codec->send_setup(&c->cctx, &cfg);
		return r ? lm_fail(s, r, "%s: cannot set up compression", c->codec->name) : 0;
	}
	for (uint8_t m = 0; m < LM_METHOD_MAX; m++) {
		if (!c->dctx[m])
			continue;
		const struct lm_codec_ops *codec = lm_codec_by_method(m);
		codec->recv_cleanup(c->dctx[m]);
		c->dctx[m] = NULL;
		int r = codec->recv_setup(&c->dctx[m]);
		if (r)
			return lm_fail(s, r, "%s: cannot set up decompression", codec->name);
	}
	return 0;
}

void lm_ctl_finish(livemig_session *s, int r)
{
	if (r && !lm_quit(s))
		lm_fail(s, r, "migration failed");
	lm_watchdog_stop(s);
	if (r) {
		/* Wake and stop everyone; channel threads see quit. */
		pthread_mutex_lock(&s->lock);
		atomic_store(&s->quit, true);
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	lm_join_channels(s);
	if (s->src.rp_started) {
		/* After a failure the reader sees quit on its own, and the main
		 * channel stays open for reading so the peer's reason is not
		 * lost (see shutdown_all()); after success nothing more comes. */
		if (!r)
			shutdown(s->main_fd, SHUT_RDWR);
		pthread_join(s->src.rp, NULL);
	}
	if (!s->t_end)
		s->t_end = lm_now_ns();
	s->cpu_ctl = lm_thread_cpu_seconds();
	lm_set_status(s, r == 0		    ? LIVEMIG_STATUS_COMPLETED
			 : s->unknown	    ? LIVEMIG_STATUS_UNKNOWN
			 : r == -ECANCELED ? LIVEMIG_STATUS_CANCELLED
					    : LIVEMIG_STATUS_FAILED);
}

static void chan_free(struct lm_chan *c)
{
	if (c->codec)
		c->codec->send_cleanup(c->cctx);
	c->codec = NULL;
	c->cctx = NULL;
	for (uint8_t m = 0; m < LM_METHOD_MAX; m++) {
		if (c->dctx[m])
			lm_codec_by_method(m)->recv_cleanup(c->dctx[m]);
		c->dctx[m] = NULL;
	}
	lm_zeropage_close(&c->zero_engine);
	free(c->buf);
	c->buf = NULL;
	free(c->bounce);
	c->bounce = NULL;
}

int livemig_wait(livemig_session *s)
{
	if (!s->ctl_started)
		return s->err_code ? s->err_code : -EINVAL;
	if (!s->waited) {
		pthread_join(s->ctl, NULL);
		s->waited = true;
	}
	enum livemig_status st = atomic_load(&s->status);
	return st == LIVEMIG_STATUS_COMPLETED ? 0
	       : st == LIVEMIG_STATUS_UNKNOWN ? LM_OUTCOME_UNKNOWN
	       : s->err_code		      ? s->err_code
					      : -EIO;
}

const char *livemig_last_error(livemig_session *s)
{
	/* Under the lock for a caller on another thread; once written, err
	 * stays as it is (first error wins). */
	pthread_mutex_lock(&s->lock);
	bool set = s->err[0];
	pthread_mutex_unlock(&s->lock);
	return set ? s->err : "no error";
}

const char *livemig_status_name(enum livemig_status st)
{
	static const char *const names[] = {"none",	 "setup",  "active",    "device",
					    "completed", "failed", "cancelled", "unknown"};
	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "invalid";
}

int livemig_ram_get(livemig_session *s, unsigned idx, const char **name, void **host,
		    uint64_t *size)
{
	pthread_mutex_lock(&s->lock);
	unsigned n = s->nblocks;
	if (idx < n) {
		if (name)
			*name = s->blocks[idx].name;
		if (host)
			*host = s->blocks[idx].host;
		if (size)
			*size = s->blocks[idx].size;
	}
	pthread_mutex_unlock(&s->lock);
	return (int)n;
}

/*
 * Closing a TCP socket with unread data sends a reset, and a reset makes the
 * peer drop what it has not read yet: our ERROR message.  So after a local
 * failure, read until the peer closes (it does once it has read ERROR), for
 * half a second at most.
 */
static void linger_for_peer(int fd)
{
	uint64_t end = lm_now_ns() + 500000000ull;
	char buf[4096];
	for (;;) {
		uint64_t now = lm_now_ns();
		if (now >= end)
			return;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)((end - now) / 1000000) + 1) <= 0)
			return;
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			return;
	}
}

void livemig_session_free(livemig_session *s)
{
	if (!s)
		return;
	if (s->ctl_started && !s->waited) {
		livemig_cancel(s);
		livemig_wait(s);
	}
	if (s->main_fd >= 0 && s->err_code && !s->peer_error)
		linger_for_peer(s->main_fd); /* bytes, not records: they are dropped */
	lm_io_close(s->main_fd, s->main_tls);
	if (s->ch) {
		for (unsigned i = 0; i < s->nch; i++) {
			lm_io_close(s->ch[i].fd, s->ch[i].tls);
			chan_free(&s->ch[i]);
		}
		free(s->ch);
	}
	lm_tls_close(s->tls);
	if (s->role == LIVEMIG_DEST && s->dst.listen_fd >= 0 && s->addr.family == AF_UNIX)
		unlink(s->addr.path); /* the socket file we created */
	if (s->dst.listen_fd >= 0)
		close(s->dst.listen_fd);
	for (unsigned i = 0; i < s->nblocks; i++) {
		struct lm_block *b = &s->blocks[i];
		if (b->owned && b->host)
			munmap(b->host, b->size);
		free(b->hash);
		free((void *)b->received);
	}
	free(s->src.work);
	free((void *)s->src.chunk_owner);
	for (unsigned i = 0; i < LM_MAX_BLOCKS; i++)
		free(s->src.dirty[i]);
	free(s->src.iters);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->main_tx);
	pthread_cond_destroy(&s->cond);
	free(s);
}
