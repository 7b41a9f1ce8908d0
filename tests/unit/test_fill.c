/* SPDX-License-Identifier: MIT */
/* Unit test for tools/fill.c: parsing, determinism, ratio and spread of
 * filled pages, and the bytes of every kind of fill. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fill.h"
#include "t.h"

#define PAGE 4096u
#define MiB (1ull << 20)

static char err[512];

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[PAGE];

	return memcmp(p, zero, PAGE) == 0;
}

static struct fill_spec spec_of(const char *text)
{
	struct fill_spec s;

	if (fill_parse(text, &s, err, sizeof(err)))
		fprintf(stderr, "fill_parse(%s): %s\n", text, err);
	return s;
}

static void *create(const struct fill_spec *s, uint64_t *size)
{
	void *m = fill_create(s, size, err, sizeof(err));

	if (!m)
		fprintf(stderr, "fill_create: %s\n", err);
	return m;
}

/* Writes n bytes of a pattern to a new temp file; returns its path (static). */
static const char *temp_file(const char *suffix, size_t n, uint8_t salt)
{
	static char path[2][64];
	static int which;
	char *p = path[which++ & 1];
	uint8_t *buf = malloc(n ? n : 1);
	int fd;

	snprintf(p, 64, "/tmp/test_fill_XXXXXX%s", suffix);
	fd = mkstemps(p, (int)strlen(suffix));
	if (fd < 0 || !buf) {
		perror("temp file");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 7 + (i >> 12) + salt) | 1; /* never 0 */
	if (write(fd, buf, n) != (ssize_t)n) {
		perror("write");
		exit(1);
	}
	close(fd);
	free(buf);
	return p;
}

static void test_parse(void)
{
	struct fill_spec s;
	static const char *bad[] = {"", "foo", "file:", "corpus:", "Random", "file",
				    "system:x", "corpus:/tmp/x.zst", "zero "};
	char longpath[5000];

	CHECK(fill_parse("system", &s, err, sizeof(err)) == 0 && s.kind == FILL_SYSTEM);
	CHECK(s.ratio == 0.9 && s.seed == 1);
	CHECK(fill_parse("random", &s, err, sizeof(err)) == 0 && s.kind == FILL_RANDOM);
	CHECK(fill_parse("zero", &s, err, sizeof(err)) == 0 && s.kind == FILL_ZERO);
	CHECK(fill_parse("file:/var/tmp/a.bin", &s, err, sizeof(err)) == 0 &&
	      s.kind == FILL_FILE && !strcmp(s.path, "/var/tmp/a.bin"));
	CHECK(fill_parse("corpus:rel/c.tar", &s, err, sizeof(err)) == 0 &&
	      s.kind == FILL_CORPUS && !strcmp(s.path, "rel/c.tar"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECKF(fill_parse(bad[i], &s, err, sizeof(err)) == -EINVAL, "'%s'", bad[i]);
		CHECKF(err[0] != '\0', "no message for '%s'", bad[i]);
	}
	CHECK(fill_parse("corpus:/tmp/x.zst", &s, err, sizeof(err)) == -EINVAL &&
	      strstr(err, "zstd -d"));
	memset(longpath, 'a', sizeof(longpath));
	memcpy(longpath, "file:", 5);
	longpath[sizeof(longpath) - 1] = '\0';
	CHECK(fill_parse(longpath, &s, err, sizeof(err)) == -EINVAL);
}

static void test_selected(void)
{
	for (uint64_t p = 0; p < 1000; p++) {
		CHECK(fill_page_selected(p, 0.0, 1) == 0);
		CHECK(fill_page_selected(p, 1.0, 1) == 1);
		CHECK(fill_page_selected(p, 0.5, 7) == fill_page_selected(p, 0.5, 7));
	}
}

static void test_random(void)
{
	struct fill_spec s = spec_of("random");
	uint64_t size = 16 * MiB, size2 = 16 * MiB, size3 = 16 * MiB;
	uint8_t *a, *b, *c;
	uint64_t differ = 0;

	a = create(&s, &size);
	b = create(&s, &size2);
	s.seed = 2;
	c = create(&s, &size3);
	CHECK(a && b && c);
	if (!a || !b || !c)
		return;
	CHECK(size == 16 * MiB);
	CHECK(memcmp(a, b, size) == 0);
	for (uint64_t p = 0; p < size / PAGE; p++)
		differ += memcmp(a + p * PAGE, c + p * PAGE, PAGE) != 0;
	/* Pages filled in both differ; so do pages filled in one only. */
	CHECKF(differ > size / PAGE * 9 / 10, "%llu pages differ", (unsigned long long)differ);
	fill_free(a, size);
	fill_free(b, size2);
	fill_free(c, size3);

	/* ratio 1: every page has content; ratio 0: none. */
	s.ratio = 1.0;
	size = 4 * MiB;
	a = create(&s, &size);
	for (uint64_t p = 0; a && p < size / PAGE; p++)
		CHECK(!page_is_zero(a + p * PAGE));
	fill_free(a, size);
	s.ratio = 0.0;
	a = create(&s, &size);
	for (uint64_t p = 0; a && p < size / PAGE; p++)
		CHECK(page_is_zero(a + p * PAGE));
	fill_free(a, size);
	/* Below one huge page: plain 4 KiB mapping. */
	s.ratio = 1.0;
	size = 3 * PAGE - 1;
	a = create(&s, &size);
	CHECK(a && size == 3 * PAGE);
	for (uint64_t p = 0; a && p < 3; p++)
		CHECK(!page_is_zero(a + p * PAGE));
	fill_free(a, size);
	fill_free(NULL, 0);
	s.ratio = 1.5;
	CHECK(fill_create(&s, &size, err, sizeof(err)) == NULL && err[0]);
}

/* Ratio and spread of non-zero pages over 64 MiB of a fill whose filled
 * pages are never all zero. */
static void check_ratio(const char *text)
{
	struct fill_spec s = spec_of(text);
	uint64_t size = 64 * MiB, npages = size / PAGE, filled = 0;
	const uint64_t window = MiB / PAGE; /* pages in 1 MiB */
	uint8_t *m = create(&s, &size);
	unsigned *prefix;

	CHECK(m != NULL);
	if (!m)
		return;
	prefix = calloc(npages + 1, sizeof(*prefix));
	for (uint64_t p = 0; p < npages; p++) {
		bool nz = !page_is_zero(m + p * PAGE);

		CHECKF(nz == (bool)fill_page_selected(p, s.ratio, s.seed), "%s page %llu", text,
		       (unsigned long long)p);
		filled += nz;
		prefix[p + 1] = (unsigned)filled;
	}
	CHECKF(filled >= npages * 89 / 100 && filled <= npages * 91 / 100, "%s: %llu of %llu",
	       text, (unsigned long long)filled, (unsigned long long)npages);
	/* Every 1 MiB window, at any page offset. */
	for (uint64_t p = 0; p + window <= npages; p++) {
		unsigned n = prefix[p + window] - prefix[p];

		if (n < window * 80 / 100 || n > window * 98 / 100) {
			CHECKF(0, "%s: window at page %llu has %u of %llu", text,
			       (unsigned long long)p, n, (unsigned long long)window);
			break;
		}
	}
	free(prefix);
	fill_free(m, size);
}

static void test_zero(void)
{
	struct fill_spec s = spec_of("zero");
	uint64_t size = 8 * MiB + 100; /* rounded up to pages */
	uint8_t *m = create(&s, &size);

	CHECK(m && size == 8 * MiB + PAGE);
	for (uint64_t p = 0; m && p < size / PAGE; p++)
		CHECK(page_is_zero(m + p * PAGE));
	fill_free(m, size);

	size = 0;
	err[0] = '\0';
	CHECK(fill_create(&s, &size, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "size must be > 0") != NULL);
}

static void test_file(void)
{
	const size_t n = 3 * PAGE + 123;
	const char *path = temp_file(".bin", n, 0);
	struct fill_spec s;
	char text[128];
	uint8_t *want = malloc(n), *again = malloc(n + 1), *m;
	uint64_t size = 0;
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0 && want && read(fd, want, n) == (ssize_t)n);
	close(fd);
	snprintf(text, sizeof(text), "file:%s", path);
	s = spec_of(text);
	m = create(&s, &size);
	CHECK(m && size == 4 * PAGE);
	if (m) {
		CHECK(memcmp(m, want, n) == 0);
		for (uint64_t i = n; i < size; i++)
			CHECK(m[i] == 0);
		/* Private: writes stay in this process. */
		memset(m, 0xee, size);
		fill_free(m, size);
	}
	fd = open(path, O_RDONLY);
	CHECK(read(fd, again, n + 1) == (ssize_t)n && memcmp(again, want, n) == 0);
	close(fd);

	/* A given size must match the file rounded up to pages. */
	size = 4 * PAGE;
	m = create(&s, &size);
	CHECK(m && size == 4 * PAGE);
	fill_free(m, size);
	size = 1 * MiB;
	err[0] = '\0';
	CHECK(fill_create(&s, &size, err, sizeof(err)) == NULL);
	CHECKF(strstr(err, "--mem 1M does not match file size") != NULL, "%s", err);

	unlink(path);
	size = 0;
	CHECK(fill_create(&s, &size, err, sizeof(err)) == NULL);
	CHECKF(strstr(err, "cannot open") && strstr(err, path), "%s", err);
	free(want);
	free(again);
}

static void test_corpus(void)
{
	const size_t clen = 10000; /* not a page multiple: pages wrap mid-page */
	const char *path = temp_file(".dat", clen, 3);
	char text[128];
	uint8_t *c = malloc(clen), *m;
	struct fill_spec s;
	uint64_t size = 64 * MiB, pos = 0;
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0 && c && read(fd, c, clen) == (ssize_t)clen);
	close(fd);
	snprintf(text, sizeof(text), "corpus:%s", path);
	s = spec_of(text);
	s.ratio = 0.5;
	s.seed = 42;
	m = create(&s, &size); /* large enough to use several threads */
	CHECK(m != NULL);
	for (uint64_t p = 0; m && p < size / PAGE; p++) {
		const uint8_t *pg = m + p * PAGE;

		if (!fill_page_selected(p, s.ratio, s.seed)) {
			CHECK(page_is_zero(pg));
			continue;
		}
		for (unsigned i = 0; i < PAGE; i++) {
			if (pg[i] != c[(pos + i) % clen]) {
				CHECKF(0, "page %llu byte %u", (unsigned long long)p, i);
				break;
			}
		}
		pos = (pos + PAGE) % clen;
	}
	fill_free(m, size);
	unlink(path);

	/* zstd data is refused whatever its name. */
	path = temp_file(".bin", 64, 0);
	fd = open(path, O_WRONLY);
	CHECK(write(fd, "\x28\xb5\x2f\xfd", 4) == 4);
	close(fd);
	snprintf(text, sizeof(text), "corpus:%s", path);
	s = spec_of(text);
	size = MiB;
	err[0] = '\0';
	CHECK(fill_create(&s, &size, err, sizeof(err)) == NULL);
	CHECKF(strstr(err, "zstd -d") != NULL, "%s", err);
	unlink(path);
	free(c);
}

static void test_system(void)
{
	struct fill_spec s = spec_of("system");
	uint64_t size = 32 * MiB, size2 = 32 * MiB;
	uint8_t *a = create(&s, &size), *b = create(&s, &size2);
	uint64_t selected = 0, nonzero = 0;

	CHECK(a && b);
	if (a && b)
		CHECK(memcmp(a, b, size) == 0);
	/* Real files have zero pages of their own, so only unselected pages
	 * are known to be zero. */
	for (uint64_t p = 0; a && p < size / PAGE; p++) {
		bool sel = fill_page_selected(p, s.ratio, s.seed);

		selected += sel;
		nonzero += !page_is_zero(a + p * PAGE);
		if (!sel)
			CHECK(page_is_zero(a + p * PAGE));
	}
	CHECK(nonzero > selected * 3 / 4);
	printf("system: %llu of %llu pages selected, %llu non-zero\n",
	       (unsigned long long)selected, (unsigned long long)(size / PAGE),
	       (unsigned long long)nonzero);
	fill_free(a, size);
	fill_free(b, size2);
}

int main(void)
{
	test_parse();
	test_selected();
	test_random();
	check_ratio("random");
	test_zero();
	test_file();
	test_corpus();
	test_system();
	T_DONE();
}
