/* SPDX-License-Identifier: MIT */
/*
 * Small helpers over yajl: a bounded parse into a yajl tree, typed field
 * readers whose errors name the field path ("limits.memory_bytes: expected a
 * non-negative integer"), generator helpers that never emit invalid JSON,
 * UTF-8 repair and strict base64.
 *
 * Field paths are dotted ("limits.memory_bytes", "files.in.txt.mode"); the
 * empty path is the document itself. Errors from the readers go through
 * au_error_set_field(): err->field is the path and err->msg reads
 * "<path>: <what is wrong>".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/error.h"

/* Deeper documents are refused before yajl sees them (its tree recurses). */
#define AU_JSON_MAX_DEPTH 64

DEFINE_TRIVIAL_CLEANUP_FUNC(yajl_val, yajl_tree_free);
#define _cleanup_json_ _cleanup_(yajl_tree_freep)
DEFINE_TRIVIAL_CLEANUP_FUNC(yajl_gen, yajl_gen_free);
#define _cleanup_json_gen_ _cleanup_(yajl_gen_freep)

/*
 * Parses one JSON document of len bytes (buf need not be NUL-terminated)
 * into a yajl tree the caller frees with yajl_tree_free(). Refused, with
 * err saying why: documents over max_bytes, raw NUL bytes, comments, nesting
 * deeper than AU_JSON_MAX_DEPTH, "\u0000" escapes (a yajl tree cannot hold a
 * NUL inside a string, so it would silently cut it), invalid UTF-8, trailing
 * data and anything else yajl rejects ("invalid JSON: parse error: ...").
 * Returns 0, -EINVAL, -E2BIG (over max_bytes) or -ENOMEM.
 */
int au_json_parse(const char *buf, size_t len, size_t max_bytes, yajl_val *ret, au_error *err);

/* Writes "parent.key" (or "key" when parent is empty) into buf, truncating. */
void au_json_path(char *buf, size_t size, const char *parent, const char *key);

/* The value of key in obj, or NULL when absent or obj is not an object. */
yajl_val au_json_get(yajl_val obj, const char *key);

/*
 * Checks that v (at path) is an object whose keys are all in known (a
 * NULL-terminated list), each at most once: "unknown field 'limits.foo'",
 * "duplicate field 'id'". known NULL allows any key but still refuses
 * duplicates. Returns 0 or -EINVAL (or -ENOMEM).
 */
int au_json_check_object(yajl_val v, const char *path, const char *const *known, au_error *err);

/* "<path>: expected an array" unless v is one. Returns 0 or -EINVAL. */
int au_json_check_array(yajl_val v, const char *path, au_error *err);

/*
 * Typed readers. v is the value at path (NULL counts as the wrong type).
 * Integers must be written as integers (no fraction, no exponent) and are
 * read exactly from their text, so the whole uint64_t range works and
 * overflow is refused. On failure *ret is untouched.
 */
int au_json_get_string(yajl_val v, const char *path, const char **ret, au_error *err);
int au_json_get_uint64(yajl_val v, const char *path, uint64_t *ret, au_error *err);
int au_json_get_uint32(yajl_val v, const char *path, uint32_t *ret, au_error *err);
int au_json_get_bool(yajl_val v, const char *path, bool *ret, au_error *err);

/*
 * Generator helpers. au_json_gen_new() returns a generator (pretty: indented
 * output) or NULL on ENOMEM. Strings are repaired with au_utf8_sanitize()
 * when they are not valid UTF-8; NUL bytes are escaped as \u0000. A NULL
 * string is written as null. Each returns 0 or a negative errno (-ENOMEM,
 * -EINVAL for a generator in the wrong state).
 */
yajl_gen au_json_gen_new(bool pretty);
int au_json_gen_string(yajl_gen g, const char *s);
int au_json_gen_stringn(yajl_gen g, const char *s, size_t len);
int au_json_gen_uint64(yajl_gen g, uint64_t v);
int au_json_gen_int64(yajl_gen g, int64_t v);
int au_json_gen_bool(yajl_gen g, bool v);
int au_json_gen_null(yajl_gen g);
int au_json_gen_map_open(yajl_gen g);
int au_json_gen_map_close(yajl_gen g);
int au_json_gen_array_open(yajl_gen g);
int au_json_gen_array_close(yajl_gen g);
/* Writes a parsed yajl tree back out (numbers keep their exact text). */
int au_json_gen_tree(yajl_gen g, yajl_val v);

/* Key and value in one call. */
int au_json_gen_kv_string(yajl_gen g, const char *key, const char *value);
int au_json_gen_kv_uint64(yajl_gen g, const char *key, uint64_t value);
int au_json_gen_kv_bool(yajl_gen g, const char *key, bool value);

/* Returns from the enclosing function when a generator call fails. */
#define AU_JSON_GEN_TRY(expr)        \
        do {                         \
                int _gr_ = (expr);   \
                if (_gr_ < 0)        \
                        return _gr_; \
        } while (0)

/*
 * Copies the generated document into a new NUL-terminated string the
 * caller frees; *ret_len (may be NULL) gets its length. NULL on ENOMEM.
 */
char *au_json_gen_finish(yajl_gen g, size_t *ret_len);

/* True when buf[0..len) is valid UTF-8 (no overlongs, surrogates, > U+10FFFF). */
bool au_utf8_valid(const char *buf, size_t len);

/*
 * Returns a NUL-terminated copy of buf[0..len) in which each invalid UTF-8
 * sequence (each maximal ill-formed subpart, as Unicode recommends) is
 * replaced with U+FFFD. NUL bytes are kept; *ret_len (may be NULL) gets the
 * length. The caller frees. NULL on ENOMEM.
 */
char *au_utf8_sanitize(const char *buf, size_t len, size_t *ret_len);

/*
 * Standard base64 (RFC 4648, "+/", '=' padding). The encoder returns a
 * NUL-terminated string the caller frees, NULL on ENOMEM. The decoder is
 * strict: no whitespace, length a multiple of 4, padding only at the end,
 * unused bits zero; it returns 0, -EINVAL or -ENOMEM and on success a
 * NUL-terminated buffer of *ret_len bytes.
 */
char *au_base64_encode(const void *data, size_t len);
int au_base64_decode(const char *s, size_t len, char **ret, size_t *ret_len);
