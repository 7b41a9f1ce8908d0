/* SPDX-License-Identifier: MIT */
/*
 * Engines and the fallback policy.
 *  - Every usable engine of every method round-trips incompressible, zero
 *    and mixed pages, and its output decodes with every other engine of the
 *    same method (ISA-L output by zlib and the other way round, and any
 *    hardware engine this build has and this machine can run).
 *  - The policy, driven by the fault-injecting engine: busy -> retries ->
 *    software, errors -> software, corrupt output caught by accel-verify,
 *    raw pages when output does not shrink, with exact counters.
 *  - Engine choice: forced, not built, unknown, skipped at probe.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "accel/accel.h"
#include "codec/auto.h"
#include "core/internal.h"
#include "core/wire.h"
#include "t.h"

#define PS LM_PAGE_SIZE
#define NP 24 /* pages per test set */

/* Page i: zero, random (incompressible) or text, in turn. */
static void fill(uint8_t *p, unsigned i)
{
	static const char *const w[] = {"guest ", "memory ", "page ", "dirty ", "\n"};
	switch (i % 3) {
	case 0:
		memset(p, 0, PS);
		break;
	case 1:
		for (size_t k = 0; k < PS; k += 8) {
			uint64_t v = t_rnd();
			memcpy(p + k, &v, 8);
		}
		break;
	default:
		for (size_t k = 0; k < PS;) {
			const char *s = w[t_rnd() % 5];
			size_t l = strlen(s) < PS - k ? strlen(s) : PS - k;
			memcpy(p + k, s, l);
			k += l;
		}
	}
}

static bool usable(const struct lm_engine_ops *e)
{
	char why[160];
	return e->method != LM_ENGINE_ANY_METHOD && lm_engine_usable(e, why, sizeof(why)) == 0;
}

/* Compresses the pages with a, decodes with b; checks the pages. */
static void pair(const struct lm_engine_ops *a, const struct lm_engine_ops *b, uint8_t **pages)
{
	struct lm_engine_cfg cfg = {.method = a->method, .level = 1, .max_jobs = NP};
	void *ca = NULL, *cb = NULL;
	struct lm_job jobs[NP];
	uint8_t *out = malloc((size_t)NP * PS * 2), *back = malloc((size_t)NP * PS);
	uint32_t njobs = lm_method_per_page(a->method) ? NP : 1;

	CHECK(a->setup(&ca, &cfg) == 0);
	CHECK(b->setup(&cb, &cfg) == 0);
	for (uint32_t i = 0; i < njobs; i++)
		jobs[i] = (struct lm_job){.src = (const uint8_t *const *)&pages[i],
					  .npages = lm_method_per_page(a->method) ? 1 : NP,
					  .dst = out + (size_t)i * 2 * PS,
					  .cap = lm_method_per_page(a->method) ? PS - 1 : 2 * NP * PS,
					  .status = 12345};
	a->run(ca, jobs, njobs);
	uint32_t shrank = 0;
	for (uint32_t i = 0; i < njobs; i++) {
		struct lm_job *j = &jobs[i];
		/* Random pages do not shrink (-ENOSPC); the others must. */
		CHECKF(j->status == 0 || j->status == -ENOSPC, "%s/%u: job %u status %d", a->name,
		       a->method, i, j->status);
		if (j->status)
			continue;
		shrank++;
		CHECKF(j->len > 0 && j->len < j->npages * PS, "%s: job %u len %u", a->name, i,
		       j->len);
		CHECKF(b->decompress(cb, j->dst, j->len, back, j->npages * PS) == 0,
		       "%s output decoded by %s (method %u), job %u", a->name, b->name, a->method,
		       i);
		for (uint32_t k = 0; k < j->npages; k++)
			CHECKF(!memcmp(back + (size_t)k * PS, j->src[k], PS),
			       "%s -> %s: job %u page %u differs", a->name, b->name, i, k);
		/* One byte short of output, or trailing junk: rejected. */
		CHECK(b->decompress(cb, j->dst, j->len, back, j->npages * PS - 1) == -EPROTO);
		j->dst[j->len] = 0x42;
		CHECK(b->decompress(cb, j->dst, j->len + 1, back, j->npages * PS) == -EPROTO);
	}
	/* 8 zero and 8 text pages out of 24 shrink; the packet as a whole too. */
	CHECKF(shrank == (lm_method_per_page(a->method) ? 16u : 1u), "%s: %u jobs shrank", a->name, shrank);
	if (lm_method_per_page(a->method))
		for (uint32_t i = 1; i < NP; i += 3)
			CHECKF(jobs[i].status == -ENOSPC, "%s: random page %u did not go raw",
			       a->name, i);
	a->cleanup(ca);
	b->cleanup(cb);
	free(out);
	free(back);
}

static void engines(uint8_t **pages)
{
	size_t n;
	const struct lm_engine_ops *const *t = lm_engine_table(&n);
	for (uint8_t m = LM_METHOD_LZ4; m < LM_METHOD_MAX; m++) {
		unsigned tried = 0;
		CHECKF(lm_engine_fallback(m) && !lm_engine_fallback(m)->hardware,
		       "method %u has a software engine", m);
		for (size_t i = 0; i < n; i++) {
			if (t[i]->method != m || !usable(t[i]))
				continue;
			for (size_t k = 0; k < n; k++)
				if (t[k]->method == m && usable(t[k]) && t[k]->decompress)
					pair(t[i], t[k], pages);
			tried++;
		}
		/* lz4: liblz4; deflate methods: ISA-L and zlib at least. */
		CHECKF(tried >= (m == LM_METHOD_LZ4 ? 1u : 2u), "method %u: %u engines", m, tried);
	}
	CHECK(lm_engine_find(LM_METHOD_QPL, "isal") && lm_engine_find(LM_METHOD_UADK, "zlib"));
	CHECK(lm_engine_find(LM_METHOD_LZ4, "isal") == NULL);
	CHECK(lm_engine_find(LM_METHOD_QPL, "x-fault") != NULL);
	CHECK(lm_engine_fallback(LM_METHOD_ZSTD) == NULL);
}

/* ---- the policy ------------------------------------------------------------ */

struct run_result {
	struct lm_accel_counters cnt;
	unsigned raw, ok;
};

static void warn_count(void *opaque, const char *msg)
{
	(void)msg;
	(*(int *)opaque)++;
}

/* Runs NP page jobs of method qpl through the policy with the fault
 * engine at these rates; checks every output decodes to its page. */
static void policy_run(const char *fault, unsigned retries, bool verify,
		       uint8_t **pages, struct run_result *res, int *warnings)
{
	struct lm_accel_choice ch = {.retries = retries, .verify = verify,
				     .warn = warn_count, .warn_opaque = warnings};
	struct lm_accel a;
	char err[200];
	struct lm_job jobs[NP];
	uint8_t *out = malloc((size_t)NP * PS), *back = malloc(PS);

	memset(res, 0, sizeof(*res));
	CHECK(lm_accel_choose(&ch, LM_METHOD_QPL, NULL, fault, err, sizeof(err)) == 0);
	CHECK(ch.hw && !strcmp(ch.hw->name, "x-fault") && !strcmp(ch.sw->name, "isal"));
	CHECK(lm_accel_setup(&a, &ch, 1, NP, 1, 1, &res->cnt) == 0);
	for (int rep = 0; rep < 4; rep++) {
		for (uint32_t i = 0; i < NP; i++)
			jobs[i] = (struct lm_job){.src = (const uint8_t *const *)&pages[i],
						  .npages = 1, .dst = out + (size_t)i * PS,
						  .cap = PS - 1};
		CHECK(lm_accel_run(&a, jobs, NP) == 0);
		for (uint32_t i = 0; i < NP; i++) {
			if (jobs[i].status == -ENOSPC) {
				res->raw++;
				continue;
			}
			CHECK(jobs[i].status == 0);
			res->ok++;
			/* Decoded by a different engine than made it. */
			void *z = NULL;
			struct lm_engine_cfg cfg = {.method = LM_METHOD_QPL, .level = 1};
			const struct lm_engine_ops *zl = lm_engine_find(LM_METHOD_QPL, "zlib");
			CHECK(zl->setup(&z, &cfg) == 0);
			int r = zl->decompress(z, jobs[i].dst, jobs[i].len, back, PS);
			if (!verify && strstr(fault, "corrupt=1"))
				CHECK(r == -EPROTO || memcmp(back, pages[i], PS));
			else
				CHECKF(r == 0 && !memcmp(back, pages[i], PS), "%s: job %u wrong", fault,
				       i);
			zl->cleanup(z);
		}
	}
	lm_accel_cleanup(&a);
	free(out);
	free(back);
}

static void policy(uint8_t **pages)
{
	struct run_result r;
	int warnings;
	const uint64_t jobs = 4 * NP, randoms = 4 * NP / 3;

	/* A healthy device: everything in hardware, random pages raw. */
	warnings = 0;
	policy_run("seed=1", 3, false, pages, &r, &warnings);
	CHECK(r.cnt.hw_jobs == jobs && r.cnt.sw_jobs == 0 && r.cnt.busy_retries == 0);
	CHECK(r.cnt.hw_errors == 0 && r.cnt.raw_pages == randoms && r.raw == randoms);
	CHECK(warnings == 0);

	/* Always busy: each job retried 3 times, then software. */
	warnings = 0;
	policy_run("busy=1", 3, false, pages, &r, &warnings);
	CHECK(r.cnt.hw_jobs == 0 && r.cnt.sw_jobs == jobs);
	CHECKF(r.cnt.busy_retries == 3 * jobs, "busy retries %llu",
	       (unsigned long long)r.cnt.busy_retries);
	CHECK(r.cnt.raw_pages == randoms && warnings == 0); /* busy is normal: no warning */

	/* accel-retries=0: straight to software. */
	policy_run("busy=1", 0, false, pages, &r, &warnings);
	CHECK(r.cnt.busy_retries == 0 && r.cnt.sw_jobs == jobs);

	/* Always failing: counted, software, warned once. */
	warnings = 0;
	policy_run("error=1", 3, false, pages, &r, &warnings);
	CHECK(r.cnt.hw_errors == jobs && r.cnt.sw_jobs == jobs && r.cnt.hw_jobs == 0);
	CHECK(warnings == 1);

	/* Half busy, a fifth failing: every job ends somewhere, once. */
	policy_run("busy=0.5,error=0.2,seed=9", 3, false, pages, &r, &warnings);
	CHECK(r.cnt.hw_jobs + r.cnt.sw_jobs == jobs); /* each job done by exactly one */
	CHECK(r.cnt.hw_jobs > 0 && r.cnt.sw_jobs > 0 && r.cnt.busy_retries > 0);
	CHECK(r.cnt.hw_errors > 0 && r.cnt.hw_errors <= r.cnt.sw_jobs);
	CHECK(r.ok + r.raw == jobs);

	/* Corrupt output that claims success: with accel-verify it is caught
	 * and redone in software (the outputs then decode right, checked in
	 * policy_run); without, it passes here and the method's content CRC
	 * must catch it (test_codec, and the migration test). */
	warnings = 0;
	policy_run("corrupt=1", 3, true, pages, &r, &warnings);
	CHECK(r.cnt.hw_errors == jobs - randoms && r.cnt.sw_jobs == jobs - randoms);
	CHECK(r.cnt.hw_jobs == randoms && warnings == 1);
	policy_run("corrupt=1", 3, false, pages, &r, &warnings);
	CHECK(r.cnt.hw_errors == 0 && r.cnt.hw_jobs == jobs);

	/* Success with an impossible length: a device error, not a copy past
	 * the buffer (ASan would see one). */
	policy_run("badlen=1", 3, false, pages, &r, &warnings);
	CHECK(r.cnt.hw_errors == jobs - randoms && r.cnt.sw_jobs == jobs - randoms);
}

static void choice(void)
{
	struct lm_accel_choice ch = {0};
	char err[200];

	/* Default: the best usable engine; hardware not built or absent is
	 * skipped with its reason. */
	CHECK(lm_accel_choose(&ch, LM_METHOD_QPL, NULL, NULL, err, sizeof(err)) == 0);
	CHECK(!strcmp(ch.sw->name, "isal"));
	if (!ch.hw)
		CHECKF(strstr(ch.skipped, "qpl: "), "skipped: '%s'", ch.skipped);
	/* Forced software engine. */
	CHECK(lm_accel_choose(&ch, LM_METHOD_UADK, "zlib", NULL, err, sizeof(err)) == 0);
	CHECK(!ch.hw && !strcmp(ch.sw->name, "zlib"));
	/* Unknown, or not for this method. */
	CHECK(lm_accel_choose(&ch, LM_METHOD_QPL, "nope", NULL, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "nope") != NULL);
	CHECK(lm_accel_choose(&ch, LM_METHOD_LZ4, "isal", NULL, err, sizeof(err)) == -EINVAL);
	CHECK(lm_accel_choose(&ch, LM_METHOD_QPL, "x-fault", NULL, err, sizeof(err)) == -EINVAL);
	/* A hardware engine that cannot run here: -ENODEV and why. */
	const struct lm_engine_ops *q = lm_engine_find(LM_METHOD_QATZIP, "qatzip");
	CHECK(q != NULL);
	if (!usable(q)) {
		CHECK(lm_accel_choose(&ch, LM_METHOD_QATZIP, "qatzip", NULL, err, sizeof(err)) ==
		      -ENODEV);
		CHECKF(strstr(err, "compression-engine=qatzip: ") != NULL, "err '%s'", err);
	}
	/* Bad fault options. */
	struct lm_fault_opts fo;
	CHECK(lm_fault_parse("busy=2", &fo) == -EINVAL);
	CHECK(lm_fault_parse("busy=0.5,oops=1", &fo) == -EINVAL);
	CHECK(lm_fault_parse("busy=0.5,error=0.25,badlen=1,seed=3", &fo) == 0);
	CHECK(fo.busy == 0.5 && fo.error == 0.25 && fo.corrupt == 0 && fo.badlen == 1 &&
	      fo.seed == 3);
}

/* auto's choice from fixed speeds (the x-auto-speeds hook's path). */
static int auto_pick(uint64_t link, uint64_t lz4, uint64_t zstd, uint64_t zstd_hi,
		     const uint8_t *page, int packets)
{
	uint64_t fixed[LM_AUTO_N] = {link, lz4, zstd, zstd_hi};
	struct lm_auto a;
	int counts[LM_AUTO_N] = {0}, best = 0;

	CHECK(lm_auto_init(&a, fixed, 2, 0) == 0);
	for (int i = 0; i < packets; i++)
		counts[lm_auto_choose(&a, page)]++;
	lm_auto_free(&a);
	for (int m = 1; m < LM_AUTO_N; m++)
		if (counts[m] > counts[best])
			best = m;
	CHECKF(counts[best] == packets, "auto wavered: %d %d %d %d", counts[0], counts[1],
	       counts[2], counts[3]);
	return best;
}

static void auto_choice(uint8_t **pages)
{
	const uint8_t *random = pages[1], *text = pages[2];

	/* Fast link: raw, whatever the data. */
	CHECK(auto_pick(10000000000ull, 600000000, 350000000, 200000000, text, 100) ==
	      LM_AUTO_NONE);
	CHECK(auto_pick(10000000000ull, 600000000, 350000000, 200000000, random, 100) ==
	      LM_AUTO_NONE);
	/* Slow link: text compresses, random pages still go raw, untried. */
	int m = auto_pick(30000000, 600000000, 350000000, 200000000, text, 100);
	CHECKF(m == LM_AUTO_ZSTD || m == LM_AUTO_ZSTD_HI, "slow link, text: %d", m);
	CHECK(auto_pick(30000000, 600000000, 350000000, 200000000, random, 100) == LM_AUTO_NONE);
	/* Very slow link and CPU to spare: the higher zstd level. */
	CHECK(auto_pick(1000000, 600000000, 350000000, 300000000, text, 100) == LM_AUTO_ZSTD_HI);
	/* A link just short of raw speed and slow zstd: lz4 is the sweet spot. */
	CHECK(auto_pick(600000000, 2000000000, 100000000, 50000000, text, 100) == LM_AUTO_LZ4);
	CHECK(lm_auto_level(LM_AUTO_ZSTD_HI, 1) == 3 && lm_auto_level(LM_AUTO_ZSTD_HI, 19) == 19);
}

/* auto's link measurement: bytes the TCP peer acknowledged. */
static void acked(void)
{
	int sp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	CHECK(lm_sock_acked(sp[0]) == -1); /* not TCP */
	close(sp[0]);
	close(sp[1]);

	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 1) == 0);
	CHECK(getsockname(l, (struct sockaddr *)&a, &alen) == 0);
	CHECK(connect(c, (struct sockaddr *)&a, sizeof(a)) == 0);
	int p = accept(l, NULL, NULL);
	static uint8_t buf[100000];
	CHECK(write(c, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	size_t got = 0;
	while (got < sizeof(buf)) {
		ssize_t r = read(p, buf, sizeof(buf) - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	int64_t n = -1;
	for (int i = 0; i < 100 && n < (int64_t)sizeof(buf); i++, usleep(10000))
		n = lm_sock_acked(c);
	CHECKF(n >= (int64_t)sizeof(buf), "acked %lld of %zu", (long long)n, sizeof(buf));
	close(p);
	close(c);
	close(l);
}

int main(void)
{
	uint8_t *pages[NP];
	for (unsigned i = 0; i < NP; i++) {
		pages[i] = aligned_alloc(PS, PS);
		fill(pages[i], i);
	}
	engines(pages);
	policy(pages);
	choice();
	auto_choice(pages);
	acked();
	for (unsigned i = 0; i < NP; i++)
		free(pages[i]);
	T_DONE();
}
