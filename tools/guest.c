/* SPDX-License-Identifier: MIT */
/* The CLI's synthetic running guest; see guest.h. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest.h"

#define PAGE 4096u
#define MAX_THREADS 64
#define SLICE_NS 1000000ull /* writers catch up with their rate every 1 ms */

struct writer {
	struct guest *g;
	unsigned id;
	pthread_t thread;
	uint64_t rng;
	uint64_t writes;
};

struct guest {
	uint8_t *mem;
	uint64_t hot_pages;
	struct guest_spec spec;
	uint64_t *version; /* per hot page; page p belongs to writer p % threads */
	struct writer w[MAX_THREADS];
	unsigned n;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	_Atomic bool pause_req;
	_Atomic bool quit;
	unsigned paused;
	unsigned epoch; /* bumped on resume and throttle: writers restart their clock */
	_Atomic int throttle;
	bool joined;    /* guest_stop has joined the writers */
};

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static uint64_t next_rand(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix(*s);
}

static uint64_t stamp_hash(uint64_t index, uint64_t version)
{
	return mix(GUEST_STAMP_MAGIC ^ mix(index) ^ mix(version + 0x1234567));
}

int64_t guest_stamp_version(const uint8_t *page, uint64_t index)
{
	uint64_t f[4];
	memcpy(f, page, sizeof(f));
	if (f[0] != GUEST_STAMP_MAGIC)
		return 0;
	if (f[1] != index || f[3] != stamp_hash(index, f[2]) || f[2] == 0 || f[2] > INT64_MAX)
		return -1;
	return (int64_t)f[2];
}

static void write_page(struct guest *g, uint64_t p)
{
	uint8_t *page = g->mem + p * PAGE;
	uint64_t v = ++g->version[p];
	uint64_t f[4] = {GUEST_STAMP_MAGIC, p, v, stamp_hash(p, v)};
	/* Some bytes elsewhere first, the stamp last: the content changes
	 * with every version, not only the header. */
	uint64_t body = mix(p ^ (v << 20));
	memcpy(page + 64 + (v * 8) % (PAGE - 72), &body, sizeof(body));
	memcpy(page, f, sizeof(f));
}

/* A hot page owned by writer w, uniform or Zipf-like (rank ~ 1/x). */
static uint64_t pick(struct guest *g, struct writer *w)
{
	uint64_t slots = (g->hot_pages - w->id + g->n - 1) / g->n; /* pages id, id+n, ... */
	uint64_t k;
	if (g->spec.pattern == GUEST_ZIPF) {
		double u = (double)(next_rand(&w->rng) >> 11) / (double)(1ull << 53);
		uint64_t rank = (uint64_t)pow((double)slots, u) - 1;
		/* Spread the hottest ranks over the set instead of packing them
		 * at its start. */
		k = (rank * 0x9e3779b97f4a7c15ull) % slots;
	} else {
		k = next_rand(&w->rng) % slots;
	}
	return k * g->n + w->id;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct guest *g = w->g;
	double pps = (double)g->spec.rate / PAGE / g->n; /* this writer's pages/s */
	unsigned epoch = ~0u;
	uint64_t t0 = 0, done = 0;

	while (!atomic_load(&g->quit)) {
		if (atomic_load(&g->pause_req)) {
			pthread_mutex_lock(&g->lock);
			g->paused++;
			pthread_cond_broadcast(&g->cond);
			while (atomic_load(&g->pause_req) && !atomic_load(&g->quit))
				pthread_cond_wait(&g->cond, &g->lock);
			g->paused--;
			pthread_mutex_unlock(&g->lock);
			continue;
		}
		pthread_mutex_lock(&g->lock);
		if (epoch != g->epoch) { /* resumed or re-throttled: restart the clock */
			epoch = g->epoch;
			t0 = now_ns();
			done = 0;
		}
		pthread_mutex_unlock(&g->lock);
		double rate = pps * (100 - atomic_load(&g->throttle)) / 100.0;
		uint64_t due = (uint64_t)((double)(now_ns() - t0) / 1e9 * rate);
		while (done < due && !atomic_load(&g->pause_req)) {
			write_page(g, pick(g, w));
			done++;
			w->writes++;
		}
		struct timespec ts = {0, (long)SLICE_NS};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

struct guest *guest_start(const struct guest_spec *spec, uint8_t *mem, uint64_t size, char *err,
			  size_t errlen)
{
	if (!spec->rate || size < PAGE) {
		snprintf(err, errlen, "no guest writes to run");
		return NULL;
	}
	unsigned n = spec->threads ? spec->threads : 1;
	uint64_t hot = spec->hot ? spec->hot : size;
	if (n > MAX_THREADS || hot > size || hot / PAGE < n) {
		snprintf(err, errlen, "--dirty-threads 1..%d and --dirty-hot up to --mem, with at "
			 "least one page per thread", MAX_THREADS);
		return NULL;
	}
	struct guest *g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->mem = mem;
	g->spec = *spec;
	g->n = n;
	g->hot_pages = hot / PAGE;
	g->version = calloc(g->hot_pages, sizeof(*g->version));
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	if (!g->version) {
		free(g);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* Writers take no signals: SIGINT/SIGTERM must reach the thread that
	 * cancels the migration, not end the process from a writer. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < n; i++) {
		g->w[i] = (struct writer){.g = g, .id = i, .rng = mix(spec->seed * 977 + i)};
		if (pthread_create(&g->w[i].thread, NULL, writer_main, &g->w[i])) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			atomic_store(&g->quit, true);
			for (unsigned j = 0; j < i; j++)
				pthread_join(g->w[j].thread, NULL);
			free(g->version);
			free(g);
			snprintf(err, errlen, "cannot start guest threads");
			return NULL;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return g;
}

void guest_pause(struct guest *g)
{
	pthread_mutex_lock(&g->lock);
	atomic_store(&g->pause_req, true);
	while (g->paused < g->n)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

void guest_resume(struct guest *g)
{
	pthread_mutex_lock(&g->lock);
	atomic_store(&g->pause_req, false);
	g->epoch++;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

void guest_throttle(struct guest *g, int percent)
{
	pthread_mutex_lock(&g->lock);
	atomic_store(&g->throttle, percent < 0 ? 0 : percent > 99 ? 99 : percent);
	g->epoch++;
	pthread_mutex_unlock(&g->lock);
}

uint64_t guest_stop(struct guest *g)
{
	if (!g)
		return 0;
	pthread_mutex_lock(&g->lock);
	atomic_store(&g->quit, true);
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	uint64_t writes = 0;
	for (unsigned i = 0; i < g->n; i++) {
		if (!g->joined)
			pthread_join(g->w[i].thread, NULL);
		writes += g->w[i].writes;
	}
	g->joined = true;
	return writes;
}

bool guest_running(struct guest *g)
{
	return !atomic_load(&g->pause_req);
}

uint64_t guest_check(const struct guest *g)
{
	uint64_t bad = 0;
	for (uint64_t p = 0; p < g->hot_pages; p++)
		if (g->version[p] && guest_stamp_version(g->mem + p * PAGE, p) != (int64_t)g->version[p])
			bad++;
	return bad;
}

void guest_free(struct guest *g)
{
	if (!g)
		return;
	guest_stop(g);
	free(g->version);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
	free(g);
}
