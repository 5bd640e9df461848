/* SPDX-License-Identifier: MIT */
/*
 * The HTTP API (api.h, doc/api.md) over libmicrohttpd, a thread per
 * connection. A request's state lives in its MHD con_cls from the first
 * call of the access handler (headers only: route, method, key, rate, role,
 * ids, query and Content-Length are checked there, so refusals never read
 * the body) to the completion callback, which logs it and frees it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/parse.h"
#include "orchestrator/api-internal.h"
#include "orchestrator/api.h"
#include "orchestrator/console.h"
#include "orchestrator/drain.h"
#include "orchestrator/run-result.h"
#include "orchestrator/intents.h"
#include "orchestrator/keys.h"
#include "orchestrator/secrets.h"
#include "orchestrator/workflow.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_MAX_BODY ((uint64_t) 1 << 20)
#define DEFAULT_RATE 100.0
#define DEFAULT_BURST 200.0
#define DEFAULT_MAX_CONNECTIONS 256u
#define DEFAULT_MAX_PER_IP 64u
#define DEFAULT_EVENTS_PER_KEY 4u
#define DEFAULT_AUTH_FAIL_RATE 1.0
#define DEFAULT_AUTH_FAIL_BURST 20.0
#define N_FAIL_SLOTS 4096 /* client addresses whose failed authentications are counted (direct-mapped) */
/* TLS 1.2 and 1.3 only, GnuTLS's defaults otherwise. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define CONNECTION_TIMEOUT_S 60u
#define SSE_WAIT_MS 1000
#define SSE_PING_MS 15000 /* well below CONNECTION_TIMEOUT_S: MHD drops a stream quiet for that long */
#define MAX_KEY_BYTES 1024
#define AUTH_RETRY_AFTER_S 5
#define MAX_LIMIT 1000u
#define DEFAULT_LIMIT 100u
#define N_BUCKETS 64
/* A body streamed past the limit is read and dropped up to this much more, then the connection is closed. */
#define MAX_DISCARD ((uint64_t) 16 << 20)
#define LOG_PATH_MAX 256

#define CT_JSON "application/json"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CT_SSE "text/event-stream"

typedef enum route_kind {
        R_HEALTHZ,
        R_METRICS,
        R_WORKFLOWS,   /* GET list, POST submit */
        R_SIMULATE,    /* POST */
        R_WORKFLOW,    /* GET */
        R_WF_ACTION,   /* POST pause|resume|cancel */
        R_AUDIT,       /* GET */
        R_STEP_ACTION, /* POST approve|retry|skip */
        R_RUNS,        /* POST */
        R_NODES,       /* GET */
        R_EVENTS,      /* GET */
        R_KEY,         /* DELETE: revoke */
        R_SECRETS,     /* GET: names and versions, never values */
        R_SECRET,      /* PUT: create or rotate, DELETE */
        R_NODE_DRAIN,  /* POST: drain, DELETE: undrain */
        R_WHOAMI,      /* GET: the key's name and role */
        R_RUN,         /* GET: one attempt's stored result */
        R_INTENTS,     /* POST: a sentence to a draft workflow (intents.c) */
} route_kind;

/* Per key name: its request rate, and its event streams (both under orc_api.lock). */
typedef struct bucket {
        struct bucket *next;
        double tokens;
        uint64_t last_us;
        unsigned streams;
        char name[];
} bucket;

/* Failed authentications of one client address (IPv4, or an IPv6 /64): a token bucket. */
typedef struct fail_slot {
        unsigned char addr[8];
        uint8_t len; /* 0: free */
        double tokens;
        uint64_t last_us;
} fail_slot;

struct orc_api {
        orc_coord *coord;
        orc_events *events;
        /* Keeps the events' memory alive until we stop, whatever the order of the stops. */
        orc_events_sub *events_hold;
        orc_console *console; /* /ui/ and /v1/openapi.json: no key */
        struct MHD_Daemon *mhd;
        uint64_t max_body;
        double rate, burst;
        char addr[128];
        atomic_bool stopping;
        atomic_uint_fast64_t n_requests;
        uint32_t id_prefix;

        unsigned events_per_key;
        double fail_rate, fail_burst;
        bool tls;

        pthread_mutex_t lock; /* buckets, fail slots and the MHD log throttle */
        bucket *buckets[N_BUCKETS];
        fail_slot *fails; /* N_FAIL_SLOTS */
        bool starting;    /* MHD's messages go to start_error, not to the log */
        char start_error[256];
        uint64_t last_log_ms;
        unsigned suppressed;
};

typedef struct request {
        orc_api *api;
        char id[16];
        uint64_t start_us;
        char method[33];
        char *path; /* for the log: valid UTF-8, at most LOG_PATH_MAX bytes */
        unsigned status;
        char *error_body; /* 5xx bodies, for the log */
        char key_name[129];
        orc_role role;           /* the key's */
        unsigned char client[8]; /* the address failures are counted against */
        uint8_t client_len;

        route_kind kind;
        char wf_id[37];
        char step[ORC_MAX_STEP_ID + 1];
        char target_key[ORC_MAX_KEY_NAME + 1]; /* DELETE /v1/keys/{name}, /v1/secrets/{name} */
        const char *action;
        /* query */
        const char *state;
        unsigned limit;
        bool verify, wait;
        char since[48];

        bool ready;                   /* checked: the operation runs once the body is in */
        bool responded;               /* a response is queued */
        bool has_body;                /* Content-Length > 0 or Transfer-Encoding */
        struct MHD_Response *pending; /* a refusal to queue on the final call */
        bool too_large;
        uint64_t discarded;
        char *body;
        size_t len, cap;
} request;

typedef struct sse {
        orc_api *api;
        bucket *key;        /* its streams count holds this one */
        char key_name[129]; /* a stream ends once its key is revoked */
        orc_events_sub *sub;
        int fd; /* the client's socket, watched for a hang-up between events */
        char *frame;
        size_t len, off;
        uint64_t last_write_ms;
        bool started;
} sse;

/* ---- small helpers -------------------------------------------------------- */

/* At most max bytes of s as printable ASCII ('?' for the rest) with "..." when cut: for messages. */
static void printable(char *buf, size_t size, const char *s, size_t max) {
        size_t n = 0, i;

        for (i = 0; s[i] && i < max && n + 1 < size; i++)
                buf[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
        if (s[i] && n + 4 < size) {
                memcpy(buf + n, "...", 3);
                n += 3;
        }
        buf[n] = '\0';
}

static bool is_uuid(const char *s) {
        static const int dash[] = {8, 13, 18, 23};
        size_t i, d = 0;

        for (i = 0; s[i]; i++) {
                if (i >= 36)
                        return false;
                if (d < ELEMENTSOF(dash) && (int) i == dash[d]) {
                        if (s[i] != '-')
                                return false;
                        d++;
                } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                             (s[i] >= 'A' && s[i] <= 'F')))
                        return false;
        }
        return i == 36;
}

static bool is_step_id(const char *s) {
        size_t i;

        for (i = 0; s[i]; i++) {
                char ch = s[i];
                if (i >= ORC_MAX_STEP_ID ||
                    !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                      ch == '.' || ch == '_' || ch == '-'))
                        return false;
        }
        return i > 0;
}

/* An API key's name in a path: 1 to 128 bytes of printable ASCII (no '/': it is one segment). */
static bool is_key_name(const char *s) {
        size_t i;

        for (i = 0; s[i]; i++)
                if (i >= ORC_MAX_KEY_NAME || (unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e)
                        return false;
        return i > 0;
}

/* ---- responses ------------------------------------------------------------ */

typedef struct extra_headers {
        const char *allow;
        const char *www_authenticate;
        unsigned retry_after_s;
} extra_headers;

/* Queues rep (its body is taken) with the request's headers; MHD_NO closes the connection. */
static enum MHD_Result send_reply(request *rq, struct MHD_Connection *c, orc_reply *rep, const char *ctype,
                                  const extra_headers *x) {
        struct MHD_Response *resp;
        enum MHD_Result r;
        char retry[24];
        unsigned status = (unsigned) rep->status;

        if (!rep->body || status < 100 || status > 599) {
                orc_reply_done(rep);
                if (orc_reply_error(rep, 500, "internal", NULL, "internal error (request %s)", rq->id) < 0 ||
                    !rep->body)
                        return MHD_NO;
                status = 500;
                ctype = CT_JSON;
        }
        if (status >= 500 && !rq->error_body)
                rq->error_body = strndup(rep->body, 512);

        resp = MHD_create_response_from_buffer_with_free_callback(rep->len, rep->body, free);
        if (!resp) {
                orc_reply_done(rep);
                return MHD_NO;
        }
        rep->body = NULL; /* the response owns it now */
        unsigned retry_after = x && x->retry_after_s ? x->retry_after_s : rep->retry_after_s;
        snprintf(retry, sizeof(retry), "%u", retry_after);
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
            MHD_add_response_header(resp, "X-Request-Id", rq->id) != MHD_YES ||
            (retry_after && MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry) != MHD_YES) ||
            (x && x->allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, x->allow) != MHD_YES) ||
            (x && x->www_authenticate &&
             MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, x->www_authenticate) !=
                     MHD_YES)) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        if (!rq->ready && !rq->has_body) {
                /*
                 * Refused at the first call, with no body to come: answered on the
                 * final call instead, as MHD closes the connection after a response
                 * queued this early. With a body, at once: it is never read.
                 */
                rq->pending = resp;
                rq->status = status;
                rq->responded = true;
                return MHD_YES;
        }
        r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        if (r == MHD_YES) {
                rq->status = status;
                rq->responded = true;
        }
        return r;
}

static _printf_(6, 7) enum MHD_Result
        send_error(request *rq, struct MHD_Connection *c, const extra_headers *x, int status,
                   const char *code_field, const char *fmt, ...) {
        orc_reply rep = {0};
        char msg[1024], code[32];
        const char *field;
        va_list ap;

        /* code_field is "code" or "code:field" */
        field = strchr(code_field, ':');
        snprintf(code, sizeof(code), "%.*s",
                 (int) (field ? (size_t) (field - code_field) : strlen(code_field)), code_field);
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (orc_reply_error(&rep, status, code, field ? field + 1 : NULL, "%s", msg) < 0 || !rep.body) {
                orc_reply_done(&rep);
                return MHD_NO;
        }
        return send_reply(rq, c, &rep, CT_JSON, x);
}

/* ---- routing --------------------------------------------------------------- */

#define M_GET 1u
#define M_POST 2u
#define M_DELETE 4u
#define M_PUT 8u

static const char *allow_header(unsigned methods) {
        switch (methods) {
        case M_GET:
                return "GET, HEAD";
        case M_POST:
                return "POST";
        case M_DELETE:
                return "DELETE";
        case M_PUT | M_DELETE:
                return "PUT, DELETE";
        case M_POST | M_DELETE:
                return "POST, DELETE";
        default:
                return "GET, HEAD, POST";
        }
}

/* Splits path into at most max segments (in buf); returns their number, -1 when it is no clean path. */
static int split_path(const char *path, char *buf, size_t size, char **seg, int max) {
        int n = 0;
        size_t len = strlen(path);

        if (path[0] != '/' || len >= size)
                return -1;
        memcpy(buf, path + 1, len);
        for (char *p = buf;;) {
                char *slash = strchr(p, '/');
                if (n == max)
                        return -1;
                if (slash)
                        *slash = '\0';
                if (!*p) /* empty segment: "//", a trailing "/" */
                        return -1;
                seg[n++] = p;
                if (!slash)
                        return n;
                p = slash + 1;
        }
}

/* Fills rq->kind, wf_id (raw, checked later), step, action; returns the allowed methods, 0 for no route. */
static unsigned match_route(request *rq, const char *path, char raw_id[static 256],
                            char raw_step[static 256]) {
        char buf[1024], *s[6];
        int n = split_path(path, buf, sizeof(buf), s, (int) ELEMENTSOF(s));

        raw_id[0] = raw_step[0] = '\0';
        if (n == 1 && strcmp(s[0], "healthz") == 0)
                return rq->kind = R_HEALTHZ, M_GET;
        if (n == 1 && strcmp(s[0], "metrics") == 0)
                return rq->kind = R_METRICS, M_GET;
        if (n < 2 || strcmp(s[0], "v1") != 0)
                return 0;
        if (n == 2 && strcmp(s[1], "runs") == 0)
                return rq->kind = R_RUNS, M_POST;
        if (n == 3 && strcmp(s[1], "runs") == 0) {
                snprintf(raw_step, 256, "%s", s[2]);
                return rq->kind = R_RUN, M_GET;
        }
        if (n == 2 && strcmp(s[1], "nodes") == 0)
                return rq->kind = R_NODES, M_GET;
        if (n == 2 && strcmp(s[1], "events") == 0)
                return rq->kind = R_EVENTS, M_GET;
        if (n == 2 && strcmp(s[1], "whoami") == 0)
                return rq->kind = R_WHOAMI, M_GET;
        if (n == 4 && strcmp(s[1], "nodes") == 0 && strcmp(s[3], "drain") == 0) {
                snprintf(raw_step, 256, "%s", s[2]);
                return rq->kind = R_NODE_DRAIN, M_POST | M_DELETE;
        }
        if (n == 2 && strcmp(s[1], "intents") == 0)
                return rq->kind = R_INTENTS, M_POST;
        if (n == 3 && strcmp(s[1], "keys") == 0) {
                snprintf(raw_step, 256, "%s", s[2]);
                return rq->kind = R_KEY, M_DELETE;
        }
        if (n == 2 && strcmp(s[1], "secrets") == 0)
                return rq->kind = R_SECRETS, M_GET;
        if (n == 3 && strcmp(s[1], "secrets") == 0) {
                snprintf(raw_step, 256, "%s", s[2]);
                return rq->kind = R_SECRET, M_PUT | M_DELETE;
        }
        if (strcmp(s[1], "workflows") != 0)
                return 0;
        if (n == 2)
                return rq->kind = R_WORKFLOWS, M_GET | M_POST;
        if (n == 3 && strcmp(s[2], "simulate") == 0)
                return rq->kind = R_SIMULATE, M_POST;
        snprintf(raw_id, 256, "%s", s[2]);
        if (n == 3)
                return rq->kind = R_WORKFLOW, M_GET;
        if (n == 4) {
                static const char *const wf_actions[] = {"pause", "resume", "cancel"};
                if (strcmp(s[3], "audit") == 0)
                        return rq->kind = R_AUDIT, M_GET;
                for (size_t i = 0; i < ELEMENTSOF(wf_actions); i++)
                        if (strcmp(s[3], wf_actions[i]) == 0) {
                                rq->action = wf_actions[i];
                                return rq->kind = R_WF_ACTION, M_POST;
                        }
                return 0;
        }
        if (n == 6 && strcmp(s[3], "steps") == 0) {
                static const char *const step_actions[] = {"approve", "retry", "skip"};
                snprintf(raw_step, 256, "%s", s[4]);
                for (size_t i = 0; i < ELEMENTSOF(step_actions); i++)
                        if (strcmp(s[5], step_actions[i]) == 0) {
                                rq->action = step_actions[i];
                                return rq->kind = R_STEP_ACTION, M_POST;
                        }
        }
        return 0;
}

/* The least role for the route and what the request does, for 403 messages. */
static orc_role route_role(const request *rq, bool post, char *what, size_t size) {
        switch (rq->kind) {
        case R_WORKFLOWS:
                if (!post)
                        break;
                snprintf(what, size, "submit workflows");
                return ORC_ROLE_OPERATOR;
        case R_RUNS:
                snprintf(what, size, "submit runs");
                return ORC_ROLE_OPERATOR;
        case R_INTENTS:
                snprintf(what, size, "draft intents");
                return ORC_ROLE_OPERATOR;
        case R_WF_ACTION:
                snprintf(what, size, "%s workflows", rq->action);
                return ORC_ROLE_OPERATOR;
        case R_STEP_ACTION:
                snprintf(what, size, "%s steps", rq->action);
                return ORC_ROLE_OPERATOR;
        case R_SIMULATE:
                snprintf(what, size, "simulate workflows");
                return ORC_ROLE_VIEWER;
        case R_KEY:
                snprintf(what, size, "revoke keys");
                return ORC_ROLE_ADMIN;
        case R_SECRETS:
        case R_SECRET:
                snprintf(what, size, "manage secrets");
                return ORC_ROLE_ADMIN;
        case R_NODE_DRAIN:
                snprintf(what, size, "%s nodes", post ? "drain" : "undrain");
                return ORC_ROLE_OPERATOR;
        default:
                break;
        }
        snprintf(what, size, "read %s",
                 rq->kind == R_NODES    ? "nodes"
                 : rq->kind == R_EVENTS ? "events"
                 : rq->kind == R_AUDIT  ? "audit trails"
                 : rq->kind == R_RUN    ? "runs"
                                        : "workflows");
        return ORC_ROLE_VIEWER;
}

/* ---- authentication and rate ------------------------------------------------- */

static const char *role_name(orc_role r) {
        const char *s = orc_role_to_string(r);
        return s ? s : "none";
}

/* The key of "Bearer <key>" into key; -ENOENT without a header, -EINVAL when malformed. */
static int bearer_key(struct MHD_Connection *c, char key[static MAX_KEY_BYTES + 1]) {
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        size_t n;

        if (!h)
                return -ENOENT;
        h += strspn(h, " \t");
        if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
                return -EINVAL;
        h += 6;
        h += strspn(h, " \t");
        n = strcspn(h, " \t");
        if (n == 0 || n > MAX_KEY_BYTES || h[n + strspn(h + n, " \t")] != '\0')
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) h[i] < 0x21 || (unsigned char) h[i] > 0x7e)
                        return -EINVAL;
        memcpy(key, h, n);
        key[n] = '\0';
        return 0;
}

static size_t bucket_hash(const char *s) {
        uint32_t h = 2166136261u;
        for (; *s; s++)
                h = (h ^ (uint8_t) *s) * 16777619u;
        return h % N_BUCKETS;
}

/* Takes a token from the key's bucket; false with *retry_after (seconds, >= 1) when there is none. */
static bool rate_take(orc_api *api, const char *name, unsigned *retry_after) {
        uint64_t now = au_now_us();
        bool ok = true;
        bucket *b;

        pthread_mutex_lock(&api->lock);
        bucket **head = &api->buckets[bucket_hash(name)];
        for (b = *head; b && strcmp(b->name, name) != 0; b = b->next)
                ;
        if (!b) {
                size_t n = strlen(name);
                b = malloc(sizeof(*b) + n + 1);
                if (!b) {
                        /* Out of memory: let it through rather than refuse every new key. */
                        pthread_mutex_unlock(&api->lock);
                        return true;
                }
                memcpy(b->name, name, n + 1);
                b->tokens = api->burst;
                b->last_us = now;
                b->streams = 0;
                b->next = *head;
                *head = b;
        }
        b->tokens = MIN(api->burst, b->tokens + (double) (now - b->last_us) / 1e6 * api->rate);
        b->last_us = now;
        if (b->tokens >= 1.0)
                b->tokens -= 1.0;
        else {
                double s = ceil((1.0 - b->tokens) / api->rate);
                *retry_after = s < 1.0 ? 1u : s > 86400.0 ? 86400u : (unsigned) s;
                ok = false;
        }
        pthread_mutex_unlock(&api->lock);
        return ok;
}

/* The client's address as failures count it: IPv4 (also v4-mapped IPv6) whole, IPv6 by its /64. */
static void client_address(struct MHD_Connection *c, request *rq) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;

        rq->client_len = 0;
        if (sa && sa->sa_family == AF_INET) {
                memcpy(rq->client, &((const struct sockaddr_in *) sa)->sin_addr, 4);
                rq->client_len = 4;
        } else if (sa && sa->sa_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
                if (IN6_IS_ADDR_V4MAPPED(a)) {
                        memcpy(rq->client, a->s6_addr + 12, 4);
                        rq->client_len = 4;
                } else {
                        memcpy(rq->client, a->s6_addr, 8);
                        rq->client_len = 8;
                }
        }
}

/*
 * The client's slot, refilled to now; NULL for an unknown address family. A
 * slot held by another address is taken over once that one's bucket is full
 * again (it has nothing to remember); until then the two share it.
 */
static fail_slot *fail_slot_of(orc_api *api, const request *rq, uint64_t now) {
        uint32_t h = 2166136261u;
        fail_slot *f;

        if (!rq->client_len || !api->fails)
                return NULL;
        for (size_t i = 0; i < rq->client_len; i++)
                h = (h ^ rq->client[i]) * 16777619u;
        f = &api->fails[h % N_FAIL_SLOTS];
        if (f->len)
                f->tokens =
                        MIN(api->fail_burst, f->tokens + (double) (now - f->last_us) / 1e6 * api->fail_rate);
        if (!f->len || (f->tokens >= api->fail_burst &&
                        (f->len != rq->client_len || memcmp(f->addr, rq->client, rq->client_len) != 0))) {
                memcpy(f->addr, rq->client, rq->client_len);
                f->len = rq->client_len;
                f->tokens = api->fail_burst;
        }
        f->last_us = now;
        return f;
}

/* Whether the client may try a key now; false with *retry_after (seconds) when its failures used it up. */
static bool fail_allowed(orc_api *api, const request *rq, unsigned *retry_after) {
        bool ok = true;

        pthread_mutex_lock(&api->lock);
        fail_slot *f = fail_slot_of(api, rq, au_now_us());
        if (f && f->tokens < 1.0) {
                /* A try while throttled counts too (one token of debt at most): hammering keeps it shut. */
                f->tokens = MAX(f->tokens - 1.0, -1.0);
                double s = ceil((1.0 - f->tokens) / api->fail_rate);
                *retry_after = s < 1.0 ? 1u : s > 86400.0 ? 86400u : (unsigned) s;
                ok = false;
        }
        pthread_mutex_unlock(&api->lock);
        return ok;
}

/* A failed authentication costs the client's address one token. */
static void fail_count(orc_api *api, const request *rq) {
        pthread_mutex_lock(&api->lock);
        fail_slot *f = fail_slot_of(api, rq, au_now_us());
        if (f)
                f->tokens = MAX(f->tokens - 1.0, -1.0);
        pthread_mutex_unlock(&api->lock);
}

/* ---- query parameters -------------------------------------------------------- */

/* The value of a query parameter: NULL when absent, "" when given without "=". */
static const char *query(struct MHD_Connection *c, const char *key) {
        const char *v = NULL;
        size_t vlen = 0;

        if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, key, strlen(key), &v, &vlen) != MHD_YES)
                return NULL;
        return v ? v : "";
}

/* "1", "true", "yes", "" -> true; "0", "false", "no" -> false. */
static int parse_flag(const char *v, bool *ret) {
        if (!v) {
                *ret = false;
                return 0;
        }
        if (!*v || strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0) {
                *ret = true;
                return 0;
        }
        if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0) {
                *ret = false;
                return 0;
        }
        return -EINVAL;
}

static const char *const workflow_states[] = {"pending",   "running", "paused",    "awaiting_human",
                                              "succeeded", "failed",  "cancelled", NULL};

/* Reads the route's query parameters into rq; answers 400 itself (returns false then). */
static bool read_query(request *rq, struct MHD_Connection *c, enum MHD_Result *res) {
        const char *v;
        uint32_t n;

        switch (rq->kind) {
        case R_WORKFLOWS:
                rq->limit = DEFAULT_LIMIT;
                if ((v = query(c, "limit"))) {
                        if (au_parse_uint32(v, &n) < 0 || n < 1 || n > MAX_LIMIT) {
                                *res = send_error(rq, c, NULL, 400, "invalid_request:limit",
                                                  "limit: expected an integer from 1 to %u", MAX_LIMIT);
                                return false;
                        }
                        rq->limit = n;
                }
                if ((v = query(c, "state"))) {
                        for (size_t i = 0; workflow_states[i]; i++)
                                if (strcmp(v, workflow_states[i]) == 0)
                                        rq->state = workflow_states[i];
                        if (!rq->state) {
                                *res = send_error(rq, c, NULL, 400, "invalid_request:state",
                                                  "state: expected one of pending, running, paused, "
                                                  "awaiting_human, succeeded, failed, cancelled");
                                return false;
                        }
                }
                break;
        case R_AUDIT:
                if (parse_flag(query(c, "verify"), &rq->verify) < 0) {
                        *res = send_error(rq, c, NULL, 400, "invalid_request:verify",
                                          "verify: expected 1 or 0");
                        return false;
                }
                break;
        case R_RUNS:
                if (parse_flag(query(c, "wait"), &rq->wait) < 0) {
                        *res = send_error(rq, c, NULL, 400, "invalid_request:wait", "wait: expected 1 or 0");
                        return false;
                }
                break;
        case R_EVENTS: {
                /* A reconnecting browser sends Last-Event-ID with the first URL: the header is newer. */
                const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
                const char *field = h ? "Last-Event-ID" : "since";
                v = h ? h : query(c, "since");
                if (v && (!orc_events_id_valid(v) || strlen(v) >= sizeof(rq->since))) {
                        *res = send_error(rq, c, NULL, 400,
                                          h ? "invalid_request:Last-Event-ID" : "invalid_request:since",
                                          "%s: expected a stream id (<ms>-<seq>)", field);
                        return false;
                }
                if (v)
                        snprintf(rq->since, sizeof(rq->since), "%s", v);
                break;
        }
        default:
                break;
        }
        return true;
}

/* ---- the first call: everything but the body ------------------------------------ */

static enum MHD_Result first_call(request *rq, struct MHD_Connection *c, const char *url,
                                  const char *method) {
        orc_api *api = rq->api;
        char raw_id[256], raw_step[256], shown[96], shown_step[96], what[64];
        char key[MAX_KEY_BYTES + 1];
        enum MHD_Result res = MHD_YES;
        bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
        bool del = strcmp(method, MHD_HTTP_METHOD_DELETE) == 0;
        bool put = strcmp(method, MHD_HTTP_METHOD_PUT) == 0;
        unsigned methods;
        orc_role role = ORC_ROLE_NONE, need;
        int r;

        if (atomic_load(&api->stopping))
                return send_error(rq, c, NULL, 503, "unavailable", "the coordinator is shutting down");

        methods = match_route(rq, url, raw_id, raw_step);
        if (!methods) {
                printable(shown, sizeof(shown), url, 80);
                return send_error(rq, c, NULL, 404, "not_found", "no route '%s'", shown);
        }
        if (!((get && (methods & M_GET)) || (post && (methods & M_POST)) || (del && (methods & M_DELETE)) ||
              (put && (methods & M_PUT)))) {
                char m[40];
                extra_headers x = {.allow = allow_header(methods)};
                printable(m, sizeof(m), method, 32);
                printable(shown, sizeof(shown), url, 80);
                return send_error(rq, c, &x, 405, "method_not_allowed",
                                  "%s is not allowed on %s (allowed: %s)", m, shown, x.allow);
        }

        if (rq->kind != R_HEALTHZ && rq->kind != R_METRICS) {
                unsigned fail_retry = 1;
                client_address(c, rq);
                /* Before the key is even looked at: a valid key must not tell a guesser it is one. */
                if (!fail_allowed(api, rq, &fail_retry)) {
                        extra_headers x = {.retry_after_s = fail_retry};
                        return send_error(
                                rq, c, &x, 429, "rate_limited",
                                "too many failed authentications from this address (%g per second, "
                                "burst %g)",
                                api->fail_rate, api->fail_burst);
                }
                int h = bearer_key(c, key);
                r = h;
                if (h >= 0) {
                        r = orc_auth(api->coord, key, rq->key_name, &role);
                        explicit_bzero(key, sizeof(key));
                        if (r < 0)
                                rq->key_name[0] = '\0';
                }
                if (r == -EAGAIN) {
                        extra_headers x = {.retry_after_s = AUTH_RETRY_AFTER_S};
                        return send_error(rq, c, &x, 503, "unavailable",
                                          "API keys are not loaded yet (PostgreSQL is away)");
                }
                if (h < 0 || r == -ENOKEY) {
                        fail_count(api, rq);
                        extra_headers x = {.www_authenticate = h == -ENOENT ? "Bearer realm=\"autoos\""
                                                                            : "Bearer realm=\"autoos\", "
                                                                              "error=\"invalid_token\""};
                        return send_error(rq, c, &x, 401, "unauthorized", "%s",
                                          h == -ENOENT ? "missing key (Authorization: Bearer <key>)"
                                          : h == -EINVAL
                                                  ? "malformed Authorization header (expected Bearer <key>)"
                                                  : "unknown or revoked key");
                }
                if (r < 0)
                        return send_error(rq, c, NULL, 500, "internal", "key lookup failed: %s (request %s)",
                                          strerror(-r), rq->id);
                unsigned retry_after = 1;
                if (!rate_take(api, rq->key_name, &retry_after)) {
                        extra_headers x = {.retry_after_s = retry_after};
                        return send_error(rq, c, &x, 429, "rate_limited",
                                          "key '%s' is over its rate (%g requests/s, burst %g)",
                                          rq->key_name, api->rate, api->burst);
                }
                rq->role = role;
                need = route_role(rq, post, what, sizeof(what));
                if (role < need)
                        return send_error(rq, c, NULL, 403, "forbidden", "role %s may not %s (needs %s)",
                                          role_name(role), what, role_name(need));
        }

        if (raw_id[0]) {
                if (!is_uuid(raw_id)) {
                        printable(shown, sizeof(shown), raw_id, 64);
                        return send_error(rq, c, NULL, 404, "not_found", "no workflow '%s'", shown);
                }
                for (size_t i = 0; raw_id[i]; i++)
                        rq->wf_id[i] =
                                (char) (raw_id[i] >= 'A' && raw_id[i] <= 'F' ? raw_id[i] + 32 : raw_id[i]);
                rq->wf_id[36] = '\0';
        }
        if (rq->kind == R_KEY) {
                if (!is_key_name(raw_step)) {
                        printable(shown_step, sizeof(shown_step), raw_step, 64);
                        return send_error(rq, c, NULL, 404, "not_found", "no key '%s'", shown_step);
                }
                snprintf(rq->target_key, sizeof(rq->target_key), "%s", raw_step);
        }
        if (rq->kind == R_SECRET) {
                if (!mem_secret_name_valid(raw_step)) {
                        printable(shown_step, sizeof(shown_step), raw_step, 64);
                        return send_error(rq, c, NULL, 404, "not_found", "no secret '%s'", shown_step);
                }
                snprintf(rq->target_key, sizeof(rq->target_key), "%s", raw_step);
        }
        if (rq->kind == R_RUN) {
                if (!is_key_name(raw_step)) { /* one segment of printable ASCII: run-result.c parses it */
                        printable(shown_step, sizeof(shown_step), raw_step, 64);
                        return send_error(rq, c, NULL, 404, "not_found", "no run '%s'", shown_step);
                }
                snprintf(rq->target_key, sizeof(rq->target_key), "%s", raw_step);
        }
        if (rq->kind == R_NODE_DRAIN) {
                if (!orc_node_id_valid(raw_step)) {
                        printable(shown_step, sizeof(shown_step), raw_step, 64);
                        return send_error(rq, c, NULL, 404, "not_found", "no node '%s'", shown_step);
                }
                snprintf(rq->target_key, sizeof(rq->target_key), "%s", raw_step);
        }
        if (rq->kind == R_STEP_ACTION) {
                if (!is_step_id(raw_step)) {
                        printable(shown_step, sizeof(shown_step), raw_step, 64);
                        return send_error(rq, c, NULL, 404, "not_found", "no step '%s' in workflow '%s'",
                                          shown_step, rq->wf_id);
                }
                snprintf(rq->step, sizeof(rq->step), "%s", raw_step);
        }
        if (!read_query(rq, c, &res))
                return res;

        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t announced;
        if (cl && au_parse_uint64(cl, &announced) == 0 && announced > api->max_body)
                return send_error(rq, c, NULL, 413, "payload_too_large",
                                  "the request body is over the limit of %" PRIu64 " bytes", api->max_body);
        rq->ready = true;
        return MHD_YES;
}

/* ---- the body --------------------------------------------------------------- */

static bool takes_body(const request *rq) {
        return rq->kind == R_WORKFLOWS || rq->kind == R_SIMULATE || rq->kind == R_RUNS ||
               rq->kind == R_SECRET || rq->kind == R_INTENTS;
}

/* Returns false when the connection should be closed. */
static bool take_upload(request *rq, const char *data, size_t n) {
        orc_api *api = rq->api;

        if (!rq->too_large && (uint64_t) rq->len + n > api->max_body) {
                rq->too_large = true;
                free(rq->body);
                rq->body = NULL;
                rq->len = rq->cap = 0;
        }
        if (rq->too_large) {
                rq->discarded += n;
                return rq->discarded <= MAX_DISCARD;
        }
        if (!takes_body(rq)) {
                rq->len += n; /* counted against the limit, not kept */
                return true;
        }
        if (rq->len + n + 1 > rq->cap) {
                size_t cap = MAX(rq->cap * 2, rq->len + n + 1);
                cap = MAX(cap, (size_t) 4096);
                cap = MIN(cap, (size_t) api->max_body + 1);
                if (rq->kind == R_SECRET)
                        cap = (size_t) api->max_body + 1; /* one buffer: no copy of a value left behind */
                char *p = realloc(rq->body, cap);
                if (!p)
                        return false;
                rq->body = p;
                rq->cap = cap;
        }
        memcpy(rq->body + rq->len, data, n);
        rq->len += n;
        rq->body[rq->len] = '\0';
        return true;
}

/* ---- server-sent events ------------------------------------------------------- */

static ssize_t sse_copy(sse *s, char *buf, size_t max) {
        size_t n = MIN(max, s->len - s->off);
        memcpy(buf, s->frame + s->off, n);
        s->off += n;
        s->last_write_ms = au_now_ms();
        return (ssize_t) n;
}

static void sse_set(sse *s, const char *text) {
        s->len = strlen(text);
        memcpy(s->frame, text, s->len);
        s->off = 0;
}

/* A client that hung up would otherwise be noticed only when a write fails, a ping or two later. */
static bool client_gone(int fd) {
        struct pollfd p = {.fd = fd, .events = POLLRDHUP};

        return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Blocks (this connection's thread only) until there is an event, a ping is due, or the end. */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
        sse *s = cls;

        if (s->off < s->len)
                return sse_copy(s, buf, max);
        if (!s->started) {
                /* Something at once, so that the client sees the headers now. */
                s->started = true;
                sse_set(s, ": ok\n\n");
                return sse_copy(s, buf, max);
        }
        for (;;) {
                ssize_t n;

                if (atomic_load(&s->api->stopping))
                        return MHD_CONTENT_READER_END_OF_STREAM;
                /* Revoked: no further event (the cache drops it at once here, within a reload elsewhere). */
                if (orc_key_role(s->api->coord, s->key_name) == ORC_ROLE_NONE)
                        return MHD_CONTENT_READER_END_OF_STREAM;
                n = orc_events_next(s->sub, s->frame, ORC_EVENTS_MAX_FRAME, SSE_WAIT_MS);
                if (n > 0) {
                        s->len = (size_t) n;
                        s->off = 0;
                        return sse_copy(s, buf, max);
                }
                if (n == -EPIPE)
                        return MHD_CONTENT_READER_END_OF_STREAM;
                if (n < 0 || client_gone(s->fd))
                        return MHD_CONTENT_READER_END_WITH_ERROR;
                if (au_now_ms() - s->last_write_ms >= SSE_PING_MS) {
                        sse_set(s, ": ping\n\n");
                        return sse_copy(s, buf, max);
                }
        }
}

static void sse_free(void *cls) {
        sse *s = cls;

        if (s->key) {
                pthread_mutex_lock(&s->api->lock);
                s->key->streams--;
                pthread_mutex_unlock(&s->api->lock);
        }
        orc_events_unsubscribe(s->sub);
        free(s->frame);
        free(s);
}

static enum MHD_Result send_events(request *rq, struct MHD_Connection *c, bool head) {
        orc_api *api = rq->api;
        struct MHD_Response *resp;
        enum MHD_Result r;
        sse *s = NULL;

        if (!api->events)
                return send_error(rq, c, NULL, 503, "unavailable", "the event stream is not available");
        if (!head) {
                bucket *b = NULL;
                bool full = false;

                /* rate_take made the key's bucket; each stream holds one place in it until sse_free. */
                pthread_mutex_lock(&api->lock);
                for (b = api->buckets[bucket_hash(rq->key_name)]; b && strcmp(b->name, rq->key_name) != 0;
                     b = b->next)
                        ;
                if (b && b->streams >= api->events_per_key)
                        full = true;
                else if (b)
                        b->streams++;
                pthread_mutex_unlock(&api->lock);
                if (full) {
                        extra_headers x = {.retry_after_s = SSE_WAIT_MS / 1000 * 5};
                        return send_error(rq, c, &x, 429, "rate_limited",
                                          "key '%s' has %u event streams open already (the most at once)",
                                          rq->key_name, api->events_per_key);
                }
                s = calloc(1, sizeof(*s));
                if (s)
                        s->key = b;
                else if (b) {
                        pthread_mutex_lock(&api->lock);
                        b->streams--;
                        pthread_mutex_unlock(&api->lock);
                }
        }
        if (head)
                resp = MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);
        else {
                if (s) {
                        s->api = api;
                        snprintf(s->key_name, sizeof(s->key_name), "%s", rq->key_name);
                }
                if (!s || !(s->frame = malloc(ORC_EVENTS_MAX_FRAME)) ||
                    !(s->sub = orc_events_subscribe(api->events, rq->since[0] ? rq->since : NULL))) {
                        if (s)
                                sse_free(s);
                        return send_error(rq, c, NULL, 500, "internal", "out of memory (request %s)",
                                          rq->id);
                }
                const union MHD_ConnectionInfo *ci =
                        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
                s->fd = ci ? ci->connect_fd : -1;
                s->api = api;
                s->last_write_ms = au_now_ms();
                resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, s, sse_free);
                if (!resp)
                        sse_free(s);
        }
        if (!resp)
                return MHD_NO;
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CT_SSE) != MHD_YES ||
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES ||
            MHD_add_response_header(resp, "X-Accel-Buffering", "no") != MHD_YES ||
            MHD_add_response_header(resp, "X-Request-Id", rq->id) != MHD_YES) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        r = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        if (r == MHD_YES) {
                rq->status = MHD_HTTP_OK;
                rq->responded = true;
        }
        return r;
}

/* ---- the operation ------------------------------------------------------------- */

/* GET /v1/whoami: the key's name and role, as this request was authenticated. */
static void whoami(const request *rq, orc_reply *ret) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);

        if (g) {
                au_json_gen_map_open(g);
                au_json_gen_kv_string(g, "key", rq->key_name);
                au_json_gen_kv_string(g, "role", role_name(rq->role));
                au_json_gen_map_close(g);
                ret->body = au_json_gen_finish(g, &ret->len);
        }
        ret->status = 200;
        if (!ret->body)
                orc_reply_error(ret, 500, "internal", NULL, "out of memory");
}

static enum MHD_Result run_operation(request *rq, struct MHD_Connection *c, const char *method) {
        orc_api *api = rq->api;
        orc_coord *co = api->coord;
        orc_reply rep = {0};
        const char *ctype = CT_JSON;
        bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
        const char *body = rq->body ? rq->body : "";

        if (rq->too_large)
                return send_error(rq, c, NULL, 413, "payload_too_large",
                                  "the request body is over the limit of %" PRIu64 " bytes", api->max_body);

        switch (rq->kind) {
        case R_HEALTHZ:
                orc_health(co, &rep);
                break;
        case R_METRICS:
                orc_metrics(co, &rep);
                if (rep.status == 200)
                        ctype = CT_METRICS;
                break;
        case R_WORKFLOWS:
                if (post)
                        orc_workflow_submit(co, rq->key_name, body, rq->len, &rep);
                else
                        orc_workflow_list(co, rq->state, rq->limit, &rep);
                break;
        case R_SIMULATE:
                orc_workflow_simulate(co, body, rq->len, &rep);
                break;
        case R_WORKFLOW:
                orc_workflow_get(co, rq->wf_id, &rep);
                break;
        case R_WF_ACTION:
                orc_workflow_action(co, rq->key_name, rq->wf_id, rq->action, &rep);
                break;
        case R_AUDIT:
                orc_workflow_audit(co, rq->wf_id, rq->verify, &rep);
                break;
        case R_STEP_ACTION:
                orc_step_action(co, rq->key_name, rq->wf_id, rq->step, rq->action, &rep);
                break;
        case R_RUNS:
                orc_run_submit(co, rq->key_name, body, rq->len, rq->wait, &rep);
                break;
        case R_NODES:
                orc_nodes_list(co, &rep);
                break;
        case R_INTENTS:
                orc_intent_post(co, rq->key_name, body, rq->len, &rep);
                break;
        case R_EVENTS:
                return send_events(rq, c, strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
        case R_KEY:
                orc_key_revoke(co, rq->key_name, rq->target_key, &rep);
                break;
        case R_SECRETS:
                orc_secret_list(co, &rep);
                break;
        case R_NODE_DRAIN:
                orc_node_drain(co, rq->key_name, rq->target_key, post, &rep);
                break;
        case R_WHOAMI:
                whoami(rq, &rep);
                break;
        case R_RUN:
                orc_run_result(co, rq->target_key, &rep);
                break;
        case R_SECRET:
                if (strcmp(method, MHD_HTTP_METHOD_DELETE) == 0)
                        orc_secret_delete(co, rq->key_name, rq->target_key, &rep);
                else
                        orc_secret_put(co, rq->key_name, rq->target_key, body, rq->len, &rep);
                break;
        }
        return send_reply(rq, c, &rep, ctype, NULL);
}

/* ---- MHD callbacks ------------------------------------------------------------- */

static request *request_new(orc_api *api, const char *method, const char *url) {
        request *rq = calloc(1, sizeof(*rq));
        size_t n = strlen(url);

        if (!rq)
                return NULL;
        rq->api = api;
        rq->start_us = au_now_us();
        uint64_t k = atomic_fetch_add(&api->n_requests, 1);
        snprintf(rq->id, sizeof(rq->id), "%06" PRIx32 "%06" PRIx64, api->id_prefix & 0xffffffu,
                 k & 0xffffffu);
        printable(rq->method, sizeof(rq->method), method, 32);
        rq->path = au_utf8_sanitize(url, MIN(n, (size_t) LOG_PATH_MAX), NULL);
        if (!rq->path) {
                free(rq);
                return NULL;
        }
        return rq;
}

static void request_free(request *rq) {
        if (rq->pending)
                MHD_destroy_response(rq->pending);
        if (rq->kind == R_SECRET && rq->body)
                explicit_bzero(rq->body, rq->cap); /* a secret's value */
        free(rq->body);
        free(rq->path);
        free(rq->error_body);
        free(rq);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        orc_api *api = cls;
        request *rq = *con_cls;

        if (!rq) {
                rq = request_new(api, method, url);
                if (!rq)
                        return MHD_NO;
                *con_cls = rq;
                if (orc_console_handles(api->console, url)) {
                        rq->pending = orc_console_respond(api->console, url, method, rq->id, &rq->status);
                        rq->responded = true;
                        return rq->pending ? MHD_YES : MHD_NO;
                }
                const char *cl =
                        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                rq->has_body =
                        (cl && strcmp(cl, "0") != 0) ||
                        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
                return first_call(rq, c, url, method);
        }
        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (rq->responded)
                        return MHD_YES; /* refused already: the body is dropped */
                return take_upload(rq, upload_data, n) ? MHD_YES : MHD_NO;
        }
        if (rq->pending) {
                struct MHD_Response *resp = TAKE_PTR(rq->pending);
                enum MHD_Result r = MHD_queue_response(c, rq->status, resp);
                MHD_destroy_response(resp);
                return r;
        }
        if (rq->responded || !rq->ready)
                return MHD_YES;
        return run_operation(rq, c, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        request *rq = *con_cls;
        char status[16], ms[32];

        if (!rq)
                return;
        *con_cls = NULL;
        snprintf(status, sizeof(status), "%u", rq->status);
        if (rq->status)
                orc_count_request(((orc_api *) cls)->coord, rq->status);
        snprintf(ms, sizeof(ms), "%.1f", (double) (au_now_us() - rq->start_us) / 1000.0);
        const char *kv[] = {
                "request",
                rq->id,
                "method",
                rq->method,
                "path",
                rq->path,
                "status",
                status,
                "key",
                rq->key_name[0] ? rq->key_name : NULL,
                "ms",
                ms,
                "end",
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK      ? NULL
                : toe == MHD_REQUEST_TERMINATED_WITH_ERROR      ? "error"
                : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timeout"
                : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? "shutdown"
                : toe == MHD_REQUEST_TERMINATED_READ_ERROR      ? "read error"
                : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT    ? "client closed"
                                                                : "other",
                "error",
                rq->error_body,
                NULL,
        };
        au_log_kv(AU_LOG_INFO, kv, "%s %s %u", rq->method, rq->path, rq->status);
        request_free(rq);
}

static __attribute__((format(printf, 2, 0))) void mhd_log(void *cls, const char *fmt, va_list ap) {
        orc_api *api = cls;
        char msg[256];

        vsnprintf(msg, sizeof(msg), fmt, ap);
        msg[strcspn(msg, "\n")] = '\0';
        pthread_mutex_lock(&api->lock);
        if (api->starting) {
                /* The first message says best why the start failed ("Failed to bind to port ..."). */
                if (!api->start_error[0])
                        snprintf(api->start_error, sizeof(api->start_error), "%s", msg);
                pthread_mutex_unlock(&api->lock);
                return;
        }
        /* A client can make MHD complain; do not let it flood the journal. */
        uint64_t now = au_now_ms();
        if (api->last_log_ms != 0 && now - api->last_log_ms < 1000) {
                api->suppressed++;
                pthread_mutex_unlock(&api->lock);
                return;
        }
        char n[16];
        snprintf(n, sizeof(n), "%u", api->suppressed);
        bool suppressed = api->suppressed > 0;
        api->last_log_ms = now;
        api->suppressed = 0;
        pthread_mutex_unlock(&api->lock);
        const char *kv[] = {"addr", api->addr, "suppressed", suppressed ? n : NULL, NULL};
        au_log_kv(AU_LOG_NOTICE, kv, "http: %s", msg);
}

/* ---- start, stop ------------------------------------------------------------- */

typedef struct listen_addr {
        struct sockaddr_storage ss;
        bool v6;
        bool any; /* ":port": [::] dual-stack, or 0.0.0.0 without IPv6 */
} listen_addr;

static int parse_listen(const char *listen, listen_addr *ret) {
        char host[256];
        const char *colon, *hs = listen;
        size_t hl;
        uint32_t port;

        memset(ret, 0, sizeof(*ret));
        if (listen[0] == '[') {
                const char *close = strchr(listen, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                hs = listen + 1;
                hl = (size_t) (close - hs);
                colon = close + 1;
                if (hl == 0)
                        return -EINVAL;
                ret->v6 = true;
        } else {
                colon = strrchr(listen, ':');
                if (!colon)
                        return -EINVAL;
                hl = (size_t) (colon - listen);
                if (memchr(listen, ':', hl)) /* a bare IPv6 address needs brackets */
                        return -EINVAL;
        }
        if (hl >= sizeof(host))
                return -EINVAL;
        memcpy(host, hs, hl);
        host[hl] = '\0';
        if (au_parse_uint32(colon + 1, &port) < 0 || port > 65535)
                return -EINVAL;

        if (hl == 0 || strcmp(host, "*") == 0) {
                ret->any = ret->v6 = true;
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ret->ss;
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons((uint16_t) port);
                s6->sin6_addr = in6addr_any;
                return 0;
        }
        if (ret->v6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ret->ss;
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons((uint16_t) port);
                return inet_pton(AF_INET6, host, &s6->sin6_addr) == 1 ? 0 : -EINVAL;
        }
        struct sockaddr_in *s4 = (struct sockaddr_in *) &ret->ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t) port);
        if (inet_pton(AF_INET, host, &s4->sin_addr) == 1)
                return 0;

        /* A host name: its first address. */
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
        if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai)
                return -EADDRNOTAVAIL;
        if (ai->ai_family == AF_INET6 && ai->ai_addrlen <= sizeof(ret->ss)) {
                memcpy(&ret->ss, ai->ai_addr, ai->ai_addrlen);
                ((struct sockaddr_in6 *) &ret->ss)->sin6_port = htons((uint16_t) port);
                ret->v6 = true;
        } else if (ai->ai_family == AF_INET && ai->ai_addrlen <= sizeof(ret->ss)) {
                memcpy(&ret->ss, ai->ai_addr, ai->ai_addrlen);
                ((struct sockaddr_in *) &ret->ss)->sin_port = htons((uint16_t) port);
        } else {
                freeaddrinfo(ai);
                return -EADDRNOTAVAIL;
        }
        freeaddrinfo(ai);
        return 0;
}

int orc_api_parse_listen(const char *listen, struct sockaddr_storage *ret_addr, bool *ret_any) {
        listen_addr la;
        int r = parse_listen(listen, &la);

        if (r < 0)
                return r;
        *ret_addr = la.ss;
        *ret_any = la.any;
        return 0;
}

static int hex_digit(char ch) {
        if (ch >= '0' && ch <= '9')
                return ch - '0';
        if (ch >= 'a' && ch <= 'f')
                return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F')
                return ch - 'A' + 10;
        return -1;
}

/*
 * MHD's own unescaping turns "%00" into a NUL that ends the path early, so
 * "/v1/nodes%00x" would be routed as "/v1/nodes". Here "%00" stays as it is
 * (and then matches no route); every other "%HH" is decoded as usual.
 */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s) {
        char *w = s;
        (void) cls;
        (void) c;
        for (const char *r = s; *r; r++) {
                int hi, lo;
                if (r[0] == '%' && (hi = hex_digit(r[1])) >= 0 && (lo = hex_digit(r[2])) >= 0 &&
                    (hi | lo) != 0) {
                        *w++ = (char) (hi * 16 + lo);
                        r += 2;
                } else
                        *w++ = *r;
        }
        *w = '\0';
        return (size_t) (w - s);
}

static struct MHD_Daemon *start_mhd(orc_api *api, const listen_addr *la, unsigned max_connections,
                                    unsigned max_per_ip, const orc_api_config *cfg) {
        unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                         MHD_USE_ERROR_LOG;
        struct MHD_OptionItem tls[] = {
                {MHD_OPTION_HTTPS_MEM_CERT, 0, api->tls ? (void *) cfg->tls_cert_pem : NULL},
                {MHD_OPTION_HTTPS_MEM_KEY, 0, api->tls ? (void *) cfg->tls_key_pem : NULL},
                {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *) TLS_PRIORITIES},
                {MHD_OPTION_END, 0, NULL},
        };
        const struct sockaddr *sa = (const struct sockaddr *) &la->ss;
        sigset_t all, saved;
        struct MHD_Daemon *d;

        if (la->v6)
                flags |= la->any || IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *) sa)->sin6_addr)
                                 ? MHD_USE_DUAL_STACK
                                 : MHD_USE_IPv6;
        if (api->tls)
                flags |= MHD_USE_TLS;
        else
                tls[0].option = MHD_OPTION_END;
        /* MHD's threads inherit this mask: the daemon's signals are for its signalfd. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved);
        d = MHD_start_daemon(
                flags, 0, NULL, NULL, on_request, api, MHD_OPTION_EXTERNAL_LOGGER, (MHD_LogCallback) mhd_log,
                api, MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
                MHD_OPTION_CONNECTION_LIMIT, max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, max_per_ip,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, api, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        return d;
}

static void api_free(orc_api *api) {
        for (size_t i = 0; i < N_BUCKETS; i++)
                while (api->buckets[i]) {
                        bucket *b = api->buckets[i];
                        api->buckets[i] = b->next;
                        free(b);
                }
        orc_events_unsubscribe(api->events_hold);
        orc_console_free(api->console);
        free(api->fails);
        pthread_mutex_destroy(&api->lock);
        free(api);
}

int orc_api_start(const orc_api_config *cfg, orc_coord *coord, orc_events *events, orc_api **ret,
                  au_error *err) {
        const char *listen = cfg && cfg->listen && cfg->listen[0] ? cfg->listen : DEFAULT_LISTEN;
        unsigned max_connections =
                cfg && cfg->max_connections ? cfg->max_connections : DEFAULT_MAX_CONNECTIONS;
        unsigned max_per_ip = cfg && cfg->max_per_ip ? cfg->max_per_ip : DEFAULT_MAX_PER_IP;
        bool tls = cfg && (cfg->tls_cert_pem || cfg->tls_key_pem);
        listen_addr la;
        orc_api *api;
        int r;

        if (!coord || !ret)
                return au_error_set(err, EINVAL, "HTTP API");
        if (tls && (!cfg->tls_cert_pem || !cfg->tls_key_pem))
                return au_error_set_field(err, cfg->tls_cert_pem ? "tls_key" : "tls_cert",
                                          "TLS needs both a certificate (tls_cert) and its key (tls_key)");
        if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
                return au_error_set(err, EOPNOTSUPP, "TLS: this libmicrohttpd was built without it");
        r = parse_listen(listen, &la);
        if (r == -EINVAL)
                return au_error_set_field(err, "listen",
                                          "listen address '%s': expected HOST:PORT, [IPV6]:PORT or :PORT",
                                          listen);
        if (r < 0) {
                au_error_set_field(err, "listen", "listen address '%s': cannot resolve its host", listen);
                return r;
        }

        api = calloc(1, sizeof(*api));
        if (!api)
                return au_error_set(err, ENOMEM, "HTTP API");
        api->coord = coord;
        api->events = events;
        /*
         * A subscription that is never read: orc_events_stop() frees its memory
         * only with the last subscriber, so a stream request racing with a
         * stop of the events before ours subscribes to a stopped (not freed)
         * orc_events and ends at once.
         */
        if (events && !(api->events_hold = orc_events_subscribe(events, NULL))) {
                free(api);
                return au_error_set(err, ENOMEM, "HTTP API");
        }
        api->max_body = cfg && cfg->max_body_bytes ? cfg->max_body_bytes : DEFAULT_MAX_BODY;
        api->rate = cfg && cfg->rate_per_s > 0 ? cfg->rate_per_s : DEFAULT_RATE;
        api->burst = cfg && cfg->rate_burst > 0 ? MAX(cfg->rate_burst, 1.0) : DEFAULT_BURST;
        api->events_per_key = cfg && cfg->events_per_key ? cfg->events_per_key : DEFAULT_EVENTS_PER_KEY;
        api->fail_rate = cfg && cfg->auth_fail_per_s > 0 ? cfg->auth_fail_per_s : DEFAULT_AUTH_FAIL_RATE;
        api->fail_burst =
                cfg && cfg->auth_fail_burst > 0 ? MAX(cfg->auth_fail_burst, 1.0) : DEFAULT_AUTH_FAIL_BURST;
        api->tls = tls;
        api->fails = calloc(N_FAIL_SLOTS, sizeof(*api->fails));
        if (!api->fails) {
                orc_events_unsubscribe(api->events_hold);
                free(api);
                return au_error_set(err, ENOMEM, "HTTP API");
        }
        snprintf(api->addr, sizeof(api->addr), "%s", listen);
        pthread_mutex_init(&api->lock, NULL);
        r = orc_console_new(cfg && cfg->console_dir ? cfg->console_dir : AUTOOS_DATADIR "/autoos/console",
                            cfg && cfg->console_path ? cfg->console_path : "/ui",
                            cfg && cfg->openapi_file ? cfg->openapi_file
                                                     : AUTOOS_DATADIR "/autoos/openapi.json",
                            &api->console, err);
        if (r < 0) {
                api_free(api);
                return r;
        }
        if (getrandom(&api->id_prefix, sizeof(api->id_prefix), GRND_NONBLOCK) != sizeof(api->id_prefix))
                api->id_prefix = (uint32_t) au_now_us() ^ (uint32_t) getpid();

        api->starting = true;
        errno = 0;
        api->mhd = start_mhd(api, &la, max_connections, max_per_ip, cfg);
        if (!api->mhd && la.any) {
                /* No IPv6 on this host: every IPv4 address then. */
                struct sockaddr_in *s4 = (struct sockaddr_in *) &la.ss;
                uint16_t port = ((struct sockaddr_in6 *) &la.ss)->sin6_port;
                memset(&la.ss, 0, sizeof(la.ss));
                s4->sin_family = AF_INET;
                s4->sin_port = port;
                s4->sin_addr.s_addr = htonl(INADDR_ANY);
                la.v6 = false;
                api->start_error[0] = '\0';
                errno = 0;
                api->mhd = start_mhd(api, &la, max_connections, max_per_ip, cfg);
        }
        pthread_mutex_lock(&api->lock);
        api->starting = false;
        pthread_mutex_unlock(&api->lock);
        if (!api->mhd) {
                int e = errno;
                /* MHD does not return an errno; keep it when it plausibly comes from bind(). */
                if (e != EADDRINUSE && e != EADDRNOTAVAIL && e != EACCES && e != EAFNOSUPPORT)
                        e = EADDRINUSE;
                /* MHD names the port it was given apart from the address (0 here): keep its reason only. */
                const char *why = strstr(api->start_error, "bind") ? strrchr(api->start_error, ':') : NULL;
                if (why)
                        au_error_set(err, 0, "HTTP API on %s: cannot bind:%s", listen, why + 1);
                else if (tls && !strstr(api->start_error, "bind"))
                        au_error_set(err, 0, "HTTPS API on %s: %s", listen,
                                     api->start_error[0] ? api->start_error : "cannot set up TLS");
                else
                        au_error_set(err, 0, "HTTP API on %s: %s", listen,
                                     api->start_error[0] ? api->start_error
                                                         : "cannot start the HTTP server");
                api_free(api);
                return -e;
        }
        *ret = api;
        return 0;
}

uint16_t orc_api_port(const orc_api *api) {
        const union MHD_DaemonInfo *info;

        if (!api || !api->mhd)
                return 0;
        info = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_BIND_PORT);
        return info ? info->port : 0;
}

orc_api *orc_api_stop(orc_api *api) {
        if (!api)
                return NULL;
        /* Event streams see this within SSE_WAIT_MS and end; MHD then joins their threads. */
        atomic_store(&api->stopping, true);
        if (api->mhd)
                MHD_stop_daemon(api->mhd);
        api_free(api);
        return NULL;
}
