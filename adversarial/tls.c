/* SPDX-License-Identifier: MIT */
/*
 * The fleet attack "plain HTTP to a TLS listener": a request in clear text,
 * with the operator key, sent to the port of an https:// coordinator. The
 * listener speaks only TLS, so it must give no HTTP answer at all: not the
 * API's document, not even an error page that would show it parsed the
 * request. (Its TLS stack may send an alert record; that is not HTTP.)
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "adversarial/adversarial.h"
#include "common/clock.h"
#include "common/macro.h"

#define MAX_REPLY 4096
#define CONNECT_MS 5000
#define DEFAULT_TIMEOUT_MS 20000u

/* "https://host[:port][/...]" -> host, port ("443" by default); false when it is not https://. */
static bool https_host_port(const char *url, char *host, size_t host_size, char *port, size_t port_size) {
        const char *p, *end, *colon;

        if (!url || strncasecmp(url, "https://", 8) != 0)
                return false;
        p = url + 8;
        end = p + strcspn(p, "/?#");
        if (*p == '[') {
                const char *close = memchr(p, ']', (size_t) (end - p));
                if (!close || (size_t) (close - p - 1) >= host_size)
                        return false;
                snprintf(host, host_size, "%.*s", (int) (close - p - 1), p + 1);
                colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        } else {
                colon = memchr(p, ':', (size_t) (end - p));
                size_t hl = (size_t) ((colon ? colon : end) - p);
                if (hl == 0 || hl >= host_size)
                        return false;
                snprintf(host, host_size, "%.*s", (int) hl, p);
        }
        if (colon && end - colon - 1 > 0 && (size_t) (end - colon - 1) < port_size)
                snprintf(port, port_size, "%.*s", (int) (end - colon - 1), colon + 1);
        else
                snprintf(port, port_size, "443");
        return true;
}

static int connect_to(const char *host, const char *port) {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
        int fd = -1;

        if (getaddrinfo(host, port, &hints, &ai) != 0)
                return -EHOSTUNREACH;
        for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
                fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
                if (fd < 0)
                        continue;
                struct timeval tv = {.tv_sec = CONNECT_MS / 1000};
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
                if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
                        close(fd);
                        fd = -1;
                }
        }
        freeaddrinfo(ai);
        return fd >= 0 ? fd : -ECONNREFUSED;
}

void adv_tls_plain_http(const adv_fleet_target *t, adv_row *row) {
        char host[256], port[16], req[2048], reply[MAX_REPLY + 1];
        _cleanup_close_ int fd = -1;
        size_t got = 0;
        uint64_t deadline;

        if (!https_host_port(t->api_url, host, sizeof(host), port, sizeof(port))) {
                row->verdict = ADV_SKIPPED;
                snprintf(row->note, sizeof(row->note),
                         "the coordinator's URL is not https://: there is no TLS listener to attack");
                return;
        }
        fd = connect_to(host, port);
        if (fd < 0) {
                row->verdict = ADV_ERROR;
                snprintf(row->note, sizeof(row->note), "cannot connect to %.120s port %s: %s", host, port,
                         strerror(-fd));
                return;
        }
        snprintf(req, sizeof(req),
                 "GET /v1/nodes HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nAccept: "
                 "application/json\r\nConnection: close\r\n\r\n",
                 host, t->api_key ? t->api_key : "");
        if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
                explicit_bzero(req, sizeof(req));
                row->verdict = ADV_CONTAINED;
                snprintf(row->observed, sizeof(row->observed), "the request could not even be sent: %s",
                         strerror(errno));
                return;
        }
        explicit_bzero(req, sizeof(req));

        /* Read until the listener closes, or the attack's time is up. */
        deadline = au_now_ms() + (t->timeout_ms ? t->timeout_ms : DEFAULT_TIMEOUT_MS);
        for (;;) {
                uint64_t now = au_now_ms();
                struct pollfd p = {.fd = fd, .events = POLLIN};
                ssize_t n;

                if (now >= deadline || got >= MAX_REPLY)
                        break;
                int k = poll(&p, 1, (int) (deadline - now));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n = recv(fd, reply + got, MAX_REPLY - got, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t) n;
        }
        reply[got] = '\0';

        if (got >= 5 && memcmp(reply, "HTTP/", 5) == 0) {
                row->verdict = ADV_NOT_CONTAINED;
                snprintf(row->observed, sizeof(row->observed), "an HTTP answer in clear text: %.*s%s",
                         (int) MIN(strcspn(reply, "\r\n"), (size_t) 60), reply,
                         strstr(reply, "\"nodes\"") ? " (with the API's document)" : "");
                return;
        }
        if (memmem(reply, got, "\"nodes\"", 7) || memmem(reply, got, "\"error\"", 7)) {
                row->verdict = ADV_NOT_CONTAINED;
                snprintf(row->observed, sizeof(row->observed), "API JSON in clear text in %zu bytes", got);
                return;
        }
        row->verdict = ADV_CONTAINED;
        if (got == 0)
                snprintf(row->observed, sizeof(row->observed), "no answer; the connection was closed");
        else
                snprintf(row->observed, sizeof(row->observed),
                         "no HTTP answer: %zu bytes starting 0x%02x%s, then closed", got,
                         (unsigned char) reply[0],
                         (unsigned char) reply[0] == 0x15 ? " (a TLS alert record)" : "");
}
