/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

/* Untranslated and lock-free (unlike strerror), so usable in a forked child. */
static const char *errdesc(int code) {
        const char *d = strerrordesc_np(code);
        return d ? d : "Unknown error";
}

static int verror(au_error *err, int code, const char *field, const char *fmt, va_list ap) {
        if (code < 0)
                code = -code;
        if (err && err->msg[0] == '\0') {
                int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
                if (code != 0 && n >= 0 && (size_t) n < sizeof(err->msg))
                        snprintf(err->msg + n, sizeof(err->msg) - (size_t) n, ": %s", errdesc(code));
                err->code = code;
                snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
        }
        return code != 0 ? -code : -EINVAL;
}

int au_error_set(au_error *err, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = verror(err, code, NULL, fmt, ap);
        va_end(ap);
        return r;
}

int au_error_set_field(au_error *err, const char *field, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        if (err && err->msg[0] == '\0') {
                vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
                err->code = EINVAL;
                snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
        }
        va_end(ap);
        return -EINVAL;
}
