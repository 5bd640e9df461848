/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/macro.h"
#include "common/url.h"
#include "memory/redis.h"

static bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static char *memdup_str(const char *s, size_t n) {
        char *p = malloc(n + 1);
        if (p) {
                memcpy(p, s, n);
                p[n] = '\0';
        }
        return p;
}

static int hexval(char ch) {
        if (ch >= '0' && ch <= '9')
                return ch - '0';
        if (ch >= 'a' && ch <= 'f')
                return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F')
                return ch - 'A' + 10;
        return -1;
}

/* Percent-decodes s[0..n) (passwords may hold '@', ':' or '/'). */
static char *url_decode(const char *s, size_t n) {
        char *out = malloc(n + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                        *o++ = (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                        i += 2;
                } else
                        *o++ = s[i];
        }
        *o = '\0';
        return out;
}

/* Digits only, within [min, max]. */
static int parse_uint(const char *s, size_t n, unsigned min, unsigned max, unsigned *ret) {
        unsigned long v = 0;

        if (n == 0 || n > 10)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned long) (s[i] - '0');
        }
        if (v < min || v > max)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* A bad URL, named without its password (these messages reach the logs). */
static int url_error(au_error *err, const char *what, const char *url) {
        _cleanup_free_ char *shown = au_url_mask(url);

        return au_error_set_field(err, "url", "%s%s", what, shown ? shown : "(the URL)");
}

int mem_redis_url_parse(const char *url, mem_redis_url *b, au_error *err) {
        const char *p, *at, *host;
        size_t hostlen;
        unsigned v;

        if (startswith(url, "unix://")) {
                p = url + strlen("unix://");
                if (p[0] != '/')
                        return url_error(err, "unix socket URL needs an absolute path: ", url);
                b->unix_path = strdup(p);
                return b->unix_path ? 0 : -ENOMEM;
        }
        if (startswith(url, "rediss://"))
                return url_error(err, "TLS (rediss://) is not supported by hiredis 0.14: ", url);
        if (!startswith(url, "redis://"))
                return url_error(err,
                                 "expected redis://[:password@]host[:port][/db] or unix:///path: ", url);
        p = url + strlen("redis://");

        at = strrchr(p, '@');
        if (at) {
                const char *colon = memchr(p, ':', (size_t) (at - p));

                if (colon) {
                        if (colon > p && !(b->user = url_decode(p, (size_t) (colon - p))))
                                return -ENOMEM;
                        if (!(b->password = url_decode(colon + 1, (size_t) (at - colon - 1))))
                                return -ENOMEM;
                } else if (!(b->password = url_decode(p, (size_t) (at - p))))
                        return -ENOMEM;
                if (!b->password[0]) {
                        free(b->password);
                        b->password = NULL;
                }
                p = at + 1;
        }

        if (*p == '[') {
                const char *end = strchr(p, ']');
                if (!end)
                        return url_error(err, "unterminated [ in ", url);
                host = p + 1;
                hostlen = (size_t) (end - host);
                p = end + 1;
        } else {
                host = p;
                hostlen = strcspn(p, ":/");
                p += hostlen;
        }
        if (hostlen == 0)
                return url_error(err, "no host in ", url);
        if (!(b->host = memdup_str(host, hostlen)))
                return -ENOMEM;

        b->port = 6379;
        if (*p == ':') {
                size_t n = strcspn(++p, "/");
                if (parse_uint(p, n, 1, 65535, &v) < 0)
                        return url_error(err, "bad port in ", url);
                b->port = (int) v;
                p += n;
        }
        if (*p == '/') {
                p++;
                if (*p && parse_uint(p, strlen(p), 0, INT_MAX, &b->db) < 0)
                        return url_error(err, "bad database number in ", url);
                p += strlen(p);
        }
        if (*p)
                return url_error(err, "unexpected text in ", url);
        return 0;
}

void mem_redis_url_done(mem_redis_url *u) {
        if (!u)
                return;
        free(u->host);
        free(u->unix_path);
        free(u->user);
        free(u->password);
        *u = (mem_redis_url){0};
}

static struct timeval tv_ms(int ms) {
        return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

int mem_redis_connect(const char *url, int timeout_ms, int cmd_timeout_ms, redisContext **ret,
                      au_error *err) {
        mem_redis_url u = {0};
        redisContext *c;
        redisReply *reply;
        int r;

        r = mem_redis_url_parse(url, &u, err);
        if (r < 0) {
                mem_redis_url_done(&u);
                return r;
        }
        c = u.unix_path ? redisConnectUnixWithTimeout(u.unix_path, tv_ms(timeout_ms))
                        : redisConnectWithTimeout(u.host, u.port, tv_ms(timeout_ms));
        if (!c || c->err) {
                /* Named by host and port: the URL may hold a password. */
                if (u.unix_path)
                        au_error_set(err, 0, "connect to Redis at %s: %s", u.unix_path,
                                     c ? c->errstr : "out of memory");
                else
                        au_error_set(err, 0, "connect to Redis at %s:%d: %s", u.host, u.port,
                                     c ? c->errstr : "out of memory");
                if (c)
                        redisFree(c);
                mem_redis_url_done(&u);
                return -ENOTCONN;
        }
        redisSetTimeout(c, tv_ms(cmd_timeout_ms));
        if (u.password) {
                reply = u.user ? redisCommand(c, "AUTH %s %s", u.user, u.password)
                               : redisCommand(c, "AUTH %s", u.password);
                r = !reply || reply->type == REDIS_REPLY_ERROR;
                if (r)
                        au_error_set(err, 0, "Redis AUTH: %s", reply ? reply->str : c->errstr);
                freeReplyObject(reply);
                if (r)
                        goto fail;
        }
        if (u.db > 0) {
                reply = redisCommand(c, "SELECT %u", u.db);
                r = !reply || reply->type == REDIS_REPLY_ERROR;
                if (r)
                        au_error_set(err, 0, "Redis SELECT %u: %s", u.db, reply ? reply->str : c->errstr);
                freeReplyObject(reply);
                if (r)
                        goto fail;
        }
        mem_redis_url_done(&u);
        *ret = c;
        return 0;
fail:
        redisFree(c);
        mem_redis_url_done(&u);
        return -ENOTCONN;
}
