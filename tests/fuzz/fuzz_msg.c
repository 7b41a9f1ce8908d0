/* SPDX-License-Identifier: MIT */
/*
 * Control messages (lm_msg_hdr_decode, lm_msg_check_crc, lm_msg_decode).
 * Input: byte 0 picks the type (0 and LM_MSG_MAX are unknown ones), the
 * rest is the body; the first 16 bytes also go through the header decoder.
 * Holds: a body is refused with a reason, or re-encoding what was decoded
 * gives a message whose header decodes and checks and whose body decodes
 * to the same message; for every type but ERROR (whose text is cleaned and
 * cut) the body is byte for byte the one decoded.
 */
#include <errno.h>

#include "core/wire.h"
#include "fuzz.h"

static void header(const uint8_t *data, size_t size)
{
	if (size < LM_MSG_HDR_SIZE)
		return;
	struct lm_msg_hdr h;
	const char *why = NULL;
	int r = lm_msg_hdr_decode(data, &h, &why);
	FUZZ_ASSERT(r == 0 || (r == -EPROTO && why));
	if (r)
		return;
	FUZZ_ASSERT(h.type >= 1 && h.type < LM_MSG_MAX && !h.flags);
	FUZZ_ASSERT(h.len <= LM_MSG_MAX_PAYLOAD);
	size_t len = size - LM_MSG_HDR_SIZE < h.len ? size - LM_MSG_HDR_SIZE : h.len;
	r = lm_msg_check_crc(data, data + LM_MSG_HDR_SIZE, (uint32_t)len);
	FUZZ_ASSERT(r == 0 || r == -EPROTO);
}

/* What every decoded message must satisfy, by type. */
static void valid(const struct lm_msg *m)
{
	switch (m->type) {
	case LM_MSG_PARAMS:
		FUZZ_ASSERT(m->params.nblocks >= 1 && m->params.nblocks <= LM_MAX_BLOCKS);
		for (uint32_t i = 0; i < m->params.nblocks; i++) {
			const struct lm_msg_block *b = &m->params.blocks[i];
			size_t n = strnlen(b->name, LM_NAME_MAX);
			FUZZ_ASSERT(n >= 1 && n < LM_NAME_MAX);
			FUZZ_ASSERT(b->size && b->size % LM_PAGE_SIZE == 0 &&
				    b->size / LM_PAGE_SIZE <= UINT32_MAX);
			for (uint32_t j = 0; j < i; j++)
				FUZZ_ASSERT(strcmp(m->params.blocks[j].name, b->name));
		}
		break;
	case LM_MSG_ITER:
	case LM_MSG_ITER_ACK:
		FUZZ_ASSERT(m->iteration >= 1);
		break;
	case LM_MSG_COMPLETE:
		FUZZ_ASSERT(m->complete.iteration >= 1);
		break;
	case LM_MSG_DEVSTATE:
		FUZZ_ASSERT(m->devstate.len >= 1 && m->devstate.len <= LM_MSG_MAX_PAYLOAD);
		break;
	case LM_MSG_DEVSTATE_END:
	case LM_MSG_DEVSTATE_LOADED:
		FUZZ_ASSERT(m->devstate_bytes >= 1 && m->devstate_bytes <= LM_DEVSTATE_MAX);
		break;
	case LM_MSG_ERROR: {
		size_t n = strnlen(m->error.text, sizeof(m->error.text));
		FUZZ_ASSERT(n <= LM_ERROR_TEXT_MAX);
		for (size_t i = 0; i < n; i++)
			FUZZ_ASSERT((uint8_t)m->error.text[i] >= 0x20 && m->error.text[i] != 0x7f);
		FUZZ_ASSERT(m->error.code < 0 && m->error.code > -4096);
		break;
	}
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	header(data, size);
	if (size < 1)
		return 0;
	uint16_t type = data[0] % (LM_MSG_MAX + 1);
	size_t len = size - 1;
	uint8_t *body = fuzz_dup(data + 1, len);
	struct lm_msg m, again;
	const char *why = NULL;

	memset(&m, 0, sizeof(m));
	memset(&again, 0, sizeof(again));
	int r = lm_msg_decode(type, body, len, &m, &why);
	FUZZ_ASSERT(r == 0 || (r == -EPROTO && why));
	FUZZ_ASSERT(r || (type >= 1 && type < LM_MSG_MAX));
	if (r == 0) {
		valid(&m);
		static uint8_t out[LM_MSG_HDR_SIZE + LM_MSG_BODY_MAX];
		int n = lm_msg_encode(&m, out, sizeof(out));
		FUZZ_ASSERT(n >= (int)LM_MSG_HDR_SIZE);
		size_t blen = (size_t)n - LM_MSG_HDR_SIZE;
		struct lm_msg_hdr h;
		FUZZ_ASSERT(lm_msg_hdr_decode(out, &h, &why) == 0);
		FUZZ_ASSERT(h.type == type && h.len == blen);
		FUZZ_ASSERT(lm_msg_check_crc(out, out + LM_MSG_HDR_SIZE, h.len) == 0);
		if (type != LM_MSG_ERROR)
			FUZZ_ASSERT(blen == len && !memcmp(out + LM_MSG_HDR_SIZE, body, len));
		FUZZ_ASSERT(lm_msg_decode(type, out + LM_MSG_HDR_SIZE, blen, &again, &why) == 0);
		if (type == LM_MSG_DEVSTATE) { /* data points into each decoder's input */
			FUZZ_ASSERT(m.devstate.data == body && again.devstate.len == m.devstate.len);
			FUZZ_ASSERT(!memcmp(again.devstate.data, body, len));
			again.devstate.data = m.devstate.data;
		}
		FUZZ_ASSERT(!memcmp(&m, &again, sizeof(m)));
	}
	free(body);
	return 0;
}
