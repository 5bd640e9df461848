/* SPDX-License-Identifier: MIT */
/*
 * Secrets (doc/trust.md "Secrets"): a step names the secrets it needs
 * (run.secrets, environment variable -> secret name); values never appear
 * in a workflow, a stored spec, the audit trail, events, logs or Redis.
 *
 * Stored: PostgreSQL's secrets table holds AES-256-GCM boxes under the
 * coordinator's secret key (secret_key_file, 32 random bytes as hex, 0600,
 * outside PostgreSQL), associated data the name and version. Delivered: at
 * dispatch the named values are opened and sealed again for the one node
 * that runs the step (key HMAC(node key, "autoos/secret/v1"), associated
 * data run id and node) into the job spec's "secrets_sealed", which the
 * job's MAC covers. The node masks every value in the run's output.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "memory/secret.h"
#include "orchestrator/config.h"
#include "orchestrator/coordinator.h"
#include "orchestrator/workflow.h"

typedef struct pg_conn PGconn;

#define ORC_SECRET_MAX_VALUE (64u << 10) /* bytes of one value */

/*
 * The coordinator's secret key (secret_key_file: 64 hex digits, mode 0600,
 * outside PostgreSQL) into ret, and its id (the first 16 hex digits of its
 * sha256) into ret_id. With create, a missing file is made (random, 0600).
 * It is read on each use, so a coordinator never holds it longer than one
 * operation. err names the file and what is wrong with it.
 */
int orc_secret_key_load(const orc_config *cfg, bool create, uint8_t ret[MEM_SEAL_KEY_BYTES], char ret_id[17],
                        au_error *err);

/*
 * PUT /v1/secrets/{name} (admin), body {"value":"..."}: creates the secret
 * (version 1, 201) or rotates it (version + 1, 200), with a secret_created
 * or secret_rotated row in the fleet's audit chain naming actor, name and
 * version. The answer is {"name","version"}; never the value. 400 for a bad
 * body, 413 for a value over ORC_SECRET_MAX_VALUE, 404 for a bad name.
 */
void orc_secret_put(orc_coord *c, const char *actor, const char *name, const char *body, size_t len,
                    orc_reply *ret);
/* DELETE /v1/secrets/{name} (admin): 200 {"name","deleted":true} and a secret_deleted row; 404. */
void orc_secret_delete(orc_coord *c, const char *actor, const char *name, orc_reply *ret);
/* GET /v1/secrets (admin):
 * {"secrets":[{"name","version","created_by","created_at","rotated_by","rotated_at"}]}. */
void orc_secret_list(orc_coord *c, orc_reply *ret);

/*
 * `--set-secret NAME` and `--delete-secret NAME` (actor "admin"): the same from
 * the command line; the secret key file is created on first use. value is
 * len bytes (one trailing newline is the caller's to strip).
 */
int orc_secret_set_cli(const orc_config *cfg, const char *name, const char *value, size_t len,
                       unsigned *ret_version, au_error *err);
int orc_secret_delete_cli(const orc_config *cfg, const char *name, au_error *err);

/*
 * At submission: false with ret set (400, field steps.<id>.run.secrets.<VAR>)
 * when a step names a secret that does not exist; true otherwise.
 */
bool orc_secrets_check(orc_coord *c, PGconn *conn, const orc_workflow *w, orc_reply *ret);

/*
 * At dispatch (secrets-dispatch.c), for node and run_id: when the spec *spec (a JSON object the
 * caller owns) names secrets, their values are sealed for node into a
 * "secrets_sealed" field added to it (*spec is replaced). Secrets that are
 * gone, or any failure, leave the spec without them: the node then ends
 * the run as sandbox_error naming the secret. Returns *spec.
 */
char *orc_secrets_seal_spec(orc_coord *c, const char *node, const char *run_id, char **spec);
