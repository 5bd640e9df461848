/* SPDX-License-Identifier: MIT */
/*
 * Seccomp profiles per trust level (DESIGN.md "Trust levels").
 *
 * Each profile is a default-deny allowlist compiled once, in the parent, with
 * libseccomp; the child only loads the ready BPF. Everything not allowed
 * becomes SECCOMP_RET_USER_NOTIF so that the supervisor can name the refused
 * call and answer EPERM. Foreign ABIs (on x86_64: i386 through int 0x80, and
 * x32) kill the process: the allowlist speaks the native one only.
 *
 * libseccomp 2.5.4 behaviours the rules below are shaped around (found by
 * experiment; tests/sandbox/test-seccomp checks the resulting filters):
 *  - a rule whose action is the filter's default action fails with -EACCES,
 *    so "deny these values" cannot be written as NOTIFY rules under our
 *    NOTIFY default;
 *  - an unconditional rule for a syscall silently swallows every conditional
 *    rule of the same syscall, whatever the order and even with a different
 *    action (rule_add returns 0, the conditional rule is gone);
 *  - one rule cannot hold two comparisons of the same argument (-EINVAL).
 * So every conditional call is an allowlist of values, one rule per value
 * or masked range (ioctl commands, socket families, clone flags...).
 *
 * Integer arguments are compared on their low 32 bits only where the kernel
 * itself truncates them (ioctl's cmd, socket's domain and type, clone's flags,
 * mknod's mode, personality): a value with junk in the high half then means
 * to the filter exactly what it means to the kernel, e.g. TIOCSTI | 1UL << 32
 * is still TIOCSTI.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <linux/random.h>
#include <linux/sockios.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "sandbox/sandbox-internal.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif

/* Profile bits: which trust levels a rule belongs to. */
enum {
        R = 1 << 0, /* restricted */
        D = 1 << 1, /* default: standard and elevated */
        P = 1 << 2, /* privileged */
        DP = D | P,
        ALL = R | D | P,
};

/*
 * Namespace flags clone(2) must not carry. CLONE_NEWTIME is left out on
 * purpose: for clone(2) 0x80 lies in CSIGNAL, the exit signal, so it is not a
 * namespace flag there (only clone3 and unshare can ask for a time namespace,
 * and both are refused whole).
 */
#define CLONE_NS_FLAGS                                                                          \
        ((uint64_t) (CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | \
                     CLONE_NEWIPC | CLONE_NEWCGROUP))
/* What a clone3 is reported for: any namespace, time included. */
#define CLONE3_NS_FLAGS (CLONE_NS_FLAGS | CLONE_NEWTIME)

#define LOW32 UINT64_C(0xffffffff)

/*
 * Calls newer than what libseccomp 2.5.4 knows by name go by their x86_64
 * number; elsewhere they are left out (refused) rather than guessed.
 */
#if defined(__x86_64__)
#define NEWER(nr) (nr)
#else
#define NEWER(nr) (-1)
#endif

/*
 * Syscalls allowed without conditions, per profile. nr: 0 to go by the name,
 * else NEWER(x86_64 number).
 *
 * Left out on purpose, so refused everywhere: the mount API old and new,
 * unshare/setns and clone3 (namespaces), keyrings, bpf, perf_event_open,
 * userfaultfd, io_uring, kexec, modules, *_handle_at, reboot, swap, setting
 * clocks (adjtimex and clock_adjtime included: they can set as well as read),
 * acct, syslog, quotactl, iopl/ioperm, fanotify, host/domain names, mlock,
 * moving other processes' pages (migrate_pages, move_pages), and the obsolete
 * (uselib, sysfs, _sysctl, ustat, nfsservctl, lookup_dcookie, vhangup).
 * Restricted also goes without network sockets, personality, SysV/POSIX IPC,
 * AIO, xattr writes and scheduler tuning: nothing sh, coreutils or python3
 * need.
 */
static const struct allowed_syscall {
        const char *name;
        unsigned profiles;
        int nr;
} allowed_syscalls[] = {
        /* file I/O */
        {"read", ALL, 0},
        {"write", ALL, 0},
        {"readv", ALL, 0},
        {"writev", ALL, 0},
        {"pread64", ALL, 0},
        {"pwrite64", ALL, 0},
        {"preadv", ALL, 0},
        {"pwritev", ALL, 0},
        {"preadv2", ALL, 0},
        {"pwritev2", ALL, 0},
        {"lseek", ALL, 0},
        {"open", ALL, 0},
        {"openat", ALL, 0},
        {"openat2", ALL, 0},
        {"creat", ALL, 0},
        {"close", ALL, 0},
        {"close_range", ALL, 0},
        {"dup", ALL, 0},
        {"dup2", ALL, 0},
        {"dup3", ALL, 0},
        {"fcntl", ALL, 0},
        {"flock", ALL, 0},
        {"fsync", ALL, 0},
        {"fdatasync", ALL, 0},
        {"sync", ALL, 0},
        {"syncfs", ALL, 0},
        {"sync_file_range", ALL, 0},
        {"truncate", ALL, 0},
        {"ftruncate", ALL, 0},
        {"fallocate", ALL, 0},
        {"fadvise64", ALL, 0},
        {"readahead", ALL, 0},
        {"sendfile", ALL, 0},
        {"copy_file_range", ALL, 0},
        {"splice", ALL, 0},
        {"tee", ALL, 0},
        {"vmsplice", DP, 0},
        {"cachestat", ALL, 0},
        /* metadata and directories */
        {"stat", ALL, 0},
        {"fstat", ALL, 0},
        {"lstat", ALL, 0},
        {"newfstatat", ALL, 0},
        {"statx", ALL, 0},
        {"statfs", ALL, 0},
        {"fstatfs", ALL, 0},
        {"access", ALL, 0},
        {"faccessat", ALL, 0},
        {"faccessat2", ALL, 0},
        {"readlink", ALL, 0},
        {"readlinkat", ALL, 0},
        {"getdents", ALL, 0},
        {"getdents64", ALL, 0},
        {"getcwd", ALL, 0},
        {"chdir", ALL, 0},
        {"fchdir", ALL, 0},
        {"mkdir", ALL, 0},
        {"mkdirat", ALL, 0},
        {"rmdir", ALL, 0},
        {"unlink", ALL, 0},
        {"unlinkat", ALL, 0},
        {"rename", ALL, 0},
        {"renameat", ALL, 0},
        {"renameat2", ALL, 0},
        {"link", ALL, 0},
        {"linkat", ALL, 0},
        {"symlink", ALL, 0},
        {"symlinkat", ALL, 0},
        {"chmod", ALL, 0},
        {"fchmod", ALL, 0},
        {"fchmodat", ALL, 0},
        {"fchmodat2", ALL, 0},
        /* Ownership changes only work on ids mapped in our user namespace. */
        {"chown", ALL, 0},
        {"fchown", ALL, 0},
        {"fchownat", ALL, 0},
        {"lchown", ALL, 0},
        {"umask", ALL, 0},
        {"utime", ALL, 0},
        {"utimes", ALL, 0},
        {"utimensat", ALL, 0},
        {"futimesat", ALL, 0},
        {"getxattr", ALL, 0},
        {"lgetxattr", ALL, 0},
        {"fgetxattr", ALL, 0},
        {"listxattr", ALL, 0},
        {"llistxattr", ALL, 0},
        {"flistxattr", ALL, 0},
        {"getxattrat", ALL, NEWER(464)},
        {"listxattrat", ALL, NEWER(465)},
        {"file_getattr", ALL, NEWER(468)},
        /* user.* xattrs on our own tmpfs; security.* and trusted.* need caps */
        {"setxattr", DP, 0},
        {"lsetxattr", DP, 0},
        {"fsetxattr", DP, 0},
        {"removexattr", DP, 0},
        {"lremovexattr", DP, 0},
        {"fremovexattr", DP, 0},
        {"setxattrat", DP, NEWER(463)},
        {"removexattrat", DP, NEWER(466)},
        {"inotify_init", ALL, 0},
        {"inotify_init1", ALL, 0},
        {"inotify_add_watch", ALL, 0},
        {"inotify_rm_watch", ALL, 0},
        /* memory */
        {"brk", ALL, 0},
        {"mmap", ALL, 0},
        {"munmap", ALL, 0},
        {"mprotect", ALL, 0},
        {"mremap", ALL, 0},
        {"madvise", ALL, 0},
        {"msync", ALL, 0},
        {"mincore", ALL, 0},
        {"mseal", ALL, NEWER(462)},
        {"map_shadow_stack", ALL, 0},
        {"pkey_alloc", ALL, 0},
        {"pkey_free", ALL, 0},
        {"pkey_mprotect", ALL, 0},
        {"membarrier", ALL, 0},
        /* A memfd is no more executable than a file in /tmp. */
        {"memfd_create", ALL, 0},
        {"remap_file_pages", DP, 0},
        /* NUMA placement of our own pages only (ps asks for it); the cgroup bounds memory anyway */
        {"get_mempolicy", ALL, 0},
        {"set_mempolicy", ALL, 0},
        {"mbind", DP, 0},
        /* processes and threads; clone is conditional, below */
        {"execve", ALL, 0},
        {"execveat", ALL, 0},
        {"exit", ALL, 0},
        {"exit_group", ALL, 0},
        {"fork", ALL, 0},
        {"vfork", ALL, 0},
        {"wait4", ALL, 0},
        {"waitid", ALL, 0},
        /* Signals reach only our own pid namespace. */
        {"kill", ALL, 0},
        {"tkill", ALL, 0},
        {"tgkill", ALL, 0},
        {"pidfd_open", ALL, 0},
        {"pidfd_send_signal", ALL, 0},
        {"getpid", ALL, 0},
        {"getppid", ALL, 0},
        {"gettid", ALL, 0},
        {"getpgid", ALL, 0},
        {"getpgrp", ALL, 0},
        {"setpgid", ALL, 0},
        {"getsid", ALL, 0},
        {"setsid", ALL, 0},
        {"set_tid_address", ALL, 0},
        {"set_robust_list", ALL, 0},
        {"get_robust_list", ALL, 0},
        {"rseq", ALL, 0},
        {"futex", ALL, 0},
        {"futex_waitv", ALL, 0},
        {"futex_wake", ALL, 0},
        {"futex_wait", ALL, 0},
        {"futex_requeue", ALL, 0},
        {"arch_prctl", ALL, 0},
        /* No prctl undoes NO_NEW_PRIVS or grants a capability. */
        {"prctl", ALL, 0},
        /*
         * Stacking more filters only restricts further (the kernel runs all
         * of them and the strictest answer wins); programs such as sandboxed
         * browsers and systemd-run need it. A second listener is refused by
         * the kernel (EBUSY) while ours exists.
         */
        {"seccomp", ALL, 0},
        {"landlock_create_ruleset", ALL, 0},
        {"landlock_add_rule", ALL, 0},
        {"landlock_restrict_self", ALL, 0},
        {"prlimit64", ALL, 0},
        {"getrlimit", ALL, 0},
        {"setrlimit", ALL, 0},
        {"getrusage", ALL, 0},
        {"getpriority", ALL, 0},
        {"setpriority", DP, 0},
        {"sched_yield", ALL, 0},
        {"sched_getaffinity", ALL, 0},
        {"sched_setaffinity", ALL, 0},
        {"sched_getparam", ALL, 0},
        {"sched_getscheduler", ALL, 0},
        {"sched_getattr", ALL, 0},
        {"sched_get_priority_max", ALL, 0},
        {"sched_get_priority_min", ALL, 0},
        {"sched_rr_get_interval", ALL, 0},
        {"sched_setparam", DP, 0},
        {"sched_setscheduler", DP, 0},
        {"sched_setattr", DP, 0},
        {"ioprio_get", ALL, 0},
        {"ioprio_set", DP, 0},
        {"getcpu", ALL, 0},
        {"restart_syscall", ALL, 0},
        /* Without capabilities on the host these act inside our user namespace only. */
        {"capget", ALL, 0},
        {"capset", ALL, 0},
        {"getuid", ALL, 0},
        {"geteuid", ALL, 0},
        {"getgid", ALL, 0},
        {"getegid", ALL, 0},
        {"getresuid", ALL, 0},
        {"getresgid", ALL, 0},
        {"getgroups", ALL, 0},
        {"setuid", ALL, 0},
        {"setgid", ALL, 0},
        {"setreuid", ALL, 0},
        {"setregid", ALL, 0},
        {"setresuid", ALL, 0},
        {"setresgid", ALL, 0},
        {"setgroups", ALL, 0},
        {"setfsuid", ALL, 0},
        {"setfsgid", ALL, 0},
        /* signals */
        {"rt_sigaction", ALL, 0},
        {"rt_sigprocmask", ALL, 0},
        {"rt_sigreturn", ALL, 0},
        {"rt_sigsuspend", ALL, 0},
        {"rt_sigpending", ALL, 0},
        {"rt_sigtimedwait", ALL, 0},
        {"rt_sigqueueinfo", ALL, 0},
        {"rt_tgsigqueueinfo", ALL, 0},
        {"sigaltstack", ALL, 0},
        {"pause", ALL, 0},
        {"alarm", ALL, 0},
        {"signalfd", ALL, 0},
        {"signalfd4", ALL, 0},
        /* time: reading and sleeping only */
        {"clock_gettime", ALL, 0},
        {"clock_getres", ALL, 0},
        {"clock_nanosleep", ALL, 0},
        {"nanosleep", ALL, 0},
        {"gettimeofday", ALL, 0},
        {"time", ALL, 0},
        {"times", ALL, 0},
        {"getitimer", ALL, 0},
        {"setitimer", ALL, 0},
        {"timer_create", ALL, 0},
        {"timer_settime", ALL, 0},
        {"timer_gettime", ALL, 0},
        {"timer_getoverrun", ALL, 0},
        {"timer_delete", ALL, 0},
        {"timerfd_create", ALL, 0},
        {"timerfd_settime", ALL, 0},
        {"timerfd_gettime", ALL, 0},
        /* waiting and events */
        {"pipe", ALL, 0},
        {"pipe2", ALL, 0},
        {"eventfd", ALL, 0},
        {"eventfd2", ALL, 0},
        {"epoll_create", ALL, 0},
        {"epoll_create1", ALL, 0},
        {"epoll_ctl", ALL, 0},
        {"epoll_wait", ALL, 0},
        {"epoll_pwait", ALL, 0},
        {"epoll_pwait2", ALL, 0},
        {"poll", ALL, 0},
        {"ppoll", ALL, 0},
        {"select", ALL, 0},
        {"pselect6", ALL, 0},
        /* system information */
        {"uname", ALL, 0},
        {"sysinfo", ALL, 0},
        {"getrandom", ALL, 0},
        /* Socket operations; which sockets exist is decided at socket(), below. */
        {"bind", ALL, 0},
        {"connect", ALL, 0},
        {"listen", ALL, 0},
        {"accept", ALL, 0},
        {"accept4", ALL, 0},
        {"sendto", ALL, 0},
        {"sendmsg", ALL, 0},
        {"sendmmsg", ALL, 0},
        {"recvfrom", ALL, 0},
        {"recvmsg", ALL, 0},
        {"recvmmsg", ALL, 0},
        {"shutdown", ALL, 0},
        {"getsockname", ALL, 0},
        {"getpeername", ALL, 0},
        {"getsockopt", ALL, 0},
        {"setsockopt", ALL, 0},
        /* IPC inside our own IPC namespace */
        {"shmget", DP, 0},
        {"shmat", DP, 0},
        {"shmdt", DP, 0},
        {"shmctl", DP, 0},
        {"semget", DP, 0},
        {"semop", DP, 0},
        {"semtimedop", DP, 0},
        {"semctl", DP, 0},
        {"msgget", DP, 0},
        {"msgsnd", DP, 0},
        {"msgrcv", DP, 0},
        {"msgctl", DP, 0},
        {"mq_open", DP, 0},
        {"mq_unlink", DP, 0},
        {"mq_timedsend", DP, 0},
        {"mq_timedreceive", DP, 0},
        {"mq_notify", DP, 0},
        {"mq_getsetattr", DP, 0},
        /* Linux AIO (not io_uring) */
        {"io_setup", DP, 0},
        {"io_destroy", DP, 0},
        {"io_submit", DP, 0},
        {"io_cancel", DP, 0},
        {"io_getevents", DP, 0},
        {"io_pgetevents", DP, 0},
        /* debugging other processes of the run (same namespaces, no capabilities) */
        {"ptrace", P, 0},
        {"process_vm_readv", P, 0},
        {"process_vm_writev", P, 0},
        {"kcmp", P, 0},
        {"pidfd_getfd", P, 0},
        {"personality", P, 0},
};

#define ARG(n, o, a, b) \
        { .arg = (n), .op = (o), .datum_a = (a), .datum_b = (b) }
#define LOW32_EQ(n, v) ARG(n, SCMP_CMP_MASKED_EQ, LOW32, (v))

static const struct conditional_rule {
        const char *name;
        unsigned profiles;
        unsigned n_args;
        struct scmp_arg_cmp args[2]; /* two different arguments at most (see above) */
} conditional_rules[] = {
        /* clone(2) only without namespace flags (clone3 is refused whole: flags in memory) */
        {"clone", ALL, 1, {ARG(0, SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0)}},

        /* Sockets by family; INET types by the low 4 bits (flags live above). */
        {"socket", ALL, 1, {LOW32_EQ(0, AF_UNIX)}},
        /*
         * Netlink: NETLINK_ROUTE only (addresses, links and routes of the run's
         * own network namespace: getaddrinfo and ip need it). The other
         * protocols reach state that is not per-namespace or is a kernel attack
         * surface of its own: audit, uevents, sock_diag, netfilter, xfrm,
         * generic netlink families, crypto... Restricted has no netlink at all.
         */
        {"socket", DP, 2, {LOW32_EQ(0, AF_NETLINK), LOW32_EQ(2, NETLINK_ROUTE)}},
        {"socket", DP, 2, {LOW32_EQ(0, AF_INET), ARG(1, SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM)}},
        {"socket", DP, 2, {LOW32_EQ(0, AF_INET), ARG(1, SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM)}},
        {"socket", DP, 2, {LOW32_EQ(0, AF_INET), ARG(1, SCMP_CMP_MASKED_EQ, 0xf, SOCK_SEQPACKET)}},
        {"socket", DP, 2, {LOW32_EQ(0, AF_INET6), ARG(1, SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM)}},
        {"socket", DP, 2, {LOW32_EQ(0, AF_INET6), ARG(1, SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM)}},
        {"socket", DP, 2, {LOW32_EQ(0, AF_INET6), ARG(1, SCMP_CMP_MASKED_EQ, 0xf, SOCK_SEQPACKET)}},
        {"socketpair", ALL, 1, {LOW32_EQ(0, AF_UNIX)}},

        /* Only FIFOs, sockets and regular files (type 0 means regular), never devices. */
        {"mknod", ALL, 1, {ARG(1, SCMP_CMP_MASKED_EQ, S_IFMT, 0)}},
        {"mknod", ALL, 1, {ARG(1, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFREG)}},
        {"mknod", ALL, 1, {ARG(1, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFIFO)}},
        {"mknod", ALL, 1, {ARG(1, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFSOCK)}},
        {"mknodat", ALL, 1, {ARG(2, SCMP_CMP_MASKED_EQ, S_IFMT, 0)}},
        {"mknodat", ALL, 1, {ARG(2, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFREG)}},
        {"mknodat", ALL, 1, {ARG(2, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFIFO)}},
        {"mknodat", ALL, 1, {ARG(2, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFSOCK)}},

        /* PER_LINUX and the query; privileged may set any persona (table above). */
        {"personality", D, 1, {LOW32_EQ(0, 0)}},
        {"personality", D, 1, {LOW32_EQ(0, 0xffffffff)}},
};

/*
 * ioctl commands allowed in every profile, compared on the low 32 bits (the
 * kernel's cmd is an unsigned int); any other is refused with EPERM and
 * reported, like a refused syscall. A run has no device but null, zero, full,
 * random, urandom and its own devpts, so what programs need is terminal
 * handling, fd and socket flags, and a few file queries. Left out on purpose,
 * among others: TIOCSTI (pushes input into a terminal another process reads),
 * TIOCLINUX (the virtual console), TIOCSETD (line disciplines: n_hdlc, n_gsm
 * and friends have a CVE history), TIOCCONS and TIOCVHANGUP, serial and modem
 * configuration, and every device, file system, btrfs, loop, tun, kvm, perf,
 * userfaultfd and block ioctl. Docker's default profile and crun/runc allow
 * ioctl whole; flatpak refuses TIOCSTI and TIOCLINUX only.
 */
/* clang-format off */
static const uint32_t allowed_ioctls[] = {
        /* termios (glibc tcgetattr/tcsetattr, isatty), also the SysV and termios2 forms */
        TCGETS, TCSETS, TCSETSW, TCSETSF, TCGETA, TCSETA, TCSETAW, TCSETAF,
        0x802c542a /* TCGETS2 */, 0x402c542b /* TCSETS2 */, 0x402c542c /* TCSETSW2 */,
        0x402c542d /* TCSETSF2 */, TCSBRK, TCSBRKP, TCXONC, TCFLSH, TIOCSBRK, TIOCCBRK,
        /* job control and the controlling terminal */
        TIOCSCTTY, TIOCNOTTY, TIOCGPGRP, TIOCSPGRP, TIOCGSID, TIOCEXCL, TIOCNXCL, TIOCGEXCL,
        /* window size, queues, packet mode */
        TIOCGWINSZ, TIOCSWINSZ, TIOCOUTQ, FIONREAD, TIOCPKT, TIOCGPKT,
        /* ptys of the run's own devpts (posix_openpt, ptsname, unlockpt) */
        TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK, TIOCGPTPEER, TIOCSIG, TIOCGDEV,
        /* reading which line discipline is set; setting one (TIOCSETD) is refused */
        TIOCGETD,
        /* modem lines: meaningless on a pty, answered by the pty itself */
        TIOCMGET, TIOCMSET, TIOCMBIS, TIOCMBIC, TIOCGSOFTCAR, TIOCSSOFTCAR,
        /* fd flags (libuv, Java), the async I/O owner */
        FIONBIO, FIOCLEX, FIONCLEX, FIOASYNC, FIOQSIZE, FIOSETOWN, FIOGETOWN, SIOCSPGRP, SIOCGPGRP,
        /* sockets: queues, timestamps, interface queries in the run's own namespace */
        SIOCATMARK, SIOCGSTAMP_OLD, SIOCGSTAMPNS_OLD, SIOCOUTQNSD, SIOCGIFNAME, SIOCGIFCONF,
        SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFDSTADDR, SIOCGIFBRDADDR, SIOCGIFNETMASK, SIOCGIFMETRIC,
        SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFINDEX, SIOCGIFTXQLEN,
        /* files: attributes, extents, block size, reflinks (cp) */
        FS_IOC_GETFLAGS, FS_IOC_GETVERSION, 0xc020660b /* FS_IOC_FIEMAP */,
        0x801c581f /* FS_IOC_FSGETXATTR */, FIGETBSZ, FICLONE, FICLONERANGE, FIDEDUPERANGE,
        /* /dev/random's entropy count (a read) */
        RNDGETENTCNT,
        /* namespace files of /proc/self/ns (lsns): queries only */
        NS_GET_USERNS, NS_GET_PARENT, NS_GET_NSTYPE, NS_GET_OWNER_UID,
};
/* clang-format on */

static int rule_add(scmp_filter_ctx ctx, const char *name, int nr, unsigned n_args,
                    const struct scmp_arg_cmp *args, au_error *err) {
        int r;

        if (nr < 0)
                return 0; /* NEWER() on an architecture we have no number for */
        if (nr == 0) {
                nr = seccomp_syscall_resolve_name(name);
                if (nr == __NR_SCMP_ERROR)
                        return au_error_set(err, EINVAL, "seccomp: unknown syscall %s", name);
        }
        /* Negative pseudo-numbers (calls this architecture lacks) are ignored by libseccomp. */
        r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n_args, args);
        if (r < 0)
                return au_error_set(err, r, "seccomp: allow %s", name);
        return 0;
}

static unsigned profile_of(sbx_trust level) {
        switch (level) {
        case SBX_TRUST_RESTRICTED:
                return R;
        case SBX_TRUST_STANDARD:
        case SBX_TRUST_ELEVATED:
                return D;
        case SBX_TRUST_PRIVILEGED:
                return P;
        default:
                return 0;
        }
}

static void seccomp_releasep(scmp_filter_ctx *ctx) {
        if (*ctx)
                seccomp_release(*ctx);
}

/* Reads the exported program back: seccomp_export_bpf() only writes to an fd in 2.5. */
static int export_filter(scmp_filter_ctx ctx, sbx_seccomp_filter *ret, au_error *err) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ struct sock_filter *insns = NULL;
        struct stat st;
        size_t size, done = 0;
        int r;

        fd = memfd_create("autoos-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                return au_error_set(err, errno, "seccomp: memfd_create");
        r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return au_error_set(err, r, "seccomp: export BPF");
        if (fstat(fd, &st) < 0)
                return au_error_set(err, errno, "seccomp: stat exported BPF");

        size = (size_t) st.st_size;
        if (size == 0 || size % sizeof(struct sock_filter) != 0 ||
            size / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return au_error_set(err, EFBIG, "seccomp: exported BPF has %zu bytes", size);

        insns = malloc(size);
        if (!insns)
                return au_error_set(err, ENOMEM, "seccomp: BPF buffer");
        while (done < size) {
                ssize_t n = pread(fd, (char *) insns + done, size - done, (off_t) done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return au_error_set(err, errno, "seccomp: read exported BPF");
                if (n == 0)
                        return au_error_set(err, EIO, "seccomp: exported BPF truncated");
                done += (size_t) n;
        }

        ret->len = (unsigned short) (size / sizeof(struct sock_filter));
        ret->insns = TAKE_PTR(insns);
        return 0;
}

/*
 * Compiles the profile of a trust level into BPF. On success ret holds the
 * program, owned by the caller (sbx_seccomp_filter_done()); on failure ret is
 * untouched and err says why (e.g. a kernel without user notification).
 */
int sbx_seccomp_compile(sbx_trust level, sbx_seccomp_filter *ret, au_error *err) {
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        unsigned profile = profile_of(level);
        int r;

        if (!ret || profile == 0)
                return au_error_set(err, EINVAL, "seccomp: no profile for trust level %d", (int) level);

        /* libseccomp refuses a NOTIFY default when the kernel cannot notify. */
        ctx = seccomp_init(SCMP_ACT_NOTIFY);
        if (!ctx)
                return au_error_set(
                        err, EOPNOTSUPP,
                        "seccomp: cannot build a filter with user notification (kernel older than 5.0?)");
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r < 0)
                return au_error_set(err, r, "seccomp: set bad-architecture action");
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
        if (r < 0)
                return au_error_set(err, r, "seccomp: set binary-tree optimization");

        for (size_t i = 0; i < ELEMENTSOF(allowed_syscalls); i++) {
                const struct allowed_syscall *s = &allowed_syscalls[i];
                if (!(s->profiles & profile))
                        continue;
                r = rule_add(ctx, s->name, s->nr, 0, NULL, err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(conditional_rules); i++) {
                const struct conditional_rule *c = &conditional_rules[i];
                if (!(c->profiles & profile))
                        continue;
                r = rule_add(ctx, c->name, 0, c->n_args, c->args, err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(allowed_ioctls); i++) {
                struct scmp_arg_cmp cmp = LOW32_EQ(1, allowed_ioctls[i]);

                r = rule_add(ctx, "ioctl", 0, 1, &cmp, err);
                if (r < 0)
                        return r;
        }

        return export_filter(ctx, ret, err);
}

/* ---- a cache of compiled profiles, for one-shot runs ---------------------------- */

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
        const unsigned char *p = data;
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

static uint64_t fnv1a_str(uint64_t h, const char *s) {
        return fnv1a(h, s, strlen(s) + 1);
}

/*
 * Everything the BPF of a profile is made of: the tables above, libseccomp's
 * version and API level (what it knows of the kernel), and the kernel.
 */
static uint64_t profile_key(unsigned profile) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        const struct scmp_version *v = seccomp_version();
        unsigned api = seccomp_api_get();
        struct utsname u = {};

        h = fnv1a(h, &profile, sizeof(profile));
        for (size_t i = 0; i < ELEMENTSOF(allowed_syscalls); i++) {
                h = fnv1a_str(h, allowed_syscalls[i].name);
                h = fnv1a(h, &allowed_syscalls[i].profiles, sizeof(allowed_syscalls[i].profiles));
                h = fnv1a(h, &allowed_syscalls[i].nr, sizeof(allowed_syscalls[i].nr));
        }
        for (size_t i = 0; i < ELEMENTSOF(conditional_rules); i++) {
                const struct conditional_rule *c = &conditional_rules[i];
                h = fnv1a_str(h, c->name);
                h = fnv1a(h, &c->profiles, sizeof(c->profiles));
                h = fnv1a(h, &c->n_args, sizeof(c->n_args));
                for (unsigned a = 0; a < c->n_args && a < ELEMENTSOF(c->args); a++) {
                        h = fnv1a(h, &c->args[a].arg, sizeof(c->args[a].arg));
                        h = fnv1a(h, &c->args[a].op, sizeof(c->args[a].op));
                        h = fnv1a(h, &c->args[a].datum_a, sizeof(c->args[a].datum_a));
                        h = fnv1a(h, &c->args[a].datum_b, sizeof(c->args[a].datum_b));
                }
        }
        h = fnv1a(h, allowed_ioctls, sizeof(allowed_ioctls));
        if (v) {
                h = fnv1a(h, &v->major, sizeof(v->major));
                h = fnv1a(h, &v->minor, sizeof(v->minor));
                h = fnv1a(h, &v->micro, sizeof(v->micro));
        }
        h = fnv1a(h, &api, sizeof(api));
        if (uname(&u) == 0) {
                h = fnv1a_str(h, u.release);
                h = fnv1a_str(h, u.version);
                h = fnv1a_str(h, u.machine);
        }
        return h;
}

/* A directory only root can write to, or the cache is not used. */
static bool trusted_dir(int dirfd) {
        struct stat st;
        return fstat(dirfd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
               !(st.st_mode & 022);
}

static int cache_read(int dirfd, const char *name, sbx_seccomp_filter *ret) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_free_ struct sock_filter *insns = NULL;
        struct stat st;
        size_t size, done = 0;

        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        size = (size_t) st.st_size;
        /* Written by us (root), readable by nobody else, whole instructions. */
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) || st.st_nlink != 1 ||
            size == 0 || size % sizeof(struct sock_filter) != 0 ||
            size / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return -EBADMSG;
        insns = malloc(size);
        if (!insns)
                return -ENOMEM;
        while (done < size) {
                ssize_t n = pread(fd, (char *) insns + done, size - done, (off_t) done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? negative_errno() : -EBADMSG;
                done += (size_t) n;
        }
        ret->len = (unsigned short) (size / sizeof(struct sock_filter));
        ret->insns = TAKE_PTR(insns);
        return 0;
}

/* Best effort: a file of our own, renamed into place whole. */
static void cache_write(int dirfd, const char *name, const sbx_seccomp_filter *f) {
        char tmp[128];
        size_t size = f->len * sizeof(struct sock_filter);

        snprintf(tmp, sizeof(tmp), ".%s.%d", name, (int) getpid());
        _cleanup_close_ int fd =
                openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        if (write(fd, f->insns, size) != (ssize_t) size || renameat(dirfd, tmp, dirfd, name) < 0)
                unlinkat(dirfd, tmp, 0);
}

int sbx_seccomp_compile_cached(sbx_trust level, const char *cache_dir, sbx_seccomp_filter *ret,
                               au_error *err) {
        unsigned profile = profile_of(level);
        char name[64];
        int r;

        if (!cache_dir || profile == 0)
                return sbx_seccomp_compile(level, ret, err);
        _cleanup_close_ int dirfd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0 || !trusted_dir(dirfd))
                return sbx_seccomp_compile(level, ret, err);
        snprintf(name, sizeof(name), "seccomp-%u-%016" PRIx64 ".bpf", profile, profile_key(profile));
        if (cache_read(dirfd, name, ret) == 0)
                return 0;
        r = sbx_seccomp_compile(level, ret, err);
        if (r < 0)
                return r;
        cache_write(dirfd, name, ret);
        return 0;
}

/* The ioctl commands every profile allows (low 32 bits); the table is static. */
size_t sbx_seccomp_allowed_ioctls(const uint32_t **ret) {
        if (ret)
                *ret = allowed_ioctls;
        return ELEMENTSOF(allowed_ioctls);
}

/* Frees the program; f stays valid (empty) and may be passed again. */
void sbx_seccomp_filter_done(sbx_seccomp_filter *f) {
        if (!f)
                return;
        free(f->insns);
        f->insns = NULL;
        f->len = 0;
}

/*
 * In the child, after every other setup step: sets NO_NEW_PRIVS (the kernel
 * demands it of a process without CAP_SYS_ADMIN, and we want it anyway) and
 * loads the filter with a user-notification listener. Returns the listener
 * fd (close-on-exec) or a negative errno; -EBUSY means some filter already
 * in force on us has a listener of its own. Allocates nothing.
 */
int sbx_seccomp_load(const sbx_seccomp_filter *f) {
        struct sock_fprog prog;
        long fd;

        if (!f || !f->insns || f->len == 0)
                return -EINVAL;
        prog = (struct sock_fprog){.len = f->len, .filter = f->insns};

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return negative_errno();
        fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        if (fd < 0)
                return negative_errno();
        return (int) fd;
}

/*
 * The kernel's notification structures may grow; it says how big they are
 * now. Queried once: the answer cannot change while we run.
 */
static int notif_sizes(struct seccomp_notif_sizes *ret) {
        static struct seccomp_notif_sizes cached;
        static int known;
        struct seccomp_notif_sizes sizes;

        if (__atomic_load_n(&known, __ATOMIC_ACQUIRE)) {
                *ret = cached;
                return 0;
        }
        if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0)
                return negative_errno();
        /* Racing threads store the same values. */
        cached = sizes;
        __atomic_store_n(&known, 1, __ATOMIC_RELEASE);
        *ret = sizes;
        return 0;
}

/*
 * Whether the clone3 a notification stands for asked for a namespace: the
 * flags live in the target's memory (struct clone_args, flags first). -EAGAIN
 * when the target is gone; 0 (not reported) when its memory cannot be read.
 */
static int clone3_wants_namespace(int listener_fd, const struct seccomp_notif *req) {
        _cleanup_close_ int mem = -1;
        char path[64];
        uint64_t flags = 0;
        ssize_t n;
        __u64 id = req->id;

        snprintf(path, sizeof(path), "/proc/%u/mem", (unsigned) req->pid);
        mem = open(path, O_RDONLY | O_CLOEXEC);
        if (mem >= 0)
                n = pread(mem, &flags, sizeof(flags), (off_t) req->data.args[0]);
        else
                n = -1;
        /* The pid may have been reused: only a still-pending notification vouches for what we read. */
        if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) < 0)
                return -EAGAIN;
        if (n != (ssize_t) sizeof(flags))
                return 0;
        return (flags & CLONE3_NS_FLAGS) != 0;
}

/* Room for the kernel's structures as they are today and as they may grow. */
#define NOTIF_BUF_SIZE 512

/*
 * In the supervisor: takes one pending notification off listener_fd, refuses
 * the call (EPERM; ENOSYS for clone3 so that libc falls back to clone(2))
 * and stores the syscall's name in name ("" for a clone3 without namespace
 * flags: libc tries clone3 for every thread). Never blocks: -EAGAIN when
 * nothing is pending, when every task of the run is gone (the listener then
 * only reports POLLHUP: stop watching it), or when the target died before
 * the answer. Not for concurrent use on the same listener from two threads.
 */
int sbx_seccomp_handle(int listener_fd, char *name, size_t name_size) {
        union {
                struct seccomp_notif n;
                uint8_t raw[NOTIF_BUF_SIZE];
        } req;
        union {
                struct seccomp_notif_resp r;
                uint8_t raw[NOTIF_BUF_SIZE];
        } resp;
        struct seccomp_notif_sizes sizes;
        struct pollfd pfd = {.fd = listener_fd, .events = POLLIN};
        bool report = true;
        int error = -EPERM, r;

        if (listener_fd < 0 || !name || name_size == 0)
                return -EINVAL;
        name[0] = '\0';

        r = notif_sizes(&sizes);
        if (r < 0)
                return r;
        if (sizes.seccomp_notif > sizeof(req) || sizes.seccomp_notif_resp > sizeof(resp))
                return -EOVERFLOW;

        /* RECV would block (it ignores O_NONBLOCK). */
        r = poll(&pfd, 1, 0);
        if (r < 0)
                return errno == EINTR ? -EAGAIN : negative_errno();
        if (pfd.revents & POLLNVAL)
                return -EBADF;
        if (!(pfd.revents & POLLIN))
                return -EAGAIN;

        /* The kernel refuses a receive buffer that is not all zeroes. */
        memset(&req, 0, sizeof(req));
        if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
                if (errno == ENOENT || errno == EINTR)
                        return -EAGAIN;
                return negative_errno();
        }

        if (req.n.data.nr == __NR_clone3) {
                error = -ENOSYS;
                r = clone3_wants_namespace(listener_fd, &req.n);
                if (r < 0)
                        return r;
                report = r > 0;
        }

        memset(&resp, 0, sizeof(resp));
        resp.r.id = req.n.id;
        resp.r.val = 0;
        resp.r.error = error;
        resp.r.flags = 0;
        if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0) {
                if (errno == ENOENT)
                        return -EAGAIN;
                return negative_errno();
        }

        if (report) {
                _cleanup_free_ char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, req.n.data.nr);
                if (s)
                        snprintf(name, name_size, "%s", s);
                else
                        snprintf(name, name_size, "syscall_%d", req.n.data.nr);
        }
        return 0;
}
