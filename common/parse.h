/* SPDX-License-Identifier: MIT */
/*
 * Strict parsers for numbers, sizes and durations from the command line and
 * configuration. All take a NUL-terminated string, accept no sign, no
 * whitespace and no trailing text, and return 0, -EINVAL (not the expected
 * form) or -ERANGE (does not fit); *ret is untouched on failure.
 */
#pragma once

#include <stdint.h>

#include "common/error.h"

/* Plain decimal digits ("0", "4096", "007"); no "0x", no '+'. */
int au_parse_uint64(const char *s, uint64_t *ret);
int au_parse_uint32(const char *s, uint32_t *ret);

/*
 * A byte count: decimal digits and an optional binary-multiple suffix,
 * K/k (2^10), M/m (2^20), G/g (2^30) or T/t (2^40), each optionally
 * followed by "iB" ("512KiB", "1GiB"). "65536", "512K", "512M", "1G",
 * "2T". No fractions ("1.5G"), no decimal units ("1KB", "1kB").
 */
int au_parse_size(const char *s, uint64_t *ret);

/*
 * A duration in milliseconds: decimal digits and a unit, "ms", "s", "m"
 * (minutes) or "h" ("1500ms", "30s", "2m", "1h"). A bare integer means
 * SECONDS, as in timeout(1): "30" is 30000. No fractions, no compound
 * forms ("1h30m").
 */
int au_parse_duration_ms(const char *s, uint64_t *ret);

/*
 * Called for each "key = value" line of a settings file (key and value
 * trimmed, surrounding double quotes removed from the value). Returns 0 or
 * a negative errno with err saying what is wrong with the value.
 */
typedef int (*au_kv_fn)(void *userdata, const char *key, const char *value, au_error *err);

/*
 * Reads a settings file of "key = value" lines (blank lines and lines
 * starting with '#' skipped) and calls set for each, in order. The first
 * problem stops it: err reads "PATH:LINE: ..." (field: the key). Returns 0,
 * or a negative errno (from fopen, or set's, or -EINVAL for a line without
 * '=').
 */
int au_parse_kv_file(const char *path, au_kv_fn set, void *userdata, au_error *err);
