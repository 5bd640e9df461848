/* SPDX-License-Identifier: MIT */
#include "orchestrator/events.h"
