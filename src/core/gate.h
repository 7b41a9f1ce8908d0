/* SPDX-License-Identifier: MIT */
/*
 * The destination's gate (docs/design.md, "The gate"): it accepts
 * connections on the listening socket and vets each one - a unix-socket
 * peer's user, the TLS handshake, the hello - on a thread of its own, so
 * that a silent or slow client holds up nobody else.  At most
 * LM_GATE_SLOTS connections are half open (accepted, not yet taken by the
 * session); each gets HELLO seconds in all.
 *
 * Threads: one thread at a time (the control thread, or the channel-
 * recovery acceptor while it runs) calls lm_gate_take and lm_gate_cut;
 * lm_gate_wake and lm_gate_refused may be called from any thread.
 */
#ifndef LM_CORE_GATE_H
#define LM_CORE_GATE_H

#include <stddef.h>
#include <stdint.h>

/* Half-open connections at most.  A connection past it makes room by
 * closing the one that has waited longest: a flood that came first then
 * cannot lock the source out (docs/security.md). */
#define LM_GATE_SLOTS 32u

struct livemig_session;
struct lm_hello;
struct lm_tls_conn;
struct lm_vet;

struct lm_gate {
	int wake;            /* eventfd: a vet ended, or lm_gate_wake */
	struct lm_vet *vet;  /* LM_GATE_SLOTS of them; their state under the session's lock */
	uint64_t accepted;   /* connections accepted, for the order of the slots */
	int pending;         /* accepted, waiting for a slot (-1: none); the
			      * next wait in the listening socket's backlog */
	/* lm_gate_refused's budget, under the session's lock. */
	uint64_t log_ns;     /* when tokens were last added */
	unsigned log_tokens; /* lines that may be logged now */
	uint64_t unlogged;   /* lines left out since the last one logged */
};

/*
 * Before the first lm_gate_take: makes the listening socket nonblocking
 * and allocates the slots.  0, or -errno (the session does not fail: the
 * caller does).  lm_gate_close undoes it (also after a failed open).
 */
int lm_gate_open(struct livemig_session *s);
void lm_gate_close(struct livemig_session *s);

/*
 * One round: waits up to wait_ms for a connection or a vet to end, accepts
 * the connections that came (up to LM_GATE_SLOTS of them; their vets get
 * hello_s seconds in all, the TLS handshake included) and returns one
 * vetted connection, if one is ready: its fd with *h and *tls (NULL
 * without TLS) set, owned by the caller.  Otherwise -EAGAIN (nothing, or a
 * connection that closed before its first byte - a port probe such as
 * "nc -z": logged, not counted), or a refused one, already closed, with
 * why saying what it sent or did: -ETIMEDOUT (no complete handshake and
 * hello within hello_s, or closed to make room), -EACCES (TLS refused the
 * peer or the peer us; a unix peer of another user), -EPROTO.  The
 * returned refusal is the caller's to count and log; what the gate refuses
 * on its own to make room (over the cap: a finished refusal first, else
 * the vet waiting longest) it counts and logs itself.  Returns early
 * (-EAGAIN) on lm_gate_wake.
 */
int lm_gate_take(struct livemig_session *s, int wait_ms, unsigned hello_s, struct lm_hello *h,
		 struct lm_tls_conn **tls, char *why, size_t len);

/* Wakes a thread waiting in lm_gate_take (which then returns -EAGAIN). */
void lm_gate_wake(struct livemig_session *s);

/*
 * Ends every vet still running (its connection shut down: the wait for
 * the handshake or hello ends at once), joins their threads and closes
 * every connection nobody took - half open, refused, or vetted and not
 * taken - counting them refused; logs one line for them all, saying when
 * (e.g. "the source's connections are in").
 */
void lm_gate_cut(struct livemig_session *s, const char *when);

/*
 * A refused connection: counted in refused-connections and logged, at
 * most ten lines at once and one a second after that (a flood must not
 * flood the log); a line after a gap says how many were left out.
 */
void lm_gate_refused(struct livemig_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same budget for a line that counts nothing. */
void lm_gate_log(struct livemig_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
