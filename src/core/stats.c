/* SPDX-License-Identifier: MIT */
/* Statistics: per-channel counters summed on read; JSON in query-migrate shape. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
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
	uint64_t remaining_pages = s->src.remaining_pages;
	size_t niters = s->src.niters;
	st->expected_downtime_ms = s->src.expected_downtime_ms;
	st->dirty_pages_rate = s->src.dirty_pages_rate;
	st->cpu_throttle_percentage = s->src.throttle_pct;
	st->dirty_sync_count = s->iteration;
	snprintf(st->dirty_tracker, sizeof(st->dirty_tracker), "%s",
		 !s->src.live ? "none" : s->src.tracker ? s->src.tracker->name : "pending");
	double cpu_remote = s->src.cpu_remote;
	st->device_state_bytes = s->dev_bytes;
	st->device_state_ms = s->dev_ms;
	pthread_mutex_unlock(&s->lock);

	if (t_stop && s->role == LIVEMIG_SOURCE)
		st->downtime_ms = (end - t_stop) / 1000000;
	double cpu = done ? s->cpu_ctl : 0;
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
	if (done)
		st->remaining = 0;
	else if (niters) /* a running guest, after pass 1: what is dirty */
		st->remaining = remaining_pages * LM_PAGE_SIZE;
	else
		st->remaining = total_pages > sent ? (total_pages - sent) * LM_PAGE_SIZE : 0;
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
	if (s->role == LIVEMIG_SOURCE) {
		st->cpu_source_seconds = cpu;
		st->cpu_dest_seconds = cpu_remote;
	} else {
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

/* The error text may come from the peer: escape it for JSON. */
static void json_escape(const char *in, char *out, size_t len)
{
	size_t o = 0;
	for (; *in && o + 7 < len; in++) {
		unsigned char ch = (unsigned char)*in;
		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			o += (size_t)snprintf(out + o, len - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = 0;
}

int livemig_stats_json(livemig_session *s, char *buf, size_t len)
{
	struct livemig_stats st;
	char err[3 * sizeof(s->err)];
	livemig_query(s, &st);
	double secs = st.total_time_ms / 1e3;
	double src_pct = secs > 0 ? 100.0 * st.cpu_source_seconds / secs : 0;
	double dst_pct = secs > 0 ? 100.0 * st.cpu_dest_seconds / secs : 0;
	const char *verify = st.verify_match < 0 ? "null" : st.verify_match ? "true" : "false";
	/* Under the lock: the error a failing thread latches, the parameters a
	 * destination adopts, the passes the control thread records. */
	char iters[4096] = "[]";
	pthread_mutex_lock(&s->lock);
	/* A switchover settled on a resolving connection completes after a
	 * failure of the main channel: no error to report then. */
	bool failed = s->err_code && st.status != LIVEMIG_STATUS_COMPLETED;
	json_escape(s->err, err, sizeof(err));
	int level = lm_params_level(&s->p);
	uint64_t max_bw = s->p.max_bandwidth;
	/* Which TLS ran: what the main channel's handshake agreed (every
	 * connection uses the same credentials); "" before one did. */
	char tls[256] = "null";
	const struct lm_tls_info *ti = &s->tls_info;
	if (s->tls)
		snprintf(tls, sizeof(tls), "{\"protocol\": \"%s\", \"cipher\": \"%s\", "
			 "\"key-exchange\": \"%s\", \"records\": \"%s\"}",
			 ti->protocol ? ti->protocol : "", ti->protocol ? ti->cipher : "",
			 ti->protocol ? ti->kx : "", ti->protocol ? ti->records : "");
	size_t o = 0, i;
	for (i = 0; i < s->src.niters && o + 200 < sizeof(iters); i++) {
		const struct lm_iter_stat *it = &s->src.iters[i];
		o += (size_t)snprintf(iters + o, sizeof(iters) - o,
				      "%s{\"pages\": %llu, \"bytes\": %llu, \"duration-ms\": %llu, "
				      "\"dirty-pages-rate\": %.0f}",
				      i ? ", " : "[", (unsigned long long)it->pages,
				      (unsigned long long)it->bytes,
				      (unsigned long long)it->duration_ms, it->dirty_rate);
	}
	if (o)
		snprintf(iters + o, sizeof(iters) - o, "%s", i < s->src.niters ? ", \"...\"]" : "]");
	pthread_mutex_unlock(&s->lock);
	return snprintf(
		buf, len,
		"{\n"
		"  \"role\": \"%s\",\n"
		"  \"status\": \"%s\",\n"
		"  \"error\": %s%s%s,\n"
		"  \"total-time\": %llu,\n"
		"  \"setup-time\": %llu,\n"
		"  \"downtime\": %llu,\n"
		"  \"expected-downtime\": %llu,\n"
		"  \"dirty-sync-count\": %llu,\n"
		"  \"dirty-tracker\": \"%s\",\n"
		"  \"cpu-throttle-percentage\": %d,\n"
		"  \"channel-recoveries\": %llu,\n"
		"  \"refused-connections\": %llu,\n"
		"  \"tls\": %s,\n"
		"  \"parameters\": {\"multifd-channels\": %u, \"multifd-compression\": \"%s\", "
		"\"level\": %d, \"zero-page-detection\": \"%s\", \"max-bandwidth\": %llu},\n"
		"  \"ram\": {\n"
		"    \"transferred\": %llu,\n"
		"    \"remaining\": %llu,\n"
		"    \"total\": %llu,\n"
		"    \"duplicate\": %llu,\n"
		"    \"normal\": %llu,\n"
		"    \"normal-bytes\": %llu,\n"
		"    \"payload-bytes\": %llu,\n"
		"    \"mbps\": %.1f,\n"
		"    \"pages-per-second\": %.0f,\n"
		"    \"dirty-pages-rate\": %.0f,\n"
		"    \"precopy-bytes\": %llu,\n"
		"    \"downtime-bytes\": %llu\n"
		"  },\n"
		"  \"cpu\": {\"source-seconds\": %.3f, \"destination-seconds\": %.3f, "
		"\"source-percent\": %.1f, \"destination-percent\": %.1f},\n"
		"  \"compression\": {\"ratio\": %.3f, \"engine\": \"%s\", \"fallback-engine\": \"%s\", "
		"\"hw-jobs\": %llu, \"sw-jobs\": %llu, \"busy-retries\": %llu, \"hw-errors\": %llu, "
		"\"raw-pages\": %llu,\n"
		"    \"auto\": {\"none\": %llu, \"lz4\": %llu, \"zstd\": %llu, \"zstd-hi\": %llu}},\n"
		"  \"zero-page\": {\"dsa-pages\": %llu, \"cpu-fallback-pages\": %llu},\n"
		"  \"verify\": {\"match\": %s},\n"
		"  \"device-state\": {\"bytes\": %llu, \"time-ms\": %llu},\n"
		"  \"switchover\": {\"final-pass-ms\": %llu, \"verify-ms\": %llu},\n"
		"  \"iterations\": %s\n"
		"}\n",
		s->role == LIVEMIG_SOURCE ? "source" : "destination", livemig_status_name(st.status),
		failed ? "\"" : "", failed ? err : "null", failed ? "\"" : "",
		(unsigned long long)st.total_time_ms, (unsigned long long)st.setup_time_ms,
		(unsigned long long)st.downtime_ms, (unsigned long long)st.expected_downtime_ms,
		(unsigned long long)st.dirty_sync_count, st.dirty_tracker,
		st.cpu_throttle_percentage, (unsigned long long)channel_recoveries(s, &st),
		(unsigned long long)atomic_load(&s->dst.refused), tls,
		st.channels, st.method, level,
		st.zero_page_detection, (unsigned long long)max_bw,
		(unsigned long long)st.transferred, (unsigned long long)st.remaining,
		(unsigned long long)st.total, (unsigned long long)st.duplicate,
		(unsigned long long)st.normal, (unsigned long long)st.normal_bytes,
		(unsigned long long)st.payload_bytes, st.mbps, st.pages_per_second,
		st.dirty_pages_rate, (unsigned long long)st.precopy_bytes,
		(unsigned long long)st.downtime_bytes,
		st.cpu_source_seconds, st.cpu_dest_seconds, src_pct, dst_pct, st.compression_ratio,
		st.engine, st.fallback_engine, (unsigned long long)st.hw_jobs,
		(unsigned long long)st.sw_jobs, (unsigned long long)st.busy_retries,
		(unsigned long long)st.hw_errors, (unsigned long long)st.raw_pages,
		(unsigned long long)st.auto_none, (unsigned long long)st.auto_lz4,
		(unsigned long long)st.auto_zstd, (unsigned long long)st.auto_zstd_hi,
		(unsigned long long)st.dsa_pages,
		(unsigned long long)st.dsa_cpu_pages, verify,
		(unsigned long long)st.device_state_bytes, (unsigned long long)st.device_state_ms,
		(unsigned long long)st.final_pass_ms, (unsigned long long)st.verify_ms, iters);
}
