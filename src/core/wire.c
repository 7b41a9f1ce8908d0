/* SPDX-License-Identifier: MIT */
/* Wire format encode/decode; see wire.h and docs/wire-format.md. */
#include <errno.h>
#include <string.h>

#include "core/wire.h"
#include "util/util.h"

/*
 * Hello, 40 bytes:
 *   0 u32 magic  4 u16 version  6 u16 channel  8 u16 nchannels  10 u16 flags
 *  12 u8[16] uuid  28 u8[8] reserved (0)  36 u32 crc32c(bytes 0..35)
 */
void lm_hello_encode(const struct lm_hello *h, uint8_t out[LM_HELLO_SIZE])
{
	memset(out, 0, LM_HELLO_SIZE);
	lm_le32(out, LM_HELLO_MAGIC);
	lm_le16(out + 4, h->version);
	lm_le16(out + 6, h->channel);
	lm_le16(out + 8, h->nchannels);
	lm_le16(out + 10, h->flags);
	memcpy(out + 12, h->uuid, 16);
	lm_le32(out + 36, lm_crc32c(0, out, 36));
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int lm_hello_decode(const uint8_t in[LM_HELLO_SIZE], struct lm_hello *h, const char **why)
{
	if (lm_rd32(in) != LM_HELLO_MAGIC) {
		*why = "bad hello magic (not a livemig peer?)";
		return -EPROTO;
	}
	if (lm_rd32(in + 36) != lm_crc32c(0, in, 36)) {
		*why = "hello checksum mismatch";
		return -EPROTO;
	}
	h->version = lm_rd16(in + 4);
	h->channel = lm_rd16(in + 6);
	h->nchannels = lm_rd16(in + 8);
	h->flags = lm_rd16(in + 10);
	memcpy(h->uuid, in + 12, 16);
	if (h->version != LM_WIRE_VERSION) {
		*why = "unsupported wire version";
		return -EPROTO;
	}
	if (h->flags || !all_zero(in + 28, 8)) {
		*why = "hello reserved fields not zero";
		return -EPROTO;
	}
	if (h->nchannels < 1 || h->nchannels > 255 || h->channel > h->nchannels) {
		*why = "hello channel id or count out of range";
		return -EPROTO;
	}
	return 0;
}

/*
 * Packet header, 64 bytes:
 *   0 u32 magic  4 u8 version  5 u8 method  6 u16 flags  8 u16 channel
 *  10 u16 reserved  12 u32 block  16 u64 seq  24 u32 iteration
 *  28 u32 normal  32 u32 zero  36 u32 payload_len  40 u8[20] reserved
 *  60 u32 crc32c (payload, indices, header with crc zeroed)
 */
void lm_packet_encode(const struct lm_packet_hdr *h, uint8_t out[LM_PACKET_HDR_SIZE])
{
	memset(out, 0, LM_PACKET_HDR_SIZE);
	lm_le32(out, LM_PACKET_MAGIC);
	out[4] = h->version;
	out[5] = h->method;
	lm_le16(out + 6, h->flags);
	lm_le16(out + 8, h->channel);
	lm_le32(out + 12, h->block);
	lm_le64(out + 16, h->seq);
	lm_le32(out + 24, h->iteration);
	lm_le32(out + 28, h->normal);
	lm_le32(out + 32, h->zero);
	lm_le32(out + 36, h->payload_len);
	lm_le32(out + 60, h->crc);
}

int lm_packet_decode(const uint8_t in[LM_PACKET_HDR_SIZE], struct lm_packet_hdr *h,
		     const char **why)
{
	if (lm_rd32(in) != LM_PACKET_MAGIC) {
		*why = "bad packet magic";
		return -EPROTO;
	}
	h->version = in[4];
	h->method = in[5];
	h->flags = lm_rd16(in + 6);
	h->channel = lm_rd16(in + 8);
	h->block = lm_rd32(in + 12);
	h->seq = lm_rd64(in + 16);
	h->iteration = lm_rd32(in + 24);
	h->normal = lm_rd32(in + 28);
	h->zero = lm_rd32(in + 32);
	h->payload_len = lm_rd32(in + 36);
	h->crc = lm_rd32(in + 60);
	if (h->version != LM_WIRE_VERSION) {
		*why = "unsupported packet version";
		return -EPROTO;
	}
	if (lm_rd16(in + 10) || !all_zero(in + 40, 20)) {
		*why = "packet reserved fields not zero";
		return -EPROTO;
	}
	if (h->flags & ~LM_PKT_FLAGS_KNOWN) {
		*why = "unknown packet flags";
		return -EPROTO;
	}
	if ((h->flags & LM_PKT_FLAG_FINAL) && !(h->flags & LM_PKT_FLAG_SYNC)) {
		*why = "FINAL flag without SYNC";
		return -EPROTO;
	}
	if (h->method >= LM_METHOD_MAX) {
		*why = "unknown compression method";
		return -EPROTO;
	}
	if (h->normal > LM_PACKET_PAGES || h->zero > LM_PACKET_PAGES ||
	    h->normal + h->zero > LM_PACKET_PAGES) {
		*why = "too many pages in packet";
		return -EPROTO;
	}
	if (h->iteration == 0) {
		*why = "packet iteration 0";
		return -EPROTO;
	}
	if ((h->flags & LM_PKT_FLAG_SYNC) && (h->normal || h->zero || h->payload_len)) {
		*why = "SYNC packet carries pages";
		return -EPROTO;
	}
	if (!h->normal && h->payload_len) {
		*why = "payload without normal pages";
		return -EPROTO;
	}
	return 0;
}

int lm_packet_check(const struct lm_packet_hdr *h, const struct lm_packet_limits *l,
		    const char **why)
{
	if (!(l->methods & (1u << h->method))) {
		*why = "packet method differs from the negotiated one";
		return -EPROTO;
	}
	if (h->channel != l->channel) {
		*why = "packet channel id differs from its connection's";
		return -EPROTO;
	}
	if (h->seq != l->next_seq) {
		*why = "packet sequence number out of order";
		return -EPROTO;
	}
	if (h->flags & LM_PKT_FLAG_SYNC)
		return 0;
	if (h->block >= l->nblocks) {
		*why = "packet RAM block index out of range";
		return -EPROTO;
	}
	if (h->method == LM_METHOD_NONE) {
		if (h->payload_len != (uint64_t)h->normal * LM_PAGE_SIZE) {
			*why = "raw payload length does not match its page count";
			return -EPROTO;
		}
	} else if (h->payload_len > l->max_payload || (h->normal && !h->payload_len)) {
		*why = "compressed payload length out of range";
		return -EPROTO;
	}
	return 0;
}

int lm_packet_check_indices(const uint32_t *idx, uint32_t n, uint64_t block_pages,
			    const char **why)
{
	for (uint32_t i = 0; i < n; i++) {
		if (idx[i] >= block_pages) {
			*why = "page index beyond the end of its RAM block";
			return -EPROTO;
		}
	}
	return 0;
}

/*
 * Control message header, 16 bytes:
 *   0 u32 magic  4 u16 type  6 u16 flags  8 u32 len  12 u32 crc32c
 */
void lm_msg_encode(uint16_t type, const void *payload, uint32_t len,
		   uint8_t out[LM_MSG_HDR_SIZE])
{
	memset(out, 0, LM_MSG_HDR_SIZE);
	lm_le32(out, LM_MSG_MAGIC);
	lm_le16(out + 4, type);
	lm_le32(out + 8, len);
	uint32_t crc = lm_crc32c(0, out, LM_MSG_HDR_SIZE);
	if (len)
		crc = lm_crc32c(crc, payload, len);
	lm_le32(out + 12, crc);
}

int lm_msg_decode(const uint8_t in[LM_MSG_HDR_SIZE], struct lm_msg_hdr *h, const char **why)
{
	if (lm_rd32(in) != LM_MSG_MAGIC) {
		*why = "bad control message magic";
		return -EPROTO;
	}
	h->type = lm_rd16(in + 4);
	h->flags = lm_rd16(in + 6);
	h->len = lm_rd32(in + 8);
	h->crc = lm_rd32(in + 12);
	if (h->type == 0 || h->type >= LM_MSG_MAX) {
		*why = "unknown control message type";
		return -EPROTO;
	}
	if (h->flags) {
		*why = "control message reserved flags not zero";
		return -EPROTO;
	}
	if (h->len > LM_MSG_MAX_PAYLOAD) {
		*why = "control message too long";
		return -EPROTO;
	}
	return 0;
}

int lm_msg_check_crc(const uint8_t hdr[LM_MSG_HDR_SIZE], const void *payload, uint32_t len)
{
	uint8_t tmp[LM_MSG_HDR_SIZE];
	memcpy(tmp, hdr, sizeof(tmp));
	memset(tmp + 12, 0, 4);
	uint32_t crc = lm_crc32c(0, tmp, sizeof(tmp));
	if (len)
		crc = lm_crc32c(crc, payload, len);
	return crc == lm_rd32(hdr + 12) ? 0 : -EPROTO;
}
