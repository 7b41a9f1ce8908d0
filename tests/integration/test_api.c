/* SPDX-License-Identifier: MIT */
/*
 * The public API as an embedder uses it: error returns, and a destination
 * that registers its own (dirty) memory gets every page written, zero pages
 * included; another thread may query and cancel a running migration.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <livemig/livemig.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../unit/t.h"

#define SIZE (8u << 20)

/*
 * Another thread of the embedder reading a running session, as the API
 * allows (livemig_query, livemig_stats_json, livemig_last_error and
 * livemig_ram_get from any thread; make check's ThreadSanitizer build checks
 * the library agrees).  The status only ever moves forward.  With cancel_at
 * set, it cancels once that many bytes went out.
 */
struct watch {
	livemig_session *s;
	pthread_t thread;
	_Atomic int stop;
	uint64_t cancel_at;
	int polls, backwards, bad_json;
};

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	char json[16384];
	int last = LIVEMIG_STATUS_NONE;
	while (!atomic_load(&w->stop)) {
		struct livemig_stats st;
		livemig_query(w->s, &st);
		int n = livemig_stats_json(w->s, json, sizeof(json));
		w->bad_json += n <= 0 || (size_t)n >= sizeof(json) || json[0] != '{' ||
			       !strlen(livemig_last_error(w->s));
		livemig_ram_get(w->s, 0, NULL, NULL, NULL);
		w->backwards += (int)st.status < last;
		last = (int)st.status;
		w->polls++;
		if (w->cancel_at && st.transferred >= w->cancel_at) {
			livemig_cancel(w->s);
			w->cancel_at = 0;
		}
		usleep(1000);
	}
	return NULL;
}

/*
 * Forks a destination process on a Unix socket named after tag.  The child
 * gets 0 and *ready, to pass to dest_listening() once it listens; the
 * parent gets the child's pid once it has, and waits with dest_exited().
 */
static pid_t fork_dest(char *uri, size_t len, const char *tag, int *ready)
{
	int p[2];
	snprintf(uri, len, "unix:/tmp/livemig-api-%s%d.sock", tag, (int)getpid());
	CHECK(pipe(p) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		*ready = p[1];
		return 0;
	}
	close(p[1]); /* a child that fails first ends the read */
	char b;
	CHECK(read(p[0], &b, 1) == 1);
	close(p[0]);
	return pid;
}

static void dest_listening(int ready)
{
	(void)!write(ready, "", 1);
	close(ready);
}

/* The destination process must exit 0. */
static void dest_exited(pid_t pid)
{
	int status;
	waitpid(pid, &status, 0);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "destination status %d", status);
}

/* Watches s (started) until watch_end(). */
static void watch_start(struct watch *w, livemig_session *s, uint64_t cancel_at)
{
	memset(w, 0, sizeof(*w));
	w->s = s;
	w->cancel_at = cancel_at;
	CHECK(pthread_create(&w->thread, NULL, watch_main, w) == 0);
}

/* After livemig_wait(s): 1 when the watcher saw nothing wrong. */
static int watch_end(struct watch *w)
{
	atomic_store(&w->stop, 1);
	pthread_join(w->thread, NULL);
	CHECKF(w->polls > 0 && !w->backwards && !w->bad_json,
	       "watcher: %d polls, status went back %d times, %d bad JSON", w->polls,
	       w->backwards, w->bad_json);
	return w->polls > 0 && !w->backwards && !w->bad_json;
}

static void api_errors(void)
{
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	uint8_t *mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(s && mem != MAP_FAILED);
	CHECK(livemig_set_parameter(s, "multifd-channels", "0") == -EINVAL);
	CHECK(strstr(livemig_last_error(s), "multifd-channels") != NULL);
	CHECK(livemig_set_parameter(s, "bogus", "1") == -ENOENT);
	CHECK(livemig_set_capability(s, "bogus", true) == -ENOENT);
	CHECK(livemig_ram_register(s, "ram", mem + 1, 4096) == -EINVAL);  /* unaligned */
	CHECK(livemig_ram_register(s, "ram", mem, 4095) == -EINVAL);      /* size */
	CHECK(livemig_ram_register(s, "ram", NULL, 4096) == -EINVAL);     /* source needs memory */
	CHECK(livemig_ram_register(s, "ram", mem, SIZE) == 0);
	CHECK(livemig_ram_register(s, "ram", mem, SIZE) == -EEXIST);
	CHECK(livemig_ram_set_remote(s, "nope", getpid(), 0x10000) == -ENOENT);
	CHECK(livemig_ram_set_remote(s, "ram", 0, 0x10000) == -EINVAL);         /* no pid */
	CHECK(livemig_ram_set_remote(s, "ram", getpid(), 0x10001) == -EINVAL);  /* unaligned */
	CHECK(livemig_ram_set_remote(s, "ram", getpid(), -(uint64_t)4096) == -EINVAL); /* wraps */
	CHECK(strstr(livemig_last_error(s), "remote RAM") != NULL);
	CHECK(livemig_ram_set_remote(s, "ram", getpid(), 0x10000) == 0);
	CHECK(livemig_start(s, "sctp:1.2.3.4:5") == -EINVAL);
	livemig_session_free(s);

	s = livemig_session_new(LIVEMIG_DEST);
	CHECK(livemig_ram_register(s, "ram", NULL, SIZE) == 0);
	CHECK(livemig_ram_set_remote(s, "ram", getpid(), 0x10000) == -EINVAL); /* source only */
	livemig_session_free(s);

	s = livemig_session_new(LIVEMIG_SOURCE);
	CHECK(livemig_start(s, "unix:/tmp/nothing-here") == -EINVAL); /* no RAM block */
	livemig_session_free(s);

	/* Connection errors of a source come from wait(), even after an
	 * earlier rejected call. */
	s = livemig_session_new(LIVEMIG_SOURCE);
	livemig_ram_register(s, "ram", mem, SIZE);
	CHECK(livemig_set_parameter(s, "multifd-zstd-level", "99") == -EINVAL);
	CHECK(livemig_start(s, "unix:/tmp/livemig-api-no-such.sock") == 0);
	CHECK(livemig_start(s, "unix:/tmp/x") == -EBUSY);
	CHECK(livemig_set_parameter(s, "multifd-channels", "3") == -EBUSY);
	int r = livemig_wait(s);
	CHECKF(r == -ENOENT, "wait returned %d", r);
	struct livemig_stats st;
	CHECK(livemig_query(s, &st) == 0 && st.status == LIVEMIG_STATUS_FAILED);
	livemig_session_free(s);
	livemig_session_free(NULL);
	munmap(mem, SIZE);
}

/* Destination with registered memory full of 0xAA; the source's memory is
 * mostly zero pages.  The result must be the source's bytes exactly. */
static void dirty_destination_memory(void)
{
	char uri[64];
	int ready;
	pid_t pid = fork_dest(uri, sizeof(uri), "", &ready);
	if (pid == 0) {
		uint8_t *mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(mem, 0xaa, SIZE);
		livemig_session *d = livemig_session_new(LIVEMIG_DEST);
		if (livemig_ram_register(d, "ram", mem, SIZE) || livemig_start(d, uri))
			_exit(2);
		struct watch w;
		watch_start(&w, d, 0);
		dest_listening(ready);
		if (livemig_wait(d) || !watch_end(&w))
			_exit(3);
		int bad = 0;
		for (size_t i = 0; i < SIZE; i++)
			bad |= mem[i] != (i % (16 * 4096) < 4096 ? (uint8_t)(i * 7 + 1) : 0);
		livemig_session_free(d);
		_exit(bad ? 4 : 0);
	}
	uint8_t *src = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (size_t i = 0; i < SIZE; i++)
		src[i] = i % (16 * 4096) < 4096 ? (uint8_t)(i * 7 + 1) : 0;
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	CHECK(livemig_ram_register(s, "ram", src, SIZE) == 0);
	CHECK(livemig_start(s, uri) == 0);
	struct watch w;
	watch_start(&w, s, 0);
	int r = livemig_wait(s);
	watch_end(&w);
	CHECKF(r == 0, "source: %s", livemig_last_error(s));
	struct livemig_stats st;
	livemig_query(s, &st);
	CHECK(st.duplicate == SIZE / 4096 / 16 * 15 && st.verify_match == 1);
	livemig_session_free(s);
	dest_exited(pid);
	munmap(src, SIZE);
}

/*
 * An embedder with its own dirty log (as a hypervisor with KVM's) and its
 * own guest: a writer thread marks what it writes in the embedder's bitmap;
 * the library harvests it through livemig_set_dirty_log().
 */
struct emb {
	uint8_t *ram;
	_Atomic uint64_t *log; /* the embedder's dirty bitmap */
	_Atomic int stop_req, stopped, quit;
	unsigned long writes;
};

/* The guest's write.  The library's senders read the page meanwhile: a
 * race by design, named in tests/tsan.supp - keep this to that one store. */
static void emb_write(uint8_t *ram, size_t off, uint8_t v)
{
	ram[off] = v;
}

static void *emb_writer(void *arg)
{
	struct emb *e = arg;
	uint32_t x = 7;
	while (!atomic_load(&e->quit)) {
		if (atomic_load(&e->stop_req)) {
			atomic_store(&e->stopped, 1);
			usleep(200);
			continue;
		}
		atomic_store(&e->stopped, 0);
		x = x * 1103515245u + 12345u;
		size_t page = (x >> 8) % (SIZE / 4096 / 4); /* a hot quarter */
		emb_write(e->ram, page * 4096 + (x % 4096), (uint8_t)x);
		atomic_fetch_or(&e->log[page / 64], 1ull << (page % 64));
		e->writes++;
		if (e->writes % 64 == 0)
			usleep(100);
	}
	return NULL;
}

static void emb_stop(void *o)
{
	struct emb *e = o;
	atomic_store(&e->stop_req, 1);
	while (!atomic_load(&e->stopped))
		usleep(100);
}

static void emb_resume(void *o)
{
	atomic_store(&((struct emb *)o)->stop_req, 0);
}

static int emb_log(void *o, unsigned block, uint64_t *bitmap)
{
	struct emb *e = o;
	if (block != 0)
		return -EINVAL;
	for (size_t i = 0; i < SIZE / 4096 / 64; i++)
		bitmap[i] |= atomic_exchange(&e->log[i], 0);
	return 0;
}

static void external_dirty_log(void)
{
	char uri[64];
	int ready;
	uint8_t *ram = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	for (size_t i = 0; i < SIZE; i++)
		ram[i] = (uint8_t)(i * 31 + 5);
	pid_t pid = fork_dest(uri, sizeof(uri), "ext-", &ready);
	if (pid == 0) {
		livemig_session *d = livemig_session_new(LIVEMIG_DEST);
		if (livemig_start(d, uri))
			_exit(2);
		dest_listening(ready);
		if (livemig_wait(d))
			_exit(3);
		void *host;
		uint64_t size;
		livemig_ram_get(d, 0, NULL, &host, &size);
		/* ram is MAP_SHARED: the parent's final bytes are visible here. */
		int same = size == SIZE && !memcmp(host, ram, SIZE);
		livemig_session_free(d);
		_exit(same ? 0 : 4);
	}
	struct emb e = {.ram = ram};
	e.log = calloc(SIZE / 4096 / 64, sizeof(uint64_t));
	pthread_t th;
	pthread_create(&th, NULL, emb_writer, &e);
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	const struct livemig_guest_ops ops = {emb_stop, emb_resume, NULL};
	CHECK(livemig_set_guest(s, &ops, &e) == 0);
	CHECK(livemig_set_dirty_log(s, emb_log, &e) == 0);
	CHECK(livemig_set_parameter(s, "max-bandwidth", "16M") == 0);
	CHECK(livemig_set_parameter(s, "downtime-limit", "300") == 0);
	CHECK(livemig_set_parameter(s, "timeout", "60") == 0);
	CHECK(livemig_ram_register(s, "ram", ram, SIZE) == 0);
	CHECK(livemig_start(s, uri) == 0);
	struct watch w;
	watch_start(&w, s, 0);
	int r = livemig_wait(s);
	watch_end(&w);
	CHECKF(r == 0, "external dirty log: %s", livemig_last_error(s));
	struct livemig_stats st;
	livemig_query(s, &st);
	CHECKF(!strcmp(st.dirty_tracker, "external") && st.dirty_sync_count >= 2,
	       "tracker %s, %llu passes", st.dirty_tracker,
	       (unsigned long long)st.dirty_sync_count);
	livemig_session_free(s);
	/* The guest stays stopped after a migration; the child compares now. */
	dest_exited(pid);
	CHECK(e.writes > 1000);
	atomic_store(&e.quit, 1);
	pthread_join(th, NULL);
	free((void *)e.log);
	munmap(ram, SIZE);
}

/* Cancelled from another thread while the senders write: both sides fail
 * with the cancel, and the source says so in every way it can. */
static void cancel_from_another_thread(void)
{
	char uri[64];
	int ready;
	pid_t pid = fork_dest(uri, sizeof(uri), "cancel-", &ready);
	if (pid == 0) {
		livemig_session *d = livemig_session_new(LIVEMIG_DEST);
		if (livemig_start(d, uri))
			_exit(2);
		struct watch w;
		watch_start(&w, d, 0);
		dest_listening(ready);
		int r = livemig_wait(d);
		int ok = watch_end(&w);
		livemig_session_free(d);
		_exit(r == -ECANCELED && ok ? 0 : 3);
	}
	uint8_t *src = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (size_t i = 0; i < SIZE; i++)
		src[i] = (uint8_t)(i * 13 + i / 4096);
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	CHECK(livemig_ram_register(s, "ram", src, SIZE) == 0);
	CHECK(livemig_set_parameter(s, "multifd-channels", "4") == 0);
	CHECK(livemig_set_parameter(s, "max-bandwidth", "4M") == 0); /* 2 s in all */
	CHECK(livemig_start(s, uri) == 0);
	struct watch w;
	watch_start(&w, s, 1u << 20);
	int r = livemig_wait(s);
	watch_end(&w);
	struct livemig_stats st;
	livemig_query(s, &st);
	CHECKF(r == -ECANCELED && st.status == LIVEMIG_STATUS_CANCELLED &&
		       strstr(livemig_last_error(s), "cancel"),
	       "cancel: wait %d, status %d, error %s", r, st.status, livemig_last_error(s));
	livemig_session_free(s);
	dest_exited(pid);
	munmap(src, SIZE);
}

/*
 * Changeable parameters while a migration runs, and the event callback: a
 * source limited to 2 MiB/s would need 4 s for 8 MiB; lifting the limit
 * after 0.3 s from another thread ends it at once.  Events come in order.
 */
struct events {
	struct livemig_event ev[64];
	_Atomic int n;
};

static void on_event(void *opaque, const struct livemig_event *ev)
{
	struct events *e = opaque;
	int n = atomic_load(&e->n);
	if (n < 64)
		e->ev[n] = *ev;
	atomic_store(&e->n, n + 1);
}

static void *lift_limit(void *arg)
{
	livemig_session *s = arg;
	char v[32];
	usleep(300000);
	CHECK(livemig_set_parameter(s, "max-bandwidth", "x") == -EINVAL);
	CHECK(livemig_set_parameter(s, "multifd-channels", "3") == -EBUSY);
	CHECK(livemig_set_parameter(s, "bogus", "3") == -ENOENT);
	CHECK(livemig_set_parameter(s, "downtime-limit", "500") == 0);
	CHECK(livemig_set_parameter(s, "max-bandwidth", "0") == 0);
	CHECK(livemig_get_parameter(s, "max-bandwidth", v, sizeof(v)) == 1 && !strcmp(v, "0"));
	CHECK(livemig_get_parameter(s, "downtime-limit", v, sizeof(v)) == 3 && !strcmp(v, "500"));
	CHECK(livemig_get_parameter(s, "bogus", v, sizeof(v)) == -ENOENT);
	return NULL;
}

static void change_while_running(void)
{
	char uri[64];
	int ready;
	pid_t pid = fork_dest(uri, sizeof(uri), "change-", &ready);
	if (pid == 0) {
		livemig_session *d = livemig_session_new(LIVEMIG_DEST);
		struct events e = {0};
		livemig_set_event_cb(d, on_event, &e);
		if (livemig_start(d, uri))
			_exit(2);
		dest_listening(ready);
		int r = livemig_wait(d);
		livemig_session_free(d);
		/* setup, active, pass 1, pass 2 (the final), device, completed */
		int n = atomic_load(&e.n);
		_exit(!r && n == 6 && e.ev[0].status == LIVEMIG_STATUS_SETUP &&
		      e.ev[1].status == LIVEMIG_STATUS_ACTIVE && e.ev[2].pass == 1 &&
		      e.ev[3].pass == 2 && e.ev[4].status == LIVEMIG_STATUS_DEVICE &&
		      e.ev[5].status == LIVEMIG_STATUS_COMPLETED ? 0 : 3);
	}
	uint8_t *src = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (size_t i = 0; i < SIZE; i++)
		src[i] = (uint8_t)(i * 13 + i / 4096);
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	struct events e = {0};
	CHECK(livemig_ram_register(s, "ram", src, SIZE) == 0);
	CHECK(livemig_set_parameter(s, "max-bandwidth", "2M") == 0);
	CHECK(livemig_set_event_cb(s, on_event, &e) == 0);
	CHECK(livemig_start(s, uri) == 0);
	CHECK(livemig_set_event_cb(s, on_event, &e) == -EBUSY);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, lift_limit, s) == 0);
	int r = livemig_wait(s);
	pthread_join(t, NULL);
	struct livemig_stats st;
	livemig_query(s, &st);
	CHECKF(r == 0 && st.total_time_ms < 2500, "wait %d after %llu ms (%s)", r,
	       (unsigned long long)st.total_time_ms, livemig_last_error(s));
	CHECK(!strcmp(livemig_last_error(s), "no error"));
	/* setup, active, pass 1, device, pass 2 (the final), completed */
	int n = atomic_load(&e.n);
	CHECKF(n == 6 && e.ev[0].status == LIVEMIG_STATUS_SETUP &&
	       e.ev[1].status == LIVEMIG_STATUS_ACTIVE && e.ev[2].type == LIVEMIG_EVENT_PASS &&
	       e.ev[2].pass == 1 && e.ev[3].status == LIVEMIG_STATUS_DEVICE &&
	       e.ev[4].pass == 2 && e.ev[5].type == LIVEMIG_EVENT_STATUS &&
	       e.ev[5].status == LIVEMIG_STATUS_COMPLETED, "%d events", n);
	livemig_session_free(s);
	dest_exited(pid);
	munmap(src, SIZE);
}

/*
 * Device state (livemig_set_device_state) carried after the RAM: the
 * destination's embedder gets every byte in order and starts the guest only
 * at the commit; a load that fails resumes the guest at the source; device
 * ops on one side only fail the migration before any page moves.
 */
#define DEVLEN 100000u
enum dev_case { DEV_OK, DEV_LOAD_FAILS, DEV_DEST_HAS_NONE };

struct dev_src {
	size_t off;
	int eagain, stops, resumes;
};

static uint8_t dev_byte(size_t i)
{
	return (uint8_t)(i * 7 + i / 251);
}

static ssize_t dev_save(void *o, void *buf, size_t len)
{
	struct dev_src *d = o;
	if (!d->eagain++)
		return -EAGAIN; /* nothing yet: asked again */
	size_t n = DEVLEN - d->off < len ? DEVLEN - d->off : len;
	for (size_t i = 0; i < n; i++)
		((uint8_t *)buf)[i] = dev_byte(d->off + i);
	d->off += n;
	return (ssize_t)n;
}

struct dev_dst {
	size_t got;
	int bad, started, fail;
};

static int dev_load(void *o, const void *buf, size_t len)
{
	struct dev_dst *d = o;
	for (size_t i = 0; i < len; i++)
		d->bad += ((const uint8_t *)buf)[i] != dev_byte(d->got + i);
	d->got += len;
	return 0;
}

static int dev_load_end(void *o)
{
	struct dev_dst *d = o;
	return d->fail ? -EINVAL : d->got == DEVLEN && !d->bad ? 0 : -EIO;
}

static void dev_start(void *o)
{
	((struct dev_dst *)o)->started++;
}

static void dev_stop_guest(void *o)
{
	((struct dev_src *)o)->stops++;
}

static void dev_resume_guest(void *o)
{
	((struct dev_src *)o)->resumes++;
}

static int no_writes(void *o, unsigned block, uint64_t *bitmap)
{
	(void)o, (void)block, (void)bitmap;
	return 0;
}

static void device_state(enum dev_case c)
{
	char uri[64];
	int ready;
	pid_t pid = fork_dest(uri, sizeof(uri), "dev-", &ready);
	if (pid == 0) {
		livemig_session *d = livemig_session_new(LIVEMIG_DEST);
		struct dev_dst dd = {.fail = c == DEV_LOAD_FAILS};
		const struct livemig_device_ops ops = {.load = dev_load, .load_end = dev_load_end,
						       .start = dev_start};
		if ((c != DEV_DEST_HAS_NONE && livemig_set_device_state(d, &ops, &dd)) ||
		    livemig_set_parameter(d, "net-timeout", "1") || livemig_start(d, uri))
			_exit(2);
		dest_listening(ready);
		int r = livemig_wait(d);
		struct livemig_stats st;
		livemig_query(d, &st);
		livemig_session_free(d);
		if (c == DEV_OK)
			_exit(!r && dd.started == 1 && dd.got == DEVLEN && !dd.bad &&
					      st.device_state_bytes == DEVLEN ? 0 : 3);
		_exit(r && !dd.started ? 0 : 4);
	}
	uint8_t *src = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (size_t i = 0; i < SIZE; i += 512)
		src[i] = (uint8_t)(i / 512);
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	struct dev_src ds = {0};
	const struct livemig_device_ops ops = {.save = dev_save};
	const struct livemig_guest_ops guest = {dev_stop_guest, dev_resume_guest, NULL};
	const struct livemig_device_ops half = {.load = dev_load};
	CHECK(livemig_set_device_state(s, &half, NULL) == -EINVAL); /* a source needs save */
	CHECK(livemig_set_device_state(s, &ops, &ds) == 0);
	CHECK(livemig_set_guest(s, &guest, &ds) == 0);
	CHECK(livemig_set_dirty_log(s, no_writes, NULL) == 0);
	CHECK(livemig_set_parameter(s, "multifd-channels", "2") == 0);
	CHECK(livemig_ram_register(s, "ram", src, SIZE) == 0);
	CHECK(livemig_start(s, uri) == 0);
	CHECK(livemig_set_device_state(s, &ops, &ds) == -EBUSY);
	int r = livemig_wait(s);
	struct livemig_stats st;
	livemig_query(s, &st);
	char json[16384];
	livemig_stats_json(s, json, sizeof(json));
	const char *err = livemig_last_error(s);
	if (c == DEV_OK) {
		char want[64];
		snprintf(want, sizeof(want), "\"bytes\": %u,", DEVLEN);
		const char *dev = strstr(json, "\"device-state\": {");
		CHECKF(r == 0 && st.device_state_bytes == DEVLEN && dev && strstr(dev, want) &&
			       ds.off == DEVLEN && ds.stops == 1 && ds.resumes == 0,
		       "device state: wait %d (%s), %llu bytes, stops %d resumes %d", r, err,
		       (unsigned long long)st.device_state_bytes, ds.stops, ds.resumes);
	} else if (c == DEV_LOAD_FAILS) {
		CHECKF(r != 0 && ds.off == DEVLEN && ds.resumes == 1 &&
			       strstr(err, "did not load it") && strstr(err, "Invalid argument"),
		       "failed load: wait %d (%s), stops %d resumes %d", r, err, ds.stops,
		       ds.resumes);
	} else {
		CHECKF(r != 0 && ds.off == 0 && strstr(err, "nothing to load it into"),
		       "one-sided device state: wait %d (%s)", r, err);
	}
	livemig_session_free(s);
	dest_exited(pid);
	munmap(src, SIZE);
}

int main(void)
{
	device_state(DEV_OK);
	device_state(DEV_LOAD_FAILS);
	device_state(DEV_DEST_HAS_NONE);
	api_errors();
	dirty_destination_memory();
	external_dirty_log();
	cancel_from_another_thread();
	change_while_running();
	T_DONE();
}
