/* SPDX-License-Identifier: MIT */
/*
 * Auto-converge for a guest that runs in another process (QEMU): slows its
 * vCPU threads with a CPU quota (CFS bandwidth) on a cgroup of their own.
 *
 * Why a quota and not QMP stop/cont duty cycles: measured on the boot-sector
 * guest (bench/qemu-throttle.py, docs/qemu.md), the quota held the
 * target dirty rate within 0-6 % with a per-sync spread of 4-10 %, where
 * stop/cont at the same 100 ms period fell 14-20 % short (each cycle costs
 * two QMP round trips and QEMU's whole vm_stop/vm_start) and spread 9-20 %;
 * stop/cont also emits STOP/RESUME events, which the migration's downtime
 * measurement reads.
 *
 * The percentage means what QEMU's cpu-throttle means: the vCPUs lose that
 * share of the CPU time they would have had.  So the quota is (100 - pct) %
 * of what the threads used unthrottled, measured from their CPU times
 * (/proc/PID/task/TID/stat) between lm_throttle_open (or the last
 * lm_throttle_set(0)) and the first non-zero lm_throttle_set.
 *
 * cgroup v2 (/sys/fs/cgroup with the cpu controller): the process is moved
 * into a new cgroup livemig-throttle-PID with a threaded child "vcpu"
 * holding the vCPU threads (cpu.max); cgroup v1 (a "cpu" hierarchy): the
 * threads alone go into /sys/fs/cgroup/cpu/livemig-throttle-PID
 * (cpu.cfs_quota_us).  lm_throttle_close puts everything back where it was
 * and removes the cgroups; lm_throttle_open takes over the cgroups that a
 * killed run left (its quota lifted).  Needs root (or a delegated cgroup).  One control
 * thread calls these; nothing here blocks for long.
 */
#ifndef LM_THROTTLE_H
#define LM_THROTTLE_H

#include <stddef.h>
#include <sys/types.h>

struct lm_throttle;

#define LM_THROTTLE_MAX_THREADS 64

/* Prepares to throttle threads tids[0..n) (n <= LM_THROTTLE_MAX_THREADS) of
 * process pid: creates
 * the cgroups and moves the threads (unthrottled until lm_throttle_set).
 * On success *t is the handle; on failure *t is NULL, nothing is left
 * behind, and why[0..len) says what failed.  -ENOENT no cgroup cpu
 * controller here, -EINVAL bad arguments, -errno from the cgroup files. */
int lm_throttle_open(struct lm_throttle **t, pid_t pid, const pid_t *tids, unsigned n,
		     char *why, size_t len);

/* Slows the threads to (100 - percent) % of their unthrottled CPU use;
 * 0 = full speed, at most 99.  0 or -errno (-EINVAL bad percent). */
int lm_throttle_set(struct lm_throttle *t, int percent);

/* Full speed, threads (and the process) back in their cgroups, the cgroups
 * removed, t freed.  NULL ok.  A thread that exited meanwhile is skipped. */
void lm_throttle_close(struct lm_throttle *t);

#endif
