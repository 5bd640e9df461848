/* SPDX-License-Identifier: MIT */
#pragma once
#include <stdbool.h>

#include "cli/client.h"

/*
 * autoosctl secret set NAME [--from-file FILE] | rm NAME | ls (cli/secret.c):
 * the coordinator's secrets (doc/trust.md "Secrets"), with an admin key.
 * argv[0] is "secret"; returns the exit status.
 */
int cli_secret(int argc, char **argv);

/*
 * DELETE collection/NAME (autoosctl secret rm, key revoke): prints the reply
 * with json, else "WHAT 'NAME' DONE". Returns the exit status (the client's
 * for a refused request, EX_OSERR when out of memory).
 */
int cli_delete_named(cli_client *client, const char *collection, const char *what, const char *name,
                     const char *done, bool json);
