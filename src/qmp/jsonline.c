/* SPDX-License-Identifier: MIT */
#include "qmp/jsonline.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/util.h"

int lm_jl_init(struct lm_jl *l, int fd)
{
	memset(l, 0, sizeof(*l));
	l->fd = fd;
	l->received_fd = -1;
	l->tok = json_tokener_new();
	return l->tok ? 0 : -ENOMEM;
}

void lm_jl_destroy(struct lm_jl *l)
{
	if (l->tok)
		json_tokener_free(l->tok);
	l->tok = NULL;
	if (l->received_fd >= 0)
		close(l->received_fd);
	l->received_fd = -1;
}

/* Reads what the socket has into buf (which is empty), with any fd that
 * comes along.  Returns bytes, 0 at end of stream, or -errno. */
static ssize_t fill(struct lm_jl *l)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {l->buf, sizeof(l->buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	ssize_t n = recvmsg(l->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0 && errno == ENOTSOCK) { /* a pipe or a file: no fds come that way */
		mh.msg_controllen = 0;
		n = read(l->fd, l->buf, sizeof(l->buf));
	}
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = n ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int fd;
		memcpy(&fd, CMSG_DATA(c), sizeof(fd));
		if (l->received_fd >= 0) /* one at a time: the older one is lost */
			close(l->received_fd);
		l->received_fd = fd;
	}
	l->off = 0;
	l->len = (size_t)n;
	return n;
}

int lm_jl_read(struct lm_jl *l, uint64_t deadline_ns, json_object **out)
{
	for (;;) {
		while (l->off < l->len) {
			if (l->skip_line) {
				const char *nl = memchr(l->buf + l->off, '\n', l->len - l->off);
				l->off = nl ? (size_t)(nl - l->buf) + 1 : l->len;
				l->skip_line = !nl;
				continue;
			}
			size_t n = l->len - l->off;
			json_object *o = json_tokener_parse_ex(l->tok, l->buf + l->off, (int)n);
			enum json_tokener_error e = json_tokener_get_error(l->tok);
			if (e == json_tokener_continue) {
				l->fed += n;
				l->off = l->len;
				if (l->fed > LM_JL_MAX_VALUE)
					return -EPROTO;
				break;
			}
			if (e != json_tokener_success) {
				/* Where it went wrong: lm_jl_skip_line goes on from there. */
				size_t bad = json_tokener_get_parse_end(l->tok);
				l->off += bad < n ? bad : n;
				return -EPROTO;
			}
			size_t used = json_tokener_get_parse_end(l->tok);
			l->off += used;
			l->fed = 0;
			json_tokener_reset(l->tok);
			*out = o;
			return 0;
		}
		/* Whitespace between values is eaten by the tokener; what is
		 * left is a value in progress or nothing. */
		int ms = 0;
		if (deadline_ns) {
			uint64_t now = lm_now_ns();
			if (now >= deadline_ns)
				return -ETIMEDOUT;
			ms = (int)((deadline_ns - now + 999999) / 1000000);
		}
		struct pollfd p = {.fd = l->fd, .events = POLLIN};
		int r = poll(&p, 1, ms);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0) {
			if (!deadline_ns)
				return -ETIMEDOUT;
			continue;
		}
		ssize_t n = fill(l);
		if (n == -EAGAIN || n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -ECONNRESET;
	}
}

void lm_jl_skip_line(struct lm_jl *l)
{
	json_tokener_reset(l->tok);
	l->fed = 0;
	l->skip_line = true;
}

int lm_jl_write(int fd, json_object *o, int pass_fd)
{
	size_t len;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	if (!s)
		return -ENOMEM;
	struct iovec iov[2] = {{(void *)s, len}, {"\r\n", 2}};
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	if (pass_fd >= 0) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	while (iov[0].iov_len + iov[1].iov_len) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		/* The fd went with the first byte; the rest goes plain. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		for (int i = 0; i < 2 && n > 0; i++) {
			size_t k = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;
			iov[i].iov_base = (char *)iov[i].iov_base + k;
			iov[i].iov_len -= k;
			n -= (ssize_t)k;
		}
	}
	return 0;
}
