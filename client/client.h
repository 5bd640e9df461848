/* SPDX-License-Identifier: MIT */
/*
 * The coordinator's HTTP client (doc/api.md), over libcurl, written once
 * (issue 11): autoosctl's coordinator commands (cli/client.c adds where the
 * coordinator is, which key to show and what each failure means) and the
 * adversarial engine's attacks on the API (adversarial/) send their requests
 * through it. It knows requests and replies, not exit statuses or messages.
 *
 * An https:// coordinator's certificate is always verified (chain and host
 * name); no redirect is followed, so a key never goes elsewhere; only http
 * and https are spoken.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macro.h"

#define API_CONNECT_TIMEOUT_MS 5000L
#define API_ERROR_SIZE 256 /* libcurl's CURL_ERROR_SIZE */

typedef struct api_conn api_conn;

/*
 * A connection to the coordinator at base_url ("http://127.0.0.1:8080", no
 * trailing slash), verifying an https:// one against the CA certificates in
 * cacert (NULL: the system's), sending user_agent. The strings are copied.
 * Returns 0, -ENOMEM, or -EIO when libcurl cannot start.
 */
int api_conn_new(const char *base_url, const char *cacert, const char *user_agent, api_conn **ret);
api_conn *api_conn_free(api_conn *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(api_conn *, api_conn_free);
#define _cleanup_api_conn_ _cleanup_(api_conn_freep)

/* The base URL given to api_conn_new(). */
const char *api_conn_url(const api_conn *c);

/* Writes up to max bytes of a generated body into out; returns how many (0: the end). */
typedef size_t (*api_body_fn)(char *out, size_t max, void *userdata);

/*
 * Receives each piece of a streamed reply body, with the reply's status and
 * Content-Type (NULL: none); returns false to end the transfer.
 */
typedef bool (*api_data_fn)(const char *data, size_t len, long status, const char *content_type,
                            void *userdata);

/* One request. Only method and path are required. */
typedef struct api_request {
        const char *method;        /* "GET", "POST", "PUT", "DELETE", ... */
        const char *path;          /* appended to the base URL as it is (already escaped) */
        const char *bearer;        /* a key: "Authorization: Bearer <key>"; NULL: none */
        const char *authorization; /* a whole Authorization value instead of bearer (attacks) */
        const char *body;          /* sent as application/json (a POST without one sends none) */
        size_t len;
        api_body_fn body_fn; /* a generated body of body_size bytes instead (application/json) */
        void *body_data;
        uint64_t body_size;
        bool chunked;               /* the generated body without Content-Length */
        const char *const *headers; /* more header lines, NULL-terminated; "Name:" removes one */
        long timeout_ms;            /* the whole request; 0: no bound */
        long silence_s;             /* a stream: ended when nothing arrives for this long (0: never) */
        size_t max_reply;           /* reply body bytes kept; 0: no bound */
        bool truncate;              /* past max_reply, cut it (truncated) instead of failing (over) */
        api_data_fn on_data;        /* the body's pieces go here instead of into the reply */
        void *data;
} api_request;

/* The answer, or why there is none. */
typedef struct api_reply {
        long status; /* HTTP status; 0 when nothing was answered */
        char *body;  /* NUL-terminated (NUL bytes inside are possible); len bytes */
        size_t len;
        bool truncated;        /* cut at max_reply (truncate) */
        bool over;             /* longer than max_reply: the transfer was failed */
        unsigned retry_after;  /* Retry-After in seconds; 1000000 when present but not a positive number */
        bool www_authenticate; /* a WWW-Authenticate header came */
        char *content_type;    /* the Content-Type, or NULL */
        int curl_code;         /* libcurl's CURLcode of the transfer: 0 when it completed */
        long os_errno;         /* the connect's errno, when curl_code says it failed */
        bool connected;        /* a connection was made */
        char error[API_ERROR_SIZE]; /* libcurl's words for curl_code, "" when none */
} api_reply;

void api_reply_done(api_reply *r);
#define _cleanup_api_reply_ _cleanup_(api_reply_done)

/*
 * Sends q and fills *ret (released with api_reply_done(), also on failure).
 * Returns 0 when the transfer completed (any HTTP status), -EIO when it did
 * not (ret->curl_code and ret->error say why; ret->status may still be set),
 * -ENOMEM.
 */
int api_send(api_conn *c, const api_request *q, api_reply *ret);

/* path with s escaped as one segment, appended: a new string or NULL on ENOMEM. */
char *api_path_join(const char *path, const char *s);
