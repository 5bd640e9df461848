/* SPDX-License-Identifier: MIT */
/*
 * common/metrics: the exact Prometheus text for counters, gauges and
 * histograms, escaping, limits; daemon/metrics-http: /metrics, /healthz, 404,
 * 405 served from the au_loop, fetched by a non-blocking client the same
 * loop drives.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/loop.h"
#include "common/metrics.h"
#include "daemon/metrics-http.h"
#include "tests/tap.h"

static bool render_is(const au_metrics *m, const char *want, const char *what) {
        size_t len = 0;
        _cleanup_free_ char *got = au_metrics_render(m, &len);
        bool same = got && len == strlen(want) && strcmp(got, want) == 0;

        ok(same, "%s", what);
        if (!same)
                diag("got:\n%s\nwant:\n%s", got ? got : "(null)", want);
        return same;
}

static void test_counter_gauge_histogram(void) {
        _cleanup_(au_metrics_freep) au_metrics *m = NULL;
        static const double bounds[] = {0.25, 1, 10};

        ok(au_metrics_new(&m) == 0, "registry created");
        render_is(m, "", "an empty registry renders as nothing");

        au_metric *runs = au_metrics_counter(m, "autoos_runs_total", "Runs by outcome.", "outcome");
        au_metric *running = au_metrics_gauge(m, "autoos_running", "Runs in progress.", NULL);
        au_metric *dur =
                au_metrics_histogram(m, "autoos_run_duration_seconds", "Wall time of runs.", bounds, 3);
        au_metric *lost = au_metrics_counter(m, "autoos_redis_reconnects_total", NULL, NULL);
        ok(runs && running && dur && lost, "counter, gauge, histogram registered");

        render_is(
                m,
                "# HELP autoos_runs_total Runs by outcome.\n"
                "# TYPE autoos_runs_total counter\n"
                "# HELP autoos_running Runs in progress.\n"
                "# TYPE autoos_running gauge\n"
                "autoos_running 0\n"
                "# HELP autoos_run_duration_seconds Wall time of runs.\n"
                "# TYPE autoos_run_duration_seconds histogram\n"
                "autoos_run_duration_seconds_bucket{le=\"0.25\"} 0\n"
                "autoos_run_duration_seconds_bucket{le=\"1\"} 0\n"
                "autoos_run_duration_seconds_bucket{le=\"10\"} 0\n"
                "autoos_run_duration_seconds_bucket{le=\"+Inf\"} 0\n"
                "autoos_run_duration_seconds_sum 0\n"
                "autoos_run_duration_seconds_count 0\n"
                "# TYPE autoos_redis_reconnects_total counter\n"
                "autoos_redis_reconnects_total 0\n",
                "fresh metrics: labelled ones have no samples yet, the others are 0, no HELP without help");

        au_metric_add(runs, "oom", 1);
        au_metric_add(runs, "exited", 2);
        au_metric_add(runs, "exited", 1);
        au_metric_add(runs, "exited", -5); /* counters never go down */
        au_metric_add(runs, "timeout", NAN);
        au_metric_set(running, NULL, 7);
        au_metric_add(running, NULL, -2);
        au_metric_set(runs, "oom", 100); /* set is for gauges only */
        au_metric_observe(dur, 0.25);    /* on a bound: le is "less or equal" */
        au_metric_observe(dur, 0.5);
        au_metric_observe(dur, 0.5);
        au_metric_observe(dur, 20);
        au_metric_observe(dur, NAN);
        au_metric_observe(runs, 1); /* not a histogram: ignored */
        au_metric_add(lost, NULL, 3);

        render_is(m,
                  "# HELP autoos_runs_total Runs by outcome.\n"
                  "# TYPE autoos_runs_total counter\n"
                  "autoos_runs_total{outcome=\"exited\"} 3\n"
                  "autoos_runs_total{outcome=\"oom\"} 1\n"
                  "# HELP autoos_running Runs in progress.\n"
                  "# TYPE autoos_running gauge\n"
                  "autoos_running 5\n"
                  "# HELP autoos_run_duration_seconds Wall time of runs.\n"
                  "# TYPE autoos_run_duration_seconds histogram\n"
                  "autoos_run_duration_seconds_bucket{le=\"0.25\"} 1\n"
                  "autoos_run_duration_seconds_bucket{le=\"1\"} 3\n"
                  "autoos_run_duration_seconds_bucket{le=\"10\"} 3\n"
                  "autoos_run_duration_seconds_bucket{le=\"+Inf\"} 4\n"
                  "autoos_run_duration_seconds_sum 21.25\n"
                  "autoos_run_duration_seconds_count 4\n"
                  "# TYPE autoos_redis_reconnects_total counter\n"
                  "autoos_redis_reconnects_total 3\n",
                  "samples: label values sorted, histogram buckets cumulative with _sum and _count");

        ok(au_metrics_counter(m, "autoos_runs_total", "again", "outcome") == runs,
           "registering the same counter again returns it");
        ok(au_metrics_gauge(m, "autoos_runs_total", NULL, "outcome") == NULL,
           "the same name as another type is refused");
        ok(au_metrics_counter(m, "autoos_runs_total", NULL, "other") == NULL,
           "the same name with another label is refused");
        ok(au_metrics_histogram(m, "autoos_run_duration_seconds", NULL, bounds, 3) == dur,
           "registering the same histogram again returns it");
        ok(au_metrics_histogram(m, "autoos_run_duration_seconds", NULL, bounds, 2) == NULL,
           "the same histogram name with other buckets is refused");
}

static void test_escaping(void) {
        _cleanup_(au_metrics_freep) au_metrics *m = NULL;

        au_metrics_new(&m);
        au_metric *c = au_metrics_counter(m, "denied_total", "Refused \"calls\",\nby name: C:\\ and \\n.",
                                          "syscall");
        au_metric_add(c, "a\\b\"c\nd", 1);
        au_metric_add(c, "caf\xc3\xa9", 2);
        au_metric_add(c, "bad\xff", 3);
        au_metric_add(c, NULL, 4);
        render_is(m,
                  "# HELP denied_total Refused \"calls\",\\nby name: C:\\\\ and \\\\n.\n"
                  "# TYPE denied_total counter\n"
                  "denied_total{syscall=\"\"} 4\n"
                  "denied_total{syscall=\"a\\\\b\\\"c\\nd\"} 1\n"
                  "denied_total{syscall=\"bad\xef\xbf\xbd\"} 3\n"
                  "denied_total{syscall=\"caf\xc3\xa9\"} 2\n",
                  "help escapes backslash and newline; label values also the double quote; invalid UTF-8 "
                  "repaired; NULL is the empty value");
}

static void test_numbers(void) {
        _cleanup_(au_metrics_freep) au_metrics *m = NULL;

        au_metrics_new(&m);
        au_metric *g = au_metrics_gauge(m, "g", NULL, "v");
        au_metric_set(g, "a_big", 1e21);
        au_metric_set(g, "b_sum", 0.1 + 0.2);
        au_metric_set(g, "c_2^53", 9007199254740992.0);
        au_metric_set(g, "d_inf", INFINITY);
        au_metric_set(g, "e_minf", -INFINITY);
        au_metric_set(g, "f_nan", NAN);
        au_metric_set(g, "g_neg", -1.5);
        au_metric_set(g, "h_small", 0.000123);
        render_is(m,
                  "# TYPE g gauge\n"
                  "g{v=\"a_big\"} 1e+21\n"
                  "g{v=\"b_sum\"} 0.30000000000000004\n"
                  "g{v=\"c_2^53\"} 9007199254740992\n"
                  "g{v=\"d_inf\"} +Inf\n"
                  "g{v=\"e_minf\"} -Inf\n"
                  "g{v=\"f_nan\"} NaN\n"
                  "g{v=\"g_neg\"} -1.5\n"
                  "g{v=\"h_small\"} 0.000123\n",
                  "numbers: shortest exact text, +Inf, -Inf, NaN");
}

static void test_refused(void) {
        _cleanup_(au_metrics_freep) au_metrics *m = NULL;
        static const double desc[] = {1, 0.5}, dup[] = {1, 1}, nan[] = {NAN}, inf[] = {1, INFINITY};

        au_metrics_new(&m);
        ok(!au_metrics_counter(m, "1abc", NULL, NULL) && !au_metrics_counter(m, "a-b", NULL, NULL) &&
                   !au_metrics_counter(m, "", NULL, NULL) && !au_metrics_counter(m, NULL, NULL, NULL),
           "invalid metric names are refused");
        ok(au_metrics_counter(m, "ns:sub_total", NULL, NULL) != NULL, "colons are fine in metric names");
        ok(!au_metrics_counter(m, "x1", NULL, "__reserved") && !au_metrics_counter(m, "x2", NULL, "a:b") &&
                   !au_metrics_counter(m, "x3", NULL, "le") && !au_metrics_counter(m, "x4", NULL, "9a"),
           "invalid or reserved label names are refused");
        ok(!au_metrics_histogram(m, "h1", NULL, desc, 2) && !au_metrics_histogram(m, "h2", NULL, dup, 2) &&
                   !au_metrics_histogram(m, "h3", NULL, nan, 1) &&
                   !au_metrics_histogram(m, "h4", NULL, inf, 2),
           "histogram bounds must be finite and strictly ascending");
        au_metric *h = au_metrics_histogram(m, "h5", NULL, NULL, 0);
        au_metric_observe(h, -3);
        render_is(m,
                  "# TYPE ns:sub_total counter\n"
                  "ns:sub_total 0\n"
                  "# TYPE h5 histogram\n"
                  "h5_bucket{le=\"+Inf\"} 1\n"
                  "h5_sum -3\n"
                  "h5_count 1\n",
                  "nothing of the refused metrics registered; a histogram without bounds has +Inf only");
        /* NULL metrics (a failed registration) are ignored, not a crash. */
        au_metric_add(NULL, "x", 1);
        au_metric_set(NULL, "x", 1);
        au_metric_observe(NULL, 1);
        ok(true, "updates of a NULL metric are ignored");
}

static void test_cardinality(void) {
        _cleanup_(au_metrics_freep) au_metrics *m = NULL;
        char v[32];

        au_metrics_new(&m);
        au_metric *c = au_metrics_counter(m, "c", NULL, "name");
        for (int i = 0; i < 1030; i++) {
                snprintf(v, sizeof(v), "v%04d", i);
                au_metric_add(c, v, 1);
        }
        au_metric_add(c, "v0000", 1);
        au_metric_add(c, "v1029", 1);
        _cleanup_free_ char *text = au_metrics_render(m, NULL);
        size_t lines = 0;
        for (const char *p = text; p && *p; p++)
                lines += *p == '\n';
        ok(text && lines == 1 + 1024 + 1, "1024 label values and one \"_other\" series (%zu lines)", lines);
        ok(text && strstr(text, "c{name=\"_other\"} 7\n") && strstr(text, "c{name=\"v0000\"} 2\n") &&
                   strstr(text, "c{name=\"v1023\"} 1\n") && !strstr(text, "v1024"),
           "values past the 1024th are counted in \"_other\"");
}

/* ---- HTTP ------------------------------------------------------------------- */

typedef struct fetch {
        const char *request;
        size_t sent;
        char buf[65536];
        size_t len;
        bool done;
} fetch;

static void on_client(au_source *s, int fd, uint32_t revents, void *userdata) {
        fetch *f = userdata;

        if (f->sent < strlen(f->request)) {
                ssize_t k = send(fd, f->request + f->sent, strlen(f->request) - f->sent, MSG_NOSIGNAL);
                if (k > 0)
                        f->sent += (size_t) k;
                else if (errno != EAGAIN)
                        f->done = true;
                if (f->sent == strlen(f->request))
                        au_source_set_events(s, EPOLLIN);
                return;
        }
        ssize_t k = recv(fd, f->buf + f->len, sizeof(f->buf) - 1 - f->len, 0);
        if (k > 0) {
                f->len += (size_t) k;
                f->buf[f->len] = '\0';
        } else if (k == 0 || errno != EAGAIN)
                f->done = true;
}

static int connect_to(int family, uint16_t port) {
        struct sockaddr_storage ss = {};
        socklen_t sl;
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        if (family == AF_INET) {
                struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;
                s4->sin_family = AF_INET;
                s4->sin_port = htons(port);
                s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                sl = sizeof(*s4);
        } else {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons(port);
                s6->sin6_addr = in6addr_loopback;
                sl = sizeof(*s6);
        }
        if (fd >= 0 && connect(fd, (struct sockaddr *) &ss, sl) < 0 && errno != EINPROGRESS)
                fd = safe_close(fd);
        return fd;
}

/* Sends request and reads the whole response (the server closes: HTTP/1.0), driving loop meanwhile. */
static bool http_fetch(au_loop *loop, int family, uint16_t port, const char *request, fetch *f) {
        _cleanup_close_ int fd = connect_to(family, port);
        au_source *s = NULL;
        uint64_t deadline = au_now_ms() + 5000;

        *f = (fetch){.request = request};
        if (fd < 0 || au_loop_add_io(loop, fd, EPOLLOUT, on_client, f, &s) < 0)
                return false;
        while (!f->done && au_now_ms() < deadline)
                au_loop_run_once(loop, 100);
        au_source_free(s);
        return f->done;
}

static bool response_is(const fetch *f, const char *status, const char *header, const char *body) {
        const char *sep = strstr(f->buf, "\r\n\r\n");

        /* "HTTP/1.x NNN": MHD answers HTTP/1.0 requests as HTTP/1.1. */
        if (!sep || strncmp(f->buf, "HTTP/1.", 7) != 0 || strncmp(f->buf + 9, status, strlen(status)) != 0)
                return false;
        if (header) {
                /* Header names are case-insensitive; MHD writes them as given. */
                const char *h = strcasestr(f->buf, header);
                if (!h || h > sep)
                        return false;
        }
        return !body || strcmp(sep + 4, body) == 0;
}

static void test_http(void) {
        _cleanup_(au_loop_freep) au_loop *loop = NULL;
        _cleanup_(au_metrics_freep) au_metrics *m = NULL;
        _cleanup_(dmn_metrics_http_freep) dmn_metrics_http *h = NULL;
        au_error err = {};
        fetch f;
        int r;

        au_loop_new(&loop);
        au_metrics_new(&m);
        au_metric *c = au_metrics_counter(m, "autoos_runs_total", "Runs by outcome.", "outcome");
        au_metric_add(c, "exited", 42);

        r = dmn_metrics_http_new(loop, "127.0.0.1:0", m, &h, &err);
        ok(r == 0 && h, "metrics endpoint on 127.0.0.1, a free port (%s)", err.msg);
        if (r < 0) {
                skip(13, "no metrics endpoint");
                return;
        }
        uint16_t port = dmn_metrics_http_port(h);
        ok(port > 0, "bound port %u", port);

        /* An idle client must not hold up the others: one thread, nothing blocks. */
        _cleanup_close_ int idle = connect_to(AF_INET, port);

        _cleanup_free_ char *want = au_metrics_render(m, NULL);
        char body[4096];
        snprintf(body, sizeof(body), "%s", want);
        ok(http_fetch(loop, AF_INET, port, "GET /metrics HTTP/1.0\r\n\r\n", &f) &&
                   response_is(&f, "200", "Content-Type: text/plain; version=0.0.4", body) &&
                   strstr(body, "autoos_runs_total{outcome=\"exited\"} 42\n"),
           "GET /metrics: 200, Prometheus text 0.0.4, the registry's text");
        if (!response_is(&f, "200", NULL, NULL))
                diag("response: %s", f.buf);

        au_metric_add(c, "oom", 1);
        ok(http_fetch(loop, AF_INET, port,
                      "GET /metrics?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &f) &&
                   response_is(&f, "200", NULL, NULL) && strstr(f.buf, "{outcome=\"oom\"} 1\n"),
           "GET /metrics again (HTTP/1.1, a query string): rendered afresh");
        ok(http_fetch(loop, AF_INET, port, "GET /healthz HTTP/1.0\r\n\r\n", &f) &&
                   response_is(&f, "200", NULL, "ok\n"),
           "GET /healthz: 200 ok");
        ok(http_fetch(loop, AF_INET, port, "GET /nope HTTP/1.0\r\n\r\n", &f) &&
                   response_is(&f, "404", NULL, NULL),
           "GET /nope: 404");
        ok(http_fetch(loop, AF_INET, port, "GET /metrics/ HTTP/1.0\r\n\r\n", &f) &&
                   response_is(&f, "404", NULL, NULL),
           "GET /metrics/: 404 (exact paths)");
        ok(http_fetch(loop, AF_INET, port,
                      "POST /metrics HTTP/1.0\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
                      &f) &&
                   response_is(&f, "405", "Allow: GET, HEAD", NULL),
           "POST /metrics: 405 with Allow");
        ok(http_fetch(loop, AF_INET, port, "DELETE /healthz HTTP/1.0\r\n\r\n", &f) &&
                   response_is(&f, "405", NULL, NULL),
           "DELETE /healthz: 405");
        ok(http_fetch(loop, AF_INET, port, "HEAD /metrics HTTP/1.0\r\n\r\n", &f) &&
                   response_is(&f, "200", NULL, ""),
           "HEAD /metrics: 200 without a body");
        ok(http_fetch(loop, AF_INET, port, "this is not http\r\n\r\n", &f) &&
                   (f.len == 0 || strstr(f.buf, " 400 ")),
           "garbage: a 400 or a closed connection");
        ok(idle >= 0 && http_fetch(loop, AF_INET, port, "GET /healthz HTTP/1.0\r\n\r\n", &f) &&
                   response_is(&f, "200", NULL, "ok\n"),
           "still serving with an idle connection open");

        /* The port is taken now: a second server on it must fail and say where. */
        char addr[64];
        _cleanup_(dmn_metrics_http_freep) dmn_metrics_http *h2 = NULL;
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
        au_error_clear(&err);
        r = dmn_metrics_http_new(loop, addr, m, &h2, &err);
        ok(r < 0 && !h2 && strstr(err.msg, addr), "a port in use is refused: %s", err.msg);

        /* IPv6 loopback, when the host has it. */
        _cleanup_close_ int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        if (probe < 0 || bind(probe, (struct sockaddr *) &s6, sizeof(s6)) < 0) {
                skip(1, "no IPv6 loopback");
        } else {
                _cleanup_(dmn_metrics_http_freep) dmn_metrics_http *h6 = NULL;
                au_error_clear(&err);
                r = dmn_metrics_http_new(loop, "[::1]:0", m, &h6, &err);
                uint16_t p6 = dmn_metrics_http_port(h6);
                ok(r == 0 && p6 > 0 && http_fetch(loop, AF_INET6, p6, "GET /healthz HTTP/1.0\r\n\r\n", &f) &&
                           response_is(&f, "200", NULL, "ok\n"),
                   "[::1]:0 serves over IPv6 (%s)", err.msg);
        }
}

static void test_addresses(void) {
        _cleanup_(au_loop_freep) au_loop *loop = NULL;
        _cleanup_(au_metrics_freep) au_metrics *m = NULL;
        static const char *const bad[] = {"localhost:9464", "127.0.0.1",    "127.0.0.1:", "127.0.0.1:70000",
                                          "::1:9464",       "[::1]",        "[::1]9464",  "1.2.3:80",
                                          ":9464",          "127.0.0.1:-1", "[]:80",      "127.0.0.1:80x"};
        bool all = true;

        au_loop_new(&loop);
        au_metrics_new(&m);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                dmn_metrics_http *h = NULL;
                au_error err = {};
                int r = dmn_metrics_http_new(loop, bad[i], m, &h, &err);
                if (r != -EINVAL || h || !strstr(err.msg, bad[i])) {
                        diag("'%s': r=%d, %s", bad[i], r, err.msg);
                        all = false;
                }
                dmn_metrics_http_free(h);
        }
        ok(all, "malformed addresses are refused with -EINVAL, naming the address");

        dmn_metrics_http *h = (dmn_metrics_http *) 1;
        ok(dmn_metrics_http_new(loop, "", m, &h, NULL) == 0 && h == NULL, "\"\" disables the endpoint");
        ok(dmn_metrics_http_port(NULL) == 0 && dmn_metrics_http_free(NULL) == NULL, "NULL is accepted");
}

int main(void) {
        test_counter_gauge_histogram();
        test_escaping();
        test_numbers();
        test_refused();
        test_cardinality();
        test_http();
        test_addresses();
        return done_testing();
}
