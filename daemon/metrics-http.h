/* SPDX-License-Identifier: MIT */
/*
 * autoosd's metrics endpoint: GET /metrics (Prometheus text, version 0.0.4)
 * and GET /healthz ("ok\n") over HTTP, served by libmicrohttpd inside the
 * daemon's au_loop (no thread of its own).
 */
#pragma once

#include <stdint.h>

#include "common/error.h"
#include "common/loop.h"
#include "common/metrics.h"

typedef struct dmn_metrics_http dmn_metrics_http;

/*
 * Listens on exactly addr: "127.0.0.1:9464", "[::1]:9464" (numeric
 * addresses only; port 0 picks a free port, see dmn_metrics_http_port()).
 * addr "" (or NULL) disables the endpoint: returns 0 with *ret = NULL.
 * registry stays the caller's and must outlive the server; it is rendered
 * afresh for each request. Errors name the address: -EINVAL for a malformed
 * one, -EADDRINUSE (or another errno) when it cannot be bound.
 */
int dmn_metrics_http_new(au_loop *loop, const char *addr, au_metrics *registry, dmn_metrics_http **ret,
                         au_error *err);

/* Stops listening and closes every connection. Accepts NULL, returns NULL. */
dmn_metrics_http *dmn_metrics_http_free(dmn_metrics_http *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(dmn_metrics_http *, dmn_metrics_http_free);

/* The port actually bound (useful after port 0), or 0 for NULL. */
uint16_t dmn_metrics_http_port(const dmn_metrics_http *h);
