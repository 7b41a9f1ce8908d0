/* SPDX-License-Identifier: MIT */
/*
 * track_probe PID ADDR SIZE FILE: the uffd-remote tracker on a running
 * process (QEMU) that maps FILE shared at ADDR (hex) for SIZE bytes, driven
 * line by line from stdin for tests/integration/test_qemu_track.py:
 *   "sync"  -> one sync; prints "PAGES MS" (pages reported, time taken)
 *   "vcpus TID..." -> lm_throttle_open on those threads of PID (the cgroup
 *              is removed on quit); prints "ok" or "error: WHY"
 *   "throttle PCT" -> lm_throttle_set; prints "ok" or "error: WHY"
 *   "quit"  -> exits 0
 * Prints "ready" once the tracker started, or "error: WHY" and exits 2.
 * FILE is mapped here too, shared, as livemig maps guest RAM.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dirty/tracker.h"
#include "track/throttle.h"

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	const struct lm_tracker_ops *ops;
	char line[64], why[256];
	struct lm_throttle *thr = NULL;
	void *ctx;

	if (argc != 5) {
		fprintf(stderr, "usage: %s PID ADDR SIZE FILE\n", argv[0]);
		return 2;
	}
	uint64_t size = strtoull(argv[3], NULL, 0);
	int fd = open(argv[4], O_RDWR | O_CLOEXEC);
	void *host = fd < 0 ? MAP_FAILED : mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	uint64_t *bitmap = calloc((size / 4096 + 63) / 64, sizeof(uint64_t));

	if (host == MAP_FAILED || !bitmap) {
		perror(argv[4]);
		return 2;
	}
	struct lm_track_region r = { host, size };
	struct lm_track_remote rem = { (pid_t)atoi(argv[1]), strtoull(argv[2], NULL, 16) };
	struct lm_tracker_cfg cfg = { .regions = &r, .nregions = 1, .remote = &rem };
	if (lm_tracker_open(&cfg, "auto", &ops, &ctx, why, sizeof(why))) {
		printf("error: %s\n", why);
		return 2;
	}
	printf("ready %s\n", ops->name);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (!strcmp(line, "sync\n")) {
			double t0 = now_ms();
			int64_t n = ops->sync(ctx, (uint64_t *const[]){ bitmap });

			memset(bitmap, 0, (size / 4096 + 63) / 64 * sizeof(uint64_t));
			printf("%" PRId64 " %.3f\n", n, now_ms() - t0);
			fflush(stdout);
		} else if (!strncmp(line, "vcpus ", 6) && !thr) {
			char *p = line + 6;
			pid_t tids[64];
			unsigned n = 0;

			while (n < 64 && *p && *p != '\n')
				tids[n++] = (pid_t)strtol(p, &p, 10);
			if (lm_throttle_open(&thr, rem.pid, tids, n, why, sizeof(why)))
				printf("error: %s\n", why);
			else
				printf("ok\n");
			fflush(stdout);
		} else if (!strncmp(line, "throttle ", 9) && thr) {
			int e = lm_throttle_set(thr, atoi(line + 9));

			printf(e ? "error: %s\n" : "ok\n", strerror(-e));
			fflush(stdout);
		} else if (!strcmp(line, "quit\n")) {
			break;
		}
	}
	lm_throttle_close(thr);
	ops->stop(ctx);
	return 0;
}
