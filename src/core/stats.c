/* SPDX-License-Identifier: MIT */
/* Statistics: per-channel counters summed on read; JSON in query-migrate shape. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "util/json.h"
#include "util/util.h"

/*
 * The whole snapshot, as this library's struct livemig_stats has it.  Any
 * thread, while the session's threads run: what they write is read through
 * atomics or under the lock (struct livemig_session says which), and what
 * they write only before they end (cpu_ctl, each channel's cpu_seconds,
 * verify) only once status says they have - the control thread stores the
 * final status last.
 */
static void snapshot(livemig_session *s, struct livemig_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->status = atomic_load(&s->status);
	bool done = st->status >= LIVEMIG_STATUS_COMPLETED;
	uint64_t now = lm_now_ns();
	uint64_t t_start = atomic_load(&s->t_start), t_setup = atomic_load(&s->t_setup);
	uint64_t t_end = atomic_load(&s->t_end);
	uint64_t end = done && t_end ? t_end : now;
	if (t_start)
		st->total_time_ms = (end - t_start) / 1000000;
	if (t_setup)
		st->setup_time_ms = (t_setup - t_start) / 1000000;

	/* The parameters a destination adopts during setup, the size of the
	 * RAM it learns then, and the source's pass state. */
	pthread_mutex_lock(&s->lock);
	st->channels = s->p.channels;
	snprintf(st->method, sizeof(st->method), "%s", lm_method_name(s->p.method));
	snprintf(st->zero_page_detection, sizeof(st->zero_page_detection), "%s",
		 s->p.zero_detect ? s->p.zero_engine : "none");
	uint64_t total_pages = s->total_pages;
	uint64_t t_stop = s->src.t_stop, precopy_bytes = s->src.precopy_bytes;
	/* Unknown until a pre-copy sync measured them; a source without a
	 * running guest has nothing to estimate and an idle guest. */
	bool source = s->role == LIVEMIG_SOURCE;
	st->expected_downtime_ms = source && s->src.measured ? s->src.expected_downtime_ms
							     : UINT64_MAX;
	st->dirty_pages_rate = !source ? LIVEMIG_RATE_UNKNOWN
			       : s->src.measured || !s->src.live ? s->src.dirty_pages_rate
								 : LIVEMIG_RATE_UNKNOWN;
	st->cpu_throttle_percentage = s->src.throttle_pct;
	/* Passes started, counted alike on both sides: a destination knows
	 * pass k has begun once it acknowledged pass k - 1 (the source starts
	 * the next pass, or the final one, right after the ack). */
	st->dirty_sync_count = s->role == LIVEMIG_SOURCE ? s->iteration
			       : atomic_load(&s->t_setup) ? s->iteration + 1u : 0;
	/* The source's pages not sent: what the current pass published less
	 * what the senders took from it (a chunk taken counts as sent),
	 * plus what a sync found that no pass has published yet; before the
	 * first pass, everything. */
	size_t taken = atomic_load(&s->src.cursor);
	uint64_t unsent = !s->iteration ? s->total_pages
			  : (s->src.nwork > taken ? s->src.nwork - taken : 0) + s->src.pending_pages;
	/* The destination knows only pass 1's: every page once. */
	bool dst_pass1 = !source && !s->iteration;
	bool cpu_remote_known = s->src.result_ready;
	snprintf(st->dirty_tracker, sizeof(st->dirty_tracker), "%s",
		 !s->src.live ? "none" : s->src.tracker ? s->src.tracker->name : "pending");
	double cpu_remote = s->src.cpu_remote;
	st->device_state_bytes = s->dev_bytes;
	st->device_state_ms = s->dev_ms;
	pthread_mutex_unlock(&s->lock);

	if (t_stop && s->role == LIVEMIG_SOURCE)
		st->downtime_ms = (end - t_stop) / 1000000;
	double cpu = done ? s->cpu_ctl : LIVEMIG_CPU_UNKNOWN;
	unsigned nch = st->status >= LIVEMIG_STATUS_ACTIVE ? st->channels : 0;
	for (unsigned i = 0; i < nch && s->ch; i++) {
		struct lm_chan *c = &s->ch[i];
		st->normal += atomic_load_explicit(&c->normal, memory_order_relaxed);
		st->duplicate += atomic_load_explicit(&c->zero, memory_order_relaxed);
		st->transferred += atomic_load_explicit(&c->wire_bytes, memory_order_relaxed);
		st->payload_bytes += atomic_load_explicit(&c->payload_bytes, memory_order_relaxed);
		if (done)
			cpu += c->cpu_seconds;
		const struct lm_codec_counters *cc = &c->codec_cnt;
		st->hw_jobs += atomic_load_explicit(&cc->acc.hw_jobs, memory_order_relaxed);
		st->sw_jobs += atomic_load_explicit(&cc->acc.sw_jobs, memory_order_relaxed);
		st->busy_retries += atomic_load_explicit(&cc->acc.busy_retries,
							 memory_order_relaxed);
		st->hw_errors += atomic_load_explicit(&cc->acc.hw_errors, memory_order_relaxed);
		st->raw_pages += atomic_load_explicit(&cc->acc.raw_pages, memory_order_relaxed);
		st->auto_none += atomic_load_explicit(&cc->auto_packets[LM_AUTO_NONE],
						      memory_order_relaxed);
		st->auto_lz4 += atomic_load_explicit(&cc->auto_packets[LM_AUTO_LZ4],
						     memory_order_relaxed);
		st->auto_zstd += atomic_load_explicit(&cc->auto_packets[LM_AUTO_ZSTD],
						      memory_order_relaxed);
		st->auto_zstd_hi += atomic_load_explicit(&cc->auto_packets[LM_AUTO_ZSTD_HI],
							 memory_order_relaxed);
		st->dsa_pages += atomic_load_explicit(&c->zero_cnt.dsa_pages, memory_order_relaxed);
		st->dsa_cpu_pages += atomic_load_explicit(&c->zero_cnt.cpu_pages,
							  memory_order_relaxed);
	}
	if (s->role == LIVEMIG_SOURCE && s->src.accel.sw) {
		const struct lm_engine_ops *first = s->src.accel.hw ? s->src.accel.hw : s->src.accel.sw;
		snprintf(st->engine, sizeof(st->engine), "%s", first->name);
		snprintf(st->fallback_engine, sizeof(st->fallback_engine), "%s",
			 s->src.accel.sw->name);
	}
	st->total = total_pages * LM_PAGE_SIZE;
	uint64_t sent = st->normal + st->duplicate;
	if (st->status == LIVEMIG_STATUS_COMPLETED)
		st->remaining = 0;
	else if (source)
		st->remaining = unsent * LM_PAGE_SIZE;
	else if (dst_pass1)
		st->remaining = total_pages > sent ? (total_pages - sent) * LM_PAGE_SIZE : 0;
	else
		st->remaining = UINT64_MAX;
	if (t_stop) {
		st->precopy_bytes = precopy_bytes;
		st->downtime_bytes = st->transferred - precopy_bytes;
	} else {
		st->precopy_bytes = st->transferred;
	}
	st->normal_bytes = st->normal * LM_PAGE_SIZE;
	double secs = st->total_time_ms / 1e3;
	if (secs > 0) {
		st->mbps = st->transferred * 8.0 / 1e6 / secs;
		st->pages_per_second = sent / secs;
	}
	/* A side's CPU is known once its threads ended (this side) or it
	 * reported it (the destination's RESULT); the source never reports
	 * to the destination. */
	if (s->role == LIVEMIG_SOURCE) {
		st->cpu_source_seconds = cpu;
		st->cpu_dest_seconds = cpu_remote_known ? cpu_remote : LIVEMIG_CPU_UNKNOWN;
	} else {
		st->cpu_source_seconds = LIVEMIG_CPU_UNKNOWN;
		st->cpu_dest_seconds = cpu;
	}
	st->compression_ratio = st->payload_bytes ? (double)st->normal_bytes / st->payload_bytes : 0;
	st->verify_match = done ? s->verify : -1;
	if (done) { /* the control thread's, written before it ended */
		st->final_pass_ms = s->src.final_pass_ms;
		st->verify_ms = s->src.verify_ms;
	}
}

/* struct livemig_stats as 0.1.0 shipped it: it ended with dsa_cpu_pages. */
#define STATS_SIZE_0_1 (offsetof(struct livemig_stats, dsa_cpu_pages) + sizeof(uint64_t))

int livemig_query_sized(livemig_session *s, struct livemig_stats *st, size_t size)
{
	struct livemig_stats full;

	if (!s || !st)
		return -EINVAL;
	snapshot(s, &full);
	/* An older caller's struct is a prefix of ours; a newer one's
	 * fields past ours are unknown here, hence zero. */
	memcpy(st, &full, size < sizeof(full) ? size : sizeof(full));
	if (size > sizeof(full))
		memset((char *)st + sizeof(full), 0, size - sizeof(full));
	return 0;
}

/* The parentheses keep the livemig_query() macro from expanding here. */
int (livemig_query)(livemig_session *s, struct livemig_stats *st)
{
	return livemig_query_sized(s, st, STATS_SIZE_0_1);
}

/* channel-recovery: the connections this side replaced.  In the JSON
 * only: struct livemig_stats stays as it is (test_stats checks that the
 * 0.1.0 entry point fills all of it). */
static uint64_t channel_recoveries(livemig_session *s, const struct livemig_stats *st)
{
	uint64_t n = 0;
	unsigned nch = st->status >= LIVEMIG_STATUS_ACTIVE ? st->channels : 0;
	for (unsigned i = 0; i < nch && s->ch; i++)
		n += atomic_load_explicit(&s->ch[i].recoveries, memory_order_relaxed);
	return n;
}

/* A count, or null when it is unknown (UINT64_MAX). */
static void put_u64(struct lm_json *b, json_object *o, const char *key, uint64_t v)
{
	if (v == UINT64_MAX)
		lm_json_null(b, o, key);
	else
		lm_json_u64(b, o, key, v);
}

/* A CPU figure or a rate, or null when unknown (negative). */
static void put_double(struct lm_json *b, json_object *o, const char *key, double v, const char *fmt)
{
	if (v < 0)
		lm_json_null(b, o, key);
	else
		lm_json_double(b, o, key, v, fmt);
}

/* At most this many passes are listed (then "..."): the JSON stays a few
 * kilobytes however long a migration ran. */
#define MAX_LISTED_PASSES 40

int livemig_stats_json(livemig_session *s, char *buf, size_t len)
{
	struct livemig_stats st;
	struct lm_json b = {false};
	json_object *root = json_object_new_object(), *o;
	livemig_query(s, &st);
	double secs = st.total_time_ms / 1e3;

	lm_json_str(&b, root, "role", s->role == LIVEMIG_SOURCE ? "source" : "destination");
	lm_json_str(&b, root, "status", livemig_status_name(st.status));
	/* Under the lock: the error a failing thread latches, the parameters a
	 * destination adopts, the passes the control thread records. */
	pthread_mutex_lock(&s->lock);
	/* A switchover settled on a resolving connection completes after a
	 * failure of the main channel: no error to report then. */
	bool failed = s->err_code && st.status != LIVEMIG_STATUS_COMPLETED;
	lm_json_str_or_null(&b, root, "error", failed ? s->err : NULL);
	lm_json_u64(&b, root, "total-time", st.total_time_ms);
	lm_json_u64(&b, root, "setup-time", st.setup_time_ms);
	lm_json_u64(&b, root, "downtime", st.downtime_ms);
	put_u64(&b, root, "expected-downtime", st.expected_downtime_ms);
	lm_json_u64(&b, root, "dirty-sync-count", st.dirty_sync_count);
	lm_json_str(&b, root, "dirty-tracker", st.dirty_tracker);
	lm_json_int(&b, root, "cpu-throttle-percentage", st.cpu_throttle_percentage);
	lm_json_u64(&b, root, "channel-recoveries", channel_recoveries(s, &st));
	lm_json_u64(&b, root, "refused-connections", atomic_load(&s->dst.refused));
	/* Which TLS ran: what the main channel's handshake agreed (every
	 * connection uses the same credentials); "" before one did. */
	const struct lm_tls_info *ti = &s->tls_info;
	if (s->tls) {
		o = lm_json_put(&b, root, "tls", json_object_new_object());
		lm_json_str(&b, o, "protocol", ti->protocol);
		lm_json_str(&b, o, "cipher", ti->protocol ? ti->cipher : "");
		lm_json_str(&b, o, "key-exchange", ti->protocol ? ti->kx : "");
		lm_json_str(&b, o, "records", ti->protocol ? ti->records : "");
	} else {
		lm_json_null(&b, root, "tls");
	}
	o = lm_json_put(&b, root, "parameters", json_object_new_object());
	lm_json_u64(&b, o, "multifd-channels", st.channels);
	lm_json_str(&b, o, "multifd-compression", st.method);
	lm_json_int(&b, o, "level", lm_params_level(&s->p));
	lm_json_str(&b, o, "zero-page-detection", st.zero_page_detection);
	lm_json_u64(&b, o, "max-bandwidth", s->p.max_bandwidth);
	json_object *passes = json_object_new_array();
	for (size_t i = 0; i < s->src.niters && i < MAX_LISTED_PASSES; i++) {
		const struct lm_iter_stat *it = &s->src.iters[i];
		json_object *p = lm_json_push(&b, passes, json_object_new_object());
		lm_json_u64(&b, p, "pages", it->pages);
		lm_json_u64(&b, p, "bytes", it->bytes);
		lm_json_u64(&b, p, "duration-ms", it->duration_ms);
		lm_json_double(&b, p, "dirty-pages-rate", it->dirty_rate, "%.0f");
	}
	if (s->src.niters > MAX_LISTED_PASSES)
		lm_json_push(&b, passes, json_object_new_string("..."));
	char zero_ran[sizeof(s->zero_ran)];
	snprintf(zero_ran, sizeof(zero_ran), "%s", s->zero_ran[0] ? s->zero_ran : st.zero_page_detection);
	pthread_mutex_unlock(&s->lock);

	o = lm_json_put(&b, root, "ram", json_object_new_object());
	lm_json_u64(&b, o, "transferred", st.transferred);
	put_u64(&b, o, "remaining", st.remaining);
	lm_json_u64(&b, o, "total", st.total);
	lm_json_u64(&b, o, "duplicate", st.duplicate);
	lm_json_u64(&b, o, "normal", st.normal);
	lm_json_u64(&b, o, "normal-bytes", st.normal_bytes);
	lm_json_u64(&b, o, "payload-bytes", st.payload_bytes);
	lm_json_double(&b, o, "mbps", st.mbps, "%.1f");
	lm_json_double(&b, o, "pages-per-second", st.pages_per_second, "%.0f");
	put_double(&b, o, "dirty-pages-rate", st.dirty_pages_rate, "%.0f");
	lm_json_u64(&b, o, "precopy-bytes", st.precopy_bytes);
	lm_json_u64(&b, o, "downtime-bytes", st.downtime_bytes);

	o = lm_json_put(&b, root, "cpu", json_object_new_object());
	put_double(&b, o, "source-seconds", st.cpu_source_seconds, "%.3f");
	put_double(&b, o, "destination-seconds", st.cpu_dest_seconds, "%.3f");
	put_double(&b, o, "source-percent", secs > 0 && st.cpu_source_seconds >= 0
		? 100.0 * st.cpu_source_seconds / secs : st.cpu_source_seconds, "%.1f");
	put_double(&b, o, "destination-percent", secs > 0 && st.cpu_dest_seconds >= 0
		? 100.0 * st.cpu_dest_seconds / secs : st.cpu_dest_seconds, "%.1f");

	o = lm_json_put(&b, root, "compression", json_object_new_object());
	lm_json_double(&b, o, "ratio", st.compression_ratio, "%.3f");
	lm_json_str(&b, o, "engine", st.engine);
	lm_json_str(&b, o, "fallback-engine", st.fallback_engine);
	lm_json_u64(&b, o, "hw-jobs", st.hw_jobs);
	lm_json_u64(&b, o, "sw-jobs", st.sw_jobs);
	lm_json_u64(&b, o, "busy-retries", st.busy_retries);
	lm_json_u64(&b, o, "hw-errors", st.hw_errors);
	lm_json_u64(&b, o, "raw-pages", st.raw_pages);
	if (s->role == LIVEMIG_SOURCE && !strcmp(st.method, "auto")) {
		json_object *a = lm_json_put(&b, o, "auto", json_object_new_object());
		lm_json_u64(&b, a, "none", st.auto_none);
		lm_json_u64(&b, a, "lz4", st.auto_lz4);
		lm_json_u64(&b, a, "zstd", st.auto_zstd);
		lm_json_u64(&b, a, "zstd-hi", st.auto_zstd_hi);
	} else {
		lm_json_null(&b, o, "auto"); /* the destination cannot tell zstd from zstd-hi */
	}

	o = lm_json_put(&b, root, "zero-page", json_object_new_object());
	lm_json_str(&b, o, "engine", zero_ran); /* which ran: dsa may fall back to multifd */
	lm_json_u64(&b, o, "dsa-pages", st.dsa_pages);
	lm_json_u64(&b, o, "cpu-fallback-pages", st.dsa_cpu_pages);

	o = lm_json_put(&b, root, "verify", json_object_new_object());
	if (st.verify_match < 0)
		lm_json_null(&b, o, "match");
	else
		lm_json_bool(&b, o, "match", st.verify_match);
	o = lm_json_put(&b, root, "device-state", json_object_new_object());
	lm_json_u64(&b, o, "bytes", st.device_state_bytes);
	lm_json_u64(&b, o, "time-ms", st.device_state_ms);
	o = lm_json_put(&b, root, "switchover", json_object_new_object());
	lm_json_u64(&b, o, "final-pass-ms", st.final_pass_ms);
	lm_json_u64(&b, o, "verify-ms", st.verify_ms);
	lm_json_put(&b, root, "iterations", passes);
	return lm_json_print(&b, root, buf, len);
}
