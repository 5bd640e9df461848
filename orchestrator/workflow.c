/* SPDX-License-Identifier: MIT */
#include "orchestrator/workflow.h"
