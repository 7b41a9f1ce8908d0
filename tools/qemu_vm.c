/* SPDX-License-Identifier: MIT */
#include "qemu_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dirty/tracker.h"
#include "qmp/jsonline.h"
#include "util/util.h"

static int fail(struct vm *vm, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct vm *vm, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vm->err, sizeof(vm->err), fmt, ap);
	va_end(ap);
	return rc;
}

/* {"key": value} (value owned by the result). */
static json_object *arg(const char *key, json_object *value)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, key, value);
	return o;
}

/* Runs cmd with args (freed here); 0 and *ret (may be NULL), or -errno. */
static int run(struct vm *vm, const char *cmd, json_object *args, json_object **ret)
{
	int r = lm_qmp_execute(vm->q, cmd, args, VM_QMP_MS, ret);
	json_object_put(args);
	return r;
}

int vm_open(struct vm *vm, const char *who, const char *path)
{
	memset(vm, 0, sizeof(*vm));
	vm->who = who;
	vm->devfd = -1;
	vm->q = lm_qmp_connect(path, VM_QMP_MS, vm->err, sizeof(vm->err));
	if (!vm->q)
		return 1;
	vm->pid = lm_qmp_pid(vm->q);
	return 0;
}

void vm_close(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nram; i++)
		if (vm->ram[i].host)
			munmap(vm->ram[i].host, vm->ram[i].size);
	vm->nram = 0;
	if (vm->devfd >= 0)
		close(vm->devfd);
	vm->devfd = -1;
	lm_qmp_close(vm->q);
	vm->q = NULL;
}

/* Where QEMU maps r's file (a mapping of exactly its size), and whether
 * the tracking shim is loaded; from /proc/PID/maps. */
static int scan_maps(struct vm *vm)
{
	char path[64], line[PATH_MAX + 128];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)vm->pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return fail(vm, 2, "cannot read %s (the %s QEMU's memory map): %s", path, vm->who,
			    strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;
		int off = 0;
		if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2 || !off)
			continue;
		char *name = line + off;
		name[strcspn(name, "\n")] = 0;
		if (strstr(name, "liblivemig-track.so"))
			vm->shim = true;
		for (unsigned i = 0; i < vm->nram; i++)
			if (!vm->ram[i].qemu_addr && !strcmp(name, vm->ram[i].path) &&
			    hi - lo == vm->ram[i].size)
				vm->ram[i].qemu_addr = lo;
	}
	fclose(f);
	for (unsigned i = 0; i < vm->nram; i++)
		if (!vm->ram[i].qemu_addr)
			return fail(vm, 2, "the %s QEMU does not map %s whole (/proc/%d/maps)",
				    vm->who, vm->ram[i].path, (int)vm->pid);
	return 0;
}

/* One memory backend from query-memdev: shared, with a file, mapped here. */
static int take_backend(struct vm *vm, json_object *m, bool writable)
{
	const char *id = lm_json_get_str(m, "id");
	json_object *v;
	if (!id)
		return fail(vm, 2, "the %s QEMU has a memory backend without an id", vm->who);
	if (vm->nram == VM_MAX_RAM)
		return fail(vm, 2, "the %s QEMU has more than %d memory backends", vm->who,
			    VM_MAX_RAM);
	struct vm_ram *r = &vm->ram[vm->nram];
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->size = json_object_object_get_ex(m, "size", &v) ? (uint64_t)json_object_get_int64(v) : 0;
	if (!json_object_object_get_ex(m, "share", &v) || !json_object_get_boolean(v))
		return fail(vm, 2, "memory backend '%s' of the %s QEMU is not shared: start it with "
			    "share=on (livemig reads and writes the guest RAM through the backing "
			    "file)", id, vm->who);
	char qom[128];
	snprintf(qom, sizeof(qom), "/objects/%s", id);
	json_object *a = json_object_new_object(), *ret = NULL;
	json_object_object_add(a, "path", json_object_new_string(qom));
	json_object_object_add(a, "property", json_object_new_string("mem-path"));
	if (run(vm, "qom-get", a, &ret) || !json_object_is_type(ret, json_type_string)) {
		json_object_put(ret);
		return fail(vm, 2, "memory backend '%s' of the %s QEMU has no mem-path: use "
			    "memory-backend-file (a file in /dev/shm, hugetlbfs or a disk)", id,
			    vm->who);
	}
	snprintf(r->path, sizeof(r->path), "%s", json_object_get_string(ret));
	json_object_put(ret);
	int fd = open(r->path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return fail(vm, 2, "cannot open %s (memory backend '%s'): %s", r->path, id,
			    strerror(errno));
	r->host = mmap(NULL, r->size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
	close(fd);
	if (r->host == MAP_FAILED) {
		r->host = NULL;
		return fail(vm, 2, "cannot map %s: %s", r->path, strerror(errno));
	}
	vm->nram++;
	return 0;
}

static void add_cap(json_object *caps, const char *name, bool on)
{
	json_object *cap = json_object_new_object();
	json_object_object_add(cap, "capability", json_object_new_string(name));
	json_object_object_add(cap, "state", json_object_new_boolean(on));
	json_object_array_add(caps, cap);
}

int vm_prepare(struct vm *vm, bool writable)
{
	json_object *list = NULL;
	if (run(vm, "query-memdev", NULL, &list) || !json_object_is_type(list, json_type_array)) {
		json_object_put(list);
		return fail(vm, 2, "the %s QEMU answers no query-memdev: %s", vm->who,
			    lm_qmp_error(vm->q));
	}
	int rc = 0;
	size_t n = json_object_array_length(list);
	if (!n)
		rc = fail(vm, 2, "the %s QEMU has no memory backend: start it with -object "
			  "memory-backend-file,id=mem0,...,share=on -machine memory-backend=mem0",
			  vm->who);
	for (size_t i = 0; i < n && !rc; i++)
		rc = take_backend(vm, json_object_array_get_idx(list, i), writable);
	json_object_put(list);
	if (rc || (rc = scan_maps(vm)))
		return rc;

	/* QEMU then leaves the shared RAM to us and migrates the rest, on
	 * the one fd we give it: multifd, if an earlier migration of this
	 * QEMU (e.g. into it) left it on, would want more connections. */
	json_object *caps = json_object_new_array();
	add_cap(caps, "x-ignore-shared", true);
	add_cap(caps, "multifd", false);
	if (run(vm, "migrate-set-capabilities", arg("capabilities", caps), NULL))
		return fail(vm, 2, "cannot set x-ignore-shared and multifd off on the %s QEMU: %s",
			    vm->who, lm_qmp_error(vm->q));
	return 0;
}

int vm_tracked(struct vm *vm, unsigned i)
{
	char why[300];
	const struct vm_ram *r = &vm->ram[i];
	int e = lm_uffd_remote_check(vm->pid, r->qemu_addr, r->qemu_addr + r->size, why,
				     sizeof(why));
	if (e == -EPERM) /* the shim runs (vm->shim): it was not told of this file */
		return fail(vm, 1, "the tracking shim in the source QEMU does not track %s: name it "
			    "in LIVEMIG_TRACK, and create the file before QEMU starts", r->path);
	if (e)
		return fail(vm, 1, "the source QEMU: %s", why);
	return 0;
}

unsigned vm_vcpu_tids(struct vm *vm, pid_t *tids, unsigned max)
{
	json_object *cpus = NULL, *v;
	unsigned n = 0;
	if (run(vm, "query-cpus-fast", NULL, &cpus) || !json_object_is_type(cpus, json_type_array)) {
		json_object_put(cpus);
		return (unsigned)fail(vm, 0, "query-cpus-fast on the %s QEMU: %s", vm->who,
				      lm_qmp_error(vm->q));
	}
	size_t all = json_object_array_length(cpus);
	for (size_t i = 0; i < all && n < max; i++)
		if (json_object_object_get_ex(json_object_array_get_idx(cpus, i), "thread-id", &v))
			tids[n++] = (pid_t)json_object_get_int(v);
	json_object_put(cpus);
	if (all > max)
		return (unsigned)fail(vm, 0, "the %s QEMU has %zu vCPUs, more than the %u that can "
				      "be throttled", vm->who, all, max);
	if (!n)
		fail(vm, 0, "the %s QEMU names no vCPU thread", vm->who);
	return n;
}

/* cmd's "status" member into buf ("" when it has none), and its answer
 * into *ret (the caller's).  0 or -errno. */
static int query_status(struct vm *vm, const char *cmd, char *buf, size_t len, json_object **ret)
{
	*ret = NULL;
	int r = run(vm, cmd, NULL, ret);
	const char *st = r ? NULL : lm_json_get_str(*ret, "status");
	snprintf(buf, len, "%s", st ? st : "");
	return r;
}

int vm_status(struct vm *vm, char *buf, size_t len)
{
	json_object *ret;
	int r = query_status(vm, "query-status", buf, len, &ret);
	json_object_put(ret);
	return r ? r : buf[0] ? 0 : -EPROTO;
}

int vm_devfd(struct vm *vm)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		return fail(vm, 1, "socketpair: %s", strerror(errno));
	int r = lm_qmp_getfd(vm->q, sp[1], VM_DEVFD_NAME, VM_QMP_MS);
	close(sp[1]); /* QEMU holds its copy: its close is our end of stream */
	if (r) {
		close(sp[0]);
		return fail(vm, 1, "getfd on the %s QEMU: %s", vm->who, lm_qmp_error(vm->q));
	}
	vm->devfd = sp[0];
	return 0;
}

/* cmd, then its event's timestamp into *us. */
static int run_until(struct vm *vm, const char *cmd, const char *event, int64_t *us)
{
	json_object *ev = NULL;
	if (run(vm, cmd, NULL, NULL))
		return fail(vm, 1, "%s on the %s QEMU: %s", cmd, vm->who, lm_qmp_error(vm->q));
	if (lm_qmp_wait_event(vm->q, event, VM_QMP_MS, &ev))
		return fail(vm, 1, "%s on the %s QEMU: no %s event", cmd, vm->who, event);
	*us = lm_qmp_event_us(ev);
	json_object_put(ev);
	return 0;
}

int vm_stop(struct vm *vm)
{
	return run_until(vm, "stop", "STOP", &vm->stop_us);
}

int vm_cont(struct vm *vm)
{
	char st[32];
	if (vm->migrating && !vm_migrate_status(vm, st, sizeof(st)) && strcmp(st, "completed") &&
	    strcmp(st, "failed") && strcmp(st, "cancelled")) {
		run(vm, "migrate_cancel", NULL, NULL);
		vm_migrate_wait(vm, VM_MIGRATE_MS);
	}
	vm->migrating = false;
	return run_until(vm, "cont", "RESUME", &vm->resume_us);
}

int vm_migrate(struct vm *vm, bool incoming)
{
	vm->migrating = true;
	if (run(vm, incoming ? "migrate-incoming" : "migrate",
		arg("uri", json_object_new_string("fd:" VM_DEVFD_NAME)), NULL))
		return fail(vm, -EIO, "%s on the %s QEMU: %s",
			    incoming ? "migrate-incoming" : "migrate", vm->who, lm_qmp_error(vm->q));
	return 0;
}

int vm_migrate_status(struct vm *vm, char *buf, size_t len)
{
	json_object *ret;
	int r = query_status(vm, "query-migrate", buf, len, &ret);
	if (!strcmp(buf, "failed")) {
		const char *why = lm_json_get_str(ret, "error-desc");
		fail(vm, 0, "QEMU's device-state migration on the %s failed: %s", vm->who,
		     why ? why : "(no reason given)");
	}
	json_object_put(ret);
	return r;
}

int vm_migrate_wait(struct vm *vm, int ms)
{
	char st[32];
	uint64_t end = lm_now_ns() + (uint64_t)ms * 1000000;
	/* Polled every 2 ms: this wait is inside the guest's downtime, and
	 * the load typically ends a few ms after the stream. */
	for (;;) {
		int r = vm_migrate_status(vm, st, sizeof(st));
		if (r)
			return fail(vm, r, "query-migrate on the %s QEMU: %s", vm->who,
				    lm_qmp_error(vm->q));
		if (!strcmp(st, "completed"))
			return 0;
		if (!strcmp(st, "failed"))
			return -EIO;
		if (!strcmp(st, "cancelled"))
			return fail(vm, -EIO, "QEMU's device-state migration on the %s was cancelled",
				    vm->who);
		if (lm_now_ns() >= end)
			return fail(vm, -EAGAIN, "QEMU's device-state migration on the %s has not "
				    "ended (status %s)", vm->who, st);
		nanosleep(&(struct timespec){0, 2000000}, NULL);
	}
}
