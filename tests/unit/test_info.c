/* SPDX-License-Identifier: MIT */
/*
 * livemig_info_json: snprintf's contract (length needed, truncation with a
 * NUL, NULL/0 to size), valid JSON, and every registry listed in full --
 * each codec, each engine but the test-only one, each dirty tracker
 * (external included, not for auto).
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "accel/engine.h"
#include "codec/codec.h"
#include "dirty/tracker.h"
#include "zeropage/zeropage.h"
#include "livemig/livemig.h"
#include "t.h"

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	CHECKF(json_object_object_get_ex(o, key, &v), "no \"%s\"", key);
	return v;
}

/* The entry of arr whose "name" is name (and "method" is method, if given). */
static json_object *find(json_object *arr, const char *name, const char *method)
{
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i), *v;

		if (json_object_object_get_ex(e, "name", &v) &&
		    !strcmp(json_object_get_string(v), name) &&
		    (!method || (json_object_object_get_ex(e, "method", &v) &&
				 !strcmp(json_object_get_string(v), method))))
			return e;
	}
	return NULL;
}

int main(void)
{
	int n = livemig_info_json(NULL, 0);
	char small[8];

	CHECK(n > 100);
	if (n <= 0)
		return 1;
	char *buf = malloc((size_t)n + 1);
	if (!buf)
		return 77;
	CHECK(livemig_info_json(buf, (size_t)n + 1) == n && strlen(buf) == (size_t)n);
	CHECK(buf[n - 1] == '\n');
	memset(small, 'x', sizeof(small));
	CHECK(livemig_info_json(small, sizeof(small)) == n && small[7] == 0 &&
	      !strncmp(small, buf, 7));

	json_object *in = json_tokener_parse(buf);
	CHECK(in && json_object_is_type(in, json_type_object));
	CHECK(!strcmp(json_object_get_string(get(in, "version")), LIVEMIG_VERSION_STRING));
	CHECK(json_object_get_boolean(get(get(in, "crc32c"), "self_check")));
	get(in, "cpu");

	size_t count;
	const struct lm_codec_ops *const *c = lm_codec_table(&count);
	json_object *methods = get(in, "methods");
	CHECK(json_object_array_length(methods) == count); /* auto is a codec too */
	for (size_t i = 0; i < count; i++) {
		json_object *m = find(methods, c[i]->name, NULL);
		CHECKF(m && json_object_get_int(get(m, "max_level")) == c[i]->max_level, "%s",
		       c[i]->name);
	}
	CHECK(find(methods, "auto", NULL));

	const struct lm_engine_ops *const *e = lm_engine_table(&count);
	json_object *engines = get(in, "engines");
	size_t listed = 0;
	for (size_t i = 0; i < count; i++) {
		if (e[i]->method == LM_ENGINE_ANY_METHOD) {
			CHECK(!find(engines, e[i]->name, NULL));
			continue;
		}
		listed++;
		json_object *j = find(engines, e[i]->name,
				      lm_codec_by_method(e[i]->method)->name);
		CHECKF(j && json_object_get_boolean(get(j, "built")) == !e[i]->absent, "%s",
		       e[i]->name);
	}
	CHECK(json_object_array_length(engines) == listed);

	const struct lm_zeropage_ops *const *z = lm_zeropage_table(&count);
	json_object *zero = get(in, "zero_page_engines");
	CHECK(json_object_array_length(zero) == count);
	for (size_t i = 0; i < count; i++)
		CHECKF(find(zero, z[i]->name, NULL), "%s", z[i]->name);
	CHECK(json_object_get_boolean(get(find(zero, "multifd", NULL), "usable")));

	const struct lm_tracker_ops *const *t = lm_tracker_table(&count);
	json_object *trackers = get(in, "dirty_trackers");
	CHECK(json_object_array_length(trackers) == count);
	for (size_t i = 0; i < count; i++) {
		json_object *j = json_object_array_get_idx(trackers, i);
		CHECKF(!strcmp(json_object_get_string(get(j, "name")), t[i]->name) &&
		       json_object_get_boolean(get(j, "auto")) == !t[i]->needs_log,
		       "%s", t[i]->name);
	}
	json_object *ext = find(trackers, "external", NULL);
	CHECK(ext && json_object_get_boolean(get(ext, "usable")) &&
	      !json_object_get_boolean(get(ext, "auto")));

	json_object *params = get(in, "parameters");
	unsigned np = 0;
	while (livemig_param_get(np))
		np++;
	CHECK(json_object_array_length(params) == np);
	for (unsigned i = 0; i < np; i++)
		CHECKF(find(params, livemig_param_get(i)->name, NULL), "%s",
		       livemig_param_get(i)->name);

	json_object *tls = get(in, "tls");
	CHECK(!strncmp(json_object_get_string(get(tls, "version")), "3.", 2));
	CHECK(json_object_array_length(get(tls, "credentials")) == 2);
	CHECK(strstr(json_object_get_string(get(tls, "records")),
		     json_object_get_boolean(get(tls, "kernel_tls")) ? "kernel" : "userspace"));

	json_object_put(in);
	free(buf);
	T_DONE();
}
