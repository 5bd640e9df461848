/* SPDX-License-Identifier: MIT */
/*
 * The seccomp profiles, without root: for each trust level, a child loads the
 * filter, hands the listener back over a socketpair (as the real sandbox
 * does) and runs tests/sandbox/probe; the parent answers notifications with
 * sbx_seccomp_handle() and collects the names. A refusal counts only when
 * the probe saw EPERM and the supervisor was told the expected syscall:
 * outside namespaces the kernel refuses many of these calls by itself, but
 * only the filter produces a notification.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"
#include "tests/tap.h"

extern char **environ;

enum {
        R = 1 << SBX_TRUST_RESTRICTED,
        S = 1 << SBX_TRUST_STANDARD,
        E = 1 << SBX_TRUST_ELEVATED,
        P = 1 << SBX_TRUST_PRIVILEGED,
        ALL = R | S | E | P,
        RSE = R | S | E,
};

/*
 * refused: the levels that must refuse it, reporting `syscall`. Elsewhere the
 * probe must exit with allowed_exit (1: the call succeeded; 2: it failed
 * harmlessly with another errno) and nothing may be reported. killed: the
 * filter kills the probe with SIGSYS at every level.
 */
static const struct expect {
        const char *probe;
        const char *syscall;
        unsigned refused;
        int allowed_exit;
        bool killed;
} expects[] = {
        {"mount", "mount", ALL, 0, false},
        {"umount2", "umount2", ALL, 0, false},
        {"pivot_root", "pivot_root", ALL, 0, false},
        {"chroot", "chroot", ALL, 0, false},
        {"fsopen", "fsopen", ALL, 0, false},
        {"fsconfig", "fsconfig", ALL, 0, false},
        {"fsmount", "fsmount", ALL, 0, false},
        {"fspick", "fspick", ALL, 0, false},
        {"move_mount", "move_mount", ALL, 0, false},
        {"open_tree", "open_tree", ALL, 0, false},
        {"mount_setattr", "mount_setattr", ALL, 0, false},
        {"unshare-user", "unshare", ALL, 0, false},
        {"unshare-net", "unshare", ALL, 0, false},
        {"setns", "setns", ALL, 0, false},
        {"clone-newuser", "clone", ALL, 0, false},
        {"clone-newns", "clone", ALL, 0, false},
        {"clone3-newuser", "clone3", ALL, 0, false},
        {"keyctl", "keyctl", ALL, 0, false},
        {"add_key", "add_key", ALL, 0, false},
        {"request_key", "request_key", ALL, 0, false},
        {"bpf", "bpf", ALL, 0, false},
        {"perf_event_open", "perf_event_open", ALL, 0, false},
        {"userfaultfd", "userfaultfd", ALL, 0, false},
        {"io_uring_setup", "io_uring_setup", ALL, 0, false},
        {"io_uring_enter", "io_uring_enter", ALL, 0, false},
        {"io_uring_register", "io_uring_register", ALL, 0, false},
        {"kexec_load", "kexec_load", ALL, 0, false},
        {"kexec_file_load", "kexec_file_load", ALL, 0, false},
        {"init_module", "init_module", ALL, 0, false},
        {"finit_module", "finit_module", ALL, 0, false},
        {"delete_module", "delete_module", ALL, 0, false},
        {"open_by_handle_at", "open_by_handle_at", ALL, 0, false},
        {"name_to_handle_at", "name_to_handle_at", ALL, 0, false},
        {"reboot", "reboot", ALL, 0, false},
        {"swapon", "swapon", ALL, 0, false},
        {"swapoff", "swapoff", ALL, 0, false},
        {"settimeofday", "settimeofday", ALL, 0, false},
        {"clock_settime", "clock_settime", ALL, 0, false},
        {"clock_adjtime", "clock_adjtime", ALL, 0, false},
        {"adjtimex", "adjtimex", ALL, 0, false},
        {"acct", "acct", ALL, 0, false},
        {"syslog", "syslog", ALL, 0, false},
        {"ptrace", "ptrace", RSE, 2 /* ESRCH */, false},
        {"process_vm_readv", "process_vm_readv", RSE, 1, false},
        {"kcmp", "kcmp", RSE, 1, false},
        {"personality", "personality", RSE, 1, false},
        {"personality-query", "personality", R, 1, false},
        {"mknod-char", "mknod", ALL, 0, false},
        {"mknod-block", "mknodat", ALL, 0, false},
        {"mknod-fifo", "mknodat", 0, 1, false},
        {"ioctl-tiocsti", "ioctl", ALL, 0, false},
        {"ioctl-tiocsti-high", "ioctl", ALL, 0, false},
        {"ioctl-tioclinux", "ioctl", ALL, 0, false},
        {"ioctl-tiocsetd", "ioctl", ALL, 0, false},
        {"ioctl-tiocsetd-high", "ioctl", ALL, 0, false},
        {"ioctl-unlisted", "ioctl", ALL, 0, false},
        {"ioctl-tcgets", "ioctl", 0, 2 /* ENOTTY */, false},
        {"ioctl-tiocgwinsz", "ioctl", 0, 2 /* ENOTTY */, false},
        {"ioctl-fionread", "ioctl", 0, 1, false},
        {"socket-packet", "socket", ALL, 0, false},
        {"socket-vsock", "socket", ALL, 0, false},
        {"socket-alg", "socket", ALL, 0, false},
        {"socket-key", "socket", ALL, 0, false},
        {"socket-raw4", "socket", ALL, 0, false},
        {"socket-raw6", "socket", ALL, 0, false},
        {"socket-inet-packet", "socket", ALL, 0, false},
        {"socket-unix", "socket", 0, 1, false},
        {"socket-inet", "socket", R, 1, false},
        {"socket-inet6", "socket", R, 1, false},
        {"socket-netlink", "socket", R, 1, false},
        {"netlink-audit", "socket", ALL, 0, false},
        {"netlink-uevent", "socket", ALL, 0, false},
        {"netlink-sock-diag", "socket", ALL, 0, false},
        {"netlink-generic", "socket", ALL, 0, false},
        {"netlink-netfilter", "socket", ALL, 0, false},
        {"netlink-xfrm", "socket", ALL, 0, false},
        {"netlink-audit-high", "socket", ALL, 0, false},
        {"netlink-route-high", "socket", R, 1, false},
        {"socketpair-unix", "socketpair", 0, 1, false},
        {"clone-plain", "clone", 0, 1, false},
        {"clone3-plain", "clone3", 0, 1, false},
        {"seccomp-stack", "seccomp", 0, 1, false},
        {"sethostname", "sethostname", ALL, 0, false},
        {"setdomainname", "setdomainname", ALL, 0, false},
        {"iopl", "iopl", ALL, 0, false},
        {"ioperm", "ioperm", ALL, 0, false},
        {"quotactl", "quotactl", ALL, 0, false},
        {"fanotify_init", "fanotify_init", ALL, 0, false},
        {"uselib", "uselib", ALL, 0, false},
        {"sysfs", "sysfs", ALL, 0, false},
        {"ustat", "ustat", ALL, 0, false},
        {"x32-getpid", NULL, 0, 0, true},
        {"i386-getpid", NULL, 0, 0, true},
        {"x32-thread", NULL, 0, 0, true},
};

static const char *level_name(sbx_trust l) {
        static const char *const names[_SBX_TRUST_MAX] = {"restricted", "standard", "elevated",
                                                          "privileged"};
        return l >= 0 && l < _SBX_TRUST_MAX ? names[l] : "?";
}

static size_t argc_of(char *const argv[]) {
        size_t n = 0;
        while (argv[n])
                n++;
        return n;
}

#define MAX_NAMES 64
#define RUN_TIMEOUT_MS 30000

typedef struct outcome {
        int status;     /* from waitpid */
        char out[8192]; /* stdout and stderr, truncated */
        size_t out_len;
        char names[MAX_NAMES][64]; /* reported names, in order, "" included */
        size_t n_names;
        size_t n_reports; /* every report, past MAX_NAMES too */
        bool timed_out;
} outcome;

static bool has_name(const outcome *o, const char *name) {
        for (size_t i = 0; i < o->n_names; i++)
                if (strcmp(o->names[i], name) == 0)
                        return true;
        return false;
}

/* Reported names other than "", comma-separated, for diagnostics and checks. */
static const char *names_str(const outcome *o) {
        static char buf[1024];
        size_t n = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < o->n_names; i++) {
                if (o->names[i][0] == '\0')
                        continue;
                int w = snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? "," : "", o->names[i]);
                if (w < 0 || (size_t) w >= sizeof(buf) - n)
                        break;
                n += (size_t) w;
        }
        return buf;
}

static int send_fd(int sock, int fd) {
        char byte = 'L';
        struct iovec iov = {&byte, 1};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } c;
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

        memset(&c, 0, sizeof(c));
        msg.msg_control = c.buf;
        msg.msg_controllen = sizeof(c.buf);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* The listener fd, or -1 when the child sent a load error (a byte, no fd) or hung up. */
static int recv_fd(int sock, int *ret_load_error) {
        int load_error = 0;
        struct iovec iov = {&load_error, sizeof(load_error)};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } c;
        struct msghdr msg = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf)};
        struct pollfd p = {.fd = sock, .events = POLLIN};

        if (poll(&p, 1, RUN_TIMEOUT_MS) <= 0)
                return -1;
        ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n <= 0)
                return -1;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(cm), sizeof(int));
                        return fd;
                }
        *ret_load_error = n == (ssize_t) sizeof(int) ? load_error : -EIO;
        return -1;
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/*
 * Runs argv (or, when fn is given, fn(argv) in the forked child: its return
 * value is the exit status) under filter f, supervising it like the sandbox
 * will. Returns 0 with o filled, or a negative errno when the harness itself
 * failed.
 */
static int run_under_fn(const sbx_seccomp_filter *f, int (*fn)(char *const argv[]), char *const argv[],
                        outcome *o) {
        int sv[2], outp[2];
        pid_t pid;

        memset(o, 0, sizeof(*o));
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        if (pipe2(outp, O_CLOEXEC) < 0) {
                close(sv[0]);
                close(sv[1]);
                return -errno;
        }
        fflush(stdout);
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (null < 0 || dup2(null, 0) < 0 || dup2(outp[1], 1) < 0 || dup2(outp[1], 2) < 0)
                        _exit(126);
                /* From here on only what every profile allows: sendmsg, close, write, execve. */
                int fd = sbx_seccomp_load(f);
                if (fd < 0) {
                        (void) !write(sv[1], &fd, sizeof(fd));
                        _exit(126);
                }
                if (send_fd(sv[1], fd) < 0)
                        _exit(126);
                close(fd);
                if (fn)
                        _exit(fn(argv));
                execve(argv[0], argv, environ);
                _exit(127);
        }

        close(sv[1]);
        close(outp[1]);
        int load_error = 0;
        int listener = recv_fd(sv[0], &load_error);
        close(sv[0]);
        if (listener < 0) {
                close(outp[0]);
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return load_error < 0 ? load_error : -EIO;
        }

        int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        uint64_t deadline = now_ms() + RUN_TIMEOUT_MS;
        bool exited = false, out_open = true;
        while (!exited || out_open) {
                struct pollfd p[3] = {
                        {.fd = listener, .events = POLLIN},
                        {.fd = out_open ? outp[0] : -1, .events = POLLIN},
                        {.fd = exited ? -1 : pidfd, .events = POLLIN},
                };
                uint64_t now = now_ms();
                if (now >= deadline) {
                        o->timed_out = true;
                        kill(pid, SIGKILL);
                        break;
                }
                int n = poll(p, 3, (int) MIN(deadline - now, 100));
                if (n < 0 && errno != EINTR)
                        break;
                if (p[0].revents & POLLIN) {
                        char name[64];
                        int r = sbx_seccomp_handle(listener, name, sizeof(name));
                        if (r == 0 && name[0])
                                o->n_reports++;
                        if (r == 0 && o->n_names < MAX_NAMES)
                                snprintf(o->names[o->n_names++], sizeof(o->names[0]), "%s", name);
                        else if (r < 0 && r != -EAGAIN)
                                diag("sbx_seccomp_handle: %s", strerror(-r));
                }
                if (p[1].revents & (POLLIN | POLLHUP)) {
                        char buf[1024];
                        ssize_t k = read(outp[0], buf, sizeof(buf));
                        if (k <= 0)
                                out_open = false;
                        else {
                                size_t room = sizeof(o->out) - 1 - o->out_len;
                                size_t take = MIN((size_t) k, room);
                                memcpy(o->out + o->out_len, buf, take);
                                o->out_len += take;
                        }
                }
                if (pidfd < 0 || (p[2].revents & POLLIN))
                        exited = pidfd < 0 ? waitpid(pid, NULL, WNOHANG | WNOWAIT) != 0 : true;
        }
        o->out[o->out_len] = '\0';
        waitpid(pid, &o->status, 0);
        if (pidfd >= 0)
                close(pidfd);
        close(listener);
        close(outp[0]);
        return 0;
}

static int run_under(const sbx_seccomp_filter *f, char *const argv[], outcome *o) {
        return run_under_fn(f, NULL, argv, o);
}

/* $top_builddir/tests/sandbox/probe, else the probe next to this test, else ./tests/sandbox/probe. */
static const char *probe_path(void) {
        static char path[4096];
        const char *top = getenv("top_builddir");
        char self[2048];
        ssize_t n;

        if (top && *top) {
                snprintf(path, sizeof(path), "%s/tests/sandbox/probe", top);
                return path;
        }
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        snprintf(path, sizeof(path), "%s/probe", self);
                        if (access(path, X_OK) == 0)
                                return path;
                }
        }
        return "./tests/sandbox/probe";
}

static const char *status_str(int status) {
        static char buf[64];
        if (WIFEXITED(status))
                snprintf(buf, sizeof(buf), "exit %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, sizeof(buf), "signal %d", WTERMSIG(status));
        else
                snprintf(buf, sizeof(buf), "status 0x%x", (unsigned) status);
        return buf;
}

/*
 * Whether the host can take a foreign-ABI call at all, measured with no
 * filter: the probe runs in a forked child without seccomp. Some kernels and
 * hypervisors have no 32-bit entry (ia32_emulation=0, no IA32_EMULATION):
 * there int $0x80 raises SIGSEGV before any filter could see it, so "killed
 * by SIGSYS" cannot be checked. Returns NULL when the call returns (the
 * filter must then kill it), else why the check is skipped; the answer is
 * measured once per probe.
 */
static const char *foreign_abi_missing(const char *probe) {
        static struct {
                const char *probe;
                char why[160];
        } cache[8];
        static size_t n_cache;
        int status;
        pid_t pid;

        for (size_t i = 0; i < n_cache; i++)
                if (strcmp(cache[i].probe, probe) == 0)
                        return cache[i].why[0] ? cache[i].why : NULL;
        if (n_cache == ELEMENTSOF(cache))
                return NULL;

        fflush(stdout);
        pid = fork();
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
                        _exit(126);
                execve(probe_path(), (char *[]){(char *) probe_path(), (char *) probe, NULL}, environ);
                _exit(127);
        }
        cache[n_cache].probe = probe;
        cache[n_cache].why[0] = '\0';
        if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFSIGNALED(status)) {
                bool i386 = strstr(probe, "i386") != NULL;
                const char *sig = sigabbrev_np(WTERMSIG(status));
                snprintf(cache[n_cache].why, sizeof(cache[n_cache].why),
                         "host has no %s syscall entry (%s raises SIG%s without any filter)",
                         i386 ? "32-bit" : "x32", i386 ? "int $0x80" : "an x32 call", sig ? sig : "?");
        }
        n_cache++;
        return cache[n_cache - 1].why[0] ? cache[n_cache - 1].why : NULL;
}

static void check_probe(sbx_trust level, const sbx_seccomp_filter *f, const struct expect *e) {
        const char *lname = level_name(level);
        char *argv[] = {(char *) probe_path(), (char *) e->probe, NULL};
        outcome o;
        int r;

        if (e->killed) {
                const char *why = foreign_abi_missing(e->probe);
                if (why) {
                        skip(1, "%s", why);
                        return;
                }
        }
        r = run_under(f, argv, &o);

        if (r < 0) {
                ok(0, "%s: %s: harness: %s", lname, e->probe, strerror(-r));
                return;
        }
        if (o.timed_out) {
                ok(0, "%s: %s: timed out", lname, e->probe);
                return;
        }
        if (e->killed) {
                ok(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGSYS,
                   "%s: %s killed by SIGSYS (%s, \"%.*s\")", lname, e->probe, status_str(o.status),
                   (int) strcspn(o.out, "\n"), o.out);
                return;
        }
        if (strcmp(e->probe, "clone3-plain") == 0)
                /* libc's clone3 reached the supervisor and was answered without a report */
                ok(o.n_names > 0 && o.names[0][0] == '\0', "%s: %s: clone3 answered, not reported", lname,
                   e->probe);
        if (e->refused & (1u << level)) {
                const char *want = strcmp(e->probe, "clone3-newuser") == 0 ? "refused errno=ENOSYS"
                                                                           : "refused errno=EPERM";
                char line[128];
                snprintf(line, sizeof(line), "%s: %s\n", e->probe, want);
                ok(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0 && strstr(o.out, line) &&
                           has_name(&o, e->syscall),
                   "%s: %s refused, reported as %s (%s, \"%.*s\", reported: %s)", lname, e->probe,
                   e->syscall, status_str(o.status), (int) strcspn(o.out, "\n"), o.out, names_str(&o));
        } else {
                ok(WIFEXITED(o.status) && WEXITSTATUS(o.status) == e->allowed_exit &&
                           names_str(&o)[0] == '\0',
                   "%s: %s not refused (%s, \"%.*s\", reported: %s)", lname, e->probe, status_str(o.status),
                   (int) strcspn(o.out, "\n"), o.out, names_str(&o));
        }
}

/* A real program must run to completion with the expected output and no refusals. */
static void check_program(sbx_trust level, const sbx_seccomp_filter *f, char *const argv[],
                          const char *want_out) {
        outcome o;
        int r = run_under(f, argv, &o);
        if (r < 0) {
                ok(0, "%s: %s: harness: %s", level_name(level), argv[0], strerror(-r));
                return;
        }
        ok(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0 && strcmp(o.out, want_out) == 0 &&
                   names_str(&o)[0] == '\0',
           "%s: %s %s runs (%s, output \"%.*s\", reported: %s)", level_name(level), argv[0],
           argv[argc_of(argv) - 1], status_str(o.status), (int) strcspn(o.out, "\n"), o.out, names_str(&o));
}

/* Whether the filters allow this ioctl command: by its low 32 bits, as the kernel reads it. */
static bool ioctl_allowed(unsigned long cmd) {
        const uint32_t *allowed;
        size_t n = sbx_seccomp_allowed_ioctls(&allowed);

        for (size_t i = 0; i < n; i++)
                if (allowed[i] == (uint32_t) cmd)
                        return true;
        return false;
}

/*
 * The sweep: the whole tty ('T', 0x54xx) and socket (0x89xx) ranges, every
 * allowed command, TIOCSTI, TIOCLINUX and TIOCSETD, and each of those with
 * one bit flipped, each with four different high halves.
 */
static size_t sweep_cmds(unsigned long *cmds, size_t max) {
        static const unsigned long highs[] = {0, 1UL << 32, 0xffffffff00000000UL, 1UL << 63};
        static const uint32_t refused[] = {TIOCSTI, TIOCLINUX, TIOCSETD};
        const uint32_t *allowed;
        size_t n_allowed = sbx_seccomp_allowed_ioctls(&allowed), n = 0;

        for (size_t h = 0; h < ELEMENTSOF(highs); h++) {
                for (uint32_t low = 0x5400; low <= 0x54ff && n < max; low++)
                        cmds[n++] = highs[h] | low;
                for (uint32_t low = 0x8900; low <= 0x89ff && n < max; low++)
                        cmds[n++] = highs[h] | low;
                for (size_t i = 0; i < n_allowed + ELEMENTSOF(refused); i++) {
                        uint32_t base = i < n_allowed ? allowed[i] : refused[i - n_allowed];
                        if (n < max)
                                cmds[n++] = highs[h] | base;
                        for (unsigned bit = 0; bit < 32 && n < max; bit++)
                                cmds[n++] = highs[h] | (base ^ (1U << bit));
                }
        }
        return n;
}

#define SWEEP_MAX 20000

/*
 * In the filtered child: one ioctl per command on /dev/null (harmless for
 * every allowed command: ENOTTY, EFAULT or EINVAL at most). Prints the
 * commands whose treatment differs from the allowlist (EPERM for an allowed
 * one, anything else for one not allowed), then the count refused.
 */
static int sweep_child(char *const argv[]) {
        static unsigned long cmds[SWEEP_MAX];
        size_t n = sweep_cmds(cmds, ELEMENTSOF(cmds)), refused = 0, wrong = 0;
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        char line[64];
        int len;

        (void) argv;
        if (fd < 0)
                return 3;
        for (size_t i = 0; i < n; i++) {
                bool eperm = syscall(SYS_ioctl, fd, cmds[i], NULL) < 0 && errno == EPERM;
                refused += eperm;
                if (eperm == ioctl_allowed(cmds[i]) && wrong++ < 10) {
                        len = snprintf(line, sizeof(line), "wrong %lx %s\n", cmds[i],
                                       eperm ? "refused" : "allowed");
                        if (write(1, line, (size_t) len) != len)
                                return 3;
                }
        }
        len = snprintf(line, sizeof(line), "refused %zu wrong %zu\n", refused, wrong);
        return write(1, line, (size_t) len) == len ? 0 : 3;
}

/*
 * The ioctl allowlist, as compiled: every command of the sweep is allowed
 * exactly when its low 32 bits are in the table (whatever the high bits), and
 * each refusal is reported. Then the table itself: what must never be in it
 * and what programs cannot do without.
 */
static void check_ioctl_sweep(sbx_trust level, const sbx_seccomp_filter *f) {
        static unsigned long cmds[SWEEP_MAX];
        size_t n = sweep_cmds(cmds, ELEMENTSOF(cmds)), want = 0, refused = 0, wrong = 0;
        char *argv[] = {NULL};
        outcome o;

        for (size_t i = 0; i < n; i++)
                want += !ioctl_allowed(cmds[i]);
        if (run_under_fn(f, sweep_child, argv, &o) < 0 || o.timed_out) {
                ok(0, "%s: ioctl sweep: harness failed", level_name(level));
                return;
        }
        const char *tail = strstr(o.out, "refused ");
        if (!tail || sscanf(tail, "refused %zu wrong %zu", &refused, &wrong) != 2)
                wrong = SIZE_MAX;
        if (wrong > 0)
                diag("%s", o.out);
        ok(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0 && n < SWEEP_MAX && wrong == 0 && want > 0 &&
                   refused == want && o.n_reports == want,
           "%s: ioctl sweep of %zu commands: exactly the %zu not allowed refused and reported (%zu refused, "
           "%zu wrong, %zu reported, %s)",
           level_name(level), n, want, refused, wrong, o.n_reports, status_str(o.status));
}

/* The table: never a terminal injection, console, line-discipline or device call; always termios. */
static void check_ioctl_table(void) {
        static const struct {
                const char *name;
                uint32_t cmd;
        } never[] =
                {
                        {"TIOCSTI", TIOCSTI},
                        {"TIOCLINUX", TIOCLINUX},
                        {"TIOCSETD", TIOCSETD},
                        {"TIOCCONS", TIOCCONS},
                        {"TIOCVHANGUP", TIOCVHANGUP},
                        {"TIOCSSERIAL", TIOCSSERIAL},
                        {"TIOCSLCKTRMIOS", 0x5457},
                        {"FIFREEZE", 0xc0045877},
                        {"FS_IOC_SETFLAGS", 0x40086602},
                        {"BLKGETSIZE64", 0x80081272},
                        {"LOOP_SET_FD", 0x4c00},
                        {"TUNSETIFF", 0x400454ca},
                        {"KDSETMODE", 0x4b3a},
                        {"VT_ACTIVATE", 0x5606},
                        {"SECCOMP_IOCTL_NOTIF_RECV", 0xc0502100},
                },
          always[] = {
                  {"TCGETS", TCGETS},         {"TCSETS", TCSETS},         {"TIOCGWINSZ", TIOCGWINSZ},
                  {"TIOCSWINSZ", TIOCSWINSZ}, {"TIOCGPGRP", TIOCGPGRP},   {"TIOCSPGRP", TIOCSPGRP},
                  {"FIONREAD", FIONREAD},     {"FIONBIO", FIONBIO},       {"FIOCLEX", FIOCLEX},
                  {"TIOCGPTN", TIOCGPTN},     {"TIOCSPTLCK", TIOCSPTLCK}, {"FICLONE", 0x40049409},
          };
        const uint32_t *allowed;
        size_t n = sbx_seccomp_allowed_ioctls(&allowed);
        char bad[512] = "";

        for (size_t i = 0; i < ELEMENTSOF(never); i++)
                if (ioctl_allowed(never[i].cmd))
                        snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), " %s allowed", never[i].name);
        for (size_t i = 0; i < ELEMENTSOF(always); i++)
                if (!ioctl_allowed(always[i].cmd))
                        snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), " %s refused",
                                 always[i].name);
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < i; j++)
                        if (allowed[i] == allowed[j])
                                snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), " 0x%x twice",
                                         allowed[i]);
        ok(bad[0] == '\0' && n > 0 && n < 128,
           "ioctl allowlist of %zu commands: no TIOCSTI, TIOCLINUX, TIOCSETD, console or device call; "
           "termios, "
           "ptys and fd flags in%s",
           n, bad);
}

/*
 * The supervisor must never block in sbx_seccomp_handle(): nothing pending,
 * a target that died with its notification unanswered, and a listener whose
 * tasks are all gone each give -EAGAIN at once.
 */
static void check_handle_never_blocks(const sbx_seccomp_filter *f) {
        int sv[2], hold[2], load_error = 0, r;
        char name[64];

        ok(sbx_seccomp_handle(-1, name, sizeof(name)) == -EINVAL, "handle refuses a bad fd");
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(hold, O_CLOEXEC) < 0) {
                ok(0, "handle: harness: %s", strerror(errno));
                return;
        }
        pid_t pid = fork();
        if (pid == 0) {
                char c;
                int fd = sbx_seccomp_load(f);
                if (fd < 0 || send_fd(sv[1], fd) < 0)
                        _exit(126);
                close(hold[1]);
                (void) !read(hold[0], &c, 1); /* until the parent lets go */
                syscall(SYS_mount, "/nonexistent-autoos-probe", "/nonexistent-autoos-probe", "tmpfs", 0UL,
                        NULL); /* blocks on the supervisor, who never answers */
                _exit(0);
        }
        close(sv[1]);
        close(hold[0]);
        int listener = recv_fd(sv[0], &load_error);
        close(sv[0]);
        uint64_t t0 = now_ms();
        r = sbx_seccomp_handle(listener, name, sizeof(name));
        ok(listener >= 0 && r == -EAGAIN && now_ms() - t0 < 1000,
           "handle with nothing pending: -EAGAIN at once (%d)", r);

        /* Let the child make its refused call, then kill it before we answer. */
        close(hold[1]);
        struct pollfd p = {.fd = listener, .events = POLLIN};
        bool pending = poll(&p, 1, RUN_TIMEOUT_MS) == 1 && (p.revents & POLLIN);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        r = sbx_seccomp_handle(listener, name, sizeof(name));
        ok(pending && r == -EAGAIN && name[0] == '\0', "handle after the target died: -EAGAIN (%d)", r);
        t0 = now_ms();
        r = sbx_seccomp_handle(listener, name, sizeof(name));
        ok(r == -EAGAIN && now_ms() - t0 < 1000, "handle on a listener with no tasks left: -EAGAIN (%d)", r);
        if (listener >= 0)
                close(listener);
}

static bool kernel_can_notify(void) {
        struct seccomp_notif_sizes sizes;
        uint32_t action = SECCOMP_RET_USER_NOTIF;
        return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0 &&
               syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) == 0;
}

static const char *find_python3(void) {
        static const char *const candidates[] = {"/usr/bin/python3", "/usr/local/bin/python3"};
        for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
                if (access(candidates[i], X_OK) == 0)
                        return candidates[i];
        return NULL;
}

static bool same_filter(const sbx_seccomp_filter *a, const sbx_seccomp_filter *b) {
        return a->len == b->len && a->insns && b->insns &&
               memcmp(a->insns, b->insns, a->len * sizeof(struct sock_filter)) == 0;
}

/* The path of the one seccomp-*.bpf file in dir, into path; false when there is not exactly one. */
static bool cache_file(const char *dir, char *path, size_t size) {
        DIR *d = opendir(dir);
        struct dirent *e;
        int n = 0;

        if (!d)
                return false;
        while ((e = readdir(d)))
                if (strncmp(e->d_name, "seccomp-", 8) == 0 && ++n == 1)
                        snprintf(path, size, "%s/%s", dir, e->d_name);
        closedir(d);
        return n == 1;
}

/* sbx_seccomp_compile_cached(): the same program as a compile, written once, read back, never from a file
 * or a directory someone else could have written. */
static void check_cache(const sbx_seccomp_filter *fresh) {
        char dir[] = "/tmp/test-seccomp-cache-XXXXXX", path[512];
        sbx_seccomp_filter a = {0}, b = {0}, c = {0}, d = {0};
        au_error err = {0};

        if (!mkdtemp(dir)) {
                skip(6, "mkdtemp: %s", strerror(errno));
                return;
        }
        ok(sbx_seccomp_compile_cached(SBX_TRUST_STANDARD, dir, &a, &err) == 0 && same_filter(&a, fresh),
           "cache: a miss compiles the same program as sbx_seccomp_compile");
        ok(cache_file(dir, path, sizeof(path)), "cache: the program is written to one file");

        /* Mark the cached copy: a hit must return the file's content. */
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        struct sock_filter mark = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
        ok(fd >= 0 && pwrite(fd, &mark, sizeof(mark), 0) == (ssize_t) sizeof(mark), "cache: mark the file");
        if (fd >= 0)
                close(fd);
        ok(sbx_seccomp_compile_cached(SBX_TRUST_STANDARD, dir, &b, &err) == 0 && b.len == fresh->len &&
                   memcmp(&b.insns[0], &mark, sizeof(mark)) == 0,
           "cache: a hit reads the file instead of compiling");

        chmod(path, 0644);
        ok(sbx_seccomp_compile_cached(SBX_TRUST_STANDARD, dir, &c, &err) == 0 && same_filter(&c, fresh),
           "cache: a file others may read (mode 0644) is not used");

        unlink(path);
        chmod(dir, 0777);
        ok(sbx_seccomp_compile_cached(SBX_TRUST_STANDARD, dir, &d, &err) == 0 && same_filter(&d, fresh) &&
                   !cache_file(dir, path, sizeof(path)),
           "cache: a directory others can write to is neither read nor written");
        chmod(dir, 0700);
        if (cache_file(dir, path, sizeof(path)))
                unlink(path);
        rmdir(dir);
        sbx_seccomp_filter_done(&a);
        sbx_seccomp_filter_done(&b);
        sbx_seccomp_filter_done(&c);
        sbx_seccomp_filter_done(&d);
}

int main(void) {
        sbx_seccomp_filter filters[_SBX_TRUST_MAX] = {0};
        au_error err = {0};

        if (!kernel_can_notify())
                skip_all("kernel lacks seccomp user notification (SECCOMP_FILTER_FLAG_NEW_LISTENER)");
        if (access(probe_path(), X_OK) < 0)
                skip_all("probe binary not built (make tests/sandbox/probe)");

        /* The probe must not trip over sanitizer runtimes the filter does not expect. */
        setenv("ASAN_OPTIONS", "detect_leaks=0", 1);

        for (int l = 0; l < _SBX_TRUST_MAX; l++) {
                au_error_clear(&err);
                int r = sbx_seccomp_compile((sbx_trust) l, &filters[l], &err);
                ok(r == 0 && filters[l].len > 0 && filters[l].insns, "compile %s: %d instructions%s%s",
                   level_name((sbx_trust) l), filters[l].len, r < 0 ? ": " : "", r < 0 ? err.msg : "");
                if (r < 0)
                        return done_testing();
        }
        au_error_clear(&err);
        sbx_seccomp_filter bad = {0};
        ok(sbx_seccomp_compile(_SBX_TRUST_MAX, &bad, &err) == -EINVAL && bad.insns == NULL,
           "compile refuses an unknown trust level (%s)", err.msg);

        for (int l = 0; l < _SBX_TRUST_MAX; l++)
                for (size_t i = 0; i < ELEMENTSOF(expects); i++)
                        check_probe((sbx_trust) l, &filters[l], &expects[i]);

        check_ioctl_table();
        for (int l = 0; l < _SBX_TRUST_MAX; l++)
                check_ioctl_sweep((sbx_trust) l, &filters[l]);

        const char *python3 = find_python3();
        for (int l = 0; l < _SBX_TRUST_MAX; l++) {
                char *sh[] = {"/bin/sh", "-c", "echo hi", NULL};
                check_program((sbx_trust) l, &filters[l], sh, "hi\n");
                if (python3) {
                        char *py[] = {(char *) python3, "-c", "print(1)", NULL};
                        check_program((sbx_trust) l, &filters[l], py, "1\n");
                } else
                        skip(1, "no python3");
        }

        check_handle_never_blocks(&filters[SBX_TRUST_STANDARD]);
        check_cache(&filters[SBX_TRUST_STANDARD]);

        for (int l = 0; l < _SBX_TRUST_MAX; l++) {
                sbx_seccomp_filter_done(&filters[l]);
                sbx_seccomp_filter_done(&filters[l]);
        }
        ok(filters[0].insns == NULL && filters[0].len == 0, "filter_done empties and is idempotent");
        return done_testing();
}
