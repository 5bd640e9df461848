/* SPDX-License-Identifier: MIT */
/*
 * The child between clone3() and execve(): waits for the parent to map its
 * ids and place it in its cgroup, builds the sandbox around itself, gives
 * up every privilege, and executes the program. It never returns into the
 * parent's code: failures go to the parent over the sync socket, then _exit.
 * It must not allocate or take a lock: it runs in the parent's memory
 * (spawn.c), whose other threads (netpool.c) may hold the allocator's lock,
 * and writes nothing there but its own stack. It starts with every signal
 * blocked and puts the caller's mask back just before execve.
 */
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"
#include "sandbox-internal.h"

static void send_msg(int fd, int kind, const au_error *err, int listener) {
        sbx_child_msg m = {.kind = kind};
        if (err) {
                m.code = err->code;
                memcpy(m.msg, err->msg, sizeof(m.msg));
        }
        struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control = {};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (listener >= 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &listener, sizeof(int));
        }
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
                _exit(SBX_CHILD_EXIT_FAILED); /* the parent is gone: nobody to run for */
}

static _noreturn_ void fail(const sbx_child_args *a, au_error *err) {
        send_msg(a->sync_fd, SBX_CHILD_MSG_ERROR, err, -1);
        _exit(SBX_CHILD_EXIT_FAILED);
}

/* After setresuid the permitted set survives (keepcaps); raise it back to effective. */
static int raise_effective(void) {
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2];
        if (syscall(SYS_capget, &h, d) < 0)
                return negative_errno();
        d[0].effective = d[0].permitted;
        d[1].effective = d[1].permitted;
        return syscall(SYS_capset, &h, d) < 0 ? negative_errno() : 0;
}

/*
 * Raw system calls, not glibc's wrappers: in a process that has threads,
 * glibc broadcasts credential changes to every thread it knows of, and in
 * this child those threads do not exist; it would wait for them forever.
 */
static int become_sandbox_user(au_error *err) {
        /* Drop the host's supplementary groups (root's, as cloned) before anything else. */
        if (syscall(SYS_setgroups, 0, NULL) < 0)
                return au_error_set(err, errno, "clear supplementary groups");
        if (syscall(SYS_setresgid, SBX_INSIDE_GID, SBX_INSIDE_GID, SBX_INSIDE_GID) < 0)
                return au_error_set(err, errno, "setresgid %d", SBX_INSIDE_GID);
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                return au_error_set(err, errno, "PR_SET_KEEPCAPS");
        if (syscall(SYS_setresuid, SBX_INSIDE_UID, SBX_INSIDE_UID, SBX_INSIDE_UID) < 0)
                return au_error_set(err, errno, "setresuid %d", SBX_INSIDE_UID);
        int r = raise_effective();
        if (r < 0)
                return au_error_set(err, r, "raise capabilities in the sandbox user namespace");
        return 0;
}

static int set_rlimits(const sbx_spec *spec, au_error *err) {
        /* RLIMIT_CPU backs up the cgroup-wide CPU limit for a single process. */
        uint64_t cpu_s = spec->limits.cpu_ms / 1000 + 2;
        const struct {
                int resource;
                rlim_t value;
                const char *name;
        } lims[] = {
                {RLIMIT_CORE, 0, "RLIMIT_CORE"},
                {RLIMIT_NOFILE, 4096, "RLIMIT_NOFILE"},
                {RLIMIT_MEMLOCK, 64 * 1024, "RLIMIT_MEMLOCK"},
                {RLIMIT_MSGQUEUE, 64 * 1024, "RLIMIT_MSGQUEUE"},
                {RLIMIT_SIGPENDING, 1024, "RLIMIT_SIGPENDING"},
                {RLIMIT_CPU, (rlim_t) cpu_s, "RLIMIT_CPU"},
        };
        for (size_t i = 0; i < ELEMENTSOF(lims); i++) {
                struct rlimit rl = {lims[i].value, lims[i].value};
                struct rlimit cur;
                /* Never raise a hard limit the host set lower. */
                if (getrlimit(lims[i].resource, &cur) == 0 && cur.rlim_max != RLIM_INFINITY &&
                    cur.rlim_max < rl.rlim_max)
                        rl.rlim_cur = rl.rlim_max = cur.rlim_max;
                if (setrlimit(lims[i].resource, &rl) < 0)
                        return au_error_set(err, errno, "set %s", lims[i].name);
        }
        return 0;
}

static int setup_stdio(const sbx_child_args *a, au_error *err) {
        int in = a->stdin_fd;
        if (in < 0) {
                in = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (in < 0)
                        return au_error_set(err, errno, "open /dev/null in sandbox");
        }
        if (dup2(in, 0) < 0 || dup2(a->stdout_fd, 1) < 0 || dup2(a->stderr_fd, 2) < 0)
                return au_error_set(err, errno, "set up stdin/stdout/stderr");
        return 0;
}

/*
 * execve()s the spec's program. A name without a '/' is looked up on the PATH
 * of the run's environment (which always has one), over the sandbox's root, as
 * execvp does: an entry that does not hold it is skipped, EACCES is kept while
 * the search goes on, any other failure ends it. Returns only on failure, with
 * err naming the program. No allocation: this runs in the cloned child.
 */
static void exec_program(const sbx_spec *spec, au_error *err) {
        const char *prog = spec->argv[0], *path = "/usr/local/bin:/usr/bin:/bin";
        char buf[PATH_MAX];
        size_t plen = strlen(prog);
        int saved = ENOENT;

        if (strchr(prog, '/')) {
                execve(prog, spec->argv, spec->env);
                au_error_set(err, errno, "execve %s", prog);
                return;
        }
        for (char **e = spec->env; e && *e; e++)
                if (strncmp(*e, "PATH=", 5) == 0)
                        path = *e + 5;
        for (const char *p = path;;) {
                const char *end = strchrnul(p, ':');
                const char *dir = p;
                size_t dlen = (size_t) (end - p);

                if (dlen == 0) { /* an empty entry is the working directory */
                        dir = ".";
                        dlen = 1;
                }
                if (dlen + 1 + plen < sizeof(buf)) {
                        memcpy(buf, dir, dlen);
                        buf[dlen] = '/';
                        memcpy(buf + dlen + 1, prog, plen + 1);
                        execve(buf, spec->argv, spec->env);
                        if (errno == EACCES)
                                saved = EACCES;
                        else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP &&
                                 errno != ENAMETOOLONG) {
                                au_error_set(err, errno, "execve %s", buf);
                                return;
                        }
                }
                if (!*end)
                        break;
                p = end + 1;
        }
        if (saved == ENOENT)
                au_error_set(err, ENOENT, "program '%s' not found on PATH (%s) in the sandbox", prog, path);
        else
                au_error_set(err, saved, "execve %s (found on PATH %s)", prog, path);
}

/* The kernel's struct sigaction (rt_sigaction), so that no libc wrapper is involved. */
struct kernel_sigaction {
        void *handler;
        unsigned long flags;
        void *restorer;
        uint64_t mask;
};

/*
 * Every handler inherited from the parent back to the default, then the
 * program's signal mask: a signal arriving before execve must not run the
 * parent's handler in the parent's memory. Ignored signals stay ignored, as
 * across execve.
 */
static void restore_signals(const sbx_child_args *a) {
        for (int sig = 1; sig < 65; sig++) {
                struct kernel_sigaction old = {}, dfl = {};
                if (sig == SIGKILL || sig == SIGSTOP ||
                    syscall(SYS_rt_sigaction, sig, NULL, &old, sizeof(old.mask)) < 0)
                        continue;
                if (old.handler != (void *) SIG_DFL && old.handler != (void *) SIG_IGN)
                        syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
        }
        syscall(SYS_rt_sigprocmask, SIG_SETMASK, &a->sigmask, NULL, sizeof(uint64_t));
}

void sbx_child_main(const sbx_child_args *a) {
        const sbx_spec *spec = a->spec;
        au_error err = {};
        char go;

        /* Only the parent may hold its end: if it dies, our reads below see EOF. */
        if (a->parent_sync_fd >= 0)
                close(a->parent_sync_fd);

        /* Wait until the parent has written our uid/gid maps and placed us in the cgroup. */
        if (read(a->sync_fd, &go, 1) != 1)
                _exit(SBX_CHILD_EXIT_FAILED);

        if (become_sandbox_user(&err) < 0)
                fail(a, &err);
        if (sethostname("sandbox", strlen("sandbox")) < 0) {
                au_error_set(&err, errno, "set hostname");
                fail(a, &err);
        }
        if (sbx_rootfs_setup(a, &err) < 0)
                fail(a, &err);
        if (setup_stdio(a, &err) < 0)
                fail(a, &err);
        if (set_rlimits(spec, &err) < 0)
                fail(a, &err);
        if (chdir(spec->cwd) < 0) {
                au_error_set(&err, errno, "chdir %s in sandbox", spec->cwd);
                fail(a, &err);
        }

        /* Every inherited fd but stdio and the sync socket (close-on-exec) goes now. */
        int sync_fd = a->sync_fd;
        if (sync_fd > 3)
                syscall(SYS_close_range, 3, sync_fd - 1, 0);
        syscall(SYS_close_range, sync_fd + 1, ~0U, 0);

        /* The parent has been moving us into the run's cgroup meanwhile; wait for it, then
         * make that cgroup our cgroup namespace's root. No user code has run yet. */
        if (read(sync_fd, &go, 1) != 1 || go != 'C')
                _exit(SBX_CHILD_EXIT_FAILED);
        if (unshare(CLONE_NEWCGROUP) < 0) {
                au_error_set(&err, errno, "create cgroup namespace");
                fail(a, &err);
        }

        restore_signals(a);
        if (sbx_caps_drop_all(a->no_caps, &err) < 0)
                fail(a, &err);
        /* Set after the uid change, which would clear it; checked by the sendmsg below. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
                au_error_set(&err, errno, "PR_SET_PDEATHSIG");
                fail(a, &err);
        }

        int listener = sbx_seccomp_load(a->filter);
        if (listener < 0) {
                au_error_set(&err, -listener, "load the seccomp filter");
                fail(a, &err);
        }
        send_msg(sync_fd, SBX_CHILD_MSG_LISTENER, NULL, listener);
        close(listener);

        exec_program(spec, &err);
        fail(a, &err);
}
