/* SPDX-License-Identifier: MIT */
/*
 * Codec round trips and rejection, table-driven over every registered wire
 * codec and several levels; auto on its own.  Packets go through one long-lived sender and one
 * receiver context, as on a channel, so the streaming state is exercised
 * across packets.  Every corrupted, truncated, padded or miscounted payload
 * must give -EPROTO, never a crash and never success.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <zlib.h>
#include <zstd.h>

#include "codec/codec.h"
#include "util/util.h"
#include "t.h"

#define PS LM_PAGE_SIZE
#define MAXP LM_PACKET_PAGES

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

enum content { C_ZERO, C_RANDOM, C_TEXT, C_MIXED, C_COUNT };

static void fill_page(uint8_t *p, enum content c, unsigned salt)
{
	static const char *const words[] = { "migration ", "dirty ", "page ", "channel ", "zstd ",
				       "deflate ", "precopy ", "bitmap ", "\n", "ram " };

	switch (c) {
	case C_ZERO:
		memset(p, 0, PS);
		break;
	case C_RANDOM:
		for (size_t i = 0; i < PS; i += 8) {
			uint64_t v = rnd();

			memcpy(p + i, &v, 8);
		}
		break;
	case C_TEXT:
		for (size_t i = 0; i < PS;) {
			const char *w = words[rnd() % 10];
			size_t l = strlen(w);

			if (l > PS - i)
				l = PS - i;
			memcpy(p + i, w, l);
			i += l;
		}
		p[salt % PS] = (uint8_t)salt;
		break;
	case C_MIXED:
	default:
		fill_page(p, (enum content)(salt % 3), salt);
		break;
	}
}

/* n pages at the given addresses, filled with one kind of content. */
struct packet {
	uint32_t n;
	uint8_t *src[MAXP + 1];
	uint8_t *comp;
	size_t len;
	enum content c;
};

/*
 * Page layouts: one contiguous buffer (codecs may merge runs), separate
 * allocations, and a contiguous buffer in reverse order (adjacent in
 * memory but not in packet order: a run merger must not join those).
 */
enum layout { L_CONTIG, L_SCATTER, L_REVERSE, L_COUNT };

struct pages {
	uint8_t *block;   /* contiguous storage, or NULL */
	uint8_t *sep[MAXP + 1];
	uint8_t *p[MAXP + 1];
	uint32_t n;
};

static void pages_alloc(struct pages *pg, uint32_t n, enum layout l)
{
	memset(pg, 0, sizeof(*pg));
	pg->n = n;
	if (l == L_SCATTER) {
		for (uint32_t i = 0; i < n; i++) {
			pg->sep[i] = aligned_alloc(PS, PS);
			pg->p[i] = pg->sep[i];
		}
		return;
	}
	pg->block = aligned_alloc(PS, (size_t)n * PS);
	for (uint32_t i = 0; i < n; i++)
		pg->p[i] = pg->block + (size_t)(l == L_REVERSE ? n - 1 - i : i) * PS;
}

static void pages_free(struct pages *pg)
{
	for (uint32_t i = 0; i < pg->n; i++)
		free(pg->sep[i]);
	free(pg->block);
}

static int tx_setup(const struct lm_codec_ops *ops, void **tx, int level)
{
	struct lm_codec_cfg cfg = { .level = level, .channel = 1 };

	return ops->send_setup(tx, &cfg);
}

/* Methods made by engines (src/codec/framed.c) carry a CRC of their
 * content: every corruption is caught, not just most. */
static bool framed(const struct lm_codec_ops *ops)
{
	return ops->method >= LM_METHOD_LZ4;
}

static int decode(const struct lm_codec_ops *ops, void *rx, const uint8_t *in, size_t len,
		  uint32_t n, uint8_t **dst)
{
	return ops->decompress(rx, in, len, (uint8_t *const *)dst, n);
}

static bool same_pages(uint8_t *const *a, uint8_t *const *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (memcmp(a[i], b[i], PS) != 0)
			return false;
	return true;
}

/*
 * Compresses n pages on tx into out[0..cap) and returns the payload's
 * length as a sender puts it on the wire: for the verdict "send them raw"
 * the pages themselves, copied into out here.  *method gets the packet's.
 */
static ssize_t payload(const struct lm_codec_ops *ops, void *tx, uint8_t *const *src, uint32_t n,
		       uint8_t *out, size_t cap, uint8_t *method)
{
	ssize_t r = ops->compress(tx, (const uint8_t *const *)src, n, out, cap, method);

	CHECKF(r < 0 || (ops->methods & (1u << *method)), "%s: packet method %u", ops->name,
	       *method);
	if (r != 0 || *method != LM_METHOD_NONE)
		return r;
	if (cap < (size_t)n * PS)
		return -ENOSPC;
	for (uint32_t i = 0; i < n; i++)
		memcpy(out + (size_t)i * PS, src[i], PS);
	return (ssize_t)n * PS;
}

/* Compresses pk (sources already filled) on tx; stores the payload. */
static bool compress_packet(const struct lm_codec_ops *ops, void *tx, struct packet *pk)
{
	size_t cap = ops->bound(pk->n);
	uint8_t method;
	ssize_t r;

	pk->comp = malloc(cap ? cap : 1);
	r = payload(ops, tx, pk->src, pk->n, pk->comp, cap, &method);
	CHECKF(r >= 0 && (size_t)r <= cap, "%s: compress %u pages: %zd (cap %zu)", ops->name,
	       pk->n, r, cap);
	pk->len = r > 0 ? (size_t)r : 0;
	return r >= 0;
}

/*
 * A channel's worth of packets: every layout, size and kind of content
 * appears, and packet 2 repeats packet 1's random pages, which only
 * compress through matches into the previous packet (28 KiB back, inside
 * even zlib's 32 KiB window).
 */
static const uint32_t seq_sizes[] = { 1, 7, 7, 128, 1, 128, 3 };
static const enum content seq_kinds[] = { C_ZERO, C_RANDOM, C_RANDOM, C_TEXT,
					  C_ZERO, C_MIXED,  C_TEXT };
#define NSEQ (sizeof(seq_sizes) / sizeof(seq_sizes[0]))

static void roundtrip_stream(const struct lm_codec_ops *ops, int level)
{
	void *tx = NULL, *rx = NULL;
	struct pages src[NSEQ], dst;
	struct packet pk[NSEQ];
	unsigned salt = 1;

	CHECK(tx_setup(ops, &tx, level) == 0);
	CHECK(ops->recv_setup(&rx) == 0);
	for (size_t k = 0; k < NSEQ; k++) {
		uint32_t n = seq_sizes[k];

		pages_alloc(&src[k], n, (enum layout)(k % L_COUNT));
		pk[k].n = n;
		pk[k].c = seq_kinds[k];
		for (uint32_t i = 0; i < n; i++) {
			pk[k].src[i] = src[k].p[i];
			fill_page(pk[k].src[i], pk[k].c, salt++);
		}
		if (k == 2)
			for (uint32_t i = 0; i < n; i++)
				memcpy(pk[k].src[i], pk[1].src[i], PS);
		compress_packet(ops, tx, &pk[k]);

		pages_alloc(&dst, n, (enum layout)((k + 1) % L_COUNT));
		for (uint32_t i = 0; i < n; i++)
			memset(dst.p[i], 0xa5, PS);
		int r = decode(ops, rx, pk[k].comp, pk[k].len, n, dst.p);

		CHECKF(r == 0, "%s/%d: packet %zu (%u pages, content %d): %d", ops->name, level, k,
		       n, pk[k].c, r);
		CHECKF(same_pages(dst.p, pk[k].src, n), "%s/%d: packet %zu differs", ops->name,
		       level, k);
		pages_free(&dst);
	}
	/* Compression really happens; a stream (zlib) really carries state
	 * from packet to packet, a frame per packet (zstd) really does not. */
	if (ops->method != LM_METHOD_NONE)
		CHECKF(pk[3].len < pk[3].n * PS / 2, "%s/%d: text packet %zu bytes", ops->name,
		       level, pk[3].len);
	if (ops->method == LM_METHOD_ZLIB)
		CHECKF(pk[2].len < pk[1].len / 20, "%s/%d: repeat %zu vs %zu", ops->name, level,
		       pk[2].len, pk[1].len);
	if (ops->method == LM_METHOD_ZSTD)
		CHECKF(pk[2].len == pk[1].len, "%s/%d: repeat %zu vs %zu", ops->name, level,
		       pk[2].len, pk[1].len);
	for (size_t k = 0; k < NSEQ; k++) {
		free(pk[k].comp);
		pages_free(&src[k]);
	}
	ops->send_cleanup(tx);
	ops->recv_cleanup(rx);
}

/* 128 zero pages must compress to almost nothing; random ones must not
 * exceed the bound (checked in compress_packet). */
static void extremes(const struct lm_codec_ops *ops, int level)
{
	for (int c = C_ZERO; c <= C_RANDOM; c++) {
		void *tx = NULL, *rx = NULL;
		struct pages src, dst;
		struct packet pk = { .n = MAXP, .c = (enum content)c };

		CHECK(tx_setup(ops, &tx, level) == 0);
		CHECK(ops->recv_setup(&rx) == 0);
		pages_alloc(&src, MAXP, L_CONTIG);
		pages_alloc(&dst, MAXP, L_SCATTER);
		/* Several packets on one stream: later zero packets are tiny. */
		for (int rep = 0; rep < 3; rep++) {
			for (uint32_t i = 0; i < MAXP; i++) {
				pk.src[i] = src.p[i];
				fill_page(src.p[i], pk.c, i);
			}
			compress_packet(ops, tx, &pk);
			CHECK(decode(ops, rx, pk.comp, pk.len, MAXP, dst.p) == 0);
			CHECK(same_pages(dst.p, src.p, MAXP));
			if (ops->method != LM_METHOD_NONE && c == C_ZERO)
				CHECKF(pk.len < PS, "%s/%d: 128 zero pages -> %zu bytes", ops->name,
				       level, pk.len);
			free(pk.comp);
		}
		pages_free(&src);
		pages_free(&dst);
		ops->send_cleanup(tx);
		ops->recv_cleanup(rx);
	}
}

/* ---- rejection ------------------------------------------------------------ */

/* Decodes pk[0..k) on a fresh receiver, all of which must succeed. */
static void *rx_upto(const struct lm_codec_ops *ops, struct packet *pk, size_t k,
		     struct pages *dst)
{
	void *rx = NULL;

	CHECK(ops->recv_setup(&rx) == 0);
	for (size_t j = 0; j < k; j++)
		CHECK(decode(ops, rx, pk[j].comp, pk[j].len, pk[j].n, dst->p) == 0);
	return rx;
}

/* Expects -EPROTO for packet k replaced by (buf, len, n). */
static void expect_reject(const struct lm_codec_ops *ops, struct packet *pk, size_t k,
			  const uint8_t *buf, size_t len, uint32_t n, const char *what)
{
	struct pages dst;
	void *rx;
	int r;

	pages_alloc(&dst, MAXP + 1, L_SCATTER);
	rx = rx_upto(ops, pk, k, &dst);
	r = decode(ops, rx, buf, len, n, dst.p);
	CHECKF(r == -EPROTO, "%s: packet %zu %s (len %zu, n %u): got %d", ops->name, k, what, len,
	       n, r);
	/* A streaming receiver is now out of step with its sender and must
	 * refuse even a good packet rather than decode it against a broken
	 * window.  (Method none has no stream; zstd sends a frame per packet,
	 * so its next packet decodes on its own.) */
	if (ops->method == LM_METHOD_ZLIB && k + 1 < 3 && r == -EPROTO)
		CHECK(decode(ops, rx, pk[k + 1].comp, pk[k + 1].len, pk[k + 1].n, dst.p) ==
		      -EPROTO);
	ops->recv_cleanup(rx);
	pages_free(&dst);
}

static void rejects(const struct lm_codec_ops *ops)
{
	/* Three packets on one stream: text (compressible), random, text. */
	static const uint32_t sizes[3] = { 7, 3, 128 };
	static const enum content kinds[3] = { C_TEXT, C_RANDOM, C_MIXED };
	struct packet pk[3];
	struct pages src[3];
	void *tx = NULL;
	uint8_t *buf = malloc(2 * ops->bound(MAXP + 1) + 64); /* doubled packet, garbage */

	CHECK(tx_setup(ops, &tx, ops->default_level) == 0);
	for (size_t k = 0; k < 3; k++) {
		pages_alloc(&src[k], sizes[k], L_SCATTER);
		pk[k].n = sizes[k];
		pk[k].c = kinds[k];
		for (uint32_t i = 0; i < sizes[k]; i++) {
			pk[k].src[i] = src[k].p[i];
			fill_page(src[k].p[i], kinds[k], 77 + i);
		}
		compress_packet(ops, tx, &pk[k]);
	}
	ops->send_cleanup(tx);

	for (size_t k = 0; k < 3; k++) {
		const uint8_t *c = pk[k].comp;
		size_t len = pk[k].len;
		uint32_t n = pk[k].n;

		/* Truncations: every length near the end, half, one byte, none. */
		for (size_t cut = 1; cut <= 12 && cut <= len; cut++)
			expect_reject(ops, pk, k, c, len - cut, n, "truncated");
		expect_reject(ops, pk, k, c, len / 2, n, "half");
		expect_reject(ops, pk, k, c, 1, n, "one byte");
		expect_reject(ops, pk, k, c, 0, n, "empty");
		/* Junk after a complete packet. */
		static const uint8_t junk[] = { 0x00, 0xab, 0xff, 0x02, 0x01 };
		for (size_t j = 0; j < sizeof(junk); j++) {
			memcpy(buf, c, len);
			buf[len] = junk[j];
			expect_reject(ops, pk, k, buf, len + 1, n, "one junk byte appended");
		}
		memcpy(buf, c, len);
		memcpy(buf + len, c, len); /* the packet twice */
		expect_reject(ops, pk, k, buf, 2 * len, n, "doubled");
		/* Wrong page counts. */
		expect_reject(ops, pk, k, c, len, n - 1, "one page fewer");
		expect_reject(ops, pk, k, c, len, n + 1, "one page more");
		/* Garbage of the right length and of others. */
		for (int g = 0; g < 4; g++) {
			size_t glen = g == 0 ? len : (size_t)(rnd() % (2 * len + 16)) + 1;

			if (ops->method == LM_METHOD_NONE && glen == len)
				continue; /* raw pages: any bytes of that length are valid */
			for (size_t i = 0; i < glen; i++)
				buf[i] = (uint8_t)rnd();
			expect_reject(ops, pk, k, buf, glen, n, "garbage");
		}
	}
	/* Corrupted stream header of the first packet (zlib CMF, zstd magic). */
	if (ops->method != LM_METHOD_NONE) {
		memcpy(buf, pk[0].comp, pk[0].len);
		buf[0] ^= 0x01;
		expect_reject(ops, pk, 0, buf, pk[0].len, pk[0].n, "bad stream header");
	}
	/*
	 * Single-bit flips across the payload.  Without a checksum in the
	 * stream not every flip is detectable (the packet CRC is what catches
	 * those), so a flip may decode to other bytes; what we demand is no
	 * crash, no out-of-bounds access (run under ASan/UBSan) and a return
	 * of 0 or -EPROTO.
	 */
	for (size_t k = 0; k < 3; k++) {
		struct pages dst;
		size_t step = pk[k].len / 97 + 1;

		pages_alloc(&dst, MAXP, L_SCATTER); /* also holds earlier packets */
		for (size_t pos = 0; pos < pk[k].len; pos += step) {
			void *rx = rx_upto(ops, pk, k, &dst);
			int r;

			memcpy(buf, pk[k].comp, pk[k].len);
			buf[pos] ^= (uint8_t)(1u << (pos % 8));
			r = decode(ops, rx, buf, pk[k].len, pk[k].n, dst.p);
			CHECKF(r == 0 || r == -EPROTO, "%s: flip at %zu: %d", ops->name, pos, r);
			/* A flip the decoder cannot see (a padding bit) must
			 * still give the right pages. */
			CHECKF(!framed(ops) || r == -EPROTO || same_pages(dst.p, pk[k].src, pk[k].n),
			       "%s: flip at %zu gave wrong pages", ops->name, pos);
			ops->recv_cleanup(rx);
		}
		pages_free(&dst);
	}

	for (size_t k = 0; k < 3; k++) {
		free(pk[k].comp);
		pages_free(&src[k]);
	}
	free(buf);
}

/* ---- sender-side errors --------------------------------------------------- */

static void sender_errors(const struct lm_codec_ops *ops)
{
	void *tx = NULL;
	struct pages src;
	uint8_t *out, m;
	ssize_t r;

	CHECK(tx_setup(ops, &tx, ops->min_level - 1) == -EINVAL);
	CHECK(tx_setup(ops, &tx, ops->max_level + 1) == -EINVAL);
	CHECK(ops->default_level >= ops->min_level && ops->default_level <= ops->max_level);

	/* An output buffer far too small fails cleanly, then stays failed. */
	pages_alloc(&src, 16, L_CONTIG);
	for (uint32_t i = 0; i < 16; i++)
		fill_page(src.p[i], C_RANDOM, i);
	out = malloc(ops->bound(16));
	CHECK(tx_setup(ops, &tx, ops->default_level) == 0);
	r = ops->compress(tx, (const uint8_t *const *)src.p, 16, out, 100, &m);
	/* Method none writes nothing: its verdict is always "send them raw". */
	if (ops->method == LM_METHOD_NONE)
		CHECKF(r == 0 && m == LM_METHOD_NONE, "%s: compress into 100 bytes: %zd",
		       ops->name, r);
	else
		CHECKF(r < 0, "%s: compress into 100 bytes: %zd", ops->name, r);
	/* A stream (zlib) cannot go on after a failed packet; a frame per
	 * packet (zstd) starts afresh. */
	if (ops->method == LM_METHOD_ZLIB)
		CHECK(ops->compress(tx, (const uint8_t *const *)src.p, 1, out, ops->bound(1), &m) <
		      0);
	if (ops->method == LM_METHOD_ZSTD)
		CHECK(ops->compress(tx, (const uint8_t *const *)src.p, 1, out, ops->bound(1), &m) >
		      0);
	ops->send_cleanup(tx);
	/* Zero pages: nothing on the wire, and nothing expected back. */
	CHECK(tx_setup(ops, &tx, ops->default_level) == 0);
	CHECK(ops->compress(tx, (const uint8_t *const *)src.p, 0, out, ops->bound(0), &m) == 0);
	CHECK(m == ops->method);
	ops->send_cleanup(tx);
	ops->send_cleanup(NULL);
	ops->recv_cleanup(NULL);
	free(out);
	pages_free(&src);
}

/* ---- wire conformance ----------------------------------------------------- */

/*
 * The packets of a channel, concatenated, must be a plain stream of their
 * method that any decoder reads: a zlib stream (never finished) or a zstd
 * frame (never ended).  Decode them with the libraries directly.
 */
static bool reference_decode(uint8_t method, const uint8_t *in, size_t len, uint8_t *out,
			     size_t outlen)
{
	if (method == LM_METHOD_NONE) {
		if (len != outlen)
			return false;
		memcpy(out, in, len);
		return true;
	}
	if (method == LM_METHOD_ZLIB) {
		z_stream zs = { 0 };
		int r;

		if (inflateInit(&zs) != Z_OK)
			return false;
		zs.next_in = (Bytef *)(uintptr_t)in;
		zs.avail_in = (uInt)len;
		zs.next_out = out;
		zs.avail_out = (uInt)outlen;
		r = inflate(&zs, Z_SYNC_FLUSH);
		inflateEnd(&zs);
		return r == Z_OK && zs.avail_in == 0 && zs.avail_out == 0;
	}
	if (method == LM_METHOD_ZSTD) {
		/* One frame per packet: the packets concatenated are a valid
		 * multi-frame zstd stream. */
		size_t r = ZSTD_decompress(out, outlen, in, len);
		return !ZSTD_isError(r) && r == outlen;
	}
	return false;
}

/* A page or packet of an engine method, decoded by the plain libraries:
 * zlib for the deflate methods, liblz4 for lz4. */
static bool library_decode(uint8_t method, const uint8_t *in, size_t len, uint8_t *out,
			   size_t outlen)
{
	if (method == LM_METHOD_LZ4)
		return LZ4_decompress_safe((const char *)in, (char *)out, (int)len, (int)outlen) ==
		       (int)outlen;
	z_stream zs = { 0 };
	int r;

	if (inflateInit2(&zs, method == LM_METHOD_UADK ? 15 : -15) != Z_OK)
		return false;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)outlen;
	r = inflate(&zs, Z_FINISH);
	inflateEnd(&zs);
	return r == Z_STREAM_END && zs.avail_in == 0 && zs.avail_out == 0;
}

/* The framing of docs/wire-format.md ("Engine methods"), parsed here
 * independently of src/codec/framed.c. */
static bool framed_reference_decode(uint8_t method, const uint8_t *in, size_t len,
				    uint32_t n, uint8_t *out)
{
	if (len < 4)
		return false;
	uint32_t crc = (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 |
		       (uint32_t)in[3] << 24;
	const uint8_t *p = in + 4, *end = in + len;

	if (method == LM_METHOD_QATZIP) {
		if ((size_t)(end - p) == (size_t)n * PS)
			memcpy(out, p, (size_t)n * PS);
		else if (!library_decode(method, p, (size_t)(end - p), out, (size_t)n * PS))
			return false;
	} else {
		const uint8_t *lens = p;

		p += 2 * (size_t)n;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t l = (uint32_t)lens[2 * i] | (uint32_t)lens[2 * i + 1] << 8;

			if (p + l > end)
				return false;
			if (l == PS)
				memcpy(out + (size_t)i * PS, p, PS);
			else if (!library_decode(method, p, l, out + (size_t)i * PS, PS))
				return false;
			p += l;
		}
		if (p != end)
			return false;
	}
	return lm_crc32c(0, out, (size_t)n * PS) == crc;
}

static void conformance(const struct lm_codec_ops *ops)
{
	void *tx = NULL;
	struct pages src;
	uint32_t total = 0;
	size_t clen = 0;
	uint8_t *cat = malloc(4 * ops->bound(MAXP));
	uint8_t *ref = malloc((size_t)4 * MAXP * PS);
	uint8_t *want = malloc((size_t)4 * MAXP * PS);

	CHECK(tx_setup(ops, &tx, ops->default_level) == 0);
	pages_alloc(&src, MAXP, L_SCATTER);
	for (int k = 0; k < 4; k++) {
		uint32_t n = k == 2 ? MAXP : 5 + (uint32_t)k;
		uint8_t m;
		ssize_t r;

		for (uint32_t i = 0; i < n; i++) {
			fill_page(src.p[i], C_MIXED, (unsigned)(k * 1000) + i);
			memcpy(want + (size_t)(total + i) * PS, src.p[i], PS);
		}
		r = payload(ops, tx, src.p, n, cat + clen, ops->bound(n), &m);
		CHECK(r >= 0);
		/* Engine methods: each packet on its own, by the libraries. */
		if (framed(ops))
			CHECKF(framed_reference_decode(ops->method, cat + clen, (size_t)r, n,
						       ref + (size_t)total * PS),
			       "%s: library decode of packet %d", ops->name, k);
		clen += r > 0 ? (size_t)r : 0;
		total += n;
	}
	if (!framed(ops))
		CHECKF(reference_decode(ops->method, cat, clen, ref, (size_t)total * PS),
		       "%s: plain library decode of concatenated packets", ops->name);
	CHECK(memcmp(ref, want, (size_t)total * PS) == 0);
	ops->send_cleanup(tx);
	pages_free(&src);
	free(cat);
	free(ref);
	free(want);
}

/* ---- registry ------------------------------------------------------------- */

static void registry(void)
{
	size_t count = 0, wire = 0;
	const struct lm_codec_ops *const *t = lm_codec_table(&count);
	bool seen[LM_METHOD_MAX] = { false };

	for (size_t i = 0; i < count; i++) {
		CHECK(t[i] && t[i]->name);
		CHECK(lm_codec_by_name(t[i]->name) == t[i]);
		CHECK(lm_codec_by_method(t[i]->method) == t[i]);
		/* bound must cover the largest packet at any size */
		CHECK(t[i]->bound(MAXP) >= (size_t)MAXP * PS);
		CHECK(t[i]->bound(1) >= PS);
		/* packets carry wire methods only */
		CHECK(t[i]->methods && !(t[i]->methods >> LM_METHOD_MAX));
		if (t[i]->method == LM_METHOD_AUTO)
			continue;
		CHECK(t[i]->method < LM_METHOD_MAX && !seen[t[i]->method]);
		CHECK(t[i]->methods == 1u << t[i]->method);
		CHECK(t[i]->decompress);
		if (t[i]->method < LM_METHOD_MAX)
			seen[t[i]->method] = true;
		wire++;
	}
	CHECK(wire == LM_METHOD_MAX); /* every wire method has a software engine */
	CHECK(count == LM_METHOD_MAX + 1); /* and auto */
	CHECK(lm_codec_by_name("none") && lm_codec_by_name("none")->method == LM_METHOD_NONE);
	CHECK(lm_codec_by_name("zlib") && lm_codec_by_name("zlib")->method == LM_METHOD_ZLIB);
	CHECK(lm_codec_by_name("zstd") && lm_codec_by_name("zstd")->method == LM_METHOD_ZSTD);
	CHECK(lm_codec_by_name("lz4") && lm_codec_by_name("lz4")->method == LM_METHOD_LZ4);
	CHECK(lm_codec_by_name("qpl") && lm_codec_by_name("qpl")->method == LM_METHOD_QPL);
	CHECK(lm_codec_by_name("auto") && lm_codec_by_name("auto")->method == LM_METHOD_AUTO);
	CHECK(lm_codec_by_name("lz5") == NULL);
	CHECK(lm_codec_by_name("") == NULL);
	CHECK(lm_codec_by_name(NULL) == NULL);
	CHECK(lm_codec_by_method(LM_METHOD_MAX) == NULL);
	CHECK(lm_codec_by_method(255) == NULL);
}

/* ---- auto ----------------------------------------------------------------- */

/*
 * One auto sender: every packet names a method auto may use and decodes
 * with that method's receiver (streams kept across packets, as on a
 * channel); raw is a verdict, not a payload; every packet is counted once.
 * Returns the method of the last packet.
 */
static uint8_t auto_run(const struct lm_codec_cfg *cfg, enum content c, int packets)
{
	const struct lm_codec_ops *ops = lm_codec_by_name("auto");
	void *tx = NULL, *rx[LM_METHOD_MAX] = { NULL };
	struct pages src, dst;
	size_t cap = ops->bound(MAXP);
	uint8_t *out = malloc(cap), method = 0xff;
	uint64_t before = 0, after = 0;

	for (int k = 0; k < LM_AUTO_N; k++)
		before += cfg->counters->auto_packets[k];
	CHECK(ops->send_setup(&tx, cfg) == 0);
	for (uint8_t m = 1; m < LM_METHOD_MAX; m++)
		if (ops->methods & (1u << m))
			CHECK(lm_codec_by_method(m)->recv_setup(&rx[m]) == 0);
	pages_alloc(&src, MAXP, L_SCATTER);
	pages_alloc(&dst, MAXP, L_SCATTER);
	for (int k = 0; k < packets; k++) {
		for (uint32_t i = 0; i < MAXP; i++)
			fill_page(src.p[i], c, (unsigned)k * MAXP + i);
		ssize_t r = ops->compress(tx, (const uint8_t *const *)src.p, MAXP, out, cap,
					  &method);
		CHECKF(r >= 0 && (size_t)r <= cap, "auto: compress: %zd", r);
		CHECKF(method < LM_METHOD_MAX && (ops->methods & (1u << method)),
		       "auto: method %u", method);
		if (method == LM_METHOD_NONE) {
			CHECK(r == 0);
			continue;
		}
		CHECK(r > 0);
		CHECK(decode(lm_codec_by_method(method), rx[method], out, (size_t)r, MAXP,
			     dst.p) == 0);
		CHECK(same_pages(dst.p, src.p, MAXP));
	}
	/* No pages: no payload, not counted. */
	uint8_t empty;
	CHECK(ops->compress(tx, (const uint8_t *const *)src.p, 0, out, cap, &empty) == 0);
	for (int k = 0; k < LM_AUTO_N; k++)
		after += cfg->counters->auto_packets[k];
	CHECKF(after - before == (uint64_t)packets, "auto: %llu packets counted of %d",
	       (unsigned long long)(after - before), packets);
	ops->send_cleanup(tx);
	for (uint8_t m = 0; m < LM_METHOD_MAX; m++)
		if (rx[m])
			lm_codec_by_method(m)->recv_cleanup(rx[m]);
	pages_free(&src);
	pages_free(&dst);
	free(out);
	return method;
}

static void auto_codec(void)
{
	const struct lm_codec_ops *ops = lm_codec_by_name("auto");
	static struct lm_codec_counters cnt;
	_Atomic uint64_t link = 0;
	/* Test hook speeds: link (per channel), lz4, zstd, zstd-hi; 0 = measure. */
	uint64_t slow[LM_AUTO_N] = { 50000000, 600000000, 350000000, 0 };
	uint64_t measured_link[LM_AUTO_N] = { 0, 600000000, 350000000, 300000000 };
	struct lm_codec_cfg cfg = { .level = 3, .channel = 1, .channels = 2, .counters = &cnt,
				    .link_rate = &link };
	void *tx = NULL;

	CHECK(ops->recv_setup == NULL && ops->decompress == NULL);
	cfg.level = 0;
	CHECK(ops->send_setup(&tx, &cfg) == -EINVAL);
	cfg.level = 20;
	CHECK(ops->send_setup(&tx, &cfg) == -EINVAL);
	cfg.level = 3;

	/* Nothing measured yet: zstd, never far off. */
	CHECK(auto_run(&cfg, C_TEXT, 3) == LM_METHOD_ZSTD);
	CHECK(cnt.auto_packets[LM_AUTO_ZSTD] == 3);
	/* Random pages go raw whatever the link. */
	cfg.auto_speeds = slow;
	CHECK(auto_run(&cfg, C_RANDOM, 3) == LM_METHOD_NONE);
	CHECK(cnt.auto_packets[LM_AUTO_NONE] == 3);
	/* A slow link: text is compressed. */
	uint8_t m = auto_run(&cfg, C_TEXT, 5);
	CHECKF(m == LM_METHOD_ZSTD || m == LM_METHOD_LZ4, "auto slow text: %u", m);
	/* The link the session measured, read at every packet: a fast one
	 * sends text raw, a slow one compresses it hard. */
	cfg.auto_speeds = measured_link;
	link = 20000000000ull;
	CHECK(auto_run(&cfg, C_TEXT, 3) == LM_METHOD_NONE);
	link = 1000000;
	uint64_t hi = cnt.auto_packets[LM_AUTO_ZSTD_HI];
	CHECK(auto_run(&cfg, C_TEXT, 3) == LM_METHOD_ZSTD);
	CHECK(cnt.auto_packets[LM_AUTO_ZSTD_HI] == hi + 3);
	/* A link probe: the packets that find budget left go raw, even text
	 * on a slow link, and draw it down; the rest are compressed. */
	_Atomic int64_t probe = 1;
	cfg.probe_left = &probe;
	uint64_t raw = cnt.auto_packets[LM_AUTO_NONE];
	CHECK(auto_run(&cfg, C_TEXT, 3) == LM_METHOD_ZSTD);
	CHECK(cnt.auto_packets[LM_AUTO_NONE] == raw + 1 && cnt.auto_packets[LM_AUTO_ZSTD_HI] == hi + 5);
	CHECK(probe < 0);
	cfg.probe_left = NULL;
	/* max-bandwidth fixes the link: the measurement is not read. */
	cfg.auto_speeds = NULL;
	cfg.max_bandwidth = 20000000000ull;
	link = 1000000;
	CHECK(auto_run(&cfg, C_RANDOM, 2) == LM_METHOD_NONE);

	/* A link faster than any compressor (20 GB/s against lz4's 600 MB/s
	 * per channel): raw without a sample, and no compressor refreshed
	 * every 128 packets; at 1 GB/s text is compressed, and the refresh
	 * tries the measured compressor not chosen. */
	struct lm_auto am;
	uint64_t fixed[LM_AUTO_N] = { 0, 600000000, 350000000, 0 }; /* zstd-hi measured */
	uint8_t *text = malloc(LM_PAGE_SIZE);
	fill_page(text, C_TEXT, 7);
	CHECK(lm_auto_init(&am, fixed, 2, 0) == 0);
	am.link = 20e9;
	int got[LM_AUTO_N] = { 0 };
	for (int k = 0; k < 512; k++)
		got[lm_auto_choose(&am, text)]++;
	CHECKF(got[LM_AUTO_NONE] == 512, "fast link: %d raw of 512", got[LM_AUTO_NONE]);
	am.link = 1e9;
	memset(got, 0, sizeof(got));
	for (int k = 0; k < 512; k++) {
		int c = lm_auto_choose(&am, text);
		got[c]++;
		lm_auto_update(&am, c, LM_PACKET_PAGES * LM_PAGE_SIZE,
			       c ? LM_PACKET_PAGES * LM_PAGE_SIZE / 3 : LM_PACKET_PAGES * LM_PAGE_SIZE,
			       1000000);
	}
	CHECKF(got[LM_AUTO_NONE] == 0 && got[LM_AUTO_LZ4] + got[LM_AUTO_ZSTD] > 400 &&
	       got[LM_AUTO_ZSTD_HI] > 0,
	       "1 GB/s link: %d %d %d %d", got[0], got[1], got[2], got[3]);
	lm_auto_free(&am);
	free(text);

	/* The session's link: the best 100 ms window, slowly forgotten, and
	 * probes.  The first call opens a window and starts a probe, timed
	 * until LM_AUTO_PROBE_BYTES are acknowledged; the return value is the
	 * budget to publish when it changes. */
	struct lm_auto_link l = {0};
	const uint64_t ms = 1000000, pb = LM_AUTO_PROBE_BYTES;
	uint64_t n = 1000;
	CHECK(lm_auto_link_due(&l, 1));
	CHECK(lm_auto_link(&l, n, 1 * ms, true) == (int64_t)pb);
	CHECK(l.probing && lm_auto_link_due(&l, 2 * ms));
	/* Nothing acknowledged for 20 ms (the channels slow to start): the
	 * probe's clock has not started, so it neither ends nor reads 0. */
	CHECK(lm_auto_link(&l, n, 21 * ms, true) == -1);
	CHECK(l.probing && l.rate == 0 && l.win_t == 21 * ms);
	CHECK(lm_auto_link(&l, n + pb / 2, 31 * ms, true) == -1); /* half: goes on */
	CHECK(l.probing && l.rate == 0);
	/* Three quarters of it when its 30 ms are out: it measured the link. */
	CHECK(lm_auto_link(&l, n += 3 * pb / 4, 51 * ms, true) == 0);
	CHECKF(!l.probing && fabs(l.rate - pb * 25.0) < 1, "%.0f", l.rate);
	/* The next may start 1 s later. */
	CHECK(l.next_probe == 1051 * ms && l.win_t == 51 * ms && l.win_bytes == n);
	/* Windows: a slower one keeps the rate (decayed by 1 %), a faster
	 * one raises it. */
	CHECK(!lm_auto_link_due(&l, 100 * ms) && lm_auto_link_due(&l, 151 * ms));
	CHECK(lm_auto_link(&l, n += 10000000, 151 * ms, true) == -1); /* 10 MB in 100 ms */
	CHECKF(fabs(l.rate - pb * 25.0 * 0.99) < 1, "%.0f", l.rate);
	lm_auto_link(&l, n += 30000000, 251 * ms, true);
	CHECKF(l.rate > 2.99e8 && l.rate < 3.01e8, "%.0f", l.rate);
	/* A count that goes down (a replaced connection starts from 0)
	 * opens a new window and does not read as a huge rate. */
	CHECK(lm_auto_link(&l, n = 5000, 351 * ms, true) == -1);
	CHECKF(l.rate > 2.99e8 && l.rate < 3.01e8, "%.0f", l.rate);
	CHECK(l.win_t == 351 * ms && l.win_bytes == 5000 && !l.probing);
	/* Only where a probe may run (not the final pass, not between
	 * passes): the window after next_probe starts one then.  The owner's
	 * budget, when larger, is the probe's. */
	l.probe_bytes = 2 * pb;
	CHECK(lm_auto_link(&l, n += 30000000, 1100 * ms, false) == -1 && !l.probing);
	CHECK(lm_auto_link(&l, n += 30000000, 1200 * ms, true) == (int64_t)(2 * pb) && l.probing);
	/* It finds no faster link and times out (30 ms): the rate stays,
	 * the wait doubles (2 s). */
	double rate = l.rate;
	CHECK(lm_auto_link(&l, n + pb, 1220 * ms, true) == -1 && l.probing);
	CHECK(lm_auto_link(&l, n += pb, 1231 * ms, true) == 0);
	CHECK(!l.probing && l.rate == rate && l.next_probe == 3231 * ms);
	/* A fast link: all 8 MiB in 2 ms, a floor, so a probe of twice the
	 * budget follows at once, and so on while they end before their
	 * time runs out, up to 16 times the budget; each raises the rate it
	 * beats by half. */
	CHECK(lm_auto_link(&l, n += 1000, 3300 * ms, true) == (int64_t)(2 * pb));
	CHECK(lm_auto_link(&l, n += 2 * pb, 3302 * ms, true) == (int64_t)(4 * pb));
	CHECKF(l.probing && fabs(l.rate - 2 * pb * 500.0) < 1, "%.0f", l.rate);
	CHECK(lm_auto_link(&l, n += 4 * pb, 3306 * ms, true) == (int64_t)(8 * pb));
	CHECKF(l.probing && fabs(l.rate - 2 * pb * 500.0) < 1, "%.0f", l.rate); /* same */
	CHECK(lm_auto_link(&l, n, 3308 * ms, true) == -1 && l.win_t == 3308 * ms); /* none yet */
	CHECK(lm_auto_link(&l, n += 8 * pb, 3318 * ms, true) == (int64_t)(16 * pb));
	CHECK(lm_auto_link(&l, n += 16 * pb, 3328 * ms, true) == (int64_t)(32 * pb));
	CHECKF(fabs(l.rate - 16 * pb * 100.0) < 1, "%.0f", l.rate);
	CHECK(lm_auto_link(&l, n += 32 * pb, 3340 * ms, true) == 0); /* the last: 16x */
	CHECK(!l.probing && l.probe_shift == 4 && l.next_probe == 7340 * ms);
	/* The next probe keeps the larger budget; one that runs out of time
	 * measured the link, and halves it; one that ends in time, even at
	 * 29 ms, is a floor again. */
	CHECK(lm_auto_link(&l, n += 1000, 7400 * ms, true) == (int64_t)(32 * pb));
	CHECK(lm_auto_link(&l, n += 16 * pb, 7431 * ms, true) == 0);
	CHECK(!l.probing && l.probe_shift == 3 && l.next_probe == 15431 * ms);
	CHECK(lm_auto_link(&l, n += 1000, 15500 * ms, true) == (int64_t)(16 * pb));
	CHECK(lm_auto_link(&l, n += 16 * pb, 15529 * ms, true) == (int64_t)(32 * pb));
	CHECK(lm_auto_link(&l, n += 16 * pb, 15545 * ms, true) == -1); /* half, 16 ms */
	CHECK(lm_auto_link(&l, n += 1000, 15560 * ms, true) == 0);     /* 31 ms */
	CHECK(!l.probing && l.probe_shift == 3 && l.next_probe == 23560 * ms);
	/* A probe cut short - its pass ended, or a count went down - ends
	 * unmeasured: the rate stays and the next may start 1 s later. */
	CHECK(lm_auto_link(&l, n += 1000, 23600 * ms, true) == (int64_t)(16 * pb));
	rate = l.rate;
	CHECK(lm_auto_link(&l, n += pb, 23601 * ms, false) == 0);
	CHECK(!l.probing && l.rate == rate && l.win_bytes == n && l.next_probe == 24601 * ms);
	CHECK(lm_auto_link(&l, n += 1000, 23602 * ms, true) == -1 && !l.probing);
	CHECK(lm_auto_link(&l, n += 1000, 24700 * ms, true) == (int64_t)(16 * pb));
	rate = l.rate;
	CHECK(lm_auto_link(&l, n = 10, 24702 * ms, true) == 0); /* ended, not again */
	CHECK(!l.probing && l.rate == rate && l.win_bytes == 10 && l.next_probe == 25702 * ms);
	/* Nothing acknowledged at all: the clock starts at the latest 30 ms
	 * after the probe began, and it ends 30 ms after that, reading 0. */
	CHECK(lm_auto_link(&l, n += 1000, 25800 * ms, true) == (int64_t)(16 * pb));
	rate = l.rate;
	CHECK(lm_auto_link(&l, n, 25820 * ms, true) == -1 && l.win_t == 25820 * ms);
	CHECK(lm_auto_link(&l, n, 25840 * ms, true) == -1 && l.win_t == 25820 * ms);
	CHECK(lm_auto_link(&l, n, 25851 * ms, true) == 0);
	CHECK(!l.probing && l.rate == rate && l.probe_shift == 2);
	fprintf(stderr, "codec auto: done\n");
}

int main(void)
{
	size_t count = 0;
	const struct lm_codec_ops *const *t = lm_codec_table(&count);

	registry();
	auto_codec();
	for (size_t i = 0; i < count; i++) {
		const struct lm_codec_ops *ops = t[i];
		if (!ops->decompress)
			continue; /* auto: its packets are the other codecs' (auto_codec) */
		int levels[4] = { ops->min_level, ops->default_level,
				  (ops->min_level + ops->max_level) / 2, ops->max_level };

		for (int l = 0; l < 4; l++) {
			bool dup = false;

			for (int m = 0; m < l; m++)
				dup |= levels[m] == levels[l];
			if (dup)
				continue;
			roundtrip_stream(ops, levels[l]);
			extremes(ops, levels[l]);
		}
		rejects(ops);
		sender_errors(ops);
		conformance(ops);
		fprintf(stderr, "codec %s: done\n", ops->name);
	}
	T_DONE();
}
