/* SPDX-License-Identifier: MIT */
/*
 * autoosctl adversarial: the attack catalogue, run against this host's
 * sandbox and policy (and, given targets, against autoosd and the
 * coordinator: adversarial/fleet.c). adversarial/README.md says how
 * to add an attack.
 *
 * Each sandbox attack is one run of adversarial/attack (placed in
 * /work like any --file) through the sandbox library, in this process, with
 * the limits the catalogue gives it. Its verdict comes from what the run's
 * result shows (outcome, exit, denied_syscalls), the attack's own verdict
 * line, and what the runner sees on the host: processes left behind, run
 * cgroups left behind, connections to host sockets it listens on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/random.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include "adversarial/adversarial.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/macro.h"
#include "sandbox/sandbox.h"
#include "sandbox/supervise.h"

#define CANARY_ENV "AUTOOS_ADV_CANARY"
#define MAX_ATTACK_BYTES (64u << 20)
#define MiB (UINT64_C(1) << 20)

/* Whether only names this attack itself (not its group): what explicit-only attacks need. */
static bool named_exactly(const char *only, const char *name) {
        return only && adv_selected(only, "", name);
}

/* ---- the catalogue -------------------------------------------------------------- */

typedef enum attack_kind {
        KIND_ONE,   /* one run */
        KIND_PAIR,  /* a victim run first (until READY), then the attack run beside it */
        KIND_MANY,  /* copies runs at once */
        KIND_SPEC,  /* no run: specs the policy must refuse */
        KIND_AGENT, /* adversarial/agent.c: the agent loop attacked, its tool calls run as our runs */
} attack_kind;

enum {
        F_EXPLICIT = 1 << 0,  /* only when --only names it */
        F_MARKER = 1 << 1,    /* descendants carry a marker: seen on the host while READY, gone after */
        F_ZOMBIES = 1 << 2,   /* ...and zombies among them while READY */
        F_STOPPED = 1 << 3,   /* ...and stopped ones while READY */
        F_LISTENER = 1 << 4,  /* no connection may reach the runner's host sockets */
        F_CPU_QUOTA = 1 << 5, /* cpu_ms must stay within the quota */
        F_QUICK_END = 1 << 6, /* the run ends as soon as pid 1 exits */
};

#define OUT(x) (1u << SBX_OUTCOME_##x)

typedef struct attack_def {
        const char *group, *name;
        const char *expectation;
        attack_kind kind;
        /* Arguments after the attack's name, space-separated, with placeholders:
         * %T token, %M marker, %P the runner's host pid, %m memory limit (MiB), %p pids
         * limit, %w /work size (bytes), %L host loopback port, %H a host address,
         * %C the environment canary, %F the host canary file, %K the host SysV key,
         * %V the victim run's host pid. */
        const char *args;
        unsigned outcomes; /* accepted outcomes */
        int signal;        /* with OUT(SIGNALED): the signal */
        /* Syscalls the sandbox must report as denied, space-separated; "~name": not at privileged. */
        const char *denied;
        unsigned flags;
        unsigned marker_min; /* F_MARKER: processes carrying the marker while READY */
        unsigned copies;     /* KIND_MANY */
        sbx_limits limits;   /* 0: the runner's default */
} attack_def;

#define CONTAINED_EXIT OUT(EXITED)

/* clang-format off */
static const attack_def catalogue[] = {
        /* escape */
        { "escape", "mount", "mount, remount, bind and umount refused (EPERM), reported", KIND_ONE, "",
          CONTAINED_EXIT, 0, "mount umount2", 0, 0, 0, {} },
        { "escape", "mount-api", "fsopen, fsconfig, fsmount, move_mount, fspick refused (EPERM), reported", KIND_ONE,
          "", CONTAINED_EXIT, 0, "fsopen fsconfig fsmount move_mount fspick", 0, 0, 0, {} },
        { "escape", "open-tree", "open_tree clone and mount_setattr refused (EPERM), reported", KIND_ONE, "",
          CONTAINED_EXIT, 0, "open_tree mount_setattr", 0, 0, 0, {} },
        { "escape", "pivot-root", "pivot_root refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT, 0,
          "pivot_root", 0, 0, 0, {} },
        { "escape", "chroot", "chroot refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT, 0, "chroot", 0, 0, 0,
          {} },
        { "escape", "unshare", "unshare of every namespace refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT,
          0, "unshare", 0, 0, 0, {} },
        { "escape", "setns", "setns into each namespace refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT, 0,
          "setns", 0, 0, 0, {} },
        { "escape", "clone3-namespaces", "clone3 with namespace flags refused (ENOSYS), reported", KIND_ONE, "",
          CONTAINED_EXIT, 0, "clone3", 0, 0, 0, {} },
        { "escape", "clone-namespaces", "clone with namespace flags refused (EPERM), reported", KIND_ONE, "",
          CONTAINED_EXIT, 0, "clone", 0, 0, 0, {} },
        { "escape", "proc-sys-core-pattern", "core_pattern and suid_dumpable not writable", KIND_ONE, "",
          CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "escape", "proc-sys-writes", "/proc/sys (modprobe, sysrq, drop_caches, binfmt_misc...) not writable",
          KIND_ONE, "", CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "escape", "proc-masked", "kcore, kallsyms, keys, kmsg, interrupts... masked; acpi, scsi... empty", KIND_ONE, "",
          CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "escape", "sys-writes", "no /sys; mounting sysfs refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT,
          0, "mount", 0, 0, 0, {} },
        { "escape", "cgroup-escape", "cgroup namespace root only; mounting cgroupfs refused, reported", KIND_ONE, "",
          CONTAINED_EXIT, 0, "mount", 0, 0, 0, {} },
        { "escape", "ptrace", "ptrace of a sibling refused (EPERM; allowed at privileged), host pids invisible",
          KIND_ONE, "%P", CONTAINED_EXIT, 0, "~ptrace", 0, 0, 0, {} },
        { "escape", "process-vm", "process_vm_readv and kcmp refused (EPERM; allowed at privileged)", KIND_ONE, "%P",
          CONTAINED_EXIT, 0, "~process_vm_readv ~kcmp", 0, 0, 0, {} },
        { "escape", "open-by-handle", "name_to_handle_at, open_by_handle_at (shocker) refused (EPERM), reported",
          KIND_ONE, "", CONTAINED_EXIT, 0, "name_to_handle_at open_by_handle_at", 0, 0, 0, {} },
        { "escape", "mknod", "mknod of char and block devices refused (EPERM), reported", KIND_ONE, "",
          CONTAINED_EXIT, 0, "mknodat", 0, 0, 0, {} },
        { "escape", "dev-mem", "/dev/mem, kmem, port, msr, kvm absent", KIND_ONE, "", CONTAINED_EXIT, 0, NULL, 0, 0,
          0, {} },
        { "escape", "dev-kmsg", "/dev/kmsg, console, tty* absent; syslog refused, reported", KIND_ONE, "",
          CONTAINED_EXIT, 0, "syslog", 0, 0, 0, {} },
        { "escape", "dev-block", "no block device; /dev holds only null, zero, full, random, urandom, pts", KIND_ONE,
          "", CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "escape", "leaked-fds", "fds 3 and up closed; stdio are pipes or /dev/null (CVE-2024-21626 class)",
          KIND_ONE, "", CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "escape", "host-cwd", "cwd inside the sandbox root; \"..\" never leads out (CVE-2024-21626 class)",
          KIND_ONE, "", CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "escape", "proc-self-exe", "no /proc/PID/exe outside the sandbox; host binaries not writable "
                                     "(CVE-2019-5736 class)",
          KIND_ONE, "", CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "escape", "proc-root", "/proc/PID/root is the sandbox root; host pids and shadow out of reach", KIND_ONE,
          "%P", CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "escape", "host-file", "a host file out of reach by every path (/proc/*/root, cwd, ..)", KIND_ONE, "%F %C",
          CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "escape", "setuid", "no_new_privs; setuid binaries run with the caller's euid", KIND_ONE, "",
          CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        /* kernel attack surface */
        { "kernel", "io-uring", "io_uring_setup, _enter, _register refused (EPERM), reported", KIND_ONE, "",
          CONTAINED_EXIT, 0, "io_uring_setup io_uring_enter io_uring_register", 0, 0, 0, {} },
        { "kernel", "bpf", "bpf PROG_LOAD and MAP_CREATE refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT, 0,
          "bpf", 0, 0, 0, {} },
        { "kernel", "keyctl", "add_key, keyctl, request_key refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT,
          0, "add_key keyctl request_key", 0, 0, 0, {} },
        { "kernel", "userfaultfd", "userfaultfd refused (EPERM), reported; no /dev/userfaultfd", KIND_ONE, "",
          CONTAINED_EXIT, 0, "userfaultfd", 0, 0, 0, {} },
        { "kernel", "perf-event", "perf_event_open refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT, 0,
          "perf_event_open", 0, 0, 0, {} },
        { "kernel", "af-vsock", "socket(AF_VSOCK) refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT, 0,
          "socket", 0, 0, 0, {} },
        { "kernel", "af-alg", "socket(AF_ALG) refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT, 0, "socket",
          0, 0, 0, {} },
        { "kernel", "af-packet", "socket(AF_PACKET) refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT, 0,
          "socket", 0, 0, 0, {} },
        { "kernel", "raw-socket", "raw IPv4/IPv6 and SOCK_PACKET sockets refused (EPERM), reported", KIND_ONE, "",
          CONTAINED_EXIT, 0, "socket", 0, 0, 0, {} },
        { "kernel", "netlink", "netlink other than NETLINK_ROUTE (audit, uevent, sock_diag, netfilter, xfrm, "
                               "generic...) refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT, 0, "socket", 0, 0,
          0, {} },
        { "kernel", "tiocsti", "TIOCSTI refused (EPERM) on any fd, high bits too, reported", KIND_ONE, "",
          CONTAINED_EXIT, 0, "ioctl", 0, 0, 0, {} },
        { "kernel", "tioclinux", "TIOCLINUX refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT, 0, "ioctl", 0,
          0, 0, {} },
        { "kernel", "tiocsetd", "TIOCSETD (tty line disciplines) refused (EPERM) on the run's own pty, high bits "
                                "too, reported", KIND_ONE, "", CONTAINED_EXIT, 0, "ioctl", 0, 0, 0, {} },
        { "kernel", "kexec", "kexec_load, kexec_file_load, reboot refused (EPERM), reported", KIND_ONE, "",
          CONTAINED_EXIT, 0, "kexec_load kexec_file_load reboot", 0, 0, 0, {} },
        { "kernel", "modules", "init_module, finit_module, delete_module refused (EPERM), reported", KIND_ONE, "",
          CONTAINED_EXIT, 0, "init_module finit_module delete_module", 0, 0, 0, {} },
        { "kernel", "dmesg", "syslog(2) refused (EPERM), reported", KIND_ONE, "", CONTAINED_EXIT, 0, "syslog", 0, 0,
          0, {} },
        { "kernel", "clock", "settimeofday, clock_settime, adjtimex, clock_adjtime refused, reported", KIND_ONE, "",
          CONTAINED_EXIT, 0, "settimeofday clock_settime adjtimex clock_adjtime", 0, 0, 0, {} },
        { "kernel", "personality", "personality(ADDR_NO_RANDOMIZE) refused (allowed at privileged)", KIND_ONE, "",
          CONTAINED_EXIT, 0, "~personality", 0, 0, 0, {} },
        { "kernel", "foreign-abi", "x32 system call: killed by SIGSYS before it runs", KIND_ONE, "", OUT(SIGNALED),
          SIGSYS, NULL, 0, 0, 0, {} },
        /* exhaustion */
        { "exhaustion", "memory", "outcome oom at a 64 MiB limit", KIND_ONE, "%m", OUT(OOM), 0, NULL, 0, 0, 0,
          { .memory_bytes = 64 * MiB } },
        { "exhaustion", "memory-tmpfs", "/dev/shm and /tmp filled: ENOSPC or oom within 64 MiB", KIND_ONE, "%m",
          OUT(EXITED) | OUT(OOM), 0, NULL, 0, 0, 0, { .memory_bytes = 64 * MiB } },
        { "exhaustion", "fork-bomb", "outcome pids_limit at 32 processes", KIND_ONE, "%p",
          OUT(PIDS_LIMIT) | OUT(EXITED), 0, NULL, 0, 0, 0, { .pids = 32 } },
        { "exhaustion", "threads", "outcome pids_limit at 32 tasks", KIND_ONE, "%p", OUT(PIDS_LIMIT) | OUT(EXITED), 0,
          NULL, 0, 0, 0, { .pids = 32 } },
        { "exhaustion", "cpu-time", "outcome cpu_limit after 500 ms of CPU", KIND_ONE, "", OUT(CPU_LIMIT), 0, NULL, 0,
          0, 0, { .cpu_ms = 500, .cpu_percent = 100 } },
        { "exhaustion", "cpu-quota", "5 spinning threads held to 20% of a CPU until the 1.5 s timeout", KIND_ONE, "",
          OUT(TIMEOUT), 0, NULL, F_CPU_QUOTA, 0, 0, { .cpu_percent = 20, .wall_ms = 1500 } },
        { "exhaustion", "work-space", "ENOSPC when 1 MiB /work is full", KIND_ONE, "%w", CONTAINED_EXIT, 0, NULL, 0,
          0, 0, { .work_bytes = 1 * MiB } },
        { "exhaustion", "inodes", "ENOSPC at the inode limits of /work and /tmp", KIND_ONE, "", CONTAINED_EXIT, 0,
          NULL, 0, 0, 0, { .work_bytes = 1 * MiB } },
        { "exhaustion", "shm-inodes", "ENOSPC at an inode limit of /dev/shm, as on /tmp", KIND_ONE, "",
          CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "exhaustion", "output-flood", "outcome output_limit (64 KiB kept, run ended at 8 times that)", KIND_ONE, "",
          OUT(OUTPUT_LIMIT), 0, NULL, 0, 0, 0, { .output_bytes = 64 * 1024 } },
        { "exhaustion", "fds", "EMFILE at the fd rlimit, which cannot be raised", KIND_ONE, "", CONTAINED_EXIT, 0,
          NULL, 0, 0, 0, {} },
        { "exhaustion", "argv-huge", "execve with 16 MiB of argv or env: E2BIG", KIND_ONE, "", CONTAINED_EXIT, 0, NULL,
          0, 0, 0, {} },
        { "exhaustion", "spec-huge", "specs with 2 MiB argv, 2 MiB env, 5000 args: rejected", KIND_SPEC, "", 0, 0,
          NULL, 0, 0, 0, {} },
        { "exhaustion", "concurrent-runs", "16 runs at once: each contained, each its own host uid, nothing left",
          KIND_MANY, "", CONTAINED_EXIT, 0, NULL, 0, 0, 16, { .memory_bytes = 64 * MiB } },
        /* side channels */
        { "side-channel", "abstract-unix", "another run's and the host's abstract sockets unreachable", KIND_PAIR,
          "%T", CONTAINED_EXIT, 0, NULL, F_LISTENER, 0, 0, {} },
        { "side-channel", "dev-shm", "/dev/shm private: another run's and the host's files invisible", KIND_PAIR,
          "%T", CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "side-channel", "sysv-ipc", "SysV objects of another run and of the host invisible", KIND_PAIR, "%T %K",
          CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "side-channel", "host-env", "no host environment variable (a canary) inside", KIND_ONE, "%C",
          CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "side-channel", "other-run", "another run's processes and files invisible, its pid unreachable", KIND_PAIR,
          "%T %V", CONTAINED_EXIT, 0, NULL, 0, 0, 0, {} },
        { "side-channel", "host-loopback", "the host's 127.0.0.1 listener unreachable", KIND_ONE, "%L %H",
          CONTAINED_EXIT, 0, NULL, F_LISTENER, 0, 0, {} },
        /* time */
        { "time", "timeout-setsid", "timeout kills setsid'd descendants (one ignoring SIGTERM); none left", KIND_ONE,
          "%M", OUT(TIMEOUT), 0, NULL, F_MARKER, 3, 0, { .wall_ms = 1000 } },
        { "time", "timeout-double-fork", "timeout kills double-forked orphans; none left", KIND_ONE, "%M",
          OUT(TIMEOUT), 0, NULL, F_MARKER, 3, 0, { .wall_ms = 1000 } },
        { "time", "zombies", "timeout with unreaped zombies: all gone, cgroup removed", KIND_ONE, "%M", OUT(TIMEOUT),
          0, NULL, F_MARKER | F_ZOMBIES, 2, 0, { .wall_ms = 1000 } },
        { "time", "sigstop", "timeout with SIGSTOPped processes: all killed, cgroup removed", KIND_ONE, "%M",
          OUT(TIMEOUT), 0, NULL, F_MARKER | F_STOPPED, 5, 0, { .wall_ms = 1000 } },
        { "time", "orphan", "pid 1 exits: the run ends at once, its setsid'd daemon with it", KIND_ONE, "%M",
          OUT(EXITED), 0, NULL, F_MARKER | F_QUICK_END, 2, 0, {} },
        /* the agent loop (issue 14): a hostile model, the real loop and fabric, tools in sandboxes */
        { "agent", "tool-not-listed", "calls to tools not on the list refused, each refusal told to the model; "
          "nothing reaches the runner", KIND_AGENT, "", 0, 0, NULL, 0, 0, 0, {} },
        { "agent", "argument-escapes-schema", "arguments outside the schema (extra property, wrong type, ../ and "
          "shell outside its enum, range, 100 KB, not JSON) refused before anything runs, told to the model",
          KIND_AGENT, "", 0, 0, NULL, 0, 0, 0, {} },
        { "agent", "prompt-injection-host-path", "injected tool output makes the model read a host canary, "
          "/etc/shadow, /proc/self/environ: the reads run sandboxed, the secret reaches no output, request or answer",
          KIND_AGENT, "", 0, 0, NULL, 0, 0, 0, {} },
        { "agent", "budget-mid-agent", "turn 1 spends limits.cost_usd, then a workflow budget: budget_exceeded, no "
          "second model call, no tool run after", KIND_AGENT, "", 0, 0, NULL, 0, 0, 0, {} },
        { "agent", "tool-flood", "1000 tool calls in one reply: bounded (none run), one model request", KIND_AGENT,
          "", 0, 0, NULL, 0, 0, 0, {} },
        { "agent", "turns-exhausted", "a model calling tools forever stops at limits.turns 3: turns_exhausted, the "
          "last turn's call skipped", KIND_AGENT, "", 0, 0, NULL, 0, 0, 0, {} },
        /* the harness itself */
        { "selftest", "selftest-escape", "this attack always escapes: proves the harness can fail", KIND_ONE, "",
          CONTAINED_EXIT, 0, NULL, F_EXPLICIT, 0, 0, {} },
};
/* clang-format on */

/* ---- small helpers ------------------------------------------------------------------ */

static void row_set(char *buf, size_t size, const char *s) {
        buf[0] = '\0';
        adv_append(buf, size, "%s", s);
}

static char *read_file(const char *path, size_t max, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return NULL;
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size > max) {
                errno = EFBIG;
                return NULL;
        }
        char *buf = malloc((size_t) st.st_size + 1);
        size_t n = 0;
        while (buf && n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += (size_t) k;
        }
        if (buf)
                buf[n] = '\0';
        *ret_len = n;
        return buf;
}

/* ---- the host's side: fixtures the attacks aim at, and what is left after them ---- */

typedef struct host_fixtures {
        char token[24];
        char canary[48];
        char tmpdir[64];
        char canary_file[96];
        char shm_file[96];
        char host_ip[INET_ADDRSTRLEN];
        int listen_fd, abstract_fd;
        int listen_port;
        key_t sysv_key;
        int sysv_id;
} host_fixtures;

static void fixtures_done(host_fixtures *h) {
        safe_close(h->listen_fd);
        safe_close(h->abstract_fd);
        h->listen_fd = h->abstract_fd = -1;
        if (h->sysv_id >= 0)
                shmctl(h->sysv_id, IPC_RMID, NULL);
        h->sysv_id = -1;
        if (h->shm_file[0])
                unlink(h->shm_file);
        if (h->canary_file[0])
                unlink(h->canary_file);
        if (h->tmpdir[0])
                rmdir(h->tmpdir);
        h->shm_file[0] = h->canary_file[0] = h->tmpdir[0] = '\0';
}

/* Sets up what the attacks try to reach; each that cannot be made is left out (the attack skips that try).
 */
static int fixtures_init(host_fixtures *h, au_error *err) {
        uint8_t rnd[8];
        *h = (host_fixtures){.listen_fd = -1, .abstract_fd = -1, .sysv_id = -1};
        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                return au_error_set(err, errno, "getrandom");
        for (size_t i = 0; i < sizeof(rnd); i++)
                snprintf(h->token + 2 * i, 3, "%02x", rnd[i]);
        snprintf(h->canary, sizeof(h->canary), "canary-%s", h->token);

        /* An environment variable of ours, a file in the host's /tmp, a /dev/shm file. */
        if (setenv(CANARY_ENV, h->canary, 1) < 0)
                return au_error_set(err, errno, "setenv " CANARY_ENV);
        /* Named with our pid, so that a test can tell ours from a concurrent suite's. */
        snprintf(h->tmpdir, sizeof(h->tmpdir), "/tmp/autoos-adv.%d.XXXXXX", (int) getpid());
        if (!mkdtemp(h->tmpdir)) {
                h->tmpdir[0] = '\0';
                return au_error_set(err, errno, "mkdtemp /tmp/autoos-adv.%d.XXXXXX", (int) getpid());
        }
        snprintf(h->canary_file, sizeof(h->canary_file), "%s/canary", h->tmpdir);
        _cleanup_close_ int fd = open(h->canary_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, h->canary, strlen(h->canary)) < 0)
                return au_error_set(err, errno, "write %s", h->canary_file);
        snprintf(h->shm_file, sizeof(h->shm_file), "/dev/shm/adv-host-%s", h->token);
        _cleanup_close_ int sfd = open(h->shm_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (sfd < 0)
                h->shm_file[0] = '\0';

        /* A loopback listener that nothing may connect to. */
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof(a);
        h->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (h->listen_fd < 0 || bind(h->listen_fd, (struct sockaddr *) &a, sizeof(a)) < 0 ||
            listen(h->listen_fd, 8) < 0 || getsockname(h->listen_fd, (struct sockaddr *) &a, &alen) < 0)
                return au_error_set(err, errno, "listen on 127.0.0.1");
        h->listen_port = ntohs(a.sin_port);

        /* An abstract unix socket in the host's network namespace. */
        struct sockaddr_un u = {.sun_family = AF_UNIX};
        int n = snprintf(u.sun_path + 1, sizeof(u.sun_path) - 1, "adv-host-%s", h->token);
        h->abstract_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (h->abstract_fd < 0 ||
            bind(h->abstract_fd, (struct sockaddr *) &u,
                 (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0 ||
            listen(h->abstract_fd, 8) < 0)
                return au_error_set(err, errno, "listen on an abstract unix socket");

        /* A SysV shared memory segment of the host's. */
        for (int i = 0; i < 16 && h->sysv_id < 0; i++) {
                uint32_t k;
                if (getrandom(&k, sizeof(k), 0) != sizeof(k))
                        break;
                h->sysv_key = (key_t) ((k & 0x3fffffff) | 0x40000000);
                h->sysv_id = shmget(h->sysv_key, 4096, IPC_CREAT | IPC_EXCL | 0600);
        }

        /* An address of the host's other than loopback, if it has one. */
        struct ifaddrs *ifs = NULL;
        if (getifaddrs(&ifs) == 0) {
                for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
                        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
                            !(i->ifa_flags & IFF_LOOPBACK) && (i->ifa_flags & IFF_UP)) {
                                inet_ntop(AF_INET, &((struct sockaddr_in *) i->ifa_addr)->sin_addr,
                                          h->host_ip, sizeof(h->host_ip));
                                break;
                        }
                freeifaddrs(ifs);
        }
        return 0;
}

/* Whether anything connected to the host's sockets; says which in buf. */
static bool host_sockets_reached(const host_fixtures *h, char *buf, size_t size) {
        bool reached = false;
        const int fds[2] = {h->listen_fd, h->abstract_fd};
        const char *names[2] = {"the 127.0.0.1 listener", "the abstract socket"};
        for (int i = 0; i < 2; i++) {
                if (fds[i] < 0)
                        continue;
                int c;
                while ((c = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC)) >= 0) {
                        close(c);
                        if (!reached)
                                adv_append(buf, size, "%s%s got a connection", *buf ? "; " : "", names[i]);
                        reached = true;
                }
        }
        return reached;
}

/* Host processes whose command line holds marker: pids into ret (up to max), count returned. */
typedef struct proc_info {
        pid_t pid, ppid;
        char state;
} proc_info;

static size_t host_procs_with(const char *marker, proc_info *ret, size_t max) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        size_t n = 0;
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                char p[300], buf[4096], stat[1024];
                long pid = atol(de->d_name);
                if (pid <= 0 || pid == getpid())
                        continue;
                snprintf(p, sizeof(p), "/proc/%ld/cmdline", pid);
                _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
                ssize_t k = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
                if (k <= 0)
                        continue;
                for (ssize_t i = 0; i < k; i++)
                        if (buf[i] == '\0')
                                buf[i] = ' ';
                buf[k] = '\0';
                if (!strstr(buf, marker))
                        continue;
                proc_info pi = {.pid = (pid_t) pid, .state = '?'};
                snprintf(p, sizeof(p), "/proc/%ld/stat", pid);
                _cleanup_close_ int sfd = open(p, O_RDONLY | O_CLOEXEC);
                k = sfd >= 0 ? read(sfd, stat, sizeof(stat) - 1) : -1;
                if (k > 0) {
                        stat[k] = '\0';
                        char *rp = strrchr(stat, ')');
                        int ppid;
                        if (rp && sscanf(rp + 1, " %c %d", &pi.state, &ppid) == 2)
                                pi.ppid = ppid;
                }
                if (n < max)
                        ret[n] = pi;
                n++;
        }
        closedir(d);
        return n;
}

/* Zombies on the host whose parent is one of the given processes. */
static size_t host_zombies_of(const proc_info *parents, size_t np) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        size_t n = 0;
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                char p[300], stat[1024];
                if (atol(de->d_name) <= 0)
                        continue;
                snprintf(p, sizeof(p), "/proc/%s/stat", de->d_name);
                _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
                ssize_t k = fd >= 0 ? read(fd, stat, sizeof(stat) - 1) : -1;
                if (k <= 0)
                        continue;
                stat[k] = '\0';
                char *rp = strrchr(stat, ')'), state;
                int ppid;
                if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2 || state != 'Z')
                        continue;
                for (size_t i = 0; i < np; i++)
                        if (parents[i].pid == ppid)
                                n++;
        }
        closedir(d);
        return n;
}

/* Run cgroups of this process (autoos-PID-N) still present below any of our cgroups. */
static size_t leftover_cgroups(char *buf, size_t size) {
        FILE *f = fopen("/proc/self/cgroup", "re");
        char line[1024], prefix[64];
        size_t n = 0;
        if (!f)
                return 0;
        snprintf(prefix, sizeof(prefix), "autoos-%d-", (int) getpid());
        while (fgets(line, sizeof(line), f)) {
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c2 = '\0';
                char *ctrls = c1 + 1, *path = c2 + 1;
                path[strcspn(path, "\n")] = '\0';
                if (strcmp(path, "/") == 0)
                        path = (char *) "";
                char dirs[8][512];
                size_t nd = 0;
                if (!*ctrls) {
                        snprintf(dirs[nd++], sizeof(dirs[0]), "/sys/fs/cgroup%s", path);
                        snprintf(dirs[nd++], sizeof(dirs[0]), "/sys/fs/cgroup/unified%s", path);
                } else {
                        const char *name = strncmp(ctrls, "name=", 5) == 0 ? ctrls + 5 : ctrls;
                        snprintf(dirs[nd++], sizeof(dirs[0]), "/sys/fs/cgroup/%s%s", name, path);
                        char *save = NULL;
                        for (char *c = strtok_r(ctrls, ",", &save); c && nd < ELEMENTSOF(dirs);
                             c = strtok_r(NULL, ",", &save))
                                snprintf(dirs[nd++], sizeof(dirs[0]), "/sys/fs/cgroup/%s%s", c, path);
                }
                for (size_t i = 0; i < nd; i++) {
                        DIR *d = opendir(dirs[i]);
                        struct dirent *de;
                        while (d && (de = readdir(d)))
                                if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
                                        if (n == 0 || !strstr(buf, de->d_name))
                                                adv_append(buf, size, "%s%s/%s", n ? ", " : "", dirs[i],
                                                           de->d_name);
                                        n++;
                                }
                        if (d)
                                closedir(d);
                }
        }
        fclose(f);
        return n;
}

/* ---- runs ------------------------------------------------------------------------------ */

typedef struct runner {
        sbx_context *ctx;
        sbx_policy policy;
        adv_options *o;
        host_fixtures host;
        char *attack_data; /* the program, placed as /work/attack */
        size_t attack_size;
        char attack_argv0[4096];
        bool in_place; /* run argv0 where it is (no /work) */
        int sigfd;
        int interrupted;
        unsigned seq;
} runner;

static int proc_start(runner *R, const sbx_spec *spec, adv_proc *p) {
        au_error err = {};
        *p = (adv_proc){};
        int r = sbx_run_start(R->ctx, spec, adv_proc_output, p, &p->s.run, &err);
        if (r < 0) {
                p->s.res = sbx_result_new_error(spec->id, SBX_OUTCOME_SANDBOX_ERROR, err.msg);
                p->s.done = true;
                return p->s.res ? 0 : -ENOMEM;
        }
        p->pid = sbx_run_pid(p->s.run);
        return 0;
}

typedef enum until {
        UNTIL_READY, /* watch is READY (or finished) */
        UNTIL_DONE,  /* watch finished */
        UNTIL_ALL,   /* every run finished */
} until;

typedef struct wait_for {
        adv_proc *ps, *watch;
        size_t n;
        until u;
} wait_for;

static bool reached(void *userdata) {
        const wait_for *w = userdata;
        if (w->u == UNTIL_READY)
                return w->watch->ready || w->watch->s.done;
        if (w->u == UNTIL_DONE)
                return w->watch->s.done;
        for (size_t i = 0; i < w->n; i++)
                if (!w->ps[i].s.done)
                        return false;
        return true;
}

/*
 * Supervises runs until the condition holds: 0, or -ETIMEDOUT at deadline_ms.
 * A signal to this process kills every run (and is remembered in R). A run
 * whose supervision failed gets a sandbox_error result saying so.
 */
static int pump(runner *R, adv_proc *ps, size_t n, adv_proc *watch, until u, uint64_t deadline_ms) {
        sbx_supervisor sup = {.sigfd = R->sigfd,
                              .kill_reason = "autoosctl adversarial was interrupted",
                              .caught = R->interrupted};
        wait_for w = {.ps = ps, .watch = watch, .n = n, .u = u};
        sbx_supervised *runs[64] = {};
        int r;

        if (n > ELEMENTSOF(runs))
                return -E2BIG;
        for (size_t i = 0; i < n; i++)
                runs[i] = &ps[i].s;
        r = sbx_supervise(&sup, runs, n, reached, &w, deadline_ms);
        R->interrupted = sup.caught;
        for (size_t i = 0; i < n; i++)
                if (ps[i].s.done && !ps[i].s.res) {
                        char msg[128];
                        snprintf(msg, sizeof(msg), "supervising the run failed: %s",
                                 strerror(ps[i].s.error < 0 ? -ps[i].s.error : EIO));
                        ps[i].s.res = sbx_result_new_error(NULL, SBX_OUTCOME_SANDBOX_ERROR, msg);
                }
        return r;
}

static void procs_free(adv_proc *ps, size_t n) {
        for (size_t i = 0; i < n; i++) {
                ps[i].s.run = sbx_run_free(ps[i].s.run);
                ps[i].s.res = sbx_result_free(ps[i].s.res);
        }
}

/* Kills whatever still runs and waits for it (bounded). */
static void procs_end(runner *R, adv_proc *ps, size_t n, const char *why) {
        sbx_supervised *runs[64] = {};
        for (size_t i = 0; i < n && i < ELEMENTSOF(runs); i++)
                runs[i] = &ps[i].s;
        sbx_supervise_kill(runs, MIN(n, ELEMENTSOF(runs)), why);
        (void) pump(R, ps, n, NULL, UNTIL_ALL, au_now_ms() + 10000);
}

/* ---- specs ----------------------------------------------------------------------------- */

typedef struct attack_ctx {
        const attack_def *def;
        char marker[64];
        pid_t victim_pid;
        sbx_limits limits; /* as applied */
} attack_ctx;

static int strv_add(sbx_spec *spec, const char *s) {
        return au_strv_push(&spec->argv, &spec->argc, s);
}

static int env_add(sbx_spec *spec, const char *s) {
        return au_strv_push(&spec->env, &spec->n_env, s);
}

/* Expands one %-placeholder argument; an empty expansion drops the argument. */
static void expand_arg(const runner *R, const attack_ctx *a, const char *arg, char *buf, size_t size) {
        const host_fixtures *h = &R->host;
        buf[0] = '\0';
        if (arg[0] != '%' || !arg[1] || arg[2]) {
                snprintf(buf, size, "%s", arg);
                return;
        }
        switch (arg[1]) {
        case 'T':
                snprintf(buf, size, "%s", h->token);
                break;
        case 'M':
                snprintf(buf, size, "%s", a->marker);
                break;
        case 'P':
                snprintf(buf, size, "%d", (int) getpid());
                break;
        case 'm':
                snprintf(buf, size, "%" PRIu64, a->limits.memory_bytes / MiB);
                break;
        case 'p':
                snprintf(buf, size, "%" PRIu32, a->limits.pids);
                break;
        case 'w':
                snprintf(buf, size, "%" PRIu64, a->limits.work_bytes);
                break;
        case 'L':
                snprintf(buf, size, "%d", h->listen_port);
                break;
        case 'H':
                snprintf(buf, size, "%s", h->host_ip);
                break;
        case 'C':
                snprintf(buf, size, "%s", h->canary);
                break;
        case 'F':
                snprintf(buf, size, "%s", h->canary_file);
                break;
        case 'K':
                snprintf(buf, size, "%d", h->sysv_id >= 0 ? (int) h->sysv_key : 0);
                break;
        case 'V':
                snprintf(buf, size, "%d", (int) a->victim_pid);
                break;
        default:
                snprintf(buf, size, "%s", arg);
        }
}

/* The limits an attack runs with: its own, else short defaults, within the policy's ceilings. */
static sbx_limits attack_limits(const runner *R, const attack_def *d) {
        const sbx_level_policy *lp = &R->policy.level[R->o->trust];
        sbx_limits l = d->limits;
        if (!l.wall_ms)
                l.wall_ms = 10000;
        if (!l.memory_bytes)
                l.memory_bytes = MIN(lp->defaults.memory_bytes, 256 * MiB);
        if (!l.pids)
                l.pids = lp->defaults.pids;
        if (!l.cpu_percent)
                l.cpu_percent = lp->defaults.cpu_percent;
        if (!l.cpu_ms)
                l.cpu_ms = MIN(lp->defaults.cpu_ms, (uint64_t) 10000);
        if (!l.output_bytes)
                l.output_bytes = MIN(lp->defaults.output_bytes, (uint64_t) 256 * 1024);
        if (!l.work_bytes)
                l.work_bytes = MIN(lp->defaults.work_bytes, 64 * MiB);
#define CLAMP(f)                                            \
        do {                                                \
                if (lp->ceilings.f && l.f > lp->ceilings.f) \
                        l.f = lp->ceilings.f;               \
        } while (0)
        CLAMP(memory_bytes);
        CLAMP(pids);
        CLAMP(cpu_percent);
        CLAMP(wall_ms);
        CLAMP(cpu_ms);
        CLAMP(output_bytes);
        CLAMP(work_bytes);
#undef CLAMP
        if (!lp->work_writable)
                l.work_bytes = 0;
        return l;
}

/* A complete spec for `attack NAME ARGS...`; err says what the policy refused. */
static int attack_spec(runner *R, const attack_ctx *a, const char *name, const char *args, sbx_spec **ret,
                       au_error *err) {
        _cleanup_sbx_spec_ sbx_spec *spec = calloc(1, sizeof(sbx_spec));
        char buf[4200], id[64];
        if (!spec)
                return -ENOMEM;
        snprintf(id, sizeof(id), "adv-%s-%u", R->host.token, ++R->seq);
        if (!(spec->id = strdup(id)))
                return -ENOMEM;
        if (strv_add(spec, R->attack_argv0) < 0 || strv_add(spec, name) < 0)
                return -ENOMEM;
        _cleanup_free_ char *copy = strdup(args ? args : "");
        if (!copy)
                return -ENOMEM;
        char *save = NULL;
        for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
                expand_arg(R, a, t, buf, sizeof(buf));
                if (buf[0] && strv_add(spec, buf) < 0)
                        return -ENOMEM;
        }
        snprintf(buf, sizeof(buf), "ADV_TRUST=%s", sbx_trust_to_string(R->o->trust));
        if (env_add(spec, buf) < 0 || env_add(spec, "PATH=/usr/bin:/bin") < 0)
                return -ENOMEM;
        if (!R->in_place) {
                spec->files = calloc(1, sizeof(sbx_file));
                if (!spec->files)
                        return -ENOMEM;
                spec->n_files = 1;
                spec->files[0].name = strdup("attack");
                spec->files[0].data = malloc(R->attack_size ? R->attack_size : 1);
                if (!spec->files[0].name || !spec->files[0].data)
                        return -ENOMEM;
                memcpy(spec->files[0].data, R->attack_data, R->attack_size);
                spec->files[0].size = R->attack_size;
                spec->files[0].mode = 0755;
        }
        spec->trust = R->o->trust;
        spec->limits = a->limits;
        int r = sbx_spec_apply_policy(spec, &R->policy, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(spec);
        return 0;
}

/* ---- judging ------------------------------------------------------------------------------ */

/* The attack's verdict line: the last line starting with a verdict word; NULL if none. */
static const char *verdict_line(const sbx_result *res, char *buf, size_t size) {
        static const char *const words[] = {"CONTAINED", "ESCAPED", "SKIPPED", "ERROR"};
        if (!res || !res->stdout_data || res->stdout_size == 0)
                return NULL;
        const char *s = res->stdout_data, *end = s + res->stdout_size;
        const char *found = NULL;
        size_t found_len = 0;
        for (const char *line = s; line < end;) {
                const char *nl = memchr(line, '\n', (size_t) (end - line));
                size_t len = nl ? (size_t) (nl - line) : (size_t) (end - line);
                for (size_t w = 0; w < ELEMENTSOF(words); w++) {
                        size_t wl = strlen(words[w]);
                        if (len >= wl && strncmp(line, words[w], wl) == 0 &&
                            (len == wl || line[wl] == ' ')) {
                                found = line;
                                found_len = len;
                        }
                }
                line += len + 1;
        }
        if (!found)
                return NULL;
        size_t n = MIN(found_len, size - 1);
        memcpy(buf, found, n);
        buf[n] = '\0';
        return buf;
}

static bool line_is(const char *line, const char *word) {
        size_t n = strlen(word);
        return line && strncmp(line, word, n) == 0 && (line[n] == ' ' || line[n] == '\0');
}

static const char *after_word(const char *line) {
        const char *sp = strchr(line, ' ');
        return sp ? sp + 1 : "";
}

/* "exited 0", "signaled 31 (SIGSYS)", "oom (peak 64 MiB)"... */
static void describe_outcome(const sbx_result *res, char *buf, size_t size) {
        buf[0] = '\0';
        if (!res) {
                adv_append(buf, size, "no result");
                return;
        }
        adv_append(buf, size, "%s", sbx_outcome_to_string(res->outcome));
        switch (res->outcome) {
        case SBX_OUTCOME_EXITED:
                adv_append(buf, size, " %d", res->exit_code);
                break;
        case SBX_OUTCOME_SIGNALED:
                adv_append(buf, size, " %d (SIG%s)", res->signal,
                           sigabbrev_np(res->signal) ? sigabbrev_np(res->signal) : "?");
                break;
        case SBX_OUTCOME_OOM:
                adv_append(buf, size, " (peak %" PRIu64 " MiB, %" PRIu64 " oom kill%s)",
                           res->memory_peak_bytes / MiB, res->oom_kills, res->oom_kills == 1 ? "" : "s");
                break;
        case SBX_OUTCOME_CPU_LIMIT:
                adv_append(buf, size, " (cpu %" PRIu64 " ms)", res->cpu_ms);
                break;
        case SBX_OUTCOME_TIMEOUT:
                adv_append(buf, size, " (wall %" PRIu64 " ms, cpu %" PRIu64 " ms)", res->wall_ms,
                           res->cpu_ms);
                break;
        case SBX_OUTCOME_OUTPUT_LIMIT:
                adv_append(buf, size, " (%zu bytes kept)", res->stdout_size);
                break;
        case SBX_OUTCOME_SANDBOX_ERROR:
        case SBX_OUTCOME_REJECTED:
                adv_append(buf, size, ": %s", res->error ? res->error : "?");
                break;
        default:
                break;
        }
}

static void denied_list(const sbx_result *res, char *buf, size_t size) {
        buf[0] = '\0';
        for (size_t i = 0; res && i < res->n_denied_syscalls; i++)
                adv_append(buf, size, "%s%s", i ? "," : "", res->denied_syscalls[i]);
}

static bool has_denied(const sbx_result *res, const char *name) {
        for (size_t i = 0; res && i < res->n_denied_syscalls; i++)
                if (strcmp(res->denied_syscalls[i], name) == 0)
                        return true;
        return false;
}

/* Names the attack expects refused but the sandbox did not report (its layer did not act). */
static void missing_denied(const runner *R, const attack_def *d, const sbx_result *res, char *buf,
                           size_t size) {
        buf[0] = '\0';
        if (!d->denied)
                return;
        _cleanup_free_ char *copy = strdup(d->denied);
        char *save = NULL;
        for (char *t = copy ? strtok_r(copy, " ", &save) : NULL; t; t = strtok_r(NULL, " ", &save)) {
                if (*t == '~') {
                        if (R->o->trust == SBX_TRUST_PRIVILEGED)
                                continue;
                        t++;
                }
                if (!has_denied(res, t))
                        adv_append(buf, size, "%s%s", *buf ? "," : "", t);
        }
}

/*
 * Judges one run against the attack's expectation: the attack's own ESCAPED
 * wins, then the outcome must be one of those expected, then an exit must
 * carry a CONTAINED line, then every expected refusal must have been reported.
 */
static void judge(const runner *R, const attack_def *d, const sbx_result *res, adv_row *row) {
        char line[2048], what[256];
        const char *vl = verdict_line(res, line, sizeof(line));
        describe_outcome(res, what, sizeof(what));
        row_set(row->observed, sizeof(row->observed), what);
        if (vl)
                adv_append(row->observed, sizeof(row->observed), ": %s",
                           line_is(vl, "CONTAINED") ? after_word(vl) : vl);
        denied_list(res, row->denied, sizeof(row->denied));

        if (!res || res->outcome == SBX_OUTCOME_SANDBOX_ERROR || res->outcome == SBX_OUTCOME_REJECTED) {
                row->verdict = ADV_ERROR;
                row_set(row->note, sizeof(row->note), "the sandbox could not run the attack");
                return;
        }
        if (line_is(vl, "ESCAPED")) {
                row->verdict = ADV_NOT_CONTAINED;
                row_set(row->note, sizeof(row->note), "the attack got through (see observed)");
                return;
        }
        if (!(d->outcomes & (1u << res->outcome)) ||
            (res->outcome == SBX_OUTCOME_SIGNALED && d->signal && res->signal != d->signal)) {
                /* A limit that did not hold shows as a clean exit; anything else is the harness's problem.
                 */
                row->verdict = res->outcome == SBX_OUTCOME_EXITED ? ADV_NOT_CONTAINED : ADV_ERROR;
                adv_setf(row->note, sizeof(row->note), "unexpected outcome %s", what);
                return;
        }
        if (res->outcome == SBX_OUTCOME_EXITED) {
                if (line_is(vl, "SKIPPED")) {
                        row->verdict = ADV_SKIPPED;
                        row_set(row->note, sizeof(row->note), after_word(vl));
                        return;
                }
                if (!line_is(vl, "CONTAINED")) {
                        row->verdict = ADV_ERROR;
                        row_set(row->note, sizeof(row->note),
                                vl ? after_word(vl) : "the attack printed no verdict");
                        return;
                }
        }
        char missing[256];
        missing_denied(R, d, res, missing, sizeof(missing));
        if (missing[0]) {
                row->verdict = ADV_NOT_CONTAINED;
                adv_setf(row->note, sizeof(row->note),
                         "refused, but not by the seccomp filter: %s not reported denied", missing);
                return;
        }
        row->verdict = ADV_CONTAINED;
}

/* Downgrades a row for something seen on the host. */
static void host_failure(adv_row *row, const char *fmt, ...) _printf_(2, 3);
static void host_failure(adv_row *row, const char *fmt, ...) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (row->verdict != ADV_NOT_CONTAINED) {
                row->verdict = ADV_NOT_CONTAINED;
                row_set(row->note, sizeof(row->note), msg);
        } else {
                adv_append(row->note, sizeof(row->note), "; %s", msg);
        }
}

/* Ends host processes left by an attack (ours: started through our sandbox), by pid. */
static void kill_leftovers(const proc_info *ps, size_t n) {
        for (size_t i = 0; i < n; i++)
                kill(ps[i].pid, SIGKILL);
}

/* ---- running one attack ---------------------------------------------------------------------- */

static int run_one(runner *R, attack_ctx *a, adv_row *row) {
        const attack_def *d = a->def;
        au_error err = {};
        _cleanup_sbx_spec_ sbx_spec *spec = NULL;
        int r = attack_spec(R, a, d->name, d->args, &spec, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                row->verdict = ADV_ERROR;
                adv_setf(row->observed, sizeof(row->observed), "rejected: %s", err.msg);
                row_set(row->note, sizeof(row->note), "the policy refused the attack's spec");
                return 0;
        }
        adv_proc p;
        if ((r = proc_start(R, spec, &p)) < 0)
                return r;
        proc_info seen[64];
        size_t n_seen = 0, zombies = 0, stopped = 0;
        bool ready_checked = false;
        uint64_t deadline = au_now_ms() + a->limits.wall_ms + 15000;
        if (d->flags & F_MARKER) {
                if (pump(R, &p, 1, &p, UNTIL_READY, deadline) == 0 && p.ready) {
                        ready_checked = true;
                        n_seen = host_procs_with(a->marker, seen, ELEMENTSOF(seen));
                        for (size_t i = 0; i < MIN(n_seen, ELEMENTSOF(seen)); i++)
                                stopped += seen[i].state == 'T' || seen[i].state == 't';
                        zombies = host_zombies_of(seen, MIN(n_seen, ELEMENTSOF(seen)));
                }
        }
        if (pump(R, &p, 1, &p, UNTIL_DONE, deadline) < 0)
                procs_end(R, &p, 1, "the attack outlived its time limit");
        judge(R, d, p.s.res, row);

        if (d->flags & F_MARKER) {
                proc_info left[64];
                size_t n_left = host_procs_with(a->marker, left, ELEMENTSOF(left));
                adv_append(row->observed, sizeof(row->observed),
                           "; host: %zu of its processes seen while it ran", n_seen);
                if (d->flags & F_ZOMBIES)
                        adv_append(row->observed, sizeof(row->observed), " (%zu zombies)", zombies);
                if (d->flags & F_STOPPED)
                        adv_append(row->observed, sizeof(row->observed), " (%zu stopped)", stopped);
                adv_append(row->observed, sizeof(row->observed), ", %zu left", n_left);
                if (n_left > 0) {
                        kill_leftovers(left, MIN(n_left, ELEMENTSOF(left)));
                        host_failure(row, "%zu processes of the run outlived it on the host (killed now)",
                                     n_left);
                } else if (row->verdict == ADV_CONTAINED &&
                           (!ready_checked || n_seen < d->marker_min ||
                            ((d->flags & F_ZOMBIES) && zombies < 16) ||
                            ((d->flags & F_STOPPED) && stopped < d->marker_min - 1))) {
                        /* The control failed: the attack never set up what the check looks for. */
                        row->verdict = ADV_ERROR;
                        adv_setf(row->note, sizeof(row->note),
                                 "the attack's descendants were not all seen on the host while it ran (%zu "
                                 "of %u)",
                                 n_seen, d->marker_min);
                }
        }
        if ((d->flags & F_QUICK_END) && p.s.res && p.s.res->wall_ms > 5000)
                host_failure(row, "the run went on %" PRIu64 " ms after pid 1 exited", p.s.res->wall_ms);
        if ((d->flags & F_CPU_QUOTA) && p.s.res) {
                uint64_t allowed = p.s.res->wall_ms * a->limits.cpu_percent / 100 * 5 / 4 + 150;
                if (p.s.res->cpu_ms > allowed)
                        host_failure(row,
                                     "used %" PRIu64 " ms of CPU in %" PRIu64 " ms at a %" PRIu32 "%% quota",
                                     p.s.res->cpu_ms, p.s.res->wall_ms, a->limits.cpu_percent);
                else
                        adv_append(row->observed, sizeof(row->observed), "; within the %" PRIu32 "%% quota",
                                   a->limits.cpu_percent);
        }
        procs_free(&p, 1);
        return 0;
}

static int run_pair(runner *R, attack_ctx *a, adv_row *row) {
        const attack_def *d = a->def;
        au_error err = {};
        char vargs[128];
        snprintf(vargs, sizeof(vargs), "adv-victim-%s", R->host.token);
        _cleanup_sbx_spec_ sbx_spec *vspec = NULL, *spec = NULL;
        int r = attack_spec(R, a, "victim", vargs, &vspec, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                row->verdict = ADV_ERROR;
                adv_setf(row->observed, sizeof(row->observed), "rejected: %s", err.msg);
                return 0;
        }
        adv_proc ps[2];
        memset(ps, 0, sizeof(ps));
        if ((r = proc_start(R, vspec, &ps[0])) < 0)
                return r;
        ps[1].s.done = true;
        if (pump(R, ps, 1, &ps[0], UNTIL_READY, au_now_ms() + 10000) < 0 || !ps[0].ready) {
                procs_end(R, ps, 1, "the victim run never got ready");
                row->verdict = ADV_ERROR;
                describe_outcome(ps[0].s.res, row->observed, sizeof(row->observed));
                row_set(row->note, sizeof(row->note), "the victim run never said READY");
                procs_free(ps, 2);
                return 0;
        }
        a->victim_pid = ps[0].pid;
        r = attack_spec(R, a, d->name, d->args, &spec, &err);
        if (r == 0)
                r = proc_start(R, spec, &ps[1]);
        if (r < 0) {
                procs_end(R, ps, 1, "no attack run");
                procs_free(ps, 2);
                if (r == -ENOMEM)
                        return r;
                row->verdict = ADV_ERROR;
                adv_setf(row->observed, sizeof(row->observed), "rejected: %s", err.msg);
                return 0;
        }
        if (pump(R, ps, 2, &ps[1], UNTIL_DONE, au_now_ms() + a->limits.wall_ms + 15000) < 0)
                sbx_supervise_kill((sbx_supervised *[]){&ps[1].s}, 1, "the attack outlived its time limit");
        procs_end(R, ps, 2, "the attack is over");
        judge(R, d, ps[1].s.res, row);
        char vline[1024];
        const char *vl = verdict_line(ps[0].s.res, vline, sizeof(vline));
        if (line_is(vl, "ESCAPED"))
                host_failure(row, "the victim run says: %s", after_word(vl));
        procs_free(ps, 2);
        return 0;
}

static int run_many(runner *R, attack_ctx *a, adv_row *row) {
        const attack_def *d = a->def;
        unsigned n = MIN(d->copies, 32u);
        adv_proc *ps = calloc(n, sizeof(adv_proc));
        au_error err = {};
        int r = 0;
        if (!ps)
                return -ENOMEM;
        for (unsigned i = 0; i < n; i++) {
                _cleanup_sbx_spec_ sbx_spec *spec = NULL;
                r = attack_spec(R, a, "concurrent", d->args, &spec, &err);
                if (r == 0)
                        r = proc_start(R, spec, &ps[i]);
                if (r < 0) {
                        for (unsigned j = i; j < n; j++)
                                ps[j].s.done = true;
                        break;
                }
        }
        if (r == 0 && pump(R, ps, n, NULL, UNTIL_ALL, au_now_ms() + a->limits.wall_ms + 15000) < 0)
                procs_end(R, ps, n, "the attack outlived its time limit");
        if (r < 0) {
                procs_end(R, ps, n, "no attack run");
                procs_free(ps, n);
                free(ps);
                if (r == -ENOMEM)
                        return r;
                row->verdict = ADV_ERROR;
                adv_setf(row->observed, sizeof(row->observed), "rejected: %s", err.msg);
                return 0;
        }
        unsigned contained = 0, distinct = 0;
        uint64_t slowest = 0;
        row->verdict = ADV_CONTAINED;
        for (unsigned i = 0; i < n; i++) {
                adv_row one = {};
                judge(R, d, ps[i].s.res, &one);
                if (one.verdict == ADV_CONTAINED)
                        contained++;
                else if (row->verdict == ADV_CONTAINED || one.verdict == ADV_NOT_CONTAINED) {
                        row->verdict = one.verdict;
                        adv_setf(row->note, sizeof(row->note), "run %u: %s %s", i + 1, one.observed,
                                 one.note);
                }
                if (ps[i].s.res) {
                        bool dup = false;
                        for (unsigned j = 0; j < i; j++)
                                dup = dup || (ps[j].s.res && ps[j].s.res->host_uid == ps[i].s.res->host_uid);
                        distinct += !dup && ps[i].s.res->host_uid != 0;
                        slowest = MAX(slowest, ps[i].s.res->wall_ms);
                }
        }
        adv_setf(row->observed, sizeof(row->observed),
                 "%u of %u exited contained, %u distinct host uids, slowest %" PRIu64 " ms", contained, n,
                 distinct, slowest);
        if (distinct != n && row->verdict == ADV_CONTAINED)
                host_failure(row, "runs shared a host uid (%u distinct of %u)", distinct, n);
        procs_free(ps, n);
        free(ps);
        return 0;
}

/* Specs the policy must refuse before anything runs. */
static int run_spec(runner *R, attack_ctx *a, adv_row *row) {
        static const struct {
                const char *what;
                size_t argv_bytes, env_bytes, argc;
        } cases[] = {
                {"2 MiB argv", 2u << 20, 0, 0},
                {"2 MiB env", 0, 2u << 20, 0},
                {"5000 arguments", 0, 0, 5000},
        };
        unsigned refused = 0;
        row->verdict = ADV_CONTAINED;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_sbx_spec_ sbx_spec *spec = calloc(1, sizeof(sbx_spec));
                _cleanup_free_ char *big = NULL;
                au_error err = {};
                if (!spec || strv_add(spec, R->attack_argv0) < 0 || strv_add(spec, "concurrent") < 0)
                        return -ENOMEM;
                size_t nb = MAX(cases[i].argv_bytes, cases[i].env_bytes);
                if (nb) {
                        if (!(big = malloc(nb + 1)))
                                return -ENOMEM;
                        memset(big, 'a', nb);
                        memcpy(big, "BIG=", 4);
                        big[nb] = '\0';
                        if ((cases[i].argv_bytes ? strv_add(spec, big) : env_add(spec, big)) < 0)
                                return -ENOMEM;
                }
                for (size_t k = 0; k < cases[i].argc; k++)
                        if (strv_add(spec, "x") < 0)
                                return -ENOMEM;
                spec->trust = R->o->trust;
                spec->limits = a->limits;
                if (sbx_spec_apply_policy(spec, &R->policy, &err) < 0) {
                        refused++;
                        adv_append(row->observed, sizeof(row->observed), "%s%s: rejected (%s)",
                                   i ? "; " : "", cases[i].what, err.field[0] ? err.field : err.msg);
                } else {
                        adv_append(row->observed, sizeof(row->observed), "%s%s: accepted", i ? "; " : "",
                                   cases[i].what);
                        host_failure(row, "a spec with %s passed the policy", cases[i].what);
                }
        }
        (void) refused;
        return 0;
}

/* adversarial/agent.c's tool calls: each run spec run as an attack's run, with the runner's short limits. */
static int agent_tool_run(void *userdata, sbx_spec *spec, sbx_result **ret_result, au_error *err) {
        runner *R = userdata;
        const attack_def plain = {};
        adv_proc p;
        int r;

        if (R->interrupted)
                return au_error_set(err, EINTR, "interrupted");
        /* sbx_spec_from_json completed the spec at the policy's default level: not its cwd at one with no
         * /work */
        if (!R->policy.level[R->o->trust].work_writable && spec->cwd && strcmp(spec->cwd, "/work") == 0) {
                free(spec->cwd);
                spec->cwd = NULL;
        }
        spec->trust = R->o->trust;
        spec->limits = attack_limits(R, &plain);
        if (!spec->id && asprintf(&spec->id, "adv-agent-%d-%u", (int) getpid(), ++R->seq) < 0)
                return -ENOMEM;
        if ((r = sbx_spec_apply_policy(spec, &R->policy, err)) < 0)
                return r;
        if ((r = proc_start(R, spec, &p)) < 0)
                return r;
        if (pump(R, &p, 1, &p, UNTIL_DONE, au_now_ms() + spec->limits.wall_ms + 15000) < 0)
                procs_end(R, &p, 1, "the tool's run outlived its time limit");
        *ret_result = TAKE_PTR(p.s.res);
        procs_free(&p, 1);
        return *ret_result ? 0 : au_error_set(err, EIO, "the tool's run left no result");
}

static int run_agent(runner *R, const attack_def *d, adv_row *row) {
        adv_agent_env env = {
                .policy = &R->policy,
                .trust = R->o->trust,
                .canary = R->host.canary,
                .canary_file = R->host.canary_file,
                .run = R->ctx ? agent_tool_run : NULL,
                .run_userdata = R,
                .no_sandbox = "not root: its tools run in sandboxes (namespaces, cgroups, the uid pool)"};
        return adv_agent_attack(&env, d->name, row);
}

static int run_attack(runner *R, const attack_def *d, adv_row *row) {
        attack_ctx a = {.def = d};
        snprintf(a.marker, sizeof(a.marker), "adv-mark-%s-%u", R->host.token, R->seq + 1);
        a.limits = attack_limits(R, d);
        uint64_t t0 = au_now_ms();
        char before[512] = "";
        size_t stale = leftover_cgroups(before, sizeof(before));
        int r;

        snprintf(row->group, sizeof(row->group), "%s", d->group);
        snprintf(row->name, sizeof(row->name), "%s", d->name);
        snprintf(row->expectation, sizeof(row->expectation), "%s", d->expectation);
        switch (d->kind) {
        case KIND_PAIR:
                r = run_pair(R, &a, row);
                break;
        case KIND_MANY:
                r = run_many(R, &a, row);
                break;
        case KIND_SPEC:
                r = run_spec(R, &a, row);
                break;
        case KIND_AGENT:
                r = run_agent(R, d, row);
                break;
        default:
                r = run_one(R, &a, row);
        }
        if (r < 0)
                return r;
        if (d->flags & F_LISTENER) {
                char what[256] = "";
                if (host_sockets_reached(&R->host, what, sizeof(what)))
                        host_failure(row, "on the host, %s", what);
        }
        char left[512] = "";
        if (d->kind != KIND_SPEC && leftover_cgroups(left, sizeof(left)) > stale)
                host_failure(row, "run cgroups left behind: %s", left);
        if (R->interrupted) {
                row->verdict = ADV_ERROR;
                adv_setf(row->note, sizeof(row->note), "interrupted by SIG%s", sigabbrev_np(R->interrupted));
        }
        row->ms = (double) (au_now_ms() - t0);
        return 0;
}

/* ---- output ---------------------------------------------------------------------------------- */

void adv_print_list(FILE *f) {
        fprintf(f, "%-13s %-22s %s\n", "GROUP", "ATTACK", "CONTAINED WHEN");
        for (size_t i = 0; i < ELEMENTSOF(catalogue); i++)
                fprintf(f, "%-13s %-22s %s%s\n", catalogue[i].group, catalogue[i].name,
                        catalogue[i].expectation,
                        catalogue[i].flags & F_EXPLICIT ? " (only when named with --only)" : "");
        fputs("daemon        (with --redis URL --node ID)  malformed and oversized jobs, result floods...\n"
              "fleet         (with both)                   forged, replayed and planted results, forged\n"
              "                                            and deleted heartbeats, ACLs (node identity)\n"
              "coordinator   (with --url URL --key KEY)    malformed workflows, keys and roles...\n",
              f);
        adv_egress_print_list(f);
}

/* ---- the command ------------------------------------------------------------------------------- */

static int runner_init(runner *R, adv_options *o, au_error *err) {
        int r;
        R->o = o;
        R->sigfd = -1;
        sbx_policy_init_default(&R->policy);
        const char *pf = o->policy_file ? o->policy_file : ADV_DEFAULT_POLICY;
        if ((o->policy_file || access(pf, F_OK) == 0) && (r = sbx_policy_load(pf, &R->policy, err)) < 0)
                return r;
        if (o->trust == _SBX_TRUST_INVALID)
                o->trust = R->policy.default_trust;
        return 0;
}

/* Where the attack program comes from and how it gets into the sandbox; a skip reason in why. */
static int runner_attack_program(runner *R, char *why, size_t why_size) {
        const char *path = R->o->attack_path ? R->o->attack_path : getenv(ADV_ATTACK_ENV);
        if (!path || !*path)
                path = ADV_DEFAULT_ATTACK;
        char real[PATH_MAX];
        if (!realpath(path, real)) {
                adv_setf(why, why_size, "the attack program %s: %s (build it, or give --attacks PATH)", path,
                         strerror(errno));
                return -ENOENT;
        }
        if (!R->policy.level[R->o->trust].work_writable) {
                /* No /work to place it in: it must already be visible inside, read-only under /usr. */
                if (strncmp(real, "/usr/", 5) != 0) {
                        adv_setf(why, why_size,
                                 "trust %s has no /work to place the attack program in; give --attacks with "
                                 "the "
                                 "installed one (a path under /usr)",
                                 sbx_trust_to_string(R->o->trust));
                        return -EPERM;
                }
                R->in_place = true;
                snprintf(R->attack_argv0, sizeof(R->attack_argv0), "%s", real);
                return 0;
        }
        R->attack_data = read_file(real, MAX_ATTACK_BYTES, &R->attack_size);
        if (!R->attack_data) {
                adv_setf(why, why_size, "the attack program %s: %s", real, strerror(errno));
                return -EIO;
        }
        snprintf(R->attack_argv0, sizeof(R->attack_argv0), "/work/attack");
        return 0;
}

static void runner_done(runner *R) {
        fixtures_done(&R->host);
        R->ctx = sbx_context_free(R->ctx);
        free(R->attack_data);
        R->attack_data = NULL;
        R->sigfd = safe_close(R->sigfd);
}

static int add_row(adv_report *rep, adv_row *row, const adv_options *o, size_t done, size_t total) {
        if (o->format != ADV_FORMAT_JSON && isatty(STDERR_FILENO))
                fprintf(stderr, "\r\033[K[%zu/%zu] %s/%s: %s", done, total, row->group, row->name,
                        adv_verdict_word(row->verdict));
        return adv_report_add(rep, row);
}

/* Runs the selected sandbox attacks; rows for each, SKIPPED ones included. */
static int sandbox_attacks(adv_options *o, runner *R, adv_report *rep) {
        size_t total = 0, n_agent = 0, done = 0;
        char why[512] = "", prog_why[512] = "";
        au_error err = {};
        int r;

        for (size_t i = 0; i < ELEMENTSOF(catalogue); i++) {
                bool sel = (catalogue[i].flags & F_EXPLICIT)
                                   ? named_exactly(o->only, catalogue[i].name)
                                   : adv_selected(o->only, catalogue[i].group, catalogue[i].name);
                total += sel;
                n_agent += sel && catalogue[i].kind == KIND_AGENT;
        }
        if (total == 0)
                return 0;

        /* The agent attacks alone run without root: those whose tools need a sandbox are skipped. */
        if (geteuid() != 0 && total > n_agent) {
                fprintf(stderr,
                        "autoosctl adversarial: the sandbox attacks need root (namespaces, cgroups, the uid "
                        "pool); run as root, or select only agent, daemon or coordinator attacks with "
                        "--only\n");
                return -EPERM;
        }
        /* Not applicable here: skipped. No program to run: an error, so that a broken install cannot pass.
         * The agent attacks need no attack program: prog_why skips or fails only the others. */
        adv_verdict prog_verdict = ADV_SKIPPED;
        if (!R->policy.level[o->trust].enabled)
                adv_setf(why, sizeof(why), "the policy disables trust level %s",
                         sbx_trust_to_string(o->trust));
        else if (total > n_agent && (r = runner_attack_program(R, prog_why, sizeof(prog_why))) < 0 &&
                 r != -EPERM)
                prog_verdict = ADV_ERROR;
        if (!why[0] && geteuid() == 0 && (!prog_why[0] || n_agent > 0)) {
                sbx_config sc = {.prepare_ahead = 4};
                if ((r = sbx_context_new(&sc, &R->ctx, &err)) < 0) {
                        fprintf(stderr, "autoosctl adversarial: sandbox: %s\n", err.msg);
                        return r;
                }
        }
        if (!why[0] && (!prog_why[0] || n_agent > 0)) {
                if ((r = fixtures_init(&R->host, &err)) < 0) {
                        fprintf(stderr, "autoosctl adversarial: host fixtures: %s\n", err.msg);
                        return r;
                }
        }

        for (size_t i = 0; i < ELEMENTSOF(catalogue); i++) {
                const attack_def *d = &catalogue[i];
                bool sel = (d->flags & F_EXPLICIT) ? named_exactly(o->only, d->name)
                                                   : adv_selected(o->only, d->group, d->name);
                if (!sel)
                        continue;
                adv_row row = {};
                const char *skip = why[0] ? why : d->kind != KIND_AGENT && prog_why[0] ? prog_why : NULL;
                if (skip || R->interrupted) {
                        snprintf(row.group, sizeof(row.group), "%s", d->group);
                        snprintf(row.name, sizeof(row.name), "%s", d->name);
                        snprintf(row.expectation, sizeof(row.expectation), "%s", d->expectation);
                        row.verdict = R->interrupted ? ADV_ERROR : skip == why ? ADV_SKIPPED : prog_verdict;
                        row_set(row.note, sizeof(row.note), R->interrupted ? "not run: interrupted" : skip);
                } else if ((r = run_attack(R, d, &row)) < 0) {
                        return r;
                }
                if ((r = add_row(rep, &row, o, ++done, total)) < 0)
                        return r;
        }
        if (o->format != ADV_FORMAT_JSON && isatty(STDERR_FILENO))
                fputs("\r\033[K", stderr);
        return 0;
}

/* Whether only names a group or an attack at all (the daemon, fleet and coordinator groups included). */
bool adv_only_known(const char *only) {
        static const char *const fleet_groups[] = {"daemon", "fleet", "coordinator"};
        for (size_t i = 0; i < ELEMENTSOF(catalogue); i++)
                if (adv_selected(only, catalogue[i].group, catalogue[i].name))
                        return true;
        for (size_t i = 0; i < ELEMENTSOF(fleet_groups); i++)
                if (adv_selected(only, fleet_groups[i], ""))
                        return true;
        return adv_egress_known(only);
}

int adv_run(const adv_options *opts) {
        adv_options o = *opts;
        runner R = {.sigfd = -1};
        adv_report rep = {};
        au_error err = {};
        int r;

        if ((r = runner_init(&R, &o, &err)) < 0) {
                fprintf(stderr, "autoosctl adversarial: policy %s: %s\n",
                        o.policy_file ? o.policy_file : ADV_DEFAULT_POLICY, err.msg);
                return ADV_EXIT_USAGE;
        }

        /* Signals end the runs cleanly (cgroups removed) instead of killing us mid-way. */
        sigset_t mask;
        R.sigfd = sbx_supervise_signals(&mask);

        r = sandbox_attacks(&o, &R, &rep);
        if (r == 0 && !R.interrupted)
                r = adv_egress_attacks(&o, &R.policy, R.sigfd, &R.interrupted, &rep);
        if (r == 0 && o.fleet_given && !R.interrupted) {
                if (!o.fleet.timeout_ms)
                        o.fleet.timeout_ms = 20000;
                r = adv_fleet_attacks(&o.fleet, o.only, &rep);
                if (r < 0)
                        fprintf(stderr, "autoosctl adversarial: daemon/coordinator attacks: %s\n",
                                strerror(-r));
        }
        runner_done(&R);
        sbx_supervise_signals_end(&mask);
        if (r == -EPERM && rep.n == 0) {
                adv_report_done(&rep);
                return ADV_EXIT_FAILED;
        }

        if (adv_report_print(&rep, o.format, sbx_trust_to_string(o.trust), stdout) < 0)
                r = -ENOMEM;
        fflush(stdout);

        int status = r < 0 ? ADV_EXIT_FAILED : 0;
        for (size_t i = 0; i < rep.n; i++)
                if (rep.rows[i].verdict == ADV_NOT_CONTAINED || rep.rows[i].verdict == ADV_ERROR)
                        status = ADV_EXIT_FAILED;
        if (rep.n == 0) {
                /* Nothing ran: never a pass. */
                fprintf(stderr, "autoosctl adversarial: no attack was run%s\n",
                        o.fleet_given ? ""
                                      : " (the daemon and coordinator attacks need --redis/--node or "
                                        "--url/--key)");
                status = ADV_EXIT_FAILED;
        }
        adv_report_done(&rep);
        if (R.interrupted)
                return 128 + R.interrupted;
        return status;
}
