/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/macro.h"
#include "common/url.h"

#define MASK "***"

static bool has_prefix_ci(const char *s, const char *prefix) {
        return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Does s start a "password=" (or "sslpassword=") key at a key boundary? Returns the key's length. */
static size_t password_key(const char *start, const char *s) {
        static const char *const keys[] = {"password=", "sslpassword=", "pass="};

        if (s != start && !strchr("?&; \t\n", s[-1]))
                return 0;
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                if (has_prefix_ci(s, keys[i]))
                        return strlen(keys[i]);
        return 0;
}

/* The end of a key=value value: '&' or '#' in a URL query; whitespace (or a quoted string) in conninfo. */
static const char *value_end(const char *v, bool in_query) {
        if (!in_query && *v == '\'') {
                for (v++; *v && *v != '\''; v++)
                        if (*v == '\\' && v[1])
                                v++;
                return *v ? v + 1 : v;
        }
        return v + strcspn(v, in_query ? "&#" : " \t\n");
}

typedef struct span {
        size_t off, len;
} span;

/*
 * The credentials in url, in order: the userinfo's password (or a bare
 * userinfo but for postgres URLs) and every password= value. *ret is a
 * malloc'd array (NULL when there is none); returns how many, or -1.
 */
static ssize_t secret_spans(const char *url, span **ret) {
        const char *scheme, *p, *q, *userinfo_end = NULL;
        size_t n = 0, cap = strlen(url) / 5 + 2;
        span *sp = malloc(cap * sizeof(span));

        *ret = NULL;
        if (!sp)
                return -1;
        p = url;
        scheme = strstr(url, "://");
        if (scheme && scheme > url &&
            (size_t) (scheme - url) == strspn(url, "abcdefghijklmnopqrstuvwxyz"
                                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")) {
                const char *auth = scheme + 3, *auth_end = auth + strcspn(auth, "?#");

                /* The last '@' before the query: a password may hold an unescaped '@' or '/'. */
                for (q = auth; q < auth_end; q++)
                        if (*q == '@')
                                userinfo_end = q;
                if (userinfo_end) {
                        const char *colon = memchr(auth, ':', (size_t) (userinfo_end - auth));
                        if (colon)
                                sp[n++] = (span){(size_t) (colon + 1 - url),
                                                 (size_t) (userinfo_end - colon - 1)};
                        else if (!has_prefix_ci(url, "postgres") && userinfo_end > auth)
                                sp[n++] = (span){(size_t) (auth - url), (size_t) (userinfo_end - auth)};
                        p = userinfo_end;
                }
        }
        /* key=value passwords, in a URL's query or in a libpq conninfo string. */
        while (*p) {
                size_t k = password_key(url, p);

                if (k > 0 && n < cap) {
                        const char *v = p + k, *end = value_end(v, scheme != NULL);
                        sp[n++] = (span){(size_t) (v - url), (size_t) (end - v)};
                        p = end;
                        continue;
                }
                p++;
        }
        *ret = sp;
        return (ssize_t) n;
}

char *au_url_mask(const char *url) {
        span *sp = NULL;
        ssize_t n;
        size_t at = 0;
        char *out, *o;

        if (!url)
                return strdup("(null)");
        n = secret_spans(url, &sp);
        if (n < 0)
                return NULL;
        /* Each masked credential adds at most 3 bytes, and each takes at least 6 ("pass=" and a separator).
         */
        out = malloc(2 * strlen(url) + sizeof(MASK));
        if (!out) {
                free(sp);
                return NULL;
        }
        o = out;
        for (ssize_t i = 0; i < n; i++) {
                memcpy(o, url + at, sp[i].off - at);
                o += sp[i].off - at;
                memcpy(o, MASK, strlen(MASK));
                o += strlen(MASK);
                at = sp[i].off + sp[i].len;
        }
        strcpy(o, url + at);
        free(sp);
        return out;
}

char *au_text_mask_url(const char *text, const char *url) {
        _cleanup_free_ char *shown = NULL;
        _cleanup_buf_ au_buf buf = AU_BUF_INIT(0);
        span *sp = NULL;
        size_t ulen;
        ssize_t n;

        if (!text)
                return NULL;
        if (!url || !*url)
                return strdup(text);
        shown = au_url_mask(url);
        n = secret_spans(url, &sp);
        if (!shown || n < 0) {
                free(sp);
                return NULL;
        }
        ulen = strlen(url);
        for (const char *t = text; *t;) {
                bool hit = false;

                if (strncmp(t, url, ulen) == 0) {
                        if (au_buf_puts(&buf, shown) < 0)
                                goto oom;
                        t += ulen;
                        continue;
                }
                for (ssize_t i = 0; i < n && !hit; i++)
                        if (sp[i].len > 0 && strncmp(t, url + sp[i].off, sp[i].len) == 0) {
                                if (au_buf_puts(&buf, MASK) < 0)
                                        goto oom;
                                t += sp[i].len;
                                hit = true;
                        }
                if (!hit && au_buf_append(&buf, t++, 1) < 0)
                        goto oom;
        }
        free(sp);
        return au_buf_steal(&buf, NULL);
oom:
        free(sp);
        return NULL;
}
