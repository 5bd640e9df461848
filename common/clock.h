/* SPDX-License-Identifier: MIT */
/*
 * common/clock: the tree's one clock (issue 11). Monotonic time for
 * deadlines and intervals, wall-clock time for what is recorded.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds: deadlines, timers, rate limits. */
uint64_t au_now_ms(void);

/* Monotonic microseconds. */
uint64_t au_now_us(void);

/* Wall-clock microseconds since the epoch: timestamps that are stored or shown. */
uint64_t au_wall_us(void);

/* Wall-clock milliseconds since the epoch. */
static inline uint64_t au_wall_ms(void) {
        return au_wall_us() / 1000u;
}

/* A timespec as milliseconds. */
static inline uint64_t au_timespec_ms(const struct timespec *ts) {
        return (uint64_t) ts->tv_sec * 1000u + (uint64_t) ts->tv_nsec / 1000000u;
}

/* Sleeps ms milliseconds, all of them (a signal's interruption is slept out). */
void au_sleep_ms(uint64_t ms);

/*
 * The clock's time ms milliseconds from now as a timespec, for
 * pthread_cond_timedwait() (CLOCK_REALTIME, or the condition's clock) and
 * other absolute deadlines.
 */
struct timespec au_deadline_after(clockid_t clock, uint64_t ms);

/* The wall-clock time now as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC); buf holds at least 32 bytes. */
void au_iso8601_now(char *buf, size_t size);
