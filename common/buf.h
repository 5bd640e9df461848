/* SPDX-License-Identifier: MIT */
/*
 * common/buf: the growable byte buffer and string vector the tree kept
 * rewriting (issue 11), after systemd's strv and curl's dynbuf.
 *
 * An au_buf grows by doubling up to its bound (max; 0 is "no bound" other
 * than SIZE_MAX): an append that would pass it fails with -E2BIG and leaves
 * the buffer as it was, so a reader of untrusted input caps what it keeps in
 * one place. The bytes are always NUL-terminated, so text can be used as a
 * string; len does not count the NUL.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/macro.h"

typedef struct au_buf {
        char *p;    /* NULL until the first append */
        size_t len; /* bytes held, without the NUL */
        size_t cap; /* bytes allocated */
        size_t max; /* most bytes it may hold; 0: no bound */
} au_buf;

#define AU_BUF_INIT(bound) ((au_buf){.max = (bound)})

/* Appends n bytes. Returns 0, -E2BIG past the bound, or -ENOMEM; on error the buffer is unchanged. */
int au_buf_append(au_buf *b, const void *data, size_t n);

/* Appends a NUL-terminated string. */
int au_buf_puts(au_buf *b, const char *s);

/* Appends printf-formatted text. */
_printf_(2, 3) int au_buf_printf(au_buf *b, const char *fmt, ...);
int au_buf_vprintf(au_buf *b, const char *fmt, va_list ap);

/* Makes room for n more bytes; returns a pointer to them (commit with au_buf_commit), or NULL with errno
 * set. */
char *au_buf_reserve(au_buf *b, size_t n);

/* Counts n bytes written into the space au_buf_reserve returned. */
void au_buf_commit(au_buf *b, size_t n);

/*
 * Appends everything fd holds up to end of file, refusing more than max bytes in
 * the buffer: 0, -EFBIG when there were more (the buffer then holds max + 1),
 * -ENOMEM, or the read's -errno. EINTR is retried. The buffer's own bound, if
 * any, must leave room for max + 1.
 */
int au_buf_read_fd(au_buf *b, int fd, size_t max);

/* Drops the content, keeps the memory. */
void au_buf_clear(au_buf *b);

/* Hands the bytes to the caller (an empty string when nothing was appended, NULL on ENOMEM); the buffer is
 * emptied. */
char *au_buf_steal(au_buf *b, size_t *ret_len);

/* Frees the bytes. */
void au_buf_done(au_buf *b);
static inline void au_buf_donep(au_buf *b) {
        au_buf_done(b);
}
#define _cleanup_buf_ _cleanup_(au_buf_donep)

/*
 * A string vector: NULL-terminated char **, as execve and the rest of libc
 * take it. au_strv_push copies s; au_strv_consume takes ownership of s (and
 * frees it on failure). n is the count, kept by the caller.
 */
int au_strv_push(char ***v, size_t *n, const char *s);
int au_strv_consume(char ***v, size_t *n, char *s);

/* The index of s in v, or -1. */
ssize_t au_strv_find(char *const *v, const char *s);

/* Frees every string and the vector; returns NULL. */
char **au_strv_free(char **v);
static inline void au_strv_freep(char ***v) {
        au_strv_free(*v);
}
#define _cleanup_strv_ _cleanup_(au_strv_freep)

/* Lowercase hex of n bytes into out (2n + 1 bytes with the NUL). */
void au_hex(const void *in, size_t n, char *out);

/* Exactly 2n hex digits (either case) into n bytes. Returns 0, or -EINVAL for anything else. */
int au_unhex(const char *s, size_t len, void *out, size_t n);
