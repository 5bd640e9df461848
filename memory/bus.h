/* SPDX-License-Identifier: MIT */
/*
 * The event bus between nodes and coordinators: Redis Streams over hiredis's
 * async API, on an au_loop (DESIGN.md "Node <-> coordinator"). Knows nothing
 * of namespaces or sandboxes: payloads are opaque JSON strings.
 *
 * Two connections: one only for the blocking XREADGROUP on the node's jobs
 * stream, one for everything else, so that writes never wait behind a read.
 * Both reconnect on their own with exponential backoff and jitter.
 *
 * Keys (prefix "autoos:"): jobs:<node> (group "autoosd", consumer = node),
 * results, events (MAXLEN ~), node:<node> (hash, PEXPIRE), nodes (set),
 * result:<node>:<job id> (the published result, TTL'd, for idempotency; the
 * node's name in the key lets a Redis ACL confine each node to its own).
 * memory/streams.h names them and the entries' fields for both sides.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/loop.h"

typedef struct mem_bus mem_bus;

typedef struct mem_bus_ops {
        /*
         * One entry of the node's jobs stream. field is the entry's first field
         * name ("spec" or "cancel" when well-formed; anything else is for the
         * caller to refuse), value its bytes (may hold NULs; len bounded by
         * mem_bus_config.max_entry_bytes, larger values arrive truncated with
         * truncated=true). pending is true for entries delivered before to this
         * consumer and never acknowledged (redelivered after a restart or
         * reconnect). The strings live until the callback returns.
         */
        void (*on_job)(mem_bus *b, const char *entry_id, const char *field, const char *value, size_t len,
                       bool truncated, bool pending, void *userdata);
        /* Both connections up (connected=true), or one lost (false, why says how). */
        void (*on_state)(mem_bus *b, bool connected, const char *why, void *userdata);
} mem_bus_ops;

typedef struct mem_bus_config {
        const char *url;        /* redis://[:password@]host[:port][/db] or unix:///path */
        const char *node;       /* consumer name; jobs stream autoos:jobs:<node> */
        size_t max_entry_bytes; /* default 16 MiB */
        uint64_t result_ttl_s;  /* idempotency memory, default 86400 */
        uint64_t events_maxlen; /* default 10000 */
        uint32_t block_ms;      /* XREADGROUP BLOCK, default 1000 */
} mem_bus_config;

int mem_bus_new(au_loop *loop, const mem_bus_config *cfg, const mem_bus_ops *ops, void *userdata,
                mem_bus **ret, au_error *err);
mem_bus *mem_bus_free(mem_bus *b);
bool mem_bus_connected(const mem_bus *b);
/* Count of reconnections since start (for metrics). */
uint64_t mem_bus_reconnects(const mem_bus *b);

/*
 * How many more jobs the caller can take now. Reading stops at 0 and
 * resumes when credit is given; entries not read wait in Redis.
 */
void mem_bus_set_job_credit(mem_bus *b, unsigned credit);

/*
 * Stops reading jobs for good (draining): a blocked read is ended without
 * taking entries, so what has not been delivered stays for the next reader.
 */
void mem_bus_stop_reading(mem_bus *b);

/* r is 0 on success or a negative errno (-ENOTCONN while Redis is away). */
typedef void (*mem_done_fn)(int r, void *userdata);
typedef void (*mem_get_fn)(int r, const char *value, size_t len, void *userdata);

/* A result's authentication (memory/seal.h): the dispatch's token and the node's MAC, hex. */
typedef struct mem_bus_seal {
        const char *token;
        const char *auth;
} mem_bus_seal;

/*
 * Atomically (one Lua script): XADD autoos:results * result <json> node
 * <node> [token <token> auth <auth>]; remember it as
 * autoos:result:<node>:<result_id> for result_ttl_s (sealed: the value is
 * "<token> <auth>\n<json>", see mem_bus_unseal()); XACK each of the jobs
 * stream entries (entry_ids, n may be 0). seal NULL: unauthenticated (a node
 * with bus_auth off). done runs exactly once.
 */
int mem_bus_publish_result(mem_bus *b, const char *result_id, const char *json, size_t len,
                           const mem_bus_seal *seal, const char *const *entry_ids, size_t n_entry_ids,
                           mem_done_fn done, void *userdata);

/*
 * Inside on_job: the value of the entry's field name (after the first
 * field: "token", "expires", "auth"), its length in *ret_len; NULL when the
 * entry has none. Valid until on_job returns.
 */
const char *mem_bus_job_field(mem_bus *b, const char *name, size_t *ret_len);

/* XACK entries without a result (e.g. a duplicate already answered). */
int mem_bus_ack(mem_bus *b, const char *const *entry_ids, size_t n, mem_done_fn done, void *userdata);

/* GET autoos:result:<node>:<id>: r 0 with value NULL when there is none. */
int mem_bus_get_result(mem_bus *b, const char *result_id, mem_get_fn done, void *userdata);

/* HSET autoos:node:<node> <kv pairs>; PEXPIRE ttl_ms; SADD autoos:nodes <node>. kv NULL-terminated. */
int mem_bus_heartbeat(mem_bus *b, const char *const *kv, uint64_t ttl_ms, mem_done_fn done, void *userdata);

/* XADD autoos:events MAXLEN ~ events_maxlen * event <json>. done may be NULL. */
int mem_bus_event(mem_bus *b, const char *json, size_t len, mem_done_fn done, void *userdata);
