/* SPDX-License-Identifier: MIT */
/*
 * The loop that supervises runs to their end, written once (issue 11):
 * `autoosctl run` supervises one, `autoosctl adversarial` several at a time.
 * autoosd does not need it: its runs' fds sit in its own au_loop, whose
 * handler is the same sbx_run_dispatch().
 */
#pragma once
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sandbox/sandbox.h"

/* One run under supervision. */
typedef struct sbx_supervised {
        sbx_run *run;    /* started by the caller; freed (NULL) once it has ended */
        sbx_result *res; /* its result once it has ended (the caller frees it), NULL when error is set */
        int error;       /* a negative errno when supervising it failed */
        bool done;       /* it has ended (or was never started: the caller sets done) */
} sbx_supervised;

/* What stops the loop besides the runs' end. */
typedef struct sbx_supervisor {
        int sigfd;               /* a signalfd, or -1: a signal read there kills every run */
        const char *kill_reason; /* the reason those runs report, with outcome signaled */
        bool name_signal;        /* append the signal's name ("... Interrupt") to kill_reason */
        int caught;              /* set: the first signal read, 0 while none */
} sbx_supervisor;

/* Whether the caller has what it waits for (userdata is sbx_supervise()'s). */
typedef bool (*sbx_supervise_until_fn)(void *userdata);

/*
 * Dispatches the n runs' events until until(userdata) holds (until NULL:
 * until every run has ended), polling their fds and s->sigfd. A run that
 * ends gets res (or error) and done, and is freed. A signal on s->sigfd kills
 * every run still going, once, and is remembered in s->caught; the loop goes
 * on until its condition holds. Runs already done are skipped. Returns 0,
 * -ETIMEDOUT when deadline_ms (au_now_ms(); 0: none) passes first or no run
 * is left that could make the condition hold, or a
 * negative errno when poll fails. The runs are the caller's either way.
 */
int sbx_supervise(sbx_supervisor *s, sbx_supervised *const *runs, size_t n, sbx_supervise_until_fn until,
                  void *userdata, uint64_t deadline_ms);

/*
 * Blocks SIGINT, SIGTERM and SIGHUP (saving them in *mask) and returns a
 * signalfd that reads them (or -1), for sbx_supervisor.sigfd: a signal then
 * ends the runs cleanly (cgroups removed) instead of killing the caller
 * mid-way. SIGPIPE is ignored. sbx_supervise_signals_end() undoes the block.
 */
int sbx_supervise_signals(sigset_t *mask);

/* Unblocks the signals of sbx_supervise_signals() once the runs are over. */
void sbx_supervise_signals_end(const sigset_t *mask);

/* Kills every run of the n not yet ended (outcome signaled, reason why); dispatch until they end. */
void sbx_supervise_kill(sbx_supervised *const *runs, size_t n, const char *why);
