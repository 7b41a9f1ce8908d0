/* SPDX-License-Identifier: MIT */
/* CRC32C: standard check value, agreement with a bitwise reference,
 * chaining at every split point, and lengths beyond INT_MAX. */
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "t.h"
#include "util/util.h"

/* Bit-at-a-time CRC32C, reflected polynomial 0x82F63B78. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

int main(void)
{
	static uint8_t buf[4099];
	uint64_t x = 88172645463325252ull;

	CHECK(lm_crc32c(0, "123456789", 9) == 0xe3069283u);
	CHECK(lm_crc32c(0, NULL, 0) == 0);
	CHECK(lm_crc32c(0x12345678u, buf, 0) == 0x12345678u);
	/* RFC 3720 B.4: 32 bytes of zeros, of 0xff. */
	memset(buf, 0, 32);
	CHECK(lm_crc32c(0, buf, 32) == 0x8a9136aau);
	memset(buf, 0xff, 32);
	CHECK(lm_crc32c(0, buf, 32) == 0x62a8ab43u);

	for (size_t i = 0; i < sizeof(buf); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
	/* Every length up to 300 and a few long ones, at odd offsets. */
	for (size_t len = 0; len <= 300; len++)
		CHECKF(lm_crc32c(0, buf + 3, len) == crc_ref(0, buf + 3, len), "len %zu", len);
	CHECK(lm_crc32c(0, buf, sizeof(buf)) == crc_ref(0, buf, sizeof(buf)));
	CHECK(lm_crc32c(0xdeadbeef, buf, 1000) == crc_ref(0xdeadbeef, buf, 1000));

	/* Chaining: any split gives the whole. */
	uint32_t whole = lm_crc32c(0, buf, sizeof(buf));

	for (size_t s = 0; s <= sizeof(buf); s++) {
		uint32_t a = lm_crc32c(0, buf, s);

		CHECKF(lm_crc32c(a, buf + s, sizeof(buf) - s) == whole, "split %zu", s);
	}
	/* "1234" + "56789" */
	CHECK(lm_crc32c(lm_crc32c(0, "1234", 4), "56789", 5) == 0xe3069283u);

	/*
	 * Beyond INT_MAX (the ISA-L length type) and UINT32_MAX (where a plain
	 * cast would silently drop the high bits): read-only anonymous memory
	 * is all zero and costs no RAM.  Compare one call against chaining
	 * over pieces that do not line up with any internal chunking, with
	 * non-zero bytes placed around both boundaries.
	 */
	size_t big = (size_t)UINT32_MAX + 4100;
	uint8_t *m = mmap(NULL, big, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (m == MAP_FAILED) {
		fprintf(stderr, "large-buffer check skipped: mmap failed\n");
	} else {
		m[0] = 1;
		m[(size_t)INT_MAX - 1] = 2;
		m[(size_t)INT_MAX] = 3;
		m[(size_t)INT_MAX + 1] = 4;
		m[(size_t)UINT32_MAX] = 7;
		m[(size_t)UINT32_MAX + 1] = 8;
		m[big - 1] = 5;
		uint32_t one = lm_crc32c(0, m, big), chained = 0;
		size_t piece = 300000007, off = 0;

		while (off < big) {
			size_t n = big - off < piece ? big - off : piece;

			chained = lm_crc32c(chained, m + off, n);
			off += n;
		}
		CHECK(one == chained);
		/* Bytes past 4 GiB count. */
		m[big - 1] = 6;
		CHECK(lm_crc32c(0, m, big) != one);
		m[big - 1] = 5;
		m[(size_t)UINT32_MAX + 2] = 9;
		CHECK(lm_crc32c(0, m, big) != one);
		munmap(m, big);
	}
	T_DONE();
}
