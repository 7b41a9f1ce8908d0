/* SPDX-License-Identifier: MIT */
/*
 * uffd-remote: the writes of another process (QEMU, say) to memory that it
 * and this process both map shared -- the same file or memfd -- harvested
 * from here (Linux >= 6.7).
 *
 * That process registered its mapping for asynchronous userfaultfd
 * write-protection itself (liblivemig-track.so does it inside QEMU's mmap;
 * lm_uffd_wp_async_track), so its writes never block and never reach us as
 * messages.  Page tables are per process: our own mapping of the file is not
 * protected, and writes through it are not seen -- which is right, it is
 * only read.  sync is uffd-async's harvest run on /proc/PID/pagemap over the
 * other process's range: PAGEMAP_SCAN returns the pages it wrote and
 * re-protects them in its page tables, atomically per page table, so a
 * racing write is reported by this sync or the next.
 *
 * start checks what a mistake would otherwise turn into silently lost
 * pages: both ranges map the same file at the same offsets, shared, and the
 * other process's range is registered (PM_SCAN_CHECK_WPASYNC; an unmapped
 * hole would be skipped by the scan without a word, hence the maps check).
 * If the process later unmaps or remaps the range, a sync fails (-EPERM)
 * rather than report nothing; if it exits, the file stays and a sync fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirty/tracker.h"
#include "dirty/uffd_compat.h"

#define PAGE LM_UFFD_PAGE
#define VEC_LEN 4096u /* output ranges per PAGEMAP_SCAN call, as uffd-async */

struct remote_ctx {
	unsigned nregions;
	struct page_region *vec;
	struct {
		int pagemap; /* /proc/PID/pagemap of the region's process */
		uint64_t start, end;
	} r[];
};

/* The file behind a range of a process's address space. */
struct map_id {
	unsigned major, minor;
	uint64_t ino;
	uint64_t off; /* file offset of the range's first byte */
};

static int remote_probe(const char **why)
{
	const char *w = NULL;
	int err = lm_pagemap_scan_probe(&w);

	if (why)
		*why = w;
	return err;
}

/*
 * What [addr, addr + size) of process pid (0: this one) maps: 0 and *id when
 * every byte is a shared mapping of one file at contiguous offsets (a range
 * split into several vmas is fine); -ENOENT a hole; -EINVAL private, or
 * another file or offset; -errno reading /proc/PID/maps.
 */
static int mapping_of(pid_t pid, uint64_t addr, uint64_t size, struct map_id *id)
{
	char path[64], line[512];
	uint64_t next = addr, end = addr + size;
	bool first = true;
	int err = -ENOENT;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/maps");
	if (!(f = fopen(path, "re")))
		return -errno;
	while (next < end && fgets(line, sizeof(line), f)) {
		uint64_t s, e, off, ino;
		unsigned maj, min;
		char perms[5];

		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64, &s, &e, perms,
			   &off, &maj, &min, &ino) != 7)
			continue; /* never: the kernel's format */
		if (e <= next)
			continue;
		if (s > next)
			break; /* a hole at next */
		off += next - s;
		if (perms[3] != 's' || !ino ||
		    (!first && (maj != id->major || min != id->minor || ino != id->ino ||
				off != id->off + (next - addr)))) {
			err = -EINVAL;
			break;
		}
		if (first)
			*id = (struct map_id){ maj, min, ino, off };
		first = false;
		next = e;
	}
	fclose(f);
	return next >= end ? 0 : err;
}

static void remote_stop(void *p)
{
	struct remote_ctx *c = p;

	if (!c)
		return;
	/* Nothing to undo in the other process: its registration stays (it
	 * costs it one fault per page after each harvest, nothing more). */
	for (unsigned i = 0; i < c->nregions; i++)
		if (c->r[i].pagemap >= 0)
			close(c->r[i].pagemap);
	free(c->vec);
	free(c);
}

/* pid's /proc/PID/pagemap opened, or -errno with why. */
static int open_pagemap(pid_t pid, char *why, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = -errno;
		snprintf(why, len, "cannot open %s: %s", path, strerror(-e));
		return e;
	}
	return fd;
}

/* A failed PAGEMAP_SCAN of pid's [start, end) into why; returns e. */
static int scan_failed(int e, pid_t pid, uint64_t start, uint64_t end, char *why, size_t len)
{
	if (e == -EPERM)
		snprintf(why, len, "process %d has no write-protect registration on 0x%" PRIx64
			 "-0x%" PRIx64 " (started without liblivemig-track.so?)", (int)pid, start,
			 end);
	else if (e == -ENOTTY)
		snprintf(why, len, "this kernel has no PAGEMAP_SCAN (Linux < 6.7), so another "
			 "process's writes cannot be tracked");
	else
		snprintf(why, len, "PAGEMAP_SCAN of process %d failed: %s", (int)pid, strerror(-e));
	return e;
}

/* Region i of cfg: checks it and opens its process's pagemap into c->r[i]. */
static int start_region(struct remote_ctx *c, unsigned i, const struct lm_track_region *r,
			const struct lm_track_remote *w, char *why, size_t len)
{
	uint64_t start = w->addr, end = w->addr + r->size;
	struct map_id mine, theirs;
	int e;

	if (!w->pid) {
		snprintf(why, len, "region %u has no process that writes it", i);
		return -EINVAL;
	}
	if (((uintptr_t)r->base | r->size | start) % PAGE || !r->size || end < start)
		return -EINVAL;
	if ((e = mapping_of(0, (uintptr_t)r->base, r->size, &mine))) {
		snprintf(why, len, "region %u (%p, %" PRIu64 " bytes) is not a shared mapping of a file "
			 "or memfd here", i, r->base, r->size);
		return e;
	}
	e = mapping_of(w->pid, start, r->size, &theirs);
	if (e == -ENOENT || e == -ESRCH)
		snprintf(why, len, "process %d has no mapping over 0x%" PRIx64 "-0x%" PRIx64
			 " (or no longer exists)", (int)w->pid, start, end);
	else if (!e && memcmp(&mine, &theirs, sizeof(mine)))
		e = -EINVAL;
	if (e == -EINVAL)
		snprintf(why, len, "process %d does not map 0x%" PRIx64 "-0x%" PRIx64 " shared from "
			 "the same file and offset as region %u", (int)w->pid, start, end, i);
	if (e)
		return e;

	if ((c->r[i].pagemap = open_pagemap(w->pid, why, len)) < 0)
		return c->r[i].pagemap;
	c->r[i].start = start;
	c->r[i].end = end;
	/* One harvest re-arms every page written so far; they are all sent in
	 * the first pass anyway.  It also proves the registration. */
	int64_t n = lm_pagemap_harvest(c->r[i].pagemap, start, end, c->vec, VEC_LEN, NULL);
	return n < 0 ? scan_failed((int)n, w->pid, start, end, why, len) : 0;
}

int lm_uffd_remote_check(pid_t pid, uint64_t start, uint64_t end, char *why, size_t len)
{
	int pm = open_pagemap(pid, why, len);
	if (pm < 0)
		return pm;
	int e = lm_pagemap_wp_check(pm, start, end);
	close(pm);
	return e ? scan_failed(e, pid, start, end, why, len) : 0;
}

static int remote_start(void **ctx, const struct lm_tracker_cfg *cfg, char *why, size_t len)
{
	struct remote_ctx *c;
	int e = 0;

	if (!ctx)
		return -EINVAL;
	*ctx = NULL;
	if (!cfg || !cfg->regions || !cfg->nregions || !cfg->remote)
		return -EINVAL;
	c = calloc(1, sizeof(*c) + cfg->nregions * sizeof(c->r[0]));
	if (!c)
		return -ENOMEM;
	for (unsigned i = 0; i < cfg->nregions; i++)
		c->r[i].pagemap = -1;
	c->nregions = cfg->nregions;
	if (!(c->vec = malloc(VEC_LEN * sizeof(*c->vec))))
		e = -ENOMEM;
	for (unsigned i = 0; !e && i < cfg->nregions; i++)
		e = start_region(c, i, &cfg->regions[i], &cfg->remote[i], why, len);
	if (e) {
		remote_stop(c);
		return e;
	}
	*ctx = c;
	return 0;
}

static int64_t remote_sync(void *p, uint64_t *const *bitmap)
{
	struct remote_ctx *c = p;
	int64_t total = 0;

	if (!c || !bitmap)
		return -EINVAL;
	for (unsigned i = 0; i < c->nregions; i++) {
		int64_t n = lm_pagemap_harvest(c->r[i].pagemap, c->r[i].start, c->r[i].end, c->vec,
					       VEC_LEN, bitmap[i]);

		if (n < 0)
			return n;
		total += n;
	}
	return total;
}

const struct lm_tracker_ops lm_tracker_uffd_remote_ops = {
	.name = "uffd-remote",
	.help = "another process's writes to shared memory (QEMU with liblivemig-track.so; "
		"kernel >= 6.7)",
	.needs_remote = true,
	.probe = remote_probe,
	.start = remote_start,
	.sync = remote_sync,
	.stop = remote_stop,
};
