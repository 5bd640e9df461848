/* SPDX-License-Identifier: MIT */
/*
 * The nodes table and the fleet's counts (memory/store.h says how these
 * functions report errors and results).
 */
#pragma once
#include <stdbool.h>

#include "common/error.h"
#include "memory/pg.h"

/*
 * A node's heartbeat seen: its row is made or refreshed as healthy, with its
 * labels (a JSON object), capacity and version, last_seen now.
 */
int mem_store_node_heartbeat(PGconn *conn, const char *node, const char *labels_json, unsigned capacity,
                             const char *version, au_error *err);

/* Columns of mem_store_nodes_inflight(): a node with steps in flight, and how many. */
enum { MEM_INFLIGHT_NODE, MEM_INFLIGHT_COUNT };

/*
 * The steps in flight (dispatched or running) per node, from the truth.
 * With begin, a BEGIN goes first in the same round trip (libpq pipeline), so
 * the caller's transaction has started when this returns 0.
 */
int mem_store_nodes_inflight(PGconn *conn, bool begin, PGresult **ret, au_error *err);

/* Columns of mem_store_state_counts(): a state and how many are in it. */
enum { MEM_COUNT_STATE, MEM_COUNT_N };

/* How many workflows (*ret_workflows) and steps (*ret_steps) are in each state. */
int mem_store_state_counts(PGconn *conn, PGresult **ret_workflows, PGresult **ret_steps, au_error *err);

/* Columns of mem_store_node_lost()'s moved steps. */
enum { MEM_MOVED_WORKFLOW, MEM_MOVED_STEP, MEM_MOVED_ATTEMPT };

/*
 * In the caller's transaction: marks node lost (*ret_declared: this call did,
 * not an earlier one or another coordinator) and makes its steps in flight
 * ready again elsewhere (avoiding it, a move counted); *ret_moved lists them.
 */
int mem_store_node_lost(PGconn *conn, const char *node, bool *ret_declared, PGresult **ret_moved,
                        au_error *err);

/* Columns of mem_store_node_drain() and mem_store_nodes_draining(). */
enum { MEM_DRAIN_NODE, MEM_DRAIN_SINCE, MEM_DRAINED_BY };

/*
 * In a transaction of its own: marks node draining (drain) or eligible again,
 * as actor (a key's name), with an audit row on the fleet chain
 * (node_drained, node_undrained; {"node": node}) when that changes its state
 * (*ret_changed). A drain keeps its first time and key. *ret gets the node's
 * row after (MEM_DRAIN_* columns; drain_since and drained_by NULL when not
 * draining). -ENOENT when no node of that id was ever seen.
 */
int mem_store_node_drain(PGconn *conn, const char *node, const char *actor, bool drain, bool *ret_changed,
                         PGresult **ret, au_error *err);

/* The draining nodes (MEM_DRAIN_* columns). */
int mem_store_nodes_draining(PGconn *conn, PGresult **ret, au_error *err);
