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
	if ((h->flags & ~LM_HELLO_FLAGS_KNOWN) || !all_zero(in + 28, 8)) {
		*why = "hello reserved fields not zero";
		return -EPROTO;
	}
	if (h->nchannels < 1 || h->nchannels > 255 || h->channel > h->nchannels) {
		*why = "hello channel id or count out of range";
		return -EPROTO;
	}
	if ((h->flags & LM_HELLO_RECONNECT && (!h->channel || h->flags & LM_HELLO_RESOLVE)) ||
	    (h->flags & LM_HELLO_RESOLVE && h->channel)) {
		*why = "hello flags do not fit its channel";
		return -EPROTO;
	}
	return 0;
}

/*
 * Answer to a RECONNECT hello, 40 bytes:
 *   0 u32 magic  4 u32 pass  8 u64 seq  16 u64 normal  24 u64 zero
 *  32 u32 reserved (0)  36 u32 crc32c(bytes 0..35)
 */
void lm_answer_encode(const struct lm_answer *a, uint8_t out[LM_ANSWER_SIZE])
{
	memset(out, 0, LM_ANSWER_SIZE);
	lm_le32(out, LM_ANSWER_MAGIC);
	lm_le32(out + 4, a->iteration);
	lm_le64(out + 8, a->seq);
	lm_le64(out + 16, a->normal);
	lm_le64(out + 24, a->zero);
	lm_le32(out + 36, lm_crc32c(0, out, 36));
}

int lm_answer_decode(const uint8_t in[LM_ANSWER_SIZE], struct lm_answer *a, const char **why)
{
	if (lm_rd32(in) != LM_ANSWER_MAGIC) {
		*why = "bad answer magic";
		return -EPROTO;
	}
	if (lm_rd32(in + 36) != lm_crc32c(0, in, 36)) {
		*why = "answer checksum mismatch";
		return -EPROTO;
	}
	if (lm_rd32(in + 32)) {
		*why = "answer reserved field not zero";
		return -EPROTO;
	}
	a->iteration = lm_rd32(in + 4);
	a->seq = lm_rd64(in + 8);
	a->normal = lm_rd64(in + 16);
	a->zero = lm_rd64(in + 24);
	if (!a->iteration) {
		*why = "answer for pass 0";
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
static void msg_hdr_encode(uint16_t type, const void *payload, uint32_t len,
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

int lm_msg_hdr_decode(const uint8_t in[LM_MSG_HDR_SIZE], struct lm_msg_hdr *h,
		      const char **why)
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

/*
 * Control message bodies (docs/wire-format.md has the table):
 *   PARAMS    u16 channels  u8 method  u8 level  u8 zero  u8 0
 *             u16 flags (LM_PARAMS_RECOVERY, else 0)
 *             u32 page size  u32 nblocks, then per block:
 *             u8 name length, name bytes (no NUL), u64 size
 *   READY, CANCEL, HEARTBEAT  empty
 *   ITER, ITER_ACK u32 pass
 *   COMPLETE  u32 final pass  u64 digest lo  u64 digest hi  u64 normal  u64 zero
 *   RESULT    u8 ok  u8 0  u16 0  u64 cpu us  u64 digest lo  u64 digest hi
 *   ERROR     u32 errno, then text to the end (no NUL)
 */
static void params_encode(struct lm_buf *b, const struct lm_msg_params *p)
{
	lm_put_u16(b, p->channels);
	lm_put_u8(b, p->method);
	lm_put_u8(b, p->level);
	lm_put_u8(b, p->zero_detect);
	lm_put_u8(b, 0);
	lm_put_u16(b, (p->channel_recovery ? LM_PARAMS_RECOVERY : 0) |
		      (p->device_state ? LM_PARAMS_DEVSTATE : 0));
	lm_put_u32(b, LM_PAGE_SIZE);
	lm_put_u32(b, p->nblocks);
	for (uint32_t i = 0; i < p->nblocks; i++) {
		size_t n = strnlen(p->blocks[i].name, LM_NAME_MAX - 1);
		lm_put_u8(b, (uint8_t)n);
		lm_put_bytes(b, p->blocks[i].name, n);
		lm_put_u64(b, p->blocks[i].size);
	}
}

int lm_msg_encode(const struct lm_msg *m, uint8_t *out, size_t cap)
{
	if (cap < LM_MSG_HDR_SIZE)
		return -EMSGSIZE;
	size_t room = cap - LM_MSG_HDR_SIZE;
	struct lm_buf b = {.p = out + LM_MSG_HDR_SIZE,
			   .cap = room < LM_MSG_MAX_PAYLOAD ? room : LM_MSG_MAX_PAYLOAD};
	switch (m->type) {
	case LM_MSG_PARAMS:
		if (m->params.nblocks > LM_MAX_BLOCKS)
			return -EINVAL;
		params_encode(&b, &m->params);
		break;
	case LM_MSG_READY:
	case LM_MSG_CANCEL:
	case LM_MSG_HEARTBEAT:
	case LM_MSG_COMMIT:
		break;
	case LM_MSG_ITER:
	case LM_MSG_ITER_ACK:
		lm_put_u32(&b, m->iteration);
		break;
	case LM_MSG_OUTCOME:
		lm_put_u8(&b, m->committed);
		break;
	case LM_MSG_DEVSTATE:
		if (!m->devstate.len || m->devstate.len > LM_MSG_MAX_PAYLOAD)
			return -EINVAL;
		lm_put_bytes(&b, m->devstate.data, m->devstate.len);
		break;
	case LM_MSG_DEVSTATE_END:
	case LM_MSG_DEVSTATE_LOADED:
		lm_put_u64(&b, m->devstate_bytes);
		break;
	case LM_MSG_COMPLETE:
		lm_put_u32(&b, m->complete.iteration);
		lm_put_u64(&b, m->complete.digest.lo);
		lm_put_u64(&b, m->complete.digest.hi);
		lm_put_u64(&b, m->complete.normal);
		lm_put_u64(&b, m->complete.zero);
		break;
	case LM_MSG_RESULT:
		lm_put_u8(&b, m->result.ok);
		lm_put_u8(&b, 0);
		lm_put_u16(&b, 0);
		lm_put_u64(&b, m->result.cpu_us);
		lm_put_u64(&b, m->result.digest.lo);
		lm_put_u64(&b, m->result.digest.hi);
		break;
	case LM_MSG_ERROR:
		lm_put_u32(&b, (uint32_t)-m->error.code);
		lm_put_bytes(&b, m->error.text, strnlen(m->error.text, LM_ERROR_TEXT_MAX));
		break;
	default:
		return -EINVAL;
	}
	if (b.bad)
		return -EMSGSIZE;
	msg_hdr_encode(m->type, b.p, (uint32_t)b.len, out);
	return (int)(LM_MSG_HDR_SIZE + b.len);
}

#define STR_(x) #x
#define STR(x) STR_(x)

static int reject(const char **why, const char *reason)
{
	*why = reason;
	return -EPROTO;
}

/* Wrong lengths, per type: too short, too long.  The reasons name the
 * message, as the user reads them after "main channel: ". */
static const struct {
	const char *too_short, *too_long;
} length_why[LM_MSG_MAX] = {
	[LM_MSG_PARAMS] = {"PARAMS message too short", "PARAMS message has trailing bytes"},
	[LM_MSG_READY] = {NULL, "READY with a payload"},
	[LM_MSG_ITER] = {"short ITER", "ITER has trailing bytes"},
	[LM_MSG_COMPLETE] = {"malformed COMPLETE", "malformed COMPLETE"},
	[LM_MSG_RESULT] = {"short RESULT", "RESULT has trailing bytes"},
	[LM_MSG_ERROR] = {"short ERROR", NULL}, /* its text takes the rest */
	[LM_MSG_CANCEL] = {NULL, "CANCEL with a payload"},
	[LM_MSG_ITER_ACK] = {"short ITER_ACK", "ITER_ACK has trailing bytes"},
	[LM_MSG_HEARTBEAT] = {NULL, "HEARTBEAT with a payload"},
	[LM_MSG_COMMIT] = {NULL, "COMMIT with a payload"},
	[LM_MSG_OUTCOME] = {"short OUTCOME", "OUTCOME has trailing bytes"},
	[LM_MSG_DEVSTATE] = {"empty DEVSTATE", "DEVSTATE longer than a message"},
	[LM_MSG_DEVSTATE_END] = {"short DEVSTATE_END", "DEVSTATE_END has trailing bytes"},
	[LM_MSG_DEVSTATE_LOADED] = {"short DEVSTATE_LOADED", "DEVSTATE_LOADED has trailing bytes"},
};

static int params_decode(struct lm_buf *b, struct lm_msg_params *p, const char **why)
{
	p->channels = lm_get_u16(b);
	p->method = lm_get_u8(b);
	p->level = lm_get_u8(b);
	uint8_t zero = lm_get_u8(b);
	uint8_t reserved8 = lm_get_u8(b);
	uint16_t flags = lm_get_u16(b);
	uint32_t page_size = lm_get_u32(b);
	p->nblocks = lm_get_u32(b);
	if (b->bad)
		return reject(why, length_why[LM_MSG_PARAMS].too_short);
	if (reserved8 || (flags & ~(LM_PARAMS_RECOVERY | LM_PARAMS_DEVSTATE)))
		return reject(why, "PARAMS: reserved fields not zero");
	p->channel_recovery = flags & LM_PARAMS_RECOVERY;
	p->device_state = flags & LM_PARAMS_DEVSTATE;
	if (page_size != LM_PAGE_SIZE)
		return reject(why, "PARAMS: page size differs from the destination's");
	if (zero > 1)
		return reject(why, "PARAMS: bad zero-page-detection value");
	p->zero_detect = zero;
	if (p->nblocks < 1 || p->nblocks > LM_MAX_BLOCKS)
		return reject(why, "PARAMS: RAM block count not in 1.." STR(LM_MAX_BLOCKS));
	for (uint32_t i = 0; i < p->nblocks; i++) {
		struct lm_msg_block *blk = &p->blocks[i];
		uint8_t n = lm_get_u8(b);
		if (!b->bad && (!n || n >= LM_NAME_MAX))
			return reject(why, "PARAMS: RAM block name empty or too long");
		lm_get_bytes(b, blk->name, n);
		blk->name[n] = 0;
		blk->size = lm_get_u64(b);
		if (b->bad)
			return reject(why, "PARAMS message truncated");
		if (memchr(blk->name, 0, n))
			return reject(why, "PARAMS: NUL inside a RAM block name");
		if (!blk->size || blk->size % LM_PAGE_SIZE || blk->size / LM_PAGE_SIZE > UINT32_MAX)
			return reject(why, "PARAMS: RAM block size 0, not pages or too large");
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(p->blocks[j].name, blk->name))
				return reject(why, "PARAMS: duplicate RAM block name");
	}
	return 0;
}

int lm_msg_decode(uint16_t type, const uint8_t *in, size_t len, struct lm_msg *m,
		  const char **why)
{
	struct lm_buf b = {.p = (uint8_t *)in, .cap = len};
	int r = 0;

	m->type = type;
	switch (type) {
	case LM_MSG_PARAMS:
		r = params_decode(&b, &m->params, why);
		break;
	case LM_MSG_READY:
	case LM_MSG_CANCEL:
	case LM_MSG_HEARTBEAT:
	case LM_MSG_COMMIT:
		break;
	case LM_MSG_OUTCOME: {
		uint8_t c = lm_get_u8(&b);
		m->committed = c;
		if (!b.bad && c > 1)
			r = reject(why, "OUTCOME neither 0 nor 1");
		break;
	}
	case LM_MSG_DEVSTATE:
		/* Bounded by the header's len (LM_MSG_MAX_PAYLOAD); the total
		 * by the destination (LM_DEVSTATE_MAX). */
		if (!len)
			return reject(why, length_why[type].too_short);
		if (len > LM_MSG_MAX_PAYLOAD)
			return reject(why, length_why[type].too_long);
		m->devstate.data = in;
		m->devstate.len = (uint32_t)len;
		b.len = b.cap;
		break;
	case LM_MSG_DEVSTATE_END:
	case LM_MSG_DEVSTATE_LOADED:
		m->devstate_bytes = lm_get_u64(&b);
		if (!b.bad && (!m->devstate_bytes || m->devstate_bytes > LM_DEVSTATE_MAX))
			r = reject(why, type == LM_MSG_DEVSTATE_END
						? "DEVSTATE_END: total 0 or over " STR(LM_DEVSTATE_MAX)
						: "DEVSTATE_LOADED: total 0 or over " STR(LM_DEVSTATE_MAX));
		break;
	case LM_MSG_ITER:
	case LM_MSG_ITER_ACK:
		m->iteration = lm_get_u32(&b);
		if (!b.bad && !m->iteration)
			r = reject(why, type == LM_MSG_ITER ? "ITER for pass 0"
							    : "ITER_ACK for pass 0");
		break;
	case LM_MSG_COMPLETE:
		m->complete.iteration = lm_get_u32(&b);
		m->complete.digest.lo = lm_get_u64(&b);
		m->complete.digest.hi = lm_get_u64(&b);
		m->complete.normal = lm_get_u64(&b);
		m->complete.zero = lm_get_u64(&b);
		if (!b.bad && !m->complete.iteration)
			r = reject(why, "COMPLETE for pass 0");
		break;
	case LM_MSG_RESULT: {
		uint8_t ok = lm_get_u8(&b);
		uint8_t reserved8 = lm_get_u8(&b);
		uint16_t reserved16 = lm_get_u16(&b);
		m->result.ok = ok;
		m->result.cpu_us = lm_get_u64(&b);
		m->result.digest.lo = lm_get_u64(&b);
		m->result.digest.hi = lm_get_u64(&b);
		if (!b.bad && ok > 1)
			r = reject(why, "RESULT: ok flag neither 0 nor 1");
		else if (!b.bad && (reserved8 || reserved16))
			r = reject(why, "RESULT: reserved fields not zero");
		break;
	}
	case LM_MSG_ERROR: {
		uint32_t e = lm_get_u32(&b);
		/* A longer text is cut, not refused: the peer's reason matters
		 * more than its length. */
		size_t n = b.bad ? 0 : b.cap - b.len;
		if (n > LM_ERROR_TEXT_MAX)
			n = LM_ERROR_TEXT_MAX;
		lm_get_bytes(&b, m->error.text, n);
		b.len = b.cap;
		/* It ends up on a terminal: no control bytes (an escape
		 * sequence, a NUL that would hide the rest). */
		for (size_t i = 0; i < n; i++)
			if ((uint8_t)m->error.text[i] < 0x20 || m->error.text[i] == 0x7f)
				m->error.text[i] = '?';
		m->error.text[n] = 0;
		/* Not a reason to reject: the peer's text matters more. */
		m->error.code = e && e < 4096 ? -(int)e : -EPROTO;
		break;
	}
	default:
		return reject(why, "unknown control message type");
	}
	if (r)
		return r;
	if (b.bad)
		return reject(why, length_why[type].too_short);
	if (b.len != b.cap)
		return reject(why, length_why[type].too_long);
	return 0;
}
