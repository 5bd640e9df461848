/* SPDX-License-Identifier: MIT */
/* autoosctl: the AUTOOS command-line client. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
        fputs("Usage: autoosctl COMMAND [OPTIONS]\n"
              "\n"
              "Commands:\n"
              "  run [OPTIONS] -- PROGRAM [ARG]...   run one command in a sandbox, locally\n"
              "                                      (no daemon, database or broker needed)\n"
              "  node status|drain|run [OPTIONS]     talk to this host's autoosd\n"
              "  adversarial [OPTIONS]               run the attack catalogue against this host's\n"
              "                                      sandbox and policy (and a fleet, if given)\n"
              "\n"
              "Coordinator commands (over HTTP; --url URL, --key-file FILE):\n"
              "  submit FILE [--wait] [--json]       submit a workflow (- reads standard input)\n"
              "  status ID [--watch] [--json]        a workflow and its steps\n"
              "  list [--state S] [--limit N]        workflows, newest first\n"
              "  pause|resume|cancel ID              act on a workflow\n"
              "  approve|retry|skip ID STEP          answer a step awaiting an operator\n"
              "  audit ID [--verify]                 the audit trail, its hash chain checked\n"
              "  nodes                               the fleet's nodes\n"
              "  simulate FILE                       estimate a workflow from history\n"
              "  events [--since ID]                 the event stream, as JSON lines\n"
              "\n"
              "Options:\n"
              "  -h, --help       show this help\n"
              "  -V, --version    show the version\n"
              "\n"
              "'autoosctl COMMAND --help' describes a command. See autoosctl(1).\n",
              f);
}

int main(int argc, char **argv) {
        if (argc < 2) {
                usage(stderr);
                return CLI_EXIT_USAGE;
        }
        const char *cmd = argv[1];
        if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
                usage(stdout);
                return 0;
        }
        if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
                printf("autoosctl %s\n", PACKAGE_VERSION);
                return 0;
        }
        if (strcmp(cmd, "run") == 0)
                return cli_run(argc - 1, argv + 1);
        if (strcmp(cmd, "node") == 0)
                return cli_node(argc - 1, argv + 1);
        if (strcmp(cmd, "adversarial") == 0)
                return cli_adversarial(argc - 1, argv + 1);
        if (cli_is_coordinator_command(cmd))
                return cli_coordinator(argc - 1, argv + 1);
        fprintf(stderr, "autoosctl: unknown command '%s' (see 'autoosctl --help')\n", cmd);
        return CLI_EXIT_USAGE;
}
