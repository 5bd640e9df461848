/* SPDX-License-Identifier: MIT */
/*
 * A small single-threaded epoll event loop (after sd-event): fds, timers
 * (timerfd) and signals (signalfd). Callbacks may add and free sources,
 * including the one being dispatched; frees take effect after the batch.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "clock.h"
#include "macro.h"

typedef struct au_loop au_loop;
typedef struct au_source au_source;

typedef void (*au_io_fn)(au_source *s, int fd, uint32_t revents, void *userdata);
typedef void (*au_timer_fn)(au_source *s, void *userdata);
typedef void (*au_signal_fn)(au_source *s, int signo, void *userdata);

int au_loop_new(au_loop **ret);
au_loop *au_loop_free(au_loop *loop);
DEFINE_TRIVIAL_CLEANUP_FUNC(au_loop *, au_loop_free);

/* Watches fd for events (EPOLLIN, EPOLLOUT...). The fd stays the caller's. */
int au_loop_add_io(au_loop *loop, int fd, uint32_t events, au_io_fn fn, void *userdata, au_source **ret);
int au_source_set_events(au_source *s, uint32_t events);

/* Fires once after after_ms (0: on the next iteration), then every every_ms if non-zero. */
int au_loop_add_timer(au_loop *loop, uint64_t after_ms, uint64_t every_ms, au_timer_fn fn, void *userdata,
                      au_source **ret);
/* Re-arms a timer source; after_ms 0 and every_ms 0 disarms it. */
int au_source_set_timer(au_source *s, uint64_t after_ms, uint64_t every_ms);

/* Blocks signo for the process and delivers it through the loop. */
int au_loop_add_signal(au_loop *loop, int signo, au_signal_fn fn, void *userdata, au_source **ret);

/* Removes the source from its loop; safe inside any callback. Accepts NULL, returns NULL. */
au_source *au_source_free(au_source *s);

/* Runs until au_loop_quit(); returns the code given there. */
int au_loop_run(au_loop *loop);
/* One iteration, waiting at most timeout_ms (-1: forever). Returns <0 on error. */
int au_loop_run_once(au_loop *loop, int timeout_ms);
void au_loop_quit(au_loop *loop, int code);
