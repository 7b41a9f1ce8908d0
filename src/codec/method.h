/* SPDX-License-Identifier: MIT */
/* Compression methods: the packet header's method field (wire-format.md). */
#ifndef LM_METHOD_H
#define LM_METHOD_H

enum lm_method {
	LM_METHOD_NONE = 0,
	LM_METHOD_ZLIB = 1,
	LM_METHOD_ZSTD = 2,
	LM_METHOD_LZ4 = 3,    /* per page: LZ4 block */
	LM_METHOD_QPL = 4,    /* per page: raw deflate */
	LM_METHOD_QATZIP = 5, /* per packet: raw deflate */
	LM_METHOD_UADK = 6,   /* per page: zlib format */
	LM_METHOD_MAX /* first unknown value */
};

/* The auto codec's id (src/codec/auto.c): parameters only, never in a
 * packet; each packet of an "auto" session names the method it was made
 * with. */
#define LM_METHOD_AUTO 0x80

#endif
