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


/*
 * Every option of the migrating subcommands, once: getopt's table, the
 * "does not apply here" check and each subcommand's --help are made from
 * it.  cmds: the subcommands that take the option (CLI_DEST, CLI_SOURCE,
 * CLI_BENCH; bench forwards what it does not use itself).  A new
 * subcommand adds its bit and its usage line.
 */
enum { O_LISTEN = 256, O_CONNECT, O_MEM, O_FILL, O_RATIO, O_SET, O_CAP, O_JSON, O_DUMP,
       O_PREALLOC, O_NOPROG, O_VERBOSE, O_READY, O_HELP, O_DRATE, O_DTHREADS, O_DHOT,
       O_DPATTERN, O_TIMEOUT, O_UNKNOWN, O_URI, O_CONTROL };

#define CLI_ALL (CLI_DEST | CLI_SOURCE | CLI_BENCH)
static const struct cli_opt {
	const char *flag, *arg; /* flag: "--name", as typed in full; arg NULL: a flag */
	int code;
	unsigned cmds;
	const char *help;
} cli_opts[] = {
	{"--listen", "URI", O_LISTEN, CLI_DEST, "where to listen (tcp:HOST:0 picks a free port; "
	 "the destination prints 'listening on URI')"},
	{"--connect", "URI", O_CONNECT, CLI_SOURCE, "the destination to migrate to"},
	{"--uri", "URI", O_URI, CLI_BENCH, "where the bench's destination listens (default "
	 "tcp:127.0.0.1:0, a free port)"},
	{"--mem", "SIZE", O_MEM, CLI_SOURCE | CLI_DEST | CLI_BENCH, "guest memory; a size that is "
	 "not a whole number of 4 KiB pages is rounded up, with a notice"},
	{"--fill", "SPEC", O_FILL, CLI_SOURCE | CLI_BENCH, "what the guest memory holds (SPEC below; "
	 "default system)"},
	{"--fill-ratio", "R", O_RATIO, CLI_SOURCE | CLI_BENCH, "share of pages filled (default 0.9), "
	 "the rest are zero pages spread through memory; ignored by file:"},
	{"--set", "NAME=VALUE", O_SET, CLI_ALL, "a migration parameter (below); repeatable"},
	{"--cap", "NAME=on|off", O_CAP, CLI_ALL, "a migration capability (below); repeatable"},
	{"--json", "FILE", O_JSON, CLI_ALL, "statistics as JSON in the shape of QEMU's query-migrate; "
	 "an unwritable FILE is a usage error before anything starts"},
	{"--dump", "FILE", O_DUMP, CLI_DEST | CLI_SOURCE, "after a successful migration, write the "
	 "guest memory to FILE"},
	{"--prealloc", NULL, O_PREALLOC, CLI_DEST, "fault in all RAM before pages arrive (with "
	 "--mem: before listening)"},
	{"--dirty-rate", "RATE", O_DRATE, CLI_SOURCE | CLI_BENCH, "a running guest: bytes/s of pages "
	 "it dirties (e.g. 200M; default 0, an idle guest)"},
	{"--dirty-threads", "N", O_DTHREADS, CLI_SOURCE | CLI_BENCH, "the guest's writer threads "
	 "(default 1)"},
	{"--dirty-hot", "SIZE", O_DHOT, CLI_SOURCE | CLI_BENCH, "the writes fall in the first SIZE "
	 "bytes (default all)"},
	{"--dirty-pattern", "P", O_DPATTERN, CLI_SOURCE | CLI_BENCH, "uniform (default) or zipf"},
	{"--timeout", "SECONDS", O_TIMEOUT, CLI_ALL, "give up when not done this long after the "
	 "start, in any phase (default none)"},
	{"--on-unknown", "stay|resume-source", O_UNKNOWN, CLI_SOURCE, "when COMMIT went out and no "
	 "answer came, keep the guest stopped (stay, the default) or ask the destination to "
	 "discard its image and resume the guest here - refused while the destination may run it"},
	{"--no-progress", NULL, O_NOPROG, CLI_DEST | CLI_SOURCE, "no progress line (the default when "
	 "stderr is not a terminal)"},
	{"--verbose", NULL, O_VERBOSE, CLI_DEST | CLI_SOURCE, "progress even when stderr is not a "
	 "terminal: a line per pass"},
	{"--ready-fd", "FD", O_READY, CLI_DEST | CLI_SOURCE, "once started, write the URI listened "
	 "on (destination) or connected to (source) and a newline to FD, then close it"},
	{"--control", "unix:PATH", O_CONTROL, CLI_DEST | CLI_SOURCE, "a control socket (QMP, mode "
	 "0600, this user only) to watch and steer the migration while it runs: query-migrate, "
	 "migrate-set-parameters, migrate_cancel, events; see 'livemig ctl'; qemu-source and "
	 "qemu-dest take it too"},
	{"--help", NULL, O_HELP, CLI_ALL, "this subcommand's options (also -h)"},
};
#define N_OPTS (sizeof(cli_opts) / sizeof(cli_opts[0]))

/* More help on an option for one subcommand only: in that subcommand's
 * --help, and in the whole tool's after its name. */
static const struct {
	int code;
	unsigned cmd;
	const char *note;
} cli_notes[] = {
	{O_MEM, CLI_BENCH, "default " CLI_BENCH_MEM},
	{O_MEM, CLI_DEST, "optional: the memory is then allocated at start (with --prealloc "
	 "faulted in before listening, as QEMU's -mem-prealloc) and the source must send that "
	 "size"},
	{O_TIMEOUT, CLI_DEST, "also when the source's connections have not all come by then"},
};

static const struct {
	unsigned cmd;
	const char *name, *line;
} cli_cmds[] = {
	{CLI_DEST, "dest", "livemig dest --listen URI [OPTION]..."},
	{CLI_SOURCE, "source", "livemig source --connect URI --mem SIZE [OPTION]..."},
	{CLI_BENCH, "bench", "livemig bench [OPTION]...  (a destination and a source on this machine, "
	 "one row of figures)"},
};

static const char usage_text[] =
	"usage:\n"
	"  livemig dest   --listen URI [OPTION]...\n"
	"  livemig source --connect URI --mem SIZE [OPTION]...\n"
	"  livemig bench  [OPTION]...\n"
	"  livemig info   [--json]\n"
	"  livemig qemu-source --qmp PATH --connect URI [--set NAME=VALUE]... [--cap NAME=on|off]...\n"
	"                 [--json FILE] [--control unix:PATH]\n"
	"  livemig qemu-dest --qmp PATH --listen URI [--set NAME=VALUE]... [--json FILE]\n"
	"                 [--control unix:PATH]\n"
	"                 a running QEMU: RAM by livemig, device state by QEMU (docs/qemu.md)\n"
	"  livemig ctl PATH COMMAND [JSON-ARGUMENTS] | livemig ctl PATH --events\n"
	"                 query and steer a migration through its --control socket\n"
	"  livemig SUBCOMMAND --help   that subcommand's options only\n"
	"\n";

static const char usage_formats[] =
	"URI:   tcp:HOST:PORT, tcp:[IPV6]:PORT or unix:PATH (at most 107 bytes)\n"
	"SIZE:  bytes, or with a K/M/G/T suffix (powers of 1024); RATE likewise, per second\n"
	"SPEC:  system   (default) a corpus built from files on this machine\n"
	"       file:PATH   guest memory is exactly this file (mapped; --mem defaults to its size)\n"
	"       corpus:PATH this file's bytes repeated over the filled pages\n"
	"       random | zero\n"
	"Rates shown (progress, summary) are MiB/s, as sizes and max-bandwidth's suffixes\n"
	"(powers of 1024); the JSON's ram.mbps is QEMU's wire Mbit/s.\n";

static const char usage_exit[] =
	"Exit status: 0 migrated and verified (the destination runs the guest), 1 failed\n"
	"(the guest runs on at the source), 2 usage error (nothing started), 3 outcome\n"
	"unknown (switchover interrupted: the source keeps the guest stopped and the\n"
	"destination may run it; the destination must not run its image; see the README).\n";

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
static void usage_settings(FILE *f, bool caps, unsigned cmds)
{
	const struct livemig_param_info *pi;
	for (unsigned i = 0; (pi = livemig_param_get(i)); i++) {
		if (pi->hidden || pi->capability != caps)
			continue;
		/* dest --help: what a destination takes; source and bench:
		 * the source's (bench gives the destination its share). */
		if (cmds == CLI_DEST ? !pi->destination : cmds != CLI_ALL && !pi->source)
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

/* The names of the subcommands in cmds ("dest", "source, bench"), the last
 * two joined by last_sep; in buf. */
static const char *cmd_names(unsigned cmds, const char *last_sep, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	for (size_t i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++) {
		unsigned c = cli_cmds[i].cmd;
		if (!(cmds & c))
			continue;
		cmds &= ~c;
		n += (size_t)snprintf(buf + n, len - n, "%s%s", !n ? "" : cmds ? ", " : last_sep,
				      cli_cmds[i].name);
		if (n >= len)
			break;
	}
	return buf;
}

/* The options of the subcommands in cmds, one per line, help wrapped. */
static void usage_options(FILE *f, unsigned cmds)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct cli_opt *o = &cli_opts[i];
		if (!(o->cmds & cmds))
			continue;
		char head[48];
		snprintf(head, sizeof(head), "%s%s%s", o->flag, o->arg ? " " : "",
			 o->arg ? o->arg : "");
		char names[64];
		if (o->cmds == CLI_ALL || cmds != CLI_ALL)
			fprintf(f, "  %s\n", head);
		else
			fprintf(f, "  %s  (%s)\n", head, cmd_names(o->cmds, ", ", names, sizeof(names)));
		char help[512];
		size_t n = (size_t)snprintf(help, sizeof(help), "%s", o->help);
		for (size_t k = 0; k < sizeof(cli_notes) / sizeof(cli_notes[0]); k++) {
			if (cli_notes[k].code != o->code || !(cli_notes[k].cmd & cmds) ||
			    n >= sizeof(help))
				continue;
			n += (size_t)snprintf(help + n, sizeof(help) - n, "; %s%s%s",
					      cmds == CLI_ALL ? cmd_names(cli_notes[k].cmd, "", names,
									  sizeof(names)) : "",
					      cmds == CLI_ALL ? ": " : "", cli_notes[k].note);
		}
		print_wrapped(f, help);
	}
}

void cli_usage(FILE *f, unsigned cmds)
{
	if (cmds == CLI_ALL) {
		fputs(usage_text, f);
	} else {
		for (size_t i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++)
			if (cli_cmds[i].cmd == cmds)
				fprintf(f, "usage: %s\n\n", cli_cmds[i].line);
	}
	fputs("Options:\n", f);
	usage_options(f, cmds);
	fputs(usage_formats, f);
	fputs("Parameters (--set NAME=VALUE), QEMU's names:\n", f);
	usage_settings(f, false, cmds);
	fputs("Capabilities (--cap NAME=on|off):\n", f);
	usage_settings(f, true, cmds);
	fputs(usage_exit, f);
}

/* The page size the CLI's sizes are rounded to. */
#define CLI_PAGE 4096u

/* A SIZE that is not a whole number of pages is rounded up, visibly. */
static uint64_t whole_pages(const char *who, const char *opt, uint64_t v)
{
	uint64_t r = (v + CLI_PAGE - 1) / CLI_PAGE * CLI_PAGE;
	if (r != v)
		fprintf(stderr, "livemig %s: %s %llu is not a whole number of %u-byte pages: "
			"using %llu\n", who, opt, (unsigned long long)v, CLI_PAGE,
			(unsigned long long)r);
	return r;
}

/* getopt_long's complaint about arg (what it last read), in words: a
 * value missing, an unknown or ambiguous option, a value given to a flag.
 * optopt: the short option, or the long one's code, or 0. */
static void bad_option(const char *who, bool missing, const char *arg)
{
	char what[160] = "", name[64];
	snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg, "="), arg);
	if (missing) {
		snprintf(what, sizeof(what), "option '%s' needs a value", name);
	} else if (optopt >= O_LISTEN) { /* a flag given a value: --prealloc=no */
		snprintf(what, sizeof(what), "%s takes no value", name);
	} else if (optopt) { /* -v, -x */
		snprintf(what, sizeof(what), "unknown option '-%c'", optopt);
	} else if (!strncmp(name, "--", 2)) {
		/* Unknown, or a prefix of several (--d): name them. */
		size_t n = (size_t)snprintf(what, sizeof(what), "unknown option '%s'", name);
		unsigned found = 0;
		for (size_t i = 0; i < N_OPTS && name[2]; i++) {
			if (strncmp(cli_opts[i].flag, name, strlen(name)))
				continue;
			if (!found++)
				n = (size_t)snprintf(what, sizeof(what), "ambiguous option '%s' (", name);
			if (n < sizeof(what))
				n += (size_t)snprintf(what + n, sizeof(what) - n, "%s%s?",
						      found > 1 ? " " : "", cli_opts[i].flag);
		}
		if (found && n < sizeof(what))
			snprintf(what + n, sizeof(what) - n, ")");
	} else {
		snprintf(what, sizeof(what), "unknown option '%s'", name);
	}
	fprintf(stderr, "livemig %s: %s (see 'livemig %s --help')\n", who, what, who);
}

int cli_parse_opts(int argc, char **argv, struct opts *o, unsigned cmd)
{
	struct option lo[N_OPTS + 1];
	for (size_t i = 0; i < N_OPTS; i++)
		lo[i] = (struct option){cli_opts[i].flag + 2,
					cli_opts[i].arg ? required_argument : no_argument, 0,
					cli_opts[i].code};
	lo[N_OPTS] = (struct option){0, 0, 0, 0};
	const char *who = argv[0];
	char err[256];
	int c, idx;

	memset(o, 0, sizeof(*o));
	o->progress = -1;
	o->ready_fd = -1;
	o->fill.kind = FILL_SYSTEM;
	o->fill.ratio = 0.9;
	o->fill.seed = 1;
	o->guest.seed = 1;
	optind = 1;
	opterr = 0; /* the messages below name the subcommand */
	/* ':' first: a missing value is ':', anything else wrong '?'. */
	while ((c = getopt_long(argc, argv, ":h", lo, &idx)) != -1) {
		if (c == ':' || c == '?') {
			bad_option(who, c == ':', argv[optind - 1]);
			return 2;
		}
		if (c == 'h') {
			c = O_HELP;
		} else if (!(cli_opts[idx].cmds & cmd)) {
			char names[64];
			fprintf(stderr, "livemig %s: %s is for %s only (see 'livemig %s --help')\n",
				who, cli_opts[idx].flag,
				cmd_names(cli_opts[idx].cmds, " and ", names, sizeof(names)), who);
			return 2;
		} else if (c != O_HELP) {
			if (o->ngiven == CLI_MAX_GIVEN)
				goto toomany;
			o->given[o->ngiven++] =
				(struct cli_given){cli_opts[idx].flag, cli_opts[idx].arg ? optarg : NULL};
		}
		switch (c) {
		case O_LISTEN:
		case O_CONNECT:
		case O_URI:
			o->uri = optarg;
			break;
		case O_MEM: {
			int e = lm_parse_size(optarg, &o->mem);
			/* A block holds at most 2^32 - 1 pages (livemig_ram_register). */
			if (!e && o->mem > (uint64_t)UINT32_MAX * CLI_PAGE)
				e = -ERANGE;
			if (e || !o->mem) {
				fprintf(stderr, "livemig %s: --mem '%s': %s\n", who, optarg,
					e == -ERANGE ? "too large (at most 16 TiB - 4 KiB)"
						     : "expected a size above 0 such as 4G");
				return 2;
			}
			o->mem = whole_pages(who, "--mem", o->mem);
			o->mem_set = true;
			break;
		}
		case O_FILL: {
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
			o->prealloc = true;
			break;
		case O_NOPROG:
			o->progress = 0;
			break;
		case O_VERBOSE:
			o->progress = 1;
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
		case O_CONTROL:
			o->control = optarg;
			break;
		case O_HELP:
			cli_usage(stdout, cmd);
			exit(0);
		case O_DRATE:
			if (lm_parse_size(optarg, &o->guest.rate)) {
				fprintf(stderr, "livemig: --dirty-rate '%s': expected bytes/s such as "
						"200M\n", optarg);
				return 2;
			}
			break;
		case O_DTHREADS: {
			uint64_t t;
			if (lm_parse_uint(optarg, 1, 64, &t)) {
				fprintf(stderr, "livemig: --dirty-threads '%s': expected 1..64\n", optarg);
				return 2;
			}
			o->guest.threads = (unsigned)t;
			break;
		}
		case O_DHOT:
			if (lm_parse_size(optarg, &o->guest.hot) || !o->guest.hot) {
				fprintf(stderr, "livemig: --dirty-hot '%s': expected a size such as 256M\n",
					optarg);
				return 2;
			}
			o->guest.hot = whole_pages(who, "--dirty-hot", o->guest.hot);
			break;
		case O_DPATTERN:
			if (strcmp(optarg, "uniform") && strcmp(optarg, "zipf")) {
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
			if (strcmp(optarg, "stay") && strcmp(optarg, "resume-source")) {
				fprintf(stderr, "livemig: --on-unknown '%s': stay or resume-source\n",
					optarg);
				return 2;
			}
			o->resume_on_unknown = !strcmp(optarg, "resume-source");
			break;
		default:
			fprintf(stderr, "livemig %s: see 'livemig %s --help'\n", who, who);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "livemig %s: unexpected argument '%s'\n", who, argv[optind]);
		return 2;
	}
	return 0;
toomany:
	fprintf(stderr, "livemig %s: too many options\n", who);
	return 2;
}

/* Applies --set and --cap to a session: any bad one is a usage error before
 * anything starts. */
int cli_apply_settings(livemig_session *s, const struct opts *o)
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
	bool lines; /* a line per pass change, not a line redrawn in place */
	const char *setup; /* what setup is on this side: "waiting for the source" */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

void cli_signals_block(struct cli_signals *g)
{
	g->last = NULL;
	sigemptyset(&g->sigs);
	sigaddset(&g->sigs, SIGINT);
	sigaddset(&g->sigs, SIGTERM);
	sigaddset(&g->sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &g->sigs, NULL); /* library threads inherit it */
}

static void *signal_main(void *arg)
{
	struct cli_signals *g = arg;
	int sig;
	/* SIGUSR1 is how cli_signals_stop() says "finished"; INT/TERM cancel. */
	int count = 0;
	while (!sigwait(&g->sigs, &sig) && sig != SIGUSR1) {
		if (++count > 1) {
			fprintf(stderr, "\nlivemig: second %s, exiting now\n", strsignal(sig));
			if (g->last)
				g->last(g->last_opaque);
			_exit(130);
		}
		fprintf(stderr, "\nlivemig: %s received, cancelling (again to force exit)\n",
			strsignal(sig));
		atomic_store(&g->cancelled, true);
		if (atomic_load(&g->started)) /* else cli_signals_started() cancels */
			livemig_cancel(g->s);
	}
	return NULL;
}

static int signals_thread(struct cli_signals *g, livemig_session *s, bool started)
{
	g->s = s;
	atomic_init(&g->started, started);
	atomic_init(&g->cancelled, false);
	int e = pthread_create(&g->th, NULL, signal_main, g);
	g->on = !e;
	return -e;
}

int cli_signals_start(struct cli_signals *g, livemig_session *s)
{
	return signals_thread(g, s, true);
}

int cli_signals_start_early(struct cli_signals *g, livemig_session *s)
{
	return signals_thread(g, s, false);
}

void cli_signals_started(struct cli_signals *g)
{
	atomic_store(&g->started, true);
	if (atomic_load(&g->cancelled))
		livemig_cancel(g->s);
}

void cli_signals_stop(struct cli_signals *g)
{
	if (!g->on)
		return;
	g->on = false;
	pthread_kill(g->th, SIGUSR1);
	pthread_join(g->th, NULL);
}

/* Seconds as "12.3 s", or "-" when unknown. */
static const char *eta_text(double sec, char *buf, size_t len)
{
	if (sec < 0 || sec > 1e6)
		return "-";
	snprintf(buf, len, "%.1f s", sec);
	return buf;
}

/*
 * Progress, like `virsh migrate --verbose`: the pass, the rates of the last
 * half second (wire bytes and guest RAM - zero pages count as RAM moved),
 * what remains, the time it would take at that RAM rate, and in pre-copy
 * (pass 2 on) the expected downtime and the throttle.  On a terminal one
 * line redrawn every 0.5 s; otherwise (--verbose) a line when the pass
 * changes.  Rates in MiB/s.
 */
static void *progress_main(void *arg)
{
	struct runner *r = arg;
	uint64_t last_ram = 0, last_wire = 0, last_ns = lm_now_ns(), shown_pass = 0;
	double ram_rate = 0, wire_rate = 0;
	bool any = false;

	pthread_mutex_lock(&r->lock);
	while (!r->done) {
		struct timespec ts = lm_deadline(CLOCK_REALTIME, 500);
		pthread_cond_timedwait(&r->cond, &r->lock, &ts);
		if (r->done)
			break;
		struct livemig_stats st;
		livemig_query(r->s, &st);
		uint64_t now = lm_now_ns();
		uint64_t ram = (st.normal + st.duplicate) * 4096ull;
		/* The rate clock starts when setup ends, with the first page:
		 * the wait for the peer is no part of any rate. */
		double active = (double)(st.total_time_ms - st.setup_time_ms) / 1e3;
		if (!any && st.status >= LIVEMIG_STATUS_ACTIVE && st.transferred && active > 0) {
			ram_rate = ram / active;
			wire_rate = st.transferred / active;
			any = true;
		} else if (any && now > last_ns) {
			double dt = (now - last_ns) / 1e9;
			double ri = (ram - last_ram) / dt, wi = (st.transferred - last_wire) / dt;
			ram_rate = 0.5 * ram_rate + 0.5 * ri;
			wire_rate = 0.5 * wire_rate + 0.5 * wi;
		}
		last_ram = ram;
		last_wire = st.transferred;
		last_ns = now;
		if (r->lines && (st.dirty_sync_count == shown_pass || !st.dirty_sync_count))
			continue;
		shown_pass = st.dirty_sync_count;
		char eta[32], left[32] = "unknown", line[200];
		if (st.status <= LIVEMIG_STATUS_SETUP) { /* nothing to count yet */
			snprintf(line, sizeof(line), "%-9s %s", livemig_status_name(st.status), r->setup);
			fprintf(stderr, "\r  %-118s", line); /* a terminal: lines start at pass 1 */
			continue;
		}
		bool known = st.remaining != UINT64_MAX; /* a destination after pass 1 */
		if (known)
			snprintf(left, sizeof(left), "%.1f MiB", st.remaining / 1048576.0);
		int n = snprintf(line, sizeof(line), "%-9s pass %llu, wire %.1f MiB/s, RAM %.1f MiB/s, "
				 "remaining %s, ETA %s",
				 livemig_status_name(st.status), (unsigned long long)st.dirty_sync_count,
				 wire_rate / 1048576.0, ram_rate / 1048576.0, left,
				 eta_text(known && ram_rate > 0 ? st.remaining / ram_rate : -1, eta,
					  sizeof(eta)));
		char down[32] = "unknown"; /* no bandwidth measured yet */
		if (st.expected_downtime_ms != UINT64_MAX)
			snprintf(down, sizeof(down), "%llu ms", (unsigned long long)st.expected_downtime_ms);
		if (st.dirty_sync_count > 1 && n > 0 && (size_t)n < sizeof(line))
			snprintf(line + n, sizeof(line) - (size_t)n,
				 ", expected downtime %s, throttle %d%%", down, st.cpu_throttle_percentage);
		if (r->lines)
			fprintf(stderr, "livemig: %s\n", line);
		else
			fprintf(stderr, "\r  %-118s", line);
	}
	pthread_mutex_unlock(&r->lock);
	if (!r->lines)
		fprintf(stderr, "\r%120s\r", "");
	return NULL;
}

static void log_cb(void *opaque, int level, const char *msg)
{
	const struct opts *o = opaque;
	if (o->progress_on && isatty(2)) /* a clean line, not after the progress */
		fprintf(stderr, "\r%120s\r", "");
	fprintf(stderr, "livemig: %s%s\n", level == 0 ? "error: " : level == 1 ? "warning: " : "",
		msg);
}

static int write_json(livemig_session *s, const char *path)
{
	int n = livemig_stats_json(s, NULL, 0);
	char *buf = n > 0 ? malloc((size_t)n + 1) : NULL;
	if (buf)
		n = livemig_stats_json(s, buf, (size_t)n + 1);
	FILE *f = buf && n > 0 ? fopen(path, "w") : NULL;
	if (!f || fwrite(buf, 1, (size_t)n, f) != (size_t)n || fclose(f)) {
		fprintf(stderr, "livemig: cannot write %s: %s\n", path,
			strerror(buf && n > 0 ? errno : ENOMEM));
		free(buf);
		return -1;
	}
	free(buf);
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

/* "1 pass", "2 passes". */
static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* A CPU figure of the summary: "0.12 s (10%)", or that the side never
 * reported one. */
static void print_cpu(const char *side, double sec, double secs)
{
	if (sec < 0)
		printf("%s not reported", side);
	else
		printf("%s %.2f s (%.0f%%)", side, sec, secs > 0 ? 100 * sec / secs : 0);
}

/* The summary.  Rates are in MiB/s (2^20 bytes), as sizes and the
 * max-bandwidth suffixes are; the JSON keeps QEMU's mbps. */
static void summary(livemig_session *s, const char *who)
{
	struct livemig_stats st;
	char buf[16384];
	livemig_query(s, &st);
	/* What struct livemig_stats does not carry: TLS, the zero-page engine
	 * that ran. */
	int n = livemig_stats_json(s, buf, sizeof(buf));
	json_object *js = n > 0 && (size_t)n < sizeof(buf) ? json_tokener_parse(buf) : NULL;
	json_object *tls = NULL, *zp, *v;
	const char *f[4] = {"", "", "", ""}, *zero_ran = st.zero_page_detection;
	static const char *const keys[4] = {"protocol", "cipher", "key-exchange", "records"};
	bool tls_on = js && json_object_object_get_ex(js, "tls", &tls) && tls;
	for (int i = 0; tls_on && i < 4; i++)
		if (json_object_object_get_ex(tls, keys[i], &v))
			f[i] = json_object_get_string(v);
	if (js && json_object_object_get_ex(js, "zero-page", &zp) &&
	    json_object_object_get_ex(zp, "engine", &v))
		zero_ran = json_object_get_string(v);

	double secs = st.total_time_ms / 1e3;
	printf("livemig %s: %s in %" PRIu64 " ms (setup %" PRIu64 " ms", who,
	       livemig_status_name(st.status), st.total_time_ms, st.setup_time_ms);
	if (!strcmp(who, "source"))
		printf(", downtime %" PRIu64 " ms", st.downtime_ms);
	printf(")\n");
	printf("  RAM       %.1f MiB: %" PRIu64 " normal pages, %" PRIu64 " zero pages", st.total / 1048576.0,
	       st.normal, st.duplicate);
	if (st.remaining && st.remaining != UINT64_MAX)
		printf(", %.1f MiB not sent", st.remaining / 1048576.0);
	printf("\n  method    %s, %u %s, zero-page-detection %s", st.method, st.channels,
	       plural(st.channels, "channel", "channels"), st.zero_page_detection);
	if (strcmp(zero_ran, st.zero_page_detection))
		printf(" (ran as %s: no device)", zero_ran);
	printf("\n");
	if (!strcmp(who, "source") && !strcmp(st.method, "auto"))
		printf("  auto      packets sent raw %llu, lz4 %llu, zstd %llu, zstd-hi %llu\n",
		       (unsigned long long)st.auto_none, (unsigned long long)st.auto_lz4,
		       (unsigned long long)st.auto_zstd, (unsigned long long)st.auto_zstd_hi);
	char rate[32] = "unknown"; /* no dirty sync after pass 1 */
	if (st.dirty_pages_rate >= 0)
		snprintf(rate, sizeof(rate), "%.0f", st.dirty_pages_rate);
	/* dirty-sync-count counts the final pass (the guest stopped) too;
	 * it began if anything went out after the stop. */
	bool final = st.status == LIVEMIG_STATUS_COMPLETED || st.downtime_bytes;
	uint64_t running = st.dirty_sync_count - (final && st.dirty_sync_count);
	if (strcmp(st.dirty_tracker, "none"))
		printf("  precopy   %llu %s while the guest ran%s, tracker %s, %s dirty pages/s, "
		       "throttle %d%%, %.1f MiB sent while stopped\n",
		       (unsigned long long)running, plural(running, "pass", "passes"),
		       final ? " + the final one" : "", st.dirty_tracker,
		       rate, st.cpu_throttle_percentage, st.downtime_bytes / 1048576.0);
	if (tls_on && *f[0])
		printf("  tls       %s %s %s, records sealed in %s\n", f[0], f[1], f[2], f[3]);
	else
		printf("  tls       %s\n", tls_on ? "no handshake completed" : "off");
	json_object_put(js);
	printf("  wire      %.1f MiB (payload %.1f MiB, ratio %.2f), %.1f MiB/s, %.0f pages/s\n",
	       st.transferred / 1048576.0, st.payload_bytes / 1048576.0, st.compression_ratio,
	       secs > 0 ? st.transferred / 1048576.0 / secs : 0, st.pages_per_second);
	printf("  CPU       ");
	if (!strcmp(who, "source")) {
		print_cpu("source", st.cpu_source_seconds, secs);
		printf(", ");
	}
	print_cpu("destination", st.cpu_dest_seconds, secs);
	printf("\n  verify    %s\n", st.verify_match == 1   ? "match: destination image equals source"
				   : st.verify_match == 0 ? "MISMATCH"
							  : "not reached");
	fflush(stdout);
}

/*
 * What dest and source do first, before anything that takes time (the
 * guest's fill): from here SIGINT and SIGTERM cancel (one that comes
 * before the start cancels the migration as soon as it started), and the
 * control socket exists, so a client that connects now sees every event
 * from setup on.  0, or the exit status after a message.  run() ends both;
 * a command that does not get there calls end().
 */
static int begin(livemig_session *s, const struct opts *o, const char *who,
		 struct cli_signals *sig, lm_qmp_server **control)
{
	int rc = cli_begin(who, s, o->control, sig, control); /* signals blocked first */
	if (!rc)
		cli_signals_start_early(sig, s);
	return rc;
}

static void end(struct cli_signals *sig, lm_qmp_server *control)
{
	cli_signals_stop(sig);
	lm_qmp_server_stop(control);
}

/* Starts the session, shows progress, waits; sig and control: begin()'s,
 * ended here. */
static int run(livemig_session *s, struct opts *o, const char *who, struct cli_signals *sig,
	       lm_qmp_server *control)
{
	struct runner r = {.s = s};
	pthread_t prog_th;
	bool tty = isatty(2);
	bool prog = o->progress < 0 ? tty : o->progress;
	o->progress_on = prog;
	r.lines = !tty; /* --verbose to a file or pipe: a line per pass */
	r.setup = strcmp(who, "source") ? "waiting for the source" : "connecting to the destination";

	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	int rc = livemig_start(s, o->uri);
	if (rc) {
		end(sig, control);
		fprintf(stderr, "livemig %s: %s%s\n", who, rc == -E2BIG && o->mem_set ? "--mem: " : "",
			livemig_last_error(s));
		/* Nothing started: a bad URI, an engine that cannot run, TLS
		 * credentials that cannot be used, a --mem larger than the
		 * machine are usage errors; a port in use or no memory are not. */
		return rc == -EINVAL || rc == -ENODEV || rc == -ENOKEY || rc == -E2BIG ? 2 : 1;
	}
	char where[300];
	snprintf(where, sizeof(where), "%s", o->uri);
	if (!strcmp(who, "destination") && livemig_listen_uri(s, where, sizeof(where)) > 0)
		fprintf(stderr, "livemig %s: listening on %s\n", who, where);
	if (o->ready_fd >= 0) {
		dprintf(o->ready_fd, "%s\n", where);
		close(o->ready_fd);
	}
	cli_signals_started(sig);
	if (prog)
		pthread_create(&prog_th, NULL, progress_main, &r);
	rc = livemig_wait(s);
	pthread_mutex_lock(&r.lock);
	r.done = true;
	pthread_cond_broadcast(&r.cond);
	pthread_mutex_unlock(&r.lock);
	if (prog)
		pthread_join(prog_th, NULL);
	cli_signals_stop(sig);

	if (rc == -EINPROGRESS && o->resume_on_unknown) {
		int e = livemig_resume_source(s);
		fprintf(stderr, "livemig source: resume-source: %s\n",
			!e	       ? "the destination discarded its image; the guest runs here"
			: e == -EBUSY ? "refused: the destination runs the guest"
				      : "refused: the destination cannot be asked and may run the guest");
		rc = e == -EBUSY ? 0 : e ? rc : -ECANCELED;
	}
	lm_qmp_server_stop(control); /* after the last event: the final status */
	/* The error first; then the summary, unless nothing moved at all. */
	if (rc == -EINPROGRESS)
		fprintf(stderr, "livemig %s: outcome unknown: %s\n", who, livemig_last_error(s));
	else if (rc)
		fprintf(stderr, "livemig %s: migration failed: %s\n", who, livemig_last_error(s));
	struct livemig_stats st;
	livemig_query(s, &st);
	if (!rc || st.transferred)
		summary(s, who);
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
int cli_check_writable(const char *who, const char *opt, const char *path)
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
	int rc = cli_parse_opts(argc, argv, &o, CLI_DEST);
	if (rc)
		return rc;
	if (!o.uri) {
		fprintf(stderr, "livemig dest: --listen URI is required\n");
		return 2;
	}
	if ((rc = cli_check_writable("dest", "--dump", o.dump)) ||
	    (rc = cli_check_writable("dest", "--json", o.json)))
		return rc;
	livemig_session *s = livemig_session_new(LIVEMIG_DEST);
	if (!s)
		return 1;
	livemig_set_log(s, log_cb, &o);
	rc = cli_apply_settings(s, &o);
	if (!rc && o.timeout && livemig_set_parameter(s, "timeout", o.timeout)) {
		fprintf(stderr, "livemig dest: %s\n", livemig_last_error(s));
		rc = 2;
	}
	/* --mem: the library maps it at start, before it listens (with
	 * --prealloc faulted in), instead of when the source announces it. */
	if (!rc && o.mem_set && livemig_ram_register(s, "pc.ram", NULL, o.mem)) {
		fprintf(stderr, "livemig dest: --mem: %s\n", livemig_last_error(s));
		rc = 2;
	}
	livemig_set_prealloc(s, o.prealloc); /* before the start, which maps --mem */
	struct cli_signals sig;
	lm_qmp_server *control;
	if (!rc && !(rc = begin(s, &o, "destination", &sig, &control)))
		rc = run(s, &o, "destination", &sig, control);
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
	int rc = cli_parse_opts(argc, argv, &o, CLI_SOURCE);
	if (rc)
		return rc;
	if (!o.uri) {
		fprintf(stderr, "livemig source: --connect URI is required\n");
		return 2;
	}
	if ((rc = cli_check_writable("source", "--dump", o.dump)) ||
	    (rc = cli_check_writable("source", "--json", o.json)))
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
	struct cli_signals sig;
	lm_qmp_server *control;
	rc = cli_apply_settings(s, &o);
	if (rc || (rc = begin(s, &o, "source", &sig, &control))) {
		livemig_session_free(s);
		return rc;
	}
	uint64_t size = o.mem_set ? o.mem : 0;
	void *mem = fill_create(&o.fill, &size, err, sizeof(err));
	if (!mem) {
		end(&sig, control);
		fprintf(stderr, "livemig source: %s\n", err);
		livemig_session_free(s);
		return 2;
	}
	struct guest *g = NULL;
	bool ran = false; /* run() ended sig and control */
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
		rc = run(s, &o, "source", &sig, control);
		ran = true;
	}
	if (!ran)
		end(&sig, control);
	/* After a migration the guest stays stopped here (it runs at the
	 * destination now); after a failure it kept running until now, and
	 * its memory must be as it wrote it. */
	if (g) {
		bool running = guest_running(g);
		uint64_t writes = guest_stop(g);
		uint64_t damaged = guest_check(g);
		fprintf(stderr, "livemig source: the guest wrote %llu %s and was %s at the end; "
				"%s\n",
			(unsigned long long)writes, plural(writes, "page", "pages"),
			running ? "running" : "stopped",
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
		cli_usage(argc < 2 ? stderr : stdout, CLI_ALL);
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
	if (!strcmp(cmd, "ctl"))
		return cli_ctl(argc, argv);
	fprintf(stderr, "livemig: unknown command '%s' (dest, source, bench, info, qemu-source, qemu-dest, ctl; see --help)\n",
		cmd);
	return 2;
}
