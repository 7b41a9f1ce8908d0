/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpora, tests/fuzz/corpus/<target>/, with the encoders:
 * a few valid inputs per target and some edge cases.  Run once by hand
 * (`ninja -C build tests/fuzz/fuzz-gen-corpus && build/tests/fuzz/fuzz-gen-corpus
 * tests/fuzz/corpus`); the output is committed.  Deterministic: the same
 * files every run.  Inputs found by fuzzing are added beside these by hand.
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "accel/engine.h"
#include "codec/codec.h"
#include "core/wire.h"
#include "fuzz.h"
#include "util/le.h"
#include "util/util.h"

static const char *root;

static void put(const char *target, const char *name, const void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void put_text(const char *target, const char *name, const char *text)
{
	put(target, name, text, strlen(text));
}

/* ---- pages: text-like, zero, or noise ------------------------------------ */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

enum { TEXT, ZERO, NOISE, SAME }; /* SAME: one text page, always the same */

static void fill(uint8_t *p, int kind)
{
	static const char *const words[] = {"page ", "guest ", "memory ", "dirty ", "0000 ",
					    "multifd ", "\n", "kernel "};
	size_t i = 0;
	uint64_t saved = rng;
	if (kind == SAME)
		rng = 42;
	switch (kind) {
	case ZERO:
		memset(p, 0, LM_PAGE_SIZE);
		break;
	case NOISE:
		for (i = 0; i < LM_PAGE_SIZE; i++)
			p[i] = (uint8_t)rnd();
		break;
	default:
		while (i < LM_PAGE_SIZE) {
			const char *w = words[rnd() % 8];
			for (; *w && i < LM_PAGE_SIZE; w++)
				p[i++] = (uint8_t)*w;
		}
	}
	if (kind == SAME)
		rng = saved;
}

/* ---- wire ------------------------------------------------------------------ */
static void hellos(void)
{
	static const struct lm_hello h[] = {
		{.version = 1, .channel = 0, .nchannels = 2},
		{.version = 1, .channel = 3, .nchannels = 4},
		{.version = 1, .channel = 255, .nchannels = 255},
		{.version = 1, .channel = 0, .nchannels = 1, .flags = LM_HELLO_RESOLVE},
		{.version = 1, .channel = 2, .nchannels = 2, .flags = LM_HELLO_RECONNECT},
		{.version = 2, .channel = 0, .nchannels = 2},   /* refused: version */
		{.version = 1, .channel = 3, .nchannels = 2},   /* refused: channel */
	};
	for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
		uint8_t b[LM_HELLO_SIZE];
		char name[32];
		struct lm_hello x = h[i];
		for (int k = 0; k < 16; k++)
			x.uuid[k] = (uint8_t)(i * 16 + k);
		lm_hello_encode(&x, b);
		snprintf(name, sizeof(name), "hello-%zu", i);
		put("hello", name, b, sizeof(b));
	}
	uint8_t b[LM_HELLO_SIZE];
	lm_hello_encode(&h[0], b);
	b[30] = 1; /* reserved byte, CRC still right */
	lm_le32(b + 36, lm_crc32c(0, b, 36));
	put("hello", "reserved-set", b, sizeof(b));
	b[30] = 0;
	put("hello", "bad-crc", b, sizeof(b));
	put("hello", "http-get", "GET / HTTP/1.1\r\nHost: x\r\n\r\n0123456789abcd", 40);
}

/* A message as fuzz_msg reads it: the type byte, then the body. */
static void msg(const char *name, const struct lm_msg *m)
{
	uint8_t b[1 + LM_MSG_HDR_SIZE + LM_MSG_BODY_MAX];
	int n = lm_msg_encode(m, b + 1, sizeof(b) - 1);
	if (n < 0) {
		fprintf(stderr, "%s: encode: %d\n", name, n);
		exit(1);
	}
	b[LM_MSG_HDR_SIZE] = (uint8_t)m->type;
	put("msg", name, b + LM_MSG_HDR_SIZE, (size_t)n + 1 - LM_MSG_HDR_SIZE);
	char whole[64];
	snprintf(whole, sizeof(whole), "%s-with-header", name);
	n = lm_msg_encode(m, b, sizeof(b));
	put("msg", whole, b, (size_t)n);
}

static void msgs(void)
{
	struct lm_msg m;
	memset(&m, 0, sizeof(m));
	m.type = LM_MSG_PARAMS;
	m.params = (struct lm_msg_params){.channels = 2, .method = LM_METHOD_ZSTD, .level = 1,
					  .zero_detect = true, .nblocks = 3};
	const char *names[] = {"pc.ram", "vga.vram", "x"};
	for (int i = 0; i < 3; i++) {
		snprintf(m.params.blocks[i].name, LM_NAME_MAX, "%s", names[i]);
		m.params.blocks[i].size = (uint64_t)(i + 1) << 20;
	}
	msg("params", &m);
	m.params.nblocks = LM_MAX_BLOCKS;
	m.params.method = LM_METHOD_AUTO;
	for (int i = 0; i < LM_MAX_BLOCKS; i++) {
		memset(m.params.blocks[i].name, 'a' + i % 26, LM_NAME_MAX - 1);
		m.params.blocks[i].name[0] = (char)('A' + i % 26);
		m.params.blocks[i].name[1] = (char)('A' + i / 26);
		m.params.blocks[i].name[LM_NAME_MAX - 1] = 0;
		m.params.blocks[i].size = (uint64_t)UINT32_MAX * LM_PAGE_SIZE;
	}
	msg("params-largest", &m);
	m.params.nblocks = 1;
	m.params.channel_recovery = true;
	m.params.device_state = true;
	msg("params-device-state", &m);

	memset(&m, 0, sizeof(m));
	m.type = LM_MSG_READY;
	msg("ready", &m);
	m.type = LM_MSG_CANCEL;
	msg("cancel", &m);
	m.type = LM_MSG_HEARTBEAT;
	msg("heartbeat", &m);
	m.type = LM_MSG_ITER;
	m.iteration = 1;
	msg("iter", &m);
	m.type = LM_MSG_ITER_ACK;
	m.iteration = 0xffffffffu;
	msg("iter-ack", &m);
	memset(&m, 0, sizeof(m));
	m.type = LM_MSG_COMPLETE;
	m.complete = (struct lm_msg_complete){.iteration = 7, .digest = {1, 2}, .normal = 100,
					      .zero = 50};
	msg("complete", &m);
	memset(&m, 0, sizeof(m));
	m.type = LM_MSG_RESULT;
	m.result = (struct lm_msg_result){.ok = true, .cpu_us = 12345, .digest = {3, 4}};
	msg("result", &m);
	memset(&m, 0, sizeof(m));
	m.type = LM_MSG_ERROR;
	m.error.code = -ENOMEM;
	snprintf(m.error.text, sizeof(m.error.text), "destination: out of memory");
	msg("error", &m);
	/* Control bytes, a text longer than kept, an errno that is not one. */
	uint8_t e[1 + 4 + 600];
	e[0] = LM_MSG_ERROR;
	lm_le32(e + 1, 70000);
	for (size_t i = 5; i < sizeof(e); i++)
		e[i] = (uint8_t)(i % 3 ? 'x' : i % 2 ? 0x1b : 0x7f);
	put("msg", "error-hostile", e, sizeof(e));

	/* Device state: a small chunk, a whole message of it, the end, the
	 * destination's answer at the largest total. */
	static uint8_t dev[LM_MSG_MAX_PAYLOAD];
	for (size_t i = 0; i < sizeof(dev); i++)
		dev[i] = (uint8_t)(i * 7 + i / 251);
	memset(&m, 0, sizeof(m));
	m.type = LM_MSG_DEVSTATE;
	m.devstate.data = dev;
	m.devstate.len = 100;
	msg("devstate", &m);
	m.devstate.len = LM_MSG_MAX_PAYLOAD;
	msg("devstate-largest", &m);
	memset(&m, 0, sizeof(m));
	m.type = LM_MSG_DEVSTATE_END;
	m.devstate_bytes = 206000;
	msg("devstate-end", &m);
	m.type = LM_MSG_DEVSTATE_LOADED;
	m.devstate_bytes = LM_DEVSTATE_MAX;
	msg("devstate-loaded", &m);
}

static void packet(const char *name, const struct lm_packet_hdr *h, const uint32_t *idx)
{
	uint8_t b[LM_PACKET_HDR_SIZE + 4 * LM_PACKET_PAGES];
	uint32_t n = h->normal + h->zero;
	lm_packet_encode(h, b);
	for (uint32_t i = 0; i < n; i++)
		lm_le32(b + LM_PACKET_HDR_SIZE + 4 * i, idx[i]);
	put("packet", name, b, LM_PACKET_HDR_SIZE + 4 * (size_t)n);
}

static void packets(void)
{
	static const uint32_t idx[] = {0, 5, 99, 3};
	struct lm_packet_hdr h = {.version = 1, .method = LM_METHOD_NONE, .channel = 1,
				  .block = 1, .seq = 0, .iteration = 1, .normal = 3, .zero = 1,
				  .payload_len = 3 * LM_PAGE_SIZE};
	packet("none", &h, idx);
	h.method = LM_METHOD_ZSTD;
	h.payload_len = 777;
	packet("zstd", &h, idx);
	h.method = LM_METHOD_LZ4;
	h.block = 3;
	h.normal = 0;
	h.zero = 4;
	h.payload_len = 0;
	packet("lz4-zero-only", &h, idx);
	h = (struct lm_packet_hdr){.version = 1, .method = LM_METHOD_ZSTD, .channel = 1,
				   .iteration = 2, .flags = LM_PKT_FLAG_SYNC | LM_PKT_FLAG_FINAL};
	packet("sync-final", &h, NULL);
	h = (struct lm_packet_hdr){.version = 1, .method = LM_METHOD_NONE, .channel = 1,
				   .block = 0, .iteration = 1, .normal = 1, .zero = 0,
				   .payload_len = LM_PAGE_SIZE};
	static const uint32_t beyond[] = {1};
	packet("index-beyond-block", &h, beyond);
}

static void text_seeds(void)
{
	static const char *const uris[] = {
		"tcp:127.0.0.1:4444", "tcp:[::1]:4444", "tcp:[fe80::1%lo]:9", "tcp::0",
		"tcp:example.org:65535", "unix:/tmp/livemig.sock", "tcp:host:080",
	};
	static const char *const params[] = {
		"multifd-channels=4", "multifd-compression=zstd", "multifd-zstd-level=19",
		"max-bandwidth=1.5G", "avail-switchover-bandwidth=125MiB",
		"x-auto-speeds=1G,500M,200M,100M", "x-auto-speeds=1G,0,0", "x-delay-channel=1:50",
		"x-fault-engine=busy=0.5,error=0.1,corrupt=0,badlen=0,seed=7",
		"zero-page-detection=none", "accel-verify=on", "timeout=0", "net-timeout=3600",
		"dsa-path=/dev/dsa/wq0.0", "accel-path=/dev/dsa/wq1.0",
		"compression-engine=isal", "dirty-tracker=auto", "multifd=on", "4KiB", "1.5G",
		"18446744073709551615",
	};
	char name[32];
	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
		snprintf(name, sizeof(name), "uri-%zu", i);
		put_text("uri", name, uris[i]);
	}
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		snprintf(name, sizeof(name), "param-%zu", i);
		put_text("params", name, params[i]);
	}
}

/* ---- payloads ------------------------------------------------------------- */
/* Packets of one channel as fuzz_decode reads them, from one sender. */
struct stream {
	uint8_t *b;
	size_t len;
};

static void stream_add(struct stream *s, const struct lm_codec_ops *c, void *snd,
		       const int *kinds, uint32_t n, bool run)
{
	uint8_t *mem = fuzz_alloc((size_t)n * LM_PAGE_SIZE);
	const uint8_t *pages[LM_PACKET_PAGES];
	for (uint32_t i = 0; i < n; i++) {
		pages[i] = mem + (size_t)i * LM_PAGE_SIZE;
		fill(mem + (size_t)i * LM_PAGE_SIZE, kinds[i % 4]);
	}
	size_t cap = c->bound(n);
	uint8_t *out = fuzz_alloc(cap), method;
	ssize_t len = c->compress(snd, pages, n, out, cap, &method);
	if (len < 0) {
		fprintf(stderr, "%s: compress: %zd\n", c->name, len);
		exit(1);
	}
	if (len == 0) { /* raw: the pages themselves */
		len = (ssize_t)n * LM_PAGE_SIZE;
		memcpy(out, mem, (size_t)len);
	}
	s->b = realloc(s->b, s->len + 5 + (size_t)len);
	if (!s->b)
		abort();
	s->b[s->len] = (uint8_t)((n - 1) | (run ? 0x80 : 0));
	lm_le32(s->b + s->len + 1, (uint32_t)len);
	memcpy(s->b + s->len + 5, out, (size_t)len);
	s->len += 5 + (size_t)len;
	free(out);
	free(mem);
}

static void decode_seeds(uint8_t method)
{
	const struct lm_codec_ops *c = lm_codec_by_method(method);
	char target[32];
	snprintf(target, sizeof(target), "decode-%s", c->name);
	/* Small files: many copies of one page where the method compresses
	 * across pages (zlib level 1 does it worst), else a few pages (raw ones
	 * are 4 KiB each). */
	uint32_t big = method == LM_METHOD_ZSTD ? LM_PACKET_PAGES
		       : method == LM_METHOD_ZLIB || method == LM_METHOD_QATZIP ? 32
		       : method == LM_METHOD_NONE ? 2 : 8;
	static const int text[] = {TEXT, TEXT, TEXT, TEXT}, mixed[] = {TEXT, ZERO, NOISE, TEXT},
			 same[] = {SAME, SAME, SAME, SAME};
	static const struct {
		const char *name;
		const int *kinds;
		uint32_t n[2]; /* pages of each packet, 0 = none */
		bool run;
	} seeds[] = {
		{"one-page", text, {1, 0}, true},
		{"scattered", mixed, {3, 0}, false},
		{"two-packets", text, {2, 1}, false},
		{"many-pages", same, {0xffffffff, 0}, true},
	};
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		struct lm_codec_cfg cfg = {.level = c->default_level, .channel = 1, .channels = 1};
		struct stream s = {0};
		void *snd;
		if (c->send_setup(&snd, &cfg))
			abort();
		for (int k = 0; k < 2 && seeds[i].n[k]; k++) {
			uint32_t n = seeds[i].n[k] == 0xffffffff ? big : seeds[i].n[k];
			stream_add(&s, c, snd, seeds[i].kinds, n, seeds[i].run);
		}
		c->send_cleanup(snd);
		put(target, seeds[i].name, s.b, s.len);
		free(s.b);
	}
	/* Edge: the first packet cut short, and one with a byte flipped. */
	struct lm_codec_cfg cfg = {.level = c->default_level, .channel = 1, .channels = 1};
	struct stream s = {0};
	void *snd;
	if (c->send_setup(&snd, &cfg))
		abort();
	stream_add(&s, c, snd, mixed, 2, true);
	c->send_cleanup(snd);
	put(target, "truncated", s.b, s.len - 3);
	s.b[s.len / 2] ^= 0x20;
	put(target, "flipped", s.b, s.len);
	free(s.b);
}

/* Each software engine's output for a few pages, as fuzz_engine reads it. */
static void engine_seeds(uint8_t method)
{
	size_t count;
	const struct lm_engine_ops *const *t = lm_engine_table(&count);
	bool per_page = lm_method_per_page(method);
	uint32_t n = per_page ? 1 : 4;
	const struct lm_codec_ops *c = lm_codec_by_method(method);
	char target[32];
	snprintf(target, sizeof(target), "engine-%s", c->name);
	uint8_t *mem = fuzz_alloc((size_t)n * LM_PAGE_SIZE);
	const uint8_t *pages[LM_PACKET_PAGES];
	for (size_t i = 0; i < count; i++) {
		const struct lm_engine_ops *e = t[i];
		if (e->method != method || e->hardware || e->absent)
			continue;
		static const int kinds[][4] = {{TEXT, TEXT, TEXT, TEXT}, {ZERO, TEXT, ZERO, TEXT},
					       {TEXT, NOISE, TEXT, TEXT}};
		for (size_t k = 0; k < 3; k++) {
			for (uint32_t p = 0; p < n; p++) {
				pages[p] = mem + (size_t)p * LM_PAGE_SIZE;
				fill(mem + (size_t)p * LM_PAGE_SIZE, kinds[k][p]);
			}
			struct lm_engine_cfg cfg = {.method = method, .level = 1, .max_jobs = 1,
						    .channel = 1};
			void *ctx;
			uint8_t *out = fuzz_alloc(1 + (size_t)n * LM_PAGE_SIZE);
			if (e->setup(&ctx, &cfg))
				abort();
			struct lm_job j = {.src = pages, .npages = n, .dst = out + 1,
					   .cap = n * LM_PAGE_SIZE};
			e->run(ctx, &j, 1);
			e->cleanup(ctx);
			if (j.status) {
				free(out);
				continue;
			}
			out[0] = (uint8_t)(n - 1);
			char name[64];
			snprintf(name, sizeof(name), "%s-%zu", e->name, k);
			put(target, name, out, 1 + j.len);
			free(out);
		}
	}
	free(mem);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s tests/fuzz/corpus\n", argv[0]);
		return 1;
	}
	root = argv[1];
	if (mkdir(root, 0755) && errno != EEXIST) {
		perror(root);
		return 1;
	}
	hellos();
	msgs();
	packets();
	text_seeds();
	for (uint8_t m = 0; m < LM_METHOD_MAX; m++)
		decode_seeds(m);
	static const uint8_t engine_methods[] = {LM_METHOD_LZ4, LM_METHOD_QPL, LM_METHOD_QATZIP,
						 LM_METHOD_UADK};
	for (size_t i = 0; i < sizeof(engine_methods); i++)
		engine_seeds(engine_methods[i]);
	return 0;
}
