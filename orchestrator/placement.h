/* SPDX-License-Identifier: MIT */
/*
 * Placement (DESIGN.md "Scheduling"): which node takes a ready step. Pure
 * functions over a snapshot of the nodes (no database, no Redis, no clock),
 * unit-tested in tests/orchestrator/test-placement.c; the scheduler thread
 * (scheduler.c) builds the snapshot each dispatch round and counts what it
 * places into it.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One node as placement sees it. */
typedef struct orc_place_node {
        const char *id;
        const char *labels; /* "k=v,k=v" as autoosd sends; NULL: none */
        bool alive;         /* heartbeat present and fresh */
        uint32_t capacity;  /* sandboxes at once; 0 takes nothing */
        uint32_t load;      /* runs in flight on it, this round's placements included */
} orc_place_node;

/*
 * Whether a node's labels ("k=v,k=v") satisfy a step's node selector (a JSON
 * object of string values, every pair required). A NULL, "{}" or unreadable
 * selector matches every node (the workflow was validated when submitted);
 * a selector value that is not a string matches none.
 */
bool orc_place_labels_match(const char *labels, const char *selector_json);

/*
 * The index in nodes[0..n) of the least loaded (load / capacity) live node
 * that matches selector and has a free slot (load < capacity *
 * queue_per_slot); the first of equals wins. A node named avoid (the one a
 * retry failed on; NULL: none) is taken only when no other live node
 * matches the selector at all, full or not: a full alternative means
 * waiting for it. -1 when no node can take the step now. Does not change
 * nodes; the caller adds the placement to the chosen node's load.
 */
int orc_place_pick(const orc_place_node *nodes, size_t n, uint32_t queue_per_slot, const char *selector,
                   const char *avoid);
