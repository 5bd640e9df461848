/* SPDX-License-Identifier: MIT */
/*
 * autoos-coordinator's settings: /etc/autoos/coordinator.conf (key = value
 * lines, # comments), then command-line flags, which override the file.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "common/error.h"

typedef struct orc_config {
        char *db;       /* postgresql://... */
        char *redis;    /* redis://... */
        char *listen;   /* host:port */
        char *id;       /* this coordinator's consumer name; default hostname:pid */
        char *policy;   /* policy.json for the ceilings checked at submission; NULL: built-in */
        char *sql_dir;  /* migrations */
        char *tls_cert; /* PEM certificate chain for the API; with tls_key the API speaks only TLS */
        char *tls_key;  /* its PEM private key */
        bool approval_by_submitter; /* may the key that submitted a workflow approve its approval steps (no)
                                     */
        uint32_t max_connections_per_ip; /* API connections at once per client address (default 64) */
        uint32_t events_per_key;         /* GET /v1/events streams at once per key (default 4) */
        char *migrate_db;                /* the schema owner's URL for --migrate; NULL: db */
        char *audit_key; /* Ed25519 private key (PEM, mode 0600) signing audit checkpoints; NULL: unsigned */
        uint64_t audit_checkpoint_ms; /* chains written since their last checkpoint are signed this often (1
                                         s) */
        uint64_t node_timeout_ms;     /* heartbeat older than this: node lost (default 2000) */
        uint64_t max_body_bytes;      /* default 1 MiB */
        double rate_limit;            /* requests per second per key (default 100) */
        double rate_burst;            /* default 2 x rate_limit */
        uint32_t dispatch_batch;      /* steps per dispatch transaction (default 256) */
        uint32_t queue_per_slot;      /* steps in flight per unit of node capacity (default 3) */
        uint32_t db_pool;             /* connections for API requests (default 4) */
        uint32_t model_workers;       /* threads running model and agent steps (default 4; 1..32) */
        int log_level;
        char *fleet_key_file;  /* the key node keys derive from (default /etc/autoos/fleet.key) */
        char *secret_key_file; /* the key stored secrets are sealed with (default /etc/autoos/secret.key) */
        bool bus_auth;         /* default on: specs sealed, results and heartbeats verified */
        uint64_t job_ttl_ms;   /* a dispatched spec expires after this (default 1 h) */
        char *console_dir, *console_path,
                *openapi_file; /* the console (orchestrator/console.h); NULL: defaults */
        char *fabric; /* fabric.json (model providers and roles, issue 14); NULL: FAB_CONFIG_PATH if it
                         exists */
} orc_config;

/* Defaults (sql_dir: $(datadir)/autoos/sql). Returns 0 or -ENOMEM. */
int orc_config_init(orc_config *cfg);
void orc_config_done(orc_config *cfg);
/* Sets one key from text, err naming the key on a bad value. */
int orc_config_set(orc_config *cfg, const char *key, const char *value, au_error *err);
/* Reads a file of key = value lines; err names the file and line. */
int orc_config_load(orc_config *cfg, const char *path, au_error *err);
