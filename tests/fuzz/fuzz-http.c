/* SPDX-License-Identifier: MIT */
/*
 * The coordinator's HTTP request handling (orchestrator/api.c) as a client
 * reaches it: each input is sent as raw bytes over TCP to a real orc_api
 * (libmicrohttpd, thread per connection) on a loopback port, then the write
 * side is shut and the answer read to the end. Everything api.c does with a
 * request runs: routing, methods, bearer keys, roles, ids, query parameters,
 * Content-Length and streamed bodies over max_body_bytes, pipelined
 * requests. The coordinator behind it is fake-coordinator.c (no PostgreSQL,
 * no Redis), which checks what api.c passes on; GET /v1/events answers 503
 * (no orc_events).
 *
 * An answer of ours (it has an X-Request-Id) with status 500 is a finding,
 * unless the input used "broken-key" (whose lookup fails on purpose). No
 * answer within 10 s is a finding too.
 *
 * FUZZ_HTTP_SHOW=1 in the environment prints each answer on stderr.
 *
 * The input's first line is also given to orc_api_parse_listen(), the
 * listen address parser (api-internal.h); host names resolve through the
 * getaddrinfo() below, so nothing leaves the process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "orchestrator/api-internal.h"
#include "orchestrator/api.h"
#include "tests/fuzz/fake-coordinator.h"
#include "tests/fuzz/fuzz.h"

#define ANSWER_TIMEOUT_MS 10000
#define MAX_ANSWER (256u << 10)
#define MAX_LISTEN 300

static orc_api *api;
static uint16_t port;
static bool show;

/* ---- a resolver that never leaves the process ------------------------------------- */

static struct addrinfo *fake_addrinfo(int family, const void *addr, size_t addr_len, socklen_t sa_len) {
        struct addrinfo *ai = calloc(1, sizeof(*ai) + sizeof(struct sockaddr_storage));

        if (!ai)
                return NULL;
        ai->ai_family = family;
        ai->ai_socktype = SOCK_STREAM;
        ai->ai_addr = (struct sockaddr *) (ai + 1);
        ai->ai_addrlen = sa_len;
        ai->ai_addr->sa_family = (sa_family_t) family;
        if (family == AF_INET)
                memcpy(&((struct sockaddr_in *) ai->ai_addr)->sin_addr, addr, addr_len);
        else if (family == AF_INET6)
                memcpy(&((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr, addr, addr_len);
        return ai;
}

/* "localhost" is 127.0.0.1, "ip6-localhost" ::1, "unix-host" an AF_UNIX address; nothing else resolves. */
int getaddrinfo(const char *restrict node, const char *restrict service,
                const struct addrinfo *restrict hints, struct addrinfo **restrict res) {
        static const struct in_addr lo4 = {.s_addr = 0x0100007f};
        struct addrinfo *ai;

        if (!node)
                return EAI_NONAME;
        if (strcmp(node, "localhost") == 0)
                ai = fake_addrinfo(AF_INET, &lo4, sizeof(lo4), sizeof(struct sockaddr_in));
        else if (strcmp(node, "ip6-localhost") == 0)
                ai = fake_addrinfo(AF_INET6, &in6addr_loopback, sizeof(in6addr_loopback),
                                   sizeof(struct sockaddr_in6));
        else if (strcmp(node, "unix-host") == 0)
                ai = fake_addrinfo(AF_UNIX, NULL, 0, sizeof(sa_family_t));
        else
                return EAI_NONAME;
        if (!ai)
                return EAI_MEMORY;
        *res = ai;
        return 0;
}

void freeaddrinfo(struct addrinfo *res) {
        while (res) {
                struct addrinfo *next = res->ai_next;
                free(res);
                res = next;
        }
}

static void fuzz_listen(const char *buf, size_t len) {
        char s[MAX_LISTEN + 1];
        struct sockaddr_storage ss;
        bool any = false;
        size_t n = 0;
        int r;

        while (n < len && n < MAX_LISTEN && buf[n] != '\n' && buf[n] != '\0')
                n++;
        memcpy(s, buf, n);
        s[n] = '\0';
        memset(&ss, 0, sizeof(ss));
        r = orc_api_parse_listen(s, &ss, &any);
        FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -EADDRNOTAVAIL);
        if (r < 0)
                return;
        FUZZ_ASSERT(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
        if (any)
                FUZZ_ASSERT(ss.ss_family == AF_INET6 && memcmp(&((struct sockaddr_in6 *) &ss)->sin6_addr,
                                                               &in6addr_any, sizeof(in6addr_any)) == 0);
}

/* ---- requests -------------------------------------------------------------------------- */

static void stop_api(void) {
        api = orc_api_stop(api);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        orc_api_config cfg = {
                .listen = "127.0.0.1:0",
                .max_body_bytes = FAKE_MAX_BODY,
                .rate_per_s = 1e9, /* never 429: the same input must take the same path */
                .rate_burst = 1e9,
                .max_connections = 64,
                /* nor for failed keys or per address: one client sends every input */
                .auth_fail_per_s = 1e9,
                .auth_fail_burst = 1e9,
                .max_per_ip = 64,
        };
        au_error err = {};

        au_log_set_max_level(AU_LOG_ERR); /* one info line per request otherwise */
        signal(SIGPIPE, SIG_IGN);
        if (orc_api_start(&cfg, fake_coord(), NULL, &api, &err) < 0) {
                fprintf(stderr, "fuzz-http: cannot start the API: %s\n", err.msg);
                abort();
        }
        port = orc_api_port(api);
        show = getenv("FUZZ_HTTP_SHOW") != NULL;
        FUZZ_ASSERT(port != 0);
        atexit(stop_api);
        return 0;
}

/* Each "HTTP/1.x 500" answer of ours (with an X-Request-Id before its blank line). */
static bool has_our_500(const char *a, size_t n) {
        for (const char *p = a; p && p < a + n;) {
                const char *end = memmem(p, (size_t) (a + n - p), "\r\n\r\n", 4);
                size_t head = end ? (size_t) (end - p) : (size_t) (a + n - p);

                if (head > 12 && memcmp(p, "HTTP/1.", 7) == 0 && memcmp(p + 8, " 500", 4) == 0 &&
                    memmem(p, head, "\r\nX-Request-Id:", 15))
                        return true;
                /* The next answer starts on a line of its own with "HTTP/1.". */
                p = memmem(p + 1, (size_t) (a + n - p - 1), "\nHTTP/1.", 8);
                if (p)
                        p++;
        }
        return false;
}

/* connect(2), which a signal may interrupt (LeakSanitizer's checks stop the world): then it goes on alone.
 */
static int connect_api(int fd, const struct sockaddr_in *sa) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        socklen_t len = sizeof(int);
        int e = 0;

        if (connect(fd, (const struct sockaddr *) sa, sizeof(*sa)) == 0)
                return 0;
        if (errno != EINTR)
                return -1;
        while (poll(&p, 1, ANSWER_TIMEOUT_MS) < 0)
                if (errno != EINTR)
                        return -1;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                return -1;
        errno = e;
        return e == 0 && (p.revents & POLLOUT) ? 0 : -1;
}

static void fuzz_request(const uint8_t *data, size_t size) {
        struct sockaddr_in sa = {
                .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct timeval tv = {.tv_sec = ANSWER_TIMEOUT_MS / 1000};
        _cleanup_free_ char *answer = malloc(MAX_ANSWER);
        size_t off = 0, got = 0;
        int fd;

        FUZZ_ASSERT(answer);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        FUZZ_ASSERT(fd >= 0);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect_api(fd, &sa) < 0) {
                perror("fuzz-http: connect to the API");
                abort();
        }
        while (off < size) {
                ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break; /* the server may close on a request it refuses */
                off += (size_t) n;
        }
        shutdown(fd, SHUT_WR);

        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int k = poll(&p, 1, ANSWER_TIMEOUT_MS);
                char discard[4096];
                ssize_t n;

                if (k < 0 && errno == EINTR)
                        continue;
                if (k == 0)
                        fuzz_fail(__FILE__, __LINE__, "the API did not answer within 10 s");
                if (got < MAX_ANSWER)
                        n = read(fd, answer + got, MAX_ANSWER - got);
                else
                        n = read(fd, discard, sizeof(discard));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                if (got < MAX_ANSWER)
                        got += (size_t) n;
        }
        close(fd);

        if (show)
                fprintf(stderr, "--- answer (%zu bytes)\n%.*s\n", got, (int) got, answer);
        if (!memmem(data, size, "broken-key", 10))
                FUZZ_ASSERT(!has_our_500(answer, got));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_listen((const char *) data, size);
        fuzz_request(data, size);
        return 0;
}
