/* SPDX-License-Identifier: MIT */
/*
 * livemig info [--json]: what this build and this CPU can do.  The library
 * says it (livemig_info_json); this prints that JSON, or one screen of text
 * made from it.  Only the public API: an embedder can do the same.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "livemig/livemig.h"

/* The JSON text, malloc'ed; NULL on failure (said on stderr). */
static char *info_json(void)
{
	char *buf = NULL;
	int n = livemig_info_json(NULL, 0);

	/* Each call probes again: retry if the answer grew meanwhile. */
	while (n >= 0) {
		char *p = realloc(buf, (size_t)n + 1);
		if (!p)
			break;
		buf = p;
		int m = livemig_info_json(buf, (size_t)n + 1);
		if (m >= 0 && m <= n)
			return buf;
		n = m;
	}
	free(buf);
	fprintf(stderr, "livemig info: %s\n", strerror(n < 0 ? -n : ENOMEM));
	return NULL;
}

/* Members of the info object; "" or false when absent. */
static const char *str(json_object *o, const char *key)
{
	json_object *v;
	const char *s = json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
	return s ? s : "";
}

static bool flag(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static bool has(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && v;
}

static json_object *list(json_object *o, const char *key, size_t *n)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_array))
		v = NULL;
	*n = v ? json_object_array_length(v) : 0;
	return v;
}

static void print_methods(json_object *in)
{
	size_t n;
	json_object *arr = list(in, "methods", &n);

	printf("compression methods (engine in use first):\n");
	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(arr, i);
		json_object *v;
		char levels[32];

		json_object_object_get_ex(m, "min_level", &v);
		int lo = json_object_get_int(v);
		json_object_object_get_ex(m, "max_level", &v);
		snprintf(levels, sizeof(levels), "%d..%d", lo, json_object_get_int(v));
		json_object_object_get_ex(m, "default_level", &v);
		printf("  %-7s levels %-6s default %-3d ", str(m, "name"), levels,
		       json_object_get_int(v));
		if (!has(m, "fallback")) /* a library, not engines */
			printf("engine %s%s%s\n", str(m, "engine"), has(m, "version") ? " " : "",
			       str(m, "version"));
		else if (flag(m, "hardware"))
			printf("engine %s (hardware), fallback %s\n", str(m, "engine"),
			       str(m, "fallback"));
		else
			printf("engine %s (software)\n", str(m, "engine"));
	}
}

static void print_text(json_object *in)
{
	size_t n;
	json_object *arr, *cpu, *crc = NULL;

	printf("livemig %s\n", str(in, "version"));
	printf("cpu:");
	if (json_object_object_get_ex(in, "cpu", &cpu)) {
		json_object_object_foreach(cpu, feature, on)
			printf(" %s%s", json_object_get_boolean(on) ? "" : "-", feature);
	}
	printf("\n");
	json_object_object_get_ex(in, "crc32c", &crc);
	printf("crc32c: %s (%s %s, self-check %s)\n", str(crc, "engine"), str(crc, "library"),
	       str(crc, "version"), flag(crc, "self_check") ? "ok" : "FAILED");

	print_methods(in);
	printf("compression engines (hardware first):\n");
	arr = list(in, "engines", &n);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		bool ok = flag(e, "usable");

		printf("  %-7s for %-7s %-9s %s%s\n", str(e, "name"), str(e, "method"),
		       flag(e, "hardware") ? "hardware" : "software", ok ? "usable" : "",
		       ok ? "" : str(e, "why"));
	}

	printf("zero-page detection engines:\n");
	arr = list(in, "zero_page_engines", &n);
	for (size_t i = 0; i < n; i++) {
		json_object *z = json_object_array_get_idx(arr, i);

		printf("  %-7s %s%s\n", str(z, "name"),
		       flag(z, "usable") ? "usable: " : "not usable: ", str(z, "why"));
	}

	json_object *tls = NULL;
	json_object_object_get_ex(in, "tls", &tls);
	printf("tls: %s %s (tls-creds psk:DIR or x509:DIR); records sealed %s\n",
	       str(tls, "library"), str(tls, "version"), str(tls, "records"));

	printf("dirty trackers (best first; auto picks the first usable):\n");
	arr = list(in, "dirty_trackers", &n);
	for (size_t i = 0; i < n; i++) {
		json_object *t = json_object_array_get_idx(arr, i);

		if (!flag(t, "auto")) /* external: there when the embedder gives a log */
			printf("  %-11s %s\n", str(t, "name"), str(t, "help"));
		else if (flag(t, "usable"))
			printf("  %-11s usable\n", str(t, "name"));
		else
			printf("  %-11s not usable: %s\n", str(t, "name"), str(t, "reason"));
	}
}

/* Where the preload library for QEMU is (docs/qemu.md). */
static void print_track_shim(json_object *in)
{
	json_object *t = NULL;
	json_object_object_get_ex(in, "track_shim", &t);
	if (has(t, "path"))
		printf("tracking shim (LD_PRELOAD into QEMU for uffd-remote): %s\n", str(t, "path"));
	else
		printf("tracking shim: liblivemig-track.so not found (an install puts it in %s)\n",
		       str(t, "libdir"));
}

static void usage(FILE *f)
{
	fprintf(f, "usage: livemig info [--json]\n"
		   "  Prints the version, CPU features and the engines this build has.\n");
}

int cli_info(int argc, char **argv)
{
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
	char *text = info_json();
	if (!text)
		return 1;
	if (json) {
		fputs(text, stdout);
	} else {
		json_object *in = json_tokener_parse(text);
		if (!in) {
			fprintf(stderr, "livemig info: the library's JSON does not parse\n");
			free(text);
			return 1;
		}
		print_text(in);
		print_track_shim(in);
		json_object_put(in);
	}
	free(text);
	return fflush(stdout) == 0 ? 0 : 1;
}
