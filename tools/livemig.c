/* SPDX-License-Identifier: MIT */
/* livemig: the command-line tool around liblivemig. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "fill.h"
#include "guest.h"
#include "livemig/livemig.h"
#include "util/util.h"

#define MAX_SETS 64

struct opts {
	const char *uri;
	uint64_t mem;
	bool mem_set;
	struct fill_spec fill;
	bool fill_set, ratio_set;
	const char *sets[MAX_SETS];
	int nsets;
	const char *caps[MAX_SETS];
	int ncaps;
	const char *json;
	const char *dump;
	bool prealloc;
	struct guest_spec guest;
	const char *timeout;
	bool resume_on_unknown; /* --on-unknown resume-source */
	int progress; /* -1 auto (stderr is a TTY), 0 off, 1 on */
	bool progress_on; /* decided by run() */
	int ready_fd;
};

static const char usage_text[] =
	"usage:\n"
	"  livemig dest   --listen URI [--prealloc] [--set NAME=VALUE]... [--cap NAME=on|off]...\n"
	"                 [--timeout SECONDS] [--json FILE] [--dump FILE]\n"
	"  livemig source --connect URI --mem SIZE [--fill SPEC] [--fill-ratio R]\n"
	"                 [--dirty-rate RATE [--dirty-threads N] [--dirty-hot SIZE]\n"
	"                 [--dirty-pattern uniform|zipf]] [--timeout SECONDS]\n"
	"                 [--on-unknown stay|resume-source]\n"
	"                 [--set NAME=VALUE]... [--cap NAME=on|off]... [--json FILE] [--dump FILE]\n"
	"  livemig bench  [--mem SIZE] [--fill SPEC] [--fill-ratio R] [--set NAME=VALUE]...\n"
	"                 [--cap NAME=on|off]... [--uri URI] [--json FILE]\n"
	"  livemig info   [--json]\n"
	"  livemig qemu-source --qmp PATH --connect URI [--set NAME=VALUE]... [--cap NAME=on|off]...\n"
	"                 [--json FILE]\n"
	"  livemig qemu-dest --qmp PATH --listen URI [--json FILE]\n"
	"                 a running QEMU: RAM by livemig, device state by QEMU (docs/qemu.md)\n"
	"\n"
	"URI:   tcp:HOST:PORT, tcp:[IPV6]:PORT or unix:PATH\n"
	"SIZE:  bytes, or with a K/M/G/T suffix (powers of 1024)\n"
	"SPEC:  system   (default) a corpus built from files on this machine\n"
	"       file:PATH   guest memory is exactly this file (mapped; --mem defaults to its size)\n"
	"       corpus:PATH this file's bytes repeated over the filled pages\n"
	"       random | zero\n"
	"--fill-ratio R  share of pages filled (default 0.9), the rest are zero pages,\n"
	"                spread through memory; ignored by file:\n";

/* Then the parameters and capabilities, from the library's table. */
static const char usage_tail[] =
	"A running guest (source; default idle):\n"
	"  --dirty-rate RATE     bytes/s of pages the guest dirties (e.g. 200M)\n"
	"  --dirty-threads N     writer threads (default 1)\n"
	"  --dirty-hot SIZE      the writes fall in the first SIZE bytes (default all)\n"
	"  --dirty-pattern P     uniform (default) or zipf\n"
	"  --timeout SECONDS     give up when not done this long after the start, in any\n"
	"                        phase (default none); destination: when the source's\n"
	"                        connections have not all come by then\n"
	"--json FILE     statistics as JSON in the shape of QEMU's query-migrate\n"
	"--dump FILE     after a successful migration, write the guest memory to FILE\n"
	"--prealloc      destination: fault in all RAM before pages arrive\n"
	"--on-unknown stay|resume-source\n"
	"                source: when COMMIT went out and no answer came, keep the guest\n"
	"                stopped (stay, the default) or ask the destination to discard its\n"
	"                image and resume the guest here - refused while the destination\n"
	"                may run it\n"
	"Exit status: 0 migrated and verified (the destination runs the guest), 1 failed\n"
	"(the guest runs on at the source), 2 usage error, 3 outcome unknown (switchover\n"
	"interrupted: the source keeps the guest stopped and the destination may run it;\n"
	"the destination must not run its image; see the README).\n";

/* Prints text from column 24 on, broken at spaces before column 80. */
static void print_wrapped(FILE *f, const char *text)
{
	enum { INDENT = 24, WIDTH = 80 - INDENT };
	while (*text) {
		size_t n = strlen(text);
		if (n > WIDTH) {
			n = WIDTH;
			while (n && text[n] != ' ')
				n--;
			if (!n) /* one long word */
				n = strcspn(text, " ");
		}
		fprintf(f, "%*s%.*s\n", INDENT, "", (int)n, text);
		text += n;
		text += strspn(text, " ");
	}
}

/* The --set or --cap settings: name, values, default, side, one line of
 * help. */
static void usage_settings(FILE *f, bool caps)
{
	const struct livemig_param_info *pi;
	for (unsigned i = 0; (pi = livemig_param_get(i)); i++) {
		if (pi->hidden || pi->capability != caps)
			continue;
		char note[160] = "";
		const char *side = !pi->destination ? "source only"
				   : !pi->source    ? "destination only"
						    : NULL;
		if (pi->default_value)
			snprintf(note, sizeof(note), "default %s", pi->default_value);
		if (side)
			snprintf(note + strlen(note), sizeof(note) - strlen(note), "%s%s",
				 note[0] ? "; " : "", side);
		fprintf(f, "  %-21s %s%s%s%s%s%s\n", pi->name, pi->values, *pi->unit ? " " : "",
			pi->unit, note[0] ? " (" : "", note, note[0] ? ")" : "");
		print_wrapped(f, pi->help);
		if (pi->alias) {
			char also[96];
			snprintf(also, sizeof(also), "(also accepted as %s)", pi->alias);
			print_wrapped(f, also);
		}
	}
}

static void usage(FILE *f)
{
	fputs(usage_text, f);
	fputs("Parameters (--set NAME=VALUE), QEMU's names:\n", f);
	usage_settings(f, false);
	fputs("Capabilities (--cap NAME=on|off):\n", f);
	usage_settings(f, true);
	fputs(usage_tail, f);
}

static int parse_opts(int argc, char **argv, struct opts *o, bool source, bool dest)
{
	enum { O_LISTEN = 256, O_CONNECT, O_MEM, O_FILL, O_RATIO, O_SET, O_CAP, O_JSON,
	       O_DUMP, O_PREALLOC, O_NOPROG, O_READY, O_HELP, O_DRATE, O_DTHREADS, O_DHOT,
	       O_DPATTERN, O_TIMEOUT, O_UNKNOWN };
	static const struct option lo[] = {
		{"listen", required_argument, 0, O_LISTEN},
		{"connect", required_argument, 0, O_CONNECT},
		{"mem", required_argument, 0, O_MEM},
		{"fill", required_argument, 0, O_FILL},
		{"fill-ratio", required_argument, 0, O_RATIO},
		{"set", required_argument, 0, O_SET},
		{"cap", required_argument, 0, O_CAP},
		{"json", required_argument, 0, O_JSON},
		{"dump", required_argument, 0, O_DUMP},
		{"prealloc", no_argument, 0, O_PREALLOC},
		{"no-progress", no_argument, 0, O_NOPROG},
		{"ready-fd", required_argument, 0, O_READY},
		{"help", no_argument, 0, O_HELP},
		{"dirty-rate", required_argument, 0, O_DRATE},
		{"dirty-threads", required_argument, 0, O_DTHREADS},
		{"dirty-hot", required_argument, 0, O_DHOT},
		{"dirty-pattern", required_argument, 0, O_DPATTERN},
		{"timeout", required_argument, 0, O_TIMEOUT},
		{"on-unknown", required_argument, 0, O_UNKNOWN},
		{0, 0, 0, 0},
	};
	char err[256];
	int c;

	memset(o, 0, sizeof(*o));
	o->progress = -1;
	o->ready_fd = -1;
	o->fill.kind = FILL_SYSTEM;
	o->fill.ratio = 0.9;
	o->fill.seed = 1;
	o->guest.seed = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_LISTEN:
			if (!dest)
				goto wrong;
			o->uri = optarg;
			break;
		case O_CONNECT:
			if (!source || dest)
				goto wrong;
			o->uri = optarg;
			break;
		case O_MEM:
			if (!source)
				goto wrong;
			if (lm_parse_size(optarg, &o->mem) || !o->mem) {
				fprintf(stderr, "livemig: --mem '%s': expected a size such as 4G\n",
					optarg);
				return 2;
			}
			o->mem_set = true;
			break;
		case O_FILL: {
			if (!source)
				goto wrong;
			double ratio = o->fill.ratio;
			if (fill_parse(optarg, &o->fill, err, sizeof(err))) {
				fprintf(stderr, "livemig: --fill: %s\n", err);
				return 2;
			}
			o->fill.ratio = ratio;
			o->fill_set = true;
			break;
		}
		case O_RATIO: {
			if (!source)
				goto wrong;
			char *end;
			double r = strtod(optarg, &end);
			if (*end || end == optarg || !(r >= 0 && r <= 1)) {
				fprintf(stderr, "livemig: --fill-ratio '%s': expected 0..1\n", optarg);
				return 2;
			}
			o->fill.ratio = r;
			o->ratio_set = true;
			break;
		}
		case O_SET:
			if (o->nsets == MAX_SETS)
				goto toomany;
			o->sets[o->nsets++] = optarg;
			break;
		case O_CAP:
			if (o->ncaps == MAX_SETS)
				goto toomany;
			o->caps[o->ncaps++] = optarg;
			break;
		case O_JSON:
			o->json = optarg;
			break;
		case O_DUMP:
			o->dump = optarg;
			break;
		case O_PREALLOC:
			if (!dest)
				goto wrong;
			o->prealloc = true;
			break;
		case O_NOPROG:
			o->progress = 0;
			break;
		case O_READY: {
			uint64_t fd;
			if (lm_parse_uint(optarg, 0, INT_MAX, &fd)) {
				fprintf(stderr, "livemig: --ready-fd '%s': expected a file descriptor\n",
					optarg);
				return 2;
			}
			o->ready_fd = (int)fd;
			break;
		}
		case O_HELP:
			usage(stdout);
			exit(0);
		case O_DRATE:
			if (!source || lm_parse_size(optarg, &o->guest.rate)) {
				fprintf(stderr, "livemig: --dirty-rate '%s': expected bytes/s such as "
						"200M\n", optarg);
				return 2;
			}
			break;
		case O_DTHREADS: {
			uint64_t t;
			if (!source || lm_parse_uint(optarg, 1, 64, &t)) {
				fprintf(stderr, "livemig: --dirty-threads '%s': expected 1..64\n", optarg);
				return 2;
			}
			o->guest.threads = (unsigned)t;
			break;
		}
		case O_DHOT:
			if (!source || lm_parse_size(optarg, &o->guest.hot) || !o->guest.hot) {
				fprintf(stderr, "livemig: --dirty-hot '%s': expected a size such as 256M\n",
					optarg);
				return 2;
			}
			break;
		case O_DPATTERN:
			if (!source || (strcmp(optarg, "uniform") && strcmp(optarg, "zipf"))) {
				fprintf(stderr, "livemig: --dirty-pattern '%s': uniform or zipf\n", optarg);
				return 2;
			}
			o->guest.pattern = strcmp(optarg, "zipf") ? GUEST_UNIFORM : GUEST_ZIPF;
			break;
		case O_TIMEOUT: {
			uint64_t t; /* its range: the timeout parameter's */
			if (lm_parse_uint(optarg, 0, UINT64_MAX, &t)) {
				fprintf(stderr, "livemig: --timeout '%s': expected seconds\n", optarg);
				return 2;
			}
			o->timeout = optarg;
			break;
		}
		case O_UNKNOWN:
			if (!source || (strcmp(optarg, "stay") && strcmp(optarg, "resume-source"))) {
				fprintf(stderr, "livemig: --on-unknown '%s': stay or resume-source "
						"(source only)\n", optarg);
				return 2;
			}
			o->resume_on_unknown = !strcmp(optarg, "resume-source");
			break;
		default:
			fprintf(stderr, "livemig %s: see 'livemig --help'\n", argv[0]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "livemig %s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return 2;
	}
	return 0;
wrong:
	fprintf(stderr, "livemig %s: option '%s' does not apply here (see --help)\n", argv[0],
		argv[optind - 1]);
	return 2;
toomany:
	fprintf(stderr, "livemig: too many --set/--cap options\n");
	return 2;
}

/* Applies --set and --cap to a session: any bad one is a usage error before
 * anything starts. */
static int apply_settings(livemig_session *s, const struct opts *o)
{
	for (int i = 0; i < o->nsets; i++) {
		char name[128];
		const char *eq = strchr(o->sets[i], '=');
		if (!eq || eq == o->sets[i] || (size_t)(eq - o->sets[i]) >= sizeof(name)) {
			fprintf(stderr, "livemig: --set '%s': expected NAME=VALUE\n", o->sets[i]);
			return 2;
		}
		memcpy(name, o->sets[i], (size_t)(eq - o->sets[i]));
		name[eq - o->sets[i]] = 0;
		if (livemig_set_parameter(s, name, eq + 1)) {
			fprintf(stderr, "livemig: --set: %s\n", livemig_last_error(s));
			return 2;
		}
	}
	for (int i = 0; i < o->ncaps; i++) {
		char name[128];
		const char *eq = strchr(o->caps[i], '=');
		bool on;
		if (!eq || eq == o->caps[i] || (size_t)(eq - o->caps[i]) >= sizeof(name) ||
		    !((on = !strcmp(eq + 1, "on")) || !strcmp(eq + 1, "off"))) {
			fprintf(stderr, "livemig: --cap '%s': expected NAME=on|off\n", o->caps[i]);
			return 2;
		}
		memcpy(name, o->caps[i], (size_t)(eq - o->caps[i]));
		name[eq - o->caps[i]] = 0;
		if (livemig_set_capability(s, name, on)) {
			fprintf(stderr, "livemig: --cap: %s\n", livemig_last_error(s));
			return 2;
		}
	}
	return 0;
}

/* ---- progress, signals ------------------------------------------------------ */
struct runner {
	livemig_session *s;
	bool progress;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	sigset_t sigs;
};

static void *signal_main(void *arg)
{
	struct runner *r = arg;
	int sig;
	/* SIGUSR1 is how main() says "finished"; INT/TERM cancel. */
	int count = 0;
	while (!sigwait(&r->sigs, &sig) && sig != SIGUSR1) {
		if (++count > 1) {
			fprintf(stderr, "\nlivemig: second %s, exiting now\n", strsignal(sig));
			_exit(130);
		}
		fprintf(stderr, "\nlivemig: %s received, cancelling (again to force exit)\n",
			strsignal(sig));
		livemig_cancel(r->s);
	}
	return NULL;
}

static void *progress_main(void *arg)
{
	struct runner *r = arg;
	uint64_t last_bytes = 0, last_ns = lm_now_ns();
	double rate = 0;

	pthread_mutex_lock(&r->lock);
	while (!r->done) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 500000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&r->cond, &r->lock, &ts);
		if (r->done)
			break;
		struct livemig_stats st;
		livemig_query(r->s, &st);
		uint64_t now = lm_now_ns();
		uint64_t bytes = st.normal_bytes + st.duplicate * 4096ull;
		if (now > last_ns) {
			double inst = (bytes - last_bytes) / ((now - last_ns) / 1e9);
			rate = rate ? 0.5 * rate + 0.5 * inst : inst;
		}
		last_bytes = bytes;
		last_ns = now;
		double pct = st.total ? 100.0 * bytes / st.total : 0;
		double eta = rate > 0 && st.total > bytes ? (st.total - bytes) / rate : 0;
		if (st.dirty_sync_count > 1) /* pre-copy: what is left matters now */
			fprintf(stderr, "\r  %-9s pass %-4llu remaining %8.1f MiB, expected downtime "
					"%5llu ms, throttle %2d%% ",
				livemig_status_name(st.status),
				(unsigned long long)st.dirty_sync_count, st.remaining / 1048576.0,
				(unsigned long long)st.expected_downtime_ms,
				st.cpu_throttle_percentage);
		else
			fprintf(stderr, "\r  %-9s %5.1f%%  %8.1f MB/s  ETA %5.1f s ",
				livemig_status_name(st.status), pct > 100 ? 100 : pct, rate / 1e6,
				eta);
	}
	pthread_mutex_unlock(&r->lock);
	fprintf(stderr, "\r%90s\r", "");
	return NULL;
}

static void log_cb(void *opaque, int level, const char *msg)
{
	const struct opts *o = opaque;
	if (o->progress_on) /* start on a clean line, not after the progress */
		fprintf(stderr, "\r%90s\r", "");
	fprintf(stderr, "livemig: %s%s\n", level == 0 ? "error: " : level == 1 ? "warning: " : "",
		msg);
}

static int write_json(livemig_session *s, const char *path)
{
	char buf[8192];
	int n = livemig_stats_json(s, buf, sizeof(buf));
	FILE *f = fopen(path, "w");
	if (!f || fwrite(buf, 1, (size_t)n, f) != (size_t)n || fclose(f)) {
		fprintf(stderr, "livemig: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int dump_ram(livemig_session *s, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	int n = livemig_ram_get(s, 0, NULL, NULL, NULL);
	for (int i = 0; i < n; i++) {
		void *host;
		uint64_t size;
		livemig_ram_get(s, (unsigned)i, NULL, &host, &size);
		for (uint64_t off = 0; off < size;) {
			ssize_t w = write(fd, (uint8_t *)host + off,
					  size - off > (1u << 30) ? (1u << 30) : size - off);
			if (w <= 0)
				goto fail;
			off += (uint64_t)w;
		}
	}
	if (close(fd))
		goto fail;
	return 0;
fail:
	fprintf(stderr, "livemig: cannot write %s: %s\n", path, strerror(errno));
	return -1;
}

/* The summary's TLS line, from the JSON statistics ("tls"). */
static void print_tls(livemig_session *s)
{
	char buf[8192];
	livemig_stats_json(s, buf, sizeof(buf));
	json_object *st = json_tokener_parse(buf), *tls, *v;
	const char *f[4] = {"", "", "", ""};
	static const char *const keys[4] = {"protocol", "cipher", "key-exchange", "records"};
	bool on = st && json_object_object_get_ex(st, "tls", &tls) && tls;
	for (int i = 0; on && i < 4; i++)
		if (json_object_object_get_ex(tls, keys[i], &v))
			f[i] = json_object_get_string(v);
	if (on && *f[0])
		printf("  tls       %s %s %s, records sealed in %s\n", f[0], f[1], f[2], f[3]);
	else
		printf("  tls       %s\n", on ? "no handshake completed" : "off");
	json_object_put(st);
}

static void summary(livemig_session *s, const char *who)
{
	struct livemig_stats st;
	livemig_query(s, &st);
	double secs = st.total_time_ms / 1e3;
	printf("livemig %s: %s in %" PRIu64 " ms (setup %" PRIu64 " ms", who,
	       livemig_status_name(st.status), st.total_time_ms, st.setup_time_ms);
	if (!strcmp(who, "source"))
		printf(", downtime %" PRIu64 " ms", st.downtime_ms);
	printf(")\n");
	printf("  RAM       %.1f MiB: %" PRIu64 " normal pages, %" PRIu64 " zero pages\n",
	       st.total / 1048576.0, st.normal, st.duplicate);
	printf("  method    %s, %u channels, zero-page-detection %s\n", st.method, st.channels,
	       st.zero_page_detection);
	if (strcmp(st.dirty_tracker, "none"))
		printf("  precopy   %llu passes, tracker %s, %.0f dirty pages/s, throttle %d%%, "
		       "%.1f MiB sent while stopped\n",
		       (unsigned long long)st.dirty_sync_count, st.dirty_tracker, st.dirty_pages_rate,
		       st.cpu_throttle_percentage, st.downtime_bytes / 1048576.0);
	print_tls(s);
	printf("  wire      %.1f MiB (payload %.1f MiB, ratio %.2f), %.0f Mbit/s, %.0f pages/s\n",
	       st.transferred / 1048576.0, st.payload_bytes / 1048576.0,
	       st.compression_ratio, st.mbps, st.pages_per_second);
	if (!strcmp(who, "source"))
		printf("  CPU       source %.2f s (%.0f%%), destination %.2f s (%.0f%%)\n",
		       st.cpu_source_seconds, secs > 0 ? 100 * st.cpu_source_seconds / secs : 0,
		       st.cpu_dest_seconds, secs > 0 ? 100 * st.cpu_dest_seconds / secs : 0);
	else
		printf("  CPU       destination %.2f s (%.0f%%)\n", st.cpu_dest_seconds,
		       secs > 0 ? 100 * st.cpu_dest_seconds / secs : 0);
	printf("  verify    %s\n", st.verify_match == 1   ? "match: destination image equals source"
			       : st.verify_match == 0 ? "MISMATCH"
						      : "not reached");
	fflush(stdout);
}

/* Starts the session, shows progress, handles INT/TERM, waits. */
static int run(livemig_session *s, struct opts *o, const char *who)
{
	struct runner r = {.s = s};
	pthread_t sig_th, prog_th;
	bool prog = o->progress < 0 ? isatty(2) : o->progress;
	o->progress_on = prog;

	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	sigemptyset(&r.sigs);
	sigaddset(&r.sigs, SIGINT);
	sigaddset(&r.sigs, SIGTERM);
	sigaddset(&r.sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &r.sigs, NULL); /* library threads inherit it */

	int rc = livemig_start(s, o->uri);
	if (rc) {
		fprintf(stderr, "livemig %s: %s\n", who, livemig_last_error(s));
		return rc == -ENOKEY ? 2 : 1; /* bad TLS credentials: a usage error */
	}
	if (o->ready_fd >= 0) {
		(void)!write(o->ready_fd, "1", 1);
		close(o->ready_fd);
	}
	pthread_create(&sig_th, NULL, signal_main, &r);
	if (prog)
		pthread_create(&prog_th, NULL, progress_main, &r);
	rc = livemig_wait(s);
	pthread_mutex_lock(&r.lock);
	r.done = true;
	pthread_cond_broadcast(&r.cond);
	pthread_mutex_unlock(&r.lock);
	if (prog)
		pthread_join(prog_th, NULL);
	pthread_kill(sig_th, SIGUSR1);
	pthread_join(sig_th, NULL);

	if (rc == -EINPROGRESS && o->resume_on_unknown) {
		int e = livemig_resume_source(s);
		fprintf(stderr, "livemig source: resume-source: %s\n",
			!e	       ? "the destination discarded its image; the guest runs here"
			: e == -EBUSY ? "refused: the destination runs the guest"
				      : "refused: the destination cannot be asked and may run the guest");
		rc = e == -EBUSY ? 0 : e ? rc : -ECANCELED;
	}
	summary(s, who);
	if (rc == -EINPROGRESS)
		fprintf(stderr, "livemig %s: outcome unknown: %s\n", who, livemig_last_error(s));
	else if (rc)
		fprintf(stderr, "livemig %s: migration failed: %s\n", who, livemig_last_error(s));
	if (o->json && write_json(s, o->json))
		rc = rc ? rc : -EIO;
	if (!rc && o->dump && dump_ram(s, o->dump)) {
		if (!strcmp(who, "destination"))
			fprintf(stderr, "livemig destination: the migration completed: the source has "
					"stopped the guest for good, and its memory is here only\n");
		rc = -EIO;
	}
	return rc == -EINPROGRESS ? 3 : rc ? 1 : 0;
}

/* A file an option names must be writable before anything starts (it is
 * not created: nothing is written before the end).  0, or 2 with a
 * message. */
static int check_writable(const char *who, const char *opt, const char *path)
{
	if (!path)
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	bool created = fd >= 0;
	if (fd < 0 && errno == EEXIST)
		fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "livemig %s: %s %s: %s\n", who, opt, path, strerror(errno));
		return 2;
	}
	close(fd);
	if (created)
		unlink(path);
	return 0;
}

static int cmd_dest(int argc, char **argv)
{
	struct opts o;
	int rc = parse_opts(argc, argv, &o, false, true);
	if (rc)
		return rc;
	if (!o.uri) {
		fprintf(stderr, "livemig dest: --listen URI is required\n");
		return 2;
	}
	if ((rc = check_writable("dest", "--dump", o.dump)) ||
	    (rc = check_writable("dest", "--json", o.json)))
		return rc;
	livemig_session *s = livemig_session_new(LIVEMIG_DEST);
	if (!s)
		return 1;
	livemig_set_log(s, log_cb, &o);
	rc = apply_settings(s, &o);
	if (!rc && o.timeout && livemig_set_parameter(s, "timeout", o.timeout)) {
		fprintf(stderr, "livemig dest: %s\n", livemig_last_error(s));
		rc = 2;
	}
	if (!rc) {
		livemig_set_prealloc(s, o.prealloc);
		rc = run(s, &o, "destination");
	}
	livemig_session_free(s);
	return rc;
}

static void g_stop(void *g)
{
	guest_pause(g);
}
static void g_resume(void *g)
{
	guest_resume(g);
}
static void g_throttle(void *g, int pct)
{
	guest_throttle(g, pct);
}

static int cmd_source(int argc, char **argv)
{
	struct opts o;
	char err[512];
	int rc = parse_opts(argc, argv, &o, true, false);
	if (rc)
		return rc;
	if (!o.uri) {
		fprintf(stderr, "livemig source: --connect URI is required\n");
		return 2;
	}
	if ((rc = check_writable("source", "--dump", o.dump)) ||
	    (rc = check_writable("source", "--json", o.json)))
		return rc;
	if (!o.mem_set && o.fill.kind != FILL_FILE) {
		fprintf(stderr, "livemig source: --mem SIZE is required (or --fill file:PATH)\n");
		return 2;
	}
	if (o.ratio_set && o.fill.kind == FILL_FILE)
		fprintf(stderr, "livemig source: --fill-ratio is ignored with file:\n");
	livemig_session *s = livemig_session_new(LIVEMIG_SOURCE);
	if (!s)
		return 1;
	livemig_set_log(s, log_cb, &o);
	rc = apply_settings(s, &o);
	if (rc) {
		livemig_session_free(s);
		return rc;
	}
	uint64_t size = o.mem_set ? o.mem : 0;
	void *mem = fill_create(&o.fill, &size, err, sizeof(err));
	if (!mem) {
		fprintf(stderr, "livemig source: %s\n", err);
		livemig_session_free(s);
		return 2;
	}
	struct guest *g = NULL;
	if (o.timeout && livemig_set_parameter(s, "timeout", o.timeout)) {
		fprintf(stderr, "livemig source: %s\n", livemig_last_error(s));
		rc = 2;
	} else if (livemig_ram_register(s, "pc.ram", mem, size)) {
		fprintf(stderr, "livemig source: %s\n", livemig_last_error(s));
		rc = 2;
	} else if (o.guest.rate && !(g = guest_start(&o.guest, mem, size, err, sizeof(err)))) {
		fprintf(stderr, "livemig source: %s\n", err);
		rc = 2;
	} else {
		if (g) {
			const struct livemig_guest_ops ops = {g_stop, g_resume, g_throttle};
			livemig_set_guest(s, &ops, g);
		}
		rc = run(s, &o, "source");
	}
	/* After a migration the guest stays stopped here (it runs at the
	 * destination now); after a failure it kept running until now, and
	 * its memory must be as it wrote it. */
	if (g) {
		bool running = guest_running(g);
		uint64_t writes = guest_stop(g);
		uint64_t damaged = guest_check(g);
		fprintf(stderr, "livemig source: the guest wrote %llu pages and was %s at the end; "
				"%s\n",
			(unsigned long long)writes, running ? "running" : "stopped",
			damaged ? "DAMAGED pages: their stamps differ from the last write"
				: "every page's stamp is intact");
		if (damaged && !rc)
			rc = 1;
	}
	guest_free(g);
	livemig_session_free(s);
	fill_free(mem, size);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("livemig %s\n", LIVEMIG_VERSION_STRING);
		return 0;
	}
	const char *cmd = argv[1];
	argc--;
	argv++;
	if (!strcmp(cmd, "dest"))
		return cmd_dest(argc, argv);
	if (!strcmp(cmd, "source"))
		return cmd_source(argc, argv);
	if (!strcmp(cmd, "bench"))
		return cli_bench(argc, argv);
	if (!strcmp(cmd, "info"))
		return cli_info(argc, argv);
	if (!strcmp(cmd, "qemu-source"))
		return cli_qemu_source(argc, argv);
	if (!strcmp(cmd, "qemu-dest"))
		return cli_qemu_dest(argc, argv);
	fprintf(stderr, "livemig: unknown command '%s' (dest, source, bench, info, qemu-source, qemu-dest; see --help)\n",
		cmd);
	return 2;
}
