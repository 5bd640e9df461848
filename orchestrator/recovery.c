/* SPDX-License-Identifier: MIT */
/* The recovery ladder as a decision (recovery.h); the statements that carry it out are in scheduler.c. */
#include "orchestrator/recovery.h"

/* Doubled per failure, capped; "equal jitter" (half fixed, half random) spreads many steps' retries. */
static double retry_delay(const orc_recovery_input *in) {
        double base = (double) in->backoff_ms, cap = (double) in->max_backoff_ms;
        double jitter = in->jitter < 0 ? 0 : (in->jitter > 1 ? 1 : in->jitter);

        for (int i = 0; i < in->failures && base < cap; i++)
                base *= 2;
        if (base > cap)
                base = cap;
        return base / 2 + (base / 2) * jitter;
}

orc_recovery orc_recovery_decide(const orc_recovery_input *in) {
        orc_recovery d = {.failures = in->failures};

        if (in->outcome == SBX_OUTCOME_EXITED && in->exit_code == 0) {
                d.action = ORC_RECOVERY_SUCCEEDED;
                d.replaces = in->is_fallback;
                return d;
        }
        /* Level 2: our fault goes to another node, without using the retry budget. */
        if (in->outcome == SBX_OUTCOME_SANDBOX_ERROR && in->moves < in->max_moves) {
                d.action = ORC_RECOVERY_MOVE;
                return d;
        }
        d.failures = in->failures + 1;
        /* Level 1: a rejected spec fails the same way every time; anything else is tried again. */
        if (in->outcome != SBX_OUTCOME_REJECTED && in->failures + 1 < in->max_attempts) {
                d.action = ORC_RECOVERY_RETRY;
                d.delay_ms = retry_delay(in);
                return d;
        }
        if (in->has_fallback && in->fallback_standing) {
                d.action = ORC_RECOVERY_FALLBACK;
                return d;
        }
        if (!in->escalates) {
                d.action = ORC_RECOVERY_FAIL;
                return d;
        }
        d.action = ORC_RECOVERY_ESCALATE;
        d.escalate_replaced = in->is_fallback;
        return d;
}

const char *orc_recovery_action_to_string(orc_recovery_action a) {
        static const char *const names[] = {
                [ORC_RECOVERY_SUCCEEDED] = "succeeded", [ORC_RECOVERY_MOVE] = "move",
                [ORC_RECOVERY_RETRY] = "retry",         [ORC_RECOVERY_FALLBACK] = "fallback",
                [ORC_RECOVERY_FAIL] = "fail",           [ORC_RECOVERY_ESCALATE] = "escalate",
        };
        return (unsigned) a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}
