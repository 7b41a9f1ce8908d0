/* SPDX-License-Identifier: MIT */
/*
 * "qpl": the Intel In-Memory Analytics Accelerator (IAA) through QPL's
 * job API, for the qpl method (one raw deflate stream per page).
 *
 * Every qpl_job here is initialised on qpl_path_hardware and nothing else:
 * qpl_path_auto would let QPL quietly run a job on the CPU when the device
 * is missing or its queues are full, and then the policy in accel.c could
 * neither count it nor choose ISA-L instead.  A busy queue is reported as
 * -EBUSY and the policy decides.
 *
 * run() is a real batch, as in QEMU's multifd-qpl.c: every job is
 * submitted first, so that the device works on all of them at once, and
 * only then is each one waited for.  One qpl_job per possible job in a
 * batch is made at setup; the data path allocates nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qpl/qpl.h>

#include "accel/engine.h"
#include "codec/method.h"
#include "util/page.h"

struct qpl_ctx {
	qpl_job **job;      /* max_jobs hardware jobs */
	bool *submitted;    /* per job of the current run() */
	uint32_t njobs;     /* how many of job[] were initialised */
	uint32_t flags;     /* compression flags, fixed for the context */
};

/* What an initialisation failure means, for probe()'s why. */
static const char *init_status_text(qpl_status st)
{
	switch (st) {
	case QPL_STS_INIT_HW_NOT_SUPPORTED:
		return "hardware path not supported on this system";
	case QPL_STS_INIT_LIBACCEL_NOT_FOUND:
		return "libaccel-config not found or incompatible";
	case QPL_STS_INIT_LIBACCEL_ERROR:
		return "libaccel-config error";
	case QPL_STS_INIT_WORK_QUEUES_NOT_AVAILABLE:
		return "no enabled IAA work queue usable by this user";
	default:
		return "initialisation failed";
	}
}

/*
 * A QPL status as the errno engine.h asks for.  The same "output full"
 * statuses mean "does not fit" when compressing (the caller sends the page
 * raw) but "decodes to more than a page" when decompressing.
 */
static int status_errno(qpl_status st, bool compress)
{
	switch (st) {
	case QPL_STS_OK:
		return 0;
	case QPL_STS_QUEUES_ARE_BUSY_ERR:
		return -EBUSY;
	case QPL_STS_MORE_OUTPUT_NEEDED:
	case QPL_STS_DST_IS_SHORT_ERR:
	case QPL_STS_OUTPUT_OVERFLOW_ERR:
	case QPL_STS_INTL_OUTPUT_OVERFLOW:
		return compress ? -ENOSPC : -EPROTO;
	case QPL_STS_NO_MEM_ERR:
	case QPL_STS_OBJECT_ALLOCATION_ERR:
		return -ENOMEM;
	case QPL_STS_TIMEOUT_ERR:
	case QPL_STS_INTL_HARDWARE_TIMEOUT:
	case QPL_STS_INTL_WATCHDOG_TIMER_EXPIRE:
		return -ETIMEDOUT;
	case QPL_STS_NOT_SUPPORTED_BY_WQ:
		return -EOPNOTSUPP;
	default:
		break;
	}
	if (st >= QPL_INIT_ERROR_BASE)
		return -ENODEV;
	/*
	 * The completion-record errors (bad codes, bad distances, truncated
	 * input...) are what a corrupt stream produces when decoding.
	 */
	if (!compress && ((st >= QPL_OPERATION_ERROR_BASE && st < QPL_OPERATION_STATUS_BASE) ||
			  st == QPL_STS_MORE_INPUT_NEEDED || st == QPL_STS_INVALID_DEFLATE_DATA_ERR))
		return -EPROTO;
	return -EIO;
}

/* A zeroed, initialised hardware job, or NULL with *st saying why. */
static qpl_job *job_new(qpl_status *st)
{
	uint32_t size = 0;

	*st = qpl_get_job_size(qpl_path_hardware, &size);
	if (*st != QPL_STS_OK)
		return NULL;
	qpl_job *job = calloc(1, size);
	if (!job) {
		*st = QPL_STS_NO_MEM_ERR;
		return NULL;
	}
	*st = qpl_init_job(qpl_path_hardware, job);
	if (*st != QPL_STS_OK) {
		/* A failed hardware init leaves the job on the software path,
		 * which qpl_fini_job has nothing to release for. */
		free(job);
		return NULL;
	}
	return job;
}

static void job_free(qpl_job *job)
{
	if (!job)
		return;
	qpl_fini_job(job);
	free(job);
}

/*
 * One hardware job made and released: qpl_init_job on the hardware path
 * is what opens the IAA work queues, so its failure is the "no device"
 * answer, and its status says which part is missing.
 */
static int qpl_probe(char *why, size_t why_len)
{
	qpl_status st;
	qpl_job *job = job_new(&st);

	if (!job) {
		snprintf(why, why_len, "no IAA device: qpl_init_job(qpl_path_hardware) returned %d (%s)",
			 (int)st, init_status_text(st));
		return st == QPL_STS_NO_MEM_ERR ? -ENOMEM : -ENODEV;
	}
	job_free(job);
	return 0;
}

static void qpl_cleanup(void *ctx)
{
	struct qpl_ctx *c = ctx;

	if (!c)
		return;
	for (uint32_t i = 0; i < c->njobs; i++)
		job_free(c->job[i]);
	free(c->job);
	free(c->submitted);
	free(c);
}

static int qpl_setup(void **ctx, const struct lm_engine_cfg *cfg)
{
	uint32_t n = cfg->max_jobs ? cfg->max_jobs : 1;
	struct qpl_ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->job = calloc(n, sizeof(*c->job));
	c->submitted = calloc(n, sizeof(*c->submitted));
	if (!c->job || !c->submitted) {
		qpl_cleanup(c);
		return -ENOMEM;
	}
	/*
	 * Level 1 is what QEMU sends: fixed Huffman codes, one pass through
	 * the device.  Higher levels ask for dynamic codes, which IAA builds
	 * in a second pass over the page: slower, smaller.  IAA has only
	 * qpl_default_level; qpl_high_level is refused on the hardware path.
	 * OMIT_VERIFY skips QPL's decode-after-encode check, as QEMU does;
	 * the policy's accel-verify does that job when asked to.
	 */
	c->flags = QPL_FLAG_FIRST | QPL_FLAG_LAST | QPL_FLAG_OMIT_VERIFY;
	if (cfg->level > 1)
		c->flags |= QPL_FLAG_DYNAMIC_HUFFMAN;
	for (; c->njobs < n; c->njobs++) {
		qpl_status st;
		c->job[c->njobs] = job_new(&st);
		if (!c->job[c->njobs]) {
			int r = status_errno(st, true);
			qpl_cleanup(c);
			return r;
		}
	}
	*ctx = c;
	return 0;
}

/* Fills j's hardware job for one page: input and output bounds, flags. */
static bool prepare_compress(struct qpl_ctx *c, qpl_job *q, struct lm_job *j)
{
	if (j->npages != 1) {
		j->status = -EINVAL; /* a per-page method: the caller's bug */
		return false;
	}
	if (!j->cap) {
		j->status = -ENOSPC; /* QPL calls an empty output a size error */
		return false;
	}
	q->op = qpl_op_compress;
	q->level = qpl_default_level;
	q->flags = c->flags;
	q->next_in_ptr = (uint8_t *)j->src[0];
	q->available_in = LM_PAGE_SIZE;
	/* cap is below the page size, so a page that will not shrink ends
	 * the job with "more output needed": -ENOSPC, sent raw. */
	q->next_out_ptr = j->dst;
	q->available_out = j->cap;
	return true;
}

static void qpl_run(void *ctx, struct lm_job *jobs, uint32_t n)
{
	struct qpl_ctx *c = ctx;

	for (uint32_t i = n > c->njobs ? c->njobs : n; i < n; i++)
		jobs[i].status = -EINVAL; /* more than max_jobs: refused */
	if (n > c->njobs)
		n = c->njobs;

	/* Submit them all: a full queue fails only that job, and the device
	 * may have room again for the next one. */
	for (uint32_t i = 0; i < n; i++) {
		struct lm_job *j = &jobs[i];
		qpl_job *q = c->job[i];

		c->submitted[i] = false;
		j->len = 0;
		if (!prepare_compress(c, q, j))
			continue;
		qpl_status st = qpl_submit_job(q);
		if (st == QPL_STS_OK)
			c->submitted[i] = true;
		else
			j->status = status_errno(st, true);
	}

	/* Then wait for each: nothing may be left in flight on return. */
	for (uint32_t i = 0; i < n; i++) {
		struct lm_job *j = &jobs[i];
		qpl_job *q = c->job[i];

		if (!c->submitted[i])
			continue;
		qpl_status st = qpl_wait_job(q);
		if (st != QPL_STS_OK) {
			j->status = status_errno(st, true);
		} else if (q->total_in != LM_PAGE_SIZE || q->total_out > j->cap) {
			j->status = -EIO; /* "done" without the whole page in, or past cap */
		} else {
			j->len = q->total_out;
			j->status = 0;
		}
	}
}

/*
 * Decodes on the device with the first job of the context: a context
 * belongs to one thread, so run() and decompress() never overlap.  As in
 * QEMU, success is "the job finished and produced exactly out_len bytes".
 */
static int qpl_decompress(void *ctx, const uint8_t *in, uint32_t len, uint8_t *out,
			  uint32_t out_len)
{
	struct qpl_ctx *c = ctx;
	qpl_job *q = c->job[0];

	q->op = qpl_op_decompress;
	q->flags = QPL_FLAG_FIRST | QPL_FLAG_LAST;
	q->next_in_ptr = (uint8_t *)in;
	q->available_in = len;
	q->next_out_ptr = out;
	q->available_out = out_len;
	qpl_status st = qpl_submit_job(q);
	if (st == QPL_STS_OK)
		st = qpl_wait_job(q);
	if (st != QPL_STS_OK)
		return status_errno(st, false);
	return q->total_out == out_len ? 0 : -EPROTO;
}

const struct lm_engine_ops lm_engine_qpl = {
	.name = "qpl",
	.method = LM_METHOD_QPL,
	.hardware = true,
	.absent = NULL,
	.probe = qpl_probe,
	.setup = qpl_setup,
	.cleanup = qpl_cleanup,
	.run = qpl_run,
	.decompress = qpl_decompress,
};
