/* SPDX-License-Identifier: MIT */
/* autoosctl node: talk to this host's autoosd over its control socket (daemon/control.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>

#include "cli.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"
#include "sandbox/sandbox.h"

#define DEFAULT_SOCKET "/run/autoos/autoosd.sock"
#define SOCKET_ENV "AUTOOS_NODE_SOCKET"
/* The daemon reads lines of at most 16 MiB; leave room for {"cmd":"run","spec":...}. */
#define MAX_SPEC_BYTES ((16u << 20) - 64)
/* A result holds up to twice the output limit, escaped: be generous, but bounded. */
#define MAX_REPLY_BYTES (1024u << 20)
#define REPLY_TIMEOUT_MS 30000

static void node_usage(FILE *f) {
        fputs("Usage: autoosctl node status [--json] [--socket PATH]\n"
              "       autoosctl node drain [--json] [--socket PATH]\n"
              "       autoosctl node run [--json] [--socket PATH] [--spec FILE] [--] [PROGRAM [ARG]...]\n"
              "\n"
              "Talks to autoosd, the AUTOOS node daemon of this host, over its control socket.\n"
              "\n"
              "Commands:\n"
              "  status   show what the daemon is doing\n"
              "  drain    make it stop taking jobs; runs in flight finish\n"
              "  run      run one command in a sandbox through the daemon, under its policy;\n"
              "           PROGRAM and ARGs (an absolute path inside the sandbox) and/or a JSON\n"
              "           run spec (DESIGN.md) from --spec; PROGRAM replaces the spec's argv\n"
              "\n"
              "Options:\n"
              "      --socket PATH  the control socket (default: $" SOCKET_ENV ", else\n"
              "                     " DEFAULT_SOCKET ")\n"
              "      --spec FILE    run: read the run spec from FILE\n"
              "      --json         print the daemon's JSON (status, result) instead of text\n"
              "  -h, --help         show this help\n"
              "\n"
              "Exit status: status and drain 0, or 1 when the daemon refused; run as 'autoosctl\n"
              "run' (the program's, 124, 125, 137...); 2 for bad options; 69 when autoosd\n"
              "cannot be reached; 76 when its reply cannot be read; 77 without permission\n"
              "(root or group autoos).\n",
              f);
}

enum { OPT_SOCKET = 0x100, OPT_SPEC, OPT_JSON };

static const struct option options[] = {
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"spec", required_argument, NULL, OPT_SPEC},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {},
};

typedef struct node_opts {
        const char *socket;
        const char *spec_file;
        bool json;
} node_opts;

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;
        fputs("autoosctl node: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs(" (see 'autoosctl node --help')\n", stderr);
        return CLI_EXIT_USAGE;
}

/* Options may come before and after the command: "+" stops at the first other word. */
static int parse_opts(int argc, char **argv, node_opts *o) {
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
                const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
                switch (c) {
                case 'h':
                        node_usage(stdout);
                        return -1;
                case OPT_SOCKET:
                        if (!optarg[0])
                                return usage_error("--socket: expected a path");
                        o->socket = optarg;
                        break;
                case OPT_SPEC:
                        o->spec_file = optarg;
                        break;
                case OPT_JSON:
                        o->json = true;
                        break;
                case ':':
                        return usage_error("%s: requires a value", name);
                default:
                        return usage_error("%s: unknown option", name);
                }
        }
        return 0;
}

/* ---- talking to the daemon ------------------------------------------------ */

static int connect_daemon(const char *path, int *ret_fd) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;

        if (strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "autoosctl node: cannot reach autoosd at %s: path too long for a socket\n",
                        path);
                return CLI_EXIT_USAGE;
        }
        memcpy(sa.sun_path, path, strlen(path));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int e = errno;
                bool perm = e == EACCES || e == EPERM;
                fprintf(stderr, "autoosctl node: cannot reach autoosd at %s: %s%s\n", path, strerror(e),
                        perm ? " (root or membership of group autoos is needed)"
                        : e == ENOENT || e == ECONNREFUSED ? " (is autoosd running?)"
                                                           : "");
                return perm ? EX_NOPERM : EX_UNAVAILABLE;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int send_all(int fd, const char *buf, size_t len) {
        while (len > 0) {
                ssize_t k = send(fd, buf, len, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EPIPE;
                buf += k;
                len -= (size_t) k;
        }
        return 0;
}

/* Reads one reply line (without its newline); timeout_ms -1 waits as long as it takes. */
static int read_reply(int fd, int timeout_ms, char **ret, size_t *ret_len) {
        _cleanup_buf_ au_buf b = AU_BUF_INIT((size_t) MAX_REPLY_BYTES);

        for (;;) {
                char *nl = b.len > 0 ? memchr(b.p, '\n', b.len) : NULL;
                if (nl) {
                        *nl = '\0';
                        *ret_len = (size_t) (nl - b.p);
                        *ret = au_buf_steal(&b, NULL);
                        return 0;
                }
                if (b.len >= MAX_REPLY_BYTES)
                        return -E2BIG;
                size_t room = MIN((size_t) 65536, (size_t) MAX_REPLY_BYTES - b.len);
                char *in = au_buf_reserve(&b, room);
                if (!in)
                        return -ENOMEM;
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int r = poll(&p, 1, timeout_ms);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                ssize_t k = recv(fd, in, room, 0);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -ECONNRESET;
                au_buf_commit(&b, (size_t) k);
        }
}

/*
 * What matters in a reply, found with yajl's stream parser: "ok", "error",
 * and where the member named `member` ("status", "result") lies in the text,
 * so that it can be used as the daemon wrote it. (A tree would refuse the
 * "\u0000" that program output may hold.)
 */
typedef struct reply {
        yajl_handle y;
        const char *member;
        unsigned depth;
        bool in_member;
        char key[16];
        int ok; /* -1 absent */
        char error[1024];
        size_t start, end; /* member's span; end 0 when absent */
} reply;

static int rp_value(reply *p) {
        if (p->depth == 1)
                p->key[0] = '\0';
        return 1;
}

static int rp_null(void *ctx) {
        return rp_value(ctx);
}

static int rp_bool(void *ctx, int b) {
        reply *p = ctx;
        if (p->depth == 1 && strcmp(p->key, "ok") == 0)
                p->ok = b ? 1 : 0;
        return rp_value(p);
}

static int rp_number(void *ctx, const char *s, size_t l) {
        return rp_value(ctx);
}

static int rp_string(void *ctx, const unsigned char *s, size_t l) {
        reply *p = ctx;
        if (p->depth == 1 && strcmp(p->key, "error") == 0)
                snprintf(p->error, sizeof(p->error), "%.*s", (int) MIN(l, sizeof(p->error) - 1),
                         (const char *) s);
        return rp_value(p);
}

static int rp_key(void *ctx, const unsigned char *s, size_t l) {
        reply *p = ctx;
        if (p->depth == 1)
                snprintf(p->key, sizeof(p->key), "%.*s", (int) MIN(l, sizeof(p->key) - 1), (const char *) s);
        return 1;
}

static int rp_open(void *ctx) {
        reply *p = ctx;
        if (p->depth == 1 && strcmp(p->key, p->member) == 0) {
                p->in_member = true;
                p->start = yajl_get_bytes_consumed(p->y) - 1;
        }
        p->depth++;
        return 1;
}

static int rp_close(void *ctx) {
        reply *p = ctx;
        p->depth--;
        if (p->depth == 1 && p->in_member) {
                p->in_member = false;
                p->end = yajl_get_bytes_consumed(p->y);
        }
        return p->depth == 1 ? rp_value(p) : 1;
}

static const yajl_callbacks reply_callbacks = {
        .yajl_null = rp_null,
        .yajl_boolean = rp_bool,
        .yajl_number = rp_number,
        .yajl_string = rp_string,
        .yajl_start_map = rp_open,
        .yajl_map_key = rp_key,
        .yajl_end_map = rp_close,
        .yajl_start_array = rp_open,
        .yajl_end_array = rp_close,
};

static int parse_reply(const char *line, size_t len, const char *member, reply *p) {
        yajl_status st;

        *p = (reply){.member = member ? member : "", .ok = -1};
        if (len == 0 || line[0] != '{')
                return -EINVAL;
        p->y = yajl_alloc(&reply_callbacks, NULL, p);
        if (!p->y)
                return -ENOMEM;
        st = yajl_parse(p->y, (const unsigned char *) line, len);
        if (st == yajl_status_ok)
                st = yajl_complete_parse(p->y);
        yajl_free(p->y);
        p->y = NULL;
        return st == yajl_status_ok && p->ok >= 0 ? 0 : -EINVAL;
}

/* Sends one request line and reads the reply; prints what went wrong and returns an exit status. */
static int request(const node_opts *o, const char *what, const char *req, size_t req_len, int timeout_ms,
                   char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -1;
        const char *path = o->socket;
        int r;

        r = connect_daemon(path, &fd);
        if (r != 0)
                return r;
        r = send_all(fd, req, req_len);
        if (r < 0) {
                fprintf(stderr, "autoosctl node %s: cannot send to autoosd at %s: %s\n", what, path,
                        strerror(-r));
                return EX_UNAVAILABLE;
        }
        r = read_reply(fd, timeout_ms, ret, ret_len);
        if (r == -ETIMEDOUT) {
                fprintf(stderr, "autoosctl node %s: autoosd at %s did not answer within %d s\n", what, path,
                        timeout_ms / 1000);
                return EX_UNAVAILABLE;
        }
        if (r == -ECONNRESET) {
                fprintf(stderr, "autoosctl node %s: autoosd at %s closed the connection without answering\n",
                        what, path);
                return EX_UNAVAILABLE;
        }
        if (r == -E2BIG) {
                fprintf(stderr, "autoosctl node %s: the reply of autoosd is over %u MiB\n", what,
                        MAX_REPLY_BYTES >> 20);
                return EX_PROTOCOL;
        }
        if (r < 0) {
                fprintf(stderr, "autoosctl node %s: reading from autoosd at %s: %s\n", what, path,
                        strerror(-r));
                return EX_UNAVAILABLE;
        }
        return 0;
}

/* {"cmd":cmd} plus a newline, or with "spec" when spec is not NULL. */

static char *make_request(const char *cmd, yajl_val spec, char **argv, size_t *ret_len) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        size_t len;

        if (!g || au_json_gen_map_open(g) < 0 || au_json_gen_kv_string(g, "cmd", cmd) < 0)
                return NULL;
        if (spec || argv) {
                if (au_json_gen_string(g, "spec") < 0 || au_json_gen_map_open(g) < 0)
                        return NULL;
                for (size_t i = 0; spec && i < spec->u.object.len; i++) {
                        /* PROGRAM on the command line replaces the spec's argv. */
                        if (argv && strcmp(spec->u.object.keys[i], "argv") == 0)
                                continue;
                        if (au_json_gen_string(g, spec->u.object.keys[i]) < 0 ||
                            au_json_gen_tree(g, spec->u.object.values[i]) < 0)
                                return NULL;
                }
                if (argv) {
                        if (au_json_gen_string(g, "argv") < 0 || au_json_gen_array_open(g) < 0)
                                return NULL;
                        for (char **a = argv; *a; a++)
                                if (au_json_gen_string(g, *a) < 0)
                                        return NULL;
                        if (au_json_gen_array_close(g) < 0)
                                return NULL;
                }
                if (au_json_gen_map_close(g) < 0)
                        return NULL;
        }
        if (au_json_gen_map_close(g) < 0)
                return NULL;
        char *s = au_json_gen_finish(g, &len);
        char *line = s ? realloc(s, len + 2) : NULL;
        if (!line) {
                free(s);
                return NULL;
        }
        line[len] = '\n';
        line[len + 1] = '\0';
        *ret_len = len + 1;
        return line;
}

/* ---- output ------------------------------------------------------------------ */

/* Text from the daemon, with control characters made harmless for a terminal. */
static void put_text(const char *s) {
        for (; *s; s++)
                putchar((unsigned char) *s < 0x20 || *s == 0x7f ? '?' : *s);
}

static void put_scalar(yajl_val v) {
        if (YAJL_IS_STRING(v))
                put_text(v->u.string);
        else if (YAJL_IS_NUMBER(v))
                fputs(v->u.number.r, stdout);
        else if (YAJL_IS_TRUE(v))
                fputs("yes", stdout);
        else if (YAJL_IS_FALSE(v))
                fputs("no", stdout);
        else
                fputs("-", stdout);
}

static bool is_scalar(yajl_val v) {
        return !YAJL_IS_OBJECT(v) && !YAJL_IS_ARRAY(v);
}

/* An object as "key: value" lines, values aligned, nested objects indented. */
static void print_object(yajl_val obj, int indent) {
        size_t width = 0;

        for (size_t i = 0; i < obj->u.object.len; i++)
                width = MAX(width, strlen(obj->u.object.keys[i]));
        for (size_t i = 0; i < obj->u.object.len; i++) {
                const char *key = obj->u.object.keys[i];
                yajl_val v = obj->u.object.values[i];
                bool flat = is_scalar(v) || (YAJL_IS_OBJECT(v) && v->u.object.len == 0);

                if (YAJL_IS_ARRAY(v)) {
                        flat = true;
                        for (size_t j = 0; j < v->u.array.len; j++)
                                flat = flat && is_scalar(v->u.array.values[j]);
                }
                printf("%*s", indent, "");
                put_text(key);
                printf(":%*s", flat ? (int) (width - strlen(key) + 1) : 0, "");
                if (is_scalar(v))
                        put_scalar(v);
                else if (YAJL_IS_OBJECT(v) && flat)
                        fputs("-", stdout);
                else if (YAJL_IS_ARRAY(v) && flat) {
                        for (size_t j = 0; j < v->u.array.len; j++) {
                                if (j > 0)
                                        fputs(", ", stdout);
                                put_scalar(v->u.array.values[j]);
                        }
                        if (v->u.array.len == 0)
                                fputs("-", stdout);
                }
                putchar('\n');
                if (YAJL_IS_OBJECT(v) && !flat)
                        print_object(v, indent + 2);
                else if (YAJL_IS_ARRAY(v) && !flat)
                        for (size_t j = 0; j < v->u.array.len; j++) {
                                yajl_val e = v->u.array.values[j];
                                printf("%*s-", indent + 2, "");
                                if (YAJL_IS_OBJECT(e)) {
                                        putchar('\n');
                                        print_object(e, indent + 4);
                                } else {
                                        putchar(' ');
                                        put_scalar(e);
                                        putchar('\n');
                                }
                        }
        }
}

static void write_all(int fd, const char *buf, size_t len) {
        while (len > 0) {
                ssize_t k = write(fd, buf, len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return; /* our reader went away */
                buf += k;
                len -= (size_t) k;
        }
}

/* ---- commands -------------------------------------------------------------- */

/* The daemon said no: its message, and the JSON with --json. */
static int refused(const node_opts *o, const char *what, const char *line, const reply *p, int status) {
        if (o->json)
                printf("%s\n", line);
        fprintf(stderr, "autoosctl node %s: autoosd refused: %s\n", what,
                p->error[0] ? p->error : "no reason given");
        return status;
}

static int bad_reply(const char *what, const char *why) {
        fprintf(stderr, "autoosctl node %s: cannot read the reply of autoosd: %s\n", what, why);
        return EX_PROTOCOL;
}

static int node_status(const node_opts *o) {
        _cleanup_free_ char *line = NULL;
        _cleanup_json_ yajl_val status = NULL;
        static const char req[] = "{\"cmd\":\"status\"}\n";
        au_error err = {};
        size_t len;
        reply p;
        int r;

        r = request(o, "status", req, sizeof(req) - 1, REPLY_TIMEOUT_MS, &line, &len);
        if (r != 0)
                return r;
        if (parse_reply(line, len, "status", &p) < 0)
                return bad_reply("status", "not the JSON object of daemon/control.h");
        if (!p.ok)
                return refused(o, "status", line, &p, 1);
        if (p.end == 0)
                return bad_reply("status", "no \"status\" object");
        if (o->json) {
                printf("%.*s\n", (int) (p.end - p.start), line + p.start);
                return 0;
        }
        r = au_json_parse(line + p.start, p.end - p.start, len, &status, &err);
        if (r < 0 || !YAJL_IS_OBJECT(status))
                return bad_reply("status", r < 0 ? err.msg : "status is not an object");
        print_object(status, 0);
        return 0;
}

static int node_drain(const node_opts *o) {
        _cleanup_free_ char *line = NULL;
        static const char req[] = "{\"cmd\":\"drain\"}\n";
        size_t len;
        reply p;
        int r;

        r = request(o, "drain", req, sizeof(req) - 1, REPLY_TIMEOUT_MS, &line, &len);
        if (r != 0)
                return r;
        if (parse_reply(line, len, NULL, &p) < 0)
                return bad_reply("drain", "not the JSON object of daemon/control.h");
        if (!p.ok)
                return refused(o, "drain", line, &p, 1);
        if (o->json)
                printf("%s\n", line);
        else
                printf("autoosd at %s is draining: it takes no new jobs; runs in flight finish.\n",
                       o->socket);
        return 0;
}

static int read_spec_file(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_buf_ au_buf b = AU_BUF_INIT((size_t) MAX_SPEC_BYTES + 1); /* one over: too big */

        if (fd < 0)
                return -errno;
        int r = au_buf_read_fd(&b, fd, (size_t) MAX_SPEC_BYTES);
        if (r < 0)
                return r;
        *ret = au_buf_steal(&b, ret_len);
        return *ret ? 0 : -ENOMEM;
}

static int node_run(const node_opts *o, char **argv) {
        _cleanup_free_ char *spec_text = NULL, *req = NULL, *line = NULL;
        _cleanup_json_ yajl_val spec = NULL;
        _cleanup_sbx_result_ sbx_result *res = NULL;
        au_error err = {};
        size_t len = 0, req_len = 0;
        reply p;
        int r;

        if (!o->spec_file && !argv[0])
                return usage_error("run: no PROGRAM and no --spec: autoosctl node run [--spec FILE] -- "
                                   "PROGRAM [ARG]...");
        if (argv[0] && argv[0][0] != '/')
                return usage_error(
                        "run: PROGRAM %s: must be an absolute path inside the sandbox (e.g. /bin/sh)",
                        argv[0]);
        if (o->spec_file) {
                r = read_spec_file(o->spec_file, &spec_text, &len);
                if (r < 0)
                        return usage_error("--spec %s: %s", o->spec_file,
                                           r == -EFBIG ? "larger than the daemon accepts (16 MiB)"
                                                       : strerror(-r));
                r = au_json_parse(spec_text, len, MAX_SPEC_BYTES, &spec, &err);
                if (r < 0)
                        return usage_error("--spec %s: %s", o->spec_file, err.msg);
                if (!YAJL_IS_OBJECT(spec))
                        return usage_error("--spec %s: expected a JSON object (a run spec)", o->spec_file);
        }
        req = make_request("run", spec, argv[0] ? argv : NULL, &req_len);
        if (!req) {
                fputs("autoosctl node run: out of memory\n", stderr);
                return 125;
        }
        if (req_len > (16u << 20)) {
                fputs("autoosctl node run: the run spec is larger than the daemon accepts (16 MiB)\n",
                      stderr);
                return CLI_EXIT_USAGE;
        }

        /* No timeout: the daemon bounds the run; Ctrl-C leaves it running there. */
        r = request(o, "run", req, req_len, -1, &line, &len);
        if (r != 0)
                return r;
        if (parse_reply(line, len, "result", &p) < 0)
                return bad_reply("run", "not the JSON object of daemon/control.h");
        if (!p.ok)
                return refused(o, "run", line, &p, 125);
        if (p.end == 0)
                return bad_reply("run", "no \"result\" object");
        r = sbx_result_from_json(line + p.start, p.end - p.start, &res, &err);
        if (r < 0)
                return bad_reply("run", err.msg);

        if (o->json) {
                printf("%.*s\n", (int) (p.end - p.start), line + p.start);
                fflush(stdout);
                return sbx_result_exit_status(res);
        }
        write_all(STDOUT_FILENO, res->stdout_data, res->stdout_size);
        write_all(STDERR_FILENO, res->stderr_data, res->stderr_size);
        if (res->outcome == SBX_OUTCOME_SANDBOX_ERROR || res->outcome == SBX_OUTCOME_REJECTED)
                fprintf(stderr, "autoosctl node run: %s: %s\n", sbx_outcome_to_string(res->outcome),
                        res->error ? res->error : "unknown error");
        else if (res->reason)
                fprintf(stderr, "autoosctl node run: %s: %s\n", sbx_outcome_to_string(res->outcome),
                        res->reason);
        else if (res->outcome != SBX_OUTCOME_EXITED && res->outcome != SBX_OUTCOME_SIGNALED)
                fprintf(stderr, "autoosctl node run: %s\n", sbx_outcome_to_string(res->outcome));
        if (res->stdout_truncated || res->stderr_truncated)
                fputs("autoosctl node run: output beyond the run's output limit was discarded\n", stderr);
        return sbx_result_exit_status(res);
}

int cli_node(int argc, char **argv) {
        node_opts o = {};
        int r;

        r = parse_opts(argc, argv, &o);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (optind >= argc)
                return usage_error("no command given: status, drain or run");
        const char *cmd = argv[optind];
        if (strcmp(cmd, "help") == 0) {
                node_usage(stdout);
                return 0;
        }
        argc -= optind;
        argv += optind;
        /* The command's own options; for run, what follows is PROGRAM [ARG]... */
        r = parse_opts(argc, argv, &o);
        if (r != 0)
                return r < 0 ? 0 : r;
        if (!o.socket) {
                const char *env = getenv(SOCKET_ENV);
                o.socket = env && env[0] ? env : DEFAULT_SOCKET;
        }

        if (strcmp(cmd, "run") == 0)
                return node_run(&o, argv + optind);
        if (o.spec_file)
                return usage_error("--spec: only for run");
        if (optind < argc)
                return usage_error("%s: unexpected argument '%s'", cmd, argv[optind]);
        if (strcmp(cmd, "status") == 0)
                return node_status(&o);
        if (strcmp(cmd, "drain") == 0)
                return node_drain(&o);
        return usage_error("unknown command '%s' (expected status, drain or run)", cmd);
}
