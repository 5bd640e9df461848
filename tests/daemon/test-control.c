/* SPDX-License-Identifier: MIT */
/*
 * daemon/control: the control socket with a fake daemon behind it. Round
 * trips of status, drain and run; replies in request order whatever order
 * runs finish in; malformed input of every kind; the 16 MiB line bound; a
 * client leaving with a run pending; stale and live socket files; mode 0660.
 * Clients are non-blocking sockets; the test drives the loop itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/loop.h"
#include "daemon/control.h"
#include "tests/tap.h"

#define MAX_PENDING 16

typedef struct fake {
        int drains;
        int runs;
        dmn_request *pending[MAX_PENDING];
        char *specs[MAX_PENDING];
        size_t n_pending;
} fake;

static char *fake_status(void *userdata) {
        fake *f = userdata;
        char buf[128];

        /* Pretty, as a daemon might: the reply must still be one line. */
        snprintf(buf, sizeof(buf), "{\n  \"node\": \"test\",\n  \"drains\": %d\n}", f->drains);
        return strdup(buf);
}

static void fake_drain(void *userdata) {
        fake *f = userdata;

        f->drains++;
}

static void fake_run(void *userdata, const char *spec, size_t len, dmn_request *req) {
        fake *f = userdata;

        f->runs++;
        /* A daemon may answer at once, from inside run(). */
        if (strstr(spec, "\"reject-now\"")) {
                dmn_request_fail(req, "rejected: argv: reject-now");
                return;
        }
        if (f->n_pending < MAX_PENDING) {
                f->specs[f->n_pending] = strndup(spec, len);
                f->pending[f->n_pending++] = req;
        }
}

static const dmn_control_ops fake_ops = {
        .status = fake_status,
        .drain = fake_drain,
        .run = fake_run,
};

static au_loop *loop;
static char dir[] = "/tmp/test-control-XXXXXX";
static char sock_path[256];

static void spin(int iterations) {
        for (int i = 0; i < iterations; i++)
                au_loop_run_once(loop, 5);
}

static int client(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        memcpy(sa.sun_path, path, MIN(strlen(path), sizeof(sa.sun_path) - 1));
        if (fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                fd = safe_close(fd);
        return fd;
}

/* Sends everything, running the loop whenever the socket is full. */
static bool send_all(int fd, const char *data, size_t len) {
        uint64_t deadline = au_now_ms() + 20000;

        while (len > 0 && au_now_ms() < deadline) {
                ssize_t k = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k > 0) {
                        data += k;
                        len -= (size_t) k;
                } else if (k < 0 && errno != EAGAIN)
                        return false;
                else
                        au_loop_run_once(loop, 5);
        }
        return len == 0;
}

static bool send_str(int fd, const char *s) {
        return send_all(fd, s, strlen(s));
}

/* Per-client input buffers, so that a second reply in the same read is kept. */
typedef struct rbuf {
        char data[65536];
        size_t len;
        bool eof;
} rbuf;

/* Reads one line (without '\n') into out; "" with eof set when the daemon closed; NULL on timeout. */
static const char *read_line(int fd, rbuf *b, char *out, size_t size, int timeout_ms) {
        uint64_t deadline = au_now_ms() + (uint64_t) timeout_ms;

        for (;;) {
                char *nl = memchr(b->data, '\n', b->len);
                if (nl) {
                        size_t n = (size_t) (nl - b->data);
                        snprintf(out, size, "%.*s", (int) n, b->data);
                        memmove(b->data, nl + 1, b->len - n - 1);
                        b->len -= n + 1;
                        return out;
                }
                if (b->eof) {
                        out[0] = '\0';
                        return out;
                }
                ssize_t k = recv(fd, b->data + b->len, sizeof(b->data) - b->len, MSG_DONTWAIT);
                if (k > 0) {
                        b->len += (size_t) k;
                        continue;
                }
                if (k == 0 || (k < 0 && errno != EAGAIN)) {
                        b->eof = true;
                        continue;
                }
                if (au_now_ms() >= deadline)
                        return NULL;
                au_loop_run_once(loop, 5);
        }
}

static bool reply_is(int fd, rbuf *b, const char *want, const char *what) {
        char line[4096];
        const char *got = read_line(fd, b, line, sizeof(line), 3000);
        bool same = got && strcmp(got, want) == 0;

        ok(same, "%s", what);
        if (!same)
                diag("got: %s\nwant: %s", got ? got : "(timeout)", want);
        return same;
}

static bool reply_has(int fd, rbuf *b, const char *part, const char *what) {
        char line[4096];
        const char *got = read_line(fd, b, line, sizeof(line), 3000);
        bool has = got && strncmp(got, "{\"ok\":false,\"error\":\"", 21) == 0 && strstr(got, part);

        ok(has, "%s", what);
        if (!has)
                diag("got: %s\nwant an error with: %s", got ? got : "(timeout)", part);
        return has;
}

static bool closed_by_daemon(int fd, rbuf *b) {
        char line[64];
        const char *got = read_line(fd, b, line, sizeof(line), 3000);

        return got && got[0] == '\0' && b->eof;
}

static bool nothing_to_read(int fd, rbuf *b) {
        char line[4096];

        spin(20);
        return read_line(fd, b, line, sizeof(line), 0) == NULL;
}

static void fake_reset(fake *f) {
        for (size_t i = 0; i < f->n_pending; i++)
                free(f->specs[i]);
        *f = (fake){};
}

static void test_round_trips(void) {
        _cleanup_close_ int fd = client(sock_path);
        static rbuf b;

        ok(fd >= 0, "client connected");
        send_str(fd, "{\"cmd\":\"status\"}\n");
        reply_is(fd, &b, "{\"ok\":true,\"status\":{   \"node\": \"test\",   \"drains\": 0 }}",
                 "status: the daemon's object, on one line");
        send_str(fd, "{\"cmd\":\"drain\"}\r\n");
        reply_is(fd, &b, "{\"ok\":true}", "drain (CRLF line end): ok");
        send_str(fd, "\n   \n{ \"cmd\" : \"status\" }\n");
        reply_is(fd, &b, "{\"ok\":true,\"status\":{   \"node\": \"test\",   \"drains\": 1 }}",
                 "blank lines are no requests; the drain reached the daemon");
}

static void test_run(fake *f) {
        _cleanup_close_ int fd = client(sock_path);
        static rbuf b;

        fake_reset(f);
        send_str(fd, "{\"cmd\":\"run\",\"spec\":{\"argv\":[\"/bin/"
                     "echo\",\"h\\u00e9\\n\"],\"limits\":{\"wall_ms\":"
                     "18446744073709551615,\"cpu_percent\":1.5e2},\"env\":{},\"x\":[true,false,null]}}\n");
        spin(10);
        ok(f->runs == 1 && f->n_pending == 1, "run reached the daemon");
        ok(f->n_pending == 1 &&
                   strcmp(f->specs[0],
                          "{\"argv\":[\"/bin/echo\",\"h\xc3\xa9\\n\"],\"limits\":{\"wall_ms\":"
                          "18446744073709551615,\"cpu_percent\":1.5e2},\"env\":{},\"x\":[true,false,"
                          "null]}") == 0,
           "the spec is handed over re-serialized, numbers as written (%s)",
           f->n_pending ? f->specs[0] : "");
        ok(nothing_to_read(fd, &b), "no reply before the run finishes");
        if (f->n_pending == 1) {
                const char *result =
                        "{\"id\":\"r1\",\n\"outcome\":\"exited\",\"exit_code\":0,\"stdout\":\"a\\nb\"}";
                dmn_request_reply(f->pending[0], result, strlen(result));
        }
        reply_is(fd, &b,
                 "{\"ok\":true,\"result\":{\"id\":\"r1\", "
                 "\"outcome\":\"exited\",\"exit_code\":0,\"stdout\":\"a\\nb\"}}",
                 "run: the result, on one line");

        fake_reset(f);
        send_str(fd, "{\"cmd\":\"run\",\"spec\":{\"argv\":[\"reject-now\"]}}\n");
        reply_has(fd, &b, "rejected: argv: reject-now",
                  "a run the daemon fails from inside run(): its error");
        send_str(fd, "{\"cmd\":\"run\",\"spec\":{\"argv\":[\"/bin/true\"]}}\n");
        spin(10);
        if (f->n_pending == 1)
                dmn_request_reply(f->pending[0], "{\"id\":", 6);
        reply_has(fd, &b, "invalid result", "a result that is not JSON becomes an error, not a broken line");
        send_str(fd, "{\"cmd\":\"run\",\"spec\":{\"argv\":[\"/bin/true\"]}}\n");
        spin(10);
        if (f->n_pending == 2)
                dmn_request_fail(f->pending[1], "sandbox_error: \"clone3\" failed");
        reply_is(fd, &b, "{\"ok\":false,\"error\":\"sandbox_error: \\\"clone3\\\" failed\"}",
                 "dmn_request_fail: the message, escaped");
}

static void test_order(fake *f) {
        _cleanup_close_ int fd = client(sock_path);
        static rbuf b;

        fake_reset(f);
        /* Three requests in one write: two runs, then a status that is ready at once. */
        send_str(fd, "{\"cmd\":\"run\",\"spec\":{\"id\":\"A\"}}\n{\"cmd\":\"run\",\"spec\":{\"id\":\"B\"}}\n"
                     "{\"cmd\":\"status\"}\n{\"cmd\":\"nope\"}\n");
        spin(10);
        ok(f->n_pending == 2, "both runs reached the daemon");
        ok(nothing_to_read(fd, &b), "status is held back behind the pending runs");
        if (f->n_pending == 2)
                dmn_request_reply(f->pending[1], "{\"id\":\"B\"}", 10);
        ok(nothing_to_read(fd, &b), "B finished first: still nothing, A is first in line");
        if (f->n_pending == 2)
                dmn_request_reply(f->pending[0], "{\"id\":\"A\"}", 10);
        reply_is(fd, &b, "{\"ok\":true,\"result\":{\"id\":\"A\"}}", "then A's reply");
        reply_is(fd, &b, "{\"ok\":true,\"result\":{\"id\":\"B\"}}", "then B's");
        reply_is(fd, &b, "{\"ok\":true,\"status\":{   \"node\": \"test\",   \"drains\": 0 }}",
                 "then status");
        reply_has(fd, &b, "unknown command 'nope'", "then the error for the unknown command");
}

static void test_malformed(fake *f) {
        _cleanup_close_ int fd = client(sock_path);
        static rbuf b;

        fake_reset(f);
        send_str(fd, "{\"cmd\":\"frobnicate\"}\n");
        reply_has(fd, &b, "unknown command 'frobnicate'", "unknown cmd: named");
        send_str(fd, "[1,2]\n");
        reply_has(fd, &b, "expected a JSON object", "an array: refused");
        send_str(fd, "\"status\"\n");
        reply_has(fd, &b, "expected a JSON object", "a string: refused");
        send_str(fd, "{}\n");
        reply_has(fd, &b, "missing field 'cmd'", "no cmd: named");
        send_str(fd, "{\"cmd\":1}\n");
        reply_has(fd, &b, "cmd: expected a string", "cmd not a string: named");
        send_str(fd, "{\"cmd\":\"status\",\"verbose\":true}\n");
        reply_has(fd, &b, "unknown field 'verbose'", "an unknown field: named");
        send_str(fd, "{\"cmd\":\"status\",\"cmd\":\"drain\"}\n");
        reply_has(fd, &b, "duplicate field 'cmd'", "a duplicate field: named");
        send_str(fd, "{\"cmd\":\"run\"}\n");
        reply_has(fd, &b, "missing field 'spec'", "run without spec: named");
        send_str(fd, "{\"cmd\":\"run\",\"spec\":[\"/bin/true\"]}\n");
        reply_has(fd, &b, "spec: expected an object", "spec not an object: named");
        send_str(fd, "{\"cmd\":\"run\",\"spec\":{},\"extra\":1}\n");
        reply_has(fd, &b, "unknown field 'extra'", "run with an unknown field: named");
        ok(f->runs == 0 && f->drains == 0, "none of these reached the daemon");
        send_str(fd, "{\"cmd\":\"status\"}\n");
        reply_is(fd, &b, "{\"ok\":true,\"status\":{   \"node\": \"test\",   \"drains\": 0 }}",
                 "the connection still works after those");

        send_str(fd, "{\"cmd\": status}\n{\"cmd\":\"drain\"}\n");
        reply_has(fd, &b, "invalid JSON", "invalid JSON: named as such");
        ok(closed_by_daemon(fd, &b), "and the connection is closed after it");
        ok(f->drains == 0, "the request after the invalid line was not run");

        _cleanup_close_ int fd2 = client(sock_path);
        static rbuf b2;
        send_str(fd2, "{\"cmd\":\"st\xff\"}\n");
        reply_has(fd2, &b2, "invalid JSON", "invalid UTF-8: refused as invalid JSON");
        ok(closed_by_daemon(fd2, &b2), "and the connection is closed");

        _cleanup_close_ int fd3 = client(sock_path);
        static rbuf b3;
        send_all(fd3, "{\"cmd\":\"status\"}\0\n", 18);
        reply_has(fd3, &b3, "NUL", "a NUL byte: named");
}

static void test_oversized(fake *f) {
        _cleanup_close_ int fd = client(sock_path);
        static rbuf b;
        size_t big = (16u << 20) + 2;
        _cleanup_free_ char *line = malloc(big);

        fake_reset(f);
        if (!line) {
                skip(3, "out of memory");
                return;
        }
        send_str(fd, "{\"cmd\":\"drain\"}\n");
        reply_is(fd, &b, "{\"ok\":true}", "a request before the long line is answered");
        memset(line, ' ', big);
        line[0] = '{';
        /* The daemon stops reading at 16 MiB: what is left may not fit, and that is fine. */
        send_all(fd, line, big);
        reply_has(fd, &b, "longer than 16 MiB", "a line over 16 MiB: refused, naming the limit");
        ok(closed_by_daemon(fd, &b), "and the connection is closed");

        /* Just under the limit, with a newline: a request like any other. */
        _cleanup_close_ int fd2 = client(sock_path);
        static rbuf b2;
        size_t n = (16u << 20) - 64;
        memset(line, ' ', n);
        memcpy(line + n - 20, "{\"cmd\":\"drain\"}    \n", 20);
        ok(send_all(fd2, line, n), "sent a line of almost 16 MiB");
        reply_is(fd2, &b2, "{\"ok\":true}", "a long but bounded line is served");
}

static void test_disconnect(fake *f) {
        static rbuf b;

        fake_reset(f);
        int fd = client(sock_path);
        send_str(fd, "{\"cmd\":\"run\",\"spec\":{\"id\":\"gone\"}}\n{\"cmd\":\"run\",\"spec\":{\"id\":"
                     "\"gone2\"}}\n");
        spin(10);
        ok(f->n_pending == 2, "two runs pending");
        close(fd);
        spin(10);
        /* The requests outlive the connection: replying to them must be harmless (valgrind checks). */
        if (f->n_pending == 2) {
                dmn_request_reply(f->pending[0], "{\"id\":\"gone\"}", 13);
                dmn_request_fail(f->pending[1], "whatever");
        }
        ok(true, "replies to a client that left are dropped");

        /* A client that half-closes still gets its answers, then EOF. */
        fake_reset(f);
        fd = client(sock_path);
        send_str(fd, "{\"cmd\":\"run\",\"spec\":{\"id\":\"half\"}}\n{\"cmd\":\"drain\"}");
        shutdown(fd, SHUT_WR);
        spin(10);
        ok(f->n_pending == 1 && f->drains == 1, "the last line needs no newline at EOF");
        if (f->n_pending == 1)
                dmn_request_reply(f->pending[0], "{\"id\":\"half\"}", 13);
        reply_is(fd, &b, "{\"ok\":true,\"result\":{\"id\":\"half\"}}", "half-closed client: run reply");
        reply_is(fd, &b, "{\"ok\":true}", "then drain's");
        ok(closed_by_daemon(fd, &b), "then EOF");
        close(fd);

        /* A client that sends and leaves at once: what it sent still reaches the daemon. */
        fake_reset(f);
        fd = client(sock_path);
        send_str(fd, "{\"cmd\":\"drain\"}\n");
        close(fd);
        spin(10);
        ok(f->drains == 1, "a fire-and-forget drain is done");
}

static void test_socket_file(fake *f) {
        char path[300], other[300];
        struct stat st;
        au_error err = {};
        dmn_control *c = NULL;
        int r;

        /* The live one (sock_path) refuses a second daemon, naming the path. */
        r = dmn_control_new(loop, sock_path, &fake_ops, f, &c, &err);
        ok(r == -EADDRINUSE && !c && strstr(err.msg, sock_path), "a live socket is refused: %s", err.msg);
        _cleanup_close_ int fd = client(sock_path);
        static rbuf b;
        send_str(fd, "{\"cmd\":\"drain\"}\n");
        reply_is(fd, &b, "{\"ok\":true}", "and the live daemon still answers on it");
        r = stat(sock_path, &st);
        ok(r == 0 && (st.st_mode & 07777) == 0660 && S_ISSOCK(st.st_mode),
           "the socket file has mode 0660 (%o)", st.st_mode & 07777);
        struct group *gr = getgrnam("autoos");
        if (!gr)
                skip(1, "no group autoos on this host");
        else
                ok(r == 0 && st.st_gid == gr->gr_gid, "the socket file belongs to group autoos");

        /* A stale socket file: bound, never listening, its owner gone. */
        snprintf(path, sizeof(path), "%s/stale.sock", dir);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        memcpy(sa.sun_path, path, MIN(strlen(path), sizeof(sa.sun_path) - 1));
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ok(s >= 0 && bind(s, (struct sockaddr *) &sa, sizeof(sa)) == 0, "made a stale socket file");
        close(s);
        au_error_clear(&err);
        r = dmn_control_new(loop, path, &fake_ops, f, &c, &err);
        ok(r == 0 && c, "a stale socket file is replaced (%s)", err.msg);
        _cleanup_close_ int fd2 = client(path);
        static rbuf b2;
        send_str(fd2, "{\"cmd\":\"drain\"}\n");
        reply_is(fd2, &b2, "{\"ok\":true}", "and the new socket answers");
        c = dmn_control_free(c);
        ok(access(path, F_OK) < 0 && errno == ENOENT, "freeing the control removes its socket file");
        ok(closed_by_daemon(fd2, &b2), "and closes its connections");

        /* Something that is not a socket is never removed. */
        snprintf(other, sizeof(other), "%s/file", dir);
        int ffd = open(other, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        close(ffd);
        au_error_clear(&err);
        r = dmn_control_new(loop, other, &fake_ops, f, &c, &err);
        ok(r == -EEXIST && !c && access(other, F_OK) == 0 && strstr(err.msg, other),
           "a regular file at the path is refused and kept: %s", err.msg);
        unlink(other);

        snprintf(other, sizeof(other), "%s/no/such/dir.sock", dir);
        au_error_clear(&err);
        r = dmn_control_new(loop, other, &fake_ops, f, &c, &err);
        ok(r == -ENOENT && strstr(err.msg, other), "a missing directory: %s", err.msg);

        char longp[200];
        memset(longp, 'x', sizeof(longp) - 1);
        longp[0] = '/';
        longp[sizeof(longp) - 1] = '\0';
        au_error_clear(&err);
        r = dmn_control_new(loop, longp, &fake_ops, f, &c, &err);
        ok(r == -ENAMETOOLONG, "a path too long for sun_path: %s", err.msg);
}

static void test_free_with_pending(void) {
        fake f = {};
        dmn_control *c = NULL;
        au_error err = {};
        char path[300];
        static rbuf b;

        snprintf(path, sizeof(path), "%s/pending.sock", dir);
        ok(dmn_control_new(loop, path, &fake_ops, &f, &c, &err) == 0, "second control socket (%s)", err.msg);
        int fd = client(path);
        send_str(fd, "{\"cmd\":\"drain\"}\n{\"cmd\":\"run\",\"spec\":{}}\n{\"cmd\":\"drain\"}\n");
        spin(10);
        ok(f.n_pending == 1, "a run pending");
        reply_is(fd, &b, "{\"ok\":true}", "the request before it answered");
        c = dmn_control_free(c);
        reply_has(fd, &b, "shutting down", "freeing the control answers the pending run with an error");
        reply_is(fd, &b, "{\"ok\":true}", "and still sends the reply after it, in order");
        ok(closed_by_daemon(fd, &b), "then closes");
        close(fd);
        if (f.n_pending == 1)
                dmn_request_reply(f.pending[0], "{}", 2);
        ok(true, "the daemon's late reply is dropped");
        fake_reset(&f);
}

/* ---- autoosctl node, against this fake daemon ---------------------------------- */

static char autoosctl[512];

static char *slurp(const char *path) {
        FILE *fp = fopen(path, "re");
        char *buf = calloc(1, 65536);

        if (fp && buf)
                buf[fread(buf, 1, 65535, fp)] = '\0';
        if (fp)
                fclose(fp);
        return buf;
}

/* For test descriptions: s on one line (two buffers, so two calls fit in one printf). */
static const char *show(const char *s) {
        static char bufs[2][512];
        static int which;
        char *b = bufs[which++ % 2];

        snprintf(b, 512, "%s", s ? s : "");
        for (char *p = b; *p; p++)
                if (*p == '\n')
                        *p = '|';
        return b;
}

/*
 * Runs autoosctl with args while the loop serves it; a run request is answered
 * with result (or failed with the text after "fail:"). Returns the exit status.
 */
static int run_cli(fake *f, const char *result, char *const args[], char **ret_out, char **ret_err) {
        char out[300], errp[300];
        int status = -1;
        pid_t pid;

        snprintf(out, sizeof(out), "%s/cli.out", dir);
        snprintf(errp, sizeof(errp), "%s/cli.err", dir);
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
                int o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                dup2(o, 1);
                dup2(e, 2);
                execv(autoosctl, args);
                _exit(127);
        }
        fake_reset(f);
        uint64_t deadline = au_now_ms() + 10000;
        while (pid > 0 && au_now_ms() < deadline) {
                au_loop_run_once(loop, 5);
                if (f->n_pending > 0 && result) {
                        if (strncmp(result, "fail:", 5) == 0)
                                dmn_request_fail(f->pending[0], result + 5);
                        else
                                dmn_request_reply(f->pending[0], result, strlen(result));
                        free(f->specs[0]);
                        f->n_pending = 0;
                }
                if (waitpid(pid, &status, WNOHANG) == pid)
                        break;
        }
        *ret_out = slurp(out);
        *ret_err = slurp(errp);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_cli(fake *f) {
        const char *top = getenv("top_builddir");
        char spec[300];
        int st;

        snprintf(autoosctl, sizeof(autoosctl), "%s/cli/autoosctl", top ? top : ".");
        if (access(autoosctl, X_OK) < 0) {
                skip(12, "%s not built", autoosctl);
                return;
        }

        {
                char *const args[] = {"autoosctl", "node", "status", "--socket", sock_path, NULL};
                _cleanup_free_ char *out = NULL, *err = NULL;
                st = run_cli(f, NULL, args, &out, &err);
                ok(st == 0 && strcmp(out, "node:   test\ndrains: 0\n") == 0,
                   "node status: the daemon's object as aligned text (%d, %s%s)", st, show(out), show(err));
        }
        {
                char *const args[] = {"autoosctl", "node", "--socket", sock_path, "status", "--json", NULL};
                _cleanup_free_ char *out = NULL, *err = NULL;
                st = run_cli(f, NULL, args, &out, &err);
                ok(st == 0 && strcmp(out, "{   \"node\": \"test\",   \"drains\": 0 }\n") == 0,
                   "node status --json: the daemon's object (%d, %s%s)", st, show(out), show(err));
        }
        {
                char *const args[] = {"autoosctl", "node", "drain", NULL};
                _cleanup_free_ char *out = NULL, *err = NULL;
                setenv("AUTOOS_NODE_SOCKET", sock_path, 1);
                st = run_cli(f, NULL, args, &out, &err);
                unsetenv("AUTOOS_NODE_SOCKET");
                ok(st == 0 && f->drains == 1 && strstr(out, "draining"),
                   "node drain, socket from $AUTOOS_NODE_SOCKET (%d, %s%s)", st, show(out), show(err));
        }
        {
                char *const args[] = {"autoosctl", "node",    "run", "--socket", sock_path,
                                      "--",        "/bin/sh", "-c",  "exit 3",   NULL};
                _cleanup_free_ char *out = NULL, *err = NULL;
                st = run_cli(f,
                             "{\"id\":\"x\",\"outcome\":\"exited\",\"exit_code\":3,\"stdout\":\"hello\\n\","
                             "\"stderr\":\"warn\\u0000!\\n\",\"future_field\":{\"a\":[1]}}",
                             args, &out, &err);
                ok(st == 3 && strcmp(out, "hello\n") == 0 && memcmp(err, "warn\0!\n", 7) == 0,
                   "node run: program output passed through, its exit status (%d, %s)", st, show(out));
        }
        {
                char *const args[] = {"autoosctl", "node", "run",       "--json", "--socket",
                                      sock_path,   "--",   "/bin/true", NULL};
                _cleanup_free_ char *out = NULL, *err = NULL;
                st = run_cli(f, "{\"id\":\"y\",\"outcome\":\"timeout\",\"exit_code\":null}", args, &out,
                             &err);
                ok(st == 124 &&
                           strcmp(out, "{\"id\":\"y\",\"outcome\":\"timeout\",\"exit_code\":null}\n") == 0,
                   "node run --json: the result object, exit status as autoosctl run (%d, %s%s)", st,
                   show(out), show(err));
        }
        {
                snprintf(spec, sizeof(spec), "%s/spec.json", dir);
                FILE *fp = fopen(spec, "we");
                if (fp) {
                        fputs("{\"argv\":[\"/bin/false\"],\"limits\":{\"wall_ms\":1000}}", fp);
                        fclose(fp);
                }
                char *const args[] = {"autoosctl", "node", "run",       "--spec", spec, "--socket",
                                      sock_path,   "--",   "/bin/echo", "a b",    NULL};
                _cleanup_free_ char *out = NULL, *err = NULL;
                fake_reset(f);
                pid_t pid = fork();
                if (pid == 0) {
                        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
                        dup2(devnull, 1);
                        dup2(devnull, 2);
                        execv(autoosctl, args);
                        _exit(127);
                }
                uint64_t deadline = au_now_ms() + 10000;
                while (f->n_pending == 0 && au_now_ms() < deadline)
                        au_loop_run_once(loop, 5);
                ok(f->n_pending == 1 &&
                           strcmp(f->specs[0],
                                  "{\"limits\":{\"wall_ms\":1000},\"argv\":[\"/bin/echo\",\"a b\"]}") == 0,
                   "node run --spec FILE -- PROGRAM: the file's spec, argv replaced (%s)",
                   f->n_pending ? f->specs[0] : "");
                if (f->n_pending == 1)
                        dmn_request_fail(f->pending[0], "x");
                fake_reset(f);
                while (waitpid(pid, &st, WNOHANG) != pid && au_now_ms() < deadline)
                        au_loop_run_once(loop, 5);
                unlink(spec);
        }
        {
                char *const args[] = {"autoosctl", "node", "run",       "--socket",
                                      sock_path,   "--",   "/bin/true", NULL};
                _cleanup_free_ char *out = NULL, *err = NULL;
                st = run_cli(f, "fail:rejected: limits.memory_bytes: over the ceiling", args, &out, &err);
                ok(st == 125 &&
                           strstr(err, "autoosd refused: rejected: limits.memory_bytes: over the ceiling"),
                   "node run refused by the daemon: 125 and its message (%d, %s)", st, show(err));
        }
        {
                char *const args[] = {"autoosctl", "node", "run",       "--socket",
                                      sock_path,   "--",   "/bin/true", NULL};
                _cleanup_free_ char *out = NULL, *err = NULL;
                st = run_cli(f, "{\"id\":\"z\"}", args, &out, &err);
                ok(st == 76 && strstr(err, "outcome"), "a result without outcome: 76, named (%d, %s)", st,
                   show(err));
        }
        {
                char missing[300];
                snprintf(missing, sizeof(missing), "%s/missing.sock", dir);
                char *const args[] = {"autoosctl", "node", "status", "--socket", missing, NULL};
                _cleanup_free_ char *out = NULL, *err = NULL;
                st = run_cli(f, NULL, args, &out, &err);
                char want[400];
                snprintf(want, sizeof(want), "cannot reach autoosd at %s: No such file or directory",
                         missing);
                ok(st == 69 && strstr(err, want), "no daemon: 69 and a clear message (%d, %s)", st,
                   show(err));
        }
        {
                char *const args[] = {"autoosctl", "node", "run", "--socket", sock_path, "--", "sh", NULL};
                _cleanup_free_ char *out = NULL, *err = NULL;
                st = run_cli(f, NULL, args, &out, &err);
                ok(st == 2 && strstr(err, "absolute path"), "a relative PROGRAM: 2 (%d, %s)", st, show(err));
        }
        {
                char *const args[] = {"autoosctl", "node", "status", "extra", "--socket", sock_path, NULL};
                _cleanup_free_ char *out = NULL, *err = NULL;
                st = run_cli(f, NULL, args, &out, &err);
                ok(st == 2 && strstr(err, "unexpected argument 'extra'"), "stray arguments: 2 (%d, %s)", st,
                   show(err));
        }
        {
                char *const args[] = {"autoosctl", "node", "frob", NULL};
                _cleanup_free_ char *out = NULL, *err = NULL;
                st = run_cli(f, NULL, args, &out, &err);
                ok(st == 2 && strstr(err, "unknown command 'frob'"), "unknown node command: 2 (%d, %s)", st,
                   show(err));
        }
}

int main(void) {
        _cleanup_(au_loop_freep) au_loop *l = NULL;
        fake f = {};
        dmn_control *c = NULL;
        au_error err = {};

        if (!mkdtemp(dir))
                skip_all("mkdtemp failed");
        snprintf(sock_path, sizeof(sock_path), "%s/autoosd.sock", dir);
        au_loop_new(&l);
        loop = l;

        ok(dmn_control_new(loop, sock_path, &fake_ops, &f, &c, &err) == 0 && c, "control socket at %s (%s)",
           sock_path, err.msg);
        if (!c)
                return done_testing();

        test_round_trips();
        test_run(&f);
        test_order(&f);
        test_malformed(&f);
        test_oversized(&f);
        test_disconnect(&f);
        test_socket_file(&f);
        test_free_with_pending();
        test_cli(&f);

        dmn_control_free(c);
        fake_reset(&f);
        ok(access(sock_path, F_OK) < 0, "socket file removed at the end");
        rmdir(dir);
        return done_testing();
}
