/* SPDX-License-Identifier: MIT */
/*
 * Parallel digest of memory regions.  Every region is cut into fixed 64 MiB
 * chunks (the last one shorter); each chunk gets its own XXH3-128, and the
 * final digest is XXH3-128 over the ordered list of
 * (region index, chunk index, chunk hash) records.  Because the cut points
 * do not depend on the thread count, neither does the result.  Workers take
 * chunk numbers from one atomic counter, so a slow chunk does not stall a
 * statically assigned share.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "util/le.h"
#include "util/util.h"

#define LM_DIGEST_CHUNK ((uint64_t)64 << 20)

/* Little-endian serialised record: u32 region, u64 chunk, u64 lo, u64 hi. */
#define LM_DIGEST_REC 28u

struct digest_job {
	const struct lm_region *r;
	unsigned nregions;
	const uint64_t *first; /* first global chunk number of each region */
	uint64_t nchunks;
	uint8_t *recs;         /* nchunks records; record i written only by its taker */
	atomic_uint_fast64_t next;
};

static void hash_chunk(struct digest_job *j, uint64_t g)
{
	/* Regions are few: a linear scan is cheaper than it looks next to 64 MiB
	 * of hashing. */
	unsigned ri = 0;

	while (ri + 1 < j->nregions && j->first[ri + 1] <= g)
		ri++;
	uint64_t ci = g - j->first[ri];
	uint64_t off = ci * LM_DIGEST_CHUNK;
	uint64_t len = j->r[ri].size - off;

	if (len > LM_DIGEST_CHUNK)
		len = LM_DIGEST_CHUNK;
	XXH128_hash_t h = XXH3_128bits((const uint8_t *)j->r[ri].base + off, (size_t)len);
	uint8_t *rec = j->recs + g * LM_DIGEST_REC;

	lm_le32(rec, ri);
	lm_le64(rec + 4, ci);
	lm_le64(rec + 12, h.low64);
	lm_le64(rec + 20, h.high64);
}

static void *digest_worker(void *arg)
{
	struct digest_job *j = arg;

	for (;;) {
		uint64_t g = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);

		if (g >= j->nchunks)
			return NULL;
		hash_chunk(j, g);
	}
}

int lm_digest_regions(const struct lm_region *r, unsigned nregions, unsigned nthreads,
		      struct lm_digest *out)
{
	struct digest_job j = { .r = r, .nregions = nregions };
	uint64_t *first = NULL;
	pthread_t *tids = NULL;
	unsigned started = 0;
	int ret = 0;

	if (!out || (nregions && !r))
		return -EINVAL;
	if (nthreads == 0)
		nthreads = 1;

	first = calloc(nregions ? nregions : 1, sizeof(*first));
	if (!first)
		return -ENOMEM;
	for (unsigned i = 0; i < nregions; i++) {
		first[i] = j.nchunks;
		j.nchunks += (r[i].size + LM_DIGEST_CHUNK - 1) / LM_DIGEST_CHUNK;
	}
	j.first = first;
	/* One buffer for all records; a zero-chunk input hashes an empty list. */
	j.recs = malloc(j.nchunks ? j.nchunks * LM_DIGEST_REC : 1);
	if (!j.recs) {
		free(first);
		return -ENOMEM;
	}
	atomic_init(&j.next, 0);

	if (nthreads > j.nchunks)
		nthreads = j.nchunks ? (unsigned)j.nchunks : 1;
	/* The calling thread is worker 0; spawn the rest. */
	if (nthreads > 1) {
		tids = calloc(nthreads - 1, sizeof(*tids));
		if (!tids) {
			ret = -ENOMEM;
			goto out;
		}
		for (; started < nthreads - 1; started++) {
			int e = pthread_create(&tids[started], NULL, digest_worker, &j);

			if (e) {
				/* Keep going with the threads we have: the result is
				 * the same, but report the failure as promised. */
				ret = -e;
				break;
			}
		}
	}
	digest_worker(&j);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);

	if (ret == 0) {
		XXH128_hash_t h = XXH3_128bits(j.recs, (size_t)(j.nchunks * LM_DIGEST_REC));

		out->lo = h.low64;
		out->hi = h.high64;
	}
out:
	free(tids);
	free(j.recs);
	free(first);
	return ret;
}
