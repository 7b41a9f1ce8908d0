/* SPDX-License-Identifier: MIT */
/*
 * Liveness: how long either side waits for the other, and for the whole
 * migration (docs/design.md, "Liveness").
 *
 * - Every TCP connection has keepalive and TCP_USER_TIMEOUT from
 *   net-timeout (transport.c, lm_sock_liveness): a dead link or host fails
 *   reads and writes on its own.
 * - The main channel carries a HEARTBEAT each way every net-timeout / 4
 *   (at most 1 s apart), so a peer whose kernel still acknowledges but
 *   whose process is stopped or stuck is found too.  Its readers
 *   (read_main in session.c) fail after net-timeout without a byte.
 * - The source's timeout is one deadline from the start of the migration.
 *
 * One thread per session, the watchdog, sends the heartbeats and owns the
 * deadline.  It is not one of the control threads because those have
 * phases in which they poll nothing (allocating and prefaulting RAM,
 * joining the channels, stopping the guest).  Its failures go through the
 * error latch like any other: lm_fail wakes every waiter and shuts the
 * sockets down, so every blocked send, receive and wait returns.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "core/converge.h"
#include "core/internal.h"
#include "util/util.h"

uint64_t lm_heartbeat_ns(unsigned net_timeout_s)
{
	uint64_t quarter = net_timeout_s * 250000000ull;
	return quarter < 1000000000ull ? quarter : 1000000000ull;
}

const char *lm_phase_name(enum livemig_role role, enum livemig_status status,
			  uint32_t iteration, char *buf, size_t len)
{
	switch (status) {
	case LIVEMIG_STATUS_NONE:
	case LIVEMIG_STATUS_SETUP:
		return "setup";
	case LIVEMIG_STATUS_ACTIVE: {
		/* The source counts passes started, the destination passes
		 * acknowledged: its current one is the next. */
		uint32_t pass = role == LIVEMIG_SOURCE ? iteration : iteration + 1;
		if (pass <= 1)
			return "first pass";
		snprintf(buf, len, "pass %u", pass);
		return buf;
	}
	case LIVEMIG_STATUS_DEVICE:
		return "switchover";
	default:
		return "end";
	}
}

const char *lm_phase(livemig_session *s, char *buf, size_t len)
{
	pthread_mutex_lock(&s->lock);
	uint32_t iteration = s->iteration;
	pthread_mutex_unlock(&s->lock);
	return lm_phase_name(s->role, atomic_load(&s->status), iteration, buf, len);
}

int lm_fail_silent(livemig_session *s, unsigned channel)
{
	char where[32] = "main channel";
	if (channel)
		snprintf(where, sizeof(where), "channel %u", channel);
	return lm_fail(s, -ETIMEDOUT, "%s: peer silent for %u s", where, s->p.net_timeout_s);
}

void lm_heartbeat_arm(livemig_session *s)
{
	atomic_store(&s->hb_armed, true);
}

/*
 * One HEARTBEAT on the main channel, now or never.  It never waits for
 * another writer (that one is sending something the peer reads just as
 * well) nor for room in the socket (the peer then is not reading, and its
 * own silence will fail the migration).
 */
static void heartbeat(livemig_session *s)
{
	uint8_t buf[LM_MSG_HDR_SIZE];
	int n = lm_msg_encode(&(struct lm_msg){.type = LM_MSG_HEARTBEAT}, buf, sizeof(buf));
	if (n != (int)sizeof(buf) || pthread_mutex_trylock(&s->main_tx))
		return;
	/* After its last word (the source's COMMIT, the destination's
	 * OUTCOME) a side sends nothing more: the peer reads no more then,
	 * and bytes it never reads would turn its close into a reset. */
	if (!atomic_load(&s->hb_stop))
		lm_io_write_now(s->main_fd, s->main_tls, buf, sizeof(buf));
	pthread_mutex_unlock(&s->main_tx);
}

/* The source's deadline has passed: fail, in whatever phase, unless the
 * final digest went out (the outcome is the destination's then, and the
 * wait for RESULT is bounded by net-timeout). */
static void expire(livemig_session *s)
{
	unsigned long long limit = s->p.timeout_s;
	pthread_mutex_lock(&s->lock);
	bool converging = s->src.not_converged;
	unsigned long long downtime_limit = s->p.downtime_limit_ms; /* changeable */
	uint64_t need = lm_converge_need_ms(s->src.expected_downtime_ms, downtime_limit);
	pthread_mutex_unlock(&s->lock);
	if (!converging) {
		lm_fail_before_commit(s, -ETIMEDOUT, "timeout: not done within %llu s", limit);
		return;
	}
	/* The last sync decided to go on: its estimate, with the margin
	 * the rule adds, is over the limit. */
	char expected[64] = "unknown (no bandwidth measured yet)";
	if (need != UINT64_MAX)
		snprintf(expected, sizeof(expected), "%llu ms with its margin",
			 (unsigned long long)need);
	lm_fail_before_commit(s, -ETIMEDOUT,
			      "timeout: did not converge within %llu s: expected downtime %s, "
			      "downtime-limit %llu ms",
			      limit, expected, downtime_limit);
}

/* The guest has been stopped for downtime-limit plus switchover-timeout
 * and the destination has not confirmed: the source takes the guest back
 * (lm_source_main resumes it), unless it has begun to commit. */
static void switchover_expire(livemig_session *s, unsigned long long downtime_limit)
{
	unsigned long long timeout = s->p.switchover_timeout_ms;
	lm_fail_before_commit(s, -ETIMEDOUT,
			      "switchover: the destination did not confirm within %llu ms of the "
			      "guest's stop (downtime-limit %llu + switchover-timeout %llu ms)",
			      downtime_limit + timeout, downtime_limit, timeout);
}

static void *watchdog_main(void *arg)
{
	livemig_session *s = arg;
	uint64_t every = lm_heartbeat_ns(s->p.net_timeout_s), deadline = s->deadline;
	uint64_t next_beat = 0; /* 0 = not armed yet */

	pthread_mutex_lock(&s->lock);
	while (!s->wd_stop && !lm_quit(s)) {
		uint64_t now = lm_now_ns();
		if (deadline && now >= deadline) {
			deadline = 0; /* once: it may find the outcome no longer ours */
			pthread_mutex_unlock(&s->lock);
			expire(s);
			pthread_mutex_lock(&s->lock);
			continue;
		}
		uint64_t stop_by = s->src.switchover_deadline;
		if (stop_by && now >= stop_by) {
			s->src.switchover_deadline = 0; /* once */
			unsigned long long limit = s->src.switchover_limit_ms;
			pthread_mutex_unlock(&s->lock);
			switchover_expire(s, limit);
			pthread_mutex_lock(&s->lock);
			continue;
		}
		/* The first heartbeat goes one period after arming, so that
		 * the answer to PARAMS (READY or ERROR) comes first. */
		if (!next_beat && atomic_load(&s->hb_armed))
			next_beat = now + every;
		if (next_beat && now >= next_beat) {
			next_beat = now + every;
			pthread_mutex_unlock(&s->lock);
			heartbeat(s);
			pthread_mutex_lock(&s->lock);
			continue;
		}
		uint64_t wake = next_beat ? next_beat : now + every;
		if (deadline && deadline < wake)
			wake = deadline;
		if (stop_by && stop_by < wake)
			wake = stop_by;
		lm_cond_wait_until(s, wake);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int lm_watchdog_start(livemig_session *s)
{
	s->deadline = s->role == LIVEMIG_SOURCE && s->p.timeout_s
			      ? s->t_start + s->p.timeout_s * 1000000000ull
			      : 0;
	s->wd_stop = false;
	int r = pthread_create(&s->wd, NULL, watchdog_main, s);
	if (r)
		return -r;
	s->wd_started = true;
	return 0;
}

void lm_watchdog_stop(livemig_session *s)
{
	if (!s->wd_started)
		return;
	pthread_mutex_lock(&s->lock);
	s->wd_stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->wd, NULL);
	s->wd_started = false;
}
