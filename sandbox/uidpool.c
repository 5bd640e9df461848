/* SPDX-License-Identifier: MIT */
/*
 * The pool of unprivileged host uids, one per live run.
 *
 * Runs in one process are kept apart by a bitmap; runs in different
 * processes (autoosd and an autoosctl, two autoosctls) by open-file-
 * description locks on byte N of one lock file, which the kernel drops when
 * the holder dies, so a crashed process never leaks ids.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/macro.h"
#include "sandbox-internal.h"

struct sbx_uidpool {
        uid_t base;
        uint32_t count;
        uint32_t cursor;
        int lock_fd;
        uint64_t *used; /* bitmap of ids held by this process */
};

static int mkdir_p(const char *path, mode_t mode) {
        char buf[4096];
        if (snprintf(buf, sizeof(buf), "%s", path) >= (int) sizeof(buf))
                return -ENAMETOOLONG;
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                                return negative_errno();
                        *p = '/';
                }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

/* /etc/subuid and /etc/subgid are small; a file bigger than this is refused, not half read. */
#define SUBID_MAX_BYTES (4 * 1024 * 1024)

static void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

/*
 * Checks one subordinate-id file ("name:first:count" per line, as shadow's
 * newuidmap reads it) against the pool [base, base + count). A missing file
 * holds no range; a line that does not parse is skipped, as newuidmap does.
 */
static int check_subid_file(const char *path, uid_t base, uint32_t count, au_error *err) {
        _cleanup_(fclosep) FILE *f = NULL;
        char line[1024];
        unsigned lineno = 0;
        uint64_t lo = base, hi = (uint64_t) base + count; /* [lo, hi) */
        struct stat st;

        f = fopen(path, "re");
        if (!f) {
                if (errno == ENOENT)
                        return 0;
                return au_error_set(err, errno, "uid pool: read %s", path);
        }
        if (fstat(fileno(f), &st) == 0 && st.st_size > SUBID_MAX_BYTES)
                return au_error_set(err, EFBIG, "uid pool: %s is bigger than %d bytes", path,
                                    SUBID_MAX_BYTES);
        while (fgets(line, sizeof(line), f)) {
                char *first, *num, *end;
                uint64_t start, n;
                size_t len = strlen(line);

                lineno++;
                if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
                        /* No user name is that long: skip the rest of the line. */
                        int c;
                        while ((c = getc(f)) != EOF && c != '\n')
                                ;
                        continue;
                }
                line[strcspn(line, "\n")] = '\0';
                first = strchr(line, ':');
                if (!first || line[0] == '#')
                        continue;
                num = strchr(first + 1, ':');
                if (!num)
                        continue;
                errno = 0;
                start = strtoull(first + 1, &end, 10);
                if (errno || end != num || end == first + 1)
                        continue;
                n = strtoull(num + 1, &end, 10);
                if (errno || *end || end == num + 1 || n == 0)
                        continue;
                if (n > UINT64_MAX - start)
                        n = UINT64_MAX - start; /* [start, 2^64): no wrap-around */
                if (start < hi && lo < start + n) {
                        *first = '\0';
                        au_error_set(err, 0,
                                     "uid pool %" PRIu64 "-%" PRIu64 " overlaps %s line %u (%s: %" PRIu64
                                     "-%" PRIu64
                                     "): its runs would share host ids with that user's containers; "
                                     "choose another uid_base",
                                     lo, hi - 1, path, lineno, line, start, start + n - 1);
                        return -EEXIST;
                }
        }
        if (ferror(f))
                return au_error_set(err, EIO, "uid pool: read %s", path);
        return 0;
}

/*
 * Refuses a pool [base, base + count) that overlaps a range of subuid_path or
 * subgid_path (NULL: $AUTOOS_SUBUID_FILE or /etc/subuid, $AUTOOS_SUBGID_FILE
 * or /etc/subgid): a run's host uid, which is also its gid, must belong to
 * nobody else. -EEXIST with err naming the file, the line and both ranges.
 */
int sbx_uidpool_check_subids(uid_t base, uint32_t count, const char *subuid_path, const char *subgid_path,
                             au_error *err) {
        const char *env;
        int r;

        if (!subuid_path)
                subuid_path = (env = getenv("AUTOOS_SUBUID_FILE")) && *env ? env : "/etc/subuid";
        if (!subgid_path)
                subgid_path = (env = getenv("AUTOOS_SUBGID_FILE")) && *env ? env : "/etc/subgid";
        r = check_subid_file(subuid_path, base, count, err);
        if (r < 0)
                return r;
        return check_subid_file(subgid_path, base, count, err);
}

int sbx_uidpool_new(uid_t base, uint32_t count, const char *lock_dir, sbx_uidpool **ret, au_error *err) {
        char path[4096];
        int r;

        if (base == 0 || count == 0 || (uint64_t) base + count > UINT32_MAX - 1)
                return au_error_set(err, EINVAL, "uid pool %u+%u: must be non-root and below 2^32-1",
                                    (unsigned) base, (unsigned) count);
        r = sbx_uidpool_check_subids(base, count, NULL, NULL, err);
        if (r < 0)
                return r;
        r = mkdir_p(lock_dir, 0700);
        if (r < 0)
                return au_error_set(err, r, "create uid pool lock directory %s", lock_dir);
        snprintf(path, sizeof(path), "%s/pool-%u", lock_dir, (unsigned) base);

        sbx_uidpool *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->base = base;
        p->count = count;
        p->used = calloc((count + 63) / 64, sizeof(uint64_t));
        p->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (!p->used || p->lock_fd < 0) {
                r = p->used ? au_error_set(err, errno, "open uid pool lock %s", path) : -ENOMEM;
                sbx_uidpool_free(p);
                return r;
        }
        /* Start where another process is unlikely to be. */
        p->cursor = (uint32_t) getpid() * 2654435761u % count;
        *ret = p;
        return 0;
}

sbx_uidpool *sbx_uidpool_free(sbx_uidpool *p) {
        if (!p)
                return NULL;
        safe_close(p->lock_fd);
        free(p->used);
        free(p);
        return NULL;
}

static int lock_byte(int fd, uint32_t i, short type) {
        struct flock fl = {
                .l_type = type,
                .l_whence = SEEK_SET,
                .l_start = i,
                .l_len = 1,
        };
        return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? negative_errno() : 0;
}

int sbx_uidpool_acquire(sbx_uidpool *p, uid_t *ret_uid, au_error *err) {
        for (uint32_t n = 0; n < p->count; n++) {
                uint32_t i = (p->cursor + n) % p->count;
                if (p->used[i / 64] & (1ull << (i % 64)))
                        continue;
                int r = lock_byte(p->lock_fd, i, F_WRLCK);
                if (r == -EAGAIN || r == -EACCES)
                        continue; /* another process holds it */
                if (r < 0)
                        return au_error_set(err, r, "lock uid pool entry %u", (unsigned) (p->base + i));
                p->used[i / 64] |= 1ull << (i % 64);
                p->cursor = (i + 1) % p->count;
                *ret_uid = p->base + i;
                return 0;
        }
        return au_error_set(err, EAGAIN, "uid pool %u+%u exhausted: too many concurrent runs",
                            (unsigned) p->base, (unsigned) p->count);
}

void sbx_uidpool_release(sbx_uidpool *p, uid_t uid) {
        if (!p || uid < p->base || uid - p->base >= p->count)
                return;
        uint32_t i = uid - p->base;
        (void) lock_byte(p->lock_fd, i, F_UNLCK);
        p->used[i / 64] &= ~(1ull << (i % 64));
}
