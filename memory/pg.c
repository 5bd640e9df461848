/* SPDX-License-Identifier: MIT */
#include "memory/pg.h"
