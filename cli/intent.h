/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * autoosctl intent SENTENCE [--submit] [--name NAME] [--json] (cli/intent.c):
 * POST /v1/intents, the draft printed for review (or submitted). argv[0] is
 * "intent"; returns the exit status.
 */
int cli_intent(int argc, char **argv);
