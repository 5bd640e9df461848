/* SPDX-License-Identifier: MIT */
/*
 * Node identity (DESIGN.md "Node <-> coordinator"): which nodes are
 * enrolled, their keys, and the authentication of what crosses Redis.
 *
 * The coordinator holds one secret, the fleet key (fleet_key_file, 32 random
 * bytes as hex, mode 0600, outside PostgreSQL). A node's key is
 * HMAC(fleet key, "autoos/node-key/v1" | node | generation); PostgreSQL's
 * node_identities says which nodes are enrolled at which generation and
 * holds no key material. Dispatch tokens are HMAC(fleet key,
 * "autoos/dispatch-token/v1" | run id | node): unpredictable, one per
 * dispatch (a run id is dispatched once), bound to the node, and the same
 * when a spec is sent again after a restart, so nothing stores them.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* libpq's PGconn, without its header for main.c */
typedef struct pg_conn PGconn;

#include "common/error.h"
#include "memory/seal.h"
#include "orchestrator/config.h"

typedef struct orc_coord orc_coord;
typedef struct orc_identity orc_identity;

/*
 * The commands: enroll a node (or, rekey, give it the next generation's key)
 * and return its key as hex, to be written to the node's node_key_file; the
 * fleet key file is created (0600) on first use. remove marks it removed:
 * its messages are refused from then on (within 5 s). acl returns the Redis
 * ACL SETUSER command confining the node to its own keys, with a password
 * derived from its key. err names what failed.
 */
int orc_node_enroll(const orc_config *cfg, const char *node, bool rekey, char ret_key[MEM_SEAL_HEX_LEN + 1],
                    au_error *err);
int orc_node_remove(const orc_config *cfg, const char *node, au_error *err);
int orc_node_acl(const orc_config *cfg, const char *node, char **ret_line, au_error *err);
/* The Redis password of a node's ACL user, from its key: hex of HMAC(node key, "autoos/redis-password/v1").
 */
void orc_node_redis_password(const uint8_t key[MEM_SEAL_KEY_BYTES], char ret[MEM_SEAL_HEX_LEN + 1]);

/* At start: loads the fleet key when bus_auth is on (refusing to start without it), makes the metrics. */
int orc_identity_init(orc_coord *c, au_error *err);
void orc_identity_done(orc_coord *c);
/* The monitor: reloads the enrolled nodes from PostgreSQL (every 5 s). */
int orc_identity_reload(orc_coord *c, PGconn *conn);
bool orc_identity_on(const orc_coord *c);

/*
 * A jobs-stream entry's authentication for node: for a spec, the token of
 * run_id's dispatch, an expiry (CLOCK_REALTIME ms, now + job_ttl) and the MAC
 * of (node, field, value, token, expires); for a cancel (run_id NULL) the MAC
 * of (node, "cancel", value, "", ""). -ENOKEY when the node is not enrolled.
 */
int orc_seal_job(orc_coord *c, const char *node, const char *field, const char *value, const char *run_id,
                 char ret_token[MEM_SEAL_HEX_LEN + 1], char ret_expires[24],
                 char ret_auth[MEM_SEAL_HEX_LEN + 1]);

/*
 * node's secret key, HMAC(node key, "autoos/secret/v1") (memory/secret.h),
 * for the secrets sealed into its job specs. -ENOKEY when it is not enrolled.
 */
int orc_node_secret_key(orc_coord *c, const char *node, uint8_t ret[MEM_SEAL_KEY_BYTES]);

/*
 * Checks a results entry claiming to come from node: the MAC of (node, token,
 * json) under the node's key, and token being run_id's dispatch token for
 * that node. NULL when it holds, else the reason (a metric label).
 */
const char *orc_result_refusal(orc_coord *c, const char *node, size_t node_len, const char *token,
                               size_t token_len, const char *auth, size_t auth_len, const char *json,
                               size_t json_len, const char *run_id);

/*
 * Checks a heartbeat's MAC over (node, started_at, beat, capacity, running,
 * queued, labels, version, state). NULL when it holds, else the reason.
 */
const char *orc_heartbeat_refusal(orc_coord *c, const char *node, const char *const fields[8],
                                  const char *auth);

/* Counts a refused result (autoos_results_refused_total{reason}) or heartbeat. */
void orc_count_refused_result(orc_coord *c, const char *reason);
void orc_count_refused_heartbeat(orc_coord *c, const char *reason);

/*
 * Whether a refusal claimed to come from node gets its audit row: at most
 * ORC_REFUSAL_ROWS a minute per enrolled node (and as many for all unknown
 * names together). When a new minute starts after rows were held back,
 * *ret_suppressed says how many, for one counter row.
 */
#define ORC_REFUSAL_ROWS 10
bool orc_refusal_admit(orc_coord *c, const char *node, uint64_t *ret_suppressed);
