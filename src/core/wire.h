/* SPDX-License-Identifier: MIT */
/*
 * livemig wire format, version 1.  Described for humans in
 * docs/wire-format.md; this file is the reference.  Everything is
 * little-endian; structs here are host-side and (de)serialised field by
 * field, never cast from the socket buffer.
 */
#ifndef LM_WIRE_H
#define LM_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/method.h"
#include "util/le.h"
#include "util/page.h"


#define LM_WIRE_VERSION 1

/* ---- hello: first bytes of every connection ---------------------------- */
#define LM_HELLO_MAGIC 0x4c4c484du /* "MHLL" on the wire: 'M','H','L','L' */
#define LM_HELLO_SIZE 40u

struct lm_hello {
	uint16_t version;
	uint16_t channel;   /* 0 = main channel, 1..nchannels = multifd */
	uint16_t nchannels; /* multifd channels in this session */
	uint16_t flags;     /* reserved, 0 */
	uint8_t uuid[16];   /* session id: every connection carries the same */
};

void lm_hello_encode(const struct lm_hello *h, uint8_t out[LM_HELLO_SIZE]);
/* Validates magic, version, reserved fields, channel range, CRC.
 * Returns 0 or -EPROTO with a reason in *why. */
int lm_hello_decode(const uint8_t in[LM_HELLO_SIZE], struct lm_hello *h, const char **why);

/* ---- multifd packet ---------------------------------------------------- */
#define LM_PACKET_MAGIC 0x4b504d4cu /* "LMPK" */
#define LM_PACKET_HDR_SIZE 64u

#define LM_PKT_FLAG_SYNC 0x0001u  /* end of a pass on this channel */
#define LM_PKT_FLAG_FINAL 0x0002u /* with SYNC: the last packet of the channel */
#define LM_PKT_FLAGS_KNOWN (LM_PKT_FLAG_SYNC | LM_PKT_FLAG_FINAL)

/*
 * Header, then (normal + zero) u32 page indices (normal pages first), then
 * payload_len bytes: the normal pages, raw (method none: exactly
 * normal * LM_PAGE_SIZE) or compressed.  crc is CRC32C over, in this order,
 * the payload, the indices and the header with the crc field zeroed: payload
 * first so that each side can checksum a page in the same visit that zero-
 * checks and hashes it, before the indices are complete.
 */
struct lm_packet_hdr {
	uint8_t version;
	uint8_t method;
	uint16_t flags;
	uint16_t channel;
	uint32_t block;       /* RAM block index */
	uint64_t seq;         /* per channel, from 0, no gaps */
	uint32_t iteration;   /* pass number, from 1 */
	uint32_t normal;      /* pages with content */
	uint32_t zero;        /* zero pages: indices only */
	uint32_t payload_len;
	uint32_t crc;
};

void lm_packet_encode(const struct lm_packet_hdr *h, uint8_t out[LM_PACKET_HDR_SIZE]);
/* Parses and checks what a header alone can tell (magic, version, reserved
 * bytes, flags, counts <= LM_PACKET_PAGES, SYNC packets empty).  The caller
 * checks the fields against its session (method, channel, block, seq,
 * payload bound) with lm_packet_check(). */
int lm_packet_decode(const uint8_t in[LM_PACKET_HDR_SIZE], struct lm_packet_hdr *h,
		     const char **why);

struct lm_packet_limits {
	uint32_t methods;            /* 1 << LM_METHOD_* for each one allowed */
	uint16_t channel;
	uint64_t next_seq;
	uint32_t nblocks;
	const uint64_t *block_pages; /* pages of each block */
	size_t max_payload;          /* codec bound for normal pages */
};
int lm_packet_check(const struct lm_packet_hdr *h, const struct lm_packet_limits *l,
		    const char **why);
/* Page indices must be < block pages. */
int lm_packet_check_indices(const uint32_t *idx, uint32_t n, uint64_t block_pages,
			    const char **why);

/* ---- main channel messages --------------------------------------------- */
#define LM_MSG_MAGIC 0x544d4c4cu /* "LLMT" */
#define LM_MSG_HDR_SIZE 16u
#define LM_MSG_MAX_PAYLOAD (64u * 1024) /* no control message is larger */

enum lm_msg_type {
	LM_MSG_PARAMS = 1,   /* src->dst: parameters + RAM block list */
	LM_MSG_READY = 2,    /* dst->src: RAM allocated, receivers running */
	LM_MSG_ITER = 3,     /* src->dst: pass k ended on every channel (u32 k) */
	LM_MSG_COMPLETE = 4, /* src->dst: final pass, page counts, digest */
	LM_MSG_RESULT = 5,   /* dst->src: OK/FAIL, digest, destination stats */
	LM_MSG_ERROR = 6,    /* either way: errno + text; the sender gives up */
	LM_MSG_CANCEL = 7,   /* src->dst: discard everything */
	LM_MSG_ITER_ACK = 8, /* dst->src: every receiver has passed SYNC k (u32 k) */
	LM_MSG_MAX
};

struct lm_msg_hdr {
	uint16_t type;
	uint16_t flags; /* reserved, 0 */
	uint32_t len;   /* payload bytes, <= LM_MSG_MAX_PAYLOAD */
	uint32_t crc;   /* CRC32C over header (crc zeroed) and payload */
};
void lm_msg_encode(uint16_t type, const void *payload, uint32_t len,
		   uint8_t out[LM_MSG_HDR_SIZE]);
int lm_msg_decode(const uint8_t in[LM_MSG_HDR_SIZE], struct lm_msg_hdr *h, const char **why);
int lm_msg_check_crc(const uint8_t hdr[LM_MSG_HDR_SIZE], const void *payload, uint32_t len);

#endif
