/* SPDX-License-Identifier: MIT */
/*
 * The node's Redis Streams bus (bus.h) over hiredis's async API on an au_loop.
 *
 * Lifetimes and re-entrancy, the parts that are easy to get wrong:
 *
 * - hiredis owns each redisAsyncContext and frees it by itself when the
 *   connection fails or drops: first every pending reply callback runs with a
 *   NULL reply, then the event cleanup hook, then the disconnect callback
 *   (connect failures get the connect callback instead). The first of these to
 *   reach us "detaches" the context (conn->ac = NULL); any later callback for it
 *   sees conn->ac != ac, knows it is stale and touches nothing. We never call
 *   redisAsyncFree() on a context hiredis is already freeing, nor from its
 *   connect or disconnect callbacks (hiredis would free it twice); from reply
 *   callbacks it is safe (hiredis defers it to after the callback).
 *
 * - User callbacks (on_job, on_state, done) may call anything here,
 *   mem_bus_free() included. Every way into this file (loop callbacks and the
 *   public calls) counts itself in b->busy; mem_bus_free() while busy only
 *   marks the bus dead and the outermost frame frees it on the way out. Code
 *   that calls a user callback checks b->dead afterwards.
 *
 * - A done callback never runs inside the mem_bus_* call that was given it: a
 *   command refused because Redis is away is answered with -ENOTCONN from the
 *   loop, on its next iteration. A call that returns < 0 (bad arguments, no
 *   memory) never calls done; one that returns 0 calls it exactly once.
 *
 * - mem_bus_free() calls no callback at all, not even for commands in flight:
 *   the caller is tearing down and its userdata may already be gone. Commands
 *   sent before the free may or may not have reached Redis.
 *
 * The jobs credit starts at 0: nothing is read until mem_bus_set_job_credit().
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "common/macro.h"
#include "memory/bus.h"
#include "memory/redis.h"
#include "memory/streams.h"

#define GROUP MEM_JOBS_GROUP
#define RESULTS_KEY MEM_STREAM_RESULTS
#define EVENTS_KEY MEM_STREAM_EVENTS
#define NODES_KEY MEM_KEY_NODES

#define DEFAULT_MAX_ENTRY_BYTES ((size_t) 16 << 20)
#define DEFAULT_RESULT_TTL_S 86400
#define DEFAULT_EVENTS_MAXLEN 10000
#define DEFAULT_BLOCK_MS 1000
#define DEFAULT_HEARTBEAT_TTL_MS 3000

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* hiredis 0.14 has no async connect timeout: a blackholed host would hang forever. */
#define CONNECT_TIMEOUT_MS 5000
/*
 * A Redis that takes this long to answer anything (frozen, partitioned without
 * a RST: TCP would retransmit for minutes) is given up on, so that in-flight
 * commands fail and the caller can spill and retry. It scales with block_ms,
 * the caller's latency budget: 5 x block_ms, within 2 s to 30 s. An
 * XREADGROUP ... BLOCK n gets n ms more.
 */
#define REPLY_TIMEOUT_MIN_MS 2000
#define REPLY_TIMEOUT_MAX_MS 30000
/* Stream ids are "<ms>-<seq>", at most 41 bytes. */
#define ENTRY_ID_MAX 64

/*
 * KEYS: result:<node>:<id>, jobs stream. ARGV: json, ttl, the value to
 * remember (json, or "<token> <auth>\n" json when sealed), node, token and
 * auth ("" when not sealed), the results stream, entry ids. The results
 * stream is not a declared key: Redis checks a script's declared keys for
 * read and write, and a node's ACL user may only write to it (%W~), which
 * the XADD inside the script is checked against.
 * XACK goes through pcall: a group that vanished has nothing pending, and the
 * result is already out, so that must not turn into a failure (and a retry).
 * unpack() is bounded by Lua's C stack, hence the chunks.
 */
static const char publish_script[] =
        "local id\n"
        "if ARGV[5] ~= '' then\n"
        "  id = redis.call('XADD', ARGV[7], '*', 'result', ARGV[1], 'node', ARGV[4], 'token', ARGV[5], "
        "'auth', ARGV[6])\n"
        "else\n"
        "  id = redis.call('XADD', ARGV[7], '*', 'result', ARGV[1], 'node', ARGV[4])\n"
        "end\n"
        "redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])\n"
        "for i = 8, #ARGV, 1000 do\n"
        "  redis.pcall('XACK', KEYS[2], '" GROUP "', unpack(ARGV, i, math.min(i + 999, #ARGV)))\n"
        "end\n"
        "return id\n";

typedef enum conn_state {
        CONN_DOWN,       /* waiting for the retry timer */
        CONN_CONNECTING, /* TCP connect and setup commands (AUTH, SELECT, XGROUP, SCRIPT) */
        CONN_READY,
} conn_state;

typedef struct conn {
        mem_bus *bus;
        const char *name; /* "reader" or "writer", for on_state's why */
        bool is_reader;
        redisAsyncContext *ac; /* NULL once hiredis has been seen tearing it down */
        conn_state state;
        au_source *io;
        uint32_t events;
        /* One timer, meaning depends on state: retry (DOWN), connect timeout
         * (CONNECTING), reply watchdog or deferred drop (READY). */
        au_source *timer;
        const char *drop_why; /* set: the timer drops the connection with this reason */
        unsigned failures;    /* consecutive, for the backoff */
        unsigned setup_left;  /* setup replies still expected */
        unsigned inflight;    /* commands sent on a READY connection, not answered yet */
} conn;

typedef enum cmd_kind { CMD_DONE, CMD_GET, CMD_PUBLISH } cmd_kind;

typedef struct cmd cmd;
struct cmd {
        mem_bus *bus;
        cmd_kind kind;
        mem_done_fn done;
        mem_get_fn get;
        void *userdata;
        unsigned pending; /* replies still expected (a heartbeat pipelines three) */
        int r;            /* first failure among them */
        cmd *next;        /* in the deferred queue */
        /* CMD_PUBLISH keeps its arguments for the EVAL fallback on NOSCRIPT. */
        bool retried;
        int argc;
        const char **argv;
        size_t *argvlen;
        char *buf;
};

typedef enum reported { REPORTED_NONE, REPORTED_UP, REPORTED_DOWN } reported;

struct mem_bus {
        au_loop *loop;
        mem_bus_ops ops;
        void *userdata;

        mem_redis_url url;

        char *node;
        char *jobs_key;
        char *result_prefix;          /* autoos:result:<node>: */
        const redisReply *cur_fields; /* the entry being delivered to on_job, for mem_bus_job_field() */
        char *node_key;
        size_t max_entry_bytes;
        uint64_t result_ttl_s;
        uint64_t events_maxlen;
        uint32_t block_ms;
        uint64_t reply_timeout_ms;

        conn reader;
        conn writer;
        reported reported;
        bool ever_up;
        uint64_t reconnects;
        char why[256];
        char sha[41]; /* of publish_script, from SCRIPT LOAD */

        unsigned credit;
        bool stopped;        /* mem_bus_stop_reading(): no read ever again */
        long long reader_id; /* CLIENT ID of the reader, to unblock its read */
        bool reading;        /* an XREADGROUP is in flight */
        bool delivering;     /* on_job calls for one reply under way */
        bool pending_only;   /* still reading our own pending entries (id last_id), not ">" */
        char last_id[ENTRY_ID_MAX];

        cmd *deferred_head;
        cmd *deferred_tail;
        au_source *deferred_src;

        unsigned busy;
        bool dead;
        uint64_t rng;
};

static void conn_fail(conn *c, const char *why);
static void maybe_read(mem_bus *b);

static bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static char *strjoin2(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        char *p = malloc(la + lb + 1);

        if (p) {
                memcpy(p, a, la);
                memcpy(p + la, b, lb + 1);
        }
        return p;
}

static bool reply_is_string(const redisReply *r) {
        return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->str;
}

static bool reply_is_error(const redisReply *r, const char *prefix) {
        return r && r->type == REDIS_REPLY_ERROR && r->str && (!prefix || startswith(r->str, prefix));
}

/* ---- lifetime ---------------------------------------------------------- */

static void bus_destroy(mem_bus *b);

static void bus_enter(mem_bus *b) {
        b->busy++;
}

/* Never touch b after this: it may be gone. */
static void bus_leave(mem_bus *b) {
        if (--b->busy == 0 && b->dead)
                bus_destroy(b);
}

static cmd *cmd_free(cmd *x) {
        if (!x)
                return NULL;
        free(x->argv);
        free(x->argvlen);
        free(x->buf);
        free(x);
        return NULL;
}

/* Answers the caller (unless the bus was freed) and frees x. */
static void cmd_finish(cmd *x, const char *value, size_t len) {
        if (!x->bus->dead) {
                if (x->kind == CMD_GET) {
                        if (x->get)
                                x->get(x->r, x->r < 0 ? NULL : value, x->r < 0 ? 0 : len, x->userdata);
                } else if (x->done)
                        x->done(x->r, x->userdata);
        }
        cmd_free(x);
}

static void on_deferred(au_source *s, void *userdata) {
        mem_bus *b = userdata;
        cmd *list;

        (void) s;
        bus_enter(b);
        b->deferred_src = au_source_free(b->deferred_src);
        list = b->deferred_head;
        b->deferred_head = b->deferred_tail = NULL;
        while (list) {
                cmd *x = list;
                list = x->next;
                cmd_finish(x, NULL, 0);
        }
        bus_leave(b);
}

/* Answers x with r from the loop's next iteration, never from inside the caller's call. */
static int cmd_defer(cmd *x, int r) {
        mem_bus *b = x->bus;

        if (!b->deferred_src) {
                int q = au_loop_add_timer(b->loop, 0, 0, on_deferred, b, &b->deferred_src);
                if (q < 0)
                        return q;
        }
        x->r = r;
        x->next = NULL;
        if (b->deferred_tail)
                b->deferred_tail->next = x;
        else
                b->deferred_head = x;
        b->deferred_tail = x;
        return 0;
}

static cmd *cmd_new(mem_bus *b, cmd_kind kind, mem_done_fn done, mem_get_fn get, void *userdata) {
        cmd *x = calloc(1, sizeof(*x));
        if (!x)
                return NULL;
        *x = (cmd){.bus = b, .kind = kind, .done = done, .get = get, .userdata = userdata, .pending = 1};
        return x;
}

/* ---- state reporting and backoff ------------------------------------------ */

static uint64_t bus_random(mem_bus *b) {
        /* xorshift64: jitter needs no quality, and the library must not reseed rand(). */
        b->rng ^= b->rng << 13;
        b->rng ^= b->rng >> 7;
        b->rng ^= b->rng << 17;
        return b->rng;
}

/* 100 ms doubling to 5 s, then +-20% so that a fleet does not reconnect in step. */
static uint64_t backoff_ms(mem_bus *b, unsigned failures) {
        uint64_t base = BACKOFF_MIN_MS;

        for (unsigned i = 1; i < failures && base < BACKOFF_MAX_MS; i++)
                base *= 2;
        base = MIN(base, (uint64_t) BACKOFF_MAX_MS);
        return base * 80 / 100 + bus_random(b) % (base * 40 / 100 + 1);
}

/* The first failure of an outage names it; what fails while retrying is its echo. */
static void bus_report_down(mem_bus *b, conn *c, const char *why) {
        if (b->reported == REPORTED_DOWN)
                return;
        snprintf(b->why, sizeof(b->why), "redis %s: %s", c->name, why && *why ? why : "connection lost");
        b->reported = REPORTED_DOWN;
        if (b->ops.on_state)
                b->ops.on_state(b, false, b->why, b->userdata);
}

static void bus_report_up(mem_bus *b) {
        if (b->reported == REPORTED_UP || b->reader.state != CONN_READY || b->writer.state != CONN_READY)
                return;
        if (b->ever_up)
                b->reconnects++;
        b->ever_up = true;
        b->reported = REPORTED_UP;
        b->why[0] = '\0';
        if (b->ops.on_state)
                b->ops.on_state(b, true, NULL, b->userdata);
}

/* Arms the connection's timer, unless a deferred drop is due on it. */
static void conn_set_timer(conn *c, uint64_t after_ms) {
        if (!c->drop_why)
                au_source_set_timer(c->timer, after_ms, 0);
}

/* Drops the connection from the loop, never from inside hiredis's own frames. */
static void conn_drop_later(conn *c, const char *why) {
        if (c->drop_why)
                return;
        c->drop_why = why;
        au_source_set_timer(c->timer, 1, 0);
}

/* A command went out on a READY connection: the watchdog runs while any is unanswered. */
static void conn_sent(conn *c, uint64_t timeout_ms) {
        if (c->inflight++ == 0)
                conn_set_timer(c, timeout_ms);
}

/* An answer came: Redis is alive, give the rest a fresh timeout. */
static void conn_answered(conn *c, uint64_t timeout_ms) {
        if (c->inflight > 0)
                c->inflight--;
        conn_set_timer(c, c->inflight > 0 ? timeout_ms : 0);
}

/* ---- hiredis event adapter (after hiredis/adapters/libevent.h) ------------ */

static void ev_update(conn *c, uint32_t add, uint32_t del) {
        uint32_t events;

        if (!c->io)
                return;
        events = (c->events | add) & ~del;
        if (events == c->events)
                return;
        if (au_source_set_events(c->io, events) < 0) {
                /* The socket would stall unseen. */
                conn_drop_later(c, "cannot watch the socket");
                return;
        }
        c->events = events;
}

static void ev_add_read(void *privdata) {
        ev_update(privdata, EPOLLIN, 0);
}

static void ev_del_read(void *privdata) {
        ev_update(privdata, 0, EPOLLIN);
}

static void ev_add_write(void *privdata) {
        ev_update(privdata, EPOLLOUT, 0);
}

static void ev_del_write(void *privdata) {
        ev_update(privdata, 0, EPOLLOUT);
}

/* hiredis is freeing the context. If we had not noticed yet, this is the news. */
static void ev_cleanup(void *privdata) {
        conn *c = privdata;

        c->io = au_source_free(c->io);
        c->events = 0;
        if (c->ac && !c->bus->dead)
                conn_fail(c, c->ac->errstr);
}

static void on_io(au_source *s, int fd, uint32_t revents, void *userdata) {
        conn *c = userdata;
        mem_bus *b = c->bus;
        redisAsyncContext *ac = c->ac;

        (void) s;
        (void) fd;
        if (!ac)
                return;
        bus_enter(b);
        /* Errors and hang-ups go through the read path, which notices them (also while connecting). */
        if (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))
                redisAsyncHandleRead(ac);
        /* The read may have freed ac (hiredis frees on errors): check it is still ours. */
        if ((revents & EPOLLOUT) && !b->dead && c->ac == ac)
                redisAsyncHandleWrite(ac);
        bus_leave(b);
}

/* ---- connections ------------------------------------------------------------ */

/* Forgets the context; whoever calls this makes sure it gets freed (or is being freed). */
static redisAsyncContext *conn_detach(conn *c) {
        redisAsyncContext *ac = c->ac;

        c->ac = NULL;
        c->io = au_source_free(c->io);
        c->events = 0;
        c->state = CONN_DOWN;
        c->setup_left = 0;
        c->inflight = 0;
        c->drop_why = NULL;
        if (c->is_reader) {
                c->bus->reading = false;
                c->bus->delivering = false;
        }
        return ac;
}

/*
 * The connection failed or dropped, and hiredis frees (or already freed) the
 * context: schedule a retry and tell the caller once per outage.
 */
static void conn_fail(conn *c, const char *why) {
        mem_bus *b = c->bus;

        conn_detach(c);
        if (b->dead)
                return;
        c->failures++;
        au_source_set_timer(c->timer, backoff_ms(b, c->failures), 0);
        bus_report_down(b, c, why);
}

/* We give up on a connection: as conn_fail(), and free the context ourselves. */
static void conn_drop(conn *c, const char *why) {
        redisAsyncContext *ac = c->ac;

        conn_fail(c, why);
        /* Pending callbacks now run with NULL replies (deferred by hiredis when
         * we are inside one of this context's reply callbacks). */
        if (ac)
                redisAsyncFree(ac);
}

static void conn_ready(conn *c) {
        mem_bus *b = c->bus;

        c->state = CONN_READY;
        c->failures = 0;
        conn_set_timer(c, 0);
        if (c->is_reader) {
                /* What we were given before and never acked comes first (DESIGN.md). */
                b->pending_only = true;
                snprintf(b->last_id, sizeof(b->last_id), "0");
        }
        bus_report_up(b);
        if (!b->dead && c->is_reader)
                maybe_read(b);
}

/* Common checks of a setup reply; false when it is stale or the connection is gone. */
static bool setup_reply(conn *c, redisAsyncContext *ac, const redisReply *reply, const char *what,
                        const char *tolerated) {
        char why[256];

        if (c->bus->dead || c->ac != ac)
                return false;
        if (!reply) {
                conn_fail(c, ac->errstr);
                return false;
        }
        if (reply->type == REDIS_REPLY_ERROR && !(tolerated && reply_is_error(reply, tolerated))) {
                snprintf(why, sizeof(why), "%s: %s", what, reply->str ? reply->str : "error");
                conn_drop(c, why);
                return false;
        }
        return true;
}

static void setup_step_done(conn *c) {
        if (--c->setup_left == 0)
                conn_ready(c);
}

static void on_auth_reply(redisAsyncContext *ac, void *reply, void *privdata) {
        conn *c = privdata;
        if (setup_reply(c, ac, reply, "AUTH", NULL))
                setup_step_done(c);
}

static void on_select_reply(redisAsyncContext *ac, void *reply, void *privdata) {
        conn *c = privdata;
        if (setup_reply(c, ac, reply, "SELECT", NULL))
                setup_step_done(c);
}

static void on_group_reply(redisAsyncContext *ac, void *reply, void *privdata) {
        conn *c = privdata;
        /* The group exists already: the usual case after the first start. */
        if (setup_reply(c, ac, reply, "XGROUP CREATE", "BUSYGROUP"))
                setup_step_done(c);
}

static void on_client_id_reply(redisAsyncContext *ac, void *r, void *privdata) {
        conn *c = privdata;
        const redisReply *reply = r;

        if (!setup_reply(c, ac, reply, "CLIENT ID", NULL))
                return;
        c->bus->reader_id = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
        setup_step_done(c);
}

static void on_script_reply(redisAsyncContext *ac, void *r, void *privdata) {
        conn *c = privdata;
        const redisReply *reply = r;

        if (!setup_reply(c, ac, reply, "SCRIPT LOAD", NULL))
                return;
        if (reply_is_string(reply) && reply->len < sizeof(c->bus->sha))
                snprintf(c->bus->sha, sizeof(c->bus->sha), "%s", reply->str);
        else
                c->bus->sha[0] = '\0'; /* EVAL it is, then */
        setup_step_done(c);
}

/*
 * Queues the setup commands right behind the connect: hiredis writes them once
 * the socket is up, and answers them with NULL if it never comes up.
 */
static int conn_queue_setup(conn *c) {
        mem_bus *b = c->bus;
        redisAsyncContext *ac = c->ac;

        if (b->url.password) {
                const char *argv[] = {"AUTH", b->url.user ? b->url.user : "", b->url.password};
                size_t argvlen[] = {4, b->url.user ? strlen(b->url.user) : 0, strlen(b->url.password)};
                int skip = b->url.user ? 0 : 1;

                /* Without a user name this is the one-argument AUTH of Redis < 6. */
                if (skip) {
                        argv[1] = argv[2];
                        argvlen[1] = argvlen[2];
                }
                if (redisAsyncCommandArgv(ac, on_auth_reply, c, 3 - skip, argv, argvlen) != REDIS_OK)
                        return -ENOMEM;
                c->setup_left++;
        }
        if (b->url.db > 0) {
                if (redisAsyncCommand(ac, on_select_reply, c, "SELECT %u", b->url.db) != REDIS_OK)
                        return -ENOMEM;
                c->setup_left++;
        }
        /* Both connections create the group, so the reader never races the writer into NOGROUP. */
        if (redisAsyncCommand(ac, on_group_reply, c, "XGROUP CREATE %s " GROUP " $ MKSTREAM", b->jobs_key) !=
            REDIS_OK)
                return -ENOMEM;
        c->setup_left++;
        if (!c->is_reader) {
                if (redisAsyncCommand(ac, on_script_reply, c, "SCRIPT LOAD %s", publish_script) != REDIS_OK)
                        return -ENOMEM;
                c->setup_left++;
        } else {
                /* So that mem_bus_stop_reading() can end a blocked read from the writer. */
                if (redisAsyncCommand(ac, on_client_id_reply, c, "CLIENT ID") != REDIS_OK)
                        return -ENOMEM;
                c->setup_left++;
        }
        return 0;
}

static void on_connect(const redisAsyncContext *cac, int status) {
        redisAsyncContext *ac = (redisAsyncContext *) cac;
        conn *c = ac->data;

        /* On failure hiredis frees the context right after this returns. */
        if (status != REDIS_OK && c->ac == ac && !c->bus->dead)
                conn_fail(c, ac->errstr);
}

static void on_disconnect(const redisAsyncContext *cac, int status) {
        redisAsyncContext *ac = (redisAsyncContext *) cac;
        conn *c = ac->data;

        (void) status;
        if (c->ac == ac && !c->bus->dead)
                conn_fail(c, ac->errstr);
}

static void conn_connect(conn *c) {
        mem_bus *b = c->bus;
        redisAsyncContext *ac;
        char why[256];
        int r;

        ac = b->url.unix_path ? redisAsyncConnectUnix(b->url.unix_path)
                              : redisAsyncConnect(b->url.host, b->url.port);
        if (!ac) {
                conn_fail(c, "out of memory");
                return;
        }
        if (ac->err) {
                /* Failed before any event hook or callback was set: ours to free. */
                snprintf(why, sizeof(why), "%s", ac->errstr);
                redisAsyncFree(ac);
                conn_fail(c, why);
                return;
        }
        r = au_loop_add_io(b->loop, ac->c.fd, 0, on_io, c, &c->io);
        if (r < 0) {
                redisAsyncFree(ac);
                conn_fail(c, strerror(-r));
                return;
        }
        c->ac = ac;
        c->state = CONN_CONNECTING;
        ac->data = c;
        ac->ev.data = c;
        ac->ev.addRead = ev_add_read;
        ac->ev.delRead = ev_del_read;
        ac->ev.addWrite = ev_add_write;
        ac->ev.delWrite = ev_del_write;
        ac->ev.cleanup = ev_cleanup;
        /* A peer that vanishes without a FIN is found by keepalive (hiredis: ~15 s idle). */
        if (!b->url.unix_path)
                (void) redisEnableKeepAlive(&ac->c);
        redisAsyncSetDisconnectCallback(ac, on_disconnect);
        /* Must come after the hooks: hiredis arms the write event here to see the connect finish. */
        redisAsyncSetConnectCallback(ac, on_connect);
        au_source_set_timer(c->timer, CONNECT_TIMEOUT_MS, 0);
        if (conn_queue_setup(c) < 0)
                conn_drop(c, "cannot queue the setup commands");
}

static void on_conn_timer(au_source *s, void *userdata) {
        conn *c = userdata;
        mem_bus *b = c->bus;

        (void) s;
        bus_enter(b);
        if (c->drop_why)
                conn_drop(c, c->drop_why);
        else
                switch (c->state) {
                case CONN_DOWN:
                        conn_connect(c);
                        break;
                case CONN_CONNECTING:
                        conn_drop(c, "connect timed out");
                        break;
                case CONN_READY:
                        if (c->inflight > 0)
                                conn_drop(c, "no answer from Redis in time");
                        break;
                }
        bus_leave(b);
}

/* ---- jobs ------------------------------------------------------------------ */

static void deliver_entry(mem_bus *b, const redisReply *e, bool pending) {
        const redisReply *id, *fields;
        const char *field = "";
        char *value = NULL;
        size_t len = 0;
        bool truncated = false;

        /* Without an id there is nothing the caller could even ack: skip it. */
        if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 1)
                return;
        id = e->element[0];
        if (!reply_is_string(id) || id->len == 0 || id->len >= ENTRY_ID_MAX || strlen(id->str) != id->len)
                return;
        if (pending)
                memcpy(b->last_id, id->str, id->len + 1);

        /* Deleted or trimmed entries come back as [id, nil]: delivered empty so they can be acked. */
        fields = e->elements >= 2 ? e->element[1] : NULL;
        if (fields && fields->type == REDIS_REPLY_ARRAY) {
                if (fields->elements >= 1 && reply_is_string(fields->element[0]))
                        field = fields->element[0]->str;
                if (fields->elements >= 2 && reply_is_string(fields->element[1])) {
                        value = fields->element[1]->str;
                        len = fields->element[1]->len;
                }
        }
        if (len > b->max_entry_bytes) {
                len = b->max_entry_bytes;
                truncated = true;
                /* The reply is ours until the callback returns; keep value a C string too. */
                value[len] = '\0';
        }
        if (b->credit > 0)
                b->credit--;
        b->cur_fields = fields && fields->type == REDIS_REPLY_ARRAY ? fields : NULL;
        if (b->ops.on_job)
                b->ops.on_job(b, id->str, field, value, len, truncated, pending, b->userdata);
        if (!b->dead)
                b->cur_fields = NULL;
}

/*
 * Inside on_job: the value of another field of the entry being delivered
 * (the first occurrence after the first field), or NULL. The bytes live
 * until on_job returns.
 */
const char *mem_bus_job_field(mem_bus *b, const char *name, size_t *ret_len) {
        const redisReply *f = b ? b->cur_fields : NULL;

        for (size_t i = 2; f && i + 1 < f->elements; i += 2)
                if (reply_is_string(f->element[i]) && reply_is_string(f->element[i + 1]) &&
                    strcmp(f->element[i]->str, name) == 0) {
                        if (ret_len)
                                *ret_len = f->element[i + 1]->len;
                        return f->element[i + 1]->str;
                }
        return NULL;
}

/* Returns how many entries the reply held (delivered or not). */
static size_t deliver(mem_bus *b, const redisReply *reply, bool pending) {
        size_t n = 0;

        /* nil: BLOCK timed out. Anything but an array of [key, entries] is ignored. */
        if (reply->type != REDIS_REPLY_ARRAY)
                return 0;
        b->delivering = true;
        for (size_t i = 0; i < reply->elements; i++) {
                const redisReply *stream = reply->element[i];
                const redisReply *entries;

                if (!stream || stream->type != REDIS_REPLY_ARRAY || stream->elements < 2)
                        continue;
                entries = stream->element[1];
                if (!entries || entries->type != REDIS_REPLY_ARRAY)
                        continue;
                for (size_t j = 0; j < entries->elements; j++) {
                        n++;
                        deliver_entry(b, entries->element[j], pending);
                        if (b->dead || b->reader.state != CONN_READY)
                                return n;
                }
        }
        b->delivering = false;
        return n;
}

static void on_read_reply(redisAsyncContext *ac, void *r, void *privdata) {
        mem_bus *b = privdata;
        conn *c = &b->reader;
        const redisReply *reply = r;
        char prev[ENTRY_ID_MAX], why[256];
        bool pending = b->pending_only;
        size_t n;

        if (b->dead || c->ac != ac)
                return;
        b->reading = false;
        if (!reply) {
                conn_fail(c, ac->errstr);
                return;
        }
        conn_answered(c, b->reply_timeout_ms);
        if (reply->type == REDIS_REPLY_ERROR) {
                /* NOGROUP (the stream was deleted) included: reconnecting recreates the group. */
                snprintf(why, sizeof(why), "XREADGROUP: %s", reply->str ? reply->str : "error");
                conn_drop(c, why);
                return;
        }
        memcpy(prev, b->last_id, sizeof(prev));
        n = deliver(b, reply, pending);
        if (b->dead || c->ac != ac)
                return;
        /* Pending entries are done when a read comes back empty (or makes no progress). */
        if (pending && (n == 0 || strcmp(prev, b->last_id) == 0))
                b->pending_only = false;
        maybe_read(b);
}

static void maybe_read(mem_bus *b) {
        conn *c = &b->reader;
        char count[16], block[16];
        const char *argv[11];
        size_t argvlen[11];
        int argc = 0;

#define ARG(s)                                      \
        do {                                        \
                argv[argc] = (s);                   \
                argvlen[argc] = strlen(argv[argc]); \
                argc++;                             \
        } while (0)

        if (b->dead || b->stopped || c->state != CONN_READY || c->drop_why || b->reading || b->delivering ||
            b->credit == 0)
                return;
        snprintf(count, sizeof(count), "%u", b->credit);
        snprintf(block, sizeof(block), "%" PRIu32, b->block_ms);
        ARG("XREADGROUP");
        ARG("GROUP");
        ARG(GROUP);
        ARG(b->node);
        ARG("COUNT");
        ARG(count);
        /* Pending entries are answered at once; BLOCK only for new ones. */
        if (!b->pending_only) {
                ARG("BLOCK");
                ARG(block);
        }
        ARG("STREAMS");
        ARG(b->jobs_key);
        ARG(b->pending_only ? b->last_id : ">");
#undef ARG

        if (redisAsyncCommandArgv(c->ac, on_read_reply, b, argc, argv, argvlen) != REDIS_OK) {
                /* We may be inside one of the writer's or the reader's callbacks. */
                conn_drop_later(c, "cannot queue XREADGROUP");
                return;
        }
        b->reading = true;
        conn_sent(c, b->reply_timeout_ms + (b->pending_only ? 0 : b->block_ms));
}

/* ---- writer commands ---------------------------------------------------------- */

/* A reply for x came from the writer ac; NULL means the connection went away. */
static bool cmd_reply_common(cmd *x, redisAsyncContext *ac, const redisReply *reply) {
        mem_bus *b = x->bus;
        int r = 0;

        if (!reply) {
                if (!b->dead && b->writer.ac == ac)
                        conn_fail(&b->writer, ac->errstr);
                r = -ECONNRESET;
        } else {
                if (!b->dead && b->writer.ac == ac)
                        conn_answered(&b->writer, b->reply_timeout_ms);
                if (reply->type == REDIS_REPLY_ERROR)
                        r = -EIO;
        }
        if (r < 0 && x->r == 0)
                x->r = r;
        return --x->pending == 0;
}

static void on_cmd_reply(redisAsyncContext *ac, void *reply, void *privdata) {
        cmd *x = privdata;

        if (cmd_reply_common(x, ac, reply))
                cmd_finish(x, NULL, 0);
}

static void on_get_reply(redisAsyncContext *ac, void *r, void *privdata) {
        cmd *x = privdata;
        const redisReply *reply = r;

        if (!cmd_reply_common(x, ac, reply))
                return;
        if (x->r == 0 && reply->type == REDIS_REPLY_STRING)
                cmd_finish(x, reply->str, reply->len);
        else {
                if (x->r == 0 && reply->type != REDIS_REPLY_NIL)
                        x->r = -EIO;
                cmd_finish(x, NULL, 0);
        }
}

static void on_publish_reply(redisAsyncContext *ac, void *r, void *privdata) {
        cmd *x = privdata;
        mem_bus *b = x->bus;
        const redisReply *reply = r;

        /* The script cache was flushed (SCRIPT FLUSH, failover): send the script itself, once. */
        if (reply_is_error(reply, "NOSCRIPT") && !x->retried && !b->dead && b->writer.ac == ac) {
                x->retried = true;
                x->argv[0] = "EVAL";
                x->argvlen[0] = 4;
                x->argv[1] = publish_script;
                x->argvlen[1] = strlen(publish_script);
                if (redisAsyncCommandArgv(ac, on_publish_reply, x, x->argc, x->argv, x->argvlen) ==
                    REDIS_OK) {
                        /* One answered, one sent: still in flight, but Redis is alive. */
                        conn_set_timer(&b->writer, b->reply_timeout_ms);
                        return;
                }
        }
        on_cmd_reply(ac, r, privdata);
}

/* Sends one writer command for x; on refusal, x is answered -ENOTCONN from the loop. */
static int writer_send(cmd *x, redisCallbackFn *fn, int argc, const char **argv, const size_t *argvlen) {
        mem_bus *b = x->bus;

        if (b->writer.state != CONN_READY || b->writer.drop_why ||
            redisAsyncCommandArgv(b->writer.ac, fn, x, argc, argv, argvlen) != REDIS_OK)
                return -ENOTCONN;
        conn_sent(&b->writer, b->reply_timeout_ms);
        return 0;
}

/* Sends x (one command) or defers -ENOTCONN; returns < 0 only when nothing will call done. */
static int cmd_submit(cmd *x, redisCallbackFn *fn, int argc, const char **argv, const size_t *argvlen) {
        int r = writer_send(x, fn, argc, argv, argvlen);

        if (r < 0) {
                r = cmd_defer(x, r);
                if (r < 0)
                        cmd_free(x);
        }
        return r;
}

static bool valid_ids(const char *const *ids, size_t n) {
        if (n > 0 && !ids)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!ids[i] || !ids[i][0])
                        return false;
        return true;
}

int mem_bus_publish_result(mem_bus *b, const char *result_id, const char *json, size_t len,
                           const mem_bus_seal *seal, const char *const *entry_ids, size_t n_entry_ids,
                           mem_done_fn done, void *userdata) {
        char ttl[24];
        size_t idlen, total, keylen, ttllen, toklen = 0, authlen = 0, prelen, cachedlen;
        cmd *x;
        char *p;
        int r;

        if (!b || !result_id || !result_id[0] || (!json && len > 0) || !valid_ids(entry_ids, n_entry_ids))
                return -EINVAL;
        if (seal && (!seal->token || !seal->auth || !seal->token[0] || !seal->auth[0] ||
                     strchr(seal->token, ' ') || strchr(seal->auth, '\n')))
                return -EINVAL;
        if (b->dead)
                return -ESHUTDOWN;
        if (n_entry_ids > (size_t) INT_MAX - 11)
                return -E2BIG;
        x = cmd_new(b, CMD_PUBLISH, done, NULL, userdata);
        if (!x)
                return -ENOMEM;

        if (seal) {
                toklen = strlen(seal->token);
                authlen = strlen(seal->auth);
        }
        idlen = strlen(result_id);
        prelen = strlen(b->result_prefix);
        keylen = prelen + idlen;
        ttllen = (size_t) snprintf(ttl, sizeof(ttl), "%" PRIu64, b->result_ttl_s);
        cachedlen = seal ? toklen + 1 + authlen + 1 + len : len;
        total = keylen + 1 + len + 1 + ttllen + 1 + cachedlen + 1 + toklen + 1 + authlen + 1;
        for (size_t i = 0; i < n_entry_ids; i++)
                total += strlen(entry_ids[i]) + 1;
        x->argc = 12 + (int) n_entry_ids;
        /* EVALSHA sha 2 result-key jobs-key json ttl cached node token auth results-stream entry-ids... */
        x->argv = calloc((size_t) x->argc, sizeof(*x->argv));
        x->argvlen = calloc((size_t) x->argc, sizeof(*x->argvlen));
        x->buf = malloc(total);
        if (!x->argv || !x->argvlen || !x->buf) {
                cmd_free(x);
                return -ENOMEM;
        }

        /* Our own copies: the EVAL fallback resends them after this call returned. */
        p = x->buf;
#define PUT(i, s, l)                 \
        do {                         \
                memcpy(p, (s), (l)); \
                p[l] = '\0';         \
                x->argv[i] = p;      \
                x->argvlen[i] = (l); \
                p += (l) + 1;        \
        } while (0)
        x->argv[0] = b->sha[0] ? "EVALSHA" : "EVAL";
        x->argv[1] = b->sha[0] ? b->sha : publish_script;
        x->argv[2] = "2";
        memcpy(p, b->result_prefix, prelen);
        memcpy(p + prelen, result_id, idlen);
        p[keylen] = '\0';
        x->argv[3] = p;
        x->argvlen[3] = keylen;
        p += keylen + 1;
        x->argv[4] = b->jobs_key;
        PUT(5, len > 0 ? json : "", len);
        PUT(6, ttl, ttllen);
        /* What a later GET answers with: the seal travels with the result it seals. */
        x->argv[7] = p;
        x->argvlen[7] = cachedlen;
        if (seal) {
                memcpy(p, seal->token, toklen);
                p[toklen] = ' ';
                memcpy(p + toklen + 1, seal->auth, authlen);
                p[toklen + 1 + authlen] = '\n';
                p += toklen + 1 + authlen + 1;
        }
        if (len > 0)
                memcpy(p, json, len);
        p[len] = '\0';
        p += len + 1;
        x->argv[8] = b->node;
        PUT(9, seal ? seal->token : "", toklen);
        PUT(10, seal ? seal->auth : "", authlen);
        x->argv[11] = RESULTS_KEY;
        for (size_t i = 0; i < n_entry_ids; i++)
                PUT(12 + i, entry_ids[i], strlen(entry_ids[i]));
#undef PUT
        for (int i = 0; i < 5; i++)
                if (i != 3)
                        x->argvlen[i] = strlen(x->argv[i]);
        x->argvlen[8] = strlen(x->argv[8]);
        x->argvlen[11] = strlen(x->argv[11]);

        bus_enter(b);
        r = cmd_submit(x, on_publish_reply, x->argc, x->argv, x->argvlen);
        bus_leave(b);
        return r;
}

int mem_bus_ack(mem_bus *b, const char *const *entry_ids, size_t n, mem_done_fn done, void *userdata) {
        _cleanup_free_ const char **argv = NULL;
        _cleanup_free_ size_t *argvlen = NULL;
        cmd *x;
        int r;

        if (!b || !valid_ids(entry_ids, n))
                return -EINVAL;
        if (b->dead)
                return -ESHUTDOWN;
        if (n > (size_t) INT_MAX - 3)
                return -E2BIG;
        x = cmd_new(b, CMD_DONE, done, NULL, userdata);
        if (!x)
                return -ENOMEM;
        if (n == 0) {
                /* Nothing to acknowledge: success, still from the loop. */
                r = cmd_defer(x, 0);
                if (r < 0)
                        cmd_free(x);
                return r;
        }
        argv = calloc(n + 3, sizeof(*argv));
        argvlen = calloc(n + 3, sizeof(*argvlen));
        if (!argv || !argvlen) {
                cmd_free(x);
                return -ENOMEM;
        }
        argv[0] = "XACK";
        argv[1] = b->jobs_key;
        argv[2] = GROUP;
        for (size_t i = 0; i < n; i++)
                argv[3 + i] = entry_ids[i];
        for (size_t i = 0; i < n + 3; i++)
                argvlen[i] = strlen(argv[i]);

        bus_enter(b);
        r = cmd_submit(x, on_cmd_reply, (int) n + 3, argv, argvlen);
        bus_leave(b);
        return r;
}

int mem_bus_get_result(mem_bus *b, const char *result_id, mem_get_fn done, void *userdata) {
        _cleanup_free_ char *key = NULL;
        const char *argv[2];
        size_t argvlen[2];
        cmd *x;
        int r;

        if (!b || !result_id || !result_id[0])
                return -EINVAL;
        if (b->dead)
                return -ESHUTDOWN;
        key = strjoin2(b->result_prefix, result_id);
        if (!key)
                return -ENOMEM;
        x = cmd_new(b, CMD_GET, NULL, done, userdata);
        if (!x)
                return -ENOMEM;
        argv[0] = "GET";
        argvlen[0] = 3;
        argv[1] = key;
        argvlen[1] = strlen(key);

        bus_enter(b);
        r = cmd_submit(x, on_get_reply, 2, argv, argvlen);
        bus_leave(b);
        return r;
}

int mem_bus_heartbeat(mem_bus *b, const char *const *kv, uint64_t ttl_ms, mem_done_fn done, void *userdata) {
        _cleanup_free_ const char **argv = NULL;
        _cleanup_free_ size_t *argvlen = NULL;
        char ttl[24];
        size_t n = 0;
        cmd *x;
        int r;

        if (!b)
                return -EINVAL;
        for (; kv && kv[n]; n++)
                ;
        if (n % 2 != 0)
                return -EINVAL;
        if (b->dead)
                return -ESHUTDOWN;
        if (n > (size_t) INT_MAX - 2)
                return -E2BIG;
        /* PEXPIRE 0 would delete the hash we just wrote. */
        snprintf(ttl, sizeof(ttl), "%" PRIu64, ttl_ms > 0 ? ttl_ms : (uint64_t) DEFAULT_HEARTBEAT_TTL_MS);
        x = cmd_new(b, CMD_DONE, done, NULL, userdata);
        if (!x)
                return -ENOMEM;
        /* Room for HSET and its pairs, and for the three words of PEXPIRE and SADD. */
        argv = calloc(MAX(n + 2, (size_t) 3), sizeof(*argv));
        argvlen = calloc(MAX(n + 2, (size_t) 3), sizeof(*argvlen));
        if (!argv || !argvlen) {
                cmd_free(x);
                return -ENOMEM;
        }

        bus_enter(b);
        /* Pipelined on the one writer connection, so they run in order; done after the last. */
        x->pending = 0;
        r = 0;
        if (n > 0) {
                argv[0] = "HSET";
                argv[1] = b->node_key;
                for (size_t i = 0; i < n; i++)
                        argv[2 + i] = kv[i];
                for (size_t i = 0; i < n + 2; i++)
                        argvlen[i] = strlen(argv[i]);
                r = writer_send(x, on_cmd_reply, (int) n + 2, argv, argvlen);
                x->pending += r == 0;
        }
        if (r == 0) {
                argv[0] = "PEXPIRE";
                argv[1] = b->node_key;
                argv[2] = ttl;
                for (size_t i = 0; i < 3; i++)
                        argvlen[i] = strlen(argv[i]);
                r = writer_send(x, on_cmd_reply, 3, argv, argvlen);
                x->pending += r == 0;
        }
        if (r == 0) {
                argv[0] = "SADD";
                argv[1] = NODES_KEY;
                argv[2] = b->node;
                for (size_t i = 0; i < 3; i++)
                        argvlen[i] = strlen(argv[i]);
                r = writer_send(x, on_cmd_reply, 3, argv, argvlen);
                x->pending += r == 0;
        }
        if (r < 0) {
                if (x->pending > 0)
                        /* Part went out: its replies (or NULLs) will finish x with the error. */
                        x->r = r;
                else {
                        r = cmd_defer(x, r);
                        if (r < 0)
                                cmd_free(x);
                        bus_leave(b);
                        return r;
                }
        }
        bus_leave(b);
        return 0;
}

int mem_bus_event(mem_bus *b, const char *json, size_t len, mem_done_fn done, void *userdata) {
        char maxlen[24];
        const char *argv[8];
        size_t argvlen[8];
        cmd *x;
        int r;

        if (!b || (!json && len > 0))
                return -EINVAL;
        if (b->dead)
                return -ESHUTDOWN;
        snprintf(maxlen, sizeof(maxlen), "%" PRIu64, b->events_maxlen);
        x = cmd_new(b, CMD_DONE, done, NULL, userdata);
        if (!x)
                return -ENOMEM;
        argv[0] = "XADD";
        argv[1] = EVENTS_KEY;
        argv[2] = "MAXLEN";
        argv[3] = "~";
        argv[4] = maxlen;
        argv[5] = "*";
        argv[6] = MEM_FIELD_EVENT;
        for (size_t i = 0; i < 7; i++)
                argvlen[i] = strlen(argv[i]);
        argv[7] = len > 0 ? json : "";
        argvlen[7] = len;

        bus_enter(b);
        r = cmd_submit(x, on_cmd_reply, 8, argv, argvlen);
        bus_leave(b);
        return r;
}

/* ---- setup ------------------------------------------------------------------- */

static void bus_destroy(mem_bus *b) {
        conn *conns[] = {&b->reader, &b->writer};

        /* Keeps bus_leave() calls made from the callbacks below from coming back here. */
        b->busy++;
        for (size_t i = 0; i < ELEMENTSOF(conns); i++) {
                conn *c = conns[i];
                redisAsyncContext *ac = conn_detach(c);

                /* Pending commands get their NULL replies now and see b->dead: no callback runs. */
                if (ac)
                        redisAsyncFree(ac);
                c->timer = au_source_free(c->timer);
        }
        while (b->deferred_head) {
                cmd *x = b->deferred_head;
                b->deferred_head = x->next;
                cmd_free(x);
        }
        b->deferred_src = au_source_free(b->deferred_src);
        mem_redis_url_done(&b->url);
        free(b->node);
        free(b->jobs_key);
        free(b->node_key);
        free(b->result_prefix);
        free(b);
}

/*
 * Creates the bus and starts connecting both connections from the loop (the
 * first attempt runs on the loop's next iteration, so no callback runs before
 * this returns). cfg strings are copied; zero fields take the defaults of
 * bus.h. The jobs credit starts at 0. Errors: -EINVAL (bad URL or node, with
 * err naming the field), -ENOMEM, or the loop's error.
 */
int mem_bus_new(au_loop *loop, const mem_bus_config *cfg, const mem_bus_ops *ops, void *userdata,
                mem_bus **ret, au_error *err) {
        mem_bus *b;
        int r;

        if (!loop || !cfg || !ret)
                return au_error_set(err, EINVAL, "mem_bus_new");
        if (!cfg->url || !cfg->url[0])
                return au_error_set_field(err, "url", "no Redis URL given");
        if (!cfg->node || !cfg->node[0] || strlen(cfg->node) > 128)
                return au_error_set_field(err, "node", "the node id must be 1 to 128 bytes");

        b = calloc(1, sizeof(*b));
        if (!b)
                return au_error_set(err, ENOMEM, "allocate the Redis bus");
        b->loop = loop;
        if (ops)
                b->ops = *ops;
        b->userdata = userdata;
        b->max_entry_bytes = cfg->max_entry_bytes ? cfg->max_entry_bytes : DEFAULT_MAX_ENTRY_BYTES;
        b->result_ttl_s = cfg->result_ttl_s ? cfg->result_ttl_s : DEFAULT_RESULT_TTL_S;
        b->events_maxlen = cfg->events_maxlen ? cfg->events_maxlen : DEFAULT_EVENTS_MAXLEN;
        /* BLOCK 0 would mean forever to Redis, and no watchdog could tell a dead peer. */
        b->block_ms = cfg->block_ms ? cfg->block_ms : DEFAULT_BLOCK_MS;
        b->reply_timeout_ms = MIN(MAX((uint64_t) b->block_ms * 5, (uint64_t) REPLY_TIMEOUT_MIN_MS),
                                  (uint64_t) REPLY_TIMEOUT_MAX_MS);
        b->rng = (au_now_ms() << 20) ^ (uint64_t) (uintptr_t) b ^ ((uint64_t) getpid() << 40) ^
                 0x9e3779b97f4a7c15u;
        if (b->rng == 0)
                b->rng = 1;
        b->reader = (conn){.bus = b, .name = "reader", .is_reader = true};
        b->writer = (conn){.bus = b, .name = "writer"};

        r = mem_redis_url_parse(cfg->url, &b->url, err);
        if (r < 0) {
                if (r == -ENOMEM)
                        au_error_set(err, ENOMEM, "parse the Redis URL");
                goto fail;
        }
        b->node = strdup(cfg->node);
        b->jobs_key = strjoin2(MEM_STREAM_JOBS_PREFIX, cfg->node);
        b->node_key = strjoin2(MEM_KEY_NODE_PREFIX, cfg->node);
        if (asprintf(&b->result_prefix, MEM_KEY_RESULT_PREFIX "%s:", cfg->node) < 0)
                b->result_prefix = NULL;
        if (!b->node || !b->jobs_key || !b->node_key || !b->result_prefix) {
                r = au_error_set(err, ENOMEM, "allocate the Redis bus");
                goto fail;
        }
        /* Timers created armed "now": the first connect attempts run from the loop. */
        r = au_loop_add_timer(loop, 0, 0, on_conn_timer, &b->reader, &b->reader.timer);
        if (r >= 0)
                r = au_loop_add_timer(loop, 0, 0, on_conn_timer, &b->writer, &b->writer.timer);
        if (r < 0) {
                au_error_set(err, r, "add the Redis bus timers");
                goto fail;
        }
        *ret = b;
        return 0;
fail:
        b->dead = true;
        bus_destroy(b);
        return r;
}

/*
 * Closes both connections and frees the bus. No callback runs from here on,
 * not even done for commands in flight (they may or may not have reached
 * Redis). Safe inside any of the bus's callbacks: the memory goes once that
 * callback returns. Accepts NULL; returns NULL.
 */
mem_bus *mem_bus_free(mem_bus *b) {
        if (!b || b->dead)
                return NULL;
        b->dead = true;
        if (b->busy == 0)
                bus_destroy(b);
        return NULL;
}

bool mem_bus_connected(const mem_bus *b) {
        return b && !b->dead && b->reader.state == CONN_READY && b->writer.state == CONN_READY;
}

uint64_t mem_bus_reconnects(const mem_bus *b) {
        return b ? b->reconnects : 0;
}

/*
 * Entries of a read already under way are all delivered even if credit is
 * lowered meanwhile (Redis has handed them to us: they are pending on this
 * consumer now), so at most the credit given at the time of the read arrives.
 * Delivery itself costs one credit per entry.
 */
void mem_bus_set_job_credit(mem_bus *b, unsigned credit) {
        if (!b || b->dead)
                return;
        bus_enter(b);
        b->credit = credit;
        maybe_read(b);
        bus_leave(b);
}

/*
 * No more reads, for good (a draining node): entries not yet delivered stay
 * in the stream for whoever reads it next. A blocked read in flight is ended
 * with CLIENT UNBLOCK from the writer, so it returns without taking entries;
 * one whose reply is already on its way is still delivered.
 */
void mem_bus_stop_reading(mem_bus *b) {
        conn *w = &b->writer;
        char id[32];

        if (b->stopped)
                return;
        b->stopped = true;
        if (!b->reading || b->pending_only || b->reader_id <= 0 || w->state != CONN_READY || !w->ac)
                return;
        snprintf(id, sizeof(id), "%lld", b->reader_id);
        if (redisAsyncCommand(w->ac, NULL, NULL, "CLIENT UNBLOCK %s", id) != REDIS_OK)
                conn_drop_later(w, "cannot queue CLIENT UNBLOCK");
}
