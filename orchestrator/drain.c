/* SPDX-License-Identifier: MIT */
/* Node drain from the API (drain.h). */
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "memory/store-nodes.h"
#include "orchestrator/coordinator-internal.h"
#include "orchestrator/drain.h"

void orc_node_drain(orc_coord *c, const char *actor, const char *node, bool drain, orc_reply *ret) {
        _cleanup_pgresult_ PGresult *row = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        au_error err = {0};
        bool changed = false;
        PGconn *conn;
        int r;

        if (!orc_node_id_valid(node)) {
                orc_reply_error(ret, 404, "not_found", NULL, "no node '%.64s'", node ? node : "");
                return;
        }
        if (!(conn = orc_get_conn(c, ret)))
                return;
        r = mem_store_node_drain(conn, node, actor, drain, &changed, &row, &err);
        orc_pool_put(c, conn);
        if (orc_reply_failed(c, ret, r, &err, "no node named", node) < 0)
                return;

        const char *since = mem_pg_value(row, 0, MEM_DRAIN_SINCE),
                   *by = mem_pg_value(row, 0, MEM_DRAINED_BY);
        /* At once here, before the answer: no step placed after it goes to a drained node. */
        orc_nodes_set_drain(c, node, drain, since, by);
        if (changed) {
                _cleanup_free_ char *event =
                        orc_json_event(drain ? "node.drained" : "node.undrained", NULL, NULL,
                                       (const char *const[]){"node", node, "by", actor, NULL});
                log_info("node %s %s by %s", node, drain ? "drained" : "undrained", actor);
                orc_outbox_event(c, event);
        }
        if (!drain)
                orc_wake_scheduler(c); /* ready steps may go to it now */

        if (!(g = orc_reply_object_open(ret)))
                return;
        au_json_gen_kv_string(g, "id", node);
        au_json_gen_kv_bool(g, "draining", drain);
        orc_gen_kv_text(g, "drain_since", since);
        orc_gen_kv_text(g, "drained_by", by);
        orc_reply_object_close(ret, 200, g);
}
