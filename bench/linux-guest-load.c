// SPDX-License-Identifier: MIT
/*
 * The workload of bench/linux-guest.sh's guest (built there with
 * gcc -static, run by its /init): fills a process heap with real data (the
 * files under DIR, read in a loop until the heap is full), says
 * "lmguest ready" on stdout (the serial console), then keeps rewriting a hot
 * set (the heap's first HOT_MB MiB) at RATE_MB MiB/s: every 100 ms a tick's
 * share of pages, each a copy of a page of real data from the rest of the
 * heap with the pass number in its first 8 bytes.  Once a second it prints
 * "lmguest t=SECONDS pages=WRITTEN pass=N", which is how a bench sees that
 * the guest (after a migration, the destination's) keeps running.
 *
 * usage: lmguest-load HEAP_MB HOT_MB RATE_MB DIR
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define TICK_NS 100000000L

/* File-scope because nftw's callback takes no context pointer; this is a
 * one-thread program inside the guest, not library code. */
static char *heap;
static size_t heap_len, filled;

/* nftw callback: appends one regular file to the heap; stops when full. */
static int add_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type != FTW_F)
		return 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n;
	while (filled < heap_len && (n = read(fd, heap + filled, heap_len - filled)) > 0)
		filled += (size_t)n;
	close(fd);
	return filled < heap_len ? 0 : 1;
}

static void tick_add(struct timespec *t)
{
	t->tv_nsec += TICK_NS;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_nsec -= 1000000000L;
		t->tv_sec++;
	}
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: lmguest-load HEAP_MB HOT_MB RATE_MB DIR\n");
		return 2;
	}
	size_t heap_mb = strtoul(argv[1], NULL, 0), hot_mb = strtoul(argv[2], NULL, 0);
	size_t rate_mb = strtoul(argv[3], NULL, 0);
	if (hot_mb == 0 || hot_mb >= heap_mb) {
		fprintf(stderr, "lmguest: need 0 < HOT_MB < HEAP_MB\n");
		return 2;
	}
	heap_len = heap_mb << 20;
	heap = malloc(heap_len);
	if (!heap) {
		fprintf(stderr, "lmguest: no memory for a %zu MiB heap\n", heap_mb);
		return 1;
	}
	/* The files once, then again from the start until the heap is full
	 * (a bounded number of rounds: a DIR with no data gives up). */
	for (int round = 0; filled < heap_len && round < 64; round++) {
		size_t before = filled;
		nftw(argv[4], add_file, 16, FTW_PHYS);
		if (filled == before)
			break;
	}
	if (filled < heap_len) {
		fprintf(stderr, "lmguest: only %zu of %zu MiB of data in %s\n", filled >> 20,
			heap_mb, argv[4]);
		return 1;
	}
	size_t hot_pages = hot_mb << 8, data_pages = (heap_len >> 12) - hot_pages;
	size_t per_tick = (rate_mb << 8) / 10;
	printf("lmguest ready heap=%zuMiB hot=%zuMiB rate=%zuMiB/s\n", heap_mb, hot_mb, rate_mb);
	fflush(stdout);

	struct timespec next, start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	next = start;
	uint64_t pass = 1, written = 0;
	size_t hot = 0, src = 0;
	for (long tick = 1;; tick++) {
		for (size_t i = 0; i < per_tick; i++) {
			char *page = heap + hot * PAGE;
			memcpy(page, heap + (hot_pages + src) * PAGE, PAGE);
			memcpy(page, &pass, sizeof(pass));
			written++;
			src = (src + 1) % data_pages;
			if (++hot == hot_pages) {
				hot = 0;
				pass++;
			}
		}
		if (tick % 10 == 0) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			printf("lmguest t=%ld pages=%llu pass=%llu\n", (long)(now.tv_sec - start.tv_sec),
			       (unsigned long long)written, (unsigned long long)pass);
			fflush(stdout);
		}
		/* Steady rate: sleep until the next tick; a guest slower than the
		 * rate (TCG under load) writes as fast as it can instead. */
		tick_add(&next);
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec))
			next = now;
		else
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
}
