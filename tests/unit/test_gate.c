/* SPDX-License-Identifier: MIT */
/* The destination's gate (core/gate.c) on a loopback listener: silent
 * clients past the cap make room by losing the one that waited longest, a
 * client with a hello is taken while the silent ones still wait, a client
 * that sends its hello a byte at a time is cut at its deadline, the end of
 * the phase closes every half-open connection, and refusals are logged
 * ten at once and then one a second. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "t.h"
#include "util/util.h"

static unsigned log_lines;
static char last_line[512];

static void count_log(void *opaque, int level, const char *msg)
{
	(void)opaque;
	(void)level;
	log_lines++;
	snprintf(last_line, sizeof(last_line), "%s", msg);
}

static struct lm_addr where;

static livemig_session *listening(void)
{
	char err[256];
	livemig_session *s = livemig_session_new(LIVEMIG_DEST);
	livemig_set_log(s, count_log, NULL);
	CHECK(!lm_uri_parse("tcp:127.0.0.1:0", &s->addr, err, sizeof(err)));
	s->dst.listen_fd = lm_listen(&s->addr, err, sizeof(err));
	CHECKF(s->dst.listen_fd >= 0, "%s", err);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	getsockname(s->dst.listen_fd, (struct sockaddr *)&ss, &len);
	where = s->addr;
	snprintf(where.port, sizeof(where.port), "%u",
		 ntohs(((struct sockaddr_in *)&ss)->sin_port));
	CHECK(!lm_gate_open(s));
	return s;
}

static int client(void)
{
	char err[256];
	int fd = lm_connect(&where, 5, NULL, err, sizeof(err));
	CHECKF(fd >= 0, "%s", err);
	return fd;
}

/* Whether the destination closed fd (waiting up to ms for it). */
static bool closed(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;
	return poll(&p, 1, ms) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

static void test_cap_and_take(void)
{
	livemig_session *s = listening();
	enum { SILENT = LM_GATE_SLOTS + 8 };
	int silent[SILENT];
	struct lm_hello h;
	struct lm_tls_conn *tls;
	char why[256];
	for (unsigned i = 0; i < SILENT; i++) {
		silent[i] = client();
		/* One at a time, so that the order of arrival is known. */
		for (int k = 0; k < 3; k++)
			CHECK(lm_gate_take(s, 20, 10, &h, &tls, why, sizeof(why)) == -EAGAIN);
	}
	/* The first eight made room for the last eight. */
	CHECKF(atomic_load(&s->dst.refused) == SILENT - LM_GATE_SLOTS, "%llu refused",
	       (unsigned long long)atomic_load(&s->dst.refused));
	for (unsigned i = 0; i < SILENT; i++)
		CHECKF(closed(silent[i], i < SILENT - LM_GATE_SLOTS ? 1000 : 0) ==
			       (i < SILENT - LM_GATE_SLOTS),
		       "silent client %u", i);
	CHECK(strstr(last_line, "too many half-open connections"));

	/* A client that says hello at once is taken while the silent ones,
	 * each with 10 s to go, still wait. */
	int good = client();
	uint8_t buf[LM_HELLO_SIZE];
	lm_hello_encode(&(struct lm_hello){.version = LM_WIRE_VERSION, .channel = 2,
					   .nchannels = 3, .uuid = {7}},
			buf);
	CHECK(write(good, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	int fd = -EAGAIN;
	for (int k = 0; k < 100 && fd == -EAGAIN; k++)
		fd = lm_gate_take(s, 50, 10, &h, &tls, why, sizeof(why));
	CHECKF(fd >= 0, "%d %s", fd, why);
	CHECK(h.channel == 2 && h.nchannels == 3 && h.uuid[0] == 7 && !tls);
	CHECK(!closed(silent[SILENT - 1], 0));
	if (fd >= 0)
		close(fd);

	/* The end of the phase: every half-open connection closed, counted. */
	uint64_t before = atomic_load(&s->dst.refused);
	lm_gate_cut(s, "test");
	CHECKF(atomic_load(&s->dst.refused) == before + LM_GATE_SLOTS - 1, "%llu refused",
	       (unsigned long long)(atomic_load(&s->dst.refused) - before));
	CHECK(strstr(last_line, "test: closed 31 connections not taken (half open or refused)"));
	for (unsigned i = SILENT - LM_GATE_SLOTS + 1; i < SILENT; i++)
		CHECKF(closed(silent[i], 1000), "silent client %u still open", i);
	for (unsigned i = 0; i < SILENT; i++)
		close(silent[i]);
	close(good);
	lm_gate_close(s);
	livemig_session_free(s);
}

/* A hello a byte every 200 ms never trips the socket's timeout per read
 * (hello_s): the gate's deadline ends it, hello_s after it came. */
static void test_deadline(void)
{
	livemig_session *s = listening();
	int drip = client();
	struct lm_hello h;
	struct lm_tls_conn *tls;
	char why[256] = "";
	uint64_t t0 = lm_now_ns();
	int fd = -EAGAIN;
	while (fd == -EAGAIN && lm_now_ns() - t0 < 5000000000ull) {
		(void)!write(drip, "L", 1);
		fd = lm_gate_take(s, 200, 1, &h, &tls, why, sizeof(why));
	}
	double dt = (double)(lm_now_ns() - t0) / 1e9;
	CHECKF(fd == -ETIMEDOUT && !strcmp(why, "no complete hello (timed out)"), "%d '%s'", fd,
	       why);
	CHECKF(dt >= 0.9 && dt < 2.5, "cut after %.2f s", dt);
	close(drip);
	lm_gate_close(s);
	livemig_session_free(s);
}

static void test_log_budget(void)
{
	livemig_session *s = listening();
	log_lines = 0;
	for (int i = 0; i < 100; i++)
		lm_gate_refused(s, "refused %d", i);
	CHECKF(log_lines == 10 && atomic_load(&s->dst.refused) == 100, "%u lines", log_lines);
	nanosleep(&(struct timespec){1, 100000000}, NULL);
	lm_gate_refused(s, "refused again");
	CHECKF(log_lines == 11 && !strcmp(last_line, "refused again (90 such lines before it "
						   "were left out)"),
	       "%u '%s'", log_lines, last_line);
	lm_gate_close(s);
	livemig_session_free(s);
}

/* Finished refusals nobody has taken yet make room before a vet still
 * waiting for its hello: a source in its handshake is not closed because
 * junk hellos came first (review of issue 10). */
static void test_refusals_make_room(void)
{
	livemig_session *s = listening();
	enum { JUNK = LM_GATE_SLOTS - 1 };
	int junk[JUNK + 2], source;
	struct lm_hello h;
	struct lm_tls_conn *tls;
	char why[256];
	for (unsigned i = 0; i < JUNK; i++) {
		junk[i] = client();
		CHECK(write(junk[i], "GET / HTTP/1.0\r\n\r\n" "0123456789012345678901", 40) == 40);
	}
	/* Admitted in one round, which returns at most one of them (most
	 * vets have not even started): the rest stay in their slots. */
	lm_gate_take(s, 200, 10, &h, &tls, why, sizeof(why));
	usleep(200000); /* their vets end: junk hellos, not taken */
	/* The source (silent: still in its "handshake") and two more junk
	 * clients come together, over the cap, and are admitted in one round. */
	source = client();
	junk[JUNK] = client();
	junk[JUNK + 1] = client();
	usleep(50000);
	lm_gate_take(s, 0, 10, &h, &tls, why, sizeof(why));
	CHECK(!closed(source, 0));
	lm_gate_cut(s, "test");
	CHECK(closed(source, 1000));
	for (unsigned i = 0; i < JUNK + 2; i++)
		close(junk[i]);
	close(source);
	lm_gate_close(s);
	livemig_session_free(s);
}

int main(void)
{
	test_cap_and_take();
	test_refusals_make_room();
	test_deadline();
	test_log_budget();
	T_DONE();
}
