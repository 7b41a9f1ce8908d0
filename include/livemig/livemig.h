/* SPDX-License-Identifier: MIT */
/*
 * liblivemig: live migration of memory regions ("RAM blocks") from a source
 * process to a destination process over one main channel plus N parallel
 * "multifd" channels, as QEMU's multifd migration does: each page sent
 * raw or compressed by a method (none, zlib, zstd, lz4, deflate as qpl /
 * qatzip / uadk with hardware engines and a software fallback, or auto,
 * chosen per packet from the link), zero pages as indices only, optional
 * TLS on every connection, the destination's image verified against the
 * source's digest before it may run the guest.  livemig_param_get() lists
 * every parameter and capability.
 *
 * Ownership
 *   - A session is created with livemig_session_new() and owned by the caller
 *     until livemig_session_free().  All strings passed in are copied.
 *   - Source RAM blocks stay owned by the caller; they must stay mapped until
 *     livemig_wait() has returned.  A running guest is migrated with
 *     pre-copy when the embedder gives the library a way to stop it
 *     (livemig_set_guest()): the library tracks dirty pages (userfaultfd
 *     write-protect, or the embedder's own dirty log,
 *     livemig_set_dirty_log()), runs passes until the rest fits in
 *     downtime-limit (auto-converge may throttle the guest), then stops the
 *     guest for the final pass.  Without guest ops the guest is taken as
 *     idle: its RAM must not change until livemig_wait() returns.
 *   - Destination RAM is allocated by the library from the sizes the source
 *     announces (livemig_ram_get() exposes it) unless the caller registered a
 *     block of that name and size beforehand.  Library-allocated memory lives
 *     until livemig_session_free().
 *
 * Threading
 *   - A session is driven by one caller thread: new, set, register, start,
 *     wait, free.  livemig_cancel(), livemig_query(), livemig_stats_json(),
 *     livemig_get_parameter(), livemig_set_parameter() of a changeable
 *     parameter and livemig_last_error() may be called from any thread at
 *     any time between livemig_start() and livemig_session_free().
 *   - The event callback (livemig_set_event_cb()) is called from the
 *     library's threads.
 *   - livemig_start() spawns the session's threads (one control thread and
 *     one sender or receiver thread per channel); livemig_wait() joins them.
 *   - There is no global mutable state: sessions are independent.
 *
 * Errors
 *   Functions returning int return 0 (or a count) on success and a negative
 *   errno on failure; livemig_last_error() then holds a human-readable reason.
 */
#ifndef LIVEMIG_H
#define LIVEMIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LIVEMIG_VERSION_STRING "0.1.0"

/* Marks the library's public functions: everything else in liblivemig.so
 * is hidden (built with -fvisibility=hidden). */
#if defined(__GNUC__)
#define LIVEMIG_API __attribute__((visibility("default")))
#else
#define LIVEMIG_API
#endif

typedef struct livemig_session livemig_session;

enum livemig_role {
	LIVEMIG_SOURCE = 0,
	LIVEMIG_DEST = 1,
};

enum livemig_status {
	LIVEMIG_STATUS_NONE = 0,   /* created, not started */
	LIVEMIG_STATUS_SETUP,      /* connecting, handshake */
	LIVEMIG_STATUS_ACTIVE,     /* pages moving */
	LIVEMIG_STATUS_DEVICE,     /* switchover: guest stopped, final pass, digest */
	LIVEMIG_STATUS_COMPLETED,  /* destination confirmed an identical image */
	LIVEMIG_STATUS_FAILED,     /* the guest runs on at the source */
	LIVEMIG_STATUS_CANCELLED,  /* likewise */
	LIVEMIG_STATUS_UNKNOWN,    /* switchover interrupted at the one moment a side
				    * cannot know the other's state: the source sent
				    * COMMIT and no answer came (its guest stays
				    * stopped; the destination may run it), or the
				    * destination verified and never learnt the
				    * source's decision (it must not run the guest);
				    * see livemig_resume_source().  Only a final
				    * status: while in doubt a session shows DEVICE */
};

/* A CPU figure in struct livemig_stats that no one measured (yet). */
#define LIVEMIG_CPU_UNKNOWN (-1.0)
/* A dirty-page rate in struct livemig_stats that no one measured (yet). */
#define LIVEMIG_RATE_UNKNOWN (-1.0)

/* Statistics snapshot, named after QEMU's query-migrate.  Times in ms.
 * Versioned by size: new fields are only ever appended (see
 * livemig_query_sized). */
struct livemig_stats {
	enum livemig_status status;
	uint64_t total_time_ms;      /* start until completion (or now) */
	uint64_t setup_time_ms;      /* start until all channels are up */
	uint64_t downtime_ms;        /* guest stopped until destination confirmed */
	uint64_t expected_downtime_ms; /* pre-copy estimate (source, running guest);
					* UINT64_MAX: unknown - before the first
					* dirty sync after pass 1, no bandwidth
					* measured yet, an idle guest, the
					* destination */
	uint64_t transferred;        /* bytes on the wire, all channels, headers included */
	uint64_t total;              /* bytes of guest RAM */
	uint64_t remaining;          /* bytes still to send, 0 once completed.
				      * Source: what the current pass has not sent
				      * yet plus what the last dirty sync found for
				      * the next one (everything before pass 1); it
				      * goes down as pages go out, also after a
				      * failure or cancel.  Destination: in pass 1
				      * what has not arrived; UINT64_MAX (unknown)
				      * from pass 2 on */
	uint64_t duplicate;          /* zero pages (sent as indices only) */
	uint64_t normal;             /* pages sent with content */
	uint64_t normal_bytes;       /* normal * page size */
	uint64_t payload_bytes;      /* page payload bytes on the wire (after compression) */
	double mbps;                 /* wire megabits (10^6 bits) per second, as
				      * QEMU's; people see MiB/s (the CLI) */
	double pages_per_second;     /* (normal + duplicate) / total time */
	uint64_t dirty_sync_count;   /* passes started (both sides count the same:
				      * the destination's pass k has started once it
				      * acknowledged pass k - 1) */
	/* CPU seconds of the library's threads; LIVEMIG_CPU_UNKNOWN (< 0)
	 * until known: this side's once its threads ended, the destination's
	 * on the source once it reported it, the source's never on the
	 * destination. */
	double cpu_source_seconds;
	double cpu_dest_seconds;
	double compression_ratio;    /* normal_bytes / payload_bytes */
	int verify_match;            /* 1 equal, 0 differ, -1 not (yet) known */
	uint64_t precopy_bytes;      /* wire bytes sent while the guest ran */
	uint64_t downtime_bytes;     /* wire bytes sent while it was stopped */
	double dirty_pages_rate;     /* pages/s dirtied, last pass; 0 for an idle
				      * guest (no guest ops); LIVEMIG_RATE_UNKNOWN
				      * (< 0) before the first dirty sync after
				      * pass 1 and on the destination */
	int cpu_throttle_percentage; /* auto-converge */
	char dirty_tracker[16];      /* "none" (idle guest), "uffd-async", ... */
	uint32_t channels;
	char method[16];
	char zero_page_detection[16];
	/* Engines (methods lz4, qpl, qatzip, uadk; source side). */
	char engine[16];             /* the engine jobs go to first ("" if none) */
	char fallback_engine[16];    /* the software engine behind it */
	uint64_t hw_jobs;            /* jobs the hardware engine did */
	uint64_t sw_jobs;            /* jobs done in software */
	uint64_t busy_retries;       /* jobs resubmitted because the device was busy */
	uint64_t hw_errors;          /* jobs the hardware failed (done again in software) */
	uint64_t raw_pages;          /* pages sent raw because they did not shrink */
	/* multifd-compression=auto: packets sent raw, as lz4, as zstd at
	 * multifd-zstd-level, and at two levels more. */
	uint64_t auto_none, auto_lz4, auto_zstd, auto_zstd_hi;
	/* zero-page-detection=dsa: pages checked by the device, on the CPU. */
	uint64_t dsa_pages, dsa_cpu_pages;
	/* Device state (livemig_set_device_state): bytes carried and the
	 * milliseconds from its first byte until the destination loaded it. */
	uint64_t device_state_bytes;
	uint64_t device_state_ms;
	/* Source, switchover: the final pass (guest stopped until every
	 * channel's last packet is out) and the verification (COMPLETE until
	 * RESULT), in milliseconds. */
	uint64_t final_pass_ms;
	uint64_t verify_ms;
};

/* Log callback: level 0 error, 1 warning, 2 info.  Called from library
 * threads, never from per-page loops. */
typedef void (*livemig_log_fn)(void *opaque, int level, const char *msg);

/*
 * Events, as QEMU's MIGRATION and MIGRATION_PASS (livemig_set_event_cb).
 * The struct is the library's, valid during the call only; new fields are
 * only ever appended.
 */
enum livemig_event_type {
	LIVEMIG_EVENT_STATUS = 0, /* the status changed: status is the new one */
	LIVEMIG_EVENT_PASS = 1,   /* a pass began: pass is its number */
};
struct livemig_event {
	enum livemig_event_type type;
	enum livemig_status status; /* the status now */
	uint32_t pass;              /* LIVEMIG_EVENT_PASS: 1 = the first pass (every
				     * page), counted as dirty_sync_count counts;
				     * the final pass is one too.  0 otherwise */
};
typedef void (*livemig_event_fn)(void *opaque, const struct livemig_event *ev);

/* Returns NULL on allocation failure. */
LIVEMIG_API livemig_session *livemig_session_new(enum livemig_role role);

/* Cancels (if running), joins every thread and frees everything the library
 * allocated, including destination RAM it allocated.  NULL is a no-op. */
LIVEMIG_API void livemig_session_free(livemig_session *s);

LIVEMIG_API void livemig_set_log(livemig_session *s, livemig_log_fn fn, void *opaque);

/*
 * Parameters by QEMU's names, values as text ("2", "zstd", "1G", "300").
 * Which names exist, their values, defaults and the side each applies to:
 * livemig_param_get() below (and `livemig --help`).
 * -ENOENT unknown name; -EINVAL bad value, or a parameter of the other side
 * only (max-bandwidth on a destination: "max-bandwidth applies to the
 * source only"); -EBUSY after livemig_start(), except for a parameter the
 * table marks changeable (struct livemig_param_info: max-bandwidth,
 * downtime-limit, avail-switchover-bandwidth, throttle-trigger-threshold,
 * cpu-throttle-initial, cpu-throttle-increment, max-cpu-throttle).
 * Such a one may be set while the migration runs, from any thread, and
 * takes effect promptly: max-bandwidth with the next packet a channel
 * books (a channel waiting for a slot booked at the old rate stops
 * waiting), the others at the next convergence decision (the next dirty
 * sync: when the current pass has ended, and at most once per 10 ms - a
 * pass of much dirty memory takes longer).  After the guest has
 * stopped they change nothing in this migration.  After livemig_start()
 * a refused value is not recorded in livemig_last_error(), which keeps the
 * migration's own error.  multifd-compression=auto with max-bandwidth set
 * at the start keeps that rate as its link speed.
 * On a destination, a must_match parameter set explicitly must match what
 * the source announces or the migration fails; unset ones follow the source.
 */
LIVEMIG_API int livemig_set_parameter(livemig_session *s, const char *name, const char *value);

/*
 * The current value of a parameter or capability as text ("300", "zstd",
 * "on"), as livemig_set_parameter() takes it (sizes and rates in bytes),
 * into buf like snprintf: returns the length of the value; buf may be NULL
 * when len is 0.  A destination shows what it adopted from the source once
 * the source announced it.  Any thread.  -ENOENT unknown name, -EINVAL s
 * or name NULL.
 */
LIVEMIG_API int livemig_get_parameter(livemig_session *s, const char *name, char *buf,
				      size_t len);

/* Capabilities by QEMU's name (livemig_param_get() lists them too, with
 * capability set): "multifd" (always on), "auto-converge" (throttle a guest
 * that dirties faster than the link drains), "channel-recovery" (a multifd
 * channel whose connection fails is reconnected and its pass resent; set
 * on the source, a destination follows it, and one that sets it must match;
 * each recovery is logged as a warning and counted in the JSON statistics,
 * "channel-recoveries").
 * -ENOENT unknown; -EINVAL turning multifd off, or a capability of the other
 * side only; -EBUSY after livemig_start(). */
LIVEMIG_API int livemig_set_capability(livemig_session *s, const char *name, bool on);

/*
 * One parameter or capability, as the library's table describes it.  Every
 * string is owned by the library and lives as long as it is loaded; none is
 * NULL unless said.  New fields are only ever appended.
 */
struct livemig_param_info {
	const char *name;          /* as QEMU spells it: "multifd-channels" */
	const char *alias;         /* another accepted name ("accel-path"), or NULL */
	const char *type;          /* "uint", "size" (bytes, K/M/G suffixes), "enum",
				    * "bool" (on|off) or "string" */
	const char *values;        /* "1..255", "none|zlib|...", "on|off", or a shape
				    * such as "PATH" */
	const char *default_value; /* as text; NULL when there is none */
	const char *unit;          /* "ms", "s", "%", "bytes/s", or "" */
	const char *help;          /* one line */
	bool capability;           /* set with livemig_set_capability() */
	bool source;               /* a source session accepts it */
	bool destination;          /* a destination session accepts it */
	bool changeable;           /* may change during a migration
				    * (livemig_set_parameter) */
	bool must_match;           /* a destination that sets it must match the source */
	bool hidden;               /* a test hook, left out of --help */
};

/* Entry idx (0, 1, ...) of the table; NULL past the end.  Any thread. */
LIVEMIG_API const struct livemig_param_info *livemig_param_get(unsigned idx);

/* The entry named name (or with that alias); NULL if none.  Any thread. */
LIVEMIG_API const struct livemig_param_info *livemig_param_find(const char *name);

/*
 * Registers a RAM block.  Source: host must be page-aligned and size a
 * multiple of 4096, at most 2^32 pages.  Destination: host may be NULL (the
 * library allocates zeroed memory when the source announces it, or with
 * livemig_set_prealloc() in livemig_start(), before it listens); the source
 * must send a registered block, with the same size; every page of a block
 * registered with memory is written, zero pages included.  Names are at
 * most 63 bytes.
 * -EINVAL bad arguments, -EEXIST duplicate name, -E2BIG too many blocks
 * (at most 64), -EBUSY after start.
 */
LIVEMIG_API int livemig_ram_register(livemig_session *s, const char *name, void *host, uint64_t size);

/*
 * The block name (registered on the source) is also mapped shared by process
 * pid at remote_addr -- the same file or memfd, at the same offsets -- and
 * that process writes it (QEMU, say, with a memory-backend-file or memfd,
 * share=on): track that process's writes.  dirty-tracker "auto" then picks
 * "uffd-remote", which harvests them from /proc/PID/pagemap; the host
 * mapping registered here is what is read and sent.  pid must have been
 * started with liblivemig-track.so preloaded and LIVEMIG_TRACK naming the
 * file (it registers the mapping for write-protection when it is mapped);
 * livemig_start() then fails with "process PID has no write-protect
 * registration on 0x...-0x... (started without liblivemig-track.so?)", and
 * with a clear reason when the two mappings are not the same memory.
 * Reading another process's pagemap needs ptrace rights over it (same user,
 * or CAP_SYS_PTRACE).  Call before livemig_start(), once per block; a
 * block without a call is tracked as memory this process writes, but one
 * tracker covers every block, so either every block has a remote or none.
 * -EINVAL not a source, pid <= 0 or remote_addr not page aligned; -ENOENT
 * no block of that name; -EBUSY after start.
 */
LIVEMIG_API int livemig_ram_set_remote(livemig_session *s, const char *name, pid_t pid,
				       uint64_t remote_addr);

/*
 * A running guest (source only).  stop() must return only when no guest
 * write is in progress or can start; resume() undoes it (called when the
 * migration fails or is cancelled after the guest was stopped: the guest
 * keeps running at the source); throttle(percent) slows the guest's writes
 * to (100 - percent) % for auto-converge, 0 = full speed.  Called from the
 * library's control thread.  throttle may be NULL (no auto-converge).
 * -EINVAL missing stop/resume, -EBUSY after start.
 */
struct livemig_guest_ops {
	void (*stop)(void *opaque);
	void (*resume)(void *opaque);
	void (*throttle)(void *opaque, int percent);
};
LIVEMIG_API int livemig_set_guest(livemig_session *s, const struct livemig_guest_ops *ops, void *opaque);

/*
 * Device state: what a hypervisor keeps outside the RAM blocks (QEMU's
 * device models and CPU registers), carried in the same session after the
 * RAM and switched over with it (docs/wire-format.md, DEVSTATE).
 *
 * After the destination has verified the RAM (RESULT OK), the source pulls
 * the state from its embedder and streams it on the main channel; the
 * destination pushes it into its embedder and answers whether it loaded;
 * only then does the source commit, and at the commit the destination's
 * embedder starts the guest.  All of it counts in the switchover deadline
 * (downtime-limit + switchover-timeout).  Set on both sides or neither:
 * the source announces it in PARAMS and a destination that differs fails
 * the migration before any page moves.
 *
 * Source (all called from the control thread, after the guest was stopped):
 *   save(opaque, buf, len): writes up to len (32 KiB)
 *     bytes of state into buf and returns how many; 0 at its end.
 *     -EAGAIN: nothing yet - called again (so wait at most ~100 ms per call:
 *     a cancel or the deadline is noticed between calls).  Another -errno
 *     fails the migration: the guest resumes (guest ops) and the
 *     destination discards.  At most 1 GiB in all.
 * Destination (called from the control thread):
 *   load(opaque, buf, len): the next len (1..65536) bytes, in order.  0, or
 *     -errno: the load failed, the destination discards and tells the
 *     source, which resumes the guest.
 *   load_end(opaque): every byte came; 0 when the state is loaded and the
 *     guest could start, -errno otherwise (as load).  Must return within
 *     the switchover deadline of the source, which otherwise resumes.
 *   start(opaque): the source committed: run the guest (QEMU: `cont`).
 *     Called once, before this side's OUTCOME.  Not called when the
 *     migration fails or ends in doubt: then livemig_wait() reports it and
 *     the loaded state must never run.
 * The fields of the other side are ignored and may be NULL.
 * -EINVAL a callback of this side missing, -EBUSY after livemig_start().
 */
struct livemig_device_ops {
	ssize_t (*save)(void *opaque, void *buf, size_t len);
	int (*load)(void *opaque, const void *buf, size_t len);
	int (*load_end)(void *opaque);
	void (*start)(void *opaque);
};
LIVEMIG_API int livemig_set_device_state(livemig_session *s, const struct livemig_device_ops *ops,
					 void *opaque);

/*
 * A hypervisor's own dirty log (KVM_GET_DIRTY_LOG / KVM_CLEAR_DIRTY_LOG, a
 * dirty ring...) instead of the library's userfaultfd trackers: at each sync
 * the library calls fn once per RAM block, and fn must OR into bitmap (one
 * bit per page, bit i in word i / 64) every page written since its previous
 * call for that block (or since livemig_start()), and re-arm them.  Returns
 * 0 or a negative errno (which fails the migration).  Called from the
 * control thread.  Implies the "external" dirty tracker.
 */
typedef int (*livemig_dirty_log_fn)(void *opaque, unsigned block, uint64_t *bitmap);
LIVEMIG_API int livemig_set_dirty_log(livemig_session *s, livemig_dirty_log_fn fn, void *opaque);

/*
 * Calls fn for every status change and every pass begun, in order: SETUP
 * (from livemig_start(), on its caller's thread), ACTIVE, passes, DEVICE
 * (the source's final pass comes after it), then one final status
 * (COMPLETED, FAILED, CANCELLED or UNKNOWN; a later livemig_resume_source()
 * reports the status it settles on, from its caller's thread).  Otherwise
 * from the session's control thread, which waits for fn: fn must return
 * quickly and must not block (queue the event for another thread).  It may
 * call livemig_query(), livemig_stats_json(), livemig_get_parameter() and
 * livemig_cancel(); never livemig_wait() or livemig_session_free().  Every
 * event has been delivered when livemig_wait() returns.  fn NULL: none.
 * Set before livemig_start(); cleared (fn NULL) also once livemig_wait()
 * has returned or livemig_start() failed (then nothing calls it any more,
 * livemig_resume_source() included): from the session's caller thread.
 * 0, or -EBUSY after livemig_start() (clearing: while the migration runs).
 */
LIVEMIG_API int livemig_set_event_cb(livemig_session *s, livemig_event_fn fn, void *opaque);

/* Destination only: preallocate (fault in) RAM before pages arrive - the
 * blocks registered without memory in livemig_start(), before it listens,
 * the others when the source announces them.  0, or -EBUSY after
 * livemig_start(). */
LIVEMIG_API int livemig_set_prealloc(livemig_session *s, bool on);

/*
 * Starts the migration in the background.
 * Source: connects the main channel and multifd-channels channels to uri
 * ("tcp:HOST:PORT", "tcp:[V6]:PORT", "unix:PATH").
 * Destination: binds and listens on uri before returning, so a source may
 * connect as soon as this returns; the rest happens in the background.
 * Until every connection of one source has come, a connection that is not
 * one of them (a failed TLS handshake, a bad hello, another session's, a
 * duplicate) is closed, logged as a warning and counted (JSON
 * "refused-connections"), and the destination waits on - for ever, or for
 * the parameter timeout; after the first good one the rest must come
 * within 30 s.  Connections are vetted (TLS handshake, hello) concurrently,
 * each within 10 s in all, so a silent or slow client delays no other; at
 * most 32 are half open at once (accepted, not yet vetted): one more closes
 * the one that waited longest.  Refusals are logged at most ten at once,
 * then one a second (each line says how many were left out before it); the
 * count is exact.
 * With tls-creds, the credentials are loaded here, once: every connection
 * (main, multifd, replacements, resolving ones) runs a TLS handshake before
 * anything else, the source as client; the JSON statistics say which TLS
 * ran ("tls").
 * Returns -EINVAL bad uri, no RAM block (source), a compression engine
 * that cannot run, or tls-psk-identity/tls-hostname/tls-authz without
 * tls-creds; -ENODEV a forced hardware engine without its device;
 * -ENOKEY when tls-creds (or tls-authz) cannot be used - a missing or
 * malformed file, a directory, a tls-authz file that lists no identity,
 * an identity keys.psk lacks, or, on a source with
 * tls-creds=x509, no name to check the destination's certificate against:
 * a unix: URI or tcp::PORT need tls-hostname (as QEMU requires it); an
 * address in the URI is checked against the certificate's IP addresses
 * only -,
 * -E2BIG when a destination's registered blocks are more than max-ram
 * (unset: this machine's memory), -ENOMEM when one with prealloc cannot
 * map them; -EADDRINUSE/-EEXIST/... when the destination cannot listen,
 * -EBUSY when already started.  The source connects in the background: its connection
 * errors, TLS refusals included, come from livemig_wait().
 */
LIVEMIG_API int livemig_start(livemig_session *s, const char *uri);

/*
 * Destination, after a successful livemig_start(): the URI it listens on
 * as a source would connect to it - the real port when the URI said 0,
 * an IPv6 address in brackets (tcp:[::1]:4444), unix:PATH - into buf (len
 * bytes, always terminated).  Any thread.  Returns the length of the URI
 * (snprintf's contract), -EINVAL for a source or a destination not
 * listening, -errno when the socket cannot be asked.
 */
LIVEMIG_API int livemig_listen_uri(livemig_session *s, char *buf, size_t len);

/* Asks a running migration to stop; livemig_wait() then returns -ECANCELED,
 * the destination discards what it received and a stopped guest resumes at
 * the source.  The source's RAM is never touched.  Safe from any thread (it
 * takes the session's locks briefly, so not from a signal handler itself:
 * use a thread that sigwait()s).  Works during switchover too, until the
 * source commits (the destination has verified the image and is told to
 * take the guest over); a no-op from then on. */
LIVEMIG_API void livemig_cancel(livemig_session *s);

/* Waits for the end.  0: the destination verified an identical image and
 * took the guest over (source: stop it for good; destination: run it).
 * LIVEMIG_STATUS_UNKNOWN: -EINPROGRESS (see livemig_resume_source()).
 * Negative errno otherwise (-ECANCELED, -ETIMEDOUT, -EPROTO bad peer data,
 * -EIO digest mismatch, socket errors...), and then the guest runs on at
 * the source and the destination must discard its image;
 * livemig_last_error() says why. */
LIVEMIG_API int livemig_wait(livemig_session *s);

/*
 * Source whose migration ended LIVEMIG_STATUS_UNKNOWN (COMMIT sent, no
 * answer; the guest is stopped): asks the destination, on a new
 * connection, to discard its image.  0: it had not taken the guest over and
 * now never will; the guest is resumed here (status FAILED).  -EBUSY: the
 * destination runs the guest (status COMPLETED: stop it for good here).
 * -EHOSTUNREACH: the destination could not be asked within net-timeout and
 * may run the guest: refused, the guest stays stopped.  The destination
 * answers while it waits in doubt (3 x its net-timeout) or while it is
 * still finishing; after that nobody can.
 * -EINVAL: not a finished source in that state.  Call after
 * livemig_wait(), from one thread.
 */
LIVEMIG_API int livemig_resume_source(livemig_session *s);

/*
 * Fills st[0..size) with a consistent snapshot.  struct livemig_stats only
 * grows at its end, so size says which version the caller was built with:
 * a smaller (older) struct gets its prefix and no byte past size is
 * written; a larger (newer) one gets the fields this library knows and
 * zeros after them.  Use livemig_query(), which passes sizeof(*st).
 * 0, or -EINVAL (s or st NULL).
 */
LIVEMIG_API int livemig_query_sized(livemig_session *s, struct livemig_stats *st, size_t size);
/* The 0.1.0 entry point, kept for binaries built against it (fills the
 * 0.1.0 struct); new code gets the macro below. */
LIVEMIG_API int livemig_query(livemig_session *s, struct livemig_stats *st);
#define livemig_query(s, st) livemig_query_sized((s), (st), sizeof(*(st)))

/* Writes the statistics as JSON (query-migrate shape) into buf, like
 * snprintf: returns the length it needed, excluding the NUL. */
LIVEMIG_API int livemig_stats_json(livemig_session *s, char *buf, size_t len);

/* Destination: RAM blocks known so far (after completion, all of them).
 * Returns the count; fills name/host/size of block idx when idx < count. */
LIVEMIG_API int livemig_ram_get(livemig_session *s, unsigned idx, const char **name, void **host,
		    uint64_t *size);

LIVEMIG_API const char *livemig_last_error(livemig_session *s);
LIVEMIG_API const char *livemig_status_name(enum livemig_status st);

/*
 * What this build and this machine can do, as one JSON object (what
 * `livemig info --json` prints), written into buf like snprintf: at most
 * len bytes including the NUL; returns the length needed excluding it
 * (call with NULL, 0 to size a buffer), or -ENOMEM.  Needs no session;
 * safe from any thread.  It probes the machine each call (hardware
 * engines, DSA, userfaultfd): milliseconds, not for a hot loop, and two
 * calls may differ if a device comes or goes.
 *
 * Shape (keys are only ever added; arrays list every registered backend):
 *   "version": "0.1.0",
 *   "cpu": {"sse2": true, "avx2": true, ...}           CPU features
 *   "crc32c": {"engine", "library", "version", "self_check": bool}
 *   "methods": [{"name", "min_level", "max_level", "default_level",
 *                "engine" (the one a migration would use first),
 *                "hardware": bool (that engine is a device),
 *                "fallback" (its software engine; null without engines),
 *                "version" (the library's version, or null)}, ...]
 *               (auto too: its levels are its zstd packets')
 *   "engines": [{"name", "method", "hardware", "built", "usable",
 *                "why" ("" when usable)}, ...]         hardware first
 *   "zero_page_engines": [{"name", "built", "usable",
 *                          "why" (a detail when usable: the CPU's SIMD)}, ...]
 *   "dirty_trackers": [{"name", "usable", "reason" ("" when usable),
 *                       "auto" (dirty-tracker=auto may pick it),
 *                       "help"}, ...]                   best first
 *   "parameters": [{"name", "alias", "type", "values", "default", "unit",
 *                   "help", "capability", "source", "destination",
 *                   "changeable", "must_match", "hidden"}, ...]
 *                  the fields of struct livemig_param_info, in its order
 *   "tls": {"library", "version", "credentials", "kernel_tls", "records"}
 *   "track_shim": {"path" (liblivemig-track.so, the preload library that
 *                  uffd-remote needs in QEMU: next to this code - the build
 *                  tree or the installed libdir - else in "libdir"; null
 *                  when in neither), "libdir" (where this build installs it)}
 */
LIVEMIG_API int livemig_info_json(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
