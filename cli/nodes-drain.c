/* SPDX-License-Identifier: MIT */
/*
 * autoosctl nodes drain|undrain NODE: POST and DELETE /v1/nodes/{node}/drain
 * on the coordinator (doc/api.md). A draining node takes no new step; the
 * steps it runs finish. autoosctl node drain, on the node's own host, is
 * another thing: it stops that autoosd taking jobs.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "common/json.h"

static int usage(FILE *f, int status) {
        fputs("Usage: autoosctl nodes drain NODE     no new step goes to NODE; the steps it runs finish\n"
              "       autoosctl nodes undrain NODE   NODE takes new steps again\n"
              "Options: --url URL, --key-file FILE, --cacert FILE, --json\n"
              "\n"
              "Needs an operator or admin key. The drain is kept by the coordinators (every one\n"
              "of the fleet honours it) until undrained; each change is in the audit trail.\n",
              f);
        return status;
}

int cli_nodes_drain(int argc, char **argv) {
        static const struct option options[] = {
                {"url", required_argument, NULL, 'u'},
                {"key-file", required_argument, NULL, 'k'},
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_cli_client_ cli_client *client = NULL;
        _cleanup_cli_reply_ cli_reply reply = {};
        _cleanup_json_ yajl_val doc = NULL;
        _cleanup_free_ char *node_path = NULL, *path = NULL;
        const char *url = NULL, *key_file = NULL;
        bool json = false, drain = strcmp(argv[0], "drain") == 0;
        int c, r;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1)
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
                        return usage(stdout, 0);
                default:
                        fprintf(stderr, "autoosctl: nodes %s: %s: unknown option or missing value\n",
                                argv[0], argv[optind - 1]);
                        return usage(stderr, CLI_EXIT_USAGE);
                }
        if (argc - optind != 1 || !argv[optind][0]) {
                fprintf(stderr, "autoosctl: nodes %s: %s\n", argv[0],
                        argc - optind < 1 ? "no NODE given" : "one NODE, please");
                return usage(stderr, CLI_EXIT_USAGE);
        }
        const char *node = argv[optind];
        node_path = cli_path_join("/v1/nodes", node);
        if (node_path && asprintf(&path, "%s/drain", node_path) < 0)
                path = NULL;
        if (!path) {
                fputs("autoosctl: out of memory\n", stderr);
                return EX_OSERR;
        }
        r = cli_client_new(url, key_file, json, &client);
        if (r != 0)
                return r;
        r = cli_client_request(client, drain ? "POST" : "DELETE", path, NULL, 0, &reply);
        if (r != 0)
                return r;
        if (json) {
                printf("%s\n", reply.body);
                return fflush(stdout) == 0 ? 0 : EX_IOERR;
        }
        r = cli_reply_json(client, &reply, &doc);
        if (r != 0)
                return r;
        const char *since = YAJL_GET_STRING(au_json_get(doc, "drain_since"));
        const char *by = YAJL_GET_STRING(au_json_get(doc, "drained_by"));
        if (YAJL_IS_TRUE(au_json_get(doc, "draining")))
                printf("node %s: draining since %s, by %s\n", node, since ? since : "?", by ? by : "?");
        else
                printf("node %s: not draining (takes new steps)\n", node);
        return fflush(stdout) == 0 ? 0 : EX_IOERR;
}
