/* SPDX-License-Identifier: MIT */
#pragma once

#include "macro.h"

/*
 * One JSON object per line on stderr (journald keeps it):
 *   {"ts":"2026-11-21T10:00:00.123Z","level":"info","msg":"...","node":"a",...}
 * Context fields are passed as NULL-terminated key/value string pairs through
 * au_log_kv(); au_log_set_static() adds a pair (e.g. node) to every line.
 * Library code does not log; daemons and the CLI do.
 */
enum { AU_LOG_ERR = 3, AU_LOG_WARNING = 4, AU_LOG_NOTICE = 5, AU_LOG_INFO = 6, AU_LOG_DEBUG = 7 };

void au_log_set_max_level(int level);
int au_log_get_max_level(void);
/* Adds key=value to every line; both strings are copied. */
void au_log_set_static(const char *key, const char *value);

/* kv is a NULL-terminated array of alternating keys and values (NULL values are skipped). */
void au_log_kv(int level, const char *const *kv, const char *fmt, ...) _printf_(3, 4);

/* Logs with an ": strerror(-r)" suffix and returns r (negative errno). */
int au_log_errno(int level, int r, const char *fmt, ...) _printf_(3, 4);

#define log_error(...) au_log_kv(AU_LOG_ERR, NULL, __VA_ARGS__)
#define log_warning(...) au_log_kv(AU_LOG_WARNING, NULL, __VA_ARGS__)
#define log_info(...) au_log_kv(AU_LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) au_log_kv(AU_LOG_DEBUG, NULL, __VA_ARGS__)
#define log_error_errno(r, ...) au_log_errno(AU_LOG_ERR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) au_log_errno(AU_LOG_WARNING, (r), __VA_ARGS__)
