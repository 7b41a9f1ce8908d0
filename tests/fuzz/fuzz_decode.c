/* SPDX-License-Identifier: MIT */
/*
 * A method's receiver decoder (codec->decompress), as dest.c runs it on a
 * packet's payload: one target per wire method, FUZZ_METHOD (meson builds
 * this file once per method).
 * Input: up to 4 packets, decoded in order on one receiver context as one
 * channel does; each is
 *   u8 pages   bits 0-6: normal pages - 1 (1..128); bit 7: the pages are
 *              one contiguous run (else each is apart, as scattered guest
 *              pages are)
 *   u32 len    payload bytes (cut to what the input has left)
 *   payload
 * The first refused packet ends the channel, as it ends a migration.
 * Holds: decompress returns 0 or -EPROTO, writes nothing outside the pages
 * it was given, and on success wrote every byte of them (two receivers
 * whose pages start as different patterns agree on the verdict and the
 * result); pages that decoded compress and decode back to themselves, and
 * so do pages made of the input's own bytes (1..8 of them, the first
 * byte's layout), which a decoder that refuses everything would fail.
 */
#include <errno.h>

#include "codec/codec.h"
#include "fuzz.h"

#ifndef FUZZ_METHOD
#error "FUZZ_METHOD: the LM_METHOD_* this target decodes"
#endif

#define MAX_PACKETS 4

/* A packet's pages, each between guards, or one run of them. */
struct pages {
	uint8_t *p[LM_PACKET_PAGES];
	uint32_t n;
	bool run;
};

static void pages_alloc(struct pages *s, uint32_t n, bool run, uint8_t fill)
{
	s->n = n;
	s->run = run;
	if (run) {
		uint8_t *b = fuzz_guarded((size_t)n * LM_PAGE_SIZE, fill);
		for (uint32_t i = 0; i < n; i++)
			s->p[i] = b + (size_t)i * LM_PAGE_SIZE;
	} else {
		for (uint32_t i = 0; i < n; i++)
			s->p[i] = fuzz_guarded(LM_PAGE_SIZE, fill);
	}
}

static void pages_free(struct pages *s)
{
	if (s->run) {
		fuzz_guarded_free(s->p[0], (size_t)s->n * LM_PAGE_SIZE);
		return;
	}
	for (uint32_t i = 0; i < s->n; i++)
		fuzz_guarded_free(s->p[i], LM_PAGE_SIZE);
}

static bool pages_equal(const struct pages *a, const struct pages *b)
{
	for (uint32_t i = 0; i < a->n; i++)
		if (memcmp(a->p[i], b->p[i], LM_PAGE_SIZE))
			return false;
	return true;
}

/* The decoded pages, compressed by a fresh sender and decoded by a fresh
 * receiver, come back unchanged. */
static void round_trip(const struct lm_codec_ops *codec, const struct pages *s)
{
	struct lm_codec_cfg cfg = {.level = codec->default_level, .channel = 1, .channels = 1};
	void *snd = NULL, *rcv = NULL;
	FUZZ_ASSERT(codec->send_setup(&snd, &cfg) == 0);
	size_t cap = codec->bound(s->n);
	uint8_t *out = fuzz_alloc(cap), method;
	ssize_t len = codec->compress(snd, (const uint8_t *const *)s->p, s->n, out, cap, &method);
	FUZZ_ASSERT(len > 0 || (len == 0 && method == LM_METHOD_NONE));
	if (len > 0) {
		FUZZ_ASSERT(method == codec->method && (size_t)len <= cap);
		struct pages back;
		pages_alloc(&back, s->n, !s->run, 0);
		FUZZ_ASSERT(codec->recv_setup(&rcv) == 0);
		FUZZ_ASSERT(codec->decompress(rcv, out, (size_t)len, back.p, back.n) == 0);
		FUZZ_ASSERT(pages_equal(s, &back));
		pages_free(&back);
		codec->recv_cleanup(rcv);
	}
	free(out);
	codec->send_cleanup(snd);
}

/* 1..8 pages (fast enough to run on every input) holding the input's
 * bytes over and over (zeros for no input). */
static void input_round_trip(const struct lm_codec_ops *codec, const uint8_t *data,
			     size_t size)
{
	struct pages s;
	pages_alloc(&s, size ? (data[0] & 7u) + 1 : 1, size && data[0] & 0x80, 0);
	for (uint32_t i = 0; i < s.n && size; i++)
		for (size_t k = 0; k < LM_PAGE_SIZE; k++)
			s.p[i][k] = data[((size_t)i * LM_PAGE_SIZE + k) % size];
	round_trip(codec, &s);
	pages_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct lm_codec_ops *codec = lm_codec_by_method(FUZZ_METHOD);
	struct fuzz_in in = {data, size};
	void *ctx[2] = {NULL, NULL};

	input_round_trip(codec, data, size);

	FUZZ_ASSERT(codec->recv_setup(&ctx[0]) == 0 && codec->recv_setup(&ctx[1]) == 0);
	for (int k = 0; k < MAX_PACKETS && in.n; k++) {
		uint8_t b = fuzz_u8(&in);
		uint32_t n = (b & 0x7fu) + 1;
		size_t len;
		const uint8_t *p = fuzz_take(&in, fuzz_u32(&in), &len);
		uint8_t *payload = fuzz_dup(p, len);
		struct pages s[2];
		int r[2];

		for (int i = 0; i < 2; i++) {
			pages_alloc(&s[i], n, b & 0x80, i ? 0x5a : 0xa5);
			r[i] = codec->decompress(ctx[i], payload, len, s[i].p, n);
		}
		FUZZ_ASSERT(r[0] == 0 || r[0] == -EPROTO);
		FUZZ_ASSERT(r[0] == r[1]);
		if (r[0] == 0) {
			FUZZ_ASSERT(pages_equal(&s[0], &s[1]));
			round_trip(codec, &s[0]);
		}
		for (int i = 0; i < 2; i++)
			pages_free(&s[i]);
		free(payload);
		if (r[0])
			break;
	}
	codec->recv_cleanup(ctx[0]);
	codec->recv_cleanup(ctx[1]);
	return 0;
}
