/* SPDX-License-Identifier: MIT */
/*
 * GET /v1/runs/{id} (doc/api.md, issue 15): one attempt's result as its node
 * sent it, stdout and stderr whole (up to the run's output_bytes, past which
 * the node cut them and said so in *_truncated). GET /v1/workflows/{id}
 * shows only the first 64 KiB of a step's stdout, and no stderr.
 */
#pragma once
#include "orchestrator/coordinator.h"

/*
 * run_id is "<workflow>.<step>.<attempt>" (DESIGN.md's run ids). Replies 200
 * {"id","workflow","step","attempt","node","late","result"}; 404 for a
 * malformed id or an attempt with no result (yet); 503 while PostgreSQL is
 * away.
 */
void orc_run_result(orc_coord *c, const char *run_id, orc_reply *ret);
