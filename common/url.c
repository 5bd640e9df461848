/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

char *au_url_mask(const char *url) {
        const char *scheme, *p, *q, *userinfo_end = NULL, *colon = NULL;
        bool in_query;
        size_t n;
        char *out, *o;

        if (!url)
                return strdup("(null)");
        /* Each masked credential adds at most 3 bytes, and each takes at least 6 ("pass=" and a separator).
         */
        n = strlen(url);
        out = malloc(2 * n + sizeof(MASK));
        if (!out)
                return NULL;
        o = out;
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
                        colon = memchr(auth, ':', (size_t) (userinfo_end - auth));
                        memcpy(o, url, (size_t) (auth - url));
                        o += auth - url;
                        if (colon) {
                                memcpy(o, auth, (size_t) (colon + 1 - auth));
                                o += colon + 1 - auth;
                                memcpy(o, MASK, strlen(MASK));
                                o += strlen(MASK);
                        } else if (has_prefix_ci(url, "postgres")) {
                                memcpy(o, auth, (size_t) (userinfo_end - auth));
                                o += userinfo_end - auth;
                        } else if (userinfo_end > auth) {
                                memcpy(o, MASK, strlen(MASK));
                                o += strlen(MASK);
                        }
                        p = userinfo_end;
                }
        }

        /* key=value passwords, in a URL's query or in a libpq conninfo string. */
        in_query = scheme != NULL;
        while (*p) {
                size_t k = password_key(url, p);

                if (k > 0) {
                        memcpy(o, p, k);
                        o += k;
                        p = value_end(p + k, in_query);
                        memcpy(o, MASK, strlen(MASK));
                        o += strlen(MASK);
                        continue;
                }
                *o++ = *p++;
        }
        *o = '\0';
        return out;
}
