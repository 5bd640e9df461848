/* SPDX-License-Identifier: MIT */
/* The recovery ladder as a decision (orchestrator/recovery.h): every level and edge, no server. */
#include <string.h>

#include "orchestrator/recovery.h"
#include "tests/tap.h"

/* A workflow step on its first attempt: 3 attempts, 1 s backoff capped at 8 s, 5 moves, no fallback. */
static orc_recovery_input step(sbx_outcome outcome, int exit_code) {
        return (orc_recovery_input){.outcome = outcome,
                                    .exit_code = exit_code,
                                    .failures = 0,
                                    .max_attempts = 3,
                                    .moves = 0,
                                    .max_moves = 5,
                                    .backoff_ms = 1000,
                                    .max_backoff_ms = 8000,
                                    .jitter = 0.5,
                                    .escalates = true};
}

static bool is(orc_recovery d, orc_recovery_action want) {
        if (d.action != want)
                diag("got %s, expected %s", orc_recovery_action_to_string(d.action),
                     orc_recovery_action_to_string(want));
        return d.action == want;
}

int main(void) {
        orc_recovery_input in;
        orc_recovery d;

        /* Success */
        in = step(SBX_OUTCOME_EXITED, 0);
        d = orc_recovery_decide(&in);
        ok(is(d, ORC_RECOVERY_SUCCEEDED) && !d.replaces && d.failures == 0,
           "exit 0 succeeds, replaces nothing");
        in.is_fallback = true;
        in.failures = 2;
        d = orc_recovery_decide(&in);
        ok(is(d, ORC_RECOVERY_SUCCEEDED) && d.replaces && d.failures == 2,
           "a fallback's success replaces the step it stands in for; failures unchanged");
        in = step(SBX_OUTCOME_EXITED, 0);
        in.failures = 2; /* the last attempt */
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_SUCCEEDED), "success on the last attempt");

        /* Level 1: retry */
        in = step(SBX_OUTCOME_EXITED, 1);
        d = orc_recovery_decide(&in);
        ok(is(d, ORC_RECOVERY_RETRY) && d.failures == 1,
           "exit 1 on attempt 1 of 3 retries, one failure counted");
        for (sbx_outcome o = SBX_OUTCOME_SIGNALED; o < _SBX_OUTCOME_MAX; o++) {
                if (o == SBX_OUTCOME_REJECTED || o == SBX_OUTCOME_SANDBOX_ERROR)
                        continue;
                in = step(o, 0);
                ok(is(orc_recovery_decide(&in), ORC_RECOVERY_RETRY), "%s retries", sbx_outcome_to_string(o));
        }
        in = step(SBX_OUTCOME_EXITED, 1);
        in.failures = 1;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_RETRY), "the second failure of 3 attempts retries");
        in.failures = 2;
        d = orc_recovery_decide(&in);
        ok(is(d, ORC_RECOVERY_ESCALATE) && d.failures == 3,
           "the last attempt's failure does not retry: escalates");
        in = step(SBX_OUTCOME_EXITED, 1);
        in.max_attempts = 1;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_ESCALATE), "max_attempts 1: no retry at all");
        in.max_attempts = 0;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_ESCALATE), "max_attempts 0: no retry at all");

        /* Rejected is never retried */
        in = step(SBX_OUTCOME_REJECTED, 0);
        in.max_attempts = 10;
        d = orc_recovery_decide(&in);
        ok(is(d, ORC_RECOVERY_ESCALATE) && d.failures == 1,
           "rejected is not retried with attempts left: escalates");
        in.has_fallback = in.fallback_standing = true;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_FALLBACK), "rejected goes to the fallback");
        in = step(SBX_OUTCOME_REJECTED, 0);
        in.escalates = false;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_FAIL), "a rejected one-off run fails");

        /* Level 2: move on sandbox_error */
        in = step(SBX_OUTCOME_SANDBOX_ERROR, 0);
        d = orc_recovery_decide(&in);
        ok(is(d, ORC_RECOVERY_MOVE) && d.failures == 0, "sandbox_error moves, no failure counted");
        in.failures = 2; /* the last attempt: moves do not use the retry budget */
        in.moves = 4;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_MOVE),
           "sandbox_error on the last attempt, moves 4 of 5: moves");
        in.failures = 0;
        in.moves = 5;
        d = orc_recovery_decide(&in);
        ok(is(d, ORC_RECOVERY_RETRY) && d.failures == 1,
           "sandbox_error at the move limit counts as a failure: retries");
        in.failures = 2;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_ESCALATE),
           "sandbox_error at the move limit on the last attempt escalates");
        in.moves = 7;
        in.failures = 0;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_RETRY), "sandbox_error beyond the move limit retries");
        in = step(SBX_OUTCOME_EXITED, 1);
        in.moves = 0;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_RETRY), "only sandbox_error moves (exit 1 retries)");

        /* Level 4: fallback */
        in = step(SBX_OUTCOME_EXITED, 1);
        in.failures = 2;
        in.has_fallback = in.fallback_standing = true;
        d = orc_recovery_decide(&in);
        ok(is(d, ORC_RECOVERY_FALLBACK) && d.failures == 3,
           "out of attempts with a fallback standing by: fallback");
        in.failures = 0;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_RETRY), "a fallback waits until the attempts are used");
        in.failures = 2;
        in.fallback_standing = false;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_ESCALATE),
           "a fallback no longer standing by: escalates");
        in.escalates = false;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_FAIL), "... and a one-off run fails");
        in.has_fallback = false;
        in.fallback_standing = true;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_FAIL), "standing without a fallback is no fallback");

        /* One-off runs end; level 5 escalates */
        in = step(SBX_OUTCOME_TIMEOUT, 0);
        in.failures = 2;
        in.escalates = false;
        d = orc_recovery_decide(&in);
        ok(is(d, ORC_RECOVERY_FAIL) && d.failures == 3,
           "a one-off run out of attempts fails, not escalates");
        in.failures = 0;
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_RETRY), "a one-off run with attempts left retries");
        in = step(SBX_OUTCOME_OOM, 0);
        in.failures = 2;
        d = orc_recovery_decide(&in);
        ok(is(d, ORC_RECOVERY_ESCALATE) && !d.escalate_replaced && d.failures == 3,
           "a workflow step out of attempts escalates itself, attempts = 3");
        in.is_fallback = true;
        d = orc_recovery_decide(&in);
        ok(is(d, ORC_RECOVERY_ESCALATE) && d.escalate_replaced,
           "a failed fallback escalates the original step (fallback_for)");
        in.is_fallback = false;
        in.failures = 6; /* more failures than attempts (max_attempts lowered): no retry */
        ok(is(orc_recovery_decide(&in), ORC_RECOVERY_ESCALATE), "failures beyond max_attempts escalate");

        /* Backoff: doubled per failure, capped, equal jitter */
        in = step(SBX_OUTCOME_EXITED, 1);
        in.max_attempts = 100;
        in.jitter = 1;
        {
                const double want[] = {1000, 2000, 4000, 8000, 8000, 8000};
                bool good = true;
                for (int f = 0; f < 6; f++) {
                        in.failures = f;
                        d = orc_recovery_decide(&in);
                        if (d.action != ORC_RECOVERY_RETRY || d.delay_ms != want[f]) {
                                diag("failures %d: delay %.1f, expected %.1f", f, d.delay_ms, want[f]);
                                good = false;
                        }
                }
                ok(good, "jitter 1: 1000, 2000, 4000, 8000 then capped at max_backoff_ms");
        }
        in.failures = 60; /* doubling stops at the cap: no overflow */
        d = orc_recovery_decide(&in);
        ok(d.delay_ms == 8000, "60 failures: still the cap (%.1f)", d.delay_ms);
        in.failures = 1;
        in.jitter = 0;
        d = orc_recovery_decide(&in);
        ok(d.delay_ms == 1000, "jitter 0: half the backoff (%.1f of 2000)", d.delay_ms);
        in.jitter = 0.5;
        d = orc_recovery_decide(&in);
        ok(d.delay_ms == 1500, "jitter 0.5: three quarters (%.1f of 2000)", d.delay_ms);
        {
                bool good = true;
                for (int k = 0; k <= 1000; k++) {
                        in.jitter = k / 1000.0;
                        d = orc_recovery_decide(&in);
                        good &= d.delay_ms >= 1000 && d.delay_ms <= 2000;
                }
                in.jitter = -3;
                good &= orc_recovery_decide(&in).delay_ms == 1000;
                in.jitter = 7;
                good &= orc_recovery_decide(&in).delay_ms == 2000;
                ok(good, "every jitter in [0, 1] gives a delay in [base/2, base]; outside is clamped");
        }
        in = step(SBX_OUTCOME_EXITED, 1);
        in.backoff_ms = 10000;
        in.max_backoff_ms = 3000;
        in.jitter = 1;
        ok(orc_recovery_decide(&in).delay_ms == 3000, "a first backoff above the cap is capped");
        in.backoff_ms = 0;
        ok(orc_recovery_decide(&in).delay_ms == 0, "backoff 0: retried at once");

        ok(strcmp(orc_recovery_action_to_string(ORC_RECOVERY_ESCALATE), "escalate") == 0 &&
                   strcmp(orc_recovery_action_to_string((orc_recovery_action) 99), "?") == 0,
           "action names");
        return done_testing();
}
