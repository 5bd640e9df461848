/* SPDX-License-Identifier: MIT */
/*
 * The events fan-out (events.h). Locking: ev->lock guards the ring, base,
 * stopping, stopped, n_subs and reader_fd; everything in a subscriber is its
 * own thread's. The reader builds frames outside the lock and takes it only
 * to push them; subscribers copy a frame out under it.
 *
 * "base" is the id up to which the ring is known to be complete: every
 * stream entry after base is in the ring, or will be once the reader gets
 * to it. It starts as the stream's last id when the reader first connects
 * and moves up to each entry the ring evicts. A subscriber whose cursor is
 * at or past base needs only the ring; one behind it reads the gap with
 * XRANGE first.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/url.h"
#include "memory/redis.h"
#include "memory/streams.h"
#include "orchestrator/events.h"

#define READ_COUNT 128
#define BLOCK_MS 1000
#define CONNECT_TIMEOUT_MS 1000
#define READER_CMD_TIMEOUT_MS (BLOCK_MS + 4000)
#define FILL_CONNECT_TIMEOUT_MS 2000
#define FILL_CMD_TIMEOUT_MS 5000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_TYPE 128

typedef struct sid {
        uint64_t ms, seq;
} sid;

typedef struct entry {
        sid id;
        char *frame;
        size_t len;
} entry;

struct orc_events {
        char *url;
        char *url_shown; /* the URL without its password, for logs */
        pthread_t thread;
        bool thread_started;

        pthread_mutex_t lock;
        pthread_cond_t cond; /* CLOCK_MONOTONIC; new entries and stop */
        bool stopping;       /* orc_events_stop has begun */
        bool stopped;        /* ... and is over: the last unsubscribe frees */
        unsigned n_subs;
        int reader_fd; /* the reader's connection, shut down on stop to end its XREAD */
        entry ring[ORC_EVENTS_RING];
        uint64_t next_seq; /* ring[s % RING] holds entry s for next_seq - RING <= s < next_seq */
        bool base_known;
        sid base;
};

struct orc_events_sub {
        orc_events *ev;
        uint64_t pos;   /* next ring sequence to look at */
        bool have_last; /* false until the first entry for a subscription without since */
        sid last;       /* entries up to here were delivered (or are before since): skipped */
        sid cursor;     /* >= last: entries up to here were delivered or fetched into the backlog */
        bool caught_up; /* no XRANGE needed unless the ring overtakes us */
        redisContext *bf;
        entry *bl; /* the backlog, from XRANGE, delivered before the ring */
        size_t bl_n, bl_head;
        bool fill_warned;
};

/* ---- stream ids ---------------------------------------------------------- */

static int parse_u64(const char *s, size_t n, uint64_t *ret) {
        uint64_t v = 0;

        if (n == 0 || n > 20)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                unsigned d = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

static int sid_parse(const char *s, size_t n, sid *ret) {
        const char *dash = memchr(s, '-', n);
        sid id = {0, 0};

        if (!dash)
                return parse_u64(s, n, &id.ms) < 0 ? -EINVAL : (*ret = id, 0);
        if (parse_u64(s, (size_t) (dash - s), &id.ms) < 0 ||
            parse_u64(dash + 1, n - (size_t) (dash + 1 - s), &id.seq) < 0)
                return -EINVAL;
        *ret = id;
        return 0;
}

bool orc_events_id_valid(const char *s) {
        sid id;
        return s && sid_parse(s, strlen(s), &id) == 0;
}

static int sid_cmp(sid a, sid b) {
        if (a.ms != b.ms)
                return a.ms < b.ms ? -1 : 1;
        if (a.seq != b.seq)
                return a.seq < b.seq ? -1 : 1;
        return 0;
}

/* ---- time ------------------------------------------------------------------ */

static struct timespec deadline_after(int ms) {
        return au_deadline_after(CLOCK_MONOTONIC, ms > 0 ? (uint64_t) ms : 0);
}

/* ---- entries --------------------------------------------------------------- */

static void entry_done(entry *e) {
        free(e->frame);
        e->frame = NULL;
        e->len = 0;
}

/* The SSE event name: the JSON's "type", reduced to a safe alphabet. */
static void event_type(const char *data, size_t len, char ret[static MAX_TYPE + 1]) {
        _cleanup_json_ yajl_val tree = NULL;
        yajl_val t;
        size_t n = 0;

        strcpy(ret, "event");
        if (au_json_parse(data, len, ORC_EVENTS_MAX_DATA, &tree, NULL) < 0)
                return;
        t = au_json_get(tree, "type");
        if (!t || !YAJL_IS_STRING(t) || !YAJL_GET_STRING(t)[0])
                return;
        for (const char *p = YAJL_GET_STRING(t); *p && n < MAX_TYPE; p++) {
                char ch = *p;
                bool okch = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                            (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' || ch == ':' ||
                            ch == '/';
                ret[n++] = okch ? ch : '_';
        }
        ret[n] = '\0';
}

/*
 * One XRANGE/XREAD entry ([id, [field, value, ...]]) into e. Returns 0 with
 * e filled, 1 when the entry is skipped (*ret_id still set), -EINVAL when it
 * has no usable id, -ENOMEM.
 */
static int entry_from_reply(const redisReply *r, entry *e, sid *ret_id) {
        const redisReply *fields, *value = NULL;
        _cleanup_free_ char *fixed = NULL;
        const char *data;
        size_t len;
        char type[MAX_TYPE + 1];
        sid id;

        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || !r->element[0] ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len > 41 ||
            sid_parse(r->element[0]->str, r->element[0]->len, &id) < 0)
                return -EINVAL;
        *ret_id = id;

        fields = r->element[1];
        if (fields && fields->type == REDIS_REPLY_ARRAY)
                for (size_t i = 0; i + 1 < fields->elements; i += 2) {
                        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
                        if (!k || !v || k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                                continue;
                        if (!value)
                                value = v;
                        if (k->len == strlen(MEM_FIELD_EVENT) &&
                            memcmp(k->str, MEM_FIELD_EVENT, k->len) == 0) {
                                value = v;
                                break;
                        }
                }
        if (!value) {
                log_warning("events: entry %" PRIu64 "-%" PRIu64 " has no string field, skipped", id.ms,
                            id.seq);
                return 1;
        }
        if (value->len > ORC_EVENTS_MAX_DATA) {
                char n[24];
                snprintf(n, sizeof(n), "%zu", (size_t) value->len);
                const char *kv[] = {"bytes", n, NULL};
                au_log_kv(AU_LOG_WARNING, kv, "events: entry %" PRIu64 "-%" PRIu64 " skipped: over %d bytes",
                          id.ms, id.seq, ORC_EVENTS_MAX_DATA);
                return 1;
        }
        data = value->str;
        len = value->len;
        event_type(data, len, type);

        if (!au_utf8_valid(data, len))
                fixed = au_utf8_sanitize(data, len, &len);
        else if ((fixed = malloc(len + 1)))
                memcpy(fixed, data, len + 1);
        if (!fixed)
                return -ENOMEM;
        if (len > ORC_EVENTS_MAX_DATA) {
                /* Repairing invalid UTF-8 grows it (U+FFFD is 3 bytes). */
                log_warning("events: entry %" PRIu64 "-%" PRIu64
                            " skipped: over %d bytes once made valid UTF-8",
                            id.ms, id.seq, ORC_EVENTS_MAX_DATA);
                return 1;
        }
        /* Raw line breaks can only be whitespace in JSON; "data:" must stay one line. */
        for (size_t i = 0; i < len; i++)
                if (fixed[i] == '\n' || fixed[i] == '\r' || fixed[i] == '\0')
                        fixed[i] = ' ';

        size_t cap = len + MAX_TYPE + 128;
        char *frame = malloc(cap);
        if (!frame)
                return -ENOMEM;
        int n = snprintf(frame, cap, "id: %" PRIu64 "-%" PRIu64 "\nevent: %s\ndata: ", id.ms, id.seq, type);
        memcpy(frame + n, fixed, len);
        memcpy(frame + n + len, "\n\n", 2);
        e->id = id;
        e->frame = frame;
        e->len = (size_t) n + len + 2;
        return 0;
}

/* ---- connections ----------------------------------------------------------- */

/* A message from memory/redis.c may quote the URL with its password: show the redacted one. */
static void log_redis_failure(orc_events *ev, const char *what, const char *msg) {
        char buf[sizeof(((au_error *) NULL)->msg) + 256];
        const char *at = strstr(msg, ev->url);

        if (at && strcmp(ev->url, ev->url_shown) != 0) {
                snprintf(buf, sizeof(buf), "%.*s%s%s", (int) (at - msg), msg, ev->url_shown,
                         at + strlen(ev->url));
                msg = buf;
        }
        log_warning("events: %s: %s", what, msg);
}

static int connect_redis(orc_events *ev, int connect_ms, int cmd_ms, redisContext **ret, au_error *err) {
        redisContext *c = NULL;
        int r = mem_redis_connect(ev->url, connect_ms, cmd_ms, &c, err);
        if (r < 0)
                return r;
        /* hiredis 0.14 opens its socket without SOCK_CLOEXEC. */
        int fl = fcntl(c->fd, F_GETFD);
        if (fl >= 0)
                (void) fcntl(c->fd, F_SETFD, fl | FD_CLOEXEC);
        *ret = c;
        return 0;
}

static void reply_failure(redisContext *c, redisReply *reply, au_error *err, const char *cmd) {
        if (!reply)
                au_error_set(err, 0, "%s: %s", cmd, c->errstr[0] ? c->errstr : "connection lost");
        else if (reply->type == REDIS_REPLY_ERROR)
                au_error_set(err, 0, "%s: %s", cmd, reply->str);
        else
                au_error_set(err, 0, "%s: unexpected reply type %d", cmd, reply->type);
}

/* ---- the reader ------------------------------------------------------------ */

/* Sleeps ms unless stop begins; returns true when stopping. */
static bool sleep_unless_stopping(orc_events *ev, unsigned ms) {
        struct timespec until = deadline_after((int) ms);
        bool stopping;

        pthread_mutex_lock(&ev->lock);
        while (!ev->stopping && pthread_cond_timedwait(&ev->cond, &ev->lock, &until) != ETIMEDOUT)
                ;
        stopping = ev->stopping;
        pthread_mutex_unlock(&ev->lock);
        return stopping;
}

static bool is_stopping(orc_events *ev) {
        pthread_mutex_lock(&ev->lock);
        bool s = ev->stopping;
        pthread_mutex_unlock(&ev->lock);
        return s;
}

/* The id of the stream's newest entry, 0-0 when it is empty or absent. */
static int read_last_id(redisContext *c, sid *ret, au_error *err) {
        _cleanup_(freeReplyObjectp) redisReply *reply =
                redisCommand(c, "XREVRANGE %s + - COUNT 1", ORC_EVENTS_STREAM);
        sid id = {0, 0};

        if (!reply || reply->type != REDIS_REPLY_ARRAY) {
                reply_failure(c, reply, err, "XREVRANGE " ORC_EVENTS_STREAM);
                return -EIO;
        }
        if (reply->elements > 0) {
                const redisReply *e = reply->element[0];
                if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 1 || !e->element[0] ||
                    e->element[0]->type != REDIS_REPLY_STRING ||
                    sid_parse(e->element[0]->str, e->element[0]->len, &id) < 0) {
                        au_error_set(err, 0, "XREVRANGE " ORC_EVENTS_STREAM ": malformed entry id");
                        return -EIO;
                }
        }
        *ret = id;
        return 0;
}

static void ring_push(orc_events *ev, entry *e) {
        entry *slot = &ev->ring[ev->next_seq % ORC_EVENTS_RING];

        if (ev->next_seq >= ORC_EVENTS_RING) {
                ev->base = slot->id;
                entry_done(slot);
        }
        *slot = *e;
        e->frame = NULL;
        ev->next_seq++;
}

static void reader_drop(orc_events *ev, redisContext **c) {
        if (!*c)
                return;
        pthread_mutex_lock(&ev->lock);
        ev->reader_fd = -1;
        pthread_mutex_unlock(&ev->lock);
        redisFree(*c);
        *c = NULL;
}

/* Handles one XREAD reply; returns 0 or -EIO when it is not what XREAD answers. */
static int reader_take(orc_events *ev, const redisReply *reply, sid *cursor) {
        entry batch[READ_COUNT];
        size_t n = 0;
        const redisReply *s, *entries;

        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1)
                return -EIO;
        s = reply->element[0];
        if (!s || s->type != REDIS_REPLY_ARRAY || s->elements < 2 || !s->element[1] ||
            s->element[1]->type != REDIS_REPLY_ARRAY)
                return -EIO;
        entries = s->element[1];

        for (size_t i = 0; i < entries->elements; i++) {
                sid id;
                int r;

                if (n == ELEMENTSOF(batch))
                        break;
                r = entry_from_reply(entries->element[i], &batch[n], &id);
                if (r == -EINVAL) {
                        log_warning("events: malformed entry in the XREAD reply, skipped");
                        continue;
                }
                /* Never go back: a cursor that moved down would read entries twice. */
                if (sid_cmp(id, *cursor) <= 0) {
                        if (r == 0)
                                entry_done(&batch[n]);
                        continue;
                }
                *cursor = id;
                if (r == -ENOMEM)
                        log_warning("events: out of memory, entry %" PRIu64 "-%" PRIu64 " dropped", id.ms,
                                    id.seq);
                if (r == 0)
                        n++;
        }
        if (n == 0)
                return 0;
        pthread_mutex_lock(&ev->lock);
        for (size_t i = 0; i < n; i++)
                ring_push(ev, &batch[i]);
        pthread_cond_broadcast(&ev->cond);
        pthread_mutex_unlock(&ev->lock);
        return 0;
}

static void *reader_main(void *userdata) {
        orc_events *ev = userdata;
        redisContext *c = NULL;
        sid cursor = {0, 0};
        bool cursor_known = false, down = false;
        unsigned backoff_ms = 0;

        while (!is_stopping(ev)) {
                au_error err = {0};
                redisReply *reply;
                char from[48];
                int r;

                if (!c) {
                        r = connect_redis(ev, CONNECT_TIMEOUT_MS, READER_CMD_TIMEOUT_MS, &c, &err);
                        if (r >= 0 && !cursor_known) {
                                r = read_last_id(c, &cursor, &err);
                                if (r >= 0) {
                                        cursor_known = true;
                                        pthread_mutex_lock(&ev->lock);
                                        ev->base = cursor;
                                        ev->base_known = true;
                                        pthread_mutex_unlock(&ev->lock);
                                }
                        }
                        if (r < 0) {
                                if (c)
                                        redisFree(c);
                                c = NULL;
                                if (!down)
                                        log_redis_failure(ev, "cannot read " ORC_EVENTS_STREAM ", retrying",
                                                          err.msg);
                                down = true;
                                backoff_ms =
                                        backoff_ms ? MIN(backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
                                sleep_unless_stopping(ev, backoff_ms);
                                continue;
                        }
                        pthread_mutex_lock(&ev->lock);
                        ev->reader_fd = c->fd;
                        bool stopping = ev->stopping;
                        pthread_mutex_unlock(&ev->lock);
                        if (stopping)
                                break;
                        if (down)
                                au_log_kv(AU_LOG_NOTICE, NULL,
                                          "events: reading " ORC_EVENTS_STREAM " again");
                        down = false;
                        backoff_ms = 0;
                }

                snprintf(from, sizeof(from), "%" PRIu64 "-%" PRIu64, cursor.ms, cursor.seq);
                reply = redisCommand(c, "XREAD COUNT %d BLOCK %d STREAMS %s %s", READ_COUNT, BLOCK_MS,
                                     ORC_EVENTS_STREAM, from);
                if (reply && reply->type == REDIS_REPLY_NIL) {
                        freeReplyObject(reply);
                        continue;
                }
                if (reply && reply->type == REDIS_REPLY_ARRAY && reader_take(ev, reply, &cursor) == 0) {
                        freeReplyObject(reply);
                        continue;
                }
                if (is_stopping(ev)) {
                        freeReplyObject(reply);
                        break;
                }
                reply_failure(c, reply, &err, "XREAD " ORC_EVENTS_STREAM);
                freeReplyObject(reply);
                reader_drop(ev, &c);
                if (!down)
                        log_redis_failure(ev, "lost " ORC_EVENTS_STREAM ", retrying", err.msg);
                down = true;
                backoff_ms = backoff_ms ? MIN(backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
                sleep_unless_stopping(ev, backoff_ms);
        }
        reader_drop(ev, &c);
        return NULL;
}

/* ---- start, stop ------------------------------------------------------------ */

static void events_free(orc_events *ev) {
        for (size_t i = 0; i < ORC_EVENTS_RING; i++)
                entry_done(&ev->ring[i]);
        pthread_cond_destroy(&ev->cond);
        pthread_mutex_destroy(&ev->lock);
        free(ev->url);
        free(ev->url_shown);
        free(ev);
}

int orc_events_start(const char *redis_url, orc_events **ret, au_error *err) {
        mem_redis_url u = {0};
        pthread_condattr_t ca;
        sigset_t all, saved;
        orc_events *ev;
        int r;

        if (!redis_url || !ret)
                return au_error_set(err, EINVAL, "events: no Redis URL");
        r = mem_redis_url_parse(redis_url, &u, err);
        mem_redis_url_done(&u);
        if (r < 0)
                return r;

        ev = calloc(1, sizeof(*ev));
        if (!ev)
                return au_error_set(err, ENOMEM, "events");
        ev->reader_fd = -1;
        ev->url = strdup(redis_url);
        ev->url_shown = au_url_mask(redis_url);
        pthread_mutex_init(&ev->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&ev->cond, &ca);
        pthread_condattr_destroy(&ca);
        if (!ev->url || !ev->url_shown) {
                events_free(ev);
                return au_error_set(err, ENOMEM, "events");
        }

        /* The reader must not take the daemon's signals (they go to its signalfd). */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved);
        r = pthread_create(&ev->thread, NULL, reader_main, ev);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (r != 0) {
                events_free(ev);
                return au_error_set(err, r, "events: start the reader thread");
        }
        ev->thread_started = true;
        *ret = ev;
        return 0;
}

orc_events *orc_events_stop(orc_events *ev) {
        bool free_now;

        if (!ev)
                return NULL;
        pthread_mutex_lock(&ev->lock);
        ev->stopping = true;
        /* Ends an XREAD BLOCK at once; SHUT_RD so that a write racing with it gets no SIGPIPE. */
        if (ev->reader_fd >= 0)
                shutdown(ev->reader_fd, SHUT_RD);
        pthread_cond_broadcast(&ev->cond);
        pthread_mutex_unlock(&ev->lock);

        if (ev->thread_started)
                pthread_join(ev->thread, NULL);

        pthread_mutex_lock(&ev->lock);
        ev->stopped = true;
        free_now = ev->n_subs == 0;
        pthread_mutex_unlock(&ev->lock);
        if (free_now)
                events_free(ev);
        return NULL;
}

/* ---- subscribers ------------------------------------------------------------ */

orc_events_sub *orc_events_subscribe(orc_events *ev, const char *since) {
        orc_events_sub *sub;
        sid id;

        if (!ev)
                return NULL;
        sub = calloc(1, sizeof(*sub));
        if (!sub)
                return NULL;
        sub->ev = ev;
        pthread_mutex_lock(&ev->lock);
        ev->n_subs++;
        if (since && sid_parse(since, strlen(since), &id) == 0) {
                sub->have_last = true;
                sub->last = sub->cursor = id;
                sub->pos = ev->next_seq > ORC_EVENTS_RING ? ev->next_seq - ORC_EVENTS_RING : 0;
                sub->caught_up = false;
        } else {
                /* From the newest entry known: if the ring overtakes us, XRANGE fetches what we missed. */
                sub->pos = ev->next_seq;
                sub->caught_up = true;
                if (ev->next_seq > 0) {
                        sub->have_last = true;
                        sub->last = sub->cursor = ev->ring[(ev->next_seq - 1) % ORC_EVENTS_RING].id;
                } else if (ev->base_known) {
                        sub->have_last = true;
                        sub->last = sub->cursor = ev->base;
                }
        }
        pthread_mutex_unlock(&ev->lock);
        return sub;
}

static void backlog_clear(orc_events_sub *sub) {
        for (size_t i = sub->bl_head; i < sub->bl_n; i++)
                entry_done(&sub->bl[i]);
        free(sub->bl);
        sub->bl = NULL;
        sub->bl_n = sub->bl_head = 0;
}

static void fill_close(orc_events_sub *sub) {
        if (sub->bf)
                redisFree(sub->bf);
        sub->bf = NULL;
}

void orc_events_unsubscribe(orc_events_sub *sub) {
        orc_events *ev;
        bool free_now;

        if (!sub)
                return;
        ev = sub->ev;
        backlog_clear(sub);
        fill_close(sub);
        free(sub);

        pthread_mutex_lock(&ev->lock);
        ev->n_subs--;
        free_now = ev->stopped && ev->n_subs == 0;
        pthread_mutex_unlock(&ev->lock);
        if (free_now)
                events_free(ev);
}

/* XRANGE after the cursor into the backlog (empty when called), without the lock. */
static void fill(orc_events_sub *sub) {
        orc_events *ev = sub->ev;
        _cleanup_(freeReplyObjectp) redisReply *reply = NULL;
        au_error err = {0};
        char start[48];
        sid from = sub->cursor;

        if (from.seq < UINT64_MAX)
                from.seq++;
        else if (from.ms < UINT64_MAX) {
                from.ms++;
                from.seq = 0;
        } else {
                sub->caught_up = true;
                return;
        }
        if (!sub->bf && connect_redis(ev, FILL_CONNECT_TIMEOUT_MS, FILL_CMD_TIMEOUT_MS, &sub->bf, &err) < 0)
                goto fail;

        snprintf(start, sizeof(start), "%" PRIu64 "-%" PRIu64, from.ms, from.seq);
        reply = redisCommand(sub->bf, "XRANGE %s %s + COUNT %d", ORC_EVENTS_STREAM, start,
                             ORC_EVENTS_FILL_COUNT);
        if (!reply || reply->type != REDIS_REPLY_ARRAY) {
                reply_failure(sub->bf, reply, &err, "XRANGE " ORC_EVENTS_STREAM);
                goto fail;
        }
        if (reply->elements > 0) {
                sub->bl = calloc(reply->elements, sizeof(entry));
                if (!sub->bl) {
                        au_error_set(&err, ENOMEM, "XRANGE " ORC_EVENTS_STREAM);
                        goto fail;
                }
        }
        for (size_t i = 0; i < reply->elements; i++) {
                sid id;
                int r = entry_from_reply(reply->element[i], &sub->bl[sub->bl_n], &id);
                if (r == -EINVAL || sid_cmp(id, sub->cursor) <= 0) {
                        if (r == 0)
                                entry_done(&sub->bl[sub->bl_n]);
                        continue;
                }
                sub->cursor = id;
                if (r == 0)
                        sub->bl_n++;
        }
        if (reply->elements < ORC_EVENTS_FILL_COUNT) {
                /* The end of the stream: the ring (and the reader) take it from here. */
                sub->caught_up = true;
                fill_close(sub);
        }
        return;

fail:
        /* Give up on the gap rather than hammer Redis; the ring still serves what it has. */
        if (!sub->fill_warned)
                log_redis_failure(ev, "cannot read older events for a subscriber", err.msg);
        sub->fill_warned = true;
        sub->caught_up = true;
        fill_close(sub);
}

static ssize_t deliver(orc_events_sub *sub, const entry *e, char *buf, size_t size) {
        if (e->len > size)
                return -ENOSPC;
        memcpy(buf, e->frame, e->len);
        sub->have_last = true;
        sub->last = e->id;
        if (sid_cmp(sub->cursor, e->id) < 0)
                sub->cursor = e->id;
        return (ssize_t) e->len;
}

ssize_t orc_events_next(orc_events_sub *sub, char *buf, size_t size, int timeout_ms) {
        orc_events *ev;
        struct timespec until;
        bool timed_out = false;
        ssize_t r;

        if (!sub || !buf)
                return -EINVAL;
        ev = sub->ev;
        until = deadline_after(MAX(timeout_ms, 0));

again:
        /* The backlog is the subscriber's own: no lock for it. */
        while (sub->bl_head < sub->bl_n) {
                entry *e = &sub->bl[sub->bl_head];
                if (is_stopping(ev))
                        return -EPIPE;
                if (sub->have_last && sid_cmp(e->id, sub->last) <= 0) {
                        entry_done(e);
                        sub->bl_head++;
                        continue;
                }
                r = deliver(sub, e, buf, size);
                if (r >= 0) {
                        entry_done(e);
                        sub->bl_head++;
                }
                return r;
        }
        backlog_clear(sub);

        pthread_mutex_lock(&ev->lock);
        for (;;) {
                uint64_t oldest = ev->next_seq > ORC_EVENTS_RING ? ev->next_seq - ORC_EVENTS_RING : 0;

                if (ev->stopping) {
                        r = -EPIPE;
                        break;
                }
                if (sub->pos < oldest) {
                        /* The ring overtook us: what it dropped comes from XRANGE. */
                        sub->pos = oldest;
                        if (sub->have_last)
                                sub->caught_up = false;
                }
                if (!sub->caught_up) {
                        if (ev->base_known && sid_cmp(sub->cursor, ev->base) >= 0)
                                sub->caught_up = true;
                        else {
                                pthread_mutex_unlock(&ev->lock);
                                fill(sub);
                                goto again;
                        }
                }
                r = 0;
                while (sub->pos < ev->next_seq) {
                        const entry *e = &ev->ring[sub->pos % ORC_EVENTS_RING];
                        if (sub->have_last && sid_cmp(e->id, sub->last) <= 0) {
                                sub->pos++;
                                continue;
                        }
                        r = deliver(sub, e, buf, size);
                        if (r >= 0)
                                sub->pos++;
                        break;
                }
                if (r != 0 || timed_out || timeout_ms <= 0)
                        break;
                if (pthread_cond_timedwait(&ev->cond, &ev->lock, &until) == ETIMEDOUT)
                        timed_out = true;
        }
        pthread_mutex_unlock(&ev->lock);
        if (sub->caught_up && sub->bf)
                fill_close(sub);
        return r;
}
