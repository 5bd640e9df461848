/* SPDX-License-Identifier: MIT */
/* The loop that supervises runs to their end (sandbox/supervise.h). */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/macro.h"
#include "sandbox/supervise.h"

static void finish(sbx_supervised *p, int r) {
        if (r < 0)
                p->error = r;
        else if ((r = sbx_run_take_result(p->run, &p->res)) < 0)
                p->error = r;
        p->run = sbx_run_free(p->run);
        p->done = true;
}

static bool all_done(sbx_supervised *const *runs, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!runs[i]->done)
                        return false;
        return true;
}

void sbx_supervise_kill(sbx_supervised *const *runs, size_t n, const char *why) {
        for (size_t i = 0; i < n; i++)
                if (!runs[i]->done && runs[i]->run)
                        sbx_run_kill(runs[i]->run, SBX_OUTCOME_SIGNALED, why);
}

/* A signal arrived: the first one kills every run. */
static void on_signal(sbx_supervisor *s, sbx_supervised *const *runs, size_t n) {
        struct signalfd_siginfo si;
        char reason[256];

        if (read(s->sigfd, &si, sizeof(si)) != sizeof(si) || s->caught)
                return;
        s->caught = (int) si.ssi_signo;
        if (s->name_signal)
                snprintf(reason, sizeof(reason), "%s %s", s->kill_reason, strsignal(s->caught));
        else
                snprintf(reason, sizeof(reason), "%s", s->kill_reason);
        sbx_supervise_kill(runs, n, reason);
}

int sbx_supervise(sbx_supervisor *s, sbx_supervised *const *runs, size_t n, sbx_supervise_until_fn until,
                  void *userdata, uint64_t deadline_ms) {
        _cleanup_free_ struct pollfd *pfd = calloc(n + 1, sizeof(struct pollfd));

        if (!pfd)
                return -ENOMEM;
        for (;;) {
                for (size_t i = 0; i < n; i++)
                        if (!runs[i]->done) {
                                int r = sbx_run_dispatch(runs[i]->run);
                                if (r != 0)
                                        finish(runs[i], r < 0 ? r : 0);
                        }
                if (until ? until(userdata) : all_done(runs, n))
                        return 0;
                int timeout = -1;
                if (deadline_ms) {
                        uint64_t now = au_now_ms();
                        if (now >= deadline_ms)
                                return -ETIMEDOUT;
                        timeout = (int) MIN(deadline_ms - now, (uint64_t) INT32_MAX);
                }
                size_t np = 0;
                for (size_t i = 0; i < n; i++)
                        if (!runs[i]->done)
                                pfd[np++] =
                                        (struct pollfd){.fd = sbx_run_fd(runs[i]->run), .events = POLLIN};
                if (np == 0)
                        return -ETIMEDOUT; /* no run goes on that could make the condition hold */
                size_t sig = np;
                if (s && s->sigfd >= 0)
                        pfd[np++] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
                if (poll(pfd, np, timeout) < 0 && errno != EINTR)
                        return -errno;
                if (sig < np && (pfd[sig].revents & POLLIN))
                        on_signal(s, runs, n);
        }
}

int sbx_supervise_signals(sigset_t *mask) {
        sigemptyset(mask);
        sigaddset(mask, SIGINT);
        sigaddset(mask, SIGTERM);
        sigaddset(mask, SIGHUP);
        sigprocmask(SIG_BLOCK, mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        return signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

void sbx_supervise_signals_end(const sigset_t *mask) {
        sigprocmask(SIG_UNBLOCK, mask, NULL);
}
