/* SPDX-License-Identifier: MIT */
/*
 * livemig bench: a destination and a source as two processes of this
 * binary on this machine over loopback, then one row with the seeds'
 * columns.  The source's JSON (which carries the destination's CPU time as
 * reported on the main channel) is the bench's JSON.
 *
 * livemig bench --matrix [ARGS]: the sweep of bench/matrix.py (channels x
 * methods x links, QEMU beside livemig, tables, JSON lines, plots), exec'd
 * with this binary as its livemig.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "livemig/livemig.h"

/* The first member named key in document order, at any depth of the
 * source's JSON, or NULL. */
static json_object *member(json_object *o, const char *key)
{
	if (!json_object_is_type(o, json_type_object))
		return NULL;
	json_object_object_foreach(o, k, v) {
		if (!strcmp(k, key))
			return v;
		json_object *in = member(v, key);
		if (in)
			return in;
	}
	return NULL;
}

/* A number column: the value, or "-" for a figure that is absent or null
 * (a CPU time nobody measured). */
static const char *num(json_object *root, const char *key, const char *fmt, char *out, size_t len)
{
	json_object *v = member(root, key);
	if (v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		snprintf(out, len, fmt, json_object_get_double(v));
	else
		snprintf(out, len, "-");
	return out;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, 65536);
	if (buf)
		fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

static pid_t spawn(char **argv, int quiet_stdout, int keep_fd)
{
	pid_t pid = fork();
	if (pid < 0) {
		perror("livemig bench: fork");
		exit(1);
	}
	if (pid == 0) {
		if (quiet_stdout) {
			int fd = open("/dev/null", O_WRONLY);
			dup2(fd, 1);
		}
		(void)keep_fd;
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	return pid;
}

/* Whether side (source or destination) gets this option: --set and --cap
 * that apply to it (all were checked before); the source gets every other
 * one. */
static bool for_side(const char *opt, const char *value, bool dest)
{
	if (strcmp(opt, "--set") && strcmp(opt, "--cap"))
		return !dest;
	char name[128];
	size_t n = strcspn(value, "=");
	if (!value[n] || n >= sizeof(name))
		return true;
	memcpy(name, value, n);
	name[n] = 0;
	const struct livemig_param_info *pi = livemig_param_find(name);
	return !pi || (dest ? pi->destination : pi->source);
}

/* Every --set and --cap on a session of the side it is for: a bad one is a
 * usage error before any process starts.  0 or 2. */
static int check_settings(const struct opts *o)
{
	struct opts side[2] = {*o, *o}; /* [0] source, [1] destination */
	side[0].nsets = side[1].nsets = side[0].ncaps = side[1].ncaps = 0;
	for (int i = 0; i < o->nsets; i++) {
		bool d = !for_side("--set", o->sets[i], false);
		side[d].sets[side[d].nsets++] = o->sets[i];
	}
	for (int i = 0; i < o->ncaps; i++) {
		bool d = !for_side("--cap", o->caps[i], false);
		side[d].caps[side[d].ncaps++] = o->caps[i];
	}
	int rc = 0;
	for (int d = 0; d < 2 && !rc; d++) {
		livemig_session *s = livemig_session_new(d ? LIVEMIG_DEST : LIVEMIG_SOURCE);
		rc = s ? cli_apply_settings(s, &side[d]) : 1;
		livemig_session_free(s);
	}
	return rc;
}

/* python3 matrix.py --livemig THIS-BINARY ARGS (argv without "--matrix"),
 * matrix.py found next to this binary: in the build tree's bench/ (meson
 * copies it there) or installed in ../share/livemig/.  Exec'd: returns only
 * on failure, 1.  For help (bench --help: the matrix's options after
 * bench's own) run and waited for instead, and 0 whatever it did. */
static int run_matrix(int argc, char **argv, bool help)
{
	static const char *const where[] = {"%s/bench/matrix.py", "%s/../share/livemig/matrix.py"};
	char exe[PATH_MAX], dir[PATH_MAX], script[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	bool found = false;
	if (n > 0) {
		exe[n] = 0;
		snprintf(dir, sizeof(dir), "%s", exe);
		*strrchr(dir, '/') = 0;
		for (size_t i = 0; i < sizeof(where) / sizeof(where[0]) && !found; i++) {
			snprintf(script, sizeof(script), where[i], dir);
			found = !access(script, R_OK);
		}
	}
	if (!found) {
		fprintf(help ? stdout : stderr, "livemig bench --matrix: matrix.py is not next to "
			"this binary (bench/ or ../share/livemig/)\n");
		return help ? 0 : 1;
	}
	char **args = calloc((size_t)argc + 5, sizeof(*args));
	if (!args)
		return 1;
	int k = 0;
	args[k++] = "python3";
	args[k++] = script;
	args[k++] = "--livemig";
	args[k++] = exe;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--matrix"))
			args[k++] = argv[i];
	fflush(stdout);
	pid_t pid = help ? fork() : 0;
	if (pid == 0) {
		execvp("python3", args);
		fprintf(stderr, "livemig bench --matrix: cannot run python3: %s\n", strerror(errno));
		if (help)
			_exit(1);
		free(args);
		return 1;
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
	free(args);
	return 0;
}

int cli_bench(int argc, char **argv)
{
	const char *json, *uri, *mem = NULL;
	const struct cli_given *pass[CLI_MAX_GIVEN]; /* --set/--cap/--fill... forwarded */
	int npass = 0;
	bool file_fill = false;
	struct opts o;

	/* --matrix anywhere: the sweep, with every other argument (its own
	 * --help included). */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--matrix"))
			return run_matrix(argc, argv, false);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			cli_usage(stdout, CLI_BENCH);
			printf("\nlivemig bench --matrix [OPTION]...  the seeds' tables: a sweep of "
			       "bench/matrix.py\n");
			char *h[] = {argv[0], "--help"};
			return run_matrix(2, h, true);
		}
	}

	/* Everything checked here, before a process starts. */
	int rc = cli_parse_opts(argc, argv, &o, CLI_BENCH);
	if (rc || (rc = check_settings(&o)) || (rc = cli_check_writable("bench", "--json", o.json)))
		return rc;
	json = o.json;
	uri = o.uri ? o.uri : "tcp:127.0.0.1:0";
	/* By the options' full names: "--js" is --json, bench's own. */
	for (int i = 0; i < o.ngiven; i++) {
		const struct cli_given *g = &o.given[i];
		if (!strcmp(g->flag, "--json") || !strcmp(g->flag, "--uri"))
			continue;
		if (!strcmp(g->flag, "--mem")) {
			mem = g->value;
			continue;
		}
		if (!strcmp(g->flag, "--fill") && !strncmp(g->value, "file:", 5))
			file_fill = true;
		pass[npass++] = g;
	}

	char tmpl[] = "/tmp/livemig-bench-XXXXXX";
	if (!mkdtemp(tmpl)) {
		perror("livemig bench: mkdtemp");
		return 1;
	}
	char uribuf[320], src_json[96], dst_json[96];
	snprintf(src_json, sizeof(src_json), "%s/source.json", tmpl);
	snprintf(dst_json, sizeof(dst_json), "%s/dest.json", tmpl);

	/* Destination: only the --set and --cap that apply to it; tells us
	 * when it listens. */
	int ready[2];
	if (pipe(ready)) {
		perror("livemig bench: pipe");
		return 1;
	}
	char fdbuf[16];
	snprintf(fdbuf, sizeof(fdbuf), "%d", ready[1]);
	char *dargv[16 + 2 * CLI_MAX_GIVEN];
	int dn = 0;
	dargv[dn++] = "livemig";
	dargv[dn++] = "dest";
	dargv[dn++] = "--listen";
	dargv[dn++] = (char *)uri;
	dargv[dn++] = "--no-progress";
	dargv[dn++] = "--ready-fd";
	dargv[dn++] = fdbuf;
	dargv[dn++] = "--json";
	dargv[dn++] = dst_json;
	for (int i = 0; i < npass; i++) {
		if (for_side(pass[i]->flag, pass[i]->value, true)) {
			dargv[dn++] = (char *)pass[i]->flag;
			if (pass[i]->value)
				dargv[dn++] = (char *)pass[i]->value;
		}
	}
	dargv[dn] = NULL;
	pid_t dpid = spawn(dargv, 1, ready[1]);
	close(ready[1]);
	/* The destination writes the URI it listens on (the real port for
	 * :0) and a newline. */
	ssize_t got = 0, r;
	while ((size_t)got < sizeof(uribuf) - 1 &&
	       (r = read(ready[0], uribuf + got, sizeof(uribuf) - 1 - (size_t)got)) > 0)
		got += r;
	uribuf[got] = 0;
	uribuf[strcspn(uribuf, "\n")] = 0;
	if (!uribuf[0]) {
		int st = 0;
		close(ready[0]);
		waitpid(dpid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 2)
			return 2; /* a bad setting, already explained */
		fprintf(stderr, "livemig bench: the destination did not start\n");
		return 1;
	}
	close(ready[0]);

	char *sargv[16 + 2 * CLI_MAX_GIVEN];
	int sn = 0;
	sargv[sn++] = "livemig";
	sargv[sn++] = "source";
	sargv[sn++] = "--connect";
	sargv[sn++] = uribuf;
	if (mem || !file_fill) {
		sargv[sn++] = "--mem";
		sargv[sn++] = (char *)(mem ? mem : CLI_BENCH_MEM);
	}
	sargv[sn++] = "--json";
	sargv[sn++] = src_json;
	for (int i = 0; i < npass; i++) {
		if (for_side(pass[i]->flag, pass[i]->value, false)) {
			sargv[sn++] = (char *)pass[i]->flag;
			if (pass[i]->value)
				sargv[sn++] = (char *)pass[i]->value;
		}
	}
	sargv[sn] = NULL;
	pid_t spid = spawn(sargv, 1, -1);

	int sst = 0, dst = 0;
	waitpid(spid, &sst, 0);
	if (!(WIFEXITED(sst) && WEXITSTATUS(sst) == 0))
		kill(dpid, SIGTERM); /* a source that failed early may leave it waiting */
	waitpid(dpid, &dst, 0);
	int scode = WIFEXITED(sst) ? WEXITSTATUS(sst) : 1;
	int dcode = WIFEXITED(dst) ? WEXITSTATUS(dst) : 1;

	char *sj = slurp(src_json), *dj = slurp(dst_json);
	rc = 0;
	if (scode == 2) {
		rc = 2; /* usage error, already explained by the source */
	} else if (!sj || scode || dcode) {
		fprintf(stderr, "livemig bench: migration failed (source exit %d, destination exit %d)\n",
			scode, dcode);
		rc = 1;
	}
	json_object *root = sj && rc != 2 ? json_tokener_parse(sj) : NULL;
	if (sj && rc != 2 && !root) {
		fprintf(stderr, "livemig bench: the source's JSON does not parse\n");
		rc = rc ? rc : 1;
	}
	if (root) {
		json_object *method = member(root, "multifd-compression");
		json_object *match = member(root, "match");
		char c[10][32];
		/* wire: the JSON's ram.mbps, QEMU's wire Mbit/s (10^6 bits). */
		printf("%-6s %5s %8s %10s %9s %12s %12s %8s %8s %6s %s\n", "method", "level",
		       "channels", "total(ms)", "down(ms)", "wire(Mbit/s)", "pages/s", "src-cpu",
		       "dst-cpu", "ratio", "verify");
		printf("%-6s %5s %8s %10s %9s %12s %12s %8s %8s %6s %s\n",
		       method ? json_object_get_string(method) : "-",
		       num(root, "level", "%.0f", c[0], 32),
		       num(root, "multifd-channels", "%.0f", c[1], 32),
		       num(root, "total-time", "%.0f", c[2], 32), num(root, "downtime", "%.0f", c[3], 32),
		       num(root, "mbps", "%.0f", c[4], 32), num(root, "pages-per-second", "%.0f", c[5], 32),
		       num(root, "source-percent", "%.0f%%", c[6], 32),
		       num(root, "destination-percent", "%.0f%%", c[7], 32),
		       num(root, "ratio", "%.2f", c[8], 32),
		       !match || !json_object_is_type(match, json_type_boolean) ? "not-reached"
		       : json_object_get_boolean(match)			       ? "match"
										       : "MISMATCH");
		if (json) {
			FILE *f = fopen(json, "w");
			if (!f || fputs(sj, f) < 0 || fclose(f)) {
				fprintf(stderr, "livemig bench: cannot write %s\n", json);
				rc = rc ? rc : 1;
			}
		}
	}
	json_object_put(root);
	free(sj);
	free(dj);
	unlink(src_json);
	unlink(dst_json);
	rmdir(tmpl);
	return rc;
}
