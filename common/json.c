/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/parse.h"

/* ---- parsing ------------------------------------------------------------ */

/*
 * What yajl_tree_parse() would let through but we do not want: comments (it
 * enables them), unbounded nesting (its tree builder recurses on free) and
 * "\u0000" (the tree stores C strings). Runs on raw bytes; where the text is
 * not JSON at all yajl reports it afterwards.
 */
static int prescan(const char *buf, size_t len, au_error *err) {
        bool in_string = false;
        unsigned depth = 0;

        for (size_t i = 0; i < len; i++) {
                char c = buf[i];

                if (in_string) {
                        if (c == '"')
                                in_string = false;
                        else if (c == '\\' && i + 1 < len) {
                                i++;
                                if (buf[i] == 'u' && i + 4 < len && memcmp(buf + i + 1, "0000", 4) == 0)
                                        return au_error_set_field(
                                                err, "", "JSON strings must not contain \\u0000 (NUL)");
                        }
                        continue;
                }

                switch (c) {
                case '"':
                        in_string = true;
                        break;
                case '[':
                case '{':
                        if (++depth > AU_JSON_MAX_DEPTH)
                                return au_error_set_field(err, "", "JSON nested deeper than %d levels",
                                                          AU_JSON_MAX_DEPTH);
                        break;
                case ']':
                case '}':
                        if (depth > 0)
                                depth--;
                        break;
                case '/':
                        return au_error_set_field(err, "",
                                                  "invalid JSON: comments are not allowed (offset %zu)", i);
                }
        }
        return 0;
}

/* True when every key and string in v is valid UTF-8. Recursion is bounded by prescan()'s depth. */
static bool tree_utf8_valid(yajl_val v) {
        if (YAJL_IS_STRING(v))
                return au_utf8_valid(v->u.string, strlen(v->u.string));
        if (YAJL_IS_OBJECT(v))
                for (size_t i = 0; i < v->u.object.len; i++) {
                        const char *k = v->u.object.keys[i];
                        if (!au_utf8_valid(k, strlen(k)) || !tree_utf8_valid(v->u.object.values[i]))
                                return false;
                }
        if (YAJL_IS_ARRAY(v))
                for (size_t i = 0; i < v->u.array.len; i++)
                        if (!tree_utf8_valid(v->u.array.values[i]))
                                return false;
        return true;
}

int au_json_parse(const char *buf, size_t len, size_t max_bytes, yajl_val *ret, au_error *err) {
        _cleanup_free_ char *copy = NULL;
        char errbuf[256] = "";
        const char *nul;
        yajl_val v;
        int r;

        if (!buf && len > 0)
                return au_error_set_field(err, "", "no JSON document");
        if (len > max_bytes) {
                au_error_set_field(err, "", "JSON document is %zu bytes, over the limit of %zu bytes", len,
                                   max_bytes);
                return -E2BIG;
        }
        nul = len > 0 ? memchr(buf, '\0', len) : NULL;
        if (nul)
                return au_error_set_field(err, "", "JSON document contains a NUL byte at offset %zu",
                                          (size_t) (nul - buf));
        r = prescan(buf, len, err);
        if (r < 0)
                return r;
        /* yajl checks only the shape of UTF-8 sequences: overlongs, surrogates and code points past U+10FFFF
         * pass it. */
        if (!au_utf8_valid(buf, len))
                return au_error_set_field(
                        err, "",
                        "invalid JSON: not valid UTF-8 (an overlong, a surrogate or past U+10FFFF)");

        copy = malloc(len + 1);
        if (!copy)
                return au_error_set(err, ENOMEM, "parse JSON document");
        if (len > 0)
                memcpy(copy, buf, len);
        copy[len] = '\0';

        v = yajl_tree_parse(copy, errbuf, sizeof(errbuf));
        if (!v) {
                /* yajl's message goes on with a picture of the context; keep the first line. */
                errbuf[strcspn(errbuf, "\n")] = '\0';
                if (errbuf[0] == '\0')
                        snprintf(errbuf, sizeof(errbuf), "parse error");
                /* yajl_tree_parse() only says "Out of memory!" when malloc failed. */
                if (strstr(errbuf, "memory"))
                        return au_error_set(err, ENOMEM, "parse JSON document");
                return au_error_set_field(err, "", "invalid JSON: %s", errbuf);
        }
        /* Valid bytes can still decode to invalid UTF-8: yajl turns an escaped lone low surrogate
         * ("\udc00") into one. */
        if (!tree_utf8_valid(v)) {
                yajl_tree_free(v);
                return au_error_set_field(
                        err, "", "invalid JSON: a \\u escape of a lone surrogate is not valid UTF-8");
        }
        *ret = v;
        return 0;
}

/* ---- reading -------------------------------------------------------------- */

void au_json_path(char *buf, size_t size, const char *parent, const char *key) {
        if (!parent || parent[0] == '\0')
                snprintf(buf, size, "%s", key);
        else
                snprintf(buf, size, "%s.%s", parent, key);
}

/* The name of path in messages: the document itself has none. */
static const char *path_name(const char *path) {
        return path && path[0] ? path : "JSON document";
}

yajl_val au_json_get(yajl_val obj, const char *key) {
        if (!YAJL_IS_OBJECT(obj))
                return NULL;
        for (size_t i = 0; i < obj->u.object.len; i++)
                if (strcmp(obj->u.object.keys[i], key) == 0)
                        return obj->u.object.values[i];
        return NULL;
}

static int cmp_keys(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

int au_json_check_object(yajl_val v, const char *path, const char *const *known, au_error *err) {
        char field[256];
        size_t n;

        if (!YAJL_IS_OBJECT(v))
                return au_error_set_field(err, path, "%s: expected an object", path_name(path));
        n = v->u.object.len;

        if (known) {
                /* Every key is one of a short list: a bitmap finds repeats in O(n). */
                uint64_t seen = 0;
                size_t n_known = 0;

                while (known[n_known])
                        n_known++;
                for (size_t i = 0; i < n; i++) {
                        const char *key = v->u.object.keys[i];
                        size_t k;

                        for (k = 0; k < n_known; k++)
                                if (strcmp(key, known[k]) == 0)
                                        break;
                        au_json_path(field, sizeof(field), path, key);
                        if (k == n_known)
                                return au_error_set_field(err, field, "unknown field '%s'", field);
                        if (k < 64) {
                                if (seen & (UINT64_C(1) << k))
                                        return au_error_set_field(err, field, "duplicate field '%s'", field);
                                seen |= UINT64_C(1) << k;
                        }
                }
                if (n_known <= 64)
                        return 0;
                /* A long list: find repeats by sorting, below. */
        }

        if (n < 2)
                return 0;
        /* Free-form keys (env, files): sort a copy, O(n log n) whatever n is. */
        _cleanup_free_ const char **keys = malloc(n * sizeof(*keys));
        if (!keys)
                return au_error_set(err, ENOMEM, "check %s", path_name(path));
        memcpy(keys, v->u.object.keys, n * sizeof(*keys));
        qsort(keys, n, sizeof(*keys), cmp_keys);
        for (size_t i = 1; i < n; i++)
                if (strcmp(keys[i - 1], keys[i]) == 0) {
                        au_json_path(field, sizeof(field), path, keys[i]);
                        return au_error_set_field(err, field, "duplicate field '%s'", field);
                }
        return 0;
}

int au_json_check_array(yajl_val v, const char *path, au_error *err) {
        if (!YAJL_IS_ARRAY(v))
                return au_error_set_field(err, path, "%s: expected an array", path_name(path));
        return 0;
}

int au_json_get_string(yajl_val v, const char *path, const char **ret, au_error *err) {
        if (!YAJL_IS_STRING(v))
                return au_error_set_field(err, path, "%s: expected a string", path_name(path));
        *ret = v->u.string;
        return 0;
}

int au_json_get_uint64(yajl_val v, const char *path, uint64_t *ret, au_error *err) {
        const char *text;
        uint64_t u;
        int r;

        /* yajl keeps the number's text; reading it ourselves is exact past INT64_MAX. */
        if (!YAJL_IS_NUMBER(v) || !v->u.number.r)
                return au_error_set_field(err, path, "%s: expected a non-negative integer", path_name(path));
        text = v->u.number.r;
        if (text[0] == '-' || strpbrk(text, ".eE"))
                return au_error_set_field(err, path, "%s: expected a non-negative integer", path_name(path));
        r = au_parse_uint64(text, &u);
        if (r == -ERANGE)
                return au_error_set_field(err, path, "%s: %s is out of range (at most %" PRIu64 ")",
                                          path_name(path), text, UINT64_MAX);
        if (r < 0)
                return au_error_set_field(err, path, "%s: expected a non-negative integer", path_name(path));
        *ret = u;
        return 0;
}

int au_json_get_uint32(yajl_val v, const char *path, uint32_t *ret, au_error *err) {
        uint64_t u;
        int r;

        r = au_json_get_uint64(v, path, &u, err);
        if (r < 0)
                return r;
        if (u > UINT32_MAX)
                return au_error_set_field(err, path, "%s: %" PRIu64 " is out of range (at most %" PRIu32 ")",
                                          path_name(path), u, UINT32_MAX);
        *ret = (uint32_t) u;
        return 0;
}

int au_json_get_bool(yajl_val v, const char *path, bool *ret, au_error *err) {
        if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
                return au_error_set_field(err, path, "%s: expected true or false", path_name(path));
        *ret = YAJL_IS_TRUE(v);
        return 0;
}

/* ---- generating ----------------------------------------------------------- */

static int gen_status(yajl_gen_status s) {
        switch (s) {
        case yajl_gen_status_ok:
                return 0;
        case yajl_gen_invalid_string:
        case yajl_gen_invalid_number:
                return -EINVAL;
        default:
                /* Keys that are not strings, a closed document, a bad nesting: our bug. */
                return -EINVAL;
        }
}

yajl_gen au_json_gen_new(bool pretty) {
        yajl_gen g = yajl_gen_alloc(NULL);

        if (!g)
                return NULL;
        /* Strings are repaired before they reach yajl; let it double-check. */
        yajl_gen_config(g, yajl_gen_validate_utf8, 1);
        if (pretty) {
                yajl_gen_config(g, yajl_gen_beautify, 1);
                yajl_gen_config(g, yajl_gen_indent_string, "  ");
        }
        return g;
}

int au_json_gen_stringn(yajl_gen g, const char *s, size_t len) {
        _cleanup_free_ char *fixed = NULL;

        if (!s)
                return gen_status(yajl_gen_null(g));
        if (!au_utf8_valid(s, len)) {
                fixed = au_utf8_sanitize(s, len, &len);
                if (!fixed)
                        return -ENOMEM;
                s = fixed;
        }
        return gen_status(yajl_gen_string(g, (const unsigned char *) s, len));
}

int au_json_gen_string(yajl_gen g, const char *s) {
        return au_json_gen_stringn(g, s, s ? strlen(s) : 0);
}

int au_json_gen_uint64(yajl_gen g, uint64_t v) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%" PRIu64, v);

        return gen_status(yajl_gen_number(g, buf, (size_t) n));
}

int au_json_gen_int64(yajl_gen g, int64_t v) {
        return gen_status(yajl_gen_integer(g, (long long) v));
}

int au_json_gen_bool(yajl_gen g, bool v) {
        return gen_status(yajl_gen_bool(g, v));
}

int au_json_gen_null(yajl_gen g) {
        return gen_status(yajl_gen_null(g));
}

int au_json_gen_map_open(yajl_gen g) {
        return gen_status(yajl_gen_map_open(g));
}

int au_json_gen_map_close(yajl_gen g) {
        return gen_status(yajl_gen_map_close(g));
}

int au_json_gen_array_open(yajl_gen g) {
        return gen_status(yajl_gen_array_open(g));
}

int au_json_gen_array_close(yajl_gen g) {
        return gen_status(yajl_gen_array_close(g));
}

int au_json_gen_kv_string(yajl_gen g, const char *key, const char *value) {
        AU_JSON_GEN_TRY(au_json_gen_string(g, key));
        return au_json_gen_string(g, value);
}

int au_json_gen_kv_uint64(yajl_gen g, const char *key, uint64_t value) {
        AU_JSON_GEN_TRY(au_json_gen_string(g, key));
        return au_json_gen_uint64(g, value);
}

int au_json_gen_kv_bool(yajl_gen g, const char *key, bool value) {
        AU_JSON_GEN_TRY(au_json_gen_string(g, key));
        return au_json_gen_bool(g, value);
}

char *au_json_gen_finish(yajl_gen g, size_t *ret_len) {
        const unsigned char *buf;
        size_t len;
        char *s;

        if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
                return NULL;
        s = malloc(len + 1);
        if (!s)
                return NULL;
        memcpy(s, buf, len);
        s[len] = '\0';
        if (ret_len)
                *ret_len = len;
        return s;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

/*
 * Length of the valid sequence at p (1..4), or 0 when invalid; *ret_bad gets
 * how many bytes form the maximal ill-formed subpart (at least 1).
 */
static size_t utf8_seq(const unsigned char *p, size_t avail, size_t *ret_bad) {
        unsigned char c = p[0];
        unsigned char lo = 0x80, hi = 0xBF;
        size_t need;

        if (c < 0x80)
                return 1;
        if (c >= 0xC2 && c <= 0xDF)
                need = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
                need = 3;
                if (c == 0xE0)
                        lo = 0xA0; /* overlong */
                else if (c == 0xED)
                        hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
                need = 4;
                if (c == 0xF0)
                        lo = 0x90; /* overlong */
                else if (c == 0xF4)
                        hi = 0x8F; /* > U+10FFFF */
        } else {
                *ret_bad = 1; /* stray continuation byte, C0/C1, F5..FF */
                return 0;
        }

        for (size_t i = 1; i < need; i++) {
                unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;

                if (i >= avail || p[i] < min || p[i] > max) {
                        *ret_bad = i;
                        return 0;
                }
        }
        return need;
}

bool au_utf8_valid(const char *buf, size_t len) {
        const unsigned char *p = (const unsigned char *) buf;
        size_t i = 0, bad;

        while (i < len) {
                if (p[i] < 0x80) {
                        i++;
                        continue;
                }
                size_t n = utf8_seq(p + i, len - i, &bad);
                if (n == 0)
                        return false;
                i += n;
        }
        return true;
}

char *au_utf8_sanitize(const char *buf, size_t len, size_t *ret_len) {
        const unsigned char *p = (const unsigned char *) buf;
        size_t i = 0, o = 0, bad;
        char *out;

        /* Each bad byte becomes at most 3 bytes. */
        if (len > (SIZE_MAX - 1) / 3)
                return NULL;
        out = malloc(len * 3 + 1);
        if (!out)
                return NULL;

        while (i < len) {
                size_t n = utf8_seq(p + i, len - i, &bad);

                if (n > 0) {
                        memcpy(out + o, p + i, n);
                        o += n;
                        i += n;
                } else {
                        memcpy(out + o, "\xEF\xBF\xBD", 3);
                        o += 3;
                        i += bad;
                }
        }
        out[o] = '\0';
        if (ret_len)
                *ret_len = o;
        return out;
}

/* ---- base64 --------------------------------------------------------------- */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *au_base64_encode(const void *data, size_t len) {
        const unsigned char *p = data;
        size_t o = 0;
        char *out;

        if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
                return NULL;
        out = malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16;
                size_t left = len - i;

                if (left > 1)
                        v |= (uint32_t) p[i + 1] << 8;
                if (left > 2)
                        v |= p[i + 2];
                out[o++] = b64_alphabet[(v >> 18) & 63];
                out[o++] = b64_alphabet[(v >> 12) & 63];
                out[o++] = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
                out[o++] = left > 2 ? b64_alphabet[v & 63] : '=';
        }
        out[o] = '\0';
        return out;
}

static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int au_base64_decode(const char *s, size_t len, char **ret, size_t *ret_len) {
        _cleanup_free_ char *out = NULL;
        size_t o = 0;

        if (len % 4 != 0)
                return -EINVAL;
        out = malloc(len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < len; i += 4) {
                bool last = i + 4 == len;
                int pad = 0, d[4];

                for (int k = 0; k < 4; k++) {
                        if (s[i + k] == '=' && last && k >= 2) {
                                d[k] = 0;
                                pad++;
                                continue;
                        }
                        d[k] = b64_value(s[i + k]);
                        if (d[k] < 0 || pad > 0)
                                return -EINVAL; /* a bad character, or data after '=' */
                }
                uint32_t v = (uint32_t) d[0] << 18 | (uint32_t) d[1] << 12 | (uint32_t) d[2] << 6 |
                             (uint32_t) d[3];
                /* Canonical form only: the bits padding drops must be zero. */
                if ((pad == 1 && (v & 0xFF)) || (pad == 2 && (v & 0xFFFF)))
                        return -EINVAL;
                out[o++] = (char) (v >> 16);
                if (pad < 2)
                        out[o++] = (char) (v >> 8);
                if (pad < 1)
                        out[o++] = (char) v;
        }
        out[o] = '\0';
        *ret = TAKE_PTR(out);
        if (ret_len)
                *ret_len = o;
        return 0;
}

int au_json_gen_tree(yajl_gen g, yajl_val v) {
        if (YAJL_IS_STRING(v))
                return au_json_gen_string(g, v->u.string);
        if (YAJL_IS_NUMBER(v))
                return yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r)) == yajl_gen_status_ok
                               ? 0
                               : -EINVAL;
        if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))
                return au_json_gen_bool(g, YAJL_IS_TRUE(v));
        if (YAJL_IS_OBJECT(v)) {
                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                for (size_t i = 0; i < v->u.object.len; i++) {
                        AU_JSON_GEN_TRY(au_json_gen_string(g, v->u.object.keys[i]));
                        AU_JSON_GEN_TRY(au_json_gen_tree(g, v->u.object.values[i]));
                }
                return au_json_gen_map_close(g);
        }
        if (YAJL_IS_ARRAY(v)) {
                AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                for (size_t i = 0; i < v->u.array.len; i++)
                        AU_JSON_GEN_TRY(au_json_gen_tree(g, v->u.array.values[i]));
                return au_json_gen_array_close(g);
        }
        return au_json_gen_null(g);
}
