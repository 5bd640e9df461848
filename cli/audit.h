/* SPDX-License-Identifier: MIT */
/*
 * `autoosctl audit ID [--verify]` (cli/audit.c): a workflow's audit trail,
 * and its verification on this side (memory/audit-verify.h).
 */
#pragma once
/* autoosctl audit (argv[0] is "audit"): returns the exit status. */
int cli_audit(int argc, char **argv);
