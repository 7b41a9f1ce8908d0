/* SPDX-License-Identifier: MIT */
/*
 * Migration parameters and capabilities by QEMU's names.  One const table
 * says, for each: its type and range, default, unit, which side it applies
 * to, whether a destination that sets it must match the source, one line of
 * help and its field in struct lm_params.  Parsing, the error texts, the
 * defaults, the destination's must-match check, the public listing
 * (livemig_param_get) and the CLI's --help are all read from it.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "dirty/tracker.h"
#include "util/util.h"

enum lm_param_type { T_UINT, T_SIZE, T_ENUM, T_BOOL, T_STRING };

static const char *const type_names[] = {
	[T_UINT] = "uint", [T_SIZE] = "size", [T_ENUM] = "enum", [T_BOOL] = "bool",
	[T_STRING] = "string",
};

#define SRC (1u << LIVEMIG_SOURCE)
#define DST (1u << LIVEMIG_DEST)

struct lm_param {
	const char *name;
	const char *alias;        /* another accepted name, or NULL */
	enum lm_param_type type;
	bool cap;                 /* a capability (livemig_set_capability) */
	/* T_UINT: the range.  T_BOOL: min 1 = cannot be turned off. */
	uint64_t min, max;
	/* T_ENUM: "a|b|c", unless list() builds it from a registry.
	 * T_STRING: its shape for --help ("PATH"). */
	const char *values;
	void (*list)(char *buf, size_t len);
	/* In errors: "unknown WHAT" (T_ENUM), "expected WHAT" (T_STRING, or
	 * when set() refuses). */
	const char *what;
	const char *def;          /* default as text; NULL: none (field zero) */
	const char *unit;         /* "ms", "bytes/s", ... or NULL */
	unsigned sides;           /* SRC, DST or both */
	bool changeable;          /* may change during a migration (lm_params_set_running) */
	bool must_match;          /* a destination that sets it must match the source */
	bool hidden;              /* a test hook: not in --help */
	uint8_t level_of;         /* a compression level: of this method (0: not one) */
	/* must_match: "source ... %s, destination was set to %s" (source's
	 * value, destination's); a level's starts with the method's name. */
	const char *mismatch;
	const char *help;
	size_t off, size;         /* the field in struct lm_params; size 0: none */
	/* When storing the text is more than a plain copy: stores a value the
	 * type check accepted; -EINVAL refuses it ("expected WHAT"). */
	int (*set)(struct lm_params *p, const char *value);
	/* ...and its value as text. */
	void (*get)(const struct lm_params *p, char *buf, size_t len);
};

#define FIELD(f) .off = offsetof(struct lm_params, f), .size = sizeof(((struct lm_params *)0)->f)

/* ---- the entries that need more than a plain store ----------------------- */
static void join(char *buf, size_t len, const char *word)
{
	size_t n = strlen(buf);
	snprintf(buf + n, len - n, "%s%s", n ? "|" : "", word);
}

static void compression_list(char *buf, size_t len)
{
	size_t n;
	const struct lm_codec_ops *const *t = lm_codec_table(&n);
	buf[0] = 0;
	for (size_t i = 0; i < n; i++)
		join(buf, len, t[i]->name);
}

static int compression_set(struct lm_params *p, const char *v)
{
	p->method = lm_codec_by_name(v)->method; /* v is one of compression_list's */
	return 0;
}

static void compression_get(const struct lm_params *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s", lm_method_name(p->method));
}

static void tracker_list(char *buf, size_t len)
{
	size_t n;
	const struct lm_tracker_ops *const *t = lm_tracker_table(&n);
	snprintf(buf, len, "auto");
	for (size_t i = 0; i < n; i++)
		if (!t[i]->needs_log) /* external comes with livemig_set_dirty_log() */
			join(buf, len, t[i]->name);
}

static void zero_list(char *buf, size_t len)
{
	size_t n;
	const struct lm_zeropage_ops *const *t = lm_zeropage_table(&n);
	buf[0] = 0;
	for (size_t i = 0; i < n; i++)
		join(buf, len, t[i]->name);
}

static int zero_set(struct lm_params *p, const char *v)
{
	snprintf(p->zero_engine, sizeof(p->zero_engine), "%s", v);
	p->zero_detect = strcmp(v, "none") != 0;
	return 0;
}

static void zero_get(const struct lm_params *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s", !p->zero_detect ? "none" : p->zero_engine);
}

static int fault_set(struct lm_params *p, const char *v)
{
	struct lm_fault_opts fo;
	if (strlen(v) >= sizeof(p->x_fault) || lm_fault_parse(v, &fo))
		return -EINVAL;
	snprintf(p->x_fault, sizeof(p->x_fault), "%s", v);
	return 0;
}

/* LINK,LZ4,ZSTD[,ZSTD_HI]: sizes; the zstd-hi speed may be left out (then:
 * measured).  No empty field, nothing more. */
static int auto_speeds_set(struct lm_params *p, const char *v)
{
	char buf[64]; /* a size; longer is no size at all */
	uint64_t x[LM_AUTO_N] = {0};
	size_t pos = 0, len = strlen(v);
	int i;
	for (i = 0; i < LM_AUTO_N && pos <= len; i++)
		if (lm_next_field(v, &pos, ',', buf, sizeof(buf)) || lm_parse_size(buf, &x[i]))
			return -EINVAL;
	if (i < LM_AUTO_N - 1 || pos <= len) /* three or four fields */
		return -EINVAL;
	memcpy(p->x_auto, x, sizeof(x));
	return 0;
}

static void auto_speeds_get(const struct lm_params *p, char *buf, size_t len)
{
	buf[0] = 0;
	for (int i = 0; i < LM_AUTO_N; i++) {
		size_t n = strlen(buf);
		snprintf(buf + n, len - n, "%s%" PRIu64, i ? "," : "", p->x_auto[i]);
	}
}

/* CHANNEL:MS, channel 1..LM_MAX_CHANNELS, ms 0..10000. */
static int delay_set(struct lm_params *p, const char *v)
{
	char ch_text[16], ms_text[16];
	uint64_t ch, ms;
	size_t pos = 0;
	if (lm_next_field(v, &pos, ':', ch_text, sizeof(ch_text)) ||
	    lm_next_field(v, &pos, ':', ms_text, sizeof(ms_text)) || pos <= strlen(v) ||
	    lm_parse_uint(ch_text, 1, LM_MAX_CHANNELS, &ch) ||
	    lm_parse_uint(ms_text, 0, 10000, &ms))
		return -EINVAL;
	p->x_delay_channel = (unsigned)ch;
	p->x_delay_ms = (unsigned)ms;
	return 0;
}

static void delay_get(const struct lm_params *p, char *buf, size_t len)
{
	snprintf(buf, len, "%u:%u", p->x_delay_channel, p->x_delay_ms);
}

/* ---- the table ------------------------------------------------------------ */
static const struct lm_param params[LM_P_COUNT] = {
	[LM_P_CHANNELS] = {
		.name = "multifd-channels", .type = T_UINT, .min = 1, .max = LM_MAX_CHANNELS,
		.def = "2", .sides = SRC | DST, .must_match = true,
		.mismatch = "source uses %s channels, destination was set to %s",
		.help = "parallel connections, each with its own thread",
		FIELD(channels),
	},
	[LM_P_COMPRESSION] = {
		.name = "multifd-compression", .type = T_ENUM, .list = compression_list,
		.what = "method", .def = "none", .sides = SRC | DST, .must_match = true,
		.mismatch = "source compresses with %s, destination was set to %s",
		.help = "auto: raw, lz4 or zstd per packet, from measured link and CPU speed; "
			"qpl, qatzip, uadk: their hardware when present, else ISA-L "
			"(livemig info says which)",
		FIELD(method), .set = compression_set, .get = compression_get,
	},
	[LM_P_ZLIB_LEVEL] = {
		.name = "multifd-zlib-level", .type = T_UINT, .min = 1, .max = 9, .def = "1",
		.sides = SRC | DST, .must_match = true, .level_of = LM_METHOD_ZLIB,
		.mismatch = "source uses %s level %s, destination was set to %s",
		.help = "zlib's compression level", FIELD(zlib_level),
	},
	[LM_P_ZSTD_LEVEL] = {
		.name = "multifd-zstd-level", .type = T_UINT, .min = 1, .max = 19, .def = "1",
		.sides = SRC | DST, .must_match = true, .level_of = LM_METHOD_ZSTD,
		.mismatch = "source uses %s level %s, destination was set to %s",
		.help = "zstd's compression level; auto's zstd packets use it and it + 2",
		FIELD(zstd_level),
	},
	[LM_P_QATZIP_LEVEL] = {
		.name = "multifd-qatzip-level", .type = T_UINT, .min = 1, .max = 9, .def = "1",
		.sides = SRC | DST, .must_match = true, .level_of = LM_METHOD_QATZIP,
		.mismatch = "source uses %s level %s, destination was set to %s",
		.help = "qatzip's compression level", FIELD(qatzip_level),
	},
	[LM_P_ENGINE] = {
		.name = "compression-engine", .type = T_STRING, .values = "ENGINE",
		.what = "an engine name (livemig info lists them)", .sides = SRC,
		.help = "force one engine of the method (livemig info lists them); "
			"default: the best usable one",
		FIELD(engine),
	},
	[LM_P_ACCEL_RETRIES] = {
		.name = "accel-retries", .type = T_UINT, .min = 0, .max = 1000, .def = "3",
		.sides = SRC,
		.help = "resubmissions of a job the device was busy for, before software does it",
		FIELD(accel_retries),
	},
	[LM_P_ACCEL_VERIFY] = {
		.name = "accel-verify", .type = T_BOOL, .def = "off", .sides = SRC,
		.help = "on: decode each hardware output in software, redo it in software "
			"when wrong",
		FIELD(accel_verify),
	},
	[LM_P_ZERO_DETECT] = {
		.name = "zero-page-detection", .type = T_ENUM, .list = zero_list,
		.what = "mode", .def = "multifd", .sides = SRC | DST, .must_match = true,
		.mismatch = "source uses zero-page-detection=%s, destination was set to %s",
		.help = "zero pages found by the channel threads, a DSA device (source), "
			"or not at all",
		FIELD(zero_detect), .set = zero_set, .get = zero_get,
	},
	[LM_P_DSA_PATH] = {
		/* accel-path: the name QEMU's DSA series gave it. */
		.name = "dsa-path", .alias = "accel-path", .type = T_STRING, .values = "PATH",
		.what = "a work queue path such as /dev/dsa/wq0.0", .def = "/dev/dsa/wq0.0",
		.sides = SRC, .help = "DSA work queue for zero-page-detection=dsa",
		FIELD(dsa_path),
	},
	[LM_P_MAX_BW] = {
		.name = "max-bandwidth", .type = T_SIZE, .def = "0", .unit = "bytes/s",
		.sides = SRC, .changeable = true,
		.help = "over all channels together, 0 = unlimited", FIELD(max_bandwidth),
	},
	[LM_P_DOWNTIME] = {
		.name = "downtime-limit", .type = T_UINT, .min = 1, .max = 2000000, .def = "300",
		.unit = "ms", .sides = SRC, .changeable = true,
		.help = "switch over once what is dirty can be sent in this time",
		FIELD(downtime_limit_ms),
	},
	[LM_P_SWITCHOVER_BW] = {
		.name = "avail-switchover-bandwidth", .type = T_SIZE, .def = "0",
		.unit = "bytes/s", .sides = SRC, .changeable = true,
		.help = "what to assume for the switch-over instead of the measured rate, "
			"0 = measured",
		FIELD(switchover_bw),
	},
	[LM_P_TRACKER] = {
		.name = "dirty-tracker", .type = T_ENUM, .list = tracker_list, .what = "tracker",
		.def = "auto", .sides = SRC,
		.help = "how a running guest's writes are found; auto: the best usable",
		FIELD(tracker),
	},
	[LM_P_THROTTLE_THRESHOLD] = {
		.name = "throttle-trigger-threshold", .type = T_UINT, .min = 1, .max = 100,
		.def = "50", .unit = "%", .sides = SRC, .changeable = true,
		.help = "auto-converge: throttle once the guest dirties more than this share "
			"of what is sent",
		FIELD(throttle_threshold),
	},
	[LM_P_THROTTLE_INITIAL] = {
		.name = "cpu-throttle-initial", .type = T_UINT, .min = 1, .max = 99, .def = "20",
		.unit = "%", .sides = SRC, .changeable = true,
		.help = "auto-converge: the first throttle", FIELD(throttle_initial),
	},
	[LM_P_THROTTLE_INCREMENT] = {
		.name = "cpu-throttle-increment", .type = T_UINT, .min = 1, .max = 99, .def = "10",
		.unit = "%", .sides = SRC, .changeable = true,
		.help = "auto-converge: added each second it still does not converge",
		FIELD(throttle_increment),
	},
	[LM_P_THROTTLE_MAX] = {
		.name = "max-cpu-throttle", .type = T_UINT, .min = 1, .max = 99, .def = "99",
		.unit = "%", .sides = SRC, .changeable = true,
		.help = "auto-converge: the highest throttle", FIELD(throttle_max),
	},
	[LM_P_TIMEOUT] = {
		.name = "timeout", .type = T_UINT, .min = 0, .max = 1000000000, .def = "0",
		.unit = "s", .sides = SRC | DST,
		.help = "give up when not done this long after the start, in any phase "
			"(destination: when the source's connections have not all come by "
			"then), 0 = never (also --timeout)",
		FIELD(timeout_s),
	},
	[LM_P_NET_TIMEOUT] = {
		.name = "net-timeout", .type = T_UINT, .min = 1, .max = 3600, .def = "10",
		.unit = "s", .sides = SRC | DST,
		.help = "give up on a peer silent this long (heartbeat, TCP keepalive and "
			"TCP_USER_TIMEOUT derive from it); each side uses its own",
		FIELD(net_timeout_s),
	},
	[LM_P_SWITCHOVER_TIMEOUT] = {
		.name = "switchover-timeout", .type = T_UINT, .min = 100, .max = 3600000,
		.def = "5000", .unit = "ms", .sides = SRC,
		.help = "once the guest stops, the destination must confirm within "
			"downtime-limit plus this, or the source resumes the guest and fails",
		FIELD(switchover_timeout_ms),
	},
	[LM_P_MAX_RAM] = {
		.name = "max-ram", .type = T_SIZE, .def = "0", .unit = "bytes", .sides = DST,
		.help = "refuse a source that announces more RAM than this, before allocating "
			"anything; 0 = this machine's memory (a value above it replaces that "
			"limit: overcommit)",
		FIELD(max_ram),
	},
	[LM_P_TLS_CREDS] = {
		/* Checked when livemig_start loads them (a usage error). */
		.name = "tls-creds", .type = T_STRING, .values = "psk:DIR|x509:DIR",
		.what = "psk:DIR or x509:DIR", .sides = SRC | DST,
		.help = "TLS on every connection with QEMU's credentials: DIR/keys.psk "
			"(identity:hexkey lines), or DIR/ca-cert.pem, server-cert.pem, "
			"server-key.pem, client-cert.pem, client-key.pem; default: no TLS",
		FIELD(tls_creds),
	},
	[LM_P_TLS_PSK_IDENTITY] = {
		.name = "tls-psk-identity", .type = T_STRING, .values = "NAME",
		.what = "an identity of keys.psk", .def = "qemu", .sides = SRC,
		.help = "tls-creds=psk: the line of keys.psk to use",
		FIELD(tls_psk_identity),
	},
	[LM_P_TLS_HOSTNAME] = {
		.name = "tls-hostname", .type = T_STRING, .values = "NAME",
		.what = "a host name", .sides = SRC,
		.help = "tls-creds=x509: the name the destination's certificate must carry; "
			"default: the host of the URI",
		FIELD(tls_hostname),
	},
	[LM_P_TLS_AUTHZ] = {
		.name = "tls-authz", .type = T_STRING, .values = "FILE",
		.what = "a file name", .sides = DST,
		.help = "only the clients listed in FILE: one PSK identity or x509 "
			"distinguished name (GnuTLS's form, as the refusal log prints it) per "
			"line, compared whole, spaces included; lines starting with # are skipped; "
			"default: any the credentials admit",
		FIELD(tls_authz),
	},
	/* Test hooks: see docs/design.md. */
	[LM_P_X_NO_BARRIER] = {
		.name = "x-no-barrier", .type = T_BOOL, .def = "off", .sides = SRC | DST,
		.hidden = true, .help = "the source does not wait for ITER_ACK, the receivers "
			"do not wait at SYNC",
		FIELD(x_no_barrier),
	},
	[LM_P_X_DELAY_CHANNEL] = {
		.name = "x-delay-channel", .type = T_STRING, .values = "CHANNEL:MS",
		.what = "CHANNEL:MS", .sides = DST, .hidden = true,
		.help = "receiver CHANNEL sleeps MS (at most 10000) before every packet",
		FIELD(x_delay_channel), .set = delay_set, .get = delay_get,
	},
	[LM_P_X_FAULT_ENGINE] = {
		/* The fault-injecting engine (src/accel/fault.c). */
		.name = "x-fault-engine", .type = T_STRING,
		.values = "busy=P,error=P,corrupt=P,badlen=P,seed=N",
		.what = "busy=P,error=P,corrupt=P,badlen=P,seed=N", .sides = SRC, .hidden = true,
		.help = "the fault-injecting engine in the hardware engine's slot",
		FIELD(x_fault), .set = fault_set,
	},
	[LM_P_X_AUTO_SPEEDS] = {
		.name = "x-auto-speeds", .type = T_STRING, .values = "LINK,LZ4,ZSTD[,ZSTD_HI]",
		.what = "LINK,LZ4,ZSTD[,ZSTD_HI] in bytes/s", .sides = SRC, .hidden = true,
		.help = "auto's link and compressor speeds per channel, fixed (0 = measure)",
		FIELD(x_auto), .set = auto_speeds_set, .get = auto_speeds_get,
	},
	[LM_P_X_STALL_SWITCHOVER] = {
		.name = "x-stall-switchover", .type = T_UINT, .min = 0, .max = 600000, .def = "0",
		.unit = "ms", .sides = DST, .hidden = true,
		.help = "after COMPLETE, wait this long before verifying and answering RESULT",
		FIELD(x_stall_switchover_ms),
	},
	[LM_P_X_LOSE_COMMIT] = {
		.name = "x-lose-commit", .type = T_ENUM, .values = "off|once|always",
		.what = "mode", .def = "off", .sides = SRC, .hidden = true,
		.help = "COMMIT counts as sent and is not; always: nor is it sent again on a "
			"resolving connection",
		FIELD(x_lose_commit),
	},
	[LM_P_CAP_MULTIFD] = {
		/* Always on: livemig is multifd only.  Accepted for QEMU users. */
		.name = "multifd", .type = T_BOOL, .cap = true, .min = 1, .def = "on",
		.sides = SRC | DST, .help = "always on: livemig is multifd only",
	},
	[LM_P_CAP_AUTO_CONVERGE] = {
		.name = "auto-converge", .type = T_BOOL, .cap = true, .def = "off", .sides = SRC,
		.help = "throttle a guest that dirties faster than the link drains",
		FIELD(auto_converge),
	},
	[LM_P_CAP_CHANNEL_RECOVERY] = {
		/* The source announces it in PARAMS; a destination follows. */
		.name = "channel-recovery", .type = T_BOOL, .cap = true, .def = "off",
		.sides = SRC | DST, .must_match = true,
		.mismatch = "source has channel-recovery %s, destination was set to %s",
		.help = "a multifd channel whose connection fails is reconnected and its pass "
			"resent, instead of failing the migration",
		FIELD(channel_recovery),
	},
};

_Static_assert(LM_P_COUNT <= 64, "set_mask has a bit per parameter");

/* ---- reading and writing a field ------------------------------------------ */
static void *field(struct lm_params *p, const struct lm_param *d)
{
	return (char *)p + d->off;
}

static const void *cfield(const struct lm_params *p, const struct lm_param *d)
{
	return (const char *)p + d->off;
}

/* T_UINT and T_SIZE fields: any unsigned (or non-negative int) width. */
static uint64_t get_uint(const struct lm_params *p, const struct lm_param *d)
{
	const void *f = cfield(p, d);
	switch (d->size) {
	case 1:
		return *(const uint8_t *)f;
	case 2:
		return *(const uint16_t *)f;
	case 4:
		return *(const uint32_t *)f;
	default:
		return *(const uint64_t *)f;
	}
}

/* x is within the entry's range, which fits its field. */
static void put_uint(struct lm_params *p, const struct lm_param *d, uint64_t x)
{
	void *f = field(p, d);
	switch (d->size) {
	case 1:
		*(uint8_t *)f = (uint8_t)x;
		break;
	case 2:
		*(uint16_t *)f = (uint16_t)x;
		break;
	case 4:
		*(uint32_t *)f = (uint32_t)x;
		break;
	default:
		*(uint64_t *)f = x;
		break;
	}
}

/* The accepted values as --help and livemig_param_get() show them. */
static void values_text(const struct lm_param *d, char *buf, size_t len)
{
	switch (d->type) {
	case T_UINT:
		snprintf(buf, len, "%" PRIu64 "..%" PRIu64, d->min, d->max);
		break;
	case T_SIZE:
		snprintf(buf, len, "SIZE");
		break;
	case T_BOOL:
		snprintf(buf, len, "%s", d->min ? "on" : "on|off");
		break;
	case T_ENUM:
	case T_STRING:
		if (d->list)
			d->list(buf, len);
		else
			snprintf(buf, len, "%s", d->values);
		break;
	}
}

static bool in_list(const char *list, const char *v)
{
	size_t n = strlen(v);
	for (const char *w = list; n && *w;) {
		size_t len = strcspn(w, "|");
		if (len == n && !strncmp(w, v, n))
			return true;
		w += len + (w[len] == '|');
	}
	return false;
}

/* Checks value against d's type and range and stores it; name is the one
 * the caller used (it may be the alias). */
static int apply(struct lm_params *p, const struct lm_param *d, const char *name,
		 const char *v, char *err, size_t errlen)
{
	char list[256];
	uint64_t x;

	switch (d->type) {
	case T_UINT:
		if (lm_parse_uint(v, d->min, d->max, &x)) {
			values_text(d, list, sizeof(list));
			snprintf(err, errlen, "%s: '%s' is not a whole number in range (%s%s%s)",
				 name, v, list, d->unit ? " " : "", d->unit ? d->unit : "");
			return -EINVAL;
		}
		put_uint(p, d, x);
		return 0;
	case T_SIZE:
		if (lm_parse_size(v, &x)) {
			snprintf(err, errlen, "%s: '%s' is not a size in bytes (a number, or "
				 "with K, M, G or T: 125M, 1G)", name, v);
			return -EINVAL;
		}
		put_uint(p, d, x);
		return 0;
	case T_BOOL:
		if (strcmp(v, "on") && strcmp(v, "off")) {
			snprintf(err, errlen, "%s: '%s' is not on|off", name, v);
			return -EINVAL;
		}
		if (d->min && strcmp(v, "on")) {
			snprintf(err, errlen, "%s%s cannot be turned off", d->cap ? "capability " : "",
				 name);
			return -EINVAL;
		}
		if (d->size) {
			bool on = !strcmp(v, "on");
			memcpy(field(p, d), &on, sizeof(on));
		}
		return 0;
	case T_ENUM:
		values_text(d, list, sizeof(list));
		if (!in_list(list, v)) {
			snprintf(err, errlen, "%s: unknown %s '%s' (one of %s)", name, d->what, v,
				 list);
			return -EINVAL;
		}
		break;
	case T_STRING:
		if (!*v)
			goto expected;
		break;
	}
	if (d->set) {
		if (d->set(p, v))
			goto expected;
		return 0;
	}
	if (strlen(v) >= d->size)
		goto expected;
	memcpy(field(p, d), v, strlen(v) + 1);
	return 0;
expected:
	snprintf(err, errlen, "%s: expected %s", name, d->what);
	return -EINVAL;
}

static void value_get(const struct lm_params *p, const struct lm_param *d, char *buf,
		      size_t len)
{
	bool on = true; /* a bool without a field is always on */
	if (d->get) {
		d->get(p, buf, len);
		return;
	}
	switch (d->type) {
	case T_UINT:
	case T_SIZE:
		snprintf(buf, len, "%" PRIu64, get_uint(p, d));
		break;
	case T_BOOL:
		if (d->size)
			memcpy(&on, cfield(p, d), sizeof(on));
		snprintf(buf, len, "%s", on ? "on" : "off");
		break;
	case T_ENUM:
	case T_STRING:
		snprintf(buf, len, "%s", (const char *)cfield(p, d));
		break;
	}
}

static const struct lm_param *find(const char *name, bool cap)
{
	for (size_t i = 0; i < LM_P_COUNT; i++)
		if (params[i].cap == cap && (!strcmp(name, params[i].name) ||
					     (params[i].alias && !strcmp(name, params[i].alias))))
			return &params[i];
	return NULL;
}

/* A parameter or capability (their names are distinct). */
static const struct lm_param *find_any(const char *name)
{
	if (!name)
		return NULL;
	const struct lm_param *d = find(name, false);
	return d ? d : find(name, true);
}

/* ---- parameters ------------------------------------------------------------ */
void lm_params_default(struct lm_params *p)
{
	char err[256];
	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < LM_P_COUNT; i++)
		if (params[i].def) /* test_params checks that each one parses */
			apply(p, &params[i], params[i].name, params[i].def, err, sizeof(err));
}

static int set_one(struct lm_params *p, enum livemig_role role, const char *name,
		   const char *value, bool cap, char *err, size_t errlen)
{
	const struct lm_param *d = find(name, cap);
	if (!d) {
		snprintf(err, errlen, "unknown %s '%s'", cap ? "capability" : "parameter", name);
		return -ENOENT;
	}
	if (!(d->sides & (1u << role))) {
		snprintf(err, errlen, "%s applies to the %s only", name,
			 role == LIVEMIG_SOURCE ? "destination" : "source");
		return -EINVAL;
	}
	int r = apply(p, d, name, value, err, errlen);
	if (!r)
		p->set_mask |= 1ull << (d - params);
	return r;
}

int lm_params_set(struct lm_params *p, enum livemig_role role, const char *name,
		  const char *value, char *err, size_t errlen)
{
	if (!name || !value) {
		snprintf(err, errlen, "missing parameter name or value");
		return -EINVAL;
	}
	return set_one(p, role, name, value, false, err, errlen);
}

int lm_params_set_running(struct lm_params *p, enum livemig_role role, const char *name,
			  const char *value, char *err, size_t errlen)
{
	const struct lm_param *d = name && value ? find(name, false) : NULL;
	if (d && !d->changeable) {
		/* Name the ones that can, from the table. */
		char can[256] = "";
		for (size_t i = 0; i < LM_P_COUNT; i++)
			if (params[i].changeable && (params[i].sides & (1u << role)))
				snprintf(can + strlen(can), sizeof(can) - strlen(can), "%s%s",
					 can[0] ? ", " : "", params[i].name);
		snprintf(err, errlen, "%s cannot change while a migration runs (%s%s)", name,
			 can[0] ? "these can: " : "none can on this side", can);
		return -EBUSY;
	}
	return lm_params_set(p, role, name, value, err, errlen);
}

int lm_params_cap(struct lm_params *p, enum livemig_role role, const char *name, bool on,
		  char *err, size_t errlen)
{
	if (!name) {
		snprintf(err, errlen, "missing capability name");
		return -EINVAL;
	}
	return set_one(p, role, name, on ? "on" : "off", true, err, errlen);
}

int lm_params_get(const struct lm_params *p, const char *name, char *buf, size_t len)
{
	const struct lm_param *d = find_any(name);
	if (!d)
		return -ENOENT;
	char v[256];
	value_get(p, d, v, sizeof(v));
	return snprintf(buf, len, "%s", v);
}

/* ---- compression levels ---------------------------------------------------- */
static const struct lm_param *level_param(uint8_t method)
{
	if (method == LM_METHOD_AUTO) /* the level its zstd packets use */
		method = LM_METHOD_ZSTD;
	for (size_t i = 0; i < LM_P_COUNT; i++)
		if (params[i].level_of && params[i].level_of == method)
			return &params[i];
	return NULL;
}

int lm_params_level(const struct lm_params *p)
{
	return lm_method_level(p, p->method);
}

int lm_method_level(const struct lm_params *p, uint8_t method)
{
	const struct lm_param *d = level_param(method);
	return d ? (int)get_uint(p, d) : method == LM_METHOD_NONE ? 0 : 1;
}

void lm_method_set_level(struct lm_params *p, uint8_t method, int level)
{
	const struct lm_param *d = level_param(method);
	if (d)
		put_uint(p, d, (uint64_t)level);
}

const char *lm_method_name(uint8_t method)
{
	const struct lm_codec_ops *c = lm_codec_by_method(method);
	return c ? c->name : "unknown";
}

/* ---- the destination's must-match check ------------------------------------ */
static bool matters(const struct lm_param *d, const struct lm_params *src)
{
	return d->must_match && (!d->level_of || d == level_param(src->method));
}

int lm_params_match_source(struct lm_params *p, const struct lm_params *src, char *err,
			   size_t errlen)
{
	for (size_t i = 0; i < LM_P_COUNT; i++) {
		const struct lm_param *d = &params[i];
		if (!matters(d, src) || !(p->set_mask & (1ull << i)) ||
		    !memcmp(cfield(p, d), cfield(src, d), d->size))
			continue;
		char theirs[64], ours[64];
		value_get(src, d, theirs, sizeof(theirs));
		value_get(p, d, ours, sizeof(ours));
		if (d->level_of)
			snprintf(err, errlen, d->mismatch, lm_method_name(src->method), theirs, ours);
		else
			snprintf(err, errlen, d->mismatch, theirs, ours);
		return -EINVAL;
	}
	for (size_t i = 0; i < LM_P_COUNT; i++)
		if (matters(&params[i], src))
			memcpy(field(p, &params[i]), cfield(src, &params[i]), params[i].size);
	return 0;
}

/* ---- the public listing ---------------------------------------------------- */
/* Built once from the table (the value lists of the registries' enums are
 * only known at run time); never changed after, so any thread may read it. */
static struct livemig_param_info pub[LM_P_COUNT];
static char pub_values[LM_P_COUNT][256];
static pthread_once_t pub_once = PTHREAD_ONCE_INIT;

static void pub_build(void)
{
	for (size_t i = 0; i < LM_P_COUNT; i++) {
		const struct lm_param *d = &params[i];
		values_text(d, pub_values[i], sizeof(pub_values[i]));
		pub[i] = (struct livemig_param_info){
			.name = d->name,
			.alias = d->alias,
			.type = type_names[d->type],
			.values = pub_values[i],
			.default_value = d->def,
			.unit = d->unit ? d->unit : "",
			.help = d->help,
			.capability = d->cap,
			.source = d->sides & SRC,
			.destination = d->sides & DST,
			.changeable = d->changeable,
			.must_match = d->must_match,
			.hidden = d->hidden,
		};
	}
}

const struct livemig_param_info *livemig_param_get(unsigned idx)
{
	if (idx >= LM_P_COUNT)
		return NULL;
	pthread_once(&pub_once, pub_build);
	return &pub[idx];
}

const struct livemig_param_info *livemig_param_find(const char *name)
{
	const struct lm_param *d = find_any(name);
	return d ? livemig_param_get((unsigned)(d - params)) : NULL;
}
