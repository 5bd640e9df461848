/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * autoosctl secret set NAME [--from-file FILE] | rm NAME | ls (cli/secret.c):
 * the coordinator's secrets (doc/trust.md "Secrets"), with an admin key.
 * argv[0] is "secret"; returns the exit status.
 */
int cli_secret(int argc, char **argv);
