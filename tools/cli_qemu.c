/* SPDX-License-Identifier: MIT */
/*
 * livemig qemu-source / qemu-dest: migrate a running, unmodified QEMU.
 * livemig carries the guest RAM (memory backends with share=on, mapped
 * here from the same files); QEMU's own migration, with x-ignore-shared,
 * carries only the device state, through a socketpair livemig hands it
 * (getfd) and forwards inside its session (livemig_set_device_state).
 * docs/qemu.md tells the sequence and what a failure leaves where.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <limits.h>

#include <json-c/json.h>
#include <livemig/livemig.h>

#include "cli.h"
#include "qemu_vm.h"
#include "track/throttle.h"
#include "util/util.h"

#define MAX_SETTINGS 64

struct qopts {
	const char *qmp, *uri, *json;
	const char *control; /* --control unix:PATH */
	const char *sets[MAX_SETTINGS];
	bool is_cap[MAX_SETTINGS];
	int nsets;
	bool auto_converge; /* --cap auto-converge=on (found by apply()) */
};

static int parse(int argc, char **argv, struct qopts *o, bool source)
{
	static const struct option longs[] = {
		{"qmp", required_argument, NULL, 'q'}, {"connect", required_argument, NULL, 'c'},
		{"listen", required_argument, NULL, 'l'}, {"set", required_argument, NULL, 's'},
		{"cap", required_argument, NULL, 'C'}, {"json", required_argument, NULL, 'j'},
		{"control", required_argument, NULL, 'K'}, {"help", no_argument, NULL, 'h'}, {0}};
	memset(o, 0, sizeof(*o));
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'q': o->qmp = optarg; break;
		case 'c': case 'l':
			if ((c == 'c') != source)
				goto usage;
			o->uri = optarg;
			break;
		case 's': case 'C':
			if (o->nsets == MAX_SETTINGS)
				goto usage;
			o->is_cap[o->nsets] = c == 'C';
			o->sets[o->nsets++] = optarg;
			break;
		case 'j': o->json = optarg; break;
		case 'K': o->control = optarg; break;
		case 'h':
			printf("usage: livemig %s\n", source
			       ? "qemu-source --qmp PATH --connect URI [--set NAME=VALUE]... "
				 "[--cap NAME=on|off]... [--json FILE] [--control unix:PATH]"
			       : "qemu-dest --qmp PATH --listen URI [--set NAME=VALUE]... "
				 "[--json FILE] [--control unix:PATH]");
			printf("See docs/qemu.md for the QEMU command lines.\n");
			return 1;
		default:
			goto usage;
		}
	}
	if (o->qmp && o->uri && optind == argc)
		return 0;
usage:
	fprintf(stderr, "usage: livemig %s\n", source
		? "qemu-source --qmp PATH --connect URI [--set NAME=VALUE]... [--cap NAME=on|off]... "
		  "[--json FILE] [--control unix:PATH]"
		: "qemu-dest --qmp PATH --listen URI [--set NAME=VALUE]... [--json FILE] "
		  "[--control unix:PATH]");
	return 2;
}

/* --set NAME=VALUE and --cap NAME=on|off onto s: 0, or 2 with a message. */
static int apply(livemig_session *s, struct qopts *o)
{
	for (int i = 0; i < o->nsets; i++) {
		char name[128];
		const char *v = strchr(o->sets[i], '=');
		size_t n = v ? (size_t)(v - o->sets[i]) : 0;
		int r = -EINVAL;
		if (n && n < sizeof(name)) {
			memcpy(name, o->sets[i], n);
			name[n] = 0;
			v++;
			if (!o->is_cap[i])
				r = livemig_set_parameter(s, name, v);
			else if (!strcmp(v, "on") || !strcmp(v, "off"))
				r = livemig_set_capability(s, name, !strcmp(v, "on"));
			if (!r && o->is_cap[i] &&
			    livemig_param_find(name) == livemig_param_find("auto-converge"))
				o->auto_converge = !strcmp(v, "on");
		}
		if (r) {
			fprintf(stderr, "livemig: %s '%s': %s\n", o->is_cap[i] ? "--cap" : "--set",
				o->sets[i], n ? livemig_last_error(s) : "expected NAME=VALUE");
			return 2;
		}
	}
	return 0;
}

static void log_cb(void *opaque, int level, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "livemig: %s%s\n", level == 0 ? "error: " : level == 1 ? "warning: " : "",
		msg);
}

static int64_t realtime_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts); /* QMP's event clock */
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The library's statistics plus a "qemu" object, into path (json-c). */
static int write_json(livemig_session *s, const char *path, json_object *qemu)
{
	char buf[16384];
	livemig_stats_json(s, buf, sizeof(buf));
	json_object *all = json_tokener_parse(buf);
	if (!all)
		all = json_object_new_object();
	json_object_object_add(all, "qemu", qemu);
	FILE *f = fopen(path, "w");
	int bad = !f || fputs(json_object_to_json_string_ext(all, JSON_C_TO_STRING_PRETTY), f) < 0;
	if (f && fclose(f))
		bad = 1;
	if (bad)
		fprintf(stderr, "livemig: cannot write %s: %s\n", path, strerror(errno));
	json_object_put(all);
	return bad;
}

/* What both sides put in "qemu": the QEMU, its blocks, its migration. */
static json_object *qemu_json(struct vm *vm)
{
	json_object *o = json_object_new_object(), *blocks = json_object_new_array(), *qm = NULL;
	char st[32] = "";
	json_object_object_add(o, "pid", json_object_new_int(vm->pid));
	json_object_object_add(o, "shim", json_object_new_boolean(vm->shim));
	for (unsigned i = 0; i < vm->nram; i++) {
		json_object *b = json_object_new_object();
		json_object_object_add(b, "id", json_object_new_string(vm->ram[i].id));
		json_object_object_add(b, "mem-path", json_object_new_string(vm->ram[i].path));
		json_object_object_add(b, "size", json_object_new_int64((int64_t)vm->ram[i].size));
		json_object_object_add(b, "qemu-address",
				       json_object_new_int64((int64_t)vm->ram[i].qemu_addr));
		json_object_array_add(blocks, b);
	}
	json_object_object_add(o, "blocks", blocks);
	if (vm->q && !vm_status(vm, st, sizeof(st)))
		json_object_object_add(o, "status", json_object_new_string(st));
	/* QEMU's own view of the device-state stream. */
	if (vm->q && !lm_qmp_execute(vm->q, "query-migrate", NULL, VM_QMP_MS, &qm))
		json_object_object_add(o, "query-migrate", qm);
	return o;
}

/* Registers every block of vm with s: 0, or 1 with a message. */
static int register_blocks(livemig_session *s, struct vm *vm)
{
	for (unsigned i = 0; i < vm->nram; i++)
		if (livemig_ram_register(s, vm->ram[i].id, vm->ram[i].host, vm->ram[i].size)) {
			fprintf(stderr, "livemig: memory backend '%s': %s\n", vm->ram[i].id,
				livemig_last_error(s));
			return 1;
		}
	return 0;
}

/* Parses the options, connects to QEMU, makes the session: 0, -1 (--help
 * was printed) or the exit status of a failure (message printed). */
static int open_side(int argc, char **argv, struct qopts *o, struct vm *vm, livemig_session **s,
		     bool source)
{
	int rc = parse(argc, argv, o, source);
	if (rc)
		return rc == 1 ? -1 : rc;
	if (vm_open(vm, source ? "source" : "destination", o->qmp)) {
		fprintf(stderr, "livemig %s: %s\n", source ? "qemu-source" : "qemu-dest", vm->err);
		return 2;
	}
	if (!(*s = livemig_session_new(source ? LIVEMIG_SOURCE : LIVEMIG_DEST))) {
		vm_close(vm);
		return 1;
	}
	livemig_set_log(*s, log_cb, NULL);
	return 0;
}

/* After the side's own checks (rc: 0, or 2 with vm->err): the settings,
 * the blocks, the device ops, QEMU's end of the socketpair, then cli_begin
 * (from here a SIGINT/SIGTERM cancels; the control socket).  0, or the
 * exit status with the message printed. */
static int setup(livemig_session *s, struct vm *vm, struct qopts *o, int rc,
		 const struct livemig_device_ops *dev, void *opaque, struct cli_signals *sig,
		 lm_qmp_server **control)
{
	const char *who = vm->who[0] == 's' ? "qemu-source" : "qemu-dest";
	*control = NULL;
	if (!rc && (rc = apply(s, o)))
		return rc;
	if (!rc && (register_blocks(s, vm) || livemig_set_device_state(s, dev, opaque) ||
		    vm_devfd(vm)))
		rc = 1;
	if (rc && vm->err[0])
		fprintf(stderr, "livemig %s: %s\n", who, vm->err);
	return rc ? rc : cli_begin(who, s, o->control, sig, control);
}

/* The exit status of a finished migration: 3 unknown; 2 when the two sides
 * disagreed at PARAMS before any page moved (block sizes or names, must-
 * match parameters); 1 any other failure. */
static int exit_status(livemig_session *s, int rc)
{
	struct livemig_stats st;
	livemig_query(s, &st);
	if (!rc)
		return 0;
	if (rc == -EINPROGRESS)
		return 3;
	return rc == -EINVAL && !st.normal && !st.duplicate ? 2 : 1;
}

/* Watches the local QEMU while the session runs: when it exits, the
 * migration has nothing to come from or go to, so it is cancelled at once
 * (not after a pre-copy that may never converge). */
struct watch {
	livemig_session *s;
	const char *who;
	pid_t pid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

/* Whether process pid still runs: not gone, and not a zombie its parent
 * has yet to reap. */
static bool alive(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return errno != ENOENT;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *st = strrchr(buf, ')'); /* "PID (COMM) S ...": COMM may hold anything */
	return !st || (st[1] != ' ' || (st[2] != 'Z' && st[2] != 'X'));
}

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	pthread_mutex_lock(&w->lock);
	while (!w->done) {
		struct timespec ts = lm_deadline(CLOCK_REALTIME, 250);
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
		if (!w->done && !alive(w->pid)) {
			fprintf(stderr, "livemig %s: the QEMU (pid %d) has exited: cancelling\n",
				w->who, (int)w->pid);
			livemig_cancel(w->s);
			break;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* livemig_start and livemig_wait; a SIGINT or SIGTERM meanwhile cancels
 * (cli_signals_block(sig) was called before anything that it must not cut
 * short), and so does the exit of the QEMU (pid).  livemig_start's or
 * livemig_wait's return. */
static int run_migration(livemig_session *s, const char *uri, struct cli_signals *sig,
			 const char *who, pid_t pid)
{
	int rc = livemig_start(s, uri);
	if (rc)
		return rc;
	struct watch w = {.s = s, .who = who, .pid = pid};
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	pthread_t th;
	bool watching = !pthread_create(&th, NULL, watch_main, &w);
	cli_signals_start(sig, s);
	rc = livemig_wait(s);
	cli_signals_stop(sig);
	if (watching) {
		pthread_mutex_lock(&w.lock);
		w.done = true;
		pthread_cond_signal(&w.cond);
		pthread_mutex_unlock(&w.lock);
		pthread_join(th, NULL);
	}
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	return rc;
}

/* ---- source ---------------------------------------------------------------- */

struct src {
	struct vm vm;
	livemig_session *s;
	struct lm_throttle *throttle; /* auto-converge on the vCPU threads, or NULL */
	int64_t t_dev_us;  /* the first device-state byte was asked for */
	uint64_t eof_ns;   /* QEMU closed its device-state stream (lm_now_ns), or 0 */
	bool stopped;      /* we stopped QEMU (stop-and-copy) or the library did */
};

/* The library asks for device state: QEMU's migrate writes it into our
 * socketpair; we pass on what came within 100 ms. */
static ssize_t src_save(void *opaque, void *buf, size_t len)
{
	struct src *x = opaque;
	struct vm *vm = &x->vm;
	if (!vm->migrating) {
		x->t_dev_us = realtime_us();
		if (vm_migrate(vm, false)) {
			fprintf(stderr, "livemig qemu-source: %s\n", vm->err);
			return -EIO;
		}
	}
	struct pollfd p = {.fd = vm->devfd, .events = POLLIN};
	if (poll(&p, 1, 100) == 0) {
		char st[32];
		if (!vm_migrate_status(vm, st, sizeof(st)) && !strcmp(st, "failed")) {
			fprintf(stderr, "livemig qemu-source: %s\n", vm->err);
			return -EIO;
		}
		return -EAGAIN;
	}
	ssize_t n = read(vm->devfd, buf, len);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? -EAGAIN : -errno;
	if (n > 0)
		return n;
	/* QEMU closed its end: its migration ended, well or not.  Asked for
	 * 100 ms a call, so that a cancel or the switchover deadline (the
	 * library checks them between calls) cuts the wait short. */
	uint64_t now = lm_now_ns();
	if (!x->eof_ns)
		x->eof_ns = now;
	int r = vm_migrate_wait(vm, 100);
	if (r == -EAGAIN && now - x->eof_ns < VM_MIGRATE_MS * 1000000ull)
		return -EAGAIN;
	if (r == -EAGAIN)
		fprintf(stderr, "livemig qemu-source: %s %d ms after its stream ended\n", vm->err,
			VM_MIGRATE_MS);
	else if (r)
		fprintf(stderr, "livemig qemu-source: %s\n", vm->err);
	return r == -EAGAIN ? -ETIMEDOUT : r;
}

/* The library's stop (live): a guest that may still run must not be
 * switched over, so a failed stop cancels (before COMPLETE; the library
 * then resumes it, which is harmless if it never stopped). */
static void src_stop(void *opaque)
{
	struct src *x = opaque;
	x->stopped = true;
	if (vm_stop(&x->vm)) {
		fprintf(stderr, "livemig qemu-source: %s: cancelling\n", x->vm.err);
		livemig_cancel(x->s);
	}
}

static void src_resume(void *opaque)
{
	struct src *x = opaque;
	if (vm_cont(&x->vm))
		fprintf(stderr, "livemig qemu-source: %s\n", x->vm.err);
	else
		x->stopped = false;
}

/* A second signal exits at once: the vCPUs must not stay throttled (the
 * cgroup stays; the next run takes it over). */
static void src_unthrottle(void *opaque)
{
	struct src *x = opaque;
	lm_throttle_set(x->throttle, 0);
}

static void src_throttle(void *opaque, int percent)
{
	struct src *x = opaque;
	int e = lm_throttle_set(x->throttle, percent);
	if (e)
		fprintf(stderr, "livemig qemu-source: cannot throttle the vCPUs to %d %%: %s\n",
			percent, strerror(-e));
}

/*
 * Live pre-copy, when the source QEMU's writes to every block can be
 * tracked (liblivemig-track.so in QEMU has registered the block's file):
 * the uffd-remote tracker harvests them from QEMU's page tables
 * (livemig_ram_set_remote), the library stops QEMU only at switchover
 * (guest ops: QMP stop, cont), and with auto-converge on the vCPU threads
 * are throttled by a cgroup CPU quota, opened here, at the start, so that it
 * samples their unthrottled CPU use (closed by the caller, x->throttle).
 * 0 live; -ENOENT the writes cannot be tracked (vm->err says why: the
 * caller migrates stop-and-copy); another -errno failed (message printed).
 */
static int live_tracking(livemig_session *s, struct src *x, bool auto_converge,
			 struct livemig_guest_ops *ops)
{
	struct vm *vm = &x->vm;
	if (!vm->shim) {
		snprintf(vm->err, sizeof(vm->err), "the source QEMU runs without the tracking shim "
			 "(LD_PRELOAD=liblivemig-track.so), so its writes cannot be tracked");
		return -ENOENT;
	}
	for (unsigned i = 0; i < vm->nram; i++)
		if (vm_tracked(vm, i))
			return -ENOENT;
	for (unsigned i = 0; i < vm->nram; i++) {
		int e = livemig_ram_set_remote(s, vm->ram[i].id, vm->pid, vm->ram[i].qemu_addr);
		if (e) {
			fprintf(stderr, "livemig qemu-source: memory backend '%s': %s\n",
				vm->ram[i].id, livemig_last_error(s));
			return e;
		}
	}
	if (!auto_converge)
		return 0;
	pid_t tids[LM_THROTTLE_MAX_THREADS];
	char why[300];
	unsigned n = vm_vcpu_tids(vm, tids, LM_THROTTLE_MAX_THREADS);
	int e = n ? lm_throttle_open(&x->throttle, vm->pid, tids, n, why, sizeof(why)) : -EIO;
	if (e) {
		fprintf(stderr, "livemig qemu-source: auto-converge cannot throttle the vCPUs: %s\n",
			n ? why : vm->err);
		return e;
	}
	ops->throttle = src_throttle;
	return 0;
}

int cli_qemu_source(int argc, char **argv)
{
	struct qopts o;
	struct src x = {0};
	struct vm *vm = &x.vm;
	livemig_session *s;
	char st[32];
	int rc = open_side(argc, argv, &o, vm, &s, true);
	if (rc)
		return rc < 0 ? 0 : rc;
	x.s = s;
	if ((rc = vm_status(vm, st, sizeof(st))) ||
	    (strcmp(st, "running") && strcmp(st, "paused"))) {
		snprintf(vm->err, sizeof(vm->err), "the source QEMU is %s, not running or paused",
			 rc ? "unreachable" : st);
		rc = 2;
	} else {
		rc = vm_prepare(vm, false);
	}
	const struct livemig_device_ops dev = {.save = src_save};
	lm_qmp_server *control;
	struct cli_signals sig;
	/* From here a signal cancels: the guest must never stay stopped. */
	if ((rc = setup(s, vm, &o, rc, &dev, &x, &sig, &control)))
		goto out;
	struct livemig_guest_ops guest = {src_stop, src_resume, NULL};
	int e = live_tracking(s, &x, o.auto_converge, &guest);
	bool live = !e;
	if (e && e != -ENOENT) {
		rc = 2; /* a precondition: nothing moved */
		goto out;
	}
	if (x.throttle) {
		sig.last = src_unthrottle;
		sig.last_opaque = &x;
	}
	if (live) {
		livemig_set_guest(s, &guest, &x);
	} else {
		fprintf(stderr, "livemig qemu-source: %s: stop-and-copy (the guest stops now, for "
			"one pass)\n", vm->err);
		if (vm_stop(vm)) {
			fprintf(stderr, "livemig qemu-source: %s\n", vm->err);
			rc = 1;
			goto out;
		}
		x.stopped = true;
	}
	rc = run_migration(s, o.uri, &sig, "qemu-source", vm->pid);
	int64_t t_end = realtime_us();
	if (rc) {
		fprintf(stderr, "livemig qemu-source: migration failed: %s\n", livemig_last_error(s));
		/* Before COMMIT the guest is ours again (live: the library
		 * resumed it); in doubt it stays stopped. */
		if (rc != -EINPROGRESS && x.stopped)
			src_resume(&x);
		rc = exit_status(s, rc);
	}

	json_object *q = qemu_json(vm);
	json_object_object_add(q, "mode", json_object_new_string(live ? "live" : "stop-and-copy"));
	if (!rc) {
		struct livemig_stats ls;
		livemig_query(s, &ls);
		/* STOP until the destination said it runs the guest (its
		 * RESUME comes before its OUTCOME): on one clock, an upper
		 * bound of the guest's STOP->RESUME, which the destination's
		 * "resume-us" gives exactly on this host. */
		int64_t down = (t_end - vm->stop_us) / 1000;
		int64_t ram = (x.t_dev_us - vm->stop_us) / 1000 - (int64_t)ls.verify_ms;
		int64_t resume = down - ram - (int64_t)ls.verify_ms - (int64_t)ls.device_state_ms;
		json_object *parts = json_object_new_object();
		json_object_object_add(parts, "final-ram-pass-ms", json_object_new_int64(ram));
		json_object_object_add(parts, "verify-ms", json_object_new_int64((int64_t)ls.verify_ms));
		json_object_object_add(parts, "device-state-ms",
				       json_object_new_int64((int64_t)ls.device_state_ms));
		json_object_object_add(parts, "resume-ms", json_object_new_int64(resume));
		json_object_object_add(q, "stop-us", json_object_new_int64(vm->stop_us));
		json_object_object_add(q, "downtime-ms", json_object_new_int64(down));
		json_object_object_add(q, "downtime-parts", parts);
		json_object_object_add(q, "device-state-bytes",
				       json_object_new_int64((int64_t)ls.device_state_bytes));
		fprintf(stderr, "livemig qemu-source: migrated; downtime %lld ms (final RAM pass "
			"%lld, verification %llu, device state %llu, resume %lld)\n",
			(long long)down, (long long)ram, (unsigned long long)ls.verify_ms,
			(unsigned long long)ls.device_state_ms, (long long)resume);
	}
	if (o.json && write_json(s, o.json, q) && !rc)
		rc = 1;
	if (!o.json)
		json_object_put(q);
out:
	lm_qmp_server_stop(control);
	livemig_session_free(s);
	lm_throttle_close(x.throttle); /* the library set full speed at its end */
	vm_close(vm);
	return rc;
}

/* ---- destination ----------------------------------------------------------- */

struct dst {
	struct vm vm;
	livemig_session *s;
	uint64_t bytes;
	int64_t t_start_us;  /* start (cont) was called */
	int64_t snapshot_ms; /* LIVEMIG_X_RAM_SNAPSHOT took that long, or -1 */
};

static int dst_load(void *opaque, const void *buf, size_t len)
{
	struct dst *x = opaque;
	struct vm *vm = &x->vm;
	if (!vm->migrating) {
		/* Every block the source sent is one of this QEMU's. */
		if (livemig_ram_get(x->s, 0, NULL, NULL, NULL) != (int)vm->nram) {
			fprintf(stderr, "livemig qemu-dest: the source has memory backends this "
				"QEMU lacks\n");
			return -EINVAL;
		}
		if (vm_migrate(vm, true)) {
			fprintf(stderr, "livemig qemu-dest: %s\n", vm->err);
			return -EIO;
		}
	}
	const char *p = buf;
	for (int waited = 0; len;) {
		ssize_t n = send(vm->devfd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			x->bytes += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			/* QEMU closed it: its load failed. */
			char st[32];
			vm_migrate_status(vm, st, sizeof(st));
			fprintf(stderr, "livemig qemu-dest: %s\n", strcmp(st, "failed") ? strerror(errno)
										   : vm->err);
			return -EIO;
		}
		struct pollfd pf = {.fd = vm->devfd, .events = POLLOUT};
		if (!poll(&pf, 1, 100) && (waited += 100) >= VM_MIGRATE_MS) {
			fprintf(stderr, "livemig qemu-dest: the destination QEMU took no device state "
				"for %d ms\n", VM_MIGRATE_MS);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

/* The test hook LIVEMIG_X_RAM_SNAPSHOT=PREFIX: the RAM as it is when the
 * device state has loaded, before the guest runs here, into PREFIX.ID for
 * each block (a running guest changes it at once: the BIOS's timer tick).
 * The copy lands inside the downtime (the device-state step): 0.1-1 s for
 * 256 MiB on a busy machine, where QEMU's part takes 5-15 ms; its time goes
 * to the JSON as x-ram-snapshot-ms so that figures can be read without it. */
static void snapshot_ram(struct dst *x)
{
	struct vm *vm = &x->vm;
	const char *prefix = getenv("LIVEMIG_X_RAM_SNAPSHOT");
	int64_t t0 = realtime_us();
	for (unsigned i = 0; prefix && i < vm->nram; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s.%s", prefix, vm->ram[i].id);
		FILE *f = fopen(path, "w");
		if (!f || fwrite(vm->ram[i].host, 1, vm->ram[i].size, f) != vm->ram[i].size)
			fprintf(stderr, "livemig qemu-dest: cannot write %s\n", path);
		if (f)
			fclose(f);
	}
	x->snapshot_ms = prefix ? (realtime_us() - t0) / 1000 : -1;
}

static int dst_load_end(void *opaque)
{
	struct dst *x = opaque;
	int r = vm_migrate_wait(&x->vm, VM_MIGRATE_MS);
	if (r == -EAGAIN)
		fprintf(stderr, "livemig qemu-dest: %s after %d ms\n", x->vm.err, VM_MIGRATE_MS);
	else if (r)
		fprintf(stderr, "livemig qemu-dest: %s\n", x->vm.err);
	else
		snapshot_ram(x);
	return r == -EAGAIN ? -ETIMEDOUT : r;
}

static void dst_start(void *opaque)
{
	struct dst *x = opaque;
	x->t_start_us = realtime_us();
	if (vm_cont(&x->vm))
		fprintf(stderr, "livemig qemu-dest: %s (the source has stopped for good: resume "
			"the destination QEMU by hand)\n", x->vm.err);
}

int cli_qemu_dest(int argc, char **argv)
{
	struct qopts o;
	struct dst x = {.snapshot_ms = -1};
	struct vm *vm = &x.vm;
	livemig_session *s;
	char st[32];
	int rc = open_side(argc, argv, &o, vm, &s, false);
	if (rc)
		return rc < 0 ? 0 : rc;
	x.s = s;
	if ((rc = vm_status(vm, st, sizeof(st))) || strcmp(st, "inmigrate")) {
		snprintf(vm->err, sizeof(vm->err), "the destination QEMU is %s, not waiting for an "
			 "incoming migration: start it with -incoming defer", rc ? "unreachable" : st);
		rc = 2;
	} else {
		rc = vm_prepare(vm, true);
	}
	const struct livemig_device_ops dev = {.load = dst_load, .load_end = dst_load_end,
					       .start = dst_start};
	lm_qmp_server *control;
	struct cli_signals sig;
	if ((rc = setup(s, vm, &o, rc, &dev, &x, &sig, &control)))
		goto out;
	rc = run_migration(s, o.uri, &sig, "qemu-dest", vm->pid);
	if (rc) {
		fprintf(stderr, "livemig qemu-dest: migration failed: %s\n", livemig_last_error(s));
		/* A QEMU that took device state must never run it: it goes.
		 * One that took none still waits in -incoming defer. */
		if (rc != -EINPROGRESS && vm->migrating) {
			fprintf(stderr, "livemig qemu-dest: the destination QEMU loaded device state "
				"that will not run: quitting it\n");
			lm_qmp_execute(vm->q, "quit", NULL, VM_QMP_MS, NULL);
			vm_close(vm);
		} else if (rc == -EINPROGRESS) {
			fprintf(stderr, "livemig qemu-dest: the destination QEMU stays paused: run it "
				"only once the source is known to have stopped for good\n");
		}
		rc = exit_status(s, rc);
	}
	json_object *q = qemu_json(vm);
	if (!rc) {
		json_object_object_add(q, "resume-us", json_object_new_int64(vm->resume_us));
		json_object_object_add(q, "resume-ms",
				       json_object_new_int64((vm->resume_us - x.t_start_us) / 1000));
		json_object_object_add(q, "device-state-bytes",
				       json_object_new_int64((int64_t)x.bytes));
		if (x.snapshot_ms >= 0)
			json_object_object_add(q, "x-ram-snapshot-ms",
					       json_object_new_int64(x.snapshot_ms));
	}
	if (o.json && write_json(s, o.json, q) && !rc)
		rc = 1;
	if (!o.json)
		json_object_put(q);
out:
	lm_qmp_server_stop(control);
	livemig_session_free(s);
	vm_close(vm);
	return rc;
}
