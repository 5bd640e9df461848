/* SPDX-License-Identifier: MIT */
/*
 * A throwaway redis-server for one test program: on a free loopback port (and
 * a unix socket) in a temporary directory, no persistence. It is killed at
 * exit, on SIGINT/SIGTERM/SIGABRT/SIGSEGV/SIGBUS, and by the kernel if the
 * test dies some other way (PR_SET_PDEATHSIG), so it never outlives the test.
 *
 *   int port = test_redis_start();   // skip_all() when redis-server is missing
 *   test_redis_stop();               // SIGTERM, then SIGKILL after 5 s
 *   test_redis_restart();            // same port, same directory, empty data
 *
 * REDIS_SERVER in the environment names another binary.
 */
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/tap.h"

static struct {
        volatile pid_t pid;
        int port;
        char dir[PATH_MAX];
        char socket[PATH_MAX + 16];
        char bin[PATH_MAX];
        bool hooked;
} test_redis;

/* Finds redis-server on PATH (or $REDIS_SERVER); false when there is none. */
static inline bool test_redis_find(void) {
        const char *env = getenv("REDIS_SERVER");
        const char *path = getenv("PATH");

        if (env && *env) {
                snprintf(test_redis.bin, sizeof(test_redis.bin), "%s", env);
                return access(test_redis.bin, X_OK) == 0;
        }
        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
        while (*path) {
                size_t n = strcspn(path, ":");
                if (n > 0 && n < sizeof(test_redis.bin) - 16) {
                        snprintf(test_redis.bin, sizeof(test_redis.bin), "%.*s/redis-server", (int) n, path);
                        if (access(test_redis.bin, X_OK) == 0)
                                return true;
                }
                path += n;
                if (*path == ':')
                        path++;
        }
        return false;
}

/* Async-signal-safe: used from signal handlers too. */
static inline void test_redis_kill_now(void) {
        pid_t pid = test_redis.pid;
        if (pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                test_redis.pid = 0;
        }
}

/* What the server may leave in its directory; paths made up front so a signal handler can use them. */
static const char *const test_redis_files[] = {"redis.log", "dump.rdb", "appendonly.aof", "redis.sock",
                                               "appendonlydir"};
static char test_redis_paths[sizeof(test_redis_files) / sizeof(test_redis_files[0])][PATH_MAX + 32];

/* Async-signal-safe (unlink and rmdir only). */
static inline void test_redis_cleanup_dir(void) {
        if (!test_redis.dir[0])
                return;
        for (size_t i = 0; i < sizeof(test_redis_files) / sizeof(test_redis_files[0]); i++) {
                unlink(test_redis_paths[i]);
                /* Redis 7 may make an appendonlydir even with appendonly no. */
                rmdir(test_redis_paths[i]);
        }
        rmdir(test_redis.dir);
        test_redis.dir[0] = '\0';
}

static inline void test_redis_atexit(void) {
        test_redis_kill_now();
        test_redis_cleanup_dir();
}

static inline void test_redis_on_signal(int sig) {
        test_redis_kill_now();
        test_redis_cleanup_dir();
        signal(sig, SIG_DFL);
        raise(sig);
}

static inline void test_redis_hook(void) {
        static const int sigs[] = {SIGINT, SIGTERM, SIGABRT, SIGSEGV, SIGBUS, SIGHUP};
        struct sigaction sa = {.sa_handler = test_redis_on_signal};

        if (test_redis.hooked)
                return;
        test_redis.hooked = true;
        atexit(test_redis_atexit);
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
                sigaction(sigs[i], &sa, NULL);
        /* A test that writes to a server that just died must get EPIPE, not die. */
        signal(SIGPIPE, SIG_IGN);
}

/* A port the kernel just handed out on 127.0.0.1 (racy, so callers retry). */
static inline int test_redis_free_port(void) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

        if (fd < 0)
                return -1;
        if (bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0 &&
            getsockname(fd, (struct sockaddr *) &a, &len) == 0)
                port = ntohs(a.sin_port);
        close(fd);
        return port;
}

/* True once the server answers PING with +PONG. */
static inline bool test_redis_ping(int port) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t) port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct pollfd p;
        char buf[64];
        bool ok = false;
        ssize_t n;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return false;
        if (connect(fd, (struct sockaddr *) &a, sizeof(a)) == 0 && write(fd, "PING\r\n", 6) == 6) {
                p = (struct pollfd){.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 1000) == 1 && (n = read(fd, buf, sizeof(buf) - 1)) > 0) {
                        buf[n] = '\0';
                        ok = strncmp(buf, "+PONG", 5) == 0;
                }
        }
        close(fd);
        return ok;
}

/* Starts the server on test_redis.port; true once it answers. */
static inline bool test_redis_spawn(void) {
        char port[16], log[PATH_MAX + 16];
        long long deadline;
        pid_t pid;

        snprintf(port, sizeof(port), "%d", test_redis.port);
        snprintf(log, sizeof(log), "%s/redis.log", test_redis.dir);
        pid = fork();
        if (pid < 0)
                return false;
        if (pid == 0) {
                sigset_t none;
                int fd;

                /* Die with the test whatever kills it; undo what the test blocked or ignored. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                for (int s = 1; s < NSIG; s++)
                        signal(s, SIG_DFL);
                fd = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (fd >= 0) {
                        dup2(fd, STDIN_FILENO);
                        dup2(fd, STDOUT_FILENO);
                }
                execl(test_redis.bin, test_redis.bin, "--port", port, "--bind", "127.0.0.1", "--dir",
                      test_redis.dir, "--unixsocket", test_redis.socket, "--save", "", "--appendonly", "no",
                      "--daemonize", "no", "--logfile", log, (char *) NULL);
                _exit(127);
        }
        test_redis.pid = pid;
        deadline = (long long) au_now_ms() + 10000;
        while ((long long) au_now_ms() < deadline) {
                int status;
                if (waitpid(pid, &status, WNOHANG) == pid) {
                        /* Exited: most likely someone took the port meanwhile. */
                        test_redis.pid = 0;
                        return false;
                }
                if (test_redis_ping(test_redis.port))
                        return true;
                usleep(20 * 1000);
        }
        test_redis_kill_now();
        return false;
}

/* Port of a fresh server; skip_all() without redis-server, BAIL_OUT-style exit when it will not start. */
static inline int test_redis_start(void) {
        if (!test_redis_find())
                skip_all("redis-server not installed (Debian package redis-server)");
        test_redis_hook();
        if (!test_redis.dir[0]) {
                const char *tmp = getenv("TMPDIR");
                snprintf(test_redis.dir, sizeof(test_redis.dir), "%s/autoos-redis-XXXXXX",
                         tmp && *tmp ? tmp : "/tmp");
                if (!mkdtemp(test_redis.dir)) {
                        printf("Bail out! mkdtemp: %s\n", strerror(errno));
                        exit(1);
                }
                snprintf(test_redis.socket, sizeof(test_redis.socket), "%s/redis.sock", test_redis.dir);
                for (size_t i = 0; i < sizeof(test_redis_files) / sizeof(test_redis_files[0]); i++)
                        snprintf(test_redis_paths[i], sizeof(test_redis_paths[i]), "%s/%s", test_redis.dir,
                                 test_redis_files[i]);
        }
        for (int attempt = 0; attempt < 5; attempt++) {
                test_redis.port = test_redis_free_port();
                if (test_redis.port > 0 && test_redis_spawn())
                        return test_redis.port;
        }
        printf("Bail out! redis-server would not start (see %s/redis.log)\n", test_redis.dir);
        exit(1);
}

/* The unix socket the server also listens on. */
static inline const char *test_redis_socket(void) {
        return test_redis.socket;
}

/* Sends sig to the server (SIGSTOP/SIGCONT to freeze it mid-command). */
static inline int test_redis_signal(int sig) {
        return test_redis.pid > 0 ? kill(test_redis.pid, sig) : -1;
}

/* SIGTERM and wait up to 5 s, then SIGKILL. */
static inline void test_redis_stop(void) {
        pid_t pid = test_redis.pid;
        long long deadline;

        if (pid <= 0)
                return;
        kill(pid, SIGCONT);
        kill(pid, SIGTERM);
        deadline = (long long) au_now_ms() + 5000;
        while ((long long) au_now_ms() < deadline) {
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        test_redis.pid = 0;
                        return;
                }
                usleep(10 * 1000);
        }
        test_redis_kill_now();
}

/* Kills the server at once (as a crash would). */
static inline void test_redis_kill(void) {
        test_redis_kill_now();
}

/* Starts the server again on the same port; false when it does not come up. */
static inline bool test_redis_restart(void) {
        test_redis_stop();
        for (int attempt = 0; attempt < 50; attempt++) {
                if (test_redis_spawn())
                        return true;
                /* The port may still be held for a moment; it is ours to wait for. */
                usleep(100 * 1000);
        }
        return false;
}
