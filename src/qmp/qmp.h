/* SPDX-License-Identifier: MIT */
/*
 * A QMP client: QEMU's machine protocol, JSON over a unix socket.
 *
 *   lm_qmp_connect()   connect, read the greeting, qmp_capabilities
 *   lm_qmp_execute()   a command and its answer: "return" or an error
 *                      {class, desc}; events that come meanwhile are queued
 *   lm_qmp_wait_event() the next queued or arriving event of a name
 *   lm_qmp_getfd()     hand QEMU a file descriptor under a name
 *   lm_qmp_pid()       QEMU's pid (SO_PEERCRED)
 *
 * Every wait has a bound (timeout_ms).  One thread at a time per handle.
 * Commands carry an "id" ("lm-N"); an answer with another id is refused,
 * so a late answer to a command that timed out is never taken for the
 * next one's.
 */
#ifndef LM_QMP_H
#define LM_QMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

typedef struct lm_qmp lm_qmp;

/* Events kept while nobody waits for them; the oldest go first. */
#define LM_QMP_MAX_EVENTS 256

/*
 * Connects to the QMP socket at path and negotiates within timeout_ms (a
 * listener whose backlog is full is tried again until then).
 * Returns the handle, or NULL with a sentence in err[0..errlen) (cannot
 * connect, no greeting, qmp_capabilities refused).
 */
lm_qmp *lm_qmp_connect(const char *path, int timeout_ms, char *err, size_t errlen);
/* Closes the connection, frees queued events.  NULL is a no-op. */
void lm_qmp_close(lm_qmp *q);

/*
 * Runs cmd with args (a JSON object or NULL; borrowed, not freed) and waits
 * up to timeout_ms for its answer.  0 and *ret = the "return" value (the
 * caller owns it; ret may be NULL to drop it).  -EREMOTEIO: QEMU answered
 * with an error, whose class and desc lm_qmp_error() gives.  -ETIMEDOUT no
 * answer in time; -ECONNRESET QEMU closed the socket; -EPROTO a malformed
 * answer.  After -ETIMEDOUT or -EPROTO the handle should be closed.
 */
int lm_qmp_execute(lm_qmp *q, const char *cmd, json_object *args, int timeout_ms,
		   json_object **ret);
/* lm_qmp_execute() with fd passed along (SCM_RIGHTS), for getfd and
 * add-fd.  fd stays the caller's. */
int lm_qmp_execute_fd(lm_qmp *q, const char *cmd, json_object *args, int fd, int timeout_ms,
		      json_object **ret);
/* getfd: QEMU keeps a copy of fd under name ("fd:NAME" in a migration
 * URI).  As lm_qmp_execute(). */
int lm_qmp_getfd(lm_qmp *q, int fd, const char *name, int timeout_ms);

/* The last error: "class: desc" for -EREMOTEIO, else a sentence about the
 * connection.  Never NULL; owned by q, valid until the next call. */
const char *lm_qmp_error(lm_qmp *q);
/* The last QMP error's class ("GenericError", "CommandNotFound"...) or "". */
const char *lm_qmp_error_class(lm_qmp *q);

/*
 * The first event named name (NULL: any) among the queued ones, or else
 * the first to arrive within timeout_ms (0: only what is queued or already
 * readable).  Events read meanwhile with other names stay queued.  0 and
 * *ev (the caller owns it; its "timestamp" as QEMU set it, see
 * lm_qmp_event_us()), -ETIMEDOUT none came, -ECONNRESET, -EPROTO.
 */
int lm_qmp_wait_event(lm_qmp *q, const char *name, int timeout_ms, json_object **ev);
/* Removes and returns the oldest queued event, or NULL. */
json_object *lm_qmp_pop_event(lm_qmp *q);
/* Reads what QEMU has already sent, queueing its events, without waiting.
 * 0, -ECONNRESET or -EPROTO. */
int lm_qmp_poll(lm_qmp *q);

/* An event's timestamp in microseconds of QEMU's realtime clock
 * (gettimeofday), or 0 when it has none. */
int64_t lm_qmp_event_us(json_object *ev);

/* QEMU's pid, from SO_PEERCRED at connect time. */
pid_t lm_qmp_pid(const lm_qmp *q);

#endif
