/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"

/*
 * Reads the leading decimal digits of s into *ret and points *ret_end past
 * them. -EINVAL when there is no digit. On overflow *ret is UINT64_MAX and
 * *ret_overflow true, so that callers report bad syntax before range.
 */
static int parse_digits(const char *s, uint64_t *ret, const char **ret_end, bool *ret_overflow) {
        uint64_t v = 0;
        bool overflow = false;
        const char *p = s;

        if (!s || *p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                unsigned d = (unsigned) (*p - '0');

                if (overflow || v > (UINT64_MAX - d) / 10)
                        overflow = true;
                else
                        v = v * 10 + d;
        }
        *ret = overflow ? UINT64_MAX : v;
        *ret_end = p;
        *ret_overflow = overflow;
        return 0;
}

static int mul_checked(uint64_t a, bool overflow, uint64_t b, uint64_t *ret) {
        if (overflow || (b != 0 && a > UINT64_MAX / b))
                return -ERANGE;
        *ret = a * b;
        return 0;
}

int au_parse_uint64(const char *s, uint64_t *ret) {
        bool overflow;
        const char *end;
        uint64_t v;
        int r;

        r = parse_digits(s, &v, &end, &overflow);
        if (r < 0)
                return r;
        if (*end != '\0')
                return -EINVAL;
        if (overflow)
                return -ERANGE;
        *ret = v;
        return 0;
}

int au_parse_uint32(const char *s, uint32_t *ret) {
        uint64_t v;
        int r;

        r = au_parse_uint64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t) v;
        return 0;
}

int au_parse_size(const char *s, uint64_t *ret) {
        static const struct {
                char letter;
                unsigned shift;
        } units[] = {
                {'K', 10}, {'k', 10}, {'M', 20}, {'m', 20}, {'G', 30}, {'g', 30}, {'T', 40}, {'t', 40},
        };
        bool overflow;
        const char *end;
        uint64_t v, mult = 1;
        int r;

        r = parse_digits(s, &v, &end, &overflow);
        if (r < 0)
                return r;
        if (*end != '\0') {
                size_t i;

                for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                        if (*end == units[i].letter)
                                break;
                if (i == sizeof(units) / sizeof(units[0]))
                        return -EINVAL;
                mult = UINT64_C(1) << units[i].shift;
                end++;
                if (*end != '\0' && strcmp(end, "iB") != 0)
                        return -EINVAL;
        }
        r = mul_checked(v, overflow, mult, &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

int au_parse_duration_ms(const char *s, uint64_t *ret) {
        bool overflow;
        const char *end;
        uint64_t v, mult;
        int r;

        r = parse_digits(s, &v, &end, &overflow);
        if (r < 0)
                return r;
        if (*end == '\0' || strcmp(end, "s") == 0)
                mult = 1000;
        else if (strcmp(end, "ms") == 0)
                mult = 1;
        else if (strcmp(end, "m") == 0)
                mult = 60 * 1000;
        else if (strcmp(end, "h") == 0)
                mult = 60 * 60 * 1000;
        else
                return -EINVAL;
        r = mul_checked(v, overflow, mult, &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

static char *strip(char *s) {
        char *e;

        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
                *--e = '\0';
        return s;
}

int au_parse_kv_file(const char *path, au_kv_fn set, void *userdata, au_error *err) {
        char *line = NULL;
        size_t n = 0;
        unsigned lineno = 0;
        int r = 0;
        FILE *f = fopen(path, "re");

        if (!f)
                return au_error_set(err, errno, "open %s", path);
        while (getline(&line, &n, f) > 0) {
                char *s = strip(line), *eq, *key, *value;
                size_t vl;
                au_error e = {0};

                lineno++;
                if (!*s || *s == '#')
                        continue;
                eq = strchr(s, '=');
                if (!eq) {
                        r = au_error_set_field(err, "", "%s:%u: expected 'key = value', got '%s'", path,
                                               lineno, s);
                        break;
                }
                *eq = '\0';
                key = strip(s);
                value = strip(eq + 1);
                /* Quotes are allowed around values: "a b". */
                vl = strlen(value);
                if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
                        value[vl - 1] = '\0';
                        value++;
                }
                r = set(userdata, key, value, &e);
                if (r < 0) {
                        au_error_set_field(err, key, "%s:%u: %s", path, lineno,
                                           e.msg[0] ? e.msg : strerror(-r));
                        break;
                }
        }
        free(line);
        fclose(f);
        return r < 0 ? r : 0;
}
