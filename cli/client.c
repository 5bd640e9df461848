/* SPDX-License-Identifier: MIT */
/* autoosctl's HTTP client of the coordinator (client.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli.h"
#include "cli/client.h"
#include "client/client.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/url.h"

#define MAX_CONFIG_BYTES (64u << 10)
#define MAX_KEY_BYTES 4096u
#define MAX_EVENT_BYTES (16u << 20)
/* Silence after which an event stream counts as lost (the coordinator pings every 15 s). */
#define STREAM_SILENCE_S 45L

struct cli_client {
        api_conn *conn;
        char *url;
        char *shown;  /* url for messages: a password in it masked (au_url_mask) */
        char *cacert; /* CA certificates the server's must chain to; NULL: the system's */
        char *key;
        char *key_origin; /* where the key came from, for a 401 */
        bool json;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose);

static const char *cacert_option; /* --cacert, taken by main() for every coordinator command */

void cli_client_set_cacert(const char *path) {
        cacert_option = path;
}

/* ---- settings -------------------------------------------------------------- */

static char *trim(char *s) {
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                e--;
        *e = '\0';
        return s;
}

static bool has_control_chars(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* Reads the key of path: its first line without surrounding blanks. Prints why not; returns an exit status.
 */
static int read_key_file(const char *path, int status, char **ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        char buf[MAX_KEY_BYTES + 1];
        size_t len = 0;

        if (fd < 0) {
                fprintf(stderr, "autoosctl: key file %s: %s\n", path, strerror(errno));
                return status;
        }
        while (len < sizeof(buf) - 1) {
                ssize_t k = read(fd, buf + len, sizeof(buf) - 1 - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        fprintf(stderr, "autoosctl: key file %s: %s\n", path, strerror(errno));
                        return status;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        buf[len] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        char *key = trim(buf);
        if (!key[0] || has_control_chars(key) || strlen(key) >= MAX_KEY_BYTES) {
                fprintf(stderr, "autoosctl: key file %s: expected the API key on its first line\n", path);
                return status;
        }
        *ret = strdup(key);
        if (!*ret) {
                fputs("autoosctl: out of memory\n", stderr);
                return EX_OSERR;
        }
        return 0;
}

typedef struct config {
        char *path;
        char *url, *api_key, *key_file, *cacert;
} config;

static void config_done(config *cf) {
        free(cf->path);
        free(cf->cacert);
        free(cf->url);
        free(cf->api_key);
        free(cf->key_file);
}

/* The configuration file to read, or NULL when none exists (an explicit $AUTOOS_CONFIG must). */
static int config_path(char **ret) {
        const char *env = getenv(CLI_CONFIG_ENV), *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        char *p = NULL;

        *ret = NULL;
        if (env && env[0])
                return (*ret = strdup(env)) ? 0 : -ENOMEM;
        if (xdg && xdg[0] == '/') {
                if (asprintf(&p, "%s/autoos/autoosctl.conf", xdg) < 0)
                        return -ENOMEM;
        } else if (home && home[0] == '/') {
                if (asprintf(&p, "%s/.config/autoos/autoosctl.conf", home) < 0)
                        return -ENOMEM;
        }
        if (p && access(p, F_OK) == 0) {
                *ret = p;
                return 0;
        }
        free(p);
        if (access(CLI_SYSTEM_CONFIG, F_OK) == 0)
                return (*ret = strdup(CLI_SYSTEM_CONFIG)) ? 0 : -ENOMEM;
        return 0;
}

/* key=value lines (url, api_key, key_file, cacert); blank lines and lines starting with '#' are skipped. */
static int config_read(config *cf) {
        _cleanup_(fclosep) FILE *f = NULL;
        char line[8192];
        unsigned n = 0;
        size_t total = 0;

        if (config_path(&cf->path) < 0) {
                fputs("autoosctl: out of memory\n", stderr);
                return EX_OSERR;
        }
        if (!cf->path)
                return 0;
        f = fopen(cf->path, "re");
        if (!f) {
                fprintf(stderr, "autoosctl: configuration file %s: %s\n", cf->path, strerror(errno));
                return EX_CONFIG;
        }
        while (fgets(line, sizeof(line), f)) {
                size_t l = strlen(line);
                n++;
                total += l;
                if (total > MAX_CONFIG_BYTES) {
                        fprintf(stderr, "autoosctl: configuration file %s: over %u KiB\n", cf->path,
                                MAX_CONFIG_BYTES >> 10);
                        return EX_CONFIG;
                }
                if (l == sizeof(line) - 1 && line[l - 1] != '\n') {
                        fprintf(stderr, "autoosctl: %s:%u: line too long\n", cf->path, n);
                        return EX_CONFIG;
                }
                char *s = trim(line);
                if (!s[0] || s[0] == '#')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq) {
                        fprintf(stderr, "autoosctl: %s:%u: expected key=value\n", cf->path, n);
                        return EX_CONFIG;
                }
                *eq = '\0';
                char *key = trim(s), *value = trim(eq + 1);
                char **slot = strcmp(key, "url") == 0        ? &cf->url
                              : strcmp(key, "api_key") == 0  ? &cf->api_key
                              : strcmp(key, "key_file") == 0 ? &cf->key_file
                              : strcmp(key, "cacert") == 0   ? &cf->cacert
                                                             : NULL;
                if (!slot) {
                        fprintf(stderr,
                                "autoosctl: %s:%u: unknown setting '%s' (expected url, api_key, "
                                "key_file or cacert)\n",
                                cf->path, n, key);
                        return EX_CONFIG;
                }
                if (!value[0] || has_control_chars(value)) {
                        fprintf(stderr, "autoosctl: %s:%u: %s: expected a value\n", cf->path, n, key);
                        return EX_CONFIG;
                }
                free(*slot);
                *slot = strdup(value);
                if (!*slot) {
                        fputs("autoosctl: out of memory\n", stderr);
                        return EX_OSERR;
                }
        }
        if (ferror(f)) {
                fprintf(stderr, "autoosctl: configuration file %s: %s\n", cf->path, strerror(errno));
                return EX_CONFIG;
        }
        return 0;
}

/* http:// or https://, a host, no blanks; trailing slashes are dropped. */
static int check_url(const char *url, const char *origin, int status, char **ret) {
        bool http = strncasecmp(url, "http://", 7) == 0, https = strncasecmp(url, "https://", 8) == 0;
        const char *host = url + (https ? 8 : 7);
        size_t len = strlen(url);

        if ((!http && !https) || !host[0] || host[0] == '/' || strpbrk(url, " \t") ||
            has_control_chars(url) || strchr(url, '?') || strchr(url, '#')) {
                _cleanup_free_ char *shown = au_url_mask(url);
                fprintf(stderr, "autoosctl: %s %s: expected http://HOST[:PORT] or https://HOST[:PORT]\n",
                        origin, shown ? shown : "(the URL)");
                return status;
        }
        while (len > 0 && url[len - 1] == '/')
                len--;
        *ret = strndup(url, len);
        if (!*ret) {
                fputs("autoosctl: out of memory\n", stderr);
                return EX_OSERR;
        }
        return 0;
}

int cli_client_new(const char *url, const char *key_file, bool json, cli_client **ret) {
        _cleanup_cli_client_ cli_client *c = NULL;
        _cleanup_(config_done) config cf = {};
        const char *env_url = getenv(CLI_URL_ENV), *env_key = getenv(CLI_KEY_ENV),
                   *env_cacert = getenv(CLI_CACERT_ENV);
        char *origin = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c) {
                fputs("autoosctl: out of memory\n", stderr);
                return EX_OSERR;
        }
        c->json = json;
        if (env_url && !env_url[0])
                env_url = NULL;
        if (env_key && !env_key[0])
                env_key = NULL;
        if (env_cacert && !env_cacert[0])
                env_cacert = NULL;

        /* Options, then the environment, then the file: the file only when something is still open. */
        if ((!url && !env_url) || (!key_file && !env_key) || (!cacert_option && !env_cacert)) {
                r = config_read(&cf);
                if (r != 0)
                        return r;
        }

        if (url)
                r = check_url(url, "--url", CLI_EXIT_USAGE, &c->url);
        else if (env_url)
                r = check_url(env_url, CLI_URL_ENV, EX_CONFIG, &c->url);
        else if (cf.url) {
                _cleanup_free_ char *what = NULL;
                if (asprintf(&what, "%s: url", cf.path) < 0)
                        return EX_OSERR;
                r = check_url(cf.url, what, EX_CONFIG, &c->url);
        } else
                r = check_url(CLI_DEFAULT_URL, "default", EX_SOFTWARE, &c->url);
        if (r != 0)
                return r;
        c->shown = au_url_mask(c->url);
        if (!c->shown) {
                fputs("autoosctl: out of memory\n", stderr);
                return EX_OSERR;
        }

        if (key_file) {
                r = read_key_file(key_file, CLI_EXIT_USAGE, &c->key);
                if (r == 0 && asprintf(&origin, "the key of --key-file %s", key_file) < 0)
                        origin = NULL;
        } else if (env_key) {
                r = 0;
                if (has_control_chars(env_key)) {
                        fputs("autoosctl: " CLI_KEY_ENV ": control characters in the key\n", stderr);
                        return EX_CONFIG;
                }
                c->key = strdup(env_key);
                if (!c->key)
                        return EX_OSERR;
                origin = strdup("the key of $" CLI_KEY_ENV);
        } else if (cf.api_key) {
                r = 0;
                c->key = TAKE_PTR(cf.api_key);
                if (asprintf(&origin, "the api_key of %s", cf.path) < 0)
                        origin = NULL;
        } else if (cf.key_file) {
                r = read_key_file(cf.key_file, EX_CONFIG, &c->key);
                if (r == 0 && asprintf(&origin, "the key of %s (key_file of %s)", cf.key_file, cf.path) < 0)
                        origin = NULL;
        } else
                r = 0;
        if (r != 0)
                return r;
        c->key_origin = origin;

        /* The CA certificates: checked now, so that a typo is not reported as a refused server. */
        {
                const char *ca = cacert_option ? cacert_option : env_cacert ? env_cacert : cf.cacert;
                const char *what = cacert_option ? "--cacert" : env_cacert ? "$" CLI_CACERT_ENV : "cacert";
                if (ca) {
                        if (access(ca, R_OK) < 0) {
                                fprintf(stderr, "autoosctl: %s %s: %s\n", what, ca, strerror(errno));
                                return cacert_option ? CLI_EXIT_USAGE : EX_CONFIG;
                        }
                        c->cacert = strdup(ca);
                        if (!c->cacert)
                                return EX_OSERR;
                }
        }

        r = api_conn_new(c->url, c->cacert, "autoosctl/" PACKAGE_VERSION, &c->conn);
        if (r < 0) {
                fputs(r == -ENOMEM ? "autoosctl: out of memory\n" : "autoosctl: cannot initialize libcurl\n",
                      stderr);
                return EX_OSERR;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

cli_client *cli_client_free(cli_client *c) {
        if (!c)
                return NULL;
        api_conn_free(c->conn);
        free(c->url);
        free(c->shown);
        free(c->cacert);
        if (c->key)
                explicit_bzero(c->key, strlen(c->key));
        free(c->key);
        free(c->key_origin);
        free(c);
        return NULL;
}

const char *cli_client_url(const cli_client *c) {
        return c->shown;
}

char *cli_path_join(const char *path, const char *s) {
        return api_path_join(path, s);
}

/* ---- requests ----------------------------------------------------------------- */

void cli_reply_done(cli_reply *r) {
        free(r->body);
        r->body = NULL;
        r->len = 0;
}

typedef struct sink {
        au_buf buf; /* bounded by CLI_MAX_REPLY_BYTES */
        bool over;
} sink;

#define SINK_INIT \
        { .buf = AU_BUF_INIT(CLI_MAX_REPLY_BYTES) }

static bool sink_add(sink *s, const char *data, size_t k) {
        int r = au_buf_append(&s->buf, data, k);
        if (r == -E2BIG)
                s->over = true;
        return r == 0;
}

/* Text from the coordinator, made harmless for a terminal, into buf. */
static void clean_copy(char *buf, size_t size, const char *s) {
        size_t i = 0;

        for (; s && *s && i + 1 < size; s++)
                buf[i++] = (unsigned char) *s < 0x20 || *s == 0x7f ? '?' : *s;
        buf[i] = '\0';
}

/* The exit status of an error code of doc/api.md, else of the HTTP status. */
static int status_exit(const char *code, long status, bool *ret_transient) {
        static const struct {
                const char *code;
                int exit;
        } codes[] = {
                {"invalid_json", EX_DATAERR},        {"invalid_workflow", EX_DATAERR},
                {"invalid_request", EX_DATAERR},     {"payload_too_large", EX_DATAERR},
                {"unauthorized", EX_NOPERM},         {"forbidden", EX_NOPERM},
                {"not_found", CLI_EXIT_FAILED},      {"conflict", CLI_EXIT_FAILED},
                {"method_not_allowed", EX_PROTOCOL}, {"rate_limited", EX_TEMPFAIL},
                {"unavailable", EX_UNAVAILABLE},     {"internal", EX_SOFTWARE},
                {"budget_exceeded", EX_NOPERM},      {"invalid_draft", EX_DATAERR},
                {"planner_failed", EX_UNAVAILABLE},
        };

        *ret_transient = status == 429 || status == 502 || status == 503 || status == 504;
        for (size_t i = 0; code && i < ELEMENTSOF(codes); i++)
                if (strcmp(code, codes[i].code) == 0)
                        return codes[i].exit;
        switch (status) {
        case 400:
        case 413:
        case 422:
                return EX_DATAERR;
        case 401:
        case 402:
        case 403:
                return EX_NOPERM;
        case 404:
        case 409:
                return CLI_EXIT_FAILED;
        case 429:
                return EX_TEMPFAIL;
        case 502:
        case 503:
        case 504:
                return EX_UNAVAILABLE;
        default:
                return status >= 500 ? EX_SOFTWARE : EX_PROTOCOL;
        }
}

/* An answer with a status other than 2xx: the error document's message, code and field. */
static void http_failure(const cli_client *c, cli_reply *r, unsigned retry_after) {
        _cleanup_json_ yajl_val doc = NULL;
        char message[512] = "", code[64] = "", field[256] = "";
        yajl_val e = NULL;

        if (r->body && r->len > 0 && cli_reply_json(NULL, r, &doc) == 0)
                e = au_json_get(doc, "error");
        if (YAJL_IS_OBJECT(e)) {
                yajl_val v = au_json_get(e, "message");
                if (YAJL_IS_STRING(v))
                        clean_copy(message, sizeof(message), v->u.string);
                v = au_json_get(e, "code");
                if (YAJL_IS_STRING(v))
                        clean_copy(code, sizeof(code), v->u.string);
                v = au_json_get(e, "field");
                if (YAJL_IS_STRING(v))
                        clean_copy(field, sizeof(field), v->u.string);
        }
        r->exit = status_exit(code[0] ? code : NULL, r->status, &r->transient);

        if (!message[0] && !code[0])
                snprintf(r->message, sizeof(r->message), "the coordinator at %s answered HTTP %ld%s",
                         c->shown, r->status, YAJL_IS_OBJECT(e) ? "" : " without an error document");
        else if (!code[0])
                snprintf(r->message, sizeof(r->message), "%s (HTTP %ld)", message, r->status);
        else if (!message[0])
                snprintf(r->message, sizeof(r->message), "the coordinator at %s refused: %s (HTTP %ld)",
                         c->shown, code, r->status);
        else if (field[0])
                snprintf(r->message, sizeof(r->message), "%s (%s, field %s)", message, code, field);
        else
                snprintf(r->message, sizeof(r->message), "%s (%s)", message, code);

        if (r->status == 429 && retry_after > 0 && retry_after < 1000000)
                snprintf(r->hint, sizeof(r->hint), "try again in %u s", retry_after);
        else if (r->status == 401 && !c->key)
                snprintf(r->hint, sizeof(r->hint),
                         "no API key was given: use --key-file FILE, $" CLI_KEY_ENV
                         ", or api_key= in the configuration file (autoosctl(1))");
        else if (r->status == 401)
                snprintf(r->hint, sizeof(r->hint), "the coordinator at %s does not accept %s", c->shown,
                         c->key_origin ? c->key_origin : "this key");
}

/* No answer: what libcurl says, in the terms of "cannot reach the coordinator at URL: ...". */
static void transport_failure(const cli_client *c, const api_reply *ar, long timeout_ms, cli_reply *r) {
        CURLcode cc = (CURLcode) ar->curl_code;
        const char *errbuf = ar->error;
        long os_errno = ar->os_errno;
        bool over = ar->over;
        char why[512];

        r->exit = EX_UNAVAILABLE;
        r->transient = true;

        if (over || cc == CURLE_FILESIZE_EXCEEDED) {
                snprintf(r->message, sizeof(r->message),
                         "cannot read the reply of the coordinator at %s: over %u MiB", c->shown,
                         CLI_MAX_REPLY_BYTES >> 20);
                r->exit = EX_PROTOCOL;
                r->transient = false;
                return;
        }
        switch (cc) {
        case CURLE_COULDNT_CONNECT:
                snprintf(why, sizeof(why), "%s",
                         os_errno > 0 ? strerror((int) os_errno)
                         : errbuf[0]  ? errbuf
                                      : curl_easy_strerror(cc));
                break;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                snprintf(why, sizeof(why), "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
                break;
        case CURLE_OPERATION_TIMEDOUT:
                if (!ar->connected)
                        snprintf(why, sizeof(why), "no connection within %ld s",
                                 CLI_CONNECT_TIMEOUT_MS / 1000);
                else if (timeout_ms > 0)
                        snprintf(why, sizeof(why), "no answer within %ld s", timeout_ms / 1000);
                else
                        snprintf(why, sizeof(why), "nothing received for %ld s", STREAM_SILENCE_S);
                break;
        case CURLE_GOT_NOTHING:
                snprintf(why, sizeof(why), "the connection was closed without an answer");
                break;
        case CURLE_PEER_FAILED_VERIFICATION:
#if LIBCURL_VERSION_NUM < 0x073e00
        case CURLE_SSL_CACERT:
#endif
                /* errbuf says why: "self-signed certificate", "certificate has expired", "no alternative
                 * certificate subject name matches target host name ...". Trying again will not help. */
                snprintf(why, sizeof(why), "TLS: the server's certificate is refused: %s",
                         errbuf[0] ? errbuf : curl_easy_strerror(cc));
                if (c->cacert)
                        snprintf(r->hint, sizeof(r->hint),
                                 "it was checked against the CA certificates in %s and the URL's host name",
                                 c->cacert);
                else
                        snprintf(r->hint, sizeof(r->hint),
                                 "it was checked against the system's CA certificates; give the CA that "
                                 "signed it "
                                 "with --cacert FILE, $" CLI_CACERT_ENV " or cacert= (autoosctl(1))");
                r->exit = EX_PROTOCOL;
                r->transient = false;
                break;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
                snprintf(why, sizeof(why), "TLS: %s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
                r->exit = EX_PROTOCOL;
                r->transient = cc == CURLE_SSL_CONNECT_ERROR;
                break;
        case CURLE_WRITE_ERROR:
        case CURLE_OUT_OF_MEMORY:
                snprintf(why, sizeof(why), "out of memory");
                r->exit = EX_OSERR;
                r->transient = false;
                break;
        default:
                snprintf(why, sizeof(why), "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
                if (cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT) {
                        r->exit = EX_CONFIG;
                        r->transient = false;
                }
                break;
        }
        why[strcspn(why, "\r\n")] = '\0';
        snprintf(r->message, sizeof(r->message), "cannot reach the coordinator at %s: %s", c->shown, why);
}

/* Every request of autoosctl's says it reads JSON, and a refused body (413) should not wait for a 100
 * Continue first. */
static const char *const request_headers[] = {"Accept: application/json", "Expect:", NULL};

int cli_client_call(cli_client *c, const char *method, const char *path, const char *body, size_t len,
                    long timeout_ms, cli_reply *ret) {
        api_request q = {.method = method,
                         .path = path,
                         .bearer = c->key,
                         .body = body,
                         .len = len,
                         .headers = request_headers,
                         .timeout_ms = timeout_ms,
                         .max_reply = CLI_MAX_REPLY_BYTES};
        _cleanup_api_reply_ api_reply ar = {};
        int r;

        *ret = (cli_reply){};
        r = api_send(c->conn, &q, &ar);
        if (r == -ENOMEM) {
                snprintf(ret->message, sizeof(ret->message), "out of memory");
                return ret->exit = EX_OSERR;
        }
        if (r < 0) {
                transport_failure(c, &ar, timeout_ms, ret);
                return ret->exit;
        }
        ret->status = ar.status;
        ret->body = TAKE_PTR(ar.body);
        ret->len = ar.len;
        if (ret->status >= 200 && ret->status < 300)
                return ret->exit = 0;
        http_failure(c, ret, ar.retry_after);
        return ret->exit;
}

void cli_client_report(const cli_client *c, const cli_reply *r) {
        if (r->exit == 0)
                return;
        if (c->json && r->status >= 400 && r->body && r->len > 0 && r->body[0] == '{') {
                fwrite(r->body, 1, r->len, stdout);
                if (r->body[r->len - 1] != '\n')
                        putchar('\n');
                fflush(stdout);
        }
        fprintf(stderr, "autoosctl: %s\n", r->message);
        if (r->hint[0])
                fprintf(stderr, "autoosctl: %s\n", r->hint);
}

int cli_client_request(cli_client *c, const char *method, const char *path, const char *body, size_t len,
                       cli_reply *ret) {
        int r = cli_client_call(c, method, path, body, len, CLI_REQUEST_TIMEOUT_MS, ret);
        if (r != 0)
                cli_client_report(c, ret);
        return r;
}

int cli_reply_json(const cli_client *c, const cli_reply *r, yajl_val *ret) {
        _cleanup_free_ char *copy = NULL;
        au_error err = {};
        yajl_val v = NULL;
        int k;

        copy = malloc(r->len + 1);
        if (!copy) {
                fputs("autoosctl: out of memory\n", stderr);
                return EX_OSERR;
        }
        memcpy(copy, r->body, r->len);
        copy[r->len] = '\0';
        /* au_json_parse() refuses "\u0000" (a tree would cut the string there); show it as U+2400. */
        for (size_t i = 0; i + 1 < r->len; i++) {
                if (copy[i] != '\\')
                        continue;
                if (copy[i + 1] == 'u' && i + 5 < r->len && memcmp(copy + i + 2, "0000", 4) == 0)
                        memcpy(copy + i + 2, "2400", 4);
                i++;
        }
        k = au_json_parse(copy, r->len, CLI_MAX_REPLY_BYTES, &v, &err);
        if (k == 0 && !YAJL_IS_OBJECT(v)) {
                yajl_tree_free(v);
                k = -EINVAL;
                snprintf(err.msg, sizeof(err.msg), "not a JSON object");
        }
        if (k < 0) {
                if (c)
                        fprintf(stderr, "autoosctl: cannot read the reply of the coordinator at %s: %s\n",
                                c->shown, err.msg);
                return k == -ENOMEM ? EX_OSERR : EX_PROTOCOL;
        }
        *ret = v;
        return 0;
}

/* ---- server-sent events ------------------------------------------------------- */

typedef struct stream {
        cli_client *c;
        cli_event_cb cb;
        void *userdata;
        bool checked, is_events, after_cr;
        sink error_body; /* the body of a refusal */
        au_buf line;     /* the line being read */
        au_buf data;     /* the event's data lines, joined with "\n" */
        bool has_data;
        char event[128];
        char id[256];
        char *last_id;
        int status; /* the callback's, or EX_PROTOCOL / EX_OSERR */
        char why[256];
} stream;

static int stream_dispatch(stream *st) {
        if (!st->has_data) {
                st->event[0] = '\0';
                return 0;
        }
        if (st->id[0]) {
                char *l = strdup(st->id);
                if (!l)
                        return -ENOMEM;
                free(st->last_id);
                st->last_id = l;
        }
        int r = st->cb(st->userdata, st->id[0] ? st->id : NULL, st->event[0] ? st->event : "message",
                       st->data.p, st->data.len);
        st->event[0] = '\0';
        au_buf_clear(&st->data);
        st->has_data = false;
        if (r != 0)
                st->status = r;
        return r;
}

/* One line of the stream (text/event-stream, without its end of line). */
static int stream_line(stream *st, char *l, size_t len) {
        char *value;
        size_t vlen;

        if (len == 0)
                return stream_dispatch(st);
        if (l[0] == ':')
                return 0; /* a comment: ": ping" */
        char *colon = memchr(l, ':', len);
        if (colon) {
                *colon = '\0';
                value = colon + 1;
                if (*value == ' ')
                        value++;
                vlen = len - (size_t) (value - l);
        } else {
                value = l + len;
                vlen = 0;
        }
        if (strcmp(l, "data") == 0) {
                size_t need = st->data.len + (st->has_data ? 1 : 0) + vlen + 1;
                if (need > MAX_EVENT_BYTES) {
                        snprintf(st->why, sizeof(st->why), "an event over %u MiB", MAX_EVENT_BYTES >> 20);
                        st->status = EX_PROTOCOL;
                        return -E2BIG;
                }
                if ((st->has_data && au_buf_append(&st->data, "\n", 1) < 0) ||
                    au_buf_append(&st->data, value, vlen) < 0)
                        return -ENOMEM;
                st->has_data = true;
        } else if (strcmp(l, "event") == 0)
                snprintf(st->event, sizeof(st->event), "%.*s", (int) MIN(vlen, sizeof(st->event) - 1),
                         value);
        else if (strcmp(l, "id") == 0)
                snprintf(st->id, sizeof(st->id), "%.*s", (int) MIN(vlen, sizeof(st->id) - 1), value);
        /* "retry" and unknown fields are ignored, as the standard says. */
        return 0;
}

static bool stream_data(const char *data, size_t k, long status, const char *type, void *userdata) {
        stream *st = userdata;

        if (!st->checked) {
                st->is_events = status == 200 && type && strncasecmp(type, "text/event-stream", 17) == 0;
                st->checked = true;
                if (status == 200 && !st->is_events) {
                        snprintf(st->why, sizeof(st->why), "not an event stream (Content-Type %s)",
                                 type ? type : "none");
                        st->status = EX_PROTOCOL;
                        return false;
                }
        }
        if (!st->is_events)
                return sink_add(&st->error_body, data, k);

        for (size_t i = 0; i < k; i++) {
                char ch = data[i];
                bool after_cr = st->after_cr;

                st->after_cr = ch == '\r';
                if (ch == '\n' && after_cr)
                        continue; /* "\r\n" is one end of line */
                if (ch == '\n' || ch == '\r') {
                        if (!au_buf_reserve(&st->line, 0)) /* a line to read, even when empty */
                                return false;
                        if (stream_line(st, st->line.p, st->line.len) != 0)
                                return false;
                        au_buf_clear(&st->line);
                        continue;
                }
                if (st->line.len + 2 > MAX_EVENT_BYTES) {
                        snprintf(st->why, sizeof(st->why), "a line over %u MiB", MAX_EVENT_BYTES >> 20);
                        st->status = EX_PROTOCOL;
                        return false;
                }
                if (au_buf_append(&st->line, &ch, 1) < 0)
                        return false;
        }
        return true;
}

int cli_client_stream(cli_client *c, const char *path, const char *since, cli_event_cb cb, void *userdata,
                      char **ret_last_id, cli_reply *ret) {
        _cleanup_free_ char *last = NULL;
        _cleanup_api_reply_ api_reply ar = {};
        stream st = {.c = c,
                     .cb = cb,
                     .userdata = userdata,
                     .error_body = SINK_INIT,
                     .line = AU_BUF_INIT(MAX_EVENT_BYTES - 1),
                     .data = AU_BUF_INIT(MAX_EVENT_BYTES - 1)};
        int r;

        *ret = (cli_reply){};
        if (ret_last_id)
                *ret_last_id = NULL;
        if (since && asprintf(&last, "Last-Event-ID: %s", since) < 0) {
                last = NULL;
                goto oom;
        }
        const char *headers[] = {"Accept: application/json", "Expect:", "Accept: text/event-stream", last,
                                 NULL};
        api_request q = {.method = "GET",
                         .path = path,
                         .bearer = c->key,
                         .headers = headers,
                         .silence_s = STREAM_SILENCE_S,
                         .on_data = stream_data,
                         .data = &st};
        r = api_send(c->conn, &q, &ar);
        if (r == -ENOMEM)
                goto oom;
        /* Kept when the transfer breaks later: 200 says the stream had begun. */
        ret->status = ar.status;

        if (ret_last_id)
                *ret_last_id = TAKE_PTR(st.last_id);
        if (st.status != 0 && st.why[0]) {
                snprintf(ret->message, sizeof(ret->message),
                         "cannot read the events of the coordinator at %s: %s", c->shown, st.why);
                r = ret->exit = st.status;
        } else if (st.status != 0)
                r = st.status; /* the callback's */
        else if (r < 0 && !st.error_body.over) {
                ar.over = false;
                transport_failure(c, &ar, 0, ret);
                r = ret->exit;
        } else {
                if (st.is_events || (ret->status == 200 && !st.checked))
                        r = 0; /* the coordinator ended the stream */
                else {
                        ret->body = au_buf_steal(&st.error_body.buf, &ret->len);
                        if (!ret->body)
                                goto oom;
                        http_failure(c, ret, ar.retry_after);
                        r = ret->exit;
                }
        }
        au_buf_done(&st.error_body.buf);
        au_buf_done(&st.line);
        au_buf_done(&st.data);
        free(st.last_id);
        return r;

oom:
        au_buf_done(&st.error_body.buf);
        au_buf_done(&st.line);
        au_buf_done(&st.data);
        free(st.last_id);
        snprintf(ret->message, sizeof(ret->message), "out of memory");
        return ret->exit = EX_OSERR;
}
