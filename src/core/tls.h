/* SPDX-License-Identifier: MIT */
/*
 * TLS on every connection of a session, with GnuTLS (as QEMU's migration
 * uses it), credentials in QEMU's directory conventions:
 *   psk:DIR   DIR/keys.psk, lines "identity:hexkey" (QEMU's tls-creds-psk)
 *   x509:DIR  DIR/ca-cert.pem, server-cert.pem, server-key.pem,
 *             client-cert.pem, client-key.pem (QEMU's tls-creds-x509)
 * The destination is the TLS server, the source the client.  See
 * docs/design.md, "TLS".
 */
#ifndef LM_TLS_H
#define LM_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* One side's credentials, loaded once per session; read-only after
 * lm_tls_open, so any thread may start sessions with it. */
struct lm_tls;
/* A TLS session over one connection: one thread may send while another
 * receives (GnuTLS allows that), never two of either. */
struct lm_tls_conn;

struct lm_tls_config {
	const char *creds;         /* "psk:DIR" or "x509:DIR" */
	bool server;               /* the destination */
	const char *psk_identity;  /* client: the keys.psk line to use; NULL = "qemu" */
	const char *hostname;      /* x509 client: the name the server's certificate
				    * must carry (the URI's host, or tls-hostname) */
	const char *authz;         /* server: a file of allowed client identities (x509
				    * distinguished names or PSK identities), one per
				    * line, compared whole (see read_lines in tls.c);
				    * NULL = any authenticated client */
};

/*
 * Loads the credentials cfg names.  0 and *t, or -errno with err set:
 * -EINVAL a malformed spec or file, an authz file that lists nobody, or
 * an x509 client without a hostname (it would take any certificate the CA
 * signed, for any host: QEMU also refuses that), -ENOENT a file missing
 * (x509: the client's CA, the server's certificate or key; psk: keys.psk
 * or, for a client, the identity's line), -EISDIR a directory where a file
 * of lines (keys.psk, authz) belongs.  lm_tls_close frees *t (NULL:
 * nothing).
 */
int lm_tls_open(const struct lm_tls_config *cfg, struct lm_tls **t, char *err, size_t errlen);
void lm_tls_close(struct lm_tls *t);

/*
 * Runs the handshake on the connected socket fd (blocking), within
 * timeout_s seconds, then (server) checks tls-authz.  0 and *c (which
 * owns nothing of fd: the caller still closes it, after lm_tls_end), or
 * -errno with err set: -ETIMEDOUT; -ECONNRESET the peer closed the
 * connection before or during the handshake (a port probe); -EPROTO a peer
 * that does not speak TLS or fails it; -EACCES the peer's identity refused
 * (wrong key, unknown identity, bad certificate or name, not in tls-authz)
 * or the peer refused ours (its alert).  A refusal sends the peer the
 * matching TLS alert first, so that it can say why too.
 */
int lm_tls_start(const struct lm_tls *t, int fd, unsigned timeout_s, struct lm_tls_conn **c,
		 char *err, size_t errlen);
/* Frees c (NULL: nothing); sends no close_notify (the session's own
 * messages say when a migration ends). */
void lm_tls_end(struct lm_tls_conn *c);

/* Full-length record I/O with lm_write_full/lm_read_full's returns
 * (transport.c): 0; -ECONNRESET at the end of the stream (*eof when it
 * ended before the first byte); -ETIMEDOUT when the socket's timeout
 * passed; -EACCES the peer's fatal alert (lm_tls_alert names it); -EPROTO
 * a bad record; -errno.  lm_tls_writev fills whole records (16 KiB): the
 * pieces' small ends are gathered into one record, the rest is sealed
 * straight from the caller's memory, without a copy. */
int lm_tls_write(struct lm_tls_conn *c, const void *buf, size_t len);
int lm_tls_writev(struct lm_tls_conn *c, const struct iovec *iov, int iovcnt);
int lm_tls_read(struct lm_tls_conn *c, void *buf, size_t len, bool *eof);
int lm_tls_readv(struct lm_tls_conn *c, const struct iovec *iov, int iovcnt);
/*
 * One record's worth at most, as recv(): the bytes read (> 0), 0 at the
 * end of the stream (the peer's FIN: this library sends no close_notify),
 * -EAGAIN when the socket's receive timeout (SO_RCVTIMEO) passed first -
 * a record that came in part stays with GnuTLS for the next call -, or
 * lm_tls_read's errors.
 */
ssize_t lm_tls_recv(struct lm_tls_conn *c, void *buf, size_t len);
/* Bytes already decrypted and waiting (poll() on the socket does not see
 * them). */
size_t lm_tls_pending(struct lm_tls_conn *c);
/* The alert the peer sent last (after an -EACCES), e.g. "Certificate is
 * required"; "none". */
const char *lm_tls_alert(struct lm_tls_conn *c);

/* What a handshake agreed, for the statistics: GnuTLS's names (static
 * strings), and where records are sealed. */
struct lm_tls_info {
	const char *protocol;  /* "TLS1.3" */
	const char *cipher;    /* "AES-256-GCM" */
	const char *kx;        /* key exchange: "ECDHE-PSK", "ECDHE-RSA", ... */
	const char *records;   /* "kernel" (kTLS) or "userspace" */
};
void lm_tls_get_info(struct lm_tls_conn *c, struct lm_tls_info *info);

/* What this build and this machine offer, for livemig info. */
struct lm_tls_support {
	const char *version;  /* GnuTLS's */
	bool kernel_tls;      /* the kernel's tls module is loaded (TCP_ULP "tls") */
	char records[320];    /* where records are sealed, and why */
};
void lm_tls_support(struct lm_tls_support *out);

#endif
