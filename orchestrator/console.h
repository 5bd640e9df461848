/* SPDX-License-Identifier: MIT */
/*
 * The operator console's static files under a base path (default /ui) and
 * the API's OpenAPI document at /v1/openapi.json, both without a key: they
 * hold no fleet data (the console asks the API, with the key the person signs
 * in with). Files are read from a directory at each request, so a package
 * upgrade needs no restart.
 *
 * Paths: every segment is 1 to 128 of [A-Za-z0-9._-] and does not start with
 * a dot (so no "..", no hidden files), else 404. A path with no file and no
 * dot in its last segment gets index.html (the console routes in the page);
 * <base>/ is index.html, <base> redirects (308) to <base>/. Only GET and HEAD
 * (405 otherwise, with Allow). Every answer carries a strict
 * Content-Security-Policy (the console's own scripts and styles only, the API
 * on the same origin), nosniff, no framing, no referrer.
 */
#pragma once
#include <stdbool.h>
#include "common/error.h"

struct MHD_Response;

typedef struct orc_console orc_console;

/*
 * dir: the console's files (index.html, ...); base_path: where they are
 * served, "/" then 1 to 8 segments of [A-Za-z0-9._-], no trailing slash
 * (e.g. "/ui", "/ops/console"); openapi_file: the OpenAPI document. A missing
 * directory or file is not an error here: its requests answer 404 and say so.
 * Returns 0, -EINVAL (a bad base path, err's field "console_path") or -ENOMEM.
 */
int orc_console_new(const char *dir, const char *base_path, const char *openapi_file, orc_console **ret,
                    au_error *err);
/* Accepts NULL, returns NULL. */
orc_console *orc_console_free(orc_console *con);

/* Whether url (decoded, without the query) is the console's: under the base path, or /v1/openapi.json. */
bool orc_console_handles(const orc_console *con, const char *url);

/*
 * The answer to method on url (orc_console_handles said yes), with an
 * X-Request-Id of request_id; *ret_status is its HTTP status. The caller
 * queues and destroys it. NULL only on out of memory.
 */
struct MHD_Response *orc_console_respond(const orc_console *con, const char *url, const char *method,
                                         const char *request_id, unsigned *ret_status);
