/* SPDX-License-Identifier: MIT */
/* Session internals shared by session.c, source.c, dest.c, stats.c. */
#ifndef LM_INTERNAL_H
#define LM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "accel/accel.h"
#include "codec/auto.h"
#include "codec/codec.h"
#include "core/gate.h"
#include "core/recovery.h"
#include "core/tls.h"
#include "core/wire.h"
#include "dirty/tracker.h"
#include "util/pagehash.h"
#include "livemig/livemig.h"
#include "zeropage/zeropage.h"

#define LM_MAX_CHANNELS 255
/* LM_MAX_BLOCKS and LM_NAME_MAX are in wire.h: PARAMS carries them. */

/* ---- parameters (params.c) ----------------------------------------------
 * One const table in params.c describes every parameter and capability:
 * its type, range, default, side, help and field below.  These ids index
 * it (in the order --help lists them) and are the bits of set_mask.
 */
enum lm_param_id {
	LM_P_CHANNELS,
	LM_P_COMPRESSION,
	LM_P_ZLIB_LEVEL,
	LM_P_ZSTD_LEVEL,
	LM_P_QATZIP_LEVEL,
	LM_P_ENGINE,
	LM_P_ACCEL_RETRIES,
	LM_P_ACCEL_VERIFY,
	LM_P_ZERO_DETECT,
	LM_P_DSA_PATH,
	LM_P_MAX_BW,
	LM_P_DOWNTIME,
	LM_P_SWITCHOVER_BW,
	LM_P_TRACKER,
	LM_P_THROTTLE_THRESHOLD,
	LM_P_THROTTLE_INITIAL,
	LM_P_THROTTLE_INCREMENT,
	LM_P_THROTTLE_MAX,
	LM_P_TIMEOUT,
	LM_P_NET_TIMEOUT,
	LM_P_SWITCHOVER_TIMEOUT,
	LM_P_MAX_RAM,
	LM_P_TLS_CREDS,
	LM_P_TLS_PSK_IDENTITY,
	LM_P_TLS_HOSTNAME,
	LM_P_TLS_AUTHZ,
	LM_P_X_NO_BARRIER,       /* test hooks (hidden) */
	LM_P_X_DELAY_CHANNEL,
	LM_P_X_FAULT_ENGINE,
	LM_P_X_AUTO_SPEEDS,
	LM_P_X_STALL_SWITCHOVER,
	LM_P_X_LOSE_COMMIT,
	LM_P_CAP_MULTIFD,        /* capabilities */
	LM_P_CAP_AUTO_CONVERGE,
	LM_P_CAP_CHANNEL_RECOVERY,
	LM_P_COUNT
};

struct lm_params {
	uint32_t channels;
	uint8_t method;
	int zlib_level, zstd_level, qatzip_level;
	bool zero_detect;            /* zero-page-detection is not none (on the wire) */
	char zero_engine[16];        /* its value: a zero-page engine's name */
	char dsa_path[128];
	char engine[16];             /* compression-engine, "" = best usable */
	unsigned accel_retries;
	bool accel_verify;
	uint64_t max_bandwidth;      /* bytes/s, 0 = unlimited */
	uint64_t downtime_limit_ms;
	uint64_t switchover_bw;      /* bytes/s, 0 = use measured */
	bool auto_converge;
	bool channel_recovery;       /* a lost multifd connection is replaced (both sides) */
	char tracker[16];            /* "auto" or a tracker's name */
	int throttle_threshold, throttle_initial, throttle_increment, throttle_max;
	uint64_t timeout_s;          /* 0 = none; a destination: for the source's
				      * connections to arrive */
	unsigned net_timeout_s;      /* a peer or connection silent this long is gone */
	uint64_t max_ram;            /* destination: bytes of RAM a source may announce,
				      * 0 = this machine's memory */
	uint64_t switchover_timeout_ms; /* source: the guest's stop may last downtime-limit
					 * plus this before the source takes it back */
	/* TLS (docs/design.md, "TLS"), QEMU's names; "" = not set. */
	char tls_creds[256];         /* psk:DIR or x509:DIR; "" = plaintext */
	char tls_psk_identity[64];   /* source: the line of keys.psk to use */
	char tls_hostname[256];      /* source: the name in the destination's
				      * certificate; "" = the URI's host */
	char tls_authz[256];         /* destination: a file of allowed identities */
	/* Test hooks (x- names, as QEMU's): break the ordering on purpose. */
	bool x_no_barrier;           /* no SYNC barrier wait, no ITER_ACK wait */
	unsigned x_delay_channel;    /* destination: this channel's receiver... */
	unsigned x_delay_ms;         /* ...sleeps this long before each packet */
	char x_fault[128];           /* fault engine options: "" = off */
	uint64_t x_auto[LM_AUTO_N];  /* auto: fixed link, lz4, zstd, zstd-hi speeds (B/s) */
	uint64_t x_stall_switchover_ms; /* destination: holds RESULT back this long */
	char x_lose_commit[8];       /* source: "once": COMMIT counts as written and is
				      * not (an in-doubt destination); "always": nor
				      * is it resent ("off": neither) */
	uint64_t set_mask;           /* 1 << lm_param_id for explicitly set ones */
};

/* Every setting at its table default, none explicitly set. */
void lm_params_default(struct lm_params *p);
/*
 * Sets parameter name (or its alias) from text for a session of role.
 * 0; -ENOENT unknown name; -EINVAL bad value, or a parameter of the other
 * side only.  err gets the reason.
 */
int lm_params_set(struct lm_params *p, enum livemig_role role, const char *name,
		  const char *value, char *err, size_t errlen);
/*
 * lm_params_set for a running session: only a parameter the table marks
 * changeable; -EBUSY for any other (err names the ones that can change).
 * Stores nothing but that parameter's field and its set_mask bit; the
 * caller holds the session's lock (see struct livemig_session, "p").
 */
int lm_params_set_running(struct lm_params *p, enum livemig_role role, const char *name,
			  const char *value, char *err, size_t errlen);
/* The same for a capability. */
int lm_params_cap(struct lm_params *p, enum livemig_role role, const char *name, bool on,
		  char *err, size_t errlen);
/* The current value of a parameter or capability as text, like snprintf;
 * -ENOENT unknown name. */
int lm_params_get(const struct lm_params *p, const char *name, char *buf, size_t len);
/*
 * Destination: takes the settings the source announced (src: channels,
 * method, its level and zero_detect).  A must-match setting p set
 * explicitly must equal src's (a level only when src's method uses it):
 * -EINVAL and err says which, p unchanged.  Otherwise 0, and each of them
 * follows src.
 */
int lm_params_match_source(struct lm_params *p, const struct lm_params *src, char *err,
			   size_t errlen);
int lm_params_level(const struct lm_params *p);
/* The level p gives method (for auto: its zstd packets' level); 0 for
 * none, 1 for a method without a level parameter. */
int lm_method_level(const struct lm_params *p, uint8_t method);
/* Sets the level lm_method_level() reads; no-op for a method without one. */
void lm_method_set_level(struct lm_params *p, uint8_t method, int level);
const char *lm_method_name(uint8_t method);

/* ---- transport (transport.c) -------------------------------------------- */
struct lm_addr {
	int family; /* AF_INET, AF_INET6, AF_UNIX */
	char host[256];
	char port[16];
	char path[108];
};
/* tcp:HOST:PORT (HOST: a name or IPv4 address, letters, digits, '.', '-'
 * and '_'; empty: every address / the loopback), tcp:[V6]:PORT (an IPv6
 * address, maybe with %ZONE: always in brackets), PORT decimal digits only,
 * 0..65535 (0: any free one, for a listener); unix:PATH (at most 107
 * bytes).  0, or -EINVAL with the reason in err. */
int lm_uri_parse(const char *uri, struct lm_addr *a, char *err, size_t errlen);
int lm_listen(const struct lm_addr *a, char *err, size_t errlen);   /* fd or -errno */
/* The URI a socket is bound to (tcp:ADDR:PORT, IPv6 in brackets;
 * unix:PATH) into buf: its length as snprintf, or -errno. */
int lm_sock_uri(int fd, char *buf, size_t len);
/* A connected socket, or -errno: -ETIMEDOUT when a TCP peer did not answer
 * within timeout_s seconds, -ECANCELED as soon as *stop (NULL: never) is
 * raised; err gets the reason. */
int lm_connect(const struct lm_addr *a, unsigned timeout_s, const _Atomic bool *stop, char *err,
	       size_t errlen);
void lm_sock_tune(int fd, bool tcp);
/* Liveness of a TCP connection, from net-timeout seconds (>= 1): an idle
 * connection is probed after half of it, then every third of the rest;
 * written data may stay unacknowledged (TCP_USER_TIMEOUT) for all of it.
 * A dead peer or link then fails reads and writes with -ETIMEDOUT (or
 * -EHOSTUNREACH) within about net-timeout, even when nobody writes. */
struct lm_keepalive {
	int idle_s, interval_s, count; /* TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT */
	unsigned user_timeout_ms;      /* TCP_USER_TIMEOUT */
};
struct lm_keepalive lm_keepalive_for(unsigned seconds);
/* Sets lm_keepalive_for(seconds) on a TCP socket.  0 or -errno. */
int lm_sock_liveness(int fd, unsigned seconds);
/* Full-length I/O: 0 once every byte moved; -ECONNRESET on EOF (read_full
 * with *eof set when the stream ended cleanly before the first byte);
 * -ETIMEDOUT when lm_set_timeout's time passed in one wait; -errno otherwise
 * (-EPIPE: the peer is gone, and no SIGPIPE).  The *v variants use up the
 * caller's iov array. */
int lm_write_full(int fd, const void *buf, size_t len);
int lm_writev_full(int fd, struct iovec *iov, int iovcnt);
int lm_read_full(int fd, void *buf, size_t len, bool *eof);
int lm_readv_full(int fd, struct iovec *iov, int iovcnt);
int lm_set_timeout(int fd, int seconds); /* 0 = none */
/* A unix-socket peer may connect when it runs as this user or as root:
 * 0, -EACCES another user, -errno. */
int lm_peer_allowed(int fd);
/* SO_RCVTIMEO alone, in ms (0 = none).  0 or -errno. */
int lm_set_recv_timeout_ms(int fd, int ms);

/* ---- I/O on a connection: its fd and, with TLS (docs/design.md, "TLS"),
 * the session over it - NULL for plaintext, and then exactly the calls
 * above.  One thread may send while another receives; never two senders. */
static inline int lm_io_write(int fd, struct lm_tls_conn *tls, const void *buf, size_t len)
{
	return tls ? lm_tls_write(tls, buf, len) : lm_write_full(fd, buf, len);
}
static inline int lm_io_writev(int fd, struct lm_tls_conn *tls, struct iovec *iov, int iovcnt)
{
	return tls ? lm_tls_writev(tls, iov, iovcnt) : lm_writev_full(fd, iov, iovcnt);
}
static inline int lm_io_read(int fd, struct lm_tls_conn *tls, void *buf, size_t len, bool *eof)
{
	return tls ? lm_tls_read(tls, buf, len, eof) : lm_read_full(fd, buf, len, eof);
}
static inline int lm_io_readv(int fd, struct lm_tls_conn *tls, struct iovec *iov, int iovcnt)
{
	return tls ? lm_tls_readv(tls, iov, iovcnt) : lm_readv_full(fd, iov, iovcnt);
}
/*
 * What has come, waiting up to wait_ms for something: as recv(), the bytes
 * read (at most len), 0 at the end of the stream (the peer's FIN), -EAGAIN
 * when nothing came in time, or -errno (lm_tls_read's, with TLS).  With
 * TLS the socket needs a short SO_RCVTIMEO (lm_set_recv_timeout_ms): a
 * record that came in part then waits no longer than that, and what
 * GnuTLS has already decrypted counts as come.
 */
ssize_t lm_io_recv(int fd, struct lm_tls_conn *tls, void *buf, size_t len, int wait_ms);
/*
 * Writes buf (a control message) now or never: -EAGAIN, nothing written,
 * when the socket has no room; else lm_io_write's result.  Takes no lock:
 * the caller holds the connection's writer lock.
 */
int lm_io_write_now(int fd, struct lm_tls_conn *tls, const void *buf, size_t len);
/* Ends tls (NULL: none) and closes fd (< 0: none). */
void lm_io_close(int fd, struct lm_tls_conn *tls);
/* tcpinfo.c: bytes the TCP peer acknowledged, or -1 (not TCP). */
int64_t lm_sock_acked(int fd);

/* ---- per-page digest ----------------------------------------------------
 * Each side keeps a 128-bit hash per page of what it sent or wrote: normal
 * pages hash their content seeded with the page's global number, zero pages
 * a value derived from the number alone.  The image digest is the sum
 * (mod 2^128) over all pages, so a resent page just replaces its entry.
 */
struct lm_h128 lm_zero_hash(uint64_t gpn);

/* Destination RAM: size bytes of anonymous memory, MADV_HUGEPAGE, faulted
 * in when prealloc; NULL when it cannot be mapped. */
void *lm_map_ram(uint64_t size, bool prealloc);
/* The most RAM a destination takes, in bytes: max-ram, else this machine's
 * memory. */
uint64_t lm_ram_limit(const livemig_session *s);

/* ---- RAM blocks ---------------------------------------------------------- */
struct lm_block {
	char name[LM_NAME_MAX];
	uint8_t *host;
	uint64_t size, pages;
	bool owned;                 /* mmap'ed by the library (destination) */
	pid_t remote_pid;           /* source: the process that writes it, 0 = this
				     * one (livemig_ram_set_remote) */
	uint64_t remote_addr;       /* ... at this address there */
	struct lm_h128 *hash;       /* per page, see above */
	_Atomic uint64_t *received; /* destination: pages ever written */
};
#define LM_GPN(block, page) (((uint64_t)(block) << 40) | (page))
#define LM_GPN_PAGE(gpn) ((gpn) & ((1ull << 40) - 1))

/* One pre-copy pass, for the statistics. */
struct lm_iter_stat {
	uint64_t pages, bytes, duration_ms;
	double dirty_rate; /* pages/s dirtied while it ran */
};

/* ---- channels ------------------------------------------------------------ */
struct lm_chan {
	livemig_session *s;
	unsigned id;           /* 1..channels */
	int fd;
	struct lm_tls_conn *tls; /* over fd, NULL = plaintext; moves with fd */
	pthread_t thread;
	bool started;
	/* Sender: the session's codec, its context, and its zero-page engine. */
	const struct lm_codec_ops *codec;
	void *cctx;
	bool raw_only;         /* the codec only ever sends raw pages (none) */
	bool last_raw;         /* sender: its last packet with data went raw */
	uint8_t empty_method;  /* of a packet without data pages: the codec's lowest */
	struct lm_zeropage zero_engine;
	/* Receiver: a decoder per wire method the session's packets carry. */
	void *dctx[LM_METHOD_MAX];
	uint64_t seq;
	uint8_t *buf;          /* compressed payload */
	size_t bufcap;
	uint8_t *bounce;       /* live guest: a stable copy of the packet's pages */
	bool final_pass;       /* source: this pass runs with the guest stopped */
	/* Channel recovery (channel-recovery, docs/design.md).  The owner
	 * thread's, but where a comment says otherwise. */
	int lost;              /* why the connection ended (LM_LOST): -errno */
	const char *lost_what; /* destination: where in a packet */
	int new_fd;            /* destination: a replacement connection the acceptor
				* handed over, -1 = none; under s->lock */
	struct lm_tls_conn *new_tls; /* ... its TLS session, under s->lock */
	bool ended;            /* destination: the receiver has ended, at... */
	uint32_t end_pass;     /* ...this pass; both under s->lock */
	/* Counters: written by the owner thread only, read by anyone. */
	_Atomic uint64_t normal, zero, wire_bytes, payload_bytes, packets;
	_Atomic uint64_t recoveries; /* connections replaced */
	struct lm_codec_counters codec_cnt;
	struct lm_zeropage_counters zero_cnt;
	double cpu_seconds;    /* set when the thread exits */
};

/* A channel thread's I/O function: the connection is lost and, with
 * channel-recovery, is to be replaced (c->lost says why).  Not an error:
 * nothing is latched. */
#define LM_LOST 1

/* Adds one packet (not a SYNC at the destination) to c's counters; c's
 * thread only. */
static inline void lm_chan_count(struct lm_chan *c, uint32_t normal, uint32_t zero,
				 uint64_t wire_bytes, uint64_t payload_bytes)
{
	atomic_store_explicit(&c->normal, c->normal + normal, memory_order_relaxed);
	atomic_store_explicit(&c->zero, c->zero + zero, memory_order_relaxed);
	atomic_store_explicit(&c->wire_bytes, c->wire_bytes + wire_bytes, memory_order_relaxed);
	atomic_store_explicit(&c->payload_bytes, c->payload_bytes + payload_bytes,
			      memory_order_relaxed);
	atomic_store_explicit(&c->packets, c->packets + 1, memory_order_relaxed);
}

/* Appends a page to the iovec list iov[0..*n), as part of the last entry
 * when it follows that one in memory: fewer, longer iovecs for the kernel. */
static inline void lm_iov_add_page(struct iovec *iov, int *n, void *page)
{
	if (*n && (uint8_t *)iov[*n - 1].iov_base + iov[*n - 1].iov_len == page)
		iov[*n - 1].iov_len += LM_PAGE_SIZE;
	else
		iov[(*n)++] = (struct iovec){page, LM_PAGE_SIZE};
}

/* ---- the session --------------------------------------------------------- */

/* State only a source has (source.c, precopy.c).  Guarded by the session's
 * lock unless a comment says otherwise. */
struct lm_source {
	struct lm_accel_choice accel; /* engines for the method, chosen at start */
	pthread_t rp;            /* return-path reader */
	bool rp_started;
	_Atomic bool complete_sent; /* COMPLETE is out: a RESULT may come */
	/* channel-recovery: per chunk of LM_PACKET_PAGES work entries of the
	 * current pass, the channel that took it (0 = none yet); cleared by
	 * run_pass, each entry written by its taker, scanned by a sender that
	 * sends its share again.  One byte per 512 KiB of RAM. */
	_Atomic uint8_t *chunk_owner;
	/* Switchover (docs/design.md, "Switchover"): */
	uint64_t switchover_deadline; /* lm_now_ns: the guest stopped; 0 = running */
	uint64_t switchover_limit_ms; /* the downtime-limit that deadline was made of */
	_Atomic bool commit_started; /* set under the lock: cancel, timeout and the
				      * switchover deadline no longer apply */
	bool committed;          /* COMMIT written whole: the guest is the
				  * destination's (the control thread's alone) */
	bool outcome_ready;      /* OUTCOME received ... */
	bool outcome_committed;  /* ... and what it said */

	/* Pass hand-off (see source.c). */
	uint64_t *work;          /* LM_GPN entries of the current pass */
	size_t nwork;
	_Atomic size_t cursor;
	uint32_t pass_gen;       /* bumped by the control thread per pass */
	bool pass_final;
	unsigned pass_done;      /* channels finished with pass_gen */
	uint32_t iter_sent;      /* last pass whose ITER went (or is going) out */
	uint32_t acked_iteration; /* last pass the destination acknowledged */
	_Atomic bool devstate_sent; /* DEVSTATE_END is out: DEVSTATE_LOADED may come */
	bool devstate_loaded;    /* DEVSTATE_LOADED received */
	uint64_t final_pass_ms, verify_ms; /* switchover parts, for the statistics */
	bool result_ready;       /* RESULT received */
	bool result_ok;
	struct lm_h128 result_digest;

	/* Running guest: control, dirty tracking, convergence. */
	struct livemig_guest_ops guest;
	void *guest_opaque;
	bool live;               /* guest ops set: pre-copy with dirty tracking */
	bool guest_stopped;
	livemig_dirty_log_fn dirty_log;
	void *dirty_log_opaque;
	const struct lm_tracker_ops *tracker;
	void *tracker_ctx;
	uint64_t *dirty[LM_MAX_BLOCKS]; /* pages to send next, one bit each */
	int throttle_pct;
	bool measured;           /* a pre-copy sync set the next three: until
				  * then the statistics say "unknown" */
	uint64_t expected_downtime_ms;
	bool not_converged;      /* the last sync's decision: another pass */
	double dirty_pages_rate;
	uint64_t pending_pages;  /* found dirty by the last sync and not yet
				  * published as a pass (run_pass takes them) */
	uint64_t t_stop;         /* lm_now_ns when the guest stopped, 0 = running */
	uint64_t precopy_bytes;  /* wire bytes when the guest stopped */
	struct lm_iter_stat *iters;
	size_t niters, iters_cap;

	/* Rate limit shared by every sender: next free slot in ns, and the
	 * rate (max-bandwidth, bytes/s, 0 = none) the senders read per packet
	 * without the lock; lm_set_parameter_running stores both, then bumps
	 * rl_gen, which tells a sender that booked before to book again. */
	_Atomic uint64_t rl_next;
	_Atomic uint64_t max_bw;
	_Atomic uint32_t rl_gen;
	uint64_t start_bw; /* max-bandwidth at livemig_start: auto's link model keeps it */
	/* The link rate, measured by the control thread alone (see source.c,
	 * sample_link) and read by every channel's codec. */
	bool measure_link;       /* the codec uses link_rate and max-bandwidth does not fix it */
	struct lm_auto_link link;
	_Atomic uint64_t link_rate; /* bytes/s, 0 = not measured yet */
	_Atomic int64_t probe_left; /* link probe: raw bytes still to send (lm_auto_link) */
	double cpu_remote;       /* destination's CPU as it reported */
};

/* State only a destination has (dest.c). */
struct lm_dest {
	int listen_fd;
	bool prealloc;
	/* Receivers' barrier, under the session's lock. */
	unsigned bar_arrived;
	uint32_t bar_gen, bar_iter;
	bool bar_final;
	uint32_t synced_iteration; /* highest pass every receiver completed */
	bool final_synced;
	bool keep_listening;     /* under lock: RESULT OK is out, a failure keeps
				  * the listening socket for resolving connections */
	/* Channel recovery: the acceptor thread (dest.c), from READY until
	 * the receivers are joined. */
	pthread_t acc;
	bool acc_started;
	bool acc_stop;           /* under the lock */
	struct lm_gate gate;     /* accepts and vets connections (gate.c) */
	struct lm_msg early;     /* a message the main channel brought while the
				  * channels were still coming (PARAMS) */
	bool have_early;
	_Atomic uint64_t refused; /* connections dropped: a bad hello or TLS
				   * handshake, a stranger, another session, one
				   * over the gate's cap or still half open at the end */
	bool started_guest;      /* the device ops' start ran (control thread) */
};

struct livemig_session {
	enum livemig_role role;
	/* Fixed once livemig_start() runs, except the parameters the table
	 * marks changeable: lm_set_parameter_running writes those under the
	 * lock, and every thread but the caller's reads them under it (the
	 * senders read max-bandwidth as src.max_bw). */
	struct lm_params p;
	livemig_log_fn log;
	void *log_opaque;
	livemig_event_fn event;  /* livemig_set_event_cb (when it may change: there) */
	void *event_opaque;

	struct lm_block blocks[LM_MAX_BLOCKS];
	unsigned nblocks;
	uint64_t total_pages;

	struct lm_addr addr;
	struct lm_tls *tls;      /* credentials loaded by livemig_start, NULL = off */
	int main_fd;
	struct lm_tls_conn *main_tls; /* over main_fd, NULL = plaintext; set before
				       * main_fd is published (send_now reads both) */
	struct lm_tls_info tls_info; /* the main channel's handshake (protocol
				      * NULL = none); under lock */
	pthread_mutex_t main_tx; /* serialises writes on the main channel */
	struct lm_chan *ch;      /* nch entries, allocated at start, fd -1 until used */
	unsigned nch;
	uint8_t uuid[16];
	uint32_t methods;          /* 1 << LM_METHOD_* of each one packets may carry */
	lm_page_hash_fn page_hash; /* fastest XXH3 variant for this CPU */

	pthread_t ctl;
	bool ctl_started, waited;

	/* Liveness (liveness.c): the watchdog thread, and the main channel's
	 * silence. */
	pthread_t wd;
	bool wd_started;
	bool wd_stop;            /* under lock: the watchdog ends */
	uint64_t deadline;       /* source: lm_now_ns when timeout expires, 0 = none */
	_Atomic bool hb_armed;   /* main channel negotiated: heartbeats may go */
	_Atomic bool hb_stop;    /* this side sent its last word: no more heartbeats */
	_Atomic bool main_eof;   /* the main channel ended with the peer's FIN */
	_Atomic bool main_broken; /* ...or broke: a reset, silence, a failed write */
	uint64_t main_rx;        /* lm_now_ns of the last byte read on the main
				  * channel; its reader's alone */

	_Atomic int status;
	_Atomic bool quit;
	/* The error latch, pass and barrier state; and, while another thread
	 * may read them, the connections' fds (shutdown_all), total_pages and
	 * the parameters a destination adopts (the statistics). */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int err_code;            /* once quit is raised: read it with lm_err() */
	char err[512];           /* constant once err_code is set */
	bool peer_error;         /* err came from the other side */
	bool unknown;            /* the control thread ends in doubt (LM_OUTCOME_UNKNOWN) */
	uint32_t iteration;      /* source: passes started; destination: passes acknowledged */
	bool channels_joined;    /* every channel thread has ended */
	char zero_ran[16];       /* source: the zero-page engine the senders opened
				  * ("" before they did); under the lock */

	/* Times (lm_now_ns), 0 = not reached.  Written by the control thread,
	 * read by livemig_query() from any thread. */
	_Atomic uint64_t t_start, t_setup, t_end;
	double cpu_ctl;          /* control + return-path threads */
	int verify;              /* -1 unknown, 0 mismatch, 1 match */
	struct lm_h128 digest;

	/* Device state (livemig_set_device_state); dev_on: set. */
	struct livemig_device_ops dev;
	void *dev_opaque;
	bool dev_on;
	uint64_t dev_bytes, dev_ms; /* under lock: the statistics read them */
	/* The payload of the last message read on the main channel: a
	 * DEVSTATE's data points here until the next read.  Its one reader's
	 * (the source's return path, the destination's control thread). */
	uint8_t main_rx_payload[LM_MSG_MAX_PAYLOAD];

	/* Only the side's own half is used; the other stays zeroed. */
	struct lm_source src;
	struct lm_dest dst;
};

/* devstate.c (livemig_set_device_state), from the control thread.
 * Source, after RESULT OK: pulls the embedder's state, streams it, waits
 * for DEVSTATE_LOADED.  Destination, after RESULT OK: reads it into the
 * embedder and answers DEVSTATE_LOADED.  0, or the latched failure.
 * lm_devstate_start: the destination committed; runs the embedder's start
 * once (nothing without device ops). */
int lm_devstate_send(livemig_session *s);
int lm_devstate_receive(livemig_session *s);
void lm_devstate_start(livemig_session *s);

/* session.c */
/*
 * Sets a changeable parameter of a started session (livemig_set_parameter
 * after livemig_start, the control socket): under the lock, taking effect
 * as the parameter's readers next look (max-bandwidth: the next packet
 * booked; downtime-limit and auto-converge's: the next sync).  With
 * check_only nothing changes: the value is only checked.  0; -EAGAIN not
 * started; -EBUSY not changeable; -ENOENT unknown; -EINVAL bad value or
 * the other side's.  err gets the reason; s's error latch is untouched.
 * Any thread.
 */
int lm_set_parameter_running(livemig_session *s, const char *name, const char *value,
			     bool check_only, char *err, size_t errlen);
/* Stores status st and, when it changed, reports it to the event callback
 * (from the calling thread). */
void lm_set_status(livemig_session *s, enum livemig_status st);
/* Reports to the event callback that pass number pass (1 = the first, as
 * dirty-sync-count counts) has begun. */
void lm_event_pass(livemig_session *s, uint32_t pass);
void lm_log(livemig_session *s, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* First error wins: records it, raises quit, shuts every socket down so that
 * blocked threads return.  Returns code. */
int lm_fail(livemig_session *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* As lm_fail, for a broken connection: first waits up to half a second for
 * the peer's own reason (ERROR or CANCEL on the main channel), which then
 * wins.  When none came and the peer closed every connection, the failure
 * says so instead of naming this one. */
int lm_fail_io(livemig_session *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int lm_fail_peer(livemig_session *s, int code, const char *msg);
/* As lm_fail, except once the source has begun to commit (the outcome
 * is then the destination's, as for livemig_cancel): then it changes
 * nothing and returns 0. */
int lm_fail_before_commit(livemig_session *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool lm_quit(livemig_session *s);
/* Waits on s->cond (s->lock held) until a broadcast or until_ns (the
 * clock of lm_now_ns) has passed. */
void lm_cond_wait_until(livemig_session *s, uint64_t until_ns);
/* Once lm_quit() is true: the latched error code, or -ECANCELED while none
 * is latched yet (livemig_cancel raises quit before it latches).  Takes the
 * lock: another thread latches the code. */
int lm_err(livemig_session *s);
/* *slot = fd (s->main_fd or a channel's fd) under the lock: shutdown_all()
 * reads them from whichever thread fails or cancels. */
void lm_set_fd(livemig_session *s, int *slot, int fd);
/* Sends m on the main channel (serialised with other writers).  Returns 0
 * or -errno; the caller reports a failure. */
int lm_send_msg(livemig_session *s, const struct lm_msg *m);
/* A control message on a connection outside the session's main channel
 * (a resolving one, see switchover), with TLS when tls: written whole, or
 * read within timeout_s seconds.  0, or -errno (-ETIMEDOUT, -ECONNRESET;
 * -EPROTO with *why set for a malformed message). */
int lm_write_msg_fd(int fd, struct lm_tls_conn *tls, const struct lm_msg *m);
int lm_read_msg_fd(int fd, struct lm_tls_conn *tls, unsigned timeout_s, struct lm_msg *m,
		   const char **why);
/* The outcome is unknown (source: COMMIT went out, no OUTCOME came;
 * destination: RESULT OK went out, no decision came): the control thread's
 * result that lm_ctl_finish turns into LIVEMIG_STATUS_UNKNOWN. */
#define LM_OUTCOME_UNKNOWN (-EINPROGRESS)
/* Reads one control message and decodes its body into m; HEARTBEATs are
 * consumed here and never returned.  A bad message, the peer's ERROR or
 * CANCEL, and net-timeout without a byte on the main channel become the
 * session's failure (latched here) and its code is returned; else 0. */
int lm_recv_msg(livemig_session *s, struct lm_msg *m);
/* The same, but returns 1 when no message has begun within wait_ms (the
 * caller has something else to watch). */
int lm_recv_msg_wait(livemig_session *s, struct lm_msg *m, int wait_ms);
/* The main channel's TLS session is up (s->main_fd and s->main_tls set, the
 * handshake done): records what it agreed for the statistics and gives the
 * socket the short receive timeout read_main's slices need.  A no-op
 * without TLS.  The control thread, before the main channel is read. */
void lm_main_tls_up(livemig_session *s);
/* A write on the main channel failed during setup: when the peer refused
 * this side's TLS credentials, or its lack of TLS (its alert waits to be
 * read), fails the session saying so and returns -EACCES; else 0, nothing
 * latched.  May wait for one 100 ms slice. */
int lm_main_refused(livemig_session *s);
/* Sets up each channel for the session's role (a sender: the session's
 * codec and zero-page engine; a receiver: a decoder per wire method), then
 * starts thread_main(chan) for it.  Sets s->methods. */
int lm_start_channels(livemig_session *s, void *(*thread_main)(void *));
/* Joins every channel thread, then (destination) stops the acceptor. */
void lm_join_channels(livemig_session *s);
/* Channel recovery: fresh codec contexts for c's replacement connection
 * (zlib's stream, for one, lasts across packets), for c's thread only.
 * 0, or the session's failure (latched). */
int lm_chan_renew_codec(livemig_session *s, struct lm_chan *c);
/* Channel recovery: c's connection becomes fd (with its TLS session, or
 * NULL) and the old one is closed.  c's own thread only; the swap is under
 * the lock, since shutdown_all, peer_gone, sample_link and the acceptor
 * read c->fd from other threads. */
void lm_chan_replace_conn(livemig_session *s, struct lm_chan *c, int fd,
			  struct lm_tls_conn *tls);
/* For a main-channel failure's message, with channel-recovery on: that
 * it stays fatal. */
static inline const char *lm_main_fatal(const livemig_session *s)
{
	return s->p.channel_recovery ? " (fatal: channel-recovery replaces multifd channels, "
				       "not the main channel)"
				     : "";
}
/* The end of either control thread, r being its result: latches r unless
 * an error already is, stops and joins the channel threads (and the
 * source's return-path reader), then publishes t_end, cpu_ctl and the final
 * status.  Called last, from the control thread. */
void lm_ctl_finish(livemig_session *s, int r);
/* The image as this side sent or wrote it, once every channel has ended:
 * the digest (the sum of the page hashes) and the page counts into sum
 * (its iteration untouched).  Returns the pages that have no hash: never
 * sent, or never received - pass 1 carries every page, so 0 unless a
 * sender skipped one or a peer lied about its counts. */
uint64_t lm_image_sum(livemig_session *s, struct lm_msg_complete *sum);
/* A sender about to put bytes on the wire: books them on the session's
 * shared clock at max-bandwidth and sleeps until their slot (0: at once).
 * Returns early on quit, and books again after a max-bandwidth change.
 * Any sender thread; per packet: two atomic loads when unlimited. */
void lm_ratelimit(livemig_session *s, uint64_t bytes);

/* liveness.c: heartbeats, silence, the deadline (see there). */
/* The heartbeat period for net-timeout: a quarter of it, at most 1 s. */
uint64_t lm_heartbeat_ns(unsigned net_timeout_s);
/* The phase a message names: "setup", "first pass", "pass K",
 * "switchover" (or "end"), from a session's status and iteration (the
 * source's passes started, the destination's passes acknowledged).  buf
 * holds "pass K"; the result is buf or a constant. */
const char *lm_phase_name(enum livemig_role role, enum livemig_status status,
			  uint32_t iteration, char *buf, size_t len);
/* lm_phase_name for s now (takes s->lock). */
const char *lm_phase(livemig_session *s, char *buf, size_t len);
/* Fails s with -ETIMEDOUT: "main channel" (channel 0) or "channel N": peer
 * silent for net-timeout s in phase P.  Returns -ETIMEDOUT. */
int lm_fail_silent(livemig_session *s, unsigned channel);
/* The main channel is negotiated (the source sent PARAMS, the
 * destination read it): the watchdog starts its heartbeats.  s->main_fd
 * must be set before. */
void lm_heartbeat_arm(livemig_session *s);
/* Starts the watchdog (from livemig_start, before the control thread):
 * 0 or -errno.  lm_watchdog_stop ends and joins it; a no-op when not
 * started. */
int lm_watchdog_start(livemig_session *s);
void lm_watchdog_stop(livemig_session *s);

/* precopy.c: dirty tracking and convergence for a running guest. */
int lm_precopy_start(livemig_session *s);
/* Runs dirty passes (with pass()) until the expected downtime fits. */
int lm_precopy_converge(livemig_session *s,
			int (*pass)(livemig_session *s, uint64_t *work, size_t n, bool final));
/* Stops the guest, takes the last dirty pages: *work (owned by the caller
 * from now on) and *n. */
int lm_precopy_stop(livemig_session *s, uint64_t **work, size_t *n);
void lm_precopy_end(livemig_session *s);
int lm_iter_record(livemig_session *s, const struct lm_iter_stat *it);

/* source.c / dest.c: control thread bodies. */
void *lm_source_main(void *arg);
void *lm_dest_main(void *arg);
/* dest.c: ends and joins the acceptor (a no-op when none runs). */
void lm_acceptor_stop(livemig_session *s);

#endif
