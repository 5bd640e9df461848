/* SPDX-License-Identifier: MIT */
/*
 * Roles and replies of coordinator.h: what the API and every operation share,
 * and what needs neither PostgreSQL nor Redis.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "orchestrator/coordinator.h"

const char *orc_role_to_string(orc_role r) {
        switch (r) {
        case ORC_ROLE_VIEWER:
                return "viewer";
        case ORC_ROLE_OPERATOR:
                return "operator";
        case ORC_ROLE_ADMIN:
                return "admin";
        default:
                return NULL;
        }
}

orc_role orc_role_from_string(const char *s) {
        if (!s)
                return ORC_ROLE_NONE;
        if (strcmp(s, "viewer") == 0)
                return ORC_ROLE_VIEWER;
        if (strcmp(s, "operator") == 0)
                return ORC_ROLE_OPERATOR;
        if (strcmp(s, "admin") == 0)
                return ORC_ROLE_ADMIN;
        return ORC_ROLE_NONE;
}

void orc_reply_done(orc_reply *r) {
        if (!r)
                return;
        free(r->body);
        r->body = NULL;
        r->len = 0;
}

int orc_reply_error(orc_reply *r, int status, const char *code, const char *field, const char *fmt, ...) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        free(r->body);
        r->body = NULL;
        r->status = status;
        if (!g)
                return -ENOMEM;
        au_json_gen_map_open(g);
        au_json_gen_string(g, "error");
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "code", code);
        au_json_gen_kv_string(g, "message", msg);
        if (field && *field)
                au_json_gen_kv_string(g, "field", field);
        au_json_gen_map_close(g);
        au_json_gen_map_close(g);
        r->body = au_json_gen_finish(g, &r->len);
        return r->body ? 0 : -ENOMEM;
}
