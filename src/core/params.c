/* SPDX-License-Identifier: MIT */
/* Migration parameters and capabilities by QEMU's names. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "dirty/tracker.h"
#include "util/util.h"

void lm_params_default(struct lm_params *p)
{
	memset(p, 0, sizeof(*p));
	p->channels = 2;
	p->method = LM_METHOD_NONE;
	p->zlib_level = 1;
	p->zstd_level = 1;
	p->qatzip_level = 1;
	p->zero_detect = true;
	strcpy(p->dsa_path, "/dev/dsa/wq0.0");
	p->accel_retries = 3;
	p->downtime_limit_ms = 300;
	strcpy(p->tracker, "auto");
	p->throttle_threshold = 50;
	p->throttle_initial = 20;
	p->throttle_increment = 10;
	p->throttle_max = 99;
}

static int parse_uint(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	if (!*v || *v == '-' || *v == '+')
		return -EINVAL;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || *end || x < lo || x > hi)
		return -EINVAL;
	*out = x;
	return 0;
}

const char *lm_method_name(uint8_t method)
{
	if (method == LM_METHOD_AUTO)
		return "auto";
	const struct lm_codec_ops *c = lm_codec_by_method(method);
	return c ? c->name : "unknown";
}

int lm_params_level(const struct lm_params *p)
{
	return lm_method_level(p, p->method);
}

int lm_method_level(const struct lm_params *p, uint8_t method)
{
	switch (method) {
	case LM_METHOD_ZLIB:
		return p->zlib_level;
	case LM_METHOD_ZSTD:
	case LM_METHOD_AUTO: /* the level its zstd packets use */
		return p->zstd_level;
	case LM_METHOD_QATZIP:
		return p->qatzip_level;
	case LM_METHOD_NONE:
		return 0;
	default:
		return 1;
	}
}

int lm_params_set(struct lm_params *p, const char *name, const char *value, char *err,
		  size_t errlen)
{
	uint64_t v;
	int id;

	if (!name || !value) {
		snprintf(err, errlen, "missing parameter name or value");
		return -EINVAL;
	}
	if (!strcmp(name, "multifd-channels")) {
		id = LM_P_CHANNELS;
		if (parse_uint(value, 1, LM_MAX_CHANNELS, &v))
			goto bad_range;
		p->channels = (uint32_t)v;
	} else if (!strcmp(name, "multifd-compression")) {
		id = LM_P_COMPRESSION;
		const struct lm_codec_ops *c = lm_codec_by_name(value);
		if (!strcmp(value, "auto")) {
			p->method = LM_METHOD_AUTO;
		} else if (!c) {
			size_t n;
			const struct lm_codec_ops *const *t = lm_codec_table(&n);
			char list[128] = "";
			for (size_t i = 0; i < n; i++) {
				strncat(list, i ? "|" : "", sizeof(list) - strlen(list) - 1);
				strncat(list, t[i]->name, sizeof(list) - strlen(list) - 1);
			}
			snprintf(err, errlen, "multifd-compression: unknown method '%s' (one of %s)",
				 value, list);
			return -EINVAL;
		} else {
			p->method = c->method;
		}
	} else if (!strcmp(name, "multifd-zlib-level")) {
		id = LM_P_ZLIB_LEVEL;
		if (parse_uint(value, 1, 9, &v))
			goto bad_range;
		p->zlib_level = (int)v;
	} else if (!strcmp(name, "multifd-zstd-level")) {
		id = LM_P_ZSTD_LEVEL;
		if (parse_uint(value, 1, 19, &v))
			goto bad_range;
		p->zstd_level = (int)v;
	} else if (!strcmp(name, "multifd-qatzip-level")) {
		id = LM_P_QATZIP_LEVEL;
		if (parse_uint(value, 1, 9, &v))
			goto bad_range;
		p->qatzip_level = (int)v;
	} else if (!strcmp(name, "zero-page-detection")) {
		id = LM_P_ZERO_DETECT;
		p->zero_dsa = !strcmp(value, "dsa");
		if (!strcmp(value, "multifd") || p->zero_dsa)
			p->zero_detect = true;
		else if (!strcmp(value, "none"))
			p->zero_detect = false;
		else {
			snprintf(err, errlen,
				 "zero-page-detection: '%s' is not one of multifd|dsa|none", value);
			return -EINVAL;
		}
	} else if (!strcmp(name, "dsa-path") || !strcmp(name, "accel-path")) {
		/* accel-path: the name QEMU's DSA series gave it. */
		id = LM_P_DSA_PATH;
		if (!*value || strlen(value) >= sizeof(p->dsa_path)) {
			snprintf(err, errlen, "%s: expected a work queue path such as "
				 "/dev/dsa/wq0.0", name);
			return -EINVAL;
		}
		snprintf(p->dsa_path, sizeof(p->dsa_path), "%s", value);
	} else if (!strcmp(name, "compression-engine")) {
		id = LM_P_ENGINE;
		if (!*value || strlen(value) >= sizeof(p->engine)) {
			snprintf(err, errlen, "compression-engine: expected an engine name "
				 "(livemig info lists them)");
			return -EINVAL;
		}
		snprintf(p->engine, sizeof(p->engine), "%s", value);
	} else if (!strcmp(name, "accel-retries")) {
		id = LM_P_ACCEL_RETRIES;
		if (parse_uint(value, 0, 1000, &v)) {
			snprintf(err, errlen, "accel-retries: '%s' is not a number in 0..1000", value);
			return -EINVAL;
		}
		p->accel_retries = (unsigned)v;
	} else if (!strcmp(name, "accel-verify")) {
		id = LM_P_ACCEL_VERIFY;
		if (strcmp(value, "on") && strcmp(value, "off")) {
			snprintf(err, errlen, "accel-verify: '%s' is not on|off", value);
			return -EINVAL;
		}
		p->accel_verify = !strcmp(value, "on");
	} else if (!strcmp(name, "max-bandwidth")) {
		id = LM_P_MAX_BW;
		if (lm_parse_size(value, &v))
			goto bad_size;
		p->max_bandwidth = v;
	} else if (!strcmp(name, "avail-switchover-bandwidth")) {
		id = LM_P_SWITCHOVER_BW;
		if (lm_parse_size(value, &v))
			goto bad_size;
		p->switchover_bw = v;
	} else if (!strcmp(name, "downtime-limit")) {
		id = LM_P_DOWNTIME;
		if (parse_uint(value, 1, 2000000, &v))
			goto bad_range;
		p->downtime_limit_ms = v;
	} else if (!strcmp(name, "dirty-tracker")) {
		id = LM_P_TRACKER;
		if (strcmp(value, "auto") && !lm_tracker_by_name(value)) {
			snprintf(err, errlen, "dirty-tracker: '%s' is not one of auto|uffd-async|"
				 "uffd-sync", value);
			return -EINVAL;
		}
		snprintf(p->tracker, sizeof(p->tracker), "%s", value);
	} else if (!strcmp(name, "throttle-trigger-threshold")) {
		id = LM_P_THROTTLE_THRESHOLD;
		if (parse_uint(value, 1, 100, &v))
			goto bad_pct;
		p->throttle_threshold = (int)v;
	} else if (!strcmp(name, "cpu-throttle-initial")) {
		id = LM_P_THROTTLE_INITIAL;
		if (parse_uint(value, 1, 99, &v))
			goto bad_pct;
		p->throttle_initial = (int)v;
	} else if (!strcmp(name, "cpu-throttle-increment")) {
		id = LM_P_THROTTLE_INCREMENT;
		if (parse_uint(value, 1, 99, &v))
			goto bad_pct;
		p->throttle_increment = (int)v;
	} else if (!strcmp(name, "max-cpu-throttle")) {
		id = LM_P_THROTTLE_MAX;
		if (parse_uint(value, 1, 99, &v))
			goto bad_pct;
		p->throttle_max = (int)v;
	} else if (!strcmp(name, "timeout")) {
		id = LM_P_TIMEOUT;
		if (parse_uint(value, 0, 1000000000, &v)) {
			snprintf(err, errlen, "timeout: '%s' is not a number of seconds", value);
			return -EINVAL;
		}
		p->timeout_s = v;
	} else if (!strcmp(name, "x-no-barrier")) {
		/* Test hook: see docs/design.md. */
		p->x_no_barrier = !strcmp(value, "on");
		return 0;
	} else if (!strcmp(name, "x-fault-engine")) {
		/* Test hook: the fault-injecting engine (src/accel/fault.c). */
		struct lm_fault_opts fo;
		if (strlen(value) >= sizeof(p->x_fault) || lm_fault_parse(value, &fo)) {
			snprintf(err, errlen, "x-fault-engine: expected busy=P,error=P,corrupt=P,"
				 "badlen=P,seed=N");
			return -EINVAL;
		}
		snprintf(p->x_fault, sizeof(p->x_fault), "%s", value);
		return 0;
	} else if (!strcmp(name, "x-auto-speeds")) {
		/* Test hook: auto's link and compressor speeds, fixed (0 = measure);
		 * the zstd-hi speed may be left out (then: measured). */
		char buf[128], *save = NULL, *tok;
		snprintf(buf, sizeof(buf), "%s", value);
		tok = strtok_r(buf, ",", &save);
		memset(p->x_auto, 0, sizeof(p->x_auto));
		for (int i = 0; i < LM_AUTO_N; i++, tok = strtok_r(NULL, ",", &save)) {
			if ((!tok && i < LM_AUTO_N - 1) || (tok && lm_parse_size(tok, &p->x_auto[i]))) {
				snprintf(err, errlen, "x-auto-speeds: expected LINK,LZ4,ZSTD[,ZSTD_HI] "
					 "in bytes/s");
				return -EINVAL;
			}
		}
		return 0;
	} else if (!strcmp(name, "x-delay-channel")) {
		unsigned ch, ms;
		char tail;
		if (sscanf(value, "%u:%u%c", &ch, &ms, &tail) != 2 || !ch || ms > 10000) {
			snprintf(err, errlen, "x-delay-channel: expected CHANNEL:MS");
			return -EINVAL;
		}
		p->x_delay_channel = ch;
		p->x_delay_ms = ms;
		return 0;
	} else {
		snprintf(err, errlen, "unknown parameter '%s'", name);
		return -ENOENT;
	}
	p->set_mask |= 1u << id;
	return 0;

bad_range:
	snprintf(err, errlen, "%s: '%s' is not a whole number in range (%s)", name, value,
		 !strcmp(name, "multifd-channels")     ? "1..255"
		 : !strcmp(name, "multifd-zlib-level") ? "1..9"
		 : !strcmp(name, "multifd-qatzip-level") ? "1..9"
		 : !strcmp(name, "multifd-zstd-level") ? "1..19"
						       : "1..2000000 ms");
	return -EINVAL;
bad_pct:
	snprintf(err, errlen, "%s: '%s' is not a percentage in range", name, value);
	return -EINVAL;
bad_size:
	snprintf(err, errlen, "%s: '%s' is not a byte rate (e.g. 125M, 1G, 0 = unlimited)",
		 name, value);
	return -EINVAL;
}

int lm_params_cap(struct lm_params *p, const char *name, bool on, char *err, size_t errlen)
{
	if (!strcmp(name, "multifd")) {
		/* Always on: livemig is multifd only.  Accepted for QEMU users. */
		if (!on) {
			snprintf(err, errlen, "capability multifd cannot be turned off");
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(name, "auto-converge")) {
		p->auto_converge = on;
		return 0;
	}
	snprintf(err, errlen, "unknown capability '%s'", name);
	return -ENOENT;
}
