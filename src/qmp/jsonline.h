/* SPDX-License-Identifier: MIT */
/*
 * JSON values over a stream socket, one per line, as QMP frames them: the
 * framing and JSON helpers that a QMP client (qmp.c) and a QMP server (a
 * control socket) share.  Parsing is json-c's tokener, fed incrementally:
 * a value may arrive in pieces and several may arrive in one read.
 *
 * A struct lm_jl belongs to one thread at a time; it never owns the fd.
 */
#ifndef LM_QMP_JSONLINE_H
#define LM_QMP_JSONLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util/json.h"

/* A value longer than this (bytes, whitespace included) is refused: a peer
 * cannot make us buffer without bound. */
#define LM_JL_MAX_VALUE (4u << 20)

struct lm_jl {
	int fd;
	json_tokener *tok;
	size_t fed;           /* bytes of the value being parsed so far */
	char buf[8192];       /* bytes read, not yet given to the tokener */
	size_t off, len;      /* buf[off..len) is pending */
	int received_fd;      /* the last fd that came with SCM_RIGHTS, or -1;
			       * the caller takes it (and sets this to -1) */
	bool skip_line;       /* lm_jl_skip_line: dropping bytes up to a newline */
};

/* 0, or -ENOMEM. */
int lm_jl_init(struct lm_jl *l, int fd);
/* Frees the tokener and closes a received fd nobody took; never l->fd. */
void lm_jl_destroy(struct lm_jl *l);

/*
 * The next JSON value from the stream.  Waits until deadline_ns (lm_now_ns()
 * clock; 0 = do not wait: only what is already buffered or readable now).
 * 0 and *out (the caller owns it: json_object_put), -ETIMEDOUT when the
 * deadline passes first, -ECONNRESET at end of stream, -EPROTO malformed
 * JSON or a value longer than LM_JL_MAX_VALUE (the stream is unusable
 * until lm_jl_skip_line()), or another -errno from poll/recvmsg.
 */
int lm_jl_read(struct lm_jl *l, uint64_t deadline_ns, json_object **out);

/*
 * After -EPROTO: forgets the value in progress and drops what follows up
 * to and including the next newline (now or in later reads), as a QMP
 * server does to go on after a malformed line.
 */
void lm_jl_skip_line(struct lm_jl *l);

/*
 * Writes o as one line ("...\r\n", no newlines inside), attaching pass_fd
 * with SCM_RIGHTS when it is >= 0.  Blocks until written (a stream socket
 * to a local peer) - on a non-blocking socket, -EAGAIN when the peer's
 * buffer is full, and then part of the line may have gone (the stream is
 * unusable).  0 or -errno (-EPIPE when the peer has gone; SIGPIPE is not
 * raised).
 */
int lm_jl_write(int fd, json_object *o, int pass_fd);

#endif
