/* SPDX-License-Identifier: MIT */
/*
 * The control socket from the CLI's side: --control unix:PATH starts the
 * QMP server (src/qmp/server.h) for a migrating subcommand, and
 * `livemig ctl PATH COMMAND [JSON] | --events` is a small QMP client for
 * it (or for any QMP socket).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "qmp/qmp.h"
#include "qmp/server.h"
#include "util/json.h"

#define CTL_CONNECT_MS 5000
#define CTL_COMMAND_MS 10000

int cli_begin(const char *who, livemig_session *s, const char *uri, struct cli_signals *sig,
	      lm_qmp_server **srv)
{
	char err[400];
	*srv = NULL;
	cli_signals_block(sig);
	if (!uri)
		return 0;
	if (strncmp(uri, "unix:", 5) || !uri[5]) {
		fprintf(stderr, "livemig %s: --control '%s': expected unix:PATH\n", who, uri);
		return 2;
	}
	int r = lm_qmp_server_start(s, uri + 5, srv, err, sizeof(err));
	if (r) {
		fprintf(stderr, "livemig %s: --control: %s\n", who, err);
		return r == -EINVAL ? 2 : 1;
	}
	return 0;
}

static const char ctl_usage[] =
	"usage: livemig ctl PATH COMMAND [JSON-ARGUMENTS]\n"
	"       livemig ctl PATH --events\n"
	"\n"
	"Talks QMP to the control socket PATH of a running livemig (--control unix:PATH).\n"
	"COMMAND: query-migrate, query-migrate-parameters, query-migrate-capabilities,\n"
	"  migrate-set-parameters '{\"max-bandwidth\": 104857600}' (the parameters marked\n"
	"  changeable while running), migrate_cancel, query-commands.  Prints the\n"
	"  return value as JSON and exits 0, or prints the error and exits 1.\n"
	"--events: prints the events (MIGRATION, MIGRATION_PASS), one JSON object a\n"
	"  line, until the migration ends: exit 0 when it completed, 1 when it failed\n"
	"  or was cancelled, or when the socket closes first (0 after \"unknown\").\n"
	"Exit status 2: a usage error (nothing sent).\n";

/* Prints events until a final status: 0 completed, 1 failed or cancelled;
 * or until the socket closes: 0 after "unknown" (resume-source may still
 * settle it, in that process), else 1. */
static int events(lm_qmp *q)
{
	bool in_doubt = false;
	for (;;) {
		json_object *ev;
		int r = lm_qmp_wait_event(q, NULL, 1000, &ev);
		if (r == -ETIMEDOUT)
			continue;
		if (r) {
			if (in_doubt)
				return 0;
			fprintf(stderr, "livemig ctl: %s\n", r == -ECONNRESET
				? "the control socket closed before the migration ended"
				: lm_qmp_error(q));
			return 1;
		}
		printf("%s\n", json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN));
		fflush(stdout);
		/* MIGRATION's; MIGRATION_PASS has none. */
		const char *st = lm_json_get_str(lm_json_get_obj(ev, "data"), "status");
		bool ok = st && !strcmp(st, "completed");
		bool failed = st && (!strcmp(st, "failed") || !strcmp(st, "cancelled"));
		in_doubt = st ? !strcmp(st, "unknown") : in_doubt;
		json_object_put(ev);
		if (ok || failed)
			return failed;
	}
}

int cli_ctl(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(ctl_usage, stdout);
		return 0;
	}
	if (argc < 3 || argc > 4 || (argc == 4 && !strcmp(argv[2], "--events"))) {
		fputs(ctl_usage, stderr);
		return 2;
	}
	json_object *args = NULL;
	if (argc == 4) {
		args = json_tokener_parse(argv[3]);
		if (!json_object_is_type(args, json_type_object)) {
			fprintf(stderr, "livemig ctl: '%s': the arguments must be a JSON object such "
				"as '{\"max-bandwidth\": 104857600}'\n", argv[3]);
			json_object_put(args);
			return 2;
		}
	}
	char err[400];
	lm_qmp *q = lm_qmp_connect(argv[1], CTL_CONNECT_MS, err, sizeof(err));
	if (!q) {
		fprintf(stderr, "livemig ctl: %s\n", err);
		json_object_put(args);
		return 1;
	}
	int rc;
	if (!strcmp(argv[2], "--events")) {
		rc = events(q);
	} else {
		json_object *ret = NULL;
		int r = lm_qmp_execute(q, argv[2], args, CTL_COMMAND_MS, &ret);
		if (r) {
			fprintf(stderr, "livemig ctl: %s\n", lm_qmp_error(q));
			rc = 1;
		} else {
			/* json-c prints an empty object pretty as two lines */
			bool empty = json_object_is_type(ret, json_type_object) &&
				     !json_object_object_length(ret);
			printf("%s\n", empty ? "{}" : json_object_to_json_string_ext(ret,
						JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
			rc = 0;
		}
		json_object_put(ret);
	}
	json_object_put(args);
	lm_qmp_close(q);
	return rc;
}
