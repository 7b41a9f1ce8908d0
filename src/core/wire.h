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
#include "util/pagehash.h"


#define LM_WIRE_VERSION 1

/* ---- hello: first bytes of every connection ---------------------------- */
#define LM_HELLO_MAGIC 0x4c4c484du /* "MHLL" on the wire: 'M','H','L','L' */
#define LM_HELLO_SIZE 40u
/* hello flags: a connection made after the migration began */
#define LM_HELLO_RECONNECT 0x0001u /* replaces multifd channel `channel` (channel-recovery) */
#define LM_HELLO_RESOLVE 0x0002u   /* channel 0: settles an in-doubt switchover */
#define LM_HELLO_FLAGS_KNOWN (LM_HELLO_RECONNECT | LM_HELLO_RESOLVE)

struct lm_hello {
	uint16_t version;
	uint16_t channel;   /* 0 = main channel, 1..nchannels = multifd */
	uint16_t nchannels; /* multifd channels in this session */
	uint16_t flags;     /* LM_HELLO_* */
	uint8_t uuid[16];   /* session id: every connection carries the same */
};

void lm_hello_encode(const struct lm_hello *h, uint8_t out[LM_HELLO_SIZE]);
/* Validates magic, version, reserved fields, channel range, CRC.
 * Returns 0 or -EPROTO with a reason in *why. */
int lm_hello_decode(const uint8_t in[LM_HELLO_SIZE], struct lm_hello *h, const char **why);

/*
 * Answer to a RECONNECT hello (channel-recovery), 40 bytes, destination to
 * source on the new connection: where the channel's receiver stands, so the
 * sender knows what of its current pass to send again.
 */
#define LM_ANSWER_MAGIC 0x4e41524cu /* "LRAN" on the wire */
#define LM_ANSWER_SIZE 40u
struct lm_answer {
	uint32_t iteration; /* the first pass whose SYNC the receiver has not read */
	uint64_t seq;       /* packets it has read whole: the next packet's seq */
	uint64_t normal;    /* pages it has received on this channel, all passes */
	uint64_t zero;
};
void lm_answer_encode(const struct lm_answer *a, uint8_t out[LM_ANSWER_SIZE]);
/* Validates magic, reserved bytes, pass >= 1 and the CRC.  0 or -EPROTO
 * with a reason in *why. */
int lm_answer_decode(const uint8_t in[LM_ANSWER_SIZE], struct lm_answer *a, const char **why);

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
#define LM_MSG_MAX_PAYLOAD (64u * 1024) /* the header's len never exceeds this */

#define LM_MAX_BLOCKS 64     /* RAM blocks in PARAMS */
#define LM_NAME_MAX 64       /* a block name with its NUL: 1..63 bytes on the wire */
#define LM_ERROR_TEXT_MAX 511 /* ERROR text bytes */
/* Device state (DEVSTATE): what a source puts in one message (a receiver
 * takes up to LM_MSG_MAX_PAYLOAD), and the most a destination accepts in a
 * session.  A QEMU's device state with
 * x-ignore-shared is a few hundred KiB plus its non-shared RAM (ROMs, video
 * memory: tens of MiB). */
#define LM_DEVSTATE_CHUNK (32u * 1024)
#define LM_DEVSTATE_MAX (1ull << 30)
/* No body the encoder writes is larger (a DEVSTATE may fill a message;
 * PARAMS with every block at its longest name is 4.6 KiB): buffers for
 * lm_msg_encode() hold the header and this. */
#define LM_MSG_PARAMS_MAX (16u + LM_MAX_BLOCKS * (1u + (LM_NAME_MAX - 1u) + 8u))
#define LM_MSG_BODY_MAX LM_MSG_MAX_PAYLOAD
_Static_assert(LM_MSG_PARAMS_MAX <= LM_MSG_BODY_MAX, "PARAMS fits the encoder's buffers");

enum lm_msg_type {
	LM_MSG_PARAMS = 1,   /* src->dst: parameters + RAM block list */
	LM_MSG_READY = 2,    /* dst->src: RAM allocated, receivers running */
	LM_MSG_ITER = 3,     /* src->dst: pass k ended on every channel (u32 k) */
	LM_MSG_COMPLETE = 4, /* src->dst: final pass, page counts, digest */
	LM_MSG_RESULT = 5,   /* dst->src: OK/FAIL, digest, destination stats */
	LM_MSG_ERROR = 6,    /* either way: errno + text; the sender gives up */
	LM_MSG_CANCEL = 7,   /* src->dst: discard everything */
	LM_MSG_ITER_ACK = 8, /* dst->src: every receiver has passed SYNC k (u32 k) */
	LM_MSG_HEARTBEAT = 9, /* either way, after PARAMS: "still here" (see liveness.c) */
	LM_MSG_COMMIT = 10,  /* src->dst, after RESULT OK: the source stops for good */
	LM_MSG_OUTCOME = 11, /* dst->src: the destination's final word (u8 committed) */
	LM_MSG_DEVSTATE = 12, /* src->dst, after RESULT OK: the next bytes of device state */
	LM_MSG_DEVSTATE_END = 13, /* src->dst: device state ends (u64 total bytes) */
	LM_MSG_DEVSTATE_LOADED = 14, /* dst->src: the embedder loaded it (u64 total bytes) */
	LM_MSG_MAX
};

struct lm_msg_hdr {
	uint16_t type;
	uint16_t flags; /* reserved, 0 */
	uint32_t len;   /* payload bytes, <= LM_MSG_MAX_PAYLOAD */
	uint32_t crc;   /* CRC32C over header (crc zeroed) and payload */
};
int lm_msg_hdr_decode(const uint8_t in[LM_MSG_HDR_SIZE], struct lm_msg_hdr *h,
		      const char **why);
int lm_msg_check_crc(const uint8_t hdr[LM_MSG_HDR_SIZE], const void *payload, uint32_t len);

/*
 * A control message, host side: its type and the body that type carries
 * (READY, CANCEL, HEARTBEAT and COMMIT carry none).  Page size and reserved fields are not
 * here: the encoder writes them, the decoder checks them.
 */
struct lm_msg_block {
	char name[LM_NAME_MAX]; /* NUL-terminated, 1..LM_NAME_MAX-1 bytes */
	uint64_t size;          /* bytes: > 0, a page multiple, < 2^32 pages */
};
#define LM_PARAMS_RECOVERY 0x0001u /* PARAMS flags: channel-recovery is on */
#define LM_PARAMS_DEVSTATE 0x0002u /* PARAMS flags: device state follows RESULT OK */
struct lm_msg_params {
	uint16_t channels;
	uint8_t method;         /* LM_METHOD_* or LM_METHOD_AUTO: the decoder does */
	uint8_t level;          /* not check these two against the codecs */
	bool zero_detect;
	bool channel_recovery;  /* flags bit 0 */
	bool device_state;      /* flags bit 1 */
	uint32_t nblocks;       /* 1..LM_MAX_BLOCKS, distinct names */
	struct lm_msg_block blocks[LM_MAX_BLOCKS];
};
struct lm_msg_complete {
	uint32_t iteration;     /* the final pass, >= 1 */
	struct lm_h128 digest;  /* of the source's image */
	uint64_t normal, zero;  /* pages sent, over every pass */
};
struct lm_msg_result {
	bool ok;                /* the images match */
	uint64_t cpu_us;        /* destination CPU time, microseconds */
	struct lm_h128 digest;  /* of the destination's image */
};
struct lm_msg_error {
	int code;               /* negative errno; -EPROTO when the peer's is not one */
	char text[LM_ERROR_TEXT_MAX + 1]; /* NUL-terminated */
};
struct lm_msg {
	uint16_t type;          /* enum lm_msg_type */
	union {
		struct lm_msg_params params;
		uint32_t iteration; /* ITER, ITER_ACK: pass number, >= 1 */
		struct lm_msg_complete complete;
		struct lm_msg_result result;
		struct lm_msg_error error;
		bool committed;     /* OUTCOME: 1 = the destination runs the guest,
				     * 0 = it discarded its image */
		struct {            /* DEVSTATE: 1..LM_MSG_MAX_PAYLOAD bytes; data
				     * points into the decoder's input (borrowed) */
			const uint8_t *data;
			uint32_t len;
		} devstate;
		uint64_t devstate_bytes; /* DEVSTATE_END, DEVSTATE_LOADED: the total,
					  * 1..LM_DEVSTATE_MAX */
	};
};

/* Writes m, header and body, into out[0..cap).  An ERROR's text is cut at
 * LM_ERROR_TEXT_MAX bytes.  Returns the bytes written, -EINVAL for an
 * unknown type, more than LM_MAX_BLOCKS blocks or a DEVSTATE of 0 or more
 * than LM_MSG_MAX_PAYLOAD bytes, -EMSGSIZE when cap is
 * smaller than the message (LM_MSG_HDR_SIZE + LM_MSG_BODY_MAX always fits). */
int lm_msg_encode(const struct lm_msg *m, uint8_t *out, size_t cap);
/* Decodes and validates the body of a message of the given type (from its
 * header, already checked) from in[0..len): everything the bytes alone can
 * tell, nothing that needs a session.  Pure: no globals, reads only
 * in[0..len).  Returns 0, or -EPROTO with a reason in *why. */
int lm_msg_decode(uint16_t type, const uint8_t *in, size_t len, struct lm_msg *m,
		  const char **why);

#endif
