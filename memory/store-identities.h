/* SPDX-License-Identifier: MIT */
/*
 * The enrolled nodes (node_identities): which nodes hold a key and at which
 * generation (the key itself is derived from the fleet key, never stored).
 * memory/store.h says how these functions report errors and results;
 * generations start at 1, so 0 below means "no such enrolled node".
 */
#pragma once
#include <stdbool.h>

#include "common/error.h"
#include "memory/pg.h"

/*
 * enroll (rekey false): a new node, or one removed before, at the next
 * generation; rekey: an enrolled node's next generation. The key id is
 * cleared until mem_store_identity_key_id() sets it. *ret_generation gets the
 * new generation, or 0 when refused (enrolled already; rekey: not enrolled).
 */
int mem_store_identity_enroll(PGconn *conn, const char *node, bool rekey, unsigned *ret_generation,
                              au_error *err);

/* The id of the node's current key (not the key). */
int mem_store_identity_key_id(PGconn *conn, const char *node, const char *key_id, au_error *err);

/* The node removed (its key refused from then on); *ret_removed false when it was not enrolled. */
int mem_store_identity_remove(PGconn *conn, const char *node, bool *ret_removed, au_error *err);

/* *ret_generation: the enrolled node's key generation, 0 when it is not enrolled. */
int mem_store_identity_generation(PGconn *conn, const char *node, unsigned *ret_generation, au_error *err);

/* Columns of mem_store_identities(): every enrolled node and its generation. */
enum { MEM_IDENTITY_NODE, MEM_IDENTITY_GENERATION };
int mem_store_identities(PGconn *conn, PGresult **ret, au_error *err);
