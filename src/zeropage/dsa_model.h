/* SPDX-License-Identifier: MIT */
/*
 * Internal: the work-queue backends behind the DSA engine.  The engine
 * (dsa.c) builds descriptors and polls completion records; a backend only
 * moves one 64-byte descriptor into a work queue.  Two backends implement
 * it: the real portal (MOVDIR64B / ENQCMD, in dsa.c) and the software model
 * (dsa_model.c), so the engine's code path is the same for both.
 */
#ifndef LM_DSA_MODEL_H
#define LM_DSA_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/idxd.h>

struct lm_dsa;

struct lm_dsa_wq_ops {
	/*
	 * Hands one descriptor to the work queue.  0: accepted (a dedicated
	 * queue always "accepts": MOVDIR64B has no feedback).  -EAGAIN: a
	 * shared queue rejected it (ENQCMD set ZF); the caller may retry.
	 * The descriptor is copied; the memory it points to (batch list,
	 * completion records, pages) must stay valid until it completes.
	 */
	int (*submit)(void *priv, const struct dsa_hw_desc *desc);
	/* Stops the queue.  No completion record is written after it returns. */
	void (*close)(void *priv);
};

struct lm_dsa_wq {
	const struct lm_dsa_wq_ops *ops;
	void *priv;
	bool shared;		/* ENQCMD: submissions can be rejected */
	bool model;
	uint32_t max_batch;	/* descriptors per batch the queue accepts */
	uint32_t max_xfer;	/* bytes per descriptor */
	uint64_t timeout_ns;	/* longest wait for one completion */
	char name[48];
};

/*
 * The software model.  opts: NULL/"" or a comma-separated list of
 *   absent             open fails with -ENODEV (no device)
 *   shared             shared queue (ENQCMD semantics), default dedicated
 *   busy=N             shared, and rejects the next N submissions (queue full)
 *   thread             execute in a worker thread instead of inside submit()
 *   hang               accept descriptors, never complete them
 *   fault=J@K          descriptor J of every batch (0 for a lone descriptor)
 *                      page-faults after K bytes: status PAGE_FAULT_NOBOF
 *   desc-error=J@S     descriptor J completes with status S (e.g. 0x20)
 *   batch-error=S      every batch completes with status S, nothing executed
 *   max-batch=N        the queue's max_batch_size (default 1024)
 *   depth=N            queue depth in thread mode (default 16)
 *   timeout-ms=N       engine's completion timeout (default 1000)
 * Returns 0, -ENODEV (absent) or -EINVAL (bad option), with why.
 */
int lm_dsa_model_open(const char *opts, struct lm_dsa_wq *wq, char *why, size_t why_len);

/* What the model saw, for tests: an independent check of the engine's stats. */
struct lm_dsa_model_counters {
	uint64_t accepted;	/* submissions accepted */
	uint64_t rejected;	/* submissions rejected (busy) */
	uint64_t batches;	/* BATCH descriptors executed */
	uint64_t descs;		/* non-batch descriptors executed */
	uint64_t invalid;	/* descriptors completed with a validation error */
	uint64_t lost;		/* descriptors that could not write a completion record */
};
/* -ENODEV when wq is not the model. */
int lm_dsa_model_counters(const struct lm_dsa_wq *wq, struct lm_dsa_model_counters *c);

/* The work queue behind an engine (tests). */
const struct lm_dsa_wq *lm_dsa_get_wq(const struct lm_dsa *d);

#endif
