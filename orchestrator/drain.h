/* SPDX-License-Identifier: MIT */
/*
 * Node drain from the API (doc/api.md, issue 15), as Nomad's: a draining
 * node takes no new step (placement does not see it: orc_nodes_snapshot
 * leaves it out), the steps it runs finish. The state lives in PostgreSQL
 * (nodes.drain_since, drained_by), so every coordinator of the fleet honours
 * it: this one from the answer on, the others within a monitor tick (250 ms).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "orchestrator/coordinator.h"

/* The longest node id (autoosd's node_id). */
#define ORC_MAX_NODE_ID 128

/* Whether s can be a node's id: 1 to 128 bytes of printable ASCII, no '/'. */
static inline bool orc_node_id_valid(const char *s) {
        size_t i;

        for (i = 0; s && s[i]; i++)
                if (i >= ORC_MAX_NODE_ID || (unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e ||
                    s[i] == '/')
                        return false;
        return i > 0;
}

/*
 * POST /v1/nodes/{id}/drain (drain) and DELETE /v1/nodes/{id}/drain: the
 * node's drain set or cleared by actor (a key's name), an audit row on the
 * fleet chain (node_drained, node_undrained) and an event (node.drained,
 * node.undrained) when its state changes; the same again is a no-op (200,
 * the first drain's time and key kept). Replies 200 with the node's
 * {"id","draining","drain_since","drained_by"}, 404 for a node never seen,
 * 503 while PostgreSQL is away.
 */
void orc_node_drain(orc_coord *c, const char *actor, const char *node, bool drain, orc_reply *ret);
