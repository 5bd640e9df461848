/* SPDX-License-Identifier: MIT */
/*
 * Starting and supervising a run: the parent's side of DESIGN.md "One
 * sandboxed run".
 *
 * sbx_run_start(): uid from the pool, cgroup, pipes, clone3() into new
 * user/pid/mount/net/uts/ipc(/time) namespaces with a pidfd, uid/gid maps,
 * v1 cgroup attach, "go", then wait on the sync socket for the seccomp
 * listener and EOF (execve succeeded) or an error.
 *
 * Supervision: one epoll set per run (pidfd, stdout, stderr, seccomp
 * listener, a wall-clock deadline timer, a check timer for CPU time and the
 * pids limit). The run's epoll fd nests in the caller's loop.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <sys/capability.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/macro.h"
#include "egress.h"
#include "sandbox-internal.h"

#define DEFAULT_UID_BASE 1000000000u
#define DEFAULT_UID_COUNT 65536u
#define DEFAULT_STATE_DIR "/run/autoos"
#define READ_CHUNK 65536

struct sbx_context {
        char *node;
        char *state_dir;
        sbx_cgroup_root *cgroups;
        sbx_uidpool *uids;
        sbx_seccomp_filter filters[_SBX_TRUST_MAX];
        sbx_rootfs_template template;
        sbx_netpool *netpool;
        sbx_spawner *spawner;
        sbx_egress *egress; /* NULL: this node gives no egress */
        void *no_caps;      /* cap_t */
        bool have_timens;
        uint64_t seq;
};

enum { EV_PIDFD = 1, EV_STDOUT, EV_STDERR, EV_NOTIFY, EV_WALL, EV_CHECK, EV_SYNC };

typedef struct stream {
        int fd;
        au_buf buf; /* what is kept, bounded by the output limit */
        uint64_t total;
        bool eof;
} stream;

struct sbx_run {
        sbx_context *ctx;
        sbx_result *result;
        sbx_limits limits;
        sbx_output_fn output;
        void *userdata;

        pid_t pid;
        int pidfd;
        int ep;
        int listener;
        int wall_fd, check_fd;
        int mntns_fd; /* keeps the mount namespace: its teardown is deferred (netpool.c) */
        int sync_fd;  /* the child's setup reports, until it has exec'd */
        bool starting;
        sbx_child_args *child_args; /* read by the child in our memory until it has exec'd */
        sbx_spec *child_spec;
        char *setup_error; /* the child could not set up: outcome sandbox_error */
        stream out[2];
        sbx_cgroup *cg;
        sbx_egress_link *egress;
        uid_t uid;
        uint64_t t0_ns;

        bool exited;
        siginfo_t status;
        bool killed;
        sbx_outcome kill_outcome;
        char *kill_reason;
        bool finished;
};

/* ---- context ---------------------------------------------------------------- */

int sbx_context_new(const sbx_config *cfg, sbx_context **ret, au_error *err) {
        sbx_config def = {};
        char path[4096], host[256];
        int r;

        if (!cfg)
                cfg = &def;
        if (geteuid() != 0)
                return au_error_set(err, EPERM,
                                    "sandboxed runs need root: the parent writes uid maps for a pool of "
                                    "unprivileged host uids and creates cgroups");

        sbx_context *ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return -ENOMEM;
        if (!cfg->node && gethostname(host, sizeof(host)) < 0)
                snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        ctx->node = strdup(cfg->node ? cfg->node : host);
        ctx->state_dir = strdup(cfg->state_dir ? cfg->state_dir : DEFAULT_STATE_DIR);
        if (!ctx->node || !ctx->state_dir) {
                r = -ENOMEM;
                goto fail;
        }
        if (mkdir(ctx->state_dir, 0755) < 0 && errno != EEXIST) {
                r = au_error_set(err, errno, "create state directory %s", ctx->state_dir);
                goto fail;
        }

        /* First, so that the helper thread makes the first network namespace while we do the rest. */
        r = sbx_netpool_new(cfg->prepare_ahead, &ctx->netpool, err);
        if (r < 0)
                goto fail;
        r = sbx_cgroup_root_new(cfg->cgroup_parent, &ctx->cgroups, err);
        if (r < 0)
                goto fail;
        if (!cfg->defer_stale_cleanup)
                sbx_cgroup_root_cleanup_stale(ctx->cgroups);

        snprintf(path, sizeof(path), "%s/uids", ctx->state_dir);
        r = sbx_uidpool_new(cfg->uid_base ? cfg->uid_base : DEFAULT_UID_BASE,
                            cfg->uid_count ? cfg->uid_count : DEFAULT_UID_COUNT,
                            cfg->lock_dir ? cfg->lock_dir : path, &ctx->uids, err);
        if (r < 0)
                goto fail;

        /* Long-lived supervisors compile every profile now; a one-shot run only the one it needs. */
        for (int t = 0; cfg->prepare_ahead > 1 && t < _SBX_TRUST_MAX; t++) {
                r = sbx_seccomp_compile((sbx_trust) t, &ctx->filters[t], err);
                if (r < 0)
                        goto fail;
        }

        ctx->template.lock_fd = -1;
        r = sbx_rootfs_template_open(ctx->state_dir, &ctx->template, err);
        if (r < 0)
                goto fail;
        if (cfg->egress && sbx_egress_config_usable(cfg->egress) &&
            (r = sbx_egress_new(cfg->egress, ctx->state_dir, &ctx->egress, err)) < 0)
                goto fail;
        r = sbx_spawner_new(&ctx->spawner, err);
        if (r < 0)
                goto fail;
        ctx->have_timens = access("/proc/self/ns/time", F_OK) == 0;
        ctx->no_caps = cap_init();
        if (!ctx->no_caps) {
                r = -ENOMEM;
                goto fail;
        }
        *ret = ctx;
        return 0;
fail:
        sbx_context_free(ctx);
        return r;
}

sbx_context *sbx_context_free(sbx_context *ctx) {
        if (!ctx)
                return NULL;
        sbx_spawner_free(ctx->spawner);
        sbx_rootfs_template_close(&ctx->template);
        for (int t = 0; t < _SBX_TRUST_MAX; t++)
                sbx_seccomp_filter_done(&ctx->filters[t]);
        sbx_netpool_free(ctx->netpool);
        sbx_egress_free(ctx->egress);
        if (ctx->no_caps)
                cap_free(ctx->no_caps);
        sbx_uidpool_free(ctx->uids);
        sbx_cgroup_root_free(ctx->cgroups);
        free(ctx->node);
        free(ctx->state_dir);
        free(ctx);
        return NULL;
}

void sbx_context_cleanup_stale(sbx_context *ctx) {
        sbx_cgroup_root_cleanup_stale(ctx->cgroups);
}

const char *sbx_context_cgroup_mode(const sbx_context *ctx) {
        return sbx_cgroup_root_mode(ctx->cgroups);
}

/* ---- start --------------------------------------------------------------------- */

static int write_proc_file(pid_t pid, const char *file, const char *content) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        size_t n = strlen(content);
        return write(fd, content, n) == (ssize_t) n ? 0 : negative_errno();
}

/* Room for a string in the child's copy; the arena is filled by copy_for_child() in the same order. */
static size_t str_room(const char *str) {
        return str ? strlen(str) + 1 : 0;
}

static char *arena_str(char **at, const char *str) {
        if (!str)
                return NULL;
        size_t n = strlen(str) + 1;
        char *p = memcpy(*at, str, n);
        *at += n;
        return p;
}

/*
 * What the child reads of the spec, copied into one allocation the run owns:
 * the child runs in our memory until it execs (spawn.c), and the caller's
 * spec is not referenced after sbx_run_start() returns. The environment is
 * the spec's plus PATH and HOME when it sets none.
 */
static sbx_spec *copy_for_child(const sbx_spec *spec) {
        static const char *const default_path = "PATH=/usr/local/bin:/usr/bin:/bin";
        static const char *const default_home = "HOME=/work";
        size_t n_env = 0, room;
        bool has_path = false, has_home = false;

        for (size_t i = 0; spec->env && spec->env[i]; i++, n_env++) {
                has_path |= strncmp(spec->env[i], "PATH=", 5) == 0;
                has_home |= strncmp(spec->env[i], "HOME=", 5) == 0;
        }
        size_t argc = 0;
        while (spec->argv[argc])
                argc++;
        size_t n_env_all = n_env + !has_path + !has_home;

        room = sizeof(sbx_spec) + (argc + 1 + n_env_all + 1) * sizeof(char *) +
               spec->n_files * sizeof(sbx_file);
        for (size_t i = 0; i < argc; i++)
                room += str_room(spec->argv[i]);
        for (size_t i = 0; i < n_env; i++)
                room += str_room(spec->env[i]);
        room += str_room(default_path) + str_room(default_home) + str_room(spec->cwd);
        for (size_t i = 0; i < spec->n_files; i++)
                room += str_room(spec->files[i].name) + spec->files[i].size;

        sbx_spec *c = malloc(room);
        if (!c)
                return NULL;
        /* Pointer arrays first (aligned after the struct), then the bytes. */
        *c = (sbx_spec){.limits = spec->limits, .trust = spec->trust, .network = spec->network};
        c->argv = (char **) (c + 1);
        c->argc = argc;
        c->env = c->argv + argc + 1;
        c->n_env = n_env_all;
        c->files = (sbx_file *) (c->env + n_env_all + 1);
        c->n_files = spec->n_files;
        char *at = (char *) (c->files + spec->n_files);
        for (size_t i = 0; i < argc; i++)
                c->argv[i] = arena_str(&at, spec->argv[i]);
        c->argv[argc] = NULL;
        size_t k = 0;
        for (size_t i = 0; i < n_env; i++)
                c->env[k++] = arena_str(&at, spec->env[i]);
        if (!has_path)
                c->env[k++] = arena_str(&at, default_path);
        if (!has_home)
                c->env[k++] = arena_str(&at, default_home);
        c->env[k] = NULL;
        c->cwd = arena_str(&at, spec->cwd);
        for (size_t i = 0; i < spec->n_files; i++) {
                const sbx_file *f = &spec->files[i];
                c->files[i] = (sbx_file){.name = arena_str(&at, f->name), .size = f->size, .mode = f->mode};
                c->files[i].data = at;
                if (f->size)
                        memcpy(at, f->data, f->size);
                at += f->size;
        }
        return c;
}

/* The child has exec'd or died: what it read of our memory can go. */
static void child_data_free(sbx_run *run) {
        free(run->child_args);
        run->child_args = NULL;
        free(run->child_spec);
        run->child_spec = NULL;
}

static int epoll_add(int ep, int fd, uint32_t tag) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};
        return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? negative_errno() : 0;
}

static int arm_timer(int fd, uint64_t ns, bool absolute) {
        struct itimerspec it = {
                .it_value = {.tv_sec = (time_t) (ns / 1000000000ull),
                             .tv_nsec = (long) (ns % 1000000000ull)},
        };
        if (!absolute && ns == 0)
                it.it_value.tv_nsec = 1;
        return timerfd_settime(fd, absolute ? TFD_TIMER_ABSTIME : 0, &it, NULL) < 0 ? negative_errno() : 0;
}

/*
 * Reads what the child says during its setup, without blocking: the seccomp
 * listener (SCM_RIGHTS), an error, and finally EOF, which means execve
 * succeeded (the socket is close-on-exec) or the child died. Returns 1 at
 * EOF, 0 when there is nothing more for now.
 */
static int read_child(sbx_run *run) {
        for (;;) {
                sbx_child_msg m = {};
                union {
                        char buf[CMSG_SPACE(sizeof(int))];
                        struct cmsghdr align;
                } control;
                struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = sizeof(control.buf),
                };
                ssize_t k = recvmsg(run->sync_fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        return 0;
                if (k <= 0) {
                        if (!run->setup_error && run->listener < 0)
                                run->setup_error = strdup(k < 0 ? "lost contact with the sandbox child"
                                                                : "sandbox child died during setup");
                        return 1;
                }
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                                int fd;
                                memcpy(&fd, CMSG_DATA(c), sizeof(int));
                                if (run->listener >= 0 || m.kind != SBX_CHILD_MSG_LISTENER ||
                                    epoll_add(run->ep, fd, EV_NOTIFY) < 0)
                                        close(fd);
                                else
                                        run->listener = fd;
                        }
                if (m.kind == SBX_CHILD_MSG_ERROR && !run->setup_error) {
                        m.msg[sizeof(m.msg) - 1] = '\0';
                        run->setup_error = strdup(m.msg[0] ? m.msg : "sandbox setup failed");
                        /* It _exit()s by itself; make sure of it. */
                        syscall(SYS_pidfd_send_signal, run->pidfd, SIGKILL, NULL, 0);
                }
        }
}

/* The child's setup is over (exec'd, failed or died): stop watching the sync socket. */
static void end_setup(sbx_run *run) {
        epoll_ctl(run->ep, EPOLL_CTL_DEL, run->sync_fd, NULL);
        run->sync_fd = safe_close(run->sync_fd);
        run->starting = false;
        child_data_free(run);
}

static void reap_now(sbx_run *run) {
        if (run->pidfd >= 0 && !run->exited) {
                syscall(SYS_pidfd_send_signal, run->pidfd, SIGKILL, NULL, 0);
                waitid(P_PIDFD, run->pidfd, &run->status, WEXITED);
                run->exited = true;
        }
}

/*
 * About 200 lines, kept whole on purpose (issue 11 allows it with a note): it is
 * one ordered protocol with the child (uid from the pool, cgroup, netns and
 * egress link, clone from the spawner, maps, cgroup attach, release, epoll
 * set) with one failure path that undoes whatever was set up; split, the order
 * and that path would be spread over functions that mean nothing alone.
 */
int sbx_run_start(sbx_context *ctx, const sbx_spec *spec, sbx_output_fn output, void *userdata,
                  sbx_run **ret, au_error *err) {
        _cleanup_close_ int sync_parent = -1, sync_child = -1, stdin_fd = -1, netns = -1;
        int out_pipe[2][2] = {{-1, -1}, {-1, -1}};
        char name[64], map[64];
        int r;

        if (!spec->argv || !spec->argv[0])
                return au_error_set_field(err, "argv", "argv: a program to run is required");
        if (spec->trust < 0 || spec->trust >= _SBX_TRUST_MAX)
                return au_error_set_field(err, "trust", "trust: unknown trust level");
        if (spec->network != SBX_NET_NONE && spec->network != SBX_NET_LOOPBACK &&
            !(spec->network == SBX_NET_EGRESS && ctx->egress))
                return au_error_set(err, EOPNOTSUPP, "network %s is not configured on this node",
                                    sbx_network_to_string(spec->network));

        /* Compiled at the first run of its level; a one-shot run finds it in the state directory's cache. */
        if (!ctx->filters[spec->trust].insns &&
            (r = sbx_seccomp_compile_cached(spec->trust, ctx->state_dir, &ctx->filters[spec->trust], err)) <
                    0)
                return r;

        sbx_run *run = calloc(1, sizeof(*run));
        if (!run)
                return -ENOMEM;
        run->ctx = ctx;
        run->limits = spec->limits;
        run->output = output;
        run->userdata = userdata;
        run->pid = -1;
        run->pidfd = run->ep = run->listener = run->wall_fd = run->check_fd = run->mntns_fd = run->sync_fd =
                -1;
        run->out[0].fd = run->out[1].fd = -1;
        run->out[0].buf = run->out[1].buf = AU_BUF_INIT((size_t) run->limits.output_bytes);
        run->result = sbx_result_new();
        if (!run->result) {
                r = -ENOMEM;
                goto fail;
        }

        r = sbx_uidpool_acquire(ctx->uids, &run->uid, err);
        if (r < 0)
                goto fail;
        snprintf(name, sizeof(name), "autoos-%d-%" PRIu64, (int) getpid(), ++ctx->seq);
        r = sbx_cgroup_create(ctx->cgroups, name, &spec->limits, &run->cg, err);
        if (r < 0)
                goto fail;

        int sp[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                r = au_error_set(err, errno, "create sync socket");
                goto fail;
        }
        sync_parent = sp[0];
        sync_child = sp[1];
        for (int i = 0; i < 2; i++)
                if (pipe2(out_pipe[i], O_CLOEXEC) < 0) {
                        r = au_error_set(err, errno, "create output pipe");
                        goto fail;
                }
        if (spec->stdin_size > 0) {
                /* A sealed memfd: the program reads its input and then EOF, no pump needed. */
                stdin_fd = memfd_create("autoos-stdin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
                if (stdin_fd < 0 ||
                    write(stdin_fd, spec->stdin_data, spec->stdin_size) != (ssize_t) spec->stdin_size ||
                    lseek(stdin_fd, 0, SEEK_SET) < 0 ||
                    fcntl(stdin_fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) <
                            0) {
                        r = au_error_set(err, errno, "prepare stdin");
                        goto fail;
                }
        }
        run->child_spec = copy_for_child(spec);
        run->child_args = malloc(sizeof(sbx_child_args));
        if (!run->child_spec || !run->child_args) {
                r = -ENOMEM;
                goto fail;
        }
        *run->child_args = (sbx_child_args){
                .spec = run->child_spec,
                .filter = &ctx->filters[spec->trust],
                .template = &ctx->template,
                .no_caps = ctx->no_caps,
                .work_writable = spec->limits.work_bytes > 0,
                .resolv_conf = spec->network == SBX_NET_EGRESS ? sbx_egress_resolv_conf(ctx->egress) : NULL,
                .sync_fd = sync_child,
                .parent_sync_fd = sync_parent,
                .stdin_fd = stdin_fd,
                .stdout_fd = out_pipe[0][1],
                .stderr_fd = out_pipe[1][1],
        };
        pthread_sigmask(SIG_SETMASK, NULL, &run->child_args->sigmask);

        /* An egress run starts from a loopback namespace; egress.c adds its link. */
        netns = sbx_netpool_take(ctx->netpool,
                                 spec->network == SBX_NET_EGRESS ? SBX_NET_LOOPBACK : spec->network, err);
        if (netns < 0) {
                r = netns;
                goto fail;
        }
        if (spec->network == SBX_NET_EGRESS &&
            (r = sbx_egress_attach(ctx->egress, netns, &spec->egress, &run->egress, err)) < 0)
                goto fail;
        int cgfd = sbx_cgroup_dirfd(run->cg);
        /* The network namespace is made ahead (netpool.c) and entered for the clone only. */
        struct clone_args ca = {
                .flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                         CLONE_PIDFD | (ctx->have_timens ? CLONE_NEWTIME : 0) |
                         (cgfd >= 0 ? CLONE_INTO_CGROUP : 0),
                .exit_signal = SIGCHLD,
                .cgroup = cgfd >= 0 ? (uint64_t) cgfd : 0,
        };
        run->t0_ns = au_now_us() * 1000ull; /* CLOCK_MONOTONIC, as the wall timer (absolute) */
        clock_gettime(CLOCK_REALTIME, &run->result->started_at);
        /* Cloned without copying our memory (spawn.c); back once the child runs. */
        pid_t pid = -1;
        r = sbx_spawn(ctx->spawner, ctx->netpool, netns, &ca, run->child_args, &pid, &run->pidfd, err);
        netns = safe_close(netns);
        if (r < 0)
                goto fail; /* no child: sbx_run_free() frees what it would have read */
        run->pid = pid;
        sync_child = safe_close(sync_child);
        stdin_fd = safe_close(stdin_fd);
        for (int i = 0; i < 2; i++) {
                out_pipe[i][1] = safe_close(out_pipe[i][1]);
                run->out[i].fd = TAKE_FD(out_pipe[i][0]);
                fcntl(run->out[i].fd, F_SETFL, O_NONBLOCK);
        }

        {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int) pid);
                run->mntns_fd = open(path, O_RDONLY | O_CLOEXEC);
        }
        snprintf(map, sizeof(map), "%d %u 1\n", SBX_INSIDE_UID, (unsigned) run->uid);
        if ((r = write_proc_file(pid, "uid_map", map)) < 0) {
                au_error_set(err, r, "write uid map of the sandbox");
                goto fail_child;
        }
        snprintf(map, sizeof(map), "%d %u 1\n", SBX_INSIDE_GID, (unsigned) run->uid);
        if ((r = write_proc_file(pid, "gid_map", map)) < 0) {
                au_error_set(err, r, "write gid map of the sandbox");
                goto fail_child;
        }
        if (write(sync_parent, "G", 1) != 1) {
                r = au_error_set(err, errno, "release the sandbox child");
                goto fail_child;
        }
        /* On v1 the child builds its root while we move it into the cgroup (it waits for 'C'
         * before running anything of the user's); on v2 it was born there. */
        if (cgfd < 0 && (r = sbx_cgroup_attach(run->cg, pid, err)) < 0)
                goto fail_child;
        if (write(sync_parent, "C", 1) != 1) {
                r = au_error_set(err, errno, "release the sandbox child");
                goto fail_child;
        }
        /* Not waiting for the exec: the setup's end arrives on the sync socket, in dispatch. */
        run->sync_fd = TAKE_FD(sync_parent);
        run->starting = true;

        run->ep = epoll_create1(EPOLL_CLOEXEC);
        run->wall_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        run->check_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (run->ep < 0 || run->wall_fd < 0 || run->check_fd < 0) {
                r = au_error_set(err, errno, "create supervision fds");
                goto fail_child;
        }
        if ((r = epoll_add(run->ep, run->pidfd, EV_PIDFD)) < 0 ||
            (r = epoll_add(run->ep, run->out[0].fd, EV_STDOUT)) < 0 ||
            (r = epoll_add(run->ep, run->out[1].fd, EV_STDERR)) < 0 ||
            (r = epoll_add(run->ep, run->sync_fd, EV_SYNC)) < 0 ||
            (r = epoll_add(run->ep, run->wall_fd, EV_WALL)) < 0 ||
            (r = epoll_add(run->ep, run->check_fd, EV_CHECK)) < 0 ||
            (r = arm_timer(run->wall_fd, run->t0_ns + spec->limits.wall_ms * 1000000ull, true)) < 0 ||
            (r = arm_timer(run->check_fd, 10 * 1000000ull, false)) < 0) {
                au_error_set(err, r, "set up supervision");
                goto fail_child;
        }

        sbx_result *res = run->result;
        res->host_uid = run->uid;
        res->attempt = spec->attempt;
        if ((spec->id && !(res->id = strdup(spec->id))) || !(res->node = strdup(ctx->node)) ||
            (spec->workflow && !(res->workflow = strdup(spec->workflow))) ||
            (spec->step && !(res->step = strdup(spec->step)))) {
                r = -ENOMEM;
                goto fail_child;
        }
        *ret = run;
        return 0;

fail_child:
        reap_now(run);
fail:
        for (int i = 0; i < 2; i++) {
                safe_close(out_pipe[i][0]);
                safe_close(out_pipe[i][1]);
        }
        sbx_run_free(run);
        return r;
}

/* ---- supervision ------------------------------------------------------------------ */

int sbx_run_fd(const sbx_run *run) {
        return run->ep;
}

pid_t sbx_run_pid(const sbx_run *run) {
        return run->pid;
}

int sbx_run_kill(sbx_run *run, sbx_outcome outcome, const char *reason) {
        if (run->finished || run->exited)
                return 0;
        if (!run->killed) {
                run->killed = true;
                run->kill_outcome = outcome;
                run->kill_reason = reason ? strdup(reason) : NULL;
        }
        /* The whole cgroup, then pid 1 of the namespace, whose death takes the rest with it. */
        if (run->cg)
                sbx_cgroup_kill_all(run->cg);
        if (syscall(SYS_pidfd_send_signal, run->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
                return negative_errno();
        return 0;
}

static void kill_for(sbx_run *run, sbx_outcome outcome, const char *fmt, ...) _printf_(3, 4);
static void kill_for(sbx_run *run, sbx_outcome outcome, const char *fmt, ...) {
        char reason[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        sbx_run_kill(run, outcome, reason);
}

static void stream_read(sbx_run *run, int i) {
        stream *s = &run->out[i];
        char buf[READ_CHUNK];
        for (;;) {
                ssize_t k = read(s->fd, buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        return;
                if (k <= 0) {
                        s->eof = true;
                        epoll_ctl(run->ep, EPOLL_CTL_DEL, s->fd, NULL);
                        s->fd = safe_close(s->fd);
                        return;
                }
                s->total += (uint64_t) k;
                size_t keep = 0;
                if (s->buf.len < run->limits.output_bytes)
                        keep = MIN((size_t) k, (size_t) (run->limits.output_bytes - s->buf.len));
                if (keep > 0) {
                        if (au_buf_append(&s->buf, buf, keep) < 0) {
                                kill_for(run, SBX_OUTCOME_SANDBOX_ERROR, "out of memory buffering output");
                                return;
                        }
                        if (run->output)
                                run->output(run->userdata, i + 1, buf, keep);
                }
                if (s->total > run->limits.output_bytes * SBX_OUTPUT_KILL_FACTOR)
                        kill_for(run, SBX_OUTCOME_OUTPUT_LIMIT,
                                 "%s exceeded %d times the output limit of %" PRIu64 " bytes",
                                 i == 0 ? "stdout" : "stderr", SBX_OUTPUT_KILL_FACTOR,
                                 run->limits.output_bytes);
        }
}

static int add_denied(sbx_result *res, const char *name) {
        /* "" is a refusal that is not one for the caller (libc's clone3 probe before clone): uncounted. */
        if (!name[0])
                return 0;
        res->denied_count++;
        if (au_strv_find(res->denied_syscalls, name) >= 0)
                return 0;
        return au_strv_push(&res->denied_syscalls, &res->n_denied_syscalls, name);
}

static void stop_watching_listener(sbx_run *run) {
        epoll_ctl(run->ep, EPOLL_CTL_DEL, run->listener, NULL);
        run->listener = safe_close(run->listener);
}

static void handle_notifications(sbx_run *run, uint32_t events) {
        /* Bounded per dispatch so that a flood cannot starve the other fds. */
        for (int i = 0; i < 256; i++) {
                char name[64];
                int r = sbx_seccomp_handle(run->listener, name, sizeof(name));
                if (r == -EAGAIN) {
                        /* Hang-up: nobody is left under the filter; it would signal forever. */
                        if (events & (EPOLLHUP | EPOLLERR))
                                stop_watching_listener(run);
                        return;
                }
                if (r < 0) {
                        stop_watching_listener(run);
                        return;
                }
                if (add_denied(run->result, name) < 0)
                        kill_for(run, SBX_OUTCOME_SANDBOX_ERROR, "out of memory recording denied syscalls");
                if (run->result->denied_count > SBX_DENIED_BUDGET) {
                        kill_for(run, SBX_OUTCOME_SIGNALED,
                                 "more than %d refused syscalls: killed to protect the supervisor",
                                 SBX_DENIED_BUDGET);
                        return;
                }
        }
}

static void check_limits(sbx_run *run) {
        uint64_t tick;
        (void) !read(run->check_fd, &tick, sizeof(tick));
        if (run->exited || run->killed)
                return;

        uint64_t cpu_ns = 0, pids_max = 0;
        if (sbx_cgroup_read_cpu_ns(run->cg, &cpu_ns) >= 0 && cpu_ns >= run->limits.cpu_ms * 1000000ull) {
                kill_for(run, SBX_OUTCOME_CPU_LIMIT, "CPU time limit of %" PRIu64 " ms reached",
                         run->limits.cpu_ms);
                return;
        }
        if (sbx_cgroup_read_pids_max_events(run->cg, &pids_max) >= 0 && pids_max > 0) {
                kill_for(run, SBX_OUTCOME_PIDS_LIMIT, "process limit of %" PRIu32 " reached",
                         run->limits.pids);
                return;
        }
        /* Next look: no later than the CPU limit could be reached at the run's quota, at most 100 ms. */
        uint64_t left_ns = run->limits.cpu_ms * 1000000ull - cpu_ns;
        uint64_t at_quota_ns = left_ns / MAX(run->limits.cpu_percent, 1u) * 100;
        arm_timer(run->check_fd, MAX(MIN(at_quota_ns, 100 * 1000000ull), 5 * 1000000ull), false);
}

static void finalize(sbx_run *run) {
        sbx_result *res = run->result;
        sbx_cgroup_stats st = {};

        clock_gettime(CLOCK_REALTIME, &res->finished_at);
        res->wall_ms = (au_now_us() * 1000ull - run->t0_ns) / 1000000ull;
        sbx_cgroup_read_stats(run->cg, &st);
        res->cpu_ms = st.cpu_ns / 1000000ull;
        res->memory_peak_bytes = st.memory_peak;
        res->oom_kills = st.oom_kills;

        bool exited = run->status.si_code == CLD_EXITED;
        res->exit_code = exited ? run->status.si_status : -1;
        res->signal = exited ? 0 : run->status.si_status;
        if (run->setup_error) {
                /* Our fault, not the program's: it never ran. */
                res->outcome = SBX_OUTCOME_SANDBOX_ERROR;
                res->error = TAKE_PTR(run->setup_error);
                res->exit_code = -1;
                res->signal = 0;
        } else if (run->killed) {
                res->outcome = run->kill_outcome;
                res->reason = TAKE_PTR(run->kill_reason);
        } else if (exited && run->status.si_status == 0)
                res->outcome = SBX_OUTCOME_EXITED;
        else if (st.oom_kills > 0)
                res->outcome = SBX_OUTCOME_OOM;
        else if (st.pids_max_events > 0)
                res->outcome = SBX_OUTCOME_PIDS_LIMIT;
        else
                res->outcome = exited ? SBX_OUTCOME_EXITED : SBX_OUTCOME_SIGNALED;

        for (int i = 0; i < 2; i++) {
                stream *s = &run->out[i];
                bool trunc = s->total > s->buf.len;
                size_t len = s->buf.len;
                char *data = TAKE_PTR(s->buf.p); /* NULL when nothing was kept, as before */
                au_buf_done(&s->buf);
                if (i == 0) {
                        res->stdout_data = data;
                        res->stdout_size = len;
                        res->stdout_truncated = trunc;
                } else {
                        res->stderr_data = data;
                        res->stderr_size = len;
                        res->stderr_truncated = trunc;
                }
        }
        run->egress = sbx_egress_detach(run->egress, res);
        run->cg = sbx_cgroup_destroy(run->cg);
        sbx_uidpool_release(run->ctx->uids, run->uid);
        run->uid = 0;
        sbx_netpool_defer_close(run->ctx->netpool, TAKE_FD(run->mntns_fd));
        run->finished = true;
}

int sbx_run_dispatch(sbx_run *run) {
        struct epoll_event ev[16];

        if (run->finished)
                return 1;
        for (;;) {
                int n = epoll_wait(run->ep, ev, (int) ELEMENTSOF(ev), 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                for (int i = 0; i < n; i++) {
                        switch (ev[i].data.u32) {
                        case EV_PIDFD:
                                if (waitid(P_PIDFD, run->pidfd, &run->status, WEXITED | WNOHANG) == 0 &&
                                    run->status.si_pid != 0) {
                                        run->exited = true;
                                        epoll_ctl(run->ep, EPOLL_CTL_DEL, run->pidfd, NULL);
                                }
                                break;
                        case EV_STDOUT:
                        case EV_STDERR:
                                stream_read(run, ev[i].data.u32 == EV_STDOUT ? 0 : 1);
                                break;
                        case EV_NOTIFY:
                                handle_notifications(run, ev[i].events);
                                break;
                        case EV_SYNC:
                                if (read_child(run) > 0)
                                        end_setup(run);
                                break;
                        case EV_WALL:
                                if (run->starting && !run->setup_error)
                                        run->setup_error = strdup(
                                                "sandbox setup did not finish within the wall-clock limit");
                                kill_for(run, SBX_OUTCOME_TIMEOUT,
                                         "wall-clock limit of %" PRIu64 " ms reached", run->limits.wall_ms);
                                epoll_ctl(run->ep, EPOLL_CTL_DEL, run->wall_fd, NULL);
                                break;
                        case EV_CHECK:
                                check_limits(run);
                                break;
                        }
                }
        }
        /* A child that died in setup leaves its EOF behind its exit: drain it first. */
        if (run->exited && run->starting && read_child(run) > 0)
                end_setup(run);
        if (run->exited && !run->starting && run->out[0].eof && run->out[1].eof) {
                finalize(run);
                return 1;
        }
        return 0;
}

int sbx_run_take_result(sbx_run *run, sbx_result **ret) {
        if (!run->finished || !run->result)
                return -EBUSY;
        *ret = TAKE_PTR(run->result);
        return 0;
}

sbx_run *sbx_run_free(sbx_run *run) {
        if (!run)
                return NULL;
        if (!run->finished && run->pidfd >= 0) {
                sbx_run_kill(run, SBX_OUTCOME_SIGNALED, "supervisor went away");
                reap_now(run);
        }
        if (run->cg) {
                sbx_cgroup_kill_all(run->cg);
                run->cg = sbx_cgroup_destroy(run->cg);
        }
        run->egress = sbx_egress_detach(run->egress, NULL);
        if (run->uid)
                sbx_uidpool_release(run->ctx->uids, run->uid);
        for (int i = 0; i < 2; i++) {
                safe_close(run->out[i].fd);
                au_buf_done(&run->out[i].buf);
        }
        if (run->mntns_fd >= 0)
                sbx_netpool_defer_close(run->ctx->netpool, TAKE_FD(run->mntns_fd));
        safe_close(run->pidfd);
        safe_close(run->listener);
        safe_close(run->wall_fd);
        safe_close(run->check_fd);
        safe_close(run->ep);
        free(run->kill_reason);
        free(run->setup_error);
        safe_close(run->sync_fd);
        child_data_free(run); /* the child is gone: reaped above, or never made */
        sbx_result_free(run->result);
        free(run);
        return NULL;
}

int sbx_run_sync(sbx_context *ctx, const sbx_spec *spec, sbx_output_fn output, void *userdata,
                 sbx_result **ret) {
        au_error err = {};
        sbx_run *run = NULL;
        struct timespec started;

        clock_gettime(CLOCK_REALTIME, &started);
        int r = sbx_run_start(ctx, spec, output, userdata, &run, &err);
        if (r < 0) {
                sbx_result *res = sbx_result_new_error(spec->id, SBX_OUTCOME_SANDBOX_ERROR, err.msg);
                if (!res)
                        return -ENOMEM;
                res->node = strdup(ctx->node);
                res->started_at = started;
                clock_gettime(CLOCK_REALTIME, &res->finished_at);
                *ret = res;
                return 0;
        }
        for (;;) {
                struct pollfd p = {.fd = sbx_run_fd(run), .events = POLLIN};
                if (poll(&p, 1, -1) < 0 && errno != EINTR)
                        break;
                r = sbx_run_dispatch(run);
                if (r != 0)
                        break;
        }
        if (r < 0) {
                sbx_run_free(run);
                return r;
        }
        r = sbx_run_take_result(run, ret);
        sbx_run_free(run);
        return r;
}
