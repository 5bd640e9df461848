/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>

#include "common/clock.h"

static uint64_t read_us(clockid_t id) {
        struct timespec ts;
        clock_gettime(id, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

uint64_t au_now_ms(void) {
        return read_us(CLOCK_MONOTONIC) / 1000u;
}

uint64_t au_now_us(void) {
        return read_us(CLOCK_MONOTONIC);
}

uint64_t au_wall_us(void) {
        return read_us(CLOCK_REALTIME);
}

void au_sleep_ms(uint64_t ms) {
        struct timespec ts = {.tv_sec = (time_t) (ms / 1000), .tv_nsec = (long) (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

struct timespec au_deadline_after(clockid_t clock, uint64_t ms) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        ts.tv_sec += (time_t) (ms / 1000);
        ts.tv_nsec += (long) (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        return ts;
}

void au_iso8601_now(char *buf, size_t size) {
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        size_t k = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + k, size - k, ".%03ldZ", now.tv_nsec / 1000000);
}
