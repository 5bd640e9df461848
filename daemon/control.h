/* SPDX-License-Identifier: MIT */
/*
 * autoosd's local control socket (/run/autoos/autoosd.sock, 0660, group
 * autoos): one JSON object per line each way.
 *
 *   {"cmd":"status"}                    -> {"ok":true,"status":{...}}
 *   {"cmd":"drain"}                     -> {"ok":true}
 *   {"cmd":"run","spec":{<run spec>}}   -> {"ok":true,"result":{<result>}}
 *   anything else                       -> {"ok":false,"error":"..."}
 *
 * A connection may send several requests; replies come in request order.
 * Lines are bounded (16 MiB); an over-long line or invalid JSON gets an
 * error reply naming the problem and the connection is closed.
 */
#pragma once

#include "common/error.h"
#include "common/loop.h"

typedef struct dmn_control dmn_control;
typedef struct dmn_request dmn_request; /* one request awaiting its reply */

typedef struct dmn_control_ops {
        /* Returns a malloc'd JSON object for "status". */
        char *(*status)(void *userdata);
        /* Stops taking jobs; in-flight runs finish. */
        void (*drain)(void *userdata);
        /*
         * A run spec (the "spec" member, re-serialized). The daemon later calls
         * dmn_request_reply() exactly once with the result JSON, or
         * dmn_request_fail(); req stays valid until then even if the client left.
         */
        void (*run)(void *userdata, const char *spec_json, size_t len, dmn_request *req);
} dmn_control_ops;

int dmn_control_new(au_loop *loop, const char *path, const dmn_control_ops *ops, void *userdata,
                    dmn_control **ret, au_error *err);
/* Closes the socket (and unlinks its path) and every connection; pending requests are answered with an
 * error. */
dmn_control *dmn_control_free(dmn_control *c);

void dmn_request_reply(dmn_request *req, const char *result_json, size_t len);
void dmn_request_fail(dmn_request *req, const char *message);
