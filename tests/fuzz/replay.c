/* SPDX-License-Identifier: MIT */
/*
 * Runs a fuzz target over its corpus without libFuzzer, so that every build
 * (gcc, release or with sanitizers) replays the corpora as tests: each
 * argument is a file or a directory whose files (not subdirectories, not
 * dot files) are each passed once to LLVMFuzzerTestOneInput().  A target's
 * failed assertion aborts, which fails the test.
 * Exit: 0 every input ran, 1 an input could not be read or there was none.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Runs one file; -errno when it cannot be read. */
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (!f)
		return -errno;
	if (fstat(fileno(f), &st) || st.st_size < 0) {
		fclose(f);
		return -EIO;
	}
	size_t n = (size_t)st.st_size;
	uint8_t *buf = fuzz_alloc(n);
	size_t got = fread(buf, 1, n, f);
	fclose(f);
	if (got != n) {
		free(buf);
		return -EIO;
	}
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

/* Runs every regular file of dir; returns how many, or -errno. */
static int run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int count = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[4096];
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		int r = run_file(path);
		if (r) {
			fprintf(stderr, "replay: %s: %s\n", path, strerror(-r));
			closedir(d);
			return r;
		}
		count++;
	}
	closedir(d);
	return count;
}

int main(int argc, char **argv)
{
	int total = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR|FILE...\n", argv[0]);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int r;
		if (stat(argv[i], &st)) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			r = run_dir(argv[i]);
		} else {
			r = run_file(argv[i]);
			if (r == 0)
				r = 1;
			else
				fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(-r));
		}
		if (r < 0)
			return 1;
		printf("replay: %d inputs from %s\n", r, argv[i]);
		total += r;
	}
	if (!total) {
		fprintf(stderr, "replay: no inputs\n");
		return 1;
	}
	return 0;
}
