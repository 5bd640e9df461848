/* SPDX-License-Identifier: MIT */
/*
 * API keys beyond orc_auth (coordinator.h): revocation, which takes effect
 * at once, and the role of an authenticated key for checks made after the
 * API's own (the trust levels of a submission).
 */
#pragma once
#include <stdbool.h>
#include "orchestrator/config.h"
#include "orchestrator/coordinator.h"

#define ORC_MAX_KEY_NAME 128

/*
 * DELETE /v1/keys/{name} (admin): marks the key revoked, records a
 * key_revoked audit row naming actor, and drops it from this coordinator's
 * cache before answering, so its next request is refused (401). Other
 * coordinators refuse it at once too: orc_auth confirms every cached match
 * in PostgreSQL. 200 {"name","revoked":true}; 404 when no unrevoked key has
 * that name; 503 when PostgreSQL is away.
 */
void orc_key_revoke(orc_coord *c, const char *actor, const char *name, orc_reply *ret);

/* `--revoke-key NAME`: the same from the command line (actor "admin"); err says why it failed. */
int orc_revoke_key(const orc_config *cfg, const char *name, au_error *err);

/*
 * The role of the cached key named name (an authenticated actor); ORC_ROLE_NONE when not cached,
 * i.e. revoked since (an event stream then ends). In memory only: safe to call often.
 */
orc_role orc_key_role(orc_coord *c, const char *name);
