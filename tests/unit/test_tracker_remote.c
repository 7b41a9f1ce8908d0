/* SPDX-License-Identifier: MIT */
/*
 * uffd-remote against a child process that maps the same memory shared and
 * writes it, as QEMU would:
 *   - a forked child registers its mapping of a memfd with the functions the
 *     preload library calls (lm_uffd_wp_async_open/_track);
 *   - an exec'd child (this program, "child" mode) gets its registration
 *     from liblivemig-track.so itself (LD_PRELOAD, LIVEMIG_TRACK), through
 *     mmap and through mmap64;
 *   - without a registration, or with mappings of other memory, start fails
 *     with the reason the user sees;
 *   - lm_uffd_remote_check tells a registered range from one without, and
 *     leaves the writes for the next harvest;
 *   - the policy: a remote means uffd-remote, and only then.
 *
 * Usage: test_tracker_remote PATH-TO-liblivemig-track.so
 * Exit 0 pass, 1 fail, 77 when this kernel lacks PAGEMAP_SCAN/WP_ASYNC.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dirty/tracker.h"
#include "dirty/uffd_compat.h"
#include "t.h"

#define PAGE 4096u
#define PAGES 64u /* one bitmap word */
#define SIZE ((uint64_t)PAGES * PAGE)

/* A child that writes pages of its mappings on command. */
struct child {
	pid_t pid;
	int cmd, ack;     /* our ends of its pipes */
	uint64_t addr[2]; /* its mappings (the second: mmap64, exec'd child only) */
};

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void xwrite(int fd, const void *p, size_t n)
{
	if (write(fd, p, n) != (ssize_t)n)
		die("write");
}

static void xread(int fd, void *p, size_t n)
{
	if (read(fd, p, n) != (ssize_t)n)
		die("read");
}

/* The child's side: reports its mappings, then writes page cmd % PAGES of
 * mapping cmd / PAGES for each command, acks, and exits on -1. */
static void child_loop(uint8_t *m0, uint8_t *m1, int cmd, int ack)
{
	uint64_t a[2] = { (uintptr_t)m0, (uintptr_t)m1 };
	int32_t c;

	xwrite(ack, a, sizeof(a));
	while (read(cmd, &c, sizeof(c)) == sizeof(c) && c >= 0) {
		uint8_t *m = c / PAGES ? m1 : m0;

		m[(uint64_t)(c % PAGES) * PAGE + 8]++;
		xwrite(ack, "k", 1);
	}
	_exit(0);
}

static void child_write(struct child *ch, int32_t page)
{
	char k;

	xwrite(ch->cmd, &page, sizeof(page));
	xread(ch->ack, &k, 1);
}

static void child_end(struct child *ch)
{
	int32_t quit = -1;
	int st;

	xwrite(ch->cmd, &quit, sizeof(quit));
	waitpid(ch->pid, &st, 0);
	close(ch->cmd);
	close(ch->ack);
}

/* Forks with a command and an ack pipe.  Parent: ch->cmd and ch->ack set,
 * returns the pid.  Child: returns 0 with its ends in *cmd and *ack. */
static pid_t fork_piped(struct child *ch, int *cmd, int *ack)
{
	int c[2], a[2];

	if (pipe(c) || pipe(a))
		die("pipe");
	ch->pid = fork();
	if (ch->pid < 0)
		die("fork");
	close(ch->pid ? c[0] : c[1]);
	close(ch->pid ? a[1] : a[0]);
	ch->cmd = c[1];
	ch->ack = a[0];
	*cmd = c[0];
	*ack = a[1];
	return ch->pid;
}

/* Forks a child that maps fd shared and, if reg, registers it the way the
 * preload library does. */
static void fork_child(struct child *ch, int fd, bool reg)
{
	int cmd, ack;

	if (fork_piped(ch, &cmd, &ack) == 0) {
		/* A fresh mapping at an address of its own, as QEMU's. */
		uint8_t *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		const char *why = "";
		int u;

		if (m == MAP_FAILED)
			die("child mmap");
		m[0] = 1; /* written before registration: not reported */
		if (reg && ((u = lm_uffd_wp_async_open(&why)) < 0 ||
			    lm_uffd_wp_async_track(u, (uintptr_t)m, SIZE, &why))) {
			fprintf(stderr, "child: %s\n", why);
			_exit(1);
		}
		m[PAGE] = 1; /* written after registration, before start */
		child_loop(m, m, cmd, ack);
	}
	xread(ch->ack, ch->addr, sizeof(ch->addr));
}

/* Runs this program as a child under the preload library, tracking path
 * (or track, when given, in LIVEMIG_TRACK). */
static void exec_child(struct child *ch, const char *self, const char *shim, const char *path,
		       const char *track)
{
	int cmd, ack;

	if (fork_piped(ch, &cmd, &ack) == 0) {
		char c[16], a[16];

		snprintf(c, sizeof(c), "%d", cmd);
		snprintf(a, sizeof(a), "%d", ack);
		setenv("LD_PRELOAD", shim, 1);
		setenv("LIVEMIG_TRACK", track ? track : path, 1);
		execl(self, self, "child", path, c, a, (char *)NULL);
		die("exec");
	}
	xread(ch->ack, ch->addr, sizeof(ch->addr));
}

/* "child" mode: maps path twice, through mmap and through mmap64. */
static int child_main(char **argv)
{
	int fd = open(argv[2], O_RDWR);
	uint8_t *m0, *m1;

	if (fd < 0)
		die("child open");
	m0 = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	m1 = mmap64(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m0 == MAP_FAILED || m1 == MAP_FAILED)
		die("child mmap");
	child_loop(m0, m1, atoi(argv[3]), atoi(argv[4]));
	return 0;
}

static int open_remote(const struct child *ch, uint8_t *const *host, unsigned n, const char *name,
		       const struct lm_tracker_ops **ops, void **ctx, char *why, size_t len)
{
	struct lm_track_region r[2] = { { host[0], SIZE }, { host[n - 1], SIZE } };
	struct lm_track_remote rem[2] = { { ch->pid, ch->addr[0] }, { ch->pid, ch->addr[1] } };
	struct lm_tracker_cfg cfg = { .regions = r, .nregions = n, .remote = rem };

	return lm_tracker_open(&cfg, name, ops, ctx, why, len);
}

/* lm_uffd_remote_check on the child's first mapping; its sentence into why. */
static int wp_check(const struct child *ch, char *why, size_t len)
{
	return lm_uffd_remote_check(ch->pid, ch->addr[0], ch->addr[0] + SIZE, why, len);
}

static bool bit(const uint64_t *bm, unsigned page)
{
	return bm[page / 64] >> (page % 64) & 1;
}

/* A registered child: exactly the pages it wrote since the last sync. */
static void check_tracking(struct child *ch, uint8_t *const *host, unsigned n, const char *what)
{
	const struct lm_tracker_ops *ops;
	void *ctx;
	char why[256];
	uint64_t b[2][1] = { { 0 } };
	uint64_t *const bm[2] = { b[0], b[1] };
	int e = open_remote(ch, host, n, "auto", &ops, &ctx, why, sizeof(why));

	CHECKF(e == 0 && ops == lm_tracker_by_name("uffd-remote"), "%s: %s", what, why);
	if (e)
		return;
	/* Start re-armed what was written before it. */
	CHECKF(ops->sync(ctx, bm) == 0 && !b[0][0], "%s", what);
	child_write(ch, 3);
	child_write(ch, 7);
	child_write(ch, PAGES - 1);
	child_write(ch, 3);
	if (n == 2)
		child_write(ch, PAGES + 5); /* its second mapping */
	/* The registration check neither reports nor re-protects. */
	char why_not[256];
	CHECKF(wp_check(ch, why_not, sizeof(why_not)) == 0, "%s: %s", what, why_not);
	int64_t got = ops->sync(ctx, bm);
	CHECKF(got == 3 + (n == 2), "%s: %" PRId64, what, got);
	CHECKF(b[0][0] == (1ull << 3 | 1ull << 7 | 1ull << 63), "%s: %" PRIx64, what, b[0][0]);
	CHECK(n == 1 || b[1][0] == 1ull << 5);
	/* Re-protected: nothing new.  Our own writes are not its writes. */
	host[0][9 * PAGE] = 1;
	CHECKF(ops->sync(ctx, bm) == 0, "%s", what);
	child_write(ch, 9);
	CHECKF(ops->sync(ctx, bm) == 1 && bit(b[0], 9), "%s", what);
	/* The child gone (its mm with it): a sync fails, never reports nothing. */
	child_end(ch);
	got = ops->sync(ctx, bm);
	CHECKF(got < 0, "%s: sync after the child exited: %" PRId64, what, got);
	ops->stop(ctx);
}

/* Start's refusal, with the reason the user sees. */
static void check_refused(struct child *ch, uint8_t *const *host, unsigned n, const char *want)
{
	const struct lm_tracker_ops *ops;
	void *ctx;
	char why[256], w[256];

	snprintf(w, sizeof(w), want, (int)ch->pid, ch->addr[0], ch->addr[0] + SIZE);
	int e = open_remote(ch, host, n, "auto", &ops, &ctx, why, sizeof(why));
	CHECKF(e < 0 && !ops && !ctx && !strcmp(why, w), "%d %s\n  want %s", e, why, w);
	child_end(ch);
}

static void test_policy(uint8_t *const *host)
{
	struct child ch = { .pid = getpid(), .addr = { (uintptr_t)host[0] } };
	const struct lm_tracker_ops *ops;
	void *ctx;
	char why[256];
	struct lm_track_region r = { host[0], SIZE };
	struct lm_tracker_cfg cfg = { .regions = &r, .nregions = 1 };

	/* Another tracker, named, with a remote. */
	CHECK(open_remote(&ch, host, 1, "uffd-async", &ops, &ctx, why, sizeof(why)) == -EINVAL);
	CHECKF(!strcmp(why, "dirty-tracker uffd-async: not usable here: the memory is written by "
			    "another process (livemig_ram_set_remote): only uffd-remote tracks that"),
	       "%s", why);
	/* uffd-remote without one. */
	CHECK(lm_tracker_open(&cfg, "uffd-remote", &ops, &ctx, why, sizeof(why)) == -EINVAL);
	CHECKF(!strcmp(why, "dirty-tracker uffd-remote: not usable here: needs the process that "
			    "writes the memory (livemig_ram_set_remote)"),
	       "%s", why);
	/* Private memory here. */
	void *priv = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	r.base = priv;
	struct lm_track_remote rem = { getpid(), (uintptr_t)host[0] };
	cfg.remote = &rem;
	CHECK(lm_tracker_open(&cfg, "uffd-remote", &ops, &ctx, why, sizeof(why)) == -EINVAL);
	CHECKF(strstr(why, "is not a shared mapping of a file or memfd here"), "%s", why);
	munmap(priv, SIZE);
}

int main(int argc, char **argv)
{
	const char *why = NULL;
	char path[64];
	int mfd, ffd, e;

	if (argc == 5 && !strcmp(argv[1], "child"))
		return child_main(argv);
	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH-TO-liblivemig-track.so\n", argv[0]);
		return 1;
	}
	if ((e = lm_tracker_by_name("uffd-remote")->probe(&why)) ||
	    (e = lm_uffd_probe(true, UFFD_FEATURE_WP_ASYNC, "no WP_ASYNC", &why))) {
		printf("skipped: %s (%s)\n", why, strerror(-e));
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);

	/* A memfd, registered by a forked child. */
	mfd = memfd_create("lm-remote", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, SIZE))
		die("memfd");
	uint8_t *mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	uint8_t *const m1[1] = { mem };
	struct child ch;
	fork_child(&ch, mfd, true);
	check_tracking(&ch, m1, 1, "forked child");

	/* Not registered. */
	fork_child(&ch, mfd, false);
	char said[256], want[256];
	CHECK(wp_check(&ch, said, sizeof(said)) == -EPERM);
	snprintf(want, sizeof(want), "process %d has no write-protect registration on 0x%" PRIx64
		 "-0x%" PRIx64 " (started without liblivemig-track.so?)", (int)ch.pid, ch.addr[0],
		 ch.addr[0] + SIZE); /* as uffd-remote's start says it */
	CHECKF(!strcmp(said, want), "%s", said);
	check_refused(&ch, m1, 1,
		      "dirty-tracker uffd-remote: cannot track this memory: process %d has no "
		      "write-protect registration on 0x%" PRIx64 "-0x%" PRIx64
		      " (started without liblivemig-track.so?)");
	/* Registered, but the block here starts one page further into the file. */
	uint8_t *off = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, PAGE);
	if (off == MAP_FAILED || ftruncate(mfd, SIZE + PAGE))
		die("mmap");
	uint8_t *const m2[1] = { off };
	fork_child(&ch, mfd, true);
	check_refused(&ch, m2, 1,
		      "dirty-tracker uffd-remote: cannot track this memory: process %d does not map "
		      "0x%" PRIx64 "-0x%" PRIx64 " shared from the same file and offset as region 0");
	munmap(off, SIZE);

	/* A file, registered by the preload library in an exec'd child. */
	snprintf(path, sizeof(path), "/dev/shm/lm-remote-%d.img", (int)getpid());
	ffd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (ffd < 0 || ftruncate(ffd, SIZE))
		die(path);
	uint8_t *f0 = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ffd, 0);
	uint8_t *f1 = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ffd, 0);
	uint8_t *const fm[2] = { f0, f1 };
	exec_child(&ch, argv[0], argv[1], path, NULL);
	check_tracking(&ch, fm, 2, "exec'd child under liblivemig-track.so");
	/* LIVEMIG_TRACK names another file: nothing registered. */
	exec_child(&ch, argv[0], argv[1], path, "/dev/null");
	check_refused(&ch, fm, 1,
		      "dirty-tracker uffd-remote: cannot track this memory: process %d has no "
		      "write-protect registration on 0x%" PRIx64 "-0x%" PRIx64
		      " (started without liblivemig-track.so?)");
	unlink(path);

	test_policy(m1);
	T_DONE();
}
