/* SPDX-License-Identifier: MIT */
/*
 * The coordinator's HTTP API over libmicrohttpd (doc/api.md): routing,
 * bearer-key authentication (orc_auth) and roles, a per-key token-bucket
 * rate limit (429 + Retry-After), a bound on request bodies (413), errors as
 * {"error":{"code","message","field"}}, and server-sent events from
 * autoos:events (orc_events). The operations themselves are coordinator.h's.
 */
#pragma once
#include <stdint.h>
#include "common/error.h"
#include "orchestrator/coordinator.h"
#include "orchestrator/events.h"

typedef struct orc_api orc_api;

typedef struct orc_api_config {
        const char *listen;      /* "127.0.0.1:8080", "[::1]:8080", ":8080" */
        uint64_t max_body_bytes; /* default 1 MiB */
        double rate_per_s;       /* per key, default 100 */
        double rate_burst;       /* default 200 */
        unsigned max_connections; /* default 256 */
} orc_api_config;

/* Starts serving (MHD's own threads). Returns 0 or a negative errno with err naming the address. */
int orc_api_start(const orc_api_config *cfg, orc_coord *coord, orc_events *events, orc_api **ret,
                  au_error *err);
/* The port actually bound (useful with port 0). */
uint16_t orc_api_port(const orc_api *api);
/* Stops accepting, ends event streams, joins MHD's threads. Accepts NULL, returns NULL. */
orc_api *orc_api_stop(orc_api *api);
