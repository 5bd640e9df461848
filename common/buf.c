/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/buf.h"

static int grow(au_buf *b, size_t need) {
        size_t bound = b->max ? b->max : SIZE_MAX - 1;

        if (need > bound - b->len)
                return -E2BIG;
        size_t want = b->len + need + 1; /* and the NUL */
        if (want <= b->cap)
                return 0;
        size_t cap = b->cap ? b->cap : 64;
        while (cap < want)
                cap = cap > SIZE_MAX / 2 ? want : cap * 2;
        if (b->max && cap > b->max + 1)
                cap = b->max + 1;
        char *p = realloc(b->p, cap);
        if (!p)
                return -ENOMEM;
        b->p = p;
        b->cap = cap;
        return 0;
}

int au_buf_append(au_buf *b, const void *data, size_t n) {
        int r = grow(b, n);
        if (r < 0)
                return r;
        if (n)
                memcpy(b->p + b->len, data, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
}

int au_buf_puts(au_buf *b, const char *s) {
        return au_buf_append(b, s, strlen(s));
}

int au_buf_vprintf(au_buf *b, const char *fmt, va_list ap) {
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0)
                return -EINVAL;
        int r = grow(b, (size_t) n);
        if (r < 0)
                return r;
        vsnprintf(b->p + b->len, (size_t) n + 1, fmt, ap);
        b->len += (size_t) n;
        return 0;
}

int au_buf_printf(au_buf *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = au_buf_vprintf(b, fmt, ap);
        va_end(ap);
        return r;
}

char *au_buf_reserve(au_buf *b, size_t n) {
        int r = grow(b, n);
        if (r < 0) {
                errno = -r;
                return NULL;
        }
        return b->p + b->len;
}

void au_buf_commit(au_buf *b, size_t n) {
        b->len += n;
        b->p[b->len] = '\0';
}

int au_buf_read_fd(au_buf *b, int fd, size_t max) {
        for (;;) {
                if (b->len > max)
                        return -EFBIG;
                size_t room = max + 1 - b->len;
                if (room > 65536)
                        room = 65536;
                char *p = au_buf_reserve(b, room);
                if (!p)
                        return errno == E2BIG ? -EFBIG : -ENOMEM;
                ssize_t k = read(fd, p, room);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return 0;
                au_buf_commit(b, (size_t) k);
        }
}

void au_buf_clear(au_buf *b) {
        b->len = 0;
        if (b->p)
                b->p[0] = '\0';
}

char *au_buf_steal(au_buf *b, size_t *ret_len) {
        char *p = b->p ? b->p : strdup("");
        if (ret_len)
                *ret_len = b->p ? b->len : 0;
        b->p = NULL;
        b->len = b->cap = 0;
        return p;
}

void au_buf_done(au_buf *b) {
        free(b->p);
        b->p = NULL;
        b->len = b->cap = 0;
}

int au_strv_consume(char ***v, size_t *n, char *s) {
        if (!s)
                return -ENOMEM;
        char **nv = reallocarray(*v, *n + 2, sizeof(char *));
        if (!nv) {
                free(s);
                return -ENOMEM;
        }
        nv[(*n)++] = s;
        nv[*n] = NULL;
        *v = nv;
        return 0;
}

int au_strv_push(char ***v, size_t *n, const char *s) {
        return au_strv_consume(v, n, strdup(s));
}

ssize_t au_strv_find(char *const *v, const char *s) {
        for (size_t i = 0; v && v[i]; i++)
                if (strcmp(v[i], s) == 0)
                        return (ssize_t) i;
        return -1;
}

char **au_strv_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
        return NULL;
}

void au_hex(const void *in, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";
        const unsigned char *p = in;

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 15];
        }
        out[2 * n] = '\0';
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int au_unhex(const char *s, size_t len, void *out, size_t n) {
        unsigned char *o = out;

        if (len != 2 * n)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                o[i] = (unsigned char) (hi << 4 | lo);
        }
        return 0;
}
