/* SPDX-License-Identifier: MIT */
/* Wire format: round trips and every validation failure. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/wire.h"
#include "t.h"
#include "util/util.h"

static struct lm_packet_hdr good_pkt(void)
{
	return (struct lm_packet_hdr){.version = LM_WIRE_VERSION,
				      .method = LM_METHOD_NONE,
				      .channel = 2,
				      .block = 1,
				      .seq = 77,
				      .iteration = 3,
				      .normal = 5,
				      .zero = 3,
				      .payload_len = 5 * LM_PAGE_SIZE,
				      .crc = 0xdeadbeef};
}

static const uint64_t block_pages[2] = {100, 1000};
static const struct lm_packet_limits limits = {.methods = 1u << LM_METHOD_NONE,
					       .channel = 2,
					       .next_seq = 77,
					       .nblocks = 2,
					       .block_pages = block_pages,
					       .max_payload = 600000};

/* Encodes h, applies a byte patch, decodes + checks; returns the result. */
static int try_pkt(struct lm_packet_hdr h, int off, int byte, const char **why)
{
	uint8_t buf[LM_PACKET_HDR_SIZE];
	struct lm_packet_hdr out;
	lm_packet_encode(&h, buf);
	if (off >= 0)
		buf[off] = (uint8_t)byte;
	int r = lm_packet_decode(buf, &out, why);
	if (!r)
		r = lm_packet_check(&out, &limits, why);
	return r;
}

static void test_packet(void)
{
	const char *why = NULL;
	uint8_t buf[LM_PACKET_HDR_SIZE];
	struct lm_packet_hdr h = good_pkt(), out;

	lm_packet_encode(&h, buf);
	CHECK(lm_packet_decode(buf, &out, &why) == 0);
	CHECK(!memcmp(&h, &out, sizeof(h)));
	CHECK(lm_packet_check(&out, &limits, &why) == 0);
	/* Little-endian on the wire whatever the host. */
	CHECK(buf[0] == 'L' && buf[1] == 'M' && buf[2] == 'P' && buf[3] == 'K');
	CHECK(buf[16] == 77 && buf[17] == 0);

	CHECK(try_pkt(h, 0, 'X', &why) == -EPROTO);  /* magic */
	CHECK(try_pkt(h, 4, 9, &why) == -EPROTO);    /* version */
	CHECK(try_pkt(h, 10, 1, &why) == -EPROTO);   /* reserved u16 */
	CHECK(try_pkt(h, 50, 1, &why) == -EPROTO);   /* reserved tail */
	CHECK(try_pkt(h, 6, 0x80, &why) == -EPROTO); /* unknown flag */
	CHECK(try_pkt(h, 6, 0x02, &why) == -EPROTO); /* FINAL without SYNC */
	CHECK(try_pkt(h, 5, LM_METHOD_MAX, &why) == -EPROTO);

	struct lm_packet_hdr b = h;
	b.normal = 129;
	b.zero = 0;
	CHECK(try_pkt(b, -1, 0, &why) == -EPROTO); /* too many pages */
	b = h;
	b.normal = 100;
	b.zero = 29;
	CHECK(try_pkt(b, -1, 0, &why) == -EPROTO);
	b = h;
	b.zero = 0xffffffffu; /* overflow of normal + zero must not pass */
	CHECK(try_pkt(b, -1, 0, &why) == -EPROTO);
	b = h;
	b.iteration = 0;
	CHECK(try_pkt(b, -1, 0, &why) == -EPROTO);
	b = h;
	b.flags = LM_PKT_FLAG_SYNC; /* SYNC with pages */
	CHECK(try_pkt(b, -1, 0, &why) == -EPROTO);
	b = h;
	b.normal = 0;
	CHECK(try_pkt(b, -1, 0, &why) == -EPROTO); /* payload without pages */

	/* Session checks. */
	b = h;
	b.method = LM_METHOD_ZSTD;
	CHECK(try_pkt(b, -1, 0, &why) == -EPROTO); /* not the negotiated method */
	b = h;
	b.channel = 3;
	CHECK(try_pkt(b, -1, 0, &why) == -EPROTO);
	b = h;
	b.seq = 78;
	CHECK(try_pkt(b, -1, 0, &why) == -EPROTO);
	b = h;
	b.block = 2;
	CHECK(try_pkt(b, -1, 0, &why) == -EPROTO);
	b = h;
	b.payload_len = 5 * LM_PAGE_SIZE - 1; /* lying length */
	CHECK(try_pkt(b, -1, 0, &why) == -EPROTO);
	b = h;
	b.payload_len = 6 * LM_PAGE_SIZE;
	CHECK(try_pkt(b, -1, 0, &why) == -EPROTO);

	/* A good SYNC and a good FINAL SYNC. */
	b = (struct lm_packet_hdr){.version = 1, .channel = 2, .seq = 77, .iteration = 1,
				   .flags = LM_PKT_FLAG_SYNC | LM_PKT_FLAG_FINAL};
	CHECK(try_pkt(b, -1, 0, &why) == 0);

	/* Indices. */
	uint32_t idx[3] = {0, 999, 5};
	CHECK(lm_packet_check_indices(idx, 3, 1000, &why) == 0);
	idx[1] = 1000;
	CHECK(lm_packet_check_indices(idx, 3, 1000, &why) == -EPROTO);
}

static void test_hello(void)
{
	struct lm_hello h = {.version = LM_WIRE_VERSION, .channel = 3, .nchannels = 4}, out;
	uint8_t buf[LM_HELLO_SIZE];
	const char *why;
	memset(h.uuid, 0xab, sizeof(h.uuid));
	lm_hello_encode(&h, buf);
	CHECK(lm_hello_decode(buf, &out, &why) == 0);
	CHECK(out.channel == 3 && out.nchannels == 4 && !memcmp(out.uuid, h.uuid, 16));

	for (unsigned i = 0; i < LM_HELLO_SIZE; i++) {
		uint8_t bad[LM_HELLO_SIZE];
		memcpy(bad, buf, sizeof(bad));
		bad[i] ^= 0x40; /* any flipped bit: magic or checksum catches it */
		CHECKF(lm_hello_decode(bad, &out, &why) == -EPROTO, "byte %u", i);
	}
	struct lm_hello v = h;
	v.version = 2;
	lm_hello_encode(&v, buf);
	CHECK(lm_hello_decode(buf, &out, &why) == -EPROTO);
	v = h;
	v.channel = 5; /* > nchannels */
	lm_hello_encode(&v, buf);
	CHECK(lm_hello_decode(buf, &out, &why) == -EPROTO);
	v = h;
	v.nchannels = 0;
	v.channel = 0;
	lm_hello_encode(&v, buf);
	CHECK(lm_hello_decode(buf, &out, &why) == -EPROTO);

	/* Flags: RECONNECT names a multifd channel, RESOLVE the main one;
	 * no other bit, and never both. */
	v = h;
	v.flags = LM_HELLO_RECONNECT;
	lm_hello_encode(&v, buf);
	CHECK(lm_hello_decode(buf, &out, &why) == 0 && out.flags == LM_HELLO_RECONNECT);
	v.channel = 0;
	lm_hello_encode(&v, buf);
	CHECK(lm_hello_decode(buf, &out, &why) == -EPROTO);
	v.flags = LM_HELLO_RESOLVE;
	lm_hello_encode(&v, buf);
	CHECK(lm_hello_decode(buf, &out, &why) == 0 && out.flags == LM_HELLO_RESOLVE);
	v.channel = 1;
	lm_hello_encode(&v, buf);
	CHECK(lm_hello_decode(buf, &out, &why) == -EPROTO);
	v.flags = LM_HELLO_RECONNECT | LM_HELLO_RESOLVE;
	lm_hello_encode(&v, buf);
	CHECK(lm_hello_decode(buf, &out, &why) == -EPROTO);
	v.flags = 0x0004;
	lm_hello_encode(&v, buf);
	CHECK(lm_hello_decode(buf, &out, &why) == -EPROTO);
}

/* The answer to a RECONNECT hello. */
static void test_answer(void)
{
	struct lm_answer a = {.iteration = 3, .seq = 0x0102030405060708ull, .normal = 1000,
			      .zero = 24},
			 out;
	uint8_t buf[LM_ANSWER_SIZE];
	const char *why;
	lm_answer_encode(&a, buf);
	CHECK(buf[0] == 'L' && buf[1] == 'R' && buf[2] == 'A' && buf[3] == 'N');
	CHECK(buf[4] == 3 && buf[8] == 8 && buf[15] == 1);
	CHECK(lm_answer_decode(buf, &out, &why) == 0);
	CHECK(out.iteration == 3 && out.seq == a.seq && out.normal == 1000 && out.zero == 24);
	for (unsigned i = 0; i < LM_ANSWER_SIZE; i++) {
		uint8_t bad[LM_ANSWER_SIZE];
		memcpy(bad, buf, sizeof(bad));
		bad[i] ^= 0x10;
		CHECKF(lm_answer_decode(bad, &out, &why) == -EPROTO, "byte %u", i);
	}
	a.iteration = 0;
	lm_answer_encode(&a, buf);
	CHECK(lm_answer_decode(buf, &out, &why) == -EPROTO && strstr(why, "pass 0"));
	a.iteration = 1;
	lm_answer_encode(&a, buf);
	buf[33] = 1; /* reserved, with a good checksum */
	lm_le32(buf + 36, lm_crc32c(0, buf, 36));
	CHECK(lm_answer_decode(buf, &out, &why) == -EPROTO && strstr(why, "reserved"));
}

static void test_msg(void)
{
	uint8_t buf[LM_MSG_HDR_SIZE + 4], *payload = buf + LM_MSG_HDR_SIZE;
	struct lm_msg_hdr h;
	const char *why;
	CHECK(lm_msg_encode(&(struct lm_msg){.type = LM_MSG_ITER, .iteration = 0x04030201},
			    buf, sizeof(buf)) == (int)sizeof(buf));
	CHECK(buf[0] == 'L' && buf[1] == 'L' && buf[2] == 'M' && buf[3] == 'T');
	CHECK(lm_msg_hdr_decode(buf, &h, &why) == 0);
	CHECK(h.type == LM_MSG_ITER && h.len == 4);
	CHECK(payload[0] == 1 && payload[3] == 4);
	CHECK(lm_msg_check_crc(buf, payload, 4) == 0);
	payload[3] ^= 1;
	CHECK(lm_msg_check_crc(buf, payload, 4) == -EPROTO);
	payload[3] ^= 1;

	uint8_t bad[LM_MSG_HDR_SIZE];
	memcpy(bad, buf, sizeof(bad));
	bad[4] = 0x7f; /* type */
	CHECK(lm_msg_hdr_decode(bad, &h, &why) == -EPROTO);
	memcpy(bad, buf, sizeof(bad));
	bad[11] = 0x7f; /* length beyond the maximum */
	CHECK(lm_msg_hdr_decode(bad, &h, &why) == -EPROTO);
	memcpy(bad, buf, sizeof(bad));
	bad[0] ^= 1;
	CHECK(lm_msg_hdr_decode(bad, &h, &why) == -EPROTO);
	memcpy(bad, buf, sizeof(bad));
	bad[6] = 1; /* flags */
	CHECK(lm_msg_hdr_decode(bad, &h, &why) == -EPROTO);
}

/* ---- control message bodies ---------------------------------------------- */
static uint8_t mbuf[LM_MSG_HDR_SIZE + LM_MSG_BODY_MAX + 8];

/* Encodes m; returns its body length, or -1 when encoding failed. */
static int body_of(const struct lm_msg *m)
{
	int n = lm_msg_encode(m, mbuf, sizeof(mbuf));
	if (n < (int)LM_MSG_HDR_SIZE)
		return -1;
	struct lm_msg_hdr h;
	const char *why;
	if (lm_msg_hdr_decode(mbuf, &h, &why) || h.type != m->type ||
	    h.len != (uint32_t)n - LM_MSG_HDR_SIZE ||
	    lm_msg_check_crc(mbuf, mbuf + LM_MSG_HDR_SIZE, h.len))
		return -1;
	return n - (int)LM_MSG_HDR_SIZE;
}
#define BODY (mbuf + LM_MSG_HDR_SIZE)

/* Decodes body[0..len) as type: 0 when it is accepted, 1 when it is
 * rejected for a reason containing want, -1 otherwise (with a note). */
static int rejects(uint16_t type, const uint8_t *body, size_t len, const char *want)
{
	struct lm_msg m;
	const char *why = NULL;
	int r = lm_msg_decode(type, body, len, &m, &why);
	if (!r)
		return 0;
	if (r == -EPROTO && why && strstr(why, want))
		return 1;
	fprintf(stderr, "type %u: rejected with %d (%s), wanted '%s'\n", type, r,
		why ? why : "no reason", want);
	return -1;
}

/* Encodes m and decodes it back into out; false (with a note) when either
 * step fails.  The caller compares the fields. */
static bool round_trip(const struct lm_msg *m, struct lm_msg *out)
{
	const char *why = NULL;
	int n = body_of(m);
	if (n < 0 || lm_msg_decode(m->type, BODY, (size_t)n, out, &why)) {
		fprintf(stderr, "type %u: %s\n", m->type, why ? why : "encode failed");
		return false;
	}
	return out->type == m->type;
}

static bool params_equal(const struct lm_msg_params *a, const struct lm_msg_params *b)
{
	if (a->channels != b->channels || a->method != b->method || a->level != b->level ||
	    a->zero_detect != b->zero_detect || a->channel_recovery != b->channel_recovery ||
	    a->device_state != b->device_state ||
	    a->nblocks != b->nblocks)
		return false;
	for (uint32_t i = 0; i < a->nblocks; i++)
		if (strcmp(a->blocks[i].name, b->blocks[i].name) ||
		    a->blocks[i].size != b->blocks[i].size)
			return false;
	return true;
}

static struct lm_msg good_params(void)
{
	struct lm_msg m = {.type = LM_MSG_PARAMS,
			   .params = {.channels = 2, .method = LM_METHOD_ZSTD, .level = 3,
				      .zero_detect = true, .nblocks = 2}};
	strcpy(m.params.blocks[0].name, "pc.ram");
	m.params.blocks[0].size = 1 << 20;
	strcpy(m.params.blocks[1].name, "vga.vram");
	m.params.blocks[1].size = 16 * LM_PAGE_SIZE;
	return m;
}

static void test_params(void)
{
	struct lm_msg m = good_params(), out;
	const char *why;
	CHECK(round_trip(&m, &out));
	CHECK(params_equal(&out.params, &m.params));

	/* The bytes docs/wire-format.md (and lmtest.py) describe. */
	static const uint8_t wire[] = {
		2, 0, LM_METHOD_ZSTD, 3, 1, 0, 0, 0, 0, 0x10, 0, 0, 2, 0, 0, 0,
		6, 'p', 'c', '.', 'r', 'a', 'm', 0, 0, 0x10, 0, 0, 0, 0, 0,
		8, 'v', 'g', 'a', '.', 'v', 'r', 'a', 'm', 0, 0, 1, 0, 0, 0, 0, 0};
	int n = body_of(&m);
	CHECK(n == (int)sizeof(wire) && !memcmp(BODY, wire, sizeof(wire)));

	/* The largest PARAMS: every block, every name at its longest. */
	struct lm_msg big = {.type = LM_MSG_PARAMS,
			     .params = {.channels = 1, .nblocks = LM_MAX_BLOCKS}};
	for (unsigned i = 0; i < LM_MAX_BLOCKS; i++) {
		memset(big.params.blocks[i].name, 'a', LM_NAME_MAX - 1);
		big.params.blocks[i].name[0] = (char)('0' + i / 10);
		big.params.blocks[i].name[1] = (char)('0' + i % 10);
		/* 2^32 - 1 pages, the most */
		big.params.blocks[i].size = (uint64_t)UINT32_MAX * LM_PAGE_SIZE;
	}
	CHECK(body_of(&big) == (int)LM_MSG_PARAMS_MAX);
	CHECK(round_trip(&big, &out) && params_equal(&out.params, &big.params));
	CHECK(lm_msg_encode(&big, mbuf, LM_MSG_HDR_SIZE + LM_MSG_PARAMS_MAX - 1) == -EMSGSIZE);
	big.params.nblocks = LM_MAX_BLOCKS + 1; /* would read past the array */
	CHECK(lm_msg_encode(&big, mbuf, sizeof(mbuf)) == -EINVAL);

	/* Each rejection on its own, from the good bytes with one change. */
	uint8_t b[sizeof(wire) + 1];
#define PARAMS_REJECTS(len, want) rejects(LM_MSG_PARAMS, b, len, want)
#define RESET() memcpy(b, wire, sizeof(wire))
	RESET();
	CHECK(PARAMS_REJECTS(sizeof(wire), "") == 0);
	CHECK(PARAMS_REJECTS(15, "too short") == 1);
	CHECK(PARAMS_REJECTS(0, "too short") == 1);
	b[5] = 1;
	CHECK(PARAMS_REJECTS(sizeof(wire), "reserved") == 1);
	RESET();
	b[7] = 1;
	CHECK(PARAMS_REJECTS(sizeof(wire), "reserved") == 1);
	RESET();
	b[6] = 4; /* flags: only bits 0 (channel-recovery) and 1 (device state) are defined */
	CHECK(PARAMS_REJECTS(sizeof(wire), "reserved") == 1);
	RESET();
	b[7] = 0x80;
	CHECK(PARAMS_REJECTS(sizeof(wire), "reserved") == 1);
	RESET();
	b[6] = 2;
	CHECK(!lm_msg_decode(LM_MSG_PARAMS, b, sizeof(wire), &out, &why) &&
	      out.params.device_state && !out.params.channel_recovery);
	RESET();
	b[6] = 1;
	CHECK(PARAMS_REJECTS(sizeof(wire), "") == 0);
	CHECK(!lm_msg_decode(LM_MSG_PARAMS, b, sizeof(wire), &out, &why) &&
	      out.params.channel_recovery);
	m.params.channel_recovery = true;
	CHECK(body_of(&m) == (int)sizeof(wire) && !memcmp(BODY, b, sizeof(wire)));
	CHECK(round_trip(&m, &out) && params_equal(&out.params, &m.params));
	RESET();
	b[9] = 0x20; /* 8192 */
	CHECK(PARAMS_REJECTS(sizeof(wire), "page size") == 1);
	RESET();
	b[4] = 2;
	CHECK(PARAMS_REJECTS(sizeof(wire), "zero-page-detection") == 1);
	RESET();
	b[12] = 0;
	CHECK(PARAMS_REJECTS(sizeof(wire), "block count") == 1);
	b[12] = LM_MAX_BLOCKS + 1;
	CHECK(PARAMS_REJECTS(sizeof(wire), "block count") == 1);
	RESET();
	b[16] = 0;
	CHECK(PARAMS_REJECTS(sizeof(wire), "name empty or too long") == 1);
	b[16] = LM_NAME_MAX;
	CHECK(PARAMS_REJECTS(sizeof(wire), "name empty or too long") == 1);
	RESET();
	CHECK(PARAMS_REJECTS(sizeof(wire) - 1, "truncated") == 1);
	CHECK(PARAMS_REJECTS(16 + 1 + 6 + 7, "truncated") == 1);
	CHECK(PARAMS_REJECTS(16, "truncated") == 1);
	b[19] = 0;
	CHECK(PARAMS_REJECTS(sizeof(wire), "NUL") == 1);
	RESET();
	memset(b + 23, 0, 8); /* size 0 */
	CHECK(PARAMS_REJECTS(sizeof(wire), "size") == 1);
	RESET();
	b[23] = 1; /* not whole pages */
	CHECK(PARAMS_REJECTS(sizeof(wire), "size") == 1);
	RESET();
	b[28] = 0x10; /* 2^44 + 2^20 bytes: more than 2^32 - 1 pages */
	CHECK(PARAMS_REJECTS(sizeof(wire), "size") == 1);
	RESET();
	b[28] = 0x0f; /* just below: fine */
	CHECK(PARAMS_REJECTS(sizeof(wire), "") == 0);
	RESET();
	memcpy(b + 32, "pc.ram\0\0", 8); /* second block named like the first */
	b[31] = 6;
	memmove(b + 38, b + 40, 8);
	CHECK(PARAMS_REJECTS(sizeof(wire) - 2, "duplicate") == 1);
	RESET();
	b[sizeof(wire)] = 0;
	CHECK(PARAMS_REJECTS(sizeof(wire) + 1, "trailing") == 1);
#undef PARAMS_REJECTS
#undef RESET
}

/* Device state: chunks of 1..64 KiB, borrowed from the input; totals
 * 1..LM_DEVSTATE_MAX. */
static void test_devstate_msgs(void)
{
	static uint8_t data[LM_MSG_MAX_PAYLOAD + 1];
	struct lm_msg m = {.type = LM_MSG_DEVSTATE, .devstate = {data, LM_MSG_MAX_PAYLOAD}}, out;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)t_rnd();
	CHECK(round_trip(&m, &out) && out.devstate.len == LM_MSG_MAX_PAYLOAD &&
	      out.devstate.data == BODY && !memcmp(BODY, data, LM_MSG_MAX_PAYLOAD));
	m.devstate.len = 0;
	CHECK(lm_msg_encode(&m, mbuf, sizeof(mbuf)) == -EINVAL);
	m.devstate.len = LM_MSG_MAX_PAYLOAD + 1;
	CHECK(lm_msg_encode(&m, mbuf, sizeof(mbuf)) == -EINVAL);
	CHECK(rejects(LM_MSG_DEVSTATE, data, 0, "empty DEVSTATE") == 1);
	CHECK(rejects(LM_MSG_DEVSTATE, data, 1, "") == 0);
	CHECK(rejects(LM_MSG_DEVSTATE, data, LM_MSG_MAX_PAYLOAD + 1, "longer") == 1);

	struct lm_msg end = {.type = LM_MSG_DEVSTATE_END, .devstate_bytes = 206000};
	CHECK(round_trip(&end, &out) && out.devstate_bytes == 206000 && body_of(&end) == 8);
	end.type = LM_MSG_DEVSTATE_LOADED;
	end.devstate_bytes = LM_DEVSTATE_MAX;
	CHECK(round_trip(&end, &out) && out.devstate_bytes == LM_DEVSTATE_MAX);
	uint8_t b[9] = {0};
	CHECK(rejects(LM_MSG_DEVSTATE_END, b, 8, "total 0") == 1);
	lm_le64(b, LM_DEVSTATE_MAX + 1);
	CHECK(rejects(LM_MSG_DEVSTATE_LOADED, b, 8, "total 0 or over") == 1);
	lm_le64(b, 1);
	CHECK(rejects(LM_MSG_DEVSTATE_END, b, 7, "short DEVSTATE_END") == 1);
	CHECK(rejects(LM_MSG_DEVSTATE_LOADED, b, 9, "trailing") == 1);
}

static void test_small_msgs(void)
{
	struct lm_msg out;
	uint8_t b[40] = {0};

	/* READY, CANCEL, HEARTBEAT and COMMIT: nothing at all. */
	static const uint16_t empty[] = {LM_MSG_READY, LM_MSG_CANCEL, LM_MSG_HEARTBEAT,
					 LM_MSG_COMMIT};
	for (unsigned i = 0; i < 4; i++) {
		uint16_t t = empty[i];
		struct lm_msg m = {.type = t};
		CHECK(body_of(&m) == 0);
		CHECK(round_trip(&m, &out));
		CHECK(rejects(t, b, 1, "with a payload") == 1);
	}
	/* HEARTBEAT's type is 9 on the wire (docs/wire-format.md): a bare
	 * 16-byte header. */
	CHECK(lm_msg_encode(&(struct lm_msg){.type = LM_MSG_HEARTBEAT}, mbuf, sizeof(mbuf)) ==
		      (int)LM_MSG_HDR_SIZE &&
	      lm_rd16(mbuf + 4) == 9 && lm_rd32(mbuf + 8) == 0);

	/* ITER and ITER_ACK: a pass number from 1. */
	static const uint16_t passes[] = {LM_MSG_ITER, LM_MSG_ITER_ACK};
	for (unsigned i = 0; i < 2; i++) {
		uint16_t t = passes[i];
		struct lm_msg m = {.type = t, .iteration = 0x01020304};
		CHECK(body_of(&m) == 4 && lm_rd32(BODY) == 0x01020304);
		CHECK(round_trip(&m, &out) && out.iteration == m.iteration);
		memcpy(b, BODY, 4);
		CHECK(rejects(t, b, 3, "short") == 1);
		CHECK(rejects(t, b, 5, "trailing") == 1);
		CHECK(rejects(t, (const uint8_t[4]){0}, 4, "pass 0") == 1);
	}

	/* COMPLETE. */
	struct lm_msg c = {.type = LM_MSG_COMPLETE,
			   .complete = {.iteration = 7,
					.digest = {0x1112131415161718ull, 0x2122232425262728ull},
					.normal = 1000,
					.zero = 24}};
	CHECK(body_of(&c) == 36 && lm_rd32(BODY) == 7 &&
	      lm_rd64(BODY + 4) == c.complete.digest.lo &&
	      lm_rd64(BODY + 12) == c.complete.digest.hi && lm_rd64(BODY + 20) == 1000 &&
	      lm_rd64(BODY + 28) == 24);
	CHECK(round_trip(&c, &out) && out.complete.iteration == 7 &&
	      out.complete.digest.lo == c.complete.digest.lo &&
	      out.complete.digest.hi == c.complete.digest.hi && out.complete.normal == 1000 &&
	      out.complete.zero == 24);
	memcpy(b, BODY, 36);
	CHECK(rejects(LM_MSG_COMPLETE, b, 35, "malformed COMPLETE") == 1);
	CHECK(rejects(LM_MSG_COMPLETE, b, 37, "malformed COMPLETE") == 1);
	lm_le32(b, 0);
	CHECK(rejects(LM_MSG_COMPLETE, b, 36, "pass 0") == 1);

	/* RESULT. */
	struct lm_msg r = {.type = LM_MSG_RESULT,
			   .result = {.ok = true, .cpu_us = 123456, .digest = {5, 6}}};
	CHECK(body_of(&r) == 28 && BODY[0] == 1 && lm_rd64(BODY + 4) == 123456 &&
	      lm_rd64(BODY + 12) == 5 && lm_rd64(BODY + 20) == 6);
	CHECK(round_trip(&r, &out) && out.result.ok && out.result.cpu_us == 123456 &&
	      out.result.digest.lo == 5 && out.result.digest.hi == 6);
	r.result.ok = false;
	CHECK(round_trip(&r, &out) && !out.result.ok);
	memcpy(b, BODY, 28);
	CHECK(rejects(LM_MSG_RESULT, b, 27, "short RESULT") == 1);
	CHECK(rejects(LM_MSG_RESULT, b, 29, "trailing") == 1);
	b[0] = 2;
	CHECK(rejects(LM_MSG_RESULT, b, 28, "ok flag") == 1);
	b[0] = 1;
	b[1] = 1;
	CHECK(rejects(LM_MSG_RESULT, b, 28, "reserved") == 1);
	b[1] = 0;
	b[3] = 1;
	CHECK(rejects(LM_MSG_RESULT, b, 28, "reserved") == 1);

	/* OUTCOME: one byte, 0 or 1; COMMIT and OUTCOME are 10 and 11 on
	 * the wire. */
	for (int v = 0; v < 2; v++) {
		struct lm_msg o = {.type = LM_MSG_OUTCOME, .committed = v};
		CHECK(body_of(&o) == 1 && BODY[0] == v && lm_rd16(mbuf + 4) == 11);
		CHECK(round_trip(&o, &out) && out.committed == (v == 1));
	}
	CHECK(lm_msg_encode(&(struct lm_msg){.type = LM_MSG_COMMIT}, mbuf, sizeof(mbuf)) ==
		      (int)LM_MSG_HDR_SIZE && lm_rd16(mbuf + 4) == 10);
	b[0] = 1;
	CHECK(rejects(LM_MSG_OUTCOME, b, 0, "short OUTCOME") == 1);
	CHECK(rejects(LM_MSG_OUTCOME, b, 2, "trailing") == 1);
	b[0] = 2;
	CHECK(rejects(LM_MSG_OUTCOME, b, 1, "neither") == 1);
	b[0] = 0;

	/* Not a message type. */
	CHECK(rejects(0, b, 0, "unknown") == 1);
	CHECK(rejects(LM_MSG_MAX, b, 0, "unknown") == 1);
	CHECK(lm_msg_encode(&(struct lm_msg){.type = LM_MSG_MAX}, mbuf, sizeof(mbuf)) == -EINVAL);
	/* Too small a buffer, even for the header. */
	CHECK(lm_msg_encode(&(struct lm_msg){.type = LM_MSG_READY}, mbuf, LM_MSG_HDR_SIZE - 1) ==
	      -EMSGSIZE);
	CHECK(lm_msg_encode(&(struct lm_msg){.type = LM_MSG_ITER, .iteration = 1}, mbuf,
			    LM_MSG_HDR_SIZE + 3) == -EMSGSIZE);
}

static void test_error_msg(void)
{
	struct lm_msg e = {.type = LM_MSG_ERROR, .error.code = -EIO}, out;
	strcpy(e.error.text, "disk on fire");
	CHECK(body_of(&e) == 4 + 12 && lm_rd32(BODY) == EIO &&
	      !memcmp(BODY + 4, "disk on fire", 12));
	CHECK(round_trip(&e, &out) && out.error.code == -EIO &&
	      !strcmp(out.error.text, "disk on fire"));

	/* Text: cut at the maximum when sent, and when read. */
	memset(e.error.text, 'x', sizeof(e.error.text)); /* not even terminated */
	CHECK(body_of(&e) == 4 + LM_ERROR_TEXT_MAX);
	CHECK(round_trip(&e, &out) && strlen(out.error.text) == LM_ERROR_TEXT_MAX);
	uint8_t b[4 + LM_ERROR_TEXT_MAX + 1];
	memcpy(b, BODY, 4 + LM_ERROR_TEXT_MAX);
	b[4 + LM_ERROR_TEXT_MAX] = 'x';
	CHECK(!lm_msg_decode(LM_MSG_ERROR, b, sizeof(b), &out, &(const char *){NULL}) &&
	      out.error.code == -EIO && strlen(out.error.text) == LM_ERROR_TEXT_MAX);
	CHECK(rejects(LM_MSG_ERROR, b, 3, "short ERROR") == 1);

	/* Control bytes, a NUL included, read as '?'. */
	memcpy(b + 4, "a\x1b[2J\0b\x7f", 8);
	CHECK(!lm_msg_decode(LM_MSG_ERROR, b, 4 + 8, &out, &(const char *){NULL}) &&
	      !strcmp(out.error.text, "a?[2J?b?"));

	/* No text is fine; an errno that is not one reads as EPROTO. */
	struct lm_msg m;
	const char *why;
	static const struct { uint32_t wire; int code; } codes[] = {
		{EIO, -EIO}, {4095, -4095}, {0, -EPROTO}, {4096, -EPROTO}, {0x80000000u, -EPROTO}};
	for (unsigned i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		lm_le32(b, codes[i].wire);
		CHECKF(lm_msg_decode(LM_MSG_ERROR, b, 4, &m, &why) == 0 &&
			       m.error.code == codes[i].code && !m.error.text[0],
		       "errno %u", codes[i].wire);
	}
}

static void test_buf(void)
{
	uint8_t mem[16];
	struct lm_buf w = {.p = mem, .cap = sizeof(mem)};
	lm_put_u8(&w, 1);
	lm_put_u16(&w, 0x0203);
	lm_put_u32(&w, 0x04050607);
	lm_put_u64(&w, 0x08090a0b0c0d0e0full);
	CHECK(!w.bad && w.len == 15);
	lm_put_u16(&w, 1); /* overflows by one */
	CHECK(w.bad);

	struct lm_buf r = {.p = mem, .cap = 15};
	CHECK(lm_get_u8(&r) == 1);
	CHECK(lm_get_u16(&r) == 0x0203);
	CHECK(lm_get_u32(&r) == 0x04050607);
	CHECK(lm_get_u64(&r) == 0x08090a0b0c0d0e0full);
	CHECK(!r.bad);
	CHECK(lm_get_u8(&r) == 0 && r.bad); /* reading past the end */
}

int main(void)
{
	test_packet();
	test_hello();
	test_answer();
	test_msg();
	test_params();
	test_small_msgs();
	test_devstate_msgs();
	test_error_msg();
	test_buf();
	T_DONE();
}
