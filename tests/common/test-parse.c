/* SPDX-License-Identifier: MIT */
/* common/parse.c and the parts of common/json.c that stand alone: UTF-8, base64, bounded parse. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/parse.h"
#include "tests/tap.h"

#define SENTINEL UINT64_C(0xdeadbeef)

static void size_ok(const char *s, uint64_t want) {
        uint64_t v = SENTINEL;
        int r = au_parse_size(s, &v);

        ok(r == 0 && v == want, "size '%s' = %" PRIu64 " (got r=%d, %" PRIu64 ")", s, want, r, v);
}

static void size_bad(const char *s, int want_r) {
        uint64_t v = SENTINEL;
        int r = au_parse_size(s, &v);

        ok(r == want_r && v == SENTINEL, "size '%s' refused with %d, ret untouched (got %d)", s, want_r, r);
}

static void dur_ok(const char *s, uint64_t want) {
        uint64_t v = SENTINEL;
        int r = au_parse_duration_ms(s, &v);

        ok(r == 0 && v == want, "duration '%s' = %" PRIu64 " ms (got r=%d, %" PRIu64 ")", s, want, r, v);
}

static void dur_bad(const char *s, int want_r) {
        uint64_t v = SENTINEL;
        int r = au_parse_duration_ms(s, &v);

        ok(r == want_r && v == SENTINEL, "duration '%s' refused with %d, ret untouched (got %d)", s, want_r,
           r);
}

static void test_sizes(void) {
        size_ok("0", 0);
        size_ok("65536", 65536);
        size_ok("007", 7);
        size_ok("512K", 512 * 1024);
        size_ok("512k", 512 * 1024);
        size_ok("512KiB", 512 * 1024);
        size_ok("512M", UINT64_C(512) << 20);
        size_ok("512m", UINT64_C(512) << 20);
        size_ok("512MiB", UINT64_C(512) << 20);
        size_ok("1G", UINT64_C(1) << 30);
        size_ok("1g", UINT64_C(1) << 30);
        size_ok("1GiB", UINT64_C(1) << 30);
        size_ok("2T", UINT64_C(2) << 40);
        size_ok("2TiB", UINT64_C(2) << 40);
        size_ok("18446744073709551615", UINT64_MAX);
        size_ok("16777215T", UINT64_C(16777215) << 40);

        size_bad("", -EINVAL);
        size_bad("-1", -EINVAL);
        size_bad("+1", -EINVAL);
        size_bad(" 1", -EINVAL);
        size_bad("1 ", -EINVAL);
        size_bad("1 K", -EINVAL);
        size_bad("1.5G", -EINVAL);
        size_bad("K", -EINVAL);
        size_bad("1KB", -EINVAL);
        size_bad("1kB", -EINVAL);
        size_bad("1Ki", -EINVAL);
        size_bad("1KiBx", -EINVAL);
        size_bad("1X", -EINVAL);
        size_bad("1P", -EINVAL);
        size_bad("0x10", -EINVAL);
        size_bad("12abc", -EINVAL);
        size_bad("18446744073709551616", -ERANGE);
        size_bad("99999999999999999999999", -ERANGE);
        size_bad("16777216T", -ERANGE);
        size_bad("17179869184G", -ERANGE);
        size_bad("99999999999999999999999x", -EINVAL);

        uint64_t v = SENTINEL;
        ok(au_parse_size(NULL, &v) == -EINVAL && v == SENTINEL, "size NULL refused");
}

static void test_durations(void) {
        dur_ok("1500ms", 1500);
        dur_ok("0ms", 0);
        dur_ok("30s", 30000);
        dur_ok("30", 30000); /* bare integer: seconds */
        dur_ok("2m", 120000);
        dur_ok("1h", 3600000);
        dur_ok("18446744073709551615ms", UINT64_MAX);

        dur_bad("", -EINVAL);
        dur_bad("s", -EINVAL);
        dur_bad("-1s", -EINVAL);
        dur_bad("1.5s", -EINVAL);
        dur_bad("1 s", -EINVAL);
        dur_bad(" 1s", -EINVAL);
        dur_bad("1h30m", -EINVAL);
        dur_bad("1d", -EINVAL);
        dur_bad("1S", -EINVAL);
        dur_bad("1sec", -EINVAL);
        dur_bad("1msx", -EINVAL);
        dur_bad("18446744073709551616ms", -ERANGE);
        dur_bad("18446744073709552s", -ERANGE);
        dur_ok("5124095576030h", UINT64_C(5124095576030) * 3600000);
        dur_bad("5124095576031h", -ERANGE);
}

static void test_ints(void) {
        uint64_t v = SENTINEL;
        uint32_t w = 77;

        ok(au_parse_uint64("18446744073709551615", &v) == 0 && v == UINT64_MAX, "uint64 max");
        v = SENTINEL;
        ok(au_parse_uint64("18446744073709551616", &v) == -ERANGE && v == SENTINEL, "uint64 overflow");
        ok(au_parse_uint64("", &v) == -EINVAL && v == SENTINEL, "uint64 empty");
        ok(au_parse_uint64("-0", &v) == -EINVAL && v == SENTINEL, "uint64 negative");
        ok(au_parse_uint64("1K", &v) == -EINVAL && v == SENTINEL, "uint64 suffix");
        ok(au_parse_uint32("4294967295", &w) == 0 && w == UINT32_MAX, "uint32 max");
        w = 77;
        ok(au_parse_uint32("4294967296", &w) == -ERANGE && w == 77, "uint32 overflow");
        ok(au_parse_uint32("12 ", &w) == -EINVAL && w == 77, "uint32 trailing space");
}

static void sanitize_is(const char *in, size_t len, const char *want, size_t want_len, const char *what) {
        size_t n = 0;
        _cleanup_free_ char *s = au_utf8_sanitize(in, len, &n);

        ok(s && n == want_len && memcmp(s, want, n) == 0 && s[n] == '\0' && au_utf8_valid(s, n),
           "utf8 sanitize: %s", what);
}

#define FFFD "\xEF\xBF\xBD"

static void test_utf8(void) {
        static const char good[] = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80";
        ok(au_utf8_valid(good, sizeof(good) - 1), "valid UTF-8 accepted");
        ok(!au_utf8_valid(good, sizeof(good) - 2), "valid UTF-8 cut inside a sequence is not");
        ok(au_utf8_valid("a\0b", 3), "NUL is valid UTF-8");
        ok(!au_utf8_valid("\xC0\xAF", 2), "overlong 2-byte refused");
        ok(!au_utf8_valid("\xE0\x80\xAF", 3), "overlong 3-byte refused");
        ok(!au_utf8_valid("\xF0\x80\x80\xAF", 4), "overlong 4-byte refused");
        ok(!au_utf8_valid("\xED\xA0\x80", 3), "surrogate refused");
        ok(!au_utf8_valid("\xF4\x90\x80\x80", 4), "above U+10FFFF refused");
        ok(!au_utf8_valid("\xF5\x80\x80\x80", 4), "F5 lead refused");
        ok(!au_utf8_valid("\xE2\x82", 2), "truncated sequence refused");
        ok(au_utf8_valid("\xF4\x8F\xBF\xBF", 4), "U+10FFFF accepted");
        ok(au_utf8_valid("\xED\x9F\xBF", 3), "U+D7FF accepted");

        sanitize_is("abc", 3, "abc", 3, "ASCII unchanged");
        sanitize_is("a\0b", 3, "a\0b", 3, "NUL kept");
        sanitize_is("a\xFF"
                    "b",
                    3, "a" FFFD "b", 5, "0xFF replaced");
        sanitize_is("\xC0\xAF", 2, FFFD FFFD, 6, "overlong: one U+FFFD per byte");
        sanitize_is("\xED\xA0\x80", 3, FFFD FFFD FFFD, 9, "surrogate: each byte replaced");
        sanitize_is("\xE2\x82"
                    "x",
                    3, FFFD "x", 4, "truncated 3-byte: one U+FFFD (maximal subpart)");
        sanitize_is("\xF0\x9F\x98", 3, FFFD, 3, "truncated 4-byte at end: one U+FFFD");
        sanitize_is("\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD, 12, "> U+10FFFF replaced");
        sanitize_is("\xC3\xA9\x80", 3, "\xC3\xA9" FFFD, 5, "stray continuation replaced");
        sanitize_is("", 0, "", 0, "empty");
}

static void b64_is(const char *in, size_t len, const char *want) {
        _cleanup_free_ char *e = au_base64_encode(in, len);
        _cleanup_free_ char *d = NULL;
        size_t n = 0;

        ok(e && strcmp(e, want) == 0, "base64 encode -> '%s' (got '%s')", want, e ? e : "(null)");
        ok(au_base64_decode(want, strlen(want), &d, &n) == 0 && n == len && memcmp(d, in, len) == 0,
           "base64 decode '%s'", want);
}

static void b64_bad(const char *s) {
        char *d = (char *) "untouched";
        size_t n = 99;

        char shown[64];
        size_t k = 0;

        /* Keep the TAP line on one line. */
        for (const char *p = s; *p && k + 3 < sizeof(shown); p++) {
                if (*p == '\n') {
                        shown[k++] = '\\';
                        shown[k++] = 'n';
                } else
                        shown[k++] = *p;
        }
        shown[k] = '\0';
        ok(au_base64_decode(s, strlen(s), &d, &n) == -EINVAL && n == 99 && strcmp(d, "untouched") == 0,
           "base64 '%s' refused", shown);
}

static void test_base64(void) {
        b64_is("", 0, "");
        b64_is("f", 1, "Zg==");
        b64_is("fo", 2, "Zm8=");
        b64_is("foo", 3, "Zm9v");
        b64_is("foob", 4, "Zm9vYg==");
        b64_is("\0\xFF\xFE\x01", 4, "AP/+AQ==");
        b64_bad("Zg=");
        b64_bad("Zg");
        b64_bad("Zh=="); /* non-zero padding bits */
        b64_bad("Zm9="); /* non-zero padding bits */
        b64_bad("Z===");
        b64_bad("Zg==Zg==");
        b64_bad("Zm 9v");
        b64_bad("Zm9v\n");
        b64_bad("Zm\n9");
        b64_bad("Zm-_");
        b64_bad("=Zm9");
}

static int parse_str(const char *s, size_t max, yajl_val *ret, au_error *err) {
        return au_json_parse(s, strlen(s), max, ret, err);
}

static void test_json_parse(void) {
        au_error err = {};
        yajl_val v = NULL;
        uint64_t u = SENTINEL;
        uint32_t w = 5;
        int r;

        r = parse_str("{\"a\":18446744073709551615,\"b\":1.0,\"c\":-1,\"d\":1e3,\"e\":4294967296}", 1000, &v,
                      &err);
        ok(r == 0 && YAJL_IS_OBJECT(v), "parse object (%s)", err.msg);
        ok(au_json_get_uint64(au_json_get(v, "a"), "a", &u, &err) == 0 && u == UINT64_MAX,
           "uint64 max read exactly");
        au_error_clear(&err);
        u = SENTINEL;
        ok(au_json_get_uint64(au_json_get(v, "b"), "x.b", &u, &err) == -EINVAL && u == SENTINEL &&
                   strcmp(err.msg, "x.b: expected a non-negative integer") == 0 &&
                   strcmp(err.field, "x.b") == 0,
           "1.0 refused as integer: %s", err.msg);
        au_error_clear(&err);
        ok(au_json_get_uint64(au_json_get(v, "c"), "c", &u, &err) == -EINVAL, "-1 refused");
        au_error_clear(&err);
        ok(au_json_get_uint64(au_json_get(v, "d"), "d", &u, &err) == -EINVAL, "1e3 refused");
        au_error_clear(&err);
        ok(au_json_get_uint32(au_json_get(v, "e"), "e", &w, &err) == -EINVAL && w == 5 &&
                   strstr(err.msg, "out of range"),
           "uint32 overflow refused: %s", err.msg);
        au_error_clear(&err);
        ok(au_json_get_uint64(au_json_get(v, "nope"), "nope", &u, &err) == -EINVAL,
           "missing value is wrong type");
        au_error_clear(&err);
        static const char *const known[] = {"a", "b", "c", "d", NULL};
        ok(au_json_check_object(v, "", known, &err) == -EINVAL && strcmp(err.msg, "unknown field 'e'") == 0,
           "unknown field named: %s", err.msg);
        yajl_tree_free(v);
        v = NULL;

        au_error_clear(&err);
        r = parse_str("{\"a\":1,\"a\":2}", 100, &v, &err);
        ok(r == 0 && au_json_check_object(v, "p", known, &err) == -EINVAL &&
                   strcmp(err.msg, "duplicate field 'p.a'") == 0,
           "duplicate key refused: %s", err.msg);
        au_error_clear(&err);
        ok(au_json_check_object(v, "p", NULL, &err) == -EINVAL, "duplicate free-form key refused");
        yajl_tree_free(v);
        v = NULL;

        au_error_clear(&err);
        ok(parse_str("{\"a\":1}", 6, &v, &err) == -E2BIG && !v && strstr(err.msg, "over the limit"),
           "oversized document refused: %s", err.msg);
        au_error_clear(&err);
        ok(au_json_parse("{\"a\":1}\0", 8, 100, &v, &err) == -EINVAL && !v && strstr(err.msg, "NUL byte"),
           "embedded NUL refused: %s", err.msg);
        au_error_clear(&err);
        ok(parse_str("{\"a\":\"x\\u0000y\"}", 100, &v, &err) == -EINVAL && !v && strstr(err.msg, "\\u0000"),
           "\\u0000 escape refused: %s", err.msg);
        au_error_clear(&err);
        ok(parse_str("{\"a\":\"x\\\\u0000y\"}", 100, &v, &err) == 0 && v,
           "escaped backslash then u0000 is fine");
        yajl_tree_free(v);
        v = NULL;
        au_error_clear(&err);
        ok(parse_str("{/*c*/\"a\":1}", 100, &v, &err) == -EINVAL && !v && strstr(err.msg, "comments"),
           "comments refused: %s", err.msg);
        au_error_clear(&err);
        ok(parse_str("{\"a\":\"/*ok*/\"}", 100, &v, &err) == 0 && v, "slash inside string is fine");
        yajl_tree_free(v);
        v = NULL;
        au_error_clear(&err);
        ok(parse_str("{\"a\":", 100, &v, &err) == -EINVAL && !v &&
                   strcmp(err.msg, "invalid JSON: parse error: premature EOF") == 0,
           "truncated JSON: %s", err.msg);
        au_error_clear(&err);
        ok(parse_str("{\"a\":1} x", 100, &v, &err) == -EINVAL && !v && strstr(err.msg, "trailing garbage"),
           "trailing garbage: %s", err.msg);
        au_error_clear(&err);
        ok(parse_str("\"\xFF\"", 100, &v, &err) == -EINVAL && !v, "invalid UTF-8 refused: %s", err.msg);
        au_error_clear(&err);

        char deep[200];
        memset(deep, '[', 100);
        memset(deep + 100, ']', 100);
        ok(au_json_parse(deep, 200, 1000, &v, &err) == -EINVAL && !v && strstr(err.msg, "deeper"),
           "deep nesting refused: %s", err.msg);
        au_error_clear(&err);
        ok(au_json_parse(deep + 100 - AU_JSON_MAX_DEPTH, 2 * AU_JSON_MAX_DEPTH, 1000, &v, &err) == 0 && v,
           "nesting at the limit accepted");
        yajl_tree_free(v);
        v = NULL;
        /* Sequences yajl lets through: an overlong '/', a surrogate, a code point past U+10FFFF. */
        static const char *const bad_utf8[] = {"[\"\xc0\xaf\"]", "[\"\xed\xa0\x80\"]",
                                               "[\"\xf4\x90\x80\x80\"]"};
        for (size_t i = 0; i < ELEMENTSOF(bad_utf8); i++) {
                au_error_clear(&err);
                ok(parse_str(bad_utf8[i], 100, &v, &err) == -EINVAL && !v && strstr(err.msg, "UTF-8"),
                   "invalid UTF-8 %zu refused: %s", i, err.msg);
        }
        au_error_clear(&err);
        ok(parse_str("[\"caf\xc3\xa9 \xf0\x9f\x98\x80\"]", 100, &v, &err) == 0 && v,
           "valid multi-byte UTF-8 accepted");
        yajl_tree_free(v);
}

static void test_json_gen(void) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        _cleanup_free_ char *s = NULL;
        _cleanup_json_ yajl_val v = NULL;
        au_error err = {};
        size_t len = 0;
        int r = 0;

        r |= au_json_gen_map_open(g);
        r |= au_json_gen_kv_string(g, "s", "a\xFF");
        r |= au_json_gen_kv_uint64(g, "u", UINT64_MAX);
        r |= au_json_gen_kv_string(g, "n", NULL);
        r |= au_json_gen_string(g, "z");
        r |= au_json_gen_stringn(g, "a\0b", 3);
        r |= au_json_gen_map_close(g);
        ok(r == 0, "generator calls succeed");
        s = au_json_gen_finish(g, &len);
        ok(s && len == strlen(s) &&
                   strcmp(s, "{\"s\":\"a\xEF\xBF\xBD\",\"u\":18446744073709551615,\"n\":null,\"z\":"
                             "\"a\\u0000b\"}") == 0,
           "generated: %s", s ? s : "(null)");
        ok(au_json_gen_string(g, "more") < 0, "generating after the document is complete fails");
        ok(s && au_json_parse(s, len, 1000, &v, &err) == -EINVAL,
           "our \\u0000 output is refused by the tree parser");
}

static int kv_collect(void *userdata, const char *key, const char *value, au_error *err) {
        char *buf = userdata;
        if (strcmp(key, "bad") == 0)
                return au_error_set_field(err, key, "bad: not allowed");
        snprintf(buf + strlen(buf), 256 - strlen(buf), "[%s=%s]", key, value);
        return 0;
}

static int kv_file(const char *text, char *got, au_error *err) {
        char path[] = "/tmp/test-parse-kv.XXXXXX";
        int fd = mkstemp(path), r;
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

        if (!f)
                return -errno;
        fputs(text, f);
        fclose(f);
        got[0] = '\0';
        r = au_parse_kv_file(path, kv_collect, got, err);
        unlink(path);
        return r;
}

static void test_kv_file(void) {
        char got[256];
        au_error err = {0};

        ok(kv_file("# comment\n\n  a = 1 \nb=\"two words\"\r\nc =\n", got, &err) == 0 &&
                   strcmp(got, "[a=1][b=two words][c=]") == 0,
           "settings file: trimmed, quotes removed, comments and blank lines skipped (%s)", got);
        au_error_clear(&err);
        ok(kv_file("a = 1\nno equals sign\nb = 2\n", got, &err) == -EINVAL && strcmp(got, "[a=1]") == 0 &&
                   strstr(err.msg, ":2: expected 'key = value'"),
           "a line without '=' stops the file, naming the line: %s", err.msg);
        au_error_clear(&err);
        ok(kv_file("a = 1\nbad = x\n", got, &err) == -EINVAL && strstr(err.msg, ":2: bad: not allowed") &&
                   strcmp(err.field, "bad") == 0,
           "a refused value names the file, line and key: %s", err.msg);
        au_error_clear(&err);
        ok(au_parse_kv_file("/nonexistent/autoos.conf", kv_collect, got, &err) == -ENOENT &&
                   strstr(err.msg, "/nonexistent/autoos.conf"),
           "a missing file says which: %s", err.msg);
}

int main(void) {
        test_sizes();
        test_durations();
        test_ints();
        test_utf8();
        test_base64();
        test_json_parse();
        test_json_gen();
        test_kv_file();
        return done_testing();
}
