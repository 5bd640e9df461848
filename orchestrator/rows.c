/* SPDX-License-Identifier: MIT */
/*
 * Shared by the API's operations: pooled connections with the error reply
 * for a database failure, JSON replies, and generator helpers for values
 * of result rows.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uuid/uuid.h>

#include "common/json.h"
#include "common/log.h"
#include "memory/pg.h"
#include "orchestrator/coordinator-internal.h"

bool orc_valid_uuid(const char *s) {
        uuid_t u;
        return s && strlen(s) == 36 && uuid_parse(s, u) == 0;
}

void orc_reply_json(orc_reply *ret, int status, yajl_gen g) {
        ret->status = status;
        ret->body = au_json_gen_finish(g, &ret->len);
        if (!ret->body)
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
}

void orc_reply_db_error(orc_coord *c, orc_reply *ret, int r, const au_error *err) {
        orc_metric_add(c, c->m_api_db_errors, "api", 1);
        if (r == -ENOTCONN) {
                orc_reply_error(ret, 503, "unavailable", NULL, "PostgreSQL is unavailable: %s",
                                err && err->msg[0] ? err->msg : "not connected");
                ret->retry_after_s = 2;
                return;
        }
        if (r == -EAGAIN) {
                orc_reply_error(ret, 503, "unavailable", NULL, "the database was busy; try again");
                ret->retry_after_s = 1;
                return;
        }
        log_error("API database error: %s", err && err->msg[0] ? err->msg : strerror(-r));
        orc_reply_error(ret, 500, "internal", NULL, "database error: %s",
                        err && err->msg[0] ? err->msg : strerror(-r));
}

PGconn *orc_get_conn(orc_coord *c, orc_reply *ret) {
        au_error err = {0};
        PGconn *conn = orc_pool_get(c, &err);
        if (!conn)
                orc_reply_db_error(c, ret, -ENOTCONN, &err);
        return conn;
}

/* Generator helpers for values from result rows. */
void orc_gen_kv_text(yajl_gen g, const char *key, const char *v) {
        au_json_gen_string(g, key);
        if (v)
                au_json_gen_string(g, v);
        else
                au_json_gen_null(g);
}

void orc_gen_kv_num(yajl_gen g, const char *key, const char *v) {
        au_json_gen_string(g, key);
        if (v)
                yajl_gen_number(g, v, strlen(v));
        else
                au_json_gen_null(g);
}

void orc_gen_kv_raw(yajl_gen g, const char *key, const char *json) {
        _cleanup_json_ yajl_val v = NULL;
        au_json_gen_string(g, key);
        if (json && au_json_parse(json, strlen(json), 64u << 20, &v, NULL) >= 0)
                au_json_gen_tree(g, v);
        else
                au_json_gen_null(g);
}

int orc_put_conn(orc_coord *c, PGconn *conn, orc_reply *ret, int r, const au_error *err) {
        orc_pool_put(c, conn);
        if (r < 0)
                orc_reply_db_error(c, ret, r, err);
        return r;
}

int orc_reply_failed(orc_coord *c, orc_reply *ret, int r, const au_error *err, const char *missing,
                     const char *name) {
        if (r == -ENOENT)
                orc_reply_error(ret, 404, "not_found", NULL, "%s '%s'", missing, name);
        else if (r < 0)
                orc_reply_db_error(c, ret, r, err);
        return r;
}

yajl_gen orc_reply_object_open(orc_reply *ret) {
        yajl_gen g = au_json_gen_new(false);

        if (!g) {
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
                return NULL;
        }
        au_json_gen_map_open(g);
        return g;
}

void orc_reply_object_close(orc_reply *ret, int status, yajl_gen g) {
        au_json_gen_map_close(g);
        orc_reply_json(ret, status, g);
}

void orc_reply_name_flag(orc_reply *ret, const char *name, const char *flag) {
        _cleanup_json_gen_ yajl_gen g = orc_reply_object_open(ret);

        if (!g)
                return;
        au_json_gen_kv_string(g, "name", name);
        au_json_gen_kv_bool(g, flag, true);
        orc_reply_object_close(ret, 200, g);
}

char *orc_json_string_array(char *const *v, size_t n) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);

        if (!g)
                return NULL;
        au_json_gen_array_open(g);
        for (size_t i = 0; i < n; i++)
                au_json_gen_string(g, v[i]);
        au_json_gen_array_close(g);
        return au_json_gen_finish(g, NULL);
}

/* A compact JSON object from key/value pairs; values starting with '\x01' are raw JSON. */
char *orc_json_obj(const char *const *kv) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        if (!g)
                return NULL;
        au_json_gen_map_open(g);
        for (size_t i = 0; kv[i]; i += 2) {
                const char *v = kv[i + 1];
                au_json_gen_string(g, kv[i]);
                if (!v)
                        au_json_gen_null(g);
                else if (v[0] == '\x01')
                        yajl_gen_number(g, v + 1,
                                        strlen(v + 1)); /* raw: numbers, arrays (yajl copies verbatim) */
                else
                        au_json_gen_string(g, v);
        }
        au_json_gen_map_close(g);
        return au_json_gen_finish(g, NULL);
}
