/* SPDX-License-Identifier: MIT */
/*
 * Dirty trackers, table-driven: every tracker whose probe succeeds (or only
 * the one named in argv[1]) must report exactly the pages written -- random
 * pages, first/last, runs across bitmap words, several regions, untouched
 * anonymous memory, a kernel-mode write, private file mappings, a THP -- and
 * nothing on a sync without writes; under a concurrent writer no write may
 * be lost; stop leaves the memory intact and writable.  A timing printout
 * follows (--bench for the full 1 GiB / 256 MiB sizes).
 * Exit 0 pass, 1 fail, 77 when no tracker can run here.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dirty/tracker.h"
#include "t.h"

#define PAGE 4096u

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return rng;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *map_anon(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static uint64_t *bm_new(uint64_t size)
{
	uint64_t *b = calloc((size / PAGE + 63) / 64, sizeof(uint64_t));

	if (!b)
		exit(1);
	return b;
}

static void bm_set(uint64_t *b, uint64_t pg)
{
	b[pg / 64] |= (uint64_t)1 << (pg % 64);
}

static bool bm_test(const uint64_t *b, uint64_t pg)
{
	return b[pg / 64] >> (pg % 64) & 1;
}

static uint64_t bm_count(const uint64_t *b, uint64_t size)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < (size / PAGE + 63) / 64; w++)
		n += (uint64_t)__builtin_popcountll(b[w]);
	return n;
}

/* got == want, page by page; prints the first few differences. */
static bool bm_equal(const char *what, const uint64_t *got, const uint64_t *want, uint64_t size)
{
	int shown = 0;

	for (uint64_t pg = 0; pg < size / PAGE; pg++)
		if (bm_test(got, pg) != bm_test(want, pg) && shown++ < 5)
			fprintf(stderr, "  %s: page %llu %s\n", what, (unsigned long long)pg,
				bm_test(got, pg) ? "reported but not written" : "written but not reported");
	CHECKF(!shown, "%s: %d page(s) differ", what, shown);
	return !shown;
}

/* A write the compiler cannot drop or merge; the page's first word keeps a
 * generation count so that content can be checked after stop. */
static void touch(uint8_t *base, uint64_t pg)
{
	volatile uint64_t *w = (volatile uint64_t *)(base + pg * PAGE);

	w[0] = w[0] + 1;
}

/* Starts t on n regions, as the policy would without a dirty log. */
static int start(const struct lm_tracker_ops *t, void **ctx, const struct lm_track_region *r,
		 unsigned n)
{
	struct lm_tracker_cfg cfg = { .regions = r, .nregions = n };
	char why[256];

	return t->start(ctx, &cfg, why, sizeof(why));
}

/* ---- exactness over several regions ---------------------------------- */

#define NREG 3

static void test_exact(const struct lm_tracker_ops *t)
{
	/* Odd sizes; region 1 is never touched before start. */
	static const uint64_t sizes[NREG] = { 1u << 20, 37 * PAGE, 3u << 20 };
	struct lm_track_region r[NREG];
	uint64_t *got[NREG], *want[NREG];
	uint64_t gen[NREG][768] = { { 0 } };
	void *ctx = NULL;
	int64_t n, expect = 0;
	int rc;

	for (int i = 0; i < NREG; i++) {
		r[i].base = map_anon(sizes[i]);
		r[i].size = sizes[i];
		got[i] = bm_new(sizes[i]);
		want[i] = bm_new(sizes[i]);
		if (i != 1)
			for (uint64_t pg = 0; pg < sizes[i] / PAGE; pg += 2) /* half populated */
				touch(r[i].base, pg), gen[i][pg]++;
	}
	rc = start(t, &ctx, r, NREG);
	CHECKF(rc == 0, "%s: start: %s", t->name, strerror(-rc));
	if (rc)
		return;

	/* Nothing written yet: reads (zero page, populated pages) are not writes. */
	for (int i = 0; i < NREG; i++)
		for (uint64_t pg = 0; pg < sizes[i] / PAGE; pg += 3)
			(void)*(volatile uint8_t *)((uint8_t *)r[i].base + pg * PAGE + 100);
	n = t->sync(ctx, got);
	CHECKF(n == 0, "%s: sync after reads only: %lld", t->name, (long long)n);
	for (int i = 0; i < NREG; i++)
		CHECK(bm_count(got[i], sizes[i]) == 0);

	for (int round = 0; round < 3; round++) {
		expect = 0;
		for (int i = 0; i < NREG; i++) {
			uint64_t np = sizes[i] / PAGE;
			uint64_t pick[] = { 0, np - 1, 63, 64, 65, 127, 128 };

			memset(got[i], 0, (np + 63) / 64 * 8);
			memset(want[i], 0, (np + 63) / 64 * 8);
			for (size_t k = 0; k < sizeof(pick) / sizeof(pick[0]); k++)
				if (pick[k] < np)
					bm_set(want[i], pick[k]);
			for (int k = 0; k < 20; k++) /* random pages */
				bm_set(want[i], rnd() % np);
			if (np > 300)
				for (uint64_t pg = 190; pg < 260; pg++) /* a run over two words */
					bm_set(want[i], pg);
			for (uint64_t pg = 0; pg < np; pg++)
				if (bm_test(want[i], pg)) {
					touch(r[i].base, pg);
					touch(r[i].base, pg); /* twice: reported once */
					gen[i][pg] += 2;
				}
			expect += (int64_t)bm_count(want[i], sizes[i]);
		}
		n = t->sync(ctx, got);
		CHECKF(n == expect, "%s: round %d: sync returned %lld, want %lld", t->name, round,
		       (long long)n, (long long)expect);
		for (int i = 0; i < NREG; i++)
			bm_equal(t->name, got[i], want[i], sizes[i]);

		/* A second sync without writes reports nothing. */
		for (int i = 0; i < NREG; i++)
			memset(got[i], 0, (sizes[i] / PAGE + 63) / 64 * 8);
		n = t->sync(ctx, got);
		CHECKF(n == 0, "%s: round %d: idle sync returned %lld", t->name, round, (long long)n);
		for (int i = 0; i < NREG; i++)
			CHECK(bm_count(got[i], sizes[i]) == 0);
	}

	/* Kernel-mode write: read(2) from a pipe into tracked memory. */
	{
		int pfd[2];
		uint8_t *dst = (uint8_t *)r[1].base + 5 * PAGE + 17;

		CHECK(pipe(pfd) == 0);
		CHECK(write(pfd[1], "kernel", 6) == 6);
		CHECKF(read(pfd[0], dst, 6) == 6, "%s: read(2) into tracked memory: %s", t->name,
		       strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		CHECK(memcmp(dst, "kernel", 6) == 0);
		for (int i = 0; i < NREG; i++)
			memset(got[i], 0, (sizes[i] / PAGE + 63) / 64 * 8);
		n = t->sync(ctx, got);
		CHECKF(n == 1 && bm_test(got[1], 5), "%s: kernel-mode write: %lld pages", t->name,
		       (long long)n);
		memset(dst, 0, 6);
		t->sync(ctx, got);
	}

	/* stop: content intact and every page writable again. */
	t->stop(ctx);
	for (int i = 0; i < NREG; i++) {
		for (uint64_t pg = 0; pg < sizes[i] / PAGE; pg++) {
			uint64_t v = *(volatile uint64_t *)((uint8_t *)r[i].base + pg * PAGE);

			if (v != gen[i][pg]) {
				CHECKF(0, "%s: after stop region %d page %llu holds %llu, want %llu", t->name,
				       i, (unsigned long long)pg, (unsigned long long)v,
				       (unsigned long long)gen[i][pg]);
				break;
			}
			touch(r[i].base, pg);
		}
		munmap(r[i].base, sizes[i]);
		free(got[i]);
		free(want[i]);
	}
}

/* ---- MAP_PRIVATE file mappings --------------------------------------- */

static void test_private_file(const struct lm_tracker_ops *t, const char *dir)
{
	const uint64_t size = 4u << 20, np = size / PAGE;
	char path[256];
	uint8_t *p, *buf = malloc(PAGE);
	uint64_t *got = bm_new(size), *want = bm_new(size);
	struct lm_track_region r;
	void *ctx = NULL;
	int fd, rc;
	int64_t n;

	snprintf(path, sizeof(path), "%s/lm-tracker-%d.img", dir, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !buf) {
		fprintf(stderr, "  %s: %s: cannot create (%s), not tested\n", t->name, path,
			strerror(errno));
		free(buf);
		free(got);
		free(want);
		return;
	}
	unlink(path);
	for (uint64_t pg = 0; pg < np; pg++) {
		memset(buf, (int)(pg & 0xff), PAGE);
		CHECK(pwrite(fd, buf, PAGE, (off_t)(pg * PAGE)) == PAGE);
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(p != MAP_FAILED);
	/* Three kinds of page: read (page cache mapped read-only), written before
	 * start (already copied), never touched. */
	for (uint64_t pg = 0; pg < np; pg += 3)
		(void)*(volatile uint8_t *)(p + pg * PAGE);
	for (uint64_t pg = 1; pg < np; pg += 3)
		p[pg * PAGE + 1] = 0xee;

	r.base = p;
	r.size = size;
	rc = start(t, &ctx, &r, 1);
	if (rc == -EOPNOTSUPP && strcmp(t->name, "uffd-sync") == 0 && strcmp(dir, "/dev/shm") != 0) {
		/* Known kernel limit: sync uffd-wp is anonymous/shmem/hugetlb only. */
		printf("  %s: MAP_PRIVATE file on %s: -EOPNOTSUPP (kernel refuses sync uffd-wp "
		       "on regular-file vmas)\n",
		       t->name, dir);
		goto out;
	}
	CHECKF(rc == 0, "%s: start on MAP_PRIVATE file in %s: %s", t->name, dir, strerror(-rc));
	if (rc)
		goto out;
	n = t->sync(ctx, &got);
	CHECKF(n == 0, "%s: %s: sync before writes: %lld", t->name, dir, (long long)n);
	memset(got, 0, (np + 63) / 64 * 8);
	for (uint64_t pg = 0; pg < np; pg++)
		if (pg % 97 < 3 || pg == np - 1) { /* all three kinds, runs of 3 */
			p[pg * PAGE + 2] = 0x55;
			bm_set(want, pg);
		}
	n = t->sync(ctx, &got);
	CHECKF(n == (int64_t)bm_count(want, size), "%s: %s: sync returned %lld, want %llu", t->name,
	       dir, (long long)n, (unsigned long long)bm_count(want, size));
	bm_equal(t->name, got, want, size);
	memset(got, 0, (np + 63) / 64 * 8);
	CHECK(t->sync(ctx, &got) == 0);
	t->stop(ctx);

	/* Mapping intact and writable; the file itself untouched. */
	for (uint64_t pg = 0; pg < np; pg++) {
		uint8_t b0 = (uint8_t)(pg & 0xff);
		bool ok = p[pg * PAGE] == b0 && p[pg * PAGE + 1] == (pg % 3 == 1 ? 0xee : b0) &&
			  p[pg * PAGE + 2] == (bm_test(want, pg) ? 0x55 : b0);

		if (!ok) {
			CHECKF(0, "%s: %s: page %llu content after stop", t->name, dir,
			       (unsigned long long)pg);
			break;
		}
		p[pg * PAGE + 3] = 1;
	}
	CHECK(pread(fd, buf, PAGE, 2 * PAGE) == PAGE && buf[2] == 2);
out:
	munmap(p, size);
	close(fd);
	free(buf);
	free(got);
	free(want);
}

/* ---- THP ---------------------------------------------------------------- */

/* AnonHugePages of the vma holding addr, in kB; -1 if unknown. */
static long anon_huge_kb(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
		else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

static void test_thp(const struct lm_tracker_ops *t)
{
	const uint64_t huge = 2u << 20, size = 8u << 20;
	uint8_t *raw = map_anon(size + huge);
	uint8_t *p = (uint8_t *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
	uint64_t *got = bm_new(size), *want = bm_new(size);
	struct lm_track_region r = { p, size };
	void *ctx = NULL;
	long kb;
	int64_t n;
	int rc;

	madvise(p, size, MADV_HUGEPAGE);
	memset(p, 0x11, size);
	kb = anon_huge_kb(p);
	rc = start(t, &ctx, &r, 1);
	CHECKF(rc == 0, "%s: start on THP: %s", t->name, strerror(-rc));
	if (rc)
		goto out;
	p[huge + 5 * PAGE + 9] = 0x22; /* one 4 KiB page inside the 2nd huge page */
	bm_set(want, huge / PAGE + 5);
	p[3 * huge + 511 * PAGE] = 0x22; /* last 4 KiB of the 4th */
	bm_set(want, 3 * huge / PAGE + 511);
	n = t->sync(ctx, &got);
	printf("  %s: THP region (%ld kB AnonHugePages before start): 2 pages written, %lld "
	       "reported\n",
	       t->name, kb, (long long)n);
	CHECKF(n == 2, "%s: THP: %lld pages reported", t->name, (long long)n);
	bm_equal(t->name, got, want, size);
	memset(got, 0, (size / PAGE + 63) / 64 * 8);
	p[huge + 6 * PAGE] = 0x33;
	n = t->sync(ctx, &got);
	CHECKF(n == 1 && bm_test(got, huge / PAGE + 6), "%s: THP second write: %lld", t->name,
	       (long long)n);
	t->stop(ctx);
	CHECK(p[huge + 5 * PAGE + 9] == 0x22 && p[huge + 5 * PAGE + 8] == 0x11 &&
	      p[huge + 6 * PAGE] == 0x33 && p[size - 1] == 0x11);
	memset(p, 0x44, size);
out:
	munmap(raw, size + huge);
	free(got);
	free(want);
}

/* ---- discards ----------------------------------------------------------- */

/*
 * MADV_DONTNEED on anonymous memory drops the page and, with it, the
 * write protection (the kernel: "zap on anonymous always means dropping
 * everything").  uffd-async sees the empty pte as written and re-protects
 * it; uffd-sync gets no fault for the next write, so discarding tracked
 * memory is not allowed with it -- printed here, not asserted.
 */
static void test_discard(const struct lm_tracker_ops *t)
{
	const uint64_t size = 64 * PAGE;
	uint8_t *p = map_anon(size);
	uint64_t *got = bm_new(size);
	struct lm_track_region r = { p, size };
	bool strict = strcmp(t->name, "uffd-async") == 0;
	void *ctx = NULL;
	int64_t n1, n2;
	bool b0, b2, b2again;

	memset(p, 1, size);
	if (start(t, &ctx, &r, 1))
		goto out;
	p[0] = 2;                              /* written, then discarded */
	madvise(p, PAGE, MADV_DONTNEED);
	madvise(p + 2 * PAGE, PAGE, MADV_DONTNEED); /* protected, discarded */
	n1 = t->sync(ctx, &got);
	b0 = bm_test(got, 0);
	b2 = bm_test(got, 2);
	memset(got, 0, 8);
	p[2 * PAGE + 1] = 3; /* a write after the discard */
	n2 = t->sync(ctx, &got);
	b2again = bm_test(got, 2);
	t->stop(ctx);
	if (strict) {
		CHECKF(n1 == 2 && b0 && b2, "%s: discarded pages: %lld reported", t->name, (long long)n1);
		CHECKF(n2 == 1 && b2again, "%s: write after discard: %lld reported", t->name,
		       (long long)n2);
	} else {
		printf("  %s: MADV_DONTNEED: discarded page reported %s; a later write %s "
		       "(known limit: do not discard tracked memory)\n",
		       t->name, b2 ? "yes" : "NO", b2again ? "reported" : "NOT reported");
	}
out:
	munmap(p, size);
	free(got);
}

/* ---- a writer running through repeated syncs ------------------------- */

/*
 * The writer stores seq into page log[seq], publishing begun = seq before
 * and done = seq after each write.  Around sync j the main thread records
 * done_before[j] (writes <= it completed before sync j started) and
 * begun_after[j] (writes > it began after sync j returned).  So write s must
 * be reported by one of syncs lo..hi, lo = the first j with begun_after[j]
 * >= s (the first sync that may have overlapped it), hi = the first j with
 * done_before[j] >= s (the first that started after it completed).  And
 * migrating pages as reported -- copy them to a shadow after each sync --
 * must reproduce the memory exactly.
 */
#define W_PAGES 2048u
#define W_WRITES (1u << 21) /* log capacity */
#define W_SYNCS 500u

struct writer {
	uint8_t *mem;
	uint32_t *log; /* page of write seq, [1..W_WRITES] */
	_Atomic uint64_t begun, done;
	_Atomic bool quit;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t x = 0x243f6a8885a308d3ull;

	for (uint64_t s = 1; s <= W_WRITES && !atomic_load_explicit(&w->quit, memory_order_relaxed);
	     s++) {
		uint32_t pg;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		/* Mostly a hot set, sometimes anywhere: pages are rewritten both
		 * long after and right after they were re-protected. */
		pg = (uint32_t)(x % 8 ? (x >> 8) % 64 : (x >> 8) % W_PAGES);
		w->log[s] = pg;
		atomic_store(&w->begun, s);
		__atomic_store_n((uint64_t *)(w->mem + (uint64_t)pg * PAGE) + s % 512, s,
				 __ATOMIC_RELAXED);
		atomic_store(&w->done, s);
	}
	return NULL;
}

static void copy_page(uint8_t *dst, const uint8_t *src)
{
	for (unsigned i = 0; i < PAGE / 8; i++)
		((uint64_t *)dst)[i] = __atomic_load_n((const uint64_t *)src + i, __ATOMIC_RELAXED);
}

static void test_writer(const struct lm_tracker_ops *t)
{
	const uint64_t size = (uint64_t)W_PAGES * PAGE, words = W_PAGES / 64;
	struct writer w = { .mem = map_anon(size) };
	uint8_t *shadow = calloc(1, size);
	size_t cap = 1024, nsync = 0;
	uint64_t *reports = malloc(cap * words * 8);
	uint64_t *done_before = malloc(cap * 8), *begun_after = malloc(cap * 8);
	struct lm_track_region r = { w.mem, size };
	uint64_t lost = 0, final;
	pthread_t th;
	void *ctx = NULL;
	int rc;

	w.log = calloc(W_WRITES + 1, sizeof(uint32_t));
	if (!shadow || !reports || !done_before || !begun_after || !w.log)
		exit(1);
	rc = start(t, &ctx, &r, 1);
	CHECKF(rc == 0, "%s: start: %s", t->name, strerror(-rc));
	if (rc)
		goto out;
	CHECK(pthread_create(&th, NULL, writer_main, &w) == 0);
	for (bool last = false; !last;) {
		uint64_t *rep;
		int64_t n;

		if (nsync == cap) {
			cap *= 2;
			reports = realloc(reports, cap * words * 8);
			done_before = realloc(done_before, cap * 8);
			begun_after = realloc(begun_after, cap * 8);
			if (!reports || !done_before || !begun_after)
				exit(1);
		}
		last = atomic_load(&w.done) == W_WRITES || nsync == W_SYNCS;
		if (last) { /* the final sync: writer stopped, as at migration end */
			atomic_store(&w.quit, true);
			pthread_join(th, NULL);
		}
		rep = reports + nsync * words;
		memset(rep, 0, words * 8);
		done_before[nsync] = atomic_load(&w.done);
		n = t->sync(ctx, &rep);
		begun_after[nsync] = atomic_load(&w.begun);
		CHECKF(n >= 0, "%s: sync %zu: %s", t->name, nsync, strerror((int)-n));
		if (n < 0) {
			if (!last) {
				atomic_store(&w.quit, true);
				pthread_join(th, NULL);
			}
			break;
		}
		for (uint64_t pg = 0; pg < W_PAGES; pg++)
			if (bm_test(rep, pg))
				copy_page(shadow + pg * PAGE, w.mem + pg * PAGE);
		nsync++;
		if (nsync % 4)
			usleep(50 + (unsigned)(rnd() % 200));
	}
	final = atomic_load(&w.done);
	/* Coverage: each write reported by a sync that could have seen it. */
	for (uint64_t s = 1, lo = 0, hi = 0; s <= final && nsync; s++) {
		bool seen = false;

		while (lo < nsync - 1 && begun_after[lo] < s)
			lo++;
		while (hi < nsync - 1 && done_before[hi] < s)
			hi++;
		for (uint64_t j = lo; j <= hi && !seen; j++)
			seen = bm_test(reports + j * words, w.log[s]);
		if (!seen && lost++ < 5)
			fprintf(stderr, "  %s: write %llu to page %u not reported by syncs %llu..%llu\n",
				t->name, (unsigned long long)s, w.log[s], (unsigned long long)lo,
				(unsigned long long)hi);
	}
	CHECKF(lost == 0, "%s: %llu of %llu writes not reported", t->name, (unsigned long long)lost,
	       (unsigned long long)final);
	CHECKF(memcmp(shadow, w.mem, size) == 0, "%s: shadow copy differs from memory", t->name);
	printf("  %s: concurrent writer: %llu writes, %zu syncs, none lost\n", t->name,
	       (unsigned long long)final, nsync);
	t->stop(ctx);
	CHECK(memcmp(shadow, w.mem, size) == 0);
	memset(w.mem, 1, size);
out:
	munmap(w.mem, size);
	free(w.log);
	free(shadow);
	free(reports);
	free(done_before);
	free(begun_after);
}

/* ---- timing (printed, not asserted) ------------------------------------ */

static void bench(const struct lm_tracker_ops *t, bool full)
{
	/* LM_BENCH_GIB=4 times a 4 GiB region (the harvest cost issue 3 asks for). */
	const char *gib = getenv("LM_BENCH_GIB");
	const uint64_t big = full ? (gib ? strtoull(gib, NULL, 10) : 1) << 30 : 64ull << 20;
	const uint64_t wsize = full ? 256ull << 20 : 32ull << 20;
	const int passes = full ? 5 : 2;
	uint64_t *got = bm_new(big);
	uint8_t *p = map_anon(big);
	struct lm_track_region r = { p, big };
	void *ctx = NULL;
	double t0, t_start, t_sync, t_stop, t_off = 0, t_on = 0, t_syncs = 0;
	uint64_t mapped = big;
	int64_t n;

	/* Untouched first, then mapped to the zero page: every pte present,
	 * still no memory used. */
	for (int populated = 0; populated < 2; populated++) {
		if (populated && madvise(p, big, MADV_POPULATE_READ) < 0)
			for (uint64_t o = 0; o < big; o += PAGE)
				(void)*(volatile uint8_t *)(p + o);
		t0 = now();
		if (start(t, &ctx, &r, 1))
			goto out;
		t_start = now() - t0;
		for (uint64_t i = 0; i < 1000; i++) /* 1000 distinct pages, spread out */
			p[(i * 2654435761u) % (big / PAGE) * PAGE] = 1;
		t0 = now();
		n = t->sync(ctx, &got);
		t_sync = now() - t0;
		t0 = now();
		t->stop(ctx);
		t_stop = now() - t0;
		printf("  %s: %llu MiB %s: start %.2f ms, sync after 1000 pages written %.3f ms "
		       "(%lld pages), stop %.2f ms\n",
		       t->name, (unsigned long long)(big >> 20), populated ? "zero-page mapped" : "untouched",
		       t_start * 1e3, t_sync * 1e3, (long long)n, t_stop * 1e3);
		memset(got, 0, (big / PAGE + 63) / 64 * 8);
		madvise(p, big, MADV_DONTNEED);
	}
	munmap(p, big);

	/* One byte per page over wsize, repeatedly; off, then on with a sync
	 * after each pass (so every pass faults on every page). */
	p = map_anon(wsize);
	mapped = wsize;
	memset(p, 0, wsize);
	for (int k = 0; k < passes; k++) {
		t0 = now();
		for (uint64_t o = 0; o < wsize; o += PAGE)
			((volatile uint8_t *)p)[o]++;
		t_off += now() - t0;
	}
	r = (struct lm_track_region){ p, wsize };
	if (start(t, &ctx, &r, 1))
		goto out;
	for (int k = 0; k < passes; k++) {
		t0 = now();
		for (uint64_t o = 0; o < wsize; o += PAGE)
			((volatile uint8_t *)p)[o]++;
		t_on += now() - t0;
		t0 = now();
		n = t->sync(ctx, &got);
		t_syncs += now() - t0;
		CHECK(n == (int64_t)(wsize / PAGE));
	}
	t->stop(ctx);
	printf("  %s: writes over %llu MiB, one byte per page: off %.0f ns/page, on %.0f ns/page; "
	       "sync of all %llu pages %.2f ms\n",
	       t->name, (unsigned long long)(wsize >> 20), t_off * 1e9 / passes / (wsize / PAGE),
	       t_on * 1e9 / passes / (wsize / PAGE), (unsigned long long)(wsize / PAGE),
	       t_syncs * 1e3 / passes);
out:
	munmap(p, mapped);
	free(got);
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	bool full = false;
	size_t count;
	const struct lm_tracker_ops *const *tab = lm_tracker_table(&count);
	const char *why = NULL;
	int ran = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--bench") == 0)
			full = true;
		else
			only = argv[i];
	}
	alarm(600); /* a lost wake-up hangs a writer forever: fail instead */

	CHECK(count >= 2 && lm_tracker_by_name("uffd-async") == tab[0] &&
	      lm_tracker_by_name("uffd-sync") == tab[1] && !lm_tracker_by_name("nope") &&
	      !lm_tracker_by_name(NULL));
	if (only && !lm_tracker_by_name(only)) {
		fprintf(stderr, "unknown tracker %s\n", only);
		return 1;
	}
	for (size_t i = 0; i < count; i++) {
		const struct lm_tracker_ops *t = tab[i];
		int rc;

		if ((only && strcmp(only, t->name) != 0) || t->needs_log || t->needs_remote)
			continue; /* external, uffd-remote: test_tracker_policy.c, test_tracker_remote.c */
		why = NULL;
		rc = t->probe(&why);
		if (rc) {
			printf("%s: skipped: %s (%s)\n", t->name, why ? why : "?", strerror(-rc));
			continue;
		}
		printf("%s:\n", t->name);
		ran++;
		{
			void *ctx = (void *)1;
			struct lm_track_region bad = { (void *)4097, PAGE };

			CHECK(start(t, &ctx, &bad, 1) == -EINVAL && ctx == NULL);
			t->stop(NULL);
		}
		test_exact(t);
		test_private_file(t, "/var/tmp");
		test_private_file(t, "/dev/shm");
		test_thp(t);
		test_discard(t);
		test_writer(t);
		bench(t, full);
	}
	if (!ran)
		return 77;
	T_DONE();
}
