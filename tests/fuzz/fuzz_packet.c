/* SPDX-License-Identifier: MIT */
/*
 * The multifd packet header and the receiver's checks of it
 * (lm_packet_decode, lm_packet_check, lm_packet_check_indices).
 * Input: the 64-byte header, then the u32 page indices as on the wire.
 * The session is fixed: an auto session (none, lz4, zstd allowed), the
 * connection of channel 1 expecting sequence number 0, four RAM blocks of
 * 1, 100, 2^18 and 2^32 - 1 pages.
 * Holds: a header is refused with a reason, or encoding what was decoded
 * gives back its bytes and every field is in range; a packet that passes
 * the checks fits the session and each of its indices lies in its block.
 */
#include <errno.h>

#include "codec/codec.h"
#include "core/wire.h"
#include "fuzz.h"
#include "util/le.h"

static const uint64_t block_pages[] = {1, 100, 1u << 18, UINT32_MAX};
#define NBLOCKS (sizeof(block_pages) / sizeof(block_pages[0]))

/* As a receiver of this session: the largest bound of its methods. */
static struct lm_packet_limits session(void)
{
	struct lm_packet_limits l = {.methods = lm_codec_by_name("auto")->methods,
				     .channel = 1,
				     .next_seq = 0,
				     .nblocks = NBLOCKS,
				     .block_pages = block_pages};
	for (uint8_t m = 0; m < LM_METHOD_MAX; m++) {
		size_t b = lm_codec_by_method(m)->bound(LM_PACKET_PAGES);
		if (l.methods & (1u << m) && b > l.max_payload)
			l.max_payload = b;
	}
	return l;
}

static void indices(const struct lm_packet_hdr *h, const uint8_t *data, size_t size)
{
	uint32_t n = h->normal + h->zero;
	uint32_t idx[LM_PACKET_PAGES];
	const char *why = NULL;

	if (size < LM_PACKET_HDR_SIZE + 4 * (size_t)n)
		return;
	for (uint32_t i = 0; i < n; i++)
		idx[i] = lm_rd32(data + LM_PACKET_HDR_SIZE + 4 * i);
	int r = lm_packet_check_indices(idx, n, block_pages[h->block], &why);
	FUZZ_ASSERT(r == 0 || (r == -EPROTO && why));
	for (uint32_t i = 0; i < n && r == 0; i++)
		FUZZ_ASSERT(idx[i] < block_pages[h->block]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < LM_PACKET_HDR_SIZE)
		return 0;
	uint8_t *in = fuzz_dup(data, LM_PACKET_HDR_SIZE);
	struct lm_packet_hdr h;
	const char *why = NULL;
	int r = lm_packet_decode(in, &h, &why);

	FUZZ_ASSERT(r == 0 || (r == -EPROTO && why));
	if (r)
		goto out;
	FUZZ_ASSERT(h.version == LM_WIRE_VERSION && h.method < LM_METHOD_MAX);
	FUZZ_ASSERT(!(h.flags & ~LM_PKT_FLAGS_KNOWN));
	FUZZ_ASSERT(!(h.flags & LM_PKT_FLAG_FINAL) || h.flags & LM_PKT_FLAG_SYNC);
	FUZZ_ASSERT((uint64_t)h.normal + h.zero <= LM_PACKET_PAGES && h.iteration >= 1);
	FUZZ_ASSERT(!(h.flags & LM_PKT_FLAG_SYNC) || !(h.normal || h.zero || h.payload_len));
	FUZZ_ASSERT(h.normal || !h.payload_len);
	uint8_t out[LM_PACKET_HDR_SIZE];
	lm_packet_encode(&h, out);
	FUZZ_ASSERT(!memcmp(out, in, LM_PACKET_HDR_SIZE));

	struct lm_packet_limits l = session();
	r = lm_packet_check(&h, &l, &why);
	FUZZ_ASSERT(r == 0 || (r == -EPROTO && why));
	if (r)
		goto out;
	FUZZ_ASSERT(l.methods & (1u << h.method));
	FUZZ_ASSERT(h.channel == l.channel && h.seq == l.next_seq);
	if (h.flags & LM_PKT_FLAG_SYNC)
		goto out;
	FUZZ_ASSERT(h.block < l.nblocks);
	if (h.method == LM_METHOD_NONE)
		FUZZ_ASSERT(h.payload_len == (uint64_t)h.normal * LM_PAGE_SIZE);
	else
		FUZZ_ASSERT(h.payload_len <= l.max_payload && (!h.normal || h.payload_len));
	indices(&h, data, size);
out:
	free(in);
	return 0;
}
