/* SPDX-License-Identifier: MIT */
/*
 * POST /v1/intents (doc/api.md): the API's side of intents. The drafting
 * itself (planner, validator rounds, risk, approvals) is orchestrator/intent.h.
 *
 * Body, strictly: {"sentence": str (1..ORC_INTENTS_MAX_SENTENCE bytes),
 *                  "submit": bool (default false),
 *                  "name": str (the workflow's name instead of the planner's)}.
 * Answers: 200 the draft (orc_intent_result_json, plus "submitted": false);
 * with submit, the draft submitted as POST /v1/workflows submits it
 * (created_by the key): 201 with "submitted": true and "workflow": the
 * submission's answer; 400 a bad body (naming the field); 402 the key's model
 * budget; 422 no valid draft in the bounded rounds (the validator's last
 * message); 502 the planner's chain failed (naming the provider's failure);
 * 503 no model providers or no planner chain. Every call of the planner is
 * audited ("intent": the sentence's SHA-256 and size, the draft's SHA-256,
 * whether it was submitted), in the workflow's chain when submitted, else
 * in the fleet chain.
 */
#pragma once
#include <stddef.h>

#include "orchestrator/coordinator.h"

#define ORC_INTENTS_MAX_SENTENCE 4096

/* Handles POST /v1/intents for the key actor (operator or admin: the API checked). */
void orc_intent_post(orc_coord *c, const char *actor, const char *body, size_t len, orc_reply *ret);
