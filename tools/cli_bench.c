/* SPDX-License-Identifier: MIT */
/*
 * livemig bench: a destination and a source as two processes of this
 * binary on this machine over loopback, then one row with the seeds'
 * columns.  The source's JSON (which carries the destination's CPU time as
 * reported on the main channel) is the bench's JSON.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "livemig/livemig.h"

#define DEFAULT_MEM "4G"

static const char bench_usage[] =
	"usage: livemig bench [--mem SIZE] [--fill SPEC] [--fill-ratio R] [--set NAME=VALUE]...\n"
	"                     [--cap NAME=on|off]... [--uri URI] [--json FILE]\n"
	"                     [--dirty-rate RATE [--dirty-threads N] [--dirty-hot SIZE]\n"
	"                     [--dirty-pattern uniform|zipf]] [--timeout SECONDS]\n"
	"Runs 'livemig dest' and 'livemig source' as two processes over loopback\n"
	"(default tcp:127.0.0.1:<free port>) and prints one row: total time, downtime,\n"
	"network bandwidth, pages per second, CPU of each side.  --mem defaults to " DEFAULT_MEM
	"\n(or the file's size with --fill file:PATH), --fill to system.  See 'livemig --help'.\n";

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return ntohs(a.sin_port);
}

/* Finds "key": NUMBER (first occurrence) in our own JSON output. */
static double json_num(const char *js, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	const char *p = strstr(js, pat);
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

static const char *json_str(const char *js, const char *key, char *out, size_t len)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	const char *p = strstr(js, pat);
	out[0] = 0;
	if (p) {
		p += strlen(pat);
		size_t n = strcspn(p, ",}\n");
		if (*p == '"') {
			p++;
			n = strcspn(p, "\"");
		}
		snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p);
	}
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

/* Whether the destination gets this option: --set and --cap that apply to
 * it, and unknown or malformed ones (it explains them, exit 2). */
static bool for_dest(const char *opt, const char *value)
{
	if (strcmp(opt, "--set") && strcmp(opt, "--cap"))
		return false;
	char name[128];
	size_t n = strcspn(value, "=");
	if (!value[n] || n >= sizeof(name))
		return true;
	memcpy(name, value, n);
	name[n] = 0;
	const struct livemig_param_info *pi = livemig_param_find(name);
	return !pi || pi->destination;
}

int cli_bench(int argc, char **argv)
{
	const char *json = NULL, *uri = NULL, *mem = NULL;
	char *pass[256]; /* --set/--cap/--fill... forwarded */
	int npass = 0;
	bool file_fill = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help")) {
			fputs(bench_usage, stdout);
			return 0;
		}
		bool takes = !strcmp(a, "--mem") || !strcmp(a, "--fill") ||
			     !strcmp(a, "--fill-ratio") || !strcmp(a, "--set") ||
			     !strcmp(a, "--cap") || !strcmp(a, "--json") || !strcmp(a, "--uri") ||
			     !strcmp(a, "--dirty-rate") || !strcmp(a, "--dirty-threads") ||
			     !strcmp(a, "--dirty-hot") || !strcmp(a, "--dirty-pattern") ||
			     !strcmp(a, "--timeout");
		if (!takes) {
			fprintf(stderr, "livemig bench: unknown option '%s'\n%s", a, bench_usage);
			return 2;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "livemig bench: %s needs a value\n", a);
			return 2;
		}
		const char *v = argv[++i];
		if (!strcmp(a, "--json"))
			json = v;
		else if (!strcmp(a, "--uri"))
			uri = v;
		else if (!strcmp(a, "--mem"))
			mem = v;
		else {
			if (npass > 240) {
				fprintf(stderr, "livemig bench: too many options\n");
				return 2;
			}
			if (!strcmp(a, "--fill") && !strncmp(v, "file:", 5))
				file_fill = true;
			pass[npass++] = (char *)a;
			pass[npass++] = (char *)v;
		}
	}

	char tmpl[] = "/tmp/livemig-bench-XXXXXX";
	if (!mkdtemp(tmpl)) {
		perror("livemig bench: mkdtemp");
		return 1;
	}
	char uribuf[160], src_json[96], dst_json[96];
	if (!uri) {
		int port = free_port();
		if (port < 0) {
			perror("livemig bench: no free loopback port");
			return 1;
		}
		snprintf(uribuf, sizeof(uribuf), "tcp:127.0.0.1:%d", port);
		uri = uribuf;
	}
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
	char *dargv[300];
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
	for (int i = 0; i < npass; i += 2) {
		if (for_dest(pass[i], pass[i + 1])) {
			dargv[dn++] = pass[i];
			dargv[dn++] = pass[i + 1];
		}
	}
	dargv[dn] = NULL;
	pid_t dpid = spawn(dargv, 1, ready[1]);
	close(ready[1]);
	char byte;
	if (read(ready[0], &byte, 1) != 1) {
		int st = 0;
		close(ready[0]);
		waitpid(dpid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 2)
			return 2; /* a bad setting, already explained */
		fprintf(stderr, "livemig bench: the destination did not start\n");
		return 1;
	}
	close(ready[0]);

	char *sargv[300];
	int sn = 0;
	sargv[sn++] = "livemig";
	sargv[sn++] = "source";
	sargv[sn++] = "--connect";
	sargv[sn++] = (char *)uri;
	if (mem || !file_fill) {
		sargv[sn++] = "--mem";
		sargv[sn++] = (char *)(mem ? mem : DEFAULT_MEM);
	}
	sargv[sn++] = "--json";
	sargv[sn++] = src_json;
	for (int i = 0; i < npass; i++)
		sargv[sn++] = pass[i];
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
	int rc = 0;
	if (scode == 2) {
		rc = 2; /* usage error, already explained by the source */
	} else if (!sj || scode || dcode) {
		fprintf(stderr, "livemig bench: migration failed (source exit %d, destination exit %d)\n",
			scode, dcode);
		rc = 1;
	}
	if (sj && rc != 2) {
		char method[32], verify[16];
		json_str(sj, "multifd-compression", method, sizeof(method));
		json_str(sj, "match", verify, sizeof(verify));
		printf("%-6s %5s %8s %10s %9s %10s %12s %8s %8s %6s %s\n", "method", "level",
		       "channels", "total(ms)", "down(ms)", "bw(mbps)", "pages/s", "src-cpu",
		       "dst-cpu", "ratio", "verify");
		printf("%-6s %5.0f %8.0f %10.0f %9.0f %10.0f %12.0f %7.0f%% %7.0f%% %6.2f %s\n",
		       method, json_num(sj, "level"), json_num(sj, "multifd-channels"),
		       json_num(sj, "total-time"), json_num(sj, "downtime"), json_num(sj, "mbps"),
		       json_num(sj, "pages-per-second"), json_num(sj, "source-percent"),
		       json_num(sj, "destination-percent"), json_num(sj, "ratio"),
		       !strcmp(verify, "true")	  ? "match"
		       : !strcmp(verify, "false") ? "MISMATCH"
						  : "not-reached");
		if (json) {
			FILE *f = fopen(json, "w");
			if (!f || fputs(sj, f) < 0 || fclose(f)) {
				fprintf(stderr, "livemig bench: cannot write %s\n", json);
				rc = rc ? rc : 1;
			}
		}
	}
	free(sj);
	free(dj);
	unlink(src_json);
	unlink(dst_json);
	rmdir(tmpl);
	return rc;
}
