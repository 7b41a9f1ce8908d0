/* SPDX-License-Identifier: MIT */
/*
 * make-image helper: writes a guest memory image of SIZE bytes (a multiple
 * of 4 KiB).  Page i is "filled" when ceil((i+1)*r) > ceil(i*r), r = RATIO
 * (kept as a fraction num/1000000), so filled pages are spread evenly
 * (r = 0.9: in every run of 10 pages, pages 0..8 filled, page 9 zero).
 * The k-th filled page gets corpus page k mod (corpus pages): the corpus
 * bytes repeated in order across the filled pages.  Other pages are zero.
 *
 * usage: make-image CORPUS OUT SIZE_BYTES RATIO
 * Prints: filled=N zero=M corpus_zero=Z pages=P
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG 4096u
#define DEN 1000000ull
#define CHUNK_PAGES 4096u /* 16 MiB per write */

static int is_zero(const unsigned char *p)
{
	static const unsigned char z[PG];
	return memcmp(p, z, PG) == 0;
}

static uint64_t ceil_frac(uint64_t a, uint64_t num) /* ceil(a*num/DEN) */
{
	unsigned __int128 x = (unsigned __int128)a * num;
	return (uint64_t)((x + DEN - 1) / DEN);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s CORPUS OUT SIZE_BYTES RATIO\n", argv[0]);
		return 2;
	}
	const char *corpus = argv[1], *out = argv[2];
	char *end;
	errno = 0;
	unsigned long long size = strtoull(argv[3], &end, 10);
	if (errno || *end || size == 0 || size % PG) {
		fprintf(stderr, "make-image: SIZE must be a positive multiple of 4096 bytes\n");
		return 2;
	}
	double r = strtod(argv[4], &end);
	if (*end || !(r >= 0.0 && r <= 1.0)) {
		fprintf(stderr, "make-image: RATIO must be in [0,1]\n");
		return 2;
	}
	uint64_t num = (uint64_t)llround(r * (double)DEN);

	int cfd = open(corpus, O_RDONLY);
	struct stat st;
	if (cfd < 0 || fstat(cfd, &st) < 0) {
		perror(corpus);
		return 1;
	}
	uint64_t cpages = (uint64_t)st.st_size / PG;
	if (cpages == 0) {
		fprintf(stderr, "make-image: corpus smaller than one page\n");
		return 1;
	}
	const unsigned char *cmap = mmap(NULL, cpages * PG, PROT_READ, MAP_PRIVATE | MAP_POPULATE, cfd, 0);
	if (cmap == MAP_FAILED) {
		perror("mmap corpus");
		return 1;
	}
	unsigned char *czero = malloc(cpages);
	for (uint64_t k = 0; k < cpages; k++)
		czero[k] = (unsigned char)is_zero(cmap + k * PG);

	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(out);
		return 1;
	}
	unsigned char *buf;
	if (posix_memalign((void **)&buf, PG, (size_t)CHUNK_PAGES * PG)) {
		fprintf(stderr, "make-image: out of memory\n");
		return 1;
	}
	uint64_t pages = size / PG, filled = 0, zero = 0, corpus_zero = 0, k = 0;
	for (uint64_t i = 0; i < pages; i += CHUNK_PAGES) {
		uint64_t n = pages - i < CHUNK_PAGES ? pages - i : CHUNK_PAGES;
		for (uint64_t j = 0; j < n; j++) {
			uint64_t p = i + j;
			unsigned char *dst = buf + j * PG;
			if (ceil_frac(p + 1, num) > ceil_frac(p, num)) {
				memcpy(dst, cmap + k * PG, PG);
				corpus_zero += czero[k];
				filled++;
				if (++k == cpages)
					k = 0;
			} else {
				memset(dst, 0, PG);
				zero++;
			}
		}
		size_t len = (size_t)n * PG, off = 0;
		while (off < len) {
			ssize_t w = write(fd, buf + off, len - off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				perror("write");
				return 1;
			}
			off += (size_t)w;
		}
	}
	if (close(fd) < 0) {
		perror("close");
		return 1;
	}
	printf("pages=%llu filled=%llu zero=%llu corpus_zero=%llu\n",
	       (unsigned long long)pages, (unsigned long long)filled,
	       (unsigned long long)zero, (unsigned long long)corpus_zero);
	return 0;
}
