/* SPDX-License-Identifier: MIT */
/*
 * The CLI's subcommands.  Each takes the arguments after "livemig", so
 * argv[0] is the subcommand's name ("info", "bench") and options start at
 * argv[1].  Returns the process exit status: 0 success, 1 failure, 2 usage
 * error (message already printed on stderr).
 */
#ifndef LM_CLI_H
#define LM_CLI_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fill.h"
#include "guest.h"
#include "livemig/livemig.h"
#include "qmp/server.h"

/* The subcommands, as bits of an option's cli_opts[].cmds. */
#define CLI_DEST 1u
#define CLI_SOURCE 2u
#define CLI_BENCH 4u

#define MAX_SETS 64
#define CLI_BENCH_MEM "4G" /* bench's guest memory unless --mem or --fill file: */
#define CLI_MAX_GIVEN (2 * MAX_SETS + 32)

/* An option as given: its full name ("--json", however it was abbreviated
 * or joined to its value with '='), its value (NULL for a flag). */
struct cli_given {
	const char *flag, *value;
};

/* What the options of dest, source and bench say. */
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
	const char *control; /* --control unix:PATH, or NULL */
	struct cli_given given[CLI_MAX_GIVEN]; /* every option but --help, in order: */
	int ngiven;			       /* what bench forwards */
};

/* Parses argv (argv[0] the subcommand) for the subcommand cmd into *o: 0,
 * or 2 after a message on stderr (unknown option, an option of another
 * subcommand, a bad value).  --help prints cmd's options and exits 0. */
int cli_parse_opts(int argc, char **argv, struct opts *o, unsigned cmd);

/* Usage for the subcommands in cmds (all three: the whole tool). */
void cli_usage(FILE *f, unsigned cmds);

/* Applies --set and --cap to s: 0, or 2 after a message. */
int cli_apply_settings(livemig_session *s, const struct opts *o);

/* A file an option names must be writable before anything starts (it is
 * not created: nothing is written before the end).  0, or 2 with a
 * message; 0 for NULL. */
int cli_check_writable(const char *who, const char *opt, const char *path);

/* SIGINT and SIGTERM while a migration runs: the first cancels it
 * (livemig_cancel), a second exits at once (130), after calling last. */
struct cli_signals {
	livemig_session *s;
	sigset_t sigs;
	pthread_t th;
	bool on; /* the thread runs */
	/* Started early: a signal before livemig_start() only sets cancelled;
	 * whichever of the two threads sets its flag last cancels. */
	atomic_bool started, cancelled;
	/* NULL (cli_signals_block sets it so), or what must not outlive an
	 * exit at once (a vCPU throttle): called from the signal thread. */
	void (*last)(void *opaque);
	void *last_opaque;
};
/* Blocks SIGINT, SIGTERM and SIGUSR1 in this thread and every thread it
 * starts later: call it before livemig_start (the library's threads must
 * not take them) and before anything a signal should not interrupt. */
void cli_signals_block(struct cli_signals *g);
/* From now on a blocked (or pending) SIGINT/SIGTERM cancels s, from a
 * thread of its own; s has started.  0 or -errno (no thread: signals stay
 * blocked). */
int cli_signals_start(struct cli_signals *g, livemig_session *s);
/* The same before livemig_start(s) (a signal during the guest's fill):
 * the cancel waits for cli_signals_started(g), called once livemig_start
 * succeeded, which cancels s then. */
int cli_signals_start_early(struct cli_signals *g, livemig_session *s);
void cli_signals_started(struct cli_signals *g);
/* Ends that thread, if it runs. */
void cli_signals_stop(struct cli_signals *g);

/* livemig info [--json]: version, CPU features, engines built in. */
int cli_info(int argc, char **argv);

/* livemig bench ...: see tools/cli_bench.c. */
int cli_bench(int argc, char **argv);

/* livemig qemu-source / qemu-dest: a running QEMU's RAM by livemig, its
 * device state by QEMU inside the session (tools/cli_qemu.c, docs/qemu.md).
 * Also 3: the outcome is unknown. */
int cli_qemu_source(int argc, char **argv);
int cli_qemu_dest(int argc, char **argv);

/* livemig ctl PATH COMMAND [JSON] | --events: see tools/cli_ctl.c. */
int cli_ctl(int argc, char **argv);

/*
 * The last step before livemig_start() of every migrating subcommand, once s
 * is set up: blocks SIGINT and SIGTERM (cli_signals_block(sig): from here
 * they cancel, never kill), then starts the control socket's server for s
 * when uri (--control) is not NULL.  0 and *srv (NULL when uri is), or 2
 * (not unix:PATH, a path too long) or 1 (cannot listen) after a message.
 * lm_qmp_server_stop(*srv) once livemig_wait() returned.
 */
int cli_begin(const char *who, livemig_session *s, const char *uri, struct cli_signals *sig,
	      lm_qmp_server **srv);

#endif
