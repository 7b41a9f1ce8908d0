/* SPDX-License-Identifier: MIT */
/* TLS (core/tls.c) with PSK credentials over a socket pair: a handshake
 * and records both ways, corked writev included; a wrong key, an unknown
 * identity, a peer that does not speak TLS and tls-authz all refused with
 * their reason.  (x509 runs in the integration tests, with certtool.) */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/tls.h"
#include "t.h"

static char dir_a[64], dir_b[64];

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static bool aes_ni(void)
{
#if defined(__x86_64__)
	return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
#else
	return false;
#endif
}

struct side {
	struct lm_tls_config cfg;
	int fd;
	int r;
	char err[256];
	struct lm_tls_conn *c;
};

static void *start(void *arg)
{
	struct side *sd = arg;
	struct lm_tls *t = NULL;
	sd->r = lm_tls_open(&sd->cfg, &t, sd->err, sizeof(sd->err));
	if (!sd->r)
		sd->r = lm_tls_start(t, sd->fd, 5, &sd->c, sd->err, sizeof(sd->err));
	if (sd->r)
		shutdown(sd->fd, SHUT_RDWR); /* the other side must not wait */
	lm_tls_close(t);
	return NULL;
}

/* Handshakes server and client over a fresh socket pair. */
static void pair(struct side *srv, struct side *cli)
{
	int sv[2];
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	srv->fd = sv[0];
	cli->fd = sv[1];
	srv->cfg.server = true;
	pthread_t th;
	pthread_create(&th, NULL, start, srv);
	start(cli);
	pthread_join(th, NULL);
}

static void done(struct side *a, struct side *b)
{
	lm_tls_end(a->c);
	lm_tls_end(b->c);
	close(a->fd);
	close(b->fd);
}

static void test_psk(void)
{
	char creds_a[80], creds_b[80];
	snprintf(creds_a, sizeof(creds_a), "psk:%s", dir_a);
	snprintf(creds_b, sizeof(creds_b), "psk:%s", dir_b);

	/* The right key: records both ways, a writev of many pieces. */
	struct side srv = {.cfg = {.creds = creds_a}}, cli = {.cfg = {.creds = creds_a}};
	pair(&srv, &cli);
	CHECKF(srv.r == 0 && cli.r == 0, "%s / %s", srv.err, cli.err);
	if (!srv.r && !cli.r) {
		static uint8_t big[96 << 10], back[96 << 10]; /* fits the socket pair */
		for (size_t i = 0; i < sizeof(big); i++)
			big[i] = (uint8_t)(t_rnd() >> 7);
		struct iovec iov[64];
		for (int i = 0; i < 64; i++)
			iov[i] = (struct iovec){big + i * (sizeof(big) / 64), sizeof(big) / 64};
		CHECK(lm_tls_writev(cli.c, iov, 64) == 0);
		bool eof;
		CHECK(lm_tls_read(srv.c, back, sizeof(back), &eof) == 0);
		CHECK(!memcmp(big, back, sizeof(big)));
		CHECK(lm_tls_write(srv.c, "ok", 2) == 0);
		char two[2];
		CHECK(lm_tls_read(cli.c, two, 2, &eof) == 0 && !memcmp(two, "ok", 2));
		struct lm_tls_info info;
		lm_tls_get_info(cli.c, &info);
		CHECKF(!strncmp(info.protocol, "TLS1.", 5) && strstr(info.kx, "PSK") &&
		       (!strcmp(info.records, "userspace") || !strcmp(info.records, "kernel")),
		       "%s %s %s %s", info.protocol, info.cipher, info.kx, info.records);
		/* Where AES-GCM is accelerated, not NORMAL's ChaCha20 for a PSK. */
		CHECKF(!aes_ni() || !strcmp(info.cipher, "AES-128-GCM"), "%s", info.cipher);
		/* The end of the stream reads as one. */
		shutdown(srv.fd, SHUT_WR);
		CHECK(lm_tls_read(cli.c, two, 1, &eof) == -ECONNRESET && eof);
	}
	done(&srv, &cli);

	/* Another key for the same identity: refused on both sides, and each
	 * says so (the server's alert tells the client). */
	struct side s2 = {.cfg = {.creds = creds_a}}, c2 = {.cfg = {.creds = creds_b}};
	pair(&s2, &c2);
	CHECKF(s2.r == -EACCES && strstr(s2.err, "key of PSK identity 'qemu' differs"), "%d %s",
	       s2.r, s2.err);
	CHECKF(c2.r == -EACCES && strstr(c2.err, "another key for our tls-psk-identity"),
	       "%d %s", c2.r, c2.err);
	done(&s2, &c2);

	/* An identity the client's file lacks: refused before connecting. */
	struct lm_tls *t;
	char err[256];
	struct lm_tls_config nobody = {.creds = creds_a, .psk_identity = "nobody"};
	CHECK(lm_tls_open(&nobody, &t, err, sizeof(err)) == -ENOENT);
	CHECKF(strstr(err, "no identity 'nobody'"), "%s", err);
	/* ... and one the server does not know: refused by the server. */
	struct side s3 = {.cfg = {.creds = creds_a}},
		    c3 = {.cfg = {.creds = creds_b, .psk_identity = "other"}};
	pair(&s3, &c3);
	CHECKF(s3.r == -EACCES && strstr(s3.err, "unknown PSK identity 'other'"), "%d %s", s3.r,
	       s3.err);
	CHECKF(c3.r == -EACCES && strstr(c3.err, "lacks our tls-psk-identity"), "%d %s", c3.r,
	       c3.err);
	done(&s3, &c3);

	/* tls-authz: the PSK identity must be listed. */
	char authz[96];
	snprintf(authz, sizeof(authz), "%s/authz", dir_a);
	write_file(dir_a, "authz", "# allowed\nsomeone\n");
	struct side s4 = {.cfg = {.creds = creds_a, .authz = authz}},
		    c4 = {.cfg = {.creds = creds_a}};
	pair(&s4, &c4);
	CHECKF(s4.r == -EACCES && strstr(s4.err, "'qemu' is not in tls-authz"), "%d %s", s4.r,
	       s4.err);
	/* The client's handshake was through; the alert comes with its first read. */
	char one;
	CHECKF(c4.r || lm_tls_read(c4.c, &one, 1, NULL) == -EACCES, "%d", c4.r);
	CHECKF(c4.r || !strcmp(lm_tls_alert(c4.c), "Access was denied"), "%s",
	       c4.r ? "" : lm_tls_alert(c4.c));
	done(&s4, &c4);
	write_file(dir_a, "authz", "qemu\n");
	struct side s5 = {.cfg = {.creds = creds_a, .authz = authz}},
		    c5 = {.cfg = {.creds = creds_a}};
	pair(&s5, &c5);
	CHECKF(s5.r == 0 && c5.r == 0, "%s / %s", s5.err, c5.err);
	done(&s5, &c5);

	/* A peer that speaks no TLS: the server refuses it, in time. */
	int sv[2];
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	CHECK(write(sv[1], "MHLL not a TLS hello, just bytes................", 48) == 48);
	struct side s6 = {.cfg = {.creds = creds_a, .server = true}, .fd = sv[0]};
	start(&s6);
	CHECKF(s6.r == -EPROTO || s6.r == -ECONNRESET, "%d %s", s6.r, s6.err);
	lm_tls_end(s6.c);
	close(sv[0]);
	close(sv[1]);

	/* Bad specs. */
	struct lm_tls_config bad = {.creds = "pks:/tmp"};
	CHECK(lm_tls_open(&bad, &t, err, sizeof(err)) == -EINVAL);
	bad.creds = "psk:/nonexistent-dir";
	CHECK(lm_tls_open(&bad, &t, err, sizeof(err)) == -ENOENT);
	bad.creds = "x509:/nonexistent-dir";
	bad.hostname = "dest.example";
	CHECK(lm_tls_open(&bad, &t, err, sizeof(err)) == -ENOENT);
	/* An x509 client needs the name the server's certificate must carry:
	 * without it any certificate of the CA would do. */
	bad.hostname = NULL;
	CHECK(lm_tls_open(&bad, &t, err, sizeof(err)) == -EINVAL && strstr(err, "tls-hostname"));
	bad.hostname = "";
	CHECK(lm_tls_open(&bad, &t, err, sizeof(err)) == -EINVAL && strstr(err, "tls-hostname"));
}

/* Plaintext lengths of the TLS 1.3 records in raw[0..n): each record is
 * a 5-byte header, then its inner plaintext, content type and 16-byte tag. */
static size_t records(const uint8_t *raw, size_t n, size_t *lens, size_t max)
{
	size_t k = 0;
	for (size_t o = 0; o + 5 <= n && k < max; k++) {
		size_t len = (size_t)raw[o + 3] << 8 | raw[o + 4];
		lens[k] = len - 17;
		o += 5 + len;
	}
	return k;
}

/*
 * Record I/O as the session uses it, seen on the wire: the client's socket
 * is swapped for one whose far end the test reads, so each record's bytes
 * can be counted, split and handed to the server as they would come.
 */
static void test_records(void)
{
	char creds[80];
	snprintf(creds, sizeof(creds), "psk:%s", dir_a);
	struct side srv = {.cfg = {.creds = creds}}, cli = {.cfg = {.creds = creds}};
	pair(&srv, &cli);
	CHECKF(srv.r == 0 && cli.r == 0, "%s / %s", srv.err, cli.err);
	if (srv.r || cli.r) {
		done(&srv, &cli);
		return;
	}
	int tap[2], to_server = dup(cli.fd);
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tap) && to_server >= 0);
	int sz = 1 << 20;
	setsockopt(tap[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	CHECK(dup2(tap[0], cli.fd) == cli.fd); /* the client writes into tap now */

	/* writev: whole 16 KiB records but the last, whatever the pieces. */
	static uint8_t data[140000], raw[160000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(t_rnd() >> 9);
	size_t cuts[] = {100, 65536, 10, 3000, 41000, 100, 30254}, total = 0;
	struct iovec iov[7];
	for (int i = 0; i < 7; i++) {
		iov[i] = (struct iovec){data + total, cuts[i]};
		total += cuts[i];
	}
	CHECK(total == sizeof(data));
	CHECK(lm_tls_writev(cli.c, iov, 7) == 0);
	ssize_t n = recv(tap[1], raw, sizeof(raw), MSG_DONTWAIT);
	size_t lens[32], k = records(raw, n > 0 ? (size_t)n : 0, lens, 32);
	CHECKF(k == (total + 16383) / 16384, "%zu records for %zu bytes", k, total);
	for (size_t i = 0; i + 1 < k; i++)
		CHECKF(lens[i] == 16384, "record %zu: %zu bytes", i, lens[i]);
	CHECK(write(to_server, raw, (size_t)n) == n);
	static uint8_t back[sizeof(data)];
	bool eof;
	CHECK(lm_tls_read(srv.c, back, sizeof(back), &eof) == 0 && !memcmp(back, data, total));

	/* lm_tls_recv: nothing yet, then a record that comes in two parts -
	 * kept across the timeout - then what stays decrypted is pending. */
	struct timeval tv = {.tv_usec = 100000};
	setsockopt(srv.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	uint8_t got[16];
	CHECK(lm_tls_recv(srv.c, got, sizeof(got)) == -EAGAIN);
	CHECK(lm_tls_write(cli.c, "heartbeat-record", 16) == 0);
	n = recv(tap[1], raw, sizeof(raw), MSG_DONTWAIT);
	CHECK(n > 8 && write(to_server, raw, 8) == 8);
	CHECK(lm_tls_recv(srv.c, got, sizeof(got)) == -EAGAIN);
	CHECK(write(to_server, raw + 8, (size_t)n - 8) == n - 8);
	CHECK(lm_tls_recv(srv.c, got, 4) == 4 && !memcmp(got, "hear", 4));
	CHECK(lm_tls_pending(srv.c) == 12);
	CHECK(lm_tls_recv(srv.c, got, sizeof(got)) == 12 && !memcmp(got, "tbeat-record", 12));
	/* The end of the stream: 0, as recv(). */
	shutdown(to_server, SHUT_WR);
	CHECK(lm_tls_recv(srv.c, got, sizeof(got)) == 0);
	close(to_server);
	close(tap[0]);
	close(tap[1]);
	done(&srv, &cli);
}

int main(void)
{
	snprintf(dir_a, sizeof(dir_a), "/tmp/lm-tls-a-%d", getpid());
	snprintf(dir_b, sizeof(dir_b), "/tmp/lm-tls-b-%d", getpid());
	mkdir(dir_a, 0700);
	mkdir(dir_b, 0700);
	write_file(dir_a, "keys.psk", "qemu:00112233445566778899aabbccddeeff\n");
	write_file(dir_b, "keys.psk",
		   "qemu:ffeeddccbbaa99887766554433221100\nother:0123456789abcdef0123456789abcdef\n");
	test_psk();
	test_records();
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir_a, dir_b);
	CHECK(system(cmd) == 0);
	T_DONE();
}
