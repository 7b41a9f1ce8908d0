/* SPDX-License-Identifier: MIT */
/*
 * CRC32C (Castagnoli) through ISA-L.  crc32_iscsi() neither pre- nor
 * post-inverts: it takes and returns the raw shift register.  The standard
 * CRC32C (check value 0xE3069283 for "123456789") starts the register at
 * ~0 and inverts the result, so we invert on the way in and on the way out.
 * That also makes chaining work: feeding a previous result back as crc
 * restores the register it ended with.
 */
#include <limits.h>

#include <isa-l/crc.h>

#include "util/util.h"

/* crc32_iscsi takes an int length; stay well inside it. */
#define LM_CRC_CHUNK ((size_t)1 << 30)

uint32_t lm_crc32c(uint32_t crc, const void *buf, size_t len)
{
	/* ISA-L's prototype is not const-correct; it does not write the buffer. */
	unsigned char *p = (unsigned char *)(uintptr_t)buf;
	unsigned int reg = ~crc;

	while (len > 0) {
		size_t n = len < LM_CRC_CHUNK ? len : LM_CRC_CHUNK;

		reg = crc32_iscsi(p, (int)n, reg);
		p += n;
		len -= n;
	}
	return ~reg;
}
