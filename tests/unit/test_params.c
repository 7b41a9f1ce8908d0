/* SPDX-License-Identifier: MIT */
/*
 * The parameter table (src/core/params.c): each entry parses its default
 * and refuses bad values with its own message, side checks, aliases,
 * set_mask, the destination's must-match check, and the public listing.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "core/internal.h"
#include "t.h"

static char err[256];

/* A role the entry applies to. */
static enum livemig_role role_of(const struct livemig_param_info *pi)
{
	return pi->source ? LIVEMIG_SOURCE : LIVEMIG_DEST;
}

static int set(struct lm_params *p, const struct livemig_param_info *pi, const char *v)
{
	err[0] = 0;
	if (pi->capability)
		return lm_params_cap(p, role_of(pi), pi->name, !strcmp(v, "on"), err, sizeof(err));
	return lm_params_set(p, role_of(pi), pi->name, v, err, sizeof(err));
}

static const char *get(const struct lm_params *p, const char *name)
{
	static char buf[256];
	CHECK(lm_params_get(p, name, buf, sizeof(buf)) >= 0);
	return buf;
}

/* p and q are equal apart from set_mask. */
static bool same(const struct lm_params *p, const struct lm_params *q)
{
	struct lm_params a = *p, b = *q;
	a.set_mask = b.set_mask = 0;
	return !memcmp(&a, &b, sizeof(a));
}

static void table(void)
{
	const struct livemig_param_info *pi, *pj;
	unsigned n = 0;
	for (unsigned i = 0; (pi = livemig_param_get(i)); i++, n++) {
		CHECKF(pi->name && *pi->name && pi->help && *pi->help, "entry %u", i);
		CHECKF(pi->values && *pi->values && pi->unit && pi->type, "%s", pi->name);
		CHECKF(pi->source || pi->destination, "%s applies nowhere", pi->name);
		CHECKF(!pi->capability || !strcmp(pi->type, "bool"), "%s", pi->name);
		CHECKF(!pi->must_match || (pi->source && pi->destination), "%s", pi->name);
		CHECKF(pi->hidden == !strncmp(pi->name, "x-", 2), "%s", pi->name);
		CHECK(livemig_param_find(pi->name) == pi);
		for (unsigned j = 0; (pj = livemig_param_get(j)); j++) {
			if (j == i)
				continue;
			CHECKF(strcmp(pi->name, pj->name), "%s twice", pi->name);
			CHECKF(!pj->alias || strcmp(pi->name, pj->alias), "%s twice", pi->name);
			CHECKF(!pi->alias || !pj->alias || strcmp(pi->alias, pj->alias),
			       "%s twice", pi->alias);
		}
	}
	CHECK(n == LM_P_COUNT && !livemig_param_get(LM_P_COUNT));
	CHECK(!livemig_param_find("no-such-thing") && !livemig_param_find(NULL));
	/* The ids index the table. */
	CHECK(!strcmp(livemig_param_get(LM_P_CHANNELS)->name, "multifd-channels"));
	CHECK(!strcmp(livemig_param_get(LM_P_MAX_BW)->name, "max-bandwidth"));
	CHECK(!strcmp(livemig_param_get(LM_P_CAP_AUTO_CONVERGE)->name, "auto-converge"));
	/* What a later control socket may change. */
	static const char *const changeable[] = {
		"max-bandwidth", "downtime-limit", "avail-switchover-bandwidth",
		"throttle-trigger-threshold", "cpu-throttle-initial", "cpu-throttle-increment",
		"max-cpu-throttle"};
	unsigned nch = 0;
	for (unsigned i = 0; (pi = livemig_param_get(i)); i++)
		nch += pi->changeable;
	CHECK(nch == sizeof(changeable) / sizeof(changeable[0]));
	for (size_t i = 0; i < sizeof(changeable) / sizeof(changeable[0]); i++)
		CHECKF(livemig_param_find(changeable[i])->changeable, "%s", changeable[i]);
}

/* Enum values come from the registries; level ranges agree with the codecs'. */
static void registries(void)
{
	size_t n;
	const struct lm_codec_ops *const *c = lm_codec_table(&n);
	const char *v = livemig_param_find("multifd-compression")->values;
	for (size_t i = 0; i < n; i++)
		CHECKF(strstr(v, c[i]->name), "%s lacks %s", v, c[i]->name);
	/* auto once, whether or not it is a registered codec. */
	char list[256], *save = NULL;
	int autos = 0;
	snprintf(list, sizeof(list), "%s", v);
	for (char *w = strtok_r(list, "|", &save); w; w = strtok_r(NULL, "|", &save))
		autos += !strcmp(w, "auto");
	CHECK(autos == 1);
	const struct lm_tracker_ops *const *t = lm_tracker_table(&n);
	v = livemig_param_find("dirty-tracker")->values;
	CHECK(!strncmp(v, "auto|", 5));
	for (size_t i = 0; i < n; i++) /* external only with livemig_set_dirty_log() */
		CHECKF(!strstr(v, t[i]->name) == t[i]->needs_log, "%s and %s", v, t[i]->name);
	static const char *const levels[][2] = {{"multifd-zlib-level", "zlib"},
						{"multifd-zstd-level", "zstd"},
						{"multifd-qatzip-level", "qatzip"}};
	for (size_t i = 0; i < 3; i++) {
		const struct lm_codec_ops *codec = lm_codec_by_name(levels[i][1]);
		char range[32];
		snprintf(range, sizeof(range), "%d..%d", codec->min_level, codec->max_level);
		CHECKF(!strcmp(livemig_param_find(levels[i][0])->values, range), "%s: %s",
		       levels[i][0], livemig_param_find(levels[i][0])->values);
	}
}

static void defaults(void)
{
	struct lm_params d, q;
	lm_params_default(&d);
	/* As before the table. */
	CHECK(d.channels == 2 && d.method == LM_METHOD_NONE && d.zlib_level == 1 &&
	      d.zstd_level == 1 && d.qatzip_level == 1 && d.zero_detect && !strcmp(d.zero_engine, "multifd") &&
	      !strcmp(d.dsa_path, "/dev/dsa/wq0.0") && !d.engine[0] && d.accel_retries == 3 &&
	      !d.accel_verify && !d.max_bandwidth && d.downtime_limit_ms == 300 &&
	      !d.switchover_bw && !d.auto_converge && !strcmp(d.tracker, "auto") &&
	      d.throttle_threshold == 50 && d.throttle_initial == 20 &&
	      d.throttle_increment == 10 && d.throttle_max == 99 && !d.timeout_s &&
	      !d.x_no_barrier && !d.x_delay_channel && !d.x_fault[0] && !d.x_auto[0] &&
	      !d.set_mask);
	const struct livemig_param_info *pi;
	for (unsigned i = 0; (pi = livemig_param_get(i)); i++) {
		if (!pi->default_value)
			continue;
		q = d;
		CHECKF(set(&q, pi, pi->default_value) == 0, "%s=%s: %s", pi->name,
		       pi->default_value, err);
		CHECKF(same(&q, &d), "%s: its default is not the default", pi->name);
		CHECKF(!strcmp(get(&d, pi->name), pi->default_value), "%s: %s", pi->name,
		       get(&d, pi->name));
	}
}

/* Sets name=v on a default struct: its message on failure, and no other
 * entry's value may change. */
static int try(const struct livemig_param_info *pi, const char *v, struct lm_params *out)
{
	struct lm_params d;
	lm_params_default(&d);
	*out = d;
	int r = set(out, pi, v);
	const struct livemig_param_info *pj;
	for (unsigned j = 0; (pj = livemig_param_get(j)); j++) {
		char a[256];
		snprintf(a, sizeof(a), "%s", get(&d, pj->name));
		CHECKF(pj == pi || !strcmp(a, get(out, pj->name)), "%s=%s changed %s", pi->name,
		       v, pj->name);
	}
	if (r) {
		CHECKF(!memcmp(out, &d, sizeof(d)), "%s=%s failed but changed something", pi->name,
		       v);
		CHECKF(strstr(err, pi->name), "%s=%s: message '%s'", pi->name, v, err);
	} else {
		CHECKF(out->set_mask == 1ull << (pi - livemig_param_get(0)), "%s: set_mask %#llx",
		       pi->name, (unsigned long long)out->set_mask);
	}
	return r;
}

static void bad(const struct livemig_param_info *pi, const char *v, const char *msg)
{
	struct lm_params q;
	CHECKF(try(pi, v, &q) == -EINVAL && strstr(err, msg), "%s=%s: '%s' (want '%s')",
	       pi->name, v, err, msg);
}

static void good(const struct livemig_param_info *pi, const char *v, const char *shown)
{
	struct lm_params q;
	CHECKF(try(pi, v, &q) == 0, "%s=%s: %s", pi->name, v, err);
	CHECKF(!strcmp(get(&q, pi->name), shown), "%s=%s reads back as %s", pi->name, v,
	       get(&q, pi->name));
}

/* Every entry, by its type. */
static void values(void)
{
	const struct livemig_param_info *pi;
	for (unsigned i = 0; (pi = livemig_param_get(i)); i++) {
		char lo[32], hi[32], below[32], above[40];
		uint64_t min, max;
		if (!strcmp(pi->type, "uint")) {
			CHECK(sscanf(pi->values, "%" SCNu64 "..%" SCNu64, &min, &max) == 2);
			snprintf(lo, sizeof(lo), "%" PRIu64, min);
			snprintf(hi, sizeof(hi), "%" PRIu64, max);
			snprintf(below, sizeof(below), "%" PRIu64, min - 1);
			snprintf(above, sizeof(above), "%" PRIu64, max + 1);
			good(pi, lo, lo);
			good(pi, hi, hi);
			if (min)
				bad(pi, below, "is not a whole number in range");
			bad(pi, above, pi->values);
			bad(pi, "", "is not a whole number in range");
			bad(pi, "x", "is not a whole number in range");
			bad(pi, "-1", "is not a whole number in range");
			bad(pi, "+2", "is not a whole number in range");
			bad(pi, "2x", "is not a whole number in range");
			/* Whole: no space, no other base, no wrap past 2^64. */
			bad(pi, " 2", "is not a whole number in range");
			bad(pi, "2 ", "is not a whole number in range");
			bad(pi, "0x2", "is not a whole number in range");
			bad(pi, "-0", "is not a whole number in range");
			bad(pi, "18446744073709551617", "is not a whole number in range");
			bad(pi, "99999999999999999999999", "is not a whole number in range");
			snprintf(above, sizeof(above), "0%s", hi);
			good(pi, above, hi); /* leading zeros are still the number */
			if (*pi->unit)
				bad(pi, "x", pi->unit);
		} else if (!strcmp(pi->type, "size")) {
			good(pi, "0", "0");
			good(pi, "125M", "131072000");
			bad(pi, "fast", "is not a size in bytes");
			bad(pi, "", "is not a size in bytes");
			bad(pi, "-1", "is not a size in bytes");
			bad(pi, "10x", "is not a size in bytes");
			bad(pi, " 1G", "is not a size in bytes");
			bad(pi, "1G ", "is not a size in bytes");
			bad(pi, "18446744073709551616", "is not a size in bytes");
			bad(pi, "16777216T", "is not a size in bytes");
		} else if (!strcmp(pi->type, "bool")) {
			good(pi, "on", "on");
			if (strcmp(pi->values, "on"))
				good(pi, "off", "off");
			if (!pi->capability) /* lm_params_cap takes a bool */
				bad(pi, "maybe", "is not on|off");
		} else if (!strcmp(pi->type, "enum")) {
			char list[256], *save = NULL;
			snprintf(list, sizeof(list), "%s", pi->values);
			for (char *w = strtok_r(list, "|", &save); w; w = strtok_r(NULL, "|", &save))
				good(pi, w, w);
			bad(pi, "bogus", "unknown");
			bad(pi, "bogus", pi->values);
			bad(pi, "", pi->values);
		} else {
			CHECKF(!strcmp(pi->type, "string"), "%s: type %s", pi->name, pi->type);
			bad(pi, "", "expected");
		}
	}
}

/* Messages the integration tests and users rely on, and the test hooks. */
static void messages(void)
{
	struct lm_params p;
	lm_params_default(&p);
	CHECK(lm_params_set(&p, LIVEMIG_SOURCE, "multifd-compression", "lzma", err,
			    sizeof(err)) == -EINVAL && strstr(err, "unknown method 'lzma'"));
	CHECK(lm_params_set(&p, LIVEMIG_SOURCE, "no-such-thing", "1", err, sizeof(err)) ==
		      -ENOENT && strstr(err, "unknown parameter 'no-such-thing'"));
	CHECK(lm_params_cap(&p, LIVEMIG_SOURCE, "teleport", true, err, sizeof(err)) == -ENOENT &&
	      strstr(err, "unknown capability 'teleport'"));
	CHECK(lm_params_set(&p, LIVEMIG_SOURCE, "multifd-channels", NULL, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(lm_params_set(&p, LIVEMIG_SOURCE, "multifd-channels", "256", err, sizeof(err)) ==
		      -EINVAL && strstr(err, "(1..255)"));
	CHECK(lm_params_set(&p, LIVEMIG_SOURCE, "downtime-limit", "0", err, sizeof(err)) ==
		      -EINVAL && strstr(err, "(1..2000000 ms)"));
	/* Capabilities and parameters are separate name spaces. */
	CHECK(lm_params_set(&p, LIVEMIG_SOURCE, "auto-converge", "on", err, sizeof(err)) ==
	      -ENOENT);
	CHECK(lm_params_cap(&p, LIVEMIG_SOURCE, "max-bandwidth", true, err, sizeof(err)) ==
	      -ENOENT);
	CHECK(lm_params_cap(&p, LIVEMIG_SOURCE, "multifd", false, err, sizeof(err)) == -EINVAL &&
	      strstr(err, "capability multifd cannot be turned off"));
	CHECK(lm_params_cap(&p, LIVEMIG_SOURCE, "auto-converge", true, err, sizeof(err)) == 0 &&
	      p.auto_converge && p.set_mask == 1ull << LM_P_CAP_AUTO_CONVERGE);

	const struct livemig_param_info *pi;
	struct lm_params q;
	good(livemig_param_find("zero-page-detection"), "dsa", "dsa");
	try(livemig_param_find("zero-page-detection"), "none", &q);
	CHECK(!q.zero_detect && !strcmp(q.zero_engine, "none"));
	try(livemig_param_find("multifd-compression"), "auto", &q);
	CHECK(q.method == LM_METHOD_AUTO);
	pi = livemig_param_find("x-delay-channel");
	good(pi, "1:8", "1:8");
	bad(pi, "0:8", "expected CHANNEL:MS");
	bad(pi, "1:10001", "expected CHANNEL:MS");
	bad(pi, "1:8x", "expected CHANNEL:MS");
	/* Each number whole and in range, nothing around them. */
	static const char *const delays[] = {
		"-1:8", "4294967297:8", "256:8", " 1:8", "1: 8", "+1:8", "1:+8", "1:-0", "1:",
		":8", "1", "1:8:9", "1::8", "1:8 ", "0x1:8",
	};
	for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++)
		bad(pi, delays[i], "expected CHANNEL:MS");
	good(pi, "255:0", "255:0");
	pi = livemig_param_find("x-auto-speeds");
	good(pi, "20G,600M,350M", "21474836480,629145600,367001600,0");
	good(pi, "1,2,3,4", "1,2,3,4");
	bad(pi, "1,2", "expected LINK,LZ4,ZSTD");
	bad(pi, "1,x,3", "expected LINK,LZ4,ZSTD");
	/* Three or four fields exactly: none empty, none extra, none cut. */
	static const char *const speeds[] = {
		"1,2,3,4,5", "1,,2,3", ",1,2,3", "1,2,3,", "1,2,3,4,", "", ",", "1,2,-3", "1,2,3 ",
	};
	for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++)
		bad(pi, speeds[i], "expected LINK,LZ4,ZSTD");
	char longer[200];
	snprintf(longer, sizeof(longer), "1,2,3,%0150d", 4); /* once cut at 128 bytes: 0 */
	bad(pi, longer, "expected LINK,LZ4,ZSTD");
	pi = livemig_param_find("x-fault-engine");
	good(pi, "busy=0.4,error=0.05,seed=3", "busy=0.4,error=0.05,seed=3");
	bad(pi, "busy=2", "expected busy=P");
	static const char *const faults[] = {
		"busy=nan", "busy=NAN", "busy=inf", "busy= 0.5", "busy=-0", "busy=+0.5", "busy=5e-1",
		"busy=0x0.8", "busy=", "busy=0.5.1", "seed=-1", "seed=", "seed=1x", "seed= 1",
		"seed=18446744073709551616", "busy=0.5,,seed=1", "busy=0.5,", ",busy=0.5", "busy",
	};
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		bad(pi, faults[i], "expected busy=P");
	good(pi, "busy=.5,seed=18446744073709551615", "busy=.5,seed=18446744073709551615");
	pi = livemig_param_find("dsa-path");
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	bad(pi, longpath, "expected a work queue path");
	good(pi, "x-model", "x-model");
	pi = livemig_param_find("compression-engine");
	good(pi, "isal", "isal");
	bad(pi, "a-name-longer-than-16", "expected an engine name");
}

static void aliases(void)
{
	struct lm_params p;
	const struct livemig_param_info *pi = livemig_param_find("dsa-path");
	CHECK(pi && pi->alias && !strcmp(pi->alias, "accel-path"));
	CHECK(livemig_param_find("accel-path") == pi);
	lm_params_default(&p);
	CHECK(lm_params_set(&p, LIVEMIG_SOURCE, "accel-path", "/dev/dsa/wq1.0", err,
			    sizeof(err)) == 0);
	CHECK(!strcmp(p.dsa_path, "/dev/dsa/wq1.0") && p.set_mask == 1ull << LM_P_DSA_PATH);
	/* Its messages use the name the user gave. */
	CHECK(lm_params_set(&p, LIVEMIG_SOURCE, "accel-path", "", err, sizeof(err)) == -EINVAL &&
	      !strncmp(err, "accel-path: ", 12));
	CHECK(lm_params_set(&p, LIVEMIG_DEST, "accel-path", "x", err, sizeof(err)) == -EINVAL &&
	      !strcmp(err, "accel-path applies to the source only"));
}

static void sides(void)
{
	const struct livemig_param_info *pi;
	for (unsigned i = 0; (pi = livemig_param_get(i)); i++) {
		for (int role = LIVEMIG_SOURCE; role <= LIVEMIG_DEST; role++) {
			bool ok = role == LIVEMIG_SOURCE ? pi->source : pi->destination;
			const char *v = pi->default_value ? pi->default_value
					: !strcmp(pi->name, "x-delay-channel") ? "1:1"
					: !strcmp(pi->name, "x-auto-speeds") ? "1,2,3"
					: !strcmp(pi->name, "x-fault-engine") ? "seed=1"
									       : "isal";
			struct lm_params p, d;
			lm_params_default(&d);
			p = d;
			int r = pi->capability
					? lm_params_cap(&p, role, pi->name, !strcmp(v, "on"), err,
							sizeof(err))
					: lm_params_set(&p, role, pi->name, v, err, sizeof(err));
			if (ok) {
				CHECKF(r == 0, "%s=%s on %d: %s", pi->name, v, role, err);
				continue;
			}
			char want[128];
			snprintf(want, sizeof(want), "%s applies to the %s only", pi->name,
				 role == LIVEMIG_DEST ? "source" : "destination");
			CHECKF(r == -EINVAL && !strcmp(err, want), "%s on %d: %d '%s'", pi->name,
			       role, r, err);
			CHECK(!memcmp(&p, &d, sizeof(p)));
		}
	}
	struct lm_params p;
	lm_params_default(&p);
	CHECK(lm_params_set(&p, LIVEMIG_DEST, "max-bandwidth", "1G", err, sizeof(err)) ==
		      -EINVAL && !strcmp(err, "max-bandwidth applies to the source only"));
	CHECK(lm_params_set(&p, LIVEMIG_SOURCE, "x-delay-channel", "1:5", err, sizeof(err)) ==
		      -EINVAL && !strcmp(err, "x-delay-channel applies to the destination only"));
	CHECK(lm_params_cap(&p, LIVEMIG_DEST, "auto-converge", true, err, sizeof(err)) == -EINVAL);
	CHECK(lm_params_cap(&p, LIVEMIG_DEST, "multifd", true, err, sizeof(err)) == 0);
}

/* What the source announced (as take_params builds it). */
static struct lm_params announced(uint32_t channels, uint8_t method, int level, bool zero)
{
	struct lm_params s;
	lm_params_default(&s);
	s.channels = channels;
	s.method = method;
	s.zero_detect = zero;
	lm_method_set_level(&s, method, level);
	return s;
}

static struct lm_params dest_with(const char *name, const char *value)
{
	struct lm_params p;
	lm_params_default(&p);
	CHECKF(lm_params_set(&p, LIVEMIG_DEST, name, value, err, sizeof(err)) == 0, "%s", err);
	return p;
}

/* A destination set to name=value, and a source announcing otherwise. */
static const struct {
	const char *name, *value;
	uint32_t channels;
	uint8_t method;
	int level;
	bool zero;
	const char *want;
} mismatches[] = {
	{"multifd-channels", "3", 4, LM_METHOD_NONE, 0, true,
	 "source uses 4 channels, destination was set to 3"},
	{"multifd-compression", "zstd", 2, LM_METHOD_ZLIB, 1, true,
	 "source compresses with zlib, destination was set to zstd"},
	{"multifd-compression", "none", 2, LM_METHOD_AUTO, 1, true,
	 "source compresses with auto, destination was set to none"},
	{"zero-page-detection", "none", 2, LM_METHOD_NONE, 0, true,
	 "source uses zero-page-detection=multifd, destination was set to none"},
	{"zero-page-detection", "multifd", 2, LM_METHOD_NONE, 0, false,
	 "source uses zero-page-detection=none, destination was set to multifd"},
	{"multifd-zlib-level", "5", 2, LM_METHOD_ZLIB, 1, true,
	 "source uses zlib level 1, destination was set to 5"},
	{"multifd-zstd-level", "3", 2, LM_METHOD_ZSTD, 1, true,
	 "source uses zstd level 1, destination was set to 3"},
	{"multifd-zstd-level", "3", 2, LM_METHOD_AUTO, 7, true,
	 "source uses auto level 7, destination was set to 3"},
	{"multifd-qatzip-level", "2", 2, LM_METHOD_QATZIP, 4, true,
	 "source uses qatzip level 4, destination was set to 2"},
};

static void must_match(void)
{
	for (size_t i = 0; i < sizeof(mismatches) / sizeof(mismatches[0]); i++) {
		const char *name = mismatches[i].name, *value = mismatches[i].value;
		struct lm_params src = announced(mismatches[i].channels, mismatches[i].method,
						 mismatches[i].level, mismatches[i].zero);
		struct lm_params p = dest_with(name, value), before = p;
		int r = lm_params_match_source(&p, &src, err, sizeof(err));
		CHECKF(r == -EINVAL && !strcmp(err, mismatches[i].want), "%s=%s: %d '%s'", name,
		       value, r, err);
		CHECK(!memcmp(&p, &before, sizeof(p)));
	}

	/* A level only matters to its method; the others are left alone. */
	struct lm_params src = announced(2, LM_METHOD_ZSTD, 3, true);
	struct lm_params p = dest_with("multifd-zlib-level", "5");
	CHECK(lm_params_match_source(&p, &src, err, sizeof(err)) == 0);
	CHECK(p.zlib_level == 5 && p.zstd_level == 3 && p.method == LM_METHOD_ZSTD);
	/* Set and equal: fine.  Source-only settings are never compared. */
	p = dest_with("multifd-zstd-level", "3");
	CHECK(lm_params_match_source(&p, &src, err, sizeof(err)) == 0);
	src.max_bandwidth = 1000;
	src.downtime_limit_ms = 5;
	p = dest_with("multifd-compression", "zstd");
	CHECK(lm_params_match_source(&p, &src, err, sizeof(err)) == 0);
	CHECK(!p.max_bandwidth && p.downtime_limit_ms == 300);
	/* Unset ones follow the source. */
	src = announced(4, LM_METHOD_QATZIP, 6, false);
	lm_params_default(&p);
	CHECK(lm_params_match_source(&p, &src, err, sizeof(err)) == 0);
	CHECK(p.channels == 4 && p.method == LM_METHOD_QATZIP && p.qatzip_level == 6 &&
	      !p.zero_detect && lm_params_level(&p) == 6 && !p.set_mask);
	/* A destination set to dsa detects zero pages, as multifd does. */
	p = dest_with("zero-page-detection", "dsa");
	src = announced(2, LM_METHOD_NONE, 0, true);
	CHECK(lm_params_match_source(&p, &src, err, sizeof(err)) == 0);
	/* channel-recovery follows the source's PARAMS; one set must match. */
	src.channel_recovery = true;
	lm_params_default(&p);
	CHECK(!p.channel_recovery);
	CHECK(lm_params_match_source(&p, &src, err, sizeof(err)) == 0 && p.channel_recovery);
	lm_params_default(&p);
	CHECK(lm_params_cap(&p, LIVEMIG_DEST, "channel-recovery", false, err, sizeof(err)) == 0);
	CHECK(lm_params_match_source(&p, &src, err, sizeof(err)) == -EINVAL &&
	      !strcmp(err, "source has channel-recovery on, destination was set to off"));
	CHECK(lm_params_cap(&p, LIVEMIG_DEST, "channel-recovery", true, err, sizeof(err)) == 0);
	CHECK(lm_params_match_source(&p, &src, err, sizeof(err)) == 0 && p.channel_recovery);
}

static void levels(void)
{
	struct lm_params p;
	lm_params_default(&p);
	p.zlib_level = 4;
	p.zstd_level = 7;
	p.qatzip_level = 2;
	CHECK(lm_method_level(&p, LM_METHOD_NONE) == 0);
	CHECK(lm_method_level(&p, LM_METHOD_ZLIB) == 4);
	CHECK(lm_method_level(&p, LM_METHOD_ZSTD) == 7);
	CHECK(lm_method_level(&p, LM_METHOD_AUTO) == 7);
	CHECK(lm_method_level(&p, LM_METHOD_QATZIP) == 2);
	CHECK(lm_method_level(&p, LM_METHOD_LZ4) == 1);
	CHECK(lm_method_level(&p, LM_METHOD_QPL) == 1);
	CHECK(lm_method_level(&p, LM_METHOD_UADK) == 1);
	struct lm_params q = p;
	lm_method_set_level(&q, LM_METHOD_LZ4, 9);
	lm_method_set_level(&q, LM_METHOD_NONE, 9);
	CHECK(!memcmp(&p, &q, sizeof(p)));
	lm_method_set_level(&q, LM_METHOD_AUTO, 9);
	CHECK(q.zstd_level == 9);
	p.method = LM_METHOD_ZLIB;
	CHECK(lm_params_level(&p) == 4);
	CHECK(!strcmp(lm_method_name(LM_METHOD_AUTO), "auto") &&
	      !strcmp(lm_method_name(LM_METHOD_ZSTD), "zstd") &&
	      !strcmp(lm_method_name(200), "unknown"));
}

/* lm_params_set_running: the changeable ones only, each with its checks,
 * and only its own field. */
static void running(void)
{
	struct lm_params p, before;
	lm_params_default(&p);
	memcpy(&before, &p, sizeof(p)); /* padding too: memcmp below */
	CHECK(lm_params_set_running(&p, LIVEMIG_SOURCE, "multifd-channels", "4", err,
				    sizeof(err)) == -EBUSY);
	CHECKF(!strcmp(err, "multifd-channels cannot change while a migration runs (these can: "
		       "max-bandwidth, downtime-limit, avail-switchover-bandwidth, "
		       "throttle-trigger-threshold, cpu-throttle-initial, cpu-throttle-increment, "
		       "max-cpu-throttle)"), "%s", err);
	CHECK(lm_params_set_running(&p, LIVEMIG_DEST, "multifd-channels", "4", err,
				    sizeof(err)) == -EBUSY);
	CHECKF(strstr(err, "(none can on this side)"), "%s", err);
	CHECK(lm_params_set_running(&p, LIVEMIG_SOURCE, "nope", "4", err, sizeof(err)) == -ENOENT);
	CHECK(lm_params_set_running(&p, LIVEMIG_DEST, "max-bandwidth", "4", err,
				    sizeof(err)) == -EINVAL);
	CHECK(lm_params_set_running(&p, LIVEMIG_SOURCE, "downtime-limit", "0", err,
				    sizeof(err)) == -EINVAL);
	CHECK(!memcmp(&p, &before, sizeof(p)));
	CHECK(lm_params_set_running(&p, LIVEMIG_SOURCE, "max-bandwidth", "1M", err,
				    sizeof(err)) == 0 && p.max_bandwidth == 1u << 20);
	CHECK(lm_params_set_running(&p, LIVEMIG_SOURCE, "max-cpu-throttle", "50", err,
				    sizeof(err)) == 0 && p.throttle_max == 50);
	p.max_bandwidth = before.max_bandwidth;
	p.throttle_max = before.throttle_max;
	p.set_mask = before.set_mask;
	CHECK(!memcmp(&p, &before, sizeof(p)));
}

int main(void)
{
	running();
	table();
	registries();
	defaults();
	values();
	messages();
	aliases();
	sides();
	must_match();
	levels();
	T_DONE();
}
