/* SPDX-License-Identifier: MIT */
/* lm_ratelimit against max-bandwidth changed while a sender sleeps. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "core/internal.h"
#include "t.h"
#include "util/util.h"

struct sender {
	livemig_session *s;
	uint64_t took_ms;
};

static void *send_one(void *arg)
{
	struct sender *x = arg;
	uint64_t t0 = lm_now_ns();
	lm_ratelimit(x->s, 1000); /* 1 ms at 1 MB/s */
	x->took_ms = (lm_now_ns() - t0) / 1000000;
	return NULL;
}

static int set(livemig_session *s, const char *bw)
{
	char err[200];
	return lm_set_parameter_running(s, "max-bandwidth", bw, false, err, sizeof(err));
}

/* A sender waits for a slot 2 s ahead (booked at a slow rate); the rate
 * changes and comes back, within one of its 50 ms sleeps: it books again
 * on the new clock rather than keep the old slot. */
static void back_and_forth(void)
{
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	atomic_store(&s->status, LIVEMIG_STATUS_ACTIVE); /* as if started */
	CHECK(!set(s, "1000000"));
	atomic_store(&s->src.rl_next, lm_now_ns() + 2000000000ull);
	struct sender x = {.s = s};
	pthread_t th;
	CHECK(!pthread_create(&th, NULL, send_one, &x));
	nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
	CHECK(!set(s, "2000000"));
	CHECK(!set(s, "1000000"));
	pthread_join(th, NULL);
	CHECKF(x.took_ms < 500, "the sender kept its old slot: %llu ms",
	       (unsigned long long)x.took_ms);
	atomic_store(&s->status, LIVEMIG_STATUS_NONE);
	livemig_session_free(s);
}

/* Unlimited: at once, whatever the clock says. */
static void unlimited(void)
{
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	atomic_store(&s->src.rl_next, lm_now_ns() + 2000000000ull);
	struct sender x = {.s = s};
	send_one(&x);
	CHECK(x.took_ms < 100);
	livemig_session_free(s);
}

int main(void)
{
	back_and_forth();
	unlimited();
	T_DONE();
}
