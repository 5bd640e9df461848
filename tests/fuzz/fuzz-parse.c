/* SPDX-License-Identifier: MIT */
/*
 * common/parse.h and common/json.h on arbitrary bytes: the number, SIZE and
 * DURATION parsers (checked against a reference written from parse.h's
 * comments), au_json_parse() and the generators (a parsed document written
 * back out must parse again to the same text), au_utf8_sanitize() and strict
 * base64 (decoding then encoding gives back the input).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "common/json.h"
#include "common/macro.h"
#include "common/parse.h"
#include "tests/fuzz/fuzz.h"

#define MAX_JSON_BYTES (1u << 20)

/* ---- numbers: a reference from parse.h's comments ----------------------------- */

/* Leading digits of s: -EINVAL without any, -ERANGE past UINT64_MAX (after the syntax is known good). */
static int ref_digits(const char *s, uint64_t *ret, const char **ret_end, bool *ret_overflow) {
        uint64_t v = 0;
        bool overflow = false;
        const char *p = s;

        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                unsigned __int128 w = (unsigned __int128) v * 10 + (unsigned) (*p - '0');
                if (w > UINT64_MAX)
                        overflow = true;
                v = (uint64_t) w;
        }
        *ret = v;
        *ret_end = p;
        *ret_overflow = overflow;
        return 0;
}

static int ref_scaled(uint64_t v, bool overflow, uint64_t mult, uint64_t *ret) {
        unsigned __int128 w = (unsigned __int128) v * mult;

        if (overflow || w > UINT64_MAX)
                return -ERANGE;
        *ret = (uint64_t) w;
        return 0;
}

static int ref_uint64(const char *s, uint64_t *ret) {
        const char *end;
        bool overflow;
        uint64_t v;

        if (ref_digits(s, &v, &end, &overflow) < 0 || *end)
                return -EINVAL;
        return ref_scaled(v, overflow, 1, ret);
}

static int ref_size(const char *s, uint64_t *ret) {
        const char *end;
        bool overflow;
        uint64_t v, mult = 1;

        if (ref_digits(s, &v, &end, &overflow) < 0)
                return -EINVAL;
        if (*end) {
                const char *units = "KkMmGgTt", *u = strchr(units, *end);

                if (!u)
                        return -EINVAL;
                mult = UINT64_C(1) << (10 * (1 + (u - units) / 2));
                end++;
                if (*end && strcmp(end, "iB") != 0)
                        return -EINVAL;
        }
        return ref_scaled(v, overflow, mult, ret);
}

static int ref_duration_ms(const char *s, uint64_t *ret) {
        const char *end;
        bool overflow;
        uint64_t v, mult;

        if (ref_digits(s, &v, &end, &overflow) < 0)
                return -EINVAL;
        if (!*end || strcmp(end, "s") == 0)
                mult = 1000;
        else if (strcmp(end, "ms") == 0)
                mult = 1;
        else if (strcmp(end, "m") == 0)
                mult = 60000;
        else if (strcmp(end, "h") == 0)
                mult = 3600000;
        else
                return -EINVAL;
        return ref_scaled(v, overflow, mult, ret);
}

/* The parser and the reference agree on the error, or on the value; *ret untouched on failure. */
static void check_number(int (*parse)(const char *, uint64_t *), int (*ref)(const char *, uint64_t *),
                         const char *s) {
        uint64_t got = 0x5a5a5a5a5a5a5a5a, want = 0;
        int r = parse(s, &got), w = ref(s, &want);

        FUZZ_ASSERT(r == w);
        if (r == 0)
                FUZZ_ASSERT(got == want);
        else
                FUZZ_ASSERT(got == 0x5a5a5a5a5a5a5a5a);
}

static void fuzz_numbers(const char *s) {
        uint32_t u32 = 7;
        uint64_t u64 = 0;
        int r;

        check_number(au_parse_uint64, ref_uint64, s);
        check_number(au_parse_size, ref_size, s);
        check_number(au_parse_duration_ms, ref_duration_ms, s);

        r = au_parse_uint32(s, &u32);
        if (au_parse_uint64(s, &u64) < 0)
                FUZZ_ASSERT(r < 0 && u32 == 7);
        else if (u64 > UINT32_MAX)
                FUZZ_ASSERT(r == -ERANGE && u32 == 7);
        else
                FUZZ_ASSERT(r == 0 && u32 == u64);
}

/* ---- JSON ------------------------------------------------------------------------ */

/* au_json_parse() refuses invalid UTF-8: every key and string of what it accepts is valid. */
static void check_utf8_tree(yajl_val v) {
        if (YAJL_IS_STRING(v))
                FUZZ_ASSERT(au_utf8_valid(v->u.string, strlen(v->u.string)));
        else if (YAJL_IS_OBJECT(v))
                for (size_t i = 0; i < v->u.object.len; i++) {
                        FUZZ_ASSERT(au_utf8_valid(v->u.object.keys[i], strlen(v->u.object.keys[i])));
                        check_utf8_tree(v->u.object.values[i]);
                }
        else if (YAJL_IS_ARRAY(v))
                for (size_t i = 0; i < v->u.array.len; i++)
                        check_utf8_tree(v->u.array.values[i]);
}

static char *gen_tree(yajl_val v, bool pretty, size_t *ret_len) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(pretty);

        if (!g || au_json_gen_tree(g, v) < 0)
                return NULL;
        return au_json_gen_finish(g, ret_len);
}

static void fuzz_json(const char *buf, size_t len) {
        _cleanup_json_ yajl_val v = NULL, again = NULL;
        _cleanup_free_ char *out = NULL, *out2 = NULL, *pretty = NULL;
        au_error err = {};
        size_t n = 0, n2 = 0, np = 0;
        int r;

        r = au_json_parse(buf, len, MAX_JSON_BYTES, &v, &err);
        if (r < 0) {
                FUZZ_ASSERT(r == -EINVAL || r == -E2BIG);
                FUZZ_ASSERT(err.msg[0] != '\0');
                return;
        }
        FUZZ_ASSERT(!err.msg[0]);
        check_utf8_tree(v);

        /* Written back out, it parses again and is written the same way. */
        out = gen_tree(v, false, &n);
        FUZZ_ASSERT(out);
        FUZZ_ASSERT(strlen(out) == n);
        FUZZ_ASSERT(au_json_parse(out, n, MAX_JSON_BYTES * 2, &again, &err) == 0);
        out2 = gen_tree(again, false, &n2);
        FUZZ_ASSERT(out2 && n2 == n && memcmp(out, out2, n) == 0);

        pretty = gen_tree(v, true, &np);
        FUZZ_ASSERT(pretty);
        yajl_tree_free(again);
        again = NULL;
        FUZZ_ASSERT(au_json_parse(pretty, np, MAX_JSON_BYTES * 4, &again, &err) == 0);

        /* The typed readers never crash on whatever the document holds. */
        if (YAJL_IS_OBJECT(v)) {
                au_error e = {};
                (void) au_json_check_object(v, "", NULL, &e);
                for (size_t i = 0; i < v->u.object.len; i++) {
                        const char *s;
                        uint64_t u;
                        uint32_t u32;
                        bool b;
                        char path[64];

                        au_json_path(path, sizeof(path), "doc", v->u.object.keys[i]);
                        FUZZ_ASSERT(au_json_get(v, v->u.object.keys[i]) != NULL);
                        au_error_clear(&e);
                        (void) au_json_get_string(v->u.object.values[i], path, &s, &e);
                        au_error_clear(&e);
                        (void) au_json_get_uint64(v->u.object.values[i], path, &u, &e);
                        au_error_clear(&e);
                        (void) au_json_get_uint32(v->u.object.values[i], path, &u32, &e);
                        au_error_clear(&e);
                        (void) au_json_get_bool(v->u.object.values[i], path, &b, &e);
                        au_error_clear(&e);
                        (void) au_json_check_array(v->u.object.values[i], path, &e);
                }
        }
}

/* Any bytes as a JSON string: valid JSON whose value is the repaired bytes (when NUL-free). */
static void fuzz_gen_string(const char *buf, size_t len) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        _cleanup_json_ yajl_val v = NULL;
        _cleanup_free_ char *out = NULL, *fixed = NULL;
        size_t n = 0, nf = 0;
        au_error err = {};

        FUZZ_ASSERT(g);
        FUZZ_ASSERT(au_json_gen_array_open(g) == 0);
        FUZZ_ASSERT(au_json_gen_stringn(g, buf, len) == 0);
        FUZZ_ASSERT(au_json_gen_array_close(g) == 0);
        out = au_json_gen_finish(g, &n);
        FUZZ_ASSERT(out);
        if (memchr(buf, '\0', len))
                return; /* written as \u0000, which au_json_parse() refuses by design */
        FUZZ_ASSERT(au_json_parse(out, n, SIZE_MAX, &v, &err) == 0);
        FUZZ_ASSERT(YAJL_IS_ARRAY(v) && v->u.array.len == 1 && YAJL_IS_STRING(v->u.array.values[0]));
        fixed = au_utf8_sanitize(buf, len, &nf);
        FUZZ_ASSERT(fixed);
        FUZZ_ASSERT(strlen(v->u.array.values[0]->u.string) == nf);
        FUZZ_ASSERT(memcmp(v->u.array.values[0]->u.string, fixed, nf) == 0);
}

/* ---- UTF-8 and base64 ------------------------------------------------------------ */

static void fuzz_utf8(const char *buf, size_t len) {
        _cleanup_free_ char *fixed = NULL, *twice = NULL;
        size_t n = 0, n2 = 0;
        bool valid = au_utf8_valid(buf, len);

        fixed = au_utf8_sanitize(buf, len, &n);
        FUZZ_ASSERT(fixed);
        FUZZ_ASSERT(fixed[n] == '\0');
        FUZZ_ASSERT(au_utf8_valid(fixed, n));
        if (valid)
                FUZZ_ASSERT(n == len && memcmp(fixed, buf, len) == 0);
        else
                FUZZ_ASSERT(n != len || memcmp(fixed, buf, len) != 0);
        twice = au_utf8_sanitize(fixed, n, &n2);
        FUZZ_ASSERT(twice && n2 == n && memcmp(twice, fixed, n) == 0);
}

static void fuzz_base64(const char *buf, size_t len) {
        _cleanup_free_ char *dec = NULL, *enc = NULL, *back = NULL, *dec2 = NULL;
        size_t n = 0, n2 = 0;
        int r;

        /* Strict decoding: what decodes is the canonical encoding of what it gives. */
        r = au_base64_decode(buf, len, &dec, &n);
        FUZZ_ASSERT(r == 0 || r == -EINVAL);
        if (r == 0) {
                FUZZ_ASSERT(dec[n] == '\0');
                back = au_base64_encode(dec, n);
                FUZZ_ASSERT(back && strlen(back) == len && memcmp(back, buf, len) == 0);
        }

        /* Any bytes survive encoding and decoding. */
        enc = au_base64_encode(buf, len);
        FUZZ_ASSERT(enc);
        FUZZ_ASSERT(au_base64_decode(enc, strlen(enc), &dec2, &n2) == 0);
        FUZZ_ASSERT(n2 == len && memcmp(dec2, buf, len) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *buf = (const char *) data;
        _cleanup_free_ char *s = strndup(buf, size); /* the parsers take C strings: up to the first NUL */

        FUZZ_ASSERT(s);
        fuzz_numbers(s);
        fuzz_json(buf, size);
        fuzz_gen_string(buf, size);
        fuzz_utf8(buf, size);
        fuzz_base64(buf, size);
        return 0;
}
