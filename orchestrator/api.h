/* SPDX-License-Identifier: MIT */
/*
 * The coordinator's HTTP API over libmicrohttpd (doc/api.md): routing,
 * bearer-key authentication (orc_auth) and roles, a per-key token-bucket
 * rate limit (429 + Retry-After), a bound on request bodies (413), errors as
 * {"error":{"code","message","field"}}, and server-sent events from
 * autoos:events (orc_events). The operations themselves are coordinator.h's.
 *
 * Threads: libmicrohttpd's listening thread plus one thread per connection
 * (poll(2), so no FD_SETSIZE limit), all with every signal blocked. A
 * handler may block (POST /v1/runs?wait=1, an event stream) without holding
 * up other connections; the coordinator's functions are called from these
 * threads concurrently.
 *
 * A request is checked in this order, the first failure answering:
 *   404 unknown path, 405 known path and other method (Allow header),
 *   429 the client's address has failed authentication too often (Retry-After;
 *   a token bucket per address, /64 for IPv6, taken only by failures),
 *   401 no/unknown key (WWW-Authenticate: Bearer), 503 keys not loaded,
 *   429 over the key's rate (Retry-After), 403 role too low,
 *   404 malformed workflow id or step id, 400 bad query parameter,
 *   413 body over max_body_bytes (announced by Content-Length: at once,
 *   without reading it; streamed: once the stream ends),
 * then the operation; GET /v1/events beyond events_per_key streams of one
 * key is 429. /healthz and /metrics skip the key, rate and role checks.
 * Connections beyond max_per_ip from one address are closed at once. Every response carries X-Request-Id;
 * one JSON log line per request (info) names it with method, path, status, key and ms.
 */
#pragma once
#include <stdint.h>
#include "common/error.h"
#include "orchestrator/coordinator.h"
#include "orchestrator/events.h"

typedef struct orc_api orc_api;

/* Zero fields take the defaults. */
typedef struct orc_api_config {
        /* "127.0.0.1:8080", "[::1]:8080", "localhost:8080", ":8080" or "*:8080" (every
         * address: IPv6 dual-stack, IPv4 when the host has no IPv6); port 0 picks a free one.
         * Default "127.0.0.1:8080". */
        const char *listen;
        uint64_t max_body_bytes;  /* default 1 MiB */
        double rate_per_s;        /* requests per second per key name, default 100 */
        double rate_burst;        /* default 200 (at least 1) */
        unsigned max_connections; /* default 256 */
        /* TLS: the certificate chain and its key, PEM in memory (orchestrator/tls.h reads and checks
         * the files). Both set: the listener speaks only TLS (HTTPS), /healthz and /metrics too. */
        const char *tls_cert_pem;
        const char *tls_key_pem;
        unsigned max_per_ip;     /* connections at once per client address, default 64 */
        unsigned events_per_key; /* GET /v1/events streams at once per key, default 4 */
        double auth_fail_per_s;  /* failed authentications per second per client address, default 1 */
        double auth_fail_burst;  /* default 20 */
        /* The console (console.h): its files, their base path (default /ui) and the OpenAPI document. */
        const char *console_dir, *console_path, *openapi_file;
} orc_api_config;

/*
 * Starts serving. coord must outlive the API; events may be NULL (then
 * GET /v1/events answers 503). Returns 0, -EINVAL (bad listen address, err
 * names it with field "listen"), -EADDRINUSE and the like (err names the
 * address) or -ENOMEM.
 */
int orc_api_start(const orc_api_config *cfg, orc_coord *coord, orc_events *events, orc_api **ret,
                  au_error *err);
/* The port actually bound (useful with port 0); 0 for NULL. */
uint16_t orc_api_port(const orc_api *api);
/*
 * Stops accepting, ends event streams (each within about a second, at once
 * when the events were stopped first), waits for the requests in progress
 * and joins libmicrohttpd's threads: an operation that blocks
 * (orc_run_submit with wait) must be made to return first, or this waits
 * for it. Either order with orc_events_stop(events) is safe: the API holds a
 * subscription from start to stop, so the events' memory outlives it.
 * Accepts NULL, returns NULL.
 */
orc_api *orc_api_stop(orc_api *api);
