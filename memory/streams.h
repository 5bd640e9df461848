/* SPDX-License-Identifier: MIT */
/*
 * The Redis Streams protocol between the coordinator and its nodes
 * (DESIGN.md "Node <-> coordinator", doc/trust.md "Message authentication
 * on Redis Streams"): the key names and the fields of the entries. Both
 * sides (orchestrator/, daemon/ through memory/bus.c) and the fleet attacks
 * spell them only here.
 *
 *   autoos:jobs:<node>         stream, coordinator -> node:
 *                              spec <json> token <hex> expires <epoch ms> auth <hex>
 *                              cancel <run id> auth <hex>
 *                              read by the node's consumer group "autoosd"
 *   autoos:results             stream, node -> coordinator:
 *                              result <json> node <node> token <hex> auth <hex>
 *                              read by the coordinators' consumer group "coordinators"
 *   autoos:node:<node>         hash, the node's heartbeat (plus beat and auth), with a TTL
 *   autoos:nodes               set of the node ids that ever beat
 *   autoos:result:<node>:<id>  string, a result remembered for a re-sent job (24 h)
 *   autoos:events              stream, node events and the coordinator's: event <json>
 */
#pragma once
#include <stdio.h>

#define MEM_STREAM_RESULTS "autoos:results"
#define MEM_STREAM_EVENTS "autoos:events"
#define MEM_KEY_NODES "autoos:nodes"
#define MEM_STREAM_JOBS_PREFIX "autoos:jobs:"
#define MEM_KEY_NODE_PREFIX "autoos:node:"
#define MEM_KEY_RESULT_PREFIX "autoos:result:"

/* The consumer group the node reads its jobs stream with. */
#define MEM_JOBS_GROUP "autoosd"
/* The consumer group the coordinators read autoos:results with. */
#define MEM_RESULTS_GROUP "coordinators"

/* Fields of a job entry. */
#define MEM_FIELD_SPEC "spec"
#define MEM_FIELD_CANCEL "cancel"
#define MEM_FIELD_TOKEN "token"
#define MEM_FIELD_EXPIRES "expires"
#define MEM_FIELD_AUTH "auth"
/* Fields of a result entry (also token and auth). */
#define MEM_FIELD_RESULT "result"
#define MEM_FIELD_NODE "node"
/* The field of an events entry. */
#define MEM_FIELD_EVENT "event"

/* The name of node's jobs stream (autoos:jobs:<node>) into buf; snprintf's return. */
static inline int mem_stream_jobs(char *buf, size_t size, const char *node) {
        return snprintf(buf, size, MEM_STREAM_JOBS_PREFIX "%s", node);
}

/* The name of node's heartbeat hash (autoos:node:<node>) into buf; snprintf's return. */
static inline int mem_key_node(char *buf, size_t size, const char *node) {
        return snprintf(buf, size, MEM_KEY_NODE_PREFIX "%s", node);
}

/* The key of node's remembered result id (autoos:result:<node>:<id>) into buf; snprintf's return. */
static inline int mem_key_result(char *buf, size_t size, const char *node, const char *id) {
        return snprintf(buf, size, MEM_KEY_RESULT_PREFIX "%s:%s", node, id);
}
