/* SPDX-License-Identifier: MIT */
/*
 * autoosctl's HTTP client of the coordinator (doc/api.md), over libcurl:
 * where the coordinator is and which key to show it (options, environment,
 * configuration file), bounded requests with a bearer key, and the exit
 * status and one-line message each failure means.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <yajl/yajl_tree.h>

#include "common/macro.h"

#define CLI_DEFAULT_URL "http://127.0.0.1:8080"
#define CLI_URL_ENV "AUTOOS_URL"
#define CLI_KEY_ENV "AUTOOS_API_KEY"
#define CLI_CONFIG_ENV "AUTOOS_CONFIG"
#define CLI_CACERT_ENV "AUTOOS_CACERT"
#define CLI_SYSTEM_CONFIG AUTOOS_SYSCONFDIR "/autoos/autoosctl.conf"

/* Replies, and the documents autoosctl sends, are bounded. */
#define CLI_MAX_REPLY_BYTES (64u << 20)
#define CLI_MAX_DOCUMENT_BYTES (64u << 20)
#define CLI_CONNECT_TIMEOUT_MS 5000L
#define CLI_REQUEST_TIMEOUT_MS 60000L

typedef struct cli_client cli_client;

/*
 * A client of the coordinator at url (NULL: $AUTOOS_URL, else the
 * configuration file's url=, else CLI_DEFAULT_URL), showing the key in
 * key_file (NULL: $AUTOOS_API_KEY, else the configuration file's api_key= or
 * key_file=; no key at all is allowed, the coordinator then answers 401).
 * The configuration file is $AUTOOS_CONFIG, else
 * ${XDG_CONFIG_HOME:-~/.config}/autoos/autoosctl.conf, else
 * CLI_SYSTEM_CONFIG; it is read only when options and environment leave a
 * setting open. An https:// coordinator's certificate is always verified
 * (chain and host name) against the CA certificates of --cacert
 * (cli_client_set_cacert), else $AUTOOS_CACERT, else the file's cacert=,
 * else the system's. json: failures also print the coordinator's error
 * document on stdout. Prints what went wrong and returns an exit status (0
 * on success: *ret is set).
 */
int cli_client_new(const char *url, const char *key_file, bool json, cli_client **ret);
cli_client *cli_client_free(cli_client *c);
/* --cacert FILE for the clients made after (main() takes the option for every coordinator command). */
void cli_client_set_cacert(const char *path);
DEFINE_TRIVIAL_CLEANUP_FUNC(cli_client *, cli_client_free);
#define _cleanup_cli_client_ _cleanup_(cli_client_freep)

/* The base URL, without a trailing slash: "http://127.0.0.1:8080". */
const char *cli_client_url(const cli_client *c);

/* One answer, or why there is none. */
typedef struct cli_reply {
        long status; /* HTTP status; 0 when nothing was answered */
        char *body;  /* NUL-terminated; len bytes (NUL bytes inside are possible) */
        size_t len;
        int exit;           /* the exit status this means: 0 for 2xx */
        bool transient;     /* worth trying again later: no connection, 429, 502, 503, 504 */
        char message[1024]; /* without "autoosctl: ", when exit != 0 */
        char hint[256];     /* a second line, or "" */
} cli_reply;

void cli_reply_done(cli_reply *r);
#define _cleanup_cli_reply_ _cleanup_(cli_reply_done)

/*
 * Sends method ("GET", "POST", "PUT", "DELETE") to path ("/v1/workflows",
 * already escaped), with body[0..len) as application/json when body is not
 * NULL (a POST without a body sends none; so does a PUT). timeout_ms bounds the whole request (0: no
 * bound). Fills *ret (which the caller then releases with cli_reply_done())
 * and returns ret->exit; prints nothing.
 */
int cli_client_call(cli_client *c, const char *method, const char *path, const char *body, size_t len,
                    long timeout_ms, cli_reply *ret);

/* Prints a failed reply: "autoosctl: <message>" and its hint on stderr, the error document with json. */
void cli_client_report(const cli_client *c, const cli_reply *r);

/* cli_client_call() with CLI_REQUEST_TIMEOUT_MS, reporting a failure. */
int cli_client_request(cli_client *c, const char *method, const char *path, const char *body, size_t len,
                       cli_reply *ret);

/*
 * Parses a reply's body for display into a yajl tree the caller frees.
 * "\u0000" in strings (program output may hold it) is read as U+2400.
 * Prints "autoosctl: cannot read the reply of the coordinator: ..." and
 * returns EX_PROTOCOL when the body is not one JSON object.
 */
int cli_reply_json(const cli_client *c, const cli_reply *r, yajl_val *ret);

/* Called with each server-sent event; returns 0 to go on, or an exit status to stop with. */
typedef int (*cli_event_cb)(void *userdata, const char *id, const char *event, const char *data, size_t len);

/*
 * GET path as a stream of server-sent events (no bound on the whole request;
 * one on silence: the coordinator sends a ping every 15 s). since (may be
 * NULL) is sent as Last-Event-ID. *ret_last_id (may be NULL) gets a new copy
 * of the last event id seen, NULL when none. Returns 0 when the coordinator
 * ended the stream, the callback's status, or the exit status of a failure
 * in *ret (which the caller releases).
 */
int cli_client_stream(cli_client *c, const char *path, const char *since, cli_event_cb cb, void *userdata,
                      char **ret_last_id, cli_reply *ret);

/* path with s escaped as one segment, appended: a new string or NULL on ENOMEM. */
char *cli_path_join(const char *path, const char *s);
