/* SPDX-License-Identifier: MIT */
/*
 * Guest memory for the CLI.  See fill.h for the contract; the choices made
 * here:
 *
 *  - Anonymous memory is aligned to 2 MiB and madvised MADV_HUGEPAGE, as
 *    QEMU does for guest RAM: faulting 4 GiB in 2 MiB steps is several times
 *    faster than 4 KiB faults, and it is what a real source process has.
 *  - Every page, filled or zero, is written once, so it is private resident
 *    memory.  A read fault would map the kernel's shared zero page instead,
 *    which is always cache hot and would make zero-page detection look
 *    faster than it is on a guest that has touched its memory.
 *  - Filled pages are chosen by a hash of (page, seed), so any window holds
 *    about ratio of filled pages (binomial: a 1 MiB window at 0.9 is
 *    90% +- 1.9% one sigma) and the choice does not depend on the threads.
 *  - Content is a pure function of (spec, page index) too: random pages
 *    seed their own PRNG from (seed, page); corpus pages take the next
 *    4 KiB of the corpus stream, counting filled pages only, and each thread
 *    is told where in the stream its first page starts.  So the bytes never
 *    depend on how many threads filled them.
 *  - file: is mapped MAP_PRIVATE and populated with MADV_POPULATE_READ, not
 *    MAP_POPULATE: MAP_POPULATE on a private writable mapping write-faults
 *    every page and so copies the whole file into anonymous memory.  Read
 *    faults map the page cache pages, and only pages the guest later writes
 *    get copied, as with QEMU's memory-backend-file,share=off.
 */
#include "fill.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILL_PAGE 4096u
#define FILL_THP (2u << 20)
#define FILL_MAX_THREADS 8
/* Below this much memory per thread, thread start-up costs more than it saves. */
#define FILL_MIN_PER_THREAD (16u << 20)

/* The system corpus: at most this many bytes, taken from each directory of
 * system_dirs in turn (a directory's share is what is left divided by the
 * directories left, so a small or missing one passes its share on), at most
 * SYSTEM_FILE_MAX from any one file so a single large library cannot make up
 * a directory's whole share.  Directories are walked depth first, entries
 * sorted with strcmp, symlinks never followed. */
#define SYSTEM_CORPUS_MAX (64u << 20)
#define SYSTEM_FILE_MAX (1u << 20)
#define SYSTEM_MAX_DEPTH 16
static const char *const system_dirs[] = {
	"/usr/bin",
	"/usr/sbin",
	"/usr/lib/x86_64-linux-gnu",
	"/usr/lib/aarch64-linux-gnu",
	"/usr/include",
	"/usr/share/doc",
	"/usr/share/man",
	"/usr/share/locale",
	"/usr/share/i18n",
};

static const uint8_t zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* "4G", "3M", "12K" when exact, else bytes. */
static const char *fmt_size(uint64_t n, char *buf, size_t len)
{
	static const char units[] = "TGMK";

	for (int i = 0; i < 4; i++) {
		uint64_t u = 1ull << (10 * (4 - i));

		if (n && n % u == 0) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(n / u), units[i]);
			return buf;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)n);
	return buf;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ---- parsing ------------------------------------------------------------ */

static int parse_path(const char *p, const char *what, struct fill_spec *spec, char *err,
		      size_t errlen)
{
	size_t n = strlen(p);

	if (n == 0) {
		seterr(err, errlen, "--fill %s: needs a path, e.g. %s:/var/tmp/image.bin", what,
		       what);
		return -EINVAL;
	}
	if (n >= sizeof(spec->path)) {
		seterr(err, errlen, "--fill %s: path longer than %zu bytes", what,
		       sizeof(spec->path) - 1);
		return -EINVAL;
	}
	memcpy(spec->path, p, n + 1);
	return 0;
}

int fill_parse(const char *text, struct fill_spec *spec, char *err, size_t errlen)
{
	memset(spec, 0, sizeof(*spec));
	spec->ratio = 0.9;
	spec->seed = 1;
	if (!text)
		text = "";

	if (strcmp(text, "system") == 0) {
		spec->kind = FILL_SYSTEM;
	} else if (strcmp(text, "random") == 0) {
		spec->kind = FILL_RANDOM;
	} else if (strcmp(text, "zero") == 0) {
		spec->kind = FILL_ZERO;
	} else if (strncmp(text, "file:", 5) == 0) {
		spec->kind = FILL_FILE;
		return parse_path(text + 5, "file", spec, err, errlen);
	} else if (strncmp(text, "corpus:", 7) == 0) {
		spec->kind = FILL_CORPUS;
		if (parse_path(text + 7, "corpus", spec, err, errlen))
			return -EINVAL;
		if (has_suffix(spec->path, ".zst")) {
			seterr(err, errlen,
			       "--fill corpus:%s: the corpus is zstd-compressed; decompress it "
			       "first (zstd -d %s) and pass the result",
			       spec->path, spec->path);
			return -EINVAL;
		}
	} else {
		seterr(err, errlen,
		       "unknown --fill '%s' (expected system, file:PATH, corpus:PATH, random "
		       "or zero)",
		       text);
		return -EINVAL;
	}
	return 0;
}

/* ---- which pages, and random content --------------------------------- */

/* splitmix64's finaliser: a good 64-bit mixer. */
static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#define GOLDEN 0x9e3779b97f4a7c15ull

struct selector {
	uint64_t key;
	uint64_t threshold; /* page filled when its 53-bit hash < threshold */
	bool all, none;
};

static struct selector selector_make(double ratio, uint64_t seed)
{
	struct selector s = {.key = mix64(seed ^ 0x5e1ec7edf111ull)};

	if (!(ratio > 0.0)) /* also NaN */
		s.none = true;
	else if (ratio >= 1.0)
		s.all = true;
	else /* ratio * 2^53 is exact; h < x <=> h < ceil(x) for integer h */
		s.threshold = (uint64_t)__builtin_ceil(ratio * 0x1p53);
	return s;
}

static inline bool selector_pick(const struct selector *s, uint64_t page)
{
	if (s->all | s->none)
		return s->all;
	return (mix64(page * GOLDEN + s->key) >> 11) < s->threshold;
}

int fill_page_selected(uint64_t page, double ratio, uint64_t seed)
{
	struct selector s = selector_make(ratio, seed);

	return selector_pick(&s, page);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** seeded per page from (seed, page), so content does not depend
 * on which thread fills the page or in what order. */
static void random_page(uint8_t *dst, uint64_t page, uint64_t key)
{
	uint64_t x = key ^ (page * GOLDEN);
	uint64_t s0 = mix64(x += GOLDEN), s1 = mix64(x += GOLDEN);
	uint64_t s2 = mix64(x += GOLDEN), s3 = mix64(x += GOLDEN);
	uint64_t *d = (uint64_t *)dst;

	for (unsigned i = 0; i < FILL_PAGE / 8; i++) {
		uint64_t t = s1 << 17;

		d[i] = rotl(s1 * 5, 7) * 9;
		s2 ^= s0;
		s3 ^= s1;
		s1 ^= s2;
		s0 ^= s3;
		s2 ^= t;
		s3 = rotl(s3, 45);
	}
}

/* ---- corpora ----------------------------------------------------------- */

/*
 * A corpus in memory: buf[0..len) is the stream, followed by FILL_PAGE more
 * bytes repeating it from the start, so the page at any offset < len is one
 * memcpy even when it wraps.  cap is what buf can hold before that tail.
 */
struct corpus {
	uint8_t *buf;
	size_t len, cap;
};

static int corpus_alloc(struct corpus *c, size_t cap)
{
	c->buf = malloc(cap + FILL_PAGE);
	c->len = 0;
	c->cap = cap;
	return c->buf ? 0 : -ENOMEM;
}

static void corpus_finish(struct corpus *c)
{
	for (size_t i = 0; i < FILL_PAGE; i++)
		c->buf[c->len + i] = c->buf[i % c->len];
}

/* Appends up to max bytes of fd.  0, or -errno of read(). */
static int read_into(int fd, struct corpus *c, size_t max)
{
	size_t end = c->len + max < c->cap ? c->len + max : c->cap;

	while (c->len < end) {
		ssize_t r = read(fd, c->buf + c->len, end - c->len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		c->len += (size_t)r;
	}
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of dfd's entries except . and ..; NULL on error or if empty.
 * Takes ownership of dfd. */
static char **list_dir(int dfd, size_t *count)
{
	DIR *d = fdopendir(dfd);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;

	*count = 0;
	if (!d) {
		close(dfd);
		return NULL;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			char **bigger = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof(*names));

			if (!bigger)
				break;
			names = bigger;
		}
		if (!(names[n] = strdup(e->d_name)))
			break;
		n++;
	}
	closedir(d);
	if (names)
		qsort(names, n, sizeof(*names), cmp_names);
	*count = n;
	return names;
}

/* Reads regular files under dfd (owned) until c->len reaches end.  Unreadable
 * entries are skipped: the corpus is whatever this user can read. */
static void walk_dir(int dfd, struct corpus *c, size_t end, int depth)
{
	size_t n = 0;
	int dup_fd = dup(dfd);
	char **names = dup_fd >= 0 ? list_dir(dup_fd, &n) : NULL;

	for (size_t i = 0; i < n; i++) {
		struct stat st;
		int fd;

		if (c->len >= end || fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISDIR(st.st_mode) && depth < SYSTEM_MAX_DEPTH) {
			fd = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0)
				walk_dir(fd, c, end, depth + 1);
		} else if (S_ISREG(st.st_mode) && st.st_size > 0) {
			/* O_NONBLOCK: should the entry have become a FIFO meanwhile. */
			fd = openat(dfd, names[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0)
				continue;
			if (!fstat(fd, &st) && S_ISREG(st.st_mode)) {
				size_t room = end - c->len;

				read_into(fd, c, room < SYSTEM_FILE_MAX ? room : SYSTEM_FILE_MAX);
			}
			close(fd);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	close(dfd);
}

/*
 * The system corpus, stopping once it has need bytes.  Each directory's share
 * is computed from SYSTEM_CORPUS_MAX, not from need, so a smaller corpus is
 * always a prefix of the full one and the bytes of page k never depend on the
 * memory size.
 */
static int system_corpus(struct corpus *c, size_t need, char *err, size_t errlen)
{
	const size_t ndirs = sizeof(system_dirs) / sizeof(system_dirs[0]);
	size_t target = 0; /* where the full corpus would be after this directory */

	if (need > SYSTEM_CORPUS_MAX)
		need = SYSTEM_CORPUS_MAX;
	if (corpus_alloc(c, need)) {
		seterr(err, errlen, "system corpus: out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < ndirs && c->len < need; i++) {
		int fd = open(system_dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		/* A missing directory, or one with less than its share, leaves
		 * the rest to the directories after it. */
		target = c->len + (SYSTEM_CORPUS_MAX - c->len) / (ndirs - i);
		if (fd >= 0)
			walk_dir(fd, c, target < need ? target : need, 0);
	}
	if (c->len == 0) {
		free(c->buf);
		seterr(err, errlen,
		       "system corpus: no readable files under /usr; use --fill corpus:PATH");
		return -ENOENT;
	}
	corpus_finish(c);
	return 0;
}

/* The first need bytes of path (fewer if it is shorter). */
static int file_corpus(const char *path, struct corpus *c, size_t need, char *err,
		       size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		seterr(err, errlen, "corpus %s is not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_size == 0) {
		seterr(err, errlen, "corpus %s is empty", path);
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size < need)
		need = (size_t)st.st_size;
	if (corpus_alloc(c, need)) {
		seterr(err, errlen, "corpus %s: out of memory", path);
		close(fd);
		return -ENOMEM;
	}
	ret = read_into(fd, c, need);
	close(fd);
	if (ret || c->len == 0) {
		seterr(err, errlen, "cannot read %s: %s", path,
		       ret ? strerror(-ret) : "file shrank");
		free(c->buf);
		return ret ? ret : -EIO;
	}
	if (c->len >= sizeof(zstd_magic) && !memcmp(c->buf, zstd_magic, sizeof(zstd_magic))) {
		seterr(err, errlen,
		       "corpus %s is zstd-compressed; decompress it first (zstd -d %s) and pass "
		       "the result",
		       path, path);
		free(c->buf);
		return -EINVAL;
	}
	corpus_finish(c);
	return 0;
}

/* ---- anonymous memory ---------------------------------------------------- */

struct fill_job {
	uint8_t *mem;
	uint64_t first, end; /* pages [first, end) */
	enum fill_kind kind;
	struct selector sel;
	uint64_t random_key;
	const struct corpus *corpus;
	size_t pos; /* corpus offset of the first filled page in this job */
};

static void *fill_run(void *arg)
{
	struct fill_job *j = arg;
	size_t pos = j->pos;

	for (uint64_t p = j->first; p < j->end; p++) {
		uint8_t *page = j->mem + p * FILL_PAGE;

		if (j->kind == FILL_ZERO || !selector_pick(&j->sel, p)) {
			/* Write fault: a private zeroed page, not the shared zero page. */
			*(volatile uint8_t *)page = 0;
		} else if (j->kind == FILL_RANDOM) {
			random_page(page, p, j->random_key);
		} else {
			memcpy(page, j->corpus->buf + pos, FILL_PAGE);
			pos = (pos + FILL_PAGE) % j->corpus->len;
		}
	}
	return NULL;
}

static uint64_t count_selected(const struct selector *s, uint64_t first, uint64_t end)
{
	uint64_t n = 0;

	if (s->all | s->none)
		return s->all ? end - first : 0;
	for (uint64_t p = first; p < end; p++)
		n += selector_pick(s, p);
	return n;
}

static unsigned fill_threads(uint64_t size)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t n = size / FILL_MIN_PER_THREAD;

	if (cpus < 1)
		cpus = 1;
	if (n > (uint64_t)cpus)
		n = (uint64_t)cpus;
	if (n > FILL_MAX_THREADS)
		n = FILL_MAX_THREADS;
	return n ? (unsigned)n : 1;
}

/* 2 MiB aligned so that MADV_HUGEPAGE can use huge pages from the first byte;
 * the slack is unmapped again, so fill_free unmaps exactly [mem, mem+size). */
static void *map_anon(uint64_t size)
{
	size_t len = (size_t)size + (size >= FILL_THP ? FILL_THP : 0);
	uint8_t *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *mem;

	if (raw == MAP_FAILED)
		return NULL;
	if (size < FILL_THP)
		return raw;
	mem = (uint8_t *)(((uintptr_t)raw + FILL_THP - 1) & ~(uintptr_t)(FILL_THP - 1));
	if (mem > raw)
		munmap(raw, (size_t)(mem - raw));
	if (raw + len > mem + size)
		munmap(mem + size, (size_t)(raw + len - (mem + size)));
	/* Advisory: without THP the fill is slower, not wrong. */
	madvise(mem, (size_t)size, MADV_HUGEPAGE);
	return mem;
}

static void *fill_anon(const struct fill_spec *spec, uint64_t size, char *err, size_t errlen)
{
	uint64_t npages = size / FILL_PAGE;
	unsigned nthreads = fill_threads(size);
	struct fill_job jobs[FILL_MAX_THREADS];
	pthread_t tids[FILL_MAX_THREADS];
	bool started[FILL_MAX_THREADS] = {false};
	struct corpus corpus = {0};
	struct selector sel = selector_make(spec->ratio, spec->seed);
	char sz[32];
	uint8_t *mem;

	if (spec->kind != FILL_ZERO && !(spec->ratio >= 0.0 && spec->ratio <= 1.0)) {
		seterr(err, errlen, "fill ratio must be between 0 and 1, not %g", spec->ratio);
		return NULL;
	}

	for (unsigned t = 0; t < nthreads; t++) {
		jobs[t] = (struct fill_job){
			.first = npages * t / nthreads,
			.end = npages * (t + 1) / nthreads,
			.kind = spec->kind,
			.sel = sel,
			.random_key = mix64(spec->seed ^ 0xfa11da7aull),
		};
	}

	if (spec->kind == FILL_SYSTEM || spec->kind == FILL_CORPUS) {
		/* Where each job starts in the stream: filled pages before it. */
		uint64_t filled = 0;
		size_t need;
		int ret;

		for (unsigned t = 0; t < nthreads; t++) {
			jobs[t].pos = (size_t)filled; /* reduced modulo len below */
			filled += count_selected(&sel, jobs[t].first, jobs[t].end);
		}
		need = filled > SIZE_MAX / FILL_PAGE ? SIZE_MAX : (size_t)filled * FILL_PAGE;
		if (need < FILL_PAGE)
			need = FILL_PAGE; /* still validate the source when nothing is filled */
		ret = spec->kind == FILL_SYSTEM
			      ? system_corpus(&corpus, need, err, errlen)
			      : file_corpus(spec->path, &corpus, need, err, errlen);
		if (ret)
			return NULL;
		for (unsigned t = 0; t < nthreads; t++) {
			/* filled pages before * FILL_PAGE <= size: no overflow. */
			jobs[t].pos = (size_t)((uint64_t)jobs[t].pos * FILL_PAGE % corpus.len);
			jobs[t].corpus = &corpus;
		}
	}

	mem = map_anon(size);
	if (!mem) {
		seterr(err, errlen, "cannot allocate %s of guest memory: %s",
		       fmt_size(size, sz, sizeof(sz)), strerror(errno));
		free(corpus.buf);
		return NULL;
	}
	for (unsigned t = 0; t < nthreads; t++) {
		jobs[t].mem = mem;
		/* The last job runs here; a thread that cannot start runs here too. */
		if (t + 1 < nthreads && !pthread_create(&tids[t], NULL, fill_run, &jobs[t]))
			started[t] = true;
	}
	for (unsigned t = 0; t < nthreads; t++)
		if (!started[t])
			fill_run(&jobs[t]);
	for (unsigned t = 0; t < nthreads; t++)
		if (started[t])
			pthread_join(tids[t], NULL);
	free(corpus.buf);
	return mem;
}

/* ---- file-backed memory -------------------------------------------------- */

static void *fill_file(const char *path, uint64_t *size, char *err, size_t errlen)
{
	struct stat st;
	uint64_t len;
	char a[32], b[32];
	void *mem;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st)) {
		seterr(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		seterr(err, errlen, "%s: %s", path,
		       S_ISREG(st.st_mode) ? "file is empty" : "not a regular file");
		close(fd);
		return NULL;
	}
	/* Round up: the kernel zero-fills the tail of the last partial page,
	 * and no page lies wholly past EOF (that one would SIGBUS). */
	len = ((uint64_t)st.st_size + FILL_PAGE - 1) & ~(uint64_t)(FILL_PAGE - 1);
	if (*size && ((*size + FILL_PAGE - 1) & ~(uint64_t)(FILL_PAGE - 1)) != len) {
		seterr(err, errlen,
		       "--mem %s does not match file size %s of %s (%llu bytes; omit --mem or "
		       "give --mem %llu)",
		       fmt_size(*size, a, sizeof(a)), fmt_size(len, b, sizeof(b)), path,
		       (unsigned long long)st.st_size, (unsigned long long)len);
		close(fd);
		return NULL;
	}
	if (len > SIZE_MAX) {
		seterr(err, errlen, "%s: too large to map", path);
		close(fd);
		return NULL;
	}
	mem = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (mem == MAP_FAILED) {
		seterr(err, errlen, "cannot map %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	close(fd);
	/* Read faults only (see the top of the file).  MADV_POPULATE_READ
	 * reports I/O errors and a file truncated meanwhile as an error
	 * rather than SIGBUS; before Linux 5.14 it is EINVAL and we touch. */
	if (madvise(mem, (size_t)len, MADV_POPULATE_READ)) {
		if (errno != EINVAL) {
			seterr(err, errlen, "cannot read %s into memory: %s", path,
			       strerror(errno));
			munmap(mem, (size_t)len);
			return NULL;
		}
		for (uint64_t off = 0; off < len; off += FILL_PAGE)
			(void)*(volatile const uint8_t *)((const uint8_t *)mem + off);
	}
	*size = len;
	return mem;
}

/* ---- entry points --------------------------------------------------------- */

void *fill_create(const struct fill_spec *spec, uint64_t *size, char *err, size_t errlen)
{
	char sz[32];

	if (err && errlen)
		err[0] = '\0';
	if (spec->kind == FILL_FILE)
		return fill_file(spec->path, size, err, errlen);
	if (*size == 0) {
		seterr(err, errlen, "size must be > 0");
		return NULL;
	}
	if (*size > (uint64_t)SIZE_MAX - 2 * FILL_THP || *size > UINT64_MAX - FILL_PAGE) {
		seterr(err, errlen, "size %s is too large", fmt_size(*size, sz, sizeof(sz)));
		return NULL;
	}
	if (spec->kind != FILL_SYSTEM && spec->kind != FILL_CORPUS &&
	    spec->kind != FILL_RANDOM && spec->kind != FILL_ZERO) {
		seterr(err, errlen, "unknown fill kind %d", (int)spec->kind);
		return NULL;
	}
	*size = (*size + FILL_PAGE - 1) & ~(uint64_t)(FILL_PAGE - 1);
	return fill_anon(spec, *size, err, errlen);
}

void fill_free(void *mem, uint64_t size)
{
	if (mem)
		munmap(mem, (size_t)((size + FILL_PAGE - 1) & ~(uint64_t)(FILL_PAGE - 1)));
}
