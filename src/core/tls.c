/* SPDX-License-Identifier: MIT */
/* TLS with GnuTLS: credentials, handshake, record I/O (see tls.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "core/tls.h"

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
	bool authz_set;
	gnutls_priority_t prio;
};

struct lm_tls_conn {
	gnutls_session_t s;
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

/* Reads every line of path (without its end) into lines[0..*n). */
static int read_lines(const char *path, char **lines, size_t max, size_t *n)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int r = 0;
	*n = 0;
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
	return r;
}

static void free_lines(char **lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
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
			r = gnutls_psk_allocate_server_credentials(&t->psk_server) ||
					    gnutls_psk_set_server_credentials_file(t->psk_server, file)
				    ? say(err, errlen, -EINVAL, "tls-creds: cannot load %s", file)
				    : 0;
		else
			r = psk_client(t, file, cfg->psk_identity ? cfg->psk_identity : "qemu", err,
				       errlen);
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
		if (r)
			say(err, errlen, r, "tls-authz: cannot read %s: %s", cfg->authz, strerror(-r));
	}
	/* As QEMU: the defaults, and for PSK the key exchanges it needs. */
	const char *prio = t->kind == GNUTLS_CRD_PSK ? "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK" : "NORMAL";
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

int lm_tls_start(const struct lm_tls *t, int fd, unsigned timeout_s, struct lm_tls_conn **out,
		 char *err, size_t errlen)
{
	struct lm_tls_conn *c = calloc(1, sizeof(*c));
	if (!c || gnutls_init(&c->s, t->server ? GNUTLS_SERVER : GNUTLS_CLIENT)) {
		free(c);
		return say(err, errlen, -ENOMEM, "out of memory for a TLS session");
	}
	gnutls_session_t s = c->s;
	gnutls_priority_set(s, t->prio);
	if (t->kind == GNUTLS_CRD_PSK)
		gnutls_credentials_set(s, GNUTLS_CRD_PSK,
				       t->server ? (void *)t->psk_server : (void *)t->psk_client);
	else
		gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->x509);
	if (t->kind == GNUTLS_CRD_CERTIFICATE && !t->server) {
		if (*t->hostname)
			gnutls_server_name_set(s, GNUTLS_NAME_DNS, t->hostname, strlen(t->hostname));
		gnutls_session_set_verify_cert(s, *t->hostname ? t->hostname : NULL, 0);
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
	int code = 0;
	if (r == GNUTLS_E_TIMEDOUT) {
		code = say(err, errlen, -ETIMEDOUT, "TLS handshake timed out");
	} else if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		gnutls_datum_t why = {0};
		gnutls_certificate_verification_status_print(
			gnutls_session_get_verify_cert_status(s), gnutls_certificate_type_get(s),
			&why, 0);
		code = say(err, errlen, -EACCES, "TLS: the peer's certificate is refused: %s",
			   why.data ? (const char *)why.data : "");
		gnutls_free(why.data);
	} else if (r == GNUTLS_E_DECRYPTION_FAILED || r == GNUTLS_E_INSUFFICIENT_CREDENTIALS ||
		   r == GNUTLS_E_NO_CERTIFICATE_FOUND || r == GNUTLS_E_CERTIFICATE_REQUIRED ||
		   r == GNUTLS_E_USER_ERROR || r == GNUTLS_E_KEYFILE_ERROR) {
		code = say(err, errlen, -EACCES, "TLS: the peer's identity is refused (%s)",
			   gnutls_strerror(r));
	} else if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		code = say(err, errlen, -EACCES, "TLS: the peer refused us (alert: %s)",
			   gnutls_alert_get_name(gnutls_alert_get(s)));
	} else if (r < 0) {
		code = say(err, errlen, -EPROTO, "TLS handshake failed (%s): the peer does not use "
			   "TLS, or not with the same credentials", gnutls_strerror(r));
	} else if (t->server && t->authz_set) {
		code = authorize(t, s, err, errlen);
	}
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
	default:
		return -EPROTO;
	}
}

int lm_tls_write(struct lm_tls_conn *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
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

int lm_tls_writev(struct lm_tls_conn *c, const struct iovec *iov, int iovcnt)
{
	/* Corked: the pieces fill whole records (at most 16 KiB each), not
	 * one small record per piece. */
	gnutls_record_cork(c->s);
	for (int i = 0; i < iovcnt; i++) {
		int r = lm_tls_write(c, iov[i].iov_base, iov[i].iov_len);
		if (r) {
			gnutls_record_uncork(c->s, 0);
			return r;
		}
	}
	int r;
	while ((r = gnutls_record_uncork(c->s, GNUTLS_RECORD_WAIT)) == GNUTLS_E_INTERRUPTED)
		;
	return r < 0 ? io_error(r) : 0;
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

size_t lm_tls_pending(struct lm_tls_conn *c)
{
	return gnutls_record_check_pending(c->s);
}

void lm_tls_describe(struct lm_tls_conn *c, char *buf, size_t len)
{
	gnutls_session_t s = c->s;
	snprintf(buf, len, "%s %s %s, userspace",
		 gnutls_protocol_get_name(gnutls_protocol_get_version(s)),
		 gnutls_cipher_get_name(gnutls_cipher_get(s)),
		 gnutls_kx_get_name(gnutls_kx_get(s)));
}
