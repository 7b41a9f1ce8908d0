/* SPDX-License-Identifier: MIT */
/*
 * A software model of one DSA work queue, for testing the engine on
 * machines without DSA (that is, almost all of them).
 *
 * It takes the same 64-byte descriptors (struct dsa_hw_desc from
 * <linux/idxd.h>) through the same submit() call the real portal uses, and
 * answers only through completion records in the submitter's memory, as the
 * device does.  So the engine cannot tell it from hardware except by
 * timing: it must poll, and it must read everything it needs from the
 * records.
 *
 * What is modelled (from the DSA spec, the kernel's idxd UAPI and the way
 * accel-config's tests and QEMU's multifd DSA code read the records):
 * - COMPVAL: compares xfer_size bytes at src_addr with the 8-byte
 *   comp_pattern repeated (little-endian).  Match: SUCCESS, result 0.
 *   Mismatch: SUCCESS, result 1, bytes_completed = offset of the first
 *   differing byte.  NOOP completes with SUCCESS.
 * - BATCH: desc_count descriptors at desc_list_addr (2..max_batch, list
 *   64-byte aligned), executed in order; the batch record is written after
 *   every descriptor's record, with SUCCESS when all succeeded, else
 *   BATCH_FAIL; bytes_completed is the number of descriptors processed.
 *   A batch inside a batch is BAD_OPCODE.
 * - Page fault with block-on-fault off: the descriptor stops at the
 *   faulting byte, PAGE_FAULT_NOBOF, bytes_completed = bytes done,
 *   fault_addr = the faulting address.  A mismatch found before the fault
 *   still completes normally (the device got there first).
 * - Validation: reserved fields, priv, transfer size, batch count and list
 *   alignment give their error statuses; a completion record address that
 *   is not 32-byte aligned (or CRAV clear) means no record at all -- the
 *   device reports that through SWERROR, never through memory -- counted
 *   as "lost".
 * - Completion records: every field first, then the status byte with a
 *   release store, so a poller that sees the status (acquire) sees the rest.
 * - Shared queues reject (-EAGAIN, ENQCMD's ZF=1) when full; a full
 *   dedicated queue drops the descriptor silently, like MOVDIR64B.
 *
 * Execution is synchronous inside submit() by default, or in a worker
 * thread ("thread"), where the engine's poller really waits.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zeropage/dsa_model.h"

#define MAX_INJECT 8
#define CR_ALIGN 32u
#define LIST_ALIGN 64u

struct inject {
	uint32_t desc;	/* index in the batch */
	uint32_t val;	/* bytes before the fault, or a status */
};

struct model {
	/* Fixed after open. */
	bool shared, hang, threaded;
	uint8_t batch_error;
	uint32_t max_batch, max_xfer, depth;
	unsigned nfault, nderr;
	struct inject fault[MAX_INJECT], derr[MAX_INJECT];

	/* Remaining forced rejections; only the submitting thread uses it. */
	uint64_t busy;

	/* Thread mode: the queue's storage, a ring of descriptor copies. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thr;
	bool stop;
	unsigned head, count;
	struct dsa_hw_desc *ring;

	/* Read by tests from another thread: atomics. */
	struct lm_dsa_model_counters ctr;
};

static void bump(uint64_t *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static void complete(struct model *m, const struct dsa_hw_desc *d, uint8_t status, uint8_t result,
		     uint32_t bytes, uint64_t fault_addr)
{
	struct dsa_completion_record *cr;

	if (!(d->flags & IDXD_OP_FLAG_CRAV) || d->completion_addr % CR_ALIGN) {
		bump(&m->ctr.lost);
		return;
	}
	/* Without RCR the device writes a record only for an error. */
	if (!(d->flags & IDXD_OP_FLAG_RCR) && status == DSA_COMP_SUCCESS)
		return;
	cr = (struct dsa_completion_record *)(uintptr_t)d->completion_addr;
	cr->result = result;
	cr->rsvd = 0;
	cr->bytes_completed = bytes;
	cr->fault_addr = fault_addr;
	memset(cr->op_specific, 0, sizeof(cr->op_specific));
	__atomic_store_n(&cr->status, status, __ATOMIC_RELEASE);
}

static const struct inject *find(const struct inject *v, unsigned n, uint32_t idx)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i].desc == idx)
			return &v[i];
	return NULL;
}

/* Checks every descriptor gets, whatever its opcode. */
static uint8_t check_common(const struct dsa_hw_desc *d)
{
	if (d->rsvd || d->rsvd1)
		return DSA_COMP_NOZERO_RESERVE;
	if (d->priv)
		return DSA_COMP_PRIV_BAD; /* user-mode submitters cannot ask for it */
	return 0;
}

/* Offset of the first byte in src[0, len) that differs from the pattern, or len. */
static uint32_t first_diff(const uint8_t *src, uint32_t len, uint64_t pattern)
{
	uint32_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, src + i, 8);
		if (w != pattern)
			break;
	}
	for (; i < len; i++)
		if (src[i] != (uint8_t)(pattern >> (8 * (i % 8))))
			break;
	return i;
}

/* One non-batch descriptor, index idx in its batch (0 alone).  Returns its status. */
static uint8_t exec_one(struct model *m, const struct dsa_hw_desc *d, uint32_t idx)
{
	const struct inject *inj;
	const uint8_t *src;
	uint32_t len, stop, diff;
	uint8_t st;

	bump(&m->ctr.descs);
	st = check_common(d);
	if (!st && d->opcode == DSA_OPCODE_NOOP) {
		complete(m, d, DSA_COMP_SUCCESS, 0, 0, 0);
		return DSA_COMP_SUCCESS;
	}
	if (!st && d->opcode != DSA_OPCODE_COMPVAL)
		st = DSA_COMP_BAD_OPCODE;
	if (!st && (d->xfer_size == 0 || d->xfer_size > m->max_xfer))
		st = DSA_COMP_XFER_ERANGE;
	if (st) {
		bump(&m->ctr.invalid);
		complete(m, d, st, 0, 0, 0);
		return st;
	}
	inj = find(m->derr, m->nderr, idx);
	if (inj) {
		complete(m, d, (uint8_t)inj->val, 0, 0, 0);
		return (uint8_t)inj->val;
	}

	src = (const uint8_t *)(uintptr_t)d->src_addr;
	len = d->xfer_size;
	inj = find(m->fault, m->nfault, idx);
	stop = inj && inj->val < len ? inj->val : len;
	diff = first_diff(src, stop, d->comp_pattern);
	if (diff < stop) {
		complete(m, d, DSA_COMP_SUCCESS, 1, diff, 0);
		return DSA_COMP_SUCCESS;
	}
	if (stop < len) {
		/* Status bit 7 clear: a read fault. */
		complete(m, d, DSA_COMP_PAGE_FAULT_NOBOF, 0, stop, (uintptr_t)(src + stop));
		return DSA_COMP_PAGE_FAULT_NOBOF;
	}
	complete(m, d, DSA_COMP_SUCCESS, 0, len, 0);
	return DSA_COMP_SUCCESS;
}

static void exec_batch(struct model *m, const struct dsa_hw_desc *b)
{
	const struct dsa_hw_desc *list;
	uint32_t n = b->desc_count, ok = 0;
	uint8_t st;

	bump(&m->ctr.batches);
	st = check_common(b);
	if (!st && (n < 2 || n > m->max_batch))
		st = DSA_COMP_DESC_CNT_ERANGE;
	if (!st && b->desc_list_addr % LIST_ALIGN)
		st = DSA_COMP_DESCLIST_ALIGN;
	if (st) {
		bump(&m->ctr.invalid);
		complete(m, b, st, 0, 0, 0);
		return;
	}
	if (m->batch_error) {
		complete(m, b, m->batch_error, 0, 0, 0);
		return;
	}
	list = (const struct dsa_hw_desc *)(uintptr_t)b->desc_list_addr;
	for (uint32_t j = 0; j < n; j++) {
		struct dsa_hw_desc d;

		/* The device fetches each descriptor once, as a copy. */
		memcpy(&d, &list[j], sizeof(d));
		if (exec_one(m, &d, j) == DSA_COMP_SUCCESS)
			ok++;
	}
	complete(m, b, ok == n ? DSA_COMP_SUCCESS : DSA_COMP_BATCH_FAIL, 0, n, 0);
}

static void dispatch(struct model *m, const struct dsa_hw_desc *d)
{
	if (d->opcode == DSA_OPCODE_BATCH)
		exec_batch(m, d);
	else
		exec_one(m, d, 0);
}

static void *worker(void *arg)
{
	struct model *m = arg;

	pthread_mutex_lock(&m->mu);
	for (;;) {
		struct dsa_hw_desc d;

		while (!m->count && !m->stop)
			pthread_cond_wait(&m->cv, &m->mu);
		/* Stopping drops what is still queued, like a queue reset. */
		if (m->stop)
			break;
		d = m->ring[m->head];
		m->head = (m->head + 1) % m->depth;
		m->count--;
		pthread_mutex_unlock(&m->mu);
		dispatch(m, &d);
		pthread_mutex_lock(&m->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

static int model_submit(void *priv, const struct dsa_hw_desc *desc)
{
	struct model *m = priv;

	if (m->busy) {
		m->busy--;
		bump(&m->ctr.rejected);
		return -EAGAIN;
	}
	if (m->hang) {
		bump(&m->ctr.accepted);
		return 0;
	}
	if (!m->threaded) {
		/* Counted before executing: the completion record publishes it. */
		bump(&m->ctr.accepted);
		dispatch(m, desc);
		return 0;
	}
	pthread_mutex_lock(&m->mu);
	if (m->count == m->depth) {
		pthread_mutex_unlock(&m->mu);
		if (m->shared) {
			bump(&m->ctr.rejected);
			return -EAGAIN;
		}
		bump(&m->ctr.lost);
		return 0;
	}
	bump(&m->ctr.accepted);
	m->ring[(m->head + m->count) % m->depth] = *desc;
	m->count++;
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static void model_close(void *priv)
{
	struct model *m = priv;

	if (!m)
		return;
	if (m->threaded) {
		pthread_mutex_lock(&m->mu);
		m->stop = true;
		pthread_cond_signal(&m->cv);
		pthread_mutex_unlock(&m->mu);
		pthread_join(m->thr, NULL);
		pthread_cond_destroy(&m->cv);
		pthread_mutex_destroy(&m->mu);
	}
	free(m->ring);
	free(m);
}

static const struct lm_dsa_wq_ops model_ops = {
	.submit = model_submit,
	.close = model_close,
};

static bool parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-')
		return false;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* "J@V" */
static bool parse_pair(const char *s, struct inject *in)
{
	char buf[64];
	char *at;

	if (strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	at = strchr(buf, '@');
	if (!at)
		return false;
	*at = '\0';
	return parse_u32(buf, &in->desc) && parse_u32(at + 1, &in->val);
}

static bool error_status(uint32_t s)
{
	return s > DSA_COMP_SUCCESS && s <= 0xff;
}

static int parse_opts(struct model *m, const char *opts, uint64_t *timeout_ms, bool *absent,
		      char *why, size_t why_len)
{
	char *copy, *tok, *save = NULL;
	int rc = 0;

	if (!opts || !*opts)
		return 0;
	copy = strdup(opts);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		const char *val = eq ? eq + 1 : NULL;
		struct inject in;
		uint32_t v;
		bool ok = true;

		if (eq)
			*eq = '\0';
		if (!strcmp(tok, "absent") && !val) {
			*absent = true;
		} else if (!strcmp(tok, "shared") && !val) {
			m->shared = true;
		} else if (!strcmp(tok, "thread") && !val) {
			m->threaded = true;
		} else if (!strcmp(tok, "hang") && !val) {
			m->hang = true;
		} else if (!strcmp(tok, "busy") && val && parse_u32(val, &v)) {
			m->shared = true;
			m->busy = v;
		} else if (!strcmp(tok, "fault") && val && parse_pair(val, &in)) {
			ok = m->nfault < MAX_INJECT;
			if (ok)
				m->fault[m->nfault++] = in;
		} else if (!strcmp(tok, "desc-error") && val && parse_pair(val, &in)) {
			ok = m->nderr < MAX_INJECT && error_status(in.val);
			if (ok)
				m->derr[m->nderr++] = in;
		} else if (!strcmp(tok, "batch-error") && val && parse_u32(val, &v)) {
			ok = error_status(v);
			m->batch_error = (uint8_t)v;
		} else if (!strcmp(tok, "max-batch") && val && parse_u32(val, &v)) {
			ok = v >= 1;
			m->max_batch = v;
		} else if (!strcmp(tok, "depth") && val && parse_u32(val, &v)) {
			ok = v >= 1 && v <= 4096;
			m->depth = v;
		} else if (!strcmp(tok, "timeout-ms") && val && parse_u32(val, &v)) {
			ok = v >= 1;
			*timeout_ms = v;
		} else {
			ok = false;
		}
		if (!ok) {
			if (why && why_len)
				snprintf(why, why_len, "x-model: bad option '%s%s%s'", tok,
					 val ? "=" : "", val ? val : "");
			rc = -EINVAL;
		}
	}
	free(copy);
	return rc;
}

int lm_dsa_model_open(const char *opts, struct lm_dsa_wq *wq, char *why, size_t why_len)
{
	struct model *m;
	uint64_t timeout_ms = 1000;
	bool absent = false;
	int rc;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->max_batch = 1024;
	m->max_xfer = 2u << 20;
	m->depth = 16;
	rc = parse_opts(m, opts, &timeout_ms, &absent, why, why_len);
	if (!rc && absent) {
		if (why && why_len)
			snprintf(why, why_len, "x-model: no DSA device (injected 'absent')");
		rc = -ENODEV;
	}
	if (!rc && m->threaded) {
		m->ring = calloc(m->depth, sizeof(*m->ring));
		if (!m->ring) {
			rc = -ENOMEM;
		} else {
			pthread_mutex_init(&m->mu, NULL);
			pthread_cond_init(&m->cv, NULL);
			rc = -pthread_create(&m->thr, NULL, worker, m);
			if (rc) {
				pthread_cond_destroy(&m->cv);
				pthread_mutex_destroy(&m->mu);
				if (why && why_len)
					snprintf(why, why_len, "x-model: cannot start worker thread");
			}
		}
	}
	if (rc) {
		free(m->ring);
		free(m);
		return rc;
	}
	memset(wq, 0, sizeof(*wq));
	wq->ops = &model_ops;
	wq->priv = m;
	wq->shared = m->shared;
	wq->model = true;
	wq->max_batch = m->max_batch;
	wq->max_xfer = m->max_xfer;
	wq->timeout_ns = timeout_ms * 1000000ull;
	snprintf(wq->name, sizeof(wq->name), "x-model%s%s", opts && *opts ? ":" : "",
		 opts ? opts : "");
	return 0;
}

int lm_dsa_model_counters(const struct lm_dsa_wq *wq, struct lm_dsa_model_counters *c)
{
	const struct model *m;

	if (!wq || !wq->model || !c)
		return -ENODEV;
	m = wq->priv;
	c->accepted = __atomic_load_n(&m->ctr.accepted, __ATOMIC_RELAXED);
	c->rejected = __atomic_load_n(&m->ctr.rejected, __ATOMIC_RELAXED);
	c->batches = __atomic_load_n(&m->ctr.batches, __ATOMIC_RELAXED);
	c->descs = __atomic_load_n(&m->ctr.descs, __ATOMIC_RELAXED);
	c->invalid = __atomic_load_n(&m->ctr.invalid, __ATOMIC_RELAXED);
	c->lost = __atomic_load_n(&m->ctr.lost, __ATOMIC_RELAXED);
	return 0;
}
