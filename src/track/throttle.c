/* SPDX-License-Identifier: MIT */
/* CPU quota on another process's vCPU threads; see throttle.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "track/throttle.h"
#include "util/util.h"

#define ROOT "/sys/fs/cgroup"
#define ROOT_V1 ROOT "/cpu"
#define MAX_TIDS LM_THROTTLE_MAX_THREADS
#define PERIOD_US 100000L /* the period measured in bench/qemu-throttle.py */

struct lm_throttle {
	bool v2;
	pid_t pid;
	unsigned n;
	pid_t tids[MAX_TIDS];
	char top[256];  /* our cgroup (v2: holds the process) */
	char dir[300];  /* the one with the quota and the threads */
	char home[512]; /* where the threads (v1) or the process (v2) were */
	double cpu0, wall0; /* CPU seconds of the threads and wall time at the last full speed */
	double share;       /* CPUs they used at full speed; 0 = not measured yet */
};

/* Writes the formatted value to dir/name: 0 or -errno. */
static int put(const char *dir, const char *name, const char *fmt, ...)
{
	char path[600], val[64];
	va_list ap;
	int fd, n, e = 0;

	va_start(ap, fmt);
	n = vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (write(fd, val, (size_t)n) != n)
		e = -errno;
	close(fd);
	return e;
}

/* The cgroup of task tid (v2: the "0::" line; v1: the one listing cpu),
 * as a directory under the hierarchy's mount. */
static int cgroup_of(pid_t tid, bool v2, char *dir, size_t len)
{
	char path[64], line[512];
	int e = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)tid);
	if (!(f = fopen(path, "re")))
		return -errno;
	while (e && fgets(line, sizeof(line), f)) {
		char *ctl = strchr(line, ':'), *p = ctl ? strchr(ctl + 1, ':') : NULL;

		if (!p)
			continue;
		*p++ = 0;
		p[strcspn(p, "\n")] = 0;
		ctl++;
		/* v1: "N:cpu:/path" or "N:cpu,cpuacct:/path" */
		bool match = v2 && !*ctl;
		for (char *c = strtok(ctl, ","); !v2 && c; c = strtok(NULL, ","))
			match |= !strcmp(c, "cpu");
		if (match) {
			snprintf(dir, len, "%s%s", v2 ? ROOT : ROOT_V1, strcmp(p, "/") ? p : "");
			e = 0;
		}
	}
	fclose(f);
	return e;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* utime + stime of the threads, in seconds; exited ones count 0. */
static double cpu_seconds(const struct lm_throttle *t)
{
	double s = 0;

	for (unsigned i = 0; i < t->n; i++) {
		char path[64], buf[1024], *p;
		unsigned long long ut, st;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)t->pid, (int)t->tids[i]);
		if (!(f = fopen(path, "re")))
			continue;
		/* After the command name, which may hold spaces: field 14, 15. */
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
			s += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
		fclose(f);
	}
	return s;
}

void lm_throttle_close(struct lm_throttle *t)
{
	if (!t)
		return;
	if (t->dir[0])
		put(t->dir, t->v2 ? "cpu.max" : "cpu.cfs_quota_us", t->v2 ? "max" : "-1");
	if (t->v2 && t->home[0])
		put(t->home, "cgroup.procs", "%d", (int)t->pid); /* every thread */
	else if (t->home[0])
		for (unsigned i = 0; i < t->n; i++)
			put(t->home, "tasks", "%d", (int)t->tids[i]);
	/* Empty now; the kernel refuses (EBUSY) if not, and leaves it. */
	if (t->v2 && t->dir[0])
		rmdir(t->dir);
	if (t->top[0])
		rmdir(t->top);
	free(t);
}

/* Finds where the threads (v1) or the process (v2) are, then creates
 * ROOT/livemig-throttle-PID - or takes it over from a run that was killed
 * before it could remove it (its quota is lifted by the caller; where the
 * threads were before that run is lost: they go back to root). */
static int make_top(struct lm_throttle *t, const char *root, char *why, size_t len)
{
	pid_t who = t->v2 ? t->pid : t->tids[0];
	int e;

	if ((e = cgroup_of(who, t->v2, t->home, sizeof(t->home)))) {
		snprintf(why, len, "cannot read the cgroup of %d", (int)who);
		return e;
	}
	int n = snprintf(t->top, sizeof(t->top), "%s/livemig-throttle-%d", root, (int)t->pid);
	if (!strncmp(t->home, t->top, (size_t)n) && (!t->home[n] || t->home[n] == '/'))
		snprintf(t->home, sizeof(t->home), "%s", root);
	if (mkdir(t->top, 0755) && errno != EEXIST) {
		e = -errno;
		snprintf(why, len, "cannot create the cgroup %s: %s", t->top, strerror(-e));
		t->top[0] = 0;
	}
	return e;
}

/* Writes each thread id to t->dir/file. */
static int move_threads(struct lm_throttle *t, const char *file, char *why, size_t len)
{
	int e;

	for (unsigned i = 0; i < t->n; i++)
		if ((e = put(t->dir, file, "%d", (int)t->tids[i]))) {
			snprintf(why, len, "cannot move thread %d into %s: %s", (int)t->tids[i],
				 t->dir, strerror(-e));
			return e;
		}
	return 0;
}

static int open_v2(struct lm_throttle *t, char *why, size_t len)
{
	int e;

	if ((e = make_top(t, ROOT, why, len)))
		return e;
	/* Threads of one process in different cgroups: a threaded subtree
	 * under a domain holding the whole process. */
	snprintf(t->dir, sizeof(t->dir), "%s/vcpu", t->top);
	if ((e = put(ROOT, "cgroup.subtree_control", "+cpu")) ||
	    (e = put(t->top, "cgroup.procs", "%d", (int)t->pid)) ||
	    (mkdir(t->dir, 0755) && errno != EEXIST && (e = -errno)) ||
	    (e = put(t->dir, "cgroup.type", "threaded")) ||
	    (e = put(t->top, "cgroup.subtree_control", "+cpu")) ||
	    (e = put(t->dir, "cpu.max", "max"))) {
		snprintf(why, len, "cannot set up the threaded cgroup %s: %s", t->dir, strerror(-e));
		return e;
	}
	return move_threads(t, "cgroup.threads", why, len);
}

static int open_v1(struct lm_throttle *t, char *why, size_t len)
{
	int e;

	if ((e = make_top(t, ROOT_V1, why, len)))
		return e;
	snprintf(t->dir, sizeof(t->dir), "%s", t->top);
	if ((e = put(t->dir, "cpu.cfs_quota_us", "-1")) ||
	    (e = put(t->dir, "cpu.cfs_period_us", "%ld", PERIOD_US))) {
		snprintf(why, len, "cannot set the period of %s: %s", t->dir, strerror(-e));
		return e;
	}
	return move_threads(t, "tasks", why, len);
}

int lm_throttle_open(struct lm_throttle **tp, pid_t pid, const pid_t *tids, unsigned n,
		     char *why, size_t len)
{
	struct lm_throttle *t;
	struct stat st;
	int e;

	*tp = NULL;
	if (pid <= 0 || !tids || !n || n > MAX_TIDS) {
		snprintf(why, len, "throttle: a pid and 1 to %d thread ids", MAX_TIDS);
		return -EINVAL;
	}
	if (!(t = calloc(1, sizeof(*t))))
		return -ENOMEM;
	t->pid = pid;
	t->n = n;
	memcpy(t->tids, tids, n * sizeof(*tids));
	t->v2 = lm_file_has_word(ROOT "/cgroup.controllers", "cpu");
	if (t->v2)
		e = open_v2(t, why, len);
	else if (!stat(ROOT_V1 "/cpu.cfs_quota_us", &st))
		e = open_v1(t, why, len);
	else {
		snprintf(why, len, "no cgroup cpu controller (neither " ROOT "/cgroup.controllers "
			 "nor " ROOT_V1 ")");
		e = -ENOENT;
	}
	if (e) {
		if (!t->top[0])
			t->home[0] = 0; /* nothing was moved */
		lm_throttle_close(t);
		return e;
	}
	t->cpu0 = cpu_seconds(t);
	t->wall0 = now();
	*tp = t;
	return 0;
}

int lm_throttle_set(struct lm_throttle *t, int percent)
{
	if (!t || percent < 0 || percent > 99)
		return -EINVAL;
	if (!percent) {
		t->share = 0;
		t->cpu0 = cpu_seconds(t);
		t->wall0 = now();
		return put(t->dir, t->v2 ? "cpu.max" : "cpu.cfs_quota_us", t->v2 ? "max" : "-1");
	}
	if (!t->share) {
		double wall = now() - t->wall0, s = wall > 0 ? (cpu_seconds(t) - t->cpu0) / wall : 0;

		/* Too short a sample, or idle vCPUs: assume they had a CPU each. */
		t->share = s < 0.05 ? (double)t->n : s > t->n ? (double)t->n : s;
	}
	long quota = (long)(PERIOD_US * t->share * (100 - percent) / 100);
	if (quota < 1000)
		quota = 1000; /* the kernel's minimum */
	return t->v2 ? put(t->dir, "cpu.max", "%ld %ld", quota, PERIOD_US)
		     : put(t->dir, "cpu.cfs_quota_us", "%ld", quota);
}
