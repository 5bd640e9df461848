/* SPDX-License-Identifier: MIT */
/* autoosctl secret: create, rotate, delete and list the coordinator's secrets (secret.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/secret.h"
#include "common/json.h"

/* The coordinator refuses more (PUT /v1/secrets/{name}: 413); reading stops just past it. */
#define SECRET_MAX_VALUE (64u << 10)

static int usage(FILE *f, int status) {
        fputs("Usage: autoosctl secret set NAME [--from-file FILE]   create or rotate NAME; the value\n"
              "                                                     is read from standard input\n"
              "       autoosctl secret rm NAME                      delete NAME\n"
              "       autoosctl secret ls                           names, versions, who and when\n"
              "Options: --url URL, --key-file FILE, --cacert FILE, --json\n"
              "\n"
              "Needs an admin key. A value (at most 64 KiB of UTF-8 text, one trailing newline\n"
              "dropped) is sent once and never shown again: no command prints a value. Steps\n"
              "name secrets in run.secrets: {\"VAR\": \"NAME\"}.\n",
              f);
        return status;
}

/* Reads the value from fd into *ret (wiped by the caller); an exit status. */
static int read_value(int fd, const char *what, char **ret, size_t *ret_len) {
        size_t cap = SECRET_MAX_VALUE + 2, len = 0;
        char *buf = malloc(cap);
        ssize_t n;

        if (!buf) {
                fputs("autoosctl: out of memory\n", stderr);
                return EX_OSERR;
        }
        while (len < cap && (n = read(fd, buf + len, cap - len)) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "autoosctl: read %s: %s\n", what, strerror(errno));
                        explicit_bzero(buf, cap);
                        free(buf);
                        return EX_IOERR;
                }
                len += (size_t) n;
        }
        if (len > 0 && buf[len - 1] == '\n')
                len--;
        if (len > SECRET_MAX_VALUE || len == 0 || memchr(buf, '\0', len) || !au_utf8_valid(buf, len)) {
                fprintf(stderr, "autoosctl: the value in %s %s\n", what,
                        len == 0                 ? "is empty"
                        : len > SECRET_MAX_VALUE ? "is over the limit of 64 KiB"
                        : memchr(buf, '\0', len) ? "holds a NUL byte (an environment variable cannot)"
                                                 : "is not UTF-8 text (base64 a binary value)");
                explicit_bzero(buf, cap);
                free(buf);
                return EX_DATAERR;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

static int secret_set(cli_client *client, const char *name, const char *from_file, bool json) {
        _cleanup_cli_reply_ cli_reply reply = {};
        _cleanup_free_ char *path = NULL;
        _cleanup_json_gen_ yajl_gen g = NULL;
        char *value = NULL, *body = NULL;
        size_t len = 0, body_len = 0;
        const unsigned char *buf;
        size_t blen;
        int fd = 0, r;

        if (from_file && (fd = open(from_file, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
                fprintf(stderr, "autoosctl: open %s: %s\n", from_file, strerror(errno));
                return EX_NOINPUT;
        }
        r = read_value(fd, from_file ? from_file : "standard input", &value, &len);
        if (from_file)
                close(fd);
        if (r != 0)
                return r;
        g = au_json_gen_new(false);
        if (g && au_json_gen_map_open(g) >= 0 && au_json_gen_string(g, "value") >= 0 &&
            au_json_gen_stringn(g, value, len) >= 0 && au_json_gen_map_close(g) >= 0)
                body = au_json_gen_finish(g, &body_len);
        explicit_bzero(value, SECRET_MAX_VALUE + 2);
        free(value);
        if (g && yajl_gen_get_buf(g, &buf, &blen) == yajl_gen_status_ok)
                explicit_bzero((void *) buf, blen);
        path = cli_path_join("/v1/secrets", name);
        if (!body || !path) {
                if (body) {
                        explicit_bzero(body, body_len);
                        free(body);
                }
                fputs("autoosctl: out of memory\n", stderr);
                return EX_OSERR;
        }
        r = cli_client_request(client, "PUT", path, body, body_len, &reply);
        explicit_bzero(body, body_len);
        free(body);
        if (r != 0)
                return r;
        if (json) {
                printf("%s\n", reply.body);
                return 0;
        }
        {
                _cleanup_json_ yajl_val doc = NULL;
                yajl_val v;
                r = cli_reply_json(client, &reply, &doc);
                if (r != 0)
                        return r;
                v = au_json_get(doc, "version");
                printf("secret '%s' %s (version %lld)\n", name, reply.status == 201 ? "created" : "rotated",
                       v && YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : 0LL);
        }
        return 0;
}

int cli_delete_named(cli_client *client, const char *collection, const char *what, const char *name,
                     const char *done, bool json) {
        _cleanup_cli_reply_ cli_reply reply = {};
        _cleanup_free_ char *path = cli_path_join(collection, name);
        int r;

        if (!path) {
                fputs("autoosctl: out of memory\n", stderr);
                return EX_OSERR;
        }
        r = cli_client_request(client, "DELETE", path, NULL, 0, &reply);
        if (r != 0)
                return r;
        if (json)
                printf("%s\n", reply.body);
        else
                printf("%s '%s' %s\n", what, name, done);
        return 0;
}

static const char *text(yajl_val obj, const char *key) {
        yajl_val v = au_json_get(obj, key);
        return v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : "-";
}

static int secret_ls(cli_client *client, bool json) {
        _cleanup_cli_reply_ cli_reply reply = {};
        _cleanup_json_ yajl_val doc = NULL;
        yajl_val list;
        int r;

        r = cli_client_request(client, "GET", "/v1/secrets", NULL, 0, &reply);
        if (r != 0)
                return r;
        if (json) {
                printf("%s\n", reply.body);
                return 0;
        }
        r = cli_reply_json(client, &reply, &doc);
        if (r != 0)
                return r;
        list = au_json_get(doc, "secrets");
        printf("%-32s %7s  %-24s %-24s %s\n", "NAME", "VERSION", "CREATED", "ROTATED", "BY");
        for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
                yajl_val s = list->u.array.values[i], v = au_json_get(s, "version");
                const char *rotated_by = text(s, "rotated_by");
                printf("%-32s %7lld  %-24s %-24s %s\n", text(s, "name"),
                       v && YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : 0LL, text(s, "created_at"),
                       text(s, "rotated_at"),
                       strcmp(rotated_by, "-") != 0 ? rotated_by : text(s, "created_by"));
        }
        return 0;
}

int cli_secret(int argc, char **argv) {
        static const struct option options[] = {
                {"url", required_argument, NULL, 'u'},
                {"key-file", required_argument, NULL, 'k'},
                {"from-file", required_argument, NULL, 'f'},
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_cli_client_ cli_client *client = NULL;
        const char *url = NULL, *key_file = NULL, *from_file = NULL, *verb;
        bool json = false;
        int c, r, want;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1)
                switch (c) {
                case 'u':
                        url = optarg;
                        break;
                case 'k':
                        key_file = optarg;
                        break;
                case 'f':
                        from_file = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        return usage(stdout, 0);
                default:
                        fprintf(stderr, "autoosctl secret: %s '%s'\n",
                                c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
                        return usage(stderr, CLI_EXIT_USAGE);
                }
        if (optind >= argc)
                return usage(stderr, CLI_EXIT_USAGE);
        verb = argv[optind];
        want = strcmp(verb, "ls") == 0 ? 1 : 2;
        if ((strcmp(verb, "set") != 0 && strcmp(verb, "rm") != 0 && strcmp(verb, "ls") != 0) ||
            argc - optind != want || (from_file && strcmp(verb, "set") != 0))
                return usage(stderr, CLI_EXIT_USAGE);
        r = cli_client_new(url, key_file, json, &client);
        if (r != 0)
                return r;
        if (strcmp(verb, "set") == 0)
                return secret_set(client, argv[optind + 1], from_file, json);
        if (strcmp(verb, "rm") == 0)
                return cli_delete_named(client, "/v1/secrets", "secret", argv[optind + 1], "deleted", json);
        return secret_ls(client, json);
}
