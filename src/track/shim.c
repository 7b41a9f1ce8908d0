/* SPDX-License-Identifier: MIT */
/*
 * liblivemig-track.so: lets livemig track the guest-RAM writes of an
 * unmodified QEMU (or any process) from outside it.
 *
 *   LD_PRELOAD=/usr/lib/.../liblivemig-track.so LIVEMIG_TRACK=/dev/shm/vm.ram \
 *       qemu-system-x86_64 ... -object memory-backend-file,...,mem-path=/dev/shm/vm.ram,share=on
 *
 * It interposes mmap and mmap64 (Debian's QEMU calls mmap64).  After the
 * real call succeeds, a MAP_SHARED mapping of a file listed in
 * LIVEMIG_TRACK=PATH[:PATH...] (the same inode: compared by st_dev/st_ino,
 * the paths resolved once) is registered for asynchronous userfaultfd
 * write-protection and protected whole; the userfaultfd stays open for the
 * life of the process.  That is all: no thread, no socket, no signal.  The
 * kernel resolves each write to a protected page in the writing thread (it
 * drops the protection, the write proceeds, no message), so QEMU never
 * blocks; livemig's uffd-remote tracker harvests and re-protects the written
 * pages from its own process with PAGEMAP_SCAN on /proc/PID/pagemap.
 *
 * It never fails QEMU's mmap: when registration fails it writes one line
 * to stderr and leaves that mapping untracked (livemig then refuses to
 * track it live, saying so).  A tracked mapping that is unmapped keeps its
 * userfaultfd open (one fd); QEMU maps guest RAM once.
 *
 * Built alone from this file and src/dirty/uffd_common.c (the same
 * registration code uffd-async uses); everything but mmap and mmap64 is
 * hidden.
 */
/* Meson builds with _FILE_OFFSET_BITS=64, under which glibc's headers rename
 * mmap to mmap64: both symbols must be defined here, each under its name. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirty/uffd_compat.h"

#define API __attribute__((visibility("default")))
#define MAX_PATHS 16

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
/* mmap64 is called through the same type: 64-bit targets only. */
_Static_assert(sizeof(off_t) == sizeof(off64_t), "off_t is not 64 bits");

/*
 * The paths of LIVEMIG_TRACK, resolved once (pthread_once) and read-only
 * after.  A preload library has no caller to hand it a context: this, and
 * the resolved real functions, are its only state.
 */
static struct {
	unsigned n;
	dev_t dev[MAX_PATHS];
	ino_t ino[MAX_PATHS];
} tracked;
static pthread_once_t tracked_once = PTHREAD_ONCE_INIT;
static _Atomic(mmap_fn) real_mmap, real_mmap64;

static void say(const char *what, const char *path, const char *why, int err)
{
	/* One line, one write(2): no stdio buffers inside someone's mmap. */
	dprintf(2, "liblivemig-track: %s%s%s: %s (%s)\n", what, path ? " " : "", path ? path : "",
		why, strerror(err));
}

static void resolve_paths(void)
{
	const char *env = getenv("LIVEMIG_TRACK");
	char path[4096];

	while (env && *env) {
		size_t len = strcspn(env, ":");
		struct stat st;

		if (len && len < sizeof(path)) {
			memcpy(path, env, len);
			path[len] = 0;
			if (tracked.n == MAX_PATHS)
				say("not tracked (too many paths)", path, "LIVEMIG_TRACK", E2BIG);
			else if (stat(path, &st))
				/* QEMU creates a missing mem-path file itself, after
				 * we looked: the caller must create it first. */
				say("not tracked", path, "cannot stat it (create it before starting)",
				    errno);
			else {
				tracked.dev[tracked.n] = st.st_dev;
				tracked.ino[tracked.n++] = st.st_ino;
			}
		}
		env += len + (env[len] == ':');
	}
}

static bool is_tracked(int fd)
{
	struct stat st;

	pthread_once(&tracked_once, resolve_paths);
	if (!tracked.n || fstat(fd, &st))
		return false;
	for (unsigned i = 0; i < tracked.n; i++)
		if (tracked.dev[i] == st.st_dev && tracked.ino[i] == st.st_ino)
			return true;
	return false;
}

/* Registers a fresh mapping; on failure says so and leaves it untracked. */
static void track(void *addr, size_t len)
{
	const char *why = NULL;
	uint64_t size = ((uint64_t)len + LM_UFFD_PAGE - 1) & ~(uint64_t)(LM_UFFD_PAGE - 1);
	int uffd = lm_uffd_wp_async_open(&why), err;

	if (uffd < 0) {
		say("mapping not tracked", NULL, why, -uffd);
		return;
	}
	if ((err = lm_uffd_wp_async_track(uffd, (uintptr_t)addr, size, &why))) {
		say("mapping not tracked", NULL, why, -err);
		close(uffd);
	}
	/* Success: the fd stays open; closing it would end the registration. */
}

static void *interpose(_Atomic(mmap_fn) *real, const char *name, void *addr, size_t len,
		       int prot, int flags, int fd, off_t off)
{
	mmap_fn f = atomic_load_explicit(real, memory_order_relaxed);
	void *p;

	if (!f) {
		/* Two threads may race here; both store the same pointer. */
		f = (mmap_fn)dlsym(RTLD_NEXT, name);
		if (!f) {
			errno = ENOSYS;
			return MAP_FAILED;
		}
		atomic_store_explicit(real, f, memory_order_relaxed);
	}
	p = f(addr, len, prot, flags, fd, off);
	/* MAP_SHARED_VALIDATE includes MAP_SHARED's bit. */
	if (p != MAP_FAILED && (flags & MAP_SHARED) && fd >= 0 && is_tracked(fd)) {
		int saved = errno;

		track(p, len);
		errno = saved;
	}
	return p;
}

API void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return interpose(&real_mmap, "mmap", addr, len, prot, flags, fd, off);
}

API void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	return interpose(&real_mmap64, "mmap64", addr, len, prot, flags, fd, off);
}
