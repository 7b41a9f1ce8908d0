/* SPDX-License-Identifier: MIT */
/* Sockets: URIs tcp:HOST:PORT, tcp:[V6]:PORT, unix:PATH; full-length I/O. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/internal.h"
#include "util/util.h"

/* Characters of a host name or IPv4 address, and of an IPv6 zone. */
static bool name_chars(const char *s, size_t n)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(ok, s[i]))
			return false;
	return true;
}

/* What goes in brackets: an IPv6 address (hex digits, ':' and '.' for a
 * mapped IPv4 tail, at least one ':'), then maybe "%zone". */
static bool v6_host(const char *s, size_t n)
{
	const char *pct = memchr(s, '%', n);
	size_t addr = pct ? (size_t)(pct - s) : n;
	if (!addr || !memchr(s, ':', addr))
		return false;
	for (size_t i = 0; i < addr; i++)
		if (!s[i] || !strchr("0123456789abcdefABCDEF:.", s[i]))
			return false;
	return !pct || (n - addr > 1 && name_chars(pct + 1, n - addr - 1));
}

int lm_uri_parse(const char *uri, struct lm_addr *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	if (!uri) {
		snprintf(err, errlen, "missing URI");
		return -EINVAL;
	}
	if (!strncmp(uri, "unix:", 5)) {
		const char *path = uri + 5;
		if (!*path || strlen(path) >= sizeof(a->path)) {
			snprintf(err, errlen, "unix socket path empty or longer than %zu bytes",
				 sizeof(a->path) - 1);
			return -EINVAL;
		}
		a->family = AF_UNIX;
		strcpy(a->path, path);
		return 0;
	}
	if (strncmp(uri, "tcp:", 4)) {
		snprintf(err, errlen, "expected tcp:HOST:PORT or unix:PATH, not '%s'", uri);
		return -EINVAL;
	}
	/* The reasons go first: a long URI is cut off at the end of err. */
	const char *h = uri + 4, *colon;
	size_t hlen;
	int family;
	if (*h == '[') {
		const char *close = strchr(h, ']');
		if (!close || close[1] != ':' || !v6_host(h + 1, (size_t)(close - h - 1))) {
			snprintf(err, errlen, "expected tcp:[IPV6]:PORT, not '%s'", uri);
			return -EINVAL;
		}
		h++;
		hlen = (size_t)(close - h);
		colon = close + 1;
		family = AF_INET6;
	} else {
		colon = strrchr(h, ':');
		if (!colon) {
			snprintf(err, errlen, "missing port in URI '%s'", uri);
			return -EINVAL;
		}
		hlen = (size_t)(colon - h);
		family = AF_INET;
	}
	uint64_t port;
	if (lm_parse_uint(colon + 1, 0, 65535, &port)) {
		snprintf(err, errlen, "bad port (0..65535) in URI '%s'", uri);
		return -EINVAL;
	}
	if (family == AF_INET && memchr(h, ':', hlen)) {
		snprintf(err, errlen, "an IPv6 address goes in brackets, tcp:[IPV6]:PORT, not '%s'",
			 uri);
		return -EINVAL;
	}
	if (family == AF_INET && !name_chars(h, hlen)) {
		snprintf(err, errlen, "bad host (a name or an address) in URI '%s'", uri);
		return -EINVAL;
	}
	if (hlen >= sizeof(a->host)) {
		snprintf(err, errlen, "host longer than %zu bytes in URI '%s'",
			 sizeof(a->host) - 1, uri);
		return -EINVAL;
	}
	a->family = family;
	memcpy(a->host, h, hlen);
	a->host[hlen] = 0;
	snprintf(a->port, sizeof(a->port), "%u", (unsigned)port);
	return 0;
}

void lm_sock_tune(int fd, bool tcp)
{
	/* Large buffers let a channel keep a few packets in flight; TCP_NODELAY
	 * because every write is a whole packet or control message and the
	 * control messages are latency-bound (switchover). */
	int sz = 4 << 20, one = 1;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (tcp)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

struct lm_keepalive lm_keepalive_for(unsigned seconds)
{
	struct lm_keepalive k;
	k.idle_s = seconds / 2 ? (int)(seconds / 2) : 1;
	k.interval_s = (seconds - (unsigned)k.idle_s) / 3 ? (int)(seconds - (unsigned)k.idle_s) / 3
							  : 1;
	k.count = 3;
	k.user_timeout_ms = seconds * 1000u;
	return k;
}

int lm_sock_liveness(int fd, unsigned seconds)
{
	struct lm_keepalive k = lm_keepalive_for(seconds);
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &k.idle_s, sizeof(k.idle_s)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &k.interval_s, sizeof(k.interval_s)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &k.count, sizeof(k.count)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &k.user_timeout_ms,
		       sizeof(k.user_timeout_ms)))
		return -errno;
	return 0;
}

/* "tcp:HOST:PORT" as the user writes it: an IPv6 address in brackets. */
static const char *tcp_name(const struct lm_addr *a, char *buf, size_t len)
{
	bool v6 = a->family == AF_INET6;
	snprintf(buf, len, "tcp:%s%s%s:%s", v6 ? "[" : "", a->host, v6 ? "]" : "", a->port);
	return buf;
}

static int resolve(const struct lm_addr *a, bool passive, struct addrinfo **res, char *err,
		   size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	int r = getaddrinfo(a->host[0] ? a->host : NULL, a->port, &hints, res);
	if (r) {
		snprintf(err, errlen, "cannot resolve '%s': %s", a->host, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	return 0;
}

/*
 * A socket file left by an earlier run that nobody answers on is removed;
 * anything else at the path (a live listener, a regular file) is an error,
 * never silently replaced.
 */
static int clear_stale_socket(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st))
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "cannot listen on unix:%s: a file that is not a socket is there",
			 path);
		return -EEXIST;
	}
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int alive = !connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	if (alive) {
		snprintf(err, errlen, "cannot listen on unix:%s: another process is listening there",
			 path);
		return -EADDRINUSE;
	}
	unlink(path);
	return 0;
}

/*
 * A TCP connect that ends by end_ns (lm_now_ns) or when *stop is raised:
 * non-blocking, polled in 100 ms slices.  (A blocking connect to a host
 * that drops the SYN waits for the kernel's SYN retries, minutes.)
 * 0, -ETIMEDOUT, -ECANCELED or -errno.
 */
static int connect_by(int fd, const struct sockaddr *sa, socklen_t len, uint64_t end_ns,
		      const _Atomic bool *stop)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	int e = connect(fd, sa, len) ? -errno : 0;
	while (e == -EINPROGRESS || e == -EINTR) {
		uint64_t now = lm_now_ns();
		if (stop && atomic_load(stop)) {
			e = -ECANCELED;
			break;
		}
		if (now >= end_ns) {
			e = -ETIMEDOUT;
			break;
		}
		uint64_t left_ms = (end_ns - now) / 1000000 + 1;
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int pr = poll(&p, 1, left_ms < 100 ? (int)left_ms : 100);
		if (pr < 0 && errno != EINTR) {
			e = -errno;
		} else if (pr > 0) {
			int so = 0;
			socklen_t sl = sizeof(so);
			e = getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) ? -errno : -so;
		}
	}
	if (fcntl(fd, F_SETFL, fl) && !e)
		e = -errno;
	return e;
}

/* Binds and listens on sa, or connects to it (TCP: by end_ns, see
 * connect_by).  0 or -errno. */
static int attach(int fd, bool listening, const struct sockaddr *sa, socklen_t len,
		  uint64_t end_ns, const _Atomic bool *stop)
{
	if (listening) {
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* A unix socket is this user's alone (whatever the umask),
		 * from the moment it exists: created with mode 0600 - not
		 * chmod()ed after, which would follow a symlink that the owner
		 * of the directory put in its place.  (The umask is the
		 * process's: this runs at start, before files are written.)
		 * See lm_peer_allowed. */
		mode_t old = sa->sa_family == AF_UNIX ? umask(0177) : 0;
		int r = bind(fd, sa, len);
		if (sa->sa_family == AF_UNIX)
			umask(old);
		if (!r && !listen(fd, 512))
			return 0;
	} else if (sa->sa_family != AF_UNIX) {
		return connect_by(fd, sa, len, end_ns, stop);
	} else if (!connect(fd, sa, len)) {
		return 0;
	}
	return -errno;
}

/* lm_listen and lm_connect: a socket for each address a resolves to, until
 * one binds (listening) or connects (all of them within timeout_s). */
static int open_socket(const struct lm_addr *a, bool listening, unsigned timeout_s,
		       const _Atomic bool *stop, char *err, size_t errlen)
{
	uint64_t end_ns = lm_now_ns() + timeout_s * 1000000000ull;
	const char *what = listening ? "listen on" : "connect to";
	int fd, e;
	if (a->family == AF_UNIX) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		strcpy(sun.sun_path, a->path);
		if (listening && (e = clear_stale_socket(a->path, err, errlen)))
			return e;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			e = -errno;
			snprintf(err, errlen, "socket: %s", strerror(-e));
			return e;
		}
		lm_sock_tune(fd, false);
		if (!(e = attach(fd, listening, (struct sockaddr *)&sun, sizeof(sun), 0, NULL)))
			return fd;
		close(fd);
		snprintf(err, errlen, "cannot %s unix:%s: %s", what, a->path, strerror(-e));
		return e;
	}
	struct addrinfo *res, *ai;
	if ((e = resolve(a, listening, &res, err, errlen)))
		return e;
	e = listening ? -EADDRNOTAVAIL : -ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = -errno;
			continue;
		}
		lm_sock_tune(fd, true); /* accepted sockets inherit the buffer sizes */
		if (!(e = attach(fd, listening, ai->ai_addr, ai->ai_addrlen, end_ns, stop))) {
			freeaddrinfo(res);
			return fd;
		}
		close(fd);
		if (e == -ETIMEDOUT || e == -ECANCELED)
			break; /* no time left for the next address */
	}
	freeaddrinfo(res);
	char name[300];
	if (e == -ETIMEDOUT)
		snprintf(err, errlen, "cannot %s %s: no answer within %u s", what,
			 tcp_name(a, name, sizeof(name)), timeout_s);
	else
		snprintf(err, errlen, "cannot %s %s: %s", what, tcp_name(a, name, sizeof(name)),
			 strerror(-e));
	return e;
}

int lm_listen(const struct lm_addr *a, char *err, size_t errlen)
{
	return open_socket(a, true, 0, NULL, err, errlen);
}

int lm_sock_uri(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN + 1], port[16];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return -errno;
	if (ss.ss_family == AF_UNIX)
		return snprintf(buf, len, "unix:%s", ((struct sockaddr_un *)&ss)->sun_path);
	if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV))
		return -EINVAL;
	bool v6 = ss.ss_family == AF_INET6;
	return snprintf(buf, len, "tcp:%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

int lm_connect(const struct lm_addr *a, unsigned timeout_s, const _Atomic bool *stop, char *err,
	       size_t errlen)
{
	return open_socket(a, false, timeout_s, stop, err, errlen);
}

int lm_peer_allowed(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return -errno;
	return cr.uid == geteuid() || cr.uid == 0 ? 0 : -EACCES;
}

int lm_set_timeout(int fd, int seconds)
{
	struct timeval tv = {.tv_sec = seconds};
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return -errno;
	return 0;
}

int lm_set_recv_timeout_ms(int fd, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ? -errno : 0;
}

ssize_t lm_io_recv(int fd, struct lm_tls_conn *tls, void *buf, size_t len, int wait_ms)
{
	if (!tls || !lm_tls_pending(tls)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr = poll(&p, 1, wait_ms);
		if (pr < 0 && errno != EINTR)
			return -errno;
		if (pr <= 0)
			return -EAGAIN;
	}
	if (tls)
		return lm_tls_recv(tls, buf, len);
	ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	return n;
}

int lm_io_write_now(int fd, struct lm_tls_conn *tls, const void *buf, size_t len)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT))
		return -EAGAIN;
	/* POLLOUT means room for far more than a control message (or its
	 * record), so nothing below waits in practice. */
	if (tls)
		return lm_tls_write(tls, buf, len);
	ssize_t w = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w < 0)
		return errno == EAGAIN ? -EAGAIN : -errno;
	/* A message cut short would garble the stream: finish it. */
	return (size_t)w < len ? lm_write_full(fd, (const uint8_t *)buf + w, len - (size_t)w) : 0;
}

void lm_io_close(int fd, struct lm_tls_conn *tls)
{
	lm_tls_end(tls);
	if (fd >= 0)
		close(fd);
}

static int io_errno(void)
{
	/* A receive timeout (SO_RCVTIMEO) reads as EAGAIN: call it a time-out. */
	return errno == EAGAIN ? -ETIMEDOUT : -errno;
}

int lm_write_full(int fd, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	return lm_writev_full(fd, &iov, 1);
}

/* Advances iov past n bytes and the empty entries that follow them;
 * returns the new start. */
static struct iovec *iov_advance(struct iovec *iov, int *iovcnt, size_t n)
{
	while (*iovcnt && n >= iov->iov_len) {
		n -= iov->iov_len;
		iov++;
		(*iovcnt)--;
	}
	if (*iovcnt) {
		iov->iov_base = (uint8_t *)iov->iov_base + n;
		iov->iov_len -= n;
	}
	return iov;
}

int lm_writev_full(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return io_errno();
		}
		iov = iov_advance(iov, &iovcnt, (size_t)n);
	}
	return 0;
}

int lm_readv_full(int fd, struct iovec *iov, int iovcnt)
{
	/* Empty entries first: a read into no room at all would wait for a
	 * byte it cannot take, or report 0 (EOF). */
	iov = iov_advance(iov, &iovcnt, 0);
	while (iovcnt) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
		ssize_t n = recvmsg(fd, &mh, MSG_WAITALL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return io_errno();
		}
		if (n == 0)
			return -ECONNRESET;
		iov = iov_advance(iov, &iovcnt, (size_t)n);
	}
	return 0;
}

int lm_read_full(int fd, void *buf, size_t len, bool *eof)
{
	size_t got = 0;
	if (eof)
		*eof = false;
	while (got < len) {
		ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, MSG_WAITALL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return io_errno();
		}
		if (n == 0) {
			if (eof && !got)
				*eof = true;
			return -ECONNRESET;
		}
		got += (size_t)n;
	}
	return 0;
}
