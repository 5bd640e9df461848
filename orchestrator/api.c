/* SPDX-License-Identifier: MIT */
#include "orchestrator/api.h"
