/* SPDX-License-Identifier: MIT */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

enum { SRC_IO, SRC_TIMER, SRC_SIGNAL };

struct au_source {
        au_loop *loop;
        int type;
        int fd; /* watched fd; for timers and signals, owned by the source */
        int signo;
        bool dead;
        au_io_fn io;
        au_timer_fn timer;
        au_signal_fn signal;
        void *userdata;
        au_source *next_dead;
};

struct au_loop {
        int ep;
        bool quit;
        int code;
        bool dispatching;
        au_source *dead; /* freed after the current batch */
};

int au_loop_new(au_loop **ret) {
        au_loop *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->ep = epoll_create1(EPOLL_CLOEXEC);
        if (l->ep < 0) {
                int r = negative_errno();
                free(l);
                return r;
        }
        *ret = l;
        return 0;
}

static void reap_dead(au_loop *l) {
        while (l->dead) {
                au_source *s = l->dead;
                l->dead = s->next_dead;
                free(s);
        }
}

au_loop *au_loop_free(au_loop *l) {
        if (!l)
                return NULL;
        reap_dead(l);
        safe_close(l->ep);
        free(l);
        return NULL;
}

static int add_source(au_loop *l, au_source *s, uint32_t events) {
        struct epoll_event ev = {.events = events, .data.ptr = s};
        if (epoll_ctl(l->ep, EPOLL_CTL_ADD, s->fd, &ev) < 0)
                return negative_errno();
        return 0;
}

int au_loop_add_io(au_loop *l, int fd, uint32_t events, au_io_fn fn, void *userdata, au_source **ret) {
        au_source *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (au_source){.loop = l, .type = SRC_IO, .fd = fd, .io = fn, .userdata = userdata};
        int r = add_source(l, s, events);
        if (r < 0) {
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int au_source_set_events(au_source *s, uint32_t events) {
        struct epoll_event ev = {.events = events, .data.ptr = s};
        return epoll_ctl(s->loop->ep, EPOLL_CTL_MOD, s->fd, &ev) < 0 ? negative_errno() : 0;
}

static int arm(au_source *s, uint64_t after_ms, uint64_t every_ms, bool asap) {
        struct itimerspec it = {
                .it_value = {.tv_sec = (time_t) (after_ms / 1000),
                             .tv_nsec = (long) (after_ms % 1000) * 1000000},
                .it_interval = {.tv_sec = (time_t) (every_ms / 1000),
                                .tv_nsec = (long) (every_ms % 1000) * 1000000},
        };
        /* An all-zero it_value disarms the timer: "now" is one nanosecond. */
        if (after_ms == 0 && (asap || every_ms != 0))
                it.it_value.tv_nsec = 1;
        return timerfd_settime(s->fd, 0, &it, NULL) < 0 ? negative_errno() : 0;
}

int au_source_set_timer(au_source *s, uint64_t after_ms, uint64_t every_ms) {
        return arm(s, after_ms, every_ms, false);
}

int au_loop_add_timer(au_loop *l, uint64_t after_ms, uint64_t every_ms, au_timer_fn fn, void *userdata,
                      au_source **ret) {
        au_source *s = calloc(1, sizeof(*s));
        int r;
        if (!s)
                return -ENOMEM;
        *s = (au_source){.loop = l, .type = SRC_TIMER, .timer = fn, .userdata = userdata};
        s->fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (s->fd < 0) {
                r = negative_errno();
                free(s);
                return r;
        }
        if ((r = arm(s, after_ms, every_ms, true)) < 0 || (r = add_source(l, s, EPOLLIN)) < 0) {
                close(s->fd);
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int au_loop_add_signal(au_loop *l, int signo, au_signal_fn fn, void *userdata, au_source **ret) {
        sigset_t mask;
        int r;
        au_source *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        sigemptyset(&mask);
        sigaddset(&mask, signo);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        *s = (au_source){.loop = l, .type = SRC_SIGNAL, .signo = signo, .signal = fn, .userdata = userdata};
        s->fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (s->fd < 0 || (r = add_source(l, s, EPOLLIN)) < 0) {
                r = negative_errno();
                safe_close(s->fd);
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

au_source *au_source_free(au_source *s) {
        if (!s || s->dead)
                return NULL;
        au_loop *l = s->loop;
        epoll_ctl(l->ep, EPOLL_CTL_DEL, s->fd, NULL);
        if (s->type != SRC_IO)
                close(s->fd);
        s->fd = -1;
        s->dead = true;
        /* Its event may still be in the batch being dispatched: free it afterwards. */
        s->next_dead = l->dead;
        l->dead = s;
        if (!l->dispatching)
                reap_dead(l);
        return NULL;
}

static void dispatch(au_source *s, uint32_t revents) {
        if (s->dead)
                return;
        switch (s->type) {
        case SRC_IO:
                s->io(s, s->fd, revents, s->userdata);
                break;
        case SRC_TIMER: {
                uint64_t n;
                if (read(s->fd, &n, sizeof(n)) == sizeof(n))
                        s->timer(s, s->userdata);
                break;
        }
        case SRC_SIGNAL: {
                struct signalfd_siginfo si;
                while (!s->dead && read(s->fd, &si, sizeof(si)) == sizeof(si))
                        s->signal(s, (int) si.ssi_signo, s->userdata);
                break;
        }
        }
}

int au_loop_run_once(au_loop *l, int timeout_ms) {
        struct epoll_event ev[64];
        int n = epoll_wait(l->ep, ev, (int) ELEMENTSOF(ev), timeout_ms);
        if (n < 0)
                return errno == EINTR ? 0 : negative_errno();
        l->dispatching = true;
        for (int i = 0; i < n && !l->quit; i++)
                dispatch(ev[i].data.ptr, ev[i].events);
        l->dispatching = false;
        reap_dead(l);
        return n;
}

int au_loop_run(au_loop *l) {
        while (!l->quit) {
                int r = au_loop_run_once(l, -1);
                if (r < 0)
                        return r;
        }
        return l->code;
}

void au_loop_quit(au_loop *l, int code) {
        l->quit = true;
        l->code = code;
}
