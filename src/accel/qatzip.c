/* SPDX-License-Identifier: MIT */
/*
 * "qatzip": Intel QuickAssist (QAT) through QATzip, for the qatzip method
 * (one raw deflate stream per packet, the packet's pages concatenated).
 *
 * Like QEMU's multifd-qatzip.c this uses QATzip's one-shot qzCompress()
 * on the whole packet, copied first into one contiguous buffer: a job's
 * pages are scattered in guest memory and qzCompress takes one buffer.
 * Unlike QEMU, the session is set up with sw_backup = 0: QATzip must not
 * compress on the CPU behind our back, because the policy in accel.c
 * falls back to ISA-L or zlib itself and counts it.  QZ_DEFLATE_RAW
 * makes QATzip flush every hardware chunk but the last without BFINAL,
 * so a packet is one RFC 1951 stream that zlib and ISA-L decode.
 *
 * QATzip's own initialisation (qzInit) is per process and reference-free:
 * later calls answer QZ_DUPLICATE, qzClose() does nothing and the library
 * tears the device down at exit.  So each context just owns a session.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qatzip.h>

#include "accel/engine.h"
#include "codec/method.h"
#include "util/page.h"

/* Where qzMalloc puts its pinned buffers: the caller's node when this
 * QATzip can tell (1.2 and later), node 0 as QEMU does otherwise. */
#ifdef QZ_AUTO_SELECT_NUMA_NODE
#define QATZIP_NUMA QZ_AUTO_SELECT_NUMA_NODE
#else
#define QATZIP_NUMA 0
#endif

/* The largest job: a packet of LM_PACKET_PAGES pages. */
#define QATZIP_MAX_IN (LM_PACKET_PAGES * LM_PAGE_SIZE)

struct qatzip_ctx {
	QzSession_T sess;
	uint8_t *in_buf;   /* QATZIP_MAX_IN: the packet, contiguous */
	uint8_t *out_buf;  /* out_len: room for any packet's output */
	unsigned int out_len;
};

/*
 * A QATzip return code as the errno engine.h asks for.  "No hardware" and
 * "no free instance" both mean "not now" to the policy, which retries a
 * bounded number of times and then uses software, so both are -EBUSY.
 */
static int qz_errno(int rc, bool compress)
{
	switch (rc) {
	case QZ_OK:
		return 0;
	case QZ_NOSW_NO_HW:
	case QZ_NOSW_NO_INST_ATTACH:
	case QZ_NO_INST_ATTACH:
	case QZ_NO_HW:
		return -EBUSY;
	case QZ_BUF_ERROR:
		return compress ? -ENOSPC : -EPROTO;
	case QZ_DATA_ERROR:
		return compress ? -EIO : -EPROTO;
	case QZ_PARAMS:
		return -EINVAL;
	case QZ_NOSW_LOW_MEM:
	case QZ_LOW_MEM:
	case QZ_LOW_DEST_MEM:
		return -ENOMEM;
	case QZ_TIMEOUT:
		return -ETIMEDOUT;
	case QZ_UNSUPPORTED_FMT:
	case QZ_NOSW_UNSUPPORTED_FMT:
	case QZ_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

/*
 * The session every context uses: QATzip's defaults, as QEMU takes them
 * (hw_buff_sz 64 KiB: a 512 KiB packet is 8 hardware requests, under
 * req_cnt_thrshold, so qzCompress does not start a helper thread), except
 * the format, the level and no software at all.
 */
static int session_params(QzSessionParamsDeflate_T *p, int level)
{
	int rc = qzGetDefaultsDeflate(p);

	if (rc != QZ_OK)
		return rc;
	p->data_fmt = QZ_DEFLATE_RAW;
	p->common_params.direction = QZ_DIR_BOTH;
	p->common_params.comp_lvl = (unsigned int)(level < 1 ? 1 : level > 9 ? 9 : level);
	p->common_params.sw_backup = 0;
	/*
	 * Inputs below this threshold go to QATzip's software path whatever
	 * sw_backup says.  Our smallest input is one page, far above the
	 * minimum, so the minimum keeps every job on the device.
	 */
	p->common_params.input_sz_thrshold = QZ_COMP_THRESHOLD_MINIMUM;
	return QZ_OK;
}

/* qzInit then a session; 0 or the QATzip code of the step that failed,
 * with which step in *step. */
static int session_open(QzSession_T *sess, int level, const char **step)
{
	QzSessionParamsDeflate_T p;
	int rc;

	memset(sess, 0, sizeof(*sess));
	*step = "qzInit(sw_backup=0)";
	rc = qzInit(sess, 0);
	if (rc != QZ_OK && rc != QZ_DUPLICATE)
		return rc;
	*step = "qzGetDefaultsDeflate";
	rc = session_params(&p, level);
	if (rc != QZ_OK)
		return rc;
	/* Returns QZ_NOSW_NO_HW when qzInit found no device; checking the
	 * session status as well catches a QZ_DUPLICATE from an earlier,
	 * failed initialisation by someone else in the process. */
	*step = "qzSetupSessionDeflate";
	rc = qzSetupSessionDeflate(sess, &p);
	if (rc == QZ_OK && sess->hw_session_stat != QZ_OK)
		rc = (int)sess->hw_session_stat;
	return rc;
}

static int qatzip_probe(char *why, size_t why_len)
{
	QzSession_T sess;
	const char *step;
	int rc = session_open(&sess, 1, &step);

	(void)qzTeardownSession(&sess);
	(void)qzClose(&sess);
	if (rc == QZ_OK)
		return 0;
	snprintf(why, why_len, "no QAT device: %s returned %d", step, rc);
	return rc == QZ_NOSW_LOW_MEM || rc == QZ_LOW_MEM ? -ENOMEM : -ENODEV;
}

static void qatzip_cleanup(void *ctx)
{
	struct qatzip_ctx *c = ctx;

	if (!c)
		return;
	if (c->in_buf)
		qzFree(c->in_buf);
	if (c->out_buf)
		qzFree(c->out_buf);
	/* Safe on a session never set up: its internal pointer is NULL. */
	(void)qzTeardownSession(&c->sess);
	(void)qzClose(&c->sess);
	free(c);
}

/* Pinned memory lets QAT read and write the buffer without QATzip's
 * bounce copy; ordinary memory still works, with the copy. */
static uint8_t *qz_buffer(size_t size)
{
	uint8_t *p = qzMalloc(size, QATZIP_NUMA, PINNED_MEM);

	return p ? p : qzMalloc(size, QATZIP_NUMA, COMMON_MEM);
}

static int qatzip_setup(void **ctx, const struct lm_engine_cfg *cfg)
{
	struct qatzip_ctx *c = calloc(1, sizeof(*c));
	const char *step;

	if (!c)
		return -ENOMEM;
	/* Before any qzMalloc: qzMalloc(PINNED_MEM) on an uninitialised
	 * QATzip calls qzInit(sw_backup=1) itself. */
	int rc = session_open(&c->sess, cfg->level, &step);
	if (rc != QZ_OK) {
		qatzip_cleanup(c);
		return rc == QZ_NOSW_NO_HW ? -ENODEV : qz_errno(rc, true);
	}
	c->out_len = qzMaxCompressedLength(QATZIP_MAX_IN, &c->sess);
	c->in_buf = qz_buffer(QATZIP_MAX_IN);
	c->out_buf = c->out_len ? qz_buffer(c->out_len) : NULL;
	if (!c->in_buf || !c->out_buf) {
		qatzip_cleanup(c);
		return -ENOMEM;
	}
	*ctx = c;
	return 0;
}

/* One packet: gathered, compressed into out_buf (big enough for any
 * output, so the device never stops half way), then copied if it fits. */
static void qatzip_job(struct qatzip_ctx *c, struct lm_job *j)
{
	j->len = 0;
	if (!j->npages || j->npages > LM_PACKET_PAGES) {
		j->status = -EINVAL;
		return;
	}
	for (uint32_t i = 0; i < j->npages; i++)
		memcpy(c->in_buf + (size_t)i * LM_PAGE_SIZE, j->src[i], LM_PAGE_SIZE);

	unsigned int in_len = j->npages * LM_PAGE_SIZE, out_len = c->out_len;
	uint64_t ext_rc = 0;
	int rc = qzCompressExt(&c->sess, c->in_buf, &in_len, c->out_buf, &out_len, 1, &ext_rc);
	if (rc != QZ_OK) {
		j->status = qz_errno(rc, true);
		return;
	}
	/*
	 * With sw_backup = 0 QATzip should never take its software path; if
	 * it did (another user of QATzip in this process chose sw_backup = 1
	 * before us and there is no device), the output is valid but was
	 * not made by the device, so report it as a device failure and let
	 * the policy redo it, counted, in its own software engine.
	 */
	if (QZ_SW_EXECUTION(rc, ext_rc)) {
		j->status = -ENODEV;
		return;
	}
	if (in_len != j->npages * LM_PAGE_SIZE) {
		j->status = -EIO; /* QZ_OK without all the input taken */
		return;
	}
	if (out_len > j->cap) {
		j->status = -ENOSPC;
		return;
	}
	memcpy(j->dst, c->out_buf, out_len);
	j->len = out_len;
	j->status = 0;
}

/* qzCompress is synchronous, so jobs go one after the other; QATzip
 * spreads one packet's chunks over the device's rings itself. */
LM_ENGINE_RUN_EACH(qatzip_run, struct qatzip_ctx, qatzip_job)

static int qatzip_decompress(void *ctx, const uint8_t *in, uint32_t len, uint8_t *out,
			     uint32_t out_len)
{
	struct qatzip_ctx *c = ctx;
	unsigned int src_len = len, dst_len = out_len;
	int rc = qzDecompress(&c->sess, in, &src_len, out, &dst_len);

	if (rc != QZ_OK)
		return qz_errno(rc, false);
	return src_len == len && dst_len == out_len ? 0 : -EPROTO;
}

const struct lm_engine_ops lm_engine_qatzip = {
	.name = "qatzip",
	.method = LM_METHOD_QATZIP,
	.hardware = true,
	.absent = NULL,
	.probe = qatzip_probe,
	.setup = qatzip_setup,
	.cleanup = qatzip_cleanup,
	.run = qatzip_run,
	.decompress = qatzip_decompress,
};
