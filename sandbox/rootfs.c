/* SPDX-License-Identifier: MIT */
/*
 * The sandbox's root file system.
 *
 * Once per context, on the host, a template directory is built
 * (<state>/rootfs.<pid>): empty mount points, the host's /bin, /lib*
 * symlinks, copies of a few /etc files (never shadow, gshadow, sudoers...),
 * a synthetic passwd/group/hosts/hostname, an empty resolv.conf, and /dev
 * placeholders. Copying /etc once replaces ~20 bind mounts per run. An
 * egress run's child binds the node's resolv.conf (egress.c) over the empty
 * one, read-only.
 *
 * In each child, inside its new mount namespace (private propagation first,
 * so nothing reaches the host): the template is bind-mounted onto itself,
 * /usr (and any non-merged /bin, /lib...) bound read-only, tmpfs /tmp and a
 * size-limited /work, fresh /proc with sensitive paths masked, /dev nodes
 * bound from the host plus a new devpts; then pivot_root, the old root
 * detached, and the root made read-only.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ftw.h>
#include <linux/mount.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"
#include "sandbox-internal.h"

/* /etc entries copied into the sandbox; anything else of the host's /etc stays out. */
static const char *const etc_entries[] = {
        "alternatives",   "bash.bashrc", "ca-certificates", "ca-certificates.conf",
        "debian_version", "gai.conf",    "host.conf",       "inputrc",
        "ld.so.cache",    "ld.so.conf",  "ld.so.conf.d",    "localtime",
        "magic",          "mime.types",  "nsswitch.conf",   "os-release",
        "perl",           "protocols",   "python3",         "python3.11",
        "services",       "ssl",         "timezone",        "xattr.conf",
};

/* Host paths below etc_entries never copied: private keys (ssl-cert group, 0710 on Debian). */
static const char *const etc_excluded[] = {"/etc/ssl/private"};

static bool etc_is_excluded(const char *src) {
        for (size_t i = 0; i < ELEMENTSOF(etc_excluded); i++)
                if (strcmp(src, etc_excluded[i]) == 0)
                        return true;
        return false;
}

/* Top-level host paths mirrored: a symlink is copied, a directory is bound read-only. */
static const char *const top_entries[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom"};

/*
 * Files hidden behind /dev/null, directories hidden behind an empty read-only
 * tmpfs, and directories made read-only, in /proc. runc's and Docker's lists
 * (maskedPaths, readonlyPaths) and then some: sysrq-trigger is masked, not
 * only read-only; kallsyms, kmsg, kpage*, config.gz, vmallocinfo, driver and
 * pressure are masked too; interrupts and softirqs count every host device's
 * interrupts per CPU (a timing side channel on keystrokes and traffic).
 * There is no /sys at all.
 */
static const char *const proc_masked_files[] = {
        "kcore",       "sysrq-trigger", "timer_list", "timer_stats", "keys",       "latency_stats",
        "sched_debug", "kallsyms",      "kmsg",       "kpagecount",  "kpageflags", "kpagecgroup",
        "config.gz",   "vmallocinfo",   "interrupts", "softirqs",
};
static const char *const proc_masked_dirs[] = {"acpi", "scsi", "asound", "driver", "pressure"};
static const char *const proc_readonly_dirs[] = {"sys", "bus", "fs", "irq"};

static int write_file(const char *path, const char *content, mode_t mode) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return negative_errno();
        size_t n = strlen(content);
        return write(fd, content, n) == (ssize_t) n ? 0 : -EIO;
}

/* Copies a regular file, symlink or directory tree (bounded) from the host. */
static int copy_entry(const char *src, const char *dst, int depth) {
        struct stat st;
        if (etc_is_excluded(src))
                return 0;
        if (lstat(src, &st) < 0)
                return negative_errno();
        if (S_ISLNK(st.st_mode)) {
                char target[4096];
                ssize_t n = readlink(src, target, sizeof(target) - 1);
                if (n < 0)
                        return negative_errno();
                target[n] = '\0';
                return symlink(target, dst) < 0 ? negative_errno() : 0;
        }
        if (S_ISREG(st.st_mode)) {
                if (st.st_size > 64 << 20)
                        return -EFBIG;
                _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (in < 0)
                        return negative_errno();
                _cleanup_close_ int out =
                        open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0755);
                if (out < 0)
                        return negative_errno();
                char buf[65536];
                ssize_t k;
                while ((k = read(in, buf, sizeof(buf))) > 0)
                        if (write(out, buf, (size_t) k) != k)
                                return -EIO;
                return k < 0 ? negative_errno() : 0;
        }
        if (S_ISDIR(st.st_mode) && depth < 8) {
                if (mkdir(dst, st.st_mode & 0755) < 0)
                        return negative_errno();
                DIR *d = opendir(src);
                if (!d)
                        return negative_errno();
                struct dirent *de;
                while ((de = readdir(d))) {
                        char s[4096], t[4096];
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        snprintf(s, sizeof(s), "%s/%s", src, de->d_name);
                        snprintf(t, sizeof(t), "%s/%s", dst, de->d_name);
                        (void) copy_entry(s, t, depth + 1); /* unreadable entries stay out */
                }
                closedir(d);
                return 0;
        }
        return 0; /* sockets, devices, fifos: never copied */
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        if (flag == FTW_DP)
                rmdir(path);
        else
                unlink(path);
        return 0;
}

int sbx_rootfs_template_remove(const char *dir) {
        if (!dir)
                return 0;
        return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 ? negative_errno() : 0;
}

static int template_build(const char *dir, au_error *err) {
        char p[4096], q[4096];
        int r;

        (void) sbx_rootfs_template_remove(dir);
        if (mkdir(dir, 0755) < 0)
                return au_error_set(err, errno, "create root template %s", dir);
        /* The template is bound into every sandbox; keep it root's and read-only to others. */
        (void) chmod(dir, 0755);

        static const char *const dirs[] = {"usr", "etc", "tmp", "proc", "dev", "dev/pts", "dev/shm", "work"};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                snprintf(p, sizeof(p), "%s/%s", dir, dirs[i]);
                if (mkdir(p, 0755) < 0)
                        return au_error_set(err, errno, "create %s", p);
        }

        /* Symlinks are copied; directories get a mount point (template_fill_binds() binds them). */
        for (size_t i = 0; i < ELEMENTSOF(top_entries); i++) {
                struct stat st;
                snprintf(q, sizeof(q), "/%s", top_entries[i]);
                snprintf(p, sizeof(p), "%s/%s", dir, top_entries[i]);
                if (lstat(q, &st) < 0)
                        continue;
                if (S_ISLNK(st.st_mode)) {
                        if ((r = copy_entry(q, p, 0)) < 0)
                                return au_error_set(err, r, "copy symlink %s", q);
                } else if (S_ISDIR(st.st_mode)) {
                        if (mkdir(p, 0755) < 0)
                                return au_error_set(err, errno, "create %s", p);
                }
        }

        for (size_t i = 0; i < ELEMENTSOF(etc_entries); i++) {
                snprintf(q, sizeof(q), "/etc/%s", etc_entries[i]);
                snprintf(p, sizeof(p), "%s/etc/%s", dir, etc_entries[i]);
                if (access(q, F_OK) < 0 && errno == ENOENT) {
                        struct stat st;
                        if (lstat(q, &st) < 0)
                                continue; /* absent on this host */
                }
                (void) copy_entry(q, p, 0);
        }

        static const struct {
                const char *name, *content;
        } synth[] = {
                {"etc/passwd", "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                               "sandbox:x:1000:1000:sandbox:/work:/bin/sh\n"
                               "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"},
                {"etc/group", "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n"},
                {"etc/hostname", "sandbox\n"},
                /* Empty: no resolver unless an egress run's is bound over it. */
                {"etc/resolv.conf", ""},
                {"etc/hosts", "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
        };
        for (size_t i = 0; i < ELEMENTSOF(synth); i++) {
                snprintf(p, sizeof(p), "%s/%s", dir, synth[i].name);
                if ((r = write_file(p, synth[i].content, 0644)) < 0)
                        return au_error_set(err, r, "write %s", p);
        }

        for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
                snprintf(p, sizeof(p), "%s/dev/%s", dir, dev_nodes[i]);
                if ((r = write_file(p, "", 0644)) < 0)
                        return au_error_set(err, r, "create %s", p);
        }
        static const struct {
                const char *name, *target;
        } links[] = {
                {"dev/fd", "/proc/self/fd"},       {"dev/stdin", "/proc/self/fd/0"},
                {"dev/stdout", "/proc/self/fd/1"}, {"dev/stderr", "/proc/self/fd/2"},
                {"dev/ptmx", "pts/ptmx"},
        };
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                snprintf(p, sizeof(p), "%s/%s", dir, links[i].name);
                if (symlink(links[i].target, p) < 0)
                        return au_error_set(err, errno, "create %s", p);
        }
        return 0;
}

/* What the template is made of, so that a change on the host makes a new one. */
static uint64_t template_key(void) {
        uint64_t h = 1469598103934665603ull; /* FNV-1a */
        char path[256];
        struct stat st;
#define MIX(v)                                                    \
        do {                                                      \
                uint64_t _v = (uint64_t) (v);                     \
                for (int _i = 0; _i < 8; _i++, _v >>= 8)          \
                        h = (h ^ (_v & 0xff)) * 1099511628211ull; \
        } while (0)
        MIX(SBX_ROOTFS_TEMPLATE_VERSION);
        for (size_t i = 0; i < ELEMENTSOF(etc_entries) + ELEMENTSOF(top_entries); i++) {
                if (i < ELEMENTSOF(etc_entries))
                        snprintf(path, sizeof(path), "/etc/%s", etc_entries[i]);
                else
                        snprintf(path, sizeof(path), "/%s", top_entries[i - ELEMENTSOF(etc_entries)]);
                if (lstat(path, &st) < 0) {
                        MIX(i);
                        continue;
                }
                MIX(st.st_ino);
                MIX(st.st_size);
                MIX(st.st_mode);
                MIX(st.st_mtim.tv_sec);
                MIX(st.st_mtim.tv_nsec);
        }
#undef MIX
        return h;
}

/* Which top-level host entries are directories to bind (the rest are symlinks in the template). */
static void template_fill_binds(sbx_rootfs_template *t) {
        struct stat st;
        char path[64];
        t->n_top_binds = 0;
        for (size_t i = 0; i < ELEMENTSOF(top_entries); i++) {
                snprintf(path, sizeof(path), "/%s", top_entries[i]);
                if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                        t->top_binds[t->n_top_binds++] = top_entries[i];
        }
}

/* Removes templates of older keys that no process holds any more. */
static void template_remove_unused(const char *state_dir, const char *keep) {
        DIR *d = opendir(state_dir);
        struct dirent *de;
        if (!d)
                return;
        while ((de = readdir(d))) {
                char path[512], lock[600];
                long pid;
                if (sscanf(de->d_name, "rootfs.%ld", &pid) == 1 && strchr(de->d_name, '-') == NULL) {
                        /* Built per process by older versions: gone with their process. */
                        if (pid > 0 && kill((pid_t) pid, 0) < 0 && errno == ESRCH) {
                                snprintf(path, sizeof(path), "%s/%s", state_dir, de->d_name);
                                sbx_rootfs_template_remove(path);
                        }
                        continue;
                }
                size_t nl = strlen(de->d_name);
                if (strncmp(de->d_name, "rootfs-", 7) != 0 || strcmp(de->d_name, keep) == 0 || nl < 8 ||
                    strstr(de->d_name, ".lock") || strstr(de->d_name, ".tmp"))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", state_dir, de->d_name);
                snprintf(lock, sizeof(lock), "%s.lock", path);
                _cleanup_close_ int fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
                if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0)
                        continue; /* a live supervisor still binds it into its sandboxes */
                sbx_rootfs_template_remove(path);
                unlink(lock);
        }
        closedir(d);
}

int sbx_rootfs_template_open(const char *state_dir, sbx_rootfs_template *ret, au_error *err) {
        char name[64], dir[224], tmp[256], lock[256];
        int r;

        if (strlen(state_dir) > 180)
                return au_error_set(err, ENAMETOOLONG, "state directory %s: path too long", state_dir);
        snprintf(name, sizeof(name), "rootfs-%016" PRIx64, template_key());
        snprintf(dir, sizeof(dir), "%s/%s", state_dir, name);
        snprintf(lock, sizeof(lock), "%s.lock", dir);

        /* Held shared for the context's life: cleaners of old templates take it exclusively. */
        _cleanup_close_ int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return au_error_set(err, errno, "open %s", lock);
        if (flock(fd, LOCK_SH) < 0)
                return au_error_set(err, errno, "lock %s", lock);

        if (access(dir, F_OK) < 0) {
                /* Built aside and renamed into place, so nobody ever sees half a template. */
                snprintf(tmp, sizeof(tmp), "%s.tmp.%d", dir, (int) getpid());
                r = template_build(tmp, err);
                if (r < 0) {
                        sbx_rootfs_template_remove(tmp);
                        return r;
                }
                if (rename(tmp, dir) < 0) {
                        r = errno;
                        sbx_rootfs_template_remove(tmp);
                        if (r != EEXIST && r != ENOTEMPTY)
                                return au_error_set(err, r, "install root template %s", dir);
                        /* Another process won the race: its template is as good as ours. */
                }
        }
        template_remove_unused(state_dir, name);
        snprintf(ret->dir, sizeof(ret->dir), "%s", dir);
        template_fill_binds(ret);
        ret->lock_fd = TAKE_FD(fd);
        return 0;
}

void sbx_rootfs_template_close(sbx_rootfs_template *t) {
        t->lock_fd = safe_close(t->lock_fd);
}

/* ---- in the child ------------------------------------------------------------ */

static int mount_error(const char *src, const char *dst, const char *type, au_error *err) {
        return au_error_set(err, errno, "mount %s on %s in sandbox", src ? src : (type ? type : "(remount)"),
                            dst);
}

static int do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                    const char *data, au_error *err) {
        if (mount(src, dst, type, flags, data) < 0)
                return mount_error(src, dst, type, err);
        return 0;
}

/* As do_mount, but a target this kernel lacks is skipped: 0 mounted, 1 absent (the mount's own
 * ENOENT says so, one path walk instead of an access() first). */
static int mount_if_present(const char *src, const char *dst, const char *type, unsigned long flags,
                            const char *data, au_error *err) {
        if (mount(src, dst, type, flags, data) == 0)
                return 0;
        return errno == ENOENT ? 1 : mount_error(src, dst, type, err);
}

/*
 * Adds flags to a mount (and, with AT_RECURSIVE, to everything below it),
 * never clearing a flag the host set: flags inherited from a more privileged
 * mount namespace are locked, and a remount that drops them fails.
 */
static int make_readonly(const char *path, bool recursive, au_error *err) {
        struct mount_attr attr = {
                .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        };
        if (syscall(SYS_mount_setattr, AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr, sizeof(attr)) ==
            0)
                return 0;
        if (errno != ENOSYS)
                return au_error_set(err, errno, "make %s read-only in sandbox", path);
        /* Before Linux 5.12: remount, keeping the flags already there. */
        struct statvfs sv;
        unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV;
        if (statvfs(path, &sv) == 0) {
                if (sv.f_flag & ST_NOEXEC)
                        flags |= MS_NOEXEC;
                if (sv.f_flag & ST_NOATIME)
                        flags |= MS_NOATIME;
                if (sv.f_flag & ST_RELATIME)
                        flags |= MS_RELATIME;
        }
        return do_mount(NULL, path, NULL, flags, NULL, err);
}

static int bind_readonly(const char *src, const char *dst, au_error *err) {
        int r = do_mount(src, dst, NULL, MS_BIND | MS_REC, NULL, err);
        return r < 0 ? r : make_readonly(dst, true, err);
}

static int mount_proc(const char *root, au_error *err) {
        char p[4096];
        int r;

        snprintf(p, sizeof(p), "%s/proc", root);
        r = do_mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(proc_masked_files); i++) {
                snprintf(p, sizeof(p), "%s/proc/%s", root, proc_masked_files[i]);
                if ((r = mount_if_present("/dev/null", p, NULL, MS_BIND, NULL, err)) < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(proc_masked_dirs); i++) {
                snprintf(p, sizeof(p), "%s/proc/%s", root, proc_masked_dirs[i]);
                r = mount_if_present("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                     "nr_inodes=1", err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(proc_readonly_dirs); i++) {
                snprintf(p, sizeof(p), "%s/proc/%s", root, proc_readonly_dirs[i]);
                if ((r = mount_if_present(p, p, NULL, MS_BIND | MS_REC, NULL, err)) < 0)
                        return r;
                if (r == 0 && (r = make_readonly(p, true, err)) < 0)
                        return r;
        }
        return 0;
}

static int mount_dev(const char *root, uint64_t shm_bytes, au_error *err) {
        char p[4096], opts[128];
        int r;

        for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
                char src[64];
                snprintf(src, sizeof(src), "/dev/%s", dev_nodes[i]);
                snprintf(p, sizeof(p), "%s/dev/%s", root, dev_nodes[i]);
                if ((r = do_mount(src, p, NULL, MS_BIND, NULL, err)) < 0)
                        return r;
        }
        snprintf(p, sizeof(p), "%s/dev/pts", root);
        r = do_mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620",
                     err);
        if (r < 0)
                return r;
        snprintf(p, sizeof(p), "%s/dev/shm", root);
        /* Read-only where the filesystem is (restricted: a size of 0 would mean no limit at all). */
        if (shm_bytes == 0)
                return do_mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                "mode=0755,size=4k,nr_inodes=1", err);
        /* Inodes bounded too, as on /tmp: empty files cost kernel memory. */
        snprintf(opts, sizeof(opts), "mode=1777,size=%" PRIu64 ",nr_inodes=16384", shm_bytes);
        return do_mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts, err);
}

/* Creates name (relative to /work) with its parent directories and writes the content. */
static int place_file(const sbx_file *f, au_error *err) {
        char path[4200];
        snprintf(path, sizeof(path), "/work/%s", f->name);
        for (char *s = path + strlen("/work/"); (s = strchr(s, '/')); s++) {
                *s = '\0';
                if (mkdir(path, 0755) < 0 && errno != EEXIST)
                        return au_error_set(err, errno, "create directory %s in sandbox", path);
                *s = '/';
        }
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return au_error_set(err, errno, "create %s in sandbox", path);
        for (size_t off = 0; off < f->size;) {
                ssize_t k = write(fd, f->data + off, f->size - off);
                if (k < 0)
                        return au_error_set(err, errno, "write %s in sandbox", path);
                off += (size_t) k;
        }
        if (fchmod(fd, f->mode & 0777) < 0)
                return au_error_set(err, errno, "chmod %s in sandbox", path);
        return 0;
}

int sbx_rootfs_setup(const sbx_child_args *a, au_error *err) {
        const char *root = a->template->dir;
        const sbx_spec *spec = a->spec;
        char p[4096], opts[160];
        int r;

        /* Before anything else: no mount event may propagate back to the host. */
        if ((r = do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL, err)) < 0)
                return r;

        if ((r = do_mount(root, root, NULL, MS_BIND, NULL, err)) < 0)
                return r;

        snprintf(p, sizeof(p), "%s/usr", root);
        if ((r = bind_readonly("/usr", p, err)) < 0)
                return r;
        for (size_t i = 0; i < a->template->n_top_binds; i++) {
                char src[64];
                snprintf(src, sizeof(src), "/%s", a->template->top_binds[i]);
                snprintf(p, sizeof(p), "%s/%s", root, a->template->top_binds[i]);
                if ((r = bind_readonly(src, p, err)) < 0)
                        return r;
        }

        uint64_t tmp_bytes = MIN(spec->limits.memory_bytes, (uint64_t) 64 << 20);
        snprintf(p, sizeof(p), "%s/tmp", root);
        if (a->work_writable) {
                snprintf(opts, sizeof(opts), "mode=1777,size=%" PRIu64 ",nr_inodes=16384", tmp_bytes);
                if ((r = do_mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, opts, err)) < 0)
                        return r;
                /* Inodes bounded too, so a run cannot fill kernel memory with empty files. */
                uint64_t inodes = MAX(spec->limits.work_bytes / 4096, (uint64_t) 1024);
                snprintf(opts, sizeof(opts),
                         "mode=0755,size=%" PRIu64 ",nr_inodes=%" PRIu64 ",uid=%d,gid=%d",
                         spec->limits.work_bytes, inodes, SBX_INSIDE_UID, SBX_INSIDE_GID);
                snprintf(p, sizeof(p), "%s/work", root);
                if ((r = do_mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, opts, err)) < 0)
                        return r;
        }

        if (a->resolv_conf) {
                snprintf(p, sizeof(p), "%s/etc/resolv.conf", root);
                if ((r = bind_readonly(a->resolv_conf, p, err)) < 0)
                        return r;
        }

        if ((r = mount_proc(root, err)) < 0)
                return r;
        if ((r = mount_dev(root, a->work_writable ? tmp_bytes : 0, err)) < 0)
                return r;

        if (chdir(root) < 0)
                return au_error_set(err, errno, "chdir %s", root);
        /* Stack the new root over the old one, then detach the old: no path leads back. */
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return au_error_set(err, errno, "pivot_root into the sandbox root");
        if (umount2(".", MNT_DETACH) < 0)
                return au_error_set(err, errno, "detach the host root");
        if (chdir("/") < 0)
                return au_error_set(err, errno, "chdir / in sandbox");

        for (size_t i = 0; i < spec->n_files; i++)
                if ((r = place_file(&spec->files[i], err)) < 0)
                        return r;

        return make_readonly("/", false, err);
}
