/* SPDX-License-Identifier: MIT */
/*
 * The control socket (src/qmp/server.c): the command dispatch request by
 * request, then the server on a socket with the QMP client (src/qmp/qmp.c)
 * and raw clients - greeting, negotiation, events, a malformed line, too
 * many clients, a client that never reads, one that sends many requests at
 * once, the socket's mode and removal.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/internal.h"
#include "qmp/jsonline.h"
#include "qmp/qmp.h"
#include "qmp/server.h"
#include "t.h"
#include "util/util.h"

/* The reply to text as a request, with *negotiated the client's state. */
static json_object *ask(livemig_session *s, bool *negotiated, const char *text)
{
	json_object *req = json_tokener_parse(text);
	CHECKF(req || !strcmp(text, "null"), "%s", text);
	json_object *r = lm_qmp_dispatch(s, negotiated, req);
	json_object_put(req);
	CHECK(r != NULL);
	return r;
}

/* The error class of a reply ("" for a return), and its desc into desc. */
static const char *error_of(json_object *r, const char **desc)
{
	json_object *e = lm_json_get_obj(r, "error");
	*desc = e ? lm_json_get_str(e, "desc") : "";
	return e ? lm_json_get_str(e, "class") : "";
}

/* Checks that text gets error class cls with desc containing want. */
static void expect_error(livemig_session *s, bool *neg, const char *text, const char *cls,
			 const char *want)
{
	json_object *r = ask(s, neg, text);
	const char *desc, *got = error_of(r, &desc);
	CHECKF(!strcmp(got, cls) && strstr(desc, want), "%s: %s %s", text, got, desc);
	json_object_put(r);
}

/* The "return" value of text's reply (the caller puts it), or NULL. */
static json_object *expect_return(livemig_session *s, bool *neg, const char *text)
{
	json_object *r = ask(s, neg, text), *v = NULL;
	const char *desc;
	CHECKF(json_object_object_get_ex(r, "return", &v), "%s: %s", text,
	       (error_of(r, &desc), desc));
	json_object_get(v);
	json_object_put(r);
	return v;
}

static void dispatch(void)
{
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	bool neg = false;

	/* Shape, and nothing before qmp_capabilities. */
	expect_error(s, &neg, "[1]", "GenericError", "must be a JSON object");
	expect_error(s, &neg, "{\"execute\": 1}", "GenericError", "'execute' must be a string");
	expect_error(s, &neg, "{\"id\": 3}", "GenericError", "lacks member 'execute'");
	expect_error(s, &neg, "{\"execute\": \"qmp_capabilities\", \"x\": 1}", "GenericError",
		     "member 'x' is unexpected");
	expect_error(s, &neg, "{\"execute\": \"query-migrate\", \"arguments\": 1}",
		     "GenericError", "'arguments' must be an object");
	json_object *r = ask(s, &neg, "{\"execute\": \"query-migrate\", \"id\": \"a\"}");
	const char *desc;
	CHECK(!strcmp(error_of(r, &desc), "CommandNotFound") &&
	      strstr(desc, "Expecting capabilities negotiation") &&
	      !strcmp(lm_json_get_str(r, "id"), "a"));
	json_object_put(r);
	expect_error(s, &neg, "{\"execute\": \"qmp_capabilities\", \"arguments\": "
		     "{\"enable\": [\"oob\"]}}", "GenericError", "Capability 'oob' not available");
	CHECK(!neg);
	json_object_put(expect_return(s, &neg, "{\"execute\": \"qmp_capabilities\", "
				      "\"arguments\": {\"enable\": []}}"));
	CHECK(neg);
	expect_error(s, &neg, "{\"execute\": \"qmp_capabilities\"}", "CommandNotFound",
		     "already complete");
	expect_error(s, &neg, "{\"execute\": \"migrate\"}", "CommandNotFound",
		     "The command migrate has not been found");

	/* Queries: an id of any JSON type comes back as it was. */
	r = ask(s, &neg, "{\"execute\": \"query-migrate\", \"id\": {\"n\": [1, 2]}}");
	json_object *v = NULL, *n = NULL;
	CHECK(json_object_object_get_ex(r, "return", &v) &&
	      !strcmp(lm_json_get_str(v, "status"), "none") && lm_json_get_obj(v, "ram") &&
	      json_object_object_get_ex(lm_json_get_obj(r, "id"), "n", &n) &&
	      json_object_is_type(n, json_type_array) && json_object_array_length(n) == 2);
	json_object_put(r);
	expect_error(s, &neg, "{\"execute\": \"query-migrate\", \"arguments\": {\"x\": 1}}",
		     "GenericError", "Parameter 'x' is unexpected");
	v = expect_return(s, &neg, "{\"execute\": \"query-migrate-parameters\"}");
	json_object *f;
	CHECK(json_object_object_get_ex(v, "downtime-limit", &f) && json_object_get_int64(f) == 300);
	CHECK(json_object_object_get_ex(v, "accel-verify", &f) &&
	      json_object_is_type(f, json_type_boolean));
	CHECK(!strcmp(lm_json_get_str(v, "multifd-compression"), "none"));
	CHECK(!json_object_object_get_ex(v, "max-ram", &f));        /* the destination's */
	CHECK(!json_object_object_get_ex(v, "x-no-barrier", &f));   /* hidden */
	CHECK(!json_object_object_get_ex(v, "auto-converge", &f));  /* a capability */
	json_object_put(v);
	v = expect_return(s, &neg, "{\"execute\": \"query-migrate-capabilities\"}");
	bool found = false;
	for (size_t i = 0; v && i < json_object_array_length(v); i++) {
		json_object *c = json_object_array_get_idx(v, i), *st;
		if (!strcmp(lm_json_get_str(c, "capability"), "auto-converge"))
			found = json_object_object_get_ex(c, "state", &st) &&
				!json_object_get_boolean(st);
	}
	CHECK(found);
	json_object_put(v);
	v = expect_return(s, &neg, "{\"execute\": \"query-commands\"}");
	CHECK(v && json_object_array_length(v) == 8);
	json_object_put(v);

	/* Setting: not before a migration started. */
	expect_error(s, &neg, "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
		     "{\"max-bandwidth\": 1}}", "GenericError", "no migration has started");
	/* A started one (it fails at once: nobody listens there). */
	uint8_t *mem = aligned_alloc(4096, 4096);
	livemig_ram_register(s, "ram", mem, 4096);
	CHECK(livemig_start(s, "unix:/tmp/livemig-test-qmp-server-nobody.sock") == 0);
	livemig_wait(s);
	json_object_put(expect_return(s, &neg, "{\"execute\": \"migrate-set-parameters\", "
				      "\"arguments\": {\"max-bandwidth\": 1048576, "
				      "\"downtime-limit\": 500, \"max-cpu-throttle\": \"60\"}}"));
	char val[32];
	CHECK(livemig_get_parameter(s, "max-bandwidth", val, sizeof(val)) > 0 &&
	      !strcmp(val, "1048576"));
	CHECK(livemig_get_parameter(s, "max-cpu-throttle", val, sizeof(val)) > 0 &&
	      !strcmp(val, "60"));
	/* All or nothing: max-bandwidth stays as it was. */
	expect_error(s, &neg, "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
		     "{\"max-bandwidth\": 5, \"multifd-channels\": 4}}", "GenericError",
		     "multifd-channels cannot change while a migration runs (these can: "
		     "max-bandwidth, downtime-limit");
	CHECK(livemig_get_parameter(s, "max-bandwidth", val, sizeof(val)) > 0 &&
	      !strcmp(val, "1048576"));
	expect_error(s, &neg, "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
		     "{\"downtime-limit\": -1}}", "GenericError", "expects a non-negative integer");
	expect_error(s, &neg, "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
		     "{\"max-bandwidth\": 1.5}}", "GenericError", "expects a non-negative integer");
	expect_error(s, &neg, "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
		     "{\"downtime-limit\": \"1s\"}}", "GenericError", "downtime-limit: '1s'");
	expect_error(s, &neg, "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
		     "{\"bogus\": 1}}", "GenericError", "unknown parameter 'bogus'");
	/* Neither saturated nor cut short (an attack review found both). */
	expect_error(s, &neg, "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
		     "{\"max-bandwidth\": 99999999999999999999999}}", "GenericError",
		     "value out of range");
	char longv[400];
	snprintf(longv, sizeof(longv), "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
		 "{\"max-bandwidth\": \"%0300d4194304\"}}", 0);
	expect_error(s, &neg, longv, "GenericError", "value too long");
	CHECK(livemig_get_parameter(s, "max-bandwidth", val, sizeof(val)) > 0 &&
	      !strcmp(val, "1048576"));
	json_object_put(expect_return(s, &neg, "{\"execute\": \"migrate-set-parameters\", "
				      "\"arguments\": {\"max-bandwidth\": \"2M\"}}"));
	CHECK(livemig_get_parameter(s, "max-bandwidth", val, sizeof(val)) > 0 &&
	      !strcmp(val, "2097152"));
	json_object_put(expect_return(s, &neg, "{\"execute\": \"migrate_cancel\"}"));
	json_object_put(expect_return(s, &neg, "{\"execute\": \"migrate-cancel\"}"));
	livemig_session_free(s);
	free(mem);

	/* A destination has nothing to change while it runs. */
	s = livemig_session_new(LIVEMIG_DEST);
	neg = true;
	v = expect_return(s, &neg, "{\"execute\": \"query-migrate-parameters\"}");
	CHECK(json_object_object_get_ex(v, "max-ram", &f));
	CHECK(!json_object_object_get_ex(v, "max-bandwidth", &f));
	json_object_put(v);
	livemig_session_free(s);
}

/* ---- on a socket ------------------------------------------------------------ */

struct logged {
	_Atomic int not_reading, refused;
};

static void on_log(void *opaque, int level, const char *msg)
{
	struct logged *l = opaque;
	(void)level;
	if (strstr(msg, "does not read"))
		atomic_fetch_add(&l->not_reading, 1);
	if (strstr(msg, "too many clients"))
		atomic_fetch_add(&l->refused, 1);
}

static int raw_connect(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	return fd;
}

/* The next JSON line from fd within 2 s (jl on fd), or NULL. */
static json_object *next(struct lm_jl *jl)
{
	json_object *o = NULL;
	int r = lm_jl_read(jl, lm_now_ns() + 2000000000ull, &o);
	return r ? NULL : o;
}

static void inject(livemig_session *s, enum livemig_event_type type, int status, uint32_t pass)
{
	s->event(s->event_opaque,
		 &(struct livemig_event){.type = type, .status = (enum livemig_status)status,
					 .pass = pass});
}

/* A client that has sent many requests at once does not keep the events
 * waiting until it has all its answers: they come after at most
 * LM_QMP_BURST of them.  The server is held in the first request (s->lock,
 * which the command takes) while the event is queued. */
static void flooded(const char *path, livemig_session *s)
{
	enum { N = 64 }; /* every answer fits in the socket: nothing read till the end */
	static const char neg[] = "{\"execute\": \"qmp_capabilities\"}\n";
	static const char ask[] = "{\"execute\": \"query-migrate-capabilities\"}\n";
	char buf[sizeof(neg) + N * sizeof(ask)];
	size_t len = 0;
	memcpy(buf, neg, sizeof(neg) - 1);
	len += sizeof(neg) - 1;
	for (int i = 0; i < N; i++, len += sizeof(ask) - 1)
		memcpy(buf + len, ask, sizeof(ask) - 1);
	int fd = raw_connect(path);
	struct lm_jl jl;
	CHECK(lm_jl_init(&jl, fd) == 0);
	json_object *o = next(&jl); /* the greeting */
	json_object_put(o);
	pthread_mutex_lock(&s->lock);
	CHECK(write(fd, buf, len) == (ssize_t)len);
	usleep(100000); /* the server answers qmp_capabilities and waits in the next */
	inject(s, LIVEMIG_EVENT_PASS, LIVEMIG_STATUS_ACTIVE, 42);
	pthread_mutex_unlock(&s->lock);
	o = next(&jl); /* qmp_capabilities' */
	json_object_put(o);
	int at = -1;
	for (int i = 0; i < N + 1 && (o = next(&jl)); i++) {
		if (lm_json_get_str(o, "event"))
			at = i;
		json_object_put(o);
	}
	CHECKF(at >= 0 && at <= LM_QMP_BURST, "the event came after %d answers", at);
	lm_jl_destroy(&jl);
	close(fd);
}

static void on_socket(void)
{
	char path[108], err[256];
	snprintf(path, sizeof(path), "/tmp/livemig-test-qmp-server-%d.sock", (int)getpid());
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	struct logged lg = {0};
	livemig_set_log(s, on_log, &lg);
	lm_qmp_server *srv = NULL;
	CHECK(lm_qmp_server_start(s, "/tmp/a-path-far-too-long-for-a-unix-socket-xxxxxxxxxxxxxx"
				  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", &srv,
				  err, sizeof(err)) == -EINVAL);
	CHECK(lm_qmp_server_start(s, path, &srv, err, sizeof(err)) == 0);
	struct stat st;
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);

	/* A QMP client: greeting, negotiation, a command, events. */
	lm_qmp *q = lm_qmp_connect(path, 2000, err, sizeof(err));
	CHECKF(q, "%s", err);
	json_object *ret = NULL;
	CHECK(q && lm_qmp_execute(q, "query-migrate", NULL, 2000, &ret) == 0 &&
	      !strcmp(lm_json_get_str(ret, "status"), "none"));
	json_object_put(ret);
	CHECK(q && lm_qmp_execute(q, "nope", NULL, 2000, NULL) == -EREMOTEIO &&
	      !strcmp(lm_qmp_error_class(q), "CommandNotFound"));
	inject(s, LIVEMIG_EVENT_STATUS, LIVEMIG_STATUS_ACTIVE, 0);
	inject(s, LIVEMIG_EVENT_PASS, LIVEMIG_STATUS_ACTIVE, 3);
	json_object *ev = NULL, *d;
	CHECK(q && lm_qmp_wait_event(q, NULL, 2000, &ev) == 0 &&
	      !strcmp(lm_json_get_str(ev, "event"), "MIGRATION") &&
	      !strcmp(lm_json_get_str(lm_json_get_obj(ev, "data"), "status"), "active") &&
	      lm_qmp_event_us(ev) > 1600000000000000ll);
	json_object_put(ev);
	CHECK(q && lm_qmp_wait_event(q, NULL, 2000, &ev) == 0 &&
	      !strcmp(lm_json_get_str(ev, "event"), "MIGRATION_PASS") &&
	      json_object_object_get_ex(lm_json_get_obj(ev, "data"), "pass", &d) &&
	      json_object_get_int(d) == 3);
	json_object_put(ev);

	/* Raw: the greeting's shape; a malformed line is answered and the
	 * next one still works; no events before qmp_capabilities. */
	int fd = raw_connect(path);
	struct lm_jl jl;
	CHECK(lm_jl_init(&jl, fd) == 0);
	json_object *g = next(&jl), *caps;
	json_object *ver = lm_json_get_obj(lm_json_get_obj(lm_json_get_obj(g, "QMP"), "version"),
					   "qemu");
	CHECK(ver && json_object_object_get_ex(lm_json_get_obj(g, "QMP"), "capabilities", &caps) &&
	      json_object_array_length(caps) == 0);
	json_object_put(g);
	inject(s, LIVEMIG_EVENT_STATUS, LIVEMIG_STATUS_DEVICE, 0);
	const char *two = "{\"execute\": bad}\n{\"execute\": \"qmp_capabilities\", \"id\": 7}\n";
	CHECK(write(fd, two, strlen(two)) == (ssize_t)strlen(two));
	json_object *r1 = next(&jl), *r2 = next(&jl);
	const char *desc;
	CHECK(r1 && !strcmp(error_of(r1, &desc), "GenericError") &&
	      strstr(desc, "JSON parse error"));
	json_object *id7 = NULL;
	CHECK(r2 && json_object_object_get_ex(r2, "return", &d) &&
	      json_object_object_get_ex(r2, "id", &id7) && json_object_get_int(id7) == 7);
	json_object_put(r1);
	json_object_put(r2);

	/* At most LM_QMP_MAX_CLIENTS: two connected, six more, one too many. */
	int more[LM_QMP_MAX_CLIENTS - 1];
	for (int i = 0; i < LM_QMP_MAX_CLIENTS - 1; i++)
		more[i] = raw_connect(path);
	char b;
	CHECK(read(more[LM_QMP_MAX_CLIENTS - 2], &b, 1) == 0); /* closed at once */
	CHECK(atomic_load(&lg.refused) == 1);
	for (int i = 0; i < LM_QMP_MAX_CLIENTS - 1; i++)
		close(more[i]);

	/* A client that never reads is dropped, and the others go on. */
	for (int i = 0; i < 100000 && !atomic_load(&lg.not_reading); i++) {
		inject(s, LIVEMIG_EVENT_PASS, LIVEMIG_STATUS_ACTIVE, (uint32_t)i);
		if (i % 64 == 63)
			usleep(1000); /* the queue holds LM_QMP_MAX_EVENTS */
		if (q && i % 256 == 255)
			lm_qmp_poll(q); /* this one reads */
	}
	CHECK(atomic_load(&lg.not_reading) == 1);
	CHECK(q && lm_qmp_execute(q, "query-migrate", NULL, 2000, NULL) == 0);
	lm_jl_destroy(&jl);
	close(fd);
	flooded(path, s);

	lm_qmp_server_stop(srv);
	CHECK(stat(path, &st) == -1 && errno == ENOENT);
	lm_qmp_close(q);
	livemig_session_free(s);
}

static void no_event(void *opaque, const struct livemig_event *ev)
{
	(void)opaque;
	(void)ev;
}

/* Once the migration has ended, stopping the server clears the session's
 * event callback: a later event (livemig_resume_source's) must not reach
 * the freed server.  Clearing is refused while the migration runs. */
static void stop_clears(void)
{
	char path[108], err[256];
	snprintf(path, sizeof(path), "/tmp/livemig-test-qmp-server-%d-b.sock", (int)getpid());
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	uint8_t *mem = aligned_alloc(4096, 4096);
	CHECK(livemig_ram_register(s, "ram", mem, 4096) == 0);
	lm_qmp_server *srv = NULL;
	CHECK(lm_qmp_server_start(s, path, &srv, err, sizeof(err)) == 0);
	CHECK(livemig_start(s, "unix:/tmp/livemig-test-qmp-server-nobody.sock") == 0);
	CHECK(livemig_set_event_cb(s, NULL, NULL) == -EBUSY); /* not waited yet */
	CHECK(livemig_wait(s) < 0);
	CHECK(livemig_set_event_cb(s, no_event, NULL) == -EBUSY);
	lm_qmp_server_stop(srv);
	CHECK(s->event == NULL);
	lm_set_status(s, LIVEMIG_STATUS_CANCELLED); /* reaches nothing */
	livemig_session_free(s);
	free(mem);
}

int main(void)
{
	dispatch();
	on_socket();
	stop_clears();
	T_DONE();
}
