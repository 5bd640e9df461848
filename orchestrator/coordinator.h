/* SPDX-License-Identifier: MIT */
/*
 * The coordinator's operations, as the HTTP API (api.c) calls them. Every
 * function is thread-safe (the API runs a thread per connection) and answers
 * with an orc_reply: the HTTP status and a JSON body, the body of an error
 * being {"error":{"code","message","field"}} as doc/api.md lists.
 * The body is malloc'd; the caller frees it (orc_reply_done).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/error.h"

typedef struct orc_coord orc_coord;

typedef enum orc_role {
        ORC_ROLE_NONE = 0,
        ORC_ROLE_VIEWER = 1,
        ORC_ROLE_OPERATOR = 2,
        ORC_ROLE_ADMIN = 3,
} orc_role;

const char *orc_role_to_string(orc_role r);
orc_role orc_role_from_string(const char *s); /* ORC_ROLE_NONE when unknown */

typedef struct orc_reply {
        int status;
        char *body; /* JSON (or Prometheus text for metrics), NUL-terminated */
        size_t len;
        unsigned retry_after_s; /* 503: when to try again, 0 when unknown */
} orc_reply;

void orc_reply_done(orc_reply *r);
/* Fills r with an error document; returns 0 (or -ENOMEM). field may be NULL. */
int orc_reply_error(orc_reply *r, int status, const char *code, const char *field, const char *fmt, ...)
        _printf_(5, 6);

/*
 * Looks up a bearer key: constant-time against every stored key hash (the
 * keys are cached and reloaded from PostgreSQL every few seconds). On a match
 * fills ret_name (key name, up to 128 bytes with NUL) and *ret_role and
 * returns 0; -ENOKEY for no match or a revoked key; -EAGAIN while the key
 * table was never loaded and PostgreSQL is away.
 */
int orc_auth(orc_coord *c, const char *key, char ret_name[static 129], orc_role *ret_role);

/* `actor` is the key name, recorded in the audit trail. */
void orc_workflow_submit(orc_coord *c, const char *actor, const char *body, size_t len, orc_reply *ret);
void orc_workflow_list(orc_coord *c, const char *state, unsigned limit, orc_reply *ret);
void orc_workflow_get(orc_coord *c, const char *id, orc_reply *ret);
/* action: "pause", "resume" or "cancel". */
void orc_workflow_action(orc_coord *c, const char *actor, const char *id, const char *action,
                         orc_reply *ret);
/* action: "approve", "retry" or "skip". */
void orc_step_action(orc_coord *c, const char *actor, const char *id, const char *step, const char *action,
                     orc_reply *ret);
void orc_workflow_audit(orc_coord *c, const char *id, bool verify, orc_reply *ret);
void orc_workflow_simulate(orc_coord *c, const char *body, size_t len, orc_reply *ret);
/* wait: block until the run ends (or its wall limit + 30 s). */
void orc_run_submit(orc_coord *c, const char *actor, const char *body, size_t len, bool wait,
                    orc_reply *ret);
void orc_nodes_list(orc_coord *c, orc_reply *ret);
void orc_health(orc_coord *c, orc_reply *ret);
void orc_metrics(orc_coord *c, orc_reply *ret); /* text/plain; version=0.0.4 */
/* Counts one answered HTTP request by its status code (autoos_coordinator_http_requests_total). */
void orc_count_request(orc_coord *c, unsigned status);

/* The Redis URL the coordinator uses (for the events reader). */
const char *orc_redis_url(const orc_coord *c);

/* ---- lifecycle (main.c) ---- */
typedef struct orc_config orc_config;

/*
 * Loads the policy, checks that PostgreSQL holds the schema this build
 * needs (else: "run autoos-coordinator --migrate") and sets up metrics.
 * Starts nothing yet. cfg is copied.
 */
int orc_coord_new(const orc_config *cfg, orc_coord **ret, au_error *err);
/* Starts the scheduler, results and monitor threads. */
int orc_coord_start(orc_coord *c, au_error *err);
/* Tells every thread and every waiting request (POST /v1/runs?wait=1) to end; returns at once. */
void orc_coord_shutdown(orc_coord *c);
/* Stops and joins the threads, closes everything. Accepts NULL, returns NULL. */
orc_coord *orc_coord_free(orc_coord *c);

/* `--migrate`: applies cfg->sql_dir's migrations to cfg->db; *ret_applied gets how many. */
int orc_migrate(const orc_config *cfg, unsigned *ret_applied, au_error *err);
/*
 * `--audit-checkpoint-all`: signs a checkpoint of the head of every audit
 * chain not yet covered by one of cfg->audit_key's (rows written before
 * signing began). *ret_signed gets how many.
 */
int orc_audit_checkpoint_all(const orc_config *cfg, unsigned *ret_signed, au_error *err);

/* `--create-key`: stores a new key's SHA-256 and returns the key (caller frees). */
int orc_create_key(const orc_config *cfg, const char *name, orc_role role, char **ret_key, au_error *err);
