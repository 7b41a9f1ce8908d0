/* SPDX-License-Identifier: MIT */
/* Wire format: round trips and every validation failure. */
#include <errno.h>
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
}

static void test_msg(void)
{
	uint8_t hdr[LM_MSG_HDR_SIZE], payload[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct lm_msg_hdr h;
	const char *why;
	lm_msg_encode(LM_MSG_ITER, payload, sizeof(payload), hdr);
	CHECK(lm_msg_decode(hdr, &h, &why) == 0);
	CHECK(h.type == LM_MSG_ITER && h.len == 8);
	CHECK(lm_msg_check_crc(hdr, payload, 8) == 0);
	payload[3] ^= 1;
	CHECK(lm_msg_check_crc(hdr, payload, 8) == -EPROTO);
	payload[3] ^= 1;

	uint8_t bad[LM_MSG_HDR_SIZE];
	memcpy(bad, hdr, sizeof(bad));
	bad[4] = 0x7f; /* type */
	CHECK(lm_msg_decode(bad, &h, &why) == -EPROTO);
	memcpy(bad, hdr, sizeof(bad));
	bad[11] = 0x7f; /* length beyond the maximum */
	CHECK(lm_msg_decode(bad, &h, &why) == -EPROTO);
	memcpy(bad, hdr, sizeof(bad));
	bad[0] ^= 1;
	CHECK(lm_msg_decode(bad, &h, &why) == -EPROTO);
	memcpy(bad, hdr, sizeof(bad));
	bad[6] = 1; /* flags */
	CHECK(lm_msg_decode(bad, &h, &why) == -EPROTO);
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
	test_msg();
	test_buf();
	T_DONE();
}
