/* SPDX-License-Identifier: MIT */
/*
 * The engine formats of one method (FUZZ_METHOD; meson builds this file
 * once per method with engines): every software engine's decompress side
 * by side, as framed.c runs the receiver's on each page (lz4 block, raw
 * deflate, zlib-wrapped deflate) or on a packet (qatzip's raw deflate).
 * Input: u8 pages (bits 0-6 + 1; per-page methods always decode one page),
 * then the compressed bytes.
 * Holds: each engine returns 0 or -EPROTO, writes nothing outside its
 * output and on success all of it; engines that both accept an input
 * decode it to the same bytes; the decoded pages, and pages made of the
 * input's own bytes, compressed by each engine, decode with every engine
 * back to themselves ("any engine's output decodes with any engine of the
 * same method").  Engines need not
 * agree on refusing: ISA-L accepts some streams that zlib refuses as
 * invalid (a dynamic block's incomplete distance code: "invalid distances
 * set"), which is harmless - the output stays within its pages and the
 * packet's content CRC still decides.
 */
#include <errno.h>

#include "accel/engine.h"
#include "fuzz.h"

#ifndef FUZZ_METHOD
#error "FUZZ_METHOD: the LM_METHOD_* whose engines this target decodes with"
#endif

#define MAX_ENGINES 4

struct engine {
	const struct lm_engine_ops *ops;
	void *ctx;
};

static uint32_t engines(struct engine *e, uint32_t max_jobs)
{
	size_t n;
	const struct lm_engine_ops *const *t = lm_engine_table(&n);
	uint32_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i]->method != FUZZ_METHOD || t[i]->hardware || t[i]->absent ||
		    !t[i]->decompress)
			continue;
		FUZZ_ASSERT(k < MAX_ENGINES);
		struct lm_engine_cfg cfg = {.method = FUZZ_METHOD, .level = 1,
					    .max_jobs = max_jobs, .channel = 1};
		e[k].ops = t[i];
		FUZZ_ASSERT(t[i]->setup(&e[k].ctx, &cfg) == 0);
		k++;
	}
	FUZZ_ASSERT(k >= 1);
	return k;
}

/* Decodes into a fresh guarded buffer filled with fill; returns it, or NULL
 * when the engine refused the input. */
static uint8_t *decode(const struct engine *e, const uint8_t *in, uint32_t len,
		       uint32_t out_len, uint8_t fill)
{
	uint8_t *out = fuzz_guarded(out_len, fill);
	int r = e->ops->decompress(e->ctx, in, len, out, out_len);
	FUZZ_ASSERT(r == 0 || r == -EPROTO);
	if (r == 0)
		return out;
	fuzz_guarded_free(out, out_len);
	return NULL;
}

/* Each engine's compression of pages decodes with every engine. */
static void round_trip(const struct engine *e, uint32_t ne, const uint8_t *pages,
		       uint32_t npages)
{
	const uint8_t *src[LM_PACKET_PAGES];
	uint32_t out_len = npages * LM_PAGE_SIZE;
	for (uint32_t i = 0; i < npages; i++)
		src[i] = pages + (size_t)i * LM_PAGE_SIZE;
	for (uint32_t i = 0; i < ne; i++) {
		/* As framed.c: output not smaller than the input is sent raw. */
		uint8_t *dst = fuzz_guarded(out_len - 1, 0);
		struct lm_job j = {.src = src, .npages = npages, .dst = dst, .cap = out_len - 1};
		e[i].ops->run(e[i].ctx, &j, 1);
		FUZZ_ASSERT(j.status == 0 || j.status == -ENOSPC);
		if (j.status == 0) {
			FUZZ_ASSERT(j.len >= 1 && j.len <= j.cap);
			for (uint32_t k = 0; k < ne; k++) {
				uint8_t *back = decode(&e[k], dst, j.len, out_len, 0);
				FUZZ_ASSERT(back && !memcmp(back, pages, out_len));
				fuzz_guarded_free(back, out_len);
			}
		}
		fuzz_guarded_free(dst, out_len - 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	bool per_page = lm_method_per_page(FUZZ_METHOD);
	uint32_t npages = per_page ? 1 : (fuzz_u8(&in) & 0x7fu) + 1;
	uint32_t out_len = npages * LM_PAGE_SIZE;
	if (per_page)
		fuzz_u8(&in);
	size_t len;
	const uint8_t *p = fuzz_take(&in, in.n, &len);
	if (len > UINT32_MAX)
		return 0;
	uint8_t *payload = fuzz_dup(p, len);
	struct engine e[MAX_ENGINES];
	uint32_t ne = engines(e, 1);
	uint8_t *first = NULL; /* the first engine's output that accepted the input */

	for (uint32_t i = 0; i < ne; i++) {
		uint8_t *a = decode(&e[i], payload, (uint32_t)len, out_len, 0xa5);
		uint8_t *b = decode(&e[i], payload, (uint32_t)len, out_len, 0x5a);
		FUZZ_ASSERT(!a == !b && (!a || !memcmp(a, b, out_len)));
		if (b)
			fuzz_guarded_free(b, out_len);
		if (a && !first) {
			first = a;
			continue;
		}
		FUZZ_ASSERT(!a || !memcmp(first, a, out_len));
		if (a)
			fuzz_guarded_free(a, out_len);
	}
	if (first) {
		round_trip(e, ne, first, npages);
		fuzz_guarded_free(first, out_len);
	}
	/* A decoder that refuses everything fails here. */
	uint8_t *own = fuzz_guarded(out_len, 0);
	for (uint32_t k = 0; k < out_len && size; k++)
		own[k] = data[k % size];
	round_trip(e, ne, own, npages);
	fuzz_guarded_free(own, out_len);
	for (uint32_t i = 0; i < ne; i++)
		e[i].ops->cleanup(e[i].ctx);
	free(payload);
	return 0;
}
