/* SPDX-License-Identifier: MIT */
/* Details shared between the files of libsandbox; not part of its API. */
#pragma once

#include <linux/filter.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox.h"

/* Inside the sandbox the program runs as this uid/gid, mapped to a pool id. */
#define SBX_INSIDE_UID 1000
#define SBX_INSIDE_GID 1000
/* Past this many refused syscalls the run is killed (DESIGN.md). */
#define SBX_DENIED_BUDGET 10000
/* A stream that writes more than this many times its limit ends the run. */
#define SBX_OUTPUT_KILL_FACTOR 8

/* ---- names.c: the limits fields, in the order DESIGN.md lists them -------- */
typedef struct sbx_limit_field {
        const char *name;
        size_t offset;
        bool is32;
} sbx_limit_field;
extern const sbx_limit_field sbx_limit_fields[7];
uint64_t sbx_limit_get(const sbx_limits *l, const sbx_limit_field *f);
void sbx_limit_set(sbx_limits *l, const sbx_limit_field *f, uint64_t v);
/* Below this much memory no program starts: refused in specs and policies alike. */
#define SBX_MIN_MEMORY_BYTES ((uint64_t) 4 << 20)

/* ---- seccomp.c ------------------------------------------------------------
 * Filters are compiled once per trust level in the parent (libseccomp, binary
 * tree layout) and only loaded in the child. Allowed calls run; everything
 * else is SECCOMP_RET_USER_NOTIF so the supervisor can name it and answer
 * EPERM (ENOSYS for clone3, so libc falls back to clone(2), whose flags the
 * filter can inspect).
 */
typedef struct sbx_seccomp_filter {
        struct sock_filter *insns;
        unsigned short len;
} sbx_seccomp_filter;

/* Compiles the profile of a trust level. ret is owned by the caller. */
int sbx_seccomp_compile(sbx_trust level, sbx_seccomp_filter *ret, au_error *err);
void sbx_seccomp_filter_done(sbx_seccomp_filter *f);

/*
 * sbx_seccomp_compile(), through a cache of compiled profiles in cache_dir
 * (for one-shot runs, where compiling costs more than a tenth of the run).
 * A file is named by a hash of everything the BPF is made of (the rule
 * tables, libseccomp's version and API level, the kernel) and is used only
 * in a directory that only we can write to, when it is ours, mode 0600, one
 * link, whole instructions; anything else is compiled afresh and written
 * back whole (best effort). cache_dir NULL: no cache.
 */
int sbx_seccomp_compile_cached(sbx_trust level, const char *cache_dir, sbx_seccomp_filter *ret,
                               au_error *err);

/*
 * In the child, the last step before execve: sets PR_SET_NO_NEW_PRIVS and
 * loads the filter with a notification listener. Returns the listener fd or
 * a negative errno. Async-signal-safe (no allocation).
 */
int sbx_seccomp_load(const sbx_seccomp_filter *f);

/*
 * In the supervisor: receives one notification from listener_fd and answers
 * it (EPERM; ENOSYS for clone3). On success stores the syscall's name (""
 * when the call is not to be reported, e.g. a clone3 without namespace
 * flags) in name (size >= 64). Returns 0, -EAGAIN when nothing was pending
 * or the target died meanwhile, or another negative errno.
 */
int sbx_seccomp_handle(int listener_fd, char *name, size_t name_size);
/* The ioctl commands (low 32 bits) every profile allows; *ret points at a static table. */
size_t sbx_seccomp_allowed_ioctls(const uint32_t **ret);

/* ---- cgroup.c ------------------------------------------------------------ */
typedef struct sbx_cgroup_root sbx_cgroup_root; /* host layout, from the context */
typedef struct sbx_cgroup sbx_cgroup;           /* one run's cgroup */

int sbx_cgroup_root_new(const char *parent_override, sbx_cgroup_root **ret, au_error *err);
sbx_cgroup_root *sbx_cgroup_root_free(sbx_cgroup_root *root);
const char *sbx_cgroup_root_mode(const sbx_cgroup_root *root);
/* Removes run cgroups left by processes that died (killing anything still inside). */
void sbx_cgroup_root_cleanup_stale(sbx_cgroup_root *root);

/* Creates the run's cgroup(s) with the limits. */
int sbx_cgroup_create(sbx_cgroup_root *root, const char *name, const sbx_limits *limits, sbx_cgroup **ret,
                      au_error *err);
/* v2: an O_DIRECTORY fd for clone3(CLONE_INTO_CGROUP); -1 on v1. */
int sbx_cgroup_dirfd(const sbx_cgroup *cg);
/* Moves pid into every hierarchy of the run's cgroup. */
int sbx_cgroup_attach(sbx_cgroup *cg, pid_t pid, au_error *err);
/* Kills every process in the cgroup (cgroup.kill, or freeze-kill-thaw on v1). */
int sbx_cgroup_kill_all(sbx_cgroup *cg);

typedef struct sbx_cgroup_stats {
        uint64_t cpu_ns;
        uint64_t memory_peak;
        uint64_t oom_kills;
        uint64_t pids_max_events; /* forks refused by the pids limit */
} sbx_cgroup_stats;
int sbx_cgroup_read_stats(sbx_cgroup *cg, sbx_cgroup_stats *ret);
/* One file each (cheap), for the periodic limit checks. */
int sbx_cgroup_read_cpu_ns(sbx_cgroup *cg, uint64_t *ret);
int sbx_cgroup_read_pids_max_events(sbx_cgroup *cg, uint64_t *ret);
/* Removes the cgroup (waiting briefly for exiting tasks); frees. Accepts NULL. */
sbx_cgroup *sbx_cgroup_destroy(sbx_cgroup *cg);

/* ---- uidpool.c ----------------------------------------------------------- */
typedef struct sbx_uidpool sbx_uidpool;
int sbx_uidpool_new(uid_t base, uint32_t count, const char *lock_dir, sbx_uidpool **ret, au_error *err);
sbx_uidpool *sbx_uidpool_free(sbx_uidpool *pool);
/* Takes a uid that no other live run, in this or any other process, holds. */
int sbx_uidpool_acquire(sbx_uidpool *pool, uid_t *ret_uid, au_error *err);
/* Gives a uid back once nothing of its run is left. */
void sbx_uidpool_release(sbx_uidpool *pool, uid_t uid);

/* ---- rootfs.c ---------------------------------------------------------- */
/*
 * Bumped whenever what goes into a template changes (2: no /etc/ssl/private,
 * 3: an empty /etc/resolv.conf), so no old one is reused.
 */
#define SBX_ROOTFS_TEMPLATE_VERSION 3
typedef struct sbx_rootfs_template {
        char dir[256];
        const char *top_binds[6]; /* host /bin, /lib... that are directories, not symlinks */
        size_t n_top_binds;
        int lock_fd; /* shared lock: the template is in use */
} sbx_rootfs_template;
/*
 * On the host: the skeleton every sandbox root is built on, shared by every
 * process on the host (state_dir/rootfs-<key>, the key hashing what it is
 * made of) and built only when missing. Old versions nobody holds are removed.
 */
int sbx_rootfs_template_open(const char *state_dir, sbx_rootfs_template *ret, au_error *err);
void sbx_rootfs_template_close(sbx_rootfs_template *t);
int sbx_rootfs_template_remove(const char *dir);

typedef struct sbx_child_args sbx_child_args;
/* In the child: mounts, pivot_root, files into /work. */
int sbx_rootfs_setup(const sbx_child_args *a, au_error *err);

/* ---- netpool.c: network namespaces made ahead of demand -------------------- */
typedef struct sbx_netpool sbx_netpool;
/* target: how many to keep ready (0: no thread, each made on demand). */
int sbx_netpool_new(unsigned target, sbx_netpool **ret, au_error *err);
sbx_netpool *sbx_netpool_free(sbx_netpool *p);
/* An fd for a fresh namespace (lo up for SBX_NET_LOOPBACK), owned by the caller. */
int sbx_netpool_take(sbx_netpool *p, sbx_network mode, au_error *err);
/* Moves the calling thread into netns_fd (for the clone3) and back to the host's. */
int sbx_netpool_enter(sbx_netpool *p, int netns_fd, au_error *err);
void sbx_netpool_leave(sbx_netpool *p);
/*
 * Closes a namespace fd on the helper thread (or now, without one). Holding
 * the run's mount namespace moves its teardown (every mount of the sandbox)
 * out of the exiting child, whose exit the supervisor waits for, to here.
 */
void sbx_netpool_defer_close(sbx_netpool *p, int fd);

/* ---- spawn.c: the child cloned without copying the parent's memory --------- */
struct clone_args;
typedef struct sbx_spawner sbx_spawner;
/* Spawner threads are made on demand; *ret is NULL where clone3 cannot run on a stack of ours. */
int sbx_spawner_new(sbx_spawner **ret, au_error *err);
/* Stops and joins every spawner; accepts NULL. No child may be in setup. */
sbx_spawner *sbx_spawner_free(sbx_spawner *pool);
/*
 * Clones sbx_child_main(args) with ca's flags (namespaces, exit signal,
 * cgroup) in netns_fd's network namespace, sharing this address space until
 * its execve (CLONE_VM | CLONE_VFORK from a spawner thread). Returns once
 * the child runs, with its host pid and a pidfd (owned by the caller). args
 * and everything it points to must stay untouched until the child has exec'd
 * or died (EOF on its sync socket, or reaped). One caller at a time.
 */
int sbx_spawn(sbx_spawner *pool, sbx_netpool *netpool, int netns_fd, const struct clone_args *ca,
              const sbx_child_args *args, pid_t *ret_pid, int *ret_pidfd, au_error *err);

/* ---- caps.c: in the child ------------------------------------------------ */
/* none: an empty set made by cap_init() in the parent (the child must not allocate). */
int sbx_caps_drop_all(void *none, au_error *err);

/* ---- child.c -------------------------------------------------------------- */
struct sbx_child_args {
        const sbx_spec *spec;
        const sbx_seccomp_filter *filter;
        const sbx_rootfs_template *template;
        void *no_caps; /* cap_t, empty */
        bool work_writable;
        /* Bound read-only over /etc/resolv.conf (egress runs); NULL: the template's empty one. */
        const char *resolv_conf;
        int sync_fd;  /* socket to the parent: 'G' (ids mapped), 'C' (in the cgroup) in; errors and listener
                         out */
        int stdin_fd; /* -1: /dev/null */
        int stdout_fd;
        int stderr_fd;
        /* The parent's end of the sync socket, closed first in the child. */
        int parent_sync_fd;
        /* The program's signal mask: the caller's at sbx_run_start(). */
        sigset_t sigmask;
};
_noreturn_ void sbx_child_main(const sbx_child_args *a);

/* Child -> parent over the sync socket (SOCK_SEQPACKET). */
enum {
        SBX_CHILD_MSG_ERROR = 1,    /* setup or execve failed: msg says what */
        SBX_CHILD_MSG_LISTENER = 2, /* carries the seccomp listener fd (SCM_RIGHTS) */
};
#define SBX_CHILD_EXIT_FAILED 127
typedef struct sbx_child_msg {
        int32_t kind;
        int32_t code;
        char msg[512];
} sbx_child_msg;
