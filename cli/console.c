/* SPDX-License-Identifier: MIT */
/*
 * autoosctl console: prints the operator console's address (the coordinator's
 * URL and its console_path, /ui by default) and how to sign in.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static int usage(FILE *f, int status) {
        fputs("Usage: autoosctl console [--url URL] [--path PATH]\n"
              "\n"
              "Prints the address of the coordinator's web console (URL's PATH, default /ui,\n"
              "the coordinator's console_path) and how to sign in. URL: --url, $AUTOOS_URL or\n"
              "the configuration file's url=, as for the other coordinator commands.\n",
              f);
        return status;
}

/* The console command: an exit status (0, or CLI_EXIT_USAGE and the client's own). */
int cli_console(int argc, char **argv) {
        static const struct option options[] = {
                {"url", required_argument, NULL, 'u'},
                {"path", required_argument, NULL, 'p'},
                {"key-file", required_argument, NULL, 'k'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_cli_client_ cli_client *client = NULL;
        const char *url = NULL, *path = "/ui", *key_file = NULL;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1)
                switch (c) {
                case 'u':
                        url = optarg;
                        break;
                case 'p':
                        path = optarg;
                        break;
                case 'k':
                        key_file = optarg;
                        break;
                case 'h':
                        return usage(stdout, 0);
                default:
                        return usage(stderr, CLI_EXIT_USAGE);
                }
        if (optind < argc || path[0] != '/')
                return usage(stderr, CLI_EXIT_USAGE);
        r = cli_client_new(url, key_file, false, &client);
        if (r != 0)
                return r;
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/')
                n--;
        printf("AUTOOS console: %s%.*s/\n", cli_client_url(client), (int) n, path);
        printf("Sign in with an API key; it stays in that browser tab's session storage, and its role\n"
               "(viewer, operator, admin) decides which actions the page offers. An administrator makes "
               "one\n"
               "with: autoos-coordinator --create-key NAME --role viewer|operator|admin\n");
        if (getenv("AUTOOS_API_KEY") || key_file)
                printf("This shell's key is %s.\n", key_file ? "in --key-file" : "in $AUTOOS_API_KEY");
        return 0;
}
