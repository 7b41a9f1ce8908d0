/* SPDX-License-Identifier: MIT */
#include "qmp/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp/jsonline.h"
#include "util/util.h"

struct lm_qmp {
	struct lm_jl jl;
	pid_t pid;
	uint64_t next_id;
	/* Events not yet asked for, oldest at head (a ring). */
	json_object *ev[LM_QMP_MAX_EVENTS];
	unsigned head, count;
	char err_class[64];
	char err[512];
};

static uint64_t deadline(int timeout_ms)
{
	return lm_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull;
}

static int conn_error(lm_qmp *q, int r, const char *what)
{
	q->err_class[0] = 0;
	snprintf(q->err, sizeof(q->err), "QMP %s: %s", what,
		 r == -ETIMEDOUT ? "no answer in time" :
		 r == -ECONNRESET ? "QEMU closed the connection" :
		 r == -EPROTO ? "malformed JSON" : strerror(-r));
	return r;
}

static void queue_event(lm_qmp *q, json_object *o)
{
	if (q->count == LM_QMP_MAX_EVENTS) { /* nobody asks for them: drop the oldest */
		json_object_put(lm_qmp_pop_event(q));
	}
	q->ev[(q->head + q->count++) % LM_QMP_MAX_EVENTS] = o;
}

json_object *lm_qmp_pop_event(lm_qmp *q)
{
	if (!q->count)
		return NULL;
	json_object *o = q->ev[q->head];
	q->head = (q->head + 1) % LM_QMP_MAX_EVENTS;
	q->count--;
	return o;
}

/* The next message that is not an event, by until_ns.  Events are queued;
 * with events_too, reading one returns 0 with *out NULL. */
static int read_reply(lm_qmp *q, uint64_t until_ns, json_object **out, bool events_too)
{
	for (;;) {
		json_object *o;
		int r = lm_jl_read(&q->jl, until_ns, &o);
		if (r)
			return r;
		if (!json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			return -EPROTO;
		}
		if (lm_json_get_str(o, "event")) {
			queue_event(q, o);
			if (!events_too)
				continue;
			o = NULL;
		}
		*out = o;
		return 0;
	}
}

int lm_qmp_execute_fd(lm_qmp *q, const char *cmd, json_object *args, int fd, int timeout_ms,
		      json_object **ret)
{
	char id[32];
	snprintf(id, sizeof(id), "lm-%llu", (unsigned long long)++q->next_id);
	json_object *m = json_object_new_object();
	if (!m)
		return -ENOMEM;
	json_object_object_add(m, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(m, "arguments", json_object_get(args));
	json_object_object_add(m, "id", json_object_new_string(id));
	int r = lm_jl_write(q->jl.fd, m, fd);
	json_object_put(m);
	if (r)
		return conn_error(q, r, cmd);

	json_object *o;
	if ((r = read_reply(q, deadline(timeout_ms), &o, false)))
		return conn_error(q, r, cmd);
	const char *got = lm_json_get_str(o, "id");
	json_object *e = lm_json_get_obj(o, "error"), *v = NULL;
	if (!got || strcmp(got, id) || (!e && !json_object_object_get_ex(o, "return", &v))) {
		json_object_put(o);
		return conn_error(q, -EPROTO, cmd);
	}
	if (e) {
		const char *cls = lm_json_get_str(e, "class"), *desc = lm_json_get_str(e, "desc");
		snprintf(q->err_class, sizeof(q->err_class), "%s", cls ? cls : "");
		snprintf(q->err, sizeof(q->err), "%s: %s", cls ? cls : "error",
			 desc ? desc : "(no description)");
		json_object_put(o);
		return -EREMOTEIO;
	}
	if (ret)
		*ret = json_object_get(v);
	json_object_put(o);
	return 0;
}

int lm_qmp_execute(lm_qmp *q, const char *cmd, json_object *args, int timeout_ms,
		   json_object **ret)
{
	return lm_qmp_execute_fd(q, cmd, args, -1, timeout_ms, ret);
}

int lm_qmp_getfd(lm_qmp *q, int fd, const char *name, int timeout_ms)
{
	json_object *a = json_object_new_object();
	if (!a)
		return -ENOMEM;
	json_object_object_add(a, "fdname", json_object_new_string(name));
	int r = lm_qmp_execute_fd(q, "getfd", a, fd, timeout_ms, NULL);
	json_object_put(a);
	return r;
}

const char *lm_qmp_error(lm_qmp *q)
{
	return q->err;
}

const char *lm_qmp_error_class(lm_qmp *q)
{
	return q->err_class;
}

int lm_qmp_wait_event(lm_qmp *q, const char *name, int timeout_ms, json_object **ev)
{
	uint64_t until = timeout_ms > 0 ? deadline(timeout_ms) : 0;
	unsigned seen = 0; /* queued events already looked at */
	for (;;) {
		for (; seen < q->count; seen++) {
			unsigned k = (q->head + seen) % LM_QMP_MAX_EVENTS;
			if (name && strcmp(lm_json_get_str(q->ev[k], "event"), name))
				continue;
			*ev = q->ev[k];
			/* Close the gap, keeping the order of the rest. */
			for (unsigned j = seen; j + 1 < q->count; j++)
				q->ev[(q->head + j) % LM_QMP_MAX_EVENTS] =
					q->ev[(q->head + j + 1) % LM_QMP_MAX_EVENTS];
			q->count--;
			return 0;
		}
		json_object *o;
		bool full = q->count == LM_QMP_MAX_EVENTS;
		int r = read_reply(q, until, &o, true);
		if (r == -ETIMEDOUT)
			return r;
		if (r)
			return conn_error(q, r, "event");
		/* An answer nobody waits for (a command that timed out), or
		 * NULL: an event, now queued.  Into a full queue it pushed out
		 * the oldest, one we had seen: the new one is at seen - 1. */
		if (!o && full)
			seen--;
		json_object_put(o);
	}
}

int lm_qmp_poll(lm_qmp *q)
{
	json_object *o;
	int r;
	while (!(r = read_reply(q, 0, &o, true)))
		json_object_put(o);
	return r == -ETIMEDOUT ? 0 : conn_error(q, r, "read");
}

int64_t lm_qmp_event_us(json_object *ev)
{
	json_object *t = lm_json_get_obj(ev, "timestamp"), *s, *us;
	if (!t || !json_object_object_get_ex(t, "seconds", &s) ||
	    !json_object_object_get_ex(t, "microseconds", &us))
		return 0;
	return json_object_get_int64(s) * 1000000 + json_object_get_int64(us);
}

pid_t lm_qmp_pid(const lm_qmp *q)
{
	return q->pid;
}

/* A unix socket connected to path by until_ns, or -errno (-ETIMEDOUT: the
 * listener's backlog stayed full). */
static int connect_unix(const char *path, uint64_t until_ns)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A unix socket connects at once or, when the listener's backlog is
	 * full, fails with EAGAIN (never EINPROGRESS: there is nothing to
	 * poll for), so try again until the deadline. */
	int r;
	while ((r = connect(fd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0) == -EAGAIN) {
		if (lm_now_ns() >= until_ns) {
			r = -ETIMEDOUT;
			break;
		}
		usleep(10000);
	}
	/* Blocking from here: writes are small and local; reads poll. */
	if (r || fcntl(fd, F_SETFL, 0)) {
		r = r ? r : -errno;
		close(fd);
		return r;
	}
	return fd;
}

lm_qmp *lm_qmp_connect(const char *path, int timeout_ms, char *err, size_t errlen)
{
	uint64_t until = deadline(timeout_ms);
	int fd = connect_unix(path, until);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to the QMP socket %s: %s", path,
			 strerror(-fd));
		return NULL;
	}
	lm_qmp *q = calloc(1, sizeof(*q));
	if (!q || lm_jl_init(&q->jl, fd)) {
		snprintf(err, errlen, "out of memory");
		free(q);
		close(fd);
		return NULL;
	}
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		q->pid = cred.pid;

	json_object *g = NULL;
	int r = read_reply(q, until, &g, false);
	if (r || !lm_json_get_obj(g, "QMP")) {
		snprintf(err, errlen, "%s is not a QMP socket: %s", path,
			 r ? (r == -ETIMEDOUT ? "no greeting in time" : strerror(-r))
			   : "the greeting has no \"QMP\"");
		json_object_put(g);
		lm_qmp_close(q);
		return NULL;
	}
	json_object_put(g);
	int64_t left = (int64_t)(until - lm_now_ns()) / 1000000; /* < 0 once past */
	if ((r = lm_qmp_execute(q, "qmp_capabilities", NULL, left > 0 ? (int)left : 1, NULL))) {
		snprintf(err, errlen, "QMP %s: qmp_capabilities: %s", path, lm_qmp_error(q));
		lm_qmp_close(q);
		return NULL;
	}
	return q;
}

void lm_qmp_close(lm_qmp *q)
{
	if (!q)
		return;
	json_object *o;
	while ((o = lm_qmp_pop_event(q)))
		json_object_put(o);
	close(q->jl.fd);
	lm_jl_destroy(&q->jl);
	free(q);
}
