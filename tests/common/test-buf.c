/* SPDX-License-Identifier: MIT */
/* common/buf and common/clock: the bounded buffer, the string vector, hex and the clock. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "tests/tap.h"

int main(void) {
        _cleanup_buf_ au_buf b = AU_BUF_INIT(0);
        ok(au_buf_puts(&b, "") == 0 && b.p && b.len == 0 && b.p[0] == '\0',
           "empty append gives an empty string");
        ok(au_buf_puts(&b, "abc") == 0 && strcmp(b.p, "abc") == 0 && b.len == 3, "puts");
        ok(au_buf_printf(&b, "-%d-%s", 42, "x") == 0 && strcmp(b.p, "abc-42-x") == 0, "printf appends");
        for (int i = 0; i < 10000; i++)
                if (au_buf_append(&b, "0123456789", 10) < 0)
                        break;
        ok(b.len == 8 + 100000 && b.p[b.len] == '\0', "grows to 100008 bytes, NUL-terminated (len %zu)",
           b.len);
        au_buf_clear(&b);
        ok(b.len == 0 && b.p[0] == '\0' && b.cap > 0, "clear keeps the memory");

        au_buf s = AU_BUF_INIT(8);
        ok(au_buf_append(&s, "12345678", 8) == 0, "a bounded buffer takes up to its bound");
        ok(au_buf_append(&s, "9", 1) == -E2BIG && s.len == 8 && strcmp(s.p, "12345678") == 0,
           "one byte past the bound is -E2BIG and leaves the content");
        ok(s.cap <= 9, "a bounded buffer never allocates past bound + NUL (cap %zu)", s.cap);
        ok(au_buf_printf(&s, "%s", "x") == -E2BIG, "printf past the bound is -E2BIG");
        size_t n = 0;
        char *p = au_buf_steal(&s, &n);
        ok(p && n == 8 && strcmp(p, "12345678") == 0 && s.p == NULL && s.len == 0,
           "steal hands over the bytes");
        free(p);
        p = au_buf_steal(&s, &n);
        ok(p && n == 0 && p[0] == '\0', "steal of nothing is an empty string");
        free(p);

        au_buf r = AU_BUF_INIT(16);
        char *w = au_buf_reserve(&r, 10);
        ok(w != NULL, "reserve within the bound");
        memcpy(w, "hello", 5);
        au_buf_commit(&r, 5);
        ok(r.len == 5 && strcmp(r.p, "hello") == 0, "commit counts what was written");
        errno = 0;
        ok(au_buf_reserve(&r, 12) == NULL && errno == E2BIG, "reserve past the bound fails with E2BIG");
        au_buf_done(&r);

        _cleanup_strv_ char **v = NULL;
        size_t nv = 0;
        ok(au_strv_push(&v, &nv, "a") == 0 && au_strv_push(&v, &nv, "b") == 0 && nv == 2, "strv push");
        ok(v[2] == NULL, "strv stays NULL-terminated");
        ok(au_strv_consume(&v, &nv, strdup("c")) == 0 && nv == 3 && strcmp(v[2], "c") == 0, "strv consume");
        ok(au_strv_consume(&v, &nv, NULL) == -ENOMEM && nv == 3,
           "consuming NULL (a failed strdup) is -ENOMEM");
        ok(au_strv_find(v, "b") == 1 && au_strv_find(v, "z") == -1 && au_strv_find(NULL, "a") == -1,
           "strv find");

        unsigned char bytes[4] = {0x00, 0x9f, 0xa0, 0xff}, back[4];
        char hex[9];
        au_hex(bytes, 4, hex);
        ok(strcmp(hex, "009fa0ff") == 0, "hex is lowercase (%s)", hex);
        ok(au_unhex("009FA0ff", 8, back, 4) == 0 && memcmp(back, bytes, 4) == 0, "unhex takes either case");
        ok(au_unhex("009fa0f", 7, back, 4) == -EINVAL, "unhex refuses an odd length");
        ok(au_unhex("009fa0fg", 8, back, 4) == -EINVAL, "unhex refuses a non-digit");
        ok(au_unhex("009fa0ff00", 10, back, 4) == -EINVAL, "unhex refuses too many digits");

        /* au_buf_read_fd: a file of exactly max bytes is taken, one more is -EFBIG. */
        FILE *tf = tmpfile();
        static char big[200000];
        memset(big, 'x', sizeof(big));
        ok(tf && fwrite(big, 1, sizeof(big), tf) == sizeof(big) && fflush(tf) == 0, "a 200000-byte file");
        int fd = tf ? fileno(tf) : -1;
        au_buf rd = AU_BUF_INIT(0);
        lseek(fd, 0, SEEK_SET);
        ok(au_buf_read_fd(&rd, fd, sizeof(big)) == 0 && rd.len == sizeof(big) && rd.p[rd.len] == '\0',
           "read_fd takes a file of exactly max bytes (%zu)", rd.len);
        au_buf_done(&rd);
        lseek(fd, 0, SEEK_SET);
        ok(au_buf_read_fd(&rd, fd, sizeof(big) - 1) == -EFBIG, "one byte more than max is -EFBIG");
        ok(rd.len == sizeof(big), "and the buffer holds max + 1 (%zu)", rd.len);
        au_buf_done(&rd);
        au_buf small = AU_BUF_INIT(100);
        lseek(fd, 0, SEEK_SET);
        ok(au_buf_read_fd(&small, fd, 1000) == -EFBIG, "a buffer bound below max + 1 ends in -EFBIG too");
        au_buf_done(&small);
        ok(au_buf_read_fd(&rd, -1, 10) == -EBADF, "a bad fd is its -errno");
        au_buf_done(&rd);
        if (tf)
                fclose(tf);

        uint64_t a = au_now_us(), m = au_now_ms(), wl = au_wall_us();
        ok(a > 0 && m > 0, "monotonic clock reads");
        ok(wl > 1700000000ull * 1000000u, "wall clock is past 2023 (%llu)", (unsigned long long) wl);
        uint64_t a2 = au_now_us();
        ok(a2 >= a, "monotonic clock does not go back");
        return done_testing();
}
