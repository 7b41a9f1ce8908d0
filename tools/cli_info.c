/* SPDX-License-Identifier: MIT */
/*
 * livemig info [--json]: what this build and this CPU can do.  One screen of
 * text, or the same facts as one JSON object for scripts.
 */
#include <isa-l.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "cli.h"
#include "codec/codec.h"
#include "dirty/tracker.h"
#include "util/util.h"
#include "zeropage/zero.h"

/* meson generates config.h; a standalone compile passes -DLIVEMIG_VERSION. */
#ifndef LIVEMIG_VERSION
#include "config.h"
#endif

#define STR_(x) #x
#define STR(x) STR_(x)
#define ISAL_VERSION_STRING                                                          \
	STR(ISAL_MAJOR_VERSION) "." STR(ISAL_MINOR_VERSION) "." STR(ISAL_PATCH_VERSION)

/* The engine behind each built method, by method name.  A method missing
 * here is still listed, with engine "built-in". */
struct engine_info {
	const char *method, *engine;
	const char *(*version)(void); /* NULL: no library */
};

static const char *version_of_zlib(void)
{
	return zlibVersion();
}

static const char *version_of_zstd(void)
{
	return ZSTD_versionString();
}

static const struct engine_info engines[] = {
	{"none", "raw pages (sent from guest memory)", NULL},
	{"zlib", "zlib", version_of_zlib},
	{"zstd", "zstd", version_of_zstd},
};

/* Methods with hardware engines that this build does not include yet. */
static const struct {
	const char *name, *reason;
} unbuilt_methods[] = {
	{"qpl", "libqpl not found"},
	{"qatzip", "libqatzip not found"},
	{"uadk", "libwd not found"},
};

static const char *const cpu_features[] = {"sse2", "sse4.2", "avx2", "avx512f", "avx512bw"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct info {
	bool cpu[COUNT(cpu_features)];
	const char *zero_impl;
	bool crc_ok;
	const struct lm_codec_ops *const *codecs;
	size_t ncodecs;
};

/* __builtin_cpu_supports needs a literal, hence the switch. */
static bool cpu_has(size_t i)
{
	__builtin_cpu_init();
	switch (i) {
	case 0: return __builtin_cpu_supports("sse2");
	case 1: return __builtin_cpu_supports("sse4.2");
	case 2: return __builtin_cpu_supports("avx2");
	case 3: return __builtin_cpu_supports("avx512f");
	case 4: return __builtin_cpu_supports("avx512bw");
	default: return false;
	}
}

static const struct engine_info *engine_of(const char *method)
{
	static const struct engine_info builtin = {NULL, "built-in", NULL};

	for (size_t i = 0; i < COUNT(engines); i++)
		if (strcmp(engines[i].method, method) == 0)
			return &engines[i];
	return &builtin;
}

static void gather(struct info *in)
{
	for (size_t i = 0; i < COUNT(cpu_features); i++)
		in->cpu[i] = cpu_has(i);
	in->zero_impl = NULL;
	lm_zero_select(&in->zero_impl);
	if (!in->zero_impl)
		in->zero_impl = "unknown";
	/* The standard CRC32C check value: proves the ISA-L wiring, costs nothing. */
	in->crc_ok = lm_crc32c(0, "123456789", 9) == 0xe3069283u;
	in->codecs = lm_codec_table(&in->ncodecs);
}

static void print_text(const struct info *in)
{
	printf("livemig %s\n", LIVEMIG_VERSION);
	printf("cpu:");
	for (size_t i = 0; i < COUNT(cpu_features); i++)
		printf(" %s%s", in->cpu[i] ? "" : "-", cpu_features[i]);
	printf("\n");
	printf("crc32c: isa-l crc32_iscsi (isa-l %s, self-check %s)\n", ISAL_VERSION_STRING,
	       in->crc_ok ? "ok" : "FAILED");

	printf("compression methods:\n");
	for (size_t i = 0; i < in->ncodecs; i++) {
		const struct lm_codec_ops *c = in->codecs[i];
		const struct engine_info *e = engine_of(c->name);
		char levels[32];

		snprintf(levels, sizeof(levels), "%d..%d", c->min_level, c->max_level);
		printf("  %-7s levels %-6s default %-3d engine %s%s%s\n", c->name, levels,
		       c->default_level, e->engine, e->version ? " " : "",
		       e->version ? e->version() : "");
	}
	for (size_t i = 0; i < COUNT(unbuilt_methods); i++)
		printf("  %s: not built: %s\n", unbuilt_methods[i].name, unbuilt_methods[i].reason);

	printf("zero-page detection engines:\n");
	printf("  multifd (cpu SIMD: %s)\n", in->zero_impl);
	printf("  dsa: not built\n");
	printf("dirty trackers (best first; auto picks the first usable):\n");
	size_t nt;
	const struct lm_tracker_ops *const *t = lm_tracker_table(&nt);
	for (size_t i = 0; i < nt; i++) {
		const char *why = "";
		int r = t[i]->probe(&why);
		printf("  %-11s %s%s\n", t[i]->name, r ? "not usable: " : "usable", r ? why : "");
	}
	printf("  %-11s the embedder's dirty log (livemig_set_dirty_log)\n", "external");
}

/* Our strings are plain ASCII names, but escape anyway: it is JSON. */
static void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void print_json(const struct info *in)
{
	printf("{\n  \"version\": ");
	json_str(LIVEMIG_VERSION);
	printf(",\n  \"cpu\": {");
	for (size_t i = 0; i < COUNT(cpu_features); i++) {
		printf("%s", i ? ", " : "");
		json_str(cpu_features[i]);
		printf(": %s", in->cpu[i] ? "true" : "false");
	}
	printf("},\n  \"crc32c\": {\"engine\": \"isa-l crc32_iscsi\", \"version\": ");
	json_str(ISAL_VERSION_STRING);
	printf(", \"self_check\": %s},\n", in->crc_ok ? "true" : "false");

	printf("  \"methods\": [\n");
	for (size_t i = 0; i < in->ncodecs; i++) {
		const struct lm_codec_ops *c = in->codecs[i];
		const struct engine_info *e = engine_of(c->name);

		printf("    {\"name\": ");
		json_str(c->name);
		printf(", \"built\": true, \"min_level\": %d, \"max_level\": %d, "
		       "\"default_level\": %d, \"engine\": ",
		       c->min_level, c->max_level, c->default_level);
		json_str(e->engine);
		printf(", \"version\": ");
		if (e->version)
			json_str(e->version());
		else
			printf("null");
		printf("},\n");
	}
	for (size_t i = 0; i < COUNT(unbuilt_methods); i++) {
		printf("    {\"name\": ");
		json_str(unbuilt_methods[i].name);
		printf(", \"built\": false, \"reason\": ");
		json_str(unbuilt_methods[i].reason);
		printf("}%s\n", i + 1 < COUNT(unbuilt_methods) ? "," : "");
	}
	printf("  ],\n  \"zero_page_engines\": [\n");
	printf("    {\"name\": \"multifd\", \"built\": true, \"simd\": ");
	json_str(in->zero_impl);
	printf("},\n    {\"name\": \"dsa\", \"built\": false}\n  ],\n");
	printf("  \"dirty_trackers\": [\n");
	size_t nt;
	const struct lm_tracker_ops *const *t = lm_tracker_table(&nt);
	for (size_t i = 0; i < nt; i++) {
		const char *why = "";
		int r = t[i]->probe(&why);
		printf("    {\"name\": ");
		json_str(t[i]->name);
		printf(", \"usable\": %s, \"reason\": ", r ? "false" : "true");
		json_str(r ? why : "");
		printf("},\n");
	}
	printf("    {\"name\": \"external\", \"usable\": true, \"reason\": \"\"}\n  ]\n}\n");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: livemig info [--json]\n"
		   "  Prints the version, CPU features and the engines this build has.\n");
}

int cli_info(int argc, char **argv)
{
	struct info in;
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "livemig info: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	gather(&in);
	if (json)
		print_json(&in);
	else
		print_text(&in);
	return fflush(stdout) == 0 ? 0 : 1;
}
