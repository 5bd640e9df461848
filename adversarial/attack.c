/* SPDX-License-Identifier: MIT */
/*
 * The sandbox attacks of `autoosctl adversarial`, one multi-call program run
 * inside the sandbox (adversarial/README.md). `attack NAME [ARG]...`
 * attempts one attack and ends with one verdict line on stdout:
 *
 *   CONTAINED <what was tried, and how each try was stopped>   exit 0
 *   ESCAPED <what got through>; also <the rest>                exit 1
 *   SKIPPED <why the attack does not apply here>               exit 77
 *   ERROR <why the attack could not be carried out>            exit 2
 *
 * Before it an attack may print "READY" (the runner waits for it before it
 * starts a second run or looks at the host) and "INFO ..." lines. Attacks
 * the sandbox is expected to end (oom, pids_limit, cpu_limit, timeout,
 * output_limit, SIGSYS) never get to print a verdict: the runner judges
 * them by the run's result, and they print ESCAPED only if they survive
 * what should have stopped them.
 *
 * An attack judges the effect: a try that fails, for whatever reason, did
 * not get through ("must_fail"), except for calls the seccomp filter must
 * refuse ("must_refuse"), where any errno but EPERM means the call reached
 * the kernel. The runner also checks that the sandbox reported each refused
 * call in denied_syscalls, and looks at the host where the attack cannot.
 *
 * Harmless to the host even if every protection failed: loops and
 * allocations are bounded (at most twice the limit under test), host files
 * are only opened read-only or, where the attack is to open them for
 * writing (core_pattern...), closed without a byte written; nothing is
 * written outside /work, /tmp and /dev/shm; kernel interfaces get invalid
 * arguments where a valid call could change the host (kexec, modules);
 * socket families that might autoload a module get an invalid socket type,
 * which the kernel rejects before any module is requested; every process
 * started sleeps for a bounded time and then exits.
 *
 * Free of project headers, built without sanitizers: it runs anywhere.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef KEY_SPEC_PROCESS_KEYRING
#define KEY_SPEC_PROCESS_KEYRING -2
#endif
#define KEYCTL_JOIN_SESSION_KEYRING_ 1

/* Not a socket type (SOCK_MAX is 11): EINVAL before any module is requested. */
#define BAD_SOCK_TYPE 15
/* Every process an attack starts ends by itself after this long at most. */
#define MAX_SLEEP_S 60

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* ---- verdict ---------------------------------------------------------------- */

static char escapes[1536], notes[1536];
static bool any_escape;

static void vappend(char *buf, size_t size, const char *fmt, va_list ap) {
        size_t n = strlen(buf);
        if (n > 0 && n + 2 < size) {
                buf[n++] = ',';
                buf[n++] = ' ';
                buf[n] = '\0';
        }
        if (n + 1 < size)
                vsnprintf(buf + n, size - n, fmt, ap);
}

/* What was tried and how it was stopped. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vappend(notes, sizeof(notes), fmt, ap);
        va_end(ap);
}

/* What got through: the attack ends ESCAPED. */
static void escape(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void escape(const char *fmt, ...) {
        va_list ap;
        any_escape = true;
        va_start(ap, fmt);
        vappend(escapes, sizeof(escapes), fmt, ap);
        va_end(ap);
}

static void oneline(char *s) {
        for (; *s; s++)
                if (*s == '\n' || *s == '\r')
                        *s = ' ';
}

static int finish(void) {
        oneline(escapes);
        oneline(notes);
        if (any_escape) {
                printf("ESCAPED %s%s%s\n", escapes, notes[0] ? "; also " : "", notes);
                return 1;
        }
        printf("CONTAINED %s\n", notes[0] ? notes : "nothing got through");
        return 0;
}

static int skipped(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int skipped(const char *fmt, ...) {
        va_list ap;
        fputs("SKIPPED ", stdout);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        return 77;
}

static int error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int error(const char *fmt, ...) {
        va_list ap;
        fputs("ERROR ", stdout);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        return 2;
}

static const char *ename(int e) {
        static char buf[32];
        const char *s = strerrorname_np(e);
        if (s)
                return s;
        snprintf(buf, sizeof(buf), "errno %d", e);
        return buf;
}

/* An operation that must not work; failing in any way contains it. */
static void must_fail(const char *what, long r, int e) {
        if (r >= 0)
                escape("%s worked", what);
        else
                note("%s %s", what, ename(e));
}

/*
 * A call the seccomp filter must refuse with EPERM (clone3: ENOSYS, the
 * supervisor's answer that makes libc fall back to clone). Any other errno
 * means nothing stopped the call before the kernel looked at it.
 */
static void must_refuse_e(const char *what, long r, int e, bool enosys_ok) {
        if (r >= 0)
                escape("%s worked", what);
        else if (e == EPERM || (enosys_ok && e == ENOSYS))
                note("%s %s", what, ename(e));
        else
                escape("%s reached the kernel (%s)", what, ename(e));
}

#define must_refuse(what, r, e) must_refuse_e(what, r, e, false)

/* Evaluates a call with errno cleared; closes an fd it returns. */
#define REFUSE_FD(what, expr)              \
        do {                               \
                errno = 0;                 \
                long _r = (long) (expr);   \
                int _e = errno;            \
                if (_r >= 0)               \
                        close((int) _r);   \
                must_refuse(what, _r, _e); \
        } while (0)
#define REFUSE(what, expr)                    \
        do {                                  \
                errno = 0;                    \
                long _r = (long) (expr);      \
                must_refuse(what, _r, errno); \
        } while (0)
#define FAIL_FD(what, expr)              \
        do {                             \
                errno = 0;               \
                long _r = (long) (expr); \
                int _e = errno;          \
                if (_r >= 0)             \
                        close((int) _r); \
                must_fail(what, _r, _e); \
        } while (0)

static const char *trust(void) {
        const char *t = getenv("ADV_TRUST");
        return t && *t ? t : "standard";
}

static bool privileged(void) {
        return strcmp(trust(), "privileged") == 0;
}

/* ---- small helpers ---------------------------------------------------------- */

static bool same_file(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static long long now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* A writable scratch directory: /tmp, else /work, else NULL (restricted). */
static const char *scratch(void) {
        static char dir[64];
        static const char *const bases[] = {"/tmp", "/work", "/dev/shm"};
        for (size_t i = 0; i < ELEMENTSOF(bases); i++) {
                snprintf(dir, sizeof(dir), "%s/adv-%d", bases[i], (int) getpid());
                if (mkdir(dir, 0700) == 0 || errno == EEXIST)
                        return dir;
        }
        return NULL;
}

/* Reads a small file whole (NUL-terminated); -errno on failure. */
static ssize_t read_small(const char *path, char *buf, size_t size) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        size_t n = 0;
        while (n + 1 < size) {
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = '\0';
        close(fd);
        return (ssize_t) n;
}

/* Calls fn for every numeric entry of /proc (the processes this pid namespace shows). */
static int for_each_pid(void (*fn)(int pid, void *data), void *data) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        int n = 0;
        if (!d)
                return -errno;
        while ((de = readdir(d)) && n < 4096) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 0)
                        continue;
                fn((int) pid, data);
                n++;
        }
        closedir(d);
        return n;
}

/* Runs `attack sleeper MARKER SECONDS [OPTION]` in a child; returns its pid once it runs. */
static pid_t spawn_self(char *const args[]) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                execv("/proc/self/exe", args);
                _exit(127);
        }
        close(p[1]);
        char c;
        if (pid > 0)
                while (read(p[0], &c, 1) < 0 && errno == EINTR)
                        ;
        close(p[0]);
        return pid;
}

/* ---- escape: mounts, roots, namespaces -------------------------------------- */

static int a_mount(int argc, char **argv) {
        (void) argc;
        (void) argv;
        const char *dir = scratch();
        const char *target = dir ? dir : "/tmp";
        errno = 0;
        long r = mount("none", target, "tmpfs", 0, "size=1m");
        int e = errno;
        if (r == 0)
                umount2(target, MNT_DETACH);
        must_refuse("mount tmpfs", r, e);
        /* With the flags / has now: a no-op even where nothing refuses it (on a host, say). */
        struct statvfs sv;
        unsigned long flags = MS_REMOUNT | MS_BIND;
        if (statvfs("/", &sv) == 0) {
                static const struct {
                        unsigned long st, ms;
                } map[] = {{ST_RDONLY, MS_RDONLY},    {ST_NOSUID, MS_NOSUID},
                           {ST_NODEV, MS_NODEV},      {ST_NOEXEC, MS_NOEXEC},
                           {ST_NOATIME, MS_NOATIME},  {ST_NODIRATIME, MS_NODIRATIME},
                           {ST_RELATIME, MS_RELATIME}};
                for (size_t i = 0; i < ELEMENTSOF(map); i++)
                        if (sv.f_flag & map[i].st)
                                flags |= map[i].ms;
        }
        REFUSE("remount /", mount(NULL, "/", NULL, flags, NULL));
        errno = 0;
        r = mount("/proc", target, NULL, MS_BIND, NULL);
        e = errno;
        if (r == 0)
                umount2(target, MNT_DETACH);
        must_refuse("bind /proc", r, e);
        /* Unmasking what the sandbox hid behind /dev/null. */
        REFUSE("umount /proc/kcore", umount2("/proc/kcore", MNT_DETACH));
        return finish();
}

static int a_mount_api(int argc, char **argv) {
        (void) argc;
        (void) argv;
        const char *dir = scratch();
        char target[128];
        snprintf(target, sizeof(target), "%s", dir ? dir : "/tmp");
        REFUSE_FD("fsopen tmpfs", syscall(SYS_fsopen, "tmpfs", 0));
        REFUSE("fsconfig", syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0));
        REFUSE_FD("fsmount", syscall(SYS_fsmount, -1, 0, 0));
        /* From no mount at all (fd -1): EBADF where nothing refuses it, never a real move. */
        REFUSE("move_mount",
               syscall(SYS_move_mount, -1, "", AT_FDCWD, target, 0x00000004 /* F_EMPTY_PATH */));
        REFUSE_FD("fspick /", syscall(SYS_fspick, AT_FDCWD, "/", 0));
        return finish();
}

static int a_open_tree(int argc, char **argv) {
        (void) argc;
        (void) argv;
        /* Nothing to set or clear: a no-op even where nothing refuses it. */
        struct {
                uint64_t attr_set, attr_clr, propagation, userns_fd;
        } attr = {0};
        REFUSE_FD("open_tree clone of /proc", syscall(SYS_open_tree, AT_FDCWD, "/proc", OPEN_TREE_CLONE));
        REFUSE("mount_setattr /", syscall(SYS_mount_setattr, AT_FDCWD, "/", 0, &attr, sizeof(attr)));
        return finish();
}

static int a_pivot_root(int argc, char **argv) {
        (void) argc;
        (void) argv;
        const char *dir = scratch();
        char newroot[128], old[160];
        snprintf(newroot, sizeof(newroot), "%s", dir ? dir : "/tmp");
        snprintf(old, sizeof(old), "%s/old", newroot);
        (void) mkdir(old, 0700);
        REFUSE("pivot_root", syscall(SYS_pivot_root, newroot, old));
        return finish();
}

static int a_chroot(int argc, char **argv) {
        (void) argc;
        (void) argv;
        REFUSE("chroot /tmp", chroot("/tmp"));
        return finish();
}

static int a_unshare(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const struct {
                int flag;
                const char *name;
        } ns[] = {
                {CLONE_NEWUSER, "unshare user"},     {CLONE_NEWNS, "unshare mnt"},
                {CLONE_NEWNET, "unshare net"},       {CLONE_NEWPID, "unshare pid"},
                {CLONE_NEWIPC, "unshare ipc"},       {CLONE_NEWUTS, "unshare uts"},
                {CLONE_NEWCGROUP, "unshare cgroup"}, {CLONE_NEWTIME, "unshare time"},
        };
        int refused = 0;
        for (size_t i = 0; i < ELEMENTSOF(ns); i++) {
                errno = 0;
                long r = unshare(ns[i].flag);
                if (r < 0 && errno == EPERM)
                        refused++;
                else
                        must_refuse(ns[i].name, r, errno);
        }
        note("unshare of %d of %zu namespaces (user mnt net pid ipc uts cgroup time) EPERM", refused,
             ELEMENTSOF(ns));
        return finish();
}

static int a_setns(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const char *const ns[] = {"user", "mnt", "net", "pid", "ipc", "uts", "cgroup"};
        int refused = 0;
        for (size_t i = 0; i < ELEMENTSOF(ns); i++) {
                char path[64], what[64];
                snprintf(path, sizeof(path), "/proc/1/ns/%s", ns[i]);
                snprintf(what, sizeof(what), "setns %s", ns[i]);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                        note("open %s %s", path, ename(errno));
                        continue;
                }
                errno = 0;
                long r = setns(fd, 0);
                if (r < 0 && errno == EPERM)
                        refused++;
                else
                        must_refuse(what, r, errno);
                close(fd);
        }
        note("setns into %d of %zu namespaces (user mnt net pid ipc uts cgroup) EPERM", refused,
             ELEMENTSOF(ns));
        return finish();
}

struct clone_args_ {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static int a_clone3_namespaces(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const struct {
                uint64_t flags;
                const char *name;
        } ns[] = {
                {CLONE_NEWUSER | CLONE_NEWNS, "clone3 user+mnt"},
                {CLONE_NEWPID, "clone3 pid"},
                {CLONE_NEWNET, "clone3 net"},
                {CLONE_NEWCGROUP, "clone3 cgroup"},
                {CLONE_NEWTIME, "clone3 time"},
        };
        for (size_t i = 0; i < ELEMENTSOF(ns); i++) {
                struct clone_args_ args = {.flags = ns[i].flags, .exit_signal = SIGCHLD};
                errno = 0;
                long pid = syscall(SYS_clone3, &args, sizeof(args));
                int e = errno;
                if (pid == 0)
                        syscall(SYS_exit_group, 0);
                if (pid > 0)
                        waitpid((pid_t) pid, NULL, 0);
                must_refuse_e(ns[i].name, pid, e, true);
        }
        return finish();
}

static int a_clone_namespaces(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const struct {
                unsigned long flags;
                const char *name;
        } ns[] = {
                {CLONE_NEWUSER, "clone user"},
                {CLONE_NEWNS, "clone mnt"},
                {CLONE_NEWPID, "clone pid"},
                {CLONE_NEWNET, "clone net"},
        };
        for (size_t i = 0; i < ELEMENTSOF(ns); i++) {
                errno = 0;
                long pid = syscall(SYS_clone, ns[i].flags | SIGCHLD, 0, 0, 0, 0);
                int e = errno;
                if (pid == 0)
                        syscall(SYS_exit_group, 0);
                if (pid > 0)
                        waitpid((pid_t) pid, NULL, 0);
                must_refuse(ns[i].name, pid, e);
        }
        return finish();
}

/* ---- escape: /proc and /sys --------------------------------------------------- */

/* How many tries failed with each errno, for one short note instead of one per path. */
struct tally {
        int err[8], count[8], n, total;
};

static void tally_add(struct tally *t, int e) {
        int i;
        t->total++;
        for (i = 0; i < t->n; i++)
                if (t->err[i] == e)
                        break;
        if (i == t->n) {
                if (t->n == (int) ELEMENTSOF(t->err))
                        return;
                t->err[t->n] = e;
                t->count[t->n++] = 0;
        }
        t->count[i]++;
}

static void tally_note(const struct tally *t, const char *what) {
        char buf[256] = "";
        size_t n = 0;
        for (int i = 0; i < t->n && n < sizeof(buf); i++)
                n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s%d %s", i ? ", " : "", t->count[i],
                                       ename(t->err[i]));
        note("%d %s: %s", t->total, what, buf);
}

/*
 * Opens path for writing and closes it without writing a byte: the open alone
 * is the escape. A failure is counted in t, or noted on its own when t is NULL.
 */
static void open_for_write(const char *path, struct tally *t) {
        errno = 0;
        int fd = open(path, O_WRONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        int e = errno;
        if (fd >= 0) {
                struct stat st;
                bool devnull = fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
                close(fd);
                if (!devnull)
                        escape("%s opened for writing (closed unwritten)", path);
                else if (t)
                        tally_add(t, 0);
                else
                        note("%s masked (/dev/null)", path);
                return;
        }
        if (t)
                tally_add(t, e);
        else
                note("%s %s", path, ename(e));
}

static int a_proc_sys_core_pattern(int argc, char **argv) {
        (void) argc;
        (void) argv;
        char buf[256];
        if (read_small("/proc/sys/kernel/core_pattern", buf, sizeof(buf)) < 0)
                note("core_pattern unreadable");
        open_for_write("/proc/sys/kernel/core_pattern", NULL);
        struct tally t = {0};
        open_for_write("/proc/self/root/proc/sys/kernel/core_pattern", &t);
        open_for_write("/proc/1/root/proc/sys/kernel/core_pattern", &t);
        open_for_write("/proc/sys/kernel/core_pipe_limit", &t);
        open_for_write("/proc/sys/fs/suid_dumpable", &t);
        tally_note(&t, "more (other paths, pipe limit, suid_dumpable)");
        return finish();
}

static int a_proc_sys_writes(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const char *const paths[] = {
                "/proc/sys/kernel/modprobe",
                "/proc/sys/kernel/hotplug",
                "/proc/sys/kernel/sysrq",
                "/proc/sys/kernel/panic",
                "/proc/sys/kernel/poweroff_cmd",
                "/proc/sys/kernel/ns_last_pid",
                "/proc/sys/kernel/hostname",
                "/proc/sys/vm/drop_caches",
                "/proc/sys/vm/overcommit_memory",
                "/proc/sys/fs/binfmt_misc/register",
                "/proc/sys/fs/binfmt_misc/status",
                "/proc/sys/net/ipv4/ip_forward",
                "/proc/sys/net/core/bpf_jit_enable",
                "/proc/sysrq-trigger",
        };
        struct tally t = {0};
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                open_for_write(paths[i], &t);
        tally_note(&t, "files not writable (0 is /dev/null)");
        return finish();
}

static int a_proc_masked(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const char *const files[] = {
                "kcore",     "kallsyms",    "keys",       "timer_list",  "sched_debug",
                "kmsg",      "kpagecount",  "kpageflags", "kpagecgroup", "latency_stats",
                "config.gz", "vmallocinfo", "interrupts", "softirqs",    "timer_stats",
        };
        int masked = 0, absent = 0, empty_dirs = 0;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%s", files[i]);
                int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                if (fd < 0) {
                        if (errno != ENOENT)
                                note("%s %s", files[i], ename(errno));
                        else
                                absent++;
                        continue;
                }
                struct stat st;
                if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
                        close(fd);
                        masked++;
                        continue;
                }
                /* kmsg is never read: a read would take messages from the host's logger. */
                if (strcmp(files[i], "kmsg") == 0) {
                        escape("/proc/kmsg opened, not masked");
                        close(fd);
                        continue;
                }
                char buf[64];
                ssize_t k = read(fd, buf, sizeof(buf));
                close(fd);
                if (k > 0)
                        escape("read /proc/%s", files[i]);
                else
                        note("%s empty", files[i]);
        }
        note("%d files masked by /dev/null, %d absent", masked, absent);
        static const char *const dirs[] = {"acpi", "scsi", "asound", "driver"};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%s", dirs[i]);
                DIR *d = opendir(path);
                if (!d)
                        continue;
                struct dirent *de;
                int n = 0;
                while ((de = readdir(d)))
                        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                                n++;
                closedir(d);
                if (n > 0)
                        escape("/proc/%s lists %d entries", dirs[i], n);
                else
                        empty_dirs++;
        }
        note("%d directories empty", empty_dirs);
        return finish();
}

static int a_sys_writes(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const char *const paths[] = {
                "/sys/kernel/uevent_helper",   "/sys/power/state",
                "/sys/fs/cgroup/cgroup.procs", "/sys/kernel/mm/transparent_hugepage/enabled",
                "/sys/class/net/lo/mtu",       "/proc/self/root/sys/kernel/uevent_helper",
        };
        struct stat st;
        if (stat("/sys", &st) == 0)
                note("/sys exists");
        else
                note("no /sys (%s)", ename(errno));
        struct tally t = {0};
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                open_for_write(paths[i], &t);
        tally_note(&t, "files not writable");
        const char *dir = scratch();
        if (dir) {
                errno = 0;
                long r = mount("sysfs", dir, "sysfs", 0, NULL);
                int e = errno;
                if (r == 0)
                        umount2(dir, MNT_DETACH);
                must_refuse("mount sysfs", r, e);
        }
        return finish();
}

static int a_cgroup_escape(int argc, char **argv) {
        (void) argc;
        (void) argv;
        char buf[4096];
        if (read_small("/proc/self/cgroup", buf, sizeof(buf)) >= 0) {
                for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                        char *path = strrchr(line, ':');
                        if (path && strcmp(path, ":/") != 0)
                                escape("/proc/self/cgroup shows %s", line);
                }
                note("/proc/self/cgroup shows / only");
        }
        const char *dir = scratch();
        if (dir) {
                static const struct {
                        const char *type, *data, *what;
                } fs[] = {
                        {"cgroup2", NULL, "mount cgroup2"},
                        {"cgroup", "memory", "mount cgroup v1 memory"},
                        {"cgroup", "none,name=systemd", "mount cgroup v1 name=systemd"},
                };
                for (size_t i = 0; i < ELEMENTSOF(fs); i++) {
                        errno = 0;
                        long r = mount("cgroup", dir, fs[i].type, 0, fs[i].data);
                        int e = errno;
                        if (r == 0)
                                umount2(dir, MNT_DETACH);
                        must_refuse(fs[i].what, r, e);
                }
        }
        open_for_write("/sys/fs/cgroup/cgroup.procs", NULL);
        return finish();
}

/* ---- escape: other processes ------------------------------------------------ */

static pid_t spawn_pause(void) {
        pid_t pid = fork();
        if (pid == 0) {
                sleep_ms(10000);
                _exit(0);
        }
        return pid;
}

static void reap(pid_t pid) {
        if (pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
}

static int a_ptrace(int argc, char **argv) {
        pid_t host_pid = argc > 2 ? (pid_t) atoi(argv[2]) : 0;
        pid_t child = spawn_pause();
        if (child < 0)
                return error("fork: %s", ename(errno));
        errno = 0;
        long r = syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, child, NULL, NULL);
        int e = errno;
        if (r == 0) {
                waitpid(child, NULL, __WALL);
                syscall(SYS_ptrace, 17 /* PTRACE_DETACH */, child, NULL, NULL);
                if (privileged())
                        note("attach own child allowed (privileged: inside its own namespaces)");
                else
                        escape("PTRACE_ATTACH to a sibling worked");
        } else {
                must_refuse("PTRACE_ATTACH sibling", r, e);
        }
        reap(child);

        /* PTRACE_TRACEME in a child, reported through its exit status. */
        child = fork();
        if (child == 0)
                _exit(syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, NULL, NULL) == 0 ? 0
                      : errno == EPERM                                                ? 1
                                                                                      : 2);
        int status = 0;
        if (child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status)) {
                if (WEXITSTATUS(status) == 0 && !privileged())
                        escape("PTRACE_TRACEME worked");
                else if (WEXITSTATUS(status) == 1)
                        note("PTRACE_TRACEME EPERM");
                else if (WEXITSTATUS(status) == 0)
                        note("PTRACE_TRACEME allowed (privileged)");
                else if (!privileged())
                        escape("PTRACE_TRACEME reached the kernel");
        }
        /* The supervisor on the host, by its host pid: not even visible. */
        if (host_pid > 0) {
                errno = 0;
                r = syscall(SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, host_pid, NULL, NULL);
                e = errno;
                if (r == 0) {
                        syscall(SYS_ptrace, 17, host_pid, NULL, NULL);
                        escape("PTRACE_SEIZE of host pid %d worked", (int) host_pid);
                } else {
                        note("PTRACE_SEIZE host pid %d %s", (int) host_pid, ename(e));
                }
        }
        return finish();
}

static int a_process_vm(int argc, char **argv) {
        pid_t host_pid = argc > 2 ? (pid_t) atoi(argv[2]) : 0;
        static char secret[32] = "autoos-adversarial-secret";
        pid_t child = spawn_pause();
        if (child < 0)
                return error("fork: %s", ename(errno));
        char got[32] = "";
        struct iovec l = {got, sizeof(got)}, rv = {secret, sizeof(secret)};
        errno = 0;
        long r = syscall(SYS_process_vm_readv, child, &l, 1UL, &rv, 1UL, 0UL);
        int e = errno;
        if (r > 0 && privileged())
                note("process_vm_readv of own child allowed (privileged)");
        else
                must_refuse("process_vm_readv sibling", r, e);
        errno = 0;
        r = syscall(SYS_kcmp, getpid(), child, 0 /* KCMP_FILE */, 0UL, 0UL);
        e = errno;
        if (r >= 0 && privileged())
                note("kcmp allowed (privileged)");
        else
                must_refuse("kcmp", r, e);
        reap(child);
        if (host_pid > 0) {
                errno = 0;
                r = syscall(SYS_process_vm_readv, host_pid, &l, 1UL, &rv, 1UL, 0UL);
                must_fail("process_vm_readv host pid", r, errno);
        }
        return finish();
}

/* ---- escape: file handles, devices -------------------------------------------- */

static int a_open_by_handle(int argc, char **argv) {
        (void) argc;
        (void) argv;
        struct {
                unsigned int handle_bytes;
                int handle_type;
                unsigned char f_handle[128];
        } h = {.handle_bytes = 128};
        int mount_id;
        REFUSE("name_to_handle_at /etc/hostname",
               syscall(SYS_name_to_handle_at, AT_FDCWD, "/etc/hostname", &h, &mount_id, 0));
        /* "Shocker": a guessed handle (FILEID_INO32_GEN, inode 2: a file system's root) opened
         * relative to the sandbox's root, which would name the host file system's root. */
        struct {
                unsigned int handle_bytes;
                int handle_type;
                uint32_t ino, gen;
        } guess = {8, 1, 2, 0};
        int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        REFUSE_FD("open_by_handle_at inode 2", syscall(SYS_open_by_handle_at, root, &guess, O_RDONLY));
        if (root >= 0)
                close(root);
        return finish();
}

static int a_mknod(int argc, char **argv) {
        (void) argc;
        (void) argv;
        const char *dir = scratch();
        if (!dir)
                dir = "/tmp";
        static const struct {
                const char *name;
                mode_t type;
                unsigned maj, min;
        } nodes[] = {
                {"mem", S_IFCHR, 1, 1},
                {"kmsg", S_IFCHR, 1, 11},
                {"sda", S_IFBLK, 8, 0},
                {"loop0", S_IFBLK, 7, 0},
        };
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                char path[160], what[64];
                snprintf(path, sizeof(path), "%s/%s", dir, nodes[i].name);
                snprintf(what, sizeof(what), "mknod %s %u:%u", nodes[i].name, nodes[i].maj, nodes[i].min);
                errno = 0;
                long r = syscall(SYS_mknodat, AT_FDCWD, path, nodes[i].type | 0600,
                                 makedev(nodes[i].maj, nodes[i].min));
                int e = errno;
                if (r == 0)
                        unlink(path);
                must_refuse(what, r, e);
        }
        return finish();
}

/* Opens each path read-only (never reading) and closes it: it must not open. */
static void must_not_open(const char *const *paths, size_t n, int flags) {
        int absent = 0;
        for (size_t i = 0; i < n; i++) {
                errno = 0;
                int fd = open(paths[i], flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
                int e = errno;
                if (fd >= 0) {
                        close(fd);
                        escape("%s opened", paths[i]);
                } else if (e == ENOENT) {
                        absent++;
                } else {
                        note("%s %s", paths[i], ename(e));
                }
        }
        if (absent)
                note("%d absent", absent);
}

static int a_dev_mem(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const char *const paths[] = {"/dev/mem",       "/dev/kmem",
                                            "/dev/port",      "/proc/self/root/dev/mem",
                                            "/dev/cpu/0/msr", "/dev/kvm"};
        must_not_open(paths, ELEMENTSOF(paths), O_RDONLY);
        return finish();
}

static int a_dev_kmsg(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const char *const paths[] = {"/dev/kmsg", "/dev/console", "/dev/tty", "/dev/tty0",
                                            "/dev/tty1", "/dev/ttyS0",   "/dev/vcs", "/dev/vcsa"};
        must_not_open(paths, ELEMENTSOF(paths), O_RDONLY);
        char buf[64];
        REFUSE("syslog READ_ALL",
               syscall(SYS_syslog, 3 /* SYSLOG_ACTION_READ_ALL */, buf, (int) sizeof(buf)));
        return finish();
}

static bool allowed_dev(const char *rel, const struct stat *st) {
        if (S_ISBLK(st->st_mode))
                return false;
        unsigned maj = major(st->st_rdev), min = minor(st->st_rdev);
        if (maj == 1 && (min == 3 || min == 5 || min == 7 || min == 8 || min == 9))
                return true; /* null zero full random urandom */
        if (maj == 5 && min == 2)
                return true; /* ptmx of the sandbox's own devpts */
        if (strncmp(rel, "pts/", 4) == 0 && maj >= 136 && maj <= 143)
                return true; /* its own pty slaves */
        return false;
}

static void scan_dev(const char *dir, int depth, int *n) {
        DIR *d = opendir(dir);
        struct dirent *de;
        if (!d)
                return;
        while ((de = readdir(d)) && *n < 10000) {
                char path[512];
                struct stat st;
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                if (lstat(path, &st) < 0)
                        continue;
                (*n)++;
                if (S_ISDIR(st.st_mode) && depth < 4)
                        scan_dev(path, depth + 1, n);
                else if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && !allowed_dev(path + 5, &st))
                        escape("%s is a %s device %u:%u", path, S_ISBLK(st.st_mode) ? "block" : "char",
                               major(st.st_rdev), minor(st.st_rdev));
        }
        closedir(d);
}

static int a_dev_block(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const char *const paths[] = {
                "/dev/sda",          "/dev/vda",  "/dev/xvda",           "/dev/nvme0n1", "/dev/loop0",
                "/dev/loop-control", "/dev/dm-0", "/dev/mapper/control", "/dev/fuse",    "/dev/net/tun",
        };
        must_not_open(paths, ELEMENTSOF(paths), O_RDONLY);
        int n = 0;
        scan_dev("/dev", 0, &n);
        note("/dev holds %d entries, no other device", n);
        return finish();
}

/* ---- escape: fds, cwd, exe, roots (the runc CVE-2024-21626 and CVE-2019-5736 class) */

/* Walks up with ".." from fd until a directory is its own parent; it must be our "/". */
static bool reaches_our_root(int fd) {
        struct stat root, cur, up;
        if (stat("/", &root) < 0)
                return false;
        int d = dup(fd);
        for (int i = 0; d >= 0 && i < 256; i++) {
                int u = openat(d, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (u < 0 || fstat(d, &cur) < 0 || fstat(u, &up) < 0) {
                        if (u >= 0)
                                close(u);
                        break;
                }
                close(d);
                d = u;
                if (same_file(&cur, &up)) {
                        close(d);
                        return same_file(&up, &root);
                }
        }
        if (d >= 0)
                close(d);
        return false;
}

static int a_leaked_fds(int argc, char **argv) {
        (void) argc;
        (void) argv;
        /* First thing: nothing of ours is open yet. */
        int leaked = 0;
        for (int fd = 3; fd < 1024; fd++) {
                if (fcntl(fd, F_GETFD) < 0)
                        continue;
                char p[64], t[256] = "";
                snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
                ssize_t k = readlink(p, t, sizeof(t) - 1);
                t[k > 0 ? k : 0] = '\0';
                struct stat st;
                bool outside = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && !reaches_our_root(fd);
                escape("fd %d open (%s%s)", fd, t, outside ? ", a directory outside the sandbox root" : "");
                leaked++;
        }
        DIR *d = opendir("/proc/self/fd");
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        int fd = atoi(de->d_name);
                        if (fd >= 1024 && fd != dirfd(d)) {
                                escape("fd %d open", fd);
                                leaked++;
                        }
                }
                closedir(d);
        }
        if (!leaked)
                note("fds 3 and up closed");
        static const char *const ok_prefix[] = {"pipe:", "socket:", "anon_inode:", "/dev/null", "/memfd:"};
        for (int fd = 0; fd < 3; fd++) {
                char p[64], t[256] = "";
                snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
                ssize_t k = readlink(p, t, sizeof(t) - 1);
                if (k < 0) {
                        note("fd %d closed", fd);
                        continue;
                }
                t[k] = '\0';
                bool ok = false;
                for (size_t i = 0; i < ELEMENTSOF(ok_prefix); i++)
                        ok = ok || strncmp(t, ok_prefix[i], strlen(ok_prefix[i])) == 0;
                if (!ok || isatty(fd))
                        escape("fd %d is %s", fd, t);
                else
                        note("fd %d %s", fd, t);
        }
        return finish();
}

static int a_host_cwd(int argc, char **argv) {
        (void) argc;
        (void) argv;
        char cwd[4096], link[4096];
        if (!getcwd(cwd, sizeof(cwd)))
                escape("getcwd %s (a cwd outside the root reads as unreachable)", ename(errno));
        else if (cwd[0] != '/')
                escape("cwd is %s", cwd);
        else
                note("cwd %s", cwd);
        ssize_t k = readlink("/proc/self/cwd", link, sizeof(link) - 1);
        if (k > 0) {
                link[k] = '\0';
                if (link[0] != '/' || strstr(link, "(unreachable)"))
                        escape("/proc/self/cwd is %s", link);
        }
        int fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || !reaches_our_root(fd))
                escape("walking up from the cwd does not end at the sandbox root");
        else
                note("walking up from it ends at the sandbox root");
        if (fd >= 0)
                close(fd);
        /* Every process here: its cwd must lead to the same root. */
        DIR *d = opendir("/proc");
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (atoi(de->d_name) <= 0)
                        continue;
                char p[300];
                snprintf(p, sizeof(p), "/proc/%s/cwd", de->d_name);
                int pfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (pfd < 0)
                        continue;
                if (!reaches_our_root(pfd))
                        escape("pid %s has a cwd outside the sandbox root", de->d_name);
                close(pfd);
        }
        if (d)
                closedir(d);
        return finish();
}

static void check_exe(int pid, void *data) {
        (void) data;
        char p[64], t[4096];
        snprintf(p, sizeof(p), "/proc/%d/exe", pid);
        ssize_t k = readlink(p, t, sizeof(t) - 1);
        if (k < 0)
                return;
        t[k] = '\0';
        int fd = open(p, O_PATH | O_CLOEXEC);
        struct stat a, b;
        if (fd < 0)
                return;
        if (fstat(fd, &a) == 0 && (stat(t, &b) < 0 || !same_file(&a, &b)))
                escape("pid %d runs %s, not a file of this sandbox", pid, t);
        close(fd);
}

static int a_proc_self_exe(int argc, char **argv) {
        (void) argc;
        (void) argv;
        /* CVE-2019-5736: a process of the supervisor's, entered through /proc/PID/exe. */
        for_each_pid(check_exe, NULL);
        note("every /proc/PID/exe is a file of the sandbox");
        /* Our own binary (in /work, ours to change anyway): running, so busy. */
        FAIL_FD("open /proc/self/exe for writing", open("/proc/self/exe", O_WRONLY | O_CLOEXEC));
        /* A host binary, bound read-only, running in a child. */
        const char *sleep_bin = access("/usr/bin/sleep", X_OK) == 0 ? "/usr/bin/sleep" : "/bin/sleep";
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return error("pipe: %s", ename(errno));
        pid_t child = fork();
        if (child == 0) {
                close(p[0]);
                execl(sleep_bin, "sleep", "10", (char *) NULL);
                _exit(127);
        }
        close(p[1]);
        char c;
        while (read(p[0], &c, 1) < 0 && errno == EINTR)
                ;
        close(p[0]);
        if (child > 0) {
                char path[64], what[96];
                snprintf(path, sizeof(path), "/proc/%d/exe", (int) child);
                snprintf(what, sizeof(what), "open %s's /proc/PID/exe for writing", sleep_bin);
                errno = 0;
                int fd = open(path, O_WRONLY | O_CLOEXEC);
                int e = errno;
                if (fd >= 0)
                        close(fd); /* not a byte written */
                must_fail(what, fd, e);
                errno = 0;
                fd = open(sleep_bin, O_WRONLY | O_CLOEXEC);
                e = errno;
                if (fd >= 0)
                        close(fd);
                must_fail("open it by path for writing", fd, e);
                reap(child);
        }
        return finish();
}

struct root_check {
        struct stat root;
        const char *host_path;
};

static void check_root(int pid, void *data) {
        struct root_check *rc = data;
        char p[128];
        struct stat st;
        snprintf(p, sizeof(p), "/proc/%d/root", pid);
        if (stat(p, &st) == 0 && !same_file(&st, &rc->root))
                escape("/proc/%d/root is not the sandbox root", pid);
        snprintf(p, sizeof(p), "/proc/%d/root/../../..", pid);
        if (stat(p, &st) == 0 && !same_file(&st, &rc->root))
                escape("/proc/%d/root/../../.. leads out of the sandbox", pid);
}

static int a_proc_root(int argc, char **argv) {
        pid_t host_pid = argc > 2 ? (pid_t) atoi(argv[2]) : 0;
        struct root_check rc = {0};
        char link[256];
        if (stat("/", &rc.root) < 0)
                return error("stat /: %s", ename(errno));
        ssize_t k = readlink("/proc/self/root", link, sizeof(link) - 1);
        if (k >= 0) {
                link[k] = '\0';
                if (strcmp(link, "/") != 0)
                        escape("/proc/self/root is %s", link);
        }
        int n = for_each_pid(check_root, &rc);
        note("/proc/PID/root of %d process%s is the sandbox root", n, n == 1 ? "" : "es");
        if (host_pid > 0) {
                char p[64];
                struct stat st;
                snprintf(p, sizeof(p), "/proc/%d/root", (int) host_pid);
                if (stat(p, &st) < 0)
                        note("host pid %d not in /proc", (int) host_pid);
                else if (!same_file(&st, &rc.root))
                        escape("host pid %d's root reachable through /proc", (int) host_pid);
                else
                        note("pid %d here is one of the sandbox's", (int) host_pid);
        }
        static const char *const paths[] = {"/proc/self/root/etc/shadow",
                                            "/proc/1/root/../../etc/shadow",
                                            "/etc/shadow",
                                            "/etc/gshadow",
                                            "/etc/sudoers",
                                            "/root/.ssh"};
        must_not_open(paths, ELEMENTSOF(paths), O_RDONLY);
        return finish();
}

static void try_host_file(const char *path, const char *token) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return;
        char buf[128];
        ssize_t k = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        buf[k > 0 ? k : 0] = '\0';
        if (strstr(buf, token))
                escape("read the host's canary file through %s", path);
        else
                note("%s exists but is not the canary", path);
}

struct host_file {
        const char *path, *token;
};

static void host_file_via_pid(int pid, void *data) {
        const struct host_file *hf = data;
        char p[4200];
        snprintf(p, sizeof(p), "/proc/%d/root%s", pid, hf->path);
        try_host_file(p, hf->token);
        snprintf(p, sizeof(p), "/proc/%d/cwd/../../../..%s", pid, hf->path);
        try_host_file(p, hf->token);
}

static int a_host_file(int argc, char **argv) {
        if (argc < 4)
                return error("usage: host-file HOSTPATH TOKEN");
        struct host_file hf = {argv[2], argv[3]};
        static const char *const prefixes[] = {"",
                                               "/proc/self/root",
                                               "/proc/1/root",
                                               "/work/../../..",
                                               "/tmp/../../..",
                                               "/proc/self/cwd/../../../.."};
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
                char p[4200];
                snprintf(p, sizeof(p), "%s%s", prefixes[i], hf.path);
                try_host_file(p, hf.token);
        }
        int n = for_each_pid(host_file_via_pid, &hf);
        note("the host file %s is out of reach by %zu paths and through /proc/PID of %d process%s", hf.path,
             ELEMENTSOF(prefixes), n, n == 1 ? "" : "es");
        return finish();
}

/* ---- escape: setuid under no_new_privs --------------------------------------- */

/* The effective uid in /proc/PID/status ("Uid: real effective saved fs"); -1 if unknown. */
static long status_euid(pid_t pid) {
        char p[64], buf[4096];
        snprintf(p, sizeof(p), "/proc/%d/status", (int) pid);
        if (read_small(p, buf, sizeof(buf)) < 0)
                return -1;
        char *u = strstr(buf, "\nUid:");
        long real, eff;
        if (!u || sscanf(u + 5, "%ld %ld", &real, &eff) != 2)
                return -1;
        return eff;
}

static int a_setuid(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const char *const cands[] = {"/usr/bin/su",     "/bin/su",         "/usr/bin/passwd",
                                            "/usr/bin/mount",  "/usr/bin/newgrp", "/usr/bin/chfn",
                                            "/usr/bin/gpasswd"};
        char buf[4096];
        if (read_small("/proc/self/status", buf, sizeof(buf)) > 0) {
                char *nnp = strstr(buf, "NoNewPrivs:");
                if (!nnp || atoi(nnp + 11) != 1)
                        escape("no_new_privs is not set");
                else
                        note("NoNewPrivs 1");
        }
        int tried = 0;
        ino_t seen[ELEMENTSOF(cands)];
        for (size_t i = 0; i < ELEMENTSOF(cands) && tried < 2; i++) {
                struct stat st;
                bool dup = false;
                if (stat(cands[i], &st) < 0 || !(st.st_mode & S_ISUID))
                        continue;
                for (int j = 0; j < tried; j++)
                        dup = dup || seen[j] == st.st_ino;
                if (dup)
                        continue; /* /bin/su is /usr/bin/su on a merged /usr */
                seen[tried++] = st.st_ino;
                struct statvfs sv;
                if (statvfs(cands[i], &sv) == 0 && (sv.f_flag & ST_NOSUID))
                        note("%s on a nosuid mount", cands[i]);
                int p[2];
                if (pipe2(p, O_CLOEXEC) < 0)
                        return error("pipe: %s", ename(errno));
                pid_t child = fork();
                if (child == 0) {
                        close(p[0]);
                        int null = open("/dev/null", O_RDWR);
                        if (null >= 0) {
                                dup2(null, 0);
                                dup2(null, 1);
                                dup2(null, 2);
                        }
                        execl(cands[i], cands[i], "--version", (char *) NULL);
                        _exit(127);
                }
                close(p[1]);
                char c;
                while (read(p[0], &c, 1) < 0 && errno == EINTR)
                        ;
                close(p[0]);
                if (child < 0)
                        continue;
                /* Right after execve, then as a zombie: the credentials it ran with. */
                long e1 = status_euid(child);
                siginfo_t si;
                waitid(P_PID, (id_t) child, &si, WEXITED | WNOWAIT);
                long e2 = status_euid(child);
                waitpid(child, NULL, 0);
                long me = (long) geteuid();
                if ((e1 >= 0 && e1 != me) || (e2 >= 0 && e2 != me))
                        escape("%s ran with euid %ld (we are %ld)", cands[i], e1 != me ? e1 : e2, me);
                else
                        note("%s ran with euid %ld", cands[i], me);
        }
        if (!tried && !any_escape)
                return skipped("no setuid binary to try in the sandbox (%s)", notes);
        return finish();
}

/* ---- kernel attack surface -------------------------------------------------- */

static int a_io_uring(int argc, char **argv) {
        (void) argc;
        (void) argv;
        char params[120] = {0}; /* struct io_uring_params */
        REFUSE_FD("io_uring_setup", syscall(SYS_io_uring_setup, 8, params));
        REFUSE("io_uring_enter", syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));
        REFUSE("io_uring_register", syscall(SYS_io_uring_register, -1, 0, NULL, 0));
        return finish();
}

static int a_bpf(int argc, char **argv) {
        (void) argc;
        (void) argv;
        /* r0 = 0; exit: a socket filter that drops everything, attached to nothing. */
        struct bpf_insn insns[] = {
                {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
                {.code = BPF_JMP | BPF_EXIT},
        };
        union bpf_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
        attr.insn_cnt = ELEMENTSOF(insns);
        attr.insns = (uint64_t) (uintptr_t) insns;
        attr.license = (uint64_t) (uintptr_t) "GPL";
        REFUSE_FD("bpf PROG_LOAD", syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr)));
        memset(&attr, 0, sizeof(attr));
        attr.map_type = BPF_MAP_TYPE_ARRAY;
        attr.key_size = 4;
        attr.value_size = 4;
        attr.max_entries = 1;
        REFUSE_FD("bpf MAP_CREATE", syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr)));
        return finish();
}

static int a_keyctl(int argc, char **argv) {
        (void) argc;
        (void) argv;
        REFUSE("add_key user", syscall(SYS_add_key, "user", "autoos-adv", "x", 1, KEY_SPEC_PROCESS_KEYRING));
        REFUSE("keyctl JOIN_SESSION_KEYRING",
               syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING_, "autoos-adv"));
        REFUSE("request_key", syscall(SYS_request_key, "user", "autoos-adv", NULL, 0));
        return finish();
}

static int a_userfaultfd(int argc, char **argv) {
        (void) argc;
        (void) argv;
        REFUSE_FD("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
        static const char *const paths[] = {"/dev/userfaultfd"};
        must_not_open(paths, 1, O_RDWR);
        return finish();
}

static int a_perf_event(int argc, char **argv) {
        (void) argc;
        (void) argv;
        struct perf_event_attr a;
        memset(&a, 0, sizeof(a));
        a.size = sizeof(a);
        a.type = PERF_TYPE_SOFTWARE;
        a.config = PERF_COUNT_SW_CPU_CLOCK;
        a.disabled = 1;
        a.exclude_kernel = 1;
        a.exclude_hv = 1;
        REFUSE_FD("perf_event_open sw", syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
        a.type = PERF_TYPE_HARDWARE;
        a.config = PERF_COUNT_HW_CPU_CYCLES;
        REFUSE_FD("perf_event_open hw cpu-wide", syscall(SYS_perf_event_open, &a, -1, 0, -1, 0));
        return finish();
}

static int a_socket_family(int family, const char *name, int type, int proto) {
        char what[64];
        snprintf(what, sizeof(what), "socket %s", name);
        REFUSE_FD(what, socket(family, type | SOCK_CLOEXEC, proto));
        return finish();
}

static int a_af_vsock(int argc, char **argv) {
        (void) argc;
        (void) argv;
        return a_socket_family(AF_VSOCK, "AF_VSOCK", BAD_SOCK_TYPE, 0);
}

static int a_af_alg(int argc, char **argv) {
        (void) argc;
        (void) argv;
        return a_socket_family(AF_ALG, "AF_ALG", BAD_SOCK_TYPE, 0);
}

static int a_af_packet(int argc, char **argv) {
        (void) argc;
        (void) argv;
        /* A real packet socket only where the family is loaded already (its /proc file shows). */
        if (access("/proc/net/packet", F_OK) == 0) {
                REFUSE_FD("socket AF_PACKET raw", socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(0x0003)));
                REFUSE_FD("socket AF_PACKET dgram",
                          socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(0x0003)));
        } else {
                REFUSE_FD("socket AF_PACKET", socket(AF_PACKET, BAD_SOCK_TYPE | SOCK_CLOEXEC, 0));
        }
        return finish();
}

static int a_raw_socket(int argc, char **argv) {
        (void) argc;
        (void) argv;
        REFUSE_FD("socket raw icmp", socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
        REFUSE_FD("socket raw ip", socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW));
        REFUSE_FD("socket raw icmpv6", socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6));
        REFUSE_FD("socket SOCK_PACKET", socket(AF_INET, SOCK_PACKET | SOCK_CLOEXEC, htons(0x0003)));
        return finish();
}

/*
 * Netlink reaches kernel state well beyond the run's network namespace (the
 * audit log, device uevents, every socket's diagnostics, netfilter, xfrm,
 * generic netlink families): only NETLINK_ROUTE may be opened. Protocols that
 * may be modules get an invalid socket type (EINVAL before any load).
 */
static int a_netlink(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const struct {
                const char *name;
                int proto, type;
        } tries[] = {
                {"NETLINK_AUDIT", 9, SOCK_RAW},           {"NETLINK_KOBJECT_UEVENT", 15, SOCK_DGRAM},
                {"NETLINK_SOCK_DIAG", 4, SOCK_RAW},       {"NETLINK_GENERIC", 16, SOCK_RAW},
                {"NETLINK_NETFILTER", 12, BAD_SOCK_TYPE}, {"NETLINK_XFRM", 6, BAD_SOCK_TYPE},
                {"NETLINK_CRYPTO", 21, BAD_SOCK_TYPE},    {"NETLINK_SELINUX", 7, BAD_SOCK_TYPE},
                {"NETLINK_CONNECTOR", 11, BAD_SOCK_TYPE},
        };
        for (size_t i = 0; i < ELEMENTSOF(tries); i++) {
                char what[64];
                snprintf(what, sizeof(what), "socket %s", tries[i].name);
                REFUSE_FD(what, socket(AF_NETLINK, tries[i].type | SOCK_CLOEXEC, tries[i].proto));
        }
        /* The protocol is an int to the kernel: AUDIT with junk above it is still AUDIT. */
        REFUSE_FD("socket NETLINK_AUDIT with high bits",
                  syscall(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, (1UL << 32) | 9UL));
        return finish();
}

/* A pty of the sandbox's own devpts (slave fd), or /dev/null when none can be made. */
static int own_tty(const char **what) {
        int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m >= 0 && unlockpt(m) == 0) {
                char *name = ptsname(m);
                int s = name ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
                if (s >= 0) {
                        *what = "own pty";
                        return s; /* the master stays open for the attack's life */
                }
        }
        *what = "/dev/null";
        return open("/dev/null", O_RDWR | O_CLOEXEC);
}

static int a_tiocsti(int argc, char **argv) {
        (void) argc;
        (void) argv;
        const char *kind;
        int fd = own_tty(&kind);
        char c = ' ', what[64];
        snprintf(what, sizeof(what), "TIOCSTI on %s", kind);
        REFUSE(what, ioctl(fd, TIOCSTI, &c));
        REFUSE("TIOCSTI with high bits", syscall(SYS_ioctl, fd, (unsigned long) TIOCSTI | (1UL << 32), &c));
        /* A terminal on stdio is itself the escape (leaked-fds): never type into it. */
        for (int i = 0; i < 3; i++) {
                snprintf(what, sizeof(what), "TIOCSTI on fd %d", i);
                if (isatty(i))
                        escape("fd %d is a terminal", i);
                else
                        REFUSE(what, ioctl(i, TIOCSTI, &c));
        }
        return finish();
}

static int a_tioclinux(int argc, char **argv) {
        (void) argc;
        (void) argv;
        const char *kind;
        int fd = own_tty(&kind);
        char sub = 12, what[64]; /* TIOCL_GETSHIFTSTATE: a read */
        snprintf(what, sizeof(what), "TIOCLINUX on %s", kind);
        REFUSE(what, ioctl(fd, TIOCLINUX, &sub));
        sub = 12;
        if (isatty(0))
                escape("fd 0 is a terminal");
        else
                REFUSE("TIOCLINUX on fd 0", ioctl(0, TIOCLINUX, &sub));
        return finish();
}

/*
 * TIOCSETD attaches a line discipline (n_hdlc, n_gsm, ...: a CVE history) to
 * a terminal the run owns. Only harmless values are asked for even if the
 * filter let them through: N_TTY (already set) and a number no kernel has.
 */
static int a_tiocsetd(int argc, char **argv) {
        (void) argc;
        (void) argv;
        const char *kind;
        int fd = own_tty(&kind), ldisc = 0 /* N_TTY */, get = -1;
        char what[64];
        snprintf(what, sizeof(what), "TIOCSETD N_TTY on %s", kind);
        REFUSE(what, ioctl(fd, TIOCSETD, &ldisc));
        ldisc = 0x7fff;
        snprintf(what, sizeof(what), "TIOCSETD unknown ldisc on %s", kind);
        REFUSE(what, ioctl(fd, TIOCSETD, &ldisc));
        ldisc = 0;
        REFUSE("TIOCSETD with high bits",
               syscall(SYS_ioctl, fd, (unsigned long) TIOCSETD | (1UL << 32), &ldisc));
        if (isatty(0))
                escape("fd 0 is a terminal");
        else
                REFUSE("TIOCSETD on fd 0", ioctl(0, TIOCSETD, &ldisc));
        /* Reading the discipline stays allowed (a query): not an escape, just noted. */
        if (ioctl(fd, TIOCGETD, &get) == 0)
                note("TIOCGETD reads %d", get);
        return finish();
}

static int a_kexec(int argc, char **argv) {
        (void) argc;
        (void) argv;
        /* Invalid on purpose (no such flag, too many segments): harmless even if allowed. */
        REFUSE("kexec_load", syscall(SYS_kexec_load, 0UL, 4096UL, NULL, 0x8000UL));
        REFUSE("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0UL, "", 0x8000UL));
        REFUSE("reboot", syscall(SYS_reboot, 0, 0, 0, NULL)); /* wrong magic */
        return finish();
}

static int a_modules(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const char image[4] = {0}; /* not an ELF file */
        REFUSE("init_module", syscall(SYS_init_module, image, sizeof(image), ""));
        REFUSE("finit_module", syscall(SYS_finit_module, -1, "", 0));
        REFUSE("delete_module", syscall(SYS_delete_module, "autoos_no_such_module", O_NONBLOCK));
        return finish();
}

static int a_dmesg(int argc, char **argv) {
        (void) argc;
        (void) argv;
        char buf[64];
        REFUSE("syslog READ_ALL", syscall(SYS_syslog, 3, buf, (int) sizeof(buf)));
        REFUSE("syslog SIZE_BUFFER", syscall(SYS_syslog, 10, NULL, 0));
        return finish();
}

static int a_clock(int argc, char **argv) {
        (void) argc;
        (void) argv;
        struct timespec ts = {0};
        struct timex tx;
        memset(&tx, 0, sizeof(tx)); /* modes 0: would only read */
        REFUSE("settimeofday", syscall(SYS_settimeofday, NULL, NULL));
        REFUSE("clock_settime", syscall(SYS_clock_settime, CLOCK_MONOTONIC, &ts));
        REFUSE("adjtimex", syscall(SYS_adjtimex, &tx));
        REFUSE("clock_adjtime", syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx));
        return finish();
}

static int a_personality(int argc, char **argv) {
        (void) argc;
        (void) argv;
        errno = 0;
        long r = syscall(SYS_personality, (unsigned long) (ADDR_NO_RANDOMIZE | READ_IMPLIES_EXEC));
        int e = errno;
        if (r >= 0 && privileged())
                note("personality allowed (privileged)");
        else
                must_refuse("personality ADDR_NO_RANDOMIZE|READ_IMPLIES_EXEC", r, e);
        return finish();
}

static int a_foreign_abi(int argc, char **argv) {
        (void) argc;
        (void) argv;
        fflush(stdout);
        long r = syscall(__X32_SYSCALL_BIT | SYS_getpid);
        escape("an x32 system call returned %ld", r);
#if defined(__x86_64__)
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "r8", "r9", "r10", "r11", "memory", "cc");
        escape("an i386 system call returned %ld", r);
#endif
        return finish();
}

/* ---- exhaustion --------------------------------------------------------------- */

static int a_memory(int argc, char **argv) {
        long limit_mib = argc > 2 ? atol(argv[2]) : 64;
        long cap = 2 * limit_mib; /* never more than twice the limit */
        for (long i = 0; i < cap; i++) {
                char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED) {
                        note("mmap failed at %ld MiB (%s)", i, ename(errno));
                        return finish();
                }
                memset(p, 0xa5, 1 << 20);
        }
        escape("touched %ld MiB under a %ld MiB limit", cap, limit_mib);
        return finish();
}

static int a_memory_tmpfs(int argc, char **argv) {
        long limit_mib = argc > 2 ? atol(argv[2]) : 64;
        long cap = 2 * limit_mib;
        const char *dirs[] = {"/dev/shm", "/tmp"};
        static char block[1 << 20];
        memset(block, 0x5a, sizeof(block));
        for (size_t d = 0; d < ELEMENTSOF(dirs); d++) {
                char path[64];
                snprintf(path, sizeof(path), "%s/adv-fill", dirs[d]);
                int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd < 0) {
                        note("%s %s", dirs[d], ename(errno));
                        continue;
                }
                long i;
                int e = 0;
                for (i = 0; i < cap; i++)
                        if (write(fd, block, sizeof(block)) != (ssize_t) sizeof(block)) {
                                e = errno;
                                break;
                        }
                close(fd);
                unlink(path);
                if (i >= cap)
                        escape("wrote %ld MiB to %s under a %ld MiB memory limit", cap, dirs[d], limit_mib);
                else
                        note("%s full at %ld MiB (%s)", dirs[d], i, ename(e));
        }
        return finish();
}

static int a_fork_bomb(int argc, char **argv) {
        long limit = argc > 2 ? atol(argv[2]) : 32;
        long cap = 4 * limit, n;
        for (n = 0; n < cap; n++) {
                pid_t pid = fork();
                if (pid == 0) {
                        sleep_ms(10000);
                        _exit(0);
                }
                if (pid < 0) {
                        note("fork refused after %ld children (%s)", n, ename(errno));
                        break;
                }
        }
        if (n >= cap) {
                escape("%ld processes under a limit of %ld", cap + 1, limit);
                return finish();
        }
        /* The sandbox should end the run now (pids_limit); if it does not, the limit held anyway. */
        sleep_ms(5000);
        if (n + 1 > limit)
                escape("%ld processes under a limit of %ld", n + 1, limit);
        return finish();
}

static void *idle_thread(void *arg) {
        sleep_ms(10000);
        return arg;
}

static int a_threads(int argc, char **argv) {
        long limit = argc > 2 ? atol(argv[2]) : 32;
        long cap = 4 * limit, n;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 64 << 10);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        for (n = 0; n < cap; n++) {
                pthread_t t;
                int r = pthread_create(&t, &attr, idle_thread, NULL);
                if (r != 0) {
                        note("thread refused after %ld (%s)", n, ename(r));
                        break;
                }
        }
        if (n >= cap) {
                escape("%ld threads under a limit of %ld", cap + 1, limit);
                return finish();
        }
        sleep_ms(5000);
        if (n + 1 > limit)
                escape("%ld tasks under a limit of %ld", n + 1, limit);
        return finish();
}

static volatile int spin_stop;

static void *spin(void *arg) {
        long long end = now_ms() + 8000;
        while (!spin_stop && now_ms() < end)
                ;
        return arg;
}

static int spin_threads(int n) {
        pthread_t t[8];
        int started = 0;
        for (int i = 0; i < n && i < 8; i++)
                if (pthread_create(&t[i], NULL, spin, NULL) == 0)
                        started++;
        spin(NULL);
        spin_stop = 1;
        for (int i = 0; i < started; i++)
                pthread_join(t[i], NULL);
        return started;
}

static int a_cpu_time(int argc, char **argv) {
        (void) argc;
        (void) argv;
        spin_threads(2);
        escape("spun 8 s on 3 threads without being stopped");
        return finish();
}

static int a_cpu_quota(int argc, char **argv) {
        (void) argc;
        (void) argv;
        spin_threads(4);
        escape("spun 8 s on 5 threads without being stopped");
        return finish();
}

static int a_work_space(int argc, char **argv) {
        long long limit = argc > 2 ? atoll(argv[2]) : 1 << 20;
        long long cap = 4 * limit + (1 << 20), n = 0;
        static char block[65536];
        memset(block, 'w', sizeof(block));
        int fd = open("/work/adv-fill", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                note("/work %s", ename(errno));
                return finish();
        }
        int e = 0;
        while (n < cap) {
                ssize_t k = write(fd, block, sizeof(block));
                if (k <= 0) {
                        e = errno;
                        break;
                }
                n += k;
        }
        close(fd);
        unlink("/work/adv-fill");
        if (n >= cap || n > limit + 65536)
                escape("wrote %lld bytes to /work sized %lld", n, limit);
        else
                note("/work full at %lld bytes (%s)", n, ename(e));
        return finish();
}

/* Creates empty files in each directory until refused (at most 50,000 each). */
static int fill_inodes(const char *const *dirs, size_t n_dirs) {
        const long cap = 50000;
        for (size_t d = 0; d < n_dirs; d++) {
                char base[64];
                snprintf(base, sizeof(base), "%s/adv-inodes", dirs[d]);
                if (mkdir(base, 0700) < 0) {
                        note("%s %s", dirs[d], ename(errno));
                        continue;
                }
                int dfd = open(base, O_DIRECTORY | O_CLOEXEC);
                long n;
                int e = 0;
                for (n = 0; n < cap; n++) {
                        char name[32];
                        snprintf(name, sizeof(name), "%ld", n);
                        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                        if (fd < 0) {
                                e = errno;
                                break;
                        }
                        close(fd);
                }
                if (n >= cap)
                        escape("%ld files in %s", n, dirs[d]);
                else
                        note("%s full at %ld files (%s)", dirs[d], n, ename(e));
                for (long i = 0; i < n; i++) {
                        char name[32];
                        snprintf(name, sizeof(name), "%ld", i);
                        unlinkat(dfd, name, 0);
                }
                close(dfd);
                rmdir(base);
        }
        return finish();
}

static int a_inodes(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const char *const dirs[] = {"/work", "/tmp"};
        return fill_inodes(dirs, ELEMENTSOF(dirs));
}

static int a_shm_inodes(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static const char *const dirs[] = {"/dev/shm"};
        return fill_inodes(dirs, ELEMENTSOF(dirs));
}

static int a_output_flood(int argc, char **argv) {
        (void) argc;
        (void) argv;
        static char block[65536];
        memset(block, 'o', sizeof(block));
        block[sizeof(block) - 1] = '\n';
        long long n = 0, cap = 64LL << 20;
        while (n < cap) {
                ssize_t k = write(1, block, sizeof(block));
                if (k <= 0)
                        break;
                n += k;
        }
        escape("wrote %lld bytes of output without being stopped", n);
        return finish();
}

static int a_fds(int argc, char **argv) {
        (void) argc;
        (void) argv;
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        struct rlimit more = {1 << 20, 1 << 20};
        errno = 0;
        long r = setrlimit(RLIMIT_NOFILE, &more);
        must_fail("raise RLIMIT_NOFILE to 1048576", r, errno);
        long n = 0, cap = 1 << 20;
        int e = 0;
        for (; n < cap; n++) {
                if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0) {
                        e = errno;
                        break;
                }
        }
        if (n >= cap || n > 65536)
                escape("%ld fds open", n);
        else
                note("%s after %ld fds (hard limit %llu)", ename(e), n + 3,
                     (unsigned long long) rl.rlim_max);
        return finish();
}

static int a_argv_huge(int argc, char **argv) {
        (void) argc;
        (void) argv;
        /* 16 MiB of argv, 128 strings of 128 KiB: more than execve takes (6 MiB at most). */
        enum { N = 128, LEN = 128 * 1024 - 1 };
        char **args = calloc(N + 3, sizeof(char *));
        if (!args)
                return error("out of memory");
        args[0] = "attack";
        args[1] = "argv-huge-child";
        for (int i = 0; i < N; i++) {
                args[i + 2] = malloc(LEN + 1);
                if (!args[i + 2])
                        return error("out of memory");
                memset(args[i + 2], 'a', LEN);
                args[i + 2][LEN] = '\0';
        }
        char *env[] = {NULL};
        errno = 0;
        long r = execve("/proc/self/exe", args, env);
        must_fail("execve with 16 MiB of argv", r, errno);
        /* The same in the environment. */
        char *small[] = {"attack", "argv-huge-child", NULL};
        errno = 0;
        r = execve("/proc/self/exe", small, args + 2);
        must_fail("execve with 16 MiB of environment", r, errno);
        return finish();
}

static int a_argv_huge_child(int argc, char **argv) {
        (void) argv;
        escape("execve took %d arguments of 128 KiB", argc - 2);
        return finish();
}

/* One of many concurrent runs: a little of everything, then its identity. */
static int a_concurrent(int argc, char **argv) {
        (void) argc;
        (void) argv;
        size_t sz = 16 << 20;
        char *p = malloc(sz);
        if (!p)
                return error("malloc 16 MiB failed");
        memset(p, 1, sz);
        pid_t kids[4];
        for (int i = 0; i < 4; i++) {
                kids[i] = fork();
                if (kids[i] == 0) {
                        sleep_ms(200);
                        _exit(0);
                }
        }
        for (int i = 0; i < 4; i++)
                if (kids[i] > 0)
                        waitpid(kids[i], NULL, 0);
        free(p);
        char host[64] = "";
        gethostname(host, sizeof(host));
        note("uid %d pid %d host %s", (int) getuid(), (int) getpid(), host);
        return finish();
}

/* ---- side channels --------------------------------------------------------------- */

static socklen_t abstract_addr(struct sockaddr_un *a, const char *name) {
        memset(a, 0, sizeof(*a));
        a->sun_family = AF_UNIX;
        size_t n = strlen(name);
        if (n > sizeof(a->sun_path) - 2)
                n = sizeof(a->sun_path) - 2;
        memcpy(a->sun_path + 1, name, n);
        return (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

/*
 * Names of the objects a pair shares: the victim run gets its whole name in
 * argv ("adv-victim-TOKEN"), the attacker only TOKEN, so that the attacker's
 * own command line never matches what it looks for.
 */
static const char *victim_name(const char *token) {
        static char name[128];
        snprintf(name, sizeof(name), "adv-victim-%s", token);
        return name;
}

static const char *host_name(const char *token) {
        static char name[128];
        snprintf(name, sizeof(name), "adv-host-%s", token);
        return name;
}

static key_t token_key(const char *token, int salt) {
        unsigned long h = 5381;
        for (const char *s = token; *s; s++)
                h = h * 33 + (unsigned char) *s;
        return (key_t) ((h + (unsigned long) salt) & 0x3fffffff) | 1;
}

/*
 * The other run of a pair: leaves something of everything another run might
 * reach (an abstract socket, /dev/shm and /tmp and /work files, SysV objects,
 * its name in its argv), says READY, and reports whoever connects.
 */
static int a_victim(int argc, char **argv) {
        if (argc < 3 || strncmp(argv[2], "adv-victim-", 11) != 0)
                return error("usage: victim adv-victim-TOKEN");
        const char *name = argv[2];
        char path[256];
        struct sockaddr_un a;
        socklen_t alen = abstract_addr(&a, name);
        int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (ls < 0 || bind(ls, (struct sockaddr *) &a, alen) < 0 || listen(ls, 8) < 0)
                note("abstract socket %s", ename(errno));
        static const char *const dirs[] = {"/dev/shm", "/tmp", "/work"};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                snprintf(path, sizeof(path), "%s/%s", dirs[i], name);
                int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        if (write(fd, name, strlen(name)) < 0)
                                note("write %s %s", path, ename(errno));
                        close(fd);
                }
        }
        int shm = shmget(token_key(name, 0), 4096, IPC_CREAT | 0666);
        int msq = msgget(token_key(name, 1), IPC_CREAT | 0666);
        printf("READY\n");
        fflush(stdout);
        long long end = now_ms() + 20000;
        while (now_ms() < end) {
                struct pollfd p = {ls, POLLIN, 0};
                if (ls >= 0 && poll(&p, 1, 100) > 0) {
                        int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
                        if (c >= 0) {
                                escape("another run connected to this run's abstract socket");
                                close(c);
                                break;
                        }
                } else if (ls < 0) {
                        sleep_ms(100);
                }
        }
        if (shm >= 0)
                shmctl(shm, IPC_RMID, NULL);
        if (msq >= 0)
                msgctl(msq, IPC_RMID, NULL);
        return finish();
}

/* Connects to an abstract name: 0 connected, else errno. */
static int abstract_connect(const char *name) {
        struct sockaddr_un a;
        socklen_t alen = abstract_addr(&a, name);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return errno;
        int r = connect(s, (struct sockaddr *) &a, alen) == 0 ? 0 : errno;
        close(s);
        return r;
}

static int a_abstract_unix(int argc, char **argv) {
        if (argc < 3)
                return error("usage: abstract-unix TOKEN");
        const char *names[2];
        char vname[128];
        snprintf(vname, sizeof(vname), "%s", victim_name(argv[2]));
        names[0] = vname;
        names[1] = host_name(argv[2]);
        /* Control: an abstract socket of our own is reachable, so a refusal below means something. */
        char own[128];
        snprintf(own, sizeof(own), "adv-own-%d", (int) getpid());
        struct sockaddr_un a;
        socklen_t alen = abstract_addr(&a, own);
        int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (ls < 0 || bind(ls, (struct sockaddr *) &a, alen) < 0 || listen(ls, 1) < 0) {
                note("no abstract socket of its own (%s)", ename(errno));
        } else {
                int r = abstract_connect(own);
                if (r == 0)
                        note("own abstract socket reachable");
                else
                        note("own abstract socket unreachable (%s)", ename(r));
        }
        for (int i = 0; i < 2; i++) {
                int r = abstract_connect(names[i]);
                if (r == 0)
                        escape("connected to %s's abstract socket", i == 0 ? "another run" : "the host");
                else
                        note("%s's %s", i == 0 ? "another run" : "the host", ename(r));
        }
        if (ls >= 0)
                close(ls);
        return finish();
}

static int a_dev_shm(int argc, char **argv) {
        if (argc < 3)
                return error("usage: dev-shm TOKEN");
        char vname[128];
        snprintf(vname, sizeof(vname), "%s", victim_name(argv[2]));
        const char *names[2] = {vname, host_name(argv[2])};
        /* Whatever is there before we write is someone else's. */
        DIR *d = opendir("/dev/shm");
        struct dirent *de;
        int own = 0;
        while (d && (de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        escape("/dev/shm holds %s", de->d_name);
        if (d)
                closedir(d);
        char path[256];
        snprintf(path, sizeof(path), "/dev/shm/adv-own-%d", (int) getpid());
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
                own = 1;
                close(fd);
                unlink(path);
        }
        if (own)
                note("own /dev/shm writable, empty before");
        else
                note("no /dev/shm of its own (%s)", ename(errno));
        for (int i = 0; i < 2; i++) {
                static const char *const where[] = {"/dev/shm", "/tmp", "/work"};
                for (size_t w = 0; w < ELEMENTSOF(where); w++) {
                        snprintf(path, sizeof(path), "%s/%s", where[w], names[i]);
                        if (access(path, F_OK) == 0)
                                escape("%s's %s visible", i == 0 ? "another run" : "the host", path);
                }
        }
        note("another run's and the host's shm files absent");
        return finish();
}

static int a_sysv_ipc(int argc, char **argv) {
        if (argc < 4)
                return error("usage: sysv-ipc TOKEN HOSTKEY");
        const char *vname = victim_name(argv[2]);
        char buf[8192];
        ssize_t n = read_small("/proc/sysvipc/shm", buf, sizeof(buf));
        if (n > 0) {
                int lines = 0;
                for (char *s = buf; *s; s++)
                        lines += *s == '\n';
                if (lines > 1)
                        escape("/proc/sysvipc/shm lists %d segments", lines - 1);
                else
                        note("/proc/sysvipc/shm empty");
        }
        errno = 0;
        long r = shmget(token_key(vname, 0), 0, 0);
        must_fail("another run's shm segment", r, errno);
        errno = 0;
        r = msgget(token_key(vname, 1), 0);
        must_fail("another run's message queue", r, errno);
        errno = 0;
        r = shmget((key_t) strtol(argv[3], NULL, 0), 0, 0);
        must_fail("the host's shm segment", r, errno);
        /* Control: a segment of our own works (where the trust level allows SysV IPC at all). */
        int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        if (id >= 0) {
                note("own segment works");
                shmctl(id, IPC_RMID, NULL);
        } else {
                note("own segment %s", ename(errno));
        }
        return finish();
}

static void env_in_file(const char *path, const char *canary) {
        char buf[65536];
        ssize_t n = read_small(path, buf, sizeof(buf));
        if (n <= 0)
                return;
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] == '\0')
                        buf[i] = '\n';
        if (strstr(buf, canary))
                escape("the host's canary is in %s", path);
}

static int a_host_env(int argc, char **argv) {
        if (argc < 3)
                return error("usage: host-env CANARY");
        extern char **environ;
        int n = 0;
        for (char **e = environ; *e; e++, n++)
                if (strstr(*e, argv[2]) || strncmp(*e, "AUTOOS_ADV_CANARY=", 18) == 0)
                        escape("environment holds %s", *e);
        env_in_file("/proc/self/environ", argv[2]);
        env_in_file("/proc/1/environ", argv[2]);
        note("%d variables, none of the host's", n);
        return finish();
}

struct other_run {
        const char *victim;
        int found;
};

static void find_victim(int pid, void *data) {
        struct other_run *o = data;
        char p[64], buf[4096];
        snprintf(p, sizeof(p), "/proc/%d/cmdline", pid);
        ssize_t n = read_small(p, buf, sizeof(buf));
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] == '\0')
                        buf[i] = ' ';
        if (n > 0 && strstr(buf, o->victim)) {
                escape("another run's process visible as pid %d", pid);
                o->found++;
        }
        static const char *const where[] = {"work", "tmp", "dev/shm"};
        for (size_t w = 0; w < ELEMENTSOF(where); w++) {
                char f[512];
                snprintf(f, sizeof(f), "/proc/%d/root/%s/%s", pid, where[w], o->victim);
                if (access(f, F_OK) == 0)
                        escape("another run's file visible as %s", f);
        }
}

static int a_other_run(int argc, char **argv) {
        if (argc < 4)
                return error("usage: other-run TOKEN VICTIM_HOST_PID");
        struct other_run o = {victim_name(argv[2]), 0};
        pid_t vpid = (pid_t) atoi(argv[3]);
        int n = for_each_pid(find_victim, &o);
        note("%d process%s here, none of the other run's", n, n == 1 ? "" : "es");
        static const char *const where[] = {"/work", "/tmp", "/dev/shm"};
        for (size_t w = 0; w < ELEMENTSOF(where); w++) {
                char f[512];
                snprintf(f, sizeof(f), "%s/%s", where[w], o.victim);
                if (access(f, F_OK) == 0)
                        escape("another run's file %s visible", f);
        }
        note("its files absent");
        if (vpid > 0) {
                errno = 0;
                long r = kill(vpid, 0);
                must_fail("signal its host pid", r, errno);
        }
        return finish();
}

static int connect_tcp(const char *ip, int port, int timeout_ms) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
        if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
                return EINVAL;
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s < 0)
                return errno;
        int r = 0;
        if (connect(s, (struct sockaddr *) &a, sizeof(a)) < 0) {
                r = errno;
                if (r == EINPROGRESS) {
                        struct pollfd p = {s, POLLOUT, 0};
                        if (poll(&p, 1, timeout_ms) <= 0) {
                                r = ETIMEDOUT;
                        } else {
                                socklen_t l = sizeof(r);
                                getsockopt(s, SOL_SOCKET, SO_ERROR, &r, &l);
                        }
                }
        }
        close(s);
        return r;
}

static int a_host_loopback(int argc, char **argv) {
        if (argc < 3)
                return error("usage: host-loopback PORT [HOSTIP]");
        int port = atoi(argv[2]);
        /* Control: our own loopback works (at trust levels that have it). */
        int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof(a);
        if (ls >= 0 && bind(ls, (struct sockaddr *) &a, sizeof(a)) == 0 && listen(ls, 1) == 0 &&
            getsockname(ls, (struct sockaddr *) &a, &alen) == 0) {
                int r = connect_tcp("127.0.0.1", ntohs(a.sin_port), 1000);
                if (r == 0)
                        note("own loopback works");
                else
                        note("own loopback %s", ename(r));
        } else {
                note("no loopback of its own (%s)", ename(errno));
        }
        if (ls >= 0)
                close(ls);
        int r = connect_tcp("127.0.0.1", port, 1000);
        if (r == 0)
                escape("connected to the host's 127.0.0.1:%d", port);
        else
                note("host's 127.0.0.1:%d %s", port, ename(r));
        if (argc > 3) {
                r = connect_tcp(argv[3], port, 1000);
                if (r == 0)
                        escape("connected to the host's %s:%d", argv[3], port);
                else
                        note("host's %s:%d %s", argv[3], port, ename(r));
        }
        return finish();
}

/* ---- time: descendants at a timeout --------------------------------------------- */

/* `attack sleeper MARKER SECONDS [stop|ignore|zombies]`: the descendant the time attacks leave. */
static int a_sleeper(int argc, char **argv) {
        int secs = argc > 3 ? atoi(argv[3]) : 30;
        const char *opt = argc > 4 ? argv[4] : "";
        if (secs < 0 || secs > MAX_SLEEP_S)
                secs = MAX_SLEEP_S;
        if (strcmp(opt, "ignore") == 0) {
                signal(SIGTERM, SIG_IGN);
                signal(SIGHUP, SIG_IGN);
                signal(SIGINT, SIG_IGN);
        } else if (strcmp(opt, "stop") == 0) {
                raise(SIGSTOP);
        } else if (strcmp(opt, "zombies") == 0) {
                for (int i = 0; i < 16; i++)
                        if (fork() == 0)
                                _exit(0);
        }
        sleep_ms(secs * 1000L);
        return 0;
}

static int a_timeout_setsid(int argc, char **argv) {
        if (argc < 3)
                return error("usage: timeout-setsid MARKER");
        char *plain[] = {"attack", "sleeper", argv[2], "30", "", NULL};
        char *ignore[] = {"attack", "sleeper", argv[2], "30", "ignore", NULL};
        for (int i = 0; i < 2; i++) {
                pid_t pid = fork();
                if (pid == 0) {
                        setsid();
                        spawn_self(i ? ignore : plain);
                        _exit(0);
                }
                if (pid > 0)
                        waitpid(pid, NULL, 0);
        }
        printf("READY\n");
        fflush(stdout);
        sleep_ms(30000);
        escape("still running after 30 s");
        return finish();
}

static int a_timeout_double_fork(int argc, char **argv) {
        if (argc < 3)
                return error("usage: timeout-double-fork MARKER");
        char *plain[] = {"attack", "sleeper", argv[2], "30", "ignore", NULL};
        for (int i = 0; i < 2; i++) {
                pid_t pid = fork();
                if (pid == 0) {
                        /* The middle process exits once its child runs: an orphan of pid 1. */
                        if (i)
                                setsid();
                        spawn_self(plain);
                        _exit(0);
                }
                if (pid > 0)
                        waitpid(pid, NULL, 0);
        }
        printf("READY\n");
        fflush(stdout);
        sleep_ms(30000);
        escape("still running after 30 s");
        return finish();
}

/* Zombies whose parent is ppid, as /proc shows them. */
static int count_zombies(pid_t ppid) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        int n = 0;
        while (d && (de = readdir(d))) {
                char p[300], buf[512], state;
                int pp;
                if (atoi(de->d_name) <= 0)
                        continue;
                snprintf(p, sizeof(p), "/proc/%s/stat", de->d_name);
                if (read_small(p, buf, sizeof(buf)) <= 0)
                        continue;
                char *rp = strrchr(buf, ')');
                if (rp && sscanf(rp + 1, " %c %d", &state, &pp) == 2 && state == 'Z' && pp == ppid)
                        n++;
        }
        if (d)
                closedir(d);
        return n;
}

static int a_zombies(int argc, char **argv) {
        if (argc < 3)
                return error("usage: zombies MARKER");
        /* Zombies of pid 1 (never reaped) and of a child that never reaps either. */
        for (int i = 0; i < 16; i++)
                if (fork() == 0)
                        _exit(0);
        char *parent[] = {"attack", "sleeper", argv[2], "30", "zombies", NULL};
        pid_t zp = spawn_self(parent);
        long long end = now_ms() + 5000;
        while (now_ms() < end && (count_zombies(getpid()) < 16 || (zp > 0 && count_zombies(zp) < 16)))
                sleep_ms(20);
        printf("READY\n");
        fflush(stdout);
        sleep_ms(30000);
        escape("still running after 30 s");
        return finish();
}

static int a_sigstop(int argc, char **argv) {
        if (argc < 3)
                return error("usage: sigstop MARKER");
        char *stopper[] = {"attack", "sleeper", argv[2], "30", "stop", NULL};
        int stopped = 0;
        for (int i = 0; i < 4; i++) {
                pid_t pid = spawn_self(stopper);
                int status;
                if (pid > 0 && waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status))
                        stopped++;
        }
        printf("INFO %d stopped\nREADY\n", stopped);
        fflush(stdout);
        sleep_ms(30000);
        escape("still running after 30 s");
        return finish();
}

static int a_orphan(int argc, char **argv) {
        if (argc < 3)
                return error("usage: orphan MARKER");
        char *daemon[] = {"attack", "sleeper", argv[2], "30", "ignore", NULL};
        pid_t pid = fork();
        if (pid == 0) {
                setsid();
                spawn_self(daemon);
                _exit(0);
        }
        if (pid > 0)
                waitpid(pid, NULL, 0);
        printf("READY\n");
        fflush(stdout);
        sleep_ms(300);
        note("pid 1 exits, leaving a setsid'd daemon behind");
        return finish();
}

/* ---- egress (issue 13): run inside an egress run, aimed at the node's targets ------------ */

/* "ADDR:PORT/PROTO" into a sockaddr and a protocol; "gw" for ADDR is the run's default gateway. */
static bool egress_dest(const char *s, struct sockaddr_in *sa, int *proto, char *label, size_t size) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", s);
        char *slash = strchr(buf, '/'), *colon = strrchr(buf, ':');
        if (!slash || !colon || colon > slash)
                return false;
        *slash = *colon = '\0';
        *proto = strcmp(slash + 1, "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP;
        *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t) atoi(colon + 1))};
        if (strcmp(buf, "gw") == 0) {
                /* /proc/net/route: the default route's gateway, little-endian hex. */
                FILE *f = fopen("/proc/net/route", "re");
                char line[256];
                unsigned dst, gw, flags;
                while (f && fgets(line, sizeof(line), f))
                        if (sscanf(line, "%*s %x %x %x", &dst, &gw, &flags) == 3 && dst == 0 && gw != 0) {
                                sa->sin_addr.s_addr = gw;
                                break;
                        }
                if (f)
                        fclose(f);
                if (!sa->sin_addr.s_addr)
                        return false;
        } else if (inet_pton(AF_INET, buf, &sa->sin_addr) != 1) {
                return false;
        }
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &sa->sin_addr, a, sizeof(a));
        snprintf(label, size, "%s:%u/%s", a, ntohs(sa->sin_port), *proto == IPPROTO_UDP ? "udp" : "tcp");
        return true;
}

/* A DNS question for NAME, type A, into q: its length. */
static size_t dns_query(unsigned char *q, size_t size, uint16_t id, const char *name) {
        size_t n = 12;
        memset(q, 0, 12);
        q[0] = (unsigned char) (id >> 8), q[1] = (unsigned char) id;
        q[2] = 0x01; /* recursion desired */
        q[5] = 1;    /* one question */
        for (const char *l = name; *l && n + 70 < size;) {
                size_t len = strcspn(l, ".");
                if (len > 63)
                        len = 63;
                q[n++] = (unsigned char) len;
                memcpy(q + n, l, len);
                n += len;
                l += len;
                if (*l == '.')
                        l++;
        }
        q[n++] = 0;
        q[n++] = 0, q[n++] = 1; /* A */
        q[n++] = 0, q[n++] = 1; /* IN */
        return n;
}

/*
 * egress-reach [+]DEST...: each DEST ("ADDR:PORT/tcp", "ADDR:PORT/udp", ADDR
 * "gw" for the run's gateway) tried at once for 3 s: a TCP connection that
 * completes, or an answer to a DNS question sent to a UDP port 53, got
 * through; an RST (ECONNREFUSED) means the packet left the node. Other UDP
 * is sent once (the node's result says whether it was refused). A "+" DEST
 * is the control, which must get through (else ERROR): the path works, so
 * the others were stopped by the policy.
 */
static int a_egress_reach(int argc, char **argv) {
        enum { MAXD = 16 };
        struct {
                char label[48];
                int fd, proto;
                bool control, done;
        } d[MAXD];
        int n = 0;
        for (int i = 2; i < argc && n < MAXD; i++) {
                struct sockaddr_in sa;
                bool control = argv[i][0] == '+';
                if (!egress_dest(argv[i] + control, &sa, &d[n].proto, d[n].label, sizeof(d[n].label)))
                        return error("egress-reach: bad destination %s (ADDR:PORT/tcp|udp)", argv[i]);
                d[n].control = control;
                d[n].done = false;
                printf("INFO dest=%s\n", d[n].label);
                d[n].fd = socket(AF_INET,
                                 (d[n].proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK |
                                         SOCK_CLOEXEC,
                                 0);
                if (d[n].fd < 0)
                        return error("socket: %s", ename(errno));
                if (d[n].proto == IPPROTO_UDP) {
                        unsigned char q[512];
                        size_t len = ntohs(sa.sin_port) == 53
                                             ? dns_query(q, sizeof(q), (uint16_t) (0x4100 + n),
                                                         "reach.example.test")
                                             : (memcpy(q, "x", 1), 1);
                        if (sendto(d[n].fd, q, len, 0, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                                note("%s: send %s", d[n].label, ename(errno));
                                d[n].done = true;
                        } else if (ntohs(sa.sin_port) != 53) {
                                note("%s: sent (no answer expected)", d[n].label);
                                d[n].done = true;
                        }
                } else if (connect(d[n].fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 &&
                           errno != EINPROGRESS) {
                        note("%s: connect %s", d[n].label, ename(errno));
                        d[n].done = true;
                }
                n++;
        }
        long long end = now_ms() + 3000;
        for (;;) {
                struct pollfd p[MAXD];
                int waiting = 0;
                for (int i = 0; i < n; i++) {
                        p[i] = (struct pollfd){d[i].done ? -1 : d[i].fd,
                                               d[i].proto == IPPROTO_UDP ? POLLIN : POLLOUT, 0};
                        waiting += !d[i].done;
                }
                long long left = end - now_ms();
                if (!waiting || left <= 0 || poll(p, (nfds_t) n, (int) left) <= 0)
                        break;
                for (int i = 0; i < n; i++) {
                        if (d[i].done || !p[i].revents)
                                continue;
                        d[i].done = true;
                        int e = 0;
                        socklen_t el = sizeof(e);
                        if (d[i].proto == IPPROTO_UDP) {
                                unsigned char r[512];
                                ssize_t k = recv(d[i].fd, r, sizeof(r), 0);
                                e = k > 0 ? 0 : errno;
                        } else {
                                getsockopt(d[i].fd, SOL_SOCKET, SO_ERROR, &e, &el);
                        }
                        if (d[i].control)
                                note("%s (the control) %s", d[i].label, e ? ename(e) : "answered");
                        else if (e == 0)
                                escape("%s answered", d[i].label);
                        else if (e == ECONNREFUSED)
                                escape("%s answered with a reset (the packet left the node)", d[i].label);
                        else
                                note("%s: %s", d[i].label, ename(e));
                }
        }
        bool control_failed = false;
        for (int i = 0; i < n; i++) {
                if (!d[i].done) {
                        if (d[i].control)
                                control_failed = true;
                        else
                                note("%s: no answer in 3 s", d[i].label);
                }
                close(d[i].fd);
        }
        if (control_failed)
                return error("the control destination did not answer: the path itself does not work");
        return finish();
}

/*
 * egress-listen PORT SECONDS: another run's side of egress-other-run: says its
 * address and READY, then waits for a connection on PORT, which got through.
 */
static int a_egress_listen(int argc, char **argv) {
        if (argc < 4)
                return error("usage: egress-listen PORT SECONDS");
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) atoi(argv[2]))};
        int one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ls < 0 || bind(ls, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(ls, 8) < 0)
                return error("listen on port %s: %s", argv[2], ename(errno));
        char addr[INET_ADDRSTRLEN] = "";
        /* The run's own address: the source a datagram toward any documentation address would take. */
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in probe = {.sin_family = AF_INET, .sin_port = htons(9)}, me;
        socklen_t ml = sizeof(me);
        inet_pton(AF_INET, "203.0.113.1", &probe.sin_addr);
        if (s >= 0 && connect(s, (struct sockaddr *) &probe, sizeof(probe)) == 0 &&
            getsockname(s, (struct sockaddr *) &me, &ml) == 0)
                inet_ntop(AF_INET, &me.sin_addr, addr, sizeof(addr));
        if (s >= 0)
                close(s);
        if (!addr[0])
                return error("the run has no address of its own");
        printf("INFO addr=%s\nREADY\n", addr);
        long long seconds = atoi(argv[3]),
                  end = now_ms() + 1000 * (seconds > 0 && seconds < MAX_SLEEP_S ? seconds : 10);
        while (now_ms() < end) {
                struct pollfd p = {ls, POLLIN, 0};
                if (poll(&p, 1, 100) > 0) {
                        int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
                        if (c >= 0) {
                                escape("another run connected to this run's port %s", argv[2]);
                                close(c);
                                break;
                        }
                }
        }
        note("nothing reached port %s", argv[2]);
        return finish();
}

/* One rtnetlink request with an ack: 0 or a negative errno. */
static int rtnl_request(struct nlmsghdr *h) {
        int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (s < 0)
                return -errno;
        struct sockaddr_nl k = {.nl_family = AF_NETLINK};
        h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
        h->nlmsg_seq = 1;
        struct timeval tv = {2, 0};
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        int r = -EIO;
        if (sendto(s, h, h->nlmsg_len, 0, (struct sockaddr *) &k, sizeof(k)) < 0) {
                r = -errno;
        } else {
                char buf[4096];
                ssize_t n = recv(s, buf, sizeof(buf), 0);
                struct nlmsghdr *a = (struct nlmsghdr *) buf;
                if (n < 0)
                        r = -errno;
                else if (n >= (ssize_t) (sizeof(*a) + sizeof(struct nlmsgerr)) &&
                         a->nlmsg_type == NLMSG_ERROR)
                        r = ((struct nlmsgerr *) NLMSG_DATA(a))->error;
        }
        close(s);
        return r;
}

static void rta_add(struct nlmsghdr *h, unsigned short type, const void *data, size_t len) {
        struct rtattr *a = (struct rtattr *) ((char *) h + NLMSG_ALIGN(h->nlmsg_len));
        a->rta_type = type;
        a->rta_len = (unsigned short) RTA_LENGTH(len);
        memcpy(RTA_DATA(a), data, len);
        h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/*
 * egress-spoof SERVER:PORT: ARP and IP spoofing toward the node's end of the
 * link: packet sockets (forged ARP, forged frames) and raw sockets refused
 * by the filter; the run's address, its link's MAC and its routes not
 * changeable; a TCP connection to the allowlisted SERVER from a forged
 * source address (IP_FREEBIND, no privilege needed) never completes.
 */
static int a_egress_spoof(int argc, char **argv) {
        if (argc < 3)
                return error("usage: egress-spoof SERVER:PORT");
        REFUSE_FD("socket AF_PACKET raw (forged ARP)",
                  socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(0x0806)));
        REFUSE_FD("socket AF_PACKET dgram", socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(0x0806)));
        REFUSE_FD("socket raw ip (forged source)", socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW));
        unsigned ifindex = if_nametoindex("eth0");
        if (!ifindex)
                return error("the run has no eth0: not an egress run");
        struct {
                struct nlmsghdr h;
                union {
                        struct ifaddrmsg a;
                        struct ifinfomsg l;
                        struct rtmsg r;
                };
                char attrs[256];
        } m;
        struct in_addr forged;
        inet_pton(AF_INET, "198.51.100.77", &forged);
        memset(&m, 0, sizeof(m));
        m.h = (struct nlmsghdr){.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)),
                                .nlmsg_type = RTM_NEWADDR,
                                .nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL};
        m.a = (struct ifaddrmsg){.ifa_family = AF_INET, .ifa_prefixlen = 30, .ifa_index = ifindex};
        rta_add(&m.h, IFA_LOCAL, &forged, 4);
        rta_add(&m.h, IFA_ADDRESS, &forged, 4);
        int r = rtnl_request(&m.h);
        must_fail("add address 198.51.100.77 to eth0", r, -r);
        memset(&m, 0, sizeof(m));
        m.h = (struct nlmsghdr){.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)),
                                .nlmsg_type = RTM_NEWLINK};
        m.l = (struct ifinfomsg){.ifi_family = AF_UNSPEC, .ifi_index = (int) ifindex};
        static const unsigned char mac[6] = {0x02, 0, 0, 0, 0, 0x01};
        rta_add(&m.h, IFLA_ADDRESS, mac, sizeof(mac));
        r = rtnl_request(&m.h);
        must_fail("set eth0's MAC", r, -r);
        memset(&m, 0, sizeof(m));
        m.h = (struct nlmsghdr){.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg)),
                                .nlmsg_type = RTM_NEWROUTE,
                                .nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL};
        m.r = (struct rtmsg){.rtm_family = AF_INET,
                             .rtm_dst_len = 24,
                             .rtm_table = RT_TABLE_MAIN,
                             .rtm_protocol = RTPROT_BOOT,
                             .rtm_scope = RT_SCOPE_LINK,
                             .rtm_type = RTN_UNICAST};
        struct in_addr net;
        inet_pton(AF_INET, "192.0.2.0", &net);
        rta_add(&m.h, RTA_DST, &net, 4);
        rta_add(&m.h, RTA_OIF, &ifindex, 4);
        r = rtnl_request(&m.h);
        must_fail("add a route 192.0.2.0/24 dev eth0", r, -r);

        /* A forged source address without privilege: IP_FREEBIND. */
        struct sockaddr_in server;
        int proto;
        char label[48];
        if (!egress_dest(argv[2], &server, &proto, label, sizeof(label)))
                return error("egress-spoof: bad destination %s", argv[2]);
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr = forged};
        if (s < 0 || setsockopt(s, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) < 0 ||
            bind(s, (struct sockaddr *) &src, sizeof(src)) < 0) {
                note("bind to the forged 198.51.100.77 %s", ename(errno));
        } else if (connect(s, (struct sockaddr *) &server, sizeof(server)) < 0 && errno != EINPROGRESS) {
                note("connect from 198.51.100.77 %s", ename(errno));
        } else {
                struct pollfd p = {s, POLLOUT, 0};
                int e = 0;
                socklen_t el = sizeof(e);
                if (poll(&p, 1, 3000) > 0 && getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0)
                        escape("a connection to %s from the forged 198.51.100.77 completed", label);
                else
                        note("%s from the forged 198.51.100.77: %s", label,
                             e ? ename(e) : "no answer in 3 s");
        }
        if (s >= 0)
                close(s);
        return finish();
}

/* A TCP connection to DEST, with 30 s send and receive timeouts; -1 with errno. */
static int egress_connect(const char *dest, char *label, size_t size) {
        struct sockaddr_in sa;
        int proto;
        if (!egress_dest(dest, &sa, &proto, label, size)) {
                errno = EINVAL;
                return -1;
        }
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct timeval tv = {30, 0};
        if (s < 0)
                return -1;
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(s, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int e = errno;
                close(s);
                errno = e;
                return -1;
        }
        return s;
}

/*
 * egress-bandwidth SERVER:PORT/tcp PATH SINK:PORT/tcp BYTES: downloads PATH
 * from the HTTP server and uploads BYTES (at most 64 MiB) to the sink, each
 * as fast as it can; reports each rate (bytes over the time from connect to
 * the peer's end of stream) for the runner to compare with the limit.
 */
static int a_egress_bandwidth(int argc, char **argv) {
        if (argc < 6)
                return error("usage: egress-bandwidth SERVER:PORT/tcp PATH SINK:PORT/tcp BYTES");
        char label[48], req[512];
        static char buf[65536];
        long long t0 = now_ms(), down = 0, up = 0, want = atoll(argv[5]);
        if (want <= 0 || want > (64ll << 20))
                return error("egress-bandwidth: BYTES must be 1 to 64 MiB");
        int s = egress_connect(argv[2], label, sizeof(label));
        if (s < 0)
                return error("connect %s: %s", argv[2], ename(errno));
        snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %.*s\r\n\r\n", argv[3],
                 (int) strcspn(argv[2], ":"), argv[2]);
        if (write(s, req, strlen(req)) != (ssize_t) strlen(req))
                return error("send the request to %s: %s", label, ename(errno));
        for (ssize_t k; (k = read(s, buf, sizeof(buf))) > 0 && down < (256ll << 20);)
                down += k;
        long long down_ms = now_ms() - t0;
        close(s);
        t0 = now_ms();
        if ((s = egress_connect(argv[4], label, sizeof(label))) < 0)
                return error("connect %s: %s", argv[4], ename(errno));
        memset(buf, 0, sizeof(buf));
        while (up < want) {
                ssize_t k = write(s, buf,
                                  (size_t) (want - up < (long long) sizeof(buf) ? want - up
                                                                                : (long long) sizeof(buf)));
                if (k <= 0)
                        break;
                up += k;
        }
        shutdown(s, SHUT_WR);
        while (read(s, buf, sizeof(buf)) > 0) /* until the sink has read it all and closes */
                ;
        long long up_ms = now_ms() - t0;
        close(s);
        printf("INFO down_bytes=%lld down_ms=%lld up_bytes=%lld up_ms=%lld\n", down, down_ms, up, up_ms);
        note("downloaded %lld bytes in %lld ms, uploaded %lld in %lld ms", down, down_ms, up, up_ms);
        return finish();
}

/*
 * egress-conns SINK:PORT/tcp N: N connections at once (at most 256), held 3 s:
 * reports how many completed, for the runner to compare with the limit.
 */
static int a_egress_conns(int argc, char **argv) {
        if (argc < 4)
                return error("usage: egress-conns SINK:PORT/tcp N");
        struct sockaddr_in sa;
        int proto, n = atoi(argv[3]), fds[256], established = 0;
        char label[48];
        if (!egress_dest(argv[2], &sa, &proto, label, sizeof(label)) || n < 1 || n > 256)
                return error("egress-conns: bad arguments");
        for (int i = 0; i < n; i++) {
                fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fds[i] >= 0 && connect(fds[i], (struct sockaddr *) &sa, sizeof(sa)) < 0 &&
                    errno != EINPROGRESS) {
                        close(fds[i]);
                        fds[i] = -1;
                }
        }
        sleep_ms(3000);
        for (int i = 0; i < n; i++) {
                struct pollfd p = {fds[i], POLLOUT, 0};
                int e = -1;
                socklen_t el = sizeof(e);
                if (fds[i] >= 0 && poll(&p, 1, 0) > 0 &&
                    getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0)
                        established++;
                if (fds[i] >= 0)
                        close(fds[i]);
        }
        printf("INFO established=%d tried=%d\n", established, n);
        note("%d of %d connections to %s completed", established, n, label);
        return finish();
}

/*
 * egress-dns-flood RESOLVER N: N queries carrying data in their names
 * ("d<i>-<base32>.smuggle.test"), half from a socket each, half down one
 * socket, as fast as it can, and the answers within 3 s; then, for 3 s, up to
 * N more down that socket, each after the last one's answer (a paced tunnel).
 * Reports the answers for the runner to compare with the rate limit.
 */
static int a_egress_dns_flood(int argc, char **argv) {
        if (argc < 4)
                return error("usage: egress-dns-flood RESOLVER N");
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
        int n = atoi(argv[3]);
        if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1 || n < 2 || n > 1000)
                return error("egress-dns-flood: bad arguments");
        int fds[1001], nfd = 0, answered = 0;
        long long t0 = now_ms();
        for (int i = 0; i < n; i++) {
                unsigned char q[512];
                char name[128];
                snprintf(name, sizeof(name), "d%d-onswg4tfoqfa.smuggle.test", i);
                size_t len = dns_query(q, sizeof(q), (uint16_t) i, name);
                if (i < n / 2 || nfd == n / 2) {
                        int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                        if (s < 0)
                                break;
                        fds[nfd++] = s;
                }
                if (sendto(fds[nfd - 1], q, len, 0, (struct sockaddr *) &sa, sizeof(sa)) < 0 &&
                    errno != EPERM)
                        break;
        }
        long long end = now_ms() + 3000;
        for (long long left; (left = end - now_ms()) > 0;) {
                struct pollfd p[1001];
                for (int i = 0; i < nfd; i++)
                        p[i] = (struct pollfd){fds[i], POLLIN, 0};
                if (poll(p, (nfds_t) nfd, (int) left) <= 0)
                        break;
                for (int i = 0; i < nfd; i++) {
                        unsigned char r[512];
                        while ((p[i].revents & POLLIN) && recv(fds[i], r, sizeof(r), 0) > 0)
                                answered++;
                }
        }
        int burst = answered, paced = 0;
        /* Then paced down the one socket: each query after the last one's answer, as a tunnel
         * would, so that after the first answer the flow is no longer new to conntrack. */
        int s = fds[nfd - 1];
        end = now_ms() + 3000;
        for (int i = 0; i < n && now_ms() < end; i++) {
                unsigned char q[512], r[512];
                char name[128];
                snprintf(name, sizeof(name), "p%d-onswg4tfoqfa.smuggle.test", i);
                size_t len = dns_query(q, sizeof(q), (uint16_t) (0x8000 + i), name);
                if (sendto(s, q, len, 0, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        break;
                struct pollfd p = {s, POLLIN, 0};
                long long left = end - now_ms();
                if (left > 0 && poll(&p, 1, (int) (left < 300 ? left : 300)) > 0 &&
                    recv(s, r, sizeof(r), 0) > 0)
                        paced++;
        }
        answered += paced;
        long long ms = now_ms() - t0;
        for (int i = 0; i < nfd; i++)
                close(fds[i]);
        printf("INFO answered=%d sent=%d ms=%lld\n", answered, 2 * n, ms);
        note("%d of %d smuggling queries to %s answered at once, %d more paced down one socket, in %lld ms",
             burst, n, argv[2], paced, ms);
        return finish();
}

static int a_selftest_escape(int argc, char **argv) {
        (void) argc;
        (void) argv;
        escape("selftest: this attack always reports an escape, to show the harness can fail");
        return finish();
}

static const struct attack {
        const char *name;
        int (*fn)(int argc, char **argv);
} attacks[] = {
        {"mount", a_mount},
        {"mount-api", a_mount_api},
        {"open-tree", a_open_tree},
        {"pivot-root", a_pivot_root},
        {"chroot", a_chroot},
        {"unshare", a_unshare},
        {"setns", a_setns},
        {"clone3-namespaces", a_clone3_namespaces},
        {"clone-namespaces", a_clone_namespaces},
        {"proc-sys-core-pattern", a_proc_sys_core_pattern},
        {"proc-sys-writes", a_proc_sys_writes},
        {"proc-masked", a_proc_masked},
        {"sys-writes", a_sys_writes},
        {"cgroup-escape", a_cgroup_escape},
        {"ptrace", a_ptrace},
        {"process-vm", a_process_vm},
        {"open-by-handle", a_open_by_handle},
        {"mknod", a_mknod},
        {"dev-mem", a_dev_mem},
        {"dev-kmsg", a_dev_kmsg},
        {"dev-block", a_dev_block},
        {"leaked-fds", a_leaked_fds},
        {"host-cwd", a_host_cwd},
        {"proc-self-exe", a_proc_self_exe},
        {"proc-root", a_proc_root},
        {"host-file", a_host_file},
        {"setuid", a_setuid},
        {"io-uring", a_io_uring},
        {"bpf", a_bpf},
        {"keyctl", a_keyctl},
        {"userfaultfd", a_userfaultfd},
        {"perf-event", a_perf_event},
        {"af-vsock", a_af_vsock},
        {"af-alg", a_af_alg},
        {"af-packet", a_af_packet},
        {"raw-socket", a_raw_socket},
        {"netlink", a_netlink},
        {"tiocsti", a_tiocsti},
        {"tioclinux", a_tioclinux},
        {"tiocsetd", a_tiocsetd},
        {"kexec", a_kexec},
        {"modules", a_modules},
        {"dmesg", a_dmesg},
        {"clock", a_clock},
        {"personality", a_personality},
        {"foreign-abi", a_foreign_abi},
        {"memory", a_memory},
        {"memory-tmpfs", a_memory_tmpfs},
        {"fork-bomb", a_fork_bomb},
        {"threads", a_threads},
        {"cpu-time", a_cpu_time},
        {"cpu-quota", a_cpu_quota},
        {"work-space", a_work_space},
        {"inodes", a_inodes},
        {"shm-inodes", a_shm_inodes},
        {"output-flood", a_output_flood},
        {"fds", a_fds},
        {"argv-huge", a_argv_huge},
        {"argv-huge-child", a_argv_huge_child},
        {"concurrent", a_concurrent},
        {"victim", a_victim},
        {"abstract-unix", a_abstract_unix},
        {"dev-shm", a_dev_shm},
        {"sysv-ipc", a_sysv_ipc},
        {"host-env", a_host_env},
        {"other-run", a_other_run},
        {"host-loopback", a_host_loopback},
        {"sleeper", a_sleeper},
        {"timeout-setsid", a_timeout_setsid},
        {"timeout-double-fork", a_timeout_double_fork},
        {"zombies", a_zombies},
        {"sigstop", a_sigstop},
        {"orphan", a_orphan},
        {"egress-reach", a_egress_reach},
        {"egress-listen", a_egress_listen},
        {"egress-spoof", a_egress_spoof},
        {"egress-bandwidth", a_egress_bandwidth},
        {"egress-conns", a_egress_conns},
        {"egress-dns-flood", a_egress_dns_flood},
        {"selftest-escape", a_selftest_escape},
};

int main(int argc, char **argv) {
        /* Unbuffered: READY must reach the runner at once, and a verdict must not be lost to a kill. */
        setvbuf(stdout, NULL, _IONBF, 0);
        if (argc < 2) {
                fprintf(stderr, "usage: %s NAME [ARG]... | --list\n", argv[0]);
                return 64;
        }
        if (strcmp(argv[1], "--list") == 0) {
                for (size_t i = 0; i < ELEMENTSOF(attacks); i++)
                        printf("%s\n", attacks[i].name);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(attacks); i++)
                if (strcmp(argv[1], attacks[i].name) == 0)
                        return attacks[i].fn(argc, argv);
        fprintf(stderr, "%s: unknown attack %s (see --list)\n", argv[0], argv[1]);
        return 64;
}
