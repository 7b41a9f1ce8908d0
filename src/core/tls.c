/* SPDX-License-Identifier: MIT */
/* TLS with GnuTLS: credentials, handshake, record I/O (see tls.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>

#include <gnutls/gnutls.h>
#include <gnutls/socket.h>
#include <gnutls/x509.h>

#include "core/tls.h"
#include "util/util.h"

#define MAX_AUTHZ 1024

struct lm_tls {
	bool server;
	gnutls_credentials_type_t kind; /* GNUTLS_CRD_PSK or GNUTLS_CRD_CERTIFICATE */
	gnutls_psk_server_credentials_t psk_server;
	gnutls_psk_client_credentials_t psk_client;
	gnutls_certificate_credentials_t x509;
	bool verify_peer;        /* server: a CA for clients is there, a certificate required */
	char hostname[256];      /* x509 client */
	char *authz[MAX_AUTHZ];  /* server: allowed identities */
	size_t nauthz;
	char *keys[MAX_AUTHZ];   /* PSK server: keys.psk's "identity:hexkey" lines */
	size_t nkeys;
	bool authz_set;
	gnutls_priority_t prio;
};

struct lm_tls_conn {
	gnutls_session_t s;
	const struct lm_tls *t;
	char psk_identity[128];  /* PSK server: the identity the client named */
	bool psk_unknown;        /* ... which keys.psk lacks */
};

static int __attribute__((format(printf, 4, 5)))
say(char *err, size_t len, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return code;
}

static void free_lines(char **lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
}

/* Reads every line of path into lines[0..*n), without its end (CR, LF),
 * but for empty lines and those whose first character is '#'.  0, -EISDIR
 * (fopen and getline would take a directory for an empty file), -E2BIG
 * more than max lines, -ENOMEM, or fopen's -errno, with *n = 0. */
static int read_lines(const char *path, char **lines, size_t max, size_t *n)
{
	*n = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	struct stat st;
	if (!fstat(fileno(f), &st) && S_ISDIR(st.st_mode)) {
		fclose(f);
		return -EISDIR;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int r = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (!len || line[0] == '#')
			continue;
		if (*n == max || !(lines[*n] = strdup(line))) {
			r = *n == max ? -E2BIG : -ENOMEM;
			break;
		}
		(*n)++;
	}
	free(line);
	fclose(f);
	if (r) { /* nothing half read stays */
		free_lines(lines, *n);
		*n = 0;
	}
	return r;
}

/* The client's key: the hex after "identity:" on its line of keys.psk. */
static int psk_client(struct lm_tls *t, const char *file, const char *identity, char *err,
		      size_t errlen)
{
	char *lines[MAX_AUTHZ];
	size_t n;
	int r = read_lines(file, lines, MAX_AUTHZ, &n);
	if (r)
		return say(err, errlen, r, "tls-creds: cannot read %s: %s", file, strerror(-r));
	size_t idlen = strlen(identity);
	const char *hex = NULL;
	for (size_t i = 0; i < n && !hex; i++)
		if (!strncmp(lines[i], identity, idlen) && lines[i][idlen] == ':')
			hex = lines[i] + idlen + 1;
	r = -ENOENT;
	if (hex && (r = gnutls_psk_allocate_client_credentials(&t->psk_client)) == 0) {
		gnutls_datum_t key = {(unsigned char *)hex, (unsigned)strlen(hex)};
		r = gnutls_psk_set_client_credentials(t->psk_client, identity, &key,
						      GNUTLS_PSK_KEY_HEX);
		if (r)
			snprintf(err, errlen, "tls-creds: the key of '%s' in %s: %s", identity, file,
				 gnutls_strerror(r));
		r = r ? -EINVAL : 0;
	} else if (!hex) {
		snprintf(err, errlen, "tls-creds: no identity '%s' in %s", identity, file);
	}
	free_lines(lines, n);
	return r;
}

/* keys.psk's line for identity id (not NUL-terminated), or NULL. */
static const char *psk_line(const struct lm_tls *t, const char *id, size_t len)
{
	for (size_t i = 0; i < t->nkeys; i++)
		if (!strncmp(t->keys[i], id, len) && t->keys[i][len] == ':')
			return t->keys[i];
	return NULL;
}

/* GnuTLS asks the server for the key of the identity a client named.
 * Our lookup, not gnutls_psk_set_server_credentials_file's, so that an
 * unknown identity is told from a wrong key (GnuTLS gives an unknown one
 * a random key, and both then fail alike). */
static int psk_server_key(gnutls_session_t s, const gnutls_datum_t *id, gnutls_datum_t *key)
{
	struct lm_tls_conn *c = gnutls_session_get_ptr(s);
	snprintf(c->psk_identity, sizeof(c->psk_identity), "%.*s", (int)id->size, id->data);
	const char *line = psk_line(c->t, (const char *)id->data, id->size);
	if (!line) {
		c->psk_unknown = true;
		return -1;
	}
	gnutls_datum_t hex = {(unsigned char *)line + id->size + 1,
			      (unsigned)strlen(line + id->size + 1)};
	return gnutls_hex_decode2(&hex, key) ? -1 : 0;
}

/* The server's keys: every line of keys.psk, checked now. */
static int psk_server(struct lm_tls *t, const char *file, char *err, size_t errlen)
{
	int r = read_lines(file, t->keys, MAX_AUTHZ, &t->nkeys);
	if (r)
		return say(err, errlen, r, "tls-creds: cannot read %s: %s", file, strerror(-r));
	for (size_t i = 0; i < t->nkeys; i++) {
		const char *colon = strchr(t->keys[i], ':');
		gnutls_datum_t hex = {(unsigned char *)colon + 1, colon ? (unsigned)strlen(colon + 1) : 0},
			       key = {0};
		if (!colon || colon == t->keys[i] || gnutls_hex_decode2(&hex, &key) || !key.size)
			return say(err, errlen, -EINVAL, "tls-creds: %s line %zu: expected "
				   "identity:hexkey", file, i + 1);
		gnutls_free(key.data);
	}
	if (gnutls_psk_allocate_server_credentials(&t->psk_server))
		return say(err, errlen, -ENOMEM, "out of memory");
	gnutls_psk_set_server_credentials_function2(t->psk_server, psk_server_key);
	return 0;
}

static bool exists(const char *dir, const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s/%s", dir, name);
	return access(path, R_OK) == 0;
}

static int x509_load(struct lm_tls *t, const char *dir, char *err, size_t errlen)
{
	char ca[4096], cert[4096], key[4096];
	bool have_ca = exists(dir, "ca-cert.pem", ca, sizeof(ca));
	const char *who = t->server ? "server" : "client";
	char certname[32], keyname[32];
	snprintf(certname, sizeof(certname), "%s-cert.pem", who);
	snprintf(keyname, sizeof(keyname), "%s-key.pem", who);
	bool have_cert = exists(dir, certname, cert, sizeof(cert));
	bool have_key = exists(dir, keyname, key, sizeof(key));
	if (!t->server && !have_ca)
		return say(err, errlen, -ENOENT, "tls-creds: %s is missing (the CA that signed the "
			   "destination's certificate)", ca);
	if (t->server && (!have_cert || !have_key))
		return say(err, errlen, -ENOENT, "tls-creds: %s or %s is missing", cert, key);
	int r = gnutls_certificate_allocate_credentials(&t->x509);
	if (!r && have_ca && gnutls_certificate_set_x509_trust_file(t->x509, ca,
								    GNUTLS_X509_FMT_PEM) < 0)
		return say(err, errlen, -EINVAL, "tls-creds: cannot load %s", ca);
	if (!r && have_cert && have_key)
		r = gnutls_certificate_set_x509_key_file(t->x509, cert, key, GNUTLS_X509_FMT_PEM);
	if (r < 0)
		return say(err, errlen, -EINVAL, "tls-creds: cannot load %s: %s", cert,
			   gnutls_strerror(r));
	/* As QEMU's verify-peer (on by default): a server with a CA requires
	 * a client certificate signed by it. */
	t->verify_peer = t->server && have_ca;
	return 0;
}

/* NORMAL's ciphers, AES-128-GCM first. */
#define AES_GCM_FIRST                                                                        \
	"NORMAL:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-CCM:"        \
	"+AES-256-CCM:+AES-256-CBC:+AES-128-CBC"

/*
 * Whether GnuTLS ranks AES-GCM before ChaCha20, which it does when the CPU
 * accelerates AES-GCM (AES-NI and carry-less multiply).  Then AES-128-GCM
 * goes first: with NORMAL's order a PSK session (its key is bound to
 * SHA-256, which the AES-256-GCM suite of TLS 1.3 cannot use) gets
 * ChaCha20-Poly1305 instead - on this project's test machine 0.5 GB/s
 * against AES-128-GCM's 6 GB/s (gnutls-cli --benchmark-ciphers).
 */
static bool aes_gcm_first(void)
{
	gnutls_priority_t p;
	const unsigned *list;
	if (gnutls_priority_init(&p, "NORMAL", NULL))
		return false;
	int n = gnutls_priority_cipher_list(p, &list);
	int aes = n, chacha = n;
	for (int i = 0; i < n; i++) {
		if (list[i] == GNUTLS_CIPHER_AES_256_GCM || list[i] == GNUTLS_CIPHER_AES_128_GCM)
			aes = aes < i ? aes : i;
		if (list[i] == GNUTLS_CIPHER_CHACHA20_POLY1305)
			chacha = i;
	}
	gnutls_priority_deinit(p);
	return aes < chacha;
}

int lm_tls_open(const struct lm_tls_config *cfg, struct lm_tls **out, char *err, size_t errlen)
{
	struct lm_tls *t = calloc(1, sizeof(*t));
	if (!t)
		return say(err, errlen, -ENOMEM, "out of memory");
	t->server = cfg->server;
	const char *spec = cfg->creds, *dir = strchr(spec, ':');
	int r;
	if (dir && !strncmp(spec, "psk:", 4) && dir[1]) {
		char file[4096];
		t->kind = GNUTLS_CRD_PSK;
		if (!exists(dir + 1, "keys.psk", file, sizeof(file)))
			r = say(err, errlen, -ENOENT, "tls-creds: %s: %s", file, strerror(errno));
		else if (t->server)
			r = psk_server(t, file, err, errlen);
		else
			r = psk_client(t, file, cfg->psk_identity ? cfg->psk_identity : "qemu", err,
				       errlen);
	} else if (dir && !strncmp(spec, "x509:", 5) && dir[1] && !cfg->server &&
		   (!cfg->hostname || !*cfg->hostname)) {
		r = say(err, errlen, -EINVAL, "tls-creds '%s': no host name to check the server's "
			"certificate against (tls-hostname)", spec);
	} else if (dir && !strncmp(spec, "x509:", 5) && dir[1]) {
		t->kind = GNUTLS_CRD_CERTIFICATE;
		r = x509_load(t, dir + 1, err, errlen);
	} else {
		r = say(err, errlen, -EINVAL, "tls-creds '%s': expected psk:DIR or x509:DIR", spec);
	}
	if (!r && cfg->hostname)
		snprintf(t->hostname, sizeof(t->hostname), "%s", cfg->hostname);
	if (!r && cfg->server && cfg->authz) {
		t->authz_set = true;
		r = read_lines(cfg->authz, t->authz, MAX_AUTHZ, &t->nauthz);
		if (r == -EISDIR)
			say(err, errlen, r, "tls-authz %s: a directory", cfg->authz);
		else if (r)
			say(err, errlen, r, "tls-authz: cannot read %s: %s", cfg->authz, strerror(-r));
		else if (!t->nauthz) /* it would refuse every client, later */
			r = say(err, errlen, -EINVAL, "tls-authz %s lists no identity: nobody could "
				"connect", cfg->authz);
	}
	/* As QEMU: the defaults, and for PSK the key exchanges it needs;
	 * AES-128-GCM first where the CPU seals AES-GCM fastest. */
	char prio[256];
	snprintf(prio, sizeof(prio), "%s%s", aes_gcm_first() ? AES_GCM_FIRST : "NORMAL",
		 t->kind == GNUTLS_CRD_PSK ? ":+ECDHE-PSK:+DHE-PSK:+PSK" : "");
	if (!r && gnutls_priority_init(&t->prio, prio, NULL))
		r = say(err, errlen, -EINVAL, "TLS priority '%s' refused", prio);
	if (r) {
		lm_tls_close(t);
		return r;
	}
	*out = t;
	return 0;
}

void lm_tls_close(struct lm_tls *t)
{
	if (!t)
		return;
	if (t->psk_server)
		gnutls_psk_free_server_credentials(t->psk_server);
	if (t->psk_client)
		gnutls_psk_free_client_credentials(t->psk_client);
	if (t->x509)
		gnutls_certificate_free_credentials(t->x509);
	if (t->prio)
		gnutls_priority_deinit(t->prio);
	free_lines(t->authz, t->nauthz);
	free_lines(t->keys, t->nkeys);
	free(t);
}

/* The server's check of tls-authz: the client's certificate DN (x509) or
 * PSK identity must be listed. */
static int authorize(const struct lm_tls *t, gnutls_session_t s, char *err, size_t errlen)
{
	char who[1024] = "";
	if (t->kind == GNUTLS_CRD_PSK) {
		gnutls_datum_t name;
		if (!gnutls_psk_server_get_username2(s, &name))
			snprintf(who, sizeof(who), "%.*s", (int)name.size, name.data);
	} else {
		unsigned n = 0;
		const gnutls_datum_t *chain = gnutls_certificate_get_peers(s, &n);
		gnutls_x509_crt_t crt;
		gnutls_datum_t dn;
		if (n && !gnutls_x509_crt_init(&crt)) {
			if (!gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) &&
			    !gnutls_x509_crt_get_dn3(crt, &dn, 0)) {
				snprintf(who, sizeof(who), "%.*s", (int)dn.size, dn.data);
				gnutls_free(dn.data);
			}
			gnutls_x509_crt_deinit(crt);
		}
	}
	for (size_t i = 0; i < t->nauthz; i++)
		if (*who && !strcmp(t->authz[i], who))
			return 0;
	return say(err, errlen, -EACCES, "TLS peer '%s' is not in tls-authz", who);
}

static bool is_address(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* The other side, as this library uses TLS. */
static const char *peer(const struct lm_tls *t)
{
	return t->server ? "source" : "destination";
}

/* What the server's alert means for a PSK client. */
static const char *hint(const struct lm_tls *t, struct lm_tls_conn *c)
{
	if (t->server || t->kind != GNUTLS_CRD_PSK)
		return "";
	switch (gnutls_alert_get(c->s)) {
	case GNUTLS_A_UNKNOWN_PSK_IDENTITY:
		return ": its keys.psk lacks our tls-psk-identity";
	case GNUTLS_A_DECRYPT_ERROR:
		return ": its keys.psk has another key for our tls-psk-identity";
	default:
		return "";
	}
}

int lm_tls_start(const struct lm_tls *t, int fd, unsigned timeout_s, struct lm_tls_conn **out,
		 char *err, size_t errlen)
{
	struct lm_tls_conn *c = calloc(1, sizeof(*c));
	/* No SIGPIPE on a peer that is gone (a write fails with EPIPE, as
	 * lm_write_full's); no session tickets: nothing resumes, and a
	 * ticket would be a record a multifd connection's sender never
	 * reads. */
	unsigned flags = (t->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_SIGNAL |
			 GNUTLS_NO_TICKETS;
	if (!c || gnutls_init(&c->s, flags)) {
		free(c);
		return say(err, errlen, -ENOMEM, "out of memory for a TLS session");
	}
	gnutls_session_t s = c->s;
	c->t = t;
	gnutls_session_set_ptr(s, c);
	gnutls_priority_set(s, t->prio);
	if (t->kind == GNUTLS_CRD_PSK)
		gnutls_credentials_set(s, GNUTLS_CRD_PSK,
				       t->server ? (void *)t->psk_server : (void *)t->psk_client);
	else
		gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->x509);
	if (t->kind == GNUTLS_CRD_CERTIFICATE && !t->server) {
		if (*t->hostname && !is_address(t->hostname)) /* SNI carries names only */
			gnutls_server_name_set(s, GNUTLS_NAME_DNS, t->hostname, strlen(t->hostname));
		gnutls_session_set_verify_cert(s, t->hostname, 0); /* never empty (lm_tls_open) */
	} else if (t->verify_peer) {
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
		gnutls_session_set_verify_cert(s, NULL, 0);
	}
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, timeout_s * 1000);
	int r;
	do
		r = gnutls_handshake(s);
	while (r < 0 && !gnutls_error_is_fatal(r));
	/* Why, and the alert that tells the peer (-1: none, 0: GnuTLS's own
	 * for r); without an alert a refused client only sees its
	 * connection end.  Sent best effort: the socket's timeout bounds it. */
	int code = 0, alert = 0;
	if (r == GNUTLS_E_TIMEDOUT) {
		code = say(err, errlen, -ETIMEDOUT, "TLS handshake timed out");
		alert = -1;
	} else if (r == GNUTLS_E_PREMATURE_TERMINATION ||
		   (r == GNUTLS_E_PULL_ERROR && errno == ECONNRESET)) {
		code = say(err, errlen, -ECONNRESET, "the %s closed the connection in the TLS "
			   "handshake (does it use TLS, with these credentials?  Or it refused "
			   "this connection: see its log)", peer(t));
		alert = -1;
	} else if (r < 0 && c->psk_unknown) {
		code = say(err, errlen, -EACCES, "TLS: unknown PSK identity '%s' (not in keys.psk)",
			   c->psk_identity);
		alert = GNUTLS_A_UNKNOWN_PSK_IDENTITY;
	} else if (r == GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER && *c->psk_identity) {
		/* The client's proof of the key (its binder) does not verify. */
		code = say(err, errlen, -EACCES, "TLS: the key of PSK identity '%s' differs from "
			   "keys.psk's", c->psk_identity);
		alert = GNUTLS_A_DECRYPT_ERROR; /* RFC 8446, 4.2.11 */
	} else if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		gnutls_datum_t why = {0};
		gnutls_certificate_verification_status_print(
			gnutls_session_get_verify_cert_status(s), gnutls_certificate_type_get(s),
			&why, 0);
		int n = why.data ? (int)strlen((const char *)why.data) : 0;
		while (n && why.data[n - 1] == ' ')
			n--;
		code = say(err, errlen, -EACCES, "TLS: the %s's certificate is refused: %.*s",
			   peer(t), n, why.data ? (const char *)why.data : "");
		gnutls_free(why.data);
	} else if (r == GNUTLS_E_DECRYPTION_FAILED || r == GNUTLS_E_INSUFFICIENT_CREDENTIALS ||
		   r == GNUTLS_E_NO_CERTIFICATE_FOUND || r == GNUTLS_E_CERTIFICATE_REQUIRED ||
		   r == GNUTLS_E_USER_ERROR || r == GNUTLS_E_KEYFILE_ERROR) {
		code = say(err, errlen, -EACCES, "TLS: the %s's identity is refused (%s)", peer(t),
			   gnutls_strerror(r));
	} else if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		code = say(err, errlen, -EACCES, "TLS: the %s refused %s (alert: %s)%s", peer(t),
			   t->server ? "us" : "our credentials", lm_tls_alert(c), hint(t, c));
		alert = -1;
	} else if (t->server && (r == GNUTLS_E_UNEXPECTED_PACKET ||
				 r == GNUTLS_E_UNSUPPORTED_VERSION_PACKET ||
				 r == GNUTLS_E_UNEXPECTED_PACKET_LENGTH)) {
		code = say(err, errlen, -EPROTO, "the %s does not use TLS (%s), and tls-creds is "
			   "set here", peer(t), gnutls_strerror(r));
	} else if (r < 0) {
		code = say(err, errlen, -EPROTO, "TLS handshake failed (%s): the %s does not use "
			   "TLS, or not with the same credentials", gnutls_strerror(r), peer(t));
	} else if (t->server && t->authz_set) {
		code = authorize(t, s, err, errlen);
		alert = code ? GNUTLS_A_ACCESS_DENIED : -1;
	}
	if (code && alert > 0)
		gnutls_alert_send(s, GNUTLS_AL_FATAL, (gnutls_alert_description_t)alert);
	else if (code && !alert)
		gnutls_alert_send_appropriate(s, r);
	if (code) {
		lm_tls_end(c);
		return code;
	}
	*out = c;
	return 0;
}

void lm_tls_end(struct lm_tls_conn *c)
{
	if (!c)
		return;
	gnutls_deinit(c->s);
	free(c);
}

static int io_error(ssize_t r)
{
	switch (r) {
	case GNUTLS_E_AGAIN:
		return -ETIMEDOUT; /* SO_RCVTIMEO / SO_SNDTIMEO passed */
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PUSH_ERROR:
	case GNUTLS_E_PULL_ERROR:
		return errno ? -errno : -ECONNRESET;
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
		return -EACCES;
	default:
		return -EPROTO;
	}
}

int lm_tls_write(struct lm_tls_conn *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		errno = 0;
		ssize_t n = gnutls_record_send(c->s, p, len);
		if (n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n < 0)
			return io_error(n);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends the records gathered since the cork. */
static int uncork(struct lm_tls_conn *c)
{
	int r;
	errno = 0;
	while ((r = gnutls_record_uncork(c->s, GNUTLS_RECORD_WAIT)) == GNUTLS_E_INTERRUPTED)
		;
	return r < 0 ? io_error(r) : 0;
}

int lm_tls_writev(struct lm_tls_conn *c, const struct iovec *iov, int iovcnt)
{
	/*
	 * Every record but the last is full (a packet's header alone would
	 * be a record of its own): bytes up to a record's end are gathered
	 * while corked (GnuTLS copies them), whole records in between go
	 * straight from the caller's memory (sealed into the send buffer, no
	 * copy).  A raw packet of 128 adjacent pages: 33 records, 32 KiB of
	 * them copied.
	 */
	const size_t rec = gnutls_record_get_max_size(c->s);
	size_t corked = 0; /* bytes in the record being gathered */
	int r = 0;
	for (int i = 0; i < iovcnt && !r; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		while (len && !r) {
			size_t k;
			if (corked || len < rec) {
				if (!corked)
					gnutls_record_cork(c->s);
				k = len < rec - corked ? len : rec - corked;
				r = lm_tls_write(c, p, k); /* only copies, while corked */
				corked += k;
				if (!r && corked == rec) {
					r = uncork(c);
					corked = 0;
				}
			} else {
				k = len - len % rec;
				r = lm_tls_write(c, p, k);
			}
			p += k;
			len -= k;
		}
	}
	if (corked)
		r = r ? (gnutls_record_uncork(c->s, 0), r) : uncork(c);
	return r;
}

int lm_tls_read(struct lm_tls_conn *c, void *buf, size_t len, bool *eof)
{
	uint8_t *p = buf;
	size_t got = 0;
	if (eof)
		*eof = false;
	while (got < len) {
		errno = 0;
		ssize_t n = gnutls_record_recv(c->s, p + got, len - got);
		if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_REHANDSHAKE)
			continue;
		if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) {
			if (eof)
				*eof = !got;
			return -ECONNRESET;
		}
		if (n < 0)
			return io_error(n);
		got += (size_t)n;
	}
	return 0;
}

int lm_tls_readv(struct lm_tls_conn *c, const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++) {
		int r = lm_tls_read(c, iov[i].iov_base, iov[i].iov_len, NULL);
		if (r)
			return r;
	}
	return 0;
}

ssize_t lm_tls_recv(struct lm_tls_conn *c, void *buf, size_t len)
{
	for (;;) {
		errno = 0;
		ssize_t n = gnutls_record_recv(c->s, buf, len);
		if (n > 0)
			return n;
		if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION)
			return 0;
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return -EAGAIN;
		if (n != GNUTLS_E_REHANDSHAKE)
			return io_error(n);
	}
}

size_t lm_tls_pending(struct lm_tls_conn *c)
{
	return gnutls_record_check_pending(c->s);
}

const char *lm_tls_alert(struct lm_tls_conn *c)
{
	const char *name = gnutls_alert_get_name(gnutls_alert_get(c->s));
	return name ? name : "none";
}

void lm_tls_get_info(struct lm_tls_conn *c, struct lm_tls_info *info)
{
	gnutls_session_t s = c->s;
	info->protocol = gnutls_protocol_get_name(gnutls_protocol_get_version(s));
	info->cipher = gnutls_cipher_get_name(gnutls_cipher_get(s));
	info->kx = gnutls_kx_get_name(gnutls_kx_get(s));
	/* GnuTLS hands records to the kernel only when its configuration
	 * enables ktls and the kernel has the tls module. */
	info->records = gnutls_transport_is_ktls_enabled(s) ? "kernel" : "userspace";
}

void lm_tls_support(struct lm_tls_support *out)
{
	out->version = gnutls_check_version(NULL);
	/* The kernel lists the upper-layer protocols it has: "tls" once its
	 * module is loaded. */
	out->kernel_tls = lm_file_has_word("/proc/sys/net/ipv4/tcp_available_ulp", "tls");
	/* GnuTLS 3.7 hands records to the kernel only when it was built with
	 * ktls (Debian's is) and its system configuration says ktls = true;
	 * each session's statistics say what it did. */
	snprintf(out->records, sizeof(out->records), "%s",
		 out->kernel_tls ? "in the kernel when GnuTLS's system configuration has "
				   "ktls = true ([global]), else in userspace"
				 : "in userspace: the kernel's tls module is not loaded (no \"tls\" in "
				   "/proc/sys/net/ipv4/tcp_available_ulp), so no kTLS");
}
