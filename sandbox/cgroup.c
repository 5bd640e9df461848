/* SPDX-License-Identifier: MIT */
/*
 * The run's cgroup, on cgroup v2, v1 and hybrid hosts.
 *
 * The host's layout is found once per context: on v1, each controller's
 * mount point from /proc/self/mountinfo and the cgroup we run in from
 * /proc/self/cgroup (libcgroup's cgroup_init() did this at more than a tenth
 * of a one-shot run's CPU, clearing its tables; issue 12). The spawn path
 * then works on directory fds with mkdirat/openat: libcgroup's
 * cgroup_create_cgroup() chowns every
 * file of every controller (measured: 0.57 ms per controller here, ~3 ms
 * for the five v1 hierarchies a run needs), more than the whole budget of a
 * spawn.
 *
 * Run cgroups are always created below the cgroup this process runs in
 * (under systemd: the unit's delegated subtree), never at a hierarchy root.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "sandbox-internal.h"

enum { H_MEMORY, H_CPU, H_CPUACCT, H_PIDS, H_FREEZER, _H_MAX };
static const char *const controller_name[_H_MAX] = {"memory", "cpu", "cpuacct", "pids", "freezer"};

struct sbx_cgroup_root {
        bool v2;
        const char *mode;
        /* v2: one parent directory. v1: one per hierarchy; hierarchies that
         * are co-mounted (cpu,cpuacct) share an entry via `same_as`. */
        char *path[_H_MAX];
        int fd[_H_MAX];
        int same_as[_H_MAX]; /* index of the first controller on the same hierarchy, or self */
        bool have_memsw;
        bool have_cgroup_kill;
};

struct sbx_cgroup {
        sbx_cgroup_root *root;
        char name[64];
        int fd[_H_MAX]; /* -1 where absent or shared */
};

static int write_at(int dirfd, const char *file, const char *value) {
        _cleanup_close_ int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        size_t n = strlen(value);
        /* A v1 memory.limit_in_bytes write fails with EINTR when a signal is pending for
         * the writing thread (mem_cgroup_resize_max checks before anything else): once
         * the signal is handled, the same write succeeds. */
        ssize_t k;
        for (unsigned tries = 0;; tries++) {
                k = write(fd, value, n);
                if (k >= 0 || errno != EINTR || tries >= 64)
                        break;
        }
        if (k < 0)
                return negative_errno();
        return (size_t) k == n ? 0 : -EIO;
}

static int read_at(int dirfd, const char *file, char *buf, size_t size) {
        _cleanup_close_ int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        ssize_t k = read(fd, buf, size - 1);
        if (k < 0)
                return negative_errno();
        buf[k] = '\0';
        return 0;
}

static int read_u64_at(int dirfd, const char *file, uint64_t *ret) {
        char buf[64];
        int r = read_at(dirfd, file, buf, sizeof(buf));
        if (r < 0)
                return r;
        if (strncmp(buf, "max", 3) == 0) {
                *ret = UINT64_MAX;
                return 0;
        }
        *ret = strtoull(buf, NULL, 10);
        return 0;
}

/* Reads "key value" lines (memory.events, cpu.stat, ...) and returns key's value. */
static int read_keyed_at(int dirfd, const char *file, const char *key, uint64_t *ret) {
        char buf[4096];
        int r = read_at(dirfd, file, buf, sizeof(buf));
        if (r < 0)
                return r;
        size_t kl = strlen(key);
        for (char *line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
                if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
                        *ret = strtoull(line + kl + 1, NULL, 10);
                        return 0;
                }
        return -ENOENT;
}

static int kill_listed(int dirfd);
static void sleep_us(long us);

static bool is_cgroup2(const char *path) {
        struct statfs sf;
        return statfs(path, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
}

/* "0::/path" from /proc/self/cgroup: our place in the unified hierarchy. */
static int own_v2_path(char **ret) {
        _cleanup_free_ char *line = NULL;
        size_t n = 0;
        FILE *f = fopen("/proc/self/cgroup", "re");
        if (!f)
                return negative_errno();
        int r = -ENOENT;
        while (getline(&line, &n, f) > 0)
                if (strncmp(line, "0::", 3) == 0) {
                        line[strcspn(line, "\n")] = '\0';
                        *ret = strdup(line + 3);
                        r = *ret ? 0 : -ENOMEM;
                        break;
                }
        fclose(f);
        return r;
}

static bool cgroup_has_procs(int dirfd) {
        char buf[64];
        return read_at(dirfd, "cgroup.procs", buf, sizeof(buf)) == 0 && buf[0] != '\0';
}

/* Whether the space-separated list `list` holds `word`. */
static bool has_word(const char *list, const char *word) {
        size_t n = strlen(word);
        for (const char *p = list; (p = strstr(p, word)); p += n)
                if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
                        return true;
        return false;
}

/*
 * cgroup v2 forbids processes in a (non-root) cgroup whose children have
 * controllers enabled ("no internal processes"). memory, cpu and pids are
 * enabled for the runs below our cgroup: directly when that is allowed (the
 * root cgroup, or nobody in ours); when this process is alone in its cgroup
 * (a systemd unit with Delegate=yes: systemd 252 has no DelegateSubgroup=),
 * it first moves itself into a leaf "supervisor" beside the runs. When
 * others share the cgroup, it cannot do that without moving them: say so.
 */
static int v2_prepare_parent(sbx_cgroup_root *root, au_error *err) {
        char buf[256];
        int pfd = root->fd[H_MEMORY];
        int r = read_at(pfd, "cgroup.subtree_control", buf, sizeof(buf));
        if (r < 0)
                return au_error_set(err, r, "read %s/cgroup.subtree_control", root->path[H_MEMORY]);
        if (has_word(buf, "memory") && has_word(buf, "cpu") && has_word(buf, "pids"))
                return 0;

        /* A controller the parent did not give us cannot be enabled at all. */
        static const char *const needed[] = {"memory", "cpu", "pids"};
        if (read_at(pfd, "cgroup.controllers", buf, sizeof(buf)) == 0) {
                buf[strcspn(buf, "\n")] = '\0';
                for (size_t i = 0; i < ELEMENTSOF(needed); i++)
                        if (!has_word(buf, needed[i]))
                                return au_error_set(
                                        err, ENOENT,
                                        "cgroup v2: the %s controller is not available in %s "
                                        "(cgroup.controllers: \"%s\"); the parent cgroup must delegate it",
                                        needed[i], root->path[H_MEMORY], buf);
        }

        r = write_at(pfd, "cgroup.subtree_control", "+memory +cpu +pids");
        if (r >= 0)
                return 0;
        if (r != -EBUSY || !cgroup_has_procs(pfd))
                return au_error_set(err, r, "enable memory, cpu and pids in %s/cgroup.subtree_control",
                                    root->path[H_MEMORY]);

        char procs[256], self[32];
        r = read_at(pfd, "cgroup.procs", procs, sizeof(procs));
        snprintf(self, sizeof(self), "%d\n", (int) getpid());
        if (r < 0 || strcmp(procs, self) != 0)
                return au_error_set(err, EBUSY,
                                    "cgroup v2: cannot enable memory, cpu and pids below %s because "
                                    "other processes share it; run under a unit with Delegate=yes "
                                    "(e.g. systemd-run --scope -p Delegate=yes ...)",
                                    root->path[H_MEMORY]);
        if (mkdirat(pfd, "supervisor", 0755) < 0 && errno != EEXIST)
                return au_error_set(err, errno, "create %s/supervisor", root->path[H_MEMORY]);
        _cleanup_close_ int sfd = openat(pfd, "supervisor", O_DIRECTORY | O_CLOEXEC);
        if (sfd < 0)
                return au_error_set(err, errno, "open %s/supervisor", root->path[H_MEMORY]);
        r = write_at(sfd, "cgroup.procs", "0");
        if (r < 0)
                return au_error_set(err, r, "move into %s/supervisor", root->path[H_MEMORY]);
        r = write_at(pfd, "cgroup.subtree_control", "+memory +cpu +pids");
        if (r < 0)
                return au_error_set(err, r, "enable memory, cpu and pids in %s/cgroup.subtree_control",
                                    root->path[H_MEMORY]);
        return 0;
}

static int root_init_v2(sbx_cgroup_root *root, const char *parent_override, au_error *err) {
        _cleanup_free_ char *own = NULL;
        int r;

        root->v2 = true;
        root->mode = "v2";
        if (parent_override)
                own = strdup(parent_override);
        else if ((r = own_v2_path(&own)) < 0)
                return au_error_set(err, r, "find our cgroup in /proc/self/cgroup");
        if (!own)
                return -ENOMEM;
        if (asprintf(&root->path[H_MEMORY], "/sys/fs/cgroup%s", strcmp(own, "/") == 0 ? "" : own) < 0)
                return -ENOMEM;
        root->fd[H_MEMORY] = open(root->path[H_MEMORY], O_DIRECTORY | O_CLOEXEC);
        if (root->fd[H_MEMORY] < 0)
                return au_error_set(err, errno, "open cgroup %s", root->path[H_MEMORY]);
        for (int h = 0; h < _H_MAX; h++)
                root->same_as[h] = H_MEMORY;
        r = v2_prepare_parent(root, err);
        if (r < 0)
                return r;
        root->have_cgroup_kill = faccessat(root->fd[H_MEMORY], "cgroup.kill", F_OK, 0) == 0 ||
                                 access("/sys/fs/cgroup/cgroup.kill", F_OK) == 0;
        return 0;
}

static void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

/* Whether the comma-separated list (up to end) names item. */
static bool list_has(const char *list, const char *end, const char *item) {
        size_t n = strlen(item);
        while (list < end) {
                const char *comma = memchr(list, ',', (size_t) (end - list));
                const char *stop = comma ? comma : end;
                if ((size_t) (stop - list) == n && memcmp(list, item, n) == 0)
                        return true;
                list = stop + 1;
        }
        return false;
}

/*
 * v1: each controller's mount point (the first "cgroup" mount of the whole
 * hierarchy, root "/", with the controller among its options) and our cgroup
 * in its hierarchy ("ID:controller,...:/path" in /proc/self/cgroup). Entries
 * stay NULL where a controller has none.
 */
static int v1_layout(char *mnt[_H_MAX], char *cur[_H_MAX]) {
        _cleanup_(fclosep) FILE *mi = fopen("/proc/self/mountinfo", "re");
        _cleanup_(fclosep) FILE *cg = fopen("/proc/self/cgroup", "re");
        _cleanup_free_ char *line = NULL;
        size_t size = 0;

        if (!mi || !cg)
                return negative_errno();
        while (getline(&line, &size, mi) > 0) {
                /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS */
                char root[PATH_MAX], point[PATH_MAX], fstype[32], super[512];
                const char *sep = strstr(line, " - ");
                if (!sep || sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2 ||
                    sscanf(sep + 3, "%31s %*s %511s", fstype, super) != 2 || strcmp(fstype, "cgroup") != 0 ||
                    strcmp(root, "/") != 0)
                        continue;
                for (int h = 0; h < _H_MAX; h++)
                        if (!mnt[h] && list_has(super, super + strlen(super), controller_name[h]) &&
                            !(mnt[h] = strdup(point)))
                                return -ENOMEM;
        }
        while (getline(&line, &size, cg) > 0) {
                char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
                if (!b)
                        continue;
                b[strcspn(b, "\n")] = '\0';
                for (int h = 0; h < _H_MAX; h++)
                        if (!cur[h] && list_has(a + 1, b, controller_name[h]) && !(cur[h] = strdup(b + 1)))
                                return -ENOMEM;
        }
        return 0;
}

static void free_layout(char *(*v)[_H_MAX]) {
        for (int h = 0; h < _H_MAX; h++)
                free((*v)[h]);
}

static int root_init_v1(sbx_cgroup_root *root, const char *parent_override, au_error *err) {
        _cleanup_(free_layout) char *mnts[_H_MAX] = {}, *curs[_H_MAX] = {};
        int r = v1_layout(mnts, curs);
        if (r < 0)
                return au_error_set(
                        err, r, "read the cgroup layout from /proc/self/mountinfo and /proc/self/cgroup");

        root->mode = is_cgroup2("/sys/fs/cgroup/unified") ? "hybrid" : "v1";
        for (int h = 0; h < _H_MAX; h++) {
                _cleanup_free_ char *mnt = TAKE_PTR(mnts[h]), *cur = TAKE_PTR(curs[h]);
                root->same_as[h] = h;
                if (!mnt || is_cgroup2(mnt)) {
                        if (h == H_MEMORY || h == H_CPU || h == H_PIDS)
                                return au_error_set(err, ENOENT,
                                                    "cgroup v1: the %s controller is not mounted",
                                                    controller_name[h]);
                        root->same_as[h] = -1; /* optional: cpuacct, freezer */
                        continue;
                }
                if (parent_override) {
                        free(cur);
                        cur = strdup(parent_override);
                } else if (!cur)
                        return au_error_set(err, ENOENT, "find our %s cgroup in /proc/self/cgroup",
                                            controller_name[h]);
                if (!cur)
                        return -ENOMEM;
                if (asprintf(&root->path[h], "%s%s", mnt, strcmp(cur, "/") == 0 ? "" : cur) < 0)
                        return -ENOMEM;
                for (int o = 0; o < h; o++)
                        if (root->path[o] && strcmp(root->path[o], root->path[h]) == 0)
                                root->same_as[h] = o;
                if (root->same_as[h] != h)
                        continue;
                root->fd[h] = open(root->path[h], O_DIRECTORY | O_CLOEXEC);
                if (root->fd[h] < 0)
                        return au_error_set(err, errno, "open cgroup %s", root->path[h]);
        }
        root->have_memsw = faccessat(root->fd[H_MEMORY], "memory.memsw.limit_in_bytes", F_OK, 0) == 0;
        return 0;
}

int sbx_cgroup_root_new(const char *parent_override, sbx_cgroup_root **ret, au_error *err) {
        sbx_cgroup_root *root = calloc(1, sizeof(*root));
        if (!root)
                return -ENOMEM;
        for (int h = 0; h < _H_MAX; h++)
                root->fd[h] = -1;

        int r = is_cgroup2("/sys/fs/cgroup") ? root_init_v2(root, parent_override, err)
                                             : root_init_v1(root, parent_override, err);
        if (r < 0) {
                sbx_cgroup_root_free(root);
                return r;
        }
        *ret = root;
        return 0;
}

sbx_cgroup_root *sbx_cgroup_root_free(sbx_cgroup_root *root) {
        if (!root)
                return NULL;
        for (int h = 0; h < _H_MAX; h++) {
                safe_close(root->fd[h]);
                free(root->path[h]);
        }
        free(root);
        return NULL;
}

const char *sbx_cgroup_root_mode(const sbx_cgroup_root *root) {
        return root->mode;
}

/* The hierarchies a run needs a directory in: each distinct v1 mount, or the one v2 tree. */
static bool owns_dir(const sbx_cgroup_root *root, int h) {
        return root->v2 ? h == H_MEMORY : root->same_as[h] == h;
}

/* The run's directory fd for controller h (shared hierarchies resolved). */
static int dir_for(const sbx_cgroup *cg, int h) {
        const sbx_cgroup_root *root = cg->root;
        if (root->v2)
                return cg->fd[H_MEMORY];
        return root->same_as[h] < 0 ? -1 : cg->fd[root->same_as[h]];
}

static int set_limits_v2(sbx_cgroup *cg, const sbx_limits *l, au_error *err) {
        char v[64];
        int fd = cg->fd[H_MEMORY], r;

        snprintf(v, sizeof(v), "%" PRIu64, l->memory_bytes);
        if ((r = write_at(fd, "memory.max", v)) < 0)
                return au_error_set(err, r, "set memory.max");
        /* Absent when the kernel has no swap accounting: then there is no swap to limit. */
        if ((r = write_at(fd, "memory.swap.max", "0")) < 0 && r != -ENOENT)
                return au_error_set(err, r, "set memory.swap.max");
        snprintf(v, sizeof(v), "%" PRIu64 " 100000", (uint64_t) l->cpu_percent * 1000);
        if ((r = write_at(fd, "cpu.max", v)) < 0)
                return au_error_set(err, r, "set cpu.max");
        snprintf(v, sizeof(v), "%" PRIu32, l->pids);
        if ((r = write_at(fd, "pids.max", v)) < 0)
                return au_error_set(err, r, "set pids.max");
        return 0;
}

static int set_limits_v1(sbx_cgroup *cg, const sbx_limits *l, au_error *err) {
        char v[64];
        int r;

        snprintf(v, sizeof(v), "%" PRIu64, l->memory_bytes);
        if ((r = write_at(dir_for(cg, H_MEMORY), "memory.limit_in_bytes", v)) < 0)
                return au_error_set(err, r, "set memory.limit_in_bytes");
        /* memory+swap equal to memory: no swap. Must follow limit_in_bytes. */
        if (cg->root->have_memsw &&
            (r = write_at(dir_for(cg, H_MEMORY), "memory.memsw.limit_in_bytes", v)) < 0)
                return au_error_set(err, r, "set memory.memsw.limit_in_bytes");
        if ((r = write_at(dir_for(cg, H_CPU), "cpu.cfs_period_us", "100000")) < 0)
                return au_error_set(err, r, "set cpu.cfs_period_us");
        snprintf(v, sizeof(v), "%" PRIu64, (uint64_t) l->cpu_percent * 1000);
        if ((r = write_at(dir_for(cg, H_CPU), "cpu.cfs_quota_us", v)) < 0)
                return au_error_set(err, r, "set cpu.cfs_quota_us");
        snprintf(v, sizeof(v), "%" PRIu32, l->pids);
        if ((r = write_at(dir_for(cg, H_PIDS), "pids.max", v)) < 0)
                return au_error_set(err, r, "set pids.max");
        return 0;
}

int sbx_cgroup_create(sbx_cgroup_root *root, const char *name, const sbx_limits *limits, sbx_cgroup **ret,
                      au_error *err) {
        sbx_cgroup *cg = calloc(1, sizeof(*cg));
        int r;

        if (!cg)
                return -ENOMEM;
        cg->root = root;
        snprintf(cg->name, sizeof(cg->name), "%s", name);
        for (int h = 0; h < _H_MAX; h++)
                cg->fd[h] = -1;

        for (int h = 0; h < _H_MAX; h++) {
                if (!owns_dir(root, h) || root->fd[h] < 0)
                        continue;
                if (mkdirat(root->fd[h], cg->name, 0755) < 0) {
                        r = au_error_set(err, errno, "create cgroup %s/%s", root->path[h], cg->name);
                        goto fail;
                }
                cg->fd[h] = openat(root->fd[h], cg->name, O_DIRECTORY | O_CLOEXEC);
                if (cg->fd[h] < 0) {
                        r = au_error_set(err, errno, "open cgroup %s/%s", root->path[h], cg->name);
                        goto fail;
                }
        }
        r = root->v2 ? set_limits_v2(cg, limits, err) : set_limits_v1(cg, limits, err);
        if (r < 0)
                goto fail;
        *ret = cg;
        return 0;
fail:
        sbx_cgroup_destroy(cg);
        return r;
}

void sbx_cgroup_root_cleanup_stale(sbx_cgroup_root *root) {
        for (int h = 0; h < _H_MAX; h++) {
                if (!owns_dir(root, h) || root->fd[h] < 0)
                        continue;
                int dfd = dup(root->fd[h]);
                DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
                if (!d) {
                        safe_close(dfd);
                        continue;
                }
                rewinddir(d);
                struct dirent *de;
                while ((de = readdir(d))) {
                        long pid;
                        unsigned long long seq;
                        if (sscanf(de->d_name, "autoos-%ld-%llu", &pid, &seq) != 2 || pid <= 0 ||
                            kill((pid_t) pid, 0) == 0 || errno != ESRCH)
                                continue;
                        _cleanup_close_ int fd = openat(root->fd[h], de->d_name, O_DIRECTORY | O_CLOEXEC);
                        if (fd >= 0)
                                for (int i = 0; i < 20 && kill_listed(fd) > 0; i++)
                                        sleep_us(1000);
                        unlinkat(root->fd[h], de->d_name, AT_REMOVEDIR);
                }
                closedir(d);
        }
}

int sbx_cgroup_dirfd(const sbx_cgroup *cg) {
        return cg->root->v2 ? cg->fd[H_MEMORY] : -1;
}

int sbx_cgroup_attach(sbx_cgroup *cg, pid_t pid, au_error *err) {
        char v[32];
        snprintf(v, sizeof(v), "%d", (int) pid);
        for (int h = 0; h < _H_MAX; h++) {
                if (cg->fd[h] < 0)
                        continue;
                int r = write_at(cg->fd[h], "cgroup.procs", v);
                if (r < 0)
                        return au_error_set(err, r, "move pid %d into cgroup %s/%s", (int) pid,
                                            cg->root->path[h], cg->name);
        }
        return 0;
}

/* Sends SIGKILL to every pid listed in dirfd's cgroup.procs; returns how many. */
static int kill_listed(int dirfd) {
        _cleanup_close_ int fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
        char buf[8192];
        int n = 0;
        if (fd < 0)
                return negative_errno();
        ssize_t k;
        while ((k = read(fd, buf, sizeof(buf) - 1)) > 0) {
                buf[k] = '\0';
                /* A pid split across reads is killed on the caller's next pass. */
                for (char *p = buf, *end; *p; p = end) {
                        long pid = strtol(p, &end, 10);
                        if (end == p)
                                break;
                        if (pid > 0 && kill((pid_t) pid, SIGKILL) == 0)
                                n++;
                        while (*end == '\n')
                                end++;
                }
        }
        return n;
}

static void sleep_us(long us) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = us * 1000};
        nanosleep(&ts, NULL);
}

/*
 * Frozen tasks cannot fork, so one pass over cgroup.procs kills everything
 * (descendants that setsid'd or double-forked included); SIGKILL is
 * delivered on thaw.
 */
static int kill_frozen(int dirfd, const char *state_file, const char *frozen, const char *thawed) {
        int r = write_at(dirfd, state_file, frozen);
        if (r < 0)
                return r;
        for (int i = 0; i < 100; i++) {
                char state[32];
                if (strcmp(state_file, "freezer.state") != 0)
                        break; /* v2 cgroup.freeze: written is enough for our purpose */
                if (read_at(dirfd, state_file, state, sizeof(state)) < 0 || strncmp(state, "FROZEN", 6) == 0)
                        break;
                sleep_us(1000);
        }
        kill_listed(dirfd);
        return write_at(dirfd, state_file, thawed);
}

int sbx_cgroup_kill_all(sbx_cgroup *cg) {
        const sbx_cgroup_root *root = cg->root;
        if (root->v2) {
                int r = write_at(cg->fd[H_MEMORY], "cgroup.kill", "1");
                if (r >= 0)
                        return 0;
                return kill_frozen(cg->fd[H_MEMORY], "cgroup.freeze", "1", "0");
        }
        int fz = dir_for(cg, H_FREEZER);
        if (fz >= 0)
                return kill_frozen(fz, "freezer.state", "FROZEN", "THAWED");
        /* No freezer: repeat until nothing is left to kill. */
        for (int i = 0; i < 50 && kill_listed(dir_for(cg, H_PIDS)) > 0; i++)
                sleep_us(1000);
        return 0;
}

int sbx_cgroup_read_cpu_ns(sbx_cgroup *cg, uint64_t *ret) {
        uint64_t v;
        int r;
        if (cg->root->v2) {
                r = read_keyed_at(cg->fd[H_MEMORY], "cpu.stat", "usage_usec", &v);
                if (r >= 0)
                        *ret = v * 1000;
                return r;
        }
        int fd = dir_for(cg, H_CPUACCT);
        if (fd < 0)
                return -ENOENT;
        r = read_u64_at(fd, "cpuacct.usage", &v);
        if (r >= 0)
                *ret = v;
        return r;
}

int sbx_cgroup_read_pids_max_events(sbx_cgroup *cg, uint64_t *ret) {
        int fd = cg->root->v2 ? cg->fd[H_MEMORY] : dir_for(cg, H_PIDS);
        return read_keyed_at(fd, "pids.events", "max", ret);
}

int sbx_cgroup_read_stats(sbx_cgroup *cg, sbx_cgroup_stats *ret) {
        sbx_cgroup_stats s = {};
        uint64_t v;

        (void) sbx_cgroup_read_cpu_ns(cg, &s.cpu_ns);
        if (cg->root->v2) {
                int fd = cg->fd[H_MEMORY];
                if (read_u64_at(fd, "memory.peak", &v) >= 0 || read_u64_at(fd, "memory.current", &v) >= 0)
                        s.memory_peak = v;
                if (read_keyed_at(fd, "memory.events", "oom_kill", &v) >= 0)
                        s.oom_kills = v;
        } else {
                int mfd = dir_for(cg, H_MEMORY);
                if (read_u64_at(mfd,
                                cg->root->have_memsw ? "memory.memsw.max_usage_in_bytes"
                                                     : "memory.max_usage_in_bytes",
                                &v) >= 0)
                        s.memory_peak = v;
                if (read_keyed_at(mfd, "memory.oom_control", "oom_kill", &v) >= 0)
                        s.oom_kills = v;
        }
        (void) sbx_cgroup_read_pids_max_events(cg, &s.pids_max_events);
        *ret = s;
        return 0;
}

sbx_cgroup *sbx_cgroup_destroy(sbx_cgroup *cg) {
        if (!cg)
                return NULL;
        for (int h = 0; h < _H_MAX; h++) {
                if (cg->fd[h] < 0)
                        continue;
                cg->fd[h] = safe_close(cg->fd[h]);
                /* Tasks that were just killed may take a moment to leave. */
                for (int i = 0; i < 200; i++) {
                        if (unlinkat(cg->root->fd[h], cg->name, AT_REMOVEDIR) == 0 || errno != EBUSY)
                                break;
                        sleep_us(i < 10 ? 100 : 5000);
                }
        }
        free(cg);
        return NULL;
}
