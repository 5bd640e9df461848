/* SPDX-License-Identifier: MIT */
/*
 * The console's static files and the OpenAPI document (console.h). Files are
 * opened beneath the console directory one checked segment at a time, with
 * O_NOFOLLOW on the last, and read with a size bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/buf.h"
#include "common/macro.h"
#include "orchestrator/console.h"

#define OPENAPI_PATH "/v1/openapi.json"
#define MAX_FILE_BYTES ((size_t) 16 << 20)
#define MAX_SEGMENT 128
#define MAX_BASE_SEGMENTS 8
/* The index's <base> as shipped; replaced by the configured base path when it differs. */
#define INDEX_BASE "<base href=\"/ui/\">"

/* The console's own scripts, styles and images; the API on the same origin; nothing else. */
#define CSP                                                                                               \
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "                 \
        "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'self'; form-action 'none'; " \
        "frame-ancestors 'none'"

struct orc_console {
        char *dir;
        char *base; /* "/ui" */
        size_t base_len;
        char *openapi;
};

static bool segment_ok(const char *s, size_t n) {
        if (n == 0 || n > MAX_SEGMENT || s[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++) {
                char ch = s[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                      ch == '.' || ch == '_' || ch == '-'))
                        return false;
        }
        return true;
}

static bool base_ok(const char *b) {
        unsigned n = 0;

        if (b[0] != '/')
                return false;
        for (const char *p = b + 1;;) {
                const char *slash = strchr(p, '/');
                size_t len = slash ? (size_t) (slash - p) : strlen(p);
                if (!segment_ok(p, len) || ++n > MAX_BASE_SEGMENTS)
                        return false;
                if (!slash)
                        return true;
                p = slash + 1;
        }
}

int orc_console_new(const char *dir, const char *base_path, const char *openapi_file, orc_console **ret,
                    au_error *err) {
        orc_console *con;

        if (!dir || !base_path || !openapi_file || !ret)
                return au_error_set(err, EINVAL, "console");
        if (!base_ok(base_path) || strcmp(base_path, "/v1") == 0)
                return au_error_set_field(err, "console_path",
                                          "console_path: expected /name[/name...] of [A-Za-z0-9._-], not "
                                          "/v1, got '%s'",
                                          base_path);
        con = calloc(1, sizeof(*con));
        if (!con)
                return au_error_set(err, ENOMEM, "console");
        con->dir = strdup(dir);
        con->base = strdup(base_path);
        con->openapi = strdup(openapi_file);
        if (!con->dir || !con->base || !con->openapi) {
                orc_console_free(con);
                return au_error_set(err, ENOMEM, "console");
        }
        con->base_len = strlen(con->base);
        *ret = con;
        return 0;
}

orc_console *orc_console_free(orc_console *con) {
        if (!con)
                return NULL;
        free(con->dir);
        free(con->base);
        free(con->openapi);
        free(con);
        return NULL;
}

bool orc_console_handles(const orc_console *con, const char *url) {
        if (!con || !url)
                return false;
        if (strcmp(url, OPENAPI_PATH) == 0)
                return true;
        return strncmp(url, con->base, con->base_len) == 0 &&
               (url[con->base_len] == '\0' || url[con->base_len] == '/');
}

static const char *content_type(const char *name) {
        static const struct {
                const char *ext, *type;
        } types[] = {
                {".html", "text/html; charset=utf-8"},
                {".js", "text/javascript; charset=utf-8"},
                {".mjs", "text/javascript; charset=utf-8"},
                {".css", "text/css; charset=utf-8"},
                {".json", "application/json"},
                {".svg", "image/svg+xml"},
                {".png", "image/png"},
                {".ico", "image/x-icon"},
                {".txt", "text/plain; charset=utf-8"},
                {".woff2", "font/woff2"},
                {".webmanifest", "application/manifest+json"},
        };
        const char *dot = strrchr(name, '.');

        if (dot)
                for (size_t i = 0; i < ELEMENTSOF(types); i++)
                        if (strcmp(dot, types[i].ext) == 0)
                                return types[i].type;
        return "application/octet-stream";
}

/* Opens rel (checked segments) beneath dirfd, refusing symbolic links; a negative errno. */
static int open_beneath(const char *dir, const char *rel) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char seg[MAX_SEGMENT + 1];

        if (fd < 0)
                return -errno;
        for (const char *p = rel;;) {
                const char *slash = strchr(p, '/');
                size_t len = slash ? (size_t) (slash - p) : strlen(p);
                int next;

                if (!segment_ok(p, len))
                        return -ENOENT;
                memcpy(seg, p, len);
                seg[len] = '\0';
                next = openat(fd, seg, (slash ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0)
                        return -errno;
                close(fd);
                fd = next;
                if (!slash)
                        return TAKE_FD(fd);
                p = slash + 1;
        }
}

/* The file's bytes in b; a negative errno (-EISDIR for no regular file, -EFBIG past the bound). */
static int read_file(const char *dir, const char *rel, au_buf *b) {
        _cleanup_close_ int fd = open_beneath(dir, rel);
        struct stat st;

        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        return au_buf_read_fd(b, fd, MAX_FILE_BYTES);
}

/* The index with its <base> pointing at the configured base path. */
static int fix_index_base(const orc_console *con, au_buf *b) {
        _cleanup_buf_ au_buf out = AU_BUF_INIT(0);
        const char *at;

        if (strcmp(con->base, "/ui") == 0 || !b->p || !(at = strstr(b->p, INDEX_BASE)))
                return 0;
        if (au_buf_append(&out, b->p, (size_t) (at - b->p)) < 0 ||
            au_buf_printf(&out, "<base href=\"%s/\">", con->base) < 0 ||
            au_buf_puts(&out, at + strlen(INDEX_BASE)) < 0)
                return -ENOMEM;
        au_buf_done(b);
        *b = out;
        out = AU_BUF_INIT(0);
        return 0;
}

static struct MHD_Response *respond(au_buf *body, const char *ctype, const char *request_id,
                                    const char *location, const char *allow) {
        struct MHD_Response *resp;
        size_t len = body->len;
        char *p = body->p ? au_buf_steal(body, &len) : strdup("");

        if (!p)
                return NULL;
        resp = MHD_create_response_from_buffer_with_free_callback(len, p, free);
        if (!resp) {
                free(p);
                return NULL;
        }
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
            MHD_add_response_header(resp, "Content-Security-Policy", CSP) != MHD_YES ||
            MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
            MHD_add_response_header(resp, "X-Frame-Options", "DENY") != MHD_YES ||
            MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") != MHD_YES ||
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES ||
            MHD_add_response_header(resp, "X-Request-Id", request_id) != MHD_YES ||
            (location && MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location) != MHD_YES) ||
            (allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
                MHD_destroy_response(resp);
                return NULL;
        }
        return resp;
}

/* The API's error shape; message is ours (no request text in it). */
static struct MHD_Response *respond_error(const char *code, const char *message, const char *request_id,
                                          const char *allow) {
        _cleanup_buf_ au_buf b = AU_BUF_INIT(0);

        if (au_buf_printf(&b, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message) < 0)
                return NULL;
        return respond(&b, "application/json", request_id, NULL, allow);
}

struct MHD_Response *orc_console_respond(const orc_console *con, const char *url, const char *method,
                                         const char *request_id, unsigned *ret_status) {
        _cleanup_buf_ au_buf body = AU_BUF_INIT(MAX_FILE_BYTES + 1);
        _cleanup_free_ char *location = NULL;
        const char *rel, *last;
        int r;

        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
                *ret_status = 405;
                return respond_error("method_not_allowed",
                                     "the console and the OpenAPI document are read-only "
                                     "(allowed: GET, HEAD)",
                                     request_id, "GET, HEAD");
        }
        if (strcmp(url, OPENAPI_PATH) == 0) {
                /* The document's path is the administrator's, not the request's: open it as it is. */
                _cleanup_close_ int fd = open(con->openapi, O_RDONLY | O_CLOEXEC);
                r = fd < 0 ? -errno : au_buf_read_fd(&body, fd, MAX_FILE_BYTES);
                if (r < 0) {
                        *ret_status = 404;
                        return respond_error("not_found", "the OpenAPI document is not installed",
                                             request_id, NULL);
                }
                *ret_status = 200;
                return respond(&body, "application/json", request_id, NULL, NULL);
        }
        rel = url + con->base_len;
        if (!*rel) {
                if (asprintf(&location, "%s/", con->base) < 0)
                        return NULL;
                *ret_status = 308;
                return respond(&body, "text/plain; charset=utf-8", request_id, location, NULL);
        }
        rel++; /* the '/' */
        if (*rel) {
                r = read_file(con->dir, rel, &body);
                if (r >= 0) {
                        *ret_status = 200;
                        return respond(&body, content_type(rel), request_id, NULL, NULL);
                }
                last = strrchr(rel, '/');
                last = last ? last + 1 : rel;
                if (r != -ENOENT || strchr(last, '.')) {
                        *ret_status = 404;
                        return respond_error("not_found", "no such console file", request_id, NULL);
                }
        }
        /* The page itself: the console's own router reads the rest of the path. */
        au_buf_clear(&body);
        r = read_file(con->dir, "index.html", &body);
        if (r < 0) {
                *ret_status = 404;
                return respond_error("not_found", "the console is not installed (no index.html)", request_id,
                                     NULL);
        }
        if (fix_index_base(con, &body) < 0)
                return NULL;
        *ret_status = 200;
        return respond(&body, "text/html; charset=utf-8", request_id, NULL, NULL);
}
