/* SPDX-License-Identifier: MIT */
/*
 * Fan-out of the Redis stream autoos:events to server-sent-event clients:
 * one reader thread (hiredis, XREAD BLOCK) keeps the newest entries in a ring;
 * each subscriber waits on it from its own position. A subscriber that asks
 * for entries older than the ring gets them with XRANGE first.
 */
#pragma once
#include <stddef.h>
#include <sys/types.h>
#include "common/error.h"

typedef struct orc_events orc_events;
typedef struct orc_events_sub orc_events_sub;

/* redis_url: redis://[:password@]host[:port][/db]. Starts the reader thread. */
int orc_events_start(const char *redis_url, orc_events **ret, au_error *err);
/* Stops the reader; wakes every subscriber (they then see the end). NULL-safe. */
orc_events *orc_events_stop(orc_events *ev);

/* since: a stream id to resume after, or NULL for new entries only. */
orc_events_sub *orc_events_subscribe(orc_events *ev, const char *since);
void orc_events_unsubscribe(orc_events_sub *sub);
/*
 * Writes the next event as one SSE frame ("id: ...\nevent: ...\ndata: ...\n\n")
 * into buf, waiting at most timeout_ms; returns its length, 0 on timeout,
 * -ENOSPC when buf is too small for it (the frame is kept), -EPIPE after stop.
 */
ssize_t orc_events_next(orc_events_sub *sub, char *buf, size_t size, int timeout_ms);
