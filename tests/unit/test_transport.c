/* SPDX-License-Identifier: MIT */
/* Transport: URI parsing, listen/connect over loopback and a Unix socket,
 * full-length I/O, time-outs. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "t.h"

/* ---- lm_uri_parse -------------------------------------------------------- */

static void parse_ok(const char *uri, int family, const char *host, const char *port)
{
	struct lm_addr a;
	char err[256] = "";
	int r = lm_uri_parse(uri, &a, err, sizeof(err));
	CHECKF(r == 0, "%s: %d %s", uri, r, err);
	if (r)
		return;
	CHECKF(a.family == family, "%s: family %d", uri, a.family);
	if (family == AF_UNIX) {
		CHECKF(!strcmp(a.path, host), "%s: path '%s'", uri, a.path);
	} else {
		CHECKF(!strcmp(a.host, host), "%s: host '%s'", uri, a.host);
		CHECKF(!strcmp(a.port, port), "%s: port '%s'", uri, a.port);
	}
}

static void parse_bad(const char *uri, const char *why)
{
	struct lm_addr a;
	char err[256] = "";
	int r = lm_uri_parse(uri, &a, err, sizeof(err));
	CHECKF(r == -EINVAL, "%s: %d", uri ? uri : "(null)", r);
	CHECKF(strstr(err, why), "%s: '%s' lacks '%s'", uri ? uri : "(null)", err, why);
}

static void test_parse(void)
{
	parse_ok("tcp:127.0.0.1:4444", AF_INET, "127.0.0.1", "4444");
	parse_ok("tcp:example.org:1", AF_INET, "example.org", "1");
	parse_ok("tcp:host:65535", AF_INET, "host", "65535");
	parse_ok("tcp:host:080", AF_INET, "host", "80"); /* the port is normalised */
	/* Port 0 is accepted: for a listener it means "any free port". */
	parse_ok("tcp:127.0.0.1:0", AF_INET, "127.0.0.1", "0");
	/* An empty host: every address (listen) or the loopback (connect). */
	parse_ok("tcp::4444", AF_INET, "", "4444");
	parse_ok("tcp:[::1]:4444", AF_INET6, "::1", "4444");
	parse_ok("tcp:[fe80::1%lo]:9", AF_INET6, "fe80::1%lo", "9");
	parse_ok("tcp:[::]:4444", AF_INET6, "::", "4444");
	parse_ok("tcp:[::ffff:10.0.0.1]:1", AF_INET6, "::ffff:10.0.0.1", "1");
	parse_ok("tcp:my_host-1.example.org:1", AF_INET, "my_host-1.example.org", "1");
	parse_ok("tcp:host:00080", AF_INET, "host", "80");
	/* An IPv6 address goes in brackets, and only one does. */
	parse_bad("tcp:::1:4444", "an IPv6 address goes in brackets");
	parse_bad("tcp:fe80::1:4444", "an IPv6 address goes in brackets");
	parse_bad("tcp:[]:4444", "expected tcp:[IPV6]:PORT, not");
	parse_bad("tcp:[host]:4444", "expected tcp:[IPV6]:PORT, not");
	parse_bad("tcp:[1.2.3.4]:4444", "expected tcp:[IPV6]:PORT, not");
	parse_bad("tcp:[::1%]:4444", "expected tcp:[IPV6]:PORT, not");
	parse_bad("tcp:[%lo]:4444", "expected tcp:[IPV6]:PORT, not");
	parse_bad("tcp:[::1%l o]:4444", "expected tcp:[IPV6]:PORT, not");
	parse_bad("tcp:[ ::1]:4444", "expected tcp:[IPV6]:PORT, not");
	parse_bad("tcp:[::1]]:4444", "expected tcp:[IPV6]:PORT, not");
	parse_bad("tcp:[[::1]:4444", "expected tcp:[IPV6]:PORT, not");
	/* A host is a name or an address, nothing else. */
	parse_bad("tcp:ho st:1", "bad host");
	parse_bad("tcp:host/x:1", "bad host");
	parse_bad("tcp:user@host:1", "bad host");
	parse_bad("tcp:[::1]x:1", "expected tcp:[IPV6]:PORT, not");
	/* The port: digits only, whole, 0..65535. */
	parse_bad("tcp:host: 80", "bad port (0..65535) in URI");
	parse_bad("tcp:host:+80", "bad port (0..65535) in URI");
	parse_bad("tcp:host:-0", "bad port (0..65535) in URI");
	parse_bad("tcp:host:0x50", "bad port (0..65535) in URI");
	parse_bad("tcp:host:80 ", "bad port (0..65535) in URI");
	parse_bad("tcp:host:18446744073709551696", "bad port (0..65535) in URI");
	parse_bad("tcp:[::1]:65536", "bad port (0..65535) in URI");
	parse_ok("unix:/tmp/x.sock", AF_UNIX, "/tmp/x.sock", NULL);
	parse_ok("unix:rel.sock", AF_UNIX, "rel.sock", NULL);

	parse_bad(NULL, "missing URI");
	parse_bad("", "expected tcp:HOST:PORT or unix:PATH, not");
	parse_bad("udp:1.2.3.4:5", "expected tcp:HOST:PORT or unix:PATH, not");
	parse_bad("TCP:1.2.3.4:5", "expected tcp:HOST:PORT or unix:PATH, not");
	parse_bad("tcp", "expected tcp:HOST:PORT or unix:PATH, not");
	parse_bad("unix", "expected tcp:HOST:PORT or unix:PATH, not");
	parse_bad("tcp:host", "missing port in URI");
	parse_bad("tcp:", "missing port in URI");
	parse_bad("tcp:host:", "bad port (0..65535) in URI");
	parse_bad("tcp:host:65536", "bad port (0..65535) in URI");
	parse_bad("tcp:host:-1", "bad port (0..65535) in URI");
	parse_bad("tcp:host:99999999999999999999", "bad port (0..65535) in URI");
	parse_bad("tcp:host:http", "bad port (0..65535) in URI");
	parse_bad("tcp:host:80x", "bad port (0..65535) in URI");
	parse_bad("tcp:host:80:", "bad port (0..65535) in URI");
	parse_bad("tcp:[::1]", "expected tcp:[IPV6]:PORT, not");
	parse_bad("tcp:[::1:4444", "expected tcp:[IPV6]:PORT, not");
	parse_bad("tcp:[::1]4444", "expected tcp:[IPV6]:PORT, not");
	parse_bad("tcp:[::1]:", "bad port (0..65535) in URI");
	parse_bad("tcp:[::1]:x", "bad port (0..65535) in URI");
	parse_bad("unix:", "unix socket path empty");

	/* Host: at most 255 bytes. */
	char uri[400], host[300];
	memset(host, 'h', 255);
	host[255] = 0;
	snprintf(uri, sizeof(uri), "tcp:%s:1", host);
	parse_ok(uri, AF_INET, host, "1");
	snprintf(uri, sizeof(uri), "tcp:%sh:1", host);
	parse_bad(uri, "host longer than 255 bytes"); /* the reason survives a long URI */

	/* sun_path holds 108 bytes with the NUL: 107 characters fit. */
	char path[200];
	memset(path, 'p', 107);
	path[107] = 0;
	snprintf(uri, sizeof(uri), "unix:%s", path);
	parse_ok(uri, AF_UNIX, path, NULL);
	snprintf(uri, sizeof(uri), "unix:%sp", path);
	parse_bad(uri, "longer than 107 bytes");

	/* A failed parse leaves no stale address behind. */
	struct lm_addr a;
	char err[64];
	lm_uri_parse("tcp:1.2.3.4:5", &a, err, sizeof(err));
	CHECK(lm_uri_parse("tcp:1.2.3.4", &a, err, sizeof(err)) == -EINVAL);
	CHECK(a.family == 0 && !a.host[0] && !a.port[0]);
	/* A short error buffer is truncated, not overrun. */
	char small[8];
	memset(small, 'x', sizeof(small));
	CHECK(lm_uri_parse("bogus", &a, small, 4) == -EINVAL);
	CHECK(strlen(small) == 3 && small[4] == 'x');
}

/* ---- listen / connect ----------------------------------------------------- */

static struct lm_addr addr(const char *uri)
{
	struct lm_addr a;
	char err[256];
	int r = lm_uri_parse(uri, &a, err, sizeof(err));
	CHECKF(!r, "%s: %s", uri, err);
	return a;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Connects to a listener, accepts, and checks bytes go both ways. */
static void exchange(int lfd, const struct lm_addr *a, bool tcp)
{
	char err[256] = "";
	int c = lm_connect(a, 5, NULL, err, sizeof(err));
	CHECKF(c >= 0, "connect: %d %s", c, err);
	if (c < 0)
		return;
	int s = accept(lfd, NULL, NULL);
	CHECK(s >= 0);
	char buf[6] = "";
	CHECK(lm_write_full(c, "hello", 5) == 0);
	CHECK(lm_read_full(s, buf, 5, NULL) == 0 && !memcmp(buf, "hello", 5));
	CHECK(lm_write_full(s, "back", 4) == 0);
	CHECK(lm_read_full(c, buf, 4, NULL) == 0 && !memcmp(buf, "back", 4));
	if (tcp) {
		/* The peer has read 5 bytes: they are acknowledged soon. */
		int64_t acked = -1;
		for (int i = 0; i < 100 && (acked = lm_sock_acked(c)) < 5; i++)
			usleep(10000);
		CHECKF(acked >= 5, "acked %lld", (long long)acked);
	} else {
		CHECK(lm_sock_acked(c) == -1);
		CHECK(lm_sock_acked(s) == -1);
	}
	close(c);
	close(s);
}

/* Listens on host:0 (any free port), connects, then checks the errors
 * name the address as the user writes it. */
static void test_tcp(const char *host, const char *shown)
{
	char uri[128], err[256] = "";
	snprintf(uri, sizeof(uri), "tcp:%s:0", host);
	struct lm_addr a = addr(uri);
	int lfd = lm_listen(&a, err, sizeof(err));
	CHECKF(lfd >= 0, "listen %s: %d %s", uri, lfd, err);
	if (lfd < 0)
		return;
	int port = bound_port(lfd);
	snprintf(uri, sizeof(uri), "tcp:%s:%d", host, port);
	a = addr(uri);
	exchange(lfd, &a, true);

	/* The port is taken. */
	char want[128];
	snprintf(want, sizeof(want), "cannot listen on tcp:%s:%d: ", shown, port);
	int r = lm_listen(&a, err, sizeof(err));
	CHECKF(r == -EADDRINUSE, "%d", r);
	CHECKF(strstr(err, want), "'%s' lacks '%s'", err, want);
	close(lfd);

	/* Nobody listens any more. */
	snprintf(want, sizeof(want), "cannot connect to tcp:%s:%d: ", shown, port);
	r = lm_connect(&a, 5, NULL, err, sizeof(err));
	CHECKF(r == -ECONNREFUSED, "%d", r);
	CHECKF(strstr(err, want), "'%s' lacks '%s'", err, want);
}

static bool have_ipv6(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	bool ok = !bind(fd, (struct sockaddr *)&sin6, sizeof(sin6));
	close(fd);
	return ok;
}

/* Listens on a Unix socket, connects, exchanges, removes it. */
static void unix_round_trip(const struct lm_addr *a, const char *what)
{
	char err[256] = "";
	int lfd = lm_listen(a, err, sizeof(err));
	CHECKF(lfd >= 0, "%s: %d %s", what, lfd, err);
	if (lfd >= 0) {
		exchange(lfd, a, false);
		close(lfd);
	}
	unlink(a->path);
}

static void test_unix(const char *dir)
{
	char path[256], uri[300], err[256] = "";
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	snprintf(uri, sizeof(uri), "unix:%s", path);
	struct lm_addr a = addr(uri);

	/* Nobody there yet. */
	int r = lm_connect(&a, 5, NULL, err, sizeof(err));
	CHECKF(r == -ENOENT, "%d", r);
	CHECKF(strstr(err, "cannot connect to unix:") && strstr(err, path), "%s", err);

	mode_t old = umask(0); /* a careless umask: the socket is 0600 anyway */
	int lfd = lm_listen(&a, err, sizeof(err));
	umask(old);
	CHECKF(lfd >= 0, "listen %s: %d %s", uri, lfd, err);
	if (lfd < 0)
		return;
	struct stat st;
	CHECK(!stat(path, &st) && (st.st_mode & 0777) == 0600);
	exchange(lfd, &a, false);

	/* A peer of another user is refused even when the mode lets it in
	 * (root only: it takes setuid). */
	if (geteuid() == 0) {
		chmod(path, 0666);
		chmod(dir, 0755);
		pid_t pid = fork();
		if (!pid) {
			if (setuid(65534))
				_exit(2);
			int fd = lm_connect(&a, 5, NULL, err, sizeof(err));
			sleep(fd >= 0 ? 2 : 0);
			_exit(fd >= 0 ? 0 : 1);
		}
		struct pollfd pfd = {.fd = lfd, .events = POLLIN};
		int fd = poll(&pfd, 1, 5000) == 1 ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC) : -1;
		CHECK(fd >= 0 && lm_peer_allowed(fd) == -EACCES);
		if (fd >= 0)
			close(fd);
		int status;
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		int sv[2]; /* this user: allowed */
		CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv) && lm_peer_allowed(sv[0]) == 0);
		close(sv[0]);
		close(sv[1]);
		chmod(path, 0600);
		chmod(dir, 0700);
	}

	/* A live listener is never replaced. */
	r = lm_listen(&a, err, sizeof(err));
	CHECKF(r == -EADDRINUSE, "%d", r);
	CHECKF(strstr(err, "another process is listening"), "%s", err);

	/* A socket file nobody answers on (an earlier run's) is. */
	close(lfd);
	CHECK(!lstat(path, &st) && S_ISSOCK(st.st_mode));
	unix_round_trip(&a, "stale socket");

	/* Anything else at the path is an error, and stays. */
	FILE *f = fopen(path, "w");
	CHECK(f);
	if (f)
		fclose(f);
	r = lm_listen(&a, err, sizeof(err));
	CHECKF(r == -EEXIST, "%d", r);
	CHECKF(strstr(err, "not a socket"), "%s", err);
	CHECK(!lstat(path, &st) && S_ISREG(st.st_mode));
	unlink(path);

	/* The longest path that fits (107 characters) works end to end. */
	size_t n = strlen(dir) + 1;
	CHECK(n < 100);
	memcpy(path, dir, n - 1);
	path[n - 1] = '/';
	memset(path + n, 'L', 107 - n);
	path[107] = 0;
	snprintf(uri, sizeof(uri), "unix:%s", path);
	a = addr(uri);
	unix_round_trip(&a, "107-byte path");
}

/* ---- full-length I/O ------------------------------------------------------ */

static void pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		perror("socketpair");
		exit(1);
	}
}

struct dribble {
	int fd;
	const uint8_t *p;
	size_t len, chunk;
	bool close_after;
};

/* Writes p in chunks with pauses between them, so the reader sees the data
 * arrive in pieces. */
static void *dribble_main(void *arg)
{
	struct dribble *d = arg;
	for (size_t off = 0; off < d->len; off += d->chunk) {
		size_t n = d->len - off < d->chunk ? d->len - off : d->chunk;
		if (write(d->fd, d->p + off, n) != (ssize_t)n)
			break;
		usleep(5000);
	}
	if (d->close_after)
		close(d->fd);
	return NULL;
}

static void test_read(void)
{
	int sv[2];
	uint8_t src[1000], dst[1000];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)t_rnd();
	bool eof = true;

	/* Pieces assembled into one buffer. */
	pair(sv);
	struct dribble d = {sv[1], src, sizeof(src), 137, false};
	pthread_t t;
	pthread_create(&t, NULL, dribble_main, &d);
	CHECK(lm_read_full(sv[0], dst, sizeof(dst), &eof) == 0);
	CHECK(!eof && !memcmp(src, dst, sizeof(src)));
	pthread_join(t, NULL);

	/* ...and into scattered ones, across the pieces' edges. */
	memset(dst, 0, sizeof(dst));
	pthread_create(&t, NULL, dribble_main, &d);
	struct iovec iov[5] = {{dst, 1}, {dst + 1, 0}, {dst + 1, 500}, {dst + 501, 0},
			       {dst + 501, 499}};
	CHECK(lm_readv_full(sv[0], iov, 5) == 0);
	CHECK(!memcmp(src, dst, sizeof(src)));
	pthread_join(t, NULL);

	/* Nothing asked, nothing read: not an EOF. */
	CHECK(lm_read_full(sv[0], dst, 0, &eof) == 0 && !eof);
	struct iovec none[2] = {{dst, 0}, {dst, 0}};
	CHECK(lm_readv_full(sv[0], none, 2) == 0);
	CHECK(lm_readv_full(sv[0], none, 0) == 0);

	/* EOF before the first byte: a clean end. */
	close(sv[1]);
	CHECK(lm_read_full(sv[0], dst, 10, &eof) == -ECONNRESET && eof);
	CHECK(lm_read_full(sv[0], dst, 10, NULL) == -ECONNRESET);
	struct iovec one = {dst, 10};
	CHECK(lm_readv_full(sv[0], &one, 1) == -ECONNRESET);
	close(sv[0]);

	/* EOF in the middle: a broken stream. */
	pair(sv);
	d = (struct dribble){sv[1], src, 30, 7, true};
	pthread_create(&t, NULL, dribble_main, &d);
	eof = true;
	CHECK(lm_read_full(sv[0], dst, 100, &eof) == -ECONNRESET && !eof);
	CHECK(!memcmp(src, dst, 30));
	pthread_join(t, NULL);
	close(sv[0]);

	pair(sv);
	d.fd = sv[1];
	pthread_create(&t, NULL, dribble_main, &d);
	struct iovec two[2] = {{dst, 20}, {dst + 20, 20}};
	CHECK(lm_readv_full(sv[0], two, 2) == -ECONNRESET);
	pthread_join(t, NULL);
	close(sv[0]);
}

struct drain {
	int fd;
	uint8_t *p;
	size_t len;
	int r;
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	usleep(20000); /* let the writer fill the socket buffer first */
	d->r = lm_read_full(d->fd, d->p, d->len, NULL);
	return NULL;
}

/* Signals, without SA_RESTART, cut blocking calls short: a send or
 * receive that moved some bytes returns that count, one that moved none
 * fails with EINTR.  That is how the full-length loops get exercised. */
struct pester {
	pthread_t who[2];
	atomic_bool stop;
};

static void on_signal(int sig)
{
	(void)sig;
}

static void *pester_main(void *arg)
{
	struct pester *p = arg;
	while (!atomic_load(&p->stop)) {
		pthread_kill(p->who[0], SIGUSR1);
		pthread_kill(p->who[1], SIGUSR1);
		usleep(100);
	}
	return NULL;
}

/* Sends src (LEN bytes) through lm_writev_full(iov) or, with iov NULL,
 * lm_write_full, while a thread receives it with lm_read_full; checks it
 * arrives whole. */
static void transfer(const uint8_t *src, uint8_t *dst, size_t len, struct iovec *iov, int niov,
		     bool interrupt)
{
	int sv[2];
	pair(sv);
	memset(dst, 0, len);
	struct drain d = {sv[1], dst, len, -1};
	struct pester p = {.who = {pthread_self()}};
	pthread_t t, pt;
	pthread_create(&t, NULL, drain_main, &d);
	if (interrupt) {
		p.who[1] = t;
		pthread_create(&pt, NULL, pester_main, &p);
	}
	int r = iov ? lm_writev_full(sv[0], iov, niov) : lm_write_full(sv[0], src, len);
	CHECKF(r == 0, "%d", r);
	if (interrupt) { /* stopped before the reader is joined: its id is then gone */
		atomic_store(&p.stop, true);
		pthread_join(pt, NULL);
	}
	pthread_join(t, NULL);
	CHECKF(d.r == 0, "%d", d.r);
	CHECK(!memcmp(src, dst, len));
	close(sv[0]);
	close(sv[1]);
}

static void test_write(void)
{
	/* Far more than a socket buffer, in uneven pieces with empty ones
	 * between. */
	enum { LEN = 8 << 20, NIOV = 200 };
	uint8_t *src = malloc(LEN), *dst = malloc(LEN);
	CHECK(src && dst);
	if (!src || !dst)
		exit(1);
	for (size_t i = 0; i < LEN; i += 8) {
		uint64_t v = t_rnd();
		memcpy(src + i, &v, 8);
	}
	struct iovec iov[NIOV], work[NIOV];
	size_t off = 0;
	for (int i = 0; i < NIOV - 1; i++) {
		size_t n = i % 5 == 3 ? 0 : t_rnd() % (2 * LEN / NIOV);
		if (n > LEN - off)
			n = LEN - off;
		iov[i] = (struct iovec){src + off, n};
		off += n;
	}
	iov[NIOV - 1] = (struct iovec){src + off, LEN - off};

	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART */
	sigaction(SIGUSR1, &sa, NULL);
	for (int interrupt = 0; interrupt < 2; interrupt++) {
		memcpy(work, iov, sizeof(iov)); /* lm_writev_full consumes its vector */
		transfer(src, dst, LEN, work, NIOV, interrupt);
		transfer(src, dst, LEN, NULL, 0, interrupt);
	}

	int sv[2];
	pair(sv);
	/* Nothing to write succeeds at once. */
	struct iovec none[2] = {{src, 0}, {src, 0}};
	CHECK(lm_writev_full(sv[0], none, 2) == 0);
	CHECK(lm_write_full(sv[0], src, 0) == 0);

	/* A closed peer: EPIPE, and no SIGPIPE kills us. */
	close(sv[1]);
	CHECK(lm_write_full(sv[0], src, 100) == -EPIPE);
	close(sv[0]);
	free(src);
	free(dst);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_timeout(void)
{
	int sv[2];
	uint8_t buf[64];
	bool eof = true;
	pair(sv);
	CHECK(lm_set_timeout(sv[0], 1) == 0);

	/* A silent peer: a time-out after about a second. */
	double t0 = now_s();
	CHECK(lm_read_full(sv[0], buf, sizeof(buf), &eof) == -ETIMEDOUT && !eof);
	double dt = now_s() - t0;
	CHECKF(dt >= 0.9 && dt < 2.0, "%.3f s", dt);

	/* Part of the data came: still a time-out, within twice the time
	 * (the time-out bounds each receive: the first returns the part when
	 * it expires, the next waits once more). */
	CHECK(write(sv[1], buf, 10) == 10);
	struct iovec iov = {buf, sizeof(buf)};
	t0 = now_s();
	CHECK(lm_readv_full(sv[0], &iov, 1) == -ETIMEDOUT);
	dt = now_s() - t0;
	CHECKF(dt >= 1.9 && dt < 3.0, "%.3f s", dt);

	/* 0 removes it: the read waits for the data.  The writer thread has
	 * its own buffer: the one read into is not also read from. */
	CHECK(lm_set_timeout(sv[0], 0) == 0);
	static const uint8_t eight[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct dribble d = {sv[1], eight, sizeof(eight), sizeof(eight), false};
	pthread_t t;
	pthread_create(&t, NULL, dribble_main, &d);
	CHECK(lm_read_full(sv[0], buf, 8, &eof) == 0 && !memcmp(buf, eight, 8));
	pthread_join(t, NULL);

	CHECK(lm_set_timeout(-1, 1) == -EBADF);
	close(sv[0]);
	close(sv[1]);
}

/* Keepalive and TCP_USER_TIMEOUT as lm_keepalive_for says, read back. */
static void test_liveness(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0);
	CHECK(lm_sock_liveness(fd, 10) == 0);
	struct lm_keepalive k = lm_keepalive_for(10);
	int on = 0, idle = 0, intvl = 0, cnt = 0;
	unsigned user = 0;
	socklen_t l = sizeof(int);
	CHECK(!getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &l) && on);
	CHECK(!getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &l) && idle == k.idle_s);
	CHECK(!getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, &l) && intvl == k.interval_s);
	CHECK(!getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, &l) && cnt == k.count);
	CHECK(!getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, &l) && user == 10000);
	close(fd);
	CHECK(lm_sock_liveness(-1, 10) == -EBADF);
}

static void *raise_later(void *arg)
{
	usleep(300000);
	atomic_store((_Atomic bool *)arg, true);
	return NULL;
}

/* A listener whose accept queue is full drops SYNs: a connect to it
 * would wait for the kernel's SYN retries.  lm_connect gives up at its
 * time-out, or as soon as the stop flag rises. */
static void test_connect_bounded(void)
{
	char uri[64], err[256] = "";
	struct lm_addr a = addr("tcp:127.0.0.1:0");
	int lfd = lm_listen(&a, err, sizeof(err));
	CHECKF(lfd >= 0, "%s", err);
	if (lfd < 0)
		return;
	CHECK(!listen(lfd, 0)); /* one connection fills the queue */
	snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%d", bound_port(lfd));
	a = addr(uri);
	int c1 = lm_connect(&a, 5, NULL, err, sizeof(err));
	CHECKF(c1 >= 0, "%s", err);

	double t0 = now_s();
	int r = lm_connect(&a, 1, NULL, err, sizeof(err));
	double dt = now_s() - t0;
	CHECKF(r == -ETIMEDOUT && dt >= 0.9 && dt < 2.0, "%d after %.3f s: %s", r, dt, err);
	CHECKF(strstr(err, "no answer within 1 s"), "%s", err);

	_Atomic bool stop = false;
	pthread_t t;
	pthread_create(&t, NULL, raise_later, &stop);
	t0 = now_s();
	r = lm_connect(&a, 30, &stop, err, sizeof(err));
	dt = now_s() - t0;
	pthread_join(t, NULL);
	CHECKF(r == -ECANCELED && dt >= 0.25 && dt < 1.0, "%d after %.3f s: %s", r, dt, err);
	if (c1 >= 0)
		close(c1);
	close(lfd);
}

int main(void)
{
	test_parse();

	test_tcp("127.0.0.1", "127.0.0.1");
	if (have_ipv6())
		test_tcp("[::1]", "[::1]");
	else
		fprintf(stderr, "IPv6 loopback not available: [::1] cases skipped\n");

	char dir[] = "/tmp/lm-transport-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_unix(dir);
	rmdir(dir);

	test_read();
	test_write();
	test_timeout();
	test_liveness();
	test_connect_bounded();
	T_DONE();
}
