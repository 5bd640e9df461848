/* SPDX-License-Identifier: MIT */
/* The daemon and coordinator attacks of `autoosctl adversarial` (work in progress). */
#include "cli/adversarial.h"

int adv_fleet_attacks(const adv_fleet_target *t, const char *only, adv_report *rep) {
        (void) t;
        (void) only;
        (void) rep;
        return 0;
}
