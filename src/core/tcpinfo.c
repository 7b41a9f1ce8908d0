/* SPDX-License-Identifier: MIT */
/*
 * Bytes the peer has acknowledged on a TCP socket (tcpi_bytes_acked,
 * Linux 4.1+).  On its own file: <linux/tcp.h> has the field, glibc's
 * <netinet/tcp.h> (which transport.c uses) does not, and the two clash.
 */
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

int64_t lm_sock_acked(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ||
	    len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked))
		return -1; /* not TCP (a Unix socket), or a kernel without the field */
	return (int64_t)ti.tcpi_bytes_acked;
}
