/* SPDX-License-Identifier: MIT */
/*
 * autoosd's configuration: /etc/autoos/autoosd.conf ("key = value" lines,
 * '#' comments), overridden by command-line flags.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "sandbox/sandbox.h"

typedef struct dmn_config {
        char *redis_url;       /* redis = redis://127.0.0.1:6379 */
        char *node_id;         /* node_id = <hostname> */
        unsigned max_runs;     /* max_runs = 2 per core */
        unsigned max_queued;   /* max_queued = max_runs: jobs read ahead of a free slot */
        char *metrics_addr;    /* metrics = 127.0.0.1:9464 ("" disables) */
        char *policy_path;     /* policy = /etc/autoos/policy.json */
        char *control_socket;  /* control_socket = /run/autoos/autoosd.sock */
        char *state_dir;       /* state_dir = /var/lib/autoos (result spool) */
        char *run_dir;         /* run_dir = /run/autoos (sandbox templates, uid locks) */
        char *labels;          /* labels = arch=x86_64,zone=a */
        uint64_t grace_ms;     /* grace = 30s: how long SIGTERM lets runs finish */
        double rate;           /* rate = 0 (unlimited): jobs per second per workflow */
        unsigned burst;        /* burst = 10: token bucket depth */
        uint64_t result_ttl_s; /* result_ttl = 24h: idempotency memory in Redis */
        uid_t uid_base;        /* uid_base = 1000000000 */
        uint32_t uid_count;    /* uid_count = 65536 */
        int log_level;         /* log_level = info */
        char *node_key_file; /* node_key_file = /etc/autoos/node.key (from autoos-coordinator --enroll-node)
                              */
        bool bus_auth; /* bus_auth = on: jobs must carry the coordinator's MAC; off only for a node fed by
                          hand */
        sbx_egress_config egress; /* egress_uplink, egress_pool, egress_resolvers, egress_prefix */
} dmn_config;

/* Built-in defaults (node id: the host name). */
int dmn_config_init(dmn_config *cfg);
void dmn_config_done(dmn_config *cfg);

/*
 * Reads path over cfg. A key that is unknown or a value that does not parse
 * is an error naming the file, line and key; cfg is left untouched then.
 */
int dmn_config_load(dmn_config *cfg, const char *path, au_error *err);

/* A deep copy (dst owns its strings); -ENOMEM leaves dst empty. */
int dmn_config_copy(dmn_config *dst, const dmn_config *src);

/* Sets one key as the file would ("max_runs", "8"); used for flags too. */
int dmn_config_set(dmn_config *cfg, const char *key, const char *value, au_error *err);

/* Checks cross-field rules (e.g. node id charset). */
int dmn_config_validate(const dmn_config *cfg, au_error *err);
