/* SPDX-License-Identifier: MIT */
/*
 * The control socket: a unix stream socket speaking JSON lines.
 *
 * Each connection has an input buffer (one line at most 16 MiB) and a queue
 * of requests in arrival order. status, drain and malformed input are
 * answered at once; run is answered when the daemon calls
 * dmn_request_reply(). Replies are written from the head of the queue only,
 * so they leave in request order whatever order the runs finish in.
 *
 * A client that goes away (EPOLLHUP, or a failed write) takes its connection
 * with it, but not its pending requests: they are detached (req->conn = NULL)
 * and freed when the daemon replies to them, the reply going nowhere.
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
#include <unistd.h>

#include <yajl/yajl_parse.h>

#include "common/buf.h"
#include "common/json.h"
#include "daemon/control.h"

#define MAX_LINE (16u << 20)
#define READ_CHUNK (64u << 10)
#define MAX_CONNECTIONS 256
/* A client that sends and does not read: stop reading it past these. */
#define MAX_QUEUED 1024
#define MAX_UNSENT (16u << 20)
#define SOCKET_MODE 0660
#define SOCKET_GROUP "autoos"

typedef struct dmn_conn dmn_conn;

struct dmn_request {
        dmn_conn *conn; /* NULL once detached: its reply goes nowhere */
        bool done;
        bool close_after; /* malformed input: the connection ends after this reply */
        char *reply;      /* the whole line, '\n' included */
        size_t reply_len;
        dmn_request *next;
};

struct dmn_conn {
        dmn_control *control;
        int fd;
        au_source *src;
        au_buf in;      /* what has been read, bounded by MAX_LINE + READ_CHUNK */
        size_t scanned; /* no '\n' in in.p[0..scanned) */
        dmn_request *head, *tail;
        size_t n_queued;
        size_t unsent;   /* bytes of finished replies not yet written */
        size_t head_off; /* bytes of head's reply already written */
        bool read_done;  /* EOF, or input we stopped at */
        bool broken;     /* the client is gone */
        unsigned busy;   /* inside this connection's callback */
        dmn_conn *prev, *next;
};

struct dmn_control {
        au_loop *loop;
        int fd;
        au_source *src, *retry;
        char *path;
        dev_t dev;
        ino_t ino;
        dmn_control_ops ops;
        void *userdata;
        dmn_conn *conns;
        unsigned n_conns;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(dmn_control *, dmn_control_free);

/* ---- replies -------------------------------------------------------------- */

/* {"ok":false,"error":message} and a newline; NULL on ENOMEM. */
static char *error_line(const char *message, size_t *ret_len) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        size_t len;
        char *s;

        if (!g || au_json_gen_map_open(g) < 0 || au_json_gen_kv_bool(g, "ok", false) < 0 ||
            au_json_gen_kv_string(g, "error", message) < 0 || au_json_gen_map_close(g) < 0)
                return NULL;
        s = au_json_gen_finish(g, &len);
        if (!s)
                return NULL;
        /* One reply, one line. */
        char *line = realloc(s, len + 2);
        if (!line) {
                free(s);
                return NULL;
        }
        line[len] = '\n';
        line[len + 1] = '\0';
        *ret_len = len + 1;
        return line;
}

/* A valid JSON object (the daemon's status or result), as yajl reads it. */
static bool json_object_valid(const char *json, size_t len) {
        yajl_handle y;
        size_t i = 0;
        bool ok;

        while (i < len && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r'))
                i++;
        if (i == len || json[i] != '{' || memchr(json, '\0', len))
                return false;
        y = yajl_alloc(NULL, NULL, NULL);
        if (!y)
                return false;
        ok = yajl_parse(y, (const unsigned char *) json, len) == yajl_status_ok &&
             yajl_complete_parse(y) == yajl_status_ok;
        yajl_free(y);
        return ok;
}

/*
 * {"ok":true,"<key>":<json>} and a newline. json is the daemon's, checked to
 * be an object; raw newlines (only ever whitespace in valid JSON) become
 * spaces so that the reply stays one line.
 */
static char *ok_line(const char *key, const char *json, size_t len, size_t *ret_len) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        _cleanup_free_ char *head = NULL;
        size_t hl;
        char *line;

        if (!g || au_json_gen_map_open(g) < 0 || au_json_gen_kv_bool(g, "ok", true) < 0)
                return NULL;
        if (key && au_json_gen_string(g, key) < 0)
                return NULL;
        head = au_json_gen_finish(g, &hl);
        if (!head)
                return NULL;
        if (!key)
                len = 0;
        /* head is '{"ok":true' (+ ',"key"'): yajl would add ':' with the value; we write it. */
        line = malloc(hl + 1 + len + 3);
        if (!line)
                return NULL;
        memcpy(line, head, hl);
        size_t n = hl;
        if (key) {
                line[n++] = ':';
                for (size_t i = 0; i < len; i++)
                        line[n++] = json[i] == '\n' || json[i] == '\r' ? ' ' : json[i];
        }
        line[n++] = '}';
        line[n++] = '\n';
        line[n] = '\0';
        *ret_len = n;
        return line;
}

/* ---- connections ---------------------------------------------------------- */

static void conn_update(dmn_conn *conn);

static void request_free(dmn_request *req) {
        if (req) {
                free(req->reply);
                free(req);
        }
}

static dmn_request *request_push(dmn_conn *conn) {
        dmn_request *req = calloc(1, sizeof(*req));

        if (!req)
                return NULL;
        req->conn = conn;
        if (conn->tail)
                conn->tail->next = req;
        else
                conn->head = req;
        conn->tail = req;
        conn->n_queued++;
        return req;
}

/* Sets the reply line of req (taking line) and lets the connection write what is now in order. */
static void request_finish(dmn_request *req, char *line, size_t len) {
        dmn_conn *conn = req->conn;

        if (req->done) {
                free(line);
                return;
        }
        if (!conn) {
                /* The client left: nobody to answer. */
                free(line);
                request_free(req);
                return;
        }
        if (!line) {
                /* Out of memory for the reply: the client must not wait forever. */
                conn->broken = true;
                line = NULL;
                len = 0;
        }
        req->reply = line;
        req->reply_len = len;
        req->done = true;
        conn->unsent += len;
        if (!conn->busy)
                conn_update(conn);
}

static void request_fail_now(dmn_request *req, const char *message, bool close_after) {
        size_t len = 0;
        char *line = error_line(message, &len);

        req->close_after = close_after;
        request_finish(req, line, len);
}

/*
 * Frees the connection. Finished requests go with it; pending ones are
 * detached and wait for the daemon's reply, which is then dropped.
 */
static void conn_free(dmn_conn *conn) {
        dmn_control *c = conn->control;

        while (conn->head) {
                dmn_request *req = conn->head;
                conn->head = req->next;
                req->next = NULL;
                if (req->done)
                        request_free(req);
                else
                        req->conn = NULL;
        }
        au_source_free(conn->src);
        safe_close(conn->fd);
        if (conn->prev)
                conn->prev->next = conn->next;
        else
                c->conns = conn->next;
        if (conn->next)
                conn->next->prev = conn->prev;
        c->n_conns--;
        au_buf_done(&conn->in);
        free(conn);
}

/* Writes finished replies from the head of the queue, in order, as far as the socket takes them. */
static void conn_flush(dmn_conn *conn) {
        while (!conn->broken && conn->head && conn->head->done) {
                dmn_request *req = conn->head;
                while (conn->head_off < req->reply_len) {
                        ssize_t k = send(conn->fd, req->reply + conn->head_off,
                                         req->reply_len - conn->head_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                                return;
                        if (k <= 0) {
                                conn->broken = true;
                                return;
                        }
                        conn->head_off += (size_t) k;
                }
                conn->head = req->next;
                if (!conn->head)
                        conn->tail = NULL;
                conn->n_queued--;
                conn->unsent -= req->reply_len;
                conn->head_off = 0;
                /* Nothing was read after a malformed line: with its reply the connection ends. */
                if (req->close_after)
                        conn->read_done = true;
                request_free(req);
        }
}

/* Writes what it can, then closes the connection or sets the events it waits for. */
static void conn_update(dmn_conn *conn) {
        uint32_t events = 0;

        conn_flush(conn);
        if (conn->broken || (conn->read_done && !conn->head)) {
                conn_free(conn);
                return;
        }
        if (!conn->read_done && conn->n_queued < MAX_QUEUED && conn->unsent < MAX_UNSENT)
                events |= EPOLLIN;
        if (conn->head && conn->head->done)
                events |= EPOLLOUT;
        if (au_source_set_events(conn->src, events) < 0)
                conn_free(conn);
}

static void handle_run(dmn_conn *conn, dmn_request *req, yajl_val doc) {
        static const char *const known[] = {"cmd", "spec", NULL};
        dmn_control *c = conn->control;
        au_error err = {};
        yajl_val spec;

        if (au_json_check_object(doc, "", known, &err) < 0)
                return request_fail_now(req, err.msg, false);
        spec = au_json_get(doc, "spec");
        if (!spec)
                return request_fail_now(req, "run: missing field 'spec'", false);
        if (!YAJL_IS_OBJECT(spec))
                return request_fail_now(req, "spec: expected an object (a run spec)", false);

        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        _cleanup_free_ char *json = NULL;
        size_t len = 0;
        if (!g || au_json_gen_tree(g, spec) < 0 || !(json = au_json_gen_finish(g, &len)))
                return request_fail_now(req, "run: out of memory", false);
        if (!c->ops.run)
                return request_fail_now(req, "run: not supported by this daemon", false);
        /* From here on the daemon owns the answer: it may even give it before run() returns. */
        c->ops.run(c->userdata, json, len, req);
}

/* One line of input (without its newline): one request, answered now or queued. */
static void handle_line(dmn_conn *conn, const char *line, size_t len) {
        static const char *const known_simple[] = {"cmd", NULL};
        dmn_control *c = conn->control;
        _cleanup_json_ yajl_val doc = NULL;
        au_error err = {};
        const char *cmd;
        dmn_request *req;
        size_t i;

        for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'); i++)
                ;
        if (i == len)
                return; /* blank lines are not requests */

        req = request_push(conn);
        if (!req) {
                conn->broken = true;
                return;
        }
        if (au_json_parse(line, len, MAX_LINE, &doc, &err) < 0) {
                /* The stream can no longer be trusted to be framed right: answer and end it. */
                conn->read_done = true;
                return request_fail_now(req, err.msg, true);
        }
        if (!YAJL_IS_OBJECT(doc))
                return request_fail_now(req, "request: expected a JSON object such as {\"cmd\":\"status\"}",
                                        false);
        yajl_val v = au_json_get(doc, "cmd");
        if (!v)
                return request_fail_now(req, "request: missing field 'cmd' (status, drain or run)", false);
        if (au_json_get_string(v, "cmd", &cmd, &err) < 0)
                return request_fail_now(req, err.msg, false);

        if (strcmp(cmd, "run") == 0)
                return handle_run(conn, req, doc);
        if (strcmp(cmd, "status") != 0 && strcmp(cmd, "drain") != 0) {
                char msg[256];
                snprintf(msg, sizeof(msg), "cmd: unknown command '%.64s' (expected status, drain or run)%s",
                         cmd, strlen(cmd) > 64 ? " (truncated)" : "");
                return request_fail_now(req, msg, false);
        }
        if (au_json_check_object(doc, "", known_simple, &err) < 0)
                return request_fail_now(req, err.msg, false);

        size_t rl = 0;
        char *reply;
        if (strcmp(cmd, "drain") == 0) {
                if (c->ops.drain)
                        c->ops.drain(c->userdata);
                reply = ok_line(NULL, NULL, 0, &rl);
        } else {
                _cleanup_free_ char *status = c->ops.status ? c->ops.status(c->userdata) : NULL;
                size_t sl = status ? strlen(status) : 0;
                if (!status)
                        return request_fail_now(req, "status: not available", false);
                if (!json_object_valid(status, sl))
                        return request_fail_now(req, "status: the daemon produced invalid JSON", false);
                reply = ok_line("status", status, sl, &rl);
        }
        request_finish(req, reply, rl);
}

/* Splits what has been read into lines; at EOF the last line needs no newline. */
static void process_input(dmn_conn *conn, bool eof) {
        size_t start = 0;

        while (!conn->read_done && !conn->broken) {
                char *nl = memchr(conn->in.p + conn->scanned, '\n', conn->in.len - conn->scanned);
                if (!nl) {
                        conn->scanned = conn->in.len;
                        break;
                }
                size_t end = (size_t) (nl - conn->in.p);
                if (end - start > MAX_LINE) {
                        conn->scanned = end;
                        break; /* refused just below */
                }
                handle_line(conn, conn->in.p + start, end - start);
                start = end + 1;
                conn->scanned = start;
        }
        if (!conn->read_done && !conn->broken && conn->scanned - start > MAX_LINE) {
                dmn_request *req = request_push(conn);
                conn->read_done = true;
                if (!req)
                        conn->broken = true;
                else
                        request_fail_now(req, "request line longer than 16 MiB (the limit); closing", true);
        } else if (eof && !conn->read_done && !conn->broken && conn->in.len > start) {
                handle_line(conn, conn->in.p + start, conn->in.len - start);
                start = conn->in.len;
        }
        if (conn->read_done || conn->broken) {
                /* Nothing more will be read: let the buffer go. */
                au_buf_done(&conn->in);
                conn->scanned = 0;
                return;
        }
        /* The partial line moves to the front. */
        size_t rest = conn->in.len - start;
        memmove(conn->in.p, conn->in.p + start, rest);
        conn->in.len = rest;
        conn->in.p[rest] = '\0';
        conn->scanned -= start;
}

/* Reads once: 1 when data came (and was handled), 0 when there was none, -1 at EOF or on error. */
static int conn_read(dmn_conn *conn) {
        /*
         * au_buf doubles, so a long line is not copied over and over. A partial line longer than
         * MAX_LINE is refused by process_input(), so there is always room for a chunk.
         */
        size_t room = MIN((size_t) READ_CHUNK, conn->in.max - conn->in.len);
        char *p = au_buf_reserve(&conn->in, room);
        if (!p || room == 0) {
                conn->broken = true;
                return -1;
        }
        for (;;) {
                ssize_t k = recv(conn->fd, p, room, MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return 0;
                if (k < 0) {
                        conn->broken = true;
                        return -1;
                }
                if (k == 0) {
                        process_input(conn, true);
                        conn->read_done = true;
                        return -1;
                }
                au_buf_commit(&conn->in, (size_t) k);
                process_input(conn, false);
                return 1;
        }
}

static void on_conn(au_source *s, int fd, uint32_t revents, void *userdata) {
        dmn_conn *conn = userdata;

        conn->busy++;
        if (revents & (EPOLLHUP | EPOLLERR)) {
                /*
                 * The client closed its end (a unix socket reports HUP only then, not on
                 * shutdown(SHUT_WR)). What it sent before still counts, but no reply can reach it.
                 */
                while (!conn->read_done && !conn->broken && conn_read(conn) > 0)
                        ;
                conn->broken = true;
        } else if ((revents & EPOLLIN) && !conn->read_done)
                conn_read(conn);
        conn->busy--;
        conn_update(conn);
}

/* ---- listening ------------------------------------------------------------ */

static void on_retry(au_source *s, void *userdata) {
        dmn_control *c = userdata;

        au_source_set_events(c->src, EPOLLIN);
}

static void on_listen(au_source *s, int fd, uint32_t revents, void *userdata) {
        dmn_control *c = userdata;

        for (;;) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                /* The connection stays in the backlog: do not spin on it, look again later.
                                 */
                                au_source_set_events(c->src, 0);
                                au_source_set_timer(c->retry, 100, 0);
                        }
                        return;
                }
                if (c->n_conns >= MAX_CONNECTIONS) {
                        close(cfd);
                        continue;
                }
                dmn_conn *conn = calloc(1, sizeof(*conn));
                if (!conn) {
                        close(cfd);
                        continue;
                }
                conn->control = c;
                conn->fd = cfd;
                conn->in = AU_BUF_INIT((size_t) MAX_LINE + READ_CHUNK);
                if (au_loop_add_io(c->loop, cfd, EPOLLIN, on_conn, conn, &conn->src) < 0) {
                        close(cfd);
                        free(conn);
                        continue;
                }
                conn->next = c->conns;
                if (c->conns)
                        c->conns->prev = conn;
                c->conns = conn;
                c->n_conns++;
        }
}

/* Removes a socket file nobody answers on; refuses when a daemon does. */
static int remove_stale(const char *path, au_error *err) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int probe = -1;
        struct stat st;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : au_error_set(err, errno, "control socket %s", path);
        if (!S_ISSOCK(st.st_mode)) {
                au_error_set(err, 0,
                             "control socket %s: the path exists and is not a socket; not removing it",
                             path);
                return -EEXIST;
        }
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (probe < 0)
                return au_error_set(err, errno, "control socket %s: socket", path);
        memcpy(sa.sun_path, path, strlen(path));
        /* Non-blocking: a full backlog (EAGAIN) still means somebody listens. */
        if (connect(probe, (struct sockaddr *) &sa, sizeof(sa)) == 0 || errno == EAGAIN) {
                au_error_set(
                        err, 0,
                        "control socket %s: another daemon is listening on it (is autoosd already running?)",
                        path);
                return -EADDRINUSE;
        }
        if (errno != ECONNREFUSED && errno != ENOENT)
                return au_error_set(err, errno, "control socket %s: probe for a running daemon", path);
        if (unlink(path) < 0 && errno != ENOENT)
                return au_error_set(err, errno, "control socket %s: remove the stale socket", path);
        return 0;
}

int dmn_control_new(au_loop *loop, const char *path, const dmn_control_ops *ops, void *userdata,
                    dmn_control **ret, au_error *err) {
        _cleanup_(dmn_control_freep) dmn_control *c = NULL;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct stat st;
        mode_t old_umask;
        int r;

        if (!loop || !ops || !path || !path[0])
                return au_error_set(err, EINVAL, "control socket %s", path ? path : "(null)");
        if (strlen(path) >= sizeof(sa.sun_path)) {
                au_error_set(err, 0, "control socket %s: path longer than %zu bytes", path,
                             sizeof(sa.sun_path) - 1);
                return -ENAMETOOLONG;
        }
        memcpy(sa.sun_path, path, strlen(path));

        c = calloc(1, sizeof(*c));
        if (!c)
                return au_error_set(err, ENOMEM, "control socket %s", path);
        c->fd = -1;
        c->loop = loop;
        c->ops = *ops;
        c->userdata = userdata;

        r = remove_stale(path, err);
        if (r < 0)
                return r;
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->fd < 0)
                return au_error_set(err, errno, "control socket %s: socket", path);
        /* Never world-accessible, not even between bind() and chmod(). */
        old_umask = umask(0777 & ~SOCKET_MODE);
        r = bind(c->fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old_umask);
        if (r < 0)
                return au_error_set(err, errno, "control socket %s: bind", path);
        c->path = strdup(path);
        if (!c->path) {
                unlink(path);
                return au_error_set(err, ENOMEM, "control socket %s", path);
        }
        if (stat(path, &st) < 0)
                return au_error_set(err, errno, "control socket %s: stat", path);
        c->dev = st.st_dev;
        c->ino = st.st_ino;
        if (chmod(path, SOCKET_MODE) < 0)
                return au_error_set(err, errno, "control socket %s: chmod", path);
        /* Group autoos may talk to the daemon when that group exists; otherwise root only. */
        struct group grp, *gr = NULL;
        char grbuf[16384];
        if (getgrnam_r(SOCKET_GROUP, &grp, grbuf, sizeof(grbuf), &gr) == 0 && gr)
                (void) !chown(path, (uid_t) -1, gr->gr_gid);
        if (listen(c->fd, SOMAXCONN) < 0)
                return au_error_set(err, errno, "control socket %s: listen", path);

        r = au_loop_add_timer(loop, 0, 0, on_retry, c, &c->retry);
        if (r >= 0)
                r = au_source_set_timer(c->retry, 0, 0);
        if (r >= 0)
                r = au_loop_add_io(loop, c->fd, EPOLLIN, on_listen, c, &c->src);
        if (r < 0)
                return au_error_set(err, r, "control socket %s: watch", path);
        *ret = TAKE_PTR(c);
        return 0;
}

dmn_control *dmn_control_free(dmn_control *c) {
        struct stat st;

        if (!c)
                return NULL;
        while (c->conns) {
                dmn_conn *conn = c->conns;
                /* Each pending request gets a stand-in in the queue that answers with an error. */
                for (dmn_request **pp = &conn->head; *pp; pp = &(*pp)->next) {
                        dmn_request *req = *pp, *stand_in;
                        size_t len = 0;
                        if (req->done || !(stand_in = calloc(1, sizeof(*stand_in))))
                                continue;
                        stand_in->conn = conn;
                        stand_in->next = req->next;
                        stand_in->done = true;
                        stand_in->reply =
                                error_line("autoosd is shutting down; the request was not completed", &len);
                        stand_in->reply_len = stand_in->reply ? len : 0;
                        conn->unsent += stand_in->reply_len;
                        if (conn->tail == req)
                                conn->tail = stand_in;
                        *pp = stand_in;
                        req->conn = NULL;
                        req->next = NULL;
                }
                conn_flush(conn); /* as far as the socket takes it without waiting */
                conn_free(conn);
        }
        au_source_free(c->src);
        au_source_free(c->retry);
        safe_close(c->fd);
        /* Only our own socket file: not one a successor has bound since. */
        if (c->path && stat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
                unlink(c->path);
        free(c->path);
        free(c);
        return NULL;
}

void dmn_request_reply(dmn_request *req, const char *result_json, size_t len) {
        size_t n = 0;
        char *line;

        if (!req)
                return;
        if (req->conn && (!result_json || !json_object_valid(result_json, len)))
                return request_fail_now(req, "run: the daemon produced an invalid result", false);
        line = req->conn ? ok_line("result", result_json, len, &n) : NULL;
        request_finish(req, line, n);
}

void dmn_request_fail(dmn_request *req, const char *message) {
        if (!req)
                return;
        request_fail_now(req, message ? message : "run failed", false);
}
