/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
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
