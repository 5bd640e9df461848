/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include "macro.h"

/*
 * The first failure on a path, in words a user can act on, as crun's
 * libcrun_error_t: "mount /proc in sandbox: Operation not permitted".
 * Fixed-size so it can be filled in a forked child without allocating.
 * `field` names the offending input field ("limits.memory_bytes") where
 * the error is about user input; it is "" otherwise.
 */
typedef struct au_error {
        int code; /* positive errno, or 0 */
        char field[128];
        char msg[512];
} au_error;

/*
 * Records an error unless one is already recorded (the first failure wins)
 * and returns -|code| (or -EINVAL when code is 0), so that callers can write
 * `return au_error_set(err, r, "...")`. err may be NULL. When code is
 * non-zero, ": strerror(code)" is appended.
 */
int au_error_set(au_error *err, int code, const char *fmt, ...) _printf_(3, 4);

/* As au_error_set, for bad input: records the field and never appends strerror. */
int au_error_set_field(au_error *err, const char *field, const char *fmt, ...) _printf_(3, 4);

/* True when an error has been recorded. */
static inline int au_error_isset(const au_error *err) {
        return err && err->msg[0] != '\0';
}

static inline void au_error_clear(au_error *err) {
        if (err) {
                err->code = 0;
                err->field[0] = '\0';
                err->msg[0] = '\0';
        }
}
