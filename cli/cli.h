/* SPDX-License-Identifier: MIT */
#pragma once

/* Each subcommand: argv[0] is the subcommand's name; returns the exit status. */
int cli_run(int argc, char **argv);
int cli_node(int argc, char **argv);

/* Exit status for bad usage, as documented in autoosctl(1). */
#define CLI_EXIT_USAGE 2
