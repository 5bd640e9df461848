/* SPDX-License-Identifier: MIT */
/*
 * Network namespaces made ahead of demand.
 *
 * Creating a network namespace and bringing its loopback up costs about a
 * millisecond of kernel time (IPv4 and IPv6 setup of lo), more than half of
 * a whole spawn. A helper thread keeps a few fresh ones ready, with lo
 * already up for "loopback" runs. Each is handed to exactly one run and its
 * fd closed once the child holds it, so no two runs ever share one.
 *
 * The namespaces belong to the host's user namespace: inside the sandbox,
 * whose user namespace is a child of it, nobody holds CAP_NET_ADMIN over
 * its own network, so a run cannot reconfigure it.
 *
 * The thread allocates; the child of clone3() must therefore never
 * allocate, which child.c respects.
 */
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/macro.h"
#include "sandbox-internal.h"

#define POOL_MAX 16
#define DEFER_MAX 64

struct sbx_netpool {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        pthread_t thread;
        bool thread_started, stop;
        unsigned target[_SBX_NET_MAX];
        int fds[_SBX_NET_MAX][POOL_MAX];
        unsigned n[_SBX_NET_MAX];
        int host_netns;          /* the netns the process started in */
        int deferred[DEFER_MAX]; /* namespace fds whose last reference the thread drops */
        unsigned n_deferred;
};

/*
 * Brings lo up in the calling thread's network namespace: SIOCSIFFLAGS on a
 * socket made there. (libnl did this over rtnetlink; loading it and its
 * constructors cost a one-shot run more than the call itself, issue 12.)
 */
static int loopback_up(au_error *err) {
        struct ifreq ifr = {.ifr_name = "lo"};
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return au_error_set(err, errno, "create a socket to configure lo");
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                return au_error_set(err, errno, "find lo in a new network namespace");
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                return au_error_set(err, errno, "bring lo up");
        return 0;
}

/*
 * Creates a namespace in the calling thread (unshare changes only this
 * thread's), readies it, returns an fd to it, and puts the thread back.
 */
static int make_netns(sbx_netpool *p, sbx_network mode, au_error *err) {
        int r;
        if (unshare(CLONE_NEWNET) < 0)
                return au_error_set(err, errno, "create network namespace");
        int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                r = au_error_set(err, errno, "open the new network namespace");
        else if (mode == SBX_NET_LOOPBACK && (r = loopback_up(err)) < 0)
                fd = safe_close(fd);
        else
                r = 0;
        if (setns(p->host_netns, CLONE_NEWNET) < 0) {
                /* Never keep running in a sandbox's network: this thread would open sockets there. */
                au_error_set(err, errno, "return to the host network namespace");
                abort();
        }
        return fd >= 0 ? fd : r;
}

static void *refill_thread(void *userdata) {
        sbx_netpool *p = userdata;
        pthread_mutex_lock(&p->lock);
        /* Every path that drops the lock loops back to the stop check before waiting again. */
        while (!p->stop) {
                if (p->n_deferred > 0) {
                        int fd = p->deferred[--p->n_deferred];
                        pthread_mutex_unlock(&p->lock);
                        close(fd); /* may tear a whole mount namespace down: here, not on the spawn path */
                        pthread_mutex_lock(&p->lock);
                        continue;
                }
                int mode = -1;
                for (int m = 0; m < _SBX_NET_MAX; m++)
                        if (p->n[m] < p->target[m]) {
                                mode = m;
                                break;
                        }
                if (mode < 0) {
                        pthread_cond_wait(&p->wake, &p->lock);
                        continue;
                }
                pthread_mutex_unlock(&p->lock);
                au_error err = {};
                int fd = make_netns(p, (sbx_network) mode, &err);
                pthread_mutex_lock(&p->lock);
                if (fd < 0) {
                        /* Leave it to the spawn path, which reports the error to its caller. */
                        p->target[mode] = 0;
                        continue;
                }
                p->fds[mode][p->n[mode]++] = fd;
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

int sbx_netpool_new(unsigned target, sbx_netpool **ret, au_error *err) {
        sbx_netpool *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->wake, NULL);
        p->host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (p->host_netns < 0) {
                int r = au_error_set(err, errno, "open our network namespace");
                sbx_netpool_free(p);
                return r;
        }
        target = MIN(target, (unsigned) POOL_MAX);
        p->target[SBX_NET_LOOPBACK] = target;
        p->target[SBX_NET_NONE] = target > 0 ? MAX(target / 4, 1u) : 0;
        if (target > 0) {
                /* The thread must not take signals meant for the process's own loop. */
                sigset_t all, old;
                sigfillset(&all);
                pthread_sigmask(SIG_BLOCK, &all, &old);
                int r = pthread_create(&p->thread, NULL, refill_thread, p);
                pthread_sigmask(SIG_SETMASK, &old, NULL);
                if (r != 0) {
                        au_error_set(err, r, "start the network namespace thread");
                        sbx_netpool_free(p);
                        return -r;
                }
                p->thread_started = true;
        }
        *ret = p;
        return 0;
}

sbx_netpool *sbx_netpool_free(sbx_netpool *p) {
        if (!p)
                return NULL;
        if (p->thread_started) {
                pthread_mutex_lock(&p->lock);
                p->stop = true;
                pthread_cond_signal(&p->wake);
                pthread_mutex_unlock(&p->lock);
                pthread_join(p->thread, NULL);
        }
        for (int m = 0; m < _SBX_NET_MAX; m++)
                for (unsigned i = 0; i < p->n[m]; i++)
                        safe_close(p->fds[m][i]);
        for (unsigned i = 0; i < p->n_deferred; i++)
                safe_close(p->deferred[i]);
        safe_close(p->host_netns);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
}

int sbx_netpool_take(sbx_netpool *p, sbx_network mode, au_error *err) {
        int fd = -1;
        if (mode != SBX_NET_NONE && mode != SBX_NET_LOOPBACK)
                return au_error_set(err, EOPNOTSUPP, "network %s is not available here",
                                    sbx_network_to_string(mode));
        pthread_mutex_lock(&p->lock);
        if (p->n[mode] > 0)
                fd = p->fds[mode][--p->n[mode]];
        if (p->thread_started)
                pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        if (fd >= 0)
                return fd;
        /* None ready: make one now, on the spawn path. */
        return make_netns(p, mode, err);
}

int sbx_netpool_enter(sbx_netpool *p, int netns_fd, au_error *err) {
        (void) p;
        return setns(netns_fd, CLONE_NEWNET) < 0
                       ? au_error_set(err, errno, "enter the run's network namespace")
                       : 0;
}

void sbx_netpool_leave(sbx_netpool *p) {
        if (setns(p->host_netns, CLONE_NEWNET) < 0)
                abort(); /* see make_netns() */
}

void sbx_netpool_defer_close(sbx_netpool *p, int fd) {
        if (fd < 0)
                return;
        pthread_mutex_lock(&p->lock);
        if (!p->thread_started || p->n_deferred == DEFER_MAX) {
                pthread_mutex_unlock(&p->lock);
                close(fd);
                return;
        }
        p->deferred[p->n_deferred++] = fd;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
}
