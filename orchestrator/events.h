/* SPDX-License-Identifier: MIT */
/*
 * Fan-out of the Redis stream autoos:events to server-sent-event clients:
 * one reader thread (its own blocking hiredis connection, XREAD BLOCK 1000)
 * keeps the newest ORC_EVENTS_RING entries in a ring; each subscriber waits
 * on it from its own position. A subscriber that asks for entries older than
 * the ring, or that falls so far behind that the ring overtook it, gets the
 * missing ones with XRANGE on a connection of its own first, in batches of
 * at most ORC_EVENTS_FILL_COUNT entries, then continues from the ring; no
 * entry is delivered twice and ids only grow.
 *
 * An entry is the JSON of its field `event` (or of its first field when it
 * has no `event`); the SSE event name is the JSON's "type" string (characters
 * other than A-Z a-z 0-9 . _ - : / become '_', at most 128), or "event" when
 * there is none. Entries whose JSON is over ORC_EVENTS_MAX_DATA bytes are
 * skipped with a warning. Line breaks in the JSON (only whitespace in valid
 * JSON) become spaces so that `data:` is one line; invalid UTF-8 is repaired.
 *
 * When Redis is away the reader retries with backoff (100 ms doubling to
 * 5 s), logging one warning per outage and a notice when it is back; it
 * resumes after the last id it read, so entries added meanwhile are not lost
 * (unless the stream was trimmed past them).
 *
 * Threads: orc_events_start/stop from one thread; each subscriber is used by
 * one thread at a time (any thread). hiredis writes with write(2): the
 * process must ignore SIGPIPE. The reader thread runs with every signal
 * blocked.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "common/error.h"
#include "memory/streams.h"

#define ORC_EVENTS_STREAM MEM_STREAM_EVENTS
#define ORC_EVENTS_RING 1024
#define ORC_EVENTS_FILL_COUNT 256
#define ORC_EVENTS_MAX_DATA 65536
/* No frame is longer: a buffer this big never gets -ENOSPC. */
#define ORC_EVENTS_MAX_FRAME (ORC_EVENTS_MAX_DATA + 256)

typedef struct orc_events orc_events;
typedef struct orc_events_sub orc_events_sub;

/*
 * redis_url: redis://[[user]:password@]host[:port][/db] or unix:///path.
 * Starts the reader thread; Redis need not be up yet. Returns 0, -EINVAL
 * (bad URL, err names it), -ENOMEM or the error of pthread_create.
 */
int orc_events_start(const char *redis_url, orc_events **ret, au_error *err);
/*
 * Stops and joins the reader; every subscriber's orc_events_next returns
 * -EPIPE from then on (those waiting are woken). The memory goes with the
 * last subscription: until then subscriptions may still be made (they end at
 * once) and dropped. Usually immediate; at most the reader's connect (1 s)
 * plus AUTH/SELECT (5 s) when Redis hangs; a catch-up XRANGE in a
 * subscriber's thread is not waited for. NULL-safe, returns NULL.
 */
orc_events *orc_events_stop(orc_events *ev);

/*
 * since: a stream id ("<ms>-<seq>" or "<ms>", meaning "<ms>-0") to resume
 * after, or NULL (or a malformed id) for new entries only. Returns NULL on
 * ENOMEM only.
 */
orc_events_sub *orc_events_subscribe(orc_events *ev, const char *since);
/* NULL-safe. */
void orc_events_unsubscribe(orc_events_sub *sub);
/*
 * Writes the next event as one SSE frame ("id: ...\nevent: ...\ndata: ...\n\n")
 * into buf (not NUL-terminated), waiting at most timeout_ms (0: do not wait);
 * returns its length, 0 on timeout, -ENOSPC when buf is too small for it (the
 * frame is kept), -EPIPE after stop. A catch-up XRANGE may make one call last
 * longer than timeout_ms (connect 2 s, reply 5 s at most).
 */
ssize_t orc_events_next(orc_events_sub *sub, char *buf, size_t size, int timeout_ms);

/* True when s is a stream id as orc_events_subscribe takes it. */
bool orc_events_id_valid(const char *s);
