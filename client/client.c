/* SPDX-License-Identifier: MIT */
/* The coordinator's HTTP client over libcurl (client/client.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "client/client.h"
#include "common/buf.h"
#include "common/macro.h"

_Static_assert(API_ERROR_SIZE >= CURL_ERROR_SIZE, "room for libcurl's error text");

struct api_conn {
        CURL *curl;
        char *url;
        char *cacert; /* NULL: the system's CA certificates */
        char *agent;
};

int api_conn_new(const char *base_url, const char *cacert, const char *user_agent, api_conn **ret) {
        api_conn *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->url = strdup(base_url);
        c->cacert = cacert ? strdup(cacert) : NULL;
        c->agent = strdup(user_agent ? user_agent : "autoos");
        if (!c->url || !c->agent || (cacert && !c->cacert)) {
                api_conn_free(c);
                return -ENOMEM;
        }
        /* curl_global_init is reference-counted: one per connection, undone in api_conn_free. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                free(c->url);
                free(c->cacert);
                free(c->agent);
                free(c);
                return -EIO;
        }
        c->curl = curl_easy_init();
        if (!c->curl) {
                api_conn_free(c);
                return -EIO;
        }
        *ret = c;
        return 0;
}

api_conn *api_conn_free(api_conn *c) {
        if (!c)
                return NULL;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        if (c->url) /* curl_global_init ran (see api_conn_new) */
                curl_global_cleanup();
        free(c->url);
        free(c->cacert);
        free(c->agent);
        free(c);
        return NULL;
}

const char *api_conn_url(const api_conn *c) {
        return c->url;
}

char *api_path_join(const char *path, const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        size_t pl = strlen(path), sl = strlen(s);
        char *out = malloc(pl + 1 + 3 * sl + 1), *p;

        if (!out)
                return NULL;
        memcpy(out, path, pl);
        p = out + pl;
        *p++ = '/';
        for (const unsigned char *q = (const unsigned char *) s; *q; q++) {
                if (isalnum(*q) || *q == '-' || *q == '.' || *q == '_' || *q == '~')
                        *p++ = (char) *q;
                else {
                        *p++ = '%';
                        *p++ = hex[*q >> 4];
                        *p++ = hex[*q & 15];
                }
        }
        *p = '\0';
        return out;
}

void api_reply_done(api_reply *r) {
        free(r->body);
        r->body = NULL;
        r->len = 0;
        free(r->content_type);
        r->content_type = NULL;
}

/* One transfer's state, for libcurl's callbacks. */
typedef struct xfer {
        CURL *e;
        const api_request *q;
        api_reply *ret;
        au_buf buf;
} xfer;

static size_t on_write(char *data, size_t size, size_t n, void *userdata) {
        xfer *x = userdata;
        size_t k = size * n;

        if (x->q->on_data) {
                long status = 0;
                const char *type = NULL;
                curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &status);
                curl_easy_getinfo(x->e, CURLINFO_CONTENT_TYPE, &type);
                return x->q->on_data(data, k, status, type, x->q->data) ? k : 0;
        }
        if (x->q->truncate && x->q->max_reply) {
                size_t room = x->buf.len < x->q->max_reply ? x->q->max_reply - x->buf.len : 0;
                size_t take = MIN(k, room);
                if (take < k)
                        x->ret->truncated = true;
                return take == 0 || au_buf_append(&x->buf, data, take) == 0 ? k : 0;
        }
        int r = au_buf_append(&x->buf, data, k);
        if (r == -E2BIG)
                x->ret->over = true;
        return r < 0 ? 0 : k; /* 0: CURLE_WRITE_ERROR */
}

static size_t on_header(char *data, size_t size, size_t n, void *userdata) {
        api_reply *r = userdata;
        size_t k = size * n;

        if (k > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
                char v[32];
                snprintf(v, sizeof(v), "%.*s", (int) MIN(k - 12, sizeof(v) - 1), data + 12);
                r->retry_after = (unsigned) strtoul(v, NULL, 10);
                if (r->retry_after == 0)
                        r->retry_after = 1000000; /* present but not a positive number */
        }
        if (k > 17 && strncasecmp(data, "WWW-Authenticate:", 17) == 0)
                r->www_authenticate = true;
        return k;
}

static size_t on_read(char *out, size_t size, size_t n, void *userdata) {
        const api_request *q = userdata;
        return q->body_fn(out, size * n, q->body_data);
}

static int header_add(struct curl_slist **h, const char *line) {
        struct curl_slist *n = curl_slist_append(*h, line);
        if (!n)
                return -ENOMEM;
        *h = n;
        return 0;
}

/* The request's header lines: its key (wiped from our copy once libcurl has its own), type, extras. */
static int headers_of(const api_request *q, struct curl_slist **ret) {
        _cleanup_free_ char *auth = NULL;
        bool has_body = q->body || q->body_fn;
        int r = 0;

        if ((q->authorization || q->bearer) &&
            asprintf(&auth, "Authorization: %s%s", q->authorization ? "" : "Bearer ",
                     q->authorization ? q->authorization : q->bearer) < 0) {
                auth = NULL;
                return -ENOMEM;
        }
        if (auth) {
                r = header_add(ret, auth);
                explicit_bzero(auth, strlen(auth));
        }
        /* Without a body, no Content-Type (libcurl would say form data). */
        if (r == 0)
                r = header_add(ret, has_body ? "Content-Type: application/json" : "Content-Type:");
        if (r == 0 && q->body_fn && q->chunked)
                r = header_add(ret, "Transfer-Encoding: chunked");
        for (size_t i = 0; r == 0 && q->headers && q->headers[i]; i++)
                r = header_add(ret, q->headers[i]);
        return r;
}

static void setup_method(CURL *e, const api_request *q) {
        bool post = strcmp(q->method, "POST") == 0;

        if (q->body_fn) {
                curl_easy_setopt(e, CURLOPT_POST, 1L);
                curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
                curl_easy_setopt(e, CURLOPT_READDATA, q);
                if (!q->chunked)
                        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) q->body_size);
        } else if (q->body || post) {
                curl_easy_setopt(e, CURLOPT_POST, 1L);
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (q->body ? q->len : 0));
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body ? q->body : "");
        }
        if (!post && strcmp(q->method, "GET") != 0)
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
}

static int setup(api_conn *c, const api_request *q, xfer *x, struct curl_slist *h, char *url) {
        CURL *e = c->curl;

        curl_easy_reset(e);
        if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK)
                return -ENOMEM;
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->ret->error);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_USERAGENT, c->agent);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, API_CONNECT_TIMEOUT_MS);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, q->timeout_ms);
        /* The key must not follow a redirect elsewhere: none is followed. */
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        /* https://: the server proves who it is, always (libcurl's defaults, said out loud). */
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
        if (c->cacert)
                curl_easy_setopt(e, CURLOPT_CAINFO, c->cacert);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        if (q->max_reply && !q->truncate && !q->on_data)
                curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) q->max_reply);
        if (q->silence_s > 0) {
                curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
                curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, q->silence_s);
                curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        }
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, x->ret);
        setup_method(e, q);
        return 0;
}

/* What libcurl knows of the transfer, into ret. */
static void take_info(CURL *e, api_reply *ret) {
        const char *type = NULL;
        double connect_time = 0;

        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &ret->status);
        curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &ret->os_errno);
        curl_easy_getinfo(e, CURLINFO_CONNECT_TIME, &connect_time);
        ret->connected = connect_time > 0;
        if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type)
                ret->content_type = strdup(type);
}

int api_send(api_conn *c, const api_request *q, api_reply *ret) {
        xfer x = {.e = c->curl, .q = q, .ret = ret, .buf = AU_BUF_INIT(q->truncate ? 0 : q->max_reply)};
        struct curl_slist *h = NULL;
        _cleanup_free_ char *url = NULL;
        int r;

        *ret = (api_reply){};
        if (asprintf(&url, "%s%s", c->url, q->path) < 0) {
                url = NULL;
                return -ENOMEM;
        }
        r = headers_of(q, &h);
        if (r == 0)
                r = setup(c, q, &x, h, url);
        if (r < 0) {
                curl_slist_free_all(h);
                return r;
        }
        CURLcode cc = curl_easy_perform(c->curl);
        take_info(c->curl, ret);
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(c->curl, CURLOPT_READDATA, NULL);
        curl_slist_free_all(h);
        ret->curl_code = (int) cc;
        if (cc != CURLE_OK && !ret->error[0])
                snprintf(ret->error, sizeof(ret->error), "%s", curl_easy_strerror(cc));
        ret->body = au_buf_steal(&x.buf, &ret->len);
        if (!ret->body)
                return -ENOMEM;
        return cc == CURLE_OK ? 0 : -EIO;
}
