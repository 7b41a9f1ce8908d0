/* SPDX-License-Identifier: MIT */
/* The control socket: a QMP server for one session (see server.h). */
#include "qmp/server.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "qmp/jsonline.h"
#include "util/util.h"

/* ---- replies ---------------------------------------------------------------- */

/* What a command answers: a value, or an error of a QMP class. */
struct answer {
	json_object *ret;   /* owned; NULL with cls set: an error */
	const char *cls;    /* "GenericError", "CommandNotFound" */
	char desc[512];
};

__attribute__((format(printf, 3, 4)))
static void fail(struct answer *a, const char *cls, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->desc, sizeof(a->desc), fmt, ap);
	va_end(ap);
	a->cls = cls;
}

/* A command that takes no arguments refuses any, as QEMU does. */
static bool no_args(json_object *args, struct answer *a)
{
	if (!args)
		return true;
	json_object_object_foreach(args, key, val) {
		(void)val;
		fail(a, "GenericError", "Parameter '%s' is unexpected", key);
		return false;
	}
	return true;
}

/* ---- the commands ------------------------------------------------------------ */

static void query_migrate(livemig_session *s, json_object *args, struct answer *a)
{
	if (!no_args(args, a))
		return;
	/* The --json document as it is now.  It may grow between the two
	 * calls (another pass listed): the slack covers that. */
	int n = livemig_stats_json(s, NULL, 0);
	size_t cap = n > 0 ? (size_t)n + 4096 : 0;
	char *buf = cap ? malloc(cap) : NULL;
	int m = buf ? livemig_stats_json(s, buf, cap) : -ENOMEM;
	if (m > 0 && (size_t)m < cap)
		a->ret = json_tokener_parse(buf);
	free(buf);
	if (!a->ret)
		fail(a, "GenericError", "out of memory");
}

/* The parameters (caps false) or capabilities of this side, typed as
 * QEMU's: numbers, booleans and strings. */
static json_object *settings(livemig_session *s, bool caps)
{
	json_object *o = caps ? json_object_new_array() : json_object_new_object();
	const struct livemig_param_info *pi;
	struct lm_json b = {false};
	for (unsigned i = 0; o && (pi = livemig_param_get(i)); i++) {
		if (pi->hidden || pi->capability != caps ||
		    !(s->role == LIVEMIG_SOURCE ? pi->source : pi->destination))
			continue;
		char v[256];
		if (livemig_get_parameter(s, pi->name, v, sizeof(v)) < 0)
			continue;
		bool is_bool = !strcmp(pi->type, "bool");
		if (caps) {
			json_object *c = lm_json_push(&b, o, json_object_new_object());
			lm_json_str(&b, c, "capability", pi->name);
			lm_json_bool(&b, c, "state", !strcmp(v, "on"));
		} else if (is_bool) {
			lm_json_bool(&b, o, pi->name, !strcmp(v, "on"));
		} else if (!strcmp(pi->type, "uint") || !strcmp(pi->type, "size")) {
			lm_json_u64(&b, o, pi->name, strtoull(v, NULL, 10));
		} else {
			lm_json_str(&b, o, pi->name, v);
		}
	}
	if (b.oom) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static void query_parameters(livemig_session *s, json_object *args, struct answer *a)
{
	if (no_args(args, a) && !(a->ret = settings(s, false)))
		fail(a, "GenericError", "out of memory");
}

static void query_capabilities(livemig_session *s, json_object *args, struct answer *a)
{
	if (no_args(args, a) && !(a->ret = settings(s, true)))
		fail(a, "GenericError", "out of memory");
}

/* A JSON argument as the text livemig_set_parameter takes; false with an
 * error for another type. */
static bool arg_text(const char *name, json_object *v, char *buf, size_t len, struct answer *a)
{
	switch (json_object_get_type(v)) {
	case json_type_int:
		if (json_object_get_int64(v) < 0)
			break;
		/* json-c saturates a number too large for 64 bits: refuse it
		 * rather than set the largest value. */
		if (json_object_get_uint64(v) == UINT64_MAX) {
			fail(a, "GenericError", "Parameter '%s': value out of range", name);
			return false;
		}
		snprintf(buf, len, "%" PRIu64, json_object_get_uint64(v));
		return true;
	case json_type_string:
		/* Never cut: a cut number would be another number. */
		if ((size_t)json_object_get_string_len(v) >= len) {
			fail(a, "GenericError", "Parameter '%s': value too long", name);
			return false;
		}
		snprintf(buf, len, "%s", json_object_get_string(v));
		return true;
	case json_type_boolean:
		snprintf(buf, len, "%s", json_object_get_boolean(v) ? "on" : "off");
		return true;
	default:
		break;
	}
	fail(a, "GenericError", "Parameter '%s' expects a non-negative integer, a boolean or a "
	     "string", name);
	return false;
}

/* All or nothing, as QEMU: every value is checked before any is set. */
static void set_parameters(livemig_session *s, json_object *args, struct answer *a)
{
	char err[256], v[256];
	for (int apply = 0; apply < 2 && args; apply++) {
		json_object_object_foreach(args, name, val) {
			if (!arg_text(name, val, v, sizeof(v), a))
				return;
			int r = lm_set_parameter_running(s, name, v, !apply, err, sizeof(err));
			if (r) {
				fail(a, "GenericError", "%s", err);
				return;
			}
			if (apply)
				lm_log(s, 2, "control socket: %s set to %s", name, v);
		}
	}
	a->ret = json_object_new_object();
}

static void cancel(livemig_session *s, json_object *args, struct answer *a)
{
	if (!no_args(args, a))
		return;
	lm_log(s, 2, "control socket: migrate_cancel");
	livemig_cancel(s);
	a->ret = json_object_new_object();
}

static void query_commands(livemig_session *s, json_object *args, struct answer *a);

static const struct command {
	const char *name;
	void (*run)(livemig_session *s, json_object *args, struct answer *a);
} commands[] = {
	{"query-migrate", query_migrate},
	{"query-migrate-parameters", query_parameters},
	{"query-migrate-capabilities", query_capabilities},
	{"migrate-set-parameters", set_parameters},
	{"migrate_cancel", cancel},
	{"migrate-cancel", cancel},
	{"query-commands", query_commands},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void query_commands(livemig_session *s, json_object *args, struct answer *a)
{
	(void)s;
	if (!no_args(args, a))
		return;
	struct lm_json b = {false};
	json_object *list = json_object_new_array();
	lm_json_str(&b, lm_json_push(&b, list, json_object_new_object()), "name",
		    "qmp_capabilities");
	for (size_t i = 0; i < N_COMMANDS; i++)
		lm_json_str(&b, lm_json_push(&b, list, json_object_new_object()), "name",
			    commands[i].name);
	if (b.oom || !list) {
		json_object_put(list);
		fail(a, "GenericError", "out of memory");
		return;
	}
	a->ret = list;
}

/* qmp_capabilities' arguments: at most "enable", and no capability is
 * offered, so it may only be empty. */
static bool no_args_but_enable(json_object *args, struct answer *a)
{
	json_object_object_foreach(args, key, val) {
		if (strcmp(key, "enable") || !json_object_is_type(val, json_type_array)) {
			fail(a, "GenericError", "Parameter '%s' is unexpected", key);
			return false;
		}
		if (json_object_array_length(val)) {
			fail(a, "GenericError", "Capability '%s' not available",
			     json_object_get_string(json_object_array_get_idx(val, 0)));
			return false;
		}
	}
	return true;
}

/* qmp_capabilities: the client may now run commands and gets events. */
static void negotiate(json_object *args, bool *negotiated, struct answer *a)
{
	if (args && !no_args_but_enable(args, a))
		return;
	*negotiated = true;
	a->ret = json_object_new_object();
}

/* Checks the request's shape and runs it: a->ret or an error. */
static void run(livemig_session *s, bool *negotiated, json_object *req, struct answer *a)
{
	if (!json_object_is_type(req, json_type_object)) {
		fail(a, "GenericError", "QMP input must be a JSON object");
		return;
	}
	const char *cmd = NULL;
	json_object *args = NULL;
	json_object_object_foreach(req, key, val) {
		if (!strcmp(key, "execute")) {
			if (!json_object_is_type(val, json_type_string)) {
				fail(a, "GenericError", "QMP input member 'execute' must be a string");
				return;
			}
			cmd = json_object_get_string(val);
		} else if (!strcmp(key, "arguments")) {
			if (!json_object_is_type(val, json_type_object)) {
				fail(a, "GenericError",
				     "QMP input member 'arguments' must be an object");
				return;
			}
			args = val;
		} else if (strcmp(key, "id")) {
			fail(a, "GenericError", "QMP input member '%s' is unexpected", key);
			return;
		}
	}
	if (!cmd) {
		fail(a, "GenericError", "QMP input lacks member 'execute'");
		return;
	}
	bool caps = !strcmp(cmd, "qmp_capabilities");
	if (!*negotiated && !caps) {
		fail(a, "CommandNotFound",
		     "Expecting capabilities negotiation with 'qmp_capabilities'");
	} else if (caps && *negotiated) {
		fail(a, "CommandNotFound",
		     "Capabilities negotiation is already complete, command ignored");
	} else if (caps) {
		negotiate(args, negotiated, a);
	} else {
		for (size_t i = 0; i < N_COMMANDS; i++)
			if (!strcmp(cmd, commands[i].name)) {
				commands[i].run(s, args, a);
				return;
			}
		fail(a, "CommandNotFound", "The command %s has not been found", cmd);
	}
}

/* {"return": ...} or {"error": ...}, with the request's id. */
static json_object *reply(struct answer *a, json_object *id)
{
	struct lm_json b = {false};
	json_object *o = json_object_new_object();
	if (a->ret) {
		lm_json_put(&b, o, "return", a->ret);
	} else {
		json_object *e = lm_json_put(&b, o, "error", json_object_new_object());
		lm_json_str(&b, e, "class", a->cls ? a->cls : "GenericError");
		lm_json_str(&b, e, "desc", a->cls ? a->desc : "out of memory");
	}
	if (id)
		lm_json_put(&b, o, "id", json_object_get(id));
	if (b.oom) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

json_object *lm_qmp_dispatch(livemig_session *s, bool *negotiated, json_object *req)
{
	struct answer a = {0};
	json_object *id = NULL;
	if (json_object_is_type(req, json_type_object))
		json_object_object_get_ex(req, "id", &id);
	run(s, negotiated, req, &a);
	return reply(&a, id);
}

/* ---- the server -------------------------------------------------------------- */

struct client {
	int fd;              /* -1: a free slot */
	struct lm_jl jl;
	bool negotiated;     /* qmp_capabilities done: commands and events */
	bool more;           /* served LM_QMP_BURST at its last turn: may have more */
	uint64_t since_ns;   /* accepted (lm_now_ns): negotiate by LM_QMP_NEGOTIATE_S */
};

struct queued {
	struct livemig_event ev;
	int64_t us;          /* CLOCK_REALTIME when it happened, as QEMU stamps */
};

struct lm_qmp_server {
	livemig_session *s;
	char path[108];
	int listen_fd;
	int wake;            /* eventfd: an event was queued, or stop */
	pthread_t thread;
	struct client c[LM_QMP_MAX_CLIENTS]; /* the server thread's alone */
	struct queued last;  /* the last status event sent: a client that */
	bool replay;         /* negotiates while it is setup gets it too */
	/* From the library's threads (on_event) to the server's. */
	pthread_mutex_t lock;
	struct queued q[LM_QMP_MAX_EVENTS];
	unsigned head, count;
	bool stopping;
};

static void wake(lm_qmp_server *srv)
{
	uint64_t one = 1;
	(void)!write(srv->wake, &one, sizeof(one)); /* a full counter is awake already */
}

/* The session's event callback: queue and wake, never wait. */
static void on_event(void *opaque, const struct livemig_event *ev)
{
	lm_qmp_server *srv = opaque;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&srv->lock);
	if (srv->count == LM_QMP_MAX_EVENTS) { /* the server fell behind: oldest first */
		srv->head = (srv->head + 1) % LM_QMP_MAX_EVENTS;
		srv->count--;
	}
	struct queued *q = &srv->q[(srv->head + srv->count++) % LM_QMP_MAX_EVENTS];
	q->ev = *ev;
	q->us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	pthread_mutex_unlock(&srv->lock);
	wake(srv);
}

static json_object *event_json(const struct queued *q)
{
	struct lm_json b = {false};
	json_object *o = json_object_new_object();
	bool pass = q->ev.type == LIVEMIG_EVENT_PASS;
	lm_json_str(&b, o, "event", pass ? "MIGRATION_PASS" : "MIGRATION");
	json_object *d = lm_json_put(&b, o, "data", json_object_new_object());
	if (pass)
		lm_json_u64(&b, d, "pass", q->ev.pass);
	else
		lm_json_str(&b, d, "status", livemig_status_name(q->ev.status));
	json_object *t = lm_json_put(&b, o, "timestamp", json_object_new_object());
	lm_json_put(&b, t, "seconds", json_object_new_int64(q->us / 1000000));
	lm_json_put(&b, t, "microseconds", json_object_new_int64(q->us % 1000000));
	if (b.oom) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static void drop(lm_qmp_server *srv, struct client *c, const char *why)
{
	if (why)
		lm_log(srv->s, 1, "control socket: client dropped: %s", why);
	close(c->fd);
	lm_jl_destroy(&c->jl);
	c->fd = -1;
}

/* Writes o (and puts it) to c without waiting; a client that does not
 * read its answers or events is dropped.  false when c is gone. */
static bool send_to(lm_qmp_server *srv, struct client *c, json_object *o)
{
	int r = o ? lm_jl_write(c->fd, o, -1) : -ENOMEM;
	json_object_put(o);
	if (r)
		drop(srv, c, r == -EAGAIN ? "it does not read what it is sent"
			   : r == -EPIPE || r == -ECONNRESET ? NULL : strerror(-r));
	return !r;
}

static void accept_client(lm_qmp_server *srv)
{
	int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (lm_peer_allowed(fd)) {
		lm_log(srv->s, 1, "control socket: refused a connection of another user");
		close(fd);
		return;
	}
	struct client *c = NULL;
	for (unsigned i = 0; i < LM_QMP_MAX_CLIENTS && !c; i++)
		if (srv->c[i].fd < 0)
			c = &srv->c[i];
	if (!c || lm_jl_init(&c->jl, fd)) {
		lm_log(srv->s, 1, "control socket: refused a connection: %s",
		       c ? "out of memory" : "too many clients");
		if (c)
			lm_jl_destroy(&c->jl);
		close(fd);
		return;
	}
	c->fd = fd;
	c->negotiated = false;
	c->more = false;
	c->since_ns = lm_now_ns();
	int major = 0, minor = 0, micro = 0;
	sscanf(LIVEMIG_VERSION_STRING, "%d.%d.%d", &major, &minor, &micro);
	json_object *g = json_tokener_parse("{\"QMP\": {\"version\": {\"qemu\": {}, "
					    "\"package\": \"livemig " LIVEMIG_VERSION_STRING "\"}, "
					    "\"capabilities\": []}}");
	json_object *v = lm_json_get_obj(lm_json_get_obj(lm_json_get_obj(g, "QMP"), "version"),
					 "qemu");
	if (v) {
		json_object_object_add(v, "major", json_object_new_int(major));
		json_object_object_add(v, "minor", json_object_new_int(minor));
		json_object_object_add(v, "micro", json_object_new_int(micro));
	}
	send_to(srv, c, v ? g : (json_object_put(g), NULL));
}

/* Answers what c has sent so far, at most LM_QMP_BURST requests: a client
 * that keeps sending must not keep the others and the events waiting.
 * c->more says whether it may have more (buffered: poll would not say). */
static void serve(lm_qmp_server *srv, struct client *c)
{
	c->more = false;
	for (unsigned n = 0;; n++) {
		json_object *req;
		if (n == LM_QMP_BURST) {
			c->more = true;
			return;
		}
		int r = lm_jl_read(&c->jl, 0, &req);
		if (r == -ETIMEDOUT) /* nothing more for now */
			return;
		if (r == -EPROTO) {
			/* QEMU's way: an error, then on with the next line. */
			struct answer a = {0};
			if (c->jl.fed > LM_JL_MAX_VALUE)
				fail(&a, "GenericError", "JSON value longer than %u bytes",
				     LM_JL_MAX_VALUE);
			else
				fail(&a, "GenericError", "JSON parse error");
			lm_jl_skip_line(&c->jl);
			if (!send_to(srv, c, reply(&a, NULL)))
				return;
			continue;
		}
		if (r) {
			drop(srv, c, r == -ECONNRESET ? NULL : strerror(-r));
			return;
		}
		bool was = c->negotiated;
		json_object *o = lm_qmp_dispatch(srv->s, &c->negotiated, req);
		json_object_put(req);
		if (!send_to(srv, c, o))
			return;
		/* The migration starts with the process: a client cannot
		 * connect before setup, as QEMU's can before `migrate`. */
		if (!was && c->negotiated && srv->replay && !send_to(srv, c, event_json(&srv->last)))
			return;
	}
}

/* Sends the queued events to every negotiated client; true once stop was
 * asked (after these, the last ones). */
static bool send_events(lm_qmp_server *srv)
{
	struct queued q[LM_QMP_MAX_EVENTS];
	pthread_mutex_lock(&srv->lock);
	unsigned n = srv->count;
	for (unsigned i = 0; i < n; i++)
		q[i] = srv->q[(srv->head + i) % LM_QMP_MAX_EVENTS];
	srv->head = srv->count = 0;
	bool stopping = srv->stopping;
	pthread_mutex_unlock(&srv->lock);
	for (unsigned i = 0; i < n; i++) {
		for (unsigned k = 0; k < LM_QMP_MAX_CLIENTS; k++)
			if (srv->c[k].fd >= 0 && srv->c[k].negotiated)
				send_to(srv, &srv->c[k], event_json(&q[i]));
		if (q[i].ev.type == LIVEMIG_EVENT_STATUS) {
			srv->last = q[i];
			srv->replay = q[i].ev.status == LIVEMIG_STATUS_SETUP;
		}
	}
	return stopping;
}

static void *server_main(void *arg)
{
	lm_qmp_server *srv = arg;
	struct pollfd p[2 + LM_QMP_MAX_CLIENTS];
	for (;;) {
		p[0] = (struct pollfd){.fd = srv->wake, .events = POLLIN};
		p[1] = (struct pollfd){.fd = srv->listen_fd, .events = POLLIN};
		for (unsigned i = 0; i < LM_QMP_MAX_CLIENTS; i++)
			p[2 + i] = (struct pollfd){.fd = srv->c[i].fd, .events = POLLIN};
		/* The eventfd ends the wait for anything the server must do
		 * unasked; the bound is only a backstop.  No wait while a
		 * client had more than its turn. */
		bool more = false;
		for (unsigned i = 0; i < LM_QMP_MAX_CLIENTS; i++)
			more |= srv->c[i].fd >= 0 && srv->c[i].more;
		if (poll(p, 2 + LM_QMP_MAX_CLIENTS, more ? 0 : 1000) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			uint64_t n;
			(void)!read(srv->wake, &n, sizeof(n));
		}
		if (send_events(srv))
			break;
		if (p[1].revents & POLLIN)
			accept_client(srv);
		for (unsigned i = 0; i < LM_QMP_MAX_CLIENTS; i++)
			if (srv->c[i].fd >= 0 && p[2 + i].fd == srv->c[i].fd &&
			    (p[2 + i].revents || srv->c[i].more))
				serve(srv, &srv->c[i]);
		/* Idle clients that never negotiate would hold every slot. */
		uint64_t now = lm_now_ns();
		for (unsigned i = 0; i < LM_QMP_MAX_CLIENTS; i++)
			if (srv->c[i].fd >= 0 && !srv->c[i].negotiated &&
			    now - srv->c[i].since_ns > LM_QMP_NEGOTIATE_S * 1000000000ull)
				drop(srv, &srv->c[i], "no qmp_capabilities within 10 s");
	}
	for (unsigned i = 0; i < LM_QMP_MAX_CLIENTS; i++)
		if (srv->c[i].fd >= 0)
			drop(srv, &srv->c[i], NULL);
	return NULL;
}

int lm_qmp_server_start(livemig_session *s, const char *path, lm_qmp_server **out, char *err,
			size_t errlen)
{
	char uri[sizeof(((struct lm_addr *)0)->path) + 8];
	struct lm_addr addr;
	snprintf(uri, sizeof(uri), "unix:%s", path);
	if (strlen(path) >= sizeof(addr.path) || lm_uri_parse(uri, &addr, err, errlen)) {
		snprintf(err, errlen, "control socket unix:%s: a path of at most %zu bytes",
			 path, sizeof(addr.path) - 1);
		return -EINVAL;
	}
	lm_qmp_server *srv = calloc(1, sizeof(*srv));
	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	srv->s = s;
	snprintf(srv->path, sizeof(srv->path), "%s", path);
	for (unsigned i = 0; i < LM_QMP_MAX_CLIENTS; i++)
		srv->c[i].fd = -1;
	pthread_mutex_init(&srv->lock, NULL);
	srv->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int r = srv->wake < 0 ? -errno : livemig_set_event_cb(s, on_event, srv);
	if (r) {
		snprintf(err, errlen, "control socket: %s",
			 r == -EBUSY ? "the migration has started already" : strerror(-r));
		goto fail;
	}
	srv->listen_fd = lm_listen(&addr, err, errlen);
	if (srv->listen_fd < 0) {
		r = srv->listen_fd;
		goto fail;
	}
	/* Its signals are the application's (a Ctrl-C must reach the CLI's
	 * handler, never kill the process from here). */
	if ((r = lm_thread_start(&srv->thread, server_main, srv))) {
		snprintf(err, errlen, "control socket: cannot start its thread: %s", strerror(-r));
		close(srv->listen_fd);
		unlink(srv->path);
		goto fail;
	}
	*out = srv;
	return 0;
fail:
	if (r != -EBUSY)
		livemig_set_event_cb(s, NULL, NULL);
	if (srv->wake >= 0)
		close(srv->wake);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
	return r;
}

void lm_qmp_server_stop(lm_qmp_server *srv)
{
	if (!srv)
		return;
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	pthread_mutex_unlock(&srv->lock);
	wake(srv);
	pthread_join(srv->thread, NULL);
	close(srv->listen_fd);
	unlink(srv->path);
	/* Nothing may call on_event once srv is gone (livemig_resume_source
	 * comes after livemig_wait).  Stopped while the migration runs, its
	 * threads still may: then the queue stays, never freed. */
	if (livemig_set_event_cb(srv->s, NULL, NULL)) {
		lm_log(srv->s, 1, "control socket: stopped while the migration runs: its event "
		       "queue is left allocated");
		return;
	}
	close(srv->wake);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}
