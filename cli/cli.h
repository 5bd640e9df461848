/* SPDX-License-Identifier: MIT */
#pragma once

/* Each subcommand: argv[0] is the subcommand's name; returns the exit status. */
int cli_run(int argc, char **argv);
int cli_node(int argc, char **argv);
/* autoosctl adversarial (cli/adversarial.c; the engine is adversarial/): the attack catalogue. */
int cli_adversarial(int argc, char **argv);

/*
 * The coordinator's commands (cli/workflow.c): submit, status, list, pause,
 * resume, cancel, approve, retry, skip, audit, nodes, simulate, events.
 * cli_is_coordinator_command() says whether name is one of them.
 */
int cli_coordinator(int argc, char **argv);
int cli_is_coordinator_command(const char *name);
/* autoosctl console: the web console's address and a sign-in hint (cli/console.c). */
int cli_console(int argc, char **argv);
/* autoosctl nodes drain|undrain NODE (cli/nodes-drain.c); argv[0] is "drain" or "undrain". */
int cli_nodes_drain(int argc, char **argv);

/*
 * Exit statuses, as documented in autoosctl(1). The coordinator's commands
 * also use <sysexits.h>: EX_DATAERR (65) input refused, EX_UNAVAILABLE (69)
 * coordinator unreachable or unavailable, EX_SOFTWARE (70) its internal
 * error, EX_TEMPFAIL (75) rate limited, EX_PROTOCOL (76) reply unreadable,
 * EX_NOPERM (77) key refused, EX_CONFIG (78) bad configuration.
 */
/* A workflow that failed or was cancelled, a broken audit chain, a refused action (404, 409). */
#define CLI_EXIT_FAILED 1
/* Bad usage. */
#define CLI_EXIT_USAGE 2
