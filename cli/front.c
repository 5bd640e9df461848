/* SPDX-License-Identifier: MIT */
/*
 * autoosctl: the lean front. `autoosctl run` is a one-shot command whose
 * cost people compare with bwrap's, so this binary links only what a
 * sandboxed run needs (libsandbox and its libraries). Every other command
 * (the coordinator's, node, adversarial, audit, help) lives in
 * autoosctl-client (cli/main.c), which links libcurl, libpq, hiredis and
 * OpenSSL; the front execs it with the same arguments. Loading those
 * libraries (42 shared objects, most of them libcurl's dependencies) cost a
 * run more than bwrap's whole run.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef AUTOOS_PKGLIBEXECDIR
#define AUTOOS_PKGLIBEXECDIR "/usr/local/libexec/autoos"
#endif
#define CLIENT_NAME "autoosctl-client"

/*
 * Execs autoosctl-client with argv: the one beside this binary when there is
 * one (a build tree: cli/autoosctl and cli/autoosctl-client), else the
 * installed one. Returns only on failure, with the exit status to use.
 */
static int exec_client(char **argv) {
        char self[PATH_MAX], beside[PATH_MAX + sizeof(CLIENT_NAME)];
        ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);

        if (k > 0) {
                self[k] = '\0';
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        snprintf(beside, sizeof(beside), "%s/" CLIENT_NAME, self);
                        if (access(beside, X_OK) == 0) {
                                execv(beside, argv);
                                fprintf(stderr, "autoosctl: cannot run %s: %s\n", beside, strerror(errno));
                                return 127;
                        }
                }
        }
        execv(AUTOOS_PKGLIBEXECDIR "/" CLIENT_NAME, argv);
        fprintf(stderr, "autoosctl: cannot run %s: %s\n", AUTOOS_PKGLIBEXECDIR "/" CLIENT_NAME,
                strerror(errno));
        return 127;
}

int main(int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "run") == 0)
                return cli_run(argc - 1, argv + 1);
        return exec_client(argv);
}
