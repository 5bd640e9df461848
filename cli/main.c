/* SPDX-License-Identifier: MIT */
/* autoosctl: the AUTOOS command-line client. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli.h"
#include "client.h"
#include "cli/audit.h"
#include "cli/intent.h"
#include "cli/secret.h"

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
              "  audit ID [--verify]                 the audit trail, checked here against the\n"
              "                                      coordinator's public audit key\n"
              "  nodes                               the fleet's nodes\n"
              "  nodes drain|undrain NODE            no new step on NODE, or new steps again\n"
              "  simulate FILE                       estimate a workflow from history\n"
              "  intent SENTENCE [--submit]          a draft workflow from the planner, for review\n"
              "                                      (and submitted with --submit)\n"
              "  events [--since ID]                 the event stream, as JSON lines\n"
              "  key revoke NAME                     revoke an API key at once (admin)\n"
              "  secret set|rm|ls NAME                create, rotate, delete, list secrets (admin)\n"
              "  console [--path PATH]               the web console's address and how to sign in\n"
              "\n"
              "Coordinator commands also take --cacert FILE: the CA certificates an https://\n"
              "coordinator's certificate must chain to (default $" CLI_CACERT_ENV ", cacert= in\n"
              "the configuration file, else the system's). The certificate and the host name\n"
              "are always verified.\n"
              "\n"
              "Options:\n"
              "  -h, --help       show this help\n"
              "  -V, --version    show the version\n"
              "\n"
              "'autoosctl COMMAND --help' describes a command. See autoosctl(1).\n",
              f);
}

static int key_usage(FILE *f, int status) {
        fputs("Usage: autoosctl key revoke NAME [--url URL] [--key-file FILE] [--cacert FILE] [--json]\n"
              "\n"
              "Revokes the API key NAME (needs an admin key). The coordinator refuses it from\n"
              "its next request on, and so does every other coordinator of the fleet.\n",
              f);
        return status;
}

/* autoosctl key revoke NAME: DELETE /v1/keys/NAME. */
static int cli_key(int argc, char **argv) {
        static const struct option options[] = {
                {"url", required_argument, NULL, 'u'},
                {"key-file", required_argument, NULL, 'k'},
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_cli_client_ cli_client *client = NULL;
        const char *url = NULL, *key_file = NULL;
        bool json = false;
        int c, r;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1)
                switch (c) {
                case 'u':
                        url = optarg;
                        break;
                case 'k':
                        key_file = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        return key_usage(stdout, 0);
                default:
                        fprintf(stderr, "autoosctl key: %s '%s'\n",
                                c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
                        return key_usage(stderr, CLI_EXIT_USAGE);
                }
        if (argc - optind != 2 || strcmp(argv[optind], "revoke") != 0)
                return key_usage(stderr, CLI_EXIT_USAGE);
        r = cli_client_new(url, key_file, json, &client);
        if (r != 0)
                return r;
        return cli_delete_named(client, "/v1/keys", "key", argv[optind + 1], "revoked", json);
}

/*
 * --cacert FILE (or --cacert=FILE) anywhere among a coordinator command's
 * options: taken out here for every command at once. Returns false when it
 * lacks its value.
 */
static bool take_cacert(int *argc, char **argv) {
        int w = 1;

        for (int i = 1; i < *argc; i++) {
                if (strcmp(argv[i], "--") == 0) {
                        while (i < *argc)
                                argv[w++] = argv[i++];
                        break;
                }
                if (strcmp(argv[i], "--cacert") == 0) {
                        if (i + 1 >= *argc)
                                return false;
                        cli_client_set_cacert(argv[++i]);
                        continue;
                }
                if (strncmp(argv[i], "--cacert=", 9) == 0) {
                        cli_client_set_cacert(argv[i] + 9);
                        continue;
                }
                argv[w++] = argv[i];
        }
        argv[w] = NULL;
        *argc = w;
        return true;
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
        if (strcmp(cmd, "audit") == 0)
                return cli_audit(argc - 1, argv + 1);
        if (strcmp(cmd, "console") == 0)
                return cli_console(argc - 1, argv + 1);
        if (cli_is_coordinator_command(cmd) || strcmp(cmd, "key") == 0 || strcmp(cmd, "secret") == 0 ||
            strcmp(cmd, "intent") == 0) {
                int n = argc - 1;
                if (!take_cacert(&n, argv + 1)) {
                        fprintf(stderr, "autoosctl: --cacert needs a FILE\n");
                        return CLI_EXIT_USAGE;
                }
                if (strcmp(cmd, "key") == 0)
                        return cli_key(n, argv + 1);
                if (strcmp(cmd, "secret") == 0)
                        return cli_secret(n, argv + 1);
                if (strcmp(cmd, "nodes") == 0 && n > 1 &&
                    (strcmp(argv[2], "drain") == 0 || strcmp(argv[2], "undrain") == 0))
                        return cli_nodes_drain(n - 1, argv + 2);
                if (strcmp(cmd, "intent") == 0)
                        return cli_intent(n, argv + 1);
                return cli_coordinator(n, argv + 1);
        }
        fprintf(stderr, "autoosctl: unknown command '%s' (see 'autoosctl --help')\n", cmd);
        return CLI_EXIT_USAGE;
}
