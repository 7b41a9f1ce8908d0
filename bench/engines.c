/* SPDX-License-Identifier: MIT */
/*
 * bench/engines: each compression engine over a file, page by page (or
 * packet by packet for qatzip), on one thread: compression speed in MB/s of
 * input, and ratio.  The zero pages are left out, as the migration leaves
 * them out.  Speeds are wall-clock medians of REPS runs.
 *
 *   build/bench/lm-bench-engines FILE [REPS]
 *
 * The zlib engine at level 1 is the yardstick for ISA-L: both make raw
 * deflate of one page for method qpl, the same job.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accel/engine.h"
#include "codec/codec.h"
#include "core/wire.h"
#include "zeropage/zero.h"

#define PS LM_PAGE_SIZE

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct result {
	double mbps, ratio;
};

/* One engine over the pages; out bytes count raw pages as sent raw. */
static struct result run_engine(const struct lm_engine_ops *e, const uint8_t **pages, size_t n,
				int reps)
{
	bool per_page = lm_method_per_page(e->method);
	struct lm_engine_cfg cfg = {.method = e->method, .level = 1, .max_jobs = LM_PACKET_PAGES};
	void *ctx;
	struct lm_job jobs[LM_PACKET_PAGES];
	uint8_t *out = malloc((size_t)LM_PACKET_PAGES * PS * 2);
	double t[16];
	uint64_t outb = 0;

	if (e->setup(&ctx, &cfg)) {
		fprintf(stderr, "%s: setup failed\n", e->name);
		exit(1);
	}
	for (int r = 0; r < reps; r++) {
		outb = 0;
		double t0 = now();
		for (size_t i = 0; i < n; i += LM_PACKET_PAGES) {
			uint32_t m = n - i < LM_PACKET_PAGES ? (uint32_t)(n - i) : LM_PACKET_PAGES;
			uint32_t nj = per_page ? m : 1;
			for (uint32_t k = 0; k < nj; k++)
				jobs[k] = (struct lm_job){.src = &pages[i + k],
							  .npages = per_page ? 1 : m,
							  .dst = out + (size_t)k * PS * (per_page ? 1 : 2),
							  .cap = (per_page ? 1 : m) * PS - 1};
			e->run(ctx, jobs, nj);
			for (uint32_t k = 0; k < nj; k++)
				outb += jobs[k].status == 0 ? jobs[k].len : jobs[k].npages * PS;
		}
		t[r] = now() - t0;
	}
	qsort(t, (size_t)reps, sizeof(t[0]), cmp_d);
	e->cleanup(ctx);
	free(out);
	return (struct result){(double)n * PS / t[reps / 2] / 1e6, (double)n * PS / (double)outb};
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE [REPS]\n", argv[0]);
		return 2;
	}
	int reps = argc > 2 ? atoi(argv[2]) : 3;
	if (reps < 1 || reps > 15)
		reps = 3;
	int fd = open(argv[1], O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || st.st_size < PS) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	size_t total = (size_t)st.st_size / PS;
	uint8_t *map = mmap(NULL, total * PS, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED)
		return 1;
	const uint8_t **pages = malloc(total * sizeof(*pages));
	lm_zero_fn is_zero = lm_zero_select(NULL);
	size_t n = 0;
	for (size_t i = 0; i < total; i++)
		if (!is_zero(map + i * PS))
			pages[n++] = map + i * PS;
	printf("%s: %zu pages, %zu not zero; median of %d runs, one thread\n", argv[1], total, n,
	       reps);
	printf("%-7s %-7s %10s %7s\n", "method", "engine", "MB/s", "ratio");

	size_t ne;
	const struct lm_engine_ops *const *t = lm_engine_table(&ne);
	for (size_t i = 0; i < ne; i++) {
		const struct lm_engine_ops *e = t[i];
		char why[160];
		if (e->absent || e->method == LM_ENGINE_ANY_METHOD ||
		    (e->probe && e->probe(why, sizeof(why))))
			continue;
		struct result r = run_engine(e, pages, n, reps);
		printf("%-7s %-7s %10.0f %7.3f\n", lm_codec_by_method(e->method)->name, e->name,
		       r.mbps, r.ratio);
	}
	return 0;
}
