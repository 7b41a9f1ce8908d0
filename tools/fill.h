/* SPDX-License-Identifier: MIT */
/* Guest memory for the CLI: allocation and the --fill specs. */
#ifndef LM_FILL_H
#define LM_FILL_H

#include <stddef.h>
#include <stdint.h>

enum fill_kind { FILL_SYSTEM, FILL_FILE, FILL_CORPUS, FILL_RANDOM, FILL_ZERO };

struct fill_spec {
	enum fill_kind kind;
	char path[4096];  /* FILL_FILE, FILL_CORPUS */
	double ratio;     /* share of pages filled, rest zero; default 0.9 */
	uint64_t seed;    /* FILL_RANDOM and the choice of filled pages; default 1 */
};

/* Parses "system", "file:PATH", "corpus:PATH", "random", "zero".
 * 0, or -EINVAL with a message in err. */
int fill_parse(const char *text, struct fill_spec *spec, char *err, size_t errlen);

/*
 * Builds guest memory.  FILL_FILE maps the file privately (like QEMU's
 * memory-backend-file, share=off) and *size becomes the file size when it was
 * 0 on entry; a non-zero *size must equal the file size rounded up to pages.
 * Other kinds mmap anonymous memory of *size bytes (rounded up to 4 KiB) and
 * fill ratio of the pages, chosen spread through memory deterministically
 * from seed; the others stay zero.  Every page is faulted in before
 * returning (a running guest's memory is resident).
 * Returns the mapping, or NULL with a message in err.  Free with fill_free.
 */
void *fill_create(const struct fill_spec *spec, uint64_t *size, char *err, size_t errlen);
void fill_free(void *mem, uint64_t size);

/* True when page i (of a fill with this ratio and seed) is filled; shared by
 * fill_create and tests. */
int fill_page_selected(uint64_t page, double ratio, uint64_t seed);

#endif
