/* SPDX-License-Identifier: MIT */
/* fake-coordinator.c: coordinator.h's operations with canned answers, for fuzz-http.c. */
#pragma once

#include "orchestrator/coordinator.h"
#include "tests/fuzz/fuzz.h"

/* The max_body_bytes fuzz-http.c gives the API: small, so that inputs can go over it. */
#define FAKE_MAX_BODY 1024u

/* The coordinator to hand to orc_api_start(). */
orc_coord *fake_coord(void);
