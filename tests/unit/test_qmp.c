/* SPDX-License-Identifier: MIT */
/* The QMP client (src/qmp) against a fake QMP server: a thread on a unix
 * socket speaking through the same line framing (jsonline.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp/jsonline.h"
#include "qmp/qmp.h"
#include "t.h"
#include "util/util.h"

struct server {
	int listen_fd;
	char path[108];
	int got_fd_ok; /* getfd's fd arrived and was usable */
	int fillers; /* connections filling the backlog, taken and dropped */
};

static void send_raw(int fd, const char *s)
{
	CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
}

/* Answers commands by name until the client goes. */
static void *server_main(void *arg)
{
	struct server *sv = arg;
	if (sv->fillers)
		usleep(200000); /* the client finds the backlog full meanwhile */
	for (int i = 0; i < sv->fillers; i++)
		close(accept(sv->listen_fd, NULL, NULL));
	int fd = accept(sv->listen_fd, NULL, NULL);
	CHECK(fd >= 0);
	struct lm_jl jl;
	CHECK(lm_jl_init(&jl, fd) == 0);
	/* The greeting in two pieces: the tokener must join them. */
	send_raw(fd, "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7}}, ");
	usleep(20000);
	send_raw(fd, "\"capabilities\": []}}\r\n");
	json_object *cmd;
	while (!lm_jl_read(&jl, lm_now_ns() + 5000000000ull, &cmd)) {
		const char *ex = lm_json_get_str(cmd, "execute"), *id = lm_json_get_str(cmd, "id");
		char out[512];
		if (!ex || !id) {
			json_object_put(cmd);
			break;
		}
		if (!strcmp(ex, "qmp_capabilities")) {
			snprintf(out, sizeof(out), "{\"return\": {}, \"id\": \"%s\"}\r\n", id);
			send_raw(fd, out);
		} else if (!strcmp(ex, "query-status")) {
			/* An event first, then the answer and another event, in
			 * one write. */
			snprintf(out, sizeof(out),
				 "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 250}, "
				 "\"event\": \"STOP\"}\r\n"
				 "{\"return\": {\"status\": \"paused\", \"running\": false}, "
				 "\"id\": \"%s\"}\r\n"
				 "{\"timestamp\": {\"seconds\": 1700000001, \"microseconds\": 5}, "
				 "\"event\": \"MIGRATION\", \"data\": {\"status\": \"setup\"}}\r\n",
				 id);
			send_raw(fd, out);
		} else if (!strcmp(ex, "getfd")) {
			json_object *a = lm_json_get_obj(cmd, "arguments");
			int pfd = jl.received_fd;
			jl.received_fd = -1;
			sv->got_fd_ok = pfd >= 0 && a && !strcmp(lm_json_get_str(a, "fdname"), "dev") &&
					write(pfd, "x", 1) == 1;
			if (pfd >= 0)
				close(pfd);
			snprintf(out, sizeof(out), "{\"return\": {}, \"id\": \"%s\"}\r\n", id);
			send_raw(fd, out);
		} else if (!strcmp(ex, "cont")) {
			snprintf(out, sizeof(out),
				 "{\"return\": {}, \"id\": \"%s\"}\r\n"
				 "{\"timestamp\": {\"seconds\": 1700000002, \"microseconds\": 0}, "
				 "\"event\": \"RESUME\"}\r\n", id);
			send_raw(fd, out);
		} else if (!strcmp(ex, "flood")) {
			/* More events than the client keeps, then the one it
			 * waits for. */
			snprintf(out, sizeof(out), "{\"return\": {}, \"id\": \"%s\"}\r\n", id);
			send_raw(fd, out);
			for (int i = 0; i < LM_QMP_MAX_EVENTS + 44; i++)
				send_raw(fd, "{\"event\": \"X\"}\r\n");
			send_raw(fd, "{\"event\": \"STOP\"}\r\n");
		} else if (!strcmp(ex, "wrong-id")) {
			send_raw(fd, "{\"return\": {}, \"id\": \"someone-else\"}\r\n");
		} else if (!strcmp(ex, "hang")) {
			/* no answer */
		} else {
			snprintf(out, sizeof(out),
				 "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
				 "\"The command %s has not been found\"}, \"id\": \"%s\"}\r\n", ex, id);
			send_raw(fd, out);
		}
		json_object_put(cmd);
	}
	lm_jl_destroy(&jl);
	close(fd);
	return NULL;
}

/* Connects to path until its backlog is full (EAGAIN); the connections'
 * fds into filler[0..8), their count returned. */
static int fill_backlog(const char *path, int *filler)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, path);
	int n = 0;
	while (n < 8) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		CHECK(fd >= 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
			CHECK(errno == EAGAIN);
			close(fd);
			break;
		}
		filler[n++] = fd;
	}
	CHECK(n > 0 && n < 8);
	return n;
}

/* The server's listening socket, or with full_backlog its backlog filled
 * first (sv->fillers connections, fds into filler[]). */
static void start_server_full(struct server *sv, pthread_t *th, bool full_backlog, int *filler)
{
	snprintf(sv->path, sizeof(sv->path), "/tmp/lm-test-qmp-%d.sock", (int)getpid());
	unlink(sv->path);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, sv->path);
	sv->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(sv->listen_fd >= 0);
	CHECK(bind(sv->listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(listen(sv->listen_fd, 1) == 0);
	if (full_backlog)
		sv->fillers = fill_backlog(sv->path, filler);
	CHECK(pthread_create(th, NULL, server_main, sv) == 0);
}

static void start_server(struct server *sv, pthread_t *th)
{
	start_server_full(sv, th, false, NULL);
}

static void test_client(void)
{
	struct server sv = {0};
	pthread_t th;
	start_server(&sv, &th);
	char err[256];
	lm_qmp *q = lm_qmp_connect(sv.path, 2000, err, sizeof(err));
	CHECKF(q, "%s", err);
	if (!q)
		return;
	CHECK(lm_qmp_pid(q) == getpid());

	json_object *ret = NULL, *ev = NULL;
	CHECK(lm_qmp_execute(q, "query-status", NULL, 2000, &ret) == 0);
	CHECK(ret && !strcmp(lm_json_get_str(ret, "status"), "paused"));
	json_object_put(ret);

	CHECK(lm_qmp_execute(q, "no-such-command", NULL, 2000, NULL) == -EREMOTEIO);
	CHECK(!strcmp(lm_qmp_error_class(q), "CommandNotFound"));
	CHECK(strstr(lm_qmp_error(q), "no-such-command has not been found"));

	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(lm_qmp_getfd(q, p[1], "dev", 2000) == 0);
	close(p[1]);
	char c = 0;
	CHECK(read(p[0], &c, 1) == 1 && c == 'x' && sv.got_fd_ok);
	close(p[0]);

	/* Events queued while commands ran, by name, in order, timestamps kept. */
	CHECK(lm_qmp_wait_event(q, "MIGRATION", 0, &ev) == 0);
	CHECK(ev && !strcmp(lm_json_get_str(lm_json_get_obj(ev, "data"), "status"), "setup"));
	json_object_put(ev);
	CHECK(lm_qmp_wait_event(q, "STOP", 0, &ev) == 0);
	CHECK(lm_qmp_event_us(ev) == 1700000000000250ll);
	json_object_put(ev);
	CHECK(lm_qmp_pop_event(q) == NULL);

	/* An event that arrives after the command's answer. */
	CHECK(lm_qmp_execute(q, "cont", NULL, 2000, NULL) == 0);
	int rr = lm_qmp_wait_event(q, "RESUME", 2000, &ev);
	CHECKF(rr == 0, "%d %s", rr, lm_qmp_error(q));
	CHECK(lm_qmp_event_us(ev) == 1700000002000000ll);
	json_object_put(ev);

	/* Bounded waits. */
	uint64_t t0 = lm_now_ns();
	CHECK(lm_qmp_wait_event(q, "SHUTDOWN", 150, &ev) == -ETIMEDOUT);
	uint64_t ms = (lm_now_ns() - t0) / 1000000;
	CHECKF(ms >= 140 && ms < 1000, "%llu ms", (unsigned long long)ms);
	t0 = lm_now_ns();
	CHECK(lm_qmp_execute(q, "hang", NULL, 150, NULL) == -ETIMEDOUT);
	ms = (lm_now_ns() - t0) / 1000000;
	CHECKF(ms >= 140 && ms < 1000, "%llu ms", (unsigned long long)ms);

	/* A full queue drops the oldest events, and the awaited one that
	 * comes after them is still found. */
	CHECK(lm_qmp_execute(q, "flood", NULL, 2000, NULL) == 0);
	rr = lm_qmp_wait_event(q, "STOP", 2000, &ev);
	CHECKF(rr == 0, "%d %s", rr, lm_qmp_error(q));
	json_object_put(ev);
	int kept = 0;
	while ((ev = lm_qmp_pop_event(q))) {
		CHECK(!strcmp(lm_json_get_str(ev, "event"), "X"));
		json_object_put(ev);
		kept++;
	}
	CHECKF(kept == LM_QMP_MAX_EVENTS - 1, "%d events kept", kept);

	/* An answer to somebody else is not ours. */
	CHECK(lm_qmp_execute(q, "wrong-id", NULL, 2000, NULL) == -EPROTO);

	lm_qmp_close(q);
	pthread_join(th, NULL);
	close(sv.listen_fd);
	unlink(sv.path);
}

/* A listener whose backlog is full refuses at once (EAGAIN): the client
 * tries again until the deadline, and connects once the server catches up. */
static void test_full_backlog(void)
{
	struct server sv = {0};
	pthread_t th;
	int filler[8];
	start_server_full(&sv, &th, true, filler);
	char err[256];
	lm_qmp *q = lm_qmp_connect(sv.path, 3000, err, sizeof(err));
	CHECKF(q, "%s", err);
	lm_qmp_close(q);
	if (!q) { /* the server still waits for us */
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		strcpy(a.sun_path, sv.path);
		CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
		close(fd);
	}
	pthread_join(th, NULL);
	for (int i = 0; i < sv.fillers; i++)
		close(filler[i]);

	/* Nobody catches up: -ETIMEDOUT in time. */
	sv.fillers = fill_backlog(sv.path, filler);
	uint64_t t0 = lm_now_ns();
	q = lm_qmp_connect(sv.path, 150, err, sizeof(err));
	uint64_t ms = (lm_now_ns() - t0) / 1000000;
	CHECK(!q && strstr(err, strerror(ETIMEDOUT)));
	CHECKF(ms >= 140 && ms < 1000, "%llu ms", (unsigned long long)ms);
	lm_qmp_close(q);
	for (int i = 0; i < sv.fillers; i++)
		close(filler[i]);
	close(sv.listen_fd);
	unlink(sv.path);
}

/* What the line reader refuses: broken JSON, a value without end. */
static void test_jsonline(void)
{
	int sp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	struct lm_jl jl;
	CHECK(lm_jl_init(&jl, sp[0]) == 0);
	json_object *o = NULL;
	send_raw(sp[1], "{\"a\": 1}{\"b\": [1, 2]}\r\n  \r\n{\"c\":");
	CHECK(lm_jl_read(&jl, 0, &o) == 0 && json_object_object_get_ex(o, "a", NULL));
	json_object_put(o);
	CHECK(lm_jl_read(&jl, 0, &o) == 0 && json_object_object_get_ex(o, "b", NULL));
	json_object_put(o);
	CHECK(lm_jl_read(&jl, lm_now_ns() + 50000000ull, &o) == -ETIMEDOUT);
	send_raw(sp[1], " true}\r\n");
	CHECK(lm_jl_read(&jl, lm_now_ns() + 1000000000ull, &o) == 0 &&
	      json_object_object_get_ex(o, "c", NULL));
	json_object_put(o);
	send_raw(sp[1], "{\"d\": tru}\r\n");
	CHECK(lm_jl_read(&jl, lm_now_ns() + 1000000000ull, &o) == -EPROTO);
	lm_jl_destroy(&jl);

	/* A value that never ends is refused at LM_JL_MAX_VALUE. */
	CHECK(lm_jl_init(&jl, sp[0]) == 0);
	send_raw(sp[1], "[");
	static char chunk[65536];
	memset(chunk, ' ', sizeof(chunk));
	int r = 0;
	for (size_t sent = 0; sent <= LM_JL_MAX_VALUE + sizeof(chunk) && r != -EPROTO;
	     sent += sizeof(chunk)) {
		CHECK(write(sp[1], chunk, sizeof(chunk)) == sizeof(chunk));
		while ((r = lm_jl_read(&jl, 0, &o)) == 0)
			json_object_put(o);
	}
	CHECK(r == -EPROTO);
	lm_jl_destroy(&jl);

	/* End of stream. */
	CHECK(lm_jl_init(&jl, sp[0]) == 0);
	close(sp[1]);
	CHECK(lm_jl_read(&jl, lm_now_ns() + 1000000000ull, &o) == -ECONNRESET);
	lm_jl_destroy(&jl);
	close(sp[0]);
}

int main(void)
{
	test_jsonline();
	test_client();
	test_full_backlog();
	T_DONE();
}
