/* SPDX-License-Identifier: MIT */
/*
 * Zero-page detection on an Intel DSA work queue.
 *
 * Per call: n COMPVAL descriptors (pattern 0, 4 KiB each) in one BATCH
 * descriptor, one submission, then the calling thread polls the batch's
 * completion record.  There is no completion thread (QEMU's design has
 * one): a sender has nothing else to do while its packet is checked, and
 * polling on its own thread keeps the engine lock-free and per-thread.
 *
 * Memory the device reads or writes lives in one struct dsa_bufs per
 * engine: descriptors 64-byte aligned, completion records 32-byte aligned
 * (the batch's 64), all records zeroed before each submission so that a
 * non-zero status can only come from this submission.  A batch record is
 * written after all of its descriptors' records, so once it is seen every
 * per-page record is final.
 *
 * Reading the records (status & DSA_COMP_STATUS_MASK; bit 7 only says
 * whether a fault was a write):
 *   SUCCESS           result 0: zero page, 1: not (bytes_completed is where)
 *   PAGE_FAULT_NOBOF  block-on-fault is off, so the device stopped at a page
 *                     it could not translate; bytes_completed bytes matched.
 *                     The CPU checks the rest of the page (and faults it in).
 *   anything else     (unwritten record, error status, batch error) the
 *                     whole page on the CPU, counted as a device error.
 * A submission that cannot be made (shared queue still full after
 * SUBMIT_RETRIES), or that does not complete within the queue's timeout,
 * sends the whole chunk to the CPU.  After a timeout the device may still
 * write into dsa_bufs, so the engine never submits again: dsa_bufs stays
 * allocated until close, which first closes the work queue (the kernel
 * drains it on release).
 *
 * Submission is the backend's job (struct lm_dsa_wq_ops): the real portal
 * below, or the software model (dsa_model.c).  Everything else -- building
 * descriptors, retries, polling, fallback -- is shared.
 */
#include <cpuid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <immintrin.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/page.h"
#include "util/util.h"
#include "zeropage/dsa.h"
#include "zeropage/dsa_model.h"
#include "zeropage/zero.h"
#include "zeropage/zeropage.h"

#define SYSFS_DSA "/sys/bus/dsa"
#define DEV_PREFIX "/dev/dsa/"
#define PORTAL_SIZE 4096u
/* ENQCMD retries on a full shared queue, with a growing pause between
 * them: a few ms in all, time for the device to drain some entries. */
#define SUBMIT_RETRIES 64u
/* Polls with PAUSE before falling back to sched_yield: a 128-page batch
 * takes the device tens of microseconds. */
#define SPIN_POLLS 4096u
#define PORTAL_TIMEOUT_NS 1000000000ull

/* CPUID.(EAX=7,ECX=0):ECX */
#define CPUID7_ECX_MOVDIR64B 28
#define CPUID7_ECX_ENQCMD 29

_Static_assert(sizeof(struct dsa_hw_desc) == 64, "DSA descriptors are 64 bytes");
_Static_assert(sizeof(struct dsa_completion_record) == 32, "DSA completion records are 32 bytes");

/* Everything the device touches; its layout gives the alignments. */
struct dsa_bufs {
	struct dsa_hw_desc batch __attribute__((aligned(64)));
	struct dsa_completion_record batch_cr __attribute__((aligned(64)));
	struct dsa_hw_desc desc[LM_DSA_MAX_PAGES] __attribute__((aligned(64)));
	struct dsa_completion_record cr[LM_DSA_MAX_PAGES] __attribute__((aligned(32)));
};

struct lm_dsa {
	struct lm_dsa_wq wq;
	lm_zero_fn zero;	/* CPU path */
	bool dead;		/* a submission timed out: CPU only from now on */
	struct lm_dsa_stats st;
	struct dsa_bufs *b;
};

static void say(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* ---- The real work queue: sysfs discovery and the portal ---- */

struct portal {
	void *reg;	/* the mmap'ed submission portal */
	int fd;
	bool shared;
};

/* The instructions move 64 bytes; these types tell the compiler how many. */
struct line64 {
	char b[64];
};

/*
 * MOVDIR64B (%rdx), %rax and ENQCMD (%rdx), %rax, as bytes so that
 * assemblers older than binutils 2.34 build them.  The "memory" clobber
 * keeps the compiler from sinking the stores that filled the batch list and
 * zeroed the records below the submission; the sfence before orders those
 * write-back stores before the (weakly ordered) 64-byte store.
 */
static inline void movdir64b(void *portal, const void *desc)
{
	asm volatile(".byte 0x66, 0x0f, 0x38, 0xf8, 0x02"
		     : "+m"(*(struct line64 *)portal)
		     : "m"(*(const struct line64 *)desc), "a"(portal), "d"(desc)
		     : "memory");
}

/* True when the shared queue did not accept the descriptor (ZF=1). */
static inline bool enqcmd_rejected(void *portal, const void *desc)
{
	bool zf;

	asm volatile(".byte 0xf2, 0x0f, 0x38, 0xf8, 0x02"
		     : "=@ccz"(zf), "+m"(*(struct line64 *)portal)
		     : "m"(*(const struct line64 *)desc), "a"(portal), "d"(desc)
		     : "memory");
	return zf;
}

static int portal_submit(void *priv, const struct dsa_hw_desc *desc)
{
	struct portal *p = priv;

	asm volatile("sfence" ::: "memory");
	if (p->shared)
		return enqcmd_rejected(p->reg, desc) ? -EAGAIN : 0;
	movdir64b(p->reg, desc);
	return 0;
}

static void portal_close(void *priv)
{
	struct portal *p = priv;

	munmap(p->reg, PORTAL_SIZE);
	close(p->fd);
	free(p);
}

static const struct lm_dsa_wq_ops portal_ops = {
	.submit = portal_submit,
	.close = portal_close,
};

static bool cpu_has(unsigned ecx_bit)
{
	unsigned a, b, c, d;

	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return (c >> ecx_bit) & 1;
}

/* One sysfs attribute of a work queue, trailing newline removed. */
static int wq_attr(const char *wq, const char *attr, char *buf, size_t len)
{
	char path[160];
	ssize_t r;
	int fd, e;

	snprintf(path, sizeof(path), SYSFS_DSA "/devices/%s/%s", wq, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = read(fd, buf, len - 1);
	e = errno;
	close(fd);
	if (r < 0)
		return -e;
	while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == ' '))
		r--;
	buf[r] = '\0';
	return 0;
}

static uint32_t wq_attr_u32(const char *wq, const char *attr, uint32_t dflt)
{
	char buf[32], *end;
	unsigned long v;

	if (wq_attr(wq, attr, buf, sizeof(buf)))
		return dflt;
	v = strtoul(buf, &end, 0);
	return end == buf || *end || v > UINT32_MAX ? dflt : (uint32_t)v;
}

struct wq_info {
	char mode[16], state[16], type[16];
	uint32_t max_batch, max_xfer;
};

/* -ENOENT when the queue does not exist. */
static int wq_read(const char *wq, struct wq_info *w)
{
	int rc = wq_attr(wq, "mode", w->mode, sizeof(w->mode));

	if (rc)
		return rc;
	if (wq_attr(wq, "state", w->state, sizeof(w->state)))
		strcpy(w->state, "?");
	if (wq_attr(wq, "type", w->type, sizeof(w->type)))
		strcpy(w->type, "?");
	/* Older kernels lack the per-queue limits; an oversized batch then
	 * fails with DESC_CNT_ERANGE and falls back, it never misleads. */
	w->max_batch = wq_attr_u32(wq, "max_batch_size", LM_DSA_MAX_PAGES);
	w->max_xfer = wq_attr_u32(wq, "max_transfer_size", 2u << 20);
	return 0;
}

/* NULL when usable, else why not. */
static const char *wq_unusable(const struct wq_info *w)
{
	bool shared = !strcmp(w->mode, "shared");

	if (strcmp(w->state, "enabled"))
		return "work queue not enabled (accel-config enable-wq)";
	if (strcmp(w->type, "user"))
		return "work queue type is not 'user'";
	if (!shared && strcmp(w->mode, "dedicated"))
		return "unknown work queue mode";
	if (shared && !cpu_has(CPUID7_ECX_ENQCMD))
		return "shared work queue but the CPU lacks ENQCMD";
	if (!shared && !cpu_has(CPUID7_ECX_MOVDIR64B))
		return "dedicated work queue but the CPU lacks MOVDIR64B";
	if (w->max_xfer < LM_DSA_PAGE_SIZE)
		return "max_transfer_size below 4096";
	return NULL;
}

/* "wq0.0 dedicated enabled user, wq0.1 ..." into buf; returns usable ones. */
static unsigned wq_list(char *buf, size_t len)
{
	struct dirent *e;
	unsigned usable = 0;
	size_t off = 0;
	DIR *dir;

	buf[0] = '\0';
	dir = opendir(SYSFS_DSA "/devices");
	if (!dir)
		return 0;
	while ((e = readdir(dir))) {
		struct wq_info w;
		const char *bad;
		int k;

		if (strncmp(e->d_name, "wq", 2) || wq_read(e->d_name, &w))
			continue;
		bad = wq_unusable(&w);
		usable += !bad;
		k = snprintf(buf + off, len - off, "%s%s %s %s %s%s", off ? ", " : "", e->d_name,
			     w.mode, w.state, w.type, bad ? " (unusable)" : "");
		if (k < 0 || (size_t)k >= len - off)
			break;
		off += (size_t)k;
	}
	closedir(dir);
	return usable;
}

static int portal_open(const char *path, struct lm_dsa_wq *wq, char *why, size_t why_len)
{
	const char *name;
	struct wq_info w;
	struct portal *p;
	const char *bad;
	char list[512];
	unsigned a, b;
	int k = -1, rc;

	name = strncmp(path, DEV_PREFIX "wq", strlen(DEV_PREFIX) + 2) ? NULL
								       : path + strlen(DEV_PREFIX);
	if (!name || sscanf(name, "wq%u.%u%n", &a, &b, &k) != 2 || k < 0 || name[k]) {
		say(why, why_len, "%s: not a DSA work queue (expected /dev/dsa/wqX.Y or x-model)",
		    path);
		return -EINVAL;
	}
	if (access(SYSFS_DSA, F_OK)) {
		say(why, why_len, "%s: no DSA: %s missing (idxd driver not loaded, or no DSA device)",
		    path, SYSFS_DSA);
		return -ENODEV;
	}
	if (wq_read(name, &w)) {
		wq_list(list, sizeof(list));
		say(why, why_len, "%s: no such work queue; found: %s", path,
		    list[0] ? list : "none");
		return -ENODEV;
	}
	bad = wq_unusable(&w);
	if (bad) {
		say(why, why_len, "%s: %s", path, bad);
		return -ENODEV;
	}

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->shared = !strcmp(w.mode, "shared");
	p->fd = open(path, O_RDWR | O_CLOEXEC);
	if (p->fd < 0) {
		rc = errno == ENOENT || errno == ENXIO || errno == ENODEV ? -ENODEV : -errno;
		/* EBUSY: a dedicated queue has a single owner. */
		say(why, why_len, "%s: open: %s", path, strerror(errno));
		free(p);
		return rc;
	}
	p->reg = mmap(NULL, PORTAL_SIZE, PROT_WRITE, MAP_SHARED | MAP_POPULATE, p->fd, 0);
	if (p->reg == MAP_FAILED) {
		rc = -errno;
		say(why, why_len, "%s: mmap of the portal: %s", path, strerror(errno));
		close(p->fd);
		free(p);
		return rc;
	}
	memset(wq, 0, sizeof(*wq));
	wq->ops = &portal_ops;
	wq->priv = p;
	wq->shared = p->shared;
	wq->max_batch = w.max_batch;
	wq->max_xfer = w.max_xfer;
	wq->timeout_ns = PORTAL_TIMEOUT_NS;
	snprintf(wq->name, sizeof(wq->name), "%s", name);
	return 0;
}

/* ---- The engine ---- */

static bool is_model(const char *path)
{
	return !strcmp(path, "x-model") || !strncmp(path, "x-model:", 8);
}

int lm_dsa_open(const char *path, struct lm_dsa **out, char *why, size_t why_len)
{
	struct lm_dsa *d;
	void *mem;
	int rc;

	if (why && why_len)
		why[0] = '\0';
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!path) {
		say(why, why_len, "no DSA path");
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d || posix_memalign(&mem, 64, sizeof(struct dsa_bufs))) {
		free(d);
		return -ENOMEM;
	}
	d->b = mem;
	memset(d->b, 0, sizeof(*d->b));
	if (is_model(path))
		rc = lm_dsa_model_open(path[7] ? path + 8 : NULL, &d->wq, why, why_len);
	else
		rc = portal_open(path, &d->wq, why, why_len);
	if (rc) {
		free(d->b);
		free(d);
		return rc;
	}
	d->zero = lm_zero_select(NULL);
	*out = d;
	return 0;
}

int lm_dsa_probe(const char *path, char *why, size_t why_len)
{
	struct lm_dsa *d;
	char list[512];
	int rc;

	if (path) {
		rc = lm_dsa_open(path, &d, why, why_len);
		if (!rc) {
			say(why, why_len, "%s: usable (%s work queue, batches of up to %u)",
			    d->wq.name, d->wq.shared ? "shared" : "dedicated", d->wq.max_batch);
			lm_dsa_close(d);
		}
		return rc;
	}
	if (access(SYSFS_DSA, F_OK)) {
		say(why, why_len, "no DSA: %s missing (idxd driver not loaded, or no DSA device)",
		    SYSFS_DSA);
		return -ENODEV;
	}
	if (!wq_list(list, sizeof(list))) {
		say(why, why_len, "no usable DSA work queue; found: %s", list[0] ? list : "none");
		return -ENODEV;
	}
	say(why, why_len, "%s", list);
	return 0;
}

/* Bytes [from, LM_DSA_PAGE_SIZE) of p are zero.  p[from] == 0 and every
 * byte equal to its successor means all zero; memcmp is vectorised. */
static bool tail_zero(const uint8_t *p, uint32_t from)
{
	size_t len = LM_DSA_PAGE_SIZE - from;

	return !len || (!p[from] && !memcmp(p + from, p + from + 1, len - 1));
}

static void cpu_check(struct lm_dsa *d, const uint8_t *const *pages, uint32_t n, bool *zero)
{
	for (uint32_t i = 0; i < n; i++)
		zero[i] = d->zero(pages[i]);
	d->st.pages_cpu += n;
}

/* 0, or the backend's error after SUBMIT_RETRIES retries of -EAGAIN. */
static int submit(struct lm_dsa *d, const struct dsa_hw_desc *desc)
{
	for (unsigned tries = 0;; tries++) {
		int rc = d->wq.ops->submit(d->wq.priv, desc);

		if (rc != -EAGAIN || tries == SUBMIT_RETRIES)
			return rc;
		d->st.submit_retries++;
		for (unsigned i = 0; i < 1u << (tries < 10 ? tries : 10); i++)
			_mm_pause();
	}
}

/* The record's status once non-zero, or 0 after timeout_ns. */
static uint8_t wait_done(const struct dsa_completion_record *cr, uint64_t timeout_ns)
{
	uint64_t start = 0;

	for (unsigned i = 0;; i++) {
		/* Acquire: the other fields were written before the status. */
		uint8_t s = __atomic_load_n(&cr->status, __ATOMIC_ACQUIRE);

		if (s)
			return s;
		if (i < SPIN_POLLS) {
			_mm_pause();
			continue;
		}
		if (!start)
			start = lm_now_ns();
		else if (lm_now_ns() - start > timeout_ns)
			return 0;
		sched_yield();
	}
}

/* One submission: n <= the queue's batch limit. */
static void check_chunk(struct lm_dsa *d, const uint8_t *const *pages, uint32_t n, bool *zero)
{
	struct dsa_bufs *b = d->b;
	const struct dsa_completion_record *top_cr;
	const struct dsa_hw_desc *top;
	bool dev_error = false;

	memset(b->cr, 0, n * sizeof(b->cr[0]));
	for (uint32_t i = 0; i < n; i++) {
		struct dsa_hw_desc *x = &b->desc[i];

		memset(x, 0, sizeof(*x));
		x->opcode = DSA_OPCODE_COMPVAL;
		/* No BOF: a fault ends the descriptor early instead of stalling the queue. */
		x->flags = IDXD_OP_FLAG_CRAV | IDXD_OP_FLAG_RCR;
		x->src_addr = (uintptr_t)pages[i];
		x->comp_pattern = 0;
		x->xfer_size = LM_DSA_PAGE_SIZE;
		x->completion_addr = (uintptr_t)&b->cr[i];
	}
	if (n == 1) {
		/* A batch must hold at least two descriptors. */
		top = &b->desc[0];
		top_cr = &b->cr[0];
	} else {
		memset(&b->batch, 0, sizeof(b->batch));
		memset(&b->batch_cr, 0, sizeof(b->batch_cr));
		b->batch.opcode = DSA_OPCODE_BATCH;
		b->batch.flags = IDXD_OP_FLAG_CRAV | IDXD_OP_FLAG_RCR;
		b->batch.desc_list_addr = (uintptr_t)b->desc;
		b->batch.desc_count = n;
		b->batch.completion_addr = (uintptr_t)&b->batch_cr;
		top = &b->batch;
		top_cr = &b->batch_cr;
	}

	if (submit(d, top)) {
		d->st.batch_failures++;
		cpu_check(d, pages, n, zero);
		return;
	}
	d->st.batches += n > 1;
	d->st.descriptors += n;

	if (!wait_done(top_cr, d->wq.timeout_ns)) {
		d->dead = true;
		d->st.timeouts++;
		d->st.batch_failures++;
		cpu_check(d, pages, n, zero);
		return;
	}
	/*
	 * The batch's own status adds nothing: BATCH_FAIL only says some
	 * descriptor did not succeed, and a batch that failed as a whole
	 * (descriptor list unreadable, hardware error) left the records of
	 * the descriptors it never ran at status 0.  The per-page records
	 * below tell a fault from an error.
	 */
	for (uint32_t i = 0; i < n; i++) {
		const struct dsa_completion_record *cr = &b->cr[i];
		uint8_t s = __atomic_load_n(&cr->status, __ATOMIC_ACQUIRE) & DSA_COMP_STATUS_MASK;

		if (s == DSA_COMP_SUCCESS) {
			zero[i] = cr->result == 0;
			d->st.pages_dsa++;
		} else if (s == DSA_COMP_PAGE_FAULT_NOBOF && cr->bytes_completed < LM_DSA_PAGE_SIZE) {
			/* The first bytes_completed bytes matched (a mismatch
			 * would have ended the descriptor with SUCCESS). */
			zero[i] = cr->bytes_completed ? tail_zero(pages[i], cr->bytes_completed)
						      : d->zero(pages[i]);
			d->st.page_faults++;
			d->st.pages_cpu++;
		} else {
			zero[i] = d->zero(pages[i]);
			d->st.pages_cpu++;
			dev_error = true;
		}
	}
	d->st.batch_failures += dev_error;
}

int lm_dsa_zero_check(struct lm_dsa *d, const uint8_t *const *pages, uint32_t n, bool *zero)
{
	uint32_t chunk;

	if (!d || n > LM_DSA_MAX_PAGES || (n && (!pages || !zero)))
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++)
		if (!pages[i])
			return -EINVAL;

	/* A queue whose max_batch_size is below n gets several submissions. */
	chunk = d->wq.max_batch < LM_DSA_MAX_PAGES ? d->wq.max_batch : LM_DSA_MAX_PAGES;
	if (chunk < 2)
		chunk = 1;
	for (uint32_t off = 0; off < n;) {
		uint32_t c = n - off < chunk ? n - off : chunk;

		if (d->dead)
			cpu_check(d, pages + off, c, zero + off);
		else
			check_chunk(d, pages + off, c, zero + off);
		off += c;
	}
	return 0;
}

void lm_dsa_stats(const struct lm_dsa *d, struct lm_dsa_stats *st)
{
	if (d && st)
		*st = d->st;
}

void lm_dsa_close(struct lm_dsa *d)
{
	if (!d)
		return;
	/* Queue first: after its close nothing writes into d->b. */
	d->wq.ops->close(d->wq.priv);
	free(d->b);
	free(d);
}

const struct lm_dsa_wq *lm_dsa_get_wq(const struct lm_dsa *d)
{
	return d ? &d->wq : NULL;
}

/* ---- zero-page-detection=dsa: the engine (zeropage.h) -------------------- */

_Static_assert(LM_PACKET_PAGES <= LM_DSA_MAX_PAGES, "a packet is one DSA batch");
_Static_assert(LM_PAGE_SIZE == LM_DSA_PAGE_SIZE, "DSA checks whole pages");

struct dsa_engine {
	struct lm_dsa *d;
	struct lm_zeropage_counters *cnt;
};

static int dsa_engine_open(void **ctx, const struct lm_zeropage_cfg *cfg, char *why,
			   size_t len)
{
	char reason[200] = "";
	struct dsa_engine *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	int r = lm_dsa_open(cfg->dsa_path, &e->d, reason, sizeof(reason));
	if (r) {
		free(e);
		snprintf(why, len, "%s%s", r == -EINVAL ? "dsa-path: " : "", reason);
		return r;
	}
	e->cnt = cfg->counters;
	snprintf(why, len, "work queue %s", cfg->dsa_path);
	*ctx = e;
	return 0;
}

static void dsa_engine_close(void *ctx)
{
	struct dsa_engine *e = ctx;
	if (!e)
		return;
	lm_dsa_close(e->d);
	free(e);
}

static void dsa_engine_check(void *ctx, const uint8_t *const *pages, uint32_t n, bool *zero)
{
	struct dsa_engine *e = ctx;
	lm_dsa_zero_check(e->d, pages, n, zero); /* n fits one batch: always answers */
	if (e->cnt) {
		atomic_store_explicit(&e->cnt->dsa_pages, e->d->st.pages_dsa, memory_order_relaxed);
		atomic_store_explicit(&e->cnt->cpu_pages, e->d->st.pages_cpu, memory_order_relaxed);
	}
}

/* Any work queue will do for a listing. */
static int dsa_engine_probe(char *why, size_t len)
{
	return lm_dsa_probe(NULL, why, len);
}

const struct lm_zeropage_ops lm_zeropage_dsa_ops = {
	.name = "dsa",
	.probe = dsa_engine_probe,
	.open = dsa_engine_open,
	.close = dsa_engine_close,
	.check = dsa_engine_check,
};
