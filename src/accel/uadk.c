/* SPDX-License-Identifier: MIT */
/*
 * "uadk": the HiSilicon Kunpeng Zip accelerator through UADK's wd_comp
 * API, for the uadk method (one zlib stream, RFC 1950, per page).
 *
 * The calls are QEMU's multifd-uadk.c: wd_comp_init2("zlib",
 * SCHED_POLICY_RR, TASK_HW), a session per direction, wd_do_comp_sync()
 * per page.  TASK_HW binds only a hardware driver: UADK's TASK_MIX would
 * add its own software fallback, which the policy in accel.c must own.
 *
 * wd_comp_init2() and wd_comp_uninit2() act on the whole process: a
 * second init answers -WD_EEXIST and one uninit tears the library down
 * under every other thread's sessions.  So, unlike QEMU (which inits and
 * uninits per channel), the contexts share one initialisation, counted in
 * uadk_lib below.  That counter is the one piece of mutable state at file
 * scope in the engines; it mirrors state UADK itself keeps per process,
 * and is touched only at probe, setup and cleanup, never per page.
 *
 * Sessions are allocated with zeroed memory ops, which UADK takes as its
 * shared-virtual-addressing (SVA) mode: the device reads guest pages and
 * our buffers where they are.  A device without SVA fails at setup.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uadk/wd_comp.h>
#include <uadk/wd_sched.h>

#include "accel/engine.h"
#include "codec/method.h"
#include "util/page.h"

/* Output room for one page: QEMU's "twice the input", so the device never
 * stops for lack of space and "does not fit in cap" is decided here. */
#define UADK_SCRATCH (2 * LM_PAGE_SIZE)

static struct {
	pthread_mutex_t lock;
	unsigned users;  /* probes and contexts holding the initialisation */
	bool owner;      /* we called wd_comp_init2, so we call uninit2 */
} uadk_lib = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Takes a reference on UADK's process-wide zlib initialisation. */
static int uadk_get(void)
{
	int r = 0;

	pthread_mutex_lock(&uadk_lib.lock);
	if (!uadk_lib.users) {
		char alg[] = "zlib"; /* wd_comp_init2 takes a char * */
		r = wd_comp_init2(alg, SCHED_POLICY_RR, TASK_HW);
		/* -WD_EEXIST: someone else in the process initialised it and
		 * will uninitialise it; we use it and leave it alone. */
		uadk_lib.owner = r == 0;
		if (r == -WD_EEXIST)
			r = 0;
	}
	if (!r)
		uadk_lib.users++;
	pthread_mutex_unlock(&uadk_lib.lock);
	return r;
}

static void uadk_put(void)
{
	pthread_mutex_lock(&uadk_lib.lock);
	if (uadk_lib.users && !--uadk_lib.users && uadk_lib.owner) {
		wd_comp_uninit2();
		uadk_lib.owner = false;
	}
	pthread_mutex_unlock(&uadk_lib.lock);
}

static int uadk_probe(char *why, size_t why_len)
{
	int r = uadk_get();

	if (r) {
		snprintf(why, why_len,
			 "no UADK zlib device: wd_comp_init2(\"zlib\", SCHED_POLICY_RR, TASK_HW) returned %d",
			 r);
		return r == -WD_ENOMEM ? -ENOMEM : -ENODEV;
	}
	uadk_put();
	return 0;
}

struct uadk_ctx {
	handle_t comp, decomp; /* a session has one direction */
	uint8_t *scratch;      /* UADK_SCRATCH bytes */
	bool lib;              /* holds a uadk_get() reference */
};

static void uadk_cleanup(void *ctx)
{
	struct uadk_ctx *c = ctx;

	if (!c)
		return;
	if (c->comp)
		wd_comp_free_sess(c->comp);
	if (c->decomp)
		wd_comp_free_sess(c->decomp);
	if (c->lib)
		uadk_put();
	free(c->scratch);
	free(c);
}

static handle_t session(enum wd_comp_op_type op)
{
	/* numa_id -1: the scheduler picks the calling CPU's node, and scans
	 * the others when that node has no device. */
	struct sched_params sp = {.numa_id = -1, .type = (__u8)op, .mode = CTX_MODE_SYNC};
	struct wd_comp_sess_setup ss = {
		.alg_type = WD_ZLIB,
		.op_type = op,
		/* The device has one speed; a page fits a 4 KiB window. */
		.comp_lv = WD_COMP_L1,
		.win_sz = WD_COMP_WS_4K,
		.sched_param = &sp,
	};

	return wd_comp_alloc_sess(&ss);
}

static int uadk_setup(void **ctx, const struct lm_engine_cfg *cfg)
{
	struct uadk_ctx *c = calloc(1, sizeof(*c));

	(void)cfg; /* one level, one page per job: nothing to configure */
	if (!c)
		return -ENOMEM;
	int r = uadk_get();
	if (r) {
		free(c);
		return r == -WD_ENOMEM ? -ENOMEM : -ENODEV;
	}
	c->lib = true;
	c->scratch = malloc(UADK_SCRATCH);
	if (!c->scratch) {
		uadk_cleanup(c);
		return -ENOMEM;
	}
	/* Both directions now, so that the data path never allocates: a
	 * context does not know whether it will send or receive. */
	c->comp = session(WD_DIR_COMPRESS);
	c->decomp = session(WD_DIR_DECOMPRESS);
	if (!c->comp || !c->decomp) {
		uadk_cleanup(c);
		return -EIO; /* UADK logged why (no SVA, no ctx for a direction...) */
	}
	*ctx = c;
	return 0;
}

/* wd_do_comp_sync's return: a negative errno (-WD_EBUSY is a full queue). */
static int call_errno(int ret)
{
	return ret == -WD_EBUSY ? -EBUSY : ret < 0 ? ret : -EIO;
}

static void uadk_job(struct uadk_ctx *c, struct lm_job *j)
{
	j->len = 0;
	if (j->npages != 1) {
		j->status = -EINVAL; /* a per-page method: the caller's bug */
		return;
	}

	struct wd_comp_req req = {
		.src = (void *)j->src[0],
		.src_len = LM_PAGE_SIZE,
		.dst = c->scratch,
		.dst_len = UADK_SCRATCH,
		.op_type = WD_DIR_COMPRESS,
		.data_fmt = WD_FLAT_BUF,
	};
	int ret = wd_do_comp_sync(c->comp, &req);
	if (ret) {
		j->status = call_errno(ret);
		return;
	}
	/* The driver reports a device error (and an output overflow, which
	 * the scratch size rules out) as a request status. */
	if (req.status != WD_SUCCESS || req.src_len != LM_PAGE_SIZE || !req.dst_len) {
		j->status = -EIO;
		return;
	}
	if (req.dst_len > j->cap) {
		j->status = -ENOSPC;
		return;
	}
	memcpy(j->dst, c->scratch, req.dst_len);
	j->len = req.dst_len;
	j->status = 0;
}

/* Synchronous calls, one page after the other: wd_do_comp_sync returns
 * when the device has answered, so nothing is in flight after run(). */
LM_ENGINE_RUN_EACH(uadk_run, struct uadk_ctx, uadk_job)

/*
 * As in QEMU, success is "exactly out_len bytes out".  The input consumed
 * is not compared with len: in stateless mode the driver's count may leave
 * out the Adler-32 trailer, and a corrupt page still fails its packet CRC.
 */
static int uadk_decompress(void *ctx, const uint8_t *in, uint32_t len, uint8_t *out,
			   uint32_t out_len)
{
	struct uadk_ctx *c = ctx;
	struct wd_comp_req req = {
		.src = (void *)in,
		.src_len = len,
		.dst = out,
		.dst_len = out_len,
		.op_type = WD_DIR_DECOMPRESS,
		.data_fmt = WD_FLAT_BUF,
	};

	if (!len)
		return -EPROTO; /* UADK refuses empty input; so would zlib */
	int ret = wd_do_comp_sync(c->decomp, &req);
	if (ret)
		return call_errno(ret);
	/* The end of the stream may come back as WD_STREAM_END. */
	if (req.status == WD_IN_EPARA)
		return -EPROTO;
	if (req.status != WD_SUCCESS && req.status != WD_STREAM_END)
		return -EIO;
	return req.dst_len == out_len ? 0 : -EPROTO;
}

const struct lm_engine_ops lm_engine_uadk = {
	.name = "uadk",
	.method = LM_METHOD_UADK,
	.hardware = true,
	.absent = NULL,
	.probe = uadk_probe,
	.setup = uadk_setup,
	.cleanup = uadk_cleanup,
	.run = uadk_run,
	.decompress = uadk_decompress,
};
