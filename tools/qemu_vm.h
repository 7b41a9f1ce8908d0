/* SPDX-License-Identifier: MIT */
/*
 * One local QEMU as livemig's qemu-source and qemu-dest see it: its QMP
 * connection, its pid, its RAM blocks (memory backends, mapped here too)
 * and the steps of QEMU's own migration that carries its device state.
 * Used from one thread at a time (the CLI's main thread, or the library's
 * control thread through the device and guest ops).
 */
#ifndef LM_TOOLS_QEMU_VM_H
#define LM_TOOLS_QEMU_VM_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "qmp/qmp.h"

#define VM_MAX_RAM 16
#define VM_QMP_MS 5000         /* one QMP command's answer */
#define VM_MIGRATE_MS 10000    /* QEMU's device-state migration to end */
#define VM_DEVFD_NAME "livemig-devstate"

struct vm_ram {
	char id[64];               /* the memory backend's id: the RAM block's name */
	char path[PATH_MAX];       /* its mem-path */
	uint64_t size;
	void *host;                /* the same file, mapped MAP_SHARED here */
	uint64_t qemu_addr;        /* where QEMU maps it (/proc/PID/maps) */
};

struct vm {
	const char *who;           /* "source" or "destination", for messages */
	lm_qmp *q;
	pid_t pid;                 /* SO_PEERCRED */
	struct vm_ram ram[VM_MAX_RAM];
	unsigned nram;
	bool shim;                 /* liblivemig-track.so is mapped in QEMU */
	int devfd;                 /* our end of the device-state socketpair, -1 */
	bool migrating;            /* migrate / migrate-incoming was issued */
	int64_t stop_us, resume_us; /* QMP STOP / RESUME event timestamps, 0 = none */
	char err[512];             /* the last failure, one sentence */
};

/* Connects to QMP at path; 0, or 1 with vm->err set. */
int vm_open(struct vm *vm, const char *who, const char *path);
/* Unmaps, closes.  Leaves QEMU as it is. */
void vm_close(struct vm *vm);

/* The preconditions that hold for both sides, checked before anything
 * moves: memory backends with a file and share=on, mapped here (writable
 * when writable), their place in QEMU, whether the shim is there,
 * x-ignore-shared set and multifd off.  0, or 2 with vm->err set (one
 * sentence). */
int vm_prepare(struct vm *vm, bool writable);
/* QEMU's run state ("running", "paused", "inmigrate", "postmigrate"...)
 * into buf; 0 or -errno. */
int vm_status(struct vm *vm, char *buf, size_t len);
/* A socketpair whose other end QEMU takes with getfd as VM_DEVFD_NAME.
 * 0, or 1 with vm->err. */
int vm_devfd(struct vm *vm);

/* Whether the source QEMU's writes to block i can be tracked from here:
 * its mapping carries the tracking shim's write-protect registration
 * (lm_uffd_remote_check).  0, or 1 with vm->err saying
 * why not (the file is not in LIVEMIG_TRACK, the kernel lacks PAGEMAP_SCAN,
 * no ptrace rights...). */
int vm_tracked(struct vm *vm, unsigned i);
/* The vCPU thread ids (query-cpus-fast) into tids[0..max): how many (>= 1),
 * or 0 with vm->err (also when QEMU has more than max vCPUs). */
unsigned vm_vcpu_tids(struct vm *vm, pid_t *tids, unsigned max);

/* QMP stop, and the STOP event's timestamp; 0 or 1 with vm->err. */
int vm_stop(struct vm *vm);
/* QMP cont (after cancelling QEMU's own migration if it still runs), and
 * the RESUME event's timestamp; 0 or 1 with vm->err. */
int vm_cont(struct vm *vm);
/* Issues migrate (outgoing) or migrate-incoming with uri fd:VM_DEVFD_NAME.
 * 0 or -EIO with vm->err. */
int vm_migrate(struct vm *vm, bool incoming);
/* QEMU's own migration status (query-migrate) into buf: "" none yet,
 * "active", "completed", "failed"...; with its error-desc into vm->err
 * when failed.  0 or -errno. */
int vm_migrate_status(struct vm *vm, char *buf, size_t len);
/* Waits up to ms (by the clock: QMP round trips included) for QEMU's
 * migration to end: 0 completed; -EAGAIN still running after ms, -EIO
 * failed or cancelled, or query-migrate's -errno (vm->err says which). */
int vm_migrate_wait(struct vm *vm, int ms);

#endif
