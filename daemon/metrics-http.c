/* SPDX-License-Identifier: MIT */
/*
 * libmicrohttpd in "external epoll" mode, driven by au_loop: MHD keeps its
 * own epoll set, whose fd we watch for EPOLLIN; MHD_run() does the work
 * without blocking, and a timer follows MHD_get_timeout() so that idle
 * connections time out and buffered work is finished. One thread, ours.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/log.h"
#include "common/parse.h"
#include "daemon/metrics-http.h"

#define CONNECTION_TIMEOUT_S 10u
#define CONNECTION_LIMIT 64u
#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"

struct dmn_metrics_http {
        au_loop *loop;
        au_metrics *registry;
        struct MHD_Daemon *mhd;
        au_source *io, *timer;
        char addr[80];
        bool starting; /* MHD's messages go to start_error, not to the log */
        char start_error[256];
        uint64_t last_log_ms; /* runtime messages: at most one a second */
        unsigned suppressed;
};

/* "1.2.3.4:PORT" or "[v6]:PORT", numeric only. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, bool *ret_v6) {
        char host[INET6_ADDRSTRLEN + 1];
        const char *colon, *hs = addr;
        size_t hl;
        uint32_t port;
        bool v6 = addr[0] == '[';

        if (v6) {
                const char *close = strchr(addr, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                hs = addr + 1;
                hl = (size_t) (close - hs);
                colon = close + 1;
        } else {
                colon = strrchr(addr, ':');
                if (!colon)
                        return -EINVAL;
                hl = (size_t) (colon - addr);
        }
        if (hl == 0 || hl >= sizeof(host))
                return -EINVAL;
        memcpy(host, hs, hl);
        host[hl] = '\0';
        if (au_parse_uint32(colon + 1, &port) < 0 || port > 65535)
                return -EINVAL;

        memset(ss, 0, sizeof(*ss));
        if (v6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) ss;
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons((uint16_t) port);
                if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
                        return -EINVAL;
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *) ss;
                s4->sin_family = AF_INET;
                s4->sin_port = htons((uint16_t) port);
                if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
                        return -EINVAL;
        }
        *ret_v6 = v6;
        return 0;
}

static __attribute__((format(printf, 2, 0))) void mhd_log(void *cls, const char *fmt, va_list ap) {
        dmn_metrics_http *h = cls;
        char msg[256];

        vsnprintf(msg, sizeof(msg), fmt, ap);
        msg[strcspn(msg, "\n")] = '\0';
        if (h->starting) {
                /* The first message says best why the start failed ("Failed to bind to port ..."). */
                if (!h->start_error[0])
                        snprintf(h->start_error, sizeof(h->start_error), "%s", msg);
                return;
        }
        /* A client can make MHD complain; do not let it flood the journal. */
        uint64_t now = au_now_ms();
        if (h->last_log_ms != 0 && now - h->last_log_ms < 1000) {
                h->suppressed++;
                return;
        }
        char n[16];
        snprintf(n, sizeof(n), "%u", h->suppressed);
        const char *kv[] = {"addr", h->addr, "suppressed", h->suppressed ? n : NULL, NULL};
        au_log_kv(AU_LOG_NOTICE, kv, "metrics endpoint: %s", msg);
        h->last_log_ms = now;
        h->suppressed = 0;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, char *body, size_t len, bool owned,
                               const char *content_type, const char *allow) {
        struct MHD_Response *resp =
                MHD_create_response_from_buffer_with_free_callback(len, body, owned ? free : NULL);
        enum MHD_Result r;

        if (!resp) {
                if (owned)
                        free(body);
                return MHD_NO;
        }
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
            (allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status, const char *text,
                                    const char *allow) {
        return respond(c, status, (char *) text, strlen(text), false, "text/plain; charset=utf-8", allow);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        dmn_metrics_http *h = cls;

        /* Answered on the first call, before any request body: there is none to read. */
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "GET, HEAD");
        if (strcmp(url, "/metrics") == 0) {
                size_t len;
                char *text = au_metrics_render(h->registry, &len);
                if (!text)
                        return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
                return respond(c, MHD_HTTP_OK, text, len, true, CONTENT_TYPE_METRICS, NULL);
        }
        if (strcmp(url, "/healthz") == 0)
                return respond_text(c, MHD_HTTP_OK, "ok\n", NULL);
        return respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
}

/* Runs MHD and re-arms the timer for whatever it has to do next. */
static void step(dmn_metrics_http *h) {
        MHD_UNSIGNED_LONG_LONG timeout;

        MHD_run(h->mhd);
        if (MHD_get_timeout(h->mhd, &timeout) == MHD_YES)
                /* 0 means "work is pending": the loop's timers take 0 as "disarm", hence 1 ms. */
                au_source_set_timer(h->timer, timeout > 0 ? (uint64_t) timeout : 1, 0);
        else
                au_source_set_timer(h->timer, 0, 0);
}

static void on_io(au_source *s, int fd, uint32_t revents, void *userdata) {
        step(userdata);
}

static void on_timer(au_source *s, void *userdata) {
        step(userdata);
}

int dmn_metrics_http_new(au_loop *loop, const char *addr, au_metrics *registry, dmn_metrics_http **ret,
                         au_error *err) {
        _cleanup_(dmn_metrics_http_freep) dmn_metrics_http *h = NULL;
        struct sockaddr_storage ss;
        const union MHD_DaemonInfo *info;
        bool v6 = false;
        int r;

        if (!addr || !addr[0]) {
                *ret = NULL;
                return 0;
        }
        if (!loop || !registry)
                return au_error_set(err, EINVAL, "metrics endpoint %s", addr);
        if (parse_addr(addr, &ss, &v6) < 0) {
                au_error_set_field(err, "metrics", "metrics address '%s': expected IPV4:PORT or [IPV6]:PORT",
                                   addr);
                return -EINVAL;
        }

        h = calloc(1, sizeof(*h));
        if (!h)
                return au_error_set(err, ENOMEM, "metrics endpoint %s", addr);
        h->loop = loop;
        h->registry = registry;
        snprintf(h->addr, sizeof(h->addr), "%s", addr);

        h->starting = true;
        errno = 0;
        h->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
                                  on_request, h, MHD_OPTION_EXTERNAL_LOGGER, (MHD_LogCallback) mhd_log, h,
                                  MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
                                  MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
                                  MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT, MHD_OPTION_END);
        h->starting = false;
        if (!h->mhd) {
                int e = errno;
                /* MHD does not return an errno; keep it when it plausibly comes from bind(). */
                if (e != EADDRINUSE && e != EADDRNOTAVAIL && e != EACCES && e != EAFNOSUPPORT)
                        e = EADDRINUSE;
                /* MHD names the port it was given apart from the address (0 here): keep its reason only. */
                const char *why = strstr(h->start_error, "bind") ? strrchr(h->start_error, ':') : NULL;
                if (why)
                        au_error_set(err, 0, "metrics endpoint %s: cannot bind:%s", addr, why + 1);
                else
                        au_error_set(err, 0, "metrics endpoint %s: %s", addr,
                                     h->start_error[0] ? h->start_error : "cannot start the HTTP server");
                return -e;
        }

        info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info || info->epoll_fd < 0)
                return au_error_set(err, EIO, "metrics endpoint %s: no epoll fd from libmicrohttpd", addr);
        r = au_loop_add_io(loop, info->epoll_fd, EPOLLIN, on_io, h, &h->io);
        if (r < 0)
                return au_error_set(err, r, "metrics endpoint %s: watch libmicrohttpd's epoll fd", addr);
        r = au_loop_add_timer(loop, 0, 0, on_timer, h, &h->timer);
        if (r < 0)
                return au_error_set(err, r, "metrics endpoint %s: timer", addr);

        *ret = TAKE_PTR(h);
        return 0;
}

dmn_metrics_http *dmn_metrics_http_free(dmn_metrics_http *h) {
        if (!h)
                return NULL;
        /* Unwatch the epoll fd before MHD closes it. */
        au_source_free(h->io);
        au_source_free(h->timer);
        if (h->mhd)
                MHD_stop_daemon(h->mhd);
        free(h);
        return NULL;
}

uint16_t dmn_metrics_http_port(const dmn_metrics_http *h) {
        const union MHD_DaemonInfo *info;

        if (!h || !h->mhd)
                return 0;
        info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
        return info ? info->port : 0;
}
