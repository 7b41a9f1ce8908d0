/* SPDX-License-Identifier: MIT */
/*
 * The CLI's subcommands.  Each takes the arguments after "livemig", so
 * argv[0] is the subcommand's name ("info", "bench") and options start at
 * argv[1].  Returns the process exit status: 0 success, 1 failure, 2 usage
 * error (message already printed on stderr).
 */
#ifndef LM_CLI_H
#define LM_CLI_H

/* livemig info [--json]: version, CPU features, engines built in. */
int cli_info(int argc, char **argv);

/* livemig bench ...: see tools/cli_bench.c. */
int cli_bench(int argc, char **argv);

/* livemig qemu-source / qemu-dest: a running QEMU's RAM by livemig, its
 * device state by QEMU inside the session (tools/cli_qemu.c, docs/qemu.md).
 * Also 3: the outcome is unknown. */
int cli_qemu_source(int argc, char **argv);
int cli_qemu_dest(int argc, char **argv);

#endif
