/* SPDX-License-Identifier: MIT */
/*
 * The attacks' ways to the coordinator: its API through the shared HTTP
 * client (client/client.h), verifying an https:// coordinator as autoosctl's
 * other commands do, against $AUTOOS_CACERT when set, else the system's CAs;
 * and its database, as the schema's owner (--db).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adversarial/adversarial.h"
#include "common/json.h"
#include "common/macro.h"

#define MAX_REPLY (16u << 20)

int adv_api_open(const char *url, api_conn **ret) {
        const char *cacert = getenv("AUTOOS_CACERT");
        return api_conn_new(url, cacert && *cacert ? cacert : NULL, "autoosctl-adversarial/" PACKAGE_VERSION,
                            ret);
}

long adv_api_json(const adv_fleet_target *t, const char *method, const char *path, const char *key,
                  const char *json, yajl_val *ret_doc) {
        _cleanup_api_conn_ api_conn *c = NULL;
        _cleanup_api_reply_ api_reply r = {};
        api_request q = {.method = method,
                         .path = path,
                         .bearer = key,
                         .body = json,
                         .len = json ? strlen(json) : 0,
                         .timeout_ms = 10000,
                         .max_reply = MAX_REPLY};

        if (ret_doc)
                *ret_doc = NULL;
        if (adv_api_open(t->api_url, &c) < 0 || api_send(c, &q, &r) < 0)
                return 0;
        if (ret_doc && r.len > 0 && au_json_parse(r.body, r.len, MAX_REPLY, ret_doc, NULL) < 0)
                *ret_doc = NULL;
        return r.status;
}

bool adv_sql(PGconn *conn, const char *q, int n, const char *const *params, char *why, size_t size) {
        PGresult *res = params ? PQexecParams(conn, q, n, NULL, params, NULL, NULL, 0) : PQexec(conn, q);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

        if (!ok) {
                snprintf(why, size, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
                why[strcspn(why, "\n")] = '\0';
        }
        PQclear(res);
        return ok;
}
