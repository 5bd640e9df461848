/* SPDX-License-Identifier: MIT */
/*
 * Redis connection settings from a URL, and a blocking connection for the
 * coordinator's threads (the node's bus, memory/bus.c, is asynchronous).
 */
#pragma once
#include <hiredis/hiredis.h>
#include "common/error.h"

typedef struct mem_redis_url {
        char *host; /* NULL for a unix socket */
        int port;
        char *unix_path;
        char *user;
        char *password;
        unsigned db;
} mem_redis_url;

/*
 * Parses redis://[[user]:password@]host[:port][/db] (percent-escapes decoded in
 * the credentials) or unix:///path into *ret, which the caller releases with
 * mem_redis_url_done() (also on failure). err names what is wrong.
 */
int mem_redis_url_parse(const char *url, mem_redis_url *ret, au_error *err);
void mem_redis_url_done(mem_redis_url *u);

/*
 * A blocking connection to url: connect within timeout_ms, AUTH and SELECT
 * as the URL says, and command timeout cmd_timeout_ms (longer than any BLOCK
 * the caller uses). Returns 0 or a negative errno with err saying why.
 */
int mem_redis_connect(const char *url, int timeout_ms, int cmd_timeout_ms, redisContext **ret,
                      au_error *err);

DEFINE_TRIVIAL_CLEANUP_FUNC(redisReply *, freeReplyObject);
