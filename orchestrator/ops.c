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

#include "common/json.h"
#include "common/log.h"
#include "common/loop.h"
#include "memory/pg.h"
#include "orchestrator/coordinator-internal.h"
#include "orchestrator/keys.h"
#include "orchestrator/secrets.h"
#include "orchestrator/workflow.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static const char *const workflow_states[] = {"pending",   "running", "paused",    "awaiting_human",
                                              "succeeded", "failed",  "cancelled", NULL};

/* ---- submit ---------------------------------------------------------------- */

static int insert_workflow(orc_coord *c, PGconn *conn, const orc_workflow *w, const char *actor,
                           bool escalate, char ret_id[static 37], au_error *err) {
        size_t n = w->n_steps;
        _cleanup_free_ char **ids = calloc(n, sizeof(char *)), **kinds = calloc(n, sizeof(char *)),
                            **states = calloc(n, sizeof(char *)), **specs = calloc(n, sizeof(char *)),
                            **fallbacks = calloc(n, sizeof(char *)), **needs = calloc(n, sizeof(char *)),
                            **programs = calloc(n, sizeof(char *)), **selectors = calloc(n, sizeof(char *)),
                            **maxa = calloc(n, sizeof(char *)), **back = calloc(n, sizeof(char *)),
                            **maxb = calloc(n, sizeof(char *)), **fbfor = calloc(n, sizeof(char *)),
                            **pos = calloc(n, sizeof(char *));
        char *arrays[13] = {0};
        const char *params[16];
        char detail[512], escalate_s[2] = {escalate ? 't' : 'f', 0};
        uuid_t u;
        orc_audit audit;
        int r = -ENOMEM;

        if (!ids || !kinds || !states || !specs || !fallbacks || !needs || !programs || !selectors ||
            !maxa || !back || !maxb || !fbfor || !pos)
                return au_error_set(err, ENOMEM, "workflow");
        uuid_generate_random(u);
        uuid_unparse_lower(u, ret_id);
        orc_audit_init(&audit, actor);

        for (size_t i = 0; i < n; i++) {
                const orc_step *s = &w->steps[i];
                _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);

                ids[i] = s->id;
                kinds[i] = s->kind == ORC_STEP_APPROVAL ? "approval" : "run";
                if (s->is_fallback)
                        states[i] = "standby";
                else if (s->n_needs > 0)
                        states[i] = "pending";
                else
                        states[i] = s->kind == ORC_STEP_APPROVAL ? "awaiting_human" : "ready";
                specs[i] = s->run_json ? s->run_json : "{}";
                fallbacks[i] = s->fallback;
                programs[i] = s->program;
                if (!g)
                        goto out;
                au_json_gen_array_open(g);
                for (size_t k = 0; k < s->n_needs; k++)
                        au_json_gen_string(g, s->needs[k]);
                au_json_gen_array_close(g);
                needs[i] = au_json_gen_finish(g, NULL);
                yajl_gen_clear(g);
                yajl_gen_free(g);
                g = au_json_gen_new(false);
                if (!g)
                        goto out;
                au_json_gen_map_open(g);
                for (size_t k = 0; k < s->n_selector; k++)
                        au_json_gen_kv_string(g, s->selector[k].key, s->selector[k].value);
                au_json_gen_map_close(g);
                selectors[i] = au_json_gen_finish(g, NULL);
                if (asprintf(&maxa[i], "%u", s->max_attempts) < 0 ||
                    asprintf(&back[i], "%" PRIu64, s->backoff_ms) < 0 ||
                    asprintf(&maxb[i], "%" PRIu64, s->max_backoff_ms) < 0 ||
                    asprintf(&pos[i], "%zu", i) < 0 || !needs[i] || !selectors[i])
                        goto out;
        }
        for (size_t i = 0; i < n; i++)
                if (w->steps[i].fallback)
                        for (size_t k = 0; k < n; k++)
                                if (strcmp(w->steps[k].id, w->steps[i].fallback) == 0)
                                        fbfor[k] = w->steps[i].id;
        {
                char **cols[13] = {ids,       kinds, states, specs, fallbacks, needs, programs,
                                   selectors, maxa,  back,   maxb,  fbfor,     pos};
                for (size_t k = 0; k < 13; k++)
                        if (!(arrays[k] = orc_pg_array(cols[k], n)))
                                goto out;
        }

        r = mem_pg_begin(conn, err);
        if (r < 0)
                goto out;
        params[0] = ret_id;
        params[1] = w->name;
        params[2] = w->json;
        params[3] = actor;
        r = mem_pg_exec(conn,
                        "INSERT INTO workflows (id, name, spec, state, created_by) VALUES ($1, $2, "
                        "$3::jsonb, 'running', $4)",
                        4, params, NULL, err);
        if (r < 0)
                goto out;
        params[0] = ret_id;
        for (size_t k = 0; k < 13; k++)
                params[1 + k] = arrays[k];
        params[14] = escalate_s;
        r = mem_pg_exec(conn,
                        "INSERT INTO steps (workflow_id, step_id, kind, state, spec, fallback, needs, "
                        "program, selector, "
                        "max_attempts, backoff_ms, max_backoff_ms, fallback_for, position, escalate) "
                        "SELECT $1, v.id, v.kind, v.state, v.spec::jsonb, v.fb, "
                        "ARRAY(SELECT jsonb_array_elements_text(v.needs::jsonb)), v.program, v.sel::jsonb, "
                        "v.maxa, v.back, v.maxb, v.fbfor, v.pos, $15::bool "
                        "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
                        "$7::text[], $8::text[], "
                        "$9::text[], $10::int[], $11::bigint[], $12::bigint[], $13::text[], $14::int[]) "
                        "AS v(id, kind, state, spec, fb, needs, program, sel, maxa, back, maxb, fbfor, pos)",
                        15, params, NULL, err);
        if (r < 0)
                goto out;
        {
                _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
                _cleanup_free_ char *d = NULL;
                if (!g) {
                        r = -ENOMEM;
                        goto out;
                }
                au_json_gen_map_open(g);
                au_json_gen_kv_string(g, "name", w->name);
                au_json_gen_kv_uint64(g, "steps", n);
                au_json_gen_kv_string(g, "by", actor);
                au_json_gen_string(g, "spec");
                {
                        _cleanup_json_ yajl_val tree = NULL;
                        if (au_json_parse(w->json, strlen(w->json), 64u << 20, &tree, NULL) >= 0)
                                au_json_gen_tree(g, tree);
                        else
                                au_json_gen_null(g);
                }
                au_json_gen_map_close(g);
                d = au_json_gen_finish(g, NULL);
                if (!d || orc_audit_add(&audit, ret_id, "submitted", d) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        for (size_t i = 0; i < n; i++)
                if (strcmp(states[i], "awaiting_human") == 0) {
                        snprintf(detail, sizeof(detail), "{\"step\":\"%s\"}",
                                 ids[i]); /* ids are [A-Za-z0-9._-] */
                        orc_audit_add(&audit, ret_id, "awaiting_approval", detail);
                }
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
        for (size_t i = 0; i < n; i++) {
                free(needs[i]);
                free(selectors[i]);
                free(maxa[i]);
                free(back[i]);
                free(maxb[i]);
                free(pos[i]);
        }
        for (size_t k = 0; k < 13; k++)
                free(arrays[k]);
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
        char lim[16];
        const char *params[2];
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
        snprintf(lim, sizeof(lim), "%u", limit);
        params[0] = state;
        params[1] = lim;
        if (!(conn = orc_get_conn(c, ret)))
                return;
        r = mem_pg_exec(conn,
                        "SELECT w.id, w.name, w.state, " TS("w.created_at") ", " TS(
                                "w.updated_at") ", "
                                                "(SELECT json_object_agg(state, n) FROM (SELECT state, "
                                                "count(*) n FROM steps s "
                                                " WHERE s.workflow_id = w.id GROUP BY state) x)::text, "
                                                "(SELECT count(*) FROM steps s WHERE s.workflow_id = w.id) "
                                                "FROM workflows w WHERE ($1::text IS NULL OR w.state = $1) "
                                                "ORDER BY w.created_at DESC LIMIT $2::int",
                        2, params, &res, &err);
        orc_pool_put(c, conn);
        if (r < 0) {
                orc_reply_db_error(c, ret, r, &err);
                return;
        }
        g = au_json_gen_new(false);
        if (!g) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        au_json_gen_map_open(g);
        au_json_gen_string(g, "workflows");
        au_json_gen_array_open(g);
        for (int i = 0; i < PQntuples(res); i++) {
                _cleanup_json_ yajl_val counts = NULL;
                const char *cj = mem_pg_value(res, i, 5);

                au_json_gen_map_open(g);
                orc_gen_kv_text(g, "id", mem_pg_value(res, i, 0));
                orc_gen_kv_text(g, "name", mem_pg_value(res, i, 1));
                orc_gen_kv_text(g, "state", mem_pg_value(res, i, 2));
                orc_gen_kv_text(g, "created_at", mem_pg_value(res, i, 3));
                orc_gen_kv_text(g, "updated_at", mem_pg_value(res, i, 4));
                au_json_gen_string(g, "steps");
                au_json_gen_map_open(g);
                orc_gen_kv_num(g, "total", mem_pg_value(res, i, 6));
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
        au_json_gen_map_close(g);
        orc_reply_json(ret, 200, g);
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
        const char *params[1] = {id};
        PGconn *conn;
        int r;

        if (!orc_valid_uuid(id)) {
                orc_reply_error(ret, 404, "not_found", NULL, "no workflow '%.64s'", id);
                return;
        }
        if (!(conn = orc_get_conn(c, ret)))
                return;
        r = mem_pg_exec(conn,
                        "SELECT id, name, state, " TS("created_at") ", " TS(
                                "updated_at") ", created_by "
                                              "FROM workflows WHERE id = $1",
                        1, params, &wf, &err);
        if (r >= 0)
                r = mem_pg_exec(
                        conn,
                        "SELECT step_id, kind, state, attempt, node, array_to_json(needs)::text, fallback, "
                        "outcome, exit_code, wall_ms, error, output_b64, " TS(
                                "updated_at") ", failures, "
                                              "fallback_for FROM steps WHERE workflow_id = $1 ORDER BY "
                                              "position",
                        1, params, &steps, &err);
        orc_pool_put(c, conn);
        if (r < 0) {
                orc_reply_db_error(c, ret, r, &err);
                return;
        }
        if (PQntuples(wf) == 0) {
                orc_reply_error(ret, 404, "not_found", NULL, "no workflow '%s'", id);
                return;
        }
        g = au_json_gen_new(false);
        if (!g) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        au_json_gen_map_open(g);
        orc_gen_kv_text(g, "id", mem_pg_value(wf, 0, 0));
        orc_gen_kv_text(g, "name", mem_pg_value(wf, 0, 1));
        orc_gen_kv_text(g, "state", mem_pg_value(wf, 0, 2));
        orc_gen_kv_text(g, "created_at", mem_pg_value(wf, 0, 3));
        orc_gen_kv_text(g, "updated_at", mem_pg_value(wf, 0, 4));
        orc_gen_kv_text(g, "created_by", mem_pg_value(wf, 0, 5));
        au_json_gen_string(g, "steps");
        au_json_gen_array_open(g);
        for (int i = 0; i < PQntuples(steps); i++) {
                au_json_gen_map_open(g);
                orc_gen_kv_text(g, "id", mem_pg_value(steps, i, 0));
                orc_gen_kv_text(g, "kind", mem_pg_value(steps, i, 1));
                orc_gen_kv_text(g, "state", mem_pg_value(steps, i, 2));
                orc_gen_kv_num(g, "attempt", mem_pg_value(steps, i, 3));
                orc_gen_kv_text(g, "node", mem_pg_value(steps, i, 4));
                orc_gen_kv_raw(g, "needs", mem_pg_value(steps, i, 5));
                orc_gen_kv_text(g, "fallback", mem_pg_value(steps, i, 6));
                orc_gen_kv_text(g, "fallback_for", mem_pg_value(steps, i, 14));
                orc_gen_kv_text(g, "outcome", mem_pg_value(steps, i, 7));
                orc_gen_kv_num(g, "exit_code", mem_pg_value(steps, i, 8));
                orc_gen_kv_num(g, "wall_ms", mem_pg_value(steps, i, 9));
                orc_gen_kv_num(g, "failures", mem_pg_value(steps, i, 13));
                orc_gen_kv_text(g, "error", mem_pg_value(steps, i, 10));
                gen_stdout(g, "stdout", mem_pg_value(steps, i, 11));
                orc_gen_kv_text(g, "updated_at", mem_pg_value(steps, i, 12));
                au_json_gen_map_close(g);
        }
        au_json_gen_array_close(g);
        au_json_gen_map_close(g);
        orc_reply_json(ret, 200, g);
}

/* ---- actions ---------------------------------------------------------------- */

static void reply_state(orc_reply *ret, const char *id, const char *step, const char *state) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        if (!g) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "id", id);
        if (step)
                au_json_gen_kv_string(g, "step", step);
        au_json_gen_kv_string(g, "state", state);
        au_json_gen_map_close(g);
        orc_reply_json(ret, 200, g);
}

/* Locks the workflow row; *ret_state gets its state (caller frees). 0, -ENOENT, or a database error. */
static int lock_workflow(PGconn *conn, const char *id, char **ret_state, au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        const char *params[1] = {id};
        int r = mem_pg_exec(conn, "SELECT state FROM workflows WHERE id = $1 FOR NO KEY UPDATE", 1, params,
                            &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return -ENOENT;
        *ret_state = strdup(mem_pg_value(res, 0, 0));
        return *ret_state ? 0 : -ENOMEM;
}

/* running, unless a run step still waits for a human after an escalation. */
static const char *resumed_state(PGconn *conn, const char *id, au_error *err) {
        _cleanup_pgresult_ PGresult *res = NULL;
        const char *params[1] = {id};
        if (mem_pg_exec(conn,
                        "SELECT 1 FROM steps WHERE workflow_id = $1 AND kind = 'run' AND state = "
                        "'awaiting_human' LIMIT 1",
                        1, params, &res, err) < 0)
                return NULL;
        return PQntuples(res) > 0 ? "awaiting_human" : "running";
}

void orc_workflow_action(orc_coord *c, const char *actor, const char *id, const char *action,
                         orc_reply *ret) {
        _cleanup_free_ char *state = NULL;
        _cleanup_pgresult_ PGresult *killed = NULL;
        au_error err = {0};
        orc_audit audit;
        const char *params[2] = {id, NULL}, *new_state = NULL;
        PGconn *conn;
        int r;

        if (strcmp(action, "pause") != 0 && strcmp(action, "resume") != 0 && strcmp(action, "cancel") != 0) {
                orc_reply_error(ret, 404, "not_found", NULL, "no action '%.32s' (pause, resume, cancel)",
                                action);
                return;
        }
        if (!orc_valid_uuid(id)) {
                orc_reply_error(ret, 404, "not_found", NULL, "no workflow '%.64s'", id);
                return;
        }
        if (!(conn = orc_get_conn(c, ret)))
                return;
        orc_audit_init(&audit, actor);
        r = mem_pg_begin(conn, &err);
        if (r >= 0)
                r = lock_workflow(conn, id, &state, &err);
        if (r == -ENOENT) {
                orc_reply_error(ret, 404, "not_found", NULL, "no workflow '%s'", id);
                goto out;
        }
        if (r < 0)
                goto db_error;

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
                r = mem_pg_exec(
                        conn,
                        "UPDATE steps SET state = 'cancelled', updated_at = now() WHERE workflow_id = $1 "
                        "AND state IN ('pending', 'ready', 'dispatched', 'running', 'awaiting_human', "
                        "'standby') "
                        "RETURNING step_id, node, attempt, state",
                        1, params, &killed, &err);
                if (r < 0)
                        goto db_error;
        }
        params[1] = new_state;
        r = mem_pg_exec(conn, "UPDATE workflows SET state = $2 WHERE id = $1", 2, params, NULL, &err);
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
                const char *node = mem_pg_value(killed, i, 1);
                char run_id[256];
                if (!node)
                        continue;
                snprintf(run_id, sizeof(run_id), "%s.%s.%s", id, mem_pg_value(killed, i, 0),
                         mem_pg_value(killed, i, 2));
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
        const char *params[2] = {id, step}, *sstate, *kind, *new_state = NULL, *fallback;
        PGconn *conn;
        int r;

        if (strcmp(action, "approve") != 0 && strcmp(action, "retry") != 0 && strcmp(action, "skip") != 0) {
                orc_reply_error(ret, 404, "not_found", NULL, "no action '%.32s' (approve, retry, skip)",
                                action);
                return;
        }
        if (!orc_valid_uuid(id)) {
                orc_reply_error(ret, 404, "not_found", NULL, "no workflow '%.64s'", id);
                return;
        }
        if (!(conn = orc_get_conn(c, ret)))
                return;
        orc_audit_init(&audit, actor);
        r = mem_pg_begin(conn, &err);
        if (r >= 0)
                r = lock_workflow(conn, id, &wstate, &err);
        if (r == -ENOENT) {
                orc_reply_error(ret, 404, "not_found", NULL, "no workflow '%s'", id);
                goto out;
        }
        if (r < 0)
                goto db_error;
        r = mem_pg_exec(conn,
                        "SELECT s.state, s.kind, s.fallback, w.created_by FROM steps s JOIN workflows w ON "
                        "w.id = s.workflow_id "
                        "WHERE s.workflow_id = $1 AND s.step_id = $2 FOR NO KEY UPDATE OF s",
                        2, params, &row, &err);
        if (r < 0)
                goto db_error;
        if (PQntuples(row) == 0) {
                orc_reply_error(ret, 404, "not_found", NULL, "workflow %s has no step '%.64s'", id, step);
                goto out;
        }
        sstate = mem_pg_value(row, 0, 0);
        kind = mem_pg_value(row, 0, 1);
        fallback = mem_pg_value(row, 0, 2);
        if (strcmp(wstate, "succeeded") == 0 || strcmp(wstate, "failed") == 0 ||
            strcmp(wstate, "cancelled") == 0) {
                orc_reply_error(ret, 409, "conflict", NULL, "cannot %s: workflow is %s", action, wstate);
                goto out;
        }
        /* Two people: whoever submitted the workflow does not approve its approval steps. */
        if (strcmp(action, "approve") == 0 && strcmp(kind, "approval") == 0 &&
            !c->cfg.approval_by_submitter && mem_pg_value(row, 0, 3) &&
            strcmp(mem_pg_value(row, 0, 3), actor) == 0) {
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
                r = mem_pg_exec(conn,
                                "UPDATE steps SET state = 'ready', failures = 0, not_before = NULL, "
                                "avoid_node = NULL, "
                                "updated_at = now() WHERE workflow_id = $1 AND step_id = $2",
                                2, params, NULL, &err);
                if (r >= 0 && fallback) {
                        const char *pf[2] = {id, fallback};
                        r = mem_pg_exec(
                                conn,
                                "UPDATE steps SET state = 'standby', failures = 0, updated_at = now() "
                                "WHERE workflow_id = $1 AND step_id = $2 AND state IN ('failed', 'skipped', "
                                "'cancelled')",
                                2, pf, NULL, &err);
                }
        } else {
                if (strcmp(sstate, "awaiting_human") != 0) {
                        orc_reply_error(ret, 409, "conflict", NULL,
                                        "cannot %s step '%s': it is %s, not awaiting_human", action, step,
                                        sstate);
                        goto out;
                }
                new_state = strcmp(action, "approve") == 0 ? "succeeded" : "skipped";
                const char *p3[3] = {id, step, new_state};
                r = mem_pg_exec(conn,
                                "UPDATE steps SET state = $3, updated_at = now() WHERE workflow_id = $1 AND "
                                "step_id = $2",
                                3, p3, NULL, &err);
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
                const char *pw[2] = {id, next};
                if (!next) {
                        r = -EIO;
                        goto db_error;
                }
                r = mem_pg_exec(conn, "UPDATE workflows SET state = $2 WHERE id = $1", 2, pw, NULL, &err);
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
} sim_step;

void orc_workflow_simulate(orc_coord *c, const char *body, size_t len, orc_reply *ret) {
        _cleanup_orc_workflow_ orc_workflow *w = NULL;
        _cleanup_free_ sim_step *s = NULL;
        _cleanup_free_ size_t *order = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        au_error err = {0};
        PGconn *conn;
        double prob = 1.0;
        int end = -1, r = 0;

        if (!parse_or_reply(c, body, len, &w, ret))
                return;
        s = calloc(w->n_steps, sizeof(sim_step));
        order = calloc(w->n_steps, sizeof(size_t));
        if (!s || !order || orc_workflow_topo_order(w, order) < 0) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        if (!(conn = orc_get_conn(c, ret)))
                return;
        for (size_t i = 0; i < w->n_steps && r >= 0; i++) {
                _cleanup_pgresult_ PGresult *res = NULL;
                const char *params[1] = {w->steps[i].program};
                if (!w->steps[i].program)
                        continue;
                /* The newest 200 runs of the same program (argv). */
                r = mem_pg_exec(
                        conn,
                        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY wall_ms), "
                        "percentile_cont(0.95) WITHIN GROUP (ORDER BY wall_ms), "
                        "avg(CASE WHEN outcome = 'exited' AND exit_code = 0 THEN 1.0 ELSE 0.0 END) "
                        "FROM (SELECT wall_ms, outcome, exit_code FROM runs WHERE program = $1 AND NOT late "
                        "ORDER BY id DESC LIMIT 200) h",
                        1, params, &res, &err);
                if (r >= 0 && mem_pg_value(res, 0, 0)) {
                        s[i].history = atol(mem_pg_value(res, 0, 0));
                        if (s[i].history > 0) {
                                s[i].has = true;
                                s[i].p50 = atof(mem_pg_value(res, 0, 1));
                                s[i].p95 = atof(mem_pg_value(res, 0, 2));
                                s[i].success = atof(mem_pg_value(res, 0, 3));
                        }
                }
        }
        orc_pool_put(c, conn);
        if (r < 0) {
                orc_reply_db_error(c, ret, r, &err);
                return;
        }

        /* Critical path: longest p50 path through the DAG (standby fallbacks are not on it). */
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

        g = au_json_gen_new(false);
        if (!g) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "name", w->name);
        au_json_gen_string(g, "steps");
        au_json_gen_array_open(g);
        for (size_t i = 0; i < w->n_steps; i++) {
                char buf[64];
                au_json_gen_map_open(g);
                au_json_gen_kv_string(g, "id", w->steps[i].id);
                au_json_gen_kv_string(g, "kind", w->steps[i].kind == ORC_STEP_APPROVAL ? "approval" : "run");
                au_json_gen_kv_string(g, "program", w->steps[i].program);
                au_json_gen_kv_uint64(g, "history", (uint64_t) s[i].history);
                au_json_gen_string(g, "p50_ms");
                if (s[i].has) {
                        snprintf(buf, sizeof(buf), "%.0f", s[i].p50);
                        yajl_gen_number(g, buf, strlen(buf));
                } else
                        au_json_gen_null(g);
                au_json_gen_string(g, "p95_ms");
                if (s[i].has) {
                        snprintf(buf, sizeof(buf), "%.0f", s[i].p95);
                        yajl_gen_number(g, buf, strlen(buf));
                } else
                        au_json_gen_null(g);
                au_json_gen_string(g, "success_probability");
                if (s[i].has) {
                        snprintf(buf, sizeof(buf), "%.4f", s[i].success);
                        yajl_gen_number(g, buf, strlen(buf));
                } else
                        au_json_gen_null(g);
                au_json_gen_map_close(g);
        }
        au_json_gen_array_close(g);

        au_json_gen_string(g, "critical_path");
        au_json_gen_map_open(g);
        au_json_gen_string(g, "steps");
        au_json_gen_array_open(g);
        {
                _cleanup_free_ int *path = calloc(w->n_steps + 1, sizeof(int));
                size_t np = 0;
                for (int i = end; path && i >= 0 && np < w->n_steps; i = s[i].prev)
                        path[np++] = i;
                while (path && np > 0)
                        au_json_gen_string(g, w->steps[path[--np]].id);
        }
        au_json_gen_array_close(g);
        {
                char buf[64];
                double p95 = 0;
                for (size_t i = 0; i < w->n_steps; i++)
                        if (s[i].finish95 > p95)
                                p95 = s[i].finish95;
                snprintf(buf, sizeof(buf), "%.0f", end >= 0 ? s[end].finish50 : 0.0);
                au_json_gen_string(g, "p50_ms");
                yajl_gen_number(g, buf, strlen(buf));
                snprintf(buf, sizeof(buf), "%.0f", p95);
                au_json_gen_string(g, "p95_ms");
                yajl_gen_number(g, buf, strlen(buf));
        }
        au_json_gen_map_close(g);
        {
                char buf[64];
                snprintf(buf, sizeof(buf), "%.4f", prob);
                au_json_gen_string(g, "success_probability");
                yajl_gen_number(g, buf, strlen(buf));
        }

        au_json_gen_string(g, "risks");
        au_json_gen_array_open(g);
        for (size_t i = 0; i < w->n_steps; i++) {
                const orc_step *st = &w->steps[i];
                char msg[300];
                if (st->kind == ORC_STEP_APPROVAL) {
                        snprintf(msg, sizeof(msg), "step '%s' waits for an operator's approval", st->id);
                        au_json_gen_map_open(g);
                        au_json_gen_kv_string(g, "step", st->id);
                        au_json_gen_kv_string(g, "kind", "approval");
                        au_json_gen_kv_string(g, "message", msg);
                        au_json_gen_map_close(g);
                        continue;
                }
                if (!s[i].has) {
                        snprintf(msg, sizeof(msg),
                                 "step '%s': no recorded runs of this program; duration unknown", st->id);
                        au_json_gen_map_open(g);
                        au_json_gen_kv_string(g, "step", st->id);
                        au_json_gen_kv_string(g, "kind", "no_history");
                        au_json_gen_kv_string(g, "message", msg);
                        au_json_gen_map_close(g);
                } else if (s[i].success < 0.8) {
                        snprintf(msg, sizeof(msg), "step '%s': %.0f%% of its last %ld runs failed", st->id,
                                 100.0 * (1.0 - s[i].success), s[i].history);
                        au_json_gen_map_open(g);
                        au_json_gen_kv_string(g, "step", st->id);
                        au_json_gen_kv_string(g, "kind", "high_failure_rate");
                        au_json_gen_kv_string(g, "message", msg);
                        au_json_gen_map_close(g);
                }
                if (st->trust == SBX_TRUST_ELEVATED || st->trust == SBX_TRUST_PRIVILEGED) {
                        snprintf(msg, sizeof(msg), "step '%s' runs at the %s trust level", st->id,
                                 sbx_trust_to_string(st->trust));
                        au_json_gen_map_open(g);
                        au_json_gen_kv_string(g, "step", st->id);
                        au_json_gen_kv_string(g, "kind", "elevated_trust");
                        au_json_gen_kv_string(g, "message", msg);
                        au_json_gen_map_close(g);
                }
        }
        au_json_gen_array_close(g);
        au_json_gen_map_close(g);
        orc_reply_json(ret, 200, g);
}

/* ---- one-off runs ---------------------------------------------------------------- */

void orc_run_submit(orc_coord *c, const char *actor, const char *body, size_t len, bool wait,
                    orc_reply *ret) {
        _cleanup_json_ yajl_val spec = NULL;
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        _cleanup_free_ char *doc = NULL;
        _cleanup_orc_workflow_ orc_workflow *w = NULL;
        au_error err = {0};
        char id[37];
        uint64_t wall_ms;
        size_t doc_len = 0;
        int r;

        if (!g) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        r = au_json_parse(body, len, c->cfg.max_body_bytes, &spec, &err);
        if (r == -E2BIG) {
                orc_reply_error(ret, 413, "payload_too_large", NULL, "%s", err.msg);
                return;
        }
        if (r < 0) {
                orc_reply_error(ret, 400, "invalid_json", NULL, "%s", err.msg);
                return;
        }
        if (!YAJL_IS_OBJECT(spec)) {
                orc_reply_error(ret, 400, "invalid_request", NULL, "a run is a JSON object (a run spec)");
                return;
        }
        /* {"name":"run","steps":[{"id":"run","run":<spec minus node_selector>,"node_selector":...}]} */
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
        doc = au_json_gen_finish(g, &doc_len);
        if (!doc) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return;
        }
        r = orc_workflow_parse(doc, doc_len, c->cfg.max_body_bytes * 2, &c->policy, &w, &err);
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
                return;
        }
        wall_ms = w->steps[0].wall_ms;
        submit_parsed(c, actor, w, false, ret, id);
        if (ret->status != 201)
                return;
        if (!wait) {
                orc_reply_done(ret);
                _cleanup_json_gen_ yajl_gen g2 = au_json_gen_new(false);
                if (!g2) {
                        orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                        return;
                }
                au_json_gen_map_open(g2);
                au_json_gen_kv_string(g2, "id", id);
                au_json_gen_kv_string(g2, "state", "running");
                au_json_gen_map_close(g2);
                orc_reply_json(ret, 202, g2);
                return;
        }

        /* Wait for the end: the run's wall limit and 30 s more (placement, queues). */
        {
                uint64_t deadline = au_now_ms() + wall_ms + 30000;
                const char *params[1] = {id};
                char state[32] = "running";
                _cleanup_free_ char *result = NULL;

                while (!atomic_load(&c->stop)) {
                        _cleanup_pgresult_ PGresult *res = NULL;
                        PGconn *conn = orc_pool_get(c, NULL);
                        uint64_t gen;
                        struct timespec ts;

                        pthread_mutex_lock(&c->done_lock);
                        gen = c->done_gen;
                        pthread_mutex_unlock(&c->done_lock);
                        if (conn) {
                                r = mem_pg_exec(conn,
                                                "SELECT w.state, (SELECT result::text FROM runs WHERE "
                                                "workflow_id = w.id "
                                                "AND NOT late ORDER BY attempt DESC LIMIT 1) FROM workflows "
                                                "w WHERE w.id = $1",
                                                1, params, &res, NULL);
                                orc_pool_put(c, conn);
                                if (r >= 0 && PQntuples(res) == 1) {
                                        snprintf(state, sizeof(state), "%s", mem_pg_value(res, 0, 0));
                                        if (strcmp(state, "succeeded") == 0 ||
                                            strcmp(state, "failed") == 0 ||
                                            strcmp(state, "cancelled") == 0) {
                                                const char *rv = mem_pg_value(res, 0, 1);
                                                result = rv ? strdup(rv) : NULL;
                                                break;
                                        }
                                }
                        }
                        if (au_now_ms() >= deadline)
                                break;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        ts.tv_nsec += 250 * 1000000L;
                        if (ts.tv_nsec >= 1000000000L) {
                                ts.tv_sec++;
                                ts.tv_nsec -= 1000000000L;
                        }
                        pthread_mutex_lock(&c->done_lock);
                        while (c->done_gen == gen && !atomic_load(&c->stop))
                                if (pthread_cond_timedwait(&c->done_cond, &c->done_lock, &ts) != 0)
                                        break;
                        pthread_mutex_unlock(&c->done_lock);
                }
                orc_reply_done(ret);
                _cleanup_json_gen_ yajl_gen g2 = au_json_gen_new(false);
                if (!g2) {
                        orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                        return;
                }
                au_json_gen_map_open(g2);
                au_json_gen_kv_string(g2, "id", id);
                au_json_gen_kv_string(g2, "state", state);
                orc_gen_kv_raw(g2, "result", result);
                au_json_gen_map_close(g2);
                orc_reply_json(ret, result ? 200 : 202, g2);
        }
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
        n = orc_nodes_snapshot(c, nodes, ORC_MAX_NODES);
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
                db = mem_pg_exec(conn, "SELECT 1", 0, NULL, NULL, NULL) >= 0;
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
