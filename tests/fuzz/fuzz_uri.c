/* SPDX-License-Identifier: MIT */
/*
 * URIs as the user writes them (lm_uri_parse).
 * Input: the URI's text (a NUL ends it early).
 * Holds: a URI is refused with a reason, or it gives a family, a host and
 * a port of 1..5 digits up to 65535, or a path, each NUL-terminated in its
 * field; a host is name characters (IPv4, a name) or, in brackets, an IPv6
 * address with maybe a zone; writing the address back as a URI and parsing
 * that gives the same address.
 */
#include <errno.h>
#include <sys/socket.h>

#include "core/internal.h"
#include "fuzz.h"

static void check_port(const char *port)
{
	size_t n = strnlen(port, 16);
	FUZZ_ASSERT(n >= 1 && n <= 5);
	unsigned long v = 0;
	for (size_t i = 0; i < n; i++) {
		FUZZ_ASSERT(port[i] >= '0' && port[i] <= '9');
		v = v * 10 + (unsigned long)(port[i] - '0');
	}
	FUZZ_ASSERT(v <= 65535);
}

static void check_host(const char *host, bool v6)
{
	static const char name[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";
	const char *zone = v6 ? strchr(host, '%') : NULL;
	size_t addr = zone ? (size_t)(zone - host) : strlen(host);
	FUZZ_ASSERT(strspn(host, v6 ? "0123456789abcdefABCDEF:." : name) == addr);
	FUZZ_ASSERT(!v6 || (addr && memchr(host, ':', addr)));
	FUZZ_ASSERT(!zone || (zone[1] && strspn(zone + 1, name) == strlen(zone + 1)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *uri = fuzz_alloc(size + 1);
	memcpy(uri, data, size);
	uri[size] = 0;
	struct lm_addr a, b;
	char err[128] = "", text[512];
	int r = lm_uri_parse(uri, &a, err, sizeof(err));

	FUZZ_ASSERT(r == 0 || (r == -EINVAL && err[0] && strnlen(err, sizeof(err)) < sizeof(err)));
	if (r == 0) {
		FUZZ_ASSERT(a.family == AF_UNIX || a.family == AF_INET || a.family == AF_INET6);
		if (a.family == AF_UNIX) {
			size_t n = strnlen(a.path, sizeof(a.path));
			FUZZ_ASSERT(n >= 1 && n < sizeof(a.path));
			snprintf(text, sizeof(text), "unix:%s", a.path);
		} else {
			FUZZ_ASSERT(strnlen(a.host, sizeof(a.host)) < sizeof(a.host));
			check_port(a.port);
			bool v6 = a.family == AF_INET6;
			check_host(a.host, v6);
			snprintf(text, sizeof(text), "tcp:%s%s%s:%s", v6 ? "[" : "", a.host,
				 v6 ? "]" : "", a.port);
		}
		FUZZ_ASSERT(lm_uri_parse(text, &b, err, sizeof(err)) == 0);
		FUZZ_ASSERT(!memcmp(&a, &b, sizeof(a)));
	}
	free(uri);
	return 0;
}
