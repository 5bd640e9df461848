/* SPDX-License-Identifier: MIT */
/*
 * The audit trail: rows and events collected during a transaction and
 * written with it (orc_audit_*), and the trail of one workflow as the API
 * returns it (GET /v1/workflows/{id}/audit).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "common/log.h"
#include "memory/pg.h"
#include "orchestrator/coordinator-internal.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

void orc_audit_init(orc_audit *a, const char *actor) {
        *a = (orc_audit){0};
        a->actor = strdup(actor ? actor : "coordinator");
}

void orc_audit_done(orc_audit *a) {
        for (size_t i = 0; i < a->n; i++) {
                free(a->wf[i]);
                free(a->action[i]);
                free(a->detail[i]);
        }
        free(a->wf);
        free(a->action);
        free(a->detail);
        for (size_t i = 0; i < a->n_events; i++)
                free(a->events[i]);
        free(a->events);
        free(a->actor);
        *a = (orc_audit){0};
}

int orc_audit_add(orc_audit *a, const char *wf, const char *action, const char *detail) {
        if (a->n == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 16;
                char **w = reallocarray(a->wf, cap, sizeof(char *));
                if (w)
                        a->wf = w;
                char **ac = reallocarray(a->action, cap, sizeof(char *));
                if (ac)
                        a->action = ac;
                char **d = reallocarray(a->detail, cap, sizeof(char *));
                if (d)
                        a->detail = d;
                if (!w || !ac || !d)
                        return -ENOMEM;
                a->cap = cap;
        }
        a->wf[a->n] = wf ? strdup(wf) : NULL;
        a->action[a->n] = strdup(action);
        a->detail[a->n] = strdup(detail ? detail : "{}");
        if ((wf && !a->wf[a->n]) || !a->action[a->n] || !a->detail[a->n]) {
                free(a->wf[a->n]);
                free(a->action[a->n]);
                free(a->detail[a->n]);
                return -ENOMEM;
        }
        a->n++;
        return 0;
}

int orc_audit_event(orc_audit *a, char *json) {
        if (!json)
                return -ENOMEM;
        if (a->n_events == a->cap_events) {
                size_t cap = a->cap_events ? a->cap_events * 2 : 16;
                char **e = reallocarray(a->events, cap, sizeof(char *));
                if (!e) {
                        free(json);
                        return -ENOMEM;
                }
                a->events = e;
                a->cap_events = cap;
        }
        a->events[a->n_events++] = json;
        return 0;
}

static int cmp_nullable(const char *a, const char *b) {
        if (!a || !b)
                return a ? 1 : (b ? -1 : 0);
        return strcmp(a, b);
}

static const mem_pg_stmt stmt_audit_insert = {
        "audit_insert",
        "INSERT INTO audit_log (workflow_id, actor, action, detail) "
        "SELECT w, $2, act, d::jsonb FROM unnest($1::uuid[], $3::text[], $4::text[]) "
        "WITH ORDINALITY AS t(w, act, d, i) ORDER BY i",
        4,
};

int orc_audit_flush(orc_coord *c, PGconn *conn, orc_audit *a, au_error *err) {
        _cleanup_free_ size_t *order = NULL;
        _cleanup_free_ char **wf = NULL, **action = NULL, **detail = NULL;
        _cleanup_free_ char *wf_arr = NULL, *action_arr = NULL, *detail_arr = NULL;
        const char *params[4];
        int r;

        if (a->n == 0)
                return 0;
        order = calloc(a->n, sizeof(size_t));
        wf = calloc(a->n, sizeof(char *));
        action = calloc(a->n, sizeof(char *));
        detail = calloc(a->n, sizeof(char *));
        if (!order || !wf || !action || !detail)
                return au_error_set(err, ENOMEM, "audit rows");
        /* Stable insertion sort by workflow: each chain's rows keep their order. */
        for (size_t i = 0; i < a->n; i++) {
                size_t j = i;
                while (j > 0 && cmp_nullable(a->wf[order[j - 1]], a->wf[i]) > 0) {
                        order[j] = order[j - 1];
                        j--;
                }
                order[j] = i;
        }
        for (size_t i = 0; i < a->n; i++) {
                wf[i] = a->wf[order[i]];
                action[i] = a->action[order[i]];
                detail[i] = a->detail[order[i]];
        }
        wf_arr = orc_pg_array(wf, a->n);
        action_arr = orc_pg_array(action, a->n);
        detail_arr = orc_pg_array(detail, a->n);
        if (!wf_arr || !action_arr || !detail_arr)
                return au_error_set(err, ENOMEM, "audit rows");
        params[0] = wf_arr;
        params[1] = a->actor;
        params[2] = action_arr;
        params[3] = detail_arr;
        r = mem_pg_run(conn, &stmt_audit_insert, params, NULL, err);
        if (r >= 0)
                orc_metric_add(c, c->m_audit_rows, NULL, (double) a->n);
        return r;
}

void orc_audit_send_events(orc_audit *a, redisContext *rc) {
        if (!rc || a->n_events == 0)
                return;
        for (size_t i = 0; i < a->n_events; i++)
                redisAppendCommand(rc, "XADD autoos:events MAXLEN ~ 10000 * event %s", a->events[i]);
        for (size_t i = 0; i < a->n_events; i++) {
                redisReply *reply = NULL;
                if (redisGetReply(rc, (void **) &reply) != REDIS_OK)
                        break;
                freeReplyObject(reply);
        }
}

char *orc_json_event(const char *type, const char *wf, const char *step, const char *const *kv) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        struct timespec ts;
        char buf[64];

        if (!g)
                return NULL;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(buf, sizeof(buf), "%" PRIu64,
                 (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000);
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "type", type);
        if (wf)
                au_json_gen_kv_string(g, "workflow", wf);
        if (step)
                au_json_gen_kv_string(g, "step", step);
        for (size_t i = 0; kv && kv[i]; i += 2)
                if (kv[i + 1])
                        au_json_gen_kv_string(g, kv[i], kv[i + 1]);
        au_json_gen_string(g, "ts_ms");
        yajl_gen_number(g, buf, strlen(buf));
        au_json_gen_map_close(g);
        return au_json_gen_finish(g, NULL);
}

void orc_workflow_audit(orc_coord *c, const char *id, bool verify, orc_reply *ret) {
        _cleanup_pgresult_ PGresult *wf = NULL, *rows = NULL, *ver = NULL;
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
        r = mem_pg_exec(conn, "SELECT 1 FROM workflows WHERE id = $1", 1, params, &wf, &err);
        if (r >= 0)
                r = mem_pg_exec(
                        conn,
                        "SELECT seq, " TS(
                                "to_timestamp(ts_epoch_us / 1000000.0)") ", ts_epoch_us, actor, action, "
                                                                         "detail::text, encode(prev_hash, "
                                                                         "'hex'), encode(hash, 'hex') FROM "
                                                                         "audit_log "
                                                                         "WHERE workflow_id = $1 ORDER BY "
                                                                         "seq",
                        1, params, &rows, &err);
        if (r >= 0 && verify)
                r = mem_pg_exec(conn, "SELECT autoos_audit_verify($1)", 1, params, &ver, &err);
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
        au_json_gen_kv_string(g, "workflow", id);
        au_json_gen_string(g, "rows");
        au_json_gen_array_open(g);
        for (int i = 0; i < PQntuples(rows); i++) {
                au_json_gen_map_open(g);
                orc_gen_kv_num(g, "seq", mem_pg_value(rows, i, 0));
                orc_gen_kv_text(g, "ts", mem_pg_value(rows, i, 1));
                orc_gen_kv_num(g, "ts_epoch_us", mem_pg_value(rows, i, 2));
                orc_gen_kv_text(g, "actor", mem_pg_value(rows, i, 3));
                orc_gen_kv_text(g, "action", mem_pg_value(rows, i, 4));
                orc_gen_kv_raw(g, "detail", mem_pg_value(rows, i, 5));
                orc_gen_kv_text(g, "prev_hash", mem_pg_value(rows, i, 6));
                orc_gen_kv_text(g, "hash", mem_pg_value(rows, i, 7));
                au_json_gen_map_close(g);
        }
        au_json_gen_array_close(g);
        if (verify) {
                const char *bad = mem_pg_value(ver, 0, 0);
                au_json_gen_string(g, "verify");
                au_json_gen_map_open(g);
                au_json_gen_kv_bool(g, "ok", bad == NULL);
                au_json_gen_kv_uint64(g, "rows", (uint64_t) PQntuples(rows));
                orc_gen_kv_num(g, "first_bad_seq", bad);
                au_json_gen_map_close(g);
        }
        au_json_gen_map_close(g);
        orc_reply_json(ret, 200, g);
}
