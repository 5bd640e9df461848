/* SPDX-License-Identifier: MIT */
/*
 * Attack probe, run inside sandboxes by the tests: `probe NAME` attempts
 * exactly one operation and prints one line:
 *
 *   NAME: refused errno=EPERM   exit 0
 *   NAME: allowed               exit 1 (the call succeeded)
 *   NAME: failed errno=E...     exit 2 (any other error)
 *
 * clone3-newuser alone also counts ENOSYS as refused (the supervisor answers
 * clone3 with ENOSYS). `probe --list` prints every name.
 *
 * Every operation is chosen to do nothing even when a protection fails and
 * even when run as root on a host: nonexistent paths, invalid magic numbers,
 * invalid flags, bad fds, read-only queries, and ioctls on /dev/null. Where
 * the harmless variant still fails on an unprotected host, it fails with an
 * errno other than EPERM (exit 2), so a missing filter shows. Socket families
 * that might autoload a kernel module are asked for an invalid socket type,
 * which the kernel rejects before any module is loaded; the seccomp filter
 * refuses them by family alone.
 *
 * Free of project headers: it must run anywhere the tests put it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef CLONE_NEWUSER
#define CLONE_NEWUSER 0x10000000
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif
#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

/* Nothing at this path exists: every path-taking probe uses it. */
#define NOWHERE "/nonexistent-autoos-probe"
/* Not a socket type (SOCK_MAX is 11): EINVAL before any module is requested. */
#define BAD_SOCK_TYPE 15

/* Mirrors struct clone_args (linux/sched.h), which glibc 2.36 does not export. */
struct probe_clone_args {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

struct probe {
        const char *name;
        long (*fn)(void);
};

/* A raw clone that behaves like fork(); the child leaves at once. */
static long clone_flags(unsigned long flags) {
        long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
        if (pid == 0)
                syscall(SYS_exit_group, 0);
        if (pid > 0) {
                int e = errno;
                waitpid((pid_t) pid, NULL, 0);
                errno = e;
                return 0;
        }
        return pid;
}

static long p_mount(void) {
        return syscall(SYS_mount, NOWHERE "/src", NOWHERE "/dst", "tmpfs", 0UL, NULL);
}
static long p_umount2(void) {
        return syscall(SYS_umount2, NOWHERE, 0);
}
static long p_pivot_root(void) {
        return syscall(SYS_pivot_root, NOWHERE "/new", NOWHERE "/old");
}
static long p_chroot(void) {
        return syscall(SYS_chroot, NOWHERE);
}
static long p_fsopen(void) {
        return syscall(SYS_fsopen, "autoos-no-such-fs", 0);
}
static long p_fsconfig(void) {
        return syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0);
}
static long p_fsmount(void) {
        return syscall(SYS_fsmount, -1, 0, 0);
}
static long p_fspick(void) {
        return syscall(SYS_fspick, AT_FDCWD, NOWHERE, 0);
}
static long p_move_mount(void) {
        return syscall(SYS_move_mount, AT_FDCWD, NOWHERE "/a", AT_FDCWD, NOWHERE "/b", 0);
}
static long p_open_tree(void) {
        return syscall(SYS_open_tree, AT_FDCWD, NOWHERE, 0);
}
static long p_mount_setattr(void) {
        /* size 0 is below the first version of struct mount_attr: EINVAL */
        return syscall(SYS_mount_setattr, AT_FDCWD, NOWHERE, 0, NULL, 0);
}
/* A new user or network namespace for this short-lived process only. */
static long p_unshare_user(void) {
        return syscall(SYS_unshare, CLONE_NEWUSER);
}
static long p_unshare_net(void) {
        return syscall(SYS_unshare, CLONE_NEWNET);
}
static long p_setns(void) {
        return syscall(SYS_setns, -1, 0);
}
static long p_clone_newuser(void) {
        return clone_flags(CLONE_NEWUSER);
}
static long p_clone_newns(void) {
        return clone_flags(CLONE_NEWNS);
}
static long p_clone3_newuser(void) {
        struct probe_clone_args args = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
        long pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid == 0)
                syscall(SYS_exit_group, 0);
        if (pid > 0) {
                waitpid((pid_t) pid, NULL, 0);
                return 0;
        }
        return pid;
}
static long p_keyctl(void) {
        return syscall(SYS_keyctl, 0x7fffffffL, 0, 0, 0, 0); /* no such command */
}
static long p_add_key(void) {
        /* into keyring -100, which no special keyring id names: EINVAL, nothing created */
        return syscall(SYS_add_key, "user", "autoos-probe", "x", 1, -100L);
}
static long p_request_key(void) {
        return syscall(SYS_request_key, "autoos-no-such-type", "autoos-probe", NULL, 0);
}
static long p_bpf(void) {
        return syscall(SYS_bpf, 0x7fffffffL, NULL, 0); /* no such command */
}
static long p_perf_event_open(void) {
        return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0); /* EFAULT */
}
static long p_userfaultfd(void) {
        long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
        if (fd >= 0)
                close((int) fd);
        return fd;
}
static long p_io_uring_setup(void) {
        return syscall(SYS_io_uring_setup, 0, NULL); /* 0 entries */
}
static long p_io_uring_enter(void) {
        return syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0);
}
static long p_io_uring_register(void) {
        return syscall(SYS_io_uring_register, -1, 0, NULL, 0);
}
static long p_kexec_load(void) {
        /* 0x8000 is no kexec flag and 4096 is past KEXEC_SEGMENT_MAX: EINVAL twice over */
        return syscall(SYS_kexec_load, 0UL, 4096UL, NULL, 0x8000UL);
}
static long p_kexec_file_load(void) {
        return syscall(SYS_kexec_file_load, -1, -1, 0UL, "", 0x8000UL);
}
static long p_init_module(void) {
        static const char image[4] = {0}; /* not an ELF file */
        return syscall(SYS_init_module, image, sizeof(image), "");
}
static long p_finit_module(void) {
        return syscall(SYS_finit_module, -1, "", 0);
}
static long p_delete_module(void) {
        return syscall(SYS_delete_module, "autoos_no_such_module", O_NONBLOCK);
}
static long p_open_by_handle_at(void) {
        /* handle_bytes 0 is invalid: EINVAL before any lookup */
        struct {
                unsigned int handle_bytes;
                int handle_type;
                unsigned char f_handle[8];
        } h = {0};
        long fd = syscall(SYS_open_by_handle_at, AT_FDCWD, &h, O_RDONLY);
        if (fd >= 0)
                close((int) fd);
        return fd;
}
static long p_name_to_handle_at(void) {
        struct {
                unsigned int handle_bytes;
                int handle_type;
                unsigned char f_handle[128];
        } h = {.handle_bytes = 128};
        int mount_id;
        return syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &h, &mount_id, 0);
}
static long p_reboot(void) {
        return syscall(SYS_reboot, 0, 0, 0, NULL); /* wrong magic: EINVAL */
}
static long p_swapon(void) {
        return syscall(SYS_swapon, NOWHERE "/swap", 0);
}
static long p_swapoff(void) {
        return syscall(SYS_swapoff, NOWHERE "/swap");
}
static long p_settimeofday(void) {
        return syscall(SYS_settimeofday, NULL, NULL); /* sets nothing */
}
static long p_clock_settime(void) {
        struct timespec ts = {0};
        return syscall(SYS_clock_settime, CLOCK_MONOTONIC, &ts); /* not settable: EINVAL */
}
static long p_clock_adjtime(void) {
        struct timex {
                unsigned int modes;
                char rest[204];
        } tx = {0}; /* modes 0: a read; CLOCK_MONOTONIC cannot be adjusted anyway */
        return syscall(SYS_clock_adjtime, CLOCK_MONOTONIC, &tx);
}
static long p_adjtimex(void) {
        struct {
                unsigned int modes;
                char rest[204];
        } tx = {0}; /* modes 0: read only */
        return syscall(SYS_adjtimex, &tx);
}
static long p_acct(void) {
        return syscall(SYS_acct, NOWHERE "/acct");
}
static long p_syslog(void) {
        return syscall(SYS_syslog, 10, NULL, 0); /* SYSLOG_ACTION_SIZE_BUFFER */
}
static long p_ptrace(void) {
        return syscall(SYS_ptrace, 2 /* PTRACE_PEEKDATA */, 999999999, NULL, NULL);
}
static long p_process_vm_readv(void) {
        char src[8] = "autoos", dst[8];
        struct iovec l = {dst, sizeof(dst)}, r = {src, sizeof(src)};
        return syscall(SYS_process_vm_readv, getpid(), &l, 1UL, &r, 1UL, 0UL);
}
static long p_kcmp(void) {
        return syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 0UL, 0UL);
}
static long p_personality(void) {
        return syscall(SYS_personality, 0x0040000UL); /* ADDR_NO_RANDOMIZE, this process only */
}
static long p_personality_query(void) {
        return syscall(SYS_personality, 0xffffffffUL);
}
static long p_mknod_char(void) {
        return syscall(SYS_mknod, NOWHERE "/null", S_IFCHR | 0600, makedev(1, 3));
}
static long p_mknod_block(void) {
        return syscall(SYS_mknodat, AT_FDCWD, NOWHERE "/loop0", S_IFBLK | 0600, makedev(7, 0));
}
static long p_mknod_fifo(void) {
        char dir[] = "/tmp/autoos-probe-XXXXXX", path[64];
        long r;
        if (!mkdtemp(dir))
                return -1;
        snprintf(path, sizeof(path), "%s/fifo", dir);
        r = syscall(SYS_mknodat, AT_FDCWD, path, S_IFIFO | 0600, 0);
        int e = errno;
        unlink(path);
        rmdir(dir);
        errno = e;
        return r;
}
/* Terminal ioctls go to /dev/null: harmless (ENOTTY) when not refused. */
static long tty_ioctl(unsigned long cmd, void *arg) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        long r = syscall(SYS_ioctl, fd, cmd, arg);
        int e = errno;
        if (fd >= 0)
                close(fd);
        errno = e;
        return r;
}
static long p_ioctl_tiocsti(void) {
        char c = ' ';
        return tty_ioctl(TIOCSTI, &c);
}
static long p_ioctl_tiocsti_high(void) {
        char c = ' ';
        return tty_ioctl((unsigned long) TIOCSTI | (1UL << 32), &c);
}
static long p_ioctl_tioclinux(void) {
        char sub = 12; /* TIOCL_GETSHIFTSTATE: a read */
        return tty_ioctl(TIOCLINUX, &sub);
}
static long p_ioctl_tiocsetd(void) {
        int ldisc = 0; /* N_TTY */
        return tty_ioctl(TIOCSETD, &ldisc);
}
static long p_ioctl_tiocsetd_high(void) {
        int ldisc = 0;
        return tty_ioctl((unsigned long) TIOCSETD | (1UL << 32), &ldisc);
}
/* Not on the allowlist (a file-system flag setter): refused whatever it would do. */
static long p_ioctl_unlisted(void) {
        int flags = 0;
        return tty_ioctl(0x40086602UL /* FS_IOC_SETFLAGS */, &flags);
}
/* On the allowlist: glibc's isatty(); ENOTTY on /dev/null. */
static long p_ioctl_tcgets(void) {
        struct termios t;
        return tty_ioctl(TCGETS, &t);
}
static long p_ioctl_tiocgwinsz(void) {
        struct winsize ws;
        return tty_ioctl(TIOCGWINSZ, &ws); /* TIOCSTI's neighbour: ENOTTY */
}
static long p_ioctl_fionread(void) {
        int p[2], n;
        long r;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        r = syscall(SYS_ioctl, p[0], (unsigned long) FIONREAD, &n);
        int e = errno;
        close(p[0]);
        close(p[1]);
        errno = e;
        return r;
}
static long sock(int domain, int type, int protocol) {
        long fd = syscall(SYS_socket, domain, type | SOCK_CLOEXEC, protocol);
        if (fd >= 0)
                close((int) fd);
        return fd;
}
static long p_socket_packet(void) {
        return sock(AF_PACKET, BAD_SOCK_TYPE, 0);
}
static long p_socket_vsock(void) {
        return sock(AF_VSOCK, BAD_SOCK_TYPE, 0);
}
static long p_socket_alg(void) {
        return sock(AF_ALG, BAD_SOCK_TYPE, 0);
}
static long p_socket_key(void) {
        return sock(AF_KEY, BAD_SOCK_TYPE, 0);
}
/* Raw sockets bound to nothing, closed at once: they never see a packet. */
static long p_socket_raw4(void) {
        return sock(AF_INET, SOCK_RAW, IPPROTO_ICMP);
}
static long p_socket_raw6(void) {
        return sock(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
}
static long p_socket_inet_packet(void) {
        return sock(AF_INET, SOCK_PACKET, 0);
}
static long p_socket_unix(void) {
        return sock(AF_UNIX, SOCK_STREAM, 0);
}
static long p_socket_inet(void) {
        return sock(AF_INET, SOCK_STREAM, 0);
}
static long p_socket_inet6(void) {
        return sock(AF_INET6, SOCK_DGRAM, 0);
}
static long p_socket_netlink(void) {
        return sock(AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */);
}
/*
 * Netlink protocols other than NETLINK_ROUTE. Those built into every kernel
 * get a real socket; those that may be modules (netfilter, xfrm) an invalid
 * type, which the kernel refuses (EINVAL) before it could load one.
 */
static long p_netlink_audit(void) {
        return sock(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
}
static long p_netlink_uevent(void) {
        return sock(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT);
}
static long p_netlink_sock_diag(void) {
        return sock(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG);
}
static long p_netlink_generic(void) {
        return sock(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
}
static long p_netlink_netfilter(void) {
        return sock(AF_NETLINK, BAD_SOCK_TYPE, NETLINK_NETFILTER);
}
static long p_netlink_xfrm(void) {
        return sock(AF_NETLINK, BAD_SOCK_TYPE, NETLINK_XFRM);
}
/* The kernel reads the protocol as an int: junk above it changes nothing, either way. */
static long p_netlink_audit_high(void) {
        long fd = syscall(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, (1UL << 32) | NETLINK_AUDIT);
        if (fd >= 0)
                close((int) fd);
        return fd;
}
static long p_netlink_route_high(void) {
        long fd = syscall(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, (1UL << 32) | NETLINK_ROUTE);
        if (fd >= 0)
                close((int) fd);
        return fd;
}
static long p_socketpair_unix(void) {
        int sv[2];
        long r = syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
        if (r == 0) {
                close(sv[0]);
                close(sv[1]);
        }
        return r;
}
static long p_clone_plain(void) {
        pid_t pid = fork();
        if (pid == 0)
                _exit(0);
        if (pid < 0)
                return -1;
        return waitpid(pid, NULL, 0) == pid ? 0 : -1;
}
static void *thread_main(void *arg) {
        return arg;
}
/* glibc tries clone3 first and falls back to clone(2) on ENOSYS. */
static long p_clone3_plain(void) {
        pthread_t t;
        int r = pthread_create(&t, NULL, thread_main, NULL);
        if (r != 0) {
                errno = r;
                return -1;
        }
        r = pthread_join(t, NULL);
        if (r != 0) {
                errno = r;
                return -1;
        }
        return 0;
}
static long p_seccomp_stack(void) {
        struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        struct sock_fprog prog = {.len = 1, .filter = &allow};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -1;
        return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}
static long p_sethostname(void) {
        char name[65];
        memset(name, 'x', sizeof(name)); /* one past __NEW_UTS_LEN: EINVAL */
        return syscall(SYS_sethostname, name, sizeof(name));
}
static long p_setdomainname(void) {
        char name[65];
        memset(name, 'x', sizeof(name));
        return syscall(SYS_setdomainname, name, sizeof(name));
}
static long p_iopl(void) {
        return syscall(SYS_iopl, 4); /* levels stop at 3: EINVAL */
}
static long p_ioperm(void) {
        return syscall(SYS_ioperm, 0UL, 0UL, 1); /* an empty range: EINVAL */
}
static long p_quotactl(void) {
        /* QCMD(Q_GETQUOTA, USRQUOTA), a read, on a device that does not exist */
        return syscall(SYS_quotactl, (int) 0x80000700U, NOWHERE, 0, NULL);
}
static long p_fanotify_init(void) {
        return syscall(SYS_fanotify_init, 0xffffffffUL, 0UL); /* no such flags: EINVAL */
}
static long p_uselib(void) {
        return syscall(SYS_uselib, NOWHERE);
}
static long p_sysfs(void) {
        return syscall(SYS_sysfs, 1, "autoos-no-such-fs"); /* a read */
}
static long p_ustat(void) {
        char buf[64];
        return syscall(SYS_ustat, 0U, buf);
}
/* Foreign ABIs: the filter must kill the process (SIGSYS) before the call. */
static long p_x32_getpid(void) {
        return syscall(__X32_SYSCALL_BIT | SYS_getpid);
}
static long p_i386_getpid(void) {
#if defined(__x86_64__)
        long r;
        /* The compat entry does not preserve r8-r11. */
        __asm__ volatile("int $0x80"
                         : "=a"(r)
                         : "a"(20L /* i386 getpid */)
                         : "r8", "r9", "r10", "r11", "memory", "cc");
        if (r < 0 && r > -4096) {
                errno = (int) -r;
                return -1;
        }
        return r;
#else
        errno = ENOSYS;
        return -1;
#endif
}

static void *x32_thread(void *arg) {
        syscall(__X32_SYSCALL_BIT | SYS_getpid);
        return arg;
}
/* From a second thread: the whole process must die, not just the thread. */
static long p_x32_thread(void) {
        pthread_t t;
        int r = pthread_create(&t, NULL, x32_thread, NULL);
        if (r == 0)
                r = pthread_join(t, NULL);
        errno = r;
        return r == 0 ? 0 : -1;
}

static const struct probe probes[] = {
        {"mount", p_mount},
        {"umount2", p_umount2},
        {"pivot_root", p_pivot_root},
        {"chroot", p_chroot},
        {"fsopen", p_fsopen},
        {"fsconfig", p_fsconfig},
        {"fsmount", p_fsmount},
        {"fspick", p_fspick},
        {"move_mount", p_move_mount},
        {"open_tree", p_open_tree},
        {"mount_setattr", p_mount_setattr},
        {"unshare-user", p_unshare_user},
        {"unshare-net", p_unshare_net},
        {"setns", p_setns},
        {"clone-newuser", p_clone_newuser},
        {"clone-newns", p_clone_newns},
        {"clone3-newuser", p_clone3_newuser},
        {"keyctl", p_keyctl},
        {"add_key", p_add_key},
        {"request_key", p_request_key},
        {"bpf", p_bpf},
        {"perf_event_open", p_perf_event_open},
        {"userfaultfd", p_userfaultfd},
        {"io_uring_setup", p_io_uring_setup},
        {"io_uring_enter", p_io_uring_enter},
        {"io_uring_register", p_io_uring_register},
        {"kexec_load", p_kexec_load},
        {"kexec_file_load", p_kexec_file_load},
        {"init_module", p_init_module},
        {"finit_module", p_finit_module},
        {"delete_module", p_delete_module},
        {"open_by_handle_at", p_open_by_handle_at},
        {"name_to_handle_at", p_name_to_handle_at},
        {"reboot", p_reboot},
        {"swapon", p_swapon},
        {"swapoff", p_swapoff},
        {"settimeofday", p_settimeofday},
        {"clock_settime", p_clock_settime},
        {"clock_adjtime", p_clock_adjtime},
        {"adjtimex", p_adjtimex},
        {"acct", p_acct},
        {"syslog", p_syslog},
        {"ptrace", p_ptrace},
        {"process_vm_readv", p_process_vm_readv},
        {"kcmp", p_kcmp},
        {"personality", p_personality},
        {"personality-query", p_personality_query},
        {"mknod-char", p_mknod_char},
        {"mknod-block", p_mknod_block},
        {"mknod-fifo", p_mknod_fifo},
        {"ioctl-tiocsti", p_ioctl_tiocsti},
        {"ioctl-tiocsti-high", p_ioctl_tiocsti_high},
        {"ioctl-tioclinux", p_ioctl_tioclinux},
        {"ioctl-tiocsetd", p_ioctl_tiocsetd},
        {"ioctl-tiocsetd-high", p_ioctl_tiocsetd_high},
        {"ioctl-unlisted", p_ioctl_unlisted},
        {"ioctl-tcgets", p_ioctl_tcgets},
        {"ioctl-tiocgwinsz", p_ioctl_tiocgwinsz},
        {"ioctl-fionread", p_ioctl_fionread},
        {"socket-packet", p_socket_packet},
        {"socket-vsock", p_socket_vsock},
        {"socket-alg", p_socket_alg},
        {"socket-key", p_socket_key},
        {"socket-raw4", p_socket_raw4},
        {"socket-raw6", p_socket_raw6},
        {"socket-inet-packet", p_socket_inet_packet},
        {"socket-unix", p_socket_unix},
        {"socket-inet", p_socket_inet},
        {"socket-inet6", p_socket_inet6},
        {"socket-netlink", p_socket_netlink},
        {"netlink-audit", p_netlink_audit},
        {"netlink-uevent", p_netlink_uevent},
        {"netlink-sock-diag", p_netlink_sock_diag},
        {"netlink-generic", p_netlink_generic},
        {"netlink-netfilter", p_netlink_netfilter},
        {"netlink-xfrm", p_netlink_xfrm},
        {"netlink-audit-high", p_netlink_audit_high},
        {"netlink-route-high", p_netlink_route_high},
        {"socketpair-unix", p_socketpair_unix},
        {"clone-plain", p_clone_plain},
        {"clone3-plain", p_clone3_plain},
        {"seccomp-stack", p_seccomp_stack},
        {"sethostname", p_sethostname},
        {"setdomainname", p_setdomainname},
        {"iopl", p_iopl},
        {"ioperm", p_ioperm},
        {"quotactl", p_quotactl},
        {"fanotify_init", p_fanotify_init},
        {"uselib", p_uselib},
        {"sysfs", p_sysfs},
        {"ustat", p_ustat},
        {"x32-getpid", p_x32_getpid},
        {"i386-getpid", p_i386_getpid},
        {"x32-thread", p_x32_thread},
};

int main(int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "usage: %s NAME | --list\n", argv[0]);
                return 64;
        }
        if (strcmp(argv[1], "--list") == 0) {
                for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
                        printf("%s\n", probes[i].name);
                return 0;
        }
        for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
                if (strcmp(argv[1], probes[i].name) != 0)
                        continue;
                errno = 0;
                long r = probes[i].fn();
                int e = errno;
                if (r >= 0) {
                        printf("%s: allowed\n", argv[1]);
                        return 1;
                }
                const char *ename = strerrorname_np(e);
                if (e == EPERM || (e == ENOSYS && strcmp(argv[1], "clone3-newuser") == 0)) {
                        printf("%s: refused errno=%s\n", argv[1], ename);
                        return 0;
                }
                if (ename)
                        printf("%s: failed errno=%s\n", argv[1], ename);
                else
                        printf("%s: failed errno=%d\n", argv[1], e);
                return 2;
        }
        fprintf(stderr, "%s: unknown probe %s (see --list)\n", argv[0], argv[1]);
        return 64;
}
