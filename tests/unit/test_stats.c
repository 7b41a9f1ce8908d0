/* SPDX-License-Identifier: MIT */
/*
 * Versioned statistics: livemig_query_sized() fills exactly the caller's
 * size -- an older, smaller struct gets its prefix and nothing past it is
 * written; a newer, larger one gets zeros past this library's fields --
 * and livemig_query(), macro and 0.1.0 symbol, fill the whole struct.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <json-c/json.h>

#include "livemig/livemig.h"
#include "t.h"

/* What a caller built against an older header had as struct livemig_stats
 * (its livemig_query() macro passes this size): a prefix of today's. */
struct old_stats {
	enum livemig_status status;
	uint64_t total_time_ms;
	uint64_t setup_time_ms;
	uint64_t downtime_ms;
	uint64_t expected_downtime_ms;
	uint64_t transferred;
};
_Static_assert(offsetof(struct old_stats, transferred) ==
		       offsetof(struct livemig_stats, transferred),
	       "old_stats is a prefix of struct livemig_stats");

static int all(const void *p, size_t from, size_t to, unsigned char v)
{
	for (size_t i = from; i < to; i++)
		if (((const unsigned char *)p)[i] != v)
			return 0;
	return 1;
}

/* The JSON of a session never started: json-c parses it; snprintf's
 * contract; a side that never ran has no CPU figure (null, not 0). */
static void check_json(livemig_session *s)
{
	char buf[16384], small[16];
	int n = livemig_stats_json(s, buf, sizeof(buf));
	CHECK(n > 0 && (size_t)n < sizeof(buf));
	CHECK(livemig_stats_json(s, small, sizeof(small)) == n && strlen(small) == sizeof(small) - 1);
	json_object *js = json_tokener_parse(buf), *v, *o;
	CHECK(js != NULL);
	CHECK(json_object_object_get_ex(js, "error", &v) && v == NULL);
	CHECK(json_object_object_get_ex(js, "cpu", &o) &&
	      json_object_object_get_ex(o, "source-seconds", &v) && v == NULL &&
	      json_object_object_get_ex(o, "destination-percent", &v) && v == NULL);
	CHECK(json_object_object_get_ex(js, "parameters", &o) &&
	      json_object_object_get_ex(o, "multifd-channels", &v) && json_object_get_int(v) == 3);
	CHECK(json_object_object_get_ex(js, "verify", &o) &&
	      json_object_object_get_ex(o, "match", &v) && v == NULL);
	CHECK(json_object_object_get_ex(js, "iterations", &v) &&
	      json_object_is_type(v, json_type_array));
	json_object_put(js);
}

int main(void)
{
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	struct livemig_stats want, got;
	unsigned char buf[sizeof(struct livemig_stats) + 64];

	CHECK(s && livemig_set_parameter(s, "multifd-channels", "3") == 0);
	if (!s)
		return 1;
	CHECK(livemig_query(s, &want) == 0);
	CHECK(want.status == LIVEMIG_STATUS_NONE && want.channels == 3 && want.verify_match == -1);
	CHECK(want.cpu_source_seconds < 0 && want.cpu_dest_seconds < 0);
	check_json(s);

	/* An older struct, on a buffer that shows any byte written past it. */
	memset(buf, 0xa5, sizeof(buf));
	CHECK(livemig_query_sized(s, (struct livemig_stats *)buf, sizeof(struct old_stats)) == 0);
	CHECK(!memcmp(buf, &want, sizeof(struct old_stats)));
	CHECK(all(buf, sizeof(struct old_stats), sizeof(buf), 0xa5));

	/* Every size, down to nothing at all: exactly size bytes. */
	for (size_t n = 0; n <= sizeof(want); n += 4) {
		memset(buf, 0xa5, sizeof(buf));
		CHECK(livemig_query_sized(s, (struct livemig_stats *)buf, n) == 0);
		CHECKF(!memcmp(buf, &want, n) && all(buf, n, sizeof(buf), 0xa5), "size %zu", n);
	}

	/* A newer, larger struct: ours, then zeros. */
	memset(buf, 0xa5, sizeof(buf));
	CHECK(livemig_query_sized(s, (struct livemig_stats *)buf, sizeof(buf)) == 0);
	CHECK(!memcmp(buf, &want, sizeof(want)) && all(buf, sizeof(want), sizeof(buf), 0));

	/* The 0.1.0 symbol (not the macro) fills the whole 0.1.0 struct (up
	 * to dsa_cpu_pages) and nothing after it. */
	size_t v01 = offsetof(struct livemig_stats, dsa_cpu_pages) + sizeof(uint64_t);
	memset(&got, 0xa5, sizeof(got));
	CHECK((livemig_query)(s, &got) == 0 && !memcmp(&got, &want, v01) &&
	      all((unsigned char *)&got, v01, sizeof(got), 0xa5));

	CHECK(livemig_query_sized(NULL, &got, sizeof(got)) == -EINVAL);
	CHECK(livemig_query_sized(s, NULL, sizeof(got)) == -EINVAL);
	livemig_session_free(s);
	T_DONE();
}
