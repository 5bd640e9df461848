/* SPDX-License-Identifier: MIT */
/*
 * The API's operations (coordinator.h): each runs on a pooled PostgreSQL
 * connection in the calling (MHD) thread; every change is one transaction
 * with its audit rows. Nothing is written for a refused request.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uuid/uuid.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/loop.h"
#include "memory/pg.h"
#include "memory/store-workflows.h"
#include "orchestrator/coordinator-internal.h"
#include "orchestrator/cost.h"
#include "orchestrator/keys.h"
#include "orchestrator/secrets.h"
#include "orchestrator/workflow.h"

static const char *const workflow_states[] = {"pending",   "running", "paused",    "awaiting_human",
                                              "succeeded", "failed",  "cancelled", NULL};

/* ---- submit ---------------------------------------------------------------- */

/* The initial state of a step: a fallback stands by; one with needs waits; an approval waits for a human. */
static const char *initial_state(const orc_step *s) {
        if (s->is_fallback)
                return "standby";
        if (s->n_needs > 0)
                return "pending";
        return s->kind == ORC_STEP_APPROVAL ? "awaiting_human" : "ready";
}

/* A step's node selector as a JSON object. NULL when out of memory. */
static char *selector_json(const orc_step *s) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);

        if (!g)
                return NULL;
        au_json_gen_map_open(g);
        for (size_t k = 0; k < s->n_selector; k++)
                au_json_gen_kv_string(g, s->selector[k].key, s->selector[k].value);
        au_json_gen_map_close(g);
        return au_json_gen_finish(g, NULL);
}

/*
 * w's steps as rows to insert (v, n of them); texts[2i] and texts[2i + 1] get
 * step i's needs and selector JSON, which v points to (the caller frees them).
 */
static int new_steps(const orc_workflow *w, mem_store_new_step *v, char **texts) {
        size_t n = w->n_steps;

        for (size_t i = 0; i < n; i++) {
                const orc_step *s = &w->steps[i];

                texts[2 * i] = orc_json_string_array(s->needs, s->n_needs);
                texts[2 * i + 1] = selector_json(s);
                if (!texts[2 * i] || !texts[2 * i + 1])
                        return -ENOMEM;
                v[i] = (mem_store_new_step){.id = s->id,
                                            .kind = orc_step_kind_name(s->kind),
                                            .state = initial_state(s),
                                            .run_json = s->run_json ? s->run_json : "{}",
                                            .fallback = s->fallback,
                                            .needs_json = texts[2 * i],
                                            .program = s->program,
                                            .selector_json = texts[2 * i + 1],
                                            .max_attempts = s->max_attempts,
                                            .backoff_ms = s->backoff_ms,
                                            .max_backoff_ms = s->max_backoff_ms};
        }
        for (size_t i = 0; i < n; i++)
                if (w->steps[i].fallback)
                        for (size_t k = 0; k < n; k++)
                                if (strcmp(w->steps[k].id, w->steps[i].fallback) == 0)
                                        v[k].fallback_for = w->steps[i].id;
        return 0;
}

/* The audit rows of a submission: "submitted" with the document, "awaiting_approval" per approval waiting.
 */
static int audit_submitted(orc_audit *audit, const orc_workflow *w, const char *id, const char *actor,
                           const mem_store_new_step *v) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        _cleanup_json_ yajl_val tree = NULL;
        _cleanup_free_ char *d = NULL;
        char detail[512];

        if (!g)
                return -ENOMEM;
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "name", w->name);
        au_json_gen_kv_uint64(g, "steps", w->n_steps);
        au_json_gen_kv_string(g, "by", actor);
        au_json_gen_string(g, "spec");
        if (au_json_parse(w->json, strlen(w->json), 64u << 20, &tree, NULL) >= 0)
                au_json_gen_tree(g, tree);
        else
                au_json_gen_null(g);
        au_json_gen_map_close(g);
        d = au_json_gen_finish(g, NULL);
        if (!d || orc_audit_add(audit, id, "submitted", d) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < w->n_steps; i++)
                if (strcmp(v[i].state, "awaiting_human") == 0) {
                        /* ids are [A-Za-z0-9._-] */
                        snprintf(detail, sizeof(detail), "{\"step\":\"%s\"}", v[i].id);
                        orc_audit_add(audit, id, "awaiting_approval", detail);
                }
        return 0;
}

static int insert_workflow(orc_coord *c, PGconn *conn, const orc_workflow *w, const char *actor,
                           bool escalate, char ret_id[static 37], au_error *err) {
        size_t n = w->n_steps;
        _cleanup_free_ mem_store_new_step *v = calloc(n + 1, sizeof(mem_store_new_step));
        _cleanup_free_ char **texts = calloc(2 * n + 1, sizeof(char *));
        uuid_t u;
        orc_audit audit;
        int r = -ENOMEM;

        if (!v || !texts)
                return au_error_set(err, ENOMEM, "workflow");
        uuid_generate_random(u);
        uuid_unparse_lower(u, ret_id);
        orc_audit_init(&audit, actor);
        if (new_steps(w, v, texts) < 0)
                goto out;
        r = mem_pg_begin(conn, err);
        if (r >= 0)
                r = mem_store_workflow_insert(conn, ret_id, w->name, w->json, actor, v, n, escalate, err);
        if (r >= 0)
                r = audit_submitted(&audit, w, ret_id, actor, v);
        if (r >= 0)
                r = orc_audit_flush(c, conn, &audit, err);
        if (r >= 0)
                r = mem_pg_commit(conn, err);
        if (r >= 0) {
                orc_audit_event(&audit,
                                orc_json_event("workflow.submitted", ret_id, NULL,
                                               (const char *const[]){"name", w->name, "by", actor, NULL}));
                /* Events go out with the scheduler's next round; a submission must not wait on Redis. */
                for (size_t i = 0; i < audit.n_events; i++)
                        orc_outbox_event(c, audit.events[i]);
        }
out:
        if (r < 0)
                mem_pg_rollback(conn);
        orc_audit_done(&audit);
        for (size_t i = 0; i < 2 * n; i++)
                free(texts[i]);
        if (r == -ENOMEM)
                au_error_set(err, ENOMEM, "workflow");
        return r;
}

/*
 * Whether the actor's role may submit every run step's trust level under the
 * policy (its "roles"); answers 403 naming the first step that it may not.
 */
static bool roles_allow(orc_coord *c, const char *actor, const orc_workflow *w, orc_reply *ret) {
        const char *role = orc_role_to_string(orc_key_role(c, actor));

        for (size_t i = 0; i < w->n_steps; i++) {
                const orc_step *st = &w->steps[i];
                char allowed[64] = "";

                if (st->kind != ORC_STEP_RUN || sbx_policy_allows_role(&c->policy, st->trust, role))
                        continue;
                for (int k = 0; k < _SBX_ROLE_MAX; k++)
                        if (sbx_policy_allows_role(&c->policy, st->trust, sbx_role_to_string((sbx_role) k)))
                                snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed),
                                         "%s%s", allowed[0] ? ", " : "", sbx_role_to_string((sbx_role) k));
                orc_reply_error(ret, 403, "forbidden", "steps",
                                "step '%s' runs at the %s trust level, which role %s may not submit (the "
                                "policy allows %s)",
                                st->id, sbx_trust_to_string(st->trust), role ? role : "none",
                                allowed[0] ? allowed : "no role");
                return false;
        }
        return true;
}

static void submit_parsed(orc_coord *c, const char *actor, const orc_workflow *w, bool escalate,
                          orc_reply *ret, char ret_id[static 37]) {
        au_error err = {0};
        PGconn *conn;
        _cleanup_json_gen_ yajl_gen g = NULL;
        int r;

        if (orc_workflow_check_fabric(w, c->fabric, &err) < 0) {
                orc_reply_error(ret, 400, "invalid_workflow", err.field, "%s", err.msg);
                return;
        }
        if (!roles_allow(c, actor, w, ret))
                return;
        conn = orc_get_conn(c, ret);
        if (!conn)
                return;
        if (!orc_secrets_check(c, conn, w, ret)) { /* secrets.c: every secret a step names exists */
                orc_pool_put(c, conn);
                return;
        }
        r = insert_workflow(c, conn, w, actor, escalate, ret_id, &err);
        orc_pool_put(c, conn);
        if (r < 0) {
                orc_reply_db_error(c, ret, r, &err);
                return;
        }
        orc_wake_scheduler(c);
        au_log_kv(AU_LOG_INFO, (const char *const[]){"workflow", ret_id, NULL},
                  "workflow %s '%s' submitted by %s (%zu steps)", ret_id, w->name, actor, w->n_steps);
        g = au_json_gen_new(false);
        if (!g) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "id", ret_id);
        au_json_gen_kv_string(g, "name", w->name);
        au_json_gen_kv_string(g, "state", "running");
        au_json_gen_kv_uint64(g, "steps", w->n_steps);
        au_json_gen_map_close(g);
        orc_reply_json(ret, 201, g);
}

static bool parse_or_reply(orc_coord *c, const char *body, size_t len, orc_workflow **w, orc_reply *ret) {
        au_error err = {0};
        int r = orc_workflow_parse(body, len, c->cfg.max_body_bytes, &c->policy, w, &err);

        if (r == -E2BIG) {
                orc_reply_error(ret, 413, "payload_too_large", NULL, "%s", err.msg);
                return false;
        }
        if (r == -ENOMEM) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return false;
        }
        if (r < 0) {
                orc_reply_error(ret, 400, err.field[0] ? "invalid_workflow" : "invalid_json",
                                err.field[0] ? err.field : NULL, "%s", err.msg);
                return false;
        }
        return true;
}

void orc_workflow_submit(orc_coord *c, const char *actor, const char *body, size_t len, orc_reply *ret) {
        _cleanup_orc_workflow_ orc_workflow *w = NULL;
        char id[37];

        if (!parse_or_reply(c, body, len, &w, ret))
                return;
        submit_parsed(c, actor, w, true, ret, id);
}

/* ---- list / get ---------------------------------------------------------------- */

void orc_workflow_list(orc_coord *c, const char *state, unsigned limit, orc_reply *ret) {
        _cleanup_pgresult_ PGresult *res = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        au_error err = {0};
        bool known = !state;
        PGconn *conn;
        int r;

        for (size_t i = 0; state && workflow_states[i]; i++)
                known |= strcmp(state, workflow_states[i]) == 0;
        if (!known) {
                orc_reply_error(
                        ret, 400, "invalid_request", "state",
                        "state: '%.64s' is not a workflow state (pending, running, paused, awaiting_human, "
                        "succeeded, failed, cancelled)",
                        state);
                return;
        }
        if (limit == 0 || limit > 1000)
                limit = limit == 0 ? 100 : 1000;
        if (!(conn = orc_get_conn(c, ret)))
                return;
        r = mem_store_workflows_list(conn, state, limit, &res, &err);
        if (orc_put_conn(c, conn, ret, r, &err) < 0 || !(g = orc_reply_object_open(ret)))
                return;
        au_json_gen_string(g, "workflows");
        au_json_gen_array_open(g);
        for (int i = 0; i < PQntuples(res); i++) {
                _cleanup_json_ yajl_val counts = NULL;
                const char *cj = mem_pg_value(res, i, MEM_WFLIST_STEP_COUNTS);

                au_json_gen_map_open(g);
                orc_gen_kv_text(g, "id", mem_pg_value(res, i, MEM_WFLIST_ID));
                orc_gen_kv_text(g, "name", mem_pg_value(res, i, MEM_WFLIST_NAME));
                orc_gen_kv_text(g, "state", mem_pg_value(res, i, MEM_WFLIST_STATE));
                orc_gen_kv_text(g, "created_at", mem_pg_value(res, i, MEM_WFLIST_CREATED_AT));
                orc_gen_kv_text(g, "updated_at", mem_pg_value(res, i, MEM_WFLIST_UPDATED_AT));
                orc_gen_kv_text(g, "created_by", mem_pg_value(res, i, MEM_WFLIST_CREATED_BY));
                au_json_gen_string(g, "steps");
                au_json_gen_map_open(g);
                orc_gen_kv_num(g, "total", mem_pg_value(res, i, MEM_WFLIST_STEPS));
                if (cj && au_json_parse(cj, strlen(cj), 1 << 20, &counts, NULL) >= 0 &&
                    YAJL_IS_OBJECT(counts))
                        for (size_t k = 0; k < counts->u.object.len; k++) {
                                au_json_gen_string(g, counts->u.object.keys[k]);
                                au_json_gen_tree(g, counts->u.object.values[k]);
                        }
                au_json_gen_map_close(g);
                au_json_gen_map_close(g);
        }
        au_json_gen_array_close(g);
        orc_reply_object_close(ret, 200, g);
}

/* A step's stdout, at most STEP_STDOUT_MAX bytes of it (the whole is passed on to dependents). */
#define STEP_STDOUT_MAX (64u << 10)
static void gen_stdout(yajl_gen g, const char *key, const char *b64) {
        _cleanup_free_ char *raw = NULL;
        size_t n = 0;
        bool cut = false;

        au_json_gen_string(g, key);
        if (b64 && au_base64_decode(b64, strlen(b64), &raw, &n) >= 0) {
                cut = n > STEP_STDOUT_MAX;
                au_json_gen_stringn(g, raw, cut ? STEP_STDOUT_MAX : n);
        } else
                au_json_gen_null(g);
        if (cut)
                au_json_gen_kv_bool(g, "stdout_cut", true);
}

void orc_workflow_get(orc_coord *c, const char *id, orc_reply *ret) {
        _cleanup_pgresult_ PGresult *wf = NULL, *steps = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        au_error err = {0};
        PGconn *conn;
        int r;

        if (!orc_valid_uuid(id)) {
                orc_reply_error(ret, 404, "not_found", NULL, "no workflow '%.64s'", id);
                return;
        }
        if (!(conn = orc_get_conn(c, ret)))
                return;
        r = mem_store_workflow_get(conn, id, &wf, &steps, &err);
        if (orc_put_conn(c, conn, ret, r, &err) < 0)
                return;
        if (PQntuples(wf) == 0) {
                orc_reply_error(ret, 404, "not_found", NULL, "no workflow '%s'", id);
                return;
        }
        if (!(g = orc_reply_object_open(ret)))
                return;
        orc_gen_kv_text(g, "id", mem_pg_value(wf, 0, MEM_WF_ID));
        orc_gen_kv_text(g, "name", mem_pg_value(wf, 0, MEM_WF_NAME));
        orc_gen_kv_text(g, "state", mem_pg_value(wf, 0, MEM_WF_STATE));
        orc_gen_kv_text(g, "created_at", mem_pg_value(wf, 0, MEM_WF_CREATED_AT));
        orc_gen_kv_text(g, "updated_at", mem_pg_value(wf, 0, MEM_WF_UPDATED_AT));
        orc_gen_kv_text(g, "created_by", mem_pg_value(wf, 0, MEM_WF_CREATED_BY));
        au_json_gen_string(g, "steps");
        au_json_gen_array_open(g);
        for (int i = 0; i < PQntuples(steps); i++) {
                au_json_gen_map_open(g);
                orc_gen_kv_text(g, "id", mem_pg_value(steps, i, MEM_STEP_ID));
                orc_gen_kv_text(g, "kind", mem_pg_value(steps, i, MEM_STEP_KIND));
                orc_gen_kv_text(g, "state", mem_pg_value(steps, i, MEM_STEP_STATE));
                orc_gen_kv_num(g, "attempt", mem_pg_value(steps, i, MEM_STEP_ATTEMPT));
                orc_gen_kv_text(g, "node", mem_pg_value(steps, i, MEM_STEP_NODE));
                orc_gen_kv_raw(g, "needs", mem_pg_value(steps, i, MEM_STEP_NEEDS));
                orc_gen_kv_text(g, "fallback", mem_pg_value(steps, i, MEM_STEP_FALLBACK));
                orc_gen_kv_text(g, "fallback_for", mem_pg_value(steps, i, MEM_STEP_FALLBACK_FOR));
                orc_gen_kv_text(g, "outcome", mem_pg_value(steps, i, MEM_STEP_OUTCOME));
                orc_gen_kv_num(g, "exit_code", mem_pg_value(steps, i, MEM_STEP_EXIT_CODE));
                orc_gen_kv_num(g, "wall_ms", mem_pg_value(steps, i, MEM_STEP_WALL_MS));
                orc_gen_kv_num(g, "failures", mem_pg_value(steps, i, MEM_STEP_FAILURES));
                orc_gen_kv_text(g, "error", mem_pg_value(steps, i, MEM_STEP_ERROR));
                gen_stdout(g, "stdout", mem_pg_value(steps, i, MEM_STEP_OUTPUT_B64));
                if (mem_pg_value(steps, i, MEM_STEP_FABRIC))
                        orc_gen_kv_raw(g, "fabric", mem_pg_value(steps, i, MEM_STEP_FABRIC));
                orc_gen_kv_text(g, "updated_at", mem_pg_value(steps, i, MEM_STEP_UPDATED_AT));
                au_json_gen_map_close(g);
        }
        au_json_gen_array_close(g);
        orc_reply_object_close(ret, 200, g);
}

/* ---- actions ---------------------------------------------------------------- */

static void reply_state(orc_reply *ret, const char *id, const char *step, const char *state) {
        _cleanup_json_gen_ yajl_gen g = orc_reply_object_open(ret);

        if (!g)
                return;
        au_json_gen_kv_string(g, "id", id);
        if (step)
                au_json_gen_kv_string(g, "step", step);
        au_json_gen_kv_string(g, "state", state);
        orc_reply_object_close(ret, 200, g);
}

/*
 * For an action on workflow id, one of actions (NULL-terminated): a pooled
 * connection in a transaction with the workflow's row locked, *ret_state its
 * state (caller frees). NULL with ret set (404 for another action or no such
 * workflow, or the database error reply), the connection back in the pool.
 */
static PGconn *begin_on_workflow(orc_coord *c, const char *id, const char *action,
                                 const char *const *actions, char **ret_state, orc_reply *ret) {
        char known[64] = "";
        bool found = false;
        au_error err = {0};
        PGconn *conn;
        int r;

        for (size_t i = 0; actions[i]; i++) {
                found |= strcmp(action, actions[i]) == 0;
                snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "",
                         actions[i]);
        }
        if (!found) {
                orc_reply_error(ret, 404, "not_found", NULL, "no action '%.32s' (%s)", action, known);
                return NULL;
        }
        if (!orc_valid_uuid(id)) {
                orc_reply_error(ret, 404, "not_found", NULL, "no workflow '%.64s'", id);
                return NULL;
        }
        if (!(conn = orc_get_conn(c, ret)))
                return NULL;
        r = mem_pg_begin(conn, &err);
        if (r >= 0)
                r = mem_store_workflow_lock(conn, id, ret_state, &err);
        if (r < 0) {
                mem_pg_rollback(conn);
                orc_pool_put(c, conn);
                orc_reply_failed(c, ret, r, &err, "no workflow", id);
                return NULL;
        }
        return conn;
}

/* running, unless a run step still waits for a human after an escalation. */
static const char *resumed_state(PGconn *conn, const char *id, au_error *err) {
        bool escalated = false;

        if (mem_store_workflow_escalated(conn, id, &escalated, err) < 0)
                return NULL;
        return escalated ? "awaiting_human" : "running";
}

void orc_workflow_action(orc_coord *c, const char *actor, const char *id, const char *action,
                         orc_reply *ret) {
        _cleanup_free_ char *state = NULL;
        _cleanup_pgresult_ PGresult *killed = NULL;
        au_error err = {0};
        orc_audit audit;
        const char *new_state = NULL;
        PGconn *conn;
        int r;

        conn = begin_on_workflow(c, id, action, (const char *const[]){"pause", "resume", "cancel", NULL},
                                 &state, ret);
        if (!conn)
                return;
        orc_audit_init(&audit, actor);

        if (strcmp(action, "pause") == 0) {
                if (strcmp(state, "running") != 0 && strcmp(state, "awaiting_human") != 0) {
                        orc_reply_error(ret, 409, "conflict", NULL, "cannot pause: workflow is %s", state);
                        goto out;
                }
                new_state = "paused";
        } else if (strcmp(action, "resume") == 0) {
                if (strcmp(state, "paused") != 0) {
                        orc_reply_error(ret, 409, "conflict", NULL,
                                        "cannot resume: workflow is %s, not paused", state);
                        goto out;
                }
                new_state = resumed_state(conn, id, &err);
                if (!new_state) {
                        r = -EIO;
                        goto db_error;
                }
        } else {
                if (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
                    strcmp(state, "cancelled") == 0) {
                        orc_reply_error(ret, 409, "conflict", NULL, "cannot cancel: workflow is %s already",
                                        state);
                        goto out;
                }
                new_state = "cancelled";
                r = mem_store_workflow_cancel_steps(conn, id, &killed, &err);
                if (r < 0)
                        goto db_error;
        }
        r = mem_store_workflow_set_state(conn, id, new_state, &err);
        if (r < 0)
                goto db_error;
        {
                char detail[256];
                snprintf(detail, sizeof(detail), "{\"from\":\"%s\",\"to\":\"%s\",\"steps_cancelled\":%d}",
                         state, new_state, killed ? PQntuples(killed) : 0);
                orc_audit_add(&audit, id,
                              strcmp(action, "pause") == 0    ? "paused"
                              : strcmp(action, "resume") == 0 ? "resumed"
                                                              : "cancelled",
                              detail);
        }
        r = orc_audit_flush(c, conn, &audit, &err);
        if (r >= 0)
                r = mem_pg_commit(conn, &err);
        if (r < 0)
                goto db_error;
        /* Running sandboxes end on their nodes: a cancel for each run in flight. */
        for (int i = 0; killed && i < PQntuples(killed); i++) {
                const char *node = mem_pg_value(killed, i, MEM_CANCELLED_NODE);
                char run_id[256];
                /* a model or agent step's call (node "fabric:<coordinator>") ends in its worker */
                if (!node || strncmp(node, "fabric:", 7) == 0)
                        continue;
                snprintf(run_id, sizeof(run_id), "%s.%s.%s", id, mem_pg_value(killed, i, MEM_CANCELLED_STEP),
                         mem_pg_value(killed, i, MEM_CANCELLED_ATTEMPT));
                orc_outbox_cancel(c, node, run_id);
        }
        {
                char *ev = orc_json_event(strcmp(action, "cancel") == 0 ? "workflow.finished"
                                                                        : "workflow.state",
                                          id, NULL, (const char *const[]){"state", new_state, NULL});
                if (ev)
                        orc_outbox_event(c, ev);
                free(ev);
        }
        if (strcmp(action, "cancel") == 0)
                orc_signal_done(c);
        orc_wake_scheduler(c);
        log_info("workflow %s: %s by %s (%s -> %s)", id, action, actor, state, new_state);
        reply_state(ret, id, NULL, new_state);
        goto out;

db_error:
        mem_pg_rollback(conn);
        orc_reply_db_error(c, ret, r, &err);
out:
        mem_pg_rollback(conn);
        orc_pool_put(c, conn);
        orc_audit_done(&audit);
}

void orc_step_action(orc_coord *c, const char *actor, const char *id, const char *step, const char *action,
                     orc_reply *ret) {
        _cleanup_free_ char *wstate = NULL;
        _cleanup_pgresult_ PGresult *row = NULL;
        au_error err = {0};
        orc_audit audit;
        const char *sstate, *kind, *new_state = NULL, *fallback;
        PGconn *conn;
        int r;

        conn = begin_on_workflow(c, id, action, (const char *const[]){"approve", "retry", "skip", NULL},
                                 &wstate, ret);
        if (!conn)
                return;
        orc_audit_init(&audit, actor);
        r = mem_store_step_lock(conn, id, step, &row, &err);
        if (r < 0)
                goto db_error;
        if (PQntuples(row) == 0) {
                orc_reply_error(ret, 404, "not_found", NULL, "workflow %s has no step '%.64s'", id, step);
                goto out;
        }
        sstate = mem_pg_value(row, 0, MEM_LOCKED_STATE);
        kind = mem_pg_value(row, 0, MEM_LOCKED_KIND);
        fallback = mem_pg_value(row, 0, MEM_LOCKED_FALLBACK);
        if (strcmp(wstate, "succeeded") == 0 || strcmp(wstate, "failed") == 0 ||
            strcmp(wstate, "cancelled") == 0) {
                orc_reply_error(ret, 409, "conflict", NULL, "cannot %s: workflow is %s", action, wstate);
                goto out;
        }
        /* Two people: whoever submitted the workflow does not approve its approval steps. */
        if (strcmp(action, "approve") == 0 && strcmp(kind, "approval") == 0 &&
            !c->cfg.approval_by_submitter && mem_pg_value(row, 0, MEM_LOCKED_CREATED_BY) &&
            strcmp(mem_pg_value(row, 0, MEM_LOCKED_CREATED_BY), actor) == 0) {
                orc_reply_error(
                        ret, 403, "forbidden", NULL,
                        "key '%s' submitted workflow %s and may not approve its step '%s': an approval "
                        "comes from someone else (approval_by_submitter = no)",
                        actor, id, step);
                goto out;
        }
        if (strcmp(action, "retry") == 0) {
                if (strcmp(kind, "run") != 0 ||
                    (strcmp(sstate, "awaiting_human") != 0 && strcmp(sstate, "failed") != 0)) {
                        orc_reply_error(
                                ret, 409, "conflict", NULL,
                                "cannot retry step '%s': it is %s (retry needs a failed run step, or one "
                                "awaiting a human)",
                                step, sstate);
                        goto out;
                }
                new_state = "ready";
                r = mem_store_step_retry_by_human(conn, id, step, fallback, &err);
        } else {
                if (strcmp(sstate, "awaiting_human") != 0) {
                        orc_reply_error(ret, 409, "conflict", NULL,
                                        "cannot %s step '%s': it is %s, not awaiting_human", action, step,
                                        sstate);
                        goto out;
                }
                new_state = strcmp(action, "approve") == 0 ? "succeeded" : "skipped";
                r = mem_store_step_set_state(conn, id, step, new_state, &err);
        }
        if (r < 0)
                goto db_error;
        {
                char detail[256];
                snprintf(detail, sizeof(detail),
                         "{\"step\":\"%s\",\"kind\":\"%s\",\"from\":\"%s\",\"to\":\"%s\"}", step, kind,
                         sstate, new_state);
                orc_audit_add(&audit, id,
                              strcmp(action, "approve") == 0 ? "approved"
                              : strcmp(action, "retry") == 0 ? "retried"
                                                             : "skipped",
                              detail);
        }
        /* The workflow goes on unless another escalated step still waits (or it is paused). */
        if (strcmp(wstate, "awaiting_human") == 0) {
                const char *next = resumed_state(conn, id, &err);
                if (!next) {
                        r = -EIO;
                        goto db_error;
                }
                r = mem_store_workflow_set_state(conn, id, next, &err);
                if (r < 0)
                        goto db_error;
        }
        {
                const char *wfs[1] = {id};
                r = orc_progress(c, conn, wfs, 1, &audit, &err);
        }
        if (r >= 0)
                r = orc_audit_flush(c, conn, &audit, &err);
        if (r >= 0)
                r = mem_pg_commit(conn, &err);
        if (r < 0)
                goto db_error;
        for (size_t i = 0; i < audit.n_events; i++)
                orc_outbox_event(c, audit.events[i]);
        orc_wake_scheduler(c);
        log_info("workflow %s step %s: %s by %s (%s -> %s)", id, step, action, actor, sstate, new_state);
        reply_state(ret, id, step, new_state);
        goto out;

db_error:
        mem_pg_rollback(conn);
        orc_reply_db_error(c, ret, r, &err);
out:
        mem_pg_rollback(conn);
        orc_pool_put(c, conn);
        orc_audit_done(&audit);
}

/* ---- simulate ---------------------------------------------------------------- */

typedef struct sim_step {
        long history;
        double p50, p95, success;
        bool has;
        double finish50, finish95; /* earliest finish along the critical path */
        int prev;                  /* predecessor on the critical path */
        bool model, agent;         /* a model or agent step: cost is its estimate */
        orc_step_cost cost;
} sim_step;

/*
 * The model and agent steps' worst-case cost (orchestrator/cost.h), read from
 * the document itself; *ret_total gets the sum of those priced. Returns -ENOMEM.
 */
static int sim_model_cost(orc_coord *c, const orc_workflow *w, sim_step *s, double *ret_total) {
        _cleanup_json_ yajl_val doc = NULL;
        double total = 0;

        if (au_json_parse(w->json, strlen(w->json), 64u << 20, &doc, NULL) < 0)
                return -ENOMEM; /* it parsed once already */
        yajl_val steps = au_json_get(doc, "steps");
        for (size_t i = 0; YAJL_IS_ARRAY(steps) && i < w->n_steps && i < steps->u.array.len; i++) {
                yajl_val st = steps->u.array.values[i], kind = au_json_get(st, "kind");
                s[i].model = orc_step_cost_estimate(c->fabric, st, &s[i].cost) == 0;
                s[i].agent = s[i].model && YAJL_IS_STRING(kind) && strcmp(kind->u.string, "agent") == 0;
                if (s[i].model && s[i].cost.priced)
                        total += s[i].cost.usd;
        }
        *ret_total = total;
        return 0;
}

/* Each step's history: the newest 200 runs of the same program (argv). false with ret set on a failure. */
static bool sim_history(orc_coord *c, const orc_workflow *w, sim_step *s, orc_reply *ret) {
        au_error err = {0};
        PGconn *conn;
        int r = 0;

        if (!(conn = orc_get_conn(c, ret)))
                return false;
        for (size_t i = 0; i < w->n_steps && r >= 0; i++) {
                _cleanup_pgresult_ PGresult *res = NULL;
                if (!w->steps[i].program)
                        continue;
                r = mem_store_program_history(conn, w->steps[i].program, &res, &err);
                if (r >= 0 && mem_pg_value(res, 0, MEM_HISTORY_RUNS)) {
                        s[i].history = atol(mem_pg_value(res, 0, MEM_HISTORY_RUNS));
                        if (s[i].history > 0) {
                                s[i].has = true;
                                s[i].p50 = atof(mem_pg_value(res, 0, MEM_HISTORY_P50_MS));
                                s[i].p95 = atof(mem_pg_value(res, 0, MEM_HISTORY_P95_MS));
                                s[i].success = atof(mem_pg_value(res, 0, MEM_HISTORY_SUCCESS));
                        }
                }
        }
        return orc_put_conn(c, conn, ret, r, &err) >= 0;
}

/*
 * Critical path: the longest p50 path through the DAG, in topological order
 * (standby fallbacks are not on it). Returns its last step (-1: none);
 * *ret_prob gets the probability that every step succeeds, with its retries.
 */
static int sim_critical_path(const orc_workflow *w, const size_t *order, sim_step *s, double *ret_prob) {
        double prob = 1.0;
        int end = -1;

        for (size_t k = 0; k < w->n_steps; k++) {
                size_t i = order[k];
                const orc_step *st = &w->steps[i];
                double start50 = 0, start95 = 0;
                s[i].prev = -1;
                for (size_t j = 0; j < st->n_needs; j++) {
                        const orc_step *need = orc_workflow_step(w, st->needs[j]);
                        int ni = need ? (int) (need - w->steps) : -1;
                        if (ni >= 0 && s[ni].finish50 >= start50) {
                                start50 = s[ni].finish50;
                                s[i].prev = ni;
                        }
                        if (ni >= 0 && s[ni].finish95 > start95)
                                start95 = s[ni].finish95;
                }
                s[i].finish50 = start50 + (st->is_fallback ? 0 : s[i].p50);
                s[i].finish95 = start95 + (st->is_fallback ? 0 : s[i].p95);
                if (!st->is_fallback && (end < 0 || s[i].finish50 > s[end].finish50))
                        end = (int) i;
                if (!st->is_fallback && s[i].has) {
                        /* With retries, a step fails only when every attempt does. */
                        double fail = pow(1.0 - s[i].success, st->max_attempts);
                        prob *= 1.0 - fail;
                }
        }
        *ret_prob = prob;
        return end;
}

/* key: v with that many decimals as a JSON number, or null when not known. */
static void gen_kv_double(yajl_gen g, const char *key, int decimals, double v, bool known) {
        char buf[64];

        au_json_gen_string(g, key);
        if (!known) {
                au_json_gen_null(g);
                return;
        }
        snprintf(buf, sizeof(buf), "%.*f", decimals, v);
        yajl_gen_number(g, buf, strlen(buf));
}

/* "model_cost": the estimate of a model or agent step, null for the others. */
static void gen_sim_cost(yajl_gen g, const sim_step *s) {
        const orc_step_cost *k = &s->cost;

        au_json_gen_string(g, "model_cost");
        if (!s->model) {
                au_json_gen_null(g);
                return;
        }
        au_json_gen_map_open(g);
        gen_kv_double(g, "usd", 6, k->usd, k->priced);
        au_json_gen_kv_string(g, "role", k->role);
        au_json_gen_kv_string(g, "provider", k->provider);
        au_json_gen_kv_string(g, "model", k->model);
        au_json_gen_kv_uint64(g, "calls", k->calls);
        au_json_gen_kv_uint64(g, "input_tokens", k->input_tokens);
        au_json_gen_kv_uint64(g, "output_tokens", k->output_tokens);
        au_json_gen_kv_string(g, "basis", k->basis);
        au_json_gen_map_close(g);
}

static void gen_sim_steps(yajl_gen g, const orc_workflow *w, const sim_step *s) {
        au_json_gen_string(g, "steps");
        au_json_gen_array_open(g);
        for (size_t i = 0; i < w->n_steps; i++) {
                au_json_gen_map_open(g);
                au_json_gen_kv_string(g, "id", w->steps[i].id);
                au_json_gen_kv_string(g, "kind",
                                      s[i].agent                              ? "agent"
                                      : s[i].model                            ? "model"
                                      : w->steps[i].kind == ORC_STEP_APPROVAL ? "approval"
                                                                              : "run");
                au_json_gen_kv_string(g, "program", w->steps[i].program);
                au_json_gen_kv_uint64(g, "history", (uint64_t) s[i].history);
                gen_kv_double(g, "p50_ms", 0, s[i].p50, s[i].has);
                gen_kv_double(g, "p95_ms", 0, s[i].p95, s[i].has);
                gen_kv_double(g, "success_probability", 4, s[i].success, s[i].has);
                gen_sim_cost(g, &s[i]);
                au_json_gen_map_close(g);
        }
        au_json_gen_array_close(g);
}

static void gen_sim_critical_path(yajl_gen g, const orc_workflow *w, const sim_step *s, int end) {
        _cleanup_free_ int *path = calloc(w->n_steps + 1, sizeof(int));
        double p95 = 0;
        size_t np = 0;

        au_json_gen_string(g, "critical_path");
        au_json_gen_map_open(g);
        au_json_gen_string(g, "steps");
        au_json_gen_array_open(g);
        for (int i = end; path && i >= 0 && np < w->n_steps; i = s[i].prev)
                path[np++] = i;
        while (path && np > 0)
                au_json_gen_string(g, w->steps[path[--np]].id);
        au_json_gen_array_close(g);
        for (size_t i = 0; i < w->n_steps; i++)
                if (s[i].finish95 > p95)
                        p95 = s[i].finish95;
        gen_kv_double(g, "p50_ms", 0, end >= 0 ? s[end].finish50 : 0.0, true);
        gen_kv_double(g, "p95_ms", 0, p95, true);
        au_json_gen_map_close(g);
}

static void gen_risk(yajl_gen g, const char *step, const char *kind, const char *msg) {
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "step", step);
        au_json_gen_kv_string(g, "kind", kind);
        au_json_gen_kv_string(g, "message", msg);
        au_json_gen_map_close(g);
}

static void gen_sim_risks(yajl_gen g, const orc_workflow *w, const sim_step *s) {
        au_json_gen_string(g, "risks");
        au_json_gen_array_open(g);
        for (size_t i = 0; i < w->n_steps; i++) {
                const orc_step *st = &w->steps[i];
                char msg[300];
                if (st->kind == ORC_STEP_APPROVAL) {
                        snprintf(msg, sizeof(msg), "step '%s' waits for an operator's approval", st->id);
                        gen_risk(g, st->id, "approval", msg);
                        continue;
                }
                if (s[i].model && !s[i].cost.priced) {
                        snprintf(msg, sizeof(msg), "step '%s': model cost unknown: %s", st->id,
                                 s[i].cost.basis);
                        gen_risk(g, st->id, "model_cost_unknown", msg);
                }
                if (!s[i].has && st->kind == ORC_STEP_RUN) { /* model and agent steps run no program */
                        snprintf(msg, sizeof(msg),
                                 "step '%s': no recorded runs of this program; duration unknown", st->id);
                        gen_risk(g, st->id, "no_history", msg);
                } else if (s[i].success < 0.8) {
                        snprintf(msg, sizeof(msg), "step '%s': %.0f%% of its last %ld runs failed", st->id,
                                 100.0 * (1.0 - s[i].success), s[i].history);
                        gen_risk(g, st->id, "high_failure_rate", msg);
                }
                if (st->trust == SBX_TRUST_ELEVATED || st->trust == SBX_TRUST_PRIVILEGED) {
                        snprintf(msg, sizeof(msg), "step '%s' runs at the %s trust level", st->id,
                                 sbx_trust_to_string(st->trust));
                        gen_risk(g, st->id, "elevated_trust", msg);
                }
        }
        au_json_gen_array_close(g);
}

void orc_workflow_simulate(orc_coord *c, const char *body, size_t len, orc_reply *ret) {
        _cleanup_orc_workflow_ orc_workflow *w = NULL;
        _cleanup_free_ sim_step *s = NULL;
        _cleanup_free_ size_t *order = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        double prob = 1.0, model_usd = 0;
        int end;

        if (!parse_or_reply(c, body, len, &w, ret))
                return;
        s = calloc(w->n_steps, sizeof(sim_step));
        order = calloc(w->n_steps, sizeof(size_t));
        if (!s || !order || orc_workflow_topo_order(w, order) < 0 ||
            sim_model_cost(c, w, s, &model_usd) < 0) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        if (!sim_history(c, w, s, ret))
                return;
        end = sim_critical_path(w, order, s, &prob);
        if (!(g = orc_reply_object_open(ret)))
                return;
        au_json_gen_kv_string(g, "name", w->name);
        gen_sim_steps(g, w, s);
        gen_sim_critical_path(g, w, s, end);
        gen_kv_double(g, "success_probability", 4, prob, true);
        gen_kv_double(g, "model_cost_usd", 6, model_usd, true);
        gen_sim_risks(g, w, s);
        orc_reply_object_close(ret, 200, g);
}

/* ---- one-off runs ---------------------------------------------------------------- */

/*
 * A run spec as a one-step workflow document:
 * {"name":"run","steps":[{"id":"run","run":<spec minus node_selector>,"node_selector":...}]}.
 * NULL when out of memory.
 */
static char *run_as_workflow(yajl_val spec, size_t *ret_len) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);

        if (!g)
                return NULL;
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "name", "run");
        au_json_gen_string(g, "steps");
        au_json_gen_array_open(g);
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "id", "run");
        au_json_gen_string(g, "run");
        au_json_gen_map_open(g);
        for (size_t i = 0; i < spec->u.object.len; i++) {
                if (strcmp(spec->u.object.keys[i], "node_selector") == 0)
                        continue;
                au_json_gen_string(g, spec->u.object.keys[i]);
                au_json_gen_tree(g, spec->u.object.values[i]);
        }
        au_json_gen_map_close(g);
        for (size_t i = 0; i < spec->u.object.len; i++)
                if (strcmp(spec->u.object.keys[i], "node_selector") == 0) {
                        au_json_gen_string(g, "node_selector");
                        au_json_gen_tree(g, spec->u.object.values[i]);
                }
        au_json_gen_map_close(g);
        au_json_gen_array_close(g);
        au_json_gen_map_close(g);
        return au_json_gen_finish(g, ret_len);
}

/* The run's body parsed into its one-step workflow; false with ret set (naming the run's own field). */
static bool parse_run(orc_coord *c, const char *body, size_t len, orc_workflow **ret_w, orc_reply *ret) {
        _cleanup_json_ yajl_val spec = NULL;
        _cleanup_free_ char *doc = NULL;
        au_error err = {0};
        size_t doc_len = 0;
        int r;

        r = au_json_parse(body, len, c->cfg.max_body_bytes, &spec, &err);
        if (r == -E2BIG) {
                orc_reply_error(ret, 413, "payload_too_large", NULL, "%s", err.msg);
                return false;
        }
        if (r < 0) {
                orc_reply_error(ret, 400, "invalid_json", NULL, "%s", err.msg);
                return false;
        }
        if (!YAJL_IS_OBJECT(spec)) {
                orc_reply_error(ret, 400, "invalid_request", NULL, "a run is a JSON object (a run spec)");
                return false;
        }
        doc = run_as_workflow(spec, &doc_len);
        if (!doc) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return false;
        }
        r = orc_workflow_parse(doc, doc_len, c->cfg.max_body_bytes * 2, &c->policy, ret_w, &err);
        if (r < 0) {
                /* Name the run's own field, not the wrapper's. */
                const char *f = err.field;
                const char *m = err.msg;
                if (strncmp(f, "steps.run.run.", 14) == 0)
                        f += 14;
                else if (strncmp(f, "steps.run.", 10) == 0)
                        f += 10;
                if (strncmp(m, "step 'run': run.", 16) == 0)
                        m += 16;
                orc_reply_error(ret, r == -ENOMEM ? 500 : 400, r == -ENOMEM ? "internal" : "invalid_request",
                                f[0] ? f : NULL, "%s", m);
                return false;
        }
        return true;
}

/*
 * Waits until workflow id ends or deadline (CLOCK_MONOTONIC ms) passes, waking
 * when a workflow ends and every 250 ms. state gets its last state seen;
 * returns the newest result (JSON; caller frees), or NULL when it did not end.
 */
static char *wait_for_run(orc_coord *c, const char *id, uint64_t deadline, char state[static 32]) {
        while (!atomic_load(&c->stop)) {
                _cleanup_pgresult_ PGresult *res = NULL;
                PGconn *conn = orc_pool_get(c, NULL);
                uint64_t gen;
                struct timespec ts;

                pthread_mutex_lock(&c->done_lock);
                gen = c->done_gen;
                pthread_mutex_unlock(&c->done_lock);
                if (conn) {
                        int r = mem_store_workflow_outcome(conn, id, &res, NULL);
                        orc_pool_put(c, conn);
                        if (r >= 0 && PQntuples(res) == 1) {
                                snprintf(state, 32, "%s", mem_pg_value(res, 0, MEM_OUTCOME_STATE));
                                if (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
                                    strcmp(state, "cancelled") == 0) {
                                        const char *rv = mem_pg_value(res, 0, MEM_OUTCOME_RESULT);
                                        return rv ? strdup(rv) : NULL;
                                }
                        }
                }
                if (au_now_ms() >= deadline)
                        break;
                ts = au_deadline_after(CLOCK_REALTIME, 250);
                pthread_mutex_lock(&c->done_lock);
                while (c->done_gen == gen && !atomic_load(&c->stop))
                        if (pthread_cond_timedwait(&c->done_cond, &c->done_lock, &ts) != 0)
                                break;
                pthread_mutex_unlock(&c->done_lock);
        }
        return NULL;
}

void orc_run_submit(orc_coord *c, const char *actor, const char *body, size_t len, bool wait,
                    orc_reply *ret) {
        _cleanup_orc_workflow_ orc_workflow *w = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        _cleanup_free_ char *result = NULL;
        char id[37], state[32] = "running";

        if (!parse_run(c, body, len, &w, ret))
                return;
        submit_parsed(c, actor, w, false, ret, id);
        if (ret->status != 201)
                return;
        /* Waiting: for the end, the run's wall limit and 30 s more (placement, queues). */
        if (wait)
                result = wait_for_run(c, id, au_now_ms() + w->steps[0].wall_ms + 30000, state);
        orc_reply_done(ret);
        if (!(g = orc_reply_object_open(ret)))
                return;
        au_json_gen_kv_string(g, "id", id);
        au_json_gen_kv_string(g, "state", state);
        if (wait)
                orc_gen_kv_raw(g, "result", result);
        orc_reply_object_close(ret, wait && result ? 200 : 202, g);
}

/* ---- nodes, health ---------------------------------------------------------------- */

void orc_nodes_list(orc_coord *c, orc_reply *ret) {
        _cleanup_free_ orc_node *nodes = calloc(ORC_MAX_NODES, sizeof(orc_node));
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        size_t n;

        if (!nodes || !g) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        n = orc_nodes_view(c, nodes, ORC_MAX_NODES);
        au_json_gen_map_open(g);
        au_json_gen_string(g, "nodes");
        au_json_gen_array_open(g);
        for (size_t i = 0; i < n; i++) {
                char ts[64];
                time_t t = (time_t) (nodes[i].last_seen_ms / 1000);
                struct tm tm;

                au_json_gen_map_open(g);
                au_json_gen_kv_string(g, "id", nodes[i].id);
                au_json_gen_kv_string(g, "state", nodes[i].alive ? "healthy" : "lost");
                au_json_gen_kv_uint64(g, "capacity", nodes[i].capacity);
                au_json_gen_kv_uint64(g, "running", nodes[i].running);
                au_json_gen_kv_uint64(g, "queued", nodes[i].queued);
                au_json_gen_kv_uint64(g, "inflight", nodes[i].inflight);
                au_json_gen_string(g, "labels");
                au_json_gen_map_open(g);
                {
                        char copy[1024], *save = NULL;
                        snprintf(copy, sizeof(copy), "%s", nodes[i].labels);
                        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                                char *eq = strchr(tok, '=');
                                if (!eq)
                                        continue;
                                *eq = '\0';
                                au_json_gen_kv_string(g, tok, eq + 1);
                        }
                }
                au_json_gen_map_close(g);
                au_json_gen_kv_string(g, "version", nodes[i].version[0] ? nodes[i].version : NULL);
                au_json_gen_string(g, "last_seen");
                if (nodes[i].last_seen_ms && gmtime_r(&t, &tm)) {
                        snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                                 (int) (nodes[i].last_seen_ms % 1000));
                        au_json_gen_string(g, ts);
                } else
                        au_json_gen_null(g);
                au_json_gen_kv_bool(g, "draining", nodes[i].draining);
                orc_gen_kv_text(g, "drain_since", nodes[i].draining ? nodes[i].drain_since : NULL);
                orc_gen_kv_text(g, "drained_by", nodes[i].draining ? nodes[i].drained_by : NULL);
                au_json_gen_map_close(g);
        }
        au_json_gen_array_close(g);
        au_json_gen_map_close(g);
        orc_reply_json(ret, 200, g);
}

void orc_health(orc_coord *c, orc_reply *ret) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        PGconn *conn = orc_pool_get(c, NULL);
        bool db = false, redis = atomic_load(&c->redis_up);

        if (conn) {
                db = mem_store_alive(conn);
                orc_pool_put(c, conn);
        }
        if (!g) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "status", db && redis ? "ok" : "degraded");
        au_json_gen_kv_bool(g, "db", db);
        au_json_gen_kv_bool(g, "redis", redis);
        au_json_gen_kv_string(g, "coordinator", c->id);
        au_json_gen_map_close(g);
        orc_reply_json(ret, db && redis ? 200 : 503, g);
        if (!(db && redis))
                ret->retry_after_s = 2;
}
