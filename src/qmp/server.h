/* SPDX-License-Identifier: MIT */
/*
 * A QMP server for one migration session: the control socket
 * (`livemig source|dest|qemu-source|qemu-dest --control unix:PATH`).
 * Any QMP client can watch and steer the migration through it, QEMU's
 * way (docs/design.md, "The control socket"):
 *
 *   <- {"QMP": {"version": {...}, "capabilities": []}}
 *   -> {"execute": "qmp_capabilities"}          first, else CommandNotFound
 *   <- {"return": {}}
 *   -> {"execute": "query-migrate", "id": 1}
 *   <- {"return": {...the --json statistics...}, "id": 1}
 *   <- {"event": "MIGRATION", "data": {"status": "active"},
 *       "timestamp": {"seconds": S, "microseconds": U}}
 *
 * Commands: query-migrate, query-migrate-parameters,
 * query-migrate-capabilities, migrate-set-parameters (the parameters the
 * table marks changeable, QEMU's argument names and units), migrate_cancel
 * (also migrate-cancel), query-commands.  Events: MIGRATION {"status"} on
 * every status change, MIGRATION_PASS {"pass": N} on every pass begun.
 *
 * One thread serves up to LM_QMP_MAX_CLIENTS clients at once, each command
 * answered before the next is read, at most LM_QMP_BURST of one client's
 * before the others and the events have their turn; none can hold the
 * migration up: the library only queues events (at most LM_QMP_MAX_EVENTS,
 * the oldest go first), writes never wait (a client whose socket is full is
 * dropped), a line is at most LM_JL_MAX_VALUE bytes.  The socket is this user's
 * (mode 0600) and a peer of another uid is refused (SO_PEERCRED, as the
 * destination's unix socket: root may connect too).
 */
#ifndef LM_QMP_SERVER_H
#define LM_QMP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "livemig/livemig.h"

typedef struct lm_qmp_server lm_qmp_server;

#define LM_QMP_MAX_CLIENTS 8  /* at once; one more is closed at once */
#define LM_QMP_MAX_EVENTS 256 /* queued for the server thread */
#define LM_QMP_BURST 16       /* requests of one client per turn */
#define LM_QMP_NEGOTIATE_S 10 /* a client without qmp_capabilities by then is closed */

/*
 * Creates the socket at path (a stale socket there is replaced; mode 0600)
 * and starts the server thread for s, whose event callback it takes
 * (livemig_set_event_cb): call before livemig_start().  s must outlive the
 * server.  0 and *out; or -errno with a sentence in err: -EINVAL path too
 * long, -EADDRINUSE another process listens there, -EEXIST a file that is
 * not a socket, -EBUSY s already started, -ENOMEM, or bind/listen's errno.
 */
int lm_qmp_server_start(livemig_session *s, const char *path, lm_qmp_server **out, char *err,
			size_t errlen);

/*
 * Sends the events still queued (call after livemig_wait(), so that every
 * client that listens sees the final status, or after a failed
 * livemig_start()), closes every client and the socket, removes path,
 * joins the thread, clears s's event callback and frees srv (called while
 * the migration runs, it leaves the event queue allocated for the library's
 * threads, and logs so).  NULL is a no-op.  From s's caller thread, not
 * from the event callback.
 */
void lm_qmp_server_stop(lm_qmp_server *srv);

/*
 * The server's command dispatch, one request for one client (exposed for
 * the unit test and the fuzz target): req is any JSON value (borrowed);
 * *negotiated is the client's state, which qmp_capabilities sets.
 * Returns the reply (owned by the caller): {"return": ..., "id": ...} or
 * {"error": {"class", "desc"}, "id": ...}, "id" only when the request had
 * one; NULL only when out of memory.  Any thread that may call
 * livemig_query() on s.
 */
json_object *lm_qmp_dispatch(livemig_session *s, bool *negotiated, json_object *req);

#endif
