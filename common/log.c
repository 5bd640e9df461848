/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_gen.h>

#include "clock.h"
#include "log.h"

static int max_level = AU_LOG_INFO;
static char *static_kv[16];
static size_t n_static_kv;

void au_log_set_max_level(int level) {
        max_level = level;
}

int au_log_get_max_level(void) {
        return max_level;
}

void au_log_set_static(const char *key, const char *value) {
        for (size_t i = 0; i < n_static_kv; i += 2)
                if (strcmp(static_kv[i], key) == 0) {
                        free(static_kv[i + 1]);
                        static_kv[i + 1] = strdup(value ? value : "");
                        return;
                }
        if (n_static_kv + 2 > ELEMENTSOF(static_kv))
                return;
        static_kv[n_static_kv++] = strdup(key);
        static_kv[n_static_kv++] = strdup(value ? value : "");
}

static const char *level_name(int level) {
        switch (level) {
        case AU_LOG_ERR:
                return "error";
        case AU_LOG_WARNING:
                return "warning";
        case AU_LOG_NOTICE:
                return "notice";
        case AU_LOG_INFO:
                return "info";
        default:
                return "debug";
        }
}

static void gen_str(yajl_gen g, const char *s) {
        yajl_gen_string(g, (const unsigned char *) s, strlen(s));
}

static void vlog(int level, const char *const *kv, const char *suffix, const char *fmt, va_list ap) {
        char msg[2048];
        char ts[64];
        const unsigned char *buf;
        size_t len;

        if (level > max_level)
                return;

        int n = vsnprintf(msg, sizeof(msg), fmt, ap);
        if (suffix && n >= 0 && (size_t) n < sizeof(msg))
                snprintf(msg + n, sizeof(msg) - (size_t) n, ": %s", suffix);

        au_iso8601_now(ts, sizeof(ts));

        yajl_gen g = yajl_gen_alloc(NULL);
        if (!g)
                return;
        /* Messages may quote untrusted bytes; never emit invalid JSON. */
        yajl_gen_config(g, yajl_gen_validate_utf8, 0);
        yajl_gen_map_open(g);
        gen_str(g, "ts");
        gen_str(g, ts);
        gen_str(g, "level");
        gen_str(g, level_name(level));
        gen_str(g, "msg");
        gen_str(g, msg);
        for (size_t i = 0; i < n_static_kv; i += 2) {
                gen_str(g, static_kv[i]);
                gen_str(g, static_kv[i + 1]);
        }
        for (size_t i = 0; kv && kv[i]; i += 2) {
                if (!kv[i + 1])
                        continue;
                gen_str(g, kv[i]);
                gen_str(g, kv[i + 1]);
        }
        yajl_gen_map_close(g);
        if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
                /* One line at a time even from several threads (the coordinator's). */
                flockfile(stderr);
                fwrite(buf, 1, len, stderr);
                fputc('\n', stderr);
                fflush(stderr);
                funlockfile(stderr);
        }
        yajl_gen_free(g);
}

void au_log_kv(int level, const char *const *kv, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vlog(level, kv, NULL, fmt, ap);
        va_end(ap);
}

int au_log_errno(int level, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vlog(level, NULL, strerror(r < 0 ? -r : r), fmt, ap);
        va_end(ap);
        return r;
}
