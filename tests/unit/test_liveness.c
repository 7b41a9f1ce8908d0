/* SPDX-License-Identifier: MIT */
/* Liveness (core/liveness.c): the phase names, the heartbeat period and the
 * keepalive settings; then, on a session whose main channel is one end of
 * a socket pair, heartbeats consumed by lm_recv_msg, silence detected after
 * net-timeout, the watchdog's heartbeats and its deadline. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "t.h"
#include "util/util.h"

static void test_phase_names(void)
{
	static const struct {
		enum livemig_role role;
		enum livemig_status status;
		uint32_t iteration;
		const char *want;
	} cases[] = {
		{LIVEMIG_SOURCE, LIVEMIG_STATUS_NONE, 0, "setup"},
		{LIVEMIG_SOURCE, LIVEMIG_STATUS_SETUP, 0, "setup"},
		{LIVEMIG_SOURCE, LIVEMIG_STATUS_ACTIVE, 0, "first pass"}, /* not published yet */
		{LIVEMIG_SOURCE, LIVEMIG_STATUS_ACTIVE, 1, "first pass"},
		{LIVEMIG_SOURCE, LIVEMIG_STATUS_ACTIVE, 7, "pass 7"},
		{LIVEMIG_SOURCE, LIVEMIG_STATUS_DEVICE, 9, "switchover"},
		/* The destination counts passes acknowledged. */
		{LIVEMIG_DEST, LIVEMIG_STATUS_ACTIVE, 0, "first pass"},
		{LIVEMIG_DEST, LIVEMIG_STATUS_ACTIVE, 1, "pass 2"},
		{LIVEMIG_DEST, LIVEMIG_STATUS_DEVICE, 4, "switchover"},
		{LIVEMIG_DEST, LIVEMIG_STATUS_FAILED, 4, "end"},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[32] = "";
		const char *p = lm_phase_name(cases[i].role, cases[i].status, cases[i].iteration,
					      buf, sizeof(buf));
		CHECKF(!strcmp(p, cases[i].want), "case %u: '%s', want '%s'", i, p, cases[i].want);
	}
}

static void test_periods(void)
{
	/* A quarter of net-timeout, at most a second. */
	CHECK(lm_heartbeat_ns(1) == 250000000ull);
	CHECK(lm_heartbeat_ns(2) == 500000000ull);
	CHECK(lm_heartbeat_ns(4) == 1000000000ull);
	CHECK(lm_heartbeat_ns(10) == 1000000000ull);
	CHECK(lm_heartbeat_ns(3600) == 1000000000ull);

	/* Probes start after half of it, then every third of the rest, and
	 * unacknowledged data may wait all of it; never a 0 (the kernel
	 * refuses that). */
	for (unsigned t = 1; t <= 3600; t++) {
		struct lm_keepalive k = lm_keepalive_for(t);
		CHECKF(k.idle_s >= 1 && k.interval_s >= 1 && k.count == 3 &&
			       k.user_timeout_ms == t * 1000,
		       "net-timeout %u: %d %d %d %u", t, k.idle_s, k.interval_s, k.count,
		       k.user_timeout_ms);
		if (t >= 6)
			CHECKF((unsigned)(k.idle_s + k.count * k.interval_s) <= t,
			       "net-timeout %u: probes end at %d s", t,
			       k.idle_s + k.count * k.interval_s);
	}
	struct lm_keepalive k = lm_keepalive_for(10);
	CHECK(k.idle_s == 5 && k.interval_s == 1);
	k = lm_keepalive_for(60);
	CHECK(k.idle_s == 30 && k.interval_s == 10);
}

/* The far end of the session's main channel writes these. */
static void put_msg(int fd, uint16_t type)
{
	uint8_t buf[LM_MSG_HDR_SIZE + LM_MSG_BODY_MAX];
	int n = lm_msg_encode(&(struct lm_msg){.type = type, .iteration = 1}, buf, sizeof(buf));
	CHECK(n > 0 && write(fd, buf, (size_t)n) == n);
}

static double now_s(void)
{
	return (double)lm_now_ns() / 1e9;
}

/* A session as far as the liveness code needs: parameters, a main
 * channel (sv[0]) and its status; sv[1] is the peer. */
static livemig_session *session(enum livemig_role role, const char *net_timeout,
				 const char *timeout, int sv[2])
{
	livemig_session *s = livemig_session_new(role);
	CHECK(s != NULL);
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	CHECK(livemig_set_parameter(s, "net-timeout", net_timeout) == 0);
	if (timeout)
		CHECK(livemig_set_parameter(s, "timeout", timeout) == 0);
	s->main_fd = sv[0];
	s->main_rx = lm_now_ns();
	s->t_start = lm_now_ns();
	atomic_store(&s->status, LIVEMIG_STATUS_ACTIVE);
	return s;
}

static void test_recv(void)
{
	int sv[2];
	struct lm_msg m;
	livemig_session *s = session(LIVEMIG_DEST, "1", NULL, sv);

	/* Heartbeats never reach the caller. */
	put_msg(sv[1], LM_MSG_HEARTBEAT);
	put_msg(sv[1], LM_MSG_HEARTBEAT);
	put_msg(sv[1], LM_MSG_ITER);
	CHECK(lm_recv_msg(s, &m) == 0 && m.type == LM_MSG_ITER && m.iteration == 1);

	/* A wait with only heartbeats in it ends with "nothing", on time. */
	put_msg(sv[1], LM_MSG_HEARTBEAT);
	double t0 = now_s();
	CHECK(lm_recv_msg_wait(s, &m, 50) == 1);
	double dt = now_s() - t0;
	CHECKF(dt >= 0.045 && dt < 0.5, "%.3f s", dt);

	/* Heartbeats keep a quiet peer alive past net-timeout... */
	for (int i = 0; i < 6; i++) {
		put_msg(sv[1], LM_MSG_HEARTBEAT);
		CHECK(lm_recv_msg_wait(s, &m, 300) == 1);
	}
	CHECK(!lm_quit(s));

	/* ...and without them it is silent: a failure net-timeout after the
	 * last byte, that names the phase (the destination is in pass 2). */
	s->iteration = 1;
	put_msg(sv[1], LM_MSG_HEARTBEAT);
	t0 = now_s();
	CHECK(lm_recv_msg(s, &m) == -ETIMEDOUT);
	dt = now_s() - t0;
	CHECKF(dt >= 0.9 && dt < 1.5, "%.3f s", dt);
	CHECKF(!strcmp(livemig_last_error(s), "main channel: peer silent for 1 s (on the destination, in phase pass 2)"),
	       "%s", livemig_last_error(s));
	CHECK(lm_quit(s));
	close(sv[1]);
	livemig_session_free(s);
}

/* Reads control messages from fd for about secs seconds: how many
 * HEARTBEATs (and nothing else) came. */
static int count_heartbeats(int fd, double secs)
{
	struct timeval tv = {0, 100000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int n = 0;
	double end = now_s() + secs;
	while (now_s() < end) {
		uint8_t hdr[LM_MSG_HDR_SIZE];
		struct lm_msg_hdr h;
		const char *why;
		if (lm_read_full(fd, hdr, sizeof(hdr), NULL))
			continue;
		if (lm_msg_hdr_decode(hdr, &h, &why) || h.type != LM_MSG_HEARTBEAT || h.len)
			return -1;
		n++;
	}
	return n;
}

static void test_watchdog(void)
{
	int sv[2];

	/* Heartbeats every net-timeout / 4, once armed; none before. */
	livemig_session *s = session(LIVEMIG_DEST, "1", NULL, sv);
	CHECK(lm_watchdog_start(s) == 0);
	CHECK(count_heartbeats(sv[1], 0.6) == 0);
	lm_heartbeat_arm(s);
	int n = count_heartbeats(sv[1], 1.1);
	CHECKF(n >= 3 && n <= 5, "%d heartbeats in 1.1 s", n);
	lm_watchdog_stop(s);
	CHECK(!lm_quit(s)); /* a destination has no deadline */
	close(sv[1]);
	livemig_session_free(s);

	/* The source's deadline fails the migration in whatever phase. */
	s = session(LIVEMIG_SOURCE, "10", "1", sv);
	atomic_store(&s->status, LIVEMIG_STATUS_SETUP);
	double t0 = now_s();
	CHECK(lm_watchdog_start(s) == 0);
	pthread_mutex_lock(&s->lock);
	while (!lm_quit(s))
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	double dt = now_s() - t0;
	CHECKF(dt >= 0.95 && dt < 1.5, "%.3f s", dt);
	CHECKF(!strcmp(livemig_last_error(s), "timeout: not done within 1 s (on the source, in phase setup)"), "%s",
	       livemig_last_error(s));
	lm_watchdog_stop(s);
	close(sv[1]);
	livemig_session_free(s);

	/* A running guest that did not converge says so, with the estimate
	 * the rule compared (margin included). */
	s = session(LIVEMIG_SOURCE, "10", "1", sv);
	s->p.downtime_limit_ms = 10;
	s->iteration = 3;
	s->src.not_converged = true;
	s->src.expected_downtime_ms = 100;
	CHECK(lm_watchdog_start(s) == 0);
	usleep(1300000);
	lm_watchdog_stop(s);
	CHECKF(!strcmp(livemig_last_error(s),
		       "timeout: did not converge within 1 s: expected downtime 115 ms with its "
		       "margin, downtime-limit 10 ms (on the source, in phase pass 3)"),
	       "%s", livemig_last_error(s));
	close(sv[1]);
	livemig_session_free(s);

	/* Once the source has begun to commit the outcome is the
	 * destination's: the deadline changes nothing. */
	s = session(LIVEMIG_SOURCE, "10", "1", sv);
	atomic_store(&s->src.complete_sent, true);
	atomic_store(&s->src.commit_started, true);
	CHECK(lm_watchdog_start(s) == 0);
	usleep(1300000);
	lm_watchdog_stop(s);
	CHECK(!lm_quit(s));
	close(sv[1]);
	livemig_session_free(s);

	/* The switchover deadline: downtime-limit + switchover-timeout from
	 * the guest's stop, not before; and not once the commit began. */
	for (int committing = 0; committing < 2; committing++) {
		s = session(LIVEMIG_SOURCE, "10", "0", sv);
		s->p.downtime_limit_ms = 200;
		s->p.switchover_timeout_ms = 300;
		atomic_store(&s->status, LIVEMIG_STATUS_DEVICE);
		atomic_store(&s->src.commit_started, committing);
		CHECK(lm_watchdog_start(s) == 0);
		uint64_t t0 = lm_now_ns();
		pthread_mutex_lock(&s->lock);
		s->src.switchover_deadline = t0 + 500000000ull;
		s->src.switchover_limit_ms = s->p.downtime_limit_ms;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		pthread_mutex_lock(&s->lock); /* changed since: the message keeps 200 */
		s->p.downtime_limit_ms = 900;
		pthread_mutex_unlock(&s->lock);
		usleep(400000);
		CHECK(!lm_quit(s));
		usleep(300000);
		lm_watchdog_stop(s);
		if (committing) {
			CHECK(!lm_quit(s));
		} else {
			CHECK(lm_quit(s) && lm_err(s) == -ETIMEDOUT);
			CHECKF(!strcmp(livemig_last_error(s),
				       "switchover: the destination did not confirm within 500 ms "
				       "of the guest's stop (downtime-limit 200 + switchover-timeout "
				       "300 ms) (on the source, in phase switchover)"),
			       "%s", livemig_last_error(s));
		}
		close(sv[1]);
		livemig_session_free(s);
	}
}

int main(void)
{
	test_phase_names();
	test_periods();
	test_recv();
	test_watchdog();
	T_DONE();
}
